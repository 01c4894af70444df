//! Test servers on loopback: a small v1 server, the origin document's example server, a
//! listener that never upgrades.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err
)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use cerebrum_realtime::Status;

/// Generous bound for anything that should happen "soon" on loopback.
pub const SOON: Duration = Duration::from_secs(10);

/// How a test server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// v1: welcome with the ack feature, pong echoes, ack for `ack:true`.
    V1,
    /// The origin document's example server: no welcome; pong echoes the payload with a fresh
    /// messageId; every incoming message triggers a `study_metrics_update` to every client.
    Origin,
    /// Upgrades, then closes with 4001.
    Unauthorized,
    /// Like `Origin`, but never selects a subprotocol (as servers that ignore them do).
    Bare,
    /// `V1` plus channels: `subscribe` is answered with `subscribed` and a replay of the
    /// history after `since` (epoch `e1`); a frame with `channel` is given the next offset,
    /// kept, and relayed to every subscriber, payload untouched (as the real server does).
    Relay,
}

struct Conn {
    push: mpsc::UnboundedSender<String>,
    silent: Arc<AtomicBool>,
    channels: Arc<Mutex<HashSet<String>>>,
}

#[derive(Default)]
pub struct Shared {
    conns: Mutex<Vec<Conn>>,
    connections: AtomicUsize,
    ids: AtomicU64,
    last_authorization: Mutex<Option<String>>,
    last_query: Mutex<Option<String>>,
    last_subprotocol: Mutex<Option<String>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// `Relay`: each channel's publications, as delivered (offset = index + 1).
    history: Mutex<HashMap<String, Vec<String>>>,
}

/// A WebSocket server on loopback, started by a test.
pub struct TestServer {
    pub addr: SocketAddr,
    kind: Kind,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    received_tx: mpsc::UnboundedSender<String>,
}

