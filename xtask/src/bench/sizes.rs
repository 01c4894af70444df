//! The scenarios and their sizes (the full ones of issue 7 and `--quick`), with the rows of
//! their tables.

use std::time::Duration;

use crate::bench_report::{self as report, Goal, Row};

/// The sizes of the scenarios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sizes {
    /// `conns`: connections held.
    pub(crate) conns: usize,
    /// `conns`: channels they subscribe to.
    pub(crate) conns_channels: usize,
    /// `conns`: seconds they are held.
    pub(crate) conns_hold_secs: u32,
    /// `fanout`: subscribers of the channel.
    pub(crate) fanout_subscribers: usize,
    /// `fanout`: publications per second.
    pub(crate) fanout_rate: u32,
    /// `fanout`: seconds of publishing.
    pub(crate) fanout_secs: u32,
    /// `rooms`: clients in all.
    pub(crate) rooms_clients: usize,
    /// `rooms`: clients per room.
    pub(crate) room_size: usize,
    /// `rooms`: publications per second of each client.
    pub(crate) rooms_rate: u32,
    /// `rooms`: seconds of publishing.
    pub(crate) rooms_secs: u32,
    /// `ping`: connections.
    pub(crate) ping_connections: usize,
    /// `ping`: pings per second of each connection.
    pub(crate) ping_rate: u32,
    /// `ping`: seconds of pinging.
    pub(crate) ping_secs: u32,
    /// Payload bytes of `fanout` and `rooms`.
    pub(crate) payload: usize,
    /// `storm`: facade clients through the restart (ours only).
    pub(crate) storm_clients: usize,
    /// `storm`: channels they subscribe to.
    pub(crate) storm_channels: usize,
    /// `slow`: seconds of publishing (ours only, at the scenario's 200 msg/s over 4 keys).
    pub(crate) slow_secs: u32,
}

/// The targets of issue 7.
pub(crate) const FULL: Sizes = Sizes {
    conns: 10_000,
    conns_channels: 10,
    conns_hold_secs: 5,
    fanout_subscribers: 1_000,
    fanout_rate: 1_000,
    fanout_secs: 10,
    rooms_clients: 2_000,
    room_size: 10,
    rooms_rate: 2,
    rooms_secs: 10,
    ping_connections: 1_000,
    ping_rate: 10,
    ping_secs: 10,
    payload: 64,
    storm_clients: 10_000,
    storm_channels: 100,
    slow_secs: 20,
};

/// `--quick`: a smoke run of every scenario.
pub(crate) const QUICK: Sizes = Sizes {
    conns: 1_000,
    conns_channels: 10,
    conns_hold_secs: 1,
    fanout_subscribers: 100,
    fanout_rate: 200,
    fanout_secs: 2,
    rooms_clients: 200,
    room_size: 10,
    rooms_rate: 2,
    rooms_secs: 2,
    ping_connections: 100,
    ping_rate: 10,
    ping_secs: 2,
    payload: 64,
    storm_clients: 200,
    storm_channels: 10,
    slow_secs: 4,
};

/// The figures of `conns` in the tables.
pub(super) const CONNS_ROWS: &[Row] = &[
    Row {
        key: "server_rss_per_connection_bytes",
        label: "server RSS bytes / connection",
        goals: &[
            ("rust-raw", Goal::AtMost(1.0)),
            ("node-ws", Goal::AtMost(0.6)),
        ],
    },
    Row {
        key: "connects_per_sec",
        label: "connects/s",
        goals: &[],
    },
    Row {
        key: "dropped_during_hold",
        label: "dropped during hold",
        goals: &[],
    },
];

/// The figures of `fanout` in the tables.
pub(super) const FANOUT_ROWS: &[Row] = &[
    Row {
        key: "deliveries_per_sec",
        label: "deliveries/s",
        goals: &[("rust-raw", Goal::AtLeast(0.9))],
    },
    Row {
        key: "lost",
        label: "lost",
        goals: &[],
    },
    Row {
        key: "p50_ms",
        label: "p50 ms",
        goals: &[],
    },
    Row {
        key: "p99_ms",
        label: "p99 ms",
        goals: &[],
    },
    Row {
        key: "max_ms",
        label: "max ms",
        goals: &[],
    },
    Row {
        key: "server_cpu_ms_per_1000",
        label: "server CPU ms / 1 000 deliveries",
        // Issue 16 (issue 7 asked ≤ 1.1).
        goals: &[
            ("rust-raw", Goal::AtMost(1.0)),
            ("node-ws", Goal::AtMost(0.1)),
        ],
    },
];

