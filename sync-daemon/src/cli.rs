//! The daemon's command line and its settings file, in the library so their limits are tested
//! without starting a process. Every flag has a key of the same name (`--batch-records` is
//! `batch_records`) in `/etc/campus-pos/sync-daemon.toml` ([`DEFAULT_CONFIG_PATH`]); a flag
//! overrides the file. Every tunable has a named allowed range; a value outside it is refused at
//! start with that range (clap's error for a flag, the file, the key and the range for the file;
//! exit 2) instead of being quietly replaced: an ack timeout of 1 ms, for one, would resend
//! everything in a loop. `sync-daemon check-config` says the same without starting.

use crate::broker::DEFAULT_KEEP_ALIVE_S;
use crate::daemon::DEFAULT_BROKER_BACKOFF_CAP_MS;
use crate::uploader::{DEFAULT_ACK_TIMEOUT_MS, DEFAULT_BATCH_RECORDS, DEFAULT_WINDOW_BATCHES};
use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use shared::mqtt::MAX_RECORDS_PER_BATCH;
use std::path::{Path, PathBuf};

/// The fewest records per batch (`--batch-records`): a batch carries at least one.
pub const MIN_BATCH_RECORDS: u32 = 1;
/// The most records per batch (`--batch-records`): what the campus server accepts, 500.
pub const MAX_BATCH_RECORDS: u32 = MAX_RECORDS_PER_BATCH as u32;
/// The fewest batches waiting for an ack (`--window-batches`): one, or nothing is published.
pub const MIN_WINDOW_BATCHES: usize = 1;
/// The most batches waiting for an ack (`--window-batches`): 32, half the client's request
/// queue ([`crate::broker::REQUEST_CHANNEL_CAPACITY`]), so a publish never finds it full.
pub const MAX_WINDOW_BATCHES: usize = 32;
/// The shortest MQTT keep-alive (`--keep-alive-s`): 5 s; 0 would switch the broker's check of a
/// dead till off, and shorter ones flood a campus of tills with pings.
pub const MIN_KEEP_ALIVE_S: u64 = 5;
/// The longest MQTT keep-alive (`--keep-alive-s`): 65,535 s, the most the protocol can say.
pub const MAX_KEEP_ALIVE_S: u64 = u16::MAX as u64;
/// The shortest ack timeout (`--ack-timeout-ms`): 500 ms, more than a loaded broker and the
/// campus server's durable write need, so a healthy upload is never resent in a loop.
pub const MIN_ACK_TIMEOUT_MS: u64 = 500;
/// The longest ack timeout (`--ack-timeout-ms`): 10 minutes.
pub const MAX_ACK_TIMEOUT_MS: u64 = 600_000;

/// The daemon's settings file on a till; read when it exists, required when `--config` names it.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/campus-pos/sync-daemon.toml";
/// The till's link socket on a till (`pos-firmware device`'s default link), when neither
/// `--socket` nor the file's `socket` says otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/campus-pos/link.sock";
/// The default MQTT broker host.
pub const DEFAULT_BROKER_HOST: &str = "127.0.0.1";
/// The default MQTT broker port (8883 is the usual TLS port).
pub const DEFAULT_BROKER_PORT: u16 = 1883;
/// Exit status of a missing or bad settings file, at start and from `check-config` (clap uses
/// the same for a bad flag); systemd does not restart the daemon on it.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// Uploads the till's journal to the campus server over MQTT and brings down its configuration,
/// the lost-card blacklist and server time.
#[derive(Debug, Parser)]
#[command(name = "sync-daemon", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The settings file [default: /etc/campus-pos/sync-daemon.toml, skipped when missing].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub options: Options,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the settings file without starting: exit status 0 when the daemon would start on
    /// it, 2 (with the file, the key and what is wrong) when not.
    CheckConfig {
        /// The settings file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
}

