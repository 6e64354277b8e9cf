//! Clear+9, the journal browser: one committed sale at a time (a card's, a paid order's, or a
//! "paid after close" refund to chase), naming how it was paid; Up for older, Down for newer.
//! Pending code orders (offline QR orders waiting for the campus, orders being settled) come
//! first, from the snapshot, newest first; Up past the oldest goes on to the sales.
//! The core asks the journal for the next sale with [`Effect::FindSale`] and shows the answer
//! (`Till::handle_sale_found`) when it comes.

use keymap::Command;
use shared::pay::CodePayer;
use shared::paycode::CodeMethod;
use shared::record::{JournalRecord, Payer, PendingOrder, RecordBody};

use super::super::calendar::{format_short, local_time};
use super::super::text::{self, balance, yuan};
use super::super::{BrowseDirection, Effect, Mode, Till};

/// The browser's state: the sale on screen (`None` while the first answer is awaited), or one
/// of the pending code orders, shown first (newest first: 0), before the sales.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(in crate::core) struct BrowseMode {
    shown: Option<JournalRecord>,
    pending: Option<usize>,
}

impl Till {
    /// Clear+9: opens the browser at the newest pending code order (offline QR orders waiting
    /// for the campus, other orders being settled), else at the newest sale.
    pub(in crate::core) fn open_browser(&mut self) {
        if !self.snap.pending_orders.is_empty() {
            self.mode = Mode::Browse(BrowseMode {
                shown: None,
                pending: Some(0),
            });
            return;
        }
        self.mode = Mode::Browse(BrowseMode::default());
        self.effects.push_back(Effect::FindSale {
            from: None,
            direction: BrowseDirection::Older,
        });
    }

    /// A plain key while browsing.
    pub(in crate::core) fn browse_key(&mut self, mode: BrowseMode, command: Command) -> Mode {
        let lang = self.lang();
        match (command, mode.pending) {
            // The pending orders first: Up to older ones, then on to the sales.
            (Command::Up, Some(i)) if i + 1 < self.snap.pending_orders.len() => {
                Mode::Browse(BrowseMode {
                    pending: Some(i + 1),
                    ..mode
                })
            }
            (Command::Up, Some(_)) => {
                self.effects.push_back(Effect::FindSale {
                    from: None,
                    direction: BrowseDirection::Older,
                });
                Mode::Browse(BrowseMode::default())
            }
            (Command::Down, Some(i)) => Mode::Browse(BrowseMode {
                pending: Some(i.saturating_sub(1)),
                ..mode
            }),
            (Command::Up | Command::Down, None) => {
                let direction = if command == Command::Up {
                    BrowseDirection::Older
                } else {
                    BrowseDirection::Newer
                };
                let from = mode.shown.as_ref().map(|r| r.seq);
                self.effects.push_back(Effect::FindSale { from, direction });
                Mode::Browse(mode)
            }
            (Command::Clear | Command::Enter, _) => self.resting_mode(),
            _ => {
                self.show_error(vec![text::UP_DOWN_BROWSE_CLEAR_EXITS.get(lang)]);
                Mode::Browse(mode)
            }
        }
    }

    /// The journal's answer to [`Effect::FindSale`].
    pub(in crate::core) fn sale_found(&mut self, found: Option<JournalRecord>) {
        let lang = self.lang();
        let Mode::Browse(BrowseMode { shown, .. }) = &mut self.mode else {
            return;
        };
        match found {
            Some(record) => *shown = Some(record),
            // Nothing to browse: leave the browser, or the screen would say "looking up"
            // forever once the message is gone.
            None if shown.is_none() => {
                self.mode = self.resting_mode();
                self.show_info(vec![text::NO_SALES_YET.get(lang)]);
            }
            None => self.show_info(vec![text::NO_MORE_SALES.get(lang)]),
        }
    }

