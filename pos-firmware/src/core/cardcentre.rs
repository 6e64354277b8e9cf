//! The card centre's functions behind the staff PIN: issuing (formatting) blank cards and loading
//! value onto cards (top-up), with the same tear-safe machinery as a sale (intent → card write →
//! commit) and the seeds' rule for a failed load: resume it while the card is unchanged, else
//! record it for refund; a load is never applied twice.

use shared::record::{
    AbortReason, CardIssued, InDoubtReason, LoadAborted, LoadCommitted, LoadInDoubt, LoadIntent,
    PendingLoad, RecordBody,
};
use shared::{Fen, Seq};

use super::card::{
    is_as_issued, load_evidence, txn_tag, CardImage, CardWrite, CardWriteOutcome, IssueOutcome,
    IssueRefusal, WriteEvidence,
};
use super::config::Lang;
use super::entry::{AmountEntry, EntryError};
use super::text::{balance, reader_fault, tr, yuan};
use super::{Beep, Effect, Mode, Till, MAX_UNRESOLVED_SALES};

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
pub(super) struct LoadRequest {
    pub(super) amount: Fen,
    /// An interrupted top-up of this request, waiting for the same card to come back (its
    /// resumes so far are counted in its `PendingLoad`, durably).
    pub(super) retry: Option<Seq>,
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
    /// A digit picked in the staff menu.
    pub(super) fn staff_menu_choice(&mut self, digit: u8) -> Mode {
        match digit {
            1 => Mode::StaffMachineNumber(String::new()),
            2 => Mode::IssueAwaitingCard,
            3 => Mode::LoadAmount(AmountEntry::default()),
            _ => {
                let lang = self.lang();
                self.show_error(vec![tr(lang, "请选1-3", "Pick 1-3")]);
                Mode::StaffMenu
            }
        }
    }

    /// Enter in the top-up amount screen.
    pub(super) fn confirm_load_amount(&mut self, entry: AmountEntry) -> Mode {
        let lang = self.lang();
        match entry.amount() {
            Some(amount) if valid_load(amount) => Mode::LoadAwaitingCard(LoadRequest::new(amount)),
            Some(_) => {
                self.show_error(vec![match lang {
                    Lang::Zh => format!("充值须为{}的整数倍", yuan(LOAD_STEP)),
                    Lang::En => format!("Loads are multiples of {}", yuan(LOAD_STEP)),
                }]);
                Mode::LoadAmount(AmountEntry::default())
            }
            None => {
                self.show_error(vec![tr(lang, "请先输入金额", "Enter an amount first")]);
                Mode::LoadAmount(entry)
            }
        }
    }

    pub(super) fn type_load_amount(&mut self, entry: &mut AmountEntry, key: Option<u8>) {
        let lang = self.lang();
        if let Err(error) = entry.push(key, MAX_CARD_BALANCE) {
            let line = match error {
                EntryError::TooManyDecimals | EntryError::SecondPoint => {
                    tr(lang, "充值须为整数元", "Whole yuan only")
                }
                EntryError::OverMax(max) => match lang {
                    Lang::Zh => format!("超过卡内上限 {}", yuan(max)),
                    Lang::En => format!("Over the card limit {}", yuan(max)),
                },
            };
            self.show_error(vec![line]);
        }
    }

