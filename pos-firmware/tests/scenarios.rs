//! Scenario tests: every `tests/scenarios/*.till` file is a headless script (format:
//! `docs/script.md`) that drives the whole till (keymap, core, real journal, simulated cards)
//! through a merchant's day, with `expect` lines checking both displays, the cards and the
//! journal as it goes. The cards are emulated Mifare cards read and written through the real
//! wallet and reader driver (`sim::cards`).
//!
//! Each file runs in-process with [`ScriptRunner`] in a fresh temporary data directory. The test
//! passes when the script runs to its end (every `expect` held) AND the journal it left behind
//! keeps the money invariants, checked independently of the till's own bookkeeping:
//!
//! - seqs are contiguous from 1 and end at the snapshot's `next_seq - 1`;
//! - every record carries the machine number the till had when it wrote it;
//! - every committed / aborted / in-doubt record resolves an earlier intent, at most once, with
//!   the intent's amount and payer, and a commit's balance is the intent's balance minus the amount;
//! - every intent is resolved by the end of the scenario (and the snapshot's pending list agrees);
//! - no money lost, none taken twice: for every simulated card that ends as a wallet of this
//!   campus, the committed amounts sum to its initial balance (¥0.00 for a card issued by the
//!   scenario) plus its loads minus its final balance, and its counter moved once per write;
//!   every other card is never written;
//! - every code-payment order's intent is resolved exactly once, by `OrderPaid` (with the
//!   intent's amount and method) or `OrderClosed`, after at most one `OrderReversing`; a paid
//!   order is never reversed afterwards; `OrderPaidAfterClose` only follows an order closed
//!   unpaid, once; no order is left open (and the snapshot's pending orders agree);
//! - the script's campus agrees with the journal: per order, what the campus ledger kept
//!   (charges − refunds) is the amount of a paid order (or of a late "paid" after close, a
//!   refund to chase) and nothing for every other order, and the campus holds no money of an
//!   order the journal does not know;
//! - the snapshot's last three amounts and every day and meal tally it keeps equal what the
//!   journal's commits say, card sales and paid orders alike (a sale counts in the day and meal
//!   of its intent).
//!
//! Directives: comment lines `# config: key=value ...` before the first command set up the run:
//! `lang=zh|en`, `start=YYYY-MM-DDTHH:MM[:SS]` (local time; default `DEFAULT_START`) and
//! `max_sale=<yuan>` and `qr_key=<64 hex digits>` (the till's offline QR key; `qr_key=sim`: the
//! key derived from the simulated campus's QR master, as the CLI's). The CLI ignores them (they
//! are comments): pass `--lang`, `--start` or a
//! `till.toml` instead.
//!
//! Golden output: a scenario listed in [`GOLDEN`] must print exactly `<name>.out`. Regenerate
//! with `UPDATE_GOLDEN=1 cargo test -p pos-firmware --test scenarios`, then read the diff: the
//! file is a reviewed record of what the till must show, not a snapshot of whatever it prints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pos_firmware::core::calendar::local_time;
use pos_firmware::core::config::{Lang, TillConfig};
use pos_firmware::journal::Journal;
use pos_firmware::sim::cards::{default_cards, SimCard};
use pos_firmware::sim::script::{parse_local, ScriptRunner, ScriptSetup, DEFAULT_START};
use shared::record::{
    LoadAborted, LoadInDoubt, LoadIntent, Payer, PendingSale, RecordBody, SaleIntent, SalesTally,
};
use shared::{CardUid, Fen, MachineNumber, Seq};

/// The code-payment orders' checks: the journal's orders and the script's campus.
#[path = "scenarios_check/orders.rs"]
mod orders;
use orders::{check_campus, pays_method, OrderFate, QrCodes};

/// Scenarios whose whole printed output is compared with `tests/scenarios/<name>.out`.
const GOLDEN: &[&str] = &[
    "merchants_day",
    "code_answers",
    "code_paid",
    "code_refusals",
    "code_restart",
    "code_user_paying",
    "code_virtual",
];

/// How many lines of the script's output a failure report shows.
const REPORT_TAIL_LINES: usize = 40;

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scenarios")
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Err(report) = run_scenario(stringify!($name)) {
                    panic!("\n{report}");
                }
            }
        )*

        /// A new `.till` file must get its test here, or it would silently never run.
        #[test]
        fn every_scenario_file_has_a_test() {
            let listed: BTreeSet<&str> = [$(stringify!($name)),*].into_iter().collect();
            let on_disk = scenario_names();
            let missing: Vec<_> = on_disk.iter().filter(|n| !listed.contains(n.as_str())).collect();
            let gone: Vec<_> = listed.iter().filter(|n| !on_disk.iter().any(|d| d == *n)).collect();
            assert!(missing.is_empty(), "scenario files without a test in scenarios!(): {missing:?}");
            assert!(gone.is_empty(), "tests without a scenario file: {gone:?}");
        }
    };
}

