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
//! emulator's faults, then none); `?` shows every key;
//! Ctrl-C / Ctrl-Q quits. An Alt+key event counts as Esc then the key: that is how it arrives
//! when Esc and the next key are joined on the way (tmux's escape-time, slow links).
//!
//! Structure: [`run`] opens everything *before* touching the terminal (so a locked or corrupt
//! journal is reported as a plain error), then loops: draw, wait for a key no longer than the
//! till's next deadline (at most [`MAX_POLL_MS`]), feed the key, feed [`Input::Tick`]. The pieces
//! with logic are pure and unit-tested: the key translation ([`pc_key_from_crossterm`],
//! `action_for`), the poll timeout, the layout and the drawing of a `View` (rendered into
//! ratatui's `TestBackend`). A journal failure stops the sale loop for good: only a full-screen
//! error and "press q" remain.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use keymap::{pc_key_help, till_key_from_pc, PcKey, TillKey, COMBOS};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::{DefaultTerminal, Frame};
use shared::record::RecordBody;
use shared::UnixMillis;

use crate::clock::RealClock;
use crate::core::calendar::local_time;
use crate::core::config::{Lang, TillConfig};
use crate::core::text::tr;
use crate::core::{Beep, Displays, CUSTOMER_LINES, MERCHANT_LINES};
use crate::host::{HostOutput, TillHost};
use crate::journal::JournalError;
use crate::link::LinkEvent;
use crate::present::describe_record;
use crate::runtime::{Input, Now, RuntimeError};
use crate::sim::cards::{SimCard, SimCardKind, SimCards, WriteFault};

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
/// Quits once the till has stopped on a journal failure.
pub const FATAL_QUIT_KEY: char = 'q';
/// The smallest terminal the simulator draws its screen in.
pub const MIN_WIDTH: u16 = 40;
/// See [`MIN_WIDTH`]: both displays, one card, one log line and the bar.
pub const MIN_HEIGHT: u16 = MERCHANT_H + CUSTOMER_H + CARDS_MIN_H + LOG_MIN_H + BAR_H;

const MERCHANT_H: u16 = MERCHANT_LINES as u16 + 2;
const CUSTOMER_H: u16 = CUSTOMER_LINES as u16 + 2;
/// One card, the torn-write line and the borders.
const CARDS_MIN_H: u16 = 4;
/// One event and the borders.
const LOG_MIN_H: u16 = 3;
const LOG_MAX_H: u16 = LOG_LEN as u16 + 2;
const BAR_H: u16 = 1;
/// Width of the left column (displays and cards) when the key panel fits beside it.
const LEFT_WIDTH: u16 = 42;
/// The key panel is shown only when it gets at least this many columns.
const HELP_MIN_WIDTH: u16 = 50;
/// The most keys a combo prefix has (F2+1).
const MAX_COMBO_PREFIX: usize = 2;

/// Runs the simulator in this terminal until the user quits. Opens the simulated cards and the
/// journal in `data_dir` first; if either cannot be opened, returns the error without touching
/// the terminal. After a journal failure during the session it returns that failure once the
/// user has quit, so it stays on the terminal after the screen is restored.
pub fn run(data_dir: &Path, config: TillConfig, link: Option<&Path>) -> anyhow::Result<()> {
    let mut sim = Sim::open(data_dir, config)?;
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
    /// The journal failed: only quitting is left.
    Fatal,
}

/// What one key press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Quit,
    Till(TillKey),
    Tap(usize),
    OpenPrompt,
    PromptChar(char),
    PromptBackspace,
    PromptSubmit,
    PromptCancel,
    ArmTear,
    OpenHelp,
    CloseHelp,
    Ignore,
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

// ----- keys ----------------------------------------------------------------------------------

/// The PC key a terminal key code is, for `keymap::till_key_from_pc`; `None` for keys the layout
/// does not know (Tab, Home, …).
pub fn pc_key_from_crossterm(code: KeyCode) -> Option<PcKey> {
    Some(match code {
        KeyCode::Char(c) => PcKey::Char(c),
        KeyCode::Enter => PcKey::Enter,
        KeyCode::Backspace => PcKey::Backspace,
        KeyCode::Delete => PcKey::Delete,
        KeyCode::Esc => PcKey::Esc,
        KeyCode::F(n) => PcKey::F(n),
        KeyCode::Up => PcKey::Up,
        KeyCode::Down => PcKey::Down,
        _ => return None,
    })
}

/// Esc followed quickly by a key reaches us as one Alt+key event: terminals send Alt+key as
/// `ESC key`, and tmux (escape-time) or a slow link joins a real Esc with the next key the same
/// way. Esc is Clear, so Esc then 5 (Clear+5) must not be lost: such an event is split back into
/// an Esc press and the key without Alt. The simulator gives Alt no other meaning.
fn split_escape_prefix(key: &KeyEvent) -> Option<(KeyEvent, KeyEvent)> {
    let joined = key.kind == KeyEventKind::Press
        && key.modifiers.contains(KeyModifiers::ALT)
        && !key.modifiers.contains(KeyModifiers::CONTROL);
    if !joined {
        return None;
    }
    let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
    let rest = KeyEvent {
        modifiers: key.modifiers.difference(KeyModifiers::ALT),
        ..*key
    };
    Some((esc, rest))
}

/// Which simulated card a key taps, if any.
fn tap_index(code: KeyCode) -> Option<usize> {
    TAP_KEYS.iter().position(|&(f, letter)| match code {
        KeyCode::F(n) => n == f,
        KeyCode::Char(c) => c.eq_ignore_ascii_case(&letter),
        _ => false,
    })
}

