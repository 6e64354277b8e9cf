//! A campus morning (issue 13 item 2): one Mosquitto, the campus simulator, and N fake tills
//! each with a day of sales behind it ([`day::day_of_sales`]), each drained by a real
//! `sync-daemon` process; the daemons start at random times within a stagger window, as tills
//! do when the network comes back. Optionally the broker is SIGKILLed and started again on the
//! same port (persistence on, as in the sync tests) K times, spread over the drain by
//! progress. [`run_morning`] measures what the report needs (time until every till's unsent
//! count is 0, records and fsyncs per second, memory from `/proc`) and checks that the campus
//! store equals every journal, in memory and on disk. The `campus-morning` binary prints it;
//! `tests/sync/morning.rs` runs a small one in CI.

pub mod day;
pub mod fleet;

use crate::campus::{CampusOptions, CampusSim};
use crate::campus_store::{log_entry_bytes, CampusStore};
use crate::fake_till::FakeTill;
use crate::mosquitto::{Mosquitto, MosquittoOptions};
use day::{day_of_sales, SplitMix};
use fleet::{machine_limits, own_rss_kib, rss_kib, FleetDaemon, MachineLimits};
use shared::{Seq, TerminalId};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The first fake till's terminal id (the others follow it).
const FIRST_TERMINAL: u64 = 0x00CA_0000_0000;
/// How often the rig looks at the tills' watermarks (starts daemons, triggers restarts).
const PROGRESS_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often memory is sampled from `/proc`.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(500);
/// How often a progress line is printed when asked for.
const PROGRESS_PRINT_INTERVAL: Duration = Duration::from_secs(5);
/// The longest the campus simulator may take to subscribe.
const CAMPUS_SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines of each undrained till's daemon shown when the run times out.
const FAILURE_LOG_LINES: usize = 15;
/// At most this many undrained tills are described when the run times out.
const FAILURE_TILLS_SHOWN: usize = 5;

/// What to run.
#[derive(Debug, Clone)]
pub struct MorningOptions {
    pub tills: usize,
    /// Journal records behind each till (its day offline).
    pub records: u64,
    /// Broker SIGKILL + start on the same port during the drain.
    pub broker_restarts: u32,
    /// Every daemon starts at a random point within this window after the first.
    pub stagger: Duration,
    pub seed: u64,
    /// The run fails when the drain takes longer.
    pub timeout: Duration,
    pub daemon_binary: PathBuf,
    /// Passed to every daemon (none: the daemon's production defaults).
    pub daemon_args: Vec<String>,
    /// Print a progress line every [`PROGRESS_PRINT_INTERVAL`].
    pub progress: bool,
}

/// Peak resident memory seen during the run, KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryPeaks {
    pub broker_kib: u64,
    /// The largest sum over all running daemons at one sample.
    pub daemons_sum_kib: u64,
    pub daemon_max_kib: u64,
    /// The harness process: campus simulator and fake tills.
    pub harness_kib: u64,
}

/// Whether the campus store equals the journals.
#[derive(Debug, Clone, Default)]
pub struct StoreCheck {
    /// Tills whose records the simulator's store holds exactly (every seq once, same bytes).
    pub tills_equal: usize,
    /// Tills whose records the store reopened from disk holds exactly.
    pub tills_equal_on_disk: usize,
    /// `records.log`'s size is exactly one entry per journal record (nothing stored twice).
    pub log_size_exact: bool,
    pub conflicts: u64,
    /// What differed (at most a few lines).
    pub mismatches: Vec<String>,
}

/// What a morning measured.
#[derive(Debug, Clone)]
pub struct MorningReport {
    pub limits: MachineLimits,
    pub tills: usize,
    pub records_per_till: u64,
    pub total_records: u64,
    /// From the first daemon start: the last one started, every till welcomed a daemon, every
    /// till's unsent count was 0.
    pub last_daemon_started: Duration,
    pub all_connected: Duration,
    pub drained: Duration,
    pub fsyncs: u64,
    pub batches: u64,
    pub duplicates: u64,
    pub broker_restarts: u32,
    /// "broker up" lines over all daemon logs (first connections and reconnects).
    pub daemon_broker_connections: usize,
    pub memory: MemoryPeaks,
    pub store: StoreCheck,
}

