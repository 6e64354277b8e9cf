//! Code-payment orders through the real path: the fake till's calls go through the real
//! `sync-daemon` and a real Mosquitto to the campus simulator's payment back end, and its
//! answers come back — across a broker that is down or restarted mid-order, a daemon killed
//! mid-poll, an order submitted twice and a payer who confirms just before the reversal. After
//! each, the campus ledger, the answers the till got and the payer's balance agree: exactly one
//! charge per paid order, a charge and its refund per refunded one, none otherwise.

use super::*;
use pos_firmware::sim::payments::{virtual_card_code, wallet_code, EntryKind, WalletBehaviour};
use shared::link::ToTill;
use shared::pay::{CodePayer, OrderCall, OrderId, OrderRequest, OrderState};
use shared::paycode::{CodeMethod, PaymentCode, VirtualAccount};
use shared::Fen;
use std::collections::BTreeMap;
use till_tests::campus_pay::sim_accounts;

/// The longest a test waits for the answer to one call.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a test waits for the daemon and the campus to be (back) on the broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Mosquitto, the campus simulator, the fake till and the daemon, connected.
struct Rig {
    _dir: tempfile::TempDir,
    broker: Mosquitto,
    campus: CampusSim,
    till: FakeTill,
    daemon: DaemonProcess,
}

impl Rig {
    fn start(terminal: TerminalId) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let broker = Mosquitto::start(&MosquittoOptions::default());
        let campus = campus_up(CampusOptions::new(broker.port(), dir.path().join("campus")));
        let socket = dir.path().join("link.sock");
        let till = FakeTill::start(&socket, terminal);
        let daemon = DaemonProcess::start(&DaemonSetup::new(&socket, broker.port(), dir.path()));
        let rig = Rig {
            _dir: dir,
            broker,
            campus,
            till,
            daemon,
        };
        rig.wait_connected(1, 1);
        rig
    }

    /// Waits until the daemon reported "broker up" `daemon_ups` times (over its runs) and the
    /// campus subscribed `campus_subscribed` times: a call sent now gets through.
    fn wait_connected(&self, daemon_ups: usize, campus_subscribed: u64) {
        wait(
            "the daemon and the campus on the broker",
            CONNECT_TIMEOUT,
            &self.daemon,
            || {
                self.daemon.broker_connections() >= daemon_ups
                    && self.campus.stats().subscribed >= campus_subscribed
            },
        );
    }

    fn order(&self, intent: u64) -> OrderId {
        OrderId {
            terminal: self.till.terminal(),
            intent: Seq(intent),
        }
    }

    /// Sends `call` and returns the daemon's answer about it (panics without one in time).
    fn call(&self, call: &OrderCall) -> ToTill {
        self.till.call(call, ANSWER_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "no answer to {:?} {} in {ANSWER_TIMEOUT:?}; daemon log tail:\n{}",
                call.request,
                call.order,
                self.daemon.log_tail(30)
            )
        })
    }

    /// Sends `call` and returns the campus's state in its answer (panics on "not sent").
    fn state(&self, call: &OrderCall) -> OrderState {
        match self.call(call) {
            ToTill::OrderResult(result) => {
                assert_eq!(result.order, call.order);
                result.state
            }
            other => panic!(
                "{} not answered by the campus: {other:?}; daemon log tail:\n{}",
                call.order,
                self.daemon.log_tail(30)
            ),
        }
    }

    fn submit(&self, order: OrderId, code: &str, amount: Fen) -> OrderCall {
        let code = PaymentCode::recognise(code).expect("a payment code");
        OrderCall {
            order,
            request: OrderRequest::Submit {
                amount,
                method: code.method(),
                code,
                at: self.campus.now(),
            },
        }
    }
}

fn query(order: OrderId) -> OrderCall {
    OrderCall {
        order,
        request: OrderRequest::Query,
    }
}

fn reverse(order: OrderId) -> OrderCall {
    OrderCall {
        order,
        request: OrderRequest::Reverse,
    }
}

