//! [`Controls`]: the state, the faults and modes, and the request log of a running sandbox,
//! from Rust.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::ratelimit::Buckets;
use crate::state::{DailyLimit, Inner, PendingFault};
use crate::{AgentRecord, Fault, RateLimit, RequestRecord, Route, SegmentRecord, Stats, TokenHost};
#[cfg(doc)]
use crate::{DAILY_LIMIT_MESSAGE, REFUSED_TOKEN_MESSAGE, Sandbox};

/// The controls of a sandbox: state, faults and the request log. Cheap to clone, thread-safe,
/// and every method but [`Controls::wait_for_requests`] is synchronous.
#[derive(Clone, Debug)]
pub struct Controls {
    pub(crate) inner: Arc<Inner>,
}

impl Controls {
    /// Adds an agent who can log in to `site_id` (creating the site), or changes the password of
    /// the agent with that email on that site.
    pub fn add_agent(&self, email: &str, password: &str, site_id: i64) {
        self.inner.state().add_agent(email, password, site_id);
    }

    /// Makes the next `n` requests fail with `fault`: on any route when `route` is `None`
    /// (including unknown paths), else on that route only. Faults queue up in the order given;
    /// admin routes are never faulted. Unlike the admin route, this takes a
    /// [`Fault::AltSuccess`] whose status is outside `200..=299`; it is sent as `200`.
    pub fn fail_next(&self, n: usize, fault: Fault, route: Option<Route>) {
        if n == 0 {
            return;
        }
        self.inner.state().faults.push_back(PendingFault {
            remaining: n,
            fault,
            route,
        });
    }

