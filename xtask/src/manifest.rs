//! Reading and rewriting versions in Cargo manifests, with `toml_edit` (format-preserving:
//! what cargo itself edits manifests with).
//!
//! The rules (see [`plan`]):
//! - `[workspace.package] version` of the root manifest is set to the new version;
//! - a member that sets its own literal `[package] version` gets the new version,
//!   unless it is not publishable (`publish = false`, `publish = []`);
//! - every dependency with both `path` and `version` whose path leads to a member
//!   that now has the new version (a publishable member, or any member with
//!   `version.workspace = true`) gets its `version` requirement rewritten, in
//!   `[workspace.dependencies]` and in the members' own dependency tables;
//! - nothing else changes: comments, spacing, key order and line endings are kept.

use std::path::{Component, Path, PathBuf};

use toml_edit::{DocumentMut, Item, TableLike};

/// How a package states its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PkgVersion {
    /// `version = "x.y.z"`.
    Literal(String),
    /// `version.workspace = true`.
    Workspace,
    /// No version key (cargo then uses 0.0.0 and refuses to publish).
    Missing,
}

/// How a package states whether it may be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// No `publish` key, `publish = true`, or a list of registries.
    Yes,
    /// `publish = false` or `publish = []`.
    No,
    /// `publish.workspace = true`.
    Inherit,
}

/// A dependency that has a `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathDep {
    /// The dependency's key (its name, or its rename).
    pub(crate) name: String,
    /// The table it was declared in, as its key path (e.g. `["workspace", "dependencies"]`).
    pub(crate) table: Vec<String>,
    /// The value of its `path`.
    pub(crate) path: String,
    /// Its `version` requirement, if it has one.
    pub(crate) version: Option<String>,
}

/// The kinds of dependency table (each also under `[target.'…']`).
const DEP_KINDS: [&str; 5] = [
    "dependencies",
    "dev-dependencies",
    "dev_dependencies",
    "build-dependencies",
    "build_dependencies",
];

/// The table at `path`, whether written as a header, inline or with dotted keys.
fn table_at<'a>(root: &'a dyn TableLike, path: &[&str]) -> Option<&'a dyn TableLike> {
    path.iter()
        .try_fold(root, |table, key| table.get(key)?.as_table_like())
}

/// The mutable table at `path`.
fn table_at_mut<'a>(root: &'a mut dyn TableLike, path: &[&str]) -> Option<&'a mut dyn TableLike> {
    path.iter()
        .try_fold(root, |table, key| table.get_mut(key)?.as_table_like_mut())
}

/// Whether `item` is `{ workspace = true }` inheritance (inline or dotted).
fn inherits(item: &Item) -> bool {
    item.as_table_like()
        .and_then(|t| t.get("workspace"))
        .and_then(Item::as_bool)
        == Some(true)
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    /// The document, with its formatting.
    doc: DocumentMut,
}

impl Manifest {
    /// Parses a manifest's text; `label` names it in the error.
    pub(crate) fn parse(text: &str, label: &str) -> Result<Self, String> {
        text.parse()
            .map(|doc| Self { doc })
            .map_err(|e| format!("cannot parse {label}: {e}"))
    }

    /// The table at `path`, if present.
    fn table(&self, path: &[&str]) -> Option<&dyn TableLike> {
        table_at(self.doc.as_table(), path)
    }

    /// The string value of `key` in the table at `path`, if it has one.
    pub(crate) fn find_str(&self, path: &[&str], key: &str) -> Option<String> {
        self.table(path)?.get(key)?.as_str().map(str::to_owned)
    }

    /// How `[package]` states its version (`None`: no `[package]`, a virtual root).
    pub(crate) fn package_version(&self) -> Option<PkgVersion> {
        let package = self.table(&["package"])?;
        Some(match package.get("version") {
            Some(item) => match item.as_str() {
                Some(version) => PkgVersion::Literal(version.to_owned()),
                None if inherits(item) => PkgVersion::Workspace,
                None => PkgVersion::Missing,
            },
            None => PkgVersion::Missing,
        })
    }

