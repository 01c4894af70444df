//! A connection outlives its token by nothing: the server closes it with 4001 at the token's
//! `exp` (PROTOCOL.md section 7), and the Rust client, given a token provider, asks it for a
//! fresh token and is connected again. The real server and the real client, on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cerebrum_realtime::{Client, ClientError};
use cerebrum_server::auth::{JwtKey, mint_hs256};
use cerebrum_server::{Server, ServerConfig};
use tokio::sync::mpsc;

const SECRET: &str = "token-expiry-test-secret-32-bytes!";
/// Generous bound so that a broken test fails instead of hanging; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// What the client reported, in the order its driver reported it.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Connected,
    Disconnected,
    /// A close 4001 or 4003, with its code.
    Refused(u16),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_closes_4001_and_the_token_provider_reconnects_with_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.jwt = Some(JwtKey::hs256(SECRET));
    let server = Server::bind(config).await.unwrap();

    let fetched = Arc::new(AtomicUsize::new(0));
    let counter = fetched.clone();
    // The callbacks, not `watch_status`: a watch keeps only the latest status, so a quick
    // disconnect and reconnect could be seen as `Connected` twice in a row, or not at all.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (on_connect, on_disconnect, on_error) = (tx.clone(), tx.clone(), tx);
    let client = Client::builder(server.ws_url())
        .token_provider(move || {
            // The first token lives two seconds, the next ones an hour.
            let ttl = if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                2
            } else {
                3_600
            };
            async move { mint_hs256(SECRET.as_bytes(), "ada", Some("Ada"), ttl, None) }
        })
        .on_connect(move || {
            let _ = on_connect.send(Seen::Connected);
        })
        .on_disconnect(move |_| {
            let _ = on_disconnect.send(Seen::Disconnected);
        })
        .on_error(move |error| {
            if let ClientError::Refused { code, .. } = error {
                let _ = on_error.send(Seen::Refused(*code));
            }
        })
        .build()
        .unwrap();
    client.connect();
    let mut seen = Vec::new();
    let reconnected = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = rx.recv().await {
            seen.push(event);
            if seen.iter().filter(|s| **s == Seen::Connected).count() == 2 {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(reconnected, Ok(true), "not connected twice: {seen:?}");
    // Between the two connections the server closed the first with 4001 (its token expired).
    assert_eq!(
        seen,
        [
            Seen::Connected,
            Seen::Disconnected,
            Seen::Refused(4001),
            Seen::Connected
        ],
    );
    assert!(
        fetched.load(Ordering::SeqCst) >= 2,
        "the provider was asked again"
    );
    client.disconnect().await;
    server.shutdown().await.unwrap();
}
