//! What the merchant's and the customer's displays show: the status line, and the active
//! flow's screens (each flow draws its own; a message overlay, when there is one, is laid over
//! this by `Till::displays`).

use super::downlink::{display_columns, STATUS_LINE_MAX_COLUMNS};
use super::text::{self};
use super::{Mode, Till};

impl Till {
    /// One state (联机, or 脱机 with why: 手动 / 链路断 / 网断), then fixed price, the unresolved
    /// sales, top-ups and orders (待核), the pending offline QR orders (码单), and the unsent
    /// records' count and age in the longest form that fits.
    pub(super) fn status_line(&self) -> String {
        let lang = self.lang();
        let mut line = format!("{}{}", text::NO.get(lang), self.snap.machine);
        line.push(' ');
        match self.offline_why() {
            None => line.push_str(&text::ONLINE_2.get(lang)),
            Some(why) => {
                line.push_str(&text::OFFLINE.get(lang));
                line.push(' ');
                line.push_str(&why.text().get(lang));
            }
        }
        if let Some(amount) = self.snap.fixed_price {
            line.push(' ');
            line.push_str(&text::FIXED.get(lang));
            line.push_str(&amount.to_string());
        }
        let qr_orders = self.pending_qr_orders();
        let unresolved = self.snap.pending.len()
            + self.snap.pending_loads.len()
            + (self.snap.pending_orders.len() - qr_orders);
        if unresolved > 0 {
            line.push_str(&text::unresolved_on_status(lang, unresolved));
        }
        if qr_orders > 0 {
            line.push_str(&text::qr_pending_on_status(lang, qr_orders));
        }
        // The unsent records last, in the longest form the line has room for (else the
        // shortest).
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
