//! A sale: the amount waits for its payer, the duplicate reminder and the balance and offline
//! checks run at the tap, then the money path of `core/money.rs` (intent → card write →
//! evidence → commit) moves the money. Sales whose card write was interrupted are settled at the
//! card's next tap, also after a restart. A scanned payment code pays the same waiting sale
//! through its own flow (`flows/order.rs`: an order with the campus server), which shares the
//! totals and the duplicate reminder kept here (`record_sale`, `is_duplicate`).

use keymap::Command;
use shared::record::{
    AbortReason, LastSale, PaidBy, Payer, PendingSale, SaleIntent, RECENT_AMOUNTS_LEN,
    TALLY_DAYS_KEPT, TALLY_MEALS_KEPT,
};
use shared::{Fen, Seq, UnixMillis};

use super::super::calendar::local_time;
use super::super::card::{CardHistory, CardImage, CardWriteOutcome, WriteEvidence};
use super::super::money::{CardIntent, Step};
use super::super::tally::count_in_tallies;
use super::super::text::{self, balance, yuan};
use super::super::{Beep, Effect, Mode, Till};
use super::order::QrShown;

/// A sale waiting for its payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) struct Payment {
    pub(in crate::core) amount: Fen,
    pub(in crate::core) fixed: bool,
    /// The payer whose duplicate payment the merchant confirmed.
    pub(in crate::core) duplicate_confirmed: Option<Payer>,
    /// An interrupted debit of this sale, waiting for the same card to come back.
    pub(in crate::core) retry: Option<Seq>,
    /// The offline QR order shown beside this sale (`flows/order/qr.rs`): cards pay it too.
    pub(in crate::core) qr: Option<QrShown>,
}

/// The states of a sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) enum SaleMode {
    AwaitingPayment(Payment),
    /// The card write is under way.
    Debiting {
        payment: Payment,
        intent: Seq,
    },
    /// The same payer is paying the same amount again: the merchant must confirm.
    ConfirmDuplicate {
        payment: Payment,
        /// The payer the reminder is about; the merchant's Enter confirms this payer only.
        payer: Payer,
    },
}

impl SaleMode {
    /// A sale of a typed amount.
    pub(in crate::core) fn typed(amount: Fen) -> SaleMode {
        SaleMode::AwaitingPayment(Payment::new(amount, false))
    }

    /// The fixed-price sale the till rests in while fixed price is on.
    pub(in crate::core) fn fixed(amount: Fen) -> SaleMode {
        SaleMode::AwaitingPayment(Payment::new(amount, true))
    }

    /// The unresolved intent this state works on (its write, or its retry).
    pub(in crate::core) fn intent_on_screen(&self) -> Option<Seq> {
        match self {
            SaleMode::AwaitingPayment(Payment {
                retry: Some(intent),
                ..
            })
            | SaleMode::Debiting { intent, .. } => Some(*intent),
            _ => None,
        }
    }

    /// Whether the information combos may run over this state: only over a fixed-price sale
    /// at rest.
    pub(in crate::core) fn combos_allowed(&self) -> bool {
        matches!(
            self,
            SaleMode::AwaitingPayment(payment) if payment.fixed && payment.retry.is_none()
        )
    }
}

impl Payment {
    pub(in crate::core) fn new(amount: Fen, fixed: bool) -> Payment {
        Payment {
            amount,
            fixed,
            duplicate_confirmed: None,
            retry: None,
            qr: None,
        }
    }
}

