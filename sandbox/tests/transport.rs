//! The faults that real servers and networks produce, for a client's transport limits: a huge
//! error page, a body that never ends, a request never answered and another `2xx` than the
//! documented one; through `Controls` and the admin route, over real HTTP.
//!
//! No test sleeps: they wait on the request log ([`Controls::wait_for_requests`]), on the
//! responses, or on the sandbox stopping (under a time limit); one, whose request is not yet in
//! the log, yields until the fault counter shows its request has taken its fault.

mod common;

use std::time::Duration;

use comm100_sandbox::{Controls, DEFAULT_SITE_ID, Fault, Route, Sandbox};
use common::*;
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;

/// What a test read of a body, chunk by chunk.
struct Counted {
    /// How many bytes came.
    bytes: u64,
    /// The first bytes, up to [`KEEP`].
    first: Vec<u8>,
    /// The last bytes, up to [`KEEP`].
    last: Vec<u8>,
    /// `Ok(true)` when the body ended, `Ok(false)` when the reading stopped at the limit, or
    /// the error the body failed with.
    ended: reqwest::Result<bool>,
}

/// How many of the first and last bytes [`Counted`] keeps.
const KEEP: usize = 64 * 1024;

/// Reads `response` chunk by chunk, counting, until the body ends or fails, or at least `limit`
/// bytes have come.
async fn read_counting(response: &mut reqwest::Response, limit: u64) -> Counted {
    let mut counted = Counted {
        bytes: 0,
        first: Vec::new(),
        last: Vec::new(),
        ended: Ok(false),
    };
    while counted.bytes < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                counted.bytes += chunk.len() as u64;
                let room = KEEP.saturating_sub(counted.first.len());
                counted
                    .first
                    .extend_from_slice(&chunk[..room.min(chunk.len())]);
                counted.last.extend_from_slice(&chunk);
                let excess = counted.last.len().saturating_sub(KEEP);
                counted.last.drain(..excess);
            }
            Ok(None) => {
                counted.ended = Ok(true);
                break;
            }
            Err(error) => {
                counted.ended = Err(error);
                break;
            }
        }
    }
    counted
}

async fn list(sb: &Sandbox, token: &str) -> reqwest::Response {
    client()
        .get(segments_url(sb))
        .bearer_auth(token)
        .send()
        .await
        .expect("a list response")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("a text header"))
}

/// What a client does with a streamed body when the sandbox stops.
#[derive(Clone, Copy, Debug)]
enum Reader {
    /// It read some, then dropped the response.
    DroppedEarly,
    /// It holds the response and reads no more.
    Stalled,
    /// It is still reading.
    Reading,
}

/// Starts a sandbox, faults its next list with `fault`, lists, reads about a MiB, leaves the
/// rest to a client that behaves as `reader`, and stops the sandbox, promptly. A client that
/// still holds the body then finds it cut short.
async fn stop_while_streaming(fault: Fault, reader: Reader, by_drop: bool) {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.fail_next(1, fault.clone(), Some(Route::List));
    let mut response = list(&sb, &token).await;
    let read = read_counting(&mut response, MIB).await;
    assert!(
        matches!(read.ended, Ok(false)),
        "{fault:?}: the body goes on"
    );

    let what = format!("{fault:?} with a client that {reader:?}");
    let mut stalled = None;
    let mut reading = None;
    match reader {
        Reader::DroppedEarly => drop(response),
        Reader::Stalled => stalled = Some(response),
        Reader::Reading => {
            reading = Some(tokio::spawn(async move {
                read_counting(&mut response, u64::MAX).await.ended
            }));
        }
    }
    stop_promptly(sb, by_drop, &what).await;
    let ended = match (stalled, reading) {
        (Some(mut response), _) => Some(read_counting(&mut response, u64::MAX).await.ended),
        (_, Some(task)) => Some(task.await.unwrap()),
        (None, None) => None,
    };
    if let Some(ended) = ended {
        assert!(ended.is_err(), "{what}: the body is cut short: {ended:?}");
    }
    let last = controls.requests().pop().unwrap();
    assert_eq!(last.fault, Some(fault));
}

