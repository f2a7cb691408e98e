//! The data model round-trips: unknown fields (top-level and nested) are stored and served as
//! sent, PUT replaces the whole segment, raw records and the odd seeds are served verbatim, and
//! validation still refuses what the documents forbid.

mod common;

use comm100_sandbox::{DEFAULT_SITE_ID, Sandbox};
use common::*;
use serde_json::{Value, json};

/// `GET url` with the token, expecting `200`; the JSON body.
async fn get_json(url: &str, token: &str) -> Value {
    let response = client().get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// `PUT url` with the token and `body`.
async fn put(url: &str, token: &str, body: &Value) -> reqwest::Response {
    client()
        .put(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `PUT url`, expecting `200`; the JSON body.
async fn put_ok(url: &str, token: &str, body: &Value) -> Value {
    let response = put(url, token, body).await;
    assert_eq!(response.status(), 200, "PUT {url} {body}");
    response.json().await.unwrap()
}

/// Creates `body`, expecting `201`; the created segment.
async fn create_ok(sb: &Sandbox, token: &str, body: &Value) -> Value {
    let response = create(sb, token, body).await;
    assert_eq!(response.status(), 201, "{body}");
    response.json().await.unwrap()
}

/// Expects the segment `id` to be served as `expected` by get, by the list (once) and by
/// `Controls::segments`.
async fn expect_served(sb: &Sandbox, token: &str, id: &str, expected: &Value) {
    assert_eq!(
        &get_json(&segment_url(sb, id), token).await,
        expected,
        "get"
    );
    let list = get_json(&segments_url(sb), token).await;
    let listed: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == json!(id))
        .collect();
    assert_eq!(listed, [expected], "list");
    let stored = sb.controls().segments(DEFAULT_SITE_ID);
    assert!(
        stored.iter().any(|s| &s.raw == expected),
        "controls: {stored:?}"
    );
}

/// `base` with the top-level fields of `patch` set.
fn patched(base: &Value, patch: Value) -> Value {
    let mut value = base.clone();
    for (key, field) in patch.as_object().unwrap() {
        value[key] = field.clone();
    }
    value
}

/// `base` without the top-level field `key`.
fn without(base: &Value, key: &str) -> Value {
    let mut value = base.clone();
    value.as_object_mut().unwrap().remove(key);
    value
}

/// A segment with unknown fields everywhere, of every JSON type.
fn with_unknowns() -> Value {
    json!({
        "name": "unknowns",
        "createdBy": 42,
        "priority": 3,
        "tags": ["a", {"b": null}],
        "audit": {"by": "someone", "at": [2024, 5]},
        "nothing": null,
        "conditions": [
            {"field": "CurrentPageUrl", "operator": "include", "value": "live",
             "caseSensitive": true, "weight": {"x": 1.5}},
            {"field": "CurrentPageUrl", "operator": "is", "value": "/pricing", "order": 7}
        ],
        "alertTo": {"agentIds": [4], "notifyByEmail": false, "extra": [null]}
    })
}

/// What [`with_unknowns`] is stored as: the body, with the id and the documented defaults.
fn with_unknowns_stored(id: &Value, order: i64) -> Value {
    let mut expected = patched(
        &with_unknowns(),
        json!({
            "id": id,
            "color": "339FD9",
            "isEnable": false,
            "order": order,
            "description": "",
            "conditionMetType": "all",
            "logicalExpression": "",
        }),
    );
    expected["conditions"][0]["order"] = json!(1);
    expected["alertTo"]["departmentIds"] = json!([]);
    expected
}

#[tokio::test]
async fn unknown_fields_survive_post_then_get_and_list() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let created = create_ok(&sb, &token, &with_unknowns()).await;
    let expected = with_unknowns_stored(&created["id"], 1);
    assert_eq!(created, expected, "the create response");
    expect_served(&sb, &token, created["id"].as_str().unwrap(), &expected).await;
}

#[tokio::test]
async fn unknown_fields_survive_put_then_get_and_list() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let created = create_ok(&sb, &token, &segment("plain")).await;
    let id = created["id"].as_str().unwrap();
    let updated = put_ok(&segment_url(&sb, id), &token, &with_unknowns()).await;
    let expected = with_unknowns_stored(&created["id"], 1);
    assert_eq!(updated, expected, "the update response");
    expect_served(&sb, &token, id, &expected).await;
}

