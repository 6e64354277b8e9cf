//! What the campus server sends down through the sync daemon, as the core applies it: the campus
//! configuration (laid over the till's own settings), the lost-card blacklist and the server's
//! clock; and the state of the link itself (daemon connected, broker up, records not uploaded
//! yet), which the status line and Clear+8 show. Each downlink is applied only if it is newer
//! than what the till holds and valid, and is journaled; otherwise it is rejected with a reason
//! and nothing changes. The ranges every value must keep are checked where it is decoded
//! (`shared::codec`, `shared::campus`); what needs the till's own state (its clock, its
//! settings' ceilings, the version it holds) is checked here. Refusals the operator must see
//! start with ALARM (the link logs the reason).

use std::sync::Arc;

use shared::campus::{Blacklist, CampusConfig};
use shared::link::BrokerLink;
use shared::record::RecordBody;
use shared::UnixMillis;

use super::config::{MealLabel, MealPeriod, TillConfig, MAX_MEAL_PERIODS, MAX_SALE_CEILING};
use super::text::{self};
use super::{Effect, Till};

/// A change of the server's clock offset smaller than this is not journaled again (network delay
/// and the till's drift move it by a few hundred milliseconds all the time).
pub const SERVER_TIME_JOURNAL_THRESHOLD_MS: i64 = 2_000;
/// The most server-clock corrections journaled in one [`SERVER_TIME_JOURNAL_WINDOW_MS`]: a real
/// clock step needs one or two; a server (or a forger) alternating its time must not grow the
/// journal and the upload with a record per message. The rest are applied in memory and
/// counted ([`Till::server_time_unjournaled`], shown on Clear+0).
pub const SERVER_TIME_JOURNAL_MAX_PER_WINDOW: u32 = 4;
/// The window of [`SERVER_TIME_JOURNAL_MAX_PER_WINDOW`]: one hour of the till's clock.
pub const SERVER_TIME_JOURNAL_WINDOW_MS: u64 = 60 * 60 * 1000;
/// How far after the till's clock a blacklist's issue time may lie (the till's clock may be
/// behind the server's; Clear+0 shows by how much). Beyond it the list is refused: a list
/// issued in the future would never grow old, which switches off the offline age limit.
pub const BLACKLIST_ISSUED_AHEAD_TOLERANCE_MS: u64 = 60 * 60 * 1000;
/// Records older than this that are still not uploaded get their age on the status line.
pub const UNSENT_AGE_SHOWN_AFTER_MS: u64 = 10 * 60 * 1000;
/// The status line's width in display columns (16 Chinese characters, the display's line).
pub const STATUS_LINE_MAX_COLUMNS: usize = 32;

/// The link to the campus server as the till's drivers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// A sync daemon is connected to the till.
    pub daemon_connected: bool,
    /// The daemon's broker connection, as it last reported it (`None`: not reported yet).
    pub broker: Option<BrokerLink>,
    /// Journal records the campus server has not acknowledged.
    pub unsent: u64,
    /// When the oldest of them was written.
    pub oldest_unsent_at: Option<UnixMillis>,
}

/// How many server-clock corrections were journaled in the current window, and how many were
/// applied in memory only because the window's limit was reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerTimeLog {
    /// When the current window began (`None`: nothing journaled since start).
    window_start: Option<UnixMillis>,
    journaled_in_window: u32,
    /// Corrections beyond the threshold not journaled because of the limit, since start.
    unjournaled: u64,
}

impl ServerTimeLog {
    /// Whether one more correction may be journaled at `now`; counts it if so, else counts it
    /// as unjournaled. A clock that went back starts a new window.
    fn admit(&mut self, now: UnixMillis) -> bool {
        let window_over = self.window_start.is_none_or(|start| {
            now < start || now.millis_since(start) >= SERVER_TIME_JOURNAL_WINDOW_MS
        });
        if window_over {
            self.window_start = Some(now);
            self.journaled_in_window = 0;
        }
        if self.journaled_in_window < SERVER_TIME_JOURNAL_MAX_PER_WINDOW {
            self.journaled_in_window += 1;
            true
        } else {
            self.unjournaled = self.unjournaled.saturating_add(1);
            false
        }
    }
}

