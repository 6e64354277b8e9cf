//! The campus wallet's bytes on a Mifare Classic card: which sector and blocks it uses, how the
//! header and the two state slots are encoded and MACed, the sector trailer's keys and access
//! bits, and which slot holds the card's current state. Pure: no I/O. The layout is documented
//! in `docs/card-layout.md`; the golden-bytes tests below notice any change to it.

use shared::record::TxnTag;
use shared::{CardUid, Fen};

use super::keys::{uid_len_byte, CardKeys, MacKey, MAC_LEN_BYTES, TRANSPORT_KEY};
use crate::reader::Block;

/// The sector holding the wallet.
pub const WALLET_SECTOR: u8 = 1;
/// The header block (magic, layout version, campus id, card serial, MAC).
pub const HEADER_BLOCK: u8 = 4;
/// The two state slots, A then B.
pub const SLOT_BLOCKS: [u8; 2] = [5, 6];
/// The wallet sector's trailer (keys and access bits).
pub const TRAILER_BLOCK: u8 = 7;
/// Blocks per sector in the first 32 sectors of a Mifare Classic card.
pub const BLOCKS_PER_SECTOR: u8 = 4;

/// The first bytes of a wallet header: "CPW" (campus pos wallet).
pub const LAYOUT_MAGIC: [u8; 3] = *b"CPW";
/// The layout this firmware writes and reads.
pub const LAYOUT_VERSION: u8 = 1;
/// The card format's hard ceiling on a balance, in fen (¥10,000): no slot above it is ever
/// written, and a MAC-valid slot above it reads as invalid. This is a sanity bound of the format
/// (the u32 field itself would allow ¥42,949,672.95), **not** the card centre's policy: top-ups
/// stop at `core::cardcentre::MAX_CARD_BALANCE` (¥1,000), which must stay at or below it (checked
/// at compile time below). A card between the two (loaded under an older policy, or restored by
/// the card centre) is a valid wallet: it pays, and it takes no top-up.
pub const CARD_FORMAT_MAX_BALANCE_FEN: u64 = 1_000_000;

const _: () = assert!(
    crate::core::cardcentre::MAX_CARD_BALANCE.get() <= CARD_FORMAT_MAX_BALANCE_FEN,
    "the card-centre policy cap must fit the card format"
);

/// Access bytes 6–8 of the wallet trailer: data blocks C1C2C3 = 000 (key A or B may read and
/// write), trailer C1C2C3 = 011 (key A may only read the access bits; key B writes key A, the
/// access bits and key B; key B is not readable).
pub const WALLET_ACCESS_BYTES: [u8; 3] = [0x7F, 0x07, 0x88];
/// Access bytes of a factory-fresh card: data 000, trailer 001 (key A may rewrite everything).
pub const TRANSPORT_ACCESS_BYTES: [u8; 3] = [0xFF, 0x07, 0x80];
/// Trailer byte 9 (general purpose byte): NXP's factory value, unused by the wallet.
pub const TRAILER_GENERAL_PURPOSE_BYTE: u8 = 0x69;
/// The access conditions (C1C2C3 as a 3-bit number, C1 the high bit) the wallet sets for the
/// three data blocks and the trailer.
pub const WALLET_ACCESS_CONDITIONS: [u8; 4] = [0b000, 0b000, 0b000, 0b011];

/// Domain-separation label of the header MAC.
pub const LABEL_HEADER_MAC: &[u8] = b"pos/v1/header";
/// Domain-separation label of a slot MAC.
pub const LABEL_SLOT_MAC: &[u8] = b"pos/v1/slot";

/// Bytes of a block before its MAC.
const BODY_LEN_BYTES: usize = 16 - MAC_LEN_BYTES;

/// Which campus a card belongs to (set by the card centre; one master key may serve several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CampusId(pub u16);

/// The card centre's serial number of an issued card (printed on the card).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardSerial(pub u32);

/// The wallet header: written once, at issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub campus: CampusId,
    pub serial: CardSerial,
}

