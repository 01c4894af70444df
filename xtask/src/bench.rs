//! `cargo xtask bench`: builds `cerebrum` (and with `--peers` the two peer servers of
//! `../shared/bench-peers/`), runs every `cerebrum bench` scenario against each server in
//! turn, started fresh for every run, and writes the side-by-side tables to the generated
//! section of `docs/benchmarks.md`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::bench_report::{self as report, Column, Goal, Row, RunResult};
use crate::process::{self, Error};

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

/// The sizes of the scenarios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sizes {
    /// `conns`: connections held.
    pub(crate) conns: usize,
    /// `conns`: channels they subscribe to.
    pub(crate) conns_channels: usize,
    /// `conns`: seconds they are held.
    pub(crate) conns_hold_secs: u32,
    /// `fanout`: subscribers of the channel.
    pub(crate) fanout_subscribers: usize,
    /// `fanout`: publications per second.
    pub(crate) fanout_rate: u32,
    /// `fanout`: seconds of publishing.
    pub(crate) fanout_secs: u32,
    /// `rooms`: clients in all.
    pub(crate) rooms_clients: usize,
    /// `rooms`: clients per room.
    pub(crate) room_size: usize,
    /// `rooms`: publications per second of each client.
    pub(crate) rooms_rate: u32,
    /// `rooms`: seconds of publishing.
    pub(crate) rooms_secs: u32,
    /// `ping`: connections.
    pub(crate) ping_connections: usize,
    /// `ping`: pings per second of each connection.
    pub(crate) ping_rate: u32,
    /// `ping`: seconds of pinging.
    pub(crate) ping_secs: u32,
    /// Payload bytes of `fanout` and `rooms`.
    pub(crate) payload: usize,
    /// `storm`: facade clients through the restart (ours only).
    pub(crate) storm_clients: usize,
    /// `storm`: channels they subscribe to.
    pub(crate) storm_channels: usize,
}

/// The targets of issue 7.
pub(crate) const FULL: Sizes = Sizes {
    conns: 10_000,
    conns_channels: 10,
    conns_hold_secs: 5,
    fanout_subscribers: 1_000,
    fanout_rate: 1_000,
    fanout_secs: 10,
    rooms_clients: 2_000,
    room_size: 10,
    rooms_rate: 2,
    rooms_secs: 10,
    ping_connections: 1_000,
    ping_rate: 10,
    ping_secs: 10,
    payload: 64,
    storm_clients: 10_000,
    storm_channels: 100,
};

/// `--quick`: a smoke run of every scenario.
pub(crate) const QUICK: Sizes = Sizes {
    conns: 1_000,
    conns_channels: 10,
    conns_hold_secs: 1,
    fanout_subscribers: 100,
    fanout_rate: 200,
    fanout_secs: 2,
    rooms_clients: 200,
    room_size: 10,
    rooms_rate: 2,
    rooms_secs: 2,
    ping_connections: 100,
    ping_rate: 10,
    ping_secs: 2,
    payload: 64,
    storm_clients: 200,
    storm_channels: 10,
};

/// The figures of `conns` in the tables.
const CONNS_ROWS: &[Row] = &[
    Row {
        key: "server_rss_per_connection_bytes",
        label: "server RSS bytes / connection",
        goals: &[
            ("rust-raw", Goal::AtMost(1.0)),
            ("node-ws", Goal::AtMost(0.6)),
        ],
    },
    Row {
        key: "connects_per_sec",
        label: "connects/s",
        goals: &[],
    },
    Row {
        key: "dropped_during_hold",
        label: "dropped during hold",
        goals: &[],
    },
];

