//! The till's durable journal: every [`JournalRecord`] and, written right after it in the same
//! sled log write, the [`TillSnapshot`] a restart starts from.
//!
//! # On disk
//! One sled 0.34 database in the journal directory (sled's files `conf`, `db`, `blobs/`,
//! `snap.*`) with these trees:
//! - `records`: key [`Seq::to_key`] (8 bytes, big-endian, so key order is seq order), value
//!   [`shared::codec::encode_record`];
//! - `meta`: `format` (journal format version, 4 bytes big-endian, see [`JOURNAL_FORMAT_VERSION`]),
//!   `terminal_id` (8 bytes big-endian, never zero) and `snapshot`
//!   ([`shared::codec::encode_snapshot`]);
//! - `upload`: the upload watermark (see [`JournalReader`]);
//! - `blacklist`: the lost-card list, replaced in the same transaction as its record (see
//!   `blacklist_store`).
//!
//! Next to them, `journal.hwm` holds the last seq known durable (see `high_water`), so that an
//! open detects sled silently dropping the tail of its log.
//!
//! # Invariants (checked in full by [`Journal::open`])
//! - records are contiguous from [`Seq::FIRST`] to `snapshot.next_seq - 1`, each decodes and
//!   carries the seq of its key;
//! - the snapshot decodes and `snapshot.next_seq` is one past the last record (or is the last
//!   record, written by an append a crash cut before its snapshot: open undoes that record);
//! - the high-water mark names this terminal and is not past the last record.
//!
//! # Durability
//! [`Journal::append`] returns only after the record and snapshot are on stable storage: the record
//! then the snapshot as two plain sled inserts, then `Db::flush`, then `fdatasync` of `<dir>/db`
//! (see [`Journal::append`] for why both): one sled log write and one barrier per append, with the
//! card index's pending updates in the same write. No sled transaction: it would cost two more log
//! writes (see `Journal::write_record_then_snapshot`). Sequence numbers come from the snapshot,
//! never from sled's `generate_id`.
//!
//! # Untrusted bytes
//! Nothing read from disk may panic the till: bytes are decoded only through `shared::codec`, and
//! every call into sled that reads from disk runs under [`std::panic::catch_unwind`] (sled 0.34 can
//! panic on garbage), turning a panic into [`JournalError::Corrupt`] and poisoning the journal.
//! This relies on the firmware being built with `panic = "unwind"` (the default).

mod blacklist_store;
mod card_index;
mod high_water;
mod reader;

pub use blacklist_store::BLACKLIST_CHUNK_BYTES;
pub use reader::JournalReader;

use shared::campus::Blacklist;
use shared::codec::{self, decode_record, encode_record, encode_snapshot};
use shared::record::{JournalRecord, RecordBody, TillSnapshot};
use shared::{Seq, TerminalId, UnixMillis};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{IVec, Transactional};
use std::any::Any;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::io::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The version of the journal's layout (tree names, keys, value encodings) written in `meta`.
/// Opening a journal with another version fails with [`JournalError::UnsupportedFormat`].
pub const JOURNAL_FORMAT_VERSION: u32 = 1;

/// Bytes of sled's page cache (sled's default is 1 GiB). The till is embedded and its working set
/// is tiny (the snapshot plus the index and the newest leaves of `records`); 8 MiB keeps the hot
/// path in memory and bounds what the journal can take from a small board's RAM.
pub const SLED_CACHE_CAPACITY_BYTES: u64 = 8 * 1024 * 1024;

/// The most records one [`Journal::find`] call examines before it gives up with `Ok(None)`.
pub const BROWSE_SCAN_LIMIT: usize = 10_000;

/// The largest encoded record the journal accepts (real ones are well under 100 bytes).
pub const MAX_RECORD_BYTES: usize = 1024;

/// The largest encoded snapshot the journal accepts. Together with [`MAX_RECORD_BYTES`] this keeps
/// every sled page far below sled's blob threshold (segment size / 4 = 128 KiB): sled writes
/// larger pages to separate blob files without fsyncing them, which would break durability.
pub const MAX_SNAPSHOT_BYTES: usize = 16 * 1024;

/// How long [`Journal::open`] waits for sled's lock on `<dir>/db` before it reports
/// [`JournalError::Locked`]. sled 0.34 releases the lock asynchronously: right after a `Db` is
/// dropped its worker threads can still hold the file (spacejam/sled#1289), so an immediate
/// reopen in the same process needs a short grace period. Another live owner still fails, late
/// by this much.
pub const LOCK_WAIT: Duration = Duration::from_millis(1_000);

/// How often [`Journal::open`] retries the lock within [`LOCK_WAIT`].
const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// How many times creation draws a terminal id before it gives up on `/dev/urandom` (a zero id
/// is refused; 16 zeros in a row means the source is broken).
const TERMINAL_ID_ATTEMPTS: usize = 16;

const RECORDS_TREE: &str = "records";
const META_TREE: &str = "meta";
const FORMAT_KEY: &str = "format";
const TERMINAL_ID_KEY: &str = "terminal_id";
const SNAPSHOT_KEY: &str = "snapshot";
/// sled's data file inside the journal directory (the one sled locks and `append` fdatasyncs).
const DB_FILE_NAME: &str = "db";
/// sled's configuration file inside the journal directory.
const CONF_FILE_NAME: &str = "conf";
/// The text sled 0.34 (`Config::try_lock`) puts in the error when `flock` on `db` fails.
const SLED_LOCK_ERROR_TEXT: &str = "could not acquire lock";

