//! Faults on demand, the daily limit, forward compatibility, the admin routes, the binary and
//! shutting down, all over real HTTP.

mod common;

use std::time::{Duration, Instant};

use comm100_sandbox::{DAILY_LIMIT_MESSAGE, DEFAULT_SITE_ID, Fault, OddBody, Route, Sandbox};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn status_faults_fail_the_next_n_requests_then_stop() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    for status in [500u16, 502, 503] {
        controls.fail_next(2, Fault::Status(status), None);
        for _ in 0..2 {
            let response = client()
                .get(segments_url(&sb))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            expect_error(response, status).await;
        }
        let response = client()
            .get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(controls.faults_injected(), 6);
    let log = controls.requests();
    assert_eq!(log[1].fault, Some(Fault::Status(500)));
    assert_eq!(log[3].fault, None);
    assert_eq!(log[4].status, Some(502));
}

#[tokio::test]
async fn a_fault_on_one_route_leaves_the_others_alone() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    controls.fail_next(1, Fault::Status(503), Some(Route::Create));
    let token = token(&sb).await; // the token route is not faulted
    let list = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    expect_error(create(&sb, &token, &segment("a")).await, 503).await;
    assert!(
        controls.segments(DEFAULT_SITE_ID).is_empty(),
        "a faulted create creates nothing"
    );
    assert_eq!(create(&sb, &token, &segment("a")).await.status(), 201);
    assert_eq!(controls.faults_injected(), 1);

    // A fault on the token route.
    controls.fail_next(1, Fault::Status(500), Some(Route::Token));
    let response = client()
        .post(token_url(&sb))
        .json(&credentials(
            comm100_sandbox::DEFAULT_EMAIL,
            comm100_sandbox::DEFAULT_PASSWORD,
            DEFAULT_SITE_ID,
        ))
        .send()
        .await
        .unwrap();
    expect_error(response, 500).await;
    let _ = common::token(&sb).await;
    // Any-route faults hit the token route too, and queue up in order.
    controls.fail_next(1, Fault::Status(502), None);
    controls.fail_next(1, Fault::Status(503), None);
    let c = client();
    expect_error(
        c.get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        502,
    )
    .await;
    expect_error(
        c.post(token_url(&sb))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        503,
    )
    .await;
    assert_eq!(controls.faults_injected(), 4);
}

#[tokio::test]
async fn rate_limited_carries_retry_after() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    for retry_after in ["0", "1", "Wed, 21 Oct 2015 07:28:00 GMT"] {
        controls.fail_next(
            1,
            Fault::RateLimited {
                retry_after: retry_after.to_owned(),
            },
            Some(Route::List),
        );
        let response = client()
            .get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["retry-after"], retry_after);
        expect_error(response, 429).await;
    }
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn rate_limited_on_create_refuses_before_creating() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let fault = Fault::RateLimited {
        retry_after: "1".to_owned(),
    };
    controls.fail_next(1, fault.clone(), Some(Route::Create));
    let response = create(&sb, &token, &segment("refused")).await;
    assert_eq!(response.headers()["retry-after"], "1");
    expect_error(response, 429).await;
    assert!(
        controls.segments(DEFAULT_SITE_ID).is_empty(),
        "a rate-limited create creates nothing"
    );
    let last = controls.requests().pop().unwrap();
    assert_eq!((last.status, last.fault), (Some(429), Some(fault)));
    // The retry creates the one segment.
    assert_eq!(create(&sb, &token, &segment("refused")).await.status(), 201);
    assert_eq!(controls.segments(DEFAULT_SITE_ID).len(), 1);
}

#[tokio::test]
async fn odd_bodies_come_in_each_shape() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;

    controls.fail_next(
        1,
        Fault::OddBody {
            status: 400,
            body: OddBody::Relaxed,
        },
        None,
    );
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("{ code: 400000, message: \""), "{text}");
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "not strict JSON"
    );

    controls.fail_next(
        1,
        Fault::OddBody {
            status: 502,
            body: OddBody::Html,
        },
        None,
    );
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("<html>"));

    controls.fail_next(
        1,
        Fault::OddBody {
            status: 500,
            body: OddBody::Empty,
        },
        None,
    );
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(controls.faults_injected(), 3);
}

