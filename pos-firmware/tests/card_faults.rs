//! The issue's exhaustive proof that a card write can fail anywhere without losing or doubling
//! money: the whole till (the real [`TillRuntime`] and its sled journal on disk) over the real
//! card stack ([`WalletReader`] → [`Mfrc522Reader`] → the `mfrc522` crate → the emulated
//! MFRC522 and Mifare Classic card), for a sale's debit and a card-centre top-up, 4- and 7-byte
//! UIDs, a fault at every card operation the till makes (every block write × every
//! [`WriteFault`], every authentication, every read, the reader dying at each of them, the card
//! leaving after each exchange, and the same again on the fresh-session paths a bad read opens),
//! with and without a till restart between the fault and the next tap, with the till's power cut
//! at the fault itself (its process unwinds in the middle of the card operation, before the
//! outcome is handled, and it restarts from the journal), and with the card used at another
//! till in between or not. After the fault the merchant's screen is checked, then
//! the card goes back and the test does what the till asks until the money has moved, and
//! checks the card against the journal:
//! - every card state is decoded from the emulated card's raw blocks (wallet layout + demo
//!   keys), independently of the reader path, after every step; a tap's image must equal it;
//! - committed ⇔ the card holds that write, aborted ⇔ it never did, in doubt only when the card
//!   was used elsewhere (whether the write landed is counted per case);
//! - exactly one debit (or load) is committed, the card's counter only ever steps by one, and
//!   its balance change is exactly the committed amounts + the other till's debit + the writes
//!   the server settles (in doubt);
//! - the journal audit: contiguous seqs, each intent resolved at most once and by its own kind,
//!   nothing unresolved at the end, the snapshot's pending lists equal the unresolved intents;
//! - a debit card then restored to its earlier blocks is refused at the next tap (a
//!   `CardAnomaly`, no intent), with and without a restart.
//!
//! Also here, on the same whole-till bench: a dead reader is a reader fault and never settles a
//! write; a card above the card centre's balance cap pays but takes no top-up; a torn debit or
//! top-up whose card never returns goes in doubt after the age limit and is not charged again
//! when the card does return; an interrupted card issue whose writes landed is journaled once
//! at the re-tap (a fault at every operation of the issue).
//!
//! Fault points are counted from fault-free dry runs through the emulator's counters, never
//! hard-coded. The test prints the case count and breakdown (`--nocapture`).
//!
//! In this file `unwrap`/`expect` are assertions: where one fails, the test fails.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use embedded_hal::spi::{ErrorType, Operation as SpiOperation, SpiDevice};
use keymap::TillKey;
use pos_firmware::core::card::{CardImage, CardProblem, CardRead, CardWrite, CardWriteOutcome};
use pos_firmware::core::cardcentre::MAX_CARD_BALANCE;
use pos_firmware::core::config::TillConfig;
use pos_firmware::core::{Beep, MESSAGE_SHOW_MS, UNRESOLVED_MAX_AGE_MS};
use pos_firmware::journal::Journal;
use pos_firmware::reader::driver::{Mfrc522Reader, ReaderOptions};
use pos_firmware::reader::emulator::{
    EmulatedCard, EmulatedMfrc522, EmulatedSpiError, EmulatorControl, Fault, Op, OpCounters,
    ReadFault, WriteFault,
};
use pos_firmware::runtime::{Input, Now, Output, TillRuntime};
use pos_firmware::wallet::layout::{
    choose_slot, decode_header, decode_slot, CardSerial, Slot, SlotState,
    CARD_FORMAT_MAX_BALANCE_FEN, HEADER_BLOCK, TRAILER_BLOCK,
};
use pos_firmware::wallet::{WalletConfig, WalletReader};
use shared::record::{InDoubtReason, JournalRecord, RecordBody, TxnTag};
use shared::{CardUid, Fen, Seq, UnixMillis};

/// The balance the test cards are issued with (¥100).
const OPENING_FEN: u64 = 10_000;
/// The sale: ¥5, typed as "5".
const SALE_FEN: u64 = 500;
const SALE_KEYS: [u8; 1] = [5];
/// The top-up: ¥50, typed as "50".
const LOAD_FEN: u64 = 5_000;
const LOAD_KEYS: [u8; 2] = [5, 0];
/// The debit another till makes when the card is used elsewhere.
const OTHER_TILL_DEBIT_FEN: u64 = 300;
const OTHER_TILL_TAG: TxnTag = TxnTag(0x07E4_0001);
/// The staff PIN of `TillConfig::default()`.
const STAFF_PIN: [u8; 6] = [1, 2, 3, 4, 5, 6];
/// Time between two inputs: inside every key-combo window.
const STEP_MS: u64 = 200;
/// Inputs the test may make after the fault before the money must have moved.
const FOLLOW_STEPS_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Debit,
    Load,
}

impl Operation {
    fn amount(self) -> Fen {
        Fen::new(match self {
            Operation::Debit => SALE_FEN,
            Operation::Load => LOAD_FEN,
        })
    }

