//! What the CLI's tests share: the `cerebrum` binary, and `cerebrum serve` started on a free
//! port with its `listening on URL` line read.
//!
//! Here and not in `cerebrum-testkit`: `env!("CARGO_BIN_EXE_cerebrum")` only exists in this
//! crate's tests.
#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};

/// The `cerebrum` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_cerebrum");

/// A `cerebrum serve` process started by a test; killed (SIGKILL) when dropped.
pub struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    /// Starts `cerebrum serve --addr 127.0.0.1:0`, then whatever `configure` adds (arguments,
    /// environment, a stderr file, a working directory), and waits for its first line,
    /// `listening on URL`. `CEREBRUM_JWT_SECRET` is removed from the environment (auth is off
    /// unless the test asks for it) and stderr is discarded unless `configure` says otherwise;
    /// the rest of stdout is not read.
    ///
    /// # Panics
    /// When the process cannot be started or its first line is not `listening on …`.
    pub fn start(configure: impl FnOnce(&mut Command) -> &mut Command) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env_remove("CEREBRUM_JWT_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut command);
        let mut child = command.spawn().expect("`cerebrum serve` starts");
        let mut line = String::new();
        let read =
            BufReader::new(child.stdout.take().expect("stdout is piped")).read_line(&mut line);
        let url = read
            .ok()
            .and_then(|_| line.trim().strip_prefix("listening on "))
            .map(str::to_owned);
        let Some(url) = url else {
            let _ = child.kill();
            let status = child.wait();
            panic!("`cerebrum serve` printed {line:?} first, then exited with {status:?}");
        };
        Self { child, url }
    }

    /// The `ws://` (or `wss://`) URL of the `listening on` line.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a graceful shutdown); [`Serve::wait`] then gives the exit status.
    ///
    /// # Panics
    /// When `kill` cannot be run or fails.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .expect("`kill` runs");
        assert!(status.success(), "kill -TERM {}: {status:?}", self.id());
    }

    /// Waits for the process to exit (blocking).
    ///
    /// # Panics
    /// When waiting fails.
    pub fn wait(mut self) -> ExitStatus {
        self.child.wait().expect("waiting for `cerebrum serve`")
    }

    /// SIGKILL: no goodbye to anyone; waits for the exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}
