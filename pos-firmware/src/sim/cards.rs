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

/// A fault for the emulated chip's next block write. The first three are the simulator's
/// classic tears; the others mirror [`emulator::WriteFault`] one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// The card leaves before the write command: the driver sees no ACK, nothing was sent, the
    /// wallet reports a clean refusal (unchanged).
    PulledBeforeWrite,
    /// The card ACKs the write command, then leaves before the data: unchanged, but the driver
    /// cannot know: outcome unknown.
    PulledAfterCommand,
    /// The data reaches the card, which leaves before its ACK: written, outcome unknown.
    PulledAfterWrite,
    /// The card NAKs the write command: unchanged, refused.
    Refused,
    /// The data is stored and ACKed, the reader never sees the ACK; the card stays.
    AckLost,
    /// The card NAKs the data phase: unchanged, but data was sent: outcome unknown.
    DataNak,
    /// Power lost mid-write: the first [`HALF_WRITTEN_NEW_BYTES`] bytes are new; the card is gone.
    HalfWritten,
    /// The block is stored corrupted and the card is gone without an ACK.
    Garbled,
    /// The block is stored corrupted, and the card even ACKs it.
    GarbledAcked,
    /// The data is stored, then the reader chip dies before the ACK (revived at the next tap).
    ReaderDies,
}

impl WriteFault {
    /// Every fault, in the order of the script's documentation.
    pub const ALL: [WriteFault; 10] = [
        WriteFault::PulledBeforeWrite,
        WriteFault::PulledAfterCommand,
        WriteFault::PulledAfterWrite,
        WriteFault::Refused,
        WriteFault::AckLost,
        WriteFault::DataNak,
        WriteFault::HalfWritten,
        WriteFault::Garbled,
        WriteFault::GarbledAcked,
        WriteFault::ReaderDies,
    ];

    /// The name a script's `fault` line uses.
    pub fn name(self) -> &'static str {
        match self {
            WriteFault::PulledBeforeWrite => "pulled-before-write",
            WriteFault::PulledAfterCommand => "pulled-after-command",
            WriteFault::PulledAfterWrite => "pulled-after-write",
            WriteFault::Refused => "refused",
            WriteFault::AckLost => "ack-lost",
            WriteFault::DataNak => "data-nak",
            WriteFault::HalfWritten => "half-written",
            WriteFault::Garbled => "garbled",
            WriteFault::GarbledAcked => "garbled-acked",
            WriteFault::ReaderDies => "reader-dies",
        }
    }

    /// The fault called `name` (see [`WriteFault::name`]).
    pub fn from_name(name: &str) -> Option<WriteFault> {
        WriteFault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// What the emulated chip does.
    pub fn emulated(self) -> emulator::WriteFault {
        use emulator::WriteFault as E;
        match self {
            WriteFault::PulledBeforeWrite => E::RemovedBeforeCommand,
            WriteFault::PulledAfterCommand => E::RemovedAfterCommand,
            WriteFault::PulledAfterWrite => E::RemovedAfterData,
            WriteFault::Refused => E::CommandNak,
            WriteFault::AckLost => E::AckLost,
            WriteFault::DataNak => E::DataNak,
            WriteFault::HalfWritten => E::HalfWritten {
                new_bytes: HALF_WRITTEN_NEW_BYTES,
            },
            WriteFault::Garbled => E::Garbled { acked: false },
            WriteFault::GarbledAcked => E::Garbled { acked: true },
            WriteFault::ReaderDies => E::ReaderDiesAfterData,
        }
    }
}

impl fmt::Display for WriteFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// How a factory card is made.
#[derive(Debug, Clone, Copy)]
enum Make {
    /// Issued by the card centre for `campus` with `balance`.
    Issued {
        campus: CampusId,
        balance: Fen,
    },
    Blank,
    /// Another system's keys in the wallet sector.
    ForeignKeys,
}

