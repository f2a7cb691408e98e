//! The token cache with a scripted [`TokenSource`] and time driven by hand (tokio's paused
//! clock): lifetimes, shared results, cool-downs, cancellation, forced refreshes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use tokio::sync::Notify;

use super::cache::{
    cooldown, TokenCache, FORCED_REFRESH_INTERVAL, MAX_REFUSAL_COOLDOWN, MAX_TRANSIENT_COOLDOWN,
    REFUSAL_COOLDOWN, TRANSIENT_COOLDOWN,
};
use super::token::tests::jwt;
use super::{Token, TokenFuture, TokenSource};
use crate::error::Error;

/// What one fetch does.
enum Step {
    /// Returns a token that lives this long, issued by a server whose clock is `skew` off.
    Token {
        lifetime: u64,
        skew: i64,
    },
    Fail(Error),
    /// Waits until released, then returns a long-lived token.
    Gated(Arc<Notify>),
    Panic,
}

/// A source that plays its steps in order (the last one repeats) and counts its fetches.
#[derive(Clone)]
struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    fetches: Arc<AtomicUsize>,
}

impl Script {
    fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: Arc::new(Mutex::new(steps.into())),
            fetches: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
    fn cache(&self) -> Arc<TokenCache> {
        Arc::new(TokenCache::new(
            Arc::new(self.clone()),
            Duration::from_secs(60),
            Duration::from_secs(30),
        ))
    }
}

fn server_token(lifetime: u64, skew: i64) -> Token {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + skew;
    Token::new(jwt(&format!(
        r#"{{"nbf":{now},"exp":{},"jti":"{}"}}"#,
        now + lifetime as i64,
        uuid::Uuid::new_v4()
    )))
}

impl TokenSource for Script {
    fn fetch(&self) -> TokenFuture<'_> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let step = {
            let mut steps = self.steps.lock().unwrap();
            if steps.len() > 1 {
                steps.pop_front().unwrap()
            } else {
                match steps.front().unwrap() {
                    Step::Token { lifetime, skew } => Step::Token {
                        lifetime: *lifetime,
                        skew: *skew,
                    },
                    Step::Fail(e) => Step::Fail(e.clone()),
                    Step::Gated(n) => Step::Gated(n.clone()),
                    Step::Panic => Step::Panic,
                }
            }
        };
        Box::pin(async move {
            match step {
                Step::Token { lifetime, skew } => Ok(server_token(lifetime, skew)),
                Step::Fail(e) => Err(e),
                Step::Gated(release) => {
                    release.notified().await;
                    Ok(server_token(7200, 0))
                }
                Step::Panic => panic!("the source broke"),
            }
        })
    }
}

