//! `cargo xtask wasm [--check]`: the browser client's committed build outputs.
//!
//! Builds, from a clean state of the sources:
//!
//! 1. `crates/wasm` for `wasm32-unknown-unknown` twice (profile `wasm`, paths remapped so the
//!    bytes do not depend on the machine): feature `client` → `js/realtime/wasm/cerebrum_wasm*`,
//!    feature `mock` → `js/realtime/wasm/cerebrum_mock*`, each through the wasm-bindgen CLI
//!    (`--target web`), which must be exactly the version of `wasm-bindgen` in `Cargo.lock`.
//!    No wasm-opt: its output depends on its version, and the size target is met without it.
//! 2. The payload types `js/realtime/src/generated/protocol.ts`, generated from the Rust
//!    protocol types by the test `crates/wasm/tests/typescript.rs`.
//! 3. The dashboard's bundle `crates/server/web/realtime.js` (the package, esbuild, minified)
//!    and its `crates/server/web/wasm/cerebrum_wasm_bg.wasm`; needs `npm ci` in `js/`.
//!
//! Without `--check` the outputs are written into the tree; with it they are built into
//! `$CARGO_TARGET_DIR/xtask-wasm/` and compared, and any difference fails the command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{Error, cargo, output, run as run_command};
use crate::workspace::read;

const TARGET: &str = "wasm32-unknown-unknown";

/// One WebAssembly module of the package.
struct Module {
    /// The cargo feature of `cerebrum-wasm` it is built with.
    feature: &'static str,
    /// The wasm-bindgen `--out-name`.
    name: &'static str,
}

const MODULES: [Module; 2] = [
    Module {
        feature: "client",
        name: "cerebrum_wasm",
    },
    Module {
        feature: "mock",
        name: "cerebrum_mock",
    },
];

/// Runs `cargo xtask wasm [--check]`.
pub(crate) fn run(root: &Path, check: bool) -> Result<(), Error> {
    let target_dir = target_dir(root);
    let stage = target_dir.join("xtask-wasm");
    let out = |relative: &str| {
        if check {
            stage.join(relative)
        } else {
            root.join(relative)
        }
    };
    check_bindgen_version(root)?;
    let mut outputs = Vec::new();
    for module in &MODULES {
        build_module(root, &target_dir, module, &out("js/realtime/wasm"))?;
        for suffix in [".js", ".d.ts", "_bg.wasm", "_bg.wasm.d.ts"] {
            outputs.push(format!("js/realtime/wasm/{}{suffix}", module.name));
        }
    }
    // In check mode the generator test itself fails if the committed types drifted.
    generate_types(root, !check)?;
    bundle_dashboard(
        root,
        &out("crates/server/web"),
        &out("js/realtime/wasm/cerebrum_wasm_bg.wasm"),
    )?;
    outputs.push("crates/server/web/realtime.js".to_owned());
    outputs.push("crates/server/web/wasm/cerebrum_wasm_bg.wasm".to_owned());
    if !check {
        println!("xtask wasm: wrote {}", outputs.join(", "));
        return Ok(());
    }
    let mut differ = Vec::new();
    for relative in &outputs {
        let fresh = std::fs::read(stage.join(relative))
            .map_err(|e| Error::Failed(format!("cannot read the fresh {relative}: {e}")))?;
        let committed = std::fs::read(root.join(relative)).unwrap_or_default();
        if fresh != committed {
            differ.push(relative.clone());
        }
    }
    if differ.is_empty() {
        println!(
            "xtask wasm --check: the committed assets match a fresh build ({} files)",
            outputs.len() + 1
        );
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "the committed assets differ from a fresh build: {} (run `cargo xtask wasm` and commit)",
            differ.join(", ")
        )))
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The version of `wasm-bindgen` that `Cargo.lock` pins.
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            let version = lines.next()?.trim();
            return version
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

