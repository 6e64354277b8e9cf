//! `campus-app`: the student's campus app as a program (issue 11, seed 004 §五). It "scans" a
//! till's offline QR payload (the text the till's `QR` line or `--qr-png` picture carries), pays
//! it from a campus account through the campus's payment back end
//! (`PaymentBackend::pay_qr`), and prints the confirmation code the merchant types into the
//! till. Against a campus store (`--store DIR`, its `payments.log`, or `--payments-log FILE`) the
//! payment is durable and the campus simulator's next start (or the statement) sees it; with
//! `--dry-run` it pays in memory from the default accounts and prints what it would do.
//!
//! Exit status: 0 paid (or a replay answered), 1 refused (the reason on standard error), 2 bad
//! arguments or a store it cannot open. Run it while no `campus-sim` has the same store open:
//! the call log has one writer.

use clap::Parser;
use pos_firmware::sim::payments::{qr_amount, PaymentBackend, SIM_CAMPUS_KEY_SEED};
use shared::paycode::VirtualAccount;
use shared::UnixMillis;
use std::path::PathBuf;
use std::time::SystemTime;
use till_tests::campus_pay::{sim_accounts, sim_frozen, PAYMENTS_LOG_FILE};

/// Pays an offline QR payload from a campus account and prints the confirmation code.
#[derive(Debug, Parser)]
struct Cli {
    /// The QR payload the phone scanned (`CQ1…`).
    #[arg(long)]
    payload: String,
    /// The campus account that pays (its number, e.g. 2026000001).
    #[arg(long)]
    account: u64,
    /// The campus store whose payment back end books it (its payments.log).
    #[arg(long, default_value = "campus-store", conflicts_with = "dry_run")]
    store: PathBuf,
    /// The back end's call log (default: payments.log in --store).
    #[arg(long, conflicts_with = "dry_run")]
    payments_log: Option<PathBuf>,
    /// Pay in memory from the default accounts: print what would happen, store nothing.
    #[arg(long)]
    dry_run: bool,
    /// The campus's clock for the payment (Unix milliseconds; default: now).
    #[arg(long)]
    at_unix_ms: Option<i64>,
}

fn main() {
    let cli = Cli::parse();
    let now = cli.at_unix_ms.map_or_else(unix_ms_now, UnixMillis);
    let account = VirtualAccount(cli.account);
    let mut backend = if cli.dry_run {
        PaymentBackend::new_with_frozen(SIM_CAMPUS_KEY_SEED, sim_accounts(), sim_frozen())
    } else {
        let log = cli
            .payments_log
            .clone()
            .unwrap_or_else(|| cli.store.join(PAYMENTS_LOG_FILE));
        if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("campus-app: cannot create {}: {e}", dir.display());
                std::process::exit(2);
            }
        }
        match PaymentBackend::open_with_frozen(
            &log,
            SIM_CAMPUS_KEY_SEED,
            sim_accounts(),
            sim_frozen(),
        ) {
            Ok(backend) => backend,
            Err(e) => {
                eprintln!(
                    "campus-app: cannot open the payment log {}: {e}",
                    log.display()
                );
                std::process::exit(2);
            }
        }
    };
    let amount = qr_amount(&cli.payload);
    match backend.pay_qr(&cli.payload, account, now) {
        Ok(code) => {
            let balance = backend
                .balance(account)
                .map_or_else(|| "?".to_string(), |b| b.to_string());
            let amount = amount.map_or_else(|| "?".to_string(), |a| a.to_string());
            let dry = if cli.dry_run {
                " (dry run: nothing stored)"
            } else {
                ""
            };
            eprintln!("campus-app: paid ¥{amount} from account {account}, balance ¥{balance}{dry}");
            println!("{code:06}");
        }
        Err(refusal) => {
            eprintln!("campus-app: refused: {refusal}");
            std::process::exit(1);
        }
    }
}

fn unix_ms_now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    )
}
