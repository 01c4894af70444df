//! `cargo xtask bench-cluster`: fan-out through Redis with 1, 2 and 3 `cerebrum serve --redis`
//! nodes against the single in-memory node, with `cerebrum bench fanout --node …`, written
//! between the `<!-- cluster:begin -->` and `<!-- cluster:end -->` markers of
//! `docs/benchmarks.md`. With `--hold`, the hold of many connections on several nodes instead
//! (see [`hold`]).

mod hold;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cerebrum_testkit::redis::RedisServer;

use crate::Error;
use crate::bench;
use crate::bench_report as report;

const BEGIN: &str = "<!-- cluster:begin -->";
const END: &str = "<!-- cluster:end -->";

/// Options of `cargo xtask bench-cluster`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Runs per configuration (1 to 100).
    #[arg(long, value_name = "N", default_value_t = bench::DEFAULT_RUNS, value_parser = bench::parse_runs)]
    pub(crate) runs: usize,
    /// Small sizes, for a smoke run.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Instead of the fan-out layouts: hold --hold-connections connections with heartbeats on
    /// --hold-nodes `cerebrum serve --redis` nodes for --hold-secs, one `cerebrum bench conns`
    /// per node, and write the table between <!-- hold:begin --> and <!-- hold:end -->.
    #[arg(long, conflicts_with_all = ["runs", "quick"])]
    pub(crate) hold: bool,
    /// Connections in all, with --hold (shared out evenly over the nodes).
    #[arg(long, value_name = "N", default_value_t = 100_000, requires = "hold",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) hold_connections: u64,
    /// Nodes (each with its own load generator), with --hold (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 6, requires = "hold",
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub(crate) hold_nodes: u64,
    /// Seconds the connections are held, with --hold.
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "hold",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) hold_secs: u64,
    /// The document to update (relative to the workspace root unless absolute).
    #[arg(long, value_name = "FILE", default_value = bench::DEFAULT_OUT)]
    pub(crate) out: PathBuf,
}

impl Default for ClusterArgs {
    fn default() -> Self {
        Self {
            runs: 3,
            quick: false,
            hold: false,
            hold_connections: 100_000,
            hold_nodes: 6,
            hold_secs: 60,
            out: PathBuf::from("docs/benchmarks.md"),
        }
    }
}

/// One configuration: how many nodes, on Redis or not.
#[derive(Debug, Clone, Copy)]
struct Layout {
    nodes: usize,
    redis: bool,
}

impl Layout {
    fn title(self) -> String {
        match (self.redis, self.nodes) {
            (false, _) => "1 node, in-memory broker".to_owned(),
            (true, 1) => "1 node on Redis".to_owned(),
            (true, n) => format!("{n} nodes on Redis"),
        }
    }
}

/// CPU seconds (user + system) of `pid` so far, from `/proc/PID/stat`.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The figures of one run.
struct Figures {
    deliveries_per_sec: f64,
    lost: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_1000: f64,
}

fn fanout_args(quick: bool) -> Vec<String> {
    let (subscribers, rate, seconds) = if quick {
        ("100", "100", "2")
    } else {
        ("1000", "1000", "10")
    };
    [
        "fanout",
        "--subscribers",
        subscribers,
        "--rate",
        rate,
        "--seconds",
        seconds,
        "--payload",
        "64",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn run_once(
    cerebrum: &Path,
    layout: Layout,
    redis: Option<&RedisServer>,
    quick: bool,
    target: &Path,
    run: usize,
) -> Result<Figures, String> {
    let launch = bench::Launch {
        server: bench::Server::Ours,
        program: cerebrum.to_owned(),
        args: Vec::new(),
        serve_args: redis
            .map(|r| vec!["--redis".into(), r.url().into()])
            .unwrap_or_default(),
    };
    let mut nodes = Vec::new();
    for n in 0..layout.nodes {
        let name = format!(
            "cluster-{}-{}n-run{run}-node{n}",
            if layout.redis { "redis" } else { "memory" },
            layout.nodes
        );
        nodes.push(launch.start_named(target, &name)?);
    }
    let mut pids: Vec<u32> = nodes.iter().map(bench::Running::pid).collect();
    if let Some(redis_pid) = redis.and_then(|r| r.pid()) {
        pids.push(redis_pid);
    }
    let before: f64 = pids.iter().filter_map(|p| cpu_seconds(*p)).sum();
    let mut command = Command::new(cerebrum);
    command.args(["bench", "--url", nodes[0].url()]);
    for node in &nodes[1..] {
        command.args(["--node", node.url()]);
    }
    command.args(fanout_args(quick));
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run the load generator: {e}"))?;
    let after: f64 = pids.iter().filter_map(|p| cpu_seconds(*p)).sum();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "load generator {}: {}",
            output.status,
            stderr.lines().last().unwrap_or("no message")
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let fields = bench::parse_bench_stdout(&stdout, "fanout")?;
    let get = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("no `{name}` in the report"))
    };
    let delivered = get("delivered")?;
    Ok(Figures {
        deliveries_per_sec: get("deliveries_per_sec")?,
        lost: get("lost")?,
        p50_ms: get("p50_ms")?,
        p99_ms: get("p99_ms")?,
        cpu_ms_per_1000: if delivered > 0.0 {
            (after - before) * 1_000.0 * 1_000.0 / delivered
        } else {
            f64::NAN
        },
    })
}