impl MorningReport {
    pub fn records_per_second(&self) -> f64 {
        self.total_records as f64 / self.drained.as_secs_f64().max(f64::EPSILON)
    }

    pub fn fsyncs_per_second(&self) -> f64 {
        self.fsyncs as f64 / self.drained.as_secs_f64().max(f64::EPSILON)
    }

    /// Every till's records stored exactly, in memory and on disk, once, without conflicts.
    pub fn store_equals_journals(&self) -> bool {
        self.store.tills_equal == self.tills
            && self.store.tills_equal_on_disk == self.tills
            && self.store.log_size_exact
            && self.store.conflicts == 0
    }

    /// The report as printed (and copied into BENCHMARKS.md).
    pub fn lines(&self) -> Vec<String> {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let l = &self.limits;
        vec![
            format!(
                "machine: {} CPUs, {} MiB memory, open files (soft) {}, processes (soft) {}",
                l.cpus, l.memory_mib, l.open_files, l.processes
            ),
            format!(
                "tills {} × {} records = {} records; broker restarts {}",
                self.tills, self.records_per_till, self.total_records, self.broker_restarts
            ),
            format!(
                "last daemon started at {:.1} s; every till connected at {:.1} s; every \
                 till's unsent count 0 at {:.1} s",
                self.last_daemon_started.as_secs_f64(),
                self.all_connected.as_secs_f64(),
                self.drained.as_secs_f64()
            ),
            format!(
                "stored {:.0} records/s; campus store fsyncs {} ({:.0}/s), batches {}, \
                 duplicates {}; daemon broker connections {}",
                self.records_per_second(),
                self.fsyncs,
                self.fsyncs_per_second(),
                self.batches,
                self.duplicates,
                self.daemon_broker_connections
            ),
            format!(
                "memory (peak RSS): broker {:.1} MiB; daemons sum {:.1} MiB, max {:.1} MiB; \
                 harness (campus + fake tills) {:.1} MiB",
                mib(self.memory.broker_kib),
                mib(self.memory.daemons_sum_kib),
                mib(self.memory.daemon_max_kib),
                mib(self.memory.harness_kib)
            ),
            format!(
                "store equals every journal: {} ({} of {} tills exact in memory, {} on disk, \
                 log size exact: {}, conflicts {})",
                if self.store_equals_journals() {
                    "yes"
                } else {
                    "NO"
                },
                self.store.tills_equal,
                self.tills,
                self.store.tills_equal_on_disk,
                self.store.log_size_exact,
                self.store.conflicts
            ),
        ]
    }
}

/// Why a morning could not be run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum MorningError {
    #[error("cannot set up the run: {0}")]
    Setup(String),
    #[error("not drained after {timeout:?}: {unsent} records unsent on {tills} tills\n{detail}")]
    Timeout {
        timeout: Duration,
        unsent: u64,
        tills: usize,
        detail: String,
    },
}

/// One fake till, its day, and its daemon once started.
struct Lane {
    till: FakeTill,
    socket: PathBuf,
    log: PathBuf,
    start_at: Duration,
    daemon: Option<FleetDaemon>,
}

impl Lane {
    fn acked(&self) -> u64 {
        self.till.uploaded_through().map_or(0, |s| s.0)
    }
}