    /// The card's balance after this operation from `before`.
    fn after(self, before: Fen) -> Option<Fen> {
        match self {
            Operation::Debit => before.checked_sub(self.amount()),
            Operation::Load => before.checked_add(self.amount()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextTap {
    /// The same card comes straight back to this till.
    Same,
    /// The card pays at another till first (a legit debit there), then comes back.
    UsedElsewhere,
}

/// What strikes during the faulted tap, indexes relative to the operation counters at the
/// moment the card is tapped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Injection {
    faults: Vec<Fault>,
    /// The card leaves the field once this many exchanges (selects, authentications, reads,
    /// writes) have completed.
    leave_after_exchanges: Option<u32>,
}

fn exchanges(c: &OpCounters) -> u32 {
    c.selects + c.auths + c.reads + c.writes
}

/// Moves a fault's index by `base` (the counters when the case's tap starts).
fn shifted(fault: Fault, base: &OpCounters) -> Fault {
    match fault {
        Fault::Write { write_index, fault } => Fault::Write {
            write_index: write_index + base.writes,
            fault,
        },
        Fault::AuthFails { auth_index } => Fault::AuthFails {
            auth_index: auth_index + base.auths,
        },
        Fault::Read { read_index, fault } => Fault::Read {
            read_index: read_index + base.reads,
            fault,
        },
        Fault::ReaderDies {
            op,
            index,
            reads_as,
        } => Fault::ReaderDies {
            op,
            index: index
                + match op {
                    Op::Auth => base.auths,
                    Op::Read => base.reads,
                    Op::Write => base.writes,
                },
            reads_as,
        },
    }
}

/// The emulated chip's SPI with one addition: the card leaves the field between two exchanges,
/// once a set number of them completed (checked before every SPI transaction).
#[derive(Clone)]
struct LeavingSpi {
    inner: EmulatedMfrc522,
    control: EmulatorControl,
    leave_at: Rc<Cell<Option<u32>>>,
    taken: Rc<RefCell<Option<EmulatedCard>>>,
}

impl ErrorType for LeavingSpi {
    type Error = EmulatedSpiError;
}

impl SpiDevice for LeavingSpi {
    fn transaction(&mut self, operations: &mut [SpiOperation<'_, u8>]) -> Result<(), Self::Error> {
        if let Some(at) = self.leave_at.get() {
            if exchanges(&self.control.counters()) >= at && self.control.card_in_field() {
                self.leave_at.set(None);
                *self.taken.borrow_mut() = self.control.remove_card();
            }
        }
        let result = self.inner.transaction(operations);
        if POWER_CUT_AT_FAULT.get()
            && self.control.pending_faults().is_empty()
            && self.leave_at.get().is_none()
        {
            // Every injected fault has struck: the till loses power right here, in the middle
            // of the card operation, before anyone sees its outcome.
            POWER_CUT_AT_FAULT.set(false);
            std::panic::resume_unwind(Box::new(PowerCut));
        }
        result
    }
}

thread_local! {
    /// Armed: the till's process dies (unwinds with [`PowerCut`]) at the SPI transaction in
    /// which the last injected fault strikes. Per test thread.
    static POWER_CUT_AT_FAULT: Cell<bool> = const { Cell::new(false) };
}

/// The unwind payload of a power cut at the fault (raised with `resume_unwind`, so no panic
/// message: it is not a failure).
struct PowerCut;

type TillReader = WalletReader<Mfrc522Reader<LeavingSpi>>;

fn cfg() -> WalletConfig {
    WalletConfig::demo()
}

fn uids() -> [CardUid; 2] {
    [
        CardUid::new(&[0x1A, 0x2B, 0x3C, 0x4D]).unwrap(),
        CardUid::new(&[0x04, 0x52, 0x61, 0x7A, 0x8B, 0x9C, 0x80]).unwrap(),
    ]
}

/// A wallet issued through the real driver and emulator, with [`OPENING_FEN`].
fn issued_card(uid: &CardUid) -> EmulatedCard {
    issued_card_holding(uid, Fen::new(OPENING_FEN))
}

/// A wallet issued through the real driver and emulator, holding `opening`.
fn issued_card_holding(uid: &CardUid, opening: Fen) -> EmulatedCard {
    let control = EmulatorControl::new();
    control.place_card(EmulatedCard::blank(uid.as_bytes()).unwrap());
    let reader = Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR).unwrap();
    let mut wallet = WalletReader::new(reader, cfg());
    let image = wallet.issue(CardSerial(20_240_001), opening).unwrap();
    assert_eq!(image.balance, opening);
    control.remove_card().unwrap()
}

/// The card's wallet state decoded straight from its blocks with the layout and the demo keys,
/// without the reader or the wallet's read path. `None`: no valid state.
fn decode(card: &EmulatedCard, uid: &CardUid) -> Option<SlotState> {
    let keys = cfg().master.card_keys(uid);
    let header = decode_header(&card.block(HEADER_BLOCK)?, uid, &keys.mac).ok()?;
    assert_eq!(header.campus, cfg().campus);
    let slots = Slot::BOTH.map(|slot| {
        decode_slot(
            &card.block(slot.block())?,
            slot,
            cfg().campus,
            uid,
            &keys.mac,
        )
        .ok()
    });
    choose_slot(slots[0], slots[1]).ok().map(|(_, state)| state)
}

fn image_of(uid: CardUid, state: &SlotState) -> CardImage {
    CardImage {
        uid,
        balance: state.balance,
        counter: state.counter,
        last_tag: state.tag,
    }
}

/// One till, one card, one emulated reader, and what the test saw.
struct Bench {
    op: Operation,
    uid: CardUid,
    rig: TillRig,
    /// Every record journaled, in order.
    records: Vec<JournalRecord>,
    /// Every wallet state the card went through, decoded after every step.
    history: Vec<SlotState>,
    /// The card's blocks as issued (for the replay check).
    initial: EmulatedCard,
}

fn new_wallet(
    control: &EmulatorControl,
    leave_at: &Rc<Cell<Option<u32>>>,
    taken: &Rc<RefCell<Option<EmulatedCard>>>,
) -> TillReader {
    let spi = LeavingSpi {
        inner: control.device(),
        control: control.clone(),
        leave_at: Rc::clone(leave_at),
        taken: Rc::clone(taken),
    };
    let reader = Mfrc522Reader::new(spi, ReaderOptions::EMULATOR).expect("emulated reader");
    WalletReader::new(reader, cfg())
}

/// The whole till (runtime, sled journal, wallet, driver, emulated chip) with a card on its
/// reader: what every bench below drives.
struct TillRig {
    control: EmulatorControl,
    leave_at: Rc<Cell<Option<u32>>>,
    taken: Rc<RefCell<Option<EmulatedCard>>>,
    wallet: TillReader,
    dir: tempfile::TempDir,
    runtime: Option<TillRuntime>,
    now: Now,
}

impl TillRig {
    fn new(card: EmulatedCard) -> TillRig {
        let control = EmulatorControl::new();
        control.place_card(card);
        let leave_at = Rc::new(Cell::new(None));
        let taken = Rc::new(RefCell::new(None));
        let wallet = new_wallet(&control, &leave_at, &taken);
        let dir = tempfile::tempdir().unwrap();
        let now = Now {
            wall: UnixMillis(1_700_000_000_000),
            mono_ms: 1_000,
        };
        let runtime = TillRuntime::open(dir.path(), TillConfig::default(), now).unwrap();
        TillRig {
            control,
            leave_at,
            taken,
            wallet,
            dir,
            runtime: Some(runtime),
            now,
        }
    }

    fn runtime(&self) -> &TillRuntime {
        self.runtime.as_ref().expect("the till is running")
    }

    /// Both clocks move on by `ms`.
    fn pass(&mut self, ms: u64) {
        self.now.wall = self.now.wall.saturating_add_millis(ms);
        self.now.mono_ms += ms;
    }

    /// Hands `input` to the till at the current instant.
    fn handle(&mut self, input: Input) -> Vec<Output> {
        let now = self.now;
        let runtime = self.runtime.as_mut().expect("the till is running");
        runtime
            .handle(input, now, &mut self.wallet)
            .expect("the journal works")
    }

    fn merchant(&self) -> Vec<String> {
        self.runtime().displays().merchant.lines
    }

    fn customer(&self) -> Vec<String> {
        self.runtime().displays().customer.lines
    }

    fn shows(&self, text: &str) -> bool {
        self.merchant().iter().any(|line| line.contains(text))
    }

    /// Takes the card off the reader (from wherever it is: in the field, taken by a fault, or
    /// taken between exchanges).
    fn lift(&mut self) -> EmulatedCard {
        let card = self
            .control
            .remove_card()
            .or_else(|| self.taken.borrow_mut().take())
            .expect("the card exists");
        self.taken.borrow_mut().take();
        card
    }

    /// The dead reader is repaired (power-cycled and initialised again).
    fn repair_reader(&mut self) {
        self.control.set_reader_dead(None);
        self.wallet = new_wallet(&self.control, &self.leave_at, &self.taken);
    }

    /// Drops the till (process gone) and starts it again from the journal on disk, with a
    /// freshly initialised reader.
    fn reopen(&mut self) {
        self.runtime = None;
        self.wallet = new_wallet(&self.control, &self.leave_at, &self.taken);
        self.now.wall = self.now.wall.saturating_add_millis(STEP_MS);
        let runtime = TillRuntime::open(self.dir.path(), TillConfig::default(), self.now)
            .expect("the till reopens");
        self.runtime = Some(runtime);
    }
}

impl Bench {
    fn new(op: Operation, uid: CardUid, card: &EmulatedCard) -> Bench {
        let first = decode(card, &uid).expect("an issued card decodes");
        Bench {
            op,
            uid,
            rig: TillRig::new(card.clone()),
            records: Vec::new(),
            history: vec![first],
            initial: card.clone(),
        }
    }

    fn journal(&self) -> &Journal {
        self.rig.runtime().journal()
    }

    /// The card wherever it is: in the field, taken by a fault, or taken between exchanges.
    fn card(&self) -> EmulatedCard {
        self.rig
            .control
            .card()
            .or_else(|| self.rig.taken.borrow().clone())
            .expect("the card exists")
    }

    /// Takes the card off the reader (from wherever it is).
    fn lift(&mut self) -> EmulatedCard {
        self.rig.lift()
    }

    /// Lifts the card and puts it back: a fresh tap (a halted card answers only a new field).
    fn replace_card(&mut self) {
        let card = self.lift();
        self.rig.control.place_card(card);
    }

    /// Decodes the card and records its state when it changed.
    fn observe_card(&mut self) {
        if let Some(state) = decode(&self.card(), &self.uid) {
            let last = *self.history.last().expect("starts with the issued state");
            if state != last {
                assert_eq!(
                    Some(state.counter),
                    last.counter.checked_add(1),
                    "the card's counter only steps by one: {last:?} -> {state:?}"
                );
                self.history.push(state);
            }
        } else {
            panic!("the card has no valid wallet state: {:?}", self.history);
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Output> {
        self.rig.pass(STEP_MS);
        self.run(input)
    }

    /// Lets time pass up to exactly `at` (forwards only), then ticks.
    fn tick_at(&mut self, at: UnixMillis) -> Vec<Output> {
        let gap = at.millis_since(self.rig.now.wall);
        assert_eq!(
            self.rig.now.wall.saturating_add_millis(gap),
            at,
            "forwards only"
        );
        self.rig.pass(gap);
        self.run(Input::Tick)
    }

    /// Hands `input` to the till at the current instant.
    fn run(&mut self, input: Input) -> Vec<Output> {
        let outputs = self.rig.handle(input);
        for output in &outputs {
            if let Output::Journaled(record) = output {
                self.records.push(record.clone());
            }
        }
        self.observe_card();
        outputs
    }

    fn keys(&mut self, keys: impl IntoIterator<Item = TillKey>) {
        for key in keys {
            self.feed(Input::Key(key));
        }
    }

    /// Lets every message time out, so the screen shows what the till waits for.
    fn settle_screen(&mut self) {
        self.rig.pass(MESSAGE_SHOW_MS);
        self.feed(Input::Tick);
    }

    fn merchant(&self) -> Vec<String> {
        self.rig.merchant()
    }

    fn customer(&self) -> Vec<String> {
        self.rig.customer()
    }

    fn shows(&self, text: &str) -> bool {
        self.rig.shows(text)
    }

    /// The merchant (debit) types the amount, or staff (load) open the top-up screen from the
    /// idle screen and type it.
    fn start_request(&mut self) {
        match self.op {
            Operation::Debit => {
                self.keys(SALE_KEYS.map(TillKey::Digit));
                self.keys([TillKey::Enter]);
            }
            Operation::Load => {
                self.keys([TillKey::F2, TillKey::Digit(1), TillKey::Digit(7)]);
                self.keys(STAFF_PIN.map(TillKey::Digit));
                self.keys([TillKey::Enter, TillKey::Digit(3)]);
                self.type_load_amount();
            }
        }
    }

    fn type_load_amount(&mut self) {
        self.keys(LOAD_KEYS.map(TillKey::Digit));
        self.keys([TillKey::Enter]);
    }

    /// Reads the card as the till's reader loop does and hands the read to the till. Checks
    /// that a read wallet is exactly what the blocks hold. `None` when no card answered.
    fn tap(&mut self) -> Option<(CardRead, Vec<Output>)> {
        let read = self.rig.wallet.tap()?;
        if let CardRead::Card(image) = read {
            let state = decode(&self.card(), &self.uid).expect("a read card decodes");
            assert_eq!(image, image_of(self.uid, &state), "the tap read the blocks");
        }
        let outputs = self.feed(Input::Card(read));
        Some((read, outputs))
    }

    /// Drops the till (process gone) and starts it again from the journal on disk, with a
    /// freshly initialised reader.
    fn restart(&mut self) {
        let snapshot = self.journal().snapshot().clone();
        self.rig.reopen();
        assert_eq!(
            self.journal().snapshot(),
            &snapshot,
            "the restart lost nothing"
        );
    }

    /// The card pays [`OTHER_TILL_DEBIT_FEN`] at another till (its own reader and wallet).
    fn use_elsewhere(&mut self) {
        let card = self.lift();
        let other = EmulatorControl::new();
        other.place_card(card);
        let reader = Mfrc522Reader::new(other.device(), ReaderOptions::EMULATOR).unwrap();
        let mut wallet = WalletReader::new(reader, cfg());
        let Some(CardRead::Card(image)) = wallet.tap() else {
            panic!("the other till reads the card")
        };
        let write = CardWrite {
            uid: self.uid,
            counter_before: image.counter,
            new_counter: image.counter + 1,
            new_balance: image
                .balance
                .checked_sub(Fen::new(OTHER_TILL_DEBIT_FEN))
                .unwrap(),
            tag: OTHER_TILL_TAG,
        };
        let outcome = pos_firmware::runtime::CardWriter::write_card(&mut wallet, &write);
        assert!(
            matches!(outcome, CardWriteOutcome::Written(_)),
            "{outcome:?}"
        );
        self.rig.control.place_card(other.remove_card().unwrap());
        self.observe_card();
    }

    fn committed_count(&self) -> usize {
        self.records
            .iter()
            .filter(|r| {
                matches!(
                    (self.op, &r.body),
                    (Operation::Debit, RecordBody::SaleCommitted(_))
                        | (Operation::Load, RecordBody::LoadCommitted(_))
                )
            })
            .count()
    }
}

/// An intent as the journal holds it.
#[derive(Debug, Clone, Copy)]
struct IntentPlan {
    op: Operation,
    amount: Fen,
    counter_before: u32,
    balance_before: Fen,
    tag: TxnTag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Committed { balance_after: Fen },
    Aborted,
    InDoubt,
}

/// What the journal says, checked: contiguous seqs from 1, each intent resolved at most once
/// and by a record of its own kind, the snapshot's pending lists equal the unresolved intents.
struct Audit {
    intents: BTreeMap<Seq, IntentPlan>,
    resolutions: BTreeMap<Seq, Resolution>,
    anomalies: usize,
}

fn audit(journal: &Journal, case: &str) -> Audit {
    let mut audit = Audit {
        intents: BTreeMap::new(),
        resolutions: BTreeMap::new(),
        anomalies: 0,
    };
    let mut expected = Seq::FIRST;
    for record in journal.records_from(Seq::FIRST) {
        let record = record.expect("every record decodes");
        assert_eq!(record.seq, expected, "{case}: contiguous seqs");
        expected = record.seq.next().unwrap();
        let plan = |op, amount, card: shared::record::CardDebitPlan| IntentPlan {
            op,
            amount,
            counter_before: card.counter_before,
            balance_before: card.balance_before,
            tag: card.tag,
        };
        let resolved = match record.body {
            RecordBody::SaleIntent(sale) => {
                audit
                    .intents
                    .insert(record.seq, plan(Operation::Debit, sale.amount, sale.card));
                None
            }
            RecordBody::LoadIntent(load) => {
                audit
                    .intents
                    .insert(record.seq, plan(Operation::Load, load.amount, load.card));
                None
            }
            RecordBody::SaleCommitted(s) => Some((
                Operation::Debit,
                s.intent,
                Resolution::Committed {
                    balance_after: s.balance_after,
                },
            )),
            RecordBody::SaleAborted(s) => Some((Operation::Debit, s.intent, Resolution::Aborted)),
            RecordBody::SaleInDoubt(s) => Some((Operation::Debit, s.intent, Resolution::InDoubt)),
            RecordBody::LoadCommitted(l) => Some((
                Operation::Load,
                l.intent,
                Resolution::Committed {
                    balance_after: l.balance_after,
                },
            )),
            RecordBody::LoadAborted(l) => Some((Operation::Load, l.intent, Resolution::Aborted)),
            RecordBody::LoadInDoubt(l) => Some((Operation::Load, l.intent, Resolution::InDoubt)),
            RecordBody::CardAnomaly(_) => {
                audit.anomalies += 1;
                None
            }
            _ => None,
        };
        if let Some((op, intent, resolution)) = resolved {
            let plan = audit.intents.get(&intent);
            assert_eq!(
                plan.map(|p| p.op),
                Some(op),
                "{case}: {} resolves intent {intent} of its own kind",
                record.seq
            );
            assert!(
                audit.resolutions.insert(intent, resolution).is_none(),
                "{case}: intent {intent} resolved twice"
            );
        }
    }
    let unresolved: BTreeSet<Seq> = audit
        .intents
        .keys()
        .filter(|seq| !audit.resolutions.contains_key(seq))
        .copied()
        .collect();
    let snapshot = journal.snapshot();
    let pending: BTreeSet<Seq> = snapshot
        .pending
        .iter()
        .map(|p| p.intent)
        .chain(snapshot.pending_loads.iter().map(|p| p.intent))
        .collect();
    assert_eq!(pending, unresolved, "{case}: snapshot pending lists");
    assert_eq!(snapshot.next_seq, expected, "{case}: snapshot next seq");
    audit
}

/// How the intent of the faulted tap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstOutcome {
    /// The fault struck before any intent (the tap failed): nothing to settle.
    NoIntent,
    CommittedAtOnce,
    /// Unresolved after the fault; at the re-tap the card showed the write: committed.
    RecoveredFound,
    /// Unresolved after the fault; at the re-tap the card was unchanged: written again, committed.
    RecoveredRewritten,
    /// The write was refused (nothing sent): aborted at once, the re-tap paid.
    Aborted,
    /// Unresolved, the till restarted (the sale was gone), the card unchanged: aborted at the
    /// re-tap, the merchant sold again.
    AbortedAtRetap,
    InDoubtLanded,
    InDoubtNotLanded,
}

#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    restarts: u64,
    power_cuts: u64,
    by_outcome: BTreeMap<String, u64>,
    used_elsewhere: u64,
    replays_refused: u64,
}

/// One case, start to end.
#[derive(Debug, Clone)]
struct Case {
    op: Operation,
    uid: CardUid,
    injection: Injection,
    restart: bool,
    /// The till's power is cut at the fault itself, in the middle of the card operation: its
    /// process state (screen, mode, the outcome of the write) is gone and it restarts from the
    /// journal (implies `restart`). Only for faults that strike after the tap was read.
    power_cut: bool,
    next: NextTap,
}

/// The counters of a fault-free (or faulted) tap: at the tap's start, after the read, after the
/// write.
#[derive(Debug, Clone, Copy)]
struct DryRun {
    tap: OpCounters,
    write: OpCounters,
}

/// One fault at one operation.
fn single_fault(fault: Fault) -> Injection {
    Injection {
        faults: vec![fault],
        leave_after_exchanges: None,
    }
}

/// Every single fault over the operations counted in `all`: each write × each write fault,
/// each authentication failing, each read removed or corrupted, the reader dying (reading as
/// each of `dead_reads_as`) at each operation, and the card leaving after each exchange.
fn every_single_fault(all: &OpCounters, dead_reads_as: &[u8]) -> Vec<Injection> {
    let mut out = Vec::new();
    for write_index in 0..all.writes {
        for fault in WriteFault::ALL {
            out.push(single_fault(Fault::Write { write_index, fault }));
        }
    }
    for auth_index in 0..all.auths {
        out.push(single_fault(Fault::AuthFails { auth_index }));
    }
    for read_index in 0..all.reads {
        for fault in [ReadFault::Removed, ReadFault::CorruptedCrc] {
            out.push(single_fault(Fault::Read { read_index, fault }));
        }
    }
    for (op, count) in [
        (Op::Auth, all.auths),
        (Op::Read, all.reads),
        (Op::Write, all.writes),
    ] {
        for index in 0..count {
            for &reads_as in dead_reads_as {
                out.push(single_fault(Fault::ReaderDies {
                    op,
                    index,
                    reads_as,
                }));
            }
        }
    }
    for n in 1..exchanges(all) {
        out.push(Injection {
            faults: Vec::new(),
            leave_after_exchanges: Some(n),
        });
    }
    out
}

fn delta(from: &OpCounters, to: &OpCounters) -> OpCounters {
    OpCounters {
        auths: to.auths - from.auths,
        reads: to.reads - from.reads,
        writes: to.writes - from.writes,
        selects: to.selects - from.selects,
        halts: to.halts - from.halts,
        spi_transactions: to.spi_transactions - from.spi_transactions,
    }
}

/// What the faulted tap left: the bench (for the rest of the case), the op counts of the tap
/// and of the whole tap + write (relative to the tap's start), what the till was handed and
/// answered, and whether every injected fault struck.
struct Faulted {
    bench: Bench,
    counts: DryRun,
    tapped: Option<(CardRead, Vec<Output>)>,
    struck: bool,
    /// The power was cut at the fault (only with `case.power_cut`, for a fault after the tap).
    power_cut: bool,
}

fn faulted_tap(case: &Case, card: &EmulatedCard) -> Faulted {
    let mut bench = Bench::new(case.op, case.uid, card);
    bench.start_request();
    let base = bench.rig.control.counters();
    for fault in &case.injection.faults {
        bench.rig.control.inject(shifted(*fault, &base));
    }
    if let Some(n) = case.injection.leave_after_exchanges {
        bench.rig.leave_at.set(Some(exchanges(&base) + n));
    }
    let read = bench.rig.wallet.tap();
    let after_tap = bench.rig.control.counters();
    let still_to_strike =
        !bench.rig.control.pending_faults().is_empty() || bench.rig.leave_at.get().is_some();
    POWER_CUT_AT_FAULT.set(case.power_cut && still_to_strike);
    let mut power_cut = false;
    let result = read.map(|read| {
        if let CardRead::Card(image) = read {
            let state = decode(&bench.card(), &bench.uid).expect("a read card decodes");
            assert_eq!(image, image_of(bench.uid, &state));
        }
        let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            bench.feed(Input::Card(read))
        }));
        let outputs = match fed {
            Ok(outputs) => outputs,
            Err(payload) if payload.is::<PowerCut>() => {
                // The outputs of the input died with the process: what is durable is what
                // the journal holds.
                power_cut = true;
                bench.records = bench
                    .journal()
                    .records_from(Seq::FIRST)
                    .map(|r| r.expect("every record decodes"))
                    .collect();
                bench.observe_card();
                Vec::new()
            }
            Err(payload) => std::panic::resume_unwind(payload),
        };
        (read, outputs)
    });
    POWER_CUT_AT_FAULT.set(false);
    let after_write = bench.rig.control.counters();
    let struck =
        bench.rig.control.pending_faults().is_empty() && bench.rig.leave_at.get().is_none();
    bench.rig.leave_at.set(None);
    bench.rig.control.clear_faults();
    Faulted {
        bench,
        counts: DryRun {
            tap: delta(&base, &after_tap),
            write: delta(&base, &after_write),
        },
        tapped: result,
        struck,
        power_cut,
    }
}

