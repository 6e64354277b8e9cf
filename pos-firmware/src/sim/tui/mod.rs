//! The interactive terminal simulator (`pos-firmware sim`): the whole till (keymap, core, the real
//! journal) on the PC keyboard, with simulated cards tapped by keys and payment codes typed in.
//!
//! The screen shows the till's two displays as boxes (merchant: 4 lines, the first is the status
//! line; customer: 2 lines), the simulated cards with their balances and the keys that tap them,
//! the PC-keyboard layout from [`keymap::pc_key_help`], a log of beeps and durable journal
//! records, and a bar with the simulator's own keys.
//!
//! Keys: the till's keys as in `keymap/KEYS.md` (Esc / `c` = 清零 …); F5…F10 or `z x v b n m` tap
//! card 1…6 (emulated Mifare cards read through the real wallet and driver, `sim::cards`); `/`
//! opens a prompt to scan a payment code (Enter scans, Esc cancels); `r` arms a fault at the next
//! card write (pulled right after the write reaches the card; pressed again, the next of the
//! emulator's faults, then none); `p` opens the code picker (every behaviour of the simulator's
//! campus back end, a virtual card of each demo account: `picker.rs`), whose code goes on the
//! scanner; `?` shows every key;
//! Ctrl-C / Ctrl-Q quits. An Alt+key event counts as Esc then the key: that is how it arrives
//! when Esc and the next key are joined on the way (tmux's escape-time, slow links).
//!
//! Structure: [`run`] opens everything *before* touching the terminal (so a locked or corrupt
//! journal is reported as a plain error), then loops: draw, wait for a key no longer than the
//! till's next deadline (at most [`MAX_POLL_MS`]), hand the key, a tap, a code or
//! [`Input::Tick`] to the [`TillHost`] (which runs the till and the link), and log what it hands
//! back. This file is the session; `keys.rs` translates terminal keys ([`pc_key_from_crossterm`],
//! `action_for`) and `draw.rs` lays out and draws a `View`, both pure and unit-tested (the drawing
//! rendered into ratatui's `TestBackend`).
//!
//! Code payments: the till's order requests go to the daemon when one is connected; with
//! `--backend local` and no daemon the simulator's own campus
//! ([`crate::sim::script::orders::LocalCampus`]) answers them at once; otherwise they are "not
//! sent" (the till says it cannot take codes now). A journal failure stops the sale loop for good: only a
//! full-screen error and "press q" remain.

mod draw;
mod keys;
mod picker;
pub mod qr;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use keymap::{pc_key_help, TillKey};
use ratatui::crossterm::event::{self, Event, KeyEvent};
use ratatui::DefaultTerminal;
use shared::record::RecordBody;

use crate::clock::RealClock;
use crate::core::calendar::local_time;
use crate::core::config::{Lang, TillConfig};
use crate::core::text::tr;
use crate::core::{Beep, Displays};
use crate::host::{HostOutput, TillHost};
use crate::journal::JournalError;
use crate::link::LinkEvent;
use crate::present::describe_record;
use crate::runtime::{Input, RuntimeError};
use crate::sim::cards::{SimCards, WriteFault};
use crate::sim::script::orders::{picker_choices, LocalAnswer, LocalCampus};
use picker::Picker;
use shared::link::BrokerLink;
use shared::pay::OrderCall;

use draw::{draw, View};
pub use draw::{MIN_HEIGHT, MIN_WIDTH};
pub use keys::pc_key_from_crossterm;
use keys::{action_for, combo_hint, next_fault, poll_timeout, split_escape_prefix, Action};

