//! Fuzz target: a code-payment order request as the campus receives it (MQTT order request topic).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_order_call, encode_order_call};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_order_call, encode_order_call);
});
