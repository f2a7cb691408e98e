//! The sandbox as a safe neighbour on a shared machine: admin routes that only their owner
//! reaches (its own host, no web page, JSON only, an optional admin token), a bounded request
//! log, a connection limit and read timeouts, over real HTTP and raw TCP.

mod common;

use std::time::Duration;

use comm100_sandbox::{Limits, Route, Sandbox};
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fault to queue through the admin route, and the list it would fail.
fn fault_body() -> Value {
    json!({"n": 1, "fault": {"status": 503}, "route": "list"})
}

/// Expects that nothing was queued: the next list is answered normally and met no fault.
async fn expect_no_fault_queued(sb: &Sandbox) {
    let token = token(sb).await;
    assert_eq!(get(&segments_url(sb), Some(&token)).await.status(), 200);
    assert_eq!(sb.controls().faults_injected(), 0);
    assert!(sb.controls().requests().iter().all(|r| r.fault.is_none()));
}

fn faults_url(sb: &Sandbox) -> String {
    format!("{}/__sandbox/faults", sb.portal_url())
}

#[tokio::test]
async fn an_admin_request_from_a_web_page_is_refused_and_changes_nothing() {
    let sb = Sandbox::start().await.unwrap();
    let response = client()
        .post(faults_url(&sb))
        .header("origin", "https://example.org")
        .json(&fault_body())
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 403).await;
    assert!(message.contains("Origin"), "{message}");
    expect_no_fault_queued(&sb).await;
}

#[tokio::test]
async fn a_request_for_another_host_is_refused_and_changes_nothing() {
    let sb = Sandbox::start().await.unwrap();
    let response = client()
        .post(faults_url(&sb))
        .header("host", "evil.example")
        .json(&fault_body())
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 421).await;
    assert!(message.contains(&sb.addr().to_string()), "{message}");
    // A rebound name reads nothing either, admin or API.
    for url in [
        format!("{}/__sandbox/agents", sb.portal_url()),
        segments_url(&sb),
    ] {
        let response = client()
            .get(&url)
            .header("host", format!("evil.example:{}", sb.addr().port()))
            .send()
            .await
            .unwrap();
        expect_error(response, 421).await;
    }
    expect_no_fault_queued(&sb).await;
    // `localhost` with the sandbox's port is its own address.
    let response = client()
        .post(faults_url(&sb))
        .header("host", format!("LOCALHOST:{}", sb.addr().port()))
        .json(&fault_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn an_admin_post_that_is_not_json_is_refused_and_changes_nothing() {
    let sb = Sandbox::start().await.unwrap();
    let body = fault_body().to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let request = client().post(faults_url(&sb)).body(body.clone());
        let request = match content_type {
            Some(value) => request.header("content-type", value),
            None => request,
        };
        let message = expect_error(request.send().await.unwrap(), 415).await;
        assert!(message.contains("application/json"), "{message}");
    }
    // Bodiless ones too: a page could reset the sandbox with a plain POST.
    let reset = client().post(format!("{}/__sandbox/reset", sb.portal_url()));
    expect_error(reset.send().await.unwrap(), 415).await;
    expect_no_fault_queued(&sb).await;
    // The media type is matched without its parameters and its case.
    let response = client()
        .post(faults_url(&sb))
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn an_admin_token_is_required_when_set_and_the_api_is_unchanged() {
    let config = Sandbox::builder().admin_token("admin-s3cret").build();
    assert!(
        !format!("{config:?}").contains("admin-s3cret"),
        "{config:?}"
    );
    let sb = Sandbox::start_with(config).await.unwrap();
    for token in [None, Some("wrong"), Some("admin-s3cret-and-more")] {
        let request = client().post(faults_url(&sb)).json(&fault_body());
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        expect_error(response, 401).await;
    }
    let stats = client().get(format!("{}/__sandbox/stats", sb.portal_url()));
    expect_error(stats.send().await.unwrap(), 401).await;
    expect_no_fault_queued(&sb).await;

    let response = client()
        .post(faults_url(&sb))
        .bearer_auth("admin-s3cret")
        .json(&fault_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let token = token(&sb).await;
    expect_error(get(&segments_url(&sb), Some(&token)).await, 503).await;
}

#[tokio::test]
async fn the_log_keeps_within_its_caps_and_counts_what_it_dropped() {
    let limits = Limits::default().log_records(3);
    let sb = Sandbox::builder().limits(limits).start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    for _ in 0..4 {
        assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);
    }
    let log = controls.requests();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter().all(|r| r.route == Some(Route::List)),
        "the oldest went first"
    );
    let stats = controls.stats();
    assert_eq!((stats.requests, stats.dropped_requests), (3, 2));
    assert_eq!(stats.token_requests, 0, "the login was dropped");
    let shown: Value = get_ok(&format!("{}/__sandbox/stats", sb.portal_url()), None).await;
    assert_eq!(shown["dropped_requests"], 2);
    // The waiters count every record written, dropped ones included.
    controls.wait_for_requests(5).await;
    controls.clear_requests();
    assert_eq!(controls.stats().dropped_requests, 0);

    // A cap in bytes: each record is larger than one byte, so only the last stays.
    let limits = Limits::default().log_bytes(1);
    let sb = Sandbox::builder().limits(limits).start().await.unwrap();
    let token = common::token(&sb).await;
    get(&segments_url(&sb), Some(&token)).await;
    let log = sb.controls().requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].route, Some(Route::List));
    assert_eq!(sb.controls().stats().dropped_requests, 1);
}

