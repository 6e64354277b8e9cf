//! The card centre's flow behind the staff PIN: issuing (formatting) blank cards and loading
//! value onto cards (top-up). A top-up moves money through the same path as a sale
//! (`core/money.rs`: intent → card write → evidence → commit), with the seeds' rule for a failed
//! load: resume it while the card is unchanged, else record it for refund; a load is never
//! applied twice.

use shared::record::{AbortReason, CardIssued, InDoubtReason, LoadIntent, PendingLoad, RecordBody};
use shared::{Fen, Seq};

use keymap::Command;

use super::super::amount::{AmountEntry, EntryError};
use super::super::card::{
    is_as_issued, CardImage, CardWriteOutcome, IssueOutcome, IssueRefusal, WriteEvidence,
};
use super::super::money::{CardIntent, Step};
use super::super::text::{self, balance, reader_fault, yuan};
use super::super::{Beep, Effect, Mode, Till};
use super::staff::StaffMode;

/// The smallest top-up (the campus's rule: loads are whole multiples of ¥10).
pub const MIN_LOAD: Fen = Fen::from_yuan(10);
/// Every top-up is a whole multiple of this.
pub const LOAD_STEP: Fen = Fen::from_yuan(10);
/// The card centre's policy: the most a card may hold after a top-up (¥1,000, the seeds' rule).
/// Only loads are held to it: a MAC-valid card holding more (loaded under an older policy, or
/// restored by the card centre) still pays, and takes no top-up until it is below. The card
/// format's own, larger ceiling is `wallet::layout::CARD_FORMAT_MAX_BALANCE_FEN`.
pub const MAX_CARD_BALANCE: Fen = Fen::from_yuan(1_000);
/// The balance a card issued at the till starts with: none; money goes on by top-up, which is
/// journaled.
pub const TILL_ISSUE_OPENING_BALANCE: Fen = Fen::ZERO;
/// How many times a failed top-up may be resumed on an unchanged card before it is handed to the
/// server (the seeds' rule: at most 5 "continue load" attempts).
pub const MAX_LOAD_RESUMES: u8 = 5;

/// A top-up the card centre is making.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) struct LoadRequest {
    amount: Fen,
    /// An interrupted top-up of this request, waiting for the same card to come back (its
    /// resumes so far are counted in its `PendingLoad`, durably).
    retry: Option<Seq>,
}

/// The states of the card centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) enum CentreMode {
    /// Typing a top-up amount.
    LoadAmount(AmountEntry),
    /// A top-up waits for its card.
    LoadAwaitingCard(LoadRequest),
    /// The top-up's card write is under way.
    Loading { request: LoadRequest, intent: Seq },
    /// Waiting for blank cards to issue.
    IssueAwaitingCard,
    /// A card is being formatted.
    Issuing,
}

impl CentreMode {
    /// The top-up amount screen, where the card centre starts and returns to.
    pub(in crate::core) fn load_amount() -> Mode {
        Mode::CardCentre(CentreMode::LoadAmount(AmountEntry::default()))
    }

    /// The unresolved intent this state works on (its write, or its retry).
    pub(in crate::core) fn intent_on_screen(&self) -> Option<Seq> {
        match self {
            CentreMode::Loading { intent, .. }
            | CentreMode::LoadAwaitingCard(LoadRequest {
                retry: Some(intent),
                ..
            }) => Some(*intent),
            _ => None,
        }
    }

    /// Whether a card write (or format) is under way: it owns the reader.
    pub(in crate::core) fn is_writing(&self) -> bool {
        matches!(self, CentreMode::Loading { .. } | CentreMode::Issuing)
    }
}

impl LoadRequest {
    fn new(amount: Fen) -> LoadRequest {
        LoadRequest {
            amount,
            retry: None,
        }
    }
}

/// Whether `amount` is a top-up the campus allows.
pub fn valid_load(amount: Fen) -> bool {
    amount >= MIN_LOAD && amount.get().is_multiple_of(LOAD_STEP.get())
}

