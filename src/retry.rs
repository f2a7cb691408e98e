//! When to try a request again, and how long to wait first.

use std::time::{Duration, SystemTime};

/// The retry policy: how many attempts, and how long to wait between them (exponential backoff
/// with full jitter, honouring `Retry-After` up to a cap).
///
/// *Which* failures are retried is one rule for every operation, the decision table in the
/// README: a request is sent again after a failure that a later attempt may not meet (no
/// connection, no answer, `408`, `429`, `500`, `502`, `503`, `504`) only when nothing was done
/// (no connection, `408`, `429`) or doing it twice is the same as once (GET, PUT, DELETE). A
/// create that may have reached the server is never sent twice. Every wait fits in the
/// operation's time budget, or is not waited.
///
/// ```
/// use std::time::Duration;
/// let policy = comm100::RetryPolicy::default().max_attempts(5).initial_backoff(Duration::from_millis(50));
/// let off = comm100::RetryPolicy::disabled();
/// # let _ = (policy, off);
/// ```
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// How many attempts in all, the first included (3 by default; at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff ceiling of the first retry; it doubles on each retry (100 ms by default).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The largest backoff ceiling (5 s by default).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The longest `Retry-After` that is waited (30 s by default). A response that asks for a
    /// longer wait is not retried: it goes back to the caller at once, and
    /// [`ApiErrorExt::retry_after`](crate::ApiErrorExt::retry_after) gives the wait it asked for.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// The wait before retry number `retry` (1 for the first retry): the server's `Retry-After`
    /// when it sent one, or `None` (no retry) when that is longer than the cap; otherwise a
    /// uniformly random time up to the backoff ceiling.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if let Some(wait) = retry_after {
            return (wait <= self.max_retry_after).then_some(wait);
        }
        let ceiling = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff);
        Some(ceiling.mul_f64(fastrand::f64()))
    }
}

/// The wait a response's `Retry-After` header asks for, if it has a readable one.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?)
}

/// `Retry-After` as seconds or as an HTTP date. Seconds too many for a `u64` are `u64::MAX`
/// seconds: longer than any cap, so not waited, where reading them as absent would retry soon.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let at = SystemTime::now() + Duration::from_secs(120);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(at)).unwrap();
        assert!(
            parsed > Duration::from_secs(100) && parsed <= Duration::from_secs(120),
            "{parsed:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("+5"), None);
        // Digits past u64::MAX mean longer than any cap, not absent.
        let max = Some(Duration::from_secs(u64::MAX));
        assert_eq!(parse_retry_after("18446744073709551616"), max);
        assert_eq!(parse_retry_after(&"9".repeat(100)), max);
        assert_eq!(
            RetryPolicy::default().delay(1, parse_retry_after("18446744073709551616")),
            None
        );
    }

    #[test]
    fn backoff_has_full_jitter_under_a_doubling_ceiling() {
        let p = RetryPolicy::default()
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(350));
        for _ in 0..200 {
            assert!(p.delay(1, None).unwrap() <= Duration::from_millis(100));
            assert!(p.delay(2, None).unwrap() <= Duration::from_millis(200));
            assert!(p.delay(5, None).unwrap() <= Duration::from_millis(350));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| p.delay(3, None)).collect();
        assert!(spread.len() > 10, "delays are random, not fixed");
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), None);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
    }
}
