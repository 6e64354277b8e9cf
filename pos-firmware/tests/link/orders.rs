//! Code-payment orders over the link: the link server alone (out to a welcomed daemon only,
//! answers back as events, "not sent" for every request it took on a connection that died),
//! and the whole till through the real binary (the intent before the submit, the answer
//! settling the sale, a lost daemon reversing the order, the code never printed or logged).

use super::*;

/// A link server on a fresh journal, its events on a channel (no till around it: what the link
/// itself does with orders).
fn order_link(
    dir: &Path,
) -> (
    pos_firmware::link::LinkServer,
    std::sync::mpsc::Receiver<pos_firmware::link::LinkEvent>,
    Journal,
) {
    use pos_firmware::link::{EventSink, LinkEvent, LinkServer};
    let journal = Journal::open(dir).unwrap();
    let (events, received) = std::sync::mpsc::channel();
    let events = Mutex::new(events);
    let sink: EventSink = Arc::new(move |event: LinkEvent| {
        let _ = events.lock().unwrap().send(event);
    });
    let server = LinkServer::start(&socket(dir), journal.reader(), sink).unwrap();
    (server, received, journal)
}

/// The next link event that is about an order (the daemon's state changes are skipped).
fn next_order_event(
    events: &std::sync::mpsc::Receiver<pos_firmware::link::LinkEvent>,
) -> pos_firmware::link::LinkEvent {
    use pos_firmware::link::LinkEvent;
    loop {
        let event = events.recv_timeout(WAIT_LIMIT).expect("an order event");
        if matches!(
            event,
            LinkEvent::OrderResult(_) | LinkEvent::OrderNotSent { .. }
        ) {
            return event;
        }
    }
}

fn wechat_submit(terminal: shared::TerminalId, intent: u64) -> shared::pay::OrderCall {
    use shared::pay::{OrderCall, OrderId, OrderRequest};
    use shared::paycode::PaymentCode;
    OrderCall {
        order: OrderId {
            terminal,
            intent: Seq(intent),
        },
        request: OrderRequest::Submit {
            amount: Fen::from_yuan(12),
            method: shared::paycode::CodeMethod::WeChat,
            code: PaymentCode::recognise("134567890123456789").unwrap(),
            at: UnixMillis(1_795_000_000_000),
        },
    }
}

#[test]
fn an_order_goes_to_the_welcomed_daemon_and_its_answers_come_back_as_events() {
    use pos_firmware::link::LinkEvent;
    use shared::pay::{CodePayer, OrderResult, OrderState};
    let dir = tempfile::tempdir().unwrap();
    let (server, events, journal) = order_link(dir.path());
    let terminal = journal.terminal_id();

    // Connected but not welcomed yet: nothing may go out (the daemon does not know the till).
    let mut daemon = Daemon::connect(dir.path());
    assert_eq!(
        server.send_order(wechat_submit(terminal, 1)),
        Err("no daemon connected".to_string())
    );
    daemon.send(&ToTill::Hello {
        protocol: LINK_PROTOCOL_VERSION,
        daemon: "test".into(),
    });
    assert!(matches!(daemon.recv(), ToDaemon::Welcome { .. }));

    // The link marks the daemon welcomed just after it queued the `Welcome` (so no order can
    // overtake it): the test may read the `Welcome` a moment before. Poll for it, bounded.
    let call = wechat_submit(terminal, 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Err(why) = server.send_order(call.clone()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the welcomed daemon never took orders: {why}"
        );
        std::thread::yield_now();
    }
    assert_eq!(daemon.answer(), ToDaemon::Order(call.clone()));

    // The campus server's answer and the daemon's "not sent" reach the main loop.
    let paid = OrderResult {
        order: call.order,
        state: OrderState::Paid {
            payer: CodePayer::Wallet(77),
            balance_after: None,
            booked_at: UnixMillis(1_795_000_001_000),
        },
        server_time: UnixMillis(1_795_000_001_000),
    };
    daemon.send(&ToTill::OrderResult(paid));
    match next_order_event(&events) {
        LinkEvent::OrderResult(result) => assert_eq!(result, paid),
        other => panic!("expected the result, got {other:?}"),
    }
    daemon.send(&ToTill::OrderNotSent {
        order: call.order,
        why: "broker down".into(),
    });
    match next_order_event(&events) {
        LinkEvent::OrderNotSent { order, why } => {
            assert_eq!(order, call.order);
            assert_eq!(why, "broker down");
        }
        other => panic!("expected not sent, got {other:?}"),
    }
    server.stop();
}

