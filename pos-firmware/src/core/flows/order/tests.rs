//! The order flow's rules, one test each, as the merchant, the payer and the campus server see
//! them.

use super::super::super::testkit::{
    card, effects, keys, merchant, online, online_till, order_calls, records, tap, till,
    virtual_code, wechat_code, NOW,
};
use super::*;
use keymap::Command;
use shared::pay::{CodePayer, DeclineReason, OrderCall};
use shared::paycode::VirtualAccount;
use shared::record::TillSnapshot;
use shared::{TerminalId, UnixMillis};

use super::super::super::config::{Lang, TillConfig};
use super::super::super::{LinkStatus, MESSAGE_SHOW_MS};

fn at(ms: u64) -> UnixMillis {
    NOW.saturating_add_millis(ms)
}

/// A ¥8 sale paid by `code`: the till's effects of the scan.
fn scan_for_8(till: &mut Till, code: &str) -> Vec<Effect> {
    keys(till, "8E");
    effects(till);
    till.handle_code(code, NOW);
    effects(till)
}

fn answer(till: &mut Till, intent: Seq, state: OrderState, now: UnixMillis) -> Vec<Effect> {
    let order = OrderId {
        terminal: till.terminal(),
        intent,
    };
    till.handle_order_result(
        OrderResult {
            order,
            state,
            server_time: now,
        },
        now,
    );
    effects(till)
}

fn paid_by_wallet() -> OrderState {
    OrderState::Paid {
        payer: CodePayer::Wallet(0xbeef),
        balance_after: None,
        booked_at: NOW,
    }
}

/// The one order of a till that has just been scanned.
fn only_order(till: &Till) -> PendingOrder {
    let orders = &till.snapshot().pending_orders;
    assert_eq!(orders.len(), 1, "{orders:?}");
    orders[0]
}

fn requests(effects: &[Effect]) -> Vec<OrderRequest> {
    order_calls(effects)
        .into_iter()
        .map(|c| c.request)
        .collect()
}

#[test]
fn a_scanned_code_journals_its_intent_before_the_submit_and_never_the_code() {
    let mut till = online_till();
    let code = wechat_code(1);
    let effects = scan_for_8(&mut till, &code);
    let journal = effects
        .iter()
        .position(|e| matches!(e, Effect::Journal { .. }));
    let submit = effects.iter().position(|e| matches!(e, Effect::Order(_)));
    assert!(journal.is_some() && journal < submit, "{effects:?}");
    let pending = only_order(&till);
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderIntent(pending.order)]
    );
    assert_eq!(pending.order.amount, Fen::from_yuan(8));
    assert_eq!(pending.order.method, shared::paycode::CodeMethod::WeChat);
    let calls = order_calls(&effects);
    assert_eq!(
        calls[0].order,
        OrderId {
            terminal: TerminalId(9),
            intent: pending.intent
        }
    );
    assert!(
        matches!(&calls[0].request, OrderRequest::Submit { code: sent, .. } if sent.expose() == code)
    );
    // The code is in no record and in no snapshot: only its digest and its last characters.
    for effect in &effects {
        if let Effect::Journal { record, snapshot } = effect {
            let stored = format!("{record:?}{snapshot:?}");
            assert!(!stored.contains(&code), "{stored}");
            assert!(!stored.contains(&code[..14]), "{stored}");
        }
    }
    assert_eq!(merchant(&till), "WeChat paying | ¥8.00 | Clear cancels");
}

#[test]
fn a_paid_answer_commits_the_order_with_its_payer_and_shows_the_amount() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    let effects = answer(&mut till, pending.intent, paid_by_wallet(), NOW);
    let payer = Payer::Wallet {
        method: shared::paycode::CodeMethod::WeChat,
        payer: 0xbeef,
    };
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderPaid(OrderPaid {
            intent: pending.intent,
            amount: Fen::from_yuan(8),
            payer,
            balance_after: None,
            booked_at: NOW,
            recovered: false,
        })]
    );
    assert!(effects.contains(&Effect::Beep(Beep::Success)));
    assert_eq!(merchant(&till), "Payment OK | ¥8.00 | WeChat");
    let snap = till.snapshot();
    assert!(snap.pending_orders.is_empty());
    assert_eq!(snap.last_sale.map(|s| s.payer), Some(payer));
    assert_eq!(snap.days[0].tally.count, 1);
    assert_eq!(snap.code_days[0].tally.total, Fen::from_yuan(8));
    // The same answer again (a resent result) changes nothing.
    assert!(answer(&mut till, pending.intent, paid_by_wallet(), NOW).is_empty());
}

