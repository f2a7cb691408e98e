//! Tokens: where they come from ([`TokenSource`]) and how they are cached ([`TokenCache`]).
//!
//! Modelled on smithy-rs's lazy identity cache: a token is refreshed a buffer before it expires,
//! concurrent callers share a single refresh (one wins, the others await its result), and a
//! timeout bounds how long a refresh may take.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::error::Error;
use crate::generated::{self, types, ClientAuthExt as _};

/// A bearer token and, when its payload says so, when it expires.
#[derive(Clone)]
pub struct Token {
    /// Shared, so that handing the token to every request copies no secret.
    secret: Arc<SecretString>,
    /// `Bearer <token>`, marked sensitive, built once rather than on every request.
    bearer: HeaderValue,
    expires_at: Option<SystemTime>,
}

impl Token {
    /// Wraps a JWT, reading `exp` from its payload without verifying the signature (a client
    /// cannot). A token whose `exp` cannot be read never expires here; it is used until the
    /// server rejects it.
    pub fn new(jwt: impl Into<String>) -> Self {
        let jwt = jwt.into();
        let expires_at = jwt_exp(&jwt);
        // A token with bytes a header cannot hold is sent as a placeholder the server refuses.
        let mut bearer = HeaderValue::try_from(format!("Bearer {jwt}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-token"));
        bearer.set_sensitive(true);
        Self {
            secret: Arc::new(SecretString::from(jwt)),
            bearer,
            expires_at,
        }
    }

    /// When the token expires, if its payload says.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The `jti` claim of the token, if it has one: an id safe to log.
    pub fn id(&self) -> Option<String> {
        jwt_claims(self.secret.expose_secret())?
            .get("jti")?
            .as_str()
            .map(str::to_string)
    }

    /// The `Authorization` header value, marked sensitive so that it is never logged.
    pub(crate) fn bearer(&self) -> &HeaderValue {
        &self.bearer
    }

    /// When to refresh: `buffer` before expiry, or halfway through the remaining life of a
    /// token that lives less than twice the buffer, so that a short-lived token is still used
    /// rather than refreshed on every call. `None`: never (no readable `exp`).
    fn refresh_at(&self, buffer: Duration) -> Option<SystemTime> {
        let exp = self.expires_at?;
        let remaining = exp
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Some(exp - buffer.min(remaining / 2))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"[REDACTED]")
            .field(
                "expires_at",
                &self.expires_at.map(chrono::DateTime::<chrono::Utc>::from),
            )
            .finish()
    }
}

fn jwt_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `exp` as a number of seconds, or as a string of digits (Comm100 sends its ids as strings).
fn jwt_exp(jwt: &str) -> Option<SystemTime> {
    let exp = jwt_claims(jwt)?.get("exp")?.clone();
    let secs = exp.as_u64().or_else(|| exp.as_str()?.parse().ok())?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

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
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a new token. Called once per refresh, never concurrently by one client.
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
    /// A generated client on the control-panel host, without auth.
    pub(crate) portal: generated::Client,
    pub(crate) email: String,
    pub(crate) password: SecretString,
    pub(crate) site_id: i64,
}

impl TokenSource for PasswordLogin {
    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let body = types::JwtTokenRequest {
                login_type: types::LoginType::Password,
                username: self.email.clone(),
                password: self.password.expose_secret().to_string(),
                site_id: self.site_id,
            };
            match self.portal.generate_jwt_token().body(body).send().await {
                Ok(response) => {
                    let token = response.into_inner().token;
                    if token.trim().is_empty() {
                        return Err(Error::BadToken("the token is empty".into()));
                    }
                    Ok(Token::new(token))
                }
                Err(progenitor_client::Error::ErrorResponse(rv)) => Err(Error::Login {
                    status: rv.status(),
                    code: rv.code,
                    message: rv.message.clone().unwrap_or_default(),
                }),
                Err(progenitor_client::Error::CommunicationError(e)) => Err(Error::Transport(e)),
                Err(other) => Err(Error::BadToken(other.to_string())),
            }
        })
    }
}

