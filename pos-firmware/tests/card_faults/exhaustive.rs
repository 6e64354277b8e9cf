//! The exhaustive matrix: a fault at every card operation of a debit and a top-up (found by
//! fault-free dry runs), with and without a restart or a power cut at the fault, the card used
//! elsewhere or not; each case is driven until the money has moved and then audited.

use super::*;

/// How the intent of the faulted tap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstOutcome {
    /// The fault struck before any intent (the tap failed): nothing to settle.
    NoIntent,
    CommittedAtOnce,
    /// Unresolved after the fault; at the re-tap the card showed the write: committed.
    RecoveredFound,
    /// Unresolved after the fault; at the re-tap the card was unchanged: written again, committed.
    RecoveredRewritten,
    /// The write was refused (nothing sent): aborted at once, the re-tap paid.
    Aborted,
    /// Unresolved, the till restarted (the sale was gone), the card unchanged: aborted at the
    /// re-tap, the merchant sold again.
    AbortedAtRetap,
    InDoubtLanded,
    InDoubtNotLanded,
}

#[derive(Debug, Default)]
struct Tally {
    pub(crate) cases: u64,
    pub(crate) restarts: u64,
    power_cuts: u64,
    by_outcome: BTreeMap<String, u64>,
    used_elsewhere: u64,
    replays_refused: u64,
}

/// One case, start to end.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) op: Operation,
    pub(crate) uid: CardUid,
    pub(crate) injection: Injection,
    pub(crate) restart: bool,
    /// The till's power is cut at the fault itself, in the middle of the card operation: its
    /// process state (screen, mode, the outcome of the write) is gone and it restarts from the
    /// journal (implies `restart`). Only for faults that strike after the tap was read.
    pub(crate) power_cut: bool,
    pub(crate) next: NextTap,
}

/// The counters of a fault-free (or faulted) tap: at the tap's start, after the read, after the
/// write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DryRun {
    pub(crate) tap: OpCounters,
    pub(crate) write: OpCounters,
}

/// One fault at one operation.
fn single_fault(fault: Fault) -> Injection {
    Injection {
        faults: vec![fault],
        leave_after_exchanges: None,
    }
}

/// Every single fault over the operations counted in `all`: each write × each write fault,
/// each authentication failing, each read removed or corrupted, the reader dying (reading as
/// each of `dead_reads_as`) at each operation, and the card leaving after each exchange.
pub(crate) fn every_single_fault(all: &OpCounters, dead_reads_as: &[u8]) -> Vec<Injection> {
    let mut out = Vec::new();
    for write_index in 0..all.writes {
        for fault in WriteFault::ALL {
            out.push(single_fault(Fault::Write { write_index, fault }));
        }
    }
    for auth_index in 0..all.auths {
        out.push(single_fault(Fault::AuthFails { auth_index }));
    }
    for read_index in 0..all.reads {
        for fault in [ReadFault::Removed, ReadFault::CorruptedCrc] {
            out.push(single_fault(Fault::Read { read_index, fault }));
        }
    }
    for (op, count) in [
        (Op::Auth, all.auths),
        (Op::Read, all.reads),
        (Op::Write, all.writes),
    ] {
        for index in 0..count {
            for &reads_as in dead_reads_as {
                out.push(single_fault(Fault::ReaderDies {
                    op,
                    index,
                    reads_as,
                }));
            }
        }
    }
    for n in 1..exchanges(all) {
        out.push(Injection {
            faults: Vec::new(),
            leave_after_exchanges: Some(n),
        });
    }
    out
}

pub(crate) fn delta(from: &OpCounters, to: &OpCounters) -> OpCounters {
    OpCounters {
        auths: to.auths - from.auths,
        reads: to.reads - from.reads,
        writes: to.writes - from.writes,
        selects: to.selects - from.selects,
        halts: to.halts - from.halts,
        spi_transactions: to.spi_transactions - from.spi_transactions,
    }
}

