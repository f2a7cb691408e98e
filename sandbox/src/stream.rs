//! The bodies of the faults that send something else than the answer: the streamed bodies of
//! [`Fault::HugeErrorBody`], [`Fault::EndlessBody`] and an endless [`Fault::Redirect`], the
//! short page of a redirect, and the cut body of [`Fault::TruncatedBody`].
//!
//! No streamed body is ever held whole: a body repeats one shared chunk of about 64 KiB (a cheap clone
//! of one [`Bytes`]), cut short the last time when it has a length.
//!
//! Neither holds up the sandbox's stop, in two ways. A connection with a streamed body open is
//! dropped at the stop rather than drained (see [`OpenStreams`]): over HTTP/2 a stream the
//! client does not read stalls on flow control, and hyper no longer polls its body. And the
//! body itself races the stop signal, ending with an error (hyper then closes the connection
//! without finishing it): that covers a body that starts after the stop, on a connection the
//! stop found with none open and left to drain.
//!
//! [`Fault::HugeErrorBody`]: crate::Fault::HugeErrorBody
//! [`Fault::EndlessBody`]: crate::Fault::EndlessBody
//! [`Fault::Redirect`]: crate::Fault::Redirect
//! [`Fault::TruncatedBody`]: crate::Fault::TruncatedBody

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Response, StatusCode, header};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde_json::json;
use tokio::sync::watch;

use crate::segments::parse_segment;

/// About how long a streamed chunk is.
const CHUNK: usize = 64 * 1024;

/// Whole copies of `item` making up at least [`CHUNK`] bytes.
fn chunk_of(item: &str) -> Bytes {
    Bytes::from(item.repeat(CHUNK.div_ceil(item.len())))
}

/// The filler of a huge HTML error page, in whole lines.
static HTML_FILLER: LazyLock<Bytes> =
    LazyLock::new(|| chunk_of("<p>The server could not handle the request.</p>\n"));

/// The items of an endless JSON array: the same segment, each followed by a comma.
static ENDLESS_ITEMS: LazyLock<Bytes> = LazyLock::new(|| {
    let input = parse_segment(json!({
        "name": "endless",
        "conditions": [{"field": "CurrentPageUrl", "operator": "include", "value": "live"}]
    }))
    .expect("the endless segment is valid");
    let segment = input.into_json(uuid::Uuid::from_u128(0xE5D1E55), 1);
    let item = serde_json::Value::Object(segment).to_string();
    chunk_of(&format!("{item},"))
});

/// How many streamed bodies are open on one connection; shared by the connection's task and its
/// requests.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpenStreams(Arc<AtomicUsize>);

impl OpenStreams {
    /// Whether a streamed body is open on the connection.
    pub(crate) fn any(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }

    /// Counts one more open body, until the guard is dropped.
    fn open(&self) -> OpenGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        OpenGuard(self.0.clone())
    }
}

/// One open streamed body, counted in its connection's [`OpenStreams`] until dropped.
#[derive(Debug)]
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The error a streamed body ends with when the sandbox stops.
#[derive(Debug, thiserror::Error)]
#[error("the sandbox stopped while streaming a body")]
pub(crate) struct Stopped;

/// A body sent piece by piece: `head`, then `chunk` over and over (the last copy cut short)
/// until `fill` bytes have gone, or for ever when `fill` is `None`, then `tail`.
struct Streamed {
    head: Option<Bytes>,
    chunk: Bytes,
    fill: Option<u64>,
    tail: Option<Bytes>,
    /// Resolves when the sandbox stops; taken once it has.
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    _open: OpenGuard,
}

impl Streamed {
    fn new(
        head: Bytes,
        chunk: Bytes,
        fill: Option<u64>,
        tail: Bytes,
        mut stop: watch::Receiver<bool>,
        streams: &OpenStreams,
    ) -> Self {
        let non_empty = |b: Bytes| (!b.is_empty()).then_some(b);
        Self {
            head: non_empty(head),
            chunk,
            fill,
            tail: non_empty(tail),
            stop: Some(Box::pin(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })),
            _open: streams.open(),
        }
    }

    fn len(piece: Option<&Bytes>) -> u64 {
        piece.map_or(0, |b| b.len() as u64)
    }

    /// The next piece of data, or `None` at the end.
    fn next_data(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        match &mut self.fill {
            None => Some(self.chunk.clone()),
            Some(0) => self.tail.take(),
            Some(left) => {
                let n =
                    usize::try_from(*left).map_or(self.chunk.len(), |l| l.min(self.chunk.len()));
                *left -= n as u64;
                Some(self.chunk.slice(..n))
            }
        }
    }
}

