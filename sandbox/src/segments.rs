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

/// A stored customer segment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Segment {
    pub id: Uuid,
    pub name: String,
    pub color: String,
    pub is_enable: bool,
    pub order: i32,
    pub description: String,
    pub condition_met_type: String,
    pub logical_expression: String,
    pub conditions: Vec<Condition>,
    pub alert_to: AlertTo,
    /// Creation sequence, to keep the listing stable among equal orders.
    #[serde(skip)]
    pub seq: u64,
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

/// A validated request body: everything but the id, with `order` left open when absent.
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
}

impl SegmentInput {
    /// Makes the stored segment, with the given id, order and sequence.
    pub(crate) fn into_segment(self, id: Uuid, order: i32, seq: u64) -> Segment {
        Segment {
            id,
            name: self.name,
            color: self.color,
            is_enable: self.is_enable,
            order,
            description: self.description,
            condition_met_type: self.condition_met_type,
            logical_expression: self.logical_expression,
            conditions: self.conditions,
            alert_to: self.alert_to,
            seq,
        }
    }
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
/// The `id` of a body is read-only and ignored, whatever it holds; unknown fields are ignored.
pub(crate) fn parse_segment(body: &Value) -> Result<SegmentInput, String> {
    let Value::Object(obj) = body else {
        return Err(format!(
            "The request body must be a JSON object (a customer segment), not {}.",
            json_type(body)
        ));
    };

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

/// Rewrites a segment's JSON the way a newer server might: an operator and a
/// `conditionMetType` the spec does not know, and an extra top-level field.
pub(crate) fn forward_compat(segment: &mut Value) {
    if let Value::Object(obj) = segment {
        obj.insert("conditionMetType".into(), Value::from("weighted"));
        obj.insert("priority".into(), Value::from(3));
        if let Some(Value::Array(conds)) = obj.get_mut("conditions")
            && let Some(Value::Object(first)) = conds.first_mut()
        {
            first.insert("operator".into(), Value::from("startsWith"));
        }
    }
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
        let s = parse_segment(&valid()).unwrap();
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
            let message = parse_segment(&b).unwrap_err();
            assert!(message.contains("'name'"), "{name:?}");
        }
        // Not white space to ECMA-262, whatever Rust or Python say.
        for name in ["\u{1c}\u{1c}", "\u{85}", "\u{200b}", "\u{180e}"] {
            let mut b = valid();
            b["name"] = json!(name);
            assert!(parse_segment(&b).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn uuids() {
        assert!(parse_uuid("1487fc9d-92e6-4487-a2e8-92e68d6892e6").is_some());
        assert!(parse_uuid("1487fc9d92e64487a2e892e68d6892e6").is_none());
        assert!(parse_uuid("{1487fc9d-92e6-4487-a2e8-92e68d6892e}").is_none());
    }
}