/// Why a campus configuration is refused (sent back to the daemon, logged on the server). The
/// ranges of [`CampusConfig::check`] (already enforced on every decoded configuration) and the
/// till's own ceilings.
pub fn validate_campus_config(config: &CampusConfig) -> Result<(), String> {
    config.check().map_err(|e| format!("ALARM {e}"))?;
    if config.max_sale.is_zero() || config.max_sale > MAX_SALE_CEILING {
        return Err(format!(
            "max_sale {} is not between 0.01 and {MAX_SALE_CEILING}",
            config.max_sale
        ));
    }
    if config.meal_periods.len() > MAX_MEAL_PERIODS {
        return Err(format!(
            "{} meal periods is more than this till's {MAX_MEAL_PERIODS}",
            config.meal_periods.len()
        ));
    }
    if let Some(bad) = config
        .fixed_price_presets
        .iter()
        .find(|p| p.is_zero() || **p > config.max_sale)
    {
        return Err(format!(
            "fixed-price preset {bad} is not between 0.01 and max_sale {}",
            config.max_sale
        ));
    }
    if config.offline.max_sale > config.max_sale {
        return Err(format!(
            "offline max_sale {} is above max_sale {}",
            config.offline.max_sale, config.max_sale
        ));
    }
    Ok(())
}

/// The till's own settings with the campus configuration laid over them: merchant name, meal
/// periods and the per-sale maximum come from the campus, and so do the code-payment timings
/// and the virtual-card keys when the campus sets them (`payments`; a configuration without
/// them, such as an envelope-V1 one, leaves `till.toml`'s timings and no keys); language, time
/// zone, duplicate window and staff PIN stay the till's.
pub fn effective_config(base: &TillConfig, campus: Option<&CampusConfig>) -> TillConfig {
    let Some(campus) = campus else {
        return base.clone();
    };
    let mut config = TillConfig {
        max_sale: campus.max_sale,
        merchant_name: campus.merchant_name.to_string(),
        meal_periods: campus
            .meal_periods
            .iter()
            .map(|spec| MealPeriod {
                label: meal_label(spec.name.as_str()),
                start: spec.start,
                end: spec.end,
            })
            .collect(),
        ..base.clone()
    };
    if let Some(payments) = &campus.payments {
        config.order_query_interval_ms = payments.query_interval_ms;
        config.order_pay_window_ms = payments.pay_window_ms;
        config.virtual_card_keys = payments.virtual_card_keys.clone();
    }
    config
}

fn meal_label(name: &str) -> MealLabel {
    match name.to_lowercase().as_str() {
        "早餐" | "breakfast" => MealLabel::Breakfast,
        "午餐" | "lunch" => MealLabel::Lunch,
        "晚餐" | "dinner" => MealLabel::Dinner,
        _ => MealLabel::Named(name.to_string()),
    }
}

/// Display columns of `text` (CJK and full-width characters take two).
pub fn display_columns(text: &str) -> usize {
    text.chars()
        .map(|c| if u32::from(c) >= 0x2E80 { 2 } else { 1 })
        .sum()
}

pub use super::text::short_age;

impl Till {
    /// A campus configuration from the server. Applied (and journaled) only if its version is
    /// newer than the one the till holds and it is valid; the answer is the applied version or
    /// the reason it was rejected.
    pub fn handle_campus_config(
        &mut self,
        config: CampusConfig,
        now: UnixMillis,
    ) -> Result<u64, String> {
        self.observe_time(now);
        let current = self.snap.campus.as_ref().map_or(0, |c| c.version);
        if self.snap.campus.as_ref() == Some(&config) {
            // The retained message again (every daemon reconnect brings it): already applied.
            return Ok(current);
        }
        if self.snap.campus.is_some() && config.version == current {
            return Err(format!(
                "ALARM version {current} came with other contents than the applied one; kept \
                 the applied one"
            ));
        }
        if config.version <= current {
            return Err(format!(
                "version {} is not newer than the applied version {current}",
                config.version
            ));
        }
        validate_campus_config(&config)?;
        let effective = effective_config(&self.base_config, Some(&config));
        effective.validate().map_err(|e| e.to_string())?;
        let version = config.version;
        self.snap.campus = Some(config);
        self.config = effective;
        self.write(RecordBody::CampusConfigApplied { version });
        Ok(version)
    }

