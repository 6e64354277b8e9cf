//! Code-payment orders through the real binaries: the real till (`pos-firmware script - --link`)
//! sells with a payment code through the real `sync-daemon` and a real Mosquitto to the campus
//! simulator's durable payment back end, and is SIGKILLed at every step of an order — before
//! its submit leaves (a pause point), after the submit and before the answer (the campus holds
//! its answers), while the payer confirms, after the merchant's Clear journaled the reversal
//! (its answer held, or the reversal never sent) — then restarted: its start-up check settles
//! the order and the display says so. The daemon killed while the till polls and the broker
//! restarted mid-order settle too, and a code used once is refused for a second sale. After
//! each, the campus ledger, the till's journal and the payers' balances agree: exactly one
//! charge or none (a charge and its refund for a reversal that found the order paid), every
//! order paid, reversed or declined, none open, and no code in any log.

use super::*;
use pos_firmware::core::calendar::local_time;
use pos_firmware::core::config::TillConfig;
use pos_firmware::journal::Journal;
use pos_firmware::sim::payments::{virtual_card_code, wallet_code, EntryKind, WalletBehaviour};
use shared::pay::{CodePayer, DeclineReason, OrderId, OrderState};
use shared::paycode::{CodeMethod, VirtualAccount};
use shared::record::{OrderEnd, RecordBody};
use shared::{Fen, UnixMillis};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use till_tests::campus_pay::sim_accounts;
use till_tests::{audit_journal, TillProcess};

/// The longest a test drives the till's clock waiting for an order to settle on screen.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the till's clock moves per step while a test waits for an order to settle (the
/// till's answer timeout: each step asks again).
const SETTLE_STEP: &str = "wait 5s\n";
/// How long a test waits for a line after each step of the till's clock.
const SETTLE_STEP_WAIT: Duration = Duration::from_secs(2);
/// The till's payment window (its default), which the campus does not know.
const PAY_WINDOW: &str = "wait 61s\n";
/// A sale of ¥12.50 waiting for its payer.
const SALE: &str = "type 12.5\nkeys Enter\n";
const SALE_AMOUNT: Fen = Fen::new(1_250);

/// Mosquitto, the campus simulator, the daemon and the till (started and killed by the test).
struct Rig {
    _dir: tempfile::TempDir,
    broker: Mosquitto,
    campus: CampusSim,
    daemon: DaemonProcess,
    till: OrderTill,
}

impl Rig {
    fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let broker = Mosquitto::start(&MosquittoOptions::default());
        let campus = campus_up(CampusOptions::new(broker.port(), dir.path().join("campus")));
        let socket = dir.path().join("link.sock");
        let daemon = DaemonProcess::start(&DaemonSetup::new(&socket, broker.port(), dir.path()));
        let till = OrderTill {
            data: dir.path().join("till"),
            socket,
            log: dir.path().join("till.log"),
            process: None,
            printed: Vec::new(),
            kills: 0,
        };
        Rig {
            _dir: dir,
            broker,
            campus,
            daemon,
            till,
        }
    }

    /// Starts the till (with a pause point, if any) and waits until it can take a code: its
    /// daemon is connected and reports the broker up.
    fn till_ready(&mut self, pause_at: Option<&str>) -> &mut TillProcess {
        self.till.launch(pause_at);
        let till = self.till.process();
        till.wait_for("daemon reports broker Up");
        till
    }

    /// Waits until the campus booked `calls` order calls in all (answers held or not).
    fn wait_campus_calls(&self, calls: u64) {
        wait(
            "the campus booked the call",
            CATCH_UP_TIMEOUT,
            &self.daemon,
            || self.campus.payment_stats().calls >= calls,
        );
    }

    /// Restarts the killed till and checks that its start-up check names the open order and
    /// settles it with `outcome` on the display; then stops it cleanly.
    fn restart_and_settle(&mut self, outcome: &str) -> String {
        self.till.launch(None);
        let till = self.till.process();
        till.wait_for("核对未完成订单 1");
        let settled = till.wait_for(outcome);
        self.till.finish();
        settled
    }

    /// Drives the till's clock in steps of the answer timeout until it shows `marker` (bounded).
    fn drive_until(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let till = self.till.process();
        loop {
            if let Some(line) = till.wait_for_within(marker, SETTLE_STEP_WAIT) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "the till never showed \"{marker}\"; it printed:\n{}\ndaemon log tail:\n{}",
                till.transcript.join("\n"),
                self.daemon.log_tail(30)
            );
            till.send(SETTLE_STEP);
        }
    }

    /// The order id of the till's intent `intent` (read from its journal: the till is stopped).
    fn order(&self, intent: u64) -> OrderId {
        OrderId {
            terminal: Journal::open(&self.till.data)
                .expect("the journal opens")
                .terminal_id(),
            intent: Seq(intent),
        }
    }

    /// Neither the till (its log, and its output beyond the script's own echo) nor the daemon
    /// wrote any of `codes`.
    fn assert_codes_secret(&self, codes: &[&str]) {
        let till_log = std::fs::read_to_string(&self.till.log).unwrap_or_default();
        let daemon_log = self.daemon.log_text();
        for code in codes {
            assert!(!till_log.contains(code), "the till logged a payment code");
            assert!(
                !daemon_log.contains(code),
                "the daemon logged a payment code"
            );
            for line in &self.till.printed {
                assert!(
                    line.starts_with("> ") || !line.contains(code),
                    "the till printed a payment code: {line}"
                );
            }
        }
    }
}

