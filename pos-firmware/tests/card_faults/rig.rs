//! The whole-till rigs of the card-fault tests: [`TillRig`] (the till over the real card stack
//! on the emulated chip, whose card can leave the field between two exchanges or lose power at
//! the fault) and [`DebitRig`] (a till, one card, and every journaled record and card state the
//! test saw), plus the card helpers: issued cards, and a card's state decoded from its blocks.

use super::*;

/// The emulated chip's SPI with one addition: the card leaves the field between two exchanges,
/// once a set number of them completed (checked before every SPI transaction).
#[derive(Clone)]
pub(crate) struct LeavingSpi {
    inner: EmulatedMfrc522,
    pub(crate) control: EmulatorControl,
    pub(crate) leave_at: Rc<Cell<Option<u32>>>,
    pub(crate) taken: Rc<RefCell<Option<EmulatedCard>>>,
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
    pub(crate) static POWER_CUT_AT_FAULT: Cell<bool> = const { Cell::new(false) };
}

/// The unwind payload of a power cut at the fault (raised with `resume_unwind`, so no panic
/// message: it is not a failure).
pub(crate) struct PowerCut;

type TillReader = WalletReader<Mfrc522Reader<LeavingSpi>>;

fn cfg() -> WalletConfig {
    WalletConfig::demo()
}

pub(crate) fn uids() -> [CardUid; 2] {
    [
        CardUid::new(&[0x1A, 0x2B, 0x3C, 0x4D]).unwrap(),
        CardUid::new(&[0x04, 0x52, 0x61, 0x7A, 0x8B, 0x9C, 0x80]).unwrap(),
    ]
}

/// A wallet issued through the real driver and emulator, with [`OPENING_FEN`].
pub(crate) fn issued_card(uid: &CardUid) -> EmulatedCard {
    issued_card_holding(uid, Fen::new(OPENING_FEN))
}

