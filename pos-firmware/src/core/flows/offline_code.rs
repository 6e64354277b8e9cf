//! A payment code scanned while the till cannot reach the campus server (offline mode, no
//! daemon, or no broker): an offline virtual-card sale, or a refusal that says why.
//!
//! A campus virtual-card code is accepted offline only when the till can judge it alone, the
//! way the campus would (issue 11 item 4; `docs/code-payments.md`, "Offline virtual cards"):
//! - the campus set offline limits for codes (`CodePaymentSettings::offline_codes`) and
//!   announced its public keys (`virtual_card_keys`): without either, refused, and the screen
//!   says which;
//! - the campus signature verifies, and the code is inside its validity by the till's clock
//!   corrected with the server offset (`VirtualCardCode::verify`): a till whose clock jumped
//!   refuses (expired, or "time is wrong"), it never widens a code's minute;
//! - its nonce is not in the snapshot's `seen_nonces` (durable: a restart keeps them). The list
//!   holds at most [`MAX_SEEN_NONCES`]; to make room, expired nonces are dropped first; full of
//!   unexpired ones, the code is refused (a till cannot sell that fast: see the constant);
//! - within the limits per account: the sale at most `max_sale`, and the account's offline
//!   sales at this till on the code's local day (the day of its signed issue time, which the
//!   till's clock cannot move) at most `max_per_account_per_day` and
//!   `max_count_per_account_per_day` (the snapshot's `offline_accounts`, bounded by
//!   [`MAX_OFFLINE_ACCOUNT_DAYS`]); and the campus's `max_sale` for any sale;
//! - the duplicate reminder applies as online (same account, same amount, within the window).
//!
//! Accepted: one durable `OfflineCodeSale` record, written with the snapshot that holds its
//! nonce, the account's day tally, the day and meal totals and code tallies (like an
//! `OrderPaid`), the last sale and the recent amounts; then "交易成功 … 脱机". The campus charges
//! the account when the record is uploaded (`sim/payments.rs`, `settle_offline_sale`).
//!
//! A wallet's code (WeChat Pay, Alipay, UnionPay) cannot be judged offline (its back end holds
//! the money): refused, telling the merchant to offer the till's QR instead.

use shared::campus::OfflineCodeLimits;
use shared::paycode::{PaymentCode, VirtualCardCode, VirtualCardRefusal};
use shared::record::{
    OfflineAccountDay, OfflineCodeSale, PaidBy, Payer, RecordBody, SalesTally, SeenNonce,
};
use shared::{LocalDay, UnixMillis};

use super::super::calendar::local_time;
use super::super::text::{self, yuan, Text};
use super::super::{Beep, Effect, Mode, Till, SUCCESS_SHOW_MS};
use super::messages::Overlay;
use super::sale::{Payment, SaleMode};

/// The most nonces of offline-accepted codes the snapshot keeps. A code is valid at most
/// `paycode::MAX_VIRTUAL_CARD_VALIDITY_S` (300 s) and a sale takes a few seconds, so one till
/// holds far fewer unexpired nonces than this (100 in 300 s at one sale every 3 s); 24 bytes
/// each.
pub const MAX_SEEN_NONCES: usize = 256;
/// The most (account, day) tallies of offline virtual-card sales the snapshot keeps. Other
/// days' tallies go first; full of today's accounts, a new account is refused until the till
/// uploads (a canteen till serves far fewer distinct code payers offline in a day).
pub const MAX_OFFLINE_ACCOUNT_DAYS: usize = 512;

/// Why an offline virtual-card code is refused, before anything is journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// Lines for both displays.
    Both(Vec<String>),
    /// The duplicate reminder: the merchant confirms first.
    Duplicate(Payer),
}

impl Till {
    /// A recognised code was scanned for `payment` while codes cannot reach the campus server
    /// (`why`): accepted offline if it is a virtual card the till can judge, else refused.
    pub(in crate::core) fn offline_code_scanned(
        &mut self,
        payment: Payment,
        code: PaymentCode,
        why: Text,
    ) {
        let lang = self.lang();
        let method = text::method_name(lang, code.method());
        let Some(fields) = code.virtual_card() else {
            return self.show_message(
                vec![method.clone(), why.get(lang), text::OFFER_THE_QR.get(lang)],
                Some(vec![method, text::TAP_CARD_OR_SCAN_THE_QR.get(lang)]),
                Beep::Error,
            );
        };
        match self.judge_offline_code(&payment, &fields) {
            Ok(()) => self.accept_offline_code(&payment, &fields),
            Err(Refusal::Both(lines)) => self.show_error_to_both(lines),
            Err(Refusal::Duplicate(payer)) => {
                self.mode = Mode::Sale(SaleMode::ConfirmDuplicate { payment, payer });
                self.effects.push_back(Effect::Beep(Beep::Attention));
            }
        }
    }