/// What the faulted tap left: the rig (for the rest of the case), the op counts of the tap
/// and of the whole tap + write (relative to the tap's start), what the till was handed and
/// answered, and whether every injected fault struck.
pub(crate) struct Faulted {
    pub(crate) rig: DebitRig,
    pub(crate) counts: DryRun,
    pub(crate) tapped: Option<(CardRead, Vec<Output>)>,
    pub(crate) struck: bool,
    /// The power was cut at the fault (only with `case.power_cut`, for a fault after the tap).
    pub(crate) power_cut: bool,
}

pub(crate) fn faulted_tap(case: &Case, card: &EmulatedCard) -> Faulted {
    let mut rig = DebitRig::new(case.op, case.uid, card);
    rig.start_request();
    let base = rig.till.control.counters();
    for fault in &case.injection.faults {
        rig.till.control.inject(shifted(*fault, &base));
    }
    if let Some(n) = case.injection.leave_after_exchanges {
        rig.till.leave_at.set(Some(exchanges(&base) + n));
    }
    let read = rig.till.wallet.tap();
    let after_tap = rig.till.control.counters();
    let still_to_strike =
        !rig.till.control.pending_faults().is_empty() || rig.till.leave_at.get().is_some();
    POWER_CUT_AT_FAULT.set(case.power_cut && still_to_strike);
    let mut power_cut = false;
    let result = read.map(|read| {
        if let CardRead::Card(image) = read {
            let state = decode(&rig.card(), &rig.uid).expect("a read card decodes");
            assert_eq!(image, image_of(rig.uid, &state));
        }
        let fed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rig.feed(Input::Card(read))));
        let outputs = match fed {
            Ok(outputs) => outputs,
            Err(payload) if payload.is::<PowerCut>() => {
                // The outputs of the input died with the process: what is durable is what
                // the journal holds.
                power_cut = true;
                rig.records = journal::records(rig.journal());
                rig.observe_card();
                Vec::new()
            }
            Err(payload) => std::panic::resume_unwind(payload),
        };
        (read, outputs)
    });
    POWER_CUT_AT_FAULT.set(false);
    let after_write = rig.till.control.counters();
    let struck = rig.till.control.pending_faults().is_empty() && rig.till.leave_at.get().is_none();
    rig.till.leave_at.set(None);
    rig.till.control.clear_faults();
    Faulted {
        rig,
        counts: DryRun {
            tap: delta(&base, &after_tap),
            write: delta(&base, &after_write),
        },
        tapped: result,
        struck,
        power_cut,
    }
}

