//! `comm100-sandbox`: runs the fake Comm100 server on `127.0.0.1` until Ctrl-C.

#![forbid(unsafe_code)]

use std::time::Duration;

use clap::Parser;
use comm100_sandbox::{DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID, Sandbox, SandboxConfig};

/// A stateful fake Comm100 Live Chat server on loopback.
#[derive(Debug, Parser)]
#[command(name = "comm100-sandbox", version, about)]
struct Args {
    /// The port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    port: u16,
    /// The lifetime of the tokens issued, in seconds.
    #[arg(long, default_value_t = 7200)]
    token_lifetime_secs: u64,
    /// Seconds to add to the real clock for the sandbox's "now" (tokens and the Date header);
    /// negative puts the sandbox behind the client, e.g. -10800 for 3 hours.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    clock_offset_secs: i64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let sandbox = Sandbox::start_with(SandboxConfig {
        port: args.port,
        token_lifetime: Duration::from_secs(args.token_lifetime_secs),
        clock_offset_secs: args.clock_offset_secs,
    })
    .await?;
    println!("comm100 sandbox listening");
    println!("  control-panel base: {}", sandbox.portal_url());
    println!("  API base:           {}", sandbox.api_url());
    println!("  agent:              {DEFAULT_EMAIL} / {DEFAULT_PASSWORD}, site {DEFAULT_SITE_ID}");
    println!(
        "  admin routes:       {}/__sandbox/...",
        sandbox.portal_url()
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    sandbox.shutdown().await;
    Ok(())
}
