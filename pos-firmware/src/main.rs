//! The till's command line: `sim` runs the whole till in a terminal on simulated hardware,
//! `script` replays a scripted day headless (see docs/script.md), `device` runs it on the
//! till's own hardware (MFRC522 on spidev, evdev keypad, line scanner; docs/device.md),
//! `reader-check` checks the real reader. Each of `sim`, `script` and `device` exists only with
//! the cargo feature of its name (pos-firmware/Cargo.toml). `sim` and `script` keep their data
//! (journal, settings, simulated cards) in one directory, `pos-data/` unless told otherwise;
//! `device` reads `/etc/campus-pos/till.toml` (`--config`) and keeps its journal in
//! `/var/lib/campus-pos/` (the file's `data_dir`, or `--data-dir`). All three can run the link
//! server the sync daemon connects to (`--link`, see docs/link.md). `check-config` checks the
//! till's settings file without starting, `journal-status` tells the package's `preinst` what
//! is not uploaded yet (docs/device.md, "Install on a till").
//!
//! This file is long because it holds the whole command line in one place: clap's definition of
//! every subcommand and its options beside the few lines that start each; the work itself lives
//! in the library (`host`, `runtime`, `sim`, `device`).

// Without a front end (`--no-default-features` alone) only `reader-check` is left, and the
// settings and logging helpers the front ends share go unused.
#![cfg_attr(not(any(feature = "script", feature = "device")), allow(unused))]

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
#[cfg(feature = "script")]
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use pos_firmware::core::config::{Lang, TillConfig};
#[cfg(feature = "device")]
use pos_firmware::link::DEVICE_LINK_SOCKET_PATH;
#[cfg(feature = "sim")]
use pos_firmware::link::SIM_LINK_SOCKET_NAME;
use pos_firmware::reader::spidev::{open_reader, ResetLine, DEFAULT_SPIDEV_PATH};
#[cfg(feature = "script")]
use pos_firmware::settings::load_settings;
use pos_firmware::settings::{
    load_card_settings, load_config_file, DEFAULT_CONFIG_PATH, DEFAULT_DEVICE_DATA_DIR,
};
#[cfg(feature = "script")]
use pos_firmware::sim::cards::PausePoint;
#[cfg(feature = "script")]
use pos_firmware::sim::script::{parse_local, ScriptRunner, ScriptSetup, DEFAULT_START};
use pos_firmware::wallet::WalletReader;

/// The data directory of `sim`, `script` and `reader-check` when `--data-dir` is not given.
const SIM_DATA_DIR: &str = "pos-data";

/// Exit status of `check-config`, and of `device` when its settings file is missing or bad
/// (systemd does not restart the till on it: `RestartPreventExitStatus=2` in its unit).
const EXIT_BAD_CONFIG: i32 = 2;

/// The simulator's log file in its data directory (the terminal UI owns standard error's screen).
#[cfg(feature = "sim")]
const SIM_LOG_FILE_NAME: &str = "pos-firmware.log";

