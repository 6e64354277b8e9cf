//! Benchmark of the journal's durable append, against the raw floor measured in the same run.
//!
//! Run: `cargo bench -p pos-firmware --bench journal_append`
//!
//! Prints:
//! 1. `Journal::append` of a realistic `SaleCommitted` record and snapshot, [`APPENDS`] times:
//!    appends per second and mean / p50 / p99 / max latency;
//! 2. the raw floor: writing the same number of bytes into an allocated plain file with `pwrite` + `fdatasync`
//!    each time, on the same disk, and the ratio journal / raw;
//! 3. [`SALES`] card sales as the runtime writes them (card index, intent, card index, commit:
//!    two durable points each): p50 / p99 latency per sale next to the raw floor of the same
//!    bytes with one `pwrite` + `fdatasync` per durable point, and what a sale costs the flash:
//!    barriers (`Journal::barriers`, the fdatasyncs of `db`), sled log writes (each a `pwrite`
//!    that sled 0.34 follows with a `sync_file_range`; counted from `/proc/self/io`'s `syscw`
//!    minus the journal's high-water mark rewrites, one per append) and bytes written;
//! 4. `Journal::open` (which verifies every record) of a journal of [`OPEN_RECORDS`] records,
//!    warm (files in the page cache) and cold (the files' pages dropped with
//!    `posix_fadvise(DONTNEED)`), and its size on disk.
//!
//! The 100,000-record journal is built with the real `Journal::append` when the append rate
//! measured in step 1 says that takes at most [`REAL_BUILD_BUDGET`]; otherwise (slow disk) it is
//! built through sled directly with one flush per [`BULK_FLUSH_EVERY`] records. That bulk path
//! exists only here: same trees, keys and encodings; the open measured is the real one either way.
//!
//! Temporary directories are made under the workspace's `target/journal-bench/` (the disk the
//! workspace is on) unless `JOURNAL_BENCH_DIR` names another directory.

