//! The simulated campus's payment back end: the campus account ledger that virtual-card codes
//! pay from, and an aggregator for WeChat Pay, Alipay and UnionPay whose behaviour each code
//! chooses (`codes`). Sans-IO like the rest of the campus side: no clock, no threads; the caller
//! hands in every call with the campus's time. The script runner uses it in memory, the campus
//! simulator durably (`PaymentBackend::open`). `docs/code-payments.md` is the prose version.
//!
//! The rules it keeps (the header of `shared::pay` is the contract):
//! - an order is stored by its [`OrderId`], the idempotency key: a submit for a known id answers
//!   the order's current state and charges nothing more, whatever its code; a reversal of an
//!   unknown id leaves a closed tombstone, so a submit arriving after it is answered
//!   `Reversed { refunded: false }` and never charged;
//! - a call naming another terminal than the one it came from (the campus passes the MQTT
//!   topic's terminal to [`PaymentBackend::handle_call_from`]) is refused: not stored, not
//!   answered, an ALARM in the log;
//! - a virtual-card code is charged only if its campus signature verifies, it is inside its
//!   validity at the campus's clock, its nonce was never seen (a nonce is spent by the first
//!   order that presents it with a good signature and time, whatever happens next), the account
//!   is known and not frozen, and the balance covers the amount;
//! - a wallet code is paid, declined or left "user paying" as its digits choose; a payer that
//!   confirms later is charged at the moment it confirms (booked then), whether or not anyone
//!   asks;
//! - a reversal closes an order for good: unpaid → `Reversed { refunded: false }`; paid →
//!   refunded and `Reversed { refunded: true }`; reversed → the same answer again; declined →
//!   stays declined. The reversal's answer is the truth the till shows and journals;
//! - every charge and refund is a [`LedgerEntry`], in booking order: per campus account, its
//!   charges minus its refunds are what its balance lost;
//! - an offline virtual-card sale a till uploads is settled once by (terminal, seq), and its
//!   nonce spent like an order's (`offline.rs` has its rules: replays and limits are alarms);
//! - durable: every call is appended to the call log and fdatasynced before its answer is
//!   returned; opening replays the log (deterministically) to the same state.

mod codes;
mod log;
mod offline;
mod qr;
#[cfg(test)]
mod tests;

pub use codes::{
    behaviour_of, virtual_card_code, wallet_code, WalletBehaviour, SIM_VIRTUAL_CARD_VALIDITY_S,
};
pub use log::{CallLog, Logged, LOG_MAGIC, MAX_RECORD_BYTES, OFFLINE_SALE_TAG, QR_PAY_TAG};
pub use offline::{OfflineAlarm, OfflineRules, OfflineSettlement};
pub use qr::{qr_amount, sim_terminal_qr_key, QrRefusal, SIM_QR_MASTER_KEY};

use shared::pay::{
    CodePayer, DeclineReason, OrderCall, OrderId, OrderRequest, OrderResult, OrderState,
};
use shared::paycode::{
    signing_key_from_seed, CampusVerifyingKey, CodeHint, CodeMethod, PaymentCode, VirtualAccount,
    VirtualCardRefusal,
};
use shared::record::SalesTally;
use shared::{Fen, LocalDay, Seq, TerminalId, UnixMillis};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::path::Path;

/// The simulated campus's Ed25519 seed (its signing key for virtual-card codes). A test key:
/// public in this repository, never a real campus's.
pub const SIM_CAMPUS_KEY_SEED: [u8; 32] = *b"campus-sim virtual card key v1.\0";
/// The key id the simulated campus signs with.
pub const SIM_CAMPUS_KEY_ID: u8 = 1;
/// Seconds after the submit that a payer answering the phone's duplicate-payment prompt
/// confirms.
pub const DUPLICATE_PROMPT_CONFIRM_S: u64 = 8;
/// The largest single code payment the back end takes; above it: `Declined(OverLimit)`.
pub const MAX_CODE_PAYMENT: Fen = Fen::from_yuan(1_000);
/// The back end's own decline code for a submit of zero fen (`DeclineReason::Other`).
pub const DECLINE_ZERO_AMOUNT: u16 = 1;
/// Milliseconds per second.
const MS_PER_S: u64 = 1_000;

/// Whether a code payment of `amount` may be taken at all.
fn check_amount(amount: Fen) -> Result<(), DeclineReason> {
    if amount.is_zero() {
        Err(DeclineReason::Other(DECLINE_ZERO_AMOUNT))
    } else if amount > MAX_CODE_PAYMENT {
        Err(DeclineReason::OverLimit)
    } else {
        Ok(())
    }
}

