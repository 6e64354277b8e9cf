//! An interrupted card issue (开卡) on the whole till: a fault at every operation of the issue,
//! and the card journaled as issued exactly once, at its re-tap, when its writes landed.

use super::*;

/// The card centre's issue screen on the whole till (runtime, journal, wallet, driver, emulated
/// chip), with a blank card on the reader.
struct IssueRig {
    pub(crate) till: TillRig,
}

impl IssueRig {
    pub(crate) fn new(uid: &CardUid) -> IssueRig {
        let mut rig = IssueRig {
            till: TillRig::new(EmulatedCard::blank(uid.as_bytes()).unwrap()),
        };
        rig.open_issue_screen();
        rig
    }

    /// Staff menu (F2+1+7, PIN), then 2: the issue screen.
    fn open_issue_screen(&mut self) {
        for key in [TillKey::F2, TillKey::Digit(1), TillKey::Digit(7)]
            .into_iter()
            .chain(STAFF_PIN.map(TillKey::Digit))
            .chain([TillKey::Enter, TillKey::Digit(2)])
        {
            self.feed(Input::Key(key));
        }
        assert!(self.shows("请放空白卡"), "{:?}", self.merchant());
    }

    pub(crate) fn feed(&mut self, input: Input) {
        self.till.pass(STEP_MS);
        self.till.handle(input);
    }

    pub(crate) fn settle_screen(&mut self) {
        self.till.pass(MESSAGE_SHOW_MS);
        self.feed(Input::Tick);
    }

    pub(crate) fn merchant(&self) -> Vec<String> {
        self.till.merchant()
    }

    pub(crate) fn shows(&self, text: &str) -> bool {
        self.till.shows(text)
    }

    /// A fresh tap of the card (lifted and put back), read and handed to the till.
    fn retap(&mut self) -> Option<CardRead> {
        let card = self.till.lift();
        self.till.control.place_card(card);
        self.tap()
    }

    pub(crate) fn tap(&mut self) -> Option<CardRead> {
        let read = self.till.wallet.tap()?;
        self.feed(Input::Card(read));
        Some(read)
    }

