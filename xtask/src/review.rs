//! The snapshot review workflow: regenerate, compare, and show a reviewer what changed.

use std::fmt::Write;
use std::path::Path;

use similar::TextDiff;

use crate::codegen;

/// Regenerates the snapshots from the spec and writes them.
pub fn generate(spec: &Path, snapshots: &Path) -> Result<String, String> {
    let outputs = outputs(spec)?;
    std::fs::create_dir_all(snapshots)
        .map_err(|e| format!("cannot create {}: {e}", snapshots.display()))?;
    let mut report = String::new();
    for (name, fresh) in &outputs {
        let path = snapshot_path(snapshots, name);
        let old = std::fs::read_to_string(&path).ok();
        let new = codegen::snapshot_file(name, fresh);
        let state = match old.as_deref().map(codegen::snapshot_contents) {
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
    Ok(report)
}

/// Compares the committed snapshots with what the spec generates now. On drift, the error is a
/// unified diff (surface first, then code) and the command that accepts the change.
pub fn check(spec: &Path, snapshots: &Path) -> Result<String, String> {
    let outputs = outputs(spec)?;
    let mut diffs = String::new();
    for (name, fresh) in &outputs {
        let path = snapshot_path(snapshots, name);
        let reviewed = match std::fs::read_to_string(&path) {
            Ok(file) => codegen::snapshot_contents(&file).to_string(),
            Err(_) => String::new(),
        };
        if reviewed.trim_end() != fresh.trim_end() {
            let old = format!("{}\n", reviewed.trim_end());
            let new = format!("{}\n", fresh.trim_end());
            let diff = TextDiff::from_lines(&old, &new);
            let label = path.display().to_string();
            write!(
                diffs,
                "{}",
                diff.unified_diff().context_radius(3).header(
                    &format!("{label} (reviewed)"),
                    &format!("{label} (generated now)")
                )
            )
            .unwrap();
        }
    }
    if diffs.is_empty() {
        Ok(format!(
            "up to date: the reviewed snapshots ({}) match {}",
            codegen::SNAPSHOTS.join(", "),
            spec.display()
        ))
    } else {
        Err(format!(
            "the reviewed snapshots are out of date with {}:\n\n{diffs}\nIf this change is intended, accept it with:\n\n    cargo xtask generate\n\nthen review and commit tests/snapshots/ with the spec.",
            spec.display()
        ))
    }
}

fn outputs(spec: &Path) -> Result<Vec<(&'static str, String)>, String> {
    let (surface, code) = codegen::reviewed_outputs(spec).map_err(|e| e.to_string())?;
    // The order of codegen::SNAPSHOTS: the surface is read first.
    Ok(vec![
        (codegen::SNAPSHOTS[0], surface),
        (codegen::SNAPSHOTS[1], code),
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
}
