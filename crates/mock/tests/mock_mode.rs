//! Mock mode end to end: the production driver loop against the simulated server, on tokio's
//! paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cerebrum_core::{Config, Event};
use cerebrum_mock::{FaultScript, MockConfig, MockTransport};
use cerebrum_tokio::{Driver, FollowUp, Observer, now};

const T0: u64 = 1_732_752_000_000;

#[derive(Clone, Default)]
struct Record(Arc<Mutex<Vec<String>>>);

struct Recorder {
    start: std::time::Instant,
    record: Record,
}

impl Observer for Recorder {
    fn on_event(&mut self, event: Event, _: &mut FollowUp) {
        let at = now().duration_since(self.start).as_millis();
        let line = match event {
            Event::StatusChanged { to, .. } => format!("+{at}ms status {to}"),
            Event::Latency(_) => format!("+{at}ms latency"),
            _ => return,
        };
        self.record.0.lock().unwrap().push(line);
    }

    fn on_frame(&mut self, frame: &str) {
        let at = now().duration_since(self.start).as_millis();
        self.record
            .0
            .lock()
            .unwrap()
            .push(format!("+{at}ms {frame}"));
    }
}

fn start(mock: MockConfig, config: Config) -> (cerebrum_tokio::Handle, Record) {
    let record = Record::default();
    let observer = Recorder {
        start: now(),
        record: record.clone(),
    };
    let transport = MockTransport::with_unix_ms(mock, T0);
    let (handle, _task) = Driver::start(config, transport, observer).unwrap();
    handle.connect().unwrap();
    (handle, record)
}

#[tokio::test(start_paused = true)]
async fn the_first_minute_of_a_seeded_mock_is_pinned() {
    let (_handle, record) = start(MockConfig::default(), Config::new("ws://mock/ws"));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let lines = record.0.lock().unwrap().join("\n");
    insta::assert_snapshot!(lines);
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_stream() {
    let run = || async {
        let (_handle, record) = start(MockConfig::default(), Config::new("ws://mock/ws"));
        tokio::time::sleep(Duration::from_secs(30)).await;
        record.0.lock().unwrap().clone()
    };
    let first = run().await;
    let second = run().await;
    assert!(first.len() > 10);
    assert_eq!(first, second);
}

#[tokio::test(start_paused = true)]
async fn scripted_faults_drive_the_reconnection_ui() {
    let mock = MockConfig {
        faults: FaultScript::default()
            .refuse_next_connects(1)
            .drop_at(Duration::from_secs(20)),
        ..MockConfig::default()
    };
    let (_handle, record) = start(mock, Config::new("ws://mock/ws"));
    tokio::time::sleep(Duration::from_secs(40)).await;
    let statuses: Vec<String> = record
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| line.split_once(" status ").map(|(_, s)| s.to_owned()))
        .collect();
    assert_eq!(
        statuses,
        [
            "connecting",
            "reconnecting",
            "connecting",
            "connected",
            "reconnecting",
            "connecting",
            "connected"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_detected_by_the_heartbeat() {
    let mock = MockConfig {
        faults: FaultScript::default().silent_at(Duration::from_secs(10)),
        ..MockConfig::default()
    };
    let mut config = Config::new("ws://mock/ws");
    config.heartbeat_interval = Duration::from_secs(5);
    config.heartbeat_timeout = Duration::from_secs(2);
    let (handle, record) = start(mock, config);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let lines = record.0.lock().unwrap().clone();
    let reconnecting = lines
        .iter()
        .position(|l| l.ends_with("status reconnecting"));
    assert!(reconnecting.is_some(), "{lines:#?}");
    assert!(
        lines
            .iter()
            .filter(|l| l.ends_with("status connected"))
            .count()
            >= 2
    );
    drop(handle);
}
