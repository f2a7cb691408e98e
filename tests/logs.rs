//! What the client writes to `tracing`: a span per attempt that names the operation, and never
//! a password or a token.
//!
//! These tests install one global subscriber and run one at a time. A per-thread subscriber
//! (`set_default`) is not enough: tracing caches each callsite's interest process-wide, so tests
//! running in parallel on other threads could hide events from it.
// `ApiErrorExt` is deprecated in favour of `comm100::ApiError`, and kept for a release: these
// checks hold for it too.
#![allow(deprecated)]

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use comm100::generated::ClientCustomerSegmentsExt as _;
use comm100::{ApiErrorExt, Comm100, RetryPolicy};
use comm100_sandbox::{Sandbox, DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID};

mod common;

use common::{client_for, segment};

/// Everything written to `tracing` since the last `capture()`. Holding it keeps the other
/// tests of this file from running.
struct Captured {
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(buffer().lock().unwrap().clone()).unwrap()
    }
}

fn buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(recorder(buffer.clone())).unwrap();
        buffer
    })
}

fn capture() -> Captured {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    buffer().lock().unwrap().clear();
    Captured {
        _one_at_a_time: guard,
    }
}

#[tokio::test]
async fn a_post_whose_connection_is_refused_is_retried() {
    // Nothing listens on the API port at first, so the connection is refused: the request
    // certainly never reached a server and is safe to send again.
    let sb = Sandbox::start().await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let c100 = Comm100::builder()
        .urls(sb.portal_url(), format!("http://127.0.0.1:{port}/api/v3"))
        .password_login(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID)
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    let logs = capture();
    let err = c100
        .client()
        .create_customer_segment()
        .body(segment("x"))
        .send()
        .await
        .unwrap_err();
    assert!(err.http_status().is_none(), "{err}");
    let logs = logs.text();
    assert_eq!(
        logs.matches("transport error; retrying").count(),
        2,
        "{logs}"
    );
}

#[tokio::test]
async fn a_failed_login_is_typed_and_never_shows_the_password() {
    let sb = Sandbox::start().await.unwrap();
    let secret = "wrong-password-xyzzy";
    let c100 = Comm100::builder()
        .urls(sb.portal_url(), sb.api_url())
        .password_login(DEFAULT_EMAIL, secret, DEFAULT_SITE_ID)
        .build()
        .unwrap();
    let logs = capture();

    let err = c100.login().await.unwrap_err();
    match &err {
        comm100::Error::Login {
            status, message, ..
        } => {
            assert_eq!(status.as_u16(), 401);
            assert!(!message.is_empty());
        }
        other => panic!("expected a login error, got {other:?}"),
    }
    let op_err = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    assert_eq!(op_err.operation_id(), Some("generate_jwt_token"));
    assert!(op_err.is_unauthorized());
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        op_err.to_string(),
        format!("{op_err:?}"),
        format!("{c100:?}"),
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let logs = logs.text();
    assert!(
        logs.contains("generate_jwt_token"),
        "the login is traced: {logs}"
    );
    assert!(!logs.contains(secret), "{logs}");
}

#[tokio::test]
async fn spans_name_the_operation_and_never_the_token() {
    let sb = Sandbox::start().await.unwrap();
    let c100 = client_for(&sb).build().unwrap();
    let logs = capture();
    c100.client().list_customer_segments().send().await.unwrap();
    let token = c100.token().await.unwrap();
    let logs = logs.text();
    // One span per request sent, at DEBUG, with the OpenTelemetry HTTP client fields.
    assert!(logs.contains("DEBUG comm100.request"), "{logs}");
    let url = format!("{}/livechat/customerSegments", sb.api_url());
    let port = sb.addr().port();
    for field in [
        "comm100.operation_id=\"list_customer_segments\"".to_string(),
        "otel.kind=\"client\"".into(),
        "otel.name=GET".into(),
        "http.request.method=GET".into(),
        format!("url.full={url}"),
        "server.address=\"127.0.0.1\"".into(),
        format!("server.port={port}"),
        "http.response.status_code=200".into(),
    ] {
        assert!(logs.contains(&field), "{field} in {logs}");
    }
    assert!(!logs.contains("http.request.resend_count"), "{logs}");
    let raw = format!("{:?}", token);
    assert!(raw.contains("REDACTED"));
    // The token itself: the sandbox's log gives its jti, never the token; search the logs for
    // any JWT-looking text instead.
    assert!(!logs.contains("eyJ"), "no JWT in the logs: {logs}");
}

