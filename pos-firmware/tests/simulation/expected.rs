//! What the screens and the snapshot's totals must show, from the journal alone: the expected
//! day and meal tallies, the displays' shape, and a 交易成功 screen matched to its commit (a
//! card's `SaleCommitted` or a code's `OrderPaid`).

use super::*;

use pos_firmware::core::text::method_name;

/// What the snapshot's totals must be, from the journal's commits alone: a sale counts in the
/// day and meal of its intent; past `TALLY_DAYS_KEPT` days (`TALLY_MEALS_KEPT` meals) the one
/// furthest in the past is dropped, never the clock's current one at that commit.
pub(crate) struct ExpectedTotals {
    pub(crate) days: Vec<DayTally>,
    pub(crate) meals: Vec<MealTally>,
    pub(crate) recent: Vec<Fen>,
    pub(crate) last_sale: Option<LastSale>,
}

/// Adds `amount` to `period` in `kept`, then drops the earliest periods other than `clock`
/// while more than `limit` are kept.
fn keep_tally<K: Ord + Copy>(
    kept: &mut BTreeMap<K, SalesTally>,
    period: K,
    clock: Option<K>,
    amount: Fen,
    limit: usize,
) {
    let tally = kept.entry(period).or_default();
    *tally = tally.plus(amount).unwrap_or(*tally);
    while kept.len() > limit {
        let Some(oldest) = kept.keys().copied().find(|k| Some(*k) != clock) else {
            break;
        };
        kept.remove(&oldest);
    }
}

pub(crate) fn expected_totals(commits: &[Commit], config: &TillConfig) -> ExpectedTotals {
    let mut days = BTreeMap::new();
    let mut meals = BTreeMap::new();
    for commit in commits {
        let local = local_time(commit.intent_at, config.utc_offset_minutes);
        let clock = local_time(commit.at, config.utc_offset_minutes);
        keep_tally(
            &mut days,
            local.day,
            Some(clock.day),
            commit.amount,
            TALLY_DAYS_KEPT,
        );
        if let Some(period) = config.meal_at(local.minute) {
            let clock_meal = config.meal_at(clock.minute).map(|m| (clock.day, m.start));
            keep_tally(
                &mut meals,
                (local.day, period.start),
                clock_meal,
                commit.amount,
                TALLY_MEALS_KEPT,
            );
        }
    }
    let recent = commits
        .iter()
        .rev()
        .take(RECENT_AMOUNTS_LEN)
        .rev()
        .map(|c| c.amount)
        .collect();
    let last_sale = commits.last().map(|c| LastSale {
        payer: c.payer,
        amount: c.amount,
        at: c.at,
    });
    ExpectedTotals {
        days: days
            .into_iter()
            .map(|(day, tally)| DayTally { day, tally })
            .collect(),
        meals: meals
            .into_iter()
            .map(|((day, meal_start), tally)| MealTally {
                day,
                meal_start,
                tally,
            })
            .collect(),
        recent,
        last_sale,
    }
}

pub(crate) fn check_shape(displays: &Displays, lang: Lang) -> Result<(), String> {
    ensure!(
        displays.merchant.lines.len() == MERCHANT_LINES
            && displays.customer.lines.len() == CUSTOMER_LINES,
        "displays have {} and {} lines: {displays:?}",
        displays.merchant.lines.len(),
        displays.customer.lines.len()
    );
    let status = &displays.merchant.lines[0];
    let words: &[&str] = match lang {
        Lang::Zh => &["联机", "脱机"],
        Lang::En => &["ONLINE", "OFFLINE"],
    };
    ensure!(
        !status.is_empty() && words.iter().any(|w| status.contains(w)),
        "merchant status line {status:?} does not say {words:?}"
    );
    Ok(())
}

/// The (amount, balance) lines of a success screen, if either display shows one.
pub(crate) fn success_shown(displays: &Displays, lang: Lang) -> Option<(String, String)> {
    let success = match lang {
        Lang::Zh => "交易成功",
        Lang::En => "Payment OK",
    };
    let merchant = &displays.merchant.lines;
    if merchant.get(1).is_some_and(|l| l == success) {
        return Some((merchant[2].clone(), merchant[3].clone()));
    }
    let customer = &displays.customer.lines;
    let amount = customer[0].strip_prefix(success)?;
    Some((amount.trim().to_string(), customer[1].clone()))
}

/// Whether `record` is the sale a success screen shows: a card's commit (amount, balance), or
/// a paid order (amount, and the virtual card's balance or the wallet's name).
pub(crate) fn commit_matches(record: &JournalRecord, shown: &(String, String), lang: Lang) -> bool {
    let balance = |after: Fen| match lang {
        Lang::Zh => format!("余额 ¥{after}"),
        Lang::En => format!("Balance ¥{after}"),
    };
    let (amount, third) = match &record.body {
        RecordBody::SaleCommitted(c) => (c.amount, balance(c.balance_after)),
        RecordBody::OrderPaid(paid) => {
            let third = match (paid.balance_after, paid.payer) {
                (Some(after), _) => balance(after),
                (None, Payer::Wallet { method, .. }) => method_name(lang, method),
                (None, _) => return false,
            };
            (paid.amount, third)
        }
        _ => return false,
    };
    shown.0 == format!("¥{amount}") && shown.1 == third
}
