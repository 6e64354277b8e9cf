//! The daemon's decisions, without I/O (quinn-proto style): what to fetch from the till, what to
//! publish, when to resend, which server acks to forward, and which downlink messages to pass
//! on. The async driver (`daemon.rs`) feeds it events with the current time and carries out the
//! [`Action`]s it polls.
//!
//! The rules that protect money live here:
//! - the only resend source is the till's journal: after every broker (re)connect and on an ack
//!   timeout, everything after the till's durable watermark is fetched and published again
//!   (rumqttc's in-flight queue is never trusted across connections);
//! - only the campus server's application ack moves the watermark: it is forwarded to the till
//!   as `ToTill::Acked`;
//! - every till connection uploads in an [`UploadSession`] of its own; an ack naming another
//!   session is ignored, and one naming this session counts only up to what the server
//!   received in it; one beyond the till's journal (a till restored from an old backup re-uses
//!   seqs the server already holds) is an alarm, never progress and never passed on; an ack
//!   without a session (the first format, or forged) is counted and never progress;
//! - a server ack counts only for the till connection it arrived on, and only for records
//!   published on it: nothing of it is kept when the link drops, and one that arrives before
//!   the first publish of a connection is ignored (the till may come back restored from an old
//!   backup, its journal shorter and then growing past a stale ack with different records);
//!   the resend from the till's own watermark earns a fresh ack;
//! - at most `window_batches` batches are published and not yet acked;
//! - a configuration or blacklist older than the one held is dropped (and reported), never
//!   passed on.

use shared::campus::{Blacklist, CampusConfig};
use shared::link::{BrokerLink, DownlinkKind, ToDaemon, ToTill, UploadRecord};
use shared::mqtt::{
    UploadAck, UploadBatch, UploadSession, MAX_RECORDS_PER_BATCH, MAX_UPLOAD_BATCH_BYTES,
};
use shared::{Seq, TerminalId, UnixMillis};
use std::collections::VecDeque;

/// The default number of records asked for per fetch (and so per published batch).
pub const DEFAULT_BATCH_RECORDS: u32 = 500;
/// The default number of published batches that may wait for the server's ack at once.
pub const DEFAULT_WINDOW_BATCHES: usize = 4;
/// The default time the oldest unacked batch may wait before everything is resent.
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 10_000;
/// Payload bytes of one batch beyond the records' own bytes, per record (seq + length varints).
const BATCH_OVERHEAD_PER_RECORD_BYTES: usize = 16;

/// Tunables of the upload, all with named units.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub batch_records: u32,
    pub window_batches: usize,
    pub ack_timeout_ms: u64,
}

impl Default for UploadLimits {
    fn default() -> UploadLimits {
        UploadLimits {
            batch_records: DEFAULT_BATCH_RECORDS,
            window_batches: DEFAULT_WINDOW_BATCHES,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
        }
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this message to the till.
    ToTill(ToTill),
    /// Publish this batch (QoS 1) on the terminal's upload topic.
    Publish(UploadBatch),
}

/// Counters the daemon logs (and tests read from its log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadCounters {
    pub batches_published: u64,
    pub records_published: u64,
    /// Times everything after the watermark was sent again (reconnects and ack timeouts).
    pub resends: u64,
    pub ack_timeouts: u64,
    /// Server acks beyond the till's newest record: never forwarded.
    pub acks_beyond_journal: u64,
    pub acks_forwarded: u64,
    /// Server acks that arrived on a till connection before anything was published on it:
    /// ignored (they may answer a batch of an earlier connection).
    pub acks_before_publish: u64,
    /// Server acks answering another session than the current one: ignored.
    pub acks_other_session: u64,
    /// Server acks without a session (the first format, or forged): ignored, never progress.
    pub acks_without_session: u64,
    /// Reconnects of the same terminal whose journal ended before the last seq it had
    /// reported: restored from an older copy (the driver logs an ALARM).
    pub journal_rollbacks: u64,
}

