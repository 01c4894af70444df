//! Project automation for cerebrum-realtime, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: the CI steps (the same ones `.ci/run` runs).
//! - `cargo xtask release [--dry-run] [--publish] VERSION`: set the version of
//!   every publishable crate, check the changelog, package, commit and tag.
//! - `cargo xtask bench [--peers] [--runs N] [--quick] [--out FILE]`: build `cerebrum` in
//!   release (and with `--peers` the Node `ws` and tokio-tungstenite peers of
//!   `../shared/bench-peers/`), run the `cerebrum bench` scenarios (conns, fanout, rooms, ping)
//!   against each server in turn, a fresh server per run, and write the side-by-side tables
//!   (median and min–max over the runs, ratios to the peers against the targets of issue 7)
//!   between the `<!-- bench:begin -->` and `<!-- bench:end -->` markers of
//!   `docs/benchmarks.md`.
//! - `cargo xtask wasm [--check]`: build the browser client's WebAssembly, its generated types
//!   and the dashboard's bundle (see `wasm.rs`); `--check` fails if the committed ones differ.
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
mod semver;
mod toml_lines;
mod wasm;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bench::BenchArgs;
use process::Error;
use release::ReleaseArgs;

/// The usage text.
const USAGE: &str = "\
Usage: cargo xtask <COMMAND> [OPTIONS]

Commands:
  ci                                  run the CI steps in order, stopping at the first failure:
                                        cargo fmt --all -- --check
                                        cargo clippy --workspace --all-targets -- -D warnings
                                        cargo test --workspace
                                        RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps
  release [--dry-run] [--publish] VERSION
                                      set every publishable crate to VERSION (x.y.z or x.y.z-pre),
                                      check CHANGELOG.md has a section for it, cargo package;
                                      --dry-run: package only, then restore every file;
                                      otherwise: needs a clean git tree, commits \"Release VERSION\"
                                      and tags vVERSION; publishes only with --publish
  bench [--peers] [--runs N] [--quick] [--out FILE]
                                      build cerebrum in release and run the `cerebrum bench`
                                      scenarios conns, fanout, rooms, ping (the sizes of issue 7;
                                      --quick: small ones, ~30 s per server once built) against
                                      a fresh `cerebrum serve` per run, then write the tables
                                      (median and min-max over the runs) between the
                                      <!-- bench:begin --> and <!-- bench:end --> markers of
                                      FILE (default docs/benchmarks.md) and print them;
                                      --peers: also build and run the Node `ws` and
                                      tokio-tungstenite peers of ../shared/bench-peers (into
                                      TARGET/bench-peers) with ratios ours/peer;
                                      --runs N: runs per server (default 3, 1 to 100);
                                      a scenario that fails is recorded as \"failed: reason\",
                                      the run goes on, and the exit code is then 1
  bench-cluster [--runs N] [--quick] [--out FILE]
                                      fan-out (1 000 subscribers x 1 000 msg/s, 10 s; --quick:
                                      100 x 100, 2 s) with 1, 2 and 3 `cerebrum serve --redis`
                                      nodes on a private redis-server against one in-memory
                                      node; writes the table between <!-- cluster:begin -->
                                      and <!-- cluster:end --> of FILE (needs redis-server)
  help                                print this help

Options:
  --root DIR                          the workspace root (default: $XTASK_ROOT, else the
                                      workspace this xtask belongs to)

Exit codes: 0 success, 1 a step failed, 2 usage error.
";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cli {
    /// Print the usage.
    Help,
    /// Run the CI steps.
    Ci {
        /// `--root`, if given.
        root: Option<PathBuf>,
    },
    /// Release the workspace.
    Release {
        /// `--root`, if given.
        root: Option<PathBuf>,
        /// The release arguments.
        args: ReleaseArgs,
    },
    /// Run the benchmarks.
    Bench {
        /// `--root`, if given.
        root: Option<PathBuf>,
        /// The bench arguments.
        args: BenchArgs,
    },
    /// Run the multi-node fan-out benchmark.
    BenchCluster {
        /// `--root`, if given.
        root: Option<PathBuf>,
        /// Its arguments.
        args: bench_cluster::ClusterArgs,
    },
}

