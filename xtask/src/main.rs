//! Maintainer tasks: `cargo xtask generate`, `cargo xtask check`, and the others in `USAGE`.
//!
//! `generate` rewrites the reviewed snapshots from the spec; `check` fails, with a diff, when
//! they have drifted from it. Both use the generation settings in `codegen/mod.rs`, the same
//! file `build.rs` compiles with.

mod artifact;
mod callgrind;
#[path = "../../codegen/mod.rs"]
mod codegen;
mod conformance;
mod msrv;
mod overhead_ir;
mod review;
mod storm_ir;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo xtask <generate | check | conformance | msrv | overhead-ir | storm-ir>

  generate   regenerate from openapi/comm100.yaml and update the reviewed snapshots (the
             client's, the command line's code and every command's --help)
  check      exit non-zero, with a diff, when the snapshots are not up to date
  conformance  run schemathesis against the sandbox with openapi/comm100.yaml
  msrv       check that rust-version is at least every dependency's rust-version
  overhead-ir [--attribute] [--reuse] [operation...]
             instructions per call of the SDK and of raw reqwest under callgrind (needs
             valgrind); --attribute also prints where the SDK's extra instructions go;
             --reuse reads the last run's callgrind files instead of running again
  storm-ir [--calls N]
             where a token-refresh storm's instructions go, client or sandbox (needs valgrind)";

fn main() -> ExitCode {
    let root = workspace_root();
    let task = std::env::args().nth(1);
    let result = match task.as_deref() {
        // The command line's --help snapshot after the code: its test compiles the code.
        Some("generate") => review::generate(
            &root.join(codegen::SPEC_PATH),
            &root.join(codegen::SNAPSHOT_DIR),
        )
        .and_then(|code| Ok(format!("{code}\n{}", review::cli_help(&root, true)?))),
        Some("check") => both(
            review::check(
                &root.join(codegen::SPEC_PATH),
                &root.join(codegen::SNAPSHOT_DIR),
            ),
            || review::cli_help(&root, false),
        ),
        Some("conformance") => conformance::run(&root),
        Some("msrv") => msrv::run(&root),
        Some("overhead-ir") => {
            overhead_ir::run(&root, &std::env::args().skip(2).collect::<Vec<_>>())
        }
        Some("storm-ir") => storm_ir::run(&root, &std::env::args().skip(2).collect::<Vec<_>>()),
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

/// Both results, the second run even when the first failed, so that one `check` shows every
/// drift; an error if either failed.
fn both(
    first: Result<String, String>,
    second: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    match (first, second()) {
        (Ok(a), Ok(b)) => Ok(format!("{a}\n{b}")),
        (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
