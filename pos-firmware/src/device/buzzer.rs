//! The till's buzzer and status light. [`PatternPlayer`] is sans-IO: a beep goes in
//! ([`PatternPlayer::handle_beep`]), the time goes in, and the levels the two lines should have
//! come out ([`PatternPlayer::poll_levels`]) with the next moment they change
//! ([`PatternPlayer::next_change_ms`]), so the device loop never sleeps for a beep. The GPIO
//! writes are a thin driver ([`GpioSignals`]: lines on a GPIO character device through
//! `linux-embedded-hal`'s `CdevPin`). [`Signalling`] puts the player and the lines behind any
//! [`DeviceDisplay`].
//!
//! The three patterns are told apart by ear and by eye: success is one short beep with the light
//! held on, an error three short beeps with the light flashing, attention two long beeps.

use std::path::Path;

use embedded_hal::digital::OutputPin;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;

use super::display::DeviceDisplay;
use crate::core::{Beep, Displays};

/// What the buzzer and the light do for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub levels: Levels,
    pub ms: u64,
}

/// The two lines' levels (`true` = sounding / lit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levels {
    pub buzzer: bool,
    pub light: bool,
}

const BOTH: Levels = Levels {
    buzzer: true,
    light: true,
};
const LIGHT: Levels = Levels {
    buzzer: false,
    light: true,
};
const OFF: Levels = Levels {
    buzzer: false,
    light: false,
};

/// A short beep (ms) and the long one of [`ATTENTION`].
pub const SHORT_BEEP_MS: u64 = 100;
pub const LONG_BEEP_MS: u64 = 400;
/// The silence between beeps of one pattern.
pub const GAP_MS: u64 = 100;
/// How long the light stays on after a success.
pub const SUCCESS_LIGHT_MS: u64 = 1_000;

/// A sale or load went through: one short beep, the light held on.
pub const SUCCESS: [Step; 2] = [
    Step {
        levels: BOTH,
        ms: SHORT_BEEP_MS,
    },
    Step {
        levels: LIGHT,
        ms: SUCCESS_LIGHT_MS - SHORT_BEEP_MS,
    },
];
/// Something was refused: three short beeps, the light flashing with them.
pub const ERROR: [Step; 5] = [
    Step {
        levels: BOTH,
        ms: SHORT_BEEP_MS,
    },
    Step {
        levels: OFF,
        ms: GAP_MS,
    },
    Step {
        levels: BOTH,
        ms: SHORT_BEEP_MS,
    },
    Step {
        levels: OFF,
        ms: GAP_MS,
    },
    Step {
        levels: BOTH,
        ms: SHORT_BEEP_MS,
    },
];
/// The merchant must look (a card to tap again, a fault): two long beeps, the light on between.
pub const ATTENTION: [Step; 3] = [
    Step {
        levels: BOTH,
        ms: LONG_BEEP_MS,
    },
    Step {
        levels: LIGHT,
        ms: GAP_MS,
    },
    Step {
        levels: BOTH,
        ms: LONG_BEEP_MS,
    },
];

/// The steps of `beep`'s pattern; after the last one both lines are off.
pub fn pattern(beep: Beep) -> &'static [Step] {
    match beep {
        Beep::Success => &SUCCESS,
        Beep::Error => &ERROR,
        Beep::Attention => &ATTENTION,
    }
}

/// Plays the patterns against the time it is given. A beep that comes while another plays
/// replaces it (the newest news is what the merchant must hear).
#[derive(Debug, Default)]
pub struct PatternPlayer {
    /// A beep not yet started (it starts at the next poll, which knows the time).
    pending: Option<Beep>,
    /// The pattern playing: its steps, the step, and when that step ends.
    playing: Option<(&'static [Step], usize, u64)>,
    /// The levels last handed out.
    levels: Levels,
}

impl PatternPlayer {
    pub fn new() -> PatternPlayer {
        PatternPlayer::default()
    }

    pub fn handle_beep(&mut self, beep: Beep) {
        self.pending = Some(beep);
    }

