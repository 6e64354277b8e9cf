//! The scenario checks about code-payment orders: what the journal says became of each order,
//! and the script's campus against it (module documentation of `scenarios.rs`).

use super::*;

/// What the journal says about one code-payment order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderFate {
    Open {
        reversing: bool,
    },
    Paid,
    Closed,
    /// Closed unpaid, then the campus said paid: the payer's money is to be refunded.
    PaidAfterClose,
}

/// Every order of the journal in `dir`: (its amount, its fate).
fn journal_orders(dir: &Path) -> Result<BTreeMap<Seq, (Fen, OrderFate)>, String> {
    let journal = Journal::open(dir).map_err(|e| format!("the journal does not reopen: {e}"))?;
    let mut orders = BTreeMap::new();
    for record in journal.records_from(Seq::FIRST) {
        let record = record.map_err(|e| format!("reading the journal: {e}"))?;
        match &record.body {
            RecordBody::OrderIntent(o) => {
                orders.insert(record.seq, (o.amount, OrderFate::Open { reversing: false }));
            }
            RecordBody::OrderPaid(p) => {
                if let Some((_, fate)) = orders.get_mut(&p.intent) {
                    *fate = OrderFate::Paid;
                }
            }
            RecordBody::OrderClosed(c) => {
                if let Some((_, fate)) = orders.get_mut(&c.intent) {
                    *fate = OrderFate::Closed;
                }
            }
            RecordBody::OrderPaidAfterClose { intent, .. } => {
                if let Some((_, fate)) = orders.get_mut(intent) {
                    *fate = OrderFate::PaidAfterClose;
                }
            }
            _ => {}
        }
    }
    Ok(orders)
}

/// The script's campus against the journal: per order, the campus kept the amount of a paid
/// order (or of a late paid after close) and nothing of any other.
pub(crate) fn check_campus(dir: &Path, kept: &BTreeMap<Seq, i64>) -> Vec<String> {
    let orders = match journal_orders(dir) {
        Ok(orders) => orders,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    for (intent, (amount, fate)) in &orders {
        let want = match fate {
            OrderFate::Paid | OrderFate::PaidAfterClose => amount.get() as i64,
            OrderFate::Closed | OrderFate::Open { .. } => 0,
        };
        let got = kept.get(intent).copied().unwrap_or(0);
        if got != want {
            problems.push(format!(
                "order {intent} ({fate:?}, ¥{amount}): the campus kept {got} fen, the journal says {want}"
            ));
        }
    }
    for (intent, got) in kept {
        if *got != 0 && !orders.contains_key(intent) {
            problems.push(format!(
                "the campus kept {got} fen of order {intent}, which the journal does not know"
            ));
        }
    }
    problems
}

/// The code method of a paid order's payer (`None` for a card).
pub(crate) fn payer_method(payer: &Payer) -> Option<shared::paycode::CodeMethod> {
    match payer {
        Payer::CampusCard(_) => None,
        Payer::VirtualCard(_) => Some(shared::paycode::CodeMethod::VirtualCard),
        Payer::Wallet { method, .. } => Some(*method),
        Payer::CampusApp => Some(shared::paycode::CodeMethod::OfflineQr),
    }
}

/// The campus check must catch a campus and a journal that disagree about an order's money.
#[test]
fn the_campus_check_catches_a_charge_the_journal_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let setup = ScriptSetup {
        data_dir: dir.path().to_path_buf(),
        config: TillConfig::default(),
        start: parse_local(DEFAULT_START).unwrap(),
        pause_at: None,
        link: None,
    };
    let mut runner = ScriptRunner::start(setup, Vec::<u8>::new()).unwrap();
    let script = "backend up\ntype 5\nkeys Enter\nscan wechat paid-at-once\n";
    runner.run_lines(script.as_bytes()).unwrap();
    let mut kept = runner.campus_kept_by_order();
    drop(runner);
    assert_eq!(kept.get(&Seq(1)), Some(&500), "the campus charged order #1");
    assert!(check_campus(dir.path(), &kept).is_empty());
    // A refund the journal does not know of, and a charge of an order it never made.
    kept.insert(Seq(1), 0);
    kept.insert(Seq(9), 700);
    let problems = check_campus(dir.path(), &kept);
    assert!(
        problems
            .iter()
            .any(|p| p
                .contains("order #1 (Paid, ¥5.00): the campus kept 0 fen, the journal says 500")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("the campus kept 700 fen of order #9")),
        "{problems:?}"
    );
}
