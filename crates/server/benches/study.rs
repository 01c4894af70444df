//! The study tracker under a reconnect storm: 10 000 users each studying on one of 100 session
//! channels, each on its own connection. What the server does under its study lock on every
//! disconnect ([`StudyTracker::disconnect`]), every user bind ([`StudyTracker::reattach`]) and
//! every 250 ms ([`StudyTracker::expire`]).
//!
//! `cargo bench -p cerebrum-server --bench study -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::time::{Duration, Instant};

use cerebrum_server::clock::Now;
use cerebrum_server::study::StudyTracker;
use criterion::{Criterion, criterion_group, criterion_main};

const SESSIONS: u64 = 10_000;

fn tracker(t0: Now) -> (StudyTracker, Vec<String>) {
    let mut tracker = StudyTracker::new(Duration::from_secs(10));
    let users: Vec<String> = (0..SESSIONS).map(|i| format!("user-{i:05}")).collect();
    for (conn, user) in (1..).zip(&users) {
        let channel = format!("session:topic-{}", conn % 100);
        tracker.start(conn, user, user, "Topic", &channel, t0);
    }
    (tracker, users)
}

fn bench(c: &mut Criterion) {
    let t0 = cerebrum_server::clock::now();
    let mut group = c.benchmark_group("study_tracker_10k");

    // One client reconnects: its connection closes, the new one binds the same user.
    let (mut one, users) = tracker(t0);
    let mut i = 0usize;
    group.bench_function("disconnect_then_reattach_one", |b| {
        b.iter(|| {
            let conn = (i % users.len()) as u64 + 1;
            one.disconnect(conn, t0.mono);
            black_box(one.reattach(conn, &users[i % users.len()]));
            i += 1;
        });
    });

    // The 250 ms presence sweep when nothing is due.
    group.bench_function("expire_sweep_nothing_due", |b| {
        b.iter(|| black_box(one.expire(t0.plus_ms(1))));
    });

    // The whole storm: every connection lost, every user back on a new connection, with the
    // presence sweep and its next wake-up in between.
    group.sample_size(10);
    group.bench_function("storm_all_disconnect_all_reattach", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut storm, users) = tracker(t0);
                let start = Instant::now();
                for conn in 1..=SESSIONS {
                    storm.disconnect(conn, t0.plus_ms(1).mono);
                }
                black_box(storm.expire(t0.plus_ms(2)));
                black_box(storm.next_expiry());
                for (conn, user) in (SESSIONS + 1..).zip(&users) {
                    black_box(storm.reattach(conn, user));
                }
                black_box(storm.expire(t0.plus_ms(3)));
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
