//! The offline QR order (issue 11, seed 004 §五; `docs/offline-qr.md` is the prose version):
//! when the till cannot reach the campus, Enter on a typed amount shows a QR code of an order
//! that the student's campus app pays at the campus, under the till's order id. It is an
//! ordinary order of the method `OfflineQr` (`flows/order.rs` keeps its lifecycle), never
//! submitted by the till.
//!
//! The rules:
//! - offline is one of three states ([`OfflineWhy`]): Clear+7 (手动), no daemon (链路断), a daemon
//!   without its broker (网断). A till run without a link server at all is not offline (it has no
//!   link to lose); online, Enter opens the card sale as before;
//! - the `OrderIntent { method: OfflineQr, code: digest of the payload, hint: its last 4 }` is
//!   journaled before the QR is shown; no terminal key (`qr_key_file`) → no QR, the sale screen
//!   tells the merchant "cards only" where it says "Clear cancels" online;
//! - while the QR shows, cards still pay: a tap takes the sale over and the QR leaves the screen,
//!   but **the QR order stays pending**: the phone may have paid it already, and only the campus
//!   knows. The ordinary settlement decides (paid → a sale, journaled and shown as an earlier
//!   order paid; never paid → reversed after its expiry);
//! - the merchant types the app's 6-digit confirmation code and Enter: a match journals
//!   `QrConfirmedByCode` then `OrderPaid { payer: CampusApp }`; a wrong code journals
//!   `QrCodeRejected` (the count is in the snapshot, so a restart grants no more guesses); after
//!   [`MAX_CONFIRMATION_ATTEMPTS`] wrong codes the order waits for the campus;
//! - Clear, or the QR's expiry, sends the order to the background: it stays pending (status line
//!   码单N) and is asked about like every order; "not found" before its expiry (plus
//!   [`QR_EXPIRY_GRACE_MS`]) asks again later, after it reverses the order (the campus refuses the
//!   app's payment after expiry, and the reversal closes the id); a "paid" for an order already
//!   paid by code changes nothing, so a QR sale is counted once;
//! - after a restart the newest pending QR order still valid goes back on screen (the till
//!   restarted in front of its payer), when no other order must be checked first.

use keymap::Command;
use shared::paycode::{CodeDigest, CodeHint, CodeMethod, CODE_HINT_CHARS};
use shared::qrpay::{QrOrder, CONFIRMATION_DIGITS, MAX_CONFIRMATION_ATTEMPTS};
use shared::record::{OrderIntent, OrderPaid, Payer, PendingOrder, RecordBody, ReverseWhy};
use shared::{Fen, Seq, UnixMillis};

use sha2::{Digest, Sha256};

use super::super::super::money::MAX_UNRESOLVED_ORDERS;
use super::super::super::text::{self, yuan, Text};
use super::super::super::{Mode, Till};
use super::super::sale::{Payment, SaleMode};
use super::{LiveOrder, ORDER_BACKGROUND_RETRY_MS};
use shared::link::BrokerLink;

/// How long a QR order can be paid from its creation (its payload's `valid_for_s`): long enough
/// for a student to open the app, scan and pay in a queue; short enough that a photo of the
/// code is useless by the next meal.
pub const QR_ORDER_VALID_S: u16 = 10 * 60;
/// How long past a QR order's expiry the till still takes the campus's "not found" as "not yet"
/// (the till's and the campus's clocks may differ by this much) before it reverses the order.
pub const QR_EXPIRY_GRACE_MS: u64 = 60_000;

/// Why the till is offline (the status line names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::core) enum OfflineWhy {
    /// Clear+7.
    Manual,
    /// No daemon.
    LinkDown,
    /// The daemon has no broker.
    NetDown,
}

impl OfflineWhy {
    pub(in crate::core) fn text(self) -> Text {
        match self {
            OfflineWhy::Manual => text::OFFLINE_MANUAL,
            OfflineWhy::LinkDown => text::LINK_DOWN,
            OfflineWhy::NetDown => text::NET_DOWN,
        }
    }
}

/// The offline QR order shown beside a waiting sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) struct QrShown {
    pub(in crate::core) intent: Seq,
    /// The payload the customer's display draws (no secret: it is shown to everyone).
    pub(in crate::core) payload: String,
    /// The confirmation code typed so far (at most [`CONFIRMATION_DIGITS`] digits).
    pub(in crate::core) typed: String,
}