/// Caches a token, refreshing it a buffer before it expires, with one refresh at a time.
pub(crate) struct TokenCache {
    source: Arc<dyn TokenSource>,
    /// The token, and when to refresh it.
    /// A std lock: it is never held across an await, and it is cheaper than tokio's on the
    /// path every request takes.
    current: std::sync::RwLock<Option<(Token, Option<SystemTime>)>>,
    /// Held by the one caller that refreshes; the others wait on it, then reuse its token.
    refresh: Mutex<()>,
    buffer: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("buffer", &self.buffer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(source: Arc<dyn TokenSource>, buffer: Duration, timeout: Duration) -> Self {
        Self {
            source,
            current: std::sync::RwLock::new(None),
            refresh: Mutex::new(()),
            buffer,
            timeout,
        }
    }

    /// A token that is not within the buffer of its expiry, fetching one if needed.
    pub(crate) async fn get(&self) -> Result<Token, Error> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _refreshing = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let token = tokio::time::timeout(self.timeout, self.source.fetch())
            .await
            .map_err(|_| Error::LoginTimeout(self.timeout))??;
        tracing::debug!(
            token_id = token.id().as_deref().unwrap_or("-"),
            "fetched a new token"
        );
        let refresh_at = token.refresh_at(self.buffer);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            Some((token.clone(), refresh_at));
        Ok(token)
    }

    /// Forgets `rejected` after the server refused it, unless another caller already replaced it.
    pub(crate) fn invalidate(&self, rejected: &Token) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current
            .as_ref()
            .is_some_and(|(t, _)| t.secret.expose_secret() == rejected.secret.expose_secret())
        {
            *current = None;
        }
    }

    fn fresh(&self) -> Option<Token> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let (token, refresh_at) = current.as_ref()?;
        match refresh_at {
            Some(at) if SystemTime::now() >= *at => None,
            _ => Some(token.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"x","typ":"JWT"}"#), b64(payload))
    }

    #[test]
    fn exp_is_read_as_a_number_or_a_string() {
        let t = Token::new(jwt(r#"{"exp":1587703181,"jti":"abc"}"#));
        assert_eq!(
            t.expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1587703181))
        );
        assert_eq!(t.id().as_deref(), Some("abc"));
        let t = Token::new(jwt(r#"{"exp":"1587703181"}"#));
        assert_eq!(
            t.expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1587703181))
        );
    }

    #[test]
    fn a_token_without_a_readable_exp_stays_fresh() {
        for raw in [
            "opaque-token".to_string(),
            jwt(r#"{"nbf":1}"#),
            jwt("not json"),
            "a.%%%.c".into(),
        ] {
            let t = Token::new(raw);
            assert_eq!(t.expires_at(), None);
            assert_eq!(t.refresh_at(Duration::from_secs(3600)), None);
        }
    }

    #[test]
    fn refresh_is_a_buffer_before_expiry_or_halfway_for_short_tokens() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let long = Token::new(jwt(&format!(r#"{{"exp":{}}}"#, now + 7200)));
        let at = long.refresh_at(Duration::from_secs(60)).unwrap();
        assert_eq!(at, long.expires_at().unwrap() - Duration::from_secs(60));
        let short = Token::new(jwt(&format!(r#"{{"exp":{}}}"#, now + 40)));
        let at = short.refresh_at(Duration::from_secs(60)).unwrap();
        let before_exp = short.expires_at().unwrap().duration_since(at).unwrap();
        assert!(
            before_exp <= Duration::from_secs(20) && before_exp >= Duration::from_secs(18),
            "{before_exp:?}"
        );
        let expired = Token::new(jwt(&format!(r#"{{"exp":{}}}"#, now - 10)));
        assert!(expired.refresh_at(Duration::from_secs(60)).unwrap() <= SystemTime::now());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let raw = jwt(r#"{"exp":1587703181}"#);
        let shown = format!("{:?}", Token::new(raw.clone()));
        assert!(
            !shown.contains(&raw) && shown.contains("REDACTED"),
            "{shown}"
        );
    }
}
