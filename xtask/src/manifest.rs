//! Reading and rewriting versions in Cargo manifests, line by line.
//!
//! The rules (see [`plan`]):
//! - `[workspace.package] version` of the root manifest is set to the new version;
//! - a member that sets its own literal `[package] version` gets the new version,
//!   unless it is not publishable (`publish = false`, `publish = []`);
//! - every dependency with both `path` and `version` whose path leads to a member
//!   that now has the new version (a publishable member, or any member with
//!   `version.workspace = true`) gets its `version` requirement rewritten, in
//!   `[workspace.dependencies]` and in the members' own dependency tables;
//! - nothing else changes, byte for byte.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use crate::toml_lines::{self, LineKind, Token};

/// A string value found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StrRef {
    /// Index of the line holding the string.
    pub(crate) line: usize,
    /// Byte range of the string's content within that line.
    pub(crate) content: Range<usize>,
    /// The string's value.
    pub(crate) value: String,
}

/// How a package states its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PkgVersion {
    /// `version = "x.y.z"`.
    Literal(StrRef),
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
    /// The table it was declared in (e.g. `dependencies`, `workspace.dependencies`).
    pub(crate) table: String,
    /// The value of its `path`.
    pub(crate) path: String,
    /// Its `version` requirement, if it has one.
    pub(crate) version: Option<StrRef>,
}

/// A scanned manifest.
#[derive(Debug)]
pub(crate) struct Manifest {
    /// The scanned lines.
    lines: Vec<toml_lines::Line>,
}

/// Whether the table parts name a dependency table.
fn is_dep_table(parts: &[String]) -> bool {
    /// The kinds of dependency tables.
    const KINDS: [&str; 5] = [
        "dependencies",
        "dev-dependencies",
        "dev_dependencies",
        "build-dependencies",
        "build_dependencies",
    ];
    match parts {
        [a, b] => a == "workspace" && b == "dependencies",
        [kind] => KINDS.contains(&kind.as_str()),
        [target, _, kind] => target == "target" && KINDS.contains(&kind.as_str()),
        _ => false,
    }
}

/// Whether the parts equal the given names.
fn parts_eq(parts: &[String], names: &[&str]) -> bool {
    parts.len() == names.len() && parts.iter().zip(names).all(|(p, n)| p == n)
}

/// The `(key, string)` pairs at the first level of an inline table
/// (`{ path = "..", version = ".." }`), for keys with a plain string value.
fn inline_table_strings(tokens: &[Token]) -> Vec<(String, String, Range<usize>)> {
    let mut found = Vec::new();
    if tokens.first() != Some(&Token::Punct('{')) {
        return found;
    }
    let mut depth = 0usize;
    let mut expecting_key = false;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{' | '[') => {
                depth += 1;
                expecting_key = depth == 1;
            }
            Token::Punct('}' | ']') => depth = depth.saturating_sub(1),
            Token::Punct(',') if depth == 1 => expecting_key = true,
            Token::Bare(key) | Token::Str { value: key, .. } if depth == 1 && expecting_key => {
                expecting_key = false;
                if tokens.get(i + 1) == Some(&Token::Punct('='))
                    && let Some(Token::Str { value, content }) = tokens.get(i + 2)
                {
                    found.push((key.clone(), value.clone(), content.clone()));
                    i += 3;
                    continue;
                }
            }
            _ => expecting_key = false,
        }
        i += 1;
    }
    found
}

impl Manifest {
    /// Scans a manifest's text.
    pub(crate) fn parse(text: &str) -> Self {
        Self {
            lines: toml_lines::scan(text),
        }
    }

    /// Whether the manifest has a table with exactly these header parts.
    pub(crate) fn has_table(&self, table: &[&str]) -> bool {
        self.lines
            .iter()
            .any(|l| l.kind == LineKind::Header && parts_eq(&l.table, table))
    }

    /// The line index and value tokens of `key` in `table`, if present.
    fn find(&self, table: &[&str], key: &[&str]) -> Option<(usize, &[Token])> {
        self.lines
            .iter()
            .enumerate()
            .find_map(|(i, l)| match &l.kind {
                LineKind::KeyValue { key: k } if parts_eq(&l.table, table) && parts_eq(k, key) => {
                    Some((i, l.tokens.as_slice()))
                }
                _ => None,
            })
    }

