//! A seeded random stream for tests that draw fault points or chaos
//! actions: the seed comes from `STACKD_E2E_SEED` when set, so a failing
//! run replays exactly.

use std::time::Duration;

/// The seed a test runs with: `STACKD_E2E_SEED` when it parses, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("STACKD_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: small, fast and the same on every platform, which is all a
/// replayable test needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        unit
    }

    /// Uniform in [0, n); 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // The modulo bias is far below anything a test could notice.
        #[allow(clippy::cast_possible_truncation)]
        let index = (self.next_u64() % n as u64) as usize;
        index
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [low, high).
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        low + high.saturating_sub(low).mul_f64(self.unit())
    }
}
