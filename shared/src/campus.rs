//! What the campus server sends down to a till: its configuration (meal periods, limits,
//! fixed-price presets, merchant name, offline limits) and the lost-card blacklist. Both are
//! versioned and replaced as a whole; a till keeps the newest version it has applied and
//! rejects an older or equal one.

use crate::ids::{CardUid, MinuteOfDay, UnixMillis};
use crate::money::Fen;
use serde::{Deserialize, Serialize};

/// The most blacklist entries a till accepts (a campus of 60,000 people loses cards for years;
/// this leaves room and bounds the memory: about 12 bytes an entry).
pub const MAX_BLACKLIST_ENTRIES: usize = 1_000_000;
/// The most meal periods a campus configuration may carry.
pub const MAX_CAMPUS_MEAL_PERIODS: usize = 6;
/// The most fixed-price presets a campus configuration may carry.
pub const MAX_FIXED_PRICE_PRESETS: usize = 9;
/// The longest merchant name, in characters (the display has 16 Chinese characters a line).
pub const MAX_MERCHANT_NAME_CHARS: usize = 16;

/// One meal period as the server names it: start inclusive, end exclusive, local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MealPeriodSpec {
    pub name: String,
    pub start: MinuteOfDay,
    pub end: MinuteOfDay,
}

/// Limits on what a till accepts while it cannot reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineLimits {
    /// The most one offline sale may charge.
    pub max_sale: Fen,
    /// The most one card may spend on this till per day while offline.
    pub max_per_card_per_day: Fen,
    /// The most money the not-yet-uploaded sales may add up to.
    pub max_unsent_total: Fen,
    /// The oldest a not-yet-uploaded record may be before the till stops selling offline.
    pub max_unsent_age_ms: u64,
    /// The oldest the blacklist may be before the till stops selling offline.
    pub max_blacklist_age_ms: u64,
}

/// The campus configuration of one till. Append-only in its envelope (see `codec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampusConfig {
    /// Increases with every change the server makes; a till applies only newer versions.
    pub version: u64,
    pub merchant_name: String,
    pub meal_periods: Vec<MealPeriodSpec>,
    /// The most one sale may charge (online or offline).
    pub max_sale: Fen,
    /// Amounts the merchant can pick for fixed-price mode.
    pub fixed_price_presets: Vec<Fen>,
    pub offline: OfflineLimits,
}

/// What the till records of the blacklist it holds (the list itself is stored beside the
/// journal, not in every snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistInfo {
    pub version: u64,
    pub entries: u32,
    /// When the server issued this version.
    pub issued_at: UnixMillis,
}

/// The lost-card blacklist: a version and a sorted set of UIDs, looked up by binary search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blacklist {
    version: u64,
    issued_at: UnixMillis,
    /// Sorted, no duplicates (enforced by every constructor, checked by [`Blacklist::is_sorted`]
    /// after decoding).
    uids: Vec<CardUid>,
}

/// Why a blacklist cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlacklistError {
    #[error("blacklist has {0} entries, more than {MAX_BLACKLIST_ENTRIES}")]
    TooLong(usize),
    #[error("blacklist entries are not sorted and unique")]
    NotSorted,
}

impl Blacklist {
    /// Builds a blacklist from UIDs in any order (duplicates are dropped).
    pub fn new(
        version: u64,
        issued_at: UnixMillis,
        mut uids: Vec<CardUid>,
    ) -> Result<Blacklist, BlacklistError> {
        uids.sort_unstable();
        uids.dedup();
        if uids.len() > MAX_BLACKLIST_ENTRIES {
            return Err(BlacklistError::TooLong(uids.len()));
        }
        Ok(Blacklist {
            version,
            issued_at,
            uids,
        })
    }

    /// The empty list of a till that never received one.
    pub fn empty() -> Blacklist {
        Blacklist {
            version: 0,
            issued_at: UnixMillis(0),
            uids: Vec::new(),
        }
    }

    /// Checks the invariants of a list that came off the wire or the disk.
    pub fn validate(&self) -> Result<(), BlacklistError> {
        if self.uids.len() > MAX_BLACKLIST_ENTRIES {
            return Err(BlacklistError::TooLong(self.uids.len()));
        }
        if !self.uids.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(BlacklistError::NotSorted);
        }
        Ok(())
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn issued_at(&self) -> UnixMillis {
        self.issued_at
    }

    pub fn len(&self) -> usize {
        self.uids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    pub fn uids(&self) -> &[CardUid] {
        &self.uids
    }

    /// Whether the card is reported lost: O(log n).
    pub fn contains(&self, uid: &CardUid) -> bool {
        self.uids.binary_search(uid).is_ok()
    }

    pub fn info(&self) -> BlacklistInfo {
        BlacklistInfo {
            version: self.version,
            entries: u32::try_from(self.uids.len()).unwrap_or(u32::MAX),
            issued_at: self.issued_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(n: u32) -> CardUid {
        CardUid::new(&n.to_be_bytes()).unwrap()
    }

    #[test]
    fn lookup_finds_exactly_the_listed_cards() {
        let list = Blacklist::new(3, UnixMillis(5), vec![uid(9), uid(2), uid(9), uid(4)]).unwrap();
        assert_eq!(list.len(), 3);
        assert!(list.contains(&uid(2)) && list.contains(&uid(4)) && list.contains(&uid(9)));
        assert!(!list.contains(&uid(3)) && !list.contains(&uid(10)));
        assert_eq!(list.validate(), Ok(()));
    }

    #[test]
    fn unsorted_lists_from_outside_are_refused() {
        let list = Blacklist {
            version: 1,
            issued_at: UnixMillis(0),
            uids: vec![uid(5), uid(1)],
        };
        assert_eq!(list.validate(), Err(BlacklistError::NotSorted));
    }
}
