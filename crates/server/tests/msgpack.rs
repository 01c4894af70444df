//! The MessagePack subprotocol (`cerebrum.v1.msgpack`) against a real server: negotiation,
//! binary frames both ways, errors, and JSON and MessagePack subscribers of one channel getting
//! the same publications (live, replayed on resume, and across two nodes on one Redis).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cerebrum_protocol::json_to_msgpack;
use cerebrum_testkit::redis::RedisServer;
use common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Connects offering `offer` (a `Sec-WebSocket-Protocol` value); the subprotocol selected.
async fn connect_offering(url: &str, offer: &str) -> (Ws, Option<String>) {
    let (ws, headers) = connect_with(url, &[("Sec-WebSocket-Protocol", offer)]).await;
    (ws, header(&headers, "sec-websocket-protocol"))
}

/// A frame as received: its JSON text, and whether it came as a binary (MessagePack) frame.
async fn next_frame(ws: &mut Ws) -> (String, bool) {
    let arrived = next_data(ws).await;
    (arrived.json, arrived.binary)
}

/// The next binary frame, as JSON (a text frame fails the test).
async fn recv_binary(ws: &mut Ws) -> Value {
    let (text, binary) = next_frame(ws).await;
    assert!(binary, "a text frame on a MessagePack connection: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn send_msgpack(ws: &mut Ws, value: &Value) {
    let bytes = json_to_msgpack(&value.to_string()).unwrap();
    ws.send(Message::binary(bytes)).await.unwrap();
}

/// A MessagePack connection past `welcome` and `system_status`.
async fn msgpack_ready(url: &str) -> Ws {
    let (mut ws, selected) = connect_offering(url, "cerebrum.v1.msgpack").await;
    assert_eq!(selected.as_deref(), Some("cerebrum.v1.msgpack"));
    assert_eq!(recv_binary(&mut ws).await["type"], "welcome");
    assert_eq!(recv_binary(&mut ws).await["type"], "system_status");
    ws
}

/// Reads frames until one of `kind`; returns its JSON text.
async fn text_of_type(ws: &mut Ws, kind: &str) -> String {
    loop {
        let (text, _) = next_frame(ws).await;
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["type"] == kind {
            return text;
        }
    }
}

#[tokio::test]
async fn the_first_subprotocol_of_the_offer_that_the_server_speaks_is_selected() {
    let server = start().await;
    for (offer, expected) in [
        (
            "cerebrum.v1.msgpack, cerebrum.v1.json",
            Some("cerebrum.v1.msgpack"),
        ),
        (
            "cerebrum.v1.json, cerebrum.v1.msgpack",
            Some("cerebrum.v1.json"),
        ),
        ("x-other, cerebrum.v1.msgpack", Some("cerebrum.v1.msgpack")),
        (
            "Cerebrum.V1.MsgPack, cerebrum.v1.json",
            Some("cerebrum.v1.json"),
        ),
    ] {
        let (mut ws, selected) = connect_offering(&server.url, offer).await;
        assert_eq!(selected.as_deref(), expected, "{offer}");
        let (welcome, binary) = next_frame(&mut ws).await;
        assert_eq!(binary, expected == Some("cerebrum.v1.msgpack"), "{offer}");
        assert!(welcome.starts_with(r#"{"type":"welcome""#));
    }
    // No offer: JSON text, as level-0 peers expect.
    let (mut ws, _) = connect_ready(&server.url).await;
    send(&mut ws, r#"{"type":"ping","payload":1}"#).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn a_msgpack_connection_speaks_binary_frames_and_still_reads_text() {
    let server = start().await;
    let mut ws = msgpack_ready(&server.url).await;
    send_msgpack(
        &mut ws,
        &json!({"type":"ping","payload":{"nonce":7,"x":[1.5,-2,"é"]},"messageId":"p1"}),
    )
    .await;
    let pong = recv_binary(&mut ws).await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["payload"], json!({"nonce":7,"x":[1.5,-2,"é"]}));
    // Text frames are read as JSON; the answer is still binary.
    send(&mut ws, r#"{"type":"ping","payload":2}"#).await;
    assert_eq!(recv_binary(&mut ws).await["payload"], 2);
    // A frame that is not MessagePack gets `invalid_json`, and the connection stays.
    ws.send(Message::binary(vec![0xc1, 0x00])).await.unwrap();
    let error = recv_binary(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["payload"]["code"], "invalid_json");
    assert!(
        error["payload"]["message"]
            .as_str()
            .unwrap()
            .starts_with("not valid MessagePack"),
        "{error}"
    );
    // A map key that is not a string: not the form of any JSON.
    ws.send(Message::binary(vec![0x81, 0x01, 0x02]))
        .await
        .unwrap();
    assert_eq!(
        recv_binary(&mut ws).await["payload"]["code"],
        "invalid_json"
    );
    send_msgpack(&mut ws, &json!({"type":"ping","payload":3})).await;
    assert_eq!(recv_binary(&mut ws).await["payload"], 3);
}

#[tokio::test]
async fn a_json_connection_still_refuses_binary_frames() {
    let server = start().await;
    let (mut ws, selected) = connect_offering(&server.url, "cerebrum.v1.json").await;
    assert_eq!(selected.as_deref(), Some("cerebrum.v1.json"));
    recv_type(&mut ws, "system_status").await;
    let ping = json_to_msgpack(r#"{"type":"ping"}"#).unwrap();
    ws.send(Message::binary(ping)).await.unwrap();
    let error = recv(&mut ws).await;
    assert_eq!(error["payload"]["code"], "unsupported_frame");
}

/// Publishes `n` messages from `publisher` (JSON, acked) on `channel`, numbered from `from`.
async fn publish(publisher: &mut Ws, channel: &str, from: u64, n: u64) {
    for i in from..from + n {
        send_json(
            publisher,
            &json!({"type":"app.note","payload":{"i":i,"score":i as f64 + 0.5,"tags":["a",i]},
                    "channel":channel,"ack":true,"messageId":format!("m{i}")}),
        )
        .await;
        recv_type(publisher, "ack").await;
    }
}

/// The JSON texts of the next `n` publications of `channel` on `ws`.
async fn publications(ws: &mut Ws, n: usize) -> Vec<String> {
    let mut texts = Vec::new();
    while texts.len() < n {
        let text = text_of_type(ws, "app.note").await;
        texts.push(text);
    }
    texts
}

async fn subscribe_json(ws: &mut Ws, channel: &str) {
    send_json(
        ws,
        &json!({"type":"subscribe","payload":{"channel":channel}}),
    )
    .await;
    recv_type(ws, "subscribed").await;
}

async fn subscribe_msgpack(ws: &mut Ws, since: Option<Value>, channel: &str) -> Value {
    let mut payload = json!({"channel": channel});
    if let Some(since) = since {
        payload["since"] = since;
    }
    send_msgpack(ws, &json!({"type":"subscribe","payload":payload})).await;
    let subscribed = text_of_type(ws, "subscribed").await;
    serde_json::from_str(&subscribed).unwrap()
}

#[tokio::test]
async fn json_and_msgpack_subscribers_get_the_same_publications_live_and_on_resume() {
    let server = start().await;
    let channel = "chat:mixed";
    let (mut json_sub, _) = connect_ready(&server.url).await;
    subscribe_json(&mut json_sub, channel).await;
    let mut msgpack_sub = msgpack_ready(&server.url).await;
    let subscribed = subscribe_msgpack(&mut msgpack_sub, None, channel).await;
    let epoch = subscribed["payload"]["epoch"].clone();
    let (mut publisher, _) = connect_ready(&server.url).await;
    subscribe_json(&mut publisher, channel).await;

    publish(&mut publisher, channel, 0, 5).await;
    let seen_json = publications(&mut json_sub, 5).await;
    let seen_msgpack = publications(&mut msgpack_sub, 5).await;
    // Byte for byte the same JSON: same ids, offsets, timestamps and payloads.
    assert_eq!(seen_msgpack, seen_json);
    let last: Value = serde_json::from_str(&seen_msgpack[4]).unwrap();

    // The MessagePack subscriber goes away, misses three, and resumes from its last offset.
    drop(msgpack_sub);
    publish(&mut publisher, channel, 5, 3).await;
    let live_json = publications(&mut json_sub, 3).await;
    let mut msgpack_sub = msgpack_ready(&server.url).await;
    let since = json!({"offset": last["offset"], "epoch": epoch});
    let subscribed = subscribe_msgpack(&mut msgpack_sub, Some(since), channel).await;
    assert_eq!(subscribed["payload"]["recovered"], true, "{subscribed}");
    assert_eq!(subscribed["payload"]["missed"], 3, "{subscribed}");
    let replayed = publications(&mut msgpack_sub, 3).await;
    assert_eq!(replayed, live_json);

    // And live again, side by side.
    publish(&mut publisher, channel, 8, 2).await;
    assert_eq!(
        publications(&mut msgpack_sub, 2).await,
        publications(&mut json_sub, 2).await
    );
}

#[tokio::test]
async fn json_and_msgpack_subscribers_on_two_nodes_of_one_redis_agree() {
    let Some(redis) = RedisServer::start().unwrap() else {
        eprintln!("SKIPPED: no redis-server on PATH");
        return;
    };
    let node_a = start_with(|c| c.redis_url = Some(redis.url())).await;
    let node_b = start_with(|c| c.redis_url = Some(redis.url())).await;
    let channel = "chat:nodes";
    let (mut json_sub, _) = connect_ready(&node_a.url).await;
    subscribe_json(&mut json_sub, channel).await;
    let mut msgpack_sub = msgpack_ready(&node_b.url).await;
    subscribe_msgpack(&mut msgpack_sub, None, channel).await;
    let mut publisher = msgpack_ready(&node_a.url).await;
    subscribe_msgpack(&mut publisher, None, channel).await;
    for i in 0..4u64 {
        send_msgpack(
            &mut publisher,
            &json!({"type":"app.note","payload":{"i":i,"score":0.25},"channel":channel,
                    "ack":true,"messageId":format!("r{i}")}),
        )
        .await;
        text_of_type(&mut publisher, "ack").await;
    }
    let seen_json = publications(&mut json_sub, 4).await;
    let seen_msgpack = publications(&mut msgpack_sub, 4).await;
    assert_eq!(seen_msgpack, seen_json);
    let offsets: Vec<u64> = seen_json
        .iter()
        .map(|t| {
            serde_json::from_str::<Value>(t).unwrap()["offset"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
}
