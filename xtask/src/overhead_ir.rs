//! `cargo xtask overhead-ir [--attribute] [--reuse] [operation…]`: the SDK's overhead over hand-written
//! `reqwest` in instructions per call, which do not move with the machine's load as wall time
//! does.
//!
//! 1. builds `benches/overhead.rs` in release with line tables (so that callgrind can name the
//!    source file of inlined code; codegen is unchanged), in a target directory of its own
//!    (`<target>/overhead-ir`), so that it does not rebuild what `cargo bench` built;
//! 2. for each operation and side, runs the bench's profile mode
//!    (`OVERHEAD_PROFILE=<operation>:<sdk|raw>:calls=<n>`) under
//!    `valgrind --tool=callgrind --separate-threads=yes`, as a pair: a short run and a long one,
//!    at once (two processes; instruction counts do not depend on what else runs);
//! 3. takes the instructions of thread 1 only, the main thread, which runs the client and its
//!    runtime (the canned server runs on a thread and runtime of its own, and is left out), and
//!    divides the difference between the two runs by the difference of their call counts: the
//!    setup (server, login, first connection) is the same in both and cancels;
//! 4. makes three such pairs and keeps the median (see [`PAIRS`]);
//! 5. prints `overhead_ir <operation> ratio=<sdk/raw> sdk=<instructions> raw=<instructions>`.
//!
//! `--attribute` also prints where the SDK's extra instructions go, per call: the inclusive
//! cost of the SDK's own steps (the table of `docs/performance.md`), the functions whose own
//! cost differs most between the sides, and the cost of the SDK's source files (inlined code
//! included). `--reuse` reads the callgrind files of the last run instead of running again
//! (for working on the attribution only). Needs valgrind; without it the task says so and
//! succeeds.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::callgrind::{self, Profile};

/// An operation of the bench, and the call counts of its short and long runs. The counts are
/// what keeps the task within a few minutes under callgrind (about 50 times slower than native);
/// 500 more calls of a small operation make its figure stable to well under 1%.
struct Plan {
    operation: &'static str,
    short: u64,
    long: u64,
}

const PLANS: [Plan; 4] = [
    Plan {
        operation: "get",
        short: 100,
        long: 600,
    },
    Plan {
        operation: "create",
        short: 100,
        long: 600,
    },
    Plan {
        operation: "list_100",
        short: 20,
        long: 120,
    },
    Plan {
        operation: "list_10000",
        short: 2,
        long: 6,
    },
];

const SIDES: [&str; 2] = ["sdk", "raw"];

fn progress(message: impl AsRef<str>) {
    eprintln!("overhead-ir: {}", message.as_ref());
}

/// Runs the task from the workspace root; returns the `overhead_ir` lines (and the attribution).
pub fn run(root: &Path, args: &[String]) -> Result<String, String> {
    let attribute = args.iter().any(|a| a == "--attribute");
    let reuse = args.iter().any(|a| a == "--reuse");
    let wanted: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    if let Some(unknown) = wanted
        .iter()
        .find(|w| !PLANS.iter().any(|p| p.operation == **w))
    {
        return Err(format!(
            "unknown operation {unknown}; the operations are {}",
            PLANS.map(|p| p.operation).join(", ")
        ));
    }
    if let Some(skipped) = callgrind::skip_without_valgrind("overhead-ir") {
        return Ok(skipped);
    }
    let started = Instant::now();
    progress("building benches/overhead.rs in release with line tables");
    let (bench, out_dir) = callgrind::build_bench(root, "overhead")?;

    let mut lines = Vec::new();
    let mut attribution = String::new();
    for plan in PLANS
        .iter()
        .filter(|p| wanted.is_empty() || wanted.contains(&p.operation))
    {
        let mut sides = HashMap::new();
        for side in SIDES {
            sides.insert(side, measure(&bench, &out_dir, plan, side, reuse)?);
        }
        let (sdk, raw) = (&sides["sdk"], &sides["raw"]);
        let line = format!(
            "overhead_ir {} ratio={:.3} sdk={:.0} raw={:.0}",
            plan.operation,
            sdk.per_call / raw.per_call,
            sdk.per_call,
            raw.per_call
        );
        progress(&line);
        lines.push(line);
        if attribute {
            attribution.push_str(&attribute_one(plan.operation, &sdk.median, &raw.median));
        }
    }
    let mut report = String::new();
    if attribute {
        let path = out_dir.join("attribution.txt");
        std::fs::write(&path, &attribution)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        report.push_str(&attribution);
        writeln!(report, "(also written to {})", path.display()).unwrap();
    }
    writeln!(
        report,
        "instructions per call of the client thread, (long run − short run) / extra calls, \
         under callgrind; {:.0}s in all",
        started.elapsed().as_secs_f64()
    )
    .unwrap();
    report.push_str(&lines.join("\n"));
    Ok(report)
}