#[derive(Parser)]
#[command(name = "pos-firmware", version, about = "Campus canteen till firmware")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Who answers the simulator's code payments while no daemon is connected.
#[cfg(feature = "sim")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    Local,
    Daemon,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the till in this terminal on simulated hardware (keyboard = keypad, keys tap cards).
    #[cfg(feature = "sim")]
    Sim {
        #[command(flatten)]
        common: Common,
        /// The link socket the sync daemon connects to [default: DATA_DIR/link.sock].
        #[arg(long, value_name = "PATH")]
        link: Option<PathBuf>,
        /// Run without the link server.
        #[arg(long, conflicts_with = "link")]
        no_link: bool,
        /// Who answers code payments while no daemon is connected: `local`, the simulator's
        /// own campus (demo accounts, every scripted behaviour); `daemon`, nobody (the till
        /// says it cannot take codes now).
        #[arg(long, value_enum, default_value = "daemon")]
        backend: BackendArg,
    },
    /// Replay a script of keys, taps, codes and time steps headless; print every display change.
    #[cfg(feature = "script")]
    Script {
        /// The script file, or `-` for standard input (lines run as they arrive).
        file: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Local time the virtual clock starts at ("YYYY-MM-DD HH:MM[:SS]").
        #[arg(long, default_value = DEFAULT_START)]
        start: String,
        /// Test hook: stop dead at this point of the next sale or code payment (kill tests).
        #[arg(long, value_enum)]
        pause_at: Option<PauseArg>,
        /// Run the link server on this socket (off by default); the script then also handles
        /// the link while it waits for lines.
        #[arg(long, value_name = "PATH")]
        link: Option<PathBuf>,
        /// Write each offline QR code the customer's display shows as a PNG in this directory
        /// (qr-0001.png, ...; a `QR-PNG path` line says which); docs/script.md.
        #[arg(long, value_name = "DIR")]
        qr_png: Option<PathBuf>,
        /// Give the till the simulated campus's offline QR key (derived for its terminal), so it
        /// shows an offline QR order when it is offline; without it (and without till.toml's
        /// qr_key_file) the script's till takes cards only offline.
        #[arg(long)]
        demo_qr_key: bool,
    },
    /// Run the till on its own hardware: the MFRC522 on spidev, the keypad on evdev, the code
    /// scanner as a line device; displays on framebuffers (--fb) or as lines on standard output,
    /// the buzzer on GPIO, the log on standard error. Reads its settings from
    /// /etc/campus-pos/till.toml (--config), which must name the card master key file; a flag
    /// overrides the file's key of the same name.
    #[cfg(feature = "device")]
    Device {
        #[command(flatten)]
        common: Common,
        /// The till's settings file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        #[command(flatten)]
        reader: ReaderArgs,
        /// The keypad's evdev device [default: /dev/input/event0].
        #[arg(long)]
        keypad: Option<PathBuf>,
        /// The code scanner: a line device (serial scanner in line mode, or a FIFO).
        #[arg(long)]
        scanner: Option<PathBuf>,
        /// The link socket the sync daemon connects to [default: /run/campus-pos/link.sock].
        #[arg(long, value_name = "PATH")]
        link: Option<PathBuf>,
        /// Run without the link server.
        #[arg(long, conflicts_with = "link")]
        no_link: bool,
        #[command(flatten)]
        outputs: Box<pos_firmware::device::outputs::OutputArgs>,
    },
    /// Check the till's settings file (and the card master key it names) without starting;
    /// exit status 0 when the till would start on it, 2 (with the file, the key and what is
    /// wrong) when not.
    CheckConfig {
        /// The till's settings file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Print what the journal holds that the campus server has not acknowledged yet, as
    /// `unsent=N oldest_unsent_age_s=S` (S empty when nothing is unsent; "no journal" when the
    /// data directory holds none). Opens the journal, so it fails (exit 1, "locked") while the
    /// till runs: the package's preinst stops the till first.
    JournalStatus {
        /// The data directory [default: the settings file's data_dir, else /var/lib/campus-pos].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The till's settings file (for its data_dir; skipped when it does not exist).
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Also check every kept record (the till's start-up checks only the newest ones) and
        /// print `first=F last=L checked=N`.
        #[arg(long)]
        full: bool,
    },
    /// Bring-up check of the real card reader: open the MFRC522 on spidev, show its version,
    /// wait for a card and show what the wallet reads on it. Writes nothing.
    ReaderCheck {
        #[command(flatten)]
        reader: ReaderArgs,
        /// Where till.toml names the card master key and campus.
        #[arg(long, default_value = SIM_DATA_DIR)]
        data_dir: PathBuf,
        /// How long to wait for a card.
        #[arg(long, default_value_t = 10)]
        wait_secs: u64,
    },
}

/// Where the real MFRC522 is wired.
#[derive(clap::Args)]
struct ReaderArgs {
    /// The reader's SPI device [default: /dev/spidev0.0].
    #[arg(long)]
    spi: Option<PathBuf>,
    /// The GPIO character device of the reader's reset line (with --reset-line).
    #[arg(long, requires = "reset_line")]
    reset_chip: Option<PathBuf>,
    /// The line number of the reader's reset pin on --reset-chip.
    #[arg(long, requires = "reset_chip")]
    reset_line: Option<u32>,
}

impl ReaderArgs {
    fn reset(&self) -> Option<ResetLine> {
        let chip = self.reset_chip.clone()?;
        let line = self.reset_line?;
        Some(ResetLine { chip, line })
    }

    fn spi(&self) -> PathBuf {
        self.spi
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SPIDEV_PATH))
    }
}

