//! Opening the journal ([`Journal::open`]): creating a fresh one, or checking an existing one
//! against the invariants in `journal.rs` and the high-water mark, and undoing an append a
//! crash cut between its record and its snapshot. Also sled's lock wait and the terminal id draw.
//!
//! The check at open is bounded whatever the till's age: the meta entries, the first kept record
//! and the last [`OPEN_CHECK_TAIL_RECORDS`] records (where sled's recovery loses data: it keeps a
//! prefix of its log, and the high-water mark vouches for the tail's end). The whole journal is
//! checked on demand by [`Journal::verify_full`] (`pos-firmware journal-status --full`).

use super::{
    bad_key, blacklist_store, compact, corrupt, decode_record_at, describe_key, guard_panic,
    high_water, high_water_error, io_error, parent_dir, reader, sled_error, sync_dir, Journal,
    JournalError, JournalReader, COMPACTED_THROUGH_KEY, CONF_FILE_NAME, DB_FILE_NAME, FORMAT_KEY,
    JOURNAL_FORMAT_VERSION, LOCK_RETRY_INTERVAL, LOCK_WAIT, META_TREE, PRUNED_THROUGH_KEY,
    RECORDS_TREE, SLED_CACHE_CAPACITY_BYTES, SNAPSHOT_KEY, TERMINAL_ID_ATTEMPTS, TERMINAL_ID_KEY,
};
use shared::codec::{self, decode_record, encode_snapshot};
use shared::record::TillSnapshot;
use shared::{Seq, TerminalId};
use sled::transaction::TransactionError;
use sled::IVec;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// How many of the newest records [`Journal::open`] reads and checks (besides the first kept
/// one). Bounds start-up: about 1 ms of reading on the development VM, whatever the age.
pub const OPEN_CHECK_TAIL_RECORDS: u64 = 1_024;

/// What `open` found in `meta`.
struct Verified {
    terminal_id: TerminalId,
    snapshot: TillSnapshot,
    /// Whether the journal was created by this open.
    created: bool,
    /// Number of records read by the check.
    records: u64,
    /// `pruned_through` from `meta` (0: nothing pruned).
    pruned_through: u64,
    /// `compacted_through` from `meta` (0: never compacted).
    compacted_through: u64,
    /// A record one past the snapshot, written by an append cut between its record and its
    /// snapshot (see [`Journal::write_record_then_snapshot`]); [`Journal::open`] undoes it once
    /// the high-water mark says it was never reported durable.
    cut_append: Option<Seq>,
}

impl Journal {
    /// Opens the journal in `dir`, or creates it (and `dir`) if there is none.
    ///
    /// On creation a random [`TerminalId`] (8 bytes from `/dev/urandom`, never zero), the journal
    /// format and [`TillSnapshot::factory_new`] are stored durably, and the directory entries of
    /// the new files are fsynced. On open, the meta entries, the first kept record and the newest
    /// [`OPEN_CHECK_TAIL_RECORDS`] records are checked (see the module documentation) and the
    /// journal is compared with the high-water mark: bounded whatever the journal's age (the
    /// `journal_years` bench prints it; BENCHMARKS.md). A compaction a crash cut is finished or
    /// discarded first.
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
        // A compaction a crash cut is finished (or its unfinished copy removed) before sled opens.
        compact::recover(&dir)?;
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
        reader.publish_pruned(verified.pruned_through);
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
            pruned_through: verified.pruned_through,
            compacted_through: verified.compacted_through,
            open_records_read: verified.records,
        })
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
        pruned_through: 0,
        compacted_through: 0,
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

    let pruned_through = read_seq_key(dir, meta, PRUNED_THROUGH_KEY)?;
    let compacted_through = read_seq_key(dir, meta, COMPACTED_THROUGH_KEY)?;
    if pruned_through >= snapshot.next_seq.0 {
        return Err(corrupt(
            dir,
            format!(
                "the journal says records up to #{pruned_through} were pruned, but the snapshot's \
                 next seq is {}",
                snapshot.next_seq
            ),
        ));
    }
    let first_kept = pruned_through + 1;
    let mut count: u64 = 0;
    // The tail starts at most OPEN_CHECK_TAIL_RECORDS before the snapshot's next seq (one more
    // record, a cut append, may follow it).
    let start = first_kept.max(snapshot.next_seq.0.saturating_sub(OPEN_CHECK_TAIL_RECORDS));
    if start > first_kept {
        // The first kept record exists and is what its key says (fetch and browse start there).
        let value = records
            .get(Seq(first_kept).to_key())
            .map_err(|e| sled_error(dir, "reading the first kept record", e))?
            .ok_or_else(|| {
                corrupt(
                    dir,
                    format!(
                        "the first kept record #{first_kept} is missing (records up to \
                         #{pruned_through} were pruned)"
                    ),
                )
            })?;
        decode_record_at(dir, Seq(first_kept), &value)?;
        count += 1;
    }
    let mut expected = Some(Seq(start));
    let mut tail: u64 = 0;
    for item in records.range(Seq(start).to_key()..) {
        let (key, value) = item.map_err(|e| sled_error(dir, "scanning records", e))?;
        let seq = Seq::from_key(&key).ok_or_else(|| corrupt(dir, bad_key(&key)))?;
        if Some(seq) != expected {
            return Err(corrupt(
                dir,
                format!(
                    "seq gap: after {tail} contiguous records from #{start} expected {}, found \
                     {seq}",
                    expected.map_or("none".to_string(), |s| s.to_string())
                ),
            ));
        }
        decode_record_at(dir, seq, &value)?;
        count += 1;
        tail += 1;
        expected = seq.next();
    }
    // The one inconsistency a crash can leave: the last record is the one the snapshot says is
    // next (its append wrote the record, the crash lost the snapshot written after it).
    let cut_append =
        (tail > 0 && expected == snapshot.next_seq.next()).then_some(snapshot.next_seq);
    if expected != Some(snapshot.next_seq) && cut_append.is_none() {
        let last = match tail {
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
        pruned_through,
        compacted_through,
        cut_append,
    })
}

/// Reads an 8-byte big-endian seq stored in `meta` under `key` (0 when absent).
pub(super) fn read_seq_key(dir: &Path, meta: &sled::Tree, key: &str) -> Result<u64, JournalError> {
    let Some(bytes) = meta
        .get(key)
        .map_err(|e| sled_error(dir, "reading the meta tree", e))?
    else {
        return Ok(0);
    };
    <[u8; 8]>::try_from(bytes.as_ref())
        .map(u64::from_be_bytes)
        .map_err(|_| {
            corrupt(
                dir,
                format!("`{key}` holds {} bytes, expected 8", bytes.len()),
            )
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
