//! The `device` subcommand's options for what the till shows and sounds, and where its keys come
//! from on a bench: the panels (framebuffers, or a PNG file on a desktop), the buzzer and light
//! (GPIO lines), a keypad of text lines (a FIFO or standard input) instead of evdev, and the
//! bench's emulated reader and cards ([`super::bench`]). Kept out of `main.rs` so the wiring is
//! tested with the library (docs/device.md).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use keymap::TillKey;

use super::bench::{CardAction, CardHandler};
use super::buzzer::{GpioSignals, SignalWiring, Signalling};
use super::display::{DeviceDisplay, LineDisplay};
use super::panel::fb::FbPanels;
use super::panel::png::PngFile;
use super::panel::{PanelDisplay, PanelSize};
use super::DeviceEvent;
use crate::settings::DeviceSettings;

/// The panel size when the configuration names none (the common 3.5" till TFT).
pub const DEFAULT_PANEL_SIZE: PanelSize = PanelSize::MEDIUM;
/// The flags that stay flag-only, with no key in `/etc/campus-pos/till.toml`: a desktop bench's
/// (the PNG panel, the QR test pattern, text keys, the emulated reader's cards), never a till's.
/// Every other flag here has a key in `[device.display]` or `[device.buzzer]` (a settings test
/// fails when a new flag has neither).
pub const BENCH_ONLY_OUTPUT_FLAGS: &[&str] = &["fb_png", "qr_test_pattern", "keys", "bench_cards"];
/// The longest line the text keypad accepts; longer ones are refused whole.
pub const MAX_KEY_LINE_BYTES: usize = 256;

/// Where the displays, the buzzer and (on a bench) the keys are. A flag overrides its key in the
/// settings file ([`OutputArgs::over_file`]), so the flags that need each other (a customer
/// framebuffer a merchant one, a buzzer line a chip) are checked after that, not by clap.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// The merchant's framebuffer (both screens on it as two regions without --customer-fb).
    /// Without --fb or --fb-png the screens are text lines on standard output.
    #[arg(long, value_name = "DEVICE")]
    pub fb: Option<PathBuf>,
    /// The customer's own framebuffer (with --fb or the file's fb).
    #[arg(long, value_name = "DEVICE")]
    pub customer_fb: Option<PathBuf>,
    /// Each screen's size in pixels: 240x128, 320x240, 480x272 or another WIDTHxHEIGHT
    /// [default: the file's panel, else 320x240].
    #[arg(long, value_name = "WxH")]
    pub panel: Option<PanelSize>,
    /// Bench: both screens as one PNG file, rewritten after every redraw (instead of --fb).
    #[arg(long, value_name = "PATH", conflicts_with = "fb")]
    pub fb_png: Option<PathBuf>,
    /// Show a QR test pattern where the customer's payment QR code goes.
    #[arg(long)]
    pub qr_test_pattern: bool,
    /// The GPIO character device of the buzzer and the light (with a buzzer line).
    #[arg(long, value_name = "DEVICE")]
    pub gpio_chip: Option<PathBuf>,
    /// The buzzer's line on --gpio-chip (active high).
    #[arg(long)]
    pub buzzer_line: Option<u32>,
    /// The status light's line on --gpio-chip (active high; with a buzzer line).
    #[arg(long)]
    pub light_line: Option<u32>,
    /// Bench: keys as text lines from a FIFO (or `-`, standard input) instead of the evdev
    /// keypad, e.g. `4.50 enter`, `clear`, `f2 1 7`.
    #[arg(long, value_name = "PATH")]
    pub keys: Option<PathBuf>,
    /// Bench (a build with the `emulator` feature): the emulated reader instead of --spi, with
    /// N cards issued with the till's key, tapped by `tap N` and lifted by `lift` on --keys.
    #[arg(long, value_name = "N", requires = "keys")]
    pub bench_cards: Option<usize>,
}

