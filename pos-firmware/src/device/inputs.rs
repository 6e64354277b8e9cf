//! The till's own input devices, each read on a thread of its own so that a slow or dead device
//! never blocks selling: the keypad as a Linux evdev device (`/dev/input/eventN`, `struct
//! input_event` records looked up in `keymap::LINUX_KEYCODES`), and the code scanner as a line
//! device (a serial scanner in line mode, or a FIFO): one payment code per line. What they read
//! reaches the device loop as [`DeviceEvent`]s on a channel.
//!
//! The evdev record parsing is pure ([`EvdevDecoder`]) and unit-tested; the threads only read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use keymap::{till_key_from_linux, TillKey};

use super::DeviceEvent;

/// `EV_KEY` in `linux/input-event-codes.h`.
const EV_KEY: u16 = 0x01;
/// An `EV_KEY` value: the key went down (0 is a release, 2 an autorepeat).
const KEY_PRESSED: i32 = 1;
/// The size of `struct input_event` on this machine: a `struct timeval` (two `long`s), then
/// `__u16 type`, `__u16 code`, `__s32 value`.
pub const INPUT_EVENT_BYTES: usize = 2 * std::mem::size_of::<libc::c_long>() + 8;
/// Input events read from the keypad at a time.
const EVENTS_PER_READ: usize = 64;
/// The longest line the scanner may send (longer ones are refused whole, never cut into a code).
pub const MAX_SCANNER_LINE_BYTES: usize = 512;
/// `EVIOCGRAB` = `_IOW('E', 0x90, int)`: the keypad's events go to this process only (not also
/// to a console on the same machine).
const EVIOCGRAB: libc::c_ulong = 0x4004_4590;

/// Turns the byte stream of an evdev device into till keys: key presses only (releases and
/// autorepeats ignored, or a held Clear would arrive as several), unknown keys and other event
/// types ignored. Bytes may arrive split anywhere; a partial record waits for the rest.
#[derive(Debug, Default)]
pub struct EvdevDecoder {
    pending: Vec<u8>,
}

impl EvdevDecoder {
    pub fn new() -> EvdevDecoder {
        EvdevDecoder::default()
    }

    /// Feeds bytes read from the device; returns the till keys pressed in them, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<TillKey> {
        self.pending.extend_from_slice(bytes);
        let whole = self.pending.len() - self.pending.len() % INPUT_EVENT_BYTES;
        let keys = self.pending[..whole]
            .chunks_exact(INPUT_EVENT_BYTES)
            .filter_map(decode_event)
            .collect();
        self.pending.drain(..whole);
        keys
    }
}

/// One `struct input_event` → the till key it presses, if any.
fn decode_event(record: &[u8]) -> Option<TillKey> {
    let at = INPUT_EVENT_BYTES - 8;
    let field = |offset: usize| -> Option<[u8; 2]> {
        record.get(at + offset..at + offset + 2)?.try_into().ok()
    };
    let kind = u16::from_ne_bytes(field(0)?);
    let code = u16::from_ne_bytes(field(2)?);
    let value = i32::from_ne_bytes(record.get(at + 4..at + 8)?.try_into().ok()?);
    if kind == EV_KEY && value == KEY_PRESSED {
        till_key_from_linux(code)
    } else {
        None
    }
}

/// Encodes one `struct input_event` (zero time stamp), as the kernel would (for tests and for
/// documentation of the layout).
pub fn encode_event(kind: u16, code: u16, value: i32) -> Vec<u8> {
    let mut record = vec![0u8; INPUT_EVENT_BYTES - 8];
    record.extend_from_slice(&kind.to_ne_bytes());
    record.extend_from_slice(&code.to_ne_bytes());
    record.extend_from_slice(&value.to_ne_bytes());
    record
}

/// Why an input device could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the {what} {path}: {source}")]
pub struct InputOpenError {
    pub what: &'static str,
    pub path: PathBuf,
    source: std::io::Error,
}

