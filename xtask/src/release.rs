//! `cargo xtask release [--dry-run] [--publish] VERSION`.
//!
//! 1. (real release) the git tree must be clean and the tag `vVERSION` new;
//! 2. `CHANGELOG.md` must have a section for VERSION;
//! 3. the versions are set (see [`crate::manifest`]) and `Cargo.lock` is
//!    refreshed with `cargo update --workspace`;
//! 4. (`cargo package`/`publish` get `--exclude NAME` for each crate that
//!    may not be published, e.g. xtask itself)
//!    dry run: `cargo package --workspace --allow-dirty`, then every file is
//!    put back to its original bytes, whatever happened;
//!    real release: `git commit -am "Release VERSION"`, `cargo package
//!    --workspace` on the clean release commit (on failure the commit is undone
//!    and the files restored), `git tag vVERSION`, and `cargo publish
//!    --workspace` only with `--publish`.
//!
//! Why not cargo-release or release-plz behind it: both are sound, but each is a separate
//! binary with a large dependency tree (git2/gix, a crates.io client, and for release-plz a
//! GitHub client) that CI and every contributor would have to install, and their models differ
//! from ours: release-plz writes the changelog from conventional commits and releases from a
//! pull request, where we keep a hand-written `CHANGELOG.md` that must already hold the
//! section; cargo-release bumps versions per crate with its own config. What remains here is
//! small (a `toml_edit` rewrite planned by [`crate::manifest`], the workspace from `cargo
//! metadata`, then `cargo update`, `cargo package`/`publish` and two git calls), keeps one
//! version for the whole workspace, restores every byte on failure, and is tested end to end
//! in `xtask/tests/release.rs`. If the project moves to per-crate versions or automated
//! release pull requests, release-plz is the one to adopt.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{self, Error};
use crate::{changelog, manifest, workspace};

/// The parsed arguments of `release`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct ReleaseArgs {
    /// The version to release: x.y.z or x.y.z-pre.
    #[arg(value_name = "VERSION", value_parser = crate::version::release_version)]
    pub(crate) version: String,
    /// Package only, then restore every file.
    #[arg(long, conflicts_with = "publish")]
    pub(crate) dry_run: bool,
    /// Also `cargo publish --workspace` after tagging.
    #[arg(long)]
    pub(crate) publish: bool,
}

/// One file saved before a release touches it.
#[derive(Debug)]
struct Saved {
    /// The file.
    path: PathBuf,
    /// Its bytes before the release (`None`: it did not exist).
    original: Option<Vec<u8>>,
    /// The bytes xtask wrote (`None`: cargo owns the file, e.g. `Cargo.lock`).
    written: Option<Vec<u8>>,
}

/// The original bytes of every file a release may change, to put them back.
#[derive(Debug, Default)]
struct Snapshot {
    /// The saved files.
    files: Vec<Saved>,
    /// Set once the files were restored or deliberately kept.
    done: bool,
}

impl Snapshot {
    /// Saves `path`'s current bytes; `written` is what xtask will write there.
    fn save(&mut self, path: PathBuf, written: Option<Vec<u8>>) -> Result<(), Error> {
        let original = match fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::Failed(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        self.files.push(Saved {
            path,
            original,
            written,
        });
        Ok(())
    }

    /// Writes the planned contents of the files xtask rewrites.
    fn write_all(&self) -> Result<(), Error> {
        for saved in &self.files {
            if let Some(bytes) = &saved.written
                && saved.original.as_ref() != Some(bytes)
            {
                fs::write(&saved.path, bytes).map_err(|e| {
                    Error::Failed(format!("cannot write {}: {e}", saved.path.display()))
                })?;
            }
        }
        Ok(())
    }

    /// Puts every file back to its original bytes (removing files that did not
    /// exist) and checks the result. A manifest that someone else changed
    /// meanwhile (neither the original nor what xtask wrote) is not clobbered:
    /// that is reported as an error instead.
    fn restore(&mut self) -> Result<(), Error> {
        self.done = true;
        let mut problems = Vec::new();
        for saved in &self.files {
            let current = fs::read(&saved.path).ok();
            if current == saved.original {
                continue;
            }
            if let (Some(written), Some(current)) = (&saved.written, &current)
                && written != current
            {
                problems.push(format!(
                    "{} was changed by something else during the release; left as it is",
                    saved.path.display()
                ));
                continue;
            }
            let result = match &saved.original {
                Some(bytes) => fs::write(&saved.path, bytes),
                None => fs::remove_file(&saved.path),
            };
            if let Err(e) = result {
                problems.push(format!("cannot restore {}: {e}", saved.path.display()));
            } else if fs::read(&saved.path).ok() != saved.original {
                problems.push(format!(
                    "{} differs after restoring it",
                    saved.path.display()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Failed(problems.join("\n")))
        }
    }

    /// Keeps the files as they are now (a finished release).
    fn keep(&mut self) {
        self.done = true;
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // Only reached without an explicit restore/keep, e.g. on a panic.
        if !self.done
            && let Err(e) = self.restore()
        {
            eprintln!("xtask release: {e}");
        }
    }
}

/// A `git` command in `root`.
fn git(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command.current_dir(root).args(args);
    command
}

/// A `cargo` command in `root`.
fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(process::cargo());
    command.current_dir(root).args(args);
    command
}

/// `cargo package --workspace` or `cargo publish --workspace` (`verb`),
/// excluding the crates that may not be published.
fn workspace_cargo(root: &Path, verb: &str, unpublished: &[String], allow_dirty: bool) -> Command {
    let mut command = cargo(root, &[verb, "--workspace"]);
    for name in unpublished {
        command.args(["--exclude", name]);
    }
    if allow_dirty {
        command.arg("--allow-dirty");
    }
    command
}

/// Prints and runs a step.
fn step(mut command: Command) -> Result<(), Error> {
    println!("==> {}", process::render(&command));
    process::run(&mut command)
}

/// Fails unless `CHANGELOG.md` in `root` has a section for `version`.
fn check_changelog(root: &Path, version: &str) -> Result<(), Error> {
    let path = root.join("CHANGELOG.md");
    let text = workspace::read(&path)?;
    if changelog::has_section(&text, version) {
        println!("==> CHANGELOG.md has a section for {version}");
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "CHANGELOG.md has no section for {version}: add a heading such as \
             `## [{version}] - YYYY-MM-DD` listing its changes, then run the release again"
        )))
    }
}

