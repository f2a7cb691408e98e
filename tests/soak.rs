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
    assert_eq!(report.token_requests, 1, "{report}");
}
