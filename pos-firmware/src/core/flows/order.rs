//! A code payment: the order a scanned payment code starts, from its intent to paid, declined or
//! reversed. Its money path is the one of `core/money.rs`: the intent (`OrderIntent`: the code's
//! digest and last characters, never the code) is journaled before the submit leaves the till,
//! and only the campus server's answer about the order settles it.
//!
//! The rules of an order (issue 10; `docs/code-payments.md` is the prose version):
//! - the order's id is (terminal, seq of its intent): every submit, query and reversal names it,
//!   and the server charges an order id at most once, so asking again is always safe;
//! - the code's clear text lives only in RAM, on the order on screen, and only until the order
//!   is reversed or leaves the screen: it is what a resubmit of the same order id needs when a
//!   query answers "not found" while the merchant still waits;
//! - answers: paid → `OrderPaid` (totals, the code tallies, the last sale); declined →
//!   `OrderClosed(Declined)`; user paying → ask again every `order_query_interval_ms` while the
//!   countdown runs; the window over (`order_pay_window_ms` from the scan) or Clear →
//!   `OrderReversing` journaled first, then the reversal is asked for, and its answer
//!   (`Reversed { refunded }`) settles the order;
//! - **while reversing, a "paid" answer does not commit**: it answers an older query, and the
//!   reversal asked for after it decides (the server refunds a paid order it reverses, and says
//!   so: `Reversed { refunded: true }`). So what the till journals is what the payer's account
//!   ends with: paid and kept, or nothing/refunded;
//! - no answer within [`ORDER_ANSWER_TIMEOUT_MS`] (or "busy") → ask again: the submit again
//!   while the code is held and the server has said nothing, a query otherwise, the reversal
//!   again while reversing;
//! - a request that cannot leave the till (no daemon, no broker) while the order is on screen:
//!   the merchant is told why and to take the card or cash, `OrderReversing(RouteDown)` is
//!   journaled (a restart reverses it too), and the reversal is sent when the route is back;
//! - orders not on screen (after a restart, sent to the background, route down) are asked about
//!   every [`ORDER_BACKGROUND_RETRY_MS`] and at once when the link comes back; at start-up the
//!   till shows "核对未完成订单 N" and settles them before the next sale (Clear: background);
//!   after a restart a query answering "not found" reverses the order (its code is gone, and the
//!   reversal closes the id so a submit still in flight can never charge it);
//! - a result for an order that is no longer pending changes nothing, except a "paid" for an
//!   order this till closed unpaid (declined, or reversed with nothing refunded): the payer's
//!   money moved without a sale, so `OrderPaidAfterClose` is journaled once (a refund to chase,
//!   shown on Clear+9). The till remembers the last [`CLOSED_ORDERS_REMEMBERED`] closed orders;
//! - every order ends paid, reversed or declined: orders never go "in doubt" by age or count.

use std::collections::{BTreeMap, VecDeque};

use shared::pay::{OrderCall, OrderId, OrderRequest, OrderResult, OrderState};
use shared::paycode::{CodeDigest, PaymentCode, VirtualCardRefusal};
use shared::record::{
    OrderClosed, OrderEnd, OrderIntent, OrderPaid, PaidBy, Payer, PendingOrder, RecordBody,
    ReverseWhy,
};
use shared::{Fen, Seq, UnixMillis};

use super::super::money::MAX_UNRESOLVED_ORDERS;
use super::super::text::{self, balance, yuan, Text};
use super::super::{Beep, Effect, Mode, Till, SUCCESS_SHOW_MS};
use super::messages::Overlay;
use super::sale::{Payment, SaleMode};
use shared::link::BrokerLink;

/// How long the till waits for the answer to a request about the order on screen before it asks
/// again (the back end answers in well under a second; the broker may have lost the message).
pub const ORDER_ANSWER_TIMEOUT_MS: u64 = 5_000;
/// How often an order not on screen (background, after a restart, route down) is asked about.
pub const ORDER_BACKGROUND_RETRY_MS: u64 = 30_000;
/// How long after a "busy" answer the till asks again.
pub const ORDER_BUSY_RETRY_MS: u64 = 1_000;
/// How many closed orders the till remembers, to tell a late "paid" for one of them (a refund
/// to chase) from noise.
pub const CLOSED_ORDERS_REMEMBERED: usize = 32;
/// How many codes used lately the till remembers, to refuse the same code scanned again.
pub const USED_CODES_REMEMBERED: usize = 32;

