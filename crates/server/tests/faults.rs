//! Faults on demand: a store and a broker that fail (or panic) when told to, behind a real
//! server on loopback. A frame whose processing failed after its dedupe id was recorded must be
//! processed when the client sends it again, and a connection task that unwinds must release
//! what it held.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cerebrum_protocol::StreamPosition;
use cerebrum_protocol::{Envelope, Notification, NotificationKind, Participant, Priority};
use cerebrum_server::auth::JwtKey;
use cerebrum_server::broker::{
    BrokerError, BrokerEvent, Claimed, ClusterLimits, DeliverFn, Delivery, FanOut, Health, History,
    MemoryBroker, Presence, Publication, RemoteBroker, Replay,
};
use cerebrum_server::sqlite::SqliteStore;
use cerebrum_server::store::{Store, StoreError, StudyRecord};
use cerebrum_server::{RunningServer, Server, ServerConfig};
use common::*;
use futures_util::StreamExt;
use serde_json::json;

/// SQLite, with writes that fail while `fail` is set.
struct FailingStore {
    inner: SqliteStore,
    fail: AtomicBool,
    /// Sessions recorded.
    recorded: AtomicUsize,
    /// Session writes refused.
    refused: AtomicUsize,
}

impl FailingStore {
    fn injected() -> StoreError {
        StoreError::Database("injected failure".into())
    }
}

impl Store for FailingStore {
    fn record_session(
        &self,
        user_id: &str,
        duration_secs: f64,
        ended_ms: u64,
    ) -> Result<StudyRecord, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Self::injected());
        }
        let record = self
            .inner
            .record_session(user_id, duration_secs, ended_ms)?;
        self.recorded.fetch_add(1, Ordering::SeqCst);
        Ok(record)
    }
    fn study_record(&self, user_id: &str, now_ms: u64) -> Result<StudyRecord, StoreError> {
        self.inner.study_record(user_id, now_ms)
    }
    fn save_notification(
        &self,
        notification: &Notification,
        user_id: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.inner.save_notification(notification, user_id, now_ms)
    }
    fn pending_notifications(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        self.inner.pending_notifications(user_id, limit)
    }
    fn ack_notification(&self, user_id: &str, id: &str, now_ms: u64) -> Result<bool, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Self::injected());
        }
        self.inner.ack_notification(user_id, id, now_ms)
    }
    fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping()
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

/// A remote broker played by a memory broker (publications come back through the fan-out
/// sink, as from Redis), whose appends fail while `fail` is set and panic on the channel
/// `panic_on`.
struct FaultyBroker {
    inner: MemoryBroker,
    sink: OnceLock<DeliverFn>,
    fail: AtomicBool,
    panic_on: Mutex<Option<String>>,
    /// Appends to app channels (`chat:`) that went through.
    appended: AtomicUsize,
}

