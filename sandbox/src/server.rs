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
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::http::{DropConnection, MAX_BODY, error_response, is_admin_path, stopped};
use crate::inject::{self, Conn};
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

/// One request, answered with the sandbox's `Date`.
async fn handle(
    inner: Arc<Inner>,
    router: Router,
    conn: Conn,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = req.into_parts();
    let mut response = match Limited::new(body, MAX_BODY).collect().await {
        Err(error) => {
            tracing::debug!(%error, "could not read a request body");
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body could not be read or is too large.",
            )
        }
        Ok(collected) if is_admin_path(parts.uri.path()) => {
            let req = Request::from_parts(parts, Body::from(collected.to_bytes()));
            router.oneshot(req).await.into_response()
        }
        Ok(collected) => {
            inject::handle_request(&inner, router, conn, parts, collected.to_bytes()).await?
        }
    };
    let date = HeaderValue::from_str(&inner.http_date()).expect("an HTTP date is a header value");
    response.headers_mut().insert(header::DATE, date);
    Ok(response)
}

/// The API routes and the admin routes; any other path is a JSON `404`.
fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .merge(api::router())
        .merge(admin::router())
        .fallback(api::not_found)
        .with_state(inner)
}
