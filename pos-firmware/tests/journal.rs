//! Tests of the till's durable journal (`pos_firmware::journal`) against the real sled, in
//! temporary directories: reopen round trips, the append guards, sled's exclusive lock (in this
//! process and from a child process), damaged and inconsistent directories, browsing, and a
//! property test over random record sequences with reopens.
//!
//! Some tests write sled's trees directly to build states the journal's API never produces (gaps,
//! undecodable records, unknown formats). They rely on the layout documented in the journal
//! module: trees `records` (key `Seq::to_key`) and `meta` (`format`, `terminal_id`, `snapshot`).
//!
//! In this file `unwrap`/`expect` are assertions: where one fails, the test fails.

use pos_firmware::journal::{
    Direction, Journal, JournalError, BROWSE_SCAN_LIMIT, MAX_SNAPSHOT_BYTES,
};
use proptest::prelude::*;
use shared::codec::{encode_record, encode_snapshot};
use shared::record::{
    AbortReason, CardDebitPlan, DayTally, InDoubtReason, JournalRecord, LastSale, ModeChange,
    Payer, PendingSale, RecordBody, SaleAborted, SaleCommitted, SaleInDoubt, SaleIntent,
    SalesTally, TillSnapshot, TxnTag, RECENT_AMOUNTS_LEN,
};
use shared::{CardUid, Fen, LocalDay, MachineNumber, Seq, TerminalId, UnixMillis};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Building records: a tiny model of the till that turns steps into records and snapshots.

/// What the next record does.
#[derive(Debug, Clone)]
enum Step {
    /// A card sale starts (the card is one of a few test cards).
    Intent { amount_fen: u64, card: u8 },
    /// The oldest pending sale commits (a mode change if none is pending).
    Commit,
    /// The oldest pending sale aborts (a mode change if none is pending).
    Abort,
    /// The oldest pending sale goes to the server in doubt (a mode change if none is pending).
    InDoubt,
    /// Offline or fixed-price mode changes.
    Mode(ModeChange),
}

/// The steps of an ordinary lunch rush: sales committing, one aborting, mode switches.
fn lunch_steps(count: usize) -> Vec<Step> {
    (0..count)
        .map(|i| match i % 7 {
            0 | 2 | 4 => Step::Intent {
                amount_fen: 600 + (i as u64 % 5) * 150,
                card: (i % 4) as u8,
            },
            1 | 3 => Step::Commit,
            5 => Step::Abort,
            _ if i % 14 == 6 => Step::Mode(ModeChange::FixedPriceOn(Fen::new(800))),
            _ => Step::Mode(ModeChange::FixedPriceOff),
        })
        .collect()
}

fn payer(card: u8) -> Payer {
    // Unwrap: a 4-byte UID is always valid.
    Payer::CampusCard(CardUid::new(&[0x04, 0xC0, 0xFF, card]).unwrap())
}

struct TestTill {
    snapshot: TillSnapshot,
    at: UnixMillis,
}

impl TestTill {
    fn new(snapshot: TillSnapshot) -> TestTill {
        TestTill {
            snapshot,
            at: UnixMillis(1_760_000_000_000),
        }
    }

    /// The record for `step` and the snapshot after it (does not change `self`).
    fn next(&mut self, step: &Step) -> (JournalRecord, TillSnapshot) {
        let seq = self.snapshot.next_seq;
        self.at = self.at.saturating_add_millis(4_000);
        let mut after = self.snapshot.clone();
        after.next_seq = seq.next().expect("test seqs are small");
        let oldest = after.pending.first().copied();
        let body = match (step, oldest) {
            (Step::Intent { amount_fen, card }, _) => {
                let sale = SaleIntent {
                    amount: Fen::new(*amount_fen),
                    payer: payer(*card),
                    card: CardDebitPlan {
                        counter_before: seq.0 as u32,
                        balance_before: Fen::new(50_000),
                        tag: TxnTag(seq.0 as u32 ^ 0x5A5A_0000),
                    },
                    fixed_price: after.fixed_price.is_some(),
                };
                after.pending.push(PendingSale {
                    intent: seq,
                    at: self.at,
                    sale,
                });
                RecordBody::SaleIntent(sale)
            }
            (Step::Commit, Some(pending)) => {
                after.pending.remove(0);
                let amount = pending.sale.amount;
                let day = LocalDay(20_372);
                let tally = after
                    .days
                    .first()
                    .map_or(SalesTally::default(), |t| t.tally);
                after.days = vec![DayTally {
                    day,
                    tally: tally.plus(amount).expect("test totals are small"),
                }];
                after.recent_amounts.push(amount);
                if after.recent_amounts.len() > RECENT_AMOUNTS_LEN {
                    after.recent_amounts.remove(0);
                }
                after.last_sale = Some(LastSale {
                    payer: pending.sale.payer,
                    amount,
                    at: self.at,
                });
                RecordBody::SaleCommitted(SaleCommitted {
                    intent: pending.intent,
                    amount,
                    payer: pending.sale.payer,
                    balance_after: pending
                        .sale
                        .card
                        .balance_before
                        .checked_sub(amount)
                        .expect("test balances cover the sales"),
                    recovered: false,
                })
            }
            (Step::Abort, Some(pending)) => {
                after.pending.remove(0);
                RecordBody::SaleAborted(SaleAborted {
                    intent: pending.intent,
                    reason: AbortReason::WriteRefused,
                })
            }
            (Step::InDoubt, Some(pending)) => {
                after.pending.remove(0);
                RecordBody::SaleInDoubt(SaleInDoubt {
                    intent: pending.intent,
                    reason: InDoubtReason::CardMovedOn,
                })
            }
            (Step::Mode(change), _) => {
                apply_mode(&mut after, *change);
                RecordBody::ModeChanged(*change)
            }
            (Step::Commit | Step::Abort | Step::InDoubt, None) => {
                let change = if after.offline {
                    ModeChange::OfflineOff
                } else {
                    ModeChange::OfflineOn
                };
                apply_mode(&mut after, change);
                RecordBody::ModeChanged(change)
            }
        };
        let record = JournalRecord {
            seq,
            at: self.at,
            machine: after.machine,
            body,
        };
        (record, after)
    }

