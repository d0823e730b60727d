//! Per-stack retry delays: exponential, capped, with jitter, reset on
//! success (safety rule 4).
use std::time::Duration;

/// Retry delays for one stack. Each failure doubles the delay from `base`
/// up to `cap`; jitter spreads each delay over ±`JITTER` of its value so
/// stacks that failed together (the engine went away) do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

/// Fraction of a delay that jitter may add or take away.
pub const JITTER: f64 = 0.2;

impl Backoff {
    /// A backoff that starts at `base` and never exceeds `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            failures: 0,
        }
    }

    /// The delay before the next retry, counting one more failure. `unit`
    /// is a uniform draw from [0, 1) that places the jitter; the result is
    /// never above the cap.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let exponent = self.failures.min(32);
        self.failures = self.failures.saturating_add(1);
        let nominal = self
            .base
            .checked_mul(1u32 << exponent.min(31))
            .unwrap_or(self.cap)
            .min(self.cap);
        let spread = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
        nominal.mul_f64(spread).min(self.cap)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures: the next delay is `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The largest delay this backoff gives.
    pub fn cap(&self) -> Duration {
        self.cap
    }
}

/// A small xorshift generator for jitter: no cryptographic quality is
/// needed, only draws that differ between stacks and runs.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator seeded with `seed` (zero is replaced, xorshift needs a bit set).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A generator seeded from the clock.
    pub fn from_clock() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Self::new(nanos ^ u64::from(std::process::id()).rotate_left(32))
    }

    /// A uniform draw from [0, 1).
    pub fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(500);
    const CAP: Duration = Duration::from_secs(30);

    #[test]
    fn without_jitter_the_delay_doubles_until_the_cap() {
        let mut backoff = Backoff::new(BASE, CAP);
        let delays: Vec<u64> = (0..10)
            .map(|_| backoff.next_delay(0.5).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn jitter_stays_within_a_fifth_of_the_delay_and_under_the_cap() {
        let mut jitter = Jitter::new(7);
        for failures in 0..40 {
            let mut backoff = Backoff::new(BASE, CAP);
            for _ in 0..failures {
                backoff.next_delay(0.5);
            }
            let nominal = backoff.clone().next_delay(0.5);
            let delay = backoff.next_delay(jitter.unit());
            assert!(delay <= CAP, "{delay:?}");
            assert!(
                delay >= nominal.mul_f64(1.0 - JITTER),
                "{delay:?} vs {nominal:?}"
            );
            assert!(
                delay <= nominal.mul_f64(1.0 + JITTER),
                "{delay:?} vs {nominal:?}"
            );
        }
    }

    #[test]
    fn jitter_actually_spreads_delays() {
        let mut jitter = Jitter::new(42);
        let delays: std::collections::BTreeSet<u128> = (0..50)
            .map(|_| {
                Backoff::new(BASE, CAP)
                    .next_delay(jitter.unit())
                    .as_micros()
            })
            .collect();
        assert!(delays.len() > 40, "{} distinct delays", delays.len());
    }

    #[test]
    fn reset_starts_again_from_the_base() {
        let mut backoff = Backoff::new(BASE, CAP);
        for _ in 0..5 {
            backoff.next_delay(0.5);
        }
        assert_eq!(backoff.failures(), 5);
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.next_delay(0.5), BASE);
    }

    #[test]
    fn a_thousand_failures_do_not_overflow() {
        let mut backoff = Backoff::new(BASE, CAP);
        for _ in 0..1000 {
            assert!(backoff.next_delay(1.0) <= CAP);
        }
    }

    #[test]
    fn jitter_draws_are_in_the_unit_interval() {
        let mut jitter = Jitter::new(0);
        for _ in 0..10_000 {
            let u = jitter.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
