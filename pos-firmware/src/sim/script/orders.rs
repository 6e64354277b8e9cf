//! The simulator's own campus for code payments: the back end of `sim::payments` in memory, with
//! named demo accounts, a switch that takes it down or silences it (to test a lost link), and
//! the codes a script line or the terminal simulator's picker asks for by name ("a WeChat code
//! that is paid after 8 s", "a virtual card of alice"). The script runner answers the till's
//! orders with it when it runs without a link; the terminal simulator with `--backend local`
//! while no daemon is connected. It lives in the front end, not in the till: the till restarts,
//! the campus does not. Lines and names: `docs/script.md`, "Code payments".

use shared::pay::{DeclineReason, OrderCall, OrderResult};
use shared::paycode::{CodeMethod, VirtualAccount};
use shared::record::Payer;
use shared::{Fen, Seq, UnixMillis};
use std::collections::BTreeMap;

use crate::sim::payments::{
    virtual_card_code, wallet_code, EntryKind, PaymentBackend, WalletBehaviour,
    SIM_CAMPUS_KEY_SEED, SIM_VIRTUAL_CARD_VALIDITY_S,
};

/// The campus accounts a script starts with (name, account, balance) unless it declares its
/// own with `backend account` before the first code payment.
pub const DEFAULT_ACCOUNTS: [(&str, u64, Fen); 3] = [
    ("alice", 2_026_000_001, Fen::from_yuan(100)),
    ("bob", 2_026_000_002, Fen::new(300)),
    ("carol", 2_026_000_003, Fen::from_yuan(50)),
];
/// The default account that is frozen (every virtual-card code of it is declined).
pub const DEFAULT_FROZEN: &str = "carol";
/// The most accounts a script may declare.
pub const MAX_ACCOUNTS: usize = 64;
/// How long past its validity an expired virtual-card code was issued (seconds), so the
/// campus's clock skew allowance cannot make it valid again.
pub const EXPIRED_CODE_AGE_S: u64 = SIM_VIRTUAL_CARD_VALIDITY_S as u64 + 60;
/// The first serial of the wallet codes made by name (a code names its payer by its serial).
pub const FIRST_WALLET_SERIAL: u32 = 1;

/// Whether the campus answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendMode {
    /// It answers every request.
    Up,
    /// Requests do not reach it: each is "not sent" at once (as a daemon without broker says).
    Down,
    /// Requests reach it (and act) but no answer comes back.
    Silent,
}

/// What became of one order request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAnswer {
    /// The campus answered.
    Result(OrderResult),
    /// The request never reached it, with why.
    NotSent(String),
    /// It reached it, and nothing came back (a silent campus, or the scripted "no answer").
    Silent,
}

/// A campus account with the name scripts use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    pub name: String,
    pub account: VirtualAccount,
    pub opening: Fen,
    pub frozen: bool,
}

/// A code to put on the scanner, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSpec {
    /// A wallet code choosing a behaviour; `payer`: its serial (the same serial is the same
    /// payer), else the next one.
    Wallet {
        method: CodeMethod,
        behaviour: WalletBehaviour,
        payer: Option<u32>,
    },
    /// A fresh virtual-card code of an account (name or number).
    Virtual { account: String },
    /// A virtual-card code of an account issued long enough ago to be expired.
    VirtualExpired { account: String },
    /// The last virtual-card code made, again (its nonce is spent once it paid).
    VirtualReplay,
}

/// The simulator's campus: the payment back end and its accounts.
#[derive(Debug)]
pub struct LocalCampus {
    accounts: Vec<DemoAccount>,
    /// Built on first use, from the accounts declared by then.
    backend: Option<PaymentBackend>,
    mode: BackendMode,
    next_serial: u32,
    next_nonce: u64,
    last_virtual: Option<String>,
    /// Whether the script declared accounts (the first declaration replaces the defaults).
    declared: bool,
}

impl Default for LocalCampus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalCampus {
    /// The campus with [`DEFAULT_ACCOUNTS`], up.
    pub fn new() -> LocalCampus {
        LocalCampus {
            accounts: DEFAULT_ACCOUNTS
                .iter()
                .map(|&(name, account, opening)| DemoAccount {
                    name: name.to_string(),
                    account: VirtualAccount(account),
                    opening,
                    frozen: name == DEFAULT_FROZEN,
                })
                .collect(),
            backend: None,
            mode: BackendMode::Up,
            next_serial: FIRST_WALLET_SERIAL,
            next_nonce: 1,
            last_virtual: None,
            declared: false,
        }
    }