/// What a key event means in `mode`. Only presses count (a release or an autorepeat of Esc would
/// be a second Clear); Ctrl-C and Ctrl-Q quit everywhere; other Ctrl/Alt chords do nothing.
fn action_for(key: &KeyEvent, mode: UiMode) -> Action {
    if key.kind != KeyEventKind::Press {
        return Action::Ignore;
    }
    let chord = KeyModifiers::CONTROL
        | KeyModifiers::ALT
        | KeyModifiers::SUPER
        | KeyModifiers::HYPER
        | KeyModifiers::META;
    if key.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(key.code, KeyCode::Char(c) if c.eq_ignore_ascii_case(&'c') || c.eq_ignore_ascii_case(&'q'))
    {
        return Action::Quit;
    }
    let plain = !key.modifiers.intersects(chord);
    match mode {
        UiMode::Fatal => match key.code {
            KeyCode::Char(c) if plain && c.eq_ignore_ascii_case(&FATAL_QUIT_KEY) => Action::Quit,
            _ => Action::Ignore,
        },
        UiMode::Help => Action::CloseHelp,
        UiMode::Prompt => match key.code {
            KeyCode::Enter => Action::PromptSubmit,
            KeyCode::Esc => Action::PromptCancel,
            KeyCode::Backspace => Action::PromptBackspace,
            KeyCode::Char(c) if plain => Action::PromptChar(c),
            _ => Action::Ignore,
        },
        UiMode::Selling if !plain => Action::Ignore,
        UiMode::Selling => match key.code {
            KeyCode::Char(SCAN_KEY) => Action::OpenPrompt,
            KeyCode::Char(HELP_KEY) => Action::OpenHelp,
            KeyCode::Char(c) if c.eq_ignore_ascii_case(&TEAR_KEY) => Action::ArmTear,
            code => match tap_index(code) {
                Some(index) => Action::Tap(index),
                None => pc_key_from_crossterm(code)
                    .and_then(till_key_from_pc)
                    .map_or(Action::Ignore, Action::Till),
            },
        },
    }
}

/// The hint shown while the keymap holds a started combo, e.g. "清零+ …" or "F2+1+ …".
fn combo_hint(prefix: &[TillKey], armed: bool) -> Option<String> {
    if !armed {
        return None;
    }
    if prefix.is_empty() {
        return Some("组合键 combo …".to_string());
    }
    let keys: Vec<&str> = prefix.iter().map(|k| k.name_zh()).collect();
    Some(format!("{}+ …", keys.join("+")))
}

/// How long to wait for a key: until the nearest deadline (the core's on the wall clock, the
/// keymap's on the monotonic one), between [`MIN_POLL_MS`] and [`MAX_POLL_MS`].
fn poll_timeout(deadlines: (Option<UnixMillis>, Option<u64>), now: Now) -> Duration {
    let (wall, mono) = deadlines;
    let wall = wall.map(|d| d.millis_since(now.wall));
    let mono = mono.map(|d| d.saturating_sub(now.mono_ms));
    let ms = [wall, mono]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(MAX_POLL_MS);
    Duration::from_millis(ms.clamp(MIN_POLL_MS, MAX_POLL_MS))
}

/// What the tear key arms after `armed`: the classic tear first, then every other fault in
/// turn, then nothing.
fn next_fault(armed: Option<WriteFault>) -> Option<WriteFault> {
    let order = std::iter::once(WriteFault::PulledAfterWrite).chain(
        WriteFault::ALL
            .into_iter()
            .filter(|f| *f != WriteFault::PulledAfterWrite),
    );
    match armed {
        None => Some(WriteFault::PulledAfterWrite),
        Some(fault) => order.skip_while(|f| *f != fault).nth(1),
    }
}

/// The labels of the keys that tap card `index` ("F5 z"), or blanks.
fn tap_label(index: usize) -> String {
    match TAP_KEYS.get(index) {
        Some((f, letter)) => format!("F{f} {letter}"),
        None => String::new(),
    }
}

/// The simulator's own keys, for the full help screen.
fn sim_key_help() -> Vec<String> {
    let fkeys = match (TAP_KEYS.first(), TAP_KEYS.last()) {
        (Some((first, _)), Some((last, _))) => format!("F{first}…F{last}"),
        _ => String::new(),
    };
    let letters: Vec<String> = TAP_KEYS.iter().map(|(_, c)| c.to_string()).collect();
    vec![
        "Simulator (模拟器):".to_string(),
        format!(
            "  {fkeys} / {}  tap simulated card 1…{} 刷卡",
            letters.join(" "),
            TAP_KEYS.len()
        ),
        format!("  {SCAN_KEY}  scan a payment code 扫码 (type it, Enter scans, Esc cancels)"),
        format!("  {TEAR_KEY}  tear the next card write 拔卡: pulled-after-write; again: the next fault"),
        format!("     ({}), then none", fault_names()),
        format!("  {HELP_KEY}  this help 帮助"),
        "  Ctrl-C / Ctrl-Q  quit 退出".to_string(),
    ]
}

/// The faults the tear key steps through, in its order.
fn fault_names() -> String {
    let mut names = Vec::new();
    let mut fault = next_fault(None);
    while let Some(f) = fault {
        names.push(f.name());
        fault = next_fault(Some(f));
    }
    names.join(", ")
}

// ----- drawing -------------------------------------------------------------------------------

