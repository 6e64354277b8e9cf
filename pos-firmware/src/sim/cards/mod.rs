//! The simulator's cards, on the real card stack: every card is an emulated Mifare Classic 1K
//! (64 blocks, sector keys, access bits) and every tap, debit, top-up and issue goes through
//! [`WalletReader`] → [`Mfrc522Reader`] (the `mfrc522` driver) → the emulated MFRC522
//! ([`EmulatorControl`]). So the terminal simulator, the headless scripts and the tests that use
//! them exercise the same wallet and driver code as the till, and a torn write is a real fault
//! of the emulated chip at the block write, judged by the real read-back.
//!
//! The cards' blocks persist in `sim-cards.toml` in the data directory (hex, one line per block,
//! hand-editable, validated on load). [`SimCard`] is only a view: what the card's blocks decode
//! to with the demo master key. Faults ([`WriteFault`]) are armed onto the emulator's next
//! block write; [`PausePoint`]s stop the process dead around the card write for the kill tests.

//!
//! Here: the cards ([`SimCards`]) and how they are tapped and written; `faults.rs` the write
//! faults, `factory.rs` the factory cards and how cards are made from views, `store.rs` the
//! cards file.

use serde::Deserialize;
use shared::record::TxnTag;
use shared::{CardUid, Fen};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::core::card::{
    CardImage, CardProblem, CardRead, CardWrite, CardWriteOutcome, IssueOutcome,
};
use crate::reader::driver::{Mfrc522Reader, ReaderOptions};
use crate::reader::emulator::{self, EmulatedCard, EmulatedMfrc522, EmulatorControl, Fault};
use crate::reader::{Block, SectorKey};
use crate::runtime::CardWriter;
use crate::wallet::keys::{MasterKey, TRANSPORT_KEY};
use crate::wallet::layout::{
    choose_slot, decode_header, decode_slot, encode_slot, CampusId, CardSerial, Slot, SlotState,
    HEADER_BLOCK, TRAILER_BLOCK,
};
use crate::wallet::{issue_card, WalletConfig, WalletReader, DEMO_CAMPUS};

mod factory;
mod faults;
mod store;

pub use factory::default_cards;
use factory::*;
pub use faults::WriteFault;
use store::*;

/// The name of the simulated cards' file inside the data directory.
pub const SIM_CARDS_FILE: &str = "sim-cards.toml";
/// Blocks of a Mifare Classic 1K card, each one line of the cards file.
pub const CARD_BLOCKS: usize = emulator::access::BLOCK_COUNT as usize;
/// The most cards a cards file may hold.
pub const MAX_SIM_CARDS: usize = 256;
/// The largest cards file that is read (a full one is about 600 KiB).
pub const MAX_CARDS_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The longest card name, in characters.
pub const MAX_CARD_NAME_CHARS: usize = 32;
/// The campus of `bus-card`: a wallet of the same card centre for another campus.
pub const OTHER_CAMPUS: CampusId = CampusId(2);
/// Key A / key B of `metro-card`'s sector 1: some other system's keys.
pub const FOREIGN_SECTOR_KEY: SectorKey = [0x4D, 0x45, 0x54, 0x52, 0x4F, 0x31];
/// Bytes of the new data a `half-written` block holds (the rest is old).
pub const HALF_WRITTEN_NEW_BYTES: usize = 8;

type EmulatedReader = Mfrc522Reader<EmulatedMfrc522>;

/// What a simulated card's blocks are, read with the demo master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCardKind {
    /// A wallet of this campus: the till accepts it.
    Wallet,
    /// A valid wallet of another campus (same card centre key): "非本校园卡(外校)".
    OtherCampus(u16),
    /// Factory-fresh: transport keys in the wallet sector, nothing written: "未开通的卡".
    Blank,
    /// Anything else: another system's keys, a torn issue, forged or damaged wallet data.
    Unreadable,
}

/// One simulated card as its blocks decode with the demo master key (a view: the blocks are
/// the truth). `balance`, `counter` and `last_tag` are zero when the blocks hold no valid
/// wallet state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCard {
    pub name: String,
    pub uid: CardUid,
    pub balance: Fen,
    pub counter: u32,
    pub last_tag: TxnTag,
    /// A wallet of this campus (`kind == Wallet`): the till must refuse every other card.
    pub campus: bool,
    pub kind: SimCardKind,
}