    /// The levels the lines must take at `now_ms`, when they differ from the last ones.
    pub fn poll_levels(&mut self, now_ms: u64) -> Option<Levels> {
        if let Some(beep) = self.pending.take() {
            let steps = pattern(beep);
            self.playing = steps
                .first()
                .map(|s| (steps, 0, now_ms.saturating_add(s.ms)));
        }
        while let Some((steps, index, ends)) = self.playing {
            if now_ms < ends {
                break;
            }
            let next = index + 1;
            self.playing = steps
                .get(next)
                .map(|s| (steps, next, ends.saturating_add(s.ms)));
        }
        let levels = match self.playing {
            Some((steps, index, _)) => steps[index].levels,
            None => OFF,
        };
        (levels != self.levels).then(|| {
            self.levels = levels;
            levels
        })
    }

    /// When the levels change next (`None` when nothing plays or waits to).
    pub fn next_change_ms(&self, now_ms: u64) -> Option<u64> {
        if self.pending.is_some() {
            return Some(now_ms);
        }
        self.playing.map(|(_, _, ends)| ends)
    }
}

/// The buzzer and light lines (the GPIO driver, or a test's record of the writes).
pub trait SignalLines {
    fn set(&mut self, levels: Levels) -> std::io::Result<()>;
}

/// Where the buzzer and the light are wired: lines of one GPIO character device.
#[derive(Debug, Clone)]
pub struct SignalWiring {
    pub chip: std::path::PathBuf,
    pub buzzer_line: u32,
    pub light_line: Option<u32>,
}

/// The name the till gives its GPIO requests (shown by `gpioinfo`).
pub const SIGNAL_CONSUMER: &str = "campus-pos-signals";

/// The buzzer (and light) on GPIO character-device lines, active high, requested low.
pub struct GpioSignals {
    buzzer: CdevPin,
    light: Option<CdevPin>,
}

impl GpioSignals {
    pub fn open(wiring: &SignalWiring) -> std::io::Result<GpioSignals> {
        let mut chip = Chip::new(&wiring.chip).map_err(|e| gpio_error(&wiring.chip, e))?;
        let mut request = |line: u32| -> std::io::Result<CdevPin> {
            let handle = chip
                .get_line(line)
                .and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, SIGNAL_CONSUMER))
                .map_err(|e| gpio_error(&wiring.chip, format!("line {line}: {e}")))?;
            CdevPin::new(handle).map_err(|e| gpio_error(&wiring.chip, format!("line {line}: {e}")))
        };
        let buzzer = request(wiring.buzzer_line)?;
        let light = wiring.light_line.map(&mut request).transpose()?;
        Ok(GpioSignals { buzzer, light })
    }
}

fn gpio_error(chip: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("GPIO {}: {e}", chip.display()))
}

fn set_pin(pin: &mut CdevPin, on: bool) -> std::io::Result<()> {
    let result = if on { pin.set_high() } else { pin.set_low() };
    result.map_err(|e| std::io::Error::other(format!("GPIO write: {e:?}")))
}

impl SignalLines for GpioSignals {
    fn set(&mut self, levels: Levels) -> std::io::Result<()> {
        set_pin(&mut self.buzzer, levels.buzzer)?;
        match &mut self.light {
            Some(light) => set_pin(light, levels.light),
            None => Ok(()),
        }
    }
}

/// A display with the buzzer and light next to it: the screens and beeps go to the display as
/// before, and the beeps also play on the lines, one level change per [`DeviceDisplay::poll`].
pub struct Signalling<D: DeviceDisplay, L: SignalLines> {
    display: D,
    player: PatternPlayer,
    lines: L,
}

impl<D: DeviceDisplay, L: SignalLines> Signalling<D, L> {
    pub fn new(display: D, lines: L) -> Signalling<D, L> {
        Signalling {
            display,
            player: PatternPlayer::new(),
            lines,
        }
    }

    pub fn lines(&self) -> &L {
        &self.lines
    }
}

impl<D: DeviceDisplay, L: SignalLines> DeviceDisplay for Signalling<D, L> {
    fn show(&mut self, displays: &Displays) -> std::io::Result<()> {
        self.display.show(displays)
    }

    fn beep(&mut self, beep: Beep) -> std::io::Result<()> {
        self.player.handle_beep(beep);
        self.display.beep(beep)
    }

