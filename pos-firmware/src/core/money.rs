//! The one money path of the till: **intent → external write → evidence → commit / abort / in
//! doubt** for the card, **intent → order submit → the campus server's answers → paid /
//! declined / reversed** for a payment code. A sale's card debit and a card-centre top-up are
//! [`CardIntent`]s (the external write is one card write, the proof a fresh read of the card);
//! a code payment is a [`PendingOrder`] whose external write is the order submitted to the
//! campus server (through the daemon) and whose evidence is the server's answer about that
//! order (`flows/order.rs`). The offline QR will be one more such source.
//!
//! The rules that protect money live here, once:
//! - the intent is journaled (durably, with the snapshot that lists it as unresolved) **before**
//!   the external write is asked for: [`Till::begin_money`] emits the `Journal` effect first and
//!   the write effect (a card write, or the order submit) after it, and the driver contract runs
//!   effects in order;
//! - at most [`MAX_UNRESOLVED_SALES`] card intents of one kind wait for their evidence; past it
//!   the oldest goes to the server as "in doubt" (`TooManyUnresolved`) before the new one is
//!   opened. Orders are never put in doubt: past [`MAX_UNRESOLVED_ORDERS`] a new code is refused;
//! - a card write's answer commits only when it carries evidence that the write landed
//!   ([`Step::Commit`], with the proof); a certain refusal aborts ([`Step::Abort`], only when
//!   the flow says a refusal is final); anything else waits for fresh evidence
//!   ([`Step::AwaitProof`]): never write blindly again, never assume;
//! - fresh evidence ([`CardIntent::evidence`]) decides an unresolved card intent: landed →
//!   commit (`recovered`), certainly not landed → abort or resume the same plan, unknowable → in
//!   doubt;
//! - an order commits only on the server's "paid", closes only on its "declined" or on the
//!   answer to the reversal the till asked for (journaled as `OrderReversing` first); once a
//!   reversal is asked for, only the reversal's answer (or a decline) settles it;
//! - every intent ends in exactly one outcome record, journaled by [`Till::settle`], which takes
//!   it off its unresolved list in the same snapshot;
//! - a card intent whose evidence never comes back within [`UNRESOLVED_MAX_AGE_MS`] goes to the
//!   server as "in doubt" ([`Till::expire_unresolved`]), except the one on screen. An order never
//!   does: it is asked about until it ends paid, reversed or declined.

use shared::record::{
    AbortReason, CardDebitPlan, InDoubtReason, LoadAborted, LoadCommitted, LoadInDoubt,
    PendingLoad, PendingOrder, PendingSale, RecordBody, SaleAborted, SaleCommitted, SaleInDoubt,
    TillSnapshot,
};
use shared::{CardUid, Fen, Seq, UnixMillis};

use super::card::{txn_tag, write_evidence, CardImage, CardWrite, CardWriteOutcome, WriteEvidence};
use super::text::{self, yuan, Text};
use super::{Beep, Effect, Till};

/// The most sales (and, separately, the most top-ups) that may wait for their card to come
/// back; past it the oldest goes to the server as "in doubt".
pub const MAX_UNRESOLVED_SALES: usize = 32;
/// How long an interrupted sale or top-up waits for its card to come back to this till before
/// it goes to the server as "in doubt".
pub const UNRESOLVED_MAX_AGE_MS: u64 = 24 * 60 * 60 * 1000;
/// The most code-payment orders that may wait for their end; past it a scanned code is refused
/// (orders are never put in doubt to make room: each one is asked about until it ends).
pub const MAX_UNRESOLVED_ORDERS: usize = 32;

/// An unresolved money movement as the snapshot keeps it: what was planned. One implementation
/// per kind of movement (a card debit, a card load, a code-payment order).
pub(super) trait MoneyIntent: Copy {
    /// The snapshot's list of unresolved intents of this kind, oldest first.
    fn unresolved(snap: &TillSnapshot) -> &Vec<Self>;
    fn unresolved_mut(snap: &mut TillSnapshot) -> &mut Vec<Self>;
    /// The seq of the intent record.
    fn intent(&self) -> Seq;
    /// When the intent was made.
    fn at(&self) -> UnixMillis;
    /// The money it moves (shown when it is settled).
    fn amount(&self) -> Fen;
    /// The intent record itself.
    fn intent_body(&self) -> RecordBody;
}

