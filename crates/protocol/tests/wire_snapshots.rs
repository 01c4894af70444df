//! One snapshot per message type: the exact JSON of each frame, and beside it (`<name>.msgpack`)
//! its MessagePack form as a hex dump (subprotocol `cerebrum.v1.msgpack`). These `.snap` files are
//! the wire contract; a change to one is a protocol change and is reviewed as such.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use cerebrum_protocol::{
    Ack, Auth, Cipher, CollaborativeSession, Envelope, ErrorCode, ErrorPayload, KeyId, MessageId,
    Notification, NotificationKind, OverallStatus, Participant, Payload, Ping, Pong, Priority,
    SealedPayload, Services, StreamPosition, StudyMetrics, StudySessionEnd, StudySessionStart,
    Subscribe, Subscribed, SystemStatus, Unsubscribe, Unsubscribed, Welcome, decode, encode,
    features, json_to_msgpack, msgpack_to_json,
};
use serde_json::json;

const T: u64 = 1_732_752_000_000;

fn id(text: &str) -> MessageId {
    MessageId::new(text).expect("valid id")
}

/// Encodes `payload` in a stamped envelope and checks that it decodes back to the same value.
fn frame<P: Payload + PartialEq + std::fmt::Debug>(payload: &P) -> String {
    let envelope = Envelope::from_payload(payload)
        .expect("valid payload")
        .with_timestamp(T)
        .with_message_id(id("01JD3Q7W6N0000000000000001"));
    let text = encode(&envelope);
    let back = decode(&text).expect("decodes");
    assert_eq!(back, envelope);
    assert_eq!(&back.typed::<P>().expect("typed"), payload);
    text
}

/// Pins the JSON text `text` under `name` and its MessagePack form under `<name>.msgpack`, after
/// checking that the MessagePack form reads back to the same text.
fn pin(name: &str, text: &str) {
    insta::assert_snapshot!(name, text);
    let bytes = json_to_msgpack(text).unwrap();
    assert_eq!(msgpack_to_json(&bytes).unwrap(), text, "{name}");
    insta::assert_snapshot!(format!("{name}.msgpack"), hex_dump(&bytes));
}

/// 16 bytes a line: the offset, the bytes in hex, the printable ones as ASCII.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (line, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b)
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(
            "{:04x}  {:<47}  |{ascii}|\n",
            line * 16,
            hex.join(" ")
        ));
    }
    out
}

#[test]
fn ping() {
    pin("ping", &frame(&Ping(json!({"nonce": 7}))));
}

#[test]
fn pong() {
    pin("pong", &frame(&Pong(json!({"nonce": 7}))));
}

#[test]
fn study_metrics_update() {
    let studying = StudyMetrics {
        user_id: "user-123".into(),
        study_hours: 12.5,
        progress: 62.5,
        current_topic: Some("Cell Biology".into()),
        session_duration: 1800.0,
        streak: 4,
    };
    pin("study_metrics_update", &frame(&studying));
    let idle = StudyMetrics {
        current_topic: None,
        ..studying
    };
    pin("study_metrics_update_idle", &frame(&idle));
}

#[test]
fn collaborative_session_update() {
    let session = CollaborativeSession {
        session_id: "session:cell-biology".into(),
        topic: "Cell Biology".into(),
        participants: vec![
            Participant {
                user_id: "user-123".into(),
                user_name: "Asha Rao".into(),
                avatar_url: Some("https://example.org/a/asha.png".into()),
                joined_at: T - 60_000,
            },
            Participant {
                user_id: "user-456".into(),
                user_name: "Ben Okafor".into(),
                avatar_url: None,
                joined_at: T,
            },
        ],
        active_users: 2,
    };
    pin("collaborative_session_update", &frame(&session));
}

#[test]
fn notification() {
    let notification = Notification {
        id: "n-42".into(),
        title: "Streak!".into(),
        message: "You studied 7 days in a row.".into(),
        kind: NotificationKind::Success,
        priority: Priority::High,
        action_url: Some("/progress".into()),
        action_text: Some("See progress".into()),
    };
    pin("notification", &frame(&notification));
}

#[test]
fn system_status() {
    let status = SystemStatus {
        status: OverallStatus::Degraded,
        services: Services {
            api: true,
            database: true,
            cache: false,
            storage: true,
        },
        uptime: 86_400.0,
        last_check: T,
    };
    pin("system_status", &frame(&status));
}