/// The order flow's screens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) enum OrderMode {
    /// The order on screen: submitted, waiting for the payer, or being reversed.
    OnScreen { intent: Seq },
    /// At start: orders from before the restart are settled before the next sale.
    StartupCheck,
}

/// What the till keeps in RAM about its orders; the snapshot's `pending_orders` is the durable
/// part.
#[derive(Debug, Default)]
pub(in crate::core) struct OrderBook {
    live: BTreeMap<Seq, LiveOrder>,
    /// Orders closed lately, oldest first; at most [`CLOSED_ORDERS_REMEMBERED`].
    closed: VecDeque<ClosedOrder>,
    /// Digests of codes used lately, oldest first; at most [`USED_CODES_REMEMBERED`].
    used_codes: VecDeque<CodeDigest>,
}

/// A pending order's state in RAM.
#[derive(Debug)]
struct LiveOrder {
    /// The code in clear: only while the order is on screen and not reversing.
    code: Option<PaymentCode>,
    /// The server answered about it (anything but "not found"): no resubmit needed.
    heard: bool,
    /// The server said the payer is confirming: the payment window applies.
    paying: bool,
    /// When to ask about it again.
    due: UnixMillis,
    /// When the payment window ends: the intent's time plus the window, moved back with the
    /// clock when the clock is set back ([`Till::orders_clock_went_back`]), so a clock step
    /// never keeps a payer's order open longer than the window.
    window_end: UnixMillis,
}

#[derive(Debug, Clone, Copy)]
struct ClosedOrder {
    intent: Seq,
    amount: Fen,
    /// Whether a late "paid" would be money taken without a sale (closed unpaid).
    chase_late_paid: bool,
}

impl Till {
    /// The order on screen, if any.
    fn order_on_screen(&self) -> Option<Seq> {
        match self.mode {
            Mode::Order(OrderMode::OnScreen { intent }) => Some(intent),
            _ => None,
        }
    }

    fn order_id(&self, intent: Seq) -> OrderId {
        OrderId {
            terminal: self.terminal,
            intent,
        }
    }

    /// Why a code cannot pay now (manual offline, no link, link or broker down), if so.
    pub(in crate::core) fn codes_refused_because(&self) -> Option<Text> {
        if self.snap.offline {
            return Some(text::OFFLINE_CODES_CANNOT_PAY);
        }
        match self.link {
            None => Some(text::NO_LINK_CODES_CANNOT_PAY),
            Some(link) if !link.daemon_connected => Some(text::LINK_DOWN_CODES_CANNOT_PAY),
            Some(link) if link.broker != Some(BrokerLink::Up) => {
                Some(text::SERVER_DOWN_CODES_CANNOT_PAY)
            }
            Some(_) => None,
        }
    }

    /// Whether a request can reach the campus server (the link and its broker are up).
    fn order_route_up(&self) -> bool {
        self.link
            .is_some_and(|link| link.daemon_connected && link.broker == Some(BrokerLink::Up))
    }

    /// At start: orders from before the restart are asked about (reversing ones: reversed) and
    /// the start-up screen says so.
    /// Offline QR orders do not hold the next sale (they wait for their payer, not for an
    /// answer); the newest still valid goes back on screen (`order/qr.rs`).
    pub(in crate::core) fn check_orders_at_start(&mut self) {
        if self.snap.pending_orders.is_empty() {
            return;
        }
        if self.orders_to_check() > 0 {
            self.mode = Mode::Order(OrderMode::StartupCheck);
        }
        for pending in self.snap.pending_orders.clone() {
            self.ask_about(pending);
        }
        self.reopen_qr_at_start();
    }

