//! Many seeds of the simulated world, each checked after every step; a failure prints the
//! seed and the command that replays it. `cargo xtask sim --seeds N` runs longer campaigns.

use cerebrum_sim::{SimConfig, run};

/// Seeds run by `cargo test` (override with `CEREBRUM_SIM_SEEDS`).
const SEEDS: u64 = 2_000;

#[test]
fn every_invariant_holds_on_every_seed() {
    let seeds = std::env::var("CEREBRUM_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS);
    let mut publications = 0;
    let mut faults = 0;
    for seed in 0..seeds {
        match run(seed, &SimConfig::for_seed(seed)) {
            Ok(report) => {
                publications += report.publications;
                faults += report.faults;
            }
            Err(failure) => panic!("{failure}"),
        }
    }
    // The worlds did something: publications flowed and faults struck.
    assert!(
        publications > seeds,
        "{publications} publications in {seeds} seeds"
    );
    assert!(faults > seeds, "{faults} faults in {seeds} seeds");
}
