//! A cloneable read handle on the journal for the link thread, and the upload watermark.
//!
//! The main loop owns [`super::Journal`] (`&mut` for appends); the link server runs on its own
//! threads and must answer the sync daemon's fetches and acks while the till keeps selling. sled
//! trees are safe to share between threads, so a [`JournalReader`] holds clones of them plus a
//! little shared state the journal updates after every durable append.
//!
//! # What a reader may hand out
//! Only records the journal has made durable: a record is visible in sled's tree as soon as it is
//! inserted, before `flush` and `fdatasync` returned. Uploading such a record and then
//! losing it in a power cut would make the till write a *different* record under the same seq,
//! which the campus server rightly treats as an alarm. So [`JournalReader::fetch`] stops at the
//! last seq [`super::Journal::append`] reported durable.
//!
//! # The upload watermark
//! `uploaded_through`: every record up to this seq is durably stored by the campus server (it sent
//! its application ack). Kept in the sled tree `upload` under `uploaded_through` (8 bytes
//! big-endian), written by [`JournalReader::mark_uploaded`] with the same durability as an append
//! (sled flush, then `fdatasync` of `db`). Rules:
//! - monotonic: an ack at or below the watermark changes nothing;
//! - bounded: an ack beyond the last durable record is refused ([`JournalError::AckBeyondEnd`]):
//!   the server claims records this till never wrote, an alarm for the logs;
//! - a record is marked uploaded only on that ack, never on a broker's or client's say-so.

use shared::link::UploadRecord;
use shared::{MachineNumber, Seq, TerminalId, UnixMillis};
use sled::IVec;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    corrupt, decode_record_at, guard_panic, io_error, sled_error, JournalError, DB_FILE_NAME,
};

/// The sled tree holding the upload watermark.
pub(super) const UPLOAD_TREE: &str = "upload";
/// The key of the watermark in [`UPLOAD_TREE`].
pub(super) const UPLOADED_THROUGH_KEY: &str = "uploaded_through";

/// What the journal publishes after every durable append.
#[derive(Debug, Clone, Copy)]
struct Durable {
    /// The last durable seq (0: none yet).
    last_seq: u64,
    machine: MachineNumber,
}

struct Shared {
    dir: PathBuf,
    db: sled::Db,
    records: sled::Tree,
    upload: sled::Tree,
    /// Its own descriptor of `<dir>/db`, for the `fdatasync` after a watermark write.
    db_file: File,
    terminal: TerminalId,
    durable: Mutex<Durable>,
    /// The watermark (0: nothing uploaded). Held only to read or set the number, never across
    /// the fsync, so the main loop's unsent count never waits for a watermark write.
    uploaded: Mutex<u64>,
    /// Serialises watermark writes (held across the durable write).
    watermark_writer: Mutex<()>,
    /// Every record up to here was pruned (0: none); fetches below it are refused.
    pruned_through: AtomicU64,
}

/// A cloneable handle for reading durable records and keeping the upload watermark, usable from
/// any thread while the main loop appends. It keeps sled open: drop every clone before the
/// journal directory can be opened again.
#[derive(Clone)]
pub struct JournalReader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalReader")
            .field("dir", &self.shared.dir)
            .field("terminal", &self.shared.terminal)
            .finish_non_exhaustive()
    }
}

/// Reads the watermark stored in `upload`; `Corrupt` if it is malformed or beyond `last_seq`.
pub(super) fn load_watermark(
    dir: &Path,
    upload: &sled::Tree,
    last_seq: u64,
) -> Result<u64, JournalError> {
    let Some(bytes) = upload
        .get(UPLOADED_THROUGH_KEY)
        .map_err(|e| sled_error(dir, "reading the upload watermark", e))?
    else {
        return Ok(0);
    };
    let through = <[u8; 8]>::try_from(bytes.as_ref())
        .map(u64::from_be_bytes)
        .map_err(|_| {
            corrupt(
                dir,
                format!(
                    "the upload watermark holds {} bytes, expected 8",
                    bytes.len()
                ),
            )
        })?;
    if through > last_seq {
        return Err(corrupt(
            dir,
            format!(
                "the upload watermark says the campus server stored records up to #{through}, \
                 but the journal ends at #{last_seq}: records the server holds were lost here"
            ),
        ));
    }
    Ok(through)
}

