//! `cargo xtask bench-cluster --hold`: many connections held with heartbeats on several
//! `cerebrum serve --redis` nodes of this machine (issue 16 item 3), one `cerebrum bench conns`
//! load generator per node, all at once; a table per node and in all, and what one node would
//! need for all the connections (extrapolated), written between the `<!-- hold:begin -->` and
//! `<!-- hold:end -->` markers of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cerebrum_testkit::redis::RedisServer;

use super::{ClusterArgs, cpu_seconds, write_section};
use crate::Error;
use crate::bench;
use crate::bench_report as report;

const BEGIN: &str = "<!-- hold:begin -->";
const END: &str = "<!-- hold:end -->";

/// Channels each generator spreads its connections over.
const CHANNELS: usize = 10;
/// Each connection's heartbeat period, seconds.
const PING_SECS: u64 = 20;
/// Open files a process may need besides its sockets (stdio, the listener, epoll and event
/// descriptors, the Redis link, SQLite's files): the margin of the limit check. A node holds
/// about 20 (`/proc/PID/fd` before any client connects; the section prints the measured figure).
const FILES_BESIDES_SOCKETS: u64 = 100;
/// How long a load generator may take beyond the hold (connecting, settling, closing).
const GENERATOR_SLACK: Duration = Duration::from_secs(300);

/// The sizes of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Connections in all.
    pub(crate) connections: u64,
    /// Nodes (and load generators, one per node).
    pub(crate) nodes: u64,
    /// Seconds the connections are held.
    pub(crate) secs: u64,
}

/// Why a hold cannot be planned on this machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlanError {
    /// A process would need more open files than the hard limit allows.
    #[error(
        "{connections} connections over {nodes} node(s) need {needed} open files per process \
         ({per_node} sockets + {FILES_BESIDES_SOCKETS} for everything else), but the hard \
         limit here is {hard} (`ulimit -Hn`; raising it needs CAP_SYS_RESOURCE): use \
         --hold-nodes {enough} or more"
    )]
    OpenFiles {
        /// Connections in all.
        connections: u64,
        /// Nodes asked for.
        nodes: u64,
        /// The largest node's share of the connections.
        per_node: u64,
        /// Open files one process needs.
        needed: u64,
        /// The hard limit of this process (inherited by the children).
        hard: u64,
        /// The fewest nodes that fit under the hard limit.
        enough: u64,
    },
    /// The open-files limit could not be read.
    #[error("cannot read the open-files limit from /proc/self/limits")]
    UnknownLimit,
}

impl Plan {
    /// The plan of `args`.
    pub(crate) fn of(args: &ClusterArgs) -> Self {
        Self {
            connections: args.hold_connections,
            nodes: args.hold_nodes,
            secs: args.hold_secs,
        }
    }

    /// Each node's share of the connections: equal, the first ones one more when they do not
    /// divide evenly.
    pub(crate) fn shares(self) -> Vec<u64> {
        let (base, extra) = (self.connections / self.nodes, self.connections % self.nodes);
        (0..self.nodes)
            .map(|i| base + u64::from(i < extra))
            .collect()
    }

    /// Open files one process needs: the largest share and the margin.
    pub(crate) fn files_per_process(self) -> u64 {
        self.connections.div_ceil(self.nodes) + FILES_BESIDES_SOCKETS
    }

    /// Checks the plan against the hard open-files limit (`None`: unlimited).
    pub(crate) fn check(self, hard: Option<u64>) -> Result<(), PlanError> {
        let Some(hard) = hard else { return Ok(()) };
        let needed = self.files_per_process();
        if needed <= hard {
            return Ok(());
        }
        let room = hard.saturating_sub(FILES_BESIDES_SOCKETS).max(1);
        Err(PlanError::OpenFiles {
            connections: self.connections,
            nodes: self.nodes,
            per_node: self.connections.div_ceil(self.nodes),
            needed,
            hard,
            enough: self.connections.div_ceil(room),
        })
    }
}

/// The (soft, hard) open-files limits of a `/proc/PID/limits` text; `None` for unlimited.
pub(crate) fn open_files_limits(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line.trim_start_matches("Max open files").split_whitespace();
    let read = |value: Option<&str>| match value? {
        "unlimited" => Some(None),
        n => n.parse().ok().map(Some),
    };
    Some((read(values.next())?, read(values.next())?))
}

