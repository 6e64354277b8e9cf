//! The till core: a deterministic state machine with no I/O and no clock. Drivers feed it inputs
//! (`handle_*`: commands from the keymap, card reads, card-write outcomes, scanned codes, journal
//! answers, time) and carry out what it asks (`poll_effect`: journal appends, card writes, journal
//! look-ups, beeps); `displays()` says what both screens show.
//!
//! The driver contract that protects money: effects are carried out in the order they are
//! polled, a `Journal` effect is durable before the next effect runs, a failed journal append
//! stops the till, and the screens are redrawn only after every polled effect has run. So
//! "交易成功" is never visible before its record is durable.

pub mod calendar;
pub mod card;
pub mod cardcentre;
pub mod codes;
mod combos;
pub mod config;
pub mod downlink;
pub mod entry;
pub mod offline;
mod sale;
mod screens;
pub mod text;

pub use codes::{classify_code, CodeKind};
pub use downlink::LinkStatus;

use std::collections::VecDeque;
use std::sync::Arc;

use keymap::Command;
use shared::campus::Blacklist;
use shared::record::{
    AbortReason, CardAnomaly, CardAnomalyKind, InDoubtReason, JournalRecord, LoadInDoubt, Payer,
    RecordBody, SaleAborted, SaleInDoubt, TillSnapshot,
};
use shared::{Fen, MachineNumber, Seq, TerminalId, UnixMillis};

use self::calendar::{format_wall, local_time};
use self::card::{
    CardHistory, CardImage, CardProblem, CardRead, CardWrite, CardWriteOutcome, WriteEvidence,
};
use self::cardcentre::LoadRequest;
use self::config::{Lang, TillConfig};
use self::entry::{AmountEntry, EntryError};
use self::text::{balance, tr, yuan};

/// The firmware version shown by Clear+8.
pub const FIRMWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long a message (a combo's answer, an error) stays before the screen returns.
pub const MESSAGE_SHOW_MS: u64 = 3_000;
/// How long the success screen stays (the next key or tap ends it sooner).
pub const SUCCESS_SHOW_MS: u64 = 3_000;
/// The most sales that may wait for their card to come back; past it the oldest goes to the
/// server as "in doubt".
pub const MAX_UNRESOLVED_SALES: usize = 32;
/// How long an interrupted sale or top-up waits for its card to come back to this till before
/// it goes to the server as "in doubt".
pub const UNRESOLVED_MAX_AGE_MS: u64 = 24 * 60 * 60 * 1000;
/// Wrong staff PINs in a row before the staff menu locks.
pub const MAX_STAFF_PIN_ATTEMPTS: u8 = 3;
/// How long the staff menu stays locked after too many wrong PINs.
pub const STAFF_PIN_LOCKOUT_MS: u64 = 5 * 60 * 1000;
/// Lines of the merchant's display (the first is the status line).
pub const MERCHANT_LINES: usize = 4;
/// Lines of the customer's display.
pub const CUSTOMER_LINES: usize = 2;

/// What one display shows, top line first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Screen {
    pub lines: Vec<String>,
}

impl Screen {
    fn new(lines: impl IntoIterator<Item = String>, len: usize) -> Screen {
        let mut lines: Vec<String> = lines.into_iter().take(len).collect();
        lines.resize(len, String::new());
        Screen { lines }
    }
}

/// Both displays of the till.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Displays {
    pub merchant: Screen,
    pub customer: Screen,
}

/// The buzzer's patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beep {
    Success,
    Error,
    Attention,
}

/// Which way the journal browser (Clear+9) moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowseDirection {
    Older,
    Newer,
}

/// What the core asks its drivers to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a few effects live at a time, each polled at once; boxing the snapshot would only add an allocation to every journal append"
)]
pub enum Effect {
    /// Append `record` and store `snapshot` atomically and durably before anything else happens.
    Journal {
        record: JournalRecord,
        snapshot: TillSnapshot,
    },
    /// Write the card; answer with [`Till::handle_card_written`].
    WriteCard(CardWrite),
    /// Format the blank card on the reader as a campus wallet; answer with
    /// [`Till::handle_card_issued`].
    IssueCard,
    /// Remember that this till saw (or wrote) the card at this transaction counter, so that a
    /// card restored to an earlier state is caught. Not fsynced on its own: the core emits it
    /// before the commit record, whose durable append (sled's flush is database-wide) makes it
    /// durable; a lost update only weakens the check, it never refuses a good card.
    RememberCard {
        uid: shared::CardUid,
        counter: u32,
    },
    /// Add a committed sale to what the card spent at this till on `day` (for the offline
    /// per-card daily limit). Best effort like `RememberCard`.
    CardSpent {
        uid: shared::CardUid,
        day: shared::LocalDay,
        amount: Fen,
    },
    /// Find the nearest committed sale before/after `from` (None: from the newest/oldest end);
    /// answer with [`Till::handle_sale_found`].
    FindSale {
        from: Option<Seq>,
        direction: BrowseDirection,
    },
    Beep(Beep),
    /// Append `record` (a `BlacklistReplaced`) and store `snapshot` and `list` in the same
    /// transaction, durably, before anything else happens.
    ReplaceBlacklist {
        record: JournalRecord,
        snapshot: TillSnapshot,
        list: Arc<Blacklist>,
    },
}

