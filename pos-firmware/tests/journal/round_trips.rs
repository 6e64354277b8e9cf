//! Round trips and the append guards: what is appended reads back after a reopen, and an append
//! out of order or too large is refused with nothing written.

use super::*;

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
