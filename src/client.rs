//! [`Comm100`]: one builder, then the generated operations with auth applied to each of them.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::cache::{DEFAULT_LOGIN_TIMEOUT, DEFAULT_REFRESH_BUFFER, FORCED_REFRESH_INTERVAL};
use crate::auth::{PasswordLogin, SensitiveString, StaticToken, Token, TokenCache, TokenSource};
use crate::domain::{same_origin, shown_url, Endpoints, HttpPolicy};
use crate::error::Error;
use crate::generated;
use crate::hooks::{AttemptTimeout, Inner};
use crate::retry::RetryPolicy;

/// A configured Comm100 client. Cheap to clone; clones share the token cache.
///
/// ```no_run
/// use comm100::prelude::*;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let password = std::env::var("COMM100_PASSWORD")?;
/// let c100 = comm100::Comm100::builder()
///     .portal("portal1.comm100.io")
///     .password_login("agent@example.com", password, 10000)
///     .build()?;
/// let segments = c100.client().list_customer_segments().call().await?;
/// println!("{} segments", segments.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Comm100 {
    client: generated::Client,
    endpoints: Endpoints,
    auth: Arc<TokenCache>,
}

impl Comm100 {
    /// Starts configuring a client.
    pub fn builder() -> Comm100Builder {
        Comm100Builder::default()
    }

    /// A client configured from the environment: `COMM100_PORTAL` (the control-panel domain),
    /// `COMM100_EMAIL`, `COMM100_PASSWORD`, `COMM100_SITE_ID`, and the optional overrides
    /// `COMM100_PORTAL_URL` and `COMM100_API_URL`, which take precedence over the hosts derived
    /// from `COMM100_PORTAL` (which may then be left out). White space around a value is
    /// ignored, except in `COMM100_PASSWORD`, which is used byte for byte.
    pub fn from_env() -> Result<Self, Error> {
        Comm100Builder::from_env()?.build()
    }

    /// The generated client: call any operation on it, and auth, retries and error
    /// normalisation apply.
    pub fn client(&self) -> &generated::Client {
        &self.client
    }

    /// The hosts this client talks to.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Logs in now rather than on the first call (or reuses a token that is still fresh), and
    /// returns when the token expires on this machine's clock, if it says.
    ///
    /// A refused login is [`Error::Login`], with the token host's status, Comm100's code and
    /// message, and its `Retry-After`. After a failed login, calls during the cool-down get the
    /// same error at once, without a request (see [`Comm100Builder::login_timeout`]).
    pub async fn login(&self) -> Result<Option<std::time::SystemTime>, Error> {
        Ok(self.auth.get().await?.expires_at())
    }

    /// This client with settings of its own for the calls made through it: another time
    /// budget, another retry policy. It shares the token cache, the request budget and the
    /// daily-limit breaker with this one, and costs no login.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use comm100::prelude::*;
    /// # async fn run(c100: &Comm100) -> Result<(), ApiError> {
    /// let quick = c100.with(|o| o.operation_timeout(Duration::from_secs(2)).retry(RetryPolicy::disabled()));
    /// let segments = quick.client().list_customer_segments().call().await?;
    /// # Ok(()) }
    /// ```
    pub fn with(&self, options: impl FnOnce(CallOptions) -> CallOptions) -> Comm100 {
        use progenitor_client::ClientInfo as _;
        let options = options(CallOptions::default());
        let mut inner = self.client.inner().clone();
        if let Some(budget) = options.operation_timeout {
            inner.budget = budget;
        }
        if let Some(retry) = options.retry {
            inner.retry = retry;
        }
        Comm100 {
            client: generated::Client::new_with_client(
                self.client.baseurl(),
                self.client.client().clone(),
                inner,
            ),
            endpoints: self.endpoints.clone(),
            auth: self.auth.clone(),
        }
    }

    /// The current token, fetching one if there is none or it is about to expire.
    pub async fn token(&self) -> Result<Token, Error> {
        self.auth.get().await
    }
}

