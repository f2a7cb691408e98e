//! A reader of callgrind's output files (format version 1), enough for costs per function and
//! per source file: self costs, the inclusive costs of calls, and the totals.
//!
//! `callgrind_annotate` prints the same figures, but as text meant for people, rounded to the
//! functions it chooses; reading the file itself gives every function and exact numbers, which
//! two runs can be subtracted from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `Some(message)` when valgrind is not on PATH: the tasks that need it then skip, and succeed.
pub fn skip_without_valgrind(task: &str) -> Option<String> {
    let found = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (!found).then(|| {
        format!(
            "{task}: skipped: this task needs valgrind (its callgrind tool) on PATH; \
             on Debian or Ubuntu: apt-get install valgrind"
        )
    })
}

/// Builds the bench `name` of `comm100` in release with line tables, so that callgrind can name
/// the source file of inlined code (codegen is unchanged), in a target directory of its own
/// (`<target>/overhead-ir`), so that it does not rebuild what `cargo bench` built. Returns the
/// executable and the directory for callgrind's files.
pub fn build_bench(root: &Path, name: &str) -> Result<(PathBuf, PathBuf), String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("overhead-ir");
    let bench = crate::artifact::build(
        root,
        &["--release", "-p", "comm100", "--bench", name],
        &[
            ("CARGO_TARGET_DIR", target.as_path()),
            ("CARGO_PROFILE_RELEASE_DEBUG", Path::new("line-tables-only")),
        ],
        name,
    )?;
    let out_dir = target.join("callgrind");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    Ok((bench, out_dir))
}

/// The file callgrind writes for thread `n` (1 is the main thread) when given `base` as its
/// output file with `--separate-threads=yes`.
pub fn thread_file(base: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}-{n:02}", base.display()))
}

/// Runs `executable` under `valgrind --tool=callgrind --separate-threads=yes` with the
/// variable `env` set, writing `base-01`, `base-02`… (old files of those names removed first);
/// returns what it printed.
pub fn run(executable: &Path, base: &Path, env: (&str, &str)) -> Result<String, String> {
    for n in 1.. {
        if std::fs::remove_file(thread_file(base, n)).is_err() {
            break;
        }
    }
    let output = Command::new("valgrind")
        .args(["--tool=callgrind", "--separate-threads=yes"])
        .arg(format!("--callgrind-out-file={}", base.display()))
        .arg(executable)
        .env(env.0, env.1)
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "valgrind {} with {}={} failed: {}\n{}",
            executable.display(),
            env.0,
            env.1,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The costs of one callgrind output file, in its first event (`Ir` by default).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Profile {
    /// The file's `totals:` (or `summary:`) line: everything the thread executed.
    pub total: u64,
    /// Instructions executed in each function itself, by demangled name.
    pub self_cost: HashMap<String, u64>,
    /// Instructions executed in each function and in everything it called (calls of a function
    /// to itself are not counted twice).
    pub inclusive: HashMap<String, u64>,
    /// Instructions executed in each function that another one calls, by caller, to callee.
    pub calls: HashMap<(String, String), u64>,
    /// How many times each function called another, by caller, to callee.
    pub call_counts: HashMap<(String, String), u64>,
    /// Instructions by the source file they were compiled from, inlined code under its own
    /// file: how inlined work is still found.
    pub self_by_file: HashMap<String, u64>,
}

/// Reads a callgrind output file.
pub fn read(path: &Path) -> Result<Profile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Names may be compressed: `(7) name` defines number 7, a later `(7)` refers to it.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    fn resolve(&mut self, value: &str) -> String {
        let value = value.trim();
        let Some(rest) = value.strip_prefix('(') else {
            return value.to_string();
        };
        let Some((id, name)) = rest.split_once(')') else {
            return value.to_string();
        };
        let name = name.trim();
        if name.is_empty() {
            self.0.get(id).cloned().unwrap_or_default()
        } else {
            self.0.insert(id.to_string(), name.to_string());
            name.to_string()
        }
    }
}

