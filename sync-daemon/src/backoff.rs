//! Capped exponential backoff with jitter for reconnecting to the broker and to the till, so a
//! campus full of tills does not hammer a restarted broker in lockstep. The random source is a
//! small seeded generator (splitmix64): tests can pass a seed and get the same delays; the
//! daemon seeds it from the clock and its process id.

use std::time::Duration;

/// Delays for one kind of connection: `base_ms` after the first failure, doubling up to
/// `cap_ms`; each delay is drawn uniformly from its upper half ("equal jitter"), so it is never
/// zero and never above the cap.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    failures: u32,
    rng: SplitMix64,
}

/// The exponent past which doubling stops mattering (2^20 × any sane base exceeds every cap).
const MAX_BACKOFF_DOUBLINGS: u32 = 20;

impl Backoff {
    pub fn new(base_ms: u64, cap_ms: u64, seed: u64) -> Backoff {
        Backoff {
            base_ms: base_ms.max(1),
            cap_ms: cap_ms.max(base_ms.max(1)),
            failures: 0,
            rng: SplitMix64(seed),
        }
    }

    /// The delay before the next attempt after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let doublings = self.failures.min(MAX_BACKOFF_DOUBLINGS);
        self.failures = self.failures.saturating_add(1);
        let ceiling_ms = self
            .base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.cap_ms);
        let half_ms = ceiling_ms / 2;
        let jitter_ms = self.rng.next() % (ceiling_ms - half_ms + 1);
        Duration::from_millis(half_ms + jitter_ms)
    }

    /// A connection succeeded: the next failure starts again from `base_ms`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough for jitter.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A seed from the wall clock and the process id, for a daemon started without `--seed`.
pub fn time_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::new(100, 1_000, 7);
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let delay = backoff.next_delay().as_millis() as u64;
            ceilings.push(delay);
        }
        let expected_ceilings = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (delay, ceiling) in ceilings.iter().zip(expected_ceilings) {
            assert!(
                (ceiling / 2..=ceiling).contains(delay),
                "{delay} ms outside [{}, {ceiling}]",
                ceiling / 2
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn the_same_seed_gives_the_same_delays_and_different_seeds_differ() {
        let run = |seed| {
            let mut backoff = Backoff::new(100, 60_000, seed);
            (0..10).map(|_| backoff.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
