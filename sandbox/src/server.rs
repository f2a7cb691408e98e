//! The HTTP side: connections served with hyper-util, the fault layer, and the API handlers.
//!
//! Connections are served by hand (not by `axum::serve`) so that the service can return an
//! error, which makes hyper close the connection without a response: that is how the two
//! "drop" faults are made, and how a held request (a silent or slow token host, a hang) ends
//! when the sandbox stops. Each connection also knows whether a streamed fault body is open on
//! it, to be dropped rather than drained when the sandbox stops (see [`crate::stream`]).
//!
//! Every response gets a `Date` header on the sandbox's clock (the real time plus the clock
//! offset). Hyper adds its own `Date` only when a response has none, so the sandbox's stays.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::segments::{self, parse_segment, parse_uuid};
use crate::state::{Inner, LogSlot};
use crate::stream::{self, OpenStreams};
use crate::{
    DAILY_LIMIT_MESSAGE, Fault, OddBody, REFUSED_TOKEN_MESSAGE, RequestRecord, Route, TokenHost,
    jwt,
};

/// The token path on the control-panel base.
pub(crate) const TOKEN_PATH: &str = "/adminwebservice/api/jwttoken/generate";
/// The token path under the API base, for tools that take a single base URL.
pub(crate) const TOKEN_PATH_API: &str = "/api/v3/adminwebservice/api/jwttoken/generate";
const SEGMENTS_PATH: &str = "/api/v3/livechat/customerSegments";
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The error a service returns to make hyper close the connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose by the sandbox")]
pub(crate) struct DropConnection;

/// Whether a path is one of the token paths.
pub(crate) fn is_token_path(path: &str) -> bool {
    path == TOKEN_PATH || path == TOKEN_PATH_API
}

