//! [`Token`]: a JWT, and how long it lives measured on the server's clock.
//!
//! A client cannot trust its own clock against the server's: real servers run hours off. So a
//! token's expiry is never found by comparing `exp` with the local clock. Its *lifetime* is read
//! from the token itself (`exp − iat`, or `exp − nbf`), or from the `Date` of the response that
//! carried it, and counted from the local moment the token arrived, on the monotonic clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

/// The largest claim read as a time: the last second of the year 9999. A larger `exp` (some
/// servers write milliseconds) is not a time this client can reason about, so the token is
/// treated as having no known lifetime rather than one of millennia.
const MAX_CLAIM_SECS: u64 = 253_402_300_799;

/// A bearer token and, when it says so, how long it lives.
///
/// Cheap to clone: clones share the secret. `Debug` never shows the token.
#[derive(Clone)]
pub struct Token {
    /// Shared, so that handing the token to every request copies no secret.
    inner: Arc<Inner>,
}

struct Inner {
    secret: SecretString,
    /// `Bearer <token>`, marked sensitive, built once rather than on every request.
    bearer: HeaderValue,
    /// The local moment the token arrived; its lifetime counts from here.
    received_at: Instant,
    /// How long the token lives from when it was issued, on the server's clock.
    lifetime: Option<Duration>,
}

impl Token {
    /// Wraps a JWT that has just been received, reading its lifetime from its payload
    /// (`exp − iat`, else `exp − nbf`) without verifying the signature, which a client cannot.
    ///
    /// A token whose lifetime cannot be read this way (no `exp`, or `exp` alone, or absurd
    /// claims) has no known expiry: it is used until the server refuses it, then replaced.
    /// When the response that carried the token had a `Date` header, prefer
    /// [`Token::with_server_date`], which can also read the lifetime of a token with `exp` alone.
    pub fn new(jwt: impl Into<String>) -> Self {
        Self::build(jwt.into(), None)
    }

    /// Wraps a JWT that has just been received in a response whose `Date` header said
    /// `server_now`. The lifetime is `exp − iat` or `exp − nbf` when the token has them,
    /// otherwise `exp − server_now`: both differences are taken on the server's clock, so a
    /// server whose clock is hours off the local one still gets its tokens' lifetimes right.
    pub fn with_server_date(jwt: impl Into<String>, server_now: SystemTime) -> Self {
        Self::build(jwt.into(), Some(server_now))
    }

    fn build(jwt: String, server_now: Option<SystemTime>) -> Self {
        let lifetime = jwt_claims(&jwt).and_then(|claims| lifetime(&claims, server_now));
        // A token with bytes a header cannot hold is sent as a placeholder the server refuses.
        let mut bearer = HeaderValue::try_from(format!("Bearer {jwt}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-token"));
        bearer.set_sensitive(true);
        Self {
            inner: Arc::new(Inner {
                secret: SecretString::from(jwt),
                bearer,
                received_at: Instant::now(),
                lifetime,
            }),
        }
    }

    /// How long the token lives from when it was issued, if it says.
    pub fn lifetime(&self) -> Option<Duration> {
        self.inner.lifetime
    }

    /// How long the token has left, if its lifetime is known: its lifetime less the time since
    /// it arrived, measured on this machine's monotonic clock.
    pub fn expires_in(&self) -> Option<Duration> {
        Some(
            self.inner
                .lifetime?
                .saturating_sub(self.inner.received_at.elapsed()),
        )
    }

    /// When the token expires on this machine's clock, if its lifetime is known. Derived from
    /// [`Token::expires_in`], so it is right even when the server's clock is not.
    pub fn expires_at(&self) -> Option<SystemTime> {
        SystemTime::now().checked_add(self.expires_in()?)
    }

    /// The `jti` claim of the token, if it has one: an id safe to log.
    pub fn id(&self) -> Option<String> {
        jwt_claims(self.inner.secret.expose_secret())?
            .get("jti")?
            .as_str()
            .map(str::to_string)
    }

    /// The token itself, for redaction from what a server sends back.
    pub(crate) fn expose_secret(&self) -> &str {
        self.inner.secret.expose_secret()
    }

    /// The `Authorization` header value, marked sensitive so that it is never logged.
    pub(crate) fn bearer(&self) -> &HeaderValue {
        &self.inner.bearer
    }

    /// The local moment the token arrived.
    pub(crate) fn received_at(&self) -> Instant {
        self.inner.received_at
    }

    /// Whether two tokens are the same fetch (clones share their secret).
    pub(crate) fn same(&self, other: &Token) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"[REDACTED]")
            .field("lifetime", &self.inner.lifetime)
            .field("expires_in", &self.expires_in())
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

/// A time claim in whole seconds since the epoch: an integer, a float (truncated), or a string
/// of either (Comm100 sends its ids as strings). Negative, non-finite and absurdly large values
/// are not read.
fn claim_secs(claims: &serde_json::Value, name: &str) -> Option<u64> {
    let value = claims.get(name)?;
    let secs = match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| float_secs(n.as_f64()?)),
        serde_json::Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| float_secs(s.parse().ok()?))
        }
        _ => None,
    }?;
    (secs <= MAX_CLAIM_SECS).then_some(secs)
}