/// The real till on the link, launched and SIGKILLed by the test; its clock starts at the
/// real local time of each launch (the campus checks a virtual card's validity by its own
/// clock).
struct OrderTill {
    data: PathBuf,
    socket: PathBuf,
    /// Its log (standard error) over all its runs.
    log: PathBuf,
    process: Option<TillProcess>,
    /// Everything it printed over its runs that ended.
    printed: Vec<String>,
    kills: u32,
}

impl OrderTill {
    fn launch(&mut self, pause_at: Option<&str>) {
        let socket = self.socket.to_string_lossy().into_owned();
        let start = local_now();
        let mut args = vec!["--link", socket.as_str(), "--start", start.as_str()];
        if let Some(point) = pause_at {
            args.extend(["--pause-at", point]);
        }
        self.process = Some(TillProcess::start_logged(
            &self.data,
            &args,
            Some(&self.log),
        ));
    }

    fn process(&mut self) -> &mut TillProcess {
        self.process.as_mut().expect("the till is running")
    }

    /// SIGKILL, as a power cut of the process.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            self.printed.append(&mut process.transcript);
            process.kill();
            self.kills += 1;
        }
    }

    /// Closes its input and waits for a clean exit.
    fn finish(&mut self) {
        if let Some(process) = self.process.take() {
            self.printed.extend(process.finish());
        }
    }
}

/// The till's local time now ("YYYY-MM-DD HH:MM:SS"), for `--start`.
fn local_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970");
    let at = UnixMillis(i64::try_from(now.as_millis()).expect("millis fit"));
    local_time(at, TillConfig::default().utc_offset_minutes)
        .wall
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// How an order ended in the till's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JournalEnd {
    Paid { recovered: bool },
    Closed(OrderEnd),
}

/// The orders of the till's journal (read after it stopped): amount and end by intent.
fn journal_orders(data: &Path) -> BTreeMap<Seq, (Fen, Option<JournalEnd>)> {
    let journal = Journal::open(data).expect("the journal opens");
    let mut orders = BTreeMap::new();
    for record in journal.records_from(Seq::FIRST) {
        let record = record.expect("every record decodes");
        match record.body {
            RecordBody::OrderIntent(intent) => {
                orders.insert(record.seq, (intent.amount, None));
            }
            RecordBody::OrderPaid(paid) => {
                let order = orders.get_mut(&paid.intent).expect("paid after its intent");
                assert_eq!(order.0, paid.amount, "paid the amount of its intent");
                order.1 = Some(JournalEnd::Paid {
                    recovered: paid.recovered,
                });
            }
            RecordBody::OrderClosed(closed) => {
                let order = orders
                    .get_mut(&closed.intent)
                    .expect("closed after its intent");
                order.1 = Some(JournalEnd::Closed(closed.end));
            }
            _ => {}
        }
    }
    orders
}

