//! The campus side of a session: the simulated payment back end (`sim::payments`, in memory,
//! [`PaymentBackend::new`]) with a few virtual-card accounts, the codes the payers' phones show,
//! and the network between it and the till. The network is chosen by the seed, request by
//! request: answered at once, delayed by simulated seconds (on the way there, on the way back, or
//! both), lost (the request, or only its answer), or "not sent" (the daemon had no broker). The
//! back end lives outside the till: it survives the till's restarts and power cuts (answers on
//! their way to a till that died are lost with its link; requests already out still arrive).
//!
//! At the end of a session, with the link up and every order settled, [`Session::check_ledger`]
//! holds the campus's ledger against the till's journal: every order ends closed, paid in the
//! journal ⇔ charged and not refunded in the ledger (same amount, same payer), the paid orders
//! per payer sum to the ledger's net per payer, and each virtual account lost exactly its paid
//! orders.

use super::*;

use pos_firmware::sim::payments::{
    virtual_card_code, wallet_code, EntryKind, PaymentBackend, WalletBehaviour,
    SIM_CAMPUS_KEY_SEED, SIM_VIRTUAL_CARD_VALIDITY_S,
};
use shared::pay::{DeclineReason, OrderCall, OrderResult, OrderState};
use shared::paycode::{CodeMethod, VirtualAccount};
use shared::record::OrderEnd;
use std::collections::HashMap;

/// Virtual-card accounts the back end holds in a session.
pub(crate) const ACCOUNTS: u64 = 4;
/// The first account number of a session (the others follow it).
const FIRST_ACCOUNT: u64 = 2_026_100_001;
/// An account the back end does not know (its codes are signed, but declined).
const UNKNOWN_ACCOUNT: u64 = 2_026_199_999;
/// Wallet payer serials a session uses: few, so that the same payer pays again.
const WALLET_PAYERS: u64 = 6;
/// Sessions (in percent) whose network is flaky (more delays, losses and "not sent").
const FLAKY_PERCENT: u64 = 30;
/// The longest a request or an answer is delayed on the network.
pub(crate) const MAX_NETWORK_DELAY_MS: u64 = 12_000;
/// The longest a payer confirms after the submit (past the default 60 s window sometimes).
const MAX_CONFIRM_S: u64 = 90;
/// How long ago an expired virtual-card code was issued, past its validity.
const EXPIRED_BY_MS: u64 = 120_000;
/// Answers fed back to the till for one input, at most (an answer may make the till ask again).
pub(crate) const MAX_ANSWERS_PER_INPUT: usize = 64;
/// Rounds of [`Session::settle_orders`], at most.
const SETTLE_ORDER_ROUNDS: usize = 60;
/// Simulated time per round (longer than the background retry, so each round asks again).
const SETTLE_ORDER_ROUND_MS: u64 = 35_000;

/// How often (in percent of requests) the network delays, loses or refuses one; the rest are
/// answered at once.
#[derive(Debug, Clone, Copy)]
struct Network {
    delayed: u64,
    lost_request: u64,
    lost_answer: u64,
    not_sent: u64,
}

/// Most sessions: a few requests late, very few lost.
const CLEAN_NETWORK: Network = Network {
    delayed: 15,
    lost_request: 2,
    lost_answer: 3,
    not_sent: 2,
};
/// A flaky session ([`FLAKY_PERCENT`]): much is late, lost or refused.
const FLAKY_NETWORK: Network = Network {
    delayed: 40,
    lost_request: 10,
    lost_answer: 10,
    not_sent: 10,
};

/// What the network does with one order request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    AtOnce,
    /// The request arrives after `request_ms`, its answer `answer_ms` after that.
    Delayed {
        request_ms: u64,
        answer_ms: u64,
    },
    /// The request never arrives.
    LostRequest,
    /// The back end acts on it; its answer never comes back.
    LostAnswer,
    /// It never left the till (the daemon said its broker is down).
    NotSent,
}

