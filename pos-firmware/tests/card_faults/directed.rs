//! Directed cases on the same whole-till rig: a garbled read in the write phase, a dead reader,
//! a card above the card centre's cap, and a torn write whose card never returns.

use super::*;

/// Regression (driver): a read garbled in the write phase while the card stays in the field
/// used to end the sale on "tap again" (and, before the write, to refuse it), because the
/// wallet's fresh select never found the card still selected from the broken session. Every
/// such read now goes on in a fresh session and the money moves at once.
#[test]
fn a_garbled_read_in_the_write_phase_still_commits_at_once() {
    let mut cases = 0;
    for uid in uids() {
        let card = issued_card(&uid);
        for op in [Operation::Debit, Operation::Load] {
            let counts = dry_run(op, uid, &card);
            for read_index in counts.tap.reads..counts.write.reads {
                let case = Case {
                    op,
                    uid,
                    injection: Injection {
                        faults: vec![Fault::Read {
                            read_index,
                            fault: ReadFault::CorruptedCrc,
                        }],
                        leave_after_exchanges: None,
                    },
                    restart: false,
                    power_cut: false,
                    next: NextTap::Same,
                };
                let run = faulted_tap(&case, &card);
                assert!(run.struck, "{case:?}");
                assert_eq!(run.rig.committed_count(), 1, "{case:?}");
                assert!(
                    run.counts.write.auths > counts.write.auths,
                    "{case:?}: a fresh session"
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 0);
}

/// Whether the journal's last commit of `op` says `recovered` (settled from a later read).
fn last_commit_recovered(rig: &DebitRig) -> Option<bool> {
    rig.records
        .iter()
        .rev()
        .find_map(|r| match (&rig.op, &r.body) {
            (Operation::Debit, RecordBody::SaleCommitted(s)) => Some(s.recovered),
            (Operation::Load, RecordBody::LoadCommitted(l)) => Some(l.recovered),
            _ => None,
        })
}

pub(crate) fn unresolved(rig: &DebitRig) -> usize {
    journal::pending_intents(rig.journal()).len()
}

/// The reader chip itself failing is not a bad tap: the merchant is told to call maintenance
/// (not to tap again), nothing is journaled, and a write the dying reader interrupted after the
/// data went out stays unresolved — the till never aborts it on a dead reader's word — until
/// the repaired reader reads the card and the money moves exactly once.
#[test]
fn a_dead_reader_is_a_reader_fault_and_never_settles_a_write_blindly() {
    let mut cases = 0;
    for uid in uids() {
        let card = issued_card(&uid);
        for op in [Operation::Debit, Operation::Load] {
            for reads_as in [0x00, 0xFF] {
                // Dead before the tap.
                let mut rig = DebitRig::new(op, uid, &card);
                rig.start_request();
                rig.till.control.set_reader_dead(Some(reads_as));
                let journaled = rig.records.len();
                let (read, _) = rig
                    .tap()
                    .expect("a dead reader reports an error, not silence");
                assert_eq!(read, CardRead::Unreadable(CardProblem::ReaderFault));
                assert!(
                    rig.shows("读卡器故障") && rig.shows("请联系维护"),
                    "{op:?}: {:?}",
                    rig.merchant()
                );
                assert!(!rig.shows("请重新刷卡"), "{:?}", rig.merchant());
                assert_eq!(rig.customer()[0], "读卡器故障");
                assert_eq!(rig.records.len(), journaled, "{op:?}: nothing journaled");
                // Repaired (power-cycled and initialised again): the waiting request pays once.
                rig.till.repair_reader();
                rig.settle_screen();
                rig.replace_card();
                rig.tap().expect("the card answers");
                assert_eq!(rig.committed_count(), 1, "{op:?}: {:#?}", rig.records);
                assert_eq!(last_commit_recovered(&rig), Some(false));

                // Dies after the data reached the card, before its ACK.
                let mut rig = DebitRig::new(op, uid, &card);
                rig.start_request();
                let writes = rig.till.control.counters().writes;
                rig.till.control.inject(Fault::Write {
                    write_index: writes,
                    fault: WriteFault::ReaderDiesAfterData,
                });
                rig.tap().expect("the card answers the tap");
                assert!(
                    rig.till.control.pending_faults().is_empty(),
                    "the fault struck"
                );
                assert_eq!(rig.committed_count(), 0, "{op:?}");
                assert_eq!(
                    unresolved(&rig),
                    1,
                    "{op:?}: outcome unknown, kept unresolved"
                );
                assert_eq!(audit(rig.journal(), "reader dies").resolutions.len(), 0);
                // Tapped again while the reader is still dead: a reader fault, still unresolved.
                rig.settle_screen();
                rig.replace_card();
                let (read, _) = rig.tap().expect("a dead reader reports an error");
                assert_eq!(read, CardRead::Unreadable(CardProblem::ReaderFault));
                assert!(rig.shows("读卡器故障"), "{:?}", rig.merchant());
                assert_eq!(unresolved(&rig), 1, "{op:?}: a dead reader settles nothing");
                // Repaired: the card shows the write, which is committed once, as recovered.
                rig.till.repair_reader();
                rig.settle_screen();
                rig.replace_card();
                rig.tap().expect("the card answers");
                assert_eq!(rig.committed_count(), 1, "{op:?}: {:#?}", rig.records);
                assert_eq!(last_commit_recovered(&rig), Some(true));
                assert_eq!(unresolved(&rig), 0);
                let audit = audit(rig.journal(), "reader dies");
                assert_eq!(audit.intents.len(), 1, "{op:?}: written once, never again");
                let state = decode(&rig.card(), &uid).unwrap();
                assert_eq!(
                    Some(state.balance),
                    op.after(Fen::new(OPENING_FEN)),
                    "{op:?}"
                );
                assert_eq!(state.counter, 1, "{op:?}: one write on the card");
                cases += 1;
            }
        }
    }
    println!("dead reader: {cases} cases");
    assert_eq!(cases, 8);
}

/// The two balance limits: the card centre's policy (`MAX_CARD_BALANCE`, ¥1,000) holds top-ups
/// only; a MAC-valid card above it (below the format's ceiling) pays as usual and takes no load.
#[test]
fn a_card_above_the_policy_cap_pays_but_takes_no_top_up() {
    let above = MAX_CARD_BALANCE.checked_add(Fen::from_yuan(500)).unwrap();
    assert!(
        above.get() <= CARD_FORMAT_MAX_BALANCE_FEN,
        "a valid card format-wise"
    );
    let load = Operation::Load.amount();
    let at_cap_after_load = MAX_CARD_BALANCE.checked_sub(load).unwrap();
    let one_fen_over = at_cap_after_load.checked_add(Fen::new(1)).unwrap();
    for uid in uids() {
        let card = issued_card_holding(&uid, above);
        let mut rig = DebitRig::new(Operation::Debit, uid, &card);
        rig.start_request();
        rig.tap().expect("the card answers");
        assert_eq!(rig.committed_count(), 1, "{:?}", rig.merchant());
        let state = decode(&rig.card(), &uid).unwrap();
        assert_eq!(Some(state.balance), Operation::Debit.after(above));

        for (opening, loads) in [
            (above, false),
            (one_fen_over, false),
            (at_cap_after_load, true),
        ] {
            let card = issued_card_holding(&uid, opening);
            let mut rig = DebitRig::new(Operation::Load, uid, &card);
            rig.start_request();
            let journaled = rig.records.len();
            rig.tap().expect("the card answers");
            let state = decode(&rig.card(), &uid).unwrap();
            if loads {
                assert_eq!(rig.committed_count(), 1, "{opening}: {:?}", rig.merchant());
                assert_eq!(
                    state.balance, MAX_CARD_BALANCE,
                    "loaded up to the cap exactly"
                );
            } else {
                assert!(
                    rig.shows("充值后超过上限 ¥1000.00"),
                    "{opening}: {:?}",
                    rig.merchant()
                );
                assert_eq!(rig.records.len(), journaled, "{opening}: no intent");
                assert_eq!(
                    (state.balance, state.counter),
                    (opening, 0),
                    "card untouched"
                );
            }
        }
    }
}

/// The in-doubt records of the journal: (intent, reason).
fn in_doubt_records(rig: &DebitRig) -> Vec<(Seq, InDoubtReason)> {
    rig.records
        .iter()
        .filter_map(|r| match r.body {
            RecordBody::SaleInDoubt(d) => Some((d.intent, d.reason)),
            RecordBody::LoadInDoubt(d) => Some((d.intent, d.reason)),
            _ => None,
        })
        .collect()
}

/// A torn debit or top-up whose card never comes back: at exactly `UNRESOLVED_MAX_AGE_MS` after
/// its intent (not a millisecond before) it goes to the server in doubt (`CardNeverReturned`)
/// and leaves the status line's 待核 count. What then happens when the card does come back,
/// after all: the till has handed the intent to the server and does not reopen it — the card's
/// tap is an ordinary tap, nothing is debited or loaded again, and its next transaction here
/// records the card's counter, from which the server settles the in-doubt record (counter one
/// up with the intent's tag: it happened; unchanged: it did not). The journal and the card
/// agree throughout.
#[test]
fn a_card_that_never_returns_goes_in_doubt_after_the_age_limit_and_is_not_charged_again() {
    let mut cases = 0;
    let uid = uids()[0];
    let card = issued_card(&uid);
    for op in [Operation::Debit, Operation::Load] {
        for (fault, landed) in [
            (WriteFault::RemovedAfterData, true),
            (WriteFault::RemovedAfterCommand, false),
        ] {
            for restart in [false, true] {
                let name = format!("{op:?} {fault:?} restart={restart}");
                let mut rig = DebitRig::new(op, uid, &card);
                rig.start_request();
                let writes = rig.till.control.counters().writes;
                rig.till.control.inject(Fault::Write {
                    write_index: writes,
                    fault,
                });
                rig.tap().expect("the card answers the tap");
                let intent = rig
                    .records
                    .iter()
                    .find(|r| {
                        matches!(
                            r.body,
                            RecordBody::SaleIntent(_) | RecordBody::LoadIntent(_)
                        )
                    })
                    .cloned()
                    .expect("an intent");
                assert_eq!(unresolved(&rig), 1, "{name}");
                assert!(rig.merchant()[0].contains("待核1"), "{name}");
                // The card leaves for good; the merchant (or a restart) leaves the retry screen,
                // whose own intent never expires while it is up.
                // (Kept where the rig still decodes it, out of the reader's field.)
                let away = rig.lift();
                *rig.till.taken.borrow_mut() = Some(away);
                if restart {
                    rig.restart();
                } else {
                    rig.keys([TillKey::Clear]);
                    rig.settle_screen();
                }
                let deadline = intent.at.saturating_add_millis(UNRESOLVED_MAX_AGE_MS);
                rig.tick_at(UnixMillis(deadline.0 - 1));
                assert_eq!(unresolved(&rig), 1, "{name}: not a millisecond early");
                assert!(in_doubt_records(&rig).is_empty(), "{name}");
                rig.tick_at(deadline);
                assert_eq!(
                    in_doubt_records(&rig),
                    vec![(intent.seq, InDoubtReason::CardNeverReturned)],
                    "{name}"
                );
                assert_eq!(unresolved(&rig), 0, "{name}");
                assert!(
                    !rig.merchant()[0].contains("待核"),
                    "{name}: {:?}",
                    rig.merchant()
                );
                let card_then = decode(&rig.card(), &uid).unwrap();
                assert_eq!(card_then.counter, u32::from(landed), "{name}");

                // The card comes back: an ordinary tap, nothing journaled, nothing written.
                let back = rig.lift();
                rig.till.control.place_card(back);
                rig.settle_screen();
                let journaled = rig.records.len();
                rig.tap().expect("the card answers");
                assert_eq!(rig.records.len(), journaled, "{name}: {:#?}", rig.records);
                assert_eq!(decode(&rig.card(), &uid), Some(card_then), "{name}");
                // Its next transaction here moves the money once, from the card as it is.
                rig.settle_screen();
                if rig.shows("充值金额") || rig.shows("请先退出") {
                    rig.type_load_amount();
                } else if !rig.shows("请刷卡") {
                    rig.start_request();
                }
                rig.settle_screen();
                rig.replace_card();
                rig.tap().expect("the card answers");
                assert_eq!(rig.committed_count(), 1, "{name}: {:?}", rig.merchant());
                let journal_audit = audit(rig.journal(), &name);
                assert_eq!(journal_audit.intents.len(), 2, "{name}");
                assert_eq!(
                    journal_audit.resolutions[&intent.seq],
                    Resolution::InDoubt,
                    "{name}"
                );
                let (second, plan) = journal_audit.intents.iter().last().unwrap();
                assert!(
                    matches!(
                        journal_audit.resolutions[second],
                        Resolution::Committed { .. }
                    ),
                    "{name}"
                );
                // What the server settles the in-doubt record from: the chain of counters.
                assert_eq!(plan.counter_before, u32::from(landed), "{name}");
                assert_eq!(plan.balance_before, card_then.balance, "{name}");
                let opening = Fen::new(OPENING_FEN);
                let once = op.after(opening).unwrap();
                let expected = if landed { op.after(once) } else { Some(once) };
                let state = decode(&rig.card(), &uid).unwrap();
                assert_eq!(Some(state.balance), expected, "{name}: {:?}", rig.history);
                assert_eq!(state.counter, u32::from(landed) + 1, "{name}");
                cases += 1;
            }
        }
    }
    println!("card never returned: {cases} cases");
    assert_eq!(cases, 8);
}
