//! Sample values the tests of every crate build on, kept here once so that a test of the
//! firmware, of the journal and of `shared`'s decoders mean the same campus when they say "the
//! sample configuration". Compiled only with the `test-fixtures` feature, which only
//! dev-dependencies turn on: nothing here reaches a till or the daemon.

use crate::campus::{CampusConfig, MealPeriodSpec, OfflineLimits};
use crate::ids::DisplayName;
use crate::{Fen, MinuteOfDay};

/// Offline limits a campus would send: ¥20 a sale, ¥100 a card a day, ¥5,000 unsent, a day
/// old at most (unsent records and the blacklist).
pub fn offline_limits() -> OfflineLimits {
    OfflineLimits {
        max_sale: Fen::from_yuan(20),
        max_per_card_per_day: Fen::from_yuan(100),
        max_unsent_total: Fen::from_yuan(5000),
        max_unsent_age_ms: 86_400_000,
        max_blacklist_age_ms: 86_400_000,
    }
}

/// A valid campus configuration of `version`: merchant 一食堂, lunch 11:00–13:00, sales up to
/// ¥50, one fixed price of ¥8, and [`offline_limits`].
pub fn campus_config(version: u64) -> CampusConfig {
    let name = |text: &str| DisplayName::new(text).expect("a valid sample name");
    let minute = |hour, minute| MinuteOfDay::from_hm(hour, minute).expect("a valid sample time");
    CampusConfig {
        version,
        merchant_name: name("一食堂"),
        meal_periods: vec![MealPeriodSpec {
            name: name("午餐"),
            start: minute(11, 0),
            end: minute(13, 0),
        }],
        max_sale: Fen::from_yuan(50),
        fixed_price_presets: vec![Fen::from_yuan(8)],
        offline: offline_limits(),
        payments: None,
    }
}