/// Parses the text of a callgrind output file.
pub fn parse(text: &str) -> Result<Profile, String> {
    let mut profile = Profile::default();
    // Files and functions have separate name tables; `fl`, `fi`, `fe`, `cfi`, `cfl` share one.
    let (mut files, mut functions) = (Names::default(), Names::default());
    let mut function = String::new();
    let mut function_file = String::new();
    let mut file = String::new();
    let mut callee: Option<String> = None;
    let mut in_call = false;
    let mut totals = None;
    for line in text.lines() {
        let Some(first) = line.chars().next() else {
            continue;
        };
        if first.is_ascii_digit() || matches!(first, '+' | '-' | '*') {
            // A cost line: a position, then the events; the first event is the one wanted.
            let cost: u64 = line
                .split_whitespace()
                .nth(1)
                .map(|c| c.parse().map_err(|e| format!("cost `{line}`: {e}")))
                .transpose()?
                .unwrap_or(0);
            if in_call {
                in_call = false;
                let callee = callee.take().unwrap_or_default();
                if callee != function {
                    *profile.inclusive.entry(function.clone()).or_default() += cost;
                }
                *profile.calls.entry((function.clone(), callee)).or_default() += cost;
            } else {
                *profile.self_cost.entry(function.clone()).or_default() += cost;
                *profile.inclusive.entry(function.clone()).or_default() += cost;
                *profile.self_by_file.entry(file.clone()).or_default() += cost;
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|(k, _)| !k.contains(' ')) else {
            if let Some(value) = line
                .strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
            {
                let total = value.split_whitespace().next().unwrap_or("0");
                totals = Some(total.parse().map_err(|e| format!("totals `{line}`: {e}"))?);
            }
            continue;
        };
        match key {
            "fl" => {
                function_file = files.resolve(value);
                file = function_file.clone();
            }
            "fi" | "fe" => file = files.resolve(value),
            "fn" => {
                function = functions.resolve(value);
                file = function_file.clone();
            }
            "cfi" | "cfl" => {
                files.resolve(value);
            }
            "cfn" => callee = Some(functions.resolve(value)),
            "calls" => {
                in_call = true;
                let count: u64 = value
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("calls `{line}`"))?;
                let key = (function.clone(), callee.clone().unwrap_or_default());
                *profile.call_counts.entry(key).or_default() += count;
            }
            // `ob`, `cob`, `jump`, `jcnd` and the like: not needed here.
            _ => {}
        }
    }
    profile.total = totals.ok_or("no totals: line")?;
    Ok(profile)
}

/// `(long − short) / calls`, per name: the cost of one more call, setup cancelled.
pub fn per_call(
    long: &HashMap<String, u64>,
    short: &HashMap<String, u64>,
    calls: u64,
) -> HashMap<String, f64> {
    long.iter()
        .map(|(name, &l)| {
            let s = short.get(name).copied().unwrap_or(0);
            (name.clone(), (l as f64 - s as f64) / calls as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 42
cmd: bench
part: 1

desc: I1 cache:
positions: line
events: Ir
summary: 1000

ob=(1) /bin/bench
fl=(1) src/main.rs
fn=(1) main
10 5
cfl=(2) src/hooks.rs
cfn=(2) comm100::hooks::execute
calls=2 20
+1 300
fi=(3) src/body.rs
+2 7
fe=(1)
* 1
fl=(2)
fn=(2)
20 250
cfn=(2)
calls=1 20
* 40
fi=(3)
21 50
totals: 1000
";

    #[test]
    fn self_inclusive_and_file_costs() {
        let p = parse(SAMPLE).unwrap();
        assert_eq!(p.total, 1000);
        assert_eq!(p.self_cost["main"], 13);
        assert_eq!(p.inclusive["main"], 313);
        // The recursive call is not counted twice.
        assert_eq!(p.self_cost["comm100::hooks::execute"], 300);
        assert_eq!(p.inclusive["comm100::hooks::execute"], 300);
        let edge = ("main".to_string(), "comm100::hooks::execute".to_string());
        assert_eq!(p.calls[&edge], 300);
        assert_eq!(p.call_counts[&edge], 2);
        assert_eq!(p.self_by_file["src/main.rs"], 6);
        assert_eq!(p.self_by_file["src/body.rs"], 57);
        assert_eq!(p.self_by_file["src/hooks.rs"], 250);
    }

    #[test]
    fn per_call_cancels_the_setup() {
        let long = HashMap::from([("f".to_string(), 1_100u64), ("g".to_string(), 50)]);
        let short = HashMap::from([("f".to_string(), 100u64), ("g".to_string(), 50)]);
        let d = per_call(&long, &short, 10);
        assert_eq!(d["f"], 100.0);
        assert_eq!(d["g"], 0.0);
    }
}
