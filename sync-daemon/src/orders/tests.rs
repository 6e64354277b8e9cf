//! The relay's rules (the header of `orders.rs`) as tests: one sentence each, no broker and no
//! till.

use super::*;
use shared::codec::encode_order_result;
use shared::pay::CodePayer;
use shared::{Seq, UnixMillis};

const T: TerminalId = TerminalId(0xAB);
const OTHER: TerminalId = TerminalId(0xCD);
/// A WeChat Pay code shape (18 digits from 10–15).
const WECHAT_CODE: &str = "134567890123456789";

fn order(terminal: TerminalId, intent: u64) -> OrderId {
    OrderId {
        terminal,
        intent: Seq(intent),
    }
}

fn submit(order: OrderId) -> OrderCall {
    OrderCall {
        order,
        request: OrderRequest::Submit {
            amount: Fen::new(1_250),
            method: CodeMethod::WeChat,
            code: PaymentCode::recognise(WECHAT_CODE).expect("a WeChat code"),
            at: UnixMillis(1_700_000_000_000),
        },
    }
}

fn query(order: OrderId) -> OrderCall {
    OrderCall {
        order,
        request: OrderRequest::Query,
    }
}

fn paid(order: OrderId) -> OrderResult {
    OrderResult {
        order,
        state: OrderState::Paid {
            payer: CodePayer::Wallet(7),
            balance_after: None,
            booked_at: UnixMillis(1_700_000_000_500),
        },
        server_time: UnixMillis(1_700_000_000_600),
    }
}

/// A relay with a till of terminal `T` and the broker up.
fn connected() -> OrderRelay {
    let mut relay = OrderRelay::new();
    relay.handle_till_welcome(T);
    relay.handle_broker_up();
    relay
}

fn drain(relay: &mut OrderRelay) -> Vec<OrderAction> {
    std::iter::from_fn(|| relay.poll_action()).collect()
}

