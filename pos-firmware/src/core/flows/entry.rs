//! Amount entry: the merchant types an amount (checked key by key against the per-sale maximum)
//! and Enter opens a sale for it; Clear+Enter turns the typed amount, or one of the campus's
//! presets, into a fixed price; Clear+Del leaves fixed price.

use keymap::Command;
use shared::campus::MAX_FIXED_PRICE_PRESETS;
use shared::record::{ModeChange, RecordBody};
use shared::Fen;

use super::super::amount::{AmountEntry, EntryError};
use super::super::text::{self, yuan};
use super::super::{Mode, Till};
use super::sale::SaleMode;

/// Fixed-price presets shown per display line ("1:8.00 2:10.00 3:12.00 4:15.00").
const PRESETS_PER_LINE: usize = 4;

/// The states of amount entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) enum EntryMode {
    /// Idle or typing an amount.
    Typing(AmountEntry),
    /// Clear+Enter with nothing typed: pick one of the campus's fixed-price presets.
    PickFixedPrice,
}

impl Default for EntryMode {
    fn default() -> EntryMode {
        EntryMode::Typing(AmountEntry::default())
    }
}

impl Till {
    /// A plain key while amount entry is active.
    pub(in crate::core) fn entry_key(&mut self, mode: EntryMode, command: Command) -> Mode {
        let lang = self.lang();
        match mode {
            EntryMode::Typing(mut entry) => {
                match command {
                    Command::Digit(d) => self.type_amount(&mut entry, Some(d)),
                    Command::Dot => self.type_amount(&mut entry, None),
                    Command::Delete => entry.delete(),
                    Command::Clear => entry.clear(),
                    Command::Enter => match entry.amount() {
                        Some(amount) => return self.open_sale(amount),
                        None => self.show_error(vec![text::ENTER_AN_AMOUNT_FIRST.get(lang)]),
                    },
                    _ => self.invalid_key(),
                }
                Mode::Entry(EntryMode::Typing(entry))
            }
            EntryMode::PickFixedPrice => match command {
                Command::Digit(d) => self.pick_fixed_price(d),
                Command::Clear => self.resting_mode(),
                _ => {
                    self.show_error(vec![text::PICK_A_NUMBER_CLEAR.get(lang)]);
                    Mode::Entry(EntryMode::PickFixedPrice)
                }
            },
        }
    }

    fn type_amount(&mut self, entry: &mut AmountEntry, key: Option<u8>) {
        let lang = self.lang();
        if let Err(error) = entry.push(key, self.config.max_sale) {
            let line = match error {
                EntryError::TooManyDecimals => text::AT_MOST_2_DECIMALS.get(lang),
                EntryError::SecondPoint => text::ALREADY_HAS_A_POINT.get(lang),
                EntryError::OverMax(max) => text::over_the_sale_limit(lang, max),
            };
            self.show_error(vec![line]);
        }
    }

    /// Clear+Enter: the typed amount becomes the fixed price, or, with nothing typed, the
    /// campus's presets are offered.
    pub(in crate::core) fn enter_fixed_price(&mut self) {
        let lang = self.lang();
        let amount = match &self.mode {
            Mode::Entry(EntryMode::Typing(entry)) => entry.amount(),
            Mode::Sale(_) => {
                return self.show_error(vec![text::ALREADY_FIXED_PRICE.get(lang)]);
            }
            _ => None,
        };
        let Some(amount) = amount else {
            if matches!(&self.mode, Mode::Entry(EntryMode::Typing(entry)) if entry.is_empty())
                && !self.fixed_price_presets().is_empty()
            {
                // Nothing typed: offer the campus's presets.
                self.mode = Mode::Entry(EntryMode::PickFixedPrice);
                return;
            }
            return self.show_error(vec![text::TYPE_THE_FIXED_AMOUNT_FIRST.get(lang)]);
        };
        self.start_fixed_price(amount);
    }

