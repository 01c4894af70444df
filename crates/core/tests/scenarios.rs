//! Deterministic scenarios: each origin default and behaviour, pinned with simulated time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use cerebrum_core::{
    AckError, ClientCore, Command, Config, ConfigError, Event, Outgoing, OverflowPolicy,
    ReconnectAttempts, SendError, ServerLevel, Status, SubscribeError, TokenTransport,
    TransportEvent, delay_bounds, scheduled_delay,
};
use cerebrum_protocol::{Auth, MessageId, ProtocolError, Subscribe};
use support::{Sim, WELCOME_ACK, WELCOME_PLAIN, app, ms};

fn delays(sim: &Sim) -> Vec<Duration> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ReconnectScheduled { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect()
}

fn refused() -> TransportEvent {
    TransportEvent::Error("connection refused".into())
}

#[test]
fn origin_defaults_are_kept_exactly() {
    let c = Config::new("wss://api.cerebrumbiologyacademy.com/ws");
    assert!(c.reconnect);
    assert_eq!(c.reconnect_attempts, ReconnectAttempts::Limited(5));
    assert_eq!(c.reconnect_interval, ms(3_000));
    assert_eq!(c.reconnect_factor, 1.5);
    assert_eq!(c.heartbeat_interval, ms(30_000));
    assert_eq!(c.connection_timeout, ms(10_000));
    assert!(c.enable_queue);
    assert_eq!(c.queue_capacity, 100);
    assert!(!c.debug);
    // Additions, with defaults that keep the schedule.
    assert_eq!(c.jitter, 0.0);
    assert_eq!(c.max_reconnect_delay, Duration::from_secs(30));
    assert_eq!(c.heartbeat_timeout, ms(10_000));
    assert_eq!(c.ack_timeout, ms(10_000));
    assert_eq!(c.overflow_policy, OverflowPolicy::RejectNew);
    assert_eq!(c.queue_max_bytes, 1024 * 1024);
    assert_eq!(c.stable_period, Duration::from_secs(5));
    assert_eq!(c.token_transport, TokenTransport::Query);
}

/// Waits for the next timer, then fails the attempt it opened.
fn fail_next_attempt(sim: &mut Sim) {
    let deadline = sim.core.poll_timeout().expect("a reconnect is scheduled");
    sim.advance(deadline - sim.now);
    sim.transport(refused());
}

#[test]
fn the_five_delays_are_exact_then_the_client_gives_up() {
    let mut sim = Sim::origin();
    sim.connect();
    sim.transport(refused());
    for _ in 0..5 {
        fail_next_attempt(&mut sim);
    }
    let expected: Vec<Duration> = [3_000_000, 4_500_000, 6_750_000, 10_125_000, 15_187_500]
        .map(Duration::from_micros)
        .to_vec();
    assert_eq!(delays(&sim), expected);
    // Each attempt opens exactly when its delay ends.
    let opens = sim.open_times();
    assert_eq!(opens.len(), 6);
    let gaps: Vec<Duration> = opens.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, expected);
    // Total waiting: 39.5625 s, the origin's "about 40 s" of outage.
    assert_eq!(
        expected.iter().sum::<Duration>(),
        Duration::from_micros(39_562_500)
    );
    assert_eq!(sim.core.status(), Status::Error);
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| *e == Event::GaveUp { attempts: 5 })
    );
    match sim.events.iter().rev().find_map(|(_, e)| match e {
        Event::StatusChanged {
            to: Status::Error,
            reason,
            ..
        } => Some(reason.clone()),
        _ => None,
    }) {
        Some(reason) => assert!(reason.contains("gave up after 5"), "{reason}"),
        None => panic!("no Error status"),
    }
    // Nothing more happens.
    sim.advance(Duration::from_secs(3_600));
    assert_eq!(sim.open_times().len(), 6);
    assert_eq!(sim.core.poll_timeout(), None);
}

#[test]
fn delays_never_collapse_to_zero_for_huge_attempt_counts() {
    for config in [Config::new("ws://h"), Config::fleet("ws://h")] {
        for attempt in [0, 1, 30, 1_000, 1_025, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
            let delay = scheduled_delay(&config, attempt);
            assert!(
                delay >= ms(1) && delay <= Duration::from_secs(30),
                "{attempt}: {delay:?}"
            );
            let (low, high) = delay_bounds(&config, attempt);
            assert!(low > Duration::ZERO && low <= high);
        }
        assert_eq!(scheduled_delay(&config, u32::MAX), Duration::from_secs(30));
    }
}

