//! `sync-daemon`: command line and logging around [`sync_daemon::daemon::run`]. The password
//! comes from a file or the `SYNC_DAEMON_PASSWORD` environment variable, never from the command
//! line (which every user of the machine can read in `ps`). The flags and their allowed ranges
//! are in [`sync_daemon::cli`].

use anyhow::Context;
use clap::Parser;
use sync_daemon::broker::BrokerConfig;
use sync_daemon::cli::Cli;
use sync_daemon::daemon::time_seed;
use sync_daemon::daemon::{run, DaemonConfig};
use sync_daemon::uploader::UploadLimits;

/// The environment variable that may hold the broker password.
const PASSWORD_ENV: &str = "SYNC_DAEMON_PASSWORD";

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