/// One of the two state slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub const BOTH: [Slot; 2] = [Slot::A, Slot::B];

    pub fn block(self) -> u8 {
        match self {
            Slot::A => SLOT_BLOCKS[0],
            Slot::B => SLOT_BLOCKS[1],
        }
    }

    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    fn index_byte(self) -> u8 {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }
}

/// A wallet state as one slot holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotState {
    pub counter: u32,
    pub balance: Fen,
    pub tag: TxnTag,
}

/// Why a block does not decode as wallet data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("the block's MAC does not match its contents")]
    BadMac,
    #[error("the header does not start with the wallet magic")]
    NotWallet,
    #[error("wallet layout version {0} is not supported by this firmware")]
    UnsupportedVersion(u8),
    #[error("reserved header bytes are not zero")]
    ReservedNotZero,
    #[error("balance {0} fen is above the card maximum")]
    BalanceAboveMax(u64),
}

/// Why neither slot gives the card's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotChoiceError {
    #[error("neither slot holds valid wallet data")]
    NoValidSlot,
    /// Both slots are valid with the same counter but different states: written by something
    /// that holds the keys but does not follow the layout. Neither can be trusted.
    #[error("both slots claim the same counter with different states")]
    Conflict,
}

pub fn encode_header(header: &Header, uid: &CardUid, mac: &MacKey) -> Block {
    let mut block = [0u8; 16];
    block[..3].copy_from_slice(&LAYOUT_MAGIC);
    block[3] = LAYOUT_VERSION;
    block[4..6].copy_from_slice(&header.campus.0.to_be_bytes());
    block[6..10].copy_from_slice(&header.serial.0.to_be_bytes());
    // 10..12 reserved, zero.
    let tag = mac.mac(&[&header_mac_input(uid, &block)]);
    block[BODY_LEN_BYTES..].copy_from_slice(&tag);
    block
}

pub fn decode_header(block: &Block, uid: &CardUid, mac: &MacKey) -> Result<Header, LayoutError> {
    if block[..3] != LAYOUT_MAGIC {
        return Err(LayoutError::NotWallet);
    }
    if block[3] != LAYOUT_VERSION {
        return Err(LayoutError::UnsupportedVersion(block[3]));
    }
    if !mac.verify(&[&header_mac_input(uid, block)], &stored_mac(block)) {
        return Err(LayoutError::BadMac);
    }
    if block[10..12] != [0, 0] {
        return Err(LayoutError::ReservedNotZero);
    }
    Ok(Header {
        campus: CampusId(u16::from_be_bytes([block[4], block[5]])),
        serial: CardSerial(u32::from_be_bytes([block[6], block[7], block[8], block[9]])),
    })
}

/// Encodes a state for `slot`. Refuses a balance above [`CARD_FORMAT_MAX_BALANCE_FEN`].
pub fn encode_slot(
    state: &SlotState,
    slot: Slot,
    campus: CampusId,
    uid: &CardUid,
    mac: &MacKey,
) -> Result<Block, LayoutError> {
    let balance = state.balance.get();
    if balance > CARD_FORMAT_MAX_BALANCE_FEN {
        return Err(LayoutError::BalanceAboveMax(balance));
    }
    let balance = u32::try_from(balance).map_err(|_| LayoutError::BalanceAboveMax(balance))?;
    let mut block = [0u8; 16];
    block[0..4].copy_from_slice(&state.counter.to_be_bytes());
    block[4..8].copy_from_slice(&balance.to_be_bytes());
    block[8..12].copy_from_slice(&state.tag.0.to_be_bytes());
    let tag = mac.mac(&[&slot_mac_input(slot, campus, uid, &block)]);
    block[BODY_LEN_BYTES..].copy_from_slice(&tag);
    Ok(block)
}

pub fn decode_slot(
    block: &Block,
    slot: Slot,
    campus: CampusId,
    uid: &CardUid,
    mac: &MacKey,
) -> Result<SlotState, LayoutError> {
    if !mac.verify(
        &[&slot_mac_input(slot, campus, uid, block)],
        &stored_mac(block),
    ) {
        return Err(LayoutError::BadMac);
    }
    let word =
        |at: usize| u32::from_be_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
    let balance = u64::from(word(4));
    if balance > CARD_FORMAT_MAX_BALANCE_FEN {
        return Err(LayoutError::BalanceAboveMax(balance));
    }
    Ok(SlotState {
        counter: word(0),
        balance: Fen::new(balance),
        tag: TxnTag(word(8)),
    })
}

