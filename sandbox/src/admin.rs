//! The admin routes under `/__sandbox/`, which drive the same controls as [`crate::Controls`]
//! for a sandbox run as a binary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, Response, StatusCode, header, request};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::http::{bearer, error_response};
use crate::ratelimit::Buckets;
use crate::state::{DailyLimit, Inner, PendingFault};
use crate::{Fault, RateLimit, RequestRecord, Route, TokenHost};

/// Why an admin request is refused, if it is: one from a web page (it carries `Origin`,
/// `403`), one without the admin token when the sandbox has one (`401`), or a `POST` whose body
/// is not declared JSON (`415`: a page can send a form or plain text without asking first, but
/// not JSON, so that browsers' CORS rules, which the sandbox never relaxes, stop it).
pub(crate) fn refusal(inner: &Inner, parts: &request::Parts) -> Option<Response<Body>> {
    let headers = &parts.headers;
    if headers.contains_key(header::ORIGIN) {
        return Some(error_response(
            StatusCode::FORBIDDEN,
            "The admin routes refuse requests with an Origin header: they come from web pages.",
        ));
    }
    if let Some(token) = &inner.admin_token
        && !bearer(headers).flatten().is_some_and(|t| token.matches(t))
    {
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            "The admin routes require the sandbox's admin token: 'Authorization: Bearer <token>'.",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Some(response);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    (parts.method == Method::POST && !json).then(|| {
        error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "An admin POST must be sent as 'Content-Type: application/json', which a web page \
             cannot send without the browser asking first.",
        )
    })
}