/// The campus's books and the till's answers agree: every order the campus answered ended
/// paid, reversed or declined in its last answer, the campus holds that same state, its ledger
/// has one charge for a paid order, a charge and a refund for a refunded one and nothing for
/// the rest, nothing for an order the till never heard of, and every campus account's balance
/// is its opening balance less its charges plus its refunds. Returns (orders, ledger lines).
fn assert_books_agree(campus: &CampusSim, till: &FakeTill) -> (usize, usize) {
    let mut last: BTreeMap<OrderId, OrderState> = BTreeMap::new();
    for answer in till.order_answers() {
        if let ToTill::OrderResult(result) = answer {
            last.insert(result.order, result.state);
        }
    }
    let ledger = campus.ledger();
    for (order, state) in &last {
        assert!(state.is_final(), "{order} left open: {state:?}");
        assert_eq!(
            campus.order_state(*order),
            Some(*state),
            "the campus holds what the till was told about {order}"
        );
        let count = |kind| {
            ledger
                .iter()
                .filter(|e| e.order == *order && e.kind == kind)
                .count()
        };
        let expected = match state {
            OrderState::Paid { .. } => (1, 0),
            OrderState::Reversed { refunded: true } => (1, 1),
            _ => (0, 0),
        };
        assert_eq!(
            (count(EntryKind::Charge), count(EntryKind::Refund)),
            expected,
            "charges and refunds of {order} ({state:?})"
        );
    }
    for record in campus.orders() {
        assert!(
            last.contains_key(&record.id),
            "the campus holds {} that the till never got an answer about",
            record.id
        );
    }
    for entry in &ledger {
        assert!(
            last.contains_key(&entry.order),
            "the campus booked {} that the till never heard of",
            entry.order
        );
    }
    for (account, opening) in sim_accounts() {
        let moved = |kind| {
            ledger
                .iter()
                .filter(|e| e.payer == CodePayer::Campus(account) && e.kind == kind)
                .map(|e| e.amount.get())
                .sum::<u64>()
        };
        assert_eq!(
            campus.balance(account).map(Fen::get),
            Some(opening.get() - moved(EntryKind::Charge) + moved(EntryKind::Refund)),
            "account {account}'s balance is what its ledger lines say"
        );
    }
    (last.len(), ledger.len())
}

/// The daemon never wrote a code it relayed into its log.
fn assert_codes_not_logged(daemon: &DaemonProcess, codes: &[&str]) {
    let log = daemon.log_text();
    for code in codes {
        assert!(
            !log.contains(code),
            "the daemon logged a payment code:\n{log}"
        );
    }
}