#[derive(clap::Args)]
struct Common {
    /// Where the journal, settings (till.toml) and simulated cards live [default: pos-data;
    /// for `device`: the settings file's data_dir, else /var/lib/campus-pos].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Override the settings' language.
    #[arg(long, value_enum)]
    lang: Option<LangArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LangArg {
    Zh,
    En,
}

#[cfg(feature = "script")]
#[derive(Clone, Copy, ValueEnum)]
enum PauseArg {
    BeforeCardWrite,
    AfterCardWrite,
    BeforeOrderSubmit,
    BeforeOrderReverse,
}

impl Common {
    /// The simulator's data directory: `--data-dir`, else `pos-data`.
    #[cfg(feature = "script")]
    fn sim_data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(SIM_DATA_DIR))
    }

    fn apply_lang(&self, config: &mut TillConfig) {
        match self.lang {
            Some(LangArg::Zh) => config.lang = Lang::Zh,
            Some(LangArg::En) => config.lang = Lang::En,
            None => {}
        }
    }
}

/// Makes sure the data directory exists and is writable.
fn prepare_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    check_writable(data_dir)
}

/// The simulator's settings: `DATA_DIR/till.toml`, defaults without it.
#[cfg(feature = "script")]
fn load_config(common: &Common, data_dir: &std::path::Path) -> anyhow::Result<TillConfig> {
    prepare_data_dir(data_dir)?;
    let mut config = load_settings(data_dir)?;
    common.apply_lang(&mut config);
    Ok(config)
}

/// Gives the simulated till its offline QR key as the card centre would provision it: derived
/// from the simulated campus's QR master for its terminal (the campus-app simulator pays its
/// codes). The terminal simulator always; the script runner with `--demo-qr-key`.
#[cfg(feature = "script")]
fn with_demo_qr_key(mut config: TillConfig) -> TillConfig {
    if config.qr_key.is_none() {
        config.demo_qr_master = Some(pos_firmware::sim::payments::SIM_QR_MASTER_KEY);
    }
    config
}

/// `device`'s settings file, read once and checked as `device` needs it.
#[cfg_attr(not(feature = "device"), allow(dead_code))] // `check-config` reads only part of it
struct CheckedConfig {
    config: TillConfig,
    device: pos_firmware::settings::DeviceSettings,
    wallet: pos_firmware::wallet::WalletConfig,
    key_file: PathBuf,
    campus: u16,
}

/// Reads the settings file at `path` and its card master key file; `Err` is the message for a
/// file the till must not start on.
fn load_checked_config(path: &std::path::Path) -> Result<CheckedConfig, String> {
    let (config, card, device) = load_config_file(path).map_err(|e| e.to_string())?;
    let Some(key_file) = card.master_key_file.clone() else {
        return Err(format!(
            "{}: [card] master_key_file: missing: a real till needs its card master key file \
             and never runs on the public demo key (see docs/card-layout.md)",
            path.display()
        ));
    };
    let wallet = card
        .wallet_config()
        .map_err(|e| format!("{}: [card] master_key_file: {e}", path.display()))?;
    Ok(CheckedConfig {
        config,
        device,
        wallet,
        key_file,
        campus: card.campus.0,
    })
}

/// `check-config`: everything `device` checks in its settings file before it starts, with
/// nothing opened but the card master key file.
fn check_config(path: &std::path::Path) -> Result<String, String> {
    let checked = load_checked_config(path)?;
    let data_dir = checked
        .device
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DEVICE_DATA_DIR));
    Ok(format!(
        "{}: ok (data_dir {}, card master key {}, campus {})",
        path.display(),
        data_dir.display(),
        checked.key_file.display(),
        checked.campus
    ))
}