#[test]
fn study_session_start() {
    let start = StudySessionStart {
        user_id: "user-123".into(),
        topic: "Genetics".into(),
        timestamp: Some(T),
    };
    pin("study_session_start", &frame(&start));
}

#[test]
fn study_session_end() {
    let end = StudySessionEnd {
        user_id: "user-123".into(),
        topic: "Genetics".into(),
    };
    pin("study_session_end", &frame(&end));
}

#[test]
fn welcome() {
    let welcome = Welcome {
        connection_id: "c-9f2".into(),
        user_id: Some("user-123".into()),
        protocol: 1,
        heartbeat_interval_ms: 30_000,
        features: features::ALL.iter().map(|f| (*f).to_owned()).collect(),
        server_time: T,
    };
    pin("welcome", &frame(&welcome));
}

#[test]
fn auth() {
    let auth = Auth {
        token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".into(),
    };
    pin("auth", &frame(&auth));
}

#[test]
fn subscribe() {
    let fresh = Subscribe {
        channel: "chat:biology-101".into(),
        since: None,
    };
    pin("subscribe", &frame(&fresh));
    let resume = Subscribe {
        channel: "chat:biology-101".into(),
        since: Some(StreamPosition {
            offset: 41,
            epoch: "e-1732752000".into(),
        }),
    };
    pin("subscribe_since", &frame(&resume));
}

#[test]
fn subscribed() {
    let subscribed = Subscribed {
        channel: "chat:biology-101".into(),
        offset: 44,
        epoch: "e-1732752000".into(),
        recovered: true,
        missed: 3,
    };
    pin("subscribed", &frame(&subscribed));
}

#[test]
fn unsubscribe_and_unsubscribed() {
    let channel = "chat:biology-101".to_owned();
    pin(
        "unsubscribe",
        &frame(&Unsubscribe {
            channel: channel.clone(),
        }),
    );
    pin("unsubscribed", &frame(&Unsubscribed { channel }));
}

#[test]
fn ack() {
    let ack = Ack {
        message_id: id("01JD3Q7W6N0000000000000000"),
    };
    pin("ack", &frame(&ack));
}

#[test]
fn error() {
    let error = ErrorPayload {
        code: ErrorCode::ValidationFailed,
        message: "invalid `payload.topic`: must contain at least one ASCII letter or digit".into(),
        ref_id: Some(id("01JD3Q7W6N0000000000000000")),
    };
    pin("error", &frame(&error));
}

#[test]
fn channel_publication_and_acked_send() {
    let publication =
        Envelope::from_value("chat.message", &json!({"text": "Mitosis has 4 phases"}))
            .unwrap()
            .with_timestamp(T)
            .with_message_id(id("01JD3Q7W6N0000000000000002"))
            .with_channel("chat:biology-101")
            .unwrap()
            .with_offset(42);
    pin("publication", &encode(&publication));
    let acked = StudySessionStart {
        user_id: "user-123".into(),
        topic: "Genetics".into(),
        timestamp: None,
    };
    let acked = Envelope::from_payload(&acked)
        .unwrap()
        .with_timestamp(T)
        .with_message_id(id("01JD3Q7W6N0000000000000003"))
        .with_ack(true);
    pin("acked_send", &encode(&acked));
}

#[test]
fn sealed_publication() {
    // A publication on an end-to-end encrypted channel. The bytes are the test vector of
    // docs/protocol.md: key 00 01 … 1f (id `2026-12`), nonce 40 41 … 57, plaintext
    // `{"text":"Mitosis has 4 phases"}`; cerebrum-e2ee's tests seal it and get this `ct`.
    let sealed = SealedPayload {
        cipher: Cipher::XChaCha20Poly1305,
        key_id: KeyId::new("2026-12").unwrap(),
        nonce: std::array::from_fn(|i| 0x40 + i as u8),
        ciphertext: base64_url("rxtxFaiUWyytue7KwO8M4bLSzLczbXPqAlCOIHomXmu4mJhqR71oxuhMbcmxDgA"),
    };
    let publication = Envelope::new("chat.message", sealed.to_raw())
        .unwrap()
        .with_timestamp(T)
        .with_message_id(id("01JD3Q7W6N0000000000000002"))
        .with_channel("chat:biology-101")
        .unwrap()
        .with_offset(42);
    let text = encode(&publication);
    let back = decode(&text).unwrap();
    assert_eq!(SealedPayload::from_raw(back.payload()).unwrap(), sealed);
    pin("sealed_publication", &text);
}

fn base64_url(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}