/// What the till told us on this connection.
#[derive(Debug, Clone, Copy)]
struct TillView {
    uploaded_through: Option<Seq>,
    last_seq: Option<Seq>,
    /// The highest `Acked` sent on this connection (its `Watermark` answer may still be due).
    acked_sent: Option<Seq>,
    /// The highest ack beyond the journal reported as an alarm (once per value).
    beyond_sent: Option<Seq>,
    /// The highest seq published on this connection: an ack counts for at most this much.
    published_through: Option<Seq>,
}

/// A downlink message older than the one the daemon holds: not passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleDownlink {
    pub kind: DownlinkKind,
    /// The version held (and passed on to the till).
    pub held: u64,
    /// The version received.
    pub got: u64,
}

/// One published, not yet acked batch.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    last: Seq,
    sent_at_ms: u64,
}

/// The upload and downlink state machine of one daemon process.
#[derive(Debug)]
pub struct Uploader {
    limits: UploadLimits,
    terminal: Option<TerminalId>,
    till: Option<TillView>,
    broker_up: bool,
    window: VecDeque<InFlight>,
    /// The last seq fetched in the current round; the next fetch asks for records after it.
    fetched_through: Option<Seq>,
    fetch_outstanding: bool,
    /// The newest seq this terminal's till reported, over all its connections.
    newest_seen: Option<Seq>,
    /// The highest server ack received on the current till connection (within its journal);
    /// forgotten when the connection ends.
    best_ack: Option<Seq>,
    config: Option<CampusConfig>,
    blacklist: Option<Blacklist>,
    actions: VecDeque<Action>,
    counters: UploadCounters,
    /// Sessions are `session_seed`, `session_seed + 1`, …: one per till connection.
    session_seed: u64,
    sessions_started: u64,
    /// The session of the current till connection (`None`: no till).
    session: Option<UploadSession>,
}

fn max_seq(a: Option<Seq>, b: Option<Seq>) -> Option<Seq> {
    a.max(b)
}

impl Uploader {
    /// `session_seed` must differ from one daemon start to the next (the driver takes the
    /// clock), so that no session is ever used twice for a terminal.
    pub fn new(limits: UploadLimits, session_seed: u64) -> Uploader {
        let batch_records = limits.batch_records.clamp(1, MAX_RECORDS_PER_BATCH as u32);
        Uploader {
            limits: UploadLimits {
                batch_records,
                window_batches: limits.window_batches.max(1),
                ack_timeout_ms: limits.ack_timeout_ms.max(1),
            },
            terminal: None,
            till: None,
            broker_up: false,
            window: VecDeque::new(),
            fetched_through: None,
            fetch_outstanding: false,
            newest_seen: None,
            best_ack: None,
            config: None,
            blacklist: None,
            actions: VecDeque::new(),
            counters: UploadCounters::default(),
            session_seed,
            sessions_started: 0,
            session: None,
        }
    }

    /// The upload session of the current till connection.
    pub fn session(&self) -> Option<UploadSession> {
        self.session
    }

    pub fn terminal(&self) -> Option<TerminalId> {
        self.terminal
    }

    pub fn counters(&self) -> UploadCounters {
        self.counters
    }

    /// The till's watermark as last reported.
    pub fn uploaded_through(&self) -> Option<Seq> {
        self.till.and_then(|t| t.uploaded_through)
    }

