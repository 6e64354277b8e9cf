//! Fuzz target: a whole blacklist as a till receives it (MQTT, then the link) and as it reads
//! the copy it stored beside its journal (`decode_stored_blacklist`, which drops bad entries).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_blacklist, decode_stored_blacklist, encode_blacklist};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_blacklist, encode_blacklist);
    if let Ok((list, _dropped)) = decode_stored_blacklist(data) {
        // What survives the salvage is a list today's rules accept.
        let bytes = encode_blacklist(&list);
        assert_eq!(decode_blacklist(&bytes).as_ref(), Ok(&list));
    }
});
