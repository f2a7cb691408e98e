//! The hooks progenitor calls around every generated operation: bearer auth, retries within a
//! time budget, a tracing span per attempt, bounded bodies, any `2xx` taken as the documented
//! success, and error bodies normalised so that none hides its status.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use reqwest::{Request, Response, StatusCode, Url};
use tracing::Instrument;

use crate::auth::TokenCache;
use crate::body::{self, error_response, read_error_body, ReadError};
use crate::domain::same_origin;
use crate::error::{Error, ErrorDetails, LOGIN_OPERATION};
use crate::generated::Client;
use crate::limits::{DailyLimitBreaker, Gate, RateBudget};
use crate::outcome::{
    decide, is_idempotent, is_transient_status, may_send_again, Answer, Outcome, Situation, Step,
};
use crate::retry::{self, RetryPolicy};

// The generated code decodes through these (see `codegen/mod.rs`).
pub(crate) use crate::body::{decode_read, decode_response};

/// The `User-Agent` every request carries, before the user's suffix.
pub(crate) const USER_AGENT_PREFIX: &str = concat!("comm100-rs/", env!("CARGO_PKG_VERSION"));

/// The header that carries the status the server sent when the hooks took another `2xx` as an
/// operation's documented success.
pub const ORIGINAL_STATUS_HEADER: &str = "comm100-original-status";

/// The header that marks a success the hooks inferred rather than received: a `DELETE`
/// answered `404` after an earlier attempt got no answer carries
/// [`DONE_BY_EARLIER_ATTEMPT`] here, and `404` in [`ORIGINAL_STATUS_HEADER`].
pub const OUTCOME_HEADER: &str = "comm100-outcome";

/// The value of [`OUTCOME_HEADER`] on a delete that an earlier attempt most probably did.
pub const DONE_BY_EARLIER_ATTEMPT: &str = "done-by-earlier-attempt";

/// What the generated [`Client`] carries for these hooks. Built by [`crate::Comm100Builder`];
/// a generated client made without one has no auth.
#[derive(Clone)]
pub struct Inner {
    pub(crate) auth: Option<Arc<TokenCache>>,
    pub(crate) retry: RetryPolicy,
    /// The only origin that ever receives the token.
    pub(crate) api_origin: Option<Url>,
    /// The token operation's URL, named by the error of a login that got no answer.
    pub(crate) login_url: Option<Url>,
    /// The most time one operation may take, its attempts, waits and login included.
    pub(crate) budget: Duration,
    /// The largest success body read.
    pub(crate) max_body: usize,
    /// `comm100-rs/<version>`, and the user's suffix.
    pub(crate) user_agent: HeaderValue,
    /// The login's password, redacted from every message a server sends back.
    pub(crate) password: Option<crate::SensitiveString>,
    /// What bounds one attempt, as far as this crate knows.
    pub(crate) attempt_timeout: AttemptTimeout,
    /// The request budget shared with other clients, if any.
    pub(crate) rate: Option<RateBudget>,
    /// The daily-limit breaker, shared by the client's clones.
    pub(crate) daily: Option<DailyLimitBreaker>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("auth", &self.auth.as_ref().map(|_| "token cache"))
            .field("retry", &self.retry)
            .field("api_origin", &self.api_origin.as_ref().map(Url::as_str))
            .field("login_url", &self.login_url.as_ref().map(Url::as_str))
            .field("budget", &self.budget)
            .field("max_body", &self.max_body)
            .field("user_agent", &self.user_agent)
            .field("password", &self.password)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("rate", &self.rate)
            .field("daily", &self.daily)
            .finish()
    }
}

impl ClientHooks<Inner> for Client {
    async fn pre<E>(
        &self,
        request: &mut Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        // progenitor's `api-version` header, an Oxide convention, is left out of the generated
        // code (codegen/mod.rs): Comm100 versions by path.
        request
            .headers_mut()
            .insert(USER_AGENT, self.inner().user_agent.clone());
        Ok(())
    }

