//! Architecture invariant: the core is sans-IO. No async runtime, no socket, no clock, no
//! threads — checked on the manifest and the sources, so plain `cargo test` enforces it.

use std::fs;
use std::path::PathBuf;

use cerebrum_testkit::tidy::{ALL_DEPENDENCY_TABLES, dependency_names, rust_files};

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

#[test]
fn the_manifest_has_no_runtime_or_socket_dependency() {
    let manifest = fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap_or_default();
    let names = dependency_names(&manifest, ALL_DEPENDENCY_TABLES);
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
    let files = rust_files(&crate_dir().join("src"));
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
        ALL_DEPENDENCY_TABLES,
    );
    assert_eq!(names, ["tokio", "socket2", "mio"]);
}
