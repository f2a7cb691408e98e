//! Customer segments as code: `export`, `plan` and `apply`.
//!
//! The file holds `segments:`, a map from a segment's name to its fields. The live site is
//! read raw (as JSON), so that fields this crate does not know survive: an update's body is the
//! segment as read right before the `PUT`, with the file's fields laid over it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use comm100::Method;
use comm100::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::CliError;

const LIST_PATH: &str = "/livechat/customerSegments";

/// The file's shape.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentsFile {
    /// Segments by name; each value holds the fields the file manages.
    #[serde(default)]
    pub segments: BTreeMap<String, Map<String, Value>>,
}

/// YAML or JSON, by the file's extension (YAML unless it ends in `.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl FileFormat {
    fn of(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => FileFormat::Json,
            _ => FileFormat::Yaml,
        }
    }
}

/// Fields the server sets and a file does not carry: the id, and the position it assigns.
const SERVER_OWNED: [&str; 2] = ["id", "order"];

/// The server's documented defaults, left out of an export.
fn is_default(key: &str, value: &Value) -> bool {
    match (key, value) {
        ("color", Value::String(s)) => s.eq_ignore_ascii_case("339FD9"),
        ("isEnable", Value::Bool(false)) => true,
        ("conditionMetType", Value::String(s)) => s == "all",
        ("description" | "logicalExpression", Value::String(s)) => s.is_empty(),
        ("alertTo", Value::Object(alert)) => alert
            .values()
            .all(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty)),
        (_, Value::Null) => true,
        _ => false,
    }
}

/// A live segment: its id, its name, and the JSON as read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Live {
    id: String,
    name: String,
    raw: Map<String, Value>,
}

async fn list(c100: &Comm100) -> Result<Vec<Live>, CliError> {
    let items: Vec<Value> = c100
        .request(Method::GET, LIST_PATH)
        .send_json()
        .await
        .map_err(CliError::Api)?;
    items
        .into_iter()
        .map(|item| {
            let Value::Object(raw) = item else {
                return Err(CliError::local(format!(
                    "the segment list holds a non-object: {item}"
                )));
            };
            let id = match raw.get("id") {
                Some(Value::String(id)) => id.clone(),
                _ => return Err(CliError::local("a listed segment has no id")),
            };
            let name = raw
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Ok(Live { id, name, raw })
        })
        .collect()
}

async fn read_one(c100: &Comm100, id: &str) -> Result<Map<String, Value>, CliError> {
    let value: Value = c100
        .request(Method::GET, &format!("{LIST_PATH}/{id}"))
        .send_json()
        .await
        .map_err(CliError::Api)?;
    match value {
        Value::Object(raw) => Ok(raw),
        other => Err(CliError::local(format!(
            "segment {id} is not an object: {other}"
        ))),
    }
}

/// `segments export`: the site's segments keyed by name, with the server's defaults and the
/// fields it owns left out.
pub async fn export(c100: &Comm100, format: FileFormat) -> Result<String, CliError> {
    let live = list(c100).await?;
    let mut file = SegmentsFile::default();
    for segment in live {
        if segment.name.trim().is_empty() {
            eprintln!(
                "warning: segment {} has no name and is left out",
                segment.id
            );
            continue;
        }
        if file.segments.contains_key(&segment.name) {
            return Err(CliError::local(format!(
                "two segments are named `{}`: a file keyed by name cannot hold both",
                segment.name
            )));
        }
        let fields = segment
            .raw
            .into_iter()
            .filter(|(k, v)| {
                !SERVER_OWNED.contains(&k.as_str()) && k != "name" && !is_default(k, v)
            })
            .collect();
        file.segments.insert(segment.name, fields);
    }
    render(&file, format)
}

fn render(file: &SegmentsFile, format: FileFormat) -> Result<String, CliError> {
    match format {
        FileFormat::Json => serde_json::to_string_pretty(file)
            .map(|s| s + "\n")
            .map_err(|e| CliError::local(e.to_string())),
        FileFormat::Yaml => {
            serde_norway::to_string(file).map_err(|e| CliError::local(e.to_string()))
        }
    }
}

/// Reads a segments file, YAML or JSON by its extension.
pub fn read_file(path: &Path) -> Result<SegmentsFile, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::local(format!("cannot read {}: {e}", path.display())))?;
    let file: SegmentsFile = match FileFormat::of(path) {
        FileFormat::Json => serde_json::from_str(&text)
            .map_err(|e| CliError::local(format!("{}: {e}", path.display())))?,
        FileFormat::Yaml => serde_norway::from_str(&text)
            .map_err(|e| CliError::local(format!("{}: {e}", path.display())))?,
    };
    for (name, fields) in &file.segments {
        if let Some(key) = fields.keys().find(|k| *k == "id" || *k == "name") {
            return Err(CliError::local(format!(
                "segment `{name}`: `{key}` cannot be set in the file (the key is the name; the id is the server's)"
            )));
        }
    }
    Ok(file)
}

