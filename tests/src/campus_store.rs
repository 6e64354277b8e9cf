//! The campus simulator's durable record store: an append-only log file with a checksum per
//! entry, fsynced before any ack, and an in-memory index keyed by (terminal, seq).
//!
//! Same id + same bytes is a duplicate (counted, ignored); same id + different bytes is an alarm
//! (a line in `alarms.log` with the received bytes in hex — the quarantine the operator
//! reconciles from —, fsynced before any ack, counted once per distinct version; the stored bytes
//! are never overwritten); a record over the size limit is an alarm the same way. The index
//! changes only once a batch is durable. A torn entry at the end of the log (a crash mid-append) is cut off on
//! reopen: it was never acked.

use shared::{Seq, TerminalId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The largest record the store accepts, in bytes (a journal record is tens of bytes).
pub const MAX_STORED_RECORD_BYTES: usize = 64 * 1024;
/// The first byte of every log entry.
const ENTRY_MAGIC: u8 = 0xC5;
/// magic + terminal + seq + length.
const ENTRY_HEADER_BYTES: usize = 1 + 8 + 8 + 4;
/// The checksum after the record bytes.
const ENTRY_CHECKSUM_BYTES: usize = 4;

/// The bytes one stored record takes in `records.log` (header, record, checksum): the load
/// test checks the log's size against the journals, so no record is on disk twice.
pub fn log_entry_bytes(record_len: usize) -> u64 {
    (ENTRY_HEADER_BYTES + record_len + ENTRY_CHECKSUM_BYTES) as u64
}

/// The store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("campus store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What one batch did to the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub stored: u64,
    pub duplicates: u64,
    /// Conflicting versions (same id, different bytes) not seen before: alarmed and quarantined.
    pub conflicts: u64,
    /// Conflicting versions received again (a resend): counted, not alarmed again.
    pub conflict_repeats: u64,
}

/// The records of one terminal.
#[derive(Debug, Default, Clone)]
pub struct TerminalRecords {
    pub records: BTreeMap<Seq, Vec<u8>>,
    /// Every seq from 1 through this one is stored.
    pub stored_through: Option<Seq>,
}

impl TerminalRecords {
    fn advance(&mut self) {
        loop {
            let next = self.stored_through.map_or(Some(Seq::FIRST), Seq::next);
            match next {
                Some(seq) if self.records.contains_key(&seq) => self.stored_through = Some(seq),
                _ => return,
            }
        }
    }
}

/// The durable store.
#[derive(Debug)]
pub struct CampusStore {
    dir: PathBuf,
    log: File,
    alarms: File,
    terminals: HashMap<TerminalId, TerminalRecords>,
    /// Every conflicting version quarantined so far (reloaded from `alarms.log`).
    quarantined: HashSet<(TerminalId, Seq, Vec<u8>)>,
    /// Distinct conflicting versions since the store was created (reloaded from `alarms.log`).
    pub conflicts: u64,
    /// Bytes cut off the end of the log when it was opened (a torn append).
    pub torn_bytes_dropped: u64,
    /// Why the store refuses every batch (see [`CampusStore::apply`]).
    poisoned: Option<String>,
    /// fsyncs of the log and the quarantine since the store was opened (the load test's figure).
    fsyncs: u64,
}

/// The words of an alarm line before the received bytes (parsed back by [`parse_alarm`]).
const ALARM_RECEIVED_MARKER: &str = "received hex ";

/// One line of `alarms.log`: what conflicted, and the received version in hex (quarantined).
fn alarm_line(terminal: TerminalId, seq: Seq, stored: &[u8], received: &[u8]) -> String {
    let hex = hex::encode(received);
    format!(
        "ALARM terminal {terminal} seq {} stored {} bytes, received {} different bytes; \
         kept the stored ones; {ALARM_RECEIVED_MARKER}{hex}\n",
        seq.0,
        stored.len(),
        received.len()
    )
}

/// The alarm line of a record over [`MAX_STORED_RECORD_BYTES`]: not stored, quarantined.
fn oversized_alarm_line(terminal: TerminalId, seq: Seq, received: &[u8]) -> String {
    let hex = hex::encode(received);
    format!(
        "ALARM terminal {terminal} seq {} received {} bytes, over the store's limit of \
         {MAX_STORED_RECORD_BYTES}; not stored; {ALARM_RECEIVED_MARKER}{hex}\n",
        seq.0,
        received.len()
    )
}