fn run_case(case: &Case, card: &EmulatedCard, tally: &mut Tally) {
    let name = format!("{case:?}");
    let name = name.as_str();
    let op = case.op;
    let Faulted {
        mut bench,
        tapped,
        struck,
        power_cut,
        ..
    } = faulted_tap(case, card);
    assert!(
        struck,
        "{name}: the fault must strike (enumerated from a dry run)"
    );
    if case.power_cut && !power_cut {
        return; // the fault struck in the tap, before the till had anything to lose
    }
    assert!(
        !power_cut || case.restart,
        "{name}: a power cut restarts the till"
    );
    // A dead reader is power-cycled by whoever comes to look at the till.
    bench.rig.control.set_reader_dead(None);

    // What the merchant sees right after the fault.
    let first_intent = bench.records.iter().find_map(|r| match r.body {
        RecordBody::SaleIntent(_) | RecordBody::LoadIntent(_) => Some(r.seq),
        _ => None,
    });
    let state_after_fault = *bench.history.last().unwrap();
    let initial_state = bench.history[0];
    let committed_now = bench.committed_count();
    let (ok_text, failed_text, retry_text) = match op {
        Operation::Debit => ("交易成功", "写卡失败 未扣款", "请重新刷卡"),
        Operation::Load => ("充值成功", "写卡失败 未充值", "充值未完成 请重新刷卡"),
    };
    assert!(
        power_cut || bench.shows(ok_text) == (committed_now == 1),
        "{name}: success is shown exactly when committed: {:?}",
        bench.merchant()
    );
    let beeps: Vec<Beep> = tapped
        .iter()
        .flat_map(|(_, outputs)| outputs.iter())
        .filter_map(|o| match o {
            Output::Beep(beep) => Some(*beep),
            _ => None,
        })
        .collect();
    let mut resolved_at_fault = false;
    let landed_at_fault = match first_intent {
        None if power_cut => panic!("{name}: a power cut after the tap cuts a written intent"),
        None => {
            // The tap failed before the till decided anything: the card is untouched.
            assert_eq!(bench.history.len(), 1, "{name}: no intent, no write");
            let reader_died = case
                .injection
                .faults
                .iter()
                .any(|f| matches!(f, Fault::ReaderDies { .. }));
            let reader_fault = matches!(
                tapped,
                Some((CardRead::Unreadable(CardProblem::ReaderFault), _))
            );
            assert_eq!(
                reader_fault,
                reader_died && tapped.is_some(),
                "{name}: a dead reader at the tap, and only that, is a reader fault: {tapped:?}"
            );
            if reader_fault {
                assert!(
                    bench.shows("读卡器故障") && bench.shows("请联系维护"),
                    "{name}: {:?}",
                    bench.merchant()
                );
                assert_eq!(bench.customer()[0], "读卡器故障", "{name}");
            } else {
                assert!(
                    tapped.is_none()
                        || bench.shows("读卡失败")
                        || bench.shows("卡片密钥错误")
                        || bench.shows("卡片数据校验失败"),
                    "{name}: a failed tap says so: {:?}",
                    bench.merchant()
                );
            }
            false
        }
        Some(intent) => {
            let resolved = bench.records.iter().any(|r| match r.body {
                RecordBody::SaleCommitted(s) => s.intent == intent,
                RecordBody::SaleAborted(s) => s.intent == intent,
                RecordBody::LoadCommitted(l) => l.intent == intent,
                RecordBody::LoadAborted(l) => l.intent == intent,
                _ => false,
            });
            resolved_at_fault = resolved;
            if power_cut {
                // Cut before the outcome was handled: nothing settled, whatever the card holds.
                assert!(
                    !resolved && committed_now == 0,
                    "{name}: {:#?}",
                    bench.records
                );
            } else if committed_now == 1 {
                assert_eq!(beeps, vec![Beep::Success], "{name}");
            } else if resolved {
                // Refused: nothing was sent, the card is byte-identical.
                assert_eq!(bench.card().block(5), card.block(5), "{name}");
                assert_eq!(bench.card().block(6), card.block(6), "{name}");
                assert!(bench.shows(failed_text), "{name}: {:?}", bench.merchant());
                assert!(bench.shows("请重新刷卡"), "{name}: {:?}", bench.merchant());
            } else {
                assert!(bench.shows(retry_text), "{name}: {:?}", bench.merchant());
                assert_eq!(
                    bench.customer()[0],
                    "请重新刷卡",
                    "{name}: the payer is asked too"
                );
                assert_eq!(beeps, vec![Beep::Error], "{name}");
            }
            state_after_fault != initial_state
        }
    };
    // Whatever happened, the card holds exactly the old or exactly the new state.
    assert!(bench.history.len() <= 2, "{name}: {:?}", bench.history);

    // Between the fault and the next tap.
    if case.next == NextTap::UsedElsewhere {
        bench.use_elsewhere();
        tally.used_elsewhere += 1;
    }
    if case.restart {
        bench.restart();
        tally.restarts += 1;
        tally.power_cuts += u64::from(power_cut);
        if bench.journal().snapshot().pending.len() + bench.journal().snapshot().pending_loads.len()
            > 0
        {
            assert!(
                bench.shows("有未完成交易待核对"),
                "{name}: {:?}",
                bench.merchant()
            );
        }
    }

    // Put the card back and do what the till asks until the money moved.
    let mut steps = 0;
    while bench.committed_count() == 0 {
        steps += 1;
        assert!(
            steps <= FOLLOW_STEPS_MAX,
            "{name}: the till never took the money: {:?}\n{:#?}",
            bench.merchant(),
            bench.records
        );
        bench.settle_screen();
        if bench.shows("请输入金额") {
            bench.start_request();
        } else if bench.shows("充值金额") {
            bench.type_load_amount();
        } else if bench.shows("请刷卡") || bench.shows("请重新刷卡") {
            bench.replace_card();
            bench.tap().expect("the card answers");
        } else {
            panic!("{name}: what does the till want? {:?}", bench.merchant());
        }
    }
    assert_eq!(bench.committed_count(), 1, "{name}: exactly one {op:?}");

    // The card against the journal.
    let journal_audit = audit(bench.journal(), name);
    assert!(
        journal_audit.resolutions.len() == journal_audit.intents.len(),
        "{name}: nothing left unresolved: {:#?}",
        bench.records
    );
    let on_card = |plan: &IntentPlan| {
        let after = plan.op.after(plan.balance_before);
        bench.history.iter().any(|s| {
            Some(s.counter) == plan.counter_before.checked_add(1)
                && s.tag == plan.tag
                && Some(s.balance) == after
        })
    };
    let mut expected_change: i64 = 0;
    let sign = |op: Operation| match op {
        Operation::Debit => -1,
        Operation::Load => 1,
    };
    let mut first_outcome = FirstOutcome::NoIntent;
    for (seq, plan) in &journal_audit.intents {
        let resolution = journal_audit.resolutions[seq];
        let landed = on_card(plan);
        let amount = i64::try_from(plan.amount.get()).unwrap();
        match resolution {
            Resolution::Committed { balance_after } => {
                assert!(landed, "{name}: intent {seq} committed but not on the card");
                assert_eq!(Some(balance_after), plan.op.after(plan.balance_before));
                expected_change += sign(plan.op) * amount;
            }
            Resolution::Aborted => {
                assert!(!landed, "{name}: intent {seq} aborted but on the card");
            }
            Resolution::InDoubt => {
                assert_eq!(
                    case.next,
                    NextTap::UsedElsewhere,
                    "{name}: in doubt only when the card moved on"
                );
                if landed {
                    expected_change += sign(plan.op) * amount;
                }
            }
        }
        if Some(*seq) == first_intent {
            first_outcome = match resolution {
                Resolution::Committed { .. } if committed_now == 1 => FirstOutcome::CommittedAtOnce,
                Resolution::Committed { .. } if landed_at_fault => FirstOutcome::RecoveredFound,
                Resolution::Committed { .. } => FirstOutcome::RecoveredRewritten,
                Resolution::Aborted if resolved_at_fault => FirstOutcome::Aborted,
                Resolution::Aborted => FirstOutcome::AbortedAtRetap,
                Resolution::InDoubt if landed => FirstOutcome::InDoubtLanded,
                Resolution::InDoubt => FirstOutcome::InDoubtNotLanded,
            };
        }
    }
    // The rule the till follows, per case: what decides how the faulted intent ends.
    let expected_outcome = match first_intent {
        None => FirstOutcome::NoIntent,
        Some(_) if committed_now == 1 => FirstOutcome::CommittedAtOnce,
        Some(_) if resolved_at_fault => FirstOutcome::Aborted,
        // The card moved on: only the server can tell (and whether our write is under the
        // other till's is counted as landed / not landed).
        Some(_) if case.next == NextTap::UsedElsewhere && landed_at_fault => {
            FirstOutcome::InDoubtLanded
        }
        Some(_) if case.next == NextTap::UsedElsewhere => FirstOutcome::InDoubtNotLanded,
        Some(_) if landed_at_fault => FirstOutcome::RecoveredFound,
        // After a restart the sale is gone: an unchanged card aborts it, the merchant sells
        // again. The top-up screen resumes its load (the cash was taken).
        Some(_) if case.restart && op == Operation::Debit => FirstOutcome::AbortedAtRetap,
        Some(_) => FirstOutcome::RecoveredRewritten,
    };
    assert_eq!(
        first_outcome, expected_outcome,
        "{name}: {:#?}",
        bench.records
    );
    if case.next == NextTap::UsedElsewhere {
        expected_change -= i64::try_from(OTHER_TILL_DEBIT_FEN).unwrap();
    }
    let final_state = decode(&bench.card(), &bench.uid).unwrap();
    for block in [HEADER_BLOCK, TRAILER_BLOCK] {
        assert_eq!(
            bench.card().block(block),
            card.block(block),
            "{name}: only the state slots are ever written"
        );
    }
    let change = i64::try_from(final_state.balance.get()).unwrap()
        - i64::try_from(initial_state.balance.get()).unwrap();
    assert_eq!(
        change, expected_change,
        "{name}: money conservation: {:?}",
        bench.history
    );
    // Our writes on the card: the committed one and the landed in-doubt ones, nothing else.
    let ours = journal_audit
        .intents
        .values()
        .filter(|p| on_card(p))
        .count();
    let elsewhere = usize::from(case.next == NextTap::UsedElsewhere);
    assert_eq!(
        bench.history.len() - 1,
        ours + elsewhere,
        "{name}: {:?}",
        bench.history
    );
    if std::env::var_os("CARD_FAULTS_TRACE").is_some() {
        println!("{first_outcome:?} <- {name}");
    }
    *tally
        .by_outcome
        .entry(format!("{first_outcome:?}"))
        .or_default() += 1;

    // Replay: the card's issued blocks written back after a committed debit are refused.
    if op == Operation::Debit {
        let intents_before = journal_audit.intents.len();
        let anomalies_before = journal_audit.anomalies;
        let mut restored = bench.lift();
        for block in [5, 6] {
            restored
                .set_block(block, bench.initial.block(block).unwrap())
                .unwrap();
        }
        bench.rig.control.place_card(restored.clone());
        bench.history = vec![decode(&restored, &bench.uid).unwrap()];
        if case.restart {
            bench.restart();
        }
        bench.settle_screen();
        bench.start_request();
        bench.tap().expect("the restored card answers");
        assert!(
            bench.shows("卡片数据异常"),
            "{name}: {:?}",
            bench.merchant()
        );
        let after = audit(bench.journal(), name);
        assert_eq!(
            after.intents.len(),
            intents_before,
            "{name}: no intent for a replay"
        );
        assert_eq!(after.anomalies, anomalies_before + 1, "{name}: CardAnomaly");
        for block in HEADER_BLOCK..=TRAILER_BLOCK {
            assert_eq!(bench.card().block(block), restored.block(block), "{name}");
        }
        tally.replays_refused += 1;
    }
    tally.cases += 1;
}

