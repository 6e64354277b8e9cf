//! One seeded session: the random actions (sales, code payments, staff, taps, torn writes, clock
//! jumps, the link going down and up, restarts and power cuts, also in the middle of orders) and
//! how each is fed to the till; after every input it runs the checks of `checks.rs`, and the
//! till's order requests go over the network to the campus of `campus.rs`.

use super::*;

mod checks;
mod clock;
mod inputs;
mod orders;

pub(crate) use inputs::*;

// ----- the session -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    Sale,
    CodeSale,
    TypeAndEnter,
    Tap,
    ArmFault,
    Key,
    Combo,
    Staff,
    Scan,
    Wait,
    Midnight,
    ClockBack,
    ClockDays,
    TodayTotal,
    Restart,
    RestartWithSettings,
    LinkDown,
    LinkUp,
}

/// Weighted toward realistic sales.
const ACTIONS: &[(u64, Action)] = &[
    (30, Action::Sale),
    (14, Action::CodeSale),
    (8, Action::TypeAndEnter),
    (14, Action::Tap),
    (3, Action::ArmFault),
    (10, Action::Key),
    (7, Action::Combo),
    (1, Action::Staff),
    (4, Action::Scan),
    (14, Action::Wait),
    (1, Action::Midnight),
    (1, Action::ClockBack),
    (1, Action::ClockDays),
    (2, Action::TodayTotal),
    (2, Action::Restart),
    (1, Action::RestartWithSettings),
    (1, Action::LinkDown),
    (2, Action::LinkUp),
];

/// Card indexes in [`default_cards`] order (card-1, card-2, card-3, bus-card, blank-card,
/// metro-card) with tap weights. The blank card is left to the scenarios (issuing it is a card
/// centre gesture the random keys hardly ever reach).
const CARD_WEIGHTS: &[(u64, usize)] = &[(40, 0), (30, 1), (18, 2), (9, 3), (3, 5)];
/// How many cards [`default_cards`] makes; a crowd's students come after them.
pub(crate) const DEFAULT_CARD_COUNT: u64 = 6;
/// Sessions (in percent) with a crowd: extra student cards and many pulled cards nobody brings
/// back, so that more than `MAX_UNRESOLVED_SALES` sales wait and the oldest goes in doubt.
pub(crate) const CROWD_PERCENT: u64 = 12;
/// Merchant lines that mean "the till waits for a card that was pulled away mid-write".
const WAITING_FOR_PULLED_CARD: &[&str] = &[
    "请重新刷卡",
    "请用原卡重新刷卡",
    "清零放弃",
    "Tap the card again",
    "Tap the same card again",
    "Clear gives up",
];
/// Extra student cards in a crowd session.
pub(crate) const CROWD_CARDS: u64 = 60;
/// Code payments (in percent) armed with a power cut as their request leaves the till.
const ORDER_CUT_PERCENT: u64 = 8;
/// Reactions of the merchant to one order on screen, at most (waits, Clear, restarts, the link).
const ORDER_FOLLOW_STEPS: usize = 16;
/// A wait longer than this usually brings a link that is down back first.
const LONG_LINK_DOWN_MS: u64 = 10 * MINUTE_MS;
/// Sessions (in percent) that start with the link down.
const LINK_DOWN_AT_START_PERCENT: u64 = 10;
/// Merchant lines of the duplicate-payment reminder.
const DUPLICATE_REMINDER: &[&str] = &["重复消费提醒", "Duplicate payment?"];

/// A power cut armed for the next input whose outputs hold order requests.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OrderCut {
    /// The intent (or reversal) is durable; the request never left the till.
    Unsent,
    /// The request reached the campus, which acted on it; the till died before the answer.
    Unanswered,
}

/// Where an injected power cut hits a card write.
#[derive(Debug, Clone, Copy)]
enum CutPoint {
    /// The intent is durable (it must be), the card not written.
    BeforeWrite,
    /// The card holds the debit; nothing after it happened.
    AfterWrite,
}

/// The unwinding payload of an injected power cut. Raised with `resume_unwind`, which runs no
/// panic hook: the runtime is abandoned mid-`handle`, exactly where the power went.
struct PowerCut;

