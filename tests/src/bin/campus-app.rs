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
    match pay(&cli, cli.at_unix_ms.map_or_else(unix_ms_now, UnixMillis)) {
        Ok((code, said)) => {
            eprintln!("campus-app: {said}");
            println!("{code:06}");
        }
        Err((status, said)) => {
            eprintln!("campus-app: {said}");
            std::process::exit(status);
        }
    }
}

/// Pays `cli.payload` at `now`: the confirmation code and what to say, or the exit status and
/// why not.
fn pay(cli: &Cli, now: UnixMillis) -> Result<(u32, String), (i32, String)> {
    let account = VirtualAccount(cli.account);
    let mut backend = if cli.dry_run {
        PaymentBackend::new_with_frozen(SIM_CAMPUS_KEY_SEED, sim_accounts(), sim_frozen())
    } else {
        let log = cli
            .payments_log
            .clone()
            .unwrap_or_else(|| cli.store.join(PAYMENTS_LOG_FILE));
        if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| (2, format!("cannot create {}: {e}", dir.display())))?;
        }
        PaymentBackend::open_with_frozen(&log, SIM_CAMPUS_KEY_SEED, sim_accounts(), sim_frozen())
            .map_err(|e| {
                (
                    2,
                    format!("cannot open the payment log {}: {e}", log.display()),
                )
            })?
    };
    let amount = qr_amount(&cli.payload);
    let code = backend
        .pay_qr(&cli.payload, account, now)
        .map_err(|refusal| (1, format!("refused: {refusal}")))?;
    let balance = backend
        .balance(account)
        .map_or_else(|| "?".to_string(), |b| b.to_string());
    let amount = amount.map_or_else(|| "?".to_string(), |a| a.to_string());
    let dry = if cli.dry_run {
        " (dry run: nothing stored)"
    } else {
        ""
    };
    Ok((
        code,
        format!("paid ¥{amount} from account {account}, balance ¥{balance}{dry}"),
    ))
}

fn unix_ms_now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pos_firmware::sim::payments::sim_terminal_qr_key;
    use shared::ids::{MachineNumber, Seq, TerminalId};
    use shared::qrpay::QrOrder;
    use shared::Fen;

    const NOW: UnixMillis = UnixMillis(1_800_000_060_000);

    fn payload(amount: u64) -> (QrOrder, String) {
        let order = QrOrder {
            terminal: TerminalId(0x5EED),
            intent: Seq(9),
            amount: Fen::new(amount),
            machine: MachineNumber::new(58).unwrap(),
            created_at_s: 1_800_000_000,
            valid_for_s: 600,
        };
        let payload = order.payload(&sim_terminal_qr_key(order.terminal)).unwrap();
        (order, payload)
    }

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("campus-app").chain(args.iter().copied()))
    }

    #[test]
    fn the_app_pays_into_the_stores_log_once_and_a_second_scan_gets_the_same_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let (order, text) = payload(1_250);
        let args = [
            "--payload",
            &text,
            "--account",
            "2026000001",
            "--store",
            store.to_str().unwrap(),
        ];
        let (code, said) = pay(&cli(&args), NOW).unwrap();
        assert_eq!(
            code,
            order.confirmation_code(&sim_terminal_qr_key(order.terminal))
        );
        assert!(
            said.contains("paid ¥12.50 from account 2026000001, balance ¥87.50"),
            "{said}"
        );
        let (again, said) = pay(&cli(&args), NOW).unwrap();
        assert_eq!(again, code);
        assert!(said.contains("balance ¥87.50"), "charged once: {said}");
        let log = store.join(PAYMENTS_LOG_FILE);
        let backend = PaymentBackend::open_with_frozen(
            &log,
            SIM_CAMPUS_KEY_SEED,
            sim_accounts(),
            sim_frozen(),
        )
        .unwrap();
        assert_eq!(backend.ledger().len(), 1);
    }

    #[test]
    fn a_refusal_exits_1_with_the_reason_and_a_dry_run_stores_nothing() {
        let (_, text) = payload(1_250);
        // bob has ¥3.00.
        let refused = pay(
            &cli(&["--payload", &text, "--account", "2026000002", "--dry-run"]),
            NOW,
        );
        assert_eq!(
            refused,
            Err((
                1,
                "refused: the balance does not cover the amount".to_string()
            ))
        );
        let tampered = text.replace(&text[10..11], if &text[10..11] == "A" { "B" } else { "A" });
        let refused = pay(
            &cli(&["--payload", &tampered, "--account", "1", "--dry-run"]),
            NOW,
        );
        assert!(matches!(refused, Err((1, _))), "{refused:?}");
        // Nothing is stored: a second dry run starts from the same opening balance.
        for _ in 0..2 {
            let dry = cli(&["--payload", &text, "--account", "1", "--dry-run"]);
            let (_, said) = pay(&dry, NOW).unwrap();
            assert!(
                said.ends_with("balance ¥487.50 (dry run: nothing stored)"),
                "{said}"
            );
        }
    }
}
