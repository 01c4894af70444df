//! Architecture invariant: the server core is sans-IO. No async runtime, no socket, no clock,
//! no thread, no database, no global random number generator — checked on the manifest and
//! the sources, so plain `cargo test` enforces it.
//!
//! Unit tests (`#[cfg(test)]` modules, `tests.rs`, `testing.rs`) and doc examples stand for the
//! owner, which reads the clocks: they may; the library code may not.

use std::fs;
use std::path::PathBuf;

use cerebrum_testkit::tidy::{dependency_names, rust_files};

const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "futures",
    "mio",
    "socket2",
    "tungstenite",
    "axum",
    "hyper",
    "redis",
    "rusqlite",
    "postgres",
    "async-trait",
];

const FORBIDDEN_CALLS: &[&str] = &[
    "Instant::now(",
    "SystemTime::now(",
    "std::thread",
    "thread::spawn(",
    "thread::sleep",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::fs",
    "tokio::",
    "async fn",
    ".await",
    "fastrand::u",
    "fastrand::f",
    "fastrand::i",
    "available_parallelism",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_manifest_has_no_runtime_socket_or_database_dependency() {
    let manifest = fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap_or_default();
    let names = dependency_names(&manifest, &["dependencies"]);
    assert!(names.iter().any(|n| n == "cerebrum-protocol"), "{names:?}");
    for name in &names {
        for forbidden in FORBIDDEN_DEPENDENCIES {
            assert!(
                !name.starts_with(forbidden),
                "cerebrum-server-core must stay sans-IO: dependency `{name}` is not allowed"
            );
        }
    }
}

#[test]
fn the_library_code_reads_no_clock_opens_nothing_and_spawns_nothing() {
    let files = rust_files(&crate_dir().join("src"));
    assert!(files.len() >= 10, "sources not found: {files:?}");
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "tests.rs" || name == "testing.rs" {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                // The unit tests at the end of the file.
                break;
            }
            let trimmed = line.trim_start();
            if trimmed.starts_with("///") || trimmed.starts_with("//!") {
                continue;
            }
            for forbidden in FORBIDDEN_CALLS {
                assert!(
                    !line.contains(forbidden),
                    "{}:{}: `{forbidden}` is not allowed in the sans-IO server core",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn the_checks_see_what_they_must() {
    let names = dependency_names(
        "[package]\nname = \"x\"\n[dependencies]\ntokio = \"1\"\n[target.'cfg(unix)'.dependencies]\nredis.version = \"1\"\n",
        &["dependencies"],
    );
    assert_eq!(names, ["tokio", "redis"]);
}