/// Opens the keypad and reads it on a thread; its keys (and its loss) go to `events`.
pub fn spawn_keypad(path: &Path, events: Sender<DeviceEvent>) -> Result<(), InputOpenError> {
    const WHAT: &str = "keypad";
    let mut device = open_input(WHAT, path)?;
    // SAFETY: EVIOCGRAB takes an int argument by value; the fd is open for the whole call.
    let grabbed = unsafe { libc::ioctl(device.as_raw_fd(), EVIOCGRAB, 1 as libc::c_int) };
    if grabbed != 0 {
        tracing::warn!(
            "keypad {}: cannot grab it for this process alone ({}); keys may also reach a console",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    spawn_input(WHAT, path, events, move |events, _| {
        let mut decoder = EvdevDecoder::new();
        let mut buffer = vec![0u8; INPUT_EVENT_BYTES * EVENTS_PER_READ];
        loop {
            match device.read(&mut buffer) {
                Ok(0) => return Some("end of file".to_string()),
                Ok(n) => {
                    for key in decoder.feed(&buffer[..n]) {
                        events.send(DeviceEvent::Key(key)).ok()?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Some(e.to_string()),
            }
        }
    })
}

fn open_input(what: &'static str, path: &Path) -> Result<File, InputOpenError> {
    File::open(path).map_err(|source| InputOpenError {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `read` on a thread of its own. It returns why the device is gone (sent on as
/// [`DeviceEvent::InputLost`]), or `None` when the loop stopped listening.
fn spawn_input(
    what: &'static str,
    path: &Path,
    events: Sender<DeviceEvent>,
    read: impl FnOnce(&Sender<DeviceEvent>, &str) -> Option<String> + Send + 'static,
) -> Result<(), InputOpenError> {
    let shown = path.display().to_string();
    std::thread::Builder::new()
        .name(what.into())
        .spawn(move || {
            if let Some(why) = read(&events, &shown) {
                let _ = events.send(DeviceEvent::InputLost {
                    what,
                    path: shown,
                    why,
                });
            }
        })
        .map_err(|source| InputOpenError {
            what,
            path: path.to_path_buf(),
            source,
        })?;
    Ok(())
}

/// What one scanner line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerLine {
    Code(String),
    /// Empty or blank: nothing scanned.
    Nothing,
    /// Not text, or longer than [`MAX_SCANNER_LINE_BYTES`]: refused whole.
    Refused(String),
}

/// Parses one line from the scanner (without its line end).
pub fn parse_scanner_line(bytes: &[u8]) -> ScannerLine {
    if bytes.len() > MAX_SCANNER_LINE_BYTES {
        return ScannerLine::Refused(format!(
            "a {}-byte line (at most {MAX_SCANNER_LINE_BYTES})",
            bytes.len()
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if text.trim().is_empty() => ScannerLine::Nothing,
        Ok(text) if text.trim().chars().any(char::is_control) => {
            ScannerLine::Refused("control characters in the code".into())
        }
        Ok(text) => ScannerLine::Code(text.trim().to_string()),
        Err(_) => ScannerLine::Refused("not UTF-8 text".into()),
    }
}

/// Opens the scanner and reads it line by line on a thread; codes go to `events`.
pub fn spawn_scanner(path: &Path, events: Sender<DeviceEvent>) -> Result<(), InputOpenError> {
    const WHAT: &str = "code scanner";
    let device = open_input(WHAT, path)?;
    spawn_input(WHAT, path, events, move |events, shown| {
        // A bounded reader: a line without an end cannot grow without limit.
        let limit = u64::try_from(MAX_SCANNER_LINE_BYTES).unwrap_or(u64::MAX) + 2;
        let mut lines = BufReader::new(device);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut lines).take(limit).read_until(b'\n', &mut line) {
                Ok(0) => return Some("end of file".to_string()),
                Ok(_) => {
                    let parsed = if line.last() == Some(&b'\n') {
                        parse_scanner_line(trim_line_end(&line))
                    } else {
                        // Too long: skip the rest of it, then refuse it whole.
                        skip_to_line_end(&mut lines);
                        ScannerLine::Refused(format!("a line over {MAX_SCANNER_LINE_BYTES} bytes"))
                    };
                    match parsed {
                        ScannerLine::Code(code) => events.send(DeviceEvent::Code(code)).ok()?,
                        ScannerLine::Nothing => {}
                        ScannerLine::Refused(why) => {
                            tracing::warn!("scanner {shown}: refused a line: {why}")
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Some(e.to_string()),
            }
        }
    })
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn skip_to_line_end(lines: &mut impl BufRead) {
    let mut sink = Vec::new();
    loop {
        sink.clear();
        let limit = u64::try_from(MAX_SCANNER_LINE_BYTES).unwrap_or(u64::MAX);
        match lines.take(limit).read_until(b'\n', &mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) if sink.last() == Some(&b'\n') => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_5: u16 = 6;
    const KEY_ENTER: u16 = 28;
    const KEY_ESC: u16 = 1;
    const KEY_A: u16 = 30;
    const EV_SYN: u16 = 0;

    #[test]
    fn key_presses_become_till_keys_and_releases_repeats_and_syncs_do_not() {
        let mut bytes = Vec::new();
        bytes.extend(encode_event(EV_KEY, KEY_5, 1));
        bytes.extend(encode_event(EV_SYN, 0, 0));
        bytes.extend(encode_event(EV_KEY, KEY_5, 0));
        bytes.extend(encode_event(EV_KEY, KEY_ESC, 1));
        bytes.extend(encode_event(EV_KEY, KEY_ESC, 2));
        bytes.extend(encode_event(EV_KEY, KEY_A, 1));
        bytes.extend(encode_event(EV_KEY, KEY_ENTER, 1));
        let keys = EvdevDecoder::new().feed(&bytes);
        assert_eq!(
            keys,
            vec![TillKey::Digit(5), TillKey::Clear, TillKey::Enter]
        );
    }

    #[test]
    fn records_split_anywhere_are_put_back_together() {
        let mut bytes = Vec::new();
        for code in [KEY_5, KEY_ENTER, KEY_ESC] {
            bytes.extend(encode_event(EV_KEY, code, 1));
        }
        for split in 0..bytes.len() {
            let mut decoder = EvdevDecoder::new();
            let mut keys = decoder.feed(&bytes[..split]);
            keys.extend(decoder.feed(&bytes[split..]));
            assert_eq!(
                keys,
                vec![TillKey::Digit(5), TillKey::Enter, TillKey::Clear],
                "split at {split}"
            );
        }
    }

    #[test]
    fn the_record_size_is_the_kernels() {
        assert_eq!(INPUT_EVENT_BYTES, std::mem::size_of::<libc::input_event>());
    }

    #[test]
    fn scanner_lines() {
        assert_eq!(
            parse_scanner_line(b" 134567890123456789 "),
            ScannerLine::Code("134567890123456789".into())
        );
        assert_eq!(parse_scanner_line(b"   "), ScannerLine::Nothing);
        assert!(matches!(
            parse_scanner_line(&[0xff, 0xfe]),
            ScannerLine::Refused(_)
        ));
        assert!(matches!(
            parse_scanner_line(b"12\x0734"),
            ScannerLine::Refused(_)
        ));
        assert!(matches!(
            parse_scanner_line(&vec![b'1'; MAX_SCANNER_LINE_BYTES + 1]),
            ScannerLine::Refused(_)
        ));
        assert_eq!(trim_line_end(b"123\r\n"), b"123");
    }

    #[test]
    fn the_scanner_thread_sends_codes_skips_overlong_lines_and_reports_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scanner");
        let mut text = b"281234567890123456\n\n".to_vec();
        text.extend(vec![b'9'; MAX_SCANNER_LINE_BYTES * 3]);
        text.extend(b"\n134567890123456789\r\n");
        std::fs::write(&path, text).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        spawn_scanner(&path, sender).unwrap();
        let events: Vec<DeviceEvent> = receiver.iter().collect();
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(&events[0], DeviceEvent::Code(c) if c == "281234567890123456"));
        assert!(matches!(&events[1], DeviceEvent::Code(c) if c == "134567890123456789"));
        assert!(matches!(
            events[2],
            DeviceEvent::InputLost {
                what: "code scanner",
                ..
            }
        ));
    }

    #[test]
    fn the_keypad_thread_reads_a_device_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event0");
        let mut bytes = encode_event(EV_KEY, KEY_5, 1);
        bytes.extend(encode_event(EV_KEY, KEY_ENTER, 1));
        std::fs::write(&path, bytes).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        spawn_keypad(&path, sender).unwrap();
        let events: Vec<DeviceEvent> = receiver.iter().collect();
        assert!(matches!(events[0], DeviceEvent::Key(TillKey::Digit(5))));
        assert!(matches!(events[1], DeviceEvent::Key(TillKey::Enter)));
        assert!(matches!(events[2], DeviceEvent::InputLost { .. }));
        assert!(spawn_keypad(&dir.path().join("missing"), std::sync::mpsc::channel().0).is_err());
    }
}
