//! The admin routes under `/__sandbox/`, which drive the same controls as [`crate::Controls`]
//! for a sandbox run as a binary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::server::{error_response, is_token_path};
use crate::state::{DailyLimit, Inner, PendingFault};
use crate::{Fault, Route};

pub(crate) fn router() -> Router<Arc<Inner>> {
    Router::new()
        .route("/__sandbox/faults", post(faults))
        .route("/__sandbox/latency", post(latency))
        .route("/__sandbox/revoke", post(revoke))
        .route("/__sandbox/token-lifetime", post(token_lifetime))
        .route("/__sandbox/daily-limit", post(daily_limit))
        .route("/__sandbox/forward-compat", post(forward_compat))
        .route("/__sandbox/agents", post(agents))
        .route("/__sandbox/requests", get(requests).delete(clear_requests))
        .route("/__sandbox/segments/{site}", get(segments))
        .route("/__sandbox/stats", get(stats))
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("The admin request body is not valid: {e}."))
}

fn bad(message: String) -> Response<Body> {
    error_response(StatusCode::BAD_REQUEST, message)
}

fn done() -> Response<Body> {
    StatusCode::NO_CONTENT.into_response()
}

fn default_n() -> usize {
    1
}

#[derive(Deserialize)]
struct FaultsBody {
    #[serde(default = "default_n")]
    n: usize,
    fault: Fault,
    #[serde(default)]
    route: Option<Route>,
}

async fn faults(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    let b: FaultsBody = match body(&bytes) {
        Ok(b) => b,
        Err(m) => return bad(m),
    };
    if let Fault::RateLimited { retry_after } = &b.fault
        && axum::http::HeaderValue::from_str(retry_after).is_err()
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            "The field 'retry_after' is not a valid header value.",
        );
    }
    if b.n > 0 {
        inner.state().faults.push_back(PendingFault {
            remaining: b.n,
            fault: b.fault,
            route: b.route,
        });
    }
    done()
}

#[derive(Deserialize)]
struct LatencyBody {
    ms: Option<u64>,
}

async fn latency(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    match body::<LatencyBody>(&bytes) {
        Ok(b) => {
            inner.state().latency = b.ms.map(Duration::from_millis);
            done()
        }
        Err(m) => bad(m),
    }
}

async fn revoke(State(inner): State<Arc<Inner>>) -> Response<Body> {
    inner.state().live_tokens.clear();
    done()
}

#[derive(Deserialize)]
struct LifetimeBody {
    secs: u64,
}

async fn token_lifetime(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    match body::<LifetimeBody>(&bytes) {
        Ok(b) => {
            inner.state().token_lifetime = Duration::from_secs(b.secs);
            done()
        }
        Err(m) => bad(m),
    }
}

#[derive(Deserialize)]
struct DailyLimitBody {
    limit: Option<u64>,
}

async fn daily_limit(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    match body::<DailyLimitBody>(&bytes) {
        Ok(b) => {
            inner.state().daily = b.limit.map(|limit| DailyLimit { limit, used: 0 });
            done()
        }
        Err(m) => bad(m),
    }
}

#[derive(Deserialize)]
struct ForwardCompatBody {
    on: bool,
}

async fn forward_compat(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    match body::<ForwardCompatBody>(&bytes) {
        Ok(b) => {
            inner.state().forward_compat = b.on;
            done()
        }
        Err(m) => bad(m),
    }
}

#[derive(Deserialize)]
struct AgentBody {
    email: String,
    password: String,
    site_id: i64,
}

async fn agents(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    match body::<AgentBody>(&bytes) {
        Ok(b) => {
            inner.state().add_agent(&b.email, &b.password, b.site_id);
            done()
        }
        Err(m) => bad(m),
    }
}

async fn requests(State(inner): State<Arc<Inner>>) -> Response<Body> {
    let log = inner.log().clone();
    axum::Json(log).into_response()
}

async fn clear_requests(State(inner): State<Arc<Inner>>) -> Response<Body> {
    inner.log().clear();
    inner.log_len.send_replace(0);
    done()
}

async fn segments(State(inner): State<Arc<Inner>>, Path(site): Path<String>) -> Response<Body> {
    let Ok(site) = site.parse::<i64>() else {
        return error_response(StatusCode::BAD_REQUEST, "The site id must be an integer.");
    };
    let segments: Vec<serde_json::Value> = inner
        .state()
        .sorted_segments(site)
        .iter()
        .map(|s| serde_json::to_value(s).expect("a segment serialises"))
        .collect();
    axum::Json(segments).into_response()
}

async fn stats(State(inner): State<Arc<Inner>>) -> Response<Body> {
    let (requests, token_requests) = {
        let log = inner.log();
        let tokens = log
            .iter()
            .filter(|r| r.route == Some(Route::Token) || is_token_path(&r.path))
            .count();
        (log.len(), tokens)
    };
    axum::Json(json!({
        "faults_injected": inner.faults_injected.load(Ordering::SeqCst),
        "token_requests": token_requests,
        "requests": requests,
    }))
    .into_response()
}
