//! What the server may have done with a request ([`Outcome`]), and the one decision the hooks
//! take after each attempt ([`decide`]): send again, refresh the token and send again, or stop.
//!
//! The decision is a pure function of what happened, so that the rules can be read in one
//! table (the README's) and tested as one, every method × every kind of answer. The loop in
//! `hooks.rs` only sends, waits and acts on what this returns.

use std::time::Duration;

use reqwest::{Method, StatusCode};

/// What the server may have done with a failed request, as far as the client can tell: whether
/// the request may be sent again without doing twice what it asks.
///
/// | outcome | what happened | send it again? |
/// | --- | --- | --- |
/// | [`NotSent`](Outcome::NotSent) | refused locally, a login that failed, a connection never made | yes, when the failure is transient |
/// | [`Refused`](Outcome::Refused) | the server answered a `4xx`: it did not act | after a `408` or `429`; otherwise fix the request first |
/// | [`Unknown`](Outcome::Unknown) | the request may have reached the server and nothing says what it did: a reset, a cut answer, a timeout, a `5xx`, a `3xx` | only when the method is idempotent (GET, PUT, DELETE); a create may already have happened |
/// | [`Performed`](Outcome::Performed) | the server answered `2xx`, but its body could not be read or decoded | no: it was done |
///
/// Read it with [`ApiErrorExt::outcome`](crate::ApiErrorExt::outcome). To resolve an unknown
/// create, see [`Comm100::create_customer_segment_reconciled`](crate::Comm100::create_customer_segment_reconciled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// Nothing reached the server.
    NotSent,
    /// The server answered with a status that says it did not act (`4xx`, `401` and `429`
    /// included).
    Refused,
    /// The request may have reached the server, and nothing says whether it acted.
    Unknown,
    /// The server acted: it answered `2xx`, but the answer could not be read or decoded.
    Performed,
}

impl Outcome {
    /// `not_sent`, `refused`, `unknown` or `performed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotSent => "not_sent",
            Outcome::Refused => "refused",
            Outcome::Unknown => "unknown",
            Outcome::Performed => "performed",
        }
    }

    /// Whether the server may have carried the request out: [`Unknown`](Outcome::Unknown) or
    /// [`Performed`](Outcome::Performed).
    pub fn may_have_acted(self) -> bool {
        matches!(self, Outcome::Unknown | Outcome::Performed)
    }

    /// A short sentence for error messages.
    pub(crate) fn explain(self) -> &'static str {
        match self {
            Outcome::NotSent => "nothing reached the server",
            Outcome::Refused => "the server refused the request",
            Outcome::Unknown => {
                "the request may have reached the server and its outcome is unknown: it was not sent again"
            }
            Outcome::Performed => {
                "the server answered with success, so the request was carried out: it was not sent again"
            }
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// No connection could be made: the request never left.
    NotConnected,
    /// The request may have been written and no answer came: a reset, a timeout.
    Lost,
    /// The server answered this status; a `2xx` body was read whole.
    Status(StatusCode),
    /// The server answered `2xx`, but its body was cut (`too_large: false`) or longer than the
    /// limit.
    BrokenSuccess { too_large: bool },
}

