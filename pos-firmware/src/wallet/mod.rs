//! The campus-card wallet on Mifare Classic 1K, written against the [`MifareReader`] trait so
//! the same code runs on the MFRC522 driver, the chip emulator and the in-memory card (`memory`,
//! feature `emulator`: a test bench, never on a till). It turns a tap into the core's
//! [`CardRead`], carries out the core's [`CardWrite`] as one tear-safe block write (the commit
//! point) followed by a read-back, and issues blank cards. The layout and the money rules behind
//! it are in `docs/card-layout.md`.
//!
//! Never writes twice: after an interrupted write it only reads, and answers `Unknown` when the
//! read cannot show the new state; the core settles that sale at the card's next tap.
//!
//! A failure of the reader chip itself ([`CardIoError::Reader`]) is logged (`tracing` warn, with
//! the driver's error) and reported to the core as [`CardProblem::ReaderFault`] for a tap and
//! [`IssueRefusal::ReaderFault`] for an issue; a write keeps its usual answer (`Refused` only
//! while nothing was sent, else `Unknown`), so a dead reader never aborts a write blindly.

pub mod keys;
pub mod layout;
#[cfg(feature = "emulator")]
pub mod memory;

use shared::{CardUid, Fen};
use std::path::Path;

use crate::core::card::{
    CardImage, CardProblem, CardRead, CardWrite, CardWriteOutcome, IssueOutcome, IssueRefusal,
};
use crate::core::cardcentre::TILL_ISSUE_OPENING_BALANCE;
use crate::reader::{Block, CardIoError, MifareReader, TappedCard, WriteError};
use crate::runtime::CardWriter;
use keys::{CardKeys, MasterKey, MasterKeyError, TRANSPORT_KEY};
use layout::{
    choose_slot, decode_access_bytes, decode_header, decode_slot, encode_header, encode_slot,
    wallet_trailer, CampusId, CardSerial, Header, Slot, SlotState, CARD_FORMAT_MAX_BALANCE_FEN,
    HEADER_BLOCK, TRAILER_BLOCK,
};

/// The usual place of the master key on a till, as the settings template names it (the file
/// is only read where `till.toml`'s `[card] master_key_file` names it): 64 hex digits, readable
/// by the till's user only.
pub const DEFAULT_MASTER_KEY_PATH: &str = "/etc/campus-pos/card-master.key";
/// The campus id of the simulator and the tests.
pub const DEMO_CAMPUS: CampusId = CampusId(1);
/// SAKs of Mifare Classic cards (1K, 1K Infineon, Mini, 4K, SmartMX with Classic 1K / 4K).
pub const MIFARE_CLASSIC_SAKS: [u8; 6] = [0x08, 0x88, 0x09, 0x18, 0x28, 0x38];
/// Reads of the card after a write, to see whether it holds the new state: the first in the
/// same session, the others after a fresh select and authentication.
pub const CONFIRM_ATTEMPTS_MAX: u32 = 2;
/// The tag and counter of the state written at issue (the core's: it recognises a card still
/// as issued).
pub use crate::core::card::{ISSUE_COUNTER, ISSUE_TAG};
/// Permission bits of the master key file that must be clear: no group or other access.
const KEY_FILE_FORBIDDEN_MODE_BITS: u32 = 0o077;

/// What the wallet needs to know: the card centre's master key and this campus's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletConfig {
    pub master: MasterKey,
    pub campus: CampusId,
}

impl WalletConfig {
    /// The simulator's configuration: the demo master key (never for real money).
    pub fn demo() -> WalletConfig {
        WalletConfig {
            master: MasterKey::demo(),
            campus: DEMO_CAMPUS,
        }
    }
}

/// Why the master key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyFileError {
    #[error("cannot read the card master key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the card master key file {path} is readable by others (mode {mode:o}); chmod 600 it")]
    TooOpen { path: String, mode: u32 },
    #[error("the card master key file {path} is not a key: {source}")]
    Invalid {
        path: String,
        source: MasterKeyError,
    },
}

