//! The merchant's statement (商户流水查询, seed 004 §六, issue 11): what the service hall shows a
//! merchant — one merchant's sales in a date range, filtered by type (卡消费 / 扫一扫 / 付款码 /
//! 其它), rows of 账号, 学工号, 终端号 (machine number), 交易金额, 交易时间, 入账时间, 交易类型, the
//! total, and a CSV export. `campus-sim statement` prints it from a campus store.
//!
//! Sources, each sale once (matched by its order id, terminal and seq):
//! - the records the tills uploaded (the campus store): a committed card sale is 卡消费 (its
//!   card's UID stands for the account); a paid code order is 付款码, or 扫一扫 when its intent's
//!   method is `OfflineQr`; an offline virtual-card sale (`OfflineCodeSale`) is 付款码; the
//!   campus's "paid" for an order the till had closed (`OrderPaidAfterClose`) is 其它 (money that
//!   moved without a sale: a refund to chase);
//! - the orders the phones paid (the payment back end's ledger): a charge whose order no upload
//!   has paid yet is a row of its own (a QR order paid in the app while the till is still
//!   offline); one that an upload paid too fills in what the till did not know (the account of
//!   a QR order confirmed by code, the campus's booking time). An order the ledger refunded in
//!   full and no upload paid is no sale.
//!
//! 账号 and 学工号: the simulated campus has no register of people, so both are the payer's
//! campus account (a virtual card's account number, or a card's UID for card sales); a wallet
//! payer is its method and payer id. 交易时间 is the till's clock at the sale (the intent), 入账时间
//! the campus's booking (a card sale's: the till's commit, the campus keeps no receive time).
//! Dates are the campus's local dates ([`CAMPUS_UTC_OFFSET_MINUTES`]).

use chrono::{DateTime, FixedOffset, NaiveDate};
use pos_firmware::sim::payments::{EntryKind, LedgerEntry, StatementType};
use shared::codec::decode_record;
use shared::ids::{MachineNumber, Seq};
use shared::pay::{CodePayer, OrderId};
use shared::paycode::CodeMethod;
use shared::record::{Payer, RecordBody};
use shared::{Fen, TerminalId, UnixMillis};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::campus_store::CampusStore;

/// The campus's time zone for the statement's dates and times: UTC+8 (China Standard Time).
pub const CAMPUS_UTC_OFFSET_MINUTES: i32 = 8 * 60;
/// The CSV export's header line (the columns the service hall shows).
pub const CSV_HEADER: &str = "账号,学工号,终端号,交易金额,交易时间,入账时间,交易类型";
/// The label of the total line.
const TOTAL_LABEL: &str = "合计";

/// Which sales a statement shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementQuery {
    /// The merchant's terminals (the tills configured with its merchant name).
    pub terminals: BTreeSet<TerminalId>,
    /// The first and last local date shown (inclusive).
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Only these types (`None`: every type).
    pub types: Option<BTreeSet<StatementTypeKey>>,
}

/// [`StatementType`] as a set key (in the order the hall lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatementTypeKey {
    CardSale,
    ScanToPay,
    PaymentCode,
    Other,
}

impl StatementTypeKey {
    pub fn of(kind: StatementType) -> StatementTypeKey {
        match kind {
            StatementType::CardSale => StatementTypeKey::CardSale,
            StatementType::ScanToPay => StatementTypeKey::ScanToPay,
            StatementType::PaymentCode => StatementTypeKey::PaymentCode,
            StatementType::Other => StatementTypeKey::Other,
        }
    }

    /// Reads a type filter: its Chinese label or an English name.
    pub fn parse(text: &str) -> Option<StatementTypeKey> {
        match text.trim() {
            "卡消费" | "card" => Some(StatementTypeKey::CardSale),
            "扫一扫" | "scan" | "qr" => Some(StatementTypeKey::ScanToPay),
            "付款码" | "code" => Some(StatementTypeKey::PaymentCode),
            "其它" | "other" => Some(StatementTypeKey::Other),
            _ => None,
        }
    }
}

/// One line of the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRow {
    /// The sale's id: terminal and the seq of its intent (or of its record).
    pub order: OrderId,
    /// 账号 (see the module header).
    pub account: String,
    /// 学工号 (see the module header).
    pub student_id: String,
    /// 终端号: the till's machine number (`None`: known only from the ledger, which names the
    /// terminal; the row shows the terminal id then).
    pub machine: Option<MachineNumber>,
    pub amount: Fen,
    /// 交易时间 (the till's clock at the sale).
    pub sale_at: UnixMillis,
    /// 入账时间 (the campus's booking).
    pub booked_at: UnixMillis,
    pub kind: StatementType,
}

