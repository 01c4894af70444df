//! The one scripted WebSocket server that client tests connect to (feature `websocket`).
//!
//! A [`FakeServer`] listens on a free loopback port, speaks the wire protocol of
//! `cerebrum-protocol` (every frame it writes is built from the protocol's payload types and
//! stamped like a real server's), and reports what the clients sent on a [`Received`] stream.
//! A [`Kind`] picks the server being imitated (our v1 server, the origin document's level-0
//! example, one that ignores subprotocols, one that refuses every token); the builder adds
//! scripted behaviour (`echo`, `silent`, `tls`); the handle injects the rest at run time
//! (`push`, `publish`, `silence_current`, `kill`, `restart`).
//!
//! It is not built on the server: it was written while the server's core was being rewritten;
//! `Kind::V1` driving the sans-IO `cerebrum-server-core` instead is still open (issue 17 item 5).
//! Nor is it built on `cerebrum_mock::MockPeer`, although that peer answers pings and acks the
//! same way: the peer is the product's mock mode, a seeded simulation of **one** connection in
//! virtual time (connect delay, drawn latency, a generated data stream starting with
//! `system_status`, time-scripted faults). Tests need what it deliberately does not do: several
//! connections sharing channel history (publications relayed between clients, resume with
//! `missed` replays), exact frame sequences without generated data, level-0 and
//! subprotocol-ignoring servers, and the handshake's headers. Bending mock mode to that would change the product
//! for the tests' sake; what the two share is the protocol crate's types, not code.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cerebrum_protocol::{
    Ack, ClientMessage, Envelope, ErrorCode, ErrorPayload, MessageIdGenerator, PROTOCOL_VERSION,
    Payload, StudyMetrics, Subscribe, Subscribed, Unsubscribed, Welcome, decode, encode, features,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::TestkitError;

/// Generous bound for anything that should happen "soon" on loopback. A test that waits this
/// long has failed; nothing is asserted about how fast it happens.
pub const SOON: Duration = Duration::from_secs(10);

/// The subprotocol of the v1 wire format.
const SUBPROTOCOL: &str = "cerebrum.v1.json";
/// The epoch of every channel of a fake server.
const EPOCH: &str = "e1";

/// The server a [`FakeServer`] imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Our v1 server: `welcome` (features `ack`, `channels`, `presence`, `resume`), `pong`
    /// echoing the ping's payload, `ack` for `ack: true`; `subscribe` answered with
    /// `subscribed` and a replay of the history after `since` (epoch `e1`), `unsubscribe` with
    /// `unsubscribed`; a frame with `channel` is given the next offset of its channel, kept,
    /// and relayed to every subscriber with its payload untouched.
    V1,
    /// The origin document's example server (level 0): no welcome, `pong` echoing the payload
    /// with a fresh `messageId`, and every incoming frame triggers a `study_metrics_update` to
    /// every client.
    Origin,
    /// Like [`Kind::Origin`], but never selects a subprotocol (as servers that ignore them do).
    Bare,
    /// Refuses every connection as `cerebrum serve` refuses a bad token: upgrades, sends
    /// `error{unauthorized}`, closes with 4001.
    Unauthorized,
}

/// What a client sent, as the fake server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// A text frame, as received.
    Frame(String),
    /// A close frame with its code (1005 when it had none).
    Close(u16),
}

/// What the clients of a [`FakeServer`] sent, in order of arrival.
///
/// Every wait is bounded by [`SOON`] and panics with what it waited for: these are assertions.
#[derive(Debug)]
pub struct Received {
    rx: mpsc::UnboundedReceiver<Inbound>,
}

impl Received {
    /// The next thing any client sent.
    ///
    /// # Panics
    /// When nothing arrives within [`SOON`].
    pub async fn next(&mut self) -> Inbound {
        self.next_within(Instant::now() + SOON, "anything").await
    }