pub(crate) fn router() -> Router<Arc<Inner>> {
    Router::new()
        .route("/__sandbox/faults", post(faults))
        .route("/__sandbox/latency", post(latency))
        .route("/__sandbox/revoke", post(revoke))
        .route("/__sandbox/token-lifetime", post(token_lifetime))
        .route("/__sandbox/daily-limit", post(daily_limit))
        .route("/__sandbox/rate-limit", post(rate_limit))
        .route("/__sandbox/forward-compat", post(forward_compat))
        .route("/__sandbox/gzip", post(gzip))
        .route("/__sandbox/agents", get(agents_list).post(agents))
        .route("/__sandbox/requests", get(requests).delete(clear_requests))
        .route(
            "/__sandbox/segments/{site}",
            get(segments).post(insert_segment),
        )
        .route("/__sandbox/odd-segments/{site}", post(odd_segments))
        .route("/__sandbox/stats", get(stats))
        .route("/__sandbox/reset", post(reset))
        .route("/__sandbox/clock-offset", post(clock_offset))
        .route("/__sandbox/token-host", post(token_host))
        .route("/__sandbox/refuse-tokens", post(refuse_tokens))
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

/// Parses the body as `T` and applies it: `204`, or `400` when the body is not valid.
fn apply<T: DeserializeOwned>(bytes: &Bytes, f: impl FnOnce(T)) -> Response<Body> {
    match body::<T>(bytes) {
        Ok(b) => {
            f(b);
            done()
        }
        Err(m) => bad(m),
    }
}

/// A `400` when a `Retry-After` value is not a valid header value.
fn bad_retry_after(value: &str) -> Option<Response<Body>> {
    axum::http::HeaderValue::from_str(value)
        .is_err()
        .then(|| bad("The field 'retry_after' is not a valid header value.".to_owned()))
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

/// A `400` for a fault the admin route refuses: a `Retry-After` that is not a valid header
/// value, or another success whose status is not a `2xx`.
fn bad_fault(fault: &Fault) -> Option<Response<Body>> {
    match fault {
        Fault::RateLimited { retry_after } => bad_retry_after(retry_after),
        Fault::AltSuccess { status, .. } if !(200..=299).contains(status) => Some(bad(format!(
            "The field 'status' of 'alt_success' must be from 200 to 299: {status}."
        ))),
        Fault::Redirect {
            status, location, ..
        } => bad_redirect(*status, location.as_deref()),
        _ => None,
    }
}

/// A `400` for a redirect the admin routes refuse: a status outside `300..=399`, or a
/// `Location` that is not a valid header value.
fn bad_redirect(status: u16, location: Option<&str>) -> Option<Response<Body>> {
    if !(300..=399).contains(&status) {
        return Some(bad(format!(
            "The field 'status' of 'redirect' must be from 300 to 399: {status}."
        )));
    }
    location
        .filter(|l| axum::http::HeaderValue::from_str(l).is_err())
        .map(|_| bad("The field 'location' is not a valid header value.".to_owned()))
}

async fn faults(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    let b: FaultsBody = match body(&bytes) {
        Ok(b) => b,
        Err(m) => return bad(m),
    };
    if let Some(response) = bad_fault(&b.fault) {
        return response;
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
    apply(&bytes, |b: LatencyBody| {
        inner.state().latency = b.ms.map(Duration::from_millis);
    })
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
    apply(&bytes, |b: LifetimeBody| {
        inner.state().token_lifetime = Duration::from_secs(b.secs);
    })
}

#[derive(Deserialize)]
struct DailyLimitBody {
    limit: Option<u64>,
}

async fn daily_limit(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    apply(&bytes, |b: DailyLimitBody| {
        inner.state().daily = b.limit.map(|limit| DailyLimit { limit, used: 0 });
    })
}

/// `POST /__sandbox/rate-limit`: [`crate::Controls::set_rate_limit`], with a [`RateLimit`] or
/// `null`.
async fn rate_limit(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    apply(&bytes, |limit: Option<RateLimit>| {
        inner.state().rate_limit = limit.map(Buckets::new);
    })
}

/// `{"on": true}`, for the modes that are on or off.
#[derive(Deserialize)]
struct OnBody {
    on: bool,
}

async fn forward_compat(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    apply(&bytes, |b: OnBody| inner.state().forward_compat = b.on)
}

async fn gzip(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    apply(&bytes, |b: OnBody| inner.state().gzip = b.on)
}

#[derive(Deserialize)]
struct AgentBody {
    email: String,
    password: String,
    site_id: i64,
}

async fn agents(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    apply(&bytes, |b: AgentBody| {
        inner.state().add_agent(&b.email, &b.password, b.site_id);
    })
}

async fn requests(State(inner): State<Arc<Inner>>) -> Response<Body> {
    let log = inner.log();
    let records: Vec<&RequestRecord> = log.records().collect();
    axum::Json(records).into_response()
}

async fn clear_requests(State(inner): State<Arc<Inner>>) -> Response<Body> {
    inner.clear_log();
    done()
}

/// The site a path names, or the message of a `400`.
fn site_id(site: &str) -> Result<i64, String> {
    site.parse()
        .map_err(|_| "The site id must be an integer.".to_owned())
}

async fn segments(State(inner): State<Arc<Inner>>, Path(site): Path<String>) -> Response<Body> {
    match site_id(&site) {
        Ok(site) => axum::Json(inner.state().segments_json(site)).into_response(),
        Err(m) => bad(m),
    }
}

/// `POST /__sandbox/segments/{site}`: [`crate::Controls::insert_raw_segment`]; `{"id": ".."}`.
async fn insert_segment(
    State(inner): State<Arc<Inner>>,
    Path(site): Path<String>,
    bytes: Bytes,
) -> Response<Body> {
    let site = match site_id(&site) {
        Ok(site) => site,
        Err(m) => return bad(m),
    };
    let record: serde_json::Map<String, serde_json::Value> = match body(&bytes) {
        Ok(record) => record,
        Err(m) => return bad(m),
    };
    let id = inner.state().insert_raw(site, record);
    axum::Json(json!({ "id": id })).into_response()
}

/// `POST /__sandbox/odd-segments/{site}`: [`crate::Controls::seed_odd_segments`];
/// `{"ids": [..]}`.
async fn odd_segments(State(inner): State<Arc<Inner>>, Path(site): Path<String>) -> Response<Body> {
    match site_id(&site) {
        Ok(site) => axum::Json(json!({ "ids": inner.state().seed_odd(site) })).into_response(),
        Err(m) => bad(m),
    }
}

async fn stats(State(inner): State<Arc<Inner>>) -> Response<Body> {
    axum::Json(inner.stats()).into_response()
}

/// `GET /__sandbox/agents`: [`crate::Controls::agents`].
async fn agents_list(State(inner): State<Arc<Inner>>) -> Response<Body> {
    axum::Json(inner.state().agent_records()).into_response()
}

/// `POST /__sandbox/reset`: [`crate::Controls::reset`].
async fn reset(State(inner): State<Arc<Inner>>) -> Response<Body> {
    inner.reset();
    done()
}

#[derive(Deserialize)]
struct ClockOffsetBody {
    secs: i64,
}

async fn clock_offset(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    apply(&bytes, |b: ClockOffsetBody| {
        inner.clock_offset.store(b.secs, Ordering::SeqCst);
    })
}

async fn token_host(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    let host: TokenHost = match body(&bytes) {
        Ok(host) => host,
        Err(m) => return bad(m),
    };
    if let TokenHost::Refusing {
        status,
        retry_after,
        ..
    } = &host
    {
        if StatusCode::from_u16(*status).is_err() {
            return bad(format!(
                "The field 'status' is not an HTTP status: {status}."
            ));
        }
        if let Some(value) = retry_after
            && let Some(response) = bad_retry_after(value)
        {
            return response;
        }
    }
    if let TokenHost::Redirect { status, location } = &host
        && let Some(response) = bad_redirect(*status, location.as_deref())
    {
        return response;
    }
    inner.state().token_host = host;
    done()
}

async fn refuse_tokens(State(inner): State<Arc<Inner>>, bytes: Bytes) -> Response<Body> {
    apply(&bytes, |b: OnBody| inner.state().refuse_valid_tokens = b.on)
}