    /// Appends the record for `step`; returns it.
    fn append(&mut self, journal: &mut Journal, step: &Step) -> JournalRecord {
        let (record, snapshot) = self.next(step);
        journal
            .append(&record, &snapshot)
            .unwrap_or_else(|e| panic!("append of {}: {e}", record.seq));
        self.snapshot = snapshot;
        record
    }
}

fn apply_mode(snapshot: &mut TillSnapshot, change: ModeChange) {
    match change {
        ModeChange::OfflineOn => snapshot.offline = true,
        ModeChange::OfflineOff => snapshot.offline = false,
        ModeChange::FixedPriceOn(amount) => snapshot.fixed_price = Some(amount),
        ModeChange::FixedPriceOff => snapshot.fixed_price = None,
    }
}

/// Opens (creating) a journal and appends `steps`; returns the journal and what it holds.
fn journal_with(dir: &Path, steps: &[Step]) -> (Journal, TestTill, Vec<JournalRecord>) {
    let mut journal = Journal::open(dir).expect("open a new journal");
    let mut till = TestTill::new(journal.snapshot().clone());
    let records = steps
        .iter()
        .map(|step| till.append(&mut journal, step))
        .collect();
    (journal, till, records)
}

fn all_records(journal: &Journal) -> Vec<JournalRecord> {
    journal
        .records_from(Seq::FIRST)
        .collect::<Result<Vec<_>, _>>()
        .expect("records read back")
}

/// Asserts the journal holds exactly `records`, `snapshot` and `terminal`.
fn assert_holds(
    journal: &Journal,
    terminal: TerminalId,
    records: &[JournalRecord],
    snapshot: &TillSnapshot,
) {
    assert_eq!(journal.terminal_id(), terminal);
    assert_eq!(journal.snapshot(), snapshot);
    assert_eq!(
        journal.last_seq(),
        records.last().map(|r| r.seq),
        "last seq"
    );
    assert_eq!(all_records(journal), records);
}

// ---------------------------------------------------------------------------------------------
// Round trips and append guards.

#[test]
fn new_journal_is_empty_with_a_random_terminal_id() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // A directory that does not exist yet is created.
    let a_dir = a.path().join("nested").join("journal");
    let first = Journal::open(&a_dir).unwrap();
    let second = Journal::open(b.path()).unwrap();
    assert_eq!(first.last_seq(), None);
    assert_eq!(first.snapshot(), &TillSnapshot::factory_new());
    assert_ne!(first.terminal_id().0, 0);
    assert_ne!(first.terminal_id(), second.terminal_id());
    assert_eq!(first.get(Seq::FIRST).unwrap(), None);
    assert_eq!(first.records_from(Seq::FIRST).count(), 0);
    assert!(first
        .find(None, Direction::Older, |_| true)
        .unwrap()
        .is_none());
    let terminal = first.terminal_id();
    drop(first);
    let reopened = Journal::open(&a_dir).unwrap();
    assert_eq!(reopened.terminal_id(), terminal);
    assert_eq!(reopened.snapshot(), &TillSnapshot::factory_new());
}

#[test]
fn reopen_keeps_records_snapshot_and_terminal_id() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut till, mut records) = journal_with(dir.path(), &lunch_steps(120));
    let terminal = journal.terminal_id();
    assert_eq!(journal.last_seq(), Some(Seq(120)));
    assert_holds(&journal, terminal, &records, &till.snapshot);
    drop(journal);

    let mut journal = Journal::open(dir.path()).unwrap();
    assert_holds(&journal, terminal, &records, &till.snapshot);
    for record in &records {
        assert_eq!(journal.get(record.seq).unwrap().as_ref(), Some(record));
    }
    assert_eq!(journal.get(Seq(0)).unwrap(), None);
    assert_eq!(journal.get(Seq(121)).unwrap(), None);

    // Appending continues after the reopen, and survives another one.
    for step in lunch_steps(30) {
        records.push(till.append(&mut journal, &step));
    }
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq(), Some(Seq(150)));
    assert_holds(&journal, terminal, &records, &till.snapshot);
}

