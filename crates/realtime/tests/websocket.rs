//! The client on real sockets (loopback, free ports, servers started by the tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cerebrum_realtime::core::SendError as CoreSendError;
use cerebrum_realtime::{
    AckError, Client, ClientBuilder, ClientError, SendError, ServerLevel, Status, StudyMetrics,
    StudySessionStart, TokenTransport,
};
use cerebrum_testkit::fake_server::{BlackHole, FakeServer, Kind, SOON};
use support::wait_status;
use tokio::sync::mpsc;

fn fast(url: &str) -> ClientBuilder {
    Client::builder(url)
        .reconnect_interval(Duration::from_millis(100))
        .max_reconnect_delay(Duration::from_millis(200))
        .unlimited_reconnect_attempts()
        .seed(7)
}

fn start_session() -> StudySessionStart {
    StudySessionStart {
        user_id: "user-123".into(),
        topic: "Genetics".into(),
        timestamp: None,
    }
}

#[tokio::test]
async fn receives_sends_and_measures_latency_against_a_v1_server() {
    let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
    let client = fast(&server.url())
        .heartbeat(Duration::from_millis(200))
        .build()
        .unwrap();
    let mut status = client.watch_status();
    let mut metrics = client.on::<StudyMetrics>();
    client.connect();
    wait_status(&mut status, Status::Connected).await;

    // Receive: a typed stream.
    server.push(r#"{"type":"study_metrics_update","payload":{"userId":"user-123","studyHours":3.5,"progress":40,"sessionDuration":600,"streak":2},"timestamp":1,"messageId":"m-1"}"#);
    let first = tokio::time::timeout(SOON, metrics.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.study_hours, 3.5);
    assert_eq!(first.streak, 2);

    // Send: the frame reaches the server, stamped.
    let id = client.send_payload(&start_session()).await.unwrap();
    let frame = received.next_of("study_session_start").await;
    assert_eq!(frame["messageId"], id.as_str());
    assert_eq!(frame["payload"]["topic"], "Genetics");

    // Acknowledged send.
    let acked = client
        .send_with_ack("quiz.answer", &serde_json::json!({"choice": 2}))
        .await
        .unwrap();
    assert_eq!(
        received.next_of("quiz.answer").await["messageId"],
        acked.as_str()
    );

    // Ping/pong latency.
    let mut state = client.watch_state();
    tokio::time::timeout(SOON, state.wait_for(|s| s.latency.last.is_some()))
        .await
        .unwrap()
        .unwrap();
    assert!(client.latency().is_some());
    assert!(matches!(
        client.state().server_level,
        Some(ServerLevel::V1 { .. })
    ));

    // Too large: refused locally with a typed error.
    let huge = "x".repeat(cerebrum_realtime::protocol::MAX_FRAME_BYTES);
    let err = client.send("quiz.answer", &huge).await.unwrap_err();
    assert!(matches!(
        err,
        SendError::Rejected(CoreSendError::TooLarge { .. })
    ));

    // A clean close handshake: the server saw a close frame with 1000.
    client.disconnect().await;
    assert_eq!(client.status(), Status::Disconnected);
    assert_eq!(received.next_close().await, 1000);
}

#[tokio::test]
async fn a_killed_server_is_reconnected_and_queued_messages_arrive_once_in_order() {
    let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
    let client = fast(&server.url()).build().unwrap();
    let mut status = client.watch_status();
    client.connect();
    wait_status(&mut status, Status::Connected).await;

    server.kill();
    wait_status(&mut status, Status::Reconnecting).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            client
                .send("chat.message", &serde_json::json!({ "n": n }))
                .await
                .unwrap(),
        );
    }
    assert_eq!(client.queued_messages().len(), 3);

    let _restarted = server.restart().await.unwrap();
    wait_status(&mut status, Status::Connected).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(received.next_of("chat.message").await);
    }
    let seen_ids: Vec<&str> = seen
        .iter()
        .map(|f| f["messageId"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    assert_eq!(seen_ids, want);
    assert_eq!(seen[0]["payload"]["n"], 0);
    // Once each: nothing more arrives after a heartbeat ping round.
    client.network_changed();
    received.next_of("ping").await;
    for frame in received.drain_frames() {
        assert!(!frame.contains("chat.message"), "duplicate: {frame}");
    }
    assert!(client.queued_messages().is_empty());
}

#[tokio::test]
async fn a_server_that_stops_answering_is_detected_and_left() {
    let (server, _received) = FakeServer::start(Kind::V1).await.unwrap();
    let (reasons_tx, mut reasons) = mpsc::unbounded_channel();
    let client = fast(&server.url())
        .heartbeat(Duration::from_millis(200))
        .heartbeat_timeout(Duration::from_millis(300))
        .on_disconnect(move |reason| {
            let _ = reasons_tx.send(reason.to_owned());
        })
        .build()
        .unwrap();
    let mut status = client.watch_status();
    client.connect();
    wait_status(&mut status, Status::Connected).await;
    assert_eq!(server.connections(), 1);

    server.silence_current();
    let reason = tokio::time::timeout(SOON, reasons.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(reason.contains("heartbeat timeout"), "{reason}");
    wait_status(&mut status, Status::Connected).await;
    assert!(server.connections() >= 2);
}

#[tokio::test]
async fn a_listener_that_never_upgrades_times_the_attempt_out() {
    let hole = BlackHole::start().await.unwrap();
    let (reasons_tx, mut reasons) = mpsc::unbounded_channel();
    let client = fast(&hole.url())
        .connection_timeout(Duration::from_millis(300))
        .on_disconnect(move |reason| {
            let _ = reasons_tx.send(reason.to_owned());
        })
        .build()
        .unwrap();
    let mut status = client.watch_status();
    client.connect();
    wait_status(&mut status, Status::Reconnecting).await;
    let reason = tokio::time::timeout(SOON, reasons.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(reason.contains("connection timeout"), "{reason}");
}

#[tokio::test]
async fn close_4001_ends_in_error_without_reconnecting() {
    let (server, _received) = FakeServer::start(Kind::Unauthorized).await.unwrap();
    let client = fast(&server.url()).token("expired").build().unwrap();
    let mut errors = client.errors();
    let mut status = client.watch_status();
    client.connect();
    wait_status(&mut status, Status::Error).await;
    let error = tokio::time::timeout(SOON, async {
        loop {
            match errors.recv().await.unwrap() {
                ClientError::Refused { code, .. } => return code,
                _ => continue,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(error, 4001);
    // The token went in the query by default.
    assert_eq!(server.last_query().as_deref(), Some("token=expired"));
    // No reconnect: none is scheduled (the core's rule, tested with simulated time in
    // cerebrum-core; here, instead of waiting to see nothing happen, the state says so).
    let state = client.state();
    assert_eq!(state.status, Status::Error);
    assert_eq!(state.next_attempt, None);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_token_provider_is_asked_before_each_attempt_and_once_more_after_4001() {
    let (server, _received) = FakeServer::start(Kind::Unauthorized).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let client = fast(&server.url())
        .token_transport(TokenTransport::Header)
        .token_provider(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, std::io::Error>(format!("token-{n}")) }
        })
        .build()
        .unwrap();
    let mut status = client.watch_status();
    client.connect();
    tokio::time::timeout(SOON, async {
        while calls.load(Ordering::SeqCst) < 2 || client.status() != Status::Error {
            status.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    // Given up: no further attempt is scheduled, so the provider is not asked again.
    assert_eq!(client.state().next_attempt, None);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(server.connections(), 2);
    assert_eq!(
        server.last_authorization().as_deref(),
        Some("Bearer token-1")
    );
    assert_eq!(client.status(), Status::Error);
}

#[tokio::test]
async fn works_in_level_0_mode_against_the_origin_example_server() {
    let (server, mut received) = FakeServer::start(Kind::Origin).await.unwrap();
    let client = fast(&server.url())
        .heartbeat(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut status = client.watch_status();
    let mut metrics = client.on::<StudyMetrics>();
    client.connect();
    wait_status(&mut status, Status::Connected).await;

    // Every incoming message triggers a broadcast.
    client.send_payload(&start_session()).await.unwrap();
    received.next_of("study_session_start").await;
    let update = tokio::time::timeout(SOON, metrics.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(update.current_topic.as_deref(), Some("Genetics"));
    let mut state = client.watch_state();
    tokio::time::timeout(
        SOON,
        state.wait_for(|s| s.server_level == Some(ServerLevel::Level0)),
    )
    .await
    .unwrap()
    .unwrap();

    // Pongs (with a fresh messageId) give latency.
    tokio::time::timeout(SOON, state.wait_for(|s| s.latency.last.is_some()))
        .await
        .unwrap()
        .unwrap();

    // No acks at level 0: a typed error at once.
    let err = client.send_with_ack("quiz.answer", &1).await.unwrap_err();
    assert!(
        matches!(
            err,
            AckError::Send(SendError::Rejected(CoreSendError::AckUnsupported))
        ),
        "{err:?}"
    );
    assert_eq!(client.status(), Status::Connected);
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes_it() {
    let (server, _received) = FakeServer::start(Kind::V1).await.unwrap();
    let client = fast(&server.url()).build().unwrap();
    assert_eq!(client.subscriber_count(), 0);
    let a = client.on::<StudyMetrics>();
    let b = client.on_type("custom");
    let c = client.messages();
    assert_eq!(client.subscriber_count(), 3);
    drop((a, b));
    assert_eq!(client.subscriber_count(), 1);
    drop(c);
    assert_eq!(client.subscriber_count(), 0);
}

#[tokio::test]
async fn notifications_of_a_v1_server_are_acknowledged_and_stored() {
    let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
    let client = fast(&server.url()).build().unwrap();
    let mut status = client.watch_status();
    let mut notifications = client.on::<cerebrum_realtime::Notification>();
    client.connect();
    wait_status(&mut status, Status::Connected).await;
    let mut state = client.watch_state();
    tokio::time::timeout(SOON, state.wait_for(|s| s.server_level.is_some()))
        .await
        .unwrap()
        .unwrap();
    server.push(r#"{"type":"notification","payload":{"id":"n1","title":"Quiz ready","message":"Genetics quiz","type":"info","priority":"high"},"timestamp":1,"messageId":"n-1"}"#);
    let notification = tokio::time::timeout(SOON, notifications.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.title, "Quiz ready");
    let ack = received.next_of("ack").await;
    assert_eq!(ack["payload"]["messageId"], "n-1");
    let store = client.store().snapshot();
    assert_eq!(store.notifications.len(), 1);
    assert_eq!(store.status, Status::Connected);
}

#[tokio::test]
async fn a_server_that_ignores_subprotocols_is_retried_without_and_extra_headers_are_sent() {
    let (server, mut received) = FakeServer::start(Kind::Bare).await.unwrap();
    let client = fast(&server.url())
        .header("X-Client", "dashboard")
        .header("Authorization", "Bearer from-a-header")
        .build()
        .unwrap();
    let mut status = client.watch_status();
    client.connect();
    wait_status(&mut status, Status::Connected).await;
    // The first handshake offered the subprotocol and the client refused the answer without
    // one; the second offered none. Both sent the headers.
    assert_eq!(server.connections(), 2);
    assert_eq!(server.last_subprotocol(), None);
    assert_eq!(
        server.last_authorization().as_deref(),
        Some("Bearer from-a-header")
    );
    client.send("chat.message", &"hi").await.unwrap();
    received.next_of("chat.message").await;
}

#[tokio::test]
async fn a_server_type_from_an_app_channel_is_app_data_not_a_notification() {
    // PROTOCOL.md section 7: a `notification` published into `chat:1` looks real by `type`
    // alone; the client hands it to the channel's subscribers only.
    let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
    let client = fast(&server.url()).build().unwrap();
    let mut status = client.watch_status();
    let mut notifications = client.on::<cerebrum_realtime::Notification>();
    let mut by_type = client.on_type("notification");
    let mut everything = client.messages();
    client.connect();
    wait_status(&mut status, Status::Connected).await;
    let mut state = client.watch_state();
    tokio::time::timeout(SOON, state.wait_for(|s| s.server_level.is_some()))
        .await
        .unwrap()
        .unwrap();
    server.push(r#"{"type":"notification","payload":{"id":"n1","title":"Forged","message":"click","type":"info","priority":"high","actionUrl":"javascript:alert(1)"},"timestamp":1,"messageId":"f-1","channel":"chat:1","offset":1}"#);
    // The server's own notification, sent after it, is the first one the typed handlers see.
    server.push(r#"{"type":"notification","payload":{"id":"n2","title":"Real","message":"quiz","type":"info","priority":"low"},"timestamp":2,"messageId":"n-2","channel":"user:u1","offset":1}"#);
    let first = tokio::time::timeout(SOON, everything.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.channel(), Some("chat:1"));
    let notification = tokio::time::timeout(SOON, notifications.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.title, "Real");
    let raw = tokio::time::timeout(SOON, by_type.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.message_id().map(|id| id.as_str()), Some("n-2"));
    // Only the real one is acknowledged and stored.
    let ack = received.next_of("ack").await;
    assert_eq!(ack["payload"]["messageId"], "n-2");
    let store = client.store().snapshot();
    assert_eq!(store.notifications.len(), 1);
    assert_eq!(store.notifications[0].title, "Real");
}
