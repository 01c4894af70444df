//! What every example shares: `--url`, `--seconds`, `--token`, `--debug`, and a client built in
//! mock mode unless a URL is given.
#![allow(dead_code, clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use cerebrum_realtime::{Client, ClientBuilder};

/// Options of the examples.
pub(crate) struct Options {
    /// The server; `None` runs in mock mode.
    pub(crate) url: Option<String>,
    /// How long to run.
    pub(crate) seconds: u64,
    /// An auth token.
    pub(crate) token: Option<String>,
    /// `tracing` debug output of the client.
    pub(crate) debug: bool,
}

impl Options {
    /// Reads `--url URL --seconds N --token T --debug` from the command line.
    pub(crate) fn from_args() -> Self {
        let mut options = Self {
            url: None,
            seconds: 20,
            token: None,
            debug: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--url" => options.url = args.next(),
                "--seconds" => {
                    options.seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
                }
                "--token" => options.token = args.next(),
                "--debug" => options.debug = true,
                other => {
                    eprintln!(
                        "unknown argument {other}; usage: [--url ws://…] [--seconds N] [--token T] [--debug]"
                    );
                    std::process::exit(2);
                }
            }
        }
        options
    }

    /// A builder for the server, or for mock mode when no URL was given.
    pub(crate) fn builder(&self) -> ClientBuilder {
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| "wss://api.cerebrumbiologyacademy.com/ws".to_owned());
        let mut builder = Client::builder(url)
            .enable_mock_mode(self.url.is_none())
            .debug(self.debug)
            .on_connect(|| println!("● connected"))
            .on_disconnect(|reason| println!("○ disconnected: {reason}"))
            .on_error(|error| println!("! {error}"));
        if let Some(token) = &self.token {
            builder = builder.token(token.clone());
        }
        builder
    }

    /// How long to run.
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }

    /// Prints where the example connects.
    pub(crate) fn announce(&self, name: &str) {
        match &self.url {
            Some(url) => println!("{name}: {url} for {} s", self.seconds),
            None => println!(
                "{name}: mock mode for {} s (pass --url ws://… for a server)",
                self.seconds
            ),
        }
    }
}

/// Installs a `tracing` subscriber on stderr when `--debug` is given.
pub(crate) fn init_tracing(options: &Options) {
    if options.debug {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::DEBUG)
            .try_init();
    }
}
