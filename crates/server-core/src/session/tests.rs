#![allow(clippy::field_reassign_with_default)]

use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::ServerConfig;
use crate::auth::JwtKey;
use crate::broker::{Claimed, MemoryBroker};
use crate::testing::mint_hs256;

fn ctx_with(config: ServerConfig) -> Arc<Context> {
    Context::new(
        config,
        MemoryBroker::new(100, Duration::from_secs(300), 1),
        false,
        7,
        crate::testing::now(),
    )
    .unwrap()
}

fn ctx() -> Arc<Context> {
    ctx_with(ServerConfig::default())
}

fn auth_ctx() -> Arc<Context> {
    let mut config = ServerConfig::default();
    config.jwt = Some(JwtKey::hs256("secret"));
    ctx_with(config)
}

struct Client {
    session: Session,
    outbox: Arc<Outbox>,
}

impl Client {
    fn new(ctx: &Arc<Context>, token: Option<&str>, now: Now) -> Self {
        let outbox = Outbox::new(1024);
        let session = Session::new(ctx.clone(), outbox.clone(), token, now);
        Self { session, outbox }
    }

    fn frames(&self) -> Vec<Value> {
        let mut frames = Vec::new();
        self.outbox.drain_into(&mut frames);
        frames
            .iter()
            .map(|f| serde_json::from_str(f.text.as_str()).unwrap())
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        let mut frames = Vec::new();
        self.outbox.drain_into(&mut frames);
        frames.iter().map(|f| f.text.as_str().to_owned()).collect()
    }

    fn send(&mut self, text: &str, now: Now) -> Vec<Value> {
        self.session.handle_text(text, now);
        self.frames()
    }

    fn effects(&mut self) -> Vec<Effect> {
        std::iter::from_fn(|| self.session.poll_effect()).collect()
    }
}

fn types(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .map(|f| f["type"].as_str().unwrap_or(""))
        .collect()
}