    /// How the table at `path` (`package` or `workspace.package`) states `publish`.
    pub(crate) fn publish(&self, path: &[&str]) -> Publish {
        match self.table(path).and_then(|t| t.get("publish")) {
            Some(item) if item.as_bool() == Some(false) => Publish::No,
            Some(item) if item.as_array().is_some_and(|a| a.is_empty()) => Publish::No,
            Some(item) if inherits(item) => Publish::Inherit,
            _ => Publish::Yes,
        }
    }

    /// The key paths of every dependency table present.
    fn dep_tables(&self) -> Vec<Vec<String>> {
        let mut tables = vec![vec!["workspace".to_owned(), "dependencies".to_owned()]];
        tables.extend(DEP_KINDS.iter().map(|kind| vec![(*kind).to_owned()]));
        if let Some(targets) = self.table(&["target"]) {
            for (target, _) in targets.iter() {
                tables.extend(
                    DEP_KINDS.iter().map(|kind| {
                        vec!["target".to_owned(), target.to_owned(), (*kind).to_owned()]
                    }),
                );
            }
        }
        tables.retain(|path| self.table(&as_strs(path)).is_some());
        tables
    }

    /// Every dependency that has a `path`, in any dependency table, whether
    /// written inline (`a = { path = ".." }`), dotted (`a.path = ".."`) or as
    /// its own table (`[dependencies.a]`).
    pub(crate) fn path_deps(&self) -> Vec<PathDep> {
        let mut found = Vec::new();
        for table in self.dep_tables() {
            let Some(deps) = self.table(&as_strs(&table)) else {
                continue;
            };
            for (name, item) in deps.iter() {
                let Some(dep) = item.as_table_like() else {
                    continue;
                };
                if let Some(path) = dep.get("path").and_then(Item::as_str) {
                    found.push(PathDep {
                        name: name.to_owned(),
                        table: table.clone(),
                        path: path.to_owned(),
                        version: dep.get("version").and_then(Item::as_str).map(str::to_owned),
                    });
                }
            }
        }
        found
    }

    /// Sets the string `key` of the table at `path` to `new`, keeping the comments and spacing
    /// around it. Returns whether there was such a string.
    fn set_str(&mut self, path: &[&str], key: &str, new: &str) -> bool {
        let Some(value) = table_at_mut(self.doc.as_table_mut(), path)
            .and_then(|t| t.get_mut(key))
            .and_then(Item::as_value_mut)
            .filter(|v| v.is_str())
        else {
            return false;
        };
        if value.as_str() != Some(new) {
            let decor = value.decor().clone();
            *value = new.into();
            *value.decor_mut() = decor;
        }
        true
    }
}

/// A key path as `&str`s.
fn as_strs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

/// One manifest given to [`plan`].
#[derive(Debug, Clone)]
pub(crate) struct ManifestInput {
    /// The manifest's directory relative to the workspace root (empty for the root).
    pub(crate) dir: PathBuf,
    /// The manifest's text.
    pub(crate) text: String,
}

/// The planned new content of one manifest.
#[derive(Debug, Clone)]
pub(crate) struct FilePlan {
    /// The manifest's directory relative to the workspace root (empty for the root).
    pub(crate) dir: PathBuf,
    /// The rewritten text.
    pub(crate) new_text: String,
    /// One line per version set, for the log.
    pub(crate) changes: Vec<String>,
}

/// What [`plan`] decided.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Manifests with at least one version set (possibly to the value they
    /// already had), in input order, the root first.
    pub(crate) files: Vec<FilePlan>,
    /// Names of the publishable crates that get the new version.
    pub(crate) released: Vec<String>,
    /// Names of the member crates that may not be published (`publish = false`,
    /// no version): `cargo package`/`publish` exclude them.
    pub(crate) unpublished: Vec<String>,
    /// Things left alone that a human may want to know about.
    pub(crate) notes: Vec<String>,
}

