//! The sandbox's README ("Testing your code") shows `tests/testing_with_the_sandbox.rs` from its
//! first `use` line, in a block the sandbox cannot compile (it does not depend on the client).
//! This keeps the two the same, so that the example users read is the one CI runs.

#[test]
fn the_sandbox_readme_shows_the_user_test_as_it_runs() {
    let readme = include_str!("../sandbox/README.md");
    let test = include_str!("testing_with_the_sandbox.rs");
    let from_use = &test[test.find("\nuse ").expect("a use line") + 1..];
    let block = format!("```rust,ignore\n{from_use}```\n");
    assert!(
        readme.contains(&block),
        "sandbox/README.md does not show tests/testing_with_the_sandbox.rs as it is; paste the \
         file from its first `use` line into the README's `rust,ignore` block"
    );
}