use pos_firmware::journal::{Journal, SLED_CACHE_CAPACITY_BYTES};
use shared::codec::{encode_record, encode_snapshot};
use shared::record::{
    CardDebitPlan, DayTally, JournalRecord, LastSale, MealTally, Payer, RecordBody, SaleCommitted,
    SaleIntent, SalesTally, TillSnapshot, TxnTag,
};
use shared::{CardUid, Fen, LocalDay, MinuteOfDay, Seq, UnixMillis};
use std::fs::{self, File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Timed durable appends (and raw floor writes).
const APPENDS: usize = 2_000;
/// Timed card sales (two durable appends each).
const SALES: usize = 1_000;
/// Untimed appends before the timed ones (file growth, caches).
const WARMUP_APPENDS: usize = 50;
/// Records in the journal whose open time is measured.
const OPEN_RECORDS: u64 = 100_000;
/// The longest the bench spends building that journal with durable appends.
const REAL_BUILD_BUDGET: Duration = Duration::from_secs(40);
/// Records per sled flush while bulk-building that journal (when durable appends are too slow).
const BULK_FLUSH_EVERY: u64 = 10_000;
/// How many times each open is measured (the best and the median are printed).
const OPEN_REPEATS: usize = 3;
/// Mealtime the sales are rung up in (12:00).
const LUNCH_START_MINUTE: u16 = 11 * 60;

fn main() {
    let root = bench_root();
    println!(
        "journal_append bench; temporary directories under {}",
        root.display()
    );
    println!(
        "sled cache capacity {} MiB",
        SLED_CACHE_CAPACITY_BYTES / (1024 * 1024)
    );

    let journal_dir = tempfile::tempdir_in(&root).expect("temporary directory for the journal");
    let (journal_times, bytes_per_append) = bench_journal(journal_dir.path());
    let raw_dir = tempfile::tempdir_in(&root).expect("temporary directory for the raw floor");
    let raw_times = bench_raw(raw_dir.path(), &[bytes_per_append], APPENDS);

    let journal = Stats::of(&journal_times);
    let raw = Stats::of(&raw_times);
    println!();
    println!("{APPENDS} durable appends ({bytes_per_append} bytes of record + snapshot each):");
    journal.print("Journal::append");
    raw.print("raw pwrite+fdatasync");
    println!(
        "ratio journal/raw: mean latency {:.2}x, p50 {:.2}x, p99 {:.2}x, throughput {:.2}x",
        journal.mean.as_secs_f64() / raw.mean.as_secs_f64(),
        journal.p50.as_secs_f64() / raw.p50.as_secs_f64(),
        journal.p99.as_secs_f64() / raw.p99.as_secs_f64(),
        journal.per_second / raw.per_second,
    );
    drop(journal_dir);
    drop(raw_dir);

    let sales_dir = tempfile::tempdir_in(&root).expect("temporary directory for the sales");
    let sales = bench_sales(sales_dir.path());
    let raw_dir = tempfile::tempdir_in(&root).expect("temporary directory for the raw floor");
    let raw_sales = Stats::of(&bench_raw(raw_dir.path(), &sales.point_bytes, SALES));
    let per_sale = Stats::of(&sales.times);
    println!();
    println!(
        "{SALES} card sales (card index, intent, card index, commit; {} + {} bytes of record + \
         snapshot):",
        sales.point_bytes[0], sales.point_bytes[1]
    );
    println!(
        "  per sale: p50 {:.3} ms, p99 {:.3} ms; raw floor (pwrite+fdatasync per durable point) \
         p50 {:.3} ms, p99 {:.3} ms; ratio p50 {:.2}x",
        ms(per_sale.p50),
        ms(per_sale.p99),
        ms(raw_sales.p50),
        ms(raw_sales.p99),
        per_sale.p50.as_secs_f64() / raw_sales.p50.as_secs_f64(),
    );
    println!(
        "  per sale: {:.2} barriers (fdatasync), {:.2} sled log writes (pwrite + sync_file_range), \
         {:.0} bytes written",
        sales.barriers_per_sale, sales.sled_writes_per_sale, sales.bytes_per_sale
    );
    drop(sales_dir);
    drop(raw_dir);

    let open_dir = tempfile::tempdir_in(&root).expect("temporary directory for the open bench");
    let real_build_estimate = journal.mean.mul_f64(OPEN_RECORDS as f64);
    bench_open(open_dir.path(), real_build_estimate <= REAL_BUILD_BUDGET);
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

/// A realistic lunch-time till: a committed card sale with the snapshot after it.
struct Till {
    snapshot: TillSnapshot,
    at: UnixMillis,
}

impl Till {
    fn new(snapshot: TillSnapshot) -> Till {
        Till {
            snapshot,
            at: UnixMillis(1_760_000_000_000),
        }
    }

    /// The intent of the next sale (its snapshot only moves `next_seq`: the journal does not
    /// read the snapshot, only its size matters here).
    fn intent(&mut self) -> (JournalRecord, TillSnapshot) {
        let seq = self.snapshot.next_seq;
        self.at = self.at.saturating_add_millis(3_000);
        let n = seq.0;
        let uid = CardUid::new(&[0x04, 0xA2, (n >> 8) as u8, n as u8]).expect("4-byte uid");
        let record = JournalRecord {
            seq,
            at: self.at,
            machine: self.snapshot.machine,
            body: RecordBody::SaleIntent(SaleIntent {
                amount: Fen::new(800 + (n % 9) * 50),
                payer: Payer::CampusCard(uid),
                card: CardDebitPlan {
                    counter_before: n as u32,
                    balance_before: Fen::new(25_000),
                    tag: TxnTag(n as u32 ^ 0x5A5A_0000),
                },
                fixed_price: false,
            }),
        };
        let mut snapshot = self.snapshot.clone();
        snapshot.next_seq = seq.next().expect("bench seqs are small");
        (record, snapshot)
    }

    fn sale(&mut self) -> (JournalRecord, TillSnapshot) {
        let seq = self.snapshot.next_seq;
        self.at = self.at.saturating_add_millis(7_000);
        let n = seq.0;
        let amount = Fen::new(800 + (n % 9) * 50);
        let uid = CardUid::new(&[0x04, 0xA2, (n >> 8) as u8, n as u8]).expect("4-byte uid");
        let payer = Payer::CampusCard(uid);
        let record = JournalRecord {
            seq,
            at: self.at,
            machine: self.snapshot.machine,
            body: RecordBody::SaleCommitted(SaleCommitted {
                intent: seq.prev().unwrap_or(Seq::FIRST),
                amount,
                payer,
                balance_after: Fen::new(25_000 - (n % 100) * 100),
                recovered: false,
            }),
        };
        let mut snapshot = self.snapshot.clone();
        snapshot.next_seq = seq.next().expect("bench seqs are small");
        let day = LocalDay(20_372);
        let today = snapshot
            .days
            .first()
            .map_or(SalesTally::default(), |t| t.tally);
        snapshot.days = vec![DayTally {
            day,
            tally: today.plus(amount).expect("bench totals are small"),
        }];
        let meal = snapshot
            .meals
            .first()
            .map_or(SalesTally::default(), |m| m.tally);
        snapshot.meals = vec![MealTally {
            day,
            meal_start: MinuteOfDay::new(LUNCH_START_MINUTE).expect("valid minute"),
            tally: meal.plus(amount).expect("bench totals are small"),
        }];
        snapshot.recent_amounts.push(amount);
        if snapshot.recent_amounts.len() > 3 {
            snapshot.recent_amounts.remove(0);
        }
        snapshot.last_sale = Some(LastSale {
            payer,
            amount,
            at: self.at,
        });
        (record, snapshot)
    }
}

/// Times `APPENDS` durable appends; returns the latencies and the bytes one append encodes.
fn bench_journal(dir: &Path) -> (Vec<Duration>, usize) {
    let mut journal = Journal::open(dir).expect("open a new journal");
    let mut till = Till::new(journal.snapshot().clone());
    for _ in 0..WARMUP_APPENDS {
        let (record, snapshot) = till.sale();
        journal.append(&record, &snapshot).expect("append");
        till.snapshot = snapshot;
    }
    let mut times = Vec::with_capacity(APPENDS);
    let mut bytes = 0;
    for _ in 0..APPENDS {
        let (record, snapshot) = till.sale();
        bytes = encode_record(&record).len() + encode_snapshot(&snapshot).len();
        let started = Instant::now();
        journal.append(&record, &snapshot).expect("append");
        times.push(started.elapsed());
        till.snapshot = snapshot;
    }
    (times, bytes)
}

/// What [`bench_sales`] measured.
struct SaleFigures {
    /// Latency of each timed sale (both appends and the card index updates).
    times: Vec<Duration>,
    /// Encoded record + snapshot bytes of the intent and of the commit.
    point_bytes: [usize; 2],
    barriers_per_sale: f64,
    sled_writes_per_sale: f64,
    bytes_per_sale: f64,
}

/// One line of `/proc/self/io` (write system calls `syscw`, bytes written `wchar`).
fn proc_io(field: &str) -> u64 {
    let io = fs::read_to_string("/proc/self/io").expect("/proc/self/io (Linux)");
    io.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(": "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/io"))
}

/// Times `SALES` card sales written the way the runtime writes them.
fn bench_sales(dir: &Path) -> SaleFigures {
    let mut journal = Journal::open(dir).expect("open a new journal");
    let mut till = Till::new(journal.snapshot().clone());
    // The last sale's records, to size the raw floor's durable points after the timed loop.
    let mut last = None;
    let mut sale = |journal: &mut Journal, till: &mut Till| {
        let (intent, after_intent) = till.intent();
        let uid = match intent.body {
            RecordBody::SaleIntent(SaleIntent {
                payer: Payer::CampusCard(uid),
                ..
            }) => uid,
            _ => unreachable!("Till::intent makes card intents"),
        };
        let counter = intent.seq.0 as u32;
        journal
            .remember_card_counter(&uid, counter)
            .expect("card index");
        journal
            .append(&intent, &after_intent)
            .expect("append intent");
        till.snapshot = after_intent;
        let (commit, after_commit) = till.sale();
        journal
            .remember_card_counter(&uid, counter + 1)
            .expect("card index");
        journal
            .add_card_spent(&uid, LocalDay(20_372), Fen::new(800))
            .expect("card index");
        journal
            .append(&commit, &after_commit)
            .expect("append commit");
        till.snapshot = after_commit;
        last = Some((intent, commit));
    };
    for _ in 0..WARMUP_APPENDS {
        sale(&mut journal, &mut till);
    }
    let (syscw, wchar, barriers) = (proc_io("syscw"), proc_io("wchar"), journal.barriers());
    let mut times = Vec::with_capacity(SALES);
    for _ in 0..SALES {
        let started = Instant::now();
        sale(&mut journal, &mut till);
        times.push(started.elapsed());
    }
    let (intent, commit) = last.expect("the sales ran");
    let point_bytes = [
        encode_record(&intent).len() + encode_snapshot(&till.snapshot).len(),
        encode_record(&commit).len() + encode_snapshot(&till.snapshot).len(),
    ];
    let sales = SALES as f64;
    // One high-water mark rewrite (a 32-byte pwrite, never synced) per append, two per sale.
    let mark_writes = 2.0 * sales;
    SaleFigures {
        times,
        point_bytes,
        barriers_per_sale: (journal.barriers() - barriers) as f64 / sales,
        sled_writes_per_sale: ((proc_io("syscw") - syscw) as f64 - mark_writes) / sales,
        bytes_per_sale: (proc_io("wchar") - wchar) as f64 / sales,
    }
}

/// The floor: `units` times, for each of `sizes`, write that many bytes to a plain file and
/// fdatasync it; one time per unit. The file is allocated and synced first and then written in
/// place, as sled writes into its preallocated log segments: an appending file would make every
/// fdatasync also commit the file's new size, a cost the journal does not pay per record.
fn bench_raw(dir: &Path, sizes: &[usize], units: usize) -> Vec<Duration> {
    use std::os::unix::fs::FileExt;
    let payloads: Vec<Vec<u8>> = sizes.iter().map(|&bytes| vec![0xA5u8; bytes]).collect();
    let unit_bytes: usize = sizes.iter().sum();
    let total_bytes = unit_bytes * (WARMUP_APPENDS + units);
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("raw.log"))
        .expect("raw file");
    file.write_all_at(&vec![0u8; total_bytes], 0)
        .expect("raw preallocation");
    file.sync_all().expect("raw preallocation sync");
    let mut offset = 0u64;
    let mut unit = || {
        for payload in &payloads {
            file.write_all_at(payload, offset).expect("raw write");
            file.sync_data().expect("raw fdatasync");
            offset += payload.len() as u64;
        }
    };
    for _ in 0..WARMUP_APPENDS {
        unit();
    }
    let mut times = Vec::with_capacity(units);
    for _ in 0..units {
        let started = Instant::now();
        unit();
        times.push(started.elapsed());
    }
    times
}

/// Builds a journal of `OPEN_RECORDS` records (with durable appends if `durable`, else in bulk)
/// and times its open.
fn bench_open(dir: &Path, durable: bool) {
    let built = Instant::now();
    if durable {
        build_durably(dir);
    } else {
        build_in_bulk(dir);
    }
    let build_time = built.elapsed();
    let how = if durable {
        "built with Journal::append"
    } else {
        "bulk-built through sled: the disk is too slow for durable appends"
    };

    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..OPEN_REPEATS {
        let started = Instant::now();
        let journal = Journal::open(dir).expect("open the 100k journal");
        warm.push(started.elapsed());
        assert_eq!(journal.last_seq(), Some(Seq(OPEN_RECORDS)));
        drop(journal);
        drop_page_cache(dir);
        let started = Instant::now();
        let journal = Journal::open(dir).expect("open the 100k journal");
        cold.push(started.elapsed());
        drop(journal);
    }
    warm.sort();
    cold.sort();
    println!();
    println!(
        "open of a {OPEN_RECORDS}-record journal ({how} in {:.1} s), full verification scan:",
        build_time.as_secs_f64()
    );
    println!(
        "  warm (page cache): best {:.1} ms, median {:.1} ms",
        ms(warm[0]),
        ms(warm[OPEN_REPEATS / 2])
    );
    println!(
        "  cold (posix_fadvise DONTNEED on every file first): best {:.1} ms, median {:.1} ms",
        ms(cold[0]),
        ms(cold[OPEN_REPEATS / 2])
    );
    let (files, bytes) = disk_usage(dir);
    println!(
        "  on disk: {:.2} MiB allocated in {files} files ({:.0} bytes per record)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / OPEN_RECORDS as f64
    );
}

/// `OPEN_RECORDS` durable appends through the real API.
fn build_durably(dir: &Path) {
    let mut journal = Journal::open(dir).expect("create the journal");
    let mut till = Till::new(journal.snapshot().clone());
    for _ in 0..OPEN_RECORDS {
        let (record, snapshot) = till.sale();
        journal.append(&record, &snapshot).expect("append");
        till.snapshot = snapshot;
    }
}

/// Bench-only bulk path: the same trees, keys and encodings as `Journal::append`, but one flush
/// per `BULK_FLUSH_EVERY` records instead of a flush and fdatasync per record.
fn build_in_bulk(dir: &Path) {
    // Create the journal (meta, terminal id, high-water mark) through the real API.
    let first_snapshot = Journal::open(dir)
        .expect("create the journal")
        .snapshot()
        .clone();
    let db = open_sled_waiting(dir);
    let records = db.open_tree("records").expect("records tree");
    let meta = db.open_tree("meta").expect("meta tree");
    let mut till = Till::new(first_snapshot);
    for n in 1..=OPEN_RECORDS {
        let (record, snapshot) = till.sale();
        records
            .insert(record.seq.to_key(), encode_record(&record))
            .expect("insert record");
        till.snapshot = snapshot;
        if n % BULK_FLUSH_EVERY == 0 || n == OPEN_RECORDS {
            meta.insert("snapshot", encode_snapshot(&till.snapshot))
                .expect("insert snapshot");
            db.flush().expect("flush");
        }
    }
}

/// Opens sled with the journal's settings; retries while the journal's own `Db`, just dropped,
/// still holds the lock (sled releases it asynchronously).
fn open_sled_waiting(dir: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
            .flush_every_ms(None)
            .open();
        match opened {
            Ok(db) => return db,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for sled's lock: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open sled for the bulk build: {e}"),
        }
    }
}

/// Asks the kernel to drop the cached pages of every file in `dir`, so the next open reads disk.
fn drop_page_cache(dir: &Path) {
    for path in files_in(dir) {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        // SAFETY: posix_fadvise only reads the descriptor number, which `file` owns for the
        // duration of the call; offset 0 and length 0 mean "the whole file".
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            eprintln!("posix_fadvise({}) failed: {rc}", path.display());
        }
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_in(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Number of files and bytes allocated on disk (st_blocks) under `dir`.
fn disk_usage(dir: &Path) -> (usize, u64) {
    use std::os::unix::fs::MetadataExt;
    let files = files_in(dir);
    let bytes = files
        .iter()
        .filter_map(|path| fs::metadata(path).ok())
        .map(|meta| meta.blocks() * 512)
        .sum();
    (files.len(), bytes)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Latency statistics of one series.
struct Stats {
    per_second: f64,
    mean: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(times: &[Duration]) -> Stats {
        let mut sorted = times.to_vec();
        sorted.sort();
        let total: Duration = sorted.iter().sum();
        let count = sorted.len().max(1);
        let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
        Stats {
            per_second: count as f64 / total.as_secs_f64(),
            mean: total / count as u32,
            p50: at(0.50),
            p99: at(0.99),
            max: sorted[sorted.len() - 1],
        }
    }

    fn print(&self, name: &str) {
        println!(
            "  {name:<22} {:>8.0} appends/s   mean {:>7.3} ms   p50 {:>7.3} ms   p99 {:>7.3} ms   max {:>7.3} ms",
            self.per_second,
            ms(self.mean),
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        );
    }
}
