//! Reading a till's journal back in the tests: every record (each must decode), and the intents
//! (sales and top-ups) its snapshot still holds pending.

use std::collections::BTreeSet;

use pos_firmware::journal::Journal;
use shared::record::JournalRecord;
use shared::Seq;

/// Every record of `journal`, in order. Panics (fails the test) on a record that does not
/// decode.
pub fn records(journal: &Journal) -> Vec<JournalRecord> {
    journal
        .records_from(Seq::FIRST)
        .map(|record| record.expect("every record decodes"))
        .collect()
}

/// The intents the snapshot lists as pending: unresolved sales and unresolved top-ups.
pub fn pending_intents(journal: &Journal) -> BTreeSet<Seq> {
    let snapshot = journal.snapshot();
    snapshot
        .pending
        .iter()
        .map(|p| p.intent)
        .chain(snapshot.pending_loads.iter().map(|p| p.intent))
        .collect()
}