/// `journal-status`: the unsent count and the oldest unsent record's age, for the preinst.
fn journal_status(data_dir: &std::path::Path, full: bool) -> anyhow::Result<String> {
    use pos_firmware::journal::Journal;
    // A directory without sled's files holds no journal: say so, and create nothing.
    if !data_dir.join(JOURNAL_DB_FILE).exists() {
        return Ok(format!("no journal in {}", data_dir.display()));
    }
    let journal = Journal::open(data_dir)?;
    let unsent = journal.unsent_count();
    let age = match journal.oldest_unsent_at()? {
        Some(at) => {
            let now_ms = chrono::Utc::now().timestamp_millis();
            (now_ms.saturating_sub(at.0).max(0) / 1000).to_string()
        }
        None => String::new(),
    };
    let mut status = format!("unsent={unsent} oldest_unsent_age_s={age}");
    if full {
        let checked = journal.verify_full()?;
        let seq = |s: Option<shared::Seq>| s.map_or(String::new(), |s| s.0.to_string());
        status.push_str(&format!(
            " first={} last={} checked={checked}",
            seq(journal.first_seq()),
            seq(journal.last_seq())
        ));
    }
    Ok(status)
}

/// The file sled keeps its database in, inside the data directory.
const JOURNAL_DB_FILE: &str = "db";

/// The file [`check_writable`] creates and removes in the data directory.
const WRITE_CHECK_FILE: &str = ".write-check";

/// Refuses a data directory the till cannot write (read-only mount, another owner): found at
/// start with its path, not at the first sale's journal append.
fn check_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    let probe = dir.join(WRITE_CHECK_FILE);
    let written = std::fs::write(&probe, b"ok");
    let _ = std::fs::remove_file(&probe);
    written.with_context(|| {
        format!(
            "data directory {} is not writable: the till keeps its journal there",
            dir.display()
        )
    })
}

/// Log lines (tracing) go to standard error, or to a file when the terminal UI owns the screen;
/// `RUST_LOG` filters them (default: info).
fn init_logging(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(log))
                .init();
        }
        // Colours only on a terminal: under systemd standard error is the journal.
        None => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// The keypad's usual evdev node on the till's board.
#[cfg(feature = "device")]
const DEFAULT_KEYPAD_PATH: &str = "/dev/input/event0";

/// What `device` needs: its settings file's keys with the flags on top.
#[cfg(feature = "device")]
struct DeviceArgs {
    data_dir: PathBuf,
    config: TillConfig,
    wallet: pos_firmware::wallet::WalletConfig,
    spi: PathBuf,
    reset: Option<ResetLine>,
    keypad: PathBuf,
    scanner: Option<PathBuf>,
    link: Option<PathBuf>,
    outputs: Box<pos_firmware::device::outputs::OutputArgs>,
}

/// Reads `device`'s settings file and lays its flags over it; `Err` is the message for a file
/// the till must not start on (exit [`EXIT_BAD_CONFIG`]).
#[cfg(feature = "device")]
#[allow(clippy::too_many_arguments)] // one per flag group of the `device` subcommand
fn device_args(
    common: &Common,
    config_path: &std::path::Path,
    reader: &ReaderArgs,
    keypad: Option<PathBuf>,
    scanner: Option<PathBuf>,
    link: Option<PathBuf>,
    no_link: bool,
    outputs: Box<pos_firmware::device::outputs::OutputArgs>,
) -> Result<DeviceArgs, String> {
    let CheckedConfig {
        mut config,
        device: file,
        wallet,
        ..
    } = load_checked_config(config_path)?;
    common.apply_lang(&mut config);
    let no_link = no_link || (file.no_link && link.is_none());
    let mut outputs = outputs;
    outputs.over_file(&file)?;
    Ok(DeviceArgs {
        data_dir: common
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DEVICE_DATA_DIR)),
        config,
        wallet,
        spi: reader
            .spi
            .clone()
            .or(file.spi)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SPIDEV_PATH)),
        reset: reader
            .reset()
            .or_else(|| file.reset.map(|(chip, line)| ResetLine { chip, line })),
        keypad: keypad
            .or(file.keypad)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KEYPAD_PATH)),
        scanner: scanner.or(file.scanner),
        outputs,
        link: (!no_link).then(|| {
            link.or(file.link)
                .unwrap_or_else(|| PathBuf::from(DEVICE_LINK_SOCKET_PATH))
        }),
    })
}

