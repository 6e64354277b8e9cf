//! The sync path end to end with real processes and a real broker: the till's journal goes up
//! through `sync-daemon` and Mosquitto to the campus simulator, across broker kills, daemon
//! kills, till restarts and duplicated deliveries; at the end the campus store equals the
//! journal exactly and the till's watermark is its last seq. Each test prints its counts.

use shared::{Seq, TerminalId};
use std::time::{Duration, Instant};
use till_tests::campus::{CampusOptions, CampusSim};
use till_tests::fake_till::FakeTill;
use till_tests::mosquitto::{Mosquitto, MosquittoOptions};
use till_tests::sync::{DaemonProcess, DaemonSetup};

/// The longest any test waits for the upload to catch up after its last fault.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits (bounded) until `done`, panicking with `what` and the daemon's log otherwise.
fn wait(what: &str, timeout: Duration, daemon: &DaemonProcess, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; daemon log tail:\n{}",
            daemon.log_tail(40)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The campus store holds exactly the journal: every (terminal, seq) once, same bytes, no gaps.
fn assert_store_equals(campus: &CampusSim, terminal: TerminalId, journal: &[(Seq, Vec<u8>)]) {
    let stored = campus.records(terminal);
    assert_eq!(stored.len(), journal.len(), "record count");
    for ((seq, bytes), (stored_seq, stored_bytes)) in journal.iter().zip(&stored) {
        assert_eq!(seq, stored_seq, "no gaps, no extras");
        assert_eq!(bytes, stored_bytes, "identical bytes at {seq}");
    }
    assert_eq!(campus.conflicts(), 0, "no conflicting duplicates");
}

#[test]
fn daemon_uploads_ten_thousand_records_across_five_broker_kills() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(&MosquittoOptions::default());
    let mut campus_options = CampusOptions::new(broker.port(), dir.path().join("campus"));
    campus_options.duplicate_every_nth_batch = Some(7);
    let campus = CampusSim::start(campus_options).unwrap();
    let socket = dir.path().join("link.sock");
    let till = FakeTill::start(&socket, TerminalId(0x00C0_FFEE));
    let daemon = DaemonProcess::start(&DaemonSetup::new(&socket, broker.port(), dir.path()));
    const RECORDS: u64 = 10_000;
    const BROKER_KILLS: u32 = 5;
    let per_step = RECORDS / u64::from(BROKER_KILLS + 1);
    let mut unacked_at_kills = Vec::new();
    for kill in 0..BROKER_KILLS {
        till.append(per_step);
        let total = per_step * (u64::from(kill) + 1);
        // Kill mid-upload: once half of this step's records are acked (which needs the daemon
        // to be reconnected after the previous kill).
        let target = Seq(total - per_step / 2);
        wait(
            "upload progress before a kill",
            CATCH_UP_TIMEOUT,
            &daemon,
            || till.uploaded_through() >= Some(target),
        );
        broker.restart();
        let acked = till.uploaded_through().map_or(0, |s| s.0);
        unacked_at_kills.push(total - acked);
    }
    till.append(RECORDS - per_step * u64::from(BROKER_KILLS));
    wait("the whole journal acked", CATCH_UP_TIMEOUT, &daemon, || {
        till.uploaded_through() == Some(Seq(RECORDS))
    });
    assert_store_equals(&campus, till.terminal(), &till.journal());
    assert_eq!(till.bad_acks(), 0);
    let stats = campus.stats();
    let reconnects = daemon.broker_connections().saturating_sub(1);
    println!(
        "records {RECORDS}, broker kills {} (records not yet acked at each: {unacked_at_kills:?}), \
         daemon reconnects {reconnects}, campus reconnects {}, duplicates {}, batches {}, {:.1} s",
        broker.kills,
        stats.connections.saturating_sub(1),
        stats.duplicates,
        stats.batches,
        started.elapsed().as_secs_f64()
    );
    assert!(
        reconnects >= BROKER_KILLS as usize,
        "the daemon reconnected after every kill"
    );
    assert!(
        unacked_at_kills.iter().all(|&n| n > 0),
        "every kill hit an upload in progress"
    );
    assert!(
        stats.duplicates > 0,
        "duplicated deliveries happened and were ignored"
    );
}
