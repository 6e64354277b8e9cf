//! The key combos of the manual (清零+1 … 清零+0, 清零+回车, 清零+删除) and the staff menu behind
//! F2+1+7: what each shows or changes, and when they are refused.

use keymap::RecentSlot;
use shared::campus::MAX_FIXED_PRICE_PRESETS;
use shared::record::{ModeChange, RecordBody, StaffPinState};
use shared::{Fen, MachineNumber, UnixMillis};

use super::calendar::local_time;
use super::config::Lang;
use super::entry::AmountEntry;
use super::text::{count_and_total, meal_name, tr, yuan};
use super::{Mode, Payment, Till, FIRMWARE_VERSION, MAX_STAFF_PIN_ATTEMPTS, STAFF_PIN_LOCKOUT_MS};

impl Till {
    pub(super) fn combos_allowed(&self) -> bool {
        match &self.mode {
            Mode::Entry(_) => true,
            Mode::AwaitingPayment(payment) => payment.fixed && payment.retry.is_none(),
            _ => false,
        }
    }

    pub(super) fn show_recent_amount(&mut self, slot: RecentSlot) {
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

    pub(super) fn show_today_total(&mut self) {
        let lang = self.lang();
        let today = local_time(self.now, self.config.utc_offset_minutes).day;
        let tally = self.snap.day_tally(today);
        self.show_info(vec![
            tr(lang, "今日累计", "Today"),
            count_and_total(lang, tally.count, tally.total),
        ]);
    }

    pub(super) fn show_meal_total(&mut self) {
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

    pub(super) fn toggle_offline(&mut self) {
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

    pub(super) fn show_machine_info(&mut self) {
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

    pub(super) fn enter_fixed_price(&mut self) {
        let lang = self.lang();
        let amount = match &self.mode {
            Mode::Entry(entry) => entry.amount(),
            Mode::AwaitingPayment(_) => {
                return self.show_error(vec![tr(lang, "已在定额模式", "Already fixed-price")]);
            }
            _ => None,
        };
        let Some(amount) = amount else {
            if matches!(&self.mode, Mode::Entry(entry) if entry.is_empty())
                && !self.fixed_price_presets().is_empty()
            {
                // Nothing typed: offer the campus's presets.
                self.mode = Mode::PickFixedPrice;
                return;
            }
            return self.show_error(vec![tr(
                lang,
                "请先输入定额金额",
                "Type the fixed amount first",
            )]);
        };
        self.start_fixed_price(amount);
    }

    /// The campus configuration's fixed-price presets the till can use now (those within the
    /// per-sale maximum), in the server's order.
    pub(super) fn fixed_price_presets(&self) -> Vec<Fen> {
        self.snap
            .campus
            .as_ref()
            .map(|campus| {
                campus
                    .fixed_price_presets
                    .iter()
                    .copied()
                    .filter(|amount| !amount.is_zero() && *amount <= self.config.max_sale)
                    .take(MAX_FIXED_PRICE_PRESETS)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A digit in the preset picker: preset 1..=9.
    pub(super) fn pick_fixed_price(&mut self, digit: u8) -> Mode {
        let presets = self.fixed_price_presets();
        match usize::from(digit)
            .checked_sub(1)
            .and_then(|i| presets.get(i))
        {
            Some(&amount) => {
                self.start_fixed_price(amount);
                self.mode.clone()
            }
            None => {
                let lang = self.lang();
                self.show_error(vec![match lang {
                    Lang::Zh => format!("请选1-{}", presets.len()),
                    Lang::En => format!("Pick 1-{}", presets.len()),
                }]);
                Mode::PickFixedPrice
            }
        }
    }

    fn start_fixed_price(&mut self, amount: Fen) {
        let lang = self.lang();
        self.snap.fixed_price = Some(amount);
        self.write(RecordBody::ModeChanged(ModeChange::FixedPriceOn(amount)));
        self.mode = Mode::AwaitingPayment(Payment::new(amount, true));
        self.show_info(vec![tr(lang, "定额模式", "Fixed-price mode"), yuan(amount)]);
    }

    pub(super) fn leave_fixed_price(&mut self) {
        let lang = self.lang();
        if self.snap.fixed_price.is_none() {
            return self.show_error(vec![tr(lang, "未在定额模式", "Not in fixed-price mode")]);
        }
        self.snap.fixed_price = None;
        self.write(RecordBody::ModeChanged(ModeChange::FixedPriceOff));
        self.mode = Mode::Entry(AmountEntry::default());
        self.show_info(vec![tr(lang, "已取消定额", "Fixed price off")]);
    }

    // ----- staff menu ------------------------------------------------------------------------

    pub(super) fn open_staff_menu(&mut self) {
        let lang = self.lang();
        if let Some(until) = self.pin_locked_until() {
            let minutes = until.millis_since(self.now).div_ceil(60_000);
            return self.show_error(vec![match lang {
                Lang::Zh => format!("密码错误过多 {minutes}分钟后再试"),
                Lang::En => format!("Too many wrong PINs: wait {minutes} min"),
            }]);
        }
        self.mode = Mode::StaffPin(String::new());
    }

    /// Until when the staff menu is locked, if it is now.
    fn pin_locked_until(&self) -> Option<UnixMillis> {
        self.snap
            .staff_pin
            .locked_until
            .filter(|until| self.now < *until)
    }

    /// Enter in the PIN prompt. Every change of the wrong-PIN count is journaled (a wrong PIN,
    /// and the right one after wrong ones), so that neither a restart nor a power cut resets the
    /// count or the lockout. A lockout that is over counts as no wrong PINs.
    pub(super) fn check_staff_pin(&mut self, pin: &str) -> Mode {
        let lang = self.lang();
        let now = self.now;
        let current = self.snap.staff_pin;
        let lockout_over = current.locked_until.is_some_and(|until| now >= until);
        if pin == self.config.staff_pin {
            if current != StaffPinState::default() {
                self.snap.staff_pin = StaffPinState::default();
                self.write(RecordBody::StaffPinChanged(self.snap.staff_pin));
            }
            return Mode::StaffMenu;
        }
        let before = if lockout_over { 0 } else { current.failures };
        let failures = before.saturating_add(1);
        let locked_until = (failures >= MAX_STAFF_PIN_ATTEMPTS)
            .then(|| now.saturating_add_millis(STAFF_PIN_LOCKOUT_MS));
        self.snap.staff_pin = StaffPinState {
            failures,
            locked_until,
        };
        self.write(RecordBody::StaffPinChanged(self.snap.staff_pin));
        if locked_until.is_some() {
            self.show_error(vec![tr(lang, "密码错误 已锁定", "Wrong PIN: locked")]);
            return self.resting_mode();
        }
        self.show_error(vec![tr(lang, "密码错误", "Wrong PIN")]);
        Mode::StaffPin(String::new())
    }

    pub(super) fn set_machine_number(&mut self, new: MachineNumber) {
        let lang = self.lang();
        let old = self.snap.machine;
        if old == new {
            return self.show_info(vec![
                tr(lang, "机号未变", "Number unchanged"),
                new.to_string(),
            ]);
        }
        self.snap.machine = new;
        self.write(RecordBody::MachineNumberChanged { old, new });
        self.show_info(vec![
            tr(lang, "机号已设为", "Machine number now"),
            new.to_string(),
        ]);
    }
}
