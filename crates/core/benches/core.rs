//! Throughput of the core: inbound frames (decode + dispatch to events) and outbound sends while
//! connected, each beside the bare protocol codec doing the same work, so the core's overhead
//! is visible as a ratio.
//!
//! `cargo bench -p cerebrum-core --bench core -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::time::Instant;

use cerebrum_core::{ClientCore, Command, Config, Event, Outgoing, TransportEvent};
use cerebrum_protocol::{Envelope, MessageIdGenerator, StudySessionStart, decode, encode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const METRICS: &str = r#"{"type":"study_metrics_update","payload":{"userId":"user-123","studyHours":12.5,"progress":62.5,"currentTopic":"Genetics","sessionDuration":1800,"streak":4},"timestamp":1732752000000,"messageId":"01JD3Q7W6N0000000000000001"}"#;

const WELCOME: &str = r#"{"type":"welcome","payload":{"connectionId":"c1","protocol":1,"heartbeatIntervalMs":30000,"features":["ack","channels","presence","resume"],"serverTime":1732752000000},"timestamp":1732752000000,"messageId":"w1"}"#;

/// A core connected to a v1 server at `now`, with every output drained.
fn connected(now: Instant) -> ClientCore {
    let mut core = match ClientCore::new(
        Config::new("ws://127.0.0.1:8080/ws"),
        now,
        1_732_752_000_000,
    ) {
        Ok(core) => core,
        Err(err) => panic!("config: {err}"),
    };
    core.connect(now);
    core.handle_transport(TransportEvent::Opened, now);
    core.handle_transport(TransportEvent::Frame(WELCOME.to_owned()), now);
    while core.poll_command().is_some() {}
    while core.poll_event().is_some() {}
    core
}

fn inbound(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("inbound_study_metrics_update");
    group.throughput(Throughput::Elements(1));
    group.bench_function("protocol_decode", |b| {
        b.iter(|| {
            let frame = black_box(METRICS).to_owned();
            black_box(decode(&frame).ok())
        });
    });
    let mut core = connected(now);
    group.bench_function("core_handle_frame", |b| {
        b.iter(|| {
            let frame = black_box(METRICS).to_owned();
            core.handle_transport(TransportEvent::Frame(frame), now);
            match core.poll_event() {
                Some(Event::Message(envelope)) => black_box(envelope),
                other => panic!("unexpected {other:?}"),
            };
        });
    });
    group.finish();
}

fn outbound(c: &mut Criterion) {
    let now = Instant::now();
    let start = StudySessionStart {
        user_id: "user-123".into(),
        topic: "Genetics".into(),
        timestamp: None,
    };
    let envelope = match Envelope::from_payload(&start) {
        Ok(envelope) => envelope,
        Err(err) => panic!("payload: {err}"),
    };
    let mut group = c.benchmark_group("outbound_study_session_start");
    group.throughput(Throughput::Elements(1));
    let ids = MessageIdGenerator::with_node(1);
    group.bench_function("protocol_stamp_encode", |b| {
        b.iter(|| {
            let stamped = black_box(&envelope)
                .clone()
                .stamped(&ids, 1_732_752_000_000);
            black_box(encode(&stamped))
        });
    });
    let mut core = connected(now);
    let outgoing = Outgoing::new(envelope.clone());
    group.bench_function("core_send", |b| {
        b.iter(|| {
            let id = core.send(black_box(&outgoing).clone(), now);
            match core.poll_command() {
                Some(Command::Transmit(frame)) => black_box((id.ok(), frame)),
                other => panic!("unexpected {other:?}"),
            };
        });
    });
    group.finish();
}

criterion_group!(benches, inbound, outbound);
criterion_main!(benches);
