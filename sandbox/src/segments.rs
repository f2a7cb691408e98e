//! Customer segments: the stored model and the validation of request bodies.
//!
//! These types are the sandbox's own; they do not come from the generated client.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The color a segment gets when the request names none.
pub(crate) const DEFAULT_COLOR: &str = "339FD9";

/// The values of `conditionMetType` the spec knows.
pub(crate) const CONDITION_MET_TYPES: &[&str] = &["all", "any", "logicalExpression"];

/// The condition operators the spec knows.
pub(crate) const OPERATORS: &[&str] = &[
    "is",
    "isNot",
    "contains",
    "doesNotContain",
    "isMoreThan",
    "isNotMoreThan",
    "isLessThan",
    "isNotLessThan",
    "regularExpression",
    "include",
];

/// A stored customer segment: the JSON it is served as, and what places it in the listing.
///
/// The JSON is what the client sent, known fields normalised and unknown ones (top-level and
/// nested) carried over as sent, or, for a raw record ([`crate::Controls::insert_raw_segment`]),
/// the record as given.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// The id the paths name; the JSON's `id` holds it too.
    pub id: Uuid,
    /// What the listing sorts by: the segment's `order`, or for a raw record without an
    /// integer `order`, the order it got when it was stored (which is not written in the JSON).
    pub order: i64,
    /// Creation sequence, to keep the listing stable among equal orders.
    pub seq: u64,
    /// The JSON the API serves.
    pub json: Map<String, Value>,
}

/// The known fields of a stored segment, in the documented shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Known<'a> {
    id: Uuid,
    name: &'a str,
    color: &'a str,
    is_enable: bool,
    order: i64,
    description: &'a str,
    condition_met_type: &'a str,
    logical_expression: &'a str,
    conditions: &'a [Condition],
    alert_to: &'a AlertTo,
}

/// One condition of a segment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Condition {
    pub field: String,
    pub operator: String,
    pub value: String,
    pub order: i32,
}

/// Who is alerted when a visitor enters the segment.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AlertTo {
    pub agent_ids: Vec<i64>,
    pub department_ids: Vec<Uuid>,
}

/// A validated request body: everything but the id, with `order` left open when absent, and
/// the body as sent, for its unknown fields.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInput {
    pub name: String,
    pub color: String,
    pub is_enable: bool,
    pub order: Option<i32>,
    pub description: String,
    pub condition_met_type: String,
    pub logical_expression: String,
    pub conditions: Vec<Condition>,
    pub alert_to: AlertTo,
    body: Map<String, Value>,
}

impl SegmentInput {
    /// The JSON to store, with the given id and order: the known fields in the documented shape
    /// (defaults filled in), and the body's unknown fields as sent, at the top level, in each
    /// condition and in `alertTo`. The body's own `id` is not kept.
    pub(crate) fn into_json(self, id: Uuid, order: i64) -> Map<String, Value> {
        let known = Known {
            id,
            name: &self.name,
            color: &self.color,
            is_enable: self.is_enable,
            order,
            description: &self.description,
            condition_met_type: &self.condition_met_type,
            logical_expression: &self.logical_expression,
            conditions: &self.conditions,
            alert_to: &self.alert_to,
        };
        let Ok(Value::Object(mut json)) = serde_json::to_value(known) else {
            unreachable!("a segment serialises to an object");
        };
        if let (Some(Value::Array(into)), Some(Value::Array(from))) =
            (json.get_mut("conditions"), self.body.get("conditions"))
        {
            for (into, from) in into.iter_mut().zip(from) {
                carry_unknown(into, from);
            }
        }
        if let (Some(into), Some(from)) = (json.get_mut("alertTo"), self.body.get("alertTo")) {
            carry_unknown(into, from);
        }
        for (key, value) in self.body {
            json.entry(key).or_insert(value);
        }
        json
    }
}

/// Copies into `into` the fields of `from` it lacks, when both are objects.
fn carry_unknown(into: &mut Value, from: &Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        for (key, value) in from {
            into.entry(key.as_str()).or_insert_with(|| value.clone());
        }
    }
}

/// The order of a raw record, for sorting: its `order` when that is an integer (one beyond
/// `i64` counts as `i64::MAX`).
pub(crate) fn raw_order(record: &Map<String, Value>) -> Option<i64> {
    let order = record.get("order")?;
    order.as_i64().or_else(|| order.as_u64().map(|_| i64::MAX))
}

/// The id of a raw record: its `id` when that is a string holding a uuid.
pub(crate) fn raw_id(record: &Map<String, Value>) -> Option<Uuid> {
    record
        .get("id")
        .and_then(Value::as_str)
        .and_then(parse_uuid)
}

/// White space as the spec's `\S` pattern means it: JSON Schema patterns are ECMA-262 regular
/// expressions, whose `\s` is the ECMAScript WhiteSpace and LineTerminator characters. That set
/// is neither Rust's `char::is_whitespace` (which adds U+0085 and lacks U+FEFF) nor Python's
/// (which adds U+001C..U+001F); schemathesis validates with the ECMA set.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Whether a string is a uuid in the hyphenated form that JSON Schema's `format: uuid` means.
pub(crate) fn parse_uuid(s: &str) -> Option<Uuid> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    Uuid::try_parse(s).ok()
}

fn is_hex6(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn get_string(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "The field '{at}{key}' must be a string, not {}.",
            json_type(other)
        )),
    }
}

fn get_i32(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<i32>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("The field '{at}{key}' must be a 32-bit integer.")),
    }
}

fn one_of(value: String, known: &[&str], field: &str) -> Result<String, String> {
    if known.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(format!(
            "The field '{field}' must be one of {}; got '{value}'.",
            known.join(", ")
        ))
    }
}

