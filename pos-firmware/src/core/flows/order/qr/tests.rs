//! The offline QR order's rules, one test each, as the merchant, the payer's app and the
//! campus see them.

use super::super::super::super::testkit::{card, effects, keys, merchant, records, tap, NOW};
use super::*;
use shared::pay::{CodePayer, OrderId, OrderResult, OrderState};
use shared::paycode::VirtualAccount;
use shared::qrpay::TerminalQrKey;
use shared::record::{OrderClosed, OrderEnd, TillSnapshot};
use shared::TerminalId;

use super::super::super::super::config::{Lang, TillConfig};
use super::super::super::super::{Effect, LinkStatus};

fn key() -> TerminalQrKey {
    TerminalQrKey::derive(&[5; 32], TerminalId(9))
}

fn config() -> TillConfig {
    TillConfig {
        lang: Lang::En,
        qr_key: Some(key()),
        ..TillConfig::default()
    }
}

fn link(till: &mut Till, daemon: bool, broker: Option<BrokerLink>, now: UnixMillis) {
    let status = LinkStatus {
        daemon_connected: daemon,
        broker,
        unsent: 0,
        oldest_unsent_at: None,
    };
    till.handle_link_status(status, now);
}

/// A till with its QR key whose daemon is not there.
fn offline_till() -> Till {
    let mut till = Till::new(config(), TerminalId(9), TillSnapshot::factory_new(), NOW);
    link(&mut till, false, None, NOW);
    till
}

fn status(till: &Till) -> String {
    till.displays().merchant.lines[0].clone()
}

fn at(ms: u64) -> UnixMillis {
    NOW.saturating_add_millis(ms)
}

/// Types ¥8 and Enter: the effects, and the QR order shown.
fn qr_for_8(till: &mut Till) -> (Vec<Effect>, QrOrder) {
    keys(till, "8E");
    let effects = effects(till);
    let payload = till.displays().qr.expect("a QR on the customer's display");
    (
        effects,
        QrOrder::verify(&payload, &key(), NOW).expect("a valid payload"),
    )
}

fn code_keys(code: u32) -> String {
    format!("{code:06}")
}

fn answer(till: &mut Till, intent: Seq, state: OrderState, now: UnixMillis) -> Vec<Effect> {
    let order = OrderId {
        terminal: till.terminal(),
        intent,
    };
    let result = OrderResult {
        order,
        state,
        server_time: now,
    };
    till.handle_order_result(result, now);
    effects(till)
}

fn paid_in_the_app() -> OrderState {
    OrderState::Paid {
        payer: CodePayer::Campus(VirtualAccount(42)),
        balance_after: None,
        booked_at: NOW,
    }
}

fn sales_today(till: &Till) -> u32 {
    till.snapshot().days.iter().map(|d| d.tally.count).sum()
}

#[test]
fn offline_enter_journals_the_qr_order_before_the_qr_shows_and_its_payload_verifies() {
    let mut till = offline_till();
    keys(&mut till, "8");
    assert_eq!(till.displays().qr, None, "typing shows no QR yet");
    keys(&mut till, "D");
    let (effects, qr) = qr_for_8(&mut till);
    let pending = till.snapshot().pending_orders[0];
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderIntent(pending.order)]
    );
    assert_eq!(pending.order.method, CodeMethod::OfflineQr);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Order(_))),
        "a QR order is never submitted by the till"
    );
    assert_eq!(
        (qr.intent, qr.amount, qr.terminal),
        (pending.intent, Fen::from_yuan(8), TerminalId(9))
    );
    assert_eq!(qr.valid_for_s, QR_ORDER_VALID_S);
    let payload = till.displays().qr.unwrap();
    assert_eq!(
        payload_digest(&payload),
        (pending.order.code, pending.order.hint)
    );
    assert_eq!(
        till.displays().customer.lines,
        vec!["Tap card or scan".to_string(), "¥8.00".to_string()]
    );
    assert_eq!(
        merchant(&till),
        "Card or scan QR ¥8.00 | Code ______ | Clear: to background"
    );
}

