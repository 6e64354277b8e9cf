//! Fuzz target: a campus configuration as a till's daemon receives it (MQTT config topic) and the till stores it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_campus_config, encode_campus_config};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_campus_config, encode_campus_config);
});
