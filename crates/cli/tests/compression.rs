//! The Rust client and `cerebrum serve` with permessage-deflate on both sides (issue 15): large
//! publications travel compressed both ways and arrive whole, beside a client that did not
//! negotiate it. The real server and the real client, on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cerebrum_realtime::{Client, RawSubscription, Status};
use cerebrum_server::{Server, ServerConfig};
use serde_json::{Value, json};

/// Generous bound so that a broken test fails instead of hanging; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);
const CHANNEL: &str = "chat:deflate";

async fn join(client: &Client) -> RawSubscription {
    let mut status = client.watch_status();
    client.connect();
    tokio::time::timeout(PATIENCE, status.wait_for(|s| *s == Status::Connected))
        .await
        .expect("connected in time")
        .unwrap();
    let mut frames = client.frames();
    let subscription = client.subscribe_channel(CHANNEL).await.unwrap();
    tokio::time::timeout(PATIENCE, async {
        while let Some(frame) = frames.recv().await {
            if frame.kind() == "subscribed" {
                return;
            }
        }
    })
    .await
    .expect("subscribed in time");
    subscription
}

async fn texts(subscription: &mut RawSubscription, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let envelope = tokio::time::timeout(PATIENCE, subscription.recv())
            .await
            .expect("a publication in time")
            .expect("the subscription is open");
        let payload: Value = serde_json::from_str(envelope.payload().get()).unwrap();
        seen.push(payload["text"].as_str().unwrap().to_owned());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_publications_travel_compressed_between_the_client_and_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.compression.enabled = true;
    let server = Server::bind(config).await.unwrap();

    let zipped = Client::builder(server.ws_url())
        .compression(true)
        .build()
        .unwrap();
    let plain = Client::builder(server.ws_url()).build().unwrap();
    let mut zipped_channel = join(&zipped).await;
    let mut plain_channel = join(&plain).await;

    let long = "spaced repetition beats cramming, every time. ".repeat(40);
    let from_zipped = format!("zipped: {long}");
    let from_plain = format!("plain: {long}");
    zipped
        .publish(CHANNEL, "chat.msg", &json!({ "text": from_zipped }))
        .await
        .unwrap();
    let sent = texts(&mut zipped_channel, 1).await;
    plain
        .publish(CHANNEL, "chat.msg", &json!({ "text": from_plain }))
        .await
        .unwrap();
    let mut all = sent;
    all.extend(texts(&mut zipped_channel, 1).await);
    assert_eq!(all, [from_zipped.clone(), from_plain.clone()]);
    assert_eq!(
        texts(&mut plain_channel, 2).await,
        [from_zipped, from_plain]
    );
    server.shutdown().await.unwrap();
}
