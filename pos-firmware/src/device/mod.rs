//! The till on its own hardware (`pos-firmware device`): the same [`TillHost`] as the simulator,
//! fed by the real drivers; this loop only translates them into inputs and renders what the
//! host hands back (displays, beeps, log lines). The keypad (evdev) and the code scanner are read on threads
//! ([`inputs`]); the MFRC522 is polled from this loop every [`READER_POLL_MS`], because the
//! card write that follows a tap must run on the same reader inside the runtime's effect loop;
//! the link server's events come in on the same channel as the keys; the displays and the
//! buzzer go to a [`DeviceDisplay`] (a [`LineDisplay`], or the panels of [`panel`] with the
//! buzzer and light of [`buzzer`]), which is polled every pass so the buzzer's patterns play
//! without blocking.
//!
//! The reader is watched: a tap that fails is followed by a chip check
//! ([`ReaderHealth::check_chip`]), and every [`READER_CHECK_INTERVAL_MS`] the idle chip is
//! checked too. A chip that stopped answering or was reset behind our back (brown-out, loose
//! cable) is dropped, the merchant sees "读卡器故障", and the loop re-opens it (hard reset line
//! included) with a capped back-off until it answers again. Selling by code and every key
//! combo go on meanwhile; an interrupted card write stays unresolved for the card's next tap.
//!
//! [`DeviceTill::step`] is one pass of the loop with the time passed in, so tests drive the
//! whole device against the emulated chip (`tests/device.rs`).

pub mod bench;
pub mod buzzer;
pub mod display;
pub mod inputs;
pub mod outputs;
pub mod panel;

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use keymap::TillKey;
use shared::backoff::Backoff;

use crate::core::card::{
    CardProblem, CardRead, CardWrite, CardWriteOutcome, IssueOutcome, IssueRefusal,
};
use crate::core::config::TillConfig;
use crate::core::Displays;
use crate::host::{HostOutput, TillHost};
use crate::link::LinkEvent;
use crate::present::describe_record;
use crate::reader::driver::Mfrc522Reader;
use crate::reader::spidev::SpidevReader;
use crate::reader::{CardIoError, MifareReader};
use crate::runtime::{CardWriter, Input, Now, TillRuntime};
use crate::wallet::{WalletConfig, WalletReader};

pub use display::{DeviceDisplay, LineDisplay};

/// How often the reader looks for a card (a tap is seen within this).
pub const READER_POLL_MS: u64 = 100;
/// How often an idle reader's chip is checked.
pub const READER_CHECK_INTERVAL_MS: u64 = 5_000;
/// The first wait before re-opening a failed reader; doubled after every failed attempt…
pub const READER_REOPEN_FIRST_MS: u64 = 1_000;
/// …up to this. Without jitter ([`Backoff::without_jitter`]): one reader has no herd to spread,
/// and the merchant gets a steady rhythm of attempts.
pub const READER_REOPEN_MAX_MS: u64 = 30_000;

/// The reader's re-open back-off: 1 s, 2 s, 4 s, … up to 30 s.
fn reader_backoff() -> Backoff {
    Backoff::without_jitter(READER_REOPEN_FIRST_MS, READER_REOPEN_MAX_MS)
}

/// How often the loop tells systemd it is alive (`WATCHDOG=1`; the unit's `WatchdogSec=` is
/// 20 s, so a loop hung for that long is restarted).
pub const WATCHDOG_NOTIFY_MS: u64 = 1_000;

/// Something for the device loop, from the input threads or the link server.
#[derive(Debug)]
pub enum DeviceEvent {
    Key(TillKey),
    /// A line from the code scanner.
    Code(String),
    Link(LinkEvent),
    /// An input thread ended (device unplugged, end of file).
    InputLost {
        what: &'static str,
        path: String,
        why: String,
    },
}

/// A reader whose chip can be checked without a card: the real one and the emulated one.
pub trait ReaderHealth {
    /// `Err` when the chip no longer answers as it did at start.
    fn check_chip(&self) -> Result<(), CardIoError>;
}

/// A boxed reader is as healthy as the reader in it.
impl<R: ReaderHealth + ?Sized> ReaderHealth for Box<R> {
    fn check_chip(&self) -> Result<(), CardIoError> {
        (**self).check_chip()
    }
}

impl ReaderHealth for SpidevReader {
    fn check_chip(&self) -> Result<(), CardIoError> {
        SpidevReader::check_chip(self)
    }
}

impl<SPI: embedded_hal::spi::SpiDevice> ReaderHealth for Mfrc522Reader<SPI> {
    fn check_chip(&self) -> Result<(), CardIoError> {
        Mfrc522Reader::check_chip(self)
    }
}

