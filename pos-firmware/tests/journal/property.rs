//! Property: any sequence of records, with reopens anywhere, reads back exactly.

use super::*;

pub(crate) fn step_strategy() -> impl Strategy<Value = Step> {
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
        prop_assert_eq!(common::journal::records(&journal), records.clone());
        for record in &records {
            prop_assert_eq!(journal.get(record.seq).unwrap(), Some(record.clone()));
        }
        let newest_commit = records.iter().rev().find(|r| is_commit(r)).cloned();
        prop_assert_eq!(journal.find(None, Direction::Older, is_commit).unwrap(), newest_commit);
    }
}
