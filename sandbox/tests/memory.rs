//! The sandbox's heap under large request bodies, measured with a counting allocator: this
//! test binary holds one test, so the counts are the sandbox's (and the client's, which sends
//! one shared body and keeps nothing).
//!
//! The bound it checks is the one the crate docs give (`Limits`): a request's body is held
//! only while the request is served, and the log keeps at most `BODY_KEPT` bytes of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use comm100_sandbox::{MAX_BODY, Sandbox};

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = IN_USE.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call goes to `System` with the caller's arguments; the counts are bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `GlobalAlloc::alloc`, with the caller's layout.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` or `realloc` above, with this layout.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `GlobalAlloc::realloc`, with the caller's arguments.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1 << 20;
/// How much the heap may hold after a request, beyond what it held before the first: the log's
/// records (200 of at most `BODY_KEPT` bytes of body, plus their headers) and what the server
/// keeps per connection.
const RETAINED_BOUND: usize = 8 * MIB;
/// How much the heap may grow while one request is served: its body read into memory, and the
/// one copy that makes it contiguous, plus the retained bound.
const PEAK_BOUND: usize = 2 * MAX_BODY + RETAINED_BOUND;

/// 200 requests of 4 MiB, one after the other, each a JSON array of 2 million zeros (which a
/// JSON tree holds in about 64 MiB): the heap never grows past the bound. The check runs after
/// every request, so a sandbox that keeps bodies fails at the first, long before it could
/// exhaust the machine.
#[tokio::test]
async fn large_bodies_keep_the_sandbox_heap_under_its_bound() {
    let sb = Sandbox::start().await.unwrap();
    let url = format!("{}/livechat/customerSegments", sb.api_url());
    let mut body = Vec::with_capacity(MAX_BODY);
    body.push(b'[');
    while body.len() < MAX_BODY - 4 {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(b"0]");
    let body = bytes::Bytes::from(body);
    let client = reqwest::Client::new();
    // One request first, so that the connection, the runtime's and the client's buffers are in
    // place before the baseline.
    let send = || async {
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        response.bytes().await.unwrap();
    };
    send().await;
    sb.controls().clear_requests();
    let baseline = IN_USE.load(Ordering::SeqCst);
    PEAK.store(baseline, Ordering::SeqCst);
    for sent in 1..=200 {
        send().await;
        let retained = IN_USE.load(Ordering::SeqCst).saturating_sub(baseline);
        let peak = PEAK.load(Ordering::SeqCst).saturating_sub(baseline);
        assert!(
            retained <= RETAINED_BOUND,
            "after {sent} requests the heap holds {retained} bytes more than before"
        );
        assert!(
            peak <= PEAK_BOUND,
            "after {sent} requests the heap has grown by up to {peak} bytes"
        );
    }
    let retained = IN_USE.load(Ordering::SeqCst).saturating_sub(baseline);
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(baseline);
    let log = sb.controls().requests();
    assert_eq!(log.len(), 200);
    assert_eq!(log[0].body_len, body.len() as u64);
    assert_eq!(log[0].body.len(), comm100_sandbox::BODY_KEPT);
    assert_eq!(log[0].json(), None, "a cut body is not JSON");
    eprintln!(
        "200 x {} bytes: retained {} KiB, peak {} KiB above the baseline",
        body.len(),
        retained / 1024,
        peak / 1024
    );
}
