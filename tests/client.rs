//! The client against the sandbox over real HTTP on loopback, and against purpose-built
//! loopback servers where the sandbox cannot misbehave in the needed way.
// `ApiErrorExt` is deprecated in favour of `comm100::ApiError`, and kept for a release: these
// checks hold for it too.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comm100::generated::{types, ClientCustomerSegmentsExt as _};
use comm100::{ApiErrorExt, Comm100, Outcome, RetryPolicy};
use comm100_sandbox::{
    Fault, OddBody, Route, Sandbox, SandboxConfig, DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID,
};

mod common;

use common::{client_for, count, logged_in, segment, serve};

#[tokio::test]
async fn logs_in_lazily_once_and_runs_every_operation() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = client_for(&sb).build().unwrap();
    assert_eq!(ctl.requests().len(), 0, "building sends nothing");

    let created = c100
        .client()
        .create_customer_segment()
        .body(segment("first"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.into_inner().id;
    let got = c100
        .client()
        .get_customer_segment()
        .id(id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name.as_deref(), Some("first"));
    assert_eq!(got.color.as_deref(), Some("339FD9"), "the server's default");
    let updated = c100
        .client()
        .update_customer_segment()
        .id(id)
        .body(segment("renamed"))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.into_inner().name.as_deref(), Some("renamed"));
    let list = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.len(), 1);
    let deleted = c100
        .client()
        .delete_customer_segment()
        .id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let err = c100
        .client()
        .get_customer_segment()
        .id(id)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_not_found() && !err.is_retryable(), "{err}");
    assert_eq!(err.operation_id(), Some("get_customer_segment"));

    assert_eq!(ctl.token_requests(), 1, "one login for all six operations");
    let jtis: std::collections::HashSet<_> = ctl
        .requests()
        .iter()
        .filter_map(|r| r.token_jti.clone())
        .collect();
    assert_eq!(jtis.len(), 1);
}

