//! The one place that turns domain types into bytes and back (postcard inside a versioned
//! envelope). Everything stored or sent goes through here, so a format change is visible in one
//! file and is caught by the golden-bytes tests below.

use crate::campus::{salvaging, Blacklist, CampusConfig, RawBlacklist, RawCampusConfig};
use crate::ids::{Seq, TerminalId};
use crate::link::UploadRecord;
use crate::link::{ToDaemon, ToTill};
use crate::mqtt::{
    BlacklistPage, ServerTime, SessionAnswered, UploadAck, UploadBatch, UploadSession,
    MAX_BLACKLIST_PAGES, MAX_BLACKLIST_PAGE_ENTRIES, MAX_RECORDS_PER_BATCH,
};
use crate::record::{JournalRecord, TillSnapshot, TillSnapshotV1, TillSnapshotV2};
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
    V3(TillSnapshot),
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
    V1(CampusConfig),
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
    V1(RawCampusConfig),
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
    encode(&SnapshotEnvelope::V3(snapshot.clone()))
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
        SnapshotEnvelope::V3(snapshot) => Ok(snapshot),
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
    Hello { protocol: u16, daemon: String },
    Fetch { after: Option<Seq>, max: u32 },
    Acked { through: Seq },
    Broker(crate::link::BrokerLink),
    Config(RawCampusConfig),
    Blacklist(RawBlacklist),
    ServerTime { server: crate::ids::UnixMillis },
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

pub fn encode_campus_config(config: &CampusConfig) -> Vec<u8> {
    encode(&CampusConfigEnvelope::V1(config.clone()))
}

