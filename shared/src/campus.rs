//! What the campus server sends down to a till: its configuration (meal periods, limits,
//! fixed-price presets, merchant name, offline limits, code-payment timings and the public keys
//! of the campus's virtual-card codes) and the lost-card blacklist. Both are
//! versioned and replaced as a whole; a till keeps the newest version it has applied and
//! rejects an older or equal one.
//!
//! Parse, don't validate: decoding a [`CampusConfig`] or a [`Blacklist`] (from the link, MQTT
//! or the till's own storage) checks every range below and refuses the whole message with the
//! reason; the valid ranges are listed in docs/link.md ("Valid ranges of downlink values").
//! A snapshot written before these checks that holds a value now refused still opens: see
//! [`salvage_stored_campus`]. The shape before code payments ([`CampusConfigV1`]: released in
//! snapshot version 3 and configuration envelope V1) still decodes, as a configuration with no
//! [`CodePaymentSettings`] (the till keeps its own timings and holds no campus key).

use std::cell::RefCell;

use crate::ids::{CardUid, DisplayName, MinuteOfDay, UnixMillis, MAX_DISPLAY_NAME_CHARS};
use crate::money::Fen;
use crate::paycode::CampusVerifyingKey;
use serde::{Deserialize, Deserializer, Serialize};

/// The most blacklist entries a till accepts (a campus of 60,000 people loses cards for years;
/// this leaves room and bounds the memory: about 12 bytes an entry).
pub const MAX_BLACKLIST_ENTRIES: usize = 1_000_000;
/// The most meal periods a campus configuration may carry.
pub const MAX_CAMPUS_MEAL_PERIODS: usize = 6;
/// The most fixed-price presets a campus configuration may carry.
pub const MAX_FIXED_PRICE_PRESETS: usize = 9;
/// The longest merchant name, in characters (the display has 16 Chinese characters a line).
pub const MAX_MERCHANT_NAME_CHARS: usize = MAX_DISPLAY_NAME_CHARS;
/// The highest version a configuration or blacklist may carry: 2^53, the largest integer a
/// server written in any language (JSON, JavaScript, a double) still counts exactly, and far
/// above a counter or a millisecond time stamp (2^53 ms is 285,000 years). A version near
/// `u64::MAX` would leave no newer version to send, so no configuration could ever be applied
/// again.
pub const MAX_DOWNLINK_VERSION: u64 = 1 << 53;
/// The most an offline money limit (per sale, per card per day, unsent total) may be:
/// ¥1,000,000. Above it a limit is no limit (`u64::MAX` fen switches the check off).
pub const MAX_OFFLINE_MONEY_LIMIT: Fen = Fen::from_yuan(1_000_000);
/// The shortest offline age limit (unsent records, blacklist): one minute. Zero would stop
/// offline selling the moment the link drops, which the offline switch does more clearly.
pub const MIN_OFFLINE_AGE_MS: u64 = 60 * 1000;
/// The longest offline age limit: 30 days. Beyond it (`u64::MAX` included) the check would
/// never fire and a till could sell offline on a months-old blacklist.
pub const MAX_OFFLINE_AGE_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// The shortest interval between a till's queries about an order whose payer confirms on the
/// phone: one second (often enough to show "paid" at once; more often floods the campus).
pub const MIN_ORDER_QUERY_INTERVAL_MS: u64 = 1_000;
/// The longest order query interval: 30 seconds (longer leaves a paid payer waiting).
pub const MAX_ORDER_QUERY_INTERVAL_MS: u64 = 30_000;
/// The shortest payment window (from the scan until the till reverses an unconfirmed order):
/// 20 seconds, long enough to type a wallet password.
pub const MIN_ORDER_PAY_WINDOW_MS: u64 = 20_000;
/// The longest payment window: 5 minutes (a queue must not wait on one payer, and a virtual-card
/// code is valid at most `paycode::MAX_VIRTUAL_CARD_VALIDITY_S`, 300 s).
pub const MAX_ORDER_PAY_WINDOW_MS: u64 = 300_000;
/// The most virtual-card public keys a configuration carries: the current key, the next one
/// announced before a rotation and the previous ones still honoured for codes already shown.
pub const MAX_CAMPUS_KEYS: usize = 4;
/// The most virtual-card codes one account may pay offline at one till in one local day that
/// a campus may allow: 20 (three meals and snacks leave room; more would let a stolen phone
/// drain an account at an offline till).
pub const MAX_OFFLINE_CODE_COUNT_PER_DAY: u8 = 20;
/// The offline limits for virtual-card codes that the campus simulator announces and the docs
/// count the exposure with: ¥30 a sale, ¥60 and 4 codes per account per day per offline till.
pub const DEFAULT_OFFLINE_CODE_LIMITS: OfflineCodeLimits = OfflineCodeLimits {
    max_sale: Fen::from_yuan(30),
    max_per_account_per_day: Fen::from_yuan(60),
    max_count_per_account_per_day: 4,
};

