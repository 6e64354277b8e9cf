//! The one place that turns domain types into bytes and back (postcard inside a versioned
//! envelope). Everything stored or sent goes through here, so a format change is visible in one
//! file and is caught by the golden-bytes tests
//! (`codec/tests.rs`).

use crate::campus::{
    salvaging, Blacklist, CampusConfig, CampusConfigV1, RawBlacklist, RawCampusConfig,
    RawCampusConfigV1,
};
use crate::ids::{Seq, TerminalId};
use crate::link::UploadRecord;
use crate::link::{ToDaemon, ToTill};
use crate::mqtt::{
    BlacklistPage, ServerTime, SessionAnswered, UploadAck, UploadBatch, UploadSession,
    MAX_BLACKLIST_PAGES, MAX_BLACKLIST_PAGE_ENTRIES, MAX_RECORDS_PER_BATCH,
};
use crate::pay::{OrderCall, OrderResult};
use crate::record::{JournalRecord, TillSnapshot, TillSnapshotV1, TillSnapshotV2, TillSnapshotV3};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Journal records as stored. Append-only: a new format is a new variant; old ones stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordEnvelope {
    V1(JournalRecord),
}

/// The till snapshot as stored. Append-only, like [`RecordEnvelope`].
#[allow(
    clippy::large_enum_variant,
    reason = "decoded once and unwrapped at once; boxing would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotEnvelope {
    V1(TillSnapshotV1),
    /// Adds pending top-ups, the campus configuration, the blacklist info and server time.
    V2(TillSnapshotV2),
    /// Tallies for several days and meals (not one), a resume count per pending top-up, the
    /// staff-PIN lockout and the interrupted card issue.
    V3(TillSnapshotV3),
    /// Code-payment orders and the code-paid part of the tallies.
    V4(TillSnapshot),
}

/// Link messages from the daemon to the firmware. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToTillEnvelope {
    V1(ToTill),
}

/// Link messages from the firmware to the daemon. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToDaemonEnvelope {
    V1(ToDaemon),
}

/// A campus configuration as sent by the server and stored by the till. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CampusConfigEnvelope {
    /// Before code payments: decodes as a configuration without code-payment settings.
    V1(CampusConfigV1),
    /// Adds the code-payment settings (order timings, virtual-card public keys).
    V2(CampusConfig),
}

/// A blacklist as sent by the server and stored by the till. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlacklistEnvelope {
    V1(Blacklist),
}

/// A batch of journal records published by a till (MQTT upload topic). Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadBatchEnvelope {
    V1(UploadBatchV1),
    /// Adds the upload session.
    V2(UploadBatchV2),
}

/// [`UploadBatch`] as its first version carried it (no session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadBatchV1 {
    pub terminal: TerminalId,
    pub records: Vec<UploadRecord>,
}

/// [`UploadBatch`] with its session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadBatchV2 {
    pub terminal: TerminalId,
    pub session: UploadSession,
    pub records: Vec<UploadRecord>,
}

/// The campus server's application ack (MQTT ack topic). Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadAckEnvelope {
    V1(UploadAckV1),
    /// Adds what it says about the session it answers.
    V2(UploadAckV2),
}

/// [`UploadAck`] as its first version carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadAckV1 {
    pub terminal: TerminalId,
    pub stored_through: Option<Seq>,
}

/// [`UploadAck`] answering a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadAckV2 {
    pub terminal: TerminalId,
    pub stored_through: Option<Seq>,
    pub answers: SessionAnswered,
}

/// The campus server's clock (MQTT time topic). Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerTimeEnvelope {
    V1(ServerTime),
}

/// One page of a blacklist as the campus server retains it (MQTT blacklist page topics).
/// Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlacklistPageEnvelope {
    V1(BlacklistPage),
}

/// A code-payment order request (MQTT order request topic). Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderCallEnvelope {
    V1(OrderCall),
}

/// The campus server's answer about an order (MQTT order result topic). Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderResultEnvelope {
    V1(OrderResult),
}

