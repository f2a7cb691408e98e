//! [`TokenCache`]: one token for all of a client's requests, refreshed before it expires.
//!
//! Modelled on smithy-rs's lazy identity cache, with what real servers added to it:
//!
//! * **Lifetimes on the server's clock.** A token is fresh until `lifetime − buffer` after it
//!   arrived (see [`Token`]); the local wall clock is never compared with `exp`.
//! * **One login, one result.** Concurrent callers share a single refresh, which runs in a task
//!   of its own: a caller that is cancelled neither cancels nor restarts it. Every caller
//!   waiting on it gets its result, success or error.
//! * **Waiters leave in turn.** The callers waiting on a refresh leave one at a time, in the
//!   order they came (each hands the turn on at once), not all in one wake-up: a thousand
//!   callers released together would each open a connection; in turn, the later ones find
//!   the earlier ones' connections back in the pool (`cargo xtask storm-ir`: 400–480
//!   connections instead of 1,000).
//! * **Cool-down after a failure.** After a failed login, callers get its error at once, and
//!   nothing is sent, until a cool-down has passed. It doubles with each consecutive failure and
//!   is capped; it is longer after a refusal (a `4xx`: wrong password, locked account), which
//!   repeating cannot fix and may make worse, than after a transport failure, a timeout or a
//!   `5xx`. A `Retry-After` from the token host lengthens it.
//! * **No re-login storms.** A `401` on the current token forces one refresh, shared by every
//!   request that saw it. Forced refreshes are at least [`FORCED_REFRESH_INTERVAL`] apart,
//!   whatever the server did with the token before: a `401` within the interval goes to the
//!   caller. So an endpoint that refuses every token (a missing permission) costs at most one
//!   extra login a minute, however its calls interleave with calls that succeed.
//! * **A valid token is never thrown away.** From `lifetime − buffer` on, the first caller starts
//!   a refresh in the background and every caller keeps getting the current token until the
//!   new one arrives or the current one expires. A refresh that fails, or a cool-down, leaves
//!   the current token in use while it lasts.
//!
//! # Concurrency contract
//! [`TokenCache::get`] may be called from any number of tasks at once. At most one call of
//! [`TokenSource::fetch`] runs at a time, bounded by the login timeout. The state sits behind a
//! `std` mutex that is never held across an `.await`, nor while spawning or dropping anything
//! that takes it (the refresh task's guard takes it when dropped). [`TokenCache::get`] outside a
//! Tokio runtime returns [`Error::NoRuntime`] at once and changes nothing.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Token, TokenSource};
use crate::error::Error;

/// How long before its expiry a token is refreshed, unless set.
pub(crate) const DEFAULT_REFRESH_BUFFER: Duration = Duration::from_secs(60);
/// How long one login may take in all, unless set.
pub(crate) const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A token is used for at least this long after it arrived, whatever its claims say, so that a
/// server issuing tokens with no life left costs at most one login a second, not one per call.
pub(crate) const MIN_TOKEN_USE: Duration = Duration::from_secs(1);
/// The cool-down after a first failed login that was not a refusal; it doubles up to the cap.
pub(crate) const TRANSIENT_COOLDOWN: Duration = Duration::from_secs(1);
/// The cap of the cool-down after failures that were not refusals.
pub(crate) const MAX_TRANSIENT_COOLDOWN: Duration = Duration::from_secs(30);
/// The cool-down after a first refused login (`4xx`); it doubles up to the cap.
pub(crate) const REFUSAL_COOLDOWN: Duration = Duration::from_secs(10);
/// The cap of the cool-down after refusals, and of a `Retry-After` honoured here.
pub(crate) const MAX_REFUSAL_COOLDOWN: Duration = Duration::from_secs(5 * 60);
/// The least time between two refreshes forced by `401`s on fresh tokens.
pub(crate) const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The result every caller waiting on a refresh gets.
type Outcome = Option<Result<Token, Error>>;

/// Caches a token; see the module documentation for the rules.
pub(crate) struct TokenCache {
    shared: Arc<Shared>,
}

struct Shared {
    source: Arc<dyn TokenSource>,
    state: Mutex<State>,
    buffer: Duration,
    timeout: Duration,
    forced_interval: Duration,
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    /// The refresh in flight: every caller that needs a token waits on it.
    inflight: Option<Inflight>,
    /// The last failed login, while its cool-down lasts.
    failure: Option<Failure>,
    /// When a `401` last forced a refresh.
    last_forced: Option<Instant>,
    /// Whether the next refresh is forced by a `401` (for the logs).
    force_next: bool,
}

struct Cached {
    token: Token,
    /// When to start refreshing it; `None`: never, until the server refuses it.
    refresh_at: Option<Instant>,
    /// When it expires; `None`: unknown. Between `refresh_at` and this, it is handed out while
    /// a refresh runs in the background.
    expires_at: Option<Instant>,
}

impl Cached {
    /// Before its refresh time: handed out as it is.
    fn fresh(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }
}

