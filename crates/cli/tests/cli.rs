//! The `cerebrum` binary as users and black-box tests run it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cerebrum_server::auth::{JwtKey, Verifier};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_cerebrum");

#[tokio::test]
async fn serve_prints_the_listening_line_serves_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("CEREBRUM_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap())
        .await
        .unwrap();
    let url = line.strip_prefix("listening on ").unwrap();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/ws"),
        "{line}"
    );
    let port: u16 = url
        .trim_start_matches("ws://127.0.0.1:")
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    assert_ne!(port, 0);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let welcome = ws.next().await.unwrap().unwrap();
    assert!(
        welcome
            .to_text()
            .unwrap()
            .starts_with(r#"{"type":"welcome""#)
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
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
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
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
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--database", &url])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout).lines().next();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();
    let line = line.unwrap().unwrap();
    assert!(line.starts_with("listening on ws://127.0.0.1:"), "{line}");
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
