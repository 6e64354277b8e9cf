//! The till's physical keys ([`TillKey`]) and their one stable text form.
//!
//! Everything that names a key in text (the headless script format, the combo scenario files, logs)
//! goes through the `Display`/`FromStr` pair here, so there is exactly one spelling to learn and to
//! parse.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ParseError;

/// The largest value a digit key can carry: the keypad has the digits `0..=9` only.
pub const MAX_DIGIT: u8 = 9;

/// A physical key of the till's keypad.
///
/// `Digit(n)` with `n > 9` can be built in code (the field is public) but names no real key: it
/// is rejected by [`TillKey::digit`], `FromStr` and `Deserialize`, and ignored by the combo
/// detector (see [`TillKey::is_valid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TillKey {
    /// A digit key, `0..=9`.
    Digit(#[serde(deserialize_with = "deserialize_digit")] u8),
    /// The decimal point.
    Dot,
    /// 清零: clears the entry, and starts the `Clear+…` combos.
    Clear,
    /// 删除: deletes the last typed character.
    Delete,
    /// 回车: confirms the amount.
    Enter,
    /// Function key 1.
    F1,
    /// Function key 2: starts the staff sequence `F2+1+7`.
    F2,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
}

impl TillKey {
    /// Every real key of the keypad, digits first, in keypad order.
    pub const ALL: [TillKey; 18] = [
        TillKey::Digit(0),
        TillKey::Digit(1),
        TillKey::Digit(2),
        TillKey::Digit(3),
        TillKey::Digit(4),
        TillKey::Digit(5),
        TillKey::Digit(6),
        TillKey::Digit(7),
        TillKey::Digit(8),
        TillKey::Digit(9),
        TillKey::Dot,
        TillKey::Clear,
        TillKey::Delete,
        TillKey::Enter,
        TillKey::F1,
        TillKey::F2,
        TillKey::Up,
        TillKey::Down,
    ];

    /// The digit key for `n`, or `None` if `n` is not a single decimal digit.
    pub const fn digit(n: u8) -> Option<TillKey> {
        if n <= MAX_DIGIT {
            Some(TillKey::Digit(n))
        } else {
            None
        }
    }

    /// Whether this value names a real key; `false` only for `Digit(n)` with `n > 9`.
    pub const fn is_valid(self) -> bool {
        match self {
            TillKey::Digit(n) => n <= MAX_DIGIT,
            _ => true,
        }
    }

    /// The key's Chinese name as printed on the keypad or in the manual (清零, 删除, 回车, …).
    ///
    /// Keys without a Chinese legend (digits, F1, F2) return their text form; an invalid digit
    /// returns `"?"`.
    pub fn name_zh(self) -> &'static str {
        const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        match self {
            TillKey::Digit(n) => DIGITS.get(usize::from(n)).copied().unwrap_or("?"),
            TillKey::Dot => "小数点",
            TillKey::Clear => "清零",
            TillKey::Delete => "删除",
            TillKey::Enter => "回车",
            TillKey::F1 => "F1",
            TillKey::F2 => "F2",
            TillKey::Up => "上",
            TillKey::Down => "下",
        }
    }
}

/// The stable ASCII text form: `0`..`9`, `.`, `Clear`, `Del`, `Enter`, `F1`, `F2`, `Up`, `Down`.
///
/// An invalid `Digit(n)` (`n > 9`) prints as its number, which `FromStr` then rejects.
impl fmt::Display for TillKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TillKey::Digit(n) => write!(f, "{n}"),
            TillKey::Dot => f.write_str("."),
            TillKey::Clear => f.write_str("Clear"),
            TillKey::Delete => f.write_str("Del"),
            TillKey::Enter => f.write_str("Enter"),
            TillKey::F1 => f.write_str("F1"),
            TillKey::F2 => f.write_str("F2"),
            TillKey::Up => f.write_str("Up"),
            TillKey::Down => f.write_str("Down"),
        }
    }
}

/// What [`TillKey`]'s `FromStr` accepts, for error messages.
const TILL_KEY_SPELLINGS: &str =
    "0-9, '.', Dot, Clear, Del, Delete, Enter, F1, F2, Up, Down (any case), 清零, 删除 or 回车";

/// Parses the [`Display`](fmt::Display) form, ASCII case-insensitively, plus the aliases `Dot`,
/// `Delete` and the keypad's Chinese legends 清零, 删除, 回车. Surrounding whitespace is not
/// accepted.
impl FromStr for TillKey {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = match s.to_ascii_lowercase().as_str() {
            "." | "dot" => TillKey::Dot,
            "clear" | "清零" => TillKey::Clear,
            "del" | "delete" | "删除" => TillKey::Delete,
            "enter" | "回车" => TillKey::Enter,
            "f1" => TillKey::F1,
            "f2" => TillKey::F2,
            "up" => TillKey::Up,
            "down" => TillKey::Down,
            other => match parse_single_digit(other) {
                Some(n) => TillKey::Digit(n),
                None => return Err(ParseError::new("till key", s, TILL_KEY_SPELLINGS)),
            },
        };
        Ok(key)
    }
}