impl JournalReader {
    #[allow(
        clippy::too_many_arguments,
        reason = "one private constructor, called once"
    )]
    pub(super) fn new(
        dir: &Path,
        db: &sled::Db,
        records: &sled::Tree,
        upload: &sled::Tree,
        terminal: TerminalId,
        last_seq: u64,
        machine: MachineNumber,
        uploaded: u64,
    ) -> Result<JournalReader, JournalError> {
        let db_path = dir.join(DB_FILE_NAME);
        let db_file = File::open(&db_path).map_err(|source| io_error(&db_path, source))?;
        Ok(JournalReader {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                db: db.clone(),
                records: records.clone(),
                upload: upload.clone(),
                db_file,
                terminal,
                durable: Mutex::new(Durable { last_seq, machine }),
                uploaded: Mutex::new(uploaded),
                watermark_writer: Mutex::new(()),
                pruned_through: AtomicU64::new(0),
            }),
        })
    }

    /// Called by the journal once a record is durable.
    pub(super) fn publish_durable(&self, last: Seq, machine: MachineNumber) {
        *lock(&self.shared.durable) = Durable {
            last_seq: last.0,
            machine,
        };
    }

    /// Called by the journal when records up to `through` are pruned (0: none).
    pub(super) fn publish_pruned(&self, through: u64) {
        self.shared.pruned_through.store(through, Ordering::Release);
    }

    pub fn terminal_id(&self) -> TerminalId {
        self.shared.terminal
    }

    /// The machine number of the newest durable snapshot.
    pub fn machine(&self) -> MachineNumber {
        lock(&self.shared.durable).machine
    }

    /// The newest durable record's seq.
    pub fn last_seq(&self) -> Option<Seq> {
        seq_or_none(lock(&self.shared.durable).last_seq)
    }

    /// Every record up to here is stored by the campus server.
    pub fn uploaded_through(&self) -> Option<Seq> {
        seq_or_none(*lock(&self.shared.uploaded))
    }

    /// How many durable records the campus server has not acknowledged yet.
    pub fn unsent_count(&self) -> u64 {
        let last = lock(&self.shared.durable).last_seq;
        last.saturating_sub(*lock(&self.shared.uploaded))
    }

    /// The time of the oldest record not acknowledged yet (`None`: everything is uploaded).
    pub fn oldest_unsent_at(&self) -> Result<Option<UnixMillis>, JournalError> {
        let first = lock(&self.shared.uploaded).saturating_add(1);
        if first > lock(&self.shared.durable).last_seq {
            return Ok(None);
        }
        let seq = Seq(first);
        let dir = &self.shared.dir;
        let value = guard_panic(dir, "reading a record", || {
            self.shared.records.get(seq.to_key())
        })?
        .map_err(|e| sled_error(dir, "reading a record", e))?
        .ok_or_else(|| corrupt(dir, format!("record {seq} is missing")))?;
        Ok(Some(decode_record_at(dir, seq, &value)?.at))
    }

    /// Up to `max` (and at most `limit`) durable records after `after` (from the first when
    /// `None`), oldest first, contiguous, with their exact stored bytes. Empty when there are
    /// none yet. Records already pruned (acknowledged and past the retention) are refused with
    /// [`JournalError::Pruned`].
    pub fn fetch(
        &self,
        after: Option<Seq>,
        max: u32,
        limit: u32,
    ) -> Result<Vec<UploadRecord>, JournalError> {
        let dir = &self.shared.dir;
        let last = lock(&self.shared.durable).last_seq;
        let Some(first) = after.map_or(Some(Seq::FIRST), Seq::next) else {
            return Ok(Vec::new());
        };
        let pruned = self.shared.pruned_through.load(Ordering::Acquire);
        if first.0 <= pruned {
            return Err(JournalError::Pruned {
                seq: first,
                pruned_through: Seq(pruned),
            });
        }
        let count = u64::from(max.min(limit));
        let mut out = Vec::new();
        if count == 0 || first.0 > last {
            return Ok(out);
        }
        let end = last.min(first.0.saturating_add(count - 1));
        let mut iter = self
            .shared
            .records
            .range(first.to_key()..=Seq(end).to_key());
        let mut expected = first.0;
        while expected <= end {
            let item = guard_panic(dir, "reading records", || iter.next())?;
            let Some(item) = item else {
                return Err(corrupt(dir, format!("record #{expected} is missing")));
            };
            let (key, value): (IVec, IVec) =
                item.map_err(|e| sled_error(dir, "reading records", e))?;
            let seq = Seq::from_key(&key)
                .ok_or_else(|| corrupt(dir, format!("a record key is {} bytes", key.len())))?;
            if seq.0 != expected {
                return Err(corrupt(
                    dir,
                    format!("seq gap: expected record #{expected}, found {seq}"),
                ));
            }
            // Decoded only to check it is what the key says; the bytes go out as stored.
            decode_record_at(dir, seq, &value)?;
            out.push(UploadRecord {
                seq,
                bytes: value.to_vec(),
            });
            expected += 1;
        }
        Ok(out)
    }

    /// Makes the watermark `through` durable (see the module documentation for the rules) and
    /// returns the watermark now in force. An ack at or below the current watermark is a no-op.
    pub fn mark_uploaded(&self, through: Seq) -> Result<Option<Seq>, JournalError> {
        // Only this function changes the watermark, under the writer lock: the value read here
        // stays the current one until the new one is set below.
        let _writer = lock(&self.shared.watermark_writer);
        let current = *lock(&self.shared.uploaded);
        if through.0 <= current {
            return Ok(seq_or_none(current));
        }
        let last = lock(&self.shared.durable).last_seq;
        if through.0 > last {
            return Err(JournalError::AckBeyondEnd {
                through,
                last: seq_or_none(last),
            });
        }
        let dir = &self.shared.dir;
        guard_panic(dir, "writing the upload watermark", || {
            self.shared
                .upload
                .insert(UPLOADED_THROUGH_KEY, &through.0.to_be_bytes())
                .map_err(|e| sled_error(dir, "writing the upload watermark", e))?;
            // The same two steps as `Journal::append`, for the same reason: sled's flush uses
            // sync_file_range, which neither flushes the drive's cache nor the file's metadata.
            self.shared
                .db
                .flush()
                .map_err(|e| sled_error(dir, "flushing the upload watermark", e))?;
            self.shared
                .db_file
                .sync_data()
                .map_err(|source| io_error(&dir.join(DB_FILE_NAME), source))
        })??;
        *lock(&self.shared.uploaded) = through.0;
        Ok(Some(through))
    }
}

fn seq_or_none(seq: u64) -> Option<Seq> {
    (seq > 0).then_some(Seq(seq))
}

/// Locks a mutex; a panic on another thread while it held the lock leaves plain numbers behind,
/// which are still consistent, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