/// Settings for the calls made through [`Comm100::with`]; what is not set stays the client's.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    operation_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
}

impl CallOptions {
    /// The time budget of each call (see [`Comm100Builder::operation_timeout`]).
    pub fn operation_timeout(mut self, budget: Duration) -> Self {
        self.operation_timeout = Some(budget);
        self
    }

    /// The retry policy of each call.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
}

/// How a client obtains its token.
enum Credentials {
    Password {
        email: String,
        password: SensitiveString,
        site_id: i64,
    },
    Source(Arc<dyn TokenSource>),
}

/// Configures a [`Comm100`]. Nothing is sent until the first operation (or [`Comm100::login`]).
#[derive(Default)]
pub struct Comm100Builder {
    portal: Option<String>,
    urls: Option<(String, String)>,
    http_policy: HttpPolicy,
    credentials: Option<Credentials>,
    refresh_buffer: Option<Duration>,
    login_timeout: Option<Duration>,
    forced_refresh_interval: Option<Duration>,
    rate: Option<crate::RateBudget>,
    daily: Option<crate::DailyLimitBreaker>,
    retry: Option<RetryPolicy>,
    http: Option<reqwest::Client>,
    operation_timeout: Option<Duration>,
    max_response_body: Option<usize>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent: Option<String>,
    http_builder: Option<reqwest::ClientBuilder>,
}

