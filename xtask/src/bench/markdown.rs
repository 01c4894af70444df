//! The generated section of `docs/benchmarks.md`: the facts of the run and one table per
//! scenario.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::bench_report as report;
use crate::process;

/// What the document says about the machine and the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The command as typed.
    pub(crate) command: String,
    /// When the run ended.
    pub(crate) date: String,
    /// Cores, CPU model, memory, kernel.
    pub(crate) machine: String,
    /// The servers and their versions.
    pub(crate) servers: String,
    /// Runs per server.
    pub(crate) runs: usize,
    /// How long the whole command took, and the builds.
    pub(crate) took: String,
    /// Whether the sizes are those of `--quick`.
    pub(crate) quick: bool,
}

/// The machine line: `nproc`, the CPU model, the memory and `uname -sr`.
pub(crate) fn machine() -> String {
    let cores = first_line(&mut Command::new("nproc")).unwrap_or_else(|| "?".to_owned());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| report::cpu_model(&t))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| report::memory_total(&t))
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel =
        first_line(Command::new("uname").arg("-sr")).unwrap_or_else(|| "unknown".to_owned());
    format!("{cores} cores ({model}), {memory} memory, {kernel}")
}

/// The servers line: our git revision, the Node version.
pub(super) fn servers_line(root: &Path, peers: bool) -> String {
    let revision =
        first_line(
            Command::new("git")
                .current_dir(root)
                .args(["rev-parse", "--short", "HEAD"]),
        )
        .unwrap_or_else(|| "unknown revision".to_owned());
    let dirty = process::output(Command::new("git").current_dir(root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .is_ok_and(|out| !out.trim().is_empty());
    let mut line = format!(
        "ours = `cerebrum serve --rate-limit 0` at {revision}{}",
        if dirty {
            " with uncommitted changes"
        } else {
            ""
        }
    );
    if peers {
        let node = first_line(Command::new("node").arg("--version"))
            .unwrap_or_else(|| "unknown version".to_owned());
        let _ = write!(
            line,
            "; node-ws = the Node `ws` peer on Node {node}; rust-raw = the tokio-tungstenite peer"
        );
    }
    line
}

/// The generated section: the run's facts, then one table per scenario, then notes.
pub(crate) fn render_section(
    meta: &Meta,
    tables: &[(&ScenarioSpec, String)],
    notes: &[String],
) -> String {
    let mut out = format!("{}\n## Latest run\n\n", report::BEGIN);
    let _ = writeln!(out, "- Command: `{}`", meta.command);
    let _ = writeln!(out, "- Date: {}", meta.date);
    let _ = writeln!(out, "- Machine: {}", meta.machine);
    let _ = writeln!(out, "- Servers: {}", meta.servers);
    let _ = writeln!(
        out,
        "- Method: {} run(s) per server, each on a freshly started server running the \
         scenarios in the order below; load generator and server share the machine.",
        meta.runs
    );
    let _ = writeln!(
        out,
        "- Cells: median over the runs (min–max); `ours/peer` is the ratio of the medians \
         with the target (✓ met, ✗ not met): issue 7's, and issue 16's ≤ 1.0 on fan-out and rooms CPU."
    );
    if meta.quick {
        let _ = writeln!(
            out,
            "- Sizes: `--quick`, a smoke run far below the targets of issue 7: server CPU time \
             is read from /proc in 10 ms ticks, so the CPU figures are coarse here."
        );
    }
    let _ = writeln!(out, "- Took: {}", meta.took);
    for (spec, table) in tables {
        let (pid, server) = if spec.name == "storm" {
            (
                "",
                " --server-cmd \"cerebrum serve --addr ADDR --rate-limit 0 --data-dir DIR\"",
            )
        } else {
            ("--pid PID ", "")
        };
        // `slow` runs against a server started with flags of its own.
        let serve = if spec.name == "slow" {
            let capped = SLOW_SEND_BUFFERS
                .iter()
                .flatten()
                .map(|bytes| format!(" [--send-buffer {bytes}]"))
                .collect::<String>();
            format!(
                "`cerebrum serve --addr 127.0.0.1:0 --rate-limit 0 --data-dir DIR {}{capped}`, then ",
                SLOW_SERVE_ARGS.join(" ")
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "\n### {}\n\n{serve}`cerebrum bench --url URL {pid}{} {}{server}`\n\n{table}",
            spec.title,
            spec.name,
            spec.args.join(" ")
        );
    }
    if !notes.is_empty() {
        out.push_str("\n### Notes\n\n");
        for note in notes {
            let _ = writeln!(out, "- {}", report::cell_text(note));
        }
    }
    let _ = writeln!(out, "\n{}", report::END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_has_markers_facts_and_tables() {
        let meta = Meta {
            command: "cargo xtask bench --quick".into(),
            date: "2026-11-28 03:00 UTC".into(),
            machine: "2 cores".into(),
            servers: "ours".into(),
            runs: 3,
            took: "1 min 00 s".into(),
            quick: true,
        };
        let specs = scenarios(&QUICK);
        let slow = slow_spec(&QUICK);
        let tables = vec![
            (&specs[3], "| figure | ours |\n|---|---|\n".to_owned()),
            (
                &slow,
                "| figure | ours (kernel's send buffer) |\n|---|---|\n".to_owned(),
            ),
        ];
        let section = render_section(&meta, &tables, &["run 2: ours exited".to_owned()]);
        assert!(section.starts_with(&format!("{}\n## Latest run\n", report::BEGIN)));
        assert!(
            section.ends_with(&format!("\n{}\n", report::END)),
            "{section}"
        );
        for needle in [
            "- Command: `cargo xtask bench --quick`",
            "- Date: 2026-11-28 03:00 UTC",
            "- Machine: 2 cores",
            "- Sizes: `--quick`",
            "### ping: 100 connections × 10 pings/s, 2 s",
            "`cerebrum bench --url URL --pid PID ping --connections 100 --rate 10 --seconds 2`",
            "| figure | ours |",
            "### slow: 4 keys at 200 msg/s, 1 KiB payload, 4 s;",
            "`cerebrum serve --addr 127.0.0.1:0 --rate-limit 0 --data-dir DIR \
             --inbound-bytes-per-sec 0 --conflate latest=key [--send-buffer 16384]`, then \
             `cerebrum bench --url URL --pid PID slow --seconds 4`",
            "### Notes\n\n- run 2: ours exited",
        ] {
            assert!(section.contains(needle), "no {needle:?} in\n{section}");
        }
        // The section replaces itself in a document.
        let doc = report::replace_section(None, &section).unwrap();
        assert_eq!(report::replace_section(Some(&doc), &section).unwrap(), doc);
    }
}
