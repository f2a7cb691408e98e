//! Seed data, the typed state and the reset, through the builder, `Controls`, the seed JSON and
//! the admin routes, over real HTTP.

mod common;

use std::time::Duration;

use comm100_sandbox::{
    DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID, Fault, Route, Sandbox, SandboxConfig, Seed,
    TokenHost,
};
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;

const SITE: i64 = 20000;
const SEEDED_ID: &str = "0b7c1a2e-5f34-4d6a-8e9b-1c2d3e4f5a6b";

/// A sandbox with an agent on [`SITE`], two segments there (one with an id and an order, one
/// with neither), the odd records after them, and an empty site.
async fn seeded() -> Sandbox {
    Sandbox::builder()
        .agent("sync@example.com", "sync-password", SITE)
        .segment(
            SITE,
            json!({"id": SEEDED_ID, "name": "VIP", "isEnable": true, "order": 5}),
        )
        .odd_segments(SITE)
        .segment(SITE, json!({"name": "no id, no order", "tier": "gold"}))
        .site(30000)
        .start()
        .await
        .unwrap()
}

async fn list(sb: &Sandbox, token: &str) -> Vec<Value> {
    get_ok(&segments_url(sb), Some(token)).await
}

/// The JSON of the admin route `GET /__sandbox/{path}`.
async fn admin_get(sb: &Sandbox, path: &str) -> Value {
    get_ok(&format!("{}/__sandbox/{path}", sb.portal_url()), None).await
}

#[tokio::test]
async fn a_seeded_sandbox_serves_its_agents_and_segments_from_the_first_request() {
    let sb = seeded().await;
    let controls = sb.controls();
    assert!(controls.requests().is_empty(), "seeding sends no request");
    assert_eq!(controls.sites(), [DEFAULT_SITE_ID, SITE, 30000]);
    let agents = controls.agents();
    assert_eq!(agents.len(), 2);
    assert_eq!(
        (agents[0].id, agents[0].email.as_str(), agents[0].site_id),
        (1, DEFAULT_EMAIL, DEFAULT_SITE_ID)
    );
    assert_eq!(
        (
            agents[1].id,
            agents[1].email.as_str(),
            agents[1].password.as_str(),
            agents[1].site_id
        ),
        (2, "sync@example.com", "sync-password", SITE)
    );

    let token = token_for(&sb, "sync@example.com", "sync-password", SITE).await;
    let listed = list(&sb, &token).await;
    let stored = controls.segments(SITE);
    assert_eq!(listed.len(), 7, "two segments and five odd records");
    assert_eq!(
        listed,
        stored.iter().map(|s| s.raw.clone()).collect::<Vec<_>>()
    );
    // The segments come before the odd records, which the builder puts after them.
    assert_eq!(stored[0].id, SEEDED_ID.parse::<Uuid>().unwrap());
    assert_eq!(stored[0].order, Some(5));
    assert_eq!(stored[1].name.as_deref(), Some("no id, no order"));
    assert_eq!(stored[1].order, None, "no order is written in");
    assert_eq!(stored[1]["id"], json!(stored[1].id.to_string()));
    assert_eq!(stored[1]["tier"], "gold");
    assert_eq!(stored[2].name.as_deref(), Some("odd color"));
    assert_eq!(stored[2].order, Some(7));
    assert!(controls.segments(30000).is_empty());
    assert!(controls.segments(DEFAULT_SITE_ID).is_empty());
}

