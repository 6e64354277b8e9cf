//! A sale's path through the till: the duplicate reminder and balance checks, the intent, the
//! card write, the commit, and the settling of sales whose card write was interrupted (at the
//! card's next tap, also after a restart). The rules that protect money live here.

use shared::record::{
    AbortReason, CardDebitPlan, DayTally, InDoubtReason, LastSale, MealTally, Payer, PendingSale,
    RecordBody, SaleAborted, SaleCommitted, SaleInDoubt, SaleIntent, SalesTally,
    RECENT_AMOUNTS_LEN, TALLY_DAYS_KEPT, TALLY_MEALS_KEPT,
};
use shared::{Fen, LocalDay, MinuteOfDay, Seq};

use super::calendar::local_time;
use super::card::{debit_evidence, txn_tag, CardImage, CardWrite, WriteEvidence};
use super::config::Lang;
use super::text::{balance, tr, yuan};
use super::{Beep, Effect, Mode, Overlay, Payment, Till, MAX_UNRESOLVED_SALES, SUCCESS_SHOW_MS};

impl Till {
    pub(super) fn start_debit(&mut self, payment: Payment, card: &CardImage, spent_today: Fen) {
        let lang = self.lang();
        let payer = Payer::CampusCard(card.uid);
        if payment.amount > self.config.max_sale {
            // Only a fixed price set before the limit was lowered can get here: typed amounts are
            // checked as they are typed.
            let over = match lang {
                Lang::Zh => format!(
                    "{} 超过单笔限额 {}",
                    yuan(payment.amount),
                    yuan(self.config.max_sale)
                ),
                Lang::En => format!(
                    "{} over the limit {}",
                    yuan(payment.amount),
                    yuan(self.config.max_sale)
                ),
            };
            return self.show_error_to_both(vec![
                over,
                tr(
                    lang,
                    "未扣款 清零+删除退出定额",
                    "Not charged; Clear+Del leaves fixed price",
                ),
            ]);
        }
        if payment.duplicate_confirmed != Some(payer) && self.is_duplicate(payer, payment.amount) {
            self.mode = Mode::ConfirmDuplicate { payment, payer };
            self.effects.push_back(Effect::Beep(Beep::Attention));
            return;
        }
        if let Some(lines) = self.offline_refusal(payment.amount, spent_today) {
            return self.show_error_to_both(lines);
        }
        let Some(new_balance) = card.balance.checked_sub(payment.amount) else {
            return self.show_error_to_both(vec![
                tr(lang, "余额不足", "Insufficient balance"),
                balance(lang, card.balance),
            ]);
        };
        let Some(new_counter) = card.counter.checked_add(1) else {
            return self.show_error(vec![tr(
                lang,
                "卡片计数已满 请到卡务中心",
                "Card worn out: see card centre",
            )]);
        };
        let oldest = self.snap.pending.first().map(|p| p.intent);
        if let Some(oldest) = oldest.filter(|_| self.snap.pending.len() >= MAX_UNRESOLVED_SALES) {
            self.settle(RecordBody::SaleInDoubt(SaleInDoubt {
                intent: oldest,
                reason: InDoubtReason::TooManyUnresolved,
            }));
        }
        let intent = self.snap.next_seq;
        let tag = txn_tag(self.terminal, intent);
        let sale = SaleIntent {
            amount: payment.amount,
            payer,
            card: CardDebitPlan {
                counter_before: card.counter,
                balance_before: card.balance,
                tag,
            },
            fixed_price: payment.fixed,
        };
        self.snap.pending.push(PendingSale {
            intent,
            at: self.now,
            sale,
        });
        let written = self.write(RecordBody::SaleIntent(sale));
        debug_assert_eq!(written, intent);
        self.effects.push_back(Effect::WriteCard(CardWrite {
            uid: card.uid,
            counter_before: card.counter,
            new_counter,
            new_balance,
            tag,
        }));
        self.mode = Mode::Debiting { payment, intent };
    }

