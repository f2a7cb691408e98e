#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod api;
mod config;
mod controls;
mod http;
mod inject;
mod jwt;
#[cfg(test)]
mod layout;
mod limits;
mod log;
mod modes;
#[cfg(test)]
mod modes_table;
mod oddities;
mod ratelimit;
mod records;
mod segments;
mod server;
mod state;
mod stream;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::config::{SandboxBuilder, SandboxConfig, Seed};
pub use crate::controls::Controls;
pub use crate::limits::{AdminToken, Limits};
use crate::log::{Log, LogLimits};
pub use crate::modes::{Fault, OddBody, RateLimit, Route, TokenHost};
pub use crate::records::{
    AgentRecord, AlertToRecord, ConditionRecord, RequestRecord, SegmentRecord, Stats,
};
use crate::state::{Inner, State};

/// The email of the seeded agent.
pub const DEFAULT_EMAIL: &str = "agent@example.com";
/// The password of the seeded agent.
pub const DEFAULT_PASSWORD: &str = "sandbox-password";
/// The site of the seeded agent.
pub const DEFAULT_SITE_ID: i64 = 10000;
/// The message of the `403` the daily-limit mode returns.
pub const DAILY_LIMIT_MESSAGE: &str =
    "the number of your API requests has exceeded the limit of the day";
/// How many bytes of a request body a [`RequestRecord`] keeps: 16 KiB.
pub const BODY_KEPT: usize = 16 * 1024;
/// The largest request body the sandbox reads: 4 MiB. A longer one is answered `413`.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// The message of the `401` an API request with a valid token gets while
/// [`Controls::set_refuse_valid_tokens`] is on.
pub const REFUSED_TOKEN_MESSAGE: &str = "The agent is not allowed to use the API.";

/// A running sandbox. Dropping it stops the server; [`Sandbox::shutdown`] stops it and waits.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    controls: Controls,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox on `127.0.0.1` on a free port, with the default configuration.
    pub async fn start() -> std::io::Result<Sandbox> {
        Self::start_with(SandboxConfig::default()).await
    }

    /// A builder for a sandbox with seed data or another configuration:
    /// `Sandbox::builder().agent(..).segment(..).start().await`.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Starts a sandbox on `127.0.0.1` with the given configuration: the default agent, then
    /// the configuration's seed, in place before the first request.
    pub async fn start_with(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let portal_url = format!("http://{addr}");
        let api_url = format!("{portal_url}/api/v3");
        let mut state = State {
            agents: Vec::new(),
            next_agent_id: 1,
            sites: HashMap::new(),
            next_seq: 0,
            token_lifetime: config.token_lifetime,
            live_tokens: HashSet::new(),
            faults: VecDeque::new(),
            latency: None,
            daily: None,
            forward_compat: false,
            gzip: false,
            token_host: TokenHost::Normal,
            refuse_valid_tokens: false,
            rate_limit: None,
        };
        state.add_agent(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID);
        config.seed.apply(&mut state);
        let inner = Arc::new(Inner {
            secret: state::random_secret(),
            issuer: addr.to_string(),
            portal_url,
            api_url,
            initial: state.clone(),
            initial_clock_offset: config.clock_offset_secs,
            state: std::sync::Mutex::new(state),
            log: std::sync::Mutex::new(Log::new(LogLimits {
                records: config.limits.log_records,
                bytes: config.limits.log_bytes,
            })),
            limits: config.limits,
            admin_token: config.admin_token,
            own_hosts: [
                format!("127.0.0.1:{}", addr.port()),
                format!("localhost:{}", addr.port()),
            ],
            log_written: watch::Sender::new(0),
            clock_offset: AtomicI64::new(config.clock_offset_secs),
            faults_injected: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            stopped: watch::Sender::new(false),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, inner.clone(), stop_rx));
        tracing::info!(%addr, "comm100 sandbox listening");
        Ok(Sandbox {
            addr,
            controls: Controls { inner },
            stop,
            task: Some(task),
        })
    }

    /// The control-panel base URL, `http://127.0.0.1:PORT`, with no trailing slash.
    pub fn portal_url(&self) -> String {
        self.controls.inner.portal_url.clone()
    }

    /// The API base URL, `http://127.0.0.1:PORT/api/v3`, with no trailing slash.
    pub fn api_url(&self) -> String {
        self.controls.inner.api_url.clone()
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The controls of this sandbox; they stay usable after the handle is moved or dropped.
    pub fn controls(&self) -> Controls {
        self.controls.clone()
    }

    /// Stops the server and waits until it has stopped: no new connection is accepted, open
    /// connections finish their request in flight and close. A token request held by a
    /// [`TokenHost::Slow`] or [`TokenHost::Silent`] token host, and a request held by
    /// [`Fault::Hang`], end at once, without a response; a connection streaming the body of a
    /// [`Fault::HugeErrorBody`] or a [`Fault::EndlessBody`] closes at once, the body unfinished.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
