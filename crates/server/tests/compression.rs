//! permessage-deflate (RFC 7692) against a real server on loopback: negotiation, compressed
//! frames both ways, and what a bad compressed frame does (issue 15).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cerebrum_deflate::Deflater;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// A raw client that offers permessage-deflate (as a browser does); gives the server's
/// `Sec-WebSocket-Extensions` answer too.
async fn connect_offering(url: &str, offer: &str) -> (Ws, Option<String>) {
    let (ws, headers) = connect_with(url, &[("Sec-WebSocket-Extensions", offer)]).await;
    (ws, header(&headers, "Sec-WebSocket-Extensions"))
}

/// The next data frame: its JSON and whether it came compressed.
async fn next_frame(ws: &mut Ws) -> (Value, bool) {
    let arrived = next_data(ws).await;
    (arrived.value(), arrived.compressed)
}

/// The next data frame of `kind`, skipping others.
async fn next_of(ws: &mut Ws, kind: &str) -> (Value, bool) {
    loop {
        let (frame, compressed) = next_frame(ws).await;
        if frame["type"] == kind {
            return (frame, compressed);
        }
    }
}

/// A client publication whose frame is well over the 256-byte threshold.
fn big_publication(id: &str) -> Value {
    json!({
        "type": "chat.msg",
        "channel": "chat:deflate",
        "messageId": id,
        "ack": true,
        "payload": {"text": "the mitochondria is the powerhouse of the cell. ".repeat(12)},
    })
}

const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";