/// Everything the screen shows; [`draw`] is a pure function of it.
struct View<'a> {
    displays: &'a Displays,
    cards: &'a [SimCard],
    help: &'a [String],
    log: &'a VecDeque<LogEntry>,
    /// The payment code being typed, when the scan prompt is open.
    prompt: Option<&'a str>,
    help_open: bool,
    fatal: Option<&'a str>,
    combo_hint: Option<String>,
    /// The fault armed for the next card write.
    tear_armed: Option<WriteFault>,
}

/// Where each panel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    merchant: Rect,
    customer: Rect,
    cards: Rect,
    help: Option<Rect>,
    log: Rect,
    bar: Rect,
}

/// Lays the panels out in `area`, or `None` when it is too small. Left column: the two displays
/// and the cards; right of it (when wide enough) the keys; under both the log; at the bottom the
/// bar.
fn plan_layout(area: Rect, card_count: usize) -> Option<Plan> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let body_h = area.height.saturating_sub(BAR_H);
    let displays_h = MERCHANT_H + CUSTOMER_H;
    let spare = body_h.saturating_sub(displays_h);
    let cards_wanted = u16::try_from(card_count.max(1))
        .unwrap_or(u16::MAX)
        .saturating_add(3);
    let cards_h = cards_wanted
        .min(spare.saturating_sub(LOG_MIN_H))
        .max(CARDS_MIN_H);
    let log_h = spare.saturating_sub(cards_h).clamp(LOG_MIN_H, LOG_MAX_H);
    let top_h = body_h.saturating_sub(log_h);
    let (left_w, help) = if area.width >= LEFT_WIDTH + HELP_MIN_WIDTH {
        let help = Rect::new(
            area.x.saturating_add(LEFT_WIDTH),
            area.y,
            area.width - LEFT_WIDTH,
            top_h,
        );
        (LEFT_WIDTH, Some(help))
    } else {
        (area.width, None)
    };
    Some(Plan {
        merchant: Rect::new(area.x, area.y, left_w, MERCHANT_H),
        customer: Rect::new(
            area.x,
            area.y.saturating_add(MERCHANT_H),
            left_w,
            CUSTOMER_H,
        ),
        cards: Rect::new(
            area.x,
            area.y.saturating_add(displays_h),
            left_w,
            top_h.saturating_sub(displays_h),
        ),
        help,
        log: Rect::new(area.x, area.y.saturating_add(top_h), area.width, log_h),
        bar: Rect::new(area.x, area.y.saturating_add(body_h), area.width, BAR_H),
    })
}

fn draw(frame: &mut Frame, view: &View) {
    let area = frame.area();
    if let Some(error) = view.fatal {
        draw_fatal(frame, area, error);
        return;
    }
    if view.help_open {
        draw_help_screen(frame, area, view.help);
        return;
    }
    let Some(plan) = plan_layout(area, view.cards.len()) else {
        draw_too_small(frame, area);
        return;
    };
    draw_display(
        frame,
        plan.merchant,
        " 商户屏 Merchant ",
        &view.displays.merchant.lines,
        true,
        view.combo_hint.as_deref(),
    );
    draw_display(
        frame,
        plan.customer,
        " 顾客屏 Customer ",
        &view.displays.customer.lines,
        false,
        None,
    );
    draw_cards(frame, plan.cards, view.cards, view.tear_armed);
    if let Some(help) = plan.help {
        let block = Block::bordered()
            .title(" 按键 Keys (? 全部 all) ")
            .border_style(Style::new().fg(Color::Blue));
        let width = usize::from(help.width.saturating_sub(2));
        let lines: Vec<Line> = side_help(view.help, width)
            .into_iter()
            .map(Line::from)
            .collect();
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            help,
        );
    }
    draw_log(frame, plan.log, view.log);
    draw_bar(frame, plan.bar, view.prompt, view.cards.len());
}

/// One of the till's displays: a box with the screen's lines; the merchant's first line is the
/// status line, drawn as a bar.
fn draw_display(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    lines: &[String],
    status: bool,
    hint: Option<&str>,
) {
    let mut block = Block::bordered()
        .title(Line::from(title).style(Style::new().add_modifier(Modifier::BOLD)))
        .border_style(Style::new().fg(Color::Cyan));
    if let Some(hint) = hint {
        let hint = Span::styled(
            format!(" {hint} "),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        );
        block = block.title_bottom(Line::from(hint).right_aligned());
    }
    let inner_w = usize::from(area.width.saturating_sub(2));
    let text: Vec<Line> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if status && i == 0 {
                Line::from(Span::styled(
                    pad_right(line, inner_w),
                    Style::new().add_modifier(Modifier::REVERSED),
                ))
            } else {
                Line::from(line.as_str())
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(text).block(block), area);
}

