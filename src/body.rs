//! Response bodies, read within bounds: success bodies up to a configurable limit, error bodies
//! up to [`ERROR_BODY_LIMIT`], and decoding that never keeps a whole body in an error.
//!
//! A server can send anything: a 256 MiB HTML error page, a body that never ends. Nothing here
//! buffers past its limit; what is over it is dropped with the connection.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use progenitor_client::ResponseValue;
use reqwest::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Response, StatusCode, Url};

use crate::error::{Error, OPERATION_HEADER};
use crate::redact::redact;

/// The default limit of a success body: 32 MiB, nine times a list of 10,000 segments (3.65 MB).
pub(crate) const DEFAULT_MAX_RESPONSE_BODY: usize = 32 * 1024 * 1024;
/// How much of an error body is read; the rest is dropped with the connection.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The relaxed-JSON reader runs only on error bodies up to this size.
const RELAXED_JSON_LIMIT: usize = 4 * 1024;
/// The most characters of a server's error message that are kept.
pub(crate) const MESSAGE_CHARS: usize = 500;
/// The most bytes of an undecodable success body kept in `InvalidResponsePayload`.
const PAYLOAD_SNIPPET: usize = 1024;

/// Why a body could not be read whole.
pub(crate) enum ReadError {
    /// It is longer than the limit; nothing past the limit was read.
    TooLarge,
    /// The connection failed while reading it.
    Transport(reqwest::Error),
}

/// Reads a body up to `limit` bytes. A `Content-Length` over the limit fails before reading.
/// Returns the bytes and whether the body was cut at the limit (only when `cut_at_limit`;
/// otherwise a longer body is [`ReadError::TooLarge`]).
pub(crate) async fn read_capped(
    response: &mut Response,
    limit: usize,
    cut_at_limit: bool,
) -> Result<(Bytes, bool), ReadError> {
    let declared = response.content_length();
    if !cut_at_limit && declared.is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let Some(first) = next(response).await? else {
        return Ok((Bytes::new(), false));
    };
    if first.len() > limit {
        return match cut_at_limit {
            true => Ok((first.slice(..limit), true)),
            false => Err(ReadError::TooLarge),
        };
    }
    // A body that arrives in one chunk, as most do, is kept as it is: no copy.
    let Some(second) = next(response).await? else {
        return Ok((first, false));
    };
    let capacity = declared.map_or(first.len() + second.len(), |n| n.min(limit as u64) as usize);
    let mut buffer = BytesMut::with_capacity(capacity);
    buffer.extend_from_slice(&first);
    let mut chunk = Some(second);
    while let Some(this) = chunk {
        let room = limit - buffer.len();
        if this.len() > room {
            if !cut_at_limit {
                return Err(ReadError::TooLarge);
            }
            buffer.extend_from_slice(&this[..room]);
            return Ok((buffer.freeze(), true));
        }
        buffer.extend_from_slice(&this);
        chunk = next(response).await?;
    }
    Ok((buffer.freeze(), false))
}

async fn next(response: &mut Response) -> Result<Option<Bytes>, ReadError> {
    response.chunk().await.map_err(ReadError::Transport)
}

/// A response with the status, the headers (taken, not copied) and `body` as its (already
/// read) body. Its URL is not kept: nothing reads it once the body is in hand.
pub(crate) fn with_body(
    status: StatusCode,
    response: &mut Response,
    body: reqwest::Body,
) -> Response {
    use reqwest::ResponseBuilderExt as _;
    // The URL goes along: without it, reqwest parses a placeholder URL for every rebuild.
    let mut rebuilt = http::Response::builder()
        .url(response.url().clone())
        .body(body)
        .unwrap_or_default();
    *rebuilt.status_mut() = status;
    *rebuilt.headers_mut() = std::mem::take(response.headers_mut());
    Response::from(rebuilt)
}

/// A success body the hooks have read whole, kept in the response's extensions so that the
/// response itself travels on unchanged and nothing reads the body twice.
#[derive(Clone)]
pub(crate) struct ReadBody(pub(crate) Bytes);

/// The body the hooks read, or what is left to read of the response.
pub(crate) async fn body_of(mut response: Response) -> reqwest::Result<Bytes> {
    match response.extensions_mut().remove::<ReadBody>() {
        Some(ReadBody(bytes)) => Ok(bytes),
        // Boxed: reqwest's read is large, and the common case above never makes it.
        None => Box::pin(response.bytes()).await,
    }
}

/// A response as a caller of a raw call reads it: with the body the hooks read put back.
pub(crate) fn readable(mut response: Response) -> Response {
    match response.extensions_mut().remove::<ReadBody>() {
        Some(ReadBody(bytes)) => {
            with_body(response.status(), &mut response, reqwest::Body::from(bytes))
        }
        None => response,
    }
}