fn refused() -> Error {
    Error::Login {
        status: StatusCode::UNAUTHORIZED,
        code: Some(401000),
        message: "Invalid username, password or site id.".into(),
        retry_after: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_skewed_server_costs_one_login_per_token_life() {
    for skew in [-3 * 3600, 3 * 3600] {
        let script = Script::new(vec![Step::Token {
            lifetime: 7200,
            skew,
        }]);
        let cache = script.cache();
        for _ in 0..20 {
            cache.get().await.unwrap();
        }
        assert_eq!(script.fetches(), 1, "skew {skew}");
        // Just before `lifetime − buffer` the token is still fresh; just after, it is not.
        tokio::time::advance(Duration::from_secs(7200 - 60 - 1)).await;
        cache.get().await.unwrap();
        assert_eq!(script.fetches(), 1, "skew {skew}");
        tokio::time::advance(Duration::from_secs(2)).await;
        let old = cache.get().await.unwrap();
        cache.settled().await;
        assert_eq!(script.fetches(), 2, "skew {skew}");
        assert!(!cache.get().await.unwrap().same(&old), "skew {skew}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_with_no_life_left_is_still_used_for_a_moment() {
    let script = Script::new(vec![Step::Token {
        lifetime: 0,
        skew: 0,
    }]);
    let cache = script.cache();
    for _ in 0..100 {
        cache.get().await.unwrap();
    }
    assert_eq!(script.fetches(), 1);
    tokio::time::advance(Duration::from_millis(1001)).await;
    cache.get().await.unwrap();
    assert_eq!(script.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn every_waiter_gets_the_one_logins_error_then_the_cooldown_holds() {
    let script = Script::new(vec![Step::Fail(refused())]);
    let cache = script.cache();
    let waiters: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get().await })
        })
        .collect();
    for waiter in waiters {
        let err = waiter.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::Login { status, message, .. } if *status == 401 && message.contains("Invalid")),
            "{err}"
        );
    }
    assert_eq!(script.fetches(), 1);
    // During the cool-down: the same error, at once, and no fetch.
    tokio::time::advance(REFUSAL_COOLDOWN - Duration::from_millis(1)).await;
    assert!(matches!(cache.get().await, Err(Error::Login { .. })));
    assert_eq!(script.fetches(), 1);
    // After it: one more login, and a cool-down twice as long.
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(cache.get().await.is_err());
    assert_eq!(script.fetches(), 2);
    tokio::time::advance(REFUSAL_COOLDOWN * 2 - Duration::from_millis(1)).await;
    assert!(cache.get().await.is_err());
    assert_eq!(script.fetches(), 2);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(cache.get().await.is_err());
    assert_eq!(script.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_success_after_failures_ends_the_cooldown() {
    let script = Script::new(vec![
        Step::Fail(Error::LoginTimeout(Duration::from_secs(30))),
        Step::Token {
            lifetime: 7200,
            skew: 0,
        },
    ]);
    let cache = script.cache();
    assert!(matches!(cache.get().await, Err(Error::LoginTimeout(_))));
    tokio::time::advance(TRANSIENT_COOLDOWN).await;
    cache.get().await.unwrap();
    cache.get().await.unwrap();
    assert_eq!(script.fetches(), 2);
}

#[test]
fn cooldowns_grow_are_capped_and_refusals_wait_longer() {
    let transient = Error::LoginTimeout(Duration::from_secs(1));
    assert_eq!(cooldown(&transient, 1), TRANSIENT_COOLDOWN);
    assert_eq!(cooldown(&transient, 2), TRANSIENT_COOLDOWN * 2);
    assert_eq!(cooldown(&transient, 50), MAX_TRANSIENT_COOLDOWN);
    assert_eq!(cooldown(&refused(), 1), REFUSAL_COOLDOWN);
    assert_eq!(cooldown(&refused(), 50), MAX_REFUSAL_COOLDOWN);
    for n in 1..10 {
        assert!(cooldown(&refused(), n) > cooldown(&transient, n));
    }
    let outage = |retry_after| Error::Login {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: None,
        message: String::new(),
        retry_after,
    };
    assert_eq!(cooldown(&outage(None), 1), TRANSIENT_COOLDOWN);
    assert_eq!(
        cooldown(&outage(Some(Duration::from_secs(7))), 1),
        Duration::from_secs(7)
    );
    assert_eq!(
        cooldown(&outage(Some(Duration::from_secs(86400))), 1),
        MAX_REFUSAL_COOLDOWN
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_caller_neither_cancels_nor_restarts_the_login() {
    let release = Arc::new(Notify::new());
    let script = Script::new(vec![Step::Gated(release.clone())]);
    let cache = script.cache();
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get().await })
        })
        .collect();
    // Let every caller reach the shared login, then cancel them all.
    tokio::task::yield_now().await;
    for caller in &callers {
        caller.abort();
    }
    for caller in callers {
        assert!(caller.await.unwrap_err().is_cancelled());
    }
    assert_eq!(script.fetches(), 1);
    release.notify_one();
    // The login finishes on its own; the next caller gets its token without a second fetch.
    cache.get().await.unwrap();
    assert_eq!(script.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_silent_source_fails_every_caller_within_one_timeout() {
    let script = Script::new(vec![Step::Gated(Arc::new(Notify::new()))]);
    let cache = script.cache();
    let started = tokio::time::Instant::now();
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get().await })
        })
        .collect();
    for caller in callers {
        let err = caller.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::LoginTimeout(_)), "{err}");
    }
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(script.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_source_is_an_error_not_a_hang() {
    let script = Script::new(vec![
        Step::Panic,
        Step::Token {
            lifetime: 7200,
            skew: 0,
        },
    ]);
    let cache = script.cache();
    assert!(matches!(cache.get().await, Err(Error::TokenSource(_))));
    tokio::time::advance(TRANSIENT_COOLDOWN).await;
    cache.get().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_forces_one_refresh_and_a_refused_replacement_does_not() {
    let script = Script::new(vec![Step::Token {
        lifetime: 7200,
        skew: 0,
    }]);
    let cache = script.cache();
    let first = cache.get().await.unwrap();
    // Many requests saw the first token refused: one refresh for all of them.
    assert!(cache.refused(&first));
    for _ in 0..50 {
        assert!(cache.refused(&first), "already replaced: retry");
    }
    let second = cache.get().await.unwrap();
    assert!(!second.same(&first));
    assert_eq!(script.fetches(), 2);
    // The replacement is refused too: no refresh, the caller gets the 401.
    for _ in 0..50 {
        assert!(!cache.refused(&second));
        assert!(cache.get().await.unwrap().same(&second));
    }
    assert_eq!(script.fetches(), 2);
    // A minute later, one more forced refresh is allowed.
    tokio::time::advance(FORCED_REFRESH_INTERVAL).await;
    assert!(cache.refused(&second));
    let third = cache.get().await.unwrap();
    assert_eq!(script.fetches(), 3);
    // Whatever the server did with the third token before, a 401 on it within the minute
    // forces nothing: an endpoint that refuses every token costs one login a minute.
    for _ in 0..50 {
        assert!(!cache.refused(&third));
    }
    assert_eq!(script.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_early_refresh_keeps_the_valid_token_until_it_expires() {
    let script = Script::new(vec![
        Step::Token {
            lifetime: 7200,
            skew: 0,
        },
        Step::Fail(Error::Login {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: None,
            message: "blip".into(),
            retry_after: None,
        }),
    ]);
    let cache = script.cache();
    let first = cache.get().await.unwrap();
    // In the refresh buffer: the refresh runs in the background, and fails.
    tokio::time::advance(Duration::from_secs(7200 - 30)).await;
    assert!(cache.get().await.unwrap().same(&first));
    cache.settled().await;
    assert_eq!(script.fetches(), 2);
    // During the cool-down every caller still gets the valid token, and nothing is fetched.
    for _ in 0..20 {
        assert!(cache.get().await.unwrap().same(&first));
    }
    assert_eq!(script.fetches(), 2);
    // After the cool-down, one more background refresh; the token is still served.
    tokio::time::advance(TRANSIENT_COOLDOWN).await;
    assert!(cache.get().await.unwrap().same(&first));
    cache.settled().await;
    assert_eq!(script.fetches(), 3);
    // Once it has expired, the caller gets the failure (here, the cool-down's error).
    tokio::time::advance(Duration::from_secs(30)).await;
    let err = cache.get().await.unwrap_err();
    assert_eq!(err.login_status(), Some(StatusCode::SERVICE_UNAVAILABLE));
}

/// Polling `get` outside a runtime (another executor) errors at once, and the cache still works
/// inside one afterwards.
#[test]
fn outside_a_runtime_get_errors_at_once_and_changes_nothing() {
    let script = Script::new(vec![Step::Token {
        lifetime: 7200,
        skew: 0,
    }]);
    let cache = script.cache();
    let err = futures::executor::block_on(cache.get()).unwrap_err();
    assert!(matches!(err, Error::NoRuntime), "{err}");
    assert_eq!(script.fetches(), 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        cache.get().await.unwrap();
        cache.get().await.unwrap();
    });
    assert_eq!(script.fetches(), 1);
}

/// A runtime that is shutting down drops a spawned task at once; the refresh's guard then takes
/// the cache's lock, which must be free.
#[test]
fn a_refresh_dropped_by_a_closing_runtime_does_not_deadlock() {
    let script = Script::new(vec![Step::Token {
        lifetime: 7200,
        skew: 0,
    }]);
    let cache = script.cache();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    runtime.shutdown_background();
    // Inside the handle's context, spawning succeeds but the task is dropped at once.
    let _guard = handle.enter();
    let err = futures::executor::block_on(cache.get()).unwrap_err();
    assert!(matches!(err, Error::TokenSource(_)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_401_during_a_background_refresh_leaves_no_stale_flag() {
    let release = Arc::new(Notify::new());
    let script = Script::new(vec![
        Step::Token {
            lifetime: 7200,
            skew: 0,
        },
        Step::Gated(release.clone()),
        Step::Token {
            lifetime: 7200,
            skew: 0,
        },
    ]);
    let cache = script.cache();
    let first = cache.get().await.unwrap();
    tokio::time::advance(Duration::from_secs(7200 - 30)).await;
    // A background refresh is in flight when the server refuses the first token.
    assert!(cache.get().await.unwrap().same(&first));
    assert!(cache.refused(&first));
    release.notify_one();
    let second = cache.get().await.unwrap();
    assert!(!second.same(&first));
    // The refresh that completed answered the 401: no second login for it.
    for _ in 0..10 {
        assert!(cache.get().await.unwrap().same(&second));
    }
    assert_eq!(script.fetches(), 2);
}
