//! Tokens, authentication, customer segments, validation, sites, the request log and
//! concurrency, all over real HTTP.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use comm100_sandbox::{DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID, Route, Sandbox};
use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The token endpoint
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn token_has_comm100_shape() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let header = decode_part(&token, 0);
    assert_eq!(
        header["alg"],
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    );
    assert_eq!(header["typ"], "JWT");
    let claims = decode_part(&token, 1);
    uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).expect("jti is a uuid");
    assert!(claims["agentId"].is_string());
    assert_eq!(claims["siteId"], "10000");
    assert!(claims["iss"].is_string());
    let (nbf, exp) = (
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - nbf, 2 * 60 * 60, "default lifetime is 2 hours");
    assert_eq!(token.split('.').count(), 3);
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let sb = Sandbox::builder()
        .token_lifetime(Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let claims = decode_part(&token(&sb).await, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
        60
    );
    sb.controls().set_token_lifetime(Duration::from_secs(300));
    let claims = decode_part(&token(&sb).await, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
        300
    );
}

/// A lifetime of `Duration::MAX` ("never expires") logs in and the token works, whichever way it
/// is set: it used to overflow (a panic in debug builds, an expired token in release ones).
#[tokio::test]
async fn a_token_lifetime_of_duration_max_logs_in_and_the_token_works() {
    let sb = Sandbox::builder()
        .token_lifetime(Duration::MAX)
        .start()
        .await
        .unwrap();
    let set: [&dyn Fn(&Sandbox); 3] = [
        &|_| {},
        &|sb| sb.controls().set_token_lifetime(Duration::MAX),
        &|sb| sb.controls().reset(),
    ];
    for set in set {
        set(&sb);
        let token = token(&sb).await;
        let claims = decode_part(&token, 1);
        let lifetime = claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap();
        assert!(lifetime > 100 * 365 * 24 * 60 * 60, "{claims}");
        assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);
    }
    // And through the admin route, in seconds.
    admin_set(&sb, "token-lifetime", json!({"secs": u64::MAX})).await;
    let token = token(&sb).await;
    assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn token_login_type_is_case_insensitive() {
    let sb = Sandbox::start().await.unwrap();
    for login_type in ["Password", "password", "PASSWORD"] {
        let mut body = credentials(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID);
        body["LoginType"] = json!(login_type);
        let response = client()
            .post(token_url(&sb))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{login_type}");
    }
    let mut body = credentials(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID);
    body["LoginType"] = json!("Sso");
    let response = client()
        .post(token_url(&sb))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(expect_error(response, 400).await.contains("LoginType"));
}

