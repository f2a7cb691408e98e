//! Compiles `openapi/comm100.yaml` into the client with progenitor. The settings live in
//! `codegen/mod.rs`, shared with the xtask and the snapshot test.

#[path = "codegen/mod.rs"]
mod codegen;

use std::path::PathBuf;

fn main() {
    // Exactly the inputs of generation: a no-op build must not regenerate.
    println!("cargo:rerun-if-changed={}", codegen::SPEC_PATH);
    println!("cargo:rerun-if-changed=codegen/mod.rs");
    println!("cargo:rerun-if-changed=codegen/surface.rs");
    println!("cargo:rerun-if-changed=codegen/types.rs");
    println!("cargo:rerun-if-changed=build.rs");

    let text = match std::fs::read_to_string(codegen::SPEC_PATH) {
        Ok(text) => text,
        Err(e) => fail(&format!("cannot read {}: {e}", codegen::SPEC_PATH)),
    };
    let code = match codegen::generate(&text) {
        Ok(code) => code,
        Err(e) => fail(&e.to_string()),
    };
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("codegen.rs");
    if let Err(e) = std::fs::write(&out, code) {
        fail(&format!("cannot write {}: {e}", out.display()));
    }
}

/// Fails the build with the message as the error, one `cargo::error` line per line of it.
fn fail(message: &str) -> ! {
    for line in message.lines() {
        println!("cargo::error={line}");
    }
    std::process::exit(1);
}