/// A transient message over the normal screen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Overlay {
    merchant: Vec<String>,
    customer: Option<Vec<String>>,
    until: UnixMillis,
}

/// A sale waiting for its payer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Payment {
    amount: Fen,
    fixed: bool,
    /// The payer whose duplicate payment the merchant confirmed.
    duplicate_confirmed: Option<Payer>,
    /// An interrupted debit of this sale, waiting for the same card to come back.
    retry: Option<Seq>,
}

impl Payment {
    fn new(amount: Fen, fixed: bool) -> Payment {
        Payment {
            amount,
            fixed,
            duplicate_confirmed: None,
            retry: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Idle or typing an amount.
    Entry(AmountEntry),
    AwaitingPayment(Payment),
    /// The card write is under way.
    Debiting {
        payment: Payment,
        intent: Seq,
    },
    /// The same payer is paying the same amount again: the merchant must confirm.
    ConfirmDuplicate {
        payment: Payment,
        /// The payer the reminder is about; the merchant's Enter confirms this payer only.
        payer: Payer,
    },
    /// Clear+9: one committed sale at a time.
    Browsing {
        shown: Option<JournalRecord>,
    },
    /// Clear+Enter with nothing typed: pick one of the campus's fixed-price presets.
    PickFixedPrice,
    StaffPin(String),
    /// The staff menu: 1 machine number, 2 issue cards, 3 top-up.
    StaffMenu,
    StaffMachineNumber(String),
    /// Card centre: typing a top-up amount.
    LoadAmount(AmountEntry),
    /// Card centre: a top-up waits for its card.
    LoadAwaitingCard(LoadRequest),
    /// Card centre: the top-up's card write is under way.
    Loading {
        request: LoadRequest,
        intent: Seq,
    },
    /// Card centre: waiting for blank cards to issue.
    IssueAwaitingCard,
    /// Card centre: a card is being formatted.
    Issuing,
}

impl Mode {
    /// Whether the till is in the staff menu or one of the card centre's screens.
    fn is_staff(&self) -> bool {
        matches!(
            self,
            Mode::StaffPin(_)
                | Mode::StaffMenu
                | Mode::StaffMachineNumber(_)
                | Mode::LoadAmount(_)
                | Mode::LoadAwaitingCard(_)
                | Mode::Loading { .. }
                | Mode::IssueAwaitingCard
                | Mode::Issuing
        )
    }
}

/// The till.
#[derive(Debug)]
pub struct Till {
    /// The effective settings: the till's own with the campus configuration laid over them.
    config: TillConfig,
    /// The till's own settings (`till.toml`).
    base_config: TillConfig,
    /// The lost-card blacklist (stored beside the journal; the snapshot names its version).
    blacklist: Arc<Blacklist>,
    /// The link to the campus server (`None`: the till runs without a link server).
    link: Option<LinkStatus>,
    /// What the journal holds that the campus server has not acknowledged.
    unsent: offline::UnsentSummary,
    /// The server's clock minus the till's, as last seen.
    server_offset: Option<i64>,
    /// How many server-clock corrections were journaled lately, and how many were not.
    server_time_log: downlink::ServerTimeLog,
    terminal: TerminalId,
    snap: TillSnapshot,
    mode: Mode,
    overlay: Option<Overlay>,
    effects: VecDeque<Effect>,
    now: UnixMillis,
}

impl Till {
    /// Starts the till from its durable snapshot (what the journal holds).
    pub fn new(
        config: TillConfig,
        terminal: TerminalId,
        snapshot: TillSnapshot,
        now: UnixMillis,
    ) -> Till {
        let mode = match snapshot.fixed_price {
            Some(amount) => Mode::AwaitingPayment(Payment::new(amount, true)),
            None => Mode::Entry(AmountEntry::default()),
        };
        let effective = downlink::effective_config(&config, snapshot.campus.as_ref());
        let server_offset = snapshot.server_time.map(|(_, offset)| offset);
        let mut till = Till {
            config: effective,
            base_config: config,
            blacklist: Arc::new(Blacklist::empty()),
            link: None,
            unsent: offline::UnsentSummary::default(),
            server_offset,
            server_time_log: downlink::ServerTimeLog::default(),
            terminal,
            snap: snapshot,
            mode,
            overlay: None,
            effects: VecDeque::new(),
            now,
        };
        let count = till.snap.pending.len() + till.snap.pending_loads.len();
        if count > 0 {
            let lang = till.lang();
            let lines = vec![
                tr(lang, "有未完成交易待核对", "Unfinished sales to check"),
                match lang {
                    Lang::Zh => format!("{count}笔: 请原卡再刷一次"),
                    Lang::En => format!("{count}: tap those cards again"),
                },
            ];
            till.show_message(lines, None, Beep::Attention);
        }
        till
    }

    /// Gives the till the blacklist stored beside its journal (loaded at start).
    pub fn with_blacklist(mut self, list: Arc<Blacklist>) -> Till {
        self.blacklist = list;
        self
    }

    /// The effective settings (the till's own with the campus configuration over them).
    pub fn config(&self) -> &TillConfig {
        &self.config
    }

    /// Whether the till waits for the merchant to confirm a duplicate payment.
    pub fn is_confirming_duplicate(&self) -> bool {
        matches!(self.mode, Mode::ConfirmDuplicate { .. })
    }

    pub fn snapshot(&self) -> &TillSnapshot {
        &self.snap
    }

    pub fn terminal(&self) -> TerminalId {
        self.terminal
    }

    /// The next effect to carry out.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`Till::handle_tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        let overlay = self.overlay.as_ref().map(|overlay| overlay.until);
        let busy = self.intent_on_screen();
        let unresolved = self
            .snap
            .pending
            .iter()
            .filter(|p| Some(p.intent) != busy)
            .map(|p| p.at)
            .chain(
                self.snap
                    .pending_loads
                    .iter()
                    .filter(|p| Some(p.intent) != busy)
                    .map(|p| p.at),
            )
            .min()
            .map(|at| at.saturating_add_millis(UNRESOLVED_MAX_AGE_MS));
        [overlay, unresolved].into_iter().flatten().min()
    }

    /// Time passes.
    pub fn handle_tick(&mut self, now: UnixMillis) {
        self.observe_time(now);
        self.expire_unresolved();
    }

    /// The unresolved intent the current screen is working on (its write, or its retry).
    fn intent_on_screen(&self) -> Option<Seq> {
        match &self.mode {
            Mode::AwaitingPayment(Payment {
                retry: Some(intent),
                ..
            })
            | Mode::Debiting { intent, .. }
            | Mode::Loading { intent, .. }
            | Mode::LoadAwaitingCard(LoadRequest {
                retry: Some(intent),
                ..
            }) => Some(*intent),
            _ => None,
        }
    }

    /// Sales and top-ups whose card has not come back for [`UNRESOLVED_MAX_AGE_MS`] go to the
    /// server as "in doubt" (not while their own retry screen is up: the merchant is on it).
    fn expire_unresolved(&mut self) {
        let now = self.now;
        let expired = |at: UnixMillis| at <= now && now.millis_since(at) >= UNRESOLVED_MAX_AGE_MS;
        let busy = self.intent_on_screen();
        let sales: Vec<Seq> = self
            .snap
            .pending
            .iter()
            .filter(|p| expired(p.at) && Some(p.intent) != busy)
            .map(|p| p.intent)
            .collect();
        for intent in sales {
            self.settle(RecordBody::SaleInDoubt(SaleInDoubt {
                intent,
                reason: InDoubtReason::CardNeverReturned,
            }));
        }
        let loads: Vec<Seq> = self
            .snap
            .pending_loads
            .iter()
            .filter(|p| expired(p.at) && Some(p.intent) != busy)
            .map(|p| p.intent)
            .collect();
        for intent in loads {
            self.settle(RecordBody::LoadInDoubt(LoadInDoubt {
                intent,
                reason: InDoubtReason::CardNeverReturned,
            }));
        }
    }

    /// A command from the keymap.
    pub fn handle_command(&mut self, command: Command, now: UnixMillis) {
        self.observe_time(now);
        self.overlay = None; // any key ends a message, then acts
        let lang = self.lang();
        if is_combo(command) && !self.combos_allowed() {
            let why = match self.mode {
                Mode::Browsing { .. } => tr(lang, "浏览中: 清零退出", "Browsing: Clear to exit"),
                ref mode if mode.is_staff() => {
                    tr(lang, "设置中: 清零退出", "In setup: Clear to exit")
                }
                _ => tr(
                    lang,
                    "请先完成或取消交易",
                    "Finish or cancel the sale first",
                ),
            };
            self.show_error(vec![why]);
            return;
        }
        match command {
            Command::InvalidCombo => {
                self.show_error(vec![tr(lang, "无效组合键", "Invalid key combo")])
            }
            Command::ShowRecentAmount(slot) => self.show_recent_amount(slot),
            Command::ShowTodayTotal => self.show_today_total(),
            Command::ShowMealTotal => self.show_meal_total(),
            Command::ToggleOffline => self.toggle_offline(),
            Command::ShowMachineInfo => self.show_machine_info(),
            Command::BrowseJournal => {
                self.mode = Mode::Browsing { shown: None };
                self.effects.push_back(Effect::FindSale {
                    from: None,
                    direction: BrowseDirection::Older,
                });
            }
            Command::ShowClock => {
                let wall = local_time(self.now, self.config.utc_offset_minutes).wall;
                let mut lines = vec![tr(lang, "本机时间", "Till time"), format_wall(wall)];
                lines.extend(self.server_time_line());
                self.show_info(lines);
            }
            Command::EnterFixedPrice => self.enter_fixed_price(),
            Command::LeaveFixedPrice => self.leave_fixed_price(),
            Command::SetMachineNumber => self.open_staff_menu(),
            Command::Digit(_)
            | Command::Dot
            | Command::Delete
            | Command::Clear
            | Command::Enter
            | Command::Up
            | Command::Down
            | Command::F1 => self.handle_plain_key(command),
        }
    }

    /// A card was tapped and read. `history` is what the journal's card index knows of it.
    pub fn handle_card(&mut self, read: CardRead, history: CardHistory, now: UnixMillis) {
        self.observe_time(now);
        self.overlay = None;
        let lang = self.lang();
        if matches!(
            self.mode,
            Mode::Debiting { .. } | Mode::Loading { .. } | Mode::Issuing
        ) {
            return; // the write under way owns the reader; a second tap is noise
        }
        let card = match read {
            CardRead::Card(card) => card,
            CardRead::Unreadable(CardProblem::Unformatted)
                if self.mode == Mode::IssueAwaitingCard =>
            {
                return self.tap_blank_for_issue();
            }
            CardRead::Unreadable(problem) => return self.show_card_problem(problem),
        };
        if let Some(known) = history.known_counter.filter(|known| card.counter < *known) {
            return self.card_went_back(&card, known);
        }
        if self.is_blacklisted(&card.uid) {
            // Reported lost: no sale, no settling, nothing written. An interrupted sale or top-up
            // of this card stays unresolved and goes to the server as in doubt in time.
            return self.show_error_to_both(vec![
                tr(lang, "挂失卡 请联系卡务中心", "Card reported lost"),
                card.uid.to_string(),
            ]);
        }
        self.effects.push_back(Effect::RememberCard {
            uid: card.uid,
            counter: card.counter,
        });
        match &self.mode {
            Mode::LoadAwaitingCard(request) => return self.tap_for_load(request.clone(), &card),
            Mode::IssueAwaitingCard => return self.tap_wallet_for_issue(&card),
            _ => {}
        }
        if let Some(pending) = self.pending_load_for(&card) {
            return self.resolve_pending_load(pending, &card);
        }
        let payer = Payer::CampusCard(card.uid);
        let retry_intent = match &self.mode {
            Mode::AwaitingPayment(Payment {
                retry: Some(intent),
                ..
            }) => Some(*intent),
            _ => None,
        };
        if let Some(pending) = self.pending_for(payer) {
            if Some(pending.intent) == retry_intent {
                return self.resume_interrupted_sale(pending, &card);
            }
            return self.resolve_pending(pending, &card);
        }
        match &self.mode {
            Mode::AwaitingPayment(payment) if payment.retry.is_some() => {
                let intent_payer =
                    retry_intent.and_then(|i| self.snap.pending.iter().find(|p| p.intent == i));
                let uid = intent_payer.map(|p| match p.sale.payer {
                    Payer::CampusCard(uid) => uid.to_string(),
                });
                self.show_error(vec![
                    tr(lang, "请用原卡重新刷卡", "Tap the same card again"),
                    uid.unwrap_or_default(),
                ]);
            }
            Mode::AwaitingPayment(payment) => {
                let payment = payment.clone();
                let day = local_time(self.now, self.config.utc_offset_minutes).day;
                let spent_today = match history.spent {
                    Some((spent_day, spent)) if spent_day == day => spent,
                    _ => Fen::ZERO,
                };
                self.start_debit(payment, &card, spent_today);
            }
            Mode::Entry(_) => {
                self.show_info(vec![
                    tr(lang, "卡号", "Card") + " " + &card.uid.to_string(),
                    balance(lang, card.balance),
                ]);
            }
            Mode::ConfirmDuplicate { .. } => {
                self.show_error(vec![tr(
                    lang,
                    "请商户先确认",
                    "Merchant must confirm first",
                )]);
            }
            Mode::Debiting { .. } | Mode::Loading { .. } | Mode::Issuing => {}
            Mode::Browsing { .. }
            | Mode::PickFixedPrice
            | Mode::StaffPin(_)
            | Mode::StaffMenu
            | Mode::StaffMachineNumber(_)
            | Mode::LoadAmount(_)
            | Mode::LoadAwaitingCard(_)
            | Mode::IssueAwaitingCard => {
                self.show_error(vec![tr(lang, "请先退出(清零)", "Exit first (Clear)")]);
            }
        }
    }

    fn show_card_problem(&mut self, problem: CardProblem) {
        let lang = self.lang();
        let lines = match problem {
            CardProblem::ReaderFault => {
                let customer = text::reader_fault_customer(lang);
                return self.show_message(text::reader_fault(lang), Some(customer), Beep::Error);
            }
            CardProblem::ReadFailed => vec![
                tr(lang, "读卡失败", "Card read failed"),
                tr(lang, "请重新刷卡", "Tap again"),
            ],
            CardProblem::NotCampusCard => vec![tr(lang, "非本校园卡", "Not a campus card")],
            CardProblem::Unformatted => vec![
                tr(lang, "未开通的卡", "Card not issued"),
                tr(lang, "请到卡务中心", "See the card centre"),
            ],
            CardProblem::OtherCampus => {
                vec![tr(lang, "非本校园卡(外校)", "Card of another campus")]
            }
            CardProblem::WrongKey => vec![
                tr(lang, "卡片密钥错误", "Card key mismatch"),
                tr(lang, "请到卡务中心", "See the card centre"),
            ],
            CardProblem::BadMac => vec![
                tr(lang, "卡片数据校验失败", "Card data check failed"),
                tr(lang, "请到卡务中心", "See the card centre"),
            ],
        };
        self.show_error_to_both(lines);
    }

    /// The card's counter is below one this till saw or wrote: its blocks were restored from an
    /// earlier copy. Refused, and journaled as an alarm for the server.
    fn card_went_back(&mut self, card: &CardImage, known: u32) {
        let lang = self.lang();
        self.write(RecordBody::CardAnomaly(CardAnomaly {
            uid: card.uid,
            kind: CardAnomalyKind::CounterWentBack {
                on_card: card.counter,
                known,
            },
        }));
        self.show_error_to_both(vec![
            tr(lang, "卡片数据异常", "Card data is stale"),
            tr(lang, "请到卡务中心", "See the card centre"),
        ]);
    }

    /// Asks the drivers to remember the card's counter (see [`Effect::RememberCard`]).
    pub(super) fn remember_card(&mut self, card: &CardImage) {
        self.effects.push_back(Effect::RememberCard {
            uid: card.uid,
            counter: card.counter,
        });
    }

    /// The card write asked for by [`Effect::WriteCard`] finished.
    pub fn handle_card_written(&mut self, outcome: CardWriteOutcome, now: UnixMillis) {
        self.observe_time(now);
        if let Mode::Loading { request, intent } = self.mode.clone() {
            return self.load_written(request, intent, outcome);
        }
        let Mode::Debiting { payment, intent } = self.mode.clone() else {
            return; // no write was asked for: a stale answer changes nothing
        };
        let Some(pending) = self
            .snap
            .pending
            .iter()
            .find(|p| p.intent == intent)
            .copied()
        else {
            return;
        };
        match outcome {
            CardWriteOutcome::Written(card)
                if self.evidence(&pending, &card) == WriteEvidence::OnCard =>
            {
                self.commit(pending, card.balance, false);
            }
            CardWriteOutcome::Refused => {
                self.settle(RecordBody::SaleAborted(SaleAborted {
                    intent,
                    reason: AbortReason::WriteRefused,
                }));
                self.mode = Mode::AwaitingPayment(Payment {
                    retry: None,
                    ..payment
                });
                let lang = self.lang();
                self.show_error(vec![
                    tr(lang, "写卡失败 未扣款", "Card write failed, not charged"),
                    tr(lang, "请重新刷卡", "Tap again"),
                ]);
            }
            // Interrupted, or read back as something else: only a fresh read can tell.
            CardWriteOutcome::Written(_) | CardWriteOutcome::Unknown => {
                self.mode = Mode::AwaitingPayment(Payment {
                    retry: Some(intent),
                    ..payment
                });
                self.effects.push_back(Effect::Beep(Beep::Error));
            }
        }
    }

    /// The scanner read a code.
    pub fn handle_code(&mut self, code: &str, now: UnixMillis) {
        self.observe_time(now);
        self.overlay = None;
        let lang = self.lang();
        let kind = classify_code(code);
        let name = match kind {
            CodeKind::WeChat => tr(lang, "微信付款码", "WeChat Pay code"),
            CodeKind::Alipay => tr(lang, "支付宝付款码", "Alipay code"),
            CodeKind::UnionPay => tr(lang, "云闪付付款码", "UnionPay code"),
            CodeKind::Unknown => {
                return self.show_error_to_both(vec![tr(
                    lang,
                    "无法识别的码",
                    "Unrecognised code",
                )]);
            }
        };
        let why = if self.snap.offline {
            tr(lang, "脱机模式不能扫码付款", "Offline: codes cannot pay")
        } else {
            tr(lang, "本机未开通扫码付款", "Code payment not enabled")
        };
        let use_card = tr(lang, "请刷校园卡", "Please use the campus card");
        let customer = vec![name.clone(), use_card.clone()];
        self.show_message(vec![name, why, use_card], Some(customer), Beep::Error);
    }

    /// The answer to [`Effect::FindSale`].
    pub fn handle_sale_found(&mut self, found: Option<JournalRecord>, now: UnixMillis) {
        self.observe_time(now);
        let lang = self.lang();
        let Mode::Browsing { shown } = &mut self.mode else {
            return;
        };
        match found {
            Some(record) => *shown = Some(record),
            // Nothing to browse: leave the browser, or the screen would say "looking up"
            // forever once the message is gone.
            None if shown.is_none() => {
                self.mode = self.resting_mode();
                self.show_info(vec![tr(lang, "暂无流水", "No sales yet")]);
            }
            None => self.show_info(vec![tr(lang, "没有更多了", "No more sales")]),
        }
    }

    /// What both displays show now.
    pub fn displays(&self) -> Displays {
        let lang = self.lang();
        let status = self.status_line();
        let (body, customer) = self.mode_screens();
        let (body, customer) = match &self.overlay {
            Some(overlay) => (
                overlay.merchant.clone(),
                overlay.customer.clone().unwrap_or(customer),
            ),
            None => (body, customer),
        };
        let _ = lang;
        Displays {
            merchant: Screen::new(std::iter::once(status).chain(body), MERCHANT_LINES),
            customer: Screen::new(customer, CUSTOMER_LINES),
        }
    }

    // ----- inputs by mode -------------------------------------------------------------------

    fn handle_plain_key(&mut self, command: Command) {
        let lang = self.lang();
        let mode = std::mem::replace(&mut self.mode, Mode::Entry(AmountEntry::default()));
        self.mode = match mode {
            Mode::Entry(mut entry) => {
                match command {
                    Command::Digit(d) => self.type_amount(&mut entry, Some(d)),
                    Command::Dot => self.type_amount(&mut entry, None),
                    Command::Delete => entry.delete(),
                    Command::Clear => entry.clear(),
                    Command::Enter => match entry.amount() {
                        Some(amount) => {
                            return self.mode = Mode::AwaitingPayment(Payment::new(amount, false))
                        }
                        None => {
                            self.show_error(vec![tr(lang, "请先输入金额", "Enter an amount first")])
                        }
                    },
                    _ => self.invalid_key(),
                }
                Mode::Entry(entry)
            }
            // An interrupted debit waits for its card: only Clear (give up for now) does
            // anything, in fixed-price mode too (whose Clear+Del is refused until then).
            Mode::AwaitingPayment(payment) if payment.retry.is_some() => match command {
                Command::Clear => {
                    self.abandon_interrupted_sale();
                    self.resting_mode()
                }
                _ => {
                    self.show_error(vec![
                        tr(lang, "请用原卡重新刷卡", "Tap the same card again"),
                        tr(lang, "清零放弃", "Clear gives up"),
                    ]);
                    Mode::AwaitingPayment(payment)
                }
            },
            Mode::AwaitingPayment(payment) if payment.fixed => {
                self.show_error(vec![
                    tr(lang, "定额模式", "Fixed-price mode"),
                    tr(lang, "清零+删除 退出定额", "Clear+Del leaves it"),
                ]);
                Mode::AwaitingPayment(payment)
            }
            Mode::AwaitingPayment(payment) => match command {
                Command::Clear => {
                    self.show_info(vec![tr(lang, "交易已取消", "Sale cancelled")]);
                    self.resting_mode()
                }
                _ => {
                    self.show_error(vec![
                        tr(lang, "等待付款", "Waiting for payment"),
                        tr(lang, "清零取消交易", "Clear cancels"),
                    ]);
                    Mode::AwaitingPayment(payment)
                }
            },
            Mode::Debiting { payment, intent } => {
                self.show_error(vec![tr(
                    lang,
                    "正在扣款 请勿移卡",
                    "Charging: keep the card still",
                )]);
                Mode::Debiting { payment, intent }
            }
            Mode::ConfirmDuplicate { payment, payer } => match command {
                Command::Enter => {
                    self.show_info(vec![tr(lang, "已确认 请再次刷卡", "Confirmed: tap again")]);
                    // Remember the confirmation, or the next tap asks again, forever.
                    Mode::AwaitingPayment(Payment {
                        duplicate_confirmed: Some(payer),
                        ..payment
                    })
                }
                Command::Clear => {
                    self.show_info(vec![tr(lang, "交易已取消", "Sale cancelled")]);
                    self.resting_mode()
                }
                _ => {
                    self.show_error(vec![tr(
                        lang,
                        "回车确认 清零取消",
                        "Enter confirms, Clear cancels",
                    )]);
                    Mode::ConfirmDuplicate { payment, payer }
                }
            },
            Mode::Browsing { shown } => match command {
                Command::Up | Command::Down => {
                    let direction = if command == Command::Up {
                        BrowseDirection::Older
                    } else {
                        BrowseDirection::Newer
                    };
                    let from = shown.as_ref().map(|r| r.seq);
                    self.effects.push_back(Effect::FindSale { from, direction });
                    Mode::Browsing { shown }
                }
                Command::Clear | Command::Enter => self.resting_mode(),
                _ => {
                    self.show_error(vec![tr(
                        lang,
                        "上下键翻看 清零退出",
                        "Up/Down browse, Clear exits",
                    )]);
                    Mode::Browsing { shown }
                }
            },
            Mode::StaffPin(mut pin) => match command {
                Command::Digit(d) if pin.len() < config::STAFF_PIN_LEN_MAX => {
                    pin.push(char::from(b'0' + d.min(9)));
                    Mode::StaffPin(pin)
                }
                Command::Delete => {
                    pin.pop();
                    Mode::StaffPin(pin)
                }
                Command::Clear => self.resting_mode(),
                Command::Enter => self.check_staff_pin(&pin),
                _ => {
                    self.invalid_key();
                    Mode::StaffPin(pin)
                }
            },
            Mode::PickFixedPrice => match command {
                Command::Digit(d) => self.pick_fixed_price(d),
                Command::Clear => self.resting_mode(),
                _ => {
                    self.show_error(vec![tr(lang, "数字选择 清零取消", "Pick a number, Clear")]);
                    Mode::PickFixedPrice
                }
            },
            Mode::StaffMenu => match command {
                Command::Digit(d) => self.staff_menu_choice(d),
                Command::Clear => self.resting_mode(),
                _ => {
                    self.show_error(vec![tr(lang, "请选1-3 清零退出", "Pick 1-3, Clear exits")]);
                    Mode::StaffMenu
                }
            },
            Mode::LoadAmount(mut entry) => match command {
                Command::Digit(d) => {
                    self.type_load_amount(&mut entry, Some(d));
                    Mode::LoadAmount(entry)
                }
                Command::Delete => {
                    entry.delete();
                    Mode::LoadAmount(entry)
                }
                Command::Clear if entry.is_empty() => Mode::StaffMenu,
                Command::Clear => Mode::LoadAmount(AmountEntry::default()),
                Command::Enter => self.confirm_load_amount(entry),
                _ => {
                    self.invalid_key();
                    Mode::LoadAmount(entry)
                }
            },
            Mode::LoadAwaitingCard(request) => match command {
                Command::Clear if request.retry.is_some() => {
                    self.abandon_interrupted_sale();
                    Mode::LoadAmount(AmountEntry::default())
                }
                Command::Clear => Mode::LoadAmount(AmountEntry::default()),
                _ => {
                    self.show_error(vec![
                        tr(lang, "请刷卡充值", "Tap the card to load"),
                        tr(lang, "清零取消", "Clear cancels"),
                    ]);
                    Mode::LoadAwaitingCard(request)
                }
            },
            Mode::Loading { request, intent } => {
                self.show_error(vec![tr(
                    lang,
                    "正在写卡 请勿移卡",
                    "Writing: keep the card still",
                )]);
                Mode::Loading { request, intent }
            }
            Mode::IssueAwaitingCard => match command {
                Command::Clear => Mode::StaffMenu,
                _ => {
                    self.show_error(vec![
                        tr(lang, "请放空白卡", "Tap a blank card"),
                        tr(lang, "清零退出", "Clear exits"),
                    ]);
                    Mode::IssueAwaitingCard
                }
            },
            Mode::Issuing => Mode::Issuing,
            Mode::StaffMachineNumber(mut digits) => match command {
                Command::Digit(d) if digits.len() < 4 => {
                    digits.push(char::from(b'0' + d.min(9)));
                    Mode::StaffMachineNumber(digits)
                }
                Command::Delete => {
                    digits.pop();
                    Mode::StaffMachineNumber(digits)
                }
                Command::Clear => self.resting_mode(),
                Command::Enter => match MachineNumber::parse(&digits) {
                    Ok(new) => {
                        self.set_machine_number(new);
                        self.resting_mode()
                    }
                    Err(_) => {
                        self.show_error(vec![tr(lang, "机号须为1-9999", "Number must be 1-9999")]);
                        Mode::StaffMachineNumber(digits)
                    }
                },
                _ => {
                    self.invalid_key();
                    Mode::StaffMachineNumber(digits)
                }
            },
        };
    }

    fn type_amount(&mut self, entry: &mut AmountEntry, key: Option<u8>) {
        let lang = self.lang();
        if let Err(error) = entry.push(key, self.config.max_sale) {
            let line = match error {
                EntryError::TooManyDecimals => tr(lang, "最多两位小数", "At most 2 decimals"),
                EntryError::SecondPoint => tr(lang, "已有小数点", "Already has a point"),
                EntryError::OverMax(max) => match lang {
                    Lang::Zh => format!("超过单笔限额 {}", yuan(max)),
                    Lang::En => format!("Over the limit {}", yuan(max)),
                },
            };
            self.show_error(vec![line]);
        }
    }

    fn invalid_key(&mut self) {
        let lang = self.lang();
        self.show_error(vec![tr(lang, "无效按键", "Key not used here")]);
    }

    // ----- plumbing --------------------------------------------------------------------------

    fn lang(&self) -> Lang {
        self.config.lang
    }

    fn resting_mode(&self) -> Mode {
        match self.snap.fixed_price {
            Some(amount) => Mode::AwaitingPayment(Payment::new(amount, true)),
            None => Mode::Entry(AmountEntry::default()),
        }
    }

    /// Allocates the next seq and asks for `body` to be journaled with the current snapshot.
    /// Callers update `self.snap` first, so the snapshot stored with the record includes it.
    fn write(&mut self, body: RecordBody) -> Seq {
        let record = self.next_record(body);
        let seq = record.seq;
        self.effects.push_back(Effect::Journal {
            record,
            snapshot: self.snap.clone(),
        });
        seq
    }

    /// Allocates the next seq for `body` (advancing the snapshot's `next_seq`).
    fn next_record(&mut self, body: RecordBody) -> JournalRecord {
        let seq = self.snap.next_seq;
        // 2^64 records at a sale a millisecond is 584 million years.
        self.snap.next_seq = seq.next().expect("journal sequence numbers exhausted");
        JournalRecord {
            seq,
            at: self.now,
            machine: self.snap.machine,
            body,
        }
    }

    fn observe_time(&mut self, now: UnixMillis) {
        if now < self.now {
            self.overlay = None; // the clock was set back: do not keep a message for the gap
        }
        self.now = now;
        if self
            .overlay
            .as_ref()
            .is_some_and(|overlay| overlay.until <= now)
        {
            self.overlay = None;
        }
    }

    fn show_message(&mut self, merchant: Vec<String>, customer: Option<Vec<String>>, beep: Beep) {
        self.overlay = Some(Overlay {
            merchant,
            customer,
            until: self.now.saturating_add_millis(MESSAGE_SHOW_MS),
        });
        self.effects.push_back(Effect::Beep(beep));
    }

    fn show_error(&mut self, merchant: Vec<String>) {
        self.show_message(merchant, None, Beep::Error);
    }

    /// An error the payer must see too (their card or code cannot pay).
    fn show_error_to_both(&mut self, lines: Vec<String>) {
        self.show_message(lines.clone(), Some(lines), Beep::Error);
    }

    fn show_info(&mut self, merchant: Vec<String>) {
        self.overlay = Some(Overlay {
            merchant,
            customer: None,
            until: self.now.saturating_add_millis(MESSAGE_SHOW_MS),
        });
    }
}

/// A combo that asks for information or a mode change (wrong sequences are reported anywhere).
fn is_combo(command: Command) -> bool {
    command.is_combo_result() && command != Command::InvalidCombo
}