scenarios!(
    bad_input,
    cardcentre,
    clock_steps,
    code_answers,
    code_paid,
    code_refusals,
    code_restart,
    code_user_paying,
    code_virtual,
    codes,
    combos,
    duplicate,
    english,
    fixed_price,
    foreign_card,
    insufficient,
    interrupted,
    max_sale,
    merchants_day,
    offline_qr,
    offline_qr_paid,
    reader_fault,
    staff,
    topup,
);

fn scenario_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scenario_dir())
        .expect("tests/scenarios exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "till").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    names
}

/// The run's setup read from `# config:` lines.
struct Directives {
    config: TillConfig,
    start: chrono::NaiveDateTime,
}

fn read_directives(name: &str, text: &str) -> Result<Directives, String> {
    let mut config = TillConfig::default();
    let mut start = parse_local(DEFAULT_START).expect("DEFAULT_START parses");
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix('#') else {
            break; // directives come before the first command
        };
        let Some(settings) = comment.trim().strip_prefix("config:") else {
            continue;
        };
        for setting in settings.split_whitespace() {
            let bad = || format!("{name}.till: bad directive '{setting}'");
            let (key, value) = setting.split_once('=').ok_or_else(bad)?;
            match key {
                "lang" => {
                    config.lang = match value {
                        "zh" => Lang::Zh,
                        "en" => Lang::En,
                        _ => return Err(bad()),
                    }
                }
                "start" => start = parse_local(&value.replace('T', " ")).ok_or_else(bad)?,
                "max_sale" => config.max_sale = Fen::parse_yuan(value).map_err(|_| bad())?,
                // `qr_key=sim`: the key the simulator's till gets (derived from the simulated
                // campus's QR master, as the CLI does), so the script's campus app can pay it.
                "qr_key" if value == "sim" => {
                    config.demo_qr_master = Some(pos_firmware::sim::payments::SIM_QR_MASTER_KEY);
                }
                "qr_key" => {
                    let bytes = hex::decode(value).map_err(|_| bad())?;
                    let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| bad())?;
                    config.qr_key = Some(shared::qrpay::TerminalQrKey::from_bytes(bytes));
                }
                _ => return Err(bad()),
            }
        }
    }
    config.validate().map_err(|e| format!("{name}.till: {e}"))?;
    Ok(Directives { config, start })
}

/// Runs one scenario and checks everything; `Err` is a report naming the file.
fn run_scenario(name: &str) -> Result<(), String> {
    let path = scenario_dir().join(format!("{name}.till"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let directives = read_directives(name, &text)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let setup = ScriptSetup {
        data_dir: dir.path().to_path_buf(),
        config: directives.config.clone(),
        start: directives.start,
        pause_at: None,
        link: None,
    };

    let mut runner = ScriptRunner::start(setup, Vec::<u8>::new())
        .map_err(|e| format!("{name}.till: the till did not start: {e}"))?;
    let result = runner.run_lines(text.as_bytes());
    let final_cards: Vec<SimCard> = runner.cards().cards().to_vec();
    let campus_kept = runner.campus_kept_by_order();
    let output = String::from_utf8(runner.into_output()).map_err(|e| e.to_string())?;
    // `runner` is gone: the journal is closed and can be opened for the checks.

    if let Err(error) = result {
        return Err(report(
            name,
            &format!("the script failed: {error}"),
            &output,
        ));
    }
    let mut problems = check_journal(dir.path(), &final_cards, &directives.config);
    problems.extend(check_campus(dir.path(), &campus_kept));
    if GOLDEN.contains(&name) {
        if let Err(problem) = check_golden(name, &output) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(report(name, &problems.join("\n"), &output))
    }
}

fn report(name: &str, problem: &str, output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let tail = &lines[lines.len().saturating_sub(REPORT_TAIL_LINES)..];
    format!(
        "scenario {name}.till FAILED\n{problem}\n--- last {} lines of its output ---\n{}",
        tail.len(),
        tail.join("\n")
    )
}

fn check_golden(name: &str, output: &str) -> Result<(), String> {
    let path = scenario_dir().join(format!("{name}.out"));
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, output).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (create it with UPDATE_GOLDEN=1 and review it)",
            path.display()
        )
    })?;
    if expected == output {
        return Ok(());
    }
    let (mut want, mut got) = (expected.lines(), output.lines());
    for number in 1.. {
        match (want.next(), got.next()) {
            (Some(w), Some(g)) if w == g => continue,
            (w, g) => {
                return Err(format!(
                    "output differs from {name}.out at line {number}:\n  expected: {}\n  actual:   {}\n\
                     (UPDATE_GOLDEN=1 rewrites it; review the diff before committing)",
                    w.unwrap_or("<end of file>"),
                    g.unwrap_or("<end of output>")
                ))
            }
        }
    }
    unreachable!("the loop returns at the first difference")
}

