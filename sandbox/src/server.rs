//! The server: connections served with hyper-util, and the router, which puts the API routes
//! ([`crate::api`]) and the admin routes ([`crate::admin`]) together; every API request goes
//! through the faults and modes ([`crate::inject`]).
//!
//! Connections are served by hand (not by `axum::serve`) so that the service can return an
//! error, which makes hyper close the connection without a response (see [`crate::inject`]).
//! Each connection also knows whether a streamed fault body is open on it, to be dropped rather
//! than drained when the sandbox stops (see [`crate::stream`]).
//!
//! Every response gets a `Date` header on the sandbox's clock (the real time plus the clock
//! offset). Hyper adds its own `Date` only when a response has none, so the sandbox's stays.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header, request};
use axum::response::IntoResponse;
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::MAX_BODY;
use crate::http::{DropConnection, error_response, is_admin_path, stopped};
use crate::inject::{self, Conn};
use crate::limits::LONGEST_WAIT;
use crate::state::Inner;
use crate::stream::OpenStreams;
use crate::{admin, api};

/// Accepts connections until `stop` turns true, then lets open connections finish.
pub(crate) async fn serve(
    listener: TcpListener,
    inner: Arc<Inner>,
    mut stop: watch::Receiver<bool>,
) {
    let router = router(inner.clone());
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(inner.limits.header_timeout.min(LONGEST_WAIT));
    // A connection holds a permit until it closes; with none left, the listener is not polled
    // and new connections wait in the kernel's queue.
    let permits = Arc::new(Semaphore::new(
        inner.limits.connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept(), if permits.available_permits() > 0 => {
                let (stream, peer) = match accepted {
                    Ok((stream, peer)) => {
                        // As servers do: without it, small HTTP/2 frames wait for the
                        // client's delayed ACK (40 ms on Linux).
                        let _ = stream.set_nodelay(true);
                        (stream, peer.ip())
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let permit = permits
                    .clone()
                    .try_acquire_owned()
                    .expect("a permit is free: only this loop takes them");
                let id = inner.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let inner = inner.clone();
                let router = router.clone();
                let builder = builder.clone();
                let mut stop = stop.clone();
                let handler_stop = stop.clone();
                let streams = OpenStreams::default();
                let handler_streams = streams.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    let service = hyper::service::service_fn(move |req| {
                        let conn = Conn {
                            id,
                            peer,
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

/// One request, answered with the sandbox's `Date`.
async fn handle(
    inner: Arc<Inner>,
    router: Router,
    conn: Conn,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let mut response = respond(&inner, router, conn, req).await?;
    let date = HeaderValue::from_str(&inner.http_date()).expect("an HTTP date is a header value");
    response.headers_mut().insert(header::DATE, date);
    Ok(response)
}

/// One request: refused when it names another host, or is an admin request its owner did not
/// send; else its body read, within the limits, and the request served.
async fn respond(
    inner: &Inner,
    router: Router,
    conn: Conn,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = req.into_parts();
    if let Some(refusal) = misdirected(inner, &parts) {
        return Ok(refusal);
    }
    let admin = is_admin_path(parts.uri.path());
    if admin && let Some(refusal) = admin::refusal(inner, &parts) {
        return Ok(refusal);
    }
    let read = Limited::new(body, MAX_BODY).collect();
    let timeout = inner.limits.body_timeout.min(LONGEST_WAIT);
    let bytes = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Err(_) => {
            tracing::debug!(path = parts.uri.path(), "a request body took too long");
            let mut response = error_response(
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not come in time.",
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(response);
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "could not read a request body");
            return Ok(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body could not be read or is too large.",
            ));
        }
    };
    if admin {
        let req = Request::from_parts(parts, Body::from(bytes));
        return Ok(router.oneshot(req).await.into_response());
    }
    inject::handle_request(inner, router, conn, parts, bytes).await
}

/// A `421` for a request whose host (`Host`, or the `:authority` of HTTP/2) is not the
/// sandbox's own address: what a web page gets when it reaches the sandbox by rebinding a name
/// of its own to 127.0.0.1.
fn misdirected(inner: &Inner, parts: &request::Parts) -> Option<Response<Body>> {
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| parts.headers.get(header::HOST)?.to_str().ok());
    let own = host.is_some_and(|host| {
        inner
            .own_hosts
            .iter()
            .any(|own| own.eq_ignore_ascii_case(host))
    });
    (!own).then(|| {
        tracing::info!(
            host = host.unwrap_or_default(),
            "a request for another host refused"
        );
        error_response(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "The sandbox answers only requests for {} or {}.",
                inner.own_hosts[0], inner.own_hosts[1]
            ),
        )
    })
}

/// The API routes and the admin routes; any other path is a JSON `404`.
fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .merge(api::router())
        .merge(admin::router())
        .fallback(api::not_found)
        .with_state(inner)
}
