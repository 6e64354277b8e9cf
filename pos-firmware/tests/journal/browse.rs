//! Browsing and reading: `find` in both directions with a predicate and its scan limit, and
//! `records_from` from any seq.

use super::*;

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