fn float_secs(f: f64) -> Option<u64> {
    // `as` saturates; the bound check in `claim_secs` then refuses a saturated value.
    (f.is_finite() && f >= 0.0).then_some(f as u64)
}

/// The lifetime the claims give: from `iat`, else `nbf`, else the server's `Date`, to `exp`.
/// Every difference is taken between two readings of the server's clock.
fn lifetime(claims: &serde_json::Value, server_now: Option<SystemTime>) -> Option<Duration> {
    let exp = claim_secs(claims, "exp")?;
    let issued = claim_secs(claims, "iat")
        .or_else(|| claim_secs(claims, "nbf"))
        .or_else(|| Some(server_now?.duration_since(UNIX_EPOCH).ok()?.as_secs()))?;
    // An `exp` before the token was issued is a broken token, not a short one: no known lifetime.
    exp.checked_sub(issued).map(Duration::from_secs)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn jwt(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"x","typ":"JWT"}"#), b64(payload))
    }

    fn now_secs() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn lifetime_is_read_on_the_servers_clock_whatever_the_local_one_says() {
        // Issued by a server 3 hours behind, and by one 3 hours ahead: `exp` is in the past, or
        // far in the future, on the local clock, yet both tokens live 2 hours from now.
        for skew in [-3 * 3600i64, 3 * 3600] {
            let nbf = now_secs() as i64 + skew;
            let t = Token::new(jwt(&format!(
                r#"{{"nbf":{nbf},"exp":{},"jti":"j"}}"#,
                nbf + 7200
            )));
            assert_eq!(t.lifetime(), Some(Duration::from_secs(7200)));
            let left = t.expires_in().unwrap();
            assert!(left > Duration::from_secs(7190), "{left:?}");
        }
        // `iat` wins over `nbf`; the server's date serves a token with `exp` alone.
        let t = Token::new(jwt(r#"{"iat":1000,"nbf":1500,"exp":4600}"#));
        assert_eq!(t.lifetime(), Some(Duration::from_secs(3600)));
        let date = UNIX_EPOCH + Duration::from_secs(1_000);
        let t = Token::with_server_date(jwt(r#"{"exp":1600}"#), date);
        assert_eq!(t.lifetime(), Some(Duration::from_secs(600)));
        assert_eq!(Token::new(jwt(r#"{"exp":1600}"#)).lifetime(), None);
    }

    #[test]
    fn claims_are_read_as_integers_floats_or_strings() {
        for payload in [
            r#"{"nbf":1000,"exp":1060}"#,
            r#"{"nbf":"1000","exp":"1060"}"#,
            r#"{"nbf":1000.9,"exp":1060.2}"#,
            r#"{"nbf":"1000.5","exp":1060}"#,
        ] {
            assert_eq!(
                Token::new(jwt(payload)).lifetime(),
                Some(Duration::from_secs(60)),
                "{payload}"
            );
        }
    }

    #[test]
    fn absurd_claims_neither_panic_nor_mislead() {
        for payload in [
            r#"{"nbf":1,"exp":9999999999999}"#,
            r#"{"nbf":1,"exp":-5}"#,
            r#"{"nbf":1,"exp":1e300}"#,
            r#"{"nbf":1,"exp":18446744073709551615}"#,
            r#"{"nbf":-100,"exp":100}"#,
            r#"{"nbf":5000,"exp":100}"#,
            r#"{"nbf":1,"exp":"soon"}"#,
            r#"{"nbf":1,"exp":null}"#,
            r#"{"nbf":1,"exp":[1]}"#,
            r#"{"nbf":1}"#,
            "not json",
        ] {
            let t = Token::new(jwt(payload));
            assert_eq!(t.lifetime(), None, "{payload}");
            assert_eq!(t.expires_at(), None);
            let shown = format!("{t:?}");
            assert!(shown.contains("REDACTED"), "{shown}");
        }
        for raw in ["opaque-token", "a.%%%.c", "", "a.b.c.d", "\u{7f}.\n"] {
            let t = Token::new(raw);
            assert_eq!(t.lifetime(), None);
            let _ = format!("{t:?}");
        }
        // A lifetime that is merely very long is kept, and still formats.
        let t = Token::new(jwt(r#"{"nbf":0,"exp":253402300799}"#));
        assert!(t.lifetime().is_some());
        let _ = format!("{t:?} {:?}", t.expires_at());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let raw = jwt(r#"{"nbf":1,"exp":1587703181,"jti":"abc"}"#);
        let t = Token::new(raw.clone());
        assert_eq!(t.id().as_deref(), Some("abc"));
        let shown = format!("{t:?}");
        assert!(
            !shown.contains(&raw) && shown.contains("REDACTED"),
            "{shown}"
        );
    }
}