/// A `reqwest::Error` whose source is `error`, naming `url` when given.
///
/// Hooks that must fail a request that got no answer can only return a `reqwest::Error`, and
/// reqwest makes those only itself: this one is the error of reading a body that fails at once.
pub(crate) async fn reqwest_error(error: Error, url: Option<&Url>) -> reqwest::Error {
    let body = reqwest::Body::wrap(FailingBody(Some(error)));
    // Boxed, so that the futures of the callers (on the common path too) stay small.
    let failed = match Box::pin(Response::from(http::Response::new(body)).bytes()).await {
        Err(e) => e,
        Ok(_) => unreachable!("a body whose first frame is an error cannot be read"),
    };
    match url {
        Some(url) => failed.with_url(url.clone()),
        None => failed.without_url(),
    }
}

/// A body whose first frame is an error.
struct FailingBody(Option<Error>);

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(Err))
    }
}

/// Decodes a JSON body as progenitor's `ResponseValue::from_response` does, but an undecodable
/// body is kept as a snippet of at most 1 KiB, so that no error's `Display` prints a whole body.
/// The generated code calls this instead of progenitor's (see `codegen/mod.rs`).
pub(crate) async fn decode_response<T: serde::de::DeserializeOwned, E>(
    mut response: Response,
) -> Result<ResponseValue<T>, progenitor_client::Error<E>> {
    let status = response.status();
    // Taken, not cloned: the response is ours, and only its body is read after this.
    let headers = std::mem::take(response.headers_mut());
    let full = body_of(response)
        .await
        .map_err(progenitor_client::Error::ResponseBodyError)?;
    decode(status, headers, full)
}

/// [`decode_response`] for a generated operation's success, whose body the hooks read and
/// handed back beside the response (`hooks::exec_documented`); without it, the response's own.
pub(crate) async fn decode_read<T: serde::de::DeserializeOwned, E>(
    mut response: Response,
    read: Option<Bytes>,
) -> Result<ResponseValue<T>, progenitor_client::Error<E>> {
    match read {
        Some(full) => decode(
            response.status(),
            std::mem::take(response.headers_mut()),
            full,
        ),
        None => Box::pin(decode_response(response)).await,
    }
}

// progenitor's error type is what the generated code returns.
#[allow(clippy::result_large_err)]
fn decode<T: serde::de::DeserializeOwned, E>(
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    full: Bytes,
) -> Result<ResponseValue<T>, progenitor_client::Error<E>> {
    match serde_json::from_slice(&full) {
        Ok(inner) => Ok(ResponseValue::new(inner, status, headers)),
        Err(e) => Err(progenitor_client::Error::InvalidResponsePayload(
            full.slice(..full.len().min(PAYLOAD_SNIPPET)),
            e,
        )),
    }
}

/// Reads Comm100's code and message from an error response's body (or a `3xx`'s), reading at
/// most [`ERROR_BODY_LIMIT`] of it; the rest is dropped with the connection.
pub(crate) async fn read_error_body(
    response: &mut Response,
    secrets: &[&str],
) -> (Option<i64>, String) {
    match read_capped(response, ERROR_BODY_LIMIT, true).await {
        Ok((body, cut)) => parse_error_body_with(&body, cut, secrets),
        Err(ReadError::Transport(e)) => (None, format!("the error body could not be read: {e}")),
        Err(ReadError::TooLarge) => (None, "(error body too large)".into()),
    }
}

