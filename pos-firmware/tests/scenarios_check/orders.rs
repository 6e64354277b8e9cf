//! The scenario checks about code-payment orders: what the journal says became of each order,
//! and the script's campus against it (module documentation of `scenarios.rs`).

use super::*;
use shared::paycode::CodeMethod;
use shared::qrpay::MAX_CONFIRMATION_ATTEMPTS;
use shared::record::OrderPaid;

/// What the journal says about one code-payment order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderFate {
    Open {
        reversing: bool,
    },
    Paid,
    /// An offline QR order the merchant confirmed by the app's code: the campus app paid it at
    /// the campus, which the script's campus knows only when the campus-app simulator paid it.
    PaidByCode,
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
                    *fate = if p.payer == Payer::CampusApp {
                        OrderFate::PaidByCode
                    } else {
                        OrderFate::Paid
                    };
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
            OrderFate::Paid | OrderFate::PaidAfterClose | OrderFate::PaidByCode => {
                amount.get() as i64
            }
            OrderFate::Closed | OrderFate::Open { .. } => 0,
        };
        let got = kept.get(intent).copied().unwrap_or(0);
        let unknown_to_the_script = *fate == OrderFate::PaidByCode && got == 0;
        if got != want && !unknown_to_the_script {
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
pub(crate) fn payer_method(payer: &Payer) -> Option<CodeMethod> {
    match payer {
        Payer::CampusCard(_) => None,
        Payer::VirtualCard(_) => Some(CodeMethod::VirtualCard),
        Payer::Wallet { method, .. } => Some(*method),
        Payer::CampusApp => Some(CodeMethod::OfflineQr),
    }
}

/// Whether `payer` can pay an order of `method`: its own method, and for an offline QR order
/// also the campus account the campus names when it answers a query (the app paid it).
pub(crate) fn pays_method(payer: &Payer, method: CodeMethod) -> bool {
    payer_method(payer) == Some(method)
        || (method == CodeMethod::OfflineQr && matches!(payer, Payer::VirtualCard(_)))
}

/// The offline QR orders' confirmation codes as the journal tells them: every wrong code of an
/// open QR order counts up by one from 1 to at most `MAX_CONFIRMATION_ATTEMPTS`; a confirmation
/// names the wrong codes before it, comes before the limit, and is followed at once by the
/// order's `OrderPaid` by the campus app; an `OrderPaid` by the campus app follows one.
#[derive(Debug, Default)]
pub(crate) struct QrCodes {
    /// Wrong codes per order so far.
    rejected: BTreeMap<Seq, u8>,
    /// The confirmation just journaled: (its seq, the order).
    confirmed: Option<(Seq, Seq)>,
    /// Orders confirmed by code (the campus's ledger may not show them: see `check_campus`).
    pub(crate) by_code: BTreeSet<Seq>,
}

impl QrCodes {
    /// A `QrConfirmedByCode` or `QrCodeRejected` at `seq`; `open` says the method of an open,
    /// not reversing order.
    pub(crate) fn record(
        &mut self,
        seq: Seq,
        body: &RecordBody,
        open: impl Fn(&Seq) -> Option<CodeMethod>,
        problems: &mut Vec<String>,
    ) {
        let (intent, attempts, confirmed) = match body {
            RecordBody::QrConfirmedByCode { intent, attempts } => (*intent, *attempts, true),
            RecordBody::QrCodeRejected { intent, attempts } => (*intent, *attempts, false),
            _ => return,
        };
        if open(&intent) != Some(CodeMethod::OfflineQr) {
            problems.push(format!(
                "{seq}: a confirmation code for {intent}, not an open QR order"
            ));
        }
        let before = self.rejected.get(&intent).copied().unwrap_or(0);
        if confirmed {
            if attempts != before || before >= MAX_CONFIRMATION_ATTEMPTS {
                problems.push(format!(
                    "{seq}: order {intent} confirmed after {attempts} wrong codes, the journal has {before}"
                ));
            }
            self.confirmed = Some((seq, intent));
        } else {
            if attempts != before + 1 || attempts > MAX_CONFIRMATION_ATTEMPTS {
                problems.push(format!(
                    "{seq}: wrong code {attempts} of order {intent} after {before}"
                ));
            }
            self.rejected.insert(intent, attempts);
        }
    }

    /// An `OrderPaid` at `seq`.
    pub(crate) fn paid(&mut self, seq: Seq, paid: &OrderPaid, problems: &mut Vec<String>) {
        let confirmed = self.confirmed.take();
        let right_after =
            confirmed.is_some_and(|(at, intent)| at.next() == Some(seq) && intent == paid.intent);
        match (paid.payer == Payer::CampusApp, right_after) {
            (true, true) => {
                self.by_code.insert(paid.intent);
            }
            (true, false) => problems.push(format!(
                "{seq}: order {} paid by the campus app without its confirmation just before",
                paid.intent
            )),
            (false, true) => problems.push(format!(
                "{seq}: order {} confirmed by code but paid by {}",
                paid.intent, paid.payer
            )),
            (false, false) => {}
        }
        if let Some((at, _)) = confirmed.filter(|_| !right_after) {
            problems.push(format!(
                "{at}: a confirmation not followed by its OrderPaid"
            ));
        }
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

/// The confirmation-code check must catch a sale by the campus app that no confirmation
/// preceded, and wrong codes that skip a count or pass the limit.
#[test]
fn the_qr_code_check_catches_an_unconfirmed_app_payment_and_miscounted_wrong_codes() {
    let open = |_: &Seq| Some(CodeMethod::OfflineQr);
    let paid = OrderPaid {
        intent: Seq(1),
        amount: Fen::new(800),
        payer: Payer::CampusApp,
        balance_after: None,
        booked_at: shared::UnixMillis(0),
        recovered: false,
    };
    let mut problems = Vec::new();
    let mut codes = QrCodes::default();
    codes.paid(Seq(2), &paid, &mut problems);
    assert_eq!(problems.len(), 1, "{problems:?}");

    let mut problems = Vec::new();
    let mut codes = QrCodes::default();
    let rejected = |attempts| RecordBody::QrCodeRejected {
        intent: Seq(1),
        attempts,
    };
    codes.record(Seq(2), &rejected(1), open, &mut problems);
    codes.record(Seq(3), &rejected(3), open, &mut problems);
    assert_eq!(problems.len(), 1, "a skipped count: {problems:?}");
    let confirmed = RecordBody::QrConfirmedByCode {
        intent: Seq(1),
        attempts: 3,
    };
    codes.record(Seq(4), &confirmed, open, &mut problems);
    codes.paid(Seq(5), &paid, &mut problems);
    assert_eq!(
        problems.len(),
        1,
        "a confirmation right before its sale: {problems:?}"
    );
    assert!(codes.by_code.contains(&Seq(1)));
}