#[tokio::test]
async fn put_replaces_the_whole_segment() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let mut first = patched(
        &with_unknowns(),
        json!({"color": "ABCDEF", "isEnable": true, "description": "first",
               "conditionMetType": "any", "logicalExpression": "1 and 2", "order": 5}),
    );
    first["conditions"][0]["order"] = json!(9);
    let created = create_ok(&sb, &token, &first).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["createdBy"], 42);

    // The replacement names none of the first's optional or unknown fields, and no order.
    let second = json!({
        "name": "second",
        "rank": "new",
        "conditions": [{"field": "CurrentPageUrl", "operator": "contains", "value": "x",
                        "note": "only this"}],
        "alertTo": {"departmentIds": ["1487FC9D-92E6-4487-A2E8-92E68D6892E6"]}
    });
    let updated = put_ok(&segment_url(&sb, id), &token, &second).await;
    let expected = json!({
        "id": id,
        "name": "second",
        "rank": "new",
        "color": "339FD9",
        "isEnable": false,
        "order": 5,
        "description": "",
        "conditionMetType": "all",
        "logicalExpression": "",
        "conditions": [{"field": "CurrentPageUrl", "operator": "contains", "value": "x",
                        "order": 1, "note": "only this"}],
        "alertTo": {"agentIds": [], "departmentIds": ["1487fc9d-92e6-4487-a2e8-92e68d6892e6"]}
    });
    assert_eq!(
        updated, expected,
        "fields left out are gone or reset; the order is kept"
    );
    expect_served(&sb, &token, id, &expected).await;
}

#[tokio::test]
async fn an_id_in_a_body_is_ignored() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let other = create_ok(&sb, &token, &segment("other")).await;
    let foreign = uuid::Uuid::new_v4().to_string();

    let created = create_ok(
        &sb,
        &token,
        &patched(&segment("mine"), json!({"id": foreign})),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_ne!(id, foreign);
    expect_error(
        client()
            .get(segment_url(&sb, &foreign))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    // A PUT whose body names another segment (or no uuid at all) updates the path's segment.
    for body_id in [
        other["id"].clone(),
        json!(7),
        json!({"x": 1}),
        json!("nope"),
    ] {
        let body = patched(&segment("renamed"), json!({"id": body_id}));
        let updated = put_ok(&segment_url(&sb, id), &token, &body).await;
        assert_eq!(updated["id"], json!(id), "{body_id}");
    }
    expect_served(&sb, &token, other["id"].as_str().unwrap(), &other).await;
    assert_eq!(sb.controls().segments(DEFAULT_SITE_ID).len(), 2);
}

#[tokio::test]
async fn raw_records_are_served_verbatim_and_can_be_updated_and_deleted() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    create_ok(
        &sb,
        &token,
        &patched(&segment("third"), json!({"order": 3})),
    )
    .await;

    // With a uuid id and an integer order: stored and served exactly as given.
    let given = uuid::Uuid::new_v4();
    let record = json!({"id": given.to_string(), "name": 7, "order": 0, "conditions": "any",
                        "weird": [1, {"deep": null}]});
    assert_eq!(
        controls.insert_raw_segment(DEFAULT_SITE_ID, record.clone()),
        given
    );
    expect_served(&sb, &token, &given.to_string(), &record).await;

    // Without a usable id: one is assigned and written in; no order is written in, but the
    // record sorts as max + 1.
    let record = json!({"id": "not-a-uuid", "name": "no order", "color": "#123"});
    let id = controls.insert_raw_segment(DEFAULT_SITE_ID, record.clone());
    let expected = patched(&record, json!({"id": id.to_string()}));
    expect_served(&sb, &token, &id.to_string(), &expected).await;
    let names: Vec<Value> = get_json(&segments_url(&sb), &token)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!(7), json!("third"), json!("no order")]);

    // A PUT with no order gives it the order it sorted by; unknown fields of the PUT are kept.
    let url = segment_url(&sb, &id.to_string());
    let body = patched(&segment("fixed"), json!({"createdBy": 1}));
    let updated = put_ok(&url, &token, &body).await;
    assert_eq!(updated["order"], 4);
    assert_eq!(updated["createdBy"], 1);
    assert_eq!(updated["color"], "339FD9");
    expect_served(&sb, &token, &id.to_string(), &updated).await;

    let response = delete(&url, &token).await;
    assert_eq!(response.status(), 204);
    expect_error(
        client().get(&url).bearer_auth(&token).send().await.unwrap(),
        404,
    )
    .await;
    assert_eq!(controls.segments(DEFAULT_SITE_ID).len(), 2);
}