impl SimCard {
    pub fn image(&self) -> CardImage {
        CardImage {
            uid: self.uid,
            balance: self.balance,
            counter: self.counter,
            last_tag: self.last_tag,
        }
    }
}

/// Where the simulator stops dead (for the kill tests): it prints a marker line and sleeps until
/// killed, so a test can SIGKILL the till at an exact point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePoint {
    /// The sale's intent is durable, the card not written yet.
    BeforeCardWrite,
    /// The card holds the debit (and the cards file too), the commit is not journaled yet.
    AfterCardWrite,
    /// A code payment's intent is durable, its submit has not left the till (the script runner
    /// hooks it on the host: `TillHost::pause_before_orders`).
    BeforeOrderSubmit,
    /// A code payment's reversal is journaled (`OrderReversing`), the reversal request has not
    /// left the till.
    BeforeOrderReverse,
}

impl PausePoint {
    /// Whether the till stops at this point just before `request` leaves it (order points only).
    pub fn stops_before(self, request: &shared::pay::OrderRequest) -> bool {
        use shared::pay::OrderRequest;
        matches!(
            (self, request),
            (PausePoint::BeforeOrderSubmit, OrderRequest::Submit { .. })
                | (PausePoint::BeforeOrderReverse, OrderRequest::Reverse)
        )
    }

    /// Prints `PAUSED <point>` and sleeps until the process is killed.
    pub fn stop_dead(self) -> ! {
        println!("PAUSED {self:?}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Why the cards cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SimCardsError {
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("simulated card {name}: {detail}")]
    Card { name: String, detail: String },
    #[error("the emulated card reader: {0}")]
    Reader(String),
    #[error("no simulated card '{0}'")]
    NoSuchCard(String),
    #[error("no saved copy '{0}': use snapshot-card first")]
    NoSnapshot(String),
}

/// A card as it is kept: its name, its UID and the emulated card (blocks).
#[derive(Debug, Clone)]
struct StoredCard {
    name: String,
    uid: CardUid,
    card: EmulatedCard,
}

/// The simulated cards and the emulated reader they are tapped on.
pub struct SimCards {
    path: Option<PathBuf>,
    stored: Vec<StoredCard>,
    views: Vec<SimCard>,
    control: EmulatorControl,
    wallet: WalletReader<EmulatedReader>,
    /// The card last tapped: in the field, or taken out by a fault.
    on_reader: Option<usize>,
    /// The fault armed on the emulator (cleared once it struck).
    fault: Option<WriteFault>,
    /// A `reader-dies` fault killed the emulated chip: revived and re-initialised at the next tap.
    reader_dead: bool,
    /// [`SimCards::break_reader`] killed the chip: it stays dead, every tap a reader fault,
    /// until [`SimCards::repair_reader`].
    reader_broken: bool,
    pause: Option<PausePoint>,
    /// `snapshot_card` copies, by card index and label.
    snapshots: BTreeMap<(usize, String), EmulatedCard>,
    /// Why the cards file could not keep the last write (handed to the runtime once).
    storage_error: Option<std::io::Error>,
}

impl fmt::Debug for SimCards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCards")
            .field("path", &self.path)
            .field("cards", &self.views)
            .field("on_reader", &self.on_reader)
            .field("fault", &self.fault)
            .field("pause", &self.pause)
            .finish_non_exhaustive()
    }
}
impl SimCards {
    /// Cards kept only in memory, made from views (see [`SimCards::create`]).
    pub fn in_memory(cards: Vec<SimCard>) -> Result<SimCards, SimCardsError> {
        let stored = make_cards(&cards)?;
        SimCards::with_stored(None, stored)
    }

    /// Makes cards matching the views `cards` (a wallet of this or another campus holding the
    /// view's balance, counter and tag; a blank card; another system's card) and writes them
    /// to `<dir>/sim-cards.toml`, replacing what was there.
    pub fn create(dir: &Path, cards: Vec<SimCard>) -> Result<SimCards, SimCardsError> {
        let stored = make_cards(&cards)?;
        let store = SimCards::with_stored(Some(dir.join(SIM_CARDS_FILE)), stored)?;
        store.save().map_err(|error| store.io_error(error))?;
        Ok(store)
    }

