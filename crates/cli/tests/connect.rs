//! `cerebrum connect` end to end, as a process: against the mock, a small test server, and
//! `cerebrum serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cerebrum_testkit::fake_server::{FakeServer, Kind, Received};
use common::{BIN, Serve};

/// Runs `cerebrum connect ARGS` with `stdin` as its input, off the async runtime.
async fn connect(args: &[&str], stdin: &str) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .arg("connect")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The JWT secret of the tests against `cerebrum serve` with auth on.
const SECRET: &str = "test-secret-of-at-least-32-bytes!";

/// `cerebrum serve` with auth on ([`SECRET`]), its data in `dir`.
fn serve_with_auth(dir: &std::path::Path) -> Serve {
    Serve::start(|serve| serve.args(["--jwt-secret", SECRET, "--data-dir"]).arg(dir))
}

/// A token for `user` minted by `cerebrum token`.
fn mint(user: &str) -> String {
    let minted = Command::new(BIN)
        .args(["token", "--secret", SECRET, "--user", user])
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    String::from_utf8(minted.stdout).unwrap().trim().to_owned()
}

/// The next frame the client sent that is not a heartbeat, as sent.
async fn next_app_frame(received: &mut Received) -> String {
    received
        .next_frame_where("an app frame", |frame| frame["type"] != "ping")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_mode_prints_n_envelopes_and_exits_0() {
    let output = connect(&["ws://mock/ws", "--mock", "--count", "3"], "").await;
    assert!(output.status.success(), "{output:?}");
    let lines = lines(&output);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["type"], "welcome");
    assert_eq!(lines[1]["type"], "system_status");
    assert!(lines.iter().all(|l| l["messageId"].is_string()));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("status: connected"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_lines_are_sent_and_the_end_of_stdin_drains_then_exits_0() {
    let (server, mut received) = FakeServer::builder(Kind::V1).echo().start().await.unwrap();
    let url = server.url();
    let input = "chat.message {\"text\":\"hi\"}\n\
                 {\"type\":\"quiz.answer\",\"payload\":{\"choice\":2},\"ack\":true}\n\
                 not json at all {\n";
    let output = connect(&[&url, "--timeout-secs", "30"], input).await;
    assert!(output.status.success(), "{output:?}");
    let first = next_app_frame(&mut received).await;
    let second = next_app_frame(&mut received).await;
    assert!(
        first.starts_with(r#"{"type":"chat.message","payload":{"text":"hi"}"#),
        "{first}"
    );
    assert!(second.contains(r#""ack":true"#), "{second}");
    let stdout = lines(&output);
    assert_eq!(stdout[0]["type"], "welcome");
    // The ack was awaited before exiting.
    assert!(stdout.iter().any(|l| l["type"] == "ack"), "{stdout:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("error: invalid input line"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_waits_for_the_replies() {
    let (server, _received) = FakeServer::builder(Kind::V1).echo().start().await.unwrap();
    let url = server.url();
    let output = connect(&[&url, "--count", "2"], "chat.message {\"n\":1}\n").await;
    assert!(output.status.success(), "{output:?}");
    let stdout = lines(&output);
    assert_eq!(stdout.len(), 2);
    assert_eq!(stdout[1]["type"], "echo");
    assert_eq!(stdout[1]["payload"]["n"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_url_exits_2() {
    let output = connect(&["http://localhost:8080/ws"], "").await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_exits_3() {
    let (server, _received) = FakeServer::start(Kind::Unauthorized).await.unwrap();
    let url = server.url();
    let output = connect(&[&url, "--token", "expired", "--timeout-secs", "30"], "").await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("4001"), "{stderr}");
    assert!(!stderr.contains("expired"), "the token leaked: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_exits_3_even_when_its_error_frame_would_reach_the_count() {
    let (server, _received) = FakeServer::start(Kind::Unauthorized).await.unwrap();
    let url = server.url();
    let output = connect(
        &[
            &url,
            "--token",
            "bad",
            "--count",
            "1",
            "--timeout-secs",
            "30",
        ],
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    // The refusal is still printed.
    assert_eq!(lines(&output)[0]["payload"]["code"], "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_exits_4() {
    let (server, _received) = FakeServer::builder(Kind::V1)
        .silent()
        .start()
        .await
        .unwrap();
    let url = server.url();
    let output = connect(&[&url, "--count", "5", "--timeout-secs", "1"], "").await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(lines(&output).len() <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_cerebrum_serve_a_study_session_comes_back_as_updates() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(|serve| serve.args(["--data-dir"]).arg(dir.path()));
    let url = serve.url().to_owned();
    let input = "study_session_start {\"userId\":\"u1\",\"topic\":\"Genetics\"}\n\
                 {\"type\":\"study_session_end\",\"payload\":{\"userId\":\"u1\",\"topic\":\"Genetics\"},\"ack\":true}\n";
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        connect(&[&url, "--timeout-secs", "30"], input),
    )
    .await
    .unwrap();
    drop(serve);
    assert!(output.status.success(), "{output:?}");
    let stdout = lines(&output);
    assert_eq!(stdout[0]["type"], "welcome");
    assert!(stdout.iter().any(|l| l["type"] == "ack"), "{stdout:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_cerebrum_serve_with_auth_a_minted_token_connects_and_a_bad_one_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_auth(dir.path());
    let url = serve.url().to_owned();
    let token = mint("u1");

    let good = connect(
        &[
            &url,
            "--token",
            &token,
            "--count",
            "1",
            "--timeout-secs",
            "30",
        ],
        "",
    )
    .await;
    let bad = connect(
        &[
            &url,
            "--token",
            "not.a.jwt",
            "--count",
            "1",
            "--timeout-secs",
            "30",
        ],
        "",
    )
    .await;
    drop(serve);
    assert!(good.status.success(), "{good:?}");
    let welcome = &lines(&good)[0];
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["payload"]["userId"], "u1");
    assert_eq!(bad.status.code(), Some(3), "{bad:?}");
}

/// The facade against `cerebrum serve`: each way of sending the token is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_authenticates_to_cerebrum_serve_by_query_header_and_auth_message() {
    use cerebrum_realtime::{Client, TokenTransport, Welcome};

    let dir = tempfile::tempdir().unwrap();
    let serve = serve_with_auth(dir.path());
    let url = serve.url().to_owned();
    let token = mint("u7");

    let mut users = Vec::new();
    for transport in [
        TokenTransport::Query,
        TokenTransport::Header,
        TokenTransport::AuthMessage,
    ] {
        let client = Client::builder(url.clone())
            .token(token.clone())
            .token_transport(transport)
            .build()
            .unwrap();
        let mut frames = client.frames();
        client.connect();
        let first = tokio::time::timeout(Duration::from_secs(20), frames.recv())
            .await
            .unwrap()
            .unwrap();
        users.push(first.typed::<Welcome>().unwrap().user_id);
        client.disconnect().await;
    }
    drop(serve);
    assert_eq!(users, vec![Some("u7".to_owned()); 3]);
}

/// The facade against `cerebrum serve`: a channel subscription resumes after a disconnect and
/// gets the publications it missed, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_subscription_resumes_against_cerebrum_serve() {
    channel_subscription_resumes(cerebrum_realtime::Encoding::Json).await;
}

/// The same with both clients on MessagePack frames (`cerebrum.v1.msgpack`): subscribe,
/// publish, ack and resume work as they do on JSON text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_subscription_resumes_against_cerebrum_serve_on_msgpack() {
    channel_subscription_resumes(cerebrum_realtime::Encoding::MessagePack).await;
}

async fn channel_subscription_resumes(encoding: cerebrum_realtime::Encoding) {
    use cerebrum_realtime::Client;

    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(|serve| serve.args(["--data-dir"]).arg(dir.path()));
    let url = serve.url().to_owned();
    let soon = Duration::from_secs(20);

    let reader = Client::builder(url.clone())
        .encoding(encoding)
        .build()
        .unwrap();
    let mut reader_frames = reader.frames();
    let mut room = reader.subscribe_channel("quiz:room-1").await.unwrap();
    reader.connect();
    let subscribed = async {
        loop {
            let frame = reader_frames.recv().await.unwrap();
            if frame.kind() == "subscribed" {
                return frame;
            }
        }
    };
    tokio::time::timeout(soon, subscribed).await.unwrap();

    // The server lets members publish: the writer subscribes too.
    let writer = Client::builder(url.clone())
        .encoding(encoding)
        .build()
        .unwrap();
    let mut writer_frames = writer.frames();
    let _writer_room = writer.subscribe_channel("quiz:room-1").await.unwrap();
    writer.connect();
    // Publish once the subscription is confirmed (a publication queued before the connection
    // would be flushed ahead of the re-subscription).
    let confirmed = async {
        loop {
            let frame = writer_frames.recv().await.unwrap();
            if frame.kind() == "subscribed" {
                return;
            }
        }
    };
    tokio::time::timeout(soon, confirmed).await.unwrap();
    writer
        .publish("quiz:room-1", "quiz.answer", &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    let first = tokio::time::timeout(soon, room.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.payload().get(), r#"{"n":1}"#);

    reader.disconnect().await;
    for n in [2, 3] {
        writer
            .send_outgoing(
                cerebrum_realtime::Outgoing::value("quiz.answer", &serde_json::json!({ "n": n }))
                    .unwrap()
                    .to_channel("quiz:room-1")
                    .with_ack(true),
            )
            .await
            .unwrap()
            .acked()
            .await
            .unwrap();
    }
    reader.connect();
    let resumed = async {
        loop {
            let frame = reader_frames.recv().await.unwrap();
            if frame.kind() == "subscribed" {
                return frame;
            }
        }
    };
    let resumed = tokio::time::timeout(soon, resumed).await.unwrap();
    let second = tokio::time::timeout(soon, room.recv())
        .await
        .unwrap()
        .unwrap();
    let third = tokio::time::timeout(soon, room.recv())
        .await
        .unwrap()
        .unwrap();
    drop(serve);
    assert!(
        resumed.payload().get().contains(r#""recovered":true"#),
        "{}",
        resumed.payload().get()
    );
    assert_eq!(second.payload().get(), r#"{"n":2}"#);
    assert_eq!(third.payload().get(), r#"{"n":3}"#);
}