/// A message on the network.
#[derive(Debug, Clone)]
enum Flight {
    /// On its way to the back end; its answer takes `answer_ms` back.
    Request { call: OrderCall, answer_ms: u64 },
    /// On its way to the till, on the link connection `epoch` (lost if that one is gone).
    Answer { result: OrderResult, epoch: u64 },
}

/// The campus and the network to it.
pub(crate) struct Campus {
    pub(crate) backend: PaymentBackend,
    /// The accounts and their opening balances.
    pub(crate) accounts: Vec<(VirtualAccount, Fen)>,
    /// Messages on the way, with the monotonic time they arrive.
    in_flight: Vec<(u64, Flight)>,
    /// Answers the till takes right after the current input.
    pub(crate) immediate: VecDeque<Input>,
    /// Every payment code the phones showed (a bearer token: none may reach the journal).
    pub(crate) codes: Vec<String>,
    last_virtual: Option<String>,
    next_nonce: u64,
    flaky: bool,
    /// From the end of the session on: every request arrives and is answered at once.
    pub(crate) reliable: bool,
}

impl Campus {
    pub(crate) fn new(rng: &mut Rng) -> Campus {
        let accounts: Vec<(VirtualAccount, Fen)> = (0..ACCOUNTS)
            .map(|i| {
                let balance = match i {
                    0 => Fen::new(rng.between(0, 1_000)), // a poor one: insufficient funds
                    _ => Fen::new(rng.between(2_000, 100_000)),
                };
                (VirtualAccount(FIRST_ACCOUNT + i), balance)
            })
            .collect();
        Campus {
            backend: PaymentBackend::new(SIM_CAMPUS_KEY_SEED, accounts.clone()),
            accounts,
            in_flight: Vec::new(),
            immediate: VecDeque::new(),
            codes: Vec::new(),
            last_virtual: None,
            next_nonce: rng.below(1 << 40),
            flaky: rng.chance(FLAKY_PERCENT),
            reliable: false,
        }
    }

    fn delivery(&self, rng: &mut Rng) -> Delivery {
        if self.reliable {
            return Delivery::AtOnce;
        }
        let roll = rng.below(100);
        let Network {
            delayed,
            lost_request,
            lost_answer,
            not_sent,
        } = if self.flaky {
            FLAKY_NETWORK
        } else {
            CLEAN_NETWORK
        };
        let mut edge = 100 - delayed - lost_request - lost_answer - not_sent;
        if roll < edge {
            return Delivery::AtOnce;
        }
        edge += delayed;
        if roll < edge {
            let mut delay = || match rng.below(3) {
                0 => 0,
                1 => rng.between(1, 2_000),
                _ => rng.between(2_000, MAX_NETWORK_DELAY_MS),
            };
            return Delivery::Delayed {
                request_ms: delay(),
                answer_ms: delay(),
            };
        }
        edge += lost_request;
        if roll < edge {
            return Delivery::LostRequest;
        }
        edge += lost_answer;
        if roll < edge {
            Delivery::LostAnswer
        } else {
            Delivery::NotSent
        }
    }

