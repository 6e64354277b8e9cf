//! Appending ([`Journal::append`], [`Journal::append_replacing_blacklist`]): the checks that
//! refuse a record with nothing written, then one sled log write and one barrier (see
//! `# Durability` in `journal.rs`), or a sled transaction for a blacklist replacement.

use super::{
    blacklist_store, check_size, guard_panic, high_water, io_error, seq_taken, sled_error, Journal,
    JournalError, DB_FILE_NAME, MAX_RECORD_BYTES, MAX_SNAPSHOT_BYTES, SNAPSHOT_KEY,
};
use shared::campus::Blacklist;
use shared::codec::{encode_record, encode_snapshot};
use shared::record::{JournalRecord, RecordBody, TillSnapshot};
use shared::Seq;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{IVec, Transactional};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Why an append transaction aborted.
#[derive(Debug)]
enum AppendAbort {
    /// The key of the record to append is already taken: the in-memory snapshot disagrees with
    /// the disk. Never expected; guards "seqs are never reused".
    SeqTaken,
}

impl Journal {
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

    /// Appends `records` (contiguous from the current snapshot's `next_seq`) and replaces the
    /// snapshot with `snapshot` (whose `next_seq` follows the last of them) in one sled log
    /// write and one barrier. For loading years of records at once (the `journal_years` bench,
    /// tests): the till itself appends one record per durable point ([`Journal::append`]).
    /// Refused with nothing written like [`Journal::append`]; a `BlacklistReplaced` is refused.
    #[doc(hidden)]
    pub fn append_bulk(
        &mut self,
        records: &[JournalRecord],
        snapshot: &TillSnapshot,
    ) -> Result<(), JournalError> {
        self.check_poison()?;
        let mut expected = self.snapshot.next_seq;
        let mut batch = sled::Batch::default();
        for record in records {
            if matches!(record.body, RecordBody::BlacklistReplaced(_)) {
                return Err(JournalError::BlacklistMismatch(
                    "a BlacklistReplaced record is appended with its list only".to_string(),
                ));
            }
            if record.seq != expected {
                return Err(JournalError::OutOfOrder {
                    expected,
                    got: record.seq,
                });
            }
            let bytes = encode_record(record);
            check_size("record", bytes.len(), MAX_RECORD_BYTES)?;
            batch.insert(&record.seq.to_key(), bytes);
            expected = record
                .seq
                .next()
                .ok_or(JournalError::SeqExhausted { last: record.seq })?;
        }
        let Some(last) = expected.prev().filter(|_| !records.is_empty()) else {
            return Ok(());
        };
        if snapshot.next_seq != expected {
            return Err(JournalError::OutOfOrder {
                expected,
                got: snapshot.next_seq,
            });
        }
        let snapshot_bytes = IVec::from(encode_snapshot(snapshot));
        check_size("snapshot", snapshot_bytes.len(), MAX_SNAPSHOT_BYTES)?;
        let result = guard_panic(&self.dir, "appending", || {
            self.records
                .apply_batch(batch)
                .and_then(|()| self.meta.insert(SNAPSHOT_KEY, snapshot_bytes).map(drop))
                .and_then(|()| self.db.flush().map(drop))
                .map_err(|e| sled_error(&self.dir, "appending", e))?;
            self.barriers.fetch_add(1, Ordering::Relaxed);
            self.db_file
                .sync_data()
                .map_err(|source| io_error(&self.dir.join(DB_FILE_NAME), source))
        })
        .and_then(|inner| inner);
        if let Err(e) = result {
            let _ = self
                .poison
                .set(format!("bulk append through {last} failed: {e}"));
            return Err(e);
        }
        self.snapshot = snapshot.clone();
        self.reader.publish_durable(last, snapshot.machine);
        let mark = high_water::Mark {
            terminal: self.terminal_id.0,
            last_seq: last.0,
        };
        if let Err(e) = high_water::update(&self.high_water_file, mark) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "high-water mark not updated");
        }
        Ok(())
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
}