#[test]
fn a_virtual_card_submit_goes_to_the_campus_and_back_paid_and_the_balance_falls_once() {
    let started = Instant::now();
    let rig = Rig::start(TerminalId(0x0000_0A1D_0000_0001));
    let account = VirtualAccount(1);
    let before = rig.campus.balance(account).expect("a default account");
    let code = virtual_card_code(account, rig.campus.now(), 1);
    let amount = Fen::new(1_250);
    let state = rig.state(&rig.submit(rig.order(1), &code, amount));
    let OrderState::Paid {
        payer,
        balance_after,
        ..
    } = state
    else {
        panic!("paid, not {state:?}");
    };
    assert_eq!(payer, CodePayer::Campus(account));
    let after = rig.campus.balance(account);
    assert_eq!(after, before.checked_sub(amount), "charged once");
    assert_eq!(
        balance_after, after,
        "the till is told the balance the campus holds"
    );
    let (orders, lines) = assert_books_agree(&rig.campus, &rig.till);
    assert_codes_not_logged(&rig.daemon, &[&code]);
    println!(
        "virtual card: paid {amount} through daemon and broker, balance {before} → {}, orders \
         {orders}, ledger lines {lines}, {:.1} s",
        after.unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_same_order_submitted_twice_is_charged_once_and_answered_the_same() {
    let rig = Rig::start(TerminalId(0x0000_0A1D_0000_0002));
    let account = VirtualAccount(2);
    let code = virtual_card_code(account, rig.campus.now(), 2);
    let submit = rig.submit(rig.order(7), &code, Fen::new(800));
    let first = rig.state(&submit);
    let second = rig.state(&submit);
    assert!(matches!(first, OrderState::Paid { .. }), "{first:?}");
    assert_eq!(second, first, "the same answer");
    // A wallet order twice: the same.
    let wallet = wallet_code(CodeMethod::Alipay, WalletBehaviour::PaidAtOnce, 21);
    let submit = rig.submit(rig.order(8), &wallet, Fen::new(450));
    assert_eq!(rig.state(&submit), rig.state(&submit));
    assert_eq!(rig.campus.payment_stats().calls, 4, "all four reached it");
    assert_eq!(rig.campus.ledger().len(), 2, "one charge per order");
    assert_eq!(rig.campus.balance(account), Some(Fen::new(50_000 - 800)));
    let (orders, lines) = assert_books_agree(&rig.campus, &rig.till);
    assert_codes_not_logged(&rig.daemon, &[&code, &wallet]);
    println!("submitted twice: orders {orders}, ledger lines {lines}");
}

#[test]
fn with_the_broker_down_the_till_hears_at_once_that_its_call_was_not_sent() {
    let mut rig = Rig::start(TerminalId(0x0000_0A1D_0000_0003));
    let downs = |rig: &Rig| rig.daemon.log_text().matches("broker down").count();
    let downs_before = downs(&rig);
    rig.broker.kill();
    wait(
        "the daemon saw the broker go",
        CONNECT_TIMEOUT,
        &rig.daemon,
        || downs(&rig) > downs_before,
    );
    let code = wallet_code(CodeMethod::WeChat, WalletBehaviour::PaidAtOnce, 31);
    let submit = rig.submit(rig.order(3), &code, Fen::new(600));
    let asked = Instant::now();
    let answer = rig.call(&submit);
    let answered_in = asked.elapsed();
    assert!(
        matches!(answer, ToTill::OrderNotSent { order, .. } if order == submit.order),
        "{answer:?}"
    );
    // Only the daemon can have answered: the broker is still dead.
    assert_eq!(rig.campus.order_count(), 0, "nothing reached the campus");
    // The till asks again once the broker is back: the order goes through, once.
    rig.broker.restart();
    rig.wait_connected(2, 2);
    let state = rig.state(&submit);
    assert!(matches!(state, OrderState::Paid { .. }), "{state:?}");
    let (orders, lines) = assert_books_agree(&rig.campus, &rig.till);
    println!(
        "broker down: not sent, answered in {} ms; after the restart: {state:?}, orders \
         {orders}, ledger lines {lines}",
        answered_in.as_millis()
    );
}

#[test]
fn a_broker_restarted_in_the_middle_of_a_user_paying_order_leaves_one_charge() {
    let mut rig = Rig::start(TerminalId(0x0000_0A1D_0000_0004));
    const CONFIRM_S: u8 = 10;
    let behaviour = WalletBehaviour::UserPayingThenPaid { after_s: CONFIRM_S };
    let code = wallet_code(CodeMethod::UnionPay, behaviour, 41);
    let order = rig.order(4);
    let submit = rig.submit(order, &code, Fen::new(1_800));
    assert_eq!(rig.state(&submit), OrderState::UserPaying);
    rig.broker.restart();
    rig.wait_connected(2, 2);
    // The payer confirms on the phone while the till waits.
    rig.campus
        .advance_clock(Duration::from_secs(u64::from(CONFIRM_S) + 1));
    let state = rig.state(&query(order));
    let OrderState::Paid { payer, .. } = state else {
        panic!("paid after the restart, not {state:?}");
    };
    assert_eq!(payer, CodePayer::Wallet(41));
    // Submitted again (the till's retry after the restart) and queried again: still one.
    assert_eq!(rig.state(&submit), state);
    assert_eq!(rig.state(&query(order)), state);
    let (orders, lines) = assert_books_agree(&rig.campus, &rig.till);
    assert_eq!(lines, 1, "one charge");
    assert_codes_not_logged(&rig.daemon, &[&code]);
    println!(
        "broker restarted mid-order: {state:?}, orders {orders}, ledger lines {lines}, broker \
         kills {}",
        rig.broker.kills
    );
}

#[test]
fn a_daemon_killed_in_the_middle_of_a_poll_loses_nothing_and_the_order_settles_once() {
    let mut rig = Rig::start(TerminalId(0x0000_0A1D_0000_0005));
    const CONFIRM_S: u8 = 10;
    let behaviour = WalletBehaviour::UserPayingThenPaid { after_s: CONFIRM_S };
    let code = wallet_code(CodeMethod::WeChat, behaviour, 51);
    let order = rig.order(5);
    assert_eq!(
        rig.state(&rig.submit(order, &code, Fen::new(2_200))),
        OrderState::UserPaying
    );
    // A poll in flight: the campus has booked the query, its answer is not out yet.
    rig.campus.hold_order_results();
    let held = rig.campus.payment_stats().results_held;
    assert!(
        rig.till.send_order(&query(order)),
        "the daemon is connected"
    );
    wait(
        "the campus booked the query",
        ANSWER_TIMEOUT,
        &rig.daemon,
        || rig.campus.payment_stats().results_held > held,
    );
    rig.daemon.kill();
    // The answer goes out while the daemon is dead: the broker keeps it in its session.
    rig.campus.release_order_results();
    let answers_before = rig.till.answers_about(order).len();
    rig.daemon.restart();
    rig.wait_connected(2, 1);
    wait(
        "the answer queued while the daemon was dead",
        ANSWER_TIMEOUT,
        &rig.daemon,
        || rig.till.answers_about(order).len() > answers_before,
    );
    let held_answer = rig.till.answers_about(order).pop();
    assert!(
        matches!(
            held_answer,
            Some(ToTill::OrderResult(ref r)) if r.state == OrderState::UserPaying
        ),
        "the held answer came through the restarted daemon: {held_answer:?}"
    );
    rig.campus
        .advance_clock(Duration::from_secs(u64::from(CONFIRM_S) + 1));
    let state = rig.state(&query(order));
    assert!(matches!(state, OrderState::Paid { .. }), "{state:?}");
    let (orders, lines) = assert_books_agree(&rig.campus, &rig.till);
    assert_eq!(lines, 1, "one charge");
    println!(
        "daemon killed mid-poll ({} kill): {state:?}, answers {}, orders {orders}, ledger lines \
         {lines}",
        rig.daemon.kills,
        rig.till.answers_about(order).len()
    );
}

#[test]
fn a_reversal_after_the_payer_paid_late_refunds_and_the_books_say_so() {
    let rig = Rig::start(TerminalId(0x0000_0A1D_0000_0006));
    // Paid on the phone after the till's last query, before its reversal.
    const CONFIRM_S: u8 = 5;
    let late = wallet_code(
        CodeMethod::WeChat,
        WalletBehaviour::UserPayingThenPaid { after_s: CONFIRM_S },
        61,
    );
    let late_order = rig.order(6);
    assert_eq!(
        rig.state(&rig.submit(late_order, &late, Fen::new(1_500))),
        OrderState::UserPaying
    );
    rig.campus
        .advance_clock(Duration::from_secs(u64::from(CONFIRM_S) + 1));
    assert_eq!(
        rig.state(&reverse(late_order)),
        OrderState::Reversed { refunded: true }
    );
    // Paid just as the reversal arrives.
    let racing = wallet_code(CodeMethod::Alipay, WalletBehaviour::PaidDuringReversal, 62);
    let racing_order = rig.order(7);
    assert_eq!(
        rig.state(&rig.submit(racing_order, &racing, Fen::new(900))),
        OrderState::UserPaying
    );
    assert_eq!(
        rig.state(&reverse(racing_order)),
        OrderState::Reversed { refunded: true }
    );
    // Asked again (the till's retry of a reversal whose answer it lost): the same, no more.
    assert_eq!(
        rig.state(&reverse(racing_order)),
        OrderState::Reversed { refunded: true }
    );
    // A payer who never confirms: reversed, nothing booked.
    let never = wallet_code(CodeMethod::UnionPay, WalletBehaviour::UserPayingNever, 63);
    let never_order = rig.order(8);
    assert_eq!(
        rig.state(&rig.submit(never_order, &never, Fen::new(700))),
        OrderState::UserPaying
    );
    assert_eq!(
        rig.state(&reverse(never_order)),
        OrderState::Reversed { refunded: false }
    );
    let (orders, lines) = assert_books_agree(&rig.campus, &rig.till);
    assert_eq!(lines, 4, "two charges and their two refunds");
    for payer in [61, 62] {
        let net: i64 = rig
            .campus
            .ledger()
            .iter()
            .filter(|e| e.payer == CodePayer::Wallet(payer))
            .map(|e| match e.kind {
                EntryKind::Charge => -(e.amount.get() as i64),
                EntryKind::Refund => e.amount.get() as i64,
            })
            .sum();
        assert_eq!(net, 0, "payer {payer} got back what was taken");
    }
    println!("late pay then reversal: refunded twice, orders {orders}, ledger lines {lines}");
}