#[test]
fn out_of_order_appends_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, mut till, mut records) = journal_with(dir.path(), &lunch_steps(5));
    let terminal = journal.terminal_id();
    let step = Step::Intent {
        amount_fen: 1_000,
        card: 9,
    };
    let (good, good_snapshot) = till.next(&step);
    assert_eq!(good.seq, Seq(6));

    let mut gap = good.clone();
    gap.seq = Seq(7);
    let mut gap_snapshot = good_snapshot.clone();
    gap_snapshot.next_seq = Seq(8);
    let mut repeat = good.clone();
    repeat.seq = Seq(5);
    let mut repeat_snapshot = good_snapshot.clone();
    repeat_snapshot.next_seq = Seq(6);
    let mut zero = good.clone();
    zero.seq = Seq(0);
    let mut snapshot_ahead = good_snapshot.clone();
    snapshot_ahead.next_seq = Seq(8);
    let mut snapshot_behind = good_snapshot.clone();
    snapshot_behind.next_seq = Seq(6);

    let cases: Vec<(&str, &JournalRecord, &TillSnapshot, Seq, Seq)> = vec![
        ("gap", &gap, &gap_snapshot, Seq(6), Seq(7)),
        ("repeat", &repeat, &repeat_snapshot, Seq(6), Seq(5)),
        ("zero", &zero, &good_snapshot, Seq(6), Seq(0)),
        ("snapshot ahead", &good, &snapshot_ahead, Seq(7), Seq(8)),
        ("snapshot behind", &good, &snapshot_behind, Seq(7), Seq(6)),
    ];
    for (name, record, snapshot, expected, got) in cases {
        match journal.append(record, snapshot) {
            Err(JournalError::OutOfOrder {
                expected: e,
                got: g,
            }) => assert_eq!((e, g), (expected, got), "{name}"),
            other => panic!("{name}: expected OutOfOrder, got {other:?}"),
        }
        assert_holds(&journal, terminal, &records, &till.snapshot);
        assert_eq!(journal.get(Seq(6)).unwrap(), None, "{name}");
        assert_eq!(journal.get(Seq(7)).unwrap(), None, "{name}");
    }

    // Nothing reached the disk either.
    drop(journal);
    let mut journal = Journal::open(dir.path()).unwrap();
    assert_holds(&journal, terminal, &records, &till.snapshot);

    // The refusals did not poison anything: the right record still goes in.
    journal.append(&good, &good_snapshot).unwrap();
    till.snapshot = good_snapshot;
    records.push(good);
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_holds(&journal, terminal, &records, &till.snapshot);
}

#[test]
fn oversized_snapshot_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, mut till, records) = journal_with(dir.path(), &lunch_steps(3));
    let (record, mut snapshot) = till.next(&Step::Mode(ModeChange::OfflineOn));
    let pending = PendingSale {
        intent: Seq(1),
        at: UnixMillis(0),
        sale: SaleIntent {
            amount: Fen::new(1),
            payer: payer(1),
            card: CardDebitPlan {
                counter_before: 0,
                balance_before: Fen::new(1),
                tag: TxnTag(0),
            },
            fixed_price: false,
        },
    };
    snapshot.pending = vec![pending; MAX_SNAPSHOT_BYTES / 8];
    match journal.append(&record, &snapshot) {
        Err(e @ JournalError::TooLarge { .. }) => assert!(e.to_string().contains("snapshot")),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(journal.last_seq(), Some(Seq(3)));
    let terminal = journal.terminal_id();
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_holds(&journal, terminal, &records, &till.snapshot);
}

// ---------------------------------------------------------------------------------------------
// sled's exclusive lock.

#[test]
fn second_open_in_this_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = journal_with(dir.path(), &lunch_steps(3));
    match Journal::open(dir.path()) {
        Err(JournalError::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // The refused open changed nothing for the owner.
    assert_eq!(journal.last_seq(), Some(Seq(3)));
    drop(journal);
    // Once the owner is gone, the journal opens at once (sled's lingering lock is waited out).
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq(), Some(Seq(3)));
}

/// Environment variable that turns [`child_opens_journal`] into the child side of
/// [`second_open_from_another_process_is_locked`].
const CHILD_DIR_ENV: &str = "POS_JOURNAL_TEST_CHILD_DIR";

/// Helper run in a child process: opens the journal named by [`CHILD_DIR_ENV`] and prints the
/// outcome. Does nothing (passes) in a normal test run.
#[test]
fn child_opens_journal() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    match Journal::open(Path::new(&dir)) {
        Ok(journal) => println!(
            "CHILD-RESULT ok last={}",
            journal.last_seq().map_or(0, |s| s.0)
        ),
        Err(JournalError::Locked { .. }) => println!("CHILD-RESULT locked"),
        Err(e) => println!("CHILD-RESULT error {e}"),
    }
}

fn open_in_child(dir: &Path) -> String {
    // Unwrap: the test binary knows its own path.
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args([
            "child_opens_journal",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .output()
        .expect("run the test binary as a child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.split_once("CHILD-RESULT ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("child printed no result: {stdout}"))
        .to_string()
}

#[test]
fn second_open_from_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = journal_with(dir.path(), &lunch_steps(4));
    assert_eq!(open_in_child(dir.path()), "locked");
    drop(journal);
    // The lock is released with the owner: now the child gets the journal.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(open_in_child(dir.path()), "ok last=4");
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq(), Some(Seq(4)));
}

// ---------------------------------------------------------------------------------------------
// Damaged directories.

/// A journal directory to damage, with what it held.
struct Original {
    dir: tempfile::TempDir,
    terminal: TerminalId,
    records: Vec<JournalRecord>,
    snapshot: TillSnapshot,
}

