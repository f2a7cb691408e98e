//! The quickstart: `cargo run --example quickstart`.
//!
//! Without `COMM100_*` in the environment it starts the sandbox in-process, with tokens that
//! live three seconds so that a refresh visibly happens, then logs in and creates, lists, gets,
//! updates and deletes a segment.
//!
//! With `COMM100_PORTAL` (or `COMM100_PORTAL_URL` + `COMM100_API_URL`), `COMM100_EMAIL`,
//! `COMM100_PASSWORD` and `COMM100_SITE_ID` set, it runs against that server and only lists;
//! `-- --write` also creates, gets, updates and deletes a segment of its own, and deletes it
//! even when a later step fails.

use std::time::{Duration, SystemTime};

use comm100::prelude::*;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let write = std::env::args().any(|a| a == "--write");
    let configured = [
        "COMM100_PORTAL",
        "COMM100_PORTAL_URL",
        "COMM100_API_URL",
        "COMM100_EMAIL",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    if configured {
        against_env(write).await
    } else {
        against_sandbox().await
    }
}

async fn against_sandbox() -> Result<(), BoxError> {
    let sandbox = comm100_sandbox::Sandbox::builder()
        .token_lifetime(Duration::from_secs(3))
        .start()
        .await?;
    let controls = sandbox.controls();
    println!(
        "sandbox     started at {} (tokens live 3 s)",
        sandbox.api_url()
    );

    let c100 = Comm100::builder()
        .urls(sandbox.portal_url(), sandbox.api_url())
        .password_login(
            comm100_sandbox::DEFAULT_EMAIL,
            comm100_sandbox::DEFAULT_PASSWORD,
            comm100_sandbox::DEFAULT_SITE_ID,
        )
        .refresh_buffer(Duration::from_secs(2))
        .build()?;
    let client = c100.client();

    let expires = c100.login().await?;
    println!(
        "login       as {} → {}",
        comm100_sandbox::DEFAULT_EMAIL,
        describe(&c100.token().await?, expires)
    );

    let created = client
        .create_customer_segment()
        .body(example_segment("Pricing visitors"))
        .send()
        .await?;
    let location = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let segment = created.into_inner();
    let id = segment.id;
    println!(
        "create      {} \"{}\" color {} → {location}",
        id,
        name(&segment),
        color(&segment)
    );

    let all = client.list_customer_segments().call().await?;
    println!("list        {} segment(s): {}", all.len(), names(&all));

    let mut got = client.get_customer_segment().id(id).call().await?;
    println!(
        "get         {} \"{}\", {} condition(s)",
        id,
        name(&got),
        got.conditions.as_ref().map_or(0, Vec::len)
    );

    // Let the token come within the refresh buffer: the next call logs in again by itself.
    let before = c100.token().await?.id();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // Get, modify, put: the segment read converts into the update's body, with everything the
    // server sent, checked before it is sent.
    got.name = Some("Pricing visitors (enabled)".into());
    got.is_enable = Some(true);
    let updated = client
        .update_customer_segment()
        .id(id)
        .body(got)
        .call()
        .await?;
    let after = c100.token().await?;
    let refreshed = before != after.id();
    println!(
        "update      {} \"{}\" enabled={:?}{}",
        id,
        name(&updated),
        updated.is_enable,
        if refreshed {
            format!(
                " (token refreshed → {})",
                describe(&after, after.expires_at())
            )
        } else {
            String::new()
        }
    );

    let deleted = client.delete_customer_segment().id(id).send().await?;
    println!("delete      {} → HTTP {}", id, deleted.status().as_u16());

    let missing = client.get_customer_segment().id(id).call().await.err();
    let gone = missing.is_some_and(|e| e.kind() == &ErrorKind::NotFound);
    println!(
        "get         {} → {}",
        id,
        if gone {
            "404 not found, as expected"
        } else {
            "still there?"
        }
    );

    println!(
        "summary     5 operations against the embedded sandbox, {} token requests ({} refresh), segment left behind: {}",
        controls.token_requests(),
        controls.token_requests().saturating_sub(1),
        !controls.segments(comm100_sandbox::DEFAULT_SITE_ID).is_empty()
    );
    sandbox.shutdown().await;
    Ok(())
}

async fn against_env(write: bool) -> Result<(), BoxError> {
    let c100 = Comm100::from_env()?;
    println!("server      {}", c100.endpoints().api_url());
    let expires = c100.login().await?;
    println!("login       → {}", describe(&c100.token().await?, expires));
    let all = c100.client().list_customer_segments().call().await?;
    println!("list        {} segment(s): {}", all.len(), names(&all));
    if !write {
        println!("summary     listed {} segment(s); run with -- --write to also create, get, update and delete one", all.len());
        return Ok(());
    }

    let name = format!("comm100-rs quickstart {}", uuid::Uuid::new_v4());
    let created = c100
        .client()
        .create_customer_segment()
        .body(example_segment(&name))
        .call()
        .await?;
    let id = created.id;
    println!("create      {id} \"{name}\"");
    let steps = async {
        let mut got = c100.client().get_customer_segment().id(id).call().await?;
        println!("get         {id} \"{}\"", self::name(&got));
        got.name = Some(format!("{name} (updated)"));
        let updated = c100
            .client()
            .update_customer_segment()
            .id(id)
            .body(got)
            .call()
            .await?;
        println!("update      {id} \"{}\"", self::name(&updated));
        Ok::<(), BoxError>(())
    }
    .await;
    // Clean up whatever happened above.
    let deleted = c100.client().delete_customer_segment().id(id).send().await;
    match &deleted {
        Ok(r) => println!("delete      {id} → HTTP {}", r.status().as_u16()),
        Err(e) => eprintln!("delete      {id} FAILED: {e}; delete it by hand"),
    }
    steps?;
    deleted?;
    println!(
        "summary     listed, created, got, updated and deleted one segment; nothing left behind"
    );
    Ok(())
}

fn example_segment(name: &str) -> types::builder::CustomerSegmentInput {
    types::CustomerSegmentInput::builder()
        .name(name)
        .conditions(vec![types::ConditionInput::builder()
            .field("CurrentPageUrl")
            .operator(types::KnownConditionOperator::Contains)
            .value("/pricing")
            .try_into()
            .expect("a complete condition")])
}

fn describe(token: &comm100::Token, expires: Option<SystemTime>) -> String {
    let id = token.id().unwrap_or_else(|| "(no jti)".into());
    match expires.and_then(|e| e.duration_since(SystemTime::now()).ok()) {
        Some(left) => format!("token {id}, expires in {:.1} s", left.as_secs_f64()),
        None => format!("token {id}, expiry unknown"),
    }
}

fn names(segments: &[types::CustomerSegment]) -> String {
    segments
        .iter()
        .map(|s| format!("\"{}\"", name(s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A server may send a segment without a name: it reads as empty.
fn name(segment: &types::CustomerSegment) -> &str {
    segment.name.as_deref().unwrap_or("")
}

fn color(segment: &types::CustomerSegment) -> &str {
    segment.color.as_deref().unwrap_or("-")
}
