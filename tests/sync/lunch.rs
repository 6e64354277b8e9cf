//! Issue 11's main proof: the network drops in the middle of lunch. The real till
//! (`pos-firmware script --link`, which provisions its offline QR key from the simulated
//! campus's QR master) sells online through the real `sync-daemon` and a real Mosquitto; the
//! broker dies; during the outage the till makes 200 sales — by card, by offline virtual card
//! (many accounts, within the campus's per-account offline limits) and by offline QR, which the
//! campus app pays at the campus (`CampusSim::pay_qr`): some confirmed at the till by the code
//! the app shows, some left for the campus to confirm later, some never paid, some paid too
//! late (refused: expired). The broker comes back; the till uploads and settles. Then every
//! sale is in the campus's books once, the statement's total equals the till's Clear+5, no QR
//! order is open, and every account fell by exactly what it paid.

use super::*;
use pos_firmware::core::calendar::local_time;
use pos_firmware::core::config::TillConfig;
use pos_firmware::sim::payments::{virtual_card_code, QrRefusal, StatementType};
use shared::codec::decode_record;
use shared::pay::OrderState;
use shared::paycode::{CodeMethod, VirtualAccount};
use shared::qrpay::QrOrder;
use shared::record::{OrderEnd, Payer, RecordBody};
use shared::{Fen, UnixMillis};
use std::collections::{BTreeMap, BTreeSet};
use till_tests::campus_pay::{sim_accounts, SIM_ACCOUNTS, SIM_FIRST_ACCOUNT};
use till_tests::statement::{StatementQuery, StatementTypeKey, CAMPUS_UTC_OFFSET_MINUTES};
use till_tests::{audit_journal, TillProcess};

/// Card sales during the outage (card-1 and card-2, half each, ¥0.10 each).
const OUTAGE_CARD_SALES: u32 = 100;
/// Offline virtual-card sales per plain account (the default offline limit is 4 a day).
const VIRTUAL_SALES_PER_ACCOUNT: u64 = 3;
/// The amount of each offline virtual-card sale, typed (¥5.00: under the ¥30 per-sale limit,
/// three of them under the ¥60 a day).
const VIRTUAL_AMOUNT: &str = "5";
/// The customer display once an offline virtual-card sale of `VIRTUAL_AMOUNT` is paid.
const VIRTUAL_CARD_PAID: &str = "C| 交易成功 ¥5.00 | 脱机 虚拟卡";
/// Offline QR sales in each of the four endings: confirmed at the till by code, paid in the
/// app and left for the campus to confirm, never paid, paid too late.
const QR_SALES_PER_ENDING: usize = 10;
/// The amount of each offline QR sale, typed (¥8.00).
const QR_AMOUNT: &str = "8";
/// How far the till's clock moves once the network is back: past every QR order's validity
/// (600 s) and the till's grace for the clocks' difference (60 s).
const PAST_QR_EXPIRY: &str = "wait 11m\n";
/// How long the campus's clock moves before the app tries to pay the late orders.
const CAMPUS_PAST_EXPIRY: Duration = Duration::from_secs(11 * 60);
/// The longest the test drives the till's clock waiting for every order to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The till's local time now ("YYYY-MM-DD HH:MM:SS"), for `--start`: the campus checks a
/// virtual card's validity by its own clock.
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

/// The till's clock: the stamp of the last line it printed, in the year of its `--start`.
fn till_clock(till: &TillProcess, start: &str) -> UnixMillis {
    let stamp = till
        .transcript
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix('[')?.split_once(']').map(|(s, _)| s))
        .expect("the till printed a stamped line");
    let text = format!("{}-{stamp}", &start[..4]);
    let local = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.3f")
        .expect("a stamp is MM-DD HH:MM:SS.mmm");
    let offset_ms = i64::from(TillConfig::default().utc_offset_minutes) * 60_000;
    UnixMillis(local.and_utc().timestamp_millis() - offset_ms)
}