struct Failure {
    error: Error,
    /// Failed logins in a row.
    consecutive: u32,
    retry_at: Instant,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("buffer", &self.shared.buffer)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(source: Arc<dyn TokenSource>, buffer: Duration, timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                source,
                state: Mutex::new(State::default()),
                buffer,
                timeout,
                forced_interval: FORCED_REFRESH_INTERVAL,
            }),
        }
    }

    /// Sets the least time between two forced refreshes. Before the cache is shared.
    pub(crate) fn forced_refresh_interval(mut self, interval: Duration) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.forced_interval = interval;
        }
        self
    }

    /// A fresh token: the cached one, or the result of the refresh in flight, or of a new one.
    /// During a cool-down, the last login's error, at once, unless the current token is still
    /// valid. Outside a Tokio runtime, [`Error::NoRuntime`] at once.
    pub(crate) async fn get(&self) -> Result<Token, Error> {
        let inflight = {
            let mut state = self.shared.lock();
            let now = Instant::now();
            let mut valid = None;
            if let Some(cached) = &state.current {
                if cached.fresh(now) {
                    return Ok(cached.token.clone());
                }
                // In the refresh buffer: still valid until it expires.
                if cached.expires_at.is_some_and(|at| now < at) {
                    valid = Some(cached.token.clone());
                }
            }
            if let Some(inflight) = &state.inflight {
                // A valid token while a refresh runs: use it.
                match valid {
                    Some(token) => return Ok(token),
                    None => inflight.clone(),
                }
            } else {
                if let Some(failure) = &state.failure {
                    if now < failure.retry_at {
                        // A valid token outlives a cool-down; without one, the last error.
                        return valid.ok_or_else(|| failure.error.clone());
                    }
                }
                let start = Shared::prepare_refresh(&mut state)?;
                // The lock is released before spawning: a task that tokio drops at once takes
                // the lock in its guard's `drop`.
                drop(state);
                let rx = start.spawn(&self.shared);
                match valid {
                    // The refresh runs in the background; this caller goes on.
                    Some(token) => return Ok(token),
                    None => rx,
                }
            }
        };
        // The waiters leave one at a time, in the order they came: released together, a
        // thousand callers would each open a connection of their own; released in turn, the
        // first ones' connections are back in the pool for the later ones. (The turn is
        // handed on as soon as it is taken.)
        let Inflight {
            rx: mut outcome,
            turns,
        } = inflight;
        drop(turns.acquire().await);
        // The refresh task records a result even when it panics or is aborted; a closed
        // channel without one can only mean the runtime is going away.
        let result = match outcome.wait_for(Option::is_some).await {
            Ok(result) => result.clone(),
            Err(_) => None,
        };
        result.unwrap_or_else(|| Err(ended_without_result()))
    }

    /// The cached token when it is fresh (before its refresh time): the common case, without
    /// the machinery of [`TokenCache::get`].
    pub(crate) fn fresh(&self) -> Option<Token> {
        let state = self.shared.lock();
        let cached = state.current.as_ref()?;
        cached.fresh(Instant::now()).then(|| cached.token.clone())
    }

    /// Waits until no refresh is in flight (for tests that drive time by hand).
    #[cfg(test)]
    pub(crate) async fn settled(&self) {
        let inflight = self.shared.lock().inflight.clone();
        if let Some(Inflight { mut rx, .. }) = inflight {
            let _ = rx.wait_for(Option::is_some).await;
        }
    }

    /// The server answered `401` to `token`. Returns whether the request is worth sending once
    /// more with a new token: yes when the token has been replaced already, or when the last
    /// forced refresh was at least [`FORCED_REFRESH_INTERVAL`] ago (the token is then dropped,
    /// so that the next [`TokenCache::get`] refreshes); no otherwise.
    pub(crate) fn refused(&self, token: &Token) -> bool {
        let mut state = self.shared.lock();
        let now = Instant::now();
        let Some(cached) = &state.current else {
            return true;
        };
        if !cached.token.same(token) {
            return true;
        }
        let may_force = state
            .last_forced
            .is_none_or(|at| now.duration_since(at) >= self.shared.forced_interval);
        if may_force {
            state.current = None;
            state.last_forced = Some(now);
            state.force_next = true;
        }
        may_force
    }
}

/// A refresh ready to start: the task's guard, built under the lock, spawned after it.
struct Start {
    tx: watch::Sender<Outcome>,
    /// What the caller that starts it waits on, as the other waiters do.
    inflight: Inflight,
    forced: bool,
}

/// A refresh in flight, as its waiters see it.
#[derive(Clone)]
struct Inflight {
    /// Where its result arrives.
    rx: watch::Receiver<Outcome>,
    /// The waiters' turns to leave: no permit until the result is in, then one, which each
    /// waiter takes and hands on to the next, in the order they came.
    turns: Arc<tokio::sync::Semaphore>,
}