#[tokio::test]
async fn token_is_served_under_the_api_base_too() {
    let sb = Sandbox::start().await.unwrap();
    let response = client()
        .post(format!(
            "{}/adminwebservice/api/jwttoken/generate",
            sb.api_url()
        ))
        .json(&credentials(
            DEFAULT_EMAIL,
            DEFAULT_PASSWORD,
            DEFAULT_SITE_ID,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let list = client()
        .get(segments_url(&sb))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_eq!(sb.controls().token_requests(), 1);
}

#[tokio::test]
async fn token_wrong_credentials_get_401_and_the_password_is_not_logged() {
    let sb = Sandbox::start().await.unwrap();
    let cases = [
        credentials(DEFAULT_EMAIL, "wrong-password", DEFAULT_SITE_ID),
        credentials("nobody@example.com", DEFAULT_PASSWORD, DEFAULT_SITE_ID),
        credentials(DEFAULT_EMAIL, DEFAULT_PASSWORD, 99),
    ];
    for body in &cases {
        let response = client()
            .post(token_url(&sb))
            .json(body)
            .send()
            .await
            .unwrap();
        expect_error(response, 401).await;
    }
    let log = sb.controls().requests();
    assert_eq!(log.len(), 3);
    let dump = serde_json::to_string(&log).unwrap();
    assert!(!dump.contains("wrong-password"), "{dump}");
    assert!(!dump.contains(DEFAULT_PASSWORD), "{dump}");
    assert_eq!(log[0].json().unwrap()["Password"], "<redacted>");
    assert_eq!(log[0].json().unwrap()["Username"], DEFAULT_EMAIL);
    assert!(
        log.iter()
            .all(|r| r.route == Some(Route::Token) && r.status == Some(401))
    );
}

#[tokio::test]
async fn token_malformed_bodies_get_400() {
    let sb = Sandbox::start().await.unwrap();
    let raw_cases: [(&str, &str); 3] = [("", "body"), ("not json", "JSON"), ("[1, 2]", "object")];
    for (raw, needle) in raw_cases {
        let response = client()
            .post(token_url(&sb))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let message = expect_error(response, 400).await;
        assert!(message.contains(needle), "{raw:?}: {message}");
    }
    let base = credentials(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID);
    for field in ["LoginType", "Username", "Password", "SiteId"] {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(field);
        let response = client()
            .post(token_url(&sb))
            .json(&body)
            .send()
            .await
            .unwrap();
        let message = expect_error(response, 400).await;
        assert!(message.contains(field), "{field}: {message}");
    }
    let mut body = base.clone();
    body["SiteId"] = json!("10000");
    let response = client()
        .post(token_url(&sb))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(expect_error(response, 400).await.contains("SiteId"));
    let mut body = base;
    body["Username"] = json!(5);
    let response = client()
        .post(token_url(&sb))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(expect_error(response, 400).await.contains("Username"));
}

// ---------------------------------------------------------------------------------------------
// Authentication of the segment routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn segment_routes_need_a_valid_bearer_token() {
    let sb = Sandbox::start().await.unwrap();
    let good = token(&sb).await;
    let other = Sandbox::start().await.unwrap();
    let foreign = token(&other).await;
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    // Tamper with the payload: claim another site, keep the signature.
    let mut claims = decode_part(&good, 1);
    claims["siteId"] = json!("20000");
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).unwrap());
    let tampered = parts.join(".");
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("not bearer", Some(format!("Basic {good}"))),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("malformed", Some("Bearer not.a.jwt".to_owned())),
        ("two parts", Some("Bearer abc.def".to_owned())),
        ("tampered", Some(format!("Bearer {tampered}"))),
        ("foreign sandbox", Some(format!("Bearer {foreign}"))),
    ];
    for (what, auth) in cases {
        let mut request = client().get(segments_url(&sb));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        let message = expect_error(response, 401).await;
        assert!(!message.is_empty(), "{what}");
    }
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Every segment route checks the token.
    let id = uuid::Uuid::new_v4().to_string();
    let c = client();
    for request in [
        c.get(segment_url(&sb, &id)),
        c.put(segment_url(&sb, &id)).json(&segment("x")),
        c.delete(segment_url(&sb, &id)),
        c.post(segments_url(&sb)).json(&segment("x")),
    ] {
        expect_error(request.send().await.unwrap(), 401).await;
    }
    assert!(sb.controls().segments(DEFAULT_SITE_ID).is_empty());
}

#[tokio::test]
async fn an_expired_token_gets_401() {
    let sb = Sandbox::start().await.unwrap();
    sb.controls().set_token_lifetime(Duration::ZERO);
    let expired = token(&sb).await;
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert!(expect_error(response, 401).await.contains("expired"));
    sb.controls().set_token_lifetime(Duration::from_secs(3600));
    let fresh = token(&sb).await;
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn revoked_tokens_get_401_and_new_ones_work() {
    let sb = Sandbox::start().await.unwrap();
    let first = token(&sb).await;
    let second = token(&sb).await;
    sb.controls().revoke_tokens();
    for t in [&first, &second] {
        let response = client()
            .get(segments_url(&sb))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert!(expect_error(response, 401).await.contains("revoked"));
    }
    let third = token(&sb).await;
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&third)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Customer segments: CRUD
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_get_list_update_delete() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;

    let response = create(&sb, &token, &seed_segment()).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("{}/livechat/customerSegments/{id}", sb.api_url())
    );
    assert!(location.starts_with("http://127.0.0.1:"));
    let mut expected = seed_segment();
    expected["id"] = json!(id);
    assert_eq!(
        created, expected,
        "the seed's example comes back as sent, with an id"
    );

    let fetched: Value = client()
        .get(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, created);

    // A second segment with no order gets max + 1.
    let second: Value = create(&sb, &token, &segment("second"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["order"], 2);
    let list: Value = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["livechat15293908029", "second"]);

    // PUT replaces: absent fields take their defaults, the order is kept, the id is kept.
    let mut replacement = segment("renamed");
    replacement["id"] = json!(uuid::Uuid::new_v4().to_string());
    replacement["color"] = json!("abcdef");
    let response = client()
        .put(&location)
        .bearer_auth(&token)
        .json(&replacement)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["id"], json!(id));
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["color"], "abcdef");
    assert_eq!(updated["order"], 1);
    assert_eq!(
        updated["alertTo"],
        json!({"agentIds": [], "departmentIds": []})
    );
    let stored = sb.controls().segments(DEFAULT_SITE_ID);
    assert_eq!(stored[0].raw, updated);

    // An explicit order on PUT is taken.
    let mut reorder = segment("renamed");
    reorder["order"] = json!(10);
    let updated: Value = client()
        .put(&location)
        .bearer_auth(&token)
        .json(&reorder)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["order"], 10);
    let stored = sb.controls().segments(DEFAULT_SITE_ID);
    assert_eq!(stored[1]["id"], json!(id), "the listing is sorted by order");

    let response = client()
        .delete(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    for request in [
        client().get(&location),
        client().delete(&location),
        client().put(&location).json(&segment("again")),
    ] {
        expect_error(request.bearer_auth(&token).send().await.unwrap(), 404).await;
    }
    assert_eq!(sb.controls().segments(DEFAULT_SITE_ID).len(), 1);
}

