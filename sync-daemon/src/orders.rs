//! The relay of code-payment orders, without I/O (like [`crate::uploader`]): the till's order
//! calls go to the campus server over MQTT, the server's answers come back to the till. The
//! async driver (`daemon.rs`) feeds it the till's calls, the broker's state and the payloads on
//! the result topic, and carries out the [`OrderAction`]s it polls (publishing, writing to the
//! till, logging each [`OrderReport`] at its level).
//!
//! The rules:
//! - **The daemon keeps no order state.** A call is published once or refused at once; a
//!   result is passed on once or dropped. Exactly-once is the campus back end's (idempotent
//!   by [`OrderId`]) and the till's (it journals the order and asks again until it is closed),
//!   never the broker's nor the daemon's: a daemon killed at any point loses nothing, and the
//!   till's next query settles the order.
//! - **A call goes out only while the broker is up** (connected and subscribed, so its answer
//!   can come back): QoS 1, not retained, on [`order_request_topic`] of the till's terminal.
//!   With no broker, before the till's terminal is known, or when the client's queue refuses
//!   it, the till gets [`ToTill::OrderNotSent`] at once, and asks again later or tells the
//!   merchant.
//! - **Only the till's own orders go.** A call naming another terminal is refused
//!   (`OrderNotSent`) and an ALARM: the campus would book it on another till's statement.
//! - **Only this till's results come back.** A payload on the result topic that does not
//!   decode, or names another terminal, is an ALARM and dropped; a result that arrives while
//!   no till is connected is dropped (the till asks again when it is back).
//! - **A payment code is a bearer token**: reports carry the order id, the request's kind, the
//!   amount and the code's hint ([`PaymentCode::hint`]), never the code itself.

use shared::codec::decode_order_result;
use shared::link::ToTill;
use shared::mqtt::order_request_topic;
use shared::pay::{OrderCall, OrderId, OrderRequest, OrderResult, OrderState};
use shared::paycode::{CodeHint, CodeMethod, PaymentCode};
use shared::{Fen, TerminalId};
use std::collections::VecDeque;
use std::fmt;

/// Why a call did not go out: no broker connection.
pub const NOT_SENT_BROKER_DOWN: &str = "no connection to the campus broker";
/// Why a call did not go out: the till has not said who it is yet.
pub const NOT_SENT_TERMINAL_UNKNOWN: &str = "the till's terminal is not known yet";
/// Why a call did not go out: it names another terminal than the till's.
pub const NOT_SENT_FOREIGN_TERMINAL: &str = "the order names another terminal than this till";
/// Why a call did not go out: the MQTT client's queue refused it.
pub const NOT_SENT_QUEUE_FULL: &str = "the broker connection's queue is full";

/// What a call asks, for the log: the code reduced to its method and hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Submit {
        amount: Fen,
        method: CodeMethod,
        hint: CodeHint,
    },
    Query,
    Reverse,
}

impl CallKind {
    /// The loggable shape of `request`.
    pub fn of(request: &OrderRequest) -> CallKind {
        match request {
            OrderRequest::Submit {
                amount,
                method,
                code,
                ..
            } => CallKind::Submit {
                amount: *amount,
                method: *method,
                hint: PaymentCode::hint(code),
            },
            OrderRequest::Query => CallKind::Query,
            OrderRequest::Reverse => CallKind::Reverse,
        }
    }
}

impl fmt::Display for CallKind {
    /// `submit 12.50 WeChat …6789`, `query`, `reverse`: what the log shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallKind::Submit {
                amount,
                method,
                hint,
            } => write!(f, "submit {amount} {method:?} {hint}"),
            CallKind::Query => f.write_str("query"),
            CallKind::Reverse => f.write_str("reverse"),
        }
    }
}

/// What happened, for the driver's log. `Alarm*` reports are for the operator (an `ALARM`
/// line); the others are routine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderReport {
    /// A call is handed to the MQTT client for the broker.
    Sending { order: OrderId, kind: CallKind },
    /// A call was not sent; the till was told why.
    NotSent {
        order: OrderId,
        kind: CallKind,
        why: &'static str,
    },
    /// A call named another terminal than the till's: refused.
    AlarmForeignCall {
        order: OrderId,
        till: TerminalId,
        kind: CallKind,
    },
    /// A result went to the till.
    Passed { order: OrderId, state: OrderState },
    /// A result arrived while no till was connected: dropped (the till asks again).
    DroppedNoTill { order: OrderId, state: OrderState },
    /// A result naming another terminal than the till's arrived on our result topic: dropped.
    AlarmForeignResult { order: OrderId, till: TerminalId },
    /// A payload on our result topic that is not a result: dropped.
    AlarmUndecodable { bytes: usize, error: String },
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderAction {
    /// Publish this call (QoS 1, not retained) on `topic`; if the client refuses it, call
    /// [`OrderRelay::handle_publish_refused`].
    Publish { topic: String, call: OrderCall },
    /// Send this to the till.
    ToTill(ToTill),
    /// Log this.
    Report(OrderReport),
}