impl Start {
    /// Spawns the refresh task; returns what its result will arrive on. Called without the
    /// lock.
    fn spawn(self, shared: &Arc<Shared>) -> Inflight {
        let completion = Completion {
            shared: shared.clone(),
            tx: self.tx,
            turns: self.inflight.turns.clone(),
            forced: self.forced,
            result: None,
        };
        tracing::debug!(forced = self.forced, "refreshing the token");
        // A runtime that is shutting down drops the task at once; its guard then records a
        // failure, taking the lock, which is free.
        drop(tokio::spawn(completion.run()));
        self.inflight
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every write leaves the state consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a refresh as in flight, for [`Start::spawn`] to start once the lock is released.
    /// Outside a Tokio runtime, nothing changes and the caller gets [`Error::NoRuntime`].
    fn prepare_refresh(state: &mut State) -> Result<Start, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        let (tx, rx) = watch::channel(None);
        let inflight = Inflight {
            rx,
            turns: Arc::new(tokio::sync::Semaphore::new(0)),
        };
        state.inflight = Some(inflight.clone());
        let forced = std::mem::take(&mut state.force_next);
        Ok(Start {
            tx,
            inflight,
            forced,
        })
    }

    /// When a token that arrived at `received_at` expires, if it says.
    fn expires_at(token: &Token) -> Option<Instant> {
        token
            .received_at()
            .checked_add(token.lifetime()?.max(MIN_TOKEN_USE))
    }

    /// When a token that arrived at `received_at` stops being handed out without a refresh.
    fn refresh_at(&self, token: &Token) -> Option<Instant> {
        let lifetime = token.lifetime()?;
        // Refresh `buffer` before expiry, or halfway through a token that lives less than twice
        // the buffer, so that a short-lived token is still used rather than refreshed on every
        // call; and never sooner than `MIN_TOKEN_USE`.
        let use_for = lifetime
            .saturating_sub(self.buffer.min(lifetime / 2))
            .max(MIN_TOKEN_USE);
        token.received_at().checked_add(use_for)
    }
}

/// The refresh task. It records its result in the state and hands it to the waiters when it
/// is dropped, so that a panicking source or an aborted task still ends the refresh.
struct Completion {
    shared: Arc<Shared>,
    tx: watch::Sender<Outcome>,
    turns: Arc<tokio::sync::Semaphore>,
    forced: bool,
    result: Option<Result<Token, Error>>,
}

impl Completion {
    async fn run(mut self) {
        let fetched = tokio::time::timeout(self.shared.timeout, self.shared.source.fetch()).await;
        self.result = Some(fetched.unwrap_or(Err(Error::LoginTimeout(self.shared.timeout))));
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let result = self.result.take().unwrap_or_else(|| {
            Err(Error::TokenSource(
                "the token source panicked, or its task was cancelled".into(),
            ))
        });
        {
            let mut state = self.shared.lock();
            state.inflight = None;
            // A flag set while this refresh ran asks for what it has just done.
            state.force_next = false;
            match &result {
                Ok(token) => {
                    tracing::debug!(
                        token_id = token.id().as_deref().unwrap_or("-"),
                        lifetime_s = token.lifetime().map(|l| l.as_secs()),
                        forced = self.forced,
                        "fetched a new token"
                    );
                    state.failure = None;
                    state.current = Some(Cached {
                        refresh_at: self.shared.refresh_at(token),
                        expires_at: Shared::expires_at(token),
                        token: token.clone(),
                    });
                }
                Err(error) => {
                    let consecutive = state.failure.as_ref().map_or(0, |f| f.consecutive) + 1;
                    let cooldown = cooldown(error, consecutive);
                    tracing::warn!(
                        error = %error,
                        consecutive,
                        cooldown_ms = cooldown.as_millis() as u64,
                        "login failed; callers get this error until the cool-down ends"
                    );
                    state.failure = Some(Failure {
                        error: error.clone(),
                        consecutive,
                        retry_at: Instant::now() + cooldown,
                    });
                }
            }
        }
        // After the state, so that a woken waiter that calls `get` again sees the result there.
        self.tx.send_replace(Some(result));
        // The first waiter's turn; each passes it on (see `TokenCache::get`).
        self.turns.add_permits(1);
    }
}

/// The cool-down after `consecutive` failed logins, the last of which was `error`.
pub(crate) fn cooldown(error: &Error, consecutive: u32) -> Duration {
    let refusal = error
        .login_status()
        .is_some_and(|s| s.is_client_error() && s != reqwest::StatusCode::TOO_MANY_REQUESTS);
    let (first, cap) = if refusal {
        (REFUSAL_COOLDOWN, MAX_REFUSAL_COOLDOWN)
    } else {
        (TRANSIENT_COOLDOWN, MAX_TRANSIENT_COOLDOWN)
    };
    let doubled = first
        .saturating_mul(2u32.saturating_pow(consecutive.saturating_sub(1)))
        .min(cap);
    match error.retry_after() {
        Some(asked) => doubled.max(asked.min(MAX_REFUSAL_COOLDOWN)),
        None => doubled,
    }
}

fn ended_without_result() -> Error {
    Error::TokenSource("the login ended without a result".into())
}