    /// Turns a failure that `exec` could not return as a `reqwest::Error` (one that must not be
    /// retried: see [`Deferred`]) into a `ResponseBodyError` without a status, which progenitor's
    /// `is_retryable` calls final. Runs before the generated code looks at the status, so it
    /// holds for operations documented without a body too.
    async fn post<E>(
        &self,
        result: &reqwest::Result<Response>,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let Ok(response) = result else {
            return Ok(());
        };
        match response.extensions().get::<Deferred>() {
            None => Ok(()),
            Some(Deferred(error)) => Err(progenitor_client::Error::ResponseBodyError(
                body::reqwest_error(error.clone(), Some(response.url())).await,
            )),
        }
    }

    /// The loop's future in a small adapter, not awaited inside another `async` block: every
    /// call moves it, and such a block would hold a second copy of the request.
    fn exec(
        &self,
        request: Request,
        info: &OperationInfo,
    ) -> impl Future<Output = reqwest::Result<Response>> {
        let documented = documented_success(info.operation_id);
        WithBody {
            call: start(self, request, info, documented),
        }
    }
}

/// What the generated operations call instead of [`ClientHooks::exec`] (see `codegen/mod.rs`):
/// the same loop, told the operation's documented success by the generated code, which gets a
/// success body back beside its response instead of in the response's extensions (an
/// allocation and a lookup per call).
pub(crate) fn exec_documented<'a>(
    client: &'a Client,
    request: Request,
    info: &OperationInfo,
    status: u16,
    has_body: bool,
) -> impl Future<Output = (reqwest::Result<Response>, Option<bytes::Bytes>)> + 'a {
    start(client, request, info, Some((status, has_body)))
}

/// The loop's future for one call, with its deadline and bookkeeping.
fn start<'a>(
    client: &'a Client,
    request: Request,
    info: &OperationInfo,
    documented: Option<(u16, bool)>,
) -> impl Future<Output = (reqwest::Result<Response>, Option<bytes::Bytes>)> + 'a {
    let inner = client.inner();
    let now = tokio::time::Instant::now();
    // A budget too large to add is no budget: a century stands in for it.
    let deadline = now
        .checked_add(inner.budget)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
    let call = Call {
        operation_id: info.operation_id,
        idempotent: is_idempotent(request.method()) || info.operation_id == LOGIN_OPERATION,
        max_body: inner.max_body,
        budget: inner.budget,
        documented,
    };
    execute(client.client(), inner, request, call, deadline)
}

pin_project_lite::pin_project! {
    /// The loop's result as [`ClientHooks::exec`] returns it: a success body read by the loop
    /// goes into the response's extensions ([`body::ReadBody`]), where `decode_response` and
    /// raw calls find it.
    struct WithBody<F> {
        #[pin]
        call: F,
    }
}

impl<F> Future for WithBody<F>
where
    F: Future<Output = (reqwest::Result<Response>, Option<bytes::Bytes>)>,
{
    type Output = reqwest::Result<Response>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.project().call.poll(cx).map(|(result, read)| {
            let mut response = result?;
            if let Some(bytes) = read {
                response.extensions_mut().insert(body::ReadBody(bytes));
            }
            Ok(response)
        })
    }
}

/// A copy of `request` for one attempt, or `None` when its body is a stream.
///
/// reqwest's `Request::try_clone` sets the copy's timeout through `timeout_mut`, which
/// allocates the request's configuration map even when there is no timeout, and then replaces
/// that map with a clone of the original's: six hundred instructions a call for nothing. The
/// timeout is the only configuration a reqwest 0.13 request carries besides its fields.
fn copy_of(request: &Request) -> Option<Request> {
    let body = match request.body() {
        None => None,
        Some(body) => Some(reqwest::Body::from(bytes::Bytes::copy_from_slice(
            body.as_bytes()?,
        ))),
    };
    let mut copy = Request::new(request.method().clone(), request.url().clone());
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    if let Some(timeout) = request.timeout() {
        *copy.timeout_mut() = Some(*timeout);
    }
    *copy.body_mut() = body;
    Some(copy)
}

