//! The till core: a deterministic state machine with no I/O and no clock. Drivers feed it inputs
//! (`handle_*`: commands from the keymap, card reads, card-write outcomes, scanned codes, journal
//! answers, time) and carry out what it asks (`poll_effect`: journal appends, card writes, journal
//! look-ups, beeps); `displays()` says what both screens show.
//!
//! This file only routes: `Mode` has one variant per flow (`flows/`: entry, sale, staff, card
//! centre, browse, messages, order), and each input goes to the active flow. Taps and scanned
//! codes pass `tap.rs` first; every money movement goes through `money.rs`; every text is in
//! `text.rs`.
//!
//! Journal facts reach the core one way: the core asks for each with an effect when it needs
//! it, and the driver answers with an input before the next effect runs. A tap asks for what
//! the journal knows of the card and what is unsent (`Effect::LookUpCard` →
//! `handle_card_facts`); the browser asks for the next sale (`Effect::FindSale` →
//! `handle_sale_found`). Why this way: only the core knows when it needs a fact (the browser's
//! next sale depends on the one shown), so asking is the one shape that fits every fact; the
//! driver reads nothing it does not need and pushes nothing "just in case"; and the journal
//! reads a decision rests on are visible in the effect stream, in order, like the writes.
//!
//! The driver contract that protects money: effects are carried out in the order they are
//! polled, a `Journal` effect is durable before the next effect runs, a failed journal append
//! stops the till, and the screens are redrawn only after every polled effect has run. So
//! "交易成功" is never visible before its record is durable.

pub mod amount;
pub mod calendar;
pub mod card;
pub mod config;
pub mod downlink;
pub mod flows;
mod money;
pub mod offline;
mod screens;
mod tally;
mod tap;
#[cfg(test)]
mod testkit;
pub mod text;

pub use downlink::LinkStatus;
pub use flows::card_centre as cardcentre;
pub use flows::order::{
    ORDER_ANSWER_TIMEOUT_MS, ORDER_BACKGROUND_RETRY_MS, QR_EXPIRY_GRACE_MS, QR_ORDER_VALID_S,
};
pub use flows::staff::{MAX_STAFF_PIN_ATTEMPTS, STAFF_PIN_LOCKOUT_MS};
pub use money::{MAX_UNRESOLVED_SALES, UNRESOLVED_MAX_AGE_MS};

use std::collections::VecDeque;
use std::sync::Arc;

use keymap::Command;
use shared::campus::Blacklist;
use shared::record::{JournalRecord, RecordBody, TillSnapshot};
use shared::{Fen, Seq, TerminalId, UnixMillis};

use self::card::{CardFacts, CardImage, CardRead, CardWrite, CardWriteOutcome};
use self::config::{Lang, TillConfig};
use self::flows::browse::BrowseMode;
use self::flows::card_centre::CentreMode;
use self::flows::entry::EntryMode;
use self::flows::messages::Overlay;
use self::flows::order::{OrderBook, OrderMode};
use self::flows::sale::SaleMode;
use self::flows::staff::StaffMode;