/// The fault-free dry run of an operation on a card: how many of each operation the tap and
/// the write make.
fn dry_run(op: Operation, uid: CardUid, card: &EmulatedCard) -> DryRun {
    let case = Case {
        op,
        uid,
        injection: Injection::default(),
        restart: false,
        power_cut: false,
        next: NextTap::Same,
    };
    let run = faulted_tap(&case, card);
    assert_eq!(
        run.bench.committed_count(),
        1,
        "the dry run commits at once"
    );
    run.counts
}

/// Every injection for an operation whose fault-free tap + write makes `counts.write`
/// operations, of which `counts.tap` in the tap.
fn injections(op: Operation, uid: CardUid, card: &EmulatedCard, counts: &DryRun) -> Vec<Injection> {
    let all = counts.write;
    let single = single_fault;
    let mut out = every_single_fault(&all, &[0x00, 0xFF]);
    // A garbled read in the write phase sends the wallet to a fresh select + authentication:
    // strike every authentication and read that path adds.
    for read_index in counts.tap.reads..all.reads {
        let opener = Fault::Read {
            read_index,
            fault: ReadFault::CorruptedCrc,
        };
        let case = Case {
            op,
            uid,
            injection: single(opener),
            restart: false,
            power_cut: false,
            next: NextTap::Same,
        };
        let path = faulted_tap(&case, card).counts;
        let with = |fault| Injection {
            faults: vec![opener, fault],
            leave_after_exchanges: None,
        };
        for auth_index in all.auths..path.write.auths {
            out.push(with(Fault::AuthFails { auth_index }));
            out.push(with(Fault::ReaderDies {
                op: Op::Auth,
                index: auth_index,
                reads_as: 0x00,
            }));
        }
        for later in read_index + 1..path.write.reads {
            for fault in [ReadFault::Removed, ReadFault::CorruptedCrc] {
                out.push(with(Fault::Read {
                    read_index: later,
                    fault,
                }));
            }
        }
    }
    out
}