    /// When the next message arrives, if any is on the way.
    pub(crate) fn next_arrival(&self) -> Option<u64> {
        self.in_flight.iter().map(|(at, _)| *at).min()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Answers on the way to the till die with its link connection (the requests go on).
    pub(crate) fn link_lost(&mut self) {
        self.immediate.clear();
        self.in_flight
            .retain(|(_, flight)| matches!(flight, Flight::Request { .. }));
    }

    /// A code for a phone to show: a virtual card (fresh, expired, replayed, of an account the
    /// campus does not know), a wallet code of any behaviour, or (None) nothing of ours.
    pub(crate) fn make_code(&mut self, rng: &mut Rng, campus_now: UnixMillis) -> Option<String> {
        let code = match rng.below(100) {
            0..40 => {
                let account = VirtualAccount(FIRST_ACCOUNT + rng.below(ACCOUNTS));
                // Shown on the phone a little while ago, still valid.
                let age = rng.below(u64::from(SIM_VIRTUAL_CARD_VALIDITY_S) * 1_000 / 2);
                let code = virtual_card_code(account, campus_now.minus(age), self.nonce());
                self.last_virtual = Some(code.clone());
                code
            }
            40..46 => {
                let account = VirtualAccount(FIRST_ACCOUNT + rng.below(ACCOUNTS));
                let age = u64::from(SIM_VIRTUAL_CARD_VALIDITY_S) * 1_000 + EXPIRED_BY_MS;
                virtual_card_code(account, campus_now.minus(age), self.nonce())
            }
            46..51 => match &self.last_virtual {
                Some(code) => code.clone(),
                None => return None,
            },
            51..54 => {
                let account = VirtualAccount(UNKNOWN_ACCOUNT);
                virtual_card_code(account, campus_now, self.nonce())
            }
            _ => {
                let method =
                    rng.pick(&[CodeMethod::WeChat, CodeMethod::Alipay, CodeMethod::UnionPay]);
                let behaviour = random_behaviour(rng);
                wallet_code(method, behaviour, 1 + rng.below(WALLET_PAYERS) as u32)
            }
        };
        if !self.codes.contains(&code) {
            self.codes.push(code.clone());
        }
        Some(code)
    }

    fn nonce(&mut self) -> u64 {
        self.next_nonce += 1;
        self.next_nonce
    }

    /// The first code the phones showed that `bytes` hold in clear, if any. Every code is a run
    /// of ASCII letters and digits: only such runs at least as long as the shortest code are
    /// searched (one pass over the bytes, quick on a data directory's mostly empty files).
    pub(crate) fn code_in(&self, bytes: &[u8]) -> Option<&str> {
        let shortest = self.codes.iter().map(String::len).min()?;
        bytes
            .split(|b| !b.is_ascii_alphanumeric())
            .filter(|run| run.len() >= shortest)
            .find_map(|run| {
                self.codes.iter().find(|code| {
                    run.windows(code.len())
                        .any(|window| window == code.as_bytes())
                })
            })
            .map(String::as_str)
    }
}

fn random_behaviour(rng: &mut Rng) -> WalletBehaviour {
    match rng.below(100) {
        0..35 => WalletBehaviour::PaidAtOnce,
        35..55 => WalletBehaviour::UserPayingThenPaid {
            after_s: rng.between(1, MAX_CONFIRM_S) as u8,
        },
        55..63 => WalletBehaviour::UserPayingNever,
        63..75 => {
            let other = DeclineReason::Other(rng.below(500) as u16);
            WalletBehaviour::Declined(rng.pick(&[
                DeclineReason::InsufficientFunds,
                DeclineReason::CodeExpired,
                DeclineReason::CodeInvalid,
                DeclineReason::CodeUsed,
                DeclineReason::AccountFrozen,
                DeclineReason::PayerCancelled,
                DeclineReason::OverLimit,
                other,
            ]))
        }
        75..83 => WalletBehaviour::NoAnswer,
        83..91 => WalletBehaviour::DuplicatePrompt,
        _ => WalletBehaviour::PaidDuringReversal,
    }
}

trait Minus {
    fn minus(self, ms: u64) -> UnixMillis;
}

impl Minus for UnixMillis {
    fn minus(self, ms: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_sub(ms as i64))
    }
}

/// A charge and a refund of one order, as the ledger books them.
#[derive(Debug, Default, Clone, Copy)]
struct Booked {
    charges: u64,
    refunds: u64,
    payer: Option<Payer>,
}

impl Session {
    /// The campus's clock: true time, which the till's clock steps do not move.
    pub(crate) fn campus_now(&self) -> UnixMillis {
        self.start_wall.saturating_add_millis(self.mono_ms)
    }