    pub fn accounts(&self) -> &[DemoAccount] {
        &self.accounts
    }

    pub fn mode(&self) -> BackendMode {
        self.mode
    }

    pub fn set_mode(&mut self, mode: BackendMode) {
        self.mode = mode;
    }

    /// Declares an account (replacing the defaults at the first declaration); only before the
    /// campus answered its first request.
    pub fn declare_account(&mut self, declared: DemoAccount) -> Result<(), String> {
        if self.backend.is_some() {
            return Err("accounts must be declared before the first code payment".into());
        }
        if !self.declared {
            self.accounts.clear();
        }
        if self
            .accounts
            .iter()
            .any(|a| a.name == declared.name || a.account == declared.account)
        {
            return Err(format!(
                "account '{}' ({}) is declared twice",
                declared.name, declared.account
            ));
        }
        if self.accounts.len() == MAX_ACCOUNTS {
            return Err(format!("at most {MAX_ACCOUNTS} accounts"));
        }
        self.accounts.push(declared);
        self.declared = true;
        Ok(())
    }

    /// The account named `name` (its name, or its number).
    pub fn account(&self, name: &str) -> Option<&DemoAccount> {
        self.accounts
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name) || a.account.0.to_string() == name)
    }

    /// The campus app pays the offline QR `payload` from `account` at the campus's clock `now`
    /// (the phone's own network: whatever the till's link): the confirmation code, or why not.
    pub fn pay_qr(
        &mut self,
        payload: &str,
        account: VirtualAccount,
        now: UnixMillis,
    ) -> Result<u32, crate::sim::payments::QrRefusal> {
        self.backend().pay_qr(payload, account, now)
    }

    /// Makes the code `spec` asks for, at the campus's clock `now`.
    pub fn make_code(&mut self, spec: &CodeSpec, now: UnixMillis) -> Result<String, String> {
        match spec {
            CodeSpec::Wallet {
                method,
                behaviour,
                payer,
            } => {
                let serial = payer.unwrap_or_else(|| {
                    let serial = self.next_serial;
                    self.next_serial = self.next_serial.wrapping_add(1);
                    serial
                });
                Ok(wallet_code(*method, *behaviour, serial))
            }
            CodeSpec::Virtual { account } => {
                let account = self.known(account)?;
                let code = virtual_card_code(account, now, self.nonce());
                self.last_virtual = Some(code.clone());
                Ok(code)
            }
            CodeSpec::VirtualExpired { account } => {
                let account = self.known(account)?;
                let issued = UnixMillis(now.0.saturating_sub(EXPIRED_CODE_AGE_S as i64 * 1_000));
                Ok(virtual_card_code(account, issued, self.nonce()))
            }
            CodeSpec::VirtualReplay => self
                .last_virtual
                .clone()
                .ok_or_else(|| "no virtual-card code was made yet to replay".to_string()),
        }
    }

    /// Answers one order request of the till at the campus's clock `now`.
    pub fn answer(&mut self, call: &OrderCall, now: UnixMillis) -> LocalAnswer {
        if self.mode == BackendMode::Down {
            return LocalAnswer::NotSent("the campus back end is down".into());
        }
        let answered = self.backend().handle_call(call, now);
        match (answered, self.mode) {
            // In memory: a call cannot fail to be stored.
            (Err(e), _) => LocalAnswer::NotSent(format!("the campus back end failed: {e}")),
            (Ok(_), BackendMode::Silent) | (Ok(None), _) => LocalAnswer::Silent,
            (Ok(Some(result)), _) => LocalAnswer::Result(result),
        }
    }

    /// The balance of the account named `name`, as the campus holds it now.
    pub fn balance(&mut self, name: &str) -> Option<Fen> {
        let account = self.account(name)?.account;
        self.backend().balance(account)
    }

    /// Every charge and refund as text: `N entries: charge #5 ¥12.00 WeChat payer 1 | …`
    /// (orders by the seq of their intent; payers as the journal names them).
    pub fn ledger_text(&mut self) -> String {
        let entries = self.backend().ledger();
        let lines: Vec<String> = entries
            .iter()
            .map(|e| {
                let kind = match e.kind {
                    EntryKind::Charge => "charge",
                    EntryKind::Refund => "refund",
                };
                format!(
                    "{kind} #{} ¥{} {}",
                    e.order.intent.0,
                    e.amount,
                    Payer::of_code(e.method, e.payer)
                )
            })
            .collect();
        format!("{} entries: {}", lines.len(), lines.join(" | "))
    }

    /// The charges minus the refunds of every order in the ledger (fen), by the seq of its
    /// intent: what the payers lost to each order (nothing when the campus was never used).
    pub fn kept_by_order(&self) -> BTreeMap<Seq, i64> {
        let mut kept = BTreeMap::new();
        for e in self.backend.iter().flat_map(|b| b.ledger()) {
            let fen = i64::try_from(e.amount.get()).unwrap_or(i64::MAX);
            let sum: &mut i64 = kept.entry(e.order.intent).or_default();
            *sum = match e.kind {
                EntryKind::Charge => sum.saturating_add(fen),
                EntryKind::Refund => sum.saturating_sub(fen),
            };
        }
        kept
    }

    fn known(&self, name: &str) -> Result<VirtualAccount, String> {
        self.account(name)
            .map(|a| a.account)
            .ok_or_else(|| format!("no campus account '{name}'"))
    }

    fn nonce(&mut self) -> u64 {
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        nonce
    }

    fn backend(&mut self) -> &mut PaymentBackend {
        let accounts = &self.accounts;
        self.backend.get_or_insert_with(|| {
            PaymentBackend::new_with_frozen(
                SIM_CAMPUS_KEY_SEED,
                accounts.iter().map(|a| (a.account, a.opening)),
                accounts.iter().filter(|a| a.frozen).map(|a| a.account),
            )
        })
    }
}