#[test]
fn the_fleet_preset_never_gives_up_and_jitters_within_the_cap() {
    let mut sim = Sim::new(Config::fleet("ws://localhost:8080/ws"));
    sim.connect();
    sim.transport(refused());
    for _ in 0..200 {
        fail_next_attempt(&mut sim);
    }
    let delays = delays(&sim);
    assert_eq!(delays.len(), 201);
    for (i, delay) in delays.iter().enumerate() {
        let (low, high) = delay_bounds(sim.core.config(), i as u32 + 1);
        assert!(
            *delay >= low && *delay <= high,
            "attempt {}: {delay:?}",
            i + 1
        );
        assert!(*delay >= ms(100) && *delay <= Duration::from_secs(30));
    }
    // Jitter really spreads them.
    assert!(delays.windows(2).any(|w| w[0] != w[1]));
    assert_eq!(sim.core.status(), Status::Reconnecting);
    assert_eq!(sim.core.attempts(), 201);
}

#[test]
fn the_same_seed_gives_the_same_jitter() {
    let run = |seed| {
        let mut sim = Sim::new(Config::fleet("ws://h/ws").with_seed(seed));
        sim.connect();
        sim.transport(refused());
        for _ in 0..10 {
            fail_next_attempt(&mut sim);
        }
        delays(&sim)
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn the_queue_holds_100_messages_and_rejects_the_101st() {
    let mut sim = Sim::origin();
    let mut ids = Vec::new();
    for n in 0..100 {
        ids.push(sim.send(app(n)).unwrap());
    }
    assert_eq!(
        sim.send(app(100)),
        Err(SendError::QueueFull {
            messages: 100,
            bytes: sim.core.queued_bytes()
        })
    );
    assert_eq!(sim.core.queued().count(), 100);
    // Flushed in order, right after connecting, before a newer send.
    sim.connect();
    sim.opened();
    let newer = sim.send(app(999)).unwrap();
    let sent: Vec<MessageId> = sim
        .transmitted_of("app.msg")
        .iter()
        .map(|e| e.message_id().unwrap().clone())
        .collect();
    ids.push(newer);
    assert_eq!(sent, ids);
    assert_eq!(sim.core.queued().count(), 0);
}

#[test]
fn drop_oldest_reports_every_dropped_message() {
    let mut config = Config::new("ws://h/ws");
    config.queue_capacity = 3;
    config.overflow_policy = OverflowPolicy::DropOldest;
    let mut sim = Sim::new(config);
    let ids: Vec<_> = (0..5).map(|n| sim.send(app(n)).unwrap()).collect();
    let dropped: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::QueueOverflow { dropped } => Some(dropped.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, ids[..2]);
    let queued: Vec<_> = sim
        .core
        .queued()
        .map(|e| e.message_id().unwrap().clone())
        .collect();
    assert_eq!(queued, ids[2..]);
    assert_eq!(sim.core.clear_queue(), 3);
    assert_eq!(sim.core.queued_bytes(), 0);
}

#[test]
fn volatile_too_large_and_queue_off_sends_are_refused_with_typed_errors() {
    let mut sim = Sim::origin();
    assert_eq!(sim.send(app(1).volatile()), Err(SendError::NotConnected));
    let big = Outgoing::value("app.big", &"x".repeat(70_000)).unwrap();
    assert!(matches!(
        sim.send(big),
        Err(SendError::TooLarge { limit: 65_536, .. })
    ));
    assert!(matches!(
        sim.send(app(1).to_channel("bad channel")),
        Err(SendError::Invalid(_))
    ));
    assert_eq!(sim.core.queued().count(), 0);
    let mut config = Config::new("ws://h/ws");
    config.enable_queue = false;
    let mut off = Sim::new(config);
    assert_eq!(off.send(app(1)), Err(SendError::NotConnected));
    off.connected(None);
    assert!(off.send(app(2)).is_ok());
    assert!(off.send(app(3).volatile()).is_ok());
    assert_eq!(off.transmitted_of("app.msg").len(), 2);
}

#[test]
fn latency_comes_from_the_pong_matched_by_nonce() {
    let mut sim = Sim::origin();
    sim.connected(None);
    sim.advance(ms(30_000));
    let pings = sim.transmitted_of("ping");
    assert_eq!(pings.len(), 1);
    let payload = pings[0].payload().get().to_owned();
    assert_eq!(payload, r#"{"nonce":1}"#);
    sim.advance(ms(42));
    // A level-0 server echoes the payload with a fresh messageId.
    let (_, events) = sim.frame(&format!(
        r#"{{"type":"pong","payload":{payload},"messageId":"fresh"}}"#
    ));
    assert!(events.contains(&Event::Latency(ms(42))));
    let stats = sim.core.latency();
    assert_eq!(stats.last, Some(ms(42)));
    assert_eq!(stats.min, Some(ms(42)));
    assert_eq!(stats.smoothed, Some(ms(42)));
    assert_eq!(sim.core.outstanding_pings().count(), 0);
    // A second sample moves the EWMA by 0.2.
    sim.advance(ms(30_000 - 42));
    let payload = sim.transmitted_of("ping")[1].payload().get().to_owned();
    sim.advance(ms(142));
    sim.frame(&format!(r#"{{"type":"pong","payload":{payload}}}"#));
    let stats = sim.core.latency();
    assert_eq!(stats.last, Some(ms(142)));
    assert_eq!(stats.smoothed, Some(ms(62)));
    assert_eq!(stats.min, Some(ms(42)));
}

#[test]
fn status_sequence_of_a_connect_a_drop_and_a_reconnect() {
    let mut sim = Sim::origin();
    assert_eq!(sim.core.status(), Status::Disconnected);
    sim.connected(None);
    sim.advance(Duration::from_secs(1));
    let (_, events) = sim.closed(Some(1006));
    assert!(events.contains(&Event::Disconnected {
        code: Some(1006),
        reason: "connection closed (code 1006)".into(),
        will_reconnect: true
    }));
    sim.advance(Duration::from_secs(3));
    sim.opened();
    assert_eq!(
        sim.statuses(),
        [
            Status::Connecting,
            Status::Connected,
            Status::Reconnecting,
            Status::Connecting,
            Status::Connected
        ]
    );
    // Every change names where it came from.
    let mut previous = Status::Disconnected;
    for (_, event) in &sim.events {
        if let Event::StatusChanged { from, to, reason } = event {
            assert_eq!(*from, previous);
            assert!(!reason.is_empty());
            previous = *to;
        }
    }
    assert_eq!(serde_json_status(sim.core.status()), "\"connected\"");
}

fn serde_json_status(status: Status) -> String {
    serde_json::to_string(&status).unwrap()
}

#[test]
fn a_stable_connection_resets_the_attempt_count_a_flapping_one_does_not() {
    let mut sim = Sim::origin();
    sim.connected(None);
    sim.advance(Duration::from_secs(1));
    sim.closed(Some(1006));
    sim.advance(Duration::from_secs(3));
    sim.opened();
    // Flapping: down again after 1 s, the count goes on.
    sim.advance(Duration::from_secs(1));
    sim.closed(Some(1006));
    assert_eq!(delays(&sim), [ms(3_000), ms(4_500)]);
    sim.advance(ms(4_500));
    sim.opened();
    // Stable for 5 s: the count resets.
    sim.advance(Duration::from_secs(5));
    assert_eq!(sim.core.attempts(), 0);
    sim.closed(Some(1001));
    assert_eq!(delays(&sim), [ms(3_000), ms(4_500), ms(3_000)]);
}

#[test]
fn disconnect_is_sticky() {
    let mut sim = Sim::origin();
    sim.connected(None);
    let (commands, events) = sim.disconnect();
    assert_eq!(
        commands,
        [Command::Close {
            code: 1000,
            reason: "disconnect requested".into()
        }]
    );
    assert!(events.contains(&Event::Disconnected {
        code: Some(1000),
        reason: "disconnect requested".into(),
        will_reconnect: false
    }));
    assert_eq!(sim.core.status(), Status::Disconnected);
    // A late Closed for the dropped transport changes nothing.
    sim.closed(Some(1000));
    sim.advance(Duration::from_secs(3_600));
    assert_eq!(sim.open_times().len(), 1);
    assert_eq!(sim.core.poll_timeout(), None);
    // Queued while disconnected, sent after connect().
    let id = sim.send(app(1)).unwrap();
    sim.connect();
    sim.opened();
    assert_eq!(sim.open_times().len(), 2);
    assert_eq!(sim.transmitted_of("app.msg")[0].message_id(), Some(&id));
}

#[test]
fn disconnect_while_waiting_to_reconnect_cancels_the_attempt() {
    let mut sim = Sim::origin();
    sim.connect();
    sim.transport(refused());
    assert_eq!(sim.core.status(), Status::Reconnecting);
    sim.disconnect();
    sim.advance(Duration::from_secs(60));
    assert_eq!(sim.open_times().len(), 1);
    assert_eq!(sim.core.status(), Status::Disconnected);
}

#[test]
fn close_4001_and_4003_stop_reconnecting() {
    for code in [4001, 4003] {
        let mut sim = Sim::new(Config::new("ws://h/ws").with_token("old"));
        sim.connected(Some(WELCOME_ACK));
        let (_, events) = sim.closed(Some(code));
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Disconnected {
                will_reconnect: false,
                ..
            }
        )));
        assert_eq!(sim.core.status(), Status::Error);
        sim.advance(Duration::from_secs(3_600));
        assert_eq!(sim.open_times().len(), 1);
        // The facade gives a new token and connects again.
        sim.core.set_token(Some("new".into()));
        let (commands, _) = sim.connect();
        assert_eq!(
            commands,
            [Command::Open {
                url: "ws://h/ws?token=new".into()
            }]
        );
    }
}

#[test]
fn close_1001_4008_and_others_reconnect() {
    for code in [
        Some(1001),
        Some(4008),
        Some(1006),
        Some(1011),
        Some(1000),
        None,
    ] {
        let mut sim = Sim::origin();
        sim.connected(Some(WELCOME_ACK));
        let (_, events) = sim.closed(code);
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Disconnected {
                    will_reconnect: true,
                    ..
                }
            )),
            "{code:?}"
        );
        assert_eq!(sim.core.status(), Status::Reconnecting);
        sim.advance(Duration::from_secs(3));
        assert_eq!(sim.open_times().len(), 2, "{code:?}");
    }
}