/// Everything that can go wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process (or another [`Journal`] in this process) holds sled's exclusive lock on the
    /// directory.
    #[error("journal {} is locked: another process (or another open Journal) holds sled's exclusive lock on its db file", path.display())]
    Locked {
        /// The journal directory.
        path: PathBuf,
    },
    /// Bytes on disk are not a valid journal: a decode error, a missing snapshot with records
    /// present, a seq gap, a snapshot/record mismatch, records lost according to the high-water
    /// mark, or sled reported corruption or panicked while reading.
    #[error("journal {} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The journal directory.
        path: PathBuf,
        /// What is wrong and where (seq, key or file).
        detail: String,
    },
    /// The operating system refused a read, write or sync.
    #[error("I/O error on journal {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The error the operating system reported.
        #[source]
        source: io::Error,
    },
    /// Caller bug guard: the appended record's seq is not the expected next one, or the snapshot's
    /// `next_seq` is not the record's seq + 1. Nothing was written.
    #[error("journal append out of order: expected {expected}, got {got}")]
    OutOfOrder {
        /// The seq that was expected (the next record's, or the snapshot's `next_seq`).
        expected: Seq,
        /// The seq that was given.
        got: Seq,
    },
    /// The journal was written by a firmware with another journal format.
    #[error("journal {} has format version {found}; this firmware reads version {supported}", path.display())]
    UnsupportedFormat {
        /// The journal directory.
        path: PathBuf,
        /// The version stored in the journal.
        found: u32,
        /// The version this firmware reads and writes ([`JOURNAL_FORMAT_VERSION`]).
        supported: u32,
    },
    /// Caller bug guard: an encoded record or snapshot is larger than the journal accepts.
    /// Nothing was written.
    #[error("{what} is {bytes} bytes encoded, more than the journal's limit of {limit} bytes")]
    TooLarge {
        /// "record" or "snapshot".
        what: &'static str,
        /// The encoded size.
        bytes: usize,
        /// The limit ([`MAX_RECORD_BYTES`] or [`MAX_SNAPSHOT_BYTES`]).
        limit: usize,
    },
    /// The record has seq `u64::MAX`; there is no next seq for the snapshot. Nothing was written.
    #[error("journal sequence numbers are exhausted at {last}")]
    SeqExhausted {
        /// The seq of the refused record.
        last: Seq,
    },
    /// sled failed in a way that is neither I/O nor corruption (a sled bug report, a missing tree).
    #[error("sled failed on journal {}: {detail}", path.display())]
    Storage {
        /// The journal directory.
        path: PathBuf,
        /// sled's error.
        detail: String,
    },
    /// An earlier failure left the journal's durable state unknown (an append whose sync failed,
    /// or a sled panic); the journal refuses further use. Reopening (restarting the till)
    /// re-verifies what is on disk.
    #[error("journal {} is unusable after an earlier failure ({cause}); reopen it to re-verify the disk", path.display())]
    Poisoned {
        /// The journal directory.
        path: PathBuf,
        /// The earlier failure.
        cause: String,
    },
    /// The campus server acknowledged records beyond the end of this journal: it claims records
    /// this till never wrote (or lost). Nothing was written; an alarm for the logs.
    #[error("ack through {through} is beyond the journal's last record ({})", last.map_or("none".to_string(), |s| s.to_string()))]
    AckBeyondEnd {
        /// The seq the ack named.
        through: Seq,
        /// The last durable record.
        last: Option<Seq>,
    },
    /// Caller bug guard: a blacklist was to be stored with a record that does not describe it.
    /// Nothing was written.
    #[error("blacklist replacement mismatch: {0}")]
    BlacklistMismatch(String),
}

impl JournalError {
    /// The storage under the journal is full (no space left, or a quota reached): the operator
    /// can fix it by freeing space, unlike corruption or a failing disk.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, JournalError::Io { source, .. } if is_storage_full(source))
    }
}

/// Whether `error` says the filesystem is full (`ENOSPC`) or a quota is reached (`EDQUOT`).
pub fn is_storage_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Which way [`Journal::find`] walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Towards lower seqs (older records).
    Older,
    /// Towards higher seqs (newer records).
    Newer,
}

/// The till's journal: an open sled database, exclusively locked, plus the snapshot as of the
/// last append. Exactly one exists per journal directory at a time.
pub struct Journal {
    dir: PathBuf,
    db: sled::Db,
    records: sled::Tree,
    meta: sled::Tree,
    /// `<dir>/db`, kept open for the `fdatasync` after every append.
    db_file: File,
    /// `<dir>/journal.hwm`, updated after every durable append.
    high_water_file: File,
    /// Barriers (`fdatasync` of `db`) this `Journal` issued since it was opened; see
    /// [`Journal::barriers`].
    barriers: AtomicU64,
    blacklist_tree: sled::Tree,
    terminal_id: TerminalId,
    snapshot: TillSnapshot,
    /// The blacklist stored with the snapshot's `BlacklistReplaced` (empty if none).
    blacklist: Arc<Blacklist>,
    /// The read handle shared with the link thread; told of every durable append.
    reader: JournalReader,
    /// Set once when durable state became unknown; every later call fails with `Poisoned`.
    poison: OnceLock<String>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("terminal_id", &self.terminal_id)
            .field("next_seq", &self.snapshot.next_seq)
            .field("poisoned", &self.poison.get())
            .finish_non_exhaustive()
    }
}

/// What `open` found in `meta`.
struct Verified {
    terminal_id: TerminalId,
    snapshot: TillSnapshot,
    /// Whether the journal was created by this open.
    created: bool,
    /// Number of records scanned.
    records: u64,
    /// A record one past the snapshot, written by an append cut between its record and its
    /// snapshot (see [`Journal::write_record_then_snapshot`]); [`Journal::open`] undoes it once
    /// the high-water mark says it was never reported durable.
    cut_append: Option<Seq>,
}

/// Why an append transaction aborted.
#[derive(Debug)]
enum AppendAbort {
    /// The key of the record to append is already taken: the in-memory snapshot disagrees with
    /// the disk. Never expected; guards "seqs are never reused".
    SeqTaken,
}