    /// The pending orders the start-up check waits for (all but offline QR orders).
    fn orders_to_check(&self) -> usize {
        self.snap.pending_orders.len() - self.pending_qr_orders()
    }

    /// A recognised payment code was scanned (`core/tap.rs`).
    pub(in crate::core) fn code_scanned(&mut self, code: PaymentCode) {
        let lang = self.lang();
        let payment = match self.mode.clone() {
            Mode::Sale(SaleMode::AwaitingPayment(payment)) if payment.retry.is_none() => payment,
            Mode::Sale(SaleMode::AwaitingPayment(_)) => {
                return self.show_error(vec![
                    text::TAP_THE_SAME_CARD_AGAIN.get(lang),
                    text::CLEAR_GIVES_UP.get(lang),
                ]);
            }
            Mode::Entry(_) => {
                return self
                    .show_error_to_both(vec![text::ENTER_THE_AMOUNT_BEFORE_THE_CODE.get(lang)])
            }
            Mode::Sale(SaleMode::Debiting { .. }) => {
                return self.show_error(vec![text::CARD_WRITE_IN_PROGRESS.get(lang)])
            }
            Mode::CardCentre(_) if self.reader_busy() => {
                return self.show_error(vec![text::CARD_WRITE_IN_PROGRESS.get(lang)])
            }
            Mode::Order(_) => return self.show_error(vec![text::ORDER_IN_PROGRESS.get(lang)]),
            Mode::Sale(SaleMode::ConfirmDuplicate { .. }) => {
                return self.show_error(vec![text::MERCHANT_MUST_CONFIRM_FIRST.get(lang)])
            }
            Mode::Browse(_) | Mode::Staff(_) | Mode::CardCentre(_) => {
                return self.show_error(vec![text::EXIT_FIRST_CLEAR.get(lang)])
            }
        };
        let digest = code.digest();
        let open = self
            .snap
            .pending_orders
            .iter()
            .any(|p| p.order.code == digest);
        if open || self.orders.used_codes.contains(&digest) {
            return self.show_error_to_both(vec![text::CODE_ALREADY_USED.get(lang)]);
        }
        if let Some(why) = self.codes_refused_because() {
            // No route to the campus: an offline virtual-card sale, or why not (offline_code.rs).
            return self.offline_code_scanned(payment, code, why);
        }
        if let Some(refusal) = self.forged_virtual_card(&code) {
            let why = match refusal {
                VirtualCardRefusal::UnknownKey(id) => text::code_key_unknown(lang, id),
                _ => text::CODE_SIGNATURE_BAD.get(lang),
            };
            return self.show_error_to_both(vec![text::CODE_INVALID.get(lang), why]);
        }
        let account = code.virtual_card().map(|fields| {
            let now = UnixMillis(self.now.0.saturating_add(self.server_offset.unwrap_or(0)));
            (fields.account, fields.expires_at() <= now)
        });
        if let Some((_, true)) = account {
            return self.show_error_to_both(vec![text::CODE_EXPIRED_REFRESH.get(lang)]);
        }
        if self.snap.pending_orders.len() >= MAX_UNRESOLVED_ORDERS {
            return self.show_error_to_both(vec![
                text::TOO_MANY_OPEN_ORDERS.get(lang),
                text::PLEASE_USE_THE_CAMPUS_CARD.get(lang),
            ]);
        }
        if payment.amount > self.config.max_sale {
            let over = text::amount_over_the_sale_limit(lang, payment.amount, self.config.max_sale);
            return self.show_error_to_both(vec![
                over,
                text::NOT_CHARGED_CLEAR_DEL_LEAVES_FIXED.get(lang),
            ]);
        }
        // A virtual card's payer is known before paying: the duplicate reminder covers it. A
        // wallet's payer is known only once paid; its phone's own duplicate prompt covers it.
        if let Some((account, _)) = account {
            let payer = Payer::VirtualCard(account);
            if payment.duplicate_confirmed != Some(payer)
                && self.is_duplicate(payer, payment.amount)
            {
                self.mode = Mode::Sale(SaleMode::ConfirmDuplicate { payment, payer });
                self.effects.push_back(Effect::Beep(Beep::Attention));
                return;
            }
        }
        self.begin_order(payment, code, account.map(|(account, _)| account));
    }