/// The figures of `fanout` in the tables.
const FANOUT_ROWS: &[Row] = &[
    Row {
        key: "deliveries_per_sec",
        label: "deliveries/s",
        goals: &[("rust-raw", Goal::AtLeast(0.9))],
    },
    Row {
        key: "lost",
        label: "lost",
        goals: &[],
    },
    Row {
        key: "p50_ms",
        label: "p50 ms",
        goals: &[],
    },
    Row {
        key: "p99_ms",
        label: "p99 ms",
        goals: &[],
    },
    Row {
        key: "max_ms",
        label: "max ms",
        goals: &[],
    },
    Row {
        key: "server_cpu_ms_per_1000",
        label: "server CPU ms / 1 000 deliveries",
        goals: &[
            ("rust-raw", Goal::AtMost(1.1)),
            ("node-ws", Goal::AtMost(0.1)),
        ],
    },
];

/// The figures of `rooms` in the tables.
const ROOMS_ROWS: &[Row] = &[
    Row {
        key: "lost",
        label: "lost",
        goals: &[],
    },
    Row {
        key: "p99_ms",
        label: "p99 ms",
        goals: &[("rust-raw", Goal::AtMost(1.2))],
    },
    Row {
        key: "server_cpu_ms_per_1000",
        label: "server CPU ms / 1 000 deliveries",
        goals: &[("rust-raw", Goal::AtMost(1.2))],
    },
];

/// The figures of `ping` in the tables.
const PING_ROWS: &[Row] = &[
    Row {
        key: "lost",
        label: "lost",
        goals: &[],
    },
    Row {
        key: "p99_ms",
        label: "p99 ms",
        goals: &[("rust-raw", Goal::AtMost(1.2))],
    },
    Row {
        key: "server_cpu_ms_per_1000",
        label: "server CPU ms / 1 000 pongs",
        goals: &[("rust-raw", Goal::AtMost(1.2))],
    },
];

/// The figures of `storm` in the tables.
const STORM_ROWS: &[Row] = &[
    Row {
        key: "back",
        label: "clients back and re-subscribed",
        goals: &[],
    },
    Row {
        key: "back_secs",
        label: "s from the restarted server's `listening on` to the last client back",
        goals: &[],
    },
    Row {
        key: "back_p50_secs",
        label: "s to a client back, p50",
        goals: &[],
    },
    Row {
        key: "restart_secs",
        label: "s from SIGTERM to `listening on` again",
        goals: &[],
    },
    Row {
        key: "recovered",
        label: "re-subscriptions with history recovered",
        goals: &[],
    },
    Row {
        key: "missed",
        label: "publications missed (before + after)",
        goals: &[],
    },
    Row {
        key: "out_of_order",
        label: "publications out of order",
        goals: &[],
    },
    Row {
        key: "connect_secs",
        label: "s to connect and subscribe every client",
        goals: &[],
    },
];

/// The `storm` scenario: against ours only (the peers do not resume); the load generator
/// starts and restarts the server itself.
pub(crate) fn storm_spec(s: &Sizes) -> ScenarioSpec {
    ScenarioSpec {
        name: "storm",
        title: format!(
            "storm: {} facade clients (fleet preset) over {} channels through a server restart (ours only)",
            grouped(s.storm_clients),
            s.storm_channels
        ),
        args: vec![
            "--clients".to_owned(),
            s.storm_clients.to_string(),
            "--channels".to_owned(),
            s.storm_channels.to_string(),
            "--before".to_owned(),
            "5".to_owned(),
            "--after".to_owned(),
            "5".to_owned(),
        ],
        rows: STORM_ROWS,
        budget: Duration::from_secs(240 + s.storm_clients as u64 / 50),
    }
}

/// One scenario as run against every server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScenarioSpec {
    /// The `cerebrum bench` subcommand.
    pub(crate) name: &'static str,
    /// A heading for the document.
    pub(crate) title: String,
    /// The scenario's flags.
    pub(crate) args: Vec<String>,
    /// The figures shown.
    pub(crate) rows: &'static [Row],
    /// How long the load generator may take before it is killed.
    pub(crate) budget: Duration,
}

/// A number with a space between groups of three digits.
fn grouped(n: usize) -> String {
    report::format_number(n as f64)
}

