//! The faults and modes, applied to an API request around the router: queued faults, latency,
//! the token host, the daily limit, other successes, gzip, and the request log.
//!
//! Hyper closes the connection without a response when the service returns an error: that is
//! how the two "drop" faults are made, and how a held request (a silent or slow token host, a
//! hang) ends when the sandbox stops.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header, request};
use axum::response::IntoResponse;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::http::{
    DropConnection, accepts_gzip, bearer, classify, error_response, gzip_response, is_token_path,
    normalise_error, reason, redact_password, redacted_headers, set_retry_after, status_or_500,
    stopped,
};
use crate::log::LogSlot;
use crate::ratelimit::retry_after_secs;
use crate::state::Inner;
use crate::stream::{self, OpenStreams};
use crate::{BODY_KEPT, DAILY_LIMIT_MESSAGE, Fault, OddBody, RequestRecord, Route, TokenHost, jwt};

/// What the requests of one connection share with the connection's task.
#[derive(Clone)]
pub(crate) struct Conn {
    /// The connection's number, from 1 in the order of acceptance.
    pub(crate) id: u64,
    /// The client's address.
    pub(crate) peer: std::net::IpAddr,
    /// The stop signal.
    pub(crate) stop: watch::Receiver<bool>,
    /// The streamed fault bodies open on the connection.
    pub(crate) streams: OpenStreams,
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
    let token = is_token_path(&record.path);
    inner.record(record, token);
    stopped(stop).await;
    DropConnection
}

/// The answer of a [`TokenHost::Refusing`] token host.
fn refusal(status: u16, message: &str, retry_after: Option<&str>) -> Response<Body> {
    let mut response = error_response(status_or_500(status), message);
    if let Some(value) = retry_after {
        set_retry_after(&mut response, value);
    }
    response
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

/// What the log keeps of a request body: its first [`BODY_KEPT`] bytes, copied so that the
/// whole body is freed with the request; on a token path, the JSON with its password redacted,
/// or nothing.
fn kept_body(bytes: &Bytes, token_path: bool) -> Vec<u8> {
    if !token_path {
        return bytes[..bytes.len().min(BODY_KEPT)].to_vec();
    }
    if bytes.len() > BODY_KEPT {
        return Vec::new();
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut json) => {
            redact_password(&mut json);
            serde_json::to_vec(&json).unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

/// One request, through the fault layer, the token host mode, the router, and into the log.
pub(crate) async fn handle_request(
    inner: &Inner,
    router: Router,
    conn: Conn,
    parts: request::Parts,
    bytes: Bytes,
) -> Result<Response<Body>, DropConnection> {
    let Conn {
        id: connection,
        peer,
        mut stop,
        streams,
    } = conn;
    let path = parts.uri.path().to_owned();
    let route = classify(&parts.method, &path);
    let token = bearer(&parts.headers);
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        path: path.clone(),
        status: None,
        route,
        token_jti: token.flatten().and_then(jwt::peek_jti),
        had_token: matches!(token, Some(Some(_))),
        headers: redacted_headers(&parts.headers),
        body: kept_body(&bytes, is_token_path(&path)),
        body_len: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        body_cut: bytes.len() > BODY_KEPT,
        fault: None,
        connection,
        version: format!("{:?}", parts.version),
        gzip: false,
    };
    let gzip = inner.state().gzip && accepts_gzip(&parts.headers);

    // The rate limit comes first, as a gateway in front of the API would: a request it refuses
    // takes no fault.
    let (latency, limited, fault) = {
        let mut state = inner.state();
        let limited = state
            .rate_limit
            .as_mut()
            .and_then(|buckets| buckets.take(peer, inner.now_millis()).err());
        let fault = limited.is_none().then(|| state.take_fault(route)).flatten();
        (state.latency, limited, fault)
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
            inner.record(record, is_token_path(&path));
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

    // A request the rate limit refused met no fault.
    let early = limited.map(rate_limited).or(early);

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
                    arrival = Some(inner.record(record.clone(), true));
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

/// The answer of the rate-limit mode to a request that found its bucket empty, the next token
/// `wait` away.
fn rate_limited(wait: std::time::Duration) -> Response<Body> {
    let secs = retry_after_secs(wait);
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many requests from this address; retry after {secs} seconds."),
    );
    set_retry_after(&mut response, &secs.to_string());
    response
}

/// Logs a request that is over: sets the status of its record if it was logged on arrival,
/// else appends it.
fn log_final(inner: &Inner, arrival: Option<LogSlot>, record: RequestRecord) {
    match arrival {
        Some(slot) => inner.set_status(slot, record.status),
        None => {
            let token = is_token_path(&record.path);
            inner.record(record, token);
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
