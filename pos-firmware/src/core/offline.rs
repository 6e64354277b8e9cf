//! Offline acceptance limits. While the till cannot reach the campus server (offline mode is on,
//! no sync daemon is connected, or the daemon has no broker), the server cannot cross-check sales
//! against its ledger or send a fresh blacklist, so the campus configuration caps the risk: the
//! most one offline sale may charge, the most one card may spend at this till per day, the most
//! money the not-yet-uploaded sales may add up to, and how old the oldest unsent record and the
//! blacklist may be. Without a campus configuration the till has no such limits (it was never
//! told any). Each refusal names the limit on both displays.

use shared::link::BrokerLink;
use shared::{Fen, UnixMillis};

use super::downlink::LinkStatus;
use super::text::{self};
use super::Till;

/// What the journal holds that the campus server has not acknowledged; the drivers report it
/// with the facts of each tap ([`super::card::CardFacts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnsentSummary {
    /// Records not acknowledged.
    pub count: u64,
    /// When the oldest of them was written.
    pub oldest_at: Option<UnixMillis>,
    /// The committed sales among them, summed.
    pub sales_total: Fen,
}

impl Till {
    /// Whether the till sells without the campus server: offline mode, or no working link.
    pub fn is_offline(&self) -> bool {
        let link_up = matches!(
            self.link,
            Some(LinkStatus {
                daemon_connected: true,
                broker: Some(BrokerLink::Up),
                ..
            })
        );
        self.snap.offline || !link_up
    }

