//! Overhead of the SDK over hand-written `reqwest` + `serde_json` code doing the same work.
//!
//! ```text
//! cargo bench --bench overhead
//! ```
//!
//! A minimal axum server on loopback (its own thread and runtime) answers every request with a
//! canned body, so that the server costs little and the same each time. Both sides share one
//! `reqwest::Client`, send the same headers (`Accept`, `api-version`, the bearer token from one
//! login on the canned token route) and decode into the same generated types
//! (`types::CustomerSegment`, `Vec<types::CustomerSegment>`). The SDK side is a
//! [`comm100::Comm100`] built as the README builds one, with `.static_token(token)`: its own
//! `reqwest::Client`, with the same 15 s timeouts as the raw side's, and its hooks (auth, retry
//! loop, tracing span, error normalisation) on every call. `OVERHEAD_SDK_CLIENT` measures the
//! other ways to give it a client: `shared-stated` (the raw side's client, through
//! `.http_client`, with its timeout stated by `.timeout`) and `shared` (the same, unstated:
//! the SDK then bounds each call's budget with a timer of its own).
//!
//! Operations: get one segment, list 100 segments, list 10,000 segments, create a segment.
//! This is a bench binary (`harness = false`) with its own timing loop: a warm-up, then samples
//! that alternate between the sides (SDK first on even samples, raw first on odd ones), one call
//! per sample, and the median of each side. A counting global allocator measures the peak heap
//! of one list of 10,000 on each side (peak above the heap in use just before the call).
//!
//! The output ends with one line per operation:
//! `overhead <operation> ratio=<sdk/raw median> sdk=<median> raw=<median>`.
//!
//! For a profiler, `OVERHEAD_PROFILE=<operation>:<sdk|raw>:<seconds>` runs one side of one
//! operation in a loop and prints its wall time and CPU time per call, e.g.
//! `OVERHEAD_PROFILE=create:sdk:15 valgrind --tool=callgrind --separate-threads=yes <bench binary>`;
//! `OVERHEAD_PROFILE=<operation>:<sdk|raw>:calls=<n>` makes exactly `n` calls instead.
//! `cargo xtask overhead-ir` runs the latter under callgrind and prints instructions per call.

use std::collections::HashMap;
use std::hint::black_box;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine as _;
use comm100::generated::{types, ClientCustomerSegmentsExt as _};
use reqwest::header::{HeaderValue, ACCEPT};

// The counting global allocator, shared with the tests that bound memory.
#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::peak_of;

/// The segment numbered `i`, in the shape the API returns.
fn segment_json(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": uuid::Uuid::from_u128(0x5e6d_0000_0000_4000_8000_0000_0000_0000 | i as u128),
        "name": format!("Segment {i:05}"),
        "color": "339FD9",
        "isEnable": i.is_multiple_of(2),
        "order": i,
        "description": format!("Visitors who looked at pricing page {i}"),
        "conditionMetType": "all",
        "logicalExpression": "",
        "conditions": [
            {"field": "CurrentPageUrl", "operator": "include", "value": format!("/pricing/{i}"), "order": 0}
        ],
        "alertTo": {"agentIds": [1, 2], "departmentIds": []}
    })
}

/// A JWT-shaped token that expires in two hours.
fn token() -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 7200;
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"jti":"bench","agentId":"1","siteId":"10000","exp":{exp}}}"#
        )),
        "c2lnbmF0dXJlLW5vdC1jaGVja2VkLWJ5LXRoZS1iZW5jaC1zZXJ2ZXI"
    )
}

/// The canned bodies: one segment, and lists keyed by their length.
struct Canned {
    one: Bytes,
    lists: HashMap<usize, Bytes>,
    token: Bytes,
}

fn json(status: StatusCode, body: &Bytes) -> axum::response::Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
        .into_response()
}

