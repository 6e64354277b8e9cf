//! An in-memory Mifare Classic 1K card and reader implementing [`MifareReader`], for testing the
//! wallet without hardware: sector trailers with key A and access bits are enforced for key A,
//! the card can be in or out of the field, halts on release, drops back to idle after a failed
//! authentication, and faults are injected deterministically (the n-th block write torn,
//! garbled, refused or unacknowledged; the n-th authentication failing; the card leaving before
//! the n-th exchange). The chip-level MFRC522 emulator replaces it in end-to-end tests.
//!
//! Simplifications (documented so nobody relies on them): only key A exists on this interface;
//! a trailer write is allowed only when key A may write every field of it (access condition
//! 001); invalid access bytes block the whole sector (as on a real card).

use shared::CardUid;

use super::layout::{decode_access_bytes, transport_trailer, BLOCKS_PER_SECTOR};
use crate::reader::{Block, CardIoError, MifareReader, SectorKey, TappedCard, WriteError};

/// Blocks of a Mifare Classic 1K card (16 sectors × 4).
pub const MIFARE_1K_BLOCK_COUNT: usize = 64;
/// SAK of a Mifare Classic 1K card.
pub const SAK_MIFARE_CLASSIC_1K: u8 = 0x08;
/// SAK of an ISO 14443-4 card that is not a Mifare Classic (a DESFire or a bank card, say).
pub const SAK_ISO_14443_4: u8 = 0x20;
/// Mifare NAK code for a refused command.
const NAK_REFUSED: u8 = 0x0;
/// Mifare NAK code for a command outside an authenticated sector.
const NAK_NOT_AUTHENTICATED: u8 = 0x4;

/// A Mifare Classic 1K card's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryCard {
    uid: CardUid,
    sak: u8,
    blocks: Vec<Block>,
}

impl MemoryCard {
    /// A factory-fresh card: manufacturer block, zero data blocks, transport trailers.
    pub fn blank(uid: CardUid) -> MemoryCard {
        let mut blocks = vec![[0u8; 16]; MIFARE_1K_BLOCK_COUNT];
        let uid_bytes = uid.as_bytes();
        let len = uid_bytes.len().min(15);
        blocks[0][..len].copy_from_slice(&uid_bytes[..len]);
        if len == 4 {
            blocks[0][4] = uid_bytes.iter().fold(0, |bcc, b| bcc ^ b);
        }
        for sector in 0..MIFARE_1K_BLOCK_COUNT / usize::from(BLOCKS_PER_SECTOR) {
            blocks[sector * usize::from(BLOCKS_PER_SECTOR) + 3] = transport_trailer();
        }
        MemoryCard {
            uid,
            sak: SAK_MIFARE_CLASSIC_1K,
            blocks,
        }
    }

    /// The same card answering with another SAK (to present a non-Mifare-Classic card).
    pub fn with_sak(mut self, sak: u8) -> MemoryCard {
        self.sak = sak;
        self
    }

    pub fn uid(&self) -> CardUid {
        self.uid
    }

    /// A block as stored (trailer keys included), bypassing keys: what a card dump shows.
    pub fn block(&self, block: u8) -> Option<Block> {
        self.blocks.get(usize::from(block)).copied()
    }

    /// Overwrites a block bypassing keys: a tampering or cloning tool.
    pub fn set_block(&mut self, block: u8, data: Block) {
        if let Some(slot) = self.blocks.get_mut(usize::from(block)) {
            *slot = data;
        }
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    fn access_conditions(&self, sector: u8) -> Option<[u8; 4]> {
        let trailer = self.block(sector * BLOCKS_PER_SECTOR + 3)?;
        decode_access_bytes([trailer[6], trailer[7], trailer[8]])
    }
}

/// A fault for one block write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// The card left before the data was sent: `NotWritten`, block unchanged, card gone.
    RemovedBeforeWrite,
    /// The card NAKed the write command: `NotWritten`, block unchanged, card stays (idle).
    Nak,
    /// Power lost mid-programming: the first `new_bytes` bytes are new, the rest old;
    /// `MaybeWritten`, card gone.
    Torn { new_bytes: usize },
    /// The block holds a garbled mix of the new data; `MaybeWritten`, card gone.
    Garbled,
    /// The block holds the new data but its ACK was lost; `MaybeWritten`, card stays (idle).
    AckLost,
    /// The block holds the new data, then the card left before the ACK; `MaybeWritten`.
    RemovedAfterWrite,
}