    /// A lost-card blacklist from the server, replacing the one the till holds if it is newer.
    pub fn handle_blacklist(&mut self, list: Blacklist, now: UnixMillis) -> Result<u64, String> {
        self.observe_time(now);
        let current = self.snap.blacklist.map_or(0, |b| b.version);
        if self.snap.blacklist.is_some() && list.version() == current {
            // The retained message again (every daemon reconnect brings it): already held,
            // unless the server reused the version for another list.
            return match *self.blacklist == list {
                true => Ok(current),
                false => Err(format!(
                    "ALARM version {current} came with other entries than the held list; kept \
                     the held one"
                )),
            };
        }
        if list.version() <= current {
            return Err(format!(
                "version {} is not newer than the held version {current}",
                list.version()
            ));
        }
        let ahead = list.issued_at().millis_since(now);
        if ahead > BLACKLIST_ISSUED_AHEAD_TOLERANCE_MS {
            return Err(format!(
                "ALARM blacklist version {} was issued {} s after the till's clock (at most {} \
                 s allowed); kept the held one",
                list.version(),
                ahead / 1000,
                BLACKLIST_ISSUED_AHEAD_TOLERANCE_MS / 1000
            ));
        }
        let info = list.info();
        let list = Arc::new(list);
        self.snap.blacklist = Some(info);
        self.blacklist = Arc::clone(&list);
        let record = self.next_record(RecordBody::BlacklistReplaced(info));
        self.effects.push_back(Effect::ReplaceBlacklist {
            record,
            snapshot: self.snap.clone(),
            list,
        });
        Ok(info.version)
    }

    /// The campus server's clock. Refused (ALARM) outside the plausible window
    /// ([`shared::ids::PLAUSIBLE_TIME_MIN`]..=[`shared::ids::PLAUSIBLE_TIME_MAX`]). The offset
    /// (server minus till) is kept for Clear+0; it is journaled the first time and whenever it
    /// moved by more than [`SERVER_TIME_JOURNAL_THRESHOLD_MS`] since it was last journaled, at
    /// most [`SERVER_TIME_JOURNAL_MAX_PER_WINDOW`] times per [`SERVER_TIME_JOURNAL_WINDOW_MS`]
    /// (the rest are counted). Answers the offset.
    pub fn handle_server_time(
        &mut self,
        server: UnixMillis,
        now: UnixMillis,
    ) -> Result<i64, String> {
        self.observe_time(now);
        server
            .plausible()
            .map_err(|e| format!("ALARM server {e}; kept the clock offset"))?;
        let offset = server
            .0
            .checked_sub(now.0)
            .ok_or_else(|| format!("ALARM server time {} is out of range", server.0))?;
        self.server_offset = Some(offset);
        let changed = match self.snap.server_time {
            None => true,
            Some((_, journaled)) => {
                offset.abs_diff(journaled) > SERVER_TIME_JOURNAL_THRESHOLD_MS.unsigned_abs()
            }
        };
        if changed && self.server_time_log.admit(now) {
            self.snap.server_time = Some((server, offset));
            self.write(RecordBody::ServerTimeSeen {
                server,
                offset_ms: offset,
            });
        }
        Ok(offset)
    }

    /// Server-clock corrections applied but not journaled because of
    /// [`SERVER_TIME_JOURNAL_MAX_PER_WINDOW`], since the till started.
    pub fn server_time_unjournaled(&self) -> u64 {
        self.server_time_log.unjournaled
    }

    /// The link's state changed (or the unsent count did).
    pub fn handle_link_status(&mut self, status: LinkStatus, now: UnixMillis) {
        self.observe_time(now);
        let was_up = self.orders_route_up_now();
        self.link = Some(status);
        self.orders_route_changed(was_up);
    }

    /// The link as last reported (`None`: this till runs without a link server).
    pub fn link_status(&self) -> Option<LinkStatus> {
        self.link
    }

