//! One broker test-suite, run against the in-memory broker and against the Redis broker on a
//! private `redis-server` (skipped loudly without one, failed with `CEREBRUM_REQUIRE_ENGINES=1`),
//! plus what only a shared broker does: two nodes on one Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cerebrum_protocol::{Envelope, Participant, StreamPosition};
use cerebrum_server::broker::{
    BrokerError, BrokerEvent, Claimed, ClusterLimits, Delivery, FanOut, Health, History,
    MemoryBroker, Presence, Publication, Replay,
};
use cerebrum_server::redis_broker::{RedisBroker, RedisConfig};
use cerebrum_testkit::redis::RedisServer;

fn env(n: u64) -> Envelope {
    Envelope::from_value("app.n", &n).unwrap()
}

fn member(user: &str, joined_at: u64) -> Participant {
    Participant {
        user_id: user.to_owned(),
        user_name: format!("{user} name"),
        avatar_url: None,
        joined_at,
    }
}

async fn redis_broker(redis: &RedisServer, history: usize) -> RedisBroker {
    let mut config = RedisConfig::new(&redis.url());
    config.history_size = history;
    config.presence_ttl = Duration::from_secs(1);
    config.presence_refresh = Duration::from_millis(300);
    RedisBroker::connect(config).await.unwrap()
}

/// The core's memory broker behind the same async capabilities, so that one suite checks
/// both.
struct Memory(MemoryBroker);

#[async_trait]
impl History for Memory {
    async fn append(
        &self,
        channel: &str,
        envelope: Envelope,
        now: Instant,
    ) -> Result<Publication, BrokerError> {
        self.0.append(channel, envelope, now)
    }
    async fn replay(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        now: Instant,
    ) -> Result<Replay, BrokerError> {
        self.0.replay(channel, since, now)
    }
}

#[async_trait]
impl Presence for Memory {
    async fn join(&self, channel: &str, participant: Participant) -> Result<(), BrokerError> {
        self.0.presence_join(channel, participant);
        Ok(())
    }
    async fn leave(&self, channel: &str, user_id: &str, joined_at: u64) -> Result<(), BrokerError> {
        if self
            .0
            .presence(channel)
            .iter()
            .any(|m| m.user_id == user_id && m.joined_at == joined_at)
        {
            self.0.presence_leave(channel, user_id);
        }
        Ok(())
    }
    async fn members(&self, channel: &str) -> Result<Vec<Participant>, BrokerError> {
        Ok(self.0.presence(channel))
    }
    async fn expire(&self, _: &str) -> Result<Vec<String>, BrokerError> {
        Ok(Vec::new())
    }
    async fn reconcile(&self, _: Vec<(String, Participant)>) -> Result<(), BrokerError> {
        Ok(())
    }
}

