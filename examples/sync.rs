//! A nightly sync job: make a site's customer segments what a desired list says. Creates what
//! is missing (the reconciling create: a create whose answer is lost is found, not repeated),
//! updates what differs while keeping everything else the server has, and deletes the
//! segments this job manages (a name prefix) that are no longer wanted.
//!
//! `cargo run --example sync` runs it twice against the embedded sandbox, the first time with
//! faults injected: the second run finds nothing to do.

use comm100::prelude::*;
use comm100_sandbox::{Fault, Route, Sandbox};

/// The segments this job manages all start with this; others are left alone.
const MANAGED: &str = "sync: ";

/// A segment as the job wants it.
struct Desired {
    name: &'static str,
    page: &'static str,
    enabled: bool,
}

const DESIRED: [Desired; 3] = [
    Desired {
        name: "sync: pricing",
        page: "/pricing",
        enabled: true,
    },
    Desired {
        name: "sync: checkout",
        page: "/checkout",
        enabled: true,
    },
    Desired {
        name: "sync: careers",
        page: "/careers",
        enabled: false,
    },
];

#[derive(Debug, Default)]
struct Report {
    created: usize,
    updated: usize,
    deleted: usize,
    unchanged: usize,
    /// Items to try again on the next run: the error, and whether a retry may succeed.
    failed: Vec<(String, ApiError)>,
}

/// Whether the live segment already says what `want` says (the rest is the server's own).
fn matches(live: &types::CustomerSegment, want: &Desired) -> bool {
    let value = live
        .conditions
        .as_deref()
        .and_then(<[_]>::first)
        .and_then(|c| c.value.as_deref());
    live.is_enable == Some(want.enabled) && value == Some(want.page)
}

async fn sync(c100: &Comm100) -> Result<Report, ApiError> {
    let client = c100.client();
    let live = client.list_customer_segments().call().await?;
    let mut report = Report::default();
    for want in &DESIRED {
        let mut same_name = live.iter().filter(|s| s.name.as_deref() == Some(want.name));
        let result = match (same_name.next(), same_name.next()) {
            (None, _) => {
                let on_page = types::ConditionInput::new(
                    "CurrentPageUrl",
                    types::KnownConditionOperator::Contains,
                    want.page,
                );
                let mut body = types::CustomerSegmentInput::new(want.name, [on_page])?;
                body.is_enable = Some(want.enabled);
                match c100.create_customer_segment_reconciled(body).await? {
                    CreateOutcome::NotCreated(e) => Err(e),
                    CreateOutcome::Ambiguous { error, .. } => Err(error),
                    _ => {
                        report.created += 1;
                        Ok(())
                    }
                }
            }
            (Some(live), None) if matches(live, want) => {
                report.unchanged += 1;
                Ok(())
            }
            (Some(live), None) => {
                // Update what the job owns; everything else goes back as the server sent it.
                let mut segment = live.clone();
                segment.is_enable = Some(want.enabled);
                if let Some(first) = segment.conditions.as_mut().and_then(|c| c.first_mut()) {
                    first.value = Some(want.page.into());
                }
                let update = client
                    .update_customer_segment()
                    .id(segment.id)
                    .body(segment);
                update.call().await.map(|_| report.updated += 1)
            }
            (Some(_), Some(_)) => {
                eprintln!(
                    "{}: two live segments share the name; left alone",
                    want.name
                );
                continue;
            }
        };
        if let Err(e) = result {
            // The daily limit stops the job: every further call would be refused until tomorrow.
            if e.kind() == &ErrorKind::DailyLimit {
                return Err(e);
            }
            report.failed.push((want.name.into(), e));
        }
    }
    let unwanted = live.iter().filter(|s| {
        let name = s.name.as_deref().unwrap_or_default();
        name.starts_with(MANAGED) && !DESIRED.iter().any(|d| d.name == name)
    });
    for segment in unwanted {
        match client.delete_customer_segment().id(segment.id).call().await {
            // Gone already is what the job wanted.
            Ok(()) => report.deleted += 1,
            Err(e) if e.kind() == &ErrorKind::NotFound => {}
            Err(e) => report
                .failed
                .push((segment.name.clone().unwrap_or_default(), e)),
        }
    }
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder()
        .segment(
            10000,
            serde_json::json!({"name": "sync: careers", "isEnable": true,
            "conditions": [{"field": "CurrentPageUrl", "operator": "contains", "value": "/jobs"}],
            "customField": "kept"}),
        )
        .segment(
            10000,
            serde_json::json!({"name": "sync: old campaign",
            "conditions": [{"field": "CurrentPageUrl", "operator": "contains", "value": "/old"}]}),
        )
        .segment(
            10000,
            serde_json::json!({"name": "hand-made",
            "conditions": [{"field": "CurrentPageUrl", "operator": "contains", "value": "/"}]}),
        )
        .start()
        .await?;
    let controls = sandbox.controls();
    let c100 = Comm100::builder()
        .urls(sandbox.portal_url(), sandbox.api_url())
        .password_login(
            comm100_sandbox::DEFAULT_EMAIL,
            comm100_sandbox::DEFAULT_PASSWORD,
            10000,
        )
        .build()?;
    // The first run meets a lost answer on a create and a 503 on the update.
    controls.fail_next(1, Fault::DropAfterHandling, Some(Route::Create));
    controls.fail_next(1, Fault::Status(503), Some(Route::Update));
    for run in 1..=2 {
        let report = sync(&c100).await?;
        println!(
            "run {run}: created={} updated={} deleted={} unchanged={} failed={}",
            report.created,
            report.updated,
            report.deleted,
            report.unchanged,
            report.failed.len()
        );
        for (name, e) in &report.failed {
            println!("  {name}: {e} (retry next run: {})", e.is_retryable());
        }
    }
    let names: Vec<String> = controls
        .segments(10000)
        .iter()
        .filter_map(|s| s.name.clone())
        .collect();
    println!("on the site: {names:?}");
    let careers = controls
        .segments(10000)
        .into_iter()
        .find(|s| s.name.as_deref() == Some("sync: careers"));
    let kept = careers.is_some_and(|s| s.raw["customField"] == "kept");
    println!("a field the job does not know survived its update: {kept}");
    Ok(())
}