    fn poll(&mut self, now_mono_ms: u64) -> std::io::Result<()> {
        if let Some(levels) = self.player.poll_levels(now_mono_ms) {
            self.lines.set(levels)?;
        }
        self.display.poll(now_mono_ms)
    }

    fn next_change_ms(&self, now_mono_ms: u64) -> Option<u64> {
        let mine = self.player.next_change_ms(now_mono_ms);
        match (mine, self.display.next_change_ms(now_mono_ms)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The levels the player hands out polled every millisecond for `ms`, with when they came.
    fn play(beep: Beep, ms: u64) -> Vec<(u64, Levels)> {
        let mut player = PatternPlayer::new();
        player.handle_beep(beep);
        (1_000..1_000 + ms)
            .filter_map(|t| player.poll_levels(t).map(|l| (t - 1_000, l)))
            .collect()
    }

    fn buzzes(changes: &[(u64, Levels)]) -> Vec<u64> {
        let mut starts = Vec::new();
        let mut on_since = None;
        for (t, l) in changes {
            match (l.buzzer, on_since) {
                (true, None) => on_since = Some(*t),
                (false, Some(s)) => {
                    starts.push(t - s);
                    on_since = None;
                }
                _ => {}
            }
        }
        starts
    }

    #[test]
    fn success_error_and_attention_sound_different() {
        assert_eq!(buzzes(&play(Beep::Success, 3_000)), vec![SHORT_BEEP_MS]);
        assert_eq!(buzzes(&play(Beep::Error, 3_000)), vec![SHORT_BEEP_MS; 3]);
        assert_eq!(buzzes(&play(Beep::Attention, 3_000)), vec![LONG_BEEP_MS; 2]);
    }

    #[test]
    fn every_pattern_ends_with_both_lines_off() {
        for beep in [Beep::Success, Beep::Error, Beep::Attention] {
            let changes = play(beep, 5_000);
            assert_eq!(changes.last().map(|c| c.1), Some(OFF), "{beep:?}");
        }
    }

    #[test]
    fn the_player_says_when_to_poll_next_and_never_asks_to_wait_for_nothing() {
        let mut player = PatternPlayer::new();
        assert_eq!(player.next_change_ms(0), None);
        player.handle_beep(Beep::Success);
        assert_eq!(player.next_change_ms(50), Some(50));
        assert_eq!(player.poll_levels(50), Some(BOTH));
        assert_eq!(player.next_change_ms(60), Some(50 + SHORT_BEEP_MS));
        // A late poll (the loop was busy) skips straight to where the pattern is.
        assert_eq!(player.poll_levels(50 + SUCCESS_LIGHT_MS + 500), Some(OFF));
        assert_eq!(player.next_change_ms(0), None);
    }

    #[test]
    fn a_new_beep_replaces_the_one_playing() {
        let mut player = PatternPlayer::new();
        player.handle_beep(Beep::Attention);
        player.poll_levels(0);
        player.handle_beep(Beep::Success);
        assert_eq!(player.poll_levels(10), None, "still both on");
        assert_eq!(player.poll_levels(10 + SHORT_BEEP_MS), Some(LIGHT));
    }

    #[derive(Default)]
    struct Recorded(Vec<Levels>);

    impl SignalLines for Recorded {
        fn set(&mut self, levels: Levels) -> std::io::Result<()> {
            self.0.push(levels);
            Ok(())
        }
    }

    #[test]
    fn signalling_writes_the_lines_only_when_polled_and_passes_beeps_on() {
        let text = super::super::LineDisplay::new(Vec::new());
        let mut signalling = Signalling::new(text, Recorded::default());
        signalling.beep(Beep::Error).unwrap();
        assert!(
            signalling.lines().0.is_empty(),
            "beep() itself never blocks on a line"
        );
        signalling.poll(0).unwrap();
        signalling.poll(SHORT_BEEP_MS).unwrap();
        assert_eq!(signalling.lines().0, vec![BOTH, OFF]);
        assert_eq!(signalling.next_change_ms(150), Some(SHORT_BEEP_MS + GAP_MS));
    }
}