/// The reader as the runtime sees it: the simulated cards, with every write recorded, and
/// maybe a power cut at the next write.
struct Recorder<'a> {
    pub(crate) cards: &'a mut SimCards,
    pub(crate) writes: Vec<(CardWrite, CardWriteOutcome)>,
    pub(crate) cut: Option<CutPoint>,
}

impl CardWriter for Recorder<'_> {
    fn write_card(&mut self, write: &CardWrite) -> CardWriteOutcome {
        match self.cut.take() {
            Some(CutPoint::BeforeWrite) => std::panic::resume_unwind(Box::new(PowerCut)),
            Some(CutPoint::AfterWrite) => {
                let outcome = self.cards.write_card(write);
                self.writes.push((*write, outcome));
                std::panic::resume_unwind(Box::new(PowerCut))
            }
            None => {
                let outcome = self.cards.write_card(write);
                self.writes.push((*write, outcome));
                outcome
            }
        }
    }

    fn issue_card(&mut self) -> IssueOutcome {
        self.cards.issue_card()
    }
}

pub(crate) struct ActionLog {
    pub(crate) step: usize,
    pub(crate) name: String,
    pub(crate) inputs: Vec<String>,
}

pub(crate) struct Session {
    pub(crate) rng: Rng,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: TillConfig,
    pub(crate) runtime: Option<TillRuntime>,
    pub(crate) cards: SimCards,
    /// A crowd session (see [`CROWD_PERCENT`]).
    pub(crate) crowd: bool,
    /// The next student in the crowd's queue (an index past the default cards, cycling).
    next_student: u64,
    pub(crate) initial: Vec<SimCard>,
    pub(crate) terminal: TerminalId,
    pub(crate) wall: UnixMillis,
    /// The wall clock the session started at (clock steps of days stay near it; the campus's
    /// clock is it plus the monotonic time).
    pub(crate) start_wall: UnixMillis,
    pub(crate) mono_ms: u64,
    pub(crate) step: usize,
    pub(crate) log: VecDeque<ActionLog>,
    pub(crate) books: Books,
    /// Ground truth from diffing the cards: intents whose write reached the card.
    pub(crate) landed: BTreeMap<Seq, CardUid>,
    pub(crate) stats: Stats,
    /// The payment back end and the network to it.
    pub(crate) campus: Campus,
    /// Whether the daemon and its broker are up (the session's choice).
    pub(crate) link_up: bool,
    /// Whether the till was told, since its boot, that the route to the campus is up.
    pub(crate) link_connected: bool,
    /// Counts link connections: an answer travels on the one it left on.
    pub(crate) link_epoch: u64,
    pub(crate) order_cut: Option<OrderCut>,
}

impl Session {
    pub(crate) fn start(seed: u64) -> Result<Session, String> {
        let mut rng = Rng::new(seed);
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let crowd = write_cards_file(&mut rng, dir.path())?;
        let cards = SimCards::open(dir.path()).map_err(|e| format!("sim cards: {e}"))?;
        let initial = cards.cards().to_vec();
        let day = rng.below(400) * DAY_MS;
        let time_of_day = rng.between(6 * 60, 21 * 60) * MINUTE_MS + rng.below(MINUTE_MS);
        let wall = UnixMillis(START_LOCAL_MIDNIGHT_MS + (day + time_of_day) as i64);
        let config = TillConfig::default();
        let now = Now { wall, mono_ms: 0 };
        let mut runtime = TillRuntime::open(dir.path(), config.clone(), now)
            .map_err(|e| format!("the till does not open: {e}"))?;
        runtime.enable_link(now);
        let campus = Campus::new(&mut rng);
        let link_up = !rng.chance(LINK_DOWN_AT_START_PERCENT);
        let terminal = runtime.journal().terminal_id();
        let mut session = Session {
            rng,
            dir,
            config,
            runtime: Some(runtime),
            cards,
            crowd,
            next_student: 0,
            initial,
            terminal,
            wall,
            start_wall: wall,
            mono_ms: 0,
            step: 0,
            log: VecDeque::new(),
            books: Books::default(),
            landed: BTreeMap::new(),
            stats: Stats {
                sessions: 1,
                ..Stats::default()
            },
            campus,
            link_up,
            link_connected: false,
            link_epoch: 0,
            order_cut: None,
        };
        session.begin_action("boot".into());
        session.after_boot()?;
        Ok(session)
    }

