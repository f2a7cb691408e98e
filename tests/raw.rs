//! Raw calls (`Comm100::request`) for endpoints the spec does not describe: against the sandbox
//! (a described route reached raw, an unknown route normalised to a 404) and against a
//! purpose-built loopback server (a refused token, a 503 on a GET, a 503 on a POST).
// `ApiErrorExt` is deprecated in favour of `comm100::ApiError`, and kept for a release: these
// checks hold for it too.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use comm100::generated::ClientCustomerSegmentsExt as _;
use comm100::{Comm100, RAW_OPERATION};
use serde_json::json;

mod common;

use common::{logged_in, segment, serve};

#[tokio::test]
async fn a_described_route_reached_raw_and_an_unknown_one_normalised() {
    let (_sb, ctl, c100) = logged_in().await;
    c100.client()
        .create_customer_segment()
        .body(segment("raw"))
        .send()
        .await
        .unwrap();
    let list: Vec<serde_json::Value> = c100
        .get("/livechat/customerSegments")
        .send_json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "raw");

    let err = c100.get("/livechat/agents").send().await.unwrap_err();
    assert_eq!(err.kind(), &comm100::ErrorKind::NotFound, "{err}");
    assert_eq!(err.operation_id(), Some(RAW_OPERATION));
    assert_eq!(err.code(), Some(404000));
    assert!(
        err.message().contains("/api/v3/livechat/agents"),
        "{}",
        err.message()
    );
    let record = ctl.requests().pop().unwrap();
    assert_eq!(record.path, "/api/v3/livechat/agents");
    assert!(record.had_token, "the token went with it");
}

/// What the purpose-built server saw: the tokens it issued, and each API request with the
/// token it carried.
#[derive(Default)]
struct Seen {
    logins: usize,
    requests: Vec<(String, String)>,
}

/// A token host and one undescribed endpoint, `/api/v3/livechat/visitors`: the first token is
/// refused, a GET gets one 503 and then its answer, a POST always gets a 503.
async fn visitors_server() -> (std::net::SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (login, api) = (seen.clone(), seen.clone());
    let router = axum::Router::new()
        .route(
            "/adminwebservice/api/jwttoken/generate",
            axum::routing::post(move || {
                let mut seen = login.lock().unwrap();
                seen.logins += 1;
                let token = format!("opaque-token-{}", seen.logins);
                async move { axum::Json(json!({ "token": token })) }
            }),
        )
        .route(
            "/api/v3/livechat/visitors",
            axum::routing::any(move |method: axum::http::Method, headers: HeaderMap| {
                let token = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let mut seen = api.lock().unwrap();
                seen.requests.push((method.to_string(), token.clone()));
                let gets = seen.requests.iter().filter(|(m, _)| m == "GET").count();
                let response = if token.ends_with("-1") {
                    (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"code": 401000, "message": "revoked"})),
                    )
                        .into_response()
                } else if method == "POST" || gets == 2 {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({"code": 503000, "message": "busy"})),
                    )
                        .into_response()
                } else {
                    axum::Json(json!([{ "id": 7, "name": "visitor" }])).into_response()
                };
                async move { response }
            }),
        );
    (serve(router).await, seen)
}

#[tokio::test]
async fn a_raw_call_refreshes_on_401_retries_a_get_and_never_resends_a_post() {
    let (addr, seen) = visitors_server().await;
    let c100 = Comm100::builder()
        .urls(format!("http://{addr}"), format!("http://{addr}/api/v3"))
        .password_login("agent@example.com", "pw", 1)
        .retry(comm100::RetryPolicy::default().initial_backoff(std::time::Duration::from_millis(1)))
        .build()
        .unwrap();
    let visitors: Vec<serde_json::Value> = c100
        .get("/livechat/visitors")
        .query(&[("page", "1")])
        .send_json()
        .await
        .unwrap();
    assert_eq!(visitors[0]["id"], 7);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.logins, 2, "the refused token was replaced once");
        let tokens: Vec<_> = seen.requests.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            tokens,
            [
                "Bearer opaque-token-1",
                "Bearer opaque-token-2",
                "Bearer opaque-token-2"
            ],
            "refused, then 503, then the answer"
        );
    }

    let err = c100
        .post("/livechat/visitors")
        .json(&json!({ "name": "new" }))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(reqwest::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.message(), "busy");
    let posts = seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(m, _)| m == "POST")
        .count();
    assert_eq!(
        posts, 1,
        "a POST that may have reached the server is never sent again"
    );
}