#[test]
fn reconnect_off_leaves_the_client_disconnected() {
    let mut config = Config::new("ws://h/ws");
    config.reconnect = false;
    let mut sim = Sim::new(config);
    sim.connected(None);
    sim.closed(Some(1006));
    assert_eq!(sim.core.status(), Status::Disconnected);
    sim.advance(Duration::from_secs(60));
    assert_eq!(sim.open_times().len(), 1);
}

#[test]
fn reconnect_starts_over_at_once() {
    let mut sim = Sim::origin();
    sim.connect();
    sim.transport(refused());
    sim.advance(ms(3_000));
    sim.transport(refused());
    assert_eq!(sim.core.attempts(), 2);
    sim.core.reconnect(sim.now);
    let (commands, _) = sim.drain();
    assert!(matches!(commands.as_slice(), [Command::Open { .. }]));
    assert_eq!(sim.core.attempts(), 0);
    assert_eq!(sim.core.status(), Status::Connecting);
    sim.transport(refused());
    assert_eq!(delays(&sim).last(), Some(&ms(3_000)));
    // From Connected too: close, then open at once.
    sim.advance(ms(3_000));
    sim.opened();
    sim.core.reconnect(sim.now);
    let (commands, _) = sim.drain();
    assert_eq!(commands.len(), 2);
    assert!(matches!(commands[0], Command::Close { code: 1000, .. }));
    assert!(matches!(commands[1], Command::Open { .. }));
}