/// Loads the master key: a file holding 64 hex digits, with no group or other permissions.
pub fn load_master_key(path: &Path) -> Result<MasterKey, MasterKeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let read_error = |source| MasterKeyFileError::Read {
        path: shown.clone(),
        source,
    };
    let mode = std::fs::metadata(path)
        .map_err(read_error)?
        .permissions()
        .mode();
    if mode & KEY_FILE_FORBIDDEN_MODE_BITS != 0 {
        return Err(MasterKeyFileError::TooOpen {
            path: shown,
            mode: mode & 0o777,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    MasterKey::from_hex(&text).map_err(|source| MasterKeyFileError::Invalid {
        path: shown,
        source,
    })
}

/// Why a card was not issued. "Nothing written" errors leave the card as it was; see
/// `docs/card-layout.md` for what staff do after the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("no card on the reader")]
    NoCard,
    #[error("not a Mifare Classic card (SAK {0:#04x})")]
    NotMifareClassic(u8),
    #[error("the card is already a wallet of this card centre")]
    AlreadyIssued,
    #[error("the wallet sector opens with neither the transport key nor this centre's key")]
    UnknownKeys,
    #[error("the wallet sector's trailer may not be rewritten with key A: not a blank card")]
    TrailerLocked,
    #[error("opening balance {0} fen is above the card maximum")]
    BalanceAboveMax(u64),
    #[error("card exchange failed before anything was written: {0}")]
    Io(CardIoError),
    #[error("writing block {block} failed (card still on transport keys: issue again): {error}")]
    DataWriteFailed { block: u8, error: WriteError },
    /// The data blocks were written (ACKed) but do not read back as written, or the read-back
    /// failed: a weak or garbled write. The trailer was not written, so the card is still on
    /// transport keys: issue again.
    #[error(
        "block {block} did not read back as written (card still on transport keys: issue again)"
    )]
    DataNotVerified { block: u8 },
    #[error("writing the sector trailer failed: tap the card to see whether it is issued, blank or lost: {0}")]
    TrailerWriteFailed(WriteError),
    #[error("the card did not read back as the issued wallet")]
    NotVerified,
}

/// Reads the card on the reader for a tap: `None` when there is no card.
pub fn read_card(reader: &mut dyn MifareReader, cfg: &WalletConfig) -> Option<CardRead> {
    let read = read_wallet(reader, cfg).map(|(_, read)| read);
    // The read is complete whatever HLTA answers; a halted card waits for the next tap.
    let _ = reader.release();
    read
}

/// Carries out the core's write on the card on the reader (selecting it afresh).
pub fn write_card(
    reader: &mut dyn MifareReader,
    cfg: &WalletConfig,
    write: &CardWrite,
) -> CardWriteOutcome {
    let outcome = write_in_session(reader, cfg, write, None);
    let _ = reader.release();
    outcome
}

/// Turns a blank card (transport keys) into a wallet holding `opening_balance`: header, both
/// slots, and the sector trailer last.
pub fn issue_card(
    reader: &mut dyn MifareReader,
    cfg: &WalletConfig,
    serial: CardSerial,
    opening_balance: Fen,
) -> Result<CardImage, IssueError> {
    let result = issue_in_session(reader, cfg, Some(serial), opening_balance, &mut None);
    let _ = reader.release();
    result
}

/// The wallet over a reader, as the runtime uses it: `tap` for reads, [`CardWriter`] for the
/// write that follows. The card a tap read stays selected (and its sector authenticated) until
/// the write or the next tap, so the write does not depend on re-selecting a halted card.
pub struct WalletReader<R: MifareReader> {
    reader: R,
    config: WalletConfig,
    held: Option<TappedCard>,
}

impl<R: MifareReader> WalletReader<R> {
    pub fn new(reader: R, config: WalletConfig) -> WalletReader<R> {
        WalletReader {
            reader,
            config,
            held: None,
        }
    }