/// Opens an offline QR order for `QR_AMOUNT` and returns its payload (the `QR <payload>` line).
fn open_qr(till: &mut TillProcess) -> String {
    till.send(&format!("type {QR_AMOUNT}\nkeys Enter\n"));
    let line = till.wait_for(" QR CQ1");
    line.split(" QR ")
        .nth(1)
        .expect("the marker is in the line")
        .trim()
        .to_string()
}

/// What the campus's store says about the till's code orders: the QR order ids and the intents
/// (of any method) still without an end.
fn uploaded_orders(campus: &CampusSim, terminal: TerminalId) -> (BTreeSet<Seq>, BTreeSet<Seq>) {
    let mut qr = BTreeSet::new();
    let mut open = BTreeSet::new();
    for bytes in campus.records(terminal).values() {
        let record = decode_record(bytes).expect("every stored record decodes");
        match record.body {
            RecordBody::OrderIntent(intent) => {
                if intent.method == CodeMethod::OfflineQr {
                    qr.insert(record.seq);
                }
                open.insert(record.seq);
            }
            RecordBody::OrderPaid(paid) => {
                open.remove(&paid.intent);
            }
            RecordBody::OrderClosed(closed) => {
                open.remove(&closed.intent);
            }
            _ => {}
        }
    }
    (qr, open)
}

/// What the journal sold, by kind, and what each virtual account paid in it.
#[derive(Debug, Default)]
struct Sold {
    cards: u64,
    virtual_cards: u64,
    qr_paid: u64,
    qr_by_code: u64,
    qr_by_campus: u64,
    total: Fen,
    by_account: BTreeMap<VirtualAccount, Fen>,
    qr_expired: u64,
}

fn add(sum: &mut Fen, amount: Fen) {
    *sum = sum.checked_add(amount).expect("the day's total fits");
}

/// Reads the till's journal (the till stopped).
fn journal_sales(data: &std::path::Path) -> Sold {
    let journal = pos_firmware::journal::Journal::open(data).expect("the journal opens");
    let mut sold = Sold::default();
    let mut qr_intents = BTreeSet::new();
    for record in journal.records_from(Seq::FIRST) {
        let record = record.expect("every record decodes");
        match record.body {
            RecordBody::SaleCommitted(sale) => {
                sold.cards += 1;
                add(&mut sold.total, sale.amount);
            }
            RecordBody::OfflineCodeSale(sale) => {
                sold.virtual_cards += 1;
                add(&mut sold.total, sale.amount);
                add(
                    sold.by_account.entry(sale.account).or_default(),
                    sale.amount,
                );
            }
            RecordBody::OrderIntent(intent) if intent.method == CodeMethod::OfflineQr => {
                qr_intents.insert(record.seq);
            }
            RecordBody::OrderPaid(paid) => {
                assert!(qr_intents.contains(&paid.intent), "only QR orders here");
                // Confirmed by code: the till does not know the account; by the campus: it does.
                match paid.payer {
                    Payer::CampusApp => sold.qr_by_code += 1,
                    Payer::VirtualCard(_) => sold.qr_by_campus += 1,
                    other => panic!("a QR order paid by {other:?}"),
                }
                sold.qr_paid += 1;
                add(&mut sold.total, paid.amount);
            }
            RecordBody::OrderClosed(closed) => {
                assert_eq!(closed.end, OrderEnd::Reversed { refunded: false });
                sold.qr_expired += 1;
            }
            _ => {}
        }
    }
    sold
}

/// The campus's local date now.
fn campus_today() -> chrono::NaiveDate {
    let zone = chrono::FixedOffset::east_opt(CAMPUS_UTC_OFFSET_MINUTES * 60).expect("UTC+8");
    chrono::Utc::now().with_timezone(&zone).date_naive()
}

