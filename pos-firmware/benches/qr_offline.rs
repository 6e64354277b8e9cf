//! Benchmark of the offline QR fallback (issue 11): how long the merchant's Enter takes to put
//! the QR on the customer's display, and how long the campus takes to verify and pay a payload.
//!
//! Run: `cargo bench -p pos-firmware --bench qr_offline`
//!
//! Prints:
//! 1. Enter → QR on the display, [`ORDERS`] offline orders of a typed amount: from the Enter key
//!    through the runtime (keymap, core, the durable journal append of the order intent) to the
//!    rendered QR (`QrImage::encode`, the `qrcode` crate, and `draw_customer` on a
//!    [`PanelSize::MEDIUM`] canvas): p50 / p99 / max; next to the floor, the journal's own
//!    durable `Journal::append` of the same intent records into a fresh journal, measured in the
//!    same run on the same disk. Each order is then confirmed with its code (untimed), so no
//!    pending order piles up.
//! 2. The campus's verification per payload, [`PAYLOADS`] payloads: `QrOrder::verify` with the
//!    terminal's key derived per call (`TerminalQrKey::derive`), and `PaymentBackend::pay_qr` in
//!    memory (parse, derive, verify, book, charge): p50 / p99 in µs.
//!
//! Temporary directories are made under the workspace's `target/qr-bench/` (the disk the
//! workspace is on) and removed after.

use keymap::TillKey;
use pos_firmware::core::config::TillConfig;
use pos_firmware::device::panel::render::{draw_customer, Layout, QrImage};
use pos_firmware::device::panel::{Canvas, PanelSize};
use pos_firmware::journal::Journal;
use pos_firmware::runtime::{Input, Now, Output, TillRuntime};
use pos_firmware::sim::cards::{default_cards, SimCards};
use pos_firmware::sim::payments::{sim_terminal_qr_key, PaymentBackend, SIM_QR_MASTER_KEY};
use shared::paycode::VirtualAccount;
use shared::qrpay::{QrOrder, TerminalQrKey};
use shared::record::{JournalRecord, RecordBody};
use shared::{Fen, MachineNumber, Seq, TerminalId, UnixMillis};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Timed offline QR orders (Enter → QR on the display).
const ORDERS: usize = 1_000;
/// Untimed orders before the timed ones (file growth, caches).
const WARM_UP_ORDERS: usize = 20;
/// Timed payloads the campus verifies (and pays).
const PAYLOADS: usize = 10_000;
/// The bench's start (a Monday lunch, 2026-11-23 11:30 +08:00), Unix ms.
const START_MS: i64 = 1_795_923_000_000;
/// Time between two inputs of the bench's merchant.
const STEP_MS: u64 = 100;
/// How long the bench waits after a confirmed sale (its message stays 3 s).
const AFTER_SALE_MS: u64 = 4_000;

struct Bench {
    runtime: TillRuntime,
    cards: SimCards,
    now: Now,
}

impl Bench {
    fn step(&mut self, ms: u64, input: Input) -> Vec<Output> {
        self.now.mono_ms += ms;
        self.now.wall = UnixMillis(self.now.wall.0 + ms as i64);
        self.runtime
            .handle(input, self.now, &mut self.cards)
            .expect("the bench's journal works")
    }

    fn keys(&mut self, keys: &[TillKey]) {
        for key in keys {
            self.step(STEP_MS, Input::Key(*key));
        }
    }
}

fn digits(text: &str) -> Vec<TillKey> {
    text.bytes()
        .filter_map(|b| TillKey::digit(b.wrapping_sub(b'0')))
        .collect()
}

/// p50 / p99 / max in the unit `scale` (1e3: ms, 1e6: µs).
fn summary(mut times: Vec<Duration>, scale: f64) -> (f64, f64, f64) {
    times.sort();
    let at = |q: f64| {
        times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * scale
    };
    (at(0.5), at(0.99), at(1.0))
}

fn bench_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("qr-bench");
    std::fs::create_dir_all(&root).expect("make target/qr-bench");
    root
}