/// The operation a request goes to, if any.
fn classify(method: &Method, path: &str) -> Option<Route> {
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

/// Accepts connections until `stop` turns true, then lets open connections finish.
pub(crate) async fn serve(
    listener: TcpListener,
    inner: Arc<Inner>,
    mut stop: watch::Receiver<bool>,
) {
    let router = router(inner.clone());
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => {
                        // As servers do: without it, small HTTP/2 frames wait for the
                        // client's delayed ACK (40 ms on Linux).
                        let _ = stream.set_nodelay(true);
                        stream
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let id = inner.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let inner = inner.clone();
                let router = router.clone();
                let builder = builder.clone();
                let mut stop = stop.clone();
                let handler_stop = stop.clone();
                let streams = OpenStreams::default();
                let handler_streams = streams.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let conn = Conn {
                            id,
                            stop: handler_stop.clone(),
                            streams: handler_streams.clone(),
                        };
                        handle(inner.clone(), router.clone(), conn, req)
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        result = conn.as_mut() => {
                            if let Err(error) = result {
                                tracing::debug!(%error, "connection ended with an error");
                            }
                        }
                        // A connection with a streamed fault body open is dropped, not
                        // drained: the body could go on for ever, and over HTTP/2 a stream the
                        // client does not read stalls on flow control, where hyper no longer
                        // polls the body to see the stop.
                        () = stopped(&mut stop) => {
                            if !streams.any() {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
    inner.stopped.send_replace(true);
    tracing::info!("comm100 sandbox stopped");
}

/// Resolves when the stop signal is raised (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// What the requests of one connection share with the connection's task.
#[derive(Clone)]
struct Conn {
    /// The connection's number, from 1 in the order of acceptance.
    id: u64,
    /// The stop signal.
    stop: watch::Receiver<bool>,
    /// The streamed fault bodies open on the connection.
    streams: OpenStreams,
}

/// Holds a request without an answer: logs it now, on arrival, waits for the stop signal, then
/// closes the connection without a response. How a silent token host and [`Fault::Hang`] hold
/// their requests.
async fn hold(
    inner: &Inner,
    record: RequestRecord,
    stop: &mut watch::Receiver<bool>,
    why: &str,
) -> DropConnection {
    tracing::info!(method = %record.method, path = %record.path, "{why}: holding the request");
    inner.record(record);
    stopped(stop).await;
    DropConnection
}

/// The JSON error body Comm100 sends: `{"code": status * 1000, "message": ...}`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let code = i64::from(status.as_u16()) * 1000;
    let body = json!({ "code": code, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

/// Sets `Retry-After`; a value that is not a valid header value is sent as `1`.
fn set_retry_after(response: &mut Response<Body>, value: &str) {
    let value = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("1"));
    response.headers_mut().insert(header::RETRY_AFTER, value);
}

/// The answer of a [`TokenHost::Refusing`] token host.
fn refusal(status: u16, message: &str, retry_after: Option<&str>) -> Response<Body> {
    let mut response = error_response(status_or_500(status), message);
    if let Some(value) = retry_after {
        set_retry_after(&mut response, value);
    }
    response
}

fn status_or_500(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub(crate) fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

fn odd_response(status: u16, body: OddBody) -> Response<Body> {
    let status = status_or_500(status);
    let code = u32::from(status.as_u16()) * 1000;
    let mut response = match body {
        OddBody::Relaxed => {
            let text = format!(
                "{{ code: {code}, message: \"Injected fault: {} {}\" }}",
                status.as_u16(),
                reason(status)
            );
            let mut r = Response::new(Body::from(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
        OddBody::Html => {
            let text = format!(
                "<!DOCTYPE html>\n<html><head><title>{s} {r}</title></head>\n<body><h1>{s} {r}</h1><p>The server could not handle the request.</p></body></html>\n",
                s = status.as_u16(),
                r = reason(status)
            );
            let mut r = Response::new(Body::from(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        OddBody::Empty => Response::new(Body::empty()),
    };
    *response.status_mut() = status;
    response
}

fn redacted_headers(headers: &HeaderMap) -> Vec<(String, String)> {
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
fn bearer(headers: &HeaderMap) -> Option<Option<&str>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let value = value.to_str().ok();
    Some(value.and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }))
}

fn redact_password(body: &mut Value) {
    if let Value::Object(obj) = body {
        for (key, value) in obj.iter_mut() {
            if key.eq_ignore_ascii_case("password") {
                *value = Value::from("<redacted>");
            }
        }
    }
}

/// One request, answered with the sandbox's `Date`.
async fn handle(
    inner: Arc<Inner>,
    router: Router,
    conn: Conn,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let mut response = handle_request(&inner, router, conn, req).await?;
    let date = HeaderValue::from_str(&inner.http_date()).expect("an HTTP date is a header value");
    response.headers_mut().insert(header::DATE, date);
    Ok(response)
}

/// One request, through the fault layer, the token host mode, the router, and into the log.
async fn handle_request(
    inner: &Inner,
    router: Router,
    conn: Conn,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let Conn {
        id: connection,
        mut stop,
        streams,
    } = conn;
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::debug!(%error, "could not read a request body");
            return Ok(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body could not be read or is too large.",
            ));
        }
    };
    let path = parts.uri.path().to_owned();
    if path == "/__sandbox" || path.starts_with("/__sandbox/") {
        let req = Request::from_parts(parts, Body::from(bytes));
        return Ok(router.oneshot(req).await.into_response());
    }

    let route = classify(&parts.method, &path);
    let token = bearer(&parts.headers);
    let mut body_json: Option<Value> = if bytes.is_empty() {
        None
    } else {
        serde_json::from_slice(&bytes).ok()
    };
    if (route == Some(Route::Token) || is_token_path(&path))
        && let Some(b) = body_json.as_mut()
    {
        redact_password(b);
    }
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        path: path.clone(),
        status: None,
        route,
        token_jti: token.flatten().and_then(jwt::peek_jti),
        had_token: matches!(token, Some(Some(_))),
        headers: redacted_headers(&parts.headers),
        body: body_json,
        fault: None,
        connection,
        version: format!("{:?}", parts.version),
        gzip: false,
    };
    let gzip = inner.state().gzip && accepts_gzip(&parts.headers);

    let (latency, fault) = {
        let mut state = inner.state();
        (state.latency, state.take_fault(route))
    };
    if fault.is_some() {
        inner.faults_injected.fetch_add(1, Ordering::SeqCst);
    }
    record.fault = fault.clone();
    if fault == Some(Fault::Hang) {
        return Err(hold(inner, record, &mut stop, "hang").await);
    }
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }

    let early = match &fault {
        Some(Fault::Status(status)) => {
            let status = status_or_500(*status);
            Some(error_response(
                status,
                format!("Injected fault: {} {}", status.as_u16(), reason(status)),
            ))
        }
        Some(Fault::RateLimited { retry_after }) => {
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests; retry later.",
            );
            set_retry_after(&mut response, retry_after);
            Some(response)
        }
        Some(Fault::OddBody { status, body }) => Some(odd_response(*status, *body)),
        Some(Fault::HugeErrorBody { status, bytes }) => Some(stream::huge_error(
            status_or_500(*status),
            *bytes,
            stop.clone(),
            &streams,
        )),
        Some(Fault::DropBeforeHandling) => {
            tracing::info!(method = %record.method, path = %record.path, "dropped before handling");
            inner.record(record);
            return Err(DropConnection);
        }
        Some(Fault::Latency(delay)) => {
            tokio::time::sleep(*delay).await;
            None
        }
        Some(Fault::Redirect {
            status,
            location,
            endless,
        }) => Some(stream::redirect(
            *status,
            location.as_deref(),
            endless.then(|| (stop.clone(), &streams)),
        )),
        Some(
            Fault::DropAfterHandling
            | Fault::EndlessBody
            | Fault::AltSuccess { .. }
            | Fault::Hang
            | Fault::TruncatedBody { .. },
        )
        | None => None,
    };

    // The token host mode, where no fault has answered already. A slow or silent host logs the
    // request now, on arrival; `arrival` then names its record, whose status is set at the end.
    let mut arrival: Option<LogSlot> = None;
    let early = match early {
        None if is_token_path(&path) => {
            let host = inner.state().token_host.clone();
            match host {
                TokenHost::Refusing {
                    status,
                    message,
                    retry_after,
                } => Some(refusal(status, &message, retry_after.as_deref())),
                TokenHost::Slow(delay) => {
                    arrival = Some(inner.record(record.clone()));
                    tokio::select! {
                        () = tokio::time::sleep(delay) => None,
                        () = stopped(&mut stop) => return Err(DropConnection),
                    }
                }
                TokenHost::Silent => {
                    return Err(hold(inner, record, &mut stop, "silent token host").await);
                }
                TokenHost::Redirect { status, location } => {
                    Some(stream::redirect(status, location.as_deref(), None))
                }
                TokenHost::Normal => None,
            }
        }
        early => early,
    };

    let response = match early {
        Some(response) => response,
        None => {
            let over_limit = route != Some(Route::Token) && !is_token_path(&path) && {
                let mut state = inner.state();
                match state.daily.as_mut() {
                    Some(daily) if daily.used >= daily.limit => true,
                    Some(daily) => {
                        daily.used += 1;
                        false
                    }
                    None => false,
                }
            };
            if over_limit {
                error_response(StatusCode::FORBIDDEN, DAILY_LIMIT_MESSAGE)
            } else {
                let req = Request::from_parts(parts, Body::from(bytes));
                let response = router.oneshot(req).await.into_response();
                normalise_error(response).await
            }
        }
    };

    let response = match &fault {
        Some(Fault::EndlessBody) => stream::endless(response, stop, &streams),
        Some(Fault::AltSuccess { status, body }) => alt_success(response, *status, body.as_deref()),
        _ => response,
    };

    if fault == Some(Fault::DropAfterHandling) {
        tracing::info!(method = %record.method, path = %record.path, status = response.status().as_u16(), "handled, then dropped");
        log_final(inner, arrival, record);
        return Err(DropConnection);
    }
    // A streamed body may never end, so it is never encoded.
    let streamed = matches!(
        fault,
        Some(
            Fault::HugeErrorBody { .. }
                | Fault::EndlessBody
                | Fault::Redirect { endless: true, .. }
        )
    );
    let response = if gzip && !streamed {
        let (response, encoded) = gzip_response(response).await;
        record.gzip = encoded;
        response
    } else {
        response
    };
    // Cut last, so that what is cut is the body as it would have gone out, encoded or not.
    let response = match &fault {
        Some(Fault::TruncatedBody { after }) => stream::truncated(response, *after).await,
        _ => response,
    };
    record.status = Some(response.status().as_u16());
    tracing::info!(method = %record.method, path = %record.path, status = response.status().as_u16(), gzip = record.gzip, "request");
    log_final(inner, arrival, record);
    Ok(response)
}

/// Logs a request that is over: sets the status of its record if it was logged on arrival,
/// else appends it.
fn log_final(inner: &Inner, arrival: Option<LogSlot>, record: RequestRecord) {
    match arrival {
        Some(slot) => inner.set_status(slot, record.status),
        None => {
            inner.record(record);
        }
    }
}

/// The answer of a [`Fault::AltSuccess`]: a success gets `status` (`200` when it is not a `2xx`)
/// and loses its `Location`, and its body is replaced by `body`, as plain text, when given. An
/// error is left alone.
fn alt_success(mut response: Response<Body>, status: u16, body: Option<&str>) -> Response<Body> {
    if !response.status().is_success() {
        return response;
    }
    *response.status_mut() = StatusCode::from_u16(status)
        .ok()
        .filter(StatusCode::is_success)
        .unwrap_or(StatusCode::OK);
    response.headers_mut().remove(header::LOCATION);
    if let Some(text) = body {
        let headers = response.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        *response.body_mut() = Body::from(text.to_owned());
    }
    response
}

/// Whether an `Accept-Encoding` header allows gzip: it names `gzip` (or `x-gzip`) with a
/// q-value above 0, or, when it does not name gzip at all, `*` with a q-value above 0. A
/// q-value that is not a number counts as 0.
fn accepts_gzip(headers: &HeaderMap) -> bool {
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
async fn gzip_response(response: Response<Body>) -> (Response<Body>, bool) {
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

/// Gives every error response the JSON error schema, e.g. axum's own `405` (keeping its
/// `Allow` header) or a path rejection in plain text.
async fn normalise_error(response: Response<Body>) -> Response<Body> {
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

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(TOKEN_PATH_API, post(token))
        .route(SEGMENTS_PATH, get(list).post(create))
        .route(
            "/api/v3/livechat/customerSegments/{id}",
            get(get_one).put(update).delete(delete),
        )
        .merge(crate::admin::router())
        .fallback(not_found)
        .with_state(inner)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        format!("No resource at {method} {}.", uri.path()),
    )
}

/// A failed request, answered with the JSON error schema.
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
    fn unauthorized(message: impl Into<String>) -> Self {
        Self(StatusCode::UNAUTHORIZED, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        error_response(self.0, self.1)
    }
}

fn parse_json(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("The request body is required."));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))
}

fn field_str<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match obj.get(key) {
        None => Err(ApiError::bad_request(format!(
            "The field '{key}' is required."
        ))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!(
            "The field '{key}' must be a string."
        ))),
    }
}

