//! Issuing and verifying the sandbox's JWTs.
//!
//! The tokens have Comm100's shape: the header names the xmldsig URI for RSA-SHA256 as its
//! algorithm (which is not a JOSE name) and the payload carries `jti`, `agentId` and `siteId` as
//! strings, `nbf`, `exp` and `iss`, and also a standard `iat` equal to `nbf`. The sandbox cannot
//! sign with Comm100's RSA key, so it signs with HMAC-SHA256 over a secret drawn at random when
//! the sandbox starts, and it verifies its own signatures. A token from one sandbox is therefore
//! refused by every other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The `alg` Comm100 writes in its token headers.
pub(crate) const ALG: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
}

/// The claims of a sandbox token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub jti: String,
    #[serde(rename = "agentId")]
    pub agent_id: String,
    #[serde(rename = "siteId")]
    pub site_id: String,
    pub success: String,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    /// Issued at: the same instant as `nbf`.
    pub iat: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("the bearer token is malformed")]
    Malformed,
    #[error("the bearer token's signature is invalid")]
    BadSignature,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is not valid yet")]
    NotYetValid,
}

/// The latest instant the sandbox writes as a time, 9999-12-31T23:59:59Z in Unix seconds: the
/// last an HTTP date can name, and the `exp` of a token that does not expire, which a client can
/// still turn into a date.
pub(crate) const LATEST_SECS: i64 = 253_402_300_799;

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A lifetime in whole seconds, rounded up, so that only a zero lifetime gives `exp == nbf`;
/// saturating, since a test may well ask for `Duration::MAX`.
fn lifetime_secs(lifetime: Duration) -> i64 {
    let secs = lifetime
        .as_secs()
        .saturating_add(u64::from(lifetime.subsec_nanos() > 0));
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// The `exp` of a token issued at `nbf`: `nbf` plus the lifetime, no later than
/// [`LATEST_SECS`] (unless the clock is already past it).
fn expiry(nbf: i64, lifetime: Duration) -> i64 {
    nbf.saturating_add(lifetime_secs(lifetime))
        .min(LATEST_SECS.max(nbf))
}

fn sign(secret: &[u8], signing_input: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(signing_input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Issues a token at `now` (Unix seconds, on the sandbox's clock); returns it with its claims.
pub(crate) fn issue(
    secret: &[u8],
    agent_id: i64,
    site_id: i64,
    lifetime: Duration,
    issuer: &str,
    now: i64,
) -> (String, Claims) {
    let nbf = now;
    let claims = Claims {
        jti: uuid::Uuid::new_v4().to_string(),
        agent_id: agent_id.to_string(),
        site_id: site_id.to_string(),
        success: "True".to_owned(),
        nbf,
        exp: expiry(nbf, lifetime),
        iss: issuer.to_owned(),
        iat: nbf,
    };
    let header = Header {
        alg: ALG.to_owned(),
        typ: "JWT".to_owned(),
    };
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serialises"));
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialise"));
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(sign(secret, &signing_input));
    (format!("{signing_input}.{signature}"), claims)
}

/// Reads the `jti` of a token without checking anything else, for the request log.
pub(crate) fn peek_jti(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("jti")?.as_str().map(str::to_owned)
}

/// Verifies a token's shape, signature and time window at `now` (Unix seconds, on the
/// sandbox's clock); returns its claims.
///
/// A token whose `exp` is at or before now has expired.
pub(crate) fn verify(secret: &[u8], token: &str, now: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header_value: Header =
        serde_json::from_slice(&header_bytes).map_err(|_| TokenError::Malformed)?;
    if header_value.alg != ALG || header_value.typ != "JWT" {
        return Err(TokenError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let payload_bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims =
        serde_json::from_slice(&payload_bytes).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let now = now_secs();
        let (token, claims) = issue(secret, 1, 10000, Duration::from_secs(60), "iss", now);
        assert_eq!((claims.nbf, claims.iat, claims.exp), (now, now, now + 60));
        let verified = verify(secret, &token, now).expect("valid");
        assert_eq!(verified.jti, claims.jti);
        assert_eq!(verified.site_id, "10000");
        assert_eq!(peek_jti(&token).as_deref(), Some(claims.jti.as_str()));
        assert_eq!(
            verify(b"other", &token, now).unwrap_err(),
            TokenError::BadSignature
        );
        let mut tampered = token.clone();
        tampered.push('x');
        assert!(verify(secret, &tampered, now).is_err());
        assert_eq!(
            verify(secret, "a.b", now).unwrap_err(),
            TokenError::Malformed
        );
    }

    #[test]
    fn zero_lifetime_is_expired() {
        let secret = b"k";
        let now = now_secs();
        let (token, _) = issue(secret, 1, 1, Duration::ZERO, "iss", now);
        assert_eq!(
            verify(secret, &token, now).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(lifetime_secs(Duration::from_millis(1)), 1);
    }

    #[test]
    fn a_lifetime_of_duration_max_is_a_token_valid_until_the_latest_date() {
        let secret = b"k";
        let now = now_secs();
        let (token, claims) = issue(secret, 1, 1, Duration::MAX, "iss", now);
        assert_eq!(claims.exp, LATEST_SECS);
        assert!(verify(secret, &token, now).is_ok());
        assert!(verify(secret, &token, LATEST_SECS - 1).is_ok());
        // On a clock already past it, still no earlier than now.
        assert_eq!(expiry(i64::MAX, Duration::MAX), i64::MAX);
        assert_eq!(expiry(LATEST_SECS + 5, Duration::ZERO), LATEST_SECS + 5);
    }

    #[test]
    fn the_time_window_is_checked_at_the_given_now() {
        let secret = b"k";
        let (token, _) = issue(secret, 1, 1, Duration::from_secs(60), "iss", 1_000);
        assert!(verify(secret, &token, 1_000).is_ok());
        assert!(verify(secret, &token, 1_059).is_ok());
        assert_eq!(
            verify(secret, &token, 999).unwrap_err(),
            TokenError::NotYetValid
        );
        assert_eq!(
            verify(secret, &token, 1_060).unwrap_err(),
            TokenError::Expired
        );
    }
}
