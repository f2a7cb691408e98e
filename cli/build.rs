//! Generates the per-operation commands from `openapi/comm100.yaml` with progenitor's
//! `Generator::cli`. The settings live in `codegen/`, shared with the client's build, the xtask
//! and the snapshot tests.

#[path = "../codegen/mod.rs"]
mod codegen;

use std::path::PathBuf;

fn main() {
    let root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("..");
    // Exactly the inputs of generation: a no-op build must not regenerate.
    for input in [
        codegen::SPEC_PATH,
        "codegen/mod.rs",
        "codegen/cli.rs",
        "codegen/surface.rs",
        "codegen/types.rs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let spec = root.join(codegen::SPEC_PATH);
    let text = match std::fs::read_to_string(&spec) {
        Ok(text) => text,
        Err(e) => fail(&format!("cannot read {}: {e}", spec.display())),
    };
    let code = match codegen::cli::generate(&text) {
        Ok(code) => code,
        Err(e) => fail(&e.to_string()),
    };
    // The reviewed snapshot's contents beside the code, for `tests/generated.rs` to compare
    // without compiling the generator into a test.
    let reviewed = root
        .join(codegen::SNAPSHOT_DIR)
        .join("generated__cli_code.snap");
    println!("cargo:rerun-if-changed={}", reviewed.display());
    let reviewed = std::fs::read_to_string(&reviewed).unwrap_or_default();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (name, text) in [
        ("cli.rs", code.as_str()),
        ("cli_reviewed.rs", codegen::snapshot_contents(&reviewed)),
    ] {
        if let Err(e) = std::fs::write(out.join(name), text) {
            fail(&format!("cannot write {}: {e}", out.join(name).display()));
        }
    }
}

/// Fails the build with the message as the error, one `cargo::error` line per line of it.
fn fail(message: &str) -> ! {
    for line in message.lines() {
        println!("cargo::error={line}");
    }
    std::process::exit(1);
}
