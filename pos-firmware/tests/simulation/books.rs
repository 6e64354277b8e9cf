//! What the journal says, judged independently of the till's own bookkeeping ([`Books`]: every
//! intent, its resolution, the commits), and the counts the run prints ([`Stats`]).

use super::*;

// ----- what the journal says -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Committed,
    Aborted,
    InDoubt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Commit {
    pub(crate) intent_at: UnixMillis,
    pub(crate) at: UnixMillis,
    pub(crate) amount: Fen,
    pub(crate) payer: Payer,
}

/// The journal read back record by record and checked as it goes; rebuilt from scratch after
/// every restart and compared with the copy from before.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Books {
    pub(crate) records: Vec<JournalRecord>,
    pub(crate) intents: BTreeMap<Seq, (UnixMillis, SaleIntent)>,
    /// (card, tag) → intents carrying that tag (a tag is 32 bits: collisions are possible).
    by_tag: BTreeMap<(CardUid, u32), Vec<Seq>>,
    pub(crate) unresolved: BTreeSet<Seq>,
    pub(crate) resolutions: BTreeMap<Seq, Resolution>,
    pub(crate) commits: Vec<Commit>,
    committed_fen: BTreeMap<CardUid, Fen>,
    pub(crate) recovered: u64,
}

impl Books {
    /// What the journal's commits took from `uid`, in all.
    pub(crate) fn committed(&self, uid: CardUid) -> Fen {
        self.committed_fen.get(&uid).copied().unwrap_or_default()
    }

    pub(crate) fn next_seq(&self) -> Seq {
        Seq(self.records.len() as u64 + 1)
    }

    pub(crate) fn ingest(
        &mut self,
        record: JournalRecord,
        terminal: TerminalId,
    ) -> Result<(), String> {
        let seq = record.seq;
        ensure!(
            seq == self.next_seq(),
            "journal seqs are not contiguous: expected {}, found {seq}",
            self.next_seq()
        );
        match &record.body {
            RecordBody::SaleIntent(sale) => {
                ensure!(
                    !sale.amount.is_zero() && sale.amount <= MAX_SALE_CEILING,
                    "intent {seq} for an impossible amount ¥{}",
                    sale.amount
                );
                ensure!(
                    sale.card.tag == txn_tag(terminal, seq),
                    "intent {seq} carries a tag not derived from (terminal, seq)"
                );
                let Payer::CampusCard(uid) = sale.payer else {
                    return Err(format!("card intent {seq} names a payer that is no card"));
                };
                let other = self
                    .unresolved
                    .iter()
                    .find(|s| self.intents[s].1.payer == sale.payer);
                ensure!(
                    other.is_none(),
                    "intent {seq} debits card {uid} while its intent {} is unresolved (a blind re-debit)",
                    other.copied().unwrap_or(Seq(0))
                );
                self.intents.insert(seq, (record.at, *sale));
                self.unresolved.insert(seq);
                self.by_tag
                    .entry((uid, sale.card.tag.0))
                    .or_default()
                    .push(seq);
            }
            RecordBody::SaleCommitted(c) => {
                let (intent_at, sale) = self.resolve(seq, c.intent, Resolution::Committed)?;
                ensure!(
                    c.amount == sale.amount && c.payer == sale.payer,
                    "commit {seq} does not match its intent {}",
                    c.intent
                );
                ensure!(
                    Some(c.balance_after) == sale.card.balance_before.checked_sub(sale.amount),
                    "commit {seq} records balance ¥{} after ¥{} - ¥{}",
                    c.balance_after,
                    sale.card.balance_before,
                    sale.amount
                );
                let Payer::CampusCard(uid) = c.payer else {
                    return Err(format!("card commit {seq} names a payer that is no card"));
                };
                let total = self.committed_fen.entry(uid).or_default();
                *total = total
                    .checked_add(c.amount)
                    .ok_or("committed total overflows")?;
                self.recovered += u64::from(c.recovered);
                self.commits.push(Commit {
                    intent_at,
                    at: record.at,
                    amount: c.amount,
                    payer: c.payer,
                });
            }
            RecordBody::SaleAborted(a) => {
                self.resolve(seq, a.intent, Resolution::Aborted)?;
            }
            RecordBody::SaleInDoubt(d) => {
                self.resolve(seq, d.intent, Resolution::InDoubt)?;
            }
            RecordBody::ModeChanged(_)
            | RecordBody::MachineNumberChanged { .. }
            | RecordBody::CampusConfigApplied { .. }
            | RecordBody::BlacklistReplaced(_)
            | RecordBody::ServerTimeSeen { .. }
            | RecordBody::CardAnomaly(_)
            | RecordBody::StaffPinChanged(_) => {}
            RecordBody::CardIssued(_)
            | RecordBody::CardIssueInterrupted { .. }
            | RecordBody::LoadResumed { .. }
            | RecordBody::LoadIntent(_)
            | RecordBody::LoadCommitted(_)
            | RecordBody::LoadAborted(_)
            | RecordBody::LoadInDoubt(_) => {
                return Err(format!(
                    "{seq}: the simulation issues no cards and loads no value"
                ));
            }
            RecordBody::OrderIntent(_)
            | RecordBody::OrderReversing { .. }
            | RecordBody::OrderPaid(_)
            | RecordBody::OrderClosed(_)
            | RecordBody::OrderPaidAfterClose { .. } => {
                return Err(format!("{seq}: the simulation scans no payment codes yet"));
            }
        }
        self.records.push(record);
        Ok(())
    }