/// Decodes a campus configuration and checks every value's range
/// ([`CampusConfig::check`], display names, minutes of the day).
pub fn decode_campus_config(bytes: &[u8]) -> Result<CampusConfig, DecodeError> {
    let what = "campus configuration";
    let RawCampusConfigEnvelope::V1(raw) = decode::<RawCampusConfigEnvelope>(bytes, what)?;
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
mod tests {
    //! Golden bytes: if one of these fails, the stored format changed. Never "fix" the expected
    //! bytes; add a new envelope version instead and keep decoding the old one.
    use super::*;
    use crate::ids::*;
    use crate::money::Fen;
    use crate::record::*;

    fn machine() -> MachineNumber {
        MachineNumber::new(58).unwrap()
    }

    fn uid() -> CardUid {
        CardUid::new(&[0xDE, 0xAD, 0xBE, 0xEF]).unwrap()
    }

    fn intent_record() -> JournalRecord {
        JournalRecord {
            seq: Seq(7),
            at: UnixMillis(1_700_000_000_000),
            machine: machine(),
            body: RecordBody::SaleIntent(SaleIntent {
                amount: Fen::new(1250),
                payer: Payer::CampusCard(uid()),
                card: CardDebitPlan {
                    counter_before: 3,
                    balance_before: Fen::new(10_000),
                    tag: TxnTag(0x0102_0304),
                },
                fixed_price: false,
            }),
        }
    }

    #[test]
    fn sale_intent_golden_bytes() {
        let bytes = encode_record(&intent_record());
        #[rustfmt::skip]
        let golden: &[u8] = &[
            0x00,                                     // RecordEnvelope::V1
            0x07,                                     // seq 7
            0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62,       // at: zigzag varint of 1.7e12 ms
            0x3A,                                     // machine 58
            0x00,                                     // RecordBody::SaleIntent
            0xE2, 0x09,                               // amount 1250
            0x00,                                     // Payer::CampusCard
            0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // uid: len 4, 10 bytes
            0x03,                                     // counter_before
            0x90, 0x4E,                               // balance_before 10000
            0x84, 0x86, 0x88, 0x08,                   // tag
            0x00,                                     // fixed_price false
        ];
        assert_eq!(bytes, golden);
        assert_eq!(decode_record(&bytes), Ok(intent_record()));
    }

    #[test]
    fn other_record_bodies_golden_bytes() {
        let cases: Vec<(RecordBody, &[u8])> = vec![
            (
                RecordBody::SaleCommitted(SaleCommitted {
                    intent: Seq(7),
                    amount: Fen::new(1250),
                    payer: Payer::CampusCard(uid()),
                    balance_after: Fen::new(8750),
                    recovered: true,
                }),
                &[
                    0x01, 0x07, 0xE2, 0x09, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0,
                    0xAE, 0x44, 0x01,
                ],
            ),
            (
                RecordBody::SaleAborted(SaleAborted {
                    intent: Seq(7),
                    reason: AbortReason::WriteRefused,
                }),
                &[0x02, 0x07, 0x01],
            ),
            (
                RecordBody::SaleInDoubt(SaleInDoubt {
                    intent: Seq(7),
                    reason: InDoubtReason::CardMovedOn,
                }),
                &[0x03, 0x07, 0x01],
            ),
            (
                RecordBody::ModeChanged(ModeChange::FixedPriceOn(Fen::new(800))),
                &[0x04, 0x02, 0xA0, 0x06],
            ),
            (
                RecordBody::ModeChanged(ModeChange::OfflineOff),
                &[0x04, 0x01],
            ),
            (
                RecordBody::MachineNumberChanged {
                    old: machine(),
                    new: MachineNumber::new(300).unwrap(),
                },
                &[0x05, 0x3A, 0xAC, 0x02],
            ),
            (
                RecordBody::CardIssued(CardIssued {
                    uid: uid(),
                    opening_balance: Fen::new(10_000),
                }),
                &[
                    0x06, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, 0x90, 0x4E,
                ],
            ),
            (
                RecordBody::LoadAborted(LoadAborted {
                    intent: Seq(7),
                    reason: AbortReason::WriteRefused,
                }),
                &[0x09, 0x07, 0x01],
            ),
            (
                RecordBody::CampusConfigApplied { version: 5 },
                &[0x0B, 0x05],
            ),
            (
                RecordBody::ServerTimeSeen {
                    server: UnixMillis(0),
                    offset_ms: -3,
                },
                &[0x0D, 0x00, 0x05],
            ),
            (
                RecordBody::StaffPinChanged(StaffPinState {
                    failures: 3,
                    locked_until: Some(UnixMillis(1_700_000_000_000)),
                }),
                &[0x0F, 0x03, 0x01, 0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62],
            ),
            (
                RecordBody::LoadResumed {
                    intent: Seq(7),
                    resume: 2,
                },
                &[0x10, 0x07, 0x02],
            ),
            (
                RecordBody::CardIssueInterrupted { uid: uid() },
                &[0x11, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0],
            ),
        ];
        for (body, golden_body) in cases {
            let record = JournalRecord {
                seq: Seq(1),
                at: UnixMillis(0),
                machine: machine(),
                body,
            };
            let mut golden = vec![0x00, 0x01, 0x00, 0x3A];
            golden.extend_from_slice(golden_body);
            let bytes = encode_record(&record);
            assert_eq!(bytes, golden, "{:?}", record.body);
            assert_eq!(decode_record(&bytes), Ok(record));
        }
    }

    /// The fields versions 1 and 2 share, as both store them.
    #[rustfmt::skip]
    const V1_FIELDS: &[u8] = &[
        0x09,             // next_seq
        0x3A,             // machine
        0x01,             // offline
        0x01, 0xA0, 0x06, // fixed_price Some(800)
        0x01, 0xC0, 0xB8, 0x02, 0x02, 0xDC, 0x0B, // today: day 20000 (zigzag), 2 sales, 1500
        0x00,             // meal None
        0x02, 0xBC, 0x05, 0xA0, 0x06, // recent amounts [700, 800]
        0x00,             // last_sale None
        0x00,             // pending []
    ];

    /// What [`V1_FIELDS`] hold, migrated to the current snapshot.
    fn migrated_snapshot() -> TillSnapshot {
        TillSnapshot {
            next_seq: Seq(9),
            machine: machine(),
            offline: true,
            fixed_price: Some(Fen::new(800)),
            days: vec![DayTally {
                day: LocalDay(20_000),
                tally: SalesTally {
                    count: 2,
                    total: Fen::new(1500),
                },
            }],
            meals: vec![],
            recent_amounts: vec![Fen::new(700), Fen::new(800)],
            last_sale: None,
            pending: vec![],
            pending_loads: vec![],
            campus: None,
            blacklist: None,
            server_time: None,
            staff_pin: StaffPinState::default(),
            interrupted_issue: None,
        }
    }

    #[test]
    fn snapshot_version_1_golden_bytes_still_decode_and_migrate() {
        let mut bytes = vec![0x00]; // SnapshotEnvelope::V1
        bytes.extend_from_slice(V1_FIELDS);
        assert_eq!(decode_snapshot(&bytes), Ok(migrated_snapshot()));
    }

    #[test]
    fn snapshot_version_2_golden_bytes_still_decode_and_migrate() {
        let mut bytes = vec![0x01]; // SnapshotEnvelope::V2
        bytes.extend_from_slice(V1_FIELDS);
        #[rustfmt::skip]
        bytes.extend_from_slice(&[
            0x01,             // pending_loads: one
            0x07, 0x00,       // intent 7, at 0
            0xE8, 0x07,       // amount 1000
            0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // uid
            0x03, 0x90, 0x4E, 0x84, 0x86, 0x88, 0x08, // counter 3, balance 10000, tag
            0x00,             // campus None
            0x00,             // blacklist None
            0x00,             // server_time None
        ]);
        let mut expected = migrated_snapshot();
        expected.pending_loads = vec![pending_load(0)];
        assert_eq!(decode_snapshot(&bytes), Ok(expected));
    }

    fn pending_load(resumes: u8) -> PendingLoad {
        PendingLoad {
            intent: Seq(7),
            at: UnixMillis(0),
            load: LoadIntent {
                amount: Fen::new(1000),
                uid: uid(),
                card: CardDebitPlan {
                    counter_before: 3,
                    balance_before: Fen::new(10_000),
                    tag: TxnTag(0x0102_0304),
                },
            },
            resumes,
        }
    }

    #[test]
    fn snapshot_version_3_golden_bytes() {
        let snapshot = TillSnapshot {
            days: vec![
                DayTally {
                    day: LocalDay(19_999),
                    tally: SalesTally {
                        count: 1,
                        total: Fen::new(100),
                    },
                },
                DayTally {
                    day: LocalDay(20_000),
                    tally: SalesTally {
                        count: 2,
                        total: Fen::new(1500),
                    },
                },
            ],
            meals: vec![MealTally {
                day: LocalDay(20_000),
                meal_start: MinuteOfDay::new(690).unwrap(),
                tally: SalesTally {
                    count: 2,
                    total: Fen::new(1500),
                },
            }],
            pending_loads: vec![pending_load(2)],
            staff_pin: StaffPinState {
                failures: 3,
                locked_until: Some(UnixMillis(1_700_000_000_000)),
            },
            interrupted_issue: Some(uid()),
            ..migrated_snapshot()
        };
        let bytes = encode_snapshot(&snapshot);
        #[rustfmt::skip]
        let golden: &[u8] = &[
            0x02,             // SnapshotEnvelope::V3
            0x09,             // next_seq
            0x3A,             // machine
            0x01,             // offline
            0x01, 0xA0, 0x06, // fixed_price Some(800)
            0x02,             // days: two
            0xBE, 0xB8, 0x02, 0x01, 0x64, // day 19999, 1 sale, 100
            0xC0, 0xB8, 0x02, 0x02, 0xDC, 0x0B, // day 20000, 2 sales, 1500
            0x01,             // meals: one
            0xC0, 0xB8, 0x02, 0xB2, 0x05, 0x02, 0xDC, 0x0B, // day 20000, 11:30, 2 sales, 1500
            0x02, 0xBC, 0x05, 0xA0, 0x06, // recent amounts [700, 800]
            0x00,             // last_sale None
            0x00,             // pending []
            0x01,             // pending_loads: one
            0x07, 0x00,       // intent 7, at 0
            0xE8, 0x07,       // amount 1000
            0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // uid
            0x03, 0x90, 0x4E, 0x84, 0x86, 0x88, 0x08, // counter 3, balance 10000, tag
            0x02,             // resumes 2
            0x00,             // campus None
            0x00,             // blacklist None
            0x00,             // server_time None
            0x03,             // staff PIN: 3 failures
            0x01, 0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62, // locked until 1.7e12 ms
            0x01, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // interrupted issue
        ];
        assert_eq!(bytes, golden);
        assert_eq!(decode_snapshot(&bytes), Ok(snapshot));
        assert_eq!(
            decode_snapshot(&encode_snapshot(&TillSnapshot::factory_new())),
            Ok(TillSnapshot::factory_new())
        );
    }

    /// The snapshot is rewritten with every record: with every tally list full (the largest
    /// days and totals the types allow), a PIN lockout and an interrupted issue, and nothing
    /// unresolved, it stays under 768 bytes (a real day's figures take about half that).
    #[test]
    fn a_snapshot_with_full_tallies_stays_small() {
        let big = SalesTally {
            count: u32::MAX,
            total: Fen::new(u64::MAX),
        };
        let snapshot = TillSnapshot {
            days: (0..TALLY_DAYS_KEPT)
                .map(|i| DayTally {
                    day: LocalDay(i32::MAX - i as i32),
                    tally: big,
                })
                .collect(),
            meals: (0..TALLY_MEALS_KEPT)
                .map(|i| MealTally {
                    day: LocalDay(i32::MAX - i as i32),
                    meal_start: MinuteOfDay::new(1439).unwrap(),
                    tally: big,
                })
                .collect(),
            staff_pin: StaffPinState {
                failures: u8::MAX,
                locked_until: Some(UnixMillis(i64::MAX)),
            },
            interrupted_issue: Some(CardUid::new(&[0xFF; 10]).unwrap()),
            ..migrated_snapshot()
        };
        let size = encode_snapshot(&snapshot).len();
        assert!(size < 768, "snapshot of {size} bytes");
    }

    #[test]
    fn mqtt_payloads_golden_bytes() {
        use crate::link::UploadRecord;
        use crate::mqtt::{ServerTime, UploadAck, UploadBatch};
        let batch = UploadBatch {
            terminal: TerminalId(0x0102),
            session: None,
            records: vec![
                UploadRecord {
                    seq: Seq(5),
                    bytes: vec![0xAA, 0xBB],
                },
                UploadRecord {
                    seq: Seq(6),
                    bytes: vec![0xCC],
                },
            ],
        };
        let bytes = encode_upload_batch(&batch);
        #[rustfmt::skip]
        let golden: &[u8] = &[
            0x00,             // UploadBatchEnvelope::V1
            0x82, 0x02,       // terminal 0x0102
            0x02,             // 2 records
            0x05, 0x02, 0xAA, 0xBB, // seq 5, 2 bytes
            0x06, 0x01, 0xCC, // seq 6, 1 byte
        ];
        assert_eq!(bytes, golden);
        assert_eq!(decode_upload_batch(&bytes), Ok(batch.clone()));

        let with_session = UploadBatch {
            session: Some(UploadSession(7)),
            ..batch.clone()
        };
        let bytes = encode_upload_batch(&with_session);
        #[rustfmt::skip]
        let golden: &[u8] = &[
            0x01,             // UploadBatchEnvelope::V2
            0x82, 0x02,       // terminal 0x0102
            0x07,             // session 7
            0x02,             // 2 records
            0x05, 0x02, 0xAA, 0xBB, // seq 5, 2 bytes
            0x06, 0x01, 0xCC, // seq 6, 1 byte
        ];
        assert_eq!(bytes, golden);
        assert_eq!(decode_upload_batch(&bytes), Ok(with_session));

        let ack = UploadAck {
            terminal: TerminalId(0x0102),
            stored_through: Some(Seq(300)),
            answers: None,
        };
        let bytes = encode_upload_ack(&ack);
        assert_eq!(bytes, [0x00, 0x82, 0x02, 0x01, 0xAC, 0x02]);
        assert_eq!(decode_upload_ack(&bytes), Ok(ack));
        let ack = UploadAck {
            answers: Some(SessionAnswered {
                session: UploadSession(7),
                received_through: Seq(290),
            }),
            ..ack
        };
        let bytes = encode_upload_ack(&ack);
        // V2, terminal, Some(300), session 7, received through 290.
        assert_eq!(
            bytes,
            [0x01, 0x82, 0x02, 0x01, 0xAC, 0x02, 0x07, 0xA2, 0x02]
        );
        assert_eq!(decode_upload_ack(&bytes), Ok(ack));

        let time = ServerTime {
            server: UnixMillis(1_700_000_000_000),
        };
        let bytes = encode_server_time(&time);
        assert_eq!(bytes, [0x00, 0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62]);
        assert_eq!(decode_server_time(&bytes), Ok(time));
    }

    #[test]
    fn blacklist_page_golden_bytes() {
        use crate::mqtt::BlacklistPage;
        let page = BlacklistPage {
            version: 9,
            issued_at: UnixMillis(1_700_000_000_000),
            page: 1,
            pages: 2,
            uids: vec![uid()],
        };
        let bytes = encode_blacklist_page(&page);
        #[rustfmt::skip]
        let golden: &[u8] = &[
            0x00,                               // BlacklistPageEnvelope::V1
            0x09,                               // version 9
            0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62, // issued at 1_700_000_000_000
            0x01, 0x02,                         // page 1 of 2
            0x01,                               // 1 UID
            0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // 4 bytes, padded to 10
        ];
        assert_eq!(bytes, golden);
        assert_eq!(decode_blacklist_page(&bytes), Ok(page));
    }

    #[test]
    fn blacklist_pages_out_of_shape_are_refused() {
        use crate::mqtt::BlacklistPage;
        let uid_n = |n: u32| CardUid::new(&n.to_be_bytes()).unwrap();
        let page = |page, pages, uids: Vec<CardUid>| BlacklistPage {
            version: 1,
            issued_at: UnixMillis(1),
            page,
            pages,
            uids,
        };
        for bad in [
            page(0, 0, vec![]),
            page(1, 1, vec![]),
            page(0, MAX_BLACKLIST_PAGES + 1, vec![]),
            page(0, 1, vec![uid_n(2), uid_n(1)]),
            page(0, 1, vec![uid_n(1), uid_n(1)]),
            page(
                0,
                1,
                (0..=MAX_BLACKLIST_PAGE_ENTRIES as u32).map(uid_n).collect(),
            ),
        ] {
            assert!(
                matches!(
                    decode_blacklist_page(&encode_blacklist_page(&bad)),
                    Err(DecodeError::Malformed { .. })
                ),
                "page {} of {} with {} entries was accepted",
                bad.page,
                bad.pages,
                bad.uids.len()
            );
        }
        let last = page(MAX_BLACKLIST_PAGES - 1, MAX_BLACKLIST_PAGES, vec![uid_n(1)]);
        assert_eq!(
            decode_blacklist_page(&encode_blacklist_page(&last)),
            Ok(last)
        );
    }

    #[test]
    fn upload_batches_with_gaps_or_no_records_are_refused() {
        use crate::link::UploadRecord;
        use crate::mqtt::UploadBatch;
        let record = |seq| UploadRecord {
            seq: Seq(seq),
            bytes: vec![1],
        };
        for records in [
            vec![],
            vec![record(0)],
            vec![record(1), record(3)],
            vec![record(2), record(1)],
            (1..=501).map(record).collect(),
        ] {
            let bytes = encode_upload_batch(&UploadBatch {
                session: None,
                terminal: TerminalId(1),
                records,
            });
            assert!(matches!(
                decode_upload_batch(&bytes),
                Err(DecodeError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            decode_record(&[]),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode_record(&[0x09, 0x01]),
            Err(DecodeError::Malformed { .. })
        ));
        let mut bytes = encode_record(&intent_record());
        bytes.push(0);
        assert_eq!(
            decode_record(&bytes),
            Err(DecodeError::TrailingBytes {
                what: "journal record",
                extra: 1
            })
        );
        for cut in 0..bytes.len() - 1 {
            assert!(
                decode_record(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }
}