/// What bounds one attempt of a call, as far as this crate knows. With a timeout known, each
/// attempt ends by the budget's deadline through it, and no timer is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttemptTimeout {
    /// The client this crate built times out each request after this: an attempt needs a
    /// timeout of its own only when the budget's time left is shorter.
    Client(Duration),
    /// Stated by the user beside a client of their own: every attempt carries it (or the
    /// budget's time left, when shorter) in place of the client's own.
    Stated(Duration),
    /// A client of the user's, whose timeout is unknown: a [`Timer`] bounds the call.
    Unknown,
}

/// A failure that must reach the caller as not retryable: `exec` returns a placeholder response
/// carrying it, and `post` turns it into the operation's error. `exec` itself can only return a
/// `reqwest::Error`, which progenitor makes a `CommunicationError`, always called retryable.
#[derive(Clone)]
struct Deferred(Error);

/// One operation call, as the loop and the budget see it.
struct Call {
    operation_id: &'static str,
    /// Sending it twice does what sending it once does (see [`Situation::idempotent`]).
    idempotent: bool,
    /// The largest success body read.
    max_body: usize,
    /// The time budget of the whole call.
    budget: Duration,
    /// The operation's documented success: its status and whether it has a body.
    documented: Option<(u16, bool)>,
}

impl Call {
    /// A failure without an answer to hand over: a `reqwest::Error` when sending again may
    /// succeed without doing anything twice, otherwise a deferred error (see [`Deferred`]).
    /// The URL is named when the failure knows it; no URL is copied for a call that succeeds.
    async fn fail(
        &self,
        outcome: Outcome,
        cause: Error,
        url: Option<&Url>,
    ) -> reqwest::Result<Response> {
        let retryable = may_send_again(outcome, self.idempotent) && cause.is_retryable();
        let error = Error::Classified {
            operation_id: self.operation_id,
            outcome,
            retryable,
            cause: Box::new(cause),
        };
        if retryable {
            return Err(body::reqwest_error(error, url).await);
        }
        Ok(deferred(url, error))
    }

    /// The time budget ran out: the failure, with `outcome`, what the call has done so far.
    async fn out_of_budget(
        &self,
        outcome: Outcome,
        url: Option<&Url>,
    ) -> reqwest::Result<Response> {
        let budget = self.budget;
        tracing::warn!(
            comm100.operation_id = self.operation_id,
            budget_ms = budget.as_millis() as u64,
            outcome = outcome.as_str(),
            "the operation ran out of its time budget"
        );
        self.fail(outcome, Error::OperationTimeout(budget), url)
            .await
    }
}

/// The placeholder response that carries a [`Deferred`] failure from `exec` to `post`. Its
/// status is an error's, and its body is empty: nothing can take it for a success.
fn deferred(url: Option<&Url>, error: Error) -> Response {
    use reqwest::ResponseBuilderExt as _;
    let mut builder = http::Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(url) = url {
        builder = builder.url(url.clone());
    }
    let mut response = builder
        .body(reqwest::Body::from(bytes::Bytes::new()))
        .unwrap_or_default();
    response.extensions_mut().insert(Deferred(error));
    Response::from(response)
}

