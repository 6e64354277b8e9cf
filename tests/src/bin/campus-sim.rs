//! `campus-sim`: the campus server simulator as a program, for demos and manual runs of the
//! whole path (docs/whole-path.md). It stores every till's uploads in `--store`, acks them once
//! durable, publishes a campus configuration (`--config FILE.toml`, to every till it sees and to
//! each `--terminal`), a blacklist (made up, or `--blacklist-file`, published again with a newer
//! version whenever the file changes and every hour; versions from the clock, issued now; in
//! retained pages under the broker's 2 MiB packet limit, a million cards included) and
//! the server time, and prints its counts and the tills'
//! presence every few seconds.

use anyhow::Context;
use clap::Parser;
use shared::campus::Blacklist;
use shared::{CardUid, TerminalId, UnixMillis};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use till_tests::campus::{CampusOptions, CampusSim};
use till_tests::campus_files::{load_blacklist, load_campus_config};

/// How often the counts are printed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// How often the blacklist file is checked for changes.
const BLACKLIST_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often the blacklist is published again, issued now, though nothing changed (well within
/// the example configuration's 72-hour blacklist age limit).
const BLACKLIST_REFRESH_INTERVAL: Duration = Duration::from_secs(3_600);
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
    #[arg(long, default_value_t = 0, conflicts_with = "blacklist_file")]
    blacklist_entries: u32,
    /// Publish the card UIDs in this file (hex, one per line, `#` comments) as the blacklist,
    /// and again, with a newer version, whenever the file changes.
    #[arg(long)]
    blacklist_file: Option<PathBuf>,
    /// A campus configuration (docs/campus-config.example.toml), published retained to every
    /// till that has uploaded to this store or uploads now, and to each --terminal.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A till's terminal id (16 hex digits) to configure at once, before it uploads; repeatable.
    #[arg(long = "terminal", requires = "config", value_parser = parse_terminal_arg)]
    terminals: Vec<TerminalId>,
}

fn parse_terminal_arg(text: &str) -> Result<TerminalId, String> {
    shared::mqtt::parse_terminal(&text.to_ascii_lowercase())
        .ok_or_else(|| format!("\"{text}\" is not a terminal id (16 hex digits)"))
}

fn unix_ms_now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    )
}

/// A blacklist version from the clock (milliseconds since 1970), above `last`: a simulator
/// restarted at once still publishes a version newer than the tills hold.
fn clock_version(now: UnixMillis, last: u64) -> u64 {
    u64::try_from(now.0)
        .unwrap_or(0)
        .max(last.saturating_add(1))
}

/// Where the published blacklist comes from.
enum BlacklistSource {
    /// `--blacklist-file`: read again when it changes.
    File {
        path: PathBuf,
        modified: Option<SystemTime>,
    },
    /// `--blacklist-entries`: made-up UIDs.
    MadeUp(Vec<CardUid>),
}

/// The blacklist this simulator publishes and the version last published. Each publication
/// is issued now (a till refuses offline sales once its blacklist is older than the campus
/// configuration's `max_blacklist_age_hours`), so the list is also published again, newer,
/// every [`BLACKLIST_REFRESH_INTERVAL`] even when nothing changed.
struct PublishedBlacklist {
    source: BlacklistSource,
    version: u64,
    published_at: Option<Instant>,
}

impl PublishedBlacklist {
    fn new(source: BlacklistSource) -> PublishedBlacklist {
        PublishedBlacklist {
            source,
            version: 0,
            published_at: None,
        }
    }

    /// Publishes the list if the file changed or the last publication is due for a refresh.
    fn publish_if_due(&mut self, sim: &CampusSim) -> anyhow::Result<()> {
        let refresh_due = self
            .published_at
            .is_none_or(|at| at.elapsed() >= BLACKLIST_REFRESH_INTERVAL);
        let now = unix_ms_now();
        let list = match &mut self.source {
            BlacklistSource::File { path, modified } => {
                let changed_at = std::fs::metadata(&*path)
                    .and_then(|m| m.modified())
                    .with_context(|| format!("reading {}", path.display()))?;
                if *modified == Some(changed_at) && !refresh_due {
                    return Ok(());
                }
                let version = clock_version(now, self.version);
                let list = load_blacklist(path, version, now)?;
                *modified = Some(changed_at);
                eprintln!(
                    "campus-sim: blacklist version {version} with {} cards from {}",
                    list.len(),
                    path.display()
                );
                list
            }
            BlacklistSource::MadeUp(uids) => {
                if !refresh_due {
                    return Ok(());
                }
                let version = clock_version(now, self.version);
                let list =
                    Blacklist::new(version, now, uids.clone()).context("building the blacklist")?;
                eprintln!(
                    "campus-sim: blacklist version {version} with {} made-up cards",
                    list.len()
                );
                list
            }
        };
        self.version = list.version();
        self.published_at = Some(Instant::now());
        sim.publish_blacklist(&list);
        Ok(())
    }
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
    let config = match &cli.config {
        Some(path) => Some(load_campus_config(path)?),
        None => None,
    };
    options.default_config = config.clone();
    let sim = CampusSim::start(options).context("starting the campus simulator")?;
    if let Some(config) = &config {
        eprintln!(
            "campus-sim: configuration version {} for every till seen{}",
            config.version,
            if cli.terminals.is_empty() {
                String::new()
            } else {
                format!(" and {} named", cli.terminals.len())
            }
        );
        for terminal in &cli.terminals {
            sim.publish_config(*terminal, config);
        }
    }
    let source = match &cli.blacklist_file {
        Some(path) => Some(BlacklistSource::File {
            path: path.clone(),
            modified: None,
        }),
        None if cli.blacklist_entries > 0 => Some(BlacklistSource::MadeUp(
            (0..cli.blacklist_entries)
                .filter_map(|n| CardUid::new(&(0xB000_0000u32 | n).to_be_bytes()).ok())
                .collect(),
        )),
        None => None,
    };
    let mut blacklist = source.map(PublishedBlacklist::new);
    if let Some(blacklist) = blacklist.as_mut() {
        blacklist.publish_if_due(&sim)?;
    }
    eprintln!(
        "campus-sim: broker {}:{}, store {}",
        cli.broker_host,
        cli.broker_port,
        cli.store.display()
    );
    let mut next_stats = Instant::now() + STATS_INTERVAL;
    loop {
        std::thread::sleep(BLACKLIST_POLL_INTERVAL);
        if let Some(blacklist) = blacklist.as_mut() {
            // A half-written or bad file is reported and the last good list stays published.
            if let Err(error) = blacklist.publish_if_due(&sim) {
                eprintln!("campus-sim: {error:#}");
            }
        }
        if Instant::now() >= next_stats {
            next_stats += STATS_INTERVAL;
            let (online, offline) = sim.presence_counts();
            eprintln!(
                "campus-sim: tills online {online}, offline {offline}; {:?}",
                sim.stats()
            );
        }
    }
}
