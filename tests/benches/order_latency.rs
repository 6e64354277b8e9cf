//! Benchmark of a code payment end to end: scan → "交易成功", over the whole real path, next to
//! what the path cannot go below.
//!
//! Run: `cargo bench -p till-tests --bench order_latency` (needs the `mosquitto` binary).
//!
//! In one process: the till ([`TillHost`]: the real runtime, core and sled journal) on a
//! temporary directory with its link server, the real daemon (`sync_daemon::daemon::run` on a
//! tokio runtime of its own) on that link, a real Mosquitto on a free loopback port, and the
//! campus simulator ([`CampusSim`]) whose durable payment back end answers WeChat codes "paid
//! at once". [`ORDERS`] orders, each timed from the scan (the intent journaled, the submit
//! sent) to the merchant's display showing "交易成功" (the answer back, the payment journaled):
//! two durable journal appends on the till, one durable call-log append at the campus, four
//! MQTT hops and two link hops. It prints:
//! 1. scan → success: p50 / p99 / max;
//! 2. the campus back end's own time per call, measured inside the campus side (its handling
//!    of the request, its log append and fdatasync included): p50 / p99 / max;
//! 3. the journal's append floor measured in the same run: [`FLOOR_APPENDS`] durable
//!    `Journal::append`s of the run's own order records (intent and paid, alternately, with the
//!    till's snapshot) into a fresh journal on the same disk;
//! 4. the software added at p99 = scan→success p99 − back end p99, against the target
//!    ([`TARGET_ADDED_P99`]).
//!
//! Temporary directories are made under the workspace's `target/order-bench/` (the disk the
//! workspace is on) unless `ORDER_BENCH_DIR` names another directory.

use keymap::TillKey;
use pos_firmware::core::card::{CardWrite, CardWriteOutcome, IssueOutcome, IssueRefusal};
use pos_firmware::core::config::TillConfig;
use pos_firmware::host::{HostOutput, TillHost};
use pos_firmware::journal::Journal;
use pos_firmware::link::{EventSink, LinkEvent};
use pos_firmware::present::screen_text;
use pos_firmware::runtime::{CardWriter, Input, Now};
use pos_firmware::sim::payments::{wallet_code, WalletBehaviour};
use shared::link::BrokerLink;
use shared::paycode::CodeMethod;
use shared::record::{JournalRecord, RecordBody};
use shared::{Seq, UnixMillis};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};
use till_tests::campus::{CampusOptions, CampusSim};
use till_tests::mosquitto::{Mosquitto, MosquittoOptions};

/// Timed orders.
const ORDERS: usize = 1_000;
/// Untimed orders first (connections, caches, file growth).
const WARMUP_ORDERS: usize = 20;
/// Durable appends of the journal's floor.
const FLOOR_APPENDS: usize = 1_000;
/// The target: the software adds less than this to the back end's own time, at p99.
const TARGET_ADDED_P99: Duration = Duration::from_millis(20);
/// The longest one order may take before the bench gives up (something is broken).
const ORDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the daemon and the campus may take to be connected at the start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The first serial of the bench's wallet codes (one payer per order: no code is used twice).
const FIRST_SERIAL: u32 = 1_000_000;
/// The daemon's MQTT keep-alive (seconds).
const KEEP_ALIVE_S: u64 = 15;

/// No card ever on the reader: the bench pays by code only.
struct NoCard;

impl CardWriter for NoCard {
    fn write_card(&mut self, _write: &CardWrite) -> CardWriteOutcome {
        CardWriteOutcome::Unknown
    }
    fn issue_card(&mut self) -> IssueOutcome {
        IssueOutcome::NotIssued(IssueRefusal::ReaderFault)
    }
}