/// What one node and its load generator measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    /// Connections opened.
    pub(crate) connections: f64,
    /// Connections the server closed (or that failed) during the hold.
    pub(crate) dropped: f64,
    /// The node's RSS before the connections, bytes.
    pub(crate) rss_before: f64,
    /// The node's RSS at the end of the hold, bytes.
    pub(crate) rss_held: f64,
    /// The node's CPU seconds (user + system) from the connections' settle to the hold's end.
    pub(crate) cpu_secs: f64,
    /// Heartbeats timed until their pong.
    pub(crate) heartbeats: f64,
    /// Heartbeat p50, ms.
    pub(crate) p50_ms: f64,
    /// Heartbeat p99, ms.
    pub(crate) p99_ms: f64,
    /// Heartbeat maximum, ms.
    pub(crate) max_ms: f64,
}

impl Held {
    /// RSS growth per connection at the end of the hold, bytes.
    fn rss_per_connection(&self) -> f64 {
        (self.rss_held - self.rss_before) / self.connections
    }
}

/// Why a node's row has no figures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HoldError {
    /// The node did not start.
    #[error("node did not start: {0}")]
    NodeDidNotStart(String),
    /// The node's open-files limit is too low for its share.
    #[error("the node's open-files limit is {soft}, its share needs {needed}")]
    NodeFiles {
        /// The node's soft limit.
        soft: u64,
        /// What its share needs.
        needed: u64,
    },
    /// The node exited while its connections were held.
    #[error("node exited: {0}")]
    NodeExited(String),
    /// The load generator could not be started.
    #[error("{0}")]
    GeneratorNotStarted(String),
    /// The load generator was killed at its deadline.
    #[error("the load generator timed out after {secs} s")]
    GeneratorTimedOut {
        /// Its time budget.
        secs: u64,
    },
    /// The load generator failed.
    #[error("load generator {status}: {message}")]
    Generator {
        /// Its exit status.
        status: String,
        /// The last line of its stderr.
        message: String,
    },
    /// The load generator's report could not be read.
    #[error("report: {0}")]
    Report(String),
}

/// The figures of a `cerebrum bench … conns` stdout.
pub(crate) fn parse_conns(stdout: &str) -> Result<Held, HoldError> {
    let fields = bench::parse_bench_stdout(stdout, "conns").map_err(HoldError::Report)?;
    let get = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| HoldError::Report(format!("no `{name}` (was --pid given?)")))
    };
    Ok(Held {
        connections: get("connections")?,
        dropped: get("dropped_during_hold")?,
        rss_before: get("server_rss_before_bytes")?,
        rss_held: get("server_rss_held_bytes")?,
        cpu_secs: get("server_cpu_seconds_during_hold")?,
        heartbeats: get("heartbeats")?,
        p50_ms: get("heartbeat_p50_ms")?,
        p99_ms: get("heartbeat_p99_ms")?,
        max_ms: get("heartbeat_max_ms")?,
    })
}

/// One node's row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeRow {
    /// Connections asked of it.
    pub(crate) share: u64,
    /// Its open descriptors before any client connected (`None`: not read).
    pub(crate) base_files: Option<u64>,
    /// Its figures, or why there are none.
    pub(crate) outcome: Result<Held, HoldError>,
}

/// Bytes as MB (10^6), for tables: one decimal below 100 MB.
fn mb(bytes: f64) -> String {
    let mb = bytes / 1e6;
    if mb.abs() < 100.0 {
        format!("{mb:.1} MB")
    } else {
        format!("{} MB", report::format_number(mb.round()))
    }
}

/// A quantity with its unit.
fn with_unit(x: f64, unit: &str) -> String {
    format!("{} {unit}", report::format_number(x))
}

/// `min–max`, or one value when they agree.
fn range(values: &[f64], unit: &str) -> String {
    match report::spread(values) {
        None => "–".to_owned(),
        Some(s) => {
            let (min, max) = (report::format_number(s.min), report::format_number(s.max));
            if min == max {
                format!("{min} {unit}")
            } else {
                format!("{min}–{max} {unit}")
            }
        }
    }
}