    /// The campus's offline limits for virtual-card codes, if it set any.
    fn offline_code_limits(&self) -> Option<OfflineCodeLimits> {
        self.snap.campus.as_ref()?.payments.as_ref()?.offline_codes
    }

    /// The till's clock corrected with the last server offset (the campus's clock, as near as
    /// the till knows it).
    fn campus_now(&self) -> UnixMillis {
        UnixMillis(self.now.0.saturating_add(self.server_offset.unwrap_or(0)))
    }

    /// The local day a code was issued on (its signed time, in the till's time zone).
    fn code_day(&self, fields: &VirtualCardCode) -> LocalDay {
        let issued = UnixMillis(i64::from(fields.issued_at_s) * 1000);
        local_time(issued, self.config.utc_offset_minutes).day
    }

    /// What `account` paid offline here on `day`.
    fn offline_day_tally(&self, fields: &VirtualCardCode) -> SalesTally {
        let day = self.code_day(fields);
        self.snap
            .offline_accounts
            .iter()
            .find(|d| d.account == fields.account && d.day == day)
            .map_or(SalesTally::default(), |d| d.tally)
    }

    /// Every rule of the module header, in order; `Ok` when the code may pay `payment`.
    fn judge_offline_code(
        &self,
        payment: &Payment,
        fields: &VirtualCardCode,
    ) -> Result<(), Refusal> {
        let lang = self.lang();
        let both = |lines: Vec<String>| Err(Refusal::Both(lines));
        let Some(limits) = self.offline_code_limits() else {
            return both(vec![
                text::OFFLINE_CODES_NOT_ALLOWED.get(lang),
                text::TAP_CARD_OR_SCAN_THE_QR.get(lang),
            ]);
        };
        if self.config.virtual_card_keys.is_empty() {
            return both(vec![
                text::NO_KEYS_TO_VERIFY_OFFLINE.get(lang),
                text::TAP_CARD_OR_SCAN_THE_QR.get(lang),
            ]);
        }
        let keys = |id| self.config.virtual_card_key(id);
        if let Err(refusal) = fields.verify(&keys, self.campus_now()) {
            return both(match refusal {
                VirtualCardRefusal::UnknownKey(id) => vec![
                    text::CODE_INVALID.get(lang),
                    text::code_key_unknown(lang, id),
                ],
                VirtualCardRefusal::BadSignature => vec![
                    text::CODE_INVALID.get(lang),
                    text::CODE_SIGNATURE_BAD.get(lang),
                ],
                VirtualCardRefusal::Expired => vec![text::CODE_EXPIRED_REFRESH.get(lang)],
                VirtualCardRefusal::NotYetValid => vec![
                    text::CODE_NOT_YET_VALID.get(lang),
                    text::CHECK_THE_CLOCK.get(lang),
                ],
            });
        }
        let seen = |n: &SeenNonce| n.key_id == fields.key_id && n.nonce == fields.nonce;
        if self.snap.seen_nonces.iter().any(seen) {
            return both(vec![text::CODE_ALREADY_USED.get(lang)]);
        }
        let campus_now = self.campus_now();
        let room = self.snap.seen_nonces.len() < MAX_SEEN_NONCES
            || self
                .snap
                .seen_nonces
                .iter()
                .any(|n| n.expires_at <= campus_now);
        if !room {
            return both(vec![
                text::OFFLINE_CODE_LIST_FULL.get(lang),
                text::RECONNECT_TO_UPLOAD.get(lang),
            ]);
        }
        if payment.amount > self.config.max_sale {
            return both(vec![
                text::amount_over_the_sale_limit(lang, payment.amount, self.config.max_sale),
                text::NOT_CHARGED_CLEAR_DEL_LEAVES_FIXED.get(lang),
            ]);
        }
        let over = |line: String| {
            Err(Refusal::Both(vec![
                text::OFFLINE_CODE_LIMIT.get(lang),
                line,
            ]))
        };
        if payment.amount > limits.max_sale {
            return over(text::limit_line(lang, text::PER_SALE, limits.max_sale));
        }
        let tally = self.offline_day_tally(fields);
        if tally
            .total
            .checked_add(payment.amount)
            .is_none_or(|day| day > limits.max_per_account_per_day)
        {
            let limit = limits.max_per_account_per_day;
            return over(text::limit_line(lang, text::PER_ACCOUNT_A_DAY, limit));
        }
        if tally.count >= u32::from(limits.max_count_per_account_per_day) {
            let max = limits.max_count_per_account_per_day;
            return over(text::offline_codes_a_day(lang, max));
        }
        let day = self.code_day(fields);
        let known = |d: &OfflineAccountDay| d.account == fields.account && d.day == day;
        let accounts = &self.snap.offline_accounts;
        if accounts.len() >= MAX_OFFLINE_ACCOUNT_DAYS
            && !accounts.iter().any(known)
            && accounts.iter().all(|d| d.day == day)
        {
            return both(vec![
                text::OFFLINE_CODE_LIST_FULL.get(lang),
                text::RECONNECT_TO_UPLOAD.get(lang),
            ]);
        }
        let payer = Payer::VirtualCard(fields.account);
        if payment.duplicate_confirmed != Some(payer) && self.is_duplicate(payer, payment.amount) {
            return Err(Refusal::Duplicate(payer));
        }
        Ok(())
    }