#[test]
fn a_connection_that_does_not_open_in_time_is_a_failed_attempt() {
    let mut sim = Sim::origin();
    sim.connect();
    sim.advance(ms(9_999));
    assert_eq!(sim.core.status(), Status::Connecting);
    sim.advance(ms(1));
    let closes: Vec<_> = sim
        .commands
        .iter()
        .filter(|(_, c)| matches!(c, Command::Close { .. }))
        .collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(
        closes[0],
        &(
            ms(10_000),
            Command::Close {
                code: 4000,
                reason: "connection timeout".into()
            }
        )
    );
    assert_eq!(sim.core.status(), Status::Reconnecting);
    assert_eq!(sim.core.attempts(), 1);
    // A late Opened for the abandoned attempt is ignored.
    let (commands, events) = sim.opened();
    assert!(commands.is_empty() && events.is_empty());
    sim.advance(ms(3_000));
    assert_eq!(sim.open_times(), [ms(0), ms(13_000)]);
}

#[test]
fn a_half_open_connection_is_detected_and_replaced() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    // The server goes silent (half-open TCP): the ping at 30 s gets no answer.
    sim.advance(ms(39_999));
    assert_eq!(sim.core.status(), Status::Connected);
    assert_eq!(sim.transmitted_of("ping").len(), 1);
    sim.advance(ms(1));
    assert!(sim.commands.iter().any(|(at, c)| *at == ms(40_000)
        && *c
            == Command::Close {
                code: 4000,
                reason: "heartbeat timeout".into()
            }));
    assert_eq!(sim.core.status(), Status::Reconnecting);
    sim.advance(ms(3_000));
    assert_eq!(sim.open_times(), [ms(0), ms(43_000)]);
}

#[test]
fn any_inbound_frame_proves_liveness() {
    let mut sim = Sim::origin();
    sim.connected(None);
    for _ in 0..10 {
        sim.advance(Duration::from_secs(35));
        sim.frame("not even json");
    }
    assert_eq!(sim.core.status(), Status::Connected);
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::ProtocolViolation(_)))
    );
}

#[test]
fn a_slept_laptop_detects_the_dead_link_on_its_next_send() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    // The lid closes: no timer fires for two hours.
    sim.sleep(Duration::from_secs(7_200));
    let id = sim.send(app(1)).unwrap();
    let (commands, _) = (sim.commands.clone(), ());
    // The dead link is closed first; the message waits in the queue instead of being lost.
    assert!(
        commands
            .iter()
            .any(|(_, c)| matches!(c, Command::Close { code: 4000, .. }))
    );
    assert!(sim.transmitted_of("app.msg").is_empty());
    assert_eq!(sim.core.queued().next().unwrap().message_id(), Some(&id));
    assert_eq!(sim.core.status(), Status::Reconnecting);
    sim.advance(ms(3_000));
    sim.opened();
    assert_eq!(sim.transmitted_of("app.msg")[0].message_id(), Some(&id));
}