impl OutputArgs {
    /// Lays these flags over the settings file's `[device.display]` and `[device.buzzer]`: a
    /// flag overrides its key, a key the default. `--fb-png` (the bench) replaces the file's
    /// framebuffers. `Err` says what the merged options lack (a customer framebuffer without the
    /// merchant's, a buzzer line without a chip or the other way round, a light without a buzzer,
    /// the light on the buzzer's line).
    pub fn over_file(&mut self, file: &DeviceSettings) -> Result<(), String> {
        if self.fb_png.is_none() {
            self.fb = self.fb.take().or_else(|| file.fb.clone());
            self.customer_fb = self.customer_fb.take().or_else(|| file.customer_fb.clone());
        }
        self.panel = self.panel.or(file.panel);
        if let Some(keys) = &file.buzzer {
            self.gpio_chip = self
                .gpio_chip
                .take()
                .or_else(|| Some(keys.gpio_chip.clone()));
            self.buzzer_line = self.buzzer_line.or(Some(keys.buzzer_line));
            self.light_line = self.light_line.or(keys.light_line);
        }
        if self.customer_fb.is_some() && self.fb.is_none() {
            return Err(
                "--customer-fb: no merchant framebuffer (--fb or [device.display] fb)".into(),
            );
        }
        match (&self.gpio_chip, self.buzzer_line, self.light_line) {
            (Some(_), Some(buzzer), Some(light)) if light == buzzer => Err(format!(
                "--light-line: {light} is the buzzer's line too ([device.buzzer] buzzer_line or --buzzer-line)"
            )),
            (Some(_), Some(_), _) | (None, None, None) => Ok(()),
            (Some(chip), None, _) => Err(format!(
                "--gpio-chip: {} without a buzzer line (--buzzer-line or [device.buzzer] buzzer_line)",
                chip.display()
            )),
            (None, Some(line), _) => Err(format!(
                "--buzzer-line: {line} without a GPIO chip (--gpio-chip or [device.buzzer] gpio_chip)"
            )),
            (None, None, Some(line)) => Err(format!(
                "--light-line: {line} without a buzzer line (--buzzer-line or [device.buzzer] buzzer_line)"
            )),
        }
    }

    /// The panel size: the flag's, the file's after [`OutputArgs::over_file`], else the default.
    pub fn panel_size(&self) -> PanelSize {
        self.panel.unwrap_or(DEFAULT_PANEL_SIZE)
    }
}

/// The display (with the buzzer when one is wired) the options name.
pub fn open_display(args: &OutputArgs) -> anyhow::Result<Box<dyn DeviceDisplay>> {
    let panel = args.panel_size();
    let display: Box<dyn DeviceDisplay> = match (&args.fb, &args.fb_png) {
        (Some(fb), _) => {
            let panels = FbPanels::open(fb, args.customer_fb.as_deref(), panel)?;
            with_qr(PanelDisplay::new(panel, panels), args.qr_test_pattern)
        }
        (None, Some(png)) => with_qr(
            PanelDisplay::new(panel, PngFile::new(png)),
            args.qr_test_pattern,
        ),
        (None, None) => Box::new(LineDisplay::new(std::io::stdout())),
    };
    let (Some(chip), Some(buzzer_line)) = (&args.gpio_chip, args.buzzer_line) else {
        return Ok(display);
    };
    let wiring = SignalWiring {
        chip: chip.clone(),
        buzzer_line,
        light_line: args.light_line,
    };
    Ok(Box::new(Signalling::new(
        display,
        GpioSignals::open(&wiring)?,
    )))
}

fn with_qr<O: super::panel::PanelOutput + 'static>(
    panel: PanelDisplay<O>,
    qr: bool,
) -> Box<dyn DeviceDisplay> {
    match qr {
        true => Box::new(panel.with_qr_test_pattern()),
        false => Box::new(panel),
    }
}

/// One thing done on the text keypad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressed {
    Key(TillKey),
    Card(CardAction),
}

/// What one text-keypad line does: key names (`enter`, `clear`, `del`, `f1`, `up`, 清零…),
/// runs of digits and dots (`4.50` is four keys), `tap N` and `lift` (the bench's cards),
/// separated by blanks.
pub fn parse_key_line(line: &str) -> Result<Vec<Pressed>, String> {
    if line.len() > MAX_KEY_LINE_BYTES {
        return Err(format!("a line of {} bytes", line.len()));
    }
    let mut keys = Vec::new();
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("lift") {
            keys.push(Pressed::Card(CardAction::Lift));
            continue;
        }
        if word.eq_ignore_ascii_case("tap") {
            let n = words.next().and_then(|n| n.parse::<usize>().ok());
            let n = n.ok_or("`tap` needs a card number, e.g. `tap 1`")?;
            keys.push(Pressed::Card(CardAction::Tap(n)));
            continue;
        }
        match word.parse::<TillKey>() {
            Ok(key) => keys.push(Pressed::Key(key)),
            Err(_) if word.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                let digits = word
                    .chars()
                    .filter_map(|c| c.to_string().parse::<TillKey>().ok());
                keys.extend(digits.map(Pressed::Key));
            }
            Err(e) => return Err(format!("{word:?} is no key: {e}")),
        }
    }
    Ok(keys)
}