#[test]
fn online_enter_opens_the_card_sale_as_before_and_without_a_key_the_merchant_is_told() {
    let mut online = offline_till();
    link(&mut online, true, Some(BrokerLink::Up), NOW);
    keys(&mut online, "8E");
    assert_eq!(online.displays().qr, None);
    assert!(records(&effects(&mut online)).is_empty());

    let mut keyless = Till::new(
        TillConfig {
            lang: Lang::En,
            ..TillConfig::default()
        },
        TerminalId(9),
        TillSnapshot::factory_new(),
        NOW,
    );
    link(&mut keyless, false, None, NOW);
    keys(&mut keyless, "8E");
    assert_eq!(keyless.displays().qr, None);
    assert_eq!(
        merchant(&keyless),
        "Tap card to pay | ¥8.00 | No QR: cards only"
    );
    assert!(records(&effects(&mut keyless)).is_empty());
}

#[test]
fn the_right_confirmation_code_records_the_sale_paid_by_the_campus_app_once() {
    let mut till = offline_till();
    let (_, qr) = qr_for_8(&mut till);
    keys(&mut till, &code_keys(qr.confirmation_code(&key())));
    keys(&mut till, "E");
    let records = records(&effects(&mut till));
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        records[0],
        RecordBody::QrConfirmedByCode {
            intent: qr.intent,
            attempts: 0
        }
    );
    assert!(matches!(
        records[1],
        RecordBody::OrderPaid(OrderPaid {
            payer: Payer::CampusApp,
            recovered: false,
            ..
        })
    ));
    assert_eq!(merchant(&till), "Payment OK | ¥8.00 | Offline QR");
    assert_eq!(till.displays().qr, None);
    assert_eq!(sales_today(&till), 1);
    // The campus's "paid" for it later changes nothing: counted once.
    let later = answer(&mut till, qr.intent, paid_in_the_app(), at(60_000));
    assert!(records_of(&later).is_empty(), "{later:?}");
    assert_eq!(sales_today(&till), 1);
}

fn records_of(effects: &[Effect]) -> Vec<RecordBody> {
    records(effects)
}

#[test]
fn wrong_codes_are_journaled_and_counted_durably_and_stop_at_the_limit_across_a_restart() {
    let mut till = offline_till();
    let (_, qr) = qr_for_8(&mut till);
    let wrong = code_keys((qr.confirmation_code(&key()) + 1) % 1_000_000);
    for n in 1..MAX_CONFIRMATION_ATTEMPTS {
        keys(&mut till, &wrong);
        keys(&mut till, "E");
        assert_eq!(
            records(&effects(&mut till)),
            vec![RecordBody::QrCodeRejected {
                intent: qr.intent,
                attempts: n
            }]
        );
    }
    // A restart keeps the count: the QR comes back, with one guess left.
    let snapshot = till.snapshot().clone();
    let mut till = Till::new(config(), TerminalId(9), snapshot, at(1_000));
    assert!(
        till.displays().qr.is_some(),
        "the QR order is back on screen"
    );
    keys(&mut till, &wrong);
    keys(&mut till, "E");
    assert_eq!(
        records(&effects(&mut till)),
        vec![RecordBody::QrCodeRejected {
            intent: qr.intent,
            attempts: MAX_CONFIRMATION_ATTEMPTS
        }]
    );
    assert_eq!(merchant(&till), "Wrong code | Too many: wait for campus | ");
    // Even the right code is no longer taken: the order waits for the campus.
    keys(&mut till, &code_keys(qr.confirmation_code(&key())));
    keys(&mut till, "E");
    assert!(records(&effects(&mut till)).is_empty());
    assert_eq!(till.snapshot().pending_orders.len(), 1);
}

#[test]
fn clear_sends_the_qr_order_to_the_background_and_the_campus_s_paid_counts_it_once() {
    let mut till = offline_till();
    let (_, qr) = qr_for_8(&mut till);
    keys(&mut till, "C");
    assert_eq!(till.displays().qr, None);
    assert_eq!(till.snapshot().pending_orders.len(), 1, "still pending");
    assert!(status(&till).contains("QR 1"), "{}", status(&till));
    // Back online: the campus says the app paid it.
    link(&mut till, true, Some(BrokerLink::Up), at(10_000));
    let asked = effects(&mut till);
    assert!(
        asked.iter().any(|e| matches!(e, Effect::Order(_))),
        "{asked:?}"
    );
    let paid = answer(&mut till, qr.intent, paid_in_the_app(), at(11_000));
    assert!(matches!(
        records(&paid)[..],
        [RecordBody::OrderPaid(OrderPaid {
            recovered: true,
            ..
        })]
    ));
    assert_eq!(sales_today(&till), 1);
    let again = answer(&mut till, qr.intent, paid_in_the_app(), at(12_000));
    assert!(records(&again).is_empty());
    assert_eq!(sales_today(&till), 1);
    assert!(!status(&till).contains("QR"), "{}", status(&till));
}