/// Writes `count` records; with `reopened`, in two sessions and opened once more, so that sled
/// has written its recovery snapshot file (`snap.*`) as a long-lived till's directory has.
fn original(count: usize, reopened: bool) -> Original {
    let dir = tempfile::tempdir().unwrap();
    let steps = lunch_steps(count);
    let half = if reopened { count / 2 } else { count };
    let (journal, mut till, mut records) = journal_with(dir.path(), &steps[..half]);
    let terminal = journal.terminal_id();
    drop(journal);
    if reopened {
        let mut journal = Journal::open(dir.path()).unwrap();
        for step in &steps[half..] {
            records.push(till.append(&mut journal, step));
        }
        drop(journal);
        drop(Journal::open(dir.path()).unwrap());
    }
    Original {
        dir,
        terminal,
        records,
        snapshot: till.snapshot,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// Something done to a copy of a journal directory.
type Damage = Box<dyn Fn(&Path)>;

/// How an open of a damaged directory ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Opened, and every record and the snapshot are exactly as written.
    Intact,
    /// Refused with `Corrupt`.
    Corrupt,
    /// Refused with `Io`.
    Io,
}

/// Opens the damaged copy `dir` of `original` and checks the only acceptable outcomes: all of
/// it intact, or `Corrupt`/`Io` with a message. Never fewer records, never a panic. A refused
/// directory must stay refused on the next open (sled rewrites a damaged log while recovering).
fn open_damaged(dir: &Path, original: &Original, case: &str) -> Outcome {
    let outcome = match Journal::open(dir) {
        Ok(journal) => {
            assert_eq!(journal.terminal_id(), original.terminal, "{case}");
            assert_eq!(journal.snapshot(), &original.snapshot, "{case}");
            let records: Result<Vec<_>, _> = journal.records_from(Seq::FIRST).collect();
            match records {
                Ok(records) => assert_eq!(records, original.records, "{case}"),
                Err(e) => panic!("{case}: opened, but reading records failed: {e}"),
            }
            Outcome::Intact
        }
        Err(JournalError::Corrupt { path, detail }) => {
            assert_eq!(path, dir, "{case}");
            assert!(detail.len() > 20, "{case}: unhelpful detail {detail:?}");
            Outcome::Corrupt
        }
        Err(JournalError::Io { .. }) => Outcome::Io,
        Err(other) => panic!("{case}: unexpected error {other}"),
    };
    if outcome != Outcome::Intact {
        std::thread::sleep(Duration::from_millis(20));
        if let Ok(journal) = Journal::open(dir) {
            panic!(
                "{case}: refused once, then opened with last seq {:?} (original {:?})",
                journal.last_seq(),
                original.records.last().map(|r| r.seq)
            );
        }
    }
    outcome
}

/// A deterministic byte generator for garbage (xorshift64).
struct Garbage(u64);

impl Garbage {
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

/// Overwrites `<dir>/db` at `offset` with `bytes` (clipped to the file).
fn overwrite_db(dir: &Path, offset: u64, bytes: &[u8]) {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("db"))
        .unwrap();
    let len = file.metadata().unwrap().len();
    let end = (offset + bytes.len() as u64).min(len);
    if offset < end {
        file.write_all_at(&bytes[..(end - offset) as usize], offset)
            .unwrap();
    }
}

#[test]
fn damaged_db_file_is_refused_never_silently_shortened() {
    let mut garbage = Garbage(0x9E37_79B9_7F4A_7C15);
    let mut summary: BTreeMap<(String, Outcome), usize> = BTreeMap::new();
    for reopened in [false, true] {
        let original = original(400, reopened);
        let base = original.dir.path();
        let len = fs::metadata(base.join("db")).unwrap().len();
        let label = if reopened {
            "with snap file"
        } else {
            "one session"
        };
        let mut cases: Vec<(String, Damage)> = Vec::new();
        for i in 0..12u64 {
            let offset = len * i / 12;
            let random = garbage.bytes(4096);
            cases.push((
                format!("4 KiB random at {offset}"),
                Box::new(move |d| overwrite_db(d, offset, &random)),
            ));
            cases.push((
                format!("4 KiB zeros at {offset}"),
                Box::new(move |d| overwrite_db(d, offset, &[0; 4096])),
            ));
            cases.push((
                format!("4 KiB 0xFF at {offset}"),
                Box::new(move |d| overwrite_db(d, offset, &[0xFF; 4096])),
            ));
            let flip_at = offset + 17;
            cases.push((
                format!("one bit flipped at {flip_at}"),
                Box::new(move |d| {
                    let file = fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(d.join("db"))
                        .unwrap();
                    let mut byte = [0u8];
                    if file.read_exact_at(&mut byte, flip_at).is_ok() {
                        byte[0] ^= 0x08;
                        file.write_all_at(&byte, flip_at).unwrap();
                    }
                }),
            ));
        }
        for cut in [0, 1, len / 3, len / 2, len * 9 / 10, len - 1] {
            cases.push((
                format!("truncated to {cut} of {len}"),
                Box::new(move |d| {
                    fs::OpenOptions::new()
                        .write(true)
                        .open(d.join("db"))
                        .unwrap()
                        .set_len(cut)
                        .unwrap()
                }),
            ));
        }
        for (name, damage) in cases {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(base, copy.path());
            damage(copy.path());
            let outcome = open_damaged(copy.path(), &original, &format!("{label}: {name}"));
            let kind = name.split(" at ").next().unwrap_or(&name).to_string();
            let kind = kind.split(" to ").next().unwrap_or(&kind).to_string();
            *summary
                .entry((format!("{label}: {kind}"), outcome))
                .or_default() += 1;
        }
    }
    eprintln!("damaged db outcomes:");
    for ((case, outcome), count) in &summary {
        eprintln!("  {count:3} × {case}: {outcome:?}");
    }
    // The damage is real: most of these must be refused.
    let refused: usize = summary
        .iter()
        .filter(|((_, outcome), _)| *outcome != Outcome::Intact)
        .map(|(_, count)| count)
        .sum();
    assert!(refused > 40, "only {refused} damaged copies were refused");
}

#[test]
fn lost_sled_tail_is_detected_by_the_high_water_mark() {
    // sled recovers a damaged log by keeping the consistent prefix: simulate exactly that by
    // putting back sled's files from an earlier moment, keeping the journal's high-water mark.
    let dir = tempfile::tempdir().unwrap();
    let early = tempfile::tempdir().unwrap();
    let (journal, mut till, _) = journal_with(dir.path(), &lunch_steps(10));
    drop(journal);
    copy_dir(dir.path(), early.path());
    let mut journal = Journal::open(dir.path()).unwrap();
    for step in lunch_steps(10) {
        till.append(&mut journal, &step);
    }
    drop(journal);
    for entry in fs::read_dir(early.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "journal.hwm" && entry.path().is_file() {
            fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    match Journal::open(dir.path()) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains("#11..=#20"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn damaged_sled_side_files() {
    for reopened in [false, true] {
        let original = original(60, reopened);
        let label = if reopened {
            "with snap file"
        } else {
            "one session"
        };
        let snap_files = |d: &Path| -> Vec<std::path::PathBuf> {
            fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("snap.")
                })
                .collect()
        };
        assert_eq!(!snap_files(original.dir.path()).is_empty(), reopened);
        // (case, damage, intact is acceptable)
        let cases: Vec<(&str, Damage, bool)> = vec![
            (
                // sled rewrites a missing `conf` with its defaults, which are ours.
                "conf deleted",
                Box::new(|d| fs::remove_file(d.join("conf")).unwrap()),
                true,
            ),
            (
                "conf garbage",
                Box::new(|d| {
                    fs::write(d.join("conf"), b"segment_size: lots\nuse_compression: ?\n").unwrap()
                }),
                false,
            ),
            (
                "db deleted",
                Box::new(|d| fs::remove_file(d.join("db")).unwrap()),
                false,
            ),
            (
                "db emptied",
                Box::new(|d| fs::write(d.join("db"), b"").unwrap()),
                false,
            ),
            (
                // A missing recovery snapshot only makes sled scan its whole log.
                "snap files deleted",
                Box::new(move |d| {
                    for path in snap_files(d) {
                        fs::remove_file(path).unwrap();
                    }
                }),
                true,
            ),
            (
                "snap files garbage",
                Box::new(move |d| {
                    for path in snap_files(d) {
                        fs::write(path, [0x33u8; 100]).unwrap();
                    }
                }),
                // Without snap files there is nothing to damage.
                !reopened,
            ),
        ];
        for (name, damage, intact_ok) in cases {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(original.dir.path(), copy.path());
            damage(copy.path());
            let case = format!("{label}: {name}");
            let outcome = open_damaged(copy.path(), &original, &case);
            eprintln!("{case}: {outcome:?}");
            assert!(intact_ok || outcome != Outcome::Intact, "{case} opened");
        }
    }
}

#[test]
fn high_water_mark_damaged_foreign_or_missing() {
    let original = original(8, false);
    let hwm = |d: &Path| d.join("journal.hwm");

    // Missing: recreated from the verified journal (only deleting it by hand does that).
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original.dir.path(), copy.path());
    fs::remove_file(hwm(copy.path())).unwrap();
    assert_eq!(
        open_damaged(copy.path(), &original, "hwm deleted"),
        Outcome::Intact
    );
    assert!(hwm(copy.path()).exists());

    // Damaged: refused, with a way out in the message.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original.dir.path(), copy.path());
    let mut bytes = fs::read(hwm(copy.path())).unwrap();
    bytes[20] ^= 0x01;
    fs::write(hwm(copy.path()), &bytes).unwrap();
    match Journal::open(copy.path()) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains("journal.hwm is damaged"), "{detail}");
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // Another journal's mark: refused.
    let other = original_dir_mark_of_other_terminal();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original.dir.path(), copy.path());
    fs::write(hwm(copy.path()), other).unwrap();
    match Journal::open(copy.path()) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains("belongs to terminal"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// The high-water mark file of a fresh journal of some other terminal.
fn original_dir_mark_of_other_terminal() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    drop(Journal::open(dir.path()).unwrap());
    fs::read(dir.path().join("journal.hwm")).unwrap()
}

/// Opens sled in a journal directory with the journal's settings, waiting out the lock of a
/// just-dropped `Journal`.
fn raw_sled(dir: &Path) -> sled::Db {
    for _ in 0..200 {
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("sled stayed locked");
}

/// Makes a journal of `count` records, then lets `tamper` edit sled's trees directly.
fn tampered(count: usize, tamper: impl FnOnce(&sled::Tree, &sled::Tree)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    drop(journal_with(dir.path(), &lunch_steps(count)));
    let db = raw_sled(dir.path());
    let records = db.open_tree("records").unwrap();
    let meta = db.open_tree("meta").unwrap();
    tamper(&records, &meta);
    db.flush().unwrap();
    drop(db);
    dir
}

fn expect_corrupt(dir: &Path, needle: &str) {
    match Journal::open(dir) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains(needle), "{needle:?} not in {detail:?}")
        }
        other => panic!("expected Corrupt containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn inconsistent_trees_are_refused_with_the_seq() {
    let dir = tampered(10, |records, _| {
        records.remove(Seq(4).to_key()).unwrap();
    });
    expect_corrupt(
        dir.path(),
        "seq gap: after 3 contiguous records expected #4, found #5",
    );

    let dir = tampered(10, |records, _| {
        records
            .insert(Seq(6).to_key(), &[0x00, 0x06, 0xFF][..])
            .unwrap();
    });
    expect_corrupt(dir.path(), "record #6 does not decode");

    let dir = tampered(10, |records, _| {
        let mut moved = records
            .get(Seq(7).to_key())
            .unwrap()
            .map(|bytes| shared::codec::decode_record(&bytes).unwrap())
            .unwrap();
        moved.seq = Seq(70);
        records
            .insert(Seq(7).to_key(), encode_record(&moved))
            .unwrap();
    });
    expect_corrupt(dir.path(), "the record stored under #7 says it is #70");

    let dir = tampered(10, |records, _| {
        records.insert([1u8, 2, 3], &[0u8][..]).unwrap();
    });
    expect_corrupt(dir.path(), "a record key is 3 bytes");

    // The snapshot disagrees with the records: ahead (records lost) and behind.
    let dir = tampered(10, |records, _| {
        records.remove(Seq(10).to_key()).unwrap();
    });
    expect_corrupt(
        dir.path(),
        "the snapshot's next seq is #11 but the last record is #9",
    );
    // Behind by two records (one is a cut append, undone on open: see
    // `an_append_cut_between_its_record_and_its_snapshot_is_undone_on_open`).
    let dir = tampered(10, |records, _| {
        for seq in [Seq(11), Seq(12)] {
            let record = JournalRecord {
                seq,
                at: UnixMillis(0),
                machine: MachineNumber::FACTORY_DEFAULT,
                body: RecordBody::ModeChanged(ModeChange::OfflineOn),
            };
            records
                .insert(seq.to_key(), encode_record(&record))
                .unwrap();
        }
    });
    expect_corrupt(
        dir.path(),
        "the snapshot's next seq is #11 but the last record is #12",
    );

    // Meta damaged.
    let dir = tampered(10, |_, meta| {
        meta.remove("snapshot").unwrap();
    });
    expect_corrupt(dir.path(), "no snapshot");
    let dir = tampered(10, |_, meta| {
        meta.insert("snapshot", &[0x07u8, 0x01][..]).unwrap();
    });
    expect_corrupt(dir.path(), "the snapshot does not decode");
    let dir = tampered(10, |_, meta| {
        meta.insert("terminal_id", &0u64.to_be_bytes()[..]).unwrap();
    });
    expect_corrupt(dir.path(), "terminal id is zero");
    let dir = tampered(10, |_, meta| {
        meta.clear().unwrap();
    });
    expect_corrupt(
        dir.path(),
        "records are present (first: #1) but the meta tree has no format",
    );
    let dir = tampered(0, |_, meta| {
        meta.clear().unwrap();
    });
    expect_corrupt(dir.path(), "sled's database is empty, but journal.hwm says");

    // A journal written by a newer firmware.
    let dir = tampered(2, |_, meta| {
        meta.insert("format", &2u32.to_be_bytes()[..]).unwrap();
    });
    match Journal::open(dir.path()) {
        Err(JournalError::UnsupportedFormat {
            found, supported, ..
        }) => assert_eq!((found, supported), (2, 1)),
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
}

#[test]
fn snapshot_written_directly_matches_what_append_writes() {
    // Guards the layout the tampering tests rely on: the journal stores exactly the codec's bytes.
    let dir = tempfile::tempdir().unwrap();
    let (journal, till, records) = journal_with(dir.path(), &lunch_steps(3));
    drop(journal);
    let db = raw_sled(dir.path());
    let meta = db.open_tree("meta").unwrap();
    let stored = db.open_tree("records").unwrap();
    assert_eq!(
        meta.get("snapshot").unwrap().as_deref(),
        Some(&encode_snapshot(&till.snapshot)[..])
    );
    for record in &records {
        assert_eq!(
            stored.get(record.seq.to_key()).unwrap().as_deref(),
            Some(&encode_record(record)[..])
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Browsing and reading.

fn is_commit(record: &JournalRecord) -> bool {
    matches!(record.body, RecordBody::SaleCommitted(_))
}

#[test]
fn find_walks_older_and_newer_with_a_predicate() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, records) = journal_with(dir.path(), &lunch_steps(40));
    let commits: Vec<Seq> = records
        .iter()
        .filter(|r| is_commit(r))
        .map(|r| r.seq)
        .collect();
    assert!(commits.len() > 5);
    let seq_of = |found: Option<JournalRecord>| found.map(|r| r.seq);
    let older = |from| seq_of(journal.find(from, Direction::Older, is_commit).unwrap());
    let newer = |from| seq_of(journal.find(from, Direction::Newer, is_commit).unwrap());

    // From the ends.
    assert_eq!(older(None), commits.last().copied());
    assert_eq!(newer(None), commits.first().copied());
    // Strictly before / after a seq, whether or not it matches itself.
    for pair in commits.windows(2) {
        for from in pair[0].0 + 1..=pair[1].0 {
            assert_eq!(older(Some(Seq(from))), Some(pair[0]), "older from #{from}");
        }
        for from in pair[0].0..pair[1].0 {
            assert_eq!(newer(Some(Seq(from))), Some(pair[1]), "newer from #{from}");
        }
    }
    // Walking the whole journal both ways finds every commit, in order.
    let mut walked = Vec::new();
    let mut at = None;
    while let Some(seq) = older(at) {
        walked.push(seq);
        at = Some(seq);
    }
    walked.reverse();
    assert_eq!(walked, commits);
    let mut walked = Vec::new();
    let mut at = None;
    while let Some(seq) = newer(at) {
        walked.push(seq);
        at = Some(seq);
    }
    assert_eq!(walked, commits);

    // Past the ends.
    assert_eq!(older(Some(commits[0])), None);
    assert_eq!(newer(Some(*commits.last().unwrap())), None);
    assert_eq!(
        seq_of(
            journal
                .find(Some(Seq::FIRST), Direction::Older, |_| true)
                .unwrap()
        ),
        None
    );
    assert_eq!(
        seq_of(
            journal
                .find(Some(Seq(40)), Direction::Newer, |_| true)
                .unwrap()
        ),
        None
    );
    assert_eq!(
        seq_of(
            journal
                .find(Some(Seq(u64::MAX)), Direction::Newer, |_| true)
                .unwrap()
        ),
        None
    );
    // From beyond the newest record, Older finds the newest; from 0, Newer finds the oldest.
    assert_eq!(
        seq_of(
            journal
                .find(Some(Seq(1_000)), Direction::Older, |_| true)
                .unwrap()
        ),
        Some(Seq(40))
    );
    assert_eq!(
        seq_of(
            journal
                .find(Some(Seq(0)), Direction::Newer, |_| true)
                .unwrap()
        ),
        Some(Seq(1))
    );
    // A predicate nothing satisfies.
    assert_eq!(
        journal.find(None, Direction::Older, |_| false).unwrap(),
        None
    );
    assert_eq!(
        journal.find(None, Direction::Newer, |_| false).unwrap(),
        None
    );
}

#[test]
fn find_gives_up_after_the_scan_limit() {
    // BROWSE_SCAN_LIMIT + 5 records where only #1 and the newest match. Bulk-written through sled
    // (durable appends of 10,000 records would make this test slow on a real flash disk).
    let total = BROWSE_SCAN_LIMIT as u64 + 5;
    let dir = tampered(0, |records, meta| {
        for n in 1..=total {
            let record = JournalRecord {
                seq: Seq(n),
                at: UnixMillis(n as i64),
                machine: MachineNumber::FACTORY_DEFAULT,
                body: RecordBody::ModeChanged(if n == 1 || n == total {
                    ModeChange::OfflineOn
                } else {
                    ModeChange::FixedPriceOff
                }),
            };
            records
                .insert(Seq(n).to_key(), encode_record(&record))
                .unwrap();
        }
        let mut snapshot = TillSnapshot::factory_new();
        snapshot.next_seq = Seq(total + 1);
        meta.insert("snapshot", encode_snapshot(&snapshot)).unwrap();
    });
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq(), Some(Seq(total)));
    let offline_on =
        |r: &JournalRecord| matches!(r.body, RecordBody::ModeChanged(ModeChange::OfflineOn));
    let found = |from, direction| {
        journal
            .find(from, direction, offline_on)
            .unwrap()
            .map(|r| r.seq)
    };
    // Within the limit either way.
    assert_eq!(found(None, Direction::Older), Some(Seq(total)));
    assert_eq!(found(None, Direction::Newer), Some(Seq(1)));
    // #1 is BROWSE_SCAN_LIMIT + 3 records below #total: past the limit.
    assert_eq!(found(Some(Seq(total)), Direction::Older), None);
    assert_eq!(found(Some(Seq(1)), Direction::Newer), None);
    // Exactly at the limit: BROWSE_SCAN_LIMIT records examined, the last one matches.
    let limit = BROWSE_SCAN_LIMIT as u64;
    assert_eq!(found(Some(Seq(limit + 1)), Direction::Older), Some(Seq(1)));
    assert_eq!(found(Some(Seq(limit + 2)), Direction::Older), None);
    assert_eq!(
        found(Some(Seq(total - limit)), Direction::Newer),
        Some(Seq(total))
    );
    assert_eq!(found(Some(Seq(total - limit - 1)), Direction::Newer), None);
}

#[test]
fn records_from_starts_anywhere_and_stops_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, records) = journal_with(dir.path(), &lunch_steps(25));
    for first in [0u64, 1, 2, 13, 25] {
        let from: Vec<_> = journal
            .records_from(Seq(first))
            .collect::<Result<_, _>>()
            .unwrap();
        let skip = first.saturating_sub(1) as usize;
        assert_eq!(from, records[skip..], "from #{first}");
    }
    assert_eq!(journal.records_from(Seq(26)).count(), 0);
    assert_eq!(journal.records_from(Seq(u64::MAX)).count(), 0);
}