/// What the journal says about one intent.
struct IntentState {
    intent: SaleIntent,
    at: shared::UnixMillis,
    resolved: bool,
}

/// Checks the journal in `dir` against the invariants in the module documentation.
fn check_journal(dir: &Path, final_cards: &[SimCard], config: &TillConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let journal = match Journal::open(dir) {
        Ok(journal) => journal,
        Err(e) => return vec![format!("the journal does not reopen: {e}")],
    };
    let snapshot = journal.snapshot().clone();

    let mut intents: BTreeMap<Seq, IntentState> = BTreeMap::new();
    // Code-payment orders: intent seq -> (intent, time, fate).
    let mut orders: BTreeMap<Seq, (shared::record::OrderIntent, shared::UnixMillis, OrderFate)> =
        BTreeMap::new();
    // (intent seq, amount, payer) of every commit (card sales and paid orders), in journal order.
    let mut commits: Vec<(Seq, Fen, Payer)> = Vec::new();
    // Offline QR orders' confirmation codes (`scenarios_check/orders.rs`).
    let mut qr_codes = QrCodes::default();
    // Top-ups: intent seq -> (intent, resolved), and (uid, amount) of every committed one.
    let mut loads: BTreeMap<Seq, (LoadIntent, bool)> = BTreeMap::new();
    let mut loaded: Vec<(CardUid, Fen)> = Vec::new();
    // Cards the scenario issued (the blank card, through the card centre).
    let mut issued: BTreeSet<CardUid> = BTreeSet::new();
    let mut expected_seq = Seq::FIRST;
    let mut in_doubt = 0usize;
    let mut machine = MachineNumber::FACTORY_DEFAULT;
    for record in journal.records_from(Seq::FIRST) {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                problems.push(format!("reading the journal: {e}"));
                break;
            }
        };
        if record.seq != expected_seq {
            problems.push(format!("seq {} where {} was due", record.seq, expected_seq));
        }
        expected_seq = record.seq.next().expect("seqs fit in u64");
        let seq = record.seq;
        if let RecordBody::MachineNumberChanged { old, new } = record.body {
            if old != machine {
                problems.push(format!(
                    "{seq} renumbers from {old} but the till was {machine}"
                ));
            }
            machine = new;
        }
        if record.machine != machine {
            problems.push(format!(
                "{seq} carries machine {} but the till was {machine}",
                record.machine
            ));
        }
        let mut resolve = |intent: Seq, what: &str| -> Option<SaleIntent> {
            match intents.get_mut(&intent) {
                None => {
                    problems.push(format!("{seq} {what} {intent}, which is no earlier intent"));
                    None
                }
                Some(state) if state.resolved => {
                    problems.push(format!("{seq} {what} {intent}, which was resolved already"));
                    None
                }
                Some(state) => {
                    state.resolved = true;
                    Some(state.intent)
                }
            }
        };
        match &record.body {
            RecordBody::SaleIntent(intent) => {
                intents.insert(
                    seq,
                    IntentState {
                        intent: *intent,
                        at: record.at,
                        resolved: false,
                    },
                );
            }
            RecordBody::SaleCommitted(c) => {
                if let Some(intent) = resolve(c.intent, "commits") {
                    if (intent.amount, intent.payer) != (c.amount, c.payer) {
                        problems.push(format!(
                            "{seq} commits {} with another amount or payer",
                            c.intent
                        ));
                    }
                    if intent.card.balance_before.checked_sub(c.amount) != Some(c.balance_after) {
                        problems.push(format!(
                            "{seq} commits {} leaving {} on a card that had {} before {}",
                            c.intent, c.balance_after, intent.card.balance_before, c.amount
                        ));
                    }
                    commits.push((c.intent, c.amount, c.payer));
                }
            }
            RecordBody::SaleAborted(a) => {
                resolve(a.intent, "aborts");
            }
            RecordBody::SaleInDoubt(d) => {
                resolve(d.intent, "puts in doubt");
                in_doubt += 1;
            }
            RecordBody::OrderIntent(o) => {
                orders.insert(seq, (*o, record.at, OrderFate::Open { reversing: false }));
            }
            RecordBody::OrderReversing { intent, .. } => match orders.get_mut(intent) {
                Some((_, _, fate @ OrderFate::Open { reversing: false })) => {
                    *fate = OrderFate::Open { reversing: true }
                }
                other => problems.push(format!(
                    "{seq} reverses order {intent}, which is {:?}",
                    other.map(|(_, _, fate)| *fate)
                )),
            },
            RecordBody::OrderPaid(p) => match orders.get_mut(&p.intent) {
                Some((o, _, fate @ OrderFate::Open { .. })) => {
                    *fate = OrderFate::Paid;
                    qr_codes.paid(seq, p, &mut problems);
                    if o.amount != p.amount || !pays_method(&p.payer, o.method) {
                        problems.push(format!(
                            "{seq} pays order {} with another amount or method",
                            p.intent
                        ));
                    }
                    commits.push((p.intent, p.amount, p.payer));
                }
                other => problems.push(format!(
                    "{seq} pays order {}, which is {:?}",
                    p.intent,
                    other.map(|(_, _, fate)| *fate)
                )),
            },
            RecordBody::OrderClosed(c) => match orders.get_mut(&c.intent) {
                Some((_, _, fate @ OrderFate::Open { .. })) => *fate = OrderFate::Closed,
                other => problems.push(format!(
                    "{seq} closes order {}, which is {:?}",
                    c.intent,
                    other.map(|(_, _, fate)| *fate)
                )),
            },
            RecordBody::OfflineCodeSale(_) => {
                problems.push(format!(
                    "{seq}: offline code payments are not audited here yet"
                ));
            }
            RecordBody::QrConfirmedByCode { .. } | RecordBody::QrCodeRejected { .. } => {
                let open = |intent: &Seq| {
                    orders.get(intent).and_then(|(o, _, fate)| {
                        matches!(fate, OrderFate::Open { reversing: false }).then_some(o.method)
                    })
                };
                qr_codes.record(seq, &record.body, open, &mut problems);
            }
            RecordBody::OrderPaidAfterClose { intent, .. } => match orders.get_mut(intent) {
                Some((_, _, fate @ OrderFate::Closed)) => *fate = OrderFate::PaidAfterClose,
                other => problems.push(format!(
                    "{seq} says order {intent} was paid after it closed, but it is {:?}",
                    other.map(|(_, _, fate)| *fate)
                )),
            },
            RecordBody::ModeChanged(_)
            | RecordBody::MachineNumberChanged { .. }
            | RecordBody::CampusConfigApplied { .. }
            | RecordBody::BlacklistReplaced(_)
            | RecordBody::ServerTimeSeen { .. }
            | RecordBody::CardAnomaly(_)
            | RecordBody::StaffPinChanged(_)
            | RecordBody::LoadResumed { .. }
            | RecordBody::CardIssueInterrupted { .. } => {}
            RecordBody::CardIssued(card) => {
                issued.insert(card.uid);
            }
            RecordBody::LoadIntent(load) => {
                loads.insert(seq, (*load, false));
            }
            RecordBody::LoadCommitted(c) => match loads.get_mut(&c.intent) {
                Some((load, resolved)) if !*resolved => {
                    *resolved = true;
                    if (load.amount, load.uid) != (c.amount, c.uid)
                        || load.card.balance_before.checked_add(c.amount) != Some(c.balance_after)
                    {
                        problems.push(format!("{seq} commits top-up {} wrongly", c.intent));
                    }
                    loaded.push((c.uid, c.amount));
                }
                _ => problems.push(format!(
                    "{seq} commits top-up {}, unknown or done",
                    c.intent
                )),
            },
            RecordBody::LoadAborted(LoadAborted { intent, .. })
            | RecordBody::LoadInDoubt(LoadInDoubt { intent, .. }) => match loads.get_mut(intent) {
                Some((_, resolved)) if !*resolved => *resolved = true,
                _ => problems.push(format!("{seq} settles top-up {intent}, unknown or done")),
            },
        }
    }
    if snapshot.machine != machine {
        problems.push(format!(
            "the snapshot says machine {} but the journal {machine}",
            snapshot.machine
        ));
    }
    if snapshot.next_seq != expected_seq {
        problems.push(format!(
            "the snapshot's next seq is {} but the last record is {}",
            snapshot.next_seq,
            expected_seq.prev().map_or("none".into(), |s| s.to_string())
        ));
    }

    // Unresolved intents: the snapshot must agree, and a finished scenario leaves none.
    let unresolved: Vec<Seq> = intents
        .iter()
        .filter(|(_, s)| !s.resolved)
        .map(|(seq, _)| *seq)
        .collect();
    let pending: Vec<Seq> = snapshot
        .pending
        .iter()
        .map(|p: &PendingSale| p.intent)
        .collect();
    if unresolved != pending {
        problems.push(format!(
            "unresolved intents {unresolved:?} but the snapshot's pending is {pending:?}"
        ));
    }
    if !unresolved.is_empty() {
        problems.push(format!(
            "the scenario ends with unresolved intents {unresolved:?}"
        ));
    }
    let unresolved_loads: Vec<Seq> = loads
        .iter()
        .filter(|(_, (_, resolved))| !resolved)
        .map(|(seq, _)| *seq)
        .collect();
    let pending_loads: Vec<Seq> = snapshot.pending_loads.iter().map(|p| p.intent).collect();
    if unresolved_loads != pending_loads || !unresolved_loads.is_empty() {
        problems.push(format!(
            "unresolved top-ups {unresolved_loads:?}, the snapshot's {pending_loads:?}: a finished scenario leaves none"
        ));
    }
    if in_doubt > 0 {
        problems.push(format!(
            "{in_doubt} sale(s) in doubt: a single simulated till can always resolve its cards' sales"
        ));
    }
    // Every order ends paid, reversed or declined: none stays open.
    let open_orders: Vec<Seq> = orders
        .iter()
        .filter(|(_, (_, _, fate))| matches!(fate, OrderFate::Open { .. }))
        .map(|(seq, _)| *seq)
        .collect();
    let pending_orders: Vec<Seq> = snapshot.pending_orders.iter().map(|p| p.intent).collect();
    if open_orders != pending_orders || !open_orders.is_empty() {
        problems.push(format!(
            "open orders {open_orders:?}, the snapshot's {pending_orders:?}: a finished scenario leaves none"
        ));
    }

    // No money lost, none taken twice: every card that is a wallet of this campus at the end
    // (a card issued during the scenario starts from ¥0.00 and counter 0).
    for initial in default_cards() {
        let Some(now) = final_cards.iter().find(|c| c.uid == initial.uid) else {
            problems.push(format!("card {} is gone", initial.name));
            continue;
        };
        if !now.campus {
            continue;
        }
        let issued_here = issued.contains(&initial.uid);
        if initial.campus == issued_here {
            problems.push(format!(
                "card {}: a wallet at the start: {}, issued by the scenario: {issued_here}",
                initial.name, initial.campus
            ));
        }
        let (initial_balance, initial_counter) = if issued_here {
            (Fen::ZERO, 0)
        } else {
            (initial.balance, initial.counter)
        };
        let mine: Vec<Fen> = commits
            .iter()
            .filter(|(_, _, payer)| *payer == Payer::CampusCard(initial.uid))
            .map(|(_, amount, _)| *amount)
            .collect();
        let committed = mine
            .iter()
            .try_fold(Fen::ZERO, |sum, a| sum.checked_add(*a));
        let loads_in: Vec<Fen> = loaded
            .iter()
            .filter(|(uid, _)| *uid == initial.uid)
            .map(|(_, amount)| *amount)
            .collect();
        let loaded_total = loads_in
            .iter()
            .try_fold(Fen::ZERO, |sum, a| sum.checked_add(*a));
        let taken = loaded_total
            .and_then(|loaded| initial_balance.checked_add(loaded))
            .and_then(|funded| funded.checked_sub(now.balance));
        if committed != taken {
            problems.push(format!(
                "card {}: the journal commits {} but the card lost {} ({} -> {})",
                initial.name,
                show_fen(committed),
                show_fen(taken),
                initial_balance,
                now.balance
            ));
        }
        let writes = mine.len() as u64 + loads_in.len() as u64;
        if u64::from(now.counter) != u64::from(initial_counter) + writes {
            problems.push(format!(
                "card {}: {} commits but its counter went {} -> {}",
                initial.name,
                mine.len(),
                initial_counter,
                now.counter
            ));
        }
    }
    // Cards that are not this campus's wallets (and were not issued) are never written.
    for foreign in default_cards().iter().filter(|c| !c.campus) {
        if issued.contains(&foreign.uid) {
            continue;
        }
        if let Some(now) = final_cards.iter().find(|c| c.uid == foreign.uid) {
            if now != foreign {
                problems.push(format!("the foreign card {} was written", foreign.name));
            }
        }
        if commits
            .iter()
            .any(|(_, _, p)| *p == Payer::CampusCard(foreign.uid))
        {
            problems.push(format!(
                "a sale was committed on the foreign card {}",
                foreign.name
            ));
        }
    }
    let mut intent_at: BTreeMap<Seq, shared::UnixMillis> =
        intents.iter().map(|(seq, s)| (*seq, s.at)).collect();
    intent_at.extend(orders.iter().map(|(seq, (_, at, _))| (*seq, *at)));
    check_tallies(&snapshot, &intent_at, &commits, config, &mut problems);
    problems
}