    /// The same card came back after its debit was interrupted during this sale.
    pub(super) fn resume_interrupted_sale(&mut self, pending: PendingSale, card: &CardImage) {
        let Mode::AwaitingPayment(payment) = self.mode.clone() else {
            return;
        };
        match self.evidence(&pending, card) {
            WriteEvidence::OnCard => self.commit(pending, card.balance, true),
            WriteEvidence::NotOnCard => {
                // Same sale, same plan: the intent already on record covers this write.
                let plan = pending.sale.card;
                let Some(new_balance) = plan.balance_before.checked_sub(pending.sale.amount) else {
                    return;
                };
                self.effects.push_back(Effect::WriteCard(CardWrite {
                    uid: card.uid,
                    counter_before: plan.counter_before,
                    new_counter: plan.counter_before.saturating_add(1),
                    new_balance,
                    tag: plan.tag,
                }));
                self.mode = Mode::Debiting {
                    payment: Payment {
                        retry: None,
                        ..payment
                    },
                    intent: pending.intent,
                };
            }
            WriteEvidence::Unknowable => {
                self.settle_in_doubt(pending);
                self.mode = Mode::AwaitingPayment(Payment {
                    retry: None,
                    ..payment
                });
            }
        }
    }

    /// A card with an unresolved sale from earlier (another sale, or before a restart) was
    /// tapped: settle that sale from what the card holds, and let the current sale wait for the
    /// next tap so the merchant sees what happened.
    pub(super) fn resolve_pending(&mut self, pending: PendingSale, card: &CardImage) {
        let lang = self.lang();
        let amount = yuan(pending.sale.amount);
        match self.evidence(&pending, card) {
            WriteEvidence::OnCard => {
                self.settle_paid(&pending, card.balance, true);
                self.show_message(
                    vec![
                        tr(
                            lang,
                            "上笔未完成交易: 已扣款",
                            "Earlier unfinished sale: paid",
                        ),
                        amount.clone(),
                        balance(lang, card.balance),
                    ],
                    // The payer at the till learns it too: that sale took the money.
                    Some(vec![
                        format!("{} {amount}", tr(lang, "上笔已扣款", "Earlier sale paid")),
                        balance(lang, card.balance),
                    ]),
                    Beep::Attention,
                );
            }
            WriteEvidence::NotOnCard => {
                // "Tap again" only makes sense when a sale is waiting for a card; otherwise
                // the merchant has to type the amount again.
                let next = if matches!(self.mode, Mode::AwaitingPayment(_)) {
                    tr(lang, "请再刷一次", "Tap again to pay")
                } else {
                    tr(lang, "请重新输入金额", "Enter the amount again")
                };
                self.settle(RecordBody::SaleAborted(SaleAborted {
                    intent: pending.intent,
                    reason: AbortReason::CardNotDebited,
                }));
                self.show_message(
                    vec![
                        tr(
                            lang,
                            "上笔未完成交易: 未扣款",
                            "Earlier unfinished sale: not charged",
                        ),
                        amount.clone(),
                        next,
                    ],
                    Some(vec![format!(
                        "{} {amount}",
                        tr(lang, "上笔未扣款", "Earlier sale not paid")
                    )]),
                    Beep::Attention,
                );
            }
            WriteEvidence::Unknowable => self.settle_in_doubt(pending),
        }
    }

    pub(super) fn settle_in_doubt(&mut self, pending: PendingSale) {
        let lang = self.lang();
        self.settle(RecordBody::SaleInDoubt(SaleInDoubt {
            intent: pending.intent,
            reason: InDoubtReason::CardMovedOn,
        }));
        self.show_message(
            vec![
                tr(lang, "上笔交易无法确认", "Earlier sale cannot be checked"),
                yuan(pending.sale.amount),
                tr(lang, "已记录 由后台核对", "Recorded for the server"),
            ],
            None,
            Beep::Attention,
        );
    }

    /// The merchant cancels a sale whose card write was interrupted: the intent stays pending
    /// until that card is seen again.
    pub(super) fn abandon_interrupted_sale(&mut self) {
        let lang = self.lang();
        self.show_message(
            vec![
                tr(lang, "交易未完成", "Sale unfinished"),
                tr(lang, "该卡下次刷卡时核对", "Checked at the card's next tap"),
            ],
            None,
            Beep::Attention,
        );
    }

    pub(super) fn commit(&mut self, pending: PendingSale, balance_after: Fen, recovered: bool) {
        let lang = self.lang();
        self.settle_paid(&pending, balance_after, recovered);
        self.mode = self.resting_mode();
        self.show_success(
            tr(lang, "交易成功", "Payment OK"),
            pending.sale.amount,
            balance_after,
        );
    }

