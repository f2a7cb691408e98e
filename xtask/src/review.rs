//! The snapshot review workflow: regenerate, compare, and show a reviewer what changed and
//! what it means for users of the crate (`codegen/semver.rs`, under the policy in
//! `docs/semver.md`).

use std::fmt::Write;
use std::path::Path;

use similar::{ChangeTag, TextDiff};

use crate::codegen;
use crate::codegen::semver::{self, Report};
use crate::codegen::surface;

/// Regenerates the snapshots from the spec and writes them. The report classifies the change
/// from the snapshots it replaced, and drafts a CHANGELOG entry for it.
pub fn generate(spec: &Path, snapshots: &Path) -> Result<String, String> {
    let outputs = outputs(spec)?;
    let reviewed = reviewed(snapshots);
    std::fs::create_dir_all(snapshots)
        .map_err(|e| format!("cannot create {}: {e}", snapshots.display()))?;
    let mut report = String::new();
    for ((name, fresh), old) in outputs.iter().zip(&reviewed) {
        let path = snapshot_path(snapshots, name);
        let new = codegen::snapshot_file(name, fresh);
        let state = match old {
            Some(old) if old.trim_end() == fresh.trim_end() => "unchanged",
            Some(_) => "updated",
            None => "created",
        };
        std::fs::write(&path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        writeln!(
            report,
            "{state:>9}  {} ({} lines)",
            path.display(),
            fresh.lines().count()
        )
        .unwrap();
    }
    report
        .push_str("Review the change with `git diff tests/snapshots` and commit it with the spec.");
    if unchanged(&reviewed, &outputs) {
        report.push_str("\nNothing changed: no release needed.");
        return Ok(report);
    }
    if reviewed.iter().all(Option::is_none) {
        report.push_str("\nThere were no reviewed snapshots to compare with.");
        return Ok(report);
    }
    let semver = classify(&reviewed, &outputs);
    report.push_str("\n\nWhat it means for users of the crate (docs/semver.md):\n");
    for change in &semver.changes {
        writeln!(report, "{change}").unwrap();
    }
    write!(
        report,
        "\nA draft CHANGELOG entry, to paste under `## [Unreleased]`:\n\n{}\n{}",
        semver.changelog(),
        semver.summary()
    )
    .unwrap();
    Ok(report)
}

/// Compares the committed snapshots with what the spec generates now. On drift, the error is a
/// unified diff (surface first, each hunk tagged with what it means, then code), the command
/// that accepts the change, and the release it needs.
pub fn check(spec: &Path, snapshots: &Path) -> Result<String, String> {
    let outputs = outputs(spec)?;
    let reviewed = reviewed(snapshots);
    if unchanged(&reviewed, &outputs) {
        return Ok(format!(
            "up to date: the reviewed snapshots ({}) match {}",
            codegen::SNAPSHOTS.join(", "),
            spec.display()
        ));
    }
    let semver = classify(&reviewed, &outputs);
    let mut shown = vec![false; semver.changes.len()];
    let mut diffs = String::new();
    for ((name, fresh), old) in outputs.iter().zip(&reviewed) {
        let old = format!("{}\n", old.as_deref().unwrap_or_default().trim_end());
        let new = format!("{}\n", fresh.trim_end());
        if old != new {
            let label = snapshot_path(snapshots, name).display().to_string();
            let tags = (*name == codegen::SNAPSHOTS[0]).then_some((&semver, &mut shown[..]));
            diffs.push_str(&diff(&label, &old, &new, tags));
            diffs.push('\n');
        }
        if *name == codegen::SNAPSHOTS[0] {
            // What the listing does not show (docs, traits, required setters and fields) is
            // listed before the code diff, where it would otherwise be looked for.
            let rest: Vec<String> = semver
                .changes
                .iter()
                .zip(&shown)
                .filter(|(_, shown)| !**shown)
                .map(|(c, _)| c.to_string())
                .collect();
            if !rest.is_empty() {
                let intro = if old == new {
                    "The API surface listing is unchanged."
                } else {
                    "Not shown in the listing:"
                };
                write!(diffs, "{intro}\n{}\n\n", rest.join("\n")).unwrap();
            }
        }
    }
    Err(format!(
        "the reviewed snapshots are out of date with {}:\n\n{diffs}If this change is intended, accept it with:\n\n    cargo xtask generate\n\nthen review and commit tests/snapshots/ with the spec.\n\n{}",
        spec.display(),
        semver.summary()
    ))
}

/// The reviewed `--help` of every command of the command line,
/// `cli/tests/snapshots/help__every_command.snap`. Only the compiled command line can render
/// it, so its test (`cli/tests/help.rs`) is run: it fails on drift with `accept` false
/// (`INSTA_UPDATE=no`), and writes the snapshot with `accept` true (`INSTA_UPDATE=always`).
/// After `cargo test --workspace` (CI) it is compiled already and takes seconds.
pub fn cli_help(root: &Path, accept: bool) -> Result<String, String> {
    const SNAPSHOT: &str = "cli/tests/snapshots/help__every_command.snap";
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .current_dir(root)
        .args(["test", "-p", "comm100-cli", "--test", "help", "--quiet"])
        .env("INSTA_UPDATE", if accept { "always" } else { "no" })
        .output()
        .map_err(|e| format!("cannot run cargo test -p comm100-cli --test help: {e}"))?;
    if output.status.success() {
        return Ok(if accept {
            format!("  written  {SNAPSHOT} (every command's --help)")
        } else {
            format!("up to date: {SNAPSHOT} matches every command's --help")
        });
    }
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Err(if accept {
        format!("cannot write {SNAPSHOT}: its test (cli/tests/help.rs) failed:\n\n{log}")
    } else {
        format!(
            "{SNAPSHOT} is out of date with the command line's --help (or its test failed):\n\n{log}\nIf this change is intended, accept it with:\n\n    cargo xtask generate\n"
        )
    })
}

/// A unified diff; with `tags`, each hunk of the surface listing is followed by the changes it
/// shows, which are then marked as shown.
fn diff(label: &str, old: &str, new: &str, mut tags: Option<(&Report, &mut [bool])>) -> String {
    let (old_headers, new_headers) = (surface::line_headers(old), surface::line_headers(new));
    let diff = TextDiff::from_lines(old, new);
    let mut out = format!("--- {label} (reviewed)\n+++ {label} (generated now)\n");
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let text = hunk.to_string();
        let (header, lines) = text.split_once('\n').unwrap_or((&text, ""));
        writeln!(out, "{header}").unwrap();
        if let Some((report, shown)) = tags.as_mut() {
            // The lines this hunk adds or removes, each with the item it belongs to.
            let touched: Vec<(&str, &str)> = hunk
                .iter_changes()
                .filter_map(|c| {
                    let line = c.value().trim_end_matches('\n');
                    match c.tag() {
                        ChangeTag::Delete => Some((old_headers[c.old_index()?], line)),
                        ChangeTag::Insert => Some((new_headers[c.new_index()?], line)),
                        ChangeTag::Equal => None,
                    }
                })
                .collect();
            for (change, shown) in report.changes.iter().zip(shown.iter_mut()) {
                let here = change
                    .at
                    .as_ref()
                    .is_some_and(|(item, line)| touched.contains(&(item.as_str(), line.as_str())));
                if here && !*shown {
                    *shown = true;
                    writeln!(out, "{change}").unwrap();
                }
            }
        }
        out.push_str(lines);
    }
    out
}

