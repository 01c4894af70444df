//! The cost of sealing and opening one 200-byte payload (docs/benchmarks.md, "End-to-end
//! encryption"): `cargo bench -p cerebrum-e2ee --bench seal`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cerebrum_e2ee::{ChannelCrypto, ChannelKey, Keyring};
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
    let crypto = ChannelCrypto::new(keys);
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
    c.bench_function("clone envelope (baseline of both)", |b| {
        b.iter(|| black_box(plain.clone()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