/// The snapshot's totals against the journal's commits (a sale counts in the day and meal of
/// its intent).
fn check_tallies(
    snapshot: &shared::record::TillSnapshot,
    intent_at: &BTreeMap<Seq, shared::UnixMillis>,
    commits: &[(Seq, Fen, Payer)],
    config: &TillConfig,
    problems: &mut Vec<String>,
) {
    let recent: Vec<Fen> = commits[commits.len().saturating_sub(3)..]
        .iter()
        .map(|(_, amount, _)| *amount)
        .collect();
    if snapshot.recent_amounts != recent {
        problems.push(format!(
            "the snapshot's last amounts {:?} are not the journal's last commits {:?}",
            snapshot.recent_amounts, recent
        ));
    }
    let tally_where = |keep: &dyn Fn(shared::UnixMillis) -> bool| {
        commits
            .iter()
            .filter(|(intent, _, _)| keep(intent_at[intent]))
            .try_fold(SalesTally::default(), |tally, (_, amount, _)| {
                tally.plus(*amount)
            })
    };
    let offset = config.utc_offset_minutes;
    // Every day and meal the snapshot keeps holds exactly the journal's commits of that day
    // (meal): the sales whose intent was made in it, whatever the clock did since.
    if !commits.is_empty() && snapshot.days.is_empty() {
        problems.push("no day tally after sales".into());
    }
    for day in &snapshot.days {
        let computed = tally_where(&|at| local_time(at, offset).day == day.day);
        if computed != Some(day.tally) {
            problems.push(format!(
                "day {:?}'s tally {:?} but the journal says {computed:?}",
                day.day, day.tally
            ));
        }
    }
    for meal in &snapshot.meals {
        let computed = tally_where(&|at| {
            let local = local_time(at, offset);
            local.day == meal.day
                && config
                    .meal_at(local.minute)
                    .is_some_and(|m| m.start == meal.meal_start)
        });
        if computed != Some(meal.tally) {
            problems.push(format!(
                "the meal tally {:?} but the journal says {computed:?}",
                meal.tally
            ));
        }
    }
}

