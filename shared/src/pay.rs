//! Code-payment orders on the wire: what a till asks the campus server about an order (submit,
//! query, reverse) and what the server answers. The same messages travel over the link (till ↔
//! daemon, [`crate::link`]) and over MQTT (daemon ↔ campus, topics in [`crate::mqtt`]); the
//! daemon relays them and keeps nothing. `docs/code-payments.md` is the prose version.
//!
//! The rules both sides keep:
//! - an order is named by [`OrderId`] (terminal, seq of the till's intent record): the
//!   idempotency key of every call. A submit of an order id the server already knows is
//!   answered with that order's state, never charged again;
//! - a reversal closes the order for good: unpaid → closed with nothing charged; paid → refunded
//!   (`Reversed { refunded: true }`); unknown → closed, so a submit still in flight somewhere can
//!   never charge it afterwards;
//! - a query answers the order's state as the server holds it now ([`OrderState`]).

use crate::ids::{Seq, TerminalId, UnixMillis};
use crate::money::Fen;
use crate::paycode::{CodeMethod, PaymentCode, VirtualAccount};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An order's name everywhere: the till and the seq of its intent record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderId {
    pub terminal: TerminalId,
    pub intent: Seq,
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.terminal, self.intent.0)
    }
}

/// Who paid, as the back end names them: a campus account, or a wallet's stable payer id
/// (an opaque number the wallet gives per payer and merchant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CodePayer {
    Campus(VirtualAccount),
    Wallet(u64),
}

/// What a till asks about an order. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderRequest {
    /// Charge `amount` with `code`. The code travels in clear only here.
    Submit {
        amount: Fen,
        method: CodeMethod,
        code: PaymentCode,
        /// The till's clock when the merchant's order was made (for the statement).
        at: UnixMillis,
    },
    /// What is the order's state now?
    Query,
    /// Close the order: never charge it; refund it if it was paid.
    Reverse,
}

/// An order request with the order it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCall {
    pub order: OrderId,
    pub request: OrderRequest,
}

/// Why a back end declined a payment. Append-only (journaled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeclineReason {
    InsufficientFunds,
    /// The code is past its validity.
    CodeExpired,
    /// The code's signature or shape is wrong.
    CodeInvalid,
    /// The code was already used (a nonce seen before).
    CodeUsed,
    AccountFrozen,
    /// The payer refused on the phone.
    PayerCancelled,
    /// The amount is above what the payer's account allows at once.
    OverLimit,
    /// The back end said no for a reason of its own (its code).
    Other(u16),
}

/// An order's state as the campus server holds it. Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderState {
    /// Charged: the money moved.
    Paid {
        payer: CodePayer,
        /// The campus account's balance after the charge (virtual cards only).
        balance_after: Option<Fen>,
        /// When the back end booked it (its clock).
        booked_at: UnixMillis,
    },
    /// The payer must confirm on the phone; ask again.
    UserPaying,
    /// Not charged, and never will be under this order id.
    Declined(DeclineReason),
    /// Closed by a reversal; `refunded`: it had been paid and the money went back.
    Reversed { refunded: bool },
    /// The server has no such order (the submit never arrived). Only a query answers this.
    NotFound,
    /// The back end could not act now (a reversal it must retry); ask again.
    Busy,
}

impl OrderState {
    /// Whether the order will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            OrderState::Paid { .. } | OrderState::Declined(_) | OrderState::Reversed { .. }
        )
    }
}

/// The campus server's answer about one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    pub order: OrderId,
    pub state: OrderState,
    /// The campus server's clock when it answered.
    pub server_time: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paid_declined_and_reversed_are_final() {
        let paid = OrderState::Paid {
            payer: CodePayer::Wallet(9),
            balance_after: None,
            booked_at: UnixMillis(0),
        };
        assert!(paid.is_final());
        assert!(OrderState::Declined(DeclineReason::CodeUsed).is_final());
        assert!(OrderState::Reversed { refunded: true }.is_final());
        for open in [
            OrderState::UserPaying,
            OrderState::NotFound,
            OrderState::Busy,
        ] {
            assert!(!open.is_final(), "{open:?}");
        }
    }

    #[test]
    fn an_order_id_prints_as_terminal_and_seq() {
        let id = OrderId {
            terminal: TerminalId(0xabc),
            intent: Seq(42),
        };
        assert_eq!(id.to_string(), "0000000000000abc-42");
    }
}
