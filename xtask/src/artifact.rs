//! Building one executable with cargo and finding it, as cargo reports it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs `cargo build <args> --message-format=json-render-diagnostics` from `root`, with `envs`
/// set, and returns the path of the executable of the target named `name`. Cargo's own
/// progress goes to stderr as usual.
pub fn build(
    root: &Path,
    args: &[&str],
    envs: &[(&str, &Path)],
    name: &str,
) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .arg("build")
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit());
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo build {} failed", args.join(" ")));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo built no {name} executable"))
}