// ---------------------------------------------------------------------------------------------
// A huge error body
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_huge_error_body_streams_exactly_its_length_and_processes_nothing() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let fault = Fault::HugeErrorBody {
        status: 500,
        bytes: 8 * MIB,
    };
    controls.fail_next(1, fault.clone(), Some(Route::Create));
    let mut response = create(&sb, &token, &segment("huge")).await;
    assert_eq!(response.status(), 500);
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        header(&response, "content-length"),
        Some(&*(8 * MIB).to_string())
    );
    let read = read_counting(&mut response, u64::MAX).await;
    assert!(matches!(read.ended, Ok(true)), "{:?}", read.ended);
    assert_eq!(read.bytes, 8 * MIB);
    let first = String::from_utf8_lossy(&read.first);
    assert!(
        first.starts_with("<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title>"),
        "{}",
        &first[..200]
    );
    assert!(read.last.ends_with(b"</body></html>\n"));

    assert!(
        controls.segments(DEFAULT_SITE_ID).is_empty(),
        "the create was not processed"
    );
    let last = controls.requests().pop().unwrap();
    assert_eq!((last.status, last.fault), (Some(500), Some(fault)));
    assert_eq!(controls.faults_injected(), 1);
}

#[tokio::test]
async fn a_huge_error_body_shorter_than_its_page_is_cut_to_length() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    for bytes in [0u64, 10, 200] {
        controls.fail_next(
            1,
            Fault::HugeErrorBody { status: 503, bytes },
            Some(Route::List),
        );
        let response = list(&sb, &token).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.content_length(), Some(bytes));
        let body = response.bytes().await.unwrap();
        assert_eq!(body.len() as u64, bytes);
        let page = "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n";
        let n = body.len().min(page.len());
        assert_eq!(&body[..n], &page.as_bytes()[..n]);
    }
    // An invalid status is sent as 500.
    controls.fail_next(
        1,
        Fault::HugeErrorBody {
            status: 1000,
            bytes: 1,
        },
        None,
    );
    assert_eq!(list(&sb, &token).await.status(), 500);
}