#[tokio::test]
async fn compressed_and_plain_subscribers_get_the_same_publications() {
    let mut server = start_with(|c| c.compression.enabled = true).await;
    let (mut zipped, answer) = connect_offering(&server.url, BROWSER_OFFER).await;
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let (mut plain, _) = connect_ready(&server.url).await;
    // `welcome` and `system_status` are under the threshold: they come uncompressed.
    assert!(!next_frame(&mut zipped).await.1);
    for ws in [&mut zipped, &mut plain] {
        send(
            ws,
            r#"{"type":"subscribe","payload":{"channel":"chat:deflate"}}"#,
        )
        .await;
    }
    assert_eq!(
        next_of(&mut zipped, "subscribed").await.0["payload"]["offset"],
        0
    );
    assert_eq!(
        recv_type(&mut plain, "subscribed").await["payload"]["offset"],
        0
    );

    // An uncompressed publication from the plain client, then a compressed one from the
    // other: both are delivered to both, compressed only to the client that negotiated it.
    send_json(&mut plain, &big_publication("p1")).await;
    let wire = Deflater::new(6, 15)
        .unwrap()
        .compress(big_publication("z1").to_string().as_bytes())
        .unwrap();
    zipped
        .send(Message::Frame(Frame::compressed(wire.into(), Data::Text)))
        .await
        .unwrap();
    let mut seen_zipped = Vec::new();
    while seen_zipped.len() < 2 {
        let (frame, compressed) = next_frame(&mut zipped).await;
        if frame["type"] == "chat.msg" {
            assert!(
                compressed,
                "a publication over the threshold comes compressed"
            );
            seen_zipped.push(frame);
        } else {
            assert_eq!(frame["type"], "ack");
            assert!(!compressed, "an ack is under the threshold");
        }
    }
    // The plain client's own ack comes among its deliveries.
    let mut seen_plain = Vec::new();
    let mut acked = false;
    while seen_plain.len() < 2 || !acked {
        let frame = recv(&mut plain).await;
        match frame["type"].as_str() {
            Some("chat.msg") => seen_plain.push(frame),
            Some("ack") => {
                assert_eq!(frame["payload"]["messageId"], "p1");
                acked = true;
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!(seen_zipped, seen_plain);
    assert_eq!(seen_plain[0]["messageId"], "p1");
    assert_eq!(seen_plain[1]["messageId"], "z1");
    assert_eq!(seen_plain[1]["offset"], 2);
    server.stop().await;
}

#[tokio::test]
async fn a_compressed_message_in_fragments_is_taken_whole() {
    let mut server = start_with(|c| c.compression.enabled = true).await;
    let (mut ws, _) = connect_offering(&server.url, BROWSER_OFFER).await;
    let wire = Deflater::new(6, 15)
        .unwrap()
        .compress(br#"{"type":"ping","payload":{"nonce":42}}"#)
        .unwrap();
    let (first, rest) = wire.split_at(wire.len() / 2);
    // RSV1 on the first frame only (RFC 7692 section 6.1).
    let mut head = Frame::message(first.to_vec(), OpCode::Data(Data::Text), false);
    head.header_mut().rsv1 = true;
    ws.send(Message::Frame(head)).await.unwrap();
    ws.send(Message::Frame(Frame::message(
        rest.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    let (pong, _) = next_of(&mut ws, "pong").await;
    assert_eq!(pong["payload"]["nonce"], 42, "{pong}");
    server.stop().await;
}

#[tokio::test]
async fn a_msgpack_connection_gets_its_binary_frames_compressed() {
    let mut server = start_with(|c| c.compression.enabled = true).await;
    let (mut packed, headers) = connect_with(
        &server.url,
        &[
            ("Sec-WebSocket-Extensions", BROWSER_OFFER),
            ("Sec-WebSocket-Protocol", "cerebrum.v1.msgpack"),
        ],
    )
    .await;
    assert!(header(&headers, "Sec-WebSocket-Extensions").is_some());
    send(
        &mut packed,
        r#"{"type":"subscribe","payload":{"channel":"chat:deflate"}}"#,
    )
    .await;
    send_json(&mut packed, &big_publication("m1")).await;
    let delivered = loop {
        let arrived = next_data(&mut packed).await;
        if arrived.value()["type"] == "chat.msg" {
            assert!(arrived.binary && arrived.compressed, "{}", arrived.json);
            break arrived.value();
        }
    };
    assert_eq!(delivered["messageId"], "m1");
    assert_eq!(delivered["payload"], big_publication("m1")["payload"]);
    server.stop().await;
}

#[tokio::test]
async fn without_the_flag_an_offer_is_answered_uncompressed() {
    let mut server = start().await;
    let (mut ws, answer) = connect_offering(&server.url, BROWSER_OFFER).await;
    assert_eq!(answer, None);
    send(
        &mut ws,
        r#"{"type":"subscribe","payload":{"channel":"chat:deflate"}}"#,
    )
    .await;
    send_json(&mut ws, &big_publication("p1")).await;
    let (frame, compressed) = next_of(&mut ws, "chat.msg").await;
    assert!(!compressed);
    assert_eq!(frame["messageId"], "p1");
    server.stop().await;
}

#[tokio::test]
async fn an_offer_limiting_the_server_window_below_its_own_is_declined() {
    let mut server = start_with(|c| c.compression.enabled = true).await;
    let (_ws, answer) =
        connect_offering(&server.url, "permessage-deflate; server_max_window_bits=10").await;
    assert_eq!(answer, None);
    let (_ws, answer) = connect_offering(
        &server.url,
        "permessage-deflate; server_max_window_bits=10, permessage-deflate",
    )
    .await;
    assert!(answer.is_some(), "the second offer is taken");
    server.stop().await;
}

#[tokio::test]
async fn a_compressed_frame_that_does_not_inflate_closes_1007_and_one_too_large_1009() {
    let mut server = start_with(|c| c.compression.enabled = true).await;
    let (mut ws, _) = connect_offering(&server.url, BROWSER_OFFER).await;
    ws.send(Message::Frame(Frame::compressed(
        vec![0xff, 0xff, 0xff, 0xff].into(),
        Data::Text,
    )))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, 1007);

    let (mut ws, _) = connect_offering(&server.url, BROWSER_OFFER).await;
    // 1 MiB of spaces inside a string: a few kilobytes compressed, far over 64 KiB inflated.
    let bomb = format!(r#"{{"type":"ping","payload":"{}"}}"#, " ".repeat(1 << 20));
    let wire = Deflater::new(9, 15)
        .unwrap()
        .compress(bomb.as_bytes())
        .unwrap();
    assert!(wire.len() < 64 * 1024);
    ws.send(Message::Frame(Frame::compressed(wire.into(), Data::Text)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 1009);
    server.stop().await;
}

#[tokio::test]
async fn a_compressed_frame_without_the_extension_fails_the_connection() {
    let mut server = start().await;
    let (mut ws, answer) = connect_offering(&server.url, BROWSER_OFFER).await;
    assert_eq!(answer, None);
    let wire = Deflater::new(1, 15)
        .unwrap()
        .compress(br#"{"type":"ping"}"#)
        .unwrap();
    ws.send(Message::Frame(Frame::compressed(wire.into(), Data::Text)))
        .await
        .unwrap();
    // tungstenite fails the connection on RSV1 (the extension was not negotiated): no
    // frame is taken, the socket ends.
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok());
    server.stop().await;
}