/// An error response with its body rewritten as strict `{code, message}` JSON and the operation
/// named, so that progenitor always decodes it into `Error::ErrorResponse` with the status
/// intact.
pub(crate) fn error_response(
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

/// Reads `{code, message}` from strict JSON, then, for small bodies, from the relaxed form
/// Comm100's documents show (`{ code: 400000, message: "…" }`); otherwise keeps a short snippet
/// of the text. `cut`: the body is the first part of a longer one. The message is cut to
/// [`MESSAGE_CHARS`] characters, with control and format characters replaced by spaces, and
/// `Bearer` credentials and JWT-shaped runs redacted from the message and the snippet.
#[cfg(test)]
pub(crate) fn parse_error_body(body: &[u8], cut: bool) -> (Option<i64>, String) {
    parse_error_body_with(body, cut, &[])
}

/// [`parse_error_body`], with `secrets` (the password, the token sent) redacted as well.
pub(crate) fn parse_error_body_with(
    body: &[u8],
    cut: bool,
    secrets: &[&str],
) -> (Option<i64>, String) {
    let parsed = (!cut)
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
        .or_else(|| {
            let small = !cut && body.len() <= RELAXED_JSON_LIMIT;
            small
                .then(|| {
                    let strict = relaxed_to_json(std::str::from_utf8(body).ok()?)?;
                    serde_json::from_str::<serde_json::Value>(&strict).ok()
                })
                .flatten()
        })
        .filter(|v| v.is_object());
    if let Some(value) = parsed {
        let code = value
            .get("code")
            .and_then(|c| c.as_i64().or_else(|| c.as_str()?.trim().parse().ok()));
        let message = value
            .get("message")
            .and_then(|m| m.as_str())
            .map(|m| clean_message(m, secrets))
            .unwrap_or_else(|| snippet(body, false, secrets));
        return (code, message);
    }
    (None, snippet(body, cut, secrets))
}

/// Rewrites the relaxed JSON of Comm100's documents as strict JSON: keys without quotes are
/// quoted, strings in single quotes get double quotes, and a comma before a closing bracket is
/// dropped. Everything else is copied as it is, for `serde_json` to judge. `None` when a string
/// does not end.
fn relaxed_to_json(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push('"');
                loop {
                    match chars.next()? {
                        '\\' => {
                            let escaped = chars.next()?;
                            // `\'` means a quote only inside single quotes; JSON has no such escape.
                            if escaped != '\'' {
                                out.push('\\');
                            }
                            out.push(escaped);
                        }
                        end if end == c => break,
                        '"' => out.push_str("\\\""),
                        other => out.push(other),
                    }
                }
                out.push('"');
            }
            ',' => {
                let mut rest = chars.clone();
                while rest.next_if(|c| c.is_whitespace()).is_some() {}
                if !matches!(rest.peek(), Some('}' | ']')) {
                    out.push(',');
                }
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let mut word = String::from(c);
                while let Some(next) =
                    chars.next_if(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                {
                    word.push(next);
                }
                let mut rest = chars.clone();
                while rest.next_if(|c| c.is_whitespace()).is_some() {}
                let is_key = rest.peek() == Some(&':');
                let is_literal = matches!(word.as_str(), "true" | "false" | "null");
                if is_key && !is_literal {
                    out.push('"');
                    out.push_str(&word);
                    out.push('"');
                } else {
                    out.push_str(&word);
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// At most [`MESSAGE_CHARS`] characters, each character that could disguise a log line
/// replaced by a space (see [`clean_char`]), and credentials redacted (see [`redact`]).
fn clean_message(message: &str, secrets: &[&str]) -> String {
    let cleaned: String = message.chars().map(clean_char).collect();
    // Redacted before it is cut, so that no part of a credential survives the cut.
    let mut cleaned = redacted(cleaned, secrets);
    if cut(&mut cleaned, MESSAGE_CHARS) {
        cleaned.push('…');
    }
    cleaned
}

/// At most 200 characters of the start of a body, cleaned and redacted as a message and with
/// white space folded, or a note that it was empty. Only the first 4 KiB are looked at.
fn snippet(body: &[u8], cut_body: bool, secrets: &[&str]) -> String {
    let head = &body[..body.len().min(4 * 1024)];
    // Cleaned before folding, so that a format character between two words folds as a space.
    let cleaned: String = String::from_utf8_lossy(head)
        .chars()
        .map(clean_char)
        .collect();
    let mut folded = String::with_capacity(cleaned.len());
    for word in cleaned.split_whitespace() {
        if !folded.is_empty() {
            folded.push(' ');
        }
        folded.push_str(word);
    }
    if folded.is_empty() {
        return "(empty error body)".into();
    }
    let longer = cut_body || head.len() < body.len();
    let mut folded = redacted(folded, secrets);
    if cut(&mut folded, 200) || longer {
        folded.push('…');
    }
    format!("non-JSON error body: {folded}")
}

/// `text` with `secrets`, `Bearer` credentials and JWT-shaped runs redacted.
fn redacted(text: String, secrets: &[&str]) -> String {
    match redact(&text, secrets) {
        Cow::Borrowed(_) => text,
        Cow::Owned(redacted) => redacted,
    }
}

/// Cuts `text` to at most `max` characters; whether it was longer.
fn cut(text: &mut String, max: usize) -> bool {
    match text.char_indices().nth(max) {
        Some((at, _)) => {
            text.truncate(at);
            true
        }
        None => false,
    }
}

/// A character of a server's text as it is kept, or a space when it could make a log line
/// read otherwise than it is: control characters (Cc: new lines, escape sequences), format
/// characters (Cf: bidi overrides and isolates, zero-width spaces and joiners, the soft hyphen,
/// tags, ...), and the line and paragraph separators (Zl, Zp).
fn clean_char(c: char) -> char {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};
    // No ASCII character is a format character or a separator: the table is not needed.
    if c.is_ascii() {
        return if c.is_ascii_control() { ' ' } else { c };
    }
    match c.general_category() {
        GeneralCategory::Control
        | GeneralCategory::Format
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator => ' ',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_error_body;

    #[test]
    fn error_bodies_in_every_shape_keep_what_they_say() {
        let parse = |b: &[u8]| parse_error_body(b, false);
        assert_eq!(
            parse(br#"{"code":400000,"message":"bad"}"#),
            (Some(400000), "bad".into())
        );
        assert_eq!(
            parse(br#"{ code: 400000, message: "Parameter 'timeFrom' is required." }"#),
            (Some(400000), "Parameter 'timeFrom' is required.".into())
        );
        assert_eq!(
            parse(br#"{"code":"403001","message":"no"}"#),
            (Some(403001), "no".into())
        );
        assert_eq!(parse(b""), (None, "(empty error body)".into()));
        let (code, message) = parse(b"<html><body><h1>502 Bad Gateway</h1></body></html>");
        assert_eq!(code, None);
        assert_eq!(
            message,
            "non-JSON error body: <html><body><h1>502 Bad Gateway</h1></body></html>"
        );
        let (_, long) = parse("x".repeat(5000).as_bytes());
        assert!(long.chars().count() < 230, "{}", long.len());
        assert_eq!(parse(&[0xff, 0xfe, 0x00]).0, None);
        assert_eq!(parse(b"[1,2]").0, None);
    }

    #[test]
    fn messages_are_cut_and_stripped_of_control_characters() {
        let long = format!(r#"{{"code":1,"message":"{}"}}"#, "é".repeat(10_000));
        let (_, message) = parse_error_body(long.as_bytes(), false);
        assert_eq!(message.chars().count(), super::MESSAGE_CHARS + 1);
        let (_, message) =
            parse_error_body(br#"{"code":1,"message":"a\u0000b\nc\u001b[31md"}"#, false);
        assert_eq!(message, "a b c [31md");
        // Format characters (Cf) and the line separators, in a message and in a snippet.
        let spoofing = "\u{202E}evil\u{202C} a\u{200B}b\u{FEFF}c\u{00AD}d\u{2066}e\u{2069}\u{061C}\u{180E}\u{E0001}\u{E0041}\u{2060}\u{2028}\u{2029}f";
        let json = serde_json::json!({ "code": 1, "message": spoofing }).to_string();
        let (_, message) = parse_error_body(json.as_bytes(), false);
        assert_eq!(message, format!(" evil  a b c d e{}f", " ".repeat(8)));
        let (_, snippet) = parse_error_body(spoofing.as_bytes(), false);
        assert_eq!(snippet, "non-JSON error body: evil a b c d e f");
        // Credentials a server echoes, in a message or a snippet, also where it is cut.
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        let echo = format!("Authorization: Bearer {jwt}, token {jwt}");
        let json = serde_json::json!({ "code": 1, "message": echo }).to_string();
        assert_eq!(
            parse_error_body(json.as_bytes(), false).1,
            "Authorization: Bearer [REDACTED] token [REDACTED]"
        );
        let html = format!("<p>{}{jwt}</p>", "x ".repeat(95));
        let (_, snippet) = parse_error_body(html.as_bytes(), false);
        assert!(
            !snippet.contains("eyJ") && snippet.ends_with('…'),
            "{snippet}"
        );
        let long = format!("{}{jwt}", "y".repeat(super::MESSAGE_CHARS - 10));
        let json = serde_json::json!({ "message": long }).to_string();
        let (_, message) = parse_error_body(json.as_bytes(), false);
        assert!(
            !message.contains("eyJ") && message.ends_with("[REDACTED]"),
            "{message}"
        );
        // Letters of every script stay.
        let (_, message) = parse_error_body(r#"{"message":"naïve 名前 שלום"}"#.as_bytes(), false);
        assert_eq!(message, "naïve 名前 שלום");
        // A body cut at the limit is never parsed as JSON, relaxed or strict, and says so.
        let (code, message) = parse_error_body(br#"{"code":1,"message":"x"}"#, true);
        assert_eq!(code, None);
        assert!(message.ends_with('…'), "{message}");
        // Single quotes, trailing commas, and quotes inside strings.
        assert_eq!(
            parse_error_body(b"{code:400001,message:'it\\'s \"odd\"',}", false),
            (Some(400001), "it's \"odd\"".into())
        );
        assert_eq!(
            parse_error_body(b"{ code: 1, message: \"a\", extra: [1, 2,], }", false),
            (Some(1), "a".into())
        );
        assert_eq!(
            parse_error_body(b"{ code: 1, message: \"never ends", false).0,
            None
        );
        // The relaxed reader is for small bodies only.
        let big = format!("{{ code: 1, message: \"{}\" }}", "y".repeat(8 * 1024));
        assert_eq!(parse_error_body(big.as_bytes(), false).0, None);
    }
}
