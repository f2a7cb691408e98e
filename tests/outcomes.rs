//! The outcome rules as a matrix: every operation (the five generated segment operations, a raw
//! `GET` and a raw `POST`) against every sandbox fault and every token-host mode. The modes come
//! from `Fault::examples()` and `TokenHost::examples()`, which name every variant, so a mode
//! added to the sandbox joins the matrix without an edit here. Each pair runs with each of the
//! three ways an attempt is bounded: the client the builder makes, a client of the user's with
//! its timeout stated, and one whose timeout the SDK does not know (its own timer).
//!
//! Each cell runs on a sandbox of its own and checks, from the sandbox's own log and state:
//! * at most one server-side effect per call;
//! * the outcome the caller gets agrees with what the server did (a success or `Performed`:
//!   done; `NotSent` or `Refused`: not done, and `NotSent` sent nothing to the API; `Unknown`:
//!   either), and both `is_retryable`s (progenitor's in method syntax and the trait's) are false
//!   whenever sending again could do it twice;
//! * no secret in any `Display`, `Debug`, `message()` or log line;
//! * the call ends within its budget.
//!
//! The cells are listed on stdout (`cargo test --test outcomes -- --nocapture`).
// `ApiErrorExt` is deprecated in favour of `comm100::ApiError`, and kept for a release: these
// checks hold for it too.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comm100::generated::ClientCustomerSegmentsExt as _;
use comm100::{ApiError, ApiErrorExt, Comm100, ErrorKind, Outcome, RetryPolicy};
use comm100_sandbox::{
    Fault, Route, Sandbox, TokenHost, DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID,
};
use serde_json::json;

mod common;

/// The budget of every call; a cell fails if its call takes longer than this and a margin for
/// a loaded machine.
const BUDGET: Duration = Duration::from_secs(2);
const MARGIN: Duration = Duration::from_secs(3);
/// The login timeout of a cell that tests the token host (its call logs in), and of one that
/// tests a fault (it logs in before, and a loaded machine must not fail that login).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(1);
const SETUP_LOGIN_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    List,
    Get,
    Create,
    Update,
    Delete,
    RawGet,
    RawPost,
}

const OPS: [Op; 7] = [
    Op::List,
    Op::Get,
    Op::Create,
    Op::Update,
    Op::Delete,
    Op::RawGet,
    Op::RawPost,
];

impl Op {
    fn route(self) -> Route {
        match self {
            Op::List | Op::RawGet => Route::List,
            Op::Get => Route::Get,
            Op::Create | Op::RawPost => Route::Create,
            Op::Update => Route::Update,
            Op::Delete => Route::Delete,
        }
    }

    /// Whether sending it twice does what sending it once does.
    fn idempotent(self) -> bool {
        !matches!(self, Op::Create | Op::RawPost)
    }

    fn writes(self) -> bool {
        matches!(self, Op::Create | Op::RawPost | Op::Update | Op::Delete)
    }
}

/// The HTTP client a cell's `Comm100` sends with: each ends an attempt by the budget another
/// way (see `AttemptTimeout` in src/hooks.rs).
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// The client the builder makes: its own timeout, and the budget's when that is shorter.
    Own,
    /// A client of the user's, with its timeout stated to the builder.
    Stated,
    /// A client of the user's with no timeout the SDK knows: the SDK's timer.
    Unknown,
}

const TRANSPORTS: [Transport; 3] = [Transport::Own, Transport::Stated, Transport::Unknown];

/// What a cell set up.
#[derive(Debug, Clone)]
enum Mode {
    Fault(Fault),
    TokenHost(TokenHost),
}

/// The name of the segment a create makes, and the description an update writes.
const CREATED: &str = "matrix-created";
const UPDATED: &str = "matrix-updated";

struct Cell {
    line: String,
    problems: Vec<String>,
    shown: Vec<String>,
}