#[test]
fn a_virtual_card_payment_shows_the_campus_balance_after_it() {
    let mut till = online_till();
    scan_for_8(&mut till, &virtual_code(2024_0001, NOW, 1));
    let pending = only_order(&till);
    assert_eq!(pending.order.account, Some(VirtualAccount(2024_0001)));
    let paid = OrderState::Paid {
        payer: CodePayer::Campus(VirtualAccount(2024_0001)),
        balance_after: Some(Fen::from_yuan(42)),
        booked_at: NOW,
    };
    answer(&mut till, pending.intent, paid, NOW);
    assert_eq!(merchant(&till), "Payment OK | ¥8.00 | Balance ¥42.00");
}

#[test]
fn a_declined_answer_closes_the_order_shows_the_reason_and_the_sale_waits_again() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    let declined = OrderState::Declined(DeclineReason::InsufficientFunds);
    let effects = answer(&mut till, pending.intent, declined, NOW);
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderClosed(OrderClosed {
            intent: pending.intent,
            end: OrderEnd::Declined(DeclineReason::InsufficientFunds),
        })]
    );
    assert_eq!(
        merchant(&till),
        "Payment declined | ¥8.00 | Insufficient funds"
    );
    assert_eq!(till.mode, Mode::Sale(SaleMode::typed(Fen::from_yuan(8))));
    assert!(till.snapshot().pending_orders.is_empty());
    assert!(till.snapshot().days.is_empty(), "nothing counted");
}

#[test]
fn a_payer_confirming_is_asked_about_every_interval_with_a_countdown_until_paid() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    answer(&mut till, pending.intent, OrderState::UserPaying, at(1_000));
    assert_eq!(
        merchant(&till),
        "WeChat awaiting payer | ¥8.00 | 59s left, Clear cancels"
    );
    assert_eq!(
        till.displays().customer.lines,
        ["Confirm on your phone", "¥8.00"]
    );
    assert_eq!(
        till.next_deadline(),
        Some(at(2_000)),
        "the countdown's next second"
    );
    till.handle_tick(at(2_000));
    assert!(merchant(&till).ends_with("58s left, Clear cancels"));
    till.handle_tick(at(3_999));
    assert!(effects(&mut till).is_empty());
    till.handle_tick(at(4_000));
    assert_eq!(requests(&effects(&mut till)), vec![OrderRequest::Query]);
    assert_eq!(
        merchant(&till),
        "WeChat awaiting payer | ¥8.00 | 56s left, Clear cancels"
    );
    let effects = answer(&mut till, pending.intent, paid_by_wallet(), at(4_100));
    assert!(matches!(
        records(&effects).as_slice(),
        [RecordBody::OrderPaid(OrderPaid {
            recovered: false,
            ..
        })]
    ));
}

#[test]
fn at_the_end_of_the_window_the_order_is_reversed_and_the_refund_is_shown() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    answer(&mut till, pending.intent, OrderState::UserPaying, NOW);
    let window = TillConfig::default().order_pay_window_ms;
    till.handle_tick(at(window));
    let effects = effects(&mut till);
    let journal = effects
        .iter()
        .position(|e| matches!(e, Effect::Journal { .. }));
    let reverse = effects.iter().position(|e| {
        matches!(
            e,
            Effect::Order(OrderCall {
                request: OrderRequest::Reverse,
                ..
            })
        )
    });
    assert!(journal.is_some() && journal < reverse, "{effects:?}");
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderReversing {
            intent: pending.intent,
            why: ReverseWhy::WindowOver
        }]
    );
    assert!(only_order(&till).reversing);
    assert_eq!(
        merchant(&till),
        "Reversing the order | ¥8.00 | Clear: background"
    );
    let reversed = OrderState::Reversed { refunded: true };
    let effects = answer(&mut till, pending.intent, reversed, at(window + 500));
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderClosed(OrderClosed {
            intent: pending.intent,
            end: OrderEnd::Reversed { refunded: true },
        })]
    );
    assert_eq!(merchant(&till), "Reversed | ¥8.00 | Payer refunded");
    assert!(till.snapshot().pending_orders.is_empty());
}