#[test]
fn every_card_fault_settles_to_exactly_one_debit_or_load() {
    let mut tally = Tally::default();
    let mut minimum = 0u64;
    for uid in uids() {
        let card = issued_card(&uid);
        for op in [Operation::Debit, Operation::Load] {
            let counts = dry_run(op, uid, &card);
            assert_eq!(
                counts.write.writes, 1,
                "{op:?}: one block write, the commit point"
            );
            let injections = injections(op, uid, &card, &counts);
            // At least every write fault, every auth, both read faults at every read and the
            // card leaving after every exchange, each with and without a restart and with the
            // card coming straight back or used elsewhere first.
            let all = counts.write;
            minimum += 4 * u64::from(
                all.writes * WriteFault::ALL.len() as u32
                    + all.auths
                    + 2 * all.reads
                    + exchanges(&all)
                    - 1,
            );
            for injection in injections {
                for (restart, power_cut) in [(false, false), (true, false), (true, true)] {
                    for next in [NextTap::Same, NextTap::UsedElsewhere] {
                        let case = Case {
                            op,
                            uid,
                            injection: injection.clone(),
                            restart,
                            power_cut,
                            next,
                        };
                        run_case(&case, &card, &mut tally);
                    }
                }
            }
        }
    }
    let outcome = |name: &str| tally.by_outcome.get(name).copied().unwrap_or(0);
    println!(
        "card faults: {} cases: {} committed at once, {} recovered at re-tap ({} found on the \
         card, {} written again), {} aborted ({} at once, {} at the re-tap after a restart), \
         {} in doubt (used elsewhere: {} with our write under the other till's, {} without), \
         {} taps failed before any intent; restarts {} ({} of them power cuts at the fault), \
         used elsewhere {}, replays refused {}",
        tally.cases,
        outcome("CommittedAtOnce"),
        outcome("RecoveredFound") + outcome("RecoveredRewritten"),
        outcome("RecoveredFound"),
        outcome("RecoveredRewritten"),
        outcome("Aborted") + outcome("AbortedAtRetap"),
        outcome("Aborted"),
        outcome("AbortedAtRetap"),
        outcome("InDoubtLanded") + outcome("InDoubtNotLanded"),
        outcome("InDoubtLanded"),
        outcome("InDoubtNotLanded"),
        outcome("NoIntent"),
        tally.restarts,
        tally.power_cuts,
        tally.used_elsewhere,
        tally.replays_refused,
    );
    assert!(tally.power_cuts > 0, "the power-cut family must run");
    assert!(
        tally.cases >= minimum,
        "the enumeration shrank: {} cases, at least {minimum} expected from the dry runs",
        tally.cases
    );
    for name in [
        "NoIntent",
        "CommittedAtOnce",
        "RecoveredFound",
        "RecoveredRewritten",
        "Aborted",
        "AbortedAtRetap",
        "InDoubtLanded",
        "InDoubtNotLanded",
    ] {
        assert!(outcome(name) > 0, "no case ended {name}");
    }
}