impl WriteFault {
    /// Every fault, with every tear point of a 16-byte block.
    pub fn all() -> Vec<WriteFault> {
        let mut faults = vec![
            WriteFault::RemovedBeforeWrite,
            WriteFault::Nak,
            WriteFault::Garbled,
            WriteFault::AckLost,
            WriteFault::RemovedAfterWrite,
        ];
        faults.extend((0..=16).map(|new_bytes| WriteFault::Torn { new_bytes }));
        faults
    }
}

/// Where the card is in the ISO 14443-3 / Mifare state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChipState {
    /// In the field, answering REQA.
    Idle,
    /// Halted (after release): ignores REQA until it leaves and re-enters the field.
    Halted,
    /// Selected.
    Active,
    /// Selected and authenticated for one sector.
    Authenticated(u8),
}

/// An in-memory reader with at most one card.
#[derive(Debug, Clone)]
pub struct MemoryCardReader {
    card: Option<MemoryCard>,
    in_field: bool,
    state: ChipState,
    exchanges: u64,
    writes: u64,
    auths: u64,
    write_fault: Option<(u64, WriteFault)>,
    auth_fault_at: Option<u64>,
    leave_before_exchange: Option<u64>,
}

impl MemoryCardReader {
    /// A reader with `card` lying on it.
    pub fn new(card: MemoryCard) -> MemoryCardReader {
        let mut reader = MemoryCardReader::empty();
        reader.insert(card);
        reader
    }

    /// A reader with no card.
    pub fn empty() -> MemoryCardReader {
        MemoryCardReader {
            card: None,
            in_field: false,
            state: ChipState::Idle,
            exchanges: 0,
            writes: 0,
            auths: 0,
            write_fault: None,
            auth_fault_at: None,
            leave_before_exchange: None,
        }
    }

    /// Puts another card on the reader.
    pub fn insert(&mut self, card: MemoryCard) {
        self.card = Some(card);
        self.in_field = true;
        self.state = ChipState::Idle;
    }

    pub fn take_card(&mut self) -> Option<MemoryCard> {
        self.in_field = false;
        self.card.take()
    }

    pub fn card(&self) -> Option<&MemoryCard> {
        self.card.as_ref()
    }

    pub fn card_mut(&mut self) -> Option<&mut MemoryCard> {
        self.card.as_mut()
    }

    /// The card leaves the field (it keeps its memory).
    pub fn lift(&mut self) {
        self.in_field = false;
        self.state = ChipState::Idle;
    }

    /// The card comes back into the field (power-on reset: idle, no longer halted).
    pub fn put_back(&mut self) {
        self.in_field = self.card.is_some();
        self.state = ChipState::Idle;
    }

    /// Lift and put back: a new tap.
    pub fn retap(&mut self) {
        self.lift();
        self.put_back();
    }

    pub fn card_in_field(&self) -> bool {
        self.in_field && self.card.is_some()
    }

    /// The `n`-th block write from now (1 = the next one) fails with `fault`.
    pub fn fail_write(&mut self, n: u64, fault: WriteFault) {
        self.write_fault = Some((self.writes.saturating_add(n), fault));
    }

    /// The `n`-th authentication from now (1 = the next one) fails as with a wrong key.
    pub fn fail_auth(&mut self, n: u64) {
        self.auth_fault_at = Some(self.auths.saturating_add(n));
    }