/// What the flow does after the answer to its external write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step<P> {
    /// The write landed, as this proof shows: commit.
    Commit(P),
    /// The write certainly did not happen and may not be retried under this intent: abort.
    Abort,
    /// Interrupted or unclear: wait for fresh evidence (the same card tapped again).
    AwaitProof,
}

impl MoneyIntent for PendingSale {
    fn unresolved(snap: &TillSnapshot) -> &Vec<PendingSale> {
        &snap.pending
    }
    fn unresolved_mut(snap: &mut TillSnapshot) -> &mut Vec<PendingSale> {
        &mut snap.pending
    }
    fn intent(&self) -> Seq {
        self.intent
    }
    fn at(&self) -> UnixMillis {
        self.at
    }
    fn amount(&self) -> Fen {
        self.sale.amount
    }
    fn intent_body(&self) -> RecordBody {
        RecordBody::SaleIntent(self.sale)
    }
}

impl MoneyIntent for PendingLoad {
    fn unresolved(snap: &TillSnapshot) -> &Vec<PendingLoad> {
        &snap.pending_loads
    }
    fn unresolved_mut(snap: &mut TillSnapshot) -> &mut Vec<PendingLoad> {
        &mut snap.pending_loads
    }
    fn intent(&self) -> Seq {
        self.intent
    }
    fn at(&self) -> UnixMillis {
        self.at
    }
    fn amount(&self) -> Fen {
        self.load.amount
    }
    fn intent_body(&self) -> RecordBody {
        RecordBody::LoadIntent(self.load)
    }
}

impl MoneyIntent for PendingOrder {
    fn unresolved(snap: &TillSnapshot) -> &Vec<PendingOrder> {
        &snap.pending_orders
    }
    fn unresolved_mut(snap: &mut TillSnapshot) -> &mut Vec<PendingOrder> {
        &mut snap.pending_orders
    }
    fn intent(&self) -> Seq {
        self.intent
    }
    fn at(&self) -> UnixMillis {
        self.at
    }
    fn amount(&self) -> Fen {
        self.order.amount
    }
    fn intent_body(&self) -> RecordBody {
        RecordBody::OrderIntent(self.order)
    }
}

/// A money movement whose external write is one card write (the card is its payment source).
pub(super) trait CardIntent: MoneyIntent {
    /// The write as planned in the intent: the card's state before, and the tag.
    fn plan(&self) -> CardDebitPlan;
    /// The balance the write leaves (`None`: the plan cannot be written).
    fn balance_after(&self) -> Option<Fen>;
    /// Whether a read of the card shows the write landed, certainly did not, or cannot tell.
    fn evidence(&self, card: &CardImage) -> WriteEvidence;
    fn committed(&self, balance_after: Fen, recovered: bool) -> RecordBody;
    fn aborted(&self, reason: AbortReason) -> RecordBody;
    fn in_doubt(&self, reason: InDoubtReason) -> RecordBody;

    /// The planned write again, for an intent whose write certainly did not land: the intent
    /// on record covers it (same plan, same tag); never a second movement.
    fn write_again(&self, uid: CardUid) -> Option<CardWrite> {
        let plan = self.plan();
        Some(CardWrite {
            uid,
            counter_before: plan.counter_before,
            new_counter: plan.counter_before.saturating_add(1),
            new_balance: self.balance_after()?,
            tag: plan.tag,
        })
    }
}

impl CardIntent for PendingSale {
    fn plan(&self) -> CardDebitPlan {
        self.sale.card
    }
    fn balance_after(&self) -> Option<Fen> {
        self.sale.card.balance_before.checked_sub(self.sale.amount)
    }
    fn evidence(&self, card: &CardImage) -> WriteEvidence {
        card_evidence(self, card)
    }
    fn committed(&self, balance_after: Fen, recovered: bool) -> RecordBody {
        RecordBody::SaleCommitted(SaleCommitted {
            intent: self.intent,
            amount: self.sale.amount,
            payer: self.sale.payer,
            balance_after,
            recovered,
        })
    }
    fn aborted(&self, reason: AbortReason) -> RecordBody {
        RecordBody::SaleAborted(SaleAborted {
            intent: self.intent,
            reason,
        })
    }
    fn in_doubt(&self, reason: InDoubtReason) -> RecordBody {
        RecordBody::SaleInDoubt(SaleInDoubt {
            intent: self.intent,
            reason,
        })
    }
}

