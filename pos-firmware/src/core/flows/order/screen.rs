//! The order flow's keys and screens: the order on screen (paying, awaiting the payer with its
//! countdown, reversing) and the start-up check of open orders. Split from `flows/order.rs`,
//! which keeps the order's lifecycle.

use keymap::Command;
use shared::record::{PendingOrder, ReverseWhy};

use super::super::super::text::{self, yuan};
use super::super::super::{Mode, Till};
use super::OrderMode;

impl Till {
    /// A plain key while the order flow is on screen.
    pub(in crate::core) fn order_key(&mut self, mode: OrderMode, command: Command) -> Mode {
        let lang = self.lang();
        match (&mode, command) {
            (OrderMode::OnScreen { intent }, Command::Clear) => {
                let Some(pending) = self.unresolved::<PendingOrder>(*intent) else {
                    return self.resting_mode();
                };
                if pending.reversing {
                    // Already reversing: it goes on in the background.
                    self.show_info(vec![text::ORDER_TO_BACKGROUND.get(lang)]);
                    self.live_order(*intent).due = self.now;
                    return self.resting_mode();
                }
                self.reverse_order(pending, ReverseWhy::MerchantCancelled);
                Mode::Order(mode)
            }
            (OrderMode::StartupCheck, Command::Clear) => {
                self.show_info(vec![text::ORDER_TO_BACKGROUND.get(lang)]);
                self.resting_mode()
            }
            (OrderMode::OnScreen { .. }, _) => {
                self.show_error(vec![
                    text::ORDER_IN_PROGRESS.get(lang),
                    text::CLEAR_CANCELS_ORDER.get(lang),
                ]);
                Mode::Order(mode)
            }
            (OrderMode::StartupCheck, _) => {
                self.show_error(vec![
                    text::STARTUP_ORDERS_PLEASE_WAIT.get(lang),
                    text::CLEAR_TO_BACKGROUND.get(lang),
                ]);
                Mode::Order(mode)
            }
        }
    }

    /// The merchant's body lines and the customer's lines of the order flow.
    pub(in crate::core) fn order_screens(
        &self,
        mode: &OrderMode,
        welcome: String,
    ) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        let intent = match mode {
            OrderMode::StartupCheck => {
                return (
                    vec![
                        text::checking_open_orders(lang, self.orders_to_check()),
                        text::STARTUP_ORDERS_PLEASE_WAIT.get(lang),
                        text::CLEAR_TO_BACKGROUND.get(lang),
                    ],
                    vec![welcome, String::new()],
                );
            }
            OrderMode::OnScreen { intent } => *intent,
        };
        let Some(pending) = self.snap.pending_orders.iter().find(|p| p.intent == intent) else {
            return (Vec::new(), vec![welcome, String::new()]);
        };
        let amount = yuan(pending.order.amount);
        let method = text::method_name(lang, pending.order.method);
        if pending.reversing {
            (
                vec![
                    text::ORDER_REVERSING.get(lang),
                    amount.clone(),
                    text::CLEAR_TO_BACKGROUND.get(lang),
                ],
                vec![text::ORDER_BEING_CANCELLED.get(lang), amount],
            )
        } else if let Some(end) = self.countdown_end() {
            let left = if end > self.now {
                end.millis_since(self.now).div_ceil(1000)
            } else {
                0
            };
            (
                vec![
                    format!("{method} {}", text::WAITING_FOR_THE_PAYER.get(lang)),
                    amount.clone(),
                    text::seconds_left(lang, left),
                ],
                vec![text::CONFIRM_ON_YOUR_PHONE.get(lang), amount],
            )
        } else {
            (
                vec![
                    format!("{method} {}", text::ORDER_PAYING.get(lang)),
                    amount.clone(),
                    text::CLEAR_CANCELS_ORDER.get(lang),
                ],
                vec![text::ORDER_PLEASE_WAIT.get(lang), amount],
            )
        }
    }
}
