//! The faults and modes a test sets: [`Fault`] (one-off, queued with
//! [`crate::Controls::fail_next`]), [`TokenHost`] (how the token route behaves), and the
//! [`Route`]s they aim at, with their JSON forms and one example of each.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::Controls;

/// The `Location` of the redirect examples: another origin, on a domain reserved for examples.
const ELSEWHERE: &str = "https://elsewhere.example/x";

/// A fault to inject into a request; see [`Controls::fail_next`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status (`500`, `502`, `503`, ...) and a JSON error body.
    Status(u16),
    /// Answer `429` with this `Retry-After` value (seconds such as `"0"` or `"1"`, or an HTTP
    /// date) and a JSON error body.
    RateLimited {
        /// The value of the `Retry-After` header.
        retry_after: String,
    },
    /// Close the connection without a response; the request is not processed.
    DropBeforeHandling,
    /// Process the request (a create does create the segment), then close the connection
    /// without a response.
    DropAfterHandling,
    /// Answer with this status and an error body in an odd shape.
    OddBody {
        /// The status of the response.
        status: u16,
        /// The shape of the body.
        body: OddBody,
    },
    /// Delay this one request, then handle it normally. In JSON, the delay is in milliseconds.
    Latency(#[serde(with = "duration_ms")] Duration),
    /// Answer with this status and an HTML error page (`content-type: text/html`) of exactly
    /// `bytes` bytes, with its `content-length`; the request is not processed. The page is
    /// streamed in chunks of about 64 KiB, never held whole, so `bytes` may be far larger than
    /// memory (e.g. 256 MiB). A status that is not a valid HTTP status is sent as `500`.
    ///
    /// In JSON: `{"huge_error_body": {"status": 500, "bytes": 268435456}}`.
    HugeErrorBody {
        /// The status of the response.
        status: u16,
        /// The exact length of the body.
        bytes: u64,
    },
    /// Process the request normally up to its status and headers (`200` for a list), then send,
    /// instead of its body, a JSON array that never ends: `[` followed by the same
    /// segment-like object, each followed by `,`, streamed in chunks, with no
    /// `content-length`. The body goes on until the client disconnects or the sandbox stops. A
    /// `204` is sent as `200`.
    ///
    /// In JSON: `"endless_body"`.
    EndlessBody,
    /// Accept the request, log it on arrival (with status `None`, before any latency set with
    /// [`Controls::set_latency`]) and never answer: the connection stays open until the client
    /// gives up or the sandbox stops, as under [`TokenHost::Silent`]. The request is not
    /// processed.
    ///
    /// In JSON: `"hang"`.
    Hang,
    /// Process the request normally (a create does create the segment, a delete does delete
    /// it), then answer a success with this other `2xx` status instead of the documented one
    /// (e.g. `200` for a create's `201` or a delete's `204`), without a `Location` header. A
    /// request that fails is answered with its error, unchanged.
    ///
    /// In JSON: `{"alt_success": {"status": 200, "body": "Deleted"}}` (`body` may be `null` or
    /// left out). The admin route refuses a status outside `200..=299` with `400`;
    /// [`Controls::fail_next`] takes it, and it is sent as `200`.
    AltSuccess {
        /// The status of the response; one outside `200..=299` is sent as `200`.
        status: u16,
        /// The body that replaces the normal one, sent as `text/plain; charset=utf-8`; `None`
        /// keeps the normal body (e.g. the created segment's JSON).
        #[serde(default)]
        body: Option<String>,
    },
    /// Process the request normally (a create does create the segment), then send its real
    /// status and headers with the `content-length` of its whole body, but only the first
    /// `after` bytes of that body, and close the connection: the client sees the body cut
    /// short (an early end of file over HTTP/1, a reset stream over HTTP/2).
    ///
    /// The body is always cut, at least by its last byte: a body of `len` bytes is cut after
    /// `min(after, len - 1)` bytes. A response with no body (a delete's `204`) is sent as `200`
    /// announcing one byte, and sends none. With the gzip mode, the encoded body is the one cut.
    ///
    /// In JSON: `{"truncated_body": {"after": 10}}`.
    TruncatedBody {
        /// How many bytes of the body are sent before the connection closes.
        after: u64,
    },
    /// Answer with this redirect instead of processing the request (a create creates nothing):
    /// the status, a `Location` header when one is given (e.g. to another origin, where a
    /// client should not follow with its bearer token), and an HTML body, either a short page
    /// or, when `endless`, a page that never ends, streamed in chunks with no
    /// `content-length` and never held whole, until the client disconnects or the sandbox
    /// stops.
    ///
    /// In JSON: `{"redirect": {"status": 302, "location": "https://elsewhere.example/x",
    /// "endless": false}}` (`location` and `endless` may be left out). The admin route refuses a
    /// status outside `300..=399` and a location that is not a valid header value with `400`;
    /// [`Controls::fail_next`] takes them: the status is sent as `302` and the location left
    /// out.
    Redirect {
        /// The status of the response; one outside `300..=399` is sent as `302`.
        status: u16,
        /// The value of the `Location` header; none when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
        /// Whether the body never ends.
        #[serde(default)]
        endless: bool,
    },
}