/// How many times each pair of runs (short and long) is made; the median pair counts. Most
/// pairs agree to 0.01%, but now and then a process takes another path on every call (the
/// allocator's, a timer's) and its pair is off by up to 1%: the median leaves it out.
const PAIRS: usize = 3;

/// One side of one operation: instructions per call, and the pair of runs that gave it.
struct Measured {
    per_call: f64,
    median: Sides,
}

/// Runs the pairs of one side of one operation, the short and long run of a pair at once (on
/// two cores: instruction counts do not depend on what else runs).
fn measure(
    bench: &Path,
    out_dir: &Path,
    plan: &Plan,
    side: &str,
    reuse: bool,
) -> Result<Measured, String> {
    let mut pairs = Vec::new();
    for pair in 1..=PAIRS {
        let (short, long) = std::thread::scope(|scope| {
            let run = |calls| {
                scope.spawn(move || {
                    profile_run(bench, out_dir, plan.operation, side, calls, pair, reuse)
                })
            };
            let (short, long) = (run(plan.short), run(plan.long));
            let join = |h: std::thread::ScopedJoinHandle<'_, Result<Profile, String>>| {
                h.join()
                    .unwrap_or_else(|_| Err("a callgrind run panicked".into()))
            };
            (join(short), join(long))
        });
        pairs.push(Sides {
            short: short?,
            long: long?,
            calls: plan.long - plan.short,
        });
    }
    pairs.sort_by(|a, b| a.total_per_call().total_cmp(&b.total_per_call()));
    let spread: Vec<String> = pairs
        .iter()
        .map(|p| format!("{:.0}", p.total_per_call()))
        .collect();
    progress(format!(
        "{} {side}: {} instructions per call in the {PAIRS} pairs of runs",
        plan.operation,
        spread.join(", ")
    ));
    let median = pairs.swap_remove(PAIRS / 2);
    Ok(Measured {
        per_call: median.total_per_call(),
        median,
    })
}

/// Runs one side of one operation `calls` times under callgrind; the profile of thread 1.
fn profile_run(
    bench: &Path,
    out_dir: &Path,
    operation: &str,
    side: &str,
    calls: u64,
    pair: usize,
    reuse: bool,
) -> Result<Profile, String> {
    let base = out_dir.join(format!("{operation}-{side}-{calls}-{pair}.out"));
    let thread_1 = callgrind::thread_file(&base, 1);
    if reuse && thread_1.exists() {
        return callgrind::read(&thread_1);
    }
    callgrind::run(
        bench,
        &base,
        (
            "OVERHEAD_PROFILE",
            &format!("{operation}:{side}:calls={calls}"),
        ),
    )?;
    callgrind::read(&thread_1)
}

/// The two runs of one side.
struct Sides {
    long: Profile,
    short: Profile,
    calls: u64,
}

impl Sides {
    fn self_per_call(&self) -> HashMap<String, f64> {
        callgrind::per_call(&self.long.self_cost, &self.short.self_cost, self.calls)
    }

    fn file_per_call(&self) -> HashMap<String, f64> {
        callgrind::per_call(
            &self.long.self_by_file,
            &self.short.self_by_file,
            self.calls,
        )
    }

    fn total_per_call(&self) -> f64 {
        (self.long.total as f64 - self.short.total as f64) / self.calls as f64
    }
}

