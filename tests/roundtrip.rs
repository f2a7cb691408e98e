//! The data model against records that break the rules servers enforce on requests: tolerant
//! reading, lossless get -> modify -> put, and local checks that send nothing. Against the
//! sandbox's raw records and odd seeds; the request log says what arrived.

use comm100::generated::{types, ClientCustomerSegmentsExt as _};
use comm100_sandbox::{Route, DEFAULT_SITE_ID};
use serde_json::json;

mod common;

use common::{count, logged_in, segment};

#[tokio::test]
async fn a_list_with_odd_records_decodes_whole() {
    let (_sb, ctl, c100) = logged_in().await;
    let normal = c100
        .client()
        .create_customer_segment()
        .body(segment("normal"))
        .send()
        .await
        .unwrap()
        .into_inner();
    let odd = ctl.seed_odd_segments(DEFAULT_SITE_ID);
    let list = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.len(), 6, "every record decodes");
    let by_id = |id| list.iter().find(|s| s.id == id).unwrap();
    assert_eq!(by_id(normal.id).name.as_deref(), Some("normal"));
    assert_eq!(by_id(normal.id).conditions.as_ref().unwrap().len(), 1);

    assert_eq!(by_id(odd[0]).color.as_deref(), Some("#FF0000"));
    assert_eq!(by_id(odd[1]).name.as_deref(), Some("   "));
    let nulls = by_id(odd[2]);
    assert!(nulls.conditions.is_none());
    assert!(nulls.alert_to.as_ref().unwrap().agent_ids.is_none());
    assert_eq!(
        nulls.alert_to.as_ref().unwrap().department_ids.as_deref(),
        Some(&[][..])
    );
    let missing = by_id(odd[3]);
    assert!(missing.conditions.is_none());
    assert!(matches!(
        &missing.condition_met_type,
        Some(types::ConditionMetType::Other(v)) if v.as_str() == "weighted"
    ));
    let unknown = by_id(odd[4]);
    let condition = &unknown.conditions.as_ref().unwrap()[0];
    assert_eq!(condition.value, None);
    assert!(matches!(
        &condition.operator,
        Some(types::ConditionOperator::Other(v)) if v.as_str() == "startsWith"
    ));
    assert_eq!(condition.extra["caseSensitive"], json!(true));
    assert_eq!(unknown.extra["createdBy"], json!(42));
    assert_eq!(unknown.extra["priority"], json!(3));

    // Each one reads alone too.
    for id in odd {
        let got = c100
            .client()
            .get_customer_segment()
            .id(id)
            .send()
            .await
            .unwrap();
        assert_eq!(got.into_inner().id, id);
    }
}

/// A record with fields this crate does not know, top-level and nested: get it, rename it, put
/// it back. Everything arrives, and the server stores it.
#[tokio::test]
async fn get_modify_put_loses_nothing() {
    let (_sb, ctl, c100) = logged_in().await;
    let id = ctl.insert_raw_segment(
        DEFAULT_SITE_ID,
        json!({
            "name": "VIP",
            "color": "339FD9",
            "isEnable": true,
            "order": 7,
            "description": "from elsewhere",
            "conditionMetType": "any",
            "logicalExpression": "",
            "conditions": [
                {"field": "CurrentPageUrl", "operator": "contains", "value": "/pricing",
                 "order": 1, "caseSensitive": true}
            ],
            "alertTo": {"agentIds": [4, 5], "departmentIds": [], "escalate": {"after": 30}},
            "createdBy": 42,
            "priority": 3,
            "tags": ["a", "b"]
        }),
    );
    let mut segment = c100
        .client()
        .get_customer_segment()
        .id(id)
        .send()
        .await
        .unwrap()
        .into_inner();
    segment.name = Some("VIP (renamed)".into());
    let updated = c100
        .client()
        .update_customer_segment()
        .id(segment.id)
        .body(segment)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name.as_deref(), Some("VIP (renamed)"));

    let stored = ctl.segments(DEFAULT_SITE_ID).pop().unwrap();
    assert_eq!(stored["name"], "VIP (renamed)");
    for (field, value) in [
        ("createdBy", json!(42)),
        ("priority", json!(3)),
        ("tags", json!(["a", "b"])),
        ("color", json!("339FD9")),
        ("isEnable", json!(true)),
        ("order", json!(7)),
        ("description", json!("from elsewhere")),
        ("conditionMetType", json!("any")),
    ] {
        assert_eq!(stored[field], value, "{field}");
    }
    assert_eq!(stored["conditions"][0]["caseSensitive"], json!(true));
    assert_eq!(stored["conditions"][0]["value"], "/pricing");
    assert_eq!(stored["alertTo"]["escalate"], json!({"after": 30}));
    assert_eq!(stored["alertTo"]["agentIds"], json!([4, 5]));
    assert_eq!(stored["alertTo"]["departmentIds"], json!([]));
    let put = ctl
        .requests()
        .into_iter()
        .find(|r| r.route == Some(Route::Update))
        .unwrap();
    assert!(
        put.json().unwrap().get("id").is_none(),
        "the id travels in the path"
    );
}