/// What the books hold once every order settled.
#[derive(Debug)]
struct Books {
    ends: Vec<JournalEnd>,
    charges: usize,
    refunds: usize,
}

/// The campus ledger, the till's journal and the payers' balances agree: the journal is
/// consistent and no order is open in it; a paid order has one charge of its amount and no
/// refund, and the campus holds it paid; a reversed one has a charge and its refund when it was
/// refunded, nothing otherwise, and the campus holds the same end; a declined one has nothing;
/// the campus holds and booked nothing the journal does not name; every campus account's
/// balance is its opening balance less its charges plus its refunds.
fn assert_books_agree(campus: &CampusSim, data: &Path) -> Books {
    let audit = audit_journal(data);
    assert!(
        audit.unresolved.is_empty(),
        "orders left open: {:?}",
        audit.unresolved
    );
    let terminal = Journal::open(data)
        .expect("the journal opens")
        .terminal_id();
    let orders = journal_orders(data);
    let ledger = campus.ledger();
    let mut ends = Vec::new();
    for (&intent, &(amount, end)) in &orders {
        let id = OrderId { terminal, intent };
        let end = end.unwrap_or_else(|| panic!("{id} has no end in the journal"));
        let moved = |kind| -> Vec<Fen> {
            ledger
                .iter()
                .filter(|e| e.order == id && e.kind == kind)
                .map(|e| e.amount)
                .collect()
        };
        let (charges, refunds) = (moved(EntryKind::Charge), moved(EntryKind::Refund));
        let state = campus.order_state(id);
        match end {
            JournalEnd::Paid { .. } => {
                assert!(
                    matches!(state, Some(OrderState::Paid { .. })),
                    "{id}: {state:?}"
                );
                assert_eq!((charges, refunds), (vec![amount], vec![]), "{id} paid once");
            }
            JournalEnd::Closed(OrderEnd::Reversed { refunded }) => {
                assert_eq!(state, Some(OrderState::Reversed { refunded }), "{id}");
                let moved = if refunded { vec![amount] } else { vec![] };
                assert_eq!((charges, refunds), (moved.clone(), moved), "{id} reversed");
            }
            JournalEnd::Closed(OrderEnd::Declined(reason)) => {
                assert_eq!(state, Some(OrderState::Declined(reason)), "{id}");
                assert_eq!((charges, refunds), (vec![], vec![]), "{id} declined");
            }
        }
        ends.push(end);
    }
    for record in campus.orders() {
        assert!(
            record.id.terminal == terminal && orders.contains_key(&record.id.intent),
            "the campus holds {} that the till's journal does not name",
            record.id
        );
    }
    for entry in &ledger {
        assert!(
            entry.order.terminal == terminal && orders.contains_key(&entry.order.intent),
            "the campus booked {} that the till's journal does not name",
            entry.order
        );
    }
    for (account, opening) in sim_accounts() {
        let sum = |kind| -> u64 {
            ledger
                .iter()
                .filter(|e| e.payer == CodePayer::Campus(account) && e.kind == kind)
                .map(|e| e.amount.get())
                .sum()
        };
        assert_eq!(
            campus.balance(account).map(Fen::get),
            Some(opening.get() - sum(EntryKind::Charge) + sum(EntryKind::Refund)),
            "account {account}'s balance is what its ledger lines say"
        );
    }
    let count = |kind| ledger.iter().filter(|e| e.kind == kind).count();
    Books {
        ends,
        charges: count(EntryKind::Charge),
        refunds: count(EntryKind::Refund),
    }
}

/// The wallet code `scan wechat BEHAVIOUR payer SERIAL` makes.
fn wechat(behaviour: WalletBehaviour, serial: u32) -> String {
    wallet_code(CodeMethod::WeChat, behaviour, serial)
}

/// The till's journal right after a kill: `intents` order intents, `open` of them unresolved.
fn assert_open_after_kill(data: &Path, intents: u64, open: usize) {
    let audit = audit_journal(data);
    assert_eq!((audit.intents, audit.unresolved.len()), (intents, open));
}