/// Where a wallet code's order starts (its behaviour chooses), and whether the submit is
/// answered.
fn wallet_progress(code: &PaymentCode, now: UnixMillis) -> (Progress, bool) {
    let payer = CodePayer::Wallet(codes::wallet_payer_of(code.expose()));
    let paying = |paid_at, paid_on_reversal| Progress::Paying {
        payer,
        paid_at,
        paid_on_reversal,
    };
    let in_s = |s: u64| Some(now.saturating_add_millis(s * MS_PER_S));
    let progress = match behaviour_of(code.expose()).unwrap_or(WalletBehaviour::PaidAtOnce) {
        WalletBehaviour::PaidAtOnce | WalletBehaviour::NoAnswer => paying(Some(now), false),
        WalletBehaviour::UserPayingThenPaid { after_s } => paying(in_s(u64::from(after_s)), false),
        WalletBehaviour::DuplicatePrompt => paying(in_s(DUPLICATE_PROMPT_CONFIRM_S), false),
        WalletBehaviour::UserPayingNever => paying(None, false),
        WalletBehaviour::PaidDuringReversal => paying(None, true),
        WalletBehaviour::Declined(reason) => Progress::Settled(OrderState::Declined(reason)),
    };
    let answered = behaviour_of(code.expose()) != Some(WalletBehaviour::NoAnswer);
    (progress, answered)
}

/// What a merchant's statement calls a line's way of paying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementType {
    /// 卡消费: a campus card tapped on the till.
    CardSale,
    /// 付款码: the payer's code scanned by the till (every code this back end takes).
    PaymentCode,
    /// 扫一扫: the payer scanned the merchant's code.
    ScanToPay,
    /// 其它: anything else.
    Other,
}

impl StatementType {
    /// The words the statement prints.
    pub fn label(self) -> &'static str {
        match self {
            StatementType::CardSale => "卡消费",
            StatementType::PaymentCode => "付款码",
            StatementType::ScanToPay => "扫一扫",
            StatementType::Other => "其它",
        }
    }
}

/// Whether a ledger line took money or gave it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Charge,
    Refund,
}

/// One line of the merchant's statement: a charge or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerEntry {
    pub order: OrderId,
    pub terminal: TerminalId,
    pub kind: EntryKind,
    pub statement: StatementType,
    pub method: CodeMethod,
    pub payer: CodePayer,
    pub amount: Fen,
    /// The till's clock when the merchant made the sale (the submit's `at`).
    pub sale_at: UnixMillis,
    /// The campus's clock when the money moved.
    pub booked_at: UnixMillis,
}

/// What an order's submit asked for (the code itself is not kept: only its hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sale {
    pub method: CodeMethod,
    pub amount: Fen,
    pub hint: CodeHint,
    /// The till's clock at the sale.
    pub at: UnixMillis,
    /// The campus's clock when the submit arrived.
    pub submitted_at: UnixMillis,
}

/// Where an order stands inside the back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Paid, declined or reversed.
    Settled(OrderState),
    /// The payer must confirm on the phone.
    Paying {
        payer: CodePayer,
        /// When the payer confirms (None: only a reversal finds out, or never).
        paid_at: Option<UnixMillis>,
        /// The payer confirms just as the reversal arrives.
        paid_on_reversal: bool,
    },
}

/// One order as the back end holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: OrderId,
    /// None: closed by a reversal before any submit arrived (a tombstone).
    pub sale: Option<Sale>,
    progress: Progress,
}

impl OrderRecord {
    /// The order's state as a query answers it.
    pub fn state(&self) -> OrderState {
        match self.progress {
            Progress::Settled(state) => state,
            Progress::Paying { .. } => OrderState::UserPaying,
        }
    }
}

/// The campus's payment back end (see the module header for its rules).
#[derive(Debug)]
pub struct PaymentBackend {
    key: CampusVerifyingKey,
    balances: BTreeMap<VirtualAccount, Fen>,
    frozen: BTreeSet<VirtualAccount>,
    nonces: HashSet<u64>,
    orders: BTreeMap<OrderId, OrderRecord>,
    /// Orders whose payer confirms at a known time, by that time.
    due: BTreeSet<(UnixMillis, OrderId)>,
    ledger: Vec<LedgerEntry>,
    log: Option<CallLog>,
    /// Uploaded offline sales settled, by (terminal, seq of the record).
    offline: BTreeMap<(TerminalId, Seq), OfflineSettlement>,
    /// What each account paid offline per local day, across every till.
    offline_days: BTreeMap<(VirtualAccount, LocalDay), SalesTally>,
    /// What offline sales an account's balance did not cover.
    debts: BTreeMap<VirtualAccount, Fen>,
    /// Offline sales that raised an alarm.
    offline_alarms: u64,
    offline_rules: Option<OfflineRules>,
}

