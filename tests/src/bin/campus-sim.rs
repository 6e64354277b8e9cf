//! `campus-sim`: the campus server simulator as a program, for demos and manual runs of the
//! whole path (docs/whole-path.md). It stores every till's uploads in `--store`, acks them once
//! durable, publishes a blacklist and the server time, and prints its counts every few seconds.

use anyhow::Context;
use clap::Parser;
use shared::campus::Blacklist;
use shared::{CardUid, UnixMillis};
use std::path::PathBuf;
use std::time::Duration;
use till_tests::campus::{CampusOptions, CampusSim};

/// How often the counts are printed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// The environment variable that may hold the broker password.
const PASSWORD_ENV: &str = "CAMPUS_SIM_PASSWORD";

/// Simulates the campus server: stores uploads idempotently, acks them, publishes the
/// blacklist and the time.
#[derive(Debug, Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1")]
    broker_host: String,
    #[arg(long, default_value_t = 1883)]
    broker_port: u16,
    /// MQTT user name (the example ACL calls it campus-server).
    #[arg(long)]
    username: Option<String>,
    /// A file whose first line is the MQTT password (or set CAMPUS_SIM_PASSWORD).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Use TLS, trusting this CA certificate (PEM).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Where the received records are kept (reloaded on restart).
    #[arg(long, default_value = "campus-store")]
    store: PathBuf,
    /// Publish the server time this often.
    #[arg(long, default_value_t = 10_000)]
    time_interval_ms: u64,
    /// Publish a blacklist of this many made-up card UIDs (0: none).
    #[arg(long, default_value_t = 0)]
    blacklist_entries: u32,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let password = match &cli.password_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        None => std::env::var(PASSWORD_ENV).ok(),
    };
    let mut options = CampusOptions::new(cli.broker_port, cli.store.clone());
    options.broker_host = cli.broker_host.clone();
    options.username = cli.username.clone();
    options.password = password;
    options.tls_ca = cli.tls_ca.clone();
    options.time_interval_ms = Some(cli.time_interval_ms);
    let sim = CampusSim::start(options).context("starting the campus simulator")?;
    if cli.blacklist_entries > 0 {
        let uids = (0..cli.blacklist_entries)
            .filter_map(|n| CardUid::new(&(0xB000_0000u32 | n).to_be_bytes()).ok())
            .collect();
        let list = Blacklist::new(1, UnixMillis(0), uids).context("building the blacklist")?;
        sim.publish_blacklist(&list);
    }
    eprintln!(
        "campus-sim: broker {}:{}, store {}",
        cli.broker_host,
        cli.broker_port,
        cli.store.display()
    );
    loop {
        std::thread::sleep(STATS_INTERVAL);
        eprintln!("campus-sim: {:?}", sim.stats());
    }
}
