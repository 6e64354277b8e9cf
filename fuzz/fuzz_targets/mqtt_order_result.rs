//! Fuzz target: the campus's answer about an order as a till's daemon receives it (MQTT order result topic).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_order_result, encode_order_result};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_order_result, encode_order_result);
});
