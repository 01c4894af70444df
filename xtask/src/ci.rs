//! `cargo xtask ci`: the CI steps, exactly as `.ci/run` runs them.

use std::path::Path;
use std::process::Command;

use crate::process::{self, Error};

/// One CI step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// A short name for messages.
    pub(crate) name: &'static str,
    /// The cargo arguments.
    pub(crate) args: &'static [&'static str],
    /// Extra environment variables.
    pub(crate) env: &'static [(&'static str, &'static str)],
}

/// The CI steps, in order.
pub(crate) const STEPS: [Step; 4] = [
    Step {
        name: "fmt",
        args: &["fmt", "--all", "--", "--check"],
        env: &[],
    },
    Step {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
    },
    Step {
        name: "test",
        args: &["test", "--workspace"],
        env: &[],
    },
    Step {
        name: "doc",
        args: &["doc", "--workspace", "--no-deps"],
        env: &[("RUSTDOCFLAGS", "-Dwarnings")],
    },
];

impl Step {
    /// The command that runs this step in `root`.
    pub(crate) fn command(&self, root: &Path) -> Command {
        let mut command = Command::new(process::cargo());
        command
            .current_dir(root)
            .args(self.args)
            .envs(self.env.iter().copied());
        command
    }
}

/// Runs every step in `root`, stopping at the first failure.
pub(crate) fn run(root: &Path) -> Result<(), Error> {
    let total = STEPS.len();
    for (index, step) in STEPS.iter().enumerate() {
        let mut command = step.command(root);
        println!(
            "==> ci [{}/{total}] {}: {}",
            index + 1,
            step.name,
            process::render(&command)
        );
        process::run(&mut command)
            .map_err(|e| Error::Failed(format!("ci step `{}` failed: {e}", step.name)))?;
    }
    println!("==> ci: all {total} steps passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workspace root (this crate lives in `xtask/`).
    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or_else(|| Path::new(".."))
    }

    #[test]
    fn steps_are_the_documented_commands() {
        let rendered: Vec<String> = STEPS
            .iter()
            .map(|s| process::render(&s.command(root())))
            .collect();
        assert_eq!(
            rendered,
            vec![
                "cargo fmt --all -- --check",
                "cargo clippy --workspace --all-targets -- -D warnings",
                "cargo test --workspace",
                "RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps",
            ]
        );
    }

    /// `.ci/run` runs the same steps directly (so a broken xtask cannot hide
    /// anything): keep the two in sync.
    #[test]
    fn ci_script_runs_the_same_steps() {
        let script = std::fs::read_to_string(root().join(".ci/run")).unwrap();
        for step in &STEPS {
            let mut line = String::new();
            for (key, value) in step.env {
                line.push_str(&format!("{key}={value} "));
            }
            line.push_str("cargo ");
            line.push_str(&step.args.join(" "));
            assert!(
                script.lines().any(|l| l.trim() == line),
                ".ci/run has no line `{line}`"
            );
        }
    }
}
