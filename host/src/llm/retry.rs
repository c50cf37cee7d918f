//! When and how long to wait before retrying a provider call.
//!
//! Retried: HTTP 429, 5xx, connection failures and timeouts. Not retried: other 4xx (the
//! request itself is wrong) and malformed replies. The delay is exponential with full jitter,
//! `random(0, base · 2^attempt)` capped at [`MAX_DELAY`], unless the server sent `Retry-After`
//! (seconds or an HTTP date), which is honoured up to [`MAX_RETRY_AFTER`].

use rand::Rng;
use std::time::{Duration, SystemTime};

/// Longest computed backoff.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// Longest `Retry-After` honoured; a server asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(500),
        }
    }
}

/// Whether an HTTP status is worth retrying.
pub fn is_retryable_status(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0 = first retry), given the server's
    /// `Retry-After` header if any.
    pub fn delay(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        if let Some(wait) = retry_after.and_then(parse_retry_after) {
            return wait.min(MAX_RETRY_AFTER);
        }
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(MAX_DELAY);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(61));
        let wait = parse_retry_after(&in_a_minute).unwrap();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(61),
            "{wait:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
        };
        // Full jitter: each delay is uniform in [0, ceiling], the ceiling doubling per attempt
        // up to MAX_DELAY. Of 200 draws, the longest passes half the ceiling (the chance it
        // does not is 2^-200) and none passes the ceiling; the spread shows the jitter.
        for attempt in 0..12 {
            let ceiling = (Duration::from_millis(100) * 2u32.pow(attempt)).min(MAX_DELAY);
            let delays: Vec<Duration> = (0..200).map(|_| policy.delay(attempt, None)).collect();
            let longest = *delays.iter().max().unwrap();
            let shortest = *delays.iter().min().unwrap();
            assert!(
                longest <= ceiling,
                "attempt {attempt}: {longest:?} > {ceiling:?}"
            );
            assert!(
                longest >= ceiling / 2,
                "attempt {attempt}: no backoff ({longest:?})"
            );
            assert!(
                shortest < ceiling / 2,
                "attempt {attempt}: no jitter ({shortest:?})"
            );
        }
        assert_eq!(policy.delay(0, Some("2")), Duration::from_secs(2));
        assert_eq!(policy.delay(0, Some("100000")), MAX_RETRY_AFTER);
        assert!(
            [429, 500, 502, 503, 504, 408]
                .into_iter()
                .all(is_retryable_status)
        );
        assert!(
            ![400, 401, 403, 404, 422]
                .into_iter()
                .any(is_retryable_status)
        );
    }
}