#[test]
fn a_qr_order_not_found_waits_until_its_expiry_then_is_reversed_as_expired_unpaid() {
    let mut till = offline_till();
    let (_, qr) = qr_for_8(&mut till);
    keys(&mut till, "C");
    link(&mut till, true, Some(BrokerLink::Up), at(1_000));
    effects(&mut till);
    let early = answer(&mut till, qr.intent, OrderState::NotFound, at(2_000));
    assert!(
        records(&early).is_empty(),
        "not paid yet is no reason to close: {early:?}"
    );
    let late = at(u64::from(QR_ORDER_VALID_S) * 1000 + QR_EXPIRY_GRACE_MS);
    let expired = answer(&mut till, qr.intent, OrderState::NotFound, late);
    assert_eq!(
        records(&expired),
        vec![RecordBody::OrderReversing {
            intent: qr.intent,
            why: ReverseWhy::WindowOver
        }]
    );
    let closed = answer(
        &mut till,
        qr.intent,
        OrderState::Reversed { refunded: false },
        late,
    );
    assert_eq!(
        records(&closed),
        vec![RecordBody::OrderClosed(OrderClosed {
            intent: qr.intent,
            end: OrderEnd::Reversed { refunded: false }
        })]
    );
    assert_eq!(sales_today(&till), 0);
    assert!(till.snapshot().pending_orders.is_empty());
}

#[test]
fn a_card_tapped_while_the_qr_shows_pays_by_card_and_the_qr_order_stays_pending() {
    let mut till = offline_till();
    let (_, qr) = qr_for_8(&mut till);
    tap(&mut till, card(20, 7));
    let effects = effects(&mut till);
    assert!(
        effects.iter().any(|e| matches!(e, Effect::WriteCard(_))),
        "the card pays: {effects:?}"
    );
    assert_eq!(till.displays().qr, None, "the QR left the screen");
    assert_eq!(till.snapshot().pending_orders.len(), 1);
    assert_eq!(till.snapshot().pending_orders[0].intent, qr.intent);
    assert!(
        !till.snapshot().pending_orders[0].reversing,
        "only the campus can tell"
    );
}

#[test]
fn the_qr_leaves_the_screen_at_its_expiry_and_its_order_stays_pending() {
    let mut till = offline_till();
    qr_for_8(&mut till);
    let expiry = at(u64::from(QR_ORDER_VALID_S) * 1000);
    assert!(till.next_deadline().is_some_and(|d| d <= expiry));
    till.handle_tick(UnixMillis(expiry.0 - 1));
    assert!(till.displays().qr.is_some(), "valid until its expiry");
    till.handle_tick(expiry);
    assert_eq!(till.displays().qr, None);
    assert_eq!(till.snapshot().pending_orders.len(), 1);
}

#[test]
fn the_status_line_names_one_state_and_why_it_is_offline() {
    let mut till = offline_till();
    assert_eq!(status(&till), "No.0001 OFFLINE LINK DOWN");
    link(&mut till, true, Some(BrokerLink::Down), NOW);
    assert_eq!(status(&till), "No.0001 OFFLINE NET DOWN");
    link(&mut till, true, Some(BrokerLink::Up), NOW);
    assert_eq!(status(&till), "No.0001 ONLINE");
    till.handle_command(keymap::Command::ToggleOffline, NOW);
    assert!(
        status(&till).starts_with("No.0001 OFFLINE MANUAL"),
        "{}",
        status(&till)
    );
}

#[test]
fn clear_9_shows_the_pending_qr_orders_first_then_goes_on_to_the_sales() {
    let mut till = offline_till();
    let (_, qr) = qr_for_8(&mut till);
    keys(&mut till, "C");
    till.handle_command(keymap::Command::BrowseJournal, at(5_000));
    assert!(
        effects(&mut till).is_empty(),
        "the pending orders are in the snapshot"
    );
    assert_eq!(
        merchant(&till),
        format!(
            "Pending {} 11-23 10:13 | ¥8.00 Offline QR | Unpaid: checked online",
            qr.intent
        )
    );
    till.handle_command(keymap::Command::Up, at(6_000));
    assert!(
        effects(&mut till)
            .iter()
            .any(|e| matches!(e, Effect::FindSale { from: None, .. })),
        "past the oldest pending order: the newest sale"
    );
}