impl Fault {
    /// One example of each kind of fault, with small sizes and short delays, for a test that
    /// runs a client against every fault: a new kind of fault is in this list as soon as it
    /// exists (the list is checked against the enum by an exhaustive `match` and a test).
    ///
    /// They are, in this order: `Status(503)`, `RateLimited` with `Retry-After: 1`,
    /// `DropBeforeHandling`, `DropAfterHandling`, `OddBody` (`400`, relaxed), `Latency` of
    /// 50 ms, `HugeErrorBody` (`500`, 1 MiB), `EndlessBody`, `Hang`, `AltSuccess` (`200`, the
    /// normal body), `TruncatedBody` after 10 bytes, and an endless `Redirect` (`302`) to
    /// another origin.
    ///
    /// ```
    /// use comm100_sandbox::Fault;
    ///
    /// let examples = Fault::examples();
    /// assert!(examples.contains(&Fault::Hang));
    /// // Each has its JSON form, which the admin route takes.
    /// for fault in &examples {
    ///     let json = serde_json::to_value(fault).unwrap();
    ///     assert_eq!(&serde_json::from_value::<Fault>(json).unwrap(), fault);
    /// }
    /// ```
    pub fn examples() -> Vec<Fault> {
        let examples = vec![
            Fault::Status(503),
            Fault::RateLimited {
                retry_after: "1".into(),
            },
            Fault::DropBeforeHandling,
            Fault::DropAfterHandling,
            Fault::OddBody {
                status: 400,
                body: OddBody::Relaxed,
            },
            Fault::Latency(Duration::from_millis(50)),
            Fault::HugeErrorBody {
                status: 500,
                bytes: 1 << 20,
            },
            Fault::EndlessBody,
            Fault::Hang,
            Fault::AltSuccess {
                status: 200,
                body: None,
            },
            Fault::TruncatedBody { after: 10 },
            Fault::Redirect {
                status: 302,
                location: Some(ELSEWHERE.into()),
                endless: true,
            },
        ];
        for example in &examples {
            // No wildcard: a new variant does not compile until it is named here, next to the
            // list it must join (`every_variant_has_one_example` checks that it did).
            match example {
                Fault::Status(_)
                | Fault::RateLimited { .. }
                | Fault::DropBeforeHandling
                | Fault::DropAfterHandling
                | Fault::OddBody { .. }
                | Fault::Latency(_)
                | Fault::HugeErrorBody { .. }
                | Fault::EndlessBody
                | Fault::Hang
                | Fault::AltSuccess { .. }
                | Fault::TruncatedBody { .. }
                | Fault::Redirect { .. } => {}
            }
        }
        examples
    }
}

