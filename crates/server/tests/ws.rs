//! The wire contract over real sockets: one test per rule of PROTOCOL.md.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn error_of(frame: &Value) -> (&str, Option<&str>) {
    assert_eq!(frame["type"], "error", "{frame}");
    (
        frame["payload"]["code"].as_str().unwrap(),
        frame["payload"]["refId"].as_str(),
    )
}

#[tokio::test]
async fn welcome_comes_first_then_system_status() {
    let server = start().await;
    let (_ws, welcome) = connect_ready(&server.url).await;
    let payload = &welcome["payload"];
    assert_eq!(payload["protocol"], 1);
    assert_eq!(payload["heartbeatIntervalMs"], 30_000);
    assert_eq!(
        payload["features"],
        json!(["ack", "channels", "presence", "resume"])
    );
    assert!(welcome["messageId"].is_string() && welcome["timestamp"].is_u64());
}

#[tokio::test]
async fn the_subprotocol_is_selected_when_offered() {
    let server = start().await;
    let mut request = server.url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "cerebrum.v1.json".parse().unwrap(),
    );
    let (_ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "cerebrum.v1.json"
    );
}

#[tokio::test]
async fn ping_gets_pong_with_the_payload_verbatim() {
    let server = start().await;
    let (mut ws, _) = connect_ready(&server.url).await;
    send(
        &mut ws,
        r#"{"type":"ping","payload":{"nonce":  42, "x": [1.0,2]},"messageId":"p"}"#,
    )
    .await;
    let pong = recv_text(&mut ws).await;
    assert!(
        pong.starts_with(r#"{"type":"pong","payload":{"nonce":  42, "x": [1.0,2]}"#),
        "{pong}"
    );
}

#[tokio::test]
async fn each_bad_frame_gets_its_typed_error_and_the_connection_stays_open() {
    let server = start().await;
    let (mut ws, _) = connect_ready(&server.url).await;
    let cases: [(&str, &str, Option<&str>); 7] = [
        ("{oops", "invalid_json", None),
        ("[]", "invalid_envelope", None),
        (r#"{"payload":1}"#, "invalid_envelope", None),
        (
            r#"{"type":"nope","messageId":"u1"}"#,
            "unknown_type",
            Some("u1"),
        ),
        (
            r#"{"type":"study_session_start","payload":{"userId":7,"topic":"x"},"messageId":"v1"}"#,
            "validation_failed",
            Some("v1"),
        ),
        (
            r#"{"type":"unsubscribe","payload":{"channel":"chat:x"},"messageId":"n1"}"#,
            "not_subscribed",
            Some("n1"),
        ),
        (
            r#"{"type":"app.x","channel":"user:someone","payload":{},"messageId":"f1"}"#,
            "forbidden",
            Some("f1"),
        ),
    ];
    for (frame, code, ref_id) in cases {
        send(&mut ws, frame).await;
        let reply = recv(&mut ws).await;
        assert_eq!(error_of(&reply), (code, ref_id), "{frame}");
        if code == "validation_failed" {
            assert!(
                reply["payload"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("userId")
            );
        }
    }
    // Huge numbers and 10 000-deep nesting: typed errors, connection kept.
    send(
        &mut ws,
        r#"{"type":"subscribe","payload":{"channel":"a","since":{"offset":1e400,"epoch":"e"}}}"#,
    )
    .await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["type"], "error");
    let deep = format!(
        r#"{{"type":"x","payload":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    send(&mut ws, &deep).await;
    assert_eq!(error_of(&recv(&mut ws).await).0, "validation_failed");
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(error_of(&recv(&mut ws).await).0, "unsupported_frame");
    send(&mut ws, r#"{"type":"ping","payload":1}"#).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn an_oversize_frame_closes_1009_and_others_keep_being_served() {
    let server = start().await;
    let (mut big, _) = connect_ready(&server.url).await;
    let (mut other, _) = connect_ready(&server.url).await;
    let huge = format!(r#"{{"type":"ping","payload":"{}"}}"#, "a".repeat(70 * 1024));
    big.send(Message::text(huge)).await.unwrap();
    assert_eq!(close_code(&mut big).await, 1009);
    send(&mut other, r#"{"type":"ping","payload":2}"#).await;
    assert_eq!(recv(&mut other).await["payload"], 2);
}

#[tokio::test]
async fn flooding_gets_rate_limited_then_closed_1008() {
    let server = start_with(|c| {
        // No refill within the test, however slow the machine.
        c.rate_limit_per_sec = 0.001;
        c.rate_burst = 2;
    })
    .await;
    let (mut ws, _) = connect_ready(&server.url).await;
    for _ in 0..7 {
        send(&mut ws, r#"{"type":"ping"}"#).await;
    }
    let mut codes = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                codes.push(
                    frame["type"].as_str().unwrap().to_owned()
                        + ":"
                        + frame["payload"]["code"].as_str().unwrap_or(""),
                );
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1008);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(codes.iter().filter(|c| *c == "pong:").count(), 2);
    assert_eq!(
        codes.iter().filter(|c| *c == "error:rate_limited").count(),
        5
    );
    let (_, metrics) = http(&server.http, "GET", "/metrics", None, None).await;
    assert!(
        metrics.contains("cerebrum_rate_limited_total 5"),
        "{metrics}"
    );
}

#[tokio::test]
async fn channels_publish_in_offset_order_and_resume_with_since() {
    let server = start().await;
    let (mut a, _) = connect_ready(&server.url).await;
    send(
        &mut a,
        r#"{"type":"subscribe","payload":{"channel":"chat:room"}}"#,
    )
    .await;
    let subscribed = recv(&mut a).await;
    assert_eq!(subscribed["type"], "subscribed");
    assert_eq!(subscribed["payload"]["offset"], 0);
    let epoch = subscribed["payload"]["epoch"].as_str().unwrap().to_owned();
    for i in 1..=3 {
        send(&mut a, &format!(r#"{{"type":"chat.msg","channel":"chat:room","payload":{{"i":{i}}},"ack":true,"messageId":"m{i}"}}"#)).await;
        let publication = recv(&mut a).await;
        assert_eq!(publication["offset"], i);
        assert_eq!(publication["channel"], "chat:room");
        let ack = recv(&mut a).await;
        assert_eq!(ack["type"], "ack");
        assert_eq!(ack["payload"]["messageId"], format!("m{i}"));
    }
    // A client that saw offset 1 resumes: offsets 2 and 3 are replayed, then live ones.
    let (mut b, _) = connect_ready(&server.url).await;
    send_json(&mut b, &json!({"type":"subscribe","payload":{"channel":"chat:room","since":{"offset":1,"epoch":epoch}}})).await;
    let resumed = recv(&mut b).await;
    assert_eq!(resumed["payload"]["recovered"], true);
    assert_eq!(resumed["payload"]["missed"], 2);
    assert_eq!(recv(&mut b).await["offset"], 2);
    assert_eq!(recv(&mut b).await["offset"], 3);
    send(
        &mut a,
        r#"{"type":"chat.msg","channel":"chat:room","payload":{}}"#,
    )
    .await;
    assert_eq!(recv(&mut b).await["offset"], 4);
    // Another epoch is not recovered.
    let (mut c, _) = connect_ready(&server.url).await;
    send(&mut c, r#"{"type":"subscribe","payload":{"channel":"chat:room","since":{"offset":1,"epoch":"gone"}}}"#).await;
    let fresh = recv(&mut c).await;
    assert_eq!(fresh["payload"]["recovered"], false);
    assert_eq!(fresh["payload"]["missed"], 0);
    assert_eq!(fresh["payload"]["offset"], 4);
}

#[tokio::test]
async fn a_duplicate_ack_request_takes_effect_once() {
    let server = start().await;
    let (mut ws, _) = connect_ready(&server.url).await;
    send(
        &mut ws,
        r#"{"type":"subscribe","payload":{"channel":"chat:d"}}"#,
    )
    .await;
    recv(&mut ws).await;
    let frame =
        r#"{"type":"chat.msg","channel":"chat:d","payload":{},"ack":true,"messageId":"same"}"#;
    send(&mut ws, frame).await;
    assert_eq!(recv(&mut ws).await["offset"], 1);
    assert_eq!(recv(&mut ws).await["type"], "ack");
    send(&mut ws, frame).await;
    assert_eq!(recv(&mut ws).await["type"], "ack");
    send(
        &mut ws,
        r#"{"type":"chat.msg","channel":"chat:d","payload":{}}"#,
    )
    .await;
    assert_eq!(recv(&mut ws).await["offset"], 2);
}

#[tokio::test]
async fn auth_on_accepts_query_header_and_auth_frame_tokens() {
    let server = start_with(|c| c.jwt = Some(cerebrum_server::auth::JwtKey::hs256(SECRET))).await;
    let good = token(SECRET, "ada", Some(vec!["chat:*".into()]));
    let (_q, welcome) = connect_ready(&format!("{}?token={good}", server.url)).await;
    assert_eq!(welcome["payload"]["userId"], "ada");
    let mut request = server.url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {good}").parse().unwrap());
    let (mut header_ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(recv(&mut header_ws).await["type"], "welcome");
    let mut frame_ws = connect(&server.url).await;
    send_json(
        &mut frame_ws,
        &json!({"type":"auth","payload":{"token":good}}),
    )
    .await;
    assert_eq!(recv(&mut frame_ws).await["type"], "welcome");
    recv(&mut frame_ws).await;
    // The userId of a payload must be the token's sub.
    send(
        &mut frame_ws,
        r#"{"type":"study_session_start","payload":{"userId":"bob","topic":"x"},"messageId":"s"}"#,
    )
    .await;
    assert_eq!(
        error_of(&recv(&mut frame_ws).await),
        ("forbidden", Some("s"))
    );
    // The channels claim allows chat:*, not quiz:*.
    send(
        &mut frame_ws,
        r#"{"type":"subscribe","payload":{"channel":"quiz:1"}}"#,
    )
    .await;
    assert_eq!(error_of(&recv(&mut frame_ws).await).0, "forbidden");
    send(
        &mut frame_ws,
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
    )
    .await;
    assert_eq!(recv(&mut frame_ws).await["type"], "subscribed");
}

#[tokio::test]
async fn a_bad_token_is_unauthorized_and_closes_4001() {
    let server = start_with(|c| c.jwt = Some(cerebrum_server::auth::JwtKey::hs256(SECRET))).await;
    let mut ws = connect(&server.url).await;
    let bad = token("wrong", "ada", None);
    send_json(
        &mut ws,
        &json!({"type":"auth","payload":{"token":bad},"messageId":"a"}),
    )
    .await;
    assert_eq!(error_of(&recv(&mut ws).await), ("unauthorized", Some("a")));
    assert_eq!(close_code(&mut ws).await, 4001);
    let mut query = connect(&format!("{}?token=garbage", server.url)).await;
    assert_eq!(error_of(&recv(&mut query).await).0, "unauthorized");
    assert_eq!(close_code(&mut query).await, 4001);
}

#[tokio::test]
async fn no_token_in_time_closes_4001() {
    let server = start_with(|c| {
        c.jwt = Some(cerebrum_server::auth::JwtKey::hs256(SECRET));
        c.auth_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    let mut ws = connect(&server.url).await;
    assert_eq!(close_code(&mut ws).await, 4001);
}

#[tokio::test]
async fn a_silent_connection_is_closed_1001() {
    let server = start_with(|c| c.heartbeat_interval = std::time::Duration::from_millis(100)).await;
    let (mut ws, welcome) = connect_ready(&server.url).await;
    assert_eq!(welcome["payload"]["heartbeatIntervalMs"], 100);
    assert_eq!(close_code(&mut ws).await, 1001);
}

#[tokio::test]
async fn the_per_user_connection_cap_closes_the_newest_4029() {
    let server = start_with(|c| {
        c.jwt = Some(cerebrum_server::auth::JwtKey::hs256(SECRET));
        c.max_connections_per_user = 2;
    })
    .await;
    let t = token(SECRET, "ada", None);
    let url = format!("{}?token={t}", server.url);
    let (_a, _) = connect_ready(&url).await;
    let (_b, _) = connect_ready(&url).await;
    let mut c = connect(&url).await;
    assert_eq!(close_code(&mut c).await, 4029);
}

#[tokio::test]
async fn the_global_cap_answers_503_and_bad_origins_403() {
    let server = start_with(|c| {
        c.max_connections = 2;
        c.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let (_first, _) = connect_ready(&server.url).await;
    let mut request = server.url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let (_second, _) = connect_ready(&server.url).await;
    // At the cap every connection is answered 503 before anything else is looked at.
    let err = tokio_tungstenite::connect_async(server.url.as_str())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn graceful_shutdown_closes_clients_with_1001() {
    let mut server = start().await;
    let (mut a, _) = connect_ready(&server.url).await;
    let (mut b, _) = connect_ready(&server.url).await;
    let handle = server.server().shutdown_handle();
    let stopping = tokio::spawn(async move {
        handle.shutdown();
    });
    assert_eq!(close_code(&mut a).await, 1001);
    assert_eq!(close_code(&mut b).await, 1001);
    stopping.await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn healthz_metrics_and_the_admin_api() {
    let server = start_with(|c| c.admin_token = Some("admin".into())).await;
    let (status, body) = http(&server.http, "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "operational");
    assert_eq!(health["services"]["database"], true);
    let (status, metrics) = http(&server.http, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    for name in [
        "cerebrum_connections ",
        "cerebrum_frames_received_total ",
        "cerebrum_frames_sent_total ",
        "cerebrum_bytes_received_total ",
        "cerebrum_bytes_sent_total ",
        "cerebrum_errors_total{code=\"invalid_json\"} ",
        "cerebrum_rate_limited_total ",
        "cerebrum_slow_consumer_closes_total ",
        "cerebrum_channels ",
        "cerebrum_delivery_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name}");
    }
    let note = r#"{"title":"Hi","message":"m","type":"info","priority":"low","userId":"ada"}"#;
    assert_eq!(
        http(&server.http, "POST", "/api/notifications", None, Some(note))
            .await
            .0,
        401
    );
    assert_eq!(
        http(
            &server.http,
            "POST",
            "/api/notifications",
            Some("nope"),
            Some(note)
        )
        .await
        .0,
        401
    );
    let (status, body) = http(
        &server.http,
        "POST",
        "/api/notifications",
        Some("admin"),
        Some(note),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["id"].is_string());
    let publish = r#"{"channel":"news:1","type":"news.item","payload":{"a":1}}"#;
    assert_eq!(
        http(&server.http, "POST", "/api/publish", None, Some(publish))
            .await
            .0,
        401
    );
    let (status, body) = http(
        &server.http,
        "POST",
        "/api/publish",
        Some("admin"),
        Some(publish),
    )
    .await;
    assert_eq!((status, body.as_str()), (202, r#"{"offset":1}"#));
    assert_eq!(
        http(&server.http, "GET", "/nothing", None, None).await.0,
        404
    );
}

#[tokio::test]
async fn without_an_admin_token_the_admin_api_is_off_and_says_so() {
    let server = start().await;
    let (status, body) = http(&server.http, "POST", "/api/publish", Some("x"), Some("{}")).await;
    assert_eq!(status, 403);
    assert!(body.contains("admin API is off"), "{body}");
}

#[tokio::test]
async fn half_finished_handshakes_and_garbage_do_not_stop_others_or_shutdown() {
    use tokio::io::AsyncWriteExt;
    let mut server = start_with(|c| c.drain_timeout = std::time::Duration::from_millis(300)).await;
    let addr = server.server().local_addr();
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let mut garbage = tokio::net::TcpStream::connect(addr).await.unwrap();
    garbage.write_all(&[0xff; 512]).await.unwrap();
    let (mut ws, _) = connect_ready(&server.url).await;
    send(&mut ws, r#"{"type":"ping","payload":"still here"}"#).await;
    assert_eq!(recv(&mut ws).await["payload"], "still here");
    let (status, _) = http(&server.http, "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    server.stop().await;
    assert_eq!(close_code(&mut ws).await, 1001);
    drop((half, garbage));
}
