//! Fuzz target: an offline QR payload as the campus (and the campus-app simulator) reads it off a
//! phone's camera: `shared::qrpay::QrOrder::{parse, verify}`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::qrpay::{QrOrder, TerminalQrKey};
use shared::UnixMillis;
use till_fuzz::MAX_INPUT_BYTES;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = TerminalQrKey::from_bytes([7; 32]);
    let _ = QrOrder::verify(text, &key, UnixMillis(0));
    if let Ok(order) = QrOrder::parse(text) {
        // What parses re-encodes (with any key) to a payload that parses to the same order and
        // verifies under that key until it expires.
        let payload = order.payload(&key).expect("a parsed order fits its own fields");
        assert_eq!(QrOrder::parse(&payload), Ok(order));
        let before_expiry = UnixMillis(order.expires_at().0 - 1);
        assert_eq!(QrOrder::verify(&payload, &key, before_expiry), Ok(order));
        let _ = order.confirmation_code(&key);
    }
});
