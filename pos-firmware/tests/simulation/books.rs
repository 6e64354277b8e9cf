//! What the journal says, judged independently of the till's own bookkeeping ([`Books`]: every
//! intent, its resolution, the commits; every code-payment order and how it ended), and the
//! counts the run prints ([`Stats`]).

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
    /// A code payment's `OrderPaid` (counted in the code tallies too), not a card's commit.
    pub(crate) by_code: bool,
}

/// How a code-payment order ended in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderOutcome {
    Paid(OrderPaid),
    Closed(OrderEnd),
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
    /// Every code-payment order's intent, by its seq (the order id's).
    pub(crate) orders: BTreeMap<Seq, (UnixMillis, OrderIntent)>,
    /// Orders not ended yet, and those of them being reversed (`OrderReversing` journaled).
    pub(crate) open_orders: BTreeSet<Seq>,
    pub(crate) reversing: BTreeSet<Seq>,
    pub(crate) order_ends: BTreeMap<Seq, OrderOutcome>,
    /// `OrderPaidAfterClose` records: a refund to chase.
    pub(crate) paid_after_close: BTreeMap<Seq, CodePayer>,
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
                    by_code: false,
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
            RecordBody::OrderIntent(order) => {
                ensure!(
                    !order.amount.is_zero() && order.amount <= MAX_SALE_CEILING,
                    "order {seq} for an impossible amount ¥{}",
                    order.amount
                );
                ensure!(
                    order.account.is_some() == (order.method == CodeMethod::VirtualCard),
                    "order {seq} of {:?} names account {:?}",
                    order.method,
                    order.account
                );
                self.orders.insert(seq, (record.at, *order));
                self.open_orders.insert(seq);
            }
            RecordBody::OrderReversing { intent, why } => {
                ensure!(
                    self.open_orders.contains(intent),
                    "{seq} reverses order {intent}, which is no open order ({:?})",
                    self.order_ends.get(intent)
                );
                ensure!(
                    self.reversing.insert(*intent),
                    "{seq} reverses order {intent} a second time ({why:?})"
                );
            }
            RecordBody::OrderPaid(paid) => {
                let (intent_at, order) =
                    self.end_order(seq, paid.intent, OrderOutcome::Paid(*paid))?;
                ensure!(
                    paid.amount == order.amount,
                    "{seq} pays ¥{} for order {} of ¥{}",
                    paid.amount,
                    paid.intent,
                    order.amount
                );
                let payer_fits = match paid.payer {
                    Payer::VirtualCard(account) => order.account == Some(account),
                    Payer::Wallet { method, .. } => {
                        method == order.method && order.account.is_none()
                    }
                    Payer::CampusCard(_) | Payer::CampusApp => false,
                };
                ensure!(
                    payer_fits,
                    "{seq} pays order {} ({:?}, account {:?}) by {}",
                    paid.intent,
                    order.method,
                    order.account,
                    paid.payer
                );
                ensure!(
                    paid.balance_after.is_some() == (order.method == CodeMethod::VirtualCard),
                    "{seq}: a balance after {:?} for a {:?} order",
                    paid.balance_after,
                    order.method
                );
                self.commits.push(Commit {
                    intent_at,
                    at: record.at,
                    amount: paid.amount,
                    payer: paid.payer,
                    by_code: true,
                });
            }
            RecordBody::OrderClosed(closed) => {
                let was_reversing = self.reversing.contains(&closed.intent);
                self.end_order(seq, closed.intent, OrderOutcome::Closed(closed.end))?;
                ensure!(
                    was_reversing || !matches!(closed.end, OrderEnd::Reversed { .. }),
                    "{seq} closes order {} reversed, but no reversal was journaled before",
                    closed.intent
                );
            }
            RecordBody::OfflineCodeSale(_)
            | RecordBody::QrConfirmedByCode { .. }
            | RecordBody::QrCodeRejected { .. } => {
                return Err(format!(
                    "{seq}: the simulation pays nothing offline by code yet"
                ));
            }
            RecordBody::OrderPaidAfterClose { intent, payer } => {
                let unpaid = matches!(
                    self.order_ends.get(intent),
                    Some(OrderOutcome::Closed(
                        OrderEnd::Declined(_) | OrderEnd::Reversed { refunded: false }
                    ))
                );
                ensure!(
                    unpaid,
                    "{seq}: a late paid for order {intent}, which did not close unpaid ({:?})",
                    self.order_ends.get(intent)
                );
                ensure!(
                    self.paid_after_close.insert(*intent, *payer).is_none(),
                    "{seq}: a second late paid for order {intent}"
                );
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

    /// Ends the open order `intent` (once).
    fn end_order(
        &mut self,
        seq: Seq,
        intent: Seq,
        outcome: OrderOutcome,
    ) -> Result<(UnixMillis, OrderIntent), String> {
        let Some(&found) = self.orders.get(&intent) else {
            return Err(format!(
                "{seq} ends order {intent}, which is no earlier order intent"
            ));
        };
        ensure!(
            self.open_orders.remove(&intent),
            "{seq} ends order {intent} a second time (first: {:?})",
            self.order_ends.get(&intent)
        );
        self.reversing.remove(&intent);
        self.order_ends.insert(intent, outcome);
        Ok(found)
    }

    /// Orders that ended as `wanted` says.
    pub(crate) fn count_orders(&self, wanted: impl Fn(&OrderOutcome) -> bool) -> u64 {
        self.order_ends.values().filter(|o| wanted(o)).count() as u64
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
    // ----- code payments -----
    /// Scans of a code a phone showed (virtual card, wallet), not junk.
    pub(crate) codes_scanned: u64,
    pub(crate) orders: u64,
    pub(crate) orders_paid: u64,
    /// Paid, learnt from a query after the till stopped waiting on screen.
    pub(crate) orders_recovered: u64,
    pub(crate) orders_declined: u64,
    pub(crate) reversed_refunded: u64,
    pub(crate) reversed_unrefunded: u64,
    pub(crate) order_requests: u64,
    pub(crate) not_sent: u64,
    pub(crate) delayed: u64,
    pub(crate) lost_requests: u64,
    /// Answers that never reached the till: lost on the network, the back end's "no answer",
    /// or on their way when the link or the till went down.
    pub(crate) lost_answers: u64,
    pub(crate) restarts_mid_order: u64,
    /// Power cuts as an order's submit left the till: before it left, after it reached the
    /// campus (its answer lost); and as a reversal left (either way).
    pub(crate) cuts_before_submit: u64,
    pub(crate) cuts_after_submit: u64,
    pub(crate) cuts_while_reversing: u64,
    /// Virtual-card orders paid (the rest of the paid orders are wallets').
    pub(crate) virtual_paid: u64,
    pub(crate) paid_after_close: u64,
    pub(crate) clears_mid_order: u64,
    pub(crate) link_downs: u64,
    pub(crate) most_orders_pending: u64,
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
        self.codes_scanned += o.codes_scanned;
        self.orders += o.orders;
        self.orders_paid += o.orders_paid;
        self.orders_recovered += o.orders_recovered;
        self.orders_declined += o.orders_declined;
        self.reversed_refunded += o.reversed_refunded;
        self.reversed_unrefunded += o.reversed_unrefunded;
        self.order_requests += o.order_requests;
        self.not_sent += o.not_sent;
        self.delayed += o.delayed;
        self.lost_requests += o.lost_requests;
        self.lost_answers += o.lost_answers;
        self.restarts_mid_order += o.restarts_mid_order;
        self.cuts_before_submit += o.cuts_before_submit;
        self.cuts_after_submit += o.cuts_after_submit;
        self.cuts_while_reversing += o.cuts_while_reversing;
        self.virtual_paid += o.virtual_paid;
        self.paid_after_close += o.paid_after_close;
        self.clears_mid_order += o.clears_mid_order;
        self.link_downs += o.link_downs;
        self.most_orders_pending = self.most_orders_pending.max(o.most_orders_pending);
    }
}