/// The table: one row per node, then the totals of the nodes that have figures.
pub(crate) fn render_table(rows: &[NodeRow], secs: u64) -> String {
    let mut out = String::from(
        "| node | connections | dropped | RSS held | RSS / connection | CPU during the hold \
         | heartbeats timed | p50 | p99 | max |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, row) in rows.iter().enumerate() {
        let node = i + 1;
        match &row.outcome {
            Ok(h) => {
                let _ = writeln!(
                    out,
                    "| {node} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    report::format_number(h.connections),
                    report::format_number(h.dropped),
                    mb(h.rss_held),
                    with_unit(h.rss_per_connection().round(), "B"),
                    with_unit(h.cpu_secs, "s"),
                    report::format_number(h.heartbeats),
                    with_unit(h.p50_ms, "ms"),
                    with_unit(h.p99_ms, "ms"),
                    with_unit(h.max_ms, "ms"),
                );
            }
            Err(why) => {
                let _ = writeln!(
                    out,
                    "| {node} | failed ({} asked): {} | – | – | – | – | – | – | – | – |",
                    report::format_number(row.share as f64),
                    report::cell_text(&why.to_string())
                );
            }
        }
    }
    let held: Vec<&Held> = rows
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok())
        .collect();
    // A fold from +0.0: an empty `sum` of floats is -0.0.
    let sum = |f: fn(&Held) -> f64| held.iter().fold(0.0, |total, h| total + f(h));
    let asked: u64 = rows.iter().map(|r| r.share).sum();
    let connections = sum(|h| h.connections);
    let cpu = sum(|h| h.cpu_secs);
    let all = if held.len() == rows.len() {
        "**all**".to_owned()
    } else {
        format!("**{} of {} nodes**", held.len(), rows.len())
    };
    let connections_cell = if connections == asked as f64 {
        format!("**{}**", report::format_number(connections))
    } else {
        format!(
            "**{}** of {}",
            report::format_number(connections),
            report::format_number(asked as f64)
        )
    };
    let per_connection = if connections > 0.0 {
        with_unit(
            (sum(|h| h.rss_held - h.rss_before) / connections).round(),
            "B",
        )
    } else {
        "–".to_owned()
    };
    let values = |f: fn(&Held) -> f64| held.iter().map(|h| f(h)).collect::<Vec<_>>();
    let max = values(|h| h.max_ms).into_iter().reduce(f64::max);
    let _ = writeln!(
        out,
        "| {all} | {connections_cell} | **{}** | **{}** | {per_connection} | **{} ({} cores)** \
         | {} | {} | {} | {} |",
        report::format_number(sum(|h| h.dropped)),
        mb(sum(|h| h.rss_held)),
        with_unit(cpu, "s"),
        report::format_number(cpu / secs.max(1) as f64),
        report::format_number(sum(|h| h.heartbeats)),
        range(&values(|h| h.p50_ms), "ms"),
        range(&values(|h| h.p99_ms), "ms"),
        max.map_or_else(|| "–".to_owned(), |m| with_unit(m, "ms")),
    );
    out
}

/// What one node would need for `connections`, from the measured per-connection costs, and
/// whether `hard` (the open-files hard limit, `None`: unlimited) allows it; `None` without a node
/// that has figures.
pub(crate) fn extrapolation(
    rows: &[NodeRow],
    connections: u64,
    hard: Option<u64>,
) -> Option<String> {
    let held: Vec<&Held> = rows
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok())
        .collect();
    let measured: f64 = held.iter().map(|h| h.connections).sum();
    let heartbeats: f64 = held.iter().map(|h| h.heartbeats).sum();
    if held.is_empty() || measured <= 0.0 {
        return None;
    }
    let n = connections as f64;
    let base = held.iter().map(|h| h.rss_before).sum::<f64>() / held.len() as f64;
    let per_connection = held.iter().map(|h| h.rss_held - h.rss_before).sum::<f64>() / measured;
    let cpu: f64 = held.iter().map(|h| h.cpu_secs).sum();
    let files = rows.iter().filter_map(|r| r.base_files).max();
    let mut line = format!(
        "**One node for {} connections (extrapolated, not measured)**: RSS ≈ {} ({} before \
         any client + {} × {}), ",
        report::format_number(n),
        mb(base + n * per_connection),
        mb(base),
        report::format_number(n),
        with_unit(per_connection.round(), "B"),
    );
    if heartbeats > 0.0 {
        let per_heartbeat = cpu / heartbeats;
        let _ = write!(
            line,
            "CPU ≈ {} of a core ({} heartbeats a second, one per connection every {PING_SECS} s, \
             at the measured {} µs of node CPU per heartbeat, which carries the idle \
             connections' upkeep too), ",
            report::format_number(per_heartbeat * n / PING_SECS as f64),
            report::format_number(n / PING_SECS as f64),
            report::format_number(per_heartbeat * 1e6),
        );
    } else {
        line.push_str("CPU: no heartbeat was timed, so no CPU per heartbeat, ");
    }
    let files_needed = connections + files.unwrap_or(FILES_BESIDES_SOCKETS);
    match files {
        Some(files) => {
            let _ = write!(
                line,
                "open files ≥ {} ({} sockets + the {files} a node holds before any client; \
                 `ulimit -n`)",
                report::format_number(n + files as f64),
                report::format_number(n),
            );
        }
        None => {
            let _ = write!(
                line,
                "open files ≥ {} sockets and the node's own few (`ulimit -n`)",
                report::format_number(n)
            );
        }
    }
    line.push_str("; the kernel's socket memory comes on top (not in RSS).");
    if hard.is_some_and(|hard| hard < files_needed) {
        line.push_str(" This machine's hard limit does not allow one process that many files.");
    }
    Some(line)
}

