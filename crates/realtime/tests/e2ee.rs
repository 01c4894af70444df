//! End-to-end encrypted channels between two facade clients through a relaying test server:
//! the server sees no plaintext, subscribers see nothing else, and what does not open is a
//! typed error, never data — live, from the offline queue and on resume.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use cerebrum_realtime::protocol::SealedPayload;
use cerebrum_realtime::{
    ChannelKey, Client, ClientBuilder, ClientError, Envelope, ErrorSubscription, KeyId, Keyring,
    OpenError, RawSubscription, Status,
};
use cerebrum_testkit::fake_server::{FakeServer, Kind, Received, SOON};
use serde_json::{Value, json};
use support::wait_status;

const CHANNEL: &str = "chat:staff-room";
const SECRET: &str = "the exam answers are B, D, A";

fn keys(id: &str, key: [u8; 32]) -> Keyring {
    let keys = Keyring::new();
    keys.insert(
        CHANNEL,
        KeyId::new(id).unwrap(),
        ChannelKey::from_bytes(key),
    )
    .unwrap();
    keys
}

fn builder(url: &str, keys: Keyring) -> ClientBuilder {
    Client::builder(url)
        .reconnect_interval(Duration::from_millis(100))
        .max_reconnect_delay(Duration::from_millis(200))
        .unlimited_reconnect_attempts()
        .channel_keys(keys)
        .seed(11)
}

async fn next(subscription: &mut RawSubscription) -> Envelope {
    tokio::time::timeout(SOON, subscription.recv())
        .await
        .expect("no publication in time")
        .expect("client stopped")
}

async fn next_error(errors: &mut ErrorSubscription) -> ClientError {
    tokio::time::timeout(SOON, errors.recv())
        .await
        .expect("no error in time")
        .expect("client stopped")
}

fn text_of(envelope: &Envelope) -> String {
    let payload: Value = serde_json::from_str(envelope.payload().get()).unwrap();
    payload["text"].as_str().unwrap().to_owned()
}

/// Connects `client`, subscribes to CHANNEL, and waits for the server's `subscribed`.
async fn join(client: &Client) -> RawSubscription {
    let mut frames = client.frames();
    let mut status = client.watch_status();
    client.connect();
    wait_status(&mut status, Status::Connected).await;
    let subscription = client.subscribe_channel(CHANNEL).await.unwrap();
    subscribed(&mut frames).await;
    subscription
}

async fn subscribed(frames: &mut RawSubscription) {
    tokio::time::timeout(SOON, async {
        while let Some(frame) = frames.recv().await {
            if frame.kind() == "subscribed" {
                return;
            }
        }
    })
    .await
    .expect("no `subscribed`");
}

/// Waits until the server has received (and relayed) the next `chat.message` publication;
/// returns the frame as received.
async fn next_publication(received: &mut Received) -> String {
    received
        .next_frame_where("a `chat.message` publication", |frame| {
            frame["type"] == "chat.message"
        })
        .await
}

