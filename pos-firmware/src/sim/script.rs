//! The headless simulator: runs the whole till (keymap, core, real journal, emulated cards read
//! and written through the real wallet and reader driver) from a script of keys, card taps,
//! scanned codes and time steps, on a virtual clock, and prints every display change, beep and
//! durable journal record as text. The same script always prints the same lines, so anyone can
//! replay a merchant's day and check it. Format: `docs/script.md`.
//!
//! This file is long because it is the script's one parser and dispatcher: every script line
//! kind is matched here, next to the runner state it changes; the pieces with logic of their own
//! are in `script/` (orders, the campus, the campus app, tests).

use chrono::{NaiveDateTime, TimeDelta};
use keymap::TillKey;
use shared::record::RecordBody;
use shared::UnixMillis;
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::calendar::local_time;
use crate::core::config::TillConfig;
use crate::core::Displays;
use crate::host::{HostOutput, TillHost};
use crate::link::LinkEvent;
// The text of screens and records is production code (the device prints it too); re-exported
// here for the simulator's other front ends.
pub use crate::present::{describe_record, screen_text};
use crate::runtime::{Input, LinkUpdate, Now, TillRuntime};
use crate::sim::cards::{PausePoint, SimCards, SimCardsError, WriteFault};
use orders::LocalCampus;
use shared::pay::OrderCall;

mod app;
mod campus;
pub mod orders;
pub mod qr_png;
pub use campus::state_text as campus_state_text;

/// Time between two keys of one `keys` line.
pub const KEY_GAP_MS: u64 = 100;
/// Where a script's clock starts unless `--start` or an `at` line says otherwise.
pub const DEFAULT_START: &str = "2026-11-23 11:30:00";
/// The longest a single `wait` may be (a guard against typos like `wait 99999h`).
pub const MAX_WAIT_MS: u64 = 30 * 24 * 3600 * 1000;
/// The longest a `wait-uploaded` or `wait-daemon` may wait, in real time.
pub const MAX_LINK_WAIT_MS: u64 = 10 * 60 * 1000;
/// The most sales one `sales` line may make.
pub const MAX_SALES_PER_LINE: u32 = 100_000;

/// What the live runner waits for: a script line (from a reader thread) or the link.
#[derive(Debug)]
pub enum ScriptEvent {
    Line(String),
    /// The script ended, or could not be read further at the line given (the message says why).
    End(Option<(usize, String)>),
    Link(LinkEvent),
}

/// Why a script stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("line {line}: {message}")]
    Parse { line: usize, message: String },
    /// The script itself could not be read at `line` (not UTF-8 text, a read error): bad input,
    /// not a failure of the till or of its output.
    #[error("line {line}: cannot read the script: {message}")]
    Input { line: usize, message: String },
    #[error("line {line}: expected {what} to contain \"{expected}\", but it shows:\n{actual}")]
    Expectation {
        line: usize,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("the till stopped: {0}")]
    Fatal(String),
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
}

/// Everything a script run needs besides its lines.
#[derive(Debug, Clone)]
pub struct ScriptSetup {
    pub data_dir: PathBuf,
    pub config: TillConfig,
    pub start: NaiveDateTime,
    pub pause_at: Option<PausePoint>,
    /// Run the link server on this socket path (see docs/link.md).
    pub link: Option<PathBuf>,
}

/// Parses "YYYY-MM-DD HH:MM[:SS]".
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .ok()
}

