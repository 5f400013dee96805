//! Retry delays: exponential backoff with jitter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The delay before attempt `next_attempt` (2 for the first retry):
/// `base × 2^(next_attempt − 2)`, capped at `max`, then scaled by a random
/// factor in [0.75, 1.25) so that agents failing together do not retry in lockstep.
pub fn backoff(base: Duration, max: Duration, next_attempt: u32) -> Duration {
    let exponent = next_attempt.saturating_sub(2).min(30);
    let raw = base.saturating_mul(1u32 << exponent).min(max);
    raw.mul_f64(0.75 + jitter_fraction() * 0.5)
}

/// A number in [0, 1) from the clock's nanoseconds mixed with a counter (no crate needed for this).
fn jitter_fraction() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    // splitmix64
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for (attempt, nominal) in [
            (2u32, 100u64),
            (3, 200),
            (4, 400),
            (5, 800),
            (6, 1000),
            (40, 1000),
        ] {
            let d = backoff(base, max, attempt).as_secs_f64() * 1000.0;
            let n = nominal as f64;
            assert!(
                d >= n * 0.75 - 1e-6 && d < n * 1.25 + 1e-6,
                "attempt {attempt}: {d}ms vs {n}ms"
            );
        }
    }

    #[test]
    fn jitter_varies() {
        let samples: Vec<Duration> = (0..20)
            .map(|_| backoff(Duration::from_secs(1), Duration::from_secs(10), 2))
            .collect();
        assert!(samples.iter().any(|s| *s != samples[0]));
    }
}