impl std::fmt::Debug for Comm100Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credentials = match &self.credentials {
            Some(Credentials::Password { email, site_id, .. }) => {
                format!("password login for {email} on site {site_id}")
            }
            Some(Credentials::Source(_)) => "token source".into(),
            None => "none".into(),
        };
        // URLs as given may hold a password; they are refused at `build`, and never shown.
        let portal = self.portal.as_deref().map(shown_url);
        let urls = self
            .urls
            .as_ref()
            .map(|(portal, api)| (shown_url(portal), shown_url(api)));
        f.debug_struct("Comm100Builder")
            .field("portal", &portal)
            .field("urls", &urls)
            .field("http_policy", &self.http_policy)
            .field("credentials", &credentials)
            .field("refresh_buffer", &self.refresh_buffer)
            .field("login_timeout", &self.login_timeout)
            .field("forced_refresh_interval", &self.forced_refresh_interval)
            .field("rate", &self.rate)
            .field("daily", &self.daily)
            .field("retry", &self.retry)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_response_body", &self.max_response_body)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl Comm100Builder {
    /// The control-panel domain, `portal{N}.comm100.io` (or as a URL).
    pub fn portal(mut self, domain: impl Into<String>) -> Self {
        self.portal = Some(domain.into());
        self
    }

    /// Explicit base URLs, for hosts other than Comm100's (a proxy, the sandbox): `portal`
    /// serves the token, `api` the operations. They take precedence over [`Self::portal`].
    pub fn urls(mut self, portal: impl Into<String>, api: impl Into<String>) -> Self {
        self.urls = Some((portal.into(), api.into()));
        self
    }

    /// Whether explicit URLs may use plain `http` to hosts other than loopback.
    pub fn http_policy(mut self, policy: HttpPolicy) -> Self {
        self.http_policy = policy;
        self
    }

    /// Logs in as an agent with email, password and site id, and refreshes the token as needed.
    pub fn password_login(
        mut self,
        email: impl Into<String>,
        password: impl Into<String>,
        site_id: i64,
    ) -> Self {
        self.credentials = Some(Credentials::Password {
            email: email.into(),
            password: SensitiveString::from(password.into()),
            site_id,
        });
        self
    }

    /// Uses this token as it is. When the server refuses it, the operation fails with `401`.
    pub fn static_token(mut self, jwt: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Source(Arc::new(StaticToken(Token::new(jwt)))));
        self
    }

    /// Fetches tokens from a source of your own.
    pub fn token_source(mut self, source: impl TokenSource) -> Self {
        self.credentials = Some(Credentials::Source(Arc::new(source)));
        self
    }

    /// How long before its expiry a token is refreshed (60 s by default). A token that lives
    /// less than twice the buffer is refreshed halfway through its life instead, and none is
    /// refreshed sooner than 1 s after it arrived. Expiry is measured on the server's clock
    /// (from the token's own claims, or the token response's `Date`), so a server whose clock
    /// is hours off still costs one login per token life.
    pub fn refresh_buffer(mut self, buffer: Duration) -> Self {
        self.refresh_buffer = Some(buffer);
        self
    }

    /// The least time between two logins forced by a `401` on a token the cache still held (60 s
    /// by default). A `401` within it goes to the caller: an endpoint that refuses every token
    /// (a missing permission) then costs one extra login per interval, not one per call,
    /// however its calls interleave with calls that succeed. A revocation that follows another
    /// within the interval is answered only when it has passed.
    pub fn forced_refresh_interval(mut self, interval: Duration) -> Self {
        self.forced_refresh_interval = Some(interval);
        self
    }

    /// Paces this client's requests with `budget`, which other clients may share: give each a
    /// clone (`RateBudget` is cheap to clone). Off by default. Logins and retries count; a
    /// `429` pauses every client that shares it. See [`crate::RateBudget`].
    ///
    /// ```
    /// let shared = comm100::RateBudget::comm100_published();
    /// let site_a = comm100::Comm100::builder()
    ///     .portal("portal1.comm100.io")
    ///     .static_token("eyJ...")
    ///     .rate_budget(shared.clone())
    ///     .build()?;
    /// # Ok::<(), comm100::Error>(())
    /// ```
    pub fn rate_budget(mut self, budget: crate::RateBudget) -> Self {
        self.rate = Some(budget);
        self
    }

    /// The daily-limit breaker (on by default, resetting at UTC midnight and probing every 5
    /// minutes); see [`crate::DailyLimitBreaker`].
    pub fn daily_limit_breaker(mut self, breaker: crate::DailyLimitBreaker) -> Self {
        self.daily = Some(breaker);
        self
    }

    /// How long a login may take in all (30 s by default); the HTTP client's own timeout
    /// bounds its one request too.
    ///
    /// A login is one request, shared by every caller that needs a token meanwhile: they all
    /// get its result, and none waits longer than this. After a failed login, callers get its
    /// error at once, and nothing is sent, for a cool-down that doubles with each failure in a
    /// row: from 1 s up to 30 s after a timeout, a transport failure, a `429` or a `5xx`; from
    /// 10 s up to 5 min after a refusal (`401`, `403`, ...), which repeating cannot fix and
    /// which could lock the agent's account. A `Retry-After` from the token host lengthens the
    /// cool-down, up to 5 min.
    pub fn login_timeout(mut self, timeout: Duration) -> Self {
        self.login_timeout = Some(timeout);
        self
    }

    /// The most time one operation may take in all (60 s by default): its attempts, the waits
    /// between them, the login it may wait for, and reading the body. A wait that would end past
    /// it is not waited: the caller gets the last answer at once. When it runs out, the
    /// operation fails with a `CommunicationError` whose source is [`Error::OperationTimeout`].
    pub fn operation_timeout(mut self, budget: Duration) -> Self {
        self.operation_timeout = Some(budget);
        self
    }

    /// The largest success body read, in bytes (32 MiB by default, nine times a list of 10,000
    /// segments). A longer one fails with a `ResponseBodyError` whose source is
    /// [`Error::BodyTooLarge`], after reading no more than the limit. Error bodies are read up
    /// to 64 KiB, whatever this says; the rest is dropped with the connection.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = Some(bytes);
        self
    }

    /// The retry policy ([`RetryPolicy::default`] unless set; [`RetryPolicy::disabled`] turns
    /// retries off).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The timeout of each request, from sending it to the end of its body (15 s by default).
    /// It applies to the client this builder makes, and to one made from
    /// [`Self::http_client_builder`].
    ///
    /// A client given to [`Self::http_client`] keeps its own timeout unless this is set too;
    /// then this one bounds every request the operations send (reqwest lets a request's
    /// timeout replace the client's), and the operation's budget needs no timer of its own.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The timeout of opening a connection (15 s by default); as [`Self::timeout`], it applies
    /// to the client this builder makes.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// A suffix for the `User-Agent` of every request, e.g. `my-sync-job/2.1`: the header is
    /// then `comm100-rs/<version> my-sync-job/2.1`. The `User-Agent` lets Comm100's support tell
    /// your traffic apart; it is sent whichever HTTP client carries the request.
    pub fn user_agent(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent = Some(suffix.into());
        self
    }

    /// A `reqwest::ClientBuilder` of your own (a proxy, a custom CA, a client certificate, a
    /// connection pool setting), to which this crate adds its rules before building it: the
    /// timeouts ([`Self::timeout`], [`Self::connect_timeout`]), redirects only within one
    /// origin, and no retries of reqwest's own (this crate retries). The client it builds
    /// carries every request, the login included.
    ///
    /// ```
    /// let proxied = reqwest::Client::builder().pool_max_idle_per_host(4);
    /// let c100 = comm100::Comm100::builder()
    ///     .portal("portal1.comm100.io")
    ///     .static_token("eyJ...")
    ///     .http_client_builder(proxied)
    ///     .build()?;
    /// # let _ = c100;
    /// # Ok::<(), comm100::Error>(())
    /// ```
    pub fn http_client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.http_builder = Some(builder);
        self
    }

    /// A `reqwest::Client` of your own, used as it is. It carries every request, the login
    /// included. Prefer [`Self::http_client_builder`], which keeps this crate's rules.
    ///
    /// Its settings are yours, so set what the default client has:
    /// * timeouts (the default has 15 s to connect and 15 s per request): without them an
    ///   operation can wait forever on a server that never answers; a login is still bounded
    ///   by [`Self::login_timeout`]. State the request timeout with [`Self::timeout`] as well:
    ///   the operations' requests then carry it, and each call saves the timer that otherwise
    ///   enforces [`Self::operation_timeout`] around a client whose timeout it cannot read;
    /// * redirects only within one origin, with [`same_origin_redirects`]: reqwest's default
    ///   follows a `307` to any host and re-sends the body, which for the login holds the
    ///   password.
    ///
    /// ```
    /// let http = reqwest::Client::builder()
    ///     .connect_timeout(std::time::Duration::from_secs(15))
    ///     .timeout(std::time::Duration::from_secs(15))
    ///     .redirect(comm100::same_origin_redirects())
    ///     .build()?;
    /// let c100 = comm100::Comm100::builder()
    ///     .portal("portal1.comm100.io")
    ///     .static_token("eyJ...")
    ///     .http_client(http)
    ///     .timeout(std::time::Duration::from_secs(15))
    ///     .build()?;
    /// # let _ = c100;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Reads the settings [`Comm100::from_env`] documents into a builder, to adjust further.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |name: &'static str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str, hint: &'static str| {
            get(name).ok_or(Error::MissingEnv { var: name, hint })
        };
        let mut builder = Self::default();
        match (get("COMM100_PORTAL_URL"), get("COMM100_API_URL")) {
            (Some(portal), Some(api)) => builder = builder.urls(portal, api),
            (portal_url, api_url) => {
                let domain = required(
                    "COMM100_PORTAL",
                    "the control-panel domain, e.g. portal1.comm100.io",
                )?;
                let derived = Endpoints::from_portal(&domain).map_err(|e| Error::InvalidEnv {
                    var: "COMM100_PORTAL",
                    reason: e.to_string(),
                })?;
                let portal = portal_url.unwrap_or_else(|| derived.portal_url().to_string());
                let api = api_url.unwrap_or_else(|| derived.api_url().to_string());
                builder = builder.urls(portal, api);
            }
        }
        let email = required("COMM100_EMAIL", "the agent's email")?;
        // A password is sent byte for byte: spaces at either end may be part of it, and a
        // password altered here would be refused, each refusal counting against the account's
        // lockout. Only an empty one is missing.
        let password =
            var("COMM100_PASSWORD")
                .filter(|v| !v.is_empty())
                .ok_or(Error::MissingEnv {
                    var: "COMM100_PASSWORD",
                    hint: "the agent's password",
                })?;
        let site_id = required("COMM100_SITE_ID", "the numeric site id")?;
        let site_id = site_id.parse::<i64>().map_err(|_| Error::InvalidEnv {
            var: "COMM100_SITE_ID",
            reason: format!("`{site_id}` is not a number"),
        })?;
        Ok(builder.password_login(email, password, site_id))
    }

    /// Checks the configuration and builds the client. Sends nothing.
    pub fn build(self) -> Result<Comm100, Error> {
        let endpoints = match (&self.urls, &self.portal) {
            (Some((portal, api)), _) => Endpoints::custom(portal, api, self.http_policy)?,
            (None, Some(domain)) => Endpoints::from_portal(domain)?,
            (None, None) => {
                return Err(Error::Config(
                    "call .portal(\"portal1.comm100.io\") or .urls(portal, api)",
                ))
            }
        };
        let login_timeout = self.login_timeout.unwrap_or(DEFAULT_LOGIN_TIMEOUT);
        let retry = self.retry.unwrap_or_default();
        // A client of the user's keeps its own timeout, which this crate cannot read, unless
        // the user states one: each attempt then carries it (see `hooks::execute`).
        let (http, attempt_timeout) = match (self.http, self.http_builder) {
            (Some(http), _) => (
                http,
                self.timeout
                    .map_or(AttemptTimeout::Unknown, AttemptTimeout::Stated),
            ),
            (None, builder) => {
                let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
                let http = with_rules(
                    builder.unwrap_or_default(),
                    self.connect_timeout.unwrap_or(DEFAULT_TIMEOUT),
                    timeout,
                )?;
                (http, AttemptTimeout::Client(timeout))
            }
        };
        let user_agent = user_agent(self.user_agent.as_deref())?;
        let mut login_url = None;
        let mut known_password = None;
        let source: Arc<dyn TokenSource> = match self.credentials {
            Some(Credentials::Source(source)) => source,
            Some(Credentials::Password {
                email,
                password,
                site_id,
            }) => {
                let portal = generated::Client::new_with_client(
                    endpoints.portal_url(),
                    // The same client, so that the user's proxy, CA and certificate reach the
                    // login too.
                    http.clone(),
                    Inner {
                        auth: None,
                        // One request per login: the token cache's cool-down paces the next.
                        retry: RetryPolicy::disabled(),
                        api_origin: None,
                        login_url: None,
                        // The token cache bounds the login by `login_timeout`, and must be the
                        // one to report it: this budget only backs it up.
                        budget: login_timeout.saturating_mul(2),
                        // A token response is small: anything bigger is not one.
                        max_body: crate::body::ERROR_BODY_LIMIT,
                        user_agent: user_agent.clone(),
                        password: Some(password.clone()),
                        // A login counts against the shared budget; the daily limit does not
                        // apply to the token host.
                        rate: self.rate.clone(),
                        daily: None,
                        attempt_timeout,
                    },
                );
                known_password = Some(password.clone());
                login_url = reqwest::Url::parse(&format!(
                    "{}{}",
                    endpoints.portal_url(),
                    PasswordLogin::PATH
                ))
                .ok();
                Arc::new(PasswordLogin {
                    portal,
                    email,
                    password,
                    site_id,
                })
            }
            None => {
                return Err(Error::Config(
                    "call .password_login(..), .static_token(..) or .token_source(..)",
                ))
            }
        };
        let auth = Arc::new(
            TokenCache::new(
                source,
                self.refresh_buffer.unwrap_or(DEFAULT_REFRESH_BUFFER),
                login_timeout,
            )
            .forced_refresh_interval(
                self.forced_refresh_interval
                    .unwrap_or(FORCED_REFRESH_INTERVAL),
            ),
        );
        let client = generated::Client::new_with_client(
            endpoints.api_url(),
            http,
            Inner {
                auth: Some(auth.clone()),
                retry,
                api_origin: Some(endpoints.api_origin()),
                login_url,
                budget: self.operation_timeout.unwrap_or(DEFAULT_OPERATION_TIMEOUT),
                max_body: self
                    .max_response_body
                    .unwrap_or(crate::body::DEFAULT_MAX_RESPONSE_BODY),
                user_agent,
                password: known_password,
                rate: self.rate,
                daily: Some(self.daily.unwrap_or_default()),
                attempt_timeout,
            },
        );
        Ok(Comm100 {
            client,
            endpoints,
            auth,
        })
    }
}

