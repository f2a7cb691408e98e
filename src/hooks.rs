//! The hooks progenitor calls around every generated operation: bearer auth, retries, a
//! tracing span per attempt, and error bodies normalised so that none hides its status.

use std::sync::Arc;
use std::time::Instant;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Request, Response, StatusCode, Url};
use tracing::Instrument;

use crate::auth::TokenCache;
use crate::domain::same_origin;
use crate::error::{Error, LOGIN_OPERATION, OPERATION_HEADER};
use crate::generated::Client;
use crate::retry::{self, RetryPolicy};

/// What the generated [`Client`] carries for these hooks. Built by [`crate::Comm100Builder`];
/// a generated client made without one has no auth.
#[derive(Clone)]
pub struct Inner {
    pub(crate) auth: Option<Arc<TokenCache>>,
    pub(crate) retry: RetryPolicy,
    /// The only origin that ever receives the token.
    pub(crate) api_origin: Option<Url>,
    /// The token operation's URL, named by the error of a login that got no answer.
    pub(crate) login_url: Option<Url>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("auth", &self.auth.as_ref().map(|_| "token cache"))
            .field("retry", &self.retry)
            .field("api_origin", &self.api_origin.as_ref().map(Url::as_str))
            .field("login_url", &self.login_url.as_ref().map(Url::as_str))
            .finish()
    }
}

impl ClientHooks<Inner> for Client {
    async fn pre<E>(
        &self,
        request: &mut Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        check_segment_body(request, info).map_err(progenitor_client::Error::InvalidRequest)
    }

    async fn exec(&self, request: Request, info: &OperationInfo) -> reqwest::Result<Response> {
        execute(self.client(), self.inner(), request, info.operation_id).await
    }
}

/// The spec's `minItems: 1` on `conditions`, which progenitor's types do not enforce: refuse
/// locally, so that nothing is sent.
fn check_segment_body(request: &Request, info: &OperationInfo) -> Result<(), String> {
    if !matches!(
        info.operation_id,
        "create_customer_segment" | "update_customer_segment"
    ) {
        return Ok(());
    }
    let Some(bytes) = request.body().and_then(|b| b.as_bytes()) else {
        return Ok(());
    };
    // Only the length of `conditions` matters: skip everything else while parsing.
    #[derive(serde::Deserialize)]
    struct Probe {
        conditions: Option<Vec<serde::de::IgnoredAny>>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            conditions: Some(c),
        }) if c.is_empty() => {
            Err("conditions: a customer segment needs at least one condition".into())
        }
        _ => Ok(()),
    }
}

