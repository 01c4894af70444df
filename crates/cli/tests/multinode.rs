//! Several `cerebrum serve` processes on one private Redis act as one server: cross-node
//! publications, presence, notifications and study metrics; resume on another node; a node
//! killed with SIGKILL; Redis restarted mid-run.
//!
//! Without `redis-server` these tests print a loud `SKIPPED:` line (and fail instead when
//! `CEREBRUM_REQUIRE_ENGINES=1`, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use std::sync::Arc;

use cerebrum_testkit::postgres::PostgresCluster;
use cerebrum_testkit::redis::RedisServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::Serve;
const ADMIN: &str = "admin-secret";
const WAIT: Duration = Duration::from_secs(10);

/// One `cerebrum serve --redis` process.
struct Node {
    serve: Serve,
    ws: String,
    http: String,
    _dir: tempfile::TempDir,
}

/// The shared engines of a test's nodes: Redis, and PostgreSQL when installed (else each node
/// keeps its own SQLite file, after a loud `SKIPPED:` line).
struct Engines {
    redis: RedisServer,
    _postgres: Option<Arc<PostgresCluster>>,
    database: Option<String>,
}

impl Engines {
    fn start() -> Option<Self> {
        let redis = RedisServer::start().expect("redis-server")?;
        let postgres = PostgresCluster::shared().expect("PostgreSQL");
        let database = postgres
            .as_ref()
            .map(|cluster| cluster.fresh_database().expect("a fresh database"));
        Some(Self {
            redis,
            _postgres: postgres,
            database,
        })
    }

    fn nodes(&self, count: usize) -> Vec<Node> {
        (0..count)
            .map(|_| Node::start(&self.redis.url(), self.database.as_deref()))
            .collect()
    }
}

impl Node {
    fn start(redis: &str, database: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cerebrum.toml");
        std::fs::write(
            &config,
            "presence-ttl-secs = 3\npresence-refresh-secs = 1\npresence-grace-ms = 300\n",
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
        let serve = Serve::start(|serve| {
            serve
                .args(["--rate-limit", "0"])
                .args(["--admin-token", ADMIN, "--redis", redis])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .arg("--config")
                .arg(&config)
                .args(
                    database
                        .map(|url| ["--database", url])
                        .into_iter()
                        .flatten(),
                )
                .env("RUST_LOG", "info")
                .stderr(Stdio::from(log))
        });
        let ws = serve.url().to_owned();
        let http = ws
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .to_owned();
        Self {
            serve,
            ws,
            http,
            _dir: dir,
        }
    }

    /// SIGKILL: no goodbye to Redis or the clients.
    fn kill9(&mut self) {
        self.serve.kill();
    }

    /// `POST path` with the admin token; the status code.
    fn post(&self, path: &str, body: &Value) -> u16 {
        let body = body.to_string();
        let mut stream = StdTcpStream::connect(&self.http).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.http,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }
}

/// A raw protocol client.
struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    async fn open(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = Self { ws };
        client.next_of("welcome").await;
        client
    }

    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    async fn subscribe(&mut self, channel: &str, since: Option<(u64, &str)>) -> Value {
        let mut payload = json!({ "channel": channel });
        if let Some((offset, epoch)) = since {
            payload["since"] = json!({ "offset": offset, "epoch": epoch });
        }
        self.send(json!({ "type": "subscribe", "payload": payload }))
            .await;
        self.next_of("subscribed").await
    }

    /// The next frame of type `kind` (others are skipped).
    async fn next_of(&mut self, kind: &str) -> Value {
        self.next_where(kind, |_| true).await
    }

    /// The next frame of type `kind` that `pred` accepts.
    async fn next_where(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.next_where_within(WAIT, kind, pred).await
    }

    /// Like [`Client::next_where`] with its own patience.
    async fn next_where_within(
        &mut self,
        wait: Duration,
        kind: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no matching `{kind}` frame within {wait:?}"))
                .expect("connection open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == kind && pred(&value) {
                return value;
            }
        }
    }

    /// Every `chat.msg` offset received until `last` has arrived and then until the pong of a
    /// ping sent after it: a positive barrier instead of a time window, so that whatever the
    /// server queued for this client before answering the ping (a duplicate, a stray offset)
    /// is in the list.
    async fn offsets_through(&mut self, last: u64) -> Vec<u64> {
        let mut offsets = Vec::new();
        let mut ping_sent = false;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if !ping_sent && offsets.contains(&last) {
                self.send(json!({ "type": "ping", "payload": { "n": "offsets-barrier" } }))
                    .await;
                ping_sent = true;
            }
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("offset {last} or the barrier's pong missing; got {offsets:?}")
                })
                .expect("connection open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "chat.msg" {
                offsets.push(value["offset"].as_u64().unwrap());
            } else if value["type"] == "pong" && value["payload"]["n"] == "offsets-barrier" {
                return offsets;
            }
        }
    }
}