impl TestServer {
    /// Starts a server on a free port; frames received from clients arrive on the receiver.
    pub async fn start(kind: Kind) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let server = Self::start_at("127.0.0.1:0".parse().unwrap(), kind, tx).await;
        (server, rx)
    }

    async fn start_at(
        addr: SocketAddr,
        kind: Kind,
        received_tx: mpsc::UnboundedSender<String>,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let task = {
            let shared = Arc::clone(&shared);
            let received_tx = received_tx.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let conn_shared = Arc::clone(&shared);
                    let received = received_tx.clone();
                    let task = tokio::spawn(async move {
                        serve(stream, kind, conn_shared, received).await;
                    });
                    shared.tasks.lock().unwrap().push(task);
                }
            })
        };
        Self {
            addr,
            kind,
            shared,
            task,
            received_tx,
        }
    }

    /// `ws://127.0.0.1:PORT/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Sends `frame` to every connected client.
    pub fn push(&self, frame: &str) {
        for conn in self.shared.conns.lock().unwrap().iter() {
            let _ = conn.push.send(frame.to_owned());
        }
    }

    /// `Relay`: publishes `frame` (an envelope with `channel`) as if a client had, given the
    /// next offset of its channel: kept in history and delivered to the subscribers.
    pub fn publish(&self, frame: &str) {
        let value: serde_json::Value = serde_json::from_str(frame).unwrap();
        relay(&self.shared, value);
    }

    /// Makes the current connections stop answering (and stop sending) without closing.
    pub fn silence_current(&self) {
        for conn in self.shared.conns.lock().unwrap().iter() {
            conn.silent.store(true, Ordering::SeqCst);
        }
    }

    /// Connections accepted so far (upgraded).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The `Authorization` header of the last handshake.
    pub fn last_authorization(&self) -> Option<String> {
        self.shared.last_authorization.lock().unwrap().clone()
    }

    /// The subprotocols offered in the last handshake.
    pub fn last_subprotocol(&self) -> Option<String> {
        self.shared.last_subprotocol.lock().unwrap().clone()
    }

    /// The query string of the last handshake.
    pub fn last_query(&self) -> Option<String> {
        self.shared.last_query.lock().unwrap().clone()
    }

    /// Kills the server: the listener and every connection go away at once (no close frame).
    pub fn kill(&self) {
        self.task.abort();
        for task in self.shared.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        self.shared.conns.lock().unwrap().clear();
    }

    /// Starts a new server of the same kind on the same port, reporting to the same receiver.
    pub async fn restart(&self) -> Self {
        // The port was just released: retry briefly if the OS has not let go yet.
        let mut tries = 0;
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(probe) => {
                    drop(probe);
                    break;
                }
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("cannot rebind {}: {err}", self.addr),
            }
        }
        Self::start_at(self.addr, self.kind, self.received_tx.clone()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn next_id(shared: &Shared) -> String {
    format!("srv-{}", shared.ids.fetch_add(1, Ordering::SeqCst))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Serves one WebSocket connection over any stream (plain TCP or TLS).
pub async fn serve<S>(
    stream: S,
    kind: Kind,
    shared: Arc<Shared>,
    received: mpsc::UnboundedSender<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let shared_hdr = Arc::clone(&shared);
    let callback = move |request: &Request, mut response: Response| {
        *shared_hdr.last_authorization.lock().unwrap() = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        *shared_hdr.last_query.lock().unwrap() = request.uri().query().map(str::to_owned);
        *shared_hdr.last_subprotocol.lock().unwrap() = request
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let offered = request
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim() == "cerebrum.v1.json"));
        if offered && kind != Kind::Origin && kind != Kind::Bare {
            // V1, Relay and Unauthorized select it.
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static("cerebrum.v1.json"),
            );
        }
        if offered && kind == Kind::Bare {
            // Refuses nothing, selects nothing: a client insisting on its subprotocol fails.
        } else if offered && kind == Kind::Origin {
            // Like the `ws` library without `handleProtocols`: the first offered one.
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static("cerebrum.v1.json"),
            );
        }
        Ok(response)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    shared.connections.fetch_add(1, Ordering::SeqCst);
    let (mut sink, mut stream) = ws.split();
    if kind == Kind::Unauthorized {
        let frame = CloseFrame {
            code: CloseCode::from(4001),
            reason: "unauthorized".into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
        while let Some(Ok(_)) = stream.next().await {}
        return;
    }
    let (push_tx, mut push_rx) = mpsc::unbounded_channel::<String>();
    let silent = Arc::new(AtomicBool::new(false));
    let channels = Arc::new(Mutex::new(HashSet::new()));
    shared.conns.lock().unwrap().push(Conn {
        push: push_tx,
        silent: Arc::clone(&silent),
        channels: Arc::clone(&channels),
    });
    if kind == Kind::V1 || kind == Kind::Relay {
        let welcome = format!(
            r#"{{"type":"welcome","payload":{{"connectionId":"c-{}","protocol":1,"heartbeatIntervalMs":30000,"features":["ack","channels","presence","resume"],"serverTime":{}}},"timestamp":{},"messageId":"{}"}}"#,
            shared.connections.load(Ordering::SeqCst),
            now_ms(),
            now_ms(),
            next_id(&shared)
        );
        let _ = sink.send(Message::text(welcome)).await;
    }
    loop {
        tokio::select! {
            inbound = stream.next() => {
                let Some(Ok(message)) = inbound else { break };
                if let Message::Close(frame) = &message {
                    let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                    let _ = received.send(format!("close:{code}"));
                    continue;
                }
                let Message::Text(text) = message else { continue };
                if silent.load(Ordering::SeqCst) {
                    continue;
                }
                let text = text.as_str().to_owned();
                let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if kind == Kind::Relay {
                    // Relayed before it is reported: a test that saw it can count on its offset.
                    for frame in relay_frame(&shared, &channels, value.clone()) {
                        let _ = sink.send(Message::text(frame)).await;
                    }
                }
                let _ = received.send(text.clone());
                if value["type"] == "ping" {
                    let pong = serde_json::json!({
                        "type": "pong",
                        "payload": value["payload"],
                        "timestamp": now_ms(),
                        "messageId": next_id(&shared),
                    });
                    let _ = sink.send(Message::text(pong.to_string())).await;
                }
                match kind {
                    Kind::V1 | Kind::Relay => {
                        if value["ack"] == true {
                            let ack = serde_json::json!({
                                "type": "ack",
                                "payload": {"messageId": value["messageId"]},
                                "timestamp": now_ms(),
                                "messageId": next_id(&shared),
                            });
                            let _ = sink.send(Message::text(ack.to_string())).await;
                        }
                    }
                    Kind::Origin | Kind::Bare => {
                        // Broadcast to all clients, as the origin's example does.
                        let update = serde_json::json!({
                            "type": "study_metrics_update",
                            "payload": {"userId": "user-123", "studyHours": 12.5, "progress": 62.5,
                                        "currentTopic": "Genetics", "sessionDuration": 1800, "streak": 4},
                            "timestamp": now_ms(),
                            "messageId": next_id(&shared),
                        });
                        for conn in shared.conns.lock().unwrap().iter() {
                            let _ = conn.push.send(update.to_string());
                        }
                    }
                    Kind::Unauthorized => {}
                }
            }
            outbound = push_rx.recv() => {
                let Some(frame) = outbound else { break };
                if silent.load(Ordering::SeqCst) {
                    continue;
                }
                if sink.send(Message::text(frame)).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// `Relay`: what one client frame does; returns the frames to send back on its connection
/// (`subscribed` and the replay), in order.
fn relay_frame(
    shared: &Shared,
    channels: &Mutex<HashSet<String>>,
    value: serde_json::Value,
) -> Vec<String> {
    if value["channel"].is_string() {
        relay(shared, value);
        return Vec::new();
    }
    if value["type"] != "subscribe" {
        return Vec::new();
    }
    let Some(channel) = value["payload"]["channel"].as_str() else {
        return Vec::new();
    };
    // Under the history lock: no publication slips between the replay and the live ones.
    let history = shared.history.lock().unwrap();
    channels.lock().unwrap().insert(channel.to_owned());
    let kept = history.get(channel).cloned().unwrap_or_default();
    let since = &value["payload"]["since"];
    let recovered = since["epoch"] == "e1";
    let from = if recovered {
        usize::try_from(since["offset"].as_u64().unwrap_or(0)).unwrap()
    } else {
        kept.len()
    };
    let missed = kept.get(from..).unwrap_or_default().to_vec();
    let subscribed = serde_json::json!({
        "type": "subscribed",
        "payload": {"channel": channel, "offset": kept.len(), "epoch": "e1",
                    "recovered": recovered, "missed": missed.len()},
        "timestamp": now_ms(),
        "messageId": next_id(shared),
    });
    let mut frames = vec![subscribed.to_string()];
    frames.extend(missed);
    frames
}

/// `Relay`: gives a publication its offset, keeps it, and delivers it to every subscriber.
fn relay(shared: &Shared, mut value: serde_json::Value) {
    let channel = value["channel"].as_str().unwrap().to_owned();
    let mut history = shared.history.lock().unwrap();
    let kept = history.entry(channel.clone()).or_default();
    let object = value.as_object_mut().unwrap();
    object.remove("ack");
    object.insert("offset".into(), (kept.len() + 1).into());
    let frame = value.to_string();
    kept.push(frame.clone());
    for conn in shared.conns.lock().unwrap().iter() {
        if conn.channels.lock().unwrap().contains(&channel) {
            let _ = conn.push.send(frame.clone());
        }
    }
}

/// A TCP listener that accepts connections and never answers the upgrade.
pub async fn black_hole() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// Waits until the status watch shows `want`.
pub async fn wait_status(status: &mut watch::Receiver<Status>, want: Status) {
    let reached = tokio::time::timeout(SOON, status.wait_for(|s| *s == want))
        .await
        .map(|r| r.is_ok());
    assert!(
        matches!(reached, Ok(true)),
        "status never became {want}, is {}",
        *status.borrow()
    );
}

/// The next received frame whose type is `kind`.
pub async fn next_of(
    received: &mut mpsc::UnboundedReceiver<String>,
    kind: &str,
) -> serde_json::Value {
    tokio::time::timeout(SOON, async {
        loop {
            let frame = received.recv().await.expect("server gone");
            let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
            if value["type"] == kind {
                return value;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{kind}` frame received"))
}