/// The behaviours by the names scripts use.
pub const BEHAVIOUR_NAMES: [&str; 7] = [
    "paid-at-once",
    "user-paying-then-paid",
    "user-paying-never",
    "declined",
    "no-answer",
    "duplicate-prompt",
    "paid-during-reversal",
];

/// The decline reasons by name.
const REASON_NAMES: [(&str, DeclineReason); 7] = [
    ("insufficient-funds", DeclineReason::InsufficientFunds),
    ("code-expired", DeclineReason::CodeExpired),
    ("code-invalid", DeclineReason::CodeInvalid),
    ("code-used", DeclineReason::CodeUsed),
    ("account-frozen", DeclineReason::AccountFrozen),
    ("payer-cancelled", DeclineReason::PayerCancelled),
    ("over-limit", DeclineReason::OverLimit),
];

/// A wallet's name in a script (`wechat`, `alipay`, `unionpay`).
pub fn wallet_method(name: &str) -> Option<CodeMethod> {
    match name {
        "wechat" => Some(CodeMethod::WeChat),
        "alipay" => Some(CodeMethod::Alipay),
        "unionpay" => Some(CodeMethod::UnionPay),
        _ => None,
    }
}

/// Reads what follows `scan`: `Ok(None)` when it is not a named code (then it is the code's
/// raw text), `Err` when it is one but malformed.
pub fn parse_code_spec(rest: &str) -> Result<Option<CodeSpec>, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let Some((&first, args)) = words.split_first() else {
        return Ok(None);
    };
    if let Some(method) = wallet_method(first) {
        return parse_wallet(method, args).map(Some);
    }
    let account = || -> Result<String, String> {
        match args {
            [account] => Ok((*account).to_string()),
            _ => Err(format!("usage: scan {first} ACCOUNT")),
        }
    };
    match first {
        "virtual" => Ok(Some(CodeSpec::Virtual {
            account: account()?,
        })),
        "virtual-expired" => Ok(Some(CodeSpec::VirtualExpired {
            account: account()?,
        })),
        "virtual-replay" if args.is_empty() => Ok(Some(CodeSpec::VirtualReplay)),
        "virtual-replay" => Err("usage: scan virtual-replay".into()),
        _ => Ok(None),
    }
}