#[tokio::test]
async fn a_client_leaving_a_huge_error_body_does_not_hold_up_the_stop() {
    let fault = Fault::HugeErrorBody {
        status: 500,
        bytes: 256 * MIB,
    };
    for reader in [Reader::DroppedEarly, Reader::Stalled, Reader::Reading] {
        for by_drop in [false, true] {
            stop_while_streaming(fault.clone(), reader, by_drop).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An endless body
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_endless_body_is_a_json_array_that_goes_on_until_the_client_drops_it() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.fail_next(1, Fault::EndlessBody, Some(Route::List));
    let mut response = list(&sb, &token).await;
    assert_eq!(response.status(), 200, "handled normally up to the status");
    assert_eq!(header(&response, "content-length"), None);
    assert_eq!(response.content_length(), None);
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let read = read_counting(&mut response, 4 * MIB).await;
    assert!(matches!(read.ended, Ok(false)), "{:?}", read.ended);
    assert!(read.bytes >= 4 * MIB);

    // `[`, then the same segment-like object, each followed by a comma.
    assert_eq!(read.first[0], b'[');
    let mut items = serde_json::Deserializer::from_slice(&read.first[1..]).into_iter::<Value>();
    let item = items.next().unwrap().expect("a JSON object");
    assert_eq!(item["name"], "endless");
    assert!(
        item["id"].is_string() && item["conditions"].is_array(),
        "{item}"
    );
    let n = items.byte_offset();
    let (first, rest) = read.first[1..].split_at(n);
    assert_eq!(rest[0], b',');
    assert_eq!(&rest[1..=n], first, "the same object again");
    assert_eq!(rest[n + 1], b',');

    drop(response);
    let last = controls.requests().pop().unwrap();
    assert_eq!(
        (last.status, last.fault),
        (Some(200), Some(Fault::EndlessBody))
    );
    // The sandbox serves on, and stops promptly.
    assert_eq!(list(&sb, &token).await.status(), 200);
    stop_promptly(sb, false, "an endless body dropped by its client").await;
}

#[tokio::test]
async fn an_endless_body_keeps_the_status_of_the_request_and_ends_when_the_sandbox_stops() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    // A delete is processed; its 204 is sent as 200, since it has a body.
    let url = created_url(&sb, &token, "gone").await;
    controls.fail_next(1, Fault::EndlessBody, Some(Route::Delete));
    let mut response = delete(&url, &token).await;
    assert_eq!(response.status(), 200);
    assert!(controls.segments(DEFAULT_SITE_ID).is_empty(), "deleted");
    let read = read_counting(&mut response, MIB).await;
    assert!(matches!(read.ended, Ok(false)));
    drop(response);
    // A request that fails keeps its error status.
    controls.fail_next(1, Fault::EndlessBody, None);
    let mut response = client().get(segments_url(&sb)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(read_counting(&mut response, 1).await.bytes, 1);
    drop(response);

    for reader in [Reader::DroppedEarly, Reader::Stalled, Reader::Reading] {
        for by_drop in [false, true] {
            stop_while_streaming(Fault::EndlessBody, reader, by_drop).await;
        }
    }
}

/// Over HTTP/2, a stream the client does not read stalls on flow control, where hyper no
/// longer polls the body: only dropping the connection ends it.
#[tokio::test]
async fn a_stalled_http2_stream_does_not_hold_up_the_stop() {
    use http_body_util::BodyExt;

    let faults = [
        Fault::EndlessBody,
        Fault::HugeErrorBody {
            status: 500,
            bytes: 256 * MIB,
        },
    ];
    for fault in faults {
        for by_drop in [false, true] {
            let sb = Sandbox::start().await.unwrap();
            let controls = sb.controls();
            let token = token(&sb).await;
            controls.fail_next(1, fault.clone(), Some(Route::List));
            let response = http2_list(&sb, &token).await;
            let what = format!("{fault:?} on a stalled HTTP/2 stream");
            stop_promptly(sb, by_drop, &what).await;
            let rest = response.into_body().collect().await;
            assert!(rest.is_err(), "{what}: the body is cut short");
            assert_eq!(
                controls.requests().pop().unwrap().fault,
                Some(fault.clone())
            );
        }
    }
}

#[tokio::test]
async fn a_streamed_body_that_starts_after_the_stop_ends_at_once() {
    for fault in [
        Fault::EndlessBody,
        Fault::HugeErrorBody {
            status: 500,
            bytes: 256 * MIB,
        },
    ] {
        let sb = Sandbox::start().await.unwrap();
        let controls = sb.controls();
        let token = token(&sb).await;
        // The request waits out the latency after taking its fault, so the sandbox is told to
        // stop before its body starts: the connection is then drained, not dropped, and it is
        // the body that must end at the stop.
        controls.set_latency(Some(Duration::from_millis(500)));
        controls.fail_next(1, fault.clone(), Some(Route::List));
        let url = segments_url(&sb);
        let reader = tokio::spawn(async move {
            let mut response = client().get(url).bearer_auth(token).send().await?;
            read_counting(&mut response, u64::MAX).await.ended
        });
        // Taking the fault is the request's first step; nothing is logged before the latency.
        while controls.faults_injected() == 0 {
            tokio::task::yield_now().await;
        }
        stop_promptly(sb, true, &format!("{fault:?} starting after the stop")).await;
        let ended = reader.await.unwrap();
        assert!(ended.is_err(), "{fault:?}: no whole body: {ended:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A request never answered
// ---------------------------------------------------------------------------------------------

/// Sends a list that the test does not wait for, and waits until it is in the log.
async fn list_in_flight(
    sb: &Sandbox,
    token: &str,
    controls: &Controls,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    in_flight(client().get(segments_url(sb)).bearer_auth(token), controls).await
}

#[tokio::test]
async fn a_hung_request_is_logged_on_arrival_and_never_answered() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    controls.fail_next(1, Fault::Hang, Some(Route::List));
    let pending = list_in_flight(&sb, &token, &controls).await;
    let held = controls.requests().pop().unwrap();
    assert_eq!(
        (held.route, held.status, held.fault),
        (Some(Route::List), None, Some(Fault::Hang))
    );
    // The sandbox serves others meanwhile, and the request still hangs after.
    assert_eq!(list(&sb, &token).await.status(), 200);
    assert!(!pending.is_finished());
    pending.abort();

    // A client with a timeout gives up; a hung create creates nothing.
    controls.fail_next(1, Fault::Hang, Some(Route::Create));
    let error = client()
        .post(segments_url(&sb))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .json(&segment("hung"))
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
    assert!(controls.segments(DEFAULT_SITE_ID).is_empty());
    let held = controls.requests().pop().unwrap();
    assert_eq!((held.route, held.status), (Some(Route::Create), None));
    assert_eq!(controls.faults_injected(), 2);
}

#[tokio::test]
async fn a_hung_request_does_not_hold_up_shutdown_or_drop() {
    for by_drop in [false, true] {
        let sb = Sandbox::start().await.unwrap();
        let controls = sb.controls();
        let token = token(&sb).await;
        // Logged on arrival, before any latency, which a hung request never waits for.
        controls.set_latency(Some(Duration::from_secs(3600)));
        controls.fail_next(1, Fault::Hang, None);
        let pending = list_in_flight(&sb, &token, &controls).await;
        stop_promptly(sb, by_drop, "a hung request").await;
        let result = pending.await.unwrap();
        assert!(result.is_err(), "the hung request ends without a response");
        let log = controls.requests();
        assert_eq!((log.len(), log[1].status), (2, None));
    }
}

// ---------------------------------------------------------------------------------------------
// Another 2xx
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_2xx_on_a_create_creates_and_keeps_the_json_body_without_location() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    admin_set(
        &sb,
        "faults",
        json!({"fault": {"alt_success": {"status": 200, "body": null}}, "route": "create"}),
    )
    .await;
    let response = create(&sb, &token, &segment("made")).await;
    assert_eq!(response.status(), 200, "not the documented 201");
    assert_eq!(header(&response, "location"), None);
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "made");
    let stored = controls.segments(DEFAULT_SITE_ID);
    assert_eq!(stored.len(), 1, "the segment was created");
    assert_eq!(stored[0]["id"], body["id"]);
    let last = controls.requests().pop().unwrap();
    assert_eq!(
        (last.status, last.fault),
        (
            Some(200),
            Some(Fault::AltSuccess {
                status: 200,
                body: None
            })
        )
    );
    // The next create is answered as documented.
    let response = create(&sb, &token, &segment("next")).await;
    assert_eq!(response.status(), 201);
    assert!(header(&response, "location").is_some());
}

#[tokio::test]
async fn another_2xx_on_a_delete_deletes_and_answers_with_the_text() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    let url = created_url(&sb, &token, "doomed").await;
    admin_set(
        &sb,
        "faults",
        json!({"fault": {"alt_success": {"status": 200, "body": "Deleted"}}, "route": "delete"}),
    )
    .await;
    let response = delete(&url, &token).await;
    assert_eq!(response.status(), 200, "not the documented 204");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text().await.unwrap(), "Deleted");
    assert!(
        controls.segments(DEFAULT_SITE_ID).is_empty(),
        "the segment was deleted"
    );

    // A request that fails keeps its error.
    controls.fail_next(
        1,
        Fault::AltSuccess {
            status: 202,
            body: Some("Deleted".into()),
        },
        Some(Route::Delete),
    );
    let response = delete(&url, &token).await;
    expect_error(response, 404).await;
}