/// The figures of `rooms` in the tables.
pub(super) const ROOMS_ROWS: &[Row] = &[
    Row {
        key: "lost",
        label: "lost",
        goals: &[],
    },
    Row {
        key: "p99_ms",
        label: "p99 ms",
        goals: &[("rust-raw", Goal::AtMost(1.2))],
    },
    Row {
        key: "server_cpu_ms_per_1000",
        label: "server CPU ms / 1 000 deliveries",
        // Issue 16 (issue 7 asked ≤ 1.2).
        goals: &[("rust-raw", Goal::AtMost(1.0))],
    },
];

/// The figures of `ping` in the tables.
pub(super) const PING_ROWS: &[Row] = &[
    Row {
        key: "lost",
        label: "lost",
        goals: &[],
    },
    Row {
        key: "p99_ms",
        label: "p99 ms",
        goals: &[("rust-raw", Goal::AtMost(1.2))],
    },
    Row {
        key: "server_cpu_ms_per_1000",
        label: "server CPU ms / 1 000 pongs",
        goals: &[("rust-raw", Goal::AtMost(1.2))],
    },
];

/// The figures of `storm` in the tables.
pub(super) const STORM_ROWS: &[Row] = &[
    Row {
        key: "back",
        label: "clients back and re-subscribed",
        goals: &[],
    },
    Row {
        key: "back_secs",
        label: "s from the restarted server's `listening on` to the last client back",
        goals: &[],
    },
    Row {
        key: "back_p50_secs",
        label: "s to a client back, p50",
        goals: &[],
    },
    Row {
        key: "restart_secs",
        label: "s from SIGTERM to `listening on` again",
        goals: &[],
    },
    Row {
        key: "recovered",
        label: "re-subscriptions with history recovered",
        goals: &[],
    },
    Row {
        key: "missed",
        label: "publications missed (before + after)",
        goals: &[],
    },
    Row {
        key: "out_of_order",
        label: "publications out of order",
        goals: &[],
    },
    Row {
        key: "connect_secs",
        label: "s to connect and subscribe every client",
        goals: &[],
    },
];

/// The `storm` scenario: against ours only (the peers do not resume); the load generator
/// starts and restarts the server itself.
pub(crate) fn storm_spec(s: &Sizes) -> ScenarioSpec {
    ScenarioSpec {
        name: "storm",
        title: format!(
            "storm: {} facade clients (fleet preset) over {} channels through a server restart (ours only)",
            grouped(s.storm_clients),
            s.storm_channels
        ),
        args: vec![
            "--clients".to_owned(),
            s.storm_clients.to_string(),
            "--channels".to_owned(),
            s.storm_channels.to_string(),
            "--before".to_owned(),
            "5".to_owned(),
            "--after".to_owned(),
            "5".to_owned(),
        ],
        rows: STORM_ROWS,
        budget: Duration::from_secs(240 + s.storm_clients as u64 / 50),
    }
}

/// The figures of `slow` in the tables (issue 16 item 5).
pub(super) const SLOW_ROWS: &[Row] = &[
    Row {
        key: "slow_closed_by_server",
        label: "slow reader closed by the server",
        goals: &[],
    },
    Row {
        key: "slow_latest_keys",
        label: "keys whose last value it holds after catching up",
        goals: &[],
    },
    Row {
        key: "slow_catch_up_ms",
        label: "catch-up ms: end of publishing → latest of every key",
        goals: &[],
    },
    Row {
        key: "slow_catch_up_frames",
        label: "frames it read to catch up",
        goals: &[],
    },
    Row {
        key: "slow_frames_read",
        label: "frames it read while publishing",
        goals: &[],
    },
    Row {
        key: "slow_age_p50_ms",
        label: "age of those frames, p50 ms",
        goals: &[],
    },
    Row {
        key: "slow_age_p99_ms",
        label: "age of those frames, p99 ms",
        goals: &[],
    },
    Row {
        key: "delivered",
        label: "reader that keeps up: delivered",
        goals: &[],
    },
    Row {
        key: "lost",
        label: "reader that keeps up: lost",
        goals: &[],
    },
    Row {
        key: "server_rss_bytes",
        label: "server RSS bytes at the end",
        goals: &[],
    },
];

