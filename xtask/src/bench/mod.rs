//! `cargo xtask bench`: builds `cerebrum` (and with `--peers` the two peer servers of
//! `../shared/bench-peers/`), runs every `cerebrum bench` scenario against each server in
//! turn, started fresh for every run, and writes the side-by-side tables to the generated
//! section of `docs/benchmarks.md`.

mod markdown;
mod peers;
mod sizes;
mod supervise;

pub(crate) use markdown::*;
pub(crate) use peers::*;
pub(crate) use sizes::*;
pub(crate) use supervise::*;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cerebrum_bench::report::ReportLine;

use crate::bench_report::{self as report, Column, RunResult};
use crate::process::Error;

/// The arguments of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct BenchArgs {
    /// Also build and run the Node `ws` and tokio-tungstenite peers of ../shared/bench-peers
    /// (into TARGET/bench-peers), with ratios ours/peer.
    #[arg(long)]
    pub(crate) peers: bool,
    /// Runs per server, each with a fresh server (1 to 100).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RUNS, value_parser = parse_runs)]
    pub(crate) runs: usize,
    /// Small sizes: ~30 s per server once built.
    #[arg(long)]
    pub(crate) quick: bool,
    /// The document to write (relative to the workspace root unless absolute).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_OUT)]
    pub(crate) out: PathBuf,
}

/// The runs per server unless `--runs` says otherwise.
pub(crate) const DEFAULT_RUNS: usize = 3;
/// The document unless `--out` says otherwise.
pub(crate) const DEFAULT_OUT: &str = "docs/benchmarks.md";

impl Default for BenchArgs {
    fn default() -> Self {
        Self {
            peers: false,
            runs: DEFAULT_RUNS,
            quick: false,
            out: PathBuf::from(DEFAULT_OUT),
        }
    }
}

/// Parses the value of `--runs`: a whole number from 1 to 100.
pub(crate) fn parse_runs(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n @ 1..=100) => Ok(n),
        _ => Err(format!(
            "--runs needs a whole number from 1 to 100, got `{value}`"
        )),
    }
}

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    /// `cerebrum serve`.
    Ours,
    /// The Node `ws` peer.
    NodeWs,
    /// The tokio-tungstenite peer.
    RustRaw,
}

impl Server {
    /// The name in tables and messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ours => report::OURS,
            Self::NodeWs => "node-ws",
            Self::RustRaw => "rust-raw",
        }
    }
}

/// The target directory: `$CARGO_TARGET_DIR` (relative to the root if relative), else
/// `target/` in the root.
pub(crate) fn target_dir(root: &Path, env: Option<OsString>) -> PathBuf {
    match env.filter(|dir| !dir.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The `HOST:PORT` of a `ws://HOST:PORT/path` URL. (Hand-written: it is the URL `cerebrum
/// serve` printed, `ws://IP:PORT/ws`; the `url` crate would bring IDNA tables into xtask for
/// one split.)
pub(crate) fn host_port(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("ws://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(&rest[..end]).filter(|hp| hp.contains(':'))
}

/// The numeric figures of the last stdout line of `cerebrum bench SCENARIO` (read with the
/// report types of `cerebrum-bench`, which wrote it).
pub(crate) fn parse_bench_stdout(
    stdout: &str,
    scenario: &str,
) -> Result<Vec<(String, f64)>, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| "the load generator printed nothing".to_owned())?;
    let report = ReportLine::parse(line).map_err(|e| format!("bad JSON line `{line}`: {e}"))?;
    if report.scenario != scenario {
        return Err(format!(
            "the JSON line is not of scenario {scenario}: `{line}`"
        ));
    }
    Ok(report
        .numbers()
        .map(|(name, value)| (name.to_owned(), value))
        .collect())
}

/// A duration for people: `42 s`, `5 min 03 s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64().round() as u64;
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min {:02} s", secs / 60, secs % 60)
    }
}

/// The load generator's command line for `spec` against `url`, `pid`.
fn bench_command(cerebrum: &Path, url: &str, pid: u32, spec: &ScenarioSpec) -> Command {
    let mut command = Command::new(cerebrum);
    command
        .args(["bench", "--url", url, "--pid", &pid.to_string(), spec.name])
        .args(&spec.args);
    command
}

