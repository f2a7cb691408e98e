//! Errors: [`Error`] for the wrapper's own failures, and [`ApiErrorExt`] to inspect the errors
//! of the generated operations.
//!
//! No error here holds a password or a token: they live in `secrecy` types and are never
//! formatted.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::api_error::{wrapper_error, Facts};
use crate::generated::types;
use crate::outcome::{is_transient_status, Outcome};

/// The header the hooks add to every error response, naming the operation that failed.
pub(crate) const OPERATION_HEADER: &str = "comm100-operation-id";

/// A failure of the wrapper itself: configuration, or logging in.
///
/// `Clone`, because every caller waiting on one login gets its result. No variant holds a
/// password, a token or a token response's body.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The control-panel domain is not of the form Comm100 serves.
    #[error("`{given}` is not a Comm100 control-panel domain: expected portal{{N}}.comm100.io (for example portal1.comm100.io), or give explicit URLs")]
    InvalidDomain {
        /// What was given.
        given: String,
    },
    /// A base URL could not be used.
    #[error("the {what} `{url}` is not usable: {reason}")]
    InvalidUrl {
        /// Which URL: "portal URL" or "API URL".
        what: &'static str,
        /// What was given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A base URL uses plain `http` to a host other than loopback.
    #[error("the {what} `{url}` uses plain http to a host other than loopback, which would send credentials in clear text; use https, or opt in with HttpPolicy::DangerAllowHttp")]
    InsecureUrl {
        /// Which URL: "portal URL" or "API URL".
        what: &'static str,
        /// What was given.
        url: String,
    },
    /// The builder lacks something it needs.
    #[error("the client is not fully configured: {0}")]
    Config(&'static str),
    /// An environment variable that [`crate::Comm100::from_env`] needs is not set.
    #[error("the environment variable {var} is not set: {hint}")]
    MissingEnv {
        /// The variable.
        var: &'static str,
        /// What it should hold.
        hint: &'static str,
    },
    /// An environment variable holds a value that cannot be used.
    #[error("the environment variable {var} is invalid: {reason}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Why it was refused (never the value of a secret).
        reason: String,
    },
    /// The token host answered the login with an error status: a refusal of the credentials
    /// (`401`), a rate limit (`429`), an outage (`5xx`).
    #[error("login failed with HTTP {status}{}: {message}", code.map(|c| format!(" (Comm100 code {c})")).unwrap_or_default())]
    Login {
        /// The HTTP status of the token response.
        status: StatusCode,
        /// Comm100's error code, when the body had one.
        code: Option<i64>,
        /// Comm100's message, or a snippet of a body that was not JSON.
        message: String,
        /// The wait the token host asked for with `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The token operation did not answer within the login timeout.
    #[error("login timed out after {0:?}")]
    LoginTimeout(Duration),
    /// The token response was a success but held no usable token. The message is fixed: the
    /// body of such a response may hold a token, so none of it is kept.
    #[error("login returned no usable token: {0}")]
    BadToken(&'static str),
    /// A user-supplied token source failed.
    #[error("the token source failed: {0}")]
    TokenSource(String),
    /// An operation did not finish within its time budget (see
    /// [`Comm100Builder::operation_timeout`](crate::Comm100Builder::operation_timeout)), its
    /// attempts, waits and login included.
    #[error("the operation did not finish within its time budget of {0:?}")]
    OperationTimeout(Duration),
    /// A success body was longer than the limit (see
    /// [`Comm100Builder::max_response_body`](crate::Comm100Builder::max_response_body)); nothing
    /// past the limit was read.
    #[error("the response body is larger than the limit of {limit} bytes (raise it with Comm100Builder::max_response_body)")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request could not be sent or its response could not be read. Shared, because every
    /// caller waiting on one login gets its error.
    #[error("HTTP transport error: {0}")]
    Transport(#[source] Arc<reqwest::Error>),
    /// The server answered a request that must not be sent twice (a create) with a server error
    /// (`5xx`): it may have acted. Always inside [`Error::Classified`] with
    /// [`Outcome::Unknown`].
    #[error("HTTP {status}{}: {message}", code.map(|c| format!(" (Comm100 code {c})")).unwrap_or_default())]
    ServerError {
        /// The HTTP status.
        status: StatusCode,
        /// Comm100's error code, when the body had one.
        code: Option<i64>,
        /// Comm100's message, or a snippet of a body that was not JSON.
        message: String,
        /// The wait the server asked for with `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// A failure of an operation, with what the server may have done (see [`Outcome`]): the
    /// time budget ran out, the connection failed, or a success could not be read, after the
    /// request may have reached the server.
    #[error("{operation_id}: {cause}; {}", outcome.explain())]
    Classified {
        /// The operation that failed.
        operation_id: &'static str,
        /// What the server may have done.
        outcome: Outcome,
        /// Whether sending the request again may succeed without doing anything twice, as
        /// the hooks decided it (see [`Outcome`]).
        retryable: bool,
        /// What failed.
        #[source]
        cause: Box<Error>,
    },
    /// The shared request budget ([`crate::RateBudget`]) had no token for this request within
    /// the operation's time budget; nothing was sent. Trying again after `wait` may succeed.
    #[error(
        "the request budget has no token within the operation's time budget: one comes in {wait:?}"
    )]
    RateBudget {
        /// How long until a token would come.
        wait: Duration,
    },
    /// The daily request limit was reached earlier, and has not lifted yet (see
    /// [`crate::DailyLimitBreaker`]); nothing was sent.
    #[error(
        "the daily request limit is reached; nothing is sent until it resets or a probe succeeds"
    )]
    DailyLimitReached {
        /// When the limit is expected to reset.
        until: std::time::SystemTime,
    },
    /// A call that needs the Tokio runtime was made outside one (for example, a future polled
    /// by another executor). Nothing was sent, and the client is unchanged.
    #[error("no Tokio runtime: the comm100 client must be used from within a Tokio runtime")]
    NoRuntime,
}