/// 1000 callers send a token the server refuses (it was issued with no life left, which the
/// client still uses for a moment): exactly one token request, and all of them succeed with
/// the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_share_one_refresh() {
    // A thousand connections at once: more than the sandbox's default limit, which would make
    // them queue.
    let sb = Sandbox::builder()
        .limits(comm100_sandbox::Limits::default().connections(4096))
        .start()
        .await
        .unwrap();
    let ctl = sb.controls();
    let c100 = client_for(&sb).build().unwrap();
    // The first token is born expired; the next lives two hours.
    ctl.set_token_lifetime(Duration::ZERO);
    c100.login().await.unwrap();
    ctl.set_token_lifetime(Duration::from_secs(7200));
    ctl.clear_requests();

    let calls = (0..1000).map(|_| {
        let c100 = c100.clone();
        tokio::spawn(async move {
            c100.client()
                .list_customer_segments()
                .send()
                .await
                .map(|_| ())
        })
    });
    let results = futures::future::join_all(calls).await;
    let failed = results.iter().filter(|r| !matches!(r, Ok(Ok(())))).count();
    assert_eq!(failed, 0);
    assert_eq!(ctl.token_requests(), 1, "one refresh for 1000 callers");
    let lists: Vec<_> = ctl
        .requests()
        .into_iter()
        .filter(|r| r.route == Some(Route::List))
        .collect();
    let served: Vec<_> = lists.iter().filter(|r| r.status == Some(200)).collect();
    assert_eq!(served.len(), 1000);
    let jtis: std::collections::HashSet<_> = served.iter().map(|r| r.token_jti.clone()).collect();
    assert_eq!(jtis.len(), 1, "every caller used the new token");
    assert!(lists
        .iter()
        .all(|r| r.status == Some(200) || r.status == Some(401)));
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_request_retried() {
    let (sb, ctl, c100) = logged_in().await;
    ctl.revoke_tokens();
    ctl.clear_requests();

    let created = c100
        .client()
        .create_customer_segment()
        .body(segment("after-revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let log: Vec<_> = ctl.requests().iter().map(|r| (r.route, r.status)).collect();
    assert_eq!(
        log,
        vec![
            (Some(Route::Create), Some(401)),
            (Some(Route::Token), Some(200)),
            (Some(Route::Create), Some(201))
        ]
    );
    assert_eq!(
        ctl.segments(DEFAULT_SITE_ID).len(),
        1,
        "a 401 is refused before acting: no duplicate"
    );

    // A static token the server refuses: refreshed (to itself) once, then Unauthorized.
    let bad = Comm100::builder()
        .urls(sb.portal_url(), sb.api_url())
        .static_token("not-a-token")
        .build()
        .unwrap();
    ctl.clear_requests();
    let err = bad
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert_eq!(
        count(&ctl, Route::List),
        2,
        "one retry after the 401, then the error"
    );
}

#[tokio::test]
async fn a_dropped_create_is_not_retried_and_never_duplicates() {
    let (_sb, ctl, c100) = logged_in().await;

    ctl.fail_next(1, Fault::DropAfterHandling, Some(Route::Create));
    let err = c100
        .client()
        .create_customer_segment()
        .body(segment("dropped-after"))
        .send()
        .await
        .unwrap_err();
    // The server may have acted: neither progenitor's method nor the trait's calls it
    // retryable, and the outcome says why.
    assert!(err.http_status().is_none(), "no answer: {err}");
    assert!(!err.is_retryable(), "progenitor's is_retryable: {err}");
    assert!(!ApiErrorExt::is_retryable(&err), "the trait's: {err}");
    assert_eq!(err.outcome(), Outcome::Unknown);
    assert_eq!(err.operation_id(), Some("create_customer_segment"));
    assert_eq!(count(&ctl, Route::Create), 1, "the POST was sent once");
    assert_eq!(
        ctl.segments(DEFAULT_SITE_ID).len(),
        1,
        "the server created it once"
    );

    ctl.fail_next(1, Fault::DropBeforeHandling, Some(Route::Create));
    c100.client()
        .create_customer_segment()
        .body(segment("dropped-before"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(count(&ctl, Route::Create), 2);
    assert_eq!(ctl.segments(DEFAULT_SITE_ID).len(), 1);

    ctl.fail_next(1, Fault::Status(503), Some(Route::Create));
    let err = c100
        .client()
        .create_customer_segment()
        .body(segment("503"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.http_status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.outcome(), Outcome::Unknown);
    assert!(
        !err.is_retryable() && !ApiErrorExt::is_retryable(&err),
        "{err}"
    );
    assert_eq!(
        count(&ctl, Route::Create),
        3,
        "a POST that reached the server is not retried"
    );

    // The same faults on a GET are retried.
    ctl.fail_next(1, Fault::DropBeforeHandling, Some(Route::List));
    ctl.fail_next(1, Fault::Status(502), Some(Route::List));
    let list = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.len(), 1);
    assert_eq!(count(&ctl, Route::List), 3);
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    let (sb, ctl, c100) = logged_in().await;

    ctl.fail_next(
        1,
        Fault::RateLimited {
            retry_after: "1".into(),
        },
        Some(Route::List),
    );
    let started = Instant::now();
    c100.client().list_customer_segments().send().await.unwrap();
    let waited = started.elapsed();
    // The backoff alone would be at most 1 ms; the server asked for a second.
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert_eq!(count(&ctl, Route::List), 2);

    let capped = client_for(&sb)
        .retry(RetryPolicy::default().max_retry_after(Duration::from_millis(10)))
        .build()
        .unwrap();
    ctl.fail_next(
        1,
        Fault::RateLimited {
            retry_after: "3600".into(),
        },
        Some(Route::List),
    );
    ctl.clear_requests();
    let err = capped
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.retry_after(),
        Some(Duration::from_secs(3600)),
        "a wait longer than the cap goes back to the caller, not waited"
    );
    assert!(err.is_rate_limited(), "{err}");
    assert_eq!(count(&ctl, Route::List), 1);

    // Three attempts by default, then the last error, which says it is rate limited.
    ctl.fail_next(
        3,
        Fault::RateLimited {
            retry_after: "0".into(),
        },
        Some(Route::List),
    );
    ctl.clear_requests();
    let err = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    assert!(err.is_rate_limited() && err.is_retryable(), "{err}");
    assert_eq!(count(&ctl, Route::List), 3);

    let off = client_for(&sb)
        .retry(RetryPolicy::disabled())
        .build()
        .unwrap();
    ctl.fail_next(1, Fault::Status(500), Some(Route::List));
    ctl.clear_requests();
    off.client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    assert_eq!(count(&ctl, Route::List), 1, "retries can be turned off");
}

#[tokio::test]
async fn odd_error_bodies_keep_their_status() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = client_for(&sb).build().unwrap();
    let id = uuid::Uuid::new_v4();

    let cases = [
        (OddBody::Relaxed, 400, Some(400000), "Injected fault"),
        (OddBody::Html, 400, None, "non-JSON error body: <"),
        (OddBody::Empty, 404, None, "(empty error body)"),
    ];
    for (body, status, code, message) in cases {
        ctl.fail_next(1, Fault::OddBody { status, body }, Some(Route::Get));
        let err = c100
            .client()
            .get_customer_segment()
            .id(id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.http_status().map(|s| s.as_u16()),
            Some(status),
            "{body:?}: {err}"
        );
        assert_eq!(err.code(), code, "{body:?}");
        assert!(
            err.message().contains(message),
            "{body:?}: {}",
            err.message()
        );
        assert_eq!(err.operation_id(), Some("get_customer_segment"));
    }

    ctl.set_daily_limit(Some(0));
    let err = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.http_status().map(|s| s.as_u16()), Some(403));
    assert!(err.is_rate_limited(), "{}", err.message());
}

#[tokio::test]
async fn unknown_enum_values_and_fields_still_decode() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = client_for(&sb).build().unwrap();
    c100.client()
        .create_customer_segment()
        .body(segment("known"))
        .send()
        .await
        .unwrap();
    ctl.set_forward_compat(true);
    let list = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.len(), 1);
    let operator = &list[0].conditions.as_ref().unwrap()[0].operator;
    assert!(
        matches!(operator, Some(types::ConditionOperator::Other(v)) if v.as_str() == "startsWith"),
        "{operator:?}"
    );
    assert!(
        matches!(&list[0].condition_met_type, Some(types::ConditionMetType::Other(v)) if v.as_str() == "weighted")
    );
}