#[cfg(feature = "device")]
fn run_device(args: DeviceArgs) -> anyhow::Result<()> {
    use pos_firmware::clock::RealClock;
    use pos_firmware::device::{bench, inputs, outputs, DeviceTill, ReaderOpener};

    prepare_data_dir(&args.data_dir)?;
    let (config, wallet) = (args.config, args.wallet);
    let clock = RealClock::start();
    let (spi, reset) = (args.spi, args.reset);
    let opener: ReaderOpener<_> =
        Box::new(move || open_reader(&spi, reset.as_ref()).map_err(|e| e.to_string()));
    let (opener, cards) = match args.outputs.bench_cards {
        None => (bench::real_reader(opener), None),
        Some(count) => bench_reader(&wallet, count)?,
    };
    let display = outputs::open_display(&args.outputs)?;
    let mut till = DeviceTill::open(&args.data_dir, config, wallet, opener, display, clock.now())?;
    let (events, receiver) = std::sync::mpsc::channel();
    match &args.outputs.keys {
        Some(keys) => outputs::spawn_key_lines(keys, events.clone(), cards)?,
        None => inputs::spawn_keypad(&args.keypad, events.clone())?,
    }
    if let Some(scanner) = &args.scanner {
        inputs::spawn_scanner(scanner, events.clone())?;
    }
    if let Some(link) = &args.link {
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        till.start_link(link, events.clone(), clock.now());
    }
    drop(events);
    let fatal = till.run(&receiver, || clock.now());
    eprintln!("the till stopped selling: {fatal}");
    std::process::exit(3);
}

/// The bench's emulated reader with `count` cards issued with the till's `wallet` (key and
/// campus): its opener, and what `tap N` / `lift` do (docs/device.md, "A bench without a till").
#[cfg(all(feature = "device", feature = "emulator"))]
fn bench_reader(
    wallet: &pos_firmware::wallet::WalletConfig,
    count: usize,
) -> anyhow::Result<(
    pos_firmware::device::ReaderOpener<pos_firmware::device::bench::TillReader>,
    Option<pos_firmware::device::bench::CardHandler>,
)> {
    use pos_firmware::device::bench::{
        CardAction, TillReader, BENCH_CARD_BALANCE, MAX_BENCH_CARDS,
    };
    use pos_firmware::reader::driver::{Mfrc522Reader, ReaderOptions};
    use pos_firmware::reader::emulator::{EmulatedCard, EmulatorControl};
    use pos_firmware::wallet::layout::CardSerial;

    if !(1..=MAX_BENCH_CARDS).contains(&count) {
        bail!("--bench-cards {count}: 1 to {MAX_BENCH_CARDS}");
    }
    let mut cards = Vec::new();
    for n in 1..=count {
        let uid = [0x04, 0xBE, 0x9C, 0x00, 0x00, 0x00, n as u8];
        let control = EmulatorControl::new();
        control.place_card(EmulatedCard::blank(&uid)?);
        let reader = Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR)?;
        WalletReader::new(reader, wallet.clone())
            .issue(CardSerial(n as u32), BENCH_CARD_BALANCE)
            .map_err(|e| anyhow::anyhow!("bench card {n}: {e:?}"))?;
        cards.push(control.remove_card());
    }
    let control = EmulatorControl::new();
    let device = control.device();
    let opener = Box::new(move || {
        Mfrc522Reader::new(device.clone(), ReaderOptions::EMULATOR)
            .map(|reader| Box::new(reader) as TillReader)
            .map_err(|e| e.to_string())
    });
    let mut on_reader: Option<usize> = None;
    let handler = Box::new(move |action: CardAction| {
        if let Some(n) = on_reader.take() {
            cards[n - 1] = control.remove_card();
        }
        let CardAction::Tap(n) = action else {
            return Ok(());
        };
        let count = cards.len();
        let slot = n.checked_sub(1).and_then(|i| cards.get_mut(i));
        let slot = slot.ok_or_else(|| format!("no bench card {n} (1 to {count})"))?;
        control.place_card(
            slot.take()
                .ok_or_else(|| format!("bench card {n} is lost"))?,
        );
        on_reader = Some(n);
        Ok(())
    });
    Ok((opener, Some(handler)))
}

