//! The staff menu behind F2+1+7: the PIN prompt (wrong PINs counted and the lockout journaled,
//! so a restart resets neither), the menu itself, and setting the machine number. The card
//! centre (`card_centre.rs`) opens from here.

use keymap::Command;
use shared::record::{RecordBody, StaffPinState};
use shared::{MachineNumber, UnixMillis};

use super::super::config::{self};
use super::super::text::{self};
use super::super::{Mode, Till};
use super::card_centre::CentreMode;

/// Wrong staff PINs in a row before the staff menu locks.
pub const MAX_STAFF_PIN_ATTEMPTS: u8 = 3;
/// How long the staff menu stays locked after too many wrong PINs.
pub const STAFF_PIN_LOCKOUT_MS: u64 = 5 * 60 * 1000;
/// The most digits of a machine number (1-9999).
const MACHINE_NUMBER_DIGITS_MAX: usize = 4;

/// Types `command` into a buffer of at most `max` digits: a digit is appended while there is
/// room, Delete removes the last one. False (nothing changed) for any other key or a digit over
/// `max`.
fn type_digit(digits: &mut String, command: Command, max: usize) -> bool {
    match command {
        Command::Digit(d) if digits.len() < max => digits.push(char::from(b'0' + d.min(9))),
        Command::Delete => {
            digits.pop();
        }
        _ => return false,
    }
    true
}

/// The states of the staff menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) enum StaffMode {
    /// Typing the PIN.
    Pin(String),
    /// The menu: 1 machine number, 2 issue cards, 3 top-up.
    Menu,
    /// Typing a new machine number.
    MachineNumber(String),
}

impl Till {
    /// A plain key while the staff menu is active.
    pub(in crate::core) fn staff_key(&mut self, mode: StaffMode, command: Command) -> Mode {
        let lang = self.lang();
        match mode {
            StaffMode::Pin(mut pin) => match command {
                _ if type_digit(&mut pin, command, config::STAFF_PIN_LEN_MAX) => {
                    Mode::Staff(StaffMode::Pin(pin))
                }
                Command::Clear => self.resting_mode(),
                Command::Enter => self.check_staff_pin(&pin),
                _ => {
                    self.invalid_key();
                    Mode::Staff(StaffMode::Pin(pin))
                }
            },
            StaffMode::Menu => match command {
                Command::Digit(d) => self.staff_menu_choice(d),
                Command::Clear => self.resting_mode(),
                _ => {
                    self.show_error(vec![text::PICK_1_3_CLEAR_EXITS.get(lang)]);
                    Mode::Staff(StaffMode::Menu)
                }
            },
            StaffMode::MachineNumber(mut digits) => match command {
                _ if type_digit(&mut digits, command, MACHINE_NUMBER_DIGITS_MAX) => {
                    Mode::Staff(StaffMode::MachineNumber(digits))
                }
                Command::Clear => self.resting_mode(),
                Command::Enter => match MachineNumber::parse(&digits) {
                    Ok(new) => {
                        self.set_machine_number(new);
                        self.resting_mode()
                    }
                    Err(_) => {
                        self.show_error(vec![text::NUMBER_MUST_BE_1_9999.get(lang)]);
                        Mode::Staff(StaffMode::MachineNumber(digits))
                    }
                },
                _ => {
                    self.invalid_key();
                    Mode::Staff(StaffMode::MachineNumber(digits))
                }
            },
        }
    }

