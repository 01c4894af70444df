//! The WebSocket transport asked for MessagePack, against small loopback servers that select
//! `cerebrum.v1.msgpack`, `cerebrum.v1.json` or nothing: what it offers, what it sends, and
//! what it hands the core (JSON text, or an error for a binary frame it cannot decode).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// tungstenite's handshake callback returns its (large) error response by value.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use cerebrum_core::TransportEvent;
use cerebrum_protocol::{Encoding, ErrorCode, json_to_msgpack, msgpack_to_json};
use cerebrum_tokio::{OpenRequest, Transport, WsOptions, WsTransport};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Generous bound so that a broken test fails instead of hanging; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(20);

/// What the test server saw: the offer of each handshake, then each frame (`b:` + JSON for a
/// binary frame, `t:` + text).
type Seen = mpsc::UnboundedReceiver<String>;

/// A server that selects `select` when it is in the offer (`None`: never selects), answers
/// each frame with `{"type":"echo"}` in the same kind of frame, and sends one binary frame
/// that is not MessagePack after the first echo.
async fn server(select: Option<&'static str>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let seen = tx.clone();
                let callback = move |request: &Request, mut response: Response| {
                    let offer = request
                        .headers()
                        .get("sec-websocket-protocol")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    if let Some(select) = select
                        && offer.split(',').any(|o| o.trim() == select)
                    {
                        response
                            .headers_mut()
                            .insert("sec-websocket-protocol", HeaderValue::from_static(select));
                    }
                    let _ = seen.send(format!("offer:{offer}"));
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let mut first = true;
                while let Some(Ok(message)) = ws.next().await {
                    match message {
                        Message::Binary(bytes) => {
                            let _ = tx.send(format!("b:{}", msgpack_to_json(&bytes).unwrap()));
                            let echo = json_to_msgpack(r#"{"type":"echo"}"#).unwrap();
                            ws.send(Message::binary(echo)).await.unwrap();
                        }
                        Message::Text(text) => {
                            let _ = tx.send(format!("t:{}", text.as_str()));
                            ws.send(Message::text(r#"{"type":"echo"}"#)).await.unwrap();
                        }
                        _ => continue,
                    }
                    if std::mem::take(&mut first) {
                        ws.send(Message::binary(vec![0x81, 0x01, 0x02]))
                            .await
                            .unwrap();
                    }
                }
            });
        }
    });
    (url, rx)
}

async fn next(transport: &mut WsTransport) -> TransportEvent {
    tokio::time::timeout(PATIENCE, transport.next())
        .await
        .expect("an event in time")
}

async fn seen(rx: &mut Seen) -> String {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("the server saw something in time")
        .expect("the server runs")
}

#[tokio::test]
async fn selected_msgpack_sends_and_receives_binary_and_reports_undecodable_frames() {
    let (url, mut rx) = server(Some("cerebrum.v1.msgpack")).await;
    let mut transport =
        WsTransport::new(WsOptions::default().encoding(Encoding::MessagePack)).unwrap();
    transport.open(OpenRequest::new(url));
    assert_eq!(next(&mut transport).await, TransportEvent::Opened);
    assert_eq!(
        seen(&mut rx).await,
        "offer:cerebrum.v1.msgpack, cerebrum.v1.json"
    );
    transport
        .send(r#"{"type":"ping","payload":{"x":1.5}}"#.to_owned())
        .unwrap();
    // The transport writes while it is polled: the server's view and the echo together.
    let (echo, frame) = tokio::join!(next(&mut transport), seen(&mut rx));
    assert_eq!(frame, r#"b:{"type":"ping","payload":{"x":1.5}}"#);
    assert_eq!(echo, TransportEvent::Frame(r#"{"type":"echo"}"#.to_owned()));
    // A binary frame that is not MessagePack: an error for the core, never data, and the
    // connection stays.
    match next(&mut transport).await {
        TransportEvent::Invalid(err) => assert_eq!(err.code(), ErrorCode::InvalidJson),
        other => panic!("unexpected {other:?}"),
    }
    transport.send(r#"{"type":"ping"}"#.to_owned()).unwrap();
    // The transport writes while it is polled: the server's view and the echo together.
    let (echo, frame) = tokio::join!(next(&mut transport), seen(&mut rx));
    assert_eq!(frame, r#"b:{"type":"ping"}"#);
    assert_eq!(echo, TransportEvent::Frame(r#"{"type":"echo"}"#.to_owned()));
}

#[tokio::test]
async fn a_server_that_selects_json_gets_text() {
    let (url, mut rx) = server(Some("cerebrum.v1.json")).await;
    let mut transport =
        WsTransport::new(WsOptions::default().encoding(Encoding::MessagePack)).unwrap();
    transport.open(OpenRequest::new(url));
    assert_eq!(next(&mut transport).await, TransportEvent::Opened);
    assert_eq!(
        seen(&mut rx).await,
        "offer:cerebrum.v1.msgpack, cerebrum.v1.json"
    );
    transport.send(r#"{"type":"ping"}"#.to_owned()).unwrap();
    // The transport writes while it is polled: the server's view and the echo together.
    let (echo, frame) = tokio::join!(next(&mut transport), seen(&mut rx));
    assert_eq!(frame, r#"t:{"type":"ping"}"#);
    assert_eq!(echo, TransportEvent::Frame(r#"{"type":"echo"}"#.to_owned()));
}

#[tokio::test]
async fn a_server_that_selects_nothing_is_asked_again_without_an_offer_and_gets_text() {
    let (url, mut rx) = server(None).await;
    let mut transport =
        WsTransport::new(WsOptions::default().encoding(Encoding::MessagePack)).unwrap();
    transport.open(OpenRequest::new(url.clone()));
    assert_eq!(next(&mut transport).await, TransportEvent::Opened);
    assert_eq!(
        seen(&mut rx).await,
        "offer:cerebrum.v1.msgpack, cerebrum.v1.json"
    );
    assert_eq!(seen(&mut rx).await, "offer:");
    transport.send(r#"{"type":"ping"}"#.to_owned()).unwrap();
    // The transport writes while it is polled: the server's view and the echo together.
    let (echo, frame) = tokio::join!(next(&mut transport), seen(&mut rx));
    assert_eq!(frame, r#"t:{"type":"ping"}"#);
    assert_eq!(echo, TransportEvent::Frame(r#"{"type":"echo"}"#.to_owned()));
}