// ---------------------------------------------------------------------------------------------
// The cost of a sale on flash, and the one crash state that cost allows.

/// Environment variable that turns [`child_counts_sale_writes`] into the child side of
/// [`a_card_sale_costs_one_sled_write_and_one_barrier_per_durable_point`].
const COUNT_CHILD_DIR_ENV: &str = "POS_JOURNAL_TEST_COUNT_DIR";

/// Card sales the child rings up while it counts.
const COUNTED_SALES: u64 = 20;

/// The process's count of write-type system calls (`write`, `pwrite64`, …) from `/proc/self/io`.
fn write_syscalls() -> u64 {
    let io = fs::read_to_string("/proc/self/io").expect("/proc/self/io (Linux)");
    io.lines()
        .find_map(|line| line.strip_prefix("syscw: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a syscw line")
}

/// Helper run in a child process (alone, so that no other test's I/O is counted): rings up
/// [`COUNTED_SALES`] card sales the way the runtime does (card index, intent, card index, commit)
/// and prints the write system calls and journal barriers they made. Passes in a normal run.
#[test]
fn child_counts_sale_writes() {
    let Some(dir) = std::env::var_os(COUNT_CHILD_DIR_ENV) else {
        return;
    };
    let mut journal = Journal::open(Path::new(&dir)).unwrap();
    let mut till = TestTill::new(journal.snapshot().clone());
    let uid = CardUid::new(&[0x04, 0x1A, 0x2B, 0x3C]).unwrap();
    let sale = |journal: &mut Journal, till: &mut TestTill, n: u64| {
        journal.remember_card_counter(&uid, n as u32).unwrap();
        till.append(
            journal,
            &Step::Intent {
                amount_fen: 600,
                card: 1,
            },
        );
        journal.remember_card_counter(&uid, n as u32 + 1).unwrap();
        journal
            .add_card_spent(&uid, LocalDay(20_000), Fen::new(600))
            .unwrap();
        till.append(journal, &Step::Commit);
    };
    // The first sale creates the card index's trees.
    sale(&mut journal, &mut till, 0);
    let (writes_before, barriers_before) = (write_syscalls(), journal.barriers());
    for n in 1..=COUNTED_SALES {
        sale(&mut journal, &mut till, n);
    }
    let writes = write_syscalls() - writes_before;
    let barriers = journal.barriers() - barriers_before;
    println!("CHILD-COUNT writes={writes} barriers={barriers}");
}

#[test]
fn a_card_sale_costs_one_sled_write_and_one_barrier_per_durable_point() {
    let dir = tempfile::tempdir().unwrap();
    // Unwrap: the test binary knows its own path.
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_counts_sale_writes",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(COUNT_CHILD_DIR_ENV, dir.path())
        .output()
        .expect("run the test binary as a child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let counts = stdout
        .lines()
        .find_map(|line| line.split_once("CHILD-COUNT ").map(|(_, counts)| counts))
        .unwrap_or_else(|| panic!("child printed no count: {stdout}"));
    let durable_points = 2 * COUNTED_SALES;
    // Per durable point: sled writes its log buffer once (one `pwrite`, which sled 0.34 always
    // follows with a `sync_file_range`), the journal fdatasyncs `db` once (the one barrier), and
    // it rewrites the high-water mark in place (one `pwrite`, never synced). Before: three sled
    // log writes per point (the card index, sled's batch manifest, the record and snapshot).
    assert_eq!(
        counts,
        format!("writes={} barriers={durable_points}", 2 * durable_points)
    );
}

#[test]
fn an_append_cut_between_its_record_and_its_snapshot_is_undone_on_open() {
    // Record and snapshot go into sled's log one after the other, with nothing else between
    // them; a crash can keep the record and lose the snapshot. That append never returned (the
    // high-water mark was not moved), so no sale was shown successful on it: open drops it.
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut till, records) = journal_with(dir.path(), &lunch_steps(4));
    let terminal = journal.terminal_id();
    drop(journal);
    let (cut, _) = till.next(&Step::Intent {
        amount_fen: 900,
        card: 2,
    });
    let db = raw_sled(dir.path());
    let tree = db.open_tree("records").unwrap();
    tree.insert(cut.seq.to_key(), encode_record(&cut)).unwrap();
    db.flush().unwrap();
    drop((tree, db));

    let mut journal = Journal::open(dir.path()).expect("the cut append is undone, not refused");
    assert_holds(&journal, terminal, &records, &till.snapshot);
    assert_eq!(journal.get(cut.seq).unwrap(), None);
    // The seq is free again, and the undoing was itself durable.
    let redone = till.append(
        &mut journal,
        &Step::Intent {
            amount_fen: 700,
            card: 3,
        },
    );
    assert_eq!(redone.seq, cut.seq);
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq(), Some(cut.seq));
}

