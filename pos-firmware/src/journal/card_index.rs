//! The journal's index of cards: for every card this till has read or written, the highest
//! transaction counter it saw (a card whose counter is below that was restored from an earlier
//! copy of its blocks, a replay, which is refused and reported), and what the card spent at this
//! till on its last day of use (for the offline per-card daily limit).
//!
//! The index is a cache of what the journal and the taps showed, not money: it is updated without
//! its own flush or fsync. Its inserts wait in sled's log buffer and go to disk in the next
//! append's one log write, under that append's barrier, so they cost a sale no sync call of their
//! own. A crash can only make it lag, which weakens the check for one card and never refuses a
//! good one.

use shared::{CardUid, Fen, LocalDay};

use super::{sled_error, Journal, JournalError};

const CARD_COUNTERS_TREE: &str = "card_counters";
const CARD_SPENT_TREE: &str = "card_spent";

/// (local day, fen spent that day) as stored: day i32 big-endian, then fen u64 big-endian.
fn decode_spent(bytes: &[u8]) -> Option<(LocalDay, Fen)> {
    let day = i32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let fen = u64::from_be_bytes(bytes.get(4..12)?.try_into().ok()?);
    Some((LocalDay(day), Fen::new(fen)))
}

fn encode_spent(day: LocalDay, spent: Fen) -> Vec<u8> {
    let mut bytes = day.0.to_be_bytes().to_vec();
    bytes.extend_from_slice(&spent.get().to_be_bytes());
    bytes
}

impl Journal {
    /// The highest transaction counter this till saw on the card, if it ever saw it.
    pub fn card_counter(&self, uid: &CardUid) -> Result<Option<u32>, JournalError> {
        self.check_poison()?;
        let tree = self.card_tree()?;
        let value = self
            .guard_read("reading the card index", || tree.get(uid.as_bytes()))?
            .map_err(|e| sled_error(&self.dir, "reading the card index", e))?;
        Ok(value.and_then(|bytes| Some(u32::from_be_bytes(bytes.as_ref().try_into().ok()?))))
    }

    /// Records that the card was seen at `counter` (kept only if higher than what is known).
    pub fn remember_card_counter(&self, uid: &CardUid, counter: u32) -> Result<(), JournalError> {
        self.check_poison()?;
        let tree = self.card_tree()?;
        tree.fetch_and_update(uid.as_bytes(), |old| {
            let known = old.and_then(|bytes| Some(u32::from_be_bytes(bytes.try_into().ok()?)));
            Some(known.unwrap_or(0).max(counter).to_be_bytes().to_vec())
        })
        .map_err(|e| sled_error(&self.dir, "updating the card index", e))?;
        Ok(())
    }

    /// What the card spent at this till on the last day it spent anything here.
    pub fn card_spent(&self, uid: &CardUid) -> Result<Option<(LocalDay, Fen)>, JournalError> {
        self.check_poison()?;
        let tree = self.tree(CARD_SPENT_TREE)?;
        let value = self
            .guard_read("reading the card index", || tree.get(uid.as_bytes()))?
            .map_err(|e| sled_error(&self.dir, "reading the card index", e))?;
        Ok(value.and_then(|bytes| decode_spent(&bytes)))
    }

    /// Adds a sale of `amount` on local `day` to what the card spent (a later day starts afresh;
    /// a sale settled late, for an earlier day, is not counted).
    pub fn add_card_spent(
        &self,
        uid: &CardUid,
        day: LocalDay,
        amount: Fen,
    ) -> Result<(), JournalError> {
        self.check_poison()?;
        let tree = self.tree(CARD_SPENT_TREE)?;
        tree.fetch_and_update(uid.as_bytes(), |old| {
            let (old_day, old_spent) = old.and_then(decode_spent).unwrap_or((day, Fen::ZERO));
            Some(match old_day.cmp(&day) {
                std::cmp::Ordering::Less => encode_spent(day, amount),
                std::cmp::Ordering::Equal => {
                    encode_spent(day, old_spent.checked_add(amount).unwrap_or(old_spent))
                }
                std::cmp::Ordering::Greater => encode_spent(old_day, old_spent),
            })
        })
        .map_err(|e| sled_error(&self.dir, "updating the card index", e))?;
        Ok(())
    }

    fn card_tree(&self) -> Result<sled::Tree, JournalError> {
        self.tree(CARD_COUNTERS_TREE)
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, JournalError> {
        self.db
            .open_tree(name)
            .map_err(|e| sled_error(&self.dir, "opening the card index", e))
    }
}
