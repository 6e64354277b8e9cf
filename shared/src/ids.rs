//! Identifiers and time stamps shared by the till, the journal and the wire: machine numbers,
//! terminal ids, journal sequence numbers, card UIDs, instants, local days, minutes of the day
//! and the names shown on the displays.
//!
//! Parse, don't validate: a [`CardUid`], a [`MinuteOfDay`] or a [`DisplayName`] cannot hold an
//! invalid value, whether built in code or decoded from bytes (their `Deserialize` goes through
//! the same check as their constructor, so the link, MQTT, `till.toml` and the journal all get
//! one rule; the encoded bytes are those of the plain fields, unchanged).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The highest machine number card-center staff can give a till (four digits on the keypad).
pub const MACHINE_NUMBER_MAX: u16 = 9999;

/// The number card-center staff give a till (F2+1+7); shown on receipts and the server's reports.
/// It is a label of the merchant's position, not the till's identity: see [`TerminalId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MachineNumber(u16);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("machine number must be 1..={MACHINE_NUMBER_MAX}")]
pub struct MachineNumberError;

impl MachineNumber {
    /// The number of a till that staff have not set up yet.
    pub const FACTORY_DEFAULT: MachineNumber = MachineNumber(1);

    pub fn new(number: u16) -> Result<MachineNumber, MachineNumberError> {
        if (1..=MACHINE_NUMBER_MAX).contains(&number) {
            Ok(MachineNumber(number))
        } else {
            Err(MachineNumberError)
        }
    }

    /// Parses the digits staff type on the keypad.
    pub fn parse(digits: &str) -> Result<MachineNumber, MachineNumberError> {
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MachineNumberError);
        }
        digits
            .parse::<u16>()
            .map_err(|_| MachineNumberError)
            .and_then(MachineNumber::new)
    }

    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for MachineNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

/// The till's permanent identity, made once when its journal is created and never changed, not
/// even by a new machine number. With [`Seq`] it names every record uniquely across the campus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TerminalId(pub u64);

impl fmt::Display for TerminalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A journal sequence number: contiguous per terminal from [`Seq::FIRST`], never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Seq(pub u64);

impl Seq {
    pub const FIRST: Seq = Seq(1);

    /// The number after this one; `None` only after 2^64 - 1 records.
    pub fn next(self) -> Option<Seq> {
        self.0.checked_add(1).map(Seq)
    }

    pub fn prev(self) -> Option<Seq> {
        self.0
            .checked_sub(1)
            .filter(|&p| p >= Seq::FIRST.0)
            .map(Seq)
    }