#[tokio::test]
async fn another_2xx_outside_2xx_is_refused_by_the_admin_route_and_sent_as_200_by_fail_next() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;
    for status in [199, 300, 404, 500] {
        let fault = json!({"alt_success": {"status": status, "body": "x"}});
        let response = admin_post(&sb, "faults", json!({ "fault": fault })).await;
        expect_error(response, 400).await;
    }
    assert_eq!(list(&sb, &token).await.status(), 200, "nothing was queued");
    assert_eq!(controls.faults_injected(), 0);

    // 204 and 202 are taken as they are; `body` may be left out.
    admin_set(
        &sb,
        "faults",
        json!({"fault": {"alt_success": {"status": 202}}, "route": "list"}),
    )
    .await;
    let response = list(&sb, &token).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap(), json!([]));

    controls.fail_next(
        1,
        Fault::AltSuccess {
            status: 404,
            body: None,
        },
        Some(Route::List),
    );
    let response = list(&sb, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!([]));
}

// ---------------------------------------------------------------------------------------------
// The JSON forms and the admin route
// ---------------------------------------------------------------------------------------------

#[test]
fn the_new_faults_have_a_stable_json_form() {
    let cases = [
        (
            Fault::HugeErrorBody {
                status: 500,
                bytes: 256 * MIB,
            },
            json!({"huge_error_body": {"status": 500, "bytes": 268_435_456}}),
        ),
        (Fault::EndlessBody, json!("endless_body")),
        (Fault::Hang, json!("hang")),
        (
            Fault::AltSuccess {
                status: 200,
                body: Some("Deleted".into()),
            },
            json!({"alt_success": {"status": 200, "body": "Deleted"}}),
        ),
        (
            Fault::AltSuccess {
                status: 200,
                body: None,
            },
            json!({"alt_success": {"status": 200, "body": null}}),
        ),
    ];
    assert_json_forms(cases);
    assert_eq!(
        serde_json::from_value::<Fault>(json!({"alt_success": {"status": 204}})).unwrap(),
        Fault::AltSuccess {
            status: 204,
            body: None
        }
    );
}