/// A running script: the till, the cards and the virtual clock.
pub struct ScriptRunner<W: Write> {
    setup: ScriptSetup,
    /// The till (`None` only during a restart).
    host: Option<TillHost>,
    cards: SimCards,
    wall: UnixMillis,
    mono_ms: u64,
    out: W,
    line: usize,
    /// The screens as last printed, so that only changes are printed.
    printed: Displays,
    /// The channel the link (and, in a live run, the line reader) reports to.
    events: (Sender<ScriptEvent>, Receiver<ScriptEvent>),
    /// Lines that arrived while a line was waiting for the link.
    queued: VecDeque<ScriptEvent>,
    /// While `sales` runs: print nothing but journal failures.
    quiet: bool,
    /// Sales committed by the current `sales` line.
    committed: u32,
    /// The campus that answers the till's orders when there is no link (survives `restart`).
    campus: LocalCampus,
    /// Order requests of the last input, for the campus to answer.
    pending_orders: Vec<OrderCall>,
    /// Whether a `backend` line made the campus the till's route (until then codes are
    /// refused, as on a till without a link).
    campus_connected: bool,
    /// `--qr-png DIR`: where each offline QR code shown is written as a PNG.
    qr_png: Option<PathBuf>,
    /// QR codes written so far (the next file's number).
    qr_written: u32,
    /// The last offline QR payload the till showed (`app pay` pays it).
    last_qr: Option<String>,
    /// The confirmation code the campus app showed last (`app type` types it).
    app_code: Option<u32>,
}

impl<W: Write> ScriptRunner<W> {
    /// Writes each offline QR code the customer's display shows from now on as a PNG in `dir`
    /// (`qr-0001.png`, ...; `--qr-png`).
    pub fn with_qr_png(mut self, dir: PathBuf) -> ScriptRunner<W> {
        self.qr_png = Some(dir);
        self
    }

    /// Opens the journal and the simulated cards in `setup.data_dir`.
    pub fn start(setup: ScriptSetup, out: W) -> Result<ScriptRunner<W>, ScriptError> {
        let mut cards =
            SimCards::open(&setup.data_dir).map_err(|e| ScriptError::Fatal(e.to_string()))?;
        if let Some(point) = setup.pause_at {
            cards.pause_at(point);
        }
        let wall = local_to_unix(setup.start, &setup.config);
        let mut runner = ScriptRunner {
            setup,
            host: None,
            cards,
            wall,
            mono_ms: 0,
            out,
            line: 0,
            printed: Displays::default(),
            events: mpsc::channel(),
            queued: VecDeque::new(),
            quiet: false,
            committed: 0,
            campus: LocalCampus::new(),
            pending_orders: Vec::new(),
            campus_connected: false,
            qr_png: None,
            qr_written: 0,
            last_qr: None,
            app_code: None,
        };
        runner.boot()?;
        Ok(runner)
    }