/// The digest and hint an offline QR order is journaled with (the payload itself is public, but
/// the journal keeps the same shape as for every code).
fn payload_digest(payload: &str) -> (CodeDigest, CodeHint) {
    let hash = Sha256::digest(payload.as_bytes());
    let mut digest = [0; 8];
    digest.copy_from_slice(&hash[..8]);
    let bytes = payload.as_bytes();
    let mut hint = [b'?'; CODE_HINT_CHARS];
    let tail = &bytes[bytes.len().saturating_sub(CODE_HINT_CHARS)..];
    hint[CODE_HINT_CHARS - tail.len()..].copy_from_slice(tail);
    (CodeDigest(digest), CodeHint(hint))
}

/// Whether `pending` is an offline QR order.
pub(in crate::core) fn is_qr(pending: &PendingOrder) -> bool {
    pending.order.method == CodeMethod::OfflineQr
}

impl Till {
    /// Why the till is offline, or `None` when online (or run without a link server).
    pub(in crate::core) fn offline_why(&self) -> Option<OfflineWhy> {
        if self.snap.offline {
            return Some(OfflineWhy::Manual);
        }
        match self.link {
            Some(link) if !link.daemon_connected => Some(OfflineWhy::LinkDown),
            Some(link) if link.broker != Some(BrokerLink::Up) => Some(OfflineWhy::NetDown),
            _ => None,
        }
    }

    /// How many offline QR orders are pending.
    pub(in crate::core) fn pending_qr_orders(&self) -> usize {
        self.snap.pending_orders.iter().filter(|p| is_qr(p)).count()
    }

    /// The QR order on screen, if any.
    pub(in crate::core) fn qr_on_screen(&self) -> Option<&QrShown> {
        match &self.mode {
            Mode::Sale(SaleMode::AwaitingPayment(Payment {
                qr: Some(shown), ..
            })) => Some(shown),
            _ => None,
        }
    }

    /// The server's clock as the till knows it.
    fn server_now(&self) -> UnixMillis {
        UnixMillis(self.now.0.saturating_add(self.server_offset.unwrap_or(0)))
    }

    /// Enter on a typed amount: the card sale online; offline, the card sale with a QR order.
    pub(in crate::core) fn open_sale(&mut self, amount: Fen) -> Mode {
        let sale = Mode::Sale(SaleMode::typed(amount));
        if self.offline_why().is_none() {
            return sale;
        }
        let lang = self.lang();
        let Some(key) = self.config.qr_key.clone() else {
            return sale; // the sale screen says "cards only" ([`Till::cards_only_offline`])
        };
        if self.snap.pending_orders.len() >= MAX_UNRESOLVED_ORDERS {
            self.show_info(vec![
                text::TOO_MANY_OPEN_ORDERS.get(lang),
                text::PLEASE_USE_THE_CAMPUS_CARD.get(lang),
            ]);
            return sale;
        }
        let intent = self.snap.next_seq;
        let created_at_s = u32::try_from(self.server_now().0.max(0) / 1000).unwrap_or(u32::MAX);
        let qr = QrOrder {
            terminal: self.terminal,
            intent,
            amount,
            machine: self.snap.machine,
            created_at_s,
            valid_for_s: QR_ORDER_VALID_S,
        };
        let Some(payload) = qr.payload(&key) else {
            // An intent seq past 2^32: the payload cannot carry it.
            self.show_info(vec![text::QR_CANNOT_BE_MADE.get(lang)]);
            return sale;
        };
        let (code, hint) = payload_digest(&payload);
        let order = OrderIntent {
            amount,
            method: CodeMethod::OfflineQr,
            code,
            hint,
            account: None,
            fixed_price: false,
        };
        let now = self.now;
        self.snap.pending_orders.push(PendingOrder {
            intent,
            at: now,
            order,
            reversing: false,
        });
        let written = self.write(RecordBody::OrderIntent(order));
        debug_assert_eq!(written, intent);
        self.orders.live.insert(
            intent,
            LiveOrder {
                code: None,
                heard: false,
                paying: false,
                due: now.saturating_add_millis(ORDER_BACKGROUND_RETRY_MS),
                window_end: qr_expiry_on_till(now),
            },
        );
        Mode::Sale(SaleMode::AwaitingPayment(Payment {
            qr: Some(QrShown {
                intent,
                payload,
                typed: String::new(),
            }),
            ..Payment::new(amount, false)
        }))
    }

