//! `campus-sim`: the campus server simulator as a program, for demos and manual runs of the
//! whole path (docs/whole-path.md). It stores every till's uploads in `--store`, acks them once
//! durable, publishes a campus configuration (`--config FILE.toml`, to every till it sees and to
//! each `--terminal`), a blacklist (made up, or `--blacklist-file`, published again with a newer
//! version whenever the file changes and every hour; versions from the clock, issued now; in
//! retained pages under the broker's 2 MiB packet limit, a million cards included) and
//! the server time, answers the tills' code-payment orders through its payment back end (campus
//! accounts for virtual cards, `--account`; scripted wallets; every call logged durably in
//! `--payments-log` before it is answered), and prints its counts and the tills' presence every
//! few seconds.
//!
//! `campus-sim --statement` instead prints a merchant's statement (商户流水, issue 11:
//! `till_tests::statement`) from the store and the payment log, and exits: `--merchant-terminal`
//! (default: every till in the store, which the one campus configuration names one merchant),
//! `--from`/`--to` (local dates, default today), `--type` (卡消费 / 扫一扫 / 付款码 / 其它), `--csv
//! FILE` for the export. Run it while no `campus-sim` serves the same store.

use anyhow::Context;
use clap::Parser;
use shared::campus::Blacklist;
use shared::paycode::VirtualAccount;
use shared::{CardUid, Fen, TerminalId, UnixMillis};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use till_tests::campus::{CampusOptions, CampusSim};
use till_tests::campus_files::{load_blacklist, load_campus_config};
use till_tests::campus_pay::{CampusPayments, PAYMENTS_LOG_FILE};
use till_tests::campus_store::CampusStore;
use till_tests::statement::{
    statement, StatementQuery, StatementTypeKey, CAMPUS_UTC_OFFSET_MINUTES,
};

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
/// blacklist and the time, answers code payments.
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
    /// The payment back end's call log (default: payments.log in --store): every order call is
    /// appended and fdatasynced before it is answered, and replayed on the next start.
    #[arg(long)]
    payments_log: Option<PathBuf>,
    /// A campus account that virtual-card codes pay from, as ACCOUNT=YUAN (account number, its
    /// opening balance: `--account 42=100.00`); repeatable, replaces the default set. Default:
    /// the till simulator's demo accounts alice 2026000001 (¥100.00), bob 2026000002 (¥3.00) and
    /// carol 2026000003 (¥50.00, frozen), and accounts 1 to 20 (shown 0000000001 …
    /// 0000000020) with ¥500.00 each. Give the same accounts on every start: the log replays its
    /// calls from these opening balances.
    #[arg(long = "account", value_parser = parse_account_arg)]
    accounts: Vec<AccountArg>,
    /// An account (number) whose virtual-card codes are declined as frozen; repeatable, replaces
    /// the default (carol, 2026000003). Give the same ones on every start.
    #[arg(long = "frozen")]
    frozen: Vec<u64>,
    /// Print the merchant's statement from --store and the payment log, and exit (no broker).
    #[arg(long)]
    statement: bool,
    /// With --statement: a terminal of the merchant (16 hex digits); repeatable. Default: every
    /// till in the store.
    #[arg(long = "merchant-terminal", requires = "statement", value_parser = parse_terminal_arg)]
    merchant_terminals: Vec<TerminalId>,
    /// With --statement: the first local date shown (YYYY-MM-DD; default today).
    #[arg(long, requires = "statement")]
    from: Option<chrono::NaiveDate>,
    /// With --statement: the last local date shown (YYYY-MM-DD; default --from).
    #[arg(long, requires = "statement")]
    to: Option<chrono::NaiveDate>,
    /// With --statement: only this type (卡消费, 扫一扫, 付款码, 其它, or card, scan, code,
    /// other); repeatable. Default: every type.
    #[arg(long = "type", requires = "statement", value_parser = parse_type_arg)]
    types: Vec<StatementTypeKey>,
    /// With --statement: also write the CSV export to this file.
    #[arg(long, requires = "statement")]
    csv: Option<PathBuf>,
}

fn parse_type_arg(text: &str) -> Result<StatementTypeKey, String> {
    StatementTypeKey::parse(text)
        .ok_or_else(|| format!("\"{text}\" is not 卡消费, 扫一扫, 付款码 or 其它"))
}

/// `--statement`: prints the statement (and writes the CSV) from the store and the payment log.
fn print_statement(cli: &Cli, options: &CampusOptions) -> anyhow::Result<()> {
    let store = CampusStore::open(&cli.store)
        .with_context(|| format!("opening the store {}", cli.store.display()))?;
    let log = cli
        .payments_log
        .clone()
        .unwrap_or_else(|| cli.store.join(PAYMENTS_LOG_FILE));
    let ledger = if log.exists() {
        CampusPayments::open(&log, options.accounts.clone(), options.frozen.clone())
            .with_context(|| format!("opening the payment log {}", log.display()))?
            .ledger()
    } else {
        Vec::new()
    };
    let terminals = if cli.merchant_terminals.is_empty() {
        store.terminals().into_iter().collect()
    } else {
        cli.merchant_terminals.iter().copied().collect()
    };
    let today = chrono::Utc::now()
        .with_timezone(
            &chrono::FixedOffset::east_opt(CAMPUS_UTC_OFFSET_MINUTES * 60)
                .context("the campus's time zone")?,
        )
        .date_naive();
    let from = cli.from.unwrap_or(today);
    let query = StatementQuery {
        terminals,
        from,
        to: cli.to.unwrap_or(from),
        types: (!cli.types.is_empty()).then(|| cli.types.iter().copied().collect()),
    };
    let statement = statement(&store, &ledger, &query);
    print!("{}", statement.to_text());
    if let Some(path) = &cli.csv {
        std::fs::write(path, statement.to_csv())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("campus-sim: statement exported to {}", path.display());
    }
    Ok(())
}

