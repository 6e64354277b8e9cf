//! Fuzz target: the till snapshot envelope (every stored version, migrated) as the journal reads
//! it when it opens, strictly and salvaging.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::codec::{decode_snapshot, decode_snapshot_salvaging, encode_snapshot};
use till_fuzz::{assert_round_trip, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_round_trip(data, decode_snapshot, encode_snapshot);
    if let Ok((snapshot, _dropped)) = decode_snapshot_salvaging(data) {
        // What the salvage keeps is a snapshot today's rules accept.
        let bytes = encode_snapshot(&snapshot);
        assert_eq!(decode_snapshot(&bytes).as_ref(), Ok(&snapshot));
    }
});
