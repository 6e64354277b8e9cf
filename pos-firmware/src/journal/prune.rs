//! Retention: a till sells for years, and its journal must not grow for ever. Records the campus
//! server acknowledged (seq ≤ the upload watermark) and older than the retention (by the
//! record's `at`) are removed ([`Journal::prune`]); the snapshot carries the totals, so nothing
//! the till shows needs them.
//!
//! Never pruned: a record not acknowledged yet; the record of an unresolved intent (a sale, a
//! top-up, a code-payment order waiting for its outcome) and everything after the oldest one;
//! the newest record (the snapshot continues it). See [`prune_bound`].
//!
//! # Crash safety
//! A prune first makes its mark durable (`meta` key `pruned_through`: flush + fdatasync), then
//! removes the records up to it. A crash between the two leaves records at or below the mark:
//! every reader starts after the mark, [`Journal::open`] ignores them, and the next prune removes
//! them. Seqs stay contiguous from the first kept record (`pruned_through + 1`).
//!
//! The card index (`card_counters`, `card_spent`) is not pruned: one entry per card this till
//! ever saw, 4 + 12 bytes of value under an up-to-10-byte UID, about 40 bytes with sled's
//! overhead, so a campus of 100,000 cards costs at most about 4 MB, and the replay check must
//! outlive any retention. Deleting keys gives sled little space back by itself: see `compact.rs`.

use super::{io_error, sled_error, Journal, JournalError, DB_FILE_NAME, PRUNED_THROUGH_KEY};
use shared::record::TillSnapshot;
use shared::{Seq, UnixMillis};

/// The retention when `till.toml` sets none: 90 days.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// The shortest retention `till.toml` may set: 7 days (a week of records to browse on Clear+9).
pub const MIN_RETENTION_DAYS: u32 = 7;

/// The longest retention `till.toml` may set: 3,650 days (ten years; longer is "never").
pub const MAX_RETENTION_DAYS: u32 = 3_650;

/// The most records one [`Journal::prune`] call removes (a step: about 1 s on the development
/// VM, which pruned 1.8 M records in 76 s), so that a prune at a safe moment stays short; the
/// next call goes on.
pub const PRUNE_BATCH_RECORDS: u64 = 25_000;

/// How many [`PRUNE_BATCH_RECORDS`] batches [`Journal::maintain`] runs at start-up (at most
/// about 8 s): a till that never pruned before (years of records, after the upgrade that brings
/// retention) catches up over a few start-ups rather than in one long one.
pub const PRUNE_BATCHES_AT_START: u32 = 8;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// sled removes are applied in batches of this many keys.
const REMOVE_CHUNK: usize = 10_000;

/// What one [`Journal::prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneOutcome {
    /// Records removed by this call (including leftovers of a prune a crash cut).
    pub removed: u64,
    /// The mark after this call (`None`: nothing was ever pruned).
    pub pruned_through: Option<Seq>,
    /// More records are due than one call removes: call again.
    pub more: bool,
}

/// What [`Journal::maintain`] did at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaintainReport {
    /// Records pruned.
    pub pruned: u64,
    /// Whether the journal was compacted into a fresh database.
    pub compacted: bool,
}

/// The highest seq a prune may remove (0: none), whatever the records' ages: not past the
/// upload watermark, not the newest record, and nothing from the oldest unresolved intent on
/// (sale, top-up, code-payment order: their records are what a later resolution refers to).
pub fn prune_bound(snapshot: &TillSnapshot, uploaded_through: Option<Seq>) -> u64 {
    let last = snapshot.next_seq.0.saturating_sub(1);
    let oldest_pending = snapshot
        .pending
        .iter()
        .map(|p| p.intent)
        .chain(snapshot.pending_loads.iter().map(|p| p.intent))
        .chain(snapshot.pending_orders.iter().map(|p| p.intent))
        .min()
        .map_or(u64::MAX, |seq| seq.0);
    uploaded_through
        .map_or(0, |s| s.0)
        .min(last.saturating_sub(1))
        .min(oldest_pending.saturating_sub(1))
}

impl Journal {
    /// Prunes acknowledged records older than `retention_days` before `now` (see the module
    /// documentation for what is never pruned), at most [`PRUNE_BATCH_RECORDS`] per call, in
    /// seq order, stopping at the first record too young (a till clock set back keeps more,
    /// never less). Durable (mark first, then the removal) and crash-safe at every point.
    pub fn prune(
        &mut self,
        now: UnixMillis,
        retention_days: u32,
    ) -> Result<PruneOutcome, JournalError> {
        self.check_poison()?;
        let bound = prune_bound(&self.snapshot, self.uploaded_through());
        let cutoff = now
            .0
            .saturating_sub(i64::from(retention_days).saturating_mul(DAY_MS));
        let first = self.pruned_through.saturating_add(1);
        let mut mark = self.pruned_through;
        let mut more = false;
        if bound >= first {
            let end = bound.min(first.saturating_add(PRUNE_BATCH_RECORDS - 1));
            let range = Seq(first).to_key()..=Seq(end).to_key();
            let mut iter = self.records.range(range);
            loop {
                let Some(item) = self.guard_read("pruning", || iter.next())? else {
                    break;
                };
                let record = self.decode_entry(item)?;
                if record.at.0 >= cutoff {
                    break;
                }
                mark = record.seq.0;
            }
            more = mark == end && end < bound;
        }
        if mark > self.pruned_through {
            self.write_pruned_mark(mark)?;
        }
        let removed = self.remove_through(mark)?;
        Ok(PruneOutcome {
            removed,
            pruned_through: self.pruned_through(),
            more,
        })
    }

