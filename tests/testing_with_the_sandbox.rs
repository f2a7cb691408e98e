//! Testing your own code with comm100-sandbox, as a user of both crates writes it (their public
//! API only). The sandbox's README shows this file from its first `use` line
//! ("Testing your code"), and `tests/sandbox_readme.rs` checks that it does.

use std::time::Duration;

use comm100::prelude::*;
use comm100_sandbox::{Fault, Route, Sandbox, DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID};
use serde_json::json;

/// Your code: turns on every segment whose name starts with `prefix`, and says how many it
/// turned on.
async fn enable_segments(c100: &Comm100, prefix: &str) -> Result<usize, ApiError> {
    let client = c100.client();
    let mut enabled = 0;
    for mut segment in client.list_customer_segments().call().await? {
        let name = segment.name.as_deref().unwrap_or_default();
        if name.starts_with(prefix) && segment.is_enable != Some(true) {
            segment.is_enable = Some(true);
            let update = client.update_customer_segment().id(segment.id);
            update.body(segment).call().await?;
            enabled += 1;
        }
    }
    Ok(enabled)
}

/// A segment as Comm100 stores it.
fn segment(name: &str, order: i64) -> serde_json::Value {
    json!({
        "name": name, "color": "339FD9", "isEnable": false, "order": order,
        "description": "", "conditionMetType": "all", "logicalExpression": "",
        "conditions": [{"field": "CurrentPageUrl", "operator": "include", "value": "/pricing", "order": 1}],
        "alertTo": {"agentIds": [], "departmentIds": []}
    })
}

/// A sandbox with two segments in place, and a client logged in to it that retries at once.
async fn sandbox_and_client() -> (Sandbox, Comm100) {
    let sandbox = Sandbox::builder()
        .segment(DEFAULT_SITE_ID, segment("VIP: pricing page", 1))
        .segment(DEFAULT_SITE_ID, segment("Returning visitors", 2))
        .start()
        .await
        .unwrap();
    let c100 = Comm100::builder()
        .urls(sandbox.portal_url(), sandbox.api_url())
        .password_login(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID)
        .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(1)))
        .build()
        .unwrap();
    (sandbox, c100)
}

#[tokio::test]
async fn enables_the_matching_segments_only() {
    let (sandbox, c100) = sandbox_and_client().await;

    assert_eq!(enable_segments(&c100, "VIP").await.unwrap(), 1);

    let stored = sandbox.controls().segments(DEFAULT_SITE_ID);
    assert_eq!(stored[0].name.as_deref(), Some("VIP: pricing page"));
    assert_eq!(stored[0].is_enable, Some(true));
    assert_eq!(stored[1].is_enable, Some(false));
}

#[tokio::test]
async fn a_503_on_an_update_is_retried_once() {
    let (sandbox, c100) = sandbox_and_client().await;
    let controls = sandbox.controls();
    controls.fail_next(1, Fault::Status(503), Some(Route::Update));

    assert_eq!(enable_segments(&c100, "VIP").await.unwrap(), 1);

    let updates: Vec<Option<u16>> = controls
        .requests()
        .iter()
        .filter(|r| r.route == Some(Route::Update))
        .map(|r| r.status)
        .collect();
    assert_eq!(updates, [Some(503), Some(200)], "one retry, then done");
}

#[tokio::test]
async fn a_refused_update_reaches_the_caller() {
    let (sandbox, c100) = sandbox_and_client().await;
    let controls = sandbox.controls();
    controls.fail_next(1, Fault::Status(400), Some(Route::Update));

    let err = enable_segments(&c100, "VIP").await.unwrap_err();

    assert_eq!(err.kind(), &ErrorKind::BadRequest);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(controls.segments(DEFAULT_SITE_ID)[0].is_enable, Some(false));
}