/// The longest the loop waits without ticking the till (clock screens, message timeouts).
pub const MAX_POLL_MS: u64 = 250;
/// The shortest wait: a deadline the till fails to clear cannot make the loop spin flat out.
pub const MIN_POLL_MS: u64 = 5;
/// The longest the loop waits for a key while a link server runs, so its events (a daemon's
/// downlink waits for the answer) are handled promptly.
pub const LINK_POLL_MS: u64 = 20;
/// Events the log keeps (and shows when the terminal is tall enough).
pub const LOG_LEN: usize = 8;
/// The longest payment code the scan prompt takes.
pub const MAX_CODE_CHARS: usize = 128;
/// The keys that tap simulated card 1, 2, …: a function key and a letter (for terminals that eat
/// F-keys). None of them is a till key in `keymap::PC_KEYS` (a test checks).
pub const TAP_KEYS: [(u8, char); 6] = [(5, 'z'), (6, 'x'), (7, 'v'), (8, 'b'), (9, 'n'), (10, 'm')];
/// Opens the scan prompt.
pub const SCAN_KEY: char = '/';
/// Arms a torn write for the next card write.
pub const TEAR_KEY: char = 'r';
/// Shows every key.
pub const HELP_KEY: char = '?';
/// Opens the code picker.
pub const PICK_KEY: char = 'p';
/// The most order requests the local campus answers for one input (an answer may make the till
/// ask again; a till that never stops asking must not hang the simulator).
pub const MAX_LOCAL_ANSWERS_PER_INPUT: usize = 64;
/// Quits once the till has stopped on a journal failure.
pub const FATAL_QUIT_KEY: char = 'q';
/// The most keys a combo prefix has (F2+1).
const MAX_COMBO_PREFIX: usize = 2;

/// Runs the simulator in this terminal until the user quits. Opens the simulated cards and the
/// journal in `data_dir` first; if either cannot be opened, returns the error without touching
/// the terminal. After a journal failure during the session it returns that failure once the
/// user has quit, so it stays on the terminal after the screen is restored.
///
/// `local_backend`: the simulator's own campus answers the till's orders while no daemon does.
pub fn run(
    data_dir: &Path,
    config: TillConfig,
    link: Option<&Path>,
    local_backend: bool,
) -> anyhow::Result<()> {
    let mut sim = Sim::open(data_dir, config)?;
    if local_backend {
        let now = sim.clock.now();
        let outputs = sim
            .host
            .answer_orders_locally(Some(BrokerLink::Up), now, &mut sim.cards);
        sim.render(outputs, None);
        sim.note(
            LogKind::Info,
            "code payments: the local campus answers while no daemon is connected".into(),
        );
    }
    if let Some(path) = link {
        sim.start_link(path);
    }
    // Created before the terminal is touched, so a half-done set-up is undone too. ratatui's
    // `try_init` also installs a panic hook that restores the terminal before the panic message.
    let _restore = TerminalGuard;
    let mut terminal = ratatui::try_init()
        .context("cannot set up the terminal (is this an interactive terminal?)")?;
    sim.event_loop(&mut terminal)?;
    match sim.host.stopped() {
        Some(error) => anyhow::bail!("the till stopped selling: {error}"),
        None => Ok(()),
    }
}

/// Restores the terminal when dropped (normal return and `?` errors; on a panic ratatui's hook has
/// already done it).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            ratatui::restore();
        }
    }
}

// ----- the session ---------------------------------------------------------------------------