    /// Runs every line of `reader`, flushing the output after each. With a link, link events
    /// are handled between lines only; use [`ScriptRunner::run_live`] to handle them while
    /// waiting for a line.
    pub fn run_lines(&mut self, reader: impl BufRead) -> Result<(), ScriptError> {
        for (index, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| ScriptError::Input {
                line: index + 1,
                message: read_error_text(&e),
            })?;
            self.drain_link_events()?;
            self.run_line(&line)?;
            self.out.flush()?;
        }
        self.drain_link_events()
    }

    /// Runs the lines of `reader` as they arrive (read on a thread of their own) and handles the
    /// link's events while waiting for them, until the script ends.
    pub fn run_live(
        &mut self,
        reader: Box<dyn BufRead + Send + 'static>,
    ) -> Result<(), ScriptError> {
        let lines = self.events.0.clone();
        std::thread::Builder::new()
            .name("script-lines".into())
            .spawn(move || {
                for (index, line) in reader.lines().enumerate() {
                    match line {
                        Ok(line) => {
                            if lines.send(ScriptEvent::Line(line)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let failed = (index + 1, read_error_text(&e));
                            let _ = lines.send(ScriptEvent::End(Some(failed)));
                            return;
                        }
                    }
                }
                let _ = lines.send(ScriptEvent::End(None));
            })?;
        loop {
            let event = match self.queued.pop_front() {
                Some(event) => event,
                None => self
                    .events
                    .1
                    .recv()
                    .map_err(|_| ScriptError::Fatal("the script's reader is gone".into()))?,
            };
            match event {
                ScriptEvent::Line(line) => {
                    self.run_line(&line)?;
                    self.out.flush()?;
                }
                ScriptEvent::End(None) => return Ok(()),
                ScriptEvent::End(Some((line, message))) => {
                    return Err(ScriptError::Input { line, message })
                }
                ScriptEvent::Link(event) => {
                    self.on_link_event(event)?;
                    self.out.flush()?;
                }
            }
        }
    }

    /// Handles the link events that are waiting, without blocking.
    fn drain_link_events(&mut self) -> Result<(), ScriptError> {
        while let Ok(event) = self.events.1.try_recv() {
            match event {
                ScriptEvent::Link(event) => self.on_link_event(event)?,
                other => self.queued.push_back(other),
            }
        }
        Ok(())
    }

    /// Waits (in real time, at most `timeout_ms`) until `done` holds, handling link events.
    fn wait_for_link(
        &mut self,
        timeout_ms: u64,
        what: &str,
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), ScriptError> {
        if !self.host.as_ref().is_some_and(TillHost::has_link) {
            return Err(self.parse_error(format!("{what} needs a link (--link PATH)")));
        }
        if timeout_ms > MAX_LINK_WAIT_MS {
            return Err(self.parse_error(format!(
                "a link wait may be at most {} s",
                MAX_LINK_WAIT_MS / 1000
            )));
        }
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            self.drain_link_events()?;
            if done(self) {
                // The journal may be ahead of the events handled so far (an `Uploaded` still on
                // its way): the watermark moved, so the screens agree now.
                self.feed(Input::Link(LinkUpdate::Uploaded))?;
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ScriptError::Expectation {
                    line: self.line,
                    what: what.to_string(),
                    expected: format!("to happen within {timeout_ms} ms"),
                    actual: self.link_text()?,
                });
            }
            match self.events.1.recv_timeout(left) {
                Ok(ScriptEvent::Link(event)) => self.on_link_event(event)?,
                Ok(other) => self.queued.push_back(other),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ScriptError::Fatal("the link's channel closed".into()))
                }
            }
        }
    }

    /// Applies one link event to the till (downlinks are answered once durable).
    fn on_link_event(&mut self, event: LinkEvent) -> Result<(), ScriptError> {
        let now = self.now();
        let host = self.host.as_mut().ok_or_else(not_running)?;
        let outputs = host.handle_link(event, now, &mut self.cards);
        self.print(outputs)
    }

    /// The link's state as text: `daemon connected|disconnected, N unsent, uploaded through S`.
    fn link_text(&self) -> Result<String, ScriptError> {
        let host = self.host()?;
        let journal = host.runtime().journal();
        Ok(format!(
            "daemon {}, {} unsent, uploaded through {}",
            if host.peer().daemon_connected {
                "connected"
            } else {
                "disconnected"
            },
            journal.unsent_count(),
            journal.uploaded_through().map_or(0, |s| s.0)
        ))
    }

    /// `sales N AMOUNT CARD`: N sales of AMOUNT paid by CARD, quietly (confirming duplicate
    /// reminders), then one summary line.
    fn sales(&mut self, rest: &str) -> Result<(), ScriptError> {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let [count, amount, card] = words[..] else {
            return Err(self.parse_error("usage: sales N AMOUNT CARD".into()));
        };
        let count: u32 = count
            .parse()
            .ok()
            .filter(|n| (1..=MAX_SALES_PER_LINE).contains(n))
            .ok_or_else(|| self.parse_error(format!("N must be 1 to {MAX_SALES_PER_LINE}")))?;
        let keys = amount
            .chars()
            .map(|c| match c {
                '.' => Some(TillKey::Dot),
                c => c.to_digit(10).and_then(|d| TillKey::digit(d as u8)),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.parse_error(format!("'{amount}' is not an amount")))?;
        if self.cards.by_name(card).is_none() {
            return Err(self.parse_error(format!("no simulated card '{card}'")));
        }
        self.quiet = true;
        self.committed = 0;
        let result = (|| -> Result<(), ScriptError> {
            for _ in 0..count {
                self.press_all(keys.clone())?;
                self.press_all(vec![TillKey::Enter])?;
                self.tap(card)?;
                if self.runtime()?.till().is_confirming_duplicate() {
                    self.press_all(vec![TillKey::Enter])?;
                    self.tap(card)?;
                }
                self.drain_link_events()?;
            }
            Ok(())
        })();
        self.quiet = false;
        result?;
        let last = self.runtime()?.journal().last_seq().map_or(0, |s| s.0);
        writeln!(
            self.out,
            "{} sales: {} of {count} committed, journal at #{last}",
            self.stamp(),
            self.committed
        )?;
        if self.committed != count {
            return Err(ScriptError::Expectation {
                line: self.line,
                what: "sales".into(),
                expected: format!("{count} committed"),
                actual: format!("{} committed", self.committed),
            });
        }
        Ok(())
    }

    fn tap(&mut self, card: &str) -> Result<(), ScriptError> {
        let read = self
            .cards
            .tap_named(card)
            .ok_or_else(|| self.parse_error(format!("no simulated card '{card}'")))?;
        self.feed(Input::Card(read))?;
        Ok(())
    }

    /// Runs one script line.
    pub fn run_line(&mut self, text: &str) -> Result<(), ScriptError> {
        self.line += 1;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return Ok(());
        }
        let (verb, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        writeln!(self.out, "> {text}")?;
        match verb {
            "keys" => {
                let keys = rest
                    .split_whitespace()
                    .map(|word| {
                        word.parse::<TillKey>()
                            .map_err(|e| self.parse_error(format!("{word}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.press_all(keys)?;
            }
            "type" => {
                let keys = rest
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .map(|c| match c {
                        '.' => Ok(TillKey::Dot),
                        c => c
                            .to_digit(10)
                            .and_then(|d| TillKey::digit(d as u8))
                            .ok_or_else(|| {
                                self.parse_error(format!("'{c}' cannot be typed; use `keys`"))
                            }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.press_all(keys)?;
            }
            "tap" => self.tap(rest)?,
            "scan" => self.scan(rest)?,
            "backend" => self.backend_line(rest)?,
            "app" => self.app_line(rest)?,
            "sales" => self.sales(rest)?,
            "wait-uploaded" => {
                let ms = self.duration(rest)?;
                self.wait_for_link(ms, "wait-uploaded", |runner| {
                    runner
                        .host
                        .as_ref()
                        .is_some_and(|h| h.runtime().journal().unsent_count() == 0)
                })?;
            }
            "wait-daemon" => {
                let ms = self.duration(rest)?;
                self.wait_for_link(ms, "wait-daemon", |runner| {
                    runner
                        .host
                        .as_ref()
                        .is_some_and(|h| h.peer().daemon_connected)
                })?;
            }
            "wait" => {
                let ms = self.duration(rest)?;
                self.advance(ms)?;
            }
            "at" => {
                let local = parse_local(rest)
                    .ok_or_else(|| self.parse_error("expected YYYY-MM-DD HH:MM[:SS]".into()))?;
                self.wall = local_to_unix(local, &self.setup.config);
                self.feed(Input::Tick)?;
            }
            "fault" => {
                let fault = WriteFault::from_name(rest).ok_or_else(|| {
                    let names: Vec<&str> = WriteFault::ALL.iter().map(|f| f.name()).collect();
                    self.parse_error(format!(
                        "unknown fault '{rest}': one of {}",
                        names.join(", ")
                    ))
                })?;
                self.cards.arm_fault(fault);
            }
            "reader" => match rest {
                "dead" => self.cards.break_reader(),
                "repaired" => self.cards.repair_reader(),
                _ => return Err(self.parse_error(format!("'reader {rest}': reader dead|repaired"))),
            },
            "snapshot-card" => {
                let (name, label) = card_and_label(rest);
                self.cards
                    .snapshot_card(name, label)
                    .map_err(|e| self.parse_error(e.to_string()))?
            }
            "restore-card" => {
                let (name, label) = card_and_label(rest);
                self.cards.restore_card(name, label).map_err(|e| match e {
                    SimCardsError::Io { .. } => ScriptError::Fatal(e.to_string()),
                    _ => self.parse_error(e.to_string()),
                })?
            }
            "restart" => {
                // Stops the link, then closes the journal, as a power cut would.
                if let Some(host) = self.host.take() {
                    host.stop();
                }
                self.boot()?;
            }
            "show" => {
                let displays = self.host()?.displays();
                self.print_displays(&displays, true)?;
            }
            "expect" => self.expect(rest)?,
            other => return Err(self.parse_error(format!("unknown command '{other}'"))),
        }
        Ok(())
    }

    /// The simulated cards (for tests).
    pub fn cards(&self) -> &SimCards {
        &self.cards
    }

    /// What the script's campus kept of each order (charges − refunds, fen), by the seq of its
    /// intent (for tests: the campus against the journal).
    pub fn campus_kept_by_order(&mut self) -> std::collections::BTreeMap<shared::Seq, i64> {
        self.campus.kept_by_order()
    }

    /// The runtime (for tests); `None` only during a restart.
    pub fn runtime_ref(&self) -> Option<&TillRuntime> {
        self.host.as_ref().map(TillHost::runtime)
    }

    pub fn into_output(self) -> W {
        self.out
    }

    fn duration(&self, text: &str) -> Result<u64, ScriptError> {
        parse_duration_ms(text).ok_or_else(|| {
            self.parse_error(format!("'{text}' is not a duration like 500ms, 3s, 2m, 1h"))
        })
    }

    fn boot(&mut self) -> Result<(), ScriptError> {
        let now = self.now();
        let mut host = TillHost::open(&self.setup.data_dir, self.setup.config.clone(), now)
            .map_err(|e| ScriptError::Fatal(e.to_string()))?;
        if let Some(path) = &self.setup.link {
            let events = self.events.0.clone();
            let sink = Arc::new(move |event: LinkEvent| {
                let _ = events.send(ScriptEvent::Link(event));
            });
            host.start_link(path, sink, now)
                .map_err(|e| ScriptError::Fatal(e.to_string()))?;
        }
        if let Some(point) = self.setup.pause_at {
            // The order points (kill tests): stop dead just before such a request leaves.
            host.pause_before_orders(Box::new(move |call: &OrderCall| {
                if point.stops_before(&call.request) {
                    point.stop_dead();
                }
            }));
        }
        self.host = Some(host);
        self.printed = Displays::default();
        writeln!(self.out, "{} till started", self.stamp())?;
        // The campus a `backend` line connected stays connected across a restart.
        self.connect_campus()?;
        // The first tick draws the screens (and sounds a start-up message's beep).
        self.feed(Input::Tick)?;
        Ok(())
    }

    fn host(&self) -> Result<&TillHost, ScriptError> {
        self.host.as_ref().ok_or_else(not_running)
    }

    fn runtime(&self) -> Result<&TillRuntime, ScriptError> {
        Ok(self.host()?.runtime())
    }

    fn now(&self) -> Now {
        Now {
            wall: self.wall,
            mono_ms: self.mono_ms,
        }
    }

    fn parse_error(&self, message: String) -> ScriptError {
        ScriptError::Parse {
            line: self.line,
            message,
        }
    }

    fn press_all(&mut self, keys: Vec<TillKey>) -> Result<(), ScriptError> {
        for (i, key) in keys.into_iter().enumerate() {
            if i > 0 {
                self.advance(KEY_GAP_MS)?;
            }
            self.feed(Input::Key(key))?;
        }
        // A line is a whole gesture: let a combo started on it finish (or time out) here.
        if let (_, Some(deadline)) = self.runtime()?.deadlines() {
            self.advance(deadline.saturating_sub(self.mono_ms))?;
        }
        Ok(())
    }

    /// Moves both clocks forward by `ms`, firing every timer that falls due on the way.
    fn advance(&mut self, ms: u64) -> Result<(), ScriptError> {
        if ms > MAX_WAIT_MS {
            return Err(self.parse_error(format!(
                "a wait may be at most {} hours",
                MAX_WAIT_MS / 3_600_000
            )));
        }
        let target_mono = self.mono_ms.saturating_add(ms);
        loop {
            let (wall_deadline, mono_deadline) = self.runtime()?.deadlines();
            let next = self.runtime()?.next_deadline_mono(self.now());
            let Some(next) = next.filter(|&t| t <= target_mono) else {
                break;
            };
            self.step_to(next.max(self.mono_ms));
            self.feed(Input::Tick)?;
            if next <= self.mono_ms && self.runtime()?.deadlines() == (wall_deadline, mono_deadline)
            {
                break; // nothing moved: a deadline the till does not clear must not spin us
            }
        }
        self.step_to(target_mono);
        self.feed(Input::Tick)?;
        Ok(())
    }

    fn step_to(&mut self, mono: u64) {
        let delta = mono.saturating_sub(self.mono_ms);
        self.mono_ms = mono;
        self.wall = self.wall.saturating_add_millis(delta);
    }

    /// Feeds one input and prints what came out.
    fn feed(&mut self, input: Input) -> Result<(), ScriptError> {
        let now = self.now();
        let host = self.host.as_mut().ok_or_else(not_running)?;
        let outputs = host.handle(input, now, &mut self.cards);
        self.print(outputs)?;
        self.answer_orders()
    }

    /// Prints what the till did (nothing but the records' count while `sales` runs); a stop
    /// ends the script.
    fn print(&mut self, outputs: Vec<HostOutput>) -> Result<(), ScriptError> {
        for output in outputs {
            match output {
                HostOutput::Displays(displays) if self.quiet => {
                    self.last_qr = displays.qr.clone().or(self.last_qr.take());
                    self.printed = displays;
                }
                HostOutput::Displays(displays) => self.print_displays(&displays, false)?,
                HostOutput::Beep(_) if self.quiet => {}
                HostOutput::Beep(beep) => writeln!(self.out, "{} BEEP {beep:?}", self.stamp())?,
                HostOutput::Journaled(record) => {
                    if matches!(record.body, RecordBody::SaleCommitted(_)) {
                        self.committed = self.committed.saturating_add(1);
                    }
                    if !self.quiet {
                        writeln!(self.out, "{} J| {}", self.stamp(), describe_record(&record))?
                    }
                }
                HostOutput::Note(note) => writeln!(self.out, "{} LINK {note}", self.stamp())?,
                HostOutput::Stopped(error) => {
                    writeln!(self.out, "{} FATAL {error}", self.stamp())?;
                    return Err(ScriptError::Fatal(error));
                }
                // Not asked for yet (no local back end): the till queries it again.
                HostOutput::Order(call) => self.pending_orders.push(call),
            }
        }
        Ok(())
    }

    /// Prints the screens that changed since last printed (both with `always`).
    fn print_displays(&mut self, displays: &Displays, always: bool) -> Result<(), ScriptError> {
        let stamp = self.stamp();
        if always || displays.merchant != self.printed.merchant {
            writeln!(self.out, "{stamp} M| {}", screen_text(&displays.merchant))?;
        }
        if always || displays.customer != self.printed.customer {
            writeln!(self.out, "{stamp} C| {}", screen_text(&displays.customer))?;
        }
        if let Some(payload) = &displays.qr {
            self.last_qr = Some(payload.clone());
            if always || self.printed.qr.as_ref() != Some(payload) {
                // The payload is an order, not a bearer token: printing it is safe.
                writeln!(self.out, "{stamp} QR {payload}")?;
                self.write_qr_png(payload)?;
            }
        }
        self.printed = displays.clone();
        Ok(())
    }

    /// With `--qr-png`: the QR code of `payload` as the next PNG file (printed as `QR-PNG path`).
    fn write_qr_png(&mut self, payload: &str) -> Result<(), ScriptError> {
        let Some(dir) = &self.qr_png else {
            return Ok(());
        };
        self.qr_written = self.qr_written.saturating_add(1);
        let path = qr_png::write_qr_png(dir, self.qr_written, payload).map_err(|e| {
            std::io::Error::new(e.kind(), format!("--qr-png {}: {e}", dir.display()))
        })?;
        writeln!(self.out, "{} QR-PNG {}", self.stamp(), path.display())?;
        Ok(())
    }

    fn stamp(&self) -> String {
        let wall = local_time(self.wall, self.setup.config.utc_offset_minutes).wall;
        format!("[{}]", wall.format("%m-%d %H:%M:%S%.3f"))
    }

    fn expect(&mut self, rest: &str) -> Result<(), ScriptError> {
        let (what, expected) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let expected = expected.trim().trim_matches('"').to_string();
        let actual = match what {
            "merchant" => screen_text(&self.runtime()?.displays().merchant),
            "customer" => screen_text(&self.runtime()?.displays().customer),
            "card" => {
                let (name, _) = expected.split_once(' ').unwrap_or((&expected, ""));
                let card = self
                    .cards
                    .by_name(name)
                    .ok_or_else(|| self.parse_error(format!("no simulated card '{name}'")))?;
                format!("{} {}", card.name, card.balance)
            }
            "journal" => {
                let runtime = self.runtime()?;
                let last = runtime.journal().last_seq().map_or(0, |s| s.0);
                format!("{last} records")
            }
            "link" => self.link_text()?,
            "balance" | "ledger" => self.campus_actual(what, &expected)?,
            other => {
                return Err(self.parse_error(format!(
                    "cannot expect '{other}': use merchant, customer, card, journal, link, \
                     balance or ledger"
                )))
            }
        };
        if actual.contains(&expected) {
            Ok(())
        } else {
            Err(ScriptError::Expectation {
                line: self.line,
                what: what.to_string(),
                expected,
                actual,
            })
        }
    }
}

/// What a line that needs the till gets during a restart.
fn not_running() -> ScriptError {
    ScriptError::Fatal("the till is not running".into())
}

/// The label of a card copy when a `snapshot-card` / `restore-card` line names none.
pub const DEFAULT_COPY_LABEL: &str = "copy";

/// "NAME [LABEL]" of `snapshot-card` and `restore-card`.
fn card_and_label(rest: &str) -> (&str, &str) {
    let mut words = rest.split_whitespace();
    let name = words.next().unwrap_or("");
    (name, words.next().unwrap_or(DEFAULT_COPY_LABEL))
}

/// What went wrong reading a script line, in words (a non-UTF-8 line says so).
fn read_error_text(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::InvalidData => {
            "not UTF-8 text (a script is UTF-8; convert it, e.g. with iconv)".to_string()
        }
        _ => error.to_string(),
    }
}

fn local_to_unix(local: NaiveDateTime, config: &TillConfig) -> UnixMillis {
    let utc = local - TimeDelta::minutes(i64::from(config.utc_offset_minutes));
    UnixMillis(utc.and_utc().timestamp_millis())
}

/// "500ms", "3s", "2m", "1h" → milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Runs a whole script from `reader`, printing to `out`.
pub fn run_script(
    setup: ScriptSetup,
    reader: impl BufRead,
    out: impl Write,
) -> Result<(), ScriptError> {
    let mut runner = ScriptRunner::start(setup, out)?;
    runner.run_lines(reader)
}

/// Default data directory of the simulator (relative to where it runs).
pub fn default_data_dir() -> &'static Path {
    Path::new("pos-data")
}

#[cfg(test)]
mod tests;