#[test]
fn clear_while_the_payer_confirms_reverses_the_order() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    answer(&mut till, pending.intent, OrderState::UserPaying, NOW);
    keys(&mut till, "C");
    let effects = effects(&mut till);
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderReversing {
            intent: pending.intent,
            why: ReverseWhy::MerchantCancelled
        }]
    );
    assert_eq!(requests(&effects), vec![OrderRequest::Reverse]);
    answer(
        &mut till,
        pending.intent,
        OrderState::Reversed { refunded: false },
        NOW,
    );
    assert_eq!(merchant(&till), "Reversed | ¥8.00 | Nothing charged");
}

#[test]
fn a_paid_answer_while_reversing_does_not_commit_the_reversal_decides() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    answer(&mut till, pending.intent, OrderState::UserPaying, NOW);
    keys(&mut till, "C");
    effects(&mut till);
    // The answer to the query sent before the reversal: paid. It does not commit.
    let late = answer(&mut till, pending.intent, paid_by_wallet(), NOW);
    assert!(records(&late).is_empty(), "{late:?}");
    assert!(only_order(&till).reversing);
    assert!(till.snapshot().days.is_empty(), "not counted as a sale");
    // The reversal refunds what was paid: closed, refunded, no sale.
    let effects = answer(
        &mut till,
        pending.intent,
        OrderState::Reversed { refunded: true },
        NOW,
    );
    assert!(matches!(
        records(&effects).as_slice(),
        [RecordBody::OrderClosed(OrderClosed {
            end: OrderEnd::Reversed { refunded: true },
            ..
        })]
    ));
    assert!(till.snapshot().days.is_empty());
    // And that same paid answer, late again, is not a refund to chase: it was refunded.
    assert!(answer(&mut till, pending.intent, paid_by_wallet(), NOW).is_empty());
}

#[test]
fn no_answer_in_time_sends_the_same_submit_again_and_a_query_once_heard() {
    let mut till = online_till();
    let first = scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    till.handle_tick(at(ORDER_ANSWER_TIMEOUT_MS));
    let again = order_calls(&effects(&mut till));
    assert_eq!(
        again,
        order_calls(&first),
        "the same order id, the same submit"
    );
    assert!(records(&effects(&mut till)).is_empty());
    answer(
        &mut till,
        pending.intent,
        OrderState::Busy,
        at(ORDER_ANSWER_TIMEOUT_MS),
    );
    answer(&mut till, pending.intent, OrderState::UserPaying, at(5_500));
    till.handle_tick(at(5_500 + ORDER_ANSWER_TIMEOUT_MS));
    assert_eq!(requests(&effects(&mut till)), vec![OrderRequest::Query]);
}

#[test]
fn a_not_found_while_the_code_is_on_screen_resubmits_the_same_order_id() {
    let mut till = online_till();
    let first = scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    answer(&mut till, pending.intent, OrderState::UserPaying, NOW);
    let effects = answer(&mut till, pending.intent, OrderState::NotFound, NOW);
    assert_eq!(order_calls(&effects), order_calls(&first));
    assert!(
        records(&effects).is_empty(),
        "no new intent: the same order"
    );
}

#[test]
fn a_request_that_cannot_leave_tells_the_merchant_and_is_reversed_when_the_link_is_back() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    let down = LinkStatus {
        daemon_connected: false,
        broker: None,
        unsent: 0,
        oldest_unsent_at: None,
    };
    till.handle_link_status(down, NOW);
    till.handle_order_not_sent(
        OrderId {
            terminal: TerminalId(9),
            intent: pending.intent,
        },
        NOW,
    );
    let sent = effects(&mut till);
    assert_eq!(
        records(&sent),
        vec![RecordBody::OrderReversing {
            intent: pending.intent,
            why: ReverseWhy::RouteDown
        }]
    );
    assert_eq!(
        merchant(&till),
        "Order could not be sent | Link down: codes cannot pay | Take card or cash"
    );
    assert_eq!(till.mode, Mode::Sale(SaleMode::typed(Fen::from_yuan(8))));
    assert!(only_order(&till).reversing, "still pending, to be reversed");
    // The link comes back: the reversal goes at once.
    online(&mut till);
    assert_eq!(requests(&effects(&mut till)), vec![OrderRequest::Reverse]);
}