impl Error {
    /// Whether trying again later may succeed: a transport failure, a login timeout, a failing
    /// token source, an unusable token response, or a login answered with 408, 429 or a `5xx`.
    /// A refused login (`401`, `403`, ...) is not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Login { status, .. } => is_transient_status(*status),
            Error::LoginTimeout(_)
            | Error::BadToken(_)
            | Error::TokenSource(_)
            | Error::Transport(_)
            | Error::OperationTimeout(_)
            | Error::RateBudget { .. } => true,
            Error::Classified { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The error inside [`Error::Classified`], or this one.
    pub fn cause(&self) -> &Error {
        match self {
            Error::Classified { cause, .. } => cause,
            other => other,
        }
    }

    /// Whether this is a failure to log in.
    pub(crate) fn is_login(&self) -> bool {
        matches!(
            self,
            Error::Login { .. }
                | Error::LoginTimeout(_)
                | Error::BadToken(_)
                | Error::TokenSource(_)
                | Error::Transport(_)
        )
    }

    /// The wait the token host asked for with `Retry-After`, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.cause() {
            Error::Login { retry_after, .. } | Error::ServerError { retry_after, .. } => {
                *retry_after
            }
            Error::RateBudget { wait } => Some(*wait),
            _ => None,
        }
    }

    /// The status of a login the token host answered with an error.
    pub(crate) fn login_status(&self) -> Option<StatusCode> {
        match self {
            Error::Login { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What every operation error can tell about itself. Deprecated: [`ApiError`](crate::ApiError)
/// says the same with one `is_retryable()`; `.call()` returns it, and `ApiError::from(err)`
/// converts an error of `send()`.
///
/// Implemented for the generated operations' error type, `progenitor_client::Error<types::Error>`,
/// which `send()` returns. The hooks normalise every error response before
/// progenitor decodes it, so an error body that was not JSON (an HTML page, an empty body,
/// Comm100's relaxed `{ code: 400000, message: "…" }`) still arrives as an `ErrorResponse`
/// with its status, never as a decoding failure.
///
/// # What the server did, and whether to try again
/// [`outcome`](ApiErrorExt::outcome) says what the server may have done ([`Outcome`]), and
/// [`is_retryable`](ApiErrorExt::is_retryable) whether sending the request again may succeed
/// without doing anything twice. The hooks give every failure the shape that makes
/// progenitor's own `err.is_retryable()`, which wins in method-call syntax, agree with this
/// trait's wherever it matters:
///
/// * a failure that may be retried and carries no answer is a `CommunicationError`, which
///   progenitor calls retryable: a connection never made, a login that got no answer, and a
///   reset or timeout of an idempotent request (GET, PUT, DELETE);
/// * a failure after which the request must not be sent again (a create whose outcome is
///   unknown: reset, timeout, time budget, `5xx`; and any `2xx` whose body could not be read)
///   is a `ResponseBodyError` without a status, which progenitor calls not retryable. Its
///   source is [`Error::Classified`], with the [`Outcome`], and [`http_status`](ApiErrorExt::http_status),
///   [`code`](ApiErrorExt::code) and [`message`](ApiErrorExt::message) read the `5xx` inside it;
/// * an error status is an `ErrorResponse` (`4xx`; a `5xx` of an idempotent request), a `3xx`
///   or `1xx` an `UnexpectedResponse` whose body was read within the error-body limit.
///
/// The two still differ on a `500` of an idempotent request and a login answered `500`:
/// progenitor counts them final, this trait retryable.
///
/// When the operation could not get a token, its error says why:
/// * the token host answered with an error status (a wrong password, `429`, `503`): an
///   `ErrorResponse` with that status, Comm100's code and message and any `Retry-After`, and
///   `generate_jwt_token` as its [`operation_id`](ApiErrorExt::operation_id);
/// * the token host answered anything else that is not a success (a redirect): a
///   `ResponseBodyError` whose [`login_error`](ApiErrorExt::login_error) is [`Error::Login`];
/// * the login failed without an answer (a timeout, an unreachable token host, a failing
///   [`TokenSource`](crate::TokenSource), an unusable token response): a `CommunicationError`,
///   with no status, retryable, whose `reqwest::Error` names the token URL and has the login's
///   [`Error`] as its source: [`login_error`](ApiErrorExt::login_error) returns it, and
///   [`message`](ApiErrorExt::message) says `could not log in: …`.
///
/// ```no_run
/// use comm100::prelude::*;
/// # async fn f(c100: &comm100::Comm100, id: uuid::Uuid) {
/// match c100.client().get_customer_segment().id(id).send().await {
///     Ok(segment) => println!("{}", segment.name.as_deref().unwrap_or("")),
///     Err(e) if e.is_not_found() => println!("no such segment"),
///     Err(e) => eprintln!(
///         "{} failed ({}): HTTP {:?}, code {:?}: {}",
///         e.operation_id().unwrap_or("?"),
///         e.outcome(),
///         e.http_status(),
///         e.code(),
///         e.message()
///     ),
/// }
/// # }
/// ```
#[deprecated(
    since = "0.2.0",
    note = "use comm100::ApiError: `.call()` returns it, `ApiError::from(err)` converts a `send()` error, and its `is_retryable()` has no twin that disagrees"
)]
pub trait ApiErrorExt {
    /// The HTTP status, when a response arrived (also the `5xx` of a create whose outcome is
    /// unknown, which progenitor's `status()` does not show).
    fn http_status(&self) -> Option<StatusCode>;
    /// Comm100's error code, when the body had one.
    fn code(&self) -> Option<i64>;
    /// Comm100's message, a snippet of a body that was not JSON, or a description of the
    /// failure when no response arrived.
    fn message(&self) -> String;
    /// The operation that failed (`generate_jwt_token` when logging in failed), when the hooks
    /// know it.
    fn operation_id(&self) -> Option<&str>;
    /// What the server may have done; see [`Outcome`].
    fn outcome(&self) -> Outcome;
    /// Whether sending the request again may succeed without doing anything twice: a transient
    /// failure (no connection, no answer, `408`, `429`, `500`, `502`, `503`, `504`, a login that
    /// timed out) when nothing was done or the request is idempotent. Never for an
    /// [`Outcome::Unknown`] create or an [`Outcome::Performed`] request, and not for the daily
    /// limit, which lasts until the next day.
    fn is_retryable(&self) -> bool;
    /// A `429`, or a `403` whose message says the daily request limit was exceeded.
    fn is_rate_limited(&self) -> bool;
    /// A `404`.
    fn is_not_found(&self) -> bool;
    /// A `401`: the credentials or the token were refused, even after one refresh.
    fn is_unauthorized(&self) -> bool;
    /// The wait the server asked for with `Retry-After`, when it sent one.
    fn retry_after(&self) -> Option<Duration>;
    /// Whether the operation failed because no token could be had: the login was refused or
    /// failed. Nothing was sent to the API then.
    fn is_login_failure(&self) -> bool;
    /// The login's own error, when the login failed without an error status (see the trait's
    /// docs).
    fn login_error(&self) -> Option<&Error>;
}

#[allow(deprecated)]
impl ApiErrorExt for progenitor_client::Error<types::Error> {
    fn http_status(&self) -> Option<StatusCode> {
        Facts::of(self).status
    }

    fn code(&self) -> Option<i64> {
        Facts::of(self).code
    }

    fn message(&self) -> String {
        Facts::of(self).message
    }

    fn operation_id(&self) -> Option<&str> {
        // Borrowed from the error itself, where the hooks wrote it.
        let headers = match self {
            progenitor_client::Error::ErrorResponse(rv) => rv.headers(),
            progenitor_client::Error::UnexpectedResponse(r) => r.headers(),
            _ => {
                return match wrapper_error(self)? {
                    Error::Classified { operation_id, .. } => Some(operation_id),
                    e if e.is_login() => Some(LOGIN_OPERATION),
                    _ => None,
                }
            }
        };
        headers.get(OPERATION_HEADER)?.to_str().ok()
    }

    fn outcome(&self) -> Outcome {
        Facts::of(self).outcome
    }

    fn is_retryable(&self) -> bool {
        Facts::of(self).retryable
    }

    fn is_rate_limited(&self) -> bool {
        let facts = Facts::of(self);
        match facts.status {
            Some(StatusCode::TOO_MANY_REQUESTS) => true,
            Some(StatusCode::FORBIDDEN) => is_daily_limit(&facts.message),
            _ => false,
        }
    }

    fn is_not_found(&self) -> bool {
        self.http_status() == Some(StatusCode::NOT_FOUND)
    }

    fn is_unauthorized(&self) -> bool {
        self.http_status() == Some(StatusCode::UNAUTHORIZED)
    }

    fn retry_after(&self) -> Option<Duration> {
        Facts::of(self).retry_after
    }

    fn is_login_failure(&self) -> bool {
        Facts::of(self).login_failure
    }

    fn login_error(&self) -> Option<&Error> {
        wrapper_error(self).filter(|e| e.is_login())
    }
}

/// Comm100's code and message of an answer that is neither a success nor an error status (a
/// `3xx`), kept beside its response, whose body the hooks rewrote.
#[derive(Debug, Clone)]
pub(crate) struct ErrorDetails {
    pub(crate) code: Option<i64>,
    pub(crate) message: String,
}

impl Error {
    /// The wrapper's error in the source chain of a `reqwest::Error` that the hooks made.
    pub(crate) fn behind(error: &reqwest::Error) -> Option<&Error> {
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            if let Some(ours) = cause.downcast_ref::<Error>() {
                return Some(ours);
            }
            source = cause.source();
        }
        None
    }
}

/// The operation id a failed login is reported under.
pub(crate) const LOGIN_OPERATION: &str = "generate_jwt_token";

/// Comm100 says "the number of your API requests has exceeded the limit of the day".
pub(crate) fn is_daily_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("exceeded") && m.contains("limit")
}
