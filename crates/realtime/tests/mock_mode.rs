//! The facade in mock mode, on tokio's paused clock: the production loop against the simulated
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cerebrum_realtime::{
    Client, CollaborativeSession, FaultScript, MockConfig, Notification, Status, StudyMetrics,
    SystemStatus,
};

fn mock(faults: FaultScript) -> cerebrum_realtime::ClientBuilder {
    Client::builder("wss://api.example.org/ws")
        .enable_mock_mode(true)
        .seed(1)
        .mock_config(MockConfig {
            faults,
            ..MockConfig::default()
        })
}

#[tokio::test(start_paused = true)]
async fn typed_streams_callbacks_and_the_store_see_the_simulated_data() {
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connects);
    let messages = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&messages);
    let client = mock(FaultScript::default())
        .on_connect(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .on_message(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let mut metrics = client.on::<StudyMetrics>();
    let mut sessions = client.on::<CollaborativeSession>();
    let mut statuses = client.on::<SystemStatus>();
    client.connect();
    assert!(statuses.recv().await.unwrap().services.api);
    let first = metrics.recv().await.unwrap();
    let second = metrics.recv().await.unwrap();
    assert!(second.study_hours >= first.study_hours, "hours only grow");
    assert!(!sessions.recv().await.unwrap().topic.is_empty());
    assert_eq!(connects.load(Ordering::SeqCst), 1);
    assert!(messages.load(Ordering::SeqCst) >= 5);
    assert!(client.is_connected());

    tokio::time::sleep(Duration::from_secs(40)).await;
    let state = client.store().snapshot();
    assert_eq!(state.status, Status::Connected);
    assert!(state.study_metrics.is_some());
    assert!(state.system_status.is_some());
    assert!(!state.sessions.is_empty());
    assert!(state.messages > 10);
    // A heartbeat went out and the simulated pong came back.
    assert!(client.latency().is_some());
    assert_eq!(state.latency_history.len(), 1);
    client.disconnect().await;
    assert_eq!(client.status(), Status::Disconnected);
}

#[tokio::test(start_paused = true)]
async fn acks_queue_and_faults_behave_as_on_a_real_server() {
    let client = mock(
        FaultScript::default()
            .refuse_next_connects(1)
            .drop_at(Duration::from_secs(30)),
    )
    .build()
    .unwrap();
    let mut status = client.watch_status();
    client.connect();
    status
        .wait_for(|s| *s == Status::Reconnecting)
        .await
        .unwrap();
    // Offline: queued, then flushed and acknowledged by the simulated server.
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.send_with_ack("quiz.answer", &2).await })
    };
    let mut state = client.watch_state();
    state.wait_for(|s| s.queued.len() == 1).await.unwrap();
    let queued = client.queued_messages();
    assert_eq!(queued.len(), 1);
    status.wait_for(|s| *s == Status::Connected).await.unwrap();
    let acked = pending.await.unwrap().unwrap();
    assert_eq!(Some(&acked), queued[0].message_id());
    assert!(client.queued_messages().is_empty());

    // The scripted drop: reconnecting, then connected again.
    status
        .wait_for(|s| *s == Status::Reconnecting)
        .await
        .unwrap();
    status.wait_for(|s| *s == Status::Connected).await.unwrap();
    assert_eq!(client.state().attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn notifications_are_kept_in_the_store() {
    let client = Client::builder("ws://mock/ws")
        .enable_mock_mode(true)
        .notification_history(2)
        .build()
        .unwrap();
    let mut notifications = client.on::<Notification>();
    client.connect();
    let first = notifications.recv().await.unwrap();
    assert!(!first.title.is_empty());
    tokio::time::sleep(Duration::from_secs(300)).await;
    let state = client.store().snapshot();
    assert!(!state.notifications.is_empty());
    assert!(state.notifications.len() <= 2);
}

#[tokio::test(start_paused = true)]
async fn channel_subscriptions_are_confirmed_and_dropped_ones_unsubscribed() {
    let client = mock(FaultScript::default()).build().unwrap();
    let mut frames = client.frames();
    client.connect();
    let room = client.subscribe_channel("quiz:room-1").await.unwrap();
    let subscribed = loop {
        let frame = frames.recv().await.unwrap();
        if frame.kind() == "subscribed" {
            break frame;
        }
    };
    assert!(subscribed.payload().get().contains("quiz:room-1"));
    assert!(matches!(
        client.subscribe_channel("bad channel").await,
        Err(cerebrum_realtime::SendError::Invalid(_))
    ));
    drop(room);
    let unsubscribed = loop {
        let frame = frames.recv().await.unwrap();
        if frame.kind() == "unsubscribed" {
            break frame;
        }
    };
    assert!(unsubscribed.payload().get().contains("quiz:room-1"));
}

#[tokio::test(start_paused = true)]
async fn the_state_says_when_the_next_reconnect_attempt_starts() {
    let client = mock(FaultScript::default().refuse_next_connects(1))
        .build()
        .unwrap();
    let mut state = client.watch_state();
    client.connect();
    // The refused connect schedules attempt 1 after the origin's first delay, 3 s.
    let scheduled = loop {
        state.changed().await.unwrap();
        let now = state.borrow_and_update().clone();
        if now.status == Status::Reconnecting
            && let Some(at) = now.next_attempt
        {
            break at;
        }
    };
    let left = scheduled.saturating_duration_since(tokio::time::Instant::now().into_std());
    assert!(
        left <= Duration::from_secs(3) && left > Duration::from_secs(2),
        "{left:?}"
    );
    // Once connected there is no countdown.
    let mut status = client.watch_status();
    while *status.borrow_and_update() != Status::Connected {
        status.changed().await.unwrap();
    }
    assert_eq!(client.state().next_attempt, None);
}