/// A usage error.
fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

/// Parses the arguments after `xtask`.
fn parse(args: &[String]) -> Result<Cli, Error> {
    let Some((command, rest)) = args.split_first() else {
        return Err(usage("no command given"));
    };
    let mut root = None;
    let mut dry_run = false;
    let mut publish = false;
    let mut bench_args = BenchArgs::default();
    let mut positional = Vec::new();
    let mut iter = rest.iter();
    let is_release = command == "release";
    let is_cluster = command == "bench-cluster";
    let is_bench = command == "bench" || is_cluster;
    let mut options_done = false;
    while let Some(arg) = iter.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            positional.push(arg.clone());
            continue;
        }
        // `--name=value` or `--name value`.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| match inline.clone().or_else(|| iter.next().cloned()) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(usage(format!("{name} needs {what}"))),
        };
        let takes_value =
            matches!(name, "--root") || (is_bench && matches!(name, "--runs" | "--out"));
        if inline.is_some() && !takes_value {
            return Err(usage(format!("unknown option `{arg}` for `{command}`")));
        }
        match name {
            "--" => options_done = true,
            "-h" | "--help" => return Ok(Cli::Help),
            "--root" => root = Some(PathBuf::from(value("a directory")?)),
            "--dry-run" if is_release => dry_run = true,
            "--publish" if is_release => publish = true,
            "--peers" if is_bench => bench_args.peers = true,
            "--quick" if is_bench => bench_args.quick = true,
            "--runs" if is_bench => {
                bench_args.runs = bench::parse_runs(&value("a number")?).map_err(usage)?
            }
            "--out" if is_bench => bench_args.out = PathBuf::from(value("a file")?),
            _ => return Err(usage(format!("unknown option `{arg}` for `{command}`"))),
        }
    }
    match command.as_str() {
        "help" | "-h" | "--help" => Ok(Cli::Help),
        "ci" => match positional.as_slice() {
            [] => Ok(Cli::Ci { root }),
            [extra, ..] => Err(usage(format!("`ci` takes no arguments, got `{extra}`"))),
        },
        "release" => {
            let version = match positional.as_slice() {
                [version] => version.clone(),
                [] => return Err(usage("`release` needs a VERSION, e.g. 0.2.0")),
                [_, extra, ..] => {
                    return Err(usage(format!(
                        "`release` takes one VERSION, got also `{extra}`"
                    )));
                }
            };
            semver::validate(&version).map_err(Error::Usage)?;
            if dry_run && publish {
                return Err(usage("--publish cannot be combined with --dry-run"));
            }
            Ok(Cli::Release {
                root,
                args: ReleaseArgs {
                    version,
                    dry_run,
                    publish,
                },
            })
        }
        "bench" => match positional.as_slice() {
            [] => Ok(Cli::Bench {
                root,
                args: bench_args,
            }),
            [extra, ..] => Err(usage(format!("`bench` takes no arguments, got `{extra}`"))),
        },
        "bench-cluster" => match positional.as_slice() {
            [] if bench_args.peers => Err(usage("`bench-cluster` has no --peers")),
            [] => Ok(Cli::BenchCluster {
                root,
                args: bench_cluster::ClusterArgs {
                    runs: bench_args.runs,
                    quick: bench_args.quick,
                    out: bench_args.out,
                },
            }),
            [extra, ..] => Err(usage(format!(
                "`bench-cluster` takes no arguments, got `{extra}`"
            ))),
        },
        other => Err(usage(format!("unknown subcommand `{other}`"))),
    }
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
        return Err(usage(format!(
            "{} is not a workspace root (no Cargo.toml)",
            root.display()
        )));
    }
    root.canonicalize()
        .map_err(|e| Error::Failed(format!("cannot resolve {}: {e}", root.display())))
}