/// The retry loop: sends, waits, and does what [`decide`] says after each attempt.
///
/// The deadline bounds every wait. With the HTTP client's timeout known, each attempt carries
/// the smaller of it and the time left, which covers its body too; otherwise one [`Timer`] per
/// call races the waits for an answer.
fn execute<'a>(
    client: &'a reqwest::Client,
    inner: &'a Inner,
    request: Request,
    call: Call,
    deadline: tokio::time::Instant,
) -> impl Future<Output = (reqwest::Result<Response>, Option<bytes::Bytes>)> + 'a {
    let method = request.method().clone();
    // The token goes to the API origin and nowhere else.
    let auth = inner.auth.as_ref().filter(|_| {
        inner
            .api_origin
            .as_ref()
            .is_some_and(|o| same_origin(o, request.url()))
    });
    // Each attempt sends a copy; a body that cannot be copied (a stream) gets one attempt,
    // with the original. (Bound here, outside the loop's future, which then holds the
    // request once.)
    let mut original = Some(request);
    async move {
        let call = &call;
        let operation_id = call.operation_id;
        let policy = &inner.retry;
        let mut timer = Timer {
            deadline: (inner.attempt_timeout == AttemptTimeout::Unknown).then_some(deadline),
            sleep: None,
        };
        let mut refreshed = false;
        // Counts attempts that use up the policy; the one re-send after a 401 does not.
        let mut attempt = 0u32;
        // Counts every request sent, for `http.request.resend_count`.
        let mut sent = 0u32;
        // The worst outcome of the attempts that have ended.
        let mut settled = Outcome::NotSent;
        let mut earlier_unknown = false;
        // The success body read, when the response goes on without it.
        let mut success_body = None;
        let result = 'call: loop {
            attempt += 1;
            let token = match auth {
                Some(cache) => {
                    // A fresh token needs no wait; the wait for a login is bounded here.
                    let got = match cache.fresh() {
                        Some(token) => Ok(token),
                        None => {
                            match Box::pin(tokio::time::timeout_at(deadline, cache.get())).await {
                                Ok(got) => got,
                                Err(_) => break 'call call.out_of_budget(settled, None).await,
                            }
                        }
                    };
                    match got {
                        Ok(token) => Some(token),
                        Err(e) => {
                            break 'call Box::pin(login_failure(e, inner.login_url.as_ref())).await
                        }
                    }
                }
                None => None,
            };

            // The daily limit and the shared budget, before anything is sent.
            if let Some(daily) = &inner.daily {
                if let Gate::Closed(until) = daily.gate() {
                    break 'call call
                        .fail(settled, Error::DailyLimitReached { until }, None)
                        .await;
                }
            }
            if let Some(rate) = &inner.rate {
                if let Err(wait) = Box::pin(rate.acquire(deadline)).await {
                    break 'call call.fail(settled, Error::RateBudget { wait }, None).await;
                }
            }

            // The attempt carries the smaller of the client's timeout and the time left, which
            // covers its body too; when the budget is the smaller, its timeout is the budget's.
            // A request's own timeout replaces the client's (reqwest), and costs an allocation:
            // a client of this crate's own, whose timeout is the attempt's, needs it only when
            // the budget binds.
            let mut budget_binds = false;
            let mut attempt_timeout = None;
            if let AttemptTimeout::Client(timeout) | AttemptTimeout::Stated(timeout) =
                inner.attempt_timeout
            {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break 'call call.out_of_budget(settled, None).await;
                }
                budget_binds = left < timeout;
                if budget_binds || matches!(inner.attempt_timeout, AttemptTimeout::Stated(_)) {
                    attempt_timeout = Some(left.min(timeout));
                }
            }

            // The token goes into the original, so that each copy has it: inserted into a copy,
            // whose map has no room to spare, it would grow the map on every attempt. (A new
            // token replaces the old one in place.)
            if let (Some(token), Some(original)) = (&token, original.as_mut()) {
                original
                    .headers_mut()
                    .insert(AUTHORIZATION, token.bearer().clone());
            }

            // The copy is made after the waits above and handed to reqwest within this block,
            // so that the loop's future keeps no room for it across a wait.
            let (pending, span, resendable) = {
                let (mut this, resendable) = match original.as_ref().and_then(copy_of) {
                    Some(copy) => (copy, true),
                    None => match original.take() {
                        Some(request) => (request, false),
                        None => unreachable!(
                            "the original is taken only for an attempt after which the loop ends"
                        ),
                    },
                };
                if attempt_timeout.is_some() {
                    *this.timeout_mut() = attempt_timeout;
                }
                // The URL carries no secret (the token travels in a header), so it may be
                // traced. Without a subscriber that takes DEBUG, no span is made at all (not
                // even the disabled one that tracing's `log` feature would fill in for `log`).
                let span = match tracing::level_enabled!(tracing::Level::DEBUG) {
                    true => attempt_span(&method, this.url(), operation_id, sent),
                    false => tracing::Span::none(),
                };
                (client.execute(this), span, resendable)
            };
            sent += 1;
            // What the call may have done if the budget runs out from here on.
            let sending_exposure = settled.max(Outcome::Unknown);
            let reading_exposure = settled.max(Outcome::Performed);
            // No span work when no subscriber wants the span.
            let sending = match span.is_disabled() {
                true => bounded!(timer, pending),
                false => {
                    let result = bounded!(timer, pending.instrument(span.clone()));
                    if let Some(result) = &result {
                        record_outcome(&span, result);
                    }
                    result
                }
            };

            // What happened. A 2xx body is read here, so that its failure is an answer like any
            // other and the budget covers it.
            let (answer, mut response, failure) = match sending {
                None => break 'call call.out_of_budget(sending_exposure, None).await,
                Some(Ok(response)) if response.status().is_success() => {
                    let reading = bounded!(timer, read_success(response, call));
                    let Some(read) = reading else {
                        break 'call call.out_of_budget(reading_exposure, None).await;
                    };
                    match read {
                        // A success ends the call whatever else holds (the first rule of
                        // `decide` for a 2xx), so the inputs of a retry (the policy's wait,
                        // the time left) are not worked out for it.
                        Ok((response, body)) => {
                            if let Some(daily) = &inner.daily {
                                daily.close();
                            }
                            success_body = body;
                            break 'call Ok(response);
                        }
                        Err(ReadError::TooLarge) => {
                            (Answer::BrokenSuccess { too_large: true }, None, None)
                        }
                        Err(ReadError::Transport(e)) if budget_binds && e.is_timeout() => {
                            break 'call call.out_of_budget(reading_exposure, e.url()).await;
                        }
                        Err(ReadError::Transport(e)) => {
                            (Answer::BrokenSuccess { too_large: false }, None, Some(e))
                        }
                    }
                }
                Some(Ok(response)) => (Answer::Status(response.status()), Some(response), None),
                Some(Err(e)) if budget_binds && e.is_timeout() && !e.is_connect() => {
                    break 'call call.out_of_budget(sending_exposure, e.url()).await;
                }
                Some(Err(e)) if e.is_connect() || refused_unprocessed(&e) => {
                    (Answer::NotConnected, None, Some(e))
                }
                Some(Err(e)) => (Answer::Lost, None, Some(e)),
            };

            // What to do.
            let retry_after = response
                .as_ref()
                .and_then(|r| retry::retry_after(r.headers()));
            if let Answer::Status(status) = answer {
                match status.as_u16() {
                    429 => {
                        if let Some(rate) = &inner.rate {
                            rate.throttled(retry_after);
                        }
                    }
                    // A 403 may be the daily limit: `give_up` reads its body to tell.
                    403 => {}
                    _ if status.as_u16() < 500 => {
                        if let Some(daily) = &inner.daily {
                            daily.close();
                        }
                    }
                    _ => {}
                }
            }
            let refresh_may_help = answer == Answer::Status(StatusCode::UNAUTHORIZED)
                && !refreshed
                && resendable
                && matches!((auth, &token), (Some(cache), Some(token)) if cache.refused(token));
            let step = decide(&Situation {
                method: &method,
                idempotent: call.idempotent,
                answer,
                attempt,
                max_attempts: policy.max_attempts,
                resendable,
                refresh_may_help,
                wait: policy.delay(attempt, retry_after),
                time_left: deadline.saturating_duration_since(tokio::time::Instant::now()),
                earlier_unknown,
            });
            settled = settled.max(answer.outcome());
            earlier_unknown |= answer.outcome() == Outcome::Unknown;

            match step {
                Step::Succeed => match response {
                    Some(response) => break 'call Ok(response),
                    None => unreachable!("a success has a response"),
                },
                Step::SucceedEarlier => {
                    tracing::info!(
                    comm100.operation_id = operation_id,
                    "the resource is gone after an attempt that got no answer: taken as deleted by that attempt"
                );
                    let Some(mut response) = response.take() else {
                        unreachable!("a 404 has a response")
                    };
                    break 'call Ok(done_earlier(&mut response, call.documented));
                }
                Step::Refresh => {
                    refreshed = true;
                    attempt -= 1;
                    tracing::info!(
                        comm100.operation_id = operation_id,
                        "the token was refused; sending the request once more with a new one"
                    );
                }
                Step::Resend(wait) => {
                    match (&response, &failure) {
                        (Some(r), _) => tracing::info!(
                            comm100.operation_id = operation_id,
                            http.response.status_code = r.status().as_u16(),
                            retry_in_ms = wait.as_millis() as u64,
                            "retryable status; retrying"
                        ),
                        (None, Some(e)) => tracing::info!(
                            comm100.operation_id = operation_id,
                            error.type = answer_type(answer),
                            error = %e,
                            retry_in_ms = wait.as_millis() as u64,
                            "transport error; retrying"
                        ),
                        (None, None) => {}
                    }
                    Box::pin(tokio::time::sleep(wait)).await;
                }
                Step::Fail(outcome) => {
                    // A server may echo the request's credentials: none stays in a message.
                    let secrets: Vec<&str> = inner
                        .password
                        .as_ref()
                        .map(|p| p.expose_secret())
                        .into_iter()
                        .chain(token.as_ref().map(|t| t.expose_secret()))
                        .collect();
                    let ending = bounded!(
                        timer,
                        Box::pin(give_up(
                            response,
                            failure,
                            outcome,
                            retry_after,
                            call,
                            &secrets,
                            inner.daily.as_ref(),
                        )),
                    );
                    break 'call match ending {
                        Some(result) => result,
                        None => call.out_of_budget(settled, None).await,
                    };
                }
            }
        };
        (result, success_body)
    }
}

