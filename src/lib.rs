//! A Rust SDK for the Comm100 Live Chat REST API v3.
#![forbid(unsafe_code)]

pub mod hooks;

/// The client generated from `openapi/comm100.yaml` by progenitor at build time.
#[allow(clippy::all, missing_docs, unused_imports, rustdoc::all)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/codegen.rs"));
}