/// `POST /adminwebservice/api/jwttoken/generate`.
async fn token(State(inner): State<Arc<Inner>>, body: Bytes) -> Result<Response<Body>, ApiError> {
    let body = parse_json(&body)?;
    let Value::Object(obj) = &body else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        ));
    };
    let login_type = field_str(obj, "LoginType")?;
    if !login_type.eq_ignore_ascii_case("password") {
        return Err(ApiError::bad_request(
            "The field 'LoginType' must be 'Password'.",
        ));
    }
    let username = field_str(obj, "Username")?;
    let password = field_str(obj, "Password")?;
    let site_id = match obj.get("SiteId") {
        None => return Err(ApiError::bad_request("The field 'SiteId' is required.")),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("The field 'SiteId' must be an integer."))?,
    };
    let mut state = inner.state();
    let agent = state
        .agents
        .iter()
        .find(|a| {
            a.site_id == site_id && a.email.eq_ignore_ascii_case(username) && a.password == password
        })
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("Invalid username, password or site id."))?;
    let (token, claims) = jwt::issue(
        &inner.secret,
        agent.id,
        agent.site_id,
        state.token_lifetime,
        &inner.issuer,
        inner.now_secs(),
    );
    state.live_tokens.insert(claims.jti);
    Ok(axum::Json(json!({ "token": token })).into_response())
}

