//! Sealing and opening: round trips, every way a payload can fail to open, the binding to
//! channel and type, rotation, and the test vector that docs/protocol.md shows.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use cerebrum_e2ee::{
    ChannelCrypto, ChannelKey, KeyProvider, Keyring, OpenError, open_payload, seal_payload,
};
use cerebrum_protocol::{Envelope, KeyId, MessageId, SealedPayload, decode, encode};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Value, json};

const CHANNEL: &str = "chat:biology-101";

fn kid(id: &str) -> KeyId {
    KeyId::new(id).unwrap()
}

fn crypto_with(channel: &str, id: &str, key: [u8; 32]) -> (ChannelCrypto, Keyring) {
    let keys = Keyring::new();
    keys.insert(channel, kid(id), ChannelKey::from_bytes(key))
        .unwrap();
    (ChannelCrypto::new(keys.clone()), keys)
}

/// What a sender's `publish(CHANNEL, kind, payload)` puts on the wire and the server relays.
fn delivered(crypto: &ChannelCrypto, kind: &str, payload: &Value) -> Envelope {
    let plain = Envelope::from_value(kind, payload).unwrap();
    crypto
        .seal(CHANNEL, plain)
        .unwrap()
        .with_channel(CHANNEL)
        .unwrap()
        .with_offset(7)
        .with_message_id(MessageId::new("m-1").unwrap())
        .with_timestamp(1_732_752_000_000)
}

/// The delivered envelope with its sealed payload edited by `edit`.
fn edited(envelope: &Envelope, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Envelope {
    let mut payload: Value = serde_json::from_str(envelope.payload().get()).unwrap();
    edit(payload.as_object_mut().unwrap());
    let raw = RawValue::from_string(payload.to_string()).unwrap();
    let (kind, _, meta) = envelope.clone().into_parts();
    Envelope::new(kind, raw).unwrap().with_meta(meta)
}

#[test]
fn seal_then_open_gives_back_the_payload_and_every_other_field() {
    let (crypto, _) = crypto_with(CHANNEL, "k1", [7; 32]);
    let payload = json!({"text": "Mitosis has 4 phases", "n": [1, 2.5, null]});
    let sealed = delivered(&crypto, "chat.message", &payload);
    let text = encode(&sealed);
    assert!(!text.contains("Mitosis"), "{text}");
    // The wire frame is an ordinary envelope whose payload is a plain JSON object.
    let on_wire = decode(&text).unwrap();
    let sealed_payload = SealedPayload::from_raw(on_wire.payload()).unwrap();
    assert_eq!(sealed_payload.key_id, kid("k1"));
    let opened = crypto.open(on_wire).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(opened.payload().get()).unwrap(),
        payload
    );
    assert_eq!(opened.kind(), "chat.message");
    assert_eq!(opened.channel(), Some(CHANNEL));
    assert_eq!(opened.offset(), Some(7));
    assert_eq!(opened.message_id().map(MessageId::as_str), Some("m-1"));
    assert_eq!(opened.timestamp(), Some(1_732_752_000_000));
}

#[test]
fn two_seals_of_one_payload_differ() {
    let (crypto, _) = crypto_with(CHANNEL, "k1", [7; 32]);
    let a = delivered(&crypto, "chat.message", &json!("same"));
    let b = delivered(&crypto, "chat.message", &json!("same"));
    assert_ne!(a.payload().get(), b.payload().get(), "nonces must be fresh");
}