fn main() {
    let root = bench_root();
    println!(
        "order_latency bench; temporary directories under {}",
        root.display()
    );
    let dir = tempfile::tempdir_in(&root).expect("a temporary directory");
    let broker = Mosquitto::start(&MosquittoOptions {
        tcp_nodelay: std::env::var_os("ORDER_BENCH_BROKER_NAGLE").is_none(),
        ..MosquittoOptions::default()
    });
    let campus = CampusSim::start(CampusOptions::new(broker.port(), dir.path().join("campus")))
        .expect("the campus simulator starts");
    assert!(
        campus.wait_until(CONNECT_TIMEOUT, |c| c.stats().subscribed > 0),
        "the campus subscribed"
    );
    let socket = dir.path().join("link.sock");
    let mut till = BenchTill::open(&dir.path().join("till"), &socket);
    start_daemon(&socket, broker.port());
    till.wait_for_route();

    for n in 0..WARMUP_ORDERS {
        till.order(n);
    }
    let times: Vec<Duration> = (WARMUP_ORDERS..WARMUP_ORDERS + ORDERS)
        .map(|n| till.order(n))
        .collect();
    let back_end_times = campus.payment_call_times();
    let back_end_times = &back_end_times[back_end_times.len().saturating_sub(ORDERS)..];
    let records = till.close();

    let floor_dir = tempfile::tempdir_in(&root).expect("a directory for the floor");
    let floor = journal_floor(floor_dir.path(), &records);

    let scan = Stats::of(&times);
    let back_end = Stats::of(back_end_times);
    let appends = Stats::of(&floor);
    println!();
    println!("{ORDERS} code payments (WeChat, paid at once), scan → 交易成功:");
    scan.print("scan → success");
    back_end.print("campus back end / call");
    appends.print("Journal::append floor");
    println!(
        "  (each order: 2 journal appends on the till = floor p50 {:.3} ms; 1 durable campus \
         call; 4 MQTT and 2 link hops)",
        2.0 * ms(appends.p50)
    );
    let added = scan.p99.saturating_sub(back_end.p99);
    println!(
        "software added at p99 = scan→success p99 {:.3} ms − back end p99 {:.3} ms = {:.3} ms \
         (target < {} ms: {})",
        ms(scan.p99),
        ms(back_end.p99),
        ms(added),
        TARGET_ADDED_P99.as_millis(),
        if added < TARGET_ADDED_P99 {
            "met"
        } else {
            "NOT met"
        }
    );
    drop(campus);
    drop(broker);
}

/// Where temporary directories go: `ORDER_BENCH_DIR`, or the workspace's `target/`.
fn bench_root() -> PathBuf {
    let root = std::env::var_os("ORDER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("order-bench")
        });
    std::fs::create_dir_all(&root).expect("bench directory");
    root.canonicalize().unwrap_or(root)
}

/// Runs the real daemon on a thread of its own until the process ends.
fn start_daemon(socket: &Path, broker_port: u16) {
    let config = sync_daemon::daemon::DaemonConfig {
        socket: socket.to_path_buf(),
        broker: sync_daemon::broker::BrokerConfig {
            host: "127.0.0.1".into(),
            port: broker_port,
            username: None,
            password: None,
            tls_ca: None,
            client_id: None,
            keep_alive_s: KEEP_ALIVE_S,
        },
        limits: sync_daemon::uploader::UploadLimits::default(),
        broker_backoff_cap_ms: 1_000,
        seed: 1,
    };
    std::thread::Builder::new()
        .name("sync-daemon".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the daemon's runtime");
            if let Err(error) = runtime.block_on(sync_daemon::daemon::run(config)) {
                panic!("the daemon stopped: {error}");
            }
        })
        .expect("the daemon's thread starts");
}

/// The till: the host, its link's events, and the clock it is fed.
struct BenchTill {
    host: TillHost,
    events: Receiver<LinkEvent>,
    started: Instant,
    dir: PathBuf,
}

impl BenchTill {
    fn open(dir: &Path, socket: &Path) -> BenchTill {
        let started = Instant::now();
        let now = now_since(started);
        let mut host =
            TillHost::open(dir, TillConfig::default(), now).expect("the till's journal opens");
        let (tx, events) = channel();
        let sink: EventSink = Arc::new(move |event| {
            let _ = tx.send(event);
        });
        host.start_link(socket, sink, now)
            .expect("the link server starts");
        BenchTill {
            host,
            events,
            started,
            dir: dir.to_path_buf(),
        }
    }

    fn now(&self) -> Now {
        now_since(self.started)
    }

