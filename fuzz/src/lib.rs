//! What every fuzz target shares: the input cap and the round-trip check of the versioned
//! postcard envelopes. The targets live in `fuzz_targets/` (one decoder each); docs/fuzzing.md
//! says how to run them and what they prove.

use std::fmt::Debug;

/// The largest input a target looks at, in bytes. Larger inputs are skipped, not truncated, so
/// a crash always replays from the file as saved. 64 KiB holds a full link frame of records, a
/// blacklist page and any TOML file the till reads, while keeping every execution fast;
/// run.sh also gives libFuzzer `-max_len` of this value.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Checks what the codec promises for bytes it accepted: the value re-encodes to a canonical
/// encoding that decodes to the same value, and that encoding is a fixed point (encoding what
/// it decodes to gives the same bytes). The input bytes themselves need not come back: postcard
/// accepts over-long varints and old envelope versions, which re-encode in the shortest form
/// and the current version (docs/fuzzing.md, "Invariants").
pub fn assert_round_trip<T, E>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
    encode: impl Fn(&T) -> Vec<u8>,
) where
    T: PartialEq + Debug,
    E: Debug,
{
    let Ok(value) = decode(bytes) else {
        return;
    };
    let canonical = encode(&value);
    let again = decode(&canonical).unwrap_or_else(|error| {
        panic!("{value:?} encodes to {canonical:02X?}, which does not decode: {error:?}")
    });
    assert_eq!(
        again, value,
        "the canonical encoding decodes to another value"
    );
    assert_eq!(
        encode(&again),
        canonical,
        "the canonical encoding is not a fixed point"
    );
}

/// Feeds a link byte stream to a [`shared::link::FrameReader`] the way a socket delivers it:
/// `data[0]` (1 to 256) is the size of every read, the rest is the stream. Answers the frames'
/// payloads in order, stopping at the first framing error (the connection is closed there), and
/// checks that re-framing them gives back exactly the bytes they were read from.
pub fn read_frames(data: &[u8]) -> Vec<Vec<u8>> {
    use shared::link::{frame, FrameReader};
    let Some((&chunk, stream)) = data.split_first() else {
        return Vec::new();
    };
    let mut reader = FrameReader::new();
    let mut payloads = Vec::new();
    'read: for piece in stream.chunks(usize::from(chunk) + 1) {
        reader.push(piece);
        loop {
            match reader.next_frame() {
                Ok(Some(payload)) => payloads.push(payload),
                Ok(None) => break,
                Err(_) => break 'read,
            }
        }
    }
    let reframed: Vec<u8> = payloads
        .iter()
        .flat_map(|payload| frame(payload).expect("a payload read from a frame fits one"))
        .collect();
    assert_eq!(
        reframed,
        stream[..reframed.len()],
        "frames do not re-frame to the bytes they were read from"
    );
    payloads
}