#[test]
fn network_changed_probes_at_once() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    sim.advance(Duration::from_secs(1));
    sim.core.network_changed(sim.now);
    sim.drain();
    assert_eq!(sim.transmitted_of("ping").len(), 1);
    sim.advance(ms(10_000));
    assert_eq!(sim.core.status(), Status::Reconnecting);
    // While waiting to reconnect, a network change starts the attempt now.
    sim.core.network_changed(sim.now);
    sim.drain();
    assert_eq!(sim.open_times().len(), 2);
}

#[test]
fn level_0_mode_after_the_welcome_window() {
    let mut sim = Sim::origin();
    let queued_ack = sim.send(app(1).with_ack(true)).unwrap();
    let queued_plain = sim.send(app(2)).unwrap();
    sim.connect();
    sim.opened();
    // Behind an ack message, the plain one waits too (order is kept).
    assert!(sim.transmitted_of("app.msg").is_empty());
    sim.advance(ms(2_000));
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| *e == Event::ServerLevel(ServerLevel::Level0))
    );
    assert!(sim.events.iter().any(|(_, e)| *e
        == Event::SendFailed {
            message_id: queued_ack.clone(),
            error: AckError::Unsupported
        }));
    let sent = sim.transmitted_of("app.msg");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message_id(), Some(&queued_plain));
    // From now on an ack send fails at once, plain sends go out.
    assert_eq!(
        sim.send(app(3).with_ack(true)),
        Err(SendError::AckUnsupported)
    );
    assert!(sim.send(app(4)).is_ok());
    assert_eq!(sim.core.subscribe("room:1", sim.now), Ok(()));
    sim.drain();
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        Event::SubscribeFailed {
            error: SubscribeError::Unsupported,
            ..
        }
    )));
    assert_eq!(sim.core.status(), Status::Connected);
}

#[test]
fn a_first_frame_other_than_welcome_means_level_0_at_once() {
    let mut sim = Sim::origin();
    sim.send(app(1)).unwrap();
    sim.connect();
    let (commands, _) = sim.opened();
    // Plain queued messages go out right after opening, even before the level is known.
    assert_eq!(commands.len(), 1);
    let (_, events) = sim.frame(r#"{"type":"study_metrics_update","payload":{"userId":"u","studyHours":1,"progress":5,"sessionDuration":60,"streak":1}}"#);
    assert_eq!(events[0], Event::ServerLevel(ServerLevel::Level0));
    assert!(matches!(&events[1], Event::Message(e) if e.kind() == "study_metrics_update"));
}

#[test]
fn acked_send_happy_path() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    let id = sim.send(app(1).with_ack(true)).unwrap();
    let sent = sim.transmitted_of("app.msg");
    assert!(sent[0].ack());
    assert_eq!(sim.core.in_flight().collect::<Vec<_>>(), [&id]);
    let (_, events) = sim.frame(&format!(
        r#"{{"type":"ack","payload":{{"messageId":"{id}"}}}}"#
    ));
    assert_eq!(
        events,
        [Event::Acked {
            message_id: id.clone()
        }]
    );
    assert_eq!(sim.core.in_flight().count(), 0);
    // A duplicate ack is ignored.
    let (_, events) = sim.frame(&format!(
        r#"{{"type":"ack","payload":{{"messageId":"{id}"}}}}"#
    ));
    assert!(events.is_empty());
}

#[test]
fn control_types_published_on_a_channel_are_app_messages_not_control() {
    // PROTOCOL.md section 7: a server type with a `channel` is app data of that channel.
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    let id = sim.send(app(1).with_ack(true)).unwrap();
    for forged in [
        format!(
            r#"{{"type":"ack","payload":{{"messageId":"{id}"}},"channel":"chat:1","offset":1}}"#
        ),
        format!(
            r#"{{"type":"error","payload":{{"code":"forbidden","message":"no","refId":"{id}"}},"channel":"chat:1","offset":2}}"#
        ),
        r#"{"type":"pong","payload":{"nonce":1},"channel":"chat:1","offset":3}"#.to_owned(),
    ] {
        let (_, events) = sim.frame(&forged);
        assert!(
            matches!(events.as_slice(), [Event::Message(e)] if e.channel() == Some("chat:1")),
            "{forged}: {events:?}"
        );
    }
    // The send is still in flight: only the server's own `ack` settles it.
    assert_eq!(sim.core.in_flight().collect::<Vec<_>>(), [&id]);
    let (_, events) = sim.frame(&format!(
        r#"{{"type":"ack","payload":{{"messageId":"{id}"}}}}"#
    ));
    assert_eq!(events, [Event::Acked { message_id: id }]);
}