/// The load generator's arguments after `cerebrum bench`.
fn generator_args(url: &str, pid: u32, connections: u64, secs: u64) -> Vec<String> {
    let (pid, connections, channels) = (
        pid.to_string(),
        connections.to_string(),
        CHANNELS.to_string(),
    );
    let (secs, ping) = (secs.to_string(), PING_SECS.to_string());
    [
        "--url",
        url,
        "--pid",
        &pid,
        "--threads",
        "1",
        "conns",
        "--connections",
        &connections,
        "--channels",
        &channels,
        "--hold-secs",
        &secs,
        "--ping-secs",
        &ping,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Runs one node's load generator and reads its report.
fn generate(
    cerebrum: &Path,
    url: &str,
    pid: u32,
    share: u64,
    secs: u64,
) -> Result<Held, HoldError> {
    let mut command = Command::new(cerebrum);
    command
        .arg("bench")
        .args(generator_args(url, pid, share, secs))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let budget = Duration::from_secs(secs) + GENERATOR_SLACK;
    let (status, stdout, stderr) =
        bench::run_within(&mut command, budget).map_err(HoldError::GeneratorNotStarted)?;
    let Some(status) = status else {
        return Err(HoldError::GeneratorTimedOut {
            secs: budget.as_secs(),
        });
    };
    if !status.success() {
        return Err(HoldError::Generator {
            status: status.to_string(),
            message: stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
                .trim()
                .to_owned(),
        });
    }
    parse_conns(&stdout)
}

/// Open descriptors of `pid`.
fn open_files(pid: u32) -> Option<u64> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|dir| dir.count() as u64)
}

