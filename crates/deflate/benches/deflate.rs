//! The cost of compressing and inflating one frame (docs/benchmarks.md, "Compression and
//! MessagePack"): `cargo bench -p cerebrum-deflate --bench deflate`.
//!
//! The frames are what the server sends: a `study_metrics_update` of ~330 bytes, and a chat
//! publication of ~1 kB. The server compresses a publication once for all its subscribers; a
//! WebSocket library that compresses in its writer (yawc, sockudo-ws) pays the compression
//! once per subscriber instead.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;

use cerebrum_deflate::{Deflater, Inflater};
use criterion::{Criterion, criterion_group, criterion_main};

fn metrics_frame() -> String {
    r#"{"type":"study_metrics_update","payload":{"userId":"user-123","studyHours":3.5,"progress":40,"sessionDuration":600,"streak":2,"focusScore":0.91,"topics":["genetics","cell biology","evolution"],"weeklyHours":[1.5,2.0,0.5,3.0,2.5,1.0,3.5]},"timestamp":1732752000000,"messageId":"01JD3Q7W6N0000000000000001","channel":"user:user-123","offset":42}"#.to_owned()
}

fn chat_frame() -> String {
    format!(
        r#"{{"type":"chat.message","payload":{{"text":"{}","author":"Asha","room":"biology-101"}},"timestamp":1732752000000,"messageId":"01JD3Q7W6N0000000000000002","channel":"chat:biology-101","offset":7}}"#,
        "Spaced repetition works because each recall strengthens the memory trace; ".repeat(11)
    )
}

fn bench(c: &mut Criterion) {
    for (name, frame) in [("metrics", metrics_frame()), ("chat", chat_frame())] {
        for level in [1, 6] {
            let mut deflater = Deflater::new(level, 15).unwrap();
            let wire = deflater.compress(frame.as_bytes()).unwrap();
            println!(
                "{name} frame: {} bytes, {} compressed at level {level} ({:.0}%)",
                frame.len(),
                wire.len(),
                100.0 * wire.len() as f64 / frame.len() as f64
            );
            c.bench_function(
                &format!("compress {name} ({} B) level {level}", frame.len()),
                |b| {
                    b.iter(|| deflater.compress(black_box(frame.as_bytes())).unwrap());
                },
            );
        }
        let wire = Deflater::new(1, 15)
            .unwrap()
            .compress(frame.as_bytes())
            .unwrap();
        let mut inflater = Inflater::new(false);
        c.bench_function(&format!("inflate {name} ({} B)", frame.len()), |b| {
            b.iter(|| inflater.inflate(black_box(&wire), 64 * 1024).unwrap());
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
