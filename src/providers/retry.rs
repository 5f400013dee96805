//! Retries with exponential backoff and jitter, shared by every client.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::ProviderError;
use super::limiter::AdaptiveLimiter;

/// When and how often a failed request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (6).
    pub max_attempts: u32,
    /// The first backoff (500 ms); it doubles on each retry.
    pub base: Duration,
    /// The longest wait between attempts, `Retry-After` included (30 s).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): the
    /// provider's `retry_after` when given (capped at `max`), else
    /// `base · 2^(attempt-1)` capped at `max`, with ±25% jitter.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max);
        }
        let exp = attempt.saturating_sub(1).min(20);
        let backoff = self.base.saturating_mul(1 << exp).min(self.max);
        // jitter factor in [0.75, 1.25)
        let factor = 0.75 + 0.5 * random_unit();
        backoff.mul_f64(factor).min(self.max)
    }
}

/// A pseudo-random number in [0, 1): good enough for jitter.
fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A pseudo-random 64-bit number (splitmix64 over the clock and a counter):
/// for jitter and generated ids, not for secrets.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's
/// attempts run out. Each attempt holds a permit of `limiter`, which learns
/// of successes and overloads.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    limiter: Option<&AdaptiveLimiter>,
    mut attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let attempts = policy.max_attempts.max(1);
    let mut number = 1;
    loop {
        let permit = match limiter {
            Some(limiter) => Some(limiter.acquire().await),
            None => None,
        };
        let result = attempt(number).await;
        if let Some(permit) = &permit {
            match &result {
                Ok(_) => permit.success(),
                Err(e) if e.is_overload() => permit.overloaded(),
                Err(_) => {}
            }
        }
        drop(permit);
        match result {
            Ok(value) => return Ok(value),
            Err(e) if !e.is_retryable() || number >= attempts => return Err(e),
            Err(e) => {
                tokio::time::sleep(policy.delay(number, e.retry_after())).await;
                number += 1;
            }
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`). A date in the past means no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let (_, rest) = value.split_once(", ")?;
    let mut fields = rest.split_ascii_whitespace();
    let day: u64 = fields.next()?.parse().ok()?;
    let month = fields.next()?;
    let year: i64 = fields.next()?.parse().ok()?;
    let time = fields.next()?;
    if fields.next()? != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let d1 = p.delay(1, None);
            assert!(
                d1 >= Duration::from_millis(375) && d1 <= Duration::from_millis(625),
                "{d1:?}"
            );
            let d3 = p.delay(3, None);
            assert!(
                d3 >= Duration::from_millis(1500) && d3 <= Duration::from_millis(2500),
                "{d3:?}"
            );
            assert!(p.delay(30, None) <= p.max);
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(300))), p.max);
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        assert_eq!(parse_retry_after("12", now), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn retries_only_retryable_errors() {
        let policy = RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let mut calls = 0;
        let result: Result<(), _> = with_retries(&policy, None, |_| {
            calls += 1;
            async { Err(ProviderError::stream("cut")) }
        })
        .await;
        assert_eq!(result.map_err(|e| e.kind()), Err("stream"));
        assert_eq!(calls, 4);
        let mut calls = 0;
        let result: Result<(), _> = with_retries(&policy, None, |_| {
            calls += 1;
            async {
                Err(ProviderError::Auth {
                    status: Some(401),
                    message: "no".into(),
                })
            }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