    fn resolve(
        &mut self,
        seq: Seq,
        intent: Seq,
        resolution: Resolution,
    ) -> Result<(UnixMillis, SaleIntent), String> {
        let Some(&found) = self.intents.get(&intent) else {
            return Err(format!(
                "{seq} resolves {intent}, which is no earlier intent"
            ));
        };
        ensure!(
            self.unresolved.remove(&intent),
            "{seq} resolves intent {intent} a second time (first: {:?})",
            self.resolutions.get(&intent)
        );
        self.resolutions.insert(intent, resolution);
        Ok(found)
    }

    pub(crate) fn count(&self, resolution: Resolution) -> u64 {
        self.resolutions
            .values()
            .filter(|r| **r == resolution)
            .count() as u64
    }

    pub(crate) fn intent_by_tag(&self, uid: CardUid, tag: u32, counter_before: u32) -> Option<Seq> {
        self.by_tag
            .get(&(uid, tag))?
            .iter()
            .copied()
            .find(|s| self.intents[s].1.card.counter_before == counter_before)
    }
}

// ----- counts ----------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) sessions: u64,
    pub(crate) steps: u64,
    pub(crate) inputs: u64,
    pub(crate) intents: u64,
    pub(crate) committed: u64,
    pub(crate) recovered: u64,
    pub(crate) aborted: u64,
    pub(crate) in_doubt: u64,
    /// Cards left with money taken by a sale that went to the server in doubt.
    pub(crate) in_doubt_landed: u64,
    pub(crate) crowds: u64,
    pub(crate) restarts: u64,
    pub(crate) settings_changes: u64,
    pub(crate) faults_armed: u64,
    pub(crate) faults_fired: u64,
    pub(crate) card_writes: u64,
    pub(crate) writes_unknown: u64,
    pub(crate) writes_refused: u64,
    pub(crate) power_cuts: u64,
    pub(crate) clock_jumps: u64,
    /// Wall-clock steps of whole days, back or forward.
    pub(crate) clock_day_steps: u64,
    /// Clear+5 screens checked against the journal.
    pub(crate) today_totals_checked: u64,
    pub(crate) midnights: u64,
    pub(crate) duplicate_reminders: u64,
    /// Intents above the max_sale configured when they were made (a fixed price from before a
    /// restart that lowered max_sale: `a_fixed_price_above_a_lowered_max_sale_is_not_charged`).
    pub(crate) over_max_sale: u64,
    pub(crate) max_pending: u64,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.sessions += o.sessions;
        self.steps += o.steps;
        self.inputs += o.inputs;
        self.intents += o.intents;
        self.committed += o.committed;
        self.recovered += o.recovered;
        self.aborted += o.aborted;
        self.in_doubt += o.in_doubt;
        self.in_doubt_landed += o.in_doubt_landed;
        self.crowds += o.crowds;
        self.restarts += o.restarts;
        self.settings_changes += o.settings_changes;
        self.faults_armed += o.faults_armed;
        self.faults_fired += o.faults_fired;
        self.card_writes += o.card_writes;
        self.writes_unknown += o.writes_unknown;
        self.writes_refused += o.writes_refused;
        self.power_cuts += o.power_cuts;
        self.clock_jumps += o.clock_jumps;
        self.clock_day_steps += o.clock_day_steps;
        self.today_totals_checked += o.today_totals_checked;
        self.midnights += o.midnights;
        self.duplicate_reminders += o.duplicate_reminders;
        self.over_max_sale += o.over_max_sale;
        self.max_pending = self.max_pending.max(o.max_pending);
    }
}
