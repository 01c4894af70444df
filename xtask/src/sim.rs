//! `cargo xtask sim`: long campaigns of the deterministic simulation (`cerebrum-sim`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cerebrum_sim::{Failure, SimConfig, run as run_seed};

use crate::process::Error;

/// Options of `cargo xtask sim`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct SimArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0, value_name = "N")]
    from: u64,
    /// Replay this one seed (overrides --seeds and --from).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

/// Runs the seeds on every core; fails with the failing seeds.
pub(crate) fn run(args: &SimArgs) -> Result<(), Error> {
    let (from, count) = match args.seed {
        Some(seed) => (seed, 1),
        None => (args.from, args.seeds),
    };
    let next = Arc::new(AtomicU64::new(from));
    let end = from.saturating_add(count);
    let failures: Arc<Mutex<Vec<Failure>>> = Arc::default();
    let publications = Arc::new(AtomicU64::new(0));
    let started = std::time::Instant::now();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (next, failures, publications) =
                (next.clone(), failures.clone(), publications.clone());
            std::thread::spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    match run_seed(seed, &SimConfig::for_seed(seed)) {
                        Ok(report) => {
                            publications.fetch_add(report.publications, Ordering::Relaxed);
                        }
                        Err(failure) => {
                            eprintln!("{failure}");
                            failures
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(failure);
                        }
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| Error::Failed("a simulation thread panicked".into()))?;
    }
    let failures = failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    println!(
        "xtask sim: seeds {from}..{end}: {} failed, {} publications checked, {:.1} s",
        failures.len(),
        publications.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "{} seeds broke an invariant (replay each with the command printed above)",
            failures.len()
        )))
    }
}