/// Every setting, as a flag (`--broker-port`) and as a key of the settings file
/// (`broker_port`): one struct, so no flag can lack its key. `None`: not given here.
#[derive(Debug, Default, Clone, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The till's link socket (`pos-firmware ... --link PATH`) [default:
    /// /run/campus-pos/link.sock].
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The MQTT broker's host name or address [default: 127.0.0.1].
    #[arg(long)]
    pub broker_host: Option<String>,
    /// The MQTT broker's port (8883 is the usual TLS port) [default: 1883].
    #[arg(long)]
    pub broker_port: Option<u16>,
    /// MQTT user name; defaults to the till's terminal id in hex, which the broker ACL expects.
    #[arg(long)]
    pub username: Option<String>,
    /// A file whose first line is the MQTT password (or set SYNC_DAEMON_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Use TLS, trusting this CA certificate (PEM) for the broker.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// MQTT client id; defaults to `till-<terminal id>` (fixed, so the broker keeps the session).
    #[arg(long)]
    pub client_id: Option<String>,
    /// MQTT keep-alive in seconds (5 to 65535) [default: 15].
    #[arg(long, value_parser = clap::value_parser!(u64).range(MIN_KEEP_ALIVE_S..=MAX_KEEP_ALIVE_S))]
    pub keep_alive_s: Option<u64>,
    /// Records per published batch (1 to 500) [default: 500].
    #[arg(long, value_parser = clap::value_parser!(u32).range(MIN_BATCH_RECORDS as i64..=MAX_BATCH_RECORDS as i64))]
    pub batch_records: Option<u32>,
    /// Published batches that may wait for the campus server's ack at once (1 to 32) [default: 4].
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(MIN_WINDOW_BATCHES as u64..=MAX_WINDOW_BATCHES as u64))]
    pub window_batches: Option<usize>,
    /// Resend from the watermark when the oldest batch waits longer than this for its ack
    /// (500 to 600000) [default: 10000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(MIN_ACK_TIMEOUT_MS..=MAX_ACK_TIMEOUT_MS))]
    pub ack_timeout_ms: Option<u64>,
    /// The longest delay between broker connection attempts [default: 30000].
    #[arg(long)]
    pub broker_backoff_cap_ms: Option<u64>,
    /// Seed of the reconnect jitter (default: from the clock and the process id).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The settings the daemon runs with: flags over the file over the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub socket: PathBuf,
    pub broker_host: String,
    pub broker_port: u16,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub client_id: Option<String>,
    pub keep_alive_s: u64,
    pub batch_records: u32,
    pub window_batches: usize,
    pub ack_timeout_ms: u64,
    pub broker_backoff_cap_ms: u64,
    pub seed: Option<u64>,
}

/// `Err` naming `key` and its range when `value` is outside it.
fn check_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: Option<T>,
    low: T,
    high: T,
) -> Result<(), String> {
    match value {
        Some(v) if v < low || v > high => Err(format!("{key}: {v} is outside {low}..={high}")),
        _ => Ok(()),
    }
}

impl Options {
    /// The same ranges as the flags' (a file cannot say what a flag may not).
    pub fn validate(&self) -> Result<(), String> {
        check_range(
            "keep_alive_s",
            self.keep_alive_s,
            MIN_KEEP_ALIVE_S,
            MAX_KEEP_ALIVE_S,
        )?;
        check_range(
            "batch_records",
            self.batch_records,
            MIN_BATCH_RECORDS,
            MAX_BATCH_RECORDS,
        )?;
        check_range(
            "window_batches",
            self.window_batches,
            MIN_WINDOW_BATCHES,
            MAX_WINDOW_BATCHES,
        )?;
        check_range(
            "ack_timeout_ms",
            self.ack_timeout_ms,
            MIN_ACK_TIMEOUT_MS,
            MAX_ACK_TIMEOUT_MS,
        )?;
        Ok(())
    }