#[tokio::test]
async fn drop_before_handling_closes_without_processing() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.fail_next(1, Fault::DropBeforeHandling, Some(Route::Create));
    let error = create_err(&sb, &token).await;
    assert!(!error.is_status(), "{error}");
    assert!(
        controls.segments(DEFAULT_SITE_ID).is_empty(),
        "the segment was not created"
    );
    let log = controls.requests();
    assert_eq!(log.last().unwrap().status, None);
    assert_eq!(log.last().unwrap().fault, Some(Fault::DropBeforeHandling));
    // The next request is served.
    assert_eq!(create(&sb, &token, &segment("after")).await.status(), 201);
    assert_eq!(controls.segments(DEFAULT_SITE_ID).len(), 1);
}

#[tokio::test]
async fn drop_after_handling_processes_then_closes() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.fail_next(1, Fault::DropAfterHandling, Some(Route::Create));
    let error = create_err(&sb, &token).await;
    assert!(!error.is_status(), "{error}");
    let stored = controls.segments(DEFAULT_SITE_ID);
    assert_eq!(stored.len(), 1, "the segment was created");
    assert_eq!(stored[0]["name"], "dropped");
    let last = controls.requests().pop().unwrap();
    assert_eq!(
        (last.status, last.fault),
        (None, Some(Fault::DropAfterHandling))
    );
    assert_eq!(controls.faults_injected(), 1);
}

async fn create_err(sb: &Sandbox, token: &str) -> reqwest::Error {
    client()
        .post(segments_url(sb))
        .bearer_auth(token)
        .json(&segment("dropped"))
        .send()
        .await
        .expect_err("the connection is dropped without a response")
}

#[tokio::test]
async fn latency_delays_responses() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.fail_next(
        1,
        Fault::Latency(Duration::from_millis(150)),
        Some(Route::List),
    );
    let start = Instant::now();
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "handled normally after the delay");
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        controls.requests().last().unwrap().fault,
        Some(Fault::Latency(Duration::from_millis(150)))
    );

    controls.set_latency(Some(Duration::from_millis(100)));
    for _ in 0..2 {
        let start = Instant::now();
        let response = client()
            .get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(start.elapsed() >= Duration::from_millis(100));
    }
    controls.set_latency(None);
    assert_eq!(
        controls.faults_injected(),
        1,
        "the standing latency is not a queued fault"
    );
}

#[tokio::test]
async fn daily_limit_returns_403_after_n_requests() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.set_daily_limit(Some(2));
    for _ in 0..2 {
        let response = client()
            .get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    for _ in 0..2 {
        let response = client()
            .get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(expect_error(response, 403).await, DAILY_LIMIT_MESSAGE);
    }
    expect_error(create(&sb, &token, &segment("x")).await, 403).await;
    // The token endpoint does not count and is not limited.
    let _ = common::token(&sb).await;
    controls.set_daily_limit(None);
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    controls.set_daily_limit(Some(0));
    let response = client()
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(response, 403).await;
}

#[tokio::test]
async fn forward_compat_mode_sends_values_the_spec_does_not_know() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.set_forward_compat(true);
    let response = create(&sb, &token, &seed_segment()).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["conditionMetType"], "weighted");
    assert_eq!(created["conditions"][0]["operator"], "startsWith");
    assert_eq!(created["priority"], 3);
    let id = created["id"].as_str().unwrap();
    for url in [segment_url(&sb, id), segments_url(&sb)] {
        let body: Value = client()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let segment = if body.is_array() {
            body[0].clone()
        } else {
            body
        };
        assert_eq!(segment["conditionMetType"], "weighted");
        assert_eq!(segment["conditions"][0]["operator"], "startsWith");
        assert_eq!(segment["priority"], 3);
    }
    // The stored state is unchanged, and the mode turns off.
    assert_eq!(
        controls.segments(DEFAULT_SITE_ID)[0]["conditionMetType"],
        "all"
    );
    controls.set_forward_compat(false);
    let body: Value = client()
        .get(segment_url(&sb, id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["conditionMetType"], "all");
    assert!(body.get("priority").is_none());
}