    /// A campus card was tapped while a top-up waits for it.
    pub(super) fn tap_for_load(&mut self, request: LoadRequest, card: &CardImage) {
        let lang = self.lang();
        if let Some(intent) = request.retry {
            // Only the card of the interrupted top-up may go on.
            let Some(pending) = self.pending_load_for(card) else {
                return self.show_error(vec![
                    tr(lang, "请用原卡重新刷卡", "Tap the same card again"),
                    tr(lang, "清零放弃", "Clear gives up"),
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
                match lang {
                    Lang::Zh => format!("充值后超过上限 {}", yuan(MAX_CARD_BALANCE)),
                    Lang::En => format!("Would exceed {}", yuan(MAX_CARD_BALANCE)),
                },
                balance(lang, card.balance),
            ]);
        };
        let Some(new_counter) = card.counter.checked_add(1) else {
            return self.show_error(vec![tr(
                lang,
                "卡片计数已满 请换卡",
                "Card worn out: replace it",
            )]);
        };
        if self.snap.pending_loads.len() >= MAX_UNRESOLVED_SALES {
            if let Some(oldest) = self.snap.pending_loads.first().copied() {
                self.settle(RecordBody::LoadInDoubt(LoadInDoubt {
                    intent: oldest.intent,
                    reason: InDoubtReason::TooManyUnresolved,
                }));
            }
        }
        let intent = self.snap.next_seq;
        let tag = txn_tag(self.terminal, intent);
        let load = LoadIntent {
            amount: request.amount,
            uid: card.uid,
            card: shared::record::CardDebitPlan {
                counter_before: card.counter,
                balance_before: card.balance,
                tag,
            },
        };
        self.snap.pending_loads.push(PendingLoad {
            intent,
            at: self.now,
            load,
            resumes: 0,
        });
        let written = self.write(RecordBody::LoadIntent(load));
        debug_assert_eq!(written, intent);
        self.effects.push_back(Effect::WriteCard(CardWrite {
            uid: card.uid,
            counter_before: card.counter,
            new_counter,
            new_balance,
            tag,
        }));
        self.mode = Mode::Loading { request, intent };
    }

    /// The card of an interrupted top-up of this very request came back.
    fn resume_load(&mut self, request: LoadRequest, pending: PendingLoad, card: &CardImage) {
        let lang = self.lang();
        match self.load_evidence(&pending, card) {
            WriteEvidence::OnCard => self.commit_load(pending, card, true),
            WriteEvidence::NotOnCard if pending.resumes >= MAX_LOAD_RESUMES => {
                self.settle(RecordBody::LoadInDoubt(LoadInDoubt {
                    intent: pending.intent,
                    reason: InDoubtReason::ResumeLimitReached,
                }));
                self.mode = Mode::LoadAmount(AmountEntry::default());
                self.show_message(
                    vec![
                        tr(lang, "多次充值失败 已锁定", "Load failed too often"),
                        yuan(pending.load.amount),
                        tr(lang, "由后台处理退款", "Server settles refund"),
                    ],
                    None,
                    Beep::Error,
                );
            }
            WriteEvidence::NotOnCard => {
                // The seeds' "continue load": same intent, same plan, the card is unchanged.
                let plan = pending.load.card;
                let Some(new_balance) = plan.balance_before.checked_add(pending.load.amount) else {
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
                self.effects.push_back(Effect::WriteCard(CardWrite {
                    uid: card.uid,
                    counter_before: plan.counter_before,
                    new_counter: plan.counter_before.saturating_add(1),
                    new_balance,
                    tag: plan.tag,
                }));
                self.mode = Mode::Loading {
                    request,
                    intent: pending.intent,
                };
            }
            WriteEvidence::Unknowable => {
                self.load_for_refund(pending);
                self.mode = Mode::LoadAmount(AmountEntry::default());
            }
        }
    }

    /// A card with an unfinished top-up from earlier was tapped (outside that top-up's own
    /// retry): settle it from what the card holds.
    pub(super) fn resolve_pending_load(&mut self, pending: PendingLoad, card: &CardImage) {
        let lang = self.lang();
        match self.load_evidence(&pending, card) {
            WriteEvidence::OnCard => {
                self.remember_card(card);
                self.settle(RecordBody::LoadCommitted(LoadCommitted {
                    intent: pending.intent,
                    amount: pending.load.amount,
                    uid: pending.load.uid,
                    balance_after: card.balance,
                    recovered: true,
                }));
                self.show_message(
                    vec![
                        tr(lang, "上次充值已到账", "Earlier load arrived"),
                        yuan(pending.load.amount),
                        balance(lang, card.balance),
                    ],
                    Some(vec![
                        tr(lang, "上次充值已到账", "Earlier load arrived"),
                        balance(lang, card.balance),
                    ]),
                    Beep::Attention,
                );
            }
            WriteEvidence::NotOnCard if matches!(self.mode, Mode::LoadAwaitingCard(_)) => {
                // At the card centre: continue the earlier load (it was paid for) instead of
                // the request just typed, which is dropped: once the earlier load ends (success,
                // or handed to the server) the till is back at the amount screen and staff type
                // the new top-up again. Never both in one tap.
                let request = LoadRequest {
                    amount: pending.load.amount,
                    retry: Some(pending.intent),
                };
                self.show_info(vec![
                    tr(lang, "继续上次充值", "Continuing earlier load"),
                    yuan(pending.load.amount),
                ]);
                self.resume_load(request, pending, card);
            }
            WriteEvidence::NotOnCard => {
                // Not at the card centre, and the card is about to be used: the load certainly
                // did not happen, so it is recorded for refund now, before anything changes it.
                self.settle(RecordBody::LoadAborted(LoadAborted {
                    intent: pending.intent,
                    reason: AbortReason::CardNotDebited,
                }));
                self.show_message(
                    vec![
                        tr(lang, "上次充值未到账", "Earlier load did not arrive"),
                        yuan(pending.load.amount),
                        tr(lang, "已记录退款", "Recorded for refund"),
                    ],
                    Some(vec![
                        tr(lang, "上次充值未到账", "Earlier load not on card"),
                        tr(lang, "已记录退款", "Refund recorded"),
                    ]),
                    Beep::Attention,
                );
            }
            WriteEvidence::Unknowable => self.load_for_refund(pending),
        }
    }

    /// The card changed since the top-up started: it can no longer be resumed; the server
    /// refunds it if its ledger shows the load never arrived.
    fn load_for_refund(&mut self, pending: PendingLoad) {
        let lang = self.lang();
        self.settle(RecordBody::LoadInDoubt(LoadInDoubt {
            intent: pending.intent,
            reason: InDoubtReason::CardMovedOn,
        }));
        self.show_message(
            vec![
                tr(
                    lang,
                    "卡内余额已变 不能继续充值",
                    "Card changed: cannot resume",
                ),
                yuan(pending.load.amount),
                tr(lang, "已记录 由后台退款", "Recorded for refund"),
            ],
            None,
            Beep::Attention,
        );
    }

    /// The answer to the card write of a top-up.
    pub(super) fn load_written(
        &mut self,
        request: LoadRequest,
        intent: Seq,
        outcome: CardWriteOutcome,
    ) {
        let Some(pending) = self
            .snap
            .pending_loads
            .iter()
            .find(|p| p.intent == intent)
            .copied()
        else {
            return;
        };
        let lang = self.lang();
        match outcome {
            CardWriteOutcome::Written(card)
                if self.load_evidence(&pending, &card) == WriteEvidence::OnCard =>
            {
                self.commit_load(pending, &card, false);
            }
            CardWriteOutcome::Refused if request.retry.is_none() && pending.resumes == 0 => {
                self.settle(RecordBody::LoadAborted(LoadAborted {
                    intent,
                    reason: AbortReason::WriteRefused,
                }));
                self.mode = Mode::LoadAwaitingCard(LoadRequest::new(request.amount));
                self.show_error(vec![
                    tr(lang, "写卡失败 未充值", "Card write failed, not loaded"),
                    tr(lang, "请重新刷卡", "Tap again"),
                ]);
            }
            // Interrupted, refused on a resume, or read back as something else: only a fresh
            // read of the same card can tell.
            CardWriteOutcome::Written(_)
            | CardWriteOutcome::Refused
            | CardWriteOutcome::Unknown => {
                self.mode = Mode::LoadAwaitingCard(LoadRequest {
                    retry: Some(intent),
                    ..request
                });
                self.effects.push_back(Effect::Beep(Beep::Error));
            }
        }
    }

    fn commit_load(&mut self, pending: PendingLoad, card: &CardImage, recovered: bool) {
        let lang = self.lang();
        // Remembered first, so that the commit's durable append makes it durable too.
        self.remember_card(card);
        self.settle(RecordBody::LoadCommitted(LoadCommitted {
            intent: pending.intent,
            amount: pending.load.amount,
            uid: pending.load.uid,
            balance_after: card.balance,
            recovered,
        }));
        self.mode = Mode::LoadAmount(AmountEntry::default());
        self.show_success(
            tr(lang, "充值成功", "Load OK"),
            pending.load.amount,
            card.balance,
        );
    }

    /// A blank card was tapped in the issue screen.
    pub(super) fn tap_blank_for_issue(&mut self) {
        self.effects.push_back(Effect::IssueCard);
        self.mode = Mode::Issuing;
    }

    /// The answer to [`Effect::IssueCard`].
    pub fn handle_card_issued(&mut self, outcome: IssueOutcome, now: shared::UnixMillis) {
        self.observe_time(now);
        if self.mode != Mode::Issuing {
            return;
        }
        self.mode = Mode::IssueAwaitingCard;
        let lang = self.lang();
        match outcome {
            IssueOutcome::Issued(card) => self.record_issued(&card),
            IssueOutcome::NotIssued(IssueRefusal::ReaderFault) => {
                let mut lines = reader_fault(lang);
                lines.push(tr(lang, "未开卡", "Not issued"));
                self.show_error(lines);
            }
            IssueOutcome::NotIssued(why) => {
                let line = match why {
                    IssueRefusal::AlreadyIssued => tr(lang, "此卡已开通", "Already issued"),
                    IssueRefusal::NotBlank => tr(lang, "不是空白卡", "Not a blank card"),
                    IssueRefusal::NoCard | IssueRefusal::ReaderFault => {
                        tr(lang, "读卡失败", "Card read failed")
                    }
                };
                self.show_error(vec![line, tr(lang, "未开卡", "Not issued")]);
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
                    tr(lang, "开卡中断", "Issuing interrupted"),
                    tr(lang, "请放回原卡重试", "Put the card back"),
                ]);
            }
        }
    }

