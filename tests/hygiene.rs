//! Secrets and hygiene, each against a loopback server: a server that echoes the token or sends
//! format characters, a base URL with a password, a password with spaces from the environment,
//! a `Retry-After` past `u64`, and raw paths and headers that would take the token elsewhere.
// `ApiErrorExt` is deprecated in favour of `comm100::ApiError`, and kept for a release: these
// checks hold for it too.
#![allow(deprecated)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use comm100::generated::ClientCustomerSegmentsExt as _;
use comm100::{ApiErrorExt, Comm100, Error, ErrorKind};

type RawError = progenitor_client::Error<comm100::generated::types::Error>;
use comm100_sandbox::{Fault, Route, Sandbox, DEFAULT_SITE_ID};
use reqwest::header::{HeaderValue, AUTHORIZATION, HOST};
use serde_json::json;

mod common;

use common::{client_for, count, logged_in, serve};

/// A JWT-shaped token (`{"alg":"HS256","typ":"JWT"}`, a payload with `iat` and `exp` an hour
/// apart, and a fake signature), issued by [`echoing_server`].
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3IiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.bm90LWEtcmVhbC1zaWduYXR1cmUh";

/// A token host that issues [`JWT`], and a list route that answers every request `400` with a
/// message that `say` makes of the `Authorization` header it got. Counts the list requests.
async fn echoing_server(say: fn(&str) -> String) -> (Comm100, Arc<AtomicUsize>) {
    let lists = Arc::new(AtomicUsize::new(0));
    let seen = lists.clone();
    let router = axum::Router::new()
        .route(
            "/adminwebservice/api/jwttoken/generate",
            axum::routing::post(|| async { axum::Json(json!({ "token": JWT })) }),
        )
        .route(
            "/api/v3/livechat/customerSegments",
            axum::routing::get(move |headers: HeaderMap| {
                seen.fetch_add(1, Ordering::SeqCst);
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let body = json!({ "code": 400001, "message": say(auth) });
                async move { (StatusCode::BAD_REQUEST, axum::Json(body)) }
            }),
        );
    let addr: SocketAddr = serve(router).await;
    let c100 = Comm100::builder()
        .urls(format!("http://{addr}"), format!("http://{addr}/api/v3"))
        .password_login("agent@example.com", "pw", 1)
        .build()
        .unwrap();
    (c100, lists)
}

/// The error of listing the segments, which every server here refuses.
async fn list_error(c100: &Comm100) -> RawError {
    c100.client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err()
}

/// Every way an operation's error is shown.
fn every_form(err: &RawError) -> [String; 4] {
    [
        err.message(),
        format!("{err}"),
        format!("{err:?}"),
        format!("{err:#}"),
    ]
}

#[tokio::test]
async fn a_server_echoing_the_token_has_it_redacted_from_every_form_of_the_error() {
    let (c100, lists) = echoing_server(|auth| {
        let bare = auth.strip_prefix("Bearer ").unwrap_or_default();
        format!("Invalid header Authorization: {auth} (token {bare}, expired)")
    })
    .await;
    let err = list_error(&c100).await;
    assert_eq!(lists.load(Ordering::SeqCst), 1, "the server was reached");
    assert_eq!(err.status(), Some(reqwest::StatusCode::BAD_REQUEST));
    assert_eq!(
        err.message(),
        "Invalid header Authorization: Bearer [REDACTED] (token [REDACTED], expired)"
    );
    let signature = JWT.rsplit('.').next().unwrap();
    for shown in every_form(&err) {
        assert!(
            !shown.contains("eyJ") && !shown.contains(signature),
            "{shown}"
        );
        assert!(shown.contains("Bearer [REDACTED]"), "{shown}");
    }
}

#[tokio::test]
async fn format_characters_from_the_server_are_replaced() {
    let (c100, _) =
        echoing_server(|_| "\u{202E}gpj.exe\u{202C} is\u{200B}fine\u{2066}".into()).await;
    let err = list_error(&c100).await;
    assert_eq!(err.message(), " gpj.exe  is fine ");
    for shown in every_form(&err) {
        for c in ['\u{202E}', '\u{202C}', '\u{200B}', '\u{2066}'] {
            assert!(!shown.contains(c), "{c:?} in {shown:?}");
        }
    }
}

