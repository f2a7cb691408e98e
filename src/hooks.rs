//! The hooks progenitor calls around every generated operation: bearer auth, retries within a
//! time budget, a tracing span per attempt, bounded bodies, any `2xx` taken as the documented
//! success, and error bodies normalised so that none hides its status.

use std::sync::Arc;
use std::time::Duration;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use reqwest::{Request, Response, StatusCode, Url};
use tracing::Instrument;

use crate::auth::TokenCache;
use crate::body::{self, error_response, normalize_error, ReadError};
use crate::domain::same_origin;
use crate::error::{Error, LOGIN_OPERATION};
use crate::generated::Client;
use crate::retry::{self, RetryPolicy};

// The generated code decodes through this (see `codegen/mod.rs`).
pub(crate) use crate::body::decode_response;

/// The header progenitor adds to every request, which Comm100 does not use.
const API_VERSION: &str = "api-version";

/// The `User-Agent` every request carries, before the user's suffix.
pub(crate) const USER_AGENT_PREFIX: &str = concat!("comm100-rs/", env!("CARGO_PKG_VERSION"));

/// The header that carries the status the server sent when the hooks took another `2xx` as an
/// operation's documented success.
pub const ORIGINAL_STATUS_HEADER: &str = "comm100-original-status";

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
    /// The most time one operation may take, its attempts, waits and login included.
    pub(crate) budget: Duration,
    /// The largest success body read.
    pub(crate) max_body: usize,
    /// `comm100-rs/<version>`, and the user's suffix.
    pub(crate) user_agent: HeaderValue,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("auth", &self.auth.as_ref().map(|_| "token cache"))
            .field("retry", &self.retry)
            .field("api_origin", &self.api_origin.as_ref().map(Url::as_str))
            .field("login_url", &self.login_url.as_ref().map(Url::as_str))
            .field("budget", &self.budget)
            .field("max_body", &self.max_body)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl ClientHooks<Inner> for Client {
    async fn pre<E>(
        &self,
        request: &mut Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        check_segment_body(request, info).map_err(progenitor_client::Error::InvalidRequest)?;
        let headers = request.headers_mut();
        // progenitor sends `api-version`, an Oxide convention; Comm100 versions by path.
        headers.remove(API_VERSION);
        headers.insert(USER_AGENT, self.inner().user_agent.clone());
        Ok(())
    }

    async fn exec(&self, request: Request, info: &OperationInfo) -> reqwest::Result<Response> {
        let inner = self.inner();
        let now = tokio::time::Instant::now();
        // A budget too large to add is no budget: a century stands in for it.
        let deadline = now
            .checked_add(inner.budget)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        let call = execute(self.client(), inner, request, info.operation_id, deadline);
        match tokio::time::timeout_at(deadline, call).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    comm100.operation_id = info.operation_id,
                    budget_ms = inner.budget.as_millis() as u64,
                    "the operation ran out of its time budget"
                );
                Err(body::reqwest_error(Error::OperationTimeout(inner.budget), None).await)
            }
        }
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
    deadline: tokio::time::Instant,
) -> reqwest::Result<Response> {
    let method = request.method().clone();
    // The token goes to the API origin and nowhere else.
    let auth = inner.auth.as_ref().filter(|_| {
        inner
            .api_origin
            .as_ref()
            .is_some_and(|o| same_origin(o, request.url()))
    });
    let policy = &inner.retry;
    // A wait that would end past the deadline is not waited: the caller gets the answer now.
    let fits = |delay: Duration| {
        tokio::time::Instant::now()
            .checked_add(delay)
            .is_some_and(|end| end < deadline)
    };
    let mut refreshed_after_401 = false;
    // Counts attempts that use up the policy; the one re-send after a 401 does not.
    let mut attempt = 0u32;
    // Counts every request sent, for `http.request.resend_count`.
    let mut sent = 0u32;
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

        // The URL carries no secret (the token travels in a header), so it may be traced.
        let span = attempt_span(&method, this.url(), operation_id, sent);
        sent += 1;
        let result = client.execute(this).instrument(span.clone()).await;
        record_outcome(&span, &result);
        let can_retry = !only_attempt && attempt < policy.max_attempts;
        if let (Ok(response), Some(token)) = (&result, &token) {
            if response.status() != StatusCode::UNAUTHORIZED {
                token.mark_accepted();
            }
        }

        let error = match result {
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
                tracing::info!(
                    comm100.operation_id = operation_id,
                    "the token was refused; sending the request once more with a new one"
                );
                continue;
            }
            // A 429 is a refusal before acting, so it is retried for a POST too; the other
            // statuses only for methods that may be sent twice.
            Ok(response)
                if can_retry
                    && retry::is_retryable_status(response.status())
                    && (retry::is_idempotent(&method)
                        || response.status() == StatusCode::TOO_MANY_REQUESTS) =>
            {
                let retry_after = retry::retry_after(response.headers());
                let status = response.status().as_u16();
                match policy.delay(attempt, retry_after).filter(|d| fits(*d)) {
                    Some(delay) => {
                        tracing::info!(
                            comm100.operation_id = operation_id,
                            http.response.status_code = status,
                            retry_in_ms = delay.as_millis() as u64,
                            "retryable status; retrying"
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    // Asked to wait longer than the cap or the budget allows: the caller gets
                    // the response, with its `Retry-After`, at once.
                    None => {
                        tracing::warn!(
                            comm100.operation_id = operation_id,
                            http.response.status_code = status,
                            retry_after_s = retry_after.map(|d| d.as_secs()),
                            "retryable status, but the wait is longer than the cap or the budget allows; giving up"
                        );
                        return Ok(normalize_error(response, operation_id).await);
                    }
                }
            }
            Ok(response) if response.status().as_u16() >= 400 => {
                return Ok(normalize_error(response, operation_id).await)
            }
            Ok(response) => match read_success(response, inner.max_body, operation_id).await {
                Ok(response) => return Ok(response),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if can_retry && (retry::is_idempotent(&method) || retry::never_sent(&error)) {
            let delay = policy.delay(attempt, None).unwrap_or_default();
            if fits(delay) {
                tracing::info!(
                    comm100.operation_id = operation_id,
                    error.type = error_type(&error),
                    error = %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "transport error; retrying"
                );
                tokio::time::sleep(delay).await;
                continue;
            }
        }
        tracing::warn!(
            comm100.operation_id = operation_id,
            error.type = error_type(&error),
            error = %error,
            "transport error; giving up"
        );
        return Err(error);
    }
}

/// The span of one attempt, after the OpenTelemetry conventions for HTTP client spans, at
/// DEBUG: one per request sent is detail, not what a production log wants. Retries, give-ups
/// and refreshes are events of their own, at INFO and WARN.
fn attempt_span(
    method: &reqwest::Method,
    url: &Url,
    operation_id: &str,
    resends: u32,
) -> tracing::Span {
    let span = tracing::debug_span!(
        "comm100.request",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        url.full = %url,
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default(),
        http.request.resend_count = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        comm100.operation_id = operation_id,
    );
    // The conventions set the resend count only on a request sent again.
    if resends > 0 {
        span.record("http.request.resend_count", resends);
    }
    span
}

/// Records the status, or the failure, of an attempt on its span.
fn record_outcome(span: &tracing::Span, result: &reqwest::Result<Response>) {
    match result {
        Ok(response) => {
            let status = response.status();
            span.record("http.response.status_code", status.as_u16());
            if status.as_u16() >= 400 {
                // The conventions name an error status by its code.
                span.record("error.type", status.as_str());
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(error) => {
            span.record("error.type", error_type(error));
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// A low-cardinality name for a transport failure, for `error.type`.
fn error_type(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_redirect() {
        "redirect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "_OTHER"
    }
}

/// Reads a success body (at most `max_body` bytes) so that the attempt, and its budget, include
/// it, and takes any `2xx` as the operation's documented success.
///
/// The documented status replaces another `2xx` (`200` for a `201`, `200` with a body for a
/// `204`), and the status the server sent goes into the [`ORIGINAL_STATUS_HEADER`] header; a
/// success documented without a body gets an empty one. A body over the limit, or one whose
/// connection fails past the limit, becomes a body that fails when progenitor reads it, with
/// [`Error::BodyTooLarge`] as its source. A transport failure while reading is returned for the
/// retry loop.
async fn read_success(
    mut response: Response,
    max_body: usize,
    operation_id: &'static str,
) -> Result<Response, reqwest::Error> {
    if !response.status().is_success() {
        return Ok(response);
    }
    let documented = crate::generated::DOCUMENTED_SUCCESS
        .iter()
        .find(|(id, _, _)| *id == operation_id)
        .map(|&(_, status, has_body)| (status, has_body));
    let sent = response.status();
    let status = documented
        .and_then(|(status, _)| StatusCode::from_u16(status).ok())
        .unwrap_or(sent);
    let wants_body = documented.is_none_or(|(_, has_body)| has_body);
    let body = if wants_body {
        match body::read_capped(&mut response, max_body, false).await {
            Ok((bytes, _)) => reqwest::Body::from(bytes),
            Err(ReadError::TooLarge) => {
                return Ok(body::with_failing_body(
                    &mut response,
                    Error::BodyTooLarge { limit: max_body },
                ))
            }
            Err(ReadError::Transport(e)) => return Err(e),
        }
    } else {
        // Nothing is documented, so nothing is read: the connection drops what was sent.
        reqwest::Body::from(bytes::Bytes::new())
    };
    let mut rebuilt = body::with_body(status, &mut response, body);
    if status != sent {
        rebuilt.headers_mut().insert(
            HeaderName::from_static(ORIGINAL_STATUS_HEADER),
            HeaderValue::from(sent.as_u16()),
        );
    }
    Ok(rebuilt)
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
        other => Err(body::reqwest_error(other, login_url).await),
    }
}
