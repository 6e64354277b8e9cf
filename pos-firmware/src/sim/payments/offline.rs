//! The campus settling the offline virtual-card sales tills upload (issue 11 item 4;
//! `docs/code-payments.md`, "Offline virtual cards"). A till accepted the code alone; the
//! campus, which sees every till, judges it again when the `OfflineCodeSale` record arrives:
//! - once per record: (terminal, seq) is the key; the same record uploaded again answers what
//!   it did the first time and charges nothing more;
//! - the signature must verify with the campus key its id names (the record keeps the signed
//!   fields): a forged or altered sale is an alarm, not a charge;
//! - the nonce is spent once, whoever spends it first: a nonce already spent (by an online order,
//!   or by an offline sale at this or another till) is a replay: an alarm, not a second charge;
//! - a sale above the campus's per-sale limit is an alarm, not a charge (no honest till takes
//!   it); an account over the per-day amount or count across all tills (each till enforces the
//!   limits alone, so several offline tills may together exceed them) is charged — the payer's
//!   code authorised the sale and the food is gone — and an alarm, so the operator sees the
//!   exposure used;
//! - a balance that does not cover the sale is charged to zero and the rest booked as the
//!   account's debt ([`PaymentBackend::debt`]), with an alarm: the sale is paid to the merchant;
//!   the campus collects the debt (an offline sale cannot be declined after the fact);
//! - every alarm is an `ALARM` line in the log and counted ([`PaymentBackend::offline_alarms`]),
//!   once per record (a resend does not count again);
//! - durable like an order call: appended to the call log and fdatasynced before the answer.

use shared::campus::OfflineCodeLimits;
use shared::pay::{CodePayer, OrderId};
use shared::paycode::{VirtualAccount, VirtualCardCode};
use shared::record::{OfflineCodeSale, SalesTally};
use shared::{Fen, LocalDay, Seq, TerminalId, UnixMillis};
use std::io;

use super::{EntryKind, LedgerEntry, PaymentBackend, StatementType, SIM_CAMPUS_KEY_ID};
use crate::core::calendar::local_time;
use shared::paycode::CodeMethod;

/// What the campus did with one uploaded offline sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineSettlement {
    /// The account was charged the sale's amount; `debt` is the part its balance did not
    /// cover (zero normally); `alarm` is set when the account went over the campus's day
    /// limits across all tills.
    Charged {
        account: VirtualAccount,
        balance_after: Fen,
        debt: Fen,
        alarm: Option<OfflineAlarm>,
    },
    /// Not charged: an alarm for the operator.
    Refused(OfflineAlarm),
}

/// Why an offline sale needs the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineAlarm {
    /// The signature does not verify (or names a key the campus does not have).
    BadSignature,
    /// The nonce was spent before (online, or offline at some till): a replay.
    NonceSpent,
    /// Above the campus's per-sale limit for offline codes.
    OverSaleLimit,
    /// The account paid more, or more often, offline that day than the campus allows (counted
    /// across every till).
    OverDayLimit,
    /// The balance did not cover the sale: the rest is the account's debt.
    BalanceShort,
    /// The account is not one of the campus's.
    UnknownAccount,
}

/// The campus's own offline rules: the limits it announced to its tills and its time zone (for
/// the local day of a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineRules {
    pub limits: OfflineCodeLimits,
    pub utc_offset_minutes: i32,
}

impl PaymentBackend {
    /// The campus's offline limits, recomputed per account and day across every till (none:
    /// no per-sale or per-day alarms).
    pub fn with_offline_rules(mut self, rules: OfflineRules) -> Self {
        self.offline_rules = Some(rules);
        self
    }

    /// Settles the offline sale terminal `terminal` journaled as record `seq` (see the module
    /// header). Durable before it answers.
    pub fn settle_offline_sale(
        &mut self,
        terminal: TerminalId,
        seq: Seq,
        sale: &OfflineCodeSale,
        now: UnixMillis,
    ) -> io::Result<OfflineSettlement> {
        if let Some(done) = self.offline.get(&(terminal, seq)) {
            return Ok(*done);
        }
        if let Some(log) = &mut self.log {
            log.append_offline_sale(now, terminal, seq, sale)?;
        }
        Ok(self.apply_offline_sale(terminal, seq, sale, now))
    }