fn to_till(actions: &[OrderAction]) -> Vec<ToTill> {
    actions
        .iter()
        .filter_map(|a| match a {
            OrderAction::ToTill(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn published(actions: &[OrderAction]) -> Vec<(String, OrderCall)> {
    actions
        .iter()
        .filter_map(|a| match a {
            OrderAction::Publish { topic, call } => Some((topic.clone(), call.clone())),
            _ => None,
        })
        .collect()
}

fn reports(actions: &[OrderAction]) -> Vec<OrderReport> {
    actions
        .iter()
        .filter_map(|a| match a {
            OrderAction::Report(report) => Some(report.clone()),
            _ => None,
        })
        .collect()
}

fn not_sent(order: OrderId, why: &str) -> ToTill {
    ToTill::OrderNotSent {
        order,
        why: why.to_string(),
    }
}

#[test]
fn a_call_of_the_tills_own_order_is_published_as_is_on_its_request_topic() {
    let mut relay = connected();
    relay.handle_call(submit(order(T, 5)));
    let actions = drain(&mut relay);
    assert_eq!(
        published(&actions),
        vec![(
            "campus/v1/till/00000000000000ab/pay/req".to_string(),
            submit(order(T, 5))
        )]
    );
    assert!(to_till(&actions).is_empty(), "nothing is answered locally");
    assert_eq!(relay.counters().calls_published, 1);
}

#[test]
fn with_the_broker_down_the_till_is_told_at_once_that_the_call_was_not_sent() {
    let mut relay = OrderRelay::new();
    relay.handle_till_welcome(T);
    relay.handle_call(query(order(T, 5)));
    let actions = drain(&mut relay);
    assert!(published(&actions).is_empty());
    assert_eq!(
        to_till(&actions),
        vec![not_sent(order(T, 5), NOT_SENT_BROKER_DOWN)]
    );
    // Up, then down again: the same.
    relay.handle_broker_up();
    relay.handle_broker_down();
    relay.handle_call(query(order(T, 6)));
    assert_eq!(
        to_till(&drain(&mut relay)),
        vec![not_sent(order(T, 6), NOT_SENT_BROKER_DOWN)]
    );
    assert_eq!(relay.counters().calls_not_sent, 2);
}

#[test]
fn a_call_before_the_tills_terminal_is_known_is_not_sent() {
    let mut relay = OrderRelay::new();
    relay.handle_broker_up();
    relay.handle_call(query(order(T, 1)));
    let actions = drain(&mut relay);
    assert!(published(&actions).is_empty());
    assert!(reports(&actions).contains(&OrderReport::NotSent {
        order: order(T, 1),
        kind: CallKind::Query,
        why: NOT_SENT_TERMINAL_UNKNOWN,
    }));
}

#[test]
fn a_call_naming_another_terminal_is_refused_with_an_alarm_and_never_published() {
    let mut relay = connected();
    relay.handle_call(submit(order(OTHER, 3)));
    let actions = drain(&mut relay);
    assert!(published(&actions).is_empty());
    assert_eq!(
        to_till(&actions),
        vec![not_sent(order(OTHER, 3), NOT_SENT_FOREIGN_TERMINAL)]
    );
    assert!(matches!(
        reports(&actions)[0],
        OrderReport::AlarmForeignCall { till: T, .. }
    ));
    assert_eq!(relay.counters().foreign_calls, 1);
}

#[test]
fn calls_still_queued_when_the_broker_goes_down_are_answered_not_sent() {
    let mut relay = connected();
    relay.handle_call(submit(order(T, 8)));
    relay.handle_broker_down();
    let actions = drain(&mut relay);
    assert!(published(&actions).is_empty(), "never published after down");
    assert_eq!(
        to_till(&actions),
        vec![not_sent(order(T, 8), NOT_SENT_BROKER_DOWN)]
    );
}

#[test]
fn a_call_the_mqtt_client_refuses_is_answered_not_sent() {
    let mut relay = connected();
    relay.handle_call(query(order(T, 2)));
    let [OrderAction::Report(_), OrderAction::Publish { call, .. }] = &drain(&mut relay)[..] else {
        panic!("one publish");
    };
    relay.handle_publish_refused(call);
    assert_eq!(
        to_till(&drain(&mut relay)),
        vec![not_sent(order(T, 2), NOT_SENT_QUEUE_FULL)]
    );
}

#[test]
fn a_result_for_the_till_goes_to_it_unchanged() {
    let mut relay = connected();
    relay.handle_result_payload(&encode_order_result(&paid(order(T, 5))));
    let actions = drain(&mut relay);
    assert_eq!(
        to_till(&actions),
        vec![ToTill::OrderResult(paid(order(T, 5)))]
    );
    assert_eq!(relay.counters().results_passed, 1);
}

#[test]
fn a_result_is_passed_on_even_while_the_broker_is_marked_down() {
    // A message rumqttc delivered just before the connection ended is still the server's
    // answer: the till decides what it means.
    let mut relay = connected();
    relay.handle_broker_down();
    relay.handle_result_payload(&encode_order_result(&paid(order(T, 5))));
    assert_eq!(
        to_till(&drain(&mut relay)),
        vec![ToTill::OrderResult(paid(order(T, 5)))]
    );
}

#[test]
fn a_result_naming_another_terminal_is_an_alarm_and_dropped() {
    let mut relay = connected();
    relay.handle_result_payload(&encode_order_result(&paid(order(OTHER, 5))));
    let actions = drain(&mut relay);
    assert!(to_till(&actions).is_empty());
    assert_eq!(
        reports(&actions),
        vec![OrderReport::AlarmForeignResult {
            order: order(OTHER, 5),
            till: T
        }]
    );
    assert_eq!(relay.counters().foreign_results, 1);
}

#[test]
fn an_undecodable_result_is_an_alarm_and_dropped() {
    let mut relay = connected();
    relay.handle_result_payload(&[0xFF, 0x00, 0x13]);
    let actions = drain(&mut relay);
    assert!(to_till(&actions).is_empty());
    assert!(matches!(
        reports(&actions)[..],
        [OrderReport::AlarmUndecodable { bytes: 3, .. }]
    ));
    assert_eq!(relay.counters().undecodable_results, 1);
}

#[test]
fn a_result_while_no_till_is_connected_is_dropped_and_nothing_of_it_is_kept() {
    let mut relay = connected();
    relay.handle_till_lost();
    relay.handle_result_payload(&encode_order_result(&paid(order(T, 5))));
    assert!(to_till(&drain(&mut relay)).is_empty());
    // The till comes back: nothing from before is replayed; its own query settles the order.
    relay.handle_till_welcome(T);
    assert!(drain(&mut relay).is_empty());
    assert_eq!(relay.counters().results_dropped_no_till, 1);
}

#[test]
fn answers_queued_for_a_till_that_went_away_are_not_sent_to_the_next_connection() {
    let mut relay = connected();
    relay.handle_result_payload(&encode_order_result(&paid(order(T, 5))));
    relay.handle_till_lost();
    relay.handle_till_welcome(T);
    assert!(to_till(&drain(&mut relay)).is_empty());
}

#[test]
fn no_report_ever_carries_the_payment_code() {
    let mut relay = connected();
    relay.handle_call(submit(order(T, 5)));
    relay.handle_broker_down();
    relay.handle_call(submit(order(T, 6)));
    relay.handle_call(submit(order(OTHER, 7)));
    let mut logged = String::new();
    for report in reports(&drain(&mut relay)) {
        logged += &format!("{report:?}\n");
        if let OrderReport::NotSent { kind, .. } = report {
            logged += &format!("{kind}\n");
        }
    }
    assert!(logged.contains("…6789"), "the hint is there:\n{logged}");
    assert!(
        !logged.contains(&WECHAT_CODE[..10]),
        "the code is not:\n{logged}"
    );
    assert!(
        logged.contains("submit 12.50 WeChat"),
        "so is the amount:\n{logged}"
    );
}