/// The amount and count of `N笔 ¥X.YZ` on the merchant display.
fn parse_totals(line: &str) -> (u64, Fen) {
    let count_at = line.find('笔').expect("a count");
    let digits: String = line[..count_at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let after = &line[line.find('¥').expect("an amount") + '¥'.len_utf8()..];
    let amount: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (yuan, fen) = amount.split_once('.').expect("yuan.fen");
    let fen = yuan.parse::<u64>().expect("yuan") * 100 + fen.parse::<u64>().expect("fen");
    (digits.parse().expect("a count"), Fen::new(fen))
}

#[test]
fn the_network_drops_in_the_middle_of_lunch_and_every_sale_is_booked_once_when_it_returns() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(&MosquittoOptions::default());
    let mut options = CampusOptions::new(broker.port(), dir.path().join("campus"));
    options.default_config = Some(campus_config(1));
    let campus = campus_up(options);
    // A fresh (empty) lost-card list: the till sells by card offline only with one.
    let blacklist = shared::campus::Blacklist::new(1, campus.now(), Vec::new()).unwrap();
    campus.publish_blacklist(&blacklist);
    let socket = dir.path().join("link.sock");
    let daemon = DaemonProcess::start(&DaemonSetup::new(&socket, broker.port(), dir.path()));
    let data = dir.path().join("till");
    let socket_text = socket.to_string_lossy().into_owned();
    let start = local_now();
    let mut till = TillProcess::start_logged(
        &data,
        &[
            "--link",
            socket_text.as_str(),
            "--start",
            start.as_str(),
            "--demo-qr-key",
        ],
        Some(&dir.path().join("till.log")),
    );
    till.wait_for("Blacklist applied 1");
    let terminal = till_terminal(&daemon);

    // Lunch starts online: card sales.
    till.send("sales 10 0.50 card-1\n");
    till.send("wait-uploaded 30s\nexpect link 0 unsent\nkeys Clear 5\n");
    // The script runs a line only after the one before it: everything is uploaded by then.
    till.wait_for("> keys Clear 5");

    // The network drops.
    broker.kill();
    till.wait_for("daemon reports broker Down");
    till.send("keys Clear\n");

    let accounts: Vec<VirtualAccount> = (SIM_FIRST_ACCOUNT..SIM_FIRST_ACCOUNT + SIM_ACCOUNTS)
        .map(VirtualAccount)
        .collect();
    // 40 offline QR sales, ten of each ending, first: every offline Enter opens a QR order, one
    // paid by card stays pending too (only the campus knows whether the phone paid), and past
    // `MAX_UNRESOLVED_ORDERS` (32) open orders the till shows no more QR codes, only cards.
    let mut qr_payers: BTreeMap<Seq, VirtualAccount> = BTreeMap::new();
    let mut later = Vec::new();
    let mut late = Vec::new();
    let mut never = Vec::new();
    for i in 0..QR_SALES_PER_ENDING {
        let payer = accounts[i % accounts.len()];
        // Confirmed at the till by the code the app shows.
        let payload = open_qr(&mut till);
        let code = campus.pay_qr(&payload, payer).expect("the app pays");
        till.send(&format!("type {code:06}\nkeys Enter\n"));
        till.wait_for("交易成功");
        qr_payers.insert(QrOrder::parse(&payload).unwrap().intent, payer);
        // Paid in the app; the merchant clears, the campus confirms it later.
        let payload = open_qr(&mut till);
        campus.pay_qr(&payload, payer).expect("the app pays");
        till.send("keys Clear\n");
        qr_payers.insert(QrOrder::parse(&payload).unwrap().intent, payer);
        later.push(payload);
        // Never paid: the student walks away.
        never.push(open_qr(&mut till));
        till.send("keys Clear\n");
        // Paid too late (below).
        late.push((open_qr(&mut till), payer));
        till.send("keys Clear\n");
    }
    // 100 card sales.
    let half = OUTAGE_CARD_SALES / 2;
    till.send(&format!(
        "sales {half} 0.10 card-1\nsales {half} 0.10 card-2\n"
    ));
    for _card in 0..2 {
        till.wait_for(&format!("sales: {half} of {half} committed"));
    }
    // 60 offline virtual-card sales: 20 accounts, 3 each.
    let mut nonce = 1_000;
    let mut codes = Vec::new();
    for _ in 0..VIRTUAL_SALES_PER_ACCOUNT {
        for &account in &accounts {
            nonce += 1;
            // The code is made now by the till's clock (its sales moved it ahead of the wall's).
            let code = virtual_card_code(account, till_clock(&till, &start), nonce);
            till.send(&format!("type {VIRTUAL_AMOUNT}\nkeys Enter\nscan {code}\n"));
            till.wait_for(VIRTUAL_CARD_PAID);
            codes.push(code);
        }
    }
    // The script runs behind the test: wait for its last outage line before the network returns.
    till.send("keys Clear 5\n");
    till.wait_for("> keys Clear 5");
    let outage_totals = till.wait_for("今日累计");
    assert!(
        outage_totals.contains("脱机"),
        "still offline: {outage_totals}"
    );
    let outage_sales = u64::from(OUTAGE_CARD_SALES)
        + VIRTUAL_SALES_PER_ACCOUNT * SIM_ACCOUNTS
        + 4 * QR_SALES_PER_ENDING as u64;
    let outage_done = started.elapsed();

    // While the till is still offline the statement already shows what the phones paid.
    let scan_to_pay = StatementQuery {
        terminals: BTreeSet::from([terminal]),
        from: campus_today().pred_opt().unwrap(),
        to: campus_today().succ_opt().unwrap(),
        types: Some(BTreeSet::from([StatementTypeKey::ScanToPay])),
    };
    assert_eq!(
        campus.statement(&scan_to_pay).rows.len(),
        2 * QR_SALES_PER_ENDING,
        "the QR orders paid in the app, before any upload of them"
    );

    // The app tries the late ones after their expiry: refused, nothing charged.
    campus.advance_clock(CAMPUS_PAST_EXPIRY);
    for (payload, payer) in &late {
        assert_eq!(campus.pay_qr(payload, *payer), Err(QrRefusal::Expired));
    }

    // The network comes back: the till uploads, learns the paid orders, reverses the rest.
    broker.restart();
    till.wait_for("daemon reports broker Up");
    assert!(
        campus.wait_until(CATCH_UP_TIMEOUT, |c| c.stats().subscribed >= 2),
        "the campus is back on the broker"
    );
    till.send(PAST_QR_EXPIRY);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let (qr, open) = uploaded_orders(&campus, terminal);
        if qr.len() >= 4 * QR_SALES_PER_ENDING && open.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orders still open after the network came back: {open:?}; daemon log tail:\n{}",
            daemon.log_tail(30)
        );
        till.send("wait 10s\n");
        std::thread::sleep(Duration::from_millis(500));
    }
    till.send("wait-uploaded 60s\nexpect link 0 unsent\nkeys Clear\nkeys Clear 5\n");
    till.wait_for("> keys Clear 5");
    let totals_line = till.wait_for("今日累计");
    assert!(
        totals_line.contains("联机") && !totals_line.contains("码单"),
        "online, no QR order pending: {totals_line}"
    );
    till.finish();
    let settled = started.elapsed();

    // Every sale once, none open, the store equal to the journal.
    let audit = audit_journal(&data);
    assert!(audit.unresolved.is_empty(), "{:?}", audit.unresolved);
    let journal = pos_firmware::journal::Journal::open(&data).expect("the journal opens");
    let records: Vec<(Seq, Vec<u8>)> = journal
        .reader()
        .fetch(None, u32::MAX, u32::MAX)
        .expect("every record reads")
        .into_iter()
        .map(|r| (r.seq, r.bytes))
        .collect();
    drop(journal);
    assert_store_equals(&campus, terminal, &records);
    let sold = journal_sales(&data);
    assert_eq!(
        sold.cards + sold.virtual_cards + sold.qr_paid,
        10 + outage_sales - 2 * QR_SALES_PER_ENDING as u64,
        "every sale journaled: the online and outage sales, less the QR orders never paid"
    );
    assert_eq!(
        (sold.qr_by_code, sold.qr_by_campus),
        (QR_SALES_PER_ENDING as u64, QR_SALES_PER_ENDING as u64)
    );
    assert_eq!(sold.virtual_cards, VIRTUAL_SALES_PER_ACCOUNT * SIM_ACCOUNTS);

    // The statement's total is the till's Clear+5 for the day, each sale one row.
    let today = campus_today();
    let statement = campus.statement(&StatementQuery {
        terminals: BTreeSet::from([terminal]),
        from: today.pred_opt().unwrap(),
        to: today.succ_opt().unwrap(),
        types: None,
    });
    let (till_count, till_total) = parse_totals(&totals_line);
    assert_eq!(
        statement.total, till_total,
        "statement == Clear+5: {totals_line}"
    );
    assert_eq!(statement.total, sold.total, "statement == journal");
    assert_eq!(statement.rows.len() as u64, till_count, "one row per sale");
    let of_type = |kind| statement.rows.iter().filter(|r| r.kind == kind).count() as u64;
    assert_eq!(
        (
            of_type(StatementType::CardSale),
            of_type(StatementType::PaymentCode),
            of_type(StatementType::ScanToPay),
        ),
        (sold.cards, sold.virtual_cards, sold.qr_paid),
        "卡消费, 付款码, 扫一扫"
    );
    let orders: BTreeSet<_> = statement.rows.iter().map(|r| r.order).collect();
    assert_eq!(orders.len(), statement.rows.len(), "no sale twice");

    // Every account fell by exactly what the journal (and the app, for QR) says it paid.
    let mut paid = sold.by_account.clone();
    let ledger = campus.ledger();
    for (intent, payer) in &qr_payers {
        let id = shared::pay::OrderId {
            terminal,
            intent: *intent,
        };
        let charges: Vec<Fen> = ledger
            .iter()
            .filter(|e| e.order == id)
            .map(|e| e.amount)
            .collect();
        assert_eq!(charges.len(), 1, "{id} charged once");
        add(paid.entry(*payer).or_default(), charges[0]);
    }
    for (account, opening) in sim_accounts() {
        let spent = paid.get(&account).copied().unwrap_or(Fen::ZERO);
        assert_eq!(
            campus.balance(account),
            opening.checked_sub(spent),
            "{account} fell by what it paid"
        );
    }
    assert_eq!(campus.payment_stats().offline_alarms, 0, "no alarm");
    // A virtual-card code is a bearer token: in no log (the script echoes only its input).
    let till_log = std::fs::read_to_string(dir.path().join("till.log")).unwrap_or_default();
    let daemon_log = daemon.log_text();
    for code in &codes {
        assert!(!till_log.contains(code.as_str()), "the till logged a code");
        assert!(
            !daemon_log.contains(code.as_str()),
            "the daemon logged a code"
        );
    }
    // The campus holds each QR order as it ended: paid, or closed by the till's reversal.
    let state = |payload: &String| {
        let order = QrOrder::parse(payload).expect("the till's payload parses");
        campus.order_state(shared::pay::OrderId {
            terminal,
            intent: order.intent,
        })
    };
    for payload in &later {
        assert!(matches!(state(payload), Some(OrderState::Paid { .. })));
    }
    for payload in never.iter().chain(late.iter().map(|(payload, _)| payload)) {
        assert_eq!(
            state(payload),
            Some(OrderState::Reversed { refunded: false }),
            "expired unpaid, nothing charged"
        );
    }

    println!(
        "lunch: {} online card sales; outage {outage_sales} sales ({} card, {} virtual card, {} QR: \
         {} by code, {} confirmed by the campus later, {} never paid, {} paid too late) in \
         {:.1}s; after the network came back: {} QR orders expired unpaid, statement {} rows \
         ¥{} == Clear+5 {till_count}笔 ¥{}; {} records uploaded; {:.1}s in all",
        10,
        OUTAGE_CARD_SALES,
        VIRTUAL_SALES_PER_ACCOUNT * SIM_ACCOUNTS,
        4 * QR_SALES_PER_ENDING,
        QR_SALES_PER_ENDING,
        later.len(),
        never.len(),
        late.len(),
        outage_done.as_secs_f64(),
        sold.qr_expired,
        statement.rows.len(),
        statement.total,
        till_total,
        records.len(),
        settled.as_secs_f64(),
    );
}
