//! Fuzz target: an upload batch as the campus receives it from a till (MQTT upload topic).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_upload_batch, encode_upload_batch};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_upload_batch, encode_upload_batch);
});