    /// Looks for a card and reads its wallet; `None` when no (new) card is there.
    pub fn tap(&mut self) -> Option<CardRead> {
        self.release_held();
        let (held, read) = read_wallet(&mut self.reader, &self.config)?;
        if held.is_some() {
            self.held = held;
        } else {
            let _ = self.reader.release();
        }
        Some(read)
    }

    /// Issues the card on the reader (card-centre use).
    pub fn issue(
        &mut self,
        serial: CardSerial,
        opening_balance: Fen,
    ) -> Result<CardImage, IssueError> {
        self.release_held();
        issue_card(&mut self.reader, &self.config, serial, opening_balance)
    }

    pub fn config(&self) -> &WalletConfig {
        &self.config
    }

    pub fn reader(&self) -> &R {
        &self.reader
    }

    pub fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    pub fn into_reader(self) -> R {
        self.reader
    }

    fn release_held(&mut self) {
        if self.held.take().is_some() {
            let _ = self.reader.release();
        }
    }
}

impl<R: MifareReader> CardWriter for WalletReader<R> {
    fn write_card(&mut self, write: &CardWrite) -> CardWriteOutcome {
        let held = self.held.take();
        let outcome = write_in_session(&mut self.reader, &self.config, write, held);
        let _ = self.reader.release();
        outcome
    }

    /// Issues the blank card on the reader with a zero balance (money goes on by top-up, which
    /// is journaled). The card serial is the UID's last 4 bytes until a card-management system
    /// assigns serials.
    fn issue_card(&mut self) -> IssueOutcome {
        self.release_held();
        // One session: a select, a HLTA and a second select would find no card on a real
        // reader (a halted card does not answer REQA).
        let mut woken = None;
        let result = issue_in_session(
            &mut self.reader,
            &self.config,
            None,
            TILL_ISSUE_OPENING_BALANCE,
            &mut woken,
        );
        let _ = self.reader.release();
        if let Err(error) = &result {
            if let Some(e) = error.card_io().filter(|e| is_reader_fault(e)) {
                tracing::warn!(error = %e, "card reader fault while issuing a card: {error}");
            }
        }
        match result {
            Ok(image) => IssueOutcome::Issued(image),
            Err(IssueError::Io(error)) if is_reader_fault(&error) => {
                IssueOutcome::NotIssued(IssueRefusal::ReaderFault)
            }
            Err(IssueError::NoCard | IssueError::Io(_)) => {
                IssueOutcome::NotIssued(IssueRefusal::NoCard)
            }
            Err(IssueError::AlreadyIssued) => IssueOutcome::NotIssued(IssueRefusal::AlreadyIssued),
            Err(
                IssueError::NotMifareClassic(_)
                | IssueError::UnknownKeys
                | IssueError::TrailerLocked
                | IssueError::BalanceAboveMax(_),
            ) => IssueOutcome::NotIssued(IssueRefusal::NotBlank),
            Err(
                IssueError::DataWriteFailed { .. }
                | IssueError::DataNotVerified { .. }
                | IssueError::TrailerWriteFailed(_)
                | IssueError::NotVerified,
            ) => IssueOutcome::Interrupted { uid: woken },
        }
    }
}

impl IssueError {
    /// The failed exchange behind this error, if it was one.
    fn card_io(&self) -> Option<&CardIoError> {
        match self {
            IssueError::Io(e) => Some(e),
            IssueError::DataWriteFailed { error, .. } | IssueError::TrailerWriteFailed(error) => {
                Some(error.cause())
            }
            _ => None,
        }
    }
}

/// Reads the wallet; on success also returns the card, still selected and authenticated.
fn read_wallet(
    reader: &mut dyn MifareReader,
    cfg: &WalletConfig,
) -> Option<(Option<TappedCard>, CardRead)> {
    let card = match reader.select() {
        Ok(None) => return None,
        Ok(Some(card)) => card,
        Err(error) => return Some((None, CardRead::Unreadable(tap_problem(&error, "select")))),
    };
    match read_selected(reader, cfg, &card) {
        Ok(image) => Some((Some(card), CardRead::Card(image))),
        Err(problem) => Some((None, CardRead::Unreadable(problem))),
    }
}