    /// Loads `<dir>/sim-cards.toml`, creating it with the factory cards when missing.
    pub fn open(dir: &Path) -> Result<SimCards, SimCardsError> {
        let path = dir.join(SIM_CARDS_FILE);
        let shown = path.display().to_string();
        let invalid = |detail: String| SimCardsError::Invalid {
            path: shown.clone(),
            detail,
        };
        let stored = match fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_CARDS_FILE_BYTES => {
                return Err(invalid(format!(
                    "{} bytes: a cards file holds at most {MAX_CARDS_FILE_BYTES}",
                    meta.len()
                )))
            }
            Ok(_) => {
                let text = fs::read_to_string(&path).map_err(|error| SimCardsError::Io {
                    path: shown.clone(),
                    error,
                })?;
                parse_cards(&text).map_err(invalid)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                factory_cards().map_err(SimCardsError::Reader)?.to_vec()
            }
            Err(error) => return Err(SimCardsError::Io { path: shown, error }),
        };
        let store = SimCards::with_stored(Some(path), stored)?;
        store.save().map_err(|error| store.io_error(error))?;
        Ok(store)
    }

    fn with_stored(
        path: Option<PathBuf>,
        stored: Vec<StoredCard>,
    ) -> Result<SimCards, SimCardsError> {
        let control = EmulatorControl::new();
        let reader = Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR)
            .map_err(|e| SimCardsError::Reader(e.to_string()))?;
        Ok(SimCards {
            path,
            views: stored.iter().map(view).collect(),
            stored,
            control,
            wallet: WalletReader::new(reader, WalletConfig::demo()),
            on_reader: None,
            fault: None,
            reader_dead: false,
            reader_broken: false,
            pause: None,
            snapshots: BTreeMap::new(),
            storage_error: None,
        })
    }

    pub fn cards(&self) -> &[SimCard] {
        &self.views
    }

    pub fn by_name(&self, name: &str) -> Option<&SimCard> {
        self.index_of(name).and_then(|i| self.views.get(i))
    }

    /// The index of the card called `name` (or with that UID in hex), any case.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.views.iter().position(|c| {
            c.name.eq_ignore_ascii_case(name) || c.uid.to_string().eq_ignore_ascii_case(name)
        })
    }

    /// A copy of card `index`'s 64 blocks.
    pub fn blocks(&self, index: usize) -> Option<Vec<Block>> {
        let card = &self.stored.get(index)?.card;
        Some(
            (0..CARD_BLOCKS as u8)
                .map(|b| card.block(b).unwrap_or([0; 16]))
                .collect(),
        )
    }

    /// Puts card number `index` on the emulated reader (a fresh tap: the card before it leaves
    /// the field) and reads it through the wallet and the driver.
    pub fn tap(&mut self, index: usize) -> Option<CardRead> {
        let card = self.stored.get(index)?.card.clone();
        self.lift_card();
        self.revive_reader();
        self.control.place_card(card);
        self.on_reader = Some(index);
        let read = self.wallet.tap();
        self.note_struck_fault();
        Some(read.unwrap_or(CardRead::Unreadable(CardProblem::ReadFailed)))
    }

    /// Taps the card called `name` (or with that UID in hex).
    pub fn tap_named(&mut self, name: &str) -> Option<CardRead> {
        let index = self.index_of(name)?;
        self.tap(index)
    }

    /// Arms `fault` for the emulator's next block write (replacing a fault not used yet).
    pub fn arm_fault(&mut self, fault: WriteFault) {
        self.control.clear_faults();
        self.control.inject(Fault::Write {
            write_index: self.control.counters().writes,
            fault: fault.emulated(),
        });
        self.fault = Some(fault);
    }

    /// Takes back the fault armed and not used yet.
    pub fn disarm_fault(&mut self) {
        self.control.clear_faults();
        self.fault = None;
    }

    /// The fault armed and not used yet.
    pub fn armed_fault(&self) -> Option<WriteFault> {
        self.fault
    }

    /// Kills the emulated reader chip (every SPI byte reads 0x00) until
    /// [`SimCards::repair_reader`]: taps read as [`CardProblem::ReaderFault`].
    pub fn break_reader(&mut self) {
        self.control.set_reader_dead(Some(0x00));
        self.reader_broken = true;
    }

    /// Maintenance: revives the chip (a broken one, or one a `reader-dies` fault killed) and
    /// initialises the driver afresh.
    pub fn repair_reader(&mut self) {
        self.reader_broken = false;
        self.reader_dead = true;
        self.revive_reader();
    }

    /// The reader chip is broken ([`SimCards::break_reader`]).
    pub fn reader_broken(&self) -> bool {
        self.reader_broken
    }

    /// Makes the process stop dead at `point` of the next sale (kill tests; the order points
    /// are the script runner's, the cards ignore them).
    pub fn pause_at(&mut self, point: PausePoint) {
        self.pause = Some(point);
    }

    /// Keeps a copy of the card's blocks as they are now under `label` (to replay them later);
    /// a second copy under the same label replaces the first.
    pub fn snapshot_card(&mut self, name: &str, label: &str) -> Result<(), SimCardsError> {
        let index = self
            .index_of(name)
            .ok_or_else(|| SimCardsError::NoSuchCard(name.to_string()))?;
        self.lift_card();
        self.snapshots
            .insert((index, label.to_string()), self.stored[index].card.clone());
        Ok(())
    }

    /// Writes the copy [`SimCards::snapshot_card`] kept under `label` back onto the card, as
    /// someone who dumped the card and restored it would (persisted like any write).
    pub fn restore_card(&mut self, name: &str, label: &str) -> Result<(), SimCardsError> {
        let index = self
            .index_of(name)
            .ok_or_else(|| SimCardsError::NoSuchCard(name.to_string()))?;
        let copy = self
            .snapshots
            .get(&(index, label.to_string()))
            .cloned()
            .ok_or_else(|| SimCardsError::NoSnapshot(format!("{name} {label}")))?;
        self.lift_card();
        let before = std::mem::replace(&mut self.stored[index].card, copy);
        self.views[index] = view(&self.stored[index]);
        if let Err(error) = self.save() {
            self.stored[index].card = before;
            self.views[index] = view(&self.stored[index]);
            return Err(self.io_error(error));
        }
        Ok(())
    }

    /// `error` with the cards file's path in its message (same kind, for the runtime to classify).
    fn io_error_with_path(&self, error: std::io::Error) -> std::io::Error {
        let path = self
            .path
            .as_ref()
            .map_or_else(|| "(in memory)".into(), |p| p.display().to_string());
        std::io::Error::new(error.kind(), format!("{path}: {error}"))
    }

    fn io_error(&self, error: std::io::Error) -> SimCardsError {
        SimCardsError::Io {
            path: self
                .path
                .as_ref()
                .map_or_else(|| "(in memory)".into(), |p| p.display().to_string()),
            error,
        }
    }

    /// Takes the tapped card out of the field (keeping what the emulator did to it).
    fn lift_card(&mut self) {
        self.sync_from_reader();
        self.control.remove_card();
        self.on_reader = None;
    }

    /// Copies the tapped card's blocks from the emulator; true when they changed.
    fn sync_from_reader(&mut self) -> bool {
        let Some(index) = self.on_reader else {
            return false;
        };
        let Some(now) = self.control.card() else {
            return false;
        };
        let stored = &mut self.stored[index];
        if now.uid() != stored.uid.as_bytes() || same_blocks(&now, &stored.card) {
            return false;
        }
        stored.card = now;
        self.views[index] = view(stored);
        true
    }

    /// Forgets the armed fault once it struck; a dead reader is noted for the next tap.
    fn note_struck_fault(&mut self) {
        if self.fault.is_some() && self.control.pending_faults().is_empty() {
            if self.fault == Some(WriteFault::ReaderDies) {
                self.reader_dead = true;
            }
            self.fault = None;
        }
    }

    /// Revives the chip a `reader-dies` fault killed and initialises the driver afresh, as the
    /// till would after resetting the reader.
    fn revive_reader(&mut self) {
        if !self.reader_dead || self.reader_broken {
            return;
        }
        self.control.set_reader_dead(None);
        if let Ok(reader) = Mfrc522Reader::new(self.control.device(), ReaderOptions::EMULATOR) {
            self.wallet = WalletReader::new(reader, WalletConfig::demo());
            self.reader_dead = false;
        }
    }

    /// After a write or issue: keep what reached the card, persisted. If the file cannot keep
    /// it, the card goes back to `before` and leaves the reader (as if pulled away); false then.
    fn keep_written(&mut self, before: Option<EmulatedCard>) -> bool {
        if !self.sync_from_reader() {
            return true;
        }
        let Err(error) = self.save() else {
            return true;
        };
        self.storage_error = Some(self.io_error_with_path(error));
        if let (Some(index), Some(before)) = (self.on_reader, before) {
            self.stored[index].card = before;
            self.views[index] = view(&self.stored[index]);
        }
        self.control.remove_card();
        self.on_reader = None;
        false
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let text = render_cards(&self.stored, &self.views);
        // Write-then-rename so a crash leaves the old or the new file, never half of one: the
        // simulated cards must keep their money across a kill just like real ones.
        let tmp = path.with_extension("toml.tmp");
        let written = File::create(&tmp).and_then(|mut out| {
            out.write_all(text.as_bytes())?;
            out.sync_all()
        });
        if let Err(error) = written {
            // A half-written copy on a full disk would keep the space it took.
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn stop_dead(point: PausePoint) -> ! {
        point.stop_dead()
    }
}

impl CardWriter for SimCards {
    fn write_card(&mut self, write: &CardWrite) -> CardWriteOutcome {
        if self.pause == Some(PausePoint::BeforeCardWrite) {
            SimCards::stop_dead(PausePoint::BeforeCardWrite);
        }
        let before = self.on_reader.map(|i| self.stored[i].card.clone());
        let outcome = self.wallet.write_card(write);
        self.note_struck_fault();
        let changed = self
            .on_reader
            .zip(self.control.card())
            .is_some_and(|(i, now)| !same_blocks(&now, &self.stored[i].card));
        if !self.keep_written(before) {
            return CardWriteOutcome::Unknown;
        }
        if changed && self.pause == Some(PausePoint::AfterCardWrite) {
            SimCards::stop_dead(PausePoint::AfterCardWrite);
        }
        outcome
    }

    fn issue_card(&mut self) -> IssueOutcome {
        // The tap that showed the card blank ended with HLTA; the card stays on the reader and
        // `WalletReader::issue_card` wakes it with WUPA, as on the device.
        let before = self.on_reader.map(|i| self.stored[i].card.clone());
        let outcome = self.wallet.issue_card();
        self.note_struck_fault();
        let uid = self.on_reader.map(|i| self.stored[i].uid);
        if !self.keep_written(before) {
            return IssueOutcome::Interrupted { uid };
        }
        outcome
    }

    fn take_storage_error(&mut self) -> Option<std::io::Error> {
        self.storage_error.take()
    }
}

fn same_blocks(a: &EmulatedCard, b: &EmulatedCard) -> bool {
    (0..CARD_BLOCKS as u8).all(|n| a.block(n) == b.block(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::card::IssueRefusal;

    pub(super) fn write_for(card: &SimCard, amount: u64) -> CardWrite {
        CardWrite {
            uid: card.uid,
            counter_before: card.counter,
            new_counter: card.counter + 1,
            new_balance: Fen::new(card.balance.get() - amount),
            tag: TxnTag(7),
        }
    }

    fn memory() -> SimCards {
        SimCards::in_memory(default_cards()).unwrap()
    }

    #[test]
    fn the_factory_cards_read_as_the_till_expects() {
        let mut cards = memory();
        let names: Vec<&str> = cards.cards().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "card-1",
                "card-2",
                "card-3",
                "bus-card",
                "blank-card",
                "metro-card"
            ]
        );
        let Some(CardRead::Card(image)) = cards.tap_named("card-2") else {
            panic!("card-2 reads");
        };
        assert_eq!(image.balance, Fen::from_yuan(50));
        assert_eq!(image.uid.to_string(), "0452617A8B9C80");
        assert_eq!(
            cards.tap_named("bus-card"),
            Some(CardRead::Unreadable(CardProblem::OtherCampus))
        );
        assert_eq!(
            cards.tap_named("blank-card"),
            Some(CardRead::Unreadable(CardProblem::Unformatted))
        );
        assert_eq!(
            cards.tap_named("3E7A0F11"),
            Some(CardRead::Unreadable(CardProblem::WrongKey))
        );
        assert!(cards.tap_named("nope").is_none());
        let kinds: Vec<SimCardKind> = cards.cards().iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                SimCardKind::Wallet,
                SimCardKind::Wallet,
                SimCardKind::Wallet,
                SimCardKind::OtherCampus(OTHER_CAMPUS.0),
                SimCardKind::Blank,
                SimCardKind::Unreadable
            ]
        );
        assert_eq!(
            cards.by_name("bus-card").unwrap().balance,
            Fen::from_yuan(20)
        );
    }

    #[test]
    fn the_classic_faults_behave_like_a_pulled_card() {
        let mut cards = memory();
        cards.tap(0);
        let write = write_for(&cards.cards()[0], 100);
        cards.arm_fault(WriteFault::PulledBeforeWrite);
        assert_eq!(cards.write_card(&write), CardWriteOutcome::Refused);
        assert_eq!(cards.armed_fault(), None, "used");
        assert_eq!(cards.cards()[0].counter, 0);
        cards.tap(0);
        cards.arm_fault(WriteFault::PulledAfterCommand);
        assert_eq!(cards.write_card(&write), CardWriteOutcome::Unknown);
        assert_eq!(cards.cards()[0].counter, 0);
        cards.tap(0);
        cards.arm_fault(WriteFault::PulledAfterWrite);
        assert_eq!(cards.write_card(&write), CardWriteOutcome::Unknown);
        assert_eq!(cards.cards()[0].counter, 1);
        cards.tap(0);
        assert_eq!(
            cards.write_card(&write),
            CardWriteOutcome::Refused,
            "stale counter"
        );
        cards.tap(0);
        cards.arm_fault(WriteFault::Refused);
        let next = write_for(&cards.cards()[0], 100);
        assert_eq!(cards.write_card(&next), CardWriteOutcome::Refused);
        assert_eq!(cards.cards()[0].counter, 1);
    }

    #[test]
    fn every_fault_is_named_and_never_debits_twice() {
        for fault in WriteFault::ALL {
            assert_eq!(WriteFault::from_name(fault.name()), Some(fault));
            let mut cards = memory();
            cards.tap(1);
            let write = write_for(&cards.cards()[1], 250);
            cards.arm_fault(fault);
            let outcome = cards.write_card(&write);
            assert_eq!(cards.armed_fault(), None, "{fault}: struck");
            let after = cards.cards()[1].clone();
            match outcome {
                CardWriteOutcome::Written(image) => assert_eq!(image, after.image(), "{fault}"),
                CardWriteOutcome::Refused => assert_eq!(after.counter, 0, "{fault}"),
                CardWriteOutcome::Unknown => {}
            }
            // The next tap reads a consistent state: the old one or the new one.
            let Some(CardRead::Card(read)) = cards.tap(1) else {
                panic!("{fault}: card-2 reads again");
            };
            assert!(
                (read.counter, read.balance) == (0, Fen::from_yuan(50))
                    || (read.counter, read.balance) == (1, Fen::new(5_000 - 250)),
                "{fault}: {read:?}"
            );
        }
        assert_eq!(WriteFault::from_name("nope"), None);
    }

    #[test]
    fn the_blank_card_is_issued_through_the_wallet() {
        let mut cards = memory();
        cards.tap_named("card-1");
        assert_eq!(
            cards.issue_card(),
            IssueOutcome::NotIssued(IssueRefusal::AlreadyIssued)
        );
        assert_eq!(
            cards.tap_named("blank-card"),
            Some(CardRead::Unreadable(CardProblem::Unformatted))
        );
        let IssueOutcome::Issued(image) = cards.issue_card() else {
            panic!("the blank card is issued");
        };
        assert_eq!(image.balance, Fen::ZERO);
        let blank = cards.by_name("blank-card").unwrap();
        assert_eq!(blank.kind, SimCardKind::Wallet);
        assert!(matches!(
            cards.tap_named("blank-card"),
            Some(CardRead::Card(_))
        ));
    }

    #[test]
    fn a_restored_copy_brings_the_old_counter_back() {
        let mut cards = memory();
        cards.snapshot_card("card-3", "old").unwrap();
        cards.tap(2);
        let write = write_for(&cards.cards()[2], 100);
        assert!(matches!(
            cards.write_card(&write),
            CardWriteOutcome::Written(_)
        ));
        assert_eq!(cards.cards()[2].counter, 1);
        cards.restore_card("card-3", "old").unwrap();
        assert_eq!(cards.cards()[2].counter, 0);
        assert_eq!(cards.cards()[2].balance, Fen::from_yuan(3));
        assert!(matches!(
            cards.restore_card("card-1", "old"),
            Err(SimCardsError::NoSnapshot(_))
        ));
        assert!(matches!(
            cards.snapshot_card("nope", "old"),
            Err(SimCardsError::NoSuchCard(_))
        ));
    }

    #[test]
    fn views_make_the_same_cards() {
        let mut views = default_cards();
        views[0].counter = 41;
        views[0].last_tag = TxnTag(99);
        views[0].balance = Fen::new(1234);
        let cards = SimCards::in_memory(views.clone()).unwrap();
        assert_eq!(cards.cards(), views.as_slice());
        let mut dup = default_cards();
        dup[1].name = "CARD-1".into();
        assert!(SimCards::in_memory(dup).is_err());
    }
}