/// What the simulator is doing with the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UiMode {
    /// Keys go to the till.
    Selling,
    /// Keys type a payment code.
    Prompt,
    /// The full key list is shown; any key closes it.
    Help,
    /// The code picker is open.
    Picker,
    /// The journal failed: only quitting is left.
    Fatal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogKind {
    Info,
    Good,
    Bad,
    Warn,
    Record,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LogEntry {
    /// Local "HH:MM:SS".
    time: String,
    kind: LogKind,
    text: String,
}

/// The running simulator: the till, its cards and what the screen shows besides the displays.
struct Sim {
    host: TillHost,
    cards: SimCards,
    clock: RealClock,
    lang: Lang,
    utc_offset_minutes: i32,
    /// The displays as of the last successful `handle`.
    displays: Displays,
    log: VecDeque<LogEntry>,
    help: Vec<String>,
    prompt: Option<String>,
    help_open: bool,
    /// The keys of the combo the keymap holds, for the "清零+ …" hint.
    combo: Vec<TillKey>,
    /// The channel the link server reports to (`None`: no link).
    link: Option<Receiver<LinkEvent>>,
    /// The simulator's campus: makes the picker's codes, answers orders with `--backend local`.
    campus: LocalCampus,
    picker: Option<Picker>,
    /// Order requests of the last input, for the local campus.
    pending_orders: Vec<OrderCall>,
}

impl Sim {
    /// Opens the cards and the journal (in the data directory itself, as the script runner does)
    /// and feeds the first tick, which draws the screens.
    fn open(data_dir: &Path, config: TillConfig) -> anyhow::Result<Sim> {
        let cards = SimCards::open(data_dir).with_context(|| {
            format!("cannot open the simulated cards in {}", data_dir.display())
        })?;
        let clock = RealClock::start();
        let lang = config.lang;
        let utc_offset_minutes = config.utc_offset_minutes;
        let host =
            TillHost::open(data_dir, config, clock.now()).map_err(|e| open_error(data_dir, e))?;
        let displays = host.displays();
        let mut sim = Sim {
            host,
            cards,
            clock,
            lang,
            utc_offset_minutes,
            displays,
            log: VecDeque::with_capacity(LOG_LEN),
            help: pc_key_help(),
            prompt: None,
            help_open: false,
            combo: Vec::new(),
            link: None,
            campus: LocalCampus::new(),
            picker: None,
            pending_orders: Vec::new(),
        };
        sim.note(
            LogKind::Info,
            format!("till started on {}", data_dir.display()),
        );
        sim.feed(Input::Tick);
        if let Some(error) = sim.host.stopped() {
            anyhow::bail!(
                "the till stopped while starting in {}: {error}",
                data_dir.display()
            );
        }
        Ok(sim)
    }

    /// Starts the link server; a till that cannot open its socket still sells (and says why).
    fn start_link(&mut self, path: &Path) {
        let (sender, receiver) = mpsc::channel();
        let sink = Arc::new(move |event: LinkEvent| {
            let _ = sender.send(event);
        });
        match self.host.start_link(path, sink, self.clock.now()) {
            Ok(()) => {
                self.note(LogKind::Info, format!("link on {}", path.display()));
                self.displays = self.host.displays();
                self.link = Some(receiver);
            }
            Err(e) => self.note(LogKind::Bad, format!("link off: {e}")),
        }
    }

    /// Handles what the link reported since the last look.
    fn drain_link(&mut self) {
        while let Some(event) = self.link.as_ref().and_then(|link| link.try_recv().ok()) {
            let outputs = self
                .host
                .handle_link(event, self.clock.now(), &mut self.cards);
            self.render(outputs, None);
            self.answer_orders();
        }
    }

    fn event_loop(&mut self, terminal: &mut DefaultTerminal) -> anyhow::Result<()> {
        loop {
            self.drain_link();
            terminal
                .draw(|frame| draw(frame, &self.view()))
                .context("cannot draw on the terminal")?;
            let mut timeout = match self.host.stopped() {
                Some(_) => Duration::from_millis(MAX_POLL_MS),
                None => poll_timeout(self.host.runtime().deadlines(), self.clock.now()),
            };
            if self.link.is_some() {
                timeout = timeout.min(Duration::from_millis(LINK_POLL_MS));
            }
            let ready = event::poll(timeout).context("cannot read the keyboard")?;
            if ready {
                if let Event::Key(key) = event::read().context("cannot read the keyboard")? {
                    if self.on_key(&key) {
                        return Ok(());
                    }
                }
                // Resizes need nothing: the next draw fits the new size.
            }
            if !ready || self.host.runtime().tick_due(self.clock.now()) {
                self.feed(Input::Tick);
            }
        }
    }

    fn mode(&self) -> UiMode {
        if self.host.stopped().is_some() {
            UiMode::Fatal
        } else if self.help_open {
            UiMode::Help
        } else if self.picker.is_some() {
            UiMode::Picker
        } else if self.prompt.is_some() {
            UiMode::Prompt
        } else {
            UiMode::Selling
        }
    }

    /// Handles one key event; true when the user quits.
    fn on_key(&mut self, key: &KeyEvent) -> bool {
        match split_escape_prefix(key) {
            Some((esc, rest)) => self.on_one_key(&esc) || self.on_one_key(&rest),
            None => self.on_one_key(key),
        }
    }

    fn on_one_key(&mut self, key: &KeyEvent) -> bool {
        match action_for(key, self.mode()) {
            Action::Quit => return true,
            Action::Till(till_key) => {
                self.feed(Input::Key(till_key));
                self.track_combo(till_key);
            }
            Action::Tap(index) => self.tap(index),
            Action::OpenPrompt => self.prompt = Some(String::new()),
            Action::PromptChar(c) => {
                if let Some(text) = &mut self.prompt {
                    if text.chars().count() < MAX_CODE_CHARS && !c.is_control() {
                        text.push(c);
                    }
                }
            }
            Action::PromptBackspace => {
                if let Some(text) = &mut self.prompt {
                    text.pop();
                }
            }
            Action::PromptSubmit => {
                let code = self.prompt.take().unwrap_or_default();
                let code = code.trim();
                if !code.is_empty() {
                    self.note(LogKind::Info, format!("扫码 scan {code}"));
                    self.feed(Input::Code(code.to_string()));
                }
            }
            Action::PromptCancel => self.prompt = None,
            Action::OpenPicker => self.picker = Some(Picker::new(picker_choices(&self.campus))),
            Action::PickerMove(step) => {
                if let Some(picker) = &mut self.picker {
                    picker.step(step);
                }
            }
            Action::PickerChoose => {
                if let Some((label, spec)) = self.picker.take().and_then(|p| p.chosen().cloned()) {
                    match self.campus.make_code(&spec, self.clock.now().wall) {
                        Ok(code) => {
                            // The code is a bearer token: the log names what was picked.
                            self.note(LogKind::Info, format!("扫码 scan {label}"));
                            self.feed(Input::Code(code));
                        }
                        Err(why) => self.note(LogKind::Warn, format!("no code: {why}")),
                    }
                }
            }
            Action::PickerCancel => self.picker = None,
            Action::ArmTear => match next_fault(self.cards.armed_fault()) {
                Some(fault) => {
                    self.cards.arm_fault(fault);
                    self.note(
                        LogKind::Warn,
                        format!("the next card write will be torn: {fault} ({TEAR_KEY} again: the next fault)"),
                    );
                }
                None => {
                    self.cards.disarm_fault();
                    self.note(LogKind::Info, "no fault at the next card write".into());
                }
            },
            Action::OpenHelp => self.help_open = true,
            Action::CloseHelp => self.help_open = false,
            Action::Ignore => {}
        }
        false
    }

    fn tap(&mut self, index: usize) {
        let Some(card) = self.cards.cards().get(index) else {
            self.note(
                LogKind::Info,
                format!("no simulated card {} to tap", index.saturating_add(1)),
            );
            return;
        };
        let label = format!("刷卡 tap {} {}", card.name, card.uid);
        if let Some(read) = self.cards.tap(index) {
            self.note(LogKind::Info, label);
            self.feed(Input::Card(read));
        }
    }

    /// Feeds one input to the till and logs what came out.
    fn feed(&mut self, input: Input) {
        let armed = self.cards.armed_fault();
        let outputs = self.host.handle(input, self.clock.now(), &mut self.cards);
        // Logged where it happened: after the sale's intent (journaled before the write).
        let torn = armed.filter(|_| self.cards.armed_fault().is_none());
        self.render(outputs, torn);
        self.answer_orders();
    }

    /// Answers the order requests the till made for the local campus (`--backend local`, no
    /// daemon), feeding each answer back and logging it.
    fn answer_orders(&mut self) {
        let mut answered = 0;
        while !self.pending_orders.is_empty() {
            for call in std::mem::take(&mut self.pending_orders) {
                if answered == MAX_LOCAL_ANSWERS_PER_INPUT {
                    self.note(
                        LogKind::Bad,
                        format!("the till asked more than {MAX_LOCAL_ANSWERS_PER_INPUT} times for one input; left to its queries"),
                    );
                    self.pending_orders.clear();
                    return;
                }
                answered += 1;
                let now = self.clock.now();
                let kind = crate::host::RequestKind::of(&call.request);
                let intent = call.order.intent.0;
                let outputs = match self.campus.answer(&call, now.wall) {
                    LocalAnswer::Result(result) => {
                        let said = crate::sim::script::campus_state_text(&result.state);
                        self.note(LogKind::Info, format!("campus #{intent} {kind}: {said}"));
                        self.host.order_result(result, now, &mut self.cards)
                    }
                    LocalAnswer::NotSent(why) => {
                        self.note(
                            LogKind::Warn,
                            format!("campus #{intent} {kind}: not sent: {why}"),
                        );
                        self.host.order_not_sent(call.order, now, &mut self.cards)
                    }
                    LocalAnswer::Silent => {
                        self.note(LogKind::Info, format!("campus #{intent} {kind}: no answer"));
                        continue;
                    }
                };
                self.render(outputs, None);
            }
        }
    }

    /// Logs the beeps, records and link notes; `torn` is the fault that struck this input's
    /// card write, announced right after its intent. A stop closes the prompt and the help.
    fn render(&mut self, outputs: Vec<HostOutput>, torn: Option<WriteFault>) {
        let mut torn = torn;
        for output in outputs {
            match output {
                // Taken from `displays()` below, after everything this input caused.
                HostOutput::Displays(_) => {}
                HostOutput::Beep(beep) => {
                    let (kind, text) = beep_text(self.lang, beep);
                    self.note(kind, text);
                }
                HostOutput::Journaled(record) => {
                    self.note(LogKind::Record, describe_record(&record));
                    if matches!(
                        record.body,
                        RecordBody::SaleIntent(_) | RecordBody::LoadIntent(_)
                    ) {
                        if let Some(fault) = torn.take() {
                            self.note_torn_write(fault);
                        }
                    }
                }
                HostOutput::Note(note) => {
                    let kind = if note.is_warning() {
                        LogKind::Warn
                    } else {
                        LogKind::Info
                    };
                    self.note(kind, note.to_string());
                }
                HostOutput::Stopped(error) => {
                    self.note(LogKind::Bad, format!("FATAL {error}"));
                    self.prompt = None;
                    self.help_open = false;
                }
                HostOutput::Order(call) => self.pending_orders.push(call),
            }
        }
        if let Some(fault) = torn {
            self.note_torn_write(fault);
        }
        self.displays = self.host.displays();
        if !self.host.runtime().combo_armed() {
            self.combo.clear();
        }
    }

    /// Keeps the keys of the combo the keymap is holding after `key` was pressed.
    fn track_combo(&mut self, key: TillKey) {
        if !self.host.runtime().combo_armed() {
            self.combo.clear();
        } else if matches!(key, TillKey::Clear | TillKey::F2)
            || self.combo.len() >= MAX_COMBO_PREFIX
        {
            // A combo only ever starts with Clear or F2 (after a late press the old one is gone).
            self.combo = vec![key];
        } else {
            self.combo.push(key);
        }
    }

    fn note_torn_write(&mut self, fault: WriteFault) {
        let name = fault.name();
        let text = format!("⚡ torn write: {name} struck the card write (拔卡)");
        self.note(LogKind::Warn, text);
    }

    fn note(&mut self, kind: LogKind, text: String) {
        let time = local_time(self.clock.now().wall, self.utc_offset_minutes)
            .wall
            .format("%H:%M:%S")
            .to_string();
        while self.log.len() >= LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry { time, kind, text });
    }

    fn view(&self) -> View<'_> {
        View {
            displays: &self.displays,
            cards: self.cards.cards(),
            help: &self.help,
            log: &self.log,
            prompt: self.prompt.as_deref(),
            help_open: self.help_open,
            picker: self.picker.as_ref(),
            fatal: self.host.stopped(),
            combo_hint: combo_hint(&self.combo, self.host.runtime().combo_armed()),
            tear_armed: self.cards.armed_fault(),
        }
    }
}

