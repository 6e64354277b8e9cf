//! A till is a 32-bit ARM board (armv7) as often as a 64-bit one (aarch64): no length on the
//! wire or in the journal may depend on `usize`'s width or the byte order (docs/device.md,
//! "Cross-compiling for an ARM till"). postcard writes a sequence's length as a LEB128 varint
//! whatever the platform (300 is `AC 02` on armv7 as on x86_64) and the link's frame header is a
//! big-endian `u32`; these bytes pin both, next to the golden tests in `shared/src/codec.rs`.

use shared::codec::{decode_blacklist_page, encode_blacklist_page};
use shared::link::frame;
use shared::mqtt::BlacklistPage;
use shared::{CardUid, UnixMillis};

#[test]
fn lengths_on_the_wire_do_not_depend_on_the_platforms_usize() {
    let uids: Vec<CardUid> = (0..300u32)
        .map(|n| CardUid::new(&n.to_be_bytes()).unwrap())
        .collect();
    let page = BlacklistPage {
        version: 9,
        issued_at: UnixMillis(1_700_000_000_000),
        page: 1,
        pages: 2,
        uids,
    };
    let bytes = encode_blacklist_page(&page);
    #[rustfmt::skip]
    let head: &[u8] = &[
        0x00, 0x09, 0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62, 0x01, 0x02, // as codec.rs's golden page
        0xAC, 0x02,                                                 // 300 UIDs: a varint, not a usize
    ];
    assert_eq!(&bytes[..head.len()], head);
    // Each UID: its length byte and 10 bytes, padded.
    assert_eq!(bytes.len(), head.len() + 300 * 11);
    assert_eq!(decode_blacklist_page(&bytes), Ok(page));
}

#[test]
fn a_link_frame_header_is_a_big_endian_u32() {
    let framed = frame(&[0x55; 300]).unwrap();
    assert_eq!(&framed[..4], &[0x00, 0x00, 0x01, 0x2C]);
    assert_eq!(framed.len(), 4 + 300);
}