    /// Why the campus keys the till holds refuse a virtual-card code (its signature does not
    /// verify with the key its id names, or it names a key the till does not hold); `None` for
    /// a good one, for a wallet's code, and when the till holds no keys (the campus verifies).
    /// Its time is not judged here: the expiry check after this one does, with its own message.
    fn forged_virtual_card(&self, code: &PaymentCode) -> Option<VirtualCardRefusal> {
        if self.config.virtual_card_keys.is_empty() {
            return None;
        }
        let fields = code.virtual_card()?;
        // At its own issue time a code is neither expired nor early: only key and signature
        // can fail.
        let issued = UnixMillis(i64::from(fields.issued_at_s) * 1000);
        fields
            .verify(&|id| self.config.virtual_card_key(id), issued)
            .err()
    }

    /// Journals the order's intent, then submits it.
    fn begin_order(
        &mut self,
        payment: Payment,
        code: PaymentCode,
        account: Option<shared::paycode::VirtualAccount>,
    ) {
        let (now, terminal) = (self.now, self.terminal);
        let order = OrderIntent {
            amount: payment.amount,
            method: code.method(),
            code: code.digest(),
            hint: code.hint(),
            account,
            fixed_price: payment.fixed,
        };
        let submit = code.clone();
        let intent = self.begin_money(
            |intent| PendingOrder {
                intent,
                at: now,
                order,
                reversing: false,
            },
            |pending| {
                Effect::Order(OrderCall {
                    order: OrderId {
                        terminal,
                        intent: pending.intent,
                    },
                    request: OrderRequest::Submit {
                        amount: pending.order.amount,
                        method: pending.order.method,
                        code: submit,
                        at: now,
                    },
                })
            },
        );
        self.orders.used_codes.push_back(order.code);
        while self.orders.used_codes.len() > USED_CODES_REMEMBERED {
            self.orders.used_codes.pop_front();
        }
        self.orders.live.insert(
            intent,
            LiveOrder {
                code: Some(code),
                heard: false,
                paying: false,
                due: now.saturating_add_millis(ORDER_ANSWER_TIMEOUT_MS),
                window_end: now.saturating_add_millis(self.config.order_pay_window_ms),
            },
        );
        self.mode = Mode::Order(OrderMode::OnScreen { intent });
    }

    /// Asks the campus server about `pending`: the reversal while reversing, the submit again
    /// while its code is held and nothing was heard, else a query.
    fn ask_about(&mut self, pending: PendingOrder) {
        let on_screen = self.order_on_screen() == Some(pending.intent);
        let wait = if on_screen {
            ORDER_ANSWER_TIMEOUT_MS
        } else {
            ORDER_BACKGROUND_RETRY_MS
        };
        let now = self.now;
        let live = self.live_order(pending.intent);
        live.due = now.saturating_add_millis(wait);
        let request = match &live.code {
            _ if pending.reversing => OrderRequest::Reverse,
            Some(code) if !live.heard => OrderRequest::Submit {
                amount: pending.order.amount,
                method: pending.order.method,
                code: code.clone(),
                at: pending.at,
            },
            _ => OrderRequest::Query,
        };
        let order = self.order_id(pending.intent);
        self.effects
            .push_back(Effect::Order(OrderCall { order, request }));
    }

    /// The RAM state of a pending order (made for one known only from the snapshot).
    fn live_order(&mut self, intent: Seq) -> &mut LiveOrder {
        let now = self.now;
        let window_end = self.window_end_on_record(intent);
        self.orders.live.entry(intent).or_insert(LiveOrder {
            code: None,
            heard: false,
            paying: false,
            due: now,
            window_end,
        })
    }

    /// The end of an order's payment window as its intent's time says (for an order the till
    /// knows only from the snapshot: after a restart).
    fn window_end_on_record(&self, intent: Seq) -> UnixMillis {
        let at = self
            .unresolved::<PendingOrder>(intent)
            .map_or(self.now, |pending| pending.at);
        at.saturating_add_millis(self.config.order_pay_window_ms)
    }