/// The error `run` returns when the till cannot start, with what to do about it.
fn open_error(data_dir: &Path, error: RuntimeError) -> anyhow::Error {
    let dir = data_dir.display();
    // The journal error itself is the cause; the context says what to do about it.
    match error {
        RuntimeError::Journal(journal) => {
            let what = match &journal {
                JournalError::Locked { .. } => format!(
                    "cannot start the till: its journal in {dir} is in use. Is another `pos-firmware sim` or \
                     `script` running on this data directory? Stop it, or pass another --data-dir"
                ),
                JournalError::Corrupt { .. } => format!(
                    "cannot start the till: its journal in {dir} is damaged. Keep the directory for \
                     inspection; to start afresh, move it aside or pass another --data-dir"
                ),
                _ => format!("cannot start the till: cannot open its journal in {dir}"),
            };
            anyhow::Error::new(journal).context(what)
        }
        RuntimeError::Config(config) => anyhow::Error::new(config).context(format!(
            "cannot start the till: check the settings (till.toml) in {dir}"
        )),
        other => anyhow::Error::new(other).context(format!("cannot start the till in {dir}")),
    }
}

fn beep_text(lang: Lang, beep: Beep) -> (LogKind, String) {
    match beep {
        Beep::Success => (LogKind::Good, format!("♪ {}", tr(lang, "成功", "success"))),
        Beep::Error => (LogKind::Bad, format!("✗ {}", tr(lang, "错误", "error"))),
        Beep::Attention => (
            LogKind::Warn,
            format!("! {}", tr(lang, "注意", "attention")),
        ),
    }
}

