//! The codes the simulated campus hands out: wallet codes whose digits choose how the simulated
//! aggregator behaves (so a script or a test can ask for "user paying, then paid after 5 s"),
//! and virtual-card codes signed with the simulated campus's key. The table of behaviours and
//! their digits is in `docs/code-payments.md`.
//!
//! A wallet code of ours keeps its wallet's published shape (WeChat Pay 18 digits from `13`,
//! Alipay 18 digits from `28`, UnionPay 19 digits from `62`) and reads, after those two digits:
//! one or more `9`s (the marker), five digits naming the behaviour, ten digits of serial.

use super::{SIM_CAMPUS_KEY_ID, SIM_CAMPUS_KEY_SEED};
use shared::pay::DeclineReason;
use shared::paycode::{
    signing_key_from_seed, CodeMethod, PaymentCode, VirtualAccount, VirtualCardCode,
};
use shared::UnixMillis;

/// How long a virtual-card code of the simulated campus app is good for.
pub const SIM_VIRTUAL_CARD_VALIDITY_S: u16 = 60;
/// Digits of a wallet code's serial (all of a `u32`).
const SERIAL_DIGITS: usize = 10;
/// Digits of the number that names a behaviour.
const BEHAVIOUR_DIGITS: usize = 5;
/// The digit that marks a wallet code as one of the simulator's.
const MARKER: u8 = b'9';
/// Behaviour numbers (see `docs/code-payments.md`).
const PAID_AT_ONCE: u32 = 0;
const USER_PAYING_NEVER: u32 = 1;
const NO_ANSWER: u32 = 2;
const DUPLICATE_PROMPT: u32 = 3;
const PAID_DURING_REVERSAL: u32 = 4;
/// `DECLINED_NAMED + i`: declined with the i-th named reason of [`NAMED_REASONS`].
const DECLINED_NAMED: u32 = 100;
/// `USER_PAYING_THEN_PAID + s`: user paying, then paid `s` seconds after the submit.
const USER_PAYING_THEN_PAID: u32 = 1_000;
/// `DECLINED_OTHER + n`: declined with the back end's own code `n`.
const DECLINED_OTHER: u32 = 10_000;
/// The named decline reasons, in the order their behaviour numbers count them.
const NAMED_REASONS: [DeclineReason; 7] = [
    DeclineReason::InsufficientFunds,
    DeclineReason::CodeExpired,
    DeclineReason::CodeInvalid,
    DeclineReason::CodeUsed,
    DeclineReason::AccountFrozen,
    DeclineReason::PayerCancelled,
    DeclineReason::OverLimit,
];

/// What the simulated wallet aggregator does with an order paid by a code that selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalletBehaviour {
    /// Paid as the submit arrives.
    PaidAtOnce,
    /// The payer confirms on the phone: user paying, then paid `after_s` seconds after the
    /// submit.
    UserPayingThenPaid { after_s: u8 },
    /// The payer never confirms: user paying until the till reverses it.
    UserPayingNever,
    /// Declined at once with this reason.
    Declined(DeclineReason),
    /// The submit is booked paid at once but its answer is lost: nothing goes back; queries
    /// answer paid.
    NoAnswer,
    /// The phone's own duplicate-payment prompt: user paying, paid
    /// [`super::DUPLICATE_PROMPT_CONFIRM_S`] seconds after the submit.
    DuplicatePrompt,
    /// User paying; the payer confirms just as the reversal arrives: the reversal finds it paid
    /// and refunds it.
    PaidDuringReversal,
}

impl WalletBehaviour {
    fn number(self) -> u32 {
        match self {
            WalletBehaviour::PaidAtOnce => PAID_AT_ONCE,
            WalletBehaviour::UserPayingNever => USER_PAYING_NEVER,
            WalletBehaviour::NoAnswer => NO_ANSWER,
            WalletBehaviour::DuplicatePrompt => DUPLICATE_PROMPT,
            WalletBehaviour::PaidDuringReversal => PAID_DURING_REVERSAL,
            WalletBehaviour::UserPayingThenPaid { after_s } => {
                USER_PAYING_THEN_PAID + u32::from(after_s)
            }
            WalletBehaviour::Declined(DeclineReason::Other(code)) => {
                DECLINED_OTHER + u32::from(code)
            }
            WalletBehaviour::Declined(reason) => {
                let at = NAMED_REASONS.iter().position(|r| *r == reason);
                // Every reason but `Other` is in NAMED_REASONS (the round-trip test proves it).
                DECLINED_NAMED + at.unwrap_or(0) as u32
            }
        }
    }

