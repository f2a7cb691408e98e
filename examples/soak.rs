//! Fault soak: a seeded random mix of create, get, list, update and delete against the sandbox,
//! with a seeded 10% of operations faulted, then a check that the sandbox's real state is what
//! the client believes it wrote.
//!
//! ```text
//! cargo run --release --example soak -- --ops 10000 [--seed 42]
//! ```
//!
//! Before each operation, with probability 0.1, one fault is set up: `500`, `503`, `429` with
//! `Retry-After: 0`, a connection dropped before the request is handled, one dropped after it
//! was handled (`fail_next(1, fault, None)`; the operation's first request takes it), or a
//! revocation of every token (`revoke_tokens()`).
//!
//! The client keeps a model of what should exist (id → name and fields). Creates go through
//! `Comm100::create_customer_segment_reconciled`: a create is sent once, and when its outcome is
//! unknown the site is listed once and the segment sent is looked for by its fingerprint; one
//! found is adopted into the model. GET, PUT and DELETE are retried by the client and must
//! succeed; a delete retried after a lost answer and found gone is reported done by the client. At the end the model and the sandbox
//! (`controls.segments(site)`) must hold the same ids with the same fields. It prints one line
//! per failed operation and then exactly:
//!
//! `soak ops=<n> faults=<n> retries=<n> failed_ops=<n> duplicates=<n> lost=<n> unknown=<n> state_matches=<bool>`
//!
//! where `unknown` counts creates whose outcome is still unknown at the end.
//!
//! `tests/soak.rs` runs 500 operations of the same code.

use std::collections::HashMap;
use std::time::Duration;

use comm100::prelude::*;
use comm100_sandbox::{Fault, Route, Sandbox, SandboxConfig};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// The seed used when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 20261125;

/// The kinds of operation in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `create_customer_segment`.
    Create,
    /// `get_customer_segment`.
    Get,
    /// `list_customer_segments`.
    List,
    /// `update_customer_segment`.
    Update,
    /// `delete_customer_segment`.
    Delete,
}

/// An operation that failed, and what became of it.
#[derive(Debug, Clone)]
pub struct FailedOp {
    /// Its position in the run.
    pub index: usize,
    /// What it was.
    pub kind: OpKind,
    /// The fault set up before it, if any.
    pub fault: Option<&'static str>,
    /// The error, as the client reported it.
    pub error: String,
    /// How it was reconciled.
    pub outcome: &'static str,
}

/// What a soak found.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Operations run (reconciling lists not counted).
    pub ops: usize,
    /// Faults injected: requests a queued fault hit, plus token revocations.
    pub faults: usize,
    /// Requests sent beyond one per client call, token requests excluded, from the request log.
    pub retries: usize,
    /// Operations that failed, each with its reason.
    pub failed: Vec<FailedOp>,
    /// Failed creates found applied on the server and adopted into the model.
    pub adopted: usize,
    /// Deletes that the client reported done by an earlier attempt (a `404` on a retry after an
    /// attempt that got no answer).
    pub deletes_done_earlier: usize,
    /// Segments in the sandbox whose unique name appears more than once (extra copies).
    pub duplicates: usize,
    /// Acknowledged segments in the model that are missing from the sandbox.
    pub lost: usize,
    /// Creates whose outcome is still unknown at the end (the reconciling create could not
    /// tell, or found more than one candidate).
    pub unknown: usize,
    /// Segments in the sandbox that the model does not know.
    pub strays: usize,
    /// Segments in both whose fields differ.
    pub field_mismatches: usize,
    /// Reads (get or list) that disagreed with the model during the run.
    pub stale_reads: usize,
    /// Operations that had a fault set up before them (`faults` counts what the sandbox saw).
    pub faulted_ops: usize,
    /// Whether the sandbox's state is exactly the model.
    pub state_matches: bool,
}

