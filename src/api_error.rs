//! [`ApiError`]: the one error of every call, with [`ErrorKind`] to match on and the
//! [`Outcome`] to act on.
//!
//! Every generated operation's `call()`, every raw call and the reconciling create return it;
//! code that uses progenitor's `send()` converts with `?` or `ApiError::from`. It is built once,
//! from what the hooks left in progenitor's error (see [`crate::hooks`]' shape rule), so that
//! its accessors are plain fields and its `is_retryable()` has no twin that disagrees.

use std::time::Duration;

use reqwest::StatusCode;

use crate::error::{is_daily_limit, Error, ErrorDetails, LOGIN_OPERATION, OPERATION_HEADER};
use crate::generated::types;
use crate::outcome::{is_transient_status, Outcome};

/// What went wrong, coarsely enough to map to an answer of your own.
///
/// | kind | what happened | typical answer of a service |
/// | --- | --- | --- |
/// | `InvalidInput` | refused locally, nothing sent | `400` |
/// | `BadRequest` | the server refused the request (`400`, `409`, `422`, ...) | `400` |
/// | `NotFound` | `404` | `404` |
/// | `Unauthorized` | `401`, even after a fresh token | `502` |
/// | `LoginFailed` | no token could be had | `502` |
/// | `Forbidden` | `403`, a missing permission | `502` |
/// | `DailyLimit` | `403`, the daily request limit | `503` |
/// | `RateLimited` | `429` | `503` with `Retry-After` |
/// | `Server` | `500`, `501`, another `5xx` | `502` |
/// | `Unavailable` | `502`, `503`, `504` | `503` |
/// | `Timeout` | a request or the time budget timed out, or `408` | `504` |
/// | `Transport` | the connection failed | `502` |
/// | `Protocol` | an answer that could not be read: a body cut, too large or undecodable, a `3xx` | `502` |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was refused before anything was sent; `field` names what was wrong when
    /// the check says (`name`, `conditions[0].value`, `id`).
    InvalidInput {
        /// The field, as the JSON or the operation names it.
        field: Option<String>,
    },
    /// The server refused the request as it was (`400`, `409`, `422` and other `4xx` not
    /// listed here).
    BadRequest,
    /// `404`.
    NotFound,
    /// `401`: the token was refused, even after a fresh one.
    Unauthorized,
    /// No token could be had: the login was refused, failed or got no answer.
    LoginFailed,
    /// `403` for a missing permission.
    Forbidden,
    /// `403` because the daily request limit was exceeded: it lasts until the next day.
    DailyLimit,
    /// `429`.
    RateLimited {
        /// The wait the server asked for with `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// `500`, `501` or another server error than the three of `Unavailable`.
    Server,
    /// `502`, `503` or `504`: the service or a gateway is down or overloaded.
    Unavailable,
    /// A request, or the operation's time budget, timed out; or `408`.
    Timeout,
    /// The connection could not be made or broke.
    Transport,
    /// An answer that could not be used: a body cut, over the limit or undecodable, or a
    /// status the operation does not have (`3xx`).
    Protocol,
}

/// The error of every call: what went wrong ([`kind`](ApiError::kind)), what the server may
/// have done ([`outcome`](ApiError::outcome)), whether to try again
/// ([`is_retryable`](ApiError::is_retryable)), and what the server said.
///
/// `Display` is one line, for logs: `update_customer_segment: HTTP 400 (code 400000): Parameter
/// 'name' is required.`; `Debug` has no headers. Neither holds a password or a token: messages
/// are redacted when they arrive.
///
/// ```no_run
/// use comm100::prelude::*;
/// # async fn run(c100: &Comm100, id: comm100::uuid::Uuid) {
/// match c100.client().get_customer_segment().id(id).call().await {
///     Ok(segment) => println!("{:?}", segment.name),
///     Err(e) if e.kind() == &ErrorKind::NotFound => println!("no such segment"),
///     Err(e) if e.is_retryable() => eprintln!("try again later: {e}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
pub struct ApiError(Box<Parts>);

/// What an [`ApiError`] holds, boxed so that a `Result<T, ApiError>` stays small.
struct Parts {
    kind: ErrorKind,
    outcome: Outcome,
    retryable: bool,
    status: Option<StatusCode>,
    code: Option<i64>,
    message: String,
    retry_after: Option<Duration>,
    operation_id: Option<String>,
    source: Option<Source>,
}

/// What `source()` returns.
enum Source {
    Http(reqwest::Error),
    Payload(serde_json::Error),
    Ours(Error),
}

impl ApiError {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// What the server may have done with the request.
    pub fn outcome(&self) -> Outcome {
        self.0.outcome
    }

