//! Working within Comm100's limits: a request budget that any number of clients can share
//! ([`RateBudget`]), and a breaker that stops sending after the daily limit
//! ([`DailyLimitBreaker`]).
//!
//! # Concurrency contract
//! Both are cheap to clone; clones share their state, behind a `std` mutex that is never held
//! across an `.await`. A caller waiting for the budget holds a reservation, so waiters are
//! served in the order they asked; a caller that gives up (its future dropped) keeps its
//! reservation spent, which errs on the side of sending less.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// How long a pause lasts after a `429` that did not say (`Retry-After`), unless the bucket's
/// own refill is longer.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// A token bucket that paces requests, shared by every client given a clone of it through
/// [`Comm100Builder::rate_budget`](crate::Comm100Builder::rate_budget): for many sites driven
/// from one process behind one IP, one budget for all of them.
///
/// Every request counts, logins and retries included. A request that would exceed the budget
/// waits for its token, within the operation's time budget; when the wait does not fit, the
/// operation fails at once, sending nothing, with
/// [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) and the wait. A `429` from the
/// server empties the bucket and pauses every client that shares it for the `Retry-After`.
///
/// ```
/// use std::time::Duration;
/// // 300 requests per 5 minutes, as Comm100's later platform documents per IP.
/// let budget = comm100::RateBudget::comm100_published();
/// // Or your own: a burst of 10, then one request every 200 ms.
/// let custom = comm100::RateBudget::new(10, Duration::from_millis(200));
/// # let _ = (budget, custom);
/// ```
#[derive(Clone)]
pub struct RateBudget {
    shared: Arc<Shared>,
}

struct Shared {
    size: f64,
    every: Duration,
    state: Mutex<Bucket>,
}

struct Bucket {
    /// Tokens in the bucket; below zero, tokens already promised to waiting callers.
    tokens: f64,
    updated: Instant,
    /// Nothing is sent before this, after a `429`.
    paused_until: Option<Instant>,
    waiting: usize,
}

/// What a [`RateBudget`] holds now, for a dashboard.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BudgetSnapshot {
    /// Tokens left now (whole requests that may go at once).
    pub tokens: u32,
    /// Callers waiting for a token.
    pub waiting: usize,
    /// How long every caller waits because the server answered `429`, if it did lately.
    pub paused_for: Option<Duration>,
}

impl std::fmt::Debug for RateBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateBudget")
            .field("size", &self.shared.size)
            .field("every", &self.shared.every)
            .field("now", &self.snapshot())
            .finish()
    }
}

impl RateBudget {
    /// A bucket of `size` tokens (the longest burst), one coming back every `every`. It starts
    /// full. A `size` of zero is taken as one.
    pub fn new(size: u32, every: Duration) -> Self {
        let size = f64::from(size.max(1));
        Self {
            shared: Arc::new(Shared {
                size,
                every,
                state: Mutex::new(Bucket {
                    tokens: size,
                    updated: Instant::now(),
                    paused_until: None,
                    waiting: 0,
                }),
            }),
        }
    }

    /// Comm100's published figure, 300 calls per 5 minutes per IP (its later platform; v3
    /// documents none): a burst of 30, then one call every 10/9 s, so that no 5-minute window
    /// ever holds more than 30 + 270 = 300.
    pub fn comm100_published() -> Self {
        Self::new(30, Duration::from_millis(1111))
    }

