//! Helpers shared by the client's integration tests.
#![allow(dead_code)] // Each test binary uses a different part.

use std::time::Duration;

use comm100::generated::types;
use comm100::{Comm100, RetryPolicy};
use comm100_sandbox::{Controls, Route, Sandbox, DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID};

pub fn client_for(sb: &Sandbox) -> comm100::Comm100Builder {
    Comm100::builder()
        .urls(sb.portal_url(), sb.api_url())
        .password_login(DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID)
        .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(1)))
}

/// A client of the user's own, with no timeout: the one thing it keeps of the crate's rules is
/// same-origin redirects.
pub fn users_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(comm100::same_origin_redirects())
        .build()
        .unwrap()
}

pub fn segment(name: &str) -> types::builder::CustomerSegmentInput {
    types::CustomerSegmentInput::builder()
        .name(name)
        .conditions(vec![types::ConditionInput::builder()
            .field("CurrentPageUrl")
            .operator(types::KnownConditionOperator::Include)
            .value("live")
            .try_into()
            .unwrap()])
}

/// A sandbox, its controls, and a client that has logged in to it.
pub async fn logged_in() -> (Sandbox, Controls, Comm100) {
    let sb = Sandbox::start().await.unwrap();
    let ctl = sb.controls();
    let c100 = client_for(&sb).build().unwrap();
    c100.login().await.unwrap();
    (sb, ctl, c100)
}

pub fn count(ctl: &Controls, route: Route) -> usize {
    ctl.requests()
        .iter()
        .filter(|r| r.route == Some(route))
        .count()
}

pub async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A `tracing` writer into a shared buffer, for the tests that read what the client logged.
#[derive(Clone)]
pub struct LogBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
