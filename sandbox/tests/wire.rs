//! What the sandbox records of the wire, and its gzip mode: the connection each request came
//! on and its HTTP version, and responses gzip-encoded for the requests that accept it. Over
//! real HTTP, with counts from the request log.

mod common;

use std::io::Read;

use comm100_sandbox::{DEFAULT_SITE_ID, Route, Sandbox};
use common::*;
use serde_json::{Value, json};

/// A client that keeps its connection, so that its requests share one.
fn keep_alive() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .expect("a gzip stream");
    plain
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A list request with this `Accept-Encoding` (none with `None`): the response's
/// `Content-Encoding` and its body as sent.
async fn list_with(
    sb: &Sandbox,
    token: &str,
    accept: Option<&str>,
) -> (u16, Option<String>, Vec<u8>) {
    let mut request = client().get(segments_url(sb)).bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    let response = request.send().await.expect("a list response");
    let status = response.status().as_u16();
    let encoding = header(&response, "content-encoding").map(str::to_owned);
    let body = response.bytes().await.expect("a body").to_vec();
    (status, encoding, body)
}

#[tokio::test]
async fn gzip_mode_encodes_what_the_request_accepts_and_the_log_says_so() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    for i in 0..20 {
        assert_eq!(
            create(&sb, &token, &segment(&format!("s{i}")))
                .await
                .status(),
            201
        );
    }
    let (_, encoding, identity) = list_with(&sb, &token, Some("gzip")).await;
    assert_eq!(encoding, None, "the mode is off by default");
    let expected: Value = serde_json::from_slice(&identity).unwrap();
    assert_eq!(expected.as_array().unwrap().len(), 20);

    controls.set_gzip(true);
    controls.clear_requests();
    let cases: [(Option<&str>, bool); 9] = [
        (Some("gzip"), true),
        (Some("gzip, deflate, br, zstd"), true),
        (Some("x-gzip"), true),
        (Some("br;q=1.0, GZIP;q=0.5"), true),
        (Some("*"), true),
        (None, false),
        (Some("br, deflate"), false),
        (Some("gzip;q=0, *"), false),
        (Some("identity"), false),
    ];
    for (accept, encoded) in cases {
        let (status, encoding, body) = list_with(&sb, &token, accept).await;
        assert_eq!(status, 200);
        let plain = if encoded {
            assert_eq!(encoding.as_deref(), Some("gzip"), "{accept:?}");
            assert!(body.len() < identity.len() / 2, "{accept:?}: compressed");
            gunzip(&body)
        } else {
            assert_eq!(encoding, None, "{accept:?}");
            body
        };
        let got: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(got, expected, "{accept:?}: the same list");
    }
    let log = controls.requests();
    assert_eq!(log.len(), cases.len());
    for (record, (accept, encoded)) in log.iter().zip(cases) {
        assert_eq!(record.route, Some(Route::List));
        assert_eq!(record.gzip, encoded, "{accept:?}");
    }
}

#[tokio::test]
async fn gzip_mode_encodes_errors_and_creates_but_not_empty_bodies() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.set_gzip(true);
    controls.clear_requests();
    let c = client();

    let response = c
        .post(segments_url(&sb))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .json(&segment("created"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "content-encoding"), Some("gzip"));
    assert_eq!(header(&response, "vary"), Some("accept-encoding"));
    assert!(header(&response, "location").is_some());
    let created: Value = serde_json::from_slice(&gunzip(&response.bytes().await.unwrap())).unwrap();
    assert_eq!(created["name"], "created");
    let url = segment_url(&sb, created["id"].as_str().unwrap());

    let response = c
        .get(segments_url(&sb))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "content-encoding"), Some("gzip"));
    let error: Value = serde_json::from_slice(&gunzip(&response.bytes().await.unwrap())).unwrap();
    assert_eq!(error["code"], 401000);

    let response = c
        .delete(&url)
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "content-encoding"), None);

    let gzipped: Vec<bool> = controls.requests().iter().map(|r| r.gzip).collect();
    assert_eq!(gzipped, [true, true, false]);
    assert!(controls.segments(DEFAULT_SITE_ID).is_empty());
}

#[tokio::test]
async fn the_admin_route_turns_the_gzip_mode_on_and_off() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    for (on, encoded) in [(true, true), (false, false)] {
        let response = admin_post(&sb, "gzip", json!({ "on": on })).await;
        assert_eq!(response.status(), 204);
        let (_, encoding, _) = list_with(&sb, &token, Some("gzip")).await;
        assert_eq!(encoding.is_some(), encoded);
        assert_eq!(controls.requests().last().unwrap().gzip, encoded);
    }
    let response = admin_post(&sb, "gzip", json!({ "on": "yes" })).await;
    assert_eq!(response.status(), 400);
    // Admin responses are never encoded.
    controls.set_gzip(true);
    let response = client()
        .get(format!("{}/__sandbox/stats", sb.portal_url()))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "content-encoding"), None);
}

#[tokio::test]
async fn the_log_numbers_connections_and_names_the_http_version() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.clear_requests();

    // Three requests on one kept-alive HTTP/1.1 connection, then two on connections of their own.
    let kept = keep_alive();
    for _ in 0..3 {
        let response = kept
            .get(segments_url(&sb))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    for _ in 0..2 {
        let (status, _, _) = list_with(&sb, &token, None).await;
        assert_eq!(status, 200);
    }

    // Three HTTP/2 streams on one connection, by prior knowledge.
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let stream = tokio::net::TcpStream::connect(sb.addr()).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let streams: Vec<_> = (0..3)
        .map(|_| {
            let mut sender = sender.clone();
            let request = hyper::Request::get(segments_url(&sb))
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            tokio::spawn(async move {
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.unwrap();
            })
        })
        .collect();
    for stream in streams {
        stream.await.unwrap();
    }

    let log = controls.requests();
    assert_eq!(log.len(), 8);
    let versions: Vec<&str> = log.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(versions[..5], ["HTTP/1.1"; 5]);
    assert_eq!(versions[5..], ["HTTP/2.0"; 3]);
    let connections: Vec<u64> = log.iter().map(|r| r.connection).collect();
    // The token request came first, on connection 1, so these are 2, 3 and 4; the HTTP/2
    // streams share the fifth.
    assert_eq!(connections, [2, 2, 2, 3, 4, 5, 5, 5]);
}