    /// The next text frame for which `accept` (given the frame parsed as JSON, `null` when it
    /// is not JSON) is true, as received; the frames before it are skipped.
    ///
    /// # Panics
    /// When no such frame arrives within [`SOON`]; `what` names it in the message.
    pub async fn next_frame_where(
        &mut self,
        what: &str,
        mut accept: impl FnMut(&Value) -> bool,
    ) -> String {
        let deadline = Instant::now() + SOON;
        loop {
            if let Inbound::Frame(text) = self.next_within(deadline, what).await
                && accept(&parse(&text))
            {
                return text;
            }
        }
    }

    /// The next frame whose `type` is `kind`, parsed; the frames before it are skipped.
    ///
    /// # Panics
    /// When no such frame arrives within [`SOON`].
    pub async fn next_of(&mut self, kind: &str) -> Value {
        let text = self
            .next_frame_where(&format!("`{kind}` frame"), |frame| frame["type"] == kind)
            .await;
        parse(&text)
    }

    /// The code of the next close frame; the frames before it are skipped.
    ///
    /// # Panics
    /// When no close frame arrives within [`SOON`].
    pub async fn next_close(&mut self) -> u16 {
        let deadline = Instant::now() + SOON;
        loop {
            if let Inbound::Close(code) = self.next_within(deadline, "a close frame").await {
                return code;
            }
        }
    }

    /// Every text frame received so far and not yet taken, without waiting.
    pub fn drain_frames(&mut self) -> Vec<String> {
        let mut frames = Vec::new();
        while let Ok(inbound) = self.rx.try_recv() {
            if let Inbound::Frame(text) = inbound {
                frames.push(text);
            }
        }
        frames
    }

    async fn next_within(&mut self, deadline: Instant, what: &str) -> Inbound {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(inbound)) => inbound,
            // The server keeps a sender for `restart`; this is only reached once it is dropped.
            Ok(None) => panic!("the fake server is gone while waiting for {what}"),
            Err(_) => panic!("{what} did not reach the fake server within {SOON:?}"),
        }
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Starts a [`FakeServer`] with scripted behaviour: `FakeServer::builder(kind)`.
#[must_use = "a builder does nothing until `start`"]
#[derive(Clone)]
pub struct FakeServerBuilder {
    script: Script,
}

impl FakeServerBuilder {
    /// Answers every app frame (anything but `ping`, `auth`, `subscribe`, `unsubscribe` and
    /// `ack`) with `{"type":"echo","payload":<its payload>}`, after its `ack`.
    pub fn echo(mut self) -> Self {
        self.script.echo = true;
        self
    }

    /// Every connection goes silent right after its `welcome`: nothing more is sent, and what
    /// the client sends is neither answered nor reported (close frames still are).
    pub fn silent(mut self) -> Self {
        self.script.silent = true;
        self
    }

    /// Serves `wss://` with `config` (the URL then names `localhost`, for the certificate).
    pub fn tls(mut self, config: Arc<ServerConfig>) -> Self {
        self.script.tls = Some(TlsAcceptor::from(config));
        self
    }

    /// Binds a free port on 127.0.0.1 and serves.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(self) -> std::io::Result<(FakeServer, Received)> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let server = FakeServer::serve_on(listener, self.script, tx)?;
        Ok((server, Received { rx }))
    }
}

#[derive(Clone)]
struct Script {
    kind: Kind,
    echo: bool,
    silent: bool,
    tls: Option<TlsAcceptor>,
}

/// A scripted WebSocket server on loopback, started by a test; killed when dropped.
///
/// ```
/// use cerebrum_testkit::fake_server::{FakeServer, Kind};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (server, _received) = FakeServer::start(Kind::V1).await?;
/// assert!(server.url().starts_with("ws://127.0.0.1:"));
/// assert_eq!(server.connections(), 0);
/// # Ok(())
/// # }
/// ```
pub struct FakeServer {
    addr: SocketAddr,
    script: Script,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    inbound: mpsc::UnboundedSender<Inbound>,
}

impl FakeServer {
    /// A builder for a server imitating `kind`.
    pub fn builder(kind: Kind) -> FakeServerBuilder {
        FakeServerBuilder {
            script: Script {
                kind,
                echo: false,
                silent: false,
                tls: None,
            },
        }
    }

    /// Starts a server imitating `kind` on a free port; what clients send arrives on the
    /// [`Received`].
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(kind: Kind) -> std::io::Result<(Self, Received)> {
        Self::builder(kind).start().await
    }