#[test]
fn at_start_open_orders_are_checked_first_and_one_the_campus_never_got_is_reversed() {
    let mut before = online_till();
    scan_for_8(&mut before, &wechat_code(1));
    let paying = only_order(&before);
    keys(&mut before, "C"); // reversing, then the till restarts
    effects(&mut before);
    before.handle_command(Command::Clear, NOW);
    effects(&mut before);
    keys(&mut before, "9E");
    before.handle_code(&wechat_code(2), NOW);
    effects(&mut before);
    let snapshot: TillSnapshot = before.snapshot().clone();
    let open = snapshot.pending_orders[1];
    assert!(snapshot.pending_orders[0].reversing && !open.reversing);

    let config = TillConfig {
        lang: Lang::En,
        ..TillConfig::default()
    };
    let mut till = Till::new(config, TerminalId(9), snapshot, at(60_000));
    let asked = effects(&mut till);
    assert_eq!(
        requests(&asked),
        vec![OrderRequest::Reverse, OrderRequest::Query],
        "reversing ones are reversed, the others queried"
    );
    assert_eq!(
        merchant(&till),
        "Checking open orders 2 | Please wait | Clear: background"
    );
    // The campus never got the second order's submit: reverse it, its code is gone.
    let effects = answer(&mut till, open.intent, OrderState::NotFound, at(60_100));
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderReversing {
            intent: open.intent,
            why: ReverseWhy::NotFoundAfterRestart
        }]
    );
    assert_eq!(requests(&effects), vec![OrderRequest::Reverse]);
    let reversed = OrderState::Reversed { refunded: false };
    answer(&mut till, paying.intent, reversed, at(60_200));
    answer(&mut till, open.intent, reversed, at(60_300));
    assert!(till.snapshot().pending_orders.is_empty());
    assert_eq!(
        merchant(&till),
        "Earlier order reversed | ¥9.00 | Nothing charged"
    );
    till.handle_tick(at(70_000));
    assert_eq!(
        merchant(&till),
        "Enter amount |  | ",
        "ready for the next sale"
    );
}

#[test]
fn a_paid_answer_after_a_restart_is_recovered_and_shown() {
    let mut before = online_till();
    scan_for_8(&mut before, &wechat_code(1));
    let pending = only_order(&before);
    let snapshot = before.snapshot().clone();
    let config = TillConfig {
        lang: Lang::En,
        ..TillConfig::default()
    };
    let mut till = Till::new(config, TerminalId(9), snapshot, at(1_000));
    effects(&mut till);
    let effects = answer(&mut till, pending.intent, paid_by_wallet(), at(1_100));
    assert!(matches!(
        records(&effects).as_slice(),
        [RecordBody::OrderPaid(OrderPaid {
            recovered: true,
            ..
        })]
    ));
    assert_eq!(merchant(&till), "Earlier order paid | ¥8.00 | WeChat");
}

#[test]
fn a_late_paid_for_an_order_closed_unpaid_is_journaled_once_as_a_refund_to_chase() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    keys(&mut till, "C");
    effects(&mut till);
    let reversed = OrderState::Reversed { refunded: false };
    answer(&mut till, pending.intent, reversed, NOW);
    let effects = answer(&mut till, pending.intent, paid_by_wallet(), NOW);
    assert_eq!(
        records(&effects),
        vec![RecordBody::OrderPaidAfterClose {
            intent: pending.intent,
            payer: CodePayer::Wallet(0xbeef)
        }]
    );
    assert!(effects.contains(&Effect::Beep(Beep::Attention)));
    assert_eq!(
        merchant(&till),
        "Paid after close | ¥8.00 | Refund due, see Clear+9"
    );
    assert!(answer(&mut till, pending.intent, paid_by_wallet(), NOW).is_empty());
    // A result for an order this till never had changes nothing.
    assert!(answer(&mut till, Seq(999), paid_by_wallet(), NOW).is_empty());
}

#[test]
fn orders_never_go_in_doubt_by_age() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    keys(&mut till, "C");
    keys(&mut till, "C"); // to the background while reversing
    effects(&mut till);
    till.handle_tick(at(super::super::super::UNRESOLVED_MAX_AGE_MS + 1));
    let effects = effects(&mut till);
    assert!(records(&effects).is_empty(), "{effects:?}");
    assert_eq!(requests(&effects), vec![OrderRequest::Reverse]);
    assert_eq!(only_order(&till).intent, pending.intent);
}

