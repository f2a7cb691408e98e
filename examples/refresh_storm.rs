//! Refresh under load: many concurrent operations start just as the token expires, and the
//! client must fetch exactly one new token for all of them.
//!
//! Against the sandbox: the client logs in once with a short-lived token (2 s), waits until the
//! token has just expired (a wait computed from the token's `exp`, not a guess), then starts
//! `--concurrent` list operations at once (1000 by default). Every one of them finds the token stale; one refreshes and the others share its
//! result. The token requests are counted in the sandbox's request log, less the first login.
//!
//! Then two storms against a token host that fails, where the target is one login request for
//! all callers and no caller waiting longer than one login:
//!
//! * **wrong password**: `--concurrent` list operations at once on a client with a wrong
//!   password. Every caller must get the `401` with Comm100's message, from one login request.
//! * **silent token host**: the token host accepts the login and never answers. Every caller
//!   must fail with the login timeout (2 s here), within that timeout, from one login request.
//!
//! ```text
//! cargo run --release --example refresh_storm [-- --concurrent 1000]
//! ```
//!
//! It prints one line per storm:
//! `refresh_storm scenario=<expiry|wrong_password|silent_token_host> concurrent=<n>
//! token_requests=<n> failed=<n> unexpected=<n> p50_ms=<..> p99_ms=<..>`; the target is
//! `token_requests=1 unexpected=0`, with `failed=0` for the expiry storm and every operation
//! failed for the others. `tests/soak.rs` runs the
//! storms at 50 concurrent operations, with a first token issued already expired so that nothing
//! waits.

use std::time::{Duration, Instant, SystemTime};

use comm100::prelude::*;
use comm100_sandbox::Sandbox;

/// What a storm measured.
#[derive(Debug, Clone)]
pub struct StormReport {
    /// Which storm.
    pub scenario: &'static str,
    /// How many operations ran at once.
    pub concurrent: usize,
    /// Token requests during the storm (the first login excluded).
    pub token_requests: usize,
    /// Operations that failed.
    pub failed: usize,
    /// Operations whose result is not the one the storm expects: success for the expiry storm,
    /// the token host's `401` or the login timeout for the failing-login storms.
    pub unexpected: usize,
    /// Median latency of one operation, in milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile latency of one operation, in milliseconds.
    pub p99_ms: f64,
}

impl std::fmt::Display for StormReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refresh_storm scenario={} concurrent={} token_requests={} failed={} unexpected={} p50_ms={:.2} p99_ms={:.2}",
            self.scenario,
            self.concurrent,
            self.token_requests,
            self.failed,
            self.unexpected,
            self.p50_ms,
            self.p99_ms
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
    let sandbox = Sandbox::builder()
        // A thousand callers open a thousand connections at once: more than the sandbox's
        // default limit, which would make them queue.
        .limits(comm100_sandbox::Limits::default().connections(4096))
        .start()
        .await?;
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
    let report = storm("expiry", &c100, &controls, concurrent, Result::is_ok).await;
    drop(c100);
    sandbox.shutdown().await;
    Ok(report)
}

/// How a login fails in a failing-login storm.
#[derive(Debug, Clone, Copy)]
pub enum LoginFailure {
    /// The agent's password is wrong: the token host answers `401`.
    WrongPassword,
    /// The token host accepts the login and never answers.
    SilentTokenHost,
}

/// The login timeout of the silent-token-host storm.
pub const STORM_LOGIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `concurrent` list operations at once on one client whose login fails. A caller counts
/// as failed when it gets the error the failure should give: the token host's `401` with
/// Comm100's message, or the login timeout.
pub async fn run_failing_login_storm(
    concurrent: usize,
    failure: LoginFailure,
) -> Result<StormReport, Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder()
        // A thousand callers open a thousand connections at once: more than the sandbox's
        // default limit, which would make them queue.
        .limits(comm100_sandbox::Limits::default().connections(4096))
        .start()
        .await?;
    let controls = sandbox.controls();
    let password = match failure {
        LoginFailure::WrongPassword => "not-the-password",
        LoginFailure::SilentTokenHost => {
            controls.set_token_host(comm100_sandbox::TokenHost::Silent);
            comm100_sandbox::DEFAULT_PASSWORD
        }
    };
    let c100 = comm100::Comm100::builder()
        .urls(sandbox.portal_url(), sandbox.api_url())
        .password_login(
            comm100_sandbox::DEFAULT_EMAIL,
            password,
            comm100_sandbox::DEFAULT_SITE_ID,
        )
        .login_timeout(STORM_LOGIN_TIMEOUT)
        .build()?;
    let (scenario, expected): (_, fn(&ApiError) -> bool) = match failure {
        LoginFailure::WrongPassword => ("wrong_password", |e| {
            e.kind() == &ErrorKind::LoginFailed
                && e.status().map(|s| s.as_u16()) == Some(401)
                && e.code() == Some(401000)
                && e.message().contains("password")
        }),
        LoginFailure::SilentTokenHost => ("silent_token_host", |e| {
            matches!(e.login_error(), Some(comm100::Error::LoginTimeout(_)))
        }),
    };
    let report = storm(scenario, &c100, &controls, concurrent, |result| {
        result.as_ref().is_err_and(expected)
    })
    .await;
    drop(c100);
    sandbox.shutdown().await;
    Ok(report)
}

/// Starts `concurrent` list operations at once (behind a barrier) and measures them; an
/// operation counts as unexpected when `expected` says its result is not the one it should be.
async fn storm(
    scenario: &'static str,
    c100: &comm100::Comm100,
    controls: &comm100_sandbox::Controls,
    concurrent: usize,
    expected: impl Fn(&Result<(), ApiError>) -> bool,
) -> StormReport {
    let before = controls.token_requests();
    let start = tokio::sync::Barrier::new(concurrent);
    let calls = (0..concurrent).map(|_| {
        let start = &start;
        async move {
            start.wait().await;
            let t = Instant::now();
            let result = c100
                .client()
                .list_customer_segments()
                .call()
                .await
                .map(|_| ());
            (result, t.elapsed())
        }
    });
    let results = futures::future::join_all(calls).await;

    let token_requests = controls.token_requests() - before;
    let failed = results.iter().filter(|(result, _)| result.is_err()).count();
    let unexpected = results
        .iter()
        .filter(|(result, _)| !expected(result))
        .count();
    let mut latencies: Vec<f64> = results
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    StormReport {
        scenario,
        concurrent,
        token_requests,
        failed,
        unexpected,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
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
    println!("{}", run_storm(concurrent, Expiry::WaitForIt).await?);
    for failure in [LoginFailure::WrongPassword, LoginFailure::SilentTokenHost] {
        println!("{}", run_failing_login_storm(concurrent, failure).await?);
    }
    Ok(())
}
