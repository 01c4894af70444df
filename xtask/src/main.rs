//! Project automation for cerebrum-realtime, run as `cargo xtask <command>`.
//!
//! The commands, their options and the usage text are declared once, as the clap types below
//! (`cargo xtask help` prints them). Adding a command is one variant of [`Command`] (its doc
//! comment is its help, its fields or args struct its options) and its arm in [`run`].
//!
//! Exit codes: 0 success, 1 a step failed, 2 usage error.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bench_cluster;
mod bench_report;
mod changelog;
mod ci;
mod manifest;
mod process;
mod release;
mod sim;
mod version;
mod wasm;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bench::BenchArgs;
use bench_cluster::ClusterArgs;
use process::Error;
use release::ReleaseArgs;

/// Project automation for cerebrum-realtime.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    after_help = "Exit codes: 0 success, 1 a step failed, 2 usage error."
)]
struct Cli {
    /// The workspace root (default: $XTASK_ROOT, else the workspace this xtask belongs to).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
enum Command {
    /// Run the CI steps in order, stopping at the first failure
    ///
    /// cargo fmt --all -- --check; cargo clippy --workspace --all-targets -- -D warnings; cargo test --workspace;
    /// RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps.
    Ci,
    /// Set every publishable crate to VERSION, check the changelog, package, commit and tag
    ///
    /// Sets every publishable crate to VERSION, checks CHANGELOG.md has a section for it, runs
    /// cargo package; with --dry-run package only, then restore every file; otherwise (needs a clean
    /// git tree) commit "Release VERSION" and tag vVERSION; publish only with --publish.
    Release(ReleaseArgs),
    /// Run the `cerebrum bench` scenarios against ours (and the peers) and write the tables
    ///
    /// Builds cerebrum in release and runs the `cerebrum bench` scenarios against a fresh
    /// `cerebrum serve` per run, then writes the tables (median and
    /// min-max over the runs) between the <!-- bench:begin --> and <!-- bench:end --> markers
    /// of FILE and prints them. A scenario that fails is recorded as "failed: reason", the run
    /// goes on, and the exit code is then 1.
    Bench(BenchArgs),
    /// Run the multi-node fan-out benchmark (needs redis-server)
    ///
    /// Fan-out (1 000 subscribers x 1 000 msg/s, 10 s; --quick: 100 x 100, 2 s) with 1, 2 and 3
    /// `cerebrum serve --redis` nodes on a private redis-server against one in-memory node;
    /// writes the table between <!-- cluster:begin --> and <!-- cluster:end --> of FILE.
    /// With --hold instead: 100 000 connections (--hold-connections) held 60 s (--hold-secs)
    /// with heartbeats on 6 nodes (--hold-nodes), one load generator per node, per-node and
    /// total RSS, CPU and heartbeat latencies and the extrapolation to one node, between
    /// <!-- hold:begin --> and <!-- hold:end -->.
    BenchCluster(ClusterArgs),
    /// Build the browser client's WebAssembly, its generated types and the dashboard's bundle
    ///
    /// Builds crates/wasm for wasm32-unknown-unknown with the wasm-bindgen CLI of Cargo.lock's
    /// version, regenerates the TypeScript payload types and bundles the dashboard; with --check,
    /// builds into the target directory and fails if the committed assets differ.
    Wasm {
        /// Rebuild aside and fail if the committed assets differ.
        #[arg(long)]
        check: bool,
    },
    /// Run the deterministic simulation over many seeds (a long campaign)
    ///
    /// Runs cerebrum-sim's world for seeds FROM..FROM+SEEDS on every core, checking its
    /// invariants after every step; prints each failing seed with the command that replays it.
    /// `--seed N` replays one seed.
    Sim(sim::SimArgs),
}

/// Parses the arguments after `xtask` (help and usage errors come back as clap errors, which
/// know their exit code: 0 for help, 2 for usage; every usage error shows the usage line).
fn parse(args: &[String]) -> Result<Cli, clap::Error> {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().map(String::as_str))).map_err(
        |mut error| {
            if error.get(ContextKind::Usage).is_none() {
                let usage = Cli::command().render_usage();
                error.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
            }
            error
        },
    )
}

