//! The till's behaviour settings as the core sees them (already parsed and validated), with the
//! named limits and their defaults. Reading them from a file is the driver's job
//! (`crate::settings`).

use shared::campus::{
    CampusKey, MAX_ORDER_PAY_WINDOW_MS, MAX_ORDER_QUERY_INTERVAL_MS, MIN_ORDER_PAY_WINDOW_MS,
    MIN_ORDER_QUERY_INTERVAL_MS,
};
use shared::paycode::CampusVerifyingKey;
use shared::qrpay::TerminalQrKey;
use shared::{Fen, MinuteOfDay};

/// Default most one sale may charge. Canteen meals cost a few yuan; a typo of an extra digit
/// must not charge a student ¥150 instead of ¥15.
pub const DEFAULT_MAX_SALE: Fen = Fen::from_yuan(200);
/// The most any configuration may allow per sale.
pub const MAX_SALE_CEILING: Fen = Fen::from_yuan(10_000);
/// China Standard Time, the campus's local time.
pub const DEFAULT_UTC_OFFSET_MINUTES: i32 = 8 * 60;
/// How long after a sale the same payer paying the same amount gets the duplicate reminder.
pub const DEFAULT_DUPLICATE_WINDOW_MS: u64 = 10 * 60 * 1000;
/// The staff PIN of a till fresh from the factory; card-center staff change it in the settings.
pub const DEFAULT_STAFF_PIN: &str = "123456";
/// The most meal periods a day can have.
pub const MAX_MEAL_PERIODS: usize = 6;
/// PIN length bounds.
pub const STAFF_PIN_LEN_MIN: usize = 4;
pub const STAFF_PIN_LEN_MAX: usize = 8;

/// How often the till asks the campus server about an order whose payer is confirming on the
/// phone (campus-configurable).
pub const DEFAULT_ORDER_QUERY_INTERVAL_MS: u64 = 3_000;
/// The allowed range of the order query interval: often enough to show "paid" within seconds,
/// seldom enough not to flood the campus server. The same range as the campus configuration's
/// (`shared::campus`), which overrides `till.toml`'s.
pub const ORDER_QUERY_INTERVAL_RANGE_MS: std::ops::RangeInclusive<u64> =
    MIN_ORDER_QUERY_INTERVAL_MS..=MAX_ORDER_QUERY_INTERVAL_MS;
/// How long the payer has, from the scan, to confirm a code payment on the phone before the
/// till reverses the order.
pub const DEFAULT_ORDER_PAY_WINDOW_MS: u64 = 60_000;
/// The allowed range of the payment window: long enough to type a wallet password, short
/// enough that a queue does not wait on one payer (and a campus code is valid about a minute).
/// The same range as the campus configuration's.
pub const ORDER_PAY_WINDOW_RANGE_MS: std::ops::RangeInclusive<u64> =
    MIN_ORDER_PAY_WINDOW_MS..=MAX_ORDER_PAY_WINDOW_MS;

/// The language of the till's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// How a meal period is called on the display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MealLabel {
    Breakfast,
    Lunch,
    Dinner,
    Named(String),
}

/// A meal period of the day, start inclusive, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealPeriod {
    pub label: MealLabel,
    pub start: MinuteOfDay,
    pub end: MinuteOfDay,
}

impl MealPeriod {
    pub fn contains(&self, minute: MinuteOfDay) -> bool {
        self.start <= minute && minute < self.end
    }
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("max_sale must be between 0.01 and {MAX_SALE_CEILING}")]
    MaxSale,
    #[error("meal period {0}: start must be before end")]
    MealOrder(usize),
    #[error("meal periods {0} and {1} overlap")]
    MealOverlap(usize, usize),
    #[error("at most {MAX_MEAL_PERIODS} meal periods")]
    TooManyMeals,
    #[error("staff PIN must be {STAFF_PIN_LEN_MIN} to {STAFF_PIN_LEN_MAX} digits")]
    StaffPin,
    #[error("UTC offset must be within ±14 hours")]
    UtcOffset,
    #[error("payments query interval must be 1 to 30 seconds")]
    OrderQueryInterval,
    #[error("payments pay window must be 20 to 300 seconds, and longer than the query interval")]
    OrderPayWindow,
}

/// Everything the core needs to know about how this till should behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TillConfig {
    pub lang: Lang,
    pub max_sale: Fen,
    pub meal_periods: Vec<MealPeriod>,
    pub utc_offset_minutes: i32,
    pub duplicate_window_ms: u64,
    pub staff_pin: String,
    pub merchant_name: String,
    /// How often an order whose payer confirms on the phone is asked about.
    pub order_query_interval_ms: u64,
    /// How long the payer has to confirm before the order is reversed.
    pub order_pay_window_ms: u64,
    /// The campus's virtual-card public keys (from the campus configuration only; checked
    /// there). Empty: a virtual-card code's signature is left to the campus server.
    pub virtual_card_keys: Vec<CampusKey>,
    /// How long acknowledged records stay in the journal (`till.toml` `[journal]`
    /// `retention_days`; the runtime prunes, the core never reads it).
    pub journal_retention_days: u32,
    /// This till's key for its offline QR orders (`till.toml` `qr_key_file`, installed with the
    /// till's configuration; `docs/offline-qr.md`). `None`: offline, the till takes cards only.
    pub qr_key: Option<TerminalQrKey>,
    /// The simulator's stand-in for the card centre's key provisioning: with no `qr_key`, the
    /// till's key is derived from this campus QR master key for its terminal when the journal
    /// opens (`TerminalQrKey::derive`). Set only by the simulator and the script runner (the
    /// simulated campus's `SIM_QR_MASTER_KEY`); a real till never holds a campus master key.
    pub demo_qr_master: Option<[u8; shared::qrpay::QR_KEY_BYTES]>,
}

