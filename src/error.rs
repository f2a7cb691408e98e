//! Errors: [`Error`] for the wrapper's own failures, and [`ApiErrorExt`] to inspect the errors
//! of the generated operations.
//!
//! No error here holds a password or a token: they live in `secrecy` types and are never
//! formatted.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::generated::types;

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
}

impl Error {
    /// Whether trying again later may succeed: a transport failure, a login timeout, a failing
    /// token source, an unusable token response, or a login answered with 408, 429 or a `5xx`.
    /// A refused login (`401`, `403`, ...) is not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Login { status, .. } => crate::retry::is_retryable_status(*status),
            Error::LoginTimeout(_)
            | Error::BadToken(_)
            | Error::TokenSource(_)
            | Error::Transport(_)
            | Error::OperationTimeout(_) => true,
            _ => false,
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
        match self {
            Error::Login { retry_after, .. } => *retry_after,
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

/// What every operation error can tell about itself.
///
/// Implemented for the generated operations' error type, `progenitor_client::Error<types::Error>`.
/// The hooks normalise every error response before progenitor decodes it, so an error body that
/// was not JSON (an HTML page, an empty body, Comm100's relaxed `{ code: 400000, message: "…" }`)
/// still arrives as an `ErrorResponse` with its status, never as a decoding failure.
///
/// When the operation could not get a token, its error says why:
/// * the token host answered with an error status (a wrong password, `429`, `503`): an
///   `ErrorResponse` with that status, Comm100's code and message and any `Retry-After`, and
///   `generate_jwt_token` as its [`operation_id`](ApiErrorExt::operation_id);
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
///     Err(e) => eprintln!("{} failed: HTTP {:?}, code {:?}: {}", e.operation_id().unwrap_or("?"), e.status(), e.code(), e.message()),
/// }
/// # }
/// ```
pub trait ApiErrorExt {
    /// The HTTP status, when a response arrived.
    fn http_status(&self) -> Option<StatusCode>;
    /// Comm100's error code, when the body had one.
    fn code(&self) -> Option<i64>;
    /// Comm100's message, a snippet of a body that was not JSON, or a description of the
    /// failure when no response arrived.
    fn message(&self) -> String;
    /// The operation that failed (`generate_jwt_token` when logging in failed), when a
    /// response arrived.
    fn operation_id(&self) -> Option<&str>;
    /// Whether trying again later may succeed: no response, or 408, 429, 500, 502, 503, 504,
    /// or the daily limit.
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
    /// The login's own error, when the login failed without an answer (see the trait's docs).
    fn login_error(&self) -> Option<&Error>;
}

impl ApiErrorExt for progenitor_client::Error<types::Error> {
    fn http_status(&self) -> Option<StatusCode> {
        self.status()
    }

    fn code(&self) -> Option<i64> {
        match self {
            progenitor_client::Error::ErrorResponse(rv) => rv.code,
            _ => None,
        }
    }

    fn message(&self) -> String {
        if let Some(error) = wrapper_error(self) {
            return match error.is_login() {
                true => format!("could not log in: {error}"),
                false => error.to_string(),
            };
        }
        match self {
            progenitor_client::Error::ErrorResponse(rv) => rv.message.clone().unwrap_or_default(),
            // The Display of the other variants names the failure; none carries a secret.
            other => other.to_string(),
        }
    }

    fn operation_id(&self) -> Option<&str> {
        match self {
            progenitor_client::Error::ErrorResponse(rv) => {
                rv.headers().get(OPERATION_HEADER)?.to_str().ok()
            }
            _ => None,
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            progenitor_client::Error::CommunicationError(_) => true,
            _ => {
                self.status().is_some_and(crate::retry::is_retryable_status)
                    || self.is_rate_limited()
            }
        }
    }

    fn is_rate_limited(&self) -> bool {
        match self.status() {
            Some(StatusCode::TOO_MANY_REQUESTS) => true,
            Some(StatusCode::FORBIDDEN) => is_daily_limit(&self.message()),
            _ => false,
        }
    }

    fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    fn is_unauthorized(&self) -> bool {
        self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            progenitor_client::Error::ErrorResponse(rv) => crate::retry::retry_after(rv.headers()),
            _ => None,
        }
    }

    fn is_login_failure(&self) -> bool {
        self.login_error().is_some() || self.operation_id() == Some(LOGIN_OPERATION)
    }

    fn login_error(&self) -> Option<&Error> {
        wrapper_error(self).filter(|e| e.is_login())
    }
}

/// The wrapper's own error behind an operation's error that got no (whole) answer: a login that
/// failed, an exhausted time budget, a body over the limit. The hooks put it in the source chain
/// of the `reqwest::Error`, the only error they can return.
fn wrapper_error(error: &progenitor_client::Error<types::Error>) -> Option<&Error> {
    let (progenitor_client::Error::CommunicationError(e)
    | progenitor_client::Error::ResponseBodyError(e)) = error
    else {
        return None;
    };
    Error::behind(e)
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