/// Bytes that are not a valid encoding of what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("{what} has {extra} unexpected trailing bytes")]
    TrailingBytes { what: &'static str, extra: usize },
    /// Well-formed bytes whose content is out of its valid range (docs/link.md, "Valid ranges
    /// of downlink values"): refused as a whole. Shown with ALARM: the campus side sent it.
    #[error("ALARM {what} refused: {reason}")]
    Refused { what: &'static str, reason: String },
}

/// The envelope of a campus configuration, read without checks (to name a refusal's reason).
#[derive(Deserialize)]
enum RawCampusConfigEnvelope {
    V1(RawCampusConfigV1),
    V2(RawCampusConfig),
}

/// The envelope of a blacklist, read without checks (to name a refusal's reason).
#[derive(Deserialize)]
enum RawBlacklistEnvelope {
    V1(RawBlacklist),
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // postcard's serializer only fails on types serde cannot express (maps with unknown length,
    // unsized sequences); ours are plain structs, enums, options and vecs.
    postcard::to_stdvec(value).expect("postcard encodes the journal's plain data types")
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, DecodeError> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| DecodeError::Malformed {
            what,
            detail: e.to_string(),
        })?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::TrailingBytes {
            what,
            extra: rest.len(),
        })
    }
}

/// Encodes a record in the current envelope version.
pub fn encode_record(record: &JournalRecord) -> Vec<u8> {
    encode(&RecordEnvelope::V1(record.clone()))
}

/// Decodes a record from any known envelope version.
pub fn decode_record(bytes: &[u8]) -> Result<JournalRecord, DecodeError> {
    match decode::<RecordEnvelope>(bytes, "journal record")? {
        RecordEnvelope::V1(record) => Ok(record),
    }
}

pub fn encode_snapshot(snapshot: &TillSnapshot) -> Vec<u8> {
    encode(&SnapshotEnvelope::V4(snapshot.clone()))
}

/// Decodes a snapshot as the journal does when it opens: like [`decode_snapshot`], except that
/// a stored value today's rules refuse (a campus configuration written before its checks)
/// falls back to none instead of failing the snapshot; answers what fell back and why, for the
/// caller's ALARM. Nothing else in the snapshot is lost.
pub fn decode_snapshot_salvaging(bytes: &[u8]) -> Result<(TillSnapshot, Vec<String>), DecodeError> {
    let (snapshot, dropped) = salvaging(|| decode_snapshot(bytes));
    Ok((snapshot?, dropped))
}

/// Decodes a snapshot from any known version, migrating old ones.
pub fn decode_snapshot(bytes: &[u8]) -> Result<TillSnapshot, DecodeError> {
    match decode::<SnapshotEnvelope>(bytes, "till snapshot")? {
        SnapshotEnvelope::V1(snapshot) => Ok(snapshot.into()),
        SnapshotEnvelope::V2(snapshot) => Ok(snapshot.into()),
        SnapshotEnvelope::V3(snapshot) => Ok(snapshot.into()),
        SnapshotEnvelope::V4(snapshot) => Ok(snapshot),
    }
}

pub fn encode_to_till(message: &ToTill) -> Vec<u8> {
    encode(&ToTillEnvelope::V1(message.clone()))
}

/// [`ToTill`] read without checks, to name why a configuration or blacklist inside a link
/// message is refused (the same variants in the same order; only those two are looked at).
#[derive(Deserialize)]
#[allow(
    dead_code,
    reason = "the fields give the variants their shape; only two are read"
)]
enum RawToTill {
    Hello {
        protocol: u16,
        daemon: String,
    },
    Fetch {
        after: Option<Seq>,
        max: u32,
    },
    Acked {
        through: Seq,
    },
    Broker(crate::link::BrokerLink),
    Config(RawCampusConfig),
    Blacklist(RawBlacklist),
    ServerTime {
        server: crate::ids::UnixMillis,
    },
    OrderResult(crate::pay::OrderResult),
    OrderNotSent {
        order: crate::pay::OrderId,
        why: String,
    },
}

#[derive(Deserialize)]
enum RawToTillEnvelope {
    V1(RawToTill),
}

/// Decodes a message to the till. A configuration, blacklist or server time out of its valid
/// range is refused with its reason (the daemon refuses them on MQTT first).
pub fn decode_to_till(bytes: &[u8]) -> Result<ToTill, DecodeError> {
    let decoded = decode::<ToTillEnvelope>(bytes, "link message to the till");
    let ToTillEnvelope::V1(message) = decoded.map_err(|error| {
        let reason = match decode::<RawToTillEnvelope>(bytes, "link message to the till") {
            Ok(RawToTillEnvelope::V1(RawToTill::Config(raw))) => raw
                .parse()
                .err()
                .map(|reason| ("campus configuration", reason)),
            Ok(RawToTillEnvelope::V1(RawToTill::Blacklist(raw))) => {
                raw.parse().err().map(|reason| ("blacklist", reason))
            }
            _ => None,
        };
        match reason {
            Some((what, reason)) => DecodeError::Refused { what, reason },
            None => error,
        }
    })?;
    if let ToTill::ServerTime { server } = message {
        server.plausible().map_err(|e| DecodeError::Refused {
            what: "server time",
            reason: e.to_string(),
        })?;
    }
    Ok(message)
}

