//! The real clock for the front ends that run on real time (the terminal simulator and the
//! device): wall time for the core and the journal, a monotonic count since start for the
//! keymap's combo timing (which must not jump when the wall clock is set). The core itself never
//! reads a clock; this is the one place the firmware's front ends do.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shared::UnixMillis;

use crate::runtime::Now;

/// Wall and monotonic time since the clock was started.
#[derive(Debug, Clone, Copy)]
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    pub fn start() -> RealClock {
        RealClock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Now {
        Now {
            wall: unix_millis(SystemTime::now()),
            mono_ms: millis_u64(self.start.elapsed()),
        }
    }
}

/// Milliseconds since the Unix epoch (negative before it), saturating.
pub fn unix_millis(at: SystemTime) -> UnixMillis {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => UnixMillis(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
        Err(before) => {
            UnixMillis(i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms))
        }
    }
}

/// A duration in whole milliseconds, saturating.
pub fn millis_u64(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_clock_conversions() {
        assert_eq!(unix_millis(UNIX_EPOCH), UnixMillis(0));
        assert_eq!(
            unix_millis(UNIX_EPOCH + Duration::from_millis(1_234)),
            UnixMillis(1_234)
        );
        assert_eq!(
            unix_millis(UNIX_EPOCH - Duration::from_millis(1_234)),
            UnixMillis(-1_234)
        );
        assert_eq!(millis_u64(Duration::MAX), u64::MAX);
    }

    #[test]
    fn the_monotonic_count_does_not_go_back() {
        let clock = RealClock::start();
        let first = clock.now().mono_ms;
        let second = clock.now().mono_ms;
        assert!(second >= first);
    }
}
