//! The daemon's end of the local link to the firmware: a Unix stream socket carrying
//! length-prefixed postcard frames (`shared::link`). Connecting includes the hello/welcome
//! handshake; every wait is bounded.

use crate::error::LinkError;
use shared::codec::{decode_to_daemon, encode_to_till};
use shared::link::{frame, FrameReader, ToDaemon, ToTill, LINK_PROTOCOL_VERSION};
use shared::{MachineNumber, Seq, TerminalId};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// The longest the till may take to answer our hello.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// The longest one message may take to be written to the till (a 12 MB blacklist included).
pub const LINK_WRITE_TIMEOUT_MS: u64 = 10_000;
/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// What the till said in its welcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome {
    pub terminal: TerminalId,
    pub machine: MachineNumber,
    pub uploaded_through: Option<Seq>,
    pub last_seq: Option<Seq>,
}

/// A connected, welcomed till.
#[derive(Debug)]
pub struct TillLink {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    frames: FrameReader,
    chunk: Vec<u8>,
}

impl TillLink {
    /// Connects to the till's socket and says hello.
    pub async fn connect(path: &Path, daemon_name: &str) -> Result<(TillLink, Welcome), LinkError> {
        let stream = UnixStream::connect(path).await?;
        let (reader, writer) = stream.into_split();
        let mut link = TillLink {
            reader,
            writer,
            frames: FrameReader::new(),
            chunk: vec![0; READ_CHUNK_BYTES],
        };
        link.send(&ToTill::Hello {
            protocol: LINK_PROTOCOL_VERSION,
            daemon: daemon_name.to_string(),
        })
        .await?;
        let answer = tokio::time::timeout(Duration::from_millis(HANDSHAKE_TIMEOUT_MS), link.recv())
            .await
            .map_err(|_| LinkError::Timeout(HANDSHAKE_TIMEOUT_MS))??;
        match answer {
            ToDaemon::Welcome {
                protocol,
                terminal,
                machine,
                uploaded_through,
                last_seq,
            } => {
                if protocol != LINK_PROTOCOL_VERSION {
                    return Err(LinkError::ProtocolMismatch {
                        ours: LINK_PROTOCOL_VERSION,
                        theirs: protocol,
                    });
                }
                Ok((
                    link,
                    Welcome {
                        terminal,
                        machine,
                        uploaded_through,
                        last_seq,
                    },
                ))
            }
            ToDaemon::Refused { reason } => Err(LinkError::Refused(reason)),
            other => Err(LinkError::UnexpectedAnswer(format!("{other:?}"))),
        }
    }

    /// Sends one message, bounded by [`LINK_WRITE_TIMEOUT_MS`].
    pub async fn send(&mut self, message: &ToTill) -> Result<(), LinkError> {
        let bytes = frame(&encode_to_till(message))?;
        tokio::time::timeout(
            Duration::from_millis(LINK_WRITE_TIMEOUT_MS),
            self.writer.write_all(&bytes),
        )
        .await
        .map_err(|_| LinkError::Timeout(LINK_WRITE_TIMEOUT_MS))??;
        Ok(())
    }

    /// The next message from the till. Cancel-safe: bytes read are kept in the frame reader,
    /// so it can be raced against other events in `select!`.
    pub async fn recv(&mut self) -> Result<ToDaemon, LinkError> {
        loop {
            if let Some(payload) = self.frames.next_frame()? {
                return Ok(decode_to_daemon(&payload)?);
            }
            let read = self.reader.read(&mut self.chunk).await?;
            if read == 0 {
                return Err(LinkError::Closed);
            }
            self.frames.push(&self.chunk[..read]);
        }
    }
}
