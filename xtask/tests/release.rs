//! End-to-end tests of `xtask release` against a tiny temporary workspace:
//! two crates (`beta` depends on `alpha` through `[workspace.dependencies]`
//! by path and version), a CHANGELOG.md, and a git repository.

// The fixture helpers below are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Root manifest of the fixture workspace.
const ROOT_MANIFEST: &str = r#"[workspace]
resolver = "3"
members = ["crates/*"]

[workspace.package]
version = "0.1.0"
edition = "2021"
license = "MIT OR Apache-2.0"

[workspace.dependencies]
# Intra-workspace crates.
xtask-fixture-alpha = { path = "crates/alpha", version = "0.1.0" }
"#;

/// Manifest of `alpha`, which inherits the workspace version.
const ALPHA_MANIFEST: &str = r#"[package]
name = "xtask-fixture-alpha"
description = "Fixture crate for the xtask release tests."
version.workspace = true
edition.workspace = true
license.workspace = true

[dependencies]
"#;

/// Manifest of `beta`, which sets its own literal version.
const BETA_MANIFEST: &str = r#"[package]
name = "xtask-fixture-beta"
description = "Fixture crate for the xtask release tests."
version = "0.1.0"
edition.workspace = true
license.workspace = true

[dependencies]
xtask-fixture-alpha.workspace = true
"#;

/// The changelog: it has sections for 0.2.0 and 0.1.0 only.
const CHANGELOG: &str = "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2026-12-01\n\n- beta says hello louder\n\n## [0.1.0] - 2026-11-28\n\n- first release\n";

/// A unique temporary directory, removed on drop: `ws/` holds the workspace,
/// `tools/` a logging cargo wrapper, `target/` the build directory.
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

/// Runs a command, panicking with its output if it fails.
fn check(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The cargo that runs these tests.
fn real_cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

impl Fixture {
    /// Creates the workspace and commits it (with a `Cargo.lock` if `with_lock`).
    fn new(with_lock: bool) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let base = std::env::temp_dir().join(format!(
            "xtask-release-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let fixture = Self { base };
        for (path, text) in [
            ("Cargo.toml", ROOT_MANIFEST),
            ("crates/alpha/Cargo.toml", ALPHA_MANIFEST),
            (
                "crates/alpha/src/lib.rs",
                "//! Alpha.\n\n/// A greeting.\npub fn hello() -> &'static str {\n    \"hello\"\n}\n",
            ),
            ("crates/beta/Cargo.toml", BETA_MANIFEST),
            (
                "crates/beta/src/lib.rs",
                "//! Beta.\n\n/// A louder greeting.\npub fn shout() -> String {\n    xtask_fixture_alpha::hello().to_uppercase()\n}\n",
            ),
            ("CHANGELOG.md", CHANGELOG),
            (".gitignore", "/target\n"),
        ] {
            fixture.write(path, text);
        }
        fs::create_dir_all(fixture.base.join("tools")).unwrap();
        let wrapper = fixture.base.join("tools/cargo");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nif [ \"$1\" = publish ]; then exit 0; fi\nexec '{}' \"$@\"\n",
                fixture.log_path().display(),
                real_cargo().display()
            ),
        )
        .unwrap();
        check(Command::new("chmod").arg("+x").arg(&wrapper));

        check(fixture.git().args(["init", "-q"]));
        for (key, value) in [
            ("user.name", "Xtask Test"),
            ("user.email", "xtask-test@example.invalid"),
            ("commit.gpgsign", "false"),
            ("tag.gpgsign", "false"),
        ] {
            check(fixture.git().args(["config", key, value]));
        }
        if with_lock {
            fixture.generate_lockfile();
        }
        fixture.commit("Initial commit");
        fixture
    }

    /// Writes `Cargo.lock` afresh (the fixture has no third-party dependencies).
    fn generate_lockfile(&self) {
        check(
            Command::new(real_cargo())
                .current_dir(self.ws())
                .args(["generate-lockfile", "--offline"])
                .env("CARGO_TARGET_DIR", self.target()),
        );
    }

    /// The workspace directory.
    fn ws(&self) -> PathBuf {
        self.base.join("ws")
    }

    /// The build directory.
    fn target(&self) -> PathBuf {
        self.base.join("target")
    }

    /// The file where the cargo wrapper logs its arguments.
    fn log_path(&self) -> PathBuf {
        self.base.join("tools/cargo.log")
    }

    /// The cargo invocations logged by the wrapper, one per line.
    fn cargo_log(&self) -> Vec<String> {
        let manifest = format!(
            " --manifest-path {}",
            self.ws().join("Cargo.toml").display()
        );
        fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(|line| line.replace(&manifest, ""))
            .collect()
    }

    /// Writes a file of the workspace.
    fn write(&self, path: &str, text: &str) {
        let path = self.ws().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Reads a file of the workspace.
    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.ws().join(path)).unwrap()
    }

    /// A git command in the workspace.
    fn git(&self) -> Command {
        let mut command = Command::new("git");
        command.current_dir(self.ws());
        command
    }

    /// Commits everything.
    fn commit(&self, message: &str) {
        check(self.git().args(["add", "-A"]));
        check(self.git().args(["commit", "-q", "-m", message]));
    }

    /// `git status --porcelain` (including untracked files).
    fn status(&self) -> String {
        check(
            self.git()
                .args(["status", "--porcelain", "--untracked-files=all"]),
        )
    }

    /// The current commit.
    fn head(&self) -> String {
        check(self.git().args(["rev-parse", "HEAD"]))
            .trim()
            .to_owned()
    }

    /// The tags.
    fn tags(&self) -> String {
        check(self.git().args(["tag", "--list"]))
    }

    /// Every file of the workspace (outside `.git`) with its bytes.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        /// Collects files under `dir`.
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                if rel == Path::new(".git") {
                    continue;
                }
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.insert(rel, fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.ws(), &self.ws(), &mut out);
        out
    }

    /// Runs the xtask binary on the workspace (through the logging cargo wrapper).
    fn xtask(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .args(args)
            .arg("--root")
            .arg(self.ws())
            .env_remove("XTASK_ROOT")
            .env("CARGO", self.base.join("tools/cargo"))
            .env("CARGO_TARGET_DIR", self.target());
        command.output().unwrap()
    }
}