    /// An order request leaves the till only about an open order whose intent is durable: a
    /// submit with the intent's amount, method and code, a reversal only after its
    /// `OrderReversing`. (A request queued by the link's return once left with the next input,
    /// after its order could have closed: `when_the_link_comes_back_the_pending_order_is_asked_about_at_once`.)
    pub(crate) fn check_order_call(&mut self, call: &OrderCall) -> Result<(), String> {
        self.check_order_call_now(call)
    }

    fn check_order_call_now(&self, call: &OrderCall) -> Result<(), String> {
        let seq = call.order.intent;
        ensure!(
            call.order.terminal == self.terminal,
            "order request {call:?} names another terminal"
        );
        let Some((at, intent)) = self.books.orders.get(&seq) else {
            return Err(format!(
                "order request {call:?} for no durable order intent"
            ));
        };
        ensure!(
            self.books.open_orders.contains(&seq),
            "order request {call:?} for order {seq}, which ended: {:?}",
            self.books.order_ends.get(&seq)
        );
        match &call.request {
            OrderRequest::Submit {
                amount,
                method,
                code,
                at: sale_at,
            } => ensure!(
                *amount == intent.amount
                    && *method == intent.method
                    && code.digest() == intent.code
                    && sale_at == at
                    && !self.books.reversing.contains(&seq),
                "submit {call:?} is not order {seq} {intent:?} at {at:?} (reversing: {})",
                self.books.reversing.contains(&seq)
            ),
            OrderRequest::Reverse => ensure!(
                self.books.reversing.contains(&seq),
                "a reversal of order {seq} left before its OrderReversing was journaled"
            ),
            OrderRequest::Query => {}
        }
        Ok(())
    }

    /// An order request the till made: onto the network (the link is down: not sent at once).
    pub(crate) fn route_order(&mut self, call: OrderCall) -> Result<(), String> {
        self.stats.order_requests += 1;
        if !self.link_connected {
            self.stats.not_sent += 1;
            self.campus
                .immediate
                .push_back(Input::OrderNotSent(call.order));
            return Ok(());
        }
        match self.campus.delivery(&mut self.rng) {
            Delivery::AtOnce => self.campus_takes(call, 0),
            Delivery::Delayed {
                request_ms,
                answer_ms,
            } => {
                self.stats.delayed += 1;
                let at = self.mono_ms + request_ms;
                self.campus
                    .in_flight
                    .push((at, Flight::Request { call, answer_ms }));
                Ok(())
            }
            Delivery::LostRequest => {
                self.stats.lost_requests += 1;
                Ok(())
            }
            Delivery::LostAnswer => {
                // (The back end's own "no answer" is counted by `campus_acts`.)
                if self.campus_acts(&call)?.is_some() {
                    self.stats.lost_answers += 1;
                }
                Ok(())
            }
            Delivery::NotSent => {
                self.stats.not_sent += 1;
                self.campus
                    .immediate
                    .push_back(Input::OrderNotSent(call.order));
                Ok(())
            }
        }
    }

    /// The back end acts on `call`; None: its scripted "no answer".
    fn campus_acts(&mut self, call: &OrderCall) -> Result<Option<OrderResult>, String> {
        let now = self.campus_now();
        let result = self
            .campus
            .backend
            .handle_call(call, now)
            .map_err(|e| format!("the in-memory back end failed: {e}"))?;
        if result.is_none() {
            self.stats.lost_answers += 1;
        }
        Ok(result)
    }

    /// The request arrives: the back end acts, its answer travels back `answer_ms`.
    fn campus_takes(&mut self, call: OrderCall, answer_ms: u64) -> Result<(), String> {
        let Some(result) = self.campus_acts(&call)? else {
            return Ok(());
        };
        if answer_ms == 0 {
            if self.link_connected {
                self.campus.immediate.push_back(Input::OrderResult(result));
            }
        } else {
            let epoch = self.link_epoch;
            let at = self.mono_ms + answer_ms;
            self.campus
                .in_flight
                .push((at, Flight::Answer { result, epoch }));
        }
        Ok(())
    }