    /// Whether an offline sale can be paid by card only because the till has no QR key (the
    /// sale screen says so instead of "Clear cancels").
    pub(in crate::core) fn cards_only_offline(&self) -> bool {
        self.config.qr_key.is_none() && self.offline_why().is_some()
    }

    /// A plain key while a QR order shows: digits type the confirmation code, Enter checks it,
    /// Clear sends the order to the background.
    pub(in crate::core) fn qr_key(&mut self, mut payment: Payment, command: Command) -> Mode {
        let lang = self.lang();
        let Some(shown) = payment.qr.as_mut() else {
            return Mode::Sale(SaleMode::AwaitingPayment(payment));
        };
        match command {
            Command::Digit(d) if shown.typed.len() < CONFIRMATION_DIGITS as usize => {
                shown.typed.push(char::from(b'0' + d.min(9)));
            }
            Command::Delete => {
                shown.typed.pop();
            }
            Command::Enter => return self.qr_code_entered(payment),
            Command::Clear => {
                self.show_info(vec![text::QR_ORDER_TO_BACKGROUND.get(lang)]);
                return self.resting_mode();
            }
            _ => self.show_error(vec![
                text::QR_CODE_SIX_DIGITS.get(lang),
                text::QR_CLEAR_TO_BACKGROUND.get(lang),
            ]),
        }
        Mode::Sale(SaleMode::AwaitingPayment(payment))
    }

    /// The attempts of `intent` so far (durable in the snapshot).
    fn qr_attempts(&self, intent: Seq) -> u8 {
        self.snap
            .qr_attempts
            .iter()
            .find(|(i, _)| *i == intent)
            .map_or(0, |(_, n)| *n)
    }

    /// Enter after a confirmation code: checked against the order's, offline.
    fn qr_code_entered(&mut self, mut payment: Payment) -> Mode {
        let lang = self.lang();
        let Some(shown) = payment.qr.as_mut() else {
            return Mode::Sale(SaleMode::AwaitingPayment(payment));
        };
        let typed = std::mem::take(&mut shown.typed);
        let intent = shown.intent;
        let (Some(pending), Some(key), Ok(qr)) = (
            self.unresolved::<PendingOrder>(intent),
            self.config.qr_key.clone(),
            QrOrder::parse(&shown.payload),
        ) else {
            return self.resting_mode(); // settled meanwhile: nothing left to confirm
        };
        let attempts = self.qr_attempts(intent);
        if attempts >= MAX_CONFIRMATION_ATTEMPTS {
            self.show_error(vec![text::QR_WAIT_FOR_CAMPUS.get(lang)]);
            return Mode::Sale(SaleMode::AwaitingPayment(payment));
        }
        if typed.len() != CONFIRMATION_DIGITS as usize {
            self.show_error(vec![text::QR_CODE_SIX_DIGITS.get(lang)]);
            return Mode::Sale(SaleMode::AwaitingPayment(payment));
        }
        if typed.parse::<u32>().ok() == Some(qr.confirmation_code(&key)) {
            self.write(RecordBody::QrConfirmedByCode { intent, attempts });
            let paid = OrderPaid {
                intent,
                amount: pending.order.amount,
                payer: Payer::CampusApp,
                balance_after: None,
                booked_at: self.now,
                recovered: false,
            };
            self.order_paid(pending, paid, true);
            return self.mode.clone();
        }
        let attempts = attempts.saturating_add(1);
        match self.snap.qr_attempts.iter_mut().find(|(i, _)| *i == intent) {
            Some(entry) => entry.1 = attempts,
            None => self.snap.qr_attempts.push((intent, attempts)),
        }
        self.write(RecordBody::QrCodeRejected { intent, attempts });
        let left = MAX_CONFIRMATION_ATTEMPTS.saturating_sub(attempts);
        let second = if left == 0 {
            text::QR_WAIT_FOR_CAMPUS.get(lang)
        } else {
            text::qr_tries_left(lang, left)
        };
        self.show_error(vec![text::QR_CODE_WRONG.get(lang), second]);
        Mode::Sale(SaleMode::AwaitingPayment(payment))
    }

    /// A card tapped while a QR shows takes the sale over: the QR leaves the screen, its order
    /// stays pending (the phone may have paid it; the campus's answer decides).
    pub(in crate::core) fn card_takes_over_the_qr(&mut self, payment: Payment) -> Payment {
        Payment {
            qr: None,
            ..payment
        }
    }