async fn run_cell(op: Op, mode: Mode, transport: Transport) -> Cell {
    let sandbox = Sandbox::builder()
        .segment(
            DEFAULT_SITE_ID,
            json!({"name": "seeded", "description": "before",
                   "conditions": [{"field": "CurrentPageUrl", "operator": "include", "value": "x"}]}),
        )
        .start()
        .await
        .expect("a sandbox");
    let ctl = sandbox.controls();
    let seeded = ctl.segments(DEFAULT_SITE_ID)[0].id;
    let builder = match transport {
        Transport::Own => Comm100::builder(),
        Transport::Stated => Comm100::builder()
            .http_client(common::users_client())
            .timeout(Duration::from_secs(15)),
        Transport::Unknown => Comm100::builder().http_client(common::users_client()),
    };
    let c100 = builder
        .urls(sandbox.portal_url(), sandbox.api_url())
        .password_login(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID)
        .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(1)))
        .operation_timeout(BUDGET)
        .login_timeout(match mode {
            Mode::Fault(_) => SETUP_LOGIN_TIMEOUT,
            Mode::TokenHost(_) => LOGIN_TIMEOUT,
        })
        .max_response_body(256 * 1024)
        .build()
        .unwrap();
    match &mode {
        Mode::Fault(fault) => {
            // Logged in first, so that the fault meets the operation and not the login.
            c100.login().await.expect("a login");
            ctl.fail_next(1, fault.clone(), Some(op.route()));
        }
        Mode::TokenHost(host) => ctl.set_token_host(host.clone()),
    }
    ctl.clear_requests();

    let started = Instant::now();
    let result = call(&c100, op, seeded).await;
    let elapsed = started.elapsed();

    // What the server did, from its own state.
    let segments = ctl.segments(DEFAULT_SITE_ID);
    let created = segments
        .iter()
        .filter(|s| s.name.as_deref() == Some(CREATED))
        .count();
    let seeded_now = segments.iter().find(|s| s.id == seeded);
    let effects = match op {
        Op::Create | Op::RawPost => created,
        Op::Update => {
            usize::from(seeded_now.is_some_and(|s| s.description.as_deref() == Some(UPDATED)))
        }
        Op::Delete => usize::from(seeded_now.is_none()),
        _ => 0,
    };
    let api_requests = ctl
        .requests()
        .iter()
        .filter(|r| r.route.is_some_and(|r| r != Route::Token))
        .count();

    let mut problems = Vec::new();
    let mut shown = Vec::new();
    if created > 1 {
        problems.push(format!("{created} segments created by one call"));
    }
    if elapsed > BUDGET + MARGIN {
        problems.push(format!("took {elapsed:?}, over the budget of {BUDGET:?}"));
    }
    let summary = match result {
        Ok(()) => {
            if op.writes() && effects != 1 {
                problems.push("a success, but the server did not do it".into());
            }
            "ok".to_string()
        }
        Err(failure) => {
            // A generated operation's error is checked as progenitor returns it (its inherent
            // `is_retryable`, which method syntax picks, and the deprecated trait's), then as
            // the crate's `ApiError`; a raw call returns `ApiError` itself.
            let error = match failure {
                Failure::Generated(e) => {
                    let progenitor_retryable = e.is_retryable();
                    let trait_retryable = ApiErrorExt::is_retryable(&e);
                    shown.extend([e.to_string(), format!("{e:?}"), e.message()]);
                    let error = ApiError::from(e);
                    if progenitor_retryable != error.is_retryable()
                        && error.status().is_none_or(|s| s != 500)
                    {
                        problems.push(format!(
                            "progenitor's is_retryable says {progenitor_retryable}, ApiError's {}",
                            error.is_retryable()
                        ));
                    }
                    if trait_retryable != error.is_retryable() {
                        problems.push("the trait's is_retryable disagrees with ApiError's".into());
                    }
                    error
                }
                Failure::Raw(e) => e,
            };
            let outcome = error.outcome();
            let retryable = error.is_retryable();
            let twice_unsafe =
                outcome == Outcome::Performed || (outcome == Outcome::Unknown && !op.idempotent());
            if twice_unsafe && retryable {
                problems.push(format!("{outcome} but retryable"));
            }
            match outcome {
                Outcome::NotSent | Outcome::Refused if effects > 0 => {
                    problems.push(format!("{outcome}, but the server did it"));
                }
                Outcome::Performed if op.writes() && effects == 0 => {
                    problems.push("performed, but the server did not do it".into());
                }
                Outcome::NotSent if api_requests > 0 => {
                    problems.push(format!("not sent, but {api_requests} API requests arrived"));
                }
                _ => {}
            }
            problems.extend(kind_problems(&error));
            shown.extend([
                error.to_string(),
                format!("{error:?}"),
                error.message().to_string(),
            ]);
            format!(
                "err kind={:?} outcome={outcome} retryable={retryable} status={:?}",
                error.kind(),
                error.status().map(|s| s.as_u16()),
            )
        }
    };
    // The tokens the sandbox saw, to look for in everything shown.
    for record in ctl.requests() {
        for (name, value) in &record.headers {
            if name.eq_ignore_ascii_case("authorization") {
                shown.push(format!("TOKEN:{value}"));
            }
        }
    }
    let line = format!(
        "cell op={op:?} transport={transport:?} mode={mode:?} {summary} effects={effects} api_requests={api_requests} elapsed_ms={}",
        elapsed.as_millis()
    );
    drop(c100);
    sandbox.shutdown().await;
    Cell {
        line,
        problems,
        shown,
    }
}