/// The refusals of a scanned code: each says why, and journals and sends nothing.
fn refused(till: &mut Till, code: &str) -> String {
    till.handle_code(code, NOW);
    let effects = effects(till);
    assert!(records(&effects).is_empty(), "{effects:?}");
    assert!(order_calls(&effects).is_empty(), "{effects:?}");
    merchant(till)
}

#[test]
fn a_code_that_is_not_a_payment_code_is_refused_on_both_displays() {
    let mut till = online_till();
    keys(&mut till, "8E");
    assert_eq!(refused(&mut till, "hello"), "Unrecognised code |  | ");
    assert_eq!(till.displays().customer.lines[0], "Unrecognised code");
}

#[test]
fn a_code_with_no_amount_entered_is_refused() {
    let mut till = online_till();
    assert_eq!(
        refused(&mut till, &wechat_code(1)),
        "Enter the amount first |  | "
    );
    keys(&mut till, "8");
    assert_eq!(
        refused(&mut till, &wechat_code(1)),
        "Enter the amount first |  | "
    );
}

#[test]
fn the_same_code_twice_is_refused_while_its_order_is_open_and_after() {
    let mut till = online_till();
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    assert_eq!(
        refused(&mut till, &wechat_code(1)),
        "Payment in progress |  | ",
        "another order is on screen"
    );
    let declined = OrderState::Declined(DeclineReason::PayerCancelled);
    answer(&mut till, pending.intent, declined, NOW);
    assert_eq!(
        refused(&mut till, &wechat_code(1)),
        "Code already used |  | "
    );
}

#[test]
fn a_code_during_a_card_write_is_refused() {
    let mut till = online_till();
    keys(&mut till, "5E");
    tap(&mut till, card(20, 7));
    effects(&mut till);
    assert_eq!(
        refused(&mut till, &wechat_code(1)),
        "Card write in progress |  | "
    );
}

#[test]
fn codes_are_refused_offline_saying_why() {
    let mut till = till(); // no link server at all
    keys(&mut till, "8E");
    assert_eq!(
        refused(&mut till, &wechat_code(1)),
        "WeChat | No link: codes cannot pay | Offer the QR code instead"
    );
    online(&mut till);
    keys(&mut till, "C"); // the sale is cancelled
    till.handle_command(Command::ToggleOffline, NOW);
    effects(&mut till);
    keys(&mut till, "8E");
    assert_eq!(
        refused(&mut till, &wechat_code(1)),
        "WeChat | Offline: codes cannot pay | Offer the QR code instead"
    );
    keys(&mut till, "C");
    till.handle_command(Command::ToggleOffline, NOW);
    let broker_down = LinkStatus {
        daemon_connected: true,
        broker: Some(shared::link::BrokerLink::Down),
        unsent: 0,
        oldest_unsent_at: None,
    };
    till.handle_link_status(broker_down, NOW);
    effects(&mut till);
    keys(&mut till, "8E");
    assert_eq!(
        refused(&mut till, &wechat_code(1)),
        "WeChat | Server down: codes cannot pay | Offer the QR code instead"
    );
}

#[test]
fn an_expired_virtual_card_code_is_refused_by_the_clock_corrected_by_the_server() {
    let mut till = online_till();
    keys(&mut till, "8E");
    let old = virtual_code(2024_0001, UnixMillis(NOW.0 - 61_000), 1);
    assert_eq!(refused(&mut till, &old), "Code expired, refresh it |  | ");
    // Fresh by the till's clock, but the server's clock is 2 minutes ahead: expired.
    till.server_offset = Some(120_000);
    let fresh = virtual_code(2024_0001, NOW, 2);
    assert_eq!(refused(&mut till, &fresh), "Code expired, refresh it |  | ");
}