#[tokio::test]
async fn bad_input_fails_locally_and_sends_nothing() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = client_for(&sb).build().unwrap();

    let cases: [(types::builder::CustomerSegmentInput, &str); 3] = [
        (segment(""), "name"),
        (segment("   "), "name"),
        (
            types::CustomerSegmentInput::builder().name("no conditions"),
            "conditions",
        ),
    ];
    for (body, field) in cases {
        let err = c100
            .client()
            .create_customer_segment()
            .body(body)
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(err, progenitor_client::Error::InvalidRequest(_)),
            "{err}"
        );
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    let err = c100
        .client()
        .create_customer_segment()
        .body(segment("x").conditions(vec![]))
        .send()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("conditions"), "{err}");
    let err = c100
        .client()
        .get_customer_segment()
        .id("not-a-uuid")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(err, progenitor_client::Error::InvalidRequest(_))
            && err.to_string().contains("id"),
        "{err}"
    );
    assert_eq!(
        ctl.requests().len(),
        0,
        "nothing was sent, not even a login"
    );
}

#[tokio::test]
async fn the_token_never_leaves_the_api_origin() {
    // An API host that redirects every request to another origin, which records what it gets.
    let sb = Sandbox::start().await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let other = {
        let seen = seen.clone();
        serve(
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(
                        headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_string()),
                    );
                    "[]"
                }
            }),
        )
        .await
    };
    let redirector = serve(axum::Router::new().fallback(move || async move {
        axum::response::Redirect::temporary(&format!(
            "http://{other}/api/v3/livechat/customerSegments"
        ))
    }))
    .await;
    let c100 = Comm100::builder()
        .urls(sb.portal_url(), format!("http://{redirector}/api/v3"))
        .password_login(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID)
        .build()
        .unwrap();
    let err = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.http_status().map(|s| s.as_u16()), Some(307), "{err}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the redirect to another origin was not followed"
    );

    // Even a user-supplied client that follows every redirect does not carry the token across.
    let follows = Comm100::builder()
        .urls(sb.portal_url(), format!("http://{redirector}/api/v3"))
        .password_login(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID)
        .http_client(reqwest::Client::new())
        .build()
        .unwrap();
    follows
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![None],
        "followed, without the Authorization header"
    );
}

