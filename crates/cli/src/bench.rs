//! `cerebrum bench`: the load generator of `docs/benchmarks.md` (the scenarios live in the
//! `cerebrum-bench` library).

use std::process::ExitCode;

use cerebrum_bench::{
    ConnsOptions, Encoding, FanoutOptions, PingOptions, RoomsOptions, Scenario, SlowOptions,
    StormOptions, Target, raise_open_files_limit, run,
};
use clap::{Args, Subcommand, ValueEnum};

/// `--encoding` of the fan-out and rooms scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EncodingArg {
    /// JSON text frames (subprotocol `cerebrum.v1.json`).
    Json,
    /// Binary MessagePack frames (subprotocol `cerebrum.v1.msgpack`).
    Msgpack,
}

impl From<EncodingArg> for Encoding {
    fn from(arg: EncodingArg) -> Self {
        match arg {
            EncodingArg::Json => Self::Json,
            EncodingArg::Msgpack => Self::MessagePack,
        }
    }
}

/// Arguments of `cerebrum bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The server's WebSocket URL (loopback only), e.g. ws://127.0.0.1:8080/ws.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Another node of the same cluster (repeatable): connections are spread round-robin over
    /// `--url` and these.
    #[arg(long = "node", value_name = "URL")]
    nodes: Vec<String>,
    /// The server's pid: adds its RSS and CPU time (from /proc) to the report.
    #[arg(long)]
    pid: Option<u32>,
    /// Spread client sockets over this many source addresses (127.0.0.2 upwards).
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// Worker threads of the load generator [default: the number of cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Clients offer permessage-deflate (a server run with `--compression` then compresses
    /// large frames to them).
    #[arg(long)]
    compression: bool,
    /// The scenario.
    #[command(subcommand)]
    scenario: ScenarioArgs,
}

