//! The reviewed snapshots of the generated client (`tests/snapshots/generated__*.snap`) must
//! match what this build compiled. `cargo xtask check` shows the diff; this test makes plain
//! `cargo test` fail too, so that a stale snapshot cannot slip through.

#[path = "../codegen/mod.rs"]
mod codegen;

/// The code compiled into this build, as `build.rs` wrote it.
const COMPILED: &str = include_str!(concat!(env!("OUT_DIR"), "/codegen.rs"));

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(true);
    settings.set_omit_expression(false);
    settings
}

#[test]
fn code() {
    settings().bind(|| insta::assert_snapshot!("code", COMPILED.trim_end()));
}

#[test]
fn api_surface() {
    let spec = codegen::parse(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/comm100.yaml"))
            .unwrap(),
    )
    .unwrap();
    let surface = codegen::surface::render(&spec, COMPILED).unwrap();
    settings().bind(|| insta::assert_snapshot!("api_surface", surface.trim_end()));
}
