//! A smoke run of every scenario at tiny sizes against our server, started in the test on a
//! free loopback port: the scenarios run end to end and lose nothing. (Figures are not
//! asserted: speed is measured by `cerebrum bench`, never in tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use cerebrum_bench::{
    BenchError, ConnsOptions, Encoding, FanoutOptions, PingOptions, Report, Restarter,
    RoomsOptions, Scenario, SlowOptions, StormOptions, Target, Value, run, run_storm,
};
use cerebrum_server::{RunningServer, Server, ServerConfig};
use futures_util::future::BoxFuture;

async fn server(dir: &tempfile::TempDir) -> RunningServer {
    server_with(dir, |_| {}).await
}

async fn server_with(
    dir: &tempfile::TempDir,
    edit: impl FnOnce(&mut ServerConfig),
) -> RunningServer {
    let mut config = ServerConfig::default();
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    // Benchmarks turn the per-connection rate limit off, as `--rate-limit 0` does.
    config.rate_limit_per_sec = 0.0;
    edit(&mut config);
    Server::bind(config).await.unwrap()
}

fn int(report: &Report, name: &str) -> u64 {
    match report.get(name) {
        Some(Value::Int(n)) => *n,
        other => panic!("{name}: {other:?} in {}", report.json_line()),
    }
}

async fn run_scenario(scenario: Scenario) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir).await;
    let target = Target::new(&server.ws_url())
        .unwrap()
        .with_pid(Some(std::process::id()));
    let report = run(&target, &scenario).await.unwrap();
    server.shutdown().await.unwrap();
    let line = report.json_line();
    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed["scenario"], report.scenario());
    assert!(report.table().lines().count() > 3);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_publication_to_every_subscriber() {
    let report = run_scenario(Scenario::Fanout(FanoutOptions {
        subscribers: 20,
        rate: 200.0,
        seconds: 0.5,
        payload_bytes: 64,
        ..FanoutOptions::default()
    }))
    .await;
    assert_eq!(int(&report, "sent"), 100);
    assert_eq!(int(&report, "expected"), 2_000);
    assert_eq!(int(&report, "lost"), 0, "{}", report.table());
}

fn float(report: &Report, key: &str) -> f64 {
    let line: serde_json::Value = serde_json::from_str(&report.json_line()).unwrap();
    line[key].as_f64().unwrap()
}