    /// Start-up maintenance: prunes (up to [`PRUNE_BATCHES_AT_START`] batches) and, once the
    /// prune has caught up and enough was pruned since the last compaction
    /// ([`COMPACT_AFTER_PRUNED_RECORDS`]), compacts the journal into a fresh sled database to give
    /// the space back (not before catching up: each compaction copies everything kept). Run before the till sells and
    /// before a [`super::JournalReader`] is handed out (compaction reopens the journal).
    ///
    /// [`COMPACT_AFTER_PRUNED_RECORDS`]: super::COMPACT_AFTER_PRUNED_RECORDS
    pub fn maintain(
        mut self,
        now: UnixMillis,
        retention_days: u32,
    ) -> Result<(Journal, MaintainReport), JournalError> {
        let mut report = MaintainReport::default();
        let mut caught_up = false;
        for _ in 0..PRUNE_BATCHES_AT_START {
            let outcome = self.prune(now, retention_days)?;
            report.pruned += outcome.removed;
            if !outcome.more {
                caught_up = true;
                break;
            }
        }
        if caught_up && self.compaction_due() {
            self = self.compact()?;
            report.compacted = true;
        }
        Ok((self, report))
    }

    /// Makes `pruned_through = mark` durable (flush + fdatasync) and publishes it.
    fn write_pruned_mark(&mut self, mark: u64) -> Result<(), JournalError> {
        let written = self.guard_read("writing the pruned mark", || {
            self.meta
                .insert(PRUNED_THROUGH_KEY, &mark.to_be_bytes())
                .and_then(|_| self.db.flush())
        })?;
        if let Err(e) = written {
            let e = sled_error(&self.dir, "writing the pruned mark", e);
            let _ = self.poison.set(e.to_string());
            return Err(e);
        }
        if let Err(source) = self.db_file.sync_data() {
            let e = io_error(&self.dir.join(DB_FILE_NAME), source);
            let _ = self.poison.set(e.to_string());
            return Err(e);
        }
        self.pruned_through = mark;
        self.reader.publish_pruned(mark);
        Ok(())
    }

    /// Removes every record at or below `mark` still stored (flushed, not synced: a lost removal
    /// is redone by the next prune). Returns how many.
    fn remove_through(&self, mark: u64) -> Result<u64, JournalError> {
        let mut removed = 0;
        loop {
            let keys: Vec<sled::IVec> = self
                .guard_read("pruning", || {
                    self.records
                        .range(..=Seq(mark).to_key())
                        .keys()
                        .take(REMOVE_CHUNK)
                        .collect::<sled::Result<Vec<_>>>()
                })?
                .map_err(|e| sled_error(&self.dir, "pruning", e))?;
            if keys.is_empty() {
                break;
            }
            let mut batch = sled::Batch::default();
            for key in &keys {
                batch.remove(key.clone());
            }
            self.guard_read("pruning", || self.records.apply_batch(batch))?
                .map_err(|e| sled_error(&self.dir, "pruning", e))?;
            removed += keys.len() as u64;
        }
        if removed > 0 {
            self.guard_read("pruning", || self.db.flush())?
                .map_err(|e| sled_error(&self.dir, "pruning", e))?;
        }
        Ok(removed)
    }

    /// Checks the whole journal (what [`Journal::open`] checks only at the tail): every kept
    /// record, from the first kept to the last, is present, decodes and carries its key's seq.
    /// Returns how many records it read. For `pos-firmware journal-status --full`.
    pub fn verify_full(&self) -> Result<u64, JournalError> {
        self.check_poison()?;
        let first = Seq(self.pruned_through.saturating_add(1));
        let mut count = 0;
        for record in self.records_from(first) {
            record?;
            count += 1;
        }
        let expected = self.snapshot.next_seq.0.saturating_sub(first.0);
        if count != expected {
            return Err(super::corrupt(
                &self.dir,
                format!(
                    "{count} records from {first} on, but the snapshot's next seq {} needs \
                     {expected}",
                    self.snapshot.next_seq
                ),
            ));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::record::{CardDebitPlan, Payer, PendingSale, SaleIntent, TxnTag};
    use shared::{CardUid, Fen};

    fn snapshot(next: u64, pending: &[u64]) -> TillSnapshot {
        let mut snapshot = TillSnapshot::factory_new();
        snapshot.next_seq = Seq(next);
        snapshot.pending = pending
            .iter()
            .map(|&intent| PendingSale {
                intent: Seq(intent),
                at: UnixMillis(0),
                sale: SaleIntent {
                    amount: Fen::new(100),
                    payer: Payer::CampusCard(CardUid::new(&[1, 2, 3, 4]).expect("uid")),
                    card: CardDebitPlan {
                        counter_before: 0,
                        balance_before: Fen::new(1_000),
                        tag: TxnTag(1),
                    },
                    fixed_price: false,
                },
            })
            .collect();
        snapshot
    }

    #[test]
    fn nothing_past_the_watermark_the_newest_record_or_the_oldest_pending_intent_is_prunable() {
        assert_eq!(prune_bound(&snapshot(101, &[]), None), 0);
        assert_eq!(prune_bound(&snapshot(101, &[]), Some(Seq(50))), 50);
        assert_eq!(prune_bound(&snapshot(101, &[]), Some(Seq(100))), 99);
        assert_eq!(prune_bound(&snapshot(101, &[40, 70]), Some(Seq(100))), 39);
        assert_eq!(prune_bound(&snapshot(1, &[]), None), 0);
    }
}
