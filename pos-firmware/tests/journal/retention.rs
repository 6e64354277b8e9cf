//! Retention: pruning acknowledged old records (never an unsent one, never one an unresolved
//! intent needs), contiguity and reads after it, a prune a crash cut, compaction into a fresh
//! database cut at every step, and the bounded check at open.

use super::*;
use pos_firmware::journal::{prune_bound, OPEN_CHECK_TAIL_RECORDS};
use std::path::Path;

/// A day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// A journal of `steps` written in bulk (one barrier), like years of sales loaded at once.
fn bulk_journal(dir: &Path, steps: &[Step]) -> (Journal, TestTill, Vec<JournalRecord>) {
    let mut journal = Journal::open(dir).expect("open a new journal");
    let mut till = TestTill::new(journal.snapshot().clone());
    let mut records = Vec::new();
    for step in steps {
        let (record, snapshot) = till.next(step);
        till.snapshot = snapshot;
        records.push(record);
    }
    journal
        .append_bulk(&records, &till.snapshot)
        .expect("bulk append");
    (journal, till, records)
}

/// The moment at which every record before `record` is older than `days` days.
fn now_when_older(record: &JournalRecord, days: u32) -> UnixMillis {
    UnixMillis(record.at.0 + i64::from(days) * DAY_MS)
}

#[test]
fn pruning_removes_acknowledged_records_older_than_the_retention_and_keeps_the_rest_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, till, records) = bulk_journal(dir.path(), &lunch_steps(300));
    let terminal = journal.terminal_id();
    journal.mark_uploaded(Seq(250)).unwrap();
    // Records 1..=199 are older than 90 days at this moment; 200 on are not.
    let now = now_when_older(&records[199], 90);

    let outcome = journal.prune(now, 90).unwrap();

    assert_eq!(outcome.removed, 199);
    assert_eq!(outcome.pruned_through, Some(Seq(199)));
    assert_eq!(journal.first_seq(), Some(Seq(200)));
    assert_eq!(journal.get(Seq(199)).unwrap(), None);
    assert_eq!(journal.get(Seq(200)).unwrap().as_ref(), Some(&records[199]));
    assert_holds(&journal, terminal, &records[199..], &till.snapshot);
    // The daemon's fetch after the watermark is untouched; one below the mark is refused.
    let fetched = journal.reader().fetch(Some(Seq(250)), 100, 100).unwrap();
    assert_eq!(fetched.first().map(|r| r.seq), Some(Seq(251)));
    assert_eq!(fetched.len(), 50);
    assert!(matches!(
        journal.reader().fetch(None, 10, 10),
        Err(JournalError::Pruned {
            seq: Seq(1),
            pruned_through: Seq(199)
        })
    ));
    // Browsing stops at the first kept record.
    let oldest = journal.find(None, Direction::Newer, |_| true).unwrap();
    assert_eq!(oldest.map(|r| r.seq), Some(Seq(200)));
    assert_eq!(
        journal
            .find(Some(Seq(200)), Direction::Older, |_| true)
            .unwrap(),
        None
    );

    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.pruned_through(), Some(Seq(199)));
    assert_holds(&journal, terminal, &records[199..], &till.snapshot);
    assert_eq!(journal.verify_full().unwrap(), 101);
}

#[test]
fn nothing_the_campus_server_has_not_acknowledged_is_pruned_however_old() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _, records) = bulk_journal(dir.path(), &lunch_steps(100));
    let far_future = now_when_older(records.last().unwrap(), 10_000);

    assert_eq!(journal.prune(far_future, 1).unwrap().removed, 0);
    journal.mark_uploaded(Seq(40)).unwrap();
    assert_eq!(
        journal.prune(far_future, 1).unwrap().pruned_through,
        Some(Seq(40))
    );
    assert_eq!(journal.get(Seq(41)).unwrap().as_ref(), Some(&records[40]));
}

#[test]
fn an_unresolved_intent_keeps_its_record_and_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut steps = lunch_steps(50);
    // An intent that never resolves, then more records (the mode changes resolve nothing).
    steps.push(Step::Intent {
        amount_fen: 700,
        card: 9,
    });
    steps.extend((0..50).map(|i| {
        Step::Mode(if i % 2 == 0 {
            ModeChange::OfflineOn
        } else {
            ModeChange::OfflineOff
        })
    }));
    let (mut journal, _, records) = bulk_journal(dir.path(), &steps);
    let pending = journal.snapshot().pending.first().unwrap().intent;
    journal.mark_uploaded(journal.last_seq().unwrap()).unwrap();

    journal
        .prune(now_when_older(records.last().unwrap(), 10_000), 1)
        .unwrap();

    assert!(journal.pruned_through().unwrap() < pending);
    assert_eq!(
        journal.get(pending).unwrap().as_ref(),
        Some(&records[pending.0 as usize - 1])
    );
}

