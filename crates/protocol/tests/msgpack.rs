//! Property tests of the MessagePack form (subprotocol `cerebrum.v1.msgpack`): JSON → MessagePack
//! → JSON is the identity on every envelope of the catalog and on any envelope with any payload;
//! no input bytes panic the decoder, and whatever it accepts is valid JSON within the limits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use cerebrum_protocol::{
    Ack, Auth, Cipher, CollaborativeSession, Envelope, ErrorCode, ErrorPayload, KeyId, MAX_DEPTH,
    MessageId, MsgpackError, Notification, NotificationKind, OverallStatus, Participant, Payload,
    Ping, Pong, Priority, SealedPayload, Services, StreamPosition, StudyMetrics, StudySessionEnd,
    StudySessionStart, Subscribe, Subscribed, SystemStatus, Unsubscribe, Unsubscribed, Welcome,
    check_depth, decode, encode, features, json_to_msgpack, msgpack_to_json,
    msgpack_to_json_within,
};
use proptest::prelude::*;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".*", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn id() -> impl Strategy<Value = MessageId> {
    "\\PC{1,64}".prop_map(|id| MessageId::new(id).expect("valid id"))
}

fn hours() -> impl Strategy<Value = f64> {
    prop_oneof![0.0f64..1e6, (0u32..100_000).prop_map(f64::from)]
}

fn participant() -> impl Strategy<Value = Participant> {
    (text(), text(), proptest::option::of(text()), any::<u64>()).prop_map(
        |(user_id, user_name, avatar_url, joined_at)| Participant {
            user_id,
            user_name,
            avatar_url,
            joined_at,
        },
    )
}

/// An envelope of `payload`, or `None` when the catalog refuses the generated payload.
fn typed<P: Payload>(payload: &P) -> Option<Envelope> {
    Envelope::from_payload(payload).ok()
}