impl Till {
    /// A plain key while the card centre is active.
    pub(in crate::core) fn centre_key(&mut self, mode: CentreMode, command: Command) -> Mode {
        let lang = self.lang();
        match mode {
            CentreMode::LoadAmount(mut entry) => match command {
                Command::Digit(d) => {
                    self.type_load_amount(&mut entry, Some(d));
                    Mode::CardCentre(CentreMode::LoadAmount(entry))
                }
                Command::Delete => {
                    entry.delete();
                    Mode::CardCentre(CentreMode::LoadAmount(entry))
                }
                Command::Clear if entry.is_empty() => Mode::Staff(StaffMode::Menu),
                Command::Clear => CentreMode::load_amount(),
                Command::Enter => self.confirm_load_amount(entry),
                _ => {
                    self.invalid_key();
                    Mode::CardCentre(CentreMode::LoadAmount(entry))
                }
            },
            CentreMode::LoadAwaitingCard(request) => match command {
                Command::Clear if request.retry.is_some() => {
                    self.abandon_interrupted_sale();
                    CentreMode::load_amount()
                }
                Command::Clear => CentreMode::load_amount(),
                _ => {
                    self.show_error(vec![
                        text::TAP_THE_CARD_TO_LOAD.get(lang),
                        text::CLEAR_CANCELS.get(lang),
                    ]);
                    Mode::CardCentre(CentreMode::LoadAwaitingCard(request))
                }
            },
            CentreMode::Loading { request, intent } => {
                self.show_error(vec![text::WRITING_KEEP_THE_CARD_STILL.get(lang)]);
                Mode::CardCentre(CentreMode::Loading { request, intent })
            }
            CentreMode::IssueAwaitingCard => match command {
                Command::Clear => Mode::Staff(StaffMode::Menu),
                _ => {
                    self.show_error(vec![
                        text::TAP_A_BLANK_CARD.get(lang),
                        text::CLEAR_EXITS.get(lang),
                    ]);
                    Mode::CardCentre(CentreMode::IssueAwaitingCard)
                }
            },
            CentreMode::Issuing => Mode::CardCentre(CentreMode::Issuing),
        }
    }

    /// Enter in the top-up amount screen.
    fn confirm_load_amount(&mut self, entry: AmountEntry) -> Mode {
        let lang = self.lang();
        match entry.amount() {
            Some(amount) if valid_load(amount) => {
                Mode::CardCentre(CentreMode::LoadAwaitingCard(LoadRequest::new(amount)))
            }
            Some(_) => {
                self.show_error(vec![text::loads_are_multiples_of(lang, LOAD_STEP)]);
                CentreMode::load_amount()
            }
            None => {
                self.show_error(vec![text::ENTER_AN_AMOUNT_FIRST.get(lang)]);
                Mode::CardCentre(CentreMode::LoadAmount(entry))
            }
        }
    }

    fn type_load_amount(&mut self, entry: &mut AmountEntry, key: Option<u8>) {
        let lang = self.lang();
        if let Err(error) = entry.push(key, MAX_CARD_BALANCE) {
            let line = match error {
                EntryError::TooManyDecimals | EntryError::SecondPoint => {
                    text::WHOLE_YUAN_ONLY.get(lang)
                }
                EntryError::OverMax(max) => text::over_the_card_limit(lang, max),
            };
            self.show_error(vec![line]);
        }
    }

    /// A campus card was tapped while a top-up waits for it.
    fn tap_for_load(&mut self, request: LoadRequest, card: &CardImage) {
        let lang = self.lang();
        if let Some(intent) = request.retry {
            // Only the card of the interrupted top-up may go on.
            let Some(pending) = self.pending_load_for(card) else {
                return self.show_error(vec![
                    text::TAP_THE_SAME_CARD_AGAIN.get(lang),
                    text::CLEAR_GIVES_UP.get(lang),
                ]);
            };
            if pending.intent != intent {
                return self.resolve_pending_load(pending, card);
            }
            return self.resume_load(request, pending, card);
        }
        if let Some(pending) = self.pending_load_for(card) {
            // An earlier top-up of this card never finished: settle it first.
            return self.resolve_pending_load(pending, card);
        }
        self.start_load(request, card);
    }

    fn start_load(&mut self, request: LoadRequest, card: &CardImage) {
        let lang = self.lang();
        let Some(new_balance) = card
            .balance
            .checked_add(request.amount)
            .filter(|b| *b <= MAX_CARD_BALANCE)
        else {
            return self.show_error(vec![
                text::load_would_exceed(lang, MAX_CARD_BALANCE),
                balance(lang, card.balance),
            ]);
        };
        let Some(new_counter) = card.counter.checked_add(1) else {
            return self.show_error(vec![text::CARD_WORN_OUT_REPLACE_IT.get(lang)]);
        };
        let (now, uid) = (self.now, card.uid);
        let intent =
            self.begin_card_money(card, new_counter, new_balance, |intent, plan| PendingLoad {
                intent,
                at: now,
                load: LoadIntent {
                    amount: request.amount,
                    uid,
                    card: plan,
                },
                resumes: 0,
            });
        self.mode = Mode::CardCentre(CentreMode::Loading { request, intent });
    }

