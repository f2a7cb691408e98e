//! The crate's layout, as its README lists it under "How it is built": one row per file, top
//! down, each file using only the modules below it (so there is no circle), none over 500
//! lines.

use std::collections::BTreeSet;

/// The longest a source file may be.
const MAX_LINES: usize = 500;

/// The rows of the first table under the README's heading `## {heading}`, header and rule left
/// out.
pub(crate) fn readme_rows(heading: &str) -> Vec<&'static str> {
    let readme = include_str!("../README.md");
    let section = readme
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("a section {heading:?}"));
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .collect()
}

/// The files the README lists, top down, as module names (`server` for `server.rs`).
fn listed() -> Vec<String> {
    readme_rows("How it is built")
        .into_iter()
        .map(|row| {
            let file = row.split('`').nth(1).expect("a file in a code span");
            file.strip_suffix(".rs").expect("a .rs file").to_owned()
        })
        .collect()
}

/// The source files, as module names, with their text.
fn files() -> Vec<(String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&src)
        .expect("the src folder")
        .map(|entry| entry.expect("a file").path())
        .map(|path| {
            assert_eq!(
                path.extension().and_then(|e| e.to_str()),
                Some("rs"),
                "{path:?}"
            );
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).expect("a text file"))
        })
        .collect();
    files.sort();
    files
}

/// The first segment of each path a text names after `crate::`, braces included
/// (`crate::{a, b::C}` names `a` and `b`).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let end = group
                .find(|c| {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => return true,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    false
                })
                .unwrap_or(group.len());
            let mut depth = 0;
            let mut item_start = 0;
            for (i, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(ident(&group[item_start..i]));
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            names.insert(ident(&group[item_start..end]));
        } else {
            names.insert(ident(rest));
        }
    }
    names.remove("");
    names
}

#[test]
fn the_readme_lists_every_file_once() {
    let listed = listed();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a file listed twice: {listed:?}"
    );
    let files: BTreeSet<String> = files().into_iter().map(|(name, _)| name).collect();
    let listed: BTreeSet<String> = listed.into_iter().collect();
    assert_eq!(listed, files, "the README's list and the files in src/");
}

#[test]
fn no_file_is_over_500_lines() {
    for (name, text) in files() {
        let lines = text.lines().count();
        assert!(lines <= MAX_LINES, "{name}.rs has {lines} lines");
    }
}

#[test]
fn each_module_uses_only_the_modules_below_it() {
    let listed = listed();
    let modules: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    for (name, text) in files() {
        let position = listed.iter().position(|m| *m == name).expect("listed");
        let below: BTreeSet<&str> = listed[position + 1..].iter().map(String::as_str).collect();
        for used in crate_paths(&text) {
            if modules.contains(used.as_str()) && used != name {
                assert!(
                    below.contains(used.as_str()),
                    "{name}.rs uses crate::{used}, which the README lists above it"
                );
            }
        }
    }
}

#[test]
fn crate_paths_reads_braces() {
    let text = "use crate::a::B;\nuse crate::{c, d::{E, F}, g::H};\n/// [`crate::i`]";
    let names: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(names, ["a", "c", "d", "g", "i"]);
}
