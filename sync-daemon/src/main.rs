//! `sync-daemon`: command line, settings file and logging around [`sync_daemon::daemon::run`].
//! The password comes from a file or the `SYNC_DAEMON_PASSWORD` environment variable, never from
//! the command line (which every user of the machine can read in `ps`). The flags, the settings
//! file (`/etc/campus-pos/sync-daemon.toml`) and their allowed ranges are in
//! [`sync_daemon::cli`]. Under systemd (`Type=notify`) it says READY=1 once its loop runs and
//! WATCHDOG=1 from the same thread every [`WATCHDOG_NOTIFY_MS`], so a stuck loop is restarted.

use anyhow::Context;
use clap::Parser;
use sync_daemon::broker::BrokerConfig;
use sync_daemon::cli::{load_file, Cli, Command, Options, Settings, EXIT_BAD_CONFIG};
use sync_daemon::daemon::time_seed;
use sync_daemon::daemon::{run, DaemonConfig};
use sync_daemon::uploader::UploadLimits;

/// The environment variable that may hold the broker password.
const PASSWORD_ENV: &str = "SYNC_DAEMON_PASSWORD";

/// How often the daemon tells systemd it is alive (the unit's `WatchdogSec=` is 30 s).
const WATCHDOG_NOTIFY_MS: u64 = 5_000;

fn read_password(settings: &Settings) -> anyhow::Result<Option<String>> {
    if let Some(path) = &settings.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the password file {}", path.display()))?;
        let password = text.lines().next().unwrap_or_default().to_string();
        anyhow::ensure!(!password.is_empty(), "{} is empty", path.display());
        return Ok(Some(password));
    }
    Ok(std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()))
}

/// Tells systemd `state` (no-op without `NOTIFY_SOCKET`); a failure is logged, never fatal.
fn notify_systemd(state: sd_notify::NotifyState) {
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!("sd_notify: {e}");
    }
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
    if let Some(Command::CheckConfig { config }) = &cli.command {
        match load_file(config, true) {
            Ok(file) => {
                let settings = Options::default().over(file.unwrap_or_default());
                println!(
                    "{}: ok (socket {}, broker {}:{})",
                    config.display(),
                    settings.socket.display(),
                    settings.broker_host,
                    settings.broker_port
                );
                return Ok(());
            }
            Err(problem) => {
                eprintln!("{problem}");
                std::process::exit(EXIT_BAD_CONFIG);
            }
        }
    }
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(problem) => {
            tracing::error!("ALARM the sync daemon does not start: {problem}");
            std::process::exit(EXIT_BAD_CONFIG);
        }
    };
    let password = read_password(&settings)?;
    let config = DaemonConfig {
        socket: settings.socket.clone(),
        broker: BrokerConfig {
            host: settings.broker_host.clone(),
            port: settings.broker_port,
            username: settings.username.clone(),
            password,
            tls_ca: settings.tls_ca.clone(),
            client_id: settings.client_id.clone(),
            keep_alive_s: settings.keep_alive_s,
        },
        limits: UploadLimits {
            batch_records: settings.batch_records,
            window_batches: settings.window_batches,
            ack_timeout_ms: settings.ack_timeout_ms,
        },
        broker_backoff_cap_ms: settings.broker_backoff_cap_ms,
        seed: settings.seed.unwrap_or_else(time_seed),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // One thread runs everything: the watchdog task gets its turn only while the daemon's
        // loop yields, so a loop stuck on that thread stops the WATCHDOG=1s.
        tokio::spawn(async {
            notify_systemd(sd_notify::NotifyState::Ready);
            let mut every =
                tokio::time::interval(std::time::Duration::from_millis(WATCHDOG_NOTIFY_MS));
            loop {
                every.tick().await;
                notify_systemd(sd_notify::NotifyState::Watchdog);
            }
        });
        run(config).await
    })?;
    Ok(())
}
