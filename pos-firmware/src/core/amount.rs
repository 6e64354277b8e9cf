//! The amount the merchant is typing: digits and one decimal point, at most two decimals, never
//! above the till's per-sale maximum. Every key is checked as it is typed, so a refused key
//! changes nothing and the merchant learns why at once.

use shared::money::MAX_FRACTION_DIGITS;
use shared::Fen;

/// The most characters an amount can have on the display ("10000.00").
pub const AMOUNT_TEXT_MAX_LEN: usize = 8;

/// Why a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// A third digit after the decimal point.
    TooManyDecimals,
    /// A second decimal point.
    SecondPoint,
    /// The amount would exceed the per-sale maximum.
    OverMax(Fen),
}

/// The text typed so far, always a valid prefix of an amount within the limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmountEntry {
    text: String,
}

impl AmountEntry {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The amount as the displays show it while it is typed: "¥12.5", or nothing.
    pub fn shown(&self) -> String {
        if self.text.is_empty() {
            String::new()
        } else {
            format!("¥{}", self.text)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.clear();
    }

    pub fn delete(&mut self) {
        self.text.pop();
    }

    /// The amount typed, if it is a non-zero amount.
    pub fn amount(&self) -> Option<Fen> {
        Fen::parse_yuan(&self.text)
            .ok()
            .filter(|fen| !fen.is_zero())
    }

    /// Types a digit (0..=9) or, with `None`, the decimal point.
    pub fn push(&mut self, key: Option<u8>, max: Fen) -> Result<(), EntryError> {
        let mut next = self.text.clone();
        match key {
            None if next.contains('.') => return Err(EntryError::SecondPoint),
            None if next.is_empty() => next.push_str("0."),
            None => next.push('.'),
            Some(digit) => {
                if let Some((_, fraction)) = next.split_once('.') {
                    if fraction.len() >= MAX_FRACTION_DIGITS {
                        return Err(EntryError::TooManyDecimals);
                    }
                }
                if next == "0" {
                    next.clear(); // "05" is typed as 5
                }
                next.push(char::from(b'0' + digit.min(9)));
            }
        }
        // Parse errors past this point can only be overflow: the text holds digits and one point.
        match Fen::parse_yuan(&next) {
            Ok(amount) if amount <= max && next.len() <= AMOUNT_TEXT_MAX_LEN => {
                self.text = next;
                Ok(())
            }
            _ => Err(EntryError::OverMax(max)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &str) -> (AmountEntry, Vec<EntryError>) {
        let mut entry = AmountEntry::default();
        let mut errors = Vec::new();
        for c in keys.chars() {
            let key = c.to_digit(10).map(|d| d as u8);
            if let Err(e) = entry.push(key, Fen::from_yuan(200)) {
                errors.push(e);
            }
        }
        (entry, errors)
    }

    #[test]
    fn typing_builds_an_amount() {
        assert_eq!(typed("12.5").0.amount(), Some(Fen::new(1250)));
        assert_eq!(typed(".5").0.text(), "0.5");
        assert_eq!(typed("05").0.text(), "5");
        assert_eq!(typed("0").0.amount(), None);
        assert_eq!(typed("0.00").0.amount(), None);
    }

    #[test]
    fn bad_keys_change_nothing() {
        let (entry, errors) = typed("1.234");
        assert_eq!(entry.text(), "1.23");
        assert_eq!(errors, vec![EntryError::TooManyDecimals]);
        let (entry, errors) = typed("1.2.");
        assert_eq!(entry.text(), "1.2");
        assert_eq!(errors, vec![EntryError::SecondPoint]);
        let (entry, errors) = typed("2001");
        assert_eq!(entry.text(), "200");
        assert_eq!(errors, vec![EntryError::OverMax(Fen::from_yuan(200))]);
        let (entry, errors) = typed("200.01");
        assert_eq!(entry.text(), "200.0");
        assert_eq!(errors.len(), 1);
        let (entry, _) = typed("99999999999999999999999");
        assert_eq!(entry.text(), "99");
    }

    #[test]
    fn delete_removes_the_last_key() {
        let (mut entry, _) = typed("12.5");
        entry.delete();
        assert_eq!(entry.text(), "12.");
        entry.clear();
        assert!(entry.is_empty());
        entry.delete();
        assert!(entry.is_empty());
    }
}