    /// Big-endian bytes, so that byte order is numeric order (journal keys).
    pub fn to_key(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    pub fn from_key(key: &[u8]) -> Option<Seq> {
        <[u8; 8]>::try_from(key)
            .ok()
            .map(|bytes| Seq(u64::from_be_bytes(bytes)))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The most bytes a card UID has (ISO 14443-3 triple-size UID).
pub const CARD_UID_MAX_LEN: usize = 10;

/// A contactless card's UID: 4, 7 or 10 bytes (unused bytes are zero, so equal UIDs compare
/// equal). Decoding checks the same, see [`CardUidWire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "CardUidWire")]
pub struct CardUid {
    len: u8,
    bytes: [u8; CARD_UID_MAX_LEN],
}

/// The encoded shape of a [`CardUid`], checked before it becomes one.
#[derive(Deserialize)]
pub(crate) struct CardUidWire {
    pub(crate) len: u8,
    pub(crate) bytes: [u8; CARD_UID_MAX_LEN],
}

impl TryFrom<CardUidWire> for CardUid {
    type Error = CardUidError;

    fn try_from(wire: CardUidWire) -> Result<CardUid, CardUidError> {
        let len = usize::from(wire.len);
        if len > CARD_UID_MAX_LEN || wire.bytes[len..].iter().any(|&b| b != 0) {
            return Err(CardUidError);
        }
        CardUid::new(&wire.bytes[..len])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a card UID has 4, 7 or 10 bytes")]
pub struct CardUidError;

impl CardUid {
    pub fn new(uid: &[u8]) -> Result<CardUid, CardUidError> {
        if !matches!(uid.len(), 4 | 7 | 10) {
            return Err(CardUidError);
        }
        let mut bytes = [0u8; CARD_UID_MAX_LEN];
        bytes[..uid.len()].copy_from_slice(uid);
        Ok(CardUid {
            len: uid.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(CARD_UID_MAX_LEN)]
    }

    /// Parses the hex form shown by [`fmt::Display`].
    pub fn parse_hex(text: &str) -> Result<CardUid, CardUidError> {
        if text.len() > 2 * CARD_UID_MAX_LEN {
            return Err(CardUidError);
        }
        CardUid::new(&hex::decode(text).map_err(|_| CardUidError)?)
    }
}

impl fmt::Display for CardUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.as_bytes()))
    }
}

/// An instant as milliseconds since the Unix epoch (UTC), as the till's clock gave it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// Milliseconds from `earlier` to `self`; zero if the clock went backwards.
    pub fn millis_since(self, earlier: UnixMillis) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    pub fn saturating_add_millis(self, millis: u64) -> UnixMillis {
        UnixMillis(
            self.0
                .saturating_add(i64::try_from(millis).unwrap_or(i64::MAX)),
        )
    }
}

/// The earliest instant a campus server's clock or a downlink's issue time may name:
/// 2020-01-01T00:00:00Z, before the first till of this design was built. Earlier is a server
/// whose clock was never set (time 0 is 1970).
pub const PLAUSIBLE_TIME_MIN: UnixMillis = UnixMillis(1_577_836_800_000);
/// The latest such instant: 2100-01-01T00:00:00Z. Later is a broken or hostile clock (applied,
/// `i64::MAX` would move the till's clock offset by hundreds of millions of years).
pub const PLAUSIBLE_TIME_MAX: UnixMillis = UnixMillis(4_102_444_800_000);

/// Why an instant from outside is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "time {ms} ms is outside the plausible window {min}..={max} ms (2020-01-01 to 2100-01-01 UTC)",
    ms = .0,
    min = PLAUSIBLE_TIME_MIN.0,
    max = PLAUSIBLE_TIME_MAX.0
)]
pub struct ImplausibleTime(pub i64);

impl UnixMillis {
    /// This instant if it lies within [`PLAUSIBLE_TIME_MIN`]..=[`PLAUSIBLE_TIME_MAX`].
    pub fn plausible(self) -> Result<UnixMillis, ImplausibleTime> {
        if (PLAUSIBLE_TIME_MIN..=PLAUSIBLE_TIME_MAX).contains(&self) {
            Ok(self)
        } else {
            Err(ImplausibleTime(self.0))
        }
    }
}

/// The most characters a [`DisplayName`] has (a display line holds 16 Chinese characters).
pub const MAX_DISPLAY_NAME_CHARS: usize = 16;

/// A name shown on the till's displays (merchant, meal period): at most
/// [`MAX_DISPLAY_NAME_CHARS`] characters and none that steer a terminal or the text direction
/// (control characters, so no escape sequences; bidi overrides and isolates; zero-width and
/// other invisible format characters; line and paragraph separators). Empty is allowed (no
/// name). Encoded as a plain string; decoding applies the same rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct DisplayName(String);

/// Why a text cannot be shown as a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayNameError {
    #[error("name has {0} characters, more than {MAX_DISPLAY_NAME_CHARS}")]
    TooLong(usize),
    #[error("name holds the invisible or control character U+{0:04X} at character {1}")]
    ForbiddenChar(u32, usize),
}

/// Characters that are not controls (`char::is_control`) but still change how the rest of a
/// line is shown: bidi marks, embeddings, overrides and isolates, zero-width characters, word
/// joiner and invisible operators, the byte-order mark, interlinear annotation marks and the
/// line/paragraph separators.
fn is_steering_format_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F
            | 0xFEFF | 0xFFF9..=0xFFFB
    )
}

impl DisplayName {
    /// No name.
    pub const EMPTY: DisplayName = DisplayName(String::new());