/// A wallet issued through the real driver and emulator, holding `opening`.
pub(crate) fn issued_card_holding(uid: &CardUid, opening: Fen) -> EmulatedCard {
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
pub(crate) fn decode(card: &EmulatedCard, uid: &CardUid) -> Option<SlotState> {
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

pub(crate) fn image_of(uid: CardUid, state: &SlotState) -> CardImage {
    CardImage {
        uid,
        balance: state.balance,
        counter: state.counter,
        last_tag: state.tag,
    }
}

/// One till, one card, one emulated reader, and what the test saw.
pub(crate) struct DebitRig {
    pub(crate) op: Operation,
    pub(crate) uid: CardUid,
    pub(crate) till: TillRig,
    /// Every record journaled, in order.
    pub(crate) records: Vec<JournalRecord>,
    /// Every wallet state the card went through, decoded after every step.
    pub(crate) history: Vec<SlotState>,
    /// The card's blocks as issued (for the replay check).
    pub(crate) initial: EmulatedCard,
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
/// reader: what every rig below drives.
pub(crate) struct TillRig {
    pub(crate) control: EmulatorControl,
    pub(crate) leave_at: Rc<Cell<Option<u32>>>,
    pub(crate) taken: Rc<RefCell<Option<EmulatedCard>>>,
    pub(crate) wallet: TillReader,
    pub(crate) till: Till,
}

impl TillRig {
    pub(crate) fn new(card: EmulatedCard) -> TillRig {
        let control = EmulatorControl::new();
        control.place_card(card);
        let leave_at = Rc::new(Cell::new(None));
        let taken = Rc::new(RefCell::new(None));
        let wallet = new_wallet(&control, &leave_at, &taken);
        let now = Now {
            wall: UnixMillis(1_700_000_000_000),
            mono_ms: 1_000,
        };
        TillRig {
            control,
            leave_at,
            taken,
            wallet,
            till: Till::open(TillConfig::default(), now),
        }
    }

    pub(crate) fn runtime(&self) -> &TillRuntime {
        self.till.runtime()
    }

    /// The till's wall clock now.
    fn wall(&self) -> UnixMillis {
        self.till.now.wall
    }

    /// Both clocks move on by `ms`.
    pub(crate) fn pass(&mut self, ms: u64) {
        self.till.pass(ms);
    }

    /// Hands `input` to the till at the current instant.
    pub(crate) fn handle(&mut self, input: Input) -> Vec<Output> {
        self.till.handle(input, &mut self.wallet)
    }

    pub(crate) fn merchant(&self) -> Vec<String> {
        self.till.merchant()
    }

    pub(crate) fn customer(&self) -> Vec<String> {
        self.till.customer()
    }

    pub(crate) fn shows(&self, text: &str) -> bool {
        self.merchant().iter().any(|line| line.contains(text))
    }

    /// Takes the card off the reader (from wherever it is: in the field, taken by a fault, or
    /// taken between exchanges).
    pub(crate) fn lift(&mut self) -> EmulatedCard {
        let card = self
            .control
            .remove_card()
            .or_else(|| self.taken.borrow_mut().take())
            .expect("the card exists");
        self.taken.borrow_mut().take();
        card
    }

    /// The dead reader is repaired (power-cycled and initialised again).
    pub(crate) fn repair_reader(&mut self) {
        self.control.set_reader_dead(None);
        self.wallet = new_wallet(&self.control, &self.leave_at, &self.taken);
    }

    /// Drops the till (process gone) and starts it again from the journal on disk, with a
    /// freshly initialised reader, a step later on the wall clock.
    pub(crate) fn reopen(&mut self) {
        self.till.stop();
        self.wallet = new_wallet(&self.control, &self.leave_at, &self.taken);
        self.till.now.wall = self.till.now.wall.saturating_add_millis(STEP_MS);
        self.till.reopen(TillConfig::default());
    }
}

impl DebitRig {
    pub(crate) fn new(op: Operation, uid: CardUid, card: &EmulatedCard) -> DebitRig {
        let first = decode(card, &uid).expect("an issued card decodes");
        DebitRig {
            op,
            uid,
            till: TillRig::new(card.clone()),
            records: Vec::new(),
            history: vec![first],
            initial: card.clone(),
        }
    }

    pub(crate) fn journal(&self) -> &Journal {
        self.till.runtime().journal()
    }

    /// The card wherever it is: in the field, taken by a fault, or taken between exchanges.
    pub(crate) fn card(&self) -> EmulatedCard {
        self.till
            .control
            .card()
            .or_else(|| self.till.taken.borrow().clone())
            .expect("the card exists")
    }

    /// Takes the card off the reader (from wherever it is).
    pub(crate) fn lift(&mut self) -> EmulatedCard {
        self.till.lift()
    }

    /// Lifts the card and puts it back: a fresh tap (a halted card answers only a new field).
    pub(crate) fn replace_card(&mut self) {
        let card = self.lift();
        self.till.control.place_card(card);
    }

    /// Decodes the card and records its state when it changed.
    pub(crate) fn observe_card(&mut self) {
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

    pub(crate) fn feed(&mut self, input: Input) -> Vec<Output> {
        self.till.pass(STEP_MS);
        self.run(input)
    }

    /// Lets time pass up to exactly `at` (forwards only), then ticks.
    pub(crate) fn tick_at(&mut self, at: UnixMillis) -> Vec<Output> {
        let gap = at.millis_since(self.till.wall());
        assert_eq!(
            self.till.wall().saturating_add_millis(gap),
            at,
            "forwards only"
        );
        self.till.pass(gap);
        self.run(Input::Tick)
    }

    /// Hands `input` to the till at the current instant.
    pub(crate) fn run(&mut self, input: Input) -> Vec<Output> {
        let outputs = self.till.handle(input);
        for output in &outputs {
            if let Output::Journaled(record) = output {
                self.records.push(record.clone());
            }
        }
        self.observe_card();
        outputs
    }

    pub(crate) fn keys(&mut self, keys: impl IntoIterator<Item = TillKey>) {
        for key in keys {
            self.feed(Input::Key(key));
        }
    }

    /// Lets every message time out, so the screen shows what the till waits for.
    pub(crate) fn settle_screen(&mut self) {
        self.till.pass(MESSAGE_SHOW_MS);
        self.feed(Input::Tick);
    }

    pub(crate) fn merchant(&self) -> Vec<String> {
        self.till.merchant()
    }

    pub(crate) fn customer(&self) -> Vec<String> {
        self.till.customer()
    }

    pub(crate) fn shows(&self, text: &str) -> bool {
        self.till.shows(text)
    }

    /// The merchant (debit) types the amount, or staff (load) open the top-up screen from the
    /// idle screen and type it.
    pub(crate) fn start_request(&mut self) {
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

    pub(crate) fn type_load_amount(&mut self) {
        self.keys(LOAD_KEYS.map(TillKey::Digit));
        self.keys([TillKey::Enter]);
    }

    /// Reads the card as the till's reader loop does and hands the read to the till. Checks
    /// that a read wallet is exactly what the blocks hold. `None` when no card answered.
    pub(crate) fn tap(&mut self) -> Option<(CardRead, Vec<Output>)> {
        let read = self.till.wallet.tap()?;
        if let CardRead::Card(image) = read {
            let state = decode(&self.card(), &self.uid).expect("a read card decodes");
            assert_eq!(image, image_of(self.uid, &state), "the tap read the blocks");
        }
        let outputs = self.feed(Input::Card(read));
        Some((read, outputs))
    }

    /// Drops the till (process gone) and starts it again from the journal on disk, with a
    /// freshly initialised reader.
    pub(crate) fn restart(&mut self) {
        let snapshot = self.journal().snapshot().clone();
        self.till.reopen();
        assert_eq!(
            self.journal().snapshot(),
            &snapshot,
            "the restart lost nothing"
        );
    }

    /// The card pays [`OTHER_TILL_DEBIT_FEN`] at another till (its own reader and wallet).
    pub(crate) fn use_elsewhere(&mut self) {
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
        self.till.control.place_card(other.remove_card().unwrap());
        self.observe_card();
    }

    pub(crate) fn committed_count(&self) -> usize {
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
