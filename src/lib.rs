//! A Rust SDK for the Comm100 Live Chat REST API v3.
//!
//! The operations are generated at build time from `openapi/comm100.yaml` with progenitor and
//! live in [`generated`]; this crate adds what a production client needs around them:
//!
//! * [`Endpoints`]: the control-panel domain selects the API host and the token host;
//! * JWT login, cached and refreshed a buffer before expiry measured on the server's clock, one
//!   login for all callers (its error too), a cool-down after a failed login, no re-login
//!   storm when the server refuses fresh tokens;
//! * retries with backoff and `Retry-After`, never duplicating a create;
//! * one error, [`ApiError`]: an [`ErrorKind`] to match on, the [`Outcome`] (did the server
//!   act?), one `is_retryable()`, the status, Comm100's code and message; secrets never appear
//!   in `Debug` output, logs or errors.
//!
//! Every operation's builder has `call()`, which returns the body of the success or an
//! [`ApiError`]; progenitor's `send()` is there too, for the status and headers.
//!
//! ```no_run
//! use comm100::prelude::*;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let c100 = Comm100::from_env()?;
//! let pricing = types::ConditionInput::new(
//!     "CurrentPageUrl",
//!     types::KnownConditionOperator::Contains,
//!     "/pricing",
//! );
//! let segment = types::CustomerSegmentInput::new("VIP visitors", [pricing])?;
//! let created = c100.client().create_customer_segment().body(segment).call().await?;
//! println!("created {}", created.id);
//! # Ok(()) }
//! ```
#![doc = include_str!("../docs/features.md")]
#![doc = include_str!("../docs/semver.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api_error;
mod auth;
mod body;
mod client;
mod domain;
mod error;
mod hooks;
mod limits;
mod outcome;
mod raw;
mod reconcile;
mod redact;
mod retry;
mod segments;

pub use api_error::{ApiError, ErrorKind};
pub use auth::{SensitiveString, Token, TokenFuture, TokenSource};
pub use client::{same_origin_redirects, CallOptions, Comm100, Comm100Builder};
pub use domain::{Endpoints, HttpPolicy};
#[allow(deprecated)]
pub use error::ApiErrorExt;
pub use error::Error;
// `Inner` is the state the hooks keep in the generated client, which names it in its public
// `new_with_client`; it must be public for that, but it is no API to use: hidden from the docs.
#[doc(hidden)]
pub use hooks::Inner;
pub use hooks::{DONE_BY_EARLIER_ATTEMPT, ORIGINAL_STATUS_HEADER, OUTCOME_HEADER};
pub use limits::{BudgetSnapshot, DailyLimitBreaker, RateBudget};
pub use outcome::Outcome;
pub use raw::{RawRequest, RAW_OPERATION};
pub use reconcile::CreateOutcome;
/// The method a raw call takes ([`Comm100::request`]), re-exported from `reqwest`.
pub use reqwest::Method;
pub use retry::RetryPolicy;
pub use segments::InvalidSegment;
/// The `uuid` crate, whose `Uuid` names segments: no need to add it to your own `Cargo.toml`.
pub use uuid;

/// What a program that uses the crate needs, in one import: `use comm100::prelude::*;`.
///
/// The client ([`Comm100`]) and its settings ([`RetryPolicy`]), the generated types
/// ([`types`](crate::generated::types), and `Uuid`), the error ([`ApiError`], [`ErrorKind`],
/// [`Outcome`]),
/// the reconciling create's answer ([`CreateOutcome`]), and the traits that put the operations in
/// scope.
pub mod prelude {
    #[allow(deprecated)]
    pub use crate::error::ApiErrorExt;
    pub use crate::generated::types;
    pub use crate::generated::{ClientAuthExt, ClientCustomerSegmentsExt};
    pub use crate::outcome::Outcome;
    pub use crate::{ApiError, Comm100, CreateOutcome, ErrorKind, RateBudget, RetryPolicy};
    /// The id of a segment.
    pub use uuid::Uuid;
}

/// The client generated from `openapi/comm100.yaml` by progenitor at build time. Reach it
/// through [`Comm100::client`], which applies auth, retries and error normalisation.
#[allow(clippy::all, missing_docs, unused_imports, rustdoc::all)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/codegen.rs"));
}
