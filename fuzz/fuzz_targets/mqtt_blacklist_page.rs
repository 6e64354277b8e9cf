//! Fuzz target: one retained blacklist page as a till's daemon receives it (MQTT blacklist page topics).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_blacklist_page, encode_blacklist_page};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_blacklist_page, encode_blacklist_page);
});