    /// The merchant's body lines and the customer's lines of the browser.
    pub(in crate::core) fn browse_screens(
        &self,
        mode: &BrowseMode,
        welcome: String,
    ) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        let pending = mode.pending.and_then(|i| {
            let orders = &self.snap.pending_orders;
            orders.get(orders.len().checked_sub(i + 1)?)
        });
        let lines = match (&mode.shown, pending) {
            (_, Some(order)) => self.describe_pending(order),
            (Some(record), None) => self.describe_sale(record),
            (None, None) => vec![text::LOOKING_UP.get(lang)],
        };
        (lines, vec![welcome, String::new()])
    }

    /// A pending code order: its id and time, amount and method, and what it waits for.
    fn describe_pending(&self, pending: &PendingOrder) -> Vec<String> {
        let lang = self.lang();
        let wall = local_time(pending.at, self.config.utc_offset_minutes).wall;
        let waits = if pending.order.method == CodeMethod::OfflineQr && !pending.reversing {
            text::QR_PENDING_CHECKED_ONLINE
        } else {
            text::ORDER_BEING_SETTLED
        };
        vec![
            format!(
                "{} {} {}",
                text::PENDING_ORDER.get(lang),
                pending.intent,
                format_short(wall)
            ),
            format!(
                "{} {}",
                yuan(pending.order.amount),
                text::method_name(lang, pending.order.method)
            ),
            waits.get(lang),
        ]
    }

    fn describe_sale(&self, record: &JournalRecord) -> Vec<String> {
        let lang = self.lang();
        let wall = local_time(record.at, self.config.utc_offset_minutes).wall;
        match &record.body {
            RecordBody::SaleCommitted(sale) => {
                vec![
                    format!(
                        "{} {} {}",
                        text::SALE.get(lang),
                        record.seq,
                        format_short(wall)
                    ),
                    format!("{} {}", yuan(sale.amount), text::PAID.get(lang)),
                    format!(
                        "{} {}",
                        payer_id(&sale.payer),
                        balance(lang, sale.balance_after)
                    ),
                ]
            }
            RecordBody::OrderPaid(order) => {
                let method = match order.payer {
                    Payer::VirtualCard(_) => text::METHOD_VIRTUAL_CARD.get(lang),
                    Payer::Wallet { method, .. } => text::method_name(lang, method),
                    Payer::CampusCard(_) => text::METHOD_CARD.get(lang),
                    Payer::CampusApp => text::method_name(lang, CodeMethod::OfflineQr),
                };
                let last = match order.balance_after {
                    Some(after) => format!("{} {}", payer_id(&order.payer), balance(lang, after)),
                    None => payer_id(&order.payer),
                };
                vec![
                    format!(
                        "{} {} {}",
                        text::SALE.get(lang),
                        record.seq,
                        format_short(wall)
                    ),
                    format!("{} {} {}", yuan(order.amount), text::PAID.get(lang), method),
                    last,
                ]
            }
            RecordBody::OrderPaidAfterClose { intent, payer } => vec![
                format!(
                    "{} {} {}",
                    text::PAID_AFTER_CLOSE_BROWSE.get(lang),
                    record.seq,
                    format_short(wall)
                ),
                format!("{intent} {}", text::REFUND_TO_CHASE.get(lang)),
                match payer {
                    CodePayer::Campus(account) => account.to_string(),
                    CodePayer::Wallet(id) => format!("{id:x}"),
                },
            ],
            other => vec![format!("{} {:?}", record.seq, other)],
        }
    }
}

/// A payer as the till's short lines name it: the card's UID, the campus account, or the wallet
/// payer's id (the method is named on its own).
pub(in crate::core) fn payer_id(payer: &Payer) -> String {
    match payer {
        Payer::CampusCard(uid) => uid.to_string(),
        Payer::VirtualCard(account) => account.to_string(),
        Payer::Wallet { payer, .. } => format!("{payer:x}"),
        Payer::CampusApp => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testkit::{effects, keys, merchant, till, NOW};
    use super::*;

    #[test]
    fn clear_9_asks_for_the_newest_sale_and_up_for_an_older_one() {
        let mut till = till();
        till.handle_command(Command::BrowseJournal, NOW);
        assert_eq!(
            effects(&mut till),
            vec![Effect::FindSale {
                from: None,
                direction: BrowseDirection::Older
            }]
        );
        assert_eq!(merchant(&till), "Looking up |  | ");
        keys(&mut till, "U");
        assert_eq!(
            effects(&mut till),
            vec![Effect::FindSale {
                from: None,
                direction: BrowseDirection::Older
            }],
            "nothing shown yet: from the newest end again"
        );
    }

    #[test]
    fn an_empty_journal_leaves_the_browser_with_a_message() {
        let mut till = till();
        till.handle_command(Command::BrowseJournal, NOW);
        till.handle_sale_found(None, NOW);
        assert_eq!(merchant(&till), "No sales yet |  | ");
        assert!(!matches!(till.mode, Mode::Browse(_)));
    }
}
