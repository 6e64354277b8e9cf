//! The till's screens and journal records as text lines: one screen as one line
//! (`M| line | line`), one record as one line (`#12 m0003 sale-committed …`). Production code: the
//! device prints its displays and logs its records in these words, and the headless script and
//! the terminal simulator print the same lines, so a device log reads like a replayed day
//! (docs/script.md, docs/device.md).

use shared::pay::CodePayer;
use shared::record::{JournalRecord, Payer, RecordBody};
use shared::Fen;

use crate::core::Screen;

/// A screen as one line: its lines joined by " | ", trailing blank lines dropped.
pub fn screen_text(screen: &Screen) -> String {
    let last = screen
        .lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    screen.lines[..last].join(" | ")
}

/// One journal record as a line of text.
pub fn describe_record(record: &JournalRecord) -> String {
    let payer = |payer: &Payer| payer.to_string();
    let yuan = |fen: Fen| format!("¥{fen}");
    let body = match &record.body {
        RecordBody::SaleIntent(s) => format!(
            "sale-intent {} {} counter {} balance {}{}",
            yuan(s.amount),
            payer(&s.payer),
            s.card.counter_before,
            yuan(s.card.balance_before),
            if s.fixed_price { " fixed-price" } else { "" }
        ),
        RecordBody::SaleCommitted(s) => format!(
            "sale-committed {} {} {} balance {}{}",
            s.intent,
            yuan(s.amount),
            payer(&s.payer),
            yuan(s.balance_after),
            if s.recovered { " recovered" } else { "" }
        ),
        RecordBody::SaleAborted(s) => format!("sale-aborted {} {:?}", s.intent, s.reason),
        RecordBody::SaleInDoubt(s) => format!("sale-in-doubt {} {:?}", s.intent, s.reason),
        RecordBody::ModeChanged(m) => format!("mode {m:?}"),
        RecordBody::MachineNumberChanged { old, new } => format!("machine-number {old} -> {new}"),
        RecordBody::CardIssued(c) => {
            format!(
                "card-issued card {} balance {}",
                c.uid,
                yuan(c.opening_balance)
            )
        }
        RecordBody::LoadIntent(l) => format!(
            "load-intent {} card {} counter {} balance {}",
            yuan(l.amount),
            l.uid,
            l.card.counter_before,
            yuan(l.card.balance_before)
        ),
        RecordBody::LoadCommitted(l) => format!(
            "load-committed {} {} card {} balance {}{}",
            l.intent,
            yuan(l.amount),
            l.uid,
            yuan(l.balance_after),
            if l.recovered { " recovered" } else { "" }
        ),
        RecordBody::LoadAborted(l) => format!("load-aborted {} {:?}", l.intent, l.reason),
        RecordBody::LoadInDoubt(l) => format!("load-in-doubt {} {:?}", l.intent, l.reason),
        RecordBody::CampusConfigApplied { version } => format!("campus-config v{version}"),
        RecordBody::BlacklistReplaced(b) => {
            format!("blacklist v{} {} entries", b.version, b.entries)
        }
        RecordBody::ServerTimeSeen { server, offset_ms } => {
            format!("server-time {} offset {offset_ms}ms", server.0)
        }
        RecordBody::CardAnomaly(a) => format!("card-anomaly card {} {:?}", a.uid, a.kind),
        RecordBody::StaffPinChanged(pin) => match pin.locked_until {
            _ if pin.failures == 0 => "staff-pin cleared".to_string(),
            Some(until) => format!("staff-pin wrong {} locked-until {}", pin.failures, until.0),
            None => format!("staff-pin wrong {}", pin.failures),
        },
        RecordBody::LoadResumed { intent, resume } => {
            format!("load-resumed {intent} resume {resume}")
        }
        RecordBody::CardIssueInterrupted { uid } => format!("card-issue-interrupted card {uid}"),
        RecordBody::OrderIntent(o) => format!(
            "order-intent {} {:?} code {}{}{}",
            yuan(o.amount),
            o.method,
            o.hint,
            o.account
                .map(|a| format!(" account {a}"))
                .unwrap_or_default(),
            if o.fixed_price { " fixed-price" } else { "" }
        ),
        RecordBody::OrderReversing { intent, why } => format!("order-reversing {intent} {why:?}"),
        RecordBody::OrderPaid(o) => format!(
            "order-paid {} {} {}{}{}",
            o.intent,
            yuan(o.amount),
            payer(&o.payer),
            o.balance_after
                .map(|b| format!(" balance {}", yuan(b)))
                .unwrap_or_default(),
            if o.recovered { " recovered" } else { "" }
        ),
        RecordBody::OrderClosed(o) => format!("order-closed {} {:?}", o.intent, o.end),
        RecordBody::OfflineCodeSale(o) => format!(
            "offline-code-sale {} virtual card {} key {} nonce {:x}{}",
            yuan(o.amount),
            o.account,
            o.key_id,
            o.nonce,
            if o.fixed_price { " fixed-price" } else { "" }
        ),
        RecordBody::QrConfirmedByCode { intent, attempts } => {
            format!("qr-confirmed-by-code {intent} after {attempts} wrong")
        }
        RecordBody::QrCodeRejected { intent, attempts } => {
            format!("qr-code-rejected {intent} attempt {attempts}")
        }
        RecordBody::OrderPaidAfterClose { intent, payer } => {
            let payer = match payer {
                CodePayer::Campus(account) => format!("virtual card {account}"),
                CodePayer::Wallet(id) => format!("payer {id:x}"),
            };
            format!("order-paid-after-close {intent} {payer} REFUND TO CHASE")
        }
    };
    format!("{} m{} {body}", record.seq, record.machine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{MachineNumber, Seq, UnixMillis};

    #[test]
    fn a_screen_is_its_lines_joined_without_trailing_blank_lines() {
        let screen = Screen {
            lines: vec![
                "金额 5.00".into(),
                String::new(),
                "请刷卡".into(),
                String::new(),
            ],
        };
        assert_eq!(screen_text(&screen), "金额 5.00 |  | 请刷卡");
        let blank = Screen {
            lines: vec![String::new(), String::new()],
        };
        assert_eq!(screen_text(&blank), "");
    }

    #[test]
    fn a_record_reads_as_its_seq_its_till_and_what_happened() {
        let record = JournalRecord {
            seq: Seq(7),
            at: UnixMillis(0),
            machine: MachineNumber::new(12).unwrap(),
            body: RecordBody::CampusConfigApplied { version: 3 },
        };
        assert_eq!(describe_record(&record), "#7 m0012 campus-config v3");
    }

    #[test]
    fn an_order_record_names_the_code_by_its_hint_only() {
        use shared::paycode::{CodeMethod, PaymentCode};
        use shared::record::OrderIntent;
        let code = PaymentCode::recognise("134567890123456789").unwrap();
        let record = JournalRecord {
            seq: Seq(4),
            at: UnixMillis(0),
            machine: MachineNumber::new(1).unwrap(),
            body: RecordBody::OrderIntent(OrderIntent {
                amount: Fen::from_yuan(12),
                method: CodeMethod::WeChat,
                code: code.digest(),
                hint: code.hint(),
                account: None,
                fixed_price: false,
            }),
        };
        let line = describe_record(&record);
        assert_eq!(line, "#4 m0001 order-intent ¥12.00 WeChat code …6789");
        assert!(!line.contains(code.expose()));
    }
}