#[test]
fn without_a_daemon_an_order_is_not_sent_and_the_submit_is_never_logged_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (server, events, journal) = order_link(dir.path());
    let call = wechat_submit(journal.terminal_id(), 3);
    assert_eq!(
        server.send_order(call.clone()),
        Err("no daemon connected".to_string())
    );

    // A daemon that came and went: every request the link still took is reported "not sent"
    // (written to a closed connection, or left in its queue), and then it takes none.
    let (daemon, _) = Daemon::hello(dir.path());
    drop(daemon);
    let mut accepted = 0;
    while server.send_order(call.clone()).is_ok() {
        accepted += 1;
        // It takes orders only until its threads see the closed connection.
        assert!(
            accepted < 1_000_000,
            "the closed connection was never noticed"
        );
    }
    for _ in 0..accepted {
        match next_order_event(&events) {
            pos_firmware::link::LinkEvent::OrderNotSent { order, why } => {
                assert_eq!(order, call.order);
                assert!(why.contains("connection died"), "{why}");
            }
            other => panic!("expected not sent, got {other:?}"),
        }
    }
    let extra: Vec<_> = events
        .try_iter()
        .filter(|e| !matches!(e, pos_firmware::link::LinkEvent::Peer(_)))
        .collect();
    assert!(
        extra.is_empty(),
        "exactly one answer per request: {extra:?}"
    );
    // Whatever a front end logs of the request names the order, never the code.
    let logged = format!("{call:?}");
    assert!(!logged.contains("134567890123456789"), "{logged}");
    assert!(logged.contains("…6789"), "{logged}");
    server.stop();
}

/// The next order request the till sends (pushes and other answers skipped).
fn next_order(daemon: &mut Daemon) -> shared::pay::OrderCall {
    loop {
        match daemon.recv() {
            ToDaemon::Order(call) => return call,
            _ => continue,
        }
    }
}

#[test]
fn a_scanned_code_goes_to_the_daemon_after_its_intent_and_the_answer_settles_the_sale() {
    use shared::link::BrokerLink;
    use shared::pay::{CodePayer, OrderRequest, OrderResult, OrderState};
    const CODE: &str = "134567890123456789";
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    // No daemon: the till refuses the code and sends nothing.
    let out = till.run(&format!("type 12\nkeys Enter\nscan {CODE}"));
    assert!(out.contains("链路断开 不能扫码"), "{out}");
    till.run("expect journal 0 records");

    let (mut daemon, _) = Daemon::hello(dir.path());
    daemon.send(&ToTill::Broker(BrokerLink::Up));
    till.run("wait-daemon 10s\nwait 3s");
    till.run(&format!("scan {CODE}\nexpect journal 1 records"));
    // The submit carries the code in clear (only the daemon and the campus see it) and names
    // the order by the seq of its durable intent.
    let call = next_order(&mut daemon);
    let OrderRequest::Submit { amount, code, .. } = &call.request else {
        panic!("expected a submit, got {call:?}");
    };
    assert_eq!(*amount, Fen::from_yuan(12));
    assert_eq!(code.expose(), CODE);
    assert_eq!(call.order.intent, Seq(1));
    daemon.send(&ToTill::OrderResult(OrderResult {
        order: call.order,
        state: OrderState::Paid {
            payer: CodePayer::Wallet(0x77),
            balance_after: None,
            booked_at: UnixMillis(1_795_000_000_000),
        },
        server_time: UnixMillis(1_795_000_000_000),
    }));
    till.out.wait_until("the sale to commit", |t| {
        t.contains("order-paid #1 ¥12.00 WeChat payer 77")
    });
    till.run("expect merchant 交易成功 | ¥12.00 | 微信\nwait 3s");

    // The daemon goes away while the payer confirms: the next query cannot leave the till, the
    // order is reversed (journaled first), and the reversal goes to the next daemon.
    till.run(&format!(
        "type 6\nkeys Enter\nscan {}",
        "134567890123456788"
    ));
    let call = next_order(&mut daemon);
    daemon.send(&ToTill::OrderResult(OrderResult {
        order: call.order,
        state: OrderState::UserPaying,
        server_time: UnixMillis(1_795_000_000_000),
    }));
    till.out
        .wait_until("the payer to be asked", |t| t.contains("等待确认"));
    drop(daemon);
    till.out
        .wait_until("the daemon to go", |t| t.contains("daemon disconnected"));
    till.run("wait 3s");
    till.out
        .wait_until("the order reversed for the lost route", |t| {
            t.contains("order-reversing #3 RouteDown")
        });
    // The till asked while no daemon could take it: the host answered "not sent" at once.
    till.out.wait_until("the host's not sent", |t| {
        t.contains("LINK order #3 not sent: no daemon connected")
    });
    let (mut daemon, _) = Daemon::hello(dir.path());
    daemon.send(&ToTill::Broker(BrokerLink::Up));
    let reverse = next_order(&mut daemon);
    assert_eq!(reverse.order, call.order);
    assert_eq!(reverse.request, OrderRequest::Reverse);
    daemon.send(&ToTill::OrderResult(OrderResult {
        order: call.order,
        state: OrderState::Reversed { refunded: false },
        server_time: UnixMillis(1_795_000_000_000),
    }));
    till.out.wait_until("the order closed", |t| {
        t.contains("order-closed #3 Reversed { refunded: false }")
    });
    let log = Arc::clone(&till.err);
    let out = till.stop();
    // The code is a bearer token: the till prints and logs only its last characters (its own
    // standard output echoes the script's `scan` lines, which are the test's input).
    assert!(out.contains("code …6789"), "{out}");
    let printed = out.lines().filter(|l| !l.starts_with("> scan "));
    for line in printed.chain(log.text().lines()) {
        assert!(
            !line.contains(CODE) && !line.contains("134567890123456788"),
            "the code leaked: {line}"
        );
    }
}
