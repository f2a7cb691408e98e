//! The reviewed snapshot of the generated commands (`tests/snapshots/generated__cli_code.snap`,
//! written by `cargo xtask generate`) must match what this build compiled, as the client's
//! snapshots must (`tests/generated.rs`), so that plain `cargo test` fails on drift too.

/// The code compiled into this build, as `build.rs` wrote it.
const COMPILED: &str = include_str!(concat!(env!("OUT_DIR"), "/cli.rs"));
/// The reviewed snapshot's contents, as `build.rs` read them.
const REVIEWED: &str = include_str!(concat!(env!("OUT_DIR"), "/cli_reviewed.rs"));

#[test]
fn cli_code_matches_the_reviewed_snapshot() {
    assert!(
        REVIEWED.trim_end() == COMPILED.trim_end(),
        "tests/snapshots/generated__cli_code.snap is not what this build compiled: `cargo xtask check` shows the diff, `cargo xtask generate` accepts it"
    );
}