/// Polls `condition` until it holds; fails after a generous deadline (a broken build, not a
/// slow machine, is what the deadline catches).
async fn wait_until<F: Future<Output = bool>>(mut condition: impl FnMut() -> F, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The rules every broker keeps.
async fn suite(broker: &(impl History + Presence)) {
    let now = Instant::now();
    // Offsets start at 1 and grow by one; the frame carries channel and offset.
    for i in 1..=5 {
        let publication = broker.append("room:1", env(i), now).await.unwrap();
        assert_eq!(publication.offset, i);
        let frame = cerebrum_protocol::decode(publication.text.as_str()).unwrap();
        assert_eq!(frame.offset(), Some(i));
        assert_eq!(frame.channel(), Some("room:1"));
        assert_eq!(frame.payload().get(), i.to_string());
    }
    // Channels are independent.
    assert_eq!(
        broker.append("room:2", env(1), now).await.unwrap().offset,
        1
    );

    // Replay.
    let position = broker.replay("room:1", None, now).await.unwrap();
    assert_eq!(position.offset, 5);
    assert!(!position.recovered);
    let epoch = position.epoch.to_string();
    let since = |offset| StreamPosition {
        offset,
        epoch: epoch.clone(),
    };
    let missed = broker.replay("room:1", Some(&since(2)), now).await.unwrap();
    assert!(missed.recovered);
    let offsets: Vec<u64> = missed.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [3, 4, 5]);
    let texts: Vec<u64> = missed
        .publications
        .iter()
        .map(|p| {
            cerebrum_protocol::decode(p.text.as_str())
                .unwrap()
                .offset()
                .unwrap()
        })
        .collect();
    assert_eq!(texts, [3, 4, 5]);
    let current = broker.replay("room:1", Some(&since(5)), now).await.unwrap();
    assert!(current.recovered && current.publications.is_empty());
    assert!(
        !broker
            .replay("room:1", Some(&since(9)), now)
            .await
            .unwrap()
            .recovered
    );
    let other = StreamPosition {
        offset: 2,
        epoch: "another-epoch".into(),
    };
    assert!(
        !broker
            .replay("room:1", Some(&other), now)
            .await
            .unwrap()
            .recovered
    );
    // A fresh channel has offset 0 and a stable epoch.
    let fresh = broker.replay("room:new", None, now).await.unwrap();
    assert_eq!(fresh.offset, 0);
    assert_eq!(
        broker.replay("room:new", None, now).await.unwrap().epoch,
        fresh.epoch
    );

    // Presence: join order, a re-join replaces, a leave removes the entry it names only.
    broker.join("session:x", member("ana", 10)).await.unwrap();
    broker.join("session:x", member("ben", 20)).await.unwrap();
    let mut renamed = member("ana", 10);
    renamed.user_name = "Ana B.".into();
    broker.join("session:x", renamed).await.unwrap();
    let members = broker.members("session:x").await.unwrap();
    let ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
    assert_eq!(ids, ["ana", "ben"]);
    assert_eq!(members[0].user_name, "Ana B.");
    // A leave of an older session of ana (another connection joined since) keeps her.
    broker.leave("session:x", "ana", 9).await.unwrap();
    assert_eq!(broker.members("session:x").await.unwrap().len(), 2);
    broker.leave("session:x", "ana", 10).await.unwrap();
    broker.leave("session:x", "nobody", 10).await.unwrap();
    assert_eq!(
        broker.members("session:x").await.unwrap(),
        [member("ben", 20)]
    );
    assert!(broker.members("session:empty").await.unwrap().is_empty());
}

/// History keeps `size` publications: older positions are not recovered.
async fn history_is_bounded(broker: &impl History, size: u64) {
    let now = Instant::now();
    for i in 0..size * 3 {
        broker.append("bounded", env(i), now).await.unwrap();
    }
    let epoch = broker
        .replay("bounded", None, now)
        .await
        .unwrap()
        .epoch
        .to_string();
    let old = StreamPosition { offset: 1, epoch };
    assert!(
        !broker
            .replay("bounded", Some(&old), now)
            .await
            .unwrap()
            .recovered
    );
}

