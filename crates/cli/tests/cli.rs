//! The `cerebrum` binary as users and black-box tests run it.

mod common;

use std::process::Command;
use std::time::Duration;

use cerebrum_server::auth::{JwtKey, Verifier};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use common::{BIN, Serve};

#[tokio::test]
async fn serve_prints_the_listening_line_serves_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(|serve| serve.arg("--data-dir").arg(dir.path()));
    let url = serve.url().to_owned();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/ws"),
        "{url}"
    );
    let port: u16 = url
        .trim_start_matches("ws://127.0.0.1:")
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    assert_ne!(port, 0);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let welcome = ws.next().await.unwrap().unwrap();
    assert!(
        welcome
            .to_text()
            .unwrap()
            .starts_with(r#"{"type":"welcome""#)
    );
    serve.sigterm();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, 1001);
    let exit = tokio::task::spawn_blocking(move || serve.wait())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(dir.path().join("cerebrum.sqlite3").exists());
}

#[test]
fn serve_refuses_a_redis_url_that_is_not_one() {
    let output = Command::new(BIN)
        .args(["serve", "--redis", "http://127.0.0.1:6379"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wants a redis:// URL"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn serve_with_an_unreachable_postgres_fails_clearly() {
    let port = cerebrum_testkit::free_port().unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--database"])
        .arg(format!("postgres://ada:hunter2@127.0.0.1:{port}/cerebrum"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn serve_with_postgres_prints_the_listening_line_and_stores_there() {
    let Some(cluster) = cerebrum_testkit::postgres::PostgresCluster::start().unwrap() else {
        return;
    };
    let url = cluster.fresh_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(|serve| serve.args(["--database", &url]).current_dir(dir.path()));
    let listening = serve.url().to_owned();
    serve.sigterm();
    let exit = serve.wait();
    assert!(listening.starts_with("ws://127.0.0.1:"), "{listening}");
    assert!(exit.success(), "{exit:?}");
    // The schema is in PostgreSQL, and no SQLite file was made in the working directory.
    let store = cerebrum_server::postgres::PostgresStore::connect(&url).unwrap();
    assert_eq!(store.schema_version().unwrap(), 2);
    assert!(!dir.path().join("cerebrum-data").exists());
}

#[test]
fn token_mints_a_verifiable_hs256_jwt() {
    let output = Command::new(BIN)
        .args([
            "token",
            "--secret",
            "dev",
            "--user",
            "ada",
            "--name",
            "Ada",
            "--ttl-secs",
            "60",
            "--channel",
            "chat:*",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap();
    let claims = Verifier::new(&JwtKey::hs256("dev"))
        .unwrap()
        .verify(token.trim(), cerebrum_server::clock::unix_ms() / 1000)
        .unwrap();
    assert_eq!(claims.sub, "ada");
    assert_eq!(claims.name.as_deref(), Some("Ada"));
    assert!(claims.allows_channel("chat:1"));
}
