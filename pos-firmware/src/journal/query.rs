//! Reading records back: one by seq ([`Journal::get`]), the nearest match for browsing the
//! till's sales ([`Journal::find`]) and a lazy scan in seq order ([`Journal::records_from`]).

use super::{corrupt, sled_error, Direction, Journal, JournalError, BROWSE_SCAN_LIMIT};
use shared::record::JournalRecord;
use shared::Seq;
use sled::IVec;

impl Journal {
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
        // Never below the first kept record (a prune a crash cut may have left older ones).
        let first = Seq(self.pruned_through.saturating_add(1));
        let mut iter: Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>>> = match (direction, from)
        {
            (Direction::Older, None) => Box::new(self.records.range(first.to_key()..).rev()),
            (Direction::Older, Some(from)) if from <= first => return Ok(None),
            (Direction::Older, Some(from)) => {
                Box::new(self.records.range(first.to_key()..from.to_key()).rev())
            }
            (Direction::Newer, None) => Box::new(self.records.range(first.to_key()..)),
            (Direction::Newer, Some(from)) => match from.next() {
                Some(after) => Box::new(self.records.range(after.max(first).to_key()..)),
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

    /// All records from `first` on (from the first kept one if `first` was pruned), in seq order
    /// (for tests and the uploader). Lazy: one record is read per `next`. Yields at most one `Err` (a decode error, a seq gap, a sled failure) and
    /// then ends.
    pub fn records_from(
        &self,
        first: Seq,
    ) -> impl Iterator<Item = Result<JournalRecord, JournalError>> + '_ {
        let first = first.max(Seq(self.pruned_through.saturating_add(1)));
        RecordsFrom {
            journal: self,
            iter: self.records.range(first.to_key()..),
            expected: Some(first),
            failed: self.check_poison().err(),
            done: false,
        }
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