impl Journal {
    /// Opens the journal in `dir`, or creates it (and `dir`) if there is none.
    ///
    /// On creation a random [`TerminalId`] (8 bytes from `/dev/urandom`, never zero), the journal
    /// format and [`TillSnapshot::factory_new`] are stored durably, and the directory entries of
    /// the new files are fsynced. On open, the whole journal is verified (see the module
    /// documentation) and checked against the high-water mark: about 70–115 ms for 100,000
    /// records on the development VM (the `journal_append` bench prints it).
    ///
    /// Note: sled's own recovery runs first and rewrites a damaged log (it zeroes everything after
    /// the first bad entry), so a directory refused as `Corrupt` should be copied off the till
    /// before anything opens it again.
    ///
    /// sled is opened and the journal verified under `catch_unwind`: a sled panic on garbage
    /// becomes [`JournalError::Corrupt`]. A journal held by someone else is
    /// [`JournalError::Locked`] (after waiting up to [`LOCK_WAIT`]).
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let dir = dir.to_path_buf();
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
            sync_dir(parent_dir(&dir))?;
        }
        wait_for_lock(&dir)?;

        let config = sled::Config::new()
            .path(&dir)
            .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
            // In sled 0.34.7 `Mode` is stored but never read: it changes nothing. LowSpace (the
            // default) is set explicitly for the day it does: the till appends a few records a
            // minute, so space on its flash matters more than write throughput.
            .mode(sled::Mode::LowSpace)
            // No background flusher thread: every append flushes itself, synchronously, so a
            // periodic flush would only add a thread and unscheduled writes to the flash.
            .flush_every_ms(None);
        let db = guard_panic(&dir, "opening sled", || config.open())?
            .map_err(|e| sled_error(&dir, "opening sled", e))?;

        let started = Instant::now();
        let (records, meta, verified) = guard_panic(&dir, "verifying the journal", || {
            verify_or_create(&dir, &db)
        })??;
        let db_file = File::open(dir.join(DB_FILE_NAME))
            .map_err(|source| io_error(&dir.join(DB_FILE_NAME), source))?;
        if verified.created {
            make_creation_durable(&dir, &db, &db_file)?;
        } else {
            // sled may have written a new `snap.*` file while recovering; make its name durable
            // too (sled renames it into place without syncing the directory).
            sync_dir(&dir)?;
        }
        let last_seq = verified.snapshot.next_seq.prev().map_or(0, |s| s.0);
        let high_water_file = check_high_water(&dir, verified.terminal_id, last_seq)?;
        // Only after the mark agreed: a record the mark vouches for is never undone (that would be
        // sled losing the snapshot, reported by `check_high_water` as lost records).
        if let Some(seq) = verified.cut_append {
            undo_cut_append(&dir, &db, &records, &db_file, seq)?;
        }
        let (upload, blacklist_tree, blacklist, uploaded) =
            guard_panic(&dir, "loading the watermark and blacklist", || {
                let upload = db
                    .open_tree(reader::UPLOAD_TREE)
                    .map_err(|e| sled_error(&dir, "opening the upload tree", e))?;
                let uploaded = reader::load_watermark(&dir, &upload, last_seq)?;
                let tree = db
                    .open_tree(blacklist_store::BLACKLIST_TREE)
                    .map_err(|e| sled_error(&dir, "opening the blacklist tree", e))?;
                let list = blacklist_store::load(&dir, &tree, verified.snapshot.blacklist)?;
                Ok::<_, JournalError>((upload, tree, list, uploaded))
            })??;
        let reader = JournalReader::new(
            &dir,
            &db,
            &records,
            &upload,
            verified.terminal_id,
            last_seq,
            verified.snapshot.machine,
            uploaded,
        )?;
        tracing::info!(
            dir = %dir.display(),
            terminal = %verified.terminal_id,
            records = verified.records,
            next_seq = %verified.snapshot.next_seq,
            created = verified.created,
            verify_ms = started.elapsed().as_millis() as u64,
            "journal open"
        );
        Ok(Journal {
            dir,
            db,
            records,
            meta,
            db_file,
            high_water_file,
            barriers: AtomicU64::new(0),
            blacklist_tree,
            terminal_id: verified.terminal_id,
            snapshot: verified.snapshot,
            blacklist: Arc::new(blacklist),
            reader,
            poison: OnceLock::new(),
        })
    }

    /// The till's permanent identity, made when the journal was created.
    pub fn terminal_id(&self) -> TerminalId {
        self.terminal_id
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshot as of the last append (what a restart starts from).
    pub fn snapshot(&self) -> &TillSnapshot {
        &self.snapshot
    }

    /// Last seq written, `None` when the journal is empty.
    pub fn last_seq(&self) -> Option<Seq> {
        self.snapshot.next_seq.prev()
    }

    /// How many barriers (`fdatasync` of sled's `db`) this `Journal` issued since it was opened:
    /// one per append. For the journal bench and the tests that hold a sale to one barrier per
    /// durable point; the reader's watermark writes ([`JournalReader::mark_uploaded`]) are not
    /// counted.
    pub fn barriers(&self) -> u64 {
        self.barriers.load(Ordering::Relaxed)
    }

    /// The blacklist the till holds (stored with its record; empty if it never got one).
    pub fn blacklist(&self) -> Arc<Blacklist> {
        Arc::clone(&self.blacklist)
    }

    /// A read handle for another thread (the link server). It keeps sled open: drop every clone
    /// before reopening the journal.
    pub fn reader(&self) -> JournalReader {
        self.reader.clone()
    }

    /// Every record up to here is stored by the campus server (see [`JournalReader`]).
    pub fn uploaded_through(&self) -> Option<Seq> {
        self.reader.uploaded_through()
    }

    /// Marks records up to `through` uploaded, durably; see [`JournalReader::mark_uploaded`].
    pub fn mark_uploaded(&self, through: Seq) -> Result<Option<Seq>, JournalError> {
        self.check_poison()?;
        self.reader.mark_uploaded(through)
    }

    /// Records not acknowledged by the campus server yet.
    pub fn unsent_count(&self) -> u64 {
        self.reader.unsent_count()
    }

    /// The time of the oldest record not acknowledged yet.
    pub fn oldest_unsent_at(&self) -> Result<Option<UnixMillis>, JournalError> {
        self.check_poison()?;
        self.reader.oldest_unsent_at()
    }

    /// Appends a `BlacklistReplaced` record and replaces the stored blacklist with `list` in the
    /// same transaction (with the snapshot), durably, like [`Journal::append`]. Refused with
    /// nothing written when the record does not describe `list` or the snapshot does not name it.
    pub fn append_replacing_blacklist(
        &mut self,
        record: &JournalRecord,
        snapshot: &TillSnapshot,
        list: Arc<Blacklist>,
    ) -> Result<(), JournalError> {
        let info = list.info();
        if record.body != RecordBody::BlacklistReplaced(info) || snapshot.blacklist != Some(info) {
            return Err(JournalError::BlacklistMismatch(format!(
                "list {info:?}, record {:?}, snapshot {:?}",
                record.body, snapshot.blacklist
            )));
        }
        let chunks = blacklist_store::Chunks::of(&list);
        self.append_inner(record, snapshot, Some(&chunks))?;
        self.blacklist = list;
        Ok(())
    }

    /// Appends `record` and replaces the snapshot with `snapshot`, and makes both durable before
    /// returning: one sled log write (record, then snapshot, then whatever card index updates were
    /// pending) and one `fdatasync`. A crash in between can leave the record without the snapshot,
    /// which the next [`Journal::open`] undoes (see `Journal::write_record_then_snapshot`).
    ///
    /// Refused with nothing written: [`JournalError::OutOfOrder`] unless `record.seq` is the
    /// current snapshot's `next_seq` and `snapshot.next_seq` is `record.seq + 1`;
    /// [`JournalError::TooLarge`]; [`JournalError::SeqExhausted`].
    ///
    /// If the write, flush or sync fails, the record may or may not be durable: the journal
    /// is poisoned and the caller must treat the sale as not recorded (and restart, which
    /// re-verifies the disk and resumes from whatever is durable).
    pub fn append(
        &mut self,
        record: &JournalRecord,
        snapshot: &TillSnapshot,
    ) -> Result<(), JournalError> {
        if matches!(record.body, RecordBody::BlacklistReplaced(_)) {
            return Err(JournalError::BlacklistMismatch(
                "a BlacklistReplaced record is appended with its list only".to_string(),
            ));
        }
        self.append_inner(record, snapshot, None)
    }

    fn append_inner(
        &mut self,
        record: &JournalRecord,
        snapshot: &TillSnapshot,
        blacklist: Option<&blacklist_store::Chunks>,
    ) -> Result<(), JournalError> {
        self.check_poison()?;
        if record.seq != self.snapshot.next_seq {
            return Err(JournalError::OutOfOrder {
                expected: self.snapshot.next_seq,
                got: record.seq,
            });
        }
        let after = record
            .seq
            .next()
            .ok_or(JournalError::SeqExhausted { last: record.seq })?;
        if snapshot.next_seq != after {
            return Err(JournalError::OutOfOrder {
                expected: after,
                got: snapshot.next_seq,
            });
        }
        let record_bytes = IVec::from(encode_record(record));
        check_size("record", record_bytes.len(), MAX_RECORD_BYTES)?;
        let snapshot_bytes = IVec::from(encode_snapshot(snapshot));
        check_size("snapshot", snapshot_bytes.len(), MAX_SNAPSHOT_BYTES)?;

        let result = guard_panic(&self.dir, "appending", || {
            match blacklist {
                None => self.write_record_then_snapshot(record.seq, record_bytes, snapshot_bytes),
                Some(chunks) => {
                    self.write_in_transaction(record.seq, record_bytes, snapshot_bytes, chunks)
                }
            }?;
            // Durability, step 1: sled writes its in-memory log buffers to `db` and waits for
            // them. On Linux sled 0.34 does that with `sync_file_range(WAIT_BEFORE | WRITE |
            // WAIT_AFTER)`, which only starts and waits for writeback of those pages: it flushes
            // neither the drive's volatile write cache nor the file's metadata (a grown file size,
            // newly allocated extents), so after `flush()` alone a power cut can still lose the
            // record.
            self.db
                .flush()
                .map_err(|e| sled_error(&self.dir, "flushing", e))?;
            // Durability, step 2: fdatasync `db` (`File::sync_data` is fdatasync on Linux). It
            // writes the metadata needed to read the data back and issues a cache flush (FUA /
            // FLUSH) to the drive, which `sync_file_range` never does.
            self.barriers.fetch_add(1, Ordering::Relaxed);
            self.db_file
                .sync_data()
                .map_err(|source| io_error(&self.dir.join(DB_FILE_NAME), source))
        })
        .and_then(|inner| inner);
        if let Err(e) = result {
            let cause = format!("append of record {} failed: {e}", record.seq);
            tracing::error!(dir = %self.dir.display(), "{cause}");
            let _ = self.poison.set(cause);
            return Err(e);
        }
        self.snapshot = snapshot.clone();
        self.reader.publish_durable(record.seq, snapshot.machine);
        let mark = high_water::Mark {
            terminal: self.terminal_id.0,
            last_seq: record.seq.0,
        };
        // The record is durable whatever happens here; the mark is only a detector (it may lag).
        if let Err(e) = high_water::update(&self.high_water_file, mark) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "high-water mark not updated");
        }
        Ok(())
    }

    /// The write of an ordinary append, without a sled transaction: the record, then the
    /// snapshot, as two plain inserts that land one after the other in sled's log buffer.
    ///
    /// Why not a transaction: sled 0.34 writes a transaction's batch manifest as a log buffer of
    /// its own, and before it seals whatever the buffer held (the card index's updates), so every
    /// transaction costs two or three log writes, each followed by a `sync_file_range`. Plain
    /// inserts share the one buffer `flush` writes. What a transaction guaranteed, the order
    /// gives: sled's recovery keeps a prefix of its log, so a crash can keep the record without
    /// the snapshot, never the snapshot without the record, and [`Journal::open`] undoes such a
    /// cut append (it never returned: no sale was shown successful on it).
    fn write_record_then_snapshot(
        &self,
        seq: Seq,
        record_bytes: IVec,
        snapshot_bytes: IVec,
    ) -> Result<(), JournalError> {
        let key = seq.to_key();
        let inserted = self
            .records
            .compare_and_swap(key, None as Option<&[u8]>, Some(record_bytes))
            .map_err(|e| sled_error(&self.dir, "appending", e))?;
        if inserted.is_err() {
            return Err(seq_taken(&self.dir, seq));
        }
        self.meta
            .insert(SNAPSHOT_KEY, snapshot_bytes)
            .map_err(|e| sled_error(&self.dir, "appending", e))?;
        Ok(())
    }

    /// The write of a blacklist replacement: record, snapshot and the list's chunks in one sled
    /// transaction (the list is up to 12 MB, many log buffers, so only a transaction makes it
    /// atomic). Rare: once per blacklist version.
    fn write_in_transaction(
        &self,
        seq: Seq,
        record_bytes: IVec,
        snapshot_bytes: IVec,
        chunks: &blacklist_store::Chunks,
    ) -> Result<(), JournalError> {
        let key = seq.to_key();
        let committed = (&self.records, &self.meta, &self.blacklist_tree).transaction(
            |(records, meta, blacklist_tree)| {
                if records.get(key)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(AppendAbort::SeqTaken));
                }
                records.insert(&key, record_bytes.clone())?;
                meta.insert(SNAPSHOT_KEY, snapshot_bytes.clone())?;
                blacklist_store::replace_in(blacklist_tree, chunks)?;
                Ok(())
            },
        );
        match committed {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(AppendAbort::SeqTaken)) => Err(seq_taken(&self.dir, seq)),
            Err(TransactionError::Storage(e)) => Err(sled_error(&self.dir, "appending", e)),
        }
    }

    /// The record with `seq`, `None` if there is none.
    pub fn get(&self, seq: Seq) -> Result<Option<JournalRecord>, JournalError> {
        self.check_poison()?;
        let value = self
            .guard_read("reading a record", || self.records.get(seq.to_key()))?
            .map_err(|e| sled_error(&self.dir, "reading a record", e))?;
        value.map(|bytes| self.decode_at(seq, &bytes)).transpose()
    }

    /// For browsing the till's sales (Clear+9): the nearest record strictly before
    /// ([`Direction::Older`]) or after ([`Direction::Newer`]) `from` for which `matches(&record)`
    /// is true. `from = None` starts at the newest end for `Older` and at the oldest end for
    /// `Newer`.
    ///
    /// Walks the journal lazily and examines at most [`BROWSE_SCAN_LIMIT`] records; if none of
    /// them matches it returns `Ok(None)`, as it does past either end.
    pub fn find(
        &self,
        from: Option<Seq>,
        direction: Direction,
        matches: impl Fn(&JournalRecord) -> bool,
    ) -> Result<Option<JournalRecord>, JournalError> {
        self.check_poison()?;
        let mut iter: Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>>> = match (direction, from)
        {
            (Direction::Older, None) => Box::new(self.records.iter().rev()),
            (Direction::Older, Some(from)) => Box::new(self.records.range(..from.to_key()).rev()),
            (Direction::Newer, None) => Box::new(self.records.iter()),
            (Direction::Newer, Some(from)) => match from.next() {
                Some(after) => Box::new(self.records.range(after.to_key()..)),
                None => return Ok(None),
            },
        };
        for _ in 0..BROWSE_SCAN_LIMIT {
            let Some(item) = self.guard_read("browsing", || iter.next())? else {
                return Ok(None);
            };
            let record = self.decode_entry(item)?;
            if matches(&record) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// All records from `first` on, in seq order (for tests and the uploader). Lazy: one record is
    /// read per `next`. Yields at most one `Err` (a decode error, a seq gap, a sled failure) and
    /// then ends.
    pub fn records_from(
        &self,
        first: Seq,
    ) -> impl Iterator<Item = Result<JournalRecord, JournalError>> + '_ {
        let first = first.max(Seq::FIRST);
        RecordsFrom {
            journal: self,
            iter: self.records.range(first.to_key()..),
            expected: Some(first),
            failed: self.check_poison().err(),
            done: false,
        }
    }

    fn check_poison(&self) -> Result<(), JournalError> {
        match self.poison.get() {
            Some(cause) => Err(JournalError::Poisoned {
                path: self.dir.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Runs a sled read under `catch_unwind`; a panic poisons the journal and is `Corrupt`.
    fn guard_read<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, JournalError> {
        guard_panic(&self.dir, what, f).inspect_err(|e| {
            let _ = self.poison.set(e.to_string());
        })
    }

    fn decode_at(&self, seq: Seq, bytes: &[u8]) -> Result<JournalRecord, JournalError> {
        decode_record_at(&self.dir, seq, bytes)
    }

    fn decode_entry(
        &self,
        item: sled::Result<(IVec, IVec)>,
    ) -> Result<JournalRecord, JournalError> {
        let (key, value) = item.map_err(|e| sled_error(&self.dir, "reading records", e))?;
        let seq = Seq::from_key(&key).ok_or_else(|| corrupt(&self.dir, bad_key(&key)))?;
        self.decode_at(seq, &value)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Best effort: make the (lagging) high-water mark current before the process goes away.
        // Correctness never depends on this.
        let _ = self.high_water_file.sync_data();
    }
}

/// The iterator of [`Journal::records_from`].
struct RecordsFrom<'a> {
    journal: &'a Journal,
    iter: sled::Iter,
    /// The seq the next record must have; `None` after `u64::MAX`.
    expected: Option<Seq>,
    /// An error to yield first (the journal was poisoned when the iterator was made).
    failed: Option<JournalError>,
    done: bool,
}

impl RecordsFrom<'_> {
    fn next_record(&mut self) -> Result<Option<JournalRecord>, JournalError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let journal = self.journal;
        let Some(item) = journal.guard_read("reading records", || self.iter.next())? else {
            return Ok(None);
        };
        let record = journal.decode_entry(item)?;
        if Some(record.seq) != self.expected {
            return Err(corrupt(
                &journal.dir,
                format!(
                    "seq gap: expected record {}, found {}",
                    self.expected.map_or("none".to_string(), |s| s.to_string()),
                    record.seq
                ),
            ));
        }
        self.expected = record.seq.next();
        Ok(Some(record))
    }
}

impl Iterator for RecordsFrom<'_> {
    type Item = Result<JournalRecord, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_record().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Opens the trees and either verifies the journal or, in a fresh directory, creates it.
fn verify_or_create(
    dir: &Path,
    db: &sled::Db,
) -> Result<(sled::Tree, sled::Tree, Verified), JournalError> {
    let records = db
        .open_tree(RECORDS_TREE)
        .map_err(|e| sled_error(dir, "opening the records tree", e))?;
    let meta = db
        .open_tree(META_TREE)
        .map_err(|e| sled_error(dir, "opening the meta tree", e))?;
    let format = meta
        .get(FORMAT_KEY)
        .map_err(|e| sled_error(dir, "reading the format", e))?;
    let verified = match format {
        None => create(dir, db, &records, &meta)?,
        Some(format) => verify(dir, &records, &meta, &format)?,
    };
    Ok((records, meta, verified))
}

/// Writes a new journal's meta, after checking that the directory really holds no journal.
fn create(
    dir: &Path,
    db: &sled::Db,
    records: &sled::Tree,
    meta: &sled::Tree,
) -> Result<Verified, JournalError> {
    if !records.is_empty() {
        let first = records
            .first()
            .map_err(|e| sled_error(dir, "reading records", e))?
            .map(|(key, _)| describe_key(&key))
            .unwrap_or_default();
        return Err(corrupt(
            dir,
            format!(
                "records are present (first: {first}) but the meta tree has no format, terminal id \
                 or snapshot"
            ),
        ));
    }
    if !meta.is_empty() {
        return Err(corrupt(
            dir,
            "the meta tree has entries but no format key".to_string(),
        ));
    }
    match high_water::read(dir) {
        Ok(None) => {}
        Ok(Some(mark)) => {
            return Err(corrupt(
                dir,
                format!(
                    "sled's database is empty, but {} says this directory held the journal of \
                     terminal {} with records up to #{}: sled lost the journal (a damaged or \
                     replaced `db` file)",
                    high_water::FILE_NAME,
                    TerminalId(mark.terminal),
                    mark.last_seq
                ),
            ))
        }
        Err(e) => {
            return Err(high_water_error(dir, e));
        }
    }
    let terminal_id = random_terminal_id(dir)?;
    let snapshot = TillSnapshot::factory_new();
    let snapshot_bytes = IVec::from(encode_snapshot(&snapshot));
    let written: Result<(), TransactionError<()>> = meta.transaction(|meta| {
        meta.insert(FORMAT_KEY, &JOURNAL_FORMAT_VERSION.to_be_bytes())?;
        meta.insert(TERMINAL_ID_KEY, &terminal_id.0.to_be_bytes())?;
        meta.insert(SNAPSHOT_KEY, snapshot_bytes.clone())?;
        Ok(())
    });
    written.map_err(|e| match e {
        TransactionError::Abort(()) => JournalError::Storage {
            path: dir.to_path_buf(),
            detail: "creating the journal's meta aborted".to_string(),
        },
        TransactionError::Storage(e) => sled_error(dir, "creating the journal", e),
    })?;
    db.flush()
        .map_err(|e| sled_error(dir, "flushing the new journal", e))?;
    Ok(Verified {
        terminal_id,
        snapshot,
        created: true,
        records: 0,
        cut_append: None,
    })
}

/// Checks the meta entries and scans every record.
fn verify(
    dir: &Path,
    records: &sled::Tree,
    meta: &sled::Tree,
    format: &[u8],
) -> Result<Verified, JournalError> {
    let format = <[u8; 4]>::try_from(format)
        .map(u32::from_be_bytes)
        .map_err(|_| {
            corrupt(
                dir,
                format!("format key holds {} bytes, expected 4", format.len()),
            )
        })?;
    if format != JOURNAL_FORMAT_VERSION {
        return Err(JournalError::UnsupportedFormat {
            path: dir.to_path_buf(),
            found: format,
            supported: JOURNAL_FORMAT_VERSION,
        });
    }
    let terminal_bytes = meta
        .get(TERMINAL_ID_KEY)
        .map_err(|e| sled_error(dir, "reading the terminal id", e))?
        .ok_or_else(|| corrupt(dir, "the meta tree has no terminal id".to_string()))?;
    let terminal_id = <[u8; 8]>::try_from(terminal_bytes.as_ref())
        .map(|bytes| TerminalId(u64::from_be_bytes(bytes)))
        .map_err(|_| {
            corrupt(
                dir,
                format!(
                    "terminal id holds {} bytes, expected 8",
                    terminal_bytes.len()
                ),
            )
        })?;
    if terminal_id.0 == 0 {
        return Err(corrupt(dir, "terminal id is zero".to_string()));
    }
    let snapshot_bytes = meta
        .get(SNAPSHOT_KEY)
        .map_err(|e| sled_error(dir, "reading the snapshot", e))?
        .ok_or_else(|| corrupt(dir, "the meta tree has no snapshot".to_string()))?;
    // A value stored before today's range checks that they refuse falls back (nothing else in
    // the snapshot is lost) and says so.
    let (snapshot, dropped) = codec::decode_snapshot_salvaging(&snapshot_bytes)
        .map_err(|e| corrupt(dir, format!("the snapshot does not decode: {e}")))?;
    for what in dropped {
        tracing::error!(
            dir = %dir.display(),
            "ALARM the snapshot holds a value today's checks refuse; opened without it: {what}"
        );
    }
    if snapshot.next_seq < Seq::FIRST {
        return Err(corrupt(
            dir,
            format!("the snapshot's next seq is {}", snapshot.next_seq),
        ));
    }

    let mut expected = Some(Seq::FIRST);
    let mut count: u64 = 0;
    for item in records.iter() {
        let (key, value) = item.map_err(|e| sled_error(dir, "scanning records", e))?;
        let seq = Seq::from_key(&key).ok_or_else(|| corrupt(dir, bad_key(&key)))?;
        if Some(seq) != expected {
            return Err(corrupt(
                dir,
                format!(
                    "seq gap: after {count} contiguous records expected {}, found {seq}",
                    expected.map_or("none".to_string(), |s| s.to_string())
                ),
            ));
        }
        decode_record_at(dir, seq, &value)?;
        count += 1;
        expected = seq.next();
    }
    // The one inconsistency a crash can leave: the last record is the one the snapshot says is
    // next (its append wrote the record, the crash lost the snapshot written after it).
    let cut_append =
        (count > 0 && expected == snapshot.next_seq.next()).then_some(snapshot.next_seq);
    if expected != Some(snapshot.next_seq) && cut_append.is_none() {
        let last = match count {
            0 => "there are no records".to_string(),
            _ => format!(
                "the last record is #{}",
                expected.map_or(u64::MAX, |s| s.0 - 1)
            ),
        };
        return Err(corrupt(
            dir,
            format!(
                "the snapshot's next seq is {} but {last}",
                snapshot.next_seq
            ),
        ));
    }
    Ok(Verified {
        terminal_id,
        snapshot,
        created: false,
        records: count,
        cut_append,
    })
}

/// Checks the high-water mark against the verified journal and opens it for updates; creates it
/// when missing (a new journal, or a crash between creating the journal and its mark).
fn check_high_water(dir: &Path, terminal: TerminalId, last_seq: u64) -> Result<File, JournalError> {
    let current = high_water::Mark {
        terminal: terminal.0,
        last_seq,
    };
    let mark_path = high_water::path(dir);
    match high_water::read(dir).map_err(|e| high_water_error(dir, e))? {
        None => {
            if last_seq > 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    "{} missing; recreating it at #{last_seq}",
                    high_water::FILE_NAME
                );
            }
            high_water::create(dir, current).map_err(|source| io_error(&mark_path, source))
        }
        Some(mark) if mark.terminal != terminal.0 => Err(corrupt(
            dir,
            format!(
                "{} belongs to terminal {}, but the journal is terminal {terminal}",
                high_water::FILE_NAME,
                TerminalId(mark.terminal)
            ),
        )),
        Some(mark) if mark.last_seq > last_seq => Err(corrupt(
            dir,
            format!(
                "{} says records up to #{} were durable, but the journal ends at {}: sled lost \
                 records #{}..=#{} (it drops the tail of its log after a damaged region)",
                high_water::FILE_NAME,
                mark.last_seq,
                match last_seq {
                    0 => "no record".to_string(),
                    n => format!("#{n}"),
                },
                last_seq + 1,
                mark.last_seq
            ),
        )),
        Some(_) => {
            let file =
                high_water::open_for_update(dir).map_err(|source| io_error(&mark_path, source))?;
            high_water::update(&file, current).map_err(|source| io_error(&mark_path, source))?;
            Ok(file)
        }
    }
}

