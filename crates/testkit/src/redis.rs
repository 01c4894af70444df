//! A private `redis-server` on a free port, without persistence.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TestkitError, engine_missing, find_binary, free_port};

/// The engine's name in skip lines and errors.
pub const ENGINE: &str = "Redis";

/// A `redis-server` child process listening on `127.0.0.1:PORT`.
///
/// ```no_run
/// let Some(redis) = cerebrum_testkit::redis::RedisServer::start().unwrap() else { return };
/// println!("{}", redis.url());
/// ```
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one; `Ok(None)` (after a loud `SKIPPED:` line) when `redis-server` is not
    /// installed and engines are not required.
    pub fn start() -> Result<Option<Self>, TestkitError> {
        let Some(binary) = find_binary("redis-server", &[PathBuf::from("/usr/bin")]) else {
            engine_missing(
                ENGINE,
                "redis-server not found (install redis-server to run them)",
            )?;
            return Ok(None);
        };
        let port = free_port().map_err(|e| TestkitError::io("free port", e))?;
        let dir = tempfile::tempdir().map_err(|e| TestkitError::io("temp dir", e))?;
        let mut server = Self {
            binary,
            port,
            dir,
            child: None,
        };
        server.launch()?;
        Ok(Some(server))
    }

    fn launch(&mut self) -> Result<(), TestkitError> {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| TestkitError::io(format!("cannot start {}", self.binary.display()), e))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(TestkitError::Command {
            command: format!("redis-server --port {}", self.port),
            detail: "did not answer PING within 10 s".into(),
        })
    }

    /// `redis://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (its data is lost: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (after [`RedisServer::stop`]).
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop();
        self.launch()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis server answers `PING` on `port`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("+PONG")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn starts_answers_and_restarts_on_the_same_port() {
        let Some(mut redis) = RedisServer::start().unwrap() else {
            return;
        };
        assert!(ping(redis.port()));
        redis.stop();
        assert!(!ping(redis.port()));
        redis.restart().unwrap();
        assert!(ping(redis.port()));
    }
}