    /// The card of an interrupted top-up of this very request came back.
    fn resume_load(&mut self, request: LoadRequest, pending: PendingLoad, card: &CardImage) {
        let lang = self.lang();
        match pending.evidence(card) {
            WriteEvidence::OnCard => {
                self.remember_card(card);
                self.commit_load(pending, card.balance, true)
            }
            WriteEvidence::NotOnCard if pending.resumes >= MAX_LOAD_RESUMES => {
                self.settle(pending.in_doubt(InDoubtReason::ResumeLimitReached));
                self.mode = CentreMode::load_amount();
                self.show_message(
                    vec![
                        text::LOAD_FAILED_TOO_OFTEN.get(lang),
                        yuan(pending.load.amount),
                        text::SERVER_SETTLES_REFUND.get(lang),
                    ],
                    None,
                    Beep::Error,
                );
            }
            WriteEvidence::NotOnCard => {
                // The seeds' "continue load": same intent, same plan, the card is unchanged.
                let Some(write) = pending.write_again(card.uid) else {
                    return;
                };
                // The count is journaled before the write, so a restart cannot grant more.
                let resume = pending.resumes.saturating_add(1);
                if let Some(kept) = self
                    .snap
                    .pending_loads
                    .iter_mut()
                    .find(|p| p.intent == pending.intent)
                {
                    kept.resumes = resume;
                }
                self.write(RecordBody::LoadResumed {
                    intent: pending.intent,
                    resume,
                });
                self.effects.push_back(Effect::WriteCard(write));
                self.mode = Mode::CardCentre(CentreMode::Loading {
                    request,
                    intent: pending.intent,
                });
            }
            WriteEvidence::Unknowable => {
                self.settle_unknowable(
                    &pending,
                    text::CARD_CHANGED_CANNOT_RESUME,
                    text::RECORDED_FOR_REFUND_2,
                );
                self.mode = CentreMode::load_amount();
            }
        }
    }

    /// A card with an unfinished top-up from earlier was tapped (outside that top-up's own
    /// retry): settle it from what the card holds.
    pub(in crate::core) fn resolve_pending_load(&mut self, pending: PendingLoad, card: &CardImage) {
        let lang = self.lang();
        match pending.evidence(card) {
            WriteEvidence::OnCard => {
                self.remember_card(card);
                self.settle(pending.committed(card.balance, true));
                self.show_message(
                    vec![
                        text::EARLIER_LOAD_ARRIVED.get(lang),
                        yuan(pending.load.amount),
                        balance(lang, card.balance),
                    ],
                    Some(vec![
                        text::EARLIER_LOAD_ARRIVED.get(lang),
                        balance(lang, card.balance),
                    ]),
                    Beep::Attention,
                );
            }
            WriteEvidence::NotOnCard
                if matches!(self.mode, Mode::CardCentre(CentreMode::LoadAwaitingCard(_))) =>
            {
                // At the card centre: continue the earlier load (it was paid for) instead of
                // the request just typed, which is dropped: once the earlier load ends (success,
                // or handed to the server) the till is back at the amount screen and staff type
                // the new top-up again. Never both in one tap.
                let request = LoadRequest {
                    amount: pending.load.amount,
                    retry: Some(pending.intent),
                };
                self.show_info(vec![
                    text::CONTINUING_EARLIER_LOAD.get(lang),
                    yuan(pending.load.amount),
                ]);
                self.resume_load(request, pending, card);
            }
            WriteEvidence::NotOnCard => {
                // Not at the card centre, and the card is about to be used: the load certainly
                // did not happen, so it is recorded for refund now, before anything changes it.
                self.settle(pending.aborted(AbortReason::CardNotDebited));
                self.show_message(
                    vec![
                        text::EARLIER_LOAD_DID_NOT_ARRIVE.get(lang),
                        yuan(pending.load.amount),
                        text::RECORDED_FOR_REFUND.get(lang),
                    ],
                    Some(vec![
                        text::EARLIER_LOAD_NOT_ON_CARD.get(lang),
                        text::REFUND_RECORDED.get(lang),
                    ]),
                    Beep::Attention,
                );
            }
            WriteEvidence::Unknowable => self.settle_unknowable(
                &pending,
                text::CARD_CHANGED_CANNOT_RESUME,
                text::RECORDED_FOR_REFUND_2,
            ),
        }
    }