/// The site a request acts on, from its bearer token.
fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<i64, ApiError> {
    let token = match bearer(headers) {
        None => {
            return Err(ApiError::unauthorized(
                "The Authorization header is missing; send 'Authorization: Bearer <token>'.",
            ));
        }
        Some(None) => {
            return Err(ApiError::unauthorized(
                "The Authorization header is not a bearer token.",
            ));
        }
        Some(Some(token)) => token,
    };
    let claims = jwt::verify(&inner.secret, token, inner.now_secs())
        .map_err(|e| ApiError::unauthorized(format!("{}.", capitalise(&e.to_string()))))?;
    {
        let state = inner.state();
        if !state.live_tokens.contains(&claims.jti) {
            return Err(ApiError::unauthorized("The bearer token has been revoked."));
        }
        if state.refuse_valid_tokens {
            return Err(ApiError::unauthorized(REFUSED_TOKEN_MESSAGE));
        }
    }
    claims
        .site_id
        .parse()
        .map_err(|_| ApiError::unauthorized("The bearer token names no site."))
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A stored segment's JSON as the API serves it: as stored, unless the forward-compatibility
/// mode rewrites it.
fn segment_json(inner: &Inner, json: serde_json::Map<String, Value>) -> Value {
    let mut value = Value::Object(json);
    if inner.state().forward_compat {
        segments::forward_compat(&mut value);
    }
    value
}

fn path_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    parse_uuid(id).ok_or_else(|| {
        ApiError::bad_request(format!("The id '{id}' in the path is not a valid uuid."))
    })
}

