//! Where tokens come from: [`TokenSource`], a static token, and the password login.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use reqwest::header::DATE;

use super::{SensitiveString, Token};
use crate::error::Error;
use crate::generated::{self, types, ClientAuthExt as _};

/// The future a [`TokenSource`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Token, Error>> + Send + 'a>>;

/// Where tokens come from. Implement it to plug in your own (a vault, another service).
///
/// ```
/// use comm100::{Token, TokenFuture, TokenSource};
/// struct FromVault;
/// impl TokenSource for FromVault {
///     fn fetch(&self) -> TokenFuture<'_> {
///         Box::pin(async { Ok(Token::new("eyJ...")) })
///     }
/// }
/// ```
///
/// Build the [`Token`] when it arrives: its lifetime counts from that moment. A failure is best
/// reported as [`Error::TokenSource`] (retryable) or, for a refusal with an HTTP status,
/// [`Error::Login`].
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a new token. Called once per refresh, never concurrently by one client, in a
    /// task of its own: a caller that gives up does not cancel it.
    fn fetch(&self) -> TokenFuture<'_>;
}

/// A token supplied by the user, used as it is until the server rejects it.
pub(crate) struct StaticToken(pub(crate) Token);

impl TokenSource for StaticToken {
    fn fetch(&self) -> TokenFuture<'_> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// Logs in with an agent's email, password and site id through `generate_jwt_token`.
pub(crate) struct PasswordLogin {
    /// A generated client on the control-panel host, without auth, on the user's HTTP client.
    pub(crate) portal: generated::Client,
    pub(crate) email: String,
    pub(crate) password: SensitiveString,
    pub(crate) site_id: i64,
}

/// The fixed message of a token response that held no usable token. Fixed, because the body of
/// such a response may hold a token, and an error message ends up in logs.
const NOT_A_TOKEN_RESPONSE: &str =
    "the token response is not the documented JSON object with a `token` string";

impl PasswordLogin {
    /// The token operation's path on the control-panel base, as the spec gives it.
    pub(crate) const PATH: &'static str = "/adminwebservice/api/jwttoken/generate";
}

impl TokenSource for PasswordLogin {
    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let body = types::JwtTokenRequest {
                login_type: types::LoginType::Password,
                username: self.email.clone(),
                // A copy that is zeroised when the request body is dropped.
                password: self.password.clone(),
                site_id: self.site_id,
            };
            match self.portal.generate_jwt_token().body(body).send().await {
                Ok(response) => {
                    let server_now = response
                        .headers()
                        .get(DATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| httpdate::parse_http_date(v).ok());
                    let token = response.into_inner().token;
                    let jwt = token.expose_secret();
                    if jwt.trim().is_empty() {
                        return Err(Error::BadToken("the token response holds an empty token"));
                    }
                    Ok(match server_now {
                        Some(date) => Token::with_server_date(jwt, date),
                        None => Token::new(jwt),
                    })
                }
                Err(progenitor_client::Error::ErrorResponse(rv)) => Err(Error::Login {
                    status: rv.status(),
                    code: rv.code,
                    message: rv.message.clone().unwrap_or_default(),
                    retry_after: crate::retry::retry_after(rv.headers()),
                }),
                Err(progenitor_client::Error::ResponseBodyError(e))
                    if matches!(
                        Error::behind(&e).map(Error::cause),
                        Some(Error::BodyTooLarge { .. })
                    ) =>
                {
                    Err(Error::BadToken(
                        "the token response is larger than any token response",
                    ))
                }
                Err(
                    progenitor_client::Error::CommunicationError(e)
                    | progenitor_client::Error::ResponseBodyError(e),
                ) => Err(Error::Transport(Arc::new(e))),
                Err(progenitor_client::Error::UnexpectedResponse(response)) => Err(Error::Login {
                    status: response.status(),
                    code: None,
                    message: "the token host answered with a status the API does not document"
                        .into(),
                    retry_after: None,
                }),
                // The payload may hold a token: none of it goes into the error.
                Err(_) => Err(Error::BadToken(NOT_A_TOKEN_RESPONSE)),
            }
        })
    }
}