/// Removes record `seq`, written by an append that a crash cut between its record and its
/// snapshot, durably (flush + fdatasync). That append never returned, so no sale was shown
/// successful on it: the till resumes from the snapshot before it (an intent never reached the
/// card; a commit leaves its sale waiting for the card, as a crash just before it would).
fn undo_cut_append(
    dir: &Path,
    db: &sled::Db,
    records: &sled::Tree,
    db_file: &File,
    seq: Seq,
) -> Result<(), JournalError> {
    let removed = guard_panic(dir, "undoing a cut append", || {
        let removed = records.remove(seq.to_key())?;
        db.flush()?;
        Ok::<_, sled::Error>(removed)
    })?
    .map_err(|e| sled_error(dir, "undoing a cut append", e))?;
    db_file
        .sync_data()
        .map_err(|source| io_error(&dir.join(DB_FILE_NAME), source))?;
    let what = removed.map_or_else(
        || "nothing".to_string(),
        |bytes| match decode_record(&bytes) {
            Ok(record) => format!("{:?}", record.body),
            Err(e) => format!("undecodable bytes ({e})"),
        },
    );
    tracing::warn!(
        dir = %dir.display(),
        "record {seq} was written without the snapshot that goes with it (the till stopped in the \
         middle of that append, before showing its outcome); undid it: {what}"
    );
    Ok(())
}