/// `base` with `over` laid on it: objects merge key by key, anything else is replaced. A key
/// `over` does not mention keeps `base`'s value.
fn overlay(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Object(inner)), Value::Object(value)) => overlay(inner, value),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The fields whose value differs between `live` and `live` overlaid with `over`, by their
/// dotted path: `(path, old, new)`, in key order.
fn diff(live: &Map<String, Value>, over: &Map<String, Value>, prefix: &str, out: &mut Vec<Change>) {
    for (key, new) in over {
        let path = format!("{prefix}{key}");
        match (live.get(key), new) {
            (Some(Value::Object(old)), Value::Object(new)) => {
                diff(old, new, &format!("{path}."), out)
            }
            (old, new) if old != Some(new) => out.push(Change {
                path,
                old: old.cloned(),
                new: new.clone(),
            }),
            _ => {}
        }
    }
}

/// One field that changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    path: String,
    old: Option<Value>,
    new: Value,
}

/// One step of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Step {
    /// A segment the file has and the site does not.
    Create {
        name: String,
        fields: Map<String, Value>,
    },
    /// A segment whose fields differ: the changes, and the segment as read for the plan.
    Update {
        live: Live,
        fields: Map<String, Value>,
        changes: Vec<Change>,
    },
    /// A live segment the file does not have (with `--prune` only).
    Delete { live: Live },
}

impl Step {
    fn label(&self) -> String {
        match self {
            Step::Create { name, .. } => format!("create `{name}`"),
            Step::Update { live, .. } => format!("update `{}` ({})", live.name, live.id),
            Step::Delete { live } => format!("delete `{}` ({})", live.name, live.id),
        }
    }
}

/// What `file` would change on the site, in a fixed order: creates and updates by name, then
/// deletes by name and id.
pub async fn plan(c100: &Comm100, file: &SegmentsFile, prune: bool) -> Result<Vec<Step>, CliError> {
    let live = list(c100).await?;
    let mut by_name: BTreeMap<&str, Vec<&Live>> = BTreeMap::new();
    for segment in &live {
        by_name
            .entry(segment.name.as_str())
            .or_default()
            .push(segment);
    }
    let mut steps = Vec::new();
    for (name, fields) in &file.segments {
        match by_name.get(name.as_str()).map(Vec::as_slice) {
            None | Some([]) => {
                // Refused now rather than midway through an apply.
                create_input(name, fields)?;
                steps.push(Step::Create {
                    name: name.clone(),
                    fields: fields.clone(),
                })
            }
            Some([one]) => {
                let mut changes = Vec::new();
                diff(&one.raw, fields, "", &mut changes);
                if !changes.is_empty() {
                    steps.push(Step::Update {
                        live: (*one).clone(),
                        fields: fields.clone(),
                        changes,
                    });
                }
            }
            Some(many) => {
                let ids: Vec<&str> = many.iter().map(|s| s.id.as_str()).collect();
                return Err(CliError::local(format!(
                    "the site has {} segments named `{name}` ({}): rename or delete all but one before managing it",
                    many.len(),
                    ids.join(", ")
                )));
            }
        }
    }
    if prune {
        let mut gone: Vec<&Live> = Vec::new();
        for segment in live.iter().filter(|s| !file.segments.contains_key(&s.name)) {
            // A file cannot name it, so it would be deleted by every prune: left alone.
            if segment.name.trim().is_empty() {
                eprintln!(
                    "warning: segment {} has no name; --prune leaves it",
                    segment.id
                );
            } else {
                gone.push(segment);
            }
        }
        gone.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        steps.extend(gone.into_iter().map(|s| Step::Delete { live: s.clone() }));
    }
    Ok(steps)
}

/// A plan saved by `plan --out`, for `apply --plan`: each step with the segment as the plan
/// read it, so that `apply` refuses a segment changed in between.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// The profile (or `env`) the plan was made for.
    pub site: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl SavedPlan {
    /// Writes the plan as JSON.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| CliError::local(e.to_string()))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| CliError::local(format!("cannot write {}: {e}", path.display())))
    }

    /// Reads a plan `save` wrote.
    pub fn load(path: &Path) -> Result<SavedPlan, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::local(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| CliError::local(format!("{}: {e}", path.display())))
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "(unset)".to_string(), Value::to_string)
}

