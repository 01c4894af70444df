//! `cerebrum`: the command line of cerebrum-realtime. A thin dispatcher: one module per
//! subcommand, the logic lives in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod connect;
mod dashboard;
mod demo;
mod serve;
mod token;

/// The real-time layer of a learning platform.
#[derive(Debug, Parser)]
#[command(name = "cerebrum", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: WebSocket at /ws, /healthz, /metrics and the admin API on one port.
    Serve(Box<serve::ServeArgs>),
    /// Mint a development JWT (HS256).
    Token(token::TokenArgs),
    /// Load-test a server on loopback: conns, fanout, rooms and ping scenarios.
    Bench(bench::BenchArgs),
    /// Connect to a server (or the mock): envelopes as JSON lines on stdout, stdin lines sent.
    Connect(connect::ConnectArgs),
    /// The terminal dashboard: study metrics, sessions, notifications, system status, connection.
    Dashboard(dashboard::DashboardArgs),
    /// The whole system with nothing to set up: an embedded server, simulated students and the
    /// dashboard.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Token(args) => token::run(&args),
        Command::Bench(args) => bench::run_bench(&args),
        Command::Connect(args) => connect::run(args),
        Command::Dashboard(args) => dashboard::run(&args),
        Command::Demo(args) => demo::run(&args),
    }
}