/// A statement: its rows in time order and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub rows: Vec<StatementRow>,
    pub total: Fen,
}

/// What the uploads of one terminal say about its sales, by order id.
fn uploaded_rows(terminal: TerminalId, records: &BTreeMap<Seq, Vec<u8>>) -> Vec<StatementRow> {
    // The intents by seq: (method of a code order, time, machine).
    let mut intents: BTreeMap<Seq, (Option<CodeMethod>, UnixMillis, MachineNumber)> =
        BTreeMap::new();
    let mut rows = Vec::new();
    for (seq, bytes) in records {
        let Ok(record) = decode_record(bytes) else {
            tracing::error!(
                "statement: record {terminal}/{} does not decode: left out",
                seq.0
            );
            continue;
        };
        let row = |intent: Seq, account: String, amount, kind, booked_at| {
            let (_, sale_at, machine) =
                intents
                    .get(&intent)
                    .copied()
                    .unwrap_or((None, record.at, record.machine));
            StatementRow {
                order: OrderId { terminal, intent },
                student_id: account.clone(),
                account,
                machine: Some(machine),
                amount,
                sale_at,
                booked_at,
                kind,
            }
        };
        match &record.body {
            RecordBody::SaleIntent(_) => {
                intents.insert(record.seq, (None, record.at, record.machine));
            }
            RecordBody::OrderIntent(intent) => {
                intents.insert(record.seq, (Some(intent.method), record.at, record.machine));
            }
            RecordBody::SaleCommitted(sale) => {
                let kind = match sale.payer {
                    Payer::CampusCard(_) => StatementType::CardSale,
                    _ => StatementType::Other,
                };
                rows.push(row(
                    sale.intent,
                    payer_text(&sale.payer),
                    sale.amount,
                    kind,
                    record.at,
                ));
            }
            RecordBody::OrderPaid(paid) => {
                let method = intents.get(&paid.intent).and_then(|i| i.0);
                let kind = match method {
                    Some(CodeMethod::OfflineQr) => StatementType::ScanToPay,
                    _ => StatementType::PaymentCode,
                };
                let booked = paid.booked_at;
                rows.push(row(
                    paid.intent,
                    payer_text(&paid.payer),
                    paid.amount,
                    kind,
                    booked,
                ));
            }
            RecordBody::OfflineCodeSale(sale) => {
                let account = sale.account.to_string();
                let kind = StatementType::PaymentCode;
                rows.push(row(record.seq, account, sale.amount, kind, record.at));
            }
            RecordBody::OrderPaidAfterClose { intent, payer } => {
                let amount = records
                    .get(intent)
                    .and_then(|b| decode_record(b).ok())
                    .and_then(|r| match r.body {
                        RecordBody::OrderIntent(i) => Some(i.amount),
                        _ => None,
                    })
                    .unwrap_or(Fen::ZERO);
                let account = code_payer_text(payer);
                rows.push(row(
                    *intent,
                    account,
                    amount,
                    StatementType::Other,
                    record.at,
                ));
            }
            _ => {}
        }
    }
    rows
}

fn payer_text(payer: &Payer) -> String {
    match payer {
        Payer::CampusCard(uid) => uid.to_string(),
        Payer::VirtualCard(account) => account.to_string(),
        Payer::Wallet { method, payer } => format!("{method:?}:{payer}"),
        // The till does not know the account: the ledger fills it in.
        Payer::CampusApp => String::new(),
    }
}

fn code_payer_text(payer: &CodePayer) -> String {
    match payer {
        CodePayer::Campus(account) => account.to_string(),
        CodePayer::Wallet(payer) => format!("wallet:{payer}"),
    }
}