#[tokio::test]
async fn typed_records_read_the_known_fields_and_keep_the_rest() {
    let sb = Sandbox::builder().odd_segments(SITE).start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let mut full = seed_segment();
    full["priority"] = json!(3);
    full["conditions"][0]["caseSensitive"] = json!(true);
    full["alertTo"]["departmentIds"] = json!([SEEDED_ID]);
    let response = create(&sb, &token, &full).await;
    assert_eq!(response.status(), 201);

    let record = controls.segments(DEFAULT_SITE_ID).pop().unwrap();
    assert_eq!(record.name.as_deref(), Some("livechat15293908029"));
    assert_eq!(record.color.as_deref(), Some("339FD9"));
    assert_eq!(record.is_enable, Some(false));
    assert_eq!(record.order, Some(1));
    assert_eq!(record.description.as_deref(), Some(""));
    assert_eq!(record.condition_met_type.as_deref(), Some("all"));
    assert_eq!(record.logical_expression.as_deref(), Some(""));
    let conditions = record.conditions.as_ref().unwrap();
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].field.as_deref(), Some("CurrentPageUrl"));
    assert_eq!(conditions[0].operator.as_deref(), Some("include"));
    assert_eq!(conditions[0].value.as_deref(), Some("live"));
    assert_eq!(conditions[0].order, Some(1));
    let alert_to = record.alert_to.as_ref().unwrap();
    assert_eq!(alert_to.agent_ids.as_deref(), Some(&[4, 5][..]));
    assert_eq!(
        alert_to.department_ids.as_deref(),
        Some(&[SEEDED_ID.parse::<Uuid>().unwrap()][..])
    );
    // Unknown fields: in `raw`, by index, and in the serialised record.
    assert_eq!(record["priority"], 3);
    assert_eq!(record["conditions"][0]["caseSensitive"], true);
    assert_eq!(record["absent"], Value::Null);
    assert_eq!(serde_json::to_value(&record).unwrap(), record.raw);
    assert_eq!(
        controls.segment(DEFAULT_SITE_ID, record.id),
        Some(record.clone())
    );
    assert_eq!(controls.segment(SITE, record.id), None, "another site");
    assert_eq!(controls.segment(DEFAULT_SITE_ID, Uuid::new_v4()), None);

    // The odd records: a known field of another type, null or absent is `None`.
    let odd = controls.segments(SITE);
    assert_eq!(odd[0].color.as_deref(), Some("#FF0000"));
    assert_eq!(odd[1].name.as_deref(), Some("   "));
    assert_eq!(odd[2].conditions, None, "conditions: null");
    assert_eq!(odd[2].alert_to.as_ref().unwrap().agent_ids, None);
    assert_eq!(odd[3].conditions, None, "no conditions");
    assert_eq!(odd[3].condition_met_type.as_deref(), Some("weighted"));
    let condition = &odd[4].conditions.as_ref().unwrap()[0];
    assert_eq!(condition.operator.as_deref(), Some("startsWith"));
    assert_eq!(condition.value, None, "value: null");
    assert_eq!(odd[4]["createdBy"], 42);
}

#[tokio::test]
async fn the_example_seed_file_starts_a_sandbox() {
    let seed: Seed = serde_json::from_str(include_str!("../examples/seed.json")).unwrap();
    let sb = Sandbox::builder().seed(seed).start().await.unwrap();
    let controls = sb.controls();
    let emails: Vec<String> = controls.agents().into_iter().map(|a| a.email).collect();
    assert_eq!(emails, [DEFAULT_EMAIL, "sync@example.com"]);
    let site = controls.segments(DEFAULT_SITE_ID);
    assert_eq!(site.len(), 2);
    assert_eq!(
        site[0].id.to_string(),
        "7d9f1c52-3b8e-4c1a-9f6e-2a4b5c6d7e8f"
    );
    assert_eq!(site[0].name.as_deref(), Some("VIP visitors"));
    assert_eq!(controls.segments(SITE).len(), 5, "the odd records");

    let token = token(&sb).await;
    assert_eq!(list(&sb, &token).await[1]["name"], "Returning visitors");
}