#[test]
fn acked_send_times_out() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    let id = sim.send(app(1).with_ack(true)).unwrap();
    sim.advance(ms(9_999));
    sim.frame("{\"type\":\"keepalive\"}");
    assert_eq!(sim.core.in_flight().count(), 1);
    sim.advance(ms(1));
    assert!(sim.events.iter().any(|(at, e)| *at == ms(10_000)
        && *e
            == Event::SendFailed {
                message_id: id.clone(),
                error: AckError::Timeout(ms(10_000))
            }));
    assert_eq!(sim.core.in_flight().count(), 0);
}

#[test]
fn an_error_with_ref_id_fails_that_message() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    let id = sim.send(app(1).with_ack(true)).unwrap();
    let (_, events) = sim.frame(&format!(
        r#"{{"type":"error","payload":{{"code":"forbidden","message":"not allowed","refId":"{id}"}}}}"#
    ));
    match events.as_slice() {
        [
            Event::SendFailed {
                message_id,
                error: AckError::Refused(payload),
            },
        ] => {
            assert_eq!(message_id, &id);
            assert_eq!(payload.message, "not allowed");
        }
        other => panic!("unexpected {other:?}"),
    }
    // An error naming nothing pending is reported as such.
    let (_, events) =
        sim.frame(r#"{"type":"error","payload":{"code":"rate_limited","message":"slow down"}}"#);
    assert!(matches!(events.as_slice(), [Event::ServerError(_)]));
}

#[test]
fn in_flight_messages_are_resent_with_the_same_id_in_order_after_a_reconnect() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    let a = sim.send(app(1).with_ack(true)).unwrap();
    let b = sim.send(app(2).with_ack(true)).unwrap();
    sim.closed(Some(1006));
    let c = sim.send(app(3)).unwrap();
    // Offline for a long time: the ack deadline does not run without a connection.
    sim.advance(ms(3_000));
    sim.clear_logs();
    sim.opened();
    assert!(
        sim.transmitted_of("app.msg").is_empty(),
        "in-flight messages keep their place"
    );
    sim.frame(WELCOME_ACK);
    let sent: Vec<_> = sim
        .transmitted_of("app.msg")
        .iter()
        .map(|e| e.message_id().unwrap().clone())
        .collect();
    assert_eq!(sent, [a.clone(), b.clone(), c]);
    for id in [&a, &b] {
        sim.frame(&format!(
            r#"{{"type":"ack","payload":{{"messageId":"{id}"}}}}"#
        ));
    }
    let acked: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Acked { message_id } => Some(message_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(acked, [a, b]);
}

#[test]
fn in_flight_messages_fail_if_the_new_server_has_no_acks() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    let a = sim.send(app(1).with_ack(true)).unwrap();
    sim.closed(Some(1001));
    sim.advance(ms(3_000));
    sim.opened();
    sim.frame(WELCOME_PLAIN);
    assert!(sim.events.iter().any(|(_, e)| *e
        == Event::SendFailed {
            message_id: a.clone(),
            error: AckError::Unsupported
        }));
    assert_eq!(
        sim.send(app(2).with_ack(true)),
        Err(SendError::AckUnsupported)
    );
}

#[test]
fn resume_resubscribes_with_since_and_drops_duplicates() {
    let mut sim = Sim::origin();
    sim.core.subscribe("room:1", sim.now).unwrap();
    sim.connected(Some(WELCOME_ACK));
    let subs = sim.transmitted_of("subscribe");
    assert_eq!(
        subs[0].typed::<Subscribe>().unwrap(),
        Subscribe {
            channel: "room:1".into(),
            since: None
        }
    );
    sim.frame(r#"{"type":"subscribed","payload":{"channel":"room:1","offset":0,"epoch":"e1","recovered":true,"missed":0}}"#);
    for offset in 1..=3 {
        sim.frame(&format!(
            r#"{{"type":"chat.message","payload":{offset},"channel":"room:1","offset":{offset}}}"#
        ));
    }
    sim.closed(Some(1006));
    sim.advance(ms(3_000));
    sim.clear_logs();
    sim.opened();
    sim.frame(WELCOME_ACK);
    let subs = sim.transmitted_of("subscribe");
    let since = subs[0].typed::<Subscribe>().unwrap().since.unwrap();
    assert_eq!((since.offset, since.epoch.as_str()), (3, "e1"));
    let (_, events) = sim.frame(r#"{"type":"subscribed","payload":{"channel":"room:1","offset":5,"epoch":"e1","recovered":true,"missed":2}}"#);
    assert_eq!(
        events,
        [Event::Subscribed {
            channel: "room:1".into(),
            recovered: true,
            missed: 2
        }]
    );
    // The replay overlaps what was seen: offset 3 is a duplicate.
    for offset in 3..=5 {
        sim.frame(&format!(
            r#"{{"type":"chat.message","payload":{offset},"channel":"room:1","offset":{offset}}}"#
        ));
    }
    let delivered: Vec<u64> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Message(env) => env.offset(),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [4, 5]);
    // A lost history (new epoch) is reported, and offsets start over. (Second drop within the
    // stable period: the next delay is 4.5 s.)
    sim.closed(Some(1006));
    sim.advance(ms(4_500));
    sim.clear_logs();
    sim.opened();
    sim.frame(WELCOME_ACK);
    sim.frame(r#"{"type":"subscribed","payload":{"channel":"room:1","offset":1,"epoch":"e2","recovered":false,"missed":0}}"#);
    sim.frame(r#"{"type":"chat.message","payload":1,"channel":"room:1","offset":1}"#);
    assert!(sim.events.iter().any(|(_, e)| *e
        == Event::Subscribed {
            channel: "room:1".into(),
            recovered: false,
            missed: 0
        }));
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Message(env) if env.offset() == Some(1)))
    );
    // Unsubscribe forgets it.
    assert!(sim.core.unsubscribe("room:1", sim.now));
    sim.drain();
    assert_eq!(sim.transmitted_of("unsubscribe").len(), 1);
    assert_eq!(sim.core.subscriptions().count(), 0);
}