#[test]
fn a_lone_last_record_the_high_water_mark_vouched_for_is_refused_not_undone() {
    // Record #5's append returned (the mark says #5), then sled lost the snapshot written with
    // it: that is sled losing data, not a cut append. Nothing is dropped.
    let dir = tempfile::tempdir().unwrap();
    let (journal, till, _) = journal_with(dir.path(), &lunch_steps(4));
    let before = till.snapshot.clone();
    drop(journal);
    let mut journal = Journal::open(dir.path()).unwrap();
    let mut till = TestTill::new(before.clone());
    till.append(&mut journal, &Step::Commit);
    drop(journal);
    let db = raw_sled(dir.path());
    db.open_tree("meta")
        .unwrap()
        .insert("snapshot", encode_snapshot(&before))
        .unwrap();
    db.flush().unwrap();
    drop(db);

    expect_corrupt(dir.path(), "sled lost records #5..=#5");
    let db = raw_sled(dir.path());
    assert!(db
        .open_tree("records")
        .unwrap()
        .get(Seq(5).to_key())
        .unwrap()
        .is_some());
}

// ---------------------------------------------------------------------------------------------
// Property: any sequence of records, with reopens anywhere, reads back exactly.

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..50_000, 0u8..6).prop_map(|(amount_fen, card)| Step::Intent { amount_fen, card }),
        3 => Just(Step::Commit),
        1 => Just(Step::Abort),
        1 => Just(Step::InDoubt),
        1 => prop_oneof![
            Just(ModeChange::OfflineOn),
            Just(ModeChange::OfflineOff),
            (1u64..10_000).prop_map(|fen| ModeChange::FixedPriceOn(Fen::new(fen))),
            Just(ModeChange::FixedPriceOff),
        ]
        .prop_map(Step::Mode),
    ]
}

