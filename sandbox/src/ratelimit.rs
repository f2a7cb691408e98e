//! The token buckets of the rate-limit mode ([`crate::RateLimit`]), one per client address, on
//! the sandbox's clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::RateLimit;

/// How many buckets are kept before the full ones (which are as good as none) are forgotten.
const KEPT: usize = 1024;

/// One address's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the tokens were last counted, in milliseconds on the sandbox's clock, less the time
    /// already spent towards the next token.
    at_ms: i64,
}

/// The buckets of the rate-limit mode.
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    limit: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
}

impl Buckets {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: HashMap::new(),
        }
    }

    /// The milliseconds one token takes, at least 1 unless the refill is immediate (`None`).
    fn every_ms(&self) -> Option<i64> {
        let ms = i64::try_from(self.limit.every.as_millis()).unwrap_or(i64::MAX);
        (!self.limit.every.is_zero()).then_some(ms.max(1))
    }

    /// The bucket counted up to `now_ms`: the tokens that came back since, up to the size. A
    /// clock moved back gives nothing back.
    fn refilled(&self, bucket: Bucket, now_ms: i64, every_ms: i64) -> Bucket {
        let elapsed = now_ms.saturating_sub(bucket.at_ms).max(0);
        let came = elapsed / every_ms;
        let tokens = u32::try_from(came)
            .unwrap_or(u32::MAX)
            .saturating_add(bucket.tokens)
            .min(self.limit.size);
        let at_ms = if tokens == self.limit.size {
            now_ms
        } else {
            bucket.at_ms.saturating_add(came.saturating_mul(every_ms))
        };
        Bucket { tokens, at_ms }
    }

    /// Takes a token for `addr` at `now_ms`, or says how long until the next one comes.
    pub(crate) fn take(&mut self, addr: IpAddr, now_ms: i64) -> Result<(), Duration> {
        let Some(every_ms) = self.every_ms() else {
            return Ok(());
        };
        if self.buckets.len() >= KEPT && !self.buckets.contains_key(&addr) {
            let (limit, buckets) = (self.limit, std::mem::take(&mut self.buckets));
            self.buckets = buckets
                .into_iter()
                .filter(|(_, b)| self.refilled(*b, now_ms, every_ms).tokens < limit.size)
                .collect();
        }
        let full = Bucket {
            tokens: self.limit.size,
            at_ms: now_ms,
        };
        let bucket = self.buckets.get(&addr).copied().unwrap_or(full);
        let mut bucket = self.refilled(bucket, now_ms, every_ms);
        let taken = if bucket.tokens > 0 {
            bucket.tokens -= 1;
            Ok(())
        } else {
            let next = bucket.at_ms.saturating_add(every_ms).saturating_sub(now_ms);
            Err(Duration::from_millis(u64::try_from(next).unwrap_or(0)))
        };
        self.buckets.insert(addr, bucket);
        taken
    }
}

/// A `Retry-After` in whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn a_burst_empties_the_bucket_which_refills_one_token_at_a_time() {
        let mut buckets = Buckets::new(RateLimit::new(2, Duration::from_secs(10)));
        assert_eq!(buckets.take(A, 0), Ok(()));
        assert_eq!(buckets.take(A, 1), Ok(()));
        assert_eq!(buckets.take(A, 2_500), Err(Duration::from_millis(7_500)));
        assert_eq!(buckets.take(B, 2_500), Ok(()), "a bucket per address");
        assert_eq!(buckets.take(A, 10_000), Ok(()));
        assert_eq!(buckets.take(A, 10_001), Err(Duration::from_millis(9_999)));
        // Long after, full again, and no fuller.
        assert_eq!(buckets.take(A, 1_000_000), Ok(()));
        assert_eq!(buckets.take(A, 1_000_000), Ok(()));
        assert!(buckets.take(A, 1_000_000).is_err());
    }

    #[test]
    fn extremes_saturate() {
        let mut buckets = Buckets::new(RateLimit::new(1, Duration::MAX));
        assert_eq!(buckets.take(A, i64::MIN), Ok(()));
        assert!(buckets.take(A, i64::MIN).is_err());
        assert_eq!(
            buckets.take(A, i64::MAX),
            Ok(()),
            "no overflow across the clock"
        );
        let mut buckets = Buckets::new(RateLimit::new(0, Duration::from_millis(1)));
        assert_eq!(buckets.take(A, 0), Err(Duration::from_millis(1)));
        let mut buckets = Buckets::new(RateLimit::new(0, Duration::ZERO));
        assert_eq!(
            buckets.take(A, 0),
            Ok(()),
            "an immediate refill limits nothing"
        );
        assert_eq!(retry_after_secs(Duration::from_millis(7_500)), 8);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
    }

    #[test]
    fn full_buckets_are_forgotten_when_there_are_many() {
        let mut buckets = Buckets::new(RateLimit::new(1, Duration::from_millis(1)));
        for i in 0..=KEPT {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(i).unwrap()));
            buckets.take(addr, 0).unwrap();
        }
        assert_eq!(buckets.buckets.len(), KEPT + 1, "none full yet");
        buckets.take(A, 10).unwrap();
        assert_eq!(buckets.buckets.len(), 1);
    }
}
