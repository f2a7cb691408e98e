//! The binary as a standalone tool: its `--help`, its seed file, and the admin routes it lists.

#![cfg(feature = "binary")]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_comm100-sandbox");
const EXAMPLE_SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed.json");

fn help() -> String {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

/// The admin routes a text names: each `/__sandbox/...` path.
fn admin_paths(text: &str) -> BTreeSet<String> {
    text.match_indices("/__sandbox/")
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/_-{}".contains(c)))
                .unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .filter(|path| path.len() > "/__sandbox/".len())
        .collect()
}

#[test]
fn help_lists_every_option_and_the_admin_routes_the_readme_documents() {
    let help = help();
    for option in [
        "--port",
        "--token-lifetime-secs",
        "--clock-offset-secs",
        "--seed <FILE>",
        "--log-max-records",
        "--log-max-bytes",
        "--max-connections",
        "--header-timeout-secs",
        "--body-timeout-secs",
        "--admin-token",
        "--help",
        "--version",
    ] {
        assert!(help.contains(option), "{option} in:\n{help}");
    }
    let readme = admin_paths(include_str!("../README.md"));
    assert_eq!(admin_paths(&help), readme, "--help and the README");
    assert_eq!(readme.len(), 17, "{readme:?}");
}

/// The name of a fault or token-host mode in its JSON form: a string, or an object's one key.
fn json_name(value: Value) -> String {
    match value {
        Value::String(name) => name,
        Value::Object(map) => map.keys().next().expect("one key").clone(),
        other => panic!("not a named mode: {other}"),
    }
}

#[test]
fn help_shows_the_json_of_every_fault_and_token_host() {
    let help = help();
    let faults = comm100_sandbox::Fault::examples()
        .into_iter()
        .map(serde_json::to_value);
    let hosts = comm100_sandbox::TokenHost::examples()
        .into_iter()
        .map(serde_json::to_value);
    for value in faults.chain(hosts) {
        let name = json_name(value.unwrap());
        assert!(help.contains(&format!("\"{name}\"")), "{name} in:\n{help}");
    }
}

#[test]
fn every_admin_route_in_help_is_served() {
    let help = help();
    let routes: Vec<(String, String)> = help
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let method = words.next()?;
            let path = words.next()?;
            (["GET", "POST", "DELETE"].contains(&method) && path.starts_with("/__sandbox/"))
                .then(|| (method.to_owned(), path.replace("{site}", "10000")))
        })
        .collect();
    assert_eq!(routes.len(), 20, "{help}");
    let binary = Binary::spawn(&["--port", "0"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for (method, path) in routes {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let url = format!("{}{path}", binary.portal);
            let request = client().request(method.clone(), &url);
            let response = request
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            // With no body, a route that takes one answers 400: served, not missing.
            assert!(
                [200, 204, 400].contains(&status),
                "{method} {path}: {status}"
            );
        }
    });
}

#[test]
fn the_binary_starts_with_the_seed_file() {
    let binary = Binary::spawn(&["--port", "0", "--seed", EXAMPLE_SEED]);
    let printed = binary.printed.join("\n");
    assert!(
        printed.contains("agent:              agent@example.com / sandbox-password, site 10000"),
        "{printed}"
    );
    assert!(
        printed.contains("agent:              sync@example.com / sync-password, site 20000"),
        "{printed}"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let stored: Vec<Value> =
            get_ok(&format!("{}/__sandbox/segments/10000", binary.portal), None).await;
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0]["id"], "7d9f1c52-3b8e-4c1a-9f6e-2a4b5c6d7e8f");

        let login = client()
            .post(format!(
                "{}/adminwebservice/api/jwttoken/generate",
                binary.portal
            ))
            .json(&credentials("sync@example.com", "sync-password", 20000))
            .send()
            .await
            .unwrap();
        let token: Value = login.json().await.unwrap();
        let list_url = format!("{}/livechat/customerSegments", binary.api);
        let listed: Vec<Value> = get_ok(&list_url, token["token"].as_str()).await;
        assert_eq!(listed.len(), 5, "the odd records of site 20000");
    });
}

#[test]
fn a_seed_file_it_cannot_use_stops_it_with_a_message() {
    let dir = std::env::temp_dir().join(format!("comm100-sandbox-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, r#"{"agents": [], "segments": []}"#).unwrap();
    let missing = dir.join("missing.json");
    for (path, says) in [
        (&invalid, "is not valid: unknown field `segments`"),
        (&missing, "cannot read the seed file"),
    ] {
        let output = Command::new(BINARY)
            .args(["--port", "0", "--seed"])
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
