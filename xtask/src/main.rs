//! Maintainer tasks: `cargo xtask generate`, `cargo xtask check`.
//!
//! `generate` rewrites the reviewed snapshots from the spec; `check` fails, with a diff, when
//! they have drifted from it. Both use the generation settings in `codegen/mod.rs`, the same
//! file `build.rs` compiles with.

#[path = "../../codegen/mod.rs"]
mod codegen;
mod conformance;
mod msrv;
mod review;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <generate | check | conformance | msrv>

  generate   regenerate from openapi/comm100.yaml and update the reviewed snapshots
  check      exit non-zero, with a diff, when the snapshots are not up to date
  conformance  run schemathesis against the sandbox with openapi/comm100.yaml
  msrv       check that rust-version is at least every dependency's rust-version";

fn main() -> ExitCode {
    let root = workspace_root();
    let task = std::env::args().nth(1);
    let result = match task.as_deref() {
        Some("generate") => review::generate(
            &root.join(codegen::SPEC_PATH),
            &root.join(codegen::SNAPSHOT_DIR),
        ),
        Some("check") => review::check(
            &root.join(codegen::SPEC_PATH),
            &root.join(codegen::SNAPSHOT_DIR),
        ),
        Some("conformance") => conformance::run(&root),
        Some("msrv") => msrv::run(&root),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