#[tokio::test]
async fn a_record_keeps_the_first_bytes_of_a_body_and_parses_it_when_asked() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let long = "x".repeat(2 * comm100_sandbox::BODY_KEPT);
    for name in ["short", long.as_str()] {
        create(&sb, &token, &segment(name)).await;
    }
    let log = controls.requests();
    let (short, long) = (&log[1], &log[2]);
    assert_eq!(short.json().unwrap()["name"], "short");
    assert_eq!(short.body.len() as u64, short.body_len);
    assert_eq!(long.body.len(), comm100_sandbox::BODY_KEPT);
    assert!(long.body_len > long.body.len() as u64);
    assert_eq!(long.json(), None);
    assert!(long.body.starts_with(b"{\""));
}

/// Opens a raw connection to the sandbox and sends `head`.
async fn raw(sb: &Sandbox, head: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(sb.addr()).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_slow_to_send_its_head_or_its_body_is_cut_off() {
    let limits = Limits::default()
        .header_timeout(Duration::from_millis(200))
        .body_timeout(Duration::from_millis(200));
    let sb = Sandbox::builder().limits(limits).start().await.unwrap();
    let host = sb.addr();

    // Half a head, then nothing: the connection is closed.
    let mut stream = raw(&sb, "GET /api/v3/livechat/customerSegments HTTP/1.1\r\n").await;
    let closed = tokio::time::timeout(Duration::from_secs(10), read_to_close(&mut stream));
    closed.await.expect("the sandbox closes the connection");

    // A head that announces a body, then nothing: 408, and the connection closed.
    let head = format!(
        "POST /api/v3/livechat/customerSegments HTTP/1.1\r\nhost: {host}\r\ncontent-length: 10\r\n\r\n"
    );
    let mut stream = raw(&sb, &head).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), read_to_close(&mut stream))
        .await
        .expect("the sandbox answers and closes");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":408000"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_limit_wait_until_one_closes() {
    let limits = Limits::default().connections(1);
    let sb = Sandbox::builder().limits(limits).start().await.unwrap();
    let token = token(&sb).await;
    // The login's connection has closed (the client keeps none); this one holds the only
    // place, sending nothing.
    let idle = raw(&sb, "").await;
    let url = segments_url(&sb);
    let mut waiting = tokio::spawn(async move { get(&url, Some(&token)).await.status() });
    // A window to see that the request is not served; nothing else can show a wait.
    let served = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
    assert!(served.is_err(), "served over the limit");
    drop(idle);
    assert_eq!(waiting.await.unwrap(), 200);
}

#[test]
fn limits_have_sane_defaults() {
    let limits = Limits::default();
    assert_eq!(limits.log_records, 10_000);
    assert_eq!(limits.log_bytes, 32 << 20);
    assert_eq!(limits.connections, 256);
    assert_eq!(limits.header_timeout, Duration::from_secs(30));
    assert_eq!(limits.body_timeout, Duration::from_secs(30));
    // Zero would serve nothing and log nothing; a timeout of `Duration::MAX` is taken.
    let limits = limits.connections(0).log_records(0);
    assert_eq!((limits.connections, limits.log_records), (1, 1));
}

#[tokio::test]
async fn timeouts_of_duration_max_serve_normally() {
    let limits = Limits::default()
        .header_timeout(Duration::MAX)
        .body_timeout(Duration::MAX);
    let sb = Sandbox::builder().limits(limits).start().await.unwrap();
    let token = token(&sb).await;
    assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);
}