#[derive(Debug, Subcommand)]
enum ScenarioArgs {
    /// Open N connections subscribed to K channels: connect rate, server memory per connection.
    Conns {
        /// Connections to open.
        #[arg(long, default_value_t = 1_000)]
        connections: usize,
        /// Channels to spread them over.
        #[arg(long, default_value_t = 10)]
        channels: usize,
        /// Seconds to hold them open.
        #[arg(long, default_value_t = 5.0)]
        hold_secs: f64,
        /// Each connection's heartbeat while held: a ping every this many seconds (first pings
        /// spread over one period), each timed until its pong.
        #[arg(long, default_value_t = 20.0)]
        ping_secs: f64,
    },
    /// N subscribers of one channel, one publisher at R msg/s for S s with B-byte payloads.
    Fanout {
        /// Subscribers.
        #[arg(long, default_value_t = 1_000)]
        subscribers: usize,
        /// Publications per second.
        #[arg(long, default_value_t = 1_000.0)]
        rate: f64,
        /// Seconds of publishing.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Payload filler in bytes.
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Frames as JSON text or as binary MessagePack (every connection offers that
        /// subprotocol); the report's `wire_bytes_per_delivery` compares them.
        #[arg(long, value_enum, default_value_t = EncodingArg::Json)]
        encoding: EncodingArg,
    },
    /// Chat-like rooms of M clients, each publishing r msg/s.
    Rooms {
        /// Clients in all.
        #[arg(long, default_value_t = 2_000)]
        clients: usize,
        /// Clients per room.
        #[arg(long, default_value_t = 10)]
        room_size: usize,
        /// Publications per second of each client.
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Seconds of publishing.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Payload filler in bytes.
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Frames as JSON text or as binary MessagePack (every connection offers that
        /// subprotocol); the report's `wire_bytes_per_delivery` compares them.
        #[arg(long, value_enum, default_value_t = EncodingArg::Json)]
        encoding: EncodingArg,
    },
    /// Ping round trips under N connections.
    Ping {
        /// Connections.
        #[arg(long, default_value_t = 1_000)]
        connections: usize,
        /// Pings per second of each connection.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Seconds of pinging.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Keyed publications on channel `latest:bench`, readers that keep up and one that reads a
    /// fraction of them: is it closed 4008, how old is what it reads, how soon after the last
    /// publication does it hold the latest value of every key. Start the server with
    /// `--conflate latest=key --rate-limit 0` to measure conflation (without `--conflate`, the
    /// slow reader is closed 4008).
    Slow {
        /// Keys the publications cycle through.
        #[arg(long, default_value_t = 4)]
        keys: usize,
        /// Publications per second, all keys together.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Seconds of publishing.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Payload filler in bytes.
        #[arg(long, default_value_t = 1024)]
        payload: usize,
        /// The slow reader's pace as a fraction of the publication rate.
        #[arg(long, default_value_t = 0.1)]
        read_fraction: f64,
        /// Readers that keep up.
        #[arg(long, default_value_t = 1)]
        fast_readers: usize,
        /// The slow reader's socket receive buffer, bytes.
        #[arg(long, default_value_t = 4096)]
        recv_buffer: u32,
    },
    /// N facade clients (fleet reconnect preset) through a server restart: time until all are
    /// back and re-subscribed, publications before and after delivered in order.
    Storm {
        /// Clients.
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        /// Channels to spread them over.
        #[arg(long, default_value_t = 10)]
        channels: usize,
        /// Publications on every channel before the restart.
        #[arg(long, default_value_t = 5)]
        before: u64,
        /// Publications on every channel once every client is back.
        #[arg(long, default_value_t = 5)]
        after: u64,
        /// The shell command that starts the server on the port of --url (the scenario starts
        /// it, stops it with SIGTERM, starts it again, and stops it at the end); it must print
        /// a line with `listening on`.
        #[arg(long)]
        server_cmd: String,
        /// Every client also studies, as its own user on its own topic (started once
        /// subscribed and again once back), so that the server's study tracker holds a session
        /// per client through the storm.
        #[arg(long)]
        study: bool,
    },
}

impl ScenarioArgs {
    fn scenario(&self) -> Scenario {
        match *self {
            Self::Conns {
                connections,
                channels,
                hold_secs,
                ping_secs,
            } => Scenario::Conns(ConnsOptions {
                connections,
                channels,
                hold_secs,
                ping_secs,
            }),
            Self::Fanout {
                subscribers,
                rate,
                seconds,
                payload,
                encoding,
            } => Scenario::Fanout(FanoutOptions {
                subscribers,
                rate,
                seconds,
                payload_bytes: payload,
                encoding: encoding.into(),
            }),
            Self::Rooms {
                clients,
                room_size,
                rate,
                seconds,
                payload,
                encoding,
            } => Scenario::Rooms(RoomsOptions {
                clients,
                room_size,
                rate,
                seconds,
                payload_bytes: payload,
                encoding: encoding.into(),
            }),
            Self::Ping {
                connections,
                rate,
                seconds,
            } => Scenario::Ping(PingOptions {
                connections,
                rate,
                seconds,
            }),
            Self::Slow {
                keys,
                rate,
                seconds,
                payload,
                read_fraction,
                fast_readers,
                recv_buffer,
            } => Scenario::Slow(SlowOptions {
                keys,
                rate,
                seconds,
                payload_bytes: payload,
                read_fraction,
                fast_readers,
                recv_buffer,
            }),
            Self::Storm {
                clients,
                channels,
                before,
                after,
                ref server_cmd,
                study,
            } => Scenario::Storm(StormOptions {
                clients,
                channels,
                before,
                after,
                server_cmd: Some(server_cmd.clone()),
                study,
            }),
        }
    }
}

/// Runs the scenario; prints a table, then one JSON line, on stdout.
#[allow(clippy::print_stdout, clippy::print_stderr)] // a report on stdout is the command's job
pub(crate) fn run_bench(args: &BenchArgs) -> ExitCode {
    let target = match Target::new(&args.url).and_then(|t| t.with_nodes(&args.nodes)) {
        Ok(target) => target
            .with_pid(args.pid)
            .with_source_addresses(args.sources)
            .with_compression(args.compression),
        Err(err) => {
            eprintln!("cerebrum bench: {err}");
            return ExitCode::from(2);
        }
    };
    match raise_open_files_limit() {
        Ok(limit) => eprintln!("open-files limit: {limit}"),
        Err(err) => eprintln!("could not raise the open-files limit: {err}"),
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cerebrum bench: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&target, &args.scenario.scenario())) {
        Ok(report) => {
            print!("{}", report.table());
            println!("{}", report.json_line());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cerebrum bench: {err}");
            ExitCode::FAILURE
        }
    }
}
