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

/// The panel size when the configuration names none (the common 3.5" till TFT).
pub const DEFAULT_PANEL_SIZE: PanelSize = PanelSize::MEDIUM;
/// The longest line the text keypad accepts; longer ones are refused whole.
pub const MAX_KEY_LINE_BYTES: usize = 256;

/// Where the displays, the buzzer and (on a bench) the keys are.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// The merchant's framebuffer (both screens on it as two regions without --customer-fb).
    /// Without --fb or --fb-png the screens are text lines on standard output.
    #[arg(long, value_name = "DEVICE")]
    pub fb: Option<PathBuf>,
    /// The customer's own framebuffer.
    #[arg(long, value_name = "DEVICE", requires = "fb")]
    pub customer_fb: Option<PathBuf>,
    /// Each screen's size in pixels: 240x128, 320x240, 480x272 or another WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", default_value_t = DEFAULT_PANEL_SIZE)]
    pub panel: PanelSize,
    /// Bench: both screens as one PNG file, rewritten after every redraw (instead of --fb).
    #[arg(long, value_name = "PATH", conflicts_with = "fb")]
    pub fb_png: Option<PathBuf>,
    /// Show a QR test pattern where the customer's payment QR code goes.
    #[arg(long)]
    pub qr_test_pattern: bool,
    /// The GPIO character device of the buzzer and the light.
    #[arg(long, value_name = "DEVICE", requires = "buzzer_line")]
    pub gpio_chip: Option<PathBuf>,
    /// The buzzer's line on --gpio-chip (active high).
    #[arg(long, requires = "gpio_chip")]
    pub buzzer_line: Option<u32>,
    /// The status light's line on --gpio-chip (active high).
    #[arg(long, requires = "buzzer_line")]
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

/// The display (with the buzzer when one is wired) the options name.
pub fn open_display(args: &OutputArgs) -> anyhow::Result<Box<dyn DeviceDisplay>> {
    let display: Box<dyn DeviceDisplay> = match (&args.fb, &args.fb_png) {
        (Some(fb), _) => {
            let panels = FbPanels::open(fb, args.customer_fb.as_deref(), args.panel)?;
            with_qr(PanelDisplay::new(args.panel, panels), args.qr_test_pattern)
        }
        (None, Some(png)) => with_qr(
            PanelDisplay::new(args.panel, PngFile::new(png)),
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
