//! One capped exponential back-off for every reconnect and re-open of the system: the sync
//! daemon's broker and till connections (with jitter, so a campus full of tills does not hammer
//! a restarted broker in lockstep) and the till's card-reader re-open (without: one reader has
//! no herd to spread). Sans-IO: it returns delays, the caller sleeps or schedules; time is never
//! read here. The random source is a small seeded generator (splitmix64): a seed gives the same
//! delays every run.

use std::time::Duration;

/// The exponent past which doubling stops mattering (2^20 × any sane base exceeds every cap).
pub const MAX_BACKOFF_DOUBLINGS: u32 = 20;

/// Delays for one kind of connection: `base_ms` after the first failure, doubling up to
/// `cap_ms`. With jitter each delay is drawn uniformly from the upper half of that ceiling
/// ("equal jitter"): never zero, never above the cap; without, it is the ceiling itself.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    failures: u32,
    /// `None`: no jitter, the delays are exactly base, 2 × base, … up to the cap.
    rng: Option<SplitMix64>,
}

impl Backoff {
    /// A back-off with equal jitter drawn from `seed`.
    pub fn new(base_ms: u64, cap_ms: u64, seed: u64) -> Backoff {
        Backoff::build(base_ms, cap_ms, Some(SplitMix64(seed)))
    }

    /// A back-off without jitter: `base_ms`, doubling, up to `cap_ms`, the same every time.
    pub fn without_jitter(base_ms: u64, cap_ms: u64) -> Backoff {
        Backoff::build(base_ms, cap_ms, None)
    }

    fn build(base_ms: u64, cap_ms: u64, rng: Option<SplitMix64>) -> Backoff {
        let base_ms = base_ms.max(1);
        Backoff {
            base_ms,
            cap_ms: cap_ms.max(base_ms),
            failures: 0,
            rng,
        }
    }

    /// The delay in milliseconds before the next attempt, counting one more failure.
    pub fn next_delay_ms(&mut self) -> u64 {
        let doublings = self.failures.min(MAX_BACKOFF_DOUBLINGS);
        self.failures = self.failures.saturating_add(1);
        let ceiling_ms = self
            .base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.cap_ms);
        match &mut self.rng {
            None => ceiling_ms,
            Some(rng) => {
                let half_ms = ceiling_ms / 2;
                half_ms + rng.next() % (ceiling_ms - half_ms + 1)
            }
        }
    }

    /// [`Backoff::next_delay_ms`] as a [`Duration`].
    pub fn next_delay(&mut self) -> Duration {
        Duration::from_millis(self.next_delay_ms())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::new(100, 1_000, 7);
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay_ms()).collect();
        let expected_ceilings = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (delay, ceiling) in delays.iter().zip(expected_ceilings) {
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

    #[test]
    fn without_jitter_the_delays_are_exactly_doubling_up_to_the_cap() {
        let mut backoff = Backoff::without_jitter(1_000, 30_000);
        let delays: Vec<u64> = (0..7).map(|_| backoff.next_delay_ms()).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(backoff.failures(), 7);
        backoff.reset();
        assert_eq!(backoff.next_delay_ms(), 1_000);
    }

    #[test]
    fn endless_failures_stay_at_the_cap_without_overflow() {
        let mut backoff = Backoff::new(u64::MAX, u64::MAX, 3);
        for _ in 0..100 {
            let delay = backoff.next_delay_ms();
            assert!(delay >= u64::MAX / 2, "{delay}");
        }
        let mut zero = Backoff::without_jitter(0, 0);
        assert_eq!(zero.next_delay_ms(), 1, "a zero base is one millisecond");
    }
}
