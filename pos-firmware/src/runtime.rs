//! The driver loop around the pure core: feeds it keys (through the keymap's combo detector),
//! card reads, scanned codes and time; carries out its effects in order (journal appends made
//! durable before anything else, card writes, journal look-ups, beeps, order requests handed on
//! for the host to route); and reports what the outside world should see. Every front end (the
//! terminal simulator, the headless script and the device) drives it through the one
//! [`crate::host::TillHost`], so they behave the same.
//!
//! A full data directory (no space left, quota reached) is not a broken journal: the runtime
//! stops selling, shows 存储已满 instead of the till's screens and logs an ALARM with the OS
//! error; it checks for space again on keys and ticks (every [`STORAGE_RETRY_MS`]) and, once there
//! is room, stops with [`RuntimeError::SpaceBack`] so the till restarts from its durable journal,
//! as after any failed append (docs/journal.md, "A full disk").

use keymap::{ComboDetector, TillKey};
use shared::pay::{OrderCall, OrderId, OrderResult};
use shared::record::{JournalRecord, RecordBody};
use shared::{Fen, Seq, UnixMillis};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::core::card::{
    CardFacts, CardHistory, CardRead, CardWrite, CardWriteOutcome, IssueOutcome,
};
use crate::core::config::TillConfig;
use crate::core::offline::UnsentSummary;
use crate::core::{text, Beep, BrowseDirection, Displays, Effect, LinkStatus, Screen, Till};
use crate::core::{CUSTOMER_LINES, MERCHANT_LINES};
use crate::journal::{Direction, Journal, JournalError};
use crate::link::{Downlink, DownlinkAnswer, LinkPeer};

/// The card reader as the runtime needs it: write the card that is on the reader, or format
/// the blank card on it as a campus wallet.
pub trait CardWriter {
    fn write_card(&mut self, write: &CardWrite) -> CardWriteOutcome;
    fn issue_card(&mut self) -> IssueOutcome;
    /// A failure of the writer's own storage during the last write or issue, handed out once.
    /// Only the simulator has one (its cards live in a file in the data directory): a card it
    /// could not keep is reported as a failed write, and this says why.
    fn take_storage_error(&mut self) -> Option<std::io::Error> {
        None
    }
}

/// How often a till stopped by a full data directory checks for space again (on a key or tick,
/// monotonic milliseconds).
pub const STORAGE_RETRY_MS: u64 = 5_000;
/// The room a full data directory must have again before the till restarts: this many bytes are
/// written to [`STORAGE_PROBE_FILE`] (synced, then removed). A sale grows the journal by about
/// 1.3 KB, sled extends its log in larger steps and the simulator's cards file is about 20 KB.
pub const STORAGE_PROBE_BYTES: usize = 256 * 1024;
/// The probe file's name in the data directory.
pub const STORAGE_PROBE_FILE: &str = ".storage-probe";

/// An instant as the runtime needs it: wall time for the core and the journal, a monotonic
/// count for key-combo timing (which must not jump with the wall clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub wall: UnixMillis,
    pub mono_ms: u64,
}

/// Something from the outside world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(TillKey),
    Card(CardRead),
    Code(String),
    /// Nothing happened but time passed (timers).
    Tick,
    /// The sync daemon connected, disconnected or reported its broker, or the upload watermark
    /// moved.
    Link(LinkUpdate),
    /// A downlink message from the campus server, to apply and journal.
    Downlink(Downlink),
    /// The campus server's answer about a code-payment order (through the daemon, or the
    /// simulator's own back end).
    OrderResult(OrderResult),
    /// An order request of [`Output::Order`] could not leave the till (no daemon, or the
    /// daemon has no broker).
    OrderNotSent(OrderId),
}

/// What changed on the link to the sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkUpdate {
    /// The daemon connected, disconnected or reported its broker: the status line shows it.
    Peer(LinkPeer),
    /// The daemon's acks moved the upload watermark: the runtime reads the unsent records again
    /// (count, oldest, sales total) for the status line and the offline limits. The daemon's
    /// state is not part of it, so it cannot be rolled back by a stale copy.
    Uploaded,
}