impl CardIntent for PendingLoad {
    fn plan(&self) -> CardDebitPlan {
        self.load.card
    }
    fn balance_after(&self) -> Option<Fen> {
        self.load.card.balance_before.checked_add(self.load.amount)
    }
    fn evidence(&self, card: &CardImage) -> WriteEvidence {
        card_evidence(self, card)
    }
    fn committed(&self, balance_after: Fen, recovered: bool) -> RecordBody {
        RecordBody::LoadCommitted(LoadCommitted {
            intent: self.intent,
            amount: self.load.amount,
            uid: self.load.uid,
            balance_after,
            recovered,
        })
    }
    fn aborted(&self, reason: AbortReason) -> RecordBody {
        RecordBody::LoadAborted(LoadAborted {
            intent: self.intent,
            reason,
        })
    }
    fn in_doubt(&self, reason: InDoubtReason) -> RecordBody {
        RecordBody::LoadInDoubt(LoadInDoubt {
            intent: self.intent,
            reason,
        })
    }
}

/// What a fresh read of the card says of the planned write (`card::write_evidence`).
fn card_evidence<I: CardIntent>(pending: &I, card: &CardImage) -> WriteEvidence {
    let plan = pending.plan();
    write_evidence(
        card,
        plan.counter_before,
        plan.balance_before,
        pending.balance_after(),
        plan.tag,
    )
}

/// The step a card write's answer calls for. `refusal_is_final`: whether a certain refusal
/// ends this intent (a first attempt) or only calls for fresh evidence (a resumed one).
pub(super) fn after_card_write<I: CardIntent>(
    pending: &I,
    outcome: CardWriteOutcome,
    refusal_is_final: bool,
) -> Step<CardImage> {
    match outcome {
        CardWriteOutcome::Written(card) if pending.evidence(&card) == WriteEvidence::OnCard => {
            Step::Commit(card)
        }
        CardWriteOutcome::Refused if refusal_is_final => Step::Abort,
        // Interrupted, or read back as something else: only a fresh read can tell.
        CardWriteOutcome::Written(_) | CardWriteOutcome::Refused | CardWriteOutcome::Unknown => {
            Step::AwaitProof
        }
    }
}

impl Till {
    /// Opens a money movement: builds the intent for the seq it will have (`plan`), lists it as
    /// unresolved, journals it, then asks for the external write (`write`). Returns the intent's
    /// seq. The caller has made room (card intents: [`Till::begin_card_money`]; orders: a code
    /// past [`MAX_UNRESOLVED_ORDERS`] is refused before).
    pub(super) fn begin_money<I: MoneyIntent>(
        &mut self,
        plan: impl FnOnce(Seq) -> I,
        write: impl FnOnce(&I) -> Effect,
    ) -> Seq {
        let pending = plan(self.snap.next_seq);
        I::unresolved_mut(&mut self.snap).push(pending);
        let written = self.write(pending.intent_body());
        debug_assert_eq!(written, pending.intent());
        self.effects.push_back(write(&pending));
        written
    }

    /// Opens a money movement whose external write is one write of `card` (a debit or a load):
    /// the plan (the card as read, and the tag made from the intent's seq) goes into the intent
    /// `make` builds, and the write to `new_counter` and `new_balance` is asked for. The flow has
    /// checked both (and says why when the card cannot take them). First it makes room under
    /// [`MAX_UNRESOLVED_SALES`]. Returns the intent's seq.
    pub(super) fn begin_card_money<I: CardIntent>(
        &mut self,
        card: &CardImage,
        new_counter: u32,
        new_balance: Fen,
        make: impl FnOnce(Seq, CardDebitPlan) -> I,
    ) -> Seq {
        if I::unresolved(&self.snap).len() >= MAX_UNRESOLVED_SALES {
            if let Some(oldest) = I::unresolved(&self.snap).first().copied() {
                self.settle(oldest.in_doubt(InDoubtReason::TooManyUnresolved));
            }
        }
        let (card, terminal) = (*card, self.terminal);
        self.begin_money(
            |intent| {
                let plan = CardDebitPlan {
                    counter_before: card.counter,
                    balance_before: card.balance,
                    tag: txn_tag(terminal, intent),
                };
                make(intent, plan)
            },
            |pending| {
                Effect::WriteCard(CardWrite {
                    uid: card.uid,
                    counter_before: card.counter,
                    new_counter,
                    new_balance,
                    tag: pending.plan().tag,
                })
            },
        )
    }