/// The timer of a call whose HTTP client has a timeout this crate does not know (a client of
/// the user's, none stated): it bounds the waits for an answer by the call's deadline. One per
/// call, armed at the first wait. With the timeout known, no timer is made: each attempt
/// carries its own timeout.
struct Timer {
    /// The call's deadline, when it needs a timer.
    deadline: Option<tokio::time::Instant>,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Timer {
    /// The timer's sleep, armed on first use; `None` when the call needs no timer.
    fn sleep(&mut self) -> Option<&mut std::pin::Pin<Box<tokio::time::Sleep>>> {
        let deadline = self.deadline?;
        Some(
            self.sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline))),
        )
    }
}

/// Awaits `$work`, raced against the call's [`Timer`] when it has one: `None` if the deadline
/// passed first. A macro, so that a call without a timer awaits the work as it is.
macro_rules! bounded {
    ($timer:expr, $work:expr $(,)?) => {
        match $timer.sleep() {
            None => Some($work.await),
            Some(sleep) => Bounded { work: $work, sleep }.await,
        }
    };
}
use bounded;

pin_project_lite::pin_project! {
    /// A wait raced against the call's [`Timer`]. A hand-written future rather than an
    /// `async fn`, which would keep the work twice.
    struct Bounded<'t, F> {
        #[pin]
        work: F,
        sleep: &'t mut std::pin::Pin<Box<tokio::time::Sleep>>,
    }
}

