//! A tiny model of the till that turns steps (a sale starts, commits, aborts, goes in doubt; a
//! mode changes) into the records and snapshots the real till would append, and the helpers every
//! journal test starts from, and raw access to sled's trees for the states the journal's API
//! never produces.

use super::*;

/// What the next record does.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// A card sale starts (the card is one of a few test cards).
    Intent { amount_fen: u64, card: u8 },
    /// The oldest pending sale commits (a mode change if none is pending).
    Commit,
    /// The oldest pending sale aborts (a mode change if none is pending).
    Abort,
    /// The oldest pending sale goes to the server in doubt (a mode change if none is pending).
    InDoubt,
    /// Offline or fixed-price mode changes.
    Mode(ModeChange),
}

/// The steps of an ordinary lunch rush: sales committing, one aborting, mode switches.
pub(crate) fn lunch_steps(count: usize) -> Vec<Step> {
    (0..count)
        .map(|i| match i % 7 {
            0 | 2 | 4 => Step::Intent {
                amount_fen: 600 + (i as u64 % 5) * 150,
                card: (i % 4) as u8,
            },
            1 | 3 => Step::Commit,
            5 => Step::Abort,
            _ if i % 14 == 6 => Step::Mode(ModeChange::FixedPriceOn(Fen::new(800))),
            _ => Step::Mode(ModeChange::FixedPriceOff),
        })
        .collect()
}

pub(crate) fn payer(card: u8) -> Payer {
    // Unwrap: a 4-byte UID is always valid.
    Payer::CampusCard(CardUid::new(&[0x04, 0xC0, 0xFF, card]).unwrap())
}

pub(crate) struct TestTill {
    pub(crate) snapshot: TillSnapshot,
    at: UnixMillis,
}

impl TestTill {
    pub(crate) fn new(snapshot: TillSnapshot) -> TestTill {
        TestTill {
            snapshot,
            at: UnixMillis(1_760_000_000_000),
        }
    }

    /// The record for `step` and the snapshot after it (does not change `self`).
    pub(crate) fn next(&mut self, step: &Step) -> (JournalRecord, TillSnapshot) {
        let seq = self.snapshot.next_seq;
        self.at = self.at.saturating_add_millis(4_000);
        let mut after = self.snapshot.clone();
        after.next_seq = seq.next().expect("test seqs are small");
        let oldest = after.pending.first().copied();
        let body = match (step, oldest) {
            (Step::Intent { amount_fen, card }, _) => {
                let sale = SaleIntent {
                    amount: Fen::new(*amount_fen),
                    payer: payer(*card),
                    card: CardDebitPlan {
                        counter_before: seq.0 as u32,
                        balance_before: Fen::new(50_000),
                        tag: TxnTag(seq.0 as u32 ^ 0x5A5A_0000),
                    },
                    fixed_price: after.fixed_price.is_some(),
                };
                after.pending.push(PendingSale {
                    intent: seq,
                    at: self.at,
                    sale,
                });
                RecordBody::SaleIntent(sale)
            }
            (Step::Commit, Some(pending)) => {
                after.pending.remove(0);
                let amount = pending.sale.amount;
                let day = LocalDay(20_372);
                let tally = after
                    .days
                    .first()
                    .map_or(SalesTally::default(), |t| t.tally);
                after.days = vec![DayTally {
                    day,
                    tally: tally.plus(amount).expect("test totals are small"),
                }];
                after.recent_amounts.push(amount);
                if after.recent_amounts.len() > RECENT_AMOUNTS_LEN {
                    after.recent_amounts.remove(0);
                }
                after.last_sale = Some(LastSale {
                    payer: pending.sale.payer,
                    amount,
                    at: self.at,
                });
                RecordBody::SaleCommitted(SaleCommitted {
                    intent: pending.intent,
                    amount,
                    payer: pending.sale.payer,
                    balance_after: pending
                        .sale
                        .card
                        .balance_before
                        .checked_sub(amount)
                        .expect("test balances cover the sales"),
                    recovered: false,
                })
            }
            (Step::Abort, Some(pending)) => {
                after.pending.remove(0);
                RecordBody::SaleAborted(SaleAborted {
                    intent: pending.intent,
                    reason: AbortReason::WriteRefused,
                })
            }
            (Step::InDoubt, Some(pending)) => {
                after.pending.remove(0);
                RecordBody::SaleInDoubt(SaleInDoubt {
                    intent: pending.intent,
                    reason: InDoubtReason::CardMovedOn,
                })
            }
            (Step::Mode(change), _) => {
                apply_mode(&mut after, *change);
                RecordBody::ModeChanged(*change)
            }
            (Step::Commit | Step::Abort | Step::InDoubt, None) => {
                let change = if after.offline {
                    ModeChange::OfflineOff
                } else {
                    ModeChange::OfflineOn
                };
                apply_mode(&mut after, change);
                RecordBody::ModeChanged(change)
            }
        };
        let record = JournalRecord {
            seq,
            at: self.at,
            machine: after.machine,
            body,
        };
        (record, after)
    }