/// One `--account ACCOUNT=YUAN`.
#[derive(Debug, Clone, Copy)]
struct AccountArg(VirtualAccount, Fen);

fn parse_account_arg(text: &str) -> Result<AccountArg, String> {
    let (account, yuan) = text
        .split_once('=')
        .ok_or_else(|| format!("\"{text}\" is not ACCOUNT=YUAN (e.g. 42=100.00)"))?;
    let account: u64 = account
        .trim()
        .parse()
        .map_err(|_| format!("\"{account}\" is not an account number"))?;
    let balance: Fen = yuan
        .trim()
        .parse()
        .map_err(|error| format!("\"{yuan}\" is not an amount in yuan: {error}"))?;
    Ok(AccountArg(VirtualAccount(account), balance))
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
    options.payments_log = cli.payments_log.clone();
    if !cli.accounts.is_empty() {
        options.accounts = cli.accounts.iter().map(|a| (a.0, a.1)).collect();
        options.frozen.clear();
    }
    if !cli.frozen.is_empty() {
        options.frozen = cli.frozen.iter().map(|&n| VirtualAccount(n)).collect();
    }
    if cli.statement {
        return print_statement(&cli, &options);
    }
    let accounts = options.accounts.len();
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
        "campus-sim: broker {}:{}, store {}, payments log {}, {accounts} campus accounts",
        cli.broker_host,
        cli.broker_port,
        cli.store.display(),
        cli.payments_log
            .clone()
            .unwrap_or_else(|| cli.store.join(PAYMENTS_LOG_FILE))
            .display()
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
                "campus-sim: tills online {online}, offline {offline}; {:?}; orders {}, ledger \
                 lines {}, {:?}",
                sim.stats(),
                sim.order_count(),
                sim.ledger().len(),
                sim.payment_stats()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pos_firmware::sim::script::orders::DEFAULT_ACCOUNTS;
    use till_tests::campus_pay::{
        sim_frozen, SIM_ACCOUNTS, SIM_FIRST_ACCOUNT, SIM_OPENING_BALANCE,
    };

    #[test]
    fn an_account_is_a_number_and_an_amount_in_yuan() {
        let AccountArg(account, balance) = parse_account_arg("42=100.50").unwrap();
        assert_eq!((account, balance), (VirtualAccount(42), Fen::new(10_050)));
        for bad in ["42", "x=1.00", "42=1.001", "42=-1", "=1"] {
            assert!(parse_account_arg(bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn the_help_tells_the_default_accounts_as_they_are() {
        // `--account`'s help text says: alice, bob, carol (frozen), then accounts 1 to 20,
        // ¥500.00 each.
        let demo: Vec<(u64, String)> = DEFAULT_ACCOUNTS
            .iter()
            .map(|(_, id, balance)| (*id, balance.to_string()))
            .collect();
        assert_eq!(
            demo,
            [
                (2_026_000_001, "100.00".to_string()),
                (2_026_000_002, "3.00".to_string()),
                (2_026_000_003, "50.00".to_string())
            ]
        );
        assert_eq!(sim_frozen(), [VirtualAccount(2_026_000_003)]);
        assert_eq!(
            (SIM_FIRST_ACCOUNT, SIM_FIRST_ACCOUNT + SIM_ACCOUNTS - 1),
            (1, 20)
        );
        assert_eq!(SIM_OPENING_BALANCE.to_string(), "500.00");
    }

    #[test]
    fn the_statement_option_exports_the_qr_orders_the_app_paid_into_the_stores_log() {
        use pos_firmware::sim::payments::SIM_CAMPUS_KEY_SEED;
        use pos_firmware::sim::payments::{sim_terminal_qr_key, PaymentBackend};
        use shared::ids::{MachineNumber, Seq};
        use shared::qrpay::QrOrder;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let order = QrOrder {
            terminal: TerminalId(0x5EED),
            intent: Seq(9),
            amount: Fen::new(1_250),
            machine: MachineNumber::new(58).unwrap(),
            // 2027-01-15 16:00:00 at UTC+8.
            created_at_s: 1_800_000_000,
            valid_for_s: 600,
        };
        let payload = order.payload(&sim_terminal_qr_key(order.terminal)).unwrap();
        let mut backend = PaymentBackend::open_with_frozen(
            &store.join(PAYMENTS_LOG_FILE),
            SIM_CAMPUS_KEY_SEED,
            till_tests::campus_pay::sim_accounts(),
            sim_frozen(),
        )
        .unwrap();
        backend
            .pay_qr(&payload, VirtualAccount(1), UnixMillis(1_800_000_060_000))
            .unwrap();
        drop(backend);
        let csv = dir.path().join("statement.csv");
        let cli = Cli::parse_from([
            "campus-sim",
            "--store",
            store.to_str().unwrap(),
            "--statement",
            "--merchant-terminal",
            "0000000000005eed",
            "--from",
            "2027-01-15",
            "--type",
            "扫一扫",
            "--csv",
            csv.to_str().unwrap(),
        ]);
        let options = CampusOptions::new(1883, store.clone());
        print_statement(&cli, &options).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[1],
            "0000000001,0000000001,0000000000005eed,12.50,2027-01-15 16:00:00,2027-01-15 16:01:00,扫一扫"
        );
        assert_eq!(lines[2], "合计,,,12.50,,,");
    }
}
