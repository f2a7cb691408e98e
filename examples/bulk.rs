//! A bulk job behind one IP: N creates spread over several sites, one client per site, against
//! the sandbox with its rate limit on, once without and once with a shared `RateBudget`.
//!
//! ```text
//! cargo run --release --example bulk [-- --ops 300 --sites 3]
//! ```
//!
//! One line per run:
//! `bulk mode=<budget|none> ops=<N> sites=<S> limit=<rate>/s wall=<s> ideal=<s> ratio=<wall/ideal> rate_limited=<429s received> failed=<n> duplicates=<n>`,
//! where `ideal` is the time the limit itself imposes: the job's requests (a create each and a
//! login per site) less the burst, at the limit's rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use comm100::prelude::*;
use comm100_sandbox::{RateLimit, Sandbox, DEFAULT_PASSWORD};

/// The sandbox's limit per address: a burst of 10, then one request every 20 ms (50/s).
const BURST: u32 = 10;
const EVERY: Duration = Duration::from_millis(20);
/// Creates in flight per site.
const WORKERS_PER_SITE: usize = 4;

struct Run {
    wall: Duration,
    rate_limited: usize,
    failed: usize,
    duplicates: usize,
}

async fn run(
    ops: usize,
    sites: i64,
    shared: Option<RateBudget>,
) -> Result<Run, Box<dyn std::error::Error>> {
    let mut builder = Sandbox::builder();
    for site in 1..=sites {
        builder = builder.agent(format!("bulk{site}@example.com"), DEFAULT_PASSWORD, site);
    }
    let sandbox = builder.start().await?;
    let controls = sandbox.controls();
    controls.set_rate_limit(Some(RateLimit::new(BURST, EVERY)));
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for site in 1..=sites {
        let mut builder = Comm100::builder()
            .urls(sandbox.portal_url(), sandbox.api_url())
            .password_login(format!("bulk{site}@example.com"), DEFAULT_PASSWORD, site)
            .retry(RetryPolicy::default().max_attempts(5));
        if let Some(budget) = &shared {
            builder = builder.rate_budget(budget.clone());
        }
        let c100 = builder.build()?;
        for _ in 0..WORKERS_PER_SITE {
            let (c100, next, failed) = (c100.clone(), next.clone(), failed.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops {
                        break;
                    }
                    let page = types::ConditionInput::new(
                        "CurrentPageUrl",
                        types::KnownConditionOperator::Contains,
                        format!("/bulk/{i}"),
                    );
                    let segment = types::CustomerSegmentInput::new(format!("bulk {i}"), [page]);
                    let created = match segment {
                        Ok(segment) => c100.create_customer_segment_reconciled(segment).await,
                        Err(invalid) => Err(invalid.into()),
                    };
                    if !matches!(
                        created,
                        Ok(CreateOutcome::Created(_) | CreateOutcome::FoundAfterFailure { .. })
                    ) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for worker in workers {
        worker.await?;
    }
    let wall = started.elapsed();
    let log = controls.requests();

    let mut names: HashMap<String, usize> = HashMap::new();
    for site in 1..=sites {
        for segment in controls.segments(site) {
            *names.entry(segment.name.unwrap_or_default()).or_default() += 1;
        }
    }
    let run = Run {
        wall,
        rate_limited: log.iter().filter(|r| r.status == Some(429)).count(),
        failed: failed.load(Ordering::Relaxed),
        duplicates: names.values().map(|n| n - 1).sum(),
    };
    sandbox.shutdown().await;
    Ok(run)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ops = 300;
    let mut sites = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ops" => ops = args.next().ok_or("--ops N")?.parse()?,
            "--sites" => sites = args.next().ok_or("--sites N")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let rate = 1.0 / EVERY.as_secs_f64();
    for (mode, budget) in [
        ("none", None),
        ("budget", Some(RateBudget::new(BURST, EVERY))),
    ] {
        let run = run(ops, sites, budget).await?;
        // What the limit imposes on the job's requests (a create each, and a login per site):
        // all but the burst wait for the refill.
        let ideal = (ops + sites as usize).saturating_sub(BURST as usize) as f64 / rate;
        println!(
            "bulk mode={mode} ops={ops} sites={sites} limit={rate:.0}/s wall={:.2} ideal={ideal:.2} ratio={:.3} rate_limited={} failed={} duplicates={}",
            run.wall.as_secs_f64(),
            run.wall.as_secs_f64() / ideal,
            run.rate_limited,
            run.failed,
            run.duplicates
        );
    }
    Ok(())
}
