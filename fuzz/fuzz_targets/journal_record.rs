//! Fuzz target: a journal record envelope as the journal reads it back from flash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_record, encode_record};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_record, encode_record);
});