impl HttpBody for Streamed {
    type Data = Bytes;
    type Error = Stopped;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Stopped>>> {
        let this = &mut *self;
        if let Some(stop) = this.stop.as_mut()
            && stop.as_mut().poll(cx).is_ready()
        {
            this.stop = None;
            this.fill = Some(0);
            this.head = None;
            this.tail = None;
            return Poll::Ready(Some(Err(Stopped)));
        }
        Poll::Ready(this.next_data().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.fill == Some(0) && self.tail.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.fill {
            Some(fill) => SizeHint::with_exact(
                Self::len(self.head.as_ref()) + fill + Self::len(self.tail.as_ref()),
            ),
            None => SizeHint::default(),
        }
    }
}

/// The answer of a [`Fault::HugeErrorBody`](crate::Fault::HugeErrorBody): `status`, and an
/// HTML error page of exactly `bytes` bytes (cut short when even its frame is longer), with its
/// `content-length`.
pub(crate) fn huge_error(
    status: StatusCode,
    bytes: u64,
    stop: watch::Receiver<bool>,
    streams: &OpenStreams,
) -> Response<Body> {
    let mut head = page_head(status);
    let mut tail = "</body></html>\n".to_owned();
    let frame = (head.len() + tail.len()) as u64;
    let fill = if bytes >= frame {
        bytes - frame
    } else {
        // Too short for the frame: the first `bytes` bytes of it, all ASCII.
        head.push_str(&tail);
        head.truncate(usize::try_from(bytes).expect("below the frame's length"));
        tail.clear();
        0
    };
    let body = Streamed::new(
        Bytes::from(head),
        HTML_FILLER.clone(),
        Some(fill),
        Bytes::from(tail),
        stop,
        streams,
    );
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
    response
}

/// The answer of a [`Fault::EndlessBody`](crate::Fault::EndlessBody): the status and headers of
/// `response` (a `204` turned `200`), with a JSON array that never ends for a body.
pub(crate) fn endless(
    response: Response<Body>,
    stop: watch::Receiver<bool>,
    streams: &OpenStreams,
) -> Response<Body> {
    let (mut parts, _) = response.into_parts();
    if parts.status == StatusCode::NO_CONTENT {
        parts.status = StatusCode::OK;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = Streamed::new(
        Bytes::from_static(b"["),
        ENDLESS_ITEMS.clone(),
        None,
        Bytes::new(),
        stop,
        streams,
    );
    Response::from_parts(parts, Body::new(body))
}

/// The head of an HTML page about `status`, up to its `<body>`'s heading.
fn page_head(status: StatusCode) -> String {
    let reason = crate::http::reason(status);
    format!(
        "<!DOCTYPE html>\n<html><head><title>{s} {reason}</title></head>\n<body><h1>{s} {reason}</h1>\n",
        s = status.as_u16(),
    )
}

/// A redirect: `status` (`302` when it is not a `3xx`), `Location` when it is given and a valid
/// header value, and an HTML page, short, or never ending when `endless` gives the stop signal
/// and the connection's open streams.
pub(crate) fn redirect(
    status: u16,
    location: Option<&str>,
    endless: Option<(watch::Receiver<bool>, &OpenStreams)>,
) -> Response<Body> {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(StatusCode::is_redirection)
        .unwrap_or(StatusCode::FOUND);
    let head = page_head(status);
    let body = match endless {
        Some((stop, streams)) => Body::new(Streamed::new(
            Bytes::from(head),
            HTML_FILLER.clone(),
            None,
            Bytes::new(),
            stop,
            streams,
        )),
        None => Body::from(format!(
            "{head}<p>The document has moved.</p>\n</body></html>\n"
        )),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// The error a cut body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the body was cut short on purpose by the sandbox")]
pub(crate) struct CutShort;

/// A body that sends its bytes, then fails, which makes hyper close the connection (or reset
/// the stream) before the announced length.
struct Cut {
    data: Option<Bytes>,
    /// Whether hyper has had a turn to write what it holds: it drops the bytes it has not
    /// written yet (the head included) when the body fails, so the body first answers
    /// `Pending` once, woken at once, and hyper flushes before polling it again.
    flushed: bool,
}

impl HttpBody for Cut {
    type Data = Bytes;
    type Error = CutShort;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, CutShort>>> {
        if let Some(data) = self.data.take().filter(|d| !d.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if !self.flushed {
            self.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Some(Err(CutShort)))
    }
}

/// The answer of a [`Fault::TruncatedBody`](crate::Fault::TruncatedBody): `response` with the
/// `content-length` of its whole body and only its first `after` bytes, at least one short. A
/// response with no body is sent as `200` announcing one byte.
pub(crate) async fn truncated(response: Response<Body>, after: u64) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let bytes = match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::debug!(%error, "could not read a response body to cut it");
            Bytes::new()
        }
    };
    if bytes.is_empty() && parts.status == StatusCode::NO_CONTENT {
        parts.status = StatusCode::OK;
    }
    let announced = bytes.len().max(1);
    let kept = usize::try_from(after).map_or(announced - 1, |after| after.min(announced - 1));
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    let body = Cut {
        data: Some(bytes.slice(..kept)),
        flushed: false,
    };
    Response::from_parts(parts, Body::new(body))
}