    /// Journals the offline sale with the snapshot that holds its nonce, the account's day and
    /// the totals, then shows the success screen.
    fn accept_offline_code(&mut self, payment: &Payment, fields: &VirtualCardCode) {
        let campus_now = self.campus_now();
        let nonces = &mut self.snap.seen_nonces;
        if nonces.len() >= MAX_SEEN_NONCES {
            nonces.retain(|n| n.expires_at > campus_now);
        }
        nonces.push(SeenNonce {
            key_id: fields.key_id,
            nonce: fields.nonce,
            expires_at: fields.expires_at(),
        });
        let day = self.code_day(fields);
        let amount = payment.amount;
        let accounts = &mut self.snap.offline_accounts;
        match accounts
            .iter_mut()
            .find(|d| d.account == fields.account && d.day == day)
        {
            Some(entry) => {
                // Within the day's limit (checked), so far below u32/u64 overflow.
                entry.tally = entry.tally.plus(amount).unwrap_or(entry.tally);
            }
            None => {
                while accounts.len() >= MAX_OFFLINE_ACCOUNT_DAYS {
                    // Other days go first, the earliest of them first (checked: one exists).
                    let Some(at) = accounts
                        .iter()
                        .enumerate()
                        .filter(|(_, d)| d.day != day)
                        .min_by_key(|(_, d)| d.day)
                        .map(|(at, _)| at)
                    else {
                        break;
                    };
                    accounts.remove(at);
                }
                accounts.push(OfflineAccountDay {
                    account: fields.account,
                    day,
                    tally: SalesTally::default()
                        .plus(amount)
                        .unwrap_or(SalesTally::default()),
                });
            }
        }
        let payer = Payer::VirtualCard(fields.account);
        let paid_by = PaidBy::Code(shared::paycode::CodeMethod::VirtualCard);
        self.record_sale(payer, amount, self.now, paid_by);
        self.write(RecordBody::OfflineCodeSale(OfflineCodeSale {
            amount,
            account: fields.account,
            key_id: fields.key_id,
            issued_at_s: fields.issued_at_s,
            valid_for_s: fields.valid_for_s,
            nonce: fields.nonce,
            signature: fields.signature(),
            fixed_price: payment.fixed,
        }));
        let lang = self.lang();
        let title = text::PAYMENT_OK.get(lang);
        let offline = format!(
            "{} {}",
            text::OFFLINE_SALE.get(lang),
            text::METHOD_VIRTUAL_CARD.get(lang)
        );
        self.mode = self.resting_mode();
        self.overlay = Some(Overlay {
            merchant: vec![title.clone(), yuan(amount), offline.clone()],
            customer: Some(vec![format!("{title} {}", yuan(amount)), offline]),
            until: self.now.saturating_add_millis(SUCCESS_SHOW_MS),
        });
        self.effects.push_back(Effect::Beep(Beep::Success));
    }
}

#[cfg(test)]
mod tests;
