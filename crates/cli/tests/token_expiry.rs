//! A connection outlives its token by nothing: the server closes it with 4001 at the token's
//! `exp` (PROTOCOL.md section 7), and the Rust client, given a token provider, asks it for a
//! fresh token and is connected again. The real server and the real client, on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cerebrum_realtime::{Client, Status};
use cerebrum_server::auth::{JwtKey, mint_hs256};
use cerebrum_server::{Server, ServerConfig};

const SECRET: &str = "token-expiry-test-secret-32-bytes!";
/// Generous bound so that a broken test fails instead of hanging; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_closes_4001_and_the_token_provider_reconnects_with_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.jwt = Some(JwtKey::hs256(SECRET));
    let server = Server::bind(config).await.unwrap();

    let fetched = Arc::new(AtomicUsize::new(0));
    let counter = fetched.clone();
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
        .build()
        .unwrap();
    let mut status = client.watch_status();
    let mut seen = Vec::new();
    client.connect();
    let reconnected = tokio::time::timeout(PATIENCE, async {
        let mut connections = 0;
        loop {
            status.changed().await.unwrap();
            let now = *status.borrow_and_update();
            seen.push(now);
            if now == Status::Connected {
                connections += 1;
                if connections == 2 {
                    return;
                }
            }
        }
    })
    .await;
    assert!(reconnected.is_ok(), "not connected twice: {seen:?}");
    // Between the two connections the client left `Connected`: the server closed it.
    let first = seen.iter().position(|s| *s == Status::Connected).unwrap();
    assert!(
        seen[first + 1..].iter().any(|s| *s != Status::Connected),
        "{seen:?}"
    );
    assert!(
        fetched.load(Ordering::SeqCst) >= 2,
        "the provider was asked again"
    );
    client.disconnect().await;
    server.shutdown().await.unwrap();
}