fn check_bindgen_version(root: &Path) -> Result<(), Error> {
    let lock = read(&root.join("Cargo.lock"))?;
    let locked = locked_version(&lock, "wasm-bindgen")
        .ok_or_else(|| Error::Failed("Cargo.lock has no wasm-bindgen".to_owned()))?;
    let installed = output(Command::new("wasm-bindgen").arg("--version")).map_err(|_| {
        Error::Failed(format!(
            "the wasm-bindgen CLI is missing: cargo install wasm-bindgen-cli --version {locked}"
        ))
    })?;
    // `wasm-bindgen 0.2.130`
    if installed.split_whitespace().nth(1) != Some(locked.as_str()) {
        return Err(Error::Failed(format!(
            "wasm-bindgen CLI is `{}`, Cargo.lock has {locked}: cargo install wasm-bindgen-cli --version {locked}",
            installed.trim()
        )));
    }
    Ok(())
}

fn build_module(
    root: &Path,
    target_dir: &Path,
    module: &Module,
    out_dir: &Path,
) -> Result<(), Error> {
    let cargo_home = std::env::var_os("CARGO_HOME").map_or_else(
        || {
            std::env::var_os("HOME").map_or_else(
                || PathBuf::from(".cargo"),
                |h| PathBuf::from(h).join(".cargo"),
            )
        },
        PathBuf::from,
    );
    // The same bytes on every machine: no absolute path of this clone or of the registry
    // reaches the module (panic locations name source files).
    let rustflags = format!(
        "--remap-path-prefix={}=/cargo --remap-path-prefix={}=/src",
        cargo_home.display(),
        root.display()
    );
    run_command(
        Command::new(cargo())
            .current_dir(root)
            .env("CARGO_ENCODED_RUSTFLAGS", rustflags.replace(' ', "\u{1f}"))
            .args([
                "build",
                "--locked",
                "-p",
                "cerebrum-wasm",
                "--target",
                TARGET,
            ])
            .args([
                "--profile",
                "wasm",
                "--no-default-features",
                "--features",
                module.feature,
            ]),
    )?;
    let wasm = target_dir
        .join(TARGET)
        .join("wasm")
        .join("cerebrum_wasm.wasm");
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", out_dir.display())))?;
    run_command(
        Command::new("wasm-bindgen")
            .arg("--target")
            .arg("web")
            .arg("--out-dir")
            .arg(out_dir)
            .arg("--out-name")
            .arg(module.name)
            // Function names are for debuggers; they are a quarter of the module.
            .arg("--remove-name-section")
            .arg(&wasm),
    )
}

/// Runs the generator test: with `bless` it rewrites the committed types, without it fails if
/// they differ from what the Rust types generate.
fn generate_types(root: &Path, bless: bool) -> Result<(), Error> {
    let mut command = Command::new(cargo());
    command.current_dir(root).args([
        "test",
        "--locked",
        "-p",
        "cerebrum-wasm",
        "--test",
        "typescript",
    ]);
    if bless {
        command.env("CEREBRUM_BLESS", "1");
    }
    run_command(&mut command)
}

fn bundle_dashboard(root: &Path, web_dir: &Path, wasm: &Path) -> Result<(), Error> {
    let js = root.join("js");
    let esbuild = js.join("node_modules/.bin/esbuild");
    if !esbuild.is_file() {
        return Err(Error::Failed(format!(
            "{} is missing: run `npm ci` in js/ first",
            esbuild.display()
        )));
    }
    let wasm_dir = web_dir.join("wasm");
    std::fs::create_dir_all(&wasm_dir)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", wasm_dir.display())))?;
    run_command(
        Command::new(&esbuild)
            .current_dir(&js)
            .arg("realtime/src/index.ts")
            .args([
                "--bundle",
                "--format=esm",
                "--platform=browser",
                "--target=es2022",
            ])
            .args(["--minify", "--legal-comments=none", "--log-level=warning"])
            .arg("--external:node:*")
            // The mock module is loaded only in mock mode, which the dashboard never uses.
            .arg("--external:./mock.js")
            // Likewise the MessagePack codec (`encoding: 'msgpack'`), which the dashboard never asks for.
            .arg("--external:./msgpack.js")
            .arg(format!(
                "--outfile={}",
                web_dir.join("realtime.js").display()
            )),
    )?;
    std::fs::copy(wasm, wasm_dir.join("cerebrum_wasm_bg.wasm"))
        .map(|_| ())
        .map_err(|e| Error::Failed(format!("cannot copy {}: {e}", wasm.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locked_version_is_read_from_cargo_lock() {
        let lock = "[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(locked_version(lock, "js-sys"), None);
    }
}
