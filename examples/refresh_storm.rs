//! Refresh under load: many concurrent operations start just as the token expires, and the
//! client must fetch exactly one new token for all of them.
//!
//! Against the sandbox: the client logs in once with a short-lived token (2 s), waits until the
//! token has just expired (a wait computed from the token's `exp`, not a guess), then starts
//! `--concurrent` list operations at once (1000 by default). Every one of them finds the token stale; one refreshes and the others share its
//! result. The token requests are counted in the sandbox's request log, less the first login.
//!
//! ```text
//! cargo run --release --example refresh_storm [-- --concurrent 1000]
//! ```
//!
//! It prints one line:
//! `refresh_storm concurrent=<n> token_requests=<n> failed=<n> p50_ms=<..> p99_ms=<..>`; the
//! target is `token_requests=1 failed=0`. `tests/soak.rs` runs the same storm at 50 concurrent
//! operations, with a first token issued already expired so that nothing waits.

use std::time::{Duration, Instant, SystemTime};

use comm100::generated::ClientCustomerSegmentsExt as _;
use comm100_sandbox::{Sandbox, SandboxConfig};

/// What a storm measured.
#[derive(Debug, Clone)]
pub struct StormReport {
    /// How many operations ran at once.
    pub concurrent: usize,
    /// Token requests during the storm (the first login excluded).
    pub token_requests: usize,
    /// Operations that failed.
    pub failed: usize,
    /// Median latency of one operation, in milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile latency of one operation, in milliseconds.
    pub p99_ms: f64,
}

impl std::fmt::Display for StormReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refresh_storm concurrent={} token_requests={} failed={} p50_ms={:.2} p99_ms={:.2}",
            self.concurrent, self.token_requests, self.failed, self.p50_ms, self.p99_ms
        )
    }
}

/// How the storm meets an expiring token.
#[derive(Debug, Clone, Copy)]
pub enum Expiry {
    /// The first token is issued already expired: nothing waits (for tests).
    AlreadyExpired,
    /// The first token lives 2 s; wait until it has just expired, then storm.
    WaitForIt,
}

/// Runs `concurrent` list operations at once on one client, just as its token goes stale.
pub async fn run_storm(
    concurrent: usize,
    expiry: Expiry,
) -> Result<StormReport, Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start_with(SandboxConfig::default()).await?;
    let controls = sandbox.controls();
    // The first token: already expired (a zero lifetime issues `exp == now`), or short-lived.
    controls.set_token_lifetime(match expiry {
        Expiry::AlreadyExpired => Duration::ZERO,
        Expiry::WaitForIt => Duration::from_secs(2),
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let c100 = comm100::Comm100::builder()
        .urls(sandbox.portal_url(), sandbox.api_url())
        .password_login(
            comm100_sandbox::DEFAULT_EMAIL,
            comm100_sandbox::DEFAULT_PASSWORD,
            comm100_sandbox::DEFAULT_SITE_ID,
        )
        .retry(
            comm100::RetryPolicy::default()
                .max_attempts(5)
                .initial_backoff(Duration::from_millis(5)),
        )
        .refresh_buffer(Duration::from_secs(60))
        .http_client(http)
        .build()?;
    let expires_at = c100.login().await?;
    // The token issued by the refresh is long-lived, so the storm needs exactly one.
    controls.set_token_lifetime(Duration::from_secs(2 * 60 * 60));
    if let (Expiry::WaitForIt, Some(exp)) = (expiry, expires_at) {
        // Start the storm just after `exp`: the token is then stale whatever refresh rule the
        // client applies before expiry (a buffer, or halfway through a short token's life).
        if let Ok(wait) = exp.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait + Duration::from_millis(20)).await;
        }
    }
    let before = controls.token_requests();

    let start = tokio::sync::Barrier::new(concurrent);
    let calls = (0..concurrent).map(|_| {
        let c100 = &c100;
        let start = &start;
        async move {
            start.wait().await;
            let t = Instant::now();
            let ok = c100.client().list_customer_segments().send().await.is_ok();
            (ok, t.elapsed())
        }
    });
    let results = futures::future::join_all(calls).await;

    let token_requests = controls.token_requests() - before;
    let failed = results.iter().filter(|(ok, _)| !ok).count();
    let mut latencies: Vec<f64> = results
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let report = StormReport {
        concurrent,
        token_requests,
        failed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    };
    drop(c100);
    sandbox.shutdown().await;
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut concurrent = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--concurrent" => concurrent = args.next().ok_or("--concurrent N")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let report = run_storm(concurrent, Expiry::WaitForIt).await?;
    println!("{report}");
    Ok(())
}
