//! `comm100`, the command line for the Comm100 Live Chat API v3: login checks, raw calls, every
//! operation of the spec as a generated command (`op`), and customer segments kept as code. The
//! binary (`src/main.rs`) calls [`main`]; the tests walk [`command`].
//!
//! Exit codes: 0 success (and `plan --detailed-exitcode` with no changes), 1 a usage or local
//! error (a bad file, missing credentials, a segment changed since the plan), 2 `plan
//! --detailed-exitcode` with changes, 3 the server refused (a `4xx`, a refused login), 4 an
//! outage (the connection, a `5xx`, a timeout).

mod creds;
mod op;
mod output;
mod segments;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use comm100::{ApiError, Comm100, ErrorKind, Method};
use serde_json::Value;

use crate::output::Format;
use crate::segments::FileFormat;

/// The Comm100 Live Chat API v3 from the terminal.
///
/// Credentials: the COMM100_* variables (COMM100_PORTAL or COMM100_PORTAL_URL and
/// COMM100_API_URL, COMM100_EMAIL, COMM100_PASSWORD, COMM100_SITE_ID), or `--profile NAME`
/// from the config file, whose password comes from the variable the profile names
/// (`password_env`) or from stdin (`--password-stdin`). No password is ever taken on the
/// command line.
///
/// Exit codes: 0 ok; 1 usage or local error; 2 changes (plan --detailed-exitcode);
/// 3 refused by the server (4xx); 4 outage (connection, 5xx, timeout).
#[derive(Debug, Parser)]
#[command(name = "comm100", version)]
struct Cli {
    /// A profile of the config file, instead of the COMM100_* variables.
    #[arg(long, global = true)]
    profile: Option<String>,
    /// The config file [default: $COMM100_CONFIG, else ~/.config/comm100/config.yaml].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Read the profile's password from the first line of stdin.
    #[arg(long, global = true)]
    password_stdin: bool,
    /// Run `login`, `segments plan` or `segments apply` once per profile of the config file,
    /// in name order, stopping at the first failure.
    #[arg(long, global = true, conflicts_with_all = ["profile", "password_stdin"])]
    all_profiles: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Logs in, and says when the token expires.
    Login,
    /// A raw call to a path under the API base (`/livechat/customerSegments`); prints the JSON.
    Api {
        /// GET, POST, PUT, DELETE, ...
        method: Method,
        /// The path under the API base, e.g. `/livechat/customerSegments`.
        path: String,
        /// The JSON body, from a file, or from stdin with `-`.
        #[arg(long, value_name = "FILE|-")]
        json_body: Option<PathBuf>,
        /// The output format [default: table on a terminal, else json].
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Customer segments as code: export, plan, apply.
    #[command(subcommand)]
    Segments(SegmentsCommand),
    /// Every operation of the API as a command, generated from its description
    /// (openapi/comm100.yaml). Prints the answer's JSON (a table on a terminal).
    #[command(subcommand)]
    Op(op::OpCommand),
}

#[derive(Debug, Clone, Subcommand)]
enum SegmentsCommand {
    /// Prints the site's segments keyed by name, in a stable order, server defaults left out.
    Export {
        /// yaml or json.
        #[arg(long, value_enum, default_value = "yaml")]
        format: FileFormat,
    },
    /// Shows what `apply` would change: creates, field-by-field updates, and deletes with
    /// `--prune`. A field the file leaves out keeps the site's value.
    Plan {
        /// The segments file (YAML, or JSON when it ends in `.json`).
        #[arg(short, long)]
        file: PathBuf,
        /// Also delete the site's segments the file does not name.
        #[arg(long)]
        prune: bool,
        /// Exit 0 with no changes, 2 with changes, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also save the plan (JSON) for `apply --plan`, which then refuses any segment
        /// changed since this plan read it.
        #[arg(long, value_name = "PLAN")]
        out: Option<PathBuf>,
    },
    /// Carries the plan out, one segment at a time; re-reads each segment right before writing
    /// it and refuses one that changed since the plan; stops at the first failure.
    Apply {
        /// The segments file (YAML, or JSON when it ends in `.json`).
        #[arg(short, long, required_unless_present = "plan", conflicts_with = "plan")]
        file: Option<PathBuf>,
        /// A plan saved by `plan --out`, carried out as it is.
        #[arg(long, value_name = "PLAN", conflicts_with = "prune")]
        plan: Option<PathBuf>,
        /// Also delete the site's segments the file does not name.
        #[arg(long)]
        prune: bool,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
    },
}

/// Every failure of a command, and its exit code.
#[derive(Debug)]
pub enum CliError {
    /// A usage or local error: exit 1.
    Local(String),
    /// A change since the plan, or a result to check by hand: exit 1.
    Conflict(String),
    /// A call failed: exit 3 for a refusal, 4 for an outage, 1 for a request refused before
    /// sending.
    Api(ApiError),
    /// The SDK's configuration or login failed.
    Sdk(comm100::Error),
}

impl CliError {
    fn local(message: impl Into<String>) -> CliError {
        CliError::Local(message.into())
    }