/// The process's stdout and stderr, for assertion messages.
fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn dry_run_packages_the_new_version_and_leaves_the_tree_as_it_was() {
    let fx = Fixture::new(true);
    let before = fx.files();
    let head = fx.head();

    let out = fx.xtask(&["release", "--dry-run", "0.2.0"]);

    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("dry run of 0.2.0 passed"), "{}", show(&out));
    // The crates were packaged at the new version...
    for name in ["xtask-fixture-alpha-0.2.0", "xtask-fixture-beta-0.2.0"] {
        let krate = fx.target().join("package").join(format!("{name}.crate"));
        assert!(
            krate.is_file(),
            "{} missing\n{}",
            krate.display(),
            show(&out)
        );
    }
    assert_eq!(
        fx.cargo_log(),
        vec![
            "metadata --format-version 1 --no-deps",
            "update --workspace",
            "package --workspace --allow-dirty"
        ]
    );
    // ...and every file is back to its original bytes.
    assert_eq!(fx.status(), "");
    assert_eq!(fx.files(), before);
    assert_eq!(fx.head(), head);
    assert_eq!(fx.tags(), "");
}

#[test]
fn dry_run_removes_a_lockfile_that_did_not_exist() {
    let fx = Fixture::new(false);
    let before = fx.files();
    assert!(!before.contains_key(Path::new("Cargo.lock")));

    // The root comes from XTASK_ROOT this time.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["release", "--dry-run", "0.2.0"])
        .env("XTASK_ROOT", fx.ws())
        .env("CARGO_TARGET_DIR", fx.target())
        .output()
        .unwrap();

    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fx.status(), "");
    assert_eq!(fx.files(), before);
}