/// Opens (again) the reader: the real one is `open_reader` on its spidev path.
pub type ReaderOpener<R> = Box<dyn FnMut() -> Result<R, String> + Send>;

/// What the device loop reports besides the display (for its log and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceNote {
    /// A card was read (its UID, or the problem).
    Tapped(String),
    ReaderDown(String),
    ReaderBack,
    ReaderReopenFailed(String),
    InputLost(String),
}

/// The reader as the loop holds it: working, or down until `retry_at_mono`.
enum ReaderSlot<R: MifareReader> {
    Up {
        wallet: WalletReader<R>,
        checked_at_mono: u64,
    },
    Down {
        retry_at_mono: u64,
        backoff: Backoff,
    },
}

impl<R: MifareReader> ReaderSlot<R> {
    /// The reader just failed: the first re-open is due after the back-off's first delay.
    fn down_since(now: Now) -> ReaderSlot<R> {
        let mut backoff = reader_backoff();
        let first = backoff.next_delay_ms();
        ReaderSlot::Down {
            retry_at_mono: now.mono_ms.saturating_add(first),
            backoff,
        }
    }
}

/// The card writer while the reader is down: nothing can be written (no card could have been
/// read either, so the core never asks; if it did, the outcome is unknown, which keeps any
/// intent unresolved for the card's next tap — never a blind abort).
struct NoReader;

impl CardWriter for NoReader {
    fn write_card(&mut self, _write: &CardWrite) -> CardWriteOutcome {
        CardWriteOutcome::Unknown
    }
    fn issue_card(&mut self) -> IssueOutcome {
        IssueOutcome::NotIssued(IssueRefusal::ReaderFault)
    }
}

/// The till on its hardware.
pub struct DeviceTill<R: MifareReader + ReaderHealth> {
    host: TillHost,
    reader: ReaderSlot<R>,
    wallet_config: WalletConfig,
    opener: ReaderOpener<R>,
    display: Box<dyn DeviceDisplay>,
    shown: Option<Displays>,
    /// What happened since the last [`DeviceTill::take_notes`] (tests read it; `run` drops it
    /// after every pass).
    notes: Vec<DeviceNote>,
}

impl<R: MifareReader + ReaderHealth> DeviceTill<R> {
    /// Opens the journal in `data_dir` and the reader. A reader that cannot be opened at start
    /// is not fatal: the till starts with the reader down and keeps trying.
    pub fn open(
        data_dir: &Path,
        config: TillConfig,
        wallet_config: WalletConfig,
        mut opener: ReaderOpener<R>,
        display: Box<dyn DeviceDisplay>,
        now: Now,
    ) -> anyhow::Result<DeviceTill<R>> {
        let host = TillHost::open(data_dir, config, now)
            .map_err(|e| anyhow::anyhow!("cannot start the till in {}: {e}", data_dir.display()))?;
        let mut notes = Vec::new();
        let reader = match opener() {
            Ok(reader) => ReaderSlot::Up {
                wallet: WalletReader::new(reader, wallet_config.clone()),
                checked_at_mono: now.mono_ms,
            },
            Err(why) => {
                tracing::error!("card reader: {why}");
                notes.push(DeviceNote::ReaderDown(why));
                ReaderSlot::down_since(now)
            }
        };
        let mut till = DeviceTill {
            host,
            reader,
            wallet_config,
            opener,
            display,
            shown: None,
            notes,
        };
        till.feed(Input::Tick, now);
        if matches!(till.reader, ReaderSlot::Down { .. }) {
            till.feed(Input::Card(reader_fault()), now);
        }
        till.redraw();
        Ok(till)
    }

    /// Starts the link server on `path`; its events go to `events`. A till that cannot open its
    /// socket still sells (and logs why).
    pub fn start_link(&mut self, path: &Path, events: Sender<DeviceEvent>, now: Now) {
        let sink = Arc::new(move |event: LinkEvent| {
            let _ = events.send(DeviceEvent::Link(event));
        });
        match self.host.start_link(path, sink, now) {
            Ok(()) => {
                tracing::info!("link server on {}", path.display());
                self.redraw();
            }
            Err(e) => tracing::error!("link server off: {e}"),
        }
    }

    pub fn runtime(&self) -> &TillRuntime {
        self.host.runtime()
    }

    /// Whether the reader is working (not waiting to be re-opened).
    pub fn reader_up(&self) -> bool {
        matches!(self.reader, ReaderSlot::Up { .. })
    }

    /// The reader's wallet while it is up (tests reach the emulated chip through it).
    pub fn wallet(&self) -> Option<&WalletReader<R>> {
        match &self.reader {
            ReaderSlot::Up { wallet, .. } => Some(wallet),
            ReaderSlot::Down { .. } => None,
        }
    }