    /// The card leaves the field just before the `n`-th exchange from now (1 = the next call
    /// of any [`MifareReader`] method).
    pub fn leave_before_exchange(&mut self, n: u64) {
        self.leave_before_exchange = Some(self.exchanges.saturating_add(n));
    }

    pub fn clear_faults(&mut self) {
        self.write_fault = None;
        self.auth_fault_at = None;
        self.leave_before_exchange = None;
    }

    /// Calls of [`MifareReader`] methods so far.
    pub fn exchanges(&self) -> u64 {
        self.exchanges
    }

    /// Block writes attempted so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Counts an exchange, applies a pending departure; true when the card can answer.
    fn begin(&mut self) -> bool {
        self.exchanges = self.exchanges.saturating_add(1);
        if self.leave_before_exchange == Some(self.exchanges) {
            self.lift();
        }
        self.card_in_field()
    }

    /// The card, if `block` is in the authenticated sector.
    fn authenticated_card(&mut self, block: u8) -> Result<MemoryCard, CardIoError> {
        let sector = block / BLOCKS_PER_SECTOR;
        if usize::from(block) >= MIFARE_1K_BLOCK_COUNT
            || self.state != ChipState::Authenticated(sector)
        {
            self.state = ChipState::Idle;
            return Err(CardIoError::Nak(NAK_NOT_AUTHENTICATED));
        }
        self.card.clone().ok_or(CardIoError::NoCard)
    }

    fn store(&mut self, block: u8, data: Block) {
        if let Some(card) = self.card.as_mut() {
            card.set_block(block, data);
        }
    }
}

/// Key A's rights on a data block under access condition C1C2C3: (read, write).
fn data_rights_key_a(condition: u8) -> (bool, bool) {
    match condition {
        0b000 => (true, true),
        0b010 | 0b100 | 0b110 | 0b001 => (true, false),
        _ => (false, false),
    }
}

/// Key B is readable with key A (and then is data, not a key) under these trailer conditions.
fn key_b_readable(trailer_condition: u8) -> bool {
    // C1C2C3 = 000, 001 or 010.
    trailer_condition <= 0b010
}

fn is_trailer(block: u8) -> bool {
    block % BLOCKS_PER_SECTOR == BLOCKS_PER_SECTOR - 1
}

impl MifareReader for MemoryCardReader {
    fn select(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        if self.state == ChipState::Halted {
            // Counts as an exchange like any other (for the fault plan), but a halted card
            // ignores REQA.
            let _ = self.begin();
            return Ok(None);
        }
        self.wake()
    }

    fn wake(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        if !self.begin() {
            return Ok(None);
        }
        let Some(card) = &self.card else {
            return Ok(None);
        };
        self.state = ChipState::Active;
        Ok(Some(TappedCard {
            uid: card.uid,
            sak: card.sak,
        }))
    }

    fn authenticate(
        &mut self,
        tapped: &TappedCard,
        block: u8,
        key: &SectorKey,
    ) -> Result<(), CardIoError> {
        if !self.begin() {
            return Err(CardIoError::NoCard);
        }
        if matches!(self.state, ChipState::Idle | ChipState::Halted) {
            return Err(CardIoError::NoCard);
        }
        self.auths = self.auths.saturating_add(1);
        let sector = block / BLOCKS_PER_SECTOR;
        let injected = self.auth_fault_at == Some(self.auths);
        let Some(card) = &self.card else {
            return Err(CardIoError::NoCard);
        };
        let trailer = card.block(sector * BLOCKS_PER_SECTOR + 3);
        let ok = !injected
            && card.uid == tapped.uid
            && card.access_conditions(sector).is_some()
            && trailer.is_some_and(|t| t[..6] == key[..]);
        if ok {
            self.state = ChipState::Authenticated(sector);
            Ok(())
        } else {
            self.state = ChipState::Idle;
            Err(CardIoError::AuthFailed)
        }
    }