impl<F: Future> Future for Bounded<'_, F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        if let std::task::Poll::Ready(out) = this.work.poll(cx) {
            return std::task::Poll::Ready(Some(out));
        }
        this.sleep.as_mut().poll(cx).map(|()| None)
    }
}

/// The end of a call that failed with `outcome`: an error response as progenitor expects it,
/// or a failure in the shape that tells whether it may be retried (see [`Call::fail`]).
async fn give_up(
    response: Option<Response>,
    failure: Option<reqwest::Error>,
    outcome: Outcome,
    retry_after: Option<Duration>,
    call: &Call,
    secrets: &[&str],
    daily: Option<&DailyLimitBreaker>,
) -> reqwest::Result<Response> {
    let operation_id = call.operation_id;
    match (response, failure) {
        (Some(mut response), _) => {
            let status = response.status();
            if retry_after.is_some() && is_transient_status(status) {
                tracing::warn!(
                    comm100.operation_id = operation_id,
                    http.response.status_code = status.as_u16(),
                    retry_after_s = retry_after.map(|d| d.as_secs()),
                    "retryable status, but no attempt or wait is left within the policy and the budget; giving up"
                );
            }
            let (code, message) = read_error_body(&mut response, secrets).await;
            if let (StatusCode::FORBIDDEN, Some(daily)) = (status, daily) {
                match crate::error::is_daily_limit(&message) {
                    true => daily.trip(),
                    false => daily.close(),
                }
            }
            // A 5xx of a request that must not be sent twice: the caller gets it in the shape
            // that says so.
            if status.is_server_error() && !call.idempotent {
                let cause = Error::ServerError {
                    status,
                    code,
                    message,
                    retry_after,
                };
                return call.fail(outcome, cause, Some(response.url())).await;
            }
            let headers = std::mem::take(response.headers_mut());
            let mut normalized =
                error_response(status, headers, code, message.clone(), operation_id);
            if !(status.is_client_error() || status.is_server_error()) {
                // A 3xx or 1xx reaches the caller as progenitor's `UnexpectedResponse`: its
                // body is gone, so its code and message travel beside it.
                normalized
                    .extensions_mut()
                    .insert(ErrorDetails { code, message });
            }
            Ok(normalized)
        }
        (None, Some(error)) => {
            tracing::warn!(
                comm100.operation_id = operation_id,
                outcome = outcome.as_str(),
                error.type = error_type(&error),
                error = %error,
                "the request failed; giving up"
            );
            // A failure that may be retried keeps reqwest's own error, for `is_timeout()` and
            // the like.
            if may_send_again(outcome, call.idempotent) {
                return Err(error);
            }
            let url = error.url().cloned();
            call.fail(outcome, Error::Transport(Arc::new(error)), url.as_ref())
                .await
        }
        // A success longer than the limit.
        (None, None) => {
            let cause = Error::BodyTooLarge {
                limit: call.max_body,
            };
            call.fail(outcome, cause, None).await
        }
    }
}
/// A `DELETE` answered `404` after an attempt that got no answer: the documented success, with
/// the server's status in [`ORIGINAL_STATUS_HEADER`] and [`OUTCOME_HEADER`] saying that an
/// earlier attempt most probably did it.
fn done_earlier(response: &mut Response, documented: Option<(u16, bool)>) -> Response {
    let status = documented
        .and_then(|(status, _)| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::NO_CONTENT);
    let mut done = rebuilt(status, response, bytes::Bytes::new());
    let headers = done.headers_mut();
    headers.remove(reqwest::header::CONTENT_LENGTH);
    headers.remove(reqwest::header::CONTENT_TYPE);
    headers.insert(
        HeaderName::from_static(OUTCOME_HEADER),
        HeaderValue::from_static(DONE_BY_EARLIER_ATTEMPT),
    );
    done
}

