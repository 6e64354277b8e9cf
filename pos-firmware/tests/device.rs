//! The device front end (`pos-firmware device`) driven pass by pass against the emulated
//! MFRC522 and a Mifare Classic 1K wallet, through the real driver, wallet, runtime and sled
//! journal: a sale by keypad and tap; a card left on the reader is not read twice; a reader that
//! dies, or is reset behind the till's back, is reported to the merchant, dropped and re-opened
//! with back-off, and selling resumes; an interrupted write through the device settles at the
//! card's next tap; the binary refuses to run on the public demo key, and runs on an evdev keypad
//! (a FIFO of `struct input_event` records) with no reader, saying so on its line display.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use embedded_hal::spi::{Operation, SpiDevice};
use keymap::TillKey;
use pos_firmware::core::config::TillConfig;
use pos_firmware::device::{
    DeviceEvent, DeviceNote, DeviceTill, LineDisplay, ReaderOpener, READER_CHECK_INTERVAL_MS,
    READER_POLL_MS, READER_REOPEN_FIRST_MS,
};
use pos_firmware::reader::driver::{Mfrc522Reader, ReaderOptions};
use pos_firmware::reader::emulator::{
    EmulatedCard, EmulatedMfrc522, EmulatorControl, Fault, WriteFault,
};
use pos_firmware::runtime::Now;
use pos_firmware::wallet::layout::CardSerial;
use pos_firmware::wallet::{WalletConfig, WalletReader};
use shared::record::RecordBody;
use shared::{CardUid, Fen, UnixMillis};

const OPENING_FEN: u64 = 10_000;
const START_WALL_MS: i64 = 1_700_000_000_000;

/// What the line display wrote, shared with the test.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    /// Everything written since the last call.
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

type EmulatedReader = Mfrc522Reader<EmulatedMfrc522>;

struct Rig {
    till: DeviceTill<EmulatedReader>,
    control: EmulatorControl,
    screen: Screen,
    card: EmulatedCard,
    uid: CardUid,
    now: Now,
    _dir: tempfile::TempDir,
}

fn issued_card(uid: &CardUid) -> EmulatedCard {
    let control = EmulatorControl::new();
    control.place_card(EmulatedCard::blank(uid.as_bytes()).unwrap());
    let reader = Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR).unwrap();
    let mut wallet = WalletReader::new(reader, WalletConfig::demo());
    wallet
        .issue(CardSerial(20_240_001), Fen::new(OPENING_FEN))
        .unwrap();
    control.remove_card().unwrap()
}

fn rig() -> Rig {
    let uid = CardUid::new(&[0x04, 0x52, 0x61, 0x7A, 0x8B, 0x9C, 0x80]).unwrap();
    let card = issued_card(&uid);
    let control = EmulatorControl::new();
    let opener_control = control.clone();
    let opener: ReaderOpener<EmulatedReader> = Box::new(move || {
        Mfrc522Reader::new(opener_control.device(), ReaderOptions::EMULATOR)
            .map_err(|e| e.to_string())
    });
    let screen = Screen::default();
    let dir = tempfile::tempdir().unwrap();
    let now = Now {
        wall: UnixMillis(START_WALL_MS),
        mono_ms: 1_000,
    };
    let till = DeviceTill::open(
        dir.path(),
        TillConfig::default(),
        WalletConfig::demo(),
        opener,
        Box::new(LineDisplay::new(screen.clone())),
        now,
    )
    .unwrap();
    Rig {
        till,
        control,
        screen,
        card,
        uid,
        now,
        _dir: dir,
    }
}

impl Rig {
    /// Advances both clocks by `ms` and runs one pass with `events`.
    fn step_after(&mut self, ms: u64, events: Vec<DeviceEvent>) {
        self.now.mono_ms += ms;
        self.now.wall = UnixMillis(self.now.wall.0 + i64::try_from(ms).unwrap());
        self.till.step(events, self.now);
    }

    fn keys(&mut self, keys: &[TillKey]) {
        for &key in keys {
            self.step_after(50, vec![DeviceEvent::Key(key)]);
        }
    }

    fn poll(&mut self) {
        self.step_after(READER_POLL_MS, Vec::new());
    }

    fn records(&self) -> Vec<RecordBody> {
        common::journal::records(self.till.runtime().journal())
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    fn committed(&self) -> usize {
        self.records()
            .iter()
            .filter(|b| matches!(b, RecordBody::SaleCommitted(_)))
            .count()
    }

    /// The balance on the card the till's reader holds (or a fault took), read on a reader
    /// of its own.
    fn balance_on_card(&self) -> Fen {
        let card = self.control.card().expect("a card on or off the reader");
        let control = EmulatorControl::new();
        control.place_card(card);
        let reader = Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR).unwrap();
        let mut wallet = WalletReader::new(reader, WalletConfig::demo());
        match wallet.tap() {
            Some(pos_firmware::core::card::CardRead::Card(image)) => image.balance,
            other => panic!("the card does not read back: {other:?}"),
        }
    }
}