#[test]
fn a_refused_subscription_is_reported_and_not_retried() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    sim.core.subscribe("secret:1", sim.now).unwrap();
    sim.drain();
    let id = sim.transmitted_of("subscribe")[0]
        .message_id()
        .unwrap()
        .clone();
    let (_, events) = sim.frame(&format!(
        r#"{{"type":"error","payload":{{"code":"forbidden","message":"no","refId":"{id}"}}}}"#
    ));
    assert!(
        matches!(events.as_slice(), [Event::SubscribeFailed { channel, error: SubscribeError::Refused(_) }] if channel == "secret:1")
    );
    assert_eq!(sim.core.subscriptions().count(), 0);
}

#[test]
fn auth_message_is_the_first_frame_and_the_url_stays_clean() {
    let mut config = Config::new("wss://h/ws").with_token("jwt-123");
    config.token_transport = TokenTransport::AuthMessage;
    let mut sim = Sim::new(config);
    sim.send(app(1)).unwrap();
    let (commands, _) = sim.connect();
    assert_eq!(
        commands,
        [Command::Open {
            url: "wss://h/ws".into()
        }]
    );
    sim.opened();
    let sent = sim.transmitted();
    assert_eq!(sent[0].typed::<Auth>().unwrap().token, "jwt-123");
    assert_eq!(sent[1].kind(), "app.msg");
    // Header transport: the adapter reads the token.
    let mut config = Config::new("wss://h/ws").with_token("jwt-123");
    config.token_transport = TokenTransport::Header;
    let mut sim = Sim::new(config);
    let (commands, _) = sim.connect();
    assert_eq!(
        commands,
        [Command::Open {
            url: "wss://h/ws".into()
        }]
    );
    assert_eq!(sim.core.token(), Some("jwt-123"));
}

#[test]
fn the_welcome_heartbeat_hint_shortens_the_interval() {
    let mut sim = Sim::origin();
    sim.connected(Some(&WELCOME_ACK.replace("30000", "10000")));
    assert_eq!(sim.core.heartbeat_interval(), ms(10_000));
    sim.advance(ms(10_000));
    assert_eq!(sim.transmitted_of("ping").len(), 1);
    // A hostile hint cannot cause a ping storm.
    let mut sim = Sim::origin();
    sim.connected(Some(&WELCOME_ACK.replace("30000", "1")));
    assert_eq!(sim.core.heartbeat_interval(), ms(1_000));
}

#[test]
fn invalid_configs_are_refused_at_construction() {
    let now = std::time::Instant::now();
    type Check = fn(&ConfigError) -> bool;
    let cases: Vec<(Config, Check)> = vec![
        (Config::new(""), |e| matches!(e, ConfigError::Url { .. })),
        (Config::new("https://h"), |e| {
            matches!(e, ConfigError::Url { .. })
        }),
        (
            Config {
                reconnect_interval: Duration::ZERO,
                ..Config::new("ws://h")
            },
            |e| matches!(e, ConfigError::ZeroDuration { .. }),
        ),
        (
            Config {
                heartbeat_interval: Duration::ZERO,
                ..Config::new("ws://h")
            },
            |e| matches!(e, ConfigError::ZeroDuration { .. }),
        ),
        (
            Config {
                jitter: 1.5,
                ..Config::new("ws://h")
            },
            |e| matches!(e, ConfigError::Jitter { .. }),
        ),
        (
            Config {
                jitter: f64::NAN,
                ..Config::new("ws://h")
            },
            |e| matches!(e, ConfigError::Jitter { .. }),
        ),
        (
            Config {
                queue_capacity: 0,
                ..Config::new("ws://h")
            },
            |e| matches!(e, ConfigError::ZeroCapacity { .. }),
        ),
    ];
    for (config, expected) in cases {
        let err = ClientCore::new(config, now, 0).unwrap_err();
        assert!(expected(&err), "{err:?}");
    }
}