/// The command line as typed, for the documents the benchmarks write.
fn typed_command(args: &[String]) -> String {
    std::iter::once("cargo xtask")
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The workspace root: `--root`, else `$XTASK_ROOT`, else the parent of this
/// crate's directory (as `cargo run` reports it at run time).
fn resolve_root(root: Option<PathBuf>) -> Result<PathBuf, Error> {
    let root = root
        .or_else(|| std::env::var_os("XTASK_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| {
            // `cargo run` (the `cargo xtask` alias) tells the program where its manifest is.
            // Prefer that to the path compiled in: clones that share a target directory reuse
            // one xtask binary, whose compiled-in path names the clone that built it.
            let here = std::env::var_os("CARGO_MANIFEST_DIR")
                .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
            here.parent()
                .map_or_else(|| here.clone(), Path::to_path_buf)
        });
    if !root.join("Cargo.toml").is_file() {
        return Err(Error::Usage(format!(
            "{} is not a workspace root (no Cargo.toml)",
            root.display()
        )));
    }
    root.canonicalize()
        .map_err(|e| Error::Failed(format!("cannot resolve {}: {e}", root.display())))
}

/// Runs a parsed command line (`args` as typed, for the benchmark documents).
fn run(cli: Cli, args: &[String]) -> Result<(), Error> {
    let root = resolve_root(cli.root)?;
    match cli.command {
        Command::Ci => ci::run(&root),
        Command::Release(release) => release::run(&root, &release),
        Command::Bench(bench) => bench::run(&root, &bench, &typed_command(args)),
        Command::BenchCluster(cluster) => bench_cluster::run(&root, &cluster, &typed_command(args)),
        Command::Wasm { check } => wasm::run(&root, check),
        Command::Sim(sim) => sim::run(&sim),
    }
}

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let args = match args {
        Ok(args) => args,
        Err(bad) => {
            eprintln!(
                "xtask: error: argument `{}` is not valid UTF-8",
                bad.to_string_lossy()
            );
            return ExitCode::from(2);
        }
    };
    let cli = match parse(&args) {
        Ok(cli) => cli,
        // Help (exit 0) and usage errors (exit 2, with the usage).
        Err(error) => error.exit(),
    };
    match run(cli, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    /// Parses a space-separated command line.
    fn parse_str(line: &str) -> Result<Cli, clap::Error> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    /// A line that must parse.
    fn ok(line: &str) -> Cli {
        parse_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// A parsed line without `--root`.
    fn plain(command: Command) -> Cli {
        Cli {
            root: None,
            command,
        }
    }

    /// The release arguments of a parsed line.
    fn release(version: &str, dry_run: bool, publish: bool) -> Command {
        Command::Release(ReleaseArgs {
            version: version.to_owned(),
            dry_run,
            publish,
        })
    }

    /// The kind of error a line gives.
    fn error_kind(line: &str) -> Option<ErrorKind> {
        parse_str(line).err().map(|e| e.kind())
    }

    #[test]
    fn the_clap_declaration_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_commands() {
        for help in ["help", "--help", "release --help", "bench --quick --help"] {
            assert_eq!(error_kind(help), Some(ErrorKind::DisplayHelp), "{help}");
        }
        let help = {
            use clap::CommandFactory;
            Cli::command().render_help().to_string()
        };
        for command in ["ci", "release", "bench", "bench-cluster", "--root <DIR>"] {
            assert!(help.contains(command), "{command} missing in\n{help}");
        }
        assert_eq!(ok("ci"), plain(Command::Ci));
        assert_eq!(
            ok("ci --root /tmp/ws"),
            Cli {
                root: Some(PathBuf::from("/tmp/ws")),
                command: Command::Ci,
            }
        );
        assert_eq!(
            ok("release --dry-run 0.2.0"),
            plain(release("0.2.0", true, false))
        );
        assert_eq!(
            ok("release 1.0.0-rc.1 --publish --root=/w"),
            Cli {
                root: Some(PathBuf::from("/w")),
                command: release("1.0.0-rc.1", false, true),
            }
        );
    }

    #[test]
    fn parses_bench() {
        assert_eq!(ok("bench"), plain(Command::Bench(BenchArgs::default())));
        assert_eq!(
            BenchArgs::default(),
            BenchArgs {
                peers: false,
                runs: 3,
                quick: false,
                out: PathBuf::from("docs/benchmarks.md"),
            }
        );
        assert_eq!(
            ok("bench --peers --quick --runs 5 --out /tmp/b.md"),
            plain(Command::Bench(BenchArgs {
                peers: true,
                runs: 5,
                quick: true,
                out: PathBuf::from("/tmp/b.md"),
            }))
        );
        assert_eq!(
            ok("bench --runs=1 --out=x.md --root=/w"),
            Cli {
                root: Some(PathBuf::from("/w")),
                command: Command::Bench(BenchArgs {
                    runs: 1,
                    out: PathBuf::from("x.md"),
                    ..BenchArgs::default()
                }),
            }
        );
        assert_eq!(
            ok("bench-cluster --runs 3 --quick"),
            plain(Command::BenchCluster(ClusterArgs {
                runs: 3,
                quick: true,
                ..ClusterArgs::default()
            }))
        );
        assert_eq!(
            ok("bench-cluster"),
            plain(Command::BenchCluster(ClusterArgs::default()))
        );
        assert_eq!(
            ok("bench-cluster --hold"),
            plain(Command::BenchCluster(ClusterArgs {
                hold: true,
                ..ClusterArgs::default()
            }))
        );
        assert_eq!(
            ok("bench-cluster --hold --hold-connections 6000 --hold-nodes 3 --hold-secs 10"),
            plain(Command::BenchCluster(ClusterArgs {
                hold: true,
                hold_connections: 6_000,
                hold_nodes: 3,
                hold_secs: 10,
                ..ClusterArgs::default()
            }))
        );
    }

    #[test]
    fn usage_errors() {
        for (line, kind, why) in [
            ("", ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand, ""),
            ("bnech", ErrorKind::InvalidSubcommand, "bnech"),
            ("bench extra", ErrorKind::UnknownArgument, "extra"),
            ("bench --runs", ErrorKind::InvalidValue, "--runs"),
            (
                "bench --runs 0",
                ErrorKind::ValueValidation,
                "from 1 to 100",
            ),
            (
                "bench --runs=x",
                ErrorKind::ValueValidation,
                "from 1 to 100",
            ),
            ("bench --out", ErrorKind::InvalidValue, "--out"),
            ("bench --out=", ErrorKind::InvalidValue, "--out"),
            ("bench --quick=yes", ErrorKind::TooManyValues, "--quick"),
            ("bench --dry-run", ErrorKind::UnknownArgument, "--dry-run"),
            (
                "bench-cluster --peers",
                ErrorKind::UnknownArgument,
                "--peers",
            ),
            ("ci --peers", ErrorKind::UnknownArgument, "--peers"),
            (
                "bench-cluster --hold-nodes 3",
                ErrorKind::MissingRequiredArgument,
                "--hold",
            ),
            (
                "bench-cluster --hold --runs 2",
                ErrorKind::ArgumentConflict,
                "--runs",
            ),
            (
                "bench-cluster --hold --quick",
                ErrorKind::ArgumentConflict,
                "--quick",
            ),
            (
                "bench-cluster --hold --hold-nodes 0",
                ErrorKind::ValueValidation,
                "--hold-nodes",
            ),
            (
                "bench-cluster --hold --hold-connections 0",
                ErrorKind::ValueValidation,
                "--hold-connections",
            ),
            (
                "release --runs 2 0.1.0",
                ErrorKind::UnknownArgument,
                "--runs",
            ),
            ("ci extra", ErrorKind::UnknownArgument, "extra"),
            ("ci --dry-run", ErrorKind::UnknownArgument, "--dry-run"),
            ("release", ErrorKind::MissingRequiredArgument, "<VERSION>"),
            ("release 0.1.0 0.2.0", ErrorKind::UnknownArgument, "0.2.0"),
            (
                "release --force 0.1.0",
                ErrorKind::UnknownArgument,
                "--force",
            ),
            (
                "release 0.1",
                ErrorKind::ValueValidation,
                "not a valid release version",
            ),
            (
                "release --dry-run --publish 0.1.0",
                ErrorKind::ArgumentConflict,
                "--publish",
            ),
            ("release 0.1.0 --root", ErrorKind::InvalidValue, "--root"),
        ] {
            match parse_str(line) {
                Err(e) => {
                    assert_eq!(e.kind(), kind, "{line:?}: {e}");
                    assert_eq!(e.exit_code(), 2, "{line:?}");
                    assert!(e.to_string().contains(why), "{line:?}: {e}");
                }
                Ok(cli) => panic!("{line:?}: expected a usage error, got {cli:?}"),
            }
        }
    }

    #[test]
    fn root_must_hold_a_manifest() {
        let err = resolve_root(Some(PathBuf::from("/nonexistent/xtask-root"))).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let here = resolve_root(None).unwrap();
        assert!(here.join("xtask").join("Cargo.toml").is_file());
    }
}
