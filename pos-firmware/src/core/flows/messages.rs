//! Messages over every flow: the overlay (an error, an answer, a success) that stays
//! [`MESSAGE_SHOW_MS`] over the active flow's screen, and the key combos of the manual
//! (清零+1 … 清零+0, 清零+回车, 清零+删除, F2+1+7): where each goes, what the information
//! combos show, and when combos are refused.

use keymap::{Command, RecentSlot};
use shared::record::{ModeChange, PaidBy, RecordBody, SalesTally};
use shared::{Fen, UnixMillis};

use super::super::calendar::{format_wall, local_time};
use super::super::config::Lang;
use super::super::text::{self, balance, count_and_total, yuan};
use super::super::{Beep, Effect, Mode, Till, FIRMWARE_VERSION, MESSAGE_SHOW_MS, SUCCESS_SHOW_MS};
use super::entry::EntryMode;

/// A transient message over the normal screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) struct Overlay {
    pub(in crate::core) merchant: Vec<String>,
    pub(in crate::core) customer: Option<Vec<String>>,
    pub(in crate::core) until: UnixMillis,
}

impl Till {
    /// A combo from the keymap: refused unless the active flow is at rest, else carried out.
    pub(in crate::core) fn handle_combo(&mut self, command: Command) {
        let lang = self.lang();
        if command != Command::InvalidCombo && !self.combos_allowed() {
            let why = match self.mode {
                Mode::Browse(_) => text::BROWSING_CLEAR_TO_EXIT.get(lang),
                Mode::Staff(_) | Mode::CardCentre(_) => text::IN_SETUP_CLEAR_TO_EXIT.get(lang),
                Mode::Entry(_) | Mode::Sale(_) | Mode::Order(_) => {
                    text::FINISH_OR_CANCEL_THE_SALE_FIRST.get(lang)
                }
            };
            self.show_error(vec![why]);
            return;
        }
        match command {
            Command::InvalidCombo => self.show_error(vec![text::INVALID_KEY_COMBO.get(lang)]),
            Command::ShowRecentAmount(slot) => self.show_recent_amount(slot),
            Command::ShowTodayTotal => self.show_today_total(),
            Command::ShowMealTotal => self.show_meal_total(),
            Command::ToggleOffline => self.toggle_offline(),
            Command::ShowMachineInfo => self.show_machine_info(),
            Command::BrowseJournal => self.open_browser(),
            Command::ShowClock => {
                let wall = local_time(self.now, self.config.utc_offset_minutes).wall;
                let mut lines = vec![text::TILL_TIME.get(lang), format_wall(wall)];
                lines.extend(self.server_time_line());
                self.show_info(lines);
            }
            Command::EnterFixedPrice => self.enter_fixed_price(),
            Command::LeaveFixedPrice => self.leave_fixed_price(),
            Command::SetMachineNumber => self.open_staff_menu(),
            // Plain keys go to the active flow (`Till::handle_command`), never here.
            Command::Digit(_)
            | Command::Dot
            | Command::Delete
            | Command::Clear
            | Command::Enter
            | Command::Up
            | Command::Down
            | Command::F1 => {}
        }
    }

    /// Whether the combos may run now: only over amount entry or a fixed-price sale at rest.
    fn combos_allowed(&self) -> bool {
        match &self.mode {
            Mode::Entry(EntryMode::Typing(_)) => true,
            Mode::Sale(sale) => sale.combos_allowed(),
            _ => false,
        }
    }

    /// At start: unresolved sales or top-ups wait for their cards.
    pub(in crate::core) fn greet_unresolved(&mut self) {
        let count = self.snap.pending.len() + self.snap.pending_loads.len();
        if count > 0 {
            let lang = self.lang();
            let lines = vec![
                text::UNFINISHED_SALES_TO_CHECK.get(lang),
                text::tap_those_cards_again(lang, count),
            ];
            self.show_message(lines, None, Beep::Attention);
        }
    }

    pub(in crate::core) fn show_message(
        &mut self,
        merchant: Vec<String>,
        customer: Option<Vec<String>>,
        beep: Beep,
    ) {
        self.overlay = Some(Overlay {
            merchant,
            customer,
            until: self.now.saturating_add_millis(MESSAGE_SHOW_MS),
        });
        self.effects.push_back(Effect::Beep(beep));
    }

    pub(in crate::core) fn show_error(&mut self, merchant: Vec<String>) {
        self.show_message(merchant, None, Beep::Error);
    }

    /// An error the payer must see too (their card or code cannot pay).
    pub(in crate::core) fn show_error_to_both(&mut self, lines: Vec<String>) {
        self.show_message(lines.clone(), Some(lines), Beep::Error);
    }

    pub(in crate::core) fn show_info(&mut self, merchant: Vec<String>) {
        self.overlay = Some(Overlay {
            merchant,
            customer: None,
            until: self.now.saturating_add_millis(MESSAGE_SHOW_MS),
        });
    }

    /// The success screen of a money movement (a sale or a top-up) and its beep.
    pub(in crate::core) fn show_success(&mut self, title: String, amount: Fen, balance_after: Fen) {
        let lang = self.lang();
        let amount = yuan(amount);
        self.overlay = Some(Overlay {
            merchant: vec![title.clone(), amount.clone(), balance(lang, balance_after)],
            customer: Some(vec![
                format!("{title} {amount}"),
                balance(lang, balance_after),
            ]),
            until: self.now.saturating_add_millis(SUCCESS_SHOW_MS),
        });
        self.effects.push_back(Effect::Beep(Beep::Success));
    }

