//! The faults that leave a client unsure of a request's outcome, or that point it elsewhere: a
//! body cut short after the request was performed, a redirect instead of an answer (to another
//! origin, with a page that may never end), a token host that redirects; and the examples of
//! every fault and token-host mode, through `Controls` and the admin routes, over real HTTP.
//!
//! No test sleeps: they wait on the responses, the request log, or the sandbox stopping.

mod common;

use comm100_sandbox::{DEFAULT_SITE_ID, Fault, Route, Sandbox, TokenHost};
use common::*;
use serde_json::json;

const ELSEWHERE: &str = "https://elsewhere.example/x";

/// A client that neither follows redirects nor reuses connections.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Reads a body chunk by chunk until it ends, fails, or `limit` bytes have come: the bytes,
/// and `Ok(true)` at its end, `Ok(false)` at the limit, or the error.
async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
) -> (Vec<u8>, reqwest::Result<bool>) {
    let mut read = Vec::new();
    while read.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => read.extend_from_slice(&chunk),
            Ok(None) => return (read, Ok(true)),
            Err(error) => return (read, Err(error)),
        }
    }
    (read, Ok(false))
}

/// A redirect fault.
fn redirect(status: u16, location: Option<&str>, endless: bool) -> Fault {
    Fault::Redirect {
        status,
        location: location.map(str::to_owned),
        endless,
    }
}

