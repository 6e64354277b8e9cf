//! The campus side of the offline QR fallback (issue 11, seed 004 §五): the campus app scans a
//! till's offline QR code and pays it here, from a campus account, under the order id the QR
//! names; the app then shows the payer the confirmation code the merchant types into the till.
//! [`PaymentBackend::pay_qr`] is the one call (the `campus-app` simulator and the tests use it).
//!
//! The rules it keeps, on top of the back end's (`super`'s header):
//! - the payload's MAC must verify under the till's key, which the campus derives from its QR
//!   master key ([`SIM_QR_MASTER_KEY`], [`sim_terminal_qr_key`]): a tampered payload, or one
//!   made with another key, is refused and charges nothing;
//! - an order id is paid at most once: the same payload paid again by the same account (the app
//!   retrying after a lost answer) is answered with the same confirmation code and charges
//!   nothing more, even after the payload expired; another account paying a paid order, or any
//!   payment of an order id the campus already holds otherwise (a till's submit or reversal),
//!   is refused;
//! - an expired payload (at the campus's clock) is refused;
//! - the account must be known, not frozen, and cover the amount; the amount is within the back
//!   end's code payment limit;
//! - a paid QR order is booked like any order: stored under its `OrderId` with method
//!   `OfflineQr` (so the till's `Query` answers `Paid { payer: Campus(account) }`), one ledger
//!   charge of statement type 扫一扫;
//! - durable: the payment is appended to the call log (a QR-pay record) and fdatasynced before
//!   its answer; the log's replay rebuilds it.

use shared::pay::{CodePayer, OrderId, OrderState};
use shared::paycode::{CodeHint, CodeMethod, VirtualAccount, CODE_HINT_CHARS};
use shared::qrpay::{QrOrder, QrPayloadError, TerminalQrKey, QR_KEY_BYTES};
use shared::{Fen, TerminalId, UnixMillis};

use super::{EntryKind, OrderRecord, PaymentBackend, Progress, Sale, StatementType};

/// The simulated campus's QR master key: every till's QR key is derived from it
/// ([`sim_terminal_qr_key`]). A test key: public in this repository, never a real campus's.
pub const SIM_QR_MASTER_KEY: [u8; QR_KEY_BYTES] = *b"campus-sim offline QR master v1.";

/// The QR key of `terminal` under [`SIM_QR_MASTER_KEY`]: the key a simulated till is provisioned
/// with (its default `qr_key`), and the one the simulated campus checks its payloads with.
pub fn sim_terminal_qr_key(terminal: TerminalId) -> TerminalQrKey {
    TerminalQrKey::derive(&SIM_QR_MASTER_KEY, terminal)
}

/// Why the campus refused to pay an offline QR payload (nothing was charged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QrRefusal {
    #[error("not an offline QR code of a campus till")]
    NotAPayload,
    #[error("the QR code was changed, or made with another key: not paid")]
    Tampered,
    #[error("the QR code expired: ask the merchant for a new one")]
    Expired,
    #[error("this order was already paid from another account")]
    PaidByAnother,
    #[error("the campus already holds this order otherwise (submitted or closed by the till)")]
    OrderTaken,
    #[error("unknown account")]
    UnknownAccount,
    #[error("the account is frozen")]
    AccountFrozen,
    #[error("the balance does not cover the amount")]
    InsufficientFunds,
    #[error("the amount is over the code payment limit")]
    OverLimit,
    /// The payment could not be made durable (the call log failed): nothing was charged; the
    /// app may try again.
    #[error("the campus could not record the payment; try again")]
    Unavailable,
}

/// The hint a QR order is shown by: the payload's last [`CODE_HINT_CHARS`] characters.
fn payload_hint(payload: &str) -> CodeHint {
    let mut hint = [b'?'; CODE_HINT_CHARS];
    let bytes = payload.trim().as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(CODE_HINT_CHARS)..];
    hint[CODE_HINT_CHARS - tail.len()..].copy_from_slice(tail);
    CodeHint(hint)
}