pub fn encode_to_daemon(message: &ToDaemon) -> Vec<u8> {
    encode(&ToDaemonEnvelope::V1(message.clone()))
}

pub fn decode_to_daemon(bytes: &[u8]) -> Result<ToDaemon, DecodeError> {
    match decode::<ToDaemonEnvelope>(bytes, "link message to the daemon")? {
        ToDaemonEnvelope::V1(message) => Ok(message),
    }
}

/// Encodes a configuration in the current envelope version (V2, with its code-payment settings).
pub fn encode_campus_config(config: &CampusConfig) -> Vec<u8> {
    encode(&CampusConfigEnvelope::V2(config.clone()))
}

/// Decodes a campus configuration of any envelope version (V1: no code-payment settings) and
/// checks every value's range ([`CampusConfig::check`], display names, minutes of the day).
pub fn decode_campus_config(bytes: &[u8]) -> Result<CampusConfig, DecodeError> {
    let what = "campus configuration";
    let raw = match decode::<RawCampusConfigEnvelope>(bytes, what)? {
        RawCampusConfigEnvelope::V1(raw) => RawCampusConfig::from(raw),
        RawCampusConfigEnvelope::V2(raw) => raw,
    };
    raw.parse()
        .map_err(|reason| DecodeError::Refused { what, reason })
}

pub fn encode_blacklist(list: &Blacklist) -> Vec<u8> {
    encode(&BlacklistEnvelope::V1(list.clone()))
}

/// Decodes a blacklist and checks its UIDs (4, 7 or 10 bytes), its order (sorted, unique), its
/// size and its version.
pub fn decode_blacklist(bytes: &[u8]) -> Result<Blacklist, DecodeError> {
    let what = "blacklist";
    let RawBlacklistEnvelope::V1(raw) = decode::<RawBlacklistEnvelope>(bytes, what)?;
    raw.parse()
        .map_err(|reason| DecodeError::Refused { what, reason })
}

/// Decodes the blacklist a till stored beside its journal: like [`decode_blacklist`], except
/// that entries whose UID today's rule refuses (stored before UIDs were checked) are dropped
/// instead of failing the list; answers what was dropped, for the caller's ALARM.
pub fn decode_stored_blacklist(bytes: &[u8]) -> Result<(Blacklist, Vec<String>), DecodeError> {
    let what = "stored blacklist";
    let RawBlacklistEnvelope::V1(raw) = decode::<RawBlacklistEnvelope>(bytes, what)?;
    raw.parse_stored()
        .map_err(|reason| DecodeError::Refused { what, reason })
}

/// A batch with a session goes as V2, one without (an older daemon's) as V1.
pub fn encode_upload_batch(batch: &UploadBatch) -> Vec<u8> {
    let terminal = batch.terminal;
    let records = batch.records.clone();
    encode(&match batch.session {
        Some(session) => UploadBatchEnvelope::V2(UploadBatchV2 {
            terminal,
            session,
            records,
        }),
        None => UploadBatchEnvelope::V1(UploadBatchV1 { terminal, records }),
    })
}

/// Decodes an upload batch and checks its shape: 1 to [`MAX_RECORDS_PER_BATCH`] records,
/// ascending and contiguous seqs starting at 1 or later.
pub fn decode_upload_batch(bytes: &[u8]) -> Result<UploadBatch, DecodeError> {
    let batch = match decode::<UploadBatchEnvelope>(bytes, "upload batch")? {
        UploadBatchEnvelope::V1(UploadBatchV1 { terminal, records }) => UploadBatch {
            terminal,
            session: None,
            records,
        },
        UploadBatchEnvelope::V2(UploadBatchV2 {
            terminal,
            session,
            records,
        }) => UploadBatch {
            terminal,
            session: Some(session),
            records,
        },
    };
    let malformed = |detail: &str| DecodeError::Malformed {
        what: "upload batch",
        detail: detail.to_string(),
    };
    if batch.records.is_empty() || batch.records.len() > MAX_RECORDS_PER_BATCH {
        return Err(malformed("record count outside 1..=MAX_RECORDS_PER_BATCH"));
    }
    if batch.records.first().is_some_and(|r| r.seq.0 == 0) {
        return Err(malformed("seq 0 does not exist"));
    }
    if !batch
        .records
        .windows(2)
        .all(|pair| pair[0].seq.next() == Some(pair[1].seq))
    {
        return Err(malformed("seqs are not ascending and contiguous"));
    }
    Ok(batch)
}