fn only_error(frames: &[Value]) -> (String, Option<String>, String) {
    assert_eq!(types(frames), vec!["error"], "{frames:?}");
    let payload = &frames[0]["payload"];
    (
        payload["code"].as_str().unwrap().to_owned(),
        payload["refId"].as_str().map(str::to_owned),
        payload["message"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn welcome_then_system_status_first() {
    let ctx = ctx();
    let now = crate::testing::now();
    let client = Client::new(&ctx, None, now);
    let frames = client.frames();
    assert_eq!(types(&frames), vec!["welcome", "system_status"]);
    let welcome = &frames[0]["payload"];
    assert_eq!(welcome["protocol"], 1);
    assert_eq!(welcome["heartbeatIntervalMs"], 30_000);
    assert_eq!(
        welcome["features"],
        serde_json::json!(["ack", "channels", "presence", "resume"])
    );
    assert!(welcome.get("userId").is_none());
    assert!(
        welcome["connectionId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
}

#[test]
fn ping_is_answered_with_the_payload_byte_for_byte() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    client.session.handle_text(
        r#"{"type":"ping","payload":{"nonce": 7,  "b":[1.50, "x"]},"messageId":"p1"}"#,
        now,
    );
    let texts = client.texts();
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with(r#"{"type":"pong","payload":{"nonce": 7,  "b":[1.50, "x"]},"#),
        "{}",
        texts[0]
    );
}

#[test]
fn every_frame_error_has_its_code_and_ref_id_and_keeps_the_connection() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    let cases = [
        ("{not json", "invalid_json", None),
        ("[1,2]", "invalid_envelope", None),
        (r#"{"payload":{}}"#, "invalid_envelope", None),
        (r#"{"type":"Bad Type"}"#, "invalid_envelope", None),
        (
            r#"{"type":"Bad Type","messageId":"b1"}"#,
            "invalid_envelope",
            Some("b1"),
        ),
        (
            r#"{"payload":1,"messageId":"b2"}"#,
            "invalid_envelope",
            Some("b2"),
        ),
        (
            r#"{"type":"x","channel":"no spaces","messageId":"b3"}"#,
            "validation_failed",
            Some("b3"),
        ),
        (r#"{"type":"x","messageId":""}"#, "invalid_envelope", None),
        (
            r#"{"type":"no_such_type","messageId":"m1"}"#,
            "unknown_type",
            Some("m1"),
        ),
        (
            r#"{"type":"study_session_start","payload":{"topic":"Genetics"},"messageId":"m2"}"#,
            "validation_failed",
            Some("m2"),
        ),
        (
            r#"{"type":"subscribe","payload":{"channel":"bad channel"},"messageId":"m3"}"#,
            "validation_failed",
            Some("m3"),
        ),
        (
            r#"{"type":"unsubscribe","payload":{"channel":"chat:1"},"messageId":"m4"}"#,
            "not_subscribed",
            Some("m4"),
        ),
        (
            r#"{"type":"chat.msg","channel":"chat:1","payload":{},"messageId":"m5"}"#,
            "not_subscribed",
            Some("m5"),
        ),
        (
            r#"{"type":"x","channel":"system","payload":{},"messageId":"m6"}"#,
            "forbidden",
            Some("m6"),
        ),
        (
            r#"{"type":"unsubscribe","payload":{"channel":"system"},"messageId":"m7"}"#,
            "forbidden",
            Some("m7"),
        ),
    ];
    for (i, (frame, code, ref_id)) in cases.into_iter().enumerate() {
        let frames = client.send(frame, now.plus_ms(i as u64 * 100));
        let (got, got_ref, message) = only_error(&frames);
        assert_eq!(
            (got.as_str(), got_ref.as_deref()),
            (code, ref_id),
            "{frame}"
        );
        if code == "validation_failed" && frame.contains("study_session_start") {
            assert!(message.contains("userId"), "{message}");
        }
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (code, _, _) = only_error(&client.send(&deep, now.plus_ms(5_000)));
    assert_eq!(code, "validation_failed");
    client.session.handle_binary(3, now.plus_ms(5_100));
    let (code, _, _) = only_error(&client.frames());
    assert_eq!(code, "unsupported_frame");
    assert!(client.effects().is_empty());
    assert!(client.session.is_ready());
    assert_eq!(ctx.metrics.errors_of(&ErrorCode::Forbidden), 2);
    assert_eq!(ctx.metrics.errors_of(&ErrorCode::InvalidEnvelope), 6);
}

#[test]
fn a_failed_ack_frame_gets_the_error_and_no_ack() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    let frames = client.send(
        r#"{"type":"x.y","channel":"chat:1","ack":true,"messageId":"a1"}"#,
        now,
    );
    let (code, ref_id, _) = only_error(&frames);
    assert_eq!(
        (code.as_str(), ref_id.as_deref()),
        ("not_subscribed", Some("a1"))
    );
    // Once subscribed, the same id is processed (the failure was not remembered).
    client.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    let frames = client.send(
        r#"{"type":"x.y","channel":"chat:1","ack":true,"messageId":"a1"}"#,
        now,
    );
    assert_eq!(types(&frames), vec!["x.y", "ack"]);
    assert_eq!(frames[1]["payload"]["messageId"], "a1");
}

#[test]
fn a_duplicate_ack_request_is_acked_again_and_processed_once() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    client.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    let frame = r#"{"type":"chat.msg","channel":"chat:1","payload":{"t":1},"ack":true,"messageId":"dup-1"}"#;
    let first = client.send(frame, now);
    assert_eq!(types(&first), vec!["chat.msg", "ack"]);
    assert_eq!(first[0]["offset"], 1);
    let second = client.send(frame, now);
    assert_eq!(types(&second), vec!["ack"]);
    // A reconnect of the same (anonymous) connection key is another connection: but the same
    // user across connections shares the window.
    let third = client.send(
        r#"{"type":"chat.msg","channel":"chat:1","payload":{"t":2},"ack":true,"messageId":"dup-2"}"#,
        now,
    );
    assert_eq!(third[0]["offset"], 2);
}

#[test]
fn duplicates_are_recognised_across_connections_of_one_user() {
    let ctx = auth_ctx();
    let now = crate::testing::now();
    let token = mint_hs256(b"secret", "ada", None, 3600, Some(vec!["chat:*".into()])).unwrap();
    let mut a = Client::new(&ctx, Some(&token), now);
    let mut b = Client::new(&ctx, Some(&token), now);
    a.frames();
    b.frames();
    a.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    b.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    let frame = r#"{"type":"chat.msg","channel":"chat:1","ack":true,"messageId":"same"}"#;
    a.send(frame, now);
    let again = b.send(frame, now);
    // b saw a's publication once, then only the ack of its own duplicate.
    assert_eq!(types(&again), vec!["chat.msg", "ack"]);
}

#[test]
fn the_rate_limit_refuses_past_the_burst_and_closes_after_repeated_abuse() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    for _ in 0..40 {
        client.session.handle_text(r#"{"type":"ping"}"#, now);
    }
    assert_eq!(types(&client.frames()), vec!["pong"; 40]);
    for i in 0..4 {
        let (code, _, _) = only_error(&client.send(r#"{"type":"ping","messageId":"r"}"#, now));
        assert_eq!(code, "rate_limited", "hit {i}");
        assert!(client.effects().is_empty());
    }
    let (code, ref_id, _) = only_error(&client.send(r#"{"type":"ping","messageId":"r"}"#, now));
    assert_eq!(
        (code.as_str(), ref_id.as_deref()),
        ("rate_limited", Some("r"))
    );
    assert_eq!(
        client.effects(),
        vec![Effect::Close {
            code: close_code::POLICY,
            reason: "rate limit exceeded repeatedly"
        }]
    );
    assert_eq!(
        ctx.metrics
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
}

#[test]
fn rate_limit_zero_turns_it_off() {
    let mut config = ServerConfig::default();
    config.rate_limit_per_sec = 0.0;
    let ctx = ctx_with(config);
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    for _ in 0..500 {
        client.session.handle_text(r#"{"type":"ping"}"#, now);
    }
    assert_eq!(client.frames().len(), 500);
}

proptest! {
    /// Over simulated time, the session admits no more than burst + rate × elapsed frames.
    #[test]
    fn the_session_admits_exactly_the_configured_budget(gaps in proptest::collection::vec(0u64..120, 1..200)) {
        let mut config = ServerConfig::default();
        config.abuse_limit = usize::MAX;
        let ctx = ctx_with(config);
        let start = crate::testing::now();
        let mut client = Client::new(&ctx, None, start);
        client.frames();
        let mut now = start;
        let mut pongs = 0usize;
        for gap in gaps {
            now = now.plus_ms(gap);
            let frames = client.send(r#"{"type":"ping"}"#, now);
            pongs += types(&frames).iter().filter(|t| **t == "pong").count();
            let elapsed = now.mono.duration_since(start.mono).as_secs_f64();
            prop_assert!(pongs as f64 <= 40.0 + 20.0 * elapsed + 1e-6);
        }
    }
}

#[test]
fn silence_closes_1001_after_twice_the_heartbeat() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    let idle_at = client.session.poll_timeout();
    assert_eq!(idle_at, now.mono + Duration::from_secs(60));
    client.session.handle_timeout(now.plus_ms(59_999));
    assert!(client.effects().is_empty());
    client
        .session
        .handle_text(r#"{"type":"ping"}"#, now.plus_ms(59_999));
    client.session.handle_timeout(now.plus_ms(60_000));
    assert!(client.effects().is_empty());
    client.session.handle_timeout(now.plus_ms(119_999));
    assert_eq!(
        client.effects(),
        vec![Effect::Close {
            code: close_code::GOING_AWAY,
            reason: "idle"
        }]
    );
}

#[test]
fn auth_on_waits_for_a_token_and_closes_4001_without_one() {
    let ctx = auth_ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    assert!(client.frames().is_empty());
    let (code, _, _) = only_error(&client.send(r#"{"type":"ping"}"#, now));
    assert_eq!(code, "unauthorized");
    assert_eq!(
        client.session.poll_timeout(),
        now.mono + Duration::from_secs(10)
    );
    client.session.handle_timeout(now.plus_ms(10_000));
    assert_eq!(
        client.effects(),
        vec![Effect::Close {
            code: close_code::UNAUTHORIZED,
            reason: "no token before the deadline"
        }]
    );
}

#[test]
fn an_auth_frame_with_a_bad_token_is_unauthorized_and_closes_4001() {
    let ctx = auth_ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    let bad = mint_hs256(b"other", "ada", None, 3600, None).unwrap();
    let frames = client.send(
        &format!(r#"{{"type":"auth","payload":{{"token":"{bad}"}},"messageId":"au"}}"#),
        now,
    );
    let (code, ref_id, _) = only_error(&frames);
    assert_eq!(
        (code.as_str(), ref_id.as_deref()),
        ("unauthorized", Some("au"))
    );
    assert!(matches!(
        client.effects()[..],
        [Effect::Close {
            code: close_code::UNAUTHORIZED,
            ..
        }]
    ));
}

#[test]
fn a_valid_auth_frame_gets_welcome_with_the_user_and_payload_users_must_match() {
    let ctx = auth_ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    let token = mint_hs256(b"secret", "ada", Some("Ada"), 3600, None).unwrap();
    let frames = client.send(
        &format!(r#"{{"type":"auth","payload":{{"token":"{token}"}}}}"#),
        now,
    );
    assert_eq!(types(&frames), vec!["welcome", "system_status"]);
    assert_eq!(frames[0]["payload"]["userId"], "ada");
    assert_eq!(
        client.effects(),
        vec![Effect::DeliverPending {
            user_id: "ada".into()
        }]
    );
    let (code, ref_id, _) = only_error(&client.send(
        r#"{"type":"study_session_start","payload":{"userId":"bob","topic":"Genetics"},"messageId":"s1"}"#,
        now,
    ));
    assert_eq!(
        (code.as_str(), ref_id.as_deref()),
        ("forbidden", Some("s1"))
    );
    // Without the channels claim, app channels are forbidden; user channels of others too.
    for channel in ["chat:1", "user:bob"] {
        let (code, _, _) = only_error(&client.send(
            &format!(r#"{{"type":"subscribe","payload":{{"channel":"{channel}"}}}}"#),
            now,
        ));
        assert_eq!(code, "forbidden");
    }
    let frames = client.send(
        r#"{"type":"subscribe","payload":{"channel":"session:genetics"}}"#,
        now,
    );
    assert_eq!(types(&frames), vec!["subscribed"]);
}

#[test]
fn the_connections_per_user_limit_closes_the_newest_with_4029() {
    let mut config = ServerConfig::default();
    config.jwt = Some(JwtKey::hs256("secret"));
    config.max_connections_per_user = 2;
    let ctx = ctx_with(config);
    let now = crate::testing::now();
    let token = mint_hs256(b"secret", "ada", None, 3600, None).unwrap();
    let mut a = Client::new(&ctx, Some(&token), now);
    let mut b = Client::new(&ctx, Some(&token), now);
    let mut c = Client::new(&ctx, Some(&token), now);
    assert!(a.session.is_ready() && b.session.is_ready());
    assert!(matches!(
        c.effects()[..],
        [Effect::Close {
            code: close_code::TOO_MANY_CONNECTIONS,
            ..
        }]
    ));
    a.effects();
    a.session.disconnect(now);
    let mut d = Client::new(&ctx, Some(&token), now);
    assert!(d.session.is_ready());
    let _ = (b.effects(), d.effects());
}

#[test]
fn study_sessions_update_every_member_and_end_with_a_store_effect() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut ada = Client::new(&ctx, None, now);
    let mut bob = Client::new(&ctx, None, now);
    ada.frames();
    bob.frames();
    let frames = ada.send(
        r#"{"type":"study_session_start","payload":{"userId":"ada","topic":"Cell Biology"}}"#,
        now,
    );
    assert_eq!(types(&frames), vec!["collaborative_session_update"]);
    assert_eq!(frames[0]["channel"], "session:cell-biology");
    assert_eq!(frames[0]["payload"]["activeUsers"], 1);
    assert_eq!(
        ada.effects(),
        vec![
            Effect::DeliverPending {
                user_id: "ada".into()
            },
            Effect::StudyStarted {
                user_id: "ada".into(),
                topic: "Cell Biology".into()
            }
        ]
    );
    bob.send(
        r#"{"type":"study_session_start","payload":{"userId":"bob","topic":"cell biology"}}"#,
        now.plus_ms(1000),
    );
    let update = ada.frames();
    assert_eq!(update[0]["payload"]["activeUsers"], 2);
    let names: Vec<&str> = update[0]["payload"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["userId"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["ada", "bob"]);
    bob.effects();
    let frames = bob.send(
        r#"{"type":"study_session_end","payload":{"userId":"bob","topic":"Cell Biology"},"ack":true,"messageId":"e1"}"#,
        now.plus_ms(61_000),
    );
    // No ack yet: it follows the store write.
    assert!(types(&frames).iter().all(|t| *t != "ack"));
    let effects = bob.effects();
    match &effects[..] {
        [
            Effect::FinishStudy {
                user_id,
                finished: Some(done),
                ack: Some(ack),
            },
        ] => {
            assert_eq!(user_id, "bob");
            assert_eq!(done.duration_secs, 60.0);
            assert_eq!(ack.as_str(), "e1");
        }
        other => panic!("unexpected {other:?}"),
    }
    let update = ada.frames();
    assert_eq!(update[0]["payload"]["activeUsers"], 1);
}

#[test]
fn app_publications_reach_subscribers_in_offset_order() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut a = Client::new(&ctx, None, now);
    let mut b = Client::new(&ctx, None, now);
    a.frames();
    b.frames();
    let sub = a.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    assert_eq!(sub[0]["payload"]["offset"], 0);
    b.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    for i in 0..5 {
        a.send(
            &format!(r#"{{"type":"chat.msg","channel":"chat:1","payload":{{"i":{i}}}}}"#),
            now,
        );
    }
    let offsets: Vec<u64> = b
        .frames()
        .iter()
        .map(|f| f["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, vec![1, 2, 3, 4, 5]);
    let unsub = b.send(
        r#"{"type":"unsubscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    assert_eq!(types(&unsub), vec!["unsubscribed"]);
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9:_ .-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn frame() -> impl Strategy<Value = String> {
    let kinds = prop_oneof![
        Just("ping".to_owned()),
        Just("auth".to_owned()),
        Just("subscribe".to_owned()),
        Just("unsubscribe".to_owned()),
        Just("study_session_start".to_owned()),
        Just("study_session_end".to_owned()),
        Just("ack".to_owned()),
        Just("welcome".to_owned()),
        "[a-z._:-]{1,10}",
    ];
    let envelope = (
        kinds,
        json_value(),
        proptest::option::of("[a-z0-9]{1,8}"),
        proptest::option::of(prop_oneof![
            Just("chat:1".to_owned()),
            Just("system".to_owned()),
            Just("user:u".to_owned()),
            Just("session:x".to_owned()),
            "[a-z:]{1,6}",
        ]),
        any::<bool>(),
    )
        .prop_map(|(kind, payload, id, channel, ack)| {
            let mut object = serde_json::Map::new();
            object.insert("type".into(), Value::String(kind));
            object.insert("payload".into(), payload);
            if let Some(id) = id {
                object.insert("messageId".into(), Value::String(id));
            }
            if let Some(channel) = channel {
                object.insert("channel".into(), Value::String(channel));
            }
            object.insert("ack".into(), Value::Bool(ack));
            Value::Object(object).to_string()
        });
    prop_oneof![
        envelope,
        json_value().prop_map(|v| v.to_string()),
        ".{0,64}"
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Nothing panics on input; every frame is answered by at most a few frames, and only the
    /// rate limit (never a frame error) asks to close.
    #[test]
    fn arbitrary_frames_never_panic_and_never_close(frames in proptest::collection::vec(frame(), 1..40)) {
        let mut config = ServerConfig::default();
        config.rate_limit_per_sec = 0.0;
        let ctx = ctx_with(config);
        let now = crate::testing::now();
        let mut client = Client::new(&ctx, None, now);
        client.frames();
        for (i, text) in frames.iter().enumerate() {
            client.session.handle_text(text, now.plus_ms(i as u64));
            for effect in client.effects() {
                prop_assert!(!matches!(effect, Effect::Close { .. }), "{text} closed: {effect:?}");
            }
            client.frames();
        }
        prop_assert!(client.session.is_ready());
    }
}

// ----- PROTOCOL.md sections 3, 5 and 7: reserved types, caps, outbound bound, token expiry -----

#[test]
fn a_publication_with_a_server_type_is_forbidden_and_not_delivered() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut alice = Client::new(&ctx, None, now);
    let mut bob = Client::new(&ctx, None, now);
    for client in [&mut alice, &mut bob] {
        client.frames();
        client.send(
            r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
            now,
        );
    }
    bob.frames();
    for (i, kind) in cerebrum_protocol::ServerMessage::TYPES.iter().enumerate() {
        let frame = format!(
            r#"{{"type":"{kind}","channel":"chat:1","payload":{{"messageId":"x"}},"messageId":"f{i}"}}"#
        );
        let (code, ref_id, message) = only_error(&alice.send(&frame, now));
        assert_eq!(code, "forbidden", "{kind}");
        assert_eq!(ref_id.as_deref(), Some(format!("f{i}").as_str()));
        assert!(message.contains(kind), "{message}");
    }
    assert!(bob.frames().is_empty(), "nothing forged was delivered");
    // App types still go through.
    let frames = alice.send(
        r#"{"type":"chat.message","channel":"chat:1","payload":{"text":"hi"}}"#,
        now,
    );
    assert_eq!(types(&frames), vec!["chat.message"]);
}

#[test]
fn the_channel_cap_answers_limit_exceeded_and_keeps_the_connection() {
    let mut config = ServerConfig::default();
    config.rate_limit_per_sec = 0.0;
    let ctx = ctx_with(config);
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    // The user's own channel and `system` do not count.
    client.send(
        r#"{"type":"subscribe","payload":{"channel":"user:ada"}}"#,
        now,
    );
    for i in 0..128 {
        let frames = client.send(
            &format!(r#"{{"type":"subscribe","payload":{{"channel":"chat:{i}"}}}}"#),
            now,
        );
        assert_eq!(types(&frames), vec!["subscribed"], "channel {i}");
    }
    let (code, ref_id, message) = only_error(&client.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:128"},"messageId":"s129"}"#,
        now,
    ));
    assert_eq!(
        (code.as_str(), ref_id.as_deref()),
        ("limit_exceeded", Some("s129"))
    );
    assert!(message.contains("128"), "{message}");
    // Subscribing again to a channel it is on is no new channel.
    let frames = client.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:5"}}"#,
        now,
    );
    assert_eq!(types(&frames), vec!["subscribed"]);
    // Leaving one makes room.
    client.send(
        r#"{"type":"unsubscribe","payload":{"channel":"chat:0"}}"#,
        now,
    );
    let frames = client.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:128"}}"#,
        now,
    );
    assert_eq!(types(&frames), vec!["subscribed"]);
    assert!(client.session.is_ready());
    assert_eq!(ctx.metrics.errors_of(&ErrorCode::LimitExceeded), 1);
}

#[test]
fn the_study_session_cap_is_per_user_across_connections() {
    let mut config = ServerConfig::default();
    config.rate_limit_per_sec = 0.0;
    let ctx = ctx_with(config);
    let now = crate::testing::now();
    let mut first = Client::new(&ctx, None, now);
    let mut second = Client::new(&ctx, None, now);
    first.frames();
    second.frames();
    for i in 0..16 {
        let client = if i % 2 == 0 { &mut first } else { &mut second };
        let frames = client.send(
            &format!(
                r#"{{"type":"study_session_start","payload":{{"userId":"ada","topic":"Topic {i}"}},"messageId":"t{i}","ack":true}}"#
            ),
            now,
        );
        assert!(types(&frames).contains(&"ack"), "session {i}: {frames:?}");
    }
    let (code, ref_id, _) = only_error(&second.send(
        r#"{"type":"study_session_start","payload":{"userId":"ada","topic":"Topic 16"},"messageId":"t16","ack":true}"#,
        now,
    ));
    assert_eq!(
        (code.as_str(), ref_id.as_deref()),
        ("limit_exceeded", Some("t16"))
    );
    // A session the user is already in is no new session.
    let frames = first.send(
        r#"{"type":"study_session_start","payload":{"userId":"ada","topic":"Topic 3"},"messageId":"t3b","ack":true}"#,
        now,
    );
    assert!(types(&frames).contains(&"ack"), "{frames:?}");
    // Another user is not affected.
    let mut bob = Client::new(&ctx, None, now);
    bob.frames();
    let frames = bob.send(
        r#"{"type":"study_session_start","payload":{"userId":"bob","topic":"Topic 1"},"messageId":"b1","ack":true}"#,
        now,
    );
    assert!(types(&frames).contains(&"ack"), "{frames:?}");
}

#[test]
fn topics_longer_than_128_characters_are_refused() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    let topic = "é".repeat(129);
    let (code, _, message) = only_error(&client.send(
        &format!(
            r#"{{"type":"study_session_start","payload":{{"userId":"ada","topic":"{topic}x"}}}}"#
        ),
        now,
    ));
    assert_eq!(code, "validation_failed");
    assert!(message.contains("topic"), "{message}");
    let ok = "é".repeat(127) + "x";
    let frames = client.send(
        &format!(r#"{{"type":"study_session_start","payload":{{"userId":"ada","topic":"{ok}"}}}}"#),
        now,
    );
    assert!(
        types(&frames).contains(&"collaborative_session_update"),
        "{frames:?}"
    );
}

#[test]
fn inbound_bytes_over_the_budget_are_rate_limited_and_count_toward_1008() {
    let mut config = ServerConfig::default();
    config.rate_limit_per_sec = 0.0;
    let ctx = ctx_with(config);
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    client.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    let big = format!(
        r#"{{"type":"chat.blob","channel":"chat:1","payload":"{}"}}"#,
        "x".repeat(60_000)
    );
    // The 1 MiB burst lets 17 such frames through at once, the 18th is refused.
    for i in 0..17 {
        let frames = client.send(&big, now);
        assert_eq!(types(&frames), vec!["chat.blob"], "frame {i}");
    }
    let (code, _, message) = only_error(&client.send(&big, now));
    assert_eq!(code, "rate_limited");
    assert!(message.contains("bytes"), "{message}");
    // A second later 256 KiB came back: four frames pass again.
    let later = now.plus_ms(1_000);
    for _ in 0..4 {
        assert_eq!(types(&client.send(&big, later)), vec!["chat.blob"]);
    }
    // Five refusals within 10 s close the connection with 1008.
    for _ in 0..4 {
        client.send(&big, later);
    }
    assert_eq!(
        client.effects(),
        vec![Effect::Close {
            code: close_code::POLICY,
            reason: "rate limit exceeded repeatedly"
        }]
    );
}

#[test]
fn a_publication_too_large_once_delivered_gets_too_large() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.frames();
    client.send(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    let head = r#"{"type":"chat.blob","channel":"chat:1","payload":""#;
    let tail = r#"","messageId":"big"}"#;
    let fill = cerebrum_protocol::MAX_FRAME_BYTES - head.len() - tail.len();
    let frame = format!("{head}{}{tail}", "x".repeat(fill));
    assert_eq!(frame.len(), cerebrum_protocol::MAX_FRAME_BYTES);
    let (code, ref_id, _) = only_error(&client.send(&frame, now));
    assert_eq!(
        (code.as_str(), ref_id.as_deref()),
        ("too_large", Some("big"))
    );
    // With room for the fields the server adds, it is delivered, and under the limit.
    let fill = fill - 120;
    let frame = format!("{head}{}{tail}", "x".repeat(fill));
    let texts = {
        client.session.handle_text(&frame, now.plus_ms(100));
        client.texts()
    };
    assert_eq!(texts.len(), 1);
    assert!(texts[0].len() <= cerebrum_protocol::MAX_FRAME_BYTES);
    // A timestamp is written anew: `1e15` grows to 16 digits, so it is counted in full.
    let tail = r#"","messageId":"grow","timestamp":1e15}"#;
    let fill = cerebrum_protocol::MAX_FRAME_BYTES - head.len() - tail.len() - 40;
    let frame = format!("{head}{}{tail}", "x".repeat(fill));
    let (code, _, _) = only_error(&client.send(&frame, now.plus_ms(200)));
    assert_eq!(code, "too_large");
}

#[test]
fn a_connection_closes_with_4001_when_its_token_expires_and_a_fresh_token_extends_it() {
    let ctx = auth_ctx();
    let now = crate::testing::now();
    let token = mint_hs256(b"secret", "ada", None, 60, None).unwrap();
    let mut client = Client::new(&ctx, Some(&token), now);
    assert_eq!(types(&client.frames()), vec!["welcome", "system_status"]);
    client.effects();
    let expires = client.session.poll_timeout();
    assert!(expires <= now.mono + Duration::from_secs(60), "{expires:?}");
    // Before expiry a fresh token of the same user moves the deadline.
    let fresh = mint_hs256(b"secret", "ada", None, 3_600, None).unwrap();
    client.send(
        &format!(r#"{{"type":"auth","payload":{{"token":"{fresh}"}},"messageId":"r1"}}"#),
        now.plus_ms(30_000),
    );
    client.session.handle_activity(now.plus_ms(59_000));
    client.session.handle_timeout(now.plus_ms(61_000));
    let effects = client.effects();
    assert!(
        effects.is_empty(),
        "the fresh token keeps it open: {effects:?}"
    );
    // A connection whose token runs out is told so and closed with 4001.
    let short = mint_hs256(b"secret", "bob", None, 2, None).unwrap();
    let mut bob = Client::new(&ctx, Some(&short), now);
    bob.frames();
    bob.effects();
    let at = bob.session.poll_timeout();
    assert!(at <= now.mono + Duration::from_secs(2));
    let later = Now {
        mono: at,
        unix_ms: now.unix_ms + 2_000,
    };
    bob.session.handle_timeout(later);
    let (code, _, message) = only_error(&bob.frames());
    assert_eq!(code, "unauthorized");
    assert!(message.contains("expired"), "{message}");
    assert_eq!(
        bob.effects(),
        vec![Effect::Close {
            code: close_code::UNAUTHORIZED,
            reason: "token expired"
        }]
    );
}

#[test]
fn a_presence_update_lists_the_100_earliest_and_counts_everyone() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut clients = Vec::new();
    for i in 0..101u64 {
        let mut client = Client::new(&ctx, None, now);
        client.frames();
        client.send(
            &format!(
                r#"{{"type":"study_session_start","payload":{{"userId":"u{i}","topic":"Genetics"}}}}"#
            ),
            now.plus_ms(i),
        );
        clients.push(client);
    }
    let frames = clients[0].frames();
    let last = frames
        .iter()
        .rev()
        .find(|f| f["type"] == "collaborative_session_update")
        .unwrap();
    let participants = last["payload"]["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 100);
    assert_eq!(last["payload"]["activeUsers"], 101);
    assert_eq!(participants[0]["userId"], "u0");
    assert_eq!(participants[99]["userId"], "u99");
}

#[test]
fn pending_notifications_are_asked_for_a_page_at_a_time_as_acks_are_recorded() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    client.send(
        r#"{"type":"subscribe","payload":{"channel":"user:ada"}}"#,
        now,
    );
    assert_eq!(
        client.effects(),
        vec![Effect::DeliverPending {
            user_id: "ada".into()
        }]
    );
    let page: Vec<cerebrum_protocol::Notification> = (0..ctx.config.pending_page())
        .map(|i| cerebrum_protocol::Notification {
            id: format!("n-{i}"),
            title: "t".into(),
            message: "m".into(),
            kind: cerebrum_protocol::NotificationKind::Info,
            priority: cerebrum_protocol::Priority::Low,
            action_url: None,
            action_text: None,
        })
        .collect();
    client.session.handle_pending_page(&page, now);
    assert_eq!(client.frames().len(), page.len());
    for (i, note) in page.iter().enumerate() {
        client
            .session
            .handle_notification_acked(&MessageId::new(note.id.clone()).unwrap());
        let effects = client.effects();
        if i + 1 < page.len() {
            assert!(effects.is_empty(), "{effects:?}");
        } else {
            // The whole (full) page was acknowledged: the next one is asked for.
            assert_eq!(
                effects,
                vec![Effect::DeliverPending {
                    user_id: "ada".into()
                }]
            );
        }
    }
    // A short page is the last: its acks ask for nothing more.
    client.session.handle_pending_page(&page[..1], now);
    client
        .session
        .handle_notification_acked(&MessageId::new("n-0").unwrap());
    assert!(client.effects().is_empty());
}

fn notes(range: std::ops::Range<usize>) -> Vec<cerebrum_protocol::Notification> {
    range
        .map(|i| cerebrum_protocol::Notification {
            id: format!("n-{i:03}"),
            title: "t".into(),
            message: "m".into(),
            kind: cerebrum_protocol::NotificationKind::Info,
            priority: cerebrum_protocol::Priority::Low,
            action_url: None,
            action_text: None,
        })
        .collect()
}

/// A connection of `user` (auth off: its user channel names it) that asked for its pending
/// notifications.
fn user_client(ctx: &Arc<Context>, user: &str, now: Now) -> Client {
    let mut client = Client::new(ctx, None, now);
    client.send(
        &format!(r#"{{"type":"subscribe","payload":{{"channel":"user:{user}"}}}}"#),
        now,
    );
    assert_eq!(
        client.effects(),
        vec![Effect::DeliverPending {
            user_id: user.into()
        }]
    );
    client
}

/// A connection of `user` (auth off: its user channel names it) that was given `page` as its
/// first page of pending notifications.
fn paged_client(
    ctx: &Arc<Context>,
    user: &str,
    page: &[cerebrum_protocol::Notification],
    now: Now,
) -> Client {
    let mut client = user_client(ctx, user, now);
    client.session.handle_pending_page(page, now);
    assert_eq!(client.frames().len(), page.len());
    client
}

/// Issue 14: a page acknowledged from another connection of the user (a second tab) must not
/// stall this connection's paging: the node's acks reach every page of the user on it.
#[test]
fn a_page_acknowledged_from_another_connection_of_the_user_moves_on_to_the_next() {
    let ctx = ctx();
    let now = crate::testing::now();
    let page = notes(0..ctx.config.pending_page());
    let mut tab1 = paged_client(&ctx, "ada", &page, now);
    let mut tab2 = paged_client(&ctx, "ada", &page, now);
    // Tab 1's driver has written the page and waits.
    let waker = std::task::Waker::noop();
    assert!(tab1.outbox.poll_notified(waker).is_ready());
    assert!(tab1.outbox.poll_notified(waker).is_pending());
    // Tab 2 acknowledges the whole page (each ack recorded by the store).
    for note in &page {
        tab2.session
            .handle_notification_acked(&MessageId::new(note.id.clone()).unwrap());
    }
    assert_eq!(
        tab2.effects(),
        vec![Effect::DeliverPending {
            user_id: "ada".into()
        }]
    );
    // Tab 1 is told (its driver is woken through its outbox) and asks for the next page too.
    assert!(tab1.outbox.poll_notified(waker).is_ready());
    assert!(tab1.session.has_effects());
    assert_eq!(
        tab1.effects(),
        vec![Effect::DeliverPending {
            user_id: "ada".into()
        }]
    );
    // The next page goes out on both; nothing of the first comes again.
    let next = notes(50..60);
    for tab in [&mut tab1, &mut tab2] {
        tab.session.handle_pending_page(&next, now);
        let ids: Vec<String> = tab
            .frames()
            .iter()
            .map(|f| f["messageId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, next.iter().map(|n| n.id.clone()).collect::<Vec<_>>());
    }
    // A page acknowledged half here and half there moves on as well.
    let mut tab3 = paged_client(&ctx, "ada", &page, now);
    let mut tab4 = paged_client(&ctx, "ada", &page, now);
    for (i, note) in page.iter().enumerate() {
        let id = MessageId::new(note.id.clone()).unwrap();
        if i % 2 == 0 {
            tab3.session.handle_notification_acked(&id);
        } else {
            tab4.session.handle_notification_acked(&id);
        }
    }
    for tab in [&mut tab3, &mut tab4] {
        assert_eq!(
            tab.effects(),
            vec![Effect::DeliverPending {
                user_id: "ada".into()
            }]
        );
    }
    // Another user's acks touch nobody else's page.
    let mut bob = paged_client(&ctx, "bob", &page, now);
    for note in &page {
        tab1.session
            .handle_notification_acked(&MessageId::new(note.id.clone()).unwrap());
    }
    assert!(!bob.session.has_effects());
    assert!(bob.effects().is_empty());
}

/// With several nodes, nothing tells a connection of the acks made through another node: once
/// its page has waited `pending_recheck`, it reads the store again, which lists what is still
/// unacknowledged. A page acknowledged in full elsewhere moves on to the next one; nothing is
/// sent again; the wait doubles while the reads find nothing new.
#[test]
fn a_page_acknowledged_on_another_node_moves_on_at_the_next_read_of_the_store() {
    let ctx = ctx();
    let now = crate::testing::now();
    let recheck = ctx.config.pending_recheck;
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap();
    let page = notes(0..50);
    let mut tab = paged_client(&ctx, "ada", &page, now);
    assert_eq!(tab.session.poll_timeout(), now.mono + recheck);
    tab.session.handle_timeout(now.plus_ms(ms(recheck) - 1));
    assert!(tab.effects().is_empty());
    // Half of the page was acknowledged elsewhere: the store lists the other half first.
    let at = now.plus_ms(ms(recheck));
    tab.session.handle_activity(at);
    tab.session.handle_timeout(at);
    assert_eq!(
        tab.effects(),
        vec![Effect::DeliverPending {
            user_id: "ada".into()
        }]
    );
    // No second read while one is out.
    assert!(tab.session.poll_timeout() > at.mono + recheck);
    tab.session.handle_pending_page(&notes(25..75), at);
    assert!(
        tab.frames().is_empty(),
        "nothing is sent while the page waits"
    );
    assert!(tab.effects().is_empty());
    assert_eq!(tab.session.poll_timeout(), at.mono + recheck);
    // A read that finds nothing new doubles the wait.
    let at = at.plus_ms(ms(recheck));
    tab.session.handle_activity(at);
    tab.session.handle_timeout(at);
    assert_eq!(tab.effects().len(), 1);
    tab.session.handle_pending_page(&notes(25..75), at);
    assert!(tab.frames().is_empty());
    assert_eq!(tab.session.poll_timeout(), at.mono + recheck * 2);
    // This connection's own ack of one of them counts as before.
    tab.session
        .handle_notification_acked(&MessageId::new("n-025").unwrap());
    assert!(tab.effects().is_empty());
    // The rest was acknowledged elsewhere: the read is the next page, sent as such.
    let at = at.plus_ms(ms(recheck * 2));
    tab.session.handle_activity(at);
    tab.session.handle_timeout(at);
    assert_eq!(tab.effects().len(), 1);
    tab.session.handle_pending_page(&notes(50..100), at);
    let ids: Vec<String> = tab
        .frames()
        .iter()
        .map(|f| f["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        notes(50..100).into_iter().map(|n| n.id).collect::<Vec<_>>()
    );
    // A new full page, a fresh wait.
    assert_eq!(tab.session.poll_timeout(), at.mono + recheck);
    // A short page is the last: nothing to read again.
    for note in notes(50..100) {
        tab.session
            .handle_notification_acked(&MessageId::new(note.id).unwrap());
    }
    assert_eq!(tab.effects().len(), 1);
    tab.session.handle_pending_page(&notes(100..101), at);
    assert_eq!(tab.frames().len(), 1);
    assert_eq!(
        tab.session.poll_timeout(),
        at.mono + ctx.config.heartbeat_interval * 2
    );
    assert_eq!(ctx.pages.len(), 0);
    tab.session.disconnect(at);
}

/// With a remote broker every call that waits on the network is an effect, and the session
/// takes no further frame until its answer is fed back.
#[test]
fn with_a_remote_broker_subscribe_and_dedupe_wait_for_their_answers() {
    let ctx = Context::new(
        ServerConfig::default(),
        MemoryBroker::new(16, Duration::from_secs(300), 1),
        true,
        7,
        crate::testing::now(),
    )
    .unwrap();
    let remote = MemoryBroker::new(100, Duration::from_secs(300), 2);
    let now = crate::testing::now();
    let mut client = Client::new(&ctx, None, now);
    assert_eq!(types(&client.frames()), vec!["welcome", "system_status"]);
    assert!(client.effects().is_empty(), "`system` is the node's own");

    // Subscribing to the user's channel names the user and waits for the replay.
    client.session.handle_text(
        r#"{"type":"subscribe","payload":{"channel":"user:ada"},"messageId":"s-1","ack":true}"#,
        now,
    );
    assert!(client.session.is_waiting());
    let effects = client.effects();
    // The user's channel is joined silently when the user is named (one watch), so the
    // explicit subscription keeps that watch.
    assert!(
        matches!(&effects[..], [Effect::Watch { channel: watched }, Effect::DeliverPending { .. }, Effect::Replay { channel, since: None, watch: false }] if channel == "user:ada" && watched == "user:ada"),
        "{effects:?}"
    );
    assert!(
        client.frames().is_empty(),
        "nothing before the broker answered"
    );
    let replay = remote.replay("user:ada", None, now.mono).unwrap();
    client.session.handle_replay(Ok(replay), true, now);
    assert!(!client.session.is_waiting());
    assert_eq!(types(&client.frames()), vec!["subscribed", "ack"]);

    // A publication goes straight to the broker: its append is idempotent per message id,
    // so a re-send (on any node) is not claimed first.
    client.session.handle_text(
        r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
        now,
    );
    let replay = remote.replay("chat:1", None, now.mono).unwrap();
    client.effects();
    client.session.handle_replay(Ok(replay), true, now);
    client.frames();
    let publish = r#"{"type":"chat.msg","channel":"chat:1","payload":{"text":"hi"},"messageId":"m-1","ack":true}"#;
    for _ in 0..2 {
        client.session.handle_text(publish, now);
        let effects = client.effects();
        assert!(
            matches!(&effects[..], [Effect::Publish { channel, ack: Some(id), .. }] if channel == "chat:1" && id.as_str() == "m-1"),
            "{effects:?}"
        );
    }

    // Other messages of the user asking for an ack are claimed cluster-wide first.
    let start = |id: &str| {
        format!(
            r#"{{"type":"study_session_start","payload":{{"userId":"ada","topic":"Genetics"}},"messageId":"{id}","ack":true}}"#
        )
    };
    client.session.handle_text(&start("t-1"), now);
    let effects = client.effects();
    assert!(
        matches!(&effects[..], [Effect::Claim { key, id }] if key == "u:ada" && id.as_str() == "t-1"),
        "{effects:?}"
    );
    // It took effect already (on another node): acknowledged again, not processed.
    client.session.handle_claimed(Ok(Claimed::Done), now);
    assert_eq!(types(&client.frames()), vec!["ack"]);
    assert!(client.effects().is_empty());
    // A first: processed, acknowledged once it took effect, then settled.
    client.session.handle_text(&start("t-2"), now);
    client.effects();
    client.session.handle_claimed(Ok(Claimed::First), now);
    let effects = client.effects();
    assert!(
        matches!(&effects[..], [Effect::PresenceJoin { .. }]),
        "{effects:?}"
    );
    assert!(client.session.is_waiting());
    client.session.handle_presence_joined(Ok(()), now);
    assert!(types(&client.frames()).contains(&"ack"));
    let effects = client.effects();
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Settle { key, id } if key == "u:ada" && id.as_str() == "t-2")
        ),
        "{effects:?}"
    );

    // A replay the broker could not give: `internal`, the id released for a retry, the
    // watch given back.
    client.session.handle_text(
        r#"{"type":"subscribe","payload":{"channel":"chat:2"},"messageId":"s-2","ack":true}"#,
        now,
    );
    let effects = client.effects();
    assert!(
        matches!(&effects[..], [Effect::Claim { .. }]),
        "{effects:?}"
    );
    client.session.handle_claimed(Ok(Claimed::First), now);
    client.effects();
    client
        .session
        .handle_replay(Err(BrokerError::Unavailable), true, now);
    let (code, ref_id, _) = only_error(&client.frames());
    assert_eq!(
        (code.as_str(), ref_id.as_deref()),
        ("internal", Some("s-2"))
    );
    let effects = client.effects();
    assert!(
        matches!(&effects[..], [Effect::Unwatch { channel }, Effect::Release { id, .. }] if channel == "chat:2" && id.as_str() == "s-2"),
        "{effects:?}"
    );

    // Leaving gives every watch and the count back (the study session's channel included).
    client.session.disconnect(now);
    let unwatched: Vec<String> = client
        .effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Unwatch { channel } => Some(channel),
            _ => None,
        })
        .collect();
    assert_eq!(unwatched, ["chat:1", "session:genetics", "user:ada"]);
}

/// Every open connection holds a `Session` for its whole life, inside its driver's task: the
/// driver's task is sized to the allocator's 128-byte steps, and at the time of writing it sits
/// exactly on one (docs/benchmarks.md, "The connection task, second round"). A field added here
/// can cost every idle connection 128 bytes: box what is rare, and update the figure (and the
/// measurement) when that is the right trade.
#[cfg(target_pointer_width = "64")]
#[test]
fn a_session_stays_within_its_idle_memory_budget() {
    assert!(
        size_of::<Session>() <= 304,
        "Session is {} bytes",
        size_of::<Session>()
    );
}

/// A session on a connection that selected `cerebrum.v1.msgpack`.
fn msgpack_client(ctx: &Arc<Context>, now: Now) -> Client {
    let outbox = Outbox::with_encoding(1024, crate::Encoding::MessagePack);
    let session = Session::new(ctx.clone(), outbox.clone(), None, now);
    let client = Client { session, outbox };
    client.frames();
    client
}

#[test]
fn a_msgpack_frame_is_read_as_the_json_it_transcodes_to() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = msgpack_client(&ctx, now);
    let text = r#"{"type":"ping","payload":{"nonce":7,"b":[1.5,"x"]},"messageId":"p1"}"#;
    let frame = cerebrum_protocol::json_to_msgpack(text).unwrap();
    client.session.handle_msgpack(&frame, now);
    let frames = client.frames();
    assert_eq!(types(&frames), vec!["pong"]);
    assert_eq!(
        frames[0]["payload"],
        serde_json::json!({"nonce":7,"b":[1.5,"x"]})
    );
    // Subscribing and publishing work the same way.
    let subscribe = r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#;
    client
        .session
        .handle_msgpack(&cerebrum_protocol::json_to_msgpack(subscribe).unwrap(), now);
    let publish = r#"{"type":"chat.message","payload":{"n":1},"channel":"chat:1","ack":true,"messageId":"m1"}"#;
    client
        .session
        .handle_msgpack(&cerebrum_protocol::json_to_msgpack(publish).unwrap(), now);
    let frames = client.frames();
    assert_eq!(types(&frames), vec!["subscribed", "chat.message", "ack"]);
    // Text frames are still read as JSON on such a connection.
    assert_eq!(types(&client.send(r#"{"type":"ping"}"#, now)), vec!["pong"]);
}

#[test]
fn a_frame_that_is_not_msgpack_is_answered_invalid_json_and_the_connection_stays() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = msgpack_client(&ctx, now);
    for junk in [
        &[0xc1][..],
        &[0x81, 0x01, 0xc0],
        &[0xc4, 0x01, 0x00],
        &[],
        b"{}",
    ] {
        client.session.handle_msgpack(junk, now);
        let (code, ref_id, message) = only_error(&client.frames());
        assert_eq!((code.as_str(), ref_id), ("invalid_json", None), "{junk:?}");
        assert!(message.starts_with("not valid MessagePack"), "{message}");
    }
    // Too deep is refused as deep JSON text is.
    let mut deep = vec![0x91; 40];
    deep.push(0xc0);
    client.session.handle_msgpack(&deep, now);
    let (code, _, _) = only_error(&client.frames());
    assert_eq!(code, "validation_failed");
    // A map that is not an envelope is refused as JSON that is not one would be.
    client.session.handle_msgpack(&[0x91, 0x01], now);
    let (code, _, _) = only_error(&client.frames());
    assert_eq!(code, "invalid_envelope");
    assert!(client.effects().is_empty());
    assert!(client.session.is_ready());
    assert_eq!(ctx.metrics.errors_of(&ErrorCode::InvalidJson), 5);
}

#[test]
fn msgpack_frames_count_their_own_bytes_and_their_json_is_bounded() {
    let mut config = ServerConfig::default();
    config.max_frame_bytes = 1_000;
    let ctx = ctx_with(config);
    let now = crate::testing::now();
    let mut client = msgpack_client(&ctx, now);
    let received = ctx
        .metrics
        .bytes_received
        .load(std::sync::atomic::Ordering::Relaxed);
    let ping = cerebrum_protocol::json_to_msgpack(r#"{"type":"ping","payload":null}"#).unwrap();
    client.session.handle_msgpack(&ping, now);
    assert_eq!(
        ctx.metrics
            .bytes_received
            .load(std::sync::atomic::Ordering::Relaxed)
            - received,
        ping.len() as u64
    );
    client.frames();
    // 400 nils: 400 bytes of MessagePack, 2 000 of JSON text.
    let mut nils = vec![0x81, 0xa7];
    nils.extend_from_slice(b"payload");
    nils.extend_from_slice(&[0xdc, 0x01, 0x90]);
    nils.extend_from_slice(&[0xc0; 400]);
    assert!(nils.len() < 1_000);
    client.session.handle_msgpack(&nils, now);
    let (code, _, _) = only_error(&client.frames());
    assert_eq!(code, "too_large");
    assert!(client.session.is_ready());
}

#[test]
fn a_publication_is_transcoded_once_for_every_msgpack_subscriber() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut subscribers: Vec<Client> = (0..3).map(|_| msgpack_client(&ctx, now)).collect();
    let mut json_subscriber = Client::new(&ctx, None, now);
    json_subscriber.frames();
    for client in subscribers.iter_mut().chain([&mut json_subscriber]) {
        client.send(
            r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#,
            now,
        );
    }
    subscribers[0].session.handle_text(
        r#"{"type":"chat.message","payload":{"x":1.5},"channel":"chat:1"}"#,
        now,
    );
    let mut delivered = Vec::new();
    for client in subscribers.iter().chain([&json_subscriber]) {
        let mut frames = Vec::new();
        client.outbox.drain_into(&mut frames);
        assert_eq!(frames.len(), 1);
        delivered.push(frames.remove(0).text);
    }
    // One encoded publication for all four, and one MessagePack form for all three.
    let first = delivered[0].msgpack().unwrap();
    for text in &delivered {
        assert_eq!(text.as_bytes().as_ptr(), delivered[0].as_bytes().as_ptr());
        assert_eq!(text.msgpack().unwrap().as_ptr(), first.as_ptr());
    }
}

/// Publishes notification `note` live on `user`'s channel, as `POST /notifications` does once
/// it stored it.
fn notify_live(ctx: &Arc<Context>, user: &str, note: &cerebrum_protocol::Notification, now: Now) {
    let (channel, envelope) = ctx.notification_publication(note, Some(user), now).unwrap();
    ctx.hub.publish(&channel, envelope, now).unwrap();
}

fn window_ms() -> u64 {
    u64::try_from(NOTIFICATION_REPEAT_WINDOW.as_millis()).unwrap()
}

fn notification_ids(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| f["type"] == "notification")
        .map(|f| f["payload"]["id"].as_str().unwrap_or(""))
        .collect()
}

/// A notification stored while the connection's page of pending ones was read comes in the
/// page and live on the user's channel: the connection gets it once, whichever comes first.
#[test]
fn a_notification_in_the_pending_page_and_live_is_sent_once() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = user_client(&ctx, "ada", now);
    let live_first = notes(0..1);
    let page_first = notes(1..2);
    // Stored before the read, published after the subscription: live first, then the page.
    notify_live(&ctx, "ada", &live_first[0], now);
    client
        .session
        .handle_pending_page(&[live_first.clone(), page_first.clone()].concat(), now);
    // Published after the read: the page first, then live.
    notify_live(&ctx, "ada", &page_first[0], now);
    assert_eq!(notification_ids(&client.frames()), ["n-000", "n-001"]);
    // Later notifications are live only, and each comes once.
    let later = notes(2..3);
    notify_live(&ctx, "ada", &later[0], now);
    assert_eq!(notification_ids(&client.frames()), ["n-002"]);
}

/// The window closes some seconds after the last page: a repeat after it is sent again
/// (delivery stays at least once), and the connection forgets the ids.
#[test]
fn after_the_window_a_notification_sent_again_is_delivered_again() {
    let ctx = ctx();
    let now = crate::testing::now();
    let mut client = user_client(&ctx, "ada", now);
    let page = notes(0..1);
    client.session.handle_pending_page(&page, now);
    assert_eq!(notification_ids(&client.frames()), ["n-000"]);
    let later = now.plus_ms(window_ms());
    client.session.handle_timeout(later);
    notify_live(&ctx, "ada", &page[0], later);
    assert_eq!(notification_ids(&client.frames()), ["n-000"]);
}

/// While full pages are still read the window stays open; the last (short) page starts its
/// countdown.
#[test]
fn the_window_stays_open_while_full_pages_are_read() {
    let ctx = ctx();
    let now = crate::testing::now();
    let page = notes(0..ctx.config.pending_page());
    let mut client = paged_client(&ctx, "ada", &page, now);
    let much_later = now.plus_ms(3 * window_ms());
    notify_live(&ctx, "ada", &page[0], much_later);
    assert!(notification_ids(&client.frames()).is_empty());
    for note in &page {
        client
            .session
            .handle_notification_acked(&MessageId::new(note.id.clone()).unwrap());
    }
    assert_eq!(client.effects().len(), 1);
    client.session.handle_pending_page(&[], much_later);
    notify_live(&ctx, "ada", &page[1], much_later);
    assert!(notification_ids(&client.frames()).is_empty());
    let after = much_later.plus_ms(window_ms());
    notify_live(&ctx, "ada", &page[1], after);
    assert_eq!(notification_ids(&client.frames()), ["n-001"]);
}