/// `/proc/loadavg`'s three load averages.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Runs the hold and writes its section.
pub(crate) fn run(root: &Path, args: &ClusterArgs, command_line: &str) -> Result<(), Error> {
    let started = Instant::now();
    let plan = Plan::of(args);
    let limits = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| open_files_limits(&t));
    let Some((_, hard)) = limits else {
        return Err(Error::Failed(PlanError::UnknownLimit.to_string()));
    };
    plan.check(hard).map_err(|e| Error::Failed(e.to_string()))?;
    let target = bench::target_dir(root, std::env::var_os("CARGO_TARGET_DIR"));
    let cerebrum = bench::build_ours(root, &target)?;
    let built = started.elapsed();
    let Some(redis) = RedisServer::start().map_err(|e| Error::Failed(e.to_string()))? else {
        return Err(Error::Failed(
            "redis-server is needed (apt-get install redis-server)".into(),
        ));
    };
    let load_before = load_average();
    let date = bench::first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let launch = bench::Launch {
        server: bench::Server::Ours,
        program: cerebrum.clone(),
        args: Vec::new(),
        serve_args: vec!["--redis".into(), redis.url().into()],
    };
    let shares = plan.shares();
    let mut nodes = Vec::new();
    for (i, share) in shares.iter().enumerate() {
        let node = i + 1;
        let started = launch
            .start_named(&target, &format!("hold-node{node}"))
            .map_err(HoldError::NodeDidNotStart)
            .and_then(|running| {
                // The node raised its soft limit to the hard one as it started (`ulimit -n`).
                let soft = fs::read_to_string(format!("/proc/{}/limits", running.pid()))
                    .ok()
                    .and_then(|t| open_files_limits(&t))
                    .and_then(|(soft, _)| soft);
                let needed = share + FILES_BESIDES_SOCKETS;
                match soft {
                    Some(soft) if soft < needed => Err(HoldError::NodeFiles { soft, needed }),
                    _ => Ok(running),
                }
            });
        match &started {
            Ok(running) => println!(
                "==> bench-cluster --hold: node {node} {} (pid {}): {} connections",
                running.url(),
                running.pid(),
                report::format_number(*share as f64)
            ),
            Err(why) => println!("==> bench-cluster --hold: node {node}: {why}"),
        }
        nodes.push(started);
    }
    let base_files: Vec<Option<u64>> = nodes
        .iter()
        .map(|n| n.as_ref().ok().and_then(|r| open_files(r.pid())))
        .collect();
    let redis_before = redis.pid().and_then(cpu_seconds);
    println!(
        "==> bench-cluster --hold: {} connections on {} node(s), held {} s, load average {load_before}",
        report::format_number(plan.connections as f64),
        plan.nodes,
        plan.secs
    );
    let generated: Vec<Option<Result<Held, HoldError>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .zip(&shares)
            .map(|(node, share)| {
                node.as_ref().ok().map(|running| {
                    let (url, pid) = (running.url().to_owned(), running.pid());
                    let cerebrum = &cerebrum;
                    scope.spawn(move || generate(cerebrum, &url, pid, *share, plan.secs))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(HoldError::GeneratorNotStarted("its thread panicked".into()))
                    })
                })
            })
            .collect()
    });
    let redis_cpu = redis
        .pid()
        .and_then(cpu_seconds)
        .zip(redis_before)
        .map(|(after, before)| after - before);
    let load_after = load_average();
    let mut rows = Vec::new();
    for (((node, generated), share), base_files) in
        nodes.iter_mut().zip(generated).zip(&shares).zip(base_files)
    {
        let outcome = match (node, generated) {
            (Err(why), _) => Err(why.clone()),
            (Ok(running), generated) => match running.exited() {
                Some(why) => Err(HoldError::NodeExited(why)),
                None => generated
                    .unwrap_or_else(|| Err(HoldError::GeneratorNotStarted("not started".into()))),
            },
        };
        rows.push(NodeRow {
            share: *share,
            base_files,
            outcome,
        });
    }
    drop(nodes);
    drop(redis);

    let table = render_table(&rows, plan.secs);
    let mut section = format!("{BEGIN}\n");
    let _ = writeln!(section, "- Command: `{command_line}`");
    let _ = writeln!(
        section,
        "- Date: {date}; took {}, of which {} building",
        bench::format_duration(started.elapsed()),
        bench::format_duration(built)
    );
    let _ = writeln!(section, "- Machine: {}", bench::machine());
    let _ = writeln!(
        section,
        "- Load average (1, 5, 15 min, `/proc/loadavg`): {load_before} before, {load_after} \
         after; whatever else runs on the machine shares its cores with the nodes, Redis and \
         the load generators"
    );
    let _ = writeln!(
        section,
        "- Method: one `redis-server` and {} `cerebrum serve --redis URL --rate-limit 0` nodes, \
         each on its own free port and data dir; for each node at once, `cerebrum bench --url \
         NODE --pid PID --threads 1 conns --connections C/N --channels {CHANNELS} --hold-secs {} \
         --ping-secs {PING_SECS}`. RSS and CPU of each node from /proc (read by its generator): \
         RSS at the hold's end, RSS / connection = (RSS held − RSS before connecting) / \
         connections, CPU = user + system seconds from the connections' settle to the hold's \
         end. Each connection pings every {PING_SECS} s (first pings spread over one period), \
         each timed until its pong; p50, p99 and max per node, their range in all.",
        plan.nodes, plan.secs,
    );
    let _ = writeln!(
        section,
        "- Open files per process: hard limit {}; each node's share needs {} at most",
        hard.map_or_else(
            || "unlimited".to_owned(),
            |h| report::format_number(h as f64)
        ),
        report::format_number(plan.files_per_process() as f64),
    );
    if let Some(cpu) = redis_cpu {
        let _ = writeln!(
            section,
            "- redis-server: {} of CPU over the run (connecting and holding)",
            with_unit(cpu, "s")
        );
    }
    section.push('\n');
    section.push_str(&table);
    if let Some(line) = extrapolation(&rows, plan.connections, hard) {
        let _ = writeln!(section, "\n{line}");
    }
    let _ = writeln!(section, "\n{END}");
    write_section(root, &args.out, BEGIN, END, &section)?;
    println!("{section}");
    println!("==> bench-cluster --hold: wrote {}", args.out.display());
    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    if failed > 0 {
        return Err(Error::Failed(format!(
            "{failed} of {} node(s) failed (recorded in {})",
            rows.len(),
            args.out.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connections: u64, nodes: u64) -> Plan {
        Plan {
            connections,
            nodes,
            secs: 60,
        }
    }

    #[test]
    fn connections_are_shared_out_exactly() {
        assert_eq!(
            plan(100_000, 6).shares(),
            vec![16_667, 16_667, 16_667, 16_667, 16_666, 16_666]
        );
        assert_eq!(plan(6_000, 3).shares(), vec![2_000; 3]);
        assert_eq!(plan(2, 3).shares(), vec![1, 1, 0]);
        assert_eq!(plan(100_000, 6).shares().iter().sum::<u64>(), 100_000);
    }

    #[test]
    fn the_open_files_limit_is_checked() {
        assert_eq!(plan(100_000, 6).check(Some(20_000)), Ok(()));
        assert_eq!(plan(100_000, 1).check(None), Ok(()));
        let err = plan(100_000, 5).check(Some(20_000)).unwrap_err();
        assert_eq!(
            err,
            PlanError::OpenFiles {
                connections: 100_000,
                nodes: 5,
                per_node: 20_000,
                needed: 20_100,
                hard: 20_000,
                enough: 6,
            }
        );
        let text = err.to_string();
        assert!(text.contains("need 20100 open files per process"), "{text}");
        assert!(text.contains("--hold-nodes 6 or more"), "{text}");
    }

    #[test]
    fn limits_are_read_from_proc() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95657                95657                processes \n\
                      Max open files            1024                 20000                files     \n";
        assert_eq!(open_files_limits(limits), Some((Some(1024), Some(20_000))));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_files_limits(unlimited), Some((None, None)));
        assert_eq!(open_files_limits("Max processes 1 1\n"), None);
        let own = fs::read_to_string("/proc/self/limits").unwrap();
        assert!(open_files_limits(&own).is_some());
    }

    const CONNS: &str = "scenario  conns\n\
        {\"scenario\":\"conns\",\"connections\":16667,\"channels\":10,\"connect_secs\":4.2,\
        \"connects_per_sec\":3968.3,\"hold_secs\":60.0,\"dropped_during_hold\":0,\
        \"server_rss_before_bytes\":18500000,\"server_rss_after_bytes\":78000000,\
        \"server_rss_per_connection_bytes\":3601,\"server_rss_held_bytes\":78500000,\
        \"server_cpu_seconds_during_hold\":3.21,\"ping_secs\":20.0,\"heartbeats\":50100,\
        \"heartbeat_p50_ms\":0.084,\"heartbeat_p99_ms\":17.0,\"heartbeat_max_ms\":643.0}\n";

    fn held() -> Held {
        parse_conns(CONNS).unwrap()
    }

    #[test]
    fn the_conns_report_is_parsed() {
        assert_eq!(
            held(),
            Held {
                connections: 16_667.0,
                dropped: 0.0,
                rss_before: 18_500_000.0,
                rss_held: 78_500_000.0,
                cpu_secs: 3.21,
                heartbeats: 50_100.0,
                p50_ms: 0.084,
                p99_ms: 17.0,
                max_ms: 643.0,
            }
        );
        let without_pid = "{\"scenario\":\"conns\",\"connections\":10,\"dropped_during_hold\":0}";
        let err = parse_conns(without_pid).unwrap_err();
        assert_eq!(
            err.to_string(),
            "report: no `server_rss_before_bytes` (was --pid given?)"
        );
        let err = parse_conns("").unwrap_err();
        assert!(err.to_string().contains("printed nothing"), "{err}");
    }

    #[test]
    fn the_generator_is_asked_for_its_share() {
        assert_eq!(
            generator_args("ws://127.0.0.1:1/ws", 42, 16_667, 60).join(" "),
            "--url ws://127.0.0.1:1/ws --pid 42 --threads 1 conns --connections 16667 \
             --channels 10 --hold-secs 60 --ping-secs 20"
        );
    }

    fn rows() -> Vec<NodeRow> {
        let mut second = held();
        second.dropped = 2.0;
        second.p99_ms = 454.0;
        second.max_ms = 1_391.0;
        second.cpu_secs = 2.79;
        vec![
            NodeRow {
                share: 16_667,
                base_files: Some(21),
                outcome: Ok(held()),
            },
            NodeRow {
                share: 16_667,
                base_files: Some(23),
                outcome: Ok(second),
            },
        ]
    }

    #[test]
    fn the_table_has_a_row_per_node_and_the_totals() {
        let table = render_table(&rows(), 60);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            vec![
                "| node | connections | dropped | RSS held | RSS / connection | CPU during the \
                 hold | heartbeats timed | p50 | p99 | max |",
                "|---|---|---|---|---|---|---|---|---|---|",
                "| 1 | 16 667 | 0 | 78.5 MB | 3 600 B | 3.21 s | 50 100 | 0.084 ms | 17 ms \
                 | 643 ms |",
                "| 2 | 16 667 | 2 | 78.5 MB | 3 600 B | 2.79 s | 50 100 | 0.084 ms | 454 ms \
                 | 1 391 ms |",
                "| **all** | **33 334** | **2** | **157 MB** | 3 600 B | **6 s (0.100 cores)** \
                 | 100 200 | 0.084 ms | 17–454 ms | 1 391 ms |",
            ]
        );
    }

    #[test]
    fn failures_show_in_the_table() {
        let mut rows = rows();
        rows.push(NodeRow {
            share: 16_666,
            base_files: None,
            outcome: Err(HoldError::NodeExited(
                "ours exited (signal: 9 (SIGKILL)): | killed".into(),
            )),
        });
        rows.push(NodeRow {
            share: 16_666,
            base_files: Some(20),
            outcome: Err(HoldError::Generator {
                status: "exit status: 1".into(),
                message: "error: connect: Too many open files".into(),
            }),
        });
        let table = render_table(&rows, 60);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[4],
            "| 3 | failed (16 666 asked): node exited: ours exited (signal: 9 (SIGKILL)): / \
             killed | – | – | – | – | – | – | – | – |"
        );
        assert_eq!(
            lines[5],
            "| 4 | failed (16 666 asked): load generator exit status: 1: error: connect: Too \
             many open files | – | – | – | – | – | – | – | – |"
        );
        assert!(
            lines[6].starts_with("| **2 of 4 nodes** | **33 334** of 66 666 | **2** |"),
            "{}",
            lines[6]
        );
        // Nothing measured: dashes, not a panic.
        let none = vec![NodeRow {
            share: 10,
            base_files: None,
            outcome: Err(HoldError::NodeDidNotStart("no port".into())),
        }];
        let table = render_table(&none, 60);
        assert!(
            table.ends_with(
                "| **0 of 1 nodes** | **0** of 10 | **0** | **0.0 MB** | – | **0 s (0 cores)** \
                 | 0 | – | – | – |\n"
            ),
            "{table}"
        );
        assert_eq!(extrapolation(&none, 100_000, None), None);
    }

    #[test]
    fn one_node_is_extrapolated_and_labelled() {
        let line = extrapolation(&rows(), 100_000, Some(20_000)).unwrap();
        assert!(line.contains("(extrapolated, not measured)"), "{line}");
        // 18.5 MB before + 100 000 × 3 600 B = 378.49 MB.
        assert!(line.contains("RSS ≈ 378 MB (18.5 MB before"), "{line}");
        assert!(line.contains("100 000 × 3 600 B"), "{line}");
        // 6 s of CPU for 100 200 heartbeats: 59.9 µs each; 5 000 a second: 0.299 of a core.
        assert!(line.contains("CPU ≈ 0.299 of a core"), "{line}");
        assert!(line.contains("5 000 heartbeats a second"), "{line}");
        assert!(line.contains("59.9 µs"), "{line}");
        assert!(line.contains("open files ≥ 100 023"), "{line}");
        assert!(
            line.ends_with("does not allow one process that many files."),
            "{line}"
        );
        let small = extrapolation(&rows(), 6_000, Some(20_000)).unwrap();
        assert!(small.ends_with("(not in RSS)."), "{small}");
        let unlimited = extrapolation(&rows(), 100_000, None).unwrap();
        assert!(unlimited.ends_with("(not in RSS)."), "{unlimited}");
    }
}
