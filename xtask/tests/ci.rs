//! End-to-end tests of `xtask ci` on a one-crate temporary workspace, through
//! a cargo wrapper that logs each invocation (with `RUSTDOCFLAGS`) and then
//! runs the real cargo.

// The fixture helpers below are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A unique temporary directory holding `ws/` (the workspace), `cargo` (the
/// wrapper), `cargo.log` and `target/`; removed on drop.
struct Fixture {
    /// The base directory.
    base: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Counter making fixture directories unique within the test process.
static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Fixture {
    /// A workspace with one well-formatted, documented, tested crate.
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let base = std::env::temp_dir().join(format!(
            "xtask-ci-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let fixture = Self { base };
        fixture.write(
            "ws/Cargo.toml",
            "[workspace]\nresolver = \"3\"\nmembers = [\"solo\"]\n",
        );
        fixture.write(
            "ws/solo/Cargo.toml",
            "[package]\nname = \"xtask-ci-fixture\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n",
        );
        fixture.write(
            "ws/solo/src/lib.rs",
            "//! A fixture.\n\n/// Adds one.\npub fn inc(x: u32) -> u32 {\n    x + 1\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn inc() {\n        assert_eq!(super::inc(1), 2);\n    }\n}\n",
        );
        let real = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
        fixture.write(
            "cargo",
            &format!(
                "#!/bin/sh\necho \"RUSTDOCFLAGS=${{RUSTDOCFLAGS:-}} $*\" >> '{}'\nexec '{}' \"$@\"\n",
                fixture.base.join("cargo.log").display(),
                real.display()
            ),
        );
        let status = Command::new("chmod")
            .arg("+x")
            .arg(fixture.base.join("cargo"))
            .status()
            .unwrap();
        assert!(status.success());
        fixture
    }

    /// Writes a file under the base directory.
    fn write(&self, path: &str, text: &str) {
        let path = self.base.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Runs `xtask ci` on the workspace.
    fn ci(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["ci", "--root"])
            .arg(self.base.join("ws"))
            .env("CARGO", self.base.join("cargo"))
            .env("CARGO_TARGET_DIR", self.base.join("target"))
            .env_remove("RUSTDOCFLAGS")
            .output()
            .unwrap()
    }

    /// The logged cargo invocations.
    fn log(&self) -> Vec<String> {
        fs::read_to_string(self.base.join("cargo.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The process's output, for assertion messages.
fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn ci_runs_the_four_steps_in_order() {
    let fx = Fixture::new();

    let out = fx.ci();

    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        fx.log(),
        vec![
            "RUSTDOCFLAGS= fmt --all -- --check",
            "RUSTDOCFLAGS= clippy --workspace --all-targets -- -D warnings",
            "RUSTDOCFLAGS= test --workspace",
            "RUSTDOCFLAGS=-Dwarnings doc --workspace --no-deps",
        ]
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in ["1/4] fmt", "2/4] clippy", "3/4] test", "4/4] doc"] {
        assert!(stdout.contains(name), "{name}\n{}", show(&out));
    }
}

#[test]
fn ci_stops_at_the_first_failing_step() {
    let fx = Fixture::new();
    fx.write(
        "ws/solo/src/lib.rs",
        "//! Badly formatted.\n\n/// Adds one.\npub fn inc(x:u32)->u32{x+1}\n",
    );

    let out = fx.ci();

    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(fx.log(), vec!["RUSTDOCFLAGS= fmt --all -- --check"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ci step `fmt` failed"),
        "{}",
        show(&out)
    );
}