/// The connect and request timeouts of the default HTTP client, as progenitor's default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// The time budget of one operation: three 15 s attempts would not fit, so a server that
/// answers nothing costs a caller a minute at most.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The redirect policy of the default HTTP client: at most 5 redirects, all within the origin
/// of the first request, so that a redirect can never carry a request (or a login's password)
/// to another host. Give it to a client of your own (see [`Comm100Builder::http_client`]).
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        match first {
            Some(first) if attempt.previous().len() < 5 && same_origin(&first, attempt.url()) => {
                attempt.follow()
            }
            _ => attempt.stop(),
        }
    })
}

/// Builds the HTTP client with this crate's rules: the timeouts, and redirects only within one
/// origin.
fn with_rules(
    builder: reqwest::ClientBuilder,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, Error> {
    // reqwest copies every request (a header map and its allocations per call) in case an
    // HTTP/2 server refuses it unprocessed, to send it again. The hooks' loop does all the
    // retrying, by the outcome rules, and takes such a refusal as a request not sent
    // (`hooks::refused_unprocessed`): reqwest's retries are off.
    let builder = builder.retry(reqwest::retry::never().max_retries_per_request(0));
    builder
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(same_origin_redirects())
        .build()
        .map_err(|e| Error::Transport(std::sync::Arc::new(e)))
}

/// `comm100-rs/<version>`, then the user's suffix.
fn user_agent(suffix: Option<&str>) -> Result<reqwest::header::HeaderValue, Error> {
    let value = match suffix.map(str::trim).filter(|s| !s.is_empty()) {
        Some(suffix) => format!("{} {suffix}", crate::hooks::USER_AGENT_PREFIX),
        None => crate::hooks::USER_AGENT_PREFIX.to_string(),
    };
    reqwest::header::HeaderValue::try_from(value)
        .map_err(|_| Error::Config("the User-Agent suffix holds characters a header cannot carry"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const FULL: [(&str, &str); 4] = [
        ("COMM100_PORTAL", "portal3.comm100.io"),
        ("COMM100_EMAIL", "a@example.com"),
        ("COMM100_PASSWORD", "hunter2-secret"),
        ("COMM100_SITE_ID", "10000"),
    ];

    #[test]
    fn env_selects_hosts_and_overrides_win() {
        let c = Comm100Builder::from_vars(vars(&FULL))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.endpoints().api_url(), "https://api3.comm100.io/api/v3");
        let mut with_override = FULL.to_vec();
        with_override.push(("COMM100_API_URL", "http://127.0.0.1:9/api/v3"));
        let c = Comm100Builder::from_vars(vars(&with_override))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.endpoints().api_url(), "http://127.0.0.1:9/api/v3");
        assert_eq!(c.endpoints().portal_url(), "https://portal3.comm100.io");
        let only_urls = [
            ("COMM100_PORTAL_URL", "http://127.0.0.1:9"),
            ("COMM100_API_URL", "http://127.0.0.1:9/api/v3"),
            ("COMM100_EMAIL", "a@example.com"),
            ("COMM100_PASSWORD", "p"),
            ("COMM100_SITE_ID", "1"),
        ];
        assert!(Comm100Builder::from_vars(vars(&only_urls))
            .unwrap()
            .build()
            .is_ok());
    }

    #[test]
    fn env_errors_name_the_variable_and_never_the_password() {
        for missing in [
            "COMM100_PORTAL",
            "COMM100_EMAIL",
            "COMM100_PASSWORD",
            "COMM100_SITE_ID",
        ] {
            let partial: Vec<_> = FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = Comm100Builder::from_vars(vars(&partial)).unwrap_err();
            assert!(
                matches!(err, Error::MissingEnv { var, .. } if var == missing),
                "{err}"
            );
            assert!(err.to_string().contains(missing));
        }
        let mut bad = FULL.to_vec();
        bad[3] = ("COMM100_SITE_ID", "ten");
        let err = Comm100Builder::from_vars(vars(&bad)).unwrap_err();
        assert!(
            err.to_string().contains("COMM100_SITE_ID") && err.to_string().contains("ten"),
            "{err}"
        );
        bad[3] = ("COMM100_SITE_ID", "1");
        bad[0] = ("COMM100_PORTAL", "example.com");
        let err = Comm100Builder::from_vars(vars(&bad)).unwrap_err();
        assert!(err.to_string().contains("COMM100_PORTAL"), "{err}");
        assert!(!err.to_string().contains("hunter2-secret"));
    }

    #[test]
    fn env_password_is_kept_byte_for_byte_and_only_empty_is_missing() {
        let password_of = |password: &str| {
            let mut with = FULL.to_vec();
            with[2] = ("COMM100_PASSWORD", password);
            match Comm100Builder::from_vars(vars(&with)) {
                Ok(Comm100Builder {
                    credentials: Some(Credentials::Password { password, .. }),
                    ..
                }) => Ok(password.expose_secret().to_string()),
                Ok(_) => unreachable!("from_vars always sets a password login"),
                Err(e) => Err(e),
            }
        };
        for kept in ["  pass word  ", " ", "\tp\n", "pw"] {
            assert_eq!(password_of(kept).unwrap(), kept);
        }
        assert!(matches!(
            password_of(""),
            Err(Error::MissingEnv {
                var: "COMM100_PASSWORD",
                ..
            })
        ));
        // The other variables keep their trim.
        let mut spaced = FULL.to_vec();
        spaced[1] = ("COMM100_EMAIL", "  a@example.com ");
        spaced[3] = ("COMM100_SITE_ID", " 10000 ");
        let builder = Comm100Builder::from_vars(vars(&spaced)).unwrap();
        assert!(matches!(
            builder.credentials,
            Some(Credentials::Password { ref email, site_id: 10000, .. }) if email == "a@example.com"
        ));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let builder = Comm100::builder()
            .portal("portal1.comm100.io")
            .password_login("a@example.com", "hunter2-secret", 1);
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        let client = builder.build().unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        let token = Comm100::builder()
            .portal("portal1.comm100.io")
            .static_token("tok-secret-value")
            .build()
            .unwrap();
        assert!(!format!("{token:?}").contains("tok-secret-value"));
        // A password in a URL is refused at `build`, and never shown before.
        let builder = Comm100::builder()
            .urls(
                "https://agent:url-secret@portal.example",
                "https://agent:url-secret@api.example/api/v3",
            )
            .portal("https://agent:url-secret@portal1.comm100.io")
            .static_token("t");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("url-secret"), "{shown}");
        let err = builder.build().unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("url-secret"), "{err:?}");
    }

    #[test]
    fn build_requires_hosts_and_credentials() {
        assert!(matches!(
            Comm100::builder().static_token("t").build(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Comm100::builder().portal("portal1.comm100.io").build(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Comm100::builder()
                .portal("portal1.comm100.com")
                .static_token("t")
                .build(),
            Err(Error::InvalidDomain { .. })
        ));
    }
}