    /// The `CardIssued` records in the journal: (uid, opening balance).
    pub(crate) fn issued(&self) -> Vec<(CardUid, Fen)> {
        journal::records(self.till.runtime().journal())
            .into_iter()
            .filter_map(|r| match r.body {
                RecordBody::CardIssued(issued) => Some((issued.uid, issued.opening_balance)),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn restart(&mut self) {
        self.till.reopen();
    }
}

/// How an issue under a fault ended, once the card was tapped again until it settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IssueEnd {
    /// The fault did not stop the issue.
    IssuedAtOnce,
    /// The issue was interrupted, its writes had landed: recorded at the re-tap.
    RecordedAtRetap,
    /// The card was still blank (or refused before any write): issued again at the re-tap.
    IssuedAgain,
    /// Torn trailer: the sector is lost (card-centre recovery), nothing to record.
    Lost,
}

/// An interrupted card issue (开卡) whose writes did land is journaled as `CardIssued` at the
/// card's re-tap in the issue screen — once, never twice: for a fault at every write,
/// authentication and read of the issue, the reader dying at each, and the card leaving after
/// every exchange, the card ends as a wallet exactly when one `CardIssued` names it, with a zero
/// opening balance. After a restart too: the interrupted issue is journaled with its UID
/// (`CardIssueInterrupted`, snapshot version 3), so a landed one is recorded at its re-tap.
#[test]
fn an_interrupted_issue_whose_writes_landed_is_journaled_once_at_the_retap() {
    let mut ends: BTreeMap<IssueEnd, u64> = BTreeMap::new();
    for uid in uids() {
        // The fault-free dry run: what the tap + issue does.
        let mut dry = IssueRig::new(&uid);
        let base = dry.till.control.counters();
        dry.tap().expect("the blank card answers");
        assert_eq!(dry.issued(), vec![(uid, Fen::ZERO)], "the dry run issues");
        let all = delta(&base, &dry.till.control.counters());
        assert_eq!(all.writes, 4, "header, two slots, trailer");
        let injections = every_single_fault(&all, &[0x00]);
        for injection in injections {
            for restart in [false, true] {
                let name = format!("{uid} {injection:?} restart={restart}");
                let mut rig = IssueRig::new(&uid);
                let base = rig.till.control.counters();
                for fault in &injection.faults {
                    rig.till.control.inject(shifted(*fault, &base));
                }
                if let Some(n) = injection.leave_after_exchanges {
                    rig.till.leave_at.set(Some(exchanges(&base) + n));
                }
                rig.tap().expect("the blank card answers");
                assert!(
                    rig.till.control.pending_faults().is_empty()
                        && rig.till.leave_at.get().is_none(),
                    "{name}: the fault struck"
                );
                let issued_at_once = !rig.issued().is_empty();
                let interrupted = rig.shows("开卡中断");
                let reader_died = injection
                    .faults
                    .iter()
                    .any(|f| matches!(f, Fault::ReaderDies { .. }));
                // A dead reader before any write is a reader fault, at the tap or the issue.
                assert_eq!(
                    rig.shows("读卡器故障"),
                    reader_died && !interrupted,
                    "{name}: {:?}",
                    rig.merchant()
                );
                rig.till.repair_reader();
                if restart {
                    rig.restart();
                    rig.settle_screen();
                    rig.open_issue_screen();
                }
                // Tap the card again until it reads as a wallet (or proves lost).
                let mut recorded_at = None;
                let mut last = None;
                for step in 0..FOLLOW_STEPS_MAX {
                    rig.settle_screen();
                    let before = rig.issued().len();
                    last = rig.retap();
                    if recorded_at.is_none() && rig.issued().len() > before {
                        recorded_at = Some((step, last));
                    }
                    if matches!(last, Some(CardRead::Card(_))) {
                        break;
                    }
                }
                let issued = rig.issued();
                assert!(issued.len() <= 1, "{name}: issued twice: {issued:?}");
                assert!(
                    issued.iter().all(|i| *i == (uid, Fen::ZERO)),
                    "{name}: {issued:?}"
                );
                let is_wallet = matches!(last, Some(CardRead::Card(_)));
                if !is_wallet {
                    // Torn trailer: a key A that is neither ours nor the transport key, or ours
                    // with access bits whose copies disagree (the sector refuses every read).
                    assert!(
                        matches!(
                            last,
                            Some(CardRead::Unreadable(
                                CardProblem::WrongKey | CardProblem::ReadFailed
                            ))
                        ),
                        "{name}: a card that never became a wallet is the lost case: {last:?}"
                    );
                    assert_ne!(
                        rig.till.control.block(TRAILER_BLOCK),
                        EmulatedCard::blank(uid.as_bytes())
                            .unwrap()
                            .block(TRAILER_BLOCK),
                        "{name}: lost only to a (torn) trailer write"
                    );
                }
                let end = match (issued_at_once, recorded_at, is_wallet) {
                    (true, _, true) => IssueEnd::IssuedAtOnce,
                    // Recorded at a tap that read the wallet: the interrupted issue had landed.
                    (false, Some((_, Some(CardRead::Card(_)))), true) => {
                        assert!(interrupted, "{name}: only an interrupted issue");
                        IssueEnd::RecordedAtRetap
                    }
                    (false, Some(_), true) => IssueEnd::IssuedAgain,
                    (false, None, false) => IssueEnd::Lost,
                    other => panic!("{name}: the card and the journal disagree: {other:?}"),
                };
                assert_eq!(
                    issued.len(),
                    usize::from(end != IssueEnd::Lost),
                    "{name}: {end:?}"
                );
                // More taps change nothing: "此卡已开通", no second record.
                if is_wallet {
                    rig.settle_screen();
                    rig.retap();
                    assert!(rig.shows("此卡已开通"), "{name}: {:?}", rig.merchant());
                    assert_eq!(rig.issued(), issued, "{name}: never twice");
                }
                *ends.entry(end).or_default() += 1;
            }
        }
    }
    println!("interrupted issue: {ends:?}");
    for end in [
        IssueEnd::IssuedAtOnce,
        IssueEnd::RecordedAtRetap,
        IssueEnd::IssuedAgain,
        IssueEnd::Lost,
    ] {
        assert!(
            ends.get(&end).copied().unwrap_or(0) > 0,
            "no case ended {end:?}"
        );
    }
}