/// What a step of the attribution counts, on one side, in a profile.
#[derive(Clone, Copy)]
enum Term {
    /// The inclusive cost of every function whose name matches.
    Incl(&'static str),
    /// The own cost of every function whose name matches (what was inlined into it included).
    Own(&'static str),
    /// The inclusive cost of the calls from functions that match the first pattern to
    /// functions that match the second.
    Edge(&'static str, &'static str),
}

/// A name matches a pattern when it contains one of the pattern's `|`-separated parts.
fn matches(name: &str, pattern: &str) -> bool {
    pattern.split('|').any(|part| name.contains(part))
}

impl Term {
    fn eval(self, profile: &Profile) -> i64 {
        let sum = |costs: &HashMap<String, u64>, pattern: &str| -> i64 {
            costs
                .iter()
                .filter(|(name, _)| matches(name, pattern))
                .map(|(_, &c)| c as i64)
                .sum()
        };
        match self {
            Term::Incl(pattern) => sum(&profile.inclusive, pattern),
            Term::Own(pattern) => sum(&profile.self_cost, pattern),
            Term::Edge(caller, callee) => profile
                .calls
                .iter()
                .filter(|((from, to), _)| matches(from, caller) && matches(to, callee))
                .map(|(_, &c)| c as i64)
                .sum(),
        }
    }
}

/// A step of a call, and the terms that count it on each side (each with its sign). The steps
/// follow the SDK's code as it is; when a cut renames or inlines a function, its step's terms
/// follow it, and the `other` line shows what no step counts.
struct Step {
    name: &'static str,
    sdk: &'static [(i64, Term)],
    raw: &'static [(i64, Term)],
}

use Term::{Edge, Incl, Own};

/// The callers in which the generated `send` and the bench's own code are compiled.
const CALLER: &str = "overhead::Bench::once::{{closure}}";
const EXECUTE: &str = "comm100::hooks::execute::{{closure}}";
/// Where the loop's future is made, its deadline and bookkeeping set up.
const START: &str = "comm100::hooks::start";
const INSTRUMENTED_POLL: &str =
    "<tracing::instrument::Instrumented<T> as core::future::future::Future>::poll";
const INSTRUMENTED_DROP: &str = "Drop for tracing::instrument::Instrumented<T>>::drop";
const PENDING_POLL: &str =
    "<reqwest::async_impl::client::Pending as core::future::future::Future>::poll";
const PENDING_DROP: &str = "core::ptr::drop_in_place<reqwest::async_impl::client::Pending>";

const STEPS: &[Step] = &[
    Step {
        name: "transport: reqwest's `execute_request`, the response future, its drop (both sides)",
        sdk: &[
            (
                1,
                Incl("reqwest::async_impl::client::Client::execute_request"),
            ),
            (1, Incl(PENDING_POLL)),
            (1, Incl(PENDING_DROP)),
        ],
        raw: &[
            (
                1,
                Incl("reqwest::async_impl::client::Client::execute_request"),
            ),
            (1, Incl(PENDING_POLL)),
            (1, Incl(PENDING_DROP)),
        ],
    },
    Step {
        name: "connection task and runtime: hyper's connection, the scheduler, the timer driver (both sides)",
        sdk: &[
            (
                1,
                Incl("tokio::runtime::scheduler::current_thread::Context::run_task"),
            ),
            (
                1,
                Incl("tokio::runtime::scheduler::current_thread::Context::park"),
            ),
        ],
        raw: &[
            (
                1,
                Incl("tokio::runtime::scheduler::current_thread::Context::run_task"),
            ),
            (
                1,
                Incl("tokio::runtime::scheduler::current_thread::Context::park"),
            ),
        ],
    },
    Step {
        name: "builder validation: the body through the generated builder and back, the `send` prologue",
        sdk: &[
            (1, Incl("comm100::generated::builder::")),
            (
                1,
                Incl("comm100::generated::types::builder::<impl core::convert::TryFrom"),
            ),
            (
                1,
                Incl("as comm100::generated::ClientCustomerSegmentsExt>::"),
            ),
        ],
        raw: &[],
    },
    Step {
        name: "path: progenitor's `encode_path` of the id, and the id's `to_string`",
        sdk: &[
            (1, Incl("progenitor_client::progenitor_client::encode_path")),
            (
                1,
                Edge(CALLER, "<impl core::fmt::Display for uuid::Uuid>::fmt"),
            ),
        ],
        raw: &[],
    },
    Step {
        name: "headers: `Accept`; progenitor's `api-version` map, merged, removed again in `pre`; `User-Agent`",
        sdk: &[
            (
                1,
                Incl("reqwest::async_impl::request::RequestBuilder::header"),
            ),
            (
                1,
                Edge(CALLER, "http::header::map::HeaderMap<T>::with_capacity"),
            ),
            (
                1,
                Edge(CALLER, "http::header::map::HeaderMap<T>::try_append2"),
            ),
            (1, Edge(CALLER, "http::header::map::HeaderMap<T>::append")),
            (
                1,
                Edge(CALLER, "http::header::name::HeaderName::from_static"),
            ),
            (
                1,
                Edge(
                    CALLER,
                    "core::ptr::drop_in_place<http::header::map::HeaderMap>",
                ),
            ),
            (
                1,
                Incl(
                    "ClientHooks<comm100::hooks::Inner> for comm100::generated::Client>::pre::{{closure}}",
                ),
            ),
        ],
        raw: &[(
            1,
            Incl("reqwest::async_impl::request::RequestBuilder::header"),
        )],
    },
    Step {
        name: "auth: the origin check, the cached `Authorization` value inserted (raw: `bearer_auth`)",
        sdk: &[
            (1, Incl("comm100::domain::same_origin")),
            (
                1,
                Edge(EXECUTE, "http::header::map::HeaderMap<T>::try_insert2"),
            ),
        ],
        raw: &[(
            1,
            Incl("reqwest::async_impl::request::RequestBuilder::bearer_auth"),
        )],
    },
    Step {
        name: "request copy: `copy_of` (before: reqwest's `Request::try_clone`) per attempt, and the original dropped",
        sdk: &[
            (1, Incl("reqwest::async_impl::request::Request::try_clone")),
            (1, Incl("comm100::hooks::copy_of")),
            (
                1,
                Edge(
                    EXECUTE,
                    "core::ptr::drop_in_place<reqwest::async_impl::request::Request>",
                ),
            ),
        ],
        raw: &[],
    },
    Step {
        name: "budget: the timer of a call whose client's timeout is unknown (`Bounded`), or a request's own timeout",
        sdk: &[
            (1, Own("comm100::hooks::Bounded")),
            (
                1,
                Edge(
                    EXECUTE,
                    "reqwest::async_impl::request::Request::timeout_mut",
                ),
            ),
        ],
        raw: &[],
    },
    Step {
        name: "span: `attempt_span`, `record_outcome`, `Instrumented` polls and drop, the spans dropped",
        sdk: &[
            (1, Incl("comm100::hooks::attempt_span")),
            (1, Incl("comm100::hooks::record_outcome")),
            (
                1,
                Edge(EXECUTE, "core::ptr::drop_in_place<tracing::span::Span>"),
            ),
            (1, Incl(INSTRUMENTED_POLL)),
            (-1, Edge(INSTRUMENTED_POLL, PENDING_POLL)),
            (1, Incl(INSTRUMENTED_DROP)),
            (-1, Edge(INSTRUMENTED_DROP, PENDING_DROP)),
        ],
        raw: &[],
    },
    Step {
        name: "the retry loop's own code (`execute`, `start`, `exec_documented`, with the token cache's read inlined)",
        sdk: &[
            (1, Own(EXECUTE)),
            (1, Own(START)),
            (1, Own("comm100::hooks::exec_documented")),
            (
                1,
                Edge(START, "__memcpy|tokio::time::instant::Instant::now"),
            ),
            (
                1,
                Edge(EXECUTE, "__memcpy|tokio::time::instant::Instant::now"),
            ),
        ],
        raw: &[],
    },
    Step {
        name: "body: `read_capped` in `read_success`, the first response dropped, `bytes()` again (raw: `bytes()`)",
        sdk: &[
            (1, Incl("comm100::body::read_capped")),
            (
                1,
                Edge(
                    EXECUTE,
                    "core::ptr::drop_in_place<reqwest::async_impl::response::Response>",
                ),
            ),
            (
                1,
                Incl("reqwest::async_impl::response::Response::bytes::{{closure}}"),
            ),
        ],
        raw: &[(
            1,
            Incl("reqwest::async_impl::response::Response::bytes::{{closure}}"),
        )],
    },
    Step {
        name: "response rebuild: `with_body` (`Response::from` parses a placeholder URL)",
        sdk: &[(1, Incl("comm100::body::with_body"))],
        raw: &[],
    },
    Step {
        name: "`decode_response`'s (now `decode_read`'s) own code and its clone of the headers",
        sdk: &[
            // `decode_response`, `decode_read` and `decode`.
            (1, Own("comm100::body::decode")),
            (
                1,
                Edge(
                    "comm100::body::decode_response|overhead::Bench::once::{{closure}}",
                    "<alloc::vec::Vec<T,A> as core::clone::Clone>::clone",
                ),
            ),
        ],
        raw: &[],
    },
    Step {
        name: "decode: `serde_json::from_slice`, the same on both sides but for the allocator (a `realloc` that moves)",
        sdk: &[(1, Incl("serde_json::de::from_slice"))],
        raw: &[(1, Incl("serde_json::de::from_slice"))],
    },
    Step {
        name: "the decoded value dropped, the same on both sides but for the allocator",
        sdk: &[(
            1,
            Incl("core::ptr::drop_in_place<comm100::generated::types::CustomerSegment>"),
        )],
        raw: &[(
            1,
            Incl("core::ptr::drop_in_place<comm100::generated::types::CustomerSegment>"),
        )],
    },
];

/// Where the SDK's extra instructions of one operation go, per call.
fn attribute_one(operation: &str, sdk: &Sides, raw: &Sides) -> String {
    let mut out = String::new();
    let (sdk_total, raw_total) = (sdk.total_per_call(), raw.total_per_call());
    let extra = sdk_total - raw_total;
    writeln!(
        out,
        "\n== {operation}: sdk {sdk_total:.0}, raw {raw_total:.0}, extra {extra:.0} instructions per call"
    )
    .unwrap();

    writeln!(out, "-- steps, per call: sdk, raw, extra (sdk − raw)").unwrap();
    let eval = |side: &Sides, terms: &[(i64, Term)]| -> f64 {
        let at = |p: &Profile| -> i64 { terms.iter().map(|&(sign, t)| sign * t.eval(p)).sum() };
        (at(&side.long) - at(&side.short)) as f64 / side.calls as f64
    };
    let mut counted = 0.0;
    for step in STEPS {
        let (s, r) = (eval(sdk, step.sdk), eval(raw, step.raw));
        counted += s - r;
        writeln!(out, "{s:>10.0} {r:>10.0} {:>+8.0}  {}", s - r, step.name).unwrap();
    }
    writeln!(
        out,
        "{:>10} {:>10} {:>+8.0}  other (what no step above counts)",
        "",
        "",
        extra - counted
    )
    .unwrap();

    writeln!(
        out,
        "-- functions whose own cost differs most, per call: sdk − raw, sdk, raw"
    )
    .unwrap();
    let (sdk_self, raw_self) = (sdk.self_per_call(), raw.self_per_call());
    let mut names: Vec<&String> = sdk_self.keys().chain(raw_self.keys()).collect();
    names.sort();
    names.dedup();
    let mut diffs: Vec<(f64, f64, f64, &String)> = names
        .into_iter()
        .map(|name| {
            let s = sdk_self.get(name).copied().unwrap_or(0.0);
            let r = raw_self.get(name).copied().unwrap_or(0.0);
            (s - r, s, r, name)
        })
        .filter(|(d, ..)| d.abs() >= 20.0)
        .collect();
    diffs.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()).then(a.3.cmp(b.3)));
    for (d, s, r, name) in diffs.iter().take(30) {
        writeln!(out, "{d:>+10.0} {s:>10.0} {r:>10.0}  {name}").unwrap();
    }