#[test]
fn a_till_killed_before_its_submit_leaves_reverses_the_order_at_restart_and_nothing_is_charged() {
    let mut rig = Rig::start();
    let till = rig.till_ready(Some("before-order-submit"));
    till.send(&format!(
        "{SALE}scan wechat user-paying-then-paid 5 payer 11\n"
    ));
    till.wait_for("PAUSED BeforeOrderSubmit");
    rig.till.kill();
    // The intent is durable; the campus never heard of the order.
    assert_open_after_kill(&rig.till.data, 1, 1);
    assert_eq!(
        rig.campus.order_count(),
        0,
        "the submit never left the till"
    );

    let shown = rig.restart_and_settle("之前的订单已撤销");
    assert!(shown.contains("未扣款"), "nothing charged: {shown}");
    let books = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(
        books.ends,
        [JournalEnd::Closed(OrderEnd::Reversed { refunded: false })]
    );
    assert_eq!(books.charges, 0);
    // The order id is closed for good: the submit, were it still in flight, charges nothing.
    assert_eq!(
        rig.campus.order_state(rig.order(1)),
        Some(OrderState::Reversed { refunded: false })
    );
    rig.assert_codes_secret(&[&wechat(
        WalletBehaviour::UserPayingThenPaid { after_s: 5 },
        11,
    )]);
    println!(
        "killed before the submit: reversed at restart, {} kill, ledger lines {}",
        rig.till.kills, books.charges
    );
}

#[test]
fn a_till_killed_after_its_submit_before_the_answer_finds_the_order_paid_at_restart() {
    let mut rig = Rig::start();
    rig.till_ready(None);
    rig.campus.hold_order_results();
    let till = rig.till.process();
    till.send(&format!(
        "{SALE}scan wechat user-paying-then-paid 5 payer 12\n"
    ));
    rig.wait_campus_calls(1);
    rig.till.kill();
    assert_open_after_kill(&rig.till.data, 1, 1);
    // The held "user paying" goes nowhere; the payer confirms while the till is dead.
    rig.campus.release_order_results();
    rig.campus.advance_clock(Duration::from_secs(6));

    let shown = rig.restart_and_settle("之前的订单已付款");
    assert!(shown.contains("¥12.50"), "{shown}");
    let books = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(books.ends, [JournalEnd::Paid { recovered: true }]);
    assert_eq!((books.charges, books.refunds), (1, 0));
    rig.assert_codes_secret(&[&wechat(
        WalletBehaviour::UserPayingThenPaid { after_s: 5 },
        12,
    )]);
    println!(
        "killed after the submit: paid at restart, ledger {} charge(s)",
        books.charges
    );
}

#[test]
fn a_virtual_card_paid_at_once_and_killed_before_its_answer_is_charged_once() {
    let mut rig = Rig::start();
    let account = VirtualAccount(3);
    let code = virtual_card_code(account, rig.campus.now(), 301);
    rig.till_ready(None);
    rig.campus.hold_order_results();
    rig.till.process().send(&format!("{SALE}scan {code}\n"));
    rig.wait_campus_calls(1);
    rig.till.kill();
    assert_open_after_kill(&rig.till.data, 1, 1);
    rig.campus.release_order_results();

    let shown = rig.restart_and_settle("之前的订单已付款");
    assert!(shown.contains("余额 ¥487.50"), "the balance shown: {shown}");
    let books = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(books.ends, [JournalEnd::Paid { recovered: true }]);
    assert_eq!(
        rig.campus.balance(account),
        Fen::new(50_000).checked_sub(SALE_AMOUNT)
    );
    rig.assert_codes_secret(&[&code]);
    println!("virtual card killed before its answer: charged once, balance ¥487.50");
}

