//! The TypeScript payload types of `@cerebrum/realtime` (`js/realtime/src/generated/protocol.ts`)
//! are generated from the Rust protocol types by this test, and it fails when they drift.
//!
//! `CEREBRUM_BLESS=1 cargo test -p cerebrum-wasm --test typescript` (run by `cargo xtask wasm`)
//! rewrites the file; without it the test compares (run by `cargo test` and
//! `cargo xtask wasm --check`).
//!
//! **Why serde-reflection rather than ts-rs, specta or tsify.** Those three generate from a
//! derive macro that must sit on the protocol types themselves, so `cerebrum-protocol` would
//! grow a TypeScript (or, for tsify, wasm-bindgen) dependency and a second set of attributes
//! that must agree with the serde ones (ts-rs, for one, writes `u64` as `bigint` unless told
//! otherwise on every field). serde-reflection records what serde itself does with the types —
//! the field names after `rename_all`, which fields are optional, the enums' lower-case values —
//! by running their `Serialize`/`Deserialize` impls, so the generated types are the wire's by
//! construction and the protocol crate stays untouched. The samples below are Rust literals: a
//! field added to a payload breaks their compilation, so nothing is silently left out.

#![allow(clippy::unwrap_used)] // a generator test: any failure is a test failure

use std::fmt::Write as _;

use cerebrum_protocol::{
    Ack, Auth, CollaborativeSession, ErrorCode, ErrorPayload, MessageId, Notification,
    NotificationKind, OverallStatus, Participant, Priority, Services, StreamPosition, StudyMetrics,
    StudySessionEnd, StudySessionStart, Subscribe, Subscribed, SystemStatus, Unsubscribe,
    Unsubscribed, Welcome,
};
use serde_reflection::{ContainerFormat, Format, Samples, Tracer, TracerConfig, VariantFormat};

/// The payloads, in the order the file lists them, with their wire `type` in the doc line.
fn trace() -> serde_reflection::Registry {
    let mut tracer = Tracer::new(TracerConfig::default());
    let mut samples = Samples::new();
    let id = MessageId::new("01JD0000000000000000000000").unwrap();
    macro_rules! sample {
        ($value:expr) => {
            tracer.trace_value(&mut samples, &$value).unwrap();
        };
    }
    sample!(StudyMetrics {
        user_id: "u".into(),
        study_hours: 1.5,
        progress: 10.5,
        current_topic: Some("t".into()),
        session_duration: 60.5,
        streak: 1,
    });
    sample!(CollaborativeSession {
        session_id: "s".into(),
        topic: "t".into(),
        participants: vec![Participant {
            user_id: "u".into(),
            user_name: "n".into(),
            avatar_url: Some("a".into()),
            joined_at: 1,
        }],
        active_users: 1,
    });
    sample!(Notification {
        id: "n".into(),
        title: "t".into(),
        message: "m".into(),
        kind: NotificationKind::Info,
        priority: Priority::Low,
        action_url: Some("/x".into()),
        action_text: Some("x".into()),
    });
    sample!(SystemStatus {
        status: OverallStatus::Operational,
        services: Services {
            api: true,
            database: true,
            cache: true,
            storage: true,
        },
        uptime: 1.5,
        last_check: 1,
    });
    sample!(StudySessionStart {
        user_id: "u".into(),
        topic: "t".into(),
        timestamp: Some(1),
    });
    sample!(StudySessionEnd {
        user_id: "u".into(),
        topic: "t".into(),
    });
    sample!(Welcome {
        connection_id: "c".into(),
        user_id: Some("u".into()),
        protocol: 1,
        heartbeat_interval_ms: 1,
        features: vec!["ack".into()],
        server_time: 1,
    });
    sample!(Auth { token: "t".into() });
    sample!(Subscribe {
        channel: "c".into(),
        since: Some(StreamPosition {
            offset: 1,
            epoch: "e".into(),
        }),
    });
    sample!(Subscribed {
        channel: "c".into(),
        offset: 1,
        epoch: "e".into(),
        recovered: true,
        missed: 0,
    });
    sample!(Unsubscribe {
        channel: "c".into()
    });
    sample!(Unsubscribed {
        channel: "c".into()
    });
    sample!(Ack {
        message_id: id.clone(),
    });
    sample!(ErrorPayload {
        code: ErrorCode::Internal,
        message: "m".into(),
        ref_id: Some(id),
    });
    // Every variant of the enums (a value shows only one).
    tracer.trace_simple_type::<NotificationKind>().unwrap();
    tracer.trace_simple_type::<Priority>().unwrap();
    tracer.trace_simple_type::<OverallStatus>().unwrap();
    tracer.registry().unwrap()
}