/// Parses and runs the command line.
fn run(args: &[String]) -> Result<(), Error> {
    if let Some((command, rest)) = args.split_first()
        && command == "wasm"
    {
        return wasm::run(&resolve_root(None)?, rest);
    }
    match parse(args)? {
        Cli::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Cli::Ci { root } => ci::run(&resolve_root(root)?),
        Cli::Release { root, args } => release::run(&resolve_root(root)?, &args),
        Cli::Bench {
            root,
            args: bench_args,
        } => {
            let typed = typed_command(args);
            bench::run(&resolve_root(root)?, &bench_args, &typed)
        }
        Cli::BenchCluster {
            root,
            args: cluster,
        } => {
            let typed = typed_command(args);
            bench_cluster::run(&resolve_root(root)?, &cluster, &typed)
        }
    }
}

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let result = match args {
        Ok(args) => run(&args),
        Err(bad) => Err(usage(format!(
            "argument `{}` is not valid UTF-8",
            bad.to_string_lossy()
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error}");
            if let Error::Usage(_) = error {
                eprint!("\n{USAGE}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a space-separated command line.
    fn parse_str(line: &str) -> Result<Cli, Error> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    /// The release arguments of a parsed line.
    fn release(version: &str, dry_run: bool, publish: bool) -> ReleaseArgs {
        ReleaseArgs {
            version: version.to_owned(),
            dry_run,
            publish,
        }
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse_str("help"), Ok(Cli::Help));
        assert_eq!(parse_str("--help"), Ok(Cli::Help));
        assert_eq!(parse_str("release --help"), Ok(Cli::Help));
        assert_eq!(parse_str("ci"), Ok(Cli::Ci { root: None }));
        assert_eq!(
            parse_str("ci --root /tmp/ws"),
            Ok(Cli::Ci {
                root: Some(PathBuf::from("/tmp/ws"))
            })
        );
        assert_eq!(
            parse_str("release --dry-run 0.2.0"),
            Ok(Cli::Release {
                root: None,
                args: release("0.2.0", true, false)
            })
        );
        assert_eq!(
            parse_str("release 1.0.0-rc.1 --publish --root=/w"),
            Ok(Cli::Release {
                root: Some(PathBuf::from("/w")),
                args: release("1.0.0-rc.1", false, true)
            })
        );
    }

    #[test]
    fn parses_bench() {
        let bench = |args: BenchArgs| Ok(Cli::Bench { root: None, args });
        assert_eq!(parse_str("bench"), bench(BenchArgs::default()));
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
            parse_str("bench --peers --quick --runs 5 --out /tmp/b.md"),
            bench(BenchArgs {
                peers: true,
                runs: 5,
                quick: true,
                out: PathBuf::from("/tmp/b.md"),
            })
        );
        assert_eq!(
            parse_str("bench --runs=1 --out=x.md --root=/w"),
            Ok(Cli::Bench {
                root: Some(PathBuf::from("/w")),
                args: BenchArgs {
                    runs: 1,
                    out: PathBuf::from("x.md"),
                    ..BenchArgs::default()
                },
            })
        );
        assert_eq!(parse_str("bench --quick --help"), Ok(Cli::Help));
    }

    #[test]
    fn usage_errors() {
        for (line, why) in [
            ("", "no command"),
            ("bnech", "unknown subcommand `bnech`"),
            ("bench extra", "`bench` takes no arguments"),
            ("bench --runs", "--runs needs a number"),
            ("bench --runs 0", "from 1 to 100"),
            ("bench --runs=x", "from 1 to 100"),
            ("bench --out", "--out needs a file"),
            ("bench --out=", "--out needs a file"),
            ("bench --quick=yes", "unknown option `--quick=yes`"),
            ("bench --dry-run", "unknown option `--dry-run`"),
            ("ci --peers", "unknown option `--peers`"),
            ("release --runs 2 0.1.0", "unknown option `--runs`"),
            ("ci extra", "takes no arguments"),
            ("ci --dry-run", "unknown option `--dry-run`"),
            ("release", "needs a VERSION"),
            ("release 0.1.0 0.2.0", "one VERSION"),
            ("release --force 0.1.0", "unknown option `--force`"),
            ("release 0.1", "not a valid release version"),
            ("release --dry-run --publish 0.1.0", "cannot be combined"),
            ("release 0.1.0 --root", "--root needs"),
        ] {
            match parse_str(line) {
                Err(Error::Usage(msg)) => assert!(msg.contains(why), "{line:?}: {msg}"),
                other => panic!("{line:?}: expected a usage error, got {other:?}"),
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