/// Validates a create or update body. The error is a message that names the field.
///
/// The `id` of a body is read-only and ignored, whatever it holds; unknown fields are accepted
/// with any value, and kept (see [`SegmentInput::into_json`]). A `null` is refused for every
/// known field.
pub(crate) fn parse_segment(body: Value) -> Result<SegmentInput, String> {
    let Value::Object(body) = body else {
        return Err(format!(
            "The request body must be a JSON object (a customer segment), not {}.",
            json_type(&body)
        ));
    };
    let obj = &body;

    let name = get_string(obj, "name", "")?.ok_or("The field 'name' is required.")?;
    if name.chars().all(is_space) {
        return Err("The field 'name' must not be blank.".to_owned());
    }

    let color = match get_string(obj, "color", "")? {
        None => DEFAULT_COLOR.to_owned(),
        Some(c) if is_hex6(&c) => c,
        Some(c) => {
            return Err(format!(
                "The field 'color' must be 6 hex digits with no '#', e.g. 339FD9; got '{c}'."
            ));
        }
    };

    let is_enable = match obj.get("isEnable") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "The field 'isEnable' must be a boolean, not {}.",
                json_type(other)
            ));
        }
    };

    let order = get_i32(obj, "order", "")?;
    let description = get_string(obj, "description", "")?.unwrap_or_default();
    let condition_met_type = match get_string(obj, "conditionMetType", "")? {
        None => "all".to_owned(),
        Some(v) => one_of(v, CONDITION_MET_TYPES, "conditionMetType")?,
    };
    let logical_expression = get_string(obj, "logicalExpression", "")?.unwrap_or_default();

    let conditions = match obj.get("conditions") {
        None => return Err("The field 'conditions' is required.".to_owned()),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err("The field 'conditions' must hold at least one condition.".to_owned());
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_condition(item, i))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(format!(
                "The field 'conditions' must be an array, not {}.",
                json_type(other)
            ));
        }
    };

    let alert_to = match obj.get("alertTo") {
        None => AlertTo::default(),
        Some(Value::Object(a)) => parse_alert_to(a)?,
        Some(other) => {
            return Err(format!(
                "The field 'alertTo' must be an object, not {}.",
                json_type(other)
            ));
        }
    };

    Ok(SegmentInput {
        name,
        color,
        is_enable,
        order,
        description,
        condition_met_type,
        logical_expression,
        conditions,
        alert_to,
        body,
    })
}

fn parse_condition(item: &Value, i: usize) -> Result<Condition, String> {
    let at = format!("conditions[{i}].");
    let Value::Object(obj) = item else {
        return Err(format!(
            "The field 'conditions[{i}]' must be an object, not {}.",
            json_type(item)
        ));
    };
    let field = get_string(obj, "field", &at)?
        .ok_or_else(|| format!("The field '{at}field' is required."))?;
    let operator = get_string(obj, "operator", &at)?
        .ok_or_else(|| format!("The field '{at}operator' is required."))?;
    let operator = one_of(operator, OPERATORS, &format!("{at}operator"))?;
    let value = get_string(obj, "value", &at)?
        .ok_or_else(|| format!("The field '{at}value' is required."))?;
    let order =
        get_i32(obj, "order", &at)?.unwrap_or_else(|| i32::try_from(i + 1).unwrap_or(i32::MAX));
    Ok(Condition {
        field,
        operator,
        value,
        order,
    })
}

fn parse_alert_to(obj: &Map<String, Value>) -> Result<AlertTo, String> {
    let agent_ids = match obj.get("agentIds") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_i64().ok_or_else(|| {
                    format!("The field 'alertTo.agentIds[{i}]' must be an integer (an agent id).")
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(format!(
                "The field 'alertTo.agentIds' must be an array, not {}.",
                json_type(other)
            ));
        }
    };
    let department_ids = match obj.get("departmentIds") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().and_then(parse_uuid).ok_or_else(|| {
                    format!(
                        "The field 'alertTo.departmentIds[{i}]' must be a uuid (a department id)."
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(format!(
                "The field 'alertTo.departmentIds' must be an array, not {}.",
                json_type(other)
            ));
        }
    };
    Ok(AlertTo {
        agent_ids,
        department_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"name": "n", "conditions": [{"field": "CurrentPageUrl", "operator": "include", "value": "live"}]})
    }

    #[test]
    fn defaults() {
        let s = parse_segment(valid()).unwrap();
        assert_eq!(s.color, "339FD9");
        assert!(!s.is_enable);
        assert_eq!(s.condition_met_type, "all");
        assert_eq!(s.order, None);
        assert_eq!(s.conditions[0].order, 1);
    }

    #[test]
    fn blank_names() {
        for name in ["", " ", "\t\n", "\u{3000}", "\u{feff}", "\u{2028} \u{a0}"] {
            let mut b = valid();
            b["name"] = json!(name);
            let message = parse_segment(b).unwrap_err();
            assert!(message.contains("'name'"), "{name:?}");
        }
        // Not white space to ECMA-262, whatever Rust or Python say.
        for name in ["\u{1c}\u{1c}", "\u{85}", "\u{200b}", "\u{180e}"] {
            let mut b = valid();
            b["name"] = json!(name);
            assert!(parse_segment(b).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn uuids() {
        assert!(parse_uuid("1487fc9d-92e6-4487-a2e8-92e68d6892e6").is_some());
        assert!(parse_uuid("1487fc9d92e64487a2e892e68d6892e6").is_none());
        assert!(parse_uuid("{1487fc9d-92e6-4487-a2e8-92e68d6892e}").is_none());
    }
}
