//! The peak memory of a sandbox binary under large request bodies, for `docs/performance.md`.
//!
//! Starts the binary on a free port, sends requests of 4 MiB (less a few bytes, to stay under
//! the body limit) to the create route, one after the other, and prints the peak resident set
//! size of the sandbox's process (`VmHWM`, Linux only) and its resident size at the end.
//!
//! ```sh
//! cargo build --release -p comm100-sandbox
//! cargo run -p comm100-sandbox --example memory -- target/release/comm100-sandbox 200 string
//! ```
//!
//! The arguments are the binary, the number of requests (200) and the body's shape: `string`,
//! one JSON string of 4 MiB, or `array`, a JSON array of 2 million zeros, which a JSON tree
//! holds in about 64 MiB.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The request body limit of the sandbox.
const BODY: usize = 4 * 1024 * 1024;

/// A JSON body just under the limit, in the given shape.
fn body(shape: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(BODY);
    match shape {
        "string" => {
            body.extend_from_slice(b"{\"name\":\"");
            body.resize(BODY - 2, b'a');
            body.extend_from_slice(b"\"}");
        }
        "array" => {
            body.push(b'[');
            while body.len() < BODY - 4 {
                body.extend_from_slice(b"0,");
            }
            body.extend_from_slice(b"0]");
        }
        other => panic!("the shape is string or array, not {other}"),
    }
    assert!(body.len() <= BODY);
    body
}

/// A field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args.next().expect("the path of a comm100-sandbox binary");
    let requests: usize = args.next().map_or(200, |n| n.parse().expect("a number"));
    let shape = args.next().unwrap_or_else(|| "string".to_owned());

    let mut child = Command::new(&binary)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let pid = child.id();
    let stdout = child.stdout.take().expect("its output");
    let portal = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| Some(line.split("control-panel base:").nth(1)?.trim().to_owned()))
        .expect("the binary prints its URL");
    let url = format!("{portal}/api/v3/livechat/customerSegments");

    let started = status_kib(pid, "VmRSS:");
    let client = reqwest::Client::new();
    let body = bytes::Bytes::from(body(&shape));
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..requests {
        let status = match client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
        {
            Ok(response) => response.status().as_u16().to_string(),
            Err(error) => format!("error: {error}"),
        };
        *statuses.entry(status).or_insert(0) += 1;
    }
    let peak = status_kib(pid, "VmHWM:");
    let end = status_kib(pid, "VmRSS:");
    let _ = child.kill();
    let _ = child.wait();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("binary:     {binary}");
    println!(
        "requests:   {requests} x {} bytes ({shape}), answered {statuses:?}",
        body.len()
    );
    println!("RSS start:  {:.1} MiB", mib(started));
    println!("RSS peak:   {:.1} MiB", mib(peak));
    println!("RSS end:    {:.1} MiB", mib(end));
}