/// Enum values this crate does not know go back as they came: no local refusal, no rewrite.
#[tokio::test]
async fn unknown_enum_values_go_back_as_they_came() {
    let (_sb, ctl, c100) = logged_in().await;
    let id = ctl.insert_raw_segment(
        DEFAULT_SITE_ID,
        json!({
            "name": "new values",
            "conditionMetType": "weighted",
            "conditions": [{"field": "CurrentPageUrl", "operator": "startsWith", "value": "/x"}],
            "priority": 3
        }),
    );
    let mut segment = c100
        .client()
        .get_customer_segment()
        .id(id)
        .send()
        .await
        .unwrap()
        .into_inner();
    segment.name = Some("new values (renamed)".into());
    // The sandbox knows only the documented values and refuses these, as its documents say;
    // what matters here is what arrived.
    let _ = c100
        .client()
        .update_customer_segment()
        .id(id)
        .body(segment)
        .send()
        .await;
    let put = ctl
        .requests()
        .into_iter()
        .find(|r| r.route == Some(Route::Update))
        .expect("the request was sent");
    let body = put.json().unwrap();
    assert_eq!(body["name"], "new values (renamed)");
    assert_eq!(body["conditionMetType"], "weighted");
    assert_eq!(body["conditions"][0]["operator"], "startsWith");
    assert_eq!(body["priority"], 3);
}

#[tokio::test]
async fn bad_input_is_refused_locally_naming_the_field_and_nothing_is_sent() {
    let (_sb, ctl, c100) = logged_in().await;
    let odd = ctl.seed_odd_segments(DEFAULT_SITE_ID);
    ctl.clear_requests();
    // Odd records read back and sent as they are: each names what the server would refuse.
    for (id, field) in [
        (odd[0], "color"),
        (odd[1], "name"),
        (odd[2], "conditions"),
        (odd[3], "conditions"),
        (odd[4], "conditions[0].value"),
    ] {
        let segment = c100
            .client()
            .get_customer_segment()
            .id(id)
            .send()
            .await
            .unwrap()
            .into_inner();
        let err = c100
            .client()
            .update_customer_segment()
            .id(id)
            .body(segment)
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, progenitor_client::Error::InvalidRequest(m) if m.contains(&format!("{field}:"))),
            "{field}: {err}"
        );
    }
    // Built from scratch.
    let blank = segment("   ");
    let none = types::CustomerSegmentInput::builder()
        .name("no conditions")
        .conditions(vec![]);
    for (body, field) in [(blank, "name"), (none, "conditions")] {
        let err = c100
            .client()
            .create_customer_segment()
            .body(body)
            .send()
            .await
            .unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    // A color is checked where it is made: the typed value cannot hold a bad one.
    let err = "#FF0000"
        .parse::<types::CustomerSegmentInputColor>()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r##""#FF0000" is not 6 hex digits with no `#`, e.g. "339FD9""##
    );
    assert_eq!(count(&ctl, Route::Update), 0, "nothing sent");
    assert_eq!(count(&ctl, Route::Create), 0, "nothing sent");
}
