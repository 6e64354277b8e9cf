//! A code payment: the order a scanned payment code starts, from its intent to paid, declined or
//! reversed. (Being built: issue 10.)

use shared::pay::{OrderId, OrderResult};

use super::super::Till;

impl Till {
    /// The campus server's answer about an order.
    pub(in crate::core) fn order_result(&mut self, _result: OrderResult) {}

    /// An order request could not leave the till.
    pub(in crate::core) fn order_not_sent(&mut self, _order: OrderId) {}
}