fn run_case(case: &Case, card: &EmulatedCard, tally: &mut Tally) {
    let name = format!("{case:?}");
    let name = name.as_str();
    let op = case.op;
    let Faulted {
        mut rig,
        tapped,
        struck,
        power_cut,
        ..
    } = faulted_tap(case, card);
    assert!(
        struck,
        "{name}: the fault must strike (enumerated from a dry run)"
    );
    if case.power_cut && !power_cut {
        return; // the fault struck in the tap, before the till had anything to lose
    }
    assert!(
        !power_cut || case.restart,
        "{name}: a power cut restarts the till"
    );
    // A dead reader is power-cycled by whoever comes to look at the till.
    rig.till.control.set_reader_dead(None);

    // What the merchant sees right after the fault.
    let first_intent = rig.records.iter().find_map(|r| match r.body {
        RecordBody::SaleIntent(_) | RecordBody::LoadIntent(_) => Some(r.seq),
        _ => None,
    });
    let state_after_fault = *rig.history.last().unwrap();
    let initial_state = rig.history[0];
    let committed_now = rig.committed_count();
    let (ok_text, failed_text, retry_text) = match op {
        Operation::Debit => ("交易成功", "写卡失败 未扣款", "请重新刷卡"),
        Operation::Load => ("充值成功", "写卡失败 未充值", "充值未完成 请重新刷卡"),
    };
    assert!(
        power_cut || rig.shows(ok_text) == (committed_now == 1),
        "{name}: success is shown exactly when committed: {:?}",
        rig.merchant()
    );
    let beeps: Vec<Beep> = tapped
        .iter()
        .flat_map(|(_, outputs)| outputs.iter())
        .filter_map(|o| match o {
            Output::Beep(beep) => Some(*beep),
            _ => None,
        })
        .collect();
    let mut resolved_at_fault = false;
    let landed_at_fault = match first_intent {
        None if power_cut => panic!("{name}: a power cut after the tap cuts a written intent"),
        None => {
            // The tap failed before the till decided anything: the card is untouched.
            assert_eq!(rig.history.len(), 1, "{name}: no intent, no write");
            let reader_died = case
                .injection
                .faults
                .iter()
                .any(|f| matches!(f, Fault::ReaderDies { .. }));
            let reader_fault = matches!(
                tapped,
                Some((CardRead::Unreadable(CardProblem::ReaderFault), _))
            );
            assert_eq!(
                reader_fault,
                reader_died && tapped.is_some(),
                "{name}: a dead reader at the tap, and only that, is a reader fault: {tapped:?}"
            );
            if reader_fault {
                assert!(
                    rig.shows("读卡器故障") && rig.shows("请联系维护"),
                    "{name}: {:?}",
                    rig.merchant()
                );
                assert_eq!(rig.customer()[0], "读卡器故障", "{name}");
            } else {
                assert!(
                    tapped.is_none()
                        || rig.shows("读卡失败")
                        || rig.shows("卡片密钥错误")
                        || rig.shows("卡片数据校验失败"),
                    "{name}: a failed tap says so: {:?}",
                    rig.merchant()
                );
            }
            false
        }
        Some(intent) => {
            let resolved = rig.records.iter().any(|r| match r.body {
                RecordBody::SaleCommitted(s) => s.intent == intent,
                RecordBody::SaleAborted(s) => s.intent == intent,
                RecordBody::LoadCommitted(l) => l.intent == intent,
                RecordBody::LoadAborted(l) => l.intent == intent,
                _ => false,
            });
            resolved_at_fault = resolved;
            if power_cut {
                // Cut before the outcome was handled: nothing settled, whatever the card holds.
                assert!(
                    !resolved && committed_now == 0,
                    "{name}: {:#?}",
                    rig.records
                );
            } else if committed_now == 1 {
                assert_eq!(beeps, vec![Beep::Success], "{name}");
            } else if resolved {
                // Refused: nothing was sent, the card is byte-identical.
                assert_eq!(rig.card().block(5), card.block(5), "{name}");
                assert_eq!(rig.card().block(6), card.block(6), "{name}");
                assert!(rig.shows(failed_text), "{name}: {:?}", rig.merchant());
                assert!(rig.shows("请重新刷卡"), "{name}: {:?}", rig.merchant());
            } else {
                assert!(rig.shows(retry_text), "{name}: {:?}", rig.merchant());
                assert_eq!(
                    rig.customer()[0],
                    "请重新刷卡",
                    "{name}: the payer is asked too"
                );
                assert_eq!(beeps, vec![Beep::Error], "{name}");
            }
            state_after_fault != initial_state
        }
    };
    // Whatever happened, the card holds exactly the old or exactly the new state.
    assert!(rig.history.len() <= 2, "{name}: {:?}", rig.history);

    // Between the fault and the next tap.
    if case.next == NextTap::UsedElsewhere {
        rig.use_elsewhere();
        tally.used_elsewhere += 1;
    }
    if case.restart {
        rig.restart();
        tally.restarts += 1;
        tally.power_cuts += u64::from(power_cut);
        if !journal::pending_intents(rig.journal()).is_empty() {
            assert!(
                rig.shows("有未完成交易待核对"),
                "{name}: {:?}",
                rig.merchant()
            );
        }
    }

    // Put the card back and do what the till asks until the money moved.
    let mut steps = 0;
    while rig.committed_count() == 0 {
        steps += 1;
        assert!(
            steps <= FOLLOW_STEPS_MAX,
            "{name}: the till never took the money: {:?}\n{:#?}",
            rig.merchant(),
            rig.records
        );
        rig.settle_screen();
        if rig.shows("请输入金额") {
            rig.start_request();
        } else if rig.shows("充值金额") {
            rig.type_load_amount();
        } else if rig.shows("请刷卡") || rig.shows("请重新刷卡") {
            rig.replace_card();
            rig.tap().expect("the card answers");
        } else {
            panic!("{name}: what does the till want? {:?}", rig.merchant());
        }
    }
    assert_eq!(rig.committed_count(), 1, "{name}: exactly one {op:?}");

    // The card against the journal.
    let journal_audit = audit(rig.journal(), name);
    assert!(
        journal_audit.resolutions.len() == journal_audit.intents.len(),
        "{name}: nothing left unresolved: {:#?}",
        rig.records
    );
    let on_card = |plan: &IntentPlan| {
        let after = plan.op.after(plan.balance_before);
        rig.history.iter().any(|s| {
            Some(s.counter) == plan.counter_before.checked_add(1)
                && s.tag == plan.tag
                && Some(s.balance) == after
        })
    };
    let mut expected_change: i64 = 0;
    let sign = |op: Operation| match op {
        Operation::Debit => -1,
        Operation::Load => 1,
    };
    let mut first_outcome = FirstOutcome::NoIntent;
    for (seq, plan) in &journal_audit.intents {
        let resolution = journal_audit.resolutions[seq];
        let landed = on_card(plan);
        let amount = i64::try_from(plan.amount.get()).unwrap();
        match resolution {
            Resolution::Committed { balance_after } => {
                assert!(landed, "{name}: intent {seq} committed but not on the card");
                assert_eq!(Some(balance_after), plan.op.after(plan.balance_before));
                expected_change += sign(plan.op) * amount;
            }
            Resolution::Aborted => {
                assert!(!landed, "{name}: intent {seq} aborted but on the card");
            }
            Resolution::InDoubt => {
                assert_eq!(
                    case.next,
                    NextTap::UsedElsewhere,
                    "{name}: in doubt only when the card moved on"
                );
                if landed {
                    expected_change += sign(plan.op) * amount;
                }
            }
        }
        if Some(*seq) == first_intent {
            first_outcome = match resolution {
                Resolution::Committed { .. } if committed_now == 1 => FirstOutcome::CommittedAtOnce,
                Resolution::Committed { .. } if landed_at_fault => FirstOutcome::RecoveredFound,
                Resolution::Committed { .. } => FirstOutcome::RecoveredRewritten,
                Resolution::Aborted if resolved_at_fault => FirstOutcome::Aborted,
                Resolution::Aborted => FirstOutcome::AbortedAtRetap,
                Resolution::InDoubt if landed => FirstOutcome::InDoubtLanded,
                Resolution::InDoubt => FirstOutcome::InDoubtNotLanded,
            };
        }
    }
    // The rule the till follows, per case: what decides how the faulted intent ends.
    let expected_outcome = match first_intent {
        None => FirstOutcome::NoIntent,
        Some(_) if committed_now == 1 => FirstOutcome::CommittedAtOnce,
        Some(_) if resolved_at_fault => FirstOutcome::Aborted,
        // The card moved on: only the server can tell (and whether our write is under the
        // other till's is counted as landed / not landed).
        Some(_) if case.next == NextTap::UsedElsewhere && landed_at_fault => {
            FirstOutcome::InDoubtLanded
        }
        Some(_) if case.next == NextTap::UsedElsewhere => FirstOutcome::InDoubtNotLanded,
        Some(_) if landed_at_fault => FirstOutcome::RecoveredFound,
        // After a restart the sale is gone: an unchanged card aborts it, the merchant sells
        // again. The top-up screen resumes its load (the cash was taken).
        Some(_) if case.restart && op == Operation::Debit => FirstOutcome::AbortedAtRetap,
        Some(_) => FirstOutcome::RecoveredRewritten,
    };
    assert_eq!(
        first_outcome, expected_outcome,
        "{name}: {:#?}",
        rig.records
    );
    if case.next == NextTap::UsedElsewhere {
        expected_change -= i64::try_from(OTHER_TILL_DEBIT_FEN).unwrap();
    }
    let final_state = decode(&rig.card(), &rig.uid).unwrap();
    for block in [HEADER_BLOCK, TRAILER_BLOCK] {
        assert_eq!(
            rig.card().block(block),
            card.block(block),
            "{name}: only the state slots are ever written"
        );
    }
    let change = i64::try_from(final_state.balance.get()).unwrap()
        - i64::try_from(initial_state.balance.get()).unwrap();
    assert_eq!(
        change, expected_change,
        "{name}: money conservation: {:?}",
        rig.history
    );
    // Our writes on the card: the committed one and the landed in-doubt ones, nothing else.
    let ours = journal_audit
        .intents
        .values()
        .filter(|p| on_card(p))
        .count();
    let elsewhere = usize::from(case.next == NextTap::UsedElsewhere);
    assert_eq!(
        rig.history.len() - 1,
        ours + elsewhere,
        "{name}: {:?}",
        rig.history
    );
    if std::env::var_os("CARD_FAULTS_TRACE").is_some() {
        println!("{first_outcome:?} <- {name}");
    }
    *tally
        .by_outcome
        .entry(format!("{first_outcome:?}"))
        .or_default() += 1;

    // Replay: the card's issued blocks written back after a committed debit are refused.
    if op == Operation::Debit {
        let intents_before = journal_audit.intents.len();
        let anomalies_before = journal_audit.anomalies;
        let mut restored = rig.lift();
        for block in [5, 6] {
            restored
                .set_block(block, rig.initial.block(block).unwrap())
                .unwrap();
        }
        rig.till.control.place_card(restored.clone());
        rig.history = vec![decode(&restored, &rig.uid).unwrap()];
        if case.restart {
            rig.restart();
        }
        rig.settle_screen();
        rig.start_request();
        rig.tap().expect("the restored card answers");
        assert!(rig.shows("卡片数据异常"), "{name}: {:?}", rig.merchant());
        let after = audit(rig.journal(), name);
        assert_eq!(
            after.intents.len(),
            intents_before,
            "{name}: no intent for a replay"
        );
        assert_eq!(after.anomalies, anomalies_before + 1, "{name}: CardAnomaly");
        for block in HEADER_BLOCK..=TRAILER_BLOCK {
            assert_eq!(rig.card().block(block), restored.block(block), "{name}");
        }
        tally.replays_refused += 1;
    }
    tally.cases += 1;
}