/// The card's current state: the valid slot with the highest counter. Two valid slots with the
/// same counter must hold the same state (a freshly issued card); the current slot is then A,
/// so the first write goes to B.
pub fn choose_slot(
    a: Option<SlotState>,
    b: Option<SlotState>,
) -> Result<(Slot, SlotState), SlotChoiceError> {
    match (a, b) {
        (None, None) => Err(SlotChoiceError::NoValidSlot),
        (Some(a), None) => Ok((Slot::A, a)),
        (None, Some(b)) => Ok((Slot::B, b)),
        (Some(a), Some(b)) if a.counter == b.counter => {
            if a == b {
                Ok((Slot::A, a))
            } else {
                Err(SlotChoiceError::Conflict)
            }
        }
        (Some(a), Some(b)) if a.counter > b.counter => Ok((Slot::A, a)),
        (Some(_), Some(b)) => Ok((Slot::B, b)),
    }
}

/// The trailer of an issued wallet sector.
pub fn wallet_trailer(keys: &CardKeys) -> Block {
    trailer(&keys.key_a, WALLET_ACCESS_BYTES, &keys.key_b)
}

/// The trailer of a factory-fresh sector.
pub fn transport_trailer() -> Block {
    trailer(&TRANSPORT_KEY, TRANSPORT_ACCESS_BYTES, &TRANSPORT_KEY)
}

fn trailer(key_a: &[u8; 6], access: [u8; 3], key_b: &[u8; 6]) -> Block {
    let mut block = [0u8; 16];
    block[..6].copy_from_slice(key_a);
    block[6..9].copy_from_slice(&access);
    block[9] = TRAILER_GENERAL_PURPOSE_BYTE;
    block[10..].copy_from_slice(key_b);
    block
}

/// Encodes the access conditions of a sector's four blocks (C1C2C3 each, C1 the high bit of
/// the 3-bit value; index 3 is the trailer) into trailer bytes 6–8.
pub fn encode_access_bytes(conditions: [u8; 4]) -> [u8; 3] {
    let (mut c1, mut c2, mut c3) = (0u8, 0u8, 0u8);
    for (block, condition) in conditions.iter().enumerate() {
        c1 |= ((condition >> 2) & 1) << block;
        c2 |= ((condition >> 1) & 1) << block;
        c3 |= (condition & 1) << block;
    }
    [
        ((!c2 & 0x0F) << 4) | (!c1 & 0x0F),
        (c1 << 4) | (!c3 & 0x0F),
        (c3 << 4) | c2,
    ]
}

/// Decodes trailer bytes 6–8; `None` when the inverted copies do not match (a card with such
/// bytes has a permanently blocked sector).
pub fn decode_access_bytes(bytes: [u8; 3]) -> Option<[u8; 4]> {
    let c1 = bytes[1] >> 4;
    let c2 = bytes[2] & 0x0F;
    let c3 = bytes[2] >> 4;
    let valid = (bytes[0] & 0x0F) == (!c1 & 0x0F)
        && (bytes[0] >> 4) == (!c2 & 0x0F)
        && (bytes[1] & 0x0F) == (!c3 & 0x0F);
    if !valid {
        return None;
    }
    let mut conditions = [0u8; 4];
    for (block, condition) in conditions.iter_mut().enumerate() {
        *condition = (((c1 >> block) & 1) << 2) | (((c2 >> block) & 1) << 1) | ((c3 >> block) & 1);
    }
    Some(conditions)
}

fn stored_mac(block: &Block) -> [u8; MAC_LEN_BYTES] {
    let mut stored = [0u8; MAC_LEN_BYTES];
    stored.copy_from_slice(&block[BODY_LEN_BYTES..]);
    stored
}

