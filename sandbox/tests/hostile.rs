//! The hostile modes: a skewed clock, a slow, refusing or silent token host, and fresh tokens
//! refused, through `Controls`, the admin routes and the binary, all over real HTTP.
//!
//! No test sleeps: they wait on the request log ([`Controls::wait_for_requests`]) or on the
//! responses.

mod common;

use std::ops::RangeInclusive;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use comm100_sandbox::{
    Controls, DEFAULT_SITE_ID, Fault, REFUSED_TOKEN_MESSAGE, Route, Sandbox, TokenHost,
};
use common::*;
use serde_json::{Value, json};

const THREE_HOURS_BEHIND: i64 = -3 * 60 * 60;

/// The real clock, in Unix seconds.
fn real_secs() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// The `Date` header of a response, in Unix seconds.
fn date_secs(response: &reqwest::Response) -> i64 {
    let value = response
        .headers()
        .get("date")
        .expect("every response carries a Date header")
        .to_str()
        .unwrap();
    // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
    assert!(value.len() == 29 && value.ends_with(" GMT"), "{value}");
    let date = httpdate::parse_http_date(value).expect("an IMF-fixdate");
    i64::try_from(date.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// Runs `send`, and returns its response with the range of the sandbox's "now" (the real
/// clock, before and after, plus `offset`) while it ran.
async fn timed<F: Future<Output = reqwest::Response>>(
    offset: i64,
    send: F,
) -> (reqwest::Response, RangeInclusive<i64>) {
    let before = real_secs();
    let response = send.await;
    let after = real_secs();
    (response, before + offset..=after + offset)
}

/// Logs in at `url`, checks that the `Date` of the answer and the `nbf` of the token are on the
/// sandbox's clock, `offset` seconds off the real one, and returns the token.
async fn login_at_offset(url: &str, offset: i64) -> String {
    let (response, now) = timed(offset, login(url)).await;
    assert_eq!(response.status(), 200);
    let date = date_secs(&response);
    assert!(
        now.contains(&date),
        "Date {date} on the shifted clock {now:?}"
    );
    let token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let nbf = decode_part(&token, 1)["nbf"].as_i64().unwrap();
    assert!(now.contains(&nbf), "nbf {nbf} on the shifted clock {now:?}");
    token
}

async fn login(url: &str) -> reqwest::Response {
    client()
        .post(url)
        .json(&default_credentials())
        .send()
        .await
        .expect("a login response")
}

async fn wrong_password_login(sb: &Sandbox) -> reqwest::Response {
    client()
        .post(token_url(sb))
        .json(&credentials("agent@example.com", "nope", DEFAULT_SITE_ID))
        .send()
        .await
        .expect("a login response")
}

async fn list(sb: &Sandbox, token: Option<&str>) -> reqwest::Response {
    let request = client().get(segments_url(sb));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.expect("a list response")
}

fn api_token_url(sb: &Sandbox) -> String {
    format!("{}/adminwebservice/api/jwttoken/generate", sb.api_url())
}

/// Starts a login that the test does not wait for, and waits until the request is in the log.
async fn login_in_flight(
    url: String,
    controls: &Controls,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    in_flight(client().post(url).json(&default_credentials()), controls).await
}

// ---------------------------------------------------------------------------------------------
// The clock offset
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn clock_offset_shifts_the_tokens_and_the_date_header_which_hyper_leaves_alone() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    assert_eq!(controls.clock_offset(), 0);
    let (response, now) = timed(0, login(&token_url(&sb))).await;
    assert!(now.contains(&date_secs(&response)), "unshifted by default");

    controls.set_clock_offset(THREE_HOURS_BEHIND);
    assert_eq!(controls.clock_offset(), THREE_HOURS_BEHIND);
    // Three hours off the real clock: hyper did not put its own Date in place of the sandbox's.
    let token = login_at_offset(&token_url(&sb), THREE_HOURS_BEHIND).await;
    let claims = decode_part(&token, 1);
    let (nbf, exp) = (
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(claims["iat"], claims["nbf"], "iat is nbf");
    assert_eq!(exp - nbf, 2 * 60 * 60, "the full lifetime");
    for key in ["jti", "agentId", "siteId", "success", "iss"] {
        assert!(claims[key].is_string(), "{key} in {claims}");
    }

    // Its own token is valid on its clock, and API answers, errors included, carry its Date.
    let (response, now) = timed(THREE_HOURS_BEHIND, list(&sb, Some(&token))).await;
    assert_eq!(response.status(), 200);
    assert!(now.contains(&date_secs(&response)));
    let (response, now) = timed(THREE_HOURS_BEHIND, list(&sb, None)).await;
    assert!(now.contains(&date_secs(&response)));
    expect_error(response, 401).await;
    let unknown = client().get(format!("{}/nowhere", sb.api_url())).send();
    let (response, now) = timed(THREE_HOURS_BEHIND, async { unknown.await.unwrap() }).await;
    assert!(now.contains(&date_secs(&response)));
    expect_error(response, 404).await;

    // Ahead works the same way.
    controls.set_clock_offset(86_400);
    let token = login_at_offset(&api_token_url(&sb), 86_400).await;
    assert_eq!(list(&sb, Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn tokens_are_checked_on_the_shifted_clock() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await; // on the real clock, for 2 hours

    controls.set_clock_offset(-60);
    let message = expect_error(list(&sb, Some(&token)).await, 401).await;
    assert!(message.contains("not valid yet"), "{message}");
    controls.set_clock_offset(2 * 60 * 60);
    let message = expect_error(list(&sb, Some(&token)).await, 401).await;
    assert!(message.contains("expired"), "{message}");
    controls.set_clock_offset(2 * 60 * 60 - 120);
    assert_eq!(list(&sb, Some(&token)).await.status(), 200);
    controls.set_clock_offset(0);
    assert_eq!(list(&sb, Some(&token)).await.status(), 200);

    // A token issued 3 hours behind lives 2 hours on that clock, and has expired on the real
    // one.
    controls.set_clock_offset(THREE_HOURS_BEHIND);
    let behind = common::token(&sb).await;
    assert_eq!(list(&sb, Some(&behind)).await.status(), 200);
    controls.set_clock_offset(0);
    let message = expect_error(list(&sb, Some(&behind)).await, 401).await;
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn a_configured_clock_offset_applies_from_the_start() {
    let sb = Sandbox::builder()
        .clock_offset_secs(THREE_HOURS_BEHIND)
        .start()
        .await
        .unwrap();
    assert_eq!(sb.controls().clock_offset(), THREE_HOURS_BEHIND);
    let token = login_at_offset(&token_url(&sb), THREE_HOURS_BEHIND).await;
    assert_eq!(list(&sb, Some(&token)).await.status(), 200);
}

#[cfg(feature = "binary")]
#[test]
fn the_binary_takes_a_negative_clock_offset() {
    let binary = Binary::spawn(&["--port", "0", "--clock-offset-secs", "-10800"]);
    let url = format!("{}/adminwebservice/api/jwttoken/generate", binary.portal);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(login_at_offset(&url, THREE_HOURS_BEHIND));
}

// ---------------------------------------------------------------------------------------------
// The token host
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_token_host_logs_on_arrival_then_answers_normally() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let delay = Duration::from_millis(500);
    controls.set_token_host(TokenHost::Slow(delay));
    for url in [token_url(&sb), api_token_url(&sb)] {
        controls.clear_requests();
        let start = Instant::now();
        let pending = login_in_flight(url, &controls).await;
        let arrived = controls.requests();
        assert_eq!(arrived.len(), 1);
        assert_eq!(
            (arrived[0].route, arrived[0].status),
            (Some(Route::Token), None),
            "logged on arrival, before the answer"
        );
        assert_eq!(arrived[0].json().unwrap()["Password"], "<redacted>");
        let response = pending.await.unwrap().unwrap();
        assert!(start.elapsed() >= delay);
        assert_eq!(response.status(), 200);
        let token = response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let log = controls.requests();
        assert_eq!(log.len(), 1, "one record, updated in place");
        assert_eq!(log[0].status, Some(200));
        assert_eq!(list(&sb, Some(&token)).await.status(), 200);
    }
    assert_eq!(controls.token_requests(), 1);
}

#[tokio::test]
async fn a_log_cleared_while_a_slow_login_waits_is_left_alone() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    controls.set_token_host(TokenHost::Slow(Duration::from_millis(500)));
    let pending = login_in_flight(token_url(&sb), &controls).await;
    controls.clear_requests();
    expect_error(list(&sb, None).await, 401).await;
    assert_eq!(pending.await.unwrap().unwrap().status(), 200);
    let log = controls.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].route, log[0].status),
        (Some(Route::List), Some(401)),
        "the slow login's status did not land on the record now in its place"
    );
}

