//! The WebSocket transport's permessage-deflate against a plain tungstenite server that
//! negotiates it as the test says (issue 15): a server that keeps its window between messages
//! (as Node `ws` does by default), compressed frames both ways, bad answers refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use std::time::Duration;

use cerebrum_core::TransportEvent;
use cerebrum_tokio::{OpenRequest, Transport, WsOptions, WsTransport};
use flate2::{Compress, Compression, FlushCompress};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;

const PATIENCE: Duration = Duration::from_secs(30);

/// Compresses with the window kept from one message to the next (context takeover).
fn compress_keeping_context(compress: &mut Compress, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut consumed = 0;
    loop {
        let before = compress.total_in();
        compress
            .compress_vec(&message[consumed..], &mut out, FlushCompress::Sync)
            .unwrap();
        consumed += usize::try_from(compress.total_in() - before).unwrap();
        if consumed >= message.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    out.truncate(out.len() - 4);
    out
}

/// A one-connection server that answers the client's `Sec-WebSocket-Extensions` offer with
/// `answer`; reports the offer it saw, then runs `script` on the socket.
async fn server<F, Fut>(
    answer: Option<&'static str>,
    script: F,
) -> (String, oneshot::Receiver<Option<String>>)
where
    F: FnOnce(WebSocketStream<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (offer_tx, offer_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let callback = move |request: &Request, mut response: Response| {
            let offer = request
                .headers()
                .get("Sec-WebSocket-Extensions")
                .map(|v| v.to_str().unwrap().to_owned());
            if request.headers().contains_key("Sec-WebSocket-Protocol") {
                response.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_static(cerebrum_tokio::SUBPROTOCOL),
                );
            }
            if let Some(answer) = answer {
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Extensions", HeaderValue::from_static(answer));
            }
            let _ = offer_tx.send(offer);
            Ok(response)
        };
        let config = WebSocketConfig::default().compressed_messages(true);
        let ws =
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await;
        if let Ok(ws) = ws {
            script(ws).await;
        }
    });
    (url, offer_rx)
}

async fn next(transport: &mut WsTransport) -> TransportEvent {
    tokio::time::timeout(PATIENCE, transport.next())
        .await
        .expect("an event in time")
}

#[tokio::test]
async fn frames_are_inflated_from_a_server_that_keeps_its_window_and_large_ones_sent_compressed() {
    let texts: Vec<String> = (0..3)
        .map(|i| {
            format!(
                r#"{{"type":"chat.msg","payload":{{"n":{i},"text":"{}"}}}}"#,
                "same words again ".repeat(20)
            )
        })
        .collect();
    let sent = texts.clone();
    let (seen_tx, seen_rx) = oneshot::channel();
    let (url, offer) = server(Some("permessage-deflate"), move |mut ws| async move {
        let mut compress = Compress::new(Compression::new(6), false);
        let mut sizes = Vec::new();
        for text in &sent {
            let wire = compress_keeping_context(&mut compress, text.as_bytes());
            sizes.push(wire.len());
            ws.send(Message::Frame(Frame::compressed(wire.into(), Data::Text)))
                .await
                .unwrap();
        }
        // With the window kept, the second message is a fraction of the first.
        assert!(sizes[1] * 2 < sizes[0], "{sizes:?}");
        let mut frames = Vec::new();
        while frames.len() < 2 {
            match ws.next().await {
                Some(Ok(Message::Frame(frame))) => {
                    frames.push((true, frame.into_payload().to_vec()));
                }
                Some(Ok(Message::Text(text))) => frames.push((false, text.as_bytes().to_vec())),
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        let _ = seen_tx.send(frames);
    })
    .await;
    let mut transport = WsTransport::new(WsOptions::default().compression(true)).unwrap();
    transport.open(OpenRequest::new(url));
    assert_eq!(next(&mut transport).await, TransportEvent::Opened);
    assert_eq!(
        offer.await.unwrap().as_deref(),
        Some("permessage-deflate; client_max_window_bits")
    );
    for text in &texts {
        assert_eq!(
            next(&mut transport).await,
            TransportEvent::Frame(text.clone())
        );
    }
    let big = format!(
        r#"{{"type":"chat.msg","payload":"{}"}}"#,
        "x y z ".repeat(100)
    );
    transport.send(big.clone()).unwrap();
    transport.send(r#"{"type":"ping"}"#.to_owned()).unwrap();
    // The frames go out as the transport is polled; the server answers nothing more.
    let polling = tokio::spawn(async move {
        let _ = transport.next().await;
        transport
    });
    let frames = tokio::time::timeout(PATIENCE, seen_rx)
        .await
        .unwrap()
        .unwrap();
    polling.abort();
    let (compressed, wire) = &frames[0];
    assert!(*compressed, "a large frame goes compressed");
    assert!(wire.len() < big.len());
    let inflated = cerebrum_deflate::Inflater::new(false)
        .inflate(wire, 1 << 20)
        .unwrap();
    assert_eq!(inflated, big.as_bytes());
    assert_eq!(
        frames[1],
        (false, br#"{"type":"ping"}"#.to_vec()),
        "a small one goes as it is"
    );
}

#[tokio::test]
async fn without_the_option_nothing_is_offered() {
    let (url, offer) = server(None, |_ws| async {}).await;
    let mut transport = WsTransport::new(WsOptions::default()).unwrap();
    transport.open(OpenRequest::new(url));
    assert_eq!(next(&mut transport).await, TransportEvent::Opened);
    assert_eq!(offer.await.unwrap(), None);
}

#[tokio::test]
async fn an_answer_the_offer_does_not_allow_fails_the_connection() {
    for (offered, answer) in [
        (true, "permessage-deflate; client_max_window_bits"),
        (true, "permessage-deflate; mystery"),
        (true, "permessage-deflate, permessage-deflate"),
        (false, "permessage-deflate"),
    ] {
        let (url, _offer) = server(Some(answer), |_ws| async {}).await;
        let mut transport = WsTransport::new(WsOptions::default().compression(offered)).unwrap();
        transport.open(OpenRequest::new(url));
        match next(&mut transport).await {
            TransportEvent::Error(reason) => {
                assert!(reason.contains("Sec-WebSocket-Extensions"), "{reason}");
            }
            other => panic!("{answer}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_compressed_frame_that_does_not_inflate_closes_1007() {
    let (url, _offer) = server(Some("permessage-deflate"), |mut ws| async move {
        ws.send(Message::Frame(Frame::compressed(
            vec![0xff, 0xff, 0xff].into(),
            Data::Text,
        )))
        .await
        .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let mut transport = WsTransport::new(WsOptions::default().compression(true)).unwrap();
    transport.open(OpenRequest::new(url));
    assert_eq!(next(&mut transport).await, TransportEvent::Opened);
    assert!(matches!(
        next(&mut transport).await,
        TransportEvent::Closed {
            code: Some(1007),
            ..
        }
    ));
}