/// The wire `type` of each top-level payload, for the doc comments and the `MessageTypes` map.
const WIRE_TYPES: &[(&str, &str)] = &[
    ("StudyMetrics", "study_metrics_update"),
    ("CollaborativeSession", "collaborative_session_update"),
    ("Notification", "notification"),
    ("SystemStatus", "system_status"),
    ("StudySessionStart", "study_session_start"),
    ("StudySessionEnd", "study_session_end"),
    ("Welcome", "welcome"),
    ("Auth", "auth"),
    ("Subscribe", "subscribe"),
    ("Subscribed", "subscribed"),
    ("Unsubscribe", "unsubscribe"),
    ("Unsubscribed", "unsubscribed"),
    ("Ack", "ack"),
    ("ErrorPayload", "error"),
];

fn ts_type(format: &Format) -> String {
    match format {
        Format::TypeName(name) => name.clone(),
        Format::Unit => "null".into(),
        Format::Bool => "boolean".into(),
        Format::I8
        | Format::I16
        | Format::I32
        | Format::I64
        | Format::I128
        | Format::U8
        | Format::U16
        | Format::U32
        | Format::U64
        | Format::U128
        | Format::F32
        | Format::F64 => "number".into(),
        Format::Char | Format::Str => "string".into(),
        Format::Bytes => "number[]".into(),
        Format::Option(inner) => format!("{} | undefined", ts_type(inner)),
        Format::Seq(inner) => format!("Array<{}>", ts_type(inner)),
        Format::Map { key, value } => format!("Record<{}, {}>", ts_type(key), ts_type(value)),
        Format::Tuple(items) => format!(
            "[{}]",
            items.iter().map(ts_type).collect::<Vec<_>>().join(", ")
        ),
        Format::TupleArray { content, size } => {
            format!("[{}]", vec![ts_type(content); *size].join(", "))
        }
        other => panic!("no TypeScript for {other:?}"),
    }
}

fn generate() -> String {
    let registry = trace();
    let mut out = String::from(
        "// GENERATED from the Rust protocol types (crates/protocol) by\n\
         // crates/wasm/tests/typescript.rs: do not edit. Regenerate with `cargo xtask wasm`.\n\n",
    );
    for (name, container) in &registry {
        let wire = WIRE_TYPES.iter().find(|(n, _)| n == name).map(|(_, w)| *w);
        if let Some(wire) = wire {
            writeln!(out, "/** Payload of `{wire}`. */").unwrap();
        }
        match container {
            ContainerFormat::Struct(fields) => {
                writeln!(out, "export interface {name} {{").unwrap();
                for field in fields {
                    match &field.value {
                        Format::Option(inner) => {
                            writeln!(out, "  {}?: {};", field.name, ts_type(inner)).unwrap();
                        }
                        other => writeln!(out, "  {}: {};", field.name, ts_type(other)).unwrap(),
                    }
                }
                writeln!(out, "}}\n").unwrap();
            }
            ContainerFormat::NewTypeStruct(inner) => {
                writeln!(out, "export type {name} = {};\n", ts_type(inner)).unwrap();
            }
            ContainerFormat::Enum(variants) => {
                let values: Vec<String> = variants
                    .values()
                    .map(|variant| {
                        assert!(
                            matches!(variant.value, VariantFormat::Unit),
                            "{name}: only unit enums are on the wire"
                        );
                        format!("'{}'", variant.name)
                    })
                    .collect();
                writeln!(out, "export type {name} = {};\n", values.join(" | ")).unwrap();
            }
            other => panic!("{name}: no TypeScript for {other:?}"),
        }
    }
    out.push_str("/** Each payload type by its wire `type`. */\nexport interface MessageTypes {\n");
    for (name, wire) in WIRE_TYPES {
        assert!(registry.contains_key(*name), "{name} was not traced");
        writeln!(out, "  {wire}: {name};").unwrap();
    }
    out.push_str("}\n");
    out
}

#[test]
fn generated_typescript_types_match_the_rust_protocol_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../js/realtime/src/generated/protocol.ts");
    let fresh = generate();
    if std::env::var_os("CEREBRUM_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is not what the Rust protocol types generate: run `cargo xtask wasm` and commit",
        path.display()
    );
}

#[test]
fn optional_fields_and_enums_follow_serde() {
    let ts = generate();
    assert!(ts.contains("  currentTopic?: string;"));
    assert!(ts.contains("  studyHours: number;"));
    assert!(
        ts.contains("export type NotificationKind = 'info' | 'success' | 'warning' | 'error';")
    );
    assert!(ts.contains("  type: NotificationKind;"));
    assert!(ts.contains("  refId?: string;"));
}