    /// Tokens, waiters and any pause, now.
    pub fn snapshot(&self) -> BudgetSnapshot {
        let now = Instant::now();
        let mut bucket = self.shared.lock();
        self.shared.refill(&mut bucket, now);
        BudgetSnapshot {
            tokens: bucket.tokens.max(0.0) as u32,
            waiting: bucket.waiting,
            paused_for: bucket
                .paused_until
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero()),
        }
    }

    /// Takes a token, waiting for it when it comes before `deadline`. `Err` is the wait it
    /// would take, when that does not fit: nothing was taken.
    pub(crate) async fn acquire(&self, deadline: Instant) -> Result<(), Duration> {
        let now = Instant::now();
        let wait = {
            let mut bucket = self.shared.lock();
            self.shared.refill(&mut bucket, now);
            bucket.tokens -= 1.0;
            let owed = (-bucket.tokens).max(0.0);
            let refill_wait = self.shared.every.mul_f64(owed);
            let pause_wait = bucket
                .paused_until
                .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
            let wait = refill_wait.max(pause_wait);
            if wait.is_zero() {
                return Ok(());
            }
            if now.checked_add(wait).is_none_or(|ready| ready >= deadline) {
                bucket.tokens += 1.0;
                return Err(wait);
            }
            bucket.waiting += 1;
            wait
        };
        let _waiter = Waiter(&self.shared);
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            "the request budget is spent; waiting for a token"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The server answered `429`: empty the bucket, and pause every caller for `retry_after`
    /// (or a moment).
    pub(crate) fn throttled(&self, retry_after: Option<Duration>) {
        let now = Instant::now();
        let mut bucket = self.shared.lock();
        self.shared.refill(&mut bucket, now);
        bucket.tokens = bucket.tokens.min(0.0);
        let pause = retry_after.unwrap_or(DEFAULT_PAUSE.max(self.shared.every));
        if let Some(until) = now.checked_add(pause) {
            bucket.paused_until = Some(bucket.paused_until.map_or(until, |p| p.max(until)));
        }
        tracing::info!(
            pause_ms = pause.as_millis() as u64,
            "the server answered 429: every client sharing the request budget pauses"
        );
    }
}

/// Counts a waiter down when its wait ends or is cancelled.
struct Waiter<'a>(&'a Shared);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Bucket> {
        // Every write leaves the bucket consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated);
        bucket.updated = now;
        let added = match self.every.is_zero() {
            true => self.size,
            false => elapsed.as_secs_f64() / self.every.as_secs_f64(),
        };
        bucket.tokens = (bucket.tokens + added).min(self.size);
    }
}

/// Stops sending after Comm100's daily limit: after a `403` that says the day's requests are
/// used up, calls fail at once with [`ErrorKind::DailyLimit`](crate::ErrorKind::DailyLimit),
/// sending nothing, until the limit resets (Comm100 documents no time: by default the next UTC
/// midnight) or a probe succeeds: one call at most every [`probe_every`](Self::probe_every)
/// goes through to find out. A `403` for a missing permission does not trip it.
///
/// On by default for every client (clones share it); set your own with
/// [`Comm100Builder::daily_limit_breaker`](crate::Comm100Builder::daily_limit_breaker).
#[derive(Clone, Debug)]
pub struct DailyLimitBreaker {
    reset_at: Duration,
    probe_every: Duration,
    /// Whether `state` holds a trip: every call reads this, and only a tripped breaker locks.
    tripped: Arc<AtomicBool>,
    state: Arc<Mutex<Option<Tripped>>>,
}

#[derive(Debug, Clone, Copy)]
struct Tripped {
    until: SystemTime,
    last_probe: Instant,
}

/// What the breaker lets a request do.
pub(crate) enum Gate {
    /// Send it.
    Open,
    /// Send it: it is the probe.
    Probe,
    /// Send nothing; the limit lasts until then.
    Closed(SystemTime),
}

impl Default for DailyLimitBreaker {
    fn default() -> Self {
        Self::new()
    }
}

impl DailyLimitBreaker {
    /// Resets at UTC midnight, probes at most every 5 minutes.
    pub fn new() -> Self {
        Self {
            reset_at: Duration::ZERO,
            probe_every: Duration::from_secs(5 * 60),
            tripped: Arc::new(AtomicBool::new(false)),
            state: Arc::new(Mutex::new(None)),
        }
    }