/// A low-cardinality name for a failure without an answer, for `error.type`.
fn answer_type(answer: Answer) -> &'static str {
    match answer {
        Answer::NotConnected => "connect",
        Answer::Lost => "no_answer",
        Answer::BrokenSuccess { .. } => "body",
        Answer::Status(_) => "status",
    }
}

/// The span of one attempt, after the OpenTelemetry conventions for HTTP client spans, at
/// DEBUG: one per request sent is detail, not what a production log wants. Retries, give-ups
/// and refreshes are events of their own, at INFO and WARN.
fn attempt_span(
    method: &reqwest::Method,
    url: &Url,
    operation_id: &str,
    resends: u32,
) -> tracing::Span {
    let span = tracing::debug_span!(
        "comm100.request",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        url.full = %url,
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default(),
        http.request.resend_count = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        comm100.operation_id = operation_id,
    );
    // The conventions set the resend count only on a request sent again.
    if resends > 0 {
        span.record("http.request.resend_count", resends);
    }
    span
}

/// Records the status, or the failure, of an attempt on its span.
fn record_outcome(span: &tracing::Span, result: &reqwest::Result<Response>) {
    match result {
        Ok(response) => {
            let status = response.status();
            span.record("http.response.status_code", status.as_u16());
            if status.as_u16() >= 400 {
                // The conventions name an error status by its code.
                span.record("error.type", status.as_str());
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(error) => {
            span.record("error.type", error_type(error));
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// An HTTP/2 server's word that it did not process the request: a `REFUSED_STREAM`, or a
/// graceful `GOAWAY` (RFC 9113, section 8.7). Like a connection never made, it leaves the
/// request safe to send again, whatever its method. (reqwest would resend it itself; the
/// clients this crate builds leave the retrying to the hooks.)
#[cfg(feature = "http2")]
fn refused_unprocessed(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            let refused = h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM);
            let going_away = h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR);
            return h2.is_remote() && (refused || going_away);
        }
        source = cause.source();
    }
    false
}

#[cfg(not(feature = "http2"))]
fn refused_unprocessed(_: &reqwest::Error) -> bool {
    false
}

/// A low-cardinality name for a transport failure, for `error.type`.
fn error_type(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_redirect() {
        "redirect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "_OTHER"
    }
}

/// The documented success of an operation: its status and whether it has a body. Generated
/// from the spec by `codegen`.
fn documented_success(operation_id: &str) -> Option<(u16, bool)> {
    crate::generated::DOCUMENTED_SUCCESS
        .iter()
        .find(|(id, _, _)| *id == operation_id)
        .map(|&(_, status, has_body)| (status, has_body))
}

/// Reads a success body (at most `max_body` bytes) so that the attempt, and its budget, include
/// it, and takes any `2xx` as the operation's documented success.
///
/// The documented status replaces another `2xx` (`200` for a `201`, `200` with a body for a
/// `204`), and the status the server sent goes into the [`ORIGINAL_STATUS_HEADER`] header; a
/// success documented without a body gets an empty one. A body over the limit, or a connection
/// that fails while reading it, is the loop's to judge.
async fn read_success(
    mut response: Response,
    call: &Call,
) -> Result<(Response, Option<bytes::Bytes>), ReadError> {
    let documented = call.documented;
    let sent = response.status();
    let status = documented
        .and_then(|(status, _)| StatusCode::from_u16(status).ok())
        .unwrap_or(sent);
    let wants_body = documented.is_none_or(|(_, has_body)| has_body);
    if !wants_body {
        // No body is documented, so none is read: the connection drops what was sent.
        return Ok(match status == sent {
            true => (response, None),
            false => (rebuilt(status, &mut response, bytes::Bytes::new()), None),
        });
    }
    let (bytes, _) = body::read_capped(&mut response, call.max_body, false).await?;
    if status == sent {
        // The common case: the response goes on as it came, its body beside it.
        return Ok((response, Some(bytes)));
    }
    Ok((rebuilt(status, &mut response, bytes), None))
}

/// The response as the documented `status`, with `body`, and the status the server sent in
/// [`ORIGINAL_STATUS_HEADER`]: another `2xx`, or the `404` of [`done_earlier`].
fn rebuilt(status: StatusCode, response: &mut Response, body: bytes::Bytes) -> Response {
    let sent = response.status();
    let mut rebuilt = body::with_body(status, response, reqwest::Body::from(body));
    rebuilt.headers_mut().insert(
        HeaderName::from_static(ORIGINAL_STATUS_HEADER),
        HeaderValue::from(sent.as_u16()),
    );
    rebuilt
}

/// A failed login, as the operation's result.
///
/// A login the token host answered with an error becomes that error response, with its status,
/// Comm100's code and message, its `Retry-After`, and `generate_jwt_token` as the operation.
/// Any other failure (a timeout, an unreachable host, a failing source) got no answer, so it
/// becomes what a request that got no answer is: a `reqwest::Error` (progenitor's
/// `CommunicationError`, retryable), with the login's [`Error`] as its source. `exec` can
/// return nothing else, and reqwest builds its errors only itself: the error is that of a body
/// that fails at once with the login's error, read on the spot.
async fn login_failure(error: Error, login_url: Option<&Url>) -> reqwest::Result<Response> {
    match error {
        Error::Login {
            status,
            code,
            message,
            retry_after,
        } if status.as_u16() >= 400 => {
            let mut headers = http::HeaderMap::new();
            if let Some(wait) = retry_after {
                headers.insert(RETRY_AFTER, HeaderValue::from(wait.as_secs()));
            }
            Ok(error_response(
                status,
                headers,
                code,
                message,
                LOGIN_OPERATION,
            ))
        }
        // Any other answer (a redirect to another host): a login failure, never a response the
        // caller could take for a success, and not retryable (see `Deferred`).
        refusal @ Error::Login { .. } => Ok(deferred(login_url, refusal)),
        other => Err(body::reqwest_error(other, login_url).await),
    }
}