/// `GET url` with the bearer token, not following a redirect.
async fn get_unfollowed(url: &str, token: &str) -> reqwest::Response {
    no_redirects()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn content_length(response: &reqwest::Response) -> usize {
    response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// A body cut short
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_truncated_create_creates_then_sends_part_of_the_announced_body() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.fail_next(1, Fault::TruncatedBody { after: 10 }, Some(Route::Create));

    let mut response = create(&sb, &token, &segment("cut")).await;
    assert_eq!(response.status(), 201, "the real status");
    assert!(
        response.headers().contains_key("location"),
        "the real headers"
    );
    let announced = content_length(&response);
    let (read, ended) = read_body(&mut response, usize::MAX).await;
    assert!(
        ended.is_err(),
        "the client sees the body cut short: {ended:?}"
    );

    // The create happened; the whole body is the segment as the API serves it.
    let stored = controls.segments(DEFAULT_SITE_ID);
    assert_eq!(stored.len(), 1);
    let url = segment_url(&sb, &stored[0].id.to_string());
    let whole = get(&url, Some(&token)).await.bytes().await.unwrap();
    assert_eq!(announced, whole.len());
    assert_eq!(read, whole[..10]);

    let log = controls.requests();
    let created = log.iter().find(|r| r.route == Some(Route::Create)).unwrap();
    assert_eq!(created.status, Some(201));
    assert_eq!(created.fault, Some(Fault::TruncatedBody { after: 10 }));
}

#[tokio::test]
async fn a_truncated_body_is_always_cut_even_when_after_is_past_its_end() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    // An empty list is `[]`: cut after its first byte, whatever `after` says.
    controls.fail_next(1, Fault::TruncatedBody { after: 1000 }, Some(Route::List));
    let mut response = get(&segments_url(&sb), Some(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_length(&response), 2);
    let (read, ended) = read_body(&mut response, usize::MAX).await;
    assert_eq!(read, b"[");
    assert!(ended.is_err(), "{ended:?}");

    // A delete's `204` has no body: it goes out as `200` announcing one byte, and sends none.
    let url = created_url(&sb, &token, "deleted").await;
    controls.fail_next(1, Fault::TruncatedBody { after: 10 }, Some(Route::Delete));
    let mut response = delete(&url, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_length(&response), 1);
    let (read, ended) = read_body(&mut response, usize::MAX).await;
    assert!(read.is_empty());
    assert!(ended.is_err(), "{ended:?}");
    assert!(controls.segments(DEFAULT_SITE_ID).is_empty(), "deleted");
    assert_eq!(controls.requests().pop().unwrap().status, Some(200));
}

#[tokio::test]
async fn a_truncated_login_issues_a_token_the_client_never_reads() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    controls.fail_next(1, Fault::TruncatedBody { after: 12 }, Some(Route::Token));
    let mut response = client()
        .post(token_url(&sb))
        .json(&default_credentials())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (read, ended) = read_body(&mut response, usize::MAX).await;
    assert_eq!(read, br#"{"token":"ey"#);
    assert!(ended.is_err(), "{ended:?}");
    assert_eq!(controls.requests()[0].status, Some(200));
}

#[tokio::test]
async fn a_truncated_body_is_cut_over_http2_too() {
    use http_body_util::BodyExt;

    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.fail_next(1, Fault::TruncatedBody { after: 1 }, Some(Route::List));
    let response = http2_list(&sb, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "2");
    assert!(
        response.into_body().collect().await.is_err(),
        "a reset stream"
    );
    assert_eq!(controls.requests().pop().unwrap().version, "HTTP/2.0");
}

// ---------------------------------------------------------------------------------------------
// A redirect instead of an answer
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_redirect_answers_with_its_location_and_processes_nothing() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let fault = redirect(307, Some(ELSEWHERE), false);
    controls.fail_next(1, fault.clone(), Some(Route::Create));
    let response = no_redirects()
        .post(segments_url(&sb))
        .bearer_auth(&token)
        .json(&segment("redirected"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(response.headers()["location"], ELSEWHERE);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("<h1>307 Temporary Redirect</h1>"), "{page}");
    assert!(page.ends_with("</html>\n"), "{page}");
    assert!(
        controls.segments(DEFAULT_SITE_ID).is_empty(),
        "not processed"
    );
    let last = controls.requests().pop().unwrap();
    assert_eq!((last.status, last.fault), (Some(307), Some(fault)));

    // Without a location, and with a status that is not a redirect, sent as `302`.
    controls.fail_next(1, redirect(200, None, false), Some(Route::List));
    let response = get_unfollowed(&segments_url(&sb), &token).await;
    assert_eq!(response.status(), 302);
    assert!(!response.headers().contains_key("location"));
}

#[tokio::test]
async fn an_endless_redirect_streams_a_page_that_never_ends_until_the_stop() {
    for by_drop in [false, true] {
        let sb = Sandbox::start().await.unwrap();
        let controls = sb.controls();
        let token = token(&sb).await;
        let fault = redirect(301, Some(ELSEWHERE), true);
        controls.fail_next(1, fault.clone(), Some(Route::Get));
        let url = segment_url(&sb, &uuid::Uuid::new_v4().to_string());
        let mut response = get_unfollowed(&url, &token).await;
        assert_eq!(response.status(), 301);
        assert_eq!(response.headers()["location"], ELSEWHERE);
        assert!(!response.headers().contains_key("content-length"));
        let (read, ended) = read_body(&mut response, 1 << 20).await;
        assert!(matches!(ended, Ok(false)), "it goes on: {ended:?}");
        assert!(read.starts_with(b"<!DOCTYPE html>"));

        // A client that holds the page and reads no more does not hold up the stop.
        stop_promptly(sb, by_drop, "an endless redirect").await;
        let (_, ended) = read_body(&mut response, usize::MAX).await;
        assert!(ended.is_err(), "cut short at the stop: {ended:?}");
        assert_eq!(controls.requests().pop().unwrap().fault, Some(fault));
    }
}

// ---------------------------------------------------------------------------------------------
// A token host that redirects
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_redirecting_token_host_redirects_every_login_and_issues_nothing() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    controls.set_token_host(TokenHost::Redirect {
        status: 308,
        location: Some(ELSEWHERE.into()),
    });
    let api_token_url = format!("{}/adminwebservice/api/jwttoken/generate", sb.api_url());
    for url in [token_url(&sb), api_token_url] {
        let response = no_redirects()
            .post(&url)
            .json(&default_credentials())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 308, "{url}");
        assert_eq!(response.headers()["location"], ELSEWHERE);
        let page = response.text().await.unwrap();
        assert!(!page.contains("token"), "no token: {page}");
    }
    let statuses: Vec<_> = controls.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(308), Some(308)]);

    controls.set_token_host(TokenHost::Normal);
    let token = token(&sb).await;
    assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// The JSON forms, the admin routes and the examples