/// Runs one morning; returns its report (check [`MorningReport::store_equals_journals`]).
pub fn run_morning(options: &MorningOptions) -> Result<MorningReport, MorningError> {
    let setup = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| MorningError::Setup(format!("{what}: {e}"))
    };
    let dir = tempfile::tempdir().map_err(setup("a temporary directory"))?;
    let mut broker = Mosquitto::start(&MosquittoOptions {
        persistence: true,
        ..MosquittoOptions::default()
    });
    let store_dir = dir.path().join("campus");
    let campus = CampusSim::start(CampusOptions::new(broker.port(), store_dir.clone()))
        .map_err(|e| MorningError::Setup(format!("the campus simulator: {e}")))?;
    if !campus.wait_until(CAMPUS_SUBSCRIBE_TIMEOUT, |c| c.stats().subscribed > 0) {
        return Err(MorningError::Setup(
            "the campus simulator did not subscribe".into(),
        ));
    }
    let mut rng = SplitMix::new(options.seed);
    let stagger_ms = options.stagger.as_millis() as u64;
    let mut lanes = Vec::with_capacity(options.tills);
    for index in 0..options.tills {
        let terminal = TerminalId(FIRST_TERMINAL + index as u64);
        let socket = dir.path().join(format!("till-{index}.sock"));
        let till = FakeTill::start(&socket, terminal);
        till.append_bytes(day_of_sales(terminal, options.records, options.seed));
        lanes.push(Lane {
            till,
            socket,
            log: dir.path().join(format!("daemon-{index}.log")),
            start_at: Duration::from_millis(rng.below(stagger_ms + 1)),
            daemon: None,
        });
    }
    let total = options.tills as u64 * options.records;
    let mut memory = MemoryPeaks::default();
    let mut restarts = 0;
    let mut all_connected = None;
    let mut last_started = Duration::ZERO;
    let started = Instant::now();
    let mut next_sample = started;
    let mut next_print = started + PROGRESS_PRINT_INTERVAL;
    let fsyncs_before = campus.store_fsyncs();
    let stats_before = campus.stats();
    let drained = loop {
        let now = started.elapsed();
        for (index, lane) in lanes.iter_mut().enumerate() {
            if lane.daemon.is_none() && lane.start_at <= now {
                let daemon = FleetDaemon::start(
                    &options.daemon_binary,
                    &lane.socket,
                    broker.port(),
                    index as u64 + 1,
                    &lane.log,
                    &options.daemon_args,
                )
                .map_err(setup("a sync-daemon process"))?;
                lane.daemon = Some(daemon);
                last_started = now;
            }
        }
        let acked: u64 = lanes.iter().map(Lane::acked).sum();
        if all_connected.is_none() && lanes.iter().all(|lane| lane.till.welcomed() > 0) {
            all_connected = Some(started.elapsed());
        }
        if Instant::now() >= next_sample {
            sample_memory(&broker, &lanes, &mut memory);
            next_sample += RSS_SAMPLE_INTERVAL;
        }
        if acked == total {
            break started.elapsed();
        }
        // Restart r (1-based) once r/(K+1) of all records are acked: spread over the drain.
        let due = u64::from(restarts + 1) * total / (u64::from(options.broker_restarts) + 1);
        if restarts < options.broker_restarts && acked >= due {
            broker.restart();
            restarts += 1;
            if options.progress {
                println!(
                    "{:>6.1} s  broker restart {restarts} at {acked} of {total} acked",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        if options.progress && Instant::now() >= next_print {
            next_print += PROGRESS_PRINT_INTERVAL;
            let running = lanes.iter().filter(|l| l.daemon.is_some()).count();
            println!(
                "{:>6.1} s  daemons {running}/{}, acked {acked} of {total}, campus stored {}",
                started.elapsed().as_secs_f64(),
                options.tills,
                campus.record_count()
            );
        }
        if started.elapsed() > options.timeout {
            return Err(timeout_error(options.timeout, &lanes));
        }
        std::thread::sleep(PROGRESS_POLL_INTERVAL);
    };
    sample_memory(&broker, &lanes, &mut memory);
    let stats = campus.stats();
    let fsyncs = campus.store_fsyncs() - fsyncs_before;
    let daemon_broker_connections = lanes
        .iter()
        .filter_map(|lane| lane.daemon.as_ref())
        .map(|daemon| daemon.log_text().matches("broker up").count())
        .sum();
    for lane in &mut lanes {
        lane.daemon = None;
    }
    let mut store = StoreCheck {
        conflicts: campus.conflicts(),
        ..StoreCheck::default()
    };
    let journals: Vec<(TerminalId, Journal)> = lanes
        .iter()
        .map(|lane| (lane.till.terminal(), lane.till.journal()))
        .collect();
    for (terminal, journal) in &journals {
        match compare(&campus.records(*terminal), journal) {
            None => store.tills_equal += 1,
            Some(why) => note(
                &mut store.mismatches,
                format!("{terminal} in memory: {why}"),
            ),
        }
    }
    campus.stop();
    let reopened = CampusStore::open(&store_dir)
        .map_err(|e| MorningError::Setup(format!("reopening the campus store: {e}")))?;
    for (terminal, journal) in &journals {
        let records = reopened
            .terminal(*terminal)
            .map(|t| t.records.clone())
            .unwrap_or_default();
        match compare(&records, journal) {
            None => store.tills_equal_on_disk += 1,
            Some(why) => note(&mut store.mismatches, format!("{terminal} on disk: {why}")),
        }
    }
    let expected_log: u64 = journals
        .iter()
        .flat_map(|(_, journal)| {
            journal
                .iter()
                .map(|(_, bytes)| log_entry_bytes(bytes.len()))
        })
        .sum();
    let log_size = std::fs::metadata(store_dir.join("records.log")).map_or(0, |m| m.len());
    store.log_size_exact = log_size == expected_log;
    if !store.log_size_exact {
        note(
            &mut store.mismatches,
            format!("records.log holds {log_size} bytes, the journals make {expected_log}"),
        );
    }
    Ok(MorningReport {
        limits: machine_limits(),
        tills: options.tills,
        records_per_till: options.records,
        total_records: total,
        last_daemon_started: last_started,
        all_connected: all_connected.unwrap_or(drained),
        drained,
        fsyncs,
        batches: stats.batches - stats_before.batches,
        duplicates: stats.duplicates - stats_before.duplicates,
        broker_restarts: restarts,
        daemon_broker_connections,
        memory,
        store,
    })
}

/// A fake till's journal as `(seq, bytes)`.
type Journal = Vec<(Seq, Vec<u8>)>;

/// Keeps the first few mismatch descriptions.
fn note(mismatches: &mut Vec<String>, line: String) {
    if mismatches.len() < FAILURE_TILLS_SHOWN {
        mismatches.push(line);
    }
}

/// `None` when `stored` is exactly `journal` (seqs 1..=n once, same bytes), else why not.
fn compare(
    stored: &std::collections::BTreeMap<Seq, Vec<u8>>,
    journal: &[(Seq, Vec<u8>)],
) -> Option<String> {
    if stored.len() != journal.len() {
        return Some(format!(
            "{} records stored, {} journaled",
            stored.len(),
            journal.len()
        ));
    }
    journal
        .iter()
        .zip(stored)
        .find(|((seq, bytes), (stored_seq, stored_bytes))| {
            seq != *stored_seq || bytes != *stored_bytes
        })
        .map(|((seq, _), (stored_seq, _))| {
            format!("journal {seq} differs from stored {stored_seq}")
        })
}

/// Samples the broker's, the daemons' and the harness's resident memory into the peaks.
fn sample_memory(broker: &Mosquitto, lanes: &[Lane], peaks: &mut MemoryPeaks) {
    if let Some(kib) = broker.pid().and_then(rss_kib) {
        peaks.broker_kib = peaks.broker_kib.max(kib);
    }
    let daemons: Vec<u64> = lanes
        .iter()
        .filter_map(|lane| lane.daemon.as_ref())
        .filter_map(|daemon| rss_kib(daemon.pid()))
        .collect();
    peaks.daemons_sum_kib = peaks.daemons_sum_kib.max(daemons.iter().sum());
    peaks.daemon_max_kib = peaks
        .daemon_max_kib
        .max(daemons.iter().copied().max().unwrap_or(0));
    if let Some(kib) = own_rss_kib() {
        peaks.harness_kib = peaks.harness_kib.max(kib);
    }
}

/// The timeout's error: how much is unsent, and the log tails of a few undrained tills.
fn timeout_error(timeout: Duration, lanes: &[Lane]) -> MorningError {
    let undrained: Vec<&Lane> = lanes
        .iter()
        .filter(|lane| lane.acked() < lane.till.journal().len() as u64)
        .collect();
    let unsent = undrained
        .iter()
        .map(|lane| lane.till.journal().len() as u64 - lane.acked())
        .sum();
    let detail = undrained
        .iter()
        .take(FAILURE_TILLS_SHOWN)
        .map(|lane| {
            let tail = lane.daemon.as_ref().map_or_else(
                || "(daemon not started)".to_string(),
                |d| d.log_tail(FAILURE_LOG_LINES),
            );
            format!(
                "till {} acked {}:\n{tail}",
                lane.till.terminal(),
                lane.acked()
            )
        })
        .collect::<Vec<_>>()
        .join("\n---\n");
    MorningError::Timeout {
        timeout,
        unsent,
        tills: undrained.len(),
        detail,
    }
}