impl PaymentBackend {
    /// The campus app pays `payload` from `account` at the campus's time `now`: the
    /// confirmation code the app shows, or why not (see the module header). Durable before it
    /// answers.
    pub fn pay_qr(
        &mut self,
        payload: &str,
        account: VirtualAccount,
        now: UnixMillis,
    ) -> Result<u32, QrRefusal> {
        // A payload refused before it touches anything is not logged (it changes nothing).
        let (order, key) = self.check_qr(payload, now)?;
        if let Some(existing) = self.orders.get(&order_id(&order)) {
            return answer_existing(existing, &order, &key, account);
        }
        if let Some(log) = &mut self.log {
            if let Err(e) = log.append_qr_pay(now, payload, account) {
                tracing::error!("ALARM the campus could not log a QR payment: {e}");
                return Err(QrRefusal::Unavailable);
            }
        }
        self.apply_qr_pay(payload, account, now)
    }

    /// Acts on a (logged) QR payment: the replay of the call log calls it too.
    pub(super) fn apply_qr_pay(
        &mut self,
        payload: &str,
        account: VirtualAccount,
        now: UnixMillis,
    ) -> Result<u32, QrRefusal> {
        self.settle_due(now);
        let (order, key) = self.check_qr(payload, now)?;
        let id = order_id(&order);
        if let Some(existing) = self.orders.get(&id) {
            return answer_existing(existing, &order, &key, account);
        }
        super::check_amount(order.amount).map_err(|_| QrRefusal::OverLimit)?;
        if self.frozen.contains(&account) {
            return Err(QrRefusal::AccountFrozen);
        }
        let balance = *self
            .balances
            .get(&account)
            .ok_or(QrRefusal::UnknownAccount)?;
        let after = balance
            .checked_sub(order.amount)
            .ok_or(QrRefusal::InsufficientFunds)?;
        let sale = Sale {
            method: CodeMethod::OfflineQr,
            amount: order.amount,
            hint: payload_hint(payload),
            at: UnixMillis(i64::from(order.created_at_s) * 1_000),
            submitted_at: now,
        };
        let payer = CodePayer::Campus(account);
        let record = OrderRecord {
            id,
            sale: Some(sale),
            progress: Progress::Settled(OrderState::Paid {
                payer,
                balance_after: Some(after),
                booked_at: now,
            }),
        };
        self.balances.insert(account, after);
        self.orders.insert(id, record);
        self.book(&record, sale, EntryKind::Charge, payer, now);
        if let Some(entry) = self.ledger.last_mut() {
            entry.statement = StatementType::ScanToPay;
        }
        Ok(order.confirmation_code(&key))
    }

    /// The payload's order and its till's key, if the MAC verifies and it has not expired.
    /// An expired payload whose order this campus already paid still passes (its replay is
    /// answered, see [`answer_existing`]).
    fn check_qr(
        &self,
        payload: &str,
        now: UnixMillis,
    ) -> Result<(QrOrder, TerminalQrKey), QrRefusal> {
        let order = QrOrder::parse(payload).map_err(|_| QrRefusal::NotAPayload)?;
        let key = sim_terminal_qr_key(order.terminal);
        match QrOrder::verify(payload, &key, now) {
            Ok(order) => Ok((order, key)),
            Err(QrPayloadError::Expired) if self.orders.contains_key(&order_id(&order)) => {
                Ok((order, key))
            }
            Err(QrPayloadError::Expired) => Err(QrRefusal::Expired),
            Err(QrPayloadError::BadMac) => Err(QrRefusal::Tampered),
            Err(_) => Err(QrRefusal::NotAPayload),
        }
    }
}

fn order_id(order: &QrOrder) -> OrderId {
    OrderId {
        terminal: order.terminal,
        intent: order.intent,
    }
}