impl FaultyBroker {
    fn new() -> Self {
        Self {
            inner: MemoryBroker::new(100, Duration::from_secs(300), 3),
            sink: OnceLock::new(),
            fail: AtomicBool::new(false),
            panic_on: Mutex::new(None),
            appended: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl History for FaultyBroker {
    async fn append(
        &self,
        channel: &str,
        envelope: Envelope,
        now: Instant,
    ) -> Result<Publication, BrokerError> {
        if self.panic_on.lock().unwrap().as_deref() == Some(channel) {
            panic!("injected panic while publishing on {channel}");
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(BrokerError::Unavailable);
        }
        let publication = self.inner.append(channel, envelope, now)?;
        if channel.starts_with("chat:") {
            self.appended.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(sink) = self.sink.get() {
            let epoch = self.inner.replay(channel, None, now)?.epoch;
            sink(BrokerEvent::Publication(Delivery {
                channel: channel.to_owned(),
                epoch,
                offset: publication.offset,
                text: publication.text.clone(),
            }));
        }
        Ok(publication)
    }
    async fn replay(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        now: Instant,
    ) -> Result<Replay, BrokerError> {
        self.inner.replay(channel, since, now)
    }
}

#[async_trait]
impl FanOut for FaultyBroker {
    fn attach(&self, sink: DeliverFn) {
        let _ = self.sink.set(sink);
    }
    async fn watch(&self, _: &str) -> Result<(), BrokerError> {
        Ok(())
    }
    fn unwatch(&self, _: &str) {}
}

#[async_trait]
impl Presence for FaultyBroker {
    async fn join(&self, channel: &str, participant: Participant) -> Result<(), BrokerError> {
        self.inner.presence_join(channel, participant);
        Ok(())
    }
    async fn leave(&self, channel: &str, user_id: &str, _: u64) -> Result<(), BrokerError> {
        self.inner.presence_leave(channel, user_id);
        Ok(())
    }
    async fn members(&self, channel: &str) -> Result<Vec<Participant>, BrokerError> {
        Ok(self.inner.presence(channel))
    }
    async fn expire(&self, _: &str) -> Result<Vec<String>, BrokerError> {
        Ok(Vec::new())
    }
    async fn reconcile(&self, _: Vec<(String, Participant)>) -> Result<(), BrokerError> {
        Ok(())
    }
}

#[async_trait]
impl ClusterLimits for FaultyBroker {
    async fn claim(&self, _: &str, _: &str, _: Duration) -> Result<Claimed, BrokerError> {
        // The node's own dedupe window decides.
        Ok(Claimed::First)
    }
    async fn settle(&self, _: &str, _: &str, _: Duration) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn release(&self, _: &str, _: &str) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn user_connected(&self, _: &str, _: usize) -> Result<bool, BrokerError> {
        Ok(true)
    }
    async fn user_disconnected(&self, _: &str) -> Result<(), BrokerError> {
        Ok(())
    }
}

#[async_trait]
impl Health for FaultyBroker {
    async fn is_healthy(&self) -> bool {
        true
    }
}

struct Faulty {
    server: RunningServer,
    store: Arc<FailingStore>,
    broker: Arc<FaultyBroker>,
    _dir: tempfile::TempDir,
}

async fn start_faulty(remote: bool, edit: impl FnOnce(&mut ServerConfig)) -> Faulty {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    edit(&mut config);
    let store = Arc::new(FailingStore {
        inner: SqliteStore::open(dir.path()).unwrap(),
        fail: AtomicBool::new(false),
        recorded: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
    });
    let broker = Arc::new(FaultyBroker::new());
    let remote: Option<Arc<dyn RemoteBroker>> = remote.then(|| broker.clone() as _);
    let server = Server::bind_with(config, store.clone(), remote)
        .await
        .unwrap();
    Faulty {
        server,
        store,
        broker,
        _dir: dir,
    }
}

/// Reads until the `ack` or `error` answering frame `id`.
async fn answer_to(ws: &mut Ws, id: &str) -> serde_json::Value {
    loop {
        let frame = recv(ws).await;
        let answers = match frame["type"].as_str() {
            Some("ack") => frame["payload"]["messageId"] == id,
            Some("error") => frame["payload"]["refId"] == id,
            _ => false,
        };
        if answers {
            return frame;
        }
    }
}

#[tokio::test]
async fn a_study_end_whose_write_failed_is_recorded_when_sent_again() {
    let faulty = start_faulty(false, |_| {}).await;
    let (mut ws, _) = connect_ready(&faulty.server.ws_url()).await;
    let start = json!({"type":"study_session_start","payload":{"userId":"ada","topic":"Genetics"},"ack":true,"messageId":"s1"});
    send_json(&mut ws, &start).await;
    assert_eq!(answer_to(&mut ws, "s1").await["type"], "ack");

    let end = json!({"type":"study_session_end","payload":{"userId":"ada","topic":"Genetics"},"ack":true,"messageId":"e1"});
    faulty.store.fail.store(true, Ordering::SeqCst);
    send_json(&mut ws, &end).await;
    let failed = answer_to(&mut ws, "e1").await;
    assert_eq!(failed["type"], "error", "{failed}");
    assert_eq!(failed["payload"]["code"], "internal");

    // The retry is processed: the session was kept, and the id was not taken as a duplicate.
    faulty.store.fail.store(false, Ordering::SeqCst);
    send_json(&mut ws, &end).await;
    assert_eq!(answer_to(&mut ws, "e1").await["type"], "ack");
    assert_eq!(faulty.store.recorded.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_notification_ack_whose_write_failed_is_recorded_when_sent_again() {
    let faulty = start_faulty(false, |_| {}).await;
    let note = Notification {
        id: "n1".into(),
        title: "Hello".into(),
        message: "World".into(),
        kind: NotificationKind::Info,
        priority: Priority::Low,
        action_url: None,
        action_text: None,
    };
    faulty
        .store
        .save_notification(&note, Some("ada"), cerebrum_server::clock::unix_ms())
        .unwrap();
    let (mut ws, _) = connect_ready(&faulty.server.ws_url()).await;
    send_json(
        &mut ws,
        &json!({"type":"subscribe","payload":{"channel":"user:ada"}}),
    )
    .await;
    let delivered = recv_type(&mut ws, "notification").await;
    assert_eq!(delivered["messageId"], "n1");

    let ack = json!({"type":"ack","payload":{"messageId":"n1"},"ack":true,"messageId":"k1"});
    faulty.store.fail.store(true, Ordering::SeqCst);
    send_json(&mut ws, &ack).await;
    assert_eq!(answer_to(&mut ws, "k1").await["type"], "error");

    faulty.store.fail.store(false, Ordering::SeqCst);
    send_json(&mut ws, &ack).await;
    assert_eq!(answer_to(&mut ws, "k1").await["type"], "ack");
    assert!(
        faulty
            .store
            .pending_notifications("ada", 10)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_the_broker_refused_is_published_when_sent_again() {
    let faulty = start_faulty(true, |_| {}).await;
    let (mut ws, _) = connect_ready(&faulty.server.ws_url()).await;
    send_json(
        &mut ws,
        &json!({"type":"subscribe","payload":{"channel":"chat:room"}}),
    )
    .await;
    recv_type(&mut ws, "subscribed").await;

    let publication = json!({"type":"chat.message","channel":"chat:room","payload":{"text":"hi"},"ack":true,"messageId":"p1"});
    faulty.broker.fail.store(true, Ordering::SeqCst);
    send_json(&mut ws, &publication).await;
    assert_eq!(answer_to(&mut ws, "p1").await["type"], "error");

    faulty.broker.fail.store(false, Ordering::SeqCst);
    send_json(&mut ws, &publication).await;
    assert_eq!(answer_to(&mut ws, "p1").await["type"], "ack");
    assert_eq!(faulty.broker.appended.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_task_that_panics_releases_its_user_slot_and_channels() {
    let faulty = start_faulty(true, |config| {
        config.jwt = Some(JwtKey::hs256(SECRET));
        config.max_connections_per_user = 1;
    })
    .await;
    *faulty.broker.panic_on.lock().unwrap() = Some("user:boom".into());
    let url = format!(
        "{}?token={}",
        faulty.server.ws_url(),
        token(SECRET, "boom", None)
    );
    let (mut ws, _) = connect_ready(&url).await;
    // The study start's metrics are published on `user:boom` from an effect: the broker panics
    // there, inside the connection task.
    send_json(
        &mut ws,
        &json!({"type":"study_session_start","payload":{"userId":"boom","topic":"Genetics"}}),
    )
    .await;
    // The connection ends without a close frame (its task unwound).
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    // Its channels are left...
    // Polled until a generous deadline (the task unwinds after the socket is gone).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let hub = &faulty.server.context().hub;
    while hub
        .local_channels()
        .iter()
        .any(|c| c == "user:boom" || c == "session:genetics")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the panicked connection's channels were never left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... and its user slot released: the user connects again (the limit is one).
    *faulty.broker.panic_on.lock().unwrap() = None;
    let (_again, welcome) = connect_ready(&url).await;
    assert_eq!(welcome["payload"]["userId"], "boom");
}

/// Polls `condition` until it holds; fails after a generous deadline (a broken build, not a
/// slow machine, is what the deadline catches).
async fn wait_until(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_study_session_that_expired_while_the_store_failed_is_written_later() {
    let faulty = start_faulty(false, |config| {
        config.presence_grace = Duration::from_millis(50);
    })
    .await;
    let (mut ws, _) = connect_ready(&faulty.server.ws_url()).await;
    let start = json!({"type":"study_session_start","payload":{"userId":"ada","topic":"Genetics"},"ack":true,"messageId":"s1"});
    send_json(&mut ws, &start).await;
    assert_eq!(answer_to(&mut ws, "s1").await["type"], "ack");
    faulty.store.fail.store(true, Ordering::SeqCst);
    // The connection is lost; after the grace period the session ends, and its write fails.
    drop(ws);
    let store = &faulty.store;
    wait_until(
        || store.refused.load(Ordering::SeqCst) >= 1,
        "the failed write",
    )
    .await;
    faulty.store.fail.store(false, Ordering::SeqCst);
    wait_until(
        || store.recorded.load(Ordering::SeqCst) == 1,
        "the session written",
    )
    .await;
}
