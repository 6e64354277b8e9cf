//! Fuzz target: the campus clock as a till's daemon receives it (MQTT time topic).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_server_time, encode_server_time};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_server_time, encode_server_time);
});