    pub(crate) fn run(&mut self, steps: usize) -> Result<Stats, String> {
        for step in 1..=steps {
            self.step = step;
            let action = self.rng.weighted(ACTIONS);
            self.begin_action(format!("{action:?}"));
            self.act(action)?;
            self.stats.steps += 1;
        }
        self.step = steps + 1;
        self.settle()?;
        let mut stats = self.stats;
        let books = &self.books;
        stats.orders = books.orders.len() as u64;
        stats.orders_paid = books.count_orders(|o| matches!(o, OrderOutcome::Paid(_)));
        stats.orders_recovered =
            books.count_orders(|o| matches!(o, OrderOutcome::Paid(p) if p.recovered));
        stats.orders_declined =
            books.count_orders(|o| matches!(o, OrderOutcome::Closed(OrderEnd::Declined(_))));
        stats.reversed_refunded = books.count_orders(|o| {
            matches!(
                o,
                OrderOutcome::Closed(OrderEnd::Reversed { refunded: true })
            )
        });
        stats.reversed_unrefunded = books.count_orders(|o| {
            matches!(
                o,
                OrderOutcome::Closed(OrderEnd::Reversed { refunded: false })
            )
        });
        stats.virtual_paid = books.count_orders(
            |o| matches!(o, OrderOutcome::Paid(p) if matches!(p.payer, Payer::VirtualCard(_))),
        );
        stats.paid_after_close = books.paid_after_close.len() as u64;
        stats.intents = self.books.intents.len() as u64;
        stats.committed = self.books.count(Resolution::Committed);
        stats.recovered = self.books.recovered;
        stats.aborted = self.books.count(Resolution::Aborted);
        stats.in_doubt = self.books.count(Resolution::InDoubt);
        stats.crowds = u64::from(self.crowd);
        Ok(stats)
    }