/// Lexically normalises a relative path (`a/./b/../c` → `a/c`). (Hand-written: std has only
/// `canonicalize`, which needs the path to exist; no crate in the lock file does this.)
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A new version requirement for a dependency: `version`, keeping a leading
/// `=`, `^` or `~` of the old requirement when it was a single comparator. (On the string, not
/// with `semver::VersionReq`, which reads a bare `0.1.0` as `^0.1.0` and so loses how the
/// requirement was written.)
fn new_requirement(old: &str, version: &str) -> String {
    let old = old.trim();
    let single = !old.contains([',', '<', '>', '*', ' ']);
    match old.chars().next() {
        Some(op @ ('=' | '^' | '~')) if single => format!("{op}{version}"),
        _ => version.to_owned(),
    }
}

/// A member as seen by [`plan`].
#[derive(Debug)]
struct Member {
    /// Its directory relative to the root.
    dir: PathBuf,
    /// Its parsed manifest.
    manifest: Manifest,
    /// Its package name (or its directory when unnamed).
    name: String,
    /// How it states its version (`None`: no `[package]`, a virtual root).
    version: Option<PkgVersion>,
    /// Whether it may be published.
    publishable: bool,
    /// Whether its lines end with CRLF.
    crlf: bool,
}

impl Member {
    /// Whether this member has `version` once the plan is applied.
    fn gets_version(&self, has_workspace_version: bool) -> bool {
        match &self.version {
            Some(PkgVersion::Literal(_)) => self.publishable,
            Some(PkgVersion::Workspace) => has_workspace_version,
            Some(PkgVersion::Missing) | None => false,
        }
    }
}

/// Plans setting `version` across a workspace.
///
/// `root` is the root manifest; `members` the member manifests (an entry whose
/// `dir` is empty is the root itself and is ignored, the root being included
/// anyway). Fails when a manifest does not parse, when no publishable crate would get the
/// version, or when a member inherits a version that `[workspace.package]` does not define.
pub(crate) fn plan(root: &str, members: &[ManifestInput], version: &str) -> Result<Plan, String> {
    let root_manifest = Manifest::parse(root, "Cargo.toml")?;
    let workspace_version = root_manifest.find_str(&["workspace", "package"], "version");
    let workspace_publish_false = root_manifest.publish(&["workspace", "package"]) == Publish::No;

    let inputs = std::iter::once((PathBuf::new(), root)).chain(
        members
            .iter()
            .filter(|m| !m.dir.as_os_str().is_empty())
            .map(|m| (normalize(&m.dir), m.text.as_str())),
    );
    let mut all = Vec::new();
    for (dir, text) in inputs {
        let manifest = Manifest::parse(text, &manifest_label(&dir))?;
        let name = manifest
            .find_str(&["package"], "name")
            .unwrap_or_else(|| dir.display().to_string());
        let version_kind = manifest.package_version();
        let publishable = version_kind.is_some()
            && match manifest.publish(&["package"]) {
                Publish::Yes => true,
                Publish::No => false,
                Publish::Inherit => !workspace_publish_false,
            }
            && version_kind != Some(PkgVersion::Missing);
        if version_kind == Some(PkgVersion::Workspace) && workspace_version.is_none() {
            return Err(format!(
                "crate `{name}` uses `version.workspace = true` but the root Cargo.toml has no \
                 `[workspace.package] version`"
            ));
        }
        all.push(Member {
            dir,
            manifest,
            name,
            version: version_kind,
            publishable,
            crlf: text.contains("\r\n"),
        });
    }

    let has_workspace_version = workspace_version.is_some();
    let released: Vec<String> = all
        .iter()
        .filter(|m| m.publishable && m.gets_version(has_workspace_version))
        .map(|m| m.name.clone())
        .collect();
    if released.is_empty() {
        return Err("no publishable crate found in the workspace".to_owned());
    }
    let unpublished: Vec<String> = all
        .iter()
        .filter(|m| m.version.is_some() && !m.publishable)
        .map(|m| m.name.clone())
        .collect();

    let mut notes = Vec::new();
    let mut files = Vec::new();
    for (index, member) in all.iter().enumerate() {
        // (table path, key, new value) of each string to set.
        let mut edits: Vec<(Vec<String>, String)> = Vec::new();
        let mut changes = Vec::new();
        if index == 0
            && let Some(old) = &workspace_version
        {
            changes.push(format!("[workspace.package] version {old} -> {version}"));
            edits.push((
                vec!["workspace".into(), "package".into()],
                version.to_owned(),
            ));
        }
        match &member.version {
            Some(PkgVersion::Literal(old)) if member.publishable => {
                changes.push(format!(
                    "[package] version of {} {old} -> {version}",
                    member.name
                ));
                edits.push((vec!["package".into()], version.to_owned()));
            }
            Some(PkgVersion::Literal(old)) => notes.push(format!(
                "left {} at its own version {old} (not publishable)",
                member.name
            )),
            _ => {}
        }
        for dep in member.manifest.path_deps() {
            let Some(old) = dep.version else { continue };
            let table = dep.table.join(".");
            let target = normalize(&member.dir.join(&dep.path));
            match all.iter().find(|m| m.dir == target) {
                Some(t) if t.gets_version(has_workspace_version) => {
                    let new = new_requirement(&old, version);
                    changes.push(format!(
                        "[{table}] {} version \"{old}\" -> \"{new}\"",
                        dep.name
                    ));
                    let mut path = dep.table.clone();
                    path.push(dep.name.clone());
                    edits.push((path, new));
                }
                Some(t) => notes.push(format!(
                    "left [{table}] {} at version \"{old}\" in {}: `{}` does not get the new version",
                    dep.name,
                    manifest_label(&member.dir),
                    t.name
                )),
                None => notes.push(format!(
                    "left [{table}] {} at version \"{old}\" in {}: path `{}` is not a workspace member",
                    dep.name,
                    manifest_label(&member.dir),
                    dep.path
                )),
            }
        }
        if !edits.is_empty() {
            let mut manifest = member.manifest.clone();
            for (path, new) in edits {
                manifest.set_str(&as_strs(&path), "version", &new);
            }
            let mut new_text = manifest.doc.to_string();
            // toml_edit writes `\n`: put back a CRLF manifest's line ends.
            if member.crlf {
                new_text = new_text.replace("\r\n", "\n").replace('\n', "\r\n");
            }
            files.push(FilePlan {
                dir: member.dir.clone(),
                new_text,
                changes,
            });
        }
    }
    Ok(Plan {
        files,
        released,
        unpublished,
        notes,
    })
}

