//! Finding a workspace's member manifests on disk.

use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::{self, Manifest, ManifestInput};
use crate::process::Error;

/// A workspace read from disk.
#[derive(Debug)]
pub(crate) struct Workspace {
    /// The root manifest's text.
    pub(crate) root_text: String,
    /// The members other than the root, sorted by directory.
    pub(crate) members: Vec<ManifestInput>,
}

/// Reads `root/Cargo.toml` and the manifests of its `[workspace] members`
/// (literal paths and globs with `*` and `?`), minus `exclude`.
pub(crate) fn load(root: &Path) -> Result<Workspace, Error> {
    let root_text = read(&root.join("Cargo.toml"))?;
    let parsed = Manifest::parse(&root_text);
    let exclude: Vec<PathBuf> = parsed
        .array_strings(&["workspace"], &["exclude"])
        .iter()
        .map(|e| manifest::normalize(Path::new(e)))
        .collect();
    let mut dirs = Vec::new();
    for pattern in parsed.array_strings(&["workspace"], &["members"]) {
        if pattern.contains(['[', ']']) {
            return Err(Error::Failed(format!(
                "workspace member pattern `{pattern}` uses `[...]`, which xtask does not support"
            )));
        }
        let is_glob = pattern.contains(['*', '?']);
        let matched = expand(root, &manifest::normalize(Path::new(&pattern)))?;
        if !is_glob
            && let Some(dir) = matched.first()
            && !root.join(dir).join("Cargo.toml").is_file()
        {
            return Err(Error::Failed(format!(
                "workspace member `{pattern}` has no Cargo.toml"
            )));
        }
        for dir in matched {
            if root.join(&dir).join("Cargo.toml").is_file()
                && !exclude.iter().any(|e| dir.starts_with(e))
                && !dirs.contains(&dir)
            {
                dirs.push(dir);
            }
        }
    }
    dirs.sort();
    let mut members = Vec::new();
    for dir in dirs {
        if dir.as_os_str().is_empty() {
            continue;
        }
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

/// The directories (relative to `root`) matching a relative `pattern`
/// whose components may contain `*` and `?`.
fn expand(root: &Path, pattern: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.iter() {
        let component = component.to_string_lossy();
        let mut next = Vec::new();
        for base in &found {
            if !component.contains(['*', '?']) {
                next.push(base.join(component.as_ref()));
                continue;
            }
            let dir = root.join(base);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry
                    .map_err(|e| Error::Failed(format!("cannot list {}: {e}", dir.display())))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() && wildcard(&component, &name) {
                    next.push(base.join(name));
                }
            }
        }
        found = next;
    }
    found.sort();
    Ok(found)
}

/// Matches `name` against `pattern`, where `*` is any run of characters and
/// `?` any one character.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "protocol"));
        assert!(wildcard("cr*s", "crates"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(!wildcard("x*", "protocol"));
        assert!(wildcard("*-core*", "cerebrum-core-extra"));
    }

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