impl Till {
    /// A plain key while a sale is active.
    pub(in crate::core) fn sale_key(&mut self, mode: SaleMode, command: Command) -> Mode {
        let lang = self.lang();
        match mode {
            // An interrupted debit waits for its card: only Clear (give up for now) does
            // anything, in fixed-price mode too (whose Clear+Del is refused until then).
            SaleMode::AwaitingPayment(payment) if payment.retry.is_some() => match command {
                Command::Clear => {
                    self.abandon_interrupted_sale();
                    self.resting_mode()
                }
                _ => {
                    self.show_error(vec![
                        text::TAP_THE_SAME_CARD_AGAIN.get(lang),
                        text::CLEAR_GIVES_UP.get(lang),
                    ]);
                    Mode::Sale(SaleMode::AwaitingPayment(payment))
                }
            },
            SaleMode::AwaitingPayment(payment) if payment.qr.is_some() => {
                self.qr_key(payment, command)
            }
            SaleMode::AwaitingPayment(payment) if payment.fixed => {
                self.show_error(vec![
                    text::FIXED_PRICE_MODE.get(lang),
                    text::CLEAR_DEL_LEAVES_IT.get(lang),
                ]);
                Mode::Sale(SaleMode::AwaitingPayment(payment))
            }
            SaleMode::AwaitingPayment(payment) => match command {
                Command::Clear => {
                    self.show_info(vec![text::SALE_CANCELLED.get(lang)]);
                    self.resting_mode()
                }
                _ => {
                    self.show_error(vec![
                        text::WAITING_FOR_PAYMENT.get(lang),
                        text::CLEAR_CANCELS_2.get(lang),
                    ]);
                    Mode::Sale(SaleMode::AwaitingPayment(payment))
                }
            },
            SaleMode::Debiting { payment, intent } => {
                self.show_error(vec![text::CHARGING_KEEP_THE_CARD_STILL.get(lang)]);
                Mode::Sale(SaleMode::Debiting { payment, intent })
            }
            SaleMode::ConfirmDuplicate { payment, payer } => match command {
                Command::Enter => {
                    self.show_info(vec![text::CONFIRMED_TAP_AGAIN.get(lang)]);
                    // Remember the confirmation, or the next tap asks again, forever.
                    Mode::Sale(SaleMode::AwaitingPayment(Payment {
                        duplicate_confirmed: Some(payer),
                        ..payment
                    }))
                }
                Command::Clear => {
                    self.show_info(vec![text::SALE_CANCELLED.get(lang)]);
                    self.resting_mode()
                }
                _ => {
                    self.show_error(vec![text::ENTER_CONFIRMS_CLEAR_CANCELS.get(lang)]);
                    Mode::Sale(SaleMode::ConfirmDuplicate { payment, payer })
                }
            },
        }
    }

    /// A campus card was tapped while a sale is active (the tap has passed `core/tap.rs`, and
    /// no unresolved sale or top-up of this card was waiting).
    pub(in crate::core) fn sale_tap(
        &mut self,
        mode: SaleMode,
        card: &CardImage,
        history: CardHistory,
    ) {
        let lang = self.lang();
        match mode {
            SaleMode::AwaitingPayment(payment) if payment.retry.is_some() => {
                let intent_payer = payment
                    .retry
                    .and_then(|i| self.snap.pending.iter().find(|p| p.intent == i));
                let uid = intent_payer.map(|p| super::browse::payer_id(&p.sale.payer));
                self.show_error(vec![
                    text::TAP_THE_SAME_CARD_AGAIN.get(lang),
                    uid.unwrap_or_default(),
                ]);
            }
            SaleMode::AwaitingPayment(payment) => {
                let day = local_time(self.now, self.config.utc_offset_minutes).day;
                let spent_today = match history.spent {
                    Some((spent_day, spent)) if spent_day == day => spent,
                    _ => Fen::ZERO,
                };
                let payment = self.card_takes_over_the_qr(payment);
                self.start_debit(payment, card, spent_today);
            }
            SaleMode::ConfirmDuplicate { .. } => {
                self.show_error(vec![text::MERCHANT_MUST_CONFIRM_FIRST.get(lang)]);
            }
            SaleMode::Debiting { .. } => {}
        }
    }

    /// The interrupted debit this sale waits for, if any.
    pub(in crate::core) fn retry_intent(&self) -> Option<Seq> {
        match &self.mode {
            Mode::Sale(SaleMode::AwaitingPayment(Payment {
                retry: Some(intent),
                ..
            })) => Some(*intent),
            _ => None,
        }
    }

