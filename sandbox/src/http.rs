//! What the HTTP modules share, below all of them: the paths and what they name, the JSON
//! error body, reason phrases, headers (bearer tokens, redaction, `Retry-After`), the error
//! responses' schema, and the gzip encoding.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::Route;

/// Whether a path is under the admin routes, `/__sandbox/`.
pub(crate) fn is_admin_path(path: &str) -> bool {
    path == "/__sandbox" || path.starts_with("/__sandbox/")
}

/// The token path on the control-panel base.
pub(crate) const TOKEN_PATH: &str = "/adminwebservice/api/jwttoken/generate";

/// The token path under the API base, for tools that take a single base URL.
pub(crate) const TOKEN_PATH_API: &str = "/api/v3/adminwebservice/api/jwttoken/generate";

pub(crate) const SEGMENTS_PATH: &str = "/api/v3/livechat/customerSegments";

/// The error a service returns to make hyper close the connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose by the sandbox")]
pub(crate) struct DropConnection;

/// Whether a path is one of the token paths.
pub(crate) fn is_token_path(path: &str) -> bool {
    path == TOKEN_PATH || path == TOKEN_PATH_API
}

/// The operation a request goes to, if any.
pub(crate) fn classify(method: &Method, path: &str) -> Option<Route> {
    if is_token_path(path) {
        return (method == Method::POST).then_some(Route::Token);
    }
    if path == SEGMENTS_PATH {
        return match *method {
            Method::GET => Some(Route::List),
            Method::POST => Some(Route::Create),
            _ => None,
        };
    }
    let id = path.strip_prefix(SEGMENTS_PATH)?.strip_prefix('/')?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    match *method {
        Method::GET => Some(Route::Get),
        Method::PUT => Some(Route::Update),
        Method::DELETE => Some(Route::Delete),
        _ => None,
    }
}

/// Resolves when the stop signal is raised (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The JSON error body Comm100 sends: `{"code": status * 1000, "message": ...}`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let code = i64::from(status.as_u16()) * 1000;
    let body = json!({ "code": code, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

/// Sets `Retry-After`; a value that is not a valid header value is sent as `1`.
pub(crate) fn set_retry_after(response: &mut Response<Body>, value: &str) {
    let value = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("1"));
    response.headers_mut().insert(header::RETRY_AFTER, value);
}

pub(crate) fn status_or_500(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub(crate) fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

pub(crate) fn redacted_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = if name == header::AUTHORIZATION {
                "<redacted>".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// The bearer token of a request: `Some(None)` when there is an `Authorization` header that is
/// not a bearer token, `None` when there is none.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<Option<&str>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let value = value.to_str().ok();
    Some(value.and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }))
}

pub(crate) fn redact_password(body: &mut Value) {
    if let Value::Object(obj) = body {
        for (key, value) in obj.iter_mut() {
            if key.eq_ignore_ascii_case("password") {
                *value = Value::from("<redacted>");
            }
        }
    }
}

/// Gives every error response the JSON error schema, e.g. axum's own `405` (keeping its
/// `Allow` header) or a path rejection in plain text.
pub(crate) async fn normalise_error(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = body
        .collect()
        .await
        .map(|c| String::from_utf8_lossy(&c.to_bytes()).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        reason(status).to_owned()
    } else {
        text
    };
    let mut fixed = error_response(status, message);
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            fixed.headers_mut().insert(name, value.clone());
        }
    }
    fixed
}

/// Whether an `Accept-Encoding` header allows gzip: it names `gzip` (or `x-gzip`) with a
/// q-value above 0, or, when it does not name gzip at all, `*` with a q-value above 0. A
/// q-value that is not a number counts as 0.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    let items = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for item in items {
        let mut params = item.split(';');
        let coding = params.next().unwrap_or_default().trim();
        let q = params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q > 0.0);
        } else if coding == "*" {
            any = Some(q > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// The response gzip-encoded, and whether it was: one that has no body (a `204`, an empty
/// body) or is already encoded goes out as it is.
pub(crate) async fn gzip_response(response: Response<Body>) -> (Response<Body>, bool) {
    if response.status() == StatusCode::NO_CONTENT
        || response.status() == StatusCode::NOT_MODIFIED
        || response.headers().contains_key(header::CONTENT_ENCODING)
    {
        return (response, false);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::debug!(%error, "could not read a response body to encode it");
            return (Response::from_parts(parts, Body::empty()), false);
        }
    };
    if bytes.is_empty() {
        return (Response::from_parts(parts, Body::from(bytes)), false);
    }
    // Compressing megabytes takes milliseconds: off the connection's task.
    let plain = bytes.clone();
    let encoded = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain.len() / 4),
            flate2::Compression::default(),
        );
        encoder.write_all(&plain)?;
        encoder.finish()
    })
    .await;
    let encoded = match encoded {
        Ok(Ok(encoded)) => encoded,
        // Only when the runtime is shutting down: the body goes out as it is.
        Ok(Err(_)) | Err(_) => return (Response::from_parts(parts, Body::from(bytes)), false),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    (Response::from_parts(parts, Body::from(encoded)), true)
}