/// The simulator's factory cards: name, UID, how they are made.
const FACTORY: [(&str, &[u8], Make); 6] = [
    (
        "card-1",
        &[0x1A, 0x2B, 0x3C, 0x4D],
        Make::Issued {
            campus: DEMO_CAMPUS,
            balance: Fen::new(10_000),
        },
    ),
    (
        "card-2",
        &[0x04, 0x52, 0x61, 0x7A, 0x8B, 0x9C, 0x80],
        Make::Issued {
            campus: DEMO_CAMPUS,
            balance: Fen::new(5_000),
        },
    ),
    (
        "card-3",
        &[0x5E, 0x6F, 0x70, 0x81],
        Make::Issued {
            campus: DEMO_CAMPUS,
            balance: Fen::new(300),
        },
    ),
    (
        "bus-card",
        &[0x99, 0x88, 0x77, 0x66],
        Make::Issued {
            campus: OTHER_CAMPUS,
            balance: Fen::new(2_000),
        },
    ),
    ("blank-card", &[0xB1, 0xA2, 0xC3, 0xD4], Make::Blank),
    ("metro-card", &[0x3E, 0x7A, 0x0F, 0x11], Make::ForeignKeys),
];

/// The factory cards, made once per process (issuing runs the whole driver path).
fn factory_cards() -> Result<&'static [StoredCard], String> {
    static FACTORY_CARDS: OnceLock<Result<Vec<StoredCard>, String>> = OnceLock::new();
    FACTORY_CARDS
        .get_or_init(|| {
            let mut maker = CardMaker::new()?;
            FACTORY
                .iter()
                .map(|(name, uid, make)| {
                    let card = maker
                        .make(uid, *make, None)
                        .map_err(|e| format!("{name}: {e}"))?;
                    Ok(StoredCard {
                        name: (*name).to_string(),
                        uid: CardUid::new(uid).map_err(|e| format!("{name}: {e}"))?,
                        card,
                    })
                })
                .collect()
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// The cards a fresh simulator starts with, as views: card-1 (¥100), card-2 (¥50, 7-byte UID),
/// card-3 (¥3), bus-card (another campus's wallet), blank-card (transport keys, for the card
/// centre's issue), metro-card (another system's keys). Empty only if the emulated reader
/// cannot be brought up, which `SimCards::open` reports.
pub fn default_cards() -> Vec<SimCard> {
    factory_cards()
        .map(|cards| cards.iter().map(view).collect())
        .unwrap_or_default()
}

/// Makes cards the way the card centre does: a blank emulated card, issued through the wallet
/// on an emulated reader; a state other than the opening one is then written with the key.
struct CardMaker {
    control: EmulatorControl,
    reader: EmulatedReader,
}

impl CardMaker {
    fn new() -> Result<CardMaker, String> {
        let control = EmulatorControl::new();
        let reader = Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR)
            .map_err(|e| e.to_string())?;
        Ok(CardMaker { control, reader })
    }

    /// A card with `uid` made as `make`; for an issued card, `state` replaces the opening state.
    fn make(
        &mut self,
        uid: &[u8],
        make: Make,
        state: Option<SlotState>,
    ) -> Result<EmulatedCard, String> {
        let mut card = EmulatedCard::blank(uid).map_err(|e| e.to_string())?;
        match make {
            Make::Blank => {}
            Make::ForeignKeys => {
                let mut trailer = card
                    .block(TRAILER_BLOCK)
                    .ok_or("no trailer block".to_string())?;
                trailer[..6].copy_from_slice(&FOREIGN_SECTOR_KEY);
                trailer[10..].copy_from_slice(&FOREIGN_SECTOR_KEY);
                card.set_block(TRAILER_BLOCK, trailer)
                    .map_err(|e| e.to_string())?;
            }
            Make::Issued { campus, balance } => {
                let uid = CardUid::new(uid).map_err(|e| e.to_string())?;
                let cfg = WalletConfig {
                    master: MasterKey::demo(),
                    campus,
                };
                let tail: [u8; 4] = uid.as_bytes()[uid.as_bytes().len().saturating_sub(4)..]
                    .try_into()
                    .map_err(|_| "short UID".to_string())?;
                self.control.place_card(card);
                let issued = issue_card(
                    &mut self.reader,
                    &cfg,
                    CardSerial(u32::from_be_bytes(tail)),
                    balance,
                );
                card = self
                    .control
                    .remove_card()
                    .ok_or("the card left the emulated reader".to_string())?;
                issued.map_err(|e| format!("issuing failed: {e}"))?;
                if let Some(state) = state {
                    let mac = cfg.master.card_keys(&uid).mac;
                    for slot in Slot::BOTH {
                        let block = encode_slot(&state, slot, campus, &uid, &mac)
                            .map_err(|e| e.to_string())?;
                        card.set_block(slot.block(), block)
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        Ok(card)
    }
}

/// What `card`'s blocks decode to with the demo master key.
fn view(stored: &StoredCard) -> SimCard {
    let card = &stored.card;
    let uid = stored.uid;
    let mut sim = SimCard {
        name: stored.name.clone(),
        uid,
        balance: Fen::ZERO,
        counter: 0,
        last_tag: TxnTag(0),
        campus: false,
        kind: SimCardKind::Unreadable,
    };
    let block = |n: u8| card.block(n).unwrap_or([0; 16]);
    let trailer = block(TRAILER_BLOCK);
    if trailer[..6] == TRANSPORT_KEY && (HEADER_BLOCK..TRAILER_BLOCK).all(|b| block(b) == [0; 16]) {
        sim.kind = SimCardKind::Blank;
        return sim;
    }
    let keys = MasterKey::demo().card_keys(&uid);
    if trailer[..6] != keys.key_a {
        return sim;
    }
    let Ok(header) = decode_header(&block(HEADER_BLOCK), &uid, &keys.mac) else {
        return sim;
    };
    let slots = Slot::BOTH
        .map(|slot| decode_slot(&block(slot.block()), slot, header.campus, &uid, &keys.mac).ok());
    let Ok((_, state)) = choose_slot(slots[0], slots[1]) else {
        return sim;
    };
    sim.balance = state.balance;
    sim.counter = state.counter;
    sim.last_tag = state.tag;
    if header.campus == DEMO_CAMPUS {
        sim.kind = SimCardKind::Wallet;
        sim.campus = true;
    } else {
        sim.kind = SimCardKind::OtherCampus(header.campus.0);
    }
    sim
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

    /// Makes the process stop dead at `point` of the next sale (kill tests).
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
        println!("PAUSED {point:?}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
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

/// Makes emulated cards matching `views`.
fn make_cards(views: &[SimCard]) -> Result<Vec<StoredCard>, SimCardsError> {
    let mut maker = CardMaker::new().map_err(SimCardsError::Reader)?;
    let mut stored: Vec<StoredCard> = Vec::with_capacity(views.len());
    for sim in views {
        let fail = |detail: String| SimCardsError::Card {
            name: sim.name.clone(),
            detail,
        };
        check_name(&sim.name).map_err(fail)?;
        if stored
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(&sim.name) || s.uid == sim.uid)
        {
            return Err(fail("a card with that name or UID comes earlier".into()));
        }
        let state = SlotState {
            counter: sim.counter,
            balance: sim.balance,
            tag: sim.last_tag,
        };
        let (make, state) = match sim.kind {
            SimCardKind::Wallet => (
                Make::Issued {
                    campus: DEMO_CAMPUS,
                    balance: sim.balance,
                },
                Some(state),
            ),
            SimCardKind::OtherCampus(campus) => (
                Make::Issued {
                    campus: CampusId(campus),
                    balance: sim.balance,
                },
                Some(state),
            ),
            SimCardKind::Blank => (Make::Blank, None),
            SimCardKind::Unreadable => (Make::ForeignKeys, None),
        };
        let card = maker.make(sim.uid.as_bytes(), make, state).map_err(fail)?;
        stored.push(StoredCard {
            name: sim.name.clone(),
            uid: sim.uid,
            card,
        });
    }
    Ok(stored)
}

/// A card name must work in a script line (`tap NAME`, `expect card NAME 1.00`) and in the file.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_CARD_NAME_CHARS {
        return Err(format!(
            "a card name has 1 to {MAX_CARD_NAME_CHARS} characters"
        ));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\' || c == '#')
    {
        return Err(format!(
            "card name '{name}' may not hold blanks, quotes, backslashes or '#'"
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardsFile {
    #[serde(default)]
    card: Vec<CardFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFile {
    name: String,
    uid: String,
    blocks: Vec<String>,
}

/// The file's header comment.
const FILE_HEADER: &str = "\
# Simulated Mifare Classic 1K cards (pos-firmware/src/sim/cards.rs). Each card is its UID and
# its 64 blocks (16 bytes = 32 hex digits each) as the emulated chip holds them, trailers with
# their real keys. The campus wallet is sector 1: block 4 the header, 5 and 6 the two state
# slots, 7 the trailer (key A | access bits | key B); see docs/card-layout.md. Wallet blocks
# carry MACs: a hand-edited balance reads as damaged data. Edit only while the simulator is
# stopped; delete this file to get the factory cards back.
";

fn render_cards(stored: &[StoredCard], views: &[SimCard]) -> String {
    let mut text = String::from(FILE_HEADER);
    for (card, sim) in stored.iter().zip(views) {
        let what = match sim.kind {
            SimCardKind::Wallet => format!(
                "campus wallet: balance {}, counter {}, tag {}",
                sim.balance, sim.counter, sim.last_tag.0
            ),
            SimCardKind::OtherCampus(campus) => format!(
                "wallet of campus {campus}: balance {}, counter {}",
                sim.balance, sim.counter
            ),
            SimCardKind::Blank => "blank (transport keys)".into(),
            SimCardKind::Unreadable => "no wallet readable with the demo key".into(),
        };
        let _ = write!(
            text,
            "\n[[card]]\nname = \"{}\"\nuid = \"{}\"\n# {what}\nblocks = [\n",
            card.name, sim.uid
        );
        for n in 0..CARD_BLOCKS as u8 {
            let block = card.card.block(n).unwrap_or([0; 16]);
            let hex: String = block.iter().map(|b| format!("{b:02X}")).collect();
            let note = match n {
                0 => " manufacturer (UID)",
                HEADER_BLOCK => " wallet header",
                5 | 6 => " wallet slot",
                TRAILER_BLOCK => " wallet trailer",
                n if emulator::access::is_trailer(n) => " trailer",
                _ => "",
            };
            let _ = writeln!(text, "  \"{hex}\", # {n}{note}");
        }
        text.push_str("]\n");
    }
    text
}

fn parse_cards(text: &str) -> Result<Vec<StoredCard>, String> {
    let file: CardsFile = toml::from_str(text).map_err(|e| {
        let hint = if text.contains("balance") && !text.contains("blocks") {
            " (a cards file from before the emulated cards? delete it to get the factory cards)"
        } else {
            ""
        };
        format!("{}{hint}", e.to_string().trim_end())
    })?;
    // An empty file (or one of comments only) is refused like a cut-short one rather than taken
    // as "no cards": the cards' money lives in this file, and the factory cards would undo it.
    if file.card.is_empty() {
        return Err(
            "holds no cards (empty or cut short?): restore it from a copy, or delete it \
                    to get the factory cards back (their balances start afresh)"
                .to_string(),
        );
    }
    if file.card.len() > MAX_SIM_CARDS {
        return Err(format!(
            "{} cards: at most {MAX_SIM_CARDS}",
            file.card.len()
        ));
    }
    let mut stored: Vec<StoredCard> = Vec::with_capacity(file.card.len());
    for (number, entry) in file.card.into_iter().enumerate() {
        let (uid, card) = parse_card(&entry)
            .map_err(|e| format!("card {} ('{}'): {e}", number + 1, entry.name))?;
        if stored
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(&entry.name) || s.uid == uid)
        {
            return Err(format!(
                "card {} ('{}'): its name or UID is used by an earlier card",
                number + 1,
                entry.name
            ));
        }
        stored.push(StoredCard {
            name: entry.name,
            uid,
            card,
        });
    }
    Ok(stored)
}

fn parse_card(entry: &CardFile) -> Result<(CardUid, EmulatedCard), String> {
    check_name(&entry.name)?;
    let uid = CardUid::parse_hex(entry.uid.trim())
        .map_err(|_| format!("uid '{}' is not 4 or 7 bytes of hex", entry.uid))?;
    let mut card = EmulatedCard::blank(uid.as_bytes())
        .map_err(|_| format!("uid '{}': the emulator takes 4- or 7-byte UIDs", entry.uid))?;
    if entry.blocks.len() != CARD_BLOCKS {
        return Err(format!(
            "{} blocks: a Mifare Classic 1K has {CARD_BLOCKS}",
            entry.blocks.len()
        ));
    }
    for (n, line) in (0u8..).zip(&entry.blocks) {
        let block = parse_block(line).map_err(|e| format!("block {n}: {e}"))?;
        card.set_block(n, block).map_err(|e| e.to_string())?;
    }
    let block0 = card.block(0).unwrap_or([0; 16]);
    if !block0.starts_with(uid.as_bytes()) {
        return Err("block 0 does not start with the card's UID".into());
    }
    Ok((uid, card))
}

/// 32 hex digits; blanks between them are allowed.
fn parse_block(line: &str) -> Result<Block, String> {
    let digits: Vec<u8> = line.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() != 32 {
        return Err(format!(
            "'{line}' has {} hex digits, a block 32",
            digits.len()
        ));
    }
    let mut block = [0u8; 16];
    for (byte, pair) in block.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| format!("'{line}' is not hex"))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| format!("'{line}' is not hex"))?;
    }
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::card::IssueRefusal;

    fn write_for(card: &SimCard, amount: u64) -> CardWrite {
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
    fn cards_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut cards = SimCards::open(dir.path()).unwrap();
        cards.tap(0);
        let write = write_for(&cards.cards()[0], 150);
        assert!(matches!(
            cards.write_card(&write),
            CardWriteOutcome::Written(_)
        ));
        let again = SimCards::open(dir.path()).unwrap();
        assert_eq!(again.cards()[0].balance, Fen::new(10_000 - 150));
        assert_eq!(again.cards()[0].counter, 1);
        assert_eq!(again.cards(), cards.cards());
        assert_eq!(again.blocks(0), cards.blocks(0));
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

    #[test]
    fn a_broken_cards_file_is_refused_with_a_reason() {
        let good = render_cards(factory_cards().unwrap(), &default_cards());
        assert_eq!(parse_cards(&good).unwrap().len(), FACTORY.len());
        let cases = [
            ("nonsense", "TOML"),
            (
                "[[card]]\nname=\"x\"\nuid=\"1A2B3C4D\"\nbalance=\"1\"\ncounter=0\nlast_tag=0\ncampus=true",
                "before the emulated cards",
            ),
            ("[[card]]\nname=\"x\"\nuid=\"zz\"\nblocks=[]", "uid 'zz'"),
            ("[[card]]\nname=\"x\"\nuid=\"1A2B3C4D\"\nblocks=[\"00\"]", "1 blocks"),
            ("[[card]]\nname=\"a b\"\nuid=\"1A2B3C4D\"\nblocks=[]", "blanks"),
        ];
        for (text, expected) in cases {
            let error = parse_cards(text).unwrap_err();
            assert!(
                error.contains(expected) || (expected == "TOML" && !error.is_empty()),
                "{text}: {error}"
            );
        }
        let bad_block = good.replacen("  \"1A2B3C4D", "  \"1A2B3C4X", 1);
        let error = parse_cards(&bad_block).unwrap_err();
        assert!(error.contains("card 1 ('card-1'): block 0"), "{error}");
        let wrong_uid = good.replacen("  \"1A2B3C4D", "  \"1A2B3C4E", 1);
        let error = parse_cards(&wrong_uid).unwrap_err();
        assert!(
            error.contains("does not start with the card's UID"),
            "{error}"
        );
        let twice = format!("{good}{}", &good[FILE_HEADER.len()..]);
        let error = parse_cards(&twice).unwrap_err();
        assert!(error.contains("used by an earlier card"), "{error}");
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SIM_CARDS_FILE), [0xFF, 0xFE, 0x00]).unwrap();
        let error = SimCards::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains(SIM_CARDS_FILE), "{error}");
    }
}