/// The scenarios in the order they run against each fresh server (`conns` first, so that
/// the memory per connection is measured on a server nothing ran on yet).
pub(crate) fn scenarios(s: &Sizes) -> Vec<ScenarioSpec> {
    let budget = |seconds: u32, clients: usize| {
        Duration::from_secs(120 + 3 * u64::from(seconds) + clients as u64 / 100)
    };
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    vec![
        ScenarioSpec {
            name: "conns",
            title: format!(
                "conns: {} idle subscribed connections over {} channels, held {} s",
                grouped(s.conns),
                s.conns_channels,
                s.conns_hold_secs
            ),
            args: strings(&[
                "--connections",
                &s.conns.to_string(),
                "--channels",
                &s.conns_channels.to_string(),
                "--hold-secs",
                &s.conns_hold_secs.to_string(),
            ]),
            rows: CONNS_ROWS,
            budget: budget(s.conns_hold_secs, s.conns),
        },
        ScenarioSpec {
            name: "fanout",
            title: format!(
                "fanout: {} subscribers × {} msg/s, {}-byte payload, {} s",
                grouped(s.fanout_subscribers),
                grouped(s.fanout_rate as usize),
                s.payload,
                s.fanout_secs
            ),
            args: strings(&[
                "--subscribers",
                &s.fanout_subscribers.to_string(),
                "--rate",
                &s.fanout_rate.to_string(),
                "--seconds",
                &s.fanout_secs.to_string(),
                "--payload",
                &s.payload.to_string(),
            ]),
            rows: FANOUT_ROWS,
            budget: budget(s.fanout_secs, s.fanout_subscribers),
        },
        ScenarioSpec {
            name: "rooms",
            title: format!(
                "rooms: {} clients in rooms of {}, each publishing {} msg/s, {}-byte payload, {} s",
                grouped(s.rooms_clients),
                s.room_size,
                s.rooms_rate,
                s.payload,
                s.rooms_secs
            ),
            args: strings(&[
                "--clients",
                &s.rooms_clients.to_string(),
                "--room-size",
                &s.room_size.to_string(),
                "--rate",
                &s.rooms_rate.to_string(),
                "--seconds",
                &s.rooms_secs.to_string(),
                "--payload",
                &s.payload.to_string(),
            ]),
            rows: ROOMS_ROWS,
            budget: budget(s.rooms_secs, s.rooms_clients),
        },
        ScenarioSpec {
            name: "ping",
            title: format!(
                "ping: {} connections × {} pings/s, {} s",
                grouped(s.ping_connections),
                s.ping_rate,
                s.ping_secs
            ),
            args: strings(&[
                "--connections",
                &s.ping_connections.to_string(),
                "--rate",
                &s.ping_rate.to_string(),
                "--seconds",
                &s.ping_secs.to_string(),
            ]),
            rows: PING_ROWS,
            budget: budget(s.ping_secs, s.ping_connections),
        },
    ]
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

/// The `HOST:PORT` of a `ws://HOST:PORT/path` URL.
pub(crate) fn host_port(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("ws://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(&rest[..end]).filter(|hp| hp.contains(':'))
}

/// The figures of the last stdout line of `cerebrum bench SCENARIO`.
pub(crate) fn parse_bench_stdout(
    stdout: &str,
    scenario: &str,
) -> Result<Vec<(String, f64)>, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| "the load generator printed nothing".to_owned())?;
    let fields =
        report::parse_flat_json(line).map_err(|e| format!("bad JSON line `{line}`: {e}"))?;
    match fields.iter().find(|(key, _)| key == "scenario") {
        Some((_, report::JsonValue::Text(name))) if name == scenario => {}
        _ => {
            return Err(format!(
                "the JSON line is not of scenario {scenario}: `{line}`"
            ));
        }
    }
    report::numeric_fields(line)
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

/// How long a server may take to be ready, and to stop after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often child processes are polled.
const POLL: Duration = Duration::from_millis(50);

/// How to start a built server.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) server: Server,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    /// Flags appended after `cerebrum serve`'s own (ours only), e.g. `--redis URL`.
    pub(crate) serve_args: Vec<OsString>,
}