    /// The answer to the card write of `pending` ([`after_card_write`]), and what it settles
    /// the same way for every card flow: a final refusal journals the abort and tells the
    /// merchant `refused` (nothing moved) and to tap again; an unclear answer beeps while the
    /// intent waits for its card. The flow commits ([`Step::Commit`]) and sets its own state.
    pub(super) fn card_write_answered<I: CardIntent>(
        &mut self,
        pending: &I,
        outcome: CardWriteOutcome,
        refusal_is_final: bool,
        refused: Text,
    ) -> Step<CardImage> {
        let step = after_card_write(pending, outcome, refusal_is_final);
        match step {
            Step::Commit(_) => {}
            Step::Abort => {
                let lang = self.lang();
                self.settle(pending.aborted(AbortReason::WriteRefused));
                self.show_error(vec![refused.get(lang), text::TAP_AGAIN.get(lang)]);
            }
            Step::AwaitProof => self.effects.push_back(Effect::Beep(Beep::Error)),
        }
        step
    }

    /// Fresh evidence cannot tell whether the write of `pending` landed (the card moved on
    /// since): it goes to the server as "in doubt", and the merchant reads `why`, the amount and
    /// `next`.
    pub(super) fn settle_unknowable<I: CardIntent>(&mut self, pending: &I, why: Text, next: Text) {
        let lang = self.lang();
        self.settle(pending.in_doubt(InDoubtReason::CardMovedOn));
        self.show_message(
            vec![why.get(lang), yuan(pending.amount()), next.get(lang)],
            None,
            Beep::Attention,
        );
    }

    /// The unresolved intent of this kind with seq `intent`.
    pub(super) fn unresolved<I: MoneyIntent>(&self, intent: Seq) -> Option<I> {
        I::unresolved(&self.snap)
            .iter()
            .find(|p| p.intent() == intent)
            .copied()
    }

