//! The script lines about code payments and the simulator's campus that answers them: `scan`
//! with a named code, `backend …`, `expect balance` / `expect ledger`, and the answers to the
//! till's order requests when the script runs without a link (printed as `CAMPUS` lines). Kept
//! apart from the runner's other lines; the campus itself is [`super::orders::LocalCampus`].

use shared::link::BrokerLink;
use shared::pay::{OrderCall, OrderState};
use shared::Fen;
use std::io::Write;

use super::orders::{parse_code_spec, BackendMode, DemoAccount, LocalAnswer, MAX_ACCOUNTS};
use super::{not_running, ScriptError, ScriptRunner};
use crate::host::RequestKind;
use crate::runtime::Input;
use shared::paycode::VirtualAccount;

/// The most order requests the campus answers for one script input (an answer may make the
/// till ask again; a till that never stops asking must not hang the runner).
pub const MAX_ORDER_ANSWERS_PER_INPUT: usize = 64;

impl<W: Write> ScriptRunner<W> {
    /// `scan …`: a named code (made by the campus at the till's clock) or raw text.
    pub(super) fn scan(&mut self, rest: &str) -> Result<(), ScriptError> {
        let text = match parse_code_spec(rest).map_err(|e| self.parse_error(e))? {
            Some(spec) => self
                .campus
                .make_code(&spec, self.wall)
                .map_err(|e| self.parse_error(e))?,
            None => rest.to_string(),
        };
        self.feed(Input::Code(text))
    }

    /// `backend up|down|silent` and `backend account NAME ACCOUNT BALANCE [frozen]`.
    pub(super) fn backend_line(&mut self, rest: &str) -> Result<(), ScriptError> {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let mode = match words[..] {
            ["up"] => BackendMode::Up,
            ["down"] => BackendMode::Down,
            ["silent"] => BackendMode::Silent,
            ["account", name, account, balance, ref frozen @ ..] => {
                let frozen = match frozen {
                    [] => false,
                    ["frozen"] => true,
                    _ => {
                        return Err(self.parse_error(
                            "usage: backend account NAME ACCOUNT BALANCE [frozen]".into(),
                        ))
                    }
                };
                let account = account.parse::<u64>().map_err(|_| {
                    self.parse_error(format!("'{account}' is not an account number"))
                })?;
                let opening = balance.parse::<Fen>().map_err(|e| {
                    self.parse_error(format!("'{balance}' is not a balance in yuan: {e}"))
                })?;
                let declared = DemoAccount {
                    name: name.to_string(),
                    account: VirtualAccount(account),
                    opening,
                    frozen,
                };
                return self.campus.declare_account(declared).map_err(|e| {
                    self.parse_error(format!("{e} (at most {MAX_ACCOUNTS} accounts)"))
                });
            }
            _ => return Err(self.parse_error(
                "usage: backend up|down|silent, or backend account NAME ACCOUNT BALANCE [frozen]"
                    .into(),
            )),
        };
        if self.setup.link.is_some() {
            return Err(self.parse_error(
                "with --link the daemon's campus answers orders, not the script's back end".into(),
            ));
        }
        self.campus.set_mode(mode);
        self.campus_connected = true;
        self.connect_campus()
    }

    /// Tells the till the script's campus is its route (after the first `backend` line, and at
    /// every boot after it), with its broker up or down.
    pub(super) fn connect_campus(&mut self) -> Result<(), ScriptError> {
        if !self.campus_connected {
            return Ok(());
        }
        let broker = match self.campus.mode() {
            BackendMode::Up | BackendMode::Silent => BrokerLink::Up,
            BackendMode::Down => BrokerLink::Down,
        };
        let now = self.now();
        let host = self.host.as_mut().ok_or_else(not_running)?;
        let outputs = host.answer_orders_locally(Some(broker), now, &mut self.cards);
        self.print(outputs)?;
        self.answer_orders()
    }

    /// What `expect balance NAME` and `expect ledger` search: `NAME YUAN` of that campus
    /// account, or the ledger as text.
    pub(super) fn campus_actual(
        &mut self,
        what: &str,
        expected: &str,
    ) -> Result<String, ScriptError> {
        if what == "ledger" {
            return Ok(self.campus.ledger_text());
        }
        let (name, _) = expected.split_once(' ').unwrap_or((expected, ""));
        let account = self
            .campus
            .account(name)
            .map(|a| a.name.clone())
            .ok_or_else(|| self.parse_error(format!("no campus account '{name}'")))?;
        let balance = self.campus.balance(&account).unwrap_or(Fen::ZERO);
        Ok(format!("{account} {balance}"))
    }

    /// Answers the order requests the till made during the last input with the campus, feeding
    /// each answer back and printing a `CAMPUS` line for it (quiet during `sales`).
    pub(super) fn answer_orders(&mut self) -> Result<(), ScriptError> {
        let mut answered = 0;
        while !self.pending_orders.is_empty() {
            let calls = std::mem::take(&mut self.pending_orders);
            for call in calls {
                if answered == MAX_ORDER_ANSWERS_PER_INPUT {
                    return Err(ScriptError::Fatal(format!(
                        "the till asked the campus more than {MAX_ORDER_ANSWERS_PER_INPUT} times \
                         for one input"
                    )));
                }
                answered += 1;
                self.answer_order(call)?;
            }
        }
        Ok(())
    }

    fn answer_order(&mut self, call: OrderCall) -> Result<(), ScriptError> {
        let now = self.now();
        let kind = RequestKind::of(&call.request);
        let intent = call.order.intent.0;
        let answer = self.campus.answer(&call, now.wall);
        let said = match &answer {
            LocalAnswer::Result(result) => state_text(&result.state),
            LocalAnswer::NotSent(why) => format!("not sent: {why}"),
            LocalAnswer::Silent => "no answer".to_string(),
        };
        if !self.quiet {
            writeln!(self.out, "{} CAMPUS #{intent} {kind}: {said}", self.stamp())?;
        }
        let host = self.host.as_mut().ok_or_else(not_running)?;
        let outputs = match answer {
            LocalAnswer::Result(result) => host.order_result(result, now, &mut self.cards),
            LocalAnswer::NotSent(_) => host.order_not_sent(call.order, now, &mut self.cards),
            LocalAnswer::Silent => return Ok(()),
        };
        self.print(outputs)
    }
}

/// An order's state in a `CAMPUS` line.
pub fn state_text(state: &OrderState) -> String {
    match state {
        OrderState::Paid {
            payer,
            balance_after,
            ..
        } => {
            let payer = match payer {
                shared::pay::CodePayer::Campus(account) => format!("account {account}"),
                shared::pay::CodePayer::Wallet(id) => format!("payer {id:x}"),
            };
            match balance_after {
                Some(balance) => format!("paid by {payer}, balance ¥{balance}"),
                None => format!("paid by {payer}"),
            }
        }
        OrderState::UserPaying => "user paying".into(),
        OrderState::Declined(reason) => format!("declined {reason:?}"),
        OrderState::Reversed { refunded: true } => "reversed, refunded".into(),
        OrderState::Reversed { refunded: false } => "reversed".into(),
        OrderState::NotFound => "not found".into(),
        OrderState::Busy => "busy".into(),
    }
}
