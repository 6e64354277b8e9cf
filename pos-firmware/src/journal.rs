//! The till's durable journal: every [`JournalRecord`] and, written right after it in the same
//! sled log write, the [`TillSnapshot`] a restart starts from.
//!
//! # On disk
//! One sled 0.34 database in the journal directory (sled's files `conf`, `db`, `blobs/`,
//! `snap.*`) with these trees:
//! - `records`: key [`Seq::to_key`] (8 bytes, big-endian, so key order is seq order), value
//!   [`shared::codec::encode_record`];
//! - `meta`: `format` (journal format version, 4 bytes big-endian, see [`JOURNAL_FORMAT_VERSION`]),
//!   `terminal_id` (8 bytes big-endian, never zero), `snapshot`
//!   ([`shared::codec::encode_snapshot`]) and, once pruned, `pruned_through` and
//!   `compacted_through` (8 bytes big-endian each, see `prune.rs` and `compact.rs`);
//! - `upload`: the upload watermark (see [`JournalReader`]);
//! - `blacklist`: the lost-card list, replaced in the same transaction as its record (see
//!   `blacklist_store`).
//!
//! Next to them, `journal.hwm` holds the last seq known durable (see `high_water`), so that an
//! open detects sled silently dropping the tail of its log.
//!
//! # Invariants (the tail checked by [`Journal::open`], all by [`Journal::verify_full`])
//! - records are contiguous from the first kept one (`pruned_through + 1`, see `prune.rs`; 1 when
//!   nothing was pruned) to `snapshot.next_seq - 1`, each decodes and carries the seq of its key;
//!   records at or below `pruned_through` are gone (or leftovers of a cut prune, ignored);
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
//!
//! # Files
//! This file holds the type, its limits, errors and shared helpers; `journal/open.rs` opens and
//! verifies, `journal/append.rs` appends, `journal/query.rs` reads records back; the upload
//! watermark and read handle (`reader.rs`), the blacklist (`blacklist_store.rs`), the card index
//! (`card_index.rs`) and the high-water mark (`high_water.rs`) have their own files; retention
//! (`prune.rs`) and giving the space back (`compact.rs`) too.

mod append;
mod blacklist_store;
mod card_index;
mod compact;
mod high_water;
mod open;
mod prune;
mod query;
mod reader;

pub use blacklist_store::BLACKLIST_CHUNK_BYTES;
pub use compact::COMPACT_AFTER_PRUNED_RECORDS;
pub use open::OPEN_CHECK_TAIL_RECORDS;
pub use prune::{
    prune_bound, MaintainReport, PruneOutcome, DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS, PRUNE_BATCHES_AT_START, PRUNE_BATCH_RECORDS,
};
pub use reader::JournalReader;

use shared::campus::Blacklist;
use shared::codec::{self, decode_record};
use shared::record::{JournalRecord, TillSnapshot};
use shared::{Seq, TerminalId, UnixMillis};
use sled::IVec;
use std::any::Any;
use std::fs::File;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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
/// `meta` key: every record up to this seq was pruned (8 bytes big-endian; absent: none).
const PRUNED_THROUGH_KEY: &str = "pruned_through";
/// `meta` key: `pruned_through` as of the last compaction (8 bytes big-endian; absent: 0).
const COMPACTED_THROUGH_KEY: &str = "compacted_through";
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
    /// The records asked for were pruned (acknowledged by the campus server and older than the
    /// retention): they are no longer on this till.
    #[error("record {seq} was pruned (the journal keeps records after {pruned_through})")]
    Pruned {
        /// The first record asked for.
        seq: Seq,
        /// Every record up to here was pruned.
        pruned_through: Seq,
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
    /// Every record up to this seq was pruned (0: none); see `prune.rs`.
    pruned_through: u64,
    /// `pruned_through` as of the last compaction (0: never); see `compact.rs`.
    compacted_through: u64,
    /// How many records [`Journal::open`]'s check read (see [`Journal::open_records_read`]).
    open_records_read: u64,
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

impl Journal {
    /// The till's permanent identity, made when the journal was created.
    pub fn terminal_id(&self) -> TerminalId {
        self.terminal_id
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The oldest record the journal still holds (`None` when it holds none).
    pub fn first_seq(&self) -> Option<Seq> {
        let first = self.pruned_through.saturating_add(1);
        (first < self.snapshot.next_seq.0).then_some(Seq(first))
    }

    /// Every record up to here was pruned (`None`: nothing was).
    pub fn pruned_through(&self) -> Option<Seq> {
        (self.pruned_through > 0).then_some(Seq(self.pruned_through))
    }

    /// How many records the check of [`Journal::open`] read: at most
    /// [`OPEN_CHECK_TAIL_RECORDS`] + 2 whatever the journal's age.
    pub fn open_records_read(&self) -> u64 {
        self.open_records_read
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
    //! damage as errors or silently truncates; see tests/journal/ for those).
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