    /// The time of day, in UTC, at which the daily limit resets (midnight by default).
    pub fn reset_at_utc(mut self, since_midnight: Duration) -> Self {
        self.reset_at = Duration::from_secs(since_midnight.as_secs() % 86_400);
        self
    }

    /// How often one call goes through to find out whether the limit has lifted (5 minutes by
    /// default).
    pub fn probe_every(mut self, every: Duration) -> Self {
        self.probe_every = every;
        self
    }

    /// When the limit lasts until, while it is tripped.
    pub fn tripped_until(&self) -> Option<SystemTime> {
        self.lock().map(|t| t.until)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Tripped>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn gate(&self) -> Gate {
        if !self.tripped.load(Ordering::Acquire) {
            return Gate::Open;
        }
        let mut state = self.lock();
        let Some(tripped) = state.as_mut() else {
            return Gate::Open;
        };
        if SystemTime::now() >= tripped.until {
            *state = None;
            self.tripped.store(false, Ordering::Release);
            return Gate::Open;
        }
        let now = Instant::now();
        if now.saturating_duration_since(tripped.last_probe) >= self.probe_every {
            tripped.last_probe = now;
            return Gate::Probe;
        }
        Gate::Closed(tripped.until)
    }

    /// The server said the day's requests are used up.
    pub(crate) fn trip(&self) {
        let until = self.next_reset(SystemTime::now());
        tracing::warn!(
            until_unix_s = until.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "the daily request limit is reached: calls fail at once until it resets or a probe succeeds"
        );
        *self.lock() = Some(Tripped {
            until,
            last_probe: Instant::now(),
        });
        self.tripped.store(true, Ordering::Release);
    }

    /// A request got an answer other than the daily limit.
    pub(crate) fn close(&self) {
        if !self.tripped.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        self.tripped.store(false, Ordering::Release);
        if state.take().is_some() {
            tracing::info!("the daily request limit has lifted");
        }
    }

    fn next_reset(&self, now: SystemTime) -> SystemTime {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let day = Duration::from_secs(since_epoch.as_secs() / 86_400 * 86_400);
        let today = UNIX_EPOCH + day + self.reset_at;
        match today > now {
            true => today,
            false => today + Duration::from_secs(86_400),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_paces_waits_in_order_and_refuses_what_does_not_fit() {
        let budget = RateBudget::new(2, Duration::from_secs(1));
        let far = Instant::now() + Duration::from_secs(60);
        let start = Instant::now();
        budget.acquire(far).await.unwrap();
        budget.acquire(far).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst goes at once");
        budget.acquire(far).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // A wait past the deadline is refused at once, and takes nothing.
        let near = Instant::now() + Duration::from_millis(500);
        assert_eq!(budget.acquire(near).await, Err(Duration::from_secs(1)));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        budget.acquire(far).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_holder() {
        let budget = RateBudget::new(5, Duration::from_millis(100));
        let other = budget.clone();
        budget.throttled(Some(Duration::from_secs(3)));
        assert_eq!(other.snapshot().paused_for, Some(Duration::from_secs(3)));
        assert_eq!(other.snapshot().tokens, 0);
        let start = Instant::now();
        other
            .acquire(Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_refuses_then_probes_once_per_interval() {
        let breaker = DailyLimitBreaker::new().probe_every(Duration::from_secs(300));
        assert!(matches!(breaker.gate(), Gate::Open));
        breaker.trip();
        assert!(matches!(breaker.gate(), Gate::Closed(_)));
        tokio::time::advance(Duration::from_secs(300)).await;
        assert!(matches!(breaker.gate(), Gate::Probe));
        assert!(matches!(breaker.gate(), Gate::Closed(_)), "one probe");
        breaker.close();
        assert!(matches!(breaker.gate(), Gate::Open));
        let now = SystemTime::now();
        let reset = breaker.next_reset(now);
        assert!(reset > now && reset <= now + Duration::from_secs(86_400));
        assert_eq!(
            reset.duration_since(UNIX_EPOCH).unwrap().as_secs() % 86_400,
            0
        );
    }
}