/// A manifest's path for messages (`Cargo.toml`, `crates/a/Cargo.toml`).
pub(crate) fn manifest_label(dir: &Path) -> String {
    dir.join("Cargo.toml").display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root manifest of a workspace like ours.
    const ROOT: &str = r#"[workspace]
resolver = "3"
members = [
    "crates/*",
    "xtask",
]

[workspace.package]
version = "0.1.0" # the release version
edition = "2024"

[workspace.dependencies]
# Intra-workspace crates.
cerebrum-protocol = { path = "crates/protocol", version = "0.1.0" }
cerebrum-core = { version = "=0.1.0", path = "./crates/core", default-features = false, features = ["version"] }
serde = { version = "1.0.219", features = ["derive"] }
outside = { path = "../elsewhere", version = "3.0.0" }

[workspace.dependencies.cerebrum-server]
path = "crates/server"
version = "0.1.0"
"#;

    /// Builds a member input.
    fn member(dir: &str, text: &str) -> ManifestInput {
        ManifestInput {
            dir: PathBuf::from(dir),
            text: text.to_owned(),
        }
    }

    /// The members of the test workspace.
    fn members() -> Vec<ManifestInput> {
        vec![
            member(
                "crates/protocol",
                "[package]\nname = \"cerebrum-protocol\"\nversion.workspace = true\n\n[dependencies]\nserde.workspace = true\n",
            ),
            member(
                "crates/core",
                "[package]\nname = \"cerebrum-core\"\nversion = { workspace = true }\n\n[dependencies]\ncerebrum-protocol.workspace = true\n",
            ),
            member(
                "crates/server",
                "[package]\r\nname = \"cerebrum-server\"\r\nversion = \"0.1.0\"\r\n\r\n[dev-dependencies]\r\nproto = { package = \"cerebrum-protocol\", path = \"../protocol\", version = \"^0.1.0\" }\r\n",
            ),
            member(
                "xtask",
                "[package]\nname = \"xtask\"\nversion = \"0.0.0\"\npublish = false\n\n[dependencies]\ncerebrum-protocol = { path = \"../crates/protocol\", version = \"0.1.0\" }\n",
            ),
        ]
    }

    /// The planned text of the manifest in `dir`.
    fn planned<'a>(plan: &'a Plan, dir: &str) -> &'a str {
        plan.files
            .iter()
            .find(|f| f.dir == Path::new(dir))
            .map(|f| f.new_text.as_str())
            .unwrap_or_else(|| panic!("no plan for {dir}"))
    }

    #[test]
    fn rewrites_workspace_version_and_path_dependencies() {
        let plan = plan(ROOT, &members(), "0.2.0-rc.1").unwrap();
        let expected = ROOT
            .replace(
                "version = \"0.1.0\" # the release",
                "version = \"0.2.0-rc.1\" # the release",
            )
            .replace(
                "path = \"crates/protocol\", version = \"0.1.0\"",
                "path = \"crates/protocol\", version = \"0.2.0-rc.1\"",
            )
            .replace("version = \"=0.1.0\"", "version = \"=0.2.0-rc.1\"")
            .replace(
                "path = \"crates/server\"\nversion = \"0.1.0\"",
                "path = \"crates/server\"\nversion = \"0.2.0-rc.1\"",
            );
        assert_eq!(planned(&plan, ""), expected);
        // Third-party and out-of-workspace versions are untouched.
        assert!(expected.contains("serde = { version = \"1.0.219\""));
        assert!(expected.contains("outside = { path = \"../elsewhere\", version = \"3.0.0\" }"));
        assert!(expected.contains("features = [\"version\"]"));
        assert!(plan.notes.iter().any(|n| n.contains("outside")));
    }

    #[test]
    fn members_with_literal_versions_are_rewritten_byte_exactly() {
        let plan = plan(ROOT, &members(), "0.2.0").unwrap();
        assert_eq!(
            planned(&plan, "crates/server"),
            "[package]\r\nname = \"cerebrum-server\"\r\nversion = \"0.2.0\"\r\n\r\n[dev-dependencies]\r\nproto = { package = \"cerebrum-protocol\", path = \"../protocol\", version = \"^0.2.0\" }\r\n"
        );
        // Members that inherit the version have nothing to rewrite.
        assert!(
            !plan
                .files
                .iter()
                .any(|f| f.dir == Path::new("crates/protocol") || f.dir == Path::new("crates/core"))
        );
        assert_eq!(
            plan.released,
            vec!["cerebrum-protocol", "cerebrum-core", "cerebrum-server"]
        );
    }

    #[test]
    fn publish_false_crates_keep_their_version_but_follow_their_dependencies() {
        let plan = plan(ROOT, &members(), "0.2.0").unwrap();
        let xtask = planned(&plan, "xtask");
        assert!(xtask.contains("version = \"0.0.0\"\npublish = false"));
        assert!(xtask.contains(
            "cerebrum-protocol = { path = \"../crates/protocol\", version = \"0.2.0\" }"
        ));
        assert!(!plan.released.contains(&"xtask".to_owned()));
        assert_eq!(plan.unpublished, vec!["xtask"]);
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("xtask") && n.contains("0.0.0"))
        );
    }

    #[test]
    fn path_dependency_on_an_unpublished_crate_is_left_alone() {
        let root = "[workspace]\nmembers = [\"a\", \"helper\"]\n\n[workspace.dependencies]\nhelper = { path = \"helper\", version = \"0.5.0\" }\na = { path = \"a\", version = \"1.0.0\" }\n";
        let members = vec![
            member("a", "[package]\nname = \"a\"\nversion = \"1.0.0\"\n"),
            member(
                "helper",
                "[package]\nname = \"helper\"\nversion = \"0.5.0\"\npublish = []\n",
            ),
        ];
        let plan = plan(root, &members, "1.1.0").unwrap();
        assert_eq!(
            planned(&plan, ""),
            root.replace("\"a\", version = \"1.0.0\"", "\"a\", version = \"1.1.0\"")
        );
        assert_eq!(plan.released, vec!["a"]);
        assert!(plan.notes.iter().any(|n| n.contains("helper")));
    }

    #[test]
    fn dotted_dependency_keys_and_target_tables_are_handled() {
        let text = "[package]\nname = \"b\"\nversion = \"1.0.0\"\n\n[target.'cfg(unix)'.dependencies]\na.path = \"../a\"\na.version = \"~1.0.0\"\n";
        let members = vec![
            member("a", "[package]\nname = \"a\"\nversion = \"1.0.0\"\n"),
            member("b", text),
        ];
        let plan = plan("[workspace]\nmembers = [\"a\", \"b\"]\n", &members, "1.0.1").unwrap();
        assert_eq!(
            planned(&plan, "b"),
            "[package]\nname = \"b\"\nversion = \"1.0.1\"\n\n[target.'cfg(unix)'.dependencies]\na.path = \"../a\"\na.version = \"~1.0.1\"\n"
        );
    }

    #[test]
    fn publish_inherited_from_a_non_publishing_workspace() {
        let root = "[workspace]\nmembers = [\"a\"]\n[workspace.package]\nversion = \"1.0.0\"\npublish = false\n";
        let members = vec![member(
            "a",
            "[package]\nname = \"a\"\nversion.workspace = true\npublish.workspace = true\n",
        )];
        let err = plan(root, &members, "1.1.0").unwrap_err();
        assert!(err.contains("no publishable crate"), "{err}");
    }

    #[test]
    fn inherited_version_without_a_workspace_version_is_an_error() {
        let members = vec![member(
            "a",
            "[package]\nname = \"a\"\nversion.workspace = true\n",
        )];
        let err = plan("[workspace]\nmembers = [\"a\"]\n", &members, "1.1.0").unwrap_err();
        assert!(err.contains("`a`"), "{err}");
    }

    #[test]
    fn a_root_package_is_a_member_too() {
        let root = "[package]\nname = \"top\"\nversion = \"0.3.0\"\n\n[workspace]\nmembers = [\"sub\"]\n\n[dependencies]\nsub = { path = \"sub\", version = \"0.3.0\" }\n";
        let members = vec![member(
            "sub",
            "[package]\nname = \"sub\"\nversion = \"0.3.0\"\n",
        )];
        let plan = plan(root, &members, "0.4.0").unwrap();
        assert_eq!(planned(&plan, ""), root.replace("0.3.0", "0.4.0"));
        assert_eq!(
            planned(&plan, "sub"),
            members[0].text.replace("0.3.0", "0.4.0")
        );
        assert_eq!(plan.released, vec!["top", "sub"]);
        assert!(plan.unpublished.is_empty());
    }

    #[test]
    fn setting_the_same_version_changes_nothing() {
        let plan = plan(ROOT, &members(), "0.1.0").unwrap();
        assert_eq!(planned(&plan, ""), ROOT);
        for file in &plan.files {
            let original = members()
                .into_iter()
                .find(|m| m.dir == file.dir)
                .map_or_else(|| ROOT.to_owned(), |m| m.text);
            assert_eq!(file.new_text, original);
        }
    }

    #[test]
    fn requirement_operators_are_kept() {
        assert_eq!(new_requirement("0.1.0", "0.2.0"), "0.2.0");
        assert_eq!(new_requirement("=0.1.0", "0.2.0"), "=0.2.0");
        assert_eq!(new_requirement("^0.1", "0.2.0"), "^0.2.0");
        assert_eq!(new_requirement("~0.1.0", "0.2.0"), "~0.2.0");
        assert_eq!(new_requirement(">=0.1, <0.2", "0.2.0"), "0.2.0");
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(
            normalize(Path::new("xtask/../crates/./a")),
            Path::new("crates/a")
        );
        assert_eq!(normalize(Path::new("../x")), Path::new("../x"));
        assert_eq!(normalize(Path::new("")), Path::new(""));
    }
}