/// After creating a journal: makes `db`'s contents and the new files' names durable.
fn make_creation_durable(dir: &Path, db: &sled::Db, db_file: &File) -> Result<(), JournalError> {
    guard_panic(dir, "flushing the new journal", || db.flush())?
        .map_err(|e| sled_error(dir, "flushing the new journal", e))?;
    db_file
        .sync_data()
        .map_err(|source| io_error(&dir.join(DB_FILE_NAME), source))?;
    // sled writes `conf` without syncing it. A lost `conf` is harmless (sled rewrites the same
    // defaults) but a durable one is cheaper to reason about.
    let conf = dir.join(CONF_FILE_NAME);
    File::open(&conf)
        .and_then(|f| f.sync_all())
        .map_err(|source| io_error(&conf, source))?;
    sync_dir(&dir.join("blobs"))?;
    sync_dir(dir)
}

/// Waits up to [`LOCK_WAIT`] for sled's lock on `<dir>/db` to be free. A check, not a lock: sled
/// takes the lock itself right after (and a race lost there is still reported as `Locked`).
fn wait_for_lock(dir: &Path) -> Result<(), JournalError> {
    let db_path = dir.join(DB_FILE_NAME);
    let file = match File::open(&db_path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(io_error(&db_path, source)),
    };
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: `flock` only reads the descriptor number; `file` owns that descriptor and
        // outlives the call. No memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            // Dropping (closing) `file` releases the lock for sled to take.
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(code) if code == libc::EWOULDBLOCK => {
                if Instant::now() >= deadline {
                    return Err(JournalError::Locked {
                        path: dir.to_path_buf(),
                    });
                }
                std::thread::sleep(LOCK_RETRY_INTERVAL);
            }
            _ => return Err(io_error(&db_path, err)),
        }
    }
}

