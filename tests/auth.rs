//! Auth against servers that behave as real ones do: clocks hours off, logins refused or never
//! answered, callers that give up, fresh tokens refused. Counts come from the server's request
//! log; nothing sleeps.
// `ApiErrorExt` is deprecated in favour of `comm100::ApiError`, and kept for a release: these
// checks hold for it too.
#![allow(deprecated)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use comm100::generated::ClientCustomerSegmentsExt as _;
use comm100::{ApiErrorExt, Comm100, RetryPolicy};
use comm100_sandbox::{Fault, Route, Sandbox, TokenHost, DEFAULT_EMAIL, DEFAULT_SITE_ID};

mod common;

use common::{client_for, count, logged_in, serve};

async fn list(
    c100: &Comm100,
) -> Result<(), progenitor_client::Error<comm100::generated::types::Error>> {
    c100.client()
        .list_customer_segments()
        .send()
        .await
        .map(|_| ())
}

/// `n` list operations at once on clones of `c100`; each result with how long it took.
async fn storm(
    c100: &Comm100,
    n: usize,
) -> Vec<(
    Result<(), progenitor_client::Error<comm100::generated::types::Error>>,
    Duration,
)> {
    let calls = (0..n).map(|_| {
        let c100 = c100.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = list(&c100).await;
            (result, started.elapsed())
        })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("no caller panics"))
        .collect()
}

#[tokio::test]
async fn a_server_clock_hours_behind_or_ahead_costs_one_login() {
    for offset in [-3 * 3600, 3 * 3600] {
        let sb = Sandbox::builder()
            .clock_offset_secs(offset)
            .start()
            .await
            .unwrap();
        let ctl = sb.controls();
        let c100 = client_for(&sb).build().unwrap();
        for _ in 0..20 {
            list(&c100).await.unwrap();
        }
        assert_eq!(ctl.token_requests(), 1, "offset {offset}");
        assert_eq!(count(&ctl, Route::List), 20, "no request was refused");
        let left = c100.token().await.unwrap().expires_in().unwrap();
        assert!(
            left > Duration::from_secs(7000) && left <= Duration::from_secs(7200),
            "offset {offset}: {left:?}"
        );
    }
}

