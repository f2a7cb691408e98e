//! Working within Comm100's limits (issue 20): a request budget shared by clients, the
//! daily-limit breaker, and settings for one call, against the sandbox on loopback. Counts come
//! from the sandbox's request log.

use std::time::Duration;

use comm100::prelude::*;
use comm100::DailyLimitBreaker;
use comm100_sandbox::{Fault, RateLimit, Route, Sandbox, DEFAULT_PASSWORD};

mod common;

use common::count;

/// A client for `email` on `site`, sharing `budget` when given.
fn client(sb: &Sandbox, email: &str, site: i64, budget: Option<&RateBudget>) -> Comm100 {
    let mut builder = Comm100::builder()
        .urls(sb.portal_url(), sb.api_url())
        .password_login(email, DEFAULT_PASSWORD, site)
        .retry(RetryPolicy::disabled());
    if let Some(budget) = budget {
        builder = builder.rate_budget(budget.clone());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_a_budget_never_exceed_it_together() {
    let sb = Sandbox::builder()
        .agent("a@example.com", DEFAULT_PASSWORD, 1)
        .agent("b@example.com", DEFAULT_PASSWORD, 2)
        .start()
        .await
        .unwrap();
    let ctl = sb.controls();
    // The server allows a burst of 4, then one request every 40 ms, per address: both
    // clients come from 127.0.0.1. The budget sits a little under it, as one should: the
    // server's bucket runs on its own clock, and a loaded machine delivers requests late and
    // together.
    let every = Duration::from_millis(40);
    ctl.set_rate_limit(Some(RateLimit::new(4, every)));
    let budget = RateBudget::new(3, every.mul_f64(1.1));
    let a = client(&sb, "a@example.com", 1, Some(&budget));
    let b = client(&sb, "b@example.com", 2, Some(&budget));
    let calls = (0..15)
        .flat_map(|_| [a.clone(), b.clone()])
        .map(|c| async move { c.client().list_customer_segments().call().await });
    let results = futures::future::join_all(calls).await;
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let refused = ctl
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert_eq!(refused, 0, "no request went over the server's limit");
    // 30 lists and 2 logins, all counted by the budget.
    assert_eq!(ctl.requests().len(), 32);
}

#[tokio::test]
async fn a_429_pauses_every_client_sharing_the_budget_and_a_wait_that_does_not_fit_sends_nothing() {
    let sb = Sandbox::builder()
        .agent("a@example.com", DEFAULT_PASSWORD, 1)
        .agent("b@example.com", DEFAULT_PASSWORD, 2)
        .start()
        .await
        .unwrap();
    let ctl = sb.controls();
    let budget = RateBudget::new(100, Duration::from_millis(1));
    let a = client(&sb, "a@example.com", 1, Some(&budget));
    let b = client(&sb, "b@example.com", 2, Some(&budget))
        .with(|o| o.operation_timeout(Duration::from_millis(500)));
    a.login().await.unwrap();
    b.login().await.unwrap();
    ctl.fail_next(
        1,
        Fault::RateLimited {
            retry_after: "30".into(),
        },
        Some(Route::List),
    );
    let err = a
        .client()
        .list_customer_segments()
        .call()
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
    let paused = budget.snapshot().paused_for.expect("the budget is paused");
    assert!(paused > Duration::from_secs(25), "{paused:?}");
    // The other client waits too: its wait does not fit its budget of 500 ms, so it fails at
    // once, with the wait, and sends nothing.
    let before = ctl.requests().len();
    let err = b
        .client()
        .list_customer_segments()
        .call()
        .await
        .unwrap_err();
    assert_eq!(err.outcome(), Outcome::NotSent);
    match err.kind() {
        ErrorKind::RateLimited { retry_after } => {
            assert!(
                retry_after.is_some_and(|w| w > Duration::from_secs(25)),
                "{err}"
            )
        }
        other => panic!("{other:?}: {err}"),
    }
    assert!(err.is_retryable());
    assert_eq!(ctl.requests().len(), before, "nothing was sent");
}

#[tokio::test]
async fn the_daily_limit_breaker_sends_nothing_while_tripped() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let (c100, breaker) = with_breaker(&sb, DailyLimitBreaker::new());
    c100.login().await.unwrap();
    ctl.set_daily_limit(Some(1));
    c100.client().list_customer_segments().call().await.unwrap();
    let err = c100
        .client()
        .list_customer_segments()
        .call()
        .await
        .unwrap_err();
    assert!(err.is_daily_limit() && !err.is_retryable(), "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    assert!(breaker.tripped_until().is_some());
    let lists = count(&ctl, Route::List);
    for _ in 0..5 {
        let err = c100
            .client()
            .list_customer_segments()
            .call()
            .await
            .unwrap_err();
        assert!(err.is_daily_limit(), "{err}");
        assert_eq!(err.outcome(), Outcome::NotSent);
        assert!(!err.is_retryable());
    }
    assert_eq!(
        count(&ctl, Route::List),
        lists,
        "nothing sent while tripped"
    );
}

#[tokio::test]
async fn a_probe_finds_the_limit_lifted_and_the_breaker_closes() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    // Every call may probe: the test does not wait the default five minutes.
    let (c100, breaker) = with_breaker(&sb, DailyLimitBreaker::new().probe_every(Duration::ZERO));
    c100.login().await.unwrap();
    ctl.set_daily_limit(Some(0));
    assert!(c100
        .client()
        .list_customer_segments()
        .call()
        .await
        .unwrap_err()
        .is_daily_limit());
    assert!(breaker.tripped_until().is_some());
    ctl.set_daily_limit(None);
    c100.client().list_customer_segments().call().await.unwrap();
    assert_eq!(breaker.tripped_until(), None, "the probe closed it");
}

#[tokio::test]
async fn a_permission_403_does_not_trip_the_breaker() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let (c100, breaker) = with_breaker(&sb, DailyLimitBreaker::new());
    ctl.fail_next(1, Fault::Status(403), Some(Route::List));
    let err = c100
        .client()
        .list_customer_segments()
        .call()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Forbidden, "{err}");
    assert_eq!(breaker.tripped_until(), None);
    c100.client().list_customer_segments().call().await.unwrap();
}