#[test]
fn the_newest_record_is_never_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _, records) = bulk_journal(dir.path(), &[Step::Mode(ModeChange::OfflineOn)]);
    journal.mark_uploaded(Seq(1)).unwrap();
    journal
        .prune(now_when_older(&records[0], 10_000), 1)
        .unwrap();
    assert_eq!(journal.first_seq(), Some(Seq(1)));
}

#[test]
fn a_prune_cut_after_its_mark_leaves_records_every_reader_skips_and_the_next_prune_removes() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, till, records) = bulk_journal(dir.path(), &lunch_steps(100));
    let terminal = journal.terminal_id();
    journal.mark_uploaded(Seq(100)).unwrap();
    drop(journal);
    // The mark is durable, the removal never happened.
    let db = raw_sled(dir.path());
    db.open_tree("meta")
        .unwrap()
        .insert("pruned_through", &30u64.to_be_bytes())
        .unwrap();
    db.flush().unwrap();
    drop(db);

    let mut journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.first_seq(), Some(Seq(31)));
    assert_holds(&journal, terminal, &records[30..], &till.snapshot);
    let oldest = journal.find(None, Direction::Newer, |_| true).unwrap();
    assert_eq!(oldest.map(|r| r.seq), Some(Seq(31)));

    let outcome = journal.prune(records[0].at, 1).unwrap();
    assert_eq!(outcome.removed, 30, "the leftovers of the cut prune");
    assert_eq!(outcome.pruned_through, Some(Seq(30)));
}

#[test]
fn compaction_keeps_every_kept_record_the_watermark_and_the_card_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, till, records) = bulk_journal(dir.path(), &lunch_steps(2_000));
    let terminal = journal.terminal_id();
    let card = CardUid::new(&[0x04, 0xC0, 0xFF, 0x01]).unwrap();
    journal.remember_card_counter(&card, 77).unwrap();
    journal.mark_uploaded(Seq(1_900)).unwrap();
    journal
        .prune(now_when_older(&records[1_500], 1), 1)
        .unwrap();
    assert_eq!(journal.pruned_through(), Some(Seq(1_500)));

    let journal = journal.compact().unwrap();

    assert_holds(&journal, terminal, &records[1_500..], &till.snapshot);
    assert_eq!(journal.uploaded_through(), Some(Seq(1_900)));
    assert_eq!(journal.card_counter(&card).unwrap(), Some(77));
    assert!(!journal.compaction_due());
    for leftover in ["compact.new", "compact.old", "compact.swap"] {
        assert!(
            !dir.path().join(leftover).exists(),
            "{leftover} left behind"
        );
    }
}

#[test]
fn a_compaction_cut_at_any_step_opens_as_the_old_or_the_new_journal_complete() {
    let mut completed_at = None;
    for cut in 1..100 {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, till, records) = bulk_journal(dir.path(), &lunch_steps(400));
        let terminal = journal.terminal_id();
        journal.mark_uploaded(Seq(380)).unwrap();
        journal.prune(now_when_older(&records[300], 1), 1).unwrap();

        if let Some(journal) = journal.compact_stopping_after(cut).unwrap() {
            assert_holds(&journal, terminal, &records[300..], &till.snapshot);
            completed_at = Some(cut);
            break;
        }
        // The power went after `cut` steps: the next open finishes or discards the compaction.
        let journal = Journal::open(dir.path())
            .unwrap_or_else(|e| panic!("open after a cut at step {cut}: {e}"));
        assert_holds(&journal, terminal, &records[300..], &till.snapshot);
        assert_eq!(
            journal.uploaded_through(),
            Some(Seq(380)),
            "cut at step {cut}"
        );
        assert_eq!(journal.verify_full().unwrap(), 100, "cut at step {cut}");
        for leftover in ["compact.new", "compact.old", "compact.swap"] {
            assert!(
                !dir.path().join(leftover).exists(),
                "{leftover} after a cut at {cut}"
            );
        }
        drop(journal);
        // And it stays so.
        let journal = Journal::open(dir.path()).unwrap();
        assert_holds(&journal, terminal, &records[300..], &till.snapshot);
    }
    // copy, sync, marker, the moves (at least conf, db, blobs and one snap out and in), done.
    assert!(completed_at.is_some_and(|n| n > 8), "{completed_at:?}");
}