    /// Journals how an unresolved sale or top-up ended (committed, aborted or in doubt) and takes
    /// it off its unresolved list, so that the snapshot written with the record no longer lists
    /// it.
    pub(super) fn settle(&mut self, outcome: RecordBody) -> Seq {
        let intent = match &outcome {
            RecordBody::SaleCommitted(sale) => Some(sale.intent),
            RecordBody::SaleAborted(sale) => Some(sale.intent),
            RecordBody::SaleInDoubt(sale) => Some(sale.intent),
            RecordBody::LoadCommitted(load) => Some(load.intent),
            RecordBody::LoadAborted(load) => Some(load.intent),
            RecordBody::LoadInDoubt(load) => Some(load.intent),
            _ => None,
        };
        debug_assert!(
            intent.is_some(),
            "settle() takes a sale's or top-up's outcome"
        );
        // Seqs are unique: the intent is on one list at most.
        self.snap.pending.retain(|p| Some(p.intent) != intent);
        self.snap.pending_loads.retain(|p| Some(p.intent) != intent);
        self.write(outcome)
    }

    /// The success screen of a money movement (a sale or a top-up) and its beep.
    pub(super) fn show_success(&mut self, title: String, amount: Fen, balance_after: Fen) {
        let lang = self.lang();
        let amount = yuan(amount);
        self.overlay = Some(Overlay {
            merchant: vec![title.clone(), amount.clone(), balance(lang, balance_after)],
            customer: Some(vec![
                format!("{title} {amount}"),
                balance(lang, balance_after),
            ]),
            until: self.now.saturating_add_millis(SUCCESS_SHOW_MS),
        });
        self.effects.push_back(Effect::Beep(Beep::Success));
    }

    /// The money of `pending` moved: counts it in the totals, then settles it as committed.
    pub(super) fn settle_paid(
        &mut self,
        pending: &PendingSale,
        balance_after: Fen,
        recovered: bool,
    ) {
        self.record_sale(pending);
        let Payer::CampusCard(uid) = pending.sale.payer;
        self.effects.push_back(Effect::RememberCard {
            uid,
            counter: pending.sale.card.counter_before.saturating_add(1),
        });
        self.effects.push_back(Effect::CardSpent {
            uid,
            day: local_time(pending.at, self.config.utc_offset_minutes).day,
            amount: pending.sale.amount,
        });
        self.settle(RecordBody::SaleCommitted(SaleCommitted {
            intent: pending.intent,
            amount: pending.sale.amount,
            payer: pending.sale.payer,
            balance_after,
            recovered,
        }));
    }

    /// Adds a committed sale to the totals, the recent amounts and the duplicate reminder. The
    /// sale counts in the day and meal in which its intent was made, whatever the clock did
    /// since (see [`count_in_tallies`]).
    pub(super) fn record_sale(&mut self, pending: &PendingSale) {
        let amount = pending.sale.amount;
        let offset = self.config.utc_offset_minutes;
        let sale = local_time(pending.at, offset);
        let clock = local_time(self.now, offset);
        count_in_tallies(
            &mut self.snap.days,
            sale.day,
            Some(clock.day),
            amount,
            TALLY_DAYS_KEPT,
        );
        if let Some(meal) = self.config.meal_at(sale.minute) {
            let clock_meal = self
                .config
                .meal_at(clock.minute)
                .map(|m| (clock.day, m.start));
            count_in_tallies(
                &mut self.snap.meals,
                (sale.day, meal.start),
                clock_meal,
                amount,
                TALLY_MEALS_KEPT,
            );
        }
        self.snap.recent_amounts.push(amount);
        while self.snap.recent_amounts.len() > RECENT_AMOUNTS_LEN {
            self.snap.recent_amounts.remove(0);
        }
        self.snap.last_sale = Some(LastSale {
            payer: pending.sale.payer,
            amount,
            at: self.now,
        });
    }

    pub(super) fn is_duplicate(&self, payer: Payer, amount: Fen) -> bool {
        self.snap.last_sale.is_some_and(|last| {
            last.payer == payer
                && last.amount == amount
                && last.at <= self.now
                && self.now.millis_since(last.at) < self.config.duplicate_window_ms
        })
    }

    pub(super) fn pending_for(&self, payer: Payer) -> Option<PendingSale> {
        self.snap
            .pending
            .iter()
            .find(|p| p.sale.payer == payer)
            .copied()
    }

    pub(super) fn evidence(&self, pending: &PendingSale, card: &CardImage) -> WriteEvidence {
        let plan = pending.sale.card;
        debit_evidence(
            card,
            plan.counter_before,
            plan.balance_before,
            pending.sale.amount,
            plan.tag,
        )
    }
}