    fn from_number(number: u32) -> Option<WalletBehaviour> {
        Some(match number {
            PAID_AT_ONCE => WalletBehaviour::PaidAtOnce,
            USER_PAYING_NEVER => WalletBehaviour::UserPayingNever,
            NO_ANSWER => WalletBehaviour::NoAnswer,
            DUPLICATE_PROMPT => WalletBehaviour::DuplicatePrompt,
            PAID_DURING_REVERSAL => WalletBehaviour::PaidDuringReversal,
            n if (DECLINED_NAMED..DECLINED_NAMED + NAMED_REASONS.len() as u32).contains(&n) => {
                WalletBehaviour::Declined(NAMED_REASONS[(n - DECLINED_NAMED) as usize])
            }
            n if (USER_PAYING_THEN_PAID..=USER_PAYING_THEN_PAID + u32::from(u8::MAX))
                .contains(&n) =>
            {
                WalletBehaviour::UserPayingThenPaid {
                    after_s: u8::try_from(n - USER_PAYING_THEN_PAID).ok()?,
                }
            }
            n if (DECLINED_OTHER..=DECLINED_OTHER + u32::from(u16::MAX)).contains(&n) => {
                WalletBehaviour::Declined(DeclineReason::Other(
                    u16::try_from(n - DECLINED_OTHER).ok()?,
                ))
            }
            _ => return None,
        })
    }
}

/// The two leading digits and the length of the simulator's codes for a wallet.
fn shape(method: CodeMethod) -> Option<(&'static str, usize)> {
    match method {
        CodeMethod::WeChat => Some(("13", 18)),
        CodeMethod::Alipay => Some(("28", 18)),
        CodeMethod::UnionPay => Some(("62", 19)),
        CodeMethod::VirtualCard | CodeMethod::OfflineQr => None,
    }
}

/// A wallet code of `method` (WeChat / Alipay / UnionPay, their published shapes) that makes
/// the simulated aggregator behave as `behaviour`; `serial` makes codes distinct and names the
/// payer (the wallet payer id is the serial). `method` VirtualCard has no wallet code: it gets
/// a WeChat Pay one.
pub fn wallet_code(method: CodeMethod, behaviour: WalletBehaviour, serial: u32) -> String {
    let (prefix, len) = shape(method).unwrap_or(("13", 18));
    let markers = len - prefix.len() - BEHAVIOUR_DIGITS - SERIAL_DIGITS;
    format!(
        "{prefix}{}{:05}{serial:010}",
        (MARKER as char).to_string().repeat(markers),
        behaviour.number()
    )
}

/// Which behaviour a wallet code selects (None: not one of ours → PaidAtOnce by default).
pub fn behaviour_of(code: &str) -> Option<WalletBehaviour> {
    let recognised = PaymentCode::recognise(code).ok()?;
    if recognised.method().is_campus() {
        return None;
    }
    let digits = recognised.expose().as_bytes();
    let tail = digits.len().checked_sub(BEHAVIOUR_DIGITS + SERIAL_DIGITS)?;
    let markers = digits.get(2..tail)?;
    if markers.is_empty() || markers.iter().any(|d| *d != MARKER) {
        return None;
    }
    let number: u32 = std::str::from_utf8(&digits[tail..tail + BEHAVIOUR_DIGITS])
        .ok()?
        .parse()
        .ok()?;
    serial_of(recognised.expose())?;
    WalletBehaviour::from_number(number)
}

/// The serial of a wallet code: its last ten digits, when they fit a `u32` (the simulator's
/// codes), else None.
pub(super) fn serial_of(code: &str) -> Option<u32> {
    code.get(code.len().checked_sub(SERIAL_DIGITS)?..)?
        .parse()
        .ok()
}

/// The stable payer id the simulated aggregator gives the payer of a wallet code: the number of
/// its last ten digits (for the simulator's codes, the serial), so "the same payer" can be
/// scripted by re-using a serial.
pub(super) fn wallet_payer_of(code: &str) -> u64 {
    code.get(code.len().saturating_sub(SERIAL_DIGITS)..)
        .and_then(|tail| tail.parse().ok())
        .unwrap_or(0)
}

/// A virtual-card code the simulated campus app shows (signed with SIM_CAMPUS_KEY_SEED, valid
/// [`SIM_VIRTUAL_CARD_VALIDITY_S`]); `issued_at` is rounded down to the second.
pub fn virtual_card_code(account: VirtualAccount, issued_at: UnixMillis, nonce: u64) -> String {
    let issued_at_s = u32::try_from(issued_at.0.div_euclid(1000)).unwrap_or(0);
    VirtualCardCode::sign(
        &signing_key_from_seed(SIM_CAMPUS_KEY_SEED),
        SIM_CAMPUS_KEY_ID,
        account,
        issued_at_s,
        SIM_VIRTUAL_CARD_VALIDITY_S,
        nonce,
    )
}
