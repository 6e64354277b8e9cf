//! Messages over every flow: the overlay (an error, an answer, a success) that stays
//! [`MESSAGE_SHOW_MS`] over the active flow's screen, and the key combos of the manual
//! (清零+1 … 清零+0, 清零+回车, 清零+删除, F2+1+7): where each goes, what the information
//! combos show, and when combos are refused.

use keymap::{Command, RecentSlot};
use shared::record::{ModeChange, RecordBody};
use shared::{Fen, UnixMillis};

use super::super::calendar::{format_wall, local_time};
use super::super::config::Lang;
use super::super::text::{balance, count_and_total, meal_name, tr, yuan};
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
                Mode::Browse(_) => tr(lang, "浏览中: 清零退出", "Browsing: Clear to exit"),
                Mode::Staff(_) | Mode::CardCentre(_) => {
                    tr(lang, "设置中: 清零退出", "In setup: Clear to exit")
                }
                Mode::Entry(_) | Mode::Sale(_) => tr(
                    lang,
                    "请先完成或取消交易",
                    "Finish or cancel the sale first",
                ),
            };
            self.show_error(vec![why]);
            return;
        }
        match command {
            Command::InvalidCombo => {
                self.show_error(vec![tr(lang, "无效组合键", "Invalid key combo")])
            }
            Command::ShowRecentAmount(slot) => self.show_recent_amount(slot),
            Command::ShowTodayTotal => self.show_today_total(),
            Command::ShowMealTotal => self.show_meal_total(),
            Command::ToggleOffline => self.toggle_offline(),
            Command::ShowMachineInfo => self.show_machine_info(),
            Command::BrowseJournal => self.open_browser(),
            Command::ShowClock => {
                let wall = local_time(self.now, self.config.utc_offset_minutes).wall;
                let mut lines = vec![tr(lang, "本机时间", "Till time"), format_wall(wall)];
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
                tr(lang, "有未完成交易待核对", "Unfinished sales to check"),
                match lang {
                    Lang::Zh => format!("{count}笔: 请原卡再刷一次"),
                    Lang::En => format!("{count}: tap those cards again"),
                },
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
        self.show_error(vec![tr(lang, "无效按键", "Key not used here")]);
    }

    fn show_recent_amount(&mut self, slot: RecentSlot) {
        let lang = self.lang();
        let back = match slot {
            RecentSlot::Last => 1,
            RecentSlot::SecondLast => 2,
            RecentSlot::ThirdLast => 3,
        };
        let title = match slot {
            RecentSlot::Last => tr(lang, "倒数第一笔", "Last sale"),
            RecentSlot::SecondLast => tr(lang, "倒数第二笔", "Second-last sale"),
            RecentSlot::ThirdLast => tr(lang, "倒数第三笔", "Third-last sale"),
        };
        let recent = &self.snap.recent_amounts;
        let amount = recent
            .len()
            .checked_sub(back)
            .and_then(|i| recent.get(i))
            .copied();
        let line = amount
            .map(yuan)
            .unwrap_or_else(|| tr(lang, "无记录", "None"));
        self.show_info(vec![title, line]);
    }

    fn show_today_total(&mut self) {
        let lang = self.lang();
        let today = local_time(self.now, self.config.utc_offset_minutes).day;
        let tally = self.snap.day_tally(today);
        self.show_info(vec![
            tr(lang, "今日累计", "Today"),
            count_and_total(lang, tally.count, tally.total),
        ]);
    }

    fn show_meal_total(&mut self) {
        let lang = self.lang();
        let local = local_time(self.now, self.config.utc_offset_minutes);
        let Some(meal) = self.config.meal_at(local.minute).cloned() else {
            return self.show_info(vec![
                tr(lang, "餐累", "Meal total"),
                tr(lang, "当前不在用餐时段", "Not in a meal period"),
            ]);
        };
        let tally = self.snap.meal_tally(local.day, meal.start);
        let title = match lang {
            Lang::Zh => format!(
                "{}累计 {}-{}",
                meal_name(lang, &meal.label),
                meal.start,
                meal.end
            ),
            Lang::En => format!(
                "{} {}-{}",
                meal_name(lang, &meal.label),
                meal.start,
                meal.end
            ),
        };
        self.show_info(vec![title, count_and_total(lang, tally.count, tally.total)]);
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
            tr(lang, "已设为脱机模式", "Offline mode on")
        } else {
            tr(lang, "已恢复联机模式", "Offline mode off")
        };
        self.show_info(vec![line]);
    }

    fn show_machine_info(&mut self) {
        let lang = self.lang();
        let machine = format!("{} {}", tr(lang, "机号", "Machine"), self.snap.machine);
        let version = format!("{} {FIRMWARE_VERSION}", tr(lang, "版本", "Version"));
        let terminal = format!("{} {}", tr(lang, "终端", "Terminal"), self.terminal);
        // Three lines fit under the status line: with a link, machine and version share one.
        let lines = match self.link_info_line() {
            Some(link) => vec![format!("{machine} {version}"), terminal, link],
            None => vec![machine, version, terminal],
        };
        self.show_info(lines);
    }
}