    /// These options (the flags) over `file`'s, over the defaults.
    pub fn over(self, file: Options) -> Settings {
        Settings {
            socket: self
                .socket
                .or(file.socket)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_PATH)),
            broker_host: self
                .broker_host
                .or(file.broker_host)
                .unwrap_or_else(|| DEFAULT_BROKER_HOST.to_string()),
            broker_port: self
                .broker_port
                .or(file.broker_port)
                .unwrap_or(DEFAULT_BROKER_PORT),
            username: self.username.or(file.username),
            password_file: self.password_file.or(file.password_file),
            tls_ca: self.tls_ca.or(file.tls_ca),
            client_id: self.client_id.or(file.client_id),
            keep_alive_s: self
                .keep_alive_s
                .or(file.keep_alive_s)
                .unwrap_or(DEFAULT_KEEP_ALIVE_S),
            batch_records: self
                .batch_records
                .or(file.batch_records)
                .unwrap_or(DEFAULT_BATCH_RECORDS),
            window_batches: self
                .window_batches
                .or(file.window_batches)
                .unwrap_or(DEFAULT_WINDOW_BATCHES),
            ack_timeout_ms: self
                .ack_timeout_ms
                .or(file.ack_timeout_ms)
                .unwrap_or(DEFAULT_ACK_TIMEOUT_MS),
            broker_backoff_cap_ms: self
                .broker_backoff_cap_ms
                .or(file.broker_backoff_cap_ms)
                .unwrap_or(DEFAULT_BROKER_BACKOFF_CAP_MS),
            seed: self.seed.or(file.seed),
        }
    }
}

/// Parses settings-file text; `Err` names the key and what is wrong (without the file).
pub fn parse_file(text: &str) -> Result<Options, String> {
    let options: Options = toml::from_str(text).map_err(|e| e.to_string())?;
    options.validate()?;
    Ok(options)
}

/// Reads the settings file at `path`. A missing file is `Ok(None)` unless `required` (named by
/// `--config`, or checked by `check-config`); every other problem is `Err` with the file's path.
pub fn load_file(path: &Path, required: bool) -> Result<Option<Options>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    parse_file(&text)
        .map(Some)
        .map_err(|detail| format!("{}: {detail}", path.display()))
}

