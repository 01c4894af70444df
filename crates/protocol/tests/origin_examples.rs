//! Every JSON example of the origin document (`shared/seed/000_…txt`) decodes: its example
//! server's frames, the frame its client sends, and the four message types with the fields it
//! documents.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use cerebrum_protocol::{
    ClientMessage, ErrorCode, NotificationKind, OverallStatus, Priority, ProtocolError,
    ServerMessage, decode,
};

/// The example `ws` server's `pong`: the ping's payload, `Date.now()`, `generateId()`.
#[test]
fn example_server_pong() {
    let frame = r#"{"type":"pong","payload":{"nonce":3},"timestamp":1732752000123,"messageId":"lx3k9q2m7"}"#;
    let envelope = decode(frame).unwrap();
    match ServerMessage::from_envelope(&envelope).unwrap() {
        ServerMessage::Pong(pong) => assert_eq!(pong.0["nonce"], 3),
        other => panic!("expected pong, got {other:?}"),
    }
    assert_eq!(envelope.timestamp(), Some(1_732_752_000_123));
    assert_eq!(envelope.message_id().unwrap().as_str(), "lx3k9q2m7");
}

/// The example server's broadcast, whose payload the document elides (`{ /* ... */ }`): the
/// envelope decodes, and reading it as study metrics names the first missing field.
#[test]
fn example_server_broadcast_with_elided_payload() {
    let frame = r#"{"type":"study_metrics_update","payload":{},"timestamp":1732752000123,"messageId":"lx3k9q2m8"}"#;
    let envelope = decode(frame).unwrap();
    assert_eq!(envelope.kind(), "study_metrics_update");
    let err = ServerMessage::from_envelope(&envelope).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert!(matches!(err, ProtocolError::Validation { ref field, .. } if field == "payload"));
    assert!(err.to_string().contains("userId"), "{err}");
}

/// The origin client's `send('study_session_start', {userId, topic, timestamp: Date.now()})`.
#[test]
fn origin_client_study_session_start() {
    let frame = r#"{"type":"study_session_start","payload":{"userId":"user-123","topic":"Cell Biology","timestamp":1732752000000},"timestamp":1732752000001,"messageId":"1732752000001-abc"}"#;
    match ClientMessage::from_envelope(&decode(frame).unwrap()).unwrap() {
        ClientMessage::StudySessionStart(start) => {
            assert_eq!(start.user_id, "user-123");
            assert_eq!(start.topic, "Cell Biology");
            assert_eq!(start.timestamp, Some(1_732_752_000_000));
        }
        other => panic!("expected study_session_start, got {other:?}"),
    }
    // The same send without a timestamp (the "Using WebSocket Client Directly" example).
    let frame =
        r#"{"type":"study_session_start","payload":{"userId":"user-123","topic":"Genetics"}}"#;
    assert!(matches!(
        ClientMessage::from_envelope(&decode(frame).unwrap()).unwrap(),
        ClientMessage::StudySessionStart(_)
    ));
}

#[test]
fn documented_study_metrics_update() {
    let frame = r#"{"type":"study_metrics_update","payload":{"userId":"user-123","studyHours":42.25,"progress":75,"currentTopic":"Genetics","sessionDuration":2700,"streak":12}}"#;
    let ServerMessage::StudyMetrics(metrics) =
        ServerMessage::from_envelope(&decode(frame).unwrap()).unwrap()
    else {
        panic!("expected study metrics");
    };
    assert_eq!(metrics.study_hours, 42.25);
    assert_eq!(metrics.progress, 75.0);
    assert_eq!(metrics.current_topic.as_deref(), Some("Genetics"));
    assert_eq!(metrics.session_duration, 2700.0);
    assert_eq!(metrics.streak, 12);
    // `currentTopic` is optional.
    let idle = r#"{"type":"study_metrics_update","payload":{"userId":"u","studyHours":0,"progress":0,"sessionDuration":0,"streak":0}}"#;
    assert!(matches!(
        ServerMessage::from_envelope(&decode(idle).unwrap()).unwrap(),
        ServerMessage::StudyMetrics(m) if m.current_topic.is_none()
    ));
}

#[test]
fn documented_collaborative_session_update() {
    let frame = r#"{"type":"collaborative_session_update","payload":{"sessionId":"s-1","topic":"Cell Biology","participants":[{"userId":"u1","userName":"Asha","avatarUrl":"https://example.org/asha.png","joinedAt":1732752000000},{"userId":"u2","userName":"Ben","joinedAt":1732752060000}],"activeUsers":2}}"#;
    let ServerMessage::CollaborativeSession(session) =
        ServerMessage::from_envelope(&decode(frame).unwrap()).unwrap()
    else {
        panic!("expected a collaborative session");
    };
    assert_eq!(session.participants.len(), 2);
    assert_eq!(session.participants[1].avatar_url, None);
    assert_eq!(session.active_users, 2);
}

#[test]
fn documented_notification_with_every_kind_and_priority() {
    for (kind, expected_kind) in [
        ("info", NotificationKind::Info),
        ("success", NotificationKind::Success),
        ("warning", NotificationKind::Warning),
        ("error", NotificationKind::Error),
    ] {
        for (priority, expected_priority) in [
            ("low", Priority::Low),
            ("medium", Priority::Medium),
            ("high", Priority::High),
        ] {
            let frame = format!(
                r#"{{"type":"notification","payload":{{"id":"n1","title":"New message","message":"Dr. Rao replied","type":"{kind}","priority":"{priority}","actionUrl":"/messages/1","actionText":"Open"}}}}"#
            );
            let ServerMessage::Notification(n) =
                ServerMessage::from_envelope(&decode(&frame).unwrap()).unwrap()
            else {
                panic!("expected a notification");
            };
            assert_eq!((n.kind, n.priority), (expected_kind, expected_priority));
        }
    }
    let bad = r#"{"type":"notification","payload":{"id":"n1","title":"t","message":"m","type":"urgent","priority":"low"}}"#;
    let err = ServerMessage::from_envelope(&decode(bad).unwrap()).unwrap_err();
    // Feature `lean-errors` (the browser build) names the payload, not the field in it.
    let named = if cfg!(feature = "lean-errors") {
        "payload"
    } else {
        "payload.type"
    };
    assert!(err.to_string().contains(named), "{err}");
}

#[test]
fn documented_system_status_with_every_state() {
    for (state, expected) in [
        ("operational", OverallStatus::Operational),
        ("degraded", OverallStatus::Degraded),
        ("maintenance", OverallStatus::Maintenance),
        ("outage", OverallStatus::Outage),
    ] {
        let frame = format!(
            r#"{{"type":"system_status","payload":{{"status":"{state}","services":{{"api":true,"database":true,"cache":false,"storage":true}},"uptime":3600.5,"lastCheck":1732752000000}}}}"#
        );
        let ServerMessage::SystemStatus(status) =
            ServerMessage::from_envelope(&decode(&frame).unwrap()).unwrap()
        else {
            panic!("expected system status");
        };
        assert_eq!(status.status, expected);
        assert!(!status.services.cache);
    }
}
