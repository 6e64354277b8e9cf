//! Money as integer fen (1 yuan = 100 fen). Floats never touch money: amounts are parsed from and
//! shown as decimal text with exactly two fraction digits, and all arithmetic is checked.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Fen per yuan.
pub const FEN_PER_YUAN: u64 = 100;
/// The most fraction digits an amount may have (fen are the smallest unit).
pub const MAX_FRACTION_DIGITS: usize = 2;

/// A non-negative amount of money in fen. Signs are carried by what a record means (a sale, a
/// load), never by the amount.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Fen(u64);

/// Why a text is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyParseError {
    #[error("empty amount")]
    Empty,
    #[error("'{0}' is not a digit or a decimal point")]
    InvalidChar(char),
    #[error("more than one decimal point")]
    SecondPoint,
    #[error("more than {MAX_FRACTION_DIGITS} digits after the decimal point")]
    TooManyFractionDigits,
    #[error("amount too large")]
    Overflow,
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub const fn new(fen: u64) -> Fen {
        Fen(fen)
    }

    /// Whole yuan, for literals in tests and configuration defaults.
    pub const fn from_yuan(yuan: u64) -> Fen {
        Fen(yuan * FEN_PER_YUAN)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    pub fn checked_mul(self, times: u64) -> Option<Fen> {
        self.0.checked_mul(times).map(Fen)
    }

    /// Parses yuan written as decimal text: "12" → 1200, "12.5" → 1250, "12.05" → 1205, ".5" → 50.
    /// At most two fraction digits; no signs, no spaces, no exponent.
    pub fn parse_yuan(text: &str) -> Result<Fen, MoneyParseError> {
        if text.is_empty() {
            return Err(MoneyParseError::Empty);
        }
        let mut whole: u64 = 0;
        let mut fraction: u64 = 0;
        let mut fraction_digits: usize = 0;
        let mut seen_point = false;
        let mut seen_digit = false;
        for c in text.chars() {
            match c {
                '0'..='9' => {
                    seen_digit = true;
                    let digit = u64::from(c as u8 - b'0');
                    if seen_point {
                        if fraction_digits == MAX_FRACTION_DIGITS {
                            return Err(MoneyParseError::TooManyFractionDigits);
                        }
                        fraction = fraction * 10 + digit;
                        fraction_digits += 1;
                    } else {
                        whole = whole
                            .checked_mul(10)
                            .and_then(|w| w.checked_add(digit))
                            .ok_or(MoneyParseError::Overflow)?;
                    }
                }
                '.' if seen_point => return Err(MoneyParseError::SecondPoint),
                '.' => seen_point = true,
                other => return Err(MoneyParseError::InvalidChar(other)),
            }
        }
        if !seen_digit {
            return Err(MoneyParseError::Empty);
        }
        for _ in fraction_digits..MAX_FRACTION_DIGITS {
            fraction *= 10;
        }
        whole
            .checked_mul(FEN_PER_YUAN)
            .and_then(|w| w.checked_add(fraction))
            .map(Fen)
            .ok_or(MoneyParseError::Overflow)
    }
}

impl fmt::Display for Fen {
    /// Yuan with exactly two fraction digits: 1250 → "12.50".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{}.{:02}", self.0 / FEN_PER_YUAN, self.0 % FEN_PER_YUAN);
        f.pad(&text)
    }
}

impl FromStr for Fen {
    type Err = MoneyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fen::parse_yuan(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_forms_a_merchant_types() {
        assert_eq!(Fen::parse_yuan("12.5"), Ok(Fen(1250)));
        assert_eq!(Fen::parse_yuan("12"), Ok(Fen(1200)));
        assert_eq!(Fen::parse_yuan("12."), Ok(Fen(1200)));
        assert_eq!(Fen::parse_yuan(".5"), Ok(Fen(50)));
        assert_eq!(Fen::parse_yuan("0.05"), Ok(Fen(5)));
        assert_eq!(Fen::parse_yuan("007.10"), Ok(Fen(710)));
    }

    #[test]
    fn rejects_what_is_not_money() {
        assert_eq!(Fen::parse_yuan(""), Err(MoneyParseError::Empty));
        assert_eq!(Fen::parse_yuan("."), Err(MoneyParseError::Empty));
        assert_eq!(
            Fen::parse_yuan("1.234"),
            Err(MoneyParseError::TooManyFractionDigits)
        );
        assert_eq!(Fen::parse_yuan("1.2.3"), Err(MoneyParseError::SecondPoint));
        assert_eq!(
            Fen::parse_yuan("-1"),
            Err(MoneyParseError::InvalidChar('-'))
        );
        assert_eq!(
            Fen::parse_yuan("1e3"),
            Err(MoneyParseError::InvalidChar('e'))
        );
        assert_eq!(
            Fen::parse_yuan("99999999999999999999"),
            Err(MoneyParseError::Overflow)
        );
        // The whole part fits u64 but not once multiplied by 100.
        assert_eq!(
            Fen::parse_yuan("184467440737095517"),
            Err(MoneyParseError::Overflow)
        );
    }

    #[test]
    fn shows_two_fraction_digits() {
        assert_eq!(Fen(1250).to_string(), "12.50");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(0).to_string(), "0.00");
        assert_eq!(format!("{:>8}", Fen(100)), "    1.00");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Fen(5).checked_sub(Fen(6)), None);
        assert_eq!(Fen(u64::MAX).checked_add(Fen(1)), None);
        assert_eq!(Fen(u64::MAX).checked_mul(2), None);
        assert_eq!(Fen(7).checked_add(Fen(3)), Some(Fen(10)));
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(fen in 0u64..=u64::MAX) {
            prop_assert_eq!(Fen::parse_yuan(&Fen(fen).to_string()), Ok(Fen(fen)));
        }

        #[test]
        fn parse_never_panics(text in "[0-9.a-]{0,30}") {
            let _ = Fen::parse_yuan(&text);
        }
    }
}