/// A server whose tokens carry `exp` alone: the lifetime comes from the token response's
/// `Date`, which is 3 hours behind.
#[tokio::test]
async fn a_token_with_exp_alone_is_timed_by_the_response_date() {
    let logins = Arc::new(AtomicUsize::new(0));
    let server_now = || SystemTime::now() - Duration::from_secs(3 * 3600);
    let counted = logins.clone();
    let router = axum::Router::new()
        .route(
            "/adminwebservice/api/jwttoken/generate",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let now = server_now();
                let exp = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 7200;
                let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
                let jwt = format!(
                    "{}.{}.sig",
                    b64(r#"{"alg":"x","typ":"JWT"}"#.into()),
                    b64(format!(r#"{{"exp":{exp}}}"#))
                );
                async move {
                    (
                        [(reqwest::header::DATE, httpdate::fmt_http_date(now))],
                        axum::Json(serde_json::json!({ "token": jwt })),
                    )
                }
            }),
        )
        .route(
            "/api/v3/livechat/customerSegments",
            axum::routing::get(|| async { axum::Json(serde_json::json!([])) }),
        );
    let addr = serve(router).await;
    let c100 = Comm100::builder()
        .urls(format!("http://{addr}"), format!("http://{addr}/api/v3"))
        .password_login(DEFAULT_EMAIL, "pw", DEFAULT_SITE_ID)
        .build()
        .unwrap();
    for _ in 0..20 {
        list(&c100).await.unwrap();
    }
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    let lifetime = c100.token().await.unwrap().lifetime().unwrap();
    // The date has whole seconds: the lifetime is 7200 s, give or take the one being cut.
    assert!(
        lifetime >= Duration::from_secs(7199) && lifetime <= Duration::from_secs(7201),
        "{lifetime:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_with_a_wrong_password_cost_one_login() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = Comm100::builder()
        .urls(sb.portal_url(), sb.api_url())
        .password_login(DEFAULT_EMAIL, "wrong-password", DEFAULT_SITE_ID)
        .login_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let results = storm(&c100, 1000).await;
    assert_eq!(ctl.token_requests(), 1, "one login for 1000 callers");
    for (result, _) in &results {
        let err = result.as_ref().unwrap_err();
        assert!(err.is_unauthorized() && !err.is_retryable(), "{err}");
        assert!(err.is_login_failure());
        assert_eq!(err.operation_id(), Some("generate_jwt_token"));
        assert_eq!(err.code(), Some(401000));
        assert_eq!(err.message(), "Invalid username, password or site id.");
    }
    // During the cool-down: the same error at once, and nothing is sent.
    let err = c100.login().await.unwrap_err();
    assert!(
        matches!(&err, comm100::Error::Login { status, .. } if *status == 401),
        "{err}"
    );
    assert!(list(&c100).await.unwrap_err().is_unauthorized());
    assert_eq!(ctl.token_requests(), 1);
    assert_eq!(count(&ctl, Route::List), 0, "nothing reached the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_token_host_fails_every_caller_within_one_login_timeout() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    ctl.set_token_host(TokenHost::Silent);
    let timeout = Duration::from_secs(1);
    let c100 = client_for(&sb).login_timeout(timeout).build().unwrap();
    let results = storm(&c100, 100).await;
    assert_eq!(ctl.token_requests(), 1, "one login for 100 callers");
    for (result, took) in &results {
        let err = result.as_ref().unwrap_err();
        assert!(err.is_retryable() && !err.is_unauthorized(), "{err}");
        assert!(
            err.is_login_failure() && err.http_status().is_none(),
            "{err}"
        );
        assert!(err.message().contains("timed out"), "{}", err.message());
        assert!(
            matches!(err.login_error(), Some(comm100::Error::LoginTimeout(t)) if *t == timeout)
        );
        // A bound, not a speed: callers that queued behind one another would take 100 s.
        assert!(*took < timeout * 2, "{took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_cancelled_mid_login_leave_it_to_finish_once() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    ctl.set_token_host(TokenHost::Slow(Duration::from_millis(300)));
    let c100 = client_for(&sb).build().unwrap();
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let c100 = c100.clone();
            tokio::spawn(async move { list(&c100).await })
        })
        .collect();
    // The login has reached the token host: every caller is now waiting on it. Cancel them all.
    ctl.wait_for_requests(1).await;
    for caller in &callers {
        caller.abort();
    }
    for caller in callers {
        let _ = caller.await;
    }
    // The next caller gets the token of that same login.
    list(&c100).await.unwrap();
    assert_eq!(ctl.token_requests(), 1);
    let token = ctl
        .requests()
        .into_iter()
        .find(|r| r.route == Some(Route::Token))
        .unwrap();
    assert_eq!(token.status, Some(200), "the login completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_fresh_tokens_does_not_cause_a_login_per_request() {
    let (_sb, ctl, c100) = logged_in().await;
    ctl.set_refuse_valid_tokens(true);
    ctl.clear_requests();
    for wave in 0..3 {
        for (result, _) in storm(&c100, 20).await {
            let err = result.unwrap_err();
            assert!(err.is_unauthorized(), "wave {wave}: {err}");
            assert_eq!(err.operation_id(), Some("list_customer_segments"));
        }
    }
    assert_eq!(
        ctl.token_requests(),
        1,
        "one forced refresh for the first wave, none after"
    );
    // Every caller sends once a wave; in the first wave, a caller that sent the first token
    // sends once more with the new one. So at most 20 + 20 + 20 + 20, and never a login more.
    let lists = count(&ctl, Route::List);
    assert!((60..=80).contains(&lists), "{lists} list requests");
}

/// One endpoint answers, another refuses every token (a permission quirk): alternating them
/// costs one forced refresh, not a login per round, although the server accepted the token.
#[tokio::test]
async fn an_endpoint_that_refuses_every_token_costs_one_extra_login_a_minute() {
    let (_sb, ctl, c100) = logged_in().await;
    let logins_before = ctl.token_requests();
    ctl.fail_next(1000, Fault::Status(401), Some(Route::Get));
    for round in 0..10 {
        list(&c100).await.unwrap();
        let err = c100
            .client()
            .get_customer_segment()
            .id(uuid::Uuid::new_v4())
            .send()
            .await
            .unwrap_err();
        assert!(err.is_unauthorized(), "round {round}: {err}");
        assert_eq!(err.outcome(), comm100::Outcome::Refused);
    }
    assert_eq!(
        ctl.token_requests() - logins_before,
        1,
        "one forced refresh in the minute, whatever the token did before"
    );
    // A revocation inside the same minute is not answered with another login: the caller gets
    // the 401 until the minute has passed.
    ctl.revoke_tokens();
    assert!(list(&c100).await.unwrap_err().is_unauthorized());
    assert_eq!(ctl.token_requests() - logins_before, 1);
}

#[tokio::test]
async fn an_outage_of_the_token_host_keeps_its_status_and_retry_after() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    ctl.set_token_host(TokenHost::Refusing {
        status: 503,
        message: "Down for maintenance.".into(),
        retry_after: Some("7".into()),
    });
    let c100 = client_for(&sb).build().unwrap();
    let err = list(&c100).await.unwrap_err();
    assert_eq!(err.http_status().map(|s| s.as_u16()), Some(503));
    assert!(err.is_retryable() && !err.is_unauthorized(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(err.code(), Some(503000));
    assert_eq!(err.message(), "Down for maintenance.");
    assert_eq!(err.operation_id(), Some("generate_jwt_token"));
    // The cool-down honours the Retry-After: no second login yet.
    let err = c100.login().await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(ctl.token_requests(), 1);
}

#[tokio::test]
async fn an_unreachable_token_host_is_retryable_and_not_a_401() {
    let sb = Sandbox::start().await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let c100 = Comm100::builder()
        .urls(format!("http://127.0.0.1:{port}"), sb.api_url())
        .password_login(DEFAULT_EMAIL, "pw", DEFAULT_SITE_ID)
        .retry(RetryPolicy::disabled())
        .build()
        .unwrap();
    let err = list(&c100).await.unwrap_err();
    assert!(err.is_retryable() && !err.is_unauthorized(), "{err}");
    assert!(err.is_login_failure() && err.http_status().is_none());
    assert!(
        matches!(&err, progenitor_client::Error::CommunicationError(_)),
        "{err:?}"
    );
    assert!(
        err.message()
            .starts_with("could not log in: HTTP transport error"),
        "{}",
        err.message()
    );
    assert!(matches!(
        err.login_error(),
        Some(comm100::Error::Transport(_))
    ));
    assert!(
        err.to_string()
            .contains("/adminwebservice/api/jwttoken/generate"),
        "{err}"
    );
    assert!(matches!(
        c100.login().await.unwrap_err(),
        comm100::Error::Transport(_)
    ));
    assert_eq!(count(&sb.controls(), Route::List), 0);
}

#[tokio::test]
async fn the_users_http_client_carries_the_login() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-corporate-proxy", "seen".parse().unwrap());
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(comm100::same_origin_redirects())
        .build()
        .unwrap();
    let c100 = client_for(&sb).http_client(http).build().unwrap();
    list(&c100).await.unwrap();
    for route in [Route::Token, Route::List] {
        let record = ctl
            .requests()
            .into_iter()
            .find(|r| r.route == Some(route))
            .unwrap();
        assert!(
            record
                .headers
                .iter()
                .any(|(k, v)| k == "x-corporate-proxy" && v == "seen"),
            "{route:?}: {:?}",
            record.headers
        );
    }
}