#[test]
fn tampered_ciphertext_nonce_or_key_id_fails_with_a_typed_error() {
    let (crypto, keys) = crypto_with(CHANNEL, "k1", [7; 32]);
    // A second key on the channel, so that a relabelled kid finds a key, and still fails.
    keys.insert(CHANNEL, kid("k0"), ChannelKey::from_bytes([9; 32]))
        .unwrap();
    keys.insert(CHANNEL, kid("k1"), ChannelKey::from_bytes([7; 32]))
        .unwrap();
    let sealed = delivered(&crypto, "chat.message", &json!({"text": "hi"}));

    let flip = |field: &str| {
        edited(&sealed, |p| {
            let text = p[field].as_str().unwrap();
            let mut bytes = base64_decode(text);
            bytes[0] ^= 1;
            p[field] = Value::String(base64_encode(&bytes));
        })
    };
    assert_eq!(crypto.open(flip("ct")), Err(OpenError::Authentication));
    assert_eq!(crypto.open(flip("nonce")), Err(OpenError::Authentication));
    let relabelled = edited(&sealed, |p| p["kid"] = json!("k0"));
    assert_eq!(crypto.open(relabelled), Err(OpenError::Authentication));
    let unknown = edited(&sealed, |p| p["kid"] = json!("k9"));
    assert_eq!(
        crypto.open(unknown),
        Err(OpenError::UnknownKey { key_id: kid("k9") })
    );
    let truncated = edited(&sealed, |p| {
        let text = p["ct"].as_str().unwrap();
        let bytes = base64_decode(text);
        p["ct"] = Value::String(base64_encode(&bytes[..bytes.len() - 1]));
    });
    assert_eq!(crypto.open(truncated), Err(OpenError::Authentication));
    let bad_enc = edited(&sealed, |p| p["enc"] = json!("aes-256-gcm"));
    assert!(matches!(crypto.open(bad_enc), Err(OpenError::Malformed(_))));
    let bad_nonce = edited(&sealed, |p| p["nonce"] = json!("AAAA"));
    assert!(matches!(
        crypto.open(bad_nonce),
        Err(OpenError::Malformed(_))
    ));
    let missing = edited(&sealed, |p| {
        p.remove("ct");
    });
    assert!(matches!(crypto.open(missing), Err(OpenError::Malformed(_))));
}

#[test]
fn plaintext_on_an_encrypted_channel_is_refused() {
    let (crypto, _) = crypto_with(CHANNEL, "k1", [7; 32]);
    for payload in [json!({"text": "hi"}), json!(null), json!("enc"), json!([1])] {
        let plain = Envelope::from_value("chat.message", &payload)
            .unwrap()
            .with_channel(CHANNEL)
            .unwrap();
        assert_eq!(crypto.open(plain), Err(OpenError::NotSealed), "{payload}");
    }
}

#[test]
fn a_wrong_key_fails_to_open() {
    let (sender, _) = crypto_with(CHANNEL, "k1", [7; 32]);
    let (receiver, _) = crypto_with(CHANNEL, "k1", [8; 32]);
    let sealed = delivered(&sender, "chat.message", &json!({"text": "hi"}));
    assert_eq!(receiver.open(sealed), Err(OpenError::Authentication));
}

#[test]
fn a_sealed_payload_moved_to_another_type_or_channel_fails() {
    let keys = Keyring::new();
    keys.insert(CHANNEL, kid("k1"), ChannelKey::from_bytes([7; 32]))
        .unwrap();
    // The same key on a second channel: only the associated data tells them apart.
    keys.insert("chat:other", kid("k1"), ChannelKey::from_bytes([7; 32]))
        .unwrap();
    let crypto = ChannelCrypto::new(keys);
    let sealed = delivered(&crypto, "chat.message", &json!({"text": "hi"}));
    let (_, payload, meta) = sealed.clone().into_parts();

    let retyped = Envelope::new("chat.edit", payload.clone())
        .unwrap()
        .with_meta(meta.clone());
    assert_eq!(crypto.open(retyped), Err(OpenError::Authentication));

    let moved = Envelope::new("chat.message", payload)
        .unwrap()
        .with_meta(meta)
        .with_channel("chat:other")
        .unwrap();
    assert_eq!(crypto.open(moved), Err(OpenError::Authentication));
    assert!(crypto.open(sealed).is_ok());
}

