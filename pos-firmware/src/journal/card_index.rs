//! The journal's index of cards: for every card this till has read or written, the highest
//! transaction counter it saw. A card whose counter is below that was restored from an earlier
//! copy of its blocks (a replay), which is refused and reported.
//!
//! The index is a cache of what the journal and the taps showed, not money: it is updated without
//! its own fsync (the next durable append flushes it with everything else), so a crash can only
//! make it lag, which weakens the check for one card and never refuses a good one.

use shared::CardUid;

use super::{sled_error, Journal, JournalError};

const CARD_COUNTERS_TREE: &str = "card_counters";

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

    fn card_tree(&self) -> Result<sled::Tree, JournalError> {
        self.db
            .open_tree(CARD_COUNTERS_TREE)
            .map_err(|e| sled_error(&self.dir, "opening the card index", e))
    }
}
