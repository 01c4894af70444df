//! The cost of sealing and opening one 200-byte payload (docs/benchmarks.md, "End-to-end
//! encryption"): `cargo bench -p cerebrum-e2ee --bench seal`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cerebrum_e2ee::{ChannelCrypto, ChannelKey, KeyProvider, Keyring, open_payload, seal_payload};
use cerebrum_protocol::{Envelope, KeyId};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const CHANNEL: &str = "chat:biology-101";

/// A chat message whose payload's JSON text is exactly 200 bytes.
fn envelope() -> Envelope {
    let fill = "x".repeat(200 - r#"{"text":""}"#.len());
    let envelope =
        Envelope::from_value("chat.message", &serde_json::json!({ "text": fill })).unwrap();
    assert_eq!(envelope.payload().get().len(), 200);
    envelope
}

fn bench(c: &mut Criterion) {
    let keys = Keyring::new();
    keys.insert(
        CHANNEL,
        KeyId::new("k1").unwrap(),
        ChannelKey::from_bytes([7; 32]),
    )
    .unwrap();
    let crypto = ChannelCrypto::new(keys.clone());
    let plain = envelope();
    let delivered = crypto
        .seal(CHANNEL, plain.clone())
        .unwrap()
        .with_channel(CHANNEL)
        .unwrap()
        .with_offset(1);
    c.bench_function("seal 200-byte payload", |b| {
        b.iter(|| crypto.seal(CHANNEL, black_box(plain.clone())).unwrap());
    });
    c.bench_function("open 200-byte payload", |b| {
        b.iter(|| crypto.open(black_box(delivered.clone())).unwrap());
    });
    // The cipher alone, without key lookup, nonce draw, base64url and the envelope.
    let (kid, key) = keys.sealing_key(CHANNEL).unwrap();
    let sealed = seal_payload(
        &key,
        &kid,
        CHANNEL,
        "chat.message",
        plain.payload(),
        [9; 24],
    )
    .unwrap();
    c.bench_function("seal_payload 200 bytes (cipher only)", |b| {
        b.iter(|| {
            seal_payload(
                &key,
                &kid,
                CHANNEL,
                "chat.message",
                black_box(plain.payload()),
                [9; 24],
            )
            .unwrap()
        });
    });
    c.bench_function("open_payload 200 bytes (cipher only)", |b| {
        b.iter(|| open_payload(&key, CHANNEL, "chat.message", black_box(&sealed)).unwrap());
    });
    c.bench_function("clone envelope (baseline of both)", |b| {
        b.iter(|| black_box(plain.clone()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
