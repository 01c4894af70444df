//! Helpers shared by the integration tests: a server on a free port with its own data dir, and
//! raw tokio-tungstenite clients.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cerebrum_server::{RunningServer, Server, ServerConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An HS256 secret of the 32 bytes the server requires at least.
pub const SECRET: &str = "test-secret-of-at-least-32-bytes!";

/// Generous bound so that a broken test fails instead of hanging; never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub http: String,
}

pub fn config(dir: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.to_path_buf();
    config
}

pub async fn start_with(edit: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    edit(&mut config);
    let server = Server::bind(config).await.unwrap();
    TestServer {
        url: server.ws_url(),
        http: server.http_url(),
        server: Some(server),
        dir,
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

impl TestServer {
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }
}

pub async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws
}

/// Connects with extra request headers (a subprotocol or extension offer) and gives the
/// response's headers too. Compressed messages are let through to the test (they come only
/// when the test offered permessage-deflate and the server took it).
pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> (Ws, HeaderMap) {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let config = WebSocketConfig::default().compressed_messages(true);
    let (ws, response) = tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .unwrap();
    (ws, response.headers().clone())
}

/// A response header's value, if any.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// A data frame as it arrived: its JSON text (a binary frame's MessagePack transcoded, a
/// compressed frame's bytes inflated first), and how it came.
pub struct Arrived {
    pub json: String,
    pub binary: bool,
    pub compressed: bool,
}

impl Arrived {
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap()
    }
}

/// The next data frame, skipping pings and pongs.
pub async fn next_data(ws: &mut Ws) -> Arrived {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a valid frame");
        let (bytes, binary, compressed) = match message {
            Message::Text(text) => (text.as_bytes().to_vec(), false, false),
            Message::Binary(bytes) => (bytes.to_vec(), true, false),
            Message::Frame(frame) if frame.header().rsv1 => {
                let binary = frame.header().opcode == OpCode::Data(Data::Binary);
                let bytes = cerebrum_deflate::Inflater::new(false)
                    .inflate(frame.payload(), 1 << 20)
                    .unwrap();
                (bytes, binary, true)
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        };
        let json = if binary {
            cerebrum_protocol::msgpack_to_json(&bytes).unwrap()
        } else {
            String::from_utf8(bytes).unwrap()
        };
        return Arrived {
            json,
            binary,
            compressed,
        };
    }
}

/// Connects and reads `welcome` and `system_status`.
pub async fn connect_ready(url: &str) -> (Ws, Value) {
    let mut ws = connect(url).await;
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let status = recv(&mut ws).await;
    assert_eq!(status["type"], "system_status", "{status}");
    (ws, welcome)
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

pub async fn send_json(ws: &mut Ws, value: &Value) {
    send(ws, &value.to_string()).await;
}

/// The next text frame as JSON.
pub async fn recv(ws: &mut Ws) -> Value {
    let text = recv_text(ws).await;
    serde_json::from_str(&text).unwrap()
}

pub async fn recv_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The next frame of `kind`, skipping others.
pub async fn recv_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = recv(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Reads until the close frame; returns its code.
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let next = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a close in time");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) => return u16::from(CloseCode::Status),
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("error before the close frame: {err}"),
            None => panic!("closed without a close frame"),
        }
    }
}

/// A minimal HTTP/1.1 client: `(status, body)`.
pub async fn http(
    base: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    request.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, dechunk(&body))
}

/// Undoes chunked transfer encoding when present.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_owned();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

pub fn token(secret: &str, user: &str, channels: Option<Vec<String>>) -> String {
    cerebrum_server::auth::mint_hs256(secret.as_bytes(), user, Some(user), 3600, channels).unwrap()
}