/// One meal period as the server names it: start inclusive, end exclusive, local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MealPeriodSpec {
    pub name: DisplayName,
    pub start: MinuteOfDay,
    pub end: MinuteOfDay,
}

/// Limits on what a till accepts while it cannot reach the server. Each money limit is
/// 0.01..=[`MAX_OFFLINE_MONEY_LIMIT`], each age [`MIN_OFFLINE_AGE_MS`]..=[`MAX_OFFLINE_AGE_MS`]
/// (checked with the configuration that carries them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineLimits {
    /// The most one offline sale may charge.
    pub max_sale: Fen,
    /// The most one card may spend on this till per day while offline.
    pub max_per_card_per_day: Fen,
    /// The most money the not-yet-uploaded sales may add up to.
    pub max_unsent_total: Fen,
    /// The oldest a not-yet-uploaded record may be before the till stops selling offline.
    pub max_unsent_age_ms: u64,
    /// The oldest the blacklist may be before the till stops selling offline.
    pub max_blacklist_age_ms: u64,
}

/// The public half of one campus signing key, named by the id a virtual-card code carries
/// (`paycode::VirtualCardCode::key_id`). Public keys are safe to send in the clear: they only
/// verify; the private half never leaves the campus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampusKey {
    pub id: u8,
    /// The Ed25519 public key, compressed (32 bytes).
    pub public: [u8; 32],
}

impl CampusKey {
    /// The key as Ed25519 verifies with it; `None` if its bytes are not a point of the curve or
    /// are a weak (small-order) point, under which a signature proves nothing.
    pub fn verifying_key(&self) -> Option<CampusVerifyingKey> {
        CampusVerifyingKey::from_bytes(&self.public)
            .ok()
            .filter(|key| !key.is_weak())
    }
}

/// How the campus wants its tills to run code payments: the order timings (they override the
/// till's own `[payments]` settings) and the public keys its virtual-card codes are signed with.
/// Ranges: `query_interval_ms` [`MIN_ORDER_QUERY_INTERVAL_MS`]..=[`MAX_ORDER_QUERY_INTERVAL_MS`],
/// `pay_window_ms` [`MIN_ORDER_PAY_WINDOW_MS`]..=[`MAX_ORDER_PAY_WINDOW_MS`] and longer than the
/// interval, at most [`MAX_CAMPUS_KEYS`] keys with distinct ids, each a valid Ed25519 point
/// (checked with the configuration that carries them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodePaymentSettings {
    /// How often a till asks about an order whose payer confirms on the phone.
    pub query_interval_ms: u64,
    /// How long the payer has, from the scan, before the till reverses the order.
    pub pay_window_ms: u64,
    /// Empty: tills do not check signatures (the campus server does).
    pub virtual_card_keys: Vec<CampusKey>,
    /// What a till may accept in virtual-card codes while offline (it verifies them itself
    /// with `virtual_card_keys`); `None`: no virtual-card code is accepted offline.
    pub offline_codes: Option<OfflineCodeLimits>,
}

/// The campus's limits on the virtual-card codes one till accepts offline, per account (the
/// campus charges them when the till's records are uploaded; `docs/code-payments.md` counts the
/// exposure). Ranges: each money limit 0.01..=[`MAX_OFFLINE_MONEY_LIMIT`] and `max_sale` at
/// most the day's limit; the count 1..=[`MAX_OFFLINE_CODE_COUNT_PER_DAY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineCodeLimits {
    /// The most one offline virtual-card sale may charge.
    pub max_sale: Fen,
    /// The most one account may pay by virtual card at one offline till in one local day.
    pub max_per_account_per_day: Fen,
    /// How many virtual-card codes one account may pay at one offline till in one local day.
    pub max_count_per_account_per_day: u8,
}