/// An ack answering a session goes as V2, one answering a batch without a session as V1.
pub fn encode_upload_ack(ack: &UploadAck) -> Vec<u8> {
    let (terminal, stored_through) = (ack.terminal, ack.stored_through);
    encode(&match ack.answers {
        Some(answers) => UploadAckEnvelope::V2(UploadAckV2 {
            terminal,
            stored_through,
            answers,
        }),
        None => UploadAckEnvelope::V1(UploadAckV1 {
            terminal,
            stored_through,
        }),
    })
}

pub fn decode_upload_ack(bytes: &[u8]) -> Result<UploadAck, DecodeError> {
    Ok(match decode::<UploadAckEnvelope>(bytes, "upload ack")? {
        UploadAckEnvelope::V1(UploadAckV1 {
            terminal,
            stored_through,
        }) => UploadAck {
            terminal,
            stored_through,
            answers: None,
        },
        UploadAckEnvelope::V2(UploadAckV2 {
            terminal,
            stored_through,
            answers,
        }) => UploadAck {
            terminal,
            stored_through,
            answers: Some(answers),
        },
    })
}

pub fn encode_server_time(time: &ServerTime) -> Vec<u8> {
    encode(&ServerTimeEnvelope::V1(*time))
}

/// Decodes the server's clock and refuses one outside the plausible window
/// ([`crate::ids::PLAUSIBLE_TIME_MIN`]..=[`crate::ids::PLAUSIBLE_TIME_MAX`]).
pub fn decode_server_time(bytes: &[u8]) -> Result<ServerTime, DecodeError> {
    let what = "server time";
    let ServerTimeEnvelope::V1(time) = decode::<ServerTimeEnvelope>(bytes, what)?;
    time.server.plausible().map_err(|e| DecodeError::Refused {
        what,
        reason: e.to_string(),
    })?;
    Ok(time)
}

pub fn encode_blacklist_page(page: &BlacklistPage) -> Vec<u8> {
    encode(&BlacklistPageEnvelope::V1(page.clone()))
}

/// Decodes a blacklist page and checks its shape: `page < pages <= MAX_BLACKLIST_PAGES`, at
/// most [`MAX_BLACKLIST_PAGE_ENTRIES`] UIDs, sorted and unique.
pub fn decode_blacklist_page(bytes: &[u8]) -> Result<BlacklistPage, DecodeError> {
    let BlacklistPageEnvelope::V1(page) = decode::<BlacklistPageEnvelope>(bytes, "blacklist page")?;
    let malformed = |detail: String| DecodeError::Malformed {
        what: "blacklist page",
        detail,
    };
    if page.pages == 0 || page.pages > MAX_BLACKLIST_PAGES {
        return Err(malformed(format!(
            "{} pages, outside 1..={MAX_BLACKLIST_PAGES}",
            page.pages
        )));
    }
    if page.page >= page.pages {
        return Err(malformed(format!(
            "page {} of {} pages (pages count from 0)",
            page.page, page.pages
        )));
    }
    if page.uids.len() > MAX_BLACKLIST_PAGE_ENTRIES {
        return Err(malformed(format!(
            "{} entries, more than {MAX_BLACKLIST_PAGE_ENTRIES}",
            page.uids.len()
        )));
    }
    if !page.uids.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err(malformed("entries are not sorted and unique".to_string()));
    }
    Ok(page)
}

#[cfg(test)]
mod tests;

pub fn encode_order_call(call: &OrderCall) -> Vec<u8> {
    encode(&OrderCallEnvelope::V1(call.clone()))
}

pub fn decode_order_call(bytes: &[u8]) -> Result<OrderCall, DecodeError> {
    match decode::<OrderCallEnvelope>(bytes, "order request")? {
        OrderCallEnvelope::V1(call) => Ok(call),
    }
}

pub fn encode_order_result(result: &OrderResult) -> Vec<u8> {
    encode(&OrderResultEnvelope::V1(*result))
}

pub fn decode_order_result(bytes: &[u8]) -> Result<OrderResult, DecodeError> {
    match decode::<OrderResultEnvelope>(bytes, "order result")? {
        OrderResultEnvelope::V1(result) => Ok(result),
    }
}