/// Writes `value` into an MFRC522 register straight over SPI (as a brown-out would leave it).
fn poke_register(device: &mut EmulatedMfrc522, register: u8, value: u8) {
    let mut frame = [(register & 0x3F) << 1, value];
    device
        .transaction(&mut [Operation::TransferInPlace(&mut frame)])
        .unwrap();
}

#[test]
fn a_sale_by_keypad_and_tap_and_a_card_left_on_the_reader_is_read_once() {
    let mut rig = rig();
    assert!(rig.till.reader_up());
    rig.screen.take();
    rig.keys(&[TillKey::Digit(5), TillKey::Enter]);
    let shown = rig.screen.take();
    assert!(shown.contains("5.00"), "{shown}");

    rig.control.place_card(rig.card.clone());
    rig.poll();
    let shown = rig.screen.take();
    assert!(shown.contains("交易成功"), "{shown}");
    assert!(shown.contains("BEEP success"), "{shown}");
    assert_eq!(rig.committed(), 1);
    let notes = rig.till.take_notes();
    assert_eq!(
        notes,
        vec![DeviceNote::Tapped(format!("card {}", rig.uid))],
        "{notes:?}"
    );

    // The card stays on the reader: halted, it is not read again, whatever the till shows.
    rig.keys(&[TillKey::Digit(3), TillKey::Enter]);
    for _ in 0..5 {
        rig.poll();
    }
    assert!(rig.till.take_notes().is_empty());
    assert_eq!(rig.committed(), 1);

    // Lifted and tapped again: a new tap pays the new amount.
    let card = rig.control.remove_card().unwrap();
    rig.poll();
    rig.control.place_card(card);
    rig.poll();
    assert_eq!(rig.committed(), 2);
    assert_eq!(rig.balance_on_card(), Fen::new(OPENING_FEN - 800));
}

#[test]
fn a_dead_reader_is_reported_dropped_and_reopened_with_backoff_then_selling_resumes() {
    let mut rig = rig();
    rig.screen.take();
    rig.control.set_reader_dead(Some(0x00));
    // The idle check finds it.
    rig.step_after(READER_CHECK_INTERVAL_MS, Vec::new());
    assert!(!rig.till.reader_up());
    let notes = rig.till.take_notes();
    assert!(
        matches!(notes.as_slice(), [DeviceNote::ReaderDown(_)]),
        "{notes:?}"
    );
    let shown = rig.screen.take();
    assert!(shown.contains("读卡器故障"), "{shown}");

    // Keys still work while the reader is down.
    rig.keys(&[TillKey::Digit(2), TillKey::Enter]);
    assert!(rig.screen.take().contains("2.00"));

    // Re-open attempts while it is still dead: each fails and the wait doubles.
    rig.step_after(READER_REOPEN_FIRST_MS, Vec::new());
    let notes = rig.till.take_notes();
    assert!(
        matches!(notes.as_slice(), [DeviceNote::ReaderReopenFailed(_)]),
        "{notes:?}"
    );
    rig.step_after(READER_REOPEN_FIRST_MS, Vec::new());
    assert!(
        rig.till.take_notes().is_empty(),
        "no new attempt before the doubled wait"
    );
    rig.step_after(READER_REOPEN_FIRST_MS, Vec::new());
    assert!(matches!(
        rig.till.take_notes().as_slice(),
        [DeviceNote::ReaderReopenFailed(_)]
    ));

    // The chip comes back (power restored): the next attempt re-initialises it.
    rig.control.set_reader_dead(None);
    rig.step_after(4 * READER_REOPEN_FIRST_MS, Vec::new());
    assert_eq!(rig.till.take_notes(), vec![DeviceNote::ReaderBack]);
    assert!(rig.till.reader_up());

    // And it sells: the amount typed while the reader was down is still awaited.
    rig.control.place_card(rig.card.clone());
    rig.poll();
    assert_eq!(rig.committed(), 1);
    assert!(rig.screen.take().contains("交易成功"));
}

