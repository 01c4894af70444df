//! Study sessions, metrics across restarts, notifications, slow consumers, presence grace.

mod common;

use std::time::Duration;

use cerebrum_protocol::Envelope;
use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn start_study(ws: &mut Ws, user: &str, topic: &str) {
    send_json(
        ws,
        &json!({"type":"study_session_start","payload":{"userId":user,"topic":topic}}),
    )
    .await;
}

#[tokio::test]
async fn study_sessions_share_presence_and_metrics_survive_a_restart() {
    let mut server = start().await;
    let (mut ada, _) = connect_ready(&server.url).await;
    let (mut bob, _) = connect_ready(&server.url).await;
    start_study(&mut ada, "ada", "Genetics").await;
    let update = recv_type(&mut ada, "collaborative_session_update").await;
    assert_eq!(update["channel"], "session:genetics");
    assert_eq!(update["payload"]["sessionId"], "session:genetics");
    assert_eq!(update["payload"]["topic"], "Genetics");
    assert_eq!(update["payload"]["activeUsers"], 1);
    // While studying, the user's metrics carry the topic.
    let studying = recv(&mut ada).await;
    assert_eq!(studying["type"], "study_metrics_update");
    assert_eq!(studying["payload"]["currentTopic"], "Genetics");
    assert_eq!(studying["payload"]["sessionDuration"], 0.0);
    start_study(&mut bob, "bob", "genetics").await;
    for ws in [&mut ada, &mut bob] {
        let update = recv_type(ws, "collaborative_session_update").await;
        if update["payload"]["activeUsers"] == 1 {
            // bob's own view may start with ada's earlier update in history? No: live only.
            panic!("expected both members: {update}");
        }
        let users: Vec<&str> = update["payload"]["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["userId"].as_str().unwrap())
            .collect();
        assert_eq!(users, ["ada", "bob"]);
        assert!(update["payload"]["participants"][0]["joinedAt"].is_u64());
    }
    send(&mut ada, r#"{"type":"study_session_end","payload":{"userId":"ada","topic":"Genetics"},"ack":true,"messageId":"end-1"}"#).await;
    let metrics = recv_type(&mut ada, "study_metrics_update").await;
    assert_eq!(metrics["channel"], "user:ada");
    let payload = &metrics["payload"];
    assert_eq!(payload["userId"], "ada");
    assert!(payload.get("currentTopic").is_none());
    let first_duration = payload["sessionDuration"].as_f64().unwrap();
    let first_hours = payload["studyHours"].as_f64().unwrap();
    assert!((first_hours - first_duration / 3600.0).abs() < 1e-12);
    assert_eq!(payload["streak"], 1);
    let ack = recv(&mut ada).await;
    assert_eq!(
        (ack["type"].as_str(), ack["payload"]["messageId"].as_str()),
        (Some("ack"), Some("end-1"))
    );
    let update = recv_type(&mut bob, "collaborative_session_update").await;
    assert_eq!(update["payload"]["activeUsers"], 1);
    assert_eq!(update["payload"]["participants"][0]["userId"], "bob");

    // Restart on the same data directory: nothing is lost.
    drop((ada, bob));
    let dir = server.dir.path().to_path_buf();
    server.stop().await;
    let restarted = cerebrum_server::Server::bind(config(&dir)).await.unwrap();
    let (mut ada, _) = connect_ready(&restarted.ws_url()).await;
    start_study(&mut ada, "ada", "Genetics").await;
    recv_type(&mut ada, "collaborative_session_update").await;
    let studying = recv_type(&mut ada, "study_metrics_update").await;
    assert_eq!(studying["payload"]["currentTopic"], "Genetics");
    assert_eq!(studying["payload"]["studyHours"], first_hours);
    send(
        &mut ada,
        r#"{"type":"study_session_end","payload":{"userId":"ada","topic":"Genetics"}}"#,
    )
    .await;
    let metrics = recv_type(&mut ada, "study_metrics_update").await;
    let payload = &metrics["payload"];
    let second = payload["sessionDuration"].as_f64().unwrap();
    let hours = payload["studyHours"].as_f64().unwrap();
    assert!(
        (hours - (first_hours + second / 3600.0)).abs() < 1e-9,
        "{payload}"
    );
    assert_eq!(payload["streak"], 1);
    restarted.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lost_connection_leaves_the_session_after_the_grace_period() {
    let server = start_with(|c| c.presence_grace = Duration::from_millis(300)).await;
    let (mut ada, _) = connect_ready(&server.url).await;
    let (mut bob, _) = connect_ready(&server.url).await;
    start_study(&mut ada, "ada", "Physics").await;
    recv_type(&mut ada, "collaborative_session_update").await;
    start_study(&mut bob, "bob", "Physics").await;
    let both = recv_type(&mut ada, "collaborative_session_update").await;
    assert_eq!(both["payload"]["activeUsers"], 2);
    drop(bob);
    let after = recv_type(&mut ada, "collaborative_session_update").await;
    assert_eq!(after["payload"]["activeUsers"], 1);
    assert_eq!(after["payload"]["participants"][0]["userId"], "ada");
    // bob's session was recorded: his metrics come from the store.
    let (mut bob, _) = connect_ready(&server.url).await;
    send(
        &mut bob,
        r#"{"type":"subscribe","payload":{"channel":"user:bob"}}"#,
    )
    .await;
    recv_type(&mut bob, "subscribed").await;
    send(
        &mut bob,
        r#"{"type":"study_session_end","payload":{"userId":"bob","topic":"Physics"}}"#,
    )
    .await;
    let metrics = recv_type(&mut bob, "study_metrics_update").await;
    assert_eq!(metrics["payload"]["streak"], 1);
}

#[tokio::test]
async fn notifications_reach_online_users_and_wait_for_offline_ones_until_acked() {
    let server = start_with(|c| {
        c.admin_token = Some("admin".into());
        c.jwt = Some(cerebrum_server::auth::JwtKey::hs256(SECRET));
    })
    .await;
    let ada_url = format!("{}?token={}", server.url, token(SECRET, "ada", None));
    let bob_url = format!("{}?token={}", server.url, token(SECRET, "bob", None));
    let (mut ada, _) = connect_ready(&ada_url).await;
    let post = |body: Value| {
        let http = server.http.clone();
        async move {
            let (status, reply) = http_post(&http, &body).await;
            assert_eq!(status, 202, "{reply}");
            serde_json::from_str::<Value>(&reply).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // Online: delivered at once, with the notification id as messageId.
    let id = post(json!({"id":"n-ada-1","title":"Streak!","message":"3 days","type":"success","priority":"high","userId":"ada"})).await;
    assert_eq!(id, "n-ada-1");
    let note = recv_type(&mut ada, "notification").await;
    assert_eq!(note["messageId"], "n-ada-1");
    assert_eq!(note["payload"]["title"], "Streak!");
    // Offline: delivered on the next connection, again and again until acked.
    let id = post(
        json!({"title":"Welcome","message":"hi","type":"info","priority":"low","userId":"bob"}),
    )
    .await;
    for _ in 0..2 {
        let (mut bob, _) = connect_ready(&bob_url).await;
        let note = recv(&mut bob).await;
        assert_eq!(
            (note["type"].as_str(), note["messageId"].as_str()),
            (Some("notification"), Some(id.as_str()))
        );
    }
    let (mut bob, _) = connect_ready(&bob_url).await;
    recv_type(&mut bob, "notification").await;
    send_json(
        &mut bob,
        &json!({"type":"ack","payload":{"messageId":id},"ack":true,"messageId":"bob-ack"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut bob, "ack").await["payload"]["messageId"],
        "bob-ack"
    );
    drop(bob);
    let (mut bob, _) = connect_ready(&bob_url).await;
    send(&mut bob, r#"{"type":"ping","payload":"after"}"#).await;
    let next = recv(&mut bob).await;
    assert_eq!(
        next["type"], "pong",
        "no notification is pending any more: {next}"
    );
    // Broadcast: everyone online gets it.
    let id = post(
        json!({"title":"Maintenance","message":"tonight","type":"warning","priority":"medium"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut ada, "notification").await["messageId"],
        id.as_str()
    );
    assert_eq!(
        recv_type(&mut bob, "notification").await["messageId"],
        id.as_str()
    );
}

async fn http_post(base: &str, body: &Value) -> (u16, String) {
    http(
        base,
        "POST",
        "/api/notifications",
        Some("admin"),
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_4008_while_others_keep_receiving() {
    let server = start_with(|c| c.outbound_queue = 64).await;
    let (mut slow, _) = connect_ready(&server.url).await;
    let (mut fast, _) = connect_ready(&server.url).await;
    for ws in [&mut slow, &mut fast] {
        send(ws, r#"{"type":"subscribe","payload":{"channel":"feed:1"}}"#).await;
        recv_type(ws, "subscribed").await;
    }
    let ctx = server.server().context().clone();
    let payload = "x".repeat(16 * 1024);
    let mut published = 0u64;
    while ctx
        .metrics
        .slow_consumer_closes
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(published < 20_000, "the slow consumer was never detected");
        let envelope = Envelope::from_value("feed.item", &payload).unwrap();
        ctx.hub
            .publish("feed:1", envelope, cerebrum_server::clock::now())
            .unwrap();
        published += 1;
        let frame = recv(&mut fast).await;
        assert_eq!(frame["offset"], published);
    }
    // The fast client keeps being served.
    ctx.hub
        .publish(
            "feed:1",
            Envelope::from_value("feed.item", &"last").unwrap(),
            cerebrum_server::clock::now(),
        )
        .unwrap();
    assert_eq!(recv(&mut fast).await["offset"], published + 1);
    // The slow one, reading at last, finds its backlog cut short by close 4008.
    loop {
        match tokio::time::timeout(PATIENCE, slow.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4008);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let (_, metrics) = http(&server.http, "GET", "/metrics", None, None).await;
    assert!(metrics.contains("cerebrum_slow_consumer_closes_total 1"));
}

#[tokio::test]
async fn a_quick_reconnect_keeps_the_member_without_flapping() {
    let server = start_with(|c| {
        c.jwt = Some(cerebrum_server::auth::JwtKey::hs256(SECRET));
        c.presence_grace = Duration::from_secs(30);
    })
    .await;
    let ada_url = format!("{}?token={}", server.url, token(SECRET, "ada", None));
    let bob_url = format!("{}?token={}", server.url, token(SECRET, "bob", None));
    let (mut bob, _) = connect_ready(&bob_url).await;
    start_study(&mut bob, "bob", "Chemistry").await;
    recv_type(&mut bob, "collaborative_session_update").await;
    let (mut ada, _) = connect_ready(&ada_url).await;
    start_study(&mut ada, "ada", "Chemistry").await;
    let joined = recv_type(&mut bob, "collaborative_session_update").await;
    assert_eq!(joined["payload"]["activeUsers"], 2);
    let joined_at = joined["payload"]["participants"][1]["joinedAt"].clone();
    // ada's connection drops and comes back within the grace period.
    drop(ada);
    let (mut ada, _) = connect_ready(&ada_url).await;
    start_study(&mut ada, "ada", "Chemistry").await;
    // The next update bob sees still has ada, joined when she first did: no leave, no rejoin.
    let next = recv_type(&mut bob, "collaborative_session_update").await;
    assert_eq!(next["payload"]["activeUsers"], 2, "{next}");
    assert_eq!(next["payload"]["participants"][1]["userId"], "ada");
    assert_eq!(next["payload"]["participants"][1]["joinedAt"], joined_at);
}

#[tokio::test]
async fn with_auth_off_a_connection_names_its_user_and_gets_its_pending_notifications() {
    let server = start_with(|c| c.admin_token = Some("admin".into())).await;
    let (status, reply) = http_post(
        &server.http,
        &json!({"id":"n-1","title":"Quiz","message":"due","type":"info","priority":"low","userId":"ada"}),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let (mut ada, welcome) = connect_ready(&server.url).await;
    assert!(welcome["payload"].get("userId").is_none());
    send(
        &mut ada,
        r#"{"type":"subscribe","payload":{"channel":"user:ada"}}"#,
    )
    .await;
    assert_eq!(recv(&mut ada).await["type"], "subscribed");
    let note = recv(&mut ada).await;
    assert_eq!(
        (note["type"].as_str(), note["messageId"].as_str()),
        (Some("notification"), Some("n-1"))
    );
    // Another user's channel is not theirs.
    send(
        &mut ada,
        r#"{"type":"subscribe","payload":{"channel":"user:bob"}}"#,
    )
    .await;
    let refused = recv(&mut ada).await;
    assert_eq!(refused["payload"]["code"], "forbidden");
}

#[tokio::test]
async fn a_graceful_shutdown_records_the_study_sessions_in_progress() {
    let mut server = start().await;
    let (mut ada, _) = connect_ready(&server.url).await;
    let (mut bob, _) = connect_ready(&server.url).await;
    start_study(&mut ada, "ada", "Genetics").await;
    start_study(&mut bob, "bob", "Physics").await;
    for ws in [&mut ada, &mut bob] {
        let studying = recv_type(ws, "study_metrics_update").await;
        assert_eq!(studying["payload"]["studyHours"], 0.0);
    }
    // Bob's connection is lost: his session is in its grace period at shutdown.
    drop(bob);
    // The sessions need a length: wait (without sleeping) until the wall clock moved on.
    let started = cerebrum_server::clock::unix_ms();
    while cerebrum_server::clock::unix_ms() < started + 2 {
        tokio::task::yield_now().await;
    }
    // Ada's client answers the server's close at once.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = ada.next().await {} });
    let dir = server.dir.path().to_path_buf();
    server.stop().await;
    reader.await.unwrap();

    let restarted = cerebrum_server::Server::bind(config(&dir)).await.unwrap();
    for (user, topic) in [("ada", "Genetics"), ("bob", "Physics")] {
        let (mut ws, _) = connect_ready(&restarted.ws_url()).await;
        start_study(&mut ws, user, topic).await;
        let studying = recv_type(&mut ws, "study_metrics_update").await;
        let hours = studying["payload"]["studyHours"].as_f64().unwrap();
        assert!(hours > 0.0, "{user}'s session was lost: {studying}");
    }
    restarted.shutdown().await.unwrap();
}

#[tokio::test]
async fn thousands_of_pending_notifications_arrive_page_by_page_and_only_the_retained_ones() {
    // 2 000 unacknowledged notifications for ada, written before the server starts (more than
    // the 1 024-frame outbox holds).
    let server = start_with(|config| {
        use cerebrum_server::store::Store as _;
        // The acks go out as fast as the notifications come.
        config.rate_limit_per_sec = 0.0;
        let store = cerebrum_server::sqlite::SqliteStore::open(&config.data_dir).unwrap();
        let now = cerebrum_server::clock::unix_ms();
        for i in 0..2000 {
            let note = cerebrum_protocol::Notification {
                id: format!("n-{i:04}"),
                title: "Quiz".into(),
                message: format!("number {i}"),
                kind: cerebrum_protocol::NotificationKind::Info,
                priority: cerebrum_protocol::Priority::Low,
                action_url: None,
                action_text: None,
            };
            store.save_notification(&note, Some("ada"), now).unwrap();
        }
    })
    .await;
    let (mut ada, _) = connect_ready(&server.url).await;
    send(
        &mut ada,
        r#"{"type":"subscribe","payload":{"channel":"user:ada"}}"#,
    )
    .await;
    let mut received: Vec<String> = Vec::new();
    let mut first_page_checked = false;
    while received.len() < 500 {
        let frame = recv(&mut ada).await;
        match frame["type"].as_str() {
            Some("notification") => {
                let id = frame["messageId"].as_str().unwrap().to_owned();
                received.push(id);
            }
            Some("subscribed" | "pong") => continue,
            other => panic!("unexpected {other:?}: {frame}"),
        }
        if received.len() == 50 && !first_page_checked {
            // The first page is all there is until it is acknowledged: a ping sent now is
            // answered before any 51st notification.
            first_page_checked = true;
            send(&mut ada, r#"{"type":"ping","payload":{"n":1}}"#).await;
            assert_eq!(recv(&mut ada).await["type"], "pong");
            for id in &received {
                send_json(&mut ada, &json!({"type":"ack","payload":{"messageId":id}})).await;
            }
        } else if first_page_checked {
            let id = received.last().unwrap();
            send_json(&mut ada, &json!({"type":"ack","payload":{"messageId":id}})).await;
        }
    }
    // All were acknowledged: nothing more comes.
    send(&mut ada, r#"{"type":"ping","payload":{"n":2}}"#).await;
    assert_eq!(recv(&mut ada).await["type"], "pong");
    // The newest 500 are kept (retention), oldest first.
    let expected: Vec<String> = (1500..2000).map(|i| format!("n-{i:04}")).collect();
    assert_eq!(received, expected);
}

/// Issue 14: two tabs of one user get the same first page of pending notifications; the user
/// acknowledges it in one tab only. The other tab must move on to the next page too (it used to
/// wait for acks of its own until it reconnected), and never get an acknowledged one again.
#[tokio::test]
async fn a_page_acknowledged_in_another_tab_of_the_user_moves_both_tabs_on() {
    let server = start_with(|config| {
        use cerebrum_server::store::Store as _;
        config.rate_limit_per_sec = 0.0;
        let store = cerebrum_server::sqlite::SqliteStore::open(&config.data_dir).unwrap();
        let now = cerebrum_server::clock::unix_ms();
        for i in 0..60 {
            let note = cerebrum_protocol::Notification {
                id: format!("n-{i:04}"),
                title: "Quiz".into(),
                message: format!("number {i}"),
                kind: cerebrum_protocol::NotificationKind::Info,
                priority: cerebrum_protocol::Priority::Low,
                action_url: None,
                action_text: None,
            };
            store.save_notification(&note, Some("ada"), now).unwrap();
        }
    })
    .await;
    let ids = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| format!("n-{i:04}")).collect()
    };
    let mut tabs = Vec::new();
    for _ in 0..2 {
        let (mut tab, _) = connect_ready(&server.url).await;
        send(
            &mut tab,
            r#"{"type":"subscribe","payload":{"channel":"user:ada"}}"#,
        )
        .await;
        assert_eq!(recv_notifications(&mut tab, 50).await, ids(0..50));
        tabs.push(tab);
    }
    let [mut tab1, mut tab2] = <[Ws; 2]>::try_from(tabs).unwrap();
    // The user reads the page in tab 2: every notification of it acknowledged there.
    for id in ids(0..50) {
        send_json(&mut tab2, &json!({"type":"ack","payload":{"messageId":id}})).await;
    }
    assert_eq!(recv_notifications(&mut tab2, 10).await, ids(50..60));
    // Tab 1 gets the next page as well, and nothing of the first again.
    assert_eq!(recv_notifications(&mut tab1, 10).await, ids(50..60));
    send(&mut tab1, r#"{"type":"ping","payload":{"n":1}}"#).await;
    assert_eq!(next_but_status(&mut tab1).await["type"], "pong");
}

/// The next frame other than the periodic `system_status`.
async fn next_but_status(ws: &mut Ws) -> Value {
    loop {
        let frame = recv(ws).await;
        if frame["type"] != "system_status" {
            return frame;
        }
    }
}

/// The ids of the next `n` notifications (skipping `subscribed`, `pong` and the periodic
/// `system_status`), within [`PATIENCE`] in all.
async fn recv_notifications(ws: &mut Ws, n: usize) -> Vec<String> {
    let next = async {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let frame = recv(ws).await;
            match frame["type"].as_str() {
                Some("notification") => {
                    ids.push(frame["messageId"].as_str().unwrap_or_default().to_owned());
                }
                Some("subscribed" | "pong" | "system_status") => {}
                other => panic!("unexpected {other:?}: {frame}"),
            }
        }
        ids
    };
    match tokio::time::timeout(PATIENCE, next).await {
        Ok(ids) => ids,
        Err(_) => panic!("{n} notifications did not arrive in time"),
    }
}

/// The same through two nodes sharing one store (two servers on one SQLite file): the node of
/// tab 1 does not hear of tab 2's acks, and reads the store again after `pending_recheck`.
#[tokio::test]
async fn a_page_acknowledged_through_another_node_moves_on_at_the_next_read_of_the_store() {
    let first = start_with(|config| {
        use cerebrum_server::store::Store as _;
        config.rate_limit_per_sec = 0.0;
        config.pending_recheck = Duration::from_millis(200);
        let store = cerebrum_server::sqlite::SqliteStore::open(&config.data_dir).unwrap();
        let now = cerebrum_server::clock::unix_ms();
        for i in 0..60 {
            let note = cerebrum_protocol::Notification {
                id: format!("n-{i:04}"),
                title: "Quiz".into(),
                message: format!("number {i}"),
                kind: cerebrum_protocol::NotificationKind::Info,
                priority: cerebrum_protocol::Priority::Low,
                action_url: None,
                action_text: None,
            };
            store.save_notification(&note, Some("ada"), now).unwrap();
        }
    })
    .await;
    let shared = first.dir.path().to_path_buf();
    let second = start_with(|config| {
        config.rate_limit_per_sec = 0.0;
        config.data_dir = shared;
    })
    .await;
    let ids = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| format!("n-{i:04}")).collect()
    };
    let mut tabs = Vec::new();
    for url in [&first.url, &second.url] {
        let (mut tab, _) = connect_ready(url).await;
        send(
            &mut tab,
            r#"{"type":"subscribe","payload":{"channel":"user:ada"}}"#,
        )
        .await;
        assert_eq!(recv_notifications(&mut tab, 50).await, ids(0..50));
        tabs.push(tab);
    }
    let [mut tab1, mut tab2] = <[Ws; 2]>::try_from(tabs).unwrap();
    for id in ids(0..50) {
        send_json(&mut tab2, &json!({"type":"ack","payload":{"messageId":id}})).await;
    }
    assert_eq!(recv_notifications(&mut tab2, 10).await, ids(50..60));
    assert_eq!(recv_notifications(&mut tab1, 10).await, ids(50..60));
    send(&mut tab1, r#"{"type":"ping","payload":{"n":1}}"#).await;
    assert_eq!(recv(&mut tab1).await["type"], "pong");
}