impl OfflineCodeLimits {
    /// The ranges above.
    pub fn check(&self) -> Result<(), CampusConfigError> {
        for (field, value) in [
            ("codes max_sale", self.max_sale),
            (
                "codes max_per_account_per_day",
                self.max_per_account_per_day,
            ),
        ] {
            if value.is_zero() || value > MAX_OFFLINE_MONEY_LIMIT {
                return Err(CampusConfigError::OfflineMoney { field, value });
            }
        }
        if self.max_sale > self.max_per_account_per_day {
            return Err(CampusConfigError::OfflineCodeSaleAboveDay {
                sale: self.max_sale,
                day: self.max_per_account_per_day,
            });
        }
        let count = self.max_count_per_account_per_day;
        if !(1..=MAX_OFFLINE_CODE_COUNT_PER_DAY).contains(&count) {
            return Err(CampusConfigError::OfflineCodeCount(count));
        }
        Ok(())
    }
}

impl CodePaymentSettings {
    /// The ranges above.
    pub fn check(&self) -> Result<(), CampusConfigError> {
        let interval = self.query_interval_ms;
        if !(MIN_ORDER_QUERY_INTERVAL_MS..=MAX_ORDER_QUERY_INTERVAL_MS).contains(&interval) {
            return Err(CampusConfigError::QueryInterval(interval));
        }
        let window = self.pay_window_ms;
        if !(MIN_ORDER_PAY_WINDOW_MS..=MAX_ORDER_PAY_WINDOW_MS).contains(&window) {
            return Err(CampusConfigError::PayWindow(window));
        }
        if window <= interval {
            return Err(CampusConfigError::PayWindowNotAboveInterval { window, interval });
        }
        let keys = &self.virtual_card_keys;
        if keys.len() > MAX_CAMPUS_KEYS {
            return Err(CampusConfigError::TooManyKeys(keys.len()));
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].iter().any(|other| other.id == key.id) {
                return Err(CampusConfigError::DuplicateKeyId(key.id));
            }
            if key.verifying_key().is_none() {
                return Err(CampusConfigError::BadKey(key.id));
            }
        }
        if let Some(limits) = &self.offline_codes {
            limits.check()?;
        }
        Ok(())
    }
}

/// The campus configuration of one till. Append-only in its envelope (see `codec`). Decoding
/// runs [`CampusConfig::check`]; a configuration built in code is checked by the till before
/// it applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CampusConfigWire")]
pub struct CampusConfig {
    /// Increases with every change the server makes; a till applies only newer versions.
    /// 1..=[`MAX_DOWNLINK_VERSION`].
    pub version: u64,
    pub merchant_name: DisplayName,
    pub meal_periods: Vec<MealPeriodSpec>,
    /// The most one sale may charge (online or offline).
    pub max_sale: Fen,
    /// Amounts the merchant can pick for fixed-price mode.
    pub fixed_price_presets: Vec<Fen>,
    pub offline: OfflineLimits,
    /// `None`: the campus leaves code payments to each till's own settings (no keys). Since
    /// configuration envelope V2; a V1 configuration has none.
    pub payments: Option<CodePaymentSettings>,
}

/// The encoded shape of a [`CampusConfig`] (same fields, same order), checked before it
/// becomes one.
#[derive(Deserialize)]
struct CampusConfigWire {
    version: u64,
    merchant_name: DisplayName,
    meal_periods: Vec<MealPeriodSpec>,
    max_sale: Fen,
    fixed_price_presets: Vec<Fen>,
    offline: OfflineLimits,
    payments: Option<CodePaymentSettings>,
}

impl TryFrom<CampusConfigWire> for CampusConfig {
    type Error = CampusConfigError;

    fn try_from(wire: CampusConfigWire) -> Result<CampusConfig, CampusConfigError> {
        let config = CampusConfig {
            version: wire.version,
            merchant_name: wire.merchant_name,
            meal_periods: wire.meal_periods,
            max_sale: wire.max_sale,
            fixed_price_presets: wire.fixed_price_presets,
            offline: wire.offline,
            payments: wire.payments,
        };
        config.check()?;
        Ok(config)
    }
}