/// Reads a nonzero terminal id from `/dev/urandom`.
fn random_terminal_id(dir: &Path) -> Result<TerminalId, JournalError> {
    let urandom = Path::new("/dev/urandom");
    let mut source = File::open(urandom).map_err(|source| io_error(urandom, source))?;
    for _ in 0..TERMINAL_ID_ATTEMPTS {
        let mut bytes = [0u8; 8];
        source
            .read_exact(&mut bytes)
            .map_err(|source| io_error(urandom, source))?;
        let id = u64::from_le_bytes(bytes);
        if id != 0 {
            return Ok(TerminalId(id));
        }
    }
    Err(JournalError::Io {
        path: dir.to_path_buf(),
        source: io::Error::other(format!(
            "/dev/urandom returned {TERMINAL_ID_ATTEMPTS} zero terminal ids in a row"
        )),
    })
}

/// Runs `f`, turning a panic (sled 0.34 panics on some garbage) into `Corrupt`.
fn guard_panic<T>(dir: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T, JournalError> {
    // AssertUnwindSafe: after a panic nothing that `f` touched is used again by the caller except
    // to drop it (open fails), or the journal is poisoned (reads and appends).
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        corrupt(
            dir,
            format!("sled panicked while {what}: {}", panic_text(&*payload)),
        )
    })
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

