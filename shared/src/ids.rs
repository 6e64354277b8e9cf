//! Identifiers and time stamps shared by the till, the journal and the wire: machine numbers,
//! terminal ids, journal sequence numbers, card UIDs, instants and local days.

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

/// A contactless card's UID: 4, 7 or 10 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CardUid {
    len: u8,
    bytes: [u8; CARD_UID_MAX_LEN],
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

/// A calendar day in the till's local time, as days since 1970-01-01. Totals are kept per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalDay(pub i32);

/// Minutes after local midnight, 0..1440.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MinuteOfDay(u16);

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
    fn time_differences_saturate() {
        assert_eq!(UnixMillis(10).millis_since(UnixMillis(20)), 0);
        assert_eq!(UnixMillis(20).millis_since(UnixMillis(10)), 10);
    }
}