    /// The clock was set back by `back_ms`: every window end and every due time moves back as
    /// much, so the time left is what it was (a window measured on the wall clock alone would
    /// keep a payer's order open, and queried, for as long as the step).
    pub(in crate::core) fn orders_clock_went_back(&mut self, back_ms: u64) {
        for live in self.orders.live.values_mut() {
            live.window_end = UnixMillis(live.window_end.0.saturating_sub_unsigned(back_ms));
            live.due = UnixMillis(live.due.0.saturating_sub_unsigned(back_ms));
        }
    }

    /// Journals that `pending` is being reversed (once) and asks for the reversal.
    fn reverse_order(&mut self, pending: PendingOrder, why: ReverseWhy) {
        let pending = self.mark_reversing(pending, why);
        self.ask_about(pending);
    }

    /// Journals `OrderReversing` for `pending` unless it is reversing already, and forgets its
    /// code (a reversal never needs it).
    fn mark_reversing(&mut self, mut pending: PendingOrder, why: ReverseWhy) -> PendingOrder {
        if !pending.reversing {
            pending.reversing = true;
            for listed in &mut self.snap.pending_orders {
                if listed.intent == pending.intent {
                    listed.reversing = true;
                }
            }
            self.write(RecordBody::OrderReversing {
                intent: pending.intent,
                why,
            });
        }
        let live = self.live_order(pending.intent);
        live.code = None;
        live.paying = false;
        pending
    }

    /// The campus server's answer about an order.
    pub(in crate::core) fn order_result(&mut self, result: OrderResult) {
        if result.order.terminal != self.terminal {
            return; // not this till's order: noise
        }
        let intent = result.order.intent;
        let Some(pending) = self.unresolved::<PendingOrder>(intent) else {
            return self.late_result(intent, result.state);
        };
        let on_screen = self.order_on_screen() == Some(intent)
            || self.qr_on_screen().map(|shown| shown.intent) == Some(intent);
        let now = self.now;
        match result.state {
            // The reversal asked for decides; an older query's answer does not.
            OrderState::Paid { .. } | OrderState::UserPaying | OrderState::NotFound
                if pending.reversing => {}
            OrderState::Paid {
                payer,
                balance_after,
                booked_at,
            } => {
                let paid = OrderPaid {
                    intent,
                    amount: pending.order.amount,
                    payer: Payer::of_code(pending.order.method, payer),
                    balance_after,
                    booked_at,
                    recovered: !on_screen,
                };
                self.order_paid(pending, paid, on_screen);
            }
            OrderState::Declined(reason) => {
                self.order_closed(pending, OrderEnd::Declined(reason), on_screen)
            }
            OrderState::Reversed { refunded } => {
                self.order_closed(pending, OrderEnd::Reversed { refunded }, on_screen)
            }
            OrderState::UserPaying => {
                let interval = self.config.order_query_interval_ms;
                let live = self.live_order(intent);
                live.heard = true;
                live.paying = true;
                live.due = now.saturating_add_millis(interval);
            }
            OrderState::NotFound if is_qr(&pending) => self.qr_not_found(pending),
            OrderState::NotFound => {
                let held = self.live_order(intent).code.is_some();
                if held {
                    // The submit never arrived: the same order id again, with the code held.
                    self.live_order(intent).heard = false;
                    self.ask_about(pending);
                } else {
                    self.reverse_order(pending, ReverseWhy::NotFoundAfterRestart);
                }
            }
            OrderState::Busy => {
                self.live_order(intent).due = now.saturating_add_millis(ORDER_BUSY_RETRY_MS);
            }
        }
    }

    /// A result for an order that is no longer pending: only a "paid" for one this till closed
    /// unpaid matters (once).
    fn late_result(&mut self, intent: Seq, state: OrderState) {
        let OrderState::Paid { payer, .. } = state else {
            return;
        };
        let Some(closed) = self
            .orders
            .closed
            .iter_mut()
            .find(|c| c.intent == intent && c.chase_late_paid)
        else {
            return;
        };
        closed.chase_late_paid = false;
        let amount = closed.amount;
        self.write(RecordBody::OrderPaidAfterClose { intent, payer });
        let lang = self.lang();
        self.show_message(
            vec![
                text::PAID_AFTER_CLOSE.get(lang),
                yuan(amount),
                text::REFUND_TO_CHASE.get(lang),
            ],
            None,
            Beep::Attention,
        );
    }