#[cfg(test)]
mod tests {
    //! The session, on a real journal in a temporary directory.
    use super::draw::tests::render;
    use super::keys::tests::{press, with};
    use super::*;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    fn key(sim: &mut Sim, code: KeyCode) -> bool {
        sim.on_key(&press(code))
    }

    #[test]
    fn a_sale_on_card_1_debits_it_and_logs_the_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sim = Sim::open(dir.path(), TillConfig::default()).expect("open");
        let before = sim.cards.cards()[0].balance;
        for code in [
            KeyCode::Char('1'),
            KeyCode::Char('2'),
            KeyCode::Char('.'),
            KeyCode::Char('5'),
            KeyCode::Enter,
        ] {
            assert!(!key(&mut sim, code));
        }
        assert!(!key(&mut sim, KeyCode::Char('z')));
        let after = sim.cards.cards()[0].balance;
        assert_eq!(before.get() - after.get(), 1_250, "{:?}", sim.log);
        let log: Vec<&str> = sim.log.iter().map(|e| e.text.as_str()).collect();
        assert!(log.iter().any(|t| t.contains("sale-committed")), "{log:?}");
        assert!(log.iter().any(|t| t.contains("♪")), "{log:?}");
        let (screen, _) = render(&sim.view(), 110, 32);
        assert!(screen.contains(&format!("¥{after}")), "{screen}");