/// Starts the canned server on its own thread and runtime; returns its base URL.
fn start_server() -> String {
    let canned = Arc::new(Canned {
        one: Bytes::from(serde_json::to_vec(&segment_json(1)).unwrap()),
        lists: [1usize, 100, 10_000]
            .into_iter()
            .map(|n| {
                let list: Vec<_> = (0..n).map(segment_json).collect();
                (n, Bytes::from(serde_json::to_vec(&list).unwrap()))
            })
            .collect(),
        token: Bytes::from(serde_json::to_vec(&serde_json::json!({ "token": token() })).unwrap()),
    });
    let app = axum::Router::new()
        .route(
            "/adminwebservice/api/jwttoken/generate",
            post(|State(c): State<Arc<Canned>>, _body: Bytes| async move {
                json(StatusCode::OK, &c.token)
            }),
        )
        .route(
            "/{n}/api/v3/livechat/customerSegments",
            get(
                |State(c): State<Arc<Canned>>, Path(n): Path<usize>| async move {
                    json(StatusCode::OK, &c.lists[&n])
                },
            )
            .post(|State(c): State<Arc<Canned>>, _body: Bytes| async move {
                json(StatusCode::CREATED, &c.one)
            }),
        )
        .route(
            "/{n}/api/v3/livechat/customerSegments/{id}",
            get(|State(c): State<Arc<Canned>>| async move { json(StatusCode::OK, &c.one) }),
        )
        .with_state(canned);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Get,
    List100,
    List10000,
    Create,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List100 => "list_100",
            Op::List10000 => "list_10000",
            Op::Create => "create",
        }
    }

    fn list_len(self) -> usize {
        match self {
            Op::List100 => 100,
            Op::List10000 => 10_000,
            Op::Get | Op::Create => 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Side {
    Sdk,
    Raw,
}

/// What each side calls for one list length (the canned server serves each under its own
/// prefix).
struct Target {
    /// The SDK's client for the prefix; not made in a profile run of the raw side, whose
    /// heap, and so its allocator's work, then owes nothing to the SDK's code.
    sdk: Option<comm100::Comm100>,
    /// The prefix's API base URL, kept as a careful hand-written client keeps its base URL.
    api: String,
}

/// Both sides, ready to call.
struct Bench {
    http: reqwest::Client,
    token: String,
    /// Looked up once per call by both sides, so that the lookup costs the same on each.
    targets: HashMap<usize, Target>,
    id: uuid::Uuid,
    new_segment: types::CustomerSegmentInput,
}

impl Bench {
    /// One call; returns the number of segments decoded.
    async fn once(&self, op: Op, side: Side) -> usize {
        match side {
            Side::Sdk => self.sdk_once(op).await,
            Side::Raw => self.raw_once(op).await,
        }
    }

    async fn sdk_once(&self, op: Op) -> usize {
        let client = self.targets[&op.list_len()]
            .sdk
            .as_ref()
            .expect("the SDK's side is made unless only the raw side runs")
            .client();
        match op {
            Op::Get => {
                let s = client
                    .get_customer_segment()
                    .id(self.id)
                    .send()
                    .await
                    .unwrap()
                    .into_inner();
                black_box(s);
                1
            }
            Op::List100 | Op::List10000 => {
                let list = client
                    .list_customer_segments()
                    .send()
                    .await
                    .unwrap()
                    .into_inner();
                black_box(list).len()
            }
            Op::Create => {
                let s = client
                    .create_customer_segment()
                    .body(self.new_segment.clone())
                    .send()
                    .await
                    .unwrap()
                    .into_inner();
                black_box(s);
                1
            }
        }
    }

    /// What a careful hand-written client does: same headers, same token, same types.
    async fn raw_once(&self, op: Op) -> usize {
        let api = &self.targets[&op.list_len()].api;
        let request = match op {
            Op::Get => self
                .http
                .get(format!("{api}/livechat/customerSegments/{}", self.id)),
            Op::List100 | Op::List10000 => {
                self.http.get(format!("{api}/livechat/customerSegments"))
            }
            Op::Create => self
                .http
                .post(format!("{api}/livechat/customerSegments"))
                .json(&self.new_segment.clone()),
        };
        let response = request
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header("api-version", HeaderValue::from_static("3"))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let bytes = response.bytes().await.unwrap();
        match op {
            Op::Get | Op::Create => {
                let s: types::CustomerSegment = serde_json::from_slice(&bytes).unwrap();
                black_box(s);
                1
            }
            Op::List100 | Op::List10000 => {
                let list: Vec<types::CustomerSegment> = serde_json::from_slice(&bytes).unwrap();
                black_box(list).len()
            }
        }
    }
}

/// CPU time of the calling thread (the client's runtime), from `/proc/thread-self/schedstat`.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of the whole process (client and server threads), from `/proc/self/stat`, in ns
/// (read in clock ticks of 10 ms).
fn process_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the `(comm)` field; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    (fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)) * 10_000_000
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2
    } else {
        v[mid]
    }
}

fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1}µs")
    } else {
        format!("{:.2}ms", us / 1000.0)
    }
}

/// Warm-up, then `samples` interleaved samples of each side; the medians (sdk, raw).
async fn measure(bench: &Bench, op: Op, warmup: usize, samples: usize) -> (Duration, Duration) {
    for _ in 0..warmup {
        assert_eq!(bench.once(op, Side::Sdk).await, op.list_len());
        assert_eq!(bench.once(op, Side::Raw).await, op.list_len());
    }
    let mut sdk = Vec::with_capacity(samples);
    let mut raw = Vec::with_capacity(samples);
    for i in 0..samples {
        let order = if i.is_multiple_of(2) {
            [Side::Sdk, Side::Raw]
        } else {
            [Side::Raw, Side::Sdk]
        };
        for side in order {
            let t = Instant::now();
            black_box(bench.once(op, side).await);
            let elapsed = t.elapsed();
            match side {
                Side::Sdk => sdk.push(elapsed),
                Side::Raw => raw.push(elapsed),
            }
        }
    }
    (median(sdk), median(raw))
}

/// The request and connect timeouts of the raw side's client, which are the SDK's defaults.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let base = start_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let sdk_client = std::env::var("OVERHEAD_SDK_CLIENT").unwrap_or_else(|_| "own".into());
        // A profile run of one side makes only that side's clients.
        let raw_only = std::env::var("OVERHEAD_PROFILE")
            .is_ok_and(|spec| spec.split(':').nth(1) == Some("raw"));
        // The SDK's own client's settings: its default timeouts.
        let http = reqwest::Client::builder()
            .connect_timeout(CLIENT_TIMEOUT)
            .timeout(CLIENT_TIMEOUT)
            .build()
            .unwrap();
        // One login, by hand, on the token route; both sides use this token.
        let login: serde_json::Value = http
            .post(format!("{base}/adminwebservice/api/jwttoken/generate"))
            .json(&serde_json::json!({
                "LoginType": "Password",
                "Username": "agent@example.com",
                "Password": "bench-password",
                "SiteId": 10000
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().unwrap().to_string();
        let targets = [1usize, 100, 10_000]
            .into_iter()
            .map(|n| {
                let api = format!("{base}/{n}/api/v3");
                let sdk = comm100::Comm100::builder()
                    .urls(base.clone(), api.clone())
                    .static_token(token.clone());
                let sdk = match sdk_client.as_str() {
                    "own" => sdk,
                    "shared-stated" => sdk.http_client(http.clone()).timeout(CLIENT_TIMEOUT),
                    "shared" => sdk.http_client(http.clone()),
                    other => panic!("OVERHEAD_SDK_CLIENT={other}: use own, shared-stated or shared"),
                };
                let sdk = (!raw_only).then(|| sdk.build().unwrap());
                (n, Target { sdk, api })
            })
            .collect();
        let new_segment = types::CustomerSegmentInput::builder()
            .name("Bench segment")
            .description("created by the overhead bench".to_string())
            .conditions(vec![types::ConditionInput::builder()
                .field("CurrentPageUrl")
                .operator(types::KnownConditionOperator::Include)
                .value("/pricing")
                .try_into()
                .unwrap()])
            .try_into()
            .unwrap();
        let bench = Bench {
            http,
            token,
            targets,
            id: uuid::Uuid::from_u128(0x5e6d_0000_0000_4000_8000_0000_0000_0001),
            new_segment,
        };

        // For a profiler: `OVERHEAD_PROFILE=get:sdk:10` calls one side of one operation in a
        // loop for 10 s, `OVERHEAD_PROFILE=get:sdk:calls=500` exactly 500 times, and prints
        // nothing else. A count makes two runs do the same work, whatever the profiler's
        // slowdown: `cargo xtask overhead-ir` runs the count form under callgrind.
        if let Ok(spec) = std::env::var("OVERHEAD_PROFILE") {
            let parts: Vec<&str> = spec.split(':').collect();
            let op = [Op::Get, Op::List100, Op::List10000, Op::Create]
                .into_iter()
                .find(|op| op.name() == parts[0])
                .expect("get, list_100, list_10000 or create");
            let side = if parts.get(1) == Some(&"raw") {
                Side::Raw
            } else {
                Side::Sdk
            };
            let length = parts.get(2).copied().unwrap_or("10");
            let count: Option<u64> = length
                .strip_prefix("calls=")
                .map(|n| n.parse().expect("calls=<number>"));
            let secs: u64 = length.parse().unwrap_or(10);
            let (cpu0, proc0, t0) = (thread_cpu_ns(), process_cpu_ns(), Instant::now());
            let mut calls = 0u64;
            while match count {
                Some(n) => calls < n,
                None => t0.elapsed() < Duration::from_secs(secs),
            } {
                assert_eq!(bench.once(op, side).await, op.list_len());
                calls += 1;
            }
            let per_call = |ns: u64| ns as f64 / calls as f64 / 1000.0;
            println!(
                "profile {} {side:?} calls={calls} wall_per_call={:.1}µs client_cpu_per_call={:.1}µs process_cpu_per_call={:.1}µs",
                op.name(),
                per_call(t0.elapsed().as_nanos() as u64),
                per_call(thread_cpu_ns() - cpu0),
                per_call(process_cpu_ns() - proc0),
            );
            return;
        }

        // (operation, warm-up calls per side, samples per side)
        let plan = [
            (Op::Get, 1000, 20_000),
            (Op::List100, 300, 5_000),
            (Op::List10000, 10, 200),
            (Op::Create, 1000, 20_000),
        ];
        let started = Instant::now();
        let mut lines = Vec::new();
        for (op, warmup, samples) in plan {
            let (sdk, raw) = measure(&bench, op, warmup, samples).await;
            lines.push(format!(
                "overhead {} ratio={:.2} sdk={} raw={}",
                op.name(),
                sdk.as_secs_f64() / raw.as_secs_f64(),
                show(sdk),
                show(raw)
            ));
        }

        // Peak heap of one list of 10,000 on each side, after the warm-up above: one call per
        // side, six times, the side that goes first alternating; the smallest peak of each side
        // is reported (a call can also pay for hyper growing a connection's read buffer).
        let (mut sdk_peaks, mut raw_peaks) = (Vec::new(), Vec::new());
        for rep in 0..6usize {
            let order = if rep.is_multiple_of(2) {
                [Side::Sdk, Side::Raw]
            } else {
                [Side::Raw, Side::Sdk]
            };
            for side in order {
                let (n, peak) = peak_of(bench.once(Op::List10000, side)).await;
                assert_eq!(n, 10_000);
                match side {
                    Side::Sdk => sdk_peaks.push(peak),
                    Side::Raw => raw_peaks.push(peak),
                }
            }
        }
        let sdk_peak = *sdk_peaks.iter().min().unwrap();
        let raw_peak = *raw_peaks.iter().min().unwrap();
        println!(
            "bench took {:.1}s; samples per side: {}",
            started.elapsed().as_secs_f64(),
            plan.iter()
                .map(|(op, _, n)| format!("{} {n}", op.name()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("memory peaks list_10000 sdk={sdk_peaks:?} raw={raw_peaks:?}");
        println!("memory list_10000 sdk_peak={sdk_peak} raw_peak={raw_peak}");
        for line in lines {
            println!("{line}");
        }
    });
}