impl PaymentBackend {
    /// In memory (the script runner, unit tests).
    pub fn new(
        key_seed: [u8; 32],
        accounts: impl IntoIterator<Item = (VirtualAccount, Fen)>,
    ) -> Self {
        Self::new_with_frozen(key_seed, accounts, [])
    }

    /// In memory, with some accounts frozen (they decline every virtual-card code).
    pub fn new_with_frozen(
        key_seed: [u8; 32],
        accounts: impl IntoIterator<Item = (VirtualAccount, Fen)>,
        frozen: impl IntoIterator<Item = VirtualAccount>,
    ) -> Self {
        PaymentBackend {
            key: signing_key_from_seed(key_seed).verifying_key(),
            balances: accounts.into_iter().collect(),
            frozen: frozen.into_iter().collect(),
            nonces: HashSet::new(),
            orders: BTreeMap::new(),
            due: BTreeSet::new(),
            ledger: Vec::new(),
            log: None,
            offline: BTreeMap::new(),
            offline_days: BTreeMap::new(),
            debts: BTreeMap::new(),
            offline_alarms: 0,
            offline_rules: None,
        }
    }

    /// Durable: replays the call log at `path` (creating it), and from then on appends every
    /// call with its time and fdatasyncs it BEFORE handle_call returns its answer. The accounts
    /// are the opening balances the log's calls start from (give the same ones every time).
    pub fn open(
        path: &Path,
        key_seed: [u8; 32],
        accounts: impl IntoIterator<Item = (VirtualAccount, Fen)>,
    ) -> io::Result<Self> {
        Self::open_with_frozen(path, key_seed, accounts, [])
    }

    /// Durable, with some accounts frozen (give the same ones every time).
    pub fn open_with_frozen(
        path: &Path,
        key_seed: [u8; 32],
        accounts: impl IntoIterator<Item = (VirtualAccount, Fen)>,
        frozen: impl IntoIterator<Item = VirtualAccount>,
    ) -> io::Result<Self> {
        Self::new_with_frozen(key_seed, accounts, frozen).durable(path)
    }

    /// This in-memory back end (its accounts and rules as it starts) made durable: replays the
    /// call log at `path` (creating it) and appends to it from then on.
    pub fn durable(self, path: &Path) -> io::Result<Self> {
        let (log, calls) = CallLog::open(path)?;
        let mut backend = self;
        for (now, logged) in &calls {
            match logged {
                Logged::Call(call) => {
                    backend.apply(call, *now);
                }
                Logged::QrPay { payload, account } => {
                    // Its answer was given when it was logged; the replay rebuilds its effect.
                    let _ = backend.apply_qr_pay(payload, *account, *now);
                }
                Logged::OfflineSale {
                    terminal,
                    seq,
                    sale,
                } => {
                    backend.apply_offline_sale(*terminal, *seq, sale, *now);
                }
            }
        }
        backend.log = Some(log);
        Ok(backend)
    }

    /// One request of a till; None: the scripted "no answer" (nothing goes back). Trusts the
    /// call's terminal (the script runner, where there is one till); the campus side uses
    /// [`PaymentBackend::handle_call_from`].
    pub fn handle_call(
        &mut self,
        call: &OrderCall,
        now: UnixMillis,
    ) -> io::Result<Option<OrderResult>> {
        if let Some(log) = &mut self.log {
            log.append(now, call)?;
        }
        Ok(self.apply(call, now))
    }

    /// One request that arrived on terminal `from`'s topic: refused (None, an ALARM in the
    /// log, nothing stored) if the order names another terminal.
    pub fn handle_call_from(
        &mut self,
        from: TerminalId,
        call: &OrderCall,
        now: UnixMillis,
    ) -> io::Result<Option<OrderResult>> {
        if call.order.terminal != from {
            tracing::error!(
                "ALARM payment call for order {} arrived from terminal {from}: refused",
                call.order
            );
            return Ok(None);
        }
        self.handle_call(call, now)
    }

    pub fn balance(&self, account: VirtualAccount) -> Option<Fen> {
        self.balances.get(&account).copied()
    }

    /// Every charge and refund, in booking order.
    pub fn ledger(&self) -> &[LedgerEntry] {
        &self.ledger
    }

