//! `sync-daemon`: command line and logging around [`sync_daemon::daemon::run`]. The password
//! comes from a file or the `SYNC_DAEMON_PASSWORD` environment variable, never from the command
//! line (which every user of the machine can read in `ps`).

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use sync_daemon::backoff::time_seed;
use sync_daemon::broker::{BrokerConfig, DEFAULT_KEEP_ALIVE_S};
use sync_daemon::daemon::{run, DaemonConfig, DEFAULT_BROKER_BACKOFF_CAP_MS};
use sync_daemon::uploader::{
    UploadLimits, DEFAULT_ACK_TIMEOUT_MS, DEFAULT_BATCH_RECORDS, DEFAULT_WINDOW_BATCHES,
};

/// The environment variable that may hold the broker password.
const PASSWORD_ENV: &str = "SYNC_DAEMON_PASSWORD";

/// Uploads the till's journal to the campus server over MQTT and brings down its configuration,
/// the lost-card blacklist and server time.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The till's link socket (`pos-firmware ... --link PATH`).
    #[arg(long)]
    socket: PathBuf,
    /// The MQTT broker's host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    broker_host: String,
    /// The MQTT broker's port (8883 is the usual TLS port).
    #[arg(long, default_value_t = 1883)]
    broker_port: u16,
    /// MQTT user name; defaults to the till's terminal id in hex, which the broker ACL expects.
    #[arg(long)]
    username: Option<String>,
    /// A file whose first line is the MQTT password (or set SYNC_DAEMON_PASSWORD).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Use TLS, trusting this CA certificate (PEM) for the broker.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// MQTT client id; defaults to `till-<terminal id>` (fixed, so the broker keeps the session).
    #[arg(long)]
    client_id: Option<String>,
    /// MQTT keep-alive in seconds.
    #[arg(long, default_value_t = DEFAULT_KEEP_ALIVE_S)]
    keep_alive_s: u64,
    /// Records per published batch (at most 500).
    #[arg(long, default_value_t = DEFAULT_BATCH_RECORDS)]
    batch_records: u32,
    /// Published batches that may wait for the campus server's ack at once.
    #[arg(long, default_value_t = DEFAULT_WINDOW_BATCHES)]
    window_batches: usize,
    /// Resend from the watermark when the oldest batch waits longer than this for its ack.
    #[arg(long, default_value_t = DEFAULT_ACK_TIMEOUT_MS)]
    ack_timeout_ms: u64,
    /// The longest delay between broker connection attempts.
    #[arg(long, default_value_t = DEFAULT_BROKER_BACKOFF_CAP_MS)]
    broker_backoff_cap_ms: u64,
    /// Seed of the reconnect jitter (default: from the clock and the process id).
    #[arg(long)]
    seed: Option<u64>,
}

fn read_password(cli: &Cli) -> anyhow::Result<Option<String>> {
    if let Some(path) = &cli.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the password file {}", path.display()))?;
        let password = text.lines().next().unwrap_or_default().to_string();
        anyhow::ensure!(!password.is_empty(), "{} is empty", path.display());
        return Ok(Some(password));
    }
    Ok(std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let cli = Cli::parse();
    let password = read_password(&cli)?;
    let config = DaemonConfig {
        socket: cli.socket.clone(),
        broker: BrokerConfig {
            host: cli.broker_host.clone(),
            port: cli.broker_port,
            username: cli.username.clone(),
            password,
            tls_ca: cli.tls_ca.clone(),
            client_id: cli.client_id.clone(),
            keep_alive_s: cli.keep_alive_s,
        },
        limits: UploadLimits {
            batch_records: cli.batch_records,
            window_batches: cli.window_batches,
            ack_timeout_ms: cli.ack_timeout_ms,
        },
        broker_backoff_cap_ms: cli.broker_backoff_cap_ms,
        seed: cli.seed.unwrap_or_else(time_seed),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config))?;
    Ok(())
}