/// The answer to a payment of an order the campus already holds: the same confirmation when it
/// is this QR order paid by this account (a replay), a refusal otherwise.
fn answer_existing(
    existing: &OrderRecord,
    order: &QrOrder,
    key: &TerminalQrKey,
    account: VirtualAccount,
) -> Result<u32, QrRefusal> {
    let is_qr = existing
        .sale
        .is_some_and(|s| s.method == CodeMethod::OfflineQr && s.amount == order.amount);
    match existing.state() {
        OrderState::Paid {
            payer: CodePayer::Campus(paid_by),
            ..
        } if is_qr && paid_by == account => Ok(order.confirmation_code(key)),
        OrderState::Paid { .. } if is_qr => Err(QrRefusal::PaidByAnother),
        _ => Err(QrRefusal::OrderTaken),
    }
}

/// The amount a QR payload asks for, for a front end that shows it before paying.
pub fn qr_amount(payload: &str) -> Option<Fen> {
    QrOrder::parse(payload).ok().map(|o| o.amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::payments::SIM_CAMPUS_KEY_SEED;
    use shared::ids::{MachineNumber, Seq};
    use shared::pay::{OrderCall, OrderRequest};

    const TILL: TerminalId = TerminalId(0x7);
    const ALICE: VirtualAccount = VirtualAccount(2024_0001);
    const BOB: VirtualAccount = VirtualAccount(2024_0002);
    const FROZEN: VirtualAccount = VirtualAccount(2024_0003);
    /// The QR's creation time (Unix seconds) and the campus's clock a minute later.
    const CREATED_S: u32 = 1_800_000_000;
    const NOW: UnixMillis = UnixMillis(1_800_000_060_000);

    fn backend() -> PaymentBackend {
        PaymentBackend::new_with_frozen(
            SIM_CAMPUS_KEY_SEED,
            [
                (ALICE, Fen::from_yuan(50)),
                (BOB, Fen::new(300)),
                (FROZEN, Fen::from_yuan(50)),
            ],
            [FROZEN],
        )
    }

    fn order(intent: u64, amount: u64) -> QrOrder {
        QrOrder {
            terminal: TILL,
            intent: Seq(intent),
            amount: Fen::new(amount),
            machine: MachineNumber::new(58).unwrap(),
            created_at_s: CREATED_S,
            valid_for_s: 600,
        }
    }

    fn payload(order: &QrOrder) -> String {
        order.payload(&sim_terminal_qr_key(TILL)).unwrap()
    }

    fn query(backend: &mut PaymentBackend, intent: u64) -> OrderState {
        let call = OrderCall {
            order: OrderId {
                terminal: TILL,
                intent: Seq(intent),
            },
            request: OrderRequest::Query,
        };
        backend.handle_call(&call, NOW).unwrap().unwrap().state
    }

    #[test]
    fn the_app_pays_a_qr_order_from_the_account_and_gets_the_tills_confirmation_code() {
        let mut campus = backend();
        let qr = order(12, 1_250);
        let code = campus.pay_qr(&payload(&qr), ALICE, NOW).unwrap();
        assert_eq!(code, qr.confirmation_code(&sim_terminal_qr_key(TILL)));
        assert_eq!(campus.balance(ALICE), Some(Fen::new(5_000 - 1_250)));
        // The till's later query learns it under the same order id.
        assert_eq!(
            query(&mut campus, 12),
            OrderState::Paid {
                payer: CodePayer::Campus(ALICE),
                balance_after: Some(Fen::new(3_750)),
                booked_at: NOW,
            }
        );
        let [entry] = campus.ledger() else {
            panic!("one ledger entry: {:?}", campus.ledger())
        };
        assert_eq!(entry.statement, StatementType::ScanToPay);
        assert_eq!(entry.method, CodeMethod::OfflineQr);
        assert_eq!(entry.amount, Fen::new(1_250));
        assert_eq!(entry.sale_at, UnixMillis(i64::from(CREATED_S) * 1_000));
    }

    #[test]
    fn a_replay_is_answered_with_the_same_code_and_never_charged_twice_and_another_payer_is_refused(
    ) {
        let mut campus = backend();
        let qr = order(12, 1_250);
        let first = campus.pay_qr(&payload(&qr), ALICE, NOW).unwrap();
        assert_eq!(campus.pay_qr(&payload(&qr), ALICE, NOW), Ok(first));
        // Even once the payload expired: the app retrying after a lost answer.
        let late = UnixMillis(NOW.0 + 3_600_000);
        assert_eq!(campus.pay_qr(&payload(&qr), ALICE, late), Ok(first));
        assert_eq!(
            campus.pay_qr(&payload(&qr), BOB, NOW),
            Err(QrRefusal::PaidByAnother)
        );
        assert_eq!(campus.balance(ALICE), Some(Fen::new(3_750)));
        assert_eq!(campus.balance(BOB), Some(Fen::new(300)));
        assert_eq!(campus.ledger().len(), 1);
    }

    #[test]
    fn a_tampered_foreign_expired_or_unaffordable_payload_is_refused_and_charges_nothing() {
        let mut campus = backend();
        let good = payload(&order(12, 1_250));
        // One character of the MAC's part changed (the amount's would do as well).
        let mut tampered = good.clone().into_bytes();
        let at = tampered.len() - 5;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            campus.pay_qr(&tampered, ALICE, NOW),
            Err(QrRefusal::Tampered)
        );
        let foreign = order(12, 1_250)
            .payload(&TerminalQrKey::derive(&[1; 32], TILL))
            .unwrap();
        assert_eq!(
            campus.pay_qr(&foreign, ALICE, NOW),
            Err(QrRefusal::Tampered)
        );
        let expired = UnixMillis(i64::from(CREATED_S + 600) * 1_000);
        assert_eq!(
            campus.pay_qr(&good, ALICE, expired),
            Err(QrRefusal::Expired)
        );
        assert_eq!(
            campus.pay_qr("hello", ALICE, NOW),
            Err(QrRefusal::NotAPayload)
        );
        assert_eq!(
            campus.pay_qr(&payload(&order(13, 301)), BOB, NOW),
            Err(QrRefusal::InsufficientFunds)
        );
        assert_eq!(
            campus.pay_qr(&payload(&order(14, 100)), FROZEN, NOW),
            Err(QrRefusal::AccountFrozen)
        );
        assert_eq!(
            campus.pay_qr(&payload(&order(15, 100)), VirtualAccount(9), NOW),
            Err(QrRefusal::UnknownAccount)
        );
        assert_eq!(
            campus.pay_qr(&payload(&order(16, 100_001)), ALICE, NOW),
            Err(QrRefusal::OverLimit)
        );
        assert!(campus.ledger().is_empty());
        assert_eq!(campus.balance(ALICE), Some(Fen::from_yuan(50)));
        // A refused payload left no order: the good one still pays once.
        assert!(campus.pay_qr(&good, ALICE, NOW).is_ok());
    }

    #[test]
    fn an_order_the_till_closed_before_the_app_paid_is_refused() {
        let mut campus = backend();
        let reverse = OrderCall {
            order: OrderId {
                terminal: TILL,
                intent: Seq(12),
            },
            request: OrderRequest::Reverse,
        };
        campus.handle_call(&reverse, NOW).unwrap();
        assert_eq!(
            campus.pay_qr(&payload(&order(12, 1_250)), ALICE, NOW),
            Err(QrRefusal::OrderTaken)
        );
        assert!(campus.ledger().is_empty());
    }

    #[test]
    fn a_qr_payment_survives_a_restart_of_the_campus_and_its_replay_still_charges_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payments.log");
        let accounts = [(ALICE, Fen::from_yuan(50)), (BOB, Fen::new(300))];
        let qr = order(12, 1_250);
        let code = {
            let mut campus = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
            campus.pay_qr(&payload(&qr), ALICE, NOW).unwrap()
        };
        let mut campus = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
        assert_eq!(campus.balance(ALICE), Some(Fen::new(3_750)));
        assert_eq!(campus.ledger().len(), 1);
        assert_eq!(campus.ledger()[0].statement, StatementType::ScanToPay);
        assert_eq!(campus.pay_qr(&payload(&qr), ALICE, NOW), Ok(code));
        assert_eq!(campus.ledger().len(), 1);
        assert!(matches!(query(&mut campus, 12), OrderState::Paid { .. }));
    }
}