fn not_found_segment(id: uuid::Uuid) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("The customer segment '{id}' does not exist."),
    )
}

/// `GET /livechat/customerSegments`.
async fn list(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let segments = inner.state().sorted_segments(site);
    let body: Vec<Value> = segments
        .into_iter()
        .map(|s| segment_json(&inner, s.json))
        .collect();
    Ok(axum::Json(body).into_response())
}

/// `GET /livechat/customerSegments/{id}`.
async fn get_one(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let id = path_id(&id)?;
    let segment = inner
        .state()
        .sites
        .get(&site)
        .and_then(|s| s.iter().find(|s| s.id == id).map(|s| s.json.clone()))
        .ok_or_else(|| not_found_segment(id))?;
    Ok(axum::Json(segment_json(&inner, segment)).into_response())
}

/// `POST /livechat/customerSegments`.
async fn create(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let input = parse_segment(parse_json(&body)?).map_err(ApiError::bad_request)?;
    let id = uuid::Uuid::new_v4();
    let segment = {
        let mut state = inner.state();
        let order = input
            .order
            .map_or_else(|| state.next_order(site), i64::from);
        let json = input.into_json(id, order);
        state.store(site, id, order, json.clone());
        json
    };
    let location = format!("{}/livechat/customerSegments/{id}", inner.api_url);
    let mut response = (
        StatusCode::CREATED,
        axum::Json(segment_json(&inner, segment)),
    )
        .into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("a URL is a header value"),
    );
    Ok(response)
}

/// `PUT /livechat/customerSegments/{id}`: replaces the whole segment (unknown fields included)
/// with the body, keeping its id, and its order when the body names none.
async fn update(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let id = path_id(&id)?;
    let input = parse_segment(parse_json(&body)?).map_err(ApiError::bad_request)?;
    let segment = {
        let mut state = inner.state();
        let slot = state
            .sites
            .get_mut(&site)
            .and_then(|s| s.iter_mut().find(|s| s.id == id))
            .ok_or_else(|| not_found_segment(id))?;
        slot.order = input.order.map_or(slot.order, i64::from);
        slot.json = input.into_json(id, slot.order);
        slot.json.clone()
    };
    Ok(axum::Json(segment_json(&inner, segment)).into_response())
}

/// `DELETE /livechat/customerSegments/{id}`.
async fn delete(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let id = path_id(&id)?;
    let mut state = inner.state();
    let segments = state
        .sites
        .get_mut(&site)
        .ok_or_else(|| not_found_segment(id))?;
    let index = segments
        .iter()
        .position(|s| s.id == id)
        .ok_or_else(|| not_found_segment(id))?;
    segments.remove(index);
    Ok(StatusCode::NO_CONTENT.into_response())
}
