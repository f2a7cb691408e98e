//! Small-scale versions of the reliability examples: the refresh storm at 50 concurrent
//! operations (`examples/refresh_storm.rs`) and the fault soak at 500 operations
//! (`examples/soak.rs`). They share the examples' code, included by path. No timing is asserted.

#[allow(dead_code)]
#[path = "../examples/refresh_storm.rs"]
mod refresh_storm;

/// 50 operations start with a token that has already expired: one refresh serves all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_storm_fetches_one_token_for_50_concurrent_operations() {
    let report = refresh_storm::run_storm(50, refresh_storm::Expiry::AlreadyExpired)
        .await
        .expect("the storm runs");
    println!("{report}");
    assert_eq!(report.failed, 0, "{report}");
    assert_eq!(report.unexpected, 0, "{report}");
    assert_eq!(report.token_requests, 1, "{report}");
}

/// 50 operations on a client whose login fails: one login request, and every caller gets the
/// error the failure should give (the `401` with Comm100's message, or the login timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_login_storms_send_one_login_for_50_concurrent_operations() {
    for failure in [
        refresh_storm::LoginFailure::WrongPassword,
        refresh_storm::LoginFailure::SilentTokenHost,
    ] {
        let report = refresh_storm::run_failing_login_storm(50, failure)
            .await
            .expect("the storm runs");
        println!("{report}");
        assert_eq!(report.failed, 50, "{report}");
        assert_eq!(
            report.unexpected, 0,
            "every caller got the expected error: {report}"
        );
        assert_eq!(report.token_requests, 1, "{report}");
    }
}

#[allow(dead_code)]
#[path = "../examples/soak.rs"]
mod soak;

/// 500 seeded operations with 10% faults: nothing duplicated or lost, the sandbox's state is the
/// model, and only creates (a POST that may have reached the server) ever fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_500_ops_with_faults_keeps_the_state_and_fails_only_creates() {
    let report = soak::run_soak(500, soak::DEFAULT_SEED)
        .await
        .expect("the soak runs");
    soak::print_report(&report);
    assert!(report.faults > 0, "{}", report.summary());
    assert_eq!(report.duplicates, 0, "{}", report.summary());
    assert_eq!(report.lost, 0, "{}", report.summary());
    assert_eq!(report.unknown, 0, "{}", report.summary());
    assert!(report.state_matches, "{report:?}");
    assert_eq!(report.stale_reads, 0, "{report:?}");
    for failed in &report.failed {
        assert_eq!(failed.kind, soak::OpKind::Create, "{failed:?}");
    }
}