/// The release the change from the reviewed snapshots to the fresh outputs needs.
fn classify(reviewed: &[Option<String>], outputs: &[(&str, String)]) -> Report {
    let old = |i: usize| reviewed[i].as_deref().unwrap_or_default();
    semver::classify(old(0), old(1), &outputs[0].1, &outputs[1].1)
}

fn unchanged(reviewed: &[Option<String>], outputs: &[(&str, String)]) -> bool {
    reviewed
        .iter()
        .zip(outputs)
        .all(|(old, (_, fresh))| old.as_deref().map(str::trim_end) == Some(fresh.trim_end()))
}

/// The contents of the reviewed snapshots, in the order of `codegen::SNAPSHOTS`.
fn reviewed(snapshots: &Path) -> Vec<Option<String>> {
    codegen::SNAPSHOTS
        .iter()
        .map(|name| {
            let file = std::fs::read_to_string(snapshot_path(snapshots, name)).ok()?;
            Some(codegen::snapshot_contents(&file).to_string())
        })
        .collect()
}

fn outputs(spec: &Path) -> Result<Vec<(&'static str, String)>, String> {
    let (surface, code, cli) = codegen::reviewed_outputs(spec).map_err(|e| e.to_string())?;
    // The order of codegen::SNAPSHOTS: the surface is read first.
    Ok(vec![
        (codegen::SNAPSHOTS[0], surface),
        (codegen::SNAPSHOTS[1], code),
        (codegen::SNAPSHOTS[2], cli),
    ])
}