    /// Journals how an unresolved sale, top-up or order ended (committed, aborted or in doubt;
    /// paid or closed) and takes
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
            RecordBody::OrderPaid(order) => Some(order.intent),
            RecordBody::OrderClosed(order) => Some(order.intent),
            _ => None,
        };
        debug_assert!(
            intent.is_some(),
            "settle() takes a sale's, top-up's or order's outcome"
        );
        // Seqs are unique: the intent is on one list at most.
        self.snap.pending.retain(|p| Some(p.intent) != intent);
        self.snap.pending_loads.retain(|p| Some(p.intent) != intent);
        self.snap
            .pending_orders
            .retain(|p| Some(p.intent) != intent);
        self.snap.qr_attempts.retain(|(i, _)| Some(*i) != intent);
        self.write(outcome)
    }

    /// When the oldest unresolved intent (other than the one on screen) expires.
    pub(super) fn unresolved_deadline(&self) -> Option<UnixMillis> {
        [
            self.oldest_at::<PendingSale>(),
            self.oldest_at::<PendingLoad>(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_add_millis(UNRESOLVED_MAX_AGE_MS))
    }

    fn oldest_at<I: MoneyIntent>(&self) -> Option<UnixMillis> {
        let busy = self.intent_on_screen();
        I::unresolved(&self.snap)
            .iter()
            .filter(|p| Some(p.intent()) != busy)
            .map(|p| p.at())
            .min()
    }

    /// Sales and top-ups whose card has not come back for [`UNRESOLVED_MAX_AGE_MS`] go to the
    /// server as "in doubt" (not while their own retry screen is up: the merchant is on it).
    pub(super) fn expire_unresolved(&mut self) {
        self.expire::<PendingSale>();
        self.expire::<PendingLoad>();
    }

    fn expire<I: CardIntent>(&mut self) {
        let now = self.now;
        let busy = self.intent_on_screen();
        let expired: Vec<I> = I::unresolved(&self.snap)
            .iter()
            .filter(|p| {
                p.at() <= now
                    && now.millis_since(p.at()) >= UNRESOLVED_MAX_AGE_MS
                    && Some(p.intent()) != busy
            })
            .copied()
            .collect();
        for pending in expired {
            self.settle(pending.in_doubt(InDoubtReason::CardNeverReturned));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{card, card_write, effects, keys, records, tap, till, written};
    use super::*;

    /// A sale of ¥5 opened on `card(20, 7)`, its intent and its planned write.
    fn opened() -> (Till, PendingSale, super::super::card::CardWrite) {
        let mut till = till();
        keys(&mut till, "5E");
        tap(&mut till, card(20, 7));
        let write = card_write(&effects(&mut till)).expect("a card write");
        let pending = till.snapshot().pending[0];
        (till, pending, write)
    }

    #[test]
    fn only_a_read_back_that_shows_the_write_commits() {
        let (_, pending, write) = opened();
        let landed = written(card(20, 7), write);
        assert_eq!(
            after_card_write(&pending, CardWriteOutcome::Written(landed), true),
            Step::Commit(landed)
        );
        // Read back as something else (another write got there first): wait for evidence.
        let other = card(3, 8);
        assert_eq!(
            after_card_write(&pending, CardWriteOutcome::Written(other), true),
            Step::AwaitProof
        );
        assert_eq!(
            after_card_write(&pending, CardWriteOutcome::Unknown, true),
            Step::AwaitProof
        );
    }

    #[test]
    fn a_refusal_aborts_only_when_the_flow_says_it_is_final() {
        let (_, pending, _) = opened();
        assert_eq!(
            after_card_write(&pending, CardWriteOutcome::Refused, true),
            Step::Abort
        );
        assert_eq!(
            after_card_write(&pending, CardWriteOutcome::Refused, false),
            Step::AwaitProof
        );
    }

    #[test]
    fn evidence_tells_landed_from_not_landed_from_unknowable() {
        let (_, pending, write) = opened();
        assert_eq!(
            pending.evidence(&written(card(20, 7), write)),
            WriteEvidence::OnCard
        );
        assert_eq!(pending.evidence(&card(20, 7)), WriteEvidence::NotOnCard);
        assert_eq!(pending.evidence(&card(12, 9)), WriteEvidence::Unknowable);
    }

    /// `card_write_answered` serves the top-up as it serves the sale: a refused first write
    /// journals the abort and says nothing was loaded; an unclear one journals nothing and
    /// leaves the load waiting for its card.
    #[test]
    fn a_top_up_write_is_answered_by_the_same_rule_as_a_sale() {
        use super::super::testkit::{merchant, open_card_centre, NOW};
        let loading = || {
            let mut till = till();
            open_card_centre(&mut till);
            keys(&mut till, "50E");
            tap(&mut till, card(20, 7));
            effects(&mut till);
            till
        };
        let mut refused = loading();
        let pending = refused.snapshot().pending_loads[0];
        refused.handle_card_written(CardWriteOutcome::Refused, NOW);
        assert_eq!(
            records(&effects(&mut refused)),
            vec![pending.aborted(AbortReason::WriteRefused)]
        );
        assert_eq!(
            merchant(&refused),
            "Card write failed, not loaded | Tap again | "
        );
        assert!(refused.snapshot().pending_loads.is_empty());

        let mut unclear = loading();
        unclear.handle_card_written(CardWriteOutcome::Unknown, NOW);
        let effects = effects(&mut unclear);
        assert!(records(&effects).is_empty(), "{effects:?}");
        assert!(effects.contains(&Effect::Beep(Beep::Error)));
        assert_eq!(unclear.snapshot().pending_loads, vec![pending]);
    }

    #[test]
    fn an_unresolved_intent_goes_in_doubt_after_its_age_but_not_before() {
        let (mut till, pending, _) = opened();
        till.handle_card_written(CardWriteOutcome::Unknown, till.now);
        keys(&mut till, "C"); // the merchant gives up for now: the intent stays unresolved
        effects(&mut till);
        let deadline = pending.at.saturating_add_millis(UNRESOLVED_MAX_AGE_MS);
        assert_eq!(till.unresolved_deadline(), Some(deadline));
        till.handle_tick(UnixMillis(deadline.0 - 1));
        assert!(records(&effects(&mut till)).is_empty());
        till.handle_tick(deadline);
        assert_eq!(
            records(&effects(&mut till)),
            vec![pending.in_doubt(InDoubtReason::CardNeverReturned)]
        );
        assert!(till.snapshot().pending.is_empty());
    }
}