    fn exit_code(&self) -> u8 {
        match self {
            CliError::Local(_) | CliError::Conflict(_) => 1,
            CliError::Api(error) => match error.kind() {
                ErrorKind::InvalidInput { .. } => 1,
                ErrorKind::LoginFailed => match error.login_error() {
                    Some(login) => sdk_exit_code(login),
                    None => 4,
                },
                _ if error.status().is_some_and(|s| s.is_client_error()) => 3,
                _ => 4,
            },
            CliError::Sdk(error) => sdk_exit_code(error),
        }
    }
}

fn sdk_exit_code(error: &comm100::Error) -> u8 {
    use comm100::Error as E;
    match error {
        E::Login { status, .. } if status.is_client_error() => 3,
        E::Login { .. }
        | E::LoginTimeout(_)
        | E::Transport(_)
        | E::OperationTimeout(_)
        | E::ServerError { .. }
        | E::Classified { .. }
        | E::BadToken(_)
        | E::BodyTooLarge { .. }
        | E::TokenSource(_) => 4,
        _ => 1,
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Local(m) | CliError::Conflict(m) => f.write_str(m),
            CliError::Api(e) => write!(f, "{e}"),
            CliError::Sdk(e) => write!(f, "{e}"),
        }
    }
}

fn read_body(source: &std::path::Path) -> Result<Value, CliError> {
    let text = op::read_body(source).map_err(|e| {
        CliError::local(if source.as_os_str() == "-" {
            format!("cannot read the body from stdin: {e}")
        } else {
            format!("cannot read {}: {e}", source.display())
        })
    })?;
    serde_json::from_str(&text).map_err(|e| CliError::local(format!("the JSON body: {e}")))
}

async fn login(c100: &Comm100, site: &str) -> Result<(), CliError> {
    let expires = c100
        .login()
        .await
        .map_err(|e| CliError::Api(ApiError::from(e)))?;
    match expires {
        Some(at) => {
            let left = at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .as_secs();
            println!(
                "logged in ({site}); the token expires at {} (in {}m {}s)",
                httpdate::fmt_http_date(at),
                left / 60,
                left % 60
            );
        }
        None => println!("logged in ({site}); the token does not say when it expires"),
    }
    Ok(())
}