    fn remember_closed(&mut self, intent: Seq, amount: Fen, chase_late_paid: bool) {
        self.orders.live.remove(&intent);
        self.orders.closed.push_back(ClosedOrder {
            intent,
            amount,
            chase_late_paid,
        });
        while self.orders.closed.len() > CLOSED_ORDERS_REMEMBERED {
            self.orders.closed.pop_front();
        }
    }

    fn order_paid(&mut self, pending: PendingOrder, paid: OrderPaid, on_screen: bool) {
        let lang = self.lang();
        let amount = pending.order.amount;
        let paid_by = PaidBy::Code(pending.order.method);
        self.record_sale(paid.payer, amount, pending.at, paid_by);
        self.settle(RecordBody::OrderPaid(paid));
        self.remember_closed(pending.intent, amount, false);
        let third = match paid.balance_after {
            Some(after) => balance(lang, after),
            None => text::method_name(lang, pending.order.method),
        };
        if on_screen {
            self.mode = self.resting_mode();
            let title = text::PAYMENT_OK.get(lang);
            self.overlay = Some(Overlay {
                merchant: vec![title.clone(), yuan(amount), third.clone()],
                customer: Some(vec![format!("{title} {}", yuan(amount)), third]),
                until: self.now.saturating_add_millis(SUCCESS_SHOW_MS),
            });
            self.effects.push_back(Effect::Beep(Beep::Success));
        } else {
            let lines = vec![text::EARLIER_ORDER_PAID.get(lang), yuan(amount), third];
            self.show_message(lines, None, Beep::Attention);
            self.startup_check_done();
        }
    }

    fn order_closed(&mut self, pending: PendingOrder, end: OrderEnd, on_screen: bool) {
        let lang = self.lang();
        let amount = pending.order.amount;
        self.settle(RecordBody::OrderClosed(OrderClosed {
            intent: pending.intent,
            end,
        }));
        let refunded = matches!(end, OrderEnd::Reversed { refunded: true });
        self.remember_closed(pending.intent, amount, !refunded);
        let (title, detail) = match end {
            OrderEnd::Declined(reason) => {
                let title = if on_screen {
                    text::ORDER_DECLINED
                } else {
                    text::EARLIER_ORDER_DECLINED
                };
                (title, text::decline_reason(lang, reason))
            }
            OrderEnd::Reversed { refunded } => {
                let title = if on_screen {
                    text::ORDER_REVERSED
                } else {
                    text::EARLIER_ORDER_REVERSED
                };
                let detail = if refunded {
                    text::MONEY_BACK_TO_THE_PAYER
                } else {
                    text::NOTHING_CHARGED
                };
                (title, detail.get(lang))
            }
        };
        let lines = vec![title.get(lang), yuan(amount), detail];
        if !on_screen {
            self.show_message(lines, None, Beep::Attention);
            return self.startup_check_done();
        }
        match end {
            // Declined: the sale waits for another way to pay.
            OrderEnd::Declined(_) => {
                self.mode = self.payment_again(pending.order);
                self.show_error_to_both(lines);
            }
            OrderEnd::Reversed { .. } => {
                self.mode = self.resting_mode();
                self.show_message(lines.clone(), Some(lines), Beep::Attention);
            }
        }
    }

    /// The sale an order was for, waiting for its payer again.
    fn payment_again(&self, order: OrderIntent) -> Mode {
        if order.fixed_price {
            self.resting_mode()
        } else {
            Mode::Sale(SaleMode::typed(order.amount))
        }
    }

    /// The start-up screen ends once every order from before the restart is settled.
    fn startup_check_done(&mut self) {
        if self.mode == Mode::Order(OrderMode::StartupCheck) && self.orders_to_check() == 0 {
            self.mode = self.resting_mode();
        }
    }