impl Answer {
    /// What the server may have done, judged from this answer alone.
    pub(crate) fn outcome(self) -> Outcome {
        match self {
            Answer::NotConnected => Outcome::NotSent,
            Answer::Lost => Outcome::Unknown,
            Answer::BrokenSuccess { .. } => Outcome::Performed,
            Answer::Status(s) if s.is_success() => Outcome::Performed,
            Answer::Status(s) if s.is_client_error() => Outcome::Refused,
            // 5xx, and a 1xx or 3xx, which say nothing of what was done.
            Answer::Status(_) => Outcome::Unknown,
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone)]
pub(crate) struct Situation<'a> {
    pub(crate) method: &'a Method,
    /// Whether sending the request twice does what sending it once does: GET, PUT, DELETE, and
    /// the token request, which creates nothing.
    pub(crate) idempotent: bool,
    pub(crate) answer: Answer,
    /// Attempts made so far under the retry policy, this one included (the one re-send after a
    /// refreshed token does not count).
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    /// Whether the request can be sent again: its body could be copied.
    pub(crate) resendable: bool,
    /// For a `401`: this call has not refreshed its token yet, and the token cache says a new
    /// token may help.
    pub(crate) refresh_may_help: bool,
    /// The wait before another attempt, from the policy and the answer's `Retry-After`;
    /// `None` when the server asked for a wait longer than the policy's cap.
    pub(crate) wait: Option<Duration>,
    /// The time left in the operation's budget.
    pub(crate) time_left: Duration,
    /// An earlier attempt of this call ended with an unknown outcome.
    pub(crate) earlier_unknown: bool,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Hand the response over: it is the success.
    Succeed,
    /// A `DELETE` answered `404` after an earlier attempt got no answer: the earlier attempt
    /// most probably deleted it. A success, marked so.
    SucceedEarlier,
    /// Send the request again after this wait.
    Resend(Duration),
    /// Refresh the token and send the request again at once (a `401`, refused before acting).
    Refresh,
    /// Stop, with this outcome.
    Fail(Outcome),
}

/// Whether a method may be sent again after the server may have seen it.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::PUT | Method::DELETE | Method::HEAD | Method::OPTIONS
    )
}

/// Statuses that a later attempt may not get: the server is overloaded, slow or failing.
pub(crate) fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether a failed request may be sent again by its caller without doing anything twice:
/// nothing was done, or it is unknown whether it was and the request is idempotent. Never after
/// a success (`Performed`): that failure is the answer's, not the request's. The loop's own
/// resends follow [`decide`], which also reads a cut success of an idempotent request again.
pub(crate) fn may_send_again(outcome: Outcome, idempotent: bool) -> bool {
    !outcome.may_have_acted() || (idempotent && outcome == Outcome::Unknown)
}

