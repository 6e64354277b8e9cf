//! What travels between the sync daemon and the campus server over MQTT: the topic names and the
//! payload types (a batch of journal records going up, the server's application ack and its
//! clock coming down). The bytes are made by [`crate::codec`] (versioned postcard envelopes);
//! `docs/mqtt.md` is the prose version of this file.
//!
//! Record identity is `(TerminalId, Seq)`. The server acks "every record of this terminal up to
//! `stored_through` is durably stored" (a contiguous high-water mark), so a repeated or
//! reordered batch never moves it wrongly.

use crate::campus::MAX_BLACKLIST_ENTRIES;
use crate::ids::{CardUid, Seq, TerminalId, UnixMillis};
use crate::link::UploadRecord;
use serde::{Deserialize, Serialize};

/// The prefix of every topic; the `v1` changes only if the topic layout itself changes
/// (payload formats are versioned inside their envelopes instead).
pub const TOPIC_ROOT: &str = "campus/v1";
/// The prefix of the blacklist's page topics: page `i` of the current version is retained on
/// `campus/v1/blacklist/{i}` (QoS 1), see [`blacklist_page_topic`]. Nothing is published on
/// this topic itself any more, and tills do not subscribe to it.
pub const BLACKLIST_TOPIC: &str = "campus/v1/blacklist";
/// The tills' subscription to every page of the blacklist.
pub const BLACKLIST_PAGES_FILTER: &str = "campus/v1/blacklist/+";
/// The largest MQTT packet (fixed header, topic and payload) anyone on the campus broker sends
/// or receives: 2 MiB. The daemon announces it as its MQTT 5 Maximum Packet Size, so the broker
/// drops for it whatever is larger instead of the connection ending on it, and the broker
/// refuses larger publishes (`max_packet_size` in docs/mosquitto/mosquitto.conf).
pub const MAX_MQTT_PACKET_BYTES: usize = 2 * 1024 * 1024;
/// The most UIDs on one blacklist page: 50,000 encode to about 550 KB, a quarter of
/// [`MAX_MQTT_PACKET_BYTES`].
pub const MAX_BLACKLIST_PAGE_ENTRIES: usize = 50_000;
/// The most pages of one blacklist version: enough for [`MAX_BLACKLIST_ENTRIES`] (20). It bounds
/// what the daemon holds while it reassembles a version.
pub const MAX_BLACKLIST_PAGES: u32 =
    MAX_BLACKLIST_ENTRIES.div_ceil(MAX_BLACKLIST_PAGE_ENTRIES) as u32;
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

/// The retained topic of page `page` (from 0) of the blacklist.
pub fn blacklist_page_topic(page: u32) -> String {
    format!("{BLACKLIST_TOPIC}/{page}")
}

/// The page number of a blacklist page topic, `None` if `topic` is not one.
pub fn page_of_blacklist_topic(topic: &str) -> Option<u32> {
    let page = topic.strip_prefix(BLACKLIST_TOPIC)?.strip_prefix('/')?;
    if page.is_empty() || page.len() > 1 && page.starts_with('0') {
        return None;
    }
    page.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| page.parse().ok())
        .flatten()
}

/// The campus server's subscription: every till's code-payment order requests.
pub const ALL_ORDER_REQUESTS_FILTER: &str = "campus/v1/till/+/pay/req";

/// The topic a till's daemon publishes code-payment order requests on (QoS 1, not retained).
pub fn order_request_topic(terminal: TerminalId) -> String {
    format!("{TOPIC_ROOT}/till/{terminal}/pay/req")
}

/// The topic the campus server answers a till's orders on (QoS 1, not retained).
pub fn order_result_topic(terminal: TerminalId) -> String {
    format!("{TOPIC_ROOT}/till/{terminal}/pay/res")
}

/// The terminal an order request topic belongs to, `None` if `topic` is not one.
pub fn terminal_of_order_request_topic(topic: &str) -> Option<TerminalId> {
    let rest = topic.strip_prefix(TOPIC_ROOT)?.strip_prefix("/till/")?;
    parse_terminal(rest.strip_suffix("/pay/req")?)
}

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

/// One page of a blacklist version. The campus server cuts the sorted list into
/// `pages` pages of at most [`MAX_BLACKLIST_PAGE_ENTRIES`] UIDs (an empty list is one empty
/// page) and retains page `page` on [`blacklist_page_topic`]; the daemon passes the version on
/// to its till only once it holds every page of it. Checked when decoded: `1 <= pages <=
/// MAX_BLACKLIST_PAGES`, `page < pages`, UIDs sorted and unique, at most
/// [`MAX_BLACKLIST_PAGE_ENTRIES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistPage {
    /// The version of the whole list (every page of it carries the same).
    pub version: u64,
    /// When the server issued this version (the same on every page).
    pub issued_at: UnixMillis,
    /// This page's number, from 0.
    pub page: u32,
    /// How many pages this version has.
    pub pages: u32,
    pub uids: Vec<CardUid>,
}

impl BlacklistPage {
    /// Cuts a list's UIDs (sorted, as [`crate::campus::Blacklist::uids`] holds them) into pages.
    pub fn paginate(version: u64, issued_at: UnixMillis, uids: &[CardUid]) -> Vec<BlacklistPage> {
        let chunks: Vec<&[CardUid]> = if uids.is_empty() {
            vec![&[]]
        } else {
            uids.chunks(MAX_BLACKLIST_PAGE_ENTRIES).collect()
        };
        let pages = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        chunks
            .into_iter()
            .zip(0..)
            .map(|(chunk, page)| BlacklistPage {
                version,
                issued_at,
                page,
                pages,
                uids: chunk.to_vec(),
            })
            .collect()
    }
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

    #[test]
    fn blacklist_pages_have_numbered_topics_under_the_blacklist_topic() {
        assert_eq!(blacklist_page_topic(0), "campus/v1/blacklist/0");
        assert_eq!(page_of_blacklist_topic("campus/v1/blacklist/19"), Some(19));
        for bad in [
            "campus/v1/blacklist",
            "campus/v1/blacklist/",
            "campus/v1/blacklist/01",
            "campus/v1/blacklist/-1",
            "campus/v1/blacklist/x",
            "campus/v1/blacklist/99999999999",
            "campus/v1/blacklist/1/2",
        ] {
            assert_eq!(page_of_blacklist_topic(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_million_entries_fit_in_the_pages_and_an_empty_list_is_one_page() {
        assert_eq!(MAX_BLACKLIST_PAGES, 20);
        let uid = |n: u32| CardUid::new(&n.to_be_bytes()).unwrap();
        let uids: Vec<CardUid> = (0..120_001).map(uid).collect();
        let pages = BlacklistPage::paginate(7, UnixMillis(1), &uids);
        assert_eq!(
            pages
                .iter()
                .map(|p| (p.page, p.pages, p.uids.len()))
                .collect::<Vec<_>>(),
            vec![(0, 3, 50_000), (1, 3, 50_000), (2, 3, 20_001)]
        );
        let empty = BlacklistPage::paginate(8, UnixMillis(1), &[]);
        assert_eq!(empty.len(), 1);
        assert_eq!((empty[0].page, empty[0].pages), (0, 1));
    }
}