#[tokio::test]
async fn the_admin_route_inserts_raw_records() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let record = json!({"name": "   ", "conditions": null, "priority": 3});
    let response = admin_post(&sb, &format!("segments/{DEFAULT_SITE_ID}"), record.clone()).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let id = answer["id"].as_str().unwrap();
    assert!(uuid::Uuid::try_parse(id).is_ok(), "{answer}");
    let expected = patched(&record, json!({"id": id}));
    expect_served(&sb, &token, id, &expected).await;
    sb.controls().clear_requests();
    let admin_list = format!("{}/__sandbox/segments/{DEFAULT_SITE_ID}", sb.portal_url());
    assert_eq!(get_json(&admin_list, &token).await, json!([expected]));

    for (path, body) in [
        (format!("segments/{DEFAULT_SITE_ID}"), json!([1])),
        (format!("segments/{DEFAULT_SITE_ID}"), json!("x")),
        ("segments/site".to_owned(), json!({})),
        ("odd-segments/site".to_owned(), json!({})),
    ] {
        expect_error(admin_post(&sb, &path, body).await, 400).await;
    }
    assert_eq!(sb.controls().segments(DEFAULT_SITE_ID).len(), 1);
    assert!(
        sb.controls().requests().is_empty(),
        "admin routes are not logged"
    );
}

/// The odd records, as `Controls::seed_odd_segments` documents them, with these ids and orders.
fn documented_odd_records(ids: &[Value], first_order: i64) -> Vec<Value> {
    let base = |label: &str, name: &str| {
        json!({
            "alertTo": {"agentIds": [], "departmentIds": []},
            "color": "339FD9",
            "conditionMetType": "all",
            "conditions": [{"field": "CurrentPageUrl", "operator": "include", "value": "live", "order": 1}],
            "description": format!("sandbox odd record ({label})"),
            "isEnable": false,
            "logicalExpression": "",
            "name": name
        })
    };
    let records = [
        patched(&base("a", "odd color"), json!({"color": "#FF0000"})),
        base("b", "   "),
        patched(
            &base("c", "odd nulls"),
            json!({"conditions": null, "alertTo": {"agentIds": null, "departmentIds": []}}),
        ),
        without(
            &patched(
                &base("d", "odd missing conditions"),
                json!({"conditionMetType": "weighted"}),
            ),
            "conditions",
        ),
        patched(
            &base("e", "odd unknown values"),
            json!({
                "conditions": [{"field": "CurrentPageUrl", "operator": "startsWith", "value": null,
                                "order": 1, "caseSensitive": true}],
                "createdBy": 42,
                "priority": 3
            }),
        ),
    ];
    records
        .into_iter()
        .zip(ids)
        .zip(first_order..)
        .map(|((mut record, id), order)| {
            record["id"] = id.clone();
            record["order"] = json!(order);
            record
        })
        .collect()
}

#[tokio::test]
async fn odd_seeds_are_served_verbatim() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let ids = sb.controls().seed_odd_segments(DEFAULT_SITE_ID);
    assert_eq!(ids.len(), 5);
    let ids: Vec<Value> = ids.iter().map(|id| json!(id.to_string())).collect();
    let expected = documented_odd_records(&ids, 1);
    assert_eq!(
        get_json(&segments_url(&sb), &token).await,
        json!(expected),
        "the list, in order (a) to (e)"
    );
    assert!(expected[3].get("conditions").is_none());
    for (id, record) in ids.iter().zip(&expected) {
        expect_served(&sb, &token, id.as_str().unwrap(), record).await;
    }

    // Through the admin route, on a site that has a segment: the orders follow its maximum.
    let other = 20000;
    sb.controls().add_agent("b@example.com", "pw", other);
    let token = token_for(&sb, "b@example.com", "pw", other).await;
    create_ok(
        &sb,
        &token,
        &patched(&segment("first"), json!({"order": 10})),
    )
    .await;
    let response = admin_post(&sb, &format!("odd-segments/{other}"), json!(null)).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let ids = answer["ids"].as_array().unwrap();
    let list = get_json(&segments_url(&sb), &token).await;
    assert_eq!(list[0]["name"], "first");
    assert_eq!(
        list.as_array().unwrap()[1..],
        documented_odd_records(ids, 11)
    );
}