    /// The plain string value of `key` in `table`, if it has one.
    pub(crate) fn find_str(&self, table: &[&str], key: &[&str]) -> Option<StrRef> {
        match self.find(table, key)? {
            (line, [Token::Str { value, content }, ..]) => Some(StrRef {
                line,
                content: content.clone(),
                value: value.clone(),
            }),
            _ => None,
        }
    }

    /// Whether `key` in `table` is `true`, or `{ workspace = true }`-like
    /// inheritance (`key.workspace = true` or `key = { workspace = true }`).
    fn inherits(&self, table: &[&str], key: &str) -> bool {
        let dotted = matches!(
            self.find(table, &[key, "workspace"]),
            Some((_, [Token::Bare(v), ..])) if v == "true"
        );
        let inline = matches!(
            self.find(table, &[key]),
            Some((_, [Token::Punct('{'), Token::Bare(k), Token::Punct('='), Token::Bare(v), ..]))
                if k == "workspace" && v == "true"
        );
        dotted || inline
    }

    /// How `[package]` states its version.
    pub(crate) fn package_version(&self) -> PkgVersion {
        if let Some(s) = self.find_str(&["package"], &["version"]) {
            PkgVersion::Literal(s)
        } else if self.inherits(&["package"], "version") {
            PkgVersion::Workspace
        } else {
            PkgVersion::Missing
        }
    }

    /// How `table` (`package` or `workspace.package`) states `publish`.
    pub(crate) fn publish(&self, table: &[&str]) -> Publish {
        if self.inherits(table, "publish") {
            return Publish::Inherit;
        }
        match self.find(table, &["publish"]) {
            Some((_, [Token::Bare(v), ..])) if v == "false" => Publish::No,
            Some((_, [Token::Punct('['), Token::Punct(']'), ..])) => Publish::No,
            _ => Publish::Yes,
        }
    }