    /// Acts on one offline sale (already logged, or replayed from the log).
    pub(super) fn apply_offline_sale(
        &mut self,
        terminal: TerminalId,
        seq: Seq,
        sale: &OfflineCodeSale,
        now: UnixMillis,
    ) -> OfflineSettlement {
        if let Some(done) = self.offline.get(&(terminal, seq)) {
            return *done;
        }
        let settled = self.judge_offline_sale(terminal, seq, sale, now);
        let alarm = match settled {
            OfflineSettlement::Refused(alarm) => Some(alarm),
            OfflineSettlement::Charged { alarm, .. } => alarm,
        };
        if let Some(alarm) = alarm {
            self.offline_alarms += 1;
            tracing::error!(
                "ALARM offline virtual-card sale {terminal}/{} of ¥{} by account {} (key {}, \
                 nonce {:x}): {alarm:?}; {}",
                seq.0,
                sale.amount,
                sale.account,
                sale.key_id,
                sale.nonce,
                match settled {
                    OfflineSettlement::Refused(_) => "not charged",
                    OfflineSettlement::Charged { .. } => "charged",
                }
            );
        }
        self.offline.insert((terminal, seq), settled);
        settled
    }

    fn judge_offline_sale(
        &mut self,
        terminal: TerminalId,
        seq: Seq,
        sale: &OfflineCodeSale,
        now: UnixMillis,
    ) -> OfflineSettlement {
        let code = VirtualCardCode::from_parts(
            sale.key_id,
            sale.account,
            sale.issued_at_s,
            sale.valid_for_s,
            sale.nonce,
            sale.signature,
        );
        // The sale was made earlier, offline: only the signature is judged here, at the
        // code's own issue time (the till judged its age against its clock then).
        let key = self.key;
        let keys = |id: u8| (id == SIM_CAMPUS_KEY_ID).then_some(key);
        let issued = UnixMillis(i64::from(sale.issued_at_s) * 1000);
        if code.verify(&keys, issued).is_err() {
            return OfflineSettlement::Refused(OfflineAlarm::BadSignature);
        }
        if !self.nonces.insert(sale.nonce) {
            return OfflineSettlement::Refused(OfflineAlarm::NonceSpent);
        }
        if sale.amount.is_zero() {
            return OfflineSettlement::Refused(OfflineAlarm::OverSaleLimit);
        }
        let Some(balance) = self.balances.get(&sale.account).copied() else {
            return OfflineSettlement::Refused(OfflineAlarm::UnknownAccount);
        };
        let mut alarm = None;
        if let Some(rules) = self.offline_rules {
            if sale.amount > rules.limits.max_sale {
                return OfflineSettlement::Refused(OfflineAlarm::OverSaleLimit);
            }
            let day = local_time(issued, rules.utc_offset_minutes).day;
            let tally = self.offline_day(sale.account, day);
            let after = tally.plus(sale.amount).unwrap_or(tally);
            self.offline_days.insert((sale.account, day), after);
            let count_over = after.count > u32::from(rules.limits.max_count_per_account_per_day);
            if after.total > rules.limits.max_per_account_per_day || count_over {
                alarm = Some(OfflineAlarm::OverDayLimit);
            }
        }
        let (balance_after, short) = match balance.checked_sub(sale.amount) {
            Some(after) => (after, Fen::ZERO),
            None => (
                Fen::ZERO,
                sale.amount.checked_sub(balance).unwrap_or(sale.amount),
            ),
        };
        self.balances.insert(sale.account, balance_after);
        let debt = if short.is_zero() {
            Fen::ZERO
        } else {
            alarm = alarm.or(Some(OfflineAlarm::BalanceShort));
            let owed = self.debts.entry(sale.account).or_insert(Fen::ZERO);
            *owed = owed.checked_add(short).unwrap_or(*owed);
            short
        };
        self.ledger.push(LedgerEntry {
            order: OrderId {
                terminal,
                intent: seq,
            },
            terminal,
            kind: EntryKind::Charge,
            statement: StatementType::PaymentCode,
            method: CodeMethod::VirtualCard,
            payer: CodePayer::Campus(sale.account),
            amount: sale.amount,
            sale_at: issued,
            booked_at: now,
        });
        OfflineSettlement::Charged {
            account: sale.account,
            balance_after,
            debt,
            alarm,
        }
    }

    /// What `account` paid offline on `day`, across every till, as settled so far.
    fn offline_day(&self, account: VirtualAccount, day: LocalDay) -> SalesTally {
        self.offline_days
            .get(&(account, day))
            .copied()
            .unwrap_or_default()
    }

    /// What an account owes: offline sales its balance did not cover.
    pub fn debt(&self, account: VirtualAccount) -> Fen {
        self.debts.get(&account).copied().unwrap_or(Fen::ZERO)
    }

    /// How many uploaded offline sales raised an alarm (each counted once).
    pub fn offline_alarms(&self) -> u64 {
        self.offline_alarms
    }

    /// What the campus did with terminal `terminal`'s record `seq`, if it was an offline sale.
    pub fn offline_settlement(&self, terminal: TerminalId, seq: Seq) -> Option<OfflineSettlement> {
        self.offline.get(&(terminal, seq)).copied()
    }
}

#[cfg(test)]
mod tests;