    fn act(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::Sale => self.sale(),
            Action::CodeSale => self.code_sale(),
            Action::TypeAndEnter => {
                let text = self.amount_text();
                self.type_text(&text)?;
                self.gap()?;
                self.press(TillKey::Enter)
            }
            Action::Tap => {
                if self.rng.chance(15) {
                    self.arm_fault();
                }
                let card = self.pick_card();
                self.tap(card)
            }
            Action::ArmFault => {
                self.arm_fault();
                Ok(())
            }
            Action::Key => {
                let key = if self.rng.chance(3) {
                    TillKey::Digit(self.rng.between(10, 255) as u8) // no real key, must be ignored
                } else {
                    self.rng.pick(&TillKey::ALL)
                };
                self.press(key)
            }
            Action::Combo => {
                self.press(TillKey::Clear)?;
                let gap = if self.rng.chance(85) {
                    self.rng.between(30, 950)
                } else {
                    self.rng.between(950, 1_300) // around the window's edge
                };
                self.advance(gap)?;
                let second = self.rng.pick(&TillKey::ALL);
                self.press(second)
            }
            Action::Staff => self.staff(),
            Action::Scan => {
                // A phone's code at any moment (idle, mid-entry, in a menu), or junk.
                let now = self.campus_now();
                match self.campus.make_code(&mut self.rng, now) {
                    Some(code) if self.rng.chance(50) => self.scan(code),
                    _ => {
                        let code = self.random_code();
                        self.input(Input::Code(code))
                    }
                }
            }
            Action::Wait => {
                let ms = match self.rng.below(100) {
                    0..30 => self.rng.between(1, 999),
                    30..65 => self.rng.between(1_000, 60_000),
                    65..90 => self.rng.between(MINUTE_MS, 30 * MINUTE_MS),
                    _ => self.rng.between(3_600_000, 8 * 3_600_000),
                };
                // Someone restarts a daemon that stays down for long.
                if ms > LONG_LINK_DOWN_MS && self.rng.chance(80) {
                    self.link_up()?;
                }
                self.advance(ms)
            }
            Action::Midnight => self.midnight(),
            Action::ClockBack => {
                let ms = self.rng.between(MINUTE_MS, 45 * MINUTE_MS);
                self.clock_back(ms)
            }
            Action::ClockDays => self.clock_days(),
            Action::TodayTotal => self.today_total(),
            Action::Restart => self.restart(false),
            Action::RestartWithSettings => self.restart(true),
            Action::LinkDown => self.link_down(),
            Action::LinkUp => self.link_up(),
        }
    }

    // ----- gestures ----------------------------------------------------------------------------

    /// A merchant's sale: (maybe Clear first) amount, Enter, usually a tap, and the merchant's
    /// reaction to a duplicate reminder or a card pulled away.
    pub(crate) fn sale(&mut self) -> Result<(), String> {
        // A merchant waiting for a pulled card usually gives up on it (Clear) for the next sale.
        let waiting = self.showing(WAITING_FOR_PULLED_CARD);
        let give_up = if self.crowd { 95 } else { 30 };
        if self.rng.chance(if waiting { give_up } else { 20 }) {
            self.press(TillKey::Clear)?;
            self.advance(1_100)?;
        }
        let text = self.amount_text();
        self.type_text(&text)?;
        self.gap()?;
        self.press(TillKey::Enter)?;
        if !self.rng.chance(85) {
            return Ok(());
        }
        let wait = self.rng.between(300, 4_000);
        self.advance(wait)?;
        let card = self.next_payer();
        if self.rng.chance(if self.crowd { 85 } else { 12 }) {
            self.arm_fault();
        }
        self.tap(card)?;
        if self.showing(&["重复消费提醒", "Duplicate payment?"]) {
            self.stats.duplicate_reminders += 1;
            if self.rng.chance(60) {
                self.gap()?;
                self.press(TillKey::Enter)?;
                let wait = self.rng.between(300, 2_000);
                self.advance(wait)?;
                self.tap(card)?;
            } else if self.rng.chance(50) {
                self.press(TillKey::Clear)?;
            }
        } else if self.showing(WAITING_FOR_PULLED_CARD)
            && self.rng.chance(if self.crowd { 15 } else { 70 })
        {
            let wait = self.rng.between(500, 5_000);
            self.advance(wait)?;
            self.tap(card)?;
        }
        Ok(())
    }

    /// F2+1+7, a PIN (usually right), maybe the staff menu's machine number and a new number.
    pub(crate) fn staff(&mut self) -> Result<(), String> {
        for key in [TillKey::F2, TillKey::Digit(1), TillKey::Digit(7)] {
            let gap = self.rng.between(50, 2_300);
            self.advance(gap)?;
            self.press(key)?;
        }
        let pin = if self.rng.chance(65) {
            self.config.staff_pin.clone()
        } else {
            let len = self.rng.between(1, 9);
            self.rng.digits(len)
        };
        self.gap()?;
        self.type_text(&pin)?;
        self.gap()?;
        self.press(TillKey::Enter)?;
        if self.rng.chance(80) {
            // The staff menu: 1 is the machine number (top-ups and issuing are the card tests').
            self.gap()?;
            self.press(TillKey::Digit(1))?;
            let len = self.rng.between(1, 5);
            let number = self.rng.digits(len);
            self.gap()?;
            self.type_text(&number)?;
            self.gap()?;
            self.press(TillKey::Enter)?;
        }
        Ok(())
    }

    /// A power cut after the last durable append: the process (till and reader) is gone; the
    /// journal and the cards file are what survives.
    pub(crate) fn restart(&mut self, change_settings: bool) -> Result<(), String> {
        let before = {
            let runtime = self.runtime.as_ref().ok_or("the till is not running")?;
            runtime.journal().snapshot().clone()
        };
        if !before.pending_orders.is_empty() {
            self.stats.restarts_mid_order += 1;
        }
        self.reboot(change_settings, Some(before))?;
        self.stats.restarts += 1;
        self.note("restart".into());
        self.after_boot()
    }

    /// The power went in the middle of a card write (`cut`): reboot from what is durable, then
    /// check that whatever reached the card belongs to an intent that was durable before it.
    fn after_power_cut(
        &mut self,
        cut: Option<CutPoint>,
        writes: &[(CardWrite, CardWriteOutcome)],
        cards_before: &[SimCard],
        unresolved_before: &BTreeSet<Seq>,
        first_new: Seq,
    ) -> Result<(), String> {
        self.stats.power_cuts += 1;
        self.note(format!("power cut {cut:?}"));
        self.reboot(false, None)?;
        self.check_card_writes(writes, unresolved_before, first_new)?;
        self.check_card_changes(cards_before)?;
        self.check_money()?;
        self.after_boot()
    }

    /// Drops the till and the reader and starts both again from the data directory.
    /// `unchanged`: the durable snapshot the journal must still hold (a clean cut between
    /// inputs); `None` after a cut mid-input, when the journal may have grown but must keep every
    /// record that was durable before.
    fn reboot(
        &mut self,
        change_settings: bool,
        unchanged: Option<TillSnapshot>,
    ) -> Result<(), String> {
        self.runtime = None;
        if change_settings {
            self.config = self.random_config();
            self.stats.settings_changes += 1;
            self.note(format!(
                "new settings: {:?}, max_sale ¥{}, duplicate window {} ms, name {:?}",
                self.config.lang,
                self.config.max_sale,
                self.config.duplicate_window_ms,
                self.config.merchant_name
            ));
        }
        self.reopen_cards()?;
        // The link to the daemon died with the till: answers on their way are lost.
        self.link_connected = false;
        self.link_epoch += 1;
        self.campus.link_lost();
        let boot = self.rng.between(1_000, 30_000);
        self.step_to(self.mono_ms + boot);
        let mut runtime = TillRuntime::open(self.dir.path(), self.config.clone(), self.now())
            .map_err(|e| format!("the till does not reopen: {e}"))?;
        runtime.enable_link(self.now());
        ensure!(
            runtime.journal().terminal_id() == self.terminal,
            "the terminal id changed across a restart"
        );
        let mut books = Books::default();
        for record in runtime.journal().records_from(Seq::FIRST) {
            let record = record.map_err(|e| format!("reading the reopened journal: {e}"))?;
            books.ingest(record, self.terminal)?;
        }
        if let Some(before) = unchanged {
            ensure!(
                *runtime.journal().snapshot() == before,
                "the snapshot after reopening differs from the last durable one"
            );
            ensure!(
                books == self.books,
                "the reopened journal differs from what was durable before the restart ({} records vs {})",
                books.records.len(),
                self.books.records.len()
            );
        } else {
            ensure!(
                books.records.starts_with(&self.books.records),
                "a power cut lost or changed records that were durable ({} records before, {} after)",
                self.books.records.len(),
                books.records.len()
            );
        }
        self.books = books;
        self.runtime = Some(runtime);
        Ok(())
    }

    /// Ends the session: the reader is replaced (any armed fault goes with it), the till is
    /// brought to idle, and every card is tapped once more.
    fn settle(&mut self) -> Result<(), String> {
        self.begin_action("settle".into());
        self.reopen_cards()?;
        self.advance(SETTLE_WAIT_MS)?;
        for _ in 0..2 {
            self.press(TillKey::Clear)?;
            self.advance(1_500)?;
        }
        self.settle_orders()?;
        if self.snapshot()?.fixed_price.is_some() {
            self.press(TillKey::Clear)?;
            self.advance(200)?;
            self.press(TillKey::Delete)?;
            self.advance(3_500)?;
        }
        for index in 0..self.cards.cards().len() {
            self.tap(index)?;
            self.advance(5_000)?;
        }
        ensure!(
            self.books.unresolved.is_empty(),
            "after tapping every card, intents {:?} are still unresolved",
            self.books.unresolved
        );
        ensure!(
            self.snapshot()?.pending.is_empty(),
            "after tapping every card, the snapshot still lists pending sales"
        );
        for (initial, now) in self.initial.iter().zip(self.cards.cards()) {
            let taken = initial
                .balance
                .checked_sub(now.balance)
                .ok_or("a card gained money")?;
            let committed = self.books.committed(now.uid);
            // Only a sale the till itself gave up on (in doubt, for the server) may have taken
            // money without a commit; without one the books balance exactly.
            let in_doubt = self.in_doubt_landed(now.uid)?;
            ensure!(
                taken == committed.checked_add(in_doubt).ok_or("overflow")?,
                "the books do not balance for {}: ¥{taken} taken from the card, ¥{committed} committed, ¥{in_doubt} in doubt",
                now.name
            );
            if !in_doubt.is_zero() {
                self.stats.in_doubt_landed += 1;
            }
        }
        self.check_ledger()?;
        self.check_no_code_on_disk()
    }

    // ----- primitive inputs --------------------------------------------------------------------

    pub(crate) fn press(&mut self, key: TillKey) -> Result<(), String> {
        self.input(Input::Key(key))
    }

    fn type_text(&mut self, text: &str) -> Result<(), String> {
        for (i, c) in text.chars().enumerate() {
            if i > 0 {
                self.gap()?;
            }
            let key = match c {
                '.' => TillKey::Dot,
                c => TillKey::Digit(c.to_digit(10).ok_or("only digits and '.' are typed")? as u8),
            };
            self.press(key)?;
        }
        Ok(())
    }

    /// The pause between two keys of one gesture.
    fn gap(&mut self) -> Result<(), String> {
        let ms = self.rng.between(60, 350);
        self.advance(ms)
    }

    pub(crate) fn tap(&mut self, index: usize) -> Result<(), String> {
        let read = self.cards.tap(index).ok_or("no such simulated card")?;
        self.input(Input::Card(read))
    }

    /// Who pays the next sale: in a crowd, the next student in the queue (so a student whose
    /// card was pulled comes back only after the whole queue); otherwise any card.
    fn next_payer(&mut self) -> usize {
        let count = self.cards.cards().len() as u64;
        if count > DEFAULT_CARD_COUNT && self.rng.chance(85) {
            self.next_student += 1;
            (DEFAULT_CARD_COUNT + self.next_student % (count - DEFAULT_CARD_COUNT)) as usize
        } else {
            self.rng.weighted(CARD_WEIGHTS)
        }
    }

    fn pick_card(&mut self) -> usize {
        let count = self.cards.cards().len() as u64;
        if count > DEFAULT_CARD_COUNT && self.rng.chance(85) {
            self.rng.between(DEFAULT_CARD_COUNT, count - 1) as usize
        } else {
            self.rng.weighted(CARD_WEIGHTS)
        }
    }

    fn arm_fault(&mut self) {
        // A crowd pulls cards away; a clean refusal would only abort the sale.
        // (pulled-before-write is a clean refusal on the real driver: the card leaves unpaid.)
        let faults: &[WriteFault] = if self.crowd {
            &[
                WriteFault::PulledAfterCommand,
                WriteFault::PulledAfterWrite,
                WriteFault::HalfWritten,
                WriteFault::DataNak,
            ]
        } else {
            &WriteFault::ALL
        };
        let fault = self.rng.pick(faults);
        self.cards.arm_fault(fault);
        self.stats.faults_armed += 1;
        self.note(format!("fault armed: {fault:?}"));
    }

    /// Moves both clocks forward by `ms`, firing every timer that falls due on the way.
    /// Messages on the network arrive on the way (each an input of its own).
    pub(crate) fn advance(&mut self, ms: u64) -> Result<(), String> {
        let target = self.mono_ms + ms;
        // Pending orders are asked about every 30 s in the background, for as long as it takes.
        let firings = MAX_TIMER_FIRINGS_PER_WAIT + (ms / MS_PER_TIMER_FIRING) as usize;
        for _ in 0..firings {
            let now = Now {
                wall: self.wall,
                mono_ms: self.mono_ms,
            };
            let arrival = self.campus.next_arrival().filter(|&t| t <= target);
            let next = self.runtime()?.next_deadline_mono(now);
            if let Some(arrival) = arrival.filter(|&a| next.is_none_or(|n| a < n)) {
                self.step_to(arrival.max(self.mono_ms));
                self.deliver_arrived()?;
                continue;
            }
            let Some(next) = next.filter(|&t| t <= target) else {
                self.step_to(target.max(self.mono_ms));
                return self.input(Input::Tick);
            };
            self.step_to(next.max(self.mono_ms));
            self.input(Input::Tick)?;
        }
        Err(format!(
            "more than {firings} timer firings and arrivals in one wait of {ms} ms"
        ))
    }

    fn step_to(&mut self, mono_ms: u64) {
        let delta = mono_ms.saturating_sub(self.mono_ms);
        self.mono_ms = mono_ms;
        self.wall = self.wall.saturating_add_millis(delta);
    }

    /// Feeds one input to the till and checks every invariant afterwards; then the answers
    /// the network gives at once (each checked the same way).
    pub(crate) fn input(&mut self, input: Input) -> Result<(), String> {
        let mut cut = self.input_one(input)?;
        let mut fed = 0;
        loop {
            if cut {
                self.restart(false)?;
            }
            let Some(answer) = self.campus.immediate.pop_front() else {
                return Ok(());
            };
            fed += 1;
            ensure!(
                fed <= MAX_ANSWERS_PER_INPUT,
                "the till asked the campus more than {MAX_ANSWERS_PER_INPUT} times for one input"
            );
            cut = self.input_one(answer)?;
        }
    }

    /// One input and the checks; its order requests go onto the network. True: an armed
    /// [`OrderCut`] fired (the caller cuts the power).
    fn input_one(&mut self, input: Input) -> Result<bool, String> {
        let is_tick = input == Input::Tick;
        let label = self.describe_input(&input);
        self.note(label);
        self.stats.inputs += 1;
        let now = self.now();
        let cards_before = self.cards.cards().to_vec();
        let fault_before = self.cards.armed_fault();
        let unresolved_before = self.books.unresolved.clone();
        let first_new = self.books.next_seq();
        let cut = self.rng.chance(CUT_PERCENT).then(|| {
            self.rng
                .pick(&[CutPoint::BeforeWrite, CutPoint::AfterWrite])
        });
        let runtime = self.runtime.as_mut().ok_or("the till is not running")?;
        let clock_day = local_time(self.wall, self.config.utc_offset_minutes).day;
        let today_before = (clock_day, runtime.till().snapshot().day_tally(clock_day));
        let mut reader = Recorder {
            cards: &mut self.cards,
            writes: Vec::new(),
            cut,
        };
        let handled = catch_unwind(AssertUnwindSafe(|| runtime.handle(input, now, &mut reader)));
        let writes = reader.writes;
        if fault_before.is_some() && self.cards.armed_fault().is_none() {
            self.stats.faults_fired += 1;
        }
        let outputs = match handled {
            Ok(Ok(outputs)) => outputs,
            Ok(Err(e)) => return Err(format!("handle failed: {e}")),
            Err(payload) if payload.is::<PowerCut>() => {
                self.after_power_cut(cut, &writes, &cards_before, &unresolved_before, first_new)?;
                return Ok(false);
            }
            Err(payload) => std::panic::resume_unwind(payload),
        };
        self.check_journal(&outputs)?;
        self.check_card_writes(&writes, &unresolved_before, first_new)?;
        self.check_card_changes(&cards_before)?;
        self.check_money()?;
        self.check_snapshot(today_before)?;
        self.check_displays(&outputs, first_new)?;
        if is_tick {
            // (An answer fed after it may set a deadline that has passed: the next tick's.)
            let (wall_deadline, mono_deadline) = self.runtime()?.deadlines();
            ensure!(
                wall_deadline.is_none_or(|d| d > self.wall)
                    && mono_deadline.is_none_or(|d| d > self.mono_ms),
                "a timer stays due after a tick: {:?}",
                (wall_deadline, mono_deadline)
            );
        }
        let calls: Vec<OrderCall> = outputs
            .into_iter()
            .filter_map(|output| match output {
                Output::Order(call) => Some(call),
                _ => None,
            })
            .collect();
        if calls.is_empty() {
            return Ok(false);
        }
        for call in &calls {
            self.check_order_call(call)?;
        }
        match self.order_cut.take() {
            None => {
                for call in calls {
                    self.route_order(call)?;
                }
                Ok(false)
            }
            Some(cut) => {
                self.count_order_cut(cut, &calls);
                if let OrderCut::Unanswered = cut {
                    for call in &calls {
                        self.campus_acts_unanswered(call)?;
                    }
                }
                Ok(true)
            }
        }
    }
}