    /// The next thing to do, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Uploader::handle_tick`] must be called next (the oldest batch's ack deadline).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.window
            .front()
            .map(|b| b.sent_at_ms.saturating_add(self.limits.ack_timeout_ms))
    }

    /// The till answered our hello. A different terminal than before (a new journal) forgets
    /// everything about the old one; the driver must then reconnect the broker under the new
    /// identity ([`Uploader::terminal`] changed).
    pub fn handle_till_welcome(
        &mut self,
        terminal: TerminalId,
        uploaded_through: Option<Seq>,
        last_seq: Option<Seq>,
    ) {
        if self.terminal != Some(terminal) {
            self.terminal = Some(terminal);
            self.newest_seen = None;
            self.broker_up = false;
        }
        // Seqs are never reused and only durable ones are reported: a journal that ends
        // before what it reported earlier was restored from an older copy.
        if last_seq < self.newest_seen {
            self.counters.journal_rollbacks += 1;
        }
        self.newest_seen = max_seq(self.newest_seen, last_seq);
        // A new connection: no ack from before it counts (see `handle_till_lost`), and its
        // batches go in a session of their own.
        self.best_ack = None;
        self.session = Some(UploadSession(
            self.session_seed.wrapping_add(self.sessions_started),
        ));
        self.sessions_started += 1;
        self.till = Some(TillView {
            uploaded_through,
            last_seq,
            acked_sent: None,
            beyond_sent: None,
            published_through: None,
        });
        self.fetch_outstanding = false;
        self.push_till(ToTill::Broker(if self.broker_up {
            BrokerLink::Up
        } else {
            BrokerLink::Down
        }));
        if let Some(config) = self.config.clone() {
            self.push_till(ToTill::Config(config));
        }
        if let Some(list) = self.blacklist.clone() {
            self.push_till(ToTill::Blacklist(list));
        }
        self.restart_round();
        self.fill();
    }

    /// The till connection is gone (till restarted or crashed). Every server ack is forgotten:
    /// the till that comes back may be a restored old copy whose journal is shorter and then
    /// grows past a remembered ack with records the server never got (forwarding it would mark
    /// them uploaded). Nothing is lost by forgetting: the reconnect resends from the till's
    /// watermark and the server acks again what it holds.
    pub fn handle_till_lost(&mut self) {
        self.till = None;
        self.best_ack = None;
        self.session = None;
        self.fetch_outstanding = false;
        self.window.clear();
        self.fetched_through = None;
        self.actions.retain(|a| !matches!(a, Action::ToTill(_)));
    }

    /// A message from the till.
    pub fn handle_till_message(&mut self, message: ToDaemon, now_ms: u64) {
        match message {
            ToDaemon::Records { records } => self.handle_records(records, now_ms),
            ToDaemon::Watermark { uploaded_through } => {
                if let Some(till) = self.till.as_mut() {
                    till.uploaded_through = max_seq(till.uploaded_through, uploaded_through);
                }
            }
            ToDaemon::Appended { last_seq } => {
                if let Some(till) = self.till.as_mut() {
                    till.last_seq = max_seq(till.last_seq, Some(last_seq));
                    self.newest_seen = max_seq(self.newest_seen, Some(last_seq));
                }
                self.fill();
            }
            // Welcome is handled by the driver's handshake; Applied, Rejected and Refused are
            // logged by the driver and change nothing here; orders are relayed by the driver
            // (`daemon.rs`), not uploaded.
            ToDaemon::Welcome { .. }
            | ToDaemon::Order(_)
            | ToDaemon::Applied { .. }
            | ToDaemon::Rejected { .. }
            | ToDaemon::Refused { .. } => {}
        }
    }

    /// Connected and subscribed to the broker: everything after the watermark goes again.
    pub fn handle_broker_up(&mut self) {
        self.broker_up = true;
        self.push_till(ToTill::Broker(BrokerLink::Up));
        self.restart_round();
        self.fill();
    }

    /// The broker connection is gone; what was in flight is forgotten (it is in the journal).
    pub fn handle_broker_down(&mut self) {
        if self.broker_up {
            self.push_till(ToTill::Broker(BrokerLink::Down));
        }
        self.broker_up = false;
        self.window.clear();
        self.actions.retain(|a| !matches!(a, Action::Publish(_)));
    }

    /// The campus server's application ack. Only an ack of the current session is progress;
    /// one of another session or without a session (the first format, or a forgery on the ack
    /// topic) is counted and never moves the watermark (the driver logs it).
    pub fn handle_ack(&mut self, ack: UploadAck) {
        if Some(ack.terminal) != self.terminal {
            return;
        }
        let Some(answers) = ack.answers else {
            // The first format: it cannot say which batches it answers, so anyone able to
            // publish on the ack topic could mark records uploaded that no server stored.
            self.counters.acks_without_session += 1;
            return;
        };
        if Some(answers.session) != self.session {
            // Late, queued across a restart, or from before the till came back: it answers
            // batches of another session and proves nothing about this one.
            self.counters.acks_other_session += 1;
            return;
        }
        let Some(through) = ack.stored_through else {
            return;
        };
        // No till connected: the ack is dropped, not kept (see `handle_till_lost`).
        let Some(till) = self.till.as_mut() else {
            return;
        };
        // An ack of this session: progress up to what the server received in it (and stores
        // in the same version: its stored-through never passes a conflict). Anything it holds
        // beyond came from an earlier session — a till restored from an older copy writes
        // those seqs again, differently —: an ALARM for the driver, never passed to the till.
        if till.last_seq.is_none_or(|last| through > last) && till.beyond_sent < Some(through) {
            till.beyond_sent = Some(through);
            self.counters.acks_beyond_journal += 1;
        }
        // An ack is progress only for records published on this connection, and only once
        // something was.
        let Some(published) = till.published_through else {
            self.counters.acks_before_publish += 1;
            return;
        };
        let progress = through.min(answers.received_through).min(published);
        self.progress(progress);
    }

    /// The server durably holds this till's records through `through`, all published on the
    /// current connection.
    fn progress(&mut self, through: Seq) {
        self.best_ack = max_seq(self.best_ack, Some(through));
        while self.window.front().is_some_and(|b| b.last <= through) {
            self.window.pop_front();
        }
        // Records the server already holds need not be fetched again in this round.
        if self.fetched_through < Some(through) {
            self.fetched_through = Some(through);
            self.window.clear();
        }
        self.forward_best_ack();
        self.fill();
    }

    /// A new campus configuration from the broker; one older than the one held is dropped
    /// (the driver logs it).
    pub fn handle_config(&mut self, config: CampusConfig) -> Result<(), StaleDownlink> {
        if let Some(held) = self.config.as_ref().filter(|c| c.version > config.version) {
            return Err(StaleDownlink {
                kind: DownlinkKind::Config,
                held: held.version,
                got: config.version,
            });
        }
        self.config = Some(config.clone());
        self.push_till(ToTill::Config(config));
        Ok(())
    }

    /// A new blacklist from the broker; one older than the one held is dropped (the driver
    /// logs it).
    pub fn handle_blacklist(&mut self, list: Blacklist) -> Result<(), StaleDownlink> {
        if let Some(held) = self
            .blacklist
            .as_ref()
            .filter(|b| b.version() > list.version())
        {
            return Err(StaleDownlink {
                kind: DownlinkKind::Blacklist,
                held: held.version(),
                got: list.version(),
            });
        }
        self.blacklist = Some(list.clone());
        self.push_till(ToTill::Blacklist(list));
        Ok(())
    }

    /// The server's clock: passed on at once, never kept (an old time is a wrong time).
    pub fn handle_server_time(&mut self, server: UnixMillis) {
        self.push_till(ToTill::ServerTime { server });
    }

    /// Time passed: an unacked batch past its deadline resends everything after the watermark.
    pub fn handle_tick(&mut self, now_ms: u64) {
        if self
            .next_deadline_ms()
            .is_some_and(|deadline| deadline <= now_ms)
        {
            self.counters.ack_timeouts += 1;
            self.restart_round();
            self.fill();
        }
    }

    fn push_till(&mut self, message: ToTill) {
        if self.till.is_some() {
            self.actions.push_back(Action::ToTill(message));
        }
    }

    fn forward_best_ack(&mut self) {
        let Some(till) = self.till.as_mut() else {
            return;
        };
        let Some(through) = self.best_ack else {
            return;
        };
        if till.last_seq.is_none_or(|last| through > last) {
            return;
        }
        if Some(through) > max_seq(till.uploaded_through, till.acked_sent) {
            till.acked_sent = Some(through);
            self.counters.acks_forwarded += 1;
            self.actions
                .push_back(Action::ToTill(ToTill::Acked { through }));
        }
    }

    /// Forget the window and fetch again from the till's durable watermark.
    fn restart_round(&mut self) {
        self.window.clear();
        self.actions.retain(|a| !matches!(a, Action::Publish(_)));
        self.fetched_through = self.till.and_then(|t| t.uploaded_through);
        if self.till.is_some() && self.broker_up {
            self.counters.resends += 1;
        }
    }

    /// Ask the till for more if the broker is up, the window has room and the journal has more.
    fn fill(&mut self) {
        let Some(till) = self.till else {
            return;
        };
        if !self.broker_up || self.fetch_outstanding {
            return;
        }
        if self.window.len() >= self.limits.window_batches {
            return;
        }
        if till.last_seq <= self.fetched_through {
            return;
        }
        self.fetch_outstanding = true;
        self.actions.push_back(Action::ToTill(ToTill::Fetch {
            after: self.fetched_through,
            max: self.limits.batch_records,
        }));
    }

    fn handle_records(&mut self, records: Vec<UploadRecord>, now_ms: u64) {
        self.fetch_outstanding = false;
        let (Some(terminal), Some(till)) = (self.terminal, self.till.as_mut()) else {
            return;
        };
        let expected_first = self.fetched_through.map_or(Some(Seq::FIRST), Seq::next);
        let contiguous = records
            .windows(2)
            .all(|pair| pair[0].seq.next() == Some(pair[1].seq));
        match records.first() {
            None => {
                // The till has nothing after `fetched_through`: our idea of its newest record
                // was ahead of it; wait for `Appended`.
                till.last_seq = self.fetched_through;
                return;
            }
            // An answer to a fetch made before a restart of the round: stale, drop it.
            Some(first) if Some(first.seq) != expected_first || !contiguous => {
                self.fill();
                return;
            }
            Some(_) => {}
        }
        if !self.broker_up {
            return;
        }
        let mut batch: Vec<UploadRecord> = Vec::new();
        let mut batch_bytes = 0usize;
        for record in records {
            till.last_seq = max_seq(till.last_seq, Some(record.seq));
            self.newest_seen = max_seq(self.newest_seen, Some(record.seq));
            let record_bytes = record.bytes.len() + BATCH_OVERHEAD_PER_RECORD_BYTES;
            if !batch.is_empty()
                && (batch.len() >= MAX_RECORDS_PER_BATCH
                    || batch_bytes + record_bytes > MAX_UPLOAD_BATCH_BYTES / 2)
            {
                Self::publish(
                    &mut self.actions,
                    &mut self.window,
                    &mut self.counters,
                    (terminal, self.session),
                    std::mem::take(&mut batch),
                    now_ms,
                );
                batch_bytes = 0;
            }
            batch_bytes += record_bytes;
            self.fetched_through = Some(record.seq);
            batch.push(record);
        }
        if !batch.is_empty() {
            Self::publish(
                &mut self.actions,
                &mut self.window,
                &mut self.counters,
                (terminal, self.session),
                batch,
                now_ms,
            );
        }
        // Every record of this answer went into a batch above.
        till.published_through = max_seq(till.published_through, self.fetched_through);
        self.fill();
    }

    fn publish(
        actions: &mut VecDeque<Action>,
        window: &mut VecDeque<InFlight>,
        counters: &mut UploadCounters,
        (terminal, session): (TerminalId, Option<UploadSession>),
        records: Vec<UploadRecord>,
        now_ms: u64,
    ) {
        let Some(last) = records.last().map(|r| r.seq) else {
            return;
        };
        counters.batches_published += 1;
        counters.records_published += records.len() as u64;
        window.push_back(InFlight {
            last,
            sent_at_ms: now_ms,
        });
        actions.push_back(Action::Publish(UploadBatch {
            terminal,
            session,
            records,
        }));
    }
}

#[cfg(test)]
mod tests;