#[tokio::test]
async fn a_login_that_hangs_is_bounded_by_the_timeout() {
    let hanging = serve(axum::Router::new().fallback(std::future::pending::<&'static str>)).await;
    let c100 = Comm100::builder()
        .urls(
            format!("http://{hanging}"),
            format!("http://{hanging}/api/v3"),
        )
        .password_login(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID)
        .login_timeout(Duration::from_millis(200))
        .retry(RetryPolicy::disabled())
        .build()
        .unwrap();
    let err = c100.login().await.unwrap_err();
    assert!(
        matches!(&err, comm100::Error::LoginTimeout(_))
            || matches!(&err, comm100::Error::Transport(e) if e.is_timeout()),
        "{err:?}"
    );
}

#[tokio::test]
async fn static_tokens_and_token_sources_are_used_as_given() {
    let sb = Sandbox::start_with(SandboxConfig::default()).await.unwrap();
    let ctl = sb.controls();
    let token = reqwest::Client::new()
        .post(format!("{}/adminwebservice/api/jwttoken/generate", sb.portal_url()))
        .json(&serde_json::json!({"LoginType":"Password","Username":DEFAULT_EMAIL,"Password":DEFAULT_PASSWORD,"SiteId":DEFAULT_SITE_ID}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let fixed = Comm100::builder()
        .urls(sb.portal_url(), sb.api_url())
        .static_token(token.clone())
        .build()
        .unwrap();
    fixed
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap();

    struct Counting(Arc<std::sync::atomic::AtomicUsize>, String);
    impl comm100::TokenSource for Counting {
        fn fetch(&self) -> comm100::TokenFuture<'_> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let token = comm100::Token::new(self.1.clone());
            Box::pin(async move { Ok(token) })
        }
    }
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sourced = Comm100::builder()
        .urls(sb.portal_url(), sb.api_url())
        .token_source(Counting(fetches.clone(), token))
        .build()
        .unwrap();
    for _ in 0..3 {
        sourced
            .client()
            .list_customer_segments()
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "fetched once, then cached"
    );
    assert_eq!(
        ctl.token_requests(),
        1,
        "only the test's own login hit the token endpoint"
    );
}

#[tokio::test]
async fn every_request_says_who_sends_it_and_the_timeouts_are_the_builders() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = client_for(&sb)
        .user_agent("nightly-sync/2.1")
        .timeout(Duration::from_millis(300))
        .retry(RetryPolicy::disabled())
        .build()
        .unwrap();
    c100.client().list_customer_segments().send().await.unwrap();
    let expected = format!("comm100-rs/{} nightly-sync/2.1", env!("CARGO_PKG_VERSION"));
    let requests = ctl.requests();
    assert_eq!(requests.len(), 2, "the login and the list");
    for r in &requests {
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("user-agent"), Some(expected.clone()), "{}", r.path);
        assert_eq!(header("api-version"), None, "{}", r.path);
    }
    // A server that never answers: the builder's request timeout ends the attempt.
    ctl.fail_next(1, Fault::Hang, Some(Route::List));
    let err = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, progenitor_client::Error::CommunicationError(e) if e.is_timeout()),
        "{err:?}"
    );
}