#[tokio::test]
async fn a_refusing_token_host_refuses_every_login_on_both_paths() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.set_token_host(TokenHost::Refusing {
        status: 503,
        message: "The service is unavailable.".into(),
        retry_after: Some("7".into()),
    });
    for url in [token_url(&sb), api_token_url(&sb)] {
        let response = login(&url).await;
        assert_eq!(response.headers()["retry-after"], "7");
        let message = expect_error(response, 503).await;
        assert_eq!(message, "The service is unavailable.");
    }
    // Even a wrong password gets the host's refusal.
    let wrong = wrong_password_login(&sb).await;
    expect_error(wrong, 503).await;
    // The API is not the token host.
    assert_eq!(list(&sb, Some(&token)).await.status(), 200);
    // A queued fault still comes first.
    controls.fail_next(1, Fault::Status(500), Some(Route::Token));
    expect_error(login(&token_url(&sb)).await, 500).await;
    expect_error(login(&token_url(&sb)).await, 503).await;

    controls.set_token_host(TokenHost::Refusing {
        status: 403,
        message: "The site is disabled.".into(),
        retry_after: None,
    });
    let response = login(&token_url(&sb)).await;
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(expect_error(response, 403).await, "The site is disabled.");

    controls.set_token_host(TokenHost::Normal);
    assert_eq!(login(&token_url(&sb)).await.status(), 200);
    let wrong = wrong_password_login(&sb).await;
    assert_eq!(
        expect_error(wrong, 401).await,
        "Invalid username, password or site id."
    );

    let statuses: Vec<Option<u16>> = controls
        .requests()
        .iter()
        .filter(|r| r.route == Some(Route::Token))
        .map(|r| r.status)
        .collect();
    let expected = [200, 503, 503, 503, 500, 503, 403, 200, 401];
    assert_eq!(statuses, expected.map(Some));
    assert_eq!(controls.token_requests(), expected.len());
}