    /// Appends the record for `step`; returns it.
    pub(crate) fn append(&mut self, journal: &mut Journal, step: &Step) -> JournalRecord {
        let (record, snapshot) = self.next(step);
        journal
            .append(&record, &snapshot)
            .unwrap_or_else(|e| panic!("append of {}: {e}", record.seq));
        self.snapshot = snapshot;
        record
    }
}

pub(crate) fn apply_mode(snapshot: &mut TillSnapshot, change: ModeChange) {
    match change {
        ModeChange::OfflineOn => snapshot.offline = true,
        ModeChange::OfflineOff => snapshot.offline = false,
        ModeChange::FixedPriceOn(amount) => snapshot.fixed_price = Some(amount),
        ModeChange::FixedPriceOff => snapshot.fixed_price = None,
    }
}

/// Opens (creating) a journal and appends `steps`; returns the journal and what it holds.
pub(crate) fn journal_with(dir: &Path, steps: &[Step]) -> (Journal, TestTill, Vec<JournalRecord>) {
    let mut journal = Journal::open(dir).expect("open a new journal");
    let mut till = TestTill::new(journal.snapshot().clone());
    let records = steps
        .iter()
        .map(|step| till.append(&mut journal, step))
        .collect();
    (journal, till, records)
}

/// Whether `record` is a committed sale (what browsing the till's sales looks for).
pub(crate) fn is_commit(record: &JournalRecord) -> bool {
    matches!(record.body, RecordBody::SaleCommitted(_))
}

/// Asserts the journal holds exactly `records`, `snapshot` and `terminal`.
pub(crate) fn assert_holds(
    journal: &Journal,
    terminal: TerminalId,
    records: &[JournalRecord],
    snapshot: &TillSnapshot,
) {
    assert_eq!(journal.terminal_id(), terminal);
    assert_eq!(journal.snapshot(), snapshot);
    assert_eq!(
        journal.last_seq(),
        records.last().map(|r| r.seq),
        "last seq"
    );
    assert_eq!(common::journal::records(journal), records);
}

// Writing sled's trees directly, for states the journal's API never produces.

/// Opens sled in a journal directory with the journal's settings, waiting out the lock of a
/// just-dropped `Journal`.
pub(crate) fn raw_sled(dir: &Path) -> sled::Db {
    for _ in 0..200 {
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("sled stayed locked");
}

/// Makes a journal of `count` records, then lets `tamper` edit sled's trees directly.
pub(crate) fn tampered(
    count: usize,
    tamper: impl FnOnce(&sled::Tree, &sled::Tree),
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    drop(journal_with(dir.path(), &lunch_steps(count)));
    let db = raw_sled(dir.path());
    let records = db.open_tree("records").unwrap();
    let meta = db.open_tree("meta").unwrap();
    tamper(&records, &meta);
    db.flush().unwrap();
    drop(db);
    dir
}

/// Asserts that opening `dir` is refused as `Corrupt` with `needle` in the detail.
pub(crate) fn expect_corrupt(dir: &Path, needle: &str) {
    match Journal::open(dir) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains(needle), "{needle:?} not in {detail:?}")
        }
        other => panic!("expected Corrupt containing {needle:?}, got {other:?}"),
    }
}
