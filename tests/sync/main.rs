//! The sync path end to end with real processes and a real broker: the till's journal goes up
//! through `sync-daemon` and Mosquitto to the campus simulator, across broker kills, daemon
//! kills, till restarts and duplicated deliveries; at the end the campus store equals the
//! journal exactly and the till's watermark is its last seq. Code-payment orders take the same
//! path to the campus's payment back end and back, charged once whatever fails. Each test
//! prints its counts.
//!
//! Files: `real_till.rs` (the real firmware on the link), `uploads.rs`, `broker_config.rs`,
//! `downlinks.rs`, `restore.rs`, `orders.rs`, `orders_real_till.rs` (the real till's orders,
//! killed at every step), `morning.rs` (a small campus morning), `lunch.rs` (the network drops
//! in the middle of lunch: card, offline virtual-card and offline QR sales, settled once it
//! returns); the rigs they run (Mosquitto, the campus simulator, the daemon and the fake till)
//! are the till-tests library (`tests/src/`).

mod broker_config;
mod downlinks;
mod lunch;
mod morning;
mod orders;
mod orders_real_till;
mod real_till;
mod restore;
mod uploads;

use shared::{Seq, TerminalId};
use std::time::{Duration, Instant};
use till_tests::campus::{CampusOptions, CampusSim};
use till_tests::fake_till::FakeTill;
use till_tests::mosquitto::{make_test_pki, write_password_file, Mosquitto, MosquittoOptions};
use till_tests::sync::{DaemonProcess, DaemonSetup};

use real_till::*;

/// The longest any test waits for the upload to catch up after its last fault.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the campus simulator and waits (bounded) until it is subscribed to the uploads, so
/// a test's first batches are not published before anyone listens.
fn campus_up(options: CampusOptions) -> CampusSim {
    let campus = CampusSim::start(options).expect("the campus simulator starts");
    assert!(
        campus.wait_until(Duration::from_secs(10), |c| c.stats().subscribed > 0),
        "the campus server subscribed to the uploads"
    );
    campus
}

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

fn campus_config(version: u64) -> shared::campus::CampusConfig {
    use shared::campus::{CampusConfig, MealPeriodSpec, OfflineLimits};
    use shared::{Fen, MinuteOfDay};
    CampusConfig {
        version,
        merchant_name: "一食堂".parse().unwrap(),
        meal_periods: vec![MealPeriodSpec {
            name: "午餐".parse().unwrap(),
            start: MinuteOfDay::from_hm(10, 0).unwrap(),
            end: MinuteOfDay::from_hm(14, 0).unwrap(),
        }],
        max_sale: Fen::from_yuan(200),
        fixed_price_presets: vec![Fen::from_yuan(8)],
        offline: OfflineLimits {
            max_sale: Fen::from_yuan(20),
            max_per_card_per_day: Fen::from_yuan(100),
            max_unsent_total: Fen::from_yuan(5_000),
            max_unsent_age_ms: 86_400_000,
            max_blacklist_age_ms: 86_400_000,
        },
        payments: None,
    }
}

fn repo_file(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The terminal id the daemon logged on its first till connection.
fn till_terminal(daemon: &DaemonProcess) -> TerminalId {
    let mut found = None;
    wait(
        "the daemon connected to the till",
        CATCH_UP_TIMEOUT,
        daemon,
        || {
            found = daemon
                .log_text()
                .lines()
                .find(|line| line.contains("till connected"))
                .and_then(|line| line.split("terminal=").nth(1))
                .and_then(|rest| rest.get(..16))
                .and_then(shared::mqtt::parse_terminal);
            found.is_some()
        },
    );
    found.expect("found above")
}
