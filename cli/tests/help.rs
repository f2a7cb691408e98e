//! Every command's `--help`, hand-written and generated, in one reviewed snapshot
//! (`snapshots/help__every_command.snap`): a spec edit that changes a command shows in review.
//! `cargo xtask check` runs this test, `cargo xtask generate` accepts its snapshot. And no
//! command takes a secret as a value on the command line.

/// Each command with its path from the root, depth first, in clap's order.
fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    out.push((path.to_owned(), command.clone()));
    // clap's own `help` subcommand repeats the others' help.
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        walk(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

fn commands() -> Vec<(String, clap::Command)> {
    let mut root = comm100_cli::command();
    // Propagates the global flags and the usage lines into the subcommands, as parsing does.
    root.build();
    let mut out = Vec::new();
    walk(&root, "comm100", &mut out);
    out
}

#[test]
fn every_command() {
    let mut text = String::new();
    for (path, mut command) in commands() {
        text.push_str(&format!(
            "==== {path} --help\n{}\n",
            command.render_long_help().to_string().trim_end()
        ));
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(true);
    settings.bind(|| insta::assert_snapshot!("every_command", text));
}

/// A secret given as a value on the command line stays in the shell's history and in `ps`: no
/// argument whose name says password, secret or token takes one. `--password-stdin` is a
/// switch: the password comes from stdin.
#[test]
fn no_command_takes_a_secret_as_a_value() {
    let mut checked = 0;
    for (path, command) in commands() {
        for arg in command.get_arguments() {
            checked += 1;
            let name = arg.get_id().as_str().to_lowercase();
            let secret = ["password", "secret", "token"]
                .iter()
                .any(|word| name.contains(word) && !name.contains("template"));
            assert!(
                !(secret && arg.get_action().takes_values()),
                "`{path}` takes `--{name}` as a value"
            );
        }
    }
    assert!(
        checked > 20,
        "the walk saw every command's arguments ({checked})"
    );
}