#[test]
fn the_check_at_open_reads_a_bounded_number_of_records_and_the_full_check_reads_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = bulk_journal(dir.path(), &lunch_steps(5_000));
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert!(
        journal.open_records_read() <= OPEN_CHECK_TAIL_RECORDS + 2,
        "{} records read",
        journal.open_records_read()
    );
    assert_eq!(journal.verify_full().unwrap(), 5_000);
}

#[test]
fn a_gap_before_the_tail_is_found_by_the_full_check() {
    let dir = tempfile::tempdir().unwrap();
    drop(bulk_journal(dir.path(), &lunch_steps(3_000)));
    let db = raw_sled(dir.path());
    db.open_tree("records")
        .unwrap()
        .remove(Seq(10).to_key())
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let journal = Journal::open(dir.path()).unwrap();
    match journal.verify_full() {
        Err(JournalError::Corrupt { detail, .. }) => assert!(detail.contains("gap"), "{detail}"),
        other => panic!("expected a gap, got {other:?}"),
    }
}

#[test]
fn the_till_prunes_and_compacts_its_journal_when_it_starts() {
    use pos_firmware::core::config::TillConfig;
    use pos_firmware::journal::COMPACT_AFTER_PRUNED_RECORDS;
    use pos_firmware::runtime::{Now, TillRuntime};

    let dir = tempfile::tempdir().unwrap();
    let count = COMPACT_AFTER_PRUNED_RECORDS as usize + 2_000;
    let (journal, till, records) = bulk_journal(dir.path(), &lunch_steps(count));
    let terminal = journal.terminal_id();
    journal.mark_uploaded(journal.last_seq().unwrap()).unwrap();
    drop(journal);
    let config = TillConfig {
        journal_retention_days: 30,
        ..TillConfig::default()
    };
    // Everything before record 21,001 is more than 30 days old now.
    let now = Now {
        wall: now_when_older(&records[21_000], 30),
        mono_ms: 0,
    };

    let runtime = TillRuntime::open(dir.path(), config, now).unwrap();

    assert_eq!(runtime.journal().pruned_through(), Some(Seq(21_000)));
    assert!(!runtime.journal().compaction_due(), "compacted at start-up");
    assert_holds(
        runtime.journal(),
        terminal,
        &records[21_000..],
        &till.snapshot,
    );
}

#[test]
fn journal_status_full_checks_every_kept_record_and_names_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _, records) = bulk_journal(dir.path(), &lunch_steps(3_000));
    journal.mark_uploaded(Seq(2_000)).unwrap();
    journal
        .prune(now_when_older(&records[1_000], 1), 1)
        .unwrap();
    drop(journal);
    let status = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pos-firmware"))
            .args(["journal-status", "--full", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };

    let output = status();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.trim().starts_with("unsent=1000 ")
            && stdout
                .trim()
                .ends_with(" first=1001 last=3000 checked=2000"),
        "{stdout}"
    );

    let db = raw_sled(dir.path());
    db.open_tree("records")
        .unwrap()
        .remove(Seq(1_500).to_key())
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let output = status();
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("expected record #1500"), "{stderr}");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pruning_never_drops_an_unacknowledged_record_or_one_a_pending_intent_needs(
        steps in prop::collection::vec(property::step_strategy(), 1..120),
        acked in 0usize..130,
        age_at in 0usize..130,
        days in 0u32..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, till, records) = bulk_journal(dir.path(), &steps);
        let terminal = journal.terminal_id();
        let acked = acked.min(records.len());
        if acked > 0 {
            journal.mark_uploaded(Seq(acked as u64)).unwrap();
        }
        let now = now_when_older(&records[age_at.min(records.len() - 1)], days);
        let bound = prune_bound(journal.snapshot(), journal.uploaded_through());

        journal.prune(now, days).unwrap();

        let pruned = journal.pruned_through().map_or(0, |s| s.0);
        prop_assert!(pruned <= acked as u64);
        prop_assert!(pruned <= bound);
        for pending in common::journal::pending_intents(&journal) {
            prop_assert!(pending.0 > pruned, "pending intent {} pruned", pending);
        }
        let cutoff = now.0 - i64::from(days) * DAY_MS;
        prop_assert!(records[..pruned as usize].iter().all(|r| r.at.0 < cutoff));
        drop(journal);
        let journal = Journal::open(dir.path()).unwrap();
        assert_holds(&journal, terminal, &records[pruned as usize..], &till.snapshot);
    }
}