fn decode_record_at(dir: &Path, seq: Seq, bytes: &[u8]) -> Result<JournalRecord, JournalError> {
    let record = decode_record(bytes).map_err(|e: codec::DecodeError| {
        corrupt(dir, format!("record {seq} does not decode: {e}"))
    })?;
    if record.seq != seq {
        return Err(corrupt(
            dir,
            format!("the record stored under {seq} says it is {}", record.seq),
        ));
    }
    Ok(record)
}

fn check_size(what: &'static str, bytes: usize, limit: usize) -> Result<(), JournalError> {
    if bytes > limit {
        Err(JournalError::TooLarge { what, bytes, limit })
    } else {
        Ok(())
    }
}

fn describe_key(key: &[u8]) -> String {
    Seq::from_key(key).map_or_else(|| format!("key {key:02x?}"), |seq| seq.to_string())
}

fn bad_key(key: &[u8]) -> String {
    format!(
        "a record key is {} bytes ({key:02x?}), expected an 8-byte seq",
        key.len()
    )
}

fn corrupt(dir: &Path, detail: String) -> JournalError {
    JournalError::Corrupt {
        path: dir.to_path_buf(),
        detail,
    }
}

/// The record to append is already stored although the snapshot says it is the next one.
fn seq_taken(dir: &Path, seq: Seq) -> JournalError {
    corrupt(
        dir,
        format!(
            "record {seq} is already in the journal although the snapshot says it is the next one"
        ),
    )
}