fn snapshot_path(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("generated__{name}.snap"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    /// The committed snapshots match the committed spec.
    #[test]
    fn committed_snapshots_are_current() {
        let root = root();
        check(
            &root.join(codegen::SPEC_PATH),
            &root.join(codegen::SNAPSHOT_DIR),
        )
        .unwrap();
    }

    /// Adding a property to the segment schema in a copy of the spec makes `check` fail, and
    /// the diff names the property in both the surface and the code.
    #[test]
    fn a_new_segment_property_fails_check_and_is_named() {
        let root = root();
        let spec = std::fs::read_to_string(root.join(codegen::SPEC_PATH)).unwrap();
        let anchor = "    CustomerSegment:\n      type: object\n";
        let at = spec
            .find(anchor)
            .expect("the spec has a CustomerSegment schema");
        let props =
            spec[at..].find("      properties:\n").unwrap() + at + "      properties:\n".len();
        let edited = format!(
            "{}        visitorLimit:\n          type: integer\n          description: The most visitors the segment holds.\n{}",
            &spec[..props],
            &spec[props..]
        );
        let dir = std::env::temp_dir().join(format!("comm100-xtask-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let edited_path = dir.join("comm100.yaml");
        std::fs::write(&edited_path, edited).unwrap();

        let err = check(&edited_path, &root.join(codegen::SNAPSHOT_DIR)).unwrap_err();
        std::fs::remove_dir_all(&dir).ok();

        assert!(
            err.contains("+  visitor_limit: Option<i64> as \"visitorLimit\""),
            "surface diff names the property:\n{err}"
        );
        assert!(
            err.contains("+        pub visitor_limit:"),
            "code diff names the property:\n{err}"
        );
        let surface_at = err.find("generated__api_surface.snap").unwrap();
        let code_at = err.find("generated__code.snap").unwrap();
        assert!(surface_at < code_at, "the surface diff comes first");
        assert!(
            err.contains("cargo xtask generate"),
            "the accepting command is named"
        );
    }

    /// An edit of a request field's description changes the command line's help: `check`
    /// shows it in the diff of the generated commands.
    #[test]
    fn a_request_field_edit_shows_in_the_cli_snapshot() {
        let err = check_edited("cli-help", |spec| {
            spec.replacen(
                "description: The name of the segment. Required, and not blank.",
                "description: The segment's name. Required, and not blank.",
                1,
            )
        });
        let cli = err
            .find("generated__cli_code.snap (reviewed)")
            .unwrap_or_else(|| panic!("no diff of the generated commands:\n{err}"));
        assert!(
            err[cli..].contains(
                "+                    .help(\"The segment's name. Required, and not blank.\")"
            ),
            "{err}"
        );
    }

    /// `--json-body-template` must be valid as it is: a required string without an `example`
    /// in the spec has no such value, and generation names it.
    #[test]
    fn a_required_string_without_an_example_fails_the_cli_generation() {
        let spec = std::fs::read_to_string(root().join(codegen::SPEC_PATH)).unwrap();
        let without = spec.replacen("          example: VIP visitors\n", "", 1);
        assert_ne!(without, spec);
        let err = codegen::cli::generate(&without).unwrap_err().to_string();
        assert!(
            err.contains("create_customer_segment.name: the command line's `--json-body-template` needs a value that is sure to be valid; give this schema an `example`"),
            "{err}"
        );
    }

    /// Specs progenitor cannot take fail with a sentence naming the operation and the rule,
    /// not with a panic from inside progenitor.
    #[test]
    fn specs_progenitor_cannot_take_fail_with_a_named_rule() {
        let spec = std::fs::read_to_string(root().join(codegen::SPEC_PATH)).unwrap();

        let v31 = spec.replacen("openapi: 3.0.3", "openapi: 3.1.0", 1);
        let err = codegen::generate(&v31).unwrap_err().to_string();
        assert!(
            err.contains("openapi: 3.1.0") && err.contains("3.0.x"),
            "{err}"
        );

        let with_default = spec.replacen(
            "      responses:\n        \"204\":",
            "      responses:\n        default:\n          $ref: \"#/components/responses/Error\"\n        \"204\":",
            1,
        );
        assert_ne!(with_default, spec);
        let err = codegen::generate(&with_default).unwrap_err().to_string();
        assert!(
            err.contains("delete_customer_segment: uses a `default` response"),
            "{err}"
        );

        let two_success = spec.replacen(
            "        \"204\":\n          description: The segment was deleted.\n",
            "        \"204\":\n          description: The segment was deleted.\n        \"200\":\n          description: Deleted, with the error.\n          content:\n            application/json:\n              schema:\n                $ref: \"#/components/schemas/Error\"\n        \"202\":\n          description: Accepted.\n          content:\n            application/json:\n              schema:\n                $ref: \"#/components/schemas/CustomerSegment\"\n",
            1,
        );
        assert_ne!(two_success, spec);
        let err = codegen::generate(&two_success).unwrap_err().to_string();
        assert!(
            err.contains("delete_customer_segment: has 2 different success body types"),
            "{err}"
        );
    }

    // --- What a change means (codegen/semver.rs, docs/semver.md) -----------------------------
    // Each test writes the committed spec and an edited copy to a temporary directory,
    // generates the snapshots of the first and checks the second against them, as a maintainer
    // would after editing the spec.

    fn spec() -> String {
        std::fs::read_to_string(root().join(codegen::SPEC_PATH)).unwrap()
    }

    /// A temporary directory with `old.yaml` and `new.yaml`, removed when dropped.
    struct Specs(std::path::PathBuf);

    impl Specs {
        fn new(test: &str, old: &str, new: &str) -> Specs {
            assert_ne!(old, new, "the edit applies");
            let dir =
                std::env::temp_dir().join(format!("comm100-xtask-{}-{test}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("old.yaml"), old).unwrap();
            std::fs::write(dir.join("new.yaml"), new).unwrap();
            Specs(dir)
        }

        fn generate(&self, which: &str) -> String {
            generate(&self.0.join(which), &self.0.join("snapshots")).unwrap()
        }
    }

    impl Drop for Specs {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    /// `check`'s report for `new` against the snapshots `generate` wrote for `old`.
    fn check_between(test: &str, old: &str, new: &str) -> String {
        let specs = Specs::new(test, old, new);
        specs.generate("old.yaml");
        check(&specs.0.join("new.yaml"), &specs.0.join("snapshots")).unwrap_err()
    }

    /// `check`'s report for the committed spec with `edit` applied.
    fn check_edited(test: &str, edit: impl FnOnce(&str) -> String) -> String {
        let spec = spec();
        check_between(test, &spec, &edit(&spec))
    }

    /// The report ends with `summary` and holds each of `parts`.
    fn expect(report: &str, summary: &str, parts: &[&str]) {
        assert_eq!(report.lines().last(), Some(summary), "{report}");
        for part in parts {
            assert!(report.contains(part), "no {part:?} in:\n{report}");
        }
    }

    #[test]
    fn a_description_only_edit_is_patch() {
        let report = check_edited("docs", |spec| {
            spec.replacen(
                "          description: The name of the segment.\n",
                "          description: The name of the segment, as agents see it.\n",
                1,
            )
        });
        expect(
            &report,
            "semver: patch (0 breaking, 0 additive, 1 docs)",
            &[
                "The API surface listing is unchanged.\n[docs] docs of field `CustomerSegment.name`: documentation only",
            ],
        );
    }

    #[test]
    fn a_new_optional_property_is_minor() {
        let report = check_edited("optional", |spec| {
            let at = spec.find("    CustomerSegment:\n").unwrap();
            let at =
                at + spec[at..].find("      properties:\n").unwrap() + "      properties:\n".len();
            let property = "        visitorLimit:\n          type: integer\n          description: The most visitors the segment holds.\n";
            format!("{}{property}{}", &spec[..at], &spec[at..])
        });
        // The tag stands right after the header of the surface hunk that shows the field.
        expect(
            &report,
            "semver: minor (0 breaking, 1 additive, 0 docs)",
            &[
                " @@\n[additive] field `CustomerSegment.visitor_limit: Option<i64>` added, optional: builders leave it unset",
            ],
        );
        let tag = report.find("[additive]").unwrap();
        assert!(
            tag < report.find("generated__code.snap").unwrap(),
            "{report}"
        );
    }

    #[test]
    fn removing_a_property_is_major() {
        let report = check_edited("removed", |spec| {
            // The first `description` property is CustomerSegment's.
            spec.replacen(
                "        description:\n          type: string\n          description: A description of the segment.\n",
                "",
                1,
            )
        });
        expect(
            &report,
            "semver: major (1 breaking, 0 additive, 0 docs)",
            &[
                " @@\n[breaking] field `CustomerSegment.description` removed: code that reads, sets or builds it no longer compiles\n",
                "\n-  description: Option<String>\n",
            ],
        );
    }

    #[test]
    fn a_new_value_in_a_closed_enum_is_major() {
        let report = check_edited("closed", |spec| {
            spec.replacen(
                "      enum: [Password]\n",
                "      enum: [Password, Sso]\n",
                1,
            )
        });
        expect(
            &report,
            "semver: major (1 breaking, 0 additive, 0 docs)",
            &[
                "[breaking] value `Sso` added to the closed enum `LoginType` (`LoginType::Sso`): closed enums are exhaustive",
            ],
        );
    }

    /// The policy: a `match` on the `Known…` enum behind an open enum has a `_` arm, so a new
    /// known value is additive.
    #[test]
    fn a_new_value_in_an_open_enum_is_minor() {
        let report = check_edited("open", |spec| {
            spec.replacen(
                "        - include\n",
                "        - include\n        - startsWith\n",
                1,
            )
        });
        expect(
            &report,
            "semver: minor (0 breaking, 1 additive, 0 docs)",
            &[
                "[additive] value `startsWith` added to the open enum `ConditionOperator` (`KnownConditionOperator::StartsWith`): under the policy a `match` on `KnownConditionOperator` has a `_` arm, and the value used to arrive as `ConditionOperator::Other`",
            ],
        );
    }

    #[test]
    fn a_new_operation_is_minor() {
        let operation = r##"
  /livechat/customerSegments/{id}/copy:
    post:
      operationId: copy_customer_segment
      tags: [customer-segments]
      summary: Copy a customer segment.
      parameters:
        - name: id
          in: path
          required: true
          schema:
            type: string
            format: uuid
      responses:
        "201":
          description: The copy.
          content:
            application/json:
              schema:
                $ref: "#/components/schemas/CustomerSegment"
        "4XX":
          $ref: "#/components/responses/Error"
        "5XX":
          $ref: "#/components/responses/Error"
components:
"##;
        let report = check_edited("operation", |spec| {
            spec.replacen("\ncomponents:\n", operation, 1)
        });
        expect(
            &report,
            "semver: minor (0 breaking, 1 additive, 0 docs)",
            &[
                "[additive] operation `copy_customer_segment` added (`POST /livechat/customerSegments/{id}/copy`)",
            ],
        );
    }

    /// A new optional query parameter is additive; the same parameter made required is
    /// breaking, although the listing shows the same setter.
    #[test]
    fn a_setter_added_then_made_required() {
        let with = |required: bool| {
            let parameter = format!(
                "      operationId: list_customer_segments\n      parameters:\n        - name: limit\n          in: query\n          required: {required}\n          schema:\n            type: integer\n            format: int32\n"
            );
            spec().replacen("      operationId: list_customer_segments\n", &parameter, 1)
        };
        // The docs of the client method show the new setter in their example.
        expect(
            &check_between("setter-added", &spec(), &with(false)),
            "semver: minor (0 breaking, 1 additive, 1 docs)",
            &["[additive] setter `list_customer_segments().limit(i32)` added, optional"],
        );
        expect(
            &check_between("setter-required", &with(false), &with(true)),
            "semver: major (1 breaking, 0 additive, 0 docs)",
            &[
                "The API surface listing is unchanged.\n[breaking] setter `list_customer_segments().limit()` made required: calls that leave it out now fail at `send`",
            ],
        );
    }

    /// A property made required in a response type: the field loses its `Option`.
    #[test]
    fn a_field_made_required_is_major() {
        let report = check_edited("required", |spec| {
            spec.replacen("      required: [id]\n", "      required: [id, name]\n", 1)
        });
        expect(
            &report,
            "semver: major (1 breaking, 0 additive, 0 docs)",
            &[
                "[breaking] field `CustomerSegment.name` made required (`Option<String>` -> `String`)",
            ],
        );
    }

    /// `generate` prints what the change means, a CHANGELOG draft and the same summary.
    #[test]
    fn generate_prints_the_summary_and_a_changelog_draft() {
        let spec = spec();
        let edited = spec.replacen(
            "      enum: [Password]\n",
            "      enum: [Password, Sso]\n",
            1,
        );
        let specs = Specs::new("generate", &spec, &edited);
        let first = specs.generate("old.yaml");
        let report = specs.generate("new.yaml");
        let again = specs.generate("new.yaml");

        assert!(
            first.ends_with("There were no reviewed snapshots to compare with."),
            "{first}"
        );
        expect(
            &report,
            "semver: major (1 breaking, 0 additive, 0 docs)",
            &[
                "\n[breaking] value `Sso` added to the closed enum `LoginType`",
                "A draft CHANGELOG entry, to paste under `## [Unreleased]`:\n\n### Changed\n- **Breaking:** Value `Sso` added to the closed enum `LoginType` (`LoginType::Sso`).\n",
            ],
        );
        assert!(
            again.ends_with("Nothing changed: no release needed."),
            "{again}"
        );
    }
}