fn draw_cards(frame: &mut Frame, area: Rect, cards: &[SimCard], tear_armed: Option<WriteFault>) {
    let block = Block::bordered()
        .title(" 模拟卡 Cards (刷卡 tap) ")
        .border_style(Style::new().fg(Color::Green));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let name_w = cards
        .iter()
        .map(|c| display_width(&c.name))
        .max()
        .unwrap_or(0);
    let uid_w = cards
        .iter()
        .map(|c| c.uid.to_string().len())
        .max()
        .unwrap_or(0);
    let key_w = (0..cards.len())
        .map(|i| tap_label(i).len())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = cards
        .iter()
        .enumerate()
        .map(|(i, card)| {
            let dim = Style::new().fg(Color::DarkGray);
            let (balance, balance_style) = match card.kind {
                SimCardKind::Wallet => {
                    (format!("¥{}", card.balance), Style::new().fg(Color::Green))
                }
                SimCardKind::OtherCampus(_) => ("外校卡".to_string(), dim),
                SimCardKind::Blank => ("空白卡".to_string(), Style::new().fg(Color::Cyan)),
                SimCardKind::Unreadable => ("非校园卡".to_string(), dim),
            };
            Line::from(vec![
                Span::styled(
                    format!("{:<key_w$} ", tap_label(i)),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                Span::raw(pad_right(&card.name, name_w)),
                Span::raw(" "),
                Span::styled(
                    format!("{:<uid_w$} ", card.uid.to_string()),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::styled(pad_left(&balance, 8), balance_style),
            ])
        })
        .collect();
    let list = Rect {
        height: inner.height.saturating_sub(1),
        ..inner
    };
    frame.render_widget(Paragraph::new(lines), list);
    let tear_row = Rect {
        y: inner.y.saturating_add(inner.height.saturating_sub(1)),
        height: 1,
        ..inner
    };
    let tear = if let Some(fault) = tear_armed {
        Line::from(Span::styled(
            format!("(!) next write: {fault} 下次写卡中断"),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ))
    } else {
        Line::from(Span::styled(
            format!("{TEAR_KEY} = tear the next card write 拔卡"),
            Style::new().fg(Color::DarkGray),
        ))
    };
    frame.render_widget(Paragraph::new(tear), tear_row);
}

fn draw_log(frame: &mut Frame, area: Rect, log: &VecDeque<LogEntry>) {
    let block = Block::bordered()
        .title(" 记录 Log ")
        .border_style(Style::new().fg(Color::Magenta));
    let inner = block.inner(area);
    let shown = usize::from(inner.height).min(log.len());
    let lines: Vec<Line> = log
        .iter()
        .skip(log.len().saturating_sub(shown))
        .map(|entry| {
            let style = match entry.kind {
                LogKind::Info => Style::new(),
                LogKind::Good => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                LogKind::Bad => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                LogKind::Warn => Style::new().fg(Color::Yellow),
                LogKind::Record => Style::new().fg(Color::Cyan),
            };
            Line::from(vec![
                Span::styled(entry.time.clone(), Style::new().fg(Color::DarkGray)),
                Span::raw(" "),
                Span::styled(entry.text.clone(), style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The bottom bar: the scan prompt while it is open, the simulator's keys otherwise.
fn draw_bar(frame: &mut Frame, area: Rect, prompt: Option<&str>, card_count: usize) {
    let key = Style::new().fg(Color::Black).bg(Color::Gray);
    match prompt {
        Some(text) => {
            let label = " 扫码 Scan code: ";
            let tail = "  Enter 扫码 scan, Esc 取消 cancel";
            let room = usize::from(area.width)
                .saturating_sub(display_width(label))
                .saturating_sub(display_width(tail))
                .max(1);
            let shown = tail_fitting(text, room.saturating_sub(1));
            let line = Line::from(vec![
                Span::styled(label, Style::new().fg(Color::Black).bg(Color::Yellow)),
                Span::raw(" "),
                Span::styled(shown, Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(" "),
                Span::styled(tail, Style::new().fg(Color::DarkGray)),
            ]);
            frame.render_widget(Paragraph::new(line), area);
            let cursor_x = display_width(label)
                .saturating_add(1)
                .saturating_add(display_width(shown));
            let cursor_x = area
                .x
                .saturating_add(u16::try_from(cursor_x).unwrap_or(u16::MAX));
            if cursor_x < area.right() && area.height > 0 {
                frame.set_cursor_position(Position::new(cursor_x, area.y));
            }
        }
        None => {
            // Fits 80 columns: the F-keys are shown next to the cards; past four cards only the
            // first and the last letter.
            let letters: Vec<String> = TAP_KEYS
                .iter()
                .take(card_count)
                .map(|(_, c)| c.to_string())
                .collect();
            let letters = match (letters.first(), letters.last()) {
                (Some(first), Some(last)) if letters.len() > 4 => vec![format!("{first}…{last}")],
                _ => letters,
            };
            let mut spans = Vec::new();
            for (keys, what) in [
                (letters.join(" "), "刷卡 tap"),
                (SCAN_KEY.to_string(), "扫码 scan"),
                (TEAR_KEY.to_string(), "拔卡 tear"),
                (HELP_KEY.to_string(), "按键 keys"),
                ("Ctrl-Q".to_string(), "退出 quit"),
            ] {
                if !keys.is_empty() {
                    spans.push(Span::styled(format!(" {keys} "), key));
                    spans.push(Span::raw(format!(" {what} ")));
                }
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
        }
    }
}

fn draw_fatal(frame: &mut Frame, area: Rect, error: &str) {
    frame.render_widget(Clear, area);
    let style = Style::new().fg(Color::White).bg(Color::Red);
    let block = Block::bordered().title(" 致命错误 FATAL ").style(style);
    let text = vec![
        Line::from("停止收款 The till has stopped selling.").style(Style::new().add_modifier(Modifier::BOLD)),
        Line::from(""),
        Line::from("账本写入失败 The journal failed:"),
        Line::from(error),
        Line::from(""),
        Line::from(
            "No more sales are taken. Fix the cause (disk full? data directory gone?) and start the \
             simulator again: the till resumes its unfinished sales from the journal.",
        ),
        Line::from(""),
        Line::from("按 q 退出 - press q to quit").style(Style::new().add_modifier(Modifier::BOLD)),
    ];
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
        area,
    );
}

fn draw_help_screen(frame: &mut Frame, area: Rect, help: &[String]) {
    frame.render_widget(Clear, area);
    let block = Block::bordered().title(" 按键 Keys - 任意键关闭 any key closes ");
    let mut lines: Vec<Line> = help.iter().map(|l| Line::from(l.as_str())).collect();
    lines.extend(sim_key_help().into_iter().map(Line::from));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

fn draw_too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "终端太小 Terminal too small ({}×{}): please enlarge it to at least {MIN_WIDTH}×{MIN_HEIGHT}. Ctrl-Q 退出 quit",
        area.width, area.height
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

/// Columns `text` takes on a terminal (wide characters count two).
fn display_width(text: &str) -> usize {
    Span::raw(text).width()
}

/// `text` padded with spaces to `width` columns (unchanged when already wider).
fn pad_right(text: &str, width: usize) -> String {
    let pad = width.saturating_sub(display_width(text));
    format!("{text}{}", " ".repeat(pad))
}

/// `text` right-aligned in `width` columns (unchanged when already wider).
fn pad_left(text: &str, width: usize) -> String {
    let pad = width.saturating_sub(display_width(text));
    format!("{}{text}", " ".repeat(pad))
}

/// The key panel beside the displays: [`pc_key_help`] with its combo table shortened to the
/// keys and the manual's words (two columns when `width` allows), so the whole panel fits a
/// 110x32 terminal; `?` shows the full text. Falls back to the full text if its shape changes.
fn side_help(help: &[String], width: usize) -> Vec<String> {
    let Some(split) = help.iter().position(|l| l.starts_with("Combos")) else {
        return help.to_vec();
    };
    let mut lines: Vec<String> = help.iter().take(split.saturating_add(1)).cloned().collect();
    let entries: Vec<String> = COMBOS
        .iter()
        .map(|spec| format!("{spec} {}", spec.manual_zh))
        .collect();
    let col_w = entries.iter().map(|e| display_width(e)).max().unwrap_or(0);
    let cols = if col_w.saturating_mul(2).saturating_add(4) <= width {
        2
    } else {
        1
    };
    let rows = entries.len().div_ceil(cols);
    for row in 0..rows {
        let left = entries.get(row).map_or("", String::as_str);
        let line = match entries.get(row.saturating_add(rows)).filter(|_| cols == 2) {
            Some(right) => format!("  {}  {right}", pad_right(left, col_w)),
            None => format!("  {left}"),
        };
        lines.push(line);
    }
    // What follows the combo table (the timing rules); the table's own rows are indented.
    lines.extend(
        help.iter()
            .skip(split.saturating_add(1))
            .filter(|l| !l.starts_with(' '))
            .cloned(),
    );
    lines
}

/// The longest end of `text` that fits in `width` columns (so the cursor end of a long code shows).
fn tail_fitting(text: &str, width: usize) -> &str {
    let mut start = text.len();
    let mut used = 0;
    for (i, c) in text.char_indices().rev() {
        let w = display_width(c.encode_utf8(&mut [0; 4]));
        if used + w > width {
            break;
        }
        used += w;
        start = i;
    }
    text.get(start..).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Screen;
    use keymap::PC_KEYS;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use shared::Fen;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn with(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn crossterm_keys_translate_to_pc_keys() {
        let cases = [
            (KeyCode::Char('7'), Some(PcKey::Char('7'))),
            (KeyCode::Char('.'), Some(PcKey::Char('.'))),
            (KeyCode::Char('C'), Some(PcKey::Char('C'))),
            (KeyCode::Enter, Some(PcKey::Enter)),
            (KeyCode::Backspace, Some(PcKey::Backspace)),
            (KeyCode::Delete, Some(PcKey::Delete)),
            (KeyCode::Esc, Some(PcKey::Esc)),
            (KeyCode::F(1), Some(PcKey::F(1))),
            (KeyCode::F(2), Some(PcKey::F(2))),
            (KeyCode::Up, Some(PcKey::Up)),
            (KeyCode::Down, Some(PcKey::Down)),
            (KeyCode::Tab, None),
            (KeyCode::Home, None),
            (KeyCode::Left, None),
            (KeyCode::Null, None),
        ];
        for (code, expected) in cases {
            assert_eq!(pc_key_from_crossterm(code), expected, "{code:?}");
        }
        // And through the keymap: the keys the brief's check presses.
        let till = |code| action_for(&press(code), UiMode::Selling);
        assert_eq!(till(KeyCode::Char('1')), Action::Till(TillKey::Digit(1)));
        assert_eq!(till(KeyCode::Char('.')), Action::Till(TillKey::Dot));
        assert_eq!(till(KeyCode::Enter), Action::Till(TillKey::Enter));
        assert_eq!(till(KeyCode::Esc), Action::Till(TillKey::Clear));
        assert_eq!(till(KeyCode::Char('c')), Action::Till(TillKey::Clear));
        assert_eq!(till(KeyCode::Char('C')), Action::Till(TillKey::Clear));
        assert_eq!(till(KeyCode::Backspace), Action::Till(TillKey::Delete));
        assert_eq!(till(KeyCode::F(2)), Action::Till(TillKey::F2));
        assert_eq!(till(KeyCode::Char('s')), Action::Till(TillKey::F2));
        assert_eq!(till(KeyCode::Tab), Action::Ignore);
        assert_eq!(
            action_for(
                &with(KeyCode::Char('1'), KeyModifiers::SHIFT),
                UiMode::Selling
            ),
            Action::Till(TillKey::Digit(1)),
            "shift is not a chord (keypad digits, Caps Lock)"
        );
    }

    #[test]
    fn esc_joined_with_the_next_key_is_split_again() {
        let joined = with(KeyCode::Char('5'), KeyModifiers::ALT);
        let (esc, rest) = split_escape_prefix(&joined).expect("split");
        assert_eq!(
            action_for(&esc, UiMode::Selling),
            Action::Till(TillKey::Clear)
        );
        assert_eq!(
            action_for(&rest, UiMode::Selling),
            Action::Till(TillKey::Digit(5))
        );
        let (_, rest) =
            split_escape_prefix(&with(KeyCode::Enter, KeyModifiers::ALT)).expect("split");
        assert_eq!(
            action_for(&rest, UiMode::Selling),
            Action::Till(TillKey::Enter),
            "Clear+Enter"
        );
        assert_eq!(split_escape_prefix(&press(KeyCode::Char('5'))), None);
        assert_eq!(
            split_escape_prefix(&with(
                KeyCode::Char('c'),
                KeyModifiers::CONTROL | KeyModifiers::ALT
            )),
            None
        );
        let mut released = joined;
        released.kind = KeyEventKind::Release;
        assert_eq!(split_escape_prefix(&released), None);
    }

    #[test]
    fn only_presses_count() {
        for kind in [KeyEventKind::Release, KeyEventKind::Repeat] {
            let mut key = press(KeyCode::Esc);
            key.kind = kind;
            for mode in [UiMode::Selling, UiMode::Prompt, UiMode::Help, UiMode::Fatal] {
                assert_eq!(action_for(&key, mode), Action::Ignore, "{kind:?} {mode:?}");
            }
        }
    }

    #[test]
    fn ctrl_c_and_ctrl_q_quit_everywhere_and_other_chords_do_nothing() {
        for mode in [UiMode::Selling, UiMode::Prompt, UiMode::Help, UiMode::Fatal] {
            for c in ['c', 'C', 'q', 'Q'] {
                assert_eq!(
                    action_for(&with(KeyCode::Char(c), KeyModifiers::CONTROL), mode),
                    Action::Quit,
                    "{c} {mode:?}"
                );
            }
        }
        // Ctrl-C must not be read as `c` = Clear.
        assert_eq!(
            action_for(
                &with(KeyCode::Char('1'), KeyModifiers::ALT),
                UiMode::Selling
            ),
            Action::Ignore
        );
        assert_eq!(
            action_for(
                &with(KeyCode::Char('z'), KeyModifiers::CONTROL),
                UiMode::Selling
            ),
            Action::Ignore
        );
        assert_eq!(
            action_for(
                &with(KeyCode::Char('x'), KeyModifiers::CONTROL),
                UiMode::Prompt
            ),
            Action::Ignore
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('q')), UiMode::Selling),
            Action::Ignore,
            "q alone does not quit a till"
        );
    }

    #[test]
    fn simulator_keys() {
        let act = |code| action_for(&press(code), UiMode::Selling);
        for (i, (f, letter)) in TAP_KEYS.iter().enumerate() {
            assert_eq!(act(KeyCode::F(*f)), Action::Tap(i));
            assert_eq!(act(KeyCode::Char(*letter)), Action::Tap(i));
            assert_eq!(
                act(KeyCode::Char(letter.to_ascii_uppercase())),
                Action::Tap(i)
            );
        }
        assert_eq!(act(KeyCode::Char('/')), Action::OpenPrompt);
        assert_eq!(act(KeyCode::Char('r')), Action::ArmTear);
        assert_eq!(act(KeyCode::Char('R')), Action::ArmTear);
        assert_eq!(act(KeyCode::Char('?')), Action::OpenHelp);

        let prompt = |code| action_for(&press(code), UiMode::Prompt);
        assert_eq!(
            prompt(KeyCode::Char('c')),
            Action::PromptChar('c'),
            "letters are typed, not Clear"
        );
        assert_eq!(
            prompt(KeyCode::Char('z')),
            Action::PromptChar('z'),
            "nor taps"
        );
        assert_eq!(prompt(KeyCode::Enter), Action::PromptSubmit);
        assert_eq!(prompt(KeyCode::Esc), Action::PromptCancel);
        assert_eq!(prompt(KeyCode::Backspace), Action::PromptBackspace);
        assert_eq!(prompt(KeyCode::F(5)), Action::Ignore);

        assert_eq!(
            action_for(&press(KeyCode::Char('1')), UiMode::Help),
            Action::CloseHelp
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('q')), UiMode::Fatal),
            Action::Quit
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('Q')), UiMode::Fatal),
            Action::Quit
        );
        for code in [
            KeyCode::Char('1'),
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::F(5),
            KeyCode::Char('z'),
        ] {
            assert_eq!(
                action_for(&press(code), UiMode::Fatal),
                Action::Ignore,
                "{code:?}: no sales after a fatal error"
            );
        }
    }

    #[test]
    fn simulator_keys_are_not_till_keys() {
        let mut ours: Vec<PcKey> = vec![];
        for (f, letter) in TAP_KEYS {
            ours.push(PcKey::F(f));
            ours.push(PcKey::Char(letter));
            ours.push(PcKey::Char(letter.to_ascii_uppercase()));
        }
        for c in [SCAN_KEY, TEAR_KEY, HELP_KEY, FATAL_QUIT_KEY] {
            ours.push(PcKey::Char(c));
            ours.push(PcKey::Char(c.to_ascii_uppercase()));
        }
        for key in &ours {
            assert_eq!(till_key_from_pc(*key), None, "{key:?} is a till key");
            assert!(!PC_KEYS.iter().any(|b| b.pc_keys.contains(key)), "{key:?}");
        }
        let mut letters: Vec<char> = TAP_KEYS.iter().map(|(_, c)| *c).collect();
        letters.extend([SCAN_KEY, TEAR_KEY, HELP_KEY]);
        let count = letters.len();
        letters.sort_unstable();
        letters.dedup();
        assert_eq!(letters.len(), count, "a simulator key is used twice");
    }

    #[test]
    fn poll_timeout_follows_the_nearest_deadline() {
        let now = Now {
            wall: UnixMillis(1_000_000),
            mono_ms: 5_000,
        };
        let ms = |d: (Option<UnixMillis>, Option<u64>)| poll_timeout(d, now).as_millis();
        assert_eq!(ms((None, None)), u128::from(MAX_POLL_MS));
        assert_eq!(ms((None, Some(5_100))), 100);
        assert_eq!(ms((Some(UnixMillis(1_000_040)), Some(5_100))), 40);
        assert_eq!(ms((Some(UnixMillis(1_000_040)), None)), 40);
        assert_eq!(
            ms((Some(UnixMillis(9_000_000)), Some(u64::MAX))),
            u128::from(MAX_POLL_MS)
        );
        assert_eq!(
            ms((Some(UnixMillis(0)), None)),
            u128::from(MIN_POLL_MS),
            "overdue: soon, never a spin"
        );
        assert_eq!(
            ms((Some(UnixMillis(i64::MIN)), Some(0))),
            u128::from(MIN_POLL_MS)
        );
    }

    #[test]
    fn combo_hints() {
        assert_eq!(
            combo_hint(&[TillKey::Clear], true).as_deref(),
            Some("清零+ …")
        );
        assert_eq!(
            combo_hint(&[TillKey::F2, TillKey::Digit(1)], true).as_deref(),
            Some("F2+1+ …")
        );
        assert_eq!(combo_hint(&[TillKey::Clear], false), None);
        assert!(combo_hint(&[], true).is_some());
    }

    #[test]
    fn the_side_panel_keeps_every_key_and_combo() {
        let help = pc_key_help();
        for width in [66, 40] {
            let side = side_help(&help, width).join("\n");
            for spec in COMBOS {
                assert!(
                    side.contains(&spec.to_string()) && side.contains(spec.manual_zh),
                    "{spec}:\n{side}"
                );
            }
            for line in help.iter().take(10) {
                assert!(side.contains(line.as_str()), "{line}");
            }
            assert!(side.contains("Clear waits"), "{side}");
        }
        assert_eq!(
            side_help(&help, 66).len(),
            10 + 1 + COMBOS.len().div_ceil(2) + 1,
            "two columns"
        );
        assert_eq!(
            side_help(&help, 40).len(),
            10 + 1 + COMBOS.len() + 1,
            "one column"
        );
        let odd = vec!["something else".to_string()];
        assert_eq!(side_help(&odd, 66), odd);
    }

    #[test]
    fn text_helpers() {
        assert_eq!(display_width("欢迎光临"), 8);
        assert_eq!(pad_right("机号1", 8), "机号1   ");
        assert_eq!(pad_right("toolong", 3), "toolong");
        assert_eq!(tail_fitting("1234567890", 4), "7890");
        assert_eq!(tail_fitting("码码码", 5), "码码");
        assert_eq!(tail_fitting("abc", 0), "");
        assert_eq!(tap_label(0), "F5 z");
        assert_eq!(tap_label(99), "");
    }

    struct Fixture {
        displays: Displays,
        cards: Vec<SimCard>,
        help: Vec<String>,
        log: VecDeque<LogEntry>,
    }

    fn fixture() -> Fixture {
        let screen = |lines: &[&str]| Screen {
            lines: lines.iter().map(|l| l.to_string()).collect(),
        };
        let mut cards = crate::sim::cards::default_cards();
        if let Some(card) = cards.first_mut() {
            card.balance = Fen::new(8_750);
        }
        let log = [
            LogEntry {
                time: "11:30:01".into(),
                kind: LogKind::Info,
                text: "刷卡 tap card-1 1A2B3C4D".into(),
            },
            LogEntry {
                time: "11:30:01".into(),
                kind: LogKind::Record,
                text: "1 m1 sale-intent ¥12.50".into(),
            },
            LogEntry {
                time: "11:30:02".into(),
                kind: LogKind::Good,
                text: "♪ 成功".into(),
            },
        ];
        Fixture {
            displays: Displays {
                merchant: screen(&["机号1 联机", "交易成功", "¥12.50", "余额 ¥87.50"]),
                customer: screen(&["交易成功", "余额 ¥87.50"]),
            },
            cards,
            help: pc_key_help(),
            log: log.into_iter().collect(),
        }
    }

    fn view(f: &Fixture) -> View<'_> {
        View {
            displays: &f.displays,
            cards: &f.cards,
            help: &f.help,
            log: &f.log,
            prompt: None,
            help_open: false,
            fatal: None,
            combo_hint: None,
            tear_armed: None,
        }
    }

    /// Renders `view` at `width`×`height`; returns the screen as text, one row per line.
    fn render(view: &View, width: u16, height: u16) -> (String, ratatui::buffer::Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
        terminal.draw(|frame| draw(frame, view)).expect("draw");
        let buffer = terminal.backend().buffer().clone();
        // The buffer's Debug form writes each row once, skipping the cells wide characters cover.
        (format!("{buffer:?}"), buffer)
    }

    #[test]
    fn the_main_screen_shows_displays_cards_keys_and_log() {
        let f = fixture();
        let (text, buffer) = render(&view(&f), 100, 30);
        for expected in [
            "商户屏 Merchant",
            "顾客屏 Customer",
            "机号1 联机",
            "交易成功",
            "余额 ¥87.50",
            "card-1",
            "1A2B3C4D",
            "¥87.50",
            "0452617A8B9C80",
            "F5 z",
            "F8 b",
            "外校卡",
            "空白卡",
            "非校园卡",
            "Esc / c",
            "清零",
            "♪ 成功",
            "sale-intent",
            "扫码 scan",
            "tear the next card write",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        // Wide characters keep the boxes square: the merchant box's right border is in place on
        // the rows with Chinese text.
        let right = LEFT_WIDTH - 1;
        for y in 0..MERCHANT_H + CUSTOMER_H {
            let symbol = buffer.cell((right, y)).map(|c| c.symbol().to_string());
            let expected = if y == 0 || y == MERCHANT_H {
                "┐"
            } else if y == MERCHANT_H - 1 || y == MERCHANT_H + CUSTOMER_H - 1 {
                "┘"
            } else {
                "│"
            };
            assert_eq!(symbol.as_deref(), Some(expected), "row {y}:\n{text}");
        }
    }

    #[test]
    fn prompt_combo_and_tear_states_show() {
        let f = fixture();
        let mut v = view(&f);
        v.prompt = Some("134567890123456789");
        v.combo_hint = combo_hint(&[TillKey::Clear], true);
        v.tear_armed = Some(WriteFault::PulledAfterWrite);
        let (text, _) = render(&v, 110, 32);
        for expected in [
            "扫码 Scan code",
            "134567890123456789",
            "Esc 取消",
            "清零+ …",
            "next write: pulled-after-write",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn fatal_and_help_screens() {
        let f = fixture();
        let mut v = view(&f);
        v.help_open = true;
        let (text, _) = render(&v, 110, 40);
        assert!(
            text.contains("任意键关闭")
                && text.contains("F2+1+7")
                && text.contains("Ctrl-C / Ctrl-Q"),
            "{text}"
        );
        v.fatal = Some("journal: I/O error on journal /x: No space left on device");
        let (text, _) = render(&v, 100, 30);
        assert!(
            text.contains("FATAL")
                && text.contains("No space left")
                && text.contains("press q to quit"),
            "{text}"
        );
        assert!(
            !text.contains("Merchant"),
            "nothing of the till stays on screen:\n{text}"
        );
    }

    #[test]
    fn a_small_terminal_asks_to_be_enlarged() {
        let f = fixture();
        let (text, _) = render(&view(&f), 60, 12);
        assert!(
            text.contains("终端太小") && text.contains("enlarge"),
            "{text}"
        );
        let (text, _) = render(&view(&f), MIN_WIDTH, MIN_HEIGHT);
        assert!(
            text.contains("机号1") && !text.contains("终端太小"),
            "{text}"
        );
    }

    #[test]
    fn every_size_draws_without_panicking() {
        let mut f = fixture();
        // Worst cases: lines wider than any box, many cards, a long prompt, a full log.
        f.displays.merchant.lines[1] = "长".repeat(200);
        f.cards = (0..40)
            .flat_map(|_| crate::sim::cards::default_cards())
            .collect();
        for i in 0..LOG_LEN {
            f.log.push_back(LogEntry {
                time: "00:00:00".into(),
                kind: LogKind::Bad,
                text: format!("{i} {}", "x".repeat(300)),
            });
        }
        let code = "码".repeat(MAX_CODE_CHARS);
        let mut v = view(&f);
        v.prompt = Some(&code);
        v.combo_hint = Some("F2+1+ …".into());
        v.tear_armed = Some(WriteFault::PulledAfterWrite);
        for width in (0..=130)
            .step_by(7)
            .chain([1, 2, MIN_WIDTH - 1, MIN_WIDTH, 91, 92, 93])
        {
            for height in (0..=45).step_by(4).chain([1, MIN_HEIGHT - 1, MIN_HEIGHT]) {
                render(&v, width, height);
                if let Some(plan) = plan_layout(Rect::new(0, 0, width, height), f.cards.len()) {
                    let area = Rect::new(0, 0, width, height);
                    for rect in [plan.merchant, plan.customer, plan.cards, plan.log, plan.bar]
                        .into_iter()
                        .chain(plan.help)
                    {
                        assert_eq!(
                            area.intersection(rect),
                            rect,
                            "{width}x{height}: {rect:?} outside"
                        );
                    }
                }
            }
        }
        v.help_open = true;
        render(&v, 3, 2);
        v.fatal = Some("x");
        render(&v, 1, 1);
        render(&v, 0, 0);
    }

    #[test]
    fn layout_at_the_checked_sizes() {
        let plan = plan_layout(Rect::new(0, 0, 110, 32), 4).expect("110x32 fits");
        assert!(plan.help.is_some());
        assert_eq!(plan.log.height, LOG_MAX_H, "eight log lines");
        assert!(plan.cards.height >= 4 + 3);
        let plan = plan_layout(Rect::new(0, 0, 80, 24), 4).expect("80x24 fits");
        assert_eq!(plan.help, None, "too narrow for the key panel: ? shows it");
        assert!(plan.log.height >= LOG_MIN_H);
        assert_eq!(plan_layout(Rect::new(0, 0, 80, MIN_HEIGHT - 1), 4), None);
        let f = fixture();
        let (text, _) = render(&view(&f), 80, 24);
        assert!(
            text.contains("z…m") && text.contains("退出 quit"),
            "the bar fits 80 columns:\n{text}"
        );
    }

    // ----- the session, on a real journal in a temporary directory ---------------------------

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