#[tokio::test]
async fn create_applies_the_documented_defaults_and_ignores_the_id() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let mut body = segment("defaults");
    let sent_id = uuid::Uuid::new_v4().to_string();
    body["id"] = json!(sent_id);
    body["unknownField"] = json!(true);
    let response = create(&sb, &token, &body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_ne!(created["id"], json!(sent_id));
    assert_eq!(created["color"], "339FD9");
    assert_eq!(created["isEnable"], false);
    assert_eq!(created["conditionMetType"], "all");
    assert_eq!(created["order"], 1);
    assert_eq!(created["description"], "");
    assert_eq!(created["logicalExpression"], "");
    assert_eq!(created["conditions"][0]["order"], 1);
    assert_eq!(created["unknownField"], true, "an unknown field is kept");
    // A malformed id in the body is ignored too.
    let mut body = segment("bad id");
    body["id"] = json!(42);
    assert_eq!(create(&sb, &token, &body).await.status(), 201);
}

#[tokio::test]
async fn a_malformed_uuid_in_the_path_gets_400_and_an_unknown_one_404() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    for id in [
        "not-a-uuid",
        "1487fc9d92e64487a2e892e68d6892e6",
        "123",
        "%7B%7D",
    ] {
        let url = segment_url(&sb, id);
        for request in [
            client().get(&url),
            client().delete(&url),
            client().put(&url).json(&segment("x")),
        ] {
            let message =
                expect_error(request.bearer_auth(&token).send().await.unwrap(), 400).await;
            assert!(message.contains("uuid"), "{id}: {message}");
        }
    }
    let url = segment_url(&sb, &uuid::Uuid::new_v4().to_string());
    expect_error(
        client().get(&url).bearer_auth(&token).send().await.unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn validation_failures_get_400_naming_the_field() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let cond = |field: &str, value: Value| {
        let mut body = segment("v");
        body["conditions"][0][field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = segment("v");
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cond_without = |field: &str| {
        let mut body = segment("v");
        body["conditions"][0].as_object_mut().unwrap().remove(field);
        body
    };
    let with = |field: &str, value: Value| {
        let mut body = segment("v");
        body[field] = value;
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "object"),
        (json!("segment"), "object"),
        (without("name"), "name"),
        (with("name", json!("")), "name"),
        (with("name", json!("   \t")), "name"),
        (with("name", json!(7)), "name"),
        (without("conditions"), "conditions"),
        (with("conditions", json!([])), "conditions"),
        (with("conditions", json!({})), "conditions"),
        (with("conditions", json!([5])), "conditions[0]"),
        (with("color", json!("#339FD9")), "color"),
        (with("color", json!("339FD")), "color"),
        (with("color", json!("GGGGGG")), "color"),
        (with("color", json!(339)), "color"),
        (with("isEnable", json!("true")), "isEnable"),
        (with("order", json!("1")), "order"),
        (with("order", json!(1.5)), "order"),
        (with("order", json!(4_000_000_000_i64)), "order"),
        (with("description", json!(1)), "description"),
        (
            with("conditionMetType", json!("weighted")),
            "conditionMetType",
        ),
        (with("conditionMetType", json!("ALL")), "conditionMetType"),
        (with("logicalExpression", json!(false)), "logicalExpression"),
        (cond_without("field"), "conditions[0].field"),
        (cond_without("operator"), "conditions[0].operator"),
        (cond_without("value"), "conditions[0].value"),
        (
            cond("operator", json!("startsWith")),
            "conditions[0].operator",
        ),
        (cond("value", json!(3)), "conditions[0].value"),
        (cond("order", json!("x")), "conditions[0].order"),
        (with("alertTo", json!([])), "alertTo"),
        (
            with("alertTo", json!({"agentIds": ["4"]})),
            "alertTo.agentIds[0]",
        ),
        (
            with("alertTo", json!({"agentIds": [4, 5.5]})),
            "alertTo.agentIds[1]",
        ),
        (with("alertTo", json!({"agentIds": 4})), "alertTo.agentIds"),
        (
            with("alertTo", json!({"departmentIds": [4]})),
            "alertTo.departmentIds[0]",
        ),
        (
            with("alertTo", json!({"departmentIds": ["nope"]})),
            "alertTo.departmentIds[0]",
        ),
    ];
    for (body, field) in &cases {
        let response = create(&sb, &token, body).await;
        let message = expect_error(response, 400).await;
        let named = if *field == "object" {
            message.contains("JSON object")
        } else {
            message.contains(&format!("'{field}"))
        };
        assert!(named, "{body}: {message}");
    }
    // Every known value of the enums is accepted.
    for met in ["all", "any", "logicalExpression"] {
        assert_eq!(
            create(&sb, &token, &with("conditionMetType", json!(met)))
                .await
                .status(),
            201
        );
    }
    for op in [
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
    ] {
        assert_eq!(
            create(&sb, &token, &cond("operator", json!(op)))
                .await
                .status(),
            201,
            "{op}"
        );
    }
    let ok = with(
        "alertTo",
        json!({"agentIds": [1, 2], "departmentIds": ["1487fc9d-92e6-4487-a2e8-92e68d6892e6"]}),
    );
    assert_eq!(create(&sb, &token, &ok).await.status(), 201);
    // Non-JSON bodies get 400 too, and PUT validates as POST does.
    let response = client()
        .post(segments_url(&sb))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{name:")
        .send()
        .await
        .unwrap();
    assert!(expect_error(response, 400).await.contains("JSON"));
    let created: Value = create(&sb, &token, &segment("target"))
        .await
        .json()
        .await
        .unwrap();
    let url = segment_url(&sb, created["id"].as_str().unwrap());
    let response = client()
        .put(&url)
        .bearer_auth(&token)
        .json(&with("name", json!(" ")))
        .send()
        .await
        .unwrap();
    assert!(expect_error(response, 400).await.contains("'name'"));
    // Nothing invalid was stored.
    assert_eq!(
        sb.controls().segments(DEFAULT_SITE_ID).len(),
        3 + 10 + 1 + 1
    );
}

#[tokio::test]
async fn sites_never_see_each_others_segments() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    controls.add_agent("other@example.com", "other-password", 20000);
    controls.add_agent("agent@example.com", "same-agent-other-site", 30000);
    let a = token(&sb).await;
    let b = token_for(&sb, "other@example.com", "other-password", 20000).await;
    let c = token_for(&sb, "agent@example.com", "same-agent-other-site", 30000).await;
    assert_eq!(decode_part(&b, 1)["siteId"], "20000");
    // The other agent cannot log in to the default site.
    let response = client()
        .post(token_url(&sb))
        .json(&credentials(
            "other@example.com",
            "other-password",
            DEFAULT_SITE_ID,
        ))
        .send()
        .await
        .unwrap();
    expect_error(response, 401).await;

    let created: Value = create(&sb, &a, &segment("site A"))
        .await
        .json()
        .await
        .unwrap();
    let url = segment_url(&sb, created["id"].as_str().unwrap());
    let other: Value = create(&sb, &b, &segment("site B"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["order"], 1, "orders are per site");

    for t in [&b, &c] {
        expect_error(client().get(&url).bearer_auth(t).send().await.unwrap(), 404).await;
        expect_error(
            client().delete(&url).bearer_auth(t).send().await.unwrap(),
            404,
        )
        .await;
        expect_error(
            client()
                .put(&url)
                .bearer_auth(t)
                .json(&segment("hijack"))
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
    }
    let list_b: Value = client()
        .get(segments_url(&sb))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list_b.as_array().unwrap().len(), 1);
    assert_eq!(list_b[0]["name"], "site B");
    let list_c: Value = client()
        .get(segments_url(&sb))
        .bearer_auth(&c)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list_c, json!([]));
    assert_eq!(controls.segments(DEFAULT_SITE_ID)[0]["name"], "site A");
    assert_eq!(controls.segments(20000)[0]["name"], "site B");
    assert!(controls.segments(30000).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Other routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let response = client()
        .get(format!("{}/livechat/nothing", sb.api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404).await;
    let response = client()
        .patch(segments_url(&sb))
        .bearer_auth(&token)
        .json(&segment("x"))
        .send()
        .await
        .unwrap();
    let allow = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    expect_error(response, 405).await;
    let allow = allow.expect("405 carries Allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let response = client().get(token_url(&sb)).send().await.unwrap();
    expect_error(response, 405).await;
}

// ---------------------------------------------------------------------------------------------
// The request log
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_request_log_records_each_request() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let jti = decode_part(&token, 1)["jti"].as_str().unwrap().to_owned();
    let created: Value = create(&sb, &token, &segment("logged"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    client()
        .get(segment_url(&sb, id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    client().get(segments_url(&sb)).send().await.unwrap();
    controls.wait_for_requests(4).await;

    let log = controls.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(controls.token_requests(), 1, "exactly one token request");
    let (t, c, g, anon) = (&log[0], &log[1], &log[2], &log[3]);
    assert_eq!(
        (t.method.as_str(), t.path.as_str(), t.status),
        ("POST", "/adminwebservice/api/jwttoken/generate", Some(200))
    );
    assert!(!t.had_token);
    assert_eq!(t.token_jti, None);
    assert_eq!(
        (c.method.as_str(), c.status, c.route),
        ("POST", Some(201), Some(Route::Create))
    );
    assert_eq!(c.path, "/api/v3/livechat/customerSegments");
    assert!(c.had_token);
    assert_eq!(c.token_jti.as_deref(), Some(jti.as_str()));
    assert_eq!(c.json().unwrap()["name"], "logged");
    assert!(
        c.headers
            .contains(&("authorization".to_owned(), "<redacted>".to_owned()))
    );
    assert!(!serde_json::to_string(&log).unwrap().contains(&token));
    assert_eq!(
        (g.route, g.status, g.json()),
        (Some(Route::Get), Some(200), None)
    );
    assert_eq!(g.path, format!("/api/v3/livechat/customerSegments/{id}"));
    assert_eq!(
        (anon.route, anon.status, anon.had_token),
        (Some(Route::List), Some(401), false)
    );
    assert!(log.iter().all(|r| r.fault.is_none()));

    controls.clear_requests();
    assert!(controls.requests().is_empty());
    assert_eq!(controls.token_requests(), 0);
    client().get(segments_url(&sb)).send().await.unwrap();
    controls.wait_for_requests(1).await;
    assert_eq!(controls.requests().len(), 1);
}

#[tokio::test]
async fn wait_for_requests_waits_for_a_request_in_flight() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let url = segments_url(&sb);
    let waiter = tokio::spawn({
        let controls = controls.clone();
        async move { controls.wait_for_requests(2).await }
    });
    client().get(&url).send().await.unwrap();
    assert!(!waiter.is_finished() || controls.requests().len() >= 2);
    client().get(&url).send().await.unwrap();
    waiter.await.unwrap();
    assert_eq!(controls.requests().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_are_all_kept_with_unique_orders() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    let client = reqwest::Client::new();
    let url = segments_url(&sb);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(&url)
                .bearer_auth(&token)
                .json(&segment(&format!("concurrent {i}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut orders = HashSet::new();
    for task in tasks {
        let created = task.await.unwrap();
        ids.insert(created["id"].as_str().unwrap().to_owned());
        orders.insert(created["order"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 200);
    assert_eq!(orders.len(), 200);
    assert_eq!(orders.iter().max(), Some(&200));
    let stored = sb.controls().segments(DEFAULT_SITE_ID);
    assert_eq!(stored.len(), 200);
    let stored_ids: HashSet<String> = stored
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored_ids, ids);
    let stored_orders: Vec<i64> = stored
        .iter()
        .map(|s| s["order"].as_i64().unwrap())
        .collect();
    assert_eq!(stored_orders, (1..=200).collect::<Vec<_>>());
    assert_eq!(sb.controls().requests().len(), 201);
}
