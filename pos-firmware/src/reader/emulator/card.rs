//! An emulated Mifare Classic 1K card: its 64 blocks and the ISO/IEC 14443-3 type A state
//! machine (IDLE, READY per cascade level, ACTIVE, HALT, plus Mifare's AUTHENTICATED) answering
//! REQA/WUPA, anticollision and select at cascade levels 1 and 2, HLTA, READ and the two-phase
//! WRITE, with the sector access conditions enforced. Crypto1 itself is not emulated: a frame is
//! marked encrypted when the chip's MFCrypto1On bit was set, and the card understands encrypted
//! frames exactly when it is authenticated, which is what a real card observably does.

use super::access::{is_trailer, sector_of, trailer_of, KeyType, SectorAccess, BLOCK_COUNT};
use super::access::{BLOCKS_PER_SECTOR, TRANSPORT_ACCESS_BYTES};
use super::frame::{Answer, Frame};
use super::EmulatorError;
use crate::reader::crc::has_valid_crc_a;
use crate::reader::{Block, SectorKey};

/// 4-bit ACK of a Mifare Classic card.
pub const MIFARE_ACK: u8 = 0x0A;
/// 4-bit NAK: command not allowed (access conditions, wrong sector, not authenticated).
pub const MIFARE_NAK_NOT_ALLOWED: u8 = 0x04;
/// 4-bit NAK: transmission error (CRC or parity) seen by the card.
pub const MIFARE_NAK_TRANSMISSION: u8 = 0x05;
/// The transport key every sector has from the factory (keys A and B).
pub const TRANSPORT_KEY: SectorKey = [0xFF; 6];
/// Cascade tag: first byte of cascade level 1 for a UID longer than 4 bytes.
pub const CASCADE_TAG: u8 = 0x88;
/// SAK of a Mifare Classic 1K once its UID is complete.
pub const SAK_MIFARE_1K: u8 = 0x08;
/// SAK bit 3 (0x04): "UID not complete", sent at cascade level 1 of a 7-byte UID.
pub const SAK_UID_INCOMPLETE: u8 = 0x04;

const REQA: u8 = 0x26;
const WUPA: u8 = 0x52;
const HLTA: u8 = 0x50;
const MF_READ: u8 = 0x30;
const MF_WRITE: u8 = 0xA0;
const SELECT_CL1: u8 = 0x93;
const SELECT_CL2: u8 = 0x95;
/// NVB of a full SELECT (7 valid bytes: SEL, NVB, 4 UID bytes, BCC).
const NVB_SELECT: u8 = 0x70;
/// Bits in the 5-byte anticollision answer (4 UID bytes + BCC).
const CASCADE_ANSWER_BITS: u8 = 40;
/// The low nibble of an anticollision NVB counts the valid bits of a partial byte: 0-7.
const NVB_MAX_PARTIAL_BITS: u8 = 8;

/// The card's protocol state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardState {
    /// Powered, waiting for REQA or WUPA.
    Idle,
    /// Answered REQA/WUPA; expects anticollision/select at `cascade_level` (1 or 2).
    Ready { cascade_level: u8 },
    /// Selected.
    Active,
    /// Halted: answers only WUPA.
    Halt,
    /// Authenticated to `sector` with `key`; `armed_write` holds the block of a WRITE whose
    /// command phase was ACKed and whose data has not arrived yet.
    Authenticated {
        sector: u8,
        key: KeyType,
        armed_write: Option<u8>,
    },
}

/// An emulated Mifare Classic 1K card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedCard {
    uid: Vec<u8>,
    blocks: Vec<Block>,
    state: CardState,
    /// The card was woken from HALT (WUPA): errors send it back to HALT, not IDLE.
    woke_from_halt: bool,
}