/// Combines a step's result with the result of restoring the files.
fn with_restore(result: Result<(), Error>, restored: Result<(), Error>) -> Result<(), Error> {
    match (result, restored) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) => Err(Error::Failed(format!("{e}\n(all files were restored)"))),
        (Ok(()), Err(r)) => Err(r),
        (Err(e), Err(r)) => Err(Error::Failed(format!("{e}\nrestoring failed too:\n{r}"))),
    }
}

/// Runs a release (or its dry run) of the workspace at `root`.
pub(crate) fn run(root: &Path, args: &ReleaseArgs) -> Result<(), Error> {
    let version = args.version.as_str();
    let tag = format!("v{version}");
    let mode = if args.dry_run { " (dry run)" } else { "" };
    println!("==> release {version}{mode} of {}", root.display());

    if !args.dry_run {
        let status = process::output(&mut git(root, &["status", "--porcelain"]))?;
        if !status.trim().is_empty() {
            return Err(Error::Failed(format!(
                "the git tree is not clean; commit or stash these first (or use --dry-run):\n{}",
                status.trim_end()
            )));
        }
        let tags = process::output(&mut git(root, &["tag", "--list", &tag]))?;
        if !tags.trim().is_empty() {
            return Err(Error::Failed(format!("tag {tag} already exists")));
        }
    }
    check_changelog(root, version)?;

    let ws = workspace::load(root)?;
    let plan = manifest::plan(&ws.root_text, &ws.members, version).map_err(Error::Failed)?;
    println!(
        "==> crates released at {version}: {}",
        plan.released.join(", ")
    );
    for file in &plan.files {
        for change in &file.changes {
            println!("    {}: {change}", manifest::manifest_label(&file.dir));
        }
    }
    for note in &plan.notes {
        println!("    note: {note}");
    }

    let mut snapshot = Snapshot::default();
    for file in &plan.files {
        let path = root.join(&file.dir).join("Cargo.toml");
        snapshot.save(path, Some(file.new_text.clone().into_bytes()))?;
    }
    snapshot.save(root.join("Cargo.lock"), None)?;
    let touched: Vec<String> = snapshot
        .files
        .iter()
        .filter_map(|f| f.path.strip_prefix(root).ok())
        .map(|p| p.display().to_string())
        .collect();
    println!(
        "    (if this run is interrupted, restore with: git checkout -- {})",
        touched.join(" ")
    );

    if args.dry_run {
        let result = snapshot
            .write_all()
            .and_then(|()| step(cargo(root, &["update", "--workspace"])))
            .and_then(|()| step(workspace_cargo(root, "package", &plan.unpublished, true)));
        let restored = snapshot.restore();
        if restored.is_ok() {
            println!("==> restored Cargo.toml files and Cargo.lock to their original bytes");
        }
        with_restore(result, restored)?;
        println!("==> dry run of {version} passed; nothing was committed, tagged or published");
        return Ok(());
    }

    let prepared = snapshot
        .write_all()
        .and_then(|()| step(cargo(root, &["update", "--workspace"])));
    if let Err(e) = prepared {
        return with_restore(Err(e), snapshot.restore());
    }
    let changed = !process::output(&mut git(root, &["status", "--porcelain"]))?
        .trim()
        .is_empty();
    if changed {
        let message = format!("Release {version}");
        if let Err(e) = step(git(root, &["commit", "-am", &message])) {
            return with_restore(Err(e), snapshot.restore());
        }
    } else {
        println!("==> versions were already {version}: nothing to commit, tagging HEAD");
    }
    if let Err(e) = step(workspace_cargo(root, "package", &plan.unpublished, false)) {
        let undone = if changed {
            step(git(root, &["reset", "--quiet", "HEAD~1"]))
        } else {
            Ok(())
        };
        let restored = with_restore(undone, snapshot.restore());
        return with_restore(
            Err(Error::Failed(format!(
                "{e}\npackaging failed: {}nothing was tagged",
                if changed {
                    "the release commit was undone, "
                } else {
                    ""
                }
            ))),
            restored,
        );
    }
    snapshot.keep();
    step(git(root, &["tag", &tag]))?;
    if args.publish {
        step(workspace_cargo(root, "publish", &plan.unpublished, false)).map_err(|e| {
            Error::Failed(format!(
                "{e}\nthe release is committed and tagged {tag}; fix the problem and run \
                 `cargo publish --workspace` by hand"
            ))
        })?;
        println!("==> released and published {version}");
    } else {
        println!(
            "==> released {version}: committed and tagged {tag}; not published (pass --publish for that)"
        );
    }
    println!("    push with: git push && git push origin {tag}");
    Ok(())
}
