//! The crate's doc examples take their instants from the owner and are only compiled by
//! rustdoc; here they run, with a real starting instant (tests are owners too).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cerebrum_core::{
    ClientCore, Command, Config, ConfigError, Event, Outgoing, SendError, Status, TransportEvent,
};

#[test]
fn crate_example_first_failure() {
    let t0 = Instant::now();
    let mut core =
        ClientCore::new(Config::new("ws://localhost:8080/ws"), t0, 1_732_752_000_000).unwrap();
    core.connect(t0);
    assert!(matches!(core.poll_command(), Some(Command::Open { .. })));
    core.handle_transport(TransportEvent::Error("connection refused".into()), t0);
    let mut delays = Vec::new();
    while let Some(event) = core.poll_event() {
        if let Event::ReconnectScheduled { delay, .. } = event {
            delays.push(delay);
        }
    }
    assert_eq!(delays, [Duration::from_secs(3)]);
    assert_eq!(core.status(), Status::Reconnecting);
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(3)));
}

#[test]
fn client_core_example_drive() {
    let start = Instant::now();
    let mut core = ClientCore::new(
        Config::new("ws://localhost:8080/ws"),
        start,
        1_732_752_000_000,
    )
    .unwrap();
    let id = core
        .send(Outgoing::value("quiz.answer", &2).unwrap(), start)
        .unwrap();
    assert_eq!(core.queued().count(), 1);
    core.connect(start);
    assert_eq!(
        core.poll_command(),
        Some(Command::Open {
            url: "ws://localhost:8080/ws".into()
        })
    );
    assert_eq!(core.poll_command(), None);
    core.handle_transport(TransportEvent::Opened, start + Duration::from_millis(40));
    match core.poll_command() {
        Some(Command::Transmit(frame)) => {
            assert!(frame.contains(id.as_str()));
            // Timestamps: the unix_ms given at construction plus the elapsed instant time.
            assert!(frame.contains("\"timestamp\":1732752000000"));
        }
        other => panic!("unexpected {other:?}"),
    }
    while let Some(event) = core.poll_event() {
        if let Event::StatusChanged { to, .. } = event {
            assert!(matches!(to, Status::Connecting | Status::Connected));
        }
    }
    assert_eq!(core.status(), Status::Connected);
    assert_eq!(
        core.poll_timeout(),
        Some(start + Duration::from_millis(2_040))
    );
    // A send 1.5 s later carries a timestamp 1.5 s later.
    core.send(
        Outgoing::value("quiz.answer", &3).unwrap(),
        start + Duration::from_millis(1_540),
    )
    .unwrap();
    match core.poll_command() {
        Some(Command::Transmit(frame)) => assert!(frame.contains("\"timestamp\":1732752001540")),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn new_and_send_examples() {
    let now = Instant::now();
    let bad = Config::new("localhost:8080");
    assert!(matches!(
        ClientCore::new(bad, now, 0),
        Err(ConfigError::Url { .. })
    ));
    let mut config = Config::new("ws://localhost:8080/ws");
    config.enable_queue = false;
    let mut core = ClientCore::new(config, now, 0).unwrap();
    let err = core
        .send(Outgoing::value("quiz.answer", &1).unwrap(), now)
        .unwrap_err();
    assert_eq!(err, SendError::NotConnected);
}

#[test]
fn query_tokens_are_percent_encoded_and_appended() {
    let now = Instant::now();
    let config = Config::new("ws://h/ws?v=1").with_token("t t");
    let mut core = ClientCore::new(config, now, 0).unwrap();
    core.connect(now);
    assert_eq!(
        core.poll_command(),
        Some(Command::Open {
            url: "ws://h/ws?v=1&token=t%20t".into()
        })
    );
}