impl EmulatedCard {
    /// A factory-fresh card: transport keys, transport access bits FF 07 80 69 in every
    /// trailer, zeroed data blocks, and block 0 with the UID, BCC (4-byte UID), SAK and ATQA.
    pub fn blank(uid: &[u8]) -> Result<EmulatedCard, EmulatorError> {
        if !matches!(uid.len(), 4 | 7) {
            return Err(EmulatorError::UnsupportedUidLength(uid.len()));
        }
        let mut blocks = vec![[0u8; 16]; usize::from(BLOCK_COUNT)];
        let mut block0 = [0u8; 16];
        block0[..uid.len()].copy_from_slice(uid);
        let mut at = uid.len();
        if uid.len() == 4 {
            block0[4] = uid.iter().fold(0, |bcc, b| bcc ^ b);
            at = 5;
        }
        let atqa = Self::atqa_for(uid.len());
        block0[at] = SAK_MIFARE_1K;
        block0[at + 1..at + 3].copy_from_slice(&atqa);
        // Manufacturer data: a fixed, recognisable filler.
        for (i, byte) in block0.iter_mut().enumerate().skip(at + 3) {
            *byte = 0x60 + i as u8;
        }
        blocks[0] = block0;
        for sector in 0..BLOCK_COUNT / BLOCKS_PER_SECTOR {
            let trailer = &mut blocks[usize::from(trailer_of(sector))];
            trailer[0..6].copy_from_slice(&TRANSPORT_KEY);
            trailer[6..10].copy_from_slice(&TRANSPORT_ACCESS_BYTES);
            trailer[10..16].copy_from_slice(&TRANSPORT_KEY);
        }
        Ok(EmulatedCard {
            uid: uid.to_vec(),
            blocks,
            state: CardState::Idle,
            woke_from_halt: false,
        })
    }

    fn atqa_for(uid_len: usize) -> [u8; 2] {
        if uid_len == 4 {
            [0x04, 0x00]
        } else {
            [0x44, 0x00]
        }
    }

    /// The card's UID.
    pub fn uid(&self) -> &[u8] {
        &self.uid
    }

    /// The UID bytes the card mixes into authentication: the last four (for a 7-byte UID the
    /// cascade level 2 part, NXP AN10927).
    pub fn auth_uid(&self) -> [u8; 4] {
        let mut last4 = [0u8; 4];
        last4.copy_from_slice(&self.uid[self.uid.len() - 4..]);
        last4
    }

    /// The protocol state.
    pub fn state(&self) -> CardState {
        self.state
    }

    /// The stored content of `block` (trailers with their real keys).
    pub fn block(&self, block: u8) -> Option<Block> {
        self.blocks.get(usize::from(block)).copied()
    }

    /// Overwrites `block` directly (forging, replaying an old image, setting keys).
    pub fn set_block(&mut self, block: u8, data: Block) -> Result<(), EmulatorError> {
        let slot = self
            .blocks
            .get_mut(usize::from(block))
            .ok_or(EmulatorError::NoSuchBlock(block))?;
        *slot = data;
        Ok(())
    }

    /// Sets key A of `sector` directly.
    pub fn set_key_a(&mut self, sector: u8, key: SectorKey) -> Result<(), EmulatorError> {
        let trailer = trailer_of(sector);
        let mut data = self
            .block(trailer)
            .ok_or(EmulatorError::NoSuchBlock(trailer))?;
        data[0..6].copy_from_slice(&key);
        self.set_block(trailer, data)
    }

    /// Sets access bytes 6..=9 of `sector`'s trailer directly.
    pub fn set_access_bytes(&mut self, sector: u8, bytes: [u8; 4]) -> Result<(), EmulatorError> {
        let trailer = trailer_of(sector);
        let mut data = self
            .block(trailer)
            .ok_or(EmulatorError::NoSuchBlock(trailer))?;
        data[6..10].copy_from_slice(&bytes);
        self.set_block(trailer, data)
    }

    /// The field came on or went off: the card (re)starts in IDLE.
    pub fn power_cycle(&mut self) {
        self.state = CardState::Idle;
        self.woke_from_halt = false;
    }

    /// A protocol error: back to IDLE, or to HALT if it had been woken from there.
    pub fn fail(&mut self) {
        self.state = if self.woke_from_halt {
            CardState::Halt
        } else {
            CardState::Idle
        };
    }