    /// The answer to the card write of a top-up.
    pub(in crate::core) fn load_written(
        &mut self,
        request: LoadRequest,
        intent: Seq,
        outcome: CardWriteOutcome,
    ) {
        let Some(pending) = self.unresolved::<PendingLoad>(intent) else {
            return;
        };
        // A refusal ends only a first attempt; on a resume only a fresh read can tell.
        let refusal_is_final = request.retry.is_none() && pending.resumes == 0;
        let refused = text::CARD_WRITE_FAILED_NOT_LOADED;
        let retry = match self.card_write_answered(&pending, outcome, refusal_is_final, refused) {
            Step::Commit(card) => {
                self.remember_card(&card);
                return self.commit_load(pending, card.balance, false);
            }
            Step::Abort => None,
            Step::AwaitProof => Some(intent),
        };
        self.mode = Mode::CardCentre(CentreMode::LoadAwaitingCard(LoadRequest {
            retry,
            ..request
        }));
    }

    /// Commits a top-up whose card shows it (the caller has asked to remember the card first,
    /// so that the commit's durable append makes that durable too).
    fn commit_load(&mut self, pending: PendingLoad, balance_after: Fen, recovered: bool) {
        let lang = self.lang();
        self.settle(pending.committed(balance_after, recovered));
        self.mode = CentreMode::load_amount();
        self.show_success(text::LOAD_OK.get(lang), pending.load.amount, balance_after);
    }

    /// A blank card was tapped in the issue screen.
    pub(in crate::core) fn tap_blank_for_issue(&mut self) {
        self.effects.push_back(Effect::IssueCard);
        self.mode = Mode::CardCentre(CentreMode::Issuing);
    }

    /// The answer to [`Effect::IssueCard`].
    pub fn handle_card_issued(&mut self, outcome: IssueOutcome, now: shared::UnixMillis) {
        self.observe_time(now);
        if self.mode != Mode::CardCentre(CentreMode::Issuing) {
            return;
        }
        self.mode = Mode::CardCentre(CentreMode::IssueAwaitingCard);
        let lang = self.lang();
        match outcome {
            IssueOutcome::Issued(card) => self.record_issued(&card),
            IssueOutcome::NotIssued(IssueRefusal::ReaderFault) => {
                let mut lines = reader_fault(lang);
                lines.push(text::NOT_ISSUED.get(lang));
                self.show_error(lines);
            }
            IssueOutcome::NotIssued(why) => {
                let line = match why {
                    IssueRefusal::AlreadyIssued => text::ALREADY_ISSUED.get(lang),
                    IssueRefusal::NotBlank => text::NOT_A_BLANK_CARD.get(lang),
                    IssueRefusal::NoCard | IssueRefusal::ReaderFault => {
                        text::CARD_READ_FAILED.get(lang)
                    }
                };
                self.show_error(vec![line, text::NOT_ISSUED.get(lang)]);
            }
            IssueOutcome::Interrupted { uid } => {
                if let Some(uid) = uid {
                    // Journaled, so the card is still recognised at its re-tap after a restart.
                    // (An interruption before the UID was read keeps the one remembered: that
                    // card, if it reads exactly as issued, was issued and is not yet recorded.)
                    self.snap.interrupted_issue = Some(uid);
                    self.write(RecordBody::CardIssueInterrupted { uid });
                }
                self.show_error(vec![
                    text::ISSUING_INTERRUPTED.get(lang),
                    text::PUT_THE_CARD_BACK.get(lang),
                ]);
            }
        }
    }

    /// A campus wallet was tapped in the issue screen. If it is the card whose issue was just
    /// interrupted and it reads exactly as issued, the interrupted issue's writes did land:
    /// the issue is journaled now (once: the interrupted issue is forgotten with it). Any other
    /// wallet is already issued.
    fn tap_wallet_for_issue(&mut self, card: &CardImage) {
        let lang = self.lang();
        if self.snap.interrupted_issue == Some(card.uid)
            && is_as_issued(card, TILL_ISSUE_OPENING_BALANCE)
        {
            return self.record_issued(card);
        }
        self.show_info(vec![
            text::ALREADY_ISSUED.get(lang),
            format!("{} {}", text::CARD.get(lang), card.uid),
            balance(lang, card.balance),
        ]);
    }