/// `Some(n)` if `s` is exactly one ASCII digit.
pub(crate) fn parse_single_digit(s: &str) -> Option<u8> {
    match s.as_bytes() {
        // `checked_sub` cannot fail inside this range; it keeps the no-arithmetic lint honest.
        [b @ b'0'..=b'9'] => b.checked_sub(b'0'),
        _ => None,
    }
}

/// Which of the last three sale amounts `Clear+1` / `Clear+2` / `Clear+3` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecentSlot {
    /// 倒数第三笔: the sale two before the last one (`Clear+1`).
    ThirdLast,
    /// 倒数第二笔: the sale before the last one (`Clear+2`).
    SecondLast,
    /// 倒数第一笔: the last sale (`Clear+3`).
    Last,
}

impl RecentSlot {
    /// Every slot, oldest first.
    pub const ALL: [RecentSlot; 3] = [
        RecentSlot::ThirdLast,
        RecentSlot::SecondLast,
        RecentSlot::Last,
    ];

    /// How many sales lie between this one and the last one: 2, 1 or 0.
    ///
    /// Indexing a newest-first list of sales with this value gives the asked-for sale.
    pub const fn sales_before_last(self) -> usize {
        match self {
            RecentSlot::ThirdLast => 2,
            RecentSlot::SecondLast => 1,
            RecentSlot::Last => 0,
        }
    }

    /// The variant name, which is also the text form.
    pub const fn name(self) -> &'static str {
        match self {
            RecentSlot::ThirdLast => "ThirdLast",
            RecentSlot::SecondLast => "SecondLast",
            RecentSlot::Last => "Last",
        }
    }
}

/// The variant name: `ThirdLast`, `SecondLast` or `Last`.
impl fmt::Display for RecentSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses the exact variant name (case-sensitive).
impl FromStr for RecentSlot {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecentSlot::ALL
            .into_iter()
            .find(|slot| slot.name() == s)
            .ok_or_else(|| ParseError::new("recent slot", s, "ThirdLast, SecondLast or Last"))
    }
}

/// Deserializes a digit key's value, refusing anything above [`MAX_DIGIT`].
pub(crate) fn deserialize_digit<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<u8, D::Error> {
    let n = u8::deserialize(deserializer)?;
    if n <= MAX_DIGIT {
        Ok(n)
    } else {
        Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Unsigned(u64::from(n)),
            &"a decimal digit 0..=9",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_for_every_key() {
        for key in TillKey::ALL {
            let text = key.to_string();
            assert_eq!(text.parse::<TillKey>(), Ok(key), "{text}");
            assert_eq!(text.to_lowercase().parse::<TillKey>(), Ok(key), "{text}");
            assert_eq!(text.to_uppercase().parse::<TillKey>(), Ok(key), "{text}");
        }
    }

    #[test]
    fn chinese_legends_and_aliases_parse() {
        assert_eq!("清零".parse(), Ok(TillKey::Clear));
        assert_eq!("删除".parse(), Ok(TillKey::Delete));
        assert_eq!("回车".parse(), Ok(TillKey::Enter));
        assert_eq!("delete".parse(), Ok(TillKey::Delete));
        assert_eq!("DOT".parse(), Ok(TillKey::Dot));
    }

    #[test]
    fn junk_does_not_parse() {
        for bad in [
            "", " 1", "1 ", "10", "-1", "١", "F3", "tick", "Clear+1", "Digit(1)",
        ] {
            let err = bad.parse::<TillKey>().expect_err(bad);
            assert!(err.to_string().contains("till key"), "{err}");
        }
    }

    #[test]
    fn digit_helper_and_validity() {
        for n in 0..=u8::MAX {
            assert_eq!(TillKey::digit(n).is_some(), n <= 9);
            assert_eq!(TillKey::Digit(n).is_valid(), n <= 9);
        }
        assert!(TillKey::ALL.iter().all(|k| k.is_valid()));
        assert_eq!(TillKey::Digit(12).to_string(), "12");
        assert_eq!(TillKey::Digit(12).name_zh(), "?");
    }

    #[test]
    fn recent_slot_text_and_offsets() {
        for slot in RecentSlot::ALL {
            assert_eq!(slot.to_string().parse(), Ok(slot));
        }
        assert!("last".parse::<RecentSlot>().is_err());
        let offsets = RecentSlot::ALL.map(RecentSlot::sales_before_last);
        assert_eq!(offsets, [2, 1, 0]);
    }

    #[test]
    fn serde_round_trips_and_rejects_out_of_range_digits() {
        for key in TillKey::ALL {
            let bytes = postcard::to_stdvec(&key).expect("serializing to a Vec cannot fail");
            assert_eq!(postcard::from_bytes::<TillKey>(&bytes), Ok(key));
        }
        let bad =
            postcard::to_stdvec(&TillKey::Digit(10)).expect("serializing to a Vec cannot fail");
        assert!(postcard::from_bytes::<TillKey>(&bad).is_err());
    }
}