async fn api(
    c100: &Comm100,
    method: Method,
    path: &str,
    body: Option<Value>,
    format: Format,
) -> Result<(), CliError> {
    let mut request = c100.request(method, path);
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(CliError::Api)?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| CliError::local(format!("reading the answer: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::local(format!("the answer is not JSON: {e}")))?;
    output::print(&value, format);
    Ok(())
}

/// `plan` exits 2 with changes when asked to.
async fn run(cli: Cli) -> Result<u8, CliError> {
    let source = creds::Source {
        profile: cli.profile,
        config: cli.config,
        password_stdin: cli.password_stdin,
    };
    // The body from stdin and the password from stdin cannot share it.
    let body_from_stdin = match &cli.command {
        Command::Api {
            json_body: Some(body),
            ..
        } => body.as_os_str() == "-",
        Command::Op(op) => op.body_from_stdin(),
        _ => false,
    };
    if body_from_stdin && source.password_stdin {
        return Err(CliError::local(
            "--json-body - and --password-stdin both read stdin: give one of them",
        ));
    }
    if !cli.all_profiles {
        return run_site(cli.command, &source).await;
    }
    match &cli.command {
        Command::Login | Command::Segments(SegmentsCommand::Plan { out: None, .. }) => {}
        Command::Segments(SegmentsCommand::Apply { plan: None, .. }) => {}
        _ => {
            return Err(CliError::local(
                "--all-profiles works with login, segments plan (without --out) and segments apply (without --plan)",
            ));
        }
    }
    let config = creds::load_config(source.config.as_deref())?;
    let mut code = 0;
    for name in config.profiles.keys() {
        println!("== {name}");
        let site = creds::Source {
            profile: Some(name.clone()),
            ..source.clone()
        };
        // The worst code wins: 2 (changes) from any site's plan survives a later site's 0.
        code = code.max(run_site(cli.command.clone(), &site).await?);
    }
    Ok(code)
}

/// One command against one site.
async fn run_site(command: Command, source: &creds::Source) -> Result<u8, CliError> {
    match command {
        Command::Login => {
            let (c100, site) = creds::client(source)?;
            login(&c100, &site).await?;
        }
        Command::Api {
            method,
            path,
            json_body,
            format,
        } => {
            let (c100, _) = creds::client(source)?;
            let body = json_body.as_deref().map(read_body).transpose()?;
            api(&c100, method, &path, body, Format::resolve(format)).await?;
        }
        Command::Segments(SegmentsCommand::Export { format }) => {
            let (c100, _) = creds::client(source)?;
            print!("{}", segments::export(&c100, format).await?);
        }
        Command::Segments(SegmentsCommand::Plan {
            file,
            prune,
            detailed_exitcode,
            out,
        }) => {
            let wanted = segments::read_file(&file)?;
            let (c100, site) = creds::client(source)?;
            let steps = segments::plan(&c100, &wanted, prune).await?;
            print!("{}", segments::describe(&steps));
            if let Some(out) = out {
                let saved = segments::SavedPlan { site, steps };
                saved.save(&out)?;
                if detailed_exitcode && !saved.steps.is_empty() {
                    return Ok(2);
                }
                return Ok(0);
            }
            if detailed_exitcode && !steps.is_empty() {
                return Ok(2);
            }
        }
        Command::Op(op) => {
            // The template needs no credentials.
            if op.print_template() {
                return Ok(0);
            }
            let (c100, _) = creds::client(source)?;
            op.execute(&c100).await?;
        }
        Command::Segments(SegmentsCommand::Apply {
            file,
            plan,
            prune,
            yes,
        }) => {
            let (c100, site) = creds::client(source)?;
            let steps = match (file, plan) {
                (_, Some(plan)) => {
                    let saved = segments::SavedPlan::load(&plan)?;
                    if saved.site != site {
                        return Err(CliError::local(format!(
                            "the plan was made for `{}`, not `{site}`",
                            saved.site
                        )));
                    }
                    saved.steps
                }
                (Some(file), None) => {
                    let wanted = segments::read_file(&file)?;
                    segments::plan(&c100, &wanted, prune).await?
                }
                (None, None) => return Err(CliError::local("give -f FILE or --plan PLAN")),
            };
            print!("{}", segments::describe(&steps));
            if steps.is_empty() {
                return Ok(0);
            }
            if !yes && !confirm(source.password_stdin)? {
                println!("Nothing applied.");
                return Ok(1);
            }
            segments::apply(&c100, &steps).await?;
        }
    }
    Ok(0)
}

/// Asks on the terminal whether to apply.
fn confirm(stdin_taken: bool) -> Result<bool, CliError> {
    if stdin_taken || !std::io::stdin().is_terminal() {
        return Err(CliError::local(
            "apply asks before writing, and stdin is not a terminal: give --yes",
        ));
    }
    eprint!("Apply these changes? Only `yes` is accepted: ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::local(e.to_string()))?;
    Ok(answer.trim() == "yes")
}

/// The command line's definition: every command, hand-written and generated, with its
/// arguments and help. The tests walk it.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the command line on this process's arguments and returns its exit code.
pub async fn main() -> ExitCode {
    // clap exits 2 on a usage error, which is `plan --detailed-exitcode`'s "changes": 1 here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 1 } else { 0 });
        }
    };
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