    pub fn new(text: impl Into<String>) -> Result<DisplayName, DisplayNameError> {
        let text = text.into();
        let chars = text.chars().count();
        if chars > MAX_DISPLAY_NAME_CHARS {
            return Err(DisplayNameError::TooLong(chars));
        }
        if let Some((at, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() || is_steering_format_char(*c))
        {
            return Err(DisplayNameError::ForbiddenChar(u32::from(c), at));
        }
        Ok(DisplayName(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<String> for DisplayName {
    type Error = DisplayNameError;

    fn try_from(text: String) -> Result<DisplayName, DisplayNameError> {
        DisplayName::new(text)
    }
}

impl std::str::FromStr for DisplayName {
    type Err = DisplayNameError;

    fn from_str(text: &str) -> Result<DisplayName, DisplayNameError> {
        DisplayName::new(text)
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for DisplayName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DisplayName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A calendar day in the till's local time, as days since 1970-01-01. Totals are kept per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalDay(pub i32);

/// Minutes after local midnight, 0..1440 (decoding refuses anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16")]
pub struct MinuteOfDay(u16);

/// Why a number is not a minute of the day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("minute {0} is not within the day (0..{MINUTES_PER_DAY}, 00:00 to 23:59)")]
pub struct MinuteOfDayError(pub u16);

impl TryFrom<u16> for MinuteOfDay {
    type Error = MinuteOfDayError;

    fn try_from(minute: u16) -> Result<MinuteOfDay, MinuteOfDayError> {
        MinuteOfDay::new(minute).ok_or(MinuteOfDayError(minute))
    }
}

/// Minutes in a day.
pub const MINUTES_PER_DAY: u16 = 24 * 60;

impl MinuteOfDay {
    pub const MIDNIGHT: MinuteOfDay = MinuteOfDay(0);

    pub fn new(minute: u16) -> Option<MinuteOfDay> {
        (minute < MINUTES_PER_DAY).then_some(MinuteOfDay(minute))
    }

    pub fn from_hm(hour: u16, minute: u16) -> Option<MinuteOfDay> {
        if hour < 24 && minute < 60 {
            MinuteOfDay::new(hour * 60 + minute)
        } else {
            None
        }
    }

    /// Parses "HH:MM".
    pub fn parse(text: &str) -> Option<MinuteOfDay> {
        let (h, m) = text.split_once(':')?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return None;
        }
        MinuteOfDay::from_hm(h.parse().ok()?, m.parse().ok()?)
    }

    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for MinuteOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_numbers_are_bounded() {
        assert!(MachineNumber::new(0).is_err());
        assert!(MachineNumber::new(10_000).is_err());
        assert_eq!(MachineNumber::parse("0058").map(MachineNumber::get), Ok(58));
        assert!(MachineNumber::parse("").is_err());
        assert!(MachineNumber::parse("12345").is_err());
        assert!(MachineNumber::parse("1a").is_err());
        assert_eq!(
            MachineNumber::new(58).map(|m| m.to_string()),
            Ok("0058".to_string())
        );
    }

    #[test]
    fn seq_keys_sort_numerically() {
        assert!(Seq(255).to_key() < Seq(256).to_key());
        assert_eq!(Seq::from_key(&Seq(77).to_key()), Some(Seq(77)));
        assert_eq!(Seq::from_key(&[1, 2]), None);
        assert_eq!(Seq(u64::MAX).next(), None);
        assert_eq!(Seq::FIRST.prev(), None);
        assert_eq!(Seq(2).prev(), Some(Seq(1)));
    }

    #[test]
    fn card_uids_have_iso_lengths() {
        assert!(CardUid::new(&[1, 2, 3]).is_err());
        let uid = CardUid::new(&[0xDE, 0xAD, 0xBE, 0xEF]).unwrap();
        assert_eq!(uid.to_string(), "DEADBEEF");
        assert_eq!(CardUid::parse_hex("DEADBEEF"), Ok(uid));
        assert_eq!(
            CardUid::parse_hex("04112233445566").map(|u| u.as_bytes().len()),
            Ok(7)
        );
        assert!(CardUid::parse_hex("zz112233").is_err());
        assert!(CardUid::parse_hex("ABC").is_err());
    }

    /// Regression: each byte was parsed with `u8::from_str_radix`, which takes a `+` sign, so
    /// "+A2B3C4D" read as the UID 0A2B3C4D. Only hex digits make a UID.
    #[test]
    fn a_uid_in_hex_takes_only_hex_digits() {
        assert!(CardUid::parse_hex("+A2B3C4D").is_err());
        assert!(CardUid::parse_hex("1A2B3C4D").is_ok());
    }

    #[test]
    fn minutes_of_day_parse() {
        assert_eq!(MinuteOfDay::parse("06:00").map(MinuteOfDay::get), Some(360));
        assert_eq!(MinuteOfDay::parse("9:30").map(MinuteOfDay::get), Some(570));
        assert_eq!(MinuteOfDay::parse("24:00"), None);
        assert_eq!(MinuteOfDay::parse("12:60"), None);
        assert_eq!(MinuteOfDay::parse("1230"), None);
        assert_eq!(
            MinuteOfDay::from_hm(19, 30).map(|m| m.to_string()),
            Some("19:30".into())
        );
    }

    #[test]
    fn decoding_refuses_minutes_outside_the_day() {
        // 1440 is 24:00, 65535 was shown as "1092:15" by Clear+6 before the check.
        for bad in [MINUTES_PER_DAY, u16::MAX] {
            let bytes = postcard::to_stdvec(&bad).unwrap();
            assert!(
                postcard::from_bytes::<MinuteOfDay>(&bytes).is_err(),
                "{bad}"
            );
        }
        let last = MinuteOfDay::new(MINUTES_PER_DAY - 1).unwrap();
        let bytes = postcard::to_stdvec(&last).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&(MINUTES_PER_DAY - 1)).unwrap());
        assert_eq!(postcard::from_bytes::<MinuteOfDay>(&bytes), Ok(last));
    }

    #[test]
    fn decoding_refuses_card_uids_of_other_lengths_or_with_junk_after_them() {
        let encode = |len: u8, bytes: [u8; CARD_UID_MAX_LEN]| {
            let mut out = vec![len];
            out.extend_from_slice(&bytes);
            out
        };
        for len in [0u8, 1, 3, 5, 6, 8, 9, 11, 255] {
            let bytes = encode(len, [0xAB; CARD_UID_MAX_LEN]);
            assert!(postcard::from_bytes::<CardUid>(&bytes).is_err(), "{len}");
        }
        let mut junk = [0u8; CARD_UID_MAX_LEN];
        junk[..4].copy_from_slice(&[1, 2, 3, 4]);
        junk[9] = 0xFF;
        assert!(postcard::from_bytes::<CardUid>(&encode(4, junk)).is_err());
        let uid = CardUid::new(&[1, 2, 3, 4, 5, 6, 7]).unwrap();
        let bytes = postcard::to_stdvec(&uid).unwrap();
        assert_eq!(postcard::from_bytes::<CardUid>(&bytes), Ok(uid));
    }

    #[test]
    fn display_names_refuse_steering_characters_and_long_text() {
        for bad in [
            "食堂\u{1b}[2J",     // escape sequence: clears the terminal
            "A\rforged line",    // carriage return
            "一食堂\n交易成功",  // new line
            "abc\u{202e}cba",    // right-to-left override
            "abc\u{2066}x",      // left-to-right isolate
            "zero\u{200b}width", // zero-width space
            "line\u{2028}sep",   // line separator
            "\u{7f}",            // DEL
            "\u{9b}31m",         // C1 control sequence introducer
        ] {
            assert!(
                matches!(
                    DisplayName::new(bad),
                    Err(DisplayNameError::ForbiddenChar(..))
                ),
                "{bad:?}"
            );
            let bytes = postcard::to_stdvec(&bad.to_string()).unwrap();
            assert!(
                postcard::from_bytes::<DisplayName>(&bytes).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            DisplayName::new("名".repeat(MAX_DISPLAY_NAME_CHARS + 1)),
            Err(DisplayNameError::TooLong(MAX_DISPLAY_NAME_CHARS + 1))
        );
        let name = DisplayName::new("第一食堂 3号窗口 Noodles!").unwrap_err();
        assert_eq!(name, DisplayNameError::TooLong(18));
        let name = DisplayName::new("第一食堂 3号窗口").unwrap();
        assert_eq!(name, "第一食堂 3号窗口");
        let bytes = postcard::to_stdvec(&name).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&name.to_string()).unwrap());
        assert_eq!(postcard::from_bytes::<DisplayName>(&bytes), Ok(name));
        assert_eq!(DisplayName::new(""), Ok(DisplayName::EMPTY));
    }

    #[test]
    fn only_plausible_instants_pass() {
        assert!(UnixMillis(0).plausible().is_err());
        assert!(UnixMillis(i64::MAX).plausible().is_err());
        assert!(UnixMillis(i64::MIN).plausible().is_err());
        assert!(PLAUSIBLE_TIME_MIN.plausible().is_ok());
        assert!(PLAUSIBLE_TIME_MAX.plausible().is_ok());
        assert!(UnixMillis(1_800_000_000_000).plausible().is_ok());
    }

    #[test]
    fn time_differences_saturate() {
        assert_eq!(UnixMillis(10).millis_since(UnixMillis(20)), 0);
        assert_eq!(UnixMillis(20).millis_since(UnixMillis(10)), 10);
    }
}
