//! Typed views of the sandbox's state, as [`crate::Controls`] returns them.

use serde::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

#[cfg(doc)]
use crate::BODY_KEPT;
use crate::segments::parse_uuid;
use crate::{Fault, Route};

/// One request as the sandbox saw it.
///
/// In JSON (the admin route `GET /__sandbox/requests`), `body` is the body parsed as JSON, as
/// [`RequestRecord::json`] gives it, or `null`.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The status answered; `None` when the connection was dropped without a response, or
    /// while a request is held unanswered ([`Fault::Hang`], a slow or silent token host).
    pub status: Option<u16>,
    /// The operation the request was routed to, if it matched one.
    pub route: Option<Route>,
    /// The `jti` of the bearer token, if one was sent and its payload could be read (whether or
    /// not the token was valid).
    pub token_jti: Option<String>,
    /// Whether the request carried `Authorization: Bearer ...`.
    pub had_token: bool,
    /// The request headers, names in lower case; the value of `authorization` is replaced by
    /// `<redacted>`.
    pub headers: Vec<(String, String)>,
    /// The request body as received, its first [`BODY_KEPT`] bytes: the log never holds a whole
    /// large body. On a token path, the JSON body with its `Password` replaced by
    /// `<redacted>`, or nothing when the body is not JSON or longer than [`BODY_KEPT`] (so a
    /// password is never kept). [`RequestRecord::json`] parses it.
    pub body: Vec<u8>,
    /// The length of the whole request body, in bytes.
    pub body_len: u64,
    /// Whether `body` is less than the whole body.
    pub(crate) body_cut: bool,
    /// The fault applied to the request, if any.
    pub fault: Option<Fault>,
    /// The connection the request came on: connections are numbered 1, 2, ... in the order the
    /// sandbox accepted them, so the records that share a number shared a connection.
    pub connection: u64,
    /// The HTTP version of the request, `"HTTP/1.1"` or `"HTTP/2.0"` (also `"HTTP/1.0"`).
    pub version: String,
    /// Whether the response went out gzip-encoded (`Content-Encoding: gzip`); see
    /// [`crate::Controls::set_gzip`].
    pub gzip: bool,
}

impl RequestRecord {
    /// The body parsed as JSON: `None` when there was no body, when it was longer than what the
    /// record keeps ([`BODY_KEPT`]), or when it is not JSON. Parsed on each call, since a
    /// parsed body can take many times its size.
    pub fn json(&self) -> Option<Value> {
        if self.body.is_empty() || self.body_cut {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }

    /// About how many bytes the record holds, for the log's cap.
    pub(crate) fn heap_size(&self) -> usize {
        let strings = [&self.method, &self.path, &self.version]
            .into_iter()
            .chain(self.token_jti.as_ref())
            .map(String::capacity)
            .sum::<usize>();
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| name.capacity() + value.capacity() + 2 * size_of::<String>())
            .sum::<usize>();
        size_of::<Self>() + strings + headers + self.body.capacity()
    }
}

impl Serialize for RequestRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// The record as the admin route shows it, the body parsed.
        #[derive(Serialize)]
        struct Shown<'a> {
            method: &'a str,
            path: &'a str,
            status: Option<u16>,
            route: Option<Route>,
            token_jti: Option<&'a str>,
            had_token: bool,
            headers: &'a [(String, String)],
            body: Option<Value>,
            body_len: u64,
            fault: Option<&'a Fault>,
            connection: u64,
            version: &'a str,
            gzip: bool,
        }
        Shown {
            method: &self.method,
            path: &self.path,
            status: self.status,
            route: self.route,
            token_jti: self.token_jti.as_deref(),
            had_token: self.had_token,
            headers: &self.headers,
            body: self.json(),
            body_len: self.body_len,
            fault: self.fault.as_ref(),
            connection: self.connection,
            version: &self.version,
            gzip: self.gzip,
        }
        .serialize(s)
    }
}