/// Runs one scenario against a running server.
fn run_scenario(cerebrum: &Path, running: &mut Running, spec: &ScenarioSpec) -> RunResult {
    if let Some(why) = running.exited() {
        return Err(format!("before the scenario: {why}"));
    }
    let mut command = bench_command(cerebrum, running.url(), running.pid(), spec);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, stdout, stderr) = run_within(&mut command, spec.budget)?;
    let server_gone = running.exited();
    let Some(status) = status else {
        return Err(format!(
            "the load generator timed out after {} s",
            spec.budget.as_secs()
        ));
    };
    if !status.success() {
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        let mut why = format!("load generator {status}: {}", last.trim());
        if let Some(gone) = server_gone {
            let _ = write!(why, "; {gone}");
        }
        return Err(why);
    }
    if let Some(gone) = server_gone {
        return Err(format!("during the scenario: {gone}"));
    }
    parse_bench_stdout(&stdout, spec.name)
}

/// Runs `storm` with a server of ours that the load generator starts and restarts itself.
fn run_storm(cerebrum: &Path, target: &Path, run: usize, spec: &ScenarioSpec) -> RunResult {
    let port = free_port()?;
    let dir = target.join("bench-data").join(format!("storm-run{run}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let server_cmd = format!(
        "'{}' serve --addr 127.0.0.1:{port} --rate-limit 0 --data-dir '{}'",
        cerebrum.display(),
        dir.display()
    );
    let mut command = Command::new(cerebrum);
    command
        .args([
            "bench",
            "--url",
            &format!("ws://127.0.0.1:{port}/ws"),
            spec.name,
        ])
        .args(&spec.args)
        .arg("--server-cmd")
        .arg(server_cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, stdout, stderr) = run_within(&mut command, spec.budget)?;
    let _ = fs::remove_dir_all(&dir);
    match status {
        None => Err(format!(
            "the load generator timed out after {} s",
            spec.budget.as_secs()
        )),
        Some(status) if !status.success() => Err(format!(
            "load generator {status}: {}",
            stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
                .trim()
        )),
        Some(_) => parse_bench_stdout(&stdout, spec.name),
    }
}

/// Runs `slow` against a fresh server of ours that conflates its channel, with the kernel's
/// send buffer or `send_buffer`.
fn run_slow(
    cerebrum: &Path,
    target: &Path,
    run: usize,
    send_buffer: Option<usize>,
    spec: &ScenarioSpec,
) -> RunResult {
    let mut serve_args: Vec<OsString> = SLOW_SERVE_ARGS.iter().map(OsString::from).collect();
    if let Some(bytes) = send_buffer {
        serve_args.push("--send-buffer".into());
        serve_args.push(bytes.to_string().into());
    }
    let launch = Launch {
        server: Server::Ours,
        program: cerebrum.to_path_buf(),
        args: Vec::new(),
        serve_args,
    };
    let name = format!(
        "slow-{}-run{run}",
        send_buffer.map_or_else(|| "kernel".to_owned(), |b| b.to_string())
    );
    let mut running = launch
        .start_named(target, &name)
        .map_err(|why| format!("server did not start: {why}"))?;
    let result = run_scenario(cerebrum, &mut running, spec);
    if let Err(why) = running.stop() {
        println!("==> bench {name}: warning: {why}");
    }
    result
}

/// A progress line for one scenario run.
fn progress(spec: &ScenarioSpec, result: &RunResult) -> String {
    match result {
        Err(why) => format!("failed: {why}"),
        Ok(figures) => spec
            .rows
            .iter()
            .map(|row| {
                let value = figures
                    .iter()
                    .find(|(k, _)| k == row.key)
                    .map_or_else(|| "–".to_owned(), |(_, v)| report::format_number(*v));
                format!("{} {value}", row.label)
            })
            .collect::<Vec<_>>()
            .join(" · "),
    }
}

/// Runs `cargo xtask bench`; `command` is the command line as typed, for the document.
pub(crate) fn run(root: &Path, args: &BenchArgs, command: &str) -> Result<(), Error> {
    let started = Instant::now();
    let target = target_dir(root, std::env::var_os("CARGO_TARGET_DIR"));
    let out = root.join(&args.out);
    let shared = root
        .parent()
        .unwrap_or(root)
        .join("shared")
        .join("bench-peers");
    if args.peers && !shared.is_dir() {
        return Err(Error::Failed(format!(
            "--peers needs the peers in {}",
            shared.display()
        )));
    }
    let specs = scenarios(if args.quick { &QUICK } else { &FULL });

    let cerebrum = build_ours(root, &target)?;
    let mut launches = vec![Ok(Launch {
        server: Server::Ours,
        program: cerebrum.clone(),
        args: Vec::new(),
        serve_args: Vec::new(),
    })];
    if args.peers {
        launches.push(build_node_ws(&shared, &target).map_err(|e| (Server::NodeWs, e)));
        launches.push(build_rust_raw(&shared, &target).map_err(|e| (Server::RustRaw, e)));
    }
    let built = started.elapsed();

    let mut notes = Vec::new();
    let mut columns: Vec<Vec<Column>> = specs.iter().map(|_| Vec::new()).collect();
    for launch in &launches {
        let server = match launch {
            Ok(launch) => launch.server,
            Err((server, why)) => {
                println!("==> bench {}: build failed: {why}", server.name());
                *server
            }
        };
        let mut results: Vec<Vec<RunResult>> = specs.iter().map(|_| Vec::new()).collect();
        for run in 1..=args.runs {
            let label = format!("==> bench {} run {run}/{}", server.name(), args.runs);
            let running = match launch {
                Err((_, why)) => Err(format!("build: {why}")),
                Ok(launch) => launch.start(&target, run).map_err(|why| {
                    println!("{label}: server did not start: {why}");
                    format!("server did not start: {why}")
                }),
            };
            match running {
                Err(why) => results.iter_mut().for_each(|r| r.push(Err(why.clone()))),
                Ok(mut running) => {
                    println!("{label}: {} (pid {})", running.url(), running.pid());
                    for (spec, runs) in specs.iter().zip(&mut results) {
                        let begun = Instant::now();
                        let result = run_scenario(&cerebrum, &mut running, spec);
                        println!(
                            "{label} {} ({}): {}",
                            spec.name,
                            format_duration(begun.elapsed()),
                            progress(spec, &result)
                        );
                        runs.push(result);
                    }
                    if let Err(why) = running.stop() {
                        println!("{label}: warning: {why}");
                        notes.push(format!("run {run}: {why}"));
                    }
                }
            }
        }
        for (scenario, runs) in columns.iter_mut().zip(results) {
            scenario.push(Column {
                server: server.name().to_owned(),
                runs,
            });
        }
    }

    // The storm: ours only, its server started and restarted by the load generator.
    let storm = storm_spec(if args.quick { &QUICK } else { &FULL });
    let mut storm_runs = Vec::new();
    for run in 1..=args.runs {
        let label = format!("==> bench {} run {run}/{}", report::OURS, args.runs);
        let begun = Instant::now();
        let result = match &launches[0] {
            Ok(_) => run_storm(&cerebrum, &target, run, &storm),
            Err((_, why)) => Err(format!("build: {why}")),
        };
        println!(
            "{label} storm ({}): {}",
            format_duration(begun.elapsed()),
            progress(&storm, &result)
        );
        storm_runs.push(result);
    }
    let storm_columns = vec![Column {
        server: report::OURS.to_owned(),
        runs: storm_runs,
    }];
    columns.push(storm_columns);
    let mut specs = specs;
    specs.push(storm);

    // Slow readers (issue 16 item 5): ours only, a fresh server per run and send buffer.
    let slow = slow_spec(if args.quick { &QUICK } else { &FULL });
    let mut slow_columns = Vec::new();
    for &send_buffer in SLOW_SEND_BUFFERS {
        let name = slow_column_name(send_buffer);
        let mut runs = Vec::new();
        for run in 1..=args.runs {
            let label = format!("==> bench {name} run {run}/{}", args.runs);
            let begun = Instant::now();
            let result = match &launches[0] {
                Ok(_) => run_slow(&cerebrum, &target, run, send_buffer, &slow),
                Err((_, why)) => Err(format!("build: {why}")),
            };
            println!(
                "{label} slow ({}): {}",
                format_duration(begun.elapsed()),
                progress(&slow, &result)
            );
            runs.push(result);
        }
        slow_columns.push(Column { server: name, runs });
    }
    columns.push(slow_columns);
    specs.push(slow);

    let failed = columns
        .iter()
        .flatten()
        .flat_map(|c| &c.runs)
        .filter(|r| r.is_err())
        .count();
    let total: usize = columns.iter().flatten().map(|c| c.runs.len()).sum();
    let meta = Meta {
        command: command.to_owned(),
        date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
            .unwrap_or_else(|| "unknown".to_owned()),
        machine: machine(),
        servers: servers_line(root, args.peers),
        runs: args.runs,
        quick: args.quick,
        took: format!(
            "{} in all, of which {} building",
            format_duration(started.elapsed()),
            format_duration(built)
        ),
    };
    let tables: Vec<(&ScenarioSpec, String)> = specs
        .iter()
        .zip(&columns)
        .map(|(spec, columns)| (spec, report::scenario_table(columns, spec.rows)))
        .collect();
    let section = render_section(&meta, &tables, &notes);
    println!("\n{section}");

    let existing = match fs::read_to_string(&out) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::Failed(format!("cannot read {}: {e}", out.display()))),
    };
    let document = report::replace_section(existing.as_deref(), &section)
        .map_err(|e| Error::Failed(format!("{}: {e}", out.display())))?;
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| Error::Failed(format!("cannot create {}: {e}", parent.display())))?;
    }
    fs::write(&out, document)
        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", out.display())))?;
    println!("==> bench: wrote {} ({})", out.display(), meta.took);
    if failed > 0 {
        return Err(Error::Failed(format!(
            "{failed} of {total} scenario runs failed (recorded in {})",
            out.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_must_be_a_small_positive_number() {
        assert_eq!(parse_runs("1"), Ok(1));
        assert_eq!(parse_runs("100"), Ok(100));
        for bad in ["0", "101", "-1", "x", "", "2.5"] {
            assert!(parse_runs(bad).unwrap_err().contains("--runs"), "{bad}");
        }
    }

    #[test]
    fn target_dir_and_urls() {
        let root = Path::new("/w");
        assert_eq!(target_dir(root, None), PathBuf::from("/w/target"));
        assert_eq!(
            target_dir(root, Some("".into())),
            PathBuf::from("/w/target")
        );
        assert_eq!(target_dir(root, Some("t2".into())), PathBuf::from("/w/t2"));
        assert_eq!(
            target_dir(root, Some("/cache/t".into())),
            PathBuf::from("/cache/t")
        );
        assert_eq!(host_port("ws://127.0.0.1:4242/ws"), Some("127.0.0.1:4242"));
        assert_eq!(host_port("ws://127.0.0.1:4242"), Some("127.0.0.1:4242"));
        assert_eq!(host_port("ws://localhost/ws"), None);
        assert_eq!(host_port("http://127.0.0.1:1/"), None);
    }

    #[test]
    fn bench_stdout_is_read_from_its_last_line() {
        let stdout = "scenario  ping\np99_ms  0.430\n{\"scenario\":\"ping\",\"connections\":100,\"p99_ms\":0.43}\n\n";
        assert_eq!(
            parse_bench_stdout(stdout, "ping"),
            Ok(vec![
                ("connections".to_owned(), 100.0),
                ("p99_ms".to_owned(), 0.43)
            ])
        );
        let err = parse_bench_stdout(stdout, "fanout").unwrap_err();
        assert!(err.contains("not of scenario fanout"), "{err}");
        let err = parse_bench_stdout("{\"connections\":1}", "ping").unwrap_err();
        assert!(err.contains("missing field `scenario`"), "{err}");
        let err = parse_bench_stdout("", "ping").unwrap_err();
        assert!(err.contains("printed nothing"), "{err}");
        let err = parse_bench_stdout("a table\n", "ping").unwrap_err();
        assert!(err.contains("bad JSON line"), "{err}");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(format_duration(Duration::from_millis(41_600)), "42 s");
        assert_eq!(format_duration(Duration::from_secs(303)), "5 min 03 s");
    }
}