async fn execute(
    client: &reqwest::Client,
    inner: &Inner,
    request: Request,
    operation_id: &'static str,
) -> reqwest::Result<Response> {
    let method = request.method().clone();
    let path = request.url().path().to_string();
    // The token goes to the API origin and nowhere else.
    let auth = inner.auth.as_ref().filter(|_| {
        inner
            .api_origin
            .as_ref()
            .is_some_and(|o| same_origin(o, request.url()))
    });
    let policy = &inner.retry;
    let mut refreshed_after_401 = false;
    // Counts attempts that use up the policy; the one re-send after a 401 does not.
    let mut attempt = 0u32;
    // Each attempt sends a copy; a body that cannot be copied (a stream) gets one attempt,
    // with the original.
    let mut original = Some(request);
    loop {
        attempt += 1;
        let copy = original.as_ref().and_then(Request::try_clone);
        let only_attempt = copy.is_none();
        let Some(mut this) = copy.or_else(|| original.take()) else {
            unreachable!("the original is taken only for an attempt after which the loop ends")
        };
        let token = match auth {
            Some(cache) => match cache.get().await {
                Ok(token) => Some(token),
                Err(e) => return login_failure(e, inner.login_url.as_ref()).await,
            },
            None => None,
        };
        if let Some(token) = &token {
            this.headers_mut()
                .insert(AUTHORIZATION, token.bearer().clone());
        }

        let span = tracing::info_span!(
            "comm100.request",
            operation_id,
            method = %method,
            path = %path,
            attempt,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = client.execute(this).instrument(span.clone()).await;
        span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
        if let Ok(response) = &result {
            span.record("status", response.status().as_u16());
        }
        let can_retry = !only_attempt && attempt < policy.max_attempts;
        if let (Ok(response), Some(token)) = (&result, &token) {
            if response.status() != StatusCode::UNAUTHORIZED {
                token.mark_accepted();
            }
        }

        match result {
            // The token was refused: unless the cache says a new token would not help (see
            // `TokenCache::refused`), try this request once more with a new one. The server
            // refused before acting, so this is safe for a POST too.
            Ok(response)
                if response.status() == StatusCode::UNAUTHORIZED
                    && !refreshed_after_401
                    && !only_attempt
                    && matches!((auth, &token), (Some(cache), Some(token)) if cache.refused(token)) =>
            {
                refreshed_after_401 = true;
                attempt -= 1;
                span.in_scope(|| tracing::info!("token refused; retrying once with a new token"));
            }
            Ok(response)
                if can_retry
                    && retry::is_idempotent(&method)
                    && retry::is_retryable_status(response.status()) =>
            {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry::parse_retry_after);
                let delay = policy.delay(attempt, retry_after);
                span.in_scope(|| {
                    tracing::info!(
                        delay_ms = delay.as_millis() as u64,
                        "retryable status; retrying"
                    )
                });
                tokio::time::sleep(delay).await;
            }
            Ok(response) => return Ok(normalize_error(response, operation_id).await),
            Err(e) if can_retry && (retry::is_idempotent(&method) || retry::never_sent(&e)) => {
                let delay = policy.delay(attempt, None);
                span.in_scope(|| tracing::info!(error = %e, delay_ms = delay.as_millis() as u64, "transport error; retrying"));
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A failed login, as the operation's result.
///
/// A login the token host answered with an error becomes that error response, with its status,
/// Comm100's code and message, its `Retry-After`, and `generate_jwt_token` as the operation.
/// Any other failure (a timeout, an unreachable host, a failing source) got no answer, so it
/// becomes what a request that got no answer is: a `reqwest::Error` (progenitor's
/// `CommunicationError`, retryable), with the login's [`Error`] as its source. `exec` can
/// return nothing else, and reqwest builds its errors only itself: the error is that of a body
/// that fails at once with the login's error, read on the spot.
async fn login_failure(error: Error, login_url: Option<&Url>) -> reqwest::Result<Response> {
    match error {
        Error::Login {
            status,
            code,
            message,
            retry_after,
        } => {
            let mut headers = http::HeaderMap::new();
            if let Some(wait) = retry_after {
                headers.insert(RETRY_AFTER, HeaderValue::from(wait.as_secs()));
            }
            Ok(error_response(
                status,
                headers,
                code,
                message,
                LOGIN_OPERATION,
            ))
        }
        other => {
            let body = reqwest::Body::wrap(FailingBody(Some(other)));
            let read = Response::from(http::Response::new(body)).bytes().await;
            // A failing body always fails; were it ever read, the empty 503 stands in.
            let error = match read {
                Err(e) => e,
                Ok(_) => {
                    return Ok(Response::from(
                        http::Response::builder()
                            .status(503)
                            .body(String::new())
                            .unwrap_or_default(),
                    ))
                }
            };
            Err(match login_url {
                Some(url) => error.with_url(url.clone()),
                None => error.without_url(),
            })
        }
    }
}

/// A body whose first frame is the login's error.
struct FailingBody(Option<Error>);

impl http_body::Body for FailingBody {
    type Data = bytes::Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(Err))
    }
}

/// Rewrites an error response's body as strict `{code, message}` JSON and names the operation,
/// so that progenitor always decodes it into `Error::ErrorResponse` with the status intact.
async fn normalize_error(response: Response, operation_id: &'static str) -> Response {
    if response.status().as_u16() < 400 {
        return response;
    }
    let status = response.status();
    let headers = response.headers().clone();
    let (code, message) = match response.bytes().await {
        Ok(body) => parse_error_body(&body),
        Err(e) => (None, format!("the error body could not be read: {e}")),
    };
    error_response(status, headers, code, message, operation_id)
}

fn error_response(
    status: StatusCode,
    mut headers: http::HeaderMap,
    code: Option<i64>,
    message: String,
    operation_id: &'static str,
) -> Response {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    headers.remove(CONTENT_LENGTH);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(OPERATION_HEADER, HeaderValue::from_static(operation_id));
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Response::from(response)
}

/// Reads `{code, message}` from strict JSON, then from the relaxed form Comm100's documents show
/// (`{ code: 400000, message: "…" }`); otherwise keeps a short snippet of the text.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<i64>, String) {
    let parsed = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .or_else(|| json5::from_str::<serde_json::Value>(std::str::from_utf8(body).ok()?).ok())
        .filter(|v| v.is_object());
    if let Some(value) = parsed {
        let code = value
            .get("code")
            .and_then(|c| c.as_i64().or_else(|| c.as_str()?.trim().parse().ok()));
        let message = value
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| snippet(body));
        return (code, message);
    }
    (None, snippet(body))
}

/// At most 200 characters of a body, white space folded, or a note that it was empty.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.is_empty() {
        return "(empty error body)".into();
    }
    let mut cut: String = folded.chars().take(200).collect();
    if cut.len() < folded.len() {
        cut.push('…');
    }
    format!("non-JSON error body: {cut}")
}

#[cfg(test)]
mod tests {
    use super::parse_error_body;

    #[test]
    fn error_bodies_in_every_shape_keep_what_they_say() {
        assert_eq!(
            parse_error_body(br#"{"code":400000,"message":"bad"}"#),
            (Some(400000), "bad".into())
        );
        assert_eq!(
            parse_error_body(br#"{ code: 400000, message: "Parameter 'timeFrom' is required." }"#),
            (Some(400000), "Parameter 'timeFrom' is required.".into())
        );
        assert_eq!(
            parse_error_body(br#"{"code":"403001","message":"no"}"#),
            (Some(403001), "no".into())
        );
        assert_eq!(parse_error_body(b""), (None, "(empty error body)".into()));
        let (code, message) =
            parse_error_body(b"<html><body><h1>502 Bad Gateway</h1></body></html>");
        assert_eq!(code, None);
        assert_eq!(
            message,
            "non-JSON error body: <html><body><h1>502 Bad Gateway</h1></body></html>"
        );
        let (_, long) = parse_error_body("x".repeat(5000).as_bytes());
        assert!(long.chars().count() < 230, "{}", long.len());
        assert_eq!(parse_error_body(&[0xff, 0xfe, 0x00]).0, None);
        assert_eq!(parse_error_body(b"[1,2]").0, None);
    }
}