/// The fault-free dry run of an operation on a card: how many of each operation the tap and
/// the write make.
pub(crate) fn dry_run(op: Operation, uid: CardUid, card: &EmulatedCard) -> DryRun {
    let case = Case {
        op,
        uid,
        injection: Injection::default(),
        restart: false,
        power_cut: false,
        next: NextTap::Same,
    };
    let run = faulted_tap(&case, card);
    assert_eq!(run.rig.committed_count(), 1, "the dry run commits at once");
    run.counts
}

/// Every injection for an operation whose fault-free tap + write makes `counts.write`
/// operations, of which `counts.tap` in the tap.
pub(crate) fn injections(
    op: Operation,
    uid: CardUid,
    card: &EmulatedCard,
    counts: &DryRun,
) -> Vec<Injection> {
    let all = counts.write;
    let single = single_fault;
    let mut out = every_single_fault(&all, &[0x00, 0xFF]);
    // A garbled read in the write phase sends the wallet to a fresh select + authentication:
    // strike every authentication and read that path adds.
    for read_index in counts.tap.reads..all.reads {
        let opener = Fault::Read {
            read_index,
            fault: ReadFault::CorruptedCrc,
        };
        let case = Case {
            op,
            uid,
            injection: single(opener),
            restart: false,
            power_cut: false,
            next: NextTap::Same,
        };
        let path = faulted_tap(&case, card).counts;
        let with = |fault| Injection {
            faults: vec![opener, fault],
            leave_after_exchanges: None,
        };
        for auth_index in all.auths..path.write.auths {
            out.push(with(Fault::AuthFails { auth_index }));
            out.push(with(Fault::ReaderDies {
                op: Op::Auth,
                index: auth_index,
                reads_as: 0x00,
            }));
        }
        for later in read_index + 1..path.write.reads {
            for fault in [ReadFault::Removed, ReadFault::CorruptedCrc] {
                out.push(with(Fault::Read {
                    read_index: later,
                    fault,
                }));
            }
        }
    }
    out
}