    /// Why the till stopped selling, once it has.
    pub fn fatal(&self) -> Option<&str> {
        self.host.stopped()
    }

    /// What happened since the last call besides the displays.
    pub fn take_notes(&mut self) -> Vec<DeviceNote> {
        std::mem::take(&mut self.notes)
    }

    /// One pass of the loop at `now`: the events that arrived, then the reader, then the
    /// till's timers, then the displays.
    pub fn step(&mut self, events: impl IntoIterator<Item = DeviceEvent>, now: Now) {
        for event in events {
            self.on_event(event, now);
        }
        self.poll_reader(now);
        if self.host.runtime().tick_due(now) {
            self.feed(Input::Tick, now);
        }
        self.redraw();
        // The buzzer's and light's patterns move on here, never by sleeping.
        if let Err(e) = self.display.poll(now.mono_ms) {
            tracing::warn!("buzzer: {e}");
        }
    }

    /// How long the loop may wait for an event before its next pass.
    pub fn wait_budget(&self, now: Now) -> Duration {
        let until_deadline = self
            .host
            .runtime()
            .next_deadline_mono(now)
            .map_or(READER_POLL_MS, |d| d.saturating_sub(now.mono_ms));
        let until_signal = self
            .display
            .next_change_ms(now.mono_ms)
            .map_or(READER_POLL_MS, |d| d.saturating_sub(now.mono_ms));
        Duration::from_millis(until_deadline.min(until_signal).clamp(1, READER_POLL_MS))
    }