    /// Delivers every message that has arrived by now (requests to the back end, answers to the
    /// till on the link connection they left on).
    pub(crate) fn deliver_arrived(&mut self) -> Result<(), String> {
        loop {
            let due = self
                .campus
                .in_flight
                .iter()
                .position(|(at, _)| *at <= self.mono_ms);
            let Some(index) = due else { return Ok(()) };
            let (_, flight) = self.campus.in_flight.remove(index);
            match flight {
                Flight::Request { call, answer_ms } => self.campus_takes(call, answer_ms)?,
                Flight::Answer { result, epoch } => {
                    if epoch == self.link_epoch && self.link_connected {
                        self.input(Input::OrderResult(result))?;
                    } else {
                        self.stats.lost_answers += 1;
                    }
                }
            }
        }
    }

    /// Every journal record and the snapshot are free of every code the phones showed.
    pub(crate) fn check_no_code_in(&self, record: &JournalRecord) -> Result<(), String> {
        let bytes = shared::codec::encode_record(record);
        if let Some(code) = self.campus.code_in(&bytes) {
            let hint: String = code.chars().rev().take(4).collect();
            return Err(format!(
                "record {} carries a payment code in clear (…{})",
                record.seq,
                hint.chars().rev().collect::<String>()
            ));
        }
        Ok(())
    }