    fn read_block(&mut self, block: u8) -> Result<Block, CardIoError> {
        if !self.begin() {
            return Err(CardIoError::NoCard);
        }
        let card = self.authenticated_card(block)?;
        let sector = block / BLOCKS_PER_SECTOR;
        let Some(conditions) = card.access_conditions(sector) else {
            return Err(CardIoError::Nak(NAK_REFUSED));
        };
        let data = card.block(block).ok_or(CardIoError::Nak(NAK_REFUSED))?;
        let slot = usize::from(block % BLOCKS_PER_SECTOR);
        if is_trailer(block) {
            let mut shown = [0u8; 16];
            shown[6..10].copy_from_slice(&data[6..10]);
            if key_b_readable(conditions[3]) {
                shown[10..].copy_from_slice(&data[10..]);
            }
            return Ok(shown);
        }
        if data_rights_key_a(conditions[slot]).0 {
            Ok(data)
        } else {
            self.state = ChipState::Idle;
            Err(CardIoError::Nak(NAK_REFUSED))
        }
    }

    fn write_block(&mut self, block: u8, data: &Block) -> Result<(), WriteError> {
        if !self.begin() {
            return Err(WriteError::NotWritten(CardIoError::NoCard));
        }
        let card = self
            .authenticated_card(block)
            .map_err(WriteError::NotWritten)?;
        let sector = block / BLOCKS_PER_SECTOR;
        let conditions = card.access_conditions(sector);
        let slot = usize::from(block % BLOCKS_PER_SECTOR);
        let allowed = block != 0
            && conditions.is_some_and(|c| {
                if is_trailer(block) {
                    c[3] == 0b001
                } else {
                    data_rights_key_a(c[slot]).1
                }
            });
        if !allowed {
            self.state = ChipState::Idle;
            return Err(WriteError::NotWritten(CardIoError::Nak(NAK_REFUSED)));
        }
        self.writes = self.writes.saturating_add(1);
        let fault = match self.write_fault {
            Some((at, fault)) if at == self.writes => Some(fault),
            _ => None,
        };
        let old = card.block(block).unwrap_or([0u8; 16]);
        match fault {
            None => {
                self.store(block, *data);
                Ok(())
            }
            Some(WriteFault::RemovedBeforeWrite) => {
                self.lift();
                Err(WriteError::NotWritten(CardIoError::NoCard))
            }
            Some(WriteFault::Nak) => {
                self.state = ChipState::Idle;
                Err(WriteError::NotWritten(CardIoError::Nak(NAK_REFUSED)))
            }
            Some(WriteFault::Torn { new_bytes }) => {
                let mut torn = old;
                let new_bytes = new_bytes.min(16);
                torn[..new_bytes].copy_from_slice(&data[..new_bytes]);
                self.store(block, torn);
                self.lift();
                Err(WriteError::MaybeWritten(CardIoError::NoCard))
            }
            Some(WriteFault::Garbled) => {
                let mut garbled = *data;
                for (i, byte) in garbled.iter_mut().enumerate() {
                    if i % 3 == 1 {
                        *byte ^= 0xA5;
                    }
                }
                self.store(block, garbled);
                self.lift();
                Err(WriteError::MaybeWritten(CardIoError::Garbled(
                    "garbled while programming",
                )))
            }
            Some(WriteFault::AckLost) => {
                self.store(block, *data);
                self.state = ChipState::Idle;
                Err(WriteError::MaybeWritten(CardIoError::Garbled("ACK lost")))
            }
            Some(WriteFault::RemovedAfterWrite) => {
                self.store(block, *data);
                self.lift();
                Err(WriteError::MaybeWritten(CardIoError::NoCard))
            }
        }
    }

    fn release(&mut self) -> Result<(), CardIoError> {
        if self.begin() && matches!(self.state, ChipState::Active | ChipState::Authenticated(_)) {
            self.state = ChipState::Halted;
        }
        Ok(())
    }
}