    /// The blacklist the till refuses cards by.
    pub fn blacklist(&self) -> &Blacklist {
        &self.blacklist
    }

    /// The server's clock offset (server minus till) as last seen.
    pub fn server_offset_ms(&self) -> Option<i64> {
        self.server_offset
    }

    /// The unsent part of the status line (count and age), longest form first (the caller
    /// keeps the first that fits [`STATUS_LINE_MAX_COLUMNS`], else the last). The link's state
    /// is the status line's offline reason (`screens.rs`).
    pub(super) fn link_segments(&self) -> Vec<String> {
        let Some(link) = self.link else {
            return Vec::new();
        };
        if link.unsent == 0 {
            return Vec::new();
        }
        let lang = self.lang();
        let n = link.unsent;
        let (long, short) = text::unsent_on_status(lang, n);
        match self.unsent_age_ms(&link).map(|ms| short_age(lang, ms)) {
            Some(age) => vec![format!("{long} {age}"), format!("{short} {age}"), short],
            None => vec![long, short],
        }
    }

    /// How old the oldest unsent record is, when that is worth showing.
    fn unsent_age_ms(&self, link: &LinkStatus) -> Option<u64> {
        let age = self.now.millis_since(link.oldest_unsent_at?);
        (age >= UNSENT_AGE_SHOWN_AFTER_MS).then_some(age)
    }

    /// Clear+8's line about the link.
    pub(super) fn link_info_line(&self) -> Option<String> {
        let link = self.link?;
        let lang = self.lang();
        let state = if !link.daemon_connected {
            text::LINK_DOWN_2.get(lang)
        } else {
            match link.broker {
                Some(BrokerLink::Up) => text::ONLINE.get(lang),
                Some(BrokerLink::Down) => text::SERVER_DOWN.get(lang),
                None => text::CONNECTED.get(lang),
            }
        };
        let mut line = text::link_and_unsent(lang, &state, link.unsent);
        if let Some(at) = link.oldest_unsent_at.filter(|_| link.unsent > 0) {
            line.push(' ');
            line.push_str(&short_age(lang, self.now.millis_since(at)));
        }
        Some(line)
    }

    /// Clear+0's line about the server's clock.
    pub(super) fn server_time_line(&self) -> Option<String> {
        let lang = self.lang();
        match self.server_offset {
            Some(offset) => {
                let abs = offset.unsigned_abs();
                // Shown to a tenth of a second; under that there is no sign to show.
                let sign = match offset {
                    o if abs < 100 || o == 0 => "",
                    o if o < 0 => "-",
                    _ => "+",
                };
                let seconds = format!("{sign}{}.{}", abs / 1000, (abs % 1000) / 100);
                let mut line = text::server_clock_difference(lang, &seconds);
                let unjournaled = self.server_time_log.unjournaled;
                if unjournaled > 0 {
                    line.push_str(&text::unjournaled_corrections(lang, unjournaled));
                }
                Some(line)
            }
            None if self.link.is_some() => Some(text::NO_SERVER_TIME_YET.get(lang)),
            None => None,
        }
    }