    /// Whether sending the request again may succeed without doing anything twice: a transient
    /// failure (no connection or answer, `408`, `429`, `500`, `502`, `503`, `504`, a login that
    /// got no answer or was refused for a while) when nothing was done or the request is
    /// idempotent. Never for an [`Outcome::Unknown`] create, an [`Outcome::Performed`]
    /// request, or the daily limit.
    pub fn is_retryable(&self) -> bool {
        self.0.retryable
    }

    /// The HTTP status, when an answer arrived (a login's, when the login failed).
    pub fn status(&self) -> Option<StatusCode> {
        self.0.status
    }

    /// Comm100's error code, when the answer had one.
    pub fn code(&self) -> Option<i64> {
        self.0.code
    }

    /// Comm100's message, a snippet of a body that was not JSON, or what failed.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The wait the server asked for with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// The operation that failed (`generate_jwt_token` when the login failed, `raw_request` for
    /// a raw call), when known.
    pub fn operation_id(&self) -> Option<&str> {
        self.0.operation_id.as_deref()
    }

    /// Whether the daily request limit stopped this call: answered by the server (`403`), or
    /// refused locally while the limit lasts (see [`crate::DailyLimitBreaker`]).
    pub fn is_daily_limit(&self) -> bool {
        self.0.kind == ErrorKind::DailyLimit
    }

    /// The login's own error, when no token could be had without an error status from the
    /// token host.
    pub fn login_error(&self) -> Option<&Error> {
        match &self.0.source {
            Some(Source::Http(e)) => Error::behind(e).filter(|e| e.is_login()),
            Some(Source::Ours(e)) => Some(e).filter(|e| e.is_login()),
            _ => None,
        }
    }

    /// An error refused locally, with `message`; nothing was sent.
    pub(crate) fn invalid_input(message: String, operation_id: Option<&str>) -> Self {
        Self(Box::new(Parts {
            kind: ErrorKind::InvalidInput {
                field: field_of(&message),
            },
            outcome: Outcome::NotSent,
            retryable: false,
            status: None,
            code: None,
            message,
            retry_after: None,
            operation_id: operation_id.map(str::to_string),
            source: None,
        }))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(id) = &self.0.operation_id {
            write!(f, "{id}: ")?;
        }
        if let Some(status) = self.0.status {
            write!(f, "HTTP {}", status.as_u16())?;
            if let Some(code) = self.0.code {
                write!(f, " (code {code})")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.0.message)
    }
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiError")
            .field("kind", &self.0.kind)
            .field("outcome", &self.0.outcome)
            .field("retryable", &self.0.retryable)
            .field("status", &self.0.status.map(|s| s.as_u16()))
            .field("code", &self.0.code)
            .field("message", &self.0.message)
            .field("retry_after", &self.0.retry_after)
            .field("operation_id", &self.0.operation_id)
            .finish()
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.0.source.as_ref()? {
            Source::Http(e) => Some(e),
            Source::Payload(e) => Some(e),
            Source::Ours(e) => Some(e),
        }
    }
}

impl From<progenitor_client::Error<types::Error>> for ApiError {
    fn from(error: progenitor_client::Error<types::Error>) -> Self {
        use progenitor_client::Error as E;
        let facts = Facts::of(&error);
        let kind = kind(&error, &facts);
        let source = match error {
            E::CommunicationError(e) | E::ResponseBodyError(e) | E::InvalidUpgrade(e) => {
                Some(Source::Http(e))
            }
            E::InvalidResponsePayload(_, e) => Some(Source::Payload(e)),
            _ => None,
        };
        Self(Box::new(Parts {
            kind,
            outcome: facts.outcome,
            retryable: facts.retryable,
            status: facts.status,
            code: facts.code,
            message: facts.message,
            retry_after: facts.retry_after,
            operation_id: facts.operation_id,
            source,
        }))
    }
}

impl From<Error> for ApiError {
    /// A failure of the client itself (configuration, a login called directly).
    fn from(error: Error) -> Self {
        let login = error.is_login() || matches!(error, Error::NoRuntime);
        let status = error.login_status();
        Self(Box::new(Parts {
            kind: match &error {
                Error::LoginTimeout(_) | Error::OperationTimeout(_) => ErrorKind::Timeout,
                e if e.is_login() => ErrorKind::LoginFailed,
                Error::BodyTooLarge { .. } => ErrorKind::Protocol,
                _ => ErrorKind::InvalidInput { field: None },
            },
            outcome: Outcome::NotSent,
            retryable: error.is_retryable(),
            status,
            code: match &error {
                Error::Login { code, .. } => *code,
                _ => None,
            },
            // The status and code are shown beside the message: the login's own message only.
            message: match &error {
                Error::Login { message, .. } => format!("could not log in: {message}"),
                e if e.is_login() => format!("could not log in: {e}"),
                e => e.to_string(),
            },
            retry_after: error.retry_after(),
            operation_id: login.then(|| LOGIN_OPERATION.to_string()),
            source: Some(Source::Ours(error)),
        }))
    }
}

