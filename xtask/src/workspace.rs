//! Finding a workspace's member manifests, as cargo sees them (`cargo metadata`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::ManifestInput;
use crate::process::{self, Error};

/// A workspace read from disk.
#[derive(Debug)]
pub(crate) struct Workspace {
    /// The root manifest's text.
    pub(crate) root_text: String,
    /// The members other than the root, sorted by directory.
    pub(crate) members: Vec<ManifestInput>,
}

/// Reads `root/Cargo.toml` and the manifests of the workspace members that
/// `cargo metadata --no-deps` lists (members, globs and `exclude` as cargo resolves them).
pub(crate) fn load(root: &Path) -> Result<Workspace, Error> {
    let root_text = read(&root.join("Cargo.toml"))?;
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(process::cargo())
        .current_dir(root)
        .manifest_path(root.join("Cargo.toml"))
        .no_deps()
        .exec()
        .map_err(|e| Error::Failed(format!("cargo metadata failed in {}: {e}", root.display())))?;
    let workspace_root = metadata.workspace_root.as_std_path();
    let mut dirs: Vec<PathBuf> = metadata
        .workspace_packages()
        .into_iter()
        .filter_map(|package| package.manifest_path.parent())
        .filter_map(|dir| dir.as_std_path().strip_prefix(workspace_root).ok())
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut members = Vec::new();
    for dir in dirs {
        let text = read(&root.join(&dir).join("Cargo.toml"))?;
        members.push(ManifestInput { dir, text });
    }
    Ok(Workspace { root_text, members })
}

/// Reads a UTF-8 file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path)
        .map_err(|e| Error::Failed(format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_this_workspace() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or_else(|| Path::new(".."));
        let ws = load(root).unwrap();
        let dirs: Vec<&Path> = ws.members.iter().map(|m| m.dir.as_path()).collect();
        assert!(dirs.contains(&Path::new("xtask")), "{dirs:?}");
        assert!(dirs.contains(&Path::new("crates/protocol")), "{dirs:?}");
        assert!(ws.root_text.contains("[workspace]"));
    }
}