/// The same fan-out in JSON and in MessagePack: every publication reaches every subscriber
/// either way, and the report says how many bytes each delivery took on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_in_msgpack_delivers_everything_in_fewer_bytes() {
    let mut per_delivery = Vec::new();
    for encoding in [Encoding::Json, Encoding::MessagePack] {
        let report = run_scenario(Scenario::Fanout(FanoutOptions {
            subscribers: 10,
            rate: 100.0,
            seconds: 0.3,
            payload_bytes: 64,
            encoding,
        }))
        .await;
        assert_eq!(int(&report, "lost"), 0, "{}", report.table());
        per_delivery.push(float(&report, "wire_bytes_per_delivery"));
    }
    assert!(
        per_delivery[0] > 0.0 && per_delivery[1] > 0.0,
        "{per_delivery:?}"
    );
    assert!(per_delivery[1] < per_delivery[0], "{per_delivery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_in_msgpack_deliver_to_every_member() {
    let report = run_scenario(Scenario::Rooms(RoomsOptions {
        clients: 12,
        room_size: 4,
        rate: 4.0,
        seconds: 0.5,
        payload_bytes: 16,
        encoding: Encoding::MessagePack,
    }))
    .await;
    assert_eq!(int(&report, "expected"), 2 * 3 * 4 * 4);
    assert_eq!(int(&report, "lost"), 0, "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_deliver_to_every_member() {
    let report = run_scenario(Scenario::Rooms(RoomsOptions {
        clients: 25,
        room_size: 10,
        rate: 4.0,
        seconds: 0.5,
        payload_bytes: 16,
        ..RoomsOptions::default()
    }))
    .await;
    // Rooms of 10, 10 and 5 members, each client sending 2 messages.
    assert_eq!(int(&report, "sent"), 50);
    assert_eq!(int(&report, "expected"), 2 * (10 * 10 + 10 * 10 + 5 * 5));
    assert_eq!(int(&report, "lost"), 0, "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ping_is_answered() {
    let report = run_scenario(Scenario::Ping(PingOptions {
        connections: 10,
        rate: 10.0,
        seconds: 0.5,
    }))
    .await;
    assert_eq!(int(&report, "sent"), 50);
    assert_eq!(int(&report, "lost"), 0, "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_held_without_drops() {
    let report = run_scenario(Scenario::Conns(ConnsOptions {
        connections: 50,
        channels: 5,
        hold_secs: 1.0,
        ping_secs: 0.1,
    }))
    .await;
    assert_eq!(int(&report, "dropped_during_hold"), 0, "{}", report.table());
    assert!(report.get("server_rss_per_connection_bytes").is_some());
    // Heartbeats were answered and timed: about ten pings a connection over the 1 s hold, of
    // which at least one a connection on average.
    assert!(int(&report, "heartbeats") >= 50, "{}", report.table());
    assert!(report.get("heartbeat_p99_ms").is_some());
}

#[test]
fn refuses_targets_off_loopback_and_bad_options() {
    assert!(Target::new("ws://10.0.0.1:80/ws").is_err());
    assert!(Target::new("wss://127.0.0.1:80/ws").is_err());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = Target::new("ws://127.0.0.1:9/ws").unwrap();
    let bad = Scenario::Fanout(FanoutOptions {
        rate: 0.0,
        ..FanoutOptions::default()
    });
    assert!(runtime.block_on(run(&target, &bad)).is_err());
}

/// Restarts an in-process server on the same port (the CLI's `--server-cmd` does it with a
/// process).
struct InProcess {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    server: Option<RunningServer>,
}

impl Restarter for InProcess {
    fn start(&mut self) -> BoxFuture<'_, Result<(), BenchError>> {
        Box::pin(async move {
            let mut config = ServerConfig::default();
            config.addr = self.addr;
            config.data_dir = self.dir.path().to_path_buf();
            config.rate_limit_per_sec = 0.0;
            let server = Server::bind(config)
                .await
                .map_err(|e| BenchError::Server(e.to_string()))?;
            self.server = Some(server);
            Ok(())
        })
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<(), BenchError>> {
        Box::pin(async move {
            if let Some(server) = self.server.take() {
                server
                    .shutdown()
                    .await
                    .map_err(|e| BenchError::Server(e.to_string()))?;
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_brings_every_client_back_with_nothing_missed() {
    // A free port, then the server bound to it by the scenario (and again after the restart).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut restarter = InProcess {
        dir: tempfile::tempdir().unwrap(),
        addr,
        server: None,
    };
    let target = Target::new(&format!("ws://{addr}/ws")).unwrap();
    let options = StormOptions {
        clients: 20,
        channels: 3,
        before: 3,
        after: 3,
        server_cmd: None,
        study: true,
    };
    let report = run_storm(&target, &options, &mut restarter).await.unwrap();
    assert_eq!(int(&report, "back"), 20, "{}", report.table());
    assert_eq!(int(&report, "missed"), 0, "{}", report.table());
    assert_eq!(int(&report, "out_of_order"), 0, "{}", report.table());
    // The in-memory broker's history does not survive the restart.
    assert_eq!(int(&report, "recovered"), 0, "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_of_a_conflated_channel_stays_and_ends_with_the_latest_values() {
    let dir = tempfile::tempdir().unwrap();
    // A small queue, so that a short run outgrows it; `--conflate latest=key`.
    let server = server_with(&dir, |c| {
        c.outbound_queue = 64;
        c.conflate_threshold = 16;
        c.conflate = vec!["latest=key".parse().unwrap()];
        // The publisher sends 800 KiB/s, past the default inbound byte limit.
        c.inbound_bytes_per_sec = 0.0;
    })
    .await;
    let target = Target::new(&server.ws_url()).unwrap();
    let report = run(
        &target,
        &Scenario::Slow(SlowOptions {
            keys: 3,
            rate: 400.0,
            seconds: 2.0,
            payload_bytes: 2048,
            read_fraction: 0.1,
            fast_readers: 2,
            recv_buffer: 4096,
        }),
    )
    .await
    .unwrap();
    server.shutdown().await.unwrap();
    assert_eq!(int(&report, "sent"), 800);
    // No `lost == 0` here: with a queue this small, a reader that keeps up in general may lag
    // past the threshold for a moment on a busy machine, and is then conflated too (by design).
    assert!(int(&report, "delivered") <= int(&report, "expected"));
    assert_eq!(
        int(&report, "slow_closed_by_server"),
        0,
        "{}",
        report.table()
    );
    assert_eq!(int(&report, "slow_latest_keys"), 3, "{}", report.table());
    assert!(int(&report, "slow_frames_read") < 800, "{}", report.table());
    assert!(
        int(&report, "slow_catch_up_frames") < 800,
        "{}",
        report.table()
    );
}
