//! What the merchant's and the customer's displays show for each mode of the till (a message
//! overlay, when there is one, is laid over this by `Till::displays`).

use shared::record::{JournalRecord, Payer, RecordBody};

use super::calendar::{format_short, local_time};
use super::config::Lang;
use super::downlink::{display_columns, STATUS_LINE_MAX_COLUMNS};
use super::text::{balance, tr, yuan};
use super::{Mode, Till};

impl Till {
    pub(super) fn status_line(&self) -> String {
        let lang = self.lang();
        let mut line = format!("{}{}", tr(lang, "机号", "No."), self.snap.machine);
        line.push(' ');
        line.push_str(&if self.snap.offline {
            tr(lang, "脱机", "OFFLINE")
        } else {
            tr(lang, "联机", "ONLINE")
        });
        if let Some(amount) = self.snap.fixed_price {
            line.push(' ');
            line.push_str(&tr(lang, "定额", "FIXED "));
            line.push_str(&amount.to_string());
        }
        if !self.snap.pending.is_empty() {
            line.push_str(&match lang {
                Lang::Zh => format!(" 待核{}", self.snap.pending.len()),
                Lang::En => format!(" CHECK {}", self.snap.pending.len()),
            });
        }
        // The link's state last, in its long form if the line has room, else the short one.
        for short in [false, true] {
            if let Some(segment) = self.link_segment(short) {
                let candidate = format!("{line} {segment}");
                if short || display_columns(&candidate) <= STATUS_LINE_MAX_COLUMNS {
                    return candidate;
                }
            }
        }
        line
    }

    /// The merchant's body lines and the customer's lines of the current mode.
    pub(super) fn mode_screens(&self) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        let welcome = if self.config.merchant_name.is_empty() {
            tr(lang, "欢迎光临", "Welcome")
        } else {
            self.config.merchant_name.clone()
        };
        match &self.mode {
            Mode::Entry(entry) => {
                let typed = if entry.is_empty() {
                    String::new()
                } else {
                    format!("¥{}", entry.text())
                };
                (
                    vec![tr(lang, "请输入金额", "Enter amount"), typed.clone()],
                    vec![welcome, typed],
                )
            }
            Mode::AwaitingPayment(payment) if payment.retry.is_some() => (
                vec![
                    tr(lang, "请重新刷卡", "Tap the card again"),
                    yuan(payment.amount),
                    tr(lang, "清零放弃", "Clear gives up"),
                ],
                vec![
                    tr(lang, "请重新刷卡", "Tap your card again"),
                    yuan(payment.amount),
                ],
            ),
            Mode::AwaitingPayment(payment) => {
                let hint = if payment.fixed {
                    tr(lang, "定额收款", "Fixed price")
                } else {
                    tr(lang, "清零取消", "Clear cancels")
                };
                (
                    vec![
                        tr(lang, "请刷卡", "Tap card to pay"),
                        yuan(payment.amount),
                        hint,
                    ],
                    vec![tr(lang, "请付款", "Please pay"), yuan(payment.amount)],
                )
            }
            Mode::Debiting { payment, .. } => (
                vec![
                    tr(lang, "扣款中 请勿移卡", "Charging, keep card"),
                    yuan(payment.amount),
                ],
                vec![
                    tr(lang, "扣款中 请勿移卡", "Charging, keep card"),
                    yuan(payment.amount),
                ],
            ),
            Mode::ConfirmDuplicate { payment, .. } => (
                vec![
                    tr(lang, "重复消费提醒", "Duplicate payment?"),
                    format!(
                        "{} {}",
                        tr(lang, "同卡同额", "Same card, same"),
                        yuan(payment.amount)
                    ),
                    tr(lang, "回车确认 清零取消", "Enter: go on  Clear: stop"),
                ],
                vec![
                    tr(lang, "重复消费提醒", "Paid this just now"),
                    tr(lang, "请与商户确认", "Confirm with merchant"),
                ],
            ),
            Mode::Browsing { shown } => {
                let lines = match shown {
                    Some(record) => self.describe_sale(record),
                    None => vec![tr(lang, "查询中", "Looking up")],
                };
                (lines, vec![welcome, String::new()])
            }
            Mode::StaffPin(pin) => (
                vec![
                    tr(lang, "设置机号", "Set machine number"),
                    format!("{} {}", tr(lang, "密码", "PIN"), "*".repeat(pin.len())),
                ],
                vec![welcome, String::new()],
            ),
            Mode::StaffMachineNumber(digits) => (
                vec![
                    tr(lang, "设置机号", "Set machine number"),
                    format!("{} {digits}", tr(lang, "新机号", "New number")),
                ],
                vec![welcome, String::new()],
            ),
        }
    }

    pub(super) fn describe_sale(&self, record: &JournalRecord) -> Vec<String> {
        let lang = self.lang();
        let wall = local_time(record.at, self.config.utc_offset_minutes).wall;
        match &record.body {
            RecordBody::SaleCommitted(sale) => {
                let Payer::CampusCard(uid) = sale.payer;
                vec![
                    format!(
                        "{} {} {}",
                        tr(lang, "流水", "Sale"),
                        record.seq,
                        format_short(wall)
                    ),
                    format!("{} {}", yuan(sale.amount), tr(lang, "成功", "paid")),
                    format!("{uid} {}", balance(lang, sale.balance_after)),
                ]
            }
            other => vec![format!("{} {:?}", record.seq, other)],
        }
    }
}