#[tokio::test]
async fn the_memory_broker_keeps_the_rules() {
    let broker = Memory(MemoryBroker::new(10, Duration::from_secs(300), 1));
    suite(&broker).await;
    history_is_bounded(&broker, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_broker_keeps_the_rules() {
    let Some(redis) = RedisServer::start().unwrap() else {
        return;
    };
    let broker = redis_broker(&redis, 10).await;
    suite(&broker).await;
    history_is_bounded(&broker, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_share_offsets_deliveries_presence_dedupe_and_counts() {
    let Some(redis) = RedisServer::start().unwrap() else {
        return;
    };
    let a = redis_broker(&redis, 100).await;
    let b = redis_broker(&redis, 100).await;
    let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let sink = received.clone();
    a.attach(Arc::new(move |event| {
        if let BrokerEvent::Publication(delivery) = event {
            sink.lock().unwrap().push(delivery);
        }
    }));
    a.watch("chat:1").await.unwrap();
    let now = Instant::now();
    assert_eq!(b.append("chat:1", env(1), now).await.unwrap().offset, 1);
    assert_eq!(a.append("chat:1", env(2), now).await.unwrap().offset, 2);
    assert_eq!(b.append("chat:1", env(3), now).await.unwrap().offset, 3);
    wait_until(
        || std::future::ready(received.lock().unwrap().len() >= 3),
        "three deliveries",
    )
    .await;
    let got: Vec<(u64, String)> = received
        .lock()
        .unwrap()
        .iter()
        .map(|d| (d.offset, d.channel.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "chat:1".into()),
            (2, "chat:1".into()),
            (3, "chat:1".into())
        ]
    );
    let epoch = b.replay("chat:1", None, now).await.unwrap().epoch;
    assert!(received.lock().unwrap().iter().all(|d| d.epoch == epoch));
    // Unwatched: nothing more arrives. A barrier instead of a wait: the link applies requests
    // in order, so once `watch("barrier")` is confirmed `chat:1` is unsubscribed; Redis then
    // delivers a node's messages in publish order, so a publication to `chat:1` that still
    // reached `a` would arrive before the barrier's.
    a.unwatch("chat:1");
    a.watch("barrier").await.unwrap();
    b.append("chat:1", env(4), now).await.unwrap();
    b.append("barrier", env(5), now).await.unwrap();
    wait_until(
        || std::future::ready(received.lock().unwrap().len() > 3),
        "the barrier's delivery",
    )
    .await;
    let after: Vec<String> = received.lock().unwrap()[3..]
        .iter()
        .map(|d| d.channel.clone())
        .collect();
    assert_eq!(after, ["barrier"]);
    a.unwatch("barrier");

    // Dedupe: a message id seen on one node is a duplicate on the other.
    let window = Duration::from_secs(60);
    // In progress on one node: the other waits; settled: a duplicate; released: a retry.
    assert_eq!(
        a.claim("u:ana", "m-1", window).await.unwrap(),
        Claimed::First
    );
    assert_eq!(
        b.claim("u:ana", "m-1", window).await.unwrap(),
        Claimed::InProgress
    );
    a.settle("u:ana", "m-1", window).await.unwrap();
    assert_eq!(
        b.claim("u:ana", "m-1", window).await.unwrap(),
        Claimed::Done
    );
    b.release("u:ana", "m-1").await.unwrap();
    assert_eq!(
        b.claim("u:ana", "m-1", window).await.unwrap(),
        Claimed::First
    );

    // Connections per user, counted over both nodes.
    assert!(a.user_connected("ana", 2).await.unwrap());
    assert!(b.user_connected("ana", 2).await.unwrap());
    assert!(!a.user_connected("ana", 2).await.unwrap());
    b.user_disconnected("ana").await.unwrap();
    assert!(a.user_connected("ana", 2).await.unwrap());

    // Presence: a node that stops refreshing loses its members after the TTL, and exactly one
    // caller hears about each.
    a.join("session:bio", member("kim", 1)).await.unwrap();
    b.join("session:bio", member("lee", 2)).await.unwrap();
    assert_eq!(b.members("session:bio").await.unwrap().len(), 2);
    drop(a);
    // Redis's clock decides when the TTL is over: poll until it is (no fixed wait).
    wait_until(
        || async { b.members("session:bio").await.unwrap() == [member("lee", 2)] },
        "kim's presence to expire",
    )
    .await;
    assert_eq!(b.expire("session:bio").await.unwrap(), ["kim"]);
    assert!(b.expire("session:bio").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_fast_and_the_broker_recovers_after_a_restart() {
    let Some(mut redis) = RedisServer::start().unwrap() else {
        return;
    };
    let broker = redis_broker(&redis, 100).await;
    let now = Instant::now();
    broker.append("c", env(1), now).await.unwrap();
    wait_until(|| broker.is_healthy(), "the broker to be healthy").await;
    redis.stop();
    // Refused (the call timeout is 2 s, not TCP's own minutes; how fast is a matter for
    // benchmarks, not for a timed assertion here).
    let failed = broker.append("c", env(2), now).await;
    assert!(
        matches!(failed, Err(BrokerError::Unavailable)),
        "{failed:?}"
    );
    wait_until(
        || async { !broker.is_healthy().await },
        "the broker to report the outage",
    )
    .await;
    redis.restart().unwrap();
    wait_until(|| broker.is_healthy(), "the broker to recover").await;
    // The data went with the old process: a new epoch starts at offset 1.
    assert_eq!(broker.append("c", env(3), now).await.unwrap().offset, 1);
}