fn cell(values: &[f64]) -> String {
    report::spread(values).map_or_else(|| "–".to_owned(), report::format_spread)
}

/// Runs the cluster benchmark and writes its section.
pub(crate) fn run(root: &Path, args: &ClusterArgs, command_line: &str) -> Result<(), Error> {
    if args.hold {
        return hold::run(root, args, command_line);
    }
    let started = Instant::now();
    let target = bench::target_dir(root, std::env::var_os("CARGO_TARGET_DIR"));
    let cerebrum = bench::build_ours(root, &target)?;
    let Some(redis) = RedisServer::start().map_err(|e| Error::Failed(e.to_string()))? else {
        return Err(Error::Failed(
            "redis-server is needed (apt-get install redis-server)".into(),
        ));
    };
    let layouts = [
        Layout {
            nodes: 1,
            redis: false,
        },
        Layout {
            nodes: 1,
            redis: true,
        },
        Layout {
            nodes: 2,
            redis: true,
        },
        Layout {
            nodes: 3,
            redis: true,
        },
    ];
    let mut rows = String::new();
    let mut failures = Vec::new();
    for layout in layouts {
        let mut figures = Vec::new();
        for run in 1..=args.runs {
            let redis = layout.redis.then_some(&redis);
            match run_once(&cerebrum, layout, redis, args.quick, &target, run) {
                Ok(f) => {
                    println!(
                        "==> bench-cluster: {} run {run}: {:.0} deliveries/s, lost {}, p99 {:.2} ms",
                        layout.title(),
                        f.deliveries_per_sec,
                        f.lost,
                        f.p99_ms
                    );
                    figures.push(f);
                }
                Err(why) => {
                    println!(
                        "==> bench-cluster: {} run {run} failed: {why}",
                        layout.title()
                    );
                    failures.push(format!("{} run {run}: {why}", layout.title()));
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let column = |f: fn(&Figures) -> f64| cell(&figures.iter().map(f).collect::<Vec<_>>());
        let _ = writeln!(
            rows,
            "| {} | {} | {} | {} | {} | {} |",
            layout.title(),
            column(|f| f.deliveries_per_sec),
            column(|f| f.lost),
            column(|f| f.p50_ms),
            column(|f| f.p99_ms),
            column(|f| f.cpu_ms_per_1000),
        );
    }
    let mut section = format!("{BEGIN}\n## Several nodes on Redis (issue 8)\n\n");
    let _ = writeln!(section, "- Command: `{command_line}`");
    let _ = writeln!(section, "- Machine: {}", bench::machine());
    let _ = writeln!(
        section,
        "- Method: `cerebrum bench --url NODE1 [--node NODE2 …] {}`; subscribers and the \
         publisher are spread round-robin over the nodes (the publisher on the last one it \
         reaches), so with N nodes a publication crosses Redis to every node; every node, Redis \
         and the load generator share the machine's cores. {} run(s) per layout, each on \
         freshly started nodes; cells are median (min–max). CPU is the nodes' and Redis's \
         together (from /proc), per 1 000 deliveries.",
        fanout_args(args.quick).join(" "),
        args.runs
    );
    let _ = writeln!(
        section,
        "- Took: {}\n",
        bench::format_duration(started.elapsed())
    );
    section.push_str(
        "| layout | deliveries/s | lost | p50 ms | p99 ms | CPU ms / 1 000 deliveries |\n\
         |---|---|---|---|---|---|\n",
    );
    section.push_str(&rows);
    for failure in &failures {
        let _ = writeln!(section, "\n- failed: {}", report::cell_text(failure));
    }
    let _ = writeln!(section, "\n{END}");
    write_section(root, &args.out, BEGIN, END, &section)?;
    println!("{section}");
    println!("==> bench-cluster: wrote {}", args.out.display());
    Ok(())
}

/// Replaces the section between the markers `begin` and `end` of the document `out` (relative
/// to `root` unless absolute) with `section`, or appends it.
fn write_section(
    root: &Path,
    out: &Path,
    begin: &str,
    end: &str,
    section: &str,
) -> Result<(), Error> {
    let out = root.join(out);
    let document = fs::read_to_string(&out).unwrap_or_default();
    let updated = replace_section(&document, begin, end, section);
    fs::write(&out, updated).map_err(|e| Error::Failed(format!("{}: {e}", out.display())))
}

/// `document` with the section between the markers `begin` and `end` replaced, or appended
/// when it has none.
fn replace_section(document: &str, begin: &str, end: &str, section: &str) -> String {
    match (document.find(begin), document.find(end)) {
        (Some(from), Some(to)) if from < to => {
            let after = &document[to + end.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &document[..from])
        }
        _ => {
            let mut out = document.to_owned();
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push('\n');
            }
            out.push_str(section);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_replaced_or_appended() {
        let section = format!("{BEGIN}\nnew\n{END}\n");
        let doc = format!("# B\n\n{BEGIN}\nold\n{END}\n\n## After\n");
        assert_eq!(
            replace_section(&doc, BEGIN, END, &section),
            format!("# B\n\n{BEGIN}\nnew\n{END}\n\n## After\n")
        );
        assert_eq!(
            replace_section("# B\n", BEGIN, END, &section),
            format!("# B\n\n{section}")
        );
    }

    #[test]
    fn cpu_seconds_reads_this_process() {
        assert!(cpu_seconds(std::process::id()).is_some());
    }
}