    fn start_debit(&mut self, payment: Payment, card: &CardImage, spent_today: Fen) {
        let lang = self.lang();
        let payer = Payer::CampusCard(card.uid);
        if payment.amount > self.config.max_sale {
            // Only a fixed price set before the limit was lowered can get here: typed amounts are
            // checked as they are typed.
            let over = text::amount_over_the_sale_limit(lang, payment.amount, self.config.max_sale);
            return self.show_error_to_both(vec![
                over,
                text::NOT_CHARGED_CLEAR_DEL_LEAVES_FIXED.get(lang),
            ]);
        }
        if payment.duplicate_confirmed != Some(payer) && self.is_duplicate(payer, payment.amount) {
            self.mode = Mode::Sale(SaleMode::ConfirmDuplicate { payment, payer });
            self.effects.push_back(Effect::Beep(Beep::Attention));
            return;
        }
        if let Some(lines) = self.offline_refusal(payment.amount, spent_today) {
            return self.show_error_to_both(lines);
        }
        let Some(new_balance) = card.balance.checked_sub(payment.amount) else {
            return self.show_error_to_both(vec![
                text::INSUFFICIENT_BALANCE.get(lang),
                balance(lang, card.balance),
            ]);
        };
        let Some(new_counter) = card.counter.checked_add(1) else {
            return self.show_error(vec![text::CARD_WORN_OUT_SEE_CARD_CENTRE.get(lang)]);
        };
        let now = self.now;
        let intent =
            self.begin_card_money(card, new_counter, new_balance, |intent, plan| PendingSale {
                intent,
                at: now,
                sale: SaleIntent {
                    amount: payment.amount,
                    payer,
                    card: plan,
                    fixed_price: payment.fixed,
                },
            });
        self.mode = Mode::Sale(SaleMode::Debiting { payment, intent });
    }

    /// The answer to the card write of a debit.
    pub(in crate::core) fn debit_written(
        &mut self,
        payment: Payment,
        intent: Seq,
        outcome: CardWriteOutcome,
    ) {
        let Some(pending) = self.unresolved::<PendingSale>(intent) else {
            return;
        };
        let refused = text::CARD_WRITE_FAILED_NOT_CHARGED;
        let retry = match self.card_write_answered(&pending, outcome, true, refused) {
            Step::Commit(card) => return self.commit(pending, card.balance, false),
            Step::Abort => None,
            Step::AwaitProof => Some(intent),
        };
        self.mode = Mode::Sale(SaleMode::AwaitingPayment(Payment { retry, ..payment }));
    }

    /// The same card came back after its debit was interrupted during this sale.
    pub(in crate::core) fn resume_interrupted_sale(
        &mut self,
        pending: PendingSale,
        card: &CardImage,
    ) {
        let Mode::Sale(SaleMode::AwaitingPayment(payment)) = self.mode.clone() else {
            return;
        };
        match pending.evidence(card) {
            WriteEvidence::OnCard => self.commit(pending, card.balance, true),
            WriteEvidence::NotOnCard => {
                // Same sale, same plan: the intent already on record covers this write.
                let Some(write) = pending.write_again(card.uid) else {
                    return;
                };
                self.effects.push_back(Effect::WriteCard(write));
                self.mode = Mode::Sale(SaleMode::Debiting {
                    payment: Payment {
                        retry: None,
                        ..payment
                    },
                    intent: pending.intent,
                });
            }
            WriteEvidence::Unknowable => {
                self.settle_unknowable(
                    &pending,
                    text::EARLIER_SALE_CANNOT_BE_CHECKED,
                    text::RECORDED_FOR_THE_SERVER,
                );
                self.mode = Mode::Sale(SaleMode::AwaitingPayment(Payment {
                    retry: None,
                    ..payment
                }));
            }
        }
    }

