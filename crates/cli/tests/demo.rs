//! `cerebrum demo` end to end as a process, with stdout not a terminal: it starts the embedded
//! server and the students, prints the web dashboard's URL and a live log, and stops by itself
//! after `--duration`, exiting 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::process::Command;

#[test]
fn demo_runs_headless_for_its_duration_and_exits_cleanly() {
    let output = Command::new(env!("CARGO_BIN_EXE_cerebrum"))
        .args(["demo", "--duration", "6", "--students", "4", "--seed", "11"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("cerebrum demo: web dashboard at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("you: connected"), "{stdout}");
    assert!(stdout.contains("first live data"), "{stdout}");
    assert!(stdout.contains("system operational"), "{stdout}");
    assert!(stdout.contains("session "), "{stdout}");
    assert!(stdout.contains("starts studying"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("cerebrum demo: stopped"),
        "{stdout}"
    );
}

#[test]
fn demo_refuses_a_bad_duration() {
    let output = Command::new(env!("CARGO_BIN_EXE_cerebrum"))
        .args(["demo", "--duration", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