    /// Whether the card is on the lost-card blacklist.
    pub(super) fn is_blacklisted(&self, uid: &shared::CardUid) -> bool {
        self.blacklist.contains(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::Lang;
    use shared::ids::DisplayName;
    use shared::Fen;

    fn name(text: &str) -> DisplayName {
        DisplayName::new(text).unwrap()
    }

    /// How many journal records the till asked for since last asked.
    fn journaled(till: &mut Till) -> usize {
        std::iter::from_fn(|| till.poll_effect())
            .filter(|effect| matches!(effect, Effect::Journal { .. }))
            .count()
    }

    fn campus(version: u64) -> CampusConfig {
        shared::testing::campus_config(version)
    }

    #[test]
    fn campus_configs_are_validated() {
        assert_eq!(validate_campus_config(&campus(1)), Ok(()));
        let mut bad = campus(1);
        bad.max_sale = MAX_SALE_CEILING.checked_add(Fen::new(1)).unwrap();
        assert!(validate_campus_config(&bad).is_err());
        let mut bad = campus(1);
        bad.fixed_price_presets = vec![Fen::from_yuan(60)];
        assert!(validate_campus_config(&bad).is_err());
        let mut bad = campus(1);
        bad.meal_periods.push(bad.meal_periods[0].clone());
        assert!(validate_campus_config(&bad)
            .unwrap_err()
            .contains("overlap"));
        // Built in code (the simulator, a test) rather than decoded: the same ranges apply.
        let refused = validate_campus_config(&campus(u64::MAX)).unwrap_err();
        assert!(
            refused.starts_with("ALARM version 18446744073709551615"),
            "{refused}"
        );
        let mut bad = campus(1);
        bad.offline.max_blacklist_age_ms = u64::MAX;
        assert!(validate_campus_config(&bad)
            .unwrap_err()
            .contains("max_blacklist_age_ms"));
    }

    #[test]
    fn the_campus_config_overrides_name_meals_and_limit_only() {
        let base = TillConfig::default();
        let effective = effective_config(&base, Some(&campus(1)));
        assert_eq!(effective.max_sale, Fen::from_yuan(50));
        assert_eq!(effective.merchant_name, "一食堂");
        assert_eq!(effective.meal_periods.len(), 1);
        assert_eq!(effective.meal_periods[0].label, MealLabel::Lunch);
        assert_eq!(effective.staff_pin, base.staff_pin);
        assert_eq!(effective.validate(), Ok(()));
    }

    #[test]
    fn the_campus_code_payment_timings_and_keys_win_over_the_till_s_own() {
        use shared::campus::{CampusKey, CodePaymentSettings};
        let base = TillConfig {
            order_query_interval_ms: 5_000,
            order_pay_window_ms: 90_000,
            ..TillConfig::default()
        };
        // A configuration without code-payment settings (an envelope-V1 one) keeps till.toml's.
        let without = effective_config(&base, Some(&campus(1)));
        assert_eq!(
            (without.order_query_interval_ms, without.order_pay_window_ms),
            (5_000, 90_000)
        );
        assert!(without.virtual_card_keys.is_empty());
        let public = shared::paycode::signing_key_from_seed([7; 32])
            .verifying_key()
            .to_bytes();
        let key = CampusKey { id: 3, public };
        let with = CampusConfig {
            payments: Some(CodePaymentSettings {
                query_interval_ms: 2_000,
                pay_window_ms: 45_000,
                virtual_card_keys: vec![key],
                offline_codes: None,
            }),
            ..campus(2)
        };
        let mut till = Till::new(
            base.clone(),
            shared::TerminalId(7),
            shared::record::TillSnapshot::factory_new(),
            UnixMillis(1_800_000_000_000),
        );
        assert_eq!(
            till.handle_campus_config(with, UnixMillis(1_800_000_000_000)),
            Ok(2)
        );
        let applied = till.config();
        assert_eq!(
            (applied.order_query_interval_ms, applied.order_pay_window_ms),
            (2_000, 45_000)
        );
        assert_eq!(applied.virtual_card_keys, vec![key]);
        assert!(applied.virtual_card_key(3).is_some() && applied.virtual_card_key(1).is_none());
        // A restart lays the stored configuration over till.toml's again.
        let reopened = Till::new(
            base,
            shared::TerminalId(7),
            till.snapshot().clone(),
            UnixMillis(1_800_000_000_000),
        );
        assert_eq!(reopened.config().order_pay_window_ms, 45_000);
        assert_eq!(reopened.config().virtual_card_keys, vec![key]);
    }

    fn till(lang: Lang) -> Till {
        let config = TillConfig {
            lang,
            ..TillConfig::default()
        };
        Till::new(
            config,
            shared::TerminalId(7),
            shared::record::TillSnapshot::factory_new(),
            UnixMillis(1_800_000_000_000),
        )
    }

    fn status(till: &Till) -> String {
        till.displays().merchant.lines[0].clone()
    }

    #[test]
    fn the_status_line_shows_the_link_within_its_width() {
        let now = UnixMillis(1_800_000_000_000);
        let mut zh = till(Lang::Zh);
        assert_eq!(
            status(&zh),
            "机号0001 联机",
            "no link server: nothing to lose"
        );
        let mut link = LinkStatus {
            daemon_connected: false,
            broker: None,
            unsent: 3,
            oldest_unsent_at: Some(UnixMillis(now.0 - 60_000)),
        };
        zh.handle_link_status(link, now);
        assert_eq!(status(&zh), "机号0001 脱机 链路断 未上传3笔");
        link.daemon_connected = true;
        link.broker = Some(BrokerLink::Up);
        link.oldest_unsent_at = Some(UnixMillis(now.0 - 2 * 3_600_000));
        zh.handle_link_status(link, now);
        assert_eq!(status(&zh), "机号0001 联机 未上传3笔 2时");
        link.unsent = 0;
        zh.handle_link_status(link, now);
        assert_eq!(status(&zh), "机号0001 联机");

        let mut en = till(Lang::En);
        link.unsent = 12_345;
        link.broker = Some(BrokerLink::Down);
        en.handle_link_status(link, now);
        let line = status(&en);
        // The state and the count always stay; the age goes first when the line is full.
        assert_eq!(line, "No.0001 OFFLINE NET DOWN U12345", "{line}");
        assert!(display_columns(&line) <= STATUS_LINE_MAX_COLUMNS, "{line}");
    }

    #[test]
    fn clear_8_shows_the_link_the_unsent_count_and_the_oldest_ones_age() {
        let now = UnixMillis(1_800_000_000_000);
        let clear_8 = |till: &mut Till| {
            till.handle_command(keymap::Command::ShowMachineInfo, now);
            till.displays().merchant.lines.clone()
        };
        let mut zh = till(Lang::Zh);
        let mut link = LinkStatus {
            daemon_connected: true,
            broker: Some(BrokerLink::Down),
            unsent: 42,
            // Younger than the status line's threshold: Clear+8 shows the age anyway.
            oldest_unsent_at: Some(UnixMillis(now.0 - 3 * 60_000)),
        };
        zh.handle_link_status(link, now);
        assert!(!status(&zh).contains("3分"), "{}", status(&zh));
        let lines = clear_8(&mut zh);
        assert_eq!(
            lines.last().unwrap(),
            "服务器断开 未上传42笔 3分",
            "{lines:?}"
        );

        link.broker = Some(BrokerLink::Up);
        link.oldest_unsent_at = Some(UnixMillis(now.0 - 3 * 86_400_000));
        let mut en = till(Lang::En);
        en.handle_link_status(link, now);
        let lines = clear_8(&mut en);
        assert_eq!(lines.last().unwrap(), "online, 42 unsent 3d", "{lines:?}");

        link.unsent = 0;
        link.daemon_connected = false;
        en.handle_link_status(link, now);
        let lines = clear_8(&mut en);
        assert_eq!(lines.last().unwrap(), "link down, 0 unsent", "{lines:?}");
    }

    #[test]
    fn server_time_is_journaled_first_and_on_a_real_change_only() {
        let now = UnixMillis(1_800_000_000_000);
        let mut till = till(Lang::Zh);
        let journaled = |till: &mut Till| {
            let mut count = 0;
            while let Some(effect) = till.poll_effect() {
                count += usize::from(matches!(effect, Effect::Journal { .. }));
            }
            count
        };
        assert_eq!(
            till.handle_server_time(UnixMillis(now.0 + 5_000), now),
            Ok(5_000)
        );
        assert_eq!(journaled(&mut till), 1);
        let later = UnixMillis(now.0 + 60_000);
        let drift = SERVER_TIME_JOURNAL_THRESHOLD_MS - 1;
        till.handle_server_time(UnixMillis(later.0 + 5_000 + drift), later)
            .unwrap();
        assert_eq!(journaled(&mut till), 0);
        till.handle_server_time(UnixMillis(later.0 - 1_000), later)
            .unwrap();
        assert_eq!(journaled(&mut till), 1);
        assert_eq!(till.server_offset_ms(), Some(-1_000));
        assert_eq!(till.server_time_line().as_deref(), Some("服务器差 -1.0秒"));
        till.handle_server_time(UnixMillis(later.0 + 2_345), later)
            .unwrap();
        assert_eq!(till.server_time_line().as_deref(), Some("服务器差 +2.3秒"));
        // A few milliseconds either way: no sign (not "-0.0").
        till.handle_server_time(UnixMillis(later.0 - 40), later)
            .unwrap();
        assert_eq!(till.server_time_line().as_deref(), Some("服务器差 0.0秒"));
    }

    #[test]
    fn older_or_invalid_downlinks_change_nothing() {
        let now = UnixMillis(1_800_000_000_000);
        let mut till = till(Lang::Zh);
        assert_eq!(till.handle_campus_config(campus(2), now), Ok(2));
        while till.poll_effect().is_some() {}
        let before = till.snapshot().clone();
        // The same message again (retained, after a reconnect): already applied, nothing new.
        assert_eq!(till.handle_campus_config(campus(2), now), Ok(2));
        assert!(till.poll_effect().is_none(), "nothing journaled again");
        // The same version with other contents: refused.
        let mut reused = campus(2);
        reused.merchant_name = name("二食堂");
        assert!(till
            .handle_campus_config(reused, now)
            .unwrap_err()
            .contains("ALARM"));
        assert!(till.handle_campus_config(campus(1), now).is_err());
        let mut bad = campus(3);
        bad.max_sale = Fen::ZERO;
        assert!(till.handle_campus_config(bad, now).is_err());
        assert!(till
            .handle_blacklist(Blacklist::new(0, now, vec![]).unwrap(), now)
            .is_err());
        assert_eq!(till.snapshot(), &before);
        assert_eq!(till.config().max_sale, Fen::from_yuan(50));

        let uid = shared::CardUid::new(&[1, 2, 3, 4]).unwrap();
        let list = |entries| Blacklist::new(5, now, entries).unwrap();
        assert_eq!(till.handle_blacklist(list(vec![uid]), now), Ok(5));
        while till.poll_effect().is_some() {}
        let before = till.snapshot().clone();
        assert_eq!(till.handle_blacklist(list(vec![uid]), now), Ok(5));
        assert!(till.poll_effect().is_none(), "nothing journaled again");
        assert!(till
            .handle_blacklist(list(vec![]), now)
            .unwrap_err()
            .contains("ALARM"));
        assert!(till
            .handle_blacklist(Blacklist::new(4, now, vec![]).unwrap(), now)
            .is_err());
        assert_eq!(till.snapshot(), &before);
        assert!(till.is_blacklisted(&uid));
    }

    #[test]
    fn alternating_server_times_journal_a_few_corrections_an_hour_and_count_the_rest() {
        let start = UnixMillis(1_800_000_000_000);
        let mut till = till(Lang::Zh);
        // 300 messages 0.1 s apart whose offsets alternate 100 s apart: each one a "change".
        for i in 0..300i64 {
            let now = UnixMillis(start.0 + 100 * i);
            let server = UnixMillis(now.0 + if i % 2 == 0 { 0 } else { 100_000 });
            till.handle_server_time(server, now).unwrap();
        }
        let limit = SERVER_TIME_JOURNAL_MAX_PER_WINDOW as usize;
        assert_eq!(journaled(&mut till), limit, "not 300");
        // The last journaled offset is +100 s (message 3): every later even message moved it
        // by 100 s and was counted; the odd ones equal it and are no correction at all.
        assert_eq!(
            till.server_time_unjournaled(),
            (limit as u64..300).step_by(2).count() as u64
        );
        assert_eq!(till.server_time_unjournaled(), 148);
        // The last one is applied in memory all the same, and Clear+0 shows the count.
        assert_eq!(till.server_offset_ms(), Some(100_000));
        assert_eq!(
            till.server_time_line().as_deref(),
            Some("服务器差 +100.0秒 未记148次")
        );
        // The next window journals a correction again.
        let later = UnixMillis(start.0 + SERVER_TIME_JOURNAL_WINDOW_MS as i64 + 30_000);
        till.handle_server_time(later, later).unwrap();
        assert_eq!(journaled(&mut till), 1);
        assert_eq!(till.snapshot().server_time, Some((later, 0)));
    }

    #[test]
    fn server_times_outside_the_plausible_window_are_refused_and_change_nothing() {
        let now = UnixMillis(1_800_000_000_000);
        let mut till = till(Lang::Zh);
        till.handle_server_time(UnixMillis(now.0 + 1_500), now)
            .unwrap();
        assert_eq!(journaled(&mut till), 1);
        for server in [UnixMillis(0), UnixMillis(i64::MAX), UnixMillis(i64::MIN)] {
            let refused = till.handle_server_time(server, now).unwrap_err();
            assert!(refused.starts_with("ALARM server time"), "{refused}");
            assert!(refused.contains("plausible window"), "{refused}");
        }
        assert_eq!(journaled(&mut till), 0);
        assert_eq!(till.server_offset_ms(), Some(1_500));
    }

    #[test]
    fn a_blacklist_issued_in_the_future_is_refused_with_an_alarm() {
        let now = UnixMillis(1_800_000_000_000);
        let mut till = till(Lang::Zh);
        let uid = shared::CardUid::new(&[1, 2, 3, 4]).unwrap();
        let tolerance = BLACKLIST_ISSUED_AHEAD_TOLERANCE_MS as i64;
        // Within the tolerance (the till's clock a little behind the server's): applied.
        let slightly_ahead = UnixMillis(now.0 + tolerance);
        let list = Blacklist::new(2, slightly_ahead, vec![uid]).unwrap();
        assert_eq!(till.handle_blacklist(list, now), Ok(2));
        while till.poll_effect().is_some() {}
        let before = till.snapshot().clone();
        // A year ahead: it would never grow old, so the offline age limit would never apply.
        let next_year = UnixMillis(now.0 + 365 * 86_400_000);
        let list = Blacklist::new(3, next_year, vec![]).unwrap();
        let refused = till.handle_blacklist(list, now).unwrap_err();
        assert!(
            refused.starts_with("ALARM blacklist version 3 was issued 31536000 s after"),
            "{refused}"
        );
        assert_eq!(till.snapshot(), &before);
        assert!(till.poll_effect().is_none());
        assert!(till.is_blacklisted(&uid));
    }

    #[test]
    fn ages_and_columns() {
        assert_eq!(short_age(Lang::Zh, 25 * 60_000), "25分");
        assert_eq!(short_age(Lang::En, 3 * 3_600_000), "3h");
        assert_eq!(short_age(Lang::En, 72 * 3_600_000), "3d");
        assert_eq!(display_columns("机号0001 联机"), 13);
    }

    #[test]
    fn the_campus_presets_are_offered_by_clear_enter_on_an_empty_amount() {
        use keymap::Command;
        let now = UnixMillis(1_800_000_000_000);
        let mut till = till(Lang::Zh);
        // Without presets, Clear+Enter on nothing typed asks for an amount.
        till.handle_command(Command::EnterFixedPrice, now);
        assert!(till.displays().merchant.lines[1].contains("请先输入定额金额"));
        let mut config = campus(1);
        config.fixed_price_presets = vec![Fen::from_yuan(8), Fen::new(1250), Fen::from_yuan(15)];
        assert_eq!(till.handle_campus_config(config, now), Ok(1));
        while till.poll_effect().is_some() {}
        till.handle_command(Command::EnterFixedPrice, now);
        let shown = till.displays().merchant.lines.join(" | ");
        assert!(shown.contains("1:8.00 2:12.50 3:15.00"), "{shown}");
        till.handle_command(Command::Digit(7), now);
        assert!(till.displays().merchant.lines[1].contains("请选1-3"));
        till.handle_command(Command::Digit(2), now);
        assert_eq!(till.snapshot().fixed_price, Some(Fen::new(1250)));
        let journaled: Vec<RecordBody> = std::iter::from_fn(|| till.poll_effect())
            .filter_map(|effect| match effect {
                Effect::Journal { record, .. } => Some(record.body),
                _ => None,
            })
            .collect();
        assert_eq!(
            journaled,
            vec![RecordBody::ModeChanged(
                shared::record::ModeChange::FixedPriceOn(Fen::new(1250))
            )]
        );
    }
}