#[tokio::test]
async fn the_admin_route_takes_the_huge_endless_and_hang_faults() {
    let sb = Sandbox::start().await.unwrap();
    let controls = sb.controls();
    let token = token(&sb).await;

    let huge = json!({"huge_error_body": {"status": 502, "bytes": 100_000}});
    admin_set(&sb, "faults", json!({ "fault": huge, "route": "list" })).await;
    let mut response = list(&sb, &token).await;
    assert_eq!(response.status(), 502);
    let read = read_counting(&mut response, u64::MAX).await;
    assert!(matches!(read.ended, Ok(true)));
    assert_eq!(read.bytes, 100_000);

    admin_set(
        &sb,
        "faults",
        json!({"fault": "endless_body", "route": "list"}),
    )
    .await;
    let mut response = list(&sb, &token).await;
    assert_eq!(response.status(), 200);
    let read = read_counting(&mut response, MIB).await;
    assert!(matches!(read.ended, Ok(false)));
    drop(response);

    admin_set(&sb, "faults", json!({"fault": "hang", "route": "list"})).await;
    let pending = list_in_flight(&sb, &token, &controls).await;
    assert!(!pending.is_finished());

    let requests: Value = client()
        .get(format!("{}/__sandbox/requests", sb.portal_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let faults: Vec<(&Value, &Value)> = requests
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|r| (&r["fault"], &r["status"]))
        .collect();
    assert_eq!(
        faults,
        [
            (&huge, &json!(502)),
            (&json!("endless_body"), &json!(200)),
            (&json!("hang"), &Value::Null),
        ]
    );
    stop_promptly(sb, false, "a hung request").await;
    assert!(pending.await.unwrap().is_err());
}