    /// Delays every response by `latency`, or stops delaying with `None`.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.inner.state().latency = latency;
    }

    /// Revokes every token issued so far: they get `401` although they look valid.
    pub fn revoke_tokens(&self) {
        self.inner.state().live_tokens.clear();
    }

    /// Sets the lifetime of the tokens issued from now on. A zero lifetime issues tokens that
    /// have already expired (`exp == nbf == now`).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.inner.state().token_lifetime = lifetime;
    }

    /// Turns the daily-limit mode on or off. With `Some(n)`, the next `n` requests on the API
    /// base (every route but the token route) are served and every one after gets `403` with
    /// [`DAILY_LIMIT_MESSAGE`].
    pub fn set_daily_limit(&self, limit: Option<u64>) {
        self.inner.state().daily = limit.map(|limit| DailyLimit { limit, used: 0 });
    }

    /// Turns the rate-limit mode on with `Some(limit)`, with full buckets, or off with `None`
    /// (the default). When on, each client address has a token bucket ([`RateLimit`]): every
    /// API request, the token route included, takes a token, and one that finds none is
    /// answered `429` with `Retry-After` (the seconds until the next token, rounded up), before
    /// any queued fault (which it leaves queued) and without being processed. The buckets fill
    /// on the sandbox's clock, so [`Controls::set_clock_offset`] moves them on too.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.inner.state().rate_limit = limit.map(Buckets::new);
    }

    /// Turns the forward-compatibility mode on or off. When on, segment responses carry
    /// `"conditionMetType": "weighted"`, `"operator": "startsWith"` in their first condition and
    /// an extra field `"priority": 3`, none of which the spec knows. The stored state is not
    /// changed.
    pub fn set_forward_compat(&self, on: bool) {
        self.inner.state().forward_compat = on;
    }

    /// Turns the gzip mode on or off (off by default). When on, a response with a body is sent
    /// gzip-encoded (`Content-Encoding: gzip`, `Vary: Accept-Encoding`, the `Content-Length` of
    /// the encoded body) when the request's `Accept-Encoding` allows gzip: it names `gzip` (or
    /// `x-gzip`) or `*` with a q-value above 0, and does not refuse gzip with `q=0`. Other
    /// responses go out as before, and so do the streamed bodies of [`Fault::HugeErrorBody`] and
    /// [`Fault::EndlessBody`], `204`s and the admin routes. [`RequestRecord::gzip`] tells which
    /// responses were encoded.
    pub fn set_gzip(&self, on: bool) {
        self.inner.state().gzip = on;
    }

    /// Shifts the sandbox's clock: from now on its "now" is the real time plus `offset_secs`
    /// seconds. Negative puts the server behind the client (`-10800` for 3 hours behind),
    /// positive ahead.
    ///
    /// The shifted clock is used everywhere: for the `nbf`, `iat` and `exp` of the tokens
    /// issued, for checking tokens (so a token issued on the shifted clock is valid for its full
    /// lifetime, while one issued before a change may become expired or not yet valid), and for
    /// the `Date` header (RFC 7231 IMF-fixdate) of every response.
    pub fn set_clock_offset(&self, offset_secs: i64) {
        self.inner.clock_offset.store(offset_secs, Ordering::SeqCst);
    }

    /// The clock offset in seconds; see [`Controls::set_clock_offset`].
    pub fn clock_offset(&self) -> i64 {
        self.inner.clock_offset.load(Ordering::SeqCst)
    }

    /// Sets how the token route (both token paths) behaves, until told otherwise.
    ///
    /// Every token request is still written to the request log. Under [`TokenHost::Slow`] and
    /// [`TokenHost::Silent`] it is written (and [`Controls::wait_for_requests`] woken) when the
    /// request arrives, before the wait, with status `None`; a slow answer then sets the
    /// status, a silent host leaves it `None`. A fault queued with [`Controls::fail_next`] is
    /// applied first, as before: one that answers, drops or holds the request wins over the
    /// mode; after a [`Fault::Latency`] or with [`Fault::DropAfterHandling`],
    /// [`Fault::EndlessBody`] or [`Fault::AltSuccess`] the mode applies.
    pub fn set_token_host(&self, host: TokenHost) {
        self.inner.state().token_host = host;
    }

    /// Turns the refusal of valid tokens on or off. When on, every API request (every route but
    /// the token route) whose bearer token is otherwise valid gets `401` with
    /// [`REFUSED_TOKEN_MESSAGE`], as a revoked agent or a permission quirk would; logins still
    /// succeed and issue tokens.
    pub fn set_refuse_valid_tokens(&self, on: bool) {
        self.inner.state().refuse_valid_tokens = on;
    }

    /// The request log, oldest first. Admin routes are not logged.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.log().records().cloned().collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.inner.clear_log();
    }

    /// How many requests in the log went to the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests()
    }

    /// The segments stored for a site, sorted by order (and by creation among equal orders),
    /// typed, each with the JSON the API serves for it ([`SegmentRecord::raw`], unknown fields
    /// included; the forward-compatibility mode does not apply).
    pub fn segments(&self, site_id: i64) -> Vec<SegmentRecord> {
        self.inner
            .state()
            .sorted_segments(site_id)
            .into_iter()
            .map(|s| SegmentRecord::new(s.id, serde_json::Value::Object(s.json)))
            .collect()
    }

    /// The segment of `site_id` with this id, if there is one.
    pub fn segment(&self, site_id: i64, id: uuid::Uuid) -> Option<SegmentRecord> {
        let state = self.inner.state();
        let segment = state.sites.get(&site_id)?.iter().find(|s| s.id == id)?;
        Some(SegmentRecord::new(
            segment.id,
            serde_json::Value::Object(segment.json.clone()),
        ))
    }

    /// The agents who can log in, in the order they were added (the default agent first).
    pub fn agents(&self) -> Vec<AgentRecord> {
        self.inner.state().agent_records()
    }

    /// The ids of the sites, in increasing order: a site exists once an agent or a segment
    /// names it, or the seed does.
    pub fn sites(&self) -> Vec<i64> {
        let mut sites: Vec<i64> = self.inner.state().sites.keys().copied().collect();
        sites.sort_unstable();
        sites
    }

    /// The counters: faults injected, token requests and requests in the log.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Puts the sandbox back as it was when it started, for the next test:
    ///
    /// * the agents, sites and segments are those of the start (the default agent and the
    ///   seed), with the same ids;
    /// * every token issued so far is forgotten, so it gets `401` as a revoked one would;
    /// * the queued faults are dropped, and every mode is back to its start: no latency, no
    ///   daily limit, no rate limit, forward compatibility, gzip and the refusal of valid tokens
    ///   off, a normal token host, the token lifetime and clock offset of the configuration;
    /// * the request log is emptied and the counters ([`Controls::stats`]) are zero.
    ///
    /// The address, the signing secret and the connection numbers stay; a request in flight
    /// (held by [`Fault::Hang`] or a silent token host) stays held, and is not logged again.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// Stores `segment` verbatim as a segment of `site_id` (creating the site), without
    /// validation: a record in a shape the API refuses on requests, as real servers send. Returns
    /// its id.
    ///
    /// * **id:** the record's `id` when it is a string holding a hyphenated uuid (kept as
    ///   written); otherwise a new one, written into the record as `"id"`. A segment of that
    ///   site with the same id is replaced.
    /// * **order:** the record sorts by its `order` when that is an integer, else as if its order
    ///   were the site's maximum plus 1 at insertion; that order is not written into the record.
    ///
    /// The list and get routes serve the record exactly as stored (the forward-compatibility
    /// mode aside), and [`Controls::segments`] returns it so (in [`SegmentRecord::raw`]). It can be updated (the PUT body is
    /// validated as usual and replaces it) and deleted through the API like any other segment.
    ///
    /// # Panics
    ///
    /// If `segment` is not a JSON object.
    pub fn insert_raw_segment(&self, site_id: i64, segment: serde_json::Value) -> uuid::Uuid {
        let serde_json::Value::Object(record) = segment else {
            panic!("insert_raw_segment takes a JSON object, not {segment}");
        };
        self.inner.state().insert_raw(site_id, record)
    }

    /// Stores five odd records on `site_id`, as [`Controls::insert_raw_segment`] does, and
    /// returns their ids, in this order. Each is a full segment in the documented shape but for
    /// one oddity that real servers send and the sandbox refuses on requests. Each gets a new
    /// id, and its `order` is the site's maximum plus 1 when it is stored (on a site with no
    /// segments: 1 to 5). Each is, besides `id` and `order` (keys sorted):
    ///
    /// ```text
    /// {"alertTo": {"agentIds": [], "departmentIds": []}, "color": "339FD9",
    ///  "conditionMetType": "all",
    ///  "conditions": [{"field": "CurrentPageUrl", "operator": "include", "value": "live", "order": 1}],
    ///  "description": "sandbox odd record (X)", "isEnable": false, "logicalExpression": "",
    ///  "name": NAME}
    /// ```
    ///
    /// with `X` and `NAME`, and the oddity, as follows:
    ///
    /// * **(a)** `"name": "odd color"`, and `"color": "#FF0000"` (a `#`);
    /// * **(b)** `"name": "   "` (blank);
    /// * **(c)** `"name": "odd nulls"`, `"conditions": null`, and
    ///   `"alertTo": {"agentIds": null, "departmentIds": []}`;
    /// * **(d)** `"name": "odd missing conditions"`, no `conditions` key at all, and
    ///   `"conditionMetType": "weighted"` (a value the documents do not know);
    /// * **(e)** `"name": "odd unknown values"`, `"conditions": [{"field": "CurrentPageUrl",
    ///   "operator": "startsWith", "value": null, "order": 1, "caseSensitive": true}]` (an
    ///   unknown operator, a null value, an unknown nested field), and the unknown top-level
    ///   fields `"createdBy": 42` and `"priority": 3`.
    pub fn seed_odd_segments(&self, site_id: i64) -> Vec<uuid::Uuid> {
        self.inner.state().seed_odd(site_id)
    }

    /// How many faults have been injected so far (each request a queued fault hit counts once).
    pub fn faults_injected(&self) -> usize {
        self.inner.faults_injected.load(Ordering::SeqCst)
    }

    /// Resolves when the server has stopped: it no longer accepts connections and its open
    /// connections have closed. Useful after dropping the [`Sandbox`] handle, whose `Drop`
    /// cannot wait.
    pub async fn wait_stopped(&self) {
        let mut rx = self.inner.stopped.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Resolves when the request log holds at least `n` records.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut rx = self.inner.log_written.subscribe();
        // The sender lives in `inner`, which `self` keeps alive, so this cannot fail.
        let _ = rx.wait_for(|len| *len >= n).await;
    }
}
