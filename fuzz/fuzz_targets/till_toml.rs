//! Fuzz target: `till.toml` as the firmware parses it (its settings, its `[device]` table and
//! its `[card]` table, each by its own parse function).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pos_firmware::settings::{parse_card_settings, parse_device_settings, parse_settings};
use till_fuzz::MAX_INPUT_BYTES;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    // The loader reads the file with `read_to_string`: bytes that are not UTF-8 never parse.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_settings(text);
    let _ = parse_device_settings(text);
    let _ = parse_card_settings(text);
});
