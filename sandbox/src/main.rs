//! `comm100-sandbox`: runs the fake Comm100 server on `127.0.0.1` until Ctrl-C.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use comm100_sandbox::{Limits, Sandbox, Seed};

/// The admin routes, for `--help`; the README's tables say what each does.
const ADMIN_ROUTES: &str = "\
Admin routes (JSON bodies sent as Content-Type: application/json, never with an Origin header,
with the admin token as a bearer when one is set; never faulted, limited or logged; see the
crate's README):
  POST   /__sandbox/faults              {\"n\":1,\"fault\":{\"status\":503},\"route\":\"create\"}
  POST   /__sandbox/latency             {\"ms\":250} or {\"ms\":null}
  POST   /__sandbox/revoke
  POST   /__sandbox/token-lifetime      {\"secs\":7200}
  POST   /__sandbox/daily-limit         {\"limit\":10} or {\"limit\":null}
  POST   /__sandbox/rate-limit          {\"size\":300,\"every_ms\":1000} or null
  POST   /__sandbox/forward-compat      {\"on\":true}
  POST   /__sandbox/gzip                {\"on\":true}
  POST   /__sandbox/clock-offset        {\"secs\":-10800}
  POST   /__sandbox/token-host          \"normal\", {\"slow\":250}, {\"refusing\":{\"status\":503,\"message\":\"..\"}}, \"silent\"
                                        or {\"redirect\":{\"status\":307,\"location\":\"https://elsewhere.example/x\"}}
  POST   /__sandbox/refuse-tokens       {\"on\":true}
  GET    /__sandbox/agents
  POST   /__sandbox/agents              {\"email\":\"..\",\"password\":\"..\",\"site_id\":20000}
  GET    /__sandbox/segments/{site}
  POST   /__sandbox/segments/{site}     any JSON object, stored verbatim; returns {\"id\":\"..\"}
  POST   /__sandbox/odd-segments/{site} returns {\"ids\":[..]}
  GET    /__sandbox/requests            the request log
  DELETE /__sandbox/requests
  GET    /__sandbox/stats
  POST   /__sandbox/reset               back to the start: seed, modes, log

Faults (the \"fault\" of /__sandbox/faults; \"route\" is optional: token, list, get, create,
update or delete; \"n\" defaults to 1):
  {\"status\":503}  {\"rate_limited\":{\"retry_after\":\"1\"}}  \"drop_before_handling\"  \"drop_after_handling\"
  {\"odd_body\":{\"status\":400,\"body\":\"relaxed\"}} (or \"html\", \"empty\")  {\"latency\":250}
  {\"huge_error_body\":{\"status\":500,\"bytes\":268435456}}  \"endless_body\"  \"hang\"
  {\"alt_success\":{\"status\":200,\"body\":\"Deleted\"}}  {\"truncated_body\":{\"after\":10}}
  {\"redirect\":{\"status\":302,\"location\":\"https://elsewhere.example/x\",\"endless\":false}}

Seed file (--seed):
  {\"agents\": [{\"email\": \"sync@example.com\", \"password\": \"sync-password\", \"site_id\": 20000}],
   \"sites\": [{\"site_id\": 20000, \"segments\": [{\"name\": \"VIP\", \"order\": 1}], \"odd_segments\": false}]}";

/// A fake Comm100 Live Chat API v3 server on 127.0.0.1: real JWTs, customer segments per site,
/// a request log, and faults and hostile modes set through the admin routes below.
#[derive(Debug, Parser)]
#[command(name = "comm100-sandbox", version, after_help = ADMIN_ROUTES)]
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
    /// A JSON file of agents, sites and segments to start with (the format is below).
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// The most records the request log holds; the oldest are dropped first.
    #[arg(long, default_value_t = Limits::default().log_records)]
    log_max_records: usize,
    /// The most bytes the request log holds; the oldest records are dropped first.
    #[arg(long, default_value_t = Limits::default().log_bytes)]
    log_max_bytes: usize,
    /// The most connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = Limits::default().connections)]
    max_connections: usize,
    /// Seconds an HTTP/1 client has to send a request's head before the connection is closed.
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs())]
    header_timeout_secs: u64,
    /// Seconds a client has to send a request's body before it is answered 408.
    #[arg(long, default_value_t = Limits::default().body_timeout.as_secs())]
    body_timeout_secs: u64,
    /// A token every admin route then requires as `Authorization: Bearer <token>`. Also read
    /// from the environment, which other users of the machine cannot list as they can a
    /// command line.
    #[arg(long, env = "COMM100_SANDBOX_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

/// The seed in a file, or a message that names the file.
fn read_seed(path: &PathBuf) -> Result<Seed, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the seed file {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("the seed file {} is not valid: {e}", path.display()))
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
    let seed = match args.seed.as_ref().map(read_seed).transpose() {
        Ok(seed) => seed.unwrap_or_default(),
        Err(message) => {
            eprintln!("comm100-sandbox: {message}");
            std::process::exit(2);
        }
    };
    let limits = Limits::default()
        .log_records(args.log_max_records)
        .log_bytes(args.log_max_bytes)
        .connections(args.max_connections)
        .header_timeout(Duration::from_secs(args.header_timeout_secs))
        .body_timeout(Duration::from_secs(args.body_timeout_secs));
    let mut builder = Sandbox::builder().limits(limits);
    if let Some(token) = args.admin_token {
        builder = builder.admin_token(token);
    }
    let sandbox = builder
        .port(args.port)
        .token_lifetime(Duration::from_secs(args.token_lifetime_secs))
        .clock_offset_secs(args.clock_offset_secs)
        .seed(seed)
        .start()
        .await?;
    println!("comm100 sandbox listening");
    println!("  control-panel base: {}", sandbox.portal_url());
    println!("  API base:           {}", sandbox.api_url());
    let controls = sandbox.controls();
    for agent in controls.agents() {
        println!(
            "  agent:              {} / {}, site {}",
            agent.email, agent.password, agent.site_id
        );
    }
    println!(
        "  admin routes:       {}/__sandbox/...",
        sandbox.portal_url()
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    sandbox.shutdown().await;
    Ok(())
}