/// How the token route (both token paths) behaves, until told otherwise; see
/// [`Controls::set_token_host`].
///
/// In JSON: `"normal"`, `{"slow": 250}` (milliseconds),
/// `{"refusing": {"status": 503, "message": "..", "retry_after": "7"}}` (`retry_after` optional),
/// `"silent"` or `{"redirect": {"status": 307, "location": ".."}}`.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenHost {
    /// Answer normally (the default).
    #[default]
    Normal,
    /// Delay every token response by this long, then answer normally. In JSON, the delay is in
    /// milliseconds.
    Slow(#[serde(with = "duration_ms")] Duration),
    /// Refuse every login with this status, Comm100's JSON error body
    /// `{"code": status * 1000, "message": message}` and, when given, a `Retry-After` header.
    Refusing {
        /// The status of the refusal, e.g. `503`; one that is not a valid HTTP status is sent
        /// as `500`.
        status: u16,
        /// The `message` of the error body.
        message: String,
        /// The value of the `Retry-After` header (seconds or an HTTP date); none when `None`.
        /// A value that is not a valid header value is sent as `1`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
    },
    /// Accept the request, read it, log it, and never answer: the connection stays open until
    /// the client gives up or the sandbox shuts down.
    Silent,
    /// Answer every login with this redirect and a short HTML page; no token is issued. In
    /// JSON: `{"redirect": {"status": 307, "location": "https://elsewhere.example/x"}}`
    /// (`location` may be left out).
    ///
    /// The admin route refuses a status outside `300..=399` and a location that is not a valid
    /// header value with `400`; [`Controls::set_token_host`] takes them: the status is sent as
    /// `302` and the location left out.
    Redirect {
        /// The status of the response; one outside `300..=399` is sent as `302`.
        status: u16,
        /// The value of the `Location` header; none when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
}

impl TokenHost {
    /// One example of each token-host mode, [`TokenHost::Normal`] included, with short delays,
    /// for a test that runs a client against every mode: a new mode is in this list as soon as
    /// it exists (checked as [`Fault::examples`] is).
    ///
    /// They are, in this order: `Normal`, `Slow` by 50 ms, `Refusing` with `503` and
    /// `Retry-After: 1`, `Silent`, and a `Redirect` (`302`) to another origin.
    pub fn examples() -> Vec<TokenHost> {
        let examples = vec![
            TokenHost::Normal,
            TokenHost::Slow(Duration::from_millis(50)),
            TokenHost::Refusing {
                status: 503,
                message: "The token service is unavailable.".into(),
                retry_after: Some("1".into()),
            },
            TokenHost::Silent,
            TokenHost::Redirect {
                status: 302,
                location: Some(ELSEWHERE.into()),
            },
        ];
        for example in &examples {
            // No wildcard, as in `Fault::examples`.
            match example {
                TokenHost::Normal
                | TokenHost::Slow(_)
                | TokenHost::Refusing { .. }
                | TokenHost::Silent
                | TokenHost::Redirect { .. } => {}
            }
        }
        examples
    }
}

/// The rate-limit mode: a token bucket per client address, as real API gateways keep (Comm100's
/// later platform documents 300 calls per 5 minutes per IP); see [`Controls::set_rate_limit`].
///
/// Each address starts with `size` tokens; each API request (the token route included) takes
/// one, and one comes back every `every`, up to `size`. A request that finds none is answered
/// `429` with `Retry-After`: the seconds until the next token, rounded up.
///
/// In JSON: `{"size": 300, "every_ms": 1000}`.
///
/// ```
/// use std::time::Duration;
/// use comm100_sandbox::RateLimit;
///
/// // 300 calls per 5 minutes: a burst of 300, then one a second.
/// let limit = RateLimit::new(300, Duration::from_secs(1));
/// assert_eq!(serde_json::to_value(limit).unwrap(), serde_json::json!({"size": 300, "every_ms": 1000}));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// How many tokens a bucket holds: the longest burst.
    pub size: u32,
    /// How long one token takes to come back; zero refills at once, so nothing is limited.
    #[serde(rename = "every_ms", with = "duration_ms")]
    pub every: Duration,
}

impl RateLimit {
    /// A bucket of `size` tokens per address, one coming back every `every`.
    pub fn new(size: u32, every: Duration) -> Self {
        Self { size, every }
    }
}

/// Error bodies in the odd shapes real servers send.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OddBody {
    /// The documents' non-JSON form with unquoted keys, `{ code: 400000, message: "..." }`,
    /// sent as `application/json`.
    Relaxed,
    /// An HTML error page, sent as `text/html`.
    Html,
    /// An empty body.
    Empty,
}

/// An operation of the API, for routing faults and reading the log.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST .../adminwebservice/api/jwttoken/generate`.
    Token,
    /// `GET /livechat/customerSegments`.
    List,
    /// `GET /livechat/customerSegments/{id}`.
    Get,
    /// `POST /livechat/customerSegments`.
    Create,
    /// `PUT /livechat/customerSegments/{id}`.
    Update,
    /// `DELETE /livechat/customerSegments/{id}`.
    Delete,
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

    use super::{Fault, TokenHost};

    /// The variant names serde derives for an enum, captured from `deserialize_enum`: the
    /// enum's own list, which no hand-written list can forget a variant of.
    fn variants<T: DeserializeOwned>() -> Vec<&'static str> {
        match T::deserialize(Probe) {
            Err(Found(variants)) => variants.to_vec(),
            Ok(_) => unreachable!("the probe deserialises nothing"),
        }
    }

    struct Probe;

    #[derive(Debug)]
    struct Found(&'static [&'static str]);

    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "variants {:?}", self.0)
        }
    }

    impl std::error::Error for Found {}

    impl de::Error for Found {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Found(&[])
        }
    }

    impl<'de> Deserializer<'de> for Probe {
        type Error = Found;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(variants))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
            ignored_any
        }
    }

    /// The variant name of a value in its JSON form: a string, or an object's one key.
    fn name(value: serde_json::Value) -> String {
        match value {
            serde_json::Value::String(name) => name,
            serde_json::Value::Object(map) if map.len() == 1 => map.keys().next().unwrap().clone(),
            other => panic!("not an externally tagged variant: {other}"),
        }
    }

    fn names<T: serde::Serialize>(examples: &[T]) -> Vec<String> {
        examples
            .iter()
            .map(|e| name(serde_json::to_value(e).unwrap()))
            .collect()
    }

    #[test]
    fn every_variant_has_one_example() {
        assert_eq!(names(&Fault::examples()), variants::<Fault>());
        assert_eq!(names(&TokenHost::examples()), variants::<TokenHost>());
    }
}