    /// A card with an unresolved sale from earlier (another sale, or before a restart) was
    /// tapped: settle that sale from what the card holds, and let the current sale wait for the
    /// next tap so the merchant sees what happened.
    pub(in crate::core) fn resolve_pending(&mut self, pending: PendingSale, card: &CardImage) {
        let lang = self.lang();
        let amount = yuan(pending.sale.amount);
        match pending.evidence(card) {
            WriteEvidence::OnCard => {
                self.settle_paid(&pending, card.balance, true);
                self.show_message(
                    vec![
                        text::EARLIER_UNFINISHED_SALE_PAID.get(lang),
                        amount.clone(),
                        balance(lang, card.balance),
                    ],
                    // The payer at the till learns it too: that sale took the money.
                    Some(vec![
                        format!("{} {amount}", text::EARLIER_SALE_PAID.get(lang)),
                        balance(lang, card.balance),
                    ]),
                    Beep::Attention,
                );
            }
            WriteEvidence::NotOnCard => {
                // "Tap again" only makes sense when a sale is waiting for a card; otherwise
                // the merchant has to type the amount again.
                let next = if matches!(self.mode, Mode::Sale(SaleMode::AwaitingPayment(_))) {
                    text::TAP_AGAIN_TO_PAY.get(lang)
                } else {
                    text::ENTER_THE_AMOUNT_AGAIN.get(lang)
                };
                self.settle(pending.aborted(AbortReason::CardNotDebited));
                self.show_message(
                    vec![
                        text::EARLIER_UNFINISHED_SALE_NOT_CHARGED.get(lang),
                        amount.clone(),
                        next,
                    ],
                    Some(vec![format!(
                        "{} {amount}",
                        text::EARLIER_SALE_NOT_PAID.get(lang)
                    )]),
                    Beep::Attention,
                );
            }
            WriteEvidence::Unknowable => self.settle_unknowable(
                &pending,
                text::EARLIER_SALE_CANNOT_BE_CHECKED,
                text::RECORDED_FOR_THE_SERVER,
            ),
        }
    }

    /// The merchant cancels a sale or top-up whose card write was interrupted: the intent stays
    /// pending until that card is seen again.
    pub(in crate::core) fn abandon_interrupted_sale(&mut self) {
        let lang = self.lang();
        self.show_message(
            vec![
                text::SALE_UNFINISHED.get(lang),
                text::CHECKED_AT_THE_CARD_S_NEXT.get(lang),
            ],
            None,
            Beep::Attention,
        );
    }

    fn commit(&mut self, pending: PendingSale, balance_after: Fen, recovered: bool) {
        let lang = self.lang();
        self.settle_paid(&pending, balance_after, recovered);
        self.mode = self.resting_mode();
        self.show_success(
            text::PAYMENT_OK.get(lang),
            pending.sale.amount,
            balance_after,
        );
    }

    /// The money of `pending` moved: counts it in the totals, then settles it as committed.
    fn settle_paid(&mut self, pending: &PendingSale, balance_after: Fen, recovered: bool) {
        self.record_sale(
            pending.sale.payer,
            pending.sale.amount,
            pending.at,
            PaidBy::Card,
        );
        // A card sale's payer is its card (only `start_debit` makes card sale intents).
        if let Payer::CampusCard(uid) = pending.sale.payer {
            self.effects.push_back(Effect::RememberCard {
                uid,
                counter: pending.sale.card.counter_before.saturating_add(1),
            });
            self.effects.push_back(Effect::CardSpent {
                uid,
                day: local_time(pending.at, self.config.utc_offset_minutes).day,
                amount: pending.sale.amount,
            });
        }
        self.settle(pending.committed(balance_after, recovered));
    }