/// The flags of `cerebrum serve` for `slow`: the scenario's channel conflates, and its
/// publisher (1 KiB at 200/s) is not held by the inbound limits.
pub(crate) const SLOW_SERVE_ARGS: &[&str] =
    &["--inbound-bytes-per-sec", "0", "--conflate", "latest=key"];

/// The send buffers `slow` runs with: the kernel's (autotuned), then capped (`--send-buffer`).
pub(crate) const SLOW_SEND_BUFFERS: &[Option<usize>] = &[None, Some(16 * 1024)];

/// The `slow` scenario (conflation for slow readers, issue 16 item 5): against ours only (the
/// peers do not conflate), on a fresh server per run and send buffer.
pub(crate) fn slow_spec(s: &Sizes) -> ScenarioSpec {
    ScenarioSpec {
        name: "slow",
        title: format!(
            "slow: 4 keys at 200 msg/s, 1 KiB payload, {} s; one reader keeps up, one reads at 10 % \
             of the rate through a 4 KiB receive buffer (ours only, `--conflate latest=key`)",
            s.slow_secs
        ),
        args: vec!["--seconds".to_owned(), s.slow_secs.to_string()],
        rows: SLOW_ROWS,
        budget: Duration::from_secs(120 + 2 * u64::from(s.slow_secs)),
    }
}

/// The column of `slow` with send buffer `send_buffer`.
pub(crate) fn slow_column_name(send_buffer: Option<usize>) -> String {
    match send_buffer {
        None => format!("{} (kernel's send buffer)", report::OURS),
        Some(bytes) => format!("{} --send-buffer {bytes}", report::OURS),
    }
}

/// One scenario as run against every server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScenarioSpec {
    /// The `cerebrum bench` subcommand.
    pub(crate) name: &'static str,
    /// A heading for the document.
    pub(crate) title: String,
    /// The scenario's flags.
    pub(crate) args: Vec<String>,
    /// The figures shown.
    pub(crate) rows: &'static [Row],
    /// How long the load generator may take before it is killed.
    pub(crate) budget: Duration,
}

/// A number with a space between groups of three digits.
pub(super) fn grouped(n: usize) -> String {
    report::format_number(n as f64)
}