/// The plan as text, the same for the same site and file.
pub fn describe(steps: &[Step]) -> String {
    let mut out = String::new();
    let (mut creates, mut updates, mut deletes) = (0, 0, 0);
    for step in steps {
        let _ = writeln!(out, "{} {}", sign(step), step.label());
        match step {
            Step::Create { fields, .. } => {
                creates += 1;
                for (key, value) in fields {
                    let _ = writeln!(out, "    {key}: {value}");
                }
            }
            Step::Update { changes, .. } => {
                updates += 1;
                for change in changes {
                    let _ = writeln!(
                        out,
                        "    {}: {} -> {}",
                        change.path,
                        show(change.old.as_ref()),
                        change.new
                    );
                }
            }
            Step::Delete { .. } => deletes += 1,
        }
    }
    if steps.is_empty() {
        out.push_str("No changes.\n");
    } else {
        let _ = writeln!(
            out,
            "Plan: {creates} to create, {updates} to update, {deletes} to delete."
        );
    }
    out
}

fn sign(step: &Step) -> char {
    match step {
        Step::Create { .. } => '+',
        Step::Update { .. } => '~',
        Step::Delete { .. } => '-',
    }
}

/// The typed body of a create, which the reconciling create needs; fields the spec does not
/// describe ride in its `extra`. A body the typed form would send altered is refused rather
/// than sent so.
fn create_input(
    name: &str,
    fields: &Map<String, Value>,
) -> Result<types::CustomerSegmentInput, CliError> {
    let mut body = fields.clone();
    body.insert("name".into(), Value::String(name.to_string()));
    let body = Value::Object(body);
    let input: types::CustomerSegmentInput = serde_json::from_value(body.clone())
        .map_err(|e| CliError::local(format!("segment `{name}`: {e}")))?;
    let sent = serde_json::to_value(&input).map_err(|e| CliError::local(e.to_string()))?;
    if sent != body {
        let lost: Vec<&String> = body
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| sent.get(k.as_str()) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        return Err(CliError::local(format!(
            "segment `{name}`: a create would not send {lost:?} as written; create it with `comm100 api POST` and manage it from then on"
        )));
    }
    Ok(input)
}

/// Refuses a step whose segment changed since the plan read it.
async fn unchanged_since_plan(c100: &Comm100, live: &Live) -> Result<Map<String, Value>, CliError> {
    let fresh = read_one(c100, &live.id).await?;
    if fresh != live.raw {
        return Err(CliError::Conflict(format!(
            "segment `{}` ({}) changed since the plan; nothing was sent for it: run plan again",
            live.name, live.id
        )));
    }
    Ok(fresh)
}

async fn carry_out(c100: &Comm100, step: &Step) -> Result<(), CliError> {
    match step {
        Step::Create { name, fields } => {
            let input = create_input(name, fields)?;
            match c100
                .create_customer_segment_reconciled(input)
                .await
                .map_err(CliError::Api)?
            {
                CreateOutcome::Created(_) | CreateOutcome::FoundAfterFailure { .. } => Ok(()),
                CreateOutcome::NotCreated(error) => Err(CliError::Api(error)),
                CreateOutcome::Ambiguous { candidates, error } => Err(CliError::Conflict(format!(
                    "{error}; {} segments now look like `{name}`: check the site before applying again",
                    candidates.len()
                ))),
                _ => Err(CliError::local(
                    "the create ended in an outcome this CLI does not know",
                )),
            }
        }
        Step::Update { live, fields, .. } => {
            let mut body = unchanged_since_plan(c100, live).await?;
            overlay(&mut body, fields);
            body.remove("id");
            c100.request(Method::PUT, &format!("{LIST_PATH}/{}", live.id))
                .json(&body)
                .send()
                .await
                .map_err(CliError::Api)?;
            Ok(())
        }
        Step::Delete { live } => {
            unchanged_since_plan(c100, live).await?;
            c100.request(Method::DELETE, &format!("{LIST_PATH}/{}", live.id))
                .send()
                .await
                .map_err(CliError::Api)?;
            Ok(())
        }
    }
}

/// Carries `steps` out in order and stops at the first failure, printing each step done and,
/// on a failure, those not done.
pub async fn apply(c100: &Comm100, steps: &[Step]) -> Result<(), CliError> {
    for (i, step) in steps.iter().enumerate() {
        if let Err(error) = carry_out(c100, step).await {
            println!("failed: {}", step.label());
            for rest in &steps[i + 1..] {
                println!("not done: {}", rest.label());
            }
            println!("Applied {i} of {} changes.", steps.len());
            return Err(error);
        }
        println!("done: {}", step.label());
    }
    println!("Applied {} of {} changes.", steps.len(), steps.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_overlay_keeps_what_the_file_leaves_out() {
        let mut live = map(
            json!({"color": "111111", "priority": 3, "alertTo": {"agentIds": [1], "departmentIds": []}}),
        );
        let file = map(json!({"color": "222222", "alertTo": {"agentIds": [2]}}));
        let mut changes = Vec::new();
        diff(&live, &file, "", &mut changes);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["alertTo.agentIds", "color"]);
        overlay(&mut live, &file);
        assert_eq!(
            Value::Object(live),
            json!({"color": "222222", "priority": 3, "alertTo": {"agentIds": [2], "departmentIds": []}})
        );
    }
}