#[tokio::test]
async fn two_clients_exchange_sealed_messages_and_the_server_sees_no_plaintext() {
    let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
    let alice = builder(&server.url(), keys("k1", [7; 32])).build().unwrap();
    let bob = builder(&server.url(), keys("k1", [7; 32])).build().unwrap();
    let _alice_channel = join(&alice).await;
    let mut bob_channel = join(&bob).await;
    let mut bob_messages = bob.on_type("chat.message");
    let mut bob_errors = bob.errors();

    alice
        .publish(CHANNEL, "chat.message", &json!({ "text": SECRET }))
        .await
        .unwrap();
    let delivered = next(&mut bob_channel).await;
    assert_eq!(text_of(&delivered), SECRET);
    assert_eq!(delivered.channel(), Some(CHANNEL));
    assert_eq!(delivered.offset(), Some(1));
    // Typed and per-type handlers see the plaintext too.
    assert_eq!(text_of(&next(&mut bob_messages).await), SECRET);

    // What the server received: the publication, sealed, and nothing that holds the secret.
    let publication = next_publication(&mut received).await;
    let mut frames = received.drain_frames();
    frames.push(publication.clone());
    let publication = cerebrum_realtime::decode(&publication).unwrap();
    let sealed = SealedPayload::from_raw(publication.payload()).unwrap();
    assert_eq!(sealed.key_id.as_str(), "k1");
    for frame in &frames {
        assert!(
            !frame.contains(SECRET),
            "plaintext reached the server: {frame}"
        );
        assert!(
            !frame.contains("exam"),
            "plaintext reached the server: {frame}"
        );
    }

    // A plaintext publication forged on the encrypted channel: a typed error, never data.
    server.publish(&format!(
        r#"{{"type":"chat.message","payload":{{"text":"forged"}},"timestamp":1,"messageId":"m-forged","channel":"{CHANNEL}"}}"#
    )).unwrap();
    match next_error(&mut bob_errors).await {
        ClientError::Decrypt {
            channel,
            message_id,
            offset,
            reason,
        } => {
            assert_eq!(channel, CHANNEL);
            assert_eq!(message_id.unwrap().as_str(), "m-forged");
            assert_eq!(offset, Some(2));
            assert_eq!(reason, OpenError::NotSealed);
        }
        other => panic!("unexpected {other:?}"),
    }
    // The sealed publication of alice, with its ciphertext altered by the server.
    let mut tampered: Value =
        serde_json::from_str(&cerebrum_realtime::encode(&publication)).unwrap();
    let ct = tampered["payload"]["ct"].as_str().unwrap().to_owned();
    let flipped = if ct.starts_with('A') { "B" } else { "A" };
    tampered["payload"]["ct"] = Value::String(format!("{flipped}{}", &ct[1..]));
    tampered["messageId"] = json!("m-tampered");
    server.publish(&tampered.to_string()).unwrap();
    match next_error(&mut bob_errors).await {
        ClientError::Decrypt {
            reason, message_id, ..
        } => {
            assert_eq!(reason, OpenError::Authentication);
            assert_eq!(message_id.unwrap().as_str(), "m-tampered");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Neither reached a subscriber: the next thing bob's streams get is alice's next message.
    alice
        .publish(CHANNEL, "chat.message", &json!({ "text": "second" }))
        .await
        .unwrap();
    assert_eq!(text_of(&next(&mut bob_channel).await), "second");
    assert_eq!(text_of(&next(&mut bob_messages).await), "second");
}

#[tokio::test]
async fn a_client_with_the_wrong_key_gets_typed_errors_and_no_data() {
    let (server, _received) = FakeServer::start(Kind::V1).await.unwrap();
    let alice = builder(&server.url(), keys("k1", [7; 32])).build().unwrap();
    let eve = builder(&server.url(), keys("k1", [8; 32])).build().unwrap();
    let mallory = builder(&server.url(), keys("k2", [7; 32])).build().unwrap();
    let _alice_channel = join(&alice).await;
    let mut eve_channel = join(&eve).await;
    let mut eve_errors = eve.errors();
    let mut mallory_channel = join(&mallory).await;
    let mut mallory_errors = mallory.errors();

    alice
        .publish(CHANNEL, "chat.message", &json!({ "text": SECRET }))
        .await
        .unwrap();
    assert!(matches!(
        next_error(&mut eve_errors).await,
        ClientError::Decrypt {
            reason: OpenError::Authentication,
            ..
        }
    ));
    assert!(matches!(
        next_error(&mut mallory_errors).await,
        ClientError::Decrypt { reason: OpenError::UnknownKey { ref key_id }, .. } if key_id.as_str() == "k1"
    ));
    assert!(eve_channel.try_recv().is_none());
    assert!(mallory_channel.try_recv().is_none());
}

#[tokio::test]
async fn the_offline_queue_holds_sealed_messages_and_sends_what_it_holds() {
    let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
    let keys = keys("2026-11", [1; 32]);
    let alice = builder(&server.url(), keys.clone()).build().unwrap();
    let bob = builder(&server.url(), keys.clone()).build().unwrap();
    let mut bob_channel = join(&bob).await;

    // Offline: sealed at send time with the key current then.
    alice
        .publish(CHANNEL, "chat.message", &json!({ "text": SECRET }))
        .await
        .unwrap();
    let queued = alice.queued_messages();
    assert_eq!(queued.len(), 1);
    let held = cerebrum_realtime::encode(&queued[0]);
    assert!(!held.contains(SECRET), "{held}");
    assert_eq!(
        SealedPayload::from_raw(queued[0].payload())
            .unwrap()
            .key_id
            .as_str(),
        "2026-11"
    );
    // Rotation before the flush: the queued message keeps its key id, and still opens.
    keys.insert(
        CHANNEL,
        KeyId::new("2026-12").unwrap(),
        ChannelKey::from_bytes([2; 32]),
    )
    .unwrap();
    let _alice_channel = join(&alice).await;
    let first = next(&mut bob_channel).await;
    assert_eq!(text_of(&first), SECRET);
    let sent = next_publication(&mut received).await;
    // The frame sent is the one the queue held (same sealed payload), not a re-sealing.
    let sent = cerebrum_realtime::decode(&sent).unwrap();
    assert_eq!(sent.payload().get(), queued[0].payload().get());

    // New sends use the new key id.
    alice
        .publish(
            CHANNEL,
            "chat.message",
            &json!({ "text": "after rotation" }),
        )
        .await
        .unwrap();
    let second = next(&mut bob_channel).await;
    assert_eq!(text_of(&second), "after rotation");
    let sent = cerebrum_realtime::decode(&next_publication(&mut received).await).unwrap();
    assert_eq!(
        SealedPayload::from_raw(sent.payload())
            .unwrap()
            .key_id
            .as_str(),
        "2026-12"
    );
}

#[tokio::test]
async fn replays_on_resume_open_the_same_way() {
    let (server, mut received) = FakeServer::start(Kind::V1).await.unwrap();
    let alice = builder(&server.url(), keys("k1", [7; 32])).build().unwrap();
    let bob = builder(&server.url(), keys("k1", [7; 32])).build().unwrap();
    let _alice_channel = join(&alice).await;
    let mut bob_channel = join(&bob).await;
    let mut bob_errors = bob.errors();
    alice
        .publish(CHANNEL, "chat.message", &json!({ "text": "live" }))
        .await
        .unwrap();
    assert_eq!(text_of(&next(&mut bob_channel).await), "live");
    next_publication(&mut received).await;

    // Bob goes away; one good and one forged publication land in history meanwhile.
    bob.disconnect().await;
    alice
        .publish(CHANNEL, "chat.message", &json!({ "text": "missed" }))
        .await
        .unwrap();
    // Relayed (offset 2) before the server's own publication below.
    next_publication(&mut received).await;
    server.publish(&format!(
        r#"{{"type":"chat.message","payload":{{"text":"forged while away"}},"messageId":"m-forged","channel":"{CHANNEL}"}}"#
    )).unwrap();
    alice
        .publish(CHANNEL, "chat.message", &json!({ "text": "back" }))
        .await
        .unwrap();

    // Bob comes back and resumes from offset 1: the replay is opened like live traffic.
    let mut frames = bob.frames();
    bob.connect();
    subscribed(&mut frames).await;
    let replayed = next(&mut bob_channel).await;
    assert_eq!(text_of(&replayed), "missed");
    assert_eq!(replayed.offset(), Some(2));
    match next_error(&mut bob_errors).await {
        ClientError::Decrypt { offset, reason, .. } => {
            assert_eq!(offset, Some(3));
            assert_eq!(reason, OpenError::NotSealed);
        }
        other => panic!("unexpected {other:?}"),
    }
    let after = next(&mut bob_channel).await;
    assert_eq!(text_of(&after), "back");
    assert_eq!(after.offset(), Some(4));
}
