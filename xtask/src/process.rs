//! Errors, exit codes and running external commands.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Why an xtask command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// The command line was wrong (exit code 2).
    Usage(String),
    /// A step failed (exit code 1).
    Failed(String),
}

impl Error {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(msg) | Self::Failed(msg) => f.write_str(msg),
        }
    }
}

/// The cargo to run: `$CARGO` (set by `cargo run`) or `cargo` from `PATH`.
pub(crate) fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// A shell-like rendering of a command, for messages.
pub(crate) fn render(command: &Command) -> String {
    let envs = command.get_envs().filter_map(|(key, value)| {
        value.map(|v| format!("{}={}", key.to_string_lossy(), v.to_string_lossy()))
    });
    let program = Path::new(command.get_program())
        .file_name()
        .map_or_else(
            || command.get_program().to_string_lossy(),
            |n| n.to_string_lossy(),
        )
        .into_owned();
    let args = command.get_args().map(|a| a.to_string_lossy().into_owned());
    envs.chain(std::iter::once(program))
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` with inherited stdio; fails unless it exits successfully.
pub(crate) fn run(command: &mut Command) -> Result<(), Error> {
    let shown = render(command);
    let status = command
        .status()
        .map_err(|e| Error::Failed(format!("could not start `{shown}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Failed(format!("`{shown}` failed ({status})")))
    }
}

/// Runs `command` and returns its stdout; on failure the error carries its stderr.
pub(crate) fn output(command: &mut Command) -> Result<String, Error> {
    let shown = render(command);
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Failed(format!("could not start `{shown}`: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Failed(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_env_program_and_args() {
        let mut command = Command::new("/usr/bin/cargo");
        command
            .args(["doc", "--no-deps"])
            .env("RUSTDOCFLAGS", "-Dwarnings");
        assert_eq!(
            render(&command),
            "RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps"
        );
    }

    #[test]
    fn failures_name_the_command_and_exit_codes_differ() {
        let err = run(Command::new("false").arg("x")).unwrap_err();
        assert!(err.to_string().contains("`false x` failed"), "{err}");
        assert_eq!(err.exit_code(), 1);
        assert_eq!(Error::Usage(String::new()).exit_code(), 2);
        let err = output(&mut Command::new("/nonexistent/program")).unwrap_err();
        assert!(err.to_string().contains("could not start"), "{err}");
        assert_eq!(output(Command::new("echo").arg("hi")).unwrap(), "hi\n");
    }
}
