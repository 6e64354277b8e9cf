//! What travels between the sync daemon and the campus server over MQTT: the topic names and the
//! payload types (a batch of journal records going up, the server's application ack and its
//! clock coming down). The bytes are made by [`crate::codec`] (versioned postcard envelopes);
//! `docs/mqtt.md` is the prose version of this file.
//!
//! Record identity is `(TerminalId, Seq)`. The server acks "every record of this terminal up to
//! `stored_through` is durably stored" (a contiguous high-water mark), so a repeated or
//! reordered batch never moves it wrongly.

use crate::ids::{Seq, TerminalId, UnixMillis};
use crate::link::UploadRecord;
use serde::{Deserialize, Serialize};

/// The prefix of every topic; the `v1` changes only if the topic layout itself changes
/// (payload formats are versioned inside their envelopes instead).
pub const TOPIC_ROOT: &str = "campus/v1";
/// Where the campus server publishes the lost-card blacklist (retained, QoS 1).
pub const BLACKLIST_TOPIC: &str = "campus/v1/blacklist";
/// Where the campus server publishes its clock (QoS 0, not retained: an old time is a wrong time).
pub const TIME_TOPIC: &str = "campus/v1/time";
/// The campus server's subscription: every till's uploads.
pub const ALL_UPLOADS_FILTER: &str = "campus/v1/till/+/up";
/// The campus server's subscription: every till's presence.
pub const ALL_STATUS_FILTER: &str = "campus/v1/till/+/status";
/// The presence payload a till's daemon publishes (retained) once connected: plain ASCII, so
/// `mosquitto_sub -v -t 'campus/v1/till/+/status'` shows it as is.
pub const STATUS_ONLINE: &[u8] = b"online";
/// The presence payload of a till's last will: the broker publishes it (retained) when the
/// daemon's connection ends without a DISCONNECT (killed, crashed, network gone, keep-alive
/// missed).
pub const STATUS_OFFLINE: &[u8] = b"offline";
/// The most records one upload batch carries (a record is about 30 bytes: a batch stays far
/// below [`MAX_UPLOAD_BATCH_BYTES`]).
pub const MAX_RECORDS_PER_BATCH: usize = 500;
/// The largest upload payload either side sends or accepts.
pub const MAX_UPLOAD_BATCH_BYTES: usize = 1024 * 1024;

/// The topic a till publishes its journal batches on.
pub fn upload_topic(terminal: TerminalId) -> String {
    format!("{TOPIC_ROOT}/till/{terminal}/up")
}

/// The topic the campus server acks a till's uploads on.
pub fn ack_topic(terminal: TerminalId) -> String {
    format!("{TOPIC_ROOT}/till/{terminal}/ack")
}

/// The topic of a till's campus configuration (retained).
pub fn config_topic(terminal: TerminalId) -> String {
    format!("{TOPIC_ROOT}/till/{terminal}/config")
}

/// The topic of a till's presence (retained): [`STATUS_ONLINE`] or [`STATUS_OFFLINE`].
pub fn status_topic(terminal: TerminalId) -> String {
    format!("{TOPIC_ROOT}/till/{terminal}/status")
}

/// The MQTT user name of a till: its terminal id in the same 16 hex digits as its topics, so
/// the broker's ACL (`pattern ... campus/v1/till/%u/...`) confines it to its own topics.
pub fn till_username(terminal: TerminalId) -> String {
    terminal.to_string()
}

/// Parses the 16 lowercase hex digits a terminal id is shown with in topics.
pub fn parse_terminal(text: &str) -> Option<TerminalId> {
    if text.len() != 16
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(text, 16).ok().map(TerminalId)
}

/// The terminal an upload topic belongs to, `None` if `topic` is not an upload topic.
pub fn terminal_of_upload_topic(topic: &str) -> Option<TerminalId> {
    let rest = topic.strip_prefix(TOPIC_ROOT)?.strip_prefix("/till/")?;
    let terminal = rest.strip_suffix("/up")?;
    parse_terminal(terminal)
}

/// The terminal a presence topic belongs to, `None` if `topic` is not a presence topic.
pub fn terminal_of_status_topic(topic: &str) -> Option<TerminalId> {
    let rest = topic.strip_prefix(TOPIC_ROOT)?.strip_prefix("/till/")?;
    parse_terminal(rest.strip_suffix("/status")?)
}

/// One upload session of a till: the daemon picks a new one for every connection to its till
/// (and at every daemon start), so an ack can say which session's batches it answers. An ack
/// of an earlier session — late, queued in the broker across a restart, or sent before the
/// till's journal was restored from an older copy — is then told apart from a fresh one and
/// never moves the till's watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UploadSession(pub u64);

/// Journal records of one terminal, oldest first and contiguous (checked when decoded).
/// `session`: `None` only in the first version of the format (an older daemon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadBatch {
    pub terminal: TerminalId,
    pub session: Option<UploadSession>,
    pub records: Vec<UploadRecord>,
}

impl UploadBatch {
    /// The first and last seq of the batch, `None` when empty.
    pub fn span(&self) -> Option<(Seq, Seq)> {
        Some((self.records.first()?.seq, self.records.last()?.seq))
    }
}

/// The campus server's application ack, published only after its store is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadAck {
    pub terminal: TerminalId,
    /// Every record of this terminal from [`Seq::FIRST`] through this one is durably stored;
    /// `None` when the server holds none yet.
    pub stored_through: Option<Seq>,
    /// Which session's batches it answers; `None` only in the first version of the format
    /// (answering a batch without a session).
    pub answers: Option<SessionAnswered>,
}

/// What an ack says about the session it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAnswered {
    pub session: UploadSession,
    /// The highest seq the server has received in this session's batches. The daemon takes an
    /// ack as progress only up to here: beyond it the server holds records it got from an
    /// earlier session, which a restored till may have written again differently.
    pub received_through: Seq,
}

/// The campus server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTime {
    pub server: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_the_terminal_in_sixteen_hex_digits() {
        let terminal = TerminalId(0x00ab_cdef_0123_4567);
        assert_eq!(upload_topic(terminal), "campus/v1/till/00abcdef01234567/up");
        assert_eq!(ack_topic(terminal), "campus/v1/till/00abcdef01234567/ack");
        assert_eq!(
            config_topic(terminal),
            "campus/v1/till/00abcdef01234567/config"
        );
        assert_eq!(
            status_topic(terminal),
            "campus/v1/till/00abcdef01234567/status"
        );
        assert_eq!(
            terminal_of_status_topic(&status_topic(terminal)),
            Some(terminal)
        );
        assert_eq!(terminal_of_status_topic(&upload_topic(terminal)), None);
        assert_eq!(till_username(terminal), "00abcdef01234567");
        assert_eq!(
            terminal_of_upload_topic(&upload_topic(terminal)),
            Some(terminal)
        );
        for bad in [
            "campus/v1/till/00ABCDEF01234567/up",
            "campus/v1/till/abc/up",
            "campus/v1/till/00abcdef01234567/ack",
            "campus/v2/till/00abcdef01234567/up",
            "campus/v1/till/00abcdef01234567/up/x",
        ] {
            assert_eq!(terminal_of_upload_topic(bad), None, "{bad}");
        }
    }
}
