//! Fuzz target: a card's wallet sector as the wallet reads it at a tap (header, slot A, slot B,
//! sector trailer on an in-memory Mifare Classic card, read with the demo master key).
//!
//! Random blocks never carry a valid MAC, so the input's flag byte can have the target sign the
//! header and either slot (their fields taken from the input, MAC'd with the card's real key)
//! and give the sector the wallet's trailer: the fuzzer then reaches the slot choice and the
//! balance checks behind the MAC.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pos_firmware::core::card::CardRead;
use pos_firmware::wallet::layout::{
    choose_slot, decode_access_bytes, decode_header, decode_slot, encode_access_bytes,
    encode_header, encode_slot, wallet_trailer, CardSerial, Header, Slot, SlotState, HEADER_BLOCK,
    TRAILER_BLOCK,
};
use pos_firmware::wallet::memory::{MemoryCard, MemoryCardReader};
use pos_firmware::wallet::{read_card, WalletConfig};
use shared::record::TxnTag;
use shared::{CardUid, Fen};
use till_fuzz::MAX_INPUT_BYTES;

/// Bytes of one Mifare Classic block.
const BLOCK_BYTES: usize = 16;
/// Input bytes the target reads: UID length selector, 10 UID bytes, flags, four blocks.
const CARD_INPUT_BYTES: usize = 1 + 10 + 1 + 4 * BLOCK_BYTES;
/// Flag bits: sign the header, sign slot A, sign slot B, use the wallet's sector trailer.
const SIGN_HEADER: u8 = 1;
const SIGN_SLOT_A: u8 = 2;
const SIGN_SLOT_B: u8 = 4;
const WALLET_TRAILER: u8 = 8;

fn block(bytes: &[u8], index: usize) -> [u8; BLOCK_BYTES] {
    let mut out = [0; BLOCK_BYTES];
    out.copy_from_slice(&bytes[index * BLOCK_BYTES..(index + 1) * BLOCK_BYTES]);
    out
}

fn word(block: &[u8; BLOCK_BYTES], at: usize) -> u32 {
    u32::from_be_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]])
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let mut input = [0u8; CARD_INPUT_BYTES];
    let used = data.len().min(CARD_INPUT_BYTES);
    input[..used].copy_from_slice(&data[..used]);
    let uid_len = [4, 7, 10][usize::from(input[0] % 3)];
    let uid = CardUid::new(&input[1..1 + uid_len]).expect("4, 7 and 10 bytes are UID lengths");
    let flags = input[11];
    let blocks = &input[12..];
    let config = WalletConfig::demo();
    let keys = config.master.card_keys(&uid);

    let mut header = block(blocks, 0);
    if flags & SIGN_HEADER != 0 {
        let fields = Header {
            campus: config.campus,
            serial: CardSerial(word(&header, 6)),
        };
        header = encode_header(&fields, &uid, &keys.mac);
        assert_eq!(decode_header(&header, &uid, &keys.mac), Ok(fields));
    }
    let mut slots = [block(blocks, 1), block(blocks, 2)];
    for (slot, sign) in [(Slot::A, SIGN_SLOT_A), (Slot::B, SIGN_SLOT_B)] {
        let raw = &mut slots[usize::from(slot == Slot::B)];
        if flags & sign != 0 {
            let state = SlotState {
                counter: word(raw, 0),
                balance: Fen::new(u64::from(word(raw, 4))),
                tag: TxnTag(word(raw, 8)),
            };
            if let Ok(signed) = encode_slot(&state, slot, config.campus, &uid, &keys.mac) {
                assert_eq!(
                    decode_slot(&signed, slot, config.campus, &uid, &keys.mac),
                    Ok(state)
                );
                *raw = signed;
            }
        }
    }
    let trailer = if flags & WALLET_TRAILER != 0 {
        wallet_trailer(&keys)
    } else {
        block(blocks, 3)
    };
    // The access bytes of a trailer: what decodes re-encodes to the same three bytes.
    let access = [trailer[6], trailer[7], trailer[8]];
    if let Some(conditions) = decode_access_bytes(access) {
        assert_eq!(encode_access_bytes(conditions), access);
    }

    // A sector the wallet can open (signed header, wallet trailer) reads as the state the slot
    // choice gives, or as unreadable when no slot gives one.
    let expected =
        (flags & (SIGN_HEADER | WALLET_TRAILER) == SIGN_HEADER | WALLET_TRAILER).then(|| {
            let state = |slot: Slot, raw: &[u8; BLOCK_BYTES]| {
                decode_slot(raw, slot, config.campus, &uid, &keys.mac).ok()
            };
            choose_slot(state(Slot::A, &slots[0]), state(Slot::B, &slots[1]))
                .ok()
                .map(|(_, state)| state)
        });

    let mut card = MemoryCard::blank(uid);
    card.set_block(HEADER_BLOCK, header);
    card.set_block(Slot::A.block(), slots[0]);
    card.set_block(Slot::B.block(), slots[1]);
    card.set_block(TRAILER_BLOCK, trailer);
    let mut reader = MemoryCardReader::new(card);
    let read = read_card(&mut reader, &config)
        .expect("a card in the field reads as a card or as unreadable");
    if let CardRead::Card(image) = &read {
        assert_eq!(image.uid, uid);
    }
    match (expected, read) {
        (Some(Some(state)), CardRead::Card(image)) => {
            assert_eq!(
                (image.counter, image.balance, image.last_tag),
                (state.counter, state.balance, state.tag)
            );
        }
        (Some(Some(state)), CardRead::Unreadable(problem)) => {
            panic!("a valid wallet ({state:?}) read as unreadable: {problem:?}")
        }
        (Some(None), CardRead::Card(image)) => {
            panic!("a sector without a valid slot read as a card: {image:?}")
        }
        _ => {}
    }
});