    /// The card is authenticated (it understands encrypted frames).
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, CardState::Authenticated { .. })
    }

    /// The block of an ACKed write command waiting for its data.
    pub fn armed_write(&self) -> Option<u8> {
        match self.state {
            CardState::Authenticated { armed_write, .. } => armed_write,
            _ => None,
        }
    }

    fn access(&self, sector: u8) -> SectorAccess {
        let trailer = self.blocks[usize::from(trailer_of(sector))];
        SectorAccess::from_trailer(&trailer)
    }

    /// The MFAuthent exchange: `key_command` 0x60 (key A) or 0x61 (key B), the block, the key
    /// and the four UID bytes the reader used. Only an ACTIVE or authenticated card takes part.
    pub fn authenticate(
        &mut self,
        key_command: u8,
        block: u8,
        key: &SectorKey,
        uid4: &[u8; 4],
    ) -> bool {
        if !matches!(
            self.state,
            CardState::Active | CardState::Authenticated { .. }
        ) {
            return false;
        }
        let key_type = match key_command {
            0x60 => KeyType::A,
            0x61 => KeyType::B,
            _ => {
                self.fail();
                return false;
            }
        };
        if block >= BLOCK_COUNT || *uid4 != self.auth_uid() {
            self.fail();
            return false;
        }
        let sector = sector_of(block);
        let trailer = self.blocks[usize::from(trailer_of(sector))];
        let stored = match key_type {
            KeyType::A => &trailer[0..6],
            KeyType::B => &trailer[10..16],
        };
        if stored != key {
            self.fail();
            return false;
        }
        self.state = CardState::Authenticated {
            sector,
            key: key_type,
            armed_write: None,
        };
        true
    }

    /// Handles one frame; `None` is silence.
    pub fn handle(&mut self, frame: Frame<'_>) -> Option<Answer> {
        if frame.encrypted != self.is_authenticated() {
            // The card cannot decode it (plain text while authenticated, or the reader's
            // crypto still on from an earlier card): a transmission error, silence.
            if !matches!(self.state, CardState::Idle | CardState::Halt) {
                self.fail();
            }
            return None;
        }
        if frame.last_bits == 7 && frame.bytes.len() == 1 {
            return self.handle_short_frame(frame.bytes[0]);
        }
        match self.state {
            CardState::Idle | CardState::Halt => None,
            CardState::Ready { cascade_level } => self.handle_ready(cascade_level, frame),
            CardState::Active | CardState::Authenticated { .. } => {
                if frame.last_bits != 0 {
                    self.fail();
                    return None;
                }
                self.handle_selected(frame.bytes)
            }
        }
    }

    fn handle_short_frame(&mut self, command: u8) -> Option<Answer> {
        let wakes = match (command, self.state) {
            (REQA, CardState::Idle) => true,
            (WUPA, CardState::Idle | CardState::Halt) => true,
            (REQA, CardState::Halt) => return None,
            _ => false,
        };
        if !wakes {
            self.fail();
            return None;
        }
        self.woke_from_halt = self.state == CardState::Halt;
        self.state = CardState::Ready { cascade_level: 1 };
        Some(Answer::bytes(Self::atqa_for(self.uid.len()).to_vec()))
    }

    /// The 4 UID bytes + BCC the card shows at `cascade_level`.
    fn cascade_bytes(&self, cascade_level: u8) -> [u8; 5] {
        let mut part = [0u8; 5];
        match (self.uid.len(), cascade_level) {
            (4, _) => part[..4].copy_from_slice(&self.uid),
            (_, 1) => {
                part[0] = CASCADE_TAG;
                part[1..4].copy_from_slice(&self.uid[..3]);
            }
            _ => part[..4].copy_from_slice(&self.uid[3..7]),
        }
        part[4] = part[..4].iter().fold(0, |bcc, b| bcc ^ b);
        part
    }

    fn uid_complete_at(&self, cascade_level: u8) -> bool {
        self.uid.len() == 4 || cascade_level == 2
    }

    fn handle_ready(&mut self, cascade_level: u8, frame: Frame<'_>) -> Option<Answer> {
        let expected_sel = if cascade_level == 1 {
            SELECT_CL1
        } else {
            SELECT_CL2
        };
        let bytes = frame.bytes;
        if bytes.len() < 2 || bytes[0] != expected_sel {
            self.fail();
            return None;
        }
        let part = self.cascade_bytes(cascade_level);
        if bytes[1] == NVB_SELECT && frame.last_bits == 0 {
            if bytes.len() != 9 || !has_valid_crc_a(bytes) || bytes[2..7] != part {
                self.fail();
                return None;
            }
            return if self.uid_complete_at(cascade_level) {
                self.state = CardState::Active;
                Some(Answer::with_crc(&[SAK_MIFARE_1K]))
            } else {
                self.state = CardState::Ready {
                    cascade_level: cascade_level + 1,
                };
                Some(Answer::with_crc(&[SAK_UID_INCOMPLETE]))
            };
        }
        // Anticollision: NVB = bytes sent (high nibble, with SEL and NVB) and extra bits (low
        // nibble, 0-7). Any other NVB is a malformed frame, which a real card answers with
        // silence and a protocol error (back to IDLE or HALT), never with a fault of its own.
        let partial_bits = bytes[1] & 0x0F;
        let Some(known_bytes) = (bytes[1] >> 4).checked_sub(2) else {
            self.fail();
            return None;
        };
        if partial_bits >= NVB_MAX_PARTIAL_BITS {
            self.fail();
            return None;
        }
        let known_bits = known_bytes * 8 + partial_bits;
        if known_bits >= CASCADE_ANSWER_BITS {
            self.fail();
            return None;
        }
        let known = &bytes[2..];
        let whole = usize::from(known_bytes);
        let prefix_matches = known.len() >= whole
            && known[..whole] == part[..whole]
            && (partial_bits == 0
                || known.get(whole).is_some_and(|b| {
                    let mask = (1u8 << partial_bits) - 1;
                    b & mask == part[whole] & mask
                }));
        if !prefix_matches {
            return None; // not addressed to this card: it stays READY
        }
        let mut answer = part[whole..].to_vec();
        if partial_bits != 0 {
            answer[0] &= 0xFF << partial_bits;
        }
        Some(Answer::bytes(answer))
    }

    fn handle_selected(&mut self, bytes: &[u8]) -> Option<Answer> {
        if let Some(block) = self.armed_write() {
            return Some(self.write_data(block, bytes));
        }
        if bytes.len() == 4 && bytes[0] == HLTA && bytes[1] == 0 && has_valid_crc_a(bytes) {
            self.state = CardState::Halt;
            self.woke_from_halt = false;
            return None;
        }
        if !has_valid_crc_a(bytes) {
            self.fail();
            return Some(Answer::nibble(MIFARE_NAK_TRANSMISSION));
        }
        let CardState::Authenticated { sector, key, .. } = self.state else {
            self.fail();
            return Some(Answer::nibble(MIFARE_NAK_NOT_ALLOWED));
        };
        match (bytes.len(), bytes[0]) {
            (4, MF_READ) => self.read(sector, key, bytes[1]),
            (4, MF_WRITE) => Some(self.write_command(sector, key, bytes[1])),
            _ => {
                self.fail();
                None
            }
        }
    }

    fn read(&mut self, sector: u8, key: KeyType, block: u8) -> Option<Answer> {
        if block >= BLOCK_COUNT || sector_of(block) != sector {
            self.fail();
            return Some(Answer::nibble(MIFARE_NAK_NOT_ALLOWED));
        }
        let access = self.access(sector);
        let stored = self.blocks[usize::from(block)];
        let shown = if is_trailer(block) {
            access.read_trailer(&stored, key)
        } else if access.may_read_data(block % BLOCKS_PER_SECTOR, key) {
            stored
        } else {
            self.fail();
            return Some(Answer::nibble(MIFARE_NAK_NOT_ALLOWED));
        };
        Some(Answer::with_crc(&shown))
    }

    /// Phase 1 of WRITE: ACK (and wait for the data) when `key` may write `block`.
    fn write_command(&mut self, sector: u8, key: KeyType, block: u8) -> Answer {
        let access = self.access(sector);
        let allowed = block != 0
            && block < BLOCK_COUNT
            && sector_of(block) == sector
            && if is_trailer(block) {
                access.may_write_trailer(key)
            } else {
                access.may_write_data(block % BLOCKS_PER_SECTOR, key)
            };
        if !allowed {
            self.fail();
            return Answer::nibble(MIFARE_NAK_NOT_ALLOWED);
        }
        self.state = CardState::Authenticated {
            sector,
            key,
            armed_write: Some(block),
        };
        Answer::nibble(MIFARE_ACK)
    }

    /// Phase 2 of WRITE: the 16 data bytes + CRC.
    fn write_data(&mut self, block: u8, bytes: &[u8]) -> Answer {
        if bytes.len() != 18 || !has_valid_crc_a(bytes) {
            self.fail();
            return Answer::nibble(MIFARE_NAK_TRANSMISSION);
        }
        let mut data = [0u8; 16];
        data.copy_from_slice(&bytes[..16]);
        self.commit_write(block, &data);
        Answer::nibble(MIFARE_ACK)
    }

    /// Stores `data` into the armed `block` as the EEPROM would (a trailer keeps the parts the
    /// key may not write) and disarms the write. Faults use it to store torn data.
    pub fn commit_write(&mut self, block: u8, data: &Block) {
        let CardState::Authenticated { sector, key, .. } = self.state else {
            return;
        };
        let Some(old) = self.block(block) else {
            return;
        };
        let new = if is_trailer(block) {
            self.access(sector).write_trailer(&old, data, key)
        } else {
            *data
        };
        self.blocks[usize::from(block)] = new;
        self.state = CardState::Authenticated {
            sector,
            key,
            armed_write: None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A card woken (REQA) and waiting for cascade level 1.
    fn ready_card() -> EmulatedCard {
        let mut card = EmulatedCard::blank(&[0x1A, 0x2B, 0x3C, 0x4D]).unwrap();
        let atqa = card.handle(Frame {
            bytes: &[REQA],
            last_bits: 7,
            encrypted: false,
        });
        assert_eq!(atqa.map(|a| a.bytes), Some(vec![0x04, 0x00]));
        assert_eq!(card.state(), CardState::Ready { cascade_level: 1 });
        card
    }

    fn anticollision(card: &mut EmulatedCard, bytes: &[u8]) -> Option<Answer> {
        card.handle(Frame {
            bytes,
            last_bits: 0,
            encrypted: false,
        })
    }

    #[test]
    fn a_well_formed_anticollision_is_answered() {
        let mut card = ready_card();
        let answer = anticollision(&mut card, &[SELECT_CL1, 0x20]).expect("the UID and BCC");
        assert_eq!(
            answer.bytes,
            vec![0x1A, 0x2B, 0x3C, 0x4D, 0x1A ^ 0x2B ^ 0x3C ^ 0x4D]
        );
        // With 1 byte and 4 bits known (NVB 0x34), the rest of the UID from that bit on.
        let mut card = ready_card();
        let answer = anticollision(&mut card, &[SELECT_CL1, 0x34, 0x1A, 0x0B]).expect("answer");
        assert_eq!(answer.bytes[0], 0x2B & 0xF0);
        assert_eq!(answer.bytes.len(), 4);
    }

    /// An NVB whose bit count is 8 or more (or whose byte count is below 2) is malformed: the
    /// card ignores it and drops to IDLE — it used to overflow `1 << partial_bits`.
    #[test]
    fn a_malformed_nvb_is_ignored_not_a_panic() {
        for nvb in [0x28, 0x2F, 0x38, 0x3F, 0x4A, 0x5F, 0x6F, 0x00, 0x10, 0x1F] {
            for tail in [&[][..], &[0x1A][..], &[0x1A, 0x2B, 0x3C, 0x4D][..]] {
                let mut card = ready_card();
                let mut frame = vec![SELECT_CL1, nvb];
                frame.extend_from_slice(tail);
                assert_eq!(anticollision(&mut card, &frame), None, "NVB {nvb:#04x}");
                assert_eq!(card.state(), CardState::Idle, "NVB {nvb:#04x}");
            }
        }
        // Every NVB value at all: never a panic.
        for nvb in 0..=u8::MAX {
            let mut card = ready_card();
            let _ = anticollision(&mut card, &[SELECT_CL1, nvb, 0x1A, 0x2B, 0x3C, 0x4D, 0x00]);
        }
    }
}