/// A started server; stopped when dropped.
pub(crate) struct Running {
    server: Server,
    child: Child,
    url: String,
    log: PathBuf,
    data_dir: Option<PathBuf>,
    stopped: bool,
}

impl Launch {
    /// Starts the server for run `run` and waits until it accepts connections.
    fn start(&self, target: &Path, run: usize) -> Result<Running, String> {
        self.start_named(target, &format!("{}-run{run}", self.server.name()))
    }

    /// Starts the server with its log and data directory named `name` (unique per running
    /// server) and waits until it accepts connections.
    pub(crate) fn start_named(&self, target: &Path, name: &str) -> Result<Running, String> {
        let logs = target.join("bench-logs");
        fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let log = logs.join(format!("{name}.log"));
        let log_file =
            fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        // Raise the open-files limit to the hard limit, keeping the pid (`exec`).
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec \"$@\"")
            .arg("sh")
            .arg(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stderr(log_file);
        let (data_dir, port) = match self.server {
            Server::Ours => {
                let dir = target.join("bench-data").join(name);
                let _ = fs::remove_dir_all(&dir);
                fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                command
                    .args(["serve", "--addr", "127.0.0.1:0", "--rate-limit", "0"])
                    .arg("--data-dir")
                    .arg(&dir)
                    .args(&self.serve_args)
                    .stdout(Stdio::piped());
                (Some(dir), None)
            }
            Server::NodeWs | Server::RustRaw => {
                let port = free_port()?;
                command.arg(port.to_string()).stdout(Stdio::null());
                (None, Some(port))
            }
        };
        let child = command
            .spawn()
            .map_err(|e| format!("could not start `{}`: {e}", self.program.display()))?;
        let mut running = Running {
            server: self.server,
            child,
            url: String::new(),
            log,
            data_dir,
            stopped: false,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        running.url = match port {
            Some(port) => format!("ws://127.0.0.1:{port}/ws"),
            None => running.ready_line(deadline)?,
        };
        let addr = host_port(&running.url)
            .and_then(|hp| hp.parse::<SocketAddr>().ok())
            .ok_or_else(|| format!("cannot read the address of `{}`", running.url))?;
        running.wait_for_port(addr, deadline)?;
        Ok(running)
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot pick a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a free port: {e}"))
}

/// The last non-empty line of a log file.
fn last_log_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty log)")
        .trim()
        .to_owned()
}

