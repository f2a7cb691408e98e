//! The `comm100` binary against a sandbox on loopback: the segments-as-code loop, unknown
//! fields kept, a change between plan and apply refused, `--prune`, raw calls with a body on
//! stdin, and profiles. Write counts come from the sandbox's request log.

use std::path::Path;
use std::process::Stdio;

use comm100_sandbox::{DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID, Sandbox};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// What a run of the binary gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `comm100 ARGS` with the sandbox's credentials in the environment and `stdin` on its
/// stdin. Asynchronous, so that the sandbox keeps serving on this test's runtime.
async fn comm100(sandbox: &Sandbox, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_comm100"));
    command
        .args(args)
        .env_clear()
        .env("COMM100_PORTAL_URL", sandbox.portal_url())
        .env("COMM100_API_URL", sandbox.api_url())
        .env("COMM100_EMAIL", DEFAULT_EMAIL)
        .env("COMM100_PASSWORD", DEFAULT_PASSWORD)
        .env("COMM100_SITE_ID", DEFAULT_SITE_ID.to_string())
        .env("CLI_TEST_PASSWORD", DEFAULT_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the binary starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes())
            .await
            .expect("stdin written");
    }
    drop(pipe);
    let output = child.wait_with_output().await.expect("the binary ends");
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

/// `comm100 segments plan -f FILE --detailed-exitcode EXTRA`.
async fn run_plan(sandbox: &Sandbox, file: &str, extra: &[&str]) -> Run {
    let mut args = vec!["segments", "plan", "-f", file, "--detailed-exitcode"];
    args.extend_from_slice(extra);
    comm100(sandbox, &args, None).await
}

/// Plans `file` and expects no changes: exit 0 and `No changes.`
async fn assert_no_changes(sandbox: &Sandbox, file: &str) {
    let plan = run_plan(sandbox, file, &[]).await;
    assert_eq!(
        (plan.code, plan.stdout.as_str()),
        (0, "No changes.\n"),
        "{}",
        plan.stderr
    );
}

/// `comm100 segments apply -f FILE --yes EXTRA`.
async fn run_apply(sandbox: &Sandbox, file: &str, extra: &[&str]) -> Run {
    let mut args = vec!["segments", "apply", "-f", file, "--yes"];
    args.extend_from_slice(extra);
    comm100(sandbox, &args, None).await
}