fn chat(channel: &str, text: &str) -> Value {
    json!({ "type": "chat.msg", "channel": channel, "payload": { "text": text } })
}

fn names(update: &Value) -> Vec<String> {
    update["payload"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["userId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_publications_presence_notifications_and_metrics() {
    let Some(engines) = Engines::start() else {
        return;
    };
    let nodes = engines.nodes(3);

    // Publications: one order, the same offsets, on every node.
    let mut a = Client::open(&nodes[0].ws).await;
    let mut b = Client::open(&nodes[1].ws).await;
    let mut c = Client::open(&nodes[2].ws).await;
    for client in [&mut a, &mut b, &mut c] {
        client.subscribe("chat:lobby", None).await;
    }
    a.send(chat("chat:lobby", "from a")).await;
    b.send(chat("chat:lobby", "from b")).await;
    for client in [&mut a, &mut b, &mut c] {
        let first = client.next_of("chat.msg").await;
        let second = client.next_of("chat.msg").await;
        assert_eq!(first["offset"], 1);
        assert_eq!(second["offset"], 2);
        assert_ne!(first["payload"], second["payload"]);
    }

    // A publication that asks for an ack is acked once Redis has it, and delivered everywhere.
    let mut acked = chat("chat:lobby", "acked");
    acked["messageId"] = json!("m-acked-1");
    acked["ack"] = json!(true);
    c.send(acked).await;
    let ack = c.next_of("ack").await;
    assert_eq!(ack["payload"]["messageId"], "m-acked-1");
    // (The publisher's own copy may come before or after its ack: not checked.)
    for client in [&mut a, &mut b] {
        let frame = client
            .next_where("chat.msg", |m| m["payload"]["text"] == "acked")
            .await;
        assert_eq!(frame["offset"], 3);
    }

    // Presence: a classmate on another node joins the same topic.
    a.send(json!({ "type": "study_session_start", "payload": { "userId": "ana", "topic": "Genetics" } }))
        .await;
    a.next_where("collaborative_session_update", |u| names(u) == ["ana"])
        .await;
    b.send(json!({ "type": "study_session_start", "payload": { "userId": "ben", "topic": "Genetics" } }))
        .await;
    let update = a
        .next_where("collaborative_session_update", |u| names(u).len() == 2)
        .await;
    assert_eq!(names(&update), ["ana", "ben"]);
    assert_eq!(update["payload"]["activeUsers"], 2);

    // Notifications reach every connection of the user, wherever it landed.
    let mut ana_elsewhere = Client::open(&nodes[2].ws).await;
    ana_elsewhere.subscribe("user:ana", None).await;
    a.subscribe("user:ana", None).await;
    let status = nodes[1].post(
        "/api/notifications",
        &json!({ "userId": "ana", "title": "Quiz", "message": "Cell division quiz at 5", "type": "info", "priority": "high" }),
    );
    assert_eq!(status, 202);
    for client in [&mut a, &mut ana_elsewhere] {
        let note = client.next_of("notification").await;
        assert_eq!(note["payload"]["title"], "Quiz");
    }

    // Study metrics: the end of a session on node A reaches ana's connection on node C.
    a.send(
        json!({ "type": "study_session_end", "payload": { "userId": "ana", "topic": "Genetics" } }),
    )
    .await;
    let metrics = ana_elsewhere.next_of("study_metrics_update").await;
    assert_eq!(metrics["payload"]["userId"], "ana");
    let left = b
        .next_where("collaborative_session_update", |u| names(u) == ["ben"])
        .await;
    assert_eq!(left["payload"]["activeUsers"], 1);

    // With PostgreSQL the record is shared: ana's next session, on node B, starts from it.
    if engines.database.is_some() {
        let mut ana_on_b = Client::open(&nodes[1].ws).await;
        ana_on_b.subscribe("user:ana", None).await;
        ana_on_b
            .send(json!({ "type": "study_session_start", "payload": { "userId": "ana", "topic": "Optics" } }))
            .await;
        let resumed = ana_on_b
            .next_where("study_metrics_update", |m| {
                m["payload"]["currentTopic"] == "Optics"
            })
            .await;
        assert_eq!(
            resumed["payload"]["studyHours"],
            metrics["payload"]["studyHours"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_another_node_and_a_killed_nodes_members_leave() {
    let Some(engines) = Engines::start() else {
        return;
    };
    let mut nodes = engines.nodes(3);

    let mut watcher = Client::open(&nodes[0].ws).await;
    watcher
        .send(json!({ "type": "study_session_start", "payload": { "userId": "wes", "topic": "Optics" } }))
        .await;
    let mut doomed = Client::open(&nodes[2].ws).await;
    let subscribed = doomed.subscribe("chat:optics", None).await;
    let epoch = subscribed["payload"]["epoch"].as_str().unwrap().to_owned();
    doomed
        .send(json!({ "type": "study_session_start", "payload": { "userId": "kim", "topic": "Optics" } }))
        .await;
    watcher
        .next_where("collaborative_session_update", |u| {
            names(u).contains(&"kim".to_owned())
        })
        .await;
    let mut publisher = Client::open(&nodes[0].ws).await;
    publisher.subscribe("chat:optics", None).await;
    publisher.send(chat("chat:optics", "one")).await;
    assert_eq!(doomed.next_of("chat.msg").await["offset"], 1);

    // Node C dies without a word; publications go on meanwhile.
    nodes[2].kill9();
    publisher.send(chat("chat:optics", "two")).await;
    publisher.send(chat("chat:optics", "three")).await;
    assert_eq!(publisher.next_of("chat.msg").await["offset"], 1);
    assert_eq!(publisher.next_of("chat.msg").await["offset"], 2);
    assert_eq!(publisher.next_of("chat.msg").await["offset"], 3);

    // Its client comes back on node B and resumes without a gap.
    let mut back = Client::open(&nodes[1].ws).await;
    let resumed = back.subscribe("chat:optics", Some((1, &epoch))).await;
    assert_eq!(resumed["payload"]["recovered"], true);
    assert_eq!(resumed["payload"]["missed"], 2);
    publisher.send(chat("chat:optics", "four")).await;
    let offsets = back.offsets_through(4).await;
    assert_eq!(offsets, [2, 3, 4]);

    // Its member leaves the presence once the TTL (3 s here) is over, announced to the others
    // by a surviving node (the wait allows for the TTL, the 2 s sweep and a loaded machine).
    let update = watcher
        .next_where_within(
            Duration::from_secs(30),
            "collaborative_session_update",
            |u| !names(u).contains(&"kim".to_owned()),
        )
        .await;
    assert_eq!(names(&update), ["wes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_report_degraded_while_redis_is_down_and_recover_after_its_restart() {
    let Some(mut engines) = Engines::start() else {
        return;
    };
    let nodes = engines.nodes(3);
    let redis = &mut engines.redis;
    let mut a = Client::open(&nodes[0].ws).await;
    let mut b = Client::open(&nodes[1].ws).await;
    let mut c = Client::open(&nodes[2].ws).await;
    for client in [&mut a, &mut b, &mut c] {
        client.subscribe("chat:ops", None).await;
    }
    a.send(chat("chat:ops", "before")).await;
    assert_eq!(b.next_of("chat.msg").await["offset"], 1);
    assert_eq!(c.next_of("chat.msg").await["offset"], 1);

    redis.stop();
    // Status checks run every 2 s; reconnecting backs off up to 2 s: generous waits for a
    // loaded machine.
    let slow = Duration::from_secs(30);
    let degraded = b
        .next_where_within(slow, "system_status", |s| {
            s["payload"]["status"] == "degraded"
        })
        .await;
    assert_eq!(degraded["payload"]["services"]["cache"], false);
    // The node keeps its connections: a ping is still answered.
    b.send(json!({ "type": "ping", "payload": { "n": 1 } }))
        .await;
    b.next_of("pong").await;

    redis.restart().unwrap();
    b.next_where_within(slow, "system_status", |s| {
        s["payload"]["status"] == "operational"
    })
    .await;
    // Deliveries resume across nodes (Redis lost its data: a new epoch starts at offset 1).
    let deadline = Instant::now() + slow;
    loop {
        a.send(chat("chat:ops", "after")).await;
        let got = tokio::time::timeout(Duration::from_millis(500), b.next_of("chat.msg")).await;
        if let Ok(frame) = got {
            assert_eq!(frame["payload"]["text"], "after");
            break;
        }
        assert!(Instant::now() < deadline, "deliveries did not resume");
    }
    // The third node gets them too (whatever was sent while resuming, "after" at last).
    c.next_where("chat.msg", |m| m["payload"]["text"] == "after")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_made_while_a_nodes_pubsub_link_is_cut_are_caught_up_from_history() {
    let Some(engines) = Engines::start() else {
        return;
    };
    let nodes = engines.nodes(3);
    let redis = &engines.redis;
    let mut a = Client::open(&nodes[0].ws).await;
    let mut b = Client::open(&nodes[1].ws).await;
    let mut c = Client::open(&nodes[2].ws).await;
    for client in [&mut a, &mut b, &mut c] {
        client.subscribe("chat:cut", None).await;
    }
    a.send(chat("chat:cut", "0")).await;
    assert_eq!(b.next_of("chat.msg").await["offset"], 1);
    assert_eq!(c.next_of("chat.msg").await["offset"], 1);

    // Cut every pub/sub link (Redis keeps its data), then publish at once.
    let mut admin = StdTcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    admin.write_all(b"CLIENT KILL TYPE pubsub\r\n").unwrap();
    let mut reply = [0u8; 16];
    let _ = admin.read(&mut reply).unwrap();
    for i in 1..=20 {
        a.send(chat("chat:cut", &i.to_string())).await;
    }
    for client in [&mut b, &mut c] {
        let offsets = client.offsets_through(21).await;
        assert_eq!(offsets, (2..=21).collect::<Vec<u64>>());
    }
}