/// `BEHAVIOUR [ARG] [payer N]` after a wallet's name.
fn parse_wallet(method: CodeMethod, args: &[&str]) -> Result<CodeSpec, String> {
    let (args, payer) = match args {
        [rest @ .., "payer", serial] => {
            let serial = serial
                .parse::<u32>()
                .map_err(|_| format!("payer '{serial}' is not a number (0 to {})", u32::MAX))?;
            (rest, Some(serial))
        }
        _ => (args, None),
    };
    let usage = || {
        format!(
            "a wallet code wants a behaviour: {} (then `payer N` to name the payer)",
            BEHAVIOUR_NAMES.join(", ")
        )
    };
    let behaviour = match args {
        ["paid-at-once"] => WalletBehaviour::PaidAtOnce,
        ["user-paying-then-paid", seconds] => WalletBehaviour::UserPayingThenPaid {
            after_s: seconds
                .parse()
                .map_err(|_| format!("'{seconds}' is not a number of seconds 0 to 255"))?,
        },
        ["user-paying-never"] => WalletBehaviour::UserPayingNever,
        ["declined", reason] => WalletBehaviour::Declined(parse_reason(reason)?),
        ["declined", "other", code] => WalletBehaviour::Declined(DeclineReason::Other(
            code.parse()
                .map_err(|_| format!("'{code}' is not a decline code 0 to 65535"))?,
        )),
        ["no-answer"] => WalletBehaviour::NoAnswer,
        ["duplicate-prompt"] => WalletBehaviour::DuplicatePrompt,
        ["paid-during-reversal"] => WalletBehaviour::PaidDuringReversal,
        _ => return Err(usage()),
    };
    Ok(CodeSpec::Wallet {
        method,
        behaviour,
        payer,
    })
}

fn parse_reason(name: &str) -> Result<DeclineReason, String> {
    REASON_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, reason)| *reason)
        .ok_or_else(|| {
            let names: Vec<&str> = REASON_NAMES.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown decline reason '{name}': one of {}, or other N",
                names.join(", ")
            )
        })
}

/// Every code the terminal simulator's picker offers: each behaviour of each wallet (the
/// timed one with 8 s, declined for insufficient funds), then a virtual card of each account,
/// an expired one and the last one replayed. With the label the picker shows.
pub fn picker_choices(campus: &LocalCampus) -> Vec<(String, CodeSpec)> {
    let behaviours = [
        ("paid at once", WalletBehaviour::PaidAtOnce),
        (
            "user paying, paid after 8 s",
            WalletBehaviour::UserPayingThenPaid { after_s: 8 },
        ),
        ("user paying, never", WalletBehaviour::UserPayingNever),
        (
            "declined: insufficient funds",
            WalletBehaviour::Declined(DeclineReason::InsufficientFunds),
        ),
        ("no answer (then queried)", WalletBehaviour::NoAnswer),
        ("duplicate-payment prompt", WalletBehaviour::DuplicatePrompt),
        (
            "paid during the reversal",
            WalletBehaviour::PaidDuringReversal,
        ),
    ];
    let mut choices = Vec::new();
    for (wallet, method) in [
        ("WeChat", CodeMethod::WeChat),
        ("Alipay", CodeMethod::Alipay),
        ("UnionPay", CodeMethod::UnionPay),
    ] {
        for (label, behaviour) in behaviours {
            choices.push((
                format!("{wallet}: {label}"),
                CodeSpec::Wallet {
                    method,
                    behaviour,
                    payer: None,
                },
            ));
        }
    }
    for account in campus.accounts() {
        let frozen = if account.frozen { ", frozen" } else { "" };
        choices.push((
            format!(
                "virtual card: {} ({}, ¥{}{frozen})",
                account.name, account.account, account.opening
            ),
            CodeSpec::Virtual {
                account: account.name.clone(),
            },
        ));
    }
    if let Some(first) = campus.accounts().first() {
        choices.push((
            format!("virtual card: {}, expired", first.name),
            CodeSpec::VirtualExpired {
                account: first.name.clone(),
            },
        ));
    }
    choices.push((
        "virtual card: the last one again (replay)".into(),
        CodeSpec::VirtualReplay,
    ));
    choices
}