impl Cli {
    /// The settings to run with: `--config` (required) or the default file (when it exists),
    /// with the flags on top. `Err` is the message for exit [`EXIT_BAD_CONFIG`].
    pub fn settings(&self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => load_file(path, true)?,
            None => load_file(Path::new(DEFAULT_CONFIG_PATH), false)?,
        };
        Ok(self.options.clone().over(file.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of these flags, with no settings file.
    fn parse(extra: &[&str]) -> Result<Settings, clap::Error> {
        let mut args = vec!["sync-daemon", "--socket", "/tmp/till.sock"];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args).map(|cli| cli.options.over(Options::default()))
    }

    #[test]
    fn the_defaults_are_within_their_ranges() {
        let cli = parse(&[]).expect("the defaults parse");
        assert!(Options::default().validate().is_ok());
        assert!((MIN_BATCH_RECORDS..=MAX_BATCH_RECORDS).contains(&cli.batch_records));
        assert!((MIN_WINDOW_BATCHES..=MAX_WINDOW_BATCHES).contains(&cli.window_batches));
        assert!((MIN_KEEP_ALIVE_S..=MAX_KEEP_ALIVE_S).contains(&cli.keep_alive_s));
        assert!((MIN_ACK_TIMEOUT_MS..=MAX_ACK_TIMEOUT_MS).contains(&cli.ack_timeout_ms));
    }

    #[test]
    fn every_tunable_outside_its_range_is_refused_naming_the_range() {
        for (flag, value, range) in [
            ("--batch-records", "0", "1..=500"),
            ("--batch-records", "100000", "1..=500"),
            ("--window-batches", "0", "1..=32"),
            ("--window-batches", "33", "1..=32"),
            ("--keep-alive-s", "0", "5..=65535"),
            ("--keep-alive-s", "65536", "5..=65535"),
            ("--ack-timeout-ms", "0", "500..=600000"),
            ("--ack-timeout-ms", "1", "500..=600000"),
            ("--ack-timeout-ms", "600001", "500..=600000"),
        ] {
            let error = parse(&[flag, value]).expect_err(&format!("{flag} {value} was accepted"));
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
            let text = error.to_string();
            assert!(
                text.contains(flag) && text.contains(range),
                "{flag} {value}: {text}"
            );
        }
    }

    #[test]
    fn the_ends_of_every_range_are_accepted() {
        let low = parse(&[
            "--batch-records",
            "1",
            "--window-batches",
            "1",
            "--keep-alive-s",
            "5",
            "--ack-timeout-ms",
            "500",
        ])
        .expect("the low ends parse");
        assert_eq!(
            (
                low.batch_records,
                low.window_batches,
                low.keep_alive_s,
                low.ack_timeout_ms
            ),
            (1, 1, 5, 500)
        );
        let high = parse(&[
            "--batch-records",
            "500",
            "--window-batches",
            "32",
            "--keep-alive-s",
            "65535",
            "--ack-timeout-ms",
            "600000",
        ])
        .expect("the high ends parse");
        assert_eq!(
            (
                high.batch_records,
                high.window_batches,
                high.keep_alive_s,
                high.ack_timeout_ms
            ),
            (500, 32, 65535, 600_000)
        );
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;
    use clap::CommandFactory;

    /// The example installed as /etc/campus-pos/sync-daemon.toml.
    const EXAMPLE: &str = include_str!("../../packaging/etc/sync-daemon.toml");

    #[test]
    fn every_flag_has_a_key_in_the_installed_example() {
        // Optional keys are commented out in the example: uncommented, every one parses.
        let uncommented: String = EXAMPLE
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .filter(|line| line.contains(" = "))
            .map(|line| format!("{line}\n"))
            .collect();
        let all = parse_file(&uncommented).expect("every key of the example is a setting");
        let command = Cli::command();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["config", "help", "version"].contains(&long) {
                continue;
            }
            let key = long.replace('-', "_");
            assert!(
                uncommented
                    .lines()
                    .any(|line| line.starts_with(&format!("{key} = "))),
                "--{long} has no `{key}` line in packaging/etc/sync-daemon.toml"
            );
        }
        assert!(all.seed.is_some() && all.username.is_some());
        // The example as installed runs with the defaults it shows.
        let installed = parse_file(EXAMPLE).expect("the example parses");
        assert_eq!(
            Options::default().over(installed),
            Options::default().over(Options::default())
        );
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let file = parse_file(
            "broker_host = \"mqtt.campus\"\nbatch_records = 50\nsocket = \"/run/x.sock\"\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from(["sync-daemon", "--batch-records", "7"]).unwrap();
        let settings = cli.options.over(file);
        assert_eq!(settings.batch_records, 7);
        assert_eq!(settings.broker_host, "mqtt.campus");
        assert_eq!(settings.socket, PathBuf::from("/run/x.sock"));
        assert_eq!(settings.broker_port, DEFAULT_BROKER_PORT);
    }

    #[test]
    fn a_bad_file_names_the_file_the_key_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync-daemon.toml");
        for (text, key, what) in [
            ("batch_records = 0\n", "batch_records", "1..=500"),
            ("window_batches = 33\n", "window_batches", "1..=32"),
            ("ack_timeout_ms = 1\n", "ack_timeout_ms", "500..=600000"),
            ("keep_alive_s = 0\n", "keep_alive_s", "5..=65535"),
            ("broker_port = 70000\n", "broker_port", "70000"),
            ("broker_prot = 1883\n", "broker_prot", "unknown field"),
            ("socket = 5\n", "socket", "invalid type"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = load_file(&path, false).unwrap_err();
            assert!(
                error.starts_with(&path.display().to_string())
                    && error.contains(key)
                    && error.contains(what),
                "{text}: {error}"
            );
        }
        std::fs::remove_file(&path).unwrap();
        assert_eq!(load_file(&path, false), Ok(None));
        assert!(load_file(&path, true).unwrap_err().contains("cannot read"));
    }
}