    /// Why an offline sale of `amount` by a card that already spent `spent_today` at this till
    /// today is refused, as display lines; `None` when it may go ahead.
    pub(super) fn offline_refusal(&self, amount: Fen, spent_today: Fen) -> Option<Vec<String>> {
        let limits = self.snap.campus.as_ref()?.offline;
        if !self.is_offline() {
            return None;
        }
        let lang = self.lang();
        let limit_line = |name, limit| text::limit_line(lang, name, limit);
        let first = text::OFFLINE_LIMIT.get(lang);
        if amount > limits.max_sale {
            return Some(vec![first, limit_line(text::PER_SALE, limits.max_sale)]);
        }
        if spent_today
            .checked_add(amount)
            .is_none_or(|day| day > limits.max_per_card_per_day)
        {
            return Some(vec![
                first,
                limit_line(text::PER_CARD_A_DAY, limits.max_per_card_per_day),
            ]);
        }
        let unsent_after = self.unsent.sales_total.checked_add(amount);
        if unsent_after.is_none_or(|total| total > limits.max_unsent_total) {
            return Some(vec![
                first,
                limit_line(text::UNSENT_TOTAL, limits.max_unsent_total),
                text::RECONNECT_TO_UPLOAD.get(lang),
            ]);
        }
        let too_old =
            |at: UnixMillis, max_ms: u64| at <= self.now && self.now.millis_since(at) > max_ms;
        if self
            .unsent
            .oldest_at
            .is_some_and(|at| too_old(at, limits.max_unsent_age_ms))
        {
            return Some(vec![
                first,
                text::UNSENT_RECORDS_TOO_OLD.get(lang),
                text::RECONNECT_TO_UPLOAD.get(lang),
            ]);
        }
        // A till that never received a blacklist cannot tell lost cards: as good as too old.
        let blacklist_stale = self
            .snap
            .blacklist
            .is_none_or(|info| too_old(info.issued_at, limits.max_blacklist_age_ms));
        if blacklist_stale {
            return Some(vec![
                first,
                text::BLACKLIST_TOO_OLD.get(lang),
                text::RECONNECT_TO_UPDATE.get(lang),
            ]);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::card::{CardFacts, CardHistory, CardImage, CardRead};
    use crate::core::config::TillConfig;
    use crate::core::Effect;
    use keymap::Command;
    use shared::campus::{Blacklist, CampusConfig, OfflineLimits};
    use shared::record::{RecordBody, TillSnapshot, TxnTag};
    use shared::{CardUid, TerminalId};

    const NOW: UnixMillis = UnixMillis(1_800_000_000_000);
    const HOUR_MS: u64 = 3_600_000;

    fn limits() -> OfflineLimits {
        OfflineLimits {
            max_sale: Fen::from_yuan(20),
            max_per_card_per_day: Fen::from_yuan(50),
            max_unsent_total: Fen::from_yuan(1_000),
            max_unsent_age_ms: 24 * HOUR_MS,
            max_blacklist_age_ms: 48 * HOUR_MS,
        }
    }

    /// A till with a campus configuration (and, if asked, a blacklist issued `blacklist_age` ago).
    fn campus_till(blacklist_age_ms: Option<u64>) -> Till {
        let mut till = Till::new(
            TillConfig::default(),
            TerminalId(9),
            TillSnapshot::factory_new(),
            NOW,
        );
        let config = CampusConfig {
            version: 1,
            merchant_name: shared::ids::DisplayName::EMPTY,
            meal_periods: Vec::new(),
            max_sale: Fen::from_yuan(100),
            fixed_price_presets: Vec::new(),
            offline: limits(),
            payments: None,
        };
        till.handle_campus_config(config, NOW).unwrap();
        if let Some(age) = blacklist_age_ms {
            let issued = UnixMillis(NOW.0 - i64::try_from(age).unwrap());
            let list = Blacklist::new(1, issued, Vec::new()).unwrap();
            till.handle_blacklist(list, NOW).unwrap();
        }
        while till.poll_effect().is_some() {}
        till
    }

    /// Types `yuan`, Enter, taps a card with ¥500 that spent `spent` today; returns whether a
    /// sale intent was written, and the merchant's screen.
    fn pay(till: &mut Till, yuan: u8, spent: Fen) -> (bool, String) {
        pay_with(till, yuan, spent, UnsentSummary::default())
    }

    /// [`pay`], with `unsent` as what the journal reports unsent at the tap.
    fn pay_with(till: &mut Till, yuan: u8, spent: Fen, unsent: UnsentSummary) -> (bool, String) {
        for digit in yuan.to_string().bytes() {
            till.handle_command(Command::Digit(digit - b'0'), NOW);
        }
        till.handle_command(Command::Enter, NOW);
        let card = CardImage {
            uid: CardUid::new(&[1, 2, 3, 4]).unwrap(),
            balance: Fen::from_yuan(500),
            counter: 3,
            last_tag: TxnTag(0),
        };
        let day = crate::core::calendar::local_time(NOW, till.config.utc_offset_minutes).day;
        let history = CardHistory {
            known_counter: Some(3),
            spent: Some((day, spent)),
        };
        till.handle_card(CardRead::Card(card), NOW);
        till.handle_card_facts(CardFacts { history, unsent }, NOW);
        let intent = std::iter::from_fn(|| till.poll_effect()).any(|effect| {
            matches!(effect, Effect::Journal { record, .. }
                if matches!(record.body, RecordBody::SaleIntent(_)))
        });
        let screen = till.displays().merchant.lines.join(" | ");
        till.handle_command(Command::Clear, NOW); // leave the message / the sale
        till.handle_command(Command::Clear, NOW);
        (intent, screen)
    }

    #[test]
    fn offline_sales_are_capped_by_the_campus_limits() {
        let mut till = campus_till(Some(HOUR_MS));
        assert!(till.is_offline(), "no link: offline");
        let (paid, screen) = pay(&mut till, 21, Fen::ZERO);
        assert!(!paid && screen.contains("脱机单笔限额 ¥20.00"), "{screen}");
        let (paid, screen) = pay(&mut till, 20, Fen::from_yuan(31));
        assert!(!paid && screen.contains("每卡每日限额 ¥50.00"), "{screen}");
        let (paid, screen) = pay(&mut till, 20, Fen::from_yuan(30));
        assert!(paid, "exactly at the daily limit is allowed: {screen}");
    }

    #[test]
    fn unsent_money_and_age_and_an_old_blacklist_stop_offline_sales() {
        let mut till = campus_till(Some(HOUR_MS));
        let unsent = UnsentSummary {
            count: 10,
            oldest_at: Some(NOW),
            sales_total: Fen::from_yuan(990),
        };
        let (paid, screen) = pay_with(&mut till, 11, Fen::ZERO, unsent);
        assert!(
            !paid && screen.contains("未上传金额上限 ¥1000.00"),
            "{screen}"
        );
        let unsent = UnsentSummary {
            count: 10,
            oldest_at: Some(UnixMillis(NOW.0 - 25 * 3_600_000)),
            sales_total: Fen::ZERO,
        };
        let (paid, screen) = pay_with(&mut till, 5, Fen::ZERO, unsent);
        assert!(!paid && screen.contains("未上传记录过久"), "{screen}");

        let mut stale = campus_till(Some(49 * HOUR_MS));
        let (paid, screen) = pay(&mut stale, 5, Fen::ZERO);
        assert!(!paid && screen.contains("黑名单过期"), "{screen}");
        let mut never = campus_till(None);
        let (paid, screen) = pay(&mut never, 5, Fen::ZERO);
        assert!(!paid && screen.contains("黑名单过期"), "{screen}");
    }

    #[test]
    fn online_or_without_a_campus_configuration_there_are_no_offline_limits() {
        let mut online = campus_till(None);
        online.handle_link_status(
            LinkStatus {
                daemon_connected: true,
                broker: Some(BrokerLink::Up),
                unsent: 0,
                oldest_unsent_at: None,
            },
            NOW,
        );
        assert!(!online.is_offline());
        assert!(pay(&mut online, 90, Fen::from_yuan(400)).0);
        let mut plain = Till::new(
            TillConfig::default(),
            TerminalId(9),
            TillSnapshot::factory_new(),
            NOW,
        );
        assert!(plain.is_offline());
        assert!(pay(&mut plain, 150, Fen::from_yuan(400)).0);
    }
}
