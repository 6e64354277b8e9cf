//! A small campus morning in CI (the `campus-morning` load test's rig, `till_tests::load`): a
//! few fake tills with a day of records each, their real daemons started within a short
//! stagger, one broker restart mid-drain; the campus store ends equal to every journal.

use super::*;
use till_tests::load::{run_morning, MorningOptions};
use till_tests::sync::workspace_binary;

#[test]
fn a_small_campus_morning_with_a_broker_restart_ends_with_the_store_equal_to_every_journal() {
    let options = MorningOptions {
        tills: 5,
        records: 200,
        broker_restarts: 1,
        stagger: Duration::from_secs(2),
        seed: 13,
        timeout: CATCH_UP_TIMEOUT,
        daemon_binary: workspace_binary("sync-daemon", "sync-daemon"),
        // Small batches, one in flight: the drain takes many round trips, so the restart
        // (due at half the records acked) lands while records are still unsent.
        daemon_args: [
            "--batch-records=10",
            "--window-batches=1",
            "--broker-backoff-cap-ms=1000",
            "--ack-timeout-ms=3000",
        ]
        .map(String::from)
        .to_vec(),
        progress: false,
    };
    let report = run_morning(&options).expect("the morning drains");
    for line in report.lines() {
        println!("{line}");
    }
    assert_eq!(report.total_records, 1_000);
    assert_eq!(
        report.broker_restarts, 1,
        "the broker was restarted mid-drain"
    );
    assert!(
        report.daemon_broker_connections > options.tills,
        "daemons reconnected after the restart"
    );
    assert!(
        report.store_equals_journals(),
        "the campus store equals every journal: {:?}",
        report.store.mismatches
    );
    assert!(report.fsyncs > 0 && report.memory.broker_kib > 0 && report.memory.daemon_max_kib > 0);
}