impl SoakReport {
    /// The summary line.
    pub fn summary(&self) -> String {
        format!(
            "soak ops={} faults={} retries={} failed_ops={} duplicates={} lost={} unknown={} state_matches={}",
            self.ops,
            self.faults,
            self.retries,
            self.failed.len(),
            self.duplicates,
            self.lost,
            self.unknown,
            self.state_matches
        )
    }
}

/// What the model says a segment holds.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    name: String,
    description: String,
    is_enable: bool,
    value: String,
}

impl Expected {
    fn body(&self) -> types::builder::CustomerSegmentInput {
        types::CustomerSegmentInput::builder()
            .name(self.name.as_str())
            .description(self.description.clone())
            .is_enable(self.is_enable)
            .conditions(vec![types::ConditionInput::builder()
                .field("CurrentPageUrl")
                .operator(types::KnownConditionOperator::Include)
                .value(self.value.clone())
                .try_into()
                .expect("a valid condition")])
    }

    fn from_sdk(s: &types::CustomerSegment) -> Self {
        Self {
            name: s.name.clone().unwrap_or_default(),
            description: s.description.clone().unwrap_or_default(),
            is_enable: s.is_enable.unwrap_or(false),
            value: s
                .conditions
                .as_deref()
                .and_then(<[_]>::first)
                .and_then(|c| c.value.clone())
                .unwrap_or_default(),
        }
    }

