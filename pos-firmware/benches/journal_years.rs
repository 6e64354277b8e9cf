//! Benchmark of a journal that lives for years: its size on disk and its open time after 1 M
//! (and, on request, 5 M) card sales, before and after pruning, and after compaction.
//!
//! Run: `cargo bench -p pos-firmware --bench journal_years` (1 M sales), or with
//! `JOURNAL_YEARS_SALES=5000000` for 5 M. Figures go to BENCHMARKS.md.
//!
//! The journal is written on the fast path: [`Journal::append_bulk`], [`CHUNK_RECORDS`] records
//! with one snapshot and one barrier per chunk (the till writes one per record; the records,
//! keys and encodings are the same). A sale is two records (intent, commit), spread evenly over
//! [`SPAN_DAYS`] days. Everything but the last [`UNSENT_RECORDS`] is acknowledged in bulk.
//! Then, timed: `Journal::open` (bounded check), `Journal::verify_full`, pruning at the default
//! retention ([`DEFAULT_RETENTION_DAYS`]), open again, `Journal::compact`, open again; the
//! directory's size (allocated blocks) at each point.
//!
//! The temporary directory is made under the workspace's `target/journal-bench/` (or
//! `JOURNAL_BENCH_DIR`) and removed at the end: 1 M sales take about 1 GB at the peak.

use pos_firmware::journal::{Journal, DEFAULT_RETENTION_DAYS};
use shared::record::{
    CardDebitPlan, JournalRecord, Payer, RecordBody, SaleCommitted, SaleIntent, TillSnapshot,
    TxnTag,
};
use shared::{CardUid, Fen, Seq, UnixMillis};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Sales written when `JOURNAL_YEARS_SALES` is not set.
const DEFAULT_SALES: u64 = 1_000_000;
/// The days the sales are spread over (three years).
const SPAN_DAYS: i64 = 3 * 365;
/// Records per bulk append (one snapshot and one barrier each).
const CHUNK_RECORDS: u64 = 1_000;
/// Records left unacknowledged at the end (a few hours offline).
const UNSENT_RECORDS: u64 = 1_000;
/// The first sale's time (2023-11-14).
const START_MS: i64 = 1_700_000_000_000;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Opens timed per measurement (the median is reported).
const OPEN_REPEATS: usize = 3;

fn main() {
    let sales = std::env::var("JOURNAL_YEARS_SALES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SALES);
    let root = bench_root();
    let dir = root.join(format!("years-{sales}"));
    let _ = fs::remove_dir_all(&dir);
    println!(
        "journal of {sales} card sales over {SPAN_DAYS} days, in {}",
        dir.display()
    );

    let started = Instant::now();
    let now = write_years(&dir, sales);
    println!(
        "  written in {:.1} s ({} records)",
        started.elapsed().as_secs_f64(),
        sales * 2
    );
    report("after the years, before pruning", &dir);

    let journal = Journal::open(&dir).expect("open");
    let started = Instant::now();
    let checked = journal.verify_full().expect("full check");
    println!(
        "  journal-status --full check: {checked} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut journal = journal;
    let started = Instant::now();
    let mut pruned = 0;
    loop {
        let outcome = journal.prune(now, DEFAULT_RETENTION_DAYS).expect("prune");
        pruned += outcome.removed;
        if !outcome.more {
            break;
        }
    }
    println!(
        "  pruned {pruned} records (retention {DEFAULT_RETENTION_DAYS} days) in {:.1} s; kept {} \
         from {:?}",
        started.elapsed().as_secs_f64(),
        journal.last_seq().map_or(0, |s| s.0) - journal.pruned_through().map_or(0, |s| s.0),
        journal.first_seq()
    );
    drop(journal);
    report("after pruning (sled alone)", &dir);

    let journal = Journal::open(&dir).expect("open");
    let started = Instant::now();
    let journal = journal.compact().expect("compact");
    println!("  compacted in {:.1} s", started.elapsed().as_secs_f64());
    drop(journal);
    report("after compaction", &dir);

    fs::remove_dir_all(&dir).expect("remove the bench's journal");
}

/// Writes `sales` sales (intent + commit) and acks all but the last [`UNSENT_RECORDS`]; returns
/// the time just after the last sale.
fn write_years(dir: &Path, sales: u64) -> UnixMillis {
    let mut journal = Journal::open(dir).expect("create the journal");
    let records_total = sales * 2;
    let step_ms = (SPAN_DAYS * DAY_MS) / records_total.max(1) as i64;
    let mut snapshot = journal.snapshot().clone();
    let mut chunk = Vec::with_capacity(CHUNK_RECORDS as usize);
    let mut at = START_MS;
    for n in 1..=records_total {
        let seq = Seq(n);
        at += step_ms;
        chunk.push(record(seq, UnixMillis(at)));
        if n % CHUNK_RECORDS == 0 || n == records_total {
            snapshot.next_seq = Seq(n + 1);
            journal.append_bulk(&chunk, &snapshot).expect("bulk append");
            chunk.clear();
        }
    }
    let acked = records_total.saturating_sub(UNSENT_RECORDS);
    if acked > 0 {
        journal.mark_uploaded(Seq(acked)).expect("ack");
    }
    UnixMillis(at + 1)
}

/// The records of a card sale: odd seqs are intents, even ones commit the intent before them.
fn record(seq: Seq, at: UnixMillis) -> JournalRecord {
    let card = (seq.0 / 2 % 5_000) as u16;
    let uid = CardUid::new(&[0x04, 0xA0, (card >> 8) as u8, card as u8]).expect("4-byte uid");
    let amount = Fen::new(600 + (seq.0 % 7) * 150);
    let body = if seq.0 % 2 == 1 {
        RecordBody::SaleIntent(SaleIntent {
            amount,
            payer: Payer::CampusCard(uid),
            card: CardDebitPlan {
                counter_before: (seq.0 / 2) as u32,
                balance_before: Fen::new(50_000),
                tag: TxnTag(seq.0 as u32),
            },
            fixed_price: false,
        })
    } else {
        RecordBody::SaleCommitted(SaleCommitted {
            intent: Seq(seq.0 - 1),
            amount,
            payer: Payer::CampusCard(uid),
            balance_after: Fen::new(49_000),
            recovered: false,
        })
    };
    JournalRecord {
        seq,
        at,
        machine: TillSnapshot::factory_new().machine,
        body,
    }
}

/// Prints the directory's size and the median `Journal::open` time.
fn report(what: &str, dir: &Path) {
    let mut opens = Vec::new();
    let mut read = 0;
    for _ in 0..OPEN_REPEATS {
        let started = Instant::now();
        let journal = Journal::open(dir).expect("open");
        opens.push(started.elapsed());
        read = journal.open_records_read();
        drop(journal);
    }
    opens.sort();
    println!(
        "  {what}: {:.1} MiB on disk, open {:.1} ms (median of {OPEN_REPEATS}; the check read \
         {read} records)",
        disk_bytes(dir) as f64 / (1024.0 * 1024.0),
        ms(opens[OPEN_REPEATS / 2])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Bytes allocated on disk (st_blocks) under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            total += disk_bytes(&path);
        } else if let Ok(meta) = fs::metadata(&path) {
            total += meta.blocks() * 512;
        }
    }
    total
}

/// Where temporary directories go: `JOURNAL_BENCH_DIR`, or the workspace's `target/`.
fn bench_root() -> PathBuf {
    let root = std::env::var_os("JOURNAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("journal-bench")
        });
    fs::create_dir_all(&root).expect("bench directory");
    root.canonicalize().unwrap_or(root)
}
