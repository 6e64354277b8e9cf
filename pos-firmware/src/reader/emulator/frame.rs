//! What passes over the air between the emulated chip and the emulated card: a [`Frame`] from
//! the reader (bytes, bits of the last byte, whether Crypto1 was on) and the card's [`Answer`].

use crate::reader::crc::crc_a;

/// A frame as the card receives it from the reader.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The bytes sent; the last one may be partial.
    pub bytes: &'a [u8],
    /// Valid bits of the last byte (0 = all 8).
    pub last_bits: u8,
    /// The reader's Crypto1 unit was on.
    pub encrypted: bool,
}

/// A card's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The bytes received by the reader.
    pub bytes: Vec<u8>,
    /// Valid bits of the last byte (0 = all 8; 4 for an ACK/NAK).
    pub last_bits: u8,
}

impl Answer {
    pub(super) fn bytes(bytes: Vec<u8>) -> Answer {
        Answer {
            bytes,
            last_bits: 0,
        }
    }

    pub(super) fn with_crc(body: &[u8]) -> Answer {
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&crc_a(body));
        Answer::bytes(bytes)
    }

    /// A 4-bit ACK or NAK.
    pub fn nibble(code: u8) -> Answer {
        Answer {
            bytes: vec![code & 0x0F],
            last_bits: 4,
        }
    }
}