    fn serve_on(
        listener: TcpListener,
        script: Script,
        inbound: mpsc::UnboundedSender<Inbound>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accept = {
            let shared = Arc::clone(&shared);
            let script = script.clone();
            let inbound = inbound.clone();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let task = tokio::spawn(accept_one(
                        tcp,
                        script.clone(),
                        Arc::clone(&shared),
                        inbound.clone(),
                    ));
                    lock(&shared.tasks).push(task);
                }
            })
        };
        Ok(Self {
            addr,
            script,
            shared,
            accept,
            inbound,
        })
    }

    /// The listening address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT/ws`, or `wss://localhost:PORT/ws` with TLS.
    #[must_use]
    pub fn url(&self) -> String {
        match self.script.tls {
            Some(_) => format!("wss://localhost:{}/ws", self.addr.port()),
            None => format!("ws://{}/ws", self.addr),
        }
    }

    /// Sends `frame` as it is to every connected client.
    pub fn push(&self, frame: &str) {
        for conn in lock(&self.shared.conns).iter() {
            let _ = conn.push.send(frame.to_owned());
        }
    }

    /// Publishes `frame` (an envelope with `channel`) as if a client had: it is given the next
    /// offset of its channel, kept in history and delivered to the subscribers. Returns the
    /// offset.
    ///
    /// # Errors
    /// When `frame` is not an envelope with a `channel`.
    pub fn publish(&self, frame: &str) -> Result<u64, TestkitError> {
        let envelope = decode(frame).map_err(|err| TestkitError::Invalid(err.to_string()))?;
        relay(&self.shared, envelope)
            .ok_or_else(|| TestkitError::Invalid("a publication needs a `channel`".to_owned()))
    }

    /// Makes the current connections stop answering (and stop sending) without closing.
    pub fn silence_current(&self) {
        for conn in lock(&self.shared.conns).iter() {
            conn.silent.store(true, Ordering::SeqCst);
        }
    }

    /// Connections upgraded so far.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The `Authorization` header of the last handshake.
    #[must_use]
    pub fn last_authorization(&self) -> Option<String> {
        lock(&self.shared.handshake).authorization.clone()
    }

    /// The `Sec-WebSocket-Protocol` header (the offered subprotocols) of the last handshake.
    #[must_use]
    pub fn last_subprotocol(&self) -> Option<String> {
        lock(&self.shared.handshake).subprotocol.clone()
    }

    /// The query string of the last handshake.
    #[must_use]
    pub fn last_query(&self) -> Option<String> {
        lock(&self.shared.handshake).query.clone()
    }

    /// Kills the server: the listener and every connection go away at once (no close frame).
    pub fn kill(&self) {
        self.accept.abort();
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
        lock(&self.shared.conns).clear();
    }

    /// Starts a new server with the same script on the same port, reporting to the same
    /// [`Received`] (history and counters start empty, as after a real restart).
    ///
    /// # Errors
    /// When the port cannot be bound again within [`SOON`].
    pub async fn restart(&self) -> std::io::Result<Self> {
        let deadline = Instant::now() + SOON;
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    return Self::serve_on(listener, self.script.clone(), self.inbound.clone());
                }
                // The killed listener is dropped when its task is next polled: poll the port
                // until it is free (a retry interval, not a synchronisation).
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP listener on loopback that accepts connections and never answers the upgrade.
#[derive(Debug)]
pub struct BlackHole {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl BlackHole {
    /// Binds a free port on 127.0.0.1.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut held: Vec<TcpStream> = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Ok(Self { addr, task })
    }

    /// `ws://127.0.0.1:PORT/ws`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Conn {
    push: mpsc::UnboundedSender<String>,
    silent: Arc<AtomicBool>,
    channels: Arc<Mutex<HashSet<String>>>,
}

#[derive(Default)]
struct Handshake {
    authorization: Option<String>,
    query: Option<String>,
    subprotocol: Option<String>,
}