#[test]
fn version_missing_from_the_changelog_fails_clearly_and_changes_nothing() {
    let fx = Fixture::new(true);
    let before = fx.files();
    let head = fx.head();

    for args in [
        &["release", "--dry-run", "0.3.0"][..],
        &["release", "0.3.0"][..],
    ] {
        let out = fx.xtask(args);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("CHANGELOG.md has no section for 0.3.0"),
            "{}",
            show(&out)
        );
        assert_eq!(fx.status(), "");
        assert_eq!(fx.files(), before);
        assert_eq!(fx.head(), head);
        assert_eq!(fx.tags(), "");
    }
    // It stopped before running cargo at all.
    assert!(fx.cargo_log().is_empty(), "{:?}", fx.cargo_log());
}

#[test]
fn packaging_failure_in_a_dry_run_still_restores_every_file() {
    let fx = Fixture::new(true);
    fx.write(
        "crates/beta/src/lib.rs",
        "//! Beta, broken.\n\n/// Does not compile.\npub fn broken() -> u32 {\n    \"not a number\"\n}\n",
    );
    fx.commit("Break beta");
    let before = fx.files();

    let out = fx.xtask(&["release", "--dry-run", "0.2.0"]);

    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cargo package --workspace --allow-dirty` failed"),
        "{}",
        show(&out)
    );
    assert!(stderr.contains("all files were restored"), "{}", show(&out));
    assert_eq!(fx.status(), "");
    assert_eq!(fx.files(), before);
}

#[test]
fn packaging_failure_in_a_release_undoes_the_commit() {
    let fx = Fixture::new(true);
    fx.write(
        "crates/beta/src/lib.rs",
        "//! Beta, broken.\n\n/// Does not compile.\npub fn broken() -> u32 {\n    \"not a number\"\n}\n",
    );
    fx.commit("Break beta");
    let before = fx.files();
    let head = fx.head();

    let out = fx.xtask(&["release", "0.2.0"]);

    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the release commit was undone, nothing was tagged"),
        "{}",
        show(&out)
    );
    assert_eq!(fx.head(), head);
    assert_eq!(fx.tags(), "");
    assert_eq!(fx.status(), "");
    assert_eq!(fx.files(), before);
}

#[test]
fn release_commits_and_tags_but_does_not_publish() {
    let fx = Fixture::new(true);
    let head = fx.head();

    let out = fx.xtask(&["release", "0.2.0"]);

    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fx.tags(), "v0.2.0\n");
    assert_ne!(fx.head(), head);
    assert_eq!(
        check(fx.git().args(["log", "-1", "--format=%s"])),
        "Release 0.2.0\n"
    );
    assert_eq!(
        check(fx.git().args(["rev-parse", "v0.2.0^{commit}"])).trim(),
        fx.head()
    );
    assert_eq!(fx.status(), "");
    let root = fx.read("Cargo.toml");
    assert_eq!(
        root,
        ROOT_MANIFEST
            .replace(
                "version = \"0.1.0\"\nedition",
                "version = \"0.2.0\"\nedition"
            )
            .replace(
                "path = \"crates/alpha\", version = \"0.1.0\"",
                "path = \"crates/alpha\", version = \"0.2.0\""
            )
    );
    assert_eq!(
        fx.read("crates/beta/Cargo.toml"),
        BETA_MANIFEST.replace("version = \"0.1.0\"", "version = \"0.2.0\"")
    );
    assert_eq!(fx.read("crates/alpha/Cargo.toml"), ALPHA_MANIFEST);
    let lock = fx.read("Cargo.lock");
    assert!(
        lock.contains("name = \"xtask-fixture-alpha\"\nversion = \"0.2.0\""),
        "{lock}"
    );
    assert!(
        lock.contains("name = \"xtask-fixture-beta\"\nversion = \"0.2.0\""),
        "{lock}"
    );
    // The release commit holds exactly the version changes.
    let changed = check(fx.git().args(["diff", "--name-only", &head, "HEAD"]));
    assert_eq!(changed, "Cargo.lock\nCargo.toml\ncrates/beta/Cargo.toml\n");
    assert_eq!(
        fx.cargo_log(),
        vec![
            "metadata --format-version 1 --no-deps",
            "update --workspace",
            "package --workspace"
        ]
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("not published"), "{}", show(&out));
}

#[test]
fn publish_false_crate_keeps_its_version_and_is_not_packaged() {
    let fx = Fixture::new(true);
    let tools_manifest = "[package]\nname = \"xtask-fixture-tools\"\nversion = \"0.0.0\"\nedition.workspace = true\npublish = false\n\n[dependencies]\nxtask-fixture-alpha = { path = \"../alpha\", version = \"0.1.0\" }\n";
    fx.write("crates/tools/Cargo.toml", tools_manifest);
    fx.write(
        "crates/tools/src/main.rs",
        "fn main() {\n    println!(\"{}\", xtask_fixture_alpha::hello());\n}\n",
    );
    fx.generate_lockfile();
    fx.commit("Add a tools crate");

    let out = fx.xtask(&["release", "0.2.0"]);

    assert!(out.status.success(), "{}", show(&out));
    // Its own version stays; its path dependency follows the release.
    assert_eq!(
        fx.read("crates/tools/Cargo.toml"),
        tools_manifest.replace("version = \"0.1.0\" }", "version = \"0.2.0\" }")
    );
    assert_eq!(
        fx.cargo_log(),
        vec![
            "metadata --format-version 1 --no-deps",
            "update --workspace",
            "package --workspace --exclude xtask-fixture-tools"
        ]
    );
    let packaged: Vec<String> = fs::read_dir(fx.target().join("package"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".crate"))
        .collect();
    assert!(
        !packaged.iter().any(|n| n.contains("tools")),
        "{packaged:?}"
    );
    assert!(
        packaged.contains(&"xtask-fixture-beta-0.2.0.crate".to_owned()),
        "{packaged:?}"
    );
    assert_eq!(fx.tags(), "v0.2.0\n");
    assert_eq!(fx.status(), "");
}

#[test]
fn release_with_publish_publishes_after_tagging() {
    let fx = Fixture::new(true);

    let out = fx.xtask(&["release", "--publish", "0.2.0"]);

    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fx.tags(), "v0.2.0\n");
    // The wrapper stands in for `cargo publish` (it only logs it).
    assert_eq!(
        fx.cargo_log(),
        vec![
            "metadata --format-version 1 --no-deps",
            "update --workspace",
            "package --workspace",
            "publish --workspace"
        ]
    );
    assert_eq!(fx.status(), "");
}

#[test]
fn release_refuses_a_dirty_tree_and_an_existing_tag() {
    let fx = Fixture::new(true);
    fx.write("notes.txt", "work in progress\n");
    let before = fx.files();
    let head = fx.head();

    let out = fx.xtask(&["release", "0.2.0"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("git tree is not clean"),
        "{}",
        show(&out)
    );
    assert_eq!(fx.files(), before);
    assert_eq!(fx.head(), head);
    assert_eq!(fx.tags(), "");

    fs::remove_file(fx.ws().join("notes.txt")).unwrap();
    check(fx.git().args(["tag", "v0.2.0"]));
    let out = fx.xtask(&["release", "0.2.0"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tag v0.2.0 already exists"),
        "{}",
        show(&out)
    );
    assert_eq!(fx.head(), head);
    assert!(fx.cargo_log().is_empty(), "{:?}", fx.cargo_log());
}

#[test]
fn usage_errors_exit_with_2_and_help_with_0() {
    let xtask = || Command::new(env!("CARGO_BIN_EXE_xtask"));

    let out = xtask().arg("help").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: cargo xtask"));

    for (args, why) in [
        (&["frobnicate"][..], "unrecognized subcommand 'frobnicate'"),
        (&[][..], "Commands:"),
        (
            &["release", "--dry-run", "0.2"][..],
            "not a valid release version",
        ),
        (
            &["release", "--dry-run"][..],
            "required arguments were not provided:\n  <VERSION>",
        ),
    ] {
        let out = xtask().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{args:?}\n{}", show(&out));
        assert!(
            stderr.contains("Usage: cargo xtask"),
            "{args:?}\n{}",
            show(&out)
        );
    }
}