fn show_fen(fen: Option<Fen>) -> String {
    fen.map_or("<overflow>".into(), |f| format!("¥{f}"))
}

/// The harness itself must catch a broken journal or a lost debit, or its green means nothing.
#[test]
fn the_invariant_checks_catch_lost_money() {
    let dir = tempfile::tempdir().unwrap();
    let setup = ScriptSetup {
        data_dir: dir.path().to_path_buf(),
        config: TillConfig::default(),
        start: parse_local(DEFAULT_START).unwrap(),
        pause_at: None,
        link: None,
    };
    let mut runner = ScriptRunner::start(setup, Vec::<u8>::new()).unwrap();
    let script = "type 5\nkeys Enter\ntap card-1\n";
    runner.run_lines(script.as_bytes()).unwrap();
    let mut cards: Vec<SimCard> = runner.cards().cards().to_vec();
    drop(runner);
    assert!(check_journal(dir.path(), &cards, &TillConfig::default()).is_empty());
    // Pretend the card lost another yuan the journal does not know about.
    cards[0].balance = cards[0].balance.checked_sub(Fen::from_yuan(1)).unwrap();
    let problems = check_journal(dir.path(), &cards, &TillConfig::default());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("card card-1: the journal commits ¥5.00 but the card lost ¥6.00")),
        "{problems:?}"
    );
}
