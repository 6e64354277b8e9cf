//! What the merchant's and the customer's displays show: the status line, and the active
//! flow's screens (each flow draws its own; a message overlay, when there is one, is laid over
//! this by `Till::displays`).

use super::downlink::{display_columns, STATUS_LINE_MAX_COLUMNS};
use super::text::{self};
use super::{Mode, Till};

impl Till {
    pub(super) fn status_line(&self) -> String {
        let lang = self.lang();
        let mut line = format!("{}{}", text::NO.get(lang), self.snap.machine);
        line.push(' ');
        line.push_str(&if self.snap.offline {
            text::OFFLINE.get(lang)
        } else {
            text::ONLINE_2.get(lang)
        });
        if let Some(amount) = self.snap.fixed_price {
            line.push(' ');
            line.push_str(&text::FIXED.get(lang));
            line.push_str(&amount.to_string());
        }
        let unresolved = self.snap.pending.len()
            + self.snap.pending_loads.len()
            + self.snap.pending_orders.len();
        if unresolved > 0 {
            line.push_str(&text::unresolved_on_status(lang, unresolved));
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

    /// The merchant's body lines and the customer's lines of the active flow.
    pub(super) fn mode_screens(&self) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        let welcome = if self.config.merchant_name.is_empty() {
            text::WELCOME.get(lang)
        } else {
            self.config.merchant_name.clone()
        };
        match &self.mode {
            Mode::Entry(entry) => self.entry_screens(entry, welcome),
            Mode::Sale(sale) => self.sale_screens(sale),
            Mode::Browse(browse) => self.browse_screens(browse, welcome),
            Mode::Staff(staff) => self.staff_screens(staff, welcome),
            Mode::CardCentre(centre) => self.centre_screens(centre, welcome),
            Mode::Order(order) => self.order_screens(order, welcome),
        }
    }
}
