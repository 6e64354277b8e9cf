//! The driver loop around the pure core: feeds it keys (through the keymap's combo detector),
//! card reads, scanned codes and time; carries out its effects in order (journal appends made
//! durable before anything else, card writes, journal look-ups, beeps); and reports what the
//! outside world should see. The simulator (TUI and headless script) and the device front end (`device/`) all
//! drive the till through this one loop, so they behave the same.

use keymap::{ComboDetector, TillKey};
use shared::campus::{Blacklist, CampusConfig};
use shared::link::{BrokerLink, DownlinkKind};
use shared::record::{JournalRecord, RecordBody};
use shared::{Fen, Seq, UnixMillis};
use std::path::Path;

use crate::core::card::{CardHistory, CardRead, CardWrite, CardWriteOutcome, IssueOutcome};
use crate::core::config::TillConfig;
use crate::core::offline::UnsentSummary;
use crate::core::{Beep, BrowseDirection, Displays, Effect, LinkStatus, Till};
use crate::journal::{Direction, Journal, JournalError};

/// The card reader as the runtime needs it: write the card that is on the reader, or format
/// the blank card on it as a campus wallet.
pub trait CardWriter {
    fn write_card(&mut self, write: &CardWrite) -> CardWriteOutcome;
    fn issue_card(&mut self) -> IssueOutcome;
}

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
    /// The sync daemon connected, disconnected or reported its broker; or the upload watermark
    /// moved (the runtime reads the unsent count from the journal after every input).
    Link(LinkPeer),
    /// A downlink message from the campus server, to apply and journal.
    Downlink(Downlink),
}

/// The sync daemon as the link server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkPeer {
    pub daemon_connected: bool,
    /// As the daemon last reported it (`None` before its first report or without a daemon).
    pub broker: Option<BrokerLink>,
}

/// What the campus server sent down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downlink {
    Config(CampusConfig),
    Blacklist(Blacklist),
    ServerTime(UnixMillis),
}

impl Downlink {
    pub fn kind(&self) -> DownlinkKind {
        match self {
            Downlink::Config(_) => DownlinkKind::Config,
            Downlink::Blacklist(_) => DownlinkKind::Blacklist,
            Downlink::ServerTime(_) => DownlinkKind::ServerTime,
        }
    }
}

/// The answer to a downlink, given once its record (if any) is durable: `Ok(version)` applied
/// (for server time, the server's clock in ms), `Err(reason)` rejected with nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownlinkAnswer {
    pub kind: DownlinkKind,
    pub result: Result<u64, String>,
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
}

/// Why the till must stop selling.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Config(#[from] crate::core::config::ConfigError),
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
}

impl TillRuntime {
    /// Opens the journal in `journal_dir` and starts the till from its snapshot.
    pub fn open(
        journal_dir: &Path,
        config: TillConfig,
        now: Now,
    ) -> Result<TillRuntime, RuntimeError> {
        config.validate()?;
        let journal = Journal::open(journal_dir)?;
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
        match input {
            Input::Key(key) => {
                for command in self.keys.press(key, now.mono_ms) {
                    self.till.handle_command(command, now.wall);
                    self.run_effects(now, reader, &mut outputs)?;
                }
            }
            Input::Card(read) => {
                let history = match &read {
                    CardRead::Card(card) => CardHistory {
                        known_counter: self.journal.card_counter(&card.uid)?,
                        spent: self.journal.card_spent(&card.uid)?,
                    },
                    CardRead::Unreadable(_) => CardHistory::default(),
                };
                self.till.handle_card(read, history, now.wall);
            }
            Input::Code(code) => self.till.handle_code(&code, now.wall),
            Input::Tick => {
                for command in self.keys.tick(now.mono_ms) {
                    self.till.handle_command(command, now.wall);
                    self.run_effects(now, reader, &mut outputs)?;
                }
                self.till.handle_tick(now.wall);
            }
            Input::Link(peer) => self.link = Some(peer),
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
                outputs.push(Output::Downlink(DownlinkAnswer { kind, result }));
            }
        }
        self.run_effects(now, reader, &mut outputs)?;
        self.refresh_link_status(now);
        // Drawn only now, after every effect (and so every journal append) has run.
        self.refresh(&mut outputs);
        Ok(outputs)
    }

    /// The displays as they are now (e.g. for the first frame).
    pub fn displays(&self) -> Displays {
        self.till.displays()
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

    /// Tells the core what is not uploaded yet (for the offline limits) and, with a link, the
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
        self.till.handle_unsent(UnsentSummary {
            count: unsent,
            oldest_at: oldest_unsent_at,
            sales_total,
        });
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
        let displays = self.till.displays();
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
        while let Some(effect) = self.till.poll_effect() {
            match effect {
                Effect::Journal { record, snapshot } => {
                    self.journal.append(&record, &snapshot)?;
                    outputs.push(Output::Journaled(record));
                }
                Effect::WriteCard(write) => {
                    // Show "charging, keep the card still" while the (slow) write runs.
                    self.refresh(outputs);
                    let outcome = reader.write_card(&write);
                    self.till.handle_card_written(outcome, now.wall);
                }
                Effect::FindSale { from, direction } => {
                    let direction = match direction {
                        BrowseDirection::Older => Direction::Older,
                        BrowseDirection::Newer => Direction::Newer,
                    };
                    let found = self.journal.find(from, direction, |record| {
                        matches!(record.body, RecordBody::SaleCommitted(_))
                    })?;
                    self.till.handle_sale_found(found, now.wall);
                }
                Effect::IssueCard => {
                    self.refresh(outputs);
                    let outcome = reader.issue_card();
                    self.till.handle_card_issued(outcome, now.wall);
                }
                Effect::RememberCard { uid, counter } => {
                    self.journal.remember_card_counter(&uid, counter)?;
                }
                Effect::CardSpent { uid, day, amount } => {
                    self.journal.add_card_spent(&uid, day, amount)?;
                }
                Effect::Beep(beep) => outputs.push(Output::Beep(beep)),
                Effect::ReplaceBlacklist {
                    record,
                    snapshot,
                    list,
                } => {
                    self.journal
                        .append_replacing_blacklist(&record, &snapshot, list)?;
                    outputs.push(Output::Journaled(record));
                }
            }
        }
        Ok(())
    }
}