#[test]
fn a_till_killed_while_the_payer_confirms_settles_paid_or_reversed_at_restart() {
    // The payer confirms while the till is dead: the restarted till finds it paid.
    let mut rig = Rig::start();
    let till = rig.till_ready(None);
    till.send(&format!(
        "{SALE}scan wechat user-paying-then-paid 10 payer 13\n"
    ));
    till.wait_for("等待确认");
    rig.till.kill();
    assert_open_after_kill(&rig.till.data, 1, 1);
    rig.campus.advance_clock(Duration::from_secs(11));
    rig.restart_and_settle("之前的订单已付款");
    let paid = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(paid.ends, [JournalEnd::Paid { recovered: true }]);
    assert_eq!((paid.charges, paid.refunds), (1, 0));

    // The payer never confirms: the restarted till waits out the window and reverses it.
    let mut rig = Rig::start();
    let till = rig.till_ready(None);
    till.send(&format!("{SALE}scan wechat user-paying-never payer 14\n"));
    till.wait_for("等待确认");
    rig.till.kill();
    rig.till.launch(None);
    let till = rig.till.process();
    till.wait_for("核对未完成订单 1");
    till.wait_for("order #1 result UserPaying");
    till.send(PAY_WINDOW);
    till.wait_for("order-reversing #1 WindowOver");
    let shown = till.wait_for("之前的订单已撤销");
    assert!(shown.contains("未扣款"), "{shown}");
    rig.till.finish();
    let reversed = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(
        reversed.ends,
        [JournalEnd::Closed(OrderEnd::Reversed { refunded: false })]
    );
    assert_eq!(reversed.charges, 0);
    rig.assert_codes_secret(&[&wechat(WalletBehaviour::UserPayingNever, 14)]);
    println!(
        "killed while the payer confirms: paid once ({} charge), or reversed ({} charges)",
        paid.charges, reversed.charges
    );
}

#[test]
fn a_till_killed_after_clear_journaled_the_reversal_finishes_it_at_restart() {
    // The reversal reached the campus, its answer did not reach the till.
    let mut rig = Rig::start();
    let till = rig.till_ready(None);
    till.send(&format!("{SALE}scan wechat user-paying-never payer 15\n"));
    till.wait_for("等待确认");
    rig.campus.hold_order_results();
    let calls = rig.campus.payment_stats().calls;
    let till = rig.till.process();
    till.send("keys Clear\n");
    till.wait_for("order-reversing #1 MerchantCancelled");
    rig.wait_campus_calls(calls + 1);
    rig.till.kill();
    assert_open_after_kill(&rig.till.data, 1, 1);
    rig.campus.release_order_results();
    let shown = rig.restart_and_settle("之前的订单已撤销");
    assert!(shown.contains("未扣款"), "{shown}");
    let held = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(
        held.ends,
        [JournalEnd::Closed(OrderEnd::Reversed { refunded: false })]
    );

    // The reversal never left the till, and the payer confirmed meanwhile: the reversal at
    // restart refunds it, and the till says so.
    let mut rig = Rig::start();
    let till = rig.till_ready(Some("before-order-reverse"));
    till.send(&format!(
        "{SALE}scan wechat paid-during-reversal payer 16\n"
    ));
    till.wait_for("等待确认");
    till.send("keys Clear\n");
    till.wait_for("PAUSED BeforeOrderReverse");
    rig.till.kill();
    assert_open_after_kill(&rig.till.data, 1, 1);
    let shown = rig.restart_and_settle("之前的订单已撤销");
    assert!(shown.contains("已退款给付款人"), "{shown}");
    let refunded = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(
        refunded.ends,
        [JournalEnd::Closed(OrderEnd::Reversed { refunded: true })]
    );
    assert_eq!((refunded.charges, refunded.refunds), (1, 1));
    rig.assert_codes_secret(&[&wechat(WalletBehaviour::PaidDuringReversal, 16)]);
    println!(
        "killed after Clear: reversed with its answer held ({} ledger lines), reversed and \
         refunded after a reversal never sent ({} charge, {} refund)",
        held.charges + held.refunds,
        refunded.charges,
        refunded.refunds
    );
}