/// A tally the snapshot keeps several of, one per period (a day, or a meal of a day).
pub(super) trait KeptTally: Copy {
    type Period: Ord + Copy;
    fn period(&self) -> Self::Period;
    fn tally_mut(&mut self) -> &mut SalesTally;
    fn new(period: Self::Period, tally: SalesTally) -> Self;
}

impl KeptTally for DayTally {
    type Period = LocalDay;
    fn period(&self) -> LocalDay {
        self.day
    }
    fn tally_mut(&mut self) -> &mut SalesTally {
        &mut self.tally
    }
    fn new(day: LocalDay, tally: SalesTally) -> DayTally {
        DayTally { day, tally }
    }
}

impl KeptTally for MealTally {
    type Period = (LocalDay, MinuteOfDay);
    fn period(&self) -> (LocalDay, MinuteOfDay) {
        (self.day, self.meal_start)
    }
    fn tally_mut(&mut self) -> &mut SalesTally {
        &mut self.tally
    }
    fn new((day, meal_start): (LocalDay, MinuteOfDay), tally: SalesTally) -> MealTally {
        MealTally {
            day,
            meal_start,
            tally,
        }
    }
}

/// The one rule for tallies: a sale counts in the period of its intent (`sale`), kept in
/// `tallies` (ascending by period, at most `limit`). Past the limit the period furthest in the
/// past goes, never the clock's current one (`clock`), so that Clear+5 and Clear+6 always find
/// every sale of the clock's day and meal, whether the clock was set back, forward or across
/// midnight in between. A sale of a period older than every kept one, when the list is full,
/// counts nowhere (the journal keeps it). A total that would overflow stays as it was (the
/// amounts are bounded far below that).
pub(super) fn count_in_tallies<T: KeptTally>(
    tallies: &mut Vec<T>,
    sale: T::Period,
    clock: Option<T::Period>,
    amount: Fen,
    limit: usize,
) {
    match tallies.binary_search_by_key(&sale, T::period) {
        Ok(i) => {
            let tally = tallies[i].tally_mut();
            *tally = tally.plus(amount).unwrap_or(*tally);
        }
        Err(i) => {
            let first = SalesTally::default().plus(amount).unwrap_or_default();
            tallies.insert(i, T::new(sale, first));
        }
    }
    while tallies.len() > limit {
        let Some(oldest) = tallies.iter().position(|t| Some(t.period()) != clock) else {
            break;
        };
        tallies.remove(oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i32, count: u32) -> DayTally {
        DayTally {
            day: LocalDay(n),
            tally: SalesTally {
                count,
                total: Fen::new(100 * u64::from(count)),
            },
        }
    }

    fn sell(tallies: &mut Vec<DayTally>, sale: i32, clock: i32, limit: usize) {
        count_in_tallies(
            tallies,
            LocalDay(sale),
            Some(LocalDay(clock)),
            Fen::new(100),
            limit,
        );
    }

    #[test]
    fn a_sale_counts_in_the_day_of_its_intent_and_every_day_keeps_its_total() {
        let mut days = Vec::new();
        sell(&mut days, 5, 5, 8);
        sell(&mut days, 5, 5, 8);
        // The clock is set back a day: the new sale counts on day 4, day 5 keeps its two.
        sell(&mut days, 4, 4, 8);
        // Forward again: day 5 goes on from two.
        sell(&mut days, 5, 5, 8);
        // A sale of day 4 settled late, on day 5, counts on day 4.
        sell(&mut days, 4, 5, 8);
        assert_eq!(days, vec![day(4, 2), day(5, 3)]);
    }

    #[test]
    fn past_the_limit_the_oldest_day_goes_but_never_the_clocks() {
        let mut days = Vec::new();
        for n in 10..13 {
            sell(&mut days, n, n, 3);
        }
        // A fourth day: day 10, the oldest, goes.
        sell(&mut days, 13, 13, 3);
        assert_eq!(days, vec![day(11, 1), day(12, 1), day(13, 1)]);
        // The clock is set back to day 2: its sale is the oldest but stays; day 11 goes.
        sell(&mut days, 2, 2, 3);
        assert_eq!(days, vec![day(2, 1), day(12, 1), day(13, 1)]);
        sell(&mut days, 2, 2, 3);
        assert_eq!(days, vec![day(2, 2), day(12, 1), day(13, 1)]);
        // A late sale of day 1 (older than all, the clock on day 13) counts nowhere.
        sell(&mut days, 1, 13, 3);
        assert_eq!(days, vec![day(2, 2), day(12, 1), day(13, 1)]);
    }
}
