//! The rate-limit mode: a token bucket per client address, answered `429` with `Retry-After`
//! when empty, refilled on the sandbox's clock, which the tests move on explicitly.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use comm100_sandbox::{Fault, RateLimit, Route, Sandbox};
use common::*;
use serde_json::json;

/// A token comes back every 10 s: much longer than a test takes, so only the clock offset
/// brings one back.
const EVERY: Duration = Duration::from_secs(10);

/// A client whose connections come from `ip` (any address of 127.0.0.0/8 is loopback).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn list_from(client: &reqwest::Client, sb: &Sandbox, token: &str) -> reqwest::Response {
    client
        .get(segments_url(sb))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The `Retry-After` of a `429`, in seconds.
async fn retry_after(response: reqwest::Response) -> u64 {
    let value = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_owned();
    let message = expect_error(response, 429).await;
    assert!(message.contains(&value), "{message}");
    value.parse().expect("whole seconds")
}

#[tokio::test]
async fn a_burst_over_the_bucket_gets_429_with_retry_after_and_the_bucket_refills() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await; // before the mode: off by default
    controls.set_rate_limit(Some(RateLimit::new(3, EVERY)));
    let c = client();
    for _ in 0..3 {
        assert_eq!(list_from(&c, &sb, &token).await.status(), 200);
    }
    let wait = retry_after(list_from(&c, &sb, &token).await).await;
    assert!((1..=EVERY.as_secs()).contains(&wait), "{wait}");

    // Ten seconds on, one token has come back, and only one.
    controls.set_clock_offset(i64::try_from(EVERY.as_secs()).unwrap());
    assert_eq!(list_from(&c, &sb, &token).await.status(), 200);
    retry_after(list_from(&c, &sb, &token).await).await;
    // Much later, the bucket is full again, and no fuller.
    controls.set_clock_offset(3600);
    for _ in 0..3 {
        assert_eq!(list_from(&c, &sb, &token).await.status(), 200);
    }
    retry_after(list_from(&c, &sb, &token).await).await;

    let statuses: Vec<Option<u16>> = controls.requests().iter().map(|r| r.status).collect();
    let limited = statuses.iter().filter(|s| **s == Some(429)).count();
    assert_eq!(limited, 3);
}

#[tokio::test]
async fn each_address_has_its_own_bucket_and_logins_count() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    controls.set_rate_limit(Some(RateLimit::new(1, EVERY)));
    let token = token(&sb).await; // the login takes 127.0.0.1's token
    let here = client_from(Ipv4Addr::LOCALHOST);
    retry_after(list_from(&here, &sb, &token).await).await;
    let there = client_from(Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(list_from(&there, &sb, &token).await.status(), 200);
    retry_after(list_from(&there, &sb, &token).await).await;
}

#[tokio::test]
async fn a_limited_request_is_not_processed_and_leaves_a_queued_fault_queued() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.set_rate_limit(Some(RateLimit::new(0, EVERY)));
    controls.fail_next(1, Fault::Status(503), Some(Route::Create));
    retry_after(create(&sb, &token, &segment("limited")).await).await;
    assert!(
        controls
            .segments(comm100_sandbox::DEFAULT_SITE_ID)
            .is_empty()
    );
    assert_eq!(controls.faults_injected(), 0);

    // Off again: the fault meets the next create.
    controls.set_rate_limit(None);
    expect_error(create(&sb, &token, &segment("faulted")).await, 503).await;
}

#[tokio::test]
async fn the_admin_route_sets_and_clears_the_mode_and_reset_clears_it() {
    let sb = Sandbox::start().await.unwrap();
    let token = token(&sb).await;
    admin_set(&sb, "rate-limit", json!({"size": 1, "every_ms": 10_000})).await;
    assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);
    let wait = retry_after(get(&segments_url(&sb), Some(&token)).await).await;
    assert!((1..=10).contains(&wait), "{wait}");
    admin_set(&sb, "rate-limit", json!(null)).await;
    assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);

    admin_set(&sb, "rate-limit", json!({"size": 0, "every_ms": 10_000})).await;
    expect_error(
        admin_post(&sb, "rate-limit", json!({"size": -1})).await,
        400,
    )
    .await;
    sb.controls().reset();
    let token = common::token(&sb).await;
    assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);
}
