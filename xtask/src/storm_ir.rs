//! `cargo xtask storm-ir [--calls N]`: where a token-refresh storm's work goes, in instructions.
//!
//! Runs `benches/storm.rs` (the expiry storm of `examples/refresh_storm.rs`, 1000 callers,
//! with the sandbox on a thread and runtime of its own) under
//! `valgrind --tool=callgrind --separate-threads=yes`, once per scenario (`expiry`: the token
//! is stale and one refresh is shared; `fresh`: the same storm on a fresh token), and prints
//! one line per scenario with the instructions of each side: thread 1 runs the callers (the
//! `block_on` of the client's runtime), thread 2 the sandbox (the bench creates it first), the
//! others are the client runtime's workers (connection tasks, the spawned login). Then the
//! parts that explain it: the callers' futures, reqwest's request futures, hyper-util's pool
//! checkouts and connects, the sandbox's connections, token checks and request log, and how
//! often a `std` mutex was found locked (`lock_contended`), by the function that locked it.
//!
//! The counts include the setup (client built, login); the storm dominates them. Under
//! callgrind the threads take turns, so the number of connections the callers open can differ
//! from a native run; it is printed (`connections`, counted as the sandbox's served
//! connections) so that runs are compared at equal connections.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::callgrind::{self, Profile};

fn progress(message: impl AsRef<str>) {
    eprintln!("storm-ir: {}", message.as_ref());
}

/// Runs the task from the workspace root; returns the `storm_ir` lines.
pub fn run(root: &Path, args: &[String]) -> Result<String, String> {
    let calls: usize = match args.iter().position(|a| a == "--calls") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .ok_or("--calls <number>")?,
        None => 1000,
    };
    if let Some(skipped) = callgrind::skip_without_valgrind("storm-ir") {
        return Ok(skipped);
    }
    progress("building benches/storm.rs in release with line tables");
    let (bench, out_dir) = callgrind::build_bench(root, "storm")?;
    let mut report = String::new();
    for scenario in ["expiry", "fresh"] {
        let base = out_dir.join(format!("storm-{scenario}-{calls}.out"));
        let printed = callgrind::run(&bench, &base, ("STORM", &format!("{scenario}:{calls}")))?;
        progress(printed.trim());
        let mut threads = Vec::new();
        for n in 1.. {
            let file = callgrind::thread_file(&base, n);
            if !file.exists() {
                break;
            }
            threads.push(callgrind::read(&file)?);
        }
        if threads.len() < 2 {
            return Err(format!("callgrind wrote {} thread files", threads.len()));
        }
        report.push_str(&describe(scenario, calls, &threads));
    }
    Ok(report)
}

/// The inclusive cost of the function named `name` (exactly: a nested closure's name contains
/// its parent's).
fn inclusive(profile: &Profile, name: &str) -> u64 {
    profile.inclusive.get(name).copied().unwrap_or(0)
}

/// How many calls go from functions whose name contains `caller` to ones containing `callee`.
fn call_count(profile: &Profile, caller: &str, callee: &str) -> u64 {
    profile
        .call_counts
        .iter()
        .filter(|((from, to), _)| from.contains(caller) && to.contains(callee))
        .map(|(_, &n)| n)
        .sum()
}

fn describe(scenario: &str, calls: usize, threads: &[Profile]) -> String {
    let (callers, sandbox) = (&threads[0], &threads[1]);
    let workers: u64 = threads[2..].iter().map(|t| t.total).sum();
    let m = |n: u64| format!("{:.1}M", n as f64 / 1e6);
    let mut out = String::new();
    writeln!(
        out,
        "storm_ir {scenario} calls={calls} client_main={} client_workers={} sandbox={} connections={}",
        m(callers.total),
        m(workers),
        m(sandbox.total),
        call_count(sandbox, "", "hyper::server::conn::http1::Builder::serve_connection"),
    )
    .unwrap();
    let parts: [(&str, &Profile, &str); 9] = [
        (
            "callers' futures (join_all)",
            callers,
            "<futures_util::future::join_all::JoinAll<F> as core::future::future::Future>::poll",
        ),
        (
            "  the SDK's retry loop, reqwest inside it",
            callers,
            "comm100::hooks::execute::{{closure}}",
        ),
        (
            "  reqwest's request futures",
            callers,
            "<reqwest::async_impl::client::Pending as core::future::future::Future>::poll",
        ),
        (
            "  hyper-util pool checkouts dropped (waiter lists)",
            callers,
            "<hyper_util::client::legacy::pool::Checkout<T,K> as core::ops::drop::Drop>::drop",
        ),
        (
            "  new connections (connect)",
            callers,
            "<hyper_util::common::lazy::Lazy<F,R> as core::future::future::Future>::poll",
        ),
        (
            "sandbox: connections served",
            sandbox,
            "comm100_sandbox::server::serve::{{closure}}::{{closure}}",
        ),
        (
            "  one request through the sandbox",
            sandbox,
            "comm100_sandbox::server::handle_request::{{closure}}",
        ),
        (
            "  the token checked (jwt::verify)",
            sandbox,
            "comm100_sandbox::jwt::verify",
        ),
        (
            "  the token's id read again for the log (jwt::peek_jti)",
            sandbox,
            "comm100_sandbox::jwt::peek_jti",
        ),
    ];
    for (label, thread, name) in parts {
        writeln!(out, "  {:>8}  {label}", m(inclusive(thread, name))).unwrap();
    }
    let log = [
        "comm100_sandbox::server::redacted_headers",
        "comm100_sandbox::state::Inner::record",
        "comm100_sandbox::server::log_final",
    ]
    .iter()
    .map(|f| inclusive(sandbox, f))
    .sum();
    writeln!(
        out,
        "  {:>8}    the request log (headers copied, records written)",
        m(log)
    )
    .unwrap();
    let mut contended: HashMap<&str, u64> = HashMap::new();
    for thread in threads {
        for ((from, to), &n) in &thread.call_counts {
            if to.contains("lock_contended") {
                *contended.entry(from.as_str()).or_default() += n;
            }
        }
    }
    let mut contended: Vec<_> = contended.into_iter().collect();
    contended.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let token_cache_locks = call_count(callers, "", "comm100::auth::cache::Shared::lock");
    writeln!(
        out,
        "  token cache locks taken on the callers' thread: {token_cache_locks}; mutexes found locked: {}",
        if contended.is_empty() {
            "none".to_string()
        } else {
            contended
                .iter()
                .map(|(f, n)| format!("{n} in {f}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    )
    .unwrap();
    out
}