// ---------------------------------------------------------------------------------------------

#[test]
fn the_new_faults_and_token_host_have_a_stable_json_form() {
    let faults = [
        (
            Fault::TruncatedBody { after: 10 },
            json!({"truncated_body": {"after": 10}}),
        ),
        (
            redirect(302, Some(ELSEWHERE), true),
            json!({"redirect": {"status": 302, "location": ELSEWHERE, "endless": true}}),
        ),
        (
            redirect(303, None, false),
            json!({"redirect": {"status": 303, "endless": false}}),
        ),
    ];
    assert_json_forms(faults);
    assert_eq!(
        serde_json::from_value::<Fault>(json!({"redirect": {"status": 302}})).unwrap(),
        redirect(302, None, false)
    );
    let host = TokenHost::Redirect {
        status: 307,
        location: Some(ELSEWHERE.into()),
    };
    let value = json!({"redirect": {"status": 307, "location": ELSEWHERE}});
    assert_eq!(serde_json::to_value(&host).unwrap(), value);
    assert_eq!(serde_json::from_value::<TokenHost>(value).unwrap(), host);
}

#[tokio::test]
async fn the_admin_routes_take_the_new_faults_and_refuse_bad_redirects() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;

    let truncated = json!({"truncated_body": {"after": 1}});
    admin_set(&sb, "faults", json!({"fault": truncated, "route": "list"})).await;
    let mut response = get(&segments_url(&sb), Some(&token)).await;
    assert!(read_body(&mut response, usize::MAX).await.1.is_err());

    let redirect = json!({"redirect": {"status": 303, "location": "/elsewhere"}});
    admin_set(&sb, "faults", json!({"fault": redirect, "route": "list"})).await;
    let response = get_unfollowed(&segments_url(&sb), &token).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/elsewhere");

    let host = json!({"redirect": {"status": 307, "location": ELSEWHERE}});
    admin_set(&sb, "token-host", host).await;
    let login = no_redirects()
        .post(token_url(&sb))
        .json(&default_credentials())
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 307);

    let logged = controls.requests().len();
    for (path, body, field) in [
        (
            "faults",
            json!({"fault": {"redirect": {"status": 200}}}),
            "'status'",
        ),
        (
            "faults",
            json!({"fault": {"redirect": {"status": 302, "location": "a\nb"}}}),
            "'location'",
        ),
        (
            "token-host",
            json!({"redirect": {"status": 404}}),
            "'status'",
        ),
        (
            "token-host",
            json!({"redirect": {"status": 302, "location": "a\u{7f}"}}),
            "'location'",
        ),
    ] {
        let message = expect_error(admin_post(&sb, path, body.clone()).await, 400).await;
        assert!(message.contains(field), "{body}: {message}");
    }
    // Refused, so nothing queued: the next list is answered normally.
    assert_eq!(get(&segments_url(&sb), Some(&token)).await.status(), 200);
    assert_eq!(controls.requests()[logged].fault, None);
}

#[tokio::test]
async fn the_admin_routes_take_every_example() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let faults = Fault::examples();
    for fault in &faults {
        admin_set(&sb, "faults", json!({"fault": fault, "route": "delete"})).await;
    }
    // Queued in the order given: the first delete meets the first example.
    let url = segment_url(&sb, &uuid::Uuid::new_v4().to_string());
    let first = delete(&url, &token).await;
    assert_eq!(
        controls.requests().pop().unwrap().fault.as_ref(),
        faults.first()
    );
    assert_eq!(first.status(), 503);

    let hosts = TokenHost::examples();
    for host in &hosts {
        admin_set(&sb, "token-host", serde_json::to_value(host).unwrap()).await;
    }
    // The last one set is the one in force.
    let login = no_redirects()
        .post(token_url(&sb))
        .json(&default_credentials())
        .send()
        .await
        .unwrap();
    assert!(matches!(hosts.last(), Some(TokenHost::Redirect { .. })));
    assert_eq!(login.status(), 302);
}
