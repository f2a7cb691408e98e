//! SDK errors mapped to a service's own HTTP answers: an axum handler that reads a segment from
//! Comm100 and answers for it, with one `match` on `ErrorKind`.
//!
//! `cargo run --example errors` serves the handler on loopback in front of the embedded
//! sandbox, injects one fault per request, and prints what the service answered.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{routing::get, Json, Router};
use comm100::prelude::*;
use comm100_sandbox::{Fault, Route, Sandbox};

/// The service's error: an SDK error, answered as the service's own status.
struct Upstream(ApiError);

impl IntoResponse for Upstream {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = match e.kind() {
            ErrorKind::InvalidInput { .. } | ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::DailyLimit | ErrorKind::RateLimited { .. } | ErrorKind::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            // Our credentials, our permissions, or Comm100 misbehaving: not the caller's fault.
            _ => StatusCode::BAD_GATEWAY,
        };
        // One line with the operation, status, code and message; no secret is ever in it.
        tracing::warn!(error = %e, kind = ?e.kind(), outcome = %e.outcome(), "comm100 call failed");
        let mut response =
            (status, Json(serde_json::json!({"error": e.message()}))).into_response();
        if let Some(wait) = e.retry_after().filter(|_| e.is_retryable()) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
        }
        response
    }
}

impl From<ApiError> for Upstream {
    fn from(e: ApiError) -> Self {
        Upstream(e)
    }
}

async fn segment(
    State(c100): State<Comm100>,
    Path(id): Path<Uuid>,
) -> Result<Json<types::CustomerSegment>, Upstream> {
    Ok(Json(
        c100.client().get_customer_segment().id(id).call().await?,
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder()
        .segment(
            10000,
            serde_json::json!({"name": "VIP",
            "conditions": [{"field": "CurrentPageUrl", "operator": "contains", "value": "/vip"}]}),
        )
        .start()
        .await?;
    let controls = sandbox.controls();
    let id = controls.segments(10000)[0].id;
    let c100 = Comm100::builder()
        .urls(sandbox.portal_url(), sandbox.api_url())
        .password_login(
            comm100_sandbox::DEFAULT_EMAIL,
            comm100_sandbox::DEFAULT_PASSWORD,
            10000,
        )
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(1)),
        )
        .build()?;
    let app = Router::new()
        .route("/segments/{id}", get(segment))
        .with_state(c100);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    // Each fault meets as many requests as the client sends for it: a `Retry-After` over the
    // cap is not waited, and a 503 is tried twice.
    let faults: [(&str, usize, Option<Fault>); 5] = [
        ("none", 0, None),
        (
            "429 with Retry-After: 60",
            1,
            Some(Fault::RateLimited {
                retry_after: "60".into(),
            }),
        ),
        ("503, twice", 2, Some(Fault::Status(503))),
        ("403", 1, Some(Fault::Status(403))),
        ("a missing segment", 0, None),
    ];
    for (name, times, fault) in faults {
        if let Some(fault) = fault {
            controls.fail_next(times, fault, Some(Route::Get));
        }
        let path = if name == "a missing segment" {
            Uuid::new_v4()
        } else {
            id
        };
        let answer = http
            .get(format!("http://{addr}/segments/{path}"))
            .send()
            .await?;
        let retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
        println!(
            "{name:<26} -> {} retry-after={retry_after:?} {}",
            answer.status(),
            answer.text().await?
        );
    }
    Ok(())
}