#[tokio::test]
async fn admin_routes_drive_the_controls() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let c = client();
    let admin = |path: &str| format!("{}/__sandbox/{path}", sb.portal_url());
    let post = |path: &str, body: Value| c.post(admin(path)).json(&body).send();

    // agents
    assert_eq!(
        post(
            "agents",
            json!({"email": "a2@example.com", "password": "pw2", "site_id": 555})
        )
        .await
        .unwrap()
        .status(),
        204
    );
    let t2 = token_for(&sb, "a2@example.com", "pw2", 555).await;
    let token = token(&sb).await;

    // faults, with each fault shape in JSON
    let shapes = [
        (json!({"status": 503}), 503),
        (json!({"rate_limited": {"retry_after": "1"}}), 429),
        (json!({"odd_body": {"status": 400, "body": "relaxed"}}), 400),
        (json!({"odd_body": {"status": 500, "body": "html"}}), 500),
        (json!({"odd_body": {"status": 502, "body": "empty"}}), 502),
        (json!({"latency": 10}), 200),
    ];
    for (fault, status) in &shapes {
        let response = post("faults", json!({"n": 1, "fault": fault, "route": "list"}))
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{fault}");
        let response = c
            .get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), *status, "{fault}");
    }
    assert_eq!(
        post(
            "faults",
            json!({"fault": "drop_after_handling", "route": "create"})
        )
        .await
        .unwrap()
        .status(),
        204
    );
    assert!(
        c.post(segments_url(&sb))
            .bearer_auth(&token)
            .json(&segment("x"))
            .send()
            .await
            .is_err(),
        "dropped after handling"
    );
    assert_eq!(controls.segments(DEFAULT_SITE_ID).len(), 1);
    assert_eq!(
        post("faults", json!({"n": 1, "fault": "drop_before_handling"}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(
        c.get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .is_err()
    );
    // Admin routes are never faulted, and a bad admin body is a 400.
    assert_eq!(
        post("faults", json!({"n": 1, "fault": {"status": 500}}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(c.get(admin("stats")).send().await.unwrap().status(), 200);
    let response = c
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        post("faults", json!({"fault": {"nope": 1}}))
            .await
            .unwrap()
            .status(),
        400
    );

    // latency
    assert_eq!(
        post("latency", json!({"ms": 50})).await.unwrap().status(),
        204
    );
    let start = Instant::now();
    c.get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(
        post("latency", json!({"ms": null})).await.unwrap().status(),
        204
    );

    // forward-compat
    assert_eq!(
        post("forward-compat", json!({"on": true}))
            .await
            .unwrap()
            .status(),
        204
    );
    let list: Value = c
        .get(segments_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["priority"], 3);
    assert_eq!(
        post("forward-compat", json!({"on": false}))
            .await
            .unwrap()
            .status(),
        204
    );

    // daily-limit
    assert_eq!(
        post("daily-limit", json!({"limit": 0}))
            .await
            .unwrap()
            .status(),
        204
    );
    expect_error(
        c.get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(
        post("daily-limit", json!({"limit": null}))
            .await
            .unwrap()
            .status(),
        204
    );

    // revoke
    let revoke = c
        .post(admin("revoke"))
        .header("content-type", "application/json");
    assert_eq!(revoke.send().await.unwrap().status(), 204);
    expect_error(
        c.get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    expect_error(
        c.get(segments_url(&sb))
            .bearer_auth(&t2)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;

    // token-lifetime
    assert_eq!(
        post("token-lifetime", json!({"secs": 0}))
            .await
            .unwrap()
            .status(),
        204
    );
    let expired = common::token(&sb).await;
    expect_error(
        c.get(segments_url(&sb))
            .bearer_auth(&expired)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(
        post("token-lifetime", json!({"secs": 90}))
            .await
            .unwrap()
            .status(),
        204
    );
    let fresh = common::token(&sb).await;
    let claims = decode_part(&fresh, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
        90
    );

    // segments/{site}
    let segments: Value = c
        .get(admin("segments/10000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(segments.as_array().unwrap().len(), 1);
    let segments: Value = c
        .get(admin("segments/555"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(segments, json!([]));
    assert_eq!(
        c.get(admin("segments/abc")).send().await.unwrap().status(),
        400
    );

    // requests and stats
    let requests: Value = c
        .get(admin("requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let requests = requests.as_array().unwrap();
    assert_eq!(requests.len(), controls.requests().len());
    assert!(
        requests
            .iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("/__sandbox"))
    );
    assert!(
        requests
            .iter()
            .any(|r| r["fault"] == json!({"status": 503}))
    );
    assert!(
        requests
            .iter()
            .any(|r| r["fault"] == json!("drop_before_handling") && r["status"].is_null())
    );
    let stats: Value = c
        .get(admin("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["faults_injected"], json!(controls.faults_injected()));
    assert_eq!(stats["faults_injected"], 9);
    assert_eq!(stats["token_requests"], json!(controls.token_requests()));
    assert_eq!(
        c.delete(admin("requests")).send().await.unwrap().status(),
        204
    );
    assert!(controls.requests().is_empty());
}

#[test]
fn faults_and_routes_have_a_stable_json_form() {
    let cases = [
        (Fault::Status(503), json!({"status": 503})),
        (
            Fault::RateLimited {
                retry_after: "1".into(),
            },
            json!({"rate_limited": {"retry_after": "1"}}),
        ),
        (Fault::DropBeforeHandling, json!("drop_before_handling")),
        (Fault::DropAfterHandling, json!("drop_after_handling")),
        (
            Fault::OddBody {
                status: 400,
                body: OddBody::Relaxed,
            },
            json!({"odd_body": {"status": 400, "body": "relaxed"}}),
        ),
        (
            Fault::Latency(Duration::from_millis(250)),
            json!({"latency": 250}),
        ),
    ];
    assert_json_forms(cases);
    assert_eq!(
        serde_json::to_value(Route::Create).unwrap(),
        json!("create")
    );
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let sb = Sandbox::start().await.unwrap();
    let addr = sb.addr();
    assert_eq!(sb.portal_url(), format!("http://{addr}"));
    assert_eq!(sb.api_url(), format!("http://{addr}/api/v3"));
    assert!(addr.ip().is_loopback());
    let controls = sb.controls();
    sb.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    controls.wait_stopped().await; // already stopped: resolves at once
    // The controls outlive the handle.
    controls.set_latency(None);
    assert!(controls.requests().is_empty());

    let sb = Sandbox::start().await.unwrap();
    let addr = sb.addr();
    let controls = sb.controls();
    let token = token(&sb).await;
    let url = segments_url(&sb);
    drop(sb);
    controls.wait_stopped().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(client().get(&url).bearer_auth(&token).send().await.is_err());
    assert_eq!(controls.token_requests(), 1);
}

#[cfg(feature = "binary")]
#[test]
fn the_binary_prints_its_urls_and_credentials_and_serves_them() {
    let binary = Binary::spawn(&["--port", "0", "--token-lifetime-secs", "60"]);
    let text = binary.printed.join("\n");
    assert!(text.contains("comm100 sandbox listening"), "{text}");
    assert!(
        text.contains("agent@example.com / sandbox-password, site 10000"),
        "{text}"
    );
    let (portal, api) = (binary.portal.clone(), binary.api.clone());
    assert!(portal.starts_with("http://127.0.0.1:"), "{portal}");
    assert_eq!(api, format!("{portal}/api/v3"));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let c = client();
        let response = c
            .post(format!("{portal}/adminwebservice/api/jwttoken/generate"))
            .json(&credentials("agent@example.com", "sandbox-password", 10000))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let token = response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let claims = decode_part(&token, 1);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
            60
        );
        let response = c
            .post(format!("{portal}/__sandbox/faults"))
            .json(&json!({"n": 1, "fault": {"status": 502}, "route": "create"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let response = c
            .post(format!("{api}/livechat/customerSegments"))
            .bearer_auth(&token)
            .json(&segment("bin"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 502);
        let response = c
            .post(format!("{api}/livechat/customerSegments"))
            .bearer_auth(&token)
            .json(&segment("bin"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let segments: Value = c
            .get(format!("{portal}/__sandbox/segments/10000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(segments[0]["name"], "bin");
    });
}

#[test]
fn the_handle_and_the_controls_can_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Sandbox>();
    send_sync::<comm100_sandbox::Controls>();
    send_sync::<comm100_sandbox::RequestRecord>();
}