/// Something the outside world should see or hear, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The displays changed (only sent when they did).
    Displays(Displays),
    Beep(Beep),
    /// A record became durable.
    Journaled(JournalRecord),
    /// The answer to an [`Input::Downlink`] (after its record became durable).
    Downlink(DownlinkAnswer),
    /// An order request for the campus server, after every record before it became durable.
    /// Whoever routes it answers with [`Input::OrderResult`] or [`Input::OrderNotSent`]. A
    /// submit carries the payment code in clear: never log it (its `Debug` shows the hint).
    Order(OrderCall),
}

/// Why the till must stop selling.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Config(#[from] crate::core::config::ConfigError),
    /// The simulator's cards file failed for another reason than a full disk.
    #[error("the card store failed: {0}")]
    CardStore(std::io::Error),
    /// The data directory had filled up ([`TillRuntime::storage_full`]) and has room again:
    /// the till restarts to resume selling from what its journal made durable.
    #[error(
        "存储空间已恢复 / storage has room again after: {0}; restart the till to resume selling"
    )]
    SpaceBack(String),
}

/// Selling stopped because the data directory is full.
#[derive(Debug, Clone)]
struct StorageFull {
    /// The failure, with the OS error (shown in the log, and in [`RuntimeError::SpaceBack`]).
    error: String,
    /// When to check for space again (monotonic ms).
    next_check_ms: u64,
}

impl StorageFull {
    /// Why a downlink is refused while the data directory is full.
    fn refusal(&self) -> String {
        format!("storage full: {}", self.error)
    }
}

/// The till with its keymap and journal, driven by inputs.
pub struct TillRuntime {
    till: Till,
    keys: ComboDetector,
    journal: Journal,
    shown: Option<Displays>,
    /// The daemon's state, once a link server runs (`None`: no link, nothing shown).
    link: Option<LinkPeer>,
    /// The oldest unsent record's time, cached per watermark: (first unsent seq, its time).
    oldest_unsent: Option<(Option<Seq>, Option<UnixMillis>)>,
    /// The committed sales among the unsent records, kept incrementally: the sum covers the
    /// records after the first seq up to and including the second.
    unsent_sales: Option<(Option<Seq>, Option<Seq>, Fen)>,
    /// What is unsent, as counted after the last input: the core gets it with a tap's facts.
    unsent: UnsentSummary,
    /// The data directory (the journal's), checked for space while [`TillRuntime::storage_full`].
    dir: PathBuf,
    /// Set when a durable write found the data directory full: nothing is sold any more.
    storage_full: Option<StorageFull>,
}

impl TillRuntime {
    /// Opens the journal in `journal_dir` and starts the till from its snapshot.
    pub fn open(
        journal_dir: &Path,
        mut config: TillConfig,
        now: Now,
    ) -> Result<TillRuntime, RuntimeError> {
        config.validate()?;
        // Retention at a safe moment: before the first sale and before the link gets a reader.
        let (journal, kept) =
            Journal::open(journal_dir)?.maintain(now.wall, config.journal_retention_days)?;
        if kept.pruned > 0 || kept.compacted {
            tracing::info!(
                pruned = kept.pruned,
                compacted = kept.compacted,
                "journal maintenance at start-up"
            );
        }
        if let (None, Some(master)) = (&config.qr_key, config.demo_qr_master) {
            let terminal = journal.terminal_id();
            config.qr_key = Some(shared::qrpay::TerminalQrKey::derive(&master, terminal));
        }
        let till = Till::new(
            config,
            journal.terminal_id(),
            journal.snapshot().clone(),
            now.wall,
        )
        .with_blacklist(journal.blacklist());
        Ok(TillRuntime {
            till,
            keys: ComboDetector::new(),
            journal,
            shown: None,
            link: None,
            oldest_unsent: None,
            unsent_sales: None,
            unsent: UnsentSummary::default(),
            dir: journal_dir.to_path_buf(),
            storage_full: None,
        })
    }