/// The firmware version shown by Clear+8.
pub const FIRMWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long a message (a combo's answer, an error) stays before the screen returns.
pub const MESSAGE_SHOW_MS: u64 = 3_000;
/// How long the success screen stays (the next key or tap ends it sooner).
pub const SUCCESS_SHOW_MS: u64 = 3_000;
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
    /// `lines`, cut or padded with empty lines to `len`.
    pub(crate) fn new(lines: impl IntoIterator<Item = String>, len: usize) -> Screen {
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
    /// The offline QR payload the customer's display shows as a QR code beside its lines
    /// (`shared::qrpay`), if any.
    pub qr: Option<String>,
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
    /// Look up what the journal knows that a tap of this card needs (the card's history, what
    /// is unsent); answer with [`Till::handle_card_facts`] before the next effect runs.
    LookUpCard {
        uid: shared::CardUid,
    },
    /// Find the nearest committed sale before/after `from` (None: from the newest/oldest end);
    /// answer with [`Till::handle_sale_found`] before the next effect runs.
    FindSale {
        from: Option<Seq>,
        direction: BrowseDirection,
    },
    Beep(Beep),
    /// Send this code-payment request to the campus server (through the daemon); answer with
    /// [`Till::handle_order_result`], or [`Till::handle_order_not_sent`] when it cannot leave
    /// the till. Carries the payment code in clear only in a submit: never log it.
    Order(shared::pay::OrderCall),
    /// Append `record` (a `BlacklistReplaced`) and store `snapshot` and `list` in the same
    /// transaction, durably, before anything else happens.
    ReplaceBlacklist {
        record: JournalRecord,
        snapshot: TillSnapshot,
        list: Arc<Blacklist>,
    },
}

/// Which flow owns the till now, with that flow's own state. Each flow's states, keys and
/// screens live in its file under `flows/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Idle, typing an amount, or picking a fixed-price preset (`flows/entry.rs`).
    Entry(EntryMode),
    /// A sale waiting for its payer, charging, or asking about a duplicate (`flows/sale.rs`).
    Sale(SaleMode),
    /// Clear+9: one committed sale at a time (`flows/browse.rs`).
    Browse(BrowseMode),
    /// The staff PIN, menu and machine number (`flows/staff.rs`).
    Staff(StaffMode),
    /// A code payment's order on screen, or the start-up check of open orders
    /// (`flows/order.rs`).
    Order(OrderMode),
    /// Card centre: issue and top-up (`flows/card_centre.rs`).
    CardCentre(CentreMode),
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
    /// What the journal holds that the campus server has not acknowledged (as of the last tap).
    unsent: offline::UnsentSummary,
    /// The card whose journal facts were asked for ([`Effect::LookUpCard`]).
    tapped: Option<CardImage>,
    /// The server's clock minus the till's, as last seen.
    server_offset: Option<i64>,
    /// How many server-clock corrections were journaled lately, and how many were not.
    server_time_log: downlink::ServerTimeLog,
    terminal: TerminalId,
    snap: TillSnapshot,
    /// What the till keeps in RAM about its code-payment orders (the code on screen, timers).
    orders: OrderBook,
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
        let effective = downlink::effective_config(&config, snapshot.campus.as_ref());
        let server_offset = snapshot.server_time.map(|(_, offset)| offset);
        let mut till = Till {
            config: effective,
            base_config: config,
            blacklist: Arc::new(Blacklist::empty()),
            link: None,
            unsent: offline::UnsentSummary::default(),
            tapped: None,
            server_offset,
            server_time_log: downlink::ServerTimeLog::default(),
            terminal,
            snap: snapshot,
            orders: OrderBook::default(),
            mode: Mode::Entry(EntryMode::default()),
            overlay: None,
            effects: VecDeque::new(),
            now,
        };
        till.mode = till.resting_mode();
        till.greet_unresolved();
        till.check_orders_at_start();
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
        matches!(self.mode, Mode::Sale(SaleMode::ConfirmDuplicate { .. }))
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
        [
            overlay,
            self.unresolved_deadline(),
            self.orders_deadline(),
            self.qr_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passes.
    pub fn handle_tick(&mut self, now: UnixMillis) {
        self.observe_time(now);
        self.expire_unresolved();
        self.orders_tick();
        self.qr_tick();
    }

    /// The unresolved intent the current screen is working on (its write, or its retry).
    fn intent_on_screen(&self) -> Option<Seq> {
        match &self.mode {
            Mode::Sale(sale) => sale.intent_on_screen(),
            Mode::CardCentre(centre) => centre.intent_on_screen(),
            Mode::Entry(_) | Mode::Browse(_) | Mode::Staff(_) | Mode::Order(_) => None,
        }
    }

    /// A command from the keymap: a combo goes to `flows/messages.rs` (which refuses it where
    /// the active flow does not allow combos), a plain key to the active flow.
    pub fn handle_command(&mut self, command: Command, now: UnixMillis) {
        self.observe_time(now);
        self.overlay = None; // any key ends a message, then acts
        if command.is_combo_result() {
            return self.handle_combo(command);
        }
        let mode = std::mem::replace(&mut self.mode, Mode::Entry(EntryMode::default()));
        self.mode = match mode {
            Mode::Entry(entry) => self.entry_key(entry, command),
            Mode::Sale(sale) => self.sale_key(sale, command),
            Mode::Browse(browse) => self.browse_key(browse, command),
            Mode::Staff(staff) => self.staff_key(staff, command),
            Mode::CardCentre(centre) => self.centre_key(centre, command),
            Mode::Order(order) => self.order_key(order, command),
        };
    }

    /// A card was tapped and read. A campus card's tap goes on once the journal's facts about it
    /// are in: the core asks for them ([`Effect::LookUpCard`]).
    pub fn handle_card(&mut self, read: CardRead, now: UnixMillis) {
        self.observe_time(now);
        self.overlay = None;
        match read {
            CardRead::Card(card) if !self.reader_busy() => {
                self.tapped = Some(card);
                self.effects.push_back(Effect::LookUpCard { uid: card.uid });
            }
            CardRead::Card(_) => {} // the write under way owns the reader; a second tap is noise
            CardRead::Unreadable(problem) => self.unreadable(problem),
        }
    }

    /// The answer to [`Effect::LookUpCard`]: the tap goes on.
    pub fn handle_card_facts(&mut self, facts: CardFacts, now: UnixMillis) {
        self.observe_time(now);
        let Some(card) = self.tapped.take() else {
            return; // no look-up was asked for: a stale answer changes nothing
        };
        self.unsent = facts.unsent;
        self.tap(card, facts.history);
    }

    /// The card write asked for by [`Effect::WriteCard`] finished.
    pub fn handle_card_written(&mut self, outcome: CardWriteOutcome, now: UnixMillis) {
        self.observe_time(now);
        match self.mode.clone() {
            Mode::Sale(SaleMode::Debiting { payment, intent }) => {
                self.debit_written(payment, intent, outcome)
            }
            Mode::CardCentre(CentreMode::Loading { request, intent }) => {
                self.load_written(request, intent, outcome)
            }
            _ => {} // no write was asked for: a stale answer changes nothing
        }
    }

    /// The scanner read a code.
    pub fn handle_code(&mut self, code: &str, now: UnixMillis) {
        self.observe_time(now);
        self.overlay = None;
        self.scanned(code);
    }

    /// The campus server's answer about a code-payment order (relayed by the daemon).
    pub fn handle_order_result(&mut self, result: shared::pay::OrderResult, now: UnixMillis) {
        self.observe_time(now);
        self.order_result(result);
    }

    /// The order request asked for by [`Effect::Order`] could not leave the till (no daemon,
    /// or the daemon has no broker).
    pub fn handle_order_not_sent(&mut self, order: shared::pay::OrderId, now: UnixMillis) {
        self.observe_time(now);
        self.order_not_sent(order);
    }

    /// The answer to [`Effect::FindSale`].
    pub fn handle_sale_found(&mut self, found: Option<JournalRecord>, now: UnixMillis) {
        self.observe_time(now);
        self.sale_found(found);
    }

    /// What both displays show now.
    pub fn displays(&self) -> Displays {
        let status = self.status_line();
        let (body, customer) = self.mode_screens();
        let (body, customer) = match &self.overlay {
            Some(overlay) => (
                overlay.merchant.clone(),
                overlay.customer.clone().unwrap_or(customer),
            ),
            None => (body, customer),
        };
        Displays {
            merchant: Screen::new(std::iter::once(status).chain(body), MERCHANT_LINES),
            customer: Screen::new(customer, CUSTOMER_LINES),
            qr: self.qr_on_screen().map(|shown| shown.payload.clone()),
        }
    }

    // ----- plumbing --------------------------------------------------------------------------

    fn lang(&self) -> Lang {
        self.config.lang
    }

    /// The mode the till returns to when a flow ends: the fixed-price sale, or amount entry.
    fn resting_mode(&self) -> Mode {
        match self.snap.fixed_price {
            Some(amount) => Mode::Sale(SaleMode::fixed(amount)),
            None => Mode::Entry(EntryMode::default()),
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
            self.orders_clock_went_back(self.now.millis_since(now));
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
}