fn io_error(path: &Path, source: io::Error) -> JournalError {
    JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn high_water_error(dir: &Path, e: high_water::ReadError) -> JournalError {
    match e {
        high_water::ReadError::Io(source) => io_error(&high_water::path(dir), source),
        high_water::ReadError::Invalid(detail) => corrupt(
            dir,
            format!(
                "{} is damaged ({detail}); it cannot vouch that no records were lost. If the \
                 journal is known good, deleting the file makes the next open recreate it",
                high_water::FILE_NAME
            ),
        ),
    }
}

/// Maps a sled error; `what` says what the journal was doing.
fn sled_error(dir: &Path, what: &str, e: sled::Error) -> JournalError {
    match e {
        sled::Error::Io(source) if source.to_string().contains(SLED_LOCK_ERROR_TEXT) => {
            JournalError::Locked {
                path: dir.to_path_buf(),
            }
        }
        sled::Error::Io(source) => io_error(dir, source),
        sled::Error::Corruption { at, .. } => corrupt(
            dir,
            match at {
                Some(at) => format!(
                    "sled found corruption in `{DB_FILE_NAME}` while {what}, at {at:?} (a log \
                     entry failed its checksum or is missing)"
                ),
                None => format!(
                    "sled found corruption while {what}: its log (`{DB_FILE_NAME}`), recovery \
                     snapshot (`snap.*`) or settings (`{CONF_FILE_NAME}`) fail their checks or \
                     disagree"
                ),
            },
        ),
        sled::Error::Unsupported(detail) => corrupt(
            dir,
            format!("sled refused the database while {what}: {detail}"),
        ),
        other => JournalError::Storage {
            path: dir.to_path_buf(),
            detail: format!("while {what}: {other}"),
        },
    }
}

/// fsyncs a directory, so that the names of files created in it are durable.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| io_error(dir, source))
}

/// The directory containing `dir` (`.` for a bare relative name).
fn parent_dir(dir: &Path) -> &Path {
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    //! The panic guard and poisoning, which real garbage rarely reaches (sled 0.34 mostly reports
    //! damage as errors or silently truncates; see tests/journal.rs for those).
    use super::*;
    use shared::record::{ModeChange, RecordBody};
    use shared::{MachineNumber, UnixMillis};

    fn mode_record(seq: Seq) -> JournalRecord {
        JournalRecord {
            seq,
            at: UnixMillis(0),
            machine: MachineNumber::FACTORY_DEFAULT,
            body: RecordBody::ModeChanged(ModeChange::OfflineOn),
        }
    }

    #[test]
    fn a_panic_in_sled_is_corrupt_not_a_crash() {
        let result: Result<(), JournalError> =
            guard_panic(Path::new("/journal"), "reading a record", || {
                panic!("garbage node at lid 4096")
            });
        match result {
            Err(JournalError::Corrupt { path, detail }) => {
                assert_eq!(path, Path::new("/journal"));
                assert_eq!(
                    detail,
                    "sled panicked while reading a record: garbage node at lid 4096"
                );
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_panic_while_reading_poisons_the_journal() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut journal = Journal::open(dir.path()).expect("new journal");
        let mut snapshot = TillSnapshot::factory_new();
        snapshot.next_seq = Seq(2);
        journal
            .append(&mode_record(Seq::FIRST), &snapshot)
            .expect("first append");

        let caught = journal.guard_read("browsing", || -> Option<()> { panic!("bad page") });
        assert!(matches!(caught, Err(JournalError::Corrupt { .. })));

        let poisoned = |result: Result<(), JournalError>| {
            assert!(
                matches!(&result, Err(JournalError::Poisoned { cause, .. }) if cause.contains("bad page")),
                "{result:?}"
            );
        };
        poisoned(journal.get(Seq::FIRST).map(drop));
        poisoned(journal.find(None, Direction::Older, |_| true).map(drop));
        poisoned(
            journal
                .records_from(Seq::FIRST)
                .next()
                .expect("one item")
                .map(drop),
        );
        let mut next = snapshot.clone();
        next.next_seq = Seq(3);
        poisoned(journal.append(&mode_record(Seq(2)), &next));
        assert_eq!(journal.last_seq(), Some(Seq::FIRST));

        // A reopen re-verifies the disk and clears the poison.
        drop(journal);
        let journal = Journal::open(dir.path()).expect("reopen");
        assert_eq!(journal.last_seq(), Some(Seq::FIRST));
        assert!(journal.get(Seq::FIRST).expect("get").is_some());
    }
}