/// Enter → QR on the display; returns the latencies and the intent records journaled.
fn enter_to_qr(dir: &Path) -> (Vec<Duration>, Vec<JournalRecord>) {
    let config = TillConfig {
        demo_qr_master: Some(SIM_QR_MASTER_KEY),
        ..TillConfig::default()
    };
    let now = Now {
        wall: UnixMillis(START_MS),
        mono_ms: 0,
    };
    let runtime = TillRuntime::open(dir, config, now).expect("open the bench's till");
    let key = sim_terminal_qr_key(runtime.journal().terminal_id());
    let cards = SimCards::in_memory(default_cards()).expect("the factory cards");
    let mut bench = Bench {
        runtime,
        cards,
        now,
    };
    // Offline by hand (Clear+7), then let its message go.
    bench.keys(&[TillKey::Clear, TillKey::digit(7).unwrap()]);
    bench.step(AFTER_SALE_MS, Input::Tick);

    let layout = Layout::new(PanelSize::MEDIUM);
    let mut canvas = Canvas::new(PanelSize::MEDIUM);
    let mut times = Vec::with_capacity(ORDERS);
    let mut intents = Vec::with_capacity(ORDERS);
    for order in 0..WARM_UP_ORDERS + ORDERS {
        bench.keys(&digits("8"));
        bench.now.mono_ms += STEP_MS;
        bench.now.wall = UnixMillis(bench.now.wall.0 + STEP_MS as i64);
        let started = Instant::now();
        let outputs = bench
            .runtime
            .handle(Input::Key(TillKey::Enter), bench.now, &mut bench.cards)
            .expect("the bench's journal works");
        let displays = bench.runtime.displays();
        let payload = displays.qr.expect("an offline Enter shows a QR");
        let image = QrImage::encode(payload.as_bytes()).expect("the payload fits a QR code");
        draw_customer(&layout, &displays.customer, Some(&image), &mut canvas);
        let elapsed = started.elapsed();
        black_box(&canvas);
        if order >= WARM_UP_ORDERS {
            times.push(elapsed);
            intents.extend(outputs.into_iter().filter_map(|o| match o {
                Output::Journaled(record) if matches!(record.body, RecordBody::OrderIntent(_)) => {
                    Some(record)
                }
                _ => None,
            }));
        }
        // The app paid it: the merchant types its code (untimed).
        let qr = QrOrder::parse(&payload).expect("the till's payload parses");
        let code = format!("{:06}", qr.confirmation_code(&key));
        let mut keys = digits(&code);
        keys.push(TillKey::Enter);
        bench.keys(&keys);
        bench.step(AFTER_SALE_MS, Input::Tick);
    }
    (times, intents)
}

/// The floor: the same intent records appended durably to a fresh journal.
fn journal_floor(dir: &Path, intents: &[JournalRecord]) -> Vec<Duration> {
    let mut journal = Journal::open(dir).expect("open a fresh journal");
    let mut snapshot = journal.snapshot().clone();
    let mut times = Vec::with_capacity(intents.len());
    for intent in intents {
        let record = JournalRecord {
            seq: snapshot.next_seq,
            ..intent.clone()
        };
        snapshot.next_seq = Seq(record.seq.0 + 1);
        let started = Instant::now();
        journal.append(&record, &snapshot).expect("append");
        times.push(started.elapsed());
    }
    times
}

/// The campus's side: verify (key derived per call) and pay, per payload.
fn campus(payloads: usize) -> (Vec<Duration>, Vec<Duration>) {
    const MASTER: [u8; 32] = SIM_QR_MASTER_KEY;
    let account = VirtualAccount(2_026_000_001);
    let orders: Vec<QrOrder> = (0..payloads as u64)
        .map(|i| QrOrder {
            terminal: TerminalId(0x3bc9_ae7d_ccd8_0000 + i % 200),
            intent: Seq(1 + i),
            amount: Fen::new(800),
            machine: MachineNumber::new(1).expect("machine 1"),
            created_at_s: (START_MS / 1000) as u32,
            valid_for_s: 600,
        })
        .collect();
    let payloads: Vec<String> = orders
        .iter()
        .map(|o| {
            o.payload(&TerminalQrKey::derive(&MASTER, o.terminal))
                .expect("a payload")
        })
        .collect();
    let now = UnixMillis(START_MS + 60_000);
    let mut verify = Vec::with_capacity(payloads.len());
    for payload in &payloads {
        let started = Instant::now();
        let order = QrOrder::parse(payload).expect("parses");
        let key = TerminalQrKey::derive(&MASTER, order.terminal);
        let verified = QrOrder::verify(payload, &key, now);
        verify.push(started.elapsed());
        assert!(black_box(verified).is_ok());
    }
    let mut backend = PaymentBackend::new(
        [7; 32],
        [(account, Fen::new(800 * payloads.len() as u64 + 100))],
    );
    let mut pay = Vec::with_capacity(payloads.len());
    for payload in &payloads {
        let started = Instant::now();
        let paid = backend.pay_qr(payload, account, now);
        pay.push(started.elapsed());
        assert!(black_box(paid).is_ok(), "{paid:?}");
    }
    (verify, pay)
}

fn main() {
    let root = bench_root();
    let till_dir = tempfile::tempdir_in(&root).expect("a temporary directory");
    let floor_dir = tempfile::tempdir_in(&root).expect("a temporary directory");
    println!(
        "qr_offline bench; temporary directories under {}",
        root.display()
    );
    let (times, intents) = enter_to_qr(till_dir.path());
    let floor = journal_floor(floor_dir.path(), &intents);
    let (p50, p99, max) = summary(times, 1e3);
    println!(
        "Enter -> QR on the display (core + durable intent + qrcode + draw_customer {}), {ORDERS} orders: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms",
        PanelSize::MEDIUM
    );
    let (f50, f99, fmax) = summary(floor, 1e3);
    println!(
        "floor: Journal::append of the same {} intent records: p50 {f50:.3} ms, p99 {f99:.3} ms, max {fmax:.3} ms",
        intents.len()
    );
    let (verify, pay) = campus(PAYLOADS);
    let (v50, v99, _) = summary(verify, 1e6);
    let (y50, y99, _) = summary(pay, 1e6);
    println!("campus, {PAYLOADS} payloads: QrOrder::verify (derive per call) p50 {v50:.1} µs, p99 {v99:.1} µs; pay_qr in memory p50 {y50:.1} µs, p99 {y99:.1} µs");
}
