//! The buzzer and the status light through the device loop: a beep of the till plays its
//! pattern on the GPIO lines across the loop's passes, one level change per pass when it is
//! due, and the loop waits no longer than the pattern's next change, so a beep never blocks
//! selling and never drags.

use std::sync::{Arc, Mutex};

use pos_firmware::core::config::TillConfig;
use pos_firmware::core::Beep;
use pos_firmware::device::buzzer::{pattern, Levels, SignalLines, Signalling};
use pos_firmware::device::{DeviceTill, LineDisplay, ReaderOpener};
use pos_firmware::reader::spidev::SpidevReader;
use pos_firmware::runtime::Now;
use pos_firmware::wallet::WalletConfig;
use shared::UnixMillis;

/// The levels written to the lines, shared with the test.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<Levels>>>);

impl SignalLines for Lines {
    fn set(&mut self, levels: Levels) -> std::io::Result<()> {
        self.0.lock().unwrap().push(levels);
        Ok(())
    }
}

impl Lines {
    fn written(&self) -> Vec<Levels> {
        self.0.lock().unwrap().clone()
    }
}

fn at(mono_ms: u64) -> Now {
    Now {
        wall: UnixMillis(1_700_000_000_000 + mono_ms as i64),
        mono_ms,
    }
}

#[test]
fn the_readers_fault_beep_plays_the_error_pattern_pass_by_pass_without_blocking_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let lines = Lines::default();
    let display = Signalling::new(LineDisplay::new(Vec::new()), lines.clone());
    // No reader on this bench: the till starts with the reader down, which it reports with an
    // error beep.
    let opener: ReaderOpener<SpidevReader> = Box::new(|| Err("no reader here".to_string()));
    let start = 1_000;
    let mut till = DeviceTill::open(
        dir.path(),
        TillConfig::default(),
        WalletConfig::demo(),
        opener,
        Box::new(display),
        at(start),
    )
    .unwrap();
    assert!(
        lines.written().is_empty(),
        "nothing sounds before the loop's first pass"
    );

    let steps = pattern(Beep::Error);
    let mut expected = Vec::new();
    let mut t = start;
    for step in steps {
        till.step(Vec::new(), at(t));
        expected.push(step.levels);
        assert_eq!(lines.written(), expected, "at {t} ms");
        // Part-way through the step the loop is told to come back when it ends, not later.
        let budget = till.wait_budget(at(t + step.ms / 2)).as_millis() as u64;
        assert!(
            budget <= step.ms - step.ms / 2,
            "waits {budget} ms at {t} ms"
        );
        t += step.ms;
    }
    till.step(Vec::new(), at(t));
    expected.push(Levels::default());
    assert_eq!(lines.written(), expected, "both lines off at the end");
}