proptest! {
    // 24 cases of up to 60 durable appends each keep this test at a few seconds. No failure
    // file: proptest prints the shrunk failing case, and this test binary has no lib.rs for
    // proptest's default regression-file location.
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_records_round_trip_through_reopens(
        steps in prop::collection::vec((step_strategy(), prop::bool::weighted(0.08)), 0..60)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        let terminal = journal.terminal_id();
        let mut till = TestTill::new(journal.snapshot().clone());
        let mut records = Vec::new();
        for (step, reopen_after) in &steps {
            records.push(till.append(&mut journal, step));
            if *reopen_after {
                drop(journal);
                journal = Journal::open(dir.path()).unwrap();
                prop_assert_eq!(journal.snapshot(), &till.snapshot);
            }
        }
        drop(journal);
        let journal = Journal::open(dir.path()).unwrap();
        prop_assert_eq!(journal.terminal_id(), terminal);
        prop_assert_eq!(journal.snapshot(), &till.snapshot);
        prop_assert_eq!(journal.last_seq(), records.last().map(|r| r.seq));
        prop_assert_eq!(all_records(&journal), records.clone());
        for record in &records {
            prop_assert_eq!(journal.get(record.seq).unwrap(), Some(record.clone()));
        }
        let newest_commit = records.iter().rev().find(|r| is_commit(r)).cloned();
        prop_assert_eq!(journal.find(None, Direction::Older, is_commit).unwrap(), newest_commit);
    }
}