impl Running {
    /// The server's WebSocket URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Why the server is no longer running, if it is not.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "{} exited ({status}): {} (log: {})",
                self.server.name(),
                last_log_line(&self.log),
                self.log.display()
            )),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for {}: {e}", self.server.name())),
        }
    }

    /// Our server's `listening on ws://…` line on stdout; the rest of stdout is drained.
    fn ready_line(&mut self, deadline: Instant) -> Result<String, String> {
        let stdout = self
            .child
            .stdout
            .take()
            .ok_or_else(|| "no stdout to read".to_owned())?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(url) = line.trim().strip_prefix("listening on ") {
                    sent = tx.send(url.trim().to_owned()).is_ok();
                }
            }
        });
        loop {
            match rx.recv_timeout(POLL) {
                Ok(url) => return Ok(url),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    thread::sleep(POLL);
                    return Err(self
                        .exited()
                        .unwrap_or_else(|| "closed stdout without a ready line".to_owned()));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(why) = self.exited() {
                        return Err(why);
                    }
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "no `listening on` line within {} s",
                            START_TIMEOUT.as_secs()
                        ));
                    }
                }
            }
        }
    }

    /// Waits until `addr` accepts TCP connections.
    fn wait_for_port(&mut self, addr: SocketAddr, deadline: Instant) -> Result<(), String> {
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(why) = self.exited() {
                return Err(why);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{addr} accepted no connection within {} s",
                    START_TIMEOUT.as_secs()
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// Stops the server: SIGTERM, then SIGKILL after 10 s. Reports anything unexpected
    /// (already exited, killed, our server's non-zero exit).
    fn stop(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let name = self.server.name();
        let result = match self.child.try_wait() {
            Ok(Some(status)) => Err(format!(
                "{name} had exited before it was stopped ({status}): {}",
                last_log_line(&self.log)
            )),
            _ => {
                let _ = Command::new("kill")
                    .args(["-TERM", &self.pid().to_string()])
                    .stdin(Stdio::null())
                    .status();
                let deadline = Instant::now() + STOP_TIMEOUT;
                let mut status = None;
                while Instant::now() < deadline {
                    if let Ok(Some(s)) = self.child.try_wait() {
                        status = Some(s);
                        break;
                    }
                    thread::sleep(POLL);
                }
                match status {
                    Some(s) if self.server != Server::Ours || s.success() => Ok(()),
                    Some(s) => Err(format!("{name} exited with {s} after SIGTERM")),
                    None => {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        Err(format!(
                            "{name} did not exit within {} s of SIGTERM: killed",
                            STOP_TIMEOUT.as_secs()
                        ))
                    }
                }
            }
        };
        if let Some(dir) = &self.data_dir {
            let _ = fs::remove_dir_all(dir);
        }
        result
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Reads a pipe to the end on a thread.
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Runs the load generator (stdout and stderr piped) for at most `budget`: its exit status
/// (`None` when it was killed at the deadline), stdout and stderr.
fn run_within(
    command: &mut Command,
    budget: Duration,
) -> Result<(Option<ExitStatus>, String, String), String> {
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start the load generator: {e}"))?;
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let deadline = Instant::now() + budget;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Ok((
        status,
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    ))
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
    let mut command = bench_command(cerebrum, &running.url, running.pid(), spec);
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

/// `cargo build --release -p cerebrum-cli`; the path of the `cerebrum` binary.
pub(crate) fn build_ours(root: &Path, target: &Path) -> Result<PathBuf, Error> {
    let mut command = Command::new(process::cargo());
    command
        .current_dir(root)
        .args(["build", "--release", "-p", "cerebrum-cli"]);
    println!("==> bench: {}", process::render(&command));
    process::run(&mut command)?;
    let binary = target.join("release").join("cerebrum");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(Error::Failed(format!(
            "built, but there is no {} (is the target directory elsewhere?)",
            binary.display()
        )))
    }
}

/// Copies a directory tree (without `node_modules`), making the copies writable.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries = fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let name = entry.file_name();
        if name == "node_modules" {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        if source.is_dir() {
            copy_tree(&source, &dest)?;
        } else {
            let _ = fs::remove_file(&dest);
            fs::copy(&source, &dest).map_err(|e| {
                format!(
                    "cannot copy {} to {}: {e}",
                    source.display(),
                    dest.display()
                )
            })?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o644))
                .map_err(|e| format!("cannot make {} writable: {e}", dest.display()))?;
        }
    }
    Ok(())
}

/// The Node `ws` peer: copied to `TARGET/bench-peers/node-ws`, `npm ci` there.
fn build_node_ws(shared: &Path, target: &Path) -> Result<Launch, String> {
    let dest = target.join("bench-peers").join("node-ws");
    println!(
        "==> bench: copy {} to {}",
        shared.join("node-ws").display(),
        dest.display()
    );
    copy_tree(&shared.join("node-ws"), &dest)?;
    let mut command = Command::new("npm");
    command.arg("ci").current_dir(&dest);
    println!("==> bench: (cd {} && npm ci)", dest.display());
    process::run(&mut command).map_err(|e| e.to_string())?;
    Ok(Launch {
        server: Server::NodeWs,
        program: PathBuf::from("node"),
        args: vec![dest.join("server.js").into_os_string()],
        serve_args: Vec::new(),
    })
}

/// The tokio-tungstenite peer, built into `TARGET/bench-peers` (`--locked`: nothing is
/// written into the read-only shared folder).
fn build_rust_raw(shared: &Path, target: &Path) -> Result<Launch, String> {
    let dir = target.join("bench-peers");
    let mut command = Command::new(process::cargo());
    command
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(shared.join("rust-raw").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&dir);
    println!("==> bench: {}", process::render(&command));
    process::run(&mut command).map_err(|e| e.to_string())?;
    let binary = dir.join("release").join("rust-raw");
    if binary.is_file() {
        Ok(Launch {
            server: Server::RustRaw,
            program: binary,
            args: Vec::new(),
            serve_args: Vec::new(),
        })
    } else {
        Err(format!("built, but there is no {}", binary.display()))
    }
}