/// The rule of the retry loop. See the README's decision table, which says the same.
pub(crate) fn decide(s: &Situation<'_>) -> Step {
    let outcome = s.answer.outcome();
    // Sending again is safe when nothing was done, or when doing it twice is the same as once.
    let safe = !outcome.may_have_acted() || s.idempotent;
    let again = |worth_it: bool| -> Step {
        let room = s.resendable && s.attempt < s.max_attempts;
        match s.wait {
            Some(wait) if worth_it && safe && room && wait < s.time_left => Step::Resend(wait),
            _ => Step::Fail(outcome),
        }
    };
    match s.answer {
        Answer::NotConnected | Answer::Lost => again(true),
        // A body longer than the limit will be as long the next time.
        Answer::BrokenSuccess { too_large: true } => Step::Fail(outcome),
        // A cut body: a read (or an idempotent write) is sent again to read it whole; a create
        // happened, and is not.
        Answer::BrokenSuccess { too_large: false } => again(true),
        Answer::Status(status) if status.is_success() => Step::Succeed,
        Answer::Status(StatusCode::UNAUTHORIZED) if s.refresh_may_help && s.resendable => {
            Step::Refresh
        }
        Answer::Status(StatusCode::NOT_FOUND)
            if *s.method == Method::DELETE && s.earlier_unknown =>
        {
            Step::SucceedEarlier
        }
        Answer::Status(status) => again(is_transient_status(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn situation(method: &Method, answer: Answer) -> Situation<'_> {
        Situation {
            method,
            idempotent: is_idempotent(method),
            answer,
            attempt: 1,
            max_attempts: 3,
            resendable: true,
            refresh_may_help: true,
            wait: Some(Duration::from_millis(100)),
            time_left: Duration::from_secs(60),
            earlier_unknown: false,
        }
    }

    fn status(code: u16) -> Answer {
        Answer::Status(StatusCode::from_u16(code).unwrap())
    }

    /// The README's decision table, row by row: every kind of answer × every method, with the
    /// first attempt, room for more, and a wait that fits.
    #[test]
    fn the_decision_table() {
        use Outcome::*;
        let resend = Step::Resend(Duration::from_millis(100));
        // (answer, GET/PUT/DELETE, POST)
        let rows: Vec<(Answer, Step, Step)> = vec![
            (Answer::NotConnected, resend, resend),
            (Answer::Lost, resend, Step::Fail(Unknown)),
            (status(200), Step::Succeed, Step::Succeed),
            (status(201), Step::Succeed, Step::Succeed),
            (status(204), Step::Succeed, Step::Succeed),
            (
                Answer::BrokenSuccess { too_large: false },
                resend,
                Step::Fail(Performed),
            ),
            (
                Answer::BrokenSuccess { too_large: true },
                Step::Fail(Performed),
                Step::Fail(Performed),
            ),
            (status(301), Step::Fail(Unknown), Step::Fail(Unknown)),
            (status(302), Step::Fail(Unknown), Step::Fail(Unknown)),
            (status(400), Step::Fail(Refused), Step::Fail(Refused)),
            (status(401), Step::Refresh, Step::Refresh),
            (status(403), Step::Fail(Refused), Step::Fail(Refused)),
            (status(408), resend, resend),
            (status(409), Step::Fail(Refused), Step::Fail(Refused)),
            (status(429), resend, resend),
            (status(500), resend, Step::Fail(Unknown)),
            (status(501), Step::Fail(Unknown), Step::Fail(Unknown)),
            (status(502), resend, Step::Fail(Unknown)),
            (status(503), resend, Step::Fail(Unknown)),
            (status(504), resend, Step::Fail(Unknown)),
        ];
        for (answer, idempotent, post) in rows {
            for method in [Method::GET, Method::PUT, Method::DELETE] {
                let got = decide(&situation(&method, answer));
                assert_eq!(got, idempotent, "{method} {answer:?}");
            }
            assert_eq!(
                decide(&situation(&Method::POST, answer)),
                post,
                "POST {answer:?}"
            );
        }
    }

    /// What stops a resend that the table would make: the last attempt, a body that cannot be
    /// copied, a wait past the budget, a `Retry-After` over the cap. The outcome is then the
    /// answer's own.
    #[test]
    fn limits_turn_a_resend_into_a_failure() {
        for method in [Method::GET, Method::POST] {
            for (answer, outcome) in [
                (Answer::NotConnected, Outcome::NotSent),
                (status(429), Outcome::Refused),
                (status(408), Outcome::Refused),
            ] {
                let base = situation(&method, answer);
                let last = Situation {
                    attempt: 3,
                    ..base.clone()
                };
                let stream = Situation {
                    resendable: false,
                    ..base.clone()
                };
                let late = Situation {
                    time_left: Duration::from_millis(50),
                    ..base.clone()
                };
                let capped = Situation {
                    wait: None,
                    ..base.clone()
                };
                for s in [last, stream, late, capped] {
                    assert_eq!(decide(&s), Step::Fail(outcome), "{s:?}");
                }
            }
        }
        // An idempotent 503 on its last attempt: unknown.
        let s = Situation {
            attempt: 3,
            ..situation(&Method::PUT, status(503))
        };
        assert_eq!(decide(&s), Step::Fail(Outcome::Unknown));
    }

    #[test]
    fn a_401_refreshes_once_and_only_when_a_new_token_may_help() {
        for method in [Method::GET, Method::POST] {
            let s = Situation {
                refresh_may_help: false,
                ..situation(&method, status(401))
            };
            assert_eq!(decide(&s), Step::Fail(Outcome::Refused));
            let s = Situation {
                resendable: false,
                ..situation(&method, status(401))
            };
            assert_eq!(decide(&s), Step::Fail(Outcome::Refused));
        }
    }

    #[test]
    fn a_delete_found_gone_after_a_lost_answer_succeeds() {
        let after_loss = Situation {
            earlier_unknown: true,
            attempt: 2,
            ..situation(&Method::DELETE, status(404))
        };
        assert_eq!(decide(&after_loss), Step::SucceedEarlier);
        // Without an earlier unknown attempt, or for another method, a 404 is a refusal.
        assert_eq!(
            decide(&situation(&Method::DELETE, status(404))),
            Step::Fail(Outcome::Refused)
        );
        let get = Situation {
            earlier_unknown: true,
            ..situation(&Method::GET, status(404))
        };
        assert_eq!(decide(&get), Step::Fail(Outcome::Refused));
    }
}
