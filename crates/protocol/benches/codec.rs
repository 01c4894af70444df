//! Codec cost: decode + typed read + encode of whole frames, against plain `serde_json` of the
//! bare payload struct (the floor any envelope format pays on top of).
//!
//! `cargo bench -p cerebrum-protocol --bench codec`

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;

use cerebrum_protocol::{
    CollaborativeSession, Envelope, MessageIdGenerator, Meta, Participant, Payload, StudyMetrics,
    decode, decode_lean, decode_payload, encode_into, encode_payload,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const T: u64 = 1_732_752_000_000;

fn metrics() -> StudyMetrics {
    StudyMetrics {
        user_id: "user-123".into(),
        study_hours: 42.25,
        progress: 62.5,
        current_topic: Some("Cell Biology".into()),
        session_duration: 1834.5,
        streak: 12,
    }
}

fn session() -> CollaborativeSession {
    let participants = (0..30)
        .map(|i| Participant {
            user_id: format!("user-{i:04}"),
            user_name: format!("Student Number {i}"),
            avatar_url: (i % 2 == 0).then(|| format!("https://cdn.example.org/avatars/{i}.png")),
            joined_at: T + i * 1_000,
        })
        .collect();
    CollaborativeSession {
        session_id: "session:cell-biology".into(),
        topic: "Cell Biology".into(),
        participants,
        active_users: 30,
    }
}

fn bench_payload<P: Payload>(c: &mut Criterion, name: &str, payload: &P) {
    let ids = MessageIdGenerator::with_node(1);
    let frame = {
        let mut out = String::new();
        let envelope = Envelope::from_payload(payload)
            .map(|e| e.stamped(&ids, T))
            .unwrap_or_else(|err| panic!("bench payload is valid: {err}"));
        encode_into(&envelope, &mut out);
        out
    };
    let bare = serde_json::to_string(payload).unwrap_or_default();

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("envelope: decode + typed + encode", |b| {
        let mut out = String::with_capacity(frame.len() + 64);
        b.iter(|| {
            let envelope = decode(black_box(&frame)).unwrap_or_else(|err| panic!("{err}"));
            let typed: P = envelope.typed().unwrap_or_else(|err| panic!("{err}"));
            let reply = Envelope::from_payload(&typed)
                .unwrap_or_else(|err| panic!("{err}"))
                .stamped(&ids, T);
            encode_into(&reply, &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("envelope, one pass: decode_payload + encode_payload", |b| {
        b.iter(|| {
            let (_, typed) =
                decode_payload::<P>(black_box(&frame)).unwrap_or_else(|err| panic!("{err}"));
            let meta = Meta::default().stamped(&ids, T);
            let text = encode_payload(&typed, &meta).unwrap_or_else(|err| panic!("{err}"));
            black_box(text.len())
        });
    });
    group.bench_function("envelope: decode + encode (raw payload)", |b| {
        let mut out = String::with_capacity(frame.len() + 64);
        b.iter(|| {
            let envelope = decode(black_box(&frame)).unwrap_or_else(|err| panic!("{err}"));
            encode_into(&envelope, &mut out);
            black_box(out.len())
        });
    });
    group.throughput(Throughput::Bytes(bare.len() as u64));
    group.bench_function("bare serde_json struct: from_str + to_string", |b| {
        b.iter(|| {
            let typed: P =
                serde_json::from_str(black_box(&bare)).unwrap_or_else(|err| panic!("{err}"));
            black_box(serde_json::to_string(&typed).map(|s| s.len()).unwrap_or(0))
        });
    });
    group.finish();
}

/// A client's app publication as a server reads it before relaying it: serde's derived
/// decoder against the lean reader (the same envelope, held to it by `tests/lean.rs`).
fn relay_decode(c: &mut Criterion) {
    let frame = r#"{"type":"chat.message","payload":{"text":"see you at the library at six, bring the genetics notes"},"channel":"room:r17","messageId":"01JD3Q7W6N0000000000000001","ack":true}"#;
    let mut group = c.benchmark_group("relay: decode a client publication");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode (serde)", |b| {
        b.iter(|| decode(black_box(frame)).map(|e| e.payload().get().len()))
    });
    group.bench_function("decode_lean", |b| {
        b.iter(|| decode_lean(black_box(frame)).map(|e| e.payload().get().len()))
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_payload(c, "study_metrics_update", &metrics());
    bench_payload(c, "collaborative_session_update_30", &session());
    relay_decode(c);
}

criterion_group!(benches, codec);
criterion_main!(benches);