    pub(in crate::core) fn invalid_key(&mut self) {
        let lang = self.lang();
        self.show_error(vec![text::KEY_NOT_USED_HERE.get(lang)]);
    }

    fn show_recent_amount(&mut self, slot: RecentSlot) {
        let lang = self.lang();
        let back = match slot {
            RecentSlot::Last => 1,
            RecentSlot::SecondLast => 2,
            RecentSlot::ThirdLast => 3,
        };
        let title = match slot {
            RecentSlot::Last => text::LAST_SALE.get(lang),
            RecentSlot::SecondLast => text::SECOND_LAST_SALE.get(lang),
            RecentSlot::ThirdLast => text::THIRD_LAST_SALE.get(lang),
        };
        let recent = &self.snap.recent_amounts;
        let at = recent.len().checked_sub(back);
        let amount = at.and_then(|i| recent.get(i)).copied();
        let line = amount.map(yuan).unwrap_or_else(|| text::NONE.get(lang));
        // The method, for a sale paid by code (a card sale reads as before).
        let methods = &self.snap.recent_methods;
        let method = methods
            .len()
            .checked_sub(back)
            .and_then(|i| methods.get(i))
            .filter(|_| amount.is_some() && methods.len() == recent.len());
        let line = match method {
            Some(PaidBy::Code(method)) => format!("{line} {}", text::method_name(lang, *method)),
            Some(PaidBy::Card) | None => line,
        };
        self.show_info(vec![title, line]);
    }

    fn show_today_total(&mut self) {
        let lang = self.lang();
        let today = local_time(self.now, self.config.utc_offset_minutes).day;
        let tally = self.snap.day_tally(today);
        let codes = self
            .snap
            .code_days
            .iter()
            .find(|t| t.day == today)
            .map(|t| t.tally)
            .unwrap_or_default();
        let mut lines = vec![
            text::TODAY.get(lang),
            count_and_total(lang, tally.count, tally.total),
        ];
        lines.extend(split_line(lang, tally, codes));
        self.show_info(lines);
    }

    fn show_meal_total(&mut self) {
        let lang = self.lang();
        let local = local_time(self.now, self.config.utc_offset_minutes);
        let Some(meal) = self.config.meal_at(local.minute).cloned() else {
            return self.show_info(vec![
                text::MEAL_TOTAL.get(lang),
                text::NOT_IN_A_MEAL_PERIOD.get(lang),
            ]);
        };
        let tally = self.snap.meal_tally(local.day, meal.start);
        let codes = self
            .snap
            .code_meals
            .iter()
            .find(|m| m.day == local.day && m.meal_start == meal.start)
            .map(|m| m.tally)
            .unwrap_or_default();
        let title = text::meal_total_title(lang, &meal);
        let mut lines = vec![title, count_and_total(lang, tally.count, tally.total)];
        lines.extend(split_line(lang, tally, codes));
        self.show_info(lines);
    }

    fn toggle_offline(&mut self) {
        let lang = self.lang();
        self.snap.offline = !self.snap.offline;
        let change = if self.snap.offline {
            ModeChange::OfflineOn
        } else {
            ModeChange::OfflineOff
        };
        self.write(RecordBody::ModeChanged(change));
        let line = if self.snap.offline {
            text::OFFLINE_MODE_ON.get(lang)
        } else {
            text::OFFLINE_MODE_OFF.get(lang)
        };
        self.show_info(vec![line]);
    }

    fn show_machine_info(&mut self) {
        let lang = self.lang();
        let machine = format!("{} {}", text::MACHINE.get(lang), self.snap.machine);
        let version = format!("{} {FIRMWARE_VERSION}", text::VERSION.get(lang));
        let terminal = format!("{} {}", text::TERMINAL.get(lang), self.terminal);
        // Three lines fit under the status line: with a link, machine and version share one.
        let lines = match self.link_info_line() {
            Some(link) => vec![format!("{machine} {version}"), terminal, link],
            None => vec![machine, version, terminal],
        };
        self.show_info(lines);
    }
}

/// Clear+5 / Clear+6's third line: the card's part and the codes' part of `all`, once codes
/// paid any of it (a card-only till shows the total alone, as before).
fn split_line(lang: Lang, all: SalesTally, codes: SalesTally) -> Option<String> {
    if codes.count == 0 {
        return None;
    }
    let card = (
        all.count.saturating_sub(codes.count),
        all.total.checked_sub(codes.total).unwrap_or(Fen::ZERO),
    );
    Some(text::card_and_code_split(
        lang,
        card,
        (codes.count, codes.total),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::super::testkit::{keys, merchant, till, NOW};
    use super::*;

    #[test]
    fn combos_are_refused_while_a_typed_sale_waits_for_its_payer() {
        let mut till = till();
        keys(&mut till, "5E");
        till.handle_command(Command::ShowTodayTotal, NOW);
        assert_eq!(merchant(&till), "Finish or cancel the sale first |  | ");
    }

    #[test]
    fn a_message_stays_its_time_then_the_flow_shows_again() {
        let mut till = till();
        till.handle_command(Command::ShowTodayTotal, NOW);
        assert_eq!(merchant(&till), "Today | 0 sales ¥0.00 | ");
        assert_eq!(
            till.next_deadline(),
            Some(NOW.saturating_add_millis(MESSAGE_SHOW_MS))
        );
        till.handle_tick(NOW.saturating_add_millis(MESSAGE_SHOW_MS));
        assert_eq!(merchant(&till), "Enter amount |  | ");
    }
}