/// One envelope of every type of the catalog (PROTOCOL.md section 3), with generated fields.
fn catalog_envelope() -> impl Strategy<Value = Option<Envelope>> {
    prop_oneof![
        json_value().prop_map(|v| typed(&Ping(v))),
        json_value().prop_map(|v| typed(&Pong(v))),
        (
            text(),
            hours(),
            0.0f64..=100.0,
            proptest::option::of(text()),
            hours(),
            any::<u32>()
        )
            .prop_map(
                |(user_id, study_hours, progress, current_topic, duration, streak)| {
                    typed(&StudyMetrics {
                        user_id,
                        study_hours,
                        progress,
                        current_topic,
                        session_duration: duration,
                        streak,
                    })
                }
            ),
        (
            text(),
            text(),
            prop::collection::vec(participant(), 0..4),
            any::<u32>()
        )
            .prop_map(|(session_id, topic, participants, active_users)| typed(
                &CollaborativeSession {
                    session_id,
                    topic,
                    participants,
                    active_users,
                }
            )),
        (
            text(),
            text(),
            text(),
            prop::sample::select(vec![
                NotificationKind::Info,
                NotificationKind::Success,
                NotificationKind::Warning,
                NotificationKind::Error
            ]),
            prop::sample::select(vec![Priority::Low, Priority::Medium, Priority::High]),
            proptest::option::of("/[a-z]{0,10}"),
            proptest::option::of(text()),
        )
            .prop_map(
                |(id, title, message, kind, priority, action_url, action_text)| {
                    typed(&Notification {
                        id,
                        title,
                        message,
                        kind,
                        priority,
                        action_url,
                        action_text,
                    })
                }
            ),
        (
            prop::sample::select(vec![
                OverallStatus::Operational,
                OverallStatus::Degraded,
                OverallStatus::Maintenance,
                OverallStatus::Outage
            ]),
            any::<[bool; 4]>(),
            hours(),
            any::<u64>()
        )
            .prop_map(
                |(status, [api, database, cache, storage], uptime, last_check)| {
                    typed(&SystemStatus {
                        status,
                        services: Services {
                            api,
                            database,
                            cache,
                            storage,
                        },
                        uptime,
                        last_check,
                    })
                }
            ),
        (
            "[a-z0-9-]{1,20}",
            "[A-Za-z][A-Za-z ]{0,30}",
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(user_id, topic, timestamp)| typed(&StudySessionStart {
                user_id,
                topic,
                timestamp,
            })),
        ("[a-z0-9-]{1,20}", "[A-Za-z][A-Za-z ]{0,30}")
            .prop_map(|(user_id, topic)| typed(&StudySessionEnd { user_id, topic })),
        (
            text(),
            proptest::option::of(text()),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(
                |(connection_id, user_id, heartbeat_interval_ms, server_time)| typed(&Welcome {
                    connection_id,
                    user_id,
                    protocol: 1,
                    heartbeat_interval_ms,
                    features: features::ALL.iter().map(|f| (*f).to_owned()).collect(),
                    server_time,
                })
            ),
        text().prop_map(|token| typed(&Auth { token })),
        (
            "[A-Za-z0-9_:.@-]{1,128}",
            proptest::option::of((any::<u64>(), text()))
        )
            .prop_map(|(channel, since)| typed(&Subscribe {
                channel,
                since: since.map(|(offset, epoch)| StreamPosition { offset, epoch }),
            })),
        (
            "[A-Za-z0-9_:.@-]{1,128}",
            any::<u64>(),
            text(),
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(
                |(channel, offset, epoch, recovered, missed)| typed(&Subscribed {
                    channel,
                    offset,
                    epoch,
                    recovered,
                    missed,
                })
            ),
        "[A-Za-z0-9_:.@-]{1,128}".prop_map(|channel| typed(&Unsubscribe { channel })),
        "[A-Za-z0-9_:.@-]{1,128}".prop_map(|channel| typed(&Unsubscribed { channel })),
        id().prop_map(|message_id| typed(&Ack { message_id })),
        (
            prop::sample::select(ErrorCode::KNOWN.to_vec()),
            text(),
            proptest::option::of(id())
        )
            .prop_map(|(code, message, ref_id)| typed(&ErrorPayload {
                code,
                message,
                ref_id,
            })),
        ("[a-z0-9_.:-]{1,64}", json_value())
            .prop_map(|(kind, payload)| Envelope::from_value(kind, &payload).ok()),
        (
            "[A-Za-z0-9_.:-]{1,64}",
            any::<[u8; 24]>(),
            prop::collection::vec(any::<u8>(), 17..80)
        )
            .prop_map(|(kid, nonce, ciphertext)| {
                let sealed = SealedPayload {
                    cipher: Cipher::XChaCha20Poly1305,
                    key_id: KeyId::new(kid).ok()?,
                    nonce,
                    ciphertext,
                };
                Envelope::new("chat.message", sealed.to_raw()).ok()
            }),
    ]
}

/// The envelope with generated v1 meta fields (each present or not).
fn stamped() -> impl Strategy<Value = Option<Envelope>> {
    (
        catalog_envelope(),
        proptest::option::of(any::<u64>()),
        proptest::option::of(id()),
        proptest::option::of("[A-Za-z0-9_:.@-]{1,128}"),
        proptest::option::of(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(|(envelope, timestamp, id, channel, offset, ack)| {
            let mut envelope = envelope?;
            if let Some(ts) = timestamp {
                envelope = envelope.with_timestamp(ts);
            }
            if let Some(id) = id {
                envelope = envelope.with_message_id(id);
            }
            if let Some(channel) = channel {
                envelope = envelope.with_channel(channel).ok()?;
            }
            if let Some(offset) = offset {
                envelope = envelope.with_offset(offset);
            }
            Some(envelope.with_ack(ack))
        })
}

/// Valid MessagePack of some JSON value, with `n` bytes changed.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        json_value(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    )
        .prop_map(|(value, changes)| {
            let mut bytes = json_to_msgpack(&value.to_string()).unwrap();
            for (at, byte) in changes {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    /// JSON → MessagePack → JSON gives back the frame byte for byte, and the MessagePack form
    /// is never the JSON text itself (it is a map).
    #[test]
    fn every_envelope_round_trips_through_msgpack(envelope in stamped()) {
        let Some(envelope) = envelope else { return Ok(()) };
        let text = encode(&envelope);
        let bytes = json_to_msgpack(&text).unwrap();
        prop_assert!(matches!(bytes[0], 0x80..=0x8f | 0xde | 0xdf));
        let back = msgpack_to_json(&bytes).unwrap();
        prop_assert_eq!(&back, &text);
        prop_assert_eq!(decode(&back).unwrap(), envelope);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(text) = msgpack_to_json(&bytes) {
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
            prop_assert!(check_depth(&text, MAX_DEPTH).is_ok());
        }
    }

    /// Near-valid input (a valid form with a few bytes changed) reaches deeper into the
    /// decoder than random bytes: it never panics either, and what it accepts is JSON.
    #[test]
    fn mutated_frames_never_panic(bytes in mutated()) {
        match msgpack_to_json(&bytes) {
            Ok(text) => {
                prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
                prop_assert!(check_depth(&text, MAX_DEPTH).is_ok());
            }
            Err(MsgpackError::Transcode { detail }) => {
                prop_assert!(false, "the walk let through what the transcoder refused: {}", detail);
            }
            Err(_) => {}
        }
    }

    /// The bound on the JSON text holds whatever the input.
    #[test]
    fn the_json_text_never_exceeds_its_bound(value in json_value(), limit in 0usize..400) {
        let bytes = json_to_msgpack(&value.to_string()).unwrap();
        match msgpack_to_json_within(&bytes, limit) {
            Ok(text) => prop_assert!(text.len() <= limit),
            Err(MsgpackError::TooLarge { size, limit: l }) => {
                prop_assert_eq!(l, limit);
                prop_assert!(size > limit);
                prop_assert_eq!(size, value.to_string().len());
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Nesting in MessagePack is refused exactly where the JSON text's would be.
    #[test]
    fn nesting_is_refused_where_json_text_would_be(depth in 1usize..80, map in any::<bool>()) {
        let mut bytes = Vec::new();
        for _ in 0..depth - 1 {
            if map {
                bytes.extend_from_slice(&[0x81, 0xa1, b'k']);
            } else {
                bytes.push(0x91);
            }
        }
        bytes.push(if map { 0x80 } else { 0x90 });
        let result = msgpack_to_json(&bytes);
        if depth <= MAX_DEPTH {
            let text = result.unwrap();
            prop_assert!(check_depth(&text, MAX_DEPTH).is_ok());
        } else {
            prop_assert_eq!(result, Err(MsgpackError::TooDeep { limit: MAX_DEPTH }));
        }
    }
}
