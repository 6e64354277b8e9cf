//! What the merchant's and the customer's displays show for each mode of the till (a message
//! overlay, when there is one, is laid over this by `Till::displays`).

use shared::record::{JournalRecord, Payer, RecordBody};

use super::calendar::{format_short, local_time};
use super::config::Lang;
use super::downlink::{display_columns, STATUS_LINE_MAX_COLUMNS};
use super::text::{balance, tr, yuan};
use super::{Mode, Till};

/// Fixed-price presets shown per display line ("1:8.00 2:10.00 3:12.00 4:15.00").
const PRESETS_PER_LINE: usize = 4;

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
        let unresolved = self.snap.pending.len() + self.snap.pending_loads.len();
        if unresolved > 0 {
            line.push_str(&match lang {
                Lang::Zh => format!(" 待核{unresolved}"),
                Lang::En => format!(" CHECK {unresolved}"),
            });
        }
        // The link's state last, in the longest form the line has room for (else the shortest).
        let segments = self.link_segments();
        let fitting = segments
            .iter()
            .find(|segment| {
                display_columns(&line) + 1 + display_columns(segment) <= STATUS_LINE_MAX_COLUMNS
            })
            .or(segments.last());
        match fitting {
            Some(segment) => format!("{line} {segment}"),
            None => line,
        }
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
                    tr(lang, "管理菜单", "Staff menu"),
                    format!("{} {}", tr(lang, "密码", "PIN"), "*".repeat(pin.len())),
                ],
                vec![welcome, String::new()],
            ),
            Mode::PickFixedPrice => {
                let presets: Vec<String> = self
                    .fixed_price_presets()
                    .iter()
                    .enumerate()
                    .map(|(i, amount)| format!("{}:{amount}", i + 1))
                    .collect();
                let rows: Vec<String> = presets
                    .chunks(PRESETS_PER_LINE)
                    .map(|row| row.join(" "))
                    .collect();
                let mut lines = Vec::new();
                if rows.len() < 3 {
                    lines.push(tr(lang, "选择定额 清零取消", "Pick fixed price, Clear"));
                }
                lines.extend(rows);
                (lines, vec![welcome, String::new()])
            }
            Mode::StaffMenu => (
                vec![
                    tr(lang, "管理菜单", "Staff menu"),
                    tr(lang, "1机号 2开卡 3充值", "1 No. 2 Issue 3 Load"),
                    tr(lang, "清零退出", "Clear exits"),
                ],
                vec![welcome, String::new()],
            ),
            Mode::LoadAmount(entry) => {
                let typed = if entry.is_empty() {
                    String::new()
                } else {
                    format!("¥{}", entry.text())
                };
                (
                    vec![
                        tr(lang, "充值金额", "Load amount"),
                        typed.clone(),
                        tr(lang, "回车确认 清零返回", "Enter: OK Clear: back"),
                    ],
                    vec![tr(lang, "充值", "Top-up"), typed],
                )
            }
            Mode::LoadAwaitingCard(request) if request.retry.is_some() => (
                vec![
                    tr(lang, "充值未完成 请重新刷卡", "Load unfinished: tap again"),
                    yuan(request.amount),
                    tr(lang, "清零放弃", "Clear gives up"),
                ],
                vec![
                    tr(lang, "请重新刷卡", "Tap your card again"),
                    yuan(request.amount),
                ],
            ),
            Mode::LoadAwaitingCard(request) => (
                vec![
                    tr(lang, "充值 请刷卡", "Load: tap the card"),
                    yuan(request.amount),
                    tr(lang, "清零取消", "Clear cancels"),
                ],
                vec![
                    tr(lang, "充值 请刷卡", "Top-up: tap card"),
                    yuan(request.amount),
                ],
            ),
            Mode::Loading { request, .. } => (
                vec![
                    tr(lang, "充值写卡中 请勿移卡", "Loading, keep card"),
                    yuan(request.amount),
                ],
                vec![
                    tr(lang, "充值中 请勿移卡", "Loading, keep card"),
                    yuan(request.amount),
                ],
            ),
            Mode::IssueAwaitingCard => (
                vec![
                    tr(lang, "开卡: 请放空白卡", "Issue: tap blank card"),
                    tr(lang, "清零退出", "Clear exits"),
                ],
                vec![welcome, String::new()],
            ),
            Mode::Issuing => (
                vec![tr(lang, "开卡中 请勿移卡", "Issuing, keep card")],
                vec![tr(lang, "请勿移卡", "Keep the card still"), String::new()],
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