/// The writes (POST, PUT, DELETE) to the API the sandbox logged, as `METHOD path`.
fn writes(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .controls()
        .requests()
        .into_iter()
        .filter(|r| ["POST", "PUT", "DELETE"].contains(&r.method.as_str()))
        .filter(|r| r.path.contains("/customerSegments"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn condition(value: &str) -> Value {
    json!({"field": "CurrentPageUrl", "operator": "contains", "value": value, "order": 1})
}

/// A raw segment with an unknown top-level field, `priority`.
fn insert_raw(sandbox: &Sandbox, name: &str) -> comm100::uuid::Uuid {
    sandbox.controls().insert_raw_segment(
        DEFAULT_SITE_ID,
        json!({
            "name": name, "color": "339FD9", "isEnable": true, "conditionMetType": "all",
            "description": "", "logicalExpression": "", "priority": 3,
            "conditions": [condition("/raw")],
            "alertTo": {"agentIds": [], "departmentIds": []},
        }),
    )
}

fn edit(path: &Path, change: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut file: Value = serde_norway::from_str(&text).unwrap();
    change(file["segments"].as_object_mut().unwrap());
    std::fs::write(path, serde_norway::to_string(&file).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_plan_edit_plan_apply_plan() {
    let sandbox = Sandbox::start().await.unwrap();
    let raw_id = insert_raw(&sandbox, "Raw");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("segments.yaml");
    let file_arg = file.to_str().unwrap();

    // A segment created with a raw call, its body on stdin.
    let body = json!({"name": "VIP", "conditions": [condition("/pricing")]}).to_string();
    let created = comm100(
        &sandbox,
        &[
            "api",
            "POST",
            "/livechat/customerSegments",
            "--json-body",
            "-",
        ],
        Some(&body),
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let created: Value = serde_json::from_str(&created.stdout).unwrap();
    assert_eq!(created["name"], "VIP");

    let export = comm100(&sandbox, &["segments", "export"], None).await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    // Keyed by name, in name order; the server's defaults and its own fields left out, the
    // unknown field kept.
    let exported: Value = serde_norway::from_str(&export.stdout).unwrap();
    let names: Vec<&String> = exported["segments"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["Raw", "VIP"]);
    let vip = exported["segments"]["VIP"].as_object().unwrap();
    for absent in ["id", "order", "color", "isEnable", "conditionMetType"] {
        assert!(!vip.contains_key(absent), "{absent} exported: {vip:?}");
    }
    assert_eq!(exported["segments"]["Raw"]["priority"], 3);
    std::fs::write(&file, &export.stdout).unwrap();

    assert_no_changes(&sandbox, file_arg).await;

    edit(&file, |segments| {
        segments["Raw"]["color"] = json!("FF0000");
        segments.insert("New".into(), json!({"conditions": [condition("/new")]}));
    });
    let plan = run_plan(&sandbox, file_arg, &[]).await;
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    let expected = format!(
        "+ create `New`\n    conditions: {}\n~ update `Raw` ({raw_id})\n    color: \"339FD9\" -> \"FF0000\"\nPlan: 1 to create, 1 to update, 0 to delete.\n",
        json!([condition("/new")])
    );
    assert_eq!(plan.stdout, expected);

    sandbox.controls().clear_requests();
    let apply = run_apply(&sandbox, file_arg, &[]).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stdout.ends_with("Applied 2 of 2 changes.\n"),
        "{}",
        apply.stdout
    );
    assert_eq!(
        writes(&sandbox),
        [
            "POST /api/v3/livechat/customerSegments".to_string(),
            format!("PUT /api/v3/livechat/customerSegments/{raw_id}"),
        ]
    );

    assert_no_changes(&sandbox, file_arg).await;

    sandbox.controls().clear_requests();
    let again = run_apply(&sandbox, file_arg, &[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(writes(&sandbox), Vec::<String>::new());

    let raw = sandbox
        .controls()
        .segment(DEFAULT_SITE_ID, raw_id)
        .unwrap()
        .raw;
    assert_eq!(
        (raw["color"].as_str(), raw["priority"].as_i64()),
        (Some("FF0000"), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_changed_between_plan_and_apply_is_refused() {
    let sandbox = Sandbox::start().await.unwrap();
    let first = insert_raw(&sandbox, "A");
    let second = insert_raw(&sandbox, "B");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("segments.yaml");
    let saved = dir.path().join("plan.json");
    let export = comm100(&sandbox, &["segments", "export"], None).await;
    std::fs::write(&file, &export.stdout).unwrap();
    edit(&file, |segments| {
        segments["A"]["description"] = json!("first");
        segments["B"]["description"] = json!("second");
    });
    let saved_arg = saved.to_str().unwrap();
    let plan = run_plan(&sandbox, file.to_str().unwrap(), &["--out", saved_arg]).await;
    assert_eq!(plan.code, 2, "{}", plan.stderr);

    // Someone else changes B after the plan.
    let change = json!({"name": "B", "color": "00FF00", "conditions": [condition("/raw")]});
    let put = comm100(
        &sandbox,
        &[
            "api",
            "PUT",
            &format!("/livechat/customerSegments/{second}"),
            "--json-body",
            "-",
        ],
        Some(&change.to_string()),
    )
    .await;
    assert_eq!(put.code, 0, "{}", put.stderr);

    sandbox.controls().clear_requests();
    let apply_args = ["segments", "apply", "--plan", saved_arg, "--yes"];
    let apply = comm100(&sandbox, &apply_args, None).await;
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    assert!(
        apply.stderr.contains("changed since the plan"),
        "{}",
        apply.stderr
    );
    assert!(
        apply
            .stdout
            .contains(&format!("done: update `A` ({first})")),
        "{}",
        apply.stdout
    );
    assert!(
        apply
            .stdout
            .contains(&format!("failed: update `B` ({second})")),
        "{}",
        apply.stdout
    );
    // A's update went out; B's did not.
    assert_eq!(
        writes(&sandbox),
        [format!("PUT /api/v3/livechat/customerSegments/{first}")]
    );
    let b = sandbox.controls().segment(DEFAULT_SITE_ID, second).unwrap();
    assert_eq!(b.color.as_deref(), Some("00FF00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_when_asked_and_twins_are_refused() {
    let sandbox = Sandbox::start().await.unwrap();
    insert_raw(&sandbox, "Keep");
    let gone = insert_raw(&sandbox, "Gone");
    // No file can name it, so no prune deletes it.
    insert_raw(&sandbox, "  ");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("segments.json");
    let file_arg = file.to_str().unwrap();
    let export = comm100(&sandbox, &["segments", "export", "--format", "json"], None).await;
    let mut exported: Value = serde_json::from_str(&export.stdout).unwrap();
    exported["segments"].as_object_mut().unwrap().remove("Gone");
    std::fs::write(&file, exported.to_string()).unwrap();

    let plan = run_plan(&sandbox, file_arg, &[]).await;
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    let plan = run_plan(&sandbox, file_arg, &["--prune"]).await;
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout
            .starts_with(&format!("- delete `Gone` ({gone})\n")),
        "{}",
        plan.stdout
    );

    sandbox.controls().clear_requests();
    let apply = run_apply(&sandbox, file_arg, &["--prune"]).await;
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert_eq!(
        writes(&sandbox),
        [format!("DELETE /api/v3/livechat/customerSegments/{gone}")]
    );

    // A create carries a field the spec does not describe.
    let mut with_unknown = exported.clone();
    with_unknown["segments"]["Fresh"] = json!({"conditions": [condition("/f")], "priority": 1});
    std::fs::write(&file, with_unknown.to_string()).unwrap();
    let created = run_apply(&sandbox, file_arg, &[]).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let fresh = sandbox
        .controls()
        .segments(DEFAULT_SITE_ID)
        .into_iter()
        .find(|s| s.name.as_deref() == Some("Fresh"))
        .unwrap();
    assert_eq!(fresh.raw["priority"], 1);

    // Two live segments named as one the file manages: refused before anything is sent.
    insert_raw(&sandbox, "Keep");
    sandbox.controls().clear_requests();
    let plan = run_apply(&sandbox, file_arg, &[]).await;
    assert_eq!(plan.code, 1);
    assert!(
        plan.stderr.contains("2 segments named `Keep`"),
        "{}",
        plan.stderr
    );
    assert_eq!(writes(&sandbox), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_login_and_exit_codes() {
    let sandbox = Sandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let profile = |password_env: &str| {
        format!(
            "profiles:\n  sandbox:\n    portal_url: {}\n    api_url: {}\n    email: {DEFAULT_EMAIL}\n    site_id: {DEFAULT_SITE_ID}\n    password_env: {password_env}\n",
            sandbox.portal_url(),
            sandbox.api_url()
        )
    };
    std::fs::write(&config, profile("CLI_TEST_PASSWORD")).unwrap();
    let config_arg = config.to_str().unwrap();

    let login = comm100(
        &sandbox,
        &["login", "--profile", "sandbox", "--config", config_arg],
        None,
    )
    .await;
    assert_eq!(login.code, 0, "{}", login.stderr);
    assert!(
        login
            .stdout
            .starts_with("logged in (sandbox); the token expires at "),
        "{}",
        login.stdout
    );

    // The password from stdin instead of the variable.
    let stdin_login_args = [
        "login",
        "--profile",
        "sandbox",
        "--config",
        config_arg,
        "--password-stdin",
    ];
    let stdin_login = comm100(
        &sandbox,
        &stdin_login_args,
        Some(&format!("{DEFAULT_PASSWORD}\n")),
    )
    .await;
    assert_eq!(stdin_login.code, 0, "{}", stdin_login.stderr);

    // A wrong password is a refusal: 3, and the one-line ApiError says the login failed.
    let wrong = comm100(&sandbox, &stdin_login_args, Some("not-the-password\n")).await;
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
    assert!(
        wrong
            .stderr
            .starts_with("error: generate_jwt_token: HTTP 401 (code 401000): could not log in:"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("not-the-password"));

    // A missing segment: a 4xx, the one-line ApiError.
    let missing = comm100(
        &sandbox,
        &[
            "api",
            "GET",
            "/livechat/customerSegments/00000000-0000-4000-8000-000000000000",
        ],
        None,
    )
    .await;
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert_eq!(missing.stderr.lines().count(), 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("HTTP 404"), "{}", missing.stderr);

    // Nobody listening: an outage.
    let port = sandbox.addr().port();
    sandbox.shutdown().await;
    let down = comm100_at(port, &["api", "GET", "/livechat/customerSegments"]).await;
    assert_eq!(down.code, 4, "{}", down.stderr);

    // A usage error is 1, not clap's 2 (which `plan --detailed-exitcode` uses for changes).
    let usage = comm100_at(port, &["segments", "plan"]).await;
    assert_eq!(usage.code, 1, "{}", usage.stderr);
}

/// The binary pointed at a port where nothing listens any more.
async fn comm100_at(port: u16, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_comm100"))
        .args(args)
        .env_clear()
        .env("COMM100_PORTAL_URL", format!("http://127.0.0.1:{port}"))
        .env("COMM100_API_URL", format!("http://127.0.0.1:{port}/api/v3"))
        .env("COMM100_EMAIL", DEFAULT_EMAIL)
        .env("COMM100_PASSWORD", DEFAULT_PASSWORD)
        .env("COMM100_SITE_ID", DEFAULT_SITE_ID.to_string())
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_profiles_plan_and_apply_per_site() {
    let sandbox = Sandbox::start().await.unwrap();
    let other_site = DEFAULT_SITE_ID + 1;
    sandbox
        .controls()
        .add_agent("other@example.com", DEFAULT_PASSWORD, other_site);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let mut text = String::from("profiles:\n");
    for (name, email, site) in [
        ("first", DEFAULT_EMAIL, DEFAULT_SITE_ID),
        ("second", "other@example.com", other_site),
    ] {
        text += &format!(
            "  {name}:\n    portal_url: {}\n    api_url: {}\n    email: {email}\n    site_id: {site}\n    password_env: CLI_TEST_PASSWORD\n",
            sandbox.portal_url(),
            sandbox.api_url()
        );
    }
    std::fs::write(&config, text).unwrap();
    let file = dir.path().join("segments.yaml");
    let segments = json!({"segments": {"Everywhere": {"conditions": [condition("/all")]}}});
    std::fs::write(&file, serde_norway::to_string(&segments).unwrap()).unwrap();
    let all = ["--all-profiles", "--config", config.to_str().unwrap()];
    let file_arg = file.to_str().unwrap();

    let plan = run_plan(&sandbox, file_arg, &all).await;
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    let expected = format!(
        "== first\n+ create `Everywhere`\n    conditions: {0}\nPlan: 1 to create, 0 to update, 0 to delete.\n== second\n+ create `Everywhere`\n    conditions: {0}\nPlan: 1 to create, 0 to update, 0 to delete.\n",
        json!([condition("/all")])
    );
    assert_eq!(plan.stdout, expected);

    sandbox.controls().clear_requests();
    let apply = run_apply(&sandbox, file_arg, &all).await;
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert_eq!(writes(&sandbox).len(), 2);
    for site in [DEFAULT_SITE_ID, other_site] {
        let names: Vec<_> = sandbox
            .controls()
            .segments(site)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, [Some("Everywhere".to_string())], "site {site}");
    }
    let plan = run_plan(&sandbox, file_arg, &all).await;
    assert_eq!(plan.code, 0, "{}", plan.stdout);
}

// --- The generated commands (`comm100 op <operation>`) ---------------------------------------

/// The generated commands' names, from the command line's own tree.
fn generated_commands() -> std::collections::BTreeSet<String> {
    comm100_cli::command()
        .find_subcommand("op")
        .expect("an `op` group")
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect()
}

/// Every generated command once, each checked in the sandbox's state and log: the template fed
/// back creates, the list and the get show it, the update takes its body from stdin with flags
/// merged into it, the delete removes it, and a refusal prints the one-line `ApiError`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_generated_command_once() {
    let sandbox = Sandbox::start().await.unwrap();
    let controls = sandbox.controls();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = std::collections::BTreeSet::new();

    // The template needs no server, and is valid as it is: fed back, it creates a segment.
    let template = comm100(
        &sandbox,
        &["op", "create-customer-segment", "--json-body-template"],
        None,
    )
    .await;
    assert_eq!(template.code, 0, "{}", template.stderr);
    assert!(
        controls.requests().is_empty(),
        "the template sent a request"
    );
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &template.stdout).unwrap();
    let template: Value = serde_json::from_str(&template.stdout).unwrap();
    let created = comm100(
        &sandbox,
        &[
            "op",
            "create-customer-segment",
            "--json-body",
            body_file.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    // stdout is a pipe here: JSON without `--format`.
    let created: Value = serde_json::from_str(&created.stdout).unwrap();
    let id: comm100::uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let record = controls.segment(DEFAULT_SITE_ID, id).expect("created");
    assert_eq!(record.name.as_deref(), template["name"].as_str());
    assert_eq!(
        record.raw["conditions"][0]["value"],
        template["conditions"][0]["value"]
    );
    ran.insert("create-customer-segment");

    let list = comm100(&sandbox, &["op", "list-customer-segments"], None).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let listed: Value = serde_json::from_str(&list.stdout).unwrap();
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let stored: Vec<String> = controls
        .segments(DEFAULT_SITE_ID)
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(listed, stored);
    ran.insert("list-customer-segments");

    let id_arg = id.to_string();
    let get = comm100(
        &sandbox,
        &[
            "op",
            "get-customer-segment",
            "--id",
            &id_arg,
            "--format",
            "table",
        ],
        None,
    )
    .await;
    assert_eq!(get.code, 0, "{}", get.stderr);
    let name_row = get
        .stdout
        .lines()
        .find(|l| l.starts_with("name "))
        .unwrap_or_else(|| panic!("no name row:\n{}", get.stdout));
    assert!(
        name_row.ends_with(record.name.as_deref().unwrap()),
        "{name_row}"
    );
    ran.insert("get-customer-segment");

    // The body from stdin; the flags are merged into it, each replacing its field.
    let body = json!({
        "name": "From stdin",
        "description": "kept from stdin",
        "conditions": [condition("/stdin")],
    });
    let update = comm100(
        &sandbox,
        &[
            "op",
            "update-customer-segment",
            "--id",
            &id_arg,
            "--json-body",
            "-",
            "--name",
            "From the flag",
            "--condition-met-type",
            "any",
        ],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(update.code, 0, "{}", update.stderr);
    let record = controls.segment(DEFAULT_SITE_ID, id).unwrap();
    assert_eq!(
        (
            record.name.as_deref(),
            record.description.as_deref(),
            record.condition_met_type.as_deref(),
            record.raw["conditions"][0]["value"].as_str(),
        ),
        (
            Some("From the flag"),
            Some("kept from stdin"),
            Some("any"),
            Some("/stdin")
        )
    );
    ran.insert("update-customer-segment");

    let delete = comm100(
        &sandbox,
        &["op", "delete-customer-segment", "--id", &id_arg],
        None,
    )
    .await;
    assert_eq!(
        (delete.code, delete.stdout.as_str()),
        (0, ""),
        "{}",
        delete.stderr
    );
    assert!(controls.segment(DEFAULT_SITE_ID, id).is_none());
    ran.insert("delete-customer-segment");

    // One write per writing command, in order.
    assert_eq!(
        writes(&sandbox),
        [
            "POST /api/v3/livechat/customerSegments".to_string(),
            format!("PUT /api/v3/livechat/customerSegments/{id}"),
            format!("DELETE /api/v3/livechat/customerSegments/{id}"),
        ]
    );

    // A refusal: exit 3 and the one-line ApiError (the operation, the status), no headers.
    let gone = comm100(
        &sandbox,
        &["op", "get-customer-segment", "--id", &id_arg],
        None,
    )
    .await;
    assert_eq!(gone.code, 3, "{}", gone.stderr);
    assert_eq!(gone.stderr.lines().count(), 1, "{}", gone.stderr);
    assert!(
        gone.stderr
            .starts_with("error: get_customer_segment: HTTP 404"),
        "{}",
        gone.stderr
    );

    let ran: std::collections::BTreeSet<String> = ran.into_iter().map(String::from).collect();
    assert_eq!(
        ran,
        generated_commands(),
        "a generated command this test does not run"
    );
    // The login operation takes the password: no command, and `op --help` says why.
    let help = comm100(&sandbox, &["op", "--help"], None).await;
    assert!(
        help.stdout
            .contains("generate_jwt_token: its request carries a secret (`Password`)"),
        "{}",
        help.stdout
    );
}

/// What the generated commands refuse before sending, with exit 1 and a line that says why: a
/// flag that fails its type's check or names a value the server does not accept (the open Rust
/// type would take any string), a body the SDK checks, a body and a password that would both
/// read stdin, and any other flag with the template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_commands_refuse_locally() {
    let sandbox = Sandbox::start().await.unwrap();
    let body = json!({"name": "Ok", "conditions": [condition("/x")]}).to_string();
    let no_condition = json!({"name": "Ok", "conditions": []}).to_string();
    let create = ["op", "create-customer-segment"];
    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (
            &[&create[..], &["--json-body", "-", "--name", " "]].concat(),
            Some(&body),
            "must not be blank",
        ),
        (
            &[
                &create[..],
                &["--json-body", "-", "--condition-met-type", "most"],
            ]
            .concat(),
            Some(&body),
            "[possible values: all, any, logicalExpression]",
        ),
        (
            &[&create[..], &["--json-body", "-"]].concat(),
            Some(&no_condition),
            "conditions: must hold at least one item",
        ),
        (
            &[
                &["--profile", "any", "--password-stdin"][..],
                &create[..],
                &["--json-body", "-"],
            ]
            .concat(),
            Some(&body),
            "both read stdin",
        ),
        (
            &[&create[..], &["--json-body-template", "--name", "x"]].concat(),
            None,
            "cannot be used with",
        ),
    ];
    for (args, stdin, says) in cases {
        let run = comm100(&sandbox, args, stdin).await;
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert_eq!(writes(&sandbox), Vec::<String>::new());
}