    /// Adds a committed sale (a card's, or a paid order's: `by_code`) to the totals (and the
    /// codes' part of them), the recent amounts and the duplicate reminder. The sale counts in
    /// the day and meal in which its intent (made `at`) was made, whatever the clock did since
    /// (see `core/tally.rs`).
    pub(in crate::core) fn record_sale(
        &mut self,
        payer: Payer,
        amount: Fen,
        at: UnixMillis,
        paid_by: PaidBy,
    ) {
        let by_code = paid_by != PaidBy::Card;
        let offset = self.config.utc_offset_minutes;
        let sale = local_time(at, offset);
        let clock = local_time(self.now, offset);
        let meal = self
            .config
            .meal_at(sale.minute)
            .map(|m| (sale.day, m.start));
        let clock_meal = self
            .config
            .meal_at(clock.minute)
            .map(|m| (clock.day, m.start));
        let mut tallies = vec![(&mut self.snap.days, &mut self.snap.meals)];
        if by_code {
            tallies.push((&mut self.snap.code_days, &mut self.snap.code_meals));
        }
        for (days, meals) in tallies {
            count_in_tallies(days, sale.day, Some(clock.day), amount, TALLY_DAYS_KEPT);
            if let Some(meal) = meal {
                count_in_tallies(meals, meal, clock_meal, amount, TALLY_MEALS_KEPT);
            }
        }
        self.snap.recent_amounts.push(amount);
        while self.snap.recent_amounts.len() > RECENT_AMOUNTS_LEN {
            self.snap.recent_amounts.remove(0);
        }
        // How each recent amount was paid, kept beside it (older snapshots: by card).
        let kept = self.snap.recent_amounts.len();
        let methods = &mut self.snap.recent_methods;
        methods.push(paid_by);
        while methods.len() > kept {
            methods.remove(0);
        }
        while methods.len() < kept {
            methods.insert(0, PaidBy::Card);
        }
        self.snap.last_sale = Some(LastSale {
            payer,
            amount,
            at: self.now,
        });
    }

    pub(in crate::core) fn is_duplicate(&self, payer: Payer, amount: Fen) -> bool {
        self.snap.last_sale.is_some_and(|last| {
            last.payer == payer
                && last.amount == amount
                && last.at <= self.now
                && self.now.millis_since(last.at) < self.config.duplicate_window_ms
        })
    }

    /// The unresolved sale of `payer`, if any.
    pub(in crate::core) fn pending_for(&self, payer: Payer) -> Option<PendingSale> {
        self.snap
            .pending
            .iter()
            .find(|p| p.sale.payer == payer)
            .copied()
    }

