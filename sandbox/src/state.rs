//! The sandbox's shared state: agents, sites and their segments, tokens, faults and the log.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::limits::{AdminToken, Limits};
use crate::log::{Log, LogSlot};
use crate::oddities;
use crate::ratelimit::Buckets;
use crate::segments::{self, Segment};
use crate::{AgentRecord, Fault, RequestRecord, Route, Stats, TokenHost, jwt};

/// An agent who can log in.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub site_id: i64,
}

/// A fault waiting for requests to hit.
#[derive(Debug, Clone)]
pub(crate) struct PendingFault {
    pub remaining: usize,
    pub fault: Fault,
    pub route: Option<Route>,
}

/// The daily-limit mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DailyLimit {
    pub limit: u64,
    pub used: u64,
}

/// Everything that changes, behind one lock. The lock is never held across an `.await`.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub agents: Vec<Agent>,
    pub next_agent_id: i64,
    pub sites: HashMap<i64, Vec<Segment>>,
    pub next_seq: u64,
    pub token_lifetime: Duration,
    /// The `jti`s of the tokens issued since the last revocation.
    pub live_tokens: HashSet<String>,
    pub faults: VecDeque<PendingFault>,
    pub latency: Option<Duration>,
    pub daily: Option<DailyLimit>,
    pub forward_compat: bool,
    /// Whether responses are gzip-encoded for requests that accept it.
    pub gzip: bool,
    /// How the token route behaves.
    pub token_host: TokenHost,
    /// Whether API requests with an otherwise valid token get `401`.
    pub refuse_valid_tokens: bool,
    /// The rate-limit mode's buckets, when it is on.
    pub rate_limit: Option<Buckets>,
}

impl State {
    /// Takes the next fault that applies to a request on `route`, if any.
    pub(crate) fn take_fault(&mut self, route: Option<Route>) -> Option<Fault> {
        let index = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && (f.route.is_none() || f.route == route))?;
        let pending = &mut self.faults[index];
        pending.remaining -= 1;
        let fault = pending.fault.clone();
        if pending.remaining == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }

    /// Adds an agent, or changes the password of the agent with that email on that site.
    pub(crate) fn add_agent(&mut self, email: &str, password: &str, site_id: i64) {
        if let Some(agent) = self
            .agents
            .iter_mut()
            .find(|a| a.site_id == site_id && a.email.eq_ignore_ascii_case(email))
        {
            agent.password = password.to_owned();
        } else {
            let id = self.next_agent_id;
            self.next_agent_id += 1;
            self.agents.push(Agent {
                id,
                email: email.to_owned(),
                password: password.to_owned(),
                site_id,
            });
        }
        self.sites.entry(site_id).or_default();
    }

    /// The agents, in the order they were added.
    pub(crate) fn agent_records(&self) -> Vec<AgentRecord> {
        self.agents
            .iter()
            .map(|a| AgentRecord {
                id: a.id,
                email: a.email.clone(),
                password: a.password.clone(),
                site_id: a.site_id,
            })
            .collect()
    }

    /// The segments of a site, sorted by order (and by creation among equal orders).
    pub(crate) fn sorted_segments(&self, site_id: i64) -> Vec<Segment> {
        let mut segments = self.sites.get(&site_id).cloned().unwrap_or_default();
        segments.sort_by_key(|s| (s.order, s.seq));
        segments
    }

    /// The stored JSON of a site's segments, sorted as [`State::sorted_segments`] sorts them.
    pub(crate) fn segments_json(&self, site_id: i64) -> Vec<Value> {
        self.sorted_segments(site_id)
            .into_iter()
            .map(|s| Value::Object(s.json))
            .collect()
    }

    /// The order a new segment gets on a site when it names none: the current maximum plus 1
    /// (1 on a site with none), kept within a 32-bit integer.
    pub(crate) fn next_order(&self, site_id: i64) -> i64 {
        self.sites
            .get(&site_id)
            .and_then(|s| s.iter().map(|s| s.order).max())
            .map_or(1, |max| {
                max.saturating_add(1)
                    .clamp(i32::MIN.into(), i32::MAX.into())
            })
    }

    /// Stores a segment on a site, as the newest, replacing any segment of that site with the
    /// same id.
    pub(crate) fn store(&mut self, site_id: i64, id: Uuid, order: i64, json: Map<String, Value>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let segments = self.sites.entry(site_id).or_default();
        segments.retain(|s| s.id != id);
        segments.push(Segment {
            id,
            order,
            seq,
            json,
        });
    }

    /// Stores a record verbatim, without validation; see
    /// [`crate::Controls::insert_raw_segment`].
    pub(crate) fn insert_raw(&mut self, site_id: i64, mut record: Map<String, Value>) -> Uuid {
        let id = segments::raw_id(&record).unwrap_or_else(|| {
            let id = Uuid::new_v4();
            record.insert("id".into(), Value::from(id.to_string()));
            id
        });
        if let Some(segments) = self.sites.get_mut(&site_id) {
            segments.retain(|s| s.id != id);
        }
        let order = segments::raw_order(&record).unwrap_or_else(|| self.next_order(site_id));
        self.store(site_id, id, order, record);
        id
    }

    /// Stores the odd records; see [`crate::Controls::seed_odd_segments`].
    pub(crate) fn seed_odd(&mut self, site_id: i64) -> Vec<Uuid> {
        oddities::odd_records()
            .into_iter()
            .map(|mut record| {
                record.insert("order".into(), Value::from(self.next_order(site_id)));
                self.insert_raw(site_id, record)
            })
            .collect()
    }
}