#[test]
fn every_card_fault_settles_to_exactly_one_debit_or_load() {
    let mut tally = Tally::default();
    let mut minimum = 0u64;
    for uid in uids() {
        let card = issued_card(&uid);
        for op in [Operation::Debit, Operation::Load] {
            let counts = dry_run(op, uid, &card);
            assert_eq!(
                counts.write.writes, 1,
                "{op:?}: one block write, the commit point"
            );
            let injections = injections(op, uid, &card, &counts);
            // At least every write fault, every auth, both read faults at every read and the
            // card leaving after every exchange, each with and without a restart and with the
            // card coming straight back or used elsewhere first.
            let all = counts.write;
            minimum += 4 * u64::from(
                all.writes * WriteFault::ALL.len() as u32
                    + all.auths
                    + 2 * all.reads
                    + exchanges(&all)
                    - 1,
            );
            for injection in injections {
                for (restart, power_cut) in [(false, false), (true, false), (true, true)] {
                    for next in [NextTap::Same, NextTap::UsedElsewhere] {
                        let case = Case {
                            op,
                            uid,
                            injection: injection.clone(),
                            restart,
                            power_cut,
                            next,
                        };
                        run_case(&case, &card, &mut tally);
                    }
                }
            }
        }
    }
    let outcome = |name: &str| tally.by_outcome.get(name).copied().unwrap_or(0);
    println!(
        "card faults: {} cases: {} committed at once, {} recovered at re-tap ({} found on the \
         card, {} written again), {} aborted ({} at once, {} at the re-tap after a restart), \
         {} in doubt (used elsewhere: {} with our write under the other till's, {} without), \
         {} taps failed before any intent; restarts {} ({} of them power cuts at the fault), \
         used elsewhere {}, replays refused {}",
        tally.cases,
        outcome("CommittedAtOnce"),
        outcome("RecoveredFound") + outcome("RecoveredRewritten"),
        outcome("RecoveredFound"),
        outcome("RecoveredRewritten"),
        outcome("Aborted") + outcome("AbortedAtRetap"),
        outcome("Aborted"),
        outcome("AbortedAtRetap"),
        outcome("InDoubtLanded") + outcome("InDoubtNotLanded"),
        outcome("InDoubtLanded"),
        outcome("InDoubtNotLanded"),
        outcome("NoIntent"),
        tally.restarts,
        tally.power_cuts,
        tally.used_elsewhere,
        tally.replays_refused,
    );
    assert!(tally.power_cuts > 0, "the power-cut family must run");
    assert!(
        tally.cases >= minimum,
        "the enumeration shrank: {} cases, at least {minimum} expected from the dry runs",
        tally.cases
    );
    for name in [
        "NoIntent",
        "CommittedAtOnce",
        "RecoveredFound",
        "RecoveredRewritten",
        "Aborted",
        "AbortedAtRetap",
        "InDoubtLanded",
        "InDoubtNotLanded",
    ] {
        assert!(outcome(name) > 0, "no case ended {name}");
    }
}