#[tokio::test]
async fn a_per_call_timeout_applies_to_that_call_only() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = common::client_for(&sb).build().unwrap();
    c100.login().await.unwrap();
    let quick = c100.with(|o| o.operation_timeout(Duration::from_millis(300)));
    let err = list_that_hangs(&quick, &ctl).await;
    assert_eq!(err.kind(), &ErrorKind::Timeout, "{err}");
    // The client it came from keeps its own budget: a call slower than 300 ms succeeds.
    ctl.fail_next(
        1,
        Fault::Latency(Duration::from_millis(400)),
        Some(Route::List),
    );
    c100.client().list_customer_segments().call().await.unwrap();
    // And the two share one token: no second login.
    assert_eq!(ctl.token_requests(), 1);
}

/// A client of the user's has a timeout the SDK cannot read; stated with `.timeout`, it bounds
/// each attempt (and the budget needs no timer of its own), so an attempt that never gets an
/// answer ends in time for the next one.
#[tokio::test]
async fn a_stated_timeout_bounds_each_attempt_of_a_users_client() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    // No timeout of its own: without the stated one, the hanging attempt would use up the
    // whole operation budget.
    let c100 = common::client_for(&sb)
        .http_client(common::users_client())
        .timeout(Duration::from_millis(300))
        .operation_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    c100.login().await.unwrap();
    ctl.fail_next(1, Fault::Hang, Some(Route::List));
    let listed = c100.client().list_customer_segments().call().await.unwrap();
    assert_eq!(
        listed.len(),
        ctl.segments(comm100_sandbox::DEFAULT_SITE_ID).len()
    );
    assert_eq!(
        count(&ctl, Route::List),
        2,
        "the hanging attempt, then the one that succeeded"
    );
}

/// A client of the user's with no timeout stated: the SDK's own timer ends the call at its
/// budget, whatever the attempt is waiting for, and says what the call may have done.
#[tokio::test]
async fn without_a_stated_timeout_the_budget_ends_a_call_that_gets_no_answer() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = common::client_for(&sb)
        .http_client(common::users_client())
        .operation_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    c100.login().await.unwrap();

    let err = list_that_hangs(&c100, &ctl).await;
    assert_eq!(err.kind(), &ErrorKind::Timeout, "{err}");
    assert_eq!(err.outcome(), Outcome::Unknown, "{err}");
    assert_eq!(count(&ctl, Route::List), 1);

    // A create that got no answer may have been done: not to be sent again blindly.
    ctl.fail_next(1, Fault::Hang, Some(Route::Create));
    let err = c100
        .client()
        .create_customer_segment()
        .body(common::segment("hung"))
        .call()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Timeout, "{err}");
    assert_eq!(err.outcome(), Outcome::Unknown, "{err}");
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(count(&ctl, Route::Create), 1);
}

/// The error of a list that the sandbox never answers.
async fn list_that_hangs(c100: &Comm100, ctl: &comm100_sandbox::Controls) -> ApiError {
    ctl.fail_next(1, Fault::Hang, Some(Route::List));
    c100.client()
        .list_customer_segments()
        .call()
        .await
        .unwrap_err()
}

/// A client of the sandbox with `breaker`, and the breaker, to look at.
fn with_breaker(sb: &Sandbox, breaker: DailyLimitBreaker) -> (Comm100, DailyLimitBreaker) {
    let c100 = common::client_for(sb)
        .daily_limit_breaker(breaker.clone())
        .build()
        .unwrap();
    (c100, breaker)
}
