//! Property tests of the codec: round trips, no panics on any input, deep nesting refused.
//! 13 500 generated cases in all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use cerebrum_protocol::{
    Cipher, CollaborativeSession, Envelope, KeyId, MAX_DEPTH, MessageId, Meta, Participant,
    ProtocolError, SealedPayload, StudyMetrics, check_depth, decode, decode_bytes, decode_payload,
    encode, encode_payload,
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

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        "[a-z0-9_.:-]{1,64}",
        json_value(),
        proptest::option::of(any::<u64>()),
        proptest::option::of("\\PC{1,64}"),
        proptest::option::of("[A-Za-z0-9_:.@-]{1,128}"),
        proptest::option::of(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(|(kind, payload, timestamp, id, channel, offset, ack)| {
            let mut envelope = Envelope::from_value(kind, &payload).expect("valid envelope");
            if let Some(ts) = timestamp {
                envelope = envelope.with_timestamp(ts);
            }
            if let Some(id) = id {
                envelope = envelope.with_message_id(MessageId::new(id).expect("valid id"));
            }
            if let Some(channel) = channel {
                envelope = envelope.with_channel(channel).expect("valid channel");
            }
            if let Some(offset) = offset {
                envelope = envelope.with_offset(offset);
            }
            envelope.with_ack(ack)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn encode_then_decode_is_identity(envelope in envelope()) {
        let text = encode(&envelope);
        let back = decode(&text).expect("an encoded envelope decodes");
        prop_assert_eq!(&back, &envelope);
        prop_assert_eq!(encode(&back), text);
        let payload: Value = back.payload_as().expect("payload is JSON");
        let original: Value = envelope.payload_as().expect("payload is JSON");
        prop_assert_eq!(payload, original);
    }

    #[test]
    fn arbitrary_text_never_panics(text in prop_oneof![
        any::<String>(),
        "[\\[\\]{}\":,0-9a-zA-Z\\\\ .eE+-]{0,300}",
        "\\{\"type\":\"[a-z_]{1,10}\",(\"payload\":)?[\\[\\]{}\":,0-9a-z ]{0,100}\\}",
    ]) {
        match decode(&text) {
            Ok(envelope) => { let _ = encode(&envelope); }
            Err(err) => { let _ = err.code(); }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(err) = decode_bytes(&bytes) {
            let _ = err.code();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow(
        depth in (MAX_DEPTH + 1)..50_000usize,
        object in any::<bool>(),
    ) {
        let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
        let payload = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let frame = format!(r#"{{"type":"x","payload":{payload}}}"#);
        let result = decode(&frame);
        let refused = matches!(
            result,
            Err(ProtocolError::TooDeep { .. } | ProtocolError::TooLarge { .. })
        );
        prop_assert!(refused, "accepted depth {}", depth);
    }
}

fn participant() -> impl Strategy<Value = Participant> {
    (
        "[a-z0-9-]{1,16}",
        "\\PC{0,24}",
        proptest::option::of("https://[a-z]{1,10}\\.org/[a-z]{1,8}\\.png"),
        any::<u64>(),
    )
        .prop_map(|(user_id, user_name, avatar_url, joined_at)| Participant {
            user_id,
            user_name,
            avatar_url,
            joined_at,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn typed_payloads_round_trip(
        user_id in "[a-z0-9-]{1,16}",
        hours in 0.0f64..1e6,
        progress in 0.0f64..=100.0,
        topic in proptest::option::of("\\PC{1,40}"),
        duration in 0.0f64..1e6,
        streak in any::<u32>(),
        participants in prop::collection::vec(participant(), 0..30),
    ) {
        let metrics = StudyMetrics {
            user_id: user_id.clone(),
            study_hours: hours,
            progress,
            current_topic: topic,
            session_duration: duration,
            streak,
        };
        let back = decode(&encode(&Envelope::from_payload(&metrics).unwrap())).unwrap();
        prop_assert_eq!(back.typed::<StudyMetrics>().unwrap(), metrics);

        let session = CollaborativeSession {
            session_id: format!("session:{user_id}"),
            topic: "Cell Biology".into(),
            active_users: participants.len() as u32,
            participants,
        };
        let back = decode(&encode(&Envelope::from_payload(&session).unwrap())).unwrap();
        prop_assert_eq!(back.typed::<CollaborativeSession>().unwrap(), session);
    }
}

fn study_metrics() -> impl Strategy<Value = StudyMetrics> {
    (
        "[a-z0-9-]{0,16}",
        -1.0f64..1e6,
        -1.0f64..=101.0,
        proptest::option::of("\\PC{0,40}"),
        0.0f64..1e6,
        any::<u32>(),
    )
        .prop_map(
            |(user_id, study_hours, progress, current_topic, session_duration, streak)| {
                StudyMetrics {
                    user_id,
                    study_hours,
                    progress,
                    current_topic,
                    session_duration,
                    streak,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// The one-pass typed codec agrees with `decode` + `typed` and `from_payload` + `encode`,
    /// on valid and invalid payloads alike.
    #[test]
    fn typed_fast_path_agrees_with_the_general_codec(
        metrics in study_metrics(),
        timestamp in proptest::option::of(any::<u64>()),
        channel in proptest::option::of("[A-Za-z0-9_:.@ -]{1,20}"),
        ack in any::<bool>(),
        mutation in 0usize..4,
    ) {
        let mut meta = Meta::default().with_ack(ack);
        if let Some(ts) = timestamp {
            meta = meta.with_timestamp(ts);
        }
        if let Some(Ok(with)) = channel.as_deref().map(|c| meta.clone().with_channel(c)) {
            meta = with;
        }
        let fast = encode_payload(&metrics, &meta);
        let general = Envelope::from_payload(&metrics).map(|e| encode(&e.with_meta(meta.clone())));
        prop_assert_eq!(&fast, &general);

        // A frame as a peer might send it, sometimes broken on purpose.
        let body = serde_json::to_string(&metrics).unwrap();
        let frame = match mutation {
            0 => format!(r#"{{"type":"study_metrics_update","payload":{body},"timestamp":1}}"#),
            1 => format!(r#"{{"type":"study_metrics_update","payload":{body},"channel":"{}"}}"#,
                         channel.as_deref().unwrap_or("x")),
            2 => format!(r#"{{"type":"notification","payload":{body}}}"#),
            _ => format!(r#"{{"type":"study_metrics_update","payload":{body},"timestamp":1.0,"extra":[1]}}"#),
        };
        let fast = decode_payload::<StudyMetrics>(&frame);
        let general = decode(&frame).and_then(|e| Ok((e.meta().clone(), e.typed::<StudyMetrics>()?)));
        prop_assert_eq!(fast, general);
    }
}

/// The depth rule byte by byte, the obvious way: the reference for the fast scan.
fn reference_depth_ok(text: &str, limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// The memchr-based depth scan agrees with the byte-by-byte reference on any text.
    #[test]
    fn depth_scan_agrees_with_the_reference(
        text in "[\\[\\]{}\"\\\\a ]{0,200}",
        limit in 0usize..8,
    ) {
        prop_assert_eq!(check_depth(&text, limit).is_ok(), reference_depth_ok(&text, limit));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// A sealed payload reads back as written, and any text at all either reads as a sealed
    /// payload or is refused with an error naming a payload field, never a panic.
    #[test]
    fn sealed_payloads_round_trip_and_junk_is_refused(
        kid in "[A-Za-z0-9_.:-]{1,64}",
        nonce in any::<[u8; 24]>(),
        ciphertext in prop::collection::vec(any::<u8>(), 17..600),
        junk in json_value(),
    ) {
        let sealed = SealedPayload {
            cipher: Cipher::XChaCha20Poly1305,
            key_id: KeyId::new(kid).unwrap(),
            nonce,
            ciphertext,
        };
        let raw = sealed.to_raw();
        prop_assert!(SealedPayload::claims_sealed(&raw));
        prop_assert_eq!(SealedPayload::from_raw(&raw).unwrap(), sealed);
        let junk = serde_json::value::to_raw_value(&junk).unwrap();
        if let Err(err) = SealedPayload::from_raw(&junk) {
            prop_assert!(
                matches!(&err, ProtocolError::Validation { field, .. } if field.starts_with("payload")),
                "{err:?}"
            );
        }
    }
}
