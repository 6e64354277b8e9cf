//! Fuzz target: the link from the daemon as the firmware reads it: a byte stream cut into
//! frames (`FrameReader`), each frame a message to the till (`decode_to_till`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_to_till, encode_to_till};
use till_fuzz::{assert_round_trip, read_frames, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    for payload in read_frames(data) {
        assert_round_trip(&payload, decode_to_till, encode_to_till);
    }
});