    /// The screens of a sale with its QR order.
    pub(in crate::core) fn qr_screens(
        &self,
        amount: Fen,
        shown: &QrShown,
    ) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        (
            vec![
                format!("{} {}", text::MERCHANT_TAP_OR_SCAN.get(lang), yuan(amount)),
                text::qr_code_typed(lang, &shown.typed),
                text::QR_CLEAR_TO_BACKGROUND.get(lang),
            ],
            vec![text::CUSTOMER_TAP_OR_SCAN.get(lang), yuan(amount)],
        )
    }

    /// Whether a "not found" for the QR order `pending` still means "not paid yet".
    pub(in crate::core) fn qr_still_payable(&self, pending: &PendingOrder) -> bool {
        self.now < qr_expiry_on_till(pending.at).saturating_add_millis(QR_EXPIRY_GRACE_MS)
    }

    /// The campus does not know the QR order `pending` (yet): ask again later while the app may
    /// still pay it, else reverse it (closing its id).
    pub(in crate::core) fn qr_not_found(&mut self, pending: PendingOrder) {
        if self.qr_still_payable(&pending) {
            let due = self.now.saturating_add_millis(ORDER_BACKGROUND_RETRY_MS);
            self.live_order(pending.intent).due = due;
        } else {
            if self.qr_on_screen().map(|s| s.intent) == Some(pending.intent) {
                self.mode = Mode::Sale(SaleMode::typed(pending.order.amount));
            }
            self.reverse_order(pending, ReverseWhy::WindowOver);
        }
    }

    /// Time passes: a QR on screen past its expiry leaves the screen (its order goes to the
    /// background).
    pub(in crate::core) fn qr_tick(&mut self) {
        let Some(shown) = self.qr_on_screen() else {
            return;
        };
        let intent = shown.intent;
        let at = self
            .unresolved::<PendingOrder>(intent)
            .map(|p| (p.at, p.order));
        match at {
            Some((at, order)) if self.now >= qr_expiry_on_till(at) => {
                self.mode = Mode::Sale(SaleMode::typed(order.amount));
                let lang = self.lang();
                self.show_info(vec![text::QR_EXPIRED_TO_BACKGROUND.get(lang)]);
            }
            Some(_) => {}
            None => self.mode = self.resting_mode(),
        }
    }

    /// When the QR on screen expires.
    pub(in crate::core) fn qr_deadline(&self) -> Option<UnixMillis> {
        let intent = self.qr_on_screen()?.intent;
        let pending = self.unresolved::<PendingOrder>(intent)?;
        Some(qr_expiry_on_till(pending.at))
    }

    /// At start: the newest pending QR order still valid goes back on screen, if its payload
    /// comes out as journaled (the same server offset) and no other order is checked first.
    pub(in crate::core) fn reopen_qr_at_start(&mut self) {
        if !matches!(self.mode, Mode::Entry(_)) {
            return;
        }
        let Some(key) = self.config.qr_key.clone() else {
            return;
        };
        let Some(pending) = self
            .snap
            .pending_orders
            .iter()
            .rev()
            .find(|p| is_qr(p) && !p.reversing)
            .copied()
        else {
            return;
        };
        if self.now >= qr_expiry_on_till(pending.at) {
            return;
        }
        let created_at_ms = pending.at.0.saturating_add(self.server_offset.unwrap_or(0));
        let qr = QrOrder {
            terminal: self.terminal,
            intent: pending.intent,
            amount: pending.order.amount,
            machine: self.snap.machine,
            created_at_s: u32::try_from(created_at_ms.max(0) / 1000).unwrap_or(u32::MAX),
            valid_for_s: QR_ORDER_VALID_S,
        };
        let Some(payload) = qr.payload(&key) else {
            return;
        };
        if payload_digest(&payload).0 != pending.order.code {
            return; // not the code the payer scanned: it stays in the background
        }
        self.mode = Mode::Sale(SaleMode::AwaitingPayment(Payment {
            qr: Some(QrShown {
                intent: pending.intent,
                payload,
                typed: String::new(),
            }),
            ..Payment::new(pending.order.amount, false)
        }));
    }
}

/// When a QR order made at `at` (the till's clock) expires, on the till's clock.
fn qr_expiry_on_till(at: UnixMillis) -> UnixMillis {
    at.saturating_add_millis(u64::from(QR_ORDER_VALID_S) * 1000)
}

#[cfg(test)]
mod tests;