#[derive(Default)]
struct Shared {
    conns: Mutex<Vec<Conn>>,
    connections: AtomicUsize,
    ids: MessageIdGenerator,
    handshake: Mutex<Handshake>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Each channel's publications, as delivered (offset = index + 1). Lock order: history,
    /// then conns, then a connection's channels.
    history: Mutex<HashMap<String, Vec<String>>>,
}

impl Shared {
    /// `payload` as a stamped frame, as a server writes it.
    fn frame<P: Payload>(&self, payload: &P) -> Option<String> {
        Envelope::from_payload(payload).ok().map(|e| self.stamp(e))
    }

    fn stamp(&self, envelope: Envelope) -> String {
        encode(&envelope.stamped(&self.ids, now_ms()))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn accept_one(
    tcp: TcpStream,
    script: Script,
    shared: Arc<Shared>,
    inbound: mpsc::UnboundedSender<Inbound>,
) {
    match &script.tls {
        Some(acceptor) => {
            if let Ok(tls) = acceptor.clone().accept(tcp).await {
                serve(tls, &script, &shared, &inbound).await;
            }
        }
        None => serve(tcp, &script, &shared, &inbound).await,
    }
}

/// Serves one WebSocket connection over any stream (plain TCP or TLS).
async fn serve<S>(
    stream: S,
    script: &Script,
    shared: &Arc<Shared>,
    inbound: &mpsc::UnboundedSender<Inbound>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let kind = script.kind;
    let recorder = Arc::clone(shared);
    // The error type is tungstenite's (an HTTP response), fixed by `accept_hdr_async`.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, mut response: Response| {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let offered = header("sec-websocket-protocol");
        let selects = offered
            .as_deref()
            .is_some_and(|v| v.split(',').any(|p| p.trim() == SUBPROTOCOL))
            && kind != Kind::Bare;
        if selects {
            // Bare refuses nothing and selects nothing: a client insisting on its subprotocol
            // fails. The others select it (the origin like the `ws` library without
            // `handleProtocols`: the first offered one).
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
        }
        *lock(&recorder.handshake) = Handshake {
            authorization: header("authorization"),
            query: request.uri().query().map(str::to_owned),
            subprotocol: offered,
        };
        Ok(response)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let number = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let (mut sink, mut stream) = ws.split();
    if kind == Kind::Unauthorized {
        let error = ErrorPayload {
            code: ErrorCode::Unauthorized,
            message: "the token is not valid".to_owned(),
            ref_id: None,
        };
        if let Some(frame) = shared.frame(&error) {
            let _ = sink.send(Message::text(frame)).await;
        }
        let close = CloseFrame {
            code: CloseCode::from(4001),
            reason: "unauthorized".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
        while let Some(Ok(_)) = stream.next().await {}
        return;
    }
    let (push_tx, mut push_rx) = mpsc::unbounded_channel::<String>();
    let silent = Arc::new(AtomicBool::new(false));
    let channels = Arc::new(Mutex::new(HashSet::new()));
    {
        let mut conns = lock(&shared.conns);
        conns.retain(|conn| !conn.push.is_closed());
        conns.push(Conn {
            push: push_tx,
            silent: Arc::clone(&silent),
            channels: Arc::clone(&channels),
        });
    }
    if kind == Kind::V1 {
        let welcome = Welcome {
            connection_id: format!("c-{number}"),
            user_id: None,
            protocol: PROTOCOL_VERSION,
            heartbeat_interval_ms: 30_000,
            features: features::ALL.iter().map(|f| (*f).to_owned()).collect(),
            server_time: now_ms(),
        };
        if let Some(frame) = shared.frame(&welcome) {
            let _ = sink.send(Message::text(frame)).await;
        }
    }
    if script.silent {
        silent.store(true, Ordering::SeqCst);
    }
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(Ok(message)) = message else { break };
                let text = match message {
                    Message::Close(frame) => {
                        let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                        let _ = inbound.send(Inbound::Close(code));
                        continue;
                    }
                    Message::Text(text) => text.as_str().to_owned(),
                    _ => continue,
                };
                if silent.load(Ordering::SeqCst) {
                    continue;
                }
                // Answered (and a publication relayed) before it is reported: a test that saw
                // it can count on its offset.
                let replies = answer(script, shared, &channels, &text);
                let _ = inbound.send(Inbound::Frame(text));
                for reply in replies {
                    let _ = sink.send(Message::text(reply)).await;
                }
            }
            pushed = push_rx.recv() => {
                let Some(frame) = pushed else { break };
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

/// What one client frame does: its side effects on the other connections, and the frames to
/// send back on its own, in order.
fn answer(
    script: &Script,
    shared: &Shared,
    channels: &Mutex<HashSet<String>>,
    text: &str,
) -> Vec<String> {
    let Ok(envelope) = decode(text) else {
        return Vec::new();
    };
    let message = ClientMessage::from_envelope(&envelope).ok();
    let mut replies = Vec::new();
    match script.kind {
        Kind::V1 => match &message {
            _ if envelope.channel().is_some() => {
                relay(shared, envelope.clone());
            }
            Some(ClientMessage::Subscribe(subscribe)) => {
                replies.extend(subscribed(shared, channels, subscribe));
            }
            Some(ClientMessage::Unsubscribe(unsubscribe)) => {
                lock(channels).remove(&unsubscribe.channel);
                let reply = Unsubscribed {
                    channel: unsubscribe.channel.clone(),
                };
                replies.extend(shared.frame(&reply));
            }
            _ => {}
        },
        Kind::Origin | Kind::Bare => {
            // Broadcast to all clients, as the origin's example does.
            let update = StudyMetrics {
                user_id: "user-123".to_owned(),
                study_hours: 12.5,
                progress: 62.5,
                current_topic: Some("Genetics".to_owned()),
                session_duration: 1800.0,
                streak: 4,
            };
            if let Some(frame) = shared.frame(&update) {
                for conn in lock(&shared.conns).iter() {
                    let _ = conn.push.send(frame.clone());
                }
            }
        }
        Kind::Unauthorized => {}
    }
    if let Some(ClientMessage::Ping(_)) = message
        && let Ok(pong) = Envelope::new("pong", envelope.payload().to_owned())
    {
        replies.push(shared.stamp(pong));
    }
    if script.kind == Kind::V1
        && envelope.ack()
        && let Some(id) = envelope.message_id()
    {
        let ack = Ack {
            message_id: id.clone(),
        };
        replies.extend(shared.frame(&ack));
    }
    let is_app = !matches!(
        message,
        None | Some(
            ClientMessage::Ping(_)
                | ClientMessage::Auth(_)
                | ClientMessage::Subscribe(_)
                | ClientMessage::Unsubscribe(_)
                | ClientMessage::Ack(_)
        )
    );
    if script.echo
        && is_app
        && let Ok(echo) = Envelope::new("echo", envelope.payload().to_owned())
    {
        replies.push(shared.stamp(echo));
    }
    replies
}

/// `subscribed` and the replay of the history after `since`, for a connection joining.
fn subscribed(
    shared: &Shared,
    channels: &Mutex<HashSet<String>>,
    subscribe: &Subscribe,
) -> Vec<String> {
    // Under the history lock: no publication slips between the replay and the live ones.
    let history = lock(&shared.history);
    lock(channels).insert(subscribe.channel.clone());
    let kept = history
        .get(&subscribe.channel)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let resumed = subscribe
        .since
        .as_ref()
        .filter(|since| since.epoch == EPOCH);
    let from = resumed.map_or(kept.len(), |since| {
        usize::try_from(since.offset).map_or(kept.len(), |offset| offset.min(kept.len()))
    });
    let missed = &kept[from..];
    let reply = Subscribed {
        channel: subscribe.channel.clone(),
        offset: kept.len() as u64,
        epoch: EPOCH.to_owned(),
        recovered: resumed.is_some(),
        missed: missed.len() as u64,
    };
    shared
        .frame(&reply)
        .into_iter()
        .chain(missed.iter().cloned())
        .collect()
}

/// Gives a publication its offset (`ack` dropped, the rest untouched), keeps it, and delivers
/// it to every subscriber; the offset, or `None` without a channel.
fn relay(shared: &Shared, envelope: Envelope) -> Option<u64> {
    let channel = envelope.channel()?.to_owned();
    let mut history = lock(&shared.history);
    let kept = history.entry(channel.clone()).or_default();
    let offset = kept.len() as u64 + 1;
    let frame = encode(&envelope.with_ack(false).with_offset(offset));
    kept.push(frame.clone());
    for conn in lock(&shared.conns).iter() {
        if lock(&conn.channels).contains(&channel) {
            let _ = conn.push.send(frame.clone());
        }
    }
    Some(offset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    async fn client(url: &str) -> tokio_tungstenite::WebSocketStream<TcpStream> {
        let addr = url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .to_owned();
        let tcp = TcpStream::connect(addr).await.unwrap();
        tokio_tungstenite::client_async(url, tcp).await.unwrap().0
    }

    async fn next_text(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> Value {
        loop {
            let message = tokio::time::timeout(SOON, ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("no error");
            if let Message::Text(text) = message {
                return parse(text.as_str());
            }
        }
    }

    #[tokio::test]
    async fn v1_welcomes_answers_pings_and_acks_and_reports_in_order() {
        let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
        let mut ws = client(&server.url()).await;
        let welcome = next_text(&mut ws).await;
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(welcome["payload"]["connectionId"], "c-1");
        ws.send(Message::text(r#"{"type":"ping","payload":{ "n" : 1 }}"#))
            .await
            .unwrap();
        let pong = next_text(&mut ws).await;
        assert_eq!(pong["type"], "pong");
        assert_eq!(pong["payload"]["n"], 1);
        assert!(pong["messageId"].is_string());
        ws.send(Message::text(
            r#"{"type":"quiz.answer","payload":2,"messageId":"m1","ack":true}"#,
        ))
        .await
        .unwrap();
        assert_eq!(next_text(&mut ws).await["payload"]["messageId"], "m1");
        assert_eq!(received.next_of("ping").await["payload"]["n"], 1);
        assert_eq!(received.next_of("quiz.answer").await["messageId"], "m1");
        ws.close(None).await.unwrap();
        assert_eq!(received.next_close().await, 1005);
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn publications_get_offsets_and_a_resume_replays_what_was_missed() {
        let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
        let mut ws = client(&server.url()).await;
        next_text(&mut ws).await;
        for n in 1..=3 {
            let frame = format!(r#"{{"type":"chat","payload":{n},"channel":"chat:1"}}"#);
            assert_eq!(server.publish(&frame).unwrap(), n);
        }
        ws.send(Message::text(
            r#"{"type":"subscribe","payload":{"channel":"chat:1","since":{"offset":1,"epoch":"e1"}}}"#,
        ))
        .await
        .unwrap();
        let subscribed = next_text(&mut ws).await;
        assert_eq!(subscribed["type"], "subscribed");
        assert_eq!(subscribed["payload"]["offset"], 3);
        assert_eq!(subscribed["payload"]["recovered"], true);
        assert_eq!(subscribed["payload"]["missed"], 2);
        assert_eq!(next_text(&mut ws).await["offset"], 2);
        assert_eq!(next_text(&mut ws).await["offset"], 3);
        // A client's own publication comes back to it, ack dropped, with the next offset.
        ws.send(Message::text(
            r#"{"type":"chat","payload":4,"channel":"chat:1","messageId":"p4","ack":true}"#,
        ))
        .await
        .unwrap();
        received.next_of("chat").await;
        let mut seen = [next_text(&mut ws).await, next_text(&mut ws).await];
        seen.sort_by_key(|frame| frame["type"] == "ack");
        assert_eq!(seen[0]["offset"], 4);
        assert!(seen[0].get("ack").is_none());
        assert_eq!(seen[1]["payload"]["messageId"], "p4");
        assert!(server.publish(r#"{"type":"chat","payload":1}"#).is_err());
    }

    #[tokio::test]
    async fn unauthorized_refuses_with_an_error_then_4001() {
        let (server, _received) = FakeServer::start(Kind::Unauthorized).await.unwrap();
        let mut ws = client(&server.url()).await;
        let error = next_text(&mut ws).await;
        assert_eq!(error["payload"]["code"], "unauthorized");
        let close = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(close, Some(4001));
    }
}