#[tokio::test]
async fn a_base_url_with_userinfo_is_refused_and_never_shown() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let with_password = |url: String| url.replacen("://", "://agent:url-secret@", 1);
    for (portal, api) in [
        (with_password(sb.portal_url()), sb.api_url()),
        (sb.portal_url(), with_password(sb.api_url())),
    ] {
        let builder = client_for(&sb).urls(portal, api);
        assert!(!format!("{builder:?}").contains("url-secret"));
        let err = builder.build().unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("must not contain a user name or password"),
            "{err}"
        );
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("url-secret"), "{shown}");
            assert!(shown.contains("***@127.0.0.1"), "{shown}");
        }
    }
    assert!(ctl.requests().is_empty(), "nothing was sent");
}

/// Marks the process [`env_password_child`] runs in.
const CHILD: &str = "COMM100_HYGIENE_CHILD";
/// A password with spaces at both ends and inside.
const SPACED_PASSWORD: &str = "  pass word  ";

#[tokio::test]
async fn the_env_password_reaches_the_token_host_byte_for_byte() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    // The sandbox accepts a login only with the password exactly as it was stored.
    ctl.add_agent("spaces@example.com", SPACED_PASSWORD, DEFAULT_SITE_ID);
    // The environment is the process's: the child reads it from a process of its own, so that
    // no test here changes the environment of the others.
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "env_password_child", "--ignored", "--nocapture"])
        .env(CHILD, "1")
        .env_remove("COMM100_PORTAL")
        .env("COMM100_PORTAL_URL", sb.portal_url())
        .env("COMM100_API_URL", sb.api_url())
        .env("COMM100_EMAIL", "spaces@example.com")
        .env("COMM100_PASSWORD", SPACED_PASSWORD)
        .env("COMM100_SITE_ID", DEFAULT_SITE_ID.to_string())
        .output()
        .await
        .unwrap();
    let output = String::from_utf8_lossy(&child.stdout).into_owned()
        + &String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{output}");
    assert!(output.contains("1 passed"), "the child ran: {output}");
    let logins: Vec<_> = ctl
        .requests()
        .into_iter()
        .filter(|r| r.route == Some(Route::Token))
        .collect();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0].status, Some(200), "{logins:?}");
}

#[tokio::test]
#[ignore = "run by the_env_password_reaches_the_token_host_byte_for_byte, in a process of its own"]
async fn env_password_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let c100 = Comm100::from_env().unwrap();
    if let Err(e) = c100.login().await {
        panic!("the login from the environment failed: {e}");
    }
}

#[tokio::test]
async fn a_retry_after_past_u64_gets_one_attempt_like_an_hour() {
    for retry_after in ["3600", "18446744073709551616"] {
        let (_sb, ctl, c100) = logged_in().await;
        ctl.fail_next(
            3,
            Fault::RateLimited {
                retry_after: retry_after.into(),
            },
            Some(Route::List),
        );
        let err = list_error(&c100).await;
        assert!(err.is_rate_limited(), "{err}");
        assert_eq!(count(&ctl, Route::List), 1, "Retry-After: {retry_after}");
        assert!(
            err.retry_after() >= Some(Duration::from_secs(3600)),
            "{:?}",
            err.retry_after()
        );
    }
}

#[tokio::test]
async fn raw_paths_and_headers_that_would_leave_the_api_are_refused_before_sending() {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = client_for(&sb).build().unwrap();
    for path in [
        "../admin",
        "/livechat/../../adminwebservice/api/jwttoken/generate",
        "/%2e%2e/admin",
        "/livechat/%2E./%2e%2e/admin",
        "/livechat\\..\\..\\admin",
    ] {
        let err = c100.get(path).send().await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. })
                && err.message().contains("dot segment"),
            "{path}: {err}"
        );
        let err = c100.post(path).json(&json!({})).send().await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{path}: {err}"
        );
    }
    for (name, value) in [(HOST, "evil.example"), (AUTHORIZATION, "Bearer mine")] {
        let err = c100
            .get("/livechat/customerSegments")
            .header(name.clone(), HeaderValue::from_static(value))
            .send_json::<serde_json::Value>()
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. })
                && err.message().contains(name.as_str()),
            "{name}: {err}"
        );
    }
    assert!(
        ctl.requests().is_empty(),
        "nothing reached the server, not even a login: {:?}",
        ctl.requests()
    );
    // The same client sends a path under the base.
    let list: Vec<serde_json::Value> = c100
        .get("/livechat/customerSegments")
        .send_json()
        .await
        .unwrap();
    assert!(list.is_empty());
    assert_eq!(count(&ctl, Route::List), 1);
}
