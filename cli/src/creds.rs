//! Where the credentials come from: the `COMM100_*` variables the SDK reads, or a profile of
//! the config file. A password is never read from argv or from the file: a profile names the
//! environment variable that holds it, or it comes from stdin.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use comm100::{Comm100, Comm100Builder};
use serde::Deserialize;

use crate::CliError;

/// The config file: profiles by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// One entry per site (or account).
    pub profiles: BTreeMap<String, Profile>,
}

/// One site's settings. No password: `password_env` names the variable that holds it.
#[derive(Debug, Deserialize)]
// A misspelt `password_env` must not pass unnoticed, nor a `password` key be taken for one.
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The control-panel domain, `portal1.comm100.io`.
    pub portal: Option<String>,
    /// Explicit base URLs (a proxy, the sandbox), which take precedence over `portal`.
    pub portal_url: Option<String>,
    /// See `portal_url`.
    pub api_url: Option<String>,
    /// The agent's email.
    pub email: String,
    /// The numeric site id.
    pub site_id: i64,
    /// The name of the environment variable holding the password.
    pub password_env: Option<String>,
}

/// How the command line asked for credentials.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub profile: Option<String>,
    pub config: Option<PathBuf>,
    pub password_stdin: bool,
}

/// The config file's path: `--config`, else `$COMM100_CONFIG`, else
/// `~/.config/comm100/config.yaml`.
fn config_path(explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("COMM100_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| CliError::local("no --config, no COMM100_CONFIG and no HOME"))?;
    Ok(PathBuf::from(home).join(".config/comm100/config.yaml"))
}

/// Reads the config file.
pub fn load_config(explicit: Option<&Path>) -> Result<Config, CliError> {
    let path = config_path(explicit)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::local(format!("cannot read {}: {e}", path.display())))?;
    serde_norway::from_str(&text).map_err(|e| CliError::local(format!("{}: {e}", path.display())))
}

/// The password from stdin: its first line, without the line end. Anything else on the line
/// is part of it, spaces included (the SDK sends a password byte for byte).
fn password_from_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::local(format!("cannot read the password from stdin: {e}")))?;
    let line = text.lines().next().unwrap_or_default().to_string();
    if line.is_empty() {
        return Err(CliError::local("--password-stdin: stdin held no password"));
    }
    Ok(line)
}

/// The client for `source`, and a label for the site (the profile's name, or `env`).
pub fn client(source: &Source) -> Result<(Comm100, String), CliError> {
    let Some(name) = &source.profile else {
        if source.password_stdin {
            return Err(CliError::local(
                "--password-stdin needs --profile; without one, the password is COMM100_PASSWORD",
            ));
        }
        let c100 = Comm100::from_env().map_err(CliError::Sdk)?;
        return Ok((c100, "env".to_string()));
    };
    let config = load_config(source.config.as_deref())?;
    let profile = config
        .profiles
        .get(name)
        .ok_or_else(|| CliError::local(format!("no profile `{name}` in the config file")))?;
    let password = if source.password_stdin {
        password_from_stdin()?
    } else {
        let var = profile.password_env.as_deref().ok_or_else(|| {
            CliError::local(format!(
                "profile `{name}` has no password_env; give --password-stdin"
            ))
        })?;
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                CliError::local(format!(
                    "profile `{name}`: the variable {var} (its password_env) is not set"
                ))
            })?
    };
    let mut builder = Comm100Builder::default();
    builder = match (&profile.portal_url, &profile.api_url, &profile.portal) {
        (Some(portal), Some(api), _) => builder.urls(portal, api),
        (None, None, Some(portal)) => builder.portal(portal),
        _ => {
            return Err(CliError::local(format!(
                "profile `{name}` needs `portal`, or both `portal_url` and `api_url`"
            )));
        }
    };
    let c100 = builder
        .password_login(&profile.email, password, profile.site_id)
        .build()
        .map_err(CliError::Sdk)?;
    Ok((c100, name.clone()))
}
