//! The codec on arbitrary bytes.

use std::fmt::Debug;

use cerebrum_protocol::{
    Ack, Auth, ClientMessage, CollaborativeSession, Envelope, ErrorPayload, MAX_FRAME_BYTES,
    Notification, Payload, Ping, Pong, ProtocolError, ServerMessage, StudyMetrics, StudySessionEnd,
    StudySessionStart, Subscribe, Subscribed, SystemStatus, Unsubscribe, Unsubscribed, Welcome,
    decode, decode_bytes, decode_payload, encode, encode_payload,
};

/// Decodes `data` as a frame and checks every property of the codec on it.
///
/// - `decode_bytes(data)` and `decode(text)` agree (and invalid UTF-8 is refused);
/// - what decodes re-encodes to a frame that decodes to the same envelope, and [`encode`] writes
///   what serde's `Serialize` of the envelope writes;
/// - [`decode_payload`] (the one-pass fast path) agrees with [`decode`] + `typed` for every type
///   of the catalog;
/// - a known message that validates re-encodes to the same message.
pub fn run(data: &[u8]) {
    let _ = decoded_kind(data);
}

/// [`run`], giving the `type` of the frame when it decoded (the stable tests check that the
/// corpus reaches every type of the catalog).
pub fn decoded_kind(data: &[u8]) -> Option<String> {
    let by_bytes = decode_bytes(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(by_bytes.is_err(), "invalid UTF-8 decoded: {by_bytes:?}");
        return None;
    };
    let by_text = decode(text);
    assert_eq!(by_bytes, by_text, "decode_bytes and decode disagree");
    typed_paths_agree(text, by_text.as_ref().ok());
    let envelope = by_text.ok()?;
    round_trip(&envelope);
    messages_round_trip(&envelope);
    Some(envelope.kind().to_owned())
}

/// `encode` → `decode` gives the same envelope; the only allowed failure is a frame that grew
/// past the size limit (a float timestamp written back as an integer, `1e15` →
/// `1000000000000000`).
pub fn round_trip(envelope: &Envelope) {
    let text = encode(envelope);
    match decode(&text) {
        Ok(back) => assert_eq!(&back, envelope, "decode(encode(e)) != e for {text}"),
        Err(ProtocolError::TooLarge { .. }) if text.len() > MAX_FRAME_BYTES => {}
        Err(err) => panic!("encode wrote a frame that decode refuses ({err}): {text}"),
    }
    let serialised = serde_json::to_string(envelope).expect("an envelope serialises");
    assert_eq!(serialised, text, "encode and Serialize disagree");
}

fn messages_round_trip(envelope: &Envelope) {
    if let Ok(message) = ServerMessage::from_envelope(envelope) {
        let again = message
            .to_envelope()
            .expect("a message read from an envelope converts back");
        let back = ServerMessage::from_envelope(&decode(&encode(&again)).expect("re-encoded"))
            .expect("a re-encoded server message validates");
        assert_eq!(
            back, message,
            "server message changed through encode/decode"
        );
    }
    if let Ok(message) = ClientMessage::from_envelope(envelope) {
        let again = message
            .to_envelope()
            .expect("a message read from an envelope converts back");
        let back = ClientMessage::from_envelope(&decode(&encode(&again)).expect("re-encoded"))
            .expect("a re-encoded client message validates");
        assert_eq!(
            back, message,
            "client message changed through encode/decode"
        );
    }
}

fn typed_paths_agree(text: &str, envelope: Option<&Envelope>) {
    fast_path_agrees::<Ping>(text, envelope);
    fast_path_agrees::<Pong>(text, envelope);
    fast_path_agrees::<StudyMetrics>(text, envelope);
    fast_path_agrees::<CollaborativeSession>(text, envelope);
    fast_path_agrees::<Notification>(text, envelope);
    fast_path_agrees::<SystemStatus>(text, envelope);
    fast_path_agrees::<StudySessionStart>(text, envelope);
    fast_path_agrees::<StudySessionEnd>(text, envelope);
    fast_path_agrees::<Welcome>(text, envelope);
    fast_path_agrees::<Auth>(text, envelope);
    fast_path_agrees::<Subscribe>(text, envelope);
    fast_path_agrees::<Subscribed>(text, envelope);
    fast_path_agrees::<Unsubscribe>(text, envelope);
    fast_path_agrees::<Unsubscribed>(text, envelope);
    fast_path_agrees::<Ack>(text, envelope);
    fast_path_agrees::<ErrorPayload>(text, envelope);
}

/// [`decode_payload::<P>`] accepts exactly what `decode` then `typed::<P>` accepts, with the
/// same result; and [`encode_payload`] writes what `from_payload` + `encode` writes.
fn fast_path_agrees<P: Payload + PartialEq + Debug>(text: &str, envelope: Option<&Envelope>) {
    let fast = decode_payload::<P>(text);
    let slow = envelope.map(|e| e.typed::<P>());
    match (fast, slow) {
        (Ok((meta, payload)), Some(Ok(expected))) => {
            let envelope = envelope.expect("slow path decoded");
            assert_eq!(
                &meta,
                envelope.meta(),
                "{}: fast path meta differs",
                P::TYPE
            );
            assert!(
                payload == expected,
                "{}: fast path payload differs",
                P::TYPE
            );
            let one_pass = encode_payload(&payload, &meta).expect("a valid payload encodes");
            let two_pass = encode(
                &Envelope::from_payload(&payload)
                    .expect("a valid payload makes an envelope")
                    .with_meta(meta),
            );
            assert_eq!(one_pass, two_pass, "{}: encode_payload differs", P::TYPE);
        }
        (Ok(_), _) => panic!(
            "{}: the fast path accepts a frame the slow path refuses",
            P::TYPE
        ),
        (Err(_), Some(Ok(_))) => {
            panic!(
                "{}: the fast path refuses a frame the slow path accepts",
                P::TYPE
            )
        }
        (Err(_), _) => {}
    }
}