    /// Every file in the data directory is free of every code the phones showed.
    pub(crate) fn check_no_code_on_disk(&self) -> Result<(), String> {
        let mut dirs = vec![self.dir.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for entry in entries {
                let path = entry.map_err(|e| e.to_string())?.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                ensure!(
                    self.campus.code_in(&bytes).is_none(),
                    "{} holds a payment code in clear",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// The end of a session: the link up, a reliable network, and time until the till has no
    /// pending order and nothing is on the way (bounded).
    pub(crate) fn settle_orders(&mut self) -> Result<(), String> {
        self.campus.reliable = true;
        if !self.link_connected {
            self.link_up()?;
        }
        for _ in 0..SETTLE_ORDER_ROUNDS {
            if self.snapshot()?.pending_orders.is_empty() && self.campus.in_flight() == 0 {
                return Ok(());
            }
            // Clear sends an order waiting on screen to the background (or cancels it).
            self.press(TillKey::Clear)?;
            self.advance(SETTLE_ORDER_ROUND_MS)?;
        }
        Err(format!(
            "after {SETTLE_ORDER_ROUNDS} rounds of {SETTLE_ORDER_ROUND_MS} ms, orders {:?} are \
             still pending and {} messages on the way",
            self.snapshot()?
                .pending_orders
                .iter()
                .map(|p| p.intent)
                .collect::<Vec<_>>(),
            self.campus.in_flight()
        ))
    }

    /// The campus ledger equals the till's journal (see the module header).
    pub(crate) fn check_ledger(&mut self) -> Result<(), String> {
        let books = &self.books;
        let mut booked: BTreeMap<Seq, Booked> = BTreeMap::new();
        let mut ledger_net: HashMap<Payer, i64> = HashMap::new();
        for entry in self.campus.backend.ledger() {
            ensure!(
                entry.order.terminal == self.terminal && entry.terminal == self.terminal,
                "ledger line {entry:?} names another terminal"
            );
            let seq = entry.order.intent;
            let Some((_, intent)) = books.orders.get(&seq) else {
                return Err(format!(
                    "ledger line {entry:?} for no order intent of the till"
                ));
            };
            ensure!(
                entry.amount == intent.amount && entry.method == intent.method,
                "ledger line {entry:?} is not order {seq} {intent:?}"
            );
            let payer = Payer::of_code(intent.method, entry.payer);
            let line = booked.entry(seq).or_default();
            ensure!(
                line.payer.is_none_or(|p| p == payer),
                "order {seq} booked for two payers"
            );
            line.payer = Some(payer);
            let fen = entry.amount.get() as i64;
            let net = ledger_net.entry(payer).or_default();
            match entry.kind {
                EntryKind::Charge => {
                    line.charges += 1;
                    *net += fen;
                }
                EntryKind::Refund => {
                    line.refunds += 1;
                    *net -= fen;
                }
            }
            ensure!(
                line.charges <= 1 && line.refunds <= line.charges,
                "order {seq} charged {} times and refunded {} times",
                line.charges,
                line.refunds
            );
        }
        let mut journal_net: HashMap<Payer, i64> = HashMap::new();
        for (seq, (_, intent)) in &books.orders {
            let Some(end) = books.order_ends.get(seq) else {
                return Err(format!("order {seq} never ended: {intent:?}"));
            };
            let line = booked.get(seq).copied().unwrap_or_default();
            let kept = line.charges == 1 && line.refunds == 0;
            match end {
                OrderOutcome::Paid(paid) => {
                    ensure!(
                        kept && line.payer == Some(paid.payer),
                        "order {seq} is paid by {} in the journal, the ledger says {line:?}",
                        paid.payer
                    );
                    *journal_net.entry(paid.payer).or_default() += paid.amount.get() as i64;
                }
                OrderOutcome::Closed(OrderEnd::Reversed { refunded: true }) => ensure!(
                    line.charges == 1 && line.refunds == 1,
                    "order {seq} is reversed and refunded in the journal, the ledger says {line:?}"
                ),
                OrderOutcome::Closed(end) => ensure!(
                    line.charges == 0,
                    "order {seq} ended {end:?} in the journal, the ledger says {line:?}"
                ),
            }
        }
        ledger_net.retain(|_, net| *net != 0);
        ensure!(
            journal_net == ledger_net,
            "the journal's paid orders per payer {journal_net:?} are not the ledger's net {ledger_net:?}"
        );
        for (account, opening) in &self.campus.accounts {
            let now = self.campus.backend.balance(*account).unwrap_or(Fen::ZERO);
            let lost = opening.get() as i64 - now.get() as i64;
            let paid = journal_net
                .get(&Payer::VirtualCard(*account))
                .copied()
                .unwrap_or(0);
            ensure!(
                lost == paid,
                "virtual account {account} lost {lost} fen, its paid orders in the journal sum to {paid}"
            );
        }
        for order in self.campus.backend.orders() {
            ensure!(
                !matches!(order.state(), OrderState::UserPaying),
                "the back end still waits for the payer of order {}",
                order.id
            );
        }
        // A late "paid" for an order the till closed unpaid would be money moved without a sale.
        // This back end never pays an order after it declined or reversed it, and a reversal of
        // a paid order refunds it (the till then closes it refunded, never chased): none.
        ensure!(
            books.paid_after_close.is_empty(),
            "OrderPaidAfterClose for {:?}: the back end never pays a closed order",
            books.paid_after_close
        );
        Ok(())
    }
}

#[test]
fn a_code_in_clear_is_found_among_record_bytes_and_its_hint_alone_is_not() {
    let mut rng = Rng::new(7);
    let mut campus = Campus::new(&mut rng);
    let now = UnixMillis(START_LOCAL_MIDNIGHT_MS);
    let codes: Vec<String> = (0..40)
        .filter_map(|_| campus.make_code(&mut rng, now))
        .collect();
    assert!(codes.iter().any(|c| c.starts_with("CV1")) && codes.iter().any(|c| c.len() == 18));
    for code in &codes {
        let mut bytes = vec![0u8, 18, b'7', b'1'];
        bytes.extend_from_slice(code.as_bytes());
        bytes.extend_from_slice(&[b'9', 0xFF, 0]);
        assert_eq!(campus.code_in(&bytes), Some(code.as_str()));
        let hint = &code.as_bytes()[code.len() - 4..];
        assert_eq!(campus.code_in(hint), None);
    }
}