fn read_selected(
    reader: &mut dyn MifareReader,
    cfg: &WalletConfig,
    card: &TappedCard,
) -> Result<CardImage, CardProblem> {
    if !MIFARE_CLASSIC_SAKS.contains(&card.sak) {
        return Err(CardProblem::NotCampusCard);
    }
    let keys = cfg.master.card_keys(&card.uid);
    match reader.authenticate(card, HEADER_BLOCK, &keys.key_a) {
        Ok(()) => {}
        Err(CardIoError::AuthFailed) => return Err(classify_auth_failure(reader, card)),
        Err(error) => return Err(tap_problem(&error, "authenticate")),
    }
    let header = reader
        .read_block(HEADER_BLOCK)
        .map_err(|error| tap_problem(&error, "read the header"))?;
    match decode_header(&header, &card.uid, &keys.mac) {
        Ok(header) if header.campus == cfg.campus => {}
        Ok(_) => return Err(CardProblem::OtherCampus),
        Err(_) => return Err(CardProblem::BadMac),
    }
    let slots = read_slots(reader, cfg, &keys, &card.uid)
        .map_err(|error| tap_problem(&error, "read the slots"))?;
    let (_, state) = choose_slot(slots[0], slots[1]).map_err(|_| CardProblem::BadMac)?;
    Ok(image(card.uid, &state))
}

/// Our key did not open the sector: a card on transport keys is unformatted, anything else
/// has keys we do not know. A failed authentication drops the card to idle, so select again.
fn classify_auth_failure(reader: &mut dyn MifareReader, card: &TappedCard) -> CardProblem {
    let again = match reader.select() {
        Ok(Some(again)) if again.uid == card.uid => again,
        Err(error) => return tap_problem(&error, "select again"),
        Ok(_) => return CardProblem::ReadFailed,
    };
    match reader.authenticate(&again, HEADER_BLOCK, &TRANSPORT_KEY) {
        Ok(()) => CardProblem::Unformatted,
        Err(CardIoError::AuthFailed) => CardProblem::WrongKey,
        Err(error) => tap_problem(&error, "authenticate with the transport key"),
    }
}

/// What a failed exchange of a tap means for the core: the reader chip failing is a
/// [`CardProblem::ReaderFault`] (logged with the driver's error), anything else a failed read
/// of the card (tap again).
fn tap_problem(error: &CardIoError, step: &'static str) -> CardProblem {
    if is_reader_fault(error) {
        tracing::warn!(%error, step, "card reader fault during a tap");
        CardProblem::ReaderFault
    } else {
        tracing::debug!(%error, step, "card read failed");
        CardProblem::ReadFailed
    }
}

fn is_reader_fault(error: &CardIoError) -> bool {
    matches!(error, CardIoError::Reader(_))
}

/// Logs a reader fault met during a card write, with what it means for the write.
fn note_write_fault(error: &CardIoError, step: &'static str, outcome: &'static str) {
    if is_reader_fault(error) {
        tracing::warn!(%error, step, outcome, "card reader fault during a card write");
    }
}

/// Both slots, each `None` when it does not decode (torn, garbled, forged).
fn read_slots(
    reader: &mut dyn MifareReader,
    cfg: &WalletConfig,
    keys: &CardKeys,
    uid: &CardUid,
) -> Result<[Option<SlotState>; 2], CardIoError> {
    let mut states = [None; 2];
    for (state, slot) in states.iter_mut().zip(Slot::BOTH) {
        let block = reader.read_block(slot.block())?;
        *state = decode_slot(&block, slot, cfg.campus, uid, &keys.mac).ok();
    }
    Ok(states)
}