    /// Runs until the till has to stop selling (its journal failed): then it shows why and
    /// returns the reason. A restart re-verifies the journal before it sells again.
    pub fn run(&mut self, events: &Receiver<DeviceEvent>, now: impl Fn() -> Now) -> String {
        // The journal is open and verified (`open`), the loop starts: ready for systemd's
        // `Type=notify`; `WATCHDOG=1` after passes. Both do nothing outside systemd.
        notify_systemd(sd_notify::NotifyState::Ready);
        let mut watchdog_at_mono = now().mono_ms;
        loop {
            if let Some(fatal) = self.host.stopped().map(str::to_string) {
                let shown = self.display.show(&fatal_displays(&fatal));
                if let Err(e) = shown {
                    tracing::warn!("display: {e}");
                }
                return fatal;
            }
            let mut batch = Vec::new();
            match events.recv_timeout(self.wait_budget(now())) {
                Ok(event) => batch.push(event),
                Err(RecvTimeoutError::Timeout) => {}
                // Every sender gone (no inputs, no link): keep polling the reader on its own.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(READER_POLL_MS))
                }
            }
            batch.extend(events.try_iter());
            self.step(batch, now());
            if now().mono_ms.saturating_sub(watchdog_at_mono) >= WATCHDOG_NOTIFY_MS {
                notify_systemd(sd_notify::NotifyState::Watchdog);
                watchdog_at_mono = now().mono_ms;
            }
            // Everything noted is in the log already; nobody reads the notes here, and a till
            // runs for months.
            self.notes.clear();
        }
    }

    fn on_event(&mut self, event: DeviceEvent, now: Now) {
        match event {
            DeviceEvent::Key(key) => {
                self.feed(Input::Key(key), now);
            }
            DeviceEvent::Code(code) => {
                tracing::info!("scanned a code of {} characters", code.chars().count());
                self.feed(Input::Code(code), now);
            }
            DeviceEvent::InputLost { what, path, why } => {
                tracing::error!("{what} {path} lost: {why}");
                self.notes
                    .push(DeviceNote::InputLost(format!("{what} {path}: {why}")));
            }
            DeviceEvent::Link(event) => {
                let outputs = match &mut self.reader {
                    ReaderSlot::Up { wallet, .. } => self.host.handle_link(event, now, wallet),
                    ReaderSlot::Down { .. } => self.host.handle_link(event, now, &mut NoReader),
                };
                self.render(outputs);
            }
        }
    }

    /// Looks for a card, checks the chip, or re-opens a failed reader, as due.
    fn poll_reader(&mut self, now: Now) {
        match &mut self.reader {
            ReaderSlot::Down {
                retry_at_mono,
                backoff,
            } => {
                if now.mono_ms < *retry_at_mono {
                    return;
                }
                match (self.opener)() {
                    Ok(reader) => {
                        tracing::info!("card reader back");
                        self.notes.push(DeviceNote::ReaderBack);
                        self.reader = ReaderSlot::Up {
                            wallet: WalletReader::new(reader, self.wallet_config.clone()),
                            checked_at_mono: now.mono_ms,
                        };
                        self.feed(Input::Tick, now);
                    }
                    Err(why) => {
                        let next = backoff.next_delay_ms();
                        tracing::warn!("card reader still down: {why}; next try in {next} ms");
                        self.notes.push(DeviceNote::ReaderReopenFailed(why));
                        *retry_at_mono = now.mono_ms.saturating_add(next);
                        // The fault message times out on the display: show it again, so a
                        // merchant who looks up later still learns the reader is down.
                        self.feed(Input::Card(reader_fault()), now);
                    }
                }
            }
            ReaderSlot::Up {
                wallet,
                checked_at_mono,
            } => {
                let read = wallet.tap();
                let check_due =
                    now.mono_ms.saturating_sub(*checked_at_mono) >= READER_CHECK_INTERVAL_MS;
                // A failed read may be a card pulled away or the chip itself: ask the chip.
                let failed = matches!(read, Some(CardRead::Unreadable(_)));
                let health = if failed || check_due {
                    *checked_at_mono = now.mono_ms;
                    wallet.reader().check_chip()
                } else {
                    Ok(())
                };
                match health {
                    Ok(()) => {
                        if let Some(read) = read {
                            self.notes.push(DeviceNote::Tapped(describe_read(&read)));
                            self.feed(Input::Card(read), now);
                        }
                    }
                    Err(error) => self.reader_down(error, now),
                }
            }
        }
    }

    fn reader_down(&mut self, error: CardIoError, now: Now) {
        tracing::error!("card reader fault: {error}; re-opening it");
        self.notes.push(DeviceNote::ReaderDown(error.to_string()));
        // Dropping the reader closes the SPI device and frees the reset line for the re-open.
        self.reader = ReaderSlot::down_since(now);
        self.feed(Input::Card(reader_fault()), now);
    }

    /// Feeds one input, with the reader (or [`NoReader`] while it is down) as the card writer.
    fn feed(&mut self, input: Input, now: Now) {
        let outputs = match &mut self.reader {
            ReaderSlot::Up { wallet, .. } => self.host.handle(input, now, wallet),
            ReaderSlot::Down { .. } => self.host.handle(input, now, &mut NoReader),
        };
        self.render(outputs);
    }

    /// Sounds the beeps and logs the records and the link's notes; the displays are drawn from
    /// the host at the end of the pass ([`DeviceTill::redraw`]).
    fn render(&mut self, outputs: Vec<HostOutput>) {
        for output in outputs {
            match output {
                HostOutput::Displays(_) => {}
                HostOutput::Beep(beep) => {
                    if let Err(e) = self.display.beep(beep) {
                        tracing::warn!("buzzer: {e}");
                    }
                }
                HostOutput::Journaled(record) => {
                    tracing::info!("journaled {}", describe_record(&record));
                }
                HostOutput::Note(note) if note.is_warning() => tracing::warn!("link: {note}"),
                HostOutput::Note(note) => tracing::info!("link: {note}"),
                HostOutput::Stopped(error) => {
                    tracing::error!("the till stopped selling: {error}");
                }
                // The device never answers orders itself (`answer_orders_locally` is off):
                // the host sends them to the daemon or answers "not sent".
                HostOutput::Order(call) => {
                    tracing::error!(order = %call.order, "an order for a local back end, and the device has none");
                }
            }
        }
    }

    fn redraw(&mut self) {
        let displays = self.host.displays();
        if self.shown.as_ref() == Some(&displays) {
            return;
        }
        if let Err(e) = self.display.show(&displays) {
            tracing::warn!("display: {e}");
            return;
        }
        self.shown = Some(displays);
    }
}

/// What the displays say once the till stopped selling.
fn fatal_displays(error: &str) -> Displays {
    let screen = |lines: &[&str]| crate::core::Screen {
        lines: lines.iter().map(|l| l.to_string()).collect(),
    };
    Displays {
        merchant: screen(&["终端故障 停止收款 / till stopped", error]),
        customer: screen(&["暂停服务 / out of service"]),
        qr: None,
    }
}

/// What the core is told when the reader fails (it shows the reader fault to the merchant).
fn reader_fault() -> CardRead {
    CardRead::Unreadable(CardProblem::ReaderFault)
}

fn describe_read(read: &CardRead) -> String {
    match read {
        CardRead::Card(image) => format!("card {}", image.uid),
        CardRead::Unreadable(problem) => format!("unreadable: {problem:?}"),
    }
}

/// Tells systemd `state` (no-op without `NOTIFY_SOCKET`); a failure is logged, never fatal.
fn notify_systemd(state: sd_notify::NotifyState) {
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!("sd_notify: {e}");
    }
}