/// Every sale of `terminals` once: the uploads' rows, completed and added to by the ledger.
pub fn sales(
    store: &CampusStore,
    ledger: &[LedgerEntry],
    terminals: &BTreeSet<TerminalId>,
) -> Vec<StatementRow> {
    let mut by_order: BTreeMap<OrderId, StatementRow> = BTreeMap::new();
    for terminal in terminals {
        if let Some(records) = store.terminal(*terminal) {
            for row in uploaded_rows(*terminal, &records.records) {
                // A sale is one row, whatever the till uploaded twice.
                by_order.entry(row.order).or_insert(row);
            }
        }
    }
    // The ledger's net per order: charges minus refunds.
    let mut charged: BTreeMap<OrderId, (&LedgerEntry, i128)> = BTreeMap::new();
    for entry in ledger.iter().filter(|e| terminals.contains(&e.terminal)) {
        let amount = i128::from(entry.amount.get());
        let net = match entry.kind {
            EntryKind::Charge => amount,
            EntryKind::Refund => -amount,
        };
        let slot = charged.entry(entry.order).or_insert((entry, 0));
        if entry.kind == EntryKind::Charge {
            slot.0 = entry;
        }
        slot.1 += net;
    }
    for (order, (entry, net)) in charged {
        let account = code_payer_text(&entry.payer);
        match by_order.get_mut(&order) {
            Some(row) => {
                if row.account.is_empty() {
                    row.student_id = account.clone();
                    row.account = account;
                }
                if entry.kind == EntryKind::Charge && entry.statement == row.kind {
                    row.booked_at = entry.booked_at;
                }
            }
            None if net > 0 => {
                by_order.insert(
                    order,
                    StatementRow {
                        order,
                        student_id: account.clone(),
                        account,
                        machine: None,
                        amount: entry.amount,
                        sale_at: entry.sale_at,
                        booked_at: entry.booked_at,
                        kind: entry.statement,
                    },
                );
            }
            None => {}
        }
    }
    by_order.into_values().collect()
}

fn campus_zone() -> FixedOffset {
    FixedOffset::east_opt(CAMPUS_UTC_OFFSET_MINUTES * 60).expect("UTC+8 is a valid offset")
}

fn local(at: UnixMillis) -> Option<DateTime<FixedOffset>> {
    DateTime::from_timestamp_millis(at.0).map(|t| t.with_timezone(&campus_zone()))
}

/// The statement `query` asks for, from the store and the ledger.
pub fn statement(store: &CampusStore, ledger: &[LedgerEntry], query: &StatementQuery) -> Statement {
    let mut rows: Vec<StatementRow> = sales(store, ledger, &query.terminals)
        .into_iter()
        .filter(|row| {
            local(row.sale_at).is_some_and(|t| (query.from..=query.to).contains(&t.date_naive()))
        })
        .filter(|row| {
            query
                .types
                .as_ref()
                .is_none_or(|types| types.contains(&StatementTypeKey::of(row.kind)))
        })
        .collect();
    rows.sort_by_key(|row| (row.sale_at, row.order));
    let total = rows
        .iter()
        .try_fold(Fen::ZERO, |sum, row| sum.checked_add(row.amount))
        .unwrap_or_else(|| {
            tracing::error!("ALARM statement total overflows");
            Fen::ZERO
        });
    Statement { rows, total }
}