/// Selects the card with `uid` and authenticates the wallet sector with its key A.
fn open(
    reader: &mut dyn MifareReader,
    keys: &CardKeys,
    uid: &CardUid,
) -> Result<TappedCard, CardIoError> {
    match reader.select()? {
        Some(card) if card.uid == *uid => {
            reader.authenticate(&card, HEADER_BLOCK, &keys.key_a)?;
            Ok(card)
        }
        _ => Err(CardIoError::NoCard),
    }
}

fn image(uid: CardUid, state: &SlotState) -> CardImage {
    CardImage {
        uid,
        balance: state.balance,
        counter: state.counter,
        last_tag: state.tag,
    }
}

fn write_in_session(
    reader: &mut dyn MifareReader,
    cfg: &WalletConfig,
    write: &CardWrite,
    held: Option<TappedCard>,
) -> CardWriteOutcome {
    if Some(write.new_counter) != write.counter_before.checked_add(1)
        || write.new_balance.get() > CARD_FORMAT_MAX_BALANCE_FEN
    {
        return CardWriteOutcome::Refused;
    }
    let keys = cfg.master.card_keys(&write.uid);
    // Before the commit point nothing has been sent: every failure is a refusal.
    let in_held_session = held
        .filter(|card| card.uid == write.uid)
        .and_then(|_| read_slots(reader, cfg, &keys, &write.uid).ok());
    let slots = match in_held_session {
        Some(slots) => slots,
        None => {
            let fresh = open(reader, &keys, &write.uid)
                .and_then(|_| read_slots(reader, cfg, &keys, &write.uid));
            match fresh {
                Ok(slots) => slots,
                Err(error) => {
                    note_write_fault(&error, "read before the write", "refused: nothing sent");
                    return CardWriteOutcome::Refused;
                }
            }
        }
    };
    let Ok((current_slot, current)) = choose_slot(slots[0], slots[1]) else {
        return CardWriteOutcome::Refused;
    };
    if current.counter != write.counter_before {
        return CardWriteOutcome::Refused;
    }
    let target = current_slot.other();
    let new_state = SlotState {
        counter: write.new_counter,
        balance: write.new_balance,
        tag: write.tag,
    };
    let Ok(block) = encode_slot(&new_state, target, cfg.campus, &write.uid, &keys.mac) else {
        return CardWriteOutcome::Refused;
    };
    // The commit point: the older slot, never the one holding the current state.
    match reader.write_block(target.block(), &block) {
        Ok(()) => {}
        Err(WriteError::MaybeWritten(error)) => {
            note_write_fault(&error, "write the slot", "data sent: read back");
        }
        Err(WriteError::NotWritten(error)) => {
            note_write_fault(&error, "write command", "refused: no data sent");
            return CardWriteOutcome::Refused;
        }
    }
    confirm(reader, cfg, &keys, &write.uid, &new_state)
}

/// Reads the card back after the write: `Written` only when its newest valid state is exactly
/// the one written. Data was sent, so anything else is `Unknown`, never `Refused`.
fn confirm(
    reader: &mut dyn MifareReader,
    cfg: &WalletConfig,
    keys: &CardKeys,
    uid: &CardUid,
    new_state: &SlotState,
) -> CardWriteOutcome {
    for attempt in 0..CONFIRM_ATTEMPTS_MAX {
        let slots = if attempt == 0 {
            read_slots(reader, cfg, keys, uid)
        } else {
            open(reader, keys, uid).and_then(|_| read_slots(reader, cfg, keys, uid))
        };
        match slots {
            Ok(slots) => {
                return match choose_slot(slots[0], slots[1]) {
                    Ok((_, state)) if state == *new_state => {
                        CardWriteOutcome::Written(image(*uid, &state))
                    }
                    _ => CardWriteOutcome::Unknown,
                };
            }
            Err(error) => note_write_fault(&error, "read back", "unknown: the next tap settles it"),
        }
    }
    CardWriteOutcome::Unknown
}

