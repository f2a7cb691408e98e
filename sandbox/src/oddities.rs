//! Segments in shapes the documents do not describe, as real servers send them: the odd records
//! of [`crate::Controls::seed_odd_segments`] and the rewrite of the forward-compatibility mode.

use serde_json::{Map, Value, json};

use crate::segments::DEFAULT_COLOR;

/// The five odd records of [`crate::Controls::seed_odd_segments`], in order, without their
/// `id` and `order`: each a full segment in the documented shape, but for one oddity.
pub(crate) fn odd_records() -> [Map<String, Value>; 5] {
    let record = |label: &str, name: &str, edit: &dyn Fn(&mut Map<String, Value>)| {
        let Value::Object(mut record) = json!({
            "name": name,
            "color": DEFAULT_COLOR,
            "isEnable": false,
            "description": format!("sandbox odd record ({label})"),
            "conditionMetType": "all",
            "logicalExpression": "",
            "conditions": [
                {"field": "CurrentPageUrl", "operator": "include", "value": "live", "order": 1}
            ],
            "alertTo": {"agentIds": [], "departmentIds": []}
        }) else {
            unreachable!("an object literal");
        };
        edit(&mut record);
        record
    };
    [
        record("a", "odd color", &|r| {
            r.insert("color".into(), json!("#FF0000"));
        }),
        record("b", "   ", &|_| {}),
        record("c", "odd nulls", &|r| {
            r.insert("conditions".into(), Value::Null);
            r.insert(
                "alertTo".into(),
                json!({"agentIds": null, "departmentIds": []}),
            );
        }),
        record("d", "odd missing conditions", &|r| {
            r.remove("conditions");
            r.insert("conditionMetType".into(), json!("weighted"));
        }),
        record("e", "odd unknown values", &|r| {
            r.insert(
                "conditions".into(),
                json!([{
                    "field": "CurrentPageUrl",
                    "operator": "startsWith",
                    "value": null,
                    "order": 1,
                    "caseSensitive": true
                }]),
            );
            r.insert("createdBy".into(), json!(42));
            r.insert("priority".into(), json!(3));
        }),
    ]
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