    fn from_json(v: &serde_json::Value) -> Self {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Self {
            name: s("name"),
            description: s("description"),
            is_enable: v["isEnable"].as_bool().unwrap_or(false),
            value: v["conditions"][0]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// The faults of the mix, drawn uniformly when an operation is faulted.
const FAULTS: [&str; 6] = [
    "500",
    "503",
    "429",
    "drop_before_handling",
    "drop_after_handling",
    "revoke_tokens",
];

/// Runs `ops` operations with `seed` against a fresh sandbox and checks the end state.
pub async fn run_soak(ops: usize, seed: u64) -> Result<SoakReport, Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start_with(SandboxConfig::default()).await?;
    let controls = sandbox.controls();
    let site = comm100_sandbox::DEFAULT_SITE_ID;
    let c100 = comm100::Comm100::builder()
        .urls(sandbox.portal_url(), sandbox.api_url())
        .password_login(
            comm100_sandbox::DEFAULT_EMAIL,
            comm100_sandbox::DEFAULT_PASSWORD,
            site,
        )
        .retry(
            comm100::RetryPolicy::default()
                .max_attempts(5)
                .initial_backoff(Duration::from_millis(5)),
        )
        .refresh_buffer(Duration::from_secs(60))
        // The soak revokes every token every few dozen operations, far more often than a real
        // server, and checks the state, not the pacing of logins: a revocation is answered with
        // a login at once. The default interval (one forced login a minute) is tested in
        // tests/auth.rs.
        .forced_refresh_interval(Duration::ZERO)
        .build()?;
    // Log in first, so that a fault set up before the first operation hits that operation.
    c100.login().await?;
    let client = c100.client();
    let mut rng = StdRng::seed_from_u64(seed);
    // Ids in the order they were acknowledged, so that picking one is reproducible.
    let mut model: Vec<(Uuid, Expected)> = Vec::new();
    let mut report = SoakReport {
        ops,
        ..SoakReport::default()
    };
    let mut revocations = 0;
    // Client calls made, reconciling ones included: each is one request if nothing is retried.
    let mut calls = 0usize;

    for index in 0..ops {
        let fault = if rng.random_bool(0.1) {
            let name = FAULTS[rng.random_range(0..FAULTS.len())];
            let fault = match name {
                "500" => Some(Fault::Status(500)),
                "503" => Some(Fault::Status(503)),
                "429" => Some(Fault::RateLimited {
                    retry_after: "0".into(),
                }),
                "drop_before_handling" => Some(Fault::DropBeforeHandling),
                "drop_after_handling" => Some(Fault::DropAfterHandling),
                _ => None,
            };
            match fault {
                Some(fault) => controls.fail_next(1, fault, None),
                None => {
                    controls.revoke_tokens();
                    revocations += 1;
                }
            }
            report.faulted_ops += 1;
            Some(name)
        } else {
            None
        };
        let roll = rng.random_range(0..100);
        let kind = match roll {
            _ if model.is_empty() => OpKind::Create,
            0..25 => OpKind::Create,
            25..50 => OpKind::Get,
            50..65 => OpKind::List,
            65..85 => OpKind::Update,
            _ => OpKind::Delete,
        };
        let pick = if model.is_empty() {
            0
        } else {
            rng.random_range(0..model.len())
        };
        let fail = |error: String, outcome: &'static str| FailedOp {
            index,
            kind,
            fault,
            error,
            outcome,
        };

        match kind {
            OpKind::Create => {
                let expected = Expected {
                    name: format!("soak-{seed}-{index}"),
                    description: format!("created by op {index}"),
                    is_enable: index.is_multiple_of(2),
                    value: format!("page-{index}"),
                };
                calls += 1;
                // A create is sent once; when its outcome is unknown, the reconciling create
                // lists the site once and looks for what it sent.
                match c100
                    .create_customer_segment_reconciled(expected.body())
                    .await
                {
                    Ok(CreateOutcome::Created(created)) => model.push((created.id, expected)),
                    Ok(CreateOutcome::FoundAfterFailure { segment, error }) => {
                        calls += 1;
                        report.adopted += 1;
                        model.push((segment.id, Expected::from_sdk(&segment)));
                        report.failed.push(fail(
                            describe(&error),
                            "applied on the server; found and adopted",
                        ));
                    }
                    Ok(CreateOutcome::NotCreated(error)) => {
                        calls += usize::from(error.outcome().may_have_acted());
                        report
                            .failed
                            .push(fail(describe(&error), "not applied on the server"));
                    }
                    Ok(CreateOutcome::Ambiguous { error, .. }) => {
                        calls += 1;
                        report.unknown += 1;
                        report.failed.push(fail(describe(&error), "ambiguous"));
                    }
                    Ok(other) => return Err(format!("a new create outcome: {other:?}").into()),
                    Err(error) => {
                        calls += 1;
                        report.unknown += 1;
                        report
                            .failed
                            .push(fail(describe(&error), "outcome unknown"));
                    }
                }
            }
            OpKind::Get => {
                let (id, expected) = &model[pick];
                calls += 1;
                match client.get_customer_segment().id(*id).call().await {
                    Ok(got) => {
                        if Expected::from_sdk(&got) != *expected {
                            report.stale_reads += 1;
                        }
                    }
                    Err(e) => report.failed.push(fail(describe(&e), "read only")),
                }
            }
            OpKind::List => {
                calls += 1;
                match client.list_customer_segments().call().await {
                    Ok(listed) => {
                        if listed.len() != model.len() {
                            report.stale_reads += 1;
                        }
                    }
                    Err(e) => report.failed.push(fail(describe(&e), "read only")),
                }
            }
            OpKind::Update => {
                let (id, expected) = &mut model[pick];
                let mut updated = expected.clone();
                updated.description = format!("updated by op {index}");
                updated.is_enable = !updated.is_enable;
                updated.value = format!("page-{index}-u");
                calls += 1;
                // A PUT is idempotent: sent again after a dropped connection, it sets the same
                // fields, so the client retries it and the model takes the new fields.
                match client
                    .update_customer_segment()
                    .id(*id)
                    .body(updated.body())
                    .call()
                    .await
                {
                    Ok(_) => *expected = updated,
                    Err(e) => {
                        // Unknown whether it was applied: read the segment back into the model.
                        calls += 1;
                        let now = client.get_customer_segment().id(*id).call().await?;
                        *expected = Expected::from_sdk(&now);
                        report
                            .failed
                            .push(fail(describe(&e), "read back into the model"));
                    }
                }
            }
            OpKind::Delete => {
                let id = model[pick].0;
                calls += 1;
                // `send`, not `call`: the response's headers say whether an earlier attempt did it.
                match client.delete_customer_segment().id(id).send().await {
                    Ok(deleted) => {
                        // A retry after an attempt that got no answer found the segment gone:
                        // the client reports the delete done by that attempt.
                        let earlier =
                            deleted
                                .headers()
                                .get(comm100::OUTCOME_HEADER)
                                .is_some_and(|v| {
                                    v.as_bytes() == comm100::DONE_BY_EARLIER_ATTEMPT.as_bytes()
                                });
                        report.deletes_done_earlier += usize::from(earlier);
                        model.remove(pick);
                    }
                    Err(e) => {
                        calls += 1;
                        let outcome = match client.get_customer_segment().id(id).call().await {
                            Ok(_) => "still on the server; kept in the model",
                            Err(g) if *g.kind() == comm100::ErrorKind::NotFound => {
                                model.remove(pick);
                                "gone from the server; removed from the model"
                            }
                            Err(g) => return Err(g.into()),
                        };
                        report.failed.push(fail(describe(&e.into()), outcome));
                    }
                }
            }
        }
    }

    // The end check: the sandbox's own state against the model.
    let real = controls.segments(site);
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for s in &real {
        *by_name
            .entry(s["name"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    report.duplicates = by_name.values().map(|n| n - 1).sum();
    let real: HashMap<Uuid, Expected> = real
        .iter()
        .filter_map(|s| Some((s["id"].as_str()?.parse().ok()?, Expected::from_json(&s.raw))))
        .collect();
    let model: HashMap<Uuid, Expected> = model.into_iter().collect();
    report.lost = model.keys().filter(|id| !real.contains_key(id)).count();
    report.strays = real.keys().filter(|id| !model.contains_key(id)).count();
    report.field_mismatches = model
        .iter()
        .filter(|(id, e)| real.get(id).is_some_and(|r| r != *e))
        .count();
    report.state_matches = report.lost == 0 && report.strays == 0 && report.field_mismatches == 0;

    // Retries are counted from the sandbox's request log, not from tracing: every request but
    // the token requests, less one per client call. A request re-sent after a 401 (token
    // revoked) counts as a retry too.
    let requests = controls.requests();
    let api_requests = requests
        .iter()
        .filter(|r| r.route != Some(Route::Token))
        .count();
    report.retries = api_requests.saturating_sub(calls);
    report.faults = controls.faults_injected() + revocations;

    drop(c100);
    sandbox.shutdown().await;
    Ok(report)
}

/// A short description of an error: its one-line `Display` (operation, status, code, message).
fn describe(e: &comm100::ApiError) -> String {
    e.to_string()
}

/// Prints one line per failed operation, then the summary.
pub fn print_report(report: &SoakReport) {
    for f in &report.failed {
        println!(
            "failed op={} kind={:?} fault={} outcome=\"{}\" error=\"{}\"",
            f.index,
            f.kind,
            f.fault.unwrap_or("none"),
            f.outcome,
            f.error
        );
    }
    println!(
        "soak details faulted_ops={} adopted={} deletes_done_earlier={} strays={} field_mismatches={} stale_reads={}",
        report.faulted_ops,
        report.adopted,
        report.deletes_done_earlier,
        report.strays,
        report.field_mismatches,
        report.stale_reads
    );
    println!("{}", report.summary());
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ops = 10_000;
    let mut seed = DEFAULT_SEED;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ops" => ops = args.next().ok_or("--ops N")?.parse()?,
            "--seed" => seed = args.next().ok_or("--seed N")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let report = run_soak(ops, seed).await?;
    print_report(&report);
    Ok(())
}