/// A campus configuration as it was before code payments (configuration envelope V1, snapshot
/// versions 2 and 3): the same fields without `payments`. Decoding checks it like a
/// [`CampusConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCampusConfigV1")]
pub struct CampusConfigV1 {
    pub version: u64,
    pub merchant_name: DisplayName,
    pub meal_periods: Vec<MealPeriodSpec>,
    pub max_sale: Fen,
    pub fixed_price_presets: Vec<Fen>,
    pub offline: OfflineLimits,
}

/// An old configuration is today's with no code-payment settings.
impl From<CampusConfigV1> for CampusConfig {
    fn from(v1: CampusConfigV1) -> CampusConfig {
        CampusConfig {
            version: v1.version,
            merchant_name: v1.merchant_name,
            meal_periods: v1.meal_periods,
            max_sale: v1.max_sale,
            fixed_price_presets: v1.fixed_price_presets,
            offline: v1.offline,
            payments: None,
        }
    }
}

impl CampusConfigV1 {
    /// The old shape of `config` (its code-payment settings dropped).
    fn without_payments(config: CampusConfig) -> CampusConfigV1 {
        CampusConfigV1 {
            version: config.version,
            merchant_name: config.merchant_name,
            meal_periods: config.meal_periods,
            max_sale: config.max_sale,
            fixed_price_presets: config.fixed_price_presets,
            offline: config.offline,
        }
    }
}

impl TryFrom<RawCampusConfigV1> for CampusConfigV1 {
    type Error = String;

    fn try_from(raw: RawCampusConfigV1) -> Result<CampusConfigV1, String> {
        RawCampusConfig::from(raw)
            .parse()
            .map(CampusConfigV1::without_payments)
    }
}

/// Why a campus configuration is refused whatever the till holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampusConfigError {
    #[error("version {0} is not within 1..={MAX_DOWNLINK_VERSION}")]
    Version(u64),
    #[error("{0} meal periods, more than {MAX_CAMPUS_MEAL_PERIODS}")]
    TooManyMeals(usize),
    #[error("meal period {index} ({start}-{end}) does not start before it ends")]
    MealOrder {
        index: usize,
        start: MinuteOfDay,
        end: MinuteOfDay,
    },
    #[error("meal period {0} has no name")]
    MealUnnamed(usize),
    #[error("meal periods {0} and {1} overlap")]
    MealOverlap(usize, usize),
    #[error("{0} fixed-price presets, more than {MAX_FIXED_PRICE_PRESETS}")]
    TooManyPresets(usize),
    #[error("offline {field} {value} is not within 0.01..={MAX_OFFLINE_MONEY_LIMIT}")]
    OfflineMoney { field: &'static str, value: Fen },
    #[error(
        "offline {field} {value} ms is not within {MIN_OFFLINE_AGE_MS}..={MAX_OFFLINE_AGE_MS} ms"
    )]
    OfflineAge { field: &'static str, value: u64 },
    #[error(
        "payments query_interval_ms {0} is not within \
         {MIN_ORDER_QUERY_INTERVAL_MS}..={MAX_ORDER_QUERY_INTERVAL_MS} ms"
    )]
    QueryInterval(u64),
    #[error(
        "payments pay_window_ms {0} is not within \
         {MIN_ORDER_PAY_WINDOW_MS}..={MAX_ORDER_PAY_WINDOW_MS} ms"
    )]
    PayWindow(u64),
    #[error("payments pay_window_ms {window} is not longer than query_interval_ms {interval}")]
    PayWindowNotAboveInterval { window: u64, interval: u64 },
    #[error("{0} virtual-card keys, more than {MAX_CAMPUS_KEYS}")]
    TooManyKeys(usize),
    #[error("virtual-card key id {0} appears twice")]
    DuplicateKeyId(u8),
    #[error("virtual-card key {0} is not a valid Ed25519 public key")]
    BadKey(u8),
    #[error("offline codes max_sale {sale} is above max_per_account_per_day {day}")]
    OfflineCodeSaleAboveDay { sale: Fen, day: Fen },
    #[error(
        "offline codes max_count_per_account_per_day {0} is not within \
         1..={MAX_OFFLINE_CODE_COUNT_PER_DAY}"
    )]
    OfflineCodeCount(u8),
}

