//! Where the time of a token-refresh storm goes: to the client or to the sandbox.
//!
//! ```text
//! cargo bench --bench storm                      # both scenarios, 1000 calls each
//! STORM=expiry:1000 cargo bench --bench storm    # one scenario
//! ```
//!
//! The expiry storm of `examples/refresh_storm.rs` (1000 list operations released at once
//! through a barrier just after the token has gone stale; one login for all of them), with one
//! change: the sandbox runs on a thread and a current-thread runtime of its own, created before
//! anything else. The client runs as in the example, on a multi-thread runtime with a worker
//! per core, its callers in the `block_on` of the main thread. So every thread belongs to one
//! side, and the CPU time of each thread (from `/proc/self/task/*/schedstat`), or its
//! instructions under `valgrind --tool=callgrind --separate-threads=yes` (where the sandbox is
//! thread 2), tells the client's work from the sandbox's.
//!
//! Scenarios: `expiry` (the token is stale when the storm starts: one refresh, shared) and
//! `fresh` (the same storm on a token that is still fresh: no refresh). Their difference is what
//! the refresh costs under load.
//!
//! It prints one line per scenario:
//! `storm <scenario> calls=<n> token_requests=<n> requests=<n> failed=<n> p50_ms=.. p99_ms=..
//! wall_ms=.. client_cpu_ms=.. sandbox_cpu_ms=..`, where the CPU times are those of the storm
//! alone (from the barrier to the last answer), and the requests are counted from the sandbox's
//! request log.

use std::time::{Duration, Instant, SystemTime};

use comm100::generated::ClientCustomerSegmentsExt as _;
use comm100_sandbox::{Controls, Sandbox};

/// The name of the sandbox's thread, by which its CPU time is told from the client's.
const SANDBOX_THREAD: &str = "storm-sandbox";

/// The sandbox, on a thread and a current-thread runtime of its own, until `stop` is sent.
struct SandboxThread {
    portal_url: String,
    api_url: String,
    controls: Controls,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl SandboxThread {
    fn start() -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(SANDBOX_THREAD.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let sandbox = Sandbox::builder()
                        // A thousand callers open a thousand connections at once: more than the sandbox's
                        // default limit, which would make them queue.
                        .limits(comm100_sandbox::Limits::default().connections(4096))
                        .start()
                        .await
                        .unwrap();
                    ready_tx
                        .send((sandbox.portal_url(), sandbox.api_url(), sandbox.controls()))
                        .unwrap();
                    let _ = stop_rx.await;
                    sandbox.shutdown().await;
                });
            })
            .unwrap();
        let (portal_url, api_url, controls) = ready_rx.recv().unwrap();
        Self {
            portal_url,
            api_url,
            controls,
            stop,
            thread,
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
    }
}

/// CPU time so far of the sandbox's thread and of all the others, in ns.
fn cpu_by_side() -> (u64, u64) {
    let (mut sandbox, mut client) = (0, 0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        // `comm` is cut at 15 bytes.
        if SANDBOX_THREAD.starts_with(name.trim()) && !name.trim().is_empty() {
            sandbox += ns;
        } else {
            client += ns;
        }
    }
    (sandbox, client)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Scenario {
    Expiry,
    Fresh,
}

async fn storm(sandbox: &SandboxThread, scenario: Scenario, calls: usize) -> String {
    let controls = &sandbox.controls;
    controls.reset();
    controls.set_token_lifetime(match scenario {
        Scenario::Expiry => Duration::from_secs(2),
        Scenario::Fresh => Duration::from_secs(2 * 60 * 60),
    });
    // The example's client and storm, on purpose the same code (the example starts the
    // sandbox on its own runtime, which is what this bench must not do, so it cannot be
    // called from here).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let c100 = comm100::Comm100::builder()
        .urls(sandbox.portal_url.clone(), sandbox.api_url.clone())
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
        .build()
        .unwrap();
    let expires_at = c100.login().await.unwrap();
    controls.set_token_lifetime(Duration::from_secs(2 * 60 * 60));
    if let (Scenario::Expiry, Some(exp)) = (scenario, expires_at) {
        // Just after `exp`, as the example: the token is stale whatever the refresh rule.
        if let Ok(wait) = exp.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait + Duration::from_millis(20)).await;
        }
    }
    let before = controls.stats();
    let start = tokio::sync::Barrier::new(calls + 1);
    let operations = (0..calls).map(|_| {
        let start = &start;
        let c100 = &c100;
        async move {
            start.wait().await;
            let t = Instant::now();
            let result = c100
                .client()
                .list_customer_segments()
                .send()
                .await
                .map(|_| ());
            (result, t.elapsed())
        }
    });
    let (cpu_before, results) = futures::future::join(
        async {
            // Every caller waits at the barrier; the CPU is read just before it opens.
            tokio::task::yield_now().await;
            let cpu = cpu_by_side();
            let t0 = Instant::now();
            start.wait().await;
            (cpu, t0)
        },
        futures::future::join_all(operations),
    )
    .await;
    let ((sandbox0, client0), t0) = cpu_before;
    let wall = t0.elapsed();
    let (sandbox1, client1) = cpu_by_side();
    let after = controls.stats();

    let failed = results.iter().filter(|(r, _)| r.is_err()).count();
    let mut latencies: Vec<f64> = results
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let ms = |ns: u64| ns as f64 / 1e6;
    format!(
        "storm {} calls={calls} token_requests={} requests={} failed={failed} p50_ms={:.2} \
         p99_ms={:.2} wall_ms={:.2} client_cpu_ms={:.2} sandbox_cpu_ms={:.2}",
        match scenario {
            Scenario::Expiry => "expiry",
            Scenario::Fresh => "fresh",
        },
        after.token_requests - before.token_requests,
        after.requests - before.requests,
        pct(0.50),
        pct(0.99),
        wall.as_secs_f64() * 1000.0,
        ms(client1 - client0),
        ms(sandbox1 - sandbox0),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let spec = std::env::var("STORM").unwrap_or_default();
    let mut parts = spec.split(':');
    let scenarios = match parts.next().unwrap_or("") {
        "expiry" => vec![Scenario::Expiry],
        "fresh" => vec![Scenario::Fresh],
        _ => vec![Scenario::Expiry, Scenario::Fresh],
    };
    let calls: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(1000);

    // First, so that under callgrind the sandbox is thread 2.
    let sandbox = SandboxThread::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for scenario in scenarios {
        println!("{}", rt.block_on(storm(&sandbox, scenario, calls)));
    }
    drop(rt);
    sandbox.stop();
}