/// A token host that answers `200` with a body holding a JWT in the wrong shape, then one that
/// never answers: no error's `Display` or `Debug`, and no log line, holds the JWT or the
/// password, and the generated request type redacts the password.
#[tokio::test]
async fn no_secret_reaches_an_error_or_a_log_line_whatever_the_token_host_sends() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2lnbmF0dXJl";
    let password = "hunter2-password-xyzzy";
    let bodies = [
        format!(r#"{{"tok":"{jwt}"}}"#),
        format!(r#"{{"token":["{jwt}"]}}"#),
        format!("<html>{jwt}</html>"),
        r#"{"token":"   "}"#.to_string(),
    ];
    for body in bodies {
        let router = axum::Router::new().route(
            "/adminwebservice/api/jwttoken/generate",
            axum::routing::post(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        let addr = common::serve(router).await;
        let c100 = Comm100::builder()
            .urls(format!("http://{addr}"), format!("http://{addr}/api/v3"))
            .password_login(DEFAULT_EMAIL, password, DEFAULT_SITE_ID)
            .build()
            .unwrap();
        let logs = capture();
        let op_err = c100
            .client()
            .list_customer_segments()
            .send()
            .await
            .unwrap_err();
        let err = c100.login().await.unwrap_err();
        assert!(matches!(err, comm100::Error::BadToken(_)), "{err:?}");
        assert!(
            op_err.is_retryable() && op_err.is_login_failure(),
            "{op_err}"
        );
        let logs = logs.text();
        for shown in [
            err.to_string(),
            format!("{err:?}"),
            op_err.to_string(),
            format!("{op_err:?}"),
            op_err.message(),
            logs,
        ] {
            assert!(!shown.contains(jwt) && !shown.contains("eyJ"), "{shown}");
            assert!(!shown.contains(password), "{shown}");
        }
    }
    let request = comm100::generated::types::JwtTokenRequest {
        login_type: comm100::generated::types::LoginType::Password,
        username: DEFAULT_EMAIL.into(),
        password: password.into(),
        site_id: DEFAULT_SITE_ID,
    };
    let shown = format!("{request:?}");
    assert!(
        !shown.contains(password) && shown.contains("REDACTED"),
        "{shown}"
    );
    assert_eq!(
        serde_json::to_value(&request).unwrap()["Password"],
        password,
        "the wire still carries it"
    );
}

/// A 503, then a success: the first span names the error, the second counts the resend, and
/// the retry is an INFO event a production log shows.
#[tokio::test]
async fn a_retry_is_an_event_and_the_resend_is_counted() {
    let sb = Sandbox::start().await.unwrap();
    let c100 = client_for(&sb).build().unwrap();
    c100.login().await.unwrap();
    sb.controls().fail_next(
        1,
        comm100_sandbox::Fault::Status(503),
        Some(comm100_sandbox::Route::List),
    );
    let logs = capture();
    c100.client().list_customer_segments().send().await.unwrap();
    let logs = logs.text();
    assert!(logs.contains("error.type=\"503\""), "{logs}");
    assert!(logs.contains("otel.status_code=\"ERROR\""), "{logs}");
    assert!(logs.contains("http.response.status_code=503"), "{logs}");
    assert!(logs.contains("http.request.resend_count=1"), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains(" INFO ") && l.contains("retryable status; retrying")),
        "{logs}"
    );
}

/// A subscriber that writes every event and span close, with fields, into `buffer`.
fn recorder(buffer: Arc<Mutex<Vec<u8>>>) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_writer(move || common::LogBuffer(buffer.clone()))
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish()
}
