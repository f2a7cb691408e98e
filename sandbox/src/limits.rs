//! What a sandbox holds and how long it waits ([`Limits`]), and the secret of its admin routes
//! ([`AdminToken`]).

use std::time::Duration;

/// What a sandbox holds and how long it waits, so that it stays a safe neighbour on a machine
/// it shares for hours: the caps of the request log, how many connections it serves at once,
/// and how long a client has to send a request's head and body.
///
/// With the defaults, the log holds at most 10,000 records and 32 MiB (each record keeps at
/// most [`crate::BODY_KEPT`] bytes of its body), and a request's body, at most
/// [`crate::MAX_BODY`], is held only while the request is served: the sandbox's heap stays
/// under the log's cap plus, for each connection served at once, about twice
/// [`crate::MAX_BODY`].
///
/// ```
/// use std::time::Duration;
/// use comm100_sandbox::{Limits, SandboxConfig};
///
/// let limits = Limits::default()
///     .log_records(100)
///     .body_timeout(Duration::from_secs(5));
/// let config = SandboxConfig::builder().limits(limits).build();
/// assert_eq!(config.limits.log_records, 100);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most records the request log holds; the oldest are dropped first, and counted in
    /// [`crate::Stats::dropped_requests`]. Default 10,000.
    pub log_records: usize,
    /// The most bytes the request log's records hold (about: their strings, headers and kept
    /// bodies); the oldest are dropped first. Default 32 MiB.
    pub log_bytes: usize,
    /// The most connections served at once; more wait to be accepted. Default 256.
    pub connections: usize,
    /// How long an HTTP/1 client has to send a request's head (its line and headers), after
    /// which the connection is closed. Default 30 s.
    pub header_timeout: Duration,
    /// How long a client has to send a request's whole body once its head has come, after
    /// which the request is answered `408` and the connection closed. Default 30 s.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            log_records: 10_000,
            log_bytes: 32 << 20,
            connections: 256,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Sets [`Limits::log_records`] (at least 1).
    pub fn log_records(mut self, records: usize) -> Self {
        self.log_records = records.max(1);
        self
    }

    /// Sets [`Limits::log_bytes`].
    pub fn log_bytes(mut self, bytes: usize) -> Self {
        self.log_bytes = bytes;
        self
    }

    /// Sets [`Limits::connections`] (at least 1).
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }

    /// Sets [`Limits::header_timeout`]; a timeout beyond a century counts as a century.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Sets [`Limits::body_timeout`]; a timeout beyond a century counts as a century.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }
}

/// The longest a timeout lasts: a century, which the clock can still add to now.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A secret the admin routes require; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// The token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Whether `candidate` is the token, compared through digests so that the time taken does
    /// not tell how much of it matched.
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.0.as_bytes()) == Sha256::digest(candidate.as_bytes())
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}