#[test]
fn rotation_seals_with_the_new_id_and_old_ids_keep_opening() {
    let (crypto, keys) = crypto_with(CHANNEL, "2026-11", [1; 32]);
    let old = delivered(&crypto, "chat.message", &json!({"text": "before"}));
    keys.insert(CHANNEL, kid("2026-12"), ChannelKey::from_bytes([2; 32]))
        .unwrap();
    let new = delivered(&crypto, "chat.message", &json!({"text": "after"}));
    assert_eq!(
        SealedPayload::from_raw(old.payload()).unwrap().key_id,
        kid("2026-11")
    );
    assert_eq!(
        SealedPayload::from_raw(new.payload()).unwrap().key_id,
        kid("2026-12")
    );
    assert!(crypto.open(old.clone()).is_ok());
    assert!(crypto.open(new.clone()).is_ok());
    keys.retire(CHANNEL, &kid("2026-11")).unwrap();
    assert_eq!(
        crypto.open(old),
        Err(OpenError::UnknownKey {
            key_id: kid("2026-11")
        })
    );
    assert!(crypto.open(new).is_ok());
}

#[test]
fn unencrypted_channels_and_channel_less_frames_pass_untouched() {
    let (crypto, _) = crypto_with(CHANNEL, "k1", [7; 32]);
    let lobby = Envelope::from_value("chat.message", &json!({"text": "hi"})).unwrap();
    assert_eq!(crypto.seal("chat:lobby", lobby.clone()).unwrap(), lobby);
    let delivered = lobby.clone().with_channel("chat:lobby").unwrap();
    assert_eq!(crypto.open(delivered.clone()).unwrap(), delivered);
    assert_eq!(crypto.open(lobby.clone()).unwrap(), lobby);
}

#[test]
fn the_documented_sealed_publication_is_this_key_nonce_and_payload() {
    // docs/protocol.md, "End-to-end encrypted channels", and the protocol crate's snapshot
    // `sealed_publication`: a test vector for other implementations (the JS client).
    let key = ChannelKey::from_base64url("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap();
    assert_eq!(key.as_bytes()[31], 31);
    let nonce: [u8; 24] = std::array::from_fn(|i| 0x40 + i as u8);
    let plaintext = RawValue::from_string(r#"{"text":"Mitosis has 4 phases"}"#.into()).unwrap();
    let sealed = seal_payload(
        &key,
        &kid("2026-12"),
        CHANNEL,
        "chat.message",
        &plaintext,
        nonce,
    )
    .unwrap();
    let raw = sealed.to_raw();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/tests/snapshots/wire_snapshots__sealed_publication.snap");
    let expected = std::fs::read_to_string(path).unwrap();
    let frame = expected.trim_end().lines().last().unwrap();
    let documented = decode(frame).unwrap();
    assert_eq!(documented.payload().get(), raw.get());
    let opened = open_payload(
        &key,
        CHANNEL,
        "chat.message",
        &SealedPayload::from_raw(&raw).unwrap(),
    )
    .unwrap();
    assert_eq!(opened.get(), plaintext.get());
}

#[test]
fn keys_never_show_in_debug_output() {
    let (crypto, keys) = crypto_with(CHANNEL, "k1", [0x5A; 32]);
    let (_, key) = keys.sealing_key(CHANNEL).unwrap();
    for text in [
        format!("{crypto:?}"),
        format!("{keys:?}"),
        format!("{key:?}"),
    ] {
        assert!(
            !text.contains("90") && !text.contains("5a") && !text.contains("5A"),
            "{text}"
        );
    }
}

proptest! {
    #[test]
    fn open_of_seal_is_the_payload(payload in json_value(), kind in "[a-z][a-z0-9_.:-]{0,20}") {
        let (crypto, _) = crypto_with(CHANNEL, "k1", [3; 32]);
        let plain = Envelope::from_value(kind.as_str(), &payload).unwrap();
        let sealed = crypto.seal(CHANNEL, plain.clone()).unwrap().with_channel(CHANNEL).unwrap();
        let on_wire = decode(&encode(&sealed)).unwrap();
        let opened = crypto.open(on_wire).unwrap();
        prop_assert_eq!(opened.payload().get(), plain.payload().get());
        prop_assert_eq!(opened.kind(), kind.as_str());
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