        // Clear arms a combo; the hint shows until the second key.
        assert!(!key(&mut sim, KeyCode::Esc));
        assert_eq!(sim.view().combo_hint.as_deref(), Some("清零+ …"));
        assert!(!key(&mut sim, KeyCode::Char('5')));
        assert_eq!(sim.view().combo_hint, None);

        let total = sim.displays.clone();
        // Esc and 5 joined into one Alt-5 event (tmux, slow links) still make Clear+5.
        assert!(!key(&mut sim, KeyCode::Char('c')));
        assert!(!key(&mut sim, KeyCode::Char('c')));
        assert_ne!(sim.displays, total, "double Clear leaves the total");
        assert!(!sim.on_key(&with(KeyCode::Char('5'), KeyModifiers::ALT)));
        assert_eq!(sim.displays, total);

        // The scan prompt swallows keys until Enter; the till answers the code.
        assert!(!key(&mut sim, KeyCode::Char('/')));
        for c in "134567890123456789".chars() {
            assert!(!key(&mut sim, KeyCode::Char(c)));
        }
        assert_eq!(sim.prompt.as_deref(), Some("134567890123456789"));
        assert!(!key(&mut sim, KeyCode::Enter));
        assert_eq!(sim.prompt, None);
        assert!(sim
            .log
            .iter()
            .any(|e| e.text.contains("scan 134567890123456789")));

        // A second simulator on the same directory is refused with a clear message.
        let error = Sim::open(dir.path(), TillConfig::default())
            .err()
            .expect("journal is locked");
        let message = format!("{error:#}");
        assert!(
            message.contains("cannot start the till") && message.contains("locked"),
            "{message}"
        );

        assert!(
            sim.on_key(&with(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            "Ctrl-C quits"
        );
    }

    #[test]
    fn a_torn_write_is_announced_and_then_disarmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sim = Sim::open(dir.path(), TillConfig::default()).expect("open");
        for code in [KeyCode::Char('3'), KeyCode::Enter, KeyCode::Char('r')] {
            key(&mut sim, code);
        }
        assert_eq!(sim.view().tear_armed, Some(WriteFault::PulledAfterWrite));
        key(&mut sim, KeyCode::F(6));
        assert_eq!(sim.view().tear_armed, None, "used by the write");
        let texts: Vec<&str> = sim.log.iter().map(|e| e.text.as_str()).collect();
        let intent = texts.iter().position(|t| t.contains("sale-intent"));
        let torn = texts.iter().position(|t| t.contains("torn write:"));
        assert!(
            intent.is_some() && torn == intent.map(|i| i + 1),
            "the tear is logged right after the intent: {texts:?}"
        );
        let charged = sim.cards.cards()[1].balance;
        // The next tap of that card settles the sale from the card itself: no second debit.
        key(&mut sim, KeyCode::Char('x'));
        assert_eq!(sim.cards.cards()[1].balance, charged);
        assert!(
            sim.log.iter().any(|e| e.text.contains("recovered")),
            "{:?}",
            sim.log
        );
        assert!(sim.host.stopped().is_none());
    }
}