/// Reads the text keypad on a thread; a bad line is logged and skipped whole. A FIFO is opened
/// again when its writer closes it (each `echo … > FIFO` is one writer); standard input or a
/// file ends the keypad at its end. `tap`/`lift` go to `cards` (refused and logged without).
pub fn spawn_key_lines(
    path: &Path,
    events: Sender<DeviceEvent>,
    mut cards: Option<CardHandler>,
) -> std::io::Result<()> {
    let path = path.to_path_buf();
    let shown = path.display().to_string();
    let is_fifo = {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_fifo())
    };
    if path.as_os_str() != "-" {
        std::fs::metadata(&path).map_err(|e| std::io::Error::other(format!("{shown}: {e}")))?;
    }
    std::thread::Builder::new()
        .name("key lines".into())
        .spawn(move || {
            let why = loop {
                let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
                    Box::new(std::io::stdin().lock())
                } else {
                    match std::fs::File::open(&path) {
                        Ok(file) => Box::new(std::io::BufReader::new(file)),
                        Err(e) => break e.to_string(),
                    }
                };
                if let Some(stop) = read_key_lines(reader, &events, &mut cards) {
                    break stop;
                }
                if !is_fifo {
                    break "end of file".to_string();
                }
            };
            let _ = events.send(DeviceEvent::InputLost {
                what: "key lines",
                path: shown,
                why,
            });
        })?;
    Ok(())
}

