//! The browser end-to-end tests: the web dashboard (`e2e/dashboard.test.mjs`) and permessage-deflate
//! with Node `ws` and Chromium (`e2e/compression.test.mjs`), real headless
//! Chromium driven by playwright-core against this build's `cerebrum serve`.
//!
//! It needs Debian's `chromium` (`/usr/bin/chromium`, or `CHROMIUM_PATH`), Node.js, and
//! `npm ci` run in `e2e/`; `.ci/run` installs all three and sets `E2E_REQUIRE_BROWSER=1`, which
//! turns a missing piece into a failure. Locally, without them, the test says loudly that it
//! was skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests report on stderr

use std::path::{Path, PathBuf};
use std::process::Command;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

fn missing_piece() -> Option<String> {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("Chromium not found at {chromium}"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node not found".into());
    }
    if !e2e_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core not installed (run `npm ci` in e2e/)".into());
    }
    None
}

#[test]
fn web_dashboard_in_headless_chromium() {
    if let Some(missing) = missing_piece() {
        let required = std::env::var("E2E_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the browser end-to-end test is required but cannot run: {missing}"
        );
        let line = format!("!!! BROWSER END-TO-END TEST SKIPPED: {missing} !!!");
        eprintln!(
            "\n{}\n{line}\n{}\n",
            "!".repeat(line.len()),
            "!".repeat(line.len())
        );
        return;
    }
    let output = Command::new("node")
        .args([
            "--test",
            "--test-reporter=spec",
            "dashboard.test.mjs",
            "compression.test.mjs",
        ])
        .current_dir(e2e_dir())
        .env("CEREBRUM_BIN", env!("CARGO_BIN_EXE_cerebrum"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    // Both files ran and passed (node's summary: "pass 2", "fail 0").
    assert!(stdout.contains("pass 2"), "{stdout}");
    assert!(stdout.contains("fail 0"), "{stdout}");
    let screenshot = e2e_dir().join("artifacts/dashboard.png");
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!("screenshot: {}", screenshot.display());
}
