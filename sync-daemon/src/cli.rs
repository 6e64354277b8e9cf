//! The daemon's command line, in the library so its limits are tested without starting a
//! process. Every tunable has a named allowed range; a value outside it is refused at start
//! with that range (clap's error, exit 2) instead of being quietly replaced: an ack timeout of
//! 1 ms, for one, would resend everything in a loop.

use crate::broker::DEFAULT_KEEP_ALIVE_S;
use crate::daemon::DEFAULT_BROKER_BACKOFF_CAP_MS;
use crate::uploader::{DEFAULT_ACK_TIMEOUT_MS, DEFAULT_BATCH_RECORDS, DEFAULT_WINDOW_BATCHES};
use clap::builder::RangedU64ValueParser;
use clap::Parser;
use shared::mqtt::MAX_RECORDS_PER_BATCH;
use std::path::PathBuf;

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

/// Uploads the till's journal to the campus server over MQTT and brings down its configuration,
/// the lost-card blacklist and server time.
#[derive(Debug, Parser)]
#[command(name = "sync-daemon", version)]
pub struct Cli {
    /// The till's link socket (`pos-firmware ... --link PATH`).
    #[arg(long)]
    pub socket: PathBuf,
    /// The MQTT broker's host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    pub broker_host: String,
    /// The MQTT broker's port (8883 is the usual TLS port).
    #[arg(long, default_value_t = 1883)]
    pub broker_port: u16,
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
    /// MQTT keep-alive in seconds (5 to 65535).
    #[arg(long, default_value_t = DEFAULT_KEEP_ALIVE_S,
          value_parser = clap::value_parser!(u64).range(MIN_KEEP_ALIVE_S..=MAX_KEEP_ALIVE_S))]
    pub keep_alive_s: u64,
    /// Records per published batch (1 to 500).
    #[arg(long, default_value_t = DEFAULT_BATCH_RECORDS,
          value_parser = clap::value_parser!(u32).range(MIN_BATCH_RECORDS as i64..=MAX_BATCH_RECORDS as i64))]
    pub batch_records: u32,
    /// Published batches that may wait for the campus server's ack at once (1 to 32).
    #[arg(long, default_value_t = DEFAULT_WINDOW_BATCHES,
          value_parser = RangedU64ValueParser::<usize>::new().range(MIN_WINDOW_BATCHES as u64..=MAX_WINDOW_BATCHES as u64))]
    pub window_batches: usize,
    /// Resend from the watermark when the oldest batch waits longer than this for its ack
    /// (500 to 600000).
    #[arg(long, default_value_t = DEFAULT_ACK_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(MIN_ACK_TIMEOUT_MS..=MAX_ACK_TIMEOUT_MS))]
    pub ack_timeout_ms: u64,
    /// The longest delay between broker connection attempts.
    #[arg(long, default_value_t = DEFAULT_BROKER_BACKOFF_CAP_MS)]
    pub broker_backoff_cap_ms: u64,
    /// Seed of the reconnect jitter (default: from the clock and the process id).
    #[arg(long)]
    pub seed: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut args = vec!["sync-daemon", "--socket", "/tmp/till.sock"];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args)
    }

    #[test]
    fn the_defaults_are_within_their_ranges() {
        let cli = parse(&[]).expect("the defaults parse");
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