    /// The merchant's body lines and the customer's lines of a sale.
    pub(in crate::core) fn sale_screens(&self, mode: &SaleMode) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        match mode {
            SaleMode::AwaitingPayment(payment) if payment.retry.is_some() => (
                vec![
                    text::TAP_THE_CARD_AGAIN.get(lang),
                    yuan(payment.amount),
                    text::CLEAR_GIVES_UP.get(lang),
                ],
                vec![text::TAP_YOUR_CARD_AGAIN.get(lang), yuan(payment.amount)],
            ),
            SaleMode::AwaitingPayment(Payment {
                amount,
                qr: Some(shown),
                ..
            }) => self.qr_screens(*amount, shown),
            SaleMode::AwaitingPayment(payment) => {
                let hint = if payment.fixed {
                    text::FIXED_PRICE.get(lang)
                } else if self.cards_only_offline() {
                    text::NO_QR_KEY_CARDS_ONLY.get(lang)
                } else {
                    text::CLEAR_CANCELS.get(lang)
                };
                (
                    vec![text::TAP_CARD_TO_PAY.get(lang), yuan(payment.amount), hint],
                    vec![text::PLEASE_PAY.get(lang), yuan(payment.amount)],
                )
            }
            SaleMode::Debiting { payment, .. } => (
                vec![text::CHARGING_KEEP_CARD.get(lang), yuan(payment.amount)],
                vec![text::CHARGING_KEEP_CARD.get(lang), yuan(payment.amount)],
            ),
            SaleMode::ConfirmDuplicate { payment, .. } => (
                vec![
                    text::DUPLICATE_PAYMENT.get(lang),
                    format!(
                        "{} {}",
                        text::SAME_CARD_SAME.get(lang),
                        yuan(payment.amount)
                    ),
                    text::ENTER_GO_ON_CLEAR_STOP.get(lang),
                ],
                vec![
                    text::PAID_THIS_JUST_NOW.get(lang),
                    text::CONFIRM_WITH_MERCHANT.get(lang),
                ],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testkit::{
        card, card_write, effects, keys, merchant, records, tap, till, NOW,
    };
    use super::*;
    use shared::record::{RecordBody, SaleAborted, SaleCommitted};

    #[test]
    fn a_tap_journals_the_intent_before_it_asks_for_the_card_write() {
        let mut till = till();
        keys(&mut till, "5E");
        tap(&mut till, card(20, 7));
        let effects = effects(&mut till);
        let journal = effects
            .iter()
            .position(|e| matches!(e, Effect::Journal { .. }));
        let write = effects
            .iter()
            .position(|e| matches!(e, Effect::WriteCard(_)));
        assert!(journal < write && journal.is_some(), "{effects:?}");
        assert!(matches!(
            records(&effects).as_slice(),
            [RecordBody::SaleIntent(_)]
        ));
        let write = card_write(&effects).expect("a card write");
        assert_eq!(
            (write.new_balance, write.new_counter),
            (Fen::from_yuan(15), 8)
        );
        assert_eq!(merchant(&till), "Charging, keep card | ¥5.00 | ");
    }

    #[test]
    fn a_written_and_read_back_debit_commits_and_says_so() {
        let mut till = till();
        keys(&mut till, "5E");
        tap(&mut till, card(20, 7));
        let write = card_write(&effects(&mut till)).expect("a card write");
        let after = super::super::super::testkit::written(card(20, 7), write);
        till.handle_card_written(CardWriteOutcome::Written(after), NOW);
        let records = records(&effects(&mut till));
        assert!(matches!(
            records.as_slice(),
            [RecordBody::SaleCommitted(SaleCommitted {
                recovered: false,
                ..
            })]
        ));
        assert_eq!(merchant(&till), "Payment OK | ¥5.00 | Balance ¥15.00");
        assert!(till.snapshot().pending.is_empty());
    }

    #[test]
    fn an_interrupted_debit_waits_for_the_same_card_whose_read_settles_it() {
        let mut till = till();
        keys(&mut till, "5E");
        tap(&mut till, card(20, 7));
        let write = card_write(&effects(&mut till)).expect("a card write");
        till.handle_card_written(CardWriteOutcome::Unknown, NOW);
        assert_eq!(
            merchant(&till),
            "Tap the card again | ¥5.00 | Clear gives up"
        );
        assert_eq!(till.snapshot().pending.len(), 1, "still unresolved");
        // The card comes back holding the write: committed as recovered, never debited again.
        tap(
            &mut till,
            super::super::super::testkit::written(card(20, 7), write),
        );
        let effects = effects(&mut till);
        assert!(card_write(&effects).is_none(), "no second debit");
        assert!(matches!(
            records(&effects).as_slice(),
            [RecordBody::SaleCommitted(SaleCommitted {
                recovered: true,
                ..
            })]
        ));
    }

    #[test]
    fn a_refused_write_aborts_and_the_sale_waits_for_a_new_tap() {
        let mut till = till();
        keys(&mut till, "5E");
        tap(&mut till, card(20, 7));
        effects(&mut till);
        till.handle_card_written(CardWriteOutcome::Refused, NOW);
        assert!(matches!(
            records(&effects(&mut till)).as_slice(),
            [RecordBody::SaleAborted(SaleAborted {
                reason: AbortReason::WriteRefused,
                ..
            })]
        ));
        assert_eq!(
            merchant(&till),
            "Card write failed, not charged | Tap again | "
        );
        assert_eq!(till.mode, Mode::Sale(SaleMode::typed(Fen::from_yuan(5))));
    }

    #[test]
    fn too_little_on_the_card_writes_nothing() {
        let mut till = till();
        keys(&mut till, "50E");
        tap(&mut till, card(20, 7));
        let effects = effects(&mut till);
        assert!(records(&effects).is_empty() && card_write(&effects).is_none());
        assert_eq!(merchant(&till), "Insufficient balance | Balance ¥20.00 | ");
    }
}
