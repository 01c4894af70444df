//! Each invariant is broken on purpose once (a bug planted in the simulated driver), and the
//! simulation must catch it within a few hundred seeds — checks that cannot fail prove nothing.

use cerebrum_sim::{Plant, SimConfig, run};

/// The first seed (of `0..300`) on which `plant` is caught, and by which invariant.
fn caught(plant: Plant) -> (u64, &'static str) {
    for seed in 0..300 {
        if let Err(failure) = run(seed, &SimConfig::for_seed(seed).with_plant(plant)) {
            return (seed, failure.invariant);
        }
    }
    panic!("{plant:?} was not caught in 300 seeds");
}

#[test]
fn an_append_that_is_not_idempotent_is_caught_as_a_double_effect() {
    let (_, invariant) = caught(Plant::NonIdempotentAppend);
    assert!(invariant.contains("exactly once"), "{invariant}");
}

#[test]
fn an_ack_before_the_effect_is_caught() {
    let (_, invariant) = caught(Plant::AckBeforeEffect);
    assert_eq!(invariant, "acked only after it took effect, exactly once");
}

#[test]
fn a_replay_that_starts_late_is_caught_as_a_gap() {
    let (_, invariant) = caught(Plant::ReplayOffByOne);
    assert_eq!(invariant, "publications in order, once each, no gap");
}

#[test]
fn a_member_kept_after_leaving_is_caught_by_presence_convergence() {
    let (_, invariant) = caught(Plant::KeepPresence);
    assert_eq!(invariant, "presence converges to the live set");
}

#[test]
fn a_notification_ack_not_recorded_is_caught() {
    let (_, invariant) = caught(Plant::ForgetNotificationAck);
    assert_eq!(
        invariant,
        "an acknowledged notification is never delivered again"
    );
}