/// The scenarios in the order they run against each fresh server (`conns` first, so that
/// the memory per connection is measured on a server nothing ran on yet).
pub(crate) fn scenarios(s: &Sizes) -> Vec<ScenarioSpec> {
    let budget = |seconds: u32, clients: usize| {
        Duration::from_secs(120 + 3 * u64::from(seconds) + clients as u64 / 100)
    };
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    vec![
        ScenarioSpec {
            name: "conns",
            title: format!(
                "conns: {} idle subscribed connections over {} channels, held {} s",
                grouped(s.conns),
                s.conns_channels,
                s.conns_hold_secs
            ),
            args: strings(&[
                "--connections",
                &s.conns.to_string(),
                "--channels",
                &s.conns_channels.to_string(),
                "--hold-secs",
                &s.conns_hold_secs.to_string(),
            ]),
            rows: CONNS_ROWS,
            budget: budget(s.conns_hold_secs, s.conns),
        },
        ScenarioSpec {
            name: "fanout",
            title: format!(
                "fanout: {} subscribers × {} msg/s, {}-byte payload, {} s",
                grouped(s.fanout_subscribers),
                grouped(s.fanout_rate as usize),
                s.payload,
                s.fanout_secs
            ),
            args: strings(&[
                "--subscribers",
                &s.fanout_subscribers.to_string(),
                "--rate",
                &s.fanout_rate.to_string(),
                "--seconds",
                &s.fanout_secs.to_string(),
                "--payload",
                &s.payload.to_string(),
            ]),
            rows: FANOUT_ROWS,
            budget: budget(s.fanout_secs, s.fanout_subscribers),
        },
        ScenarioSpec {
            name: "rooms",
            title: format!(
                "rooms: {} clients in rooms of {}, each publishing {} msg/s, {}-byte payload, {} s",
                grouped(s.rooms_clients),
                s.room_size,
                s.rooms_rate,
                s.payload,
                s.rooms_secs
            ),
            args: strings(&[
                "--clients",
                &s.rooms_clients.to_string(),
                "--room-size",
                &s.room_size.to_string(),
                "--rate",
                &s.rooms_rate.to_string(),
                "--seconds",
                &s.rooms_secs.to_string(),
                "--payload",
                &s.payload.to_string(),
            ]),
            rows: ROOMS_ROWS,
            budget: budget(s.rooms_secs, s.rooms_clients),
        },
        ScenarioSpec {
            name: "ping",
            title: format!(
                "ping: {} connections × {} pings/s, {} s",
                grouped(s.ping_connections),
                s.ping_rate,
                s.ping_secs
            ),
            args: strings(&[
                "--connections",
                &s.ping_connections.to_string(),
                "--rate",
                &s.ping_rate.to_string(),
                "--seconds",
                &s.ping_secs.to_string(),
            ]),
            rows: PING_ROWS,
            budget: budget(s.ping_secs, s.ping_connections),
        },
    ]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::bench::bench_command;
    use crate::process;

    #[test]
    fn scenario_flags_are_those_of_cerebrum_bench() {
        let specs = scenarios(&FULL);
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        assert_eq!(names, ["conns", "fanout", "rooms", "ping"]);
        let command = bench_command(
            Path::new("/t/cerebrum"),
            "ws://127.0.0.1:9/ws",
            42,
            &specs[1],
        );
        assert_eq!(
            process::render(&command),
            "cerebrum bench --url ws://127.0.0.1:9/ws --pid 42 fanout --subscribers 1000 \
             --rate 1000 --seconds 10 --payload 64"
        );
        assert_eq!(
            specs[0].args.join(" "),
            "--connections 10000 --channels 10 --hold-secs 5"
        );
        assert_eq!(
            specs[2].args.join(" "),
            "--clients 2000 --room-size 10 --rate 2 --seconds 10 --payload 64"
        );
        assert_eq!(
            specs[3].args.join(" "),
            "--connections 1000 --rate 10 --seconds 10"
        );
        assert_eq!(
            specs[1].title,
            "fanout: 1 000 subscribers × 1 000 msg/s, 64-byte payload, 10 s"
        );
        let quick = scenarios(&QUICK);
        assert_eq!(
            quick[1].args.join(" "),
            "--subscribers 100 --rate 200 --seconds 2 --payload 64"
        );
        // Every budget leaves room for the connects, the run and the drain.
        for spec in specs.iter().chain(&quick) {
            assert!(spec.budget >= Duration::from_secs(120), "{}", spec.name);
        }
    }

    #[test]
    fn slow_runs_ours_with_and_without_a_capped_send_buffer() {
        let full = slow_spec(&FULL);
        let quick = slow_spec(&QUICK);
        assert_eq!(full.args.join(" "), "--seconds 20");
        assert_eq!(quick.args.join(" "), "--seconds 4");
        assert!(full.budget > Duration::from_secs(120 + 20));
        assert_eq!(
            process::render(&bench_command(
                Path::new("/t/cerebrum"),
                "ws://127.0.0.1:9/ws",
                42,
                &quick
            )),
            "cerebrum bench --url ws://127.0.0.1:9/ws --pid 42 slow --seconds 4"
        );
        let names: Vec<String> = SLOW_SEND_BUFFERS
            .iter()
            .map(|b| slow_column_name(*b))
            .collect();
        assert_eq!(
            names,
            ["ours (kernel's send buffer)", "ours --send-buffer 16384"]
        );
        // No column is named `ours`: the table has no ratio columns between the two.
        assert!(!names.iter().any(|n| n == report::OURS));
        let keys: Vec<&str> = SLOW_ROWS.iter().map(|r| r.key).collect();
        for key in [
            "slow_closed_by_server",
            "slow_catch_up_ms",
            "slow_age_p99_ms",
            "lost",
        ] {
            assert!(keys.contains(&key), "{key}");
        }
    }
}