/// Counters the daemon logs when it stops (and tests read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounters {
    /// Calls handed to the MQTT client (one it refused also counts in `calls_not_sent`).
    pub calls_published: u64,
    pub calls_not_sent: u64,
    pub foreign_calls: u64,
    pub results_passed: u64,
    pub results_dropped_no_till: u64,
    pub foreign_results: u64,
    pub undecodable_results: u64,
}

/// The order relay of one daemon process: what it knows is only whether a till and a broker
/// are there, never an order.
#[derive(Debug, Default)]
pub struct OrderRelay {
    /// The connected till's terminal (`None`: no till connected).
    till: Option<TerminalId>,
    broker_up: bool,
    actions: VecDeque<OrderAction>,
    counters: OrderCounters,
}

impl OrderRelay {
    pub fn new() -> OrderRelay {
        OrderRelay::default()
    }

    pub fn counters(&self) -> OrderCounters {
        self.counters
    }

    /// The next thing to do, oldest first.
    pub fn poll_action(&mut self) -> Option<OrderAction> {
        self.actions.pop_front()
    }

    /// A till connected and said who it is.
    pub fn handle_till_welcome(&mut self, terminal: TerminalId) {
        self.till = Some(terminal);
    }

    /// The till connection is gone: what was queued for it is dropped (it asks again).
    pub fn handle_till_lost(&mut self) {
        self.till = None;
        self.actions
            .retain(|a| !matches!(a, OrderAction::ToTill(_)));
    }

    /// Connected and subscribed to the broker (the result topic included).
    pub fn handle_broker_up(&mut self) {
        self.broker_up = true;
    }

    /// The broker connection is gone; calls not yet handed to the client are answered
    /// `OrderNotSent` (those handed over may or may not have gone: the till's query tells).
    pub fn handle_broker_down(&mut self) {
        self.broker_up = false;
        let unsent: Vec<OrderCall> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                OrderAction::Publish { call, .. } => Some(call.clone()),
                _ => None,
            })
            .collect();
        self.actions
            .retain(|a| !matches!(a, OrderAction::Publish { .. }));
        for call in unsent {
            self.not_sent(&call, NOT_SENT_BROKER_DOWN);
        }
    }

    /// An order call from the till.
    pub fn handle_call(&mut self, call: OrderCall) {
        let kind = CallKind::of(&call.request);
        let Some(till) = self.till else {
            self.not_sent(&call, NOT_SENT_TERMINAL_UNKNOWN);
            return;
        };
        if call.order.terminal != till {
            self.counters.foreign_calls += 1;
            self.report(OrderReport::AlarmForeignCall {
                order: call.order,
                till,
                kind,
            });
            self.not_sent(&call, NOT_SENT_FOREIGN_TERMINAL);
            return;
        }
        if !self.broker_up {
            self.not_sent(&call, NOT_SENT_BROKER_DOWN);
            return;
        }
        self.counters.calls_published += 1;
        self.report(OrderReport::Sending {
            order: call.order,
            kind,
        });
        self.actions.push_back(OrderAction::Publish {
            topic: order_request_topic(till),
            call,
        });
    }

    /// The MQTT client would not take a call ([`OrderAction::Publish`]): the till is told.
    pub fn handle_publish_refused(&mut self, call: &OrderCall) {
        self.not_sent(call, NOT_SENT_QUEUE_FULL);
    }

    /// A payload on the till's result topic (the driver routes only that topic here).
    pub fn handle_result_payload(&mut self, payload: &[u8]) {
        match decode_order_result(payload) {
            Ok(result) => self.handle_result(result),
            Err(error) => {
                self.counters.undecodable_results += 1;
                self.report(OrderReport::AlarmUndecodable {
                    bytes: payload.len(),
                    error: error.to_string(),
                });
            }
        }
    }

    fn handle_result(&mut self, result: OrderResult) {
        let Some(till) = self.till else {
            self.counters.results_dropped_no_till += 1;
            self.report(OrderReport::DroppedNoTill {
                order: result.order,
                state: result.state,
            });
            return;
        };
        if result.order.terminal != till {
            self.counters.foreign_results += 1;
            self.report(OrderReport::AlarmForeignResult {
                order: result.order,
                till,
            });
            return;
        }
        self.counters.results_passed += 1;
        self.report(OrderReport::Passed {
            order: result.order,
            state: result.state,
        });
        self.actions
            .push_back(OrderAction::ToTill(ToTill::OrderResult(result)));
    }

    fn not_sent(&mut self, call: &OrderCall, why: &'static str) {
        self.counters.calls_not_sent += 1;
        self.report(OrderReport::NotSent {
            order: call.order,
            kind: CallKind::of(&call.request),
            why,
        });
        if self.till.is_some() {
            self.actions
                .push_back(OrderAction::ToTill(ToTill::OrderNotSent {
                    order: call.order,
                    why: why.to_string(),
                }));
        }
    }

    fn report(&mut self, report: OrderReport) {
        self.actions.push_back(OrderAction::Report(report));
    }
}

#[cfg(test)]
mod tests;