#[tokio::test]
async fn a_silent_token_host_holds_logins_and_logs_them_on_arrival() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.set_token_host(TokenHost::Silent);

    let pending = login_in_flight(api_token_url(&sb), &controls).await;
    let held = controls.requests().pop().unwrap();
    assert_eq!(
        (held.route, held.status, held.fault.clone()),
        (Some(Route::Token), None, None)
    );
    assert_eq!(held.path, "/api/v3/adminwebservice/api/jwttoken/generate");
    assert_eq!(held.json().unwrap()["Password"], "<redacted>");
    // The API is served while the login hangs, and the login still hangs after.
    assert_eq!(list(&sb, Some(&token)).await.status(), 200);
    assert!(!pending.is_finished());
    pending.abort();

    // A client with a timeout gives up.
    let error = client()
        .post(token_url(&sb))
        .timeout(Duration::from_millis(200))
        .json(&default_credentials())
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
    let held = controls.requests().pop().unwrap();
    assert_eq!((held.route, held.status), (Some(Route::Token), None));

    controls.set_token_host(TokenHost::Normal);
    assert_eq!(login(&token_url(&sb)).await.status(), 200);
    assert_eq!(controls.token_requests(), 4);
}

#[tokio::test]
async fn a_held_login_does_not_hold_up_shutdown_or_drop() {
    let hosts = [
        TokenHost::Silent,
        TokenHost::Slow(Duration::from_secs(3600)),
    ];
    for host in hosts {
        for by_drop in [false, true] {
            let sb = Sandbox::start().await.unwrap();
            let controls = sb.controls();
            controls.set_token_host(host.clone());
            let pending = login_in_flight(token_url(&sb), &controls).await;
            stop_promptly(sb, by_drop, &format!("{host:?}")).await;
            let result = pending.await.unwrap();
            assert!(result.is_err(), "the held login ends without a response");
            let log = controls.requests();
            assert_eq!((log.len(), log[0].status), (1, None));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fresh tokens refused
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refusing_valid_tokens_gives_401_to_every_api_request_but_logins_succeed() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let before = token(&sb).await;
    let created: Value = create(&sb, &before, &segment("kept"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    controls.set_refuse_valid_tokens(true);
    controls.clear_requests();
    let fresh = token(&sb).await;
    assert_eq!(decode_part(&fresh, 1)["siteId"], "10000");
    let c = client();
    for token in [&before, &fresh] {
        let refused = [
            c.get(segments_url(&sb)).bearer_auth(token),
            c.get(segment_url(&sb, &id)).bearer_auth(token),
            c.post(segments_url(&sb))
                .bearer_auth(token)
                .json(&segment("x")),
            c.put(segment_url(&sb, &id))
                .bearer_auth(token)
                .json(&segment("changed")),
            c.delete(segment_url(&sb, &id)).bearer_auth(token),
        ];
        for request in refused {
            let message = expect_error(request.send().await.unwrap(), 401).await;
            assert_eq!(message, REFUSED_TOKEN_MESSAGE);
        }
    }
    let stored = controls.segments(DEFAULT_SITE_ID);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["name"], "kept");
    // Other 401s keep their own messages.
    let message = expect_error(list(&sb, None).await, 401).await;
    assert!(message.contains("missing"), "{message}");
    let message = expect_error(list(&sb, Some("a.b.c")).await, 401).await;
    assert_ne!(message, REFUSED_TOKEN_MESSAGE);

    let log = controls.requests();
    assert_eq!(log[0].status, Some(200), "the login succeeded");
    assert!(
        log[1..11]
            .iter()
            .all(|r| r.status == Some(401) && r.had_token)
    );
    assert_eq!(log[2].token_jti, log[1].token_jti);

    controls.set_refuse_valid_tokens(false);
    assert_eq!(list(&sb, Some(&fresh)).await.status(), 200);
    assert_eq!(list(&sb, Some(&before)).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Admin routes and the JSON form
// ---------------------------------------------------------------------------------------------

/// Posts `body` to the admin route `/__sandbox/{path}`.
#[tokio::test]
async fn admin_routes_drive_the_hostile_modes() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;

    // clock-offset
    admin_set(&sb, "clock-offset", json!({"secs": THREE_HOURS_BEHIND})).await;
    assert_eq!(controls.clock_offset(), THREE_HOURS_BEHIND);
    let (response, now) = timed(THREE_HOURS_BEHIND, login(&token_url(&sb))).await;
    assert!(now.contains(&date_secs(&response)));
    for bad in [json!({"secs": "soon"}), json!({})] {
        expect_error(admin_post(&sb, "clock-offset", bad).await, 400).await;
    }
    admin_set(&sb, "clock-offset", json!({"secs": 0})).await;
    // The first token was issued on the real clock, which is back.
    assert_eq!(list(&sb, Some(&token)).await.status(), 200);

    // token-host
    let refusing = json!({"refusing": {"status": 503, "message": "down", "retry_after": "7"}});
    admin_set(&sb, "token-host", refusing).await;
    let response = login(&token_url(&sb)).await;
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(expect_error(response, 503).await, "down");
    let refusing = json!({"refusing": {"status": 429, "message": "later"}});
    admin_set(&sb, "token-host", refusing).await;
    let response = login(&token_url(&sb)).await;
    assert!(response.headers().get("retry-after").is_none());
    expect_error(response, 429).await;
    admin_set(&sb, "token-host", json!({"slow": 10})).await;
    assert_eq!(login(&token_url(&sb)).await.status(), 200);
    admin_set(&sb, "token-host", json!("silent")).await;
    let held = login_in_flight(token_url(&sb), &controls).await;
    assert_eq!(controls.requests().last().unwrap().status, None);
    held.abort();
    admin_set(&sb, "token-host", json!("normal")).await;
    assert_eq!(login(&token_url(&sb)).await.status(), 200);
    let bad_bodies = [
        json!("sideways"),
        json!({"slow": -1}),
        json!({"refusing": {"status": 1000, "message": "x"}}),
        json!({"refusing": {"status": 503}}),
        json!({"refusing": {"status": 503, "message": "x", "retry_after": "a\nb"}}),
    ];
    for bad in bad_bodies {
        let response = admin_post(&sb, "token-host", bad.clone()).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
    assert_eq!(login(&token_url(&sb)).await.status(), 200, "still normal");

    // refuse-tokens
    admin_set(&sb, "refuse-tokens", json!({"on": true})).await;
    let message = expect_error(list(&sb, Some(&token)).await, 401).await;
    assert_eq!(message, REFUSED_TOKEN_MESSAGE);
    assert_eq!(login(&token_url(&sb)).await.status(), 200);
    expect_error(
        admin_post(&sb, "refuse-tokens", json!({"on": 1})).await,
        400,
    )
    .await;
    admin_set(&sb, "refuse-tokens", json!({"on": false})).await;
    assert_eq!(list(&sb, Some(&token)).await.status(), 200);
}

#[test]
fn token_hosts_have_a_stable_json_form() {
    let cases = [
        (TokenHost::Normal, json!("normal")),
        (
            TokenHost::Slow(Duration::from_millis(250)),
            json!({"slow": 250}),
        ),
        (
            TokenHost::Refusing {
                status: 503,
                message: "down".into(),
                retry_after: Some("7".into()),
            },
            json!({"refusing": {"status": 503, "message": "down", "retry_after": "7"}}),
        ),
        (
            TokenHost::Refusing {
                status: 401,
                message: "no".into(),
                retry_after: None,
            },
            json!({"refusing": {"status": 401, "message": "no"}}),
        ),
        (TokenHost::Silent, json!("silent")),
    ];
    assert_json_forms(cases);
    assert_eq!(TokenHost::default(), TokenHost::Normal);
}