#[test]
fn clear_5_splits_the_day_into_card_and_codes_and_clear_1_names_the_method() {
    let mut till = online_till();
    keys(&mut till, "5E");
    let write = super::super::super::testkit::card_write(&{
        tap(&mut till, card(20, 7));
        effects(&mut till)
    })
    .expect("a card write");
    let landed = super::super::super::testkit::written(card(20, 7), write);
    till.handle_card_written(
        super::super::super::card::CardWriteOutcome::Written(landed),
        NOW,
    );
    till.handle_tick(at(3_000));
    scan_for_8(&mut till, &wechat_code(1));
    let pending = only_order(&till);
    answer(&mut till, pending.intent, paid_by_wallet(), NOW);
    till.handle_tick(at(3_000));
    till.handle_command(Command::ShowTodayTotal, at(3_000));
    assert_eq!(
        merchant(&till),
        "Today | 2 sales ¥13.00 | Card 1 ¥5.00 Code 1 ¥8.00"
    );
    // Clear+1 and Clear+2 name how each recent sale was paid (a card's reads as before).
    till.handle_command(
        Command::ShowRecentAmount(keymap::RecentSlot::Last),
        at(3_000),
    );
    assert_eq!(merchant(&till), "Last sale | ¥8.00 WeChat | ");
    let second = keymap::RecentSlot::SecondLast;
    till.handle_command(Command::ShowRecentAmount(second), at(3_000));
    assert_eq!(merchant(&till), "Second-last sale | ¥5.00 | ");
}

#[test]
fn the_duplicate_reminder_covers_a_virtual_account_paying_the_same_again() {
    let mut till = online_till();
    scan_for_8(&mut till, &virtual_code(2024_0001, NOW, 1));
    let pending = only_order(&till);
    let paid = OrderState::Paid {
        payer: CodePayer::Campus(VirtualAccount(2024_0001)),
        balance_after: Some(Fen::from_yuan(42)),
        booked_at: NOW,
    };
    answer(&mut till, pending.intent, paid, NOW);
    // The same account, the same amount, a new code: the merchant must confirm.
    let again = scan_for_8(&mut till, &virtual_code(2024_0001, NOW, 2));
    assert!(records(&again).is_empty() && order_calls(&again).is_empty());
    assert!(till.is_confirming_duplicate());
    keys(&mut till, "E");
    till.handle_code(&virtual_code(2024_0001, NOW, 2), NOW);
    let effects = effects(&mut till);
    assert!(matches!(
        records(&effects).as_slice(),
        [RecordBody::OrderIntent(_)]
    ));
}

#[test]
fn clear_sends_the_start_up_check_to_the_background_where_orders_are_retried_until_they_end() {
    let mut before = online_till();
    scan_for_8(&mut before, &wechat_code(1));
    let pending = only_order(&before);
    let config = TillConfig {
        lang: Lang::En,
        ..TillConfig::default()
    };
    let mut till = Till::new(config, TerminalId(9), before.snapshot().clone(), NOW);
    // The route is down at start: the query does not leave.
    let asked = effects(&mut till);
    assert_eq!(requests(&asked), vec![OrderRequest::Query]);
    till.handle_order_not_sent(order_calls(&asked)[0].order, NOW);
    assert!(
        effects(&mut till).is_empty(),
        "nothing journaled for a background order"
    );
    till.handle_command(Command::Clear, NOW);
    assert_eq!(till.mode, Mode::Entry(Default::default()));
    assert!(
        till.displays().merchant.lines[0].contains("CHECK 1"),
        "{:?}",
        till.displays().merchant
    );
    // Retried every ORDER_BACKGROUND_RETRY_MS, and at once when the link is back.
    till.handle_tick(at(MESSAGE_SHOW_MS));
    assert!(effects(&mut till).is_empty());
    assert_eq!(till.next_deadline(), Some(at(ORDER_BACKGROUND_RETRY_MS)));
    till.handle_tick(at(ORDER_BACKGROUND_RETRY_MS));
    assert_eq!(requests(&effects(&mut till)), vec![OrderRequest::Query]);
    online(&mut till);
    assert_eq!(requests(&effects(&mut till)), vec![OrderRequest::Query]);
    answer(&mut till, pending.intent, OrderState::UserPaying, NOW);
    // The payer never confirms: past the window the background order is reversed too.
    let window = TillConfig::default().order_pay_window_ms;
    till.handle_tick(at(window));
    assert_eq!(requests(&effects(&mut till)), vec![OrderRequest::Reverse]);
    answer(
        &mut till,
        pending.intent,
        OrderState::Reversed { refunded: false },
        at(window),
    );
    assert!(till.snapshot().pending_orders.is_empty());
    assert!(!till.displays().merchant.lines[0].contains("CHECK"));
}