#[test]
fn a_chip_reset_behind_the_tills_back_is_found_and_reinitialised() {
    let mut rig = rig();
    // A brown-out: the chip comes back with its power-on registers (antenna off) and answers
    // its version as before, but would never see a card again.
    let mut device = rig.control.device();
    poke_register(&mut device, 0x01, 0x0F); // CommandReg ← SoftReset
    rig.step_after(READER_CHECK_INTERVAL_MS, Vec::new());
    let notes = rig.till.take_notes();
    assert!(
        matches!(notes.as_slice(), [DeviceNote::ReaderDown(why)] if why.contains("antenna")),
        "{notes:?}"
    );
    rig.keys(&[TillKey::Digit(1), TillKey::Enter]);
    rig.control.place_card(rig.card.clone());
    rig.step_after(READER_REOPEN_FIRST_MS, Vec::new());
    assert_eq!(rig.till.take_notes(), vec![DeviceNote::ReaderBack]);
    assert_eq!(rig.committed(), 0);
    // The card on the reader is seen once the antenna is on again.
    rig.poll();
    assert_eq!(rig.committed(), 1);
    assert_eq!(rig.balance_on_card(), Fen::new(OPENING_FEN - 100));
}

#[test]
fn a_write_torn_on_the_device_settles_at_the_next_tap_exactly_once() {
    let mut rig = rig();
    rig.keys(&[TillKey::Digit(7), TillKey::Enter]);
    // The card leaves right after the slot write reaches it, before its ACK.
    rig.control.inject(Fault::Write {
        write_index: rig.control.counters().writes,
        fault: WriteFault::RemovedAfterData,
    });
    rig.control.place_card(rig.card.clone());
    rig.poll();
    let shown = rig.screen.take();
    assert!(shown.contains("请重新刷卡"), "{shown}");
    assert_eq!(rig.committed(), 0);
    let card = rig
        .control
        .remove_card()
        .or_else(|| rig.control.card())
        .expect("the card the fault took");
    rig.poll();
    rig.control.place_card(card);
    rig.poll();
    let records = rig.records();
    let settled = records
        .iter()
        .filter(|b| matches!(b, RecordBody::SaleCommitted(_) | RecordBody::SaleAborted(_)))
        .count();
    assert_eq!(settled, 1, "{records:?}");
    let on_card = rig.balance_on_card();
    match records
        .iter()
        .any(|b| matches!(b, RecordBody::SaleCommitted(_)))
    {
        true => assert_eq!(on_card, Fen::new(OPENING_FEN - 700)),
        false => assert_eq!(on_card, Fen::new(OPENING_FEN)),
    }
}

#[test]
fn the_device_refuses_the_public_demo_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("till.toml");
    std::fs::write(&config, "language = \"en\"\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pos-firmware"))
        .args(["device", "--no-link", "--spi", "/nonexistent/spidev"])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("master key"), "{stderr}");
    assert!(
        !dir.path().join("db").exists(),
        "no journal is made before the key is checked"
    );
}

/// The binary on "hardware" made of files: the keypad a FIFO fed with `struct input_event`
/// records, no SPI device at all. It starts with the reader down (and says so), takes keys, and
/// shows both on its line display.
#[test]
fn the_binary_runs_on_an_evdev_keypad_and_reports_a_missing_reader() {
    use pos_firmware::device::inputs::encode_event;
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    const EV_KEY: u16 = 1;
    const KEY_5: u16 = 6;
    const KEY_ENTER: u16 = 28;
    const WAIT: Duration = Duration::from_secs(20);

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("card-master.key");
    std::fs::write(&key, "7a".repeat(32)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.path().join("till.toml"),
        format!(
            "[card]\nmaster_key_file = \"{}\"\ncampus_id = 1\n",
            key.display()
        ),
    )
    .unwrap();
    let keypad = dir.path().join("event0");
    let made = std::process::Command::new("mkfifo")
        .arg(&keypad)
        .status()
        .unwrap();
    assert!(made.success());

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pos-firmware"))
        .args(["device", "--no-link", "--spi"])
        .arg(dir.path().join("no-spidev"))
        .arg("--keypad")
        .arg(&keypad)
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--config")
        .arg(dir.path().join("till.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |wanted: &str| {
        let deadline = Instant::now() + WAIT;
        while !seen.iter().any(|l: &String| l.contains(wanted)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => return Err(format!("no '{wanted}' within {WAIT:?}: {seen:?}")),
            }
        }
        Ok(())
    };
    let reader_down = wait_for("读卡器故障");
    // Opening the FIFO for writing waits for the till to open it for reading.
    let mut events = std::fs::OpenOptions::new()
        .write(true)
        .open(&keypad)
        .unwrap();
    let mut bytes = encode_event(EV_KEY, KEY_5, 1);
    bytes.extend(encode_event(EV_KEY, KEY_5, 0));
    bytes.extend(encode_event(EV_KEY, KEY_ENTER, 1));
    events.write_all(&bytes).unwrap();
    let amount_shown = wait_for("5.00");
    let _ = child.kill();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
    reader_down.unwrap_or_else(|e| panic!("{e}\nstderr:\n{stderr}"));
    amount_shown.unwrap_or_else(|e| panic!("{e}\nstderr:\n{stderr}"));
    assert!(!status.success(), "killed, not ended on its own");
    assert!(stderr.contains("card reader"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