    /// F2+1+7: the PIN prompt, unless the lockout is on.
    pub(in crate::core) fn open_staff_menu(&mut self) {
        let lang = self.lang();
        if let Some(until) = self.pin_locked_until() {
            let minutes = until.millis_since(self.now).div_ceil(60_000);
            return self.show_error(vec![text::pin_locked_for(lang, minutes)]);
        }
        self.mode = Mode::Staff(StaffMode::Pin(String::new()));
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
    fn check_staff_pin(&mut self, pin: &str) -> Mode {
        let lang = self.lang();
        let now = self.now;
        let current = self.snap.staff_pin;
        let lockout_over = current.locked_until.is_some_and(|until| now >= until);
        if pin == self.config.staff_pin {
            if current != StaffPinState::default() {
                self.snap.staff_pin = StaffPinState::default();
                self.write(RecordBody::StaffPinChanged(self.snap.staff_pin));
            }
            return Mode::Staff(StaffMode::Menu);
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
            self.show_error(vec![text::WRONG_PIN_LOCKED.get(lang)]);
            return self.resting_mode();
        }
        self.show_error(vec![text::WRONG_PIN.get(lang)]);
        Mode::Staff(StaffMode::Pin(String::new()))
    }

    /// A digit picked in the staff menu.
    fn staff_menu_choice(&mut self, digit: u8) -> Mode {
        match digit {
            1 => Mode::Staff(StaffMode::MachineNumber(String::new())),
            2 => Mode::CardCentre(CentreMode::IssueAwaitingCard),
            3 => CentreMode::load_amount(),
            _ => {
                let lang = self.lang();
                self.show_error(vec![text::PICK_1_3.get(lang)]);
                Mode::Staff(StaffMode::Menu)
            }
        }
    }

    fn set_machine_number(&mut self, new: MachineNumber) {
        let lang = self.lang();
        let old = self.snap.machine;
        if old == new {
            return self.show_info(vec![text::NUMBER_UNCHANGED.get(lang), new.to_string()]);
        }
        self.snap.machine = new;
        self.write(RecordBody::MachineNumberChanged { old, new });
        self.show_info(vec![text::MACHINE_NUMBER_NOW.get(lang), new.to_string()]);
    }

    /// The merchant's body lines and the customer's lines of the staff menu.
    pub(in crate::core) fn staff_screens(
        &self,
        mode: &StaffMode,
        welcome: String,
    ) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        let merchant = match mode {
            StaffMode::Pin(pin) => vec![
                text::STAFF_MENU.get(lang),
                format!("{} {}", text::PIN.get(lang), "*".repeat(pin.len())),
            ],
            StaffMode::Menu => vec![
                text::STAFF_MENU.get(lang),
                text::N1_NO_2_ISSUE_3_LOAD.get(lang),
                text::CLEAR_EXITS.get(lang),
            ],
            StaffMode::MachineNumber(digits) => vec![
                text::SET_MACHINE_NUMBER.get(lang),
                format!("{} {digits}", text::NEW_NUMBER.get(lang)),
            ],
        };
        (merchant, vec![welcome, String::new()])
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testkit::{effects, keys, records, till, NOW};
    use super::*;

    #[test]
    fn three_wrong_pins_journal_each_count_and_lock_the_menu() {
        let mut till = till();
        for _ in 0..3 {
            till.handle_command(Command::SetMachineNumber, NOW);
            keys(&mut till, "999999E");
        }
        let counts: Vec<u8> = records(&effects(&mut till))
            .into_iter()
            .filter_map(|body| match body {
                RecordBody::StaffPinChanged(state) => Some(state.failures),
                _ => None,
            })
            .collect();
        assert_eq!(counts, vec![1, 2, 3]);
        assert_eq!(
            till.snapshot().staff_pin.locked_until,
            Some(NOW.saturating_add_millis(STAFF_PIN_LOCKOUT_MS))
        );
        till.handle_command(Command::SetMachineNumber, NOW);
        assert!(
            !matches!(till.mode, Mode::Staff(_)),
            "locked: the PIN prompt does not open"
        );
    }

    #[test]
    fn the_right_pin_opens_the_menu_and_1_sets_the_machine_number() {
        let mut till = till();
        till.handle_command(Command::SetMachineNumber, NOW);
        keys(&mut till, "123456E");
        assert_eq!(till.mode, Mode::Staff(StaffMode::Menu));
        keys(&mut till, "142E");
        assert_eq!(till.snapshot().machine.to_string(), "0042");
        assert!(matches!(
            records(&effects(&mut till)).as_slice(),
            [RecordBody::MachineNumberChanged { .. }]
        ));
    }
}