/// The first line of a command's stdout, or `None`.
fn first_line(command: &mut Command) -> Option<String> {
    process::output(command)
        .ok()
        .and_then(|out| out.lines().next().map(|l| l.trim().to_owned()))
        .filter(|l| !l.is_empty())
}

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
fn servers_line(root: &Path, peers: bool) -> String {
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
         with the target of issue 7 (✓ met, ✗ not met)."
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
        let _ = write!(
            out,
            "\n### {}\n\n`cerebrum bench --url URL {pid}{} {}{server}`\n\n{table}",
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
                    println!("{label}: {} (pid {})", running.url, running.pid());
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
    fn scenario_flags_are_those_of_cerebrum_bench() {
        let specs = scenarios(&FULL);
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        assert_eq!(names, ["conns", "fanout", "rooms", "ping"]);
        let command = bench_command(
            Path::new("/t/cerebrum"),
            "ws://127.0.0.1:9/ws",
            42,
            &specs[1],
        );
        assert_eq!(
            process::render(&command),
            "cerebrum bench --url ws://127.0.0.1:9/ws --pid 42 fanout --subscribers 1000 \
             --rate 1000 --seconds 10 --payload 64"
        );
        assert_eq!(
            specs[0].args.join(" "),
            "--connections 10000 --channels 10 --hold-secs 5"
        );
        assert_eq!(
            specs[2].args.join(" "),
            "--clients 2000 --room-size 10 --rate 2 --seconds 10 --payload 64"
        );
        assert_eq!(
            specs[3].args.join(" "),
            "--connections 1000 --rate 10 --seconds 10"
        );
        assert_eq!(
            specs[1].title,
            "fanout: 1 000 subscribers × 1 000 msg/s, 64-byte payload, 10 s"
        );
        let quick = scenarios(&QUICK);
        assert_eq!(
            quick[1].args.join(" "),
            "--subscribers 100 --rate 200 --seconds 2 --payload 64"
        );
        // Every budget leaves room for the connects, the run and the drain.
        for spec in specs.iter().chain(&quick) {
            assert!(spec.budget >= Duration::from_secs(120), "{}", spec.name);
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
        let tables = vec![(&specs[3], "| figure | ours |\n|---|---|\n".to_owned())];
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
            "### Notes\n\n- run 2: ours exited",
        ] {
            assert!(section.contains(needle), "no {needle:?} in\n{section}");
        }
        // The section replaces itself in a document.
        let doc = report::replace_section(None, &section).unwrap();
        assert_eq!(report::replace_section(Some(&doc), &section).unwrap(), doc);
    }

    #[test]
    fn stopping_a_server_stops_it_and_removes_its_data() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-stop-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id();
        let mut running = Running {
            server: Server::RustRaw,
            child,
            url: String::new(),
            log: dir.join("none.log"),
            data_dir: Some(dir.clone()),
            stopped: false,
        };
        assert_eq!(running.exited(), None);
        assert_eq!(running.stop(), Ok(()));
        assert!(running.exited().is_some());
        assert!(!dir.exists());
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        // Dropping a stopped server does nothing more.
        drop(running);
    }

    #[test]
    fn a_server_that_exits_early_is_reported() {
        let launch = Launch {
            server: Server::RustRaw,
            program: PathBuf::from("false"),
            args: Vec::new(),
            serve_args: Vec::new(),
        };
        let target = std::env::temp_dir().join(format!("xtask-bench-early-{}", std::process::id()));
        let err = launch.start(&target, 1).err().unwrap();
        assert!(err.contains("rust-raw exited"), "{err}");
        let _ = fs::remove_dir_all(&target);
    }
}
