//! Transport limits against the sandbox's hostile faults: bounded bodies (with the peak heap
//! measured by a counting allocator), `429` on a create, `Retry-After` past the cap, the time
//! budget of an operation, and another `2xx` than the documented one. Counts come from the
//! sandbox's request log; nothing sleeps.
// `ApiErrorExt` is deprecated in favour of `comm100::ApiError`, and kept for a release: these
// checks hold for it too.
#![allow(deprecated)]

use std::time::{Duration, Instant};

use comm100::generated::ClientCustomerSegmentsExt as _;
use comm100::{ApiErrorExt, RetryPolicy, ORIGINAL_STATUS_HEADER};
use comm100_sandbox::{Fault, Route, DEFAULT_SITE_ID};

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use common::{count, logged_in, segment};
use counting_alloc::peak_of;

/// Memory is measured for the whole process: one measured test at a time.
static MEASURED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn a_256_mib_error_body_gives_its_status_and_a_short_message_in_bounded_memory() {
    let (sb, ctl, _) = logged_in().await;
    let c100 = common::client_for(&sb)
        .retry(RetryPolicy::disabled())
        .build()
        .unwrap();
    c100.login().await.unwrap();
    ctl.fail_next(
        1,
        Fault::HugeErrorBody {
            status: 500,
            bytes: 256 * MIB as u64,
        },
        Some(Route::List),
    );
    let _one = MEASURED.lock().await;
    let (result, peak) = peak_of(c100.client().list_customer_segments().send()).await;
    let err = result.unwrap_err();
    assert_eq!(err.http_status().map(|s| s.as_u16()), Some(500), "{err}");
    assert!(
        err.message().starts_with("non-JSON error body: <"),
        "{}",
        err.message()
    );
    assert!(err.message().chars().count() <= 230, "{}", err.message());
    assert!(err.to_string().len() < 1024, "{err}");
    assert!(peak < 16 * MIB, "peak heap {peak} bytes");
    println!("huge error body: peak heap {} KiB", peak / 1024);
}

#[tokio::test]
async fn an_endless_success_body_fails_with_the_size_error_in_bounded_memory() {
    let (sb, ctl, _) = logged_in().await;
    let limit = MIB;
    let c100 = common::client_for(&sb)
        .max_response_body(limit)
        .build()
        .unwrap();
    c100.login().await.unwrap();
    ctl.fail_next(1, Fault::EndlessBody, Some(Route::List));
    let _one = MEASURED.lock().await;
    let (result, peak) = peak_of(c100.client().list_customer_segments().send()).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, progenitor_client::Error::ResponseBodyError(_)),
        "{err:?}"
    );
    assert!(!err.is_retryable(), "the same body would be as long again");
    assert!(
        err.message().contains(&limit.to_string()),
        "{}",
        err.message()
    );
    assert!(peak < 4 * limit, "peak heap {peak} bytes");
    assert_eq!(count(&ctl, Route::List), 1);
    println!("endless body, 1 MiB limit: peak heap {} KiB", peak / 1024);
}

#[tokio::test]
async fn the_default_limit_is_not_buffered_past() {
    let (_sb, ctl, c100) = logged_in().await;
    ctl.fail_next(1, Fault::EndlessBody, Some(Route::List));
    let _one = MEASURED.lock().await;
    let (result, peak) = peak_of(c100.client().list_customer_segments().send()).await;
    let err = result.unwrap_err();
    assert!(err.message().contains("33554432"), "{}", err.message());
    // The 32 MiB limit, and at most the buffer's growth on top of it.
    assert!(peak < 80 * MIB, "peak heap {peak} bytes");
    println!("endless body, default limit: peak heap {} MiB", peak / MIB);
}

