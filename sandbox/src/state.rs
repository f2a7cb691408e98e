//! The sandbox's shared state: agents, sites and their segments, tokens, faults and the log.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::segments::Segment;
use crate::{Fault, RequestRecord, Route};

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
#[derive(Debug)]
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

    /// The segments of a site, sorted by order (and by creation among equal orders).
    pub(crate) fn sorted_segments(&self, site_id: i64) -> Vec<Segment> {
        let mut segments = self.sites.get(&site_id).cloned().unwrap_or_default();
        segments.sort_by_key(|s| (s.order, s.seq));
        segments
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
    pub log: Mutex<Vec<RequestRecord>>,
    pub log_len: watch::Sender<usize>,
    pub faults_injected: AtomicUsize,
    /// Turns true when the server has stopped accepting and its connections have closed.
    pub stopped: watch::Sender<bool>,
}

impl Inner {
    /// Locks the state; a poisoned lock is still used, since every write leaves it consistent.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the request log.
    pub(crate) fn log(&self) -> MutexGuard<'_, Vec<RequestRecord>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a record to the log and wakes whoever waits on its length.
    pub(crate) fn record(&self, record: RequestRecord) {
        let len = {
            let mut log = self.log();
            log.push(record);
            log.len()
        };
        self.log_len.send_replace(len);
    }
}

/// A fresh random secret for signing tokens.
pub(crate) fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    secret
}