/// `LABEL_HEADER_MAC ‖ 0x00 ‖ uid_len ‖ uid ‖ header bytes 0–11`.
fn header_mac_input(uid: &CardUid, block: &Block) -> Vec<u8> {
    let mut input = Vec::with_capacity(64);
    input.extend_from_slice(LABEL_HEADER_MAC);
    input.extend_from_slice(&[0x00, uid_len_byte(uid)]);
    input.extend_from_slice(uid.as_bytes());
    input.extend_from_slice(&block[..BODY_LEN_BYTES]);
    input
}

/// `LABEL_SLOT_MAC ‖ 0x00 ‖ layout version ‖ campus (u16 BE) ‖ slot index (0 = A, 1 = B) ‖
/// uid_len ‖ uid ‖ slot bytes 0–11` (counter, balance, tag).
fn slot_mac_input(slot: Slot, campus: CampusId, uid: &CardUid, block: &Block) -> Vec<u8> {
    let mut input = Vec::with_capacity(64);
    input.extend_from_slice(LABEL_SLOT_MAC);
    input.extend_from_slice(&[0x00, LAYOUT_VERSION]);
    input.extend_from_slice(&campus.0.to_be_bytes());
    input.extend_from_slice(&[slot.index_byte(), uid_len_byte(uid)]);
    input.extend_from_slice(uid.as_bytes());
    input.extend_from_slice(&block[..BODY_LEN_BYTES]);
    input
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::keys::MasterKey;

    fn uid() -> CardUid {
        CardUid::new(&[0x1A, 0x2B, 0x3C, 0x4D]).expect("4 bytes")
    }

    fn mac() -> MacKey {
        MasterKey::demo().card_keys(&uid()).mac
    }

    const CAMPUS: CampusId = CampusId(0x0102);

    fn state() -> SlotState {
        SlotState {
            counter: 7,
            balance: Fen::new(12_345),
            tag: TxnTag(0xDEAD_BEEF),
        }
    }

    #[test]
    fn golden_bytes_of_a_slot_and_a_header() {
        let slot = encode_slot(&state(), Slot::B, CAMPUS, &uid(), &mac()).expect("in range");
        let header = encode_header(
            &Header {
                campus: CAMPUS,
                serial: CardSerial(20_240_001),
            },
            &uid(),
            &mac(),
        );
        // A change here is a card-format change: every issued card would stop reading. The
        // expected bytes were computed independently (Python's hmac/hashlib), see
        // docs/card-layout.md "Worked example".
        //                       counter  balance  tag      MAC
        assert_eq!(
            hex::encode(slot),
            "00000007_00003039_deadbeef_d9c708d8".replace('_', "")
        );
        //                        magic  v  campus serial   rsvd MAC
        assert_eq!(
            hex::encode(header),
            "435057_01_0102_0134d681_0000_2af524b6".replace('_', "")
        );
    }

    #[test]
    fn round_trips() {
        for slot in Slot::BOTH {
            let block = encode_slot(&state(), slot, CAMPUS, &uid(), &mac()).expect("in range");
            assert_eq!(
                decode_slot(&block, slot, CAMPUS, &uid(), &mac()),
                Ok(state())
            );
        }
        let header = Header {
            campus: CAMPUS,
            serial: CardSerial(u32::MAX),
        };
        let block = encode_header(&header, &uid(), &mac());
        assert_eq!(decode_header(&block, &uid(), &mac()), Ok(header));
        let max = SlotState {
            counter: u32::MAX,
            balance: Fen::new(CARD_FORMAT_MAX_BALANCE_FEN),
            tag: TxnTag(u32::MAX),
        };
        let block = encode_slot(&max, Slot::A, CAMPUS, &uid(), &mac()).expect("at the max");
        assert_eq!(
            decode_slot(&block, Slot::A, CAMPUS, &uid(), &mac()),
            Ok(max)
        );
        let over = SlotState {
            balance: Fen::new(CARD_FORMAT_MAX_BALANCE_FEN + 1),
            ..max
        };
        assert_eq!(
            encode_slot(&over, Slot::A, CAMPUS, &uid(), &mac()),
            Err(LayoutError::BalanceAboveMax(
                CARD_FORMAT_MAX_BALANCE_FEN + 1
            ))
        );
    }

    #[test]
    fn a_flipped_bit_anywhere_fails_the_mac() {
        let slot = encode_slot(&state(), Slot::A, CAMPUS, &uid(), &mac()).expect("in range");
        let header = encode_header(
            &Header {
                campus: CAMPUS,
                serial: CardSerial(1),
            },
            &uid(),
            &mac(),
        );
        for byte in 0..16 {
            for bit in 0..8 {
                let mut bad = slot;
                bad[byte] ^= 1 << bit;
                assert!(
                    decode_slot(&bad, Slot::A, CAMPUS, &uid(), &mac()).is_err(),
                    "slot byte {byte} bit {bit}"
                );
                let mut bad = header;
                bad[byte] ^= 1 << bit;
                assert!(
                    decode_header(&bad, &uid(), &mac()).is_err(),
                    "header byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn the_mac_binds_slot_campus_and_card() {
        let block = encode_slot(&state(), Slot::A, CAMPUS, &uid(), &mac()).expect("in range");
        assert_eq!(
            decode_slot(&block, Slot::B, CAMPUS, &uid(), &mac()),
            Err(LayoutError::BadMac)
        );
        assert_eq!(
            decode_slot(&block, Slot::A, CampusId(9), &uid(), &mac()),
            Err(LayoutError::BadMac)
        );
        let other = CardUid::new(&[0x1A, 0x2B, 0x3C, 0x4E]).expect("4 bytes");
        let other_mac = MasterKey::demo().card_keys(&other).mac;
        assert_eq!(
            decode_slot(&block, Slot::A, CAMPUS, &other, &other_mac),
            Err(LayoutError::BadMac)
        );
        assert_eq!(
            decode_slot(&block, Slot::A, CAMPUS, &other, &mac()),
            Err(LayoutError::BadMac)
        );
    }

    #[test]
    fn slot_choice() {
        let s = |counter| Some(SlotState { counter, ..state() });
        assert_eq!(choose_slot(s(3), s(4)), Ok((Slot::B, state_with(4))));
        assert_eq!(choose_slot(s(5), s(4)), Ok((Slot::A, state_with(5))));
        assert_eq!(choose_slot(None, s(4)), Ok((Slot::B, state_with(4))));
        assert_eq!(choose_slot(s(3), None), Ok((Slot::A, state_with(3))));
        assert_eq!(choose_slot(s(0), s(0)), Ok((Slot::A, state_with(0))));
        assert_eq!(choose_slot(None, None), Err(SlotChoiceError::NoValidSlot));
        let different = Some(SlotState {
            balance: Fen::new(1),
            ..state_with(4)
        });
        assert_eq!(choose_slot(s(4), different), Err(SlotChoiceError::Conflict));
    }

    fn state_with(counter: u32) -> SlotState {
        SlotState { counter, ..state() }
    }

    #[test]
    fn access_bytes_encode_and_decode() {
        assert_eq!(
            encode_access_bytes(WALLET_ACCESS_CONDITIONS),
            WALLET_ACCESS_BYTES
        );
        assert_eq!(
            decode_access_bytes(WALLET_ACCESS_BYTES),
            Some(WALLET_ACCESS_CONDITIONS)
        );
        assert_eq!(
            decode_access_bytes(TRANSPORT_ACCESS_BYTES),
            Some([0b000, 0b000, 0b000, 0b001])
        );
        for c in 0..8u8 {
            let conditions = [c, 7 - c, c ^ 0b101, c ^ 0b010];
            assert_eq!(
                decode_access_bytes(encode_access_bytes(conditions)),
                Some(conditions)
            );
        }
        assert_eq!(decode_access_bytes([0x7F, 0x07, 0x89]), None);
        let trailer = wallet_trailer(&MasterKey::demo().card_keys(&uid()));
        assert_eq!(trailer[6..10], [0x7F, 0x07, 0x88, 0x69]);
    }
}