impl From<crate::InvalidSegment> for ApiError {
    fn from(invalid: crate::InvalidSegment) -> Self {
        let mut error = Self::invalid_input(invalid.to_string(), None);
        error.0.kind = ErrorKind::InvalidInput {
            field: Some(invalid.field),
        };
        error
    }
}

/// What the hooks left in a progenitor error, read once. The rules live here; [`ApiError`] and
/// the deprecated [`crate::ApiErrorExt`] both read them.
pub(crate) struct Facts {
    pub(crate) outcome: Outcome,
    pub(crate) retryable: bool,
    pub(crate) status: Option<StatusCode>,
    pub(crate) code: Option<i64>,
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) operation_id: Option<String>,
    pub(crate) login_failure: bool,
}

impl Facts {
    pub(crate) fn of(error: &progenitor_client::Error<types::Error>) -> Self {
        use progenitor_client::Error as E;
        let wrapper = wrapper_error(error);
        let cause = wrapper.map(Error::cause);
        let status = match cause {
            Some(Error::ServerError { status, .. } | Error::Login { status, .. }) => Some(*status),
            _ => error.status(),
        };
        let code = match error {
            E::ErrorResponse(rv) => rv.code,
            E::UnexpectedResponse(r) => r.extensions().get::<ErrorDetails>().and_then(|d| d.code),
            _ => match cause {
                Some(Error::ServerError { code, .. } | Error::Login { code, .. }) => *code,
                _ => None,
            },
        };
        let message = match (wrapper, error) {
            (Some(w), _) => match w.cause() {
                Error::ServerError { message, .. } => message.clone(),
                e if e.is_login() => format!("could not log in: {e}"),
                _ => w.to_string(),
            },
            (None, E::ErrorResponse(rv)) => rv.message.clone().unwrap_or_default(),
            (None, E::UnexpectedResponse(r)) => {
                let message = r
                    .extensions()
                    .get::<ErrorDetails>()
                    .map_or("", |d| d.message.as_str());
                format!(
                    "HTTP {} is not an answer the operation has: {message}",
                    r.status()
                )
            }
            (None, E::InvalidRequest(s)) => s.clone(),
            (None, E::CommunicationError(e)) if e.is_connect() => {
                "could not connect to the server".into()
            }
            (None, E::CommunicationError(e)) if e.is_timeout() => {
                "the request timed out; the server may have received it".into()
            }
            (None, E::CommunicationError(_)) => {
                "the connection failed before an answer arrived".into()
            }
            (None, E::InvalidResponsePayload(_, e)) => {
                format!("the answer could not be decoded: {e}")
            }
            // The Display of the other variants names the failure; none carries a secret.
            (None, other) => other.to_string(),
        };
        let headers = match error {
            E::ErrorResponse(rv) => Some(rv.headers()),
            E::UnexpectedResponse(r) => Some(r.headers()),
            _ => None,
        };
        let operation_id = match (headers, wrapper) {
            (Some(h), _) => h
                .get(OPERATION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            (None, Some(Error::Classified { operation_id, .. })) => Some(operation_id.to_string()),
            (None, Some(e)) if e.is_login() => Some(LOGIN_OPERATION.to_string()),
            (None, _) => None,
        };
        let login_failure = wrapper.is_some_and(Error::is_login)
            || operation_id.as_deref() == Some(LOGIN_OPERATION);
        let outcome = match (wrapper, error) {
            (Some(Error::Classified { outcome, .. }), _) => *outcome,
            // A login failed or was refused: nothing reached the API.
            (Some(_), _) => Outcome::NotSent,
            (None, _) if login_failure => Outcome::NotSent,
            (None, E::InvalidRequest(_) | E::Custom(_)) => Outcome::NotSent,
            (None, E::CommunicationError(e)) if e.is_connect() => Outcome::NotSent,
            (None, E::CommunicationError(_)) => Outcome::Unknown,
            (None, E::ErrorResponse(rv)) if rv.status().is_client_error() => Outcome::Refused,
            (None, E::ErrorResponse(_)) => Outcome::Unknown,
            (None, E::UnexpectedResponse(r)) if r.status().is_success() => Outcome::Performed,
            (None, E::UnexpectedResponse(_)) => Outcome::Unknown,
            // A success whose body failed or did not decode.
            (
                None,
                E::ResponseBodyError(_) | E::InvalidResponsePayload(..) | E::InvalidUpgrade(_),
            ) => Outcome::Performed,
        };
        let retryable = match error {
            // The hooks return a failure without an answer this way only when it may be retried.
            E::CommunicationError(_) => true,
            // The hooks return a 5xx this way only for an idempotent request (or a login).
            E::ErrorResponse(rv) => is_transient_status(rv.status()),
            _ => wrapper.is_some_and(Error::is_retryable),
        };
        let retry_after = match error {
            E::ErrorResponse(rv) => crate::retry::retry_after(rv.headers()),
            _ => wrapper.and_then(Error::retry_after),
        };
        Facts {
            outcome,
            retryable,
            status,
            code,
            message,
            retry_after,
            operation_id,
            login_failure,
        }
    }
}

/// The kind of a progenitor error, from its facts.
fn kind(error: &progenitor_client::Error<types::Error>, facts: &Facts) -> ErrorKind {
    use progenitor_client::Error as E;
    if let E::InvalidRequest(message) = error {
        return ErrorKind::InvalidInput {
            field: field_of(message),
        };
    }
    let wrapper = wrapper_error(error).map(Error::cause);
    if facts.login_failure {
        return match wrapper {
            Some(Error::LoginTimeout(_)) => ErrorKind::Timeout,
            _ => ErrorKind::LoginFailed,
        };
    }
    if let Some(status) = facts.status {
        return match status.as_u16() {
            401 => ErrorKind::Unauthorized,
            403 if is_daily_limit(&facts.message) => ErrorKind::DailyLimit,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            429 => ErrorKind::RateLimited {
                retry_after: facts.retry_after,
            },
            502..=504 => ErrorKind::Unavailable,
            500..=599 => ErrorKind::Server,
            400..=499 => ErrorKind::BadRequest,
            _ => ErrorKind::Protocol,
        };
    }
    match (wrapper, error) {
        (Some(Error::RateBudget { wait }), _) => ErrorKind::RateLimited {
            retry_after: Some(*wait),
        },
        (Some(Error::DailyLimitReached { .. }), _) => ErrorKind::DailyLimit,
        (Some(Error::OperationTimeout(_)), _) => ErrorKind::Timeout,
        (Some(Error::Transport(e)), _) if e.is_timeout() => ErrorKind::Timeout,
        (Some(Error::Transport(e)), _) if e.is_body() || e.is_decode() => ErrorKind::Protocol,
        (Some(Error::Transport(_)), _) => ErrorKind::Transport,
        (Some(_), _) => ErrorKind::Protocol,
        (None, E::CommunicationError(e)) if e.is_timeout() => ErrorKind::Timeout,
        (None, E::CommunicationError(_)) => ErrorKind::Transport,
        (None, _) => ErrorKind::Protocol,
    }
}

/// The field a local refusal names: `name` of `name: must not be blank`, `id` of progenitor's
/// `conversion to … for id failed`, `name` of `… for body failed: name: …`.
fn field_of(message: &str) -> Option<String> {
    let leading = |text: &str| crate::InvalidSegment::from_message(text).map(|i| i.field);
    if let Some(rest) = message.strip_prefix("conversion to ") {
        let (_, after) = rest.split_once(" for ")?;
        let (setter, detail) = after.split_once(" failed").unwrap_or((after, ""));
        let inner = detail.strip_prefix(": ").and_then(leading);
        return Some(inner.unwrap_or_else(|| setter.to_string()));
    }
    leading(message)
}

/// The wrapper's own error behind an operation's error that got no (whole) answer: a login that
/// failed, a failure classified by the hooks. The hooks put it in the source chain of the
/// `reqwest::Error`, the only error they can make.
pub(crate) fn wrapper_error(error: &progenitor_client::Error<types::Error>) -> Option<&Error> {
    let (progenitor_client::Error::CommunicationError(e)
    | progenitor_client::Error::ResponseBodyError(e)) = error
    else {
        return None;
    };
    Error::behind(e)
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn local_refusals_name_their_field() {
        assert_eq!(field_of("name: must not be blank").as_deref(), Some("name"));
        assert_eq!(
            field_of("conditions: must hold at least one item").as_deref(),
            Some("conditions")
        );
        assert_eq!(
            field_of("conversion to `:: uuid :: Uuid` for id failed").as_deref(),
            Some("id")
        );
        assert_eq!(
            field_of("conversion to `CustomerSegmentInput` for body failed: conditions[0].value: must not be blank").as_deref(),
            Some("conditions[0].value")
        );
        assert_eq!(
            field_of("conversion to `CustomerSegmentInput` for body failed: doesn't match")
                .as_deref(),
            Some("body")
        );
        assert_eq!(field_of("the header `Host` is the client's own"), None);
    }
}
