//! The `comm100` binary: see the library (`src/lib.rs`) for the commands and exit codes.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    comm100_cli::main().await
}
