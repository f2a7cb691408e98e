//! [`TokenCache`]: one token for all of a client's requests, refreshed before it expires.
//!
//! Modelled on smithy-rs's lazy identity cache, with what real servers added to it:
//!
//! * **Lifetimes on the server's clock.** A token is fresh until `lifetime − buffer` after it
//!   arrived (see [`Token`]); the local wall clock is never compared with `exp`.
//! * **One login, one result.** Concurrent callers share a single refresh, which runs in a task
//!   of its own: a caller that is cancelled neither cancels nor restarts it. Every caller
//!   waiting on it gets its result, success or error.
//! * **Cool-down after a failure.** After a failed login, callers get its error at once, and
//!   nothing is sent, until a cool-down has passed. It doubles with each consecutive failure and
//!   is capped; it is longer after a refusal (a `4xx`: wrong password, locked account), which
//!   repeating cannot fix and may make worse, than after a transport failure, a timeout or a
//!   `5xx`. A `Retry-After` from the token host lengthens it.
//! * **No re-login storms.** A `401` on the current token forces one refresh, shared by every
//!   request that saw it. If the token that refresh fetched is refused as well before the
//!   server ever accepted it (a revoked agent, a missing permission: the server refuses fresh
//!   tokens), its `401` goes to the caller, and another forced refresh waits until
//!   [`FORCED_REFRESH_INTERVAL`] has passed since the last one. A token the server had accepted
//!   and then refuses was revoked: it is replaced at once.
//!
//! # Concurrency contract
//! [`TokenCache::get`] may be called from any number of tasks at once. At most one call of
//! [`TokenSource::fetch`] runs at a time, bounded by the login timeout. The state sits behind a
//! `std` mutex that is never held across an `.await`.

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
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    /// The refresh in flight: every caller that needs a token waits on it.
    inflight: Option<watch::Receiver<Outcome>>,
    /// The last failed login, while its cool-down lasts.
    failure: Option<Failure>,
    /// When a `401` last forced a refresh.
    last_forced: Option<Instant>,
    /// Whether the next refresh is forced by a `401` (its token is then marked so).
    force_next: bool,
}

struct Cached {
    token: Token,
    /// When to stop handing the token out; `None`: until the server refuses it.
    refresh_at: Option<Instant>,
    /// Fetched because the server refused the token before it.
    forced: bool,
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
            }),
        }
    }

    /// A fresh token: the cached one, or the result of the refresh in flight, or of a new one.
    /// During a cool-down, the last login's error, at once.
    pub(crate) async fn get(&self) -> Result<Token, Error> {
        let mut outcome = {
            let mut state = self.shared.lock();
            let now = Instant::now();
            if let Some(cached) = &state.current {
                if cached.refresh_at.is_none_or(|at| now < at) {
                    return Ok(cached.token.clone());
                }
            }
            match &state.inflight {
                Some(inflight) => inflight.clone(),
                None => {
                    if let Some(failure) = &state.failure {
                        if now < failure.retry_at {
                            return Err(failure.error.clone());
                        }
                    }
                    Shared::start_refresh(&self.shared, &mut state)
                }
            }
        };
        // The refresh task records a result even when it panics or is aborted; a closed
        // channel without one can only mean the runtime is going away.
        let result = match outcome.wait_for(Option::is_some).await {
            Ok(result) => result.clone(),
            Err(_) => None,
        };
        result.unwrap_or_else(|| Err(ended_without_result()))
    }

    /// The server answered `401` to `token`. Returns whether the request is worth sending once
    /// more with a new token: yes when the token has been replaced already or may be replaced
    /// now (which drops it, so that the next [`TokenCache::get`] refreshes); no when it was
    /// itself fetched by a forced refresh, has never been accepted, and the last forced refresh
    /// was less than [`FORCED_REFRESH_INTERVAL`] ago.
    pub(crate) fn refused(&self, token: &Token) -> bool {
        let mut state = self.shared.lock();
        let now = Instant::now();
        let Some(cached) = &state.current else {
            return true;
        };
        if !cached.token.same(token) {
            return true;
        }
        let may_force = !cached.forced
            || token.accepted()
            || state
                .last_forced
                .is_none_or(|at| now.duration_since(at) >= FORCED_REFRESH_INTERVAL);
        if may_force {
            state.current = None;
            state.last_forced = Some(now);
            state.force_next = true;
        }
        may_force
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every write leaves the state consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the refresh task; returns the channel its result will arrive on.
    fn start_refresh(this: &Arc<Self>, state: &mut State) -> watch::Receiver<Outcome> {
        let (tx, rx) = watch::channel(None);
        state.inflight = Some(rx.clone());
        let forced = std::mem::take(&mut state.force_next);
        let completion = Completion {
            shared: this.clone(),
            tx,
            forced,
            result: None,
        };
        tokio::spawn(completion.run());
        tracing::debug!(forced, "refreshing the token");
        rx
    }

    /// When a token that arrived at `received_at` stops being handed out.
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
                        token: token.clone(),
                        forced: self.forced,
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