    /// The campus configuration's fixed-price presets the till can use now (those within the
    /// per-sale maximum), in the server's order.
    fn fixed_price_presets(&self) -> Vec<Fen> {
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
    fn pick_fixed_price(&mut self, digit: u8) -> Mode {
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
                self.show_error(vec![text::pick_one_to(lang, presets.len())]);
                Mode::Entry(EntryMode::PickFixedPrice)
            }
        }
    }

    fn start_fixed_price(&mut self, amount: Fen) {
        let lang = self.lang();
        self.snap.fixed_price = Some(amount);
        self.write(RecordBody::ModeChanged(ModeChange::FixedPriceOn(amount)));
        self.mode = Mode::Sale(SaleMode::fixed(amount));
        self.show_info(vec![text::FIXED_PRICE_MODE.get(lang), yuan(amount)]);
    }

    /// Clear+Del: back to typed amounts.
    pub(in crate::core) fn leave_fixed_price(&mut self) {
        let lang = self.lang();
        if self.snap.fixed_price.is_none() {
            return self.show_error(vec![text::NOT_IN_FIXED_PRICE_MODE.get(lang)]);
        }
        self.snap.fixed_price = None;
        self.write(RecordBody::ModeChanged(ModeChange::FixedPriceOff));
        self.mode = Mode::Entry(EntryMode::default());
        self.show_info(vec![text::FIXED_PRICE_OFF.get(lang)]);
    }

    /// The merchant's body lines and the customer's lines of amount entry.
    pub(in crate::core) fn entry_screens(
        &self,
        mode: &EntryMode,
        welcome: String,
    ) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        match mode {
            EntryMode::Typing(entry) => {
                let typed = entry.shown();
                (
                    vec![text::ENTER_AMOUNT.get(lang), typed.clone()],
                    vec![welcome, typed],
                )
            }
            EntryMode::PickFixedPrice => {
                let presets: Vec<String> = self
                    .fixed_price_presets()
                    .iter()
                    .enumerate()
                    .map(|(i, amount)| format!("{}:{amount}", i + 1))
                    .collect();
                let rows: Vec<String> = presets
                    .chunks(PRESETS_PER_LINE)
                    .map(|row| row.join(" "))
                    .collect();
                let mut lines = Vec::new();
                if rows.len() < 3 {
                    lines.push(text::PICK_FIXED_PRICE_CLEAR.get(lang));
                }
                lines.extend(rows);
                (lines, vec![welcome, String::new()])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testkit::{keys, merchant, till};
    use super::*;

    #[test]
    fn typing_an_amount_and_enter_opens_a_sale_for_it() {
        let mut till = till();
        keys(&mut till, "12.5");
        assert_eq!(merchant(&till), "Enter amount | ¥12.5 | ");
        keys(&mut till, "E");
        assert_eq!(
            till.mode,
            Mode::Sale(SaleMode::typed(Fen::new(1_250))),
            "Enter opens the sale"
        );
    }

    #[test]
    fn a_key_over_the_sale_limit_changes_nothing_and_says_why() {
        let mut till = till();
        keys(&mut till, "2001");
        assert_eq!(merchant(&till), "Over the limit ¥200.00 |  | ");
        keys(&mut till, "D");
        assert_eq!(merchant(&till), "Enter amount | ¥20 | ", "the 200 stayed");
    }

    #[test]
    fn enter_with_nothing_typed_opens_no_sale() {
        let mut till = till();
        keys(&mut till, "0E");
        assert_eq!(merchant(&till), "Enter an amount first |  | ");
        assert!(matches!(till.mode, Mode::Entry(EntryMode::Typing(_))));
    }

    #[test]
    fn clear_enter_makes_the_typed_amount_the_fixed_price_and_journals_it() {
        let mut till = till();
        keys(&mut till, "8");
        till.handle_command(Command::EnterFixedPrice, super::super::super::testkit::NOW);
        assert_eq!(till.mode, Mode::Sale(SaleMode::fixed(Fen::from_yuan(8))));
        assert_eq!(till.snapshot().fixed_price, Some(Fen::from_yuan(8)));
    }
}