/// Sends the keys of every line; `Some(why)` when reading failed or nobody listens any more.
fn read_key_lines(
    reader: impl BufRead,
    events: &Sender<DeviceEvent>,
    cards: &mut Option<CardHandler>,
) -> Option<String> {
    for line in reader.lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => return Some(e.to_string()),
        };
        match parse_key_line(&line) {
            Ok(pressed) => {
                for pressed in pressed {
                    match pressed {
                        Pressed::Key(key) => {
                            if events.send(DeviceEvent::Key(key)).is_err() {
                                return Some("the till stopped listening".into());
                            }
                        }
                        Pressed::Card(action) => {
                            let done = match cards {
                                Some(cards) => cards(action),
                                None => Err("no bench cards in this run (--bench-cards)".into()),
                            };
                            if let Err(why) = done {
                                tracing::warn!("{action:?} refused: {why}");
                            }
                        }
                    }
                }
            }
            Err(why) => tracing::warn!("key line refused: {why}"),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::parse_device_settings;
    use clap::Parser;

    /// The `device` subcommand's output flags alone.
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        outputs: OutputArgs,
    }

    fn merged(flags: &[&str], file: &str) -> Result<OutputArgs, String> {
        let flags = Flags::try_parse_from(std::iter::once("device").chain(flags.iter().copied()))
            .map_err(|e| e.to_string())?;
        let mut outputs = flags.outputs;
        outputs.over_file(&parse_device_settings(file).unwrap())?;
        Ok(outputs)
    }

    const WIRED: &str = "[device.display]\nfb = \"/dev/fb0\"\ncustomer_fb = \"/dev/fb1\"\n\
                         panel = \"480x272\"\n[device.buzzer]\ngpio_chip = \"/dev/gpiochip0\"\n\
                         buzzer_line = 17\nlight_line = 27\n";

    #[test]
    fn a_flag_overrides_its_key_and_a_key_the_default() {
        let file = merged(&[], WIRED).unwrap();
        assert_eq!(file.fb.as_deref(), Some(Path::new("/dev/fb0")));
        assert_eq!(file.customer_fb.as_deref(), Some(Path::new("/dev/fb1")));
        assert_eq!(file.panel_size(), PanelSize::LARGE);
        assert_eq!(
            (file.gpio_chip.as_deref(), file.buzzer_line, file.light_line),
            (Some(Path::new("/dev/gpiochip0")), Some(17), Some(27))
        );
        let flags = merged(
            &[
                "--panel",
                "240x128",
                "--buzzer-line",
                "5",
                "--fb",
                "/dev/fb2",
            ],
            WIRED,
        )
        .unwrap();
        assert_eq!(flags.fb.as_deref(), Some(Path::new("/dev/fb2")));
        assert_eq!(flags.panel_size(), PanelSize::SMALL);
        assert_eq!(
            (flags.gpio_chip.as_deref(), flags.buzzer_line),
            (Some(Path::new("/dev/gpiochip0")), Some(5))
        );
        let defaults = merged(&[], "").unwrap();
        assert_eq!(defaults.panel_size(), DEFAULT_PANEL_SIZE);
        assert_eq!((defaults.fb, defaults.gpio_chip), (None, None));
        // The bench's PNG replaces the file's framebuffers.
        let bench = merged(&["--fb-png", "/tmp/till.png"], WIRED).unwrap();
        assert_eq!(bench.panel_size(), PanelSize::LARGE);
        assert_eq!((bench.fb, bench.customer_fb), (None, None));
    }

    #[test]
    fn flags_and_keys_that_need_each_other_are_checked_after_merging() {
        for (flags, file, error) in [
            (
                &["--buzzer-line", "5"][..],
                "",
                "--buzzer-line: 5 without a GPIO chip",
            ),
            (
                &["--gpio-chip", "/dev/gpiochip0"],
                "",
                "--gpio-chip: /dev/gpiochip0 without a buzzer line",
            ),
            (
                &["--light-line", "6"],
                "",
                "--light-line: 6 without a buzzer line",
            ),
            (
                &["--light-line", "17"],
                WIRED,
                "--light-line: 17 is the buzzer's line",
            ),
            (
                &["--customer-fb", "/dev/fb1"],
                "",
                "--customer-fb: no merchant framebuffer",
            ),
            (
                &["--fb-png", "/tmp/t.png", "--customer-fb", "/dev/fb1"],
                WIRED,
                "--customer-fb: no merchant framebuffer",
            ),
        ] {
            let refused = merged(flags, file)
                .err()
                .unwrap_or_else(|| panic!("{flags:?} accepted"));
            assert!(refused.starts_with(error), "{flags:?}: {refused}");
        }
        // What the file completes: a customer screen beside its fb, a light beside its buzzer.
        let file = "[device.display]\nfb = \"/dev/fb0\"\n[device.buzzer]\n\
                    gpio_chip = \"/dev/gpiochip0\"\nbuzzer_line = 17\n";
        let wired = merged(&["--customer-fb", "/dev/fb1", "--light-line", "27"], file).unwrap();
        assert_eq!(
            (wired.fb.is_some(), wired.buzzer_line, wired.light_line),
            (true, Some(17), Some(27))
        );
    }

    #[test]
    fn a_key_line_is_key_names_and_runs_of_digits() {
        let keys = |keys: &[TillKey]| Ok(keys.iter().copied().map(Pressed::Key).collect());
        assert_eq!(
            parse_key_line("4.5 enter"),
            keys(&[
                TillKey::Digit(4),
                TillKey::Dot,
                TillKey::Digit(5),
                TillKey::Enter
            ])
        );
        assert_eq!(
            parse_key_line("f2 1 7 清零"),
            keys(&[
                TillKey::F2,
                TillKey::Digit(1),
                TillKey::Digit(7),
                TillKey::Clear
            ])
        );
        assert_eq!(
            parse_key_line("tap 2 lift"),
            Ok(vec![
                Pressed::Card(CardAction::Tap(2)),
                Pressed::Card(CardAction::Lift)
            ])
        );
        assert!(parse_key_line("tap").unwrap_err().contains("card number"));
        let refused = parse_key_line("4 pay").unwrap_err();
        assert!(refused.contains("\"pay\" is no key"), "{refused}");
        assert!(parse_key_line(&"1".repeat(MAX_KEY_LINE_BYTES + 1)).is_err());
    }

    #[test]
    fn the_key_lines_of_a_file_arrive_in_order_and_a_bad_line_loses_no_other() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"1 enter\nnonsense\n2\n").unwrap();
        let (events, received) = std::sync::mpsc::channel();
        spawn_key_lines(file.path(), events, None).unwrap();
        let got: Vec<String> = received.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[..3], ["Key(Digit(1))", "Key(Enter)", "Key(Digit(2))"]);
        assert!(got[3].contains("end of file"), "{got:?}");
    }
}
