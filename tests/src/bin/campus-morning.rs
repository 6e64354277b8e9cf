//! `campus-morning`: the load test of issue 13 (a campus morning). One Mosquitto, the campus
//! simulator, `--tills` fake tills with `--records` sale records each behind them and one
//! real `sync-daemon` process per till, started at random within `--stagger-s`; optionally
//! `--broker-restarts` broker kills + starts spread over the drain. Prints the report
//! (BENCHMARKS.md, "Campus morning") and exits non-zero when the campus store does not equal
//! every journal or the drain times out.
//!
//! ```text
//! cargo build --release -p sync-daemon -p till-tests --bins
//! target/release/campus-morning --tills 200 --records 2000 [--broker-restarts 10]
//! ```

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use till_tests::load::{run_morning, MorningOptions};

/// Runs a campus morning: N tills and their daemons drain a day offline into one broker.
#[derive(Debug, Parser)]
struct Cli {
    /// Fake tills, each with its own sync-daemon process.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=5_000))]
    tills: u64,
    /// Journal records behind each till (a day offline).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    records: u64,
    /// Broker SIGKILLs + starts on the same port, spread over the drain.
    #[arg(long, default_value_t = 0)]
    broker_restarts: u32,
    /// Every daemon starts at a random point within this many seconds.
    #[arg(long, default_value_t = 60)]
    stagger_s: u64,
    /// Seeds the start times and the records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Give up when the tills are not drained after this many seconds.
    #[arg(long, default_value_t = 1_800)]
    timeout_s: u64,
    /// Arguments passed to every daemon (e.g. `--daemon-arg=--batch-records=100`); none: its
    /// production defaults.
    #[arg(long = "daemon-arg", allow_hyphen_values = true)]
    daemon_args: Vec<String>,
    /// No progress lines, only the report.
    #[arg(long)]
    quiet: bool,
}

/// The `sync-daemon` next to this binary. Built by the same `cargo build` (see the command
/// above): a nested `cargo build -p sync-daemon` from here resolved other features than
/// this binary's build and rebuilt the TLS stack on every run (minutes on this machine).
fn daemon_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this binary's path")?;
    let binary = exe
        .parent()
        .context("this binary lives in target/<profile>/")?
        .join("sync-daemon");
    anyhow::ensure!(
        binary.exists(),
        "no sync-daemon at {}: build it with this binary, \
         cargo build --release -p sync-daemon -p till-tests --bins",
        binary.display()
    );
    Ok(binary)
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let options = MorningOptions {
        tills: cli.tills as usize,
        records: cli.records,
        broker_restarts: cli.broker_restarts,
        stagger: Duration::from_secs(cli.stagger_s),
        seed: cli.seed,
        timeout: Duration::from_secs(cli.timeout_s),
        daemon_binary: daemon_binary()?,
        daemon_args: cli.daemon_args,
        progress: !cli.quiet,
    };
    let report = run_morning(&options)?;
    println!("campus morning:");
    for line in report.lines() {
        println!("  {line}");
    }
    if report.store_equals_journals() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("the campus store differs from the journals:");
        for line in &report.store.mismatches {
            eprintln!("  {line}");
        }
        Ok(ExitCode::FAILURE)
    }
}