    pub fn order(&self, id: OrderId) -> Option<&OrderRecord> {
        self.orders.get(&id)
    }

    pub fn orders(&self) -> impl Iterator<Item = &OrderRecord> {
        self.orders.values()
    }

    /// Acts on one call (already logged) and answers it.
    fn apply(&mut self, call: &OrderCall, now: UnixMillis) -> Option<OrderResult> {
        self.settle_due(now);
        let id = call.order;
        let state = match &call.request {
            OrderRequest::Submit {
                amount,
                method,
                code,
                at,
            } => match self.orders.get(&id) {
                Some(order) => order.state(),
                None => {
                    let (state, answered) = self.submit(id, *amount, *method, code, *at, now);
                    if !answered {
                        return None;
                    }
                    state
                }
            },
            OrderRequest::Query => self
                .orders
                .get(&id)
                .map_or(OrderState::NotFound, OrderRecord::state),
            OrderRequest::Reverse => self.reverse(id, now),
        };
        Some(OrderResult {
            order: id,
            state,
            server_time: now,
        })
    }

    /// Books the payers who confirmed by `now`, in the order they confirmed.
    fn settle_due(&mut self, now: UnixMillis) {
        while let Some(&(paid_at, id)) = self.due.first() {
            if paid_at > now {
                break;
            }
            self.due.pop_first();
            if let Some(order) = self.orders.get(&id).copied() {
                if let Progress::Paying { payer, .. } = order.progress {
                    self.charge_wallet(&order, payer, paid_at);
                }
            }
        }
    }

    /// A new order: decides it, stores it, books it. Answers its state and whether the
    /// answer goes back.
    fn submit(
        &mut self,
        id: OrderId,
        amount: Fen,
        method: CodeMethod,
        code: &PaymentCode,
        at: UnixMillis,
        now: UnixMillis,
    ) -> (OrderState, bool) {
        let sale = Sale {
            method,
            amount,
            hint: code.hint(),
            at,
            submitted_at: now,
        };
        // The code came off the network: recognise it again, whatever it claims to be.
        let recognised = PaymentCode::recognise(code.expose()).ok();
        let claimed_right = |c: &PaymentCode| c.method() == method && code.method() == method;
        let mut order = OrderRecord {
            id,
            sale: Some(sale),
            progress: Progress::Settled(OrderState::Declined(DeclineReason::CodeInvalid)),
        };
        let mut answered = true;
        let decline = |reason| Progress::Settled(OrderState::Declined(reason));
        order.progress = match recognised {
            None => decline(DeclineReason::CodeInvalid),
            Some(code) if code.method().is_campus() => {
                match self.check_virtual_card(&code, claimed_right(&code), amount, now) {
                    Ok(account) => {
                        self.orders.insert(id, order);
                        return (self.charge_campus(id, account, now), true);
                    }
                    Err(reason) => decline(reason),
                }
            }
            Some(code) if !claimed_right(&code) => decline(DeclineReason::CodeInvalid),
            Some(code) => match check_amount(amount) {
                Err(reason) => decline(reason),
                Ok(()) => {
                    let (progress, answers) = wallet_progress(&code, now);
                    answered = answers;
                    progress
                }
            },
        };
        self.orders.insert(id, order);
        if let Progress::Paying {
            paid_at: Some(paid_at),
            ..
        } = order.progress
        {
            self.due.insert((paid_at, id));
            // Paid at once: booked now, before the answer.
            self.settle_due(now);
        }
        let state = self
            .orders
            .get(&id)
            .map_or(OrderState::NotFound, OrderRecord::state);
        (state, answered)
    }

    /// Whether a virtual-card code may pay `amount` now: its account, or why not. Spends the
    /// nonce of a code whose signature and time are good, whatever comes after (a code that
    /// reached the call log is spent). `claimed_right`: the submit called it a virtual card.
    fn check_virtual_card(
        &mut self,
        code: &PaymentCode,
        claimed_right: bool,
        amount: Fen,
        now: UnixMillis,
    ) -> Result<VirtualAccount, DeclineReason> {
        let fields = code.virtual_card().ok_or(DeclineReason::CodeInvalid)?;
        let key = self.key;
        let keys = |id: u8| (id == SIM_CAMPUS_KEY_ID).then_some(key);
        fields.verify(&keys, now).map_err(|refusal| match refusal {
            VirtualCardRefusal::Expired => DeclineReason::CodeExpired,
            VirtualCardRefusal::BadSignature
            | VirtualCardRefusal::UnknownKey(_)
            | VirtualCardRefusal::NotYetValid => DeclineReason::CodeInvalid,
        })?;
        if !self.nonces.insert(fields.nonce) {
            return Err(DeclineReason::CodeUsed);
        }
        // From here on the code is spent, whatever the answer.
        if !claimed_right {
            return Err(DeclineReason::CodeInvalid);
        }
        check_amount(amount)?;
        if self.frozen.contains(&fields.account) {
            return Err(DeclineReason::AccountFrozen);
        }
        let balance = self
            .balances
            .get(&fields.account)
            .ok_or(DeclineReason::AccountFrozen)?;
        if *balance < amount {
            return Err(DeclineReason::InsufficientFunds);
        }
        Ok(fields.account)
    }