/// How a call failed: a generated operation's error as progenitor returns it, or a raw call's.
enum Failure {
    Generated(progenitor_client::Error<comm100::generated::types::Error>),
    Raw(ApiError),
}

/// The kind agrees with the rest of the error: the status it stands for, the login, the rule of
/// `is_retryable`.
fn kind_problems(error: &ApiError) -> Vec<String> {
    let status = error.status().map(|s| s.as_u16());
    let expected_status: Option<&[u16]> = match error.kind() {
        ErrorKind::NotFound => Some(&[404]),
        ErrorKind::Unauthorized => Some(&[401]),
        ErrorKind::Forbidden | ErrorKind::DailyLimit => Some(&[403]),
        ErrorKind::RateLimited { .. } => Some(&[429]),
        ErrorKind::Unavailable => Some(&[502, 503, 504]),
        _ => None,
    };
    let mut problems = Vec::new();
    if let Some(allowed) = expected_status {
        if !status.is_some_and(|s| allowed.contains(&s)) {
            problems.push(format!("kind {:?} with status {status:?}", error.kind()));
        }
    }
    let login = error.operation_id() == Some("generate_jwt_token");
    if login
        != (*error.kind() == ErrorKind::LoginFailed
            || (login && *error.kind() == ErrorKind::Timeout))
    {
        problems.push(format!(
            "kind {:?} for a login failure: {login}",
            error.kind()
        ));
    }
    if login && error.outcome() != Outcome::NotSent {
        problems.push("a login failure that is not `not sent`".into());
    }
    problems
}