/// The quarantined version an alarm line names; `None` for a line that is not one.
fn parse_alarm(line: &str) -> Option<(TerminalId, Seq, Vec<u8>)> {
    let mut words = line.split_whitespace();
    if words.next()? != "ALARM" || words.next()? != "terminal" {
        return None;
    }
    let terminal = shared::mqtt::parse_terminal(words.next()?)?;
    if words.next()? != "seq" {
        return None;
    }
    let seq = Seq(words.next()?.parse().ok()?);
    let bytes = hex::decode(line.rsplit_once(ALARM_RECEIVED_MARKER)?.1.trim()).ok()?;
    Some((terminal, seq, bytes))
}

fn checksum(bytes: &[u8]) -> u32 {
    // FNV-1a: enough to tell a torn or garbled tail from a whole entry.
    bytes.iter().fold(0x811C_9DC5u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn encode_entry(terminal: TerminalId, seq: Seq, bytes: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(ENTRY_HEADER_BYTES + bytes.len() + ENTRY_CHECKSUM_BYTES);
    entry.push(ENTRY_MAGIC);
    entry.extend_from_slice(&terminal.0.to_be_bytes());
    entry.extend_from_slice(&seq.0.to_be_bytes());
    entry.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    entry.extend_from_slice(bytes);
    let sum = checksum(&entry);
    entry.extend_from_slice(&sum.to_be_bytes());
    entry
}

/// Parses whole entries from the front of `log`; returns them and the length of the valid part.
fn parse_entries(log: &[u8]) -> (Vec<(TerminalId, Seq, Vec<u8>)>, usize) {
    let mut entries = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = log.get(at..at + ENTRY_HEADER_BYTES) else {
            return (entries, at);
        };
        let field = |range: std::ops::Range<usize>| -> [u8; 8] {
            let mut out = [0u8; 8];
            out.copy_from_slice(&header[range]);
            out
        };
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(&header[17..21]);
        let len = u32::from_be_bytes(len_bytes) as usize;
        if header[0] != ENTRY_MAGIC || len > MAX_STORED_RECORD_BYTES {
            return (entries, at);
        }
        let end = at + ENTRY_HEADER_BYTES + len + ENTRY_CHECKSUM_BYTES;
        let Some(entry) = log.get(at..end) else {
            return (entries, at);
        };
        let body = &entry[..entry.len() - ENTRY_CHECKSUM_BYTES];
        let mut sum = [0u8; 4];
        sum.copy_from_slice(&entry[entry.len() - ENTRY_CHECKSUM_BYTES..]);
        if checksum(body) != u32::from_be_bytes(sum) {
            return (entries, at);
        }
        entries.push((
            TerminalId(u64::from_be_bytes(field(1..9))),
            Seq(u64::from_be_bytes(field(9..17))),
            body[ENTRY_HEADER_BYTES..].to_vec(),
        ));
        at = end;
    }
}

impl CampusStore {
    /// Opens (or creates) the store in `dir` and loads its index.
    pub fn open(dir: &Path) -> Result<CampusStore, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let log_path = dir.join("records.log");
        let mut log = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes).map_err(io(&log_path))?;
        let (entries, valid) = parse_entries(&bytes);
        let torn = (bytes.len() - valid) as u64;
        if torn > 0 {
            log.set_len(valid as u64).map_err(io(&log_path))?;
            log.sync_all().map_err(io(&log_path))?;
        }
        let mut terminals: HashMap<TerminalId, TerminalRecords> = HashMap::new();
        for (terminal, seq, record) in entries {
            terminals
                .entry(terminal)
                .or_default()
                .records
                .entry(seq)
                .or_insert(record);
        }
        for records in terminals.values_mut() {
            records.advance();
        }
        let alarms_path = dir.join("alarms.log");
        let alarms = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&alarms_path)
            .map_err(io(&alarms_path))?;
        let quarantined: HashSet<(TerminalId, Seq, Vec<u8>)> =
            std::fs::read_to_string(&alarms_path)
                .map_err(io(&alarms_path))?
                .lines()
                .filter_map(parse_alarm)
                .collect();
        Ok(CampusStore {
            dir: dir.to_path_buf(),
            log,
            alarms,
            terminals,
            conflicts: quarantined.len() as u64,
            quarantined,
            torn_bytes_dropped: torn,
            poisoned: None,
            fsyncs: 0,
        })
    }

    /// Adds one batch durably: new records are appended to the log and the conflicting (or
    /// oversized) versions to the quarantine, both fsynced, and only then does the index (and
    /// so [`CampusStore::ack_through`]) change. On an error nothing of the batch is in the index;
    /// a log it could not cut back to its last whole entry, or whose fsync failed (the kernel
    /// may have dropped the unwritten pages), poisons the store: every later batch fails too,
    /// so nothing is acked that a reopen would not find.
    pub fn apply(
        &mut self,
        terminal: TerminalId,
        records: &[(Seq, &[u8])],
    ) -> Result<BatchOutcome, StoreError> {
        if let Some(reason) = &self.poisoned {
            return Err(StoreError::Io {
                path: self.dir.join("records.log"),
                source: std::io::Error::other(reason.clone()),
            });
        }
        let mut outcome = BatchOutcome::default();
        let mut appended = Vec::new();
        let mut new_records: BTreeMap<Seq, Vec<u8>> = BTreeMap::new();
        let mut new_quarantined: HashSet<(TerminalId, Seq, Vec<u8>)> = HashSet::new();
        let mut alarms = String::new();
        let held = self.terminals.get(&terminal);
        for &(seq, bytes) in records {
            let stored = new_records
                .get(&seq)
                .or_else(|| held.and_then(|t| t.records.get(&seq)));
            let version = (terminal, seq, bytes.to_vec());
            let quarantined =
                self.quarantined.contains(&version) || new_quarantined.contains(&version);
            match stored {
                Some(stored) if stored.as_slice() == bytes => outcome.duplicates += 1,
                _ if quarantined => outcome.conflict_repeats += 1,
                Some(stored) => {
                    outcome.conflicts += 1;
                    alarms.push_str(&alarm_line(terminal, seq, stored, bytes));
                    new_quarantined.insert(version);
                }
                None if bytes.len() > MAX_STORED_RECORD_BYTES => {
                    outcome.conflicts += 1;
                    alarms.push_str(&oversized_alarm_line(terminal, seq, bytes));
                    new_quarantined.insert(version);
                }
                None => {
                    appended.extend_from_slice(&encode_entry(terminal, seq, bytes));
                    new_records.insert(seq, bytes.to_vec());
                    outcome.stored += 1;
                }
            }
        }
        if !appended.is_empty() {
            self.append_log(&appended)?;
        }
        if !alarms.is_empty() {
            for line in alarms.lines() {
                eprintln!("campus: {line}");
            }
            self.alarms
                .write_all(alarms.as_bytes())
                .and_then(|()| {
                    self.fsyncs += 1;
                    self.alarms.sync_data()
                })
                .map_err(|source| StoreError::Io {
                    path: self.dir.join("alarms.log"),
                    source,
                })?;
        }
        // Durable: now the index may show it.
        self.conflicts += outcome.conflicts;
        self.quarantined.extend(new_quarantined);
        let entry = self.terminals.entry(terminal).or_default();
        entry.records.extend(new_records);
        entry.advance();
        Ok(outcome)
    }

    /// Appends whole entries to the log and fsyncs it; on failure cuts the log back to where it
    /// was (a torn entry in the middle would hide every later one on reopen) or poisons the
    /// store.
    fn append_log(&mut self, entries: &[u8]) -> Result<(), StoreError> {
        let log_path = self.dir.join("records.log");
        let io = |source| StoreError::Io {
            path: log_path.clone(),
            source,
        };
        let before = self.log.metadata().map_err(io)?.len();
        if let Err(error) = self.log.write_all(entries) {
            if let Err(cut) = self.log.set_len(before) {
                self.poisoned = Some(format!(
                    "a failed append ({error}) could not be cut off ({cut})"
                ));
            }
            return Err(io(error));
        }
        self.fsyncs += 1;
        if let Err(error) = self.log.sync_data() {
            self.poisoned = Some(format!("fsync failed ({error})"));
            return Err(io(error));
        }
        Ok(())
    }

    /// fsyncs (of the log and the quarantine) since the store was opened.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
    }

    pub fn stored_through(&self, terminal: TerminalId) -> Option<Seq> {
        self.terminals
            .get(&terminal)
            .and_then(|records| records.stored_through)
    }

    /// What the server acknowledges to `terminal`: its contiguous stored-through, but never past
    /// the first seq where that till sent a conflicting version. Past a conflict the till's
    /// history forked from the server's: a record the till holds under a later seq may never
    /// have arrived in its own version, so the till must keep it unsent (its watermark stays
    /// put, its unsent count grows, and the operator reconciles; see docs/mqtt.md).
    pub fn ack_through(&self, terminal: TerminalId) -> Option<Seq> {
        let stored = self.stored_through(terminal);
        let first_conflict = self
            .quarantined
            .iter()
            .filter(|(t, _, _)| *t == terminal)
            .map(|(_, seq, _)| *seq)
            .min();
        match first_conflict {
            Some(conflict) => stored.min(conflict.prev()),
            None => stored,
        }
    }

    /// The records of `records` that the store holds with exactly these bytes for `terminal`
    /// (not a conflicting version it quarantined): what the campus may act on.
    pub fn stored_as_sent<'a>(
        &self,
        terminal: TerminalId,
        records: &[(Seq, &'a [u8])],
    ) -> Vec<(Seq, &'a [u8])> {
        let held = self.terminals.get(&terminal);
        records
            .iter()
            .copied()
            .filter(|(seq, bytes)| {
                held.and_then(|t| t.records.get(seq))
                    .is_some_and(|stored| stored.as_slice() == *bytes)
            })
            .collect()
    }

    pub fn terminal(&self, terminal: TerminalId) -> Option<&TerminalRecords> {
        self.terminals.get(&terminal)
    }

    pub fn terminals(&self) -> Vec<TerminalId> {
        self.terminals.keys().copied().collect()
    }

    pub fn record_count(&self) -> u64 {
        self.terminals
            .values()
            .map(|t| t.records.len() as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_records_stored_with_the_bytes_sent_are_acted_on() {
        let dir = tempfile::tempdir().unwrap();
        let t = TerminalId(7);
        let mut store = CampusStore::open(dir.path()).unwrap();
        store.apply(t, &[(Seq(1), b"a"), (Seq(2), b"b")]).unwrap();
        // A resend of seq 1, a conflicting version of seq 2 (quarantined), a new seq 3.
        let batch: [(Seq, &[u8]); 3] = [(Seq(1), b"a"), (Seq(2), b"X"), (Seq(3), b"c")];
        store.apply(t, &batch).unwrap();
        let acted_on: Vec<Seq> = store
            .stored_as_sent(t, &batch)
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(acted_on, vec![Seq(1), Seq(3)]);
        assert!(store.stored_as_sent(TerminalId(8), &batch).is_empty());
    }

    #[test]
    fn duplicates_are_ignored_conflicts_never_overwrite_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let t = TerminalId(7);
        let mut store = CampusStore::open(dir.path()).unwrap();
        let outcome = store
            .apply(t, &[(Seq(1), b"a"), (Seq(2), b"b"), (Seq(4), b"d")])
            .unwrap();
        assert_eq!(outcome.stored, 3);
        assert_eq!(store.stored_through(t), Some(Seq(2)), "seq 3 is missing");
        let outcome = store
            .apply(t, &[(Seq(2), b"b"), (Seq(3), b"c"), (Seq(4), b"X")])
            .unwrap();
        assert_eq!(
            outcome,
            BatchOutcome {
                stored: 1,
                duplicates: 1,
                conflicts: 1,
                conflict_repeats: 0
            }
        );
        // The same conflicting version again (a resend) is not a new alarm.
        let outcome = store.apply(t, &[(Seq(4), b"X")]).unwrap();
        assert_eq!((outcome.conflicts, outcome.conflict_repeats), (0, 1));
        assert_eq!(store.stored_through(t), Some(Seq(4)));
        assert_eq!(
            store.ack_through(t),
            Some(Seq(3)),
            "never past the conflict at 4"
        );
        drop(store);
        // A crash mid-append leaves half an entry.
        let log = dir.path().join("records.log");
        let mut file = OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(&encode_entry(t, Seq(5), b"e")[..10])
            .unwrap();
        drop(file);
        let mut store = CampusStore::open(dir.path()).unwrap();
        assert_eq!(store.torn_bytes_dropped, 10);
        assert_eq!(store.conflicts, 1);
        let repeat = store.apply(t, &[(Seq(4), b"X")]).unwrap();
        assert_eq!(repeat.conflict_repeats, 1, "the quarantine is reloaded");
        let alarms = std::fs::read_to_string(dir.path().join("alarms.log")).unwrap();
        assert!(
            alarms.contains("seq 4") && alarms.ends_with("received hex 58\n"),
            "{alarms}"
        );
        assert_eq!(store.stored_through(t), Some(Seq(4)));
        let records = &store.terminal(t).unwrap().records;
        assert_eq!(records.get(&Seq(4)).map(Vec::as_slice), Some(&b"d"[..]));
    }

    #[test]
    fn a_batch_that_cannot_be_written_never_reaches_the_index_or_the_ack() {
        let dir = tempfile::tempdir().unwrap();
        let t = TerminalId(7);
        let mut store = CampusStore::open(dir.path()).unwrap();
        store.apply(t, &[(Seq(1), b"a"), (Seq(2), b"b")]).unwrap();
        // The disk goes bad: the log handle can no longer be written (nor cut back).
        store.log = File::open(dir.path().join("records.log")).unwrap();
        assert!(store.apply(t, &[(Seq(3), b"c"), (Seq(4), b"d")]).is_err());
        assert_eq!(
            store.stored_through(t),
            Some(Seq(2)),
            "3 and 4 are not durable"
        );
        assert_eq!(store.ack_through(t), Some(Seq(2)));
        assert_eq!(store.record_count(), 2);
        // Poisoned: a later batch (which a working handle might write) is refused too, so no
        // ack ever covers what the failed write left behind.
        store.log = OpenOptions::new()
            .append(true)
            .open(dir.path().join("records.log"))
            .unwrap();
        assert!(store.apply(t, &[(Seq(3), b"c")]).is_err());
        assert_eq!(store.ack_through(t), Some(Seq(2)));
        drop(store);
        let mut store = CampusStore::open(dir.path()).unwrap();
        assert_eq!(store.stored_through(t), Some(Seq(2)), "what a reopen finds");
        let outcome = store.apply(t, &[(Seq(3), b"c"), (Seq(4), b"d")]).unwrap();
        assert_eq!(outcome.stored, 2);
        assert_eq!(store.ack_through(t), Some(Seq(4)));
    }

    #[test]
    fn a_record_over_the_size_limit_is_quarantined_with_an_alarm_line() {
        let dir = tempfile::tempdir().unwrap();
        let t = TerminalId(9);
        let big = vec![0xABu8; MAX_STORED_RECORD_BYTES + 1];
        let mut store = CampusStore::open(dir.path()).unwrap();
        let outcome = store
            .apply(t, &[(Seq(1), b"a"), (Seq(2), &big), (Seq(3), b"c")])
            .unwrap();
        assert_eq!((outcome.stored, outcome.conflicts), (2, 1));
        assert_eq!(store.ack_through(t), Some(Seq(1)), "never past the big one");
        let alarms = std::fs::read_to_string(dir.path().join("alarms.log")).unwrap();
        assert_eq!(alarms.lines().count(), 1);
        assert!(
            alarms.starts_with("ALARM terminal 0000000000000009 seq 2 received 65537 bytes"),
            "{}",
            &alarms[..100]
        );
        // A resend is a repeat, also after a reopen (the quarantine is reloaded).
        let again = store.apply(t, &[(Seq(2), &big)]).unwrap();
        assert_eq!((again.conflicts, again.conflict_repeats), (0, 1));
        drop(store);
        let mut store = CampusStore::open(dir.path()).unwrap();
        assert_eq!(store.conflicts, 1);
        let again = store.apply(t, &[(Seq(2), &big)]).unwrap();
        assert_eq!((again.conflicts, again.conflict_repeats), (0, 1));
        assert_eq!(store.ack_through(t), Some(Seq(1)));
    }

    /// Regression: the received bytes were parsed with `u8::from_str_radix`, which takes a `+`
    /// sign, so a hand-edited "+1" quarantined the byte 01. Only hex digits are bytes.
    #[test]
    fn an_alarm_line_holds_its_bytes_in_hex_only() {
        let line = alarm_line(TerminalId(9), Seq(2), b"a", &[0x01, 0xAB]);
        assert_eq!(
            parse_alarm(&line),
            Some((TerminalId(9), Seq(2), vec![0x01, 0xAB]))
        );
        assert_eq!(parse_alarm(&line.replace("01ab", "+1ab")), None);
    }
}
