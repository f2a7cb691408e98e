//! `cargo xtask msrv`: the declared `rust-version` of `comm100` must be at least the highest
//! `rust-version` declared by any package in its dependency graph, as `cargo metadata` reports
//! them. Older toolchains cannot be installed where this project is built, so this is how the
//! MSRV is known: it is the floor the dependencies set, checked on every CI run.

use std::path::Path;
use std::process::Command;

/// A `rust-version` as numbers, `1.88` → `[1, 88, 0]`.
fn parse(version: &str) -> Option<[u64; 3]> {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u64>().ok());
    Some([
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ])
}

/// Runs the check from the workspace root; returns a one-line summary.
pub fn run(root: &Path) -> Result<String, String> {
    // The packages that a build of `comm100` with all its features compiles, build
    // dependencies included (they are compiled by the same toolchain).
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--all-features",
            "--locked",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let packages = metadata["packages"].as_array().ok_or("no packages")?;
    let id_of = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name && p["source"].is_null())
            .and_then(|p| p["id"].as_str())
    };
    let root_id = id_of("comm100").ok_or("no comm100 package")?;
    let declared = packages
        .iter()
        .find(|p| p["id"] == root_id)
        .and_then(|p| p["rust_version"].as_str())
        .ok_or("comm100 declares no rust-version")?;

    // Walk the resolved graph from comm100 through normal and build dependencies.
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("no resolve graph")?;
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![root_id.to_string()];
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(node) = nodes.iter().find(|n| n["id"] == id.as_str()) else {
            continue;
        };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let kinds = dep["dep_kinds"].as_array().into_iter().flatten();
            let used = kinds.clone().count() == 0
                || kinds
                    .into_iter()
                    .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if let (true, Some(pkg)) = (used, dep["pkg"].as_str()) {
                stack.push(pkg.to_string());
            }
        }
    }
    let mut highest: Option<([u64; 3], String, String)> = None;
    for package in packages.iter().filter(|p| {
        p["id"]
            .as_str()
            .is_some_and(|id| id != root_id && seen.contains(id))
    }) {
        let Some(version) = package["rust_version"].as_str() else {
            continue;
        };
        let Some(parsed) = parse(version) else {
            continue;
        };
        if highest.as_ref().is_none_or(|(h, _, _)| parsed > *h) {
            let name = format!(
                "{} {}",
                package["name"].as_str().unwrap_or("?"),
                package["version"].as_str().unwrap_or("?")
            );
            highest = Some((parsed, version.to_string(), name));
        }
    }
    let ours = parse(declared).ok_or_else(|| format!("`{declared}` is not a version"))?;
    match highest {
        Some((theirs, version, name)) if theirs > ours => Err(format!(
            "comm100 declares rust-version {declared}, but {name} needs {version}: raise rust-version in Cargo.toml"
        )),
        Some((_, version, name)) => Ok(format!(
            "msrv: comm100 declares {declared}; the highest in its {} dependencies is {version} ({name})",
            seen.len() - 1
        )),
        None => Ok(format!(
            "msrv: comm100 declares {declared}; no dependency declares one"
        )),
    }
}
