//! Fuzz target: a line from the barcode scanner as the till recognises it (a wallet app's
//! payment code, or the campus virtual card's signed code).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::paycode::{CodeMethod, PaymentCode, VirtualCardCode};
use till_fuzz::MAX_INPUT_BYTES;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    // The scanner hands the till text; bytes that are not UTF-8 never reach the recogniser.
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let _ = VirtualCardCode::parse(line);
    if let Ok(code) = PaymentCode::recognise(line) {
        // What is recognised is the trimmed line, and it is recognised again as the same code.
        assert_eq!(code.expose(), line.trim());
        // (No `assert_eq!`: a payment code has no `Debug`, it is a bearer token never printed.)
        let again = PaymentCode::recognise(code.expose());
        assert!(
            again.is_ok_and(|again| again == code),
            "recognised differently the second time"
        );
        let _ = (code.digest(), code.hint());
        if code.method() == CodeMethod::VirtualCard {
            assert!(code.virtual_card().is_some(), "a virtual-card code parses");
        }
    }
});