#[cfg(all(test, feature = "device", feature = "emulator"))]
mod bench_tests {
    use super::*;
    use pos_firmware::core::card::CardRead;
    use pos_firmware::device::bench::{CardAction, BENCH_CARD_BALANCE, MAX_BENCH_CARDS};
    use pos_firmware::wallet::WalletConfig;

    #[test]
    fn a_bench_card_tapped_reads_with_the_tills_key_and_a_lifted_one_is_gone() {
        let config = WalletConfig::demo();
        let (mut opener, cards) = bench_reader(&config, 2).unwrap();
        let mut cards = cards.unwrap();
        let mut wallet = WalletReader::new(opener().unwrap(), config);
        assert!(wallet.tap().is_none(), "no card on the reader at start");
        cards(CardAction::Tap(2)).unwrap();
        match wallet.tap() {
            Some(CardRead::Card(image)) => assert_eq!(image.balance, BENCH_CARD_BALANCE),
            other => panic!("bench card 2 does not read: {other:?}"),
        }
        cards(CardAction::Lift).unwrap();
        assert!(wallet.tap().is_none(), "the lifted card is off the reader");
        cards(CardAction::Tap(1)).unwrap();
        assert!(matches!(wallet.tap(), Some(CardRead::Card(_))));
        assert!(cards(CardAction::Tap(3))
            .unwrap_err()
            .contains("no bench card 3"));
        assert!(bench_reader(&WalletConfig::demo(), MAX_BENCH_CARDS + 1).is_err());
    }
}

/// Without the emulator there are no bench cards.
#[cfg(all(feature = "device", not(feature = "emulator")))]
fn bench_reader(
    _wallet: &pos_firmware::wallet::WalletConfig,
    count: usize,
) -> anyhow::Result<(
    pos_firmware::device::ReaderOpener<pos_firmware::device::bench::TillReader>,
    Option<pos_firmware::device::bench::CardHandler>,
)> {
    bail!("--bench-cards {count}: this build has no emulated reader (the default build has)")
}

/// How often `reader-check` looks for a card.
const READER_CHECK_POLL_MS: u64 = 100;