/// `serial: None` numbers the card by its UID's last 4 bytes (until a card-management system
/// assigns serials). `woken` gets the card's UID once it answered.
fn issue_in_session(
    reader: &mut dyn MifareReader,
    cfg: &WalletConfig,
    serial: Option<CardSerial>,
    opening_balance: Fen,
    woken: &mut Option<CardUid>,
) -> Result<CardImage, IssueError> {
    if opening_balance.get() > CARD_FORMAT_MAX_BALANCE_FEN {
        return Err(IssueError::BalanceAboveMax(opening_balance.get()));
    }
    // WUPA: the blank card usually lies on the reader since the tap that read it (and halted it).
    let card = reader
        .wake()
        .map_err(IssueError::Io)?
        .ok_or(IssueError::NoCard)?;
    *woken = Some(card.uid);
    if !MIFARE_CLASSIC_SAKS.contains(&card.sak) {
        return Err(IssueError::NotMifareClassic(card.sak));
    }
    let keys = cfg.master.card_keys(&card.uid);
    match reader.authenticate(&card, HEADER_BLOCK, &keys.key_a) {
        Ok(()) => return Err(IssueError::AlreadyIssued),
        Err(CardIoError::AuthFailed) => {}
        Err(error) => return Err(IssueError::Io(error)),
    }
    // The failed authentication sent the card back to HALT (it was woken from there): WUPA again.
    let card = match reader.wake().map_err(IssueError::Io)? {
        Some(again) if again.uid == card.uid => again,
        _ => return Err(IssueError::NoCard),
    };
    match reader.authenticate(&card, HEADER_BLOCK, &TRANSPORT_KEY) {
        Ok(()) => {}
        Err(CardIoError::AuthFailed) => return Err(IssueError::UnknownKeys),
        Err(error) => return Err(IssueError::Io(error)),
    }
    let trailer = reader.read_block(TRAILER_BLOCK).map_err(IssueError::Io)?;
    if decode_access_bytes([trailer[6], trailer[7], trailer[8]]).map(|c| c[3]) != Some(0b001) {
        return Err(IssueError::TrailerLocked);
    }
    let serial = serial.unwrap_or_else(|| {
        let uid = card.uid.as_bytes();
        let tail: [u8; 4] = uid[uid.len().saturating_sub(4)..]
            .try_into()
            .unwrap_or([0; 4]);
        CardSerial(u32::from_be_bytes(tail))
    });
    let header = Header {
        campus: cfg.campus,
        serial,
    };
    let opening = SlotState {
        counter: ISSUE_COUNTER,
        balance: opening_balance,
        tag: ISSUE_TAG,
    };
    let mut data: Vec<(u8, Block)> =
        vec![(HEADER_BLOCK, encode_header(&header, &card.uid, &keys.mac))];
    for slot in Slot::BOTH {
        let block = encode_slot(&opening, slot, cfg.campus, &card.uid, &keys.mac)
            .map_err(|_| IssueError::BalanceAboveMax(opening_balance.get()))?;
        data.push((slot.block(), block));
    }
    for (block, bytes) in &data {
        reader
            .write_block(*block, bytes)
            .map_err(|error| IssueError::DataWriteFailed {
                block: *block,
                error,
            })?;
    }
    // Before the trailer locks the transport key out: the data must read back exactly as
    // written (an ACKed write can still be garbled), or the card would be keyed with a header or
    // slot it cannot use; still on transport keys, it can simply be issued again.
    for (block, bytes) in &data {
        match reader.read_block(*block) {
            Ok(back) if back == *bytes => {}
            _ => return Err(IssueError::DataNotVerified { block: *block }),
        }
    }
    // Last, and the only risky write: from here on only key A = derived opens the sector.
    reader
        .write_block(TRAILER_BLOCK, &wallet_trailer(&keys))
        .map_err(IssueError::TrailerWriteFailed)?;
    read_selected(reader, cfg, &card).map_err(|_| IssueError::NotVerified)
}