#[tokio::test]
async fn an_odd_record_can_be_put_back_with_valid_values() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let ids = sb.controls().seed_odd_segments(DEFAULT_SITE_ID);
    let list = get_json(&segments_url(&sb), &token).await;
    let valid_condition = json!([{"field": "CurrentPageUrl", "operator": "include",
                                  "value": "live", "order": 1}]);
    // What each record's PUT as served is refused for, and what makes it valid.
    let fixes = [
        ("'color'", json!({"color": "FF0000"})),
        ("'name'", json!({"name": "no longer blank"})),
        (
            "'conditions'",
            json!({"conditions": valid_condition, "alertTo": {"agentIds": [], "departmentIds": []}}),
        ),
        (
            "'conditionMetType'",
            json!({"conditions": valid_condition, "conditionMetType": "any"}),
        ),
        (
            "'conditions[0].operator'",
            json!({
                "conditions": [{"field": "CurrentPageUrl", "operator": "contains", "value": "x",
                                "order": 1, "caseSensitive": false}],
                "createdBy": 43
            }),
        ),
    ];
    for ((id, served), (field, fix)) in ids.iter().zip(list.as_array().unwrap()).zip(fixes) {
        let url = segment_url(&sb, &id.to_string());
        let message = expect_error(put(&url, &token, served).await, 400).await;
        assert!(message.contains(field), "{served}: {message}");
        assert_eq!(
            &get_json(&url, &token).await,
            served,
            "a refused PUT changes nothing"
        );

        let body = patched(served, fix);
        let updated = put_ok(&url, &token, &body).await;
        assert_eq!(updated, body, "{body}");
        expect_served(&sb, &token, &id.to_string(), &body).await;
    }
    let stored = sb.controls().segments(DEFAULT_SITE_ID);
    assert_eq!(stored[4]["createdBy"], 43);
    assert_eq!(stored[4]["priority"], 3);
    assert_eq!(stored[4]["conditions"][0]["caseSensitive"], false);
}

#[tokio::test]
async fn validation_still_refuses_what_the_documents_forbid() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let url = segment_url(
        &sb,
        create_ok(&sb, &token, &segment("target")).await["id"]
            .as_str()
            .unwrap(),
    );
    let stored = controls.segments(DEFAULT_SITE_ID);
    let with_condition = |field: &str, value: Value| {
        let mut body = segment("v");
        body["conditions"][0][field] = value;
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (patched(&segment("v"), json!({"name": "   "})), "'name'"),
        (patched(&segment("v"), json!({"name": ""})), "'name'"),
        (
            patched(&segment("v"), json!({"conditions": []})),
            "'conditions'",
        ),
        (without(&segment("v"), "conditions"), "'conditions'"),
        (
            patched(&segment("v"), json!({"conditions": null})),
            "'conditions'",
        ),
        (
            patched(&segment("v"), json!({"color": "#FF0000"})),
            "'color'",
        ),
        (patched(&segment("v"), json!({"color": "FF00"})), "'color'"),
        (
            patched(&segment("v"), json!({"conditionMetType": ""})),
            "'conditionMetType'",
        ),
        (
            patched(&segment("v"), json!({"conditionMetType": "weighted"})),
            "'conditionMetType'",
        ),
        (
            with_condition("operator", json!("startsWith")),
            "'conditions[0].operator'",
        ),
        (
            with_condition("value", Value::Null),
            "'conditions[0].value'",
        ),
        // A null is refused for every known typed field, as before.
    ];
    let mut nulls = Vec::new();
    for field in [
        "name",
        "color",
        "isEnable",
        "order",
        "description",
        "conditionMetType",
        "logicalExpression",
        "alertTo",
    ] {
        let mut body = segment("v");
        body[field] = Value::Null;
        nulls.push((body, field));
    }
    let mut agent_ids = segment("v");
    agent_ids["alertTo"] = json!({"agentIds": null, "departmentIds": []});
    nulls.push((agent_ids, "alertTo.agentIds"));
    let named: Vec<(Value, String)> = cases
        .into_iter()
        .map(|(b, f)| (b, f.to_owned()))
        .chain(nulls.into_iter().map(|(b, f)| (b, format!("'{f}'"))))
        .collect();

    controls.clear_requests();
    for (body, field) in &named {
        for response in [
            create(&sb, &token, body).await,
            put(&url, &token, body).await,
        ] {
            let message = expect_error(response, 400).await;
            assert!(message.contains(field.as_str()), "{body}: {message}");
        }
    }
    let log = controls.requests();
    assert_eq!(log.len(), 2 * named.len());
    assert!(log.iter().all(|r| r.status == Some(400)), "{log:?}");
    assert_eq!(
        controls.segments(DEFAULT_SITE_ID),
        stored,
        "nothing changed"
    );
}
