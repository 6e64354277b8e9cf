//! The local link between the firmware and the sync daemon: messages in both directions and
//! the framing they travel in over the Unix socket (a 4-byte big-endian length, then the
//! postcard bytes of a versioned envelope from [`crate::codec`]).
//!
//! The firmware is the server (it owns the journal and outlives daemon restarts); the daemon
//! connects, says hello, fetches records after the upload watermark, and reports the campus
//! server's acks, which the firmware turns into a durable watermark. The daemon keeps no state
//! about money: everything it knows it can fetch again.

use crate::campus::{Blacklist, CampusConfig};
use crate::ids::{MachineNumber, Seq, TerminalId, UnixMillis};
use crate::pay::{OrderCall, OrderId, OrderResult};
use serde::{Deserialize, Serialize};

/// The protocol version both sides announce; a mismatch ends the connection with a reason.
/// Version 2 added code-payment orders ([`ToDaemon::Order`], [`ToTill::OrderResult`],
/// [`ToTill::OrderNotSent`]).
pub const LINK_PROTOCOL_VERSION: u16 = 2;
/// The largest frame either side accepts (a 1,000,000-entry blacklist is about 12 MB).
pub const MAX_LINK_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// The most records the firmware returns for one fetch.
pub const MAX_RECORDS_PER_FETCH: u32 = 1_000;
/// Bytes of the length prefix of a frame.
pub const FRAME_HEADER_BYTES: usize = 4;

/// A journal record as uploaded: its seq and its exact stored bytes (a `RecordEnvelope`), so
/// the campus side can compare bytes when the same (terminal, seq) arrives twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub seq: Seq,
    pub bytes: Vec<u8>,
}

/// The daemon's view of its broker connection, shown on the till's status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrokerLink {
    /// Not connected; the daemon is retrying.
    Down,
    /// Connected and subscribed.
    Up,
}

/// Which downlink message a result is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownlinkKind {
    Config,
    Blacklist,
    ServerTime,
}

/// From the daemon to the firmware. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToTill {
    /// First message on a connection.
    Hello {
        protocol: u16,
        daemon: String,
    },
    /// Asks for up to `max` records with seq greater than `after` (all records when `None`).
    Fetch {
        after: Option<Seq>,
        max: u32,
    },
    /// The campus server durably stored every record of this terminal up to `through`.
    Acked {
        through: Seq,
    },
    /// The broker connection changed.
    Broker(BrokerLink),
    Config(CampusConfig),
    Blacklist(Blacklist),
    /// The campus server's clock when it sent the message.
    ServerTime {
        server: UnixMillis,
    },
    /// The campus server's answer about a code-payment order.
    OrderResult(OrderResult),
    /// The daemon could not pass the till's order request on (no broker): the till asks again
    /// later or tells the merchant.
    OrderNotSent {
        order: OrderId,
        why: String,
    },
}

/// From the firmware to the daemon. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToDaemon {
    /// The answer to `Hello`.
    Welcome {
        protocol: u16,
        terminal: TerminalId,
        machine: MachineNumber,
        /// Every record up to here is stored by the campus server.
        uploaded_through: Option<Seq>,
        /// The newest record in the journal.
        last_seq: Option<Seq>,
    },
    /// The answer to `Fetch`, oldest first, contiguous.
    Records {
        records: Vec<UploadRecord>,
    },
    /// The answer to `Acked`: the watermark is durable.
    Watermark {
        uploaded_through: Option<Seq>,
    },
    /// Pushed when the journal grows, so the daemon need not poll.
    Appended {
        last_seq: Seq,
    },
    /// The answer to a downlink message.
    Applied {
        kind: DownlinkKind,
        version: u64,
    },
    Rejected {
        kind: DownlinkKind,
        reason: String,
    },
    /// The firmware will not talk on this connection (say, a protocol mismatch); it closes it.
    Refused {
        reason: String,
    },
    /// A code-payment order request for the campus server (relayed as is, QoS 1).
    Order(OrderCall),
}

/// Why bytes on the link are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is larger than the {MAX_LINK_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
}

/// Prefixes `payload` with its length.
pub fn frame(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    if payload.len() > MAX_LINK_FRAME_BYTES {
        return Err(FrameError::TooLarge(payload.len()));
    }
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge(payload.len()))?;
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Collects bytes as they arrive and hands out whole frames. Sans-IO: the caller reads the
/// socket and feeds what it got.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame's payload, `Ok(None)` if more bytes are needed. A too-large length
    /// is an error: the connection cannot be trusted any more and must be closed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(header) = self.buffer.first_chunk::<FRAME_HEADER_BYTES>() else {
            return Ok(None);
        };
        let len = usize::try_from(u32::from_be_bytes(*header)).unwrap_or(usize::MAX);
        if len > MAX_LINK_FRAME_BYTES {
            return Err(FrameError::TooLarge(len));
        }
        let end = FRAME_HEADER_BYTES + len;
        if self.buffer.len() < end {
            return Ok(None);
        }
        let payload = self.buffer[FRAME_HEADER_BYTES..end].to_vec();
        self.buffer.drain(..end);
        Ok(Some(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split_of_the_byte_stream() {
        let payloads: Vec<Vec<u8>> = vec![vec![], vec![1], vec![7; 300]];
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p).unwrap()).collect();
        for chunk in 1..stream.len() {
            let mut reader = FrameReader::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                reader.push(piece);
                while let Some(payload) = reader.next_frame().unwrap() {
                    got.push(payload);
                }
            }
            assert_eq!(got, payloads, "chunk size {chunk}");
        }
    }

    #[test]
    fn an_oversized_length_is_an_error() {
        let mut reader = FrameReader::new();
        reader.push(&u32::MAX.to_be_bytes());
        assert_eq!(
            reader.next_frame(),
            Err(FrameError::TooLarge(u32::MAX as usize))
        );
    }
}