    /// An order request could not leave the till.
    pub(in crate::core) fn order_not_sent(&mut self, order: OrderId) {
        if order.terminal != self.terminal {
            return;
        }
        let Some(pending) = self.unresolved::<PendingOrder>(order.intent) else {
            return;
        };
        let now = self.now;
        self.live_order(order.intent).due = now.saturating_add_millis(ORDER_BACKGROUND_RETRY_MS);
        if self.order_on_screen() != Some(order.intent) {
            return; // retried in the background, and at once when the route is back
        }
        let lang = self.lang();
        self.mark_reversing(pending, ReverseWhy::RouteDown);
        self.mode = self.payment_again(pending.order);
        let why = self
            .codes_refused_because()
            .unwrap_or(text::NETWORK_DOWN)
            .get(lang);
        let take = text::TAKE_CARD_OR_CASH.get(lang);
        self.show_message(
            vec![text::ORDER_NOT_SENT.get(lang), why, take],
            Some(vec![
                text::CODES_CANNOT_PAY_NOW.get(lang),
                text::PLEASE_USE_THE_CAMPUS_CARD.get(lang),
            ]),
            Beep::Error,
        );
    }

    /// The link's state changed: if the route to the campus server is back, every pending
    /// order is asked about at once.
    pub(in crate::core) fn orders_route_changed(&mut self, was_up: bool) {
        if was_up || !self.order_route_up() {
            return;
        }
        for pending in self.snap.pending_orders.clone() {
            self.ask_about(pending);
        }
    }

    /// Whether the route to the campus server is up now (for [`Till::orders_route_changed`]).
    pub(in crate::core) fn orders_route_up_now(&self) -> bool {
        self.order_route_up()
    }

    /// Time passes: payment windows end (reverse), and orders due are asked about again.
    pub(in crate::core) fn orders_tick(&mut self) {
        let now = self.now;
        let on_screen = self.order_on_screen();
        for pending in self.snap.pending_orders.clone() {
            let live = self.live_order(pending.intent);
            let (paying, due, window_end) = (live.paying, live.due, live.window_end);
            let watched = paying || on_screen == Some(pending.intent);
            if !pending.reversing && watched && now >= window_end {
                self.reverse_order(pending, ReverseWhy::WindowOver);
            } else if now >= due {
                self.ask_about(pending);
            }
        }
    }

    /// When [`Till::orders_tick`] next has something to do, or the countdown on screen next
    /// changes.
    pub(in crate::core) fn orders_deadline(&self) -> Option<UnixMillis> {
        let on_screen = self.order_on_screen();
        let countdown = self.countdown_end().and_then(|end| {
            let left = end.millis_since(self.now);
            (end > self.now && left > 1_000).then(|| {
                self.now
                    .saturating_add_millis(left - (left - 1) / 1000 * 1000)
            })
        });
        let orders = self
            .snap
            .pending_orders
            .iter()
            .flat_map(|pending| {
                let live = self.orders.live.get(&pending.intent);
                let due = live.map_or(self.now, |live| live.due);
                let watched = live.is_some_and(|l| l.paying) || on_screen == Some(pending.intent);
                let window_end = (!pending.reversing && watched).then(|| {
                    live.map_or_else(
                        || self.window_end_on_record(pending.intent),
                        |live| live.window_end,
                    )
                });
                [Some(due), window_end]
            })
            .flatten()
            .min();
        [orders, countdown].into_iter().flatten().min()
    }

    /// The end of the payment window counted down on screen (the payer is confirming).
    fn countdown_end(&self) -> Option<UnixMillis> {
        let intent = self.order_on_screen()?;
        let pending = self.unresolved::<PendingOrder>(intent)?;
        let live = self.orders.live.get(&intent)?;
        (live.paying && !pending.reversing).then_some(live.window_end)
    }
}

mod qr;
mod screen;
#[cfg(test)]
mod tests;

pub(in crate::core) use qr::{is_qr, QrShown};
pub use qr::{QR_EXPIRY_GRACE_MS, QR_ORDER_VALID_S};
