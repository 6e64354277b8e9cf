//! The cost of a sale on flash (counted in a child process: one sled write and one barrier per
//! durable point), and the one crash state that cost allows (an append cut between its record and
//! its snapshot), undone on open only when the high-water mark never vouched for it.

use super::*;

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
            // The child test by its name in this binary (module path included).
            "flash_cost::child_counts_sale_writes",
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