impl Default for TillConfig {
    fn default() -> Self {
        let hm = |h, m| MinuteOfDay::from_hm(h, m).unwrap_or(MinuteOfDay::MIDNIGHT);
        TillConfig {
            lang: Lang::Zh,
            max_sale: DEFAULT_MAX_SALE,
            meal_periods: vec![
                MealPeriod {
                    label: MealLabel::Breakfast,
                    start: hm(6, 0),
                    end: hm(9, 30),
                },
                MealPeriod {
                    label: MealLabel::Lunch,
                    start: hm(10, 30),
                    end: hm(13, 30),
                },
                MealPeriod {
                    label: MealLabel::Dinner,
                    start: hm(16, 30),
                    end: hm(19, 30),
                },
            ],
            utc_offset_minutes: DEFAULT_UTC_OFFSET_MINUTES,
            duplicate_window_ms: DEFAULT_DUPLICATE_WINDOW_MS,
            staff_pin: DEFAULT_STAFF_PIN.to_string(),
            merchant_name: String::new(),
            order_query_interval_ms: DEFAULT_ORDER_QUERY_INTERVAL_MS,
            order_pay_window_ms: DEFAULT_ORDER_PAY_WINDOW_MS,
            journal_retention_days: crate::journal::DEFAULT_RETENTION_DAYS,
            virtual_card_keys: Vec::new(),
            qr_key: None,
            demo_qr_master: None,
        }
    }
}

impl TillConfig {
    /// Checks the invariants the core relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_sale.is_zero() || self.max_sale > MAX_SALE_CEILING {
            return Err(ConfigError::MaxSale);
        }
        if self.meal_periods.len() > MAX_MEAL_PERIODS {
            return Err(ConfigError::TooManyMeals);
        }
        for (i, meal) in self.meal_periods.iter().enumerate() {
            if meal.start >= meal.end {
                return Err(ConfigError::MealOrder(i));
            }
            for (j, other) in self.meal_periods.iter().enumerate().skip(i + 1) {
                if meal.start < other.end && other.start < meal.end {
                    return Err(ConfigError::MealOverlap(i, j));
                }
            }
        }
        let pin_ok = (STAFF_PIN_LEN_MIN..=STAFF_PIN_LEN_MAX).contains(&self.staff_pin.len())
            && self.staff_pin.bytes().all(|b| b.is_ascii_digit());
        if !pin_ok {
            return Err(ConfigError::StaffPin);
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return Err(ConfigError::UtcOffset);
        }
        if !ORDER_QUERY_INTERVAL_RANGE_MS.contains(&self.order_query_interval_ms) {
            return Err(ConfigError::OrderQueryInterval);
        }
        if !ORDER_PAY_WINDOW_RANGE_MS.contains(&self.order_pay_window_ms)
            || self.order_pay_window_ms <= self.order_query_interval_ms
        {
            return Err(ConfigError::OrderPayWindow);
        }
        Ok(())
    }

    /// The campus public key of virtual-card key `id`, if the till holds it.
    pub fn virtual_card_key(&self, id: u8) -> Option<CampusVerifyingKey> {
        self.virtual_card_keys
            .iter()
            .find(|key| key.id == id)
            .and_then(CampusKey::verifying_key)
    }

    /// The meal period `minute` falls in, if any.
    pub fn meal_at(&self, minute: MinuteOfDay) -> Option<&MealPeriod> {
        self.meal_periods.iter().find(|meal| meal.contains(minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_brief() {
        let config = TillConfig::default();
        assert_eq!(config.validate(), Ok(()));
        let lunch = config
            .meal_at(MinuteOfDay::from_hm(12, 0).unwrap())
            .unwrap();
        assert_eq!(lunch.label, MealLabel::Lunch);
        assert!(config
            .meal_at(MinuteOfDay::from_hm(9, 30).unwrap())
            .is_none());
        assert!(config
            .meal_at(MinuteOfDay::from_hm(19, 29).unwrap())
            .is_some());
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut config = TillConfig {
            max_sale: Fen::ZERO,
            ..TillConfig::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::MaxSale));
        config.max_sale = Fen::from_yuan(20);
        config.meal_periods[1].start = MinuteOfDay::from_hm(9, 0).unwrap();
        assert_eq!(config.validate(), Err(ConfigError::MealOverlap(0, 1)));
        config = TillConfig {
            staff_pin: "12a4".into(),
            ..TillConfig::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::StaffPin));
        config = TillConfig {
            order_query_interval_ms: 500,
            ..TillConfig::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::OrderQueryInterval));
        config = TillConfig {
            order_pay_window_ms: 10_000,
            ..TillConfig::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::OrderPayWindow));
    }
}