fn reader_check(
    spi: PathBuf,
    reset: Option<ResetLine>,
    data_dir: PathBuf,
    wait_secs: u64,
) -> anyhow::Result<()> {
    let wallet = load_card_settings(&data_dir)?.wallet_config()?;
    let reader = open_reader(&spi, reset.as_ref())?;
    println!(
        "MFRC522 on {}: version {:#04x}",
        spi.display(),
        reader.reader.chip_version()
    );
    let mut wallet = WalletReader::new(reader, wallet);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_secs);
    println!("tap a card within {wait_secs} s");
    while std::time::Instant::now() < deadline {
        if let Some(read) = wallet.tap() {
            println!("{read:?}");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(READER_CHECK_POLL_MS));
    }
    bail!("no card within {wait_secs} s")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::ReaderCheck {
            reader,
            data_dir,
            wait_secs,
        } => reader_check(reader.spi(), reader.reset(), data_dir, wait_secs),
        Cmd::CheckConfig { config } => match check_config(&config) {
            Ok(summary) => {
                println!("{summary}");
                Ok(())
            }
            Err(problem) => {
                eprintln!("{problem}");
                std::process::exit(EXIT_BAD_CONFIG);
            }
        },
        Cmd::JournalStatus {
            data_dir,
            config,
            full,
        } => {
            let data_dir = match data_dir {
                Some(dir) => dir,
                None if config.exists() => match load_config_file(&config) {
                    Ok((_, _, device)) => device.data_dir,
                    Err(e) => {
                        eprintln!("{e}");
                        std::process::exit(EXIT_BAD_CONFIG);
                    }
                }
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DEVICE_DATA_DIR)),
                None => PathBuf::from(DEFAULT_DEVICE_DATA_DIR),
            };
            println!("{}", journal_status(&data_dir, full)?);
            Ok(())
        }
        #[cfg(feature = "device")]
        Cmd::Device {
            common,
            config,
            reader,
            keypad,
            scanner,
            link,
            no_link,
            outputs,
        } => {
            init_logging(None)?;
            let args = match device_args(
                &common, &config, &reader, keypad, scanner, link, no_link, outputs,
            ) {
                Ok(args) => args,
                Err(problem) => {
                    tracing::error!("ALARM the till does not start: {problem}");
                    std::process::exit(EXIT_BAD_CONFIG);
                }
            };
            run_device(args)
        }
        #[cfg(feature = "sim")]
        Cmd::Sim {
            common,
            link,
            no_link,
            backend,
        } => {
            let data_dir = common.sim_data_dir();
            let config = with_demo_qr_key(load_config(&common, &data_dir)?);
            init_logging(Some(&data_dir.join(SIM_LOG_FILE_NAME)))?;
            let link = match (no_link, link) {
                (true, _) => None,
                (false, Some(path)) => Some(path),
                (false, None) => Some(data_dir.join(SIM_LINK_SOCKET_NAME)),
            };
            let local_backend = backend == BackendArg::Local;
            pos_firmware::sim::tui::run(&data_dir, config, link.as_deref(), local_backend)
        }
        #[cfg(feature = "script")]
        Cmd::Script {
            file,
            common,
            start,
            pause_at,
            link,
            qr_png,
            demo_qr_key,
        } => {
            init_logging(None)?;
            let data_dir = common.sim_data_dir();
            let mut config = load_config(&common, &data_dir)?;
            if demo_qr_key {
                config = with_demo_qr_key(config);
            }
            let Some(start) = parse_local(&start) else {
                bail!("--start: '{start}' is not YYYY-MM-DD HH:MM[:SS]");
            };
            let pause_at = pause_at.map(|p| match p {
                PauseArg::BeforeCardWrite => PausePoint::BeforeCardWrite,
                PauseArg::AfterCardWrite => PausePoint::AfterCardWrite,
                PauseArg::BeforeOrderSubmit => PausePoint::BeforeOrderSubmit,
                PauseArg::BeforeOrderReverse => PausePoint::BeforeOrderReverse,
            });
            let setup = ScriptSetup {
                data_dir,
                config,
                start,
                pause_at,
                link: link.clone(),
            };
            let reader: Box<dyn BufRead + Send> = if file.as_os_str() == "-" {
                Box::new(BufReader::new(std::io::stdin()))
            } else {
                // A script that cannot be read is bad input (exit 2), found before the till starts.
                if file.is_dir() {
                    eprintln!(
                        "script {}: is a directory, not a script file",
                        file.display()
                    );
                    std::process::exit(2);
                }
                match std::fs::File::open(&file) {
                    Ok(opened) => Box::new(BufReader::new(opened)),
                    Err(e) => {
                        eprintln!("script {}: cannot open it: {e}", file.display());
                        std::process::exit(2);
                    }
                }
            };
            let script_name = if file.as_os_str() == "-" {
                "standard input".to_string()
            } else {
                file.display().to_string()
            };
            let stdout = std::io::stdout();
            let mut runner = match ScriptRunner::start(setup, stdout.lock()) {
                Ok(runner) => match qr_png {
                    Some(dir) => runner.with_qr_png(dir),
                    None => runner,
                },
                Err(e) => {
                    // The till cannot start (journal locked or corrupt, cards file broken): it
                    // must not sell, and scripts tell this apart from a failed expectation.
                    eprintln!("cannot start the till: {e}");
                    std::process::exit(3);
                }
            };
            let result = match link {
                Some(_) => runner.run_live(reader),
                None => runner.run_lines(reader),
            };
            if let Err(e) = result {
                use pos_firmware::sim::script::ScriptError;
                match e {
                    ScriptError::Input { .. } => eprintln!("script {script_name}: {e}"),
                    _ => eprintln!("{e}"),
                }
                std::process::exit(match e {
                    ScriptError::Parse { .. } | ScriptError::Input { .. } => 2,
                    ScriptError::Expectation { .. } => 1,
                    _ => 3,
                });
            }
            Ok(())
        }
    }
}