#[test]
fn a_seed_is_read_strictly_and_merged_by_site() {
    for (json, error) in [
        (r#"{"agent": []}"#, "unknown field `agent`"),
        (
            r#"{"sites": [{"site_id": 1, "segment": []}]}"#,
            "unknown field `segment`",
        ),
        (
            r#"{"sites": [{"site_id": 1, "segments": [1]}]}"#,
            "expected a map",
        ),
        (
            r#"{"agents": [{"email": "a@b.c", "site_id": 1}]}"#,
            "missing field `password`",
        ),
    ] {
        let message = serde_json::from_str::<Seed>(json).unwrap_err().to_string();
        assert!(message.contains(error), "{json}: {message}");
    }
    let empty: Seed = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, Seed::default());

    let first: Seed =
        serde_json::from_str(r#"{"sites": [{"site_id": 1, "segments": [{"name": "a"}]}]}"#)
            .unwrap();
    let second: Seed = serde_json::from_str(
        r#"{"sites": [{"site_id": 1, "segments": [{"name": "b"}], "odd_segments": true}]}"#,
    )
    .unwrap();
    let merged = SandboxConfig::builder()
        .seed(first)
        .seed(second)
        .build()
        .seed;
    let expected: Seed = serde_json::from_str(
        r#"{"sites": [{"site_id": 1, "segments": [{"name": "a"}, {"name": "b"}], "odd_segments": true}]}"#,
    )
    .unwrap();
    assert_eq!(merged, expected);
}

#[test]
#[should_panic(expected = "takes a JSON object")]
fn the_builder_refuses_a_segment_that_is_not_an_object() {
    let _ = Sandbox::builder().segment(SITE, json!(["not", "an", "object"]));
}

/// The token's lifetime, `exp - nbf`, and its `nbf` less the real clock.
fn lifetime_and_offset(token: &str) -> (i64, i64) {
    let claims = decode_part(token, 1);
    let (nbf, exp) = (
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    (exp - nbf, nbf - now)
}

#[tokio::test]
async fn reset_puts_back_the_seeded_start() {
    let sb = Sandbox::builder()
        .token_lifetime(Duration::from_secs(600))
        .clock_offset_secs(-3600)
        .agent("sync@example.com", "sync-password", SITE)
        .segment(SITE, json!({"id": SEEDED_ID, "name": "VIP", "order": 1}))
        .start()
        .await
        .unwrap();
    let controls = sb.controls();
    let (segments, agents, sites) = (controls.segments(SITE), controls.agents(), controls.sites());

    // Change everything: the data, through the API and the controls, and every mode.
    let old = token_for(&sb, "sync@example.com", "sync-password", SITE).await;
    assert_eq!(create(&sb, &old, &segment("new")).await.status(), 201);
    let seeded_url = segment_url(&sb, SEEDED_ID);
    assert_eq!(delete(&seeded_url, &old).await.status(), 204);
    controls.add_agent("late@example.com", "pw", 40000);
    controls.insert_raw_segment(50000, json!({"name": "raw"}));
    controls.seed_odd_segments(SITE);
    controls.fail_next(1, Fault::Status(500), Some(Route::Update));
    controls.fail_next(10, Fault::Status(500), None);
    assert_eq!(get(&segments_url(&sb), None).await.status(), 500);
    controls.set_latency(Some(Duration::from_secs(60)));
    controls.set_daily_limit(Some(0));
    controls.set_forward_compat(true);
    controls.set_gzip(true);
    controls.set_refuse_valid_tokens(true);
    controls.set_token_host(TokenHost::Silent);
    controls.set_token_lifetime(Duration::ZERO);
    controls.set_clock_offset(7200);
    assert_eq!(controls.faults_injected(), 1);

    controls.reset();

    assert_eq!(
        controls.segments(SITE),
        segments,
        "the seeded segments, same ids"
    );
    assert_eq!(controls.agents(), agents);
    assert_eq!(controls.sites(), sites);
    assert!(controls.segments(50000).is_empty());
    assert!(controls.requests().is_empty());
    let stats = controls.stats();
    assert_eq!(
        (stats.requests, stats.token_requests, stats.faults_injected),
        (0, 0, 0)
    );
    assert_eq!(controls.clock_offset(), -3600);
    // Every mode is off: each request below would fail, hang or differ under one of them.
    let answered = async {
        let revoked = get(&segments_url(&sb), Some(&old)).await;
        assert!(expect_error(revoked, 401).await.contains("revoked"));
        let fresh = token_for(&sb, "sync@example.com", "sync-password", SITE).await;
        let (lifetime, offset) = lifetime_and_offset(&fresh);
        assert_eq!(lifetime, 600);
        assert!((-3610..=-3590).contains(&offset), "{offset}");
        let listed = client()
            .get(segments_url(&sb))
            .bearer_auth(&fresh)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 200);
        let listed: Vec<Value> = listed.json().await.unwrap();
        assert_eq!(
            listed,
            [json!({"id": SEEDED_ID, "name": "VIP", "order": 1})]
        );
    };
    tokio::time::timeout(Duration::from_secs(10), answered)
        .await
        .expect("no latency, no silent token host after the reset");
    let log = controls.requests();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r.fault.is_none() && !r.gzip), "{log:?}");
    assert_eq!(controls.faults_injected(), 0);
}

#[tokio::test]
async fn the_admin_routes_read_the_agents_and_reset() {
    let sb = seeded().await;
    let controls = sb.controls();
    assert_eq!(
        admin_get(&sb, "agents").await,
        json!([
            {"id": 1, "email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD, "site_id": DEFAULT_SITE_ID},
            {"id": 2, "email": "sync@example.com", "password": "sync-password", "site_id": SITE}
        ])
    );

    let token = token(&sb).await;
    assert_eq!(create(&sb, &token, &segment("new")).await.status(), 201);
    admin_set(&sb, "gzip", json!({"on": true})).await;
    assert_eq!(
        admin_get(&sb, "stats").await,
        json!({"faults_injected": 0, "token_requests": 1, "requests": 2, "dropped_requests": 0})
    );

    admin_set(&sb, "reset", Value::Null).await;
    assert!(controls.segments(DEFAULT_SITE_ID).is_empty());
    assert_eq!(controls.segments(SITE).len(), 7);
    assert!(controls.requests().is_empty());
    let response = get(&segments_url(&sb), Some(&token)).await;
    assert_eq!(response.status(), 401, "the token is forgotten");
}
