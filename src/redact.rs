//! Redaction of credentials from text a server sent back, before it is kept in an error, a
//! message or a log line: a server may echo the `Authorization` header or the login's body.

use std::borrow::Cow;

/// What replaces a credential.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not looked for: replacing every `a` or `ab` in a message would
/// destroy it, and hides nothing worth hiding.
const MIN_SECRET_CHARS: usize = 4;

/// `text` with every occurrence of each of `secrets` (those of at least 4 characters) replaced
/// by `[REDACTED]`, every `Bearer <credentials>` (the word in any case, then white space, then
/// a run without white space) by `Bearer [REDACTED]`, and every run shaped like a JWT (`eyJ`,
/// base64url, a dot, base64url, a dot, optional base64url) by `[REDACTED]`.
///
/// Borrows `text` when nothing matches, which is the common case: it runs on every error
/// message.
pub(crate) fn redact<'a>(text: &'a str, secrets: &[&str]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    let mut found = secrets
        .iter()
        .copied()
        .filter(|s| s.chars().count() >= MIN_SECRET_CHARS && text.contains(s))
        .peekable();
    if found.peek().is_some() {
        let mut found: Vec<&str> = found.collect();
        // The longest first: a secret that holds a shorter one is then replaced whole, rather
        // than leaving what surrounds the shorter one.
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut owned = text.to_string();
        for secret in found {
            owned = owned.replace(secret, REDACTED);
        }
        out = Cow::Owned(owned);
    }
    match redact_patterns(&out) {
        Some(redacted) => Cow::Owned(redacted),
        None => out,
    }
}

/// `text` with `Bearer` credentials and JWT-shaped runs replaced, or `None` when it has none.
fn redact_patterns(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // `text[copied..]` is what has not been copied to `out` yet.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Both patterns begin with an ASCII byte, so `i` is a character boundary at a match.
        let found = match bytes[i] {
            b'b' | b'B' => bearer_at(bytes, i).map(|end| (end, "Bearer [REDACTED]")),
            b'e' => jwt_at(bytes, i).map(|end| (end, REDACTED)),
            _ => None,
        };
        match found {
            Some((end, replacement)) => {
                let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                out.push_str(&text[copied..i]);
                out.push_str(replacement);
                copied = end;
                i = end;
            }
            None => i += 1,
        }
    }
    let mut out = out?;
    out.push_str(&text[copied..]);
    Some(out)
}

/// The end of `Bearer <credentials>` starting at `start`, unless the credentials are already
/// `[REDACTED]`.
fn bearer_at(bytes: &[u8], start: usize) -> Option<usize> {
    const WORD: &[u8] = b"bearer";
    let word = bytes.get(start..start + WORD.len())?;
    if !word.eq_ignore_ascii_case(WORD) {
        return None;
    }
    let spaced = start + WORD.len();
    let credentials = spaced + count_while(&bytes[spaced..], |b| b.is_ascii_whitespace());
    if credentials == spaced {
        return None;
    }
    let end = credentials + count_while(&bytes[credentials..], |b| !b.is_ascii_whitespace());
    let run = &bytes[credentials..end];
    (!run.is_empty() && run != REDACTED.as_bytes()).then_some(end)
}

/// The end of a JWT-shaped run starting at `start`: `eyJ` and base64url, `.`, base64url (at
/// least one), `.`, base64url (maybe none).
fn jwt_at(bytes: &[u8], start: usize) -> Option<usize> {
    if !bytes[start..].starts_with(b"eyJ") {
        return None;
    }
    let header_end = start + 3 + count_while(&bytes[start + 3..], is_base64url);
    let payload = header_end + 1;
    if bytes.get(header_end) != Some(&b'.') {
        return None;
    }
    let payload_end = payload + count_while(&bytes[payload..], is_base64url);
    if payload_end == payload || bytes.get(payload_end) != Some(&b'.') {
        return None;
    }
    let signature = payload_end + 1;
    Some(signature + count_while(&bytes[signature..], is_base64url))
}

fn count_while(bytes: &[u8], keep: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take_while(|b| keep(**b)).count()
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5fQ.c2lnbmF0dXJl_-x";

    fn redacted(text: &str, secrets: &[&str]) -> String {
        redact(text, secrets).into_owned()
    }

    #[test]
    fn text_without_credentials_is_borrowed() {
        for text in [
            "",
            "The segment was not found.",
            "a bear, a beard, eye, eyJ alone, eyJa.b without a second dot",
            "Bearer [REDACTED] was already redacted",
            "Bearer",
            "bearer   ",
        ] {
            assert!(
                matches!(redact(text, &["hunter2-secret"]), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        // Secrets too short to look for.
        assert!(matches!(
            redact("a b c abc", &["", "a", "abc"]),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn bearer_credentials_are_redacted_whatever_their_case_and_shape() {
        assert_eq!(
            redacted(
                "Invalid header Authorization: Bearer opaque.token-1, retry",
                &[]
            ),
            "Invalid header Authorization: Bearer [REDACTED] retry"
        );
        assert_eq!(
            redacted("got bEaReR\tabc and BEARER  def", &[]),
            "got Bearer [REDACTED] and Bearer [REDACTED]"
        );
        assert_eq!(redacted("Bearer x", &[]), "Bearer [REDACTED]");
        // Redacting twice changes nothing.
        let once = redacted(&format!("Bearer {JWT}"), &[]);
        assert_eq!(once, "Bearer [REDACTED]");
        assert!(matches!(redact(&once, &[]), Cow::Borrowed(_)));
    }

    #[test]
    fn jwt_shaped_runs_are_redacted() {
        assert_eq!(
            redacted(&format!("token={JWT}; expired"), &[]),
            "token=[REDACTED]; expired"
        );
        assert_eq!(
            redacted(&format!("\"{JWT}\",\"{JWT}\""), &[]),
            "\"[REDACTED]\",\"[REDACTED]\""
        );
        // Unsigned: the signature may be empty.
        assert_eq!(
            redacted("t eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. end", &[]),
            "t [REDACTED] end"
        );
        // Glued to a word it is still redacted: better a word too many than a token.
        assert_eq!(redacted(&format!("token{JWT}"), &[]), "token[REDACTED]");
        // Text around it in any script is kept.
        assert_eq!(redacted(&format!("é{JWT}名"), &[]), "é[REDACTED]名");
    }

    #[test]
    fn every_known_secret_is_redacted_longest_first() {
        assert_eq!(
            redacted(
                "user a@x.com password 'pass word' and pass word again",
                &["pass word"]
            ),
            "user a@x.com password '[REDACTED]' and [REDACTED] again"
        );
        // A secret that holds another is replaced whole.
        assert_eq!(
            redacted("echo: hunter2-secret", &["hunter2", "hunter2-secret"]),
            "echo: [REDACTED]"
        );
        // Known secrets and patterns together.
        assert_eq!(
            redacted(&format!("pw s3cr3t, token {JWT}"), &["s3cr3t", JWT]),
            "pw [REDACTED], token [REDACTED]"
        );
        assert_eq!(
            redacted("pw s3cr3t", &["", "s3", "s3cr3t"]),
            "pw [REDACTED]"
        );
    }
}