    /// Handles the link's events until the daemon is connected and its broker up.
    fn wait_for_route(&mut self) {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let peer = self.host.peer();
            if peer.daemon_connected && peer.broker == Some(BrokerLink::Up) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .expect("the daemon connected and its broker came up in time");
            let now = self.now();
            self.host.handle_link(event, now, &mut NoCard);
        }
    }

    fn key(&mut self, key: TillKey) {
        let now = self.now();
        self.host.handle(Input::Key(key), now, &mut NoCard);
    }

    /// Order `n`: types its amount, Enter, scans its code; returns the time from the scan to
    /// "交易成功" on the merchant's display.
    fn order(&mut self, n: usize) -> Duration {
        let yuan = 1 + n % 30;
        for digit in yuan.to_string().bytes() {
            self.key(TillKey::Digit(digit - b'0'));
        }
        self.key(TillKey::Enter);
        let serial = FIRST_SERIAL + u32::try_from(n).expect("the bench's orders fit u32");
        let code = wallet_code(CodeMethod::WeChat, WalletBehaviour::PaidAtOnce, serial);
        let scanned = Instant::now();
        let now = self.now();
        let mut outputs = self.host.handle(Input::Code(code), now, &mut NoCard);
        loop {
            if shows_success(&outputs) {
                return scanned.elapsed();
            }
            let left = (scanned + ORDER_TIMEOUT).saturating_duration_since(Instant::now());
            let Ok(event) = self.events.recv_timeout(left) else {
                panic!(
                    "order {n} not paid within {ORDER_TIMEOUT:?}; the till shows {}",
                    screen_text(&self.host.displays().merchant)
                );
            };
            let now = self.now();
            outputs = self.host.handle_link(event, now, &mut NoCard);
        }
    }

    /// Stops the till; returns its journal's last order intent and payment.
    fn close(self) -> (JournalRecord, JournalRecord, shared::record::TillSnapshot) {
        self.host.stop();
        let journal = Journal::open(&self.dir).expect("the till's journal opens again");
        let mut intent = None;
        let mut paid = None;
        for record in journal.records_from(Seq::FIRST) {
            let record = record.expect("every record decodes");
            match record.body {
                RecordBody::OrderIntent(_) => intent = Some(record),
                RecordBody::OrderPaid(_) => paid = Some(record),
                _ => {}
            }
        }
        let snapshot = journal.snapshot().clone();
        (
            intent.expect("the run journaled orders"),
            paid.expect("the run journaled payments"),
            snapshot,
        )
    }
}

fn now_since(started: Instant) -> Now {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970");
    Now {
        wall: UnixMillis(i64::try_from(wall.as_millis()).expect("millis fit")),
        mono_ms: u64::try_from(started.elapsed().as_millis()).expect("millis fit"),
    }
}

/// Whether the merchant's display shows the success screen among `outputs`.
fn shows_success(outputs: &[HostOutput]) -> bool {
    outputs.iter().any(|output| {
        matches!(output, HostOutput::Displays(displays)
            if screen_text(&displays.merchant).contains("交易成功"))
    })
}

/// [`FLOOR_APPENDS`] durable appends of the run's own order records (intent, paid, …) with the
/// till's snapshot, into a fresh journal in `dir`; the time of each.
fn journal_floor(
    dir: &Path,
    (intent, paid, snapshot): &(JournalRecord, JournalRecord, shared::record::TillSnapshot),
) -> Vec<Duration> {
    let mut journal = Journal::open(dir).expect("a fresh journal");
    let mut snapshot = snapshot.clone();
    let mut times = Vec::with_capacity(FLOOR_APPENDS);
    for n in 0..FLOOR_APPENDS {
        let seq = journal.snapshot().next_seq;
        let mut record = if n % 2 == 0 {
            intent.clone()
        } else {
            paid.clone()
        };
        record.seq = seq;
        snapshot.next_seq = seq.next().expect("the floor's seqs are small");
        let started = Instant::now();
        journal
            .append(&record, &snapshot)
            .expect("a durable append");
        times.push(started.elapsed());
    }
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Latency statistics of one series.
struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(times: &[Duration]) -> Stats {
        let mut sorted = times.to_vec();
        sorted.sort();
        assert!(!sorted.is_empty(), "something was measured");
        let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
        Stats {
            p50: at(0.50),
            p99: at(0.99),
            max: sorted[sorted.len() - 1],
        }
    }

    fn print(&self, name: &str) {
        println!(
            "  {name:<24} p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        );
    }
}
