//! What the architecture ("tidy") tests of the sans-IO crates read: a crate's Rust sources and
//! the dependency names of its manifest.

use std::path::{Path, PathBuf};

/// Every kind of dependency table a manifest (or one of its `[target.'…']` tables) may have.
pub const ALL_DEPENDENCY_TABLES: &[&str] = &[
    "dependencies",
    "dev-dependencies",
    "dev_dependencies",
    "build-dependencies",
    "build_dependencies",
];

/// The `.rs` files below `dir`, recursively, in no particular order.
///
/// # Panics
/// When `dir` or an entry cannot be read (a test's setup is broken).
#[must_use]
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, &mut out);
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|err| panic!("{err}")).path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names of the dependencies the manifest declares in the tables named `tables`, at the
/// top and in every `[target.'…']` table (`[dependencies.x]` included).
///
/// ```
/// use cerebrum_testkit::tidy::{dependency_names, ALL_DEPENDENCY_TABLES};
/// let names = dependency_names(
///     "[package]\nname = \"x\"\n[dependencies]\ntokio = \"1\"\n[dev-dependencies.socket2]\nversion = \"1\"\n[target.'cfg(unix)'.dependencies]\nmio.version = \"1\"\n",
///     ALL_DEPENDENCY_TABLES,
/// );
/// assert_eq!(names, ["tokio", "socket2", "mio"]);
/// assert_eq!(dependency_names("[dev-dependencies]\nx = \"1\"\n", &["dependencies"]), Vec::<String>::new());
/// ```
///
/// # Panics
/// When `manifest` is not TOML.
#[must_use]
pub fn dependency_names(manifest: &str, tables: &[&str]) -> Vec<String> {
    let manifest: toml::Table = manifest
        .parse()
        .unwrap_or_else(|err| panic!("Cargo.toml: {err}"));
    let targets = manifest
        .get("target")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|targets| targets.values().filter_map(toml::Value::as_table));
    std::iter::once(&manifest)
        .chain(targets)
        .flat_map(|table| {
            tables
                .iter()
                .filter_map(|kind| table.get(*kind).and_then(toml::Value::as_table))
        })
        .flat_map(|deps| deps.keys().cloned())
        .collect()
}