fn time_text(at: UnixMillis) -> String {
    local(at).map_or_else(
        || format!("@{}", at.0),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn machine_text(row: &StatementRow) -> String {
    row.machine.map_or_else(
        || row.order.terminal.to_string(),
        |m| format!("{:04}", m.get()),
    )
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl Statement {
    /// The CSV export: [`CSV_HEADER`], a line a sale, and the total line (`合计`).
    pub fn to_csv(&self) -> String {
        let mut out = format!("{CSV_HEADER}\n");
        for row in &self.rows {
            let fields = [
                row.account.clone(),
                row.student_id.clone(),
                machine_text(row),
                row.amount.to_string(),
                time_text(row.sale_at),
                time_text(row.booked_at),
                row.kind.label().to_string(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            let _ = writeln!(out, "{}", line.join(","));
        }
        let _ = writeln!(out, "{TOTAL_LABEL},,,{},,,", self.total);
        out
    }

    /// The statement as the hall's screen shows it: a line a sale, then the count and total.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:<12} {:<6} {:>10} {:<19} {:<19} 交易类型",
            "账号", "学工号", "终端号", "交易金额", "交易时间", "入账时间"
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:<12} {:<12} {:<6} {:>10} {:<19} {:<19} {}",
                row.account,
                row.student_id,
                machine_text(row),
                row.amount.to_string(),
                time_text(row.sale_at),
                time_text(row.booked_at),
                row.kind.label()
            );
        }
        let _ = writeln!(out, "{TOTAL_LABEL} {} 笔 ¥{}", self.rows.len(), self.total);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::codec::encode_record;
    use shared::ids::CardUid;
    use shared::paycode::{CodeDigest, CodeHint, VirtualAccount};
    use shared::record::{JournalRecord, OfflineCodeSale, OrderIntent, OrderPaid, SaleCommitted};

    /// The merchant's two tills, and another merchant's.
    const TILL_A: TerminalId = TerminalId(0xA);
    const TILL_B: TerminalId = TerminalId(0xB);
    const OTHER: TerminalId = TerminalId(0xC);
    const ALICE: VirtualAccount = VirtualAccount(2_026_000_001);
    /// 2026-11-23 12:00:00 at UTC+8.
    const NOON: i64 = 1_795_406_400_000;

    fn at(minutes: i64) -> UnixMillis {
        UnixMillis(NOON + minutes * 60_000)
    }

    fn record(seq: u64, minutes: i64, body: RecordBody) -> (Seq, Vec<u8>) {
        let record = JournalRecord {
            seq: Seq(seq),
            at: at(minutes),
            machine: MachineNumber::new(58).unwrap(),
            body,
        };
        (Seq(seq), encode_record(&record))
    }

    fn intent(amount: u64, method: CodeMethod) -> RecordBody {
        RecordBody::OrderIntent(OrderIntent {
            amount: Fen::new(amount),
            method,
            code: CodeDigest([0; 8]),
            hint: CodeHint(*b"ABCD"),
            account: None,
            fixed_price: false,
        })
    }

    fn paid(intent: u64, amount: u64, payer: Payer, booked: i64) -> RecordBody {
        RecordBody::OrderPaid(OrderPaid {
            intent: Seq(intent),
            amount: Fen::new(amount),
            payer,
            balance_after: None,
            booked_at: at(booked),
            recovered: false,
        })
    }

    fn charge(terminal: TerminalId, intent: u64, amount: u64, minutes: i64) -> LedgerEntry {
        LedgerEntry {
            order: OrderId {
                terminal,
                intent: Seq(intent),
            },
            terminal,
            kind: EntryKind::Charge,
            statement: StatementType::ScanToPay,
            method: CodeMethod::OfflineQr,
            payer: CodePayer::Campus(ALICE),
            amount: Fen::new(amount),
            sale_at: at(minutes),
            booked_at: at(minutes + 1),
        }
    }

    /// A lunch at the merchant's tills: a card sale, a WeChat order, a QR order confirmed by
    /// code and uploaded (the app's payment is in the ledger too), a QR order the app paid that
    /// the till has not uploaded, an offline virtual-card sale, a QR order never paid, an order
    /// paid and refunded, a sale the next day, and another merchant's sale.
    fn lunch(dir: &std::path::Path) -> (CampusStore, Vec<LedgerEntry>) {
        let mut store = CampusStore::open(dir).unwrap();
        let uid = CardUid::new(&[0xDE, 0xAD, 0xBE, 0xEF]).unwrap();
        let card = RecordBody::SaleCommitted(SaleCommitted {
            intent: Seq(1),
            amount: Fen::new(800),
            payer: Payer::CampusCard(uid),
            balance_after: Fen::new(9_200),
            recovered: false,
        });
        let offline_code = RecordBody::OfflineCodeSale(OfflineCodeSale {
            amount: Fen::new(450),
            account: ALICE,
            key_id: 1,
            issued_at_s: 0,
            valid_for_s: 60,
            nonce: 7,
            signature: [0; 64],
            fixed_price: false,
        });
        let a = [
            record(2, 0, card),
            record(3, 1, intent(1_200, CodeMethod::WeChat)),
            record(
                4,
                1,
                paid(
                    3,
                    1_200,
                    Payer::Wallet {
                        method: CodeMethod::WeChat,
                        payer: 77,
                    },
                    1,
                ),
            ),
            record(5, 2, intent(1_500, CodeMethod::OfflineQr)),
            record(6, 4, paid(5, 1_500, Payer::CampusApp, 4)),
            record(8, 5, intent(600, CodeMethod::OfflineQr)),
            record(9, 6, offline_code),
            record(10, 7, intent(900, CodeMethod::OfflineQr)),
            record(12, 24 * 60, intent(300, CodeMethod::OfflineQr)),
            record(13, 24 * 60, paid(12, 300, Payer::CampusApp, 24 * 60)),
        ];
        let batch: Vec<(Seq, &[u8])> = a.iter().map(|(s, b)| (*s, b.as_slice())).collect();
        store.apply(TILL_A, &batch).unwrap();
        let c = [record(1, 3, intent(2_000, CodeMethod::OfflineQr))];
        let batch: Vec<(Seq, &[u8])> = c.iter().map(|(s, b)| (*s, b.as_slice())).collect();
        store.apply(OTHER, &batch).unwrap();
        let mut refunded = charge(TILL_B, 11, 700, 8);
        let ledger = vec![
            charge(TILL_A, 5, 1_500, 2),
            charge(TILL_A, 8, 600, 5),
            refunded,
            {
                refunded.kind = EntryKind::Refund;
                refunded
            },
            charge(OTHER, 1, 2_000, 3),
        ];
        (store, ledger)
    }

    fn query(types: Option<&[&str]>) -> StatementQuery {
        StatementQuery {
            terminals: [TILL_A, TILL_B].into(),
            from: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            types: types.map(|t| {
                t.iter()
                    .map(|t| StatementTypeKey::parse(t).unwrap())
                    .collect()
            }),
        }
    }

    #[test]
    fn the_days_statement_shows_each_sale_once_from_uploads_and_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ledger) = lunch(dir.path());
        let statement = statement(&store, &ledger, &query(None));
        let shown: Vec<(u64, &str, u64, &str)> = statement
            .rows
            .iter()
            .map(|r| {
                (
                    r.order.intent.0,
                    r.account.as_str(),
                    r.amount.get(),
                    r.kind.label(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                (1, "DEADBEEF", 800, "卡消费"),
                (3, "WeChat:77", 1_200, "付款码"),
                // Uploaded as paid by the campus app: the ledger names the account; one row.
                (5, "2026000001", 1_500, "扫一扫"),
                // Paid in the app, not uploaded yet: from the ledger.
                (8, "2026000001", 600, "扫一扫"),
                (9, "2026000001", 450, "付款码"),
            ]
        );
        assert_eq!(statement.total, Fen::new(800 + 1_200 + 1_500 + 600 + 450));
        // The QR order's booking is the campus's, its machine the till's; the ledger-only row
        // names its terminal.
        assert_eq!(statement.rows[2].booked_at, at(3));
        assert_eq!(statement.rows[2].machine, MachineNumber::new(58).ok());
        assert_eq!(statement.rows[3].machine, None);
    }

    #[test]
    fn the_type_filter_and_the_date_range_choose_the_rows_and_the_total_follows() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ledger) = lunch(dir.path());
        let qr = statement(&store, &ledger, &query(Some(&["扫一扫"])));
        assert_eq!(qr.rows.len(), 2);
        assert_eq!(qr.total, Fen::new(2_100));
        let codes_and_cards = statement(&store, &ledger, &query(Some(&["付款码", "卡消费"])));
        assert_eq!(codes_and_cards.total, Fen::new(800 + 1_200 + 450));
        let other = statement(&store, &ledger, &query(Some(&["其它"])));
        assert!(other.rows.is_empty());
        assert_eq!(other.total, Fen::ZERO);
        let mut next_day = query(None);
        next_day.from = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        next_day.to = next_day.from;
        let next = statement(&store, &ledger, &next_day);
        assert_eq!(next.rows.len(), 1);
        assert_eq!(next.total, Fen::new(300));
        assert_eq!(StatementTypeKey::parse("转账"), None);
    }

    #[test]
    fn the_csv_export_has_the_halls_columns_a_line_a_sale_and_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ledger) = lunch(dir.path());
        let csv = statement(&store, &ledger, &query(Some(&["扫一扫"]))).to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            vec![
                CSV_HEADER,
                "2026000001,2026000001,0058,15.00,2026-11-23 12:02:00,2026-11-23 12:03:00,扫一扫",
                "2026000001,2026000001,000000000000000a,6.00,2026-11-23 12:05:00,2026-11-23 12:06:00,扫一扫",
                "合计,,,21.00,,,",
            ]
        );
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
        let text = statement(&store, &ledger, &query(None)).to_text();
        assert!(text.ends_with("合计 5 笔 ¥45.50\n"), "{text}");
    }
}
