//! Runs one of the benchmark's loops `N` times, for instruction counting under valgrind, which is
//! immune to the noise of a shared machine (the criterion bench measures time):
//!
//! ```text
//! cargo build --release -p cerebrum-core --example instructions
//! for v in decode core_in encode core_out; do
//!   for n in 0 20000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!       target/release/examples/instructions $v $n 2>&1 | grep Collected
//!   done
//! done
//! ```
//!
//! (instructions per op = (count at 20000 − count at 0) / 20000)

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use cerebrum_core::{ClientCore, Command, Config, Event, Outgoing, TransportEvent};
use cerebrum_protocol::{Envelope, MessageIdGenerator, StudySessionStart, decode, encode};

const METRICS: &str = r#"{"type":"study_metrics_update","payload":{"userId":"user-123","studyHours":12.5,"progress":62.5,"currentTopic":"Genetics","sessionDuration":1800,"streak":4},"timestamp":1732752000000,"messageId":"01JD3Q7W6N0000000000000001"}"#;

const WELCOME: &str = r#"{"type":"welcome","payload":{"connectionId":"c1","protocol":1,"heartbeatIntervalMs":30000,"features":["ack","channels","presence","resume"],"serverTime":1732752000000},"timestamp":1732752000000,"messageId":"w1"}"#;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(variant), Some(n)) = (args.get(1), args.get(2)) else {
        return Err("usage: instructions decode|core_in|encode|core_out N".into());
    };
    let n: u64 = n.parse()?;
    let now = Instant::now();
    let mut core = ClientCore::new(
        Config::new("ws://127.0.0.1:8080/ws"),
        now,
        1_732_752_000_000,
    )?;
    core.connect(now);
    core.handle_transport(TransportEvent::Opened, now);
    core.handle_transport(TransportEvent::Frame(WELCOME.to_owned()), now);
    while core.poll_command().is_some() {}
    while core.poll_event().is_some() {}
    let start = StudySessionStart {
        user_id: "user-123".into(),
        topic: "Genetics".into(),
        timestamp: None,
    };
    let envelope = Envelope::from_payload(&start)?;
    let outgoing = Outgoing::new(envelope.clone());
    let ids = MessageIdGenerator::with_node(1);
    for _ in 0..n {
        match variant.as_str() {
            "decode" => {
                let frame = black_box(METRICS).to_owned();
                black_box(decode(&frame).ok());
            }
            "core_in" => {
                let frame = black_box(METRICS).to_owned();
                core.handle_transport(TransportEvent::Frame(frame), now);
                match core.poll_event() {
                    Some(Event::Message(envelope)) => drop(black_box(envelope)),
                    other => return Err(format!("unexpected {other:?}").into()),
                }
            }
            "encode" => {
                let stamped = black_box(&envelope)
                    .clone()
                    .stamped(&ids, 1_732_752_000_000);
                black_box(encode(&stamped));
            }
            "core_out" => {
                let id = core.send(black_box(&outgoing).clone(), now);
                match core.poll_command() {
                    Some(Command::Transmit(frame)) => drop(black_box((id.ok(), frame))),
                    other => return Err(format!("unexpected {other:?}").into()),
                }
            }
            other => return Err(format!("unknown variant {other}").into()),
        }
    }
    Ok(())
}