    /// All strings of an array value, which may span several lines
    /// (e.g. `[workspace] members`).
    pub(crate) fn array_strings(&self, table: &[&str], key: &[&str]) -> Vec<String> {
        let Some((start, first)) = self.find(table, key) else {
            return Vec::new();
        };
        let rest = self
            .lines
            .iter()
            .filter(|l| l.continues == Some(start))
            .flat_map(|l| l.tokens.iter());
        first
            .iter()
            .chain(rest)
            .filter_map(|t| match t {
                Token::Str { value, .. } => Some(value.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every dependency that has a `path`, in any dependency table, whether
    /// written inline (`a = { path = ".." }`), dotted (`a.path = ".."`) or as
    /// its own table (`[dependencies.a]`).
    pub(crate) fn path_deps(&self) -> Vec<PathDep> {
        /// A dependency being collected: table, name, path, version.
        type Partial = (String, String, Option<String>, Option<StrRef>);
        let mut partial: Vec<Partial> = Vec::new();
        let mut record = |table: &[String],
                          name: &str,
                          key: &str,
                          line: usize,
                          value: &str,
                          content: Range<usize>| {
            let table = table.join(".");
            let index = match partial.iter().position(|p| p.0 == table && p.1 == name) {
                Some(i) => i,
                None => {
                    partial.push((table, name.to_owned(), None, None));
                    partial.len() - 1
                }
            };
            let entry = &mut partial[index];
            match key {
                "path" => entry.2 = Some(value.to_owned()),
                "version" => {
                    entry.3 = Some(StrRef {
                        line,
                        content,
                        value: value.to_owned(),
                    });
                }
                _ => {}
            }
        };
        for (i, line) in self.lines.iter().enumerate() {
            let LineKind::KeyValue { key } = &line.kind else {
                continue;
            };
            if is_dep_table(&line.table) {
                match key.as_slice() {
                    [name] => {
                        for (k, value, content) in inline_table_strings(&line.tokens) {
                            record(&line.table, name, &k, i, &value, content);
                        }
                    }
                    [name, k] => {
                        if let [Token::Str { value, content }, ..] = line.tokens.as_slice() {
                            record(&line.table, name, k, i, value, content.clone());
                        }
                    }
                    _ => {}
                }
            } else if let Some((name, parent)) = line.table.split_last()
                && is_dep_table(parent)
                && let ([k], [Token::Str { value, content }, ..]) =
                    (key.as_slice(), line.tokens.as_slice())
            {
                record(parent, name, k, i, value, content.clone());
            }
        }
        partial
            .into_iter()
            .filter_map(|(table, name, path, version)| {
                path.map(|path| PathDep {
                    name,
                    table,
                    path,
                    version,
                })
            })
            .collect()
    }
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

/// Lexically normalises a relative path (`a/./b/../c` → `a/c`).
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
/// `=`, `^` or `~` of the old requirement when it was a single comparator.
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
    /// Its scanned manifest.
    manifest: Manifest,
    /// Its package name (or its directory when unnamed).
    name: String,
    /// How it states its version (`None`: no `[package]`, a virtual root).
    version: Option<PkgVersion>,
    /// Whether it may be published.
    publishable: bool,
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
/// anyway). Fails when no publishable crate would get the version, or when a
/// member inherits a version that `[workspace.package]` does not define.
pub(crate) fn plan(root: &str, members: &[ManifestInput], version: &str) -> Result<Plan, String> {
    let root_manifest = Manifest::parse(root);
    let workspace_version = root_manifest.find_str(&["workspace", "package"], &["version"]);
    let workspace_publish_false = root_manifest.publish(&["workspace", "package"]) == Publish::No;

    let inputs = std::iter::once((PathBuf::new(), root)).chain(
        members
            .iter()
            .filter(|m| !m.dir.as_os_str().is_empty())
            .map(|m| (normalize(&m.dir), m.text.as_str())),
    );
    let mut all = Vec::new();
    for (dir, text) in inputs {
        let manifest = Manifest::parse(text);
        let is_package = manifest.has_table(&["package"]);
        let name = manifest
            .find_str(&["package"], &["name"])
            .map_or_else(|| dir.display().to_string(), |s| s.value);
        let version_kind = is_package.then(|| manifest.package_version());
        let publishable = is_package
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
        let mut edits: Vec<(StrRef, String)> = Vec::new();
        let mut changes = Vec::new();
        if index == 0
            && let Some(s) = &workspace_version
        {
            changes.push(format!(
                "[workspace.package] version {} -> {version}",
                s.value
            ));
            edits.push((s.clone(), version.to_owned()));
        }
        match &member.version {
            Some(PkgVersion::Literal(s)) if member.publishable => {
                changes.push(format!(
                    "[package] version of {} {} -> {version}",
                    member.name, s.value
                ));
                edits.push((s.clone(), version.to_owned()));
            }
            Some(PkgVersion::Literal(s)) => notes.push(format!(
                "left {} at its own version {} (not publishable)",
                member.name, s.value
            )),
            _ => {}
        }
        for dep in member.manifest.path_deps() {
            let Some(old) = dep.version else { continue };
            let target = normalize(&member.dir.join(&dep.path));
            match all.iter().find(|m| m.dir == target) {
                Some(t) if t.gets_version(has_workspace_version) => {
                    let new = new_requirement(&old.value, version);
                    changes.push(format!(
                        "[{}] {} version \"{}\" -> \"{new}\"",
                        dep.table, dep.name, old.value
                    ));
                    edits.push((old, new));
                }
                Some(t) => notes.push(format!(
                    "left [{}] {} at version \"{}\" in {}: `{}` does not get the new version",
                    dep.table,
                    dep.name,
                    old.value,
                    manifest_label(&member.dir),
                    t.name
                )),
                None => notes.push(format!(
                    "left [{}] {} at version \"{}\" in {}: path `{}` is not a workspace member",
                    dep.table,
                    dep.name,
                    old.value,
                    manifest_label(&member.dir),
                    dep.path
                )),
            }
        }
        if !edits.is_empty() {
            let text = if index == 0 {
                root
            } else {
                members
                    .iter()
                    .find(|m| normalize(&m.dir) == member.dir)
                    .map_or("", |m| m.text.as_str())
            };
            files.push(FilePlan {
                dir: member.dir.clone(),
                new_text: apply(text, edits),
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

/// Replaces the content of each string in `edits` with its new value.
fn apply(text: &str, mut edits: Vec<(StrRef, String)>) -> String {
    // Right to left within a line, so earlier ranges stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse((e.0.line, e.0.content.start)));
    let mut lines: Vec<(String, &str)> = toml_lines::split_lines(text)
        .into_iter()
        .map(|(body, end)| (body.to_owned(), end))
        .collect();
    for (at, new) in edits {
        if let Some((body, _)) = lines.get_mut(at.line) {
            body.replace_range(at.content, &new);
        }
    }
    lines
        .into_iter()
        .flat_map(|(b, e)| [b, e.to_owned()])
        .collect()
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
    fn members_array_spanning_lines_is_read() {
        let manifest = Manifest::parse(ROOT);
        assert_eq!(
            manifest.array_strings(&["workspace"], &["members"]),
            vec!["crates/*", "xtask"]
        );
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