/// A stored segment: its known fields, typed, and the whole record as the API serves it.
///
/// A known field is `None` when the record lacks it, holds `null`, or holds a value of another
/// type (an odd record's, see [`crate::Controls::seed_odd_segments`]); [`SegmentRecord::raw`]
/// keeps every field as stored, unknown ones included. Indexing reads the raw record,
/// `record["priority"]` (`Value::Null` when absent), and the record serialises as it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentRecord {
    /// The id the API's paths name.
    pub id: Uuid,
    /// `name`.
    pub name: Option<String>,
    /// `color`, e.g. `339FD9`.
    pub color: Option<String>,
    /// `isEnable`.
    pub is_enable: Option<bool>,
    /// `order`.
    pub order: Option<i64>,
    /// `description`.
    pub description: Option<String>,
    /// `conditionMetType`, e.g. `all`.
    pub condition_met_type: Option<String>,
    /// `logicalExpression`.
    pub logical_expression: Option<String>,
    /// `conditions`.
    pub conditions: Option<Vec<ConditionRecord>>,
    /// `alertTo`.
    pub alert_to: Option<AlertToRecord>,
    /// The record as stored and served: a JSON object.
    pub raw: Value,
}

/// A condition of a [`SegmentRecord`]; its unknown fields are in the segment's
/// [`SegmentRecord::raw`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionRecord {
    /// `field`, e.g. `CurrentPageUrl`.
    pub field: Option<String>,
    /// `operator`, e.g. `include`.
    pub operator: Option<String>,
    /// `value`.
    pub value: Option<String>,
    /// `order`.
    pub order: Option<i64>,
}

/// The `alertTo` of a [`SegmentRecord`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct AlertToRecord {
    /// `agentIds`.
    pub agent_ids: Option<Vec<i64>>,
    /// `departmentIds`.
    pub department_ids: Option<Vec<Uuid>>,
}

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_owned)
}

fn list<T>(v: Option<&Value>, item: impl Fn(&Value) -> Option<T>) -> Option<Vec<T>> {
    v?.as_array()?.iter().map(item).collect()
}

impl SegmentRecord {
    pub(crate) fn new(id: Uuid, raw: Value) -> Self {
        let conditions = list(raw.get("conditions"), |c| {
            c.is_object().then(|| ConditionRecord {
                field: string(c, "field"),
                operator: string(c, "operator"),
                value: string(c, "value"),
                order: c.get("order").and_then(Value::as_i64),
            })
        });
        let alert_to = raw
            .get("alertTo")
            .filter(|a| a.is_object())
            .map(|a| AlertToRecord {
                agent_ids: list(a.get("agentIds"), Value::as_i64),
                department_ids: list(a.get("departmentIds"), |d| d.as_str().and_then(parse_uuid)),
            });
        Self {
            id,
            name: string(&raw, "name"),
            color: string(&raw, "color"),
            is_enable: raw.get("isEnable").and_then(Value::as_bool),
            order: raw.get("order").and_then(Value::as_i64),
            description: string(&raw, "description"),
            condition_met_type: string(&raw, "conditionMetType"),
            logical_expression: string(&raw, "logicalExpression"),
            conditions,
            alert_to,
            raw,
        }
    }
}

impl std::ops::Index<&str> for SegmentRecord {
    type Output = Value;

    /// The field of the raw record, `Value::Null` when absent.
    fn index(&self, key: &str) -> &Value {
        &self.raw[key]
    }
}

impl Serialize for SegmentRecord {
    /// As [`SegmentRecord::raw`].
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// An agent who can log in; see [`crate::Controls::agents`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    /// The `agentId` of the agent's tokens: 1, 2, ... in the order agents were added.
    pub id: i64,
    /// The email to log in with (matched case-insensitively).
    pub email: String,
    /// The password.
    pub password: String,
    /// The site the agent logs in to.
    pub site_id: i64,
}

/// Counters; see [`crate::Controls::stats`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// How many requests a queued fault has hit ([`crate::Controls::faults_injected`]).
    pub faults_injected: usize,
    /// How many requests in the log went to the token endpoint.
    pub token_requests: usize,
    /// How many requests the log holds.
    pub requests: usize,
    /// How many records the log has dropped, oldest first, to keep within its caps
    /// ([`crate::Limits::log_records`], [`crate::Limits::log_bytes`]) since it was last
    /// emptied.
    pub dropped_requests: u64,
}