#[test]
fn stray_transport_reports_are_ignored() {
    let mut sim = Sim::origin();
    for event in [
        TransportEvent::Opened,
        TransportEvent::Closed {
            code: Some(1006),
            reason: String::new(),
        },
        TransportEvent::Frame("{\"type\":\"x\"}".into()),
        TransportEvent::Error("late".into()),
    ] {
        let (commands, events) = sim.transport(event);
        assert!(commands.is_empty() && events.is_empty());
    }
    assert_eq!(sim.core.status(), Status::Disconnected);
}

#[test]
fn messages_held_without_a_queue_fail_when_the_link_drops() {
    let mut config = Config::new("ws://h/ws");
    config.enable_queue = false;
    let mut sim = Sim::new(config);
    sim.connect();
    sim.opened();
    // The server's level is not known yet: the ack message (and the plain one behind it) wait.
    let held_ack = sim.send(app(1).with_ack(true)).unwrap();
    let held_plain = sim.send(app(2)).unwrap();
    assert_eq!(sim.core.queued().count(), 2);
    sim.closed(Some(1006));
    for id in [held_ack, held_plain] {
        assert!(sim.events.iter().any(|(_, e)| *e
            == Event::SendFailed {
                message_id: id.clone(),
                error: AckError::ConnectionLost
            }));
    }
    assert_eq!(sim.core.queued().count(), 0);
}

#[test]
fn a_volatile_acked_message_is_not_resent_after_a_drop() {
    let mut sim = Sim::origin();
    sim.connected(Some(WELCOME_ACK));
    let id = sim.send(app(1).with_ack(true).volatile()).unwrap();
    assert_eq!(sim.core.in_flight().count(), 1);
    sim.closed(Some(1006));
    assert!(sim.events.iter().any(|(_, e)| *e
        == Event::SendFailed {
            message_id: id.clone(),
            error: AckError::ConnectionLost
        }));
    sim.advance(ms(3_000));
    sim.opened();
    sim.frame(WELCOME_ACK);
    assert_eq!(sim.transmitted_of("app.msg").len(), 1);
}

#[test]
fn queued_publications_go_out_after_their_channel_is_subscribed_again() {
    let mut sim = Sim::origin();
    sim.core.subscribe("room:1", sim.now).unwrap();
    sim.connected(Some(WELCOME_ACK));
    sim.frame(r#"{"type":"subscribed","payload":{"channel":"room:1","offset":0,"epoch":"e1","recovered":true,"missed":0}}"#);
    sim.closed(Some(1006));
    // Offline: a plain message, then a publication on the channel, then another plain one.
    sim.send(app(1)).unwrap();
    sim.send(app(2).to_channel("room:1")).unwrap();
    sim.send(app(3)).unwrap();
    sim.advance(ms(3_000));
    sim.clear_logs();
    sim.opened();
    // Before the server's level is known only the message ahead of the publication goes out.
    let sent = |sim: &Sim| -> Vec<String> {
        sim.transmitted()
            .iter()
            .filter(|e| e.kind() != "ping")
            .map(|e| match e.kind() {
                "app.msg" => format!("app {}", e.payload().get()),
                other => other.to_owned(),
            })
            .collect()
    };
    assert_eq!(sent(&sim), ["app 1"]);
    sim.frame(WELCOME_ACK);
    // Then the subscription, and after it the publication and the rest, in order.
    assert_eq!(sent(&sim), ["app 1", "subscribe", "app 2", "app 3"]);
}

#[test]
fn pending_and_peek_show_the_outputs_without_taking_them() {
    let mut sim = Sim::origin();
    assert_eq!(sim.core.pending(), (0, 0));
    sim.core.connect(sim.now);
    assert_eq!(sim.core.pending(), (1, 1));
    assert!(matches!(
        sim.core.peek_event(),
        Some(Event::StatusChanged {
            to: Status::Connecting,
            ..
        })
    ));
    // Peeking takes nothing.
    assert_eq!(sim.core.pending(), (1, 1));
    let (commands, events) = sim.drain();
    assert_eq!((commands.len(), events.len()), (1, 1));
    assert_eq!(sim.core.pending(), (0, 0));
    assert!(sim.core.peek_event().is_none());
}

#[test]
fn a_frame_the_transport_could_not_decode_is_a_protocol_violation_and_proves_liveness() {
    let mut sim = Sim::origin();
    sim.connected(None);
    for _ in 0..10 {
        sim.advance(Duration::from_secs(35));
        sim.transport(TransportEvent::Invalid(ProtocolError::InvalidMsgpack {
            detail: "reserved byte".into(),
        }));
    }
    assert_eq!(sim.core.status(), Status::Connected);
    let violations = sim
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::ProtocolViolation(ProtocolError::InvalidMsgpack { .. })
            )
        })
        .count();
    assert_eq!(violations, 10);
}
