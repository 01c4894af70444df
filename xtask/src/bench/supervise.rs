//! Process supervision: starting a built server on a free port, waiting until it accepts
//! connections, stopping it (SIGTERM, then kill) and running a child within a time bound.

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// How long a server may take to be ready, and to stop after SIGTERM.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it is killed.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often child processes are polled.
pub(super) const POLL: Duration = Duration::from_millis(50);

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
    pub(super) fn start(&self, target: &Path, run: usize) -> Result<Running, String> {
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
pub(super) fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot pick a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a free port: {e}"))
}

/// The last non-empty line of a log file.
pub(super) fn last_log_line(path: &Path) -> String {
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
    pub(crate) fn exited(&mut self) -> Option<String> {
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
    pub(super) fn ready_line(&mut self, deadline: Instant) -> Result<String, String> {
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
    pub(super) fn wait_for_port(
        &mut self,
        addr: SocketAddr,
        deadline: Instant,
    ) -> Result<(), String> {
        loop {
            let accepted = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
            // A server that has exited is not ready, even if something else took its port
            // meanwhile (a port from `free_port` can be reused by another process).
            if let Some(why) = self.exited() {
                return Err(why);
            }
            if accepted {
                return Ok(());
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
    pub(super) fn stop(&mut self) -> Result<(), String> {
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
pub(super) fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
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
pub(crate) fn run_within(
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

#[cfg(test)]
mod tests {
    use super::*;

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