impl CampusConfig {
    /// The rules every configuration obeys, whatever the till holds: version range, meal
    /// periods within the day, in order, named and apart, preset count, offline limits,
    /// code-payment timings and keys ([`CodePaymentSettings::check`]).
    pub fn check(&self) -> Result<(), CampusConfigError> {
        if !(1..=MAX_DOWNLINK_VERSION).contains(&self.version) {
            return Err(CampusConfigError::Version(self.version));
        }
        let periods = &self.meal_periods;
        if periods.len() > MAX_CAMPUS_MEAL_PERIODS {
            return Err(CampusConfigError::TooManyMeals(periods.len()));
        }
        for (index, meal) in periods.iter().enumerate() {
            if meal.start >= meal.end {
                return Err(CampusConfigError::MealOrder {
                    index,
                    start: meal.start,
                    end: meal.end,
                });
            }
            if meal.name.is_empty() {
                return Err(CampusConfigError::MealUnnamed(index));
            }
            for (j, other) in periods.iter().enumerate().skip(index + 1) {
                if meal.start < other.end && other.start < meal.end {
                    return Err(CampusConfigError::MealOverlap(index, j));
                }
            }
        }
        if self.fixed_price_presets.len() > MAX_FIXED_PRICE_PRESETS {
            return Err(CampusConfigError::TooManyPresets(
                self.fixed_price_presets.len(),
            ));
        }
        let offline = &self.offline;
        for (field, value) in [
            ("max_sale", offline.max_sale),
            ("max_per_card_per_day", offline.max_per_card_per_day),
            ("max_unsent_total", offline.max_unsent_total),
        ] {
            if value.is_zero() || value > MAX_OFFLINE_MONEY_LIMIT {
                return Err(CampusConfigError::OfflineMoney { field, value });
            }
        }
        for (field, value) in [
            ("max_unsent_age_ms", offline.max_unsent_age_ms),
            ("max_blacklist_age_ms", offline.max_blacklist_age_ms),
        ] {
            if !(MIN_OFFLINE_AGE_MS..=MAX_OFFLINE_AGE_MS).contains(&value) {
                return Err(CampusConfigError::OfflineAge { field, value });
            }
        }
        if let Some(payments) = &self.payments {
            payments.check()?;
        }
        Ok(())
    }

    /// The public key of virtual-card key `id`, if this configuration carries it (and it is a
    /// valid one: decoding checked that).
    pub fn virtual_card_key(&self, id: u8) -> Option<CampusVerifyingKey> {
        self.payments
            .as_ref()?
            .virtual_card_keys
            .iter()
            .find(|key| key.id == id)
            .and_then(CampusKey::verifying_key)
    }
}

/// The bytes of a campus configuration read without any check (as a till before these checks
/// read and stored them), so that a refusal can name its reason: postcard drops the message of
/// a `try_from` error, so `codec` decodes this shape and [`RawCampusConfig::parse`]s it.
#[derive(Deserialize)]
pub(crate) struct RawCampusConfig {
    version: u64,
    merchant_name: String,
    meal_periods: Vec<RawMealPeriod>,
    max_sale: Fen,
    fixed_price_presets: Vec<Fen>,
    offline: OfflineLimits,
    payments: Option<CodePaymentSettings>,
}

/// [`RawCampusConfig`] in the shape before code payments ([`CampusConfigV1`]).
#[derive(Deserialize)]
pub(crate) struct RawCampusConfigV1 {
    version: u64,
    merchant_name: String,
    meal_periods: Vec<RawMealPeriod>,
    max_sale: Fen,
    fixed_price_presets: Vec<Fen>,
    offline: OfflineLimits,
}

impl From<RawCampusConfigV1> for RawCampusConfig {
    fn from(v1: RawCampusConfigV1) -> RawCampusConfig {
        RawCampusConfig {
            version: v1.version,
            merchant_name: v1.merchant_name,
            meal_periods: v1.meal_periods,
            max_sale: v1.max_sale,
            fixed_price_presets: v1.fixed_price_presets,
            offline: v1.offline,
            payments: None,
        }
    }
}

#[derive(Deserialize)]
struct RawMealPeriod {
    name: String,
    start: u16,
    end: u16,
}

