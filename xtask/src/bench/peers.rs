//! Builds: ours in release, and the peers of `../shared/bench-peers/` (Node `ws`,
//! tokio-tungstenite) into `TARGET/bench-peers`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::process::{self, Error};

/// `cargo build --release -p cerebrum-cli`; the path of the `cerebrum` binary.
pub(crate) fn build_ours(root: &Path, target: &Path) -> Result<PathBuf, Error> {
    let mut command = Command::new(process::cargo());
    command
        .current_dir(root)
        .args(["build", "--release", "-p", "cerebrum-cli"]);
    println!("==> bench: {}", process::render(&command));
    process::run(&mut command)?;
    let binary = target.join("release").join("cerebrum");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(Error::Failed(format!(
            "built, but there is no {} (is the target directory elsewhere?)",
            binary.display()
        )))
    }
}

/// Copies a directory tree (without `node_modules`), making the copies writable.
/// (Hand-written: no crate in the lock file copies a tree, and none skips a folder and
/// resets modes in one pass.)
pub(super) fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries = fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let name = entry.file_name();
        if name == "node_modules" {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        if source.is_dir() {
            copy_tree(&source, &dest)?;
        } else {
            let _ = fs::remove_file(&dest);
            fs::copy(&source, &dest).map_err(|e| {
                format!(
                    "cannot copy {} to {}: {e}",
                    source.display(),
                    dest.display()
                )
            })?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o644))
                .map_err(|e| format!("cannot make {} writable: {e}", dest.display()))?;
        }
    }
    Ok(())
}

/// The Node `ws` peer: copied to `TARGET/bench-peers/node-ws`, `npm ci` there.
pub(super) fn build_node_ws(shared: &Path, target: &Path) -> Result<Launch, String> {
    let dest = target.join("bench-peers").join("node-ws");
    println!(
        "==> bench: copy {} to {}",
        shared.join("node-ws").display(),
        dest.display()
    );
    copy_tree(&shared.join("node-ws"), &dest)?;
    let mut command = Command::new("npm");
    command.arg("ci").current_dir(&dest);
    println!("==> bench: (cd {} && npm ci)", dest.display());
    process::run(&mut command).map_err(|e| e.to_string())?;
    Ok(Launch {
        server: Server::NodeWs,
        program: PathBuf::from("node"),
        args: vec![dest.join("server.js").into_os_string()],
        serve_args: Vec::new(),
    })
}

/// The tokio-tungstenite peer, built into `TARGET/bench-peers` (`--locked`: nothing is
/// written into the read-only shared folder).
pub(super) fn build_rust_raw(shared: &Path, target: &Path) -> Result<Launch, String> {
    let dir = target.join("bench-peers");
    let mut command = Command::new(process::cargo());
    command
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(shared.join("rust-raw").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&dir);
    println!("==> bench: {}", process::render(&command));
    process::run(&mut command).map_err(|e| e.to_string())?;
    let binary = dir.join("release").join("rust-raw");
    if binary.is_file() {
        Ok(Launch {
            server: Server::RustRaw,
            program: binary,
            args: Vec::new(),
            serve_args: Vec::new(),
        })
    } else {
        Err(format!("built, but there is no {}", binary.display()))
    }
}

/// The first line of a command's stdout, or `None`.
pub(crate) fn first_line(command: &mut Command) -> Option<String> {
    process::output(command)
        .ok()
        .and_then(|out| out.lines().next().map(|l| l.trim().to_owned()))
        .filter(|l| !l.is_empty())
}