    /// Journals the issue of `card` and says so.
    fn record_issued(&mut self, card: &CardImage) {
        let lang = self.lang();
        if self.snap.interrupted_issue == Some(card.uid) {
            self.snap.interrupted_issue = None;
        }
        self.remember_card(card);
        self.write(RecordBody::CardIssued(CardIssued {
            uid: card.uid,
            opening_balance: card.balance,
        }));
        self.show_message(
            vec![
                text::CARD_ISSUED.get(lang),
                format!("{} {}", text::CARD.get(lang), card.uid),
                balance(lang, card.balance),
            ],
            None,
            Beep::Success,
        );
    }

    /// A campus card tapped in the card centre. Returns whether this state took it (a load or
    /// an issue waiting for a card); otherwise the tap goes on as anywhere else.
    pub(in crate::core) fn centre_tap(&mut self, mode: &CentreMode, card: &CardImage) -> bool {
        match mode {
            CentreMode::LoadAwaitingCard(request) => self.tap_for_load(request.clone(), card),
            CentreMode::IssueAwaitingCard => self.tap_wallet_for_issue(card),
            _ => return false,
        }
        true
    }

    /// The merchant's body lines and the customer's lines of the card centre.
    pub(in crate::core) fn centre_screens(
        &self,
        mode: &CentreMode,
        welcome: String,
    ) -> (Vec<String>, Vec<String>) {
        let lang = self.lang();
        match mode {
            CentreMode::LoadAmount(entry) => {
                let typed = entry.shown();
                (
                    vec![
                        text::LOAD_AMOUNT.get(lang),
                        typed.clone(),
                        text::ENTER_OK_CLEAR_BACK.get(lang),
                    ],
                    vec![text::TOP_UP.get(lang), typed],
                )
            }
            CentreMode::LoadAwaitingCard(request) if request.retry.is_some() => (
                vec![
                    text::LOAD_UNFINISHED_TAP_AGAIN.get(lang),
                    yuan(request.amount),
                    text::CLEAR_GIVES_UP.get(lang),
                ],
                vec![text::TAP_YOUR_CARD_AGAIN.get(lang), yuan(request.amount)],
            ),
            CentreMode::LoadAwaitingCard(request) => (
                vec![
                    text::LOAD_TAP_THE_CARD.get(lang),
                    yuan(request.amount),
                    text::CLEAR_CANCELS.get(lang),
                ],
                vec![text::TOP_UP_TAP_CARD.get(lang), yuan(request.amount)],
            ),
            CentreMode::Loading { request, .. } => (
                vec![text::LOADING_KEEP_CARD.get(lang), yuan(request.amount)],
                vec![text::LOADING_KEEP_CARD_2.get(lang), yuan(request.amount)],
            ),
            CentreMode::IssueAwaitingCard => (
                vec![
                    text::ISSUE_TAP_BLANK_CARD.get(lang),
                    text::CLEAR_EXITS.get(lang),
                ],
                vec![welcome, String::new()],
            ),
            CentreMode::Issuing => (
                vec![text::ISSUING_KEEP_CARD.get(lang)],
                vec![text::KEEP_THE_CARD_STILL.get(lang), String::new()],
            ),
        }
    }

