//! How a sandbox starts: [`SandboxConfig`], its builder, and the seed data ([`Seed`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Sandbox;
use crate::limits::{AdminToken, Limits};
use crate::state::State;

/// How a sandbox starts: its port, its tokens' lifetime, its clock, and the data it starts
/// with. Build one with [`SandboxConfig::builder`] (or start at once with [`Sandbox::builder`]).
///
/// The default is what [`Sandbox::start`] uses: a free port, tokens that live 2 hours, no clock
/// offset, and only the default agent ([`crate::DEFAULT_EMAIL`] on [`crate::DEFAULT_SITE_ID`]).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxConfig {
    /// The port to bind on `127.0.0.1`; `0` picks a free one. Default `0`.
    pub port: u16,
    /// The lifetime of the tokens issued. Default 2 hours, as Comm100's sample token.
    pub token_lifetime: Duration,
    /// The clock offset to start with, in seconds; see [`crate::Controls::set_clock_offset`].
    /// Default `0`.
    pub clock_offset_secs: i64,
    /// The agents, sites and segments in place at the start, besides the default agent.
    pub seed: Seed,
    /// What the sandbox holds and how long it waits; see [`Limits`].
    pub limits: Limits,
    /// The token the admin routes require as a bearer token, if any; see
    /// [`SandboxBuilder::admin_token`].
    pub admin_token: Option<AdminToken>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            token_lifetime: Duration::from_secs(2 * 60 * 60),
            clock_offset_secs: 0,
            seed: Seed::default(),
            limits: Limits::default(),
            admin_token: None,
        }
    }
}

impl SandboxConfig {
    /// A builder, starting from the default configuration.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }
}

/// Builds a [`SandboxConfig`], or starts a sandbox with it: from [`Sandbox::builder`] or
/// [`SandboxConfig::builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use comm100_sandbox::Sandbox;
/// use serde_json::json;
///
/// let sandbox = Sandbox::builder()
///     .token_lifetime(std::time::Duration::from_secs(60))
///     .agent("sync@example.com", "sync-password", 20000)
///     .segment(20000, json!({"name": "VIP", "isEnable": true, "order": 1}))
///     .start()
///     .await?;
/// let stored = sandbox.controls().segments(20000);
/// assert_eq!(stored[0].name.as_deref(), Some("VIP"));
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Clone, Debug, Default)]
pub struct SandboxBuilder {
    config: SandboxConfig,
}

impl SandboxBuilder {
    /// The port to bind on `127.0.0.1`; `0` (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// The lifetime of the tokens issued (2 hours by default); a zero lifetime issues tokens
    /// that have already expired. [`crate::Controls::reset`] goes back to it.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.token_lifetime = lifetime;
        self
    }

    /// The clock offset to start with, in seconds (negative puts the server behind the
    /// client); see [`crate::Controls::set_clock_offset`]. [`crate::Controls::reset`] goes back
    /// to it.
    pub fn clock_offset_secs(mut self, offset_secs: i64) -> Self {
        self.config.clock_offset_secs = offset_secs;
        self
    }

    /// An agent who can log in to `site_id` (creating the site), as
    /// [`crate::Controls::add_agent`] adds one.
    pub fn agent(
        mut self,
        email: impl Into<String>,
        password: impl Into<String>,
        site_id: i64,
    ) -> Self {
        self.config.seed.agents.push(SeedAgent {
            email: email.into(),
            password: password.into(),
            site_id,
        });
        self
    }

    /// What the sandbox holds and how long it waits; see [`Limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Requires this token, as `Authorization: Bearer <token>`, on every admin route
    /// (`/__sandbox/...`), which answer `401` without it. The API routes are not affected. By
    /// default the admin routes take no token: they are reached only from the sandbox's own
    /// address (see the crate docs), and a token keeps out other programs on the machine.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.config.admin_token = Some(AdminToken::new(token));
        self
    }

    /// A site, with no segments (and no agent, unless one is added for it).
    pub fn site(mut self, site_id: i64) -> Self {
        self.config.seed.site(site_id);
        self
    }

    /// A segment of `site_id` (creating the site), stored verbatim as
    /// [`crate::Controls::insert_raw_segment`] stores it: its `id` kept when it is a uuid
    /// string, else a new one written in; sorted by its `order` when that is an integer, else
    /// after the segments before it. Segments are stored in the order given.
    ///
    /// # Panics
    ///
    /// If `segment` is not a JSON object.
    pub fn segment(mut self, site_id: i64, segment: Value) -> Self {
        let Value::Object(record) = segment else {
            panic!("SandboxBuilder::segment takes a JSON object, not {segment}");
        };
        self.config.seed.site(site_id).segments.push(record);
        self
    }

    /// The five odd records of [`crate::Controls::seed_odd_segments`] on `site_id` (creating
    /// the site), stored after the site's other seeded segments.
    pub fn odd_segments(mut self, site_id: i64) -> Self {
        self.config.seed.site(site_id).odd_segments = true;
        self
    }

    /// Adds the agents, sites and segments of `seed` to those given so far.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.config.seed.agents.extend(seed.agents);
        for site in seed.sites {
            let into = self.config.seed.site(site.site_id);
            into.segments.extend(site.segments);
            into.odd_segments |= site.odd_segments;
        }
        self
    }

    /// The configuration built.
    pub fn build(self) -> SandboxConfig {
        self.config
    }

    /// Starts a sandbox with the configuration built; see [`Sandbox::start_with`].
    pub async fn start(self) -> std::io::Result<Sandbox> {
        Sandbox::start_with(self.config).await
    }
}

/// The agents, sites and segments a sandbox starts with, besides the default agent: given
/// through [`SandboxBuilder`] in Rust, or read from JSON (the binary's `--seed` file), whose
/// format the crate docs give under [Seed data, state and
/// reset](crate#seed-data-state-and-reset).
///
/// ```
/// let seed: comm100_sandbox::Seed =
///     serde_json::from_str(r#"{"sites": [{"site_id": 10000, "segments": [{"name": "VIP"}]}]}"#)
///         .unwrap();
/// let config = comm100_sandbox::SandboxConfig::builder().seed(seed).build();
/// # let _ = config;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    agents: Vec<SeedAgent>,
    #[serde(default)]
    sites: Vec<SeedSite>,
}

impl Seed {
    /// The seeded site with this id, added when missing.
    fn site(&mut self, site_id: i64) -> &mut SeedSite {
        let index = match self.sites.iter().position(|s| s.site_id == site_id) {
            Some(index) => index,
            None => {
                self.sites.push(SeedSite {
                    site_id,
                    segments: Vec::new(),
                    odd_segments: false,
                });
                self.sites.len() - 1
            }
        };
        &mut self.sites[index]
    }

    /// Puts the seed in place: the agents, then each site's segments and odd records.
    pub(crate) fn apply(&self, state: &mut State) {
        for agent in &self.agents {
            state.add_agent(&agent.email, &agent.password, agent.site_id);
        }
        for site in &self.sites {
            state.sites.entry(site.site_id).or_default();
            for segment in &site.segments {
                state.insert_raw(site.site_id, segment.clone());
            }
            if site.odd_segments {
                state.seed_odd(site.site_id);
            }
        }
    }
}

/// An agent of a [`Seed`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedAgent {
    email: String,
    password: String,
    site_id: i64,
}

/// A site of a [`Seed`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedSite {
    site_id: i64,
    #[serde(default)]
    segments: Vec<Map<String, Value>>,
    #[serde(default)]
    odd_segments: bool,
}