    pub fn till(&self) -> &Till {
        &self.till
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Says a link server runs: from now on the status line shows the link and the unsent count.
    pub fn enable_link(&mut self, now: Now) {
        if self.link.is_none() {
            self.link = Some(LinkPeer::default());
            self.refresh_link_status(now);
        }
    }

    /// The daemon as the link last reported it (`None` until a link server runs).
    pub fn link_peer(&self) -> Option<LinkPeer> {
        self.link
    }

    /// When the runtime next needs a [`Input::Tick`], as (wall deadline of the core, monotonic
    /// deadline of the keymap).
    pub fn deadlines(&self) -> (Option<UnixMillis>, Option<u64>) {
        (self.till.next_deadline(), self.keys.deadline_ms())
    }

    /// The earliest of both deadlines, on the monotonic clock of `now` (the core's wall-clock
    /// deadline is converted by its distance from `now.wall`). Front ends that run a clock of
    /// their own sleep until this and then feed [`Input::Tick`].
    pub fn next_deadline_mono(&self, now: Now) -> Option<u64> {
        let (wall, mono) = self.deadlines();
        let wall_in_mono = wall.map(|d| now.mono_ms.saturating_add(d.millis_since(now.wall)));
        [wall_in_mono, mono].into_iter().flatten().min()
    }

    /// Whether a deadline of the core or of the keymap has been reached at `now` (the front end
    /// then feeds [`Input::Tick`]).
    pub fn tick_due(&self, now: Now) -> bool {
        let (wall, mono) = self.deadlines();
        wall.is_some_and(|d| d <= now.wall) || mono.is_some_and(|d| d <= now.mono_ms)
    }

    /// Whether the keymap is holding a started combo (Clear or F2 pressed, second key awaited).
    pub fn combo_armed(&self) -> bool {
        self.keys.is_armed()
    }

    /// Feeds one input and carries out everything it causes. An error means the journal cannot
    /// be trusted: the caller must stop selling and show the error.
    pub fn handle(
        &mut self,
        input: Input,
        now: Now,
        reader: &mut dyn CardWriter,
    ) -> Result<Vec<Output>, RuntimeError> {
        let mut outputs = Vec::new();
        if self.storage_full.is_some() {
            return self.handle_while_full(input, now, outputs);
        }
        match input {
            Input::Key(key) => {
                for command in self.keys.press(key, now.mono_ms) {
                    if self.storage_full.is_some() {
                        break;
                    }
                    self.till.handle_command(command, now.wall);
                    self.run_effects(now, reader, &mut outputs)?;
                }
            }
            Input::Card(read) => self.till.handle_card(read, now.wall),
            Input::Code(code) => self.till.handle_code(&code, now.wall),
            Input::Tick => {
                for command in self.keys.tick(now.mono_ms) {
                    if self.storage_full.is_some() {
                        break;
                    }
                    self.till.handle_command(command, now.wall);
                    self.run_effects(now, reader, &mut outputs)?;
                }
                if self.storage_full.is_none() {
                    self.till.handle_tick(now.wall);
                }
            }
            Input::Link(LinkUpdate::Peer(peer)) => self.link = Some(peer),
            // The unsent summary is read again below, as after every input.
            Input::Link(LinkUpdate::Uploaded) => {}
            Input::Downlink(downlink) => {
                let kind = downlink.kind();
                let result = match downlink {
                    Downlink::Config(config) => self.till.handle_campus_config(config, now.wall),
                    Downlink::Blacklist(list) => self.till.handle_blacklist(list, now.wall),
                    Downlink::ServerTime(server) => self
                        .till
                        .handle_server_time(server, now.wall)
                        .map(|_| u64::try_from(server.0).unwrap_or(0)),
                };
                self.run_effects(now, reader, &mut outputs)?;
                // Applied means durable: a record the full disk refused is not applied.
                let result = match &self.storage_full {
                    Some(full) => Err(full.refusal()),
                    None => result,
                };
                outputs.push(Output::Downlink(DownlinkAnswer { kind, result }));
            }
            Input::OrderResult(result) => self.till.handle_order_result(result, now.wall),
            Input::OrderNotSent(order) => self.till.handle_order_not_sent(order, now.wall),
        }
        self.run_effects(now, reader, &mut outputs)?;
        if self.storage_full.is_none() {
            self.refresh_link_status(now);
            // The link's state may make the core act at once (orders waiting for the route to
            // come back): in this input, not at the next one.
            self.run_effects(now, reader, &mut outputs)?;
        }
        // Drawn only now, after every effect (and so every journal append) has run.
        self.refresh(&mut outputs);
        Ok(outputs)
    }

    /// The displays as they are now (e.g. for the first frame).
    pub fn displays(&self) -> Displays {
        match &self.storage_full {
            Some(_) => storage_full_displays(self.till.config().lang),
            None => self.till.displays(),
        }
    }

    /// Why selling stopped on a full data directory (the error with the OS's words), if it did.
    pub fn storage_full(&self) -> Option<&str> {
        self.storage_full.as_ref().map(|full| full.error.as_str())
    }

    /// An input while the data directory is full: nothing reaches the core (no sale, no card
    /// write, no record); the link's state is kept, a downlink is refused (the daemon resends
    /// it later), and a due check for space ends the run with [`RuntimeError::SpaceBack`].
    fn handle_while_full(
        &mut self,
        input: Input,
        now: Now,
        mut outputs: Vec<Output>,
    ) -> Result<Vec<Output>, RuntimeError> {
        let Some(full) = self.storage_full.clone() else {
            return Ok(outputs);
        };
        match input {
            Input::Link(LinkUpdate::Peer(peer)) => self.link = Some(peer),
            Input::Link(LinkUpdate::Uploaded) => {}
            Input::Downlink(downlink) => outputs.push(Output::Downlink(DownlinkAnswer {
                kind: downlink.kind(),
                result: Err(full.refusal()),
            })),
            // Nothing can be journaled: the order stays open in the journal and is queried again
            // at the restart that follows.
            Input::OrderResult(result) => tracing::warn!(
                order = %result.order,
                "an order result while storage is full: not applied (queried again at restart)"
            ),
            Input::OrderNotSent(_) => {}
            Input::Key(_) | Input::Card(_) | Input::Code(_) | Input::Tick => {
                if now.mono_ms >= full.next_check_ms {
                    match probe_space(&self.dir) {
                        Ok(()) => {
                            tracing::warn!(dir = %self.dir.display(), "storage has room again");
                            return Err(RuntimeError::SpaceBack(full.error));
                        }
                        Err(e) => {
                            tracing::debug!(dir = %self.dir.display(), error = %e, "still no room");
                            if let Some(full) = &mut self.storage_full {
                                full.next_check_ms = now.mono_ms.saturating_add(STORAGE_RETRY_MS);
                            }
                        }
                    }
                }
            }
        }
        self.refresh(&mut outputs);
        Ok(outputs)
    }

    /// A durable write failed: a full data directory stops selling (kept running, see
    /// [`TillRuntime::storage_full`]); anything else is fatal.
    fn durable_write_failed(&mut self, error: JournalError, now: Now) -> Result<(), RuntimeError> {
        if !error.is_storage_full() {
            return Err(error.into());
        }
        self.stop_for_full_storage(error.to_string(), now);
        Ok(())
    }

    fn stop_for_full_storage(&mut self, error: String, now: Now) {
        tracing::error!(
            dir = %self.dir.display(),
            "ALARM storage full: {error}; selling stopped until space is freed (nothing after \
             the last durable record was written)"
        );
        self.storage_full = Some(StorageFull {
            error,
            next_check_ms: now.mono_ms.saturating_add(STORAGE_RETRY_MS),
        });
    }

    /// After a card write or issue: the writer's own storage may have failed (simulator only).
    fn check_card_store(
        &mut self,
        reader: &mut dyn CardWriter,
        now: Now,
    ) -> Result<(), RuntimeError> {
        match reader.take_storage_error() {
            None => Ok(()),
            Some(e) if crate::journal::is_storage_full(&e) => {
                self.stop_for_full_storage(format!("the card store: {e}"), now);
                Ok(())
            }
            Some(e) => Err(RuntimeError::CardStore(e)),
        }
    }

    /// The committed sales in the records after `after` up to and including `through`.
    fn sales_between(&self, after: Option<Seq>, through: Option<Seq>) -> Result<Fen, JournalError> {
        let Some(through) = through.filter(|t| Some(*t) > after) else {
            return Ok(Fen::ZERO);
        };
        let first = after.map_or(Some(Seq::FIRST), Seq::next).unwrap_or(through);
        let mut sum = Fen::ZERO;
        for record in self.journal.records_from(first) {
            let record = record?;
            if record.seq > through {
                break;
            }
            if let RecordBody::SaleCommitted(sale) = record.body {
                sum = sum.checked_add(sale.amount).unwrap_or(sum);
            }
        }
        Ok(sum)
    }

    /// The unsent committed sales' total, updated from what changed since the last call (each
    /// record is read at most twice: when it is appended and when it is acknowledged).
    fn unsent_sales_total(&mut self) -> Result<Fen, JournalError> {
        let watermark = self.journal.uploaded_through();
        let last = self.journal.last_seq();
        let (from, upto, sum) = match self.unsent_sales {
            Some((from, upto, sum)) if from <= watermark && watermark <= upto && upto <= last => {
                (from, upto, sum)
            }
            _ => (watermark, watermark, Fen::ZERO),
        };
        let acked = self.sales_between(from, watermark)?;
        let appended = self.sales_between(upto, last)?;
        let total = sum
            .checked_sub(acked)
            .and_then(|rest| rest.checked_add(appended))
            .unwrap_or(Fen::ZERO);
        self.unsent_sales = Some((watermark, last, total));
        Ok(total)
    }

    /// Counts what is not uploaded yet (the core gets it with a tap's facts) and, with a link, the
    /// link's state with the unsent count for the status line.
    fn refresh_link_status(&mut self, now: Now) {
        let unsent = self.journal.unsent_count();
        let first_unsent = if unsent == 0 {
            None
        } else {
            Some(
                self.journal
                    .uploaded_through()
                    .map_or(Some(Seq::FIRST), Seq::next),
            )
        };
        let oldest_unsent_at = match (first_unsent, self.oldest_unsent) {
            (None, _) => None,
            (Some(first), Some((cached, at))) if cached == first => at,
            (Some(first), _) => {
                // A read failure only costs the age on the status line; the count stays right.
                let at = self.journal.oldest_unsent_at().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read the oldest unsent record");
                    None
                });
                self.oldest_unsent = Some((first, at));
                at
            }
        };
        // A read failure only weakens the offline limit for this input; it is logged.
        let sales_total = self.unsent_sales_total().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot total the unsent sales");
            self.unsent_sales.map_or(Fen::ZERO, |(_, _, sum)| sum)
        });
        self.unsent = UnsentSummary {
            count: unsent,
            oldest_at: oldest_unsent_at,
            sales_total,
        };
        let Some(peer) = self.link else {
            return;
        };
        let status = LinkStatus {
            daemon_connected: peer.daemon_connected,
            broker: peer.broker,
            unsent,
            oldest_unsent_at,
        };
        if self.till.link_status() != Some(status) {
            self.till.handle_link_status(status, now.wall);
        }
    }

    fn refresh(&mut self, outputs: &mut Vec<Output>) {
        let displays = self.displays();
        if self.shown.as_ref() != Some(&displays) {
            self.shown = Some(displays.clone());
            outputs.push(Output::Displays(displays));
        }
    }

    fn run_effects(
        &mut self,
        now: Now,
        reader: &mut dyn CardWriter,
        outputs: &mut Vec<Output>,
    ) -> Result<(), RuntimeError> {
        // Once storage is full nothing more runs: the effects left (a card write after its intent
        // above all) stay queued and die with the process.
        while self.storage_full.is_none() {
            let Some(effect) = self.till.poll_effect() else {
                break;
            };
            match effect {
                Effect::Journal { record, snapshot } => {
                    if let Err(e) = self.journal.append(&record, &snapshot) {
                        return self.durable_write_failed(e, now);
                    }
                    outputs.push(Output::Journaled(record));
                }
                Effect::WriteCard(write) => {
                    // Show "charging, keep the card still" while the (slow) write runs.
                    self.refresh(outputs);
                    let outcome = reader.write_card(&write);
                    self.till.handle_card_written(outcome, now.wall);
                    self.check_card_store(reader, now)?;
                }
                Effect::LookUpCard { uid } => {
                    let history = CardHistory {
                        known_counter: self.journal.card_counter(&uid)?,
                        spent: self.journal.card_spent(&uid)?,
                    };
                    let unsent = self.unsent;
                    let facts = CardFacts { history, unsent };
                    self.till.handle_card_facts(facts, now.wall);
                }
                Effect::FindSale { from, direction } => {
                    let direction = match direction {
                        BrowseDirection::Older => Direction::Older,
                        BrowseDirection::Newer => Direction::Newer,
                    };
                    let found = self.journal.find(from, direction, |record| {
                        matches!(
                            record.body,
                            RecordBody::SaleCommitted(_)
                                | RecordBody::OrderPaid(_)
                                | RecordBody::OrderPaidAfterClose { .. }
                        )
                    })?;
                    self.till.handle_sale_found(found, now.wall);
                }
                Effect::IssueCard => {
                    self.refresh(outputs);
                    let outcome = reader.issue_card();
                    self.till.handle_card_issued(outcome, now.wall);
                    self.check_card_store(reader, now)?;
                }
                Effect::RememberCard { uid, counter } => {
                    if let Err(e) = self.journal.remember_card_counter(&uid, counter) {
                        return self.durable_write_failed(e, now);
                    }
                }
                Effect::CardSpent { uid, day, amount } => {
                    if let Err(e) = self.journal.add_card_spent(&uid, day, amount) {
                        return self.durable_write_failed(e, now);
                    }
                }
                Effect::Beep(beep) => outputs.push(Output::Beep(beep)),
                // Routed by the host (the link, the simulator's back end, or "not sent"); its
                // answer comes back as an input.
                Effect::Order(call) => outputs.push(Output::Order(call)),
                Effect::ReplaceBlacklist {
                    record,
                    snapshot,
                    list,
                } => {
                    if let Err(e) = self
                        .journal
                        .append_replacing_blacklist(&record, &snapshot, list)
                    {
                        return self.durable_write_failed(e, now);
                    }
                    outputs.push(Output::Journaled(record));
                }
            }
        }
        Ok(())
    }
}

/// What both displays show while the data directory is full.
fn storage_full_displays(lang: crate::core::config::Lang) -> Displays {
    Displays {
        merchant: Screen::new(text::storage_full(lang), MERCHANT_LINES),
        customer: Screen::new(text::storage_full_customer(lang), CUSTOMER_LINES),
        qr: None,
    }
}

/// Whether `dir` has [`STORAGE_PROBE_BYTES`] of room again: written, synced, removed.
fn probe_space(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(STORAGE_PROBE_FILE);
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&vec![0; STORAGE_PROBE_BYTES])?;
        file.sync_all()
    });
    // Removed whatever happened: a half-written probe must not keep the space it took.
    let removed = std::fs::remove_file(&path);
    written?;
    removed
}