    pub(in crate::core) fn pending_load_for(&self, card: &CardImage) -> Option<PendingLoad> {
        self.snap
            .pending_loads
            .iter()
            .find(|p| p.load.uid == card.uid)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::card::{CardFacts, CardRead, ISSUE_COUNTER, ISSUE_TAG};
    use crate::core::config::TillConfig;
    use shared::record::{TillSnapshot, TxnTag};
    use shared::{CardUid, TerminalId, UnixMillis};

    const NOW: UnixMillis = UnixMillis(1_795_400_000_000);

    /// Runs the till's effects as a driver would and returns the till a restart makes: one
    /// started from the snapshot of the last journaled record (`durable` if none).
    fn restart(mut till: Till, durable: TillSnapshot) -> (Till, Vec<RecordBody>) {
        let mut snapshot = durable;
        let mut records = Vec::new();
        while let Some(effect) = till.poll_effect() {
            if let Effect::Journal {
                record,
                snapshot: with,
            } = effect
            {
                records.push(record.body);
                snapshot = with;
            }
        }
        let till = Till::new(TillConfig::default(), TerminalId(9), snapshot, NOW);
        (till, records)
    }

    #[test]
    fn an_interrupted_issue_whose_card_comes_back_after_a_restart_is_journaled() {
        let uid = CardUid::new(&[0xB1, 0xA2, 0xC3, 0xD4]).unwrap();
        let mut till = Till::new(
            TillConfig::default(),
            TerminalId(9),
            TillSnapshot::factory_new(),
            NOW,
        );
        till.mode = Mode::CardCentre(CentreMode::Issuing);
        till.handle_card_issued(IssueOutcome::Interrupted { uid: Some(uid) }, NOW);
        let (mut till, records) = restart(till, TillSnapshot::factory_new());
        assert_eq!(records, vec![RecordBody::CardIssueInterrupted { uid }]);

        // Back at the issue screen, the card reads exactly as issued: its writes had landed.
        till.mode = Mode::CardCentre(CentreMode::IssueAwaitingCard);
        let card = CardImage {
            uid,
            balance: TILL_ISSUE_OPENING_BALANCE,
            counter: ISSUE_COUNTER,
            last_tag: ISSUE_TAG,
        };
        till.handle_card(CardRead::Card(card), NOW);
        till.handle_card_facts(CardFacts::default(), NOW);
        let durable = till.snapshot().clone();
        let (_, records) = restart(till, durable);
        assert_eq!(
            records,
            vec![RecordBody::CardIssued(CardIssued {
                uid,
                opening_balance: Fen::ZERO,
            })]
        );
    }

    #[test]
    fn a_card_that_was_not_interrupted_is_only_said_to_be_issued() {
        let mut till = Till::new(
            TillConfig::default(),
            TerminalId(9),
            TillSnapshot::factory_new(),
            NOW,
        );
        till.mode = Mode::CardCentre(CentreMode::IssueAwaitingCard);
        let card = CardImage {
            uid: CardUid::new(&[1, 2, 3, 4]).unwrap(),
            balance: Fen::ZERO,
            counter: ISSUE_COUNTER,
            last_tag: TxnTag(0),
        };
        till.handle_card(CardRead::Card(card), NOW);
        till.handle_card_facts(CardFacts::default(), NOW);
        let (_, records) = restart(till, TillSnapshot::factory_new());
        assert!(records.is_empty(), "{records:?}");
    }

    #[test]
    fn loads_are_whole_multiples_of_ten_yuan() {
        assert!(valid_load(Fen::from_yuan(10)));
        assert!(valid_load(Fen::from_yuan(500)));
        assert!(!valid_load(Fen::from_yuan(5)));
        assert!(!valid_load(Fen::new(1_050)));
        assert!(!valid_load(Fen::ZERO));
    }

    #[test]
    fn a_top_up_journals_its_intent_first_and_commits_on_the_read_back() {
        use crate::core::testkit::{
            card, card_write, effects, keys, open_card_centre, records, tap, till, written,
        };
        let mut till = till();
        open_card_centre(&mut till);
        keys(&mut till, "50E");
        tap(&mut till, card(20, 7));
        let effects_now = effects(&mut till);
        assert!(matches!(
            records(&effects_now).as_slice(),
            [RecordBody::LoadIntent(_)]
        ));
        let write = card_write(&effects_now).expect("a card write");
        assert_eq!(write.new_balance, Fen::from_yuan(70));
        till.handle_card_written(CardWriteOutcome::Written(written(card(20, 7), write)), NOW);
        assert!(matches!(
            records(&effects(&mut till)).as_slice(),
            [RecordBody::LoadCommitted(_)]
        ));
        assert_eq!(
            till.mode,
            CentreMode::load_amount(),
            "ready for the next top-up"
        );
    }

    #[test]
    fn a_refused_resume_is_not_final_the_card_must_come_back() {
        use crate::core::testkit::{card, card_write, effects, keys, open_card_centre, tap, till};
        let mut till = till();
        open_card_centre(&mut till);
        keys(&mut till, "50E");
        tap(&mut till, card(20, 7));
        effects(&mut till);
        till.handle_card_written(CardWriteOutcome::Unknown, NOW);
        // The unchanged card comes back: the same load is resumed (journaled), then refused.
        tap(&mut till, card(20, 7));
        assert!(card_write(&effects(&mut till)).is_some(), "resumed");
        till.handle_card_written(CardWriteOutcome::Refused, NOW);
        assert_eq!(till.snapshot().pending_loads.len(), 1, "still unresolved");
        assert!(matches!(
            till.mode,
            Mode::CardCentre(CentreMode::LoadAwaitingCard(LoadRequest {
                retry: Some(_),
                ..
            }))
        ));
    }
}
