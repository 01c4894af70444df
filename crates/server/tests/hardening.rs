//! Hardening (issue 14, PROTOCOL.md sections 3, 5 and 7) over real sockets: forged server
//! types, slowloris before the upgrade, the admin API's body read after its token, safe
//! notification links and sizes, the metrics token, and origins with auth off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Waits until the server closes `stream` (EOF or reset); `true` when it did within PATIENCE.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    read.is_ok()
}

/// A connection that starts a request head and never finishes it.
async fn drip(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn drip_fed_request_heads_are_closed_at_the_head_timeout_and_count_toward_the_cap() {
    let server = start_with(|c| {
        c.head_timeout = Duration::from_secs(1);
        c.max_connections = 50;
    })
    .await;
    let addr = server.http.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..40 {
        slow.push(drip(&addr).await);
    }
    // A normal client still gets in while the cap has room ...
    let (mut ws, _) = connect_ready(&server.url).await;
    send(&mut ws, r#"{"type":"ping","payload":{"n":1}}"#).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    // ... and the unfinished heads are counted: 40 + 1 + 9 more fill the 50 places.
    for _ in 0..9 {
        slow.push(drip(&addr).await);
    }
    let err = tokio_tungstenite::connect_async(server.url.as_str())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    // None of them outlives the head timeout; then there is room again.
    for stream in &mut slow {
        assert!(
            closed_by_server(stream).await,
            "a drip-fed connection stayed open"
        );
    }
    let (_again, _) = connect_ready(&server.url).await;
}

#[tokio::test]
async fn thousands_of_drip_fed_connections_do_not_stop_a_normal_client() {
    let server = start_with(|c| c.head_timeout = Duration::from_secs(2)).await;
    let addr = server.http.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..2_000 {
        slow.push(drip(&addr).await);
    }
    let (mut ws, _) = connect_ready(&server.url).await;
    send(&mut ws, r#"{"type":"ping","payload":{"n":2}}"#).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    for stream in &mut slow {
        assert!(
            closed_by_server(stream).await,
            "a drip-fed connection stayed open"
        );
    }
}

#[tokio::test]
async fn a_forged_server_type_is_refused_and_reaches_no_subscriber() {
    let server = start().await;
    let (mut alice, _) = connect_ready(&server.url).await;
    let (mut bob, _) = connect_ready(&server.url).await;
    for ws in [&mut alice, &mut bob] {
        send(ws, r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#).await;
        assert_eq!(
            recv_type(ws, "subscribed").await["payload"]["channel"],
            "chat:1"
        );
    }
    send(
        &mut alice,
        r#"{"type":"notification","channel":"chat:1","payload":{"id":"n1","title":"Prize","message":"click","type":"info","priority":"high","actionUrl":"javascript:alert(1)"},"messageId":"forged-1","ack":true}"#,
    )
    .await;
    let refused = recv(&mut alice).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"]["code"], "forbidden");
    assert_eq!(refused["payload"]["refId"], "forged-1");
    // Bob's next frame is the pong of his own ping: nothing forged came before it.
    send(&mut bob, r#"{"type":"ping","payload":{"barrier":1}}"#).await;
    let next = recv(&mut bob).await;
    assert_eq!(next["type"], "pong", "{next}");
}

#[tokio::test]
async fn the_admin_api_answers_before_reading_a_body_without_the_token() {
    for admin in [None, Some("admin-token")] {
        let server = start_with(|c| c.admin_token = admin.map(str::to_owned)).await;
        let addr = server.http.trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        // Announces 2 MiB and sends none of it: the refusal must not wait for the body.
        let head = format!(
            "POST /api/notifications HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer wrong\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = vec![0u8; 1024];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut response))
            .await
            .expect("an answer without the body")
            .unwrap();
        let text = String::from_utf8_lossy(&response[..n]);
        let expected = if admin.is_some() { "401" } else { "403" };
        assert!(text.starts_with(&format!("HTTP/1.1 {expected}")), "{text}");
    }
}

#[tokio::test]
async fn notification_action_urls_must_be_http_or_a_path_and_frames_stay_under_64_kib() {
    let server = start_with(|c| c.admin_token = Some("admin".into())).await;
    let post = |body: Value| {
        let base_url = server.http.clone();
        async move {
            http(
                &base_url,
                "POST",
                "/api/notifications",
                Some("admin"),
                Some(&body.to_string()),
            )
            .await
        }
    };
    let base =
        json!({"title":"Quiz","message":"ready","type":"info","priority":"low","userId":"ada"});
    for bad in [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,x",
        "//evil.example",
        "progress",
    ] {
        let mut body = base.clone();
        body["actionUrl"] = json!(bad);
        let (status, reply) = post(body).await;
        assert_eq!(status, 400, "{bad}: {reply}");
        assert!(reply.contains("actionUrl"), "{reply}");
    }
    for good in [
        "/progress",
        "https://example.org/exam?id=4",
        "http://localhost:3000/x",
    ] {
        let mut body = base.clone();
        body["actionUrl"] = json!(good);
        let (status, reply) = post(body).await;
        assert_eq!(status, 202, "{good}: {reply}");
    }
    let mut huge = base.clone();
    huge["message"] = json!("x".repeat(65_450));
    let (status, reply) = post(huge).await;
    assert_eq!(status, 413, "{reply}");
}

#[tokio::test]
async fn metrics_need_their_token_when_one_is_set() {
    let server = start_with(|c| c.metrics_token = Some("scrape".into())).await;
    let (status, _) = http(&server.http, "GET", "/metrics", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = http(&server.http, "GET", "/metrics", Some("wrong"), None).await;
    assert_eq!(status, 401);
    let (status, body) = http(&server.http, "GET", "/metrics", Some("scrape"), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("cerebrum_connections "), "{body}");
}

#[tokio::test]
async fn with_auth_off_only_pages_of_this_machine_may_connect() {
    let server = start().await;
    let with_origin = |origin: &'static str| {
        let mut request = server.url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
        request
    };
    let err = tokio_tungstenite::connect_async(with_origin("https://evil.example"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    for origin in ["http://localhost:5173", "http://127.0.0.1:8080"] {
        let (ws, _) = tokio_tungstenite::connect_async(with_origin(origin))
            .await
            .unwrap();
        drop(ws);
    }
    // An allow-list says otherwise.
    let listed = start_with(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let mut request = listed.url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://app.example".parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap();
}

#[tokio::test]
async fn the_history_budget_drops_the_oldest_channels_first() {
    let server = start_with(|c| {
        c.history_budget_bytes = 40_000;
        c.rate_limit_per_sec = 0.0;
    })
    .await;
    let (mut ws, _) = connect_ready(&server.url).await;
    let blob = "x".repeat(9_000);
    let mut epochs = Vec::new();
    for channel in ["chat:old", "chat:new"] {
        send(
            &mut ws,
            &format!(r#"{{"type":"subscribe","payload":{{"channel":"{channel}"}}}}"#),
        )
        .await;
        let subscribed = recv_type(&mut ws, "subscribed").await;
        epochs.push(subscribed["payload"]["epoch"].as_str().unwrap().to_owned());
        for _ in 0..3 {
            send(
                &mut ws,
                &format!(r#"{{"type":"chat.blob","channel":"{channel}","payload":"{blob}"}}"#),
            )
            .await;
            recv_type(&mut ws, "chat.blob").await;
        }
    }
    // 6 × 9 kB passed the 40 kB budget: the old channel's history went first.
    let (mut again, _) = connect_ready(&server.url).await;
    for (channel, epoch, recovered) in [
        ("chat:old", &epochs[0], false),
        ("chat:new", &epochs[1], true),
    ] {
        send(
            &mut again,
            &json!({"type":"subscribe","payload":{"channel":channel,"since":{"offset":1,"epoch":epoch}}}).to_string(),
        )
        .await;
        let subscribed = recv_type(&mut again, "subscribed").await;
        assert_eq!(
            subscribed["payload"]["recovered"], recovered,
            "{channel}: {subscribed}"
        );
    }
}