impl RawCampusConfig {
    /// The configuration, or why today's rules refuse it.
    pub(crate) fn parse(self) -> Result<CampusConfig, String> {
        let meal_periods = self
            .meal_periods
            .into_iter()
            .enumerate()
            .map(|(i, meal)| {
                Ok(MealPeriodSpec {
                    name: DisplayName::new(meal.name)
                        .map_err(|e| format!("meal period {i}: {e}"))?,
                    start: MinuteOfDay::try_from(meal.start)
                        .map_err(|e| format!("meal period {i} start: {e}"))?,
                    end: MinuteOfDay::try_from(meal.end)
                        .map_err(|e| format!("meal period {i} end: {e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let config = CampusConfig {
            version: self.version,
            merchant_name: DisplayName::new(self.merchant_name)
                .map_err(|e| format!("merchant name: {e}"))?,
            meal_periods,
            max_sale: self.max_sale,
            fixed_price_presets: self.fixed_price_presets,
            offline: self.offline,
            payments: self.payments,
        };
        config.check().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

thread_local! {
    /// What [`salvage_stored_campus`] dropped while `codec::decode_snapshot_salvaging` runs on
    /// this thread (`None`: not salvaging, a refused value is an error).
    static SALVAGED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Runs `decode` with salvaging on: a stored campus configuration that today's rules refuse
/// becomes `None` instead of failing the whole snapshot; answers what was dropped and why.
pub(crate) fn salvaging<T>(decode: impl FnOnce() -> T) -> (T, Vec<String>) {
    SALVAGED.with(|cell| *cell.borrow_mut() = Some(Vec::new()));
    let value = decode();
    let dropped = SALVAGED.with(|cell| cell.borrow_mut().take().unwrap_or_default());
    (value, dropped)
}

/// Decodes the snapshot's campus configuration (`#[serde(deserialize_with)]` on
/// `TillSnapshot::campus`). Strict by default, like every decode. Under [`salvaging`] (the
/// journal opening its snapshot) a configuration written before today's checks that fails them
/// falls back to `None` (the till's own settings, until the server's retained configuration
/// arrives again) and the reason is noted, so nothing else in the snapshot is lost.
pub fn salvage_stored_campus<'de, D>(deserializer: D) -> Result<Option<CampusConfig>, D::Error>
where
    D: Deserializer<'de>,
{
    let stored = Option::<RawCampusConfig>::deserialize(deserializer)?;
    salvage(stored.map(|raw| (raw.version, raw.parse())))
}

/// [`salvage_stored_campus`] for the snapshots that stored the shape before code payments
/// (versions 2 and 3: [`CampusConfigV1`]).
pub fn salvage_stored_campus_v1<'de, D>(deserializer: D) -> Result<Option<CampusConfigV1>, D::Error>
where
    D: Deserializer<'de>,
{
    let stored = Option::<RawCampusConfigV1>::deserialize(deserializer)?;
    salvage(stored.map(|raw| (raw.version, CampusConfigV1::try_from(raw))))
}

/// A stored configuration of `version`, parsed: kept, or (salvaging) dropped and noted.
fn salvage<T, E: serde::de::Error>(
    stored: Option<(u64, Result<T, String>)>,
) -> Result<Option<T>, E> {
    let Some((version, parsed)) = stored else {
        return Ok(None);
    };
    match parsed {
        Ok(config) => Ok(Some(config)),
        Err(reason) => {
            let reason = format!("campus configuration version {version}: {reason}");
            SALVAGED.with(|cell| match cell.borrow_mut().as_mut() {
                Some(dropped) => {
                    dropped.push(reason);
                    Ok(None)
                }
                None => Err(E::custom(reason)),
            })
        }
    }
}

/// What the till records of the blacklist it holds (the list itself is stored beside the
/// journal, not in every snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistInfo {
    pub version: u64,
    pub entries: u32,
    /// When the server issued this version.
    pub issued_at: UnixMillis,
}

/// The lost-card blacklist: a version and a sorted set of UIDs, looked up by binary search.
/// Every constructor, decoding included ([`BlacklistWire`]), enforces its invariants: version
/// 0..=[`MAX_DOWNLINK_VERSION`], UIDs of 4, 7 or 10 bytes ([`CardUid`]), sorted and unique, at
/// most [`MAX_BLACKLIST_ENTRIES`]. Whether it was issued in the future is the till's to judge
/// (it needs the till's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BlacklistWire")]
pub struct Blacklist {
    version: u64,
    issued_at: UnixMillis,
    /// Sorted, no duplicates.
    uids: Vec<CardUid>,
}

/// The encoded shape of a [`Blacklist`], checked before it becomes one.
#[derive(Deserialize)]
struct BlacklistWire {
    version: u64,
    issued_at: UnixMillis,
    uids: Vec<CardUid>,
}

impl TryFrom<BlacklistWire> for Blacklist {
    type Error = BlacklistError;

    fn try_from(wire: BlacklistWire) -> Result<Blacklist, BlacklistError> {
        if wire.uids.len() > MAX_BLACKLIST_ENTRIES {
            return Err(BlacklistError::TooLong(wire.uids.len()));
        }
        if wire.version > MAX_DOWNLINK_VERSION {
            return Err(BlacklistError::Version(wire.version));
        }
        if !wire.uids.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(BlacklistError::NotSorted);
        }
        Ok(Blacklist {
            version: wire.version,
            issued_at: wire.issued_at,
            uids: wire.uids,
        })
    }
}

/// The bytes of a blacklist read without any check, so that a refusal names its reason (see
/// [`RawCampusConfig`]).
#[derive(Deserialize)]
pub(crate) struct RawBlacklist {
    version: u64,
    issued_at: UnixMillis,
    uids: Vec<(u8, [u8; crate::ids::CARD_UID_MAX_LEN])>,
}

impl RawBlacklist {
    /// The list as a till stored it before UIDs were checked: entries whose UID today's rule
    /// refuses are dropped (no real card has such a UID, so none of them could ever match) and
    /// named; anything else refused is still an error.
    pub(crate) fn parse_stored(mut self) -> Result<(Blacklist, Vec<String>), String> {
        let mut dropped = Vec::new();
        self.uids.retain(|(len, bytes)| {
            let wire = crate::ids::CardUidWire {
                len: *len,
                bytes: *bytes,
            };
            let keep = CardUid::try_from(wire).is_ok();
            if !keep {
                dropped.push(format!("a blacklist entry of {len} bytes"));
            }
            keep
        });
        Ok((self.parse()?, dropped))
    }

    /// The list, or why it is refused.
    pub(crate) fn parse(self) -> Result<Blacklist, String> {
        let uids = self
            .uids
            .iter()
            .enumerate()
            .map(|(i, (len, bytes))| {
                let shown: Vec<String> = bytes[..usize::from(*len).min(bytes.len())]
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect();
                let wire = crate::ids::CardUidWire {
                    len: *len,
                    bytes: *bytes,
                };
                CardUid::try_from(wire)
                    .map_err(|e| format!("entry {i} ({len} bytes, {}): {e}", shown.concat()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Blacklist::try_from(BlacklistWire {
            version: self.version,
            issued_at: self.issued_at,
            uids,
        })
        .map_err(|e| e.to_string())
    }
}

/// Why a blacklist cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlacklistError {
    #[error("blacklist has {0} entries, more than {MAX_BLACKLIST_ENTRIES}")]
    TooLong(usize),
    #[error("blacklist entries are not sorted and unique")]
    NotSorted,
    #[error("blacklist version {0} is above {MAX_DOWNLINK_VERSION}")]
    Version(u64),
}

impl Blacklist {
    /// Builds a blacklist from UIDs in any order (duplicates are dropped).
    pub fn new(
        version: u64,
        issued_at: UnixMillis,
        mut uids: Vec<CardUid>,
    ) -> Result<Blacklist, BlacklistError> {
        uids.sort_unstable();
        uids.dedup();
        if uids.len() > MAX_BLACKLIST_ENTRIES {
            return Err(BlacklistError::TooLong(uids.len()));
        }
        if version > MAX_DOWNLINK_VERSION {
            return Err(BlacklistError::Version(version));
        }
        Ok(Blacklist {
            version,
            issued_at,
            uids,
        })
    }

    /// The empty list of a till that never received one.
    pub fn empty() -> Blacklist {
        Blacklist {
            version: 0,
            issued_at: UnixMillis(0),
            uids: Vec::new(),
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn issued_at(&self) -> UnixMillis {
        self.issued_at
    }

    pub fn len(&self) -> usize {
        self.uids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    pub fn uids(&self) -> &[CardUid] {
        &self.uids
    }

    /// Whether the card is reported lost: O(log n).
    pub fn contains(&self, uid: &CardUid) -> bool {
        self.uids.binary_search(uid).is_ok()
    }

    pub fn info(&self) -> BlacklistInfo {
        BlacklistInfo {
            version: self.version,
            entries: u32::try_from(self.uids.len()).unwrap_or(u32::MAX),
            issued_at: self.issued_at,
        }
    }
}

#[cfg(test)]
mod tests;