#[test]
fn a_code_used_once_is_refused_for_a_second_sale_by_the_till_and_after_a_kill_by_the_campus() {
    let mut rig = Rig::start();
    let account = VirtualAccount(4);
    let code = virtual_card_code(account, rig.campus.now(), 401);
    let till = rig.till_ready(None);
    till.send(&format!("type 8\nkeys Enter\nscan {code}\n"));
    till.wait_for("交易成功");
    // The same code for the next sale: refused on the till, nothing journaled or sent.
    till.send(&format!("type 9\nkeys Enter\nscan {code}\n"));
    till.wait_for("付款码已使用");
    rig.till.kill();
    assert_open_after_kill(&rig.till.data, 1, 0);
    assert_eq!(
        rig.campus.payment_stats().calls,
        1,
        "one call reached the campus"
    );

    // A restarted till has forgotten the code; the campus has not (its nonce is spent).
    rig.till_ready(None);
    let till = rig.till.process();
    till.send(&format!("type 9\nkeys Enter\nscan {code}\n"));
    let shown = till.wait_for("支付失败");
    assert!(
        shown.contains("付款码已使用"),
        "the campus's reason shown: {shown}"
    );
    rig.till.finish();
    let books = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(
        books.ends,
        [
            JournalEnd::Paid { recovered: false },
            JournalEnd::Closed(OrderEnd::Declined(DeclineReason::CodeUsed)),
        ]
    );
    assert_eq!(rig.campus.balance(account), Some(Fen::new(50_000 - 800)));
    rig.assert_codes_secret(&[&code]);
    println!("the same code twice: refused by the till, then declined by the campus: {shown}");
}

#[test]
fn a_daemon_killed_while_the_till_polls_is_restarted_and_the_order_settles_paid_once() {
    let mut rig = Rig::start();
    let till = rig.till_ready(None);
    till.send(&format!(
        "{SALE}scan wechat user-paying-then-paid 10 payer 17\n"
    ));
    till.wait_for("等待确认");
    // The till's next poll reaches the campus, whose answer is held; the daemon dies.
    rig.campus.hold_order_results();
    let calls = rig.campus.payment_stats().calls;
    let till = rig.till.process();
    till.send("wait 3s\n");
    till.wait_for("order #1 query sent");
    rig.wait_campus_calls(calls + 1);
    rig.daemon.kill();
    rig.till.process().wait_for("daemon disconnected");
    rig.campus.release_order_results();
    rig.campus.advance_clock(Duration::from_secs(11));
    rig.daemon.restart();
    // The route is back before the till's clock moves (a request with no route reverses).
    rig.till.process().wait_for("daemon reports broker Up");
    let shown = rig.drive_until("交易成功");
    assert!(shown.contains("¥12.50"), "{shown}");
    rig.till.finish();
    let books = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(books.ends, [JournalEnd::Paid { recovered: false }]);
    assert_eq!((books.charges, books.refunds), (1, 0));
    println!(
        "daemon killed mid-poll ({} kill): paid on screen, {} charge",
        rig.daemon.kills, books.charges
    );
}

#[test]
fn a_broker_restarted_in_the_middle_of_an_order_leaves_it_settled_once() {
    let mut rig = Rig::start();
    let till = rig.till_ready(None);
    till.send(&format!(
        "{SALE}scan wechat user-paying-then-paid 8 payer 18\n"
    ));
    till.wait_for("等待确认");
    rig.broker.restart();
    let till = rig.till.process();
    till.wait_for("daemon reports broker Down");
    till.wait_for("daemon reports broker Up");
    assert!(
        rig.campus
            .wait_until(CATCH_UP_TIMEOUT, |c| c.stats().subscribed >= 2),
        "the campus is back on the broker"
    );
    rig.campus.advance_clock(Duration::from_secs(9));
    let shown = rig.drive_until("交易成功");
    assert!(shown.contains("¥12.50"), "{shown}");
    rig.till.finish();
    let books = assert_books_agree(&rig.campus, &rig.till.data);
    assert_eq!(books.ends, [JournalEnd::Paid { recovered: false }]);
    assert_eq!((books.charges, books.refunds), (1, 0));
    println!(
        "broker restarted mid-order ({} broker kill): paid once on screen, {} charge",
        rig.broker.kills, books.charges
    );
}