async fn call(c100: &Comm100, op: Op, seeded: uuid::Uuid) -> Result<(), Failure> {
    let client = c100.client();
    let body = || {
        comm100::generated::types::CustomerSegmentInput::builder()
            .name(CREATED)
            .description(Some(UPDATED.to_string()))
            .conditions(vec![comm100::generated::types::ConditionInput::builder()
                .field("CurrentPageUrl")
                .operator(comm100::generated::types::KnownConditionOperator::Include)
                .value("live")
                .try_into()
                .unwrap()])
    };
    match op {
        Op::List => client.list_customer_segments().send().await.map(drop).map_err(Failure::Generated),
        Op::Get => client
            .get_customer_segment()
            .id(seeded)
            .send()
            .await
            .map(drop)
            .map_err(Failure::Generated),
        Op::Create => client
            .create_customer_segment()
            .body(body())
            .send()
            .await
            .map(drop)
            .map_err(Failure::Generated),
        Op::Update => client
            .update_customer_segment()
            .id(seeded)
            .body(body().name("seeded"))
            .send()
            .await
            .map(drop)
            .map_err(Failure::Generated),
        Op::Delete => client
            .delete_customer_segment()
            .id(seeded)
            .send()
            .await
            .map(drop)
            .map_err(Failure::Generated),
        Op::RawGet => c100
            .get("/livechat/customerSegments")
            .send_json::<serde_json::Value>()
            .await
            .map(drop)
            .map_err(Failure::Raw),
        Op::RawPost => c100
            .post("/livechat/customerSegments")
            .json(&json!({"name": CREATED, "description": UPDATED,
                          "conditions": [{"field": "CurrentPageUrl", "operator": "include", "value": "live"}]}))
            .send_json::<serde_json::Value>()
            .await
            .map(drop)
            .map_err(Failure::Raw),
    }
}

#[test]
fn every_operation_against_every_fault_and_token_host_mode() {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    tracing::subscriber::set_global_default(recorder(logs.clone())).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut modes: Vec<Mode> = Fault::examples().into_iter().map(Mode::Fault).collect();
    modes.extend(TokenHost::examples().into_iter().map(Mode::TokenHost));
    // A few cells at a time: each runs a sandbox, and the cells that wait out a budget should
    // not share two cores with a hundred others.
    let cells: Vec<Cell> = runtime.block_on(async {
        use futures::StreamExt as _;
        let cells = OPS.into_iter().flat_map(|op| {
            modes.iter().flat_map(move |mode| {
                TRANSPORTS
                    .into_iter()
                    .map(move |transport| (op, mode.clone(), transport))
            })
        });
        futures::stream::iter(cells)
            .map(|(op, mode, transport)| tokio::spawn(run_cell(op, mode, transport)))
            .buffered(8)
            .map(|cell| cell.expect("a cell ran"))
            .collect()
            .await
    });
    drop(runtime);

    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logs.contains("comm100.request"),
        "the client's logs were captured"
    );
    let mut failures = Vec::new();
    for cell in &cells {
        println!("{}", cell.line);
        let tokens: Vec<&str> = cell
            .shown
            .iter()
            .filter_map(|s| s.strip_prefix("TOKEN:"))
            .filter_map(|v| v.strip_prefix("Bearer "))
            .collect();
        let mut problems = cell.problems.clone();
        for text in cell.shown.iter().filter(|s| !s.starts_with("TOKEN:")) {
            for secret in tokens.iter().copied().chain([DEFAULT_PASSWORD]) {
                if text.contains(secret) {
                    problems.push(format!("a secret in what the caller sees: {text}"));
                }
            }
        }
        for secret in tokens {
            if logs.contains(secret) {
                problems.push("a token in the logs".into());
            }
        }
        for problem in problems {
            failures.push(format!("{}: {problem}", cell.line));
        }
    }
    assert!(!logs.contains(DEFAULT_PASSWORD), "the password in the logs");
    assert!(!logs.contains("Bearer ey"), "a bearer token in the logs");
    println!("{} cells, {} problems", cells.len(), failures.len());
    assert_eq!(cells.len(), OPS.len() * modes.len() * TRANSPORTS.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A subscriber that writes the client's events and spans (target `comm100`, not the
/// sandbox's) to `buffer`.
fn recorder(buffer: Arc<Mutex<Vec<u8>>>) -> impl tracing::Subscriber + Send + Sync {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::Layer as _;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(move || common::LogBuffer(buffer.clone()))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.target() == "comm100" || meta.target().starts_with("comm100::")
        }));
    tracing_subscriber::registry().with(layer)
}
