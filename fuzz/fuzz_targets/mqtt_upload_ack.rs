//! Fuzz target: the campus's upload ack as a till's daemon receives it (MQTT ack topic).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_upload_ack, encode_upload_ack};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_upload_ack, encode_upload_ack);
});