    /// A campus wallet was tapped in the issue screen. If it is the card whose issue was just
    /// interrupted and it reads exactly as issued, the interrupted issue's writes did land:
    /// the issue is journaled now (once: the interrupted issue is forgotten with it). Any other
    /// wallet is already issued.
    pub(super) fn tap_wallet_for_issue(&mut self, card: &CardImage) {
        let lang = self.lang();
        if self.snap.interrupted_issue == Some(card.uid)
            && is_as_issued(card, TILL_ISSUE_OPENING_BALANCE)
        {
            return self.record_issued(card);
        }
        self.show_info(vec![
            tr(lang, "此卡已开通", "Already issued"),
            format!("{} {}", tr(lang, "卡号", "Card"), card.uid),
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
                tr(lang, "开卡成功", "Card issued"),
                format!("{} {}", tr(lang, "卡号", "Card"), card.uid),
                balance(lang, card.balance),
            ],
            None,
            Beep::Success,
        );
    }

    pub(super) fn pending_load_for(&self, card: &CardImage) -> Option<PendingLoad> {
        self.snap
            .pending_loads
            .iter()
            .find(|p| p.load.uid == card.uid)
            .copied()
    }

    fn load_evidence(&self, pending: &PendingLoad, card: &CardImage) -> WriteEvidence {
        let plan = pending.load.card;
        load_evidence(
            card,
            plan.counter_before,
            plan.balance_before,
            pending.load.amount,
            plan.tag,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::card::{CardHistory, CardRead, ISSUE_COUNTER, ISSUE_TAG};
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
        till.mode = Mode::Issuing;
        till.handle_card_issued(IssueOutcome::Interrupted { uid: Some(uid) }, NOW);
        let (mut till, records) = restart(till, TillSnapshot::factory_new());
        assert_eq!(records, vec![RecordBody::CardIssueInterrupted { uid }]);

        // Back at the issue screen, the card reads exactly as issued: its writes had landed.
        till.mode = Mode::IssueAwaitingCard;
        let card = CardImage {
            uid,
            balance: TILL_ISSUE_OPENING_BALANCE,
            counter: ISSUE_COUNTER,
            last_tag: ISSUE_TAG,
        };
        till.handle_card(CardRead::Card(card), CardHistory::default(), NOW);
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
        till.mode = Mode::IssueAwaitingCard;
        let card = CardImage {
            uid: CardUid::new(&[1, 2, 3, 4]).unwrap(),
            balance: Fen::ZERO,
            counter: ISSUE_COUNTER,
            last_tag: TxnTag(0),
        };
        till.handle_card(CardRead::Card(card), CardHistory::default(), NOW);
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
}
