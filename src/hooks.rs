//! The hooks progenitor calls around every request (placeholder until the client issue).

/// State the generated client carries for the hand-written hooks.
#[derive(Debug, Clone, Default)]
pub struct Inner;

impl progenitor_client::ClientHooks<Inner> for crate::generated::Client {}