    /// Charges a stored virtual-card order (its balance was checked) and marks it paid.
    fn charge_campus(
        &mut self,
        id: OrderId,
        account: VirtualAccount,
        now: UnixMillis,
    ) -> OrderState {
        let Some(order) = self.orders.get(&id).copied() else {
            return OrderState::NotFound;
        };
        let Some(sale) = order.sale else {
            return order.state();
        };
        let after = self
            .balances
            .get(&account)
            .and_then(|b| b.checked_sub(sale.amount));
        let Some(after) = after else {
            let state = OrderState::Declined(DeclineReason::InsufficientFunds);
            self.set_progress(id, Progress::Settled(state));
            return state;
        };
        self.balances.insert(account, after);
        let payer = CodePayer::Campus(account);
        self.book(&order, sale, EntryKind::Charge, payer, now);
        let state = OrderState::Paid {
            payer,
            balance_after: Some(after),
            booked_at: now,
        };
        self.set_progress(id, Progress::Settled(state));
        state
    }

    /// Charges a wallet order whose payer confirmed at `paid_at`.
    fn charge_wallet(&mut self, order: &OrderRecord, payer: CodePayer, paid_at: UnixMillis) {
        let Some(sale) = order.sale else {
            return;
        };
        self.book(order, sale, EntryKind::Charge, payer, paid_at);
        self.set_progress(
            order.id,
            Progress::Settled(OrderState::Paid {
                payer,
                balance_after: None,
                booked_at: paid_at,
            }),
        );
    }

    /// Closes an order for good (see the module header) and answers its final state.
    fn reverse(&mut self, id: OrderId, now: UnixMillis) -> OrderState {
        let Some(order) = self.orders.get(&id).copied() else {
            let state = OrderState::Reversed { refunded: false };
            self.orders.insert(
                id,
                OrderRecord {
                    id,
                    sale: None,
                    progress: Progress::Settled(state),
                },
            );
            return state;
        };
        let payer = match order.progress {
            Progress::Settled(OrderState::Paid { payer, .. }) => payer,
            Progress::Paying {
                payer,
                paid_on_reversal: true,
                ..
            } => {
                // The payer confirmed as the reversal arrived: charged, then refunded.
                self.charge_wallet(&order, payer, now);
                payer
            }
            Progress::Paying { paid_at, .. } => {
                if let Some(paid_at) = paid_at {
                    self.due.remove(&(paid_at, id));
                }
                let state = OrderState::Reversed { refunded: false };
                self.set_progress(id, Progress::Settled(state));
                return state;
            }
            Progress::Settled(state) => return state,
        };
        let Some(sale) = order.sale else {
            return order.state();
        };
        if let CodePayer::Campus(account) = payer {
            let balance = self.balances.get(&account).copied().unwrap_or(Fen::ZERO);
            match balance.checked_add(sale.amount) {
                Some(after) => {
                    self.balances.insert(account, after);
                }
                None => tracing::error!(
                    "ALARM refund of order {id} overflows account {account}'s balance"
                ),
            }
        }
        self.book(&order, sale, EntryKind::Refund, payer, now);
        let state = OrderState::Reversed { refunded: true };
        self.set_progress(id, Progress::Settled(state));
        state
    }

    fn set_progress(&mut self, id: OrderId, progress: Progress) {
        if let Some(order) = self.orders.get_mut(&id) {
            order.progress = progress;
        }
    }

    fn book(
        &mut self,
        order: &OrderRecord,
        sale: Sale,
        kind: EntryKind,
        payer: CodePayer,
        booked_at: UnixMillis,
    ) {
        self.ledger.push(LedgerEntry {
            order: order.id,
            terminal: order.id.terminal,
            kind,
            statement: StatementType::PaymentCode,
            method: sale.method,
            payer,
            amount: sale.amount,
            sale_at: sale.at,
            booked_at,
        });
    }
}