/// The state shared by the server and the controls.
#[derive(Debug)]
pub(crate) struct Inner {
    pub secret: [u8; 32],
    pub portal_url: String,
    pub api_url: String,
    pub issuer: String,
    pub state: Mutex<State>,
    /// The state at the start, seeded, for [`Inner::reset`].
    pub initial: State,
    /// The clock offset at the start, for [`Inner::reset`].
    pub initial_clock_offset: i64,
    pub log: Mutex<Log>,
    /// How many records were written to the log since it was last emptied, for
    /// [`crate::Controls::wait_for_requests`].
    pub log_written: watch::Sender<usize>,
    /// What the sandbox holds and how long it waits.
    pub limits: Limits,
    /// The token the admin routes require, if any.
    pub admin_token: Option<AdminToken>,
    /// The `Host` values that name the sandbox: `127.0.0.1:PORT` and `localhost:PORT`.
    pub own_hosts: [String; 2],
    /// Seconds added to the real clock to give the sandbox's "now".
    pub clock_offset: AtomicI64,
    pub faults_injected: AtomicUsize,
    /// How many connections have been accepted; the number of the last one.
    pub connections: AtomicU64,
    /// Turns true when the server has stopped accepting and its connections have closed.
    pub stopped: watch::Sender<bool>,
}

impl Inner {
    /// Locks the state; a poisoned lock is still used, since every write leaves it consistent.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the request log.
    pub(crate) fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a record to the log and wakes whoever waits on it; returns where it is, for
    /// [`Inner::set_status`]. `token` says whether the request went to a token path.
    pub(crate) fn record(&self, record: RequestRecord, token: bool) -> LogSlot {
        let (slot, written) = {
            let mut log = self.log();
            (log.push(record, token), log.written())
        };
        self.log_written.send_replace(written);
        slot
    }

    /// Sets the status of a record written earlier, unless it has left the log since.
    pub(crate) fn set_status(&self, slot: LogSlot, status: Option<u16>) {
        self.log().set_status(slot, status);
    }

    /// Empties the request log.
    pub(crate) fn clear_log(&self) {
        self.log().clear();
        self.log_written.send_replace(0);
    }

    /// Puts the state back as it was at the start; see [`crate::Controls::reset`].
    pub(crate) fn reset(&self) {
        *self.state() = self.initial.clone();
        self.clock_offset
            .store(self.initial_clock_offset, Ordering::SeqCst);
        self.faults_injected.store(0, Ordering::SeqCst);
        self.clear_log();
    }

    /// The counters.
    pub(crate) fn stats(&self) -> Stats {
        let log = self.log();
        Stats {
            faults_injected: self.faults_injected.load(Ordering::SeqCst),
            token_requests: log.token_requests(),
            requests: log.len(),
            dropped_requests: log.dropped(),
        }
    }

    /// How many requests in the log went to the token endpoint.
    pub(crate) fn token_requests(&self) -> usize {
        self.log().token_requests()
    }

    /// The sandbox's "now" in Unix seconds: the real clock plus the clock offset.
    pub(crate) fn now_secs(&self) -> i64 {
        jwt::now_secs().saturating_add(self.clock_offset.load(Ordering::SeqCst))
    }

    /// The sandbox's "now" in Unix milliseconds, for the rate limit's buckets.
    pub(crate) fn now_millis(&self) -> i64 {
        let offset = self
            .clock_offset
            .load(Ordering::SeqCst)
            .saturating_mul(1000);
        jwt::now_millis().saturating_add(offset)
    }

    /// The sandbox's "now" as an HTTP date (RFC 7231 IMF-fixdate), clamped to the dates an
    /// HTTP date can name.
    pub(crate) fn http_date(&self) -> String {
        let secs = self.now_secs().clamp(0, jwt::LATEST_SECS);
        let secs = u64::try_from(secs).unwrap_or(0);
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(secs))
    }
}

/// A fresh random secret for signing tokens.
pub(crate) fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    secret
}
