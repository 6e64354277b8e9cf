//! Fuzz target: the campus simulator's configuration TOML and blacklist file
//! (`tests/src/campus_files.rs`, included here by path so the target does not build the test
//! crate's MQTT stack).

#![no_main]

#[allow(
    dead_code,
    reason = "the file loaders are not fuzzed, only the parsers"
)]
#[path = "../../tests/src/campus_files.rs"]
mod campus_files;

use campus_files::{parse_blacklist, parse_campus_config};
use libfuzzer_sys::fuzz_target;
use shared::codec::{
    decode_blacklist, decode_campus_config, encode_blacklist, encode_campus_config,
};
use shared::UnixMillis;
use till_fuzz::MAX_INPUT_BYTES;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // What the simulator accepts from its files, the tills accept on the wire.
    if let Ok(config) = parse_campus_config(text) {
        let bytes = encode_campus_config(&config);
        assert_eq!(decode_campus_config(&bytes).as_ref(), Ok(&config));
    }
    if let Ok(list) = parse_blacklist(text, 1, UnixMillis(1_700_000_000_000)) {
        let bytes = encode_blacklist(&list);
        assert_eq!(decode_blacklist(&bytes).as_ref(), Ok(&list));
    }
});
