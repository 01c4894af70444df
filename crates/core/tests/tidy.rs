//! Architecture invariant: the core is sans-IO. No async runtime, no socket, no clock, no
//! threads — checked on the manifest and the sources, so plain `cargo test` enforces it.

use std::fs;
use std::path::{Path, PathBuf};

const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "futures",
    "mio",
    "socket2",
    "tungstenite",
    "async-io",
];

const FORBIDDEN_CALLS: &[&str] = &[
    "Instant::now(",
    "SystemTime::now(",
    "std::thread::spawn",
    "thread::spawn(",
    "std::net",
    "thread::sleep",
    "tokio::",
    "async fn",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|err| panic!("{err}")).path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The kinds of dependency table a manifest (or one of its `[target.'…']` tables) may have.
const DEPENDENCY_TABLES: &[&str] = &[
    "dependencies",
    "dev-dependencies",
    "dev_dependencies",
    "build-dependencies",
    "build_dependencies",
];

/// The names of the dependencies declared in every dependency table of the manifest
/// (`[dependencies]`, `[dev-dependencies]`, `[target.'…'.dependencies]`, `[dependencies.x]`).
fn dependency_names(manifest: &str) -> Vec<String> {
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
            DEPENDENCY_TABLES
                .iter()
                .filter_map(|kind| table.get(*kind).and_then(toml::Value::as_table))
        })
        .flat_map(|deps| deps.keys().cloned())
        .collect()
}

#[test]
fn the_manifest_has_no_runtime_or_socket_dependency() {
    let manifest = fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap_or_default();
    let names = dependency_names(&manifest);
    assert!(names.iter().any(|n| n == "cerebrum-protocol"), "{names:?}");
    for name in &names {
        for forbidden in FORBIDDEN_DEPENDENCIES {
            assert!(
                !name.starts_with(forbidden),
                "cerebrum-core must stay sans-IO: dependency `{name}` is not allowed"
            );
        }
    }
}

#[test]
fn the_sources_read_no_clock_open_no_socket_and_spawn_nothing() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    assert!(files.len() >= 5, "sources not found: {files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            for forbidden in FORBIDDEN_CALLS {
                // Everywhere, doc examples and unit tests included: instants come from the owner.
                if line.contains(forbidden) {
                    panic!(
                        "{}:{}: `{forbidden}` is not allowed in the sans-IO core",
                        file.display(),
                        n + 1
                    );
                }
            }
        }
    }
}

#[test]
fn the_dependency_parser_sees_what_it_must() {
    let names = dependency_names(
        "[package]\nname = \"x\"\n[dependencies]\ntokio = \"1\"\n[dev-dependencies.socket2]\nversion = \"1\"\n[target.'cfg(unix)'.dependencies]\nmio.version = \"1\"\n",
    );
    assert_eq!(names, ["tokio", "socket2", "mio"]);
}