/// Regression (driver): a read garbled in the write phase while the card stays in the field
/// used to end the sale on "tap again" (and, before the write, to refuse it), because the
/// wallet's fresh select never found the card still selected from the broken session. Every
/// such read now goes on in a fresh session and the money moves at once.
#[test]
fn a_garbled_read_in_the_write_phase_still_commits_at_once() {
    let mut cases = 0;
    for uid in uids() {
        let card = issued_card(&uid);
        for op in [Operation::Debit, Operation::Load] {
            let counts = dry_run(op, uid, &card);
            for read_index in counts.tap.reads..counts.write.reads {
                let case = Case {
                    op,
                    uid,
                    injection: Injection {
                        faults: vec![Fault::Read {
                            read_index,
                            fault: ReadFault::CorruptedCrc,
                        }],
                        leave_after_exchanges: None,
                    },
                    restart: false,
                    power_cut: false,
                    next: NextTap::Same,
                };
                let run = faulted_tap(&case, &card);
                assert!(run.struck, "{case:?}");
                assert_eq!(run.bench.committed_count(), 1, "{case:?}");
                assert!(
                    run.counts.write.auths > counts.write.auths,
                    "{case:?}: a fresh session"
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 0);
}

/// Whether the journal's last commit of `op` says `recovered` (settled from a later read).
fn last_commit_recovered(bench: &Bench) -> Option<bool> {
    bench
        .records
        .iter()
        .rev()
        .find_map(|r| match (&bench.op, &r.body) {
            (Operation::Debit, RecordBody::SaleCommitted(s)) => Some(s.recovered),
            (Operation::Load, RecordBody::LoadCommitted(l)) => Some(l.recovered),
            _ => None,
        })
}

fn unresolved(bench: &Bench) -> usize {
    let snapshot = bench.journal().snapshot();
    snapshot.pending.len() + snapshot.pending_loads.len()
}

/// The reader chip itself failing is not a bad tap: the merchant is told to call maintenance
/// (not to tap again), nothing is journaled, and a write the dying reader interrupted after the
/// data went out stays unresolved — the till never aborts it on a dead reader's word — until
/// the repaired reader reads the card and the money moves exactly once.
#[test]
fn a_dead_reader_is_a_reader_fault_and_never_settles_a_write_blindly() {
    let mut cases = 0;
    for uid in uids() {
        let card = issued_card(&uid);
        for op in [Operation::Debit, Operation::Load] {
            for reads_as in [0x00, 0xFF] {
                // Dead before the tap.
                let mut bench = Bench::new(op, uid, &card);
                bench.start_request();
                bench.rig.control.set_reader_dead(Some(reads_as));
                let journaled = bench.records.len();
                let (read, _) = bench
                    .tap()
                    .expect("a dead reader reports an error, not silence");
                assert_eq!(read, CardRead::Unreadable(CardProblem::ReaderFault));
                assert!(
                    bench.shows("读卡器故障") && bench.shows("请联系维护"),
                    "{op:?}: {:?}",
                    bench.merchant()
                );
                assert!(!bench.shows("请重新刷卡"), "{:?}", bench.merchant());
                assert_eq!(bench.customer()[0], "读卡器故障");
                assert_eq!(bench.records.len(), journaled, "{op:?}: nothing journaled");
                // Repaired (power-cycled and initialised again): the waiting request pays once.
                bench.rig.repair_reader();
                bench.settle_screen();
                bench.replace_card();
                bench.tap().expect("the card answers");
                assert_eq!(bench.committed_count(), 1, "{op:?}: {:#?}", bench.records);
                assert_eq!(last_commit_recovered(&bench), Some(false));

                // Dies after the data reached the card, before its ACK.
                let mut bench = Bench::new(op, uid, &card);
                bench.start_request();
                let writes = bench.rig.control.counters().writes;
                bench.rig.control.inject(Fault::Write {
                    write_index: writes,
                    fault: WriteFault::ReaderDiesAfterData,
                });
                bench.tap().expect("the card answers the tap");
                assert!(
                    bench.rig.control.pending_faults().is_empty(),
                    "the fault struck"
                );
                assert_eq!(bench.committed_count(), 0, "{op:?}");
                assert_eq!(
                    unresolved(&bench),
                    1,
                    "{op:?}: outcome unknown, kept unresolved"
                );
                assert_eq!(audit(bench.journal(), "reader dies").resolutions.len(), 0);
                // Tapped again while the reader is still dead: a reader fault, still unresolved.
                bench.settle_screen();
                bench.replace_card();
                let (read, _) = bench.tap().expect("a dead reader reports an error");
                assert_eq!(read, CardRead::Unreadable(CardProblem::ReaderFault));
                assert!(bench.shows("读卡器故障"), "{:?}", bench.merchant());
                assert_eq!(
                    unresolved(&bench),
                    1,
                    "{op:?}: a dead reader settles nothing"
                );
                // Repaired: the card shows the write, which is committed once, as recovered.
                bench.rig.repair_reader();
                bench.settle_screen();
                bench.replace_card();
                bench.tap().expect("the card answers");
                assert_eq!(bench.committed_count(), 1, "{op:?}: {:#?}", bench.records);
                assert_eq!(last_commit_recovered(&bench), Some(true));
                assert_eq!(unresolved(&bench), 0);
                let audit = audit(bench.journal(), "reader dies");
                assert_eq!(audit.intents.len(), 1, "{op:?}: written once, never again");
                let state = decode(&bench.card(), &uid).unwrap();
                assert_eq!(
                    Some(state.balance),
                    op.after(Fen::new(OPENING_FEN)),
                    "{op:?}"
                );
                assert_eq!(state.counter, 1, "{op:?}: one write on the card");
                cases += 1;
            }
        }
    }
    println!("dead reader: {cases} cases");
    assert_eq!(cases, 8);
}

/// The two balance limits: the card centre's policy (`MAX_CARD_BALANCE`, ¥1,000) holds top-ups
/// only; a MAC-valid card above it (below the format's ceiling) pays as usual and takes no load.
#[test]
fn a_card_above_the_policy_cap_pays_but_takes_no_top_up() {
    let above = MAX_CARD_BALANCE.checked_add(Fen::from_yuan(500)).unwrap();
    assert!(
        above.get() <= CARD_FORMAT_MAX_BALANCE_FEN,
        "a valid card format-wise"
    );
    let load = Operation::Load.amount();
    let at_cap_after_load = MAX_CARD_BALANCE.checked_sub(load).unwrap();
    let one_fen_over = at_cap_after_load.checked_add(Fen::new(1)).unwrap();
    for uid in uids() {
        let card = issued_card_holding(&uid, above);
        let mut bench = Bench::new(Operation::Debit, uid, &card);
        bench.start_request();
        bench.tap().expect("the card answers");
        assert_eq!(bench.committed_count(), 1, "{:?}", bench.merchant());
        let state = decode(&bench.card(), &uid).unwrap();
        assert_eq!(Some(state.balance), Operation::Debit.after(above));

        for (opening, loads) in [
            (above, false),
            (one_fen_over, false),
            (at_cap_after_load, true),
        ] {
            let card = issued_card_holding(&uid, opening);
            let mut bench = Bench::new(Operation::Load, uid, &card);
            bench.start_request();
            let journaled = bench.records.len();
            bench.tap().expect("the card answers");
            let state = decode(&bench.card(), &uid).unwrap();
            if loads {
                assert_eq!(
                    bench.committed_count(),
                    1,
                    "{opening}: {:?}",
                    bench.merchant()
                );
                assert_eq!(
                    state.balance, MAX_CARD_BALANCE,
                    "loaded up to the cap exactly"
                );
            } else {
                assert!(
                    bench.shows("充值后超过上限 ¥1000.00"),
                    "{opening}: {:?}",
                    bench.merchant()
                );
                assert_eq!(bench.records.len(), journaled, "{opening}: no intent");
                assert_eq!(
                    (state.balance, state.counter),
                    (opening, 0),
                    "card untouched"
                );
            }
        }
    }
}

/// The in-doubt records of the journal: (intent, reason).
fn in_doubt_records(bench: &Bench) -> Vec<(Seq, InDoubtReason)> {
    bench
        .records
        .iter()
        .filter_map(|r| match r.body {
            RecordBody::SaleInDoubt(d) => Some((d.intent, d.reason)),
            RecordBody::LoadInDoubt(d) => Some((d.intent, d.reason)),
            _ => None,
        })
        .collect()
}

/// A torn debit or top-up whose card never comes back: at exactly `UNRESOLVED_MAX_AGE_MS` after
/// its intent (not a millisecond before) it goes to the server in doubt (`CardNeverReturned`)
/// and leaves the status line's 待核 count. What then happens when the card does come back,
/// after all: the till has handed the intent to the server and does not reopen it — the card's
/// tap is an ordinary tap, nothing is debited or loaded again, and its next transaction here
/// records the card's counter, from which the server settles the in-doubt record (counter one
/// up with the intent's tag: it happened; unchanged: it did not). The journal and the card
/// agree throughout.
#[test]
fn a_card_that_never_returns_goes_in_doubt_after_the_age_limit_and_is_not_charged_again() {
    let mut cases = 0;
    let uid = uids()[0];
    let card = issued_card(&uid);
    for op in [Operation::Debit, Operation::Load] {
        for (fault, landed) in [
            (WriteFault::RemovedAfterData, true),
            (WriteFault::RemovedAfterCommand, false),
        ] {
            for restart in [false, true] {
                let name = format!("{op:?} {fault:?} restart={restart}");
                let mut bench = Bench::new(op, uid, &card);
                bench.start_request();
                let writes = bench.rig.control.counters().writes;
                bench.rig.control.inject(Fault::Write {
                    write_index: writes,
                    fault,
                });
                bench.tap().expect("the card answers the tap");
                let intent = bench
                    .records
                    .iter()
                    .find(|r| {
                        matches!(
                            r.body,
                            RecordBody::SaleIntent(_) | RecordBody::LoadIntent(_)
                        )
                    })
                    .cloned()
                    .expect("an intent");
                assert_eq!(unresolved(&bench), 1, "{name}");
                assert!(bench.merchant()[0].contains("待核1"), "{name}");
                // The card leaves for good; the merchant (or a restart) leaves the retry screen,
                // whose own intent never expires while it is up.
                // (Kept where the bench still decodes it, out of the reader's field.)
                let away = bench.lift();
                *bench.rig.taken.borrow_mut() = Some(away);
                if restart {
                    bench.restart();
                } else {
                    bench.keys([TillKey::Clear]);
                    bench.settle_screen();
                }
                let deadline = intent.at.saturating_add_millis(UNRESOLVED_MAX_AGE_MS);
                bench.tick_at(UnixMillis(deadline.0 - 1));
                assert_eq!(unresolved(&bench), 1, "{name}: not a millisecond early");
                assert!(in_doubt_records(&bench).is_empty(), "{name}");
                bench.tick_at(deadline);
                assert_eq!(
                    in_doubt_records(&bench),
                    vec![(intent.seq, InDoubtReason::CardNeverReturned)],
                    "{name}"
                );
                assert_eq!(unresolved(&bench), 0, "{name}");
                assert!(
                    !bench.merchant()[0].contains("待核"),
                    "{name}: {:?}",
                    bench.merchant()
                );
                let card_then = decode(&bench.card(), &uid).unwrap();
                assert_eq!(card_then.counter, u32::from(landed), "{name}");

                // The card comes back: an ordinary tap, nothing journaled, nothing written.
                let back = bench.lift();
                bench.rig.control.place_card(back);
                bench.settle_screen();
                let journaled = bench.records.len();
                bench.tap().expect("the card answers");
                assert_eq!(
                    bench.records.len(),
                    journaled,
                    "{name}: {:#?}",
                    bench.records
                );
                assert_eq!(decode(&bench.card(), &uid), Some(card_then), "{name}");
                // Its next transaction here moves the money once, from the card as it is.
                bench.settle_screen();
                if bench.shows("充值金额") || bench.shows("请先退出") {
                    bench.type_load_amount();
                } else if !bench.shows("请刷卡") {
                    bench.start_request();
                }
                bench.settle_screen();
                bench.replace_card();
                bench.tap().expect("the card answers");
                assert_eq!(bench.committed_count(), 1, "{name}: {:?}", bench.merchant());
                let journal_audit = audit(bench.journal(), &name);
                assert_eq!(journal_audit.intents.len(), 2, "{name}");
                assert_eq!(
                    journal_audit.resolutions[&intent.seq],
                    Resolution::InDoubt,
                    "{name}"
                );
                let (second, plan) = journal_audit.intents.iter().last().unwrap();
                assert!(
                    matches!(
                        journal_audit.resolutions[second],
                        Resolution::Committed { .. }
                    ),
                    "{name}"
                );
                // What the server settles the in-doubt record from: the chain of counters.
                assert_eq!(plan.counter_before, u32::from(landed), "{name}");
                assert_eq!(plan.balance_before, card_then.balance, "{name}");
                let opening = Fen::new(OPENING_FEN);
                let once = op.after(opening).unwrap();
                let expected = if landed { op.after(once) } else { Some(once) };
                let state = decode(&bench.card(), &uid).unwrap();
                assert_eq!(Some(state.balance), expected, "{name}: {:?}", bench.history);
                assert_eq!(state.counter, u32::from(landed) + 1, "{name}");
                cases += 1;
            }
        }
    }
    println!("card never returned: {cases} cases");
    assert_eq!(cases, 8);
}

/// The card centre's issue screen on the whole till (runtime, journal, wallet, driver, emulated
/// chip), with a blank card on the reader.
struct IssueBench {
    rig: TillRig,
}

impl IssueBench {
    fn new(uid: &CardUid) -> IssueBench {
        let mut bench = IssueBench {
            rig: TillRig::new(EmulatedCard::blank(uid.as_bytes()).unwrap()),
        };
        bench.open_issue_screen();
        bench
    }

    /// Staff menu (F2+1+7, PIN), then 2: the issue screen.
    fn open_issue_screen(&mut self) {
        for key in [TillKey::F2, TillKey::Digit(1), TillKey::Digit(7)]
            .into_iter()
            .chain(STAFF_PIN.map(TillKey::Digit))
            .chain([TillKey::Enter, TillKey::Digit(2)])
        {
            self.feed(Input::Key(key));
        }
        assert!(self.shows("请放空白卡"), "{:?}", self.merchant());
    }

    fn feed(&mut self, input: Input) {
        self.rig.pass(STEP_MS);
        self.rig.handle(input);
    }

    fn settle_screen(&mut self) {
        self.rig.pass(MESSAGE_SHOW_MS);
        self.feed(Input::Tick);
    }

    fn merchant(&self) -> Vec<String> {
        self.rig.merchant()
    }

    fn shows(&self, text: &str) -> bool {
        self.rig.shows(text)
    }

    /// A fresh tap of the card (lifted and put back), read and handed to the till.
    fn retap(&mut self) -> Option<CardRead> {
        let card = self.rig.lift();
        self.rig.control.place_card(card);
        self.tap()
    }

    fn tap(&mut self) -> Option<CardRead> {
        let read = self.rig.wallet.tap()?;
        self.feed(Input::Card(read));
        Some(read)
    }

    /// The `CardIssued` records in the journal: (uid, opening balance).
    fn issued(&self) -> Vec<(CardUid, Fen)> {
        self.rig
            .runtime()
            .journal()
            .records_from(Seq::FIRST)
            .filter_map(|r| match r.expect("every record decodes").body {
                RecordBody::CardIssued(issued) => Some((issued.uid, issued.opening_balance)),
                _ => None,
            })
            .collect()
    }

    fn restart(&mut self) {
        self.rig.reopen();
    }
}

/// How an issue under a fault ended, once the card was tapped again until it settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IssueEnd {
    /// The fault did not stop the issue.
    IssuedAtOnce,
    /// The issue was interrupted, its writes had landed: recorded at the re-tap.
    RecordedAtRetap,
    /// The card was still blank (or refused before any write): issued again at the re-tap.
    IssuedAgain,
    /// Torn trailer: the sector is lost (card-centre recovery), nothing to record.
    Lost,
}

/// An interrupted card issue (开卡) whose writes did land is journaled as `CardIssued` at the
/// card's re-tap in the issue screen — once, never twice: for a fault at every write,
/// authentication and read of the issue, the reader dying at each, and the card leaving after
/// every exchange, the card ends as a wallet exactly when one `CardIssued` names it, with a zero
/// opening balance. After a restart too: the interrupted issue is journaled with its UID
/// (`CardIssueInterrupted`, snapshot version 3), so a landed one is recorded at its re-tap.
#[test]
fn an_interrupted_issue_whose_writes_landed_is_journaled_once_at_the_retap() {
    let mut ends: BTreeMap<IssueEnd, u64> = BTreeMap::new();
    for uid in uids() {
        // The fault-free dry run: what the tap + issue does.
        let mut dry = IssueBench::new(&uid);
        let base = dry.rig.control.counters();
        dry.tap().expect("the blank card answers");
        assert_eq!(dry.issued(), vec![(uid, Fen::ZERO)], "the dry run issues");
        let all = delta(&base, &dry.rig.control.counters());
        assert_eq!(all.writes, 4, "header, two slots, trailer");
        let injections = every_single_fault(&all, &[0x00]);
        for injection in injections {
            for restart in [false, true] {
                let name = format!("{uid} {injection:?} restart={restart}");
                let mut bench = IssueBench::new(&uid);
                let base = bench.rig.control.counters();
                for fault in &injection.faults {
                    bench.rig.control.inject(shifted(*fault, &base));
                }
                if let Some(n) = injection.leave_after_exchanges {
                    bench.rig.leave_at.set(Some(exchanges(&base) + n));
                }
                bench.tap().expect("the blank card answers");
                assert!(
                    bench.rig.control.pending_faults().is_empty()
                        && bench.rig.leave_at.get().is_none(),
                    "{name}: the fault struck"
                );
                let issued_at_once = !bench.issued().is_empty();
                let interrupted = bench.shows("开卡中断");
                let reader_died = injection
                    .faults
                    .iter()
                    .any(|f| matches!(f, Fault::ReaderDies { .. }));
                // A dead reader before any write is a reader fault, at the tap or the issue.
                assert_eq!(
                    bench.shows("读卡器故障"),
                    reader_died && !interrupted,
                    "{name}: {:?}",
                    bench.merchant()
                );
                bench.rig.repair_reader();
                if restart {
                    bench.restart();
                    bench.settle_screen();
                    bench.open_issue_screen();
                }
                // Tap the card again until it reads as a wallet (or proves lost).
                let mut recorded_at = None;
                let mut last = None;
                for step in 0..FOLLOW_STEPS_MAX {
                    bench.settle_screen();
                    let before = bench.issued().len();
                    last = bench.retap();
                    if recorded_at.is_none() && bench.issued().len() > before {
                        recorded_at = Some((step, last));
                    }
                    if matches!(last, Some(CardRead::Card(_))) {
                        break;
                    }
                }
                let issued = bench.issued();
                assert!(issued.len() <= 1, "{name}: issued twice: {issued:?}");
                assert!(
                    issued.iter().all(|i| *i == (uid, Fen::ZERO)),
                    "{name}: {issued:?}"
                );
                let is_wallet = matches!(last, Some(CardRead::Card(_)));
                if !is_wallet {
                    // Torn trailer: a key A that is neither ours nor the transport key, or ours
                    // with access bits whose copies disagree (the sector refuses every read).
                    assert!(
                        matches!(
                            last,
                            Some(CardRead::Unreadable(
                                CardProblem::WrongKey | CardProblem::ReadFailed
                            ))
                        ),
                        "{name}: a card that never became a wallet is the lost case: {last:?}"
                    );
                    assert_ne!(
                        bench.rig.control.block(TRAILER_BLOCK),
                        EmulatedCard::blank(uid.as_bytes())
                            .unwrap()
                            .block(TRAILER_BLOCK),
                        "{name}: lost only to a (torn) trailer write"
                    );
                }
                let end = match (issued_at_once, recorded_at, is_wallet) {
                    (true, _, true) => IssueEnd::IssuedAtOnce,
                    // Recorded at a tap that read the wallet: the interrupted issue had landed.
                    (false, Some((_, Some(CardRead::Card(_)))), true) => {
                        assert!(interrupted, "{name}: only an interrupted issue");
                        IssueEnd::RecordedAtRetap
                    }
                    (false, Some(_), true) => IssueEnd::IssuedAgain,
                    (false, None, false) => IssueEnd::Lost,
                    other => panic!("{name}: the card and the journal disagree: {other:?}"),
                };
                assert_eq!(
                    issued.len(),
                    usize::from(end != IssueEnd::Lost),
                    "{name}: {end:?}"
                );
                // More taps change nothing: "此卡已开通", no second record.
                if is_wallet {
                    bench.settle_screen();
                    bench.retap();
                    assert!(bench.shows("此卡已开通"), "{name}: {:?}", bench.merchant());
                    assert_eq!(bench.issued(), issued, "{name}: never twice");
                }
                *ends.entry(end).or_default() += 1;
            }
        }
    }
    println!("interrupted issue: {ends:?}");
    for end in [
        IssueEnd::IssuedAtOnce,
        IssueEnd::RecordedAtRetap,
        IssueEnd::IssuedAgain,
        IssueEnd::Lost,
    ] {
        assert!(
            ends.get(&end).copied().unwrap_or(0) > 0,
            "no case ended {end:?}"
        );
    }
}
