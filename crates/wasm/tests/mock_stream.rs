//! Mock mode's data stream is the Rust crate's: `js/realtime/test/fixtures/mock-stream-seed-42.json`
//! is what `cerebrum-mock`'s `DataGenerator` makes for seed 42, and the package's test checks
//! that its WebAssembly build makes the same (`js/realtime/test/timers.test.ts`).
//! `CEREBRUM_BLESS=1` rewrites the fixture.

#![allow(clippy::unwrap_used)] // a generator test: any failure is a test failure

use cerebrum_mock::{DataGenerator, MockMessage};
use cerebrum_protocol::{Envelope, MessageIdGenerator, encode};

/// The stream `mockDataStream(42, "user-123", 1_732_752_000_000, 4, 5000)` must give, computed
/// here with the Rust crate directly (not through the bindings).
fn rust_stream() -> String {
    let start = 1_732_752_000_000_u64;
    let mut generator = DataGenerator::new(42, "user-123", start);
    let ids = MessageIdGenerator::with_node(0);
    let mut frames = Vec::new();
    for tick in 1..=4_u64 {
        let now = start + 5_000 * tick;
        for message in generator.tick(now) {
            let envelope = match message {
                MockMessage::StudyMetrics(p) => Envelope::from_payload(&p),
                MockMessage::CollaborativeSession(p) => Envelope::from_payload(&p),
                MockMessage::Notification(p) => Envelope::from_payload(&p),
                MockMessage::SystemStatus(p) => Envelope::from_payload(&p),
                other => panic!("unexpected {other:?}"),
            }
            .unwrap();
            frames.push(encode(&envelope.stamped(&ids, now)));
        }
    }
    format!("[{}]", frames.join(","))
}

#[test]
fn the_committed_fixture_is_the_rust_generators_stream() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../js/realtime/test/fixtures/mock-stream-seed-42.json");
    let value: serde_json::Value = serde_json::from_str(&rust_stream()).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap() + "\n";
    if std::env::var_os("CEREBRUM_BLESS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == pretty,
        "{} is not the Rust generator's stream: rerun with CEREBRUM_BLESS=1",
        path.display()
    );
}