#[tokio::test]
async fn a_create_refused_with_429_is_retried_after_retry_after_and_creates_once() {
    let (_sb, ctl, c100) = logged_in().await;
    ctl.fail_next(
        1,
        Fault::RateLimited {
            retry_after: "1".into(),
        },
        Some(Route::Create),
    );
    let started = Instant::now();
    let created = c100
        .client()
        .create_customer_segment()
        .body(segment("after a 429"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the wait asked for"
    );
    assert_eq!(count(&ctl, Route::Create), 2);
    assert_eq!(
        ctl.segments(DEFAULT_SITE_ID).len(),
        1,
        "exactly one segment"
    );
}

#[tokio::test]
async fn a_retry_after_past_the_cap_goes_back_to_the_caller_at_once() {
    let (_sb, ctl, c100) = logged_in().await;
    ctl.fail_next(
        1,
        Fault::RateLimited {
            retry_after: "3600".into(),
        },
        Some(Route::Create),
    );
    let err = c100
        .client()
        .create_customer_segment()
        .body(segment("later"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(err.is_rate_limited(), "{err}");
    assert_eq!(count(&ctl, Route::Create), 1);
    assert!(ctl.segments(DEFAULT_SITE_ID).is_empty());
}

#[tokio::test]
async fn a_create_failing_otherwise_is_never_sent_twice() {
    let (_sb, ctl, c100) = logged_in().await;
    ctl.fail_next(1, Fault::Status(503), Some(Route::Create));
    let err = c100
        .client()
        .create_customer_segment()
        .body(segment("once"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.http_status().map(|s| s.as_u16()), Some(503));
    assert_eq!(count(&ctl, Route::Create), 1);
}

#[tokio::test]
async fn no_call_outlives_its_budget() {
    let (sb, ctl, _) = logged_in().await;
    let budget = Duration::from_secs(1);
    // A server that never answers.
    let c100 = common::client_for(&sb)
        .operation_timeout(budget)
        .build()
        .unwrap();
    c100.login().await.unwrap();
    ctl.fail_next(1, Fault::Hang, Some(Route::List));
    let started = Instant::now();
    let err = c100
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_retryable() && err.http_status().is_none(), "{err}");
    assert!(err.message().contains("time budget"), "{}", err.message());
    // Bounds, not speeds: without the budget the call would wait for the 15 s timeout.
    assert!(took >= budget && took < budget * 3, "{took:?}");

    // A server that keeps answering 503: retried while the waits fit, then the last 503.
    let patient = common::client_for(&sb)
        .operation_timeout(budget)
        .retry(
            RetryPolicy::default()
                .max_attempts(1000)
                .initial_backoff(Duration::from_millis(200))
                .max_backoff(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    patient.login().await.unwrap();
    ctl.fail_next(1000, Fault::Status(503), Some(Route::List));
    ctl.clear_requests();
    let started = Instant::now();
    let err = patient
        .client()
        .list_customer_segments()
        .send()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.http_status().map(|s| s.as_u16()), Some(503), "{err}");
    assert!(took < budget * 3, "{took:?}");
    let attempts = count(&ctl, Route::List);
    assert!((2..100).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn another_2xx_is_the_documented_success() {
    let (_sb, ctl, c100) = logged_in().await;
    ctl.fail_next(
        1,
        Fault::AltSuccess {
            status: 200,
            body: None,
        },
        Some(Route::Create),
    );
    let created = c100
        .client()
        .create_customer_segment()
        .body(segment("answered 200"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "the documented status");
    assert_eq!(
        created.headers().get(ORIGINAL_STATUS_HEADER).unwrap(),
        "200"
    );
    assert!(created.headers().get("location").is_none(), "none was sent");
    let id = created.into_inner().id;
    assert_eq!(ctl.segments(DEFAULT_SITE_ID).len(), 1);

    ctl.fail_next(
        1,
        Fault::AltSuccess {
            status: 200,
            body: Some("Deleted".into()),
        },
        Some(Route::Delete),
    );
    let deleted = c100
        .client()
        .delete_customer_segment()
        .id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        deleted.headers().get(ORIGINAL_STATUS_HEADER).unwrap(),
        "200"
    );
    assert!(ctl.segments(DEFAULT_SITE_ID).is_empty());
    assert_eq!(count(&ctl, Route::Delete), 1, "not retried");
}