    for (side, label) in [(sdk, "sdk"), (raw, "raw")] {
        writeln!(
            out,
            "-- {label}: what the call's code calls, inclusive, per call (for new steps)"
        )
        .unwrap();
        for caller in [CALLER, START, EXECUTE] {
            let mut callees: Vec<(f64, &str)> = side
                .long
                .calls
                .iter()
                .filter(|((from, _), _)| from == caller)
                .map(|((_, to), &l)| {
                    let key = (caller.to_string(), to.clone());
                    let s = side.short.calls.get(&key).copied().unwrap_or(0);
                    ((l as f64 - s as f64) / side.calls as f64, to.as_str())
                })
                .filter(|(c, _)| c.abs() >= 50.0)
                .collect();
            if callees.is_empty() {
                continue;
            }
            callees.sort_by(|a, b| b.0.total_cmp(&a.0));
            writeln!(out, "   {caller}").unwrap();
            for (cost, callee) in callees {
                writeln!(out, "{cost:>10.0}    {callee}").unwrap();
            }
        }
    }

    writeln!(
        out,
        "-- sdk: the SDK's source files, own cost with what was inlined from them, per call"
    )
    .unwrap();
    let mut files: Vec<(f64, String)> = sdk
        .file_per_call()
        .into_iter()
        .filter(|(file, c)| is_sdk_file(file) && c.abs() >= 1.0)
        .map(|(file, c)| (c, file))
        .collect();
    files.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (cost, file) in files {
        writeln!(out, "{cost:>10.0}  {file}").unwrap();
    }
    out
}

/// The SDK's own sources: `src/` and the code generated into `OUT_DIR`.
fn is_sdk_file(file: &str) -> bool {
    (file.contains("/src/") && !file.contains("/.cargo/") && !file.contains("/rustc/"))
        || file.ends_with("out/codegen.rs")
}
