//! The journal audit every card-fault case ends with: contiguous seqs, each intent resolved at
//! most once and by its own kind, the snapshot's pending lists equal to the unresolved intents.

use super::*;

/// An intent as the journal holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntentPlan {
    pub(crate) op: Operation,
    pub(crate) amount: Fen,
    pub(crate) counter_before: u32,
    pub(crate) balance_before: Fen,
    pub(crate) tag: TxnTag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Committed { balance_after: Fen },
    Aborted,
    InDoubt,
}

/// What the journal says, checked: contiguous seqs from 1, each intent resolved at most once
/// and by a record of its own kind, the snapshot's pending lists equal the unresolved intents.
pub(crate) struct Audit {
    pub(crate) intents: BTreeMap<Seq, IntentPlan>,
    pub(crate) resolutions: BTreeMap<Seq, Resolution>,
    pub(crate) anomalies: usize,
}

pub(crate) fn audit(journal: &Journal, case: &str) -> Audit {
    let mut audit = Audit {
        intents: BTreeMap::new(),
        resolutions: BTreeMap::new(),
        anomalies: 0,
    };
    let mut expected = Seq::FIRST;
    for record in journal::records(journal) {
        assert_eq!(record.seq, expected, "{case}: contiguous seqs");
        expected = record.seq.next().unwrap();
        let plan = |op, amount, card: shared::record::CardDebitPlan| IntentPlan {
            op,
            amount,
            counter_before: card.counter_before,
            balance_before: card.balance_before,
            tag: card.tag,
        };
        let resolved = match record.body {
            RecordBody::SaleIntent(sale) => {
                audit
                    .intents
                    .insert(record.seq, plan(Operation::Debit, sale.amount, sale.card));
                None
            }
            RecordBody::LoadIntent(load) => {
                audit
                    .intents
                    .insert(record.seq, plan(Operation::Load, load.amount, load.card));
                None
            }
            RecordBody::SaleCommitted(s) => Some((
                Operation::Debit,
                s.intent,
                Resolution::Committed {
                    balance_after: s.balance_after,
                },
            )),
            RecordBody::SaleAborted(s) => Some((Operation::Debit, s.intent, Resolution::Aborted)),
            RecordBody::SaleInDoubt(s) => Some((Operation::Debit, s.intent, Resolution::InDoubt)),
            RecordBody::LoadCommitted(l) => Some((
                Operation::Load,
                l.intent,
                Resolution::Committed {
                    balance_after: l.balance_after,
                },
            )),
            RecordBody::LoadAborted(l) => Some((Operation::Load, l.intent, Resolution::Aborted)),
            RecordBody::LoadInDoubt(l) => Some((Operation::Load, l.intent, Resolution::InDoubt)),
            RecordBody::CardAnomaly(_) => {
                audit.anomalies += 1;
                None
            }
            _ => None,
        };
        if let Some((op, intent, resolution)) = resolved {
            let plan = audit.intents.get(&intent);
            assert_eq!(
                plan.map(|p| p.op),
                Some(op),
                "{case}: {} resolves intent {intent} of its own kind",
                record.seq
            );
            assert!(
                audit.resolutions.insert(intent, resolution).is_none(),
                "{case}: intent {intent} resolved twice"
            );
        }
    }
    let unresolved: BTreeSet<Seq> = audit
        .intents
        .keys()
        .filter(|seq| !audit.resolutions.contains_key(seq))
        .copied()
        .collect();
    assert_eq!(
        journal::pending_intents(journal),
        unresolved,
        "{case}: snapshot pending lists"
    );
    assert_eq!(
        journal.snapshot().next_seq,
        expected,
        "{case}: snapshot next seq"
    );
    audit
}
