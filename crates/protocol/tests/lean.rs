//! The lean decode path (`decode_lean`, `Envelope::typed_lean`, `lean_u64_member`) against the
//! serde path it stands in for in the browser client: for generated frames — valid envelopes of
//! every kind the client core reads, escapes, Unicode, numbers of every form, nested payloads,
//! unknown and repeated fields, arrays for structs, and broken or garbage text — both give the
//! same value, or both refuse with the same error (its wording aside where the parser's own
//! message is quoted).

use cerebrum_protocol::{
    Ack, Envelope, ErrorPayload, LeanPayload, Payload, ProtocolError, Subscribed, Unsubscribed,
    Welcome, decode, decode_lean, lean_u64_member,
};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The error with the parser's own wording left out: serde_json's messages carry a line and
/// column, the lean path's a byte offset.
fn comparable(err: ProtocolError) -> ProtocolError {
    match err {
        ProtocolError::InvalidJson { .. } => ProtocolError::InvalidJson {
            detail: String::new(),
        },
        other => other,
    }
}

fn check_decode(text: &str) -> Result<(), TestCaseError> {
    match (decode(text), decode_lean(text)) {
        (Ok(serde), Ok(lean)) => {
            prop_assert_eq!(&serde, &lean, "{}", text);
            check_typed(&serde)?;
        }
        (Err(serde), Err(lean)) => {
            prop_assert_eq!(comparable(serde), comparable(lean), "{}", text);
        }
        (serde, lean) => prop_assert!(false, "{text}\nserde: {serde:?}\nlean: {lean:?}"),
    }
    Ok(())
}

fn check_one<P: LeanPayload + PartialEq + std::fmt::Debug>(
    envelope: &Envelope,
) -> Result<(), TestCaseError> {
    match (envelope.typed::<P>(), envelope.typed_lean::<P>()) {
        (Ok(serde), Ok(lean)) => prop_assert_eq!(serde, lean, "{:?}", envelope),
        // serde names the field inside the payload (`payload.x`), the lean path only `payload`
        // (as serde with the feature `lean-errors`): the kind of error is the same.
        (Err(serde), Err(lean)) => prop_assert_eq!(serde.code(), lean.code(), "{:?}", envelope),
        (serde, lean) => {
            prop_assert!(false, "{envelope:?}\nserde: {serde:?}\nlean: {lean:?}");
        }
    }
    Ok(())
}

fn check_typed(envelope: &Envelope) -> Result<(), TestCaseError> {
    check_one::<Welcome>(envelope)?;
    check_one::<Ack>(envelope)?;
    check_one::<ErrorPayload>(envelope)?;
    check_one::<Subscribed>(envelope)?;
    check_one::<Unsubscribed>(envelope)?;
    Ok(())
}

/// A payload text read as each control payload (an envelope of its type around it), and as a
/// pong's nonce.
fn check_payload(payload: &str) -> Result<(), TestCaseError> {
    #[derive(Deserialize)]
    struct Nonce {
        nonce: u64,
    }
    let serde = serde_json::from_str::<Nonce>(payload).ok().map(|n| n.nonce);
    prop_assert_eq!(serde, lean_u64_member(payload, "nonce"), "{}", payload);
    let Ok(raw) = RawValue::from_string(payload.to_owned()) else {
        return Ok(());
    };
    for kind in [
        Welcome::TYPE,
        Ack::TYPE,
        ErrorPayload::TYPE,
        Subscribed::TYPE,
        Unsubscribed::TYPE,
    ] {
        if let Ok(envelope) = Envelope::new(kind, raw.clone()) {
            check_typed(&envelope)?;
        }
    }
    Ok(())
}

/// JSON whitespace, mostly none.
fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("\n\t\r ")]
}

/// A JSON string literal: plain text, Unicode, and every escape (surrogate pairs, lone
/// surrogates, which serde refuses only where it reads the text).
fn json_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[a-z0-9:_.-]{1,6}",
        1 => Just("é".to_owned()),
        1 => Just("😀".to_owned()),
        1 => Just(" ".to_owned()),
        1 => prop::sample::select(vec![
            r#"\""#, r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t", r"\u00e9", r"\u0041",
            r"\ud83d\ude00", r"\ud800", r"\udc00", r"\ud800\u0041", r"\ud800x", r"\uZZZZ",
            r"\x", "\u{1}", r"\u00", r"\u002d",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

/// A JSON number of every form (and some near misses).
fn json_number() -> impl Strategy<Value = String> {
    let random = (
        any::<bool>(),
        prop_oneof![Just("0".to_owned()), "[1-9][0-9]{0,20}"],
        prop::option::of("[0-9]{1,25}"),
        prop::option::of((
            prop::sample::select(vec!["e", "E"]),
            prop::sample::select(vec!["", "+", "-"]),
            "[0-9]{1,4}",
        )),
    )
        .prop_map(|(minus, whole, fraction, exponent)| {
            let mut text = String::new();
            if minus {
                text.push('-');
            }
            text.push_str(&whole);
            if let Some(fraction) = fraction {
                text.push('.');
                text.push_str(&fraction);
            }
            if let Some((e, sign, digits)) = exponent {
                text.push_str(e);
                text.push_str(sign);
                text.push_str(&digits);
            }
            text
        });
    let edges = prop::sample::select(EDGE_NUMBERS.to_vec()).prop_map(str::to_owned);
    prop_oneof![
        3 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        2 => any::<f64>().prop_map(|f| if f.is_finite() { format!("{f:e}") } else { "1e999".into() }),
        1 => (0u64..1 << 53, 0u32..12).prop_map(|(n, shift)| format!("{n}.{}", "0".repeat(shift as usize))),
        3 => random,
        2 => edges,
    ]
}

/// Numbers at the edges of the timestamp rule (a float that is a whole number below 9.007e15)
/// and of JSON's grammar.
const EDGE_NUMBERS: [&str; 36] = [
    "0",
    "-0",
    "-0.0",
    "0e999999999999",
    "1732752000000.0",
    "1732752000000.5",
    "1.0000000000000000001",
    "0.99999999999999999",
    "0.9999999999999999",
    "1e-400",
    "-1e-400",
    "2.4703282292062327e-324",
    "2.4703282292062328e-324",
    "-2.4703282292062328e-324",
    "4.9406564584124654e-324",
    "4503599627370495.5",
    "4503599627370495.75",
    "4503599627370496.5",
    "4503599627370497.5",
    "9006999999999999.5",
    "9006999999999999.4",
    "9007000000000000",
    "9007000000000000.0",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "1e15",
    "1.5e1",
    "12.5e-1",
    "1e400",
    "01",
    "1.",
    ".5",
    "-",
    "1e",
    "+1",
];

/// Any JSON value, nested.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        json_number(),
        json_string(),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// An object key: the names the readers know (some spelt with escapes), or others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KNOWN_KEYS.to_vec()).prop_map(|k| format!("\"{k}\"")),
        1 => Just(r#""typ\u0065""#.to_owned()),
        1 => Just(r#""nonc\u0065""#.to_owned()),
        1 => json_string(),
    ]
}

/// A key added to a struct: mostly one no reader knows (ignored), sometimes a known one
/// (repeated, or in the wrong struct).
fn extra_key() -> impl Strategy<Value = String> {
    prop_oneof![4 => json_string(), 1 => key()]
}

const KNOWN_KEYS: [&str; 22] = [
    "type",
    "payload",
    "timestamp",
    "messageId",
    "channel",
    "offset",
    "ack",
    "connectionId",
    "userId",
    "protocol",
    "heartbeatIntervalMs",
    "features",
    "serverTime",
    "code",
    "message",
    "refId",
    "epoch",
    "recovered",
    "missed",
    "nonce",
    "future",
    "Type",
];

/// A string that every rule accepts, mostly; sometimes one with escapes or odd text.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-z0-9-]{1,8}".prop_map(|t| format!("\"{t}\"")),
        1 => Just(r#""m\u002d\u00e9\ud83d\ude00\n""#.to_owned()),
        1 => json_string(),
    ]
    .boxed()
}

/// An unsigned number, mostly; sometimes a number of any form.
fn unsigned() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0u64..100_000).prop_map(|n| n.to_string()),
        2 => any::<u64>().prop_map(|n| n.to_string()),
        1 => json_number(),
    ]
    .boxed()
}

/// A value for a known field: mostly of the right type, sometimes anything.
fn field_value(name: &'static str) -> BoxedStrategy<String> {
    let right: BoxedStrategy<String> = match name {
        "type" | "code" => prop::sample::select(vec![
            "welcome",
            "welcome",
            "ack",
            "ack",
            "error",
            "error",
            "subscribed",
            "subscribed",
            "unsubscribed",
            "unsubscribed",
            "pong",
            "study_metrics_update",
            "chat.message",
            "Bad Type",
            "",
            "invalid_json",
        ])
        .prop_map(|t| format!("\"{t}\""))
        .boxed(),
        "messageId" | "refId" | "connectionId" | "userId" | "message" | "epoch" => prop_oneof![
            8 => text(),
            1 => Just("\"\"".to_owned()),
            1 => Just(format!("\"{}\"", "x".repeat(70))),
        ]
        .boxed(),
        "channel" => prop::sample::select(vec![
            "\"room:1\"",
            "\"room:1\"",
            "\"system\"",
            "\"user:u1\"",
            r#""room\u003a2""#,
            "\"a b\"",
            "\"\"",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "recovered" | "ack" => {
            prop::sample::select(vec!["true", "false", "true", "false", "null", "1"])
                .prop_map(str::to_owned)
                .boxed()
        }
        "features" => prop::collection::vec(text(), 0..4)
            .prop_map(|items| format!("[{}]", items.join(",")))
            .boxed(),
        "protocol" => {
            prop_oneof![4 => (0u64..3).prop_map(|n| n.to_string()), 1 => unsigned()].boxed()
        }
        "payload" => json_value().boxed(),
        _ => unsigned(),
    };
    prop_oneof![12 => right, 1 => json_value(), 1 => Just("null".to_owned())].boxed()
}

/// An object or array of the given fields (shuffled, some left out, some repeated, unknown
/// ones added, whitespace between tokens).
fn structure(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let members = names
        .iter()
        .map(|&name| {
            // The envelope's optional fields are often left out; `type` and a payload's fields
            // are mostly there.
            let present = if names.len() == ENVELOPE.len() && name != "type" {
                0.6
            } else {
                0.93
            };
            (
                prop::option::weighted(present, field_value(name)),
                Just(name),
            )
        })
        .collect::<Vec<_>>();
    (
        members,
        prop::collection::vec((extra_key(), json_value()), 0..3),
        any::<prop::sample::Index>(),
        prop::option::weighted(0.05, any::<prop::sample::Index>()),
        prop::option::weighted(0.08, Just(())),
        ws(),
        ws(),
    )
        .prop_map(|(members, extra, at, repeat, as_array, ws1, ws2)| {
            if as_array.is_some() {
                let items: Vec<String> =
                    members.into_iter().map_while(|(value, _)| value).collect();
                return format!("[{ws1}{}{ws2}]", items.join(","));
            }
            let mut fields: Vec<String> = members
                .into_iter()
                .filter_map(|(value, name)| value.map(|v| format!("\"{name}\"{ws1}:{ws2}{v}")))
                .collect();
            for (k, v) in extra {
                let at = at.index(fields.len() + 1);
                fields.insert(at, format!("{k}:{v}"));
            }
            if let Some(repeat) = repeat
                && !fields.is_empty()
            {
                let again = fields[repeat.index(fields.len())].clone();
                fields.push(again);
            }
            format!("{{{ws1}{}{ws2}}}", fields.join(","))
        })
}

const ENVELOPE: [&str; 7] = [
    "type",
    "payload",
    "timestamp",
    "messageId",
    "channel",
    "offset",
    "ack",
];

/// A payload of one of the shapes the client core reads, or anything.
fn payload() -> impl Strategy<Value = String> {
    prop_oneof![
        structure(&[
            "connectionId",
            "userId",
            "protocol",
            "heartbeatIntervalMs",
            "features",
            "serverTime"
        ]),
        structure(&["messageId"]),
        structure(&["code", "message", "refId"]),
        structure(&["channel", "offset", "epoch", "recovered", "missed"]),
        structure(&["channel"]),
        structure(&["nonce"]),
        json_value(),
    ]
}

/// A frame: an envelope (its payload one of the shapes above), sometimes broken.
fn frame() -> impl Strategy<Value = String> {
    let envelope = (structure(&ENVELOPE), payload(), any::<bool>())
        .prop_map(|(envelope, payload, with_payload)| {
            // Put a shaped payload in place of the generated one, when there is one.
            if with_payload && let Some(at) = envelope.find("\"payload\"") {
                let start = at + "\"payload\"".len();
                let rest = &envelope[start..];
                let colon = rest.find(':').map_or(0, |c| c + 1);
                return format!(
                    "{}{}{}",
                    &envelope[..start + colon],
                    payload,
                    skip_value(&rest[colon..])
                );
            }
            envelope
        })
        .boxed();
    let broken = (
        envelope.clone(),
        any::<prop::sample::Index>(),
        0u8..4,
        any::<char>(),
    )
        .prop_map(|(text, at, how, c)| {
            let mut chars: Vec<char> = text.chars().collect();
            let at = at.index(chars.len().max(1));
            match how {
                0 => chars.truncate(at),
                1 => chars.insert(at.min(chars.len()), c),
                2 if !chars.is_empty() => {
                    chars.remove(at.min(chars.len() - 1));
                }
                _ => {
                    if let Some(slot) = chars.get_mut(at) {
                        *slot = c;
                    }
                }
            }
            chars.into_iter().collect()
        });
    prop_oneof![
        6 => envelope,
        3 => broken,
        1 => json_value(),
        1 => any::<String>(),
        1 => (ws(), json_value()).prop_map(|(ws, v)| format!("{ws}{v}")),
    ]
}

/// The text after the JSON value at the start of `text` (for splicing a payload in).
fn skip_value(text: &str) -> &str {
    let mut de = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    match de.next() {
        Some(Ok(_)) => &text[de.byte_offset()..],
        _ => text,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn lean_decode_agrees_with_serde(text in frame()) {
        check_decode(&text)?;
    }

    #[test]
    fn lean_payload_reads_agree_with_serde(payload in payload()) {
        check_payload(&payload)?;
    }

    #[test]
    fn lean_timestamps_agree_with_serde(number in json_number(), ws in ws()) {
        check_decode(&format!(r#"{{"type":"x","timestamp":{ws}{number}{ws}}}"#))?;
        check_decode(&format!(r#"{{"type":"x","offset":{number}}}"#))?;
    }
}

#[test]
fn lean_edge_numbers_agree_with_serde() {
    let mut runner = proptest::test_runner::TestRunner::default();
    for number in EDGE_NUMBERS {
        let frame = format!(r#"{{"type":"x","timestamp":{number}}}"#);
        runner
            .run(&Just(frame), |frame| check_decode(&frame))
            .unwrap();
    }
}

#[test]
fn lean_decode_handles_deep_and_odd_input_like_serde() {
    for text in [
        "",
        " ",
        "{",
        "}",
        "{}",
        "[]",
        "null",
        "\u{a0}{}",
        r#"{"type":"x"} "#,
        r#"{"type":"x"}x"#,
        r#"{"type":"x",}"#,
        r#"{"type":"x","type":null}"#,
        r#"{"type":null,"type":"x"}"#,
        r#"{"type":"x","payload":nul}"#,
        r#"{"type":"x","payload":[1,]}"#,
        r#"{"type":"x","payload":{"a":1,}}"#,
        r#"{"type":"x","payload":"\ud800"}"#,
        r#"{"type":"\ud800"}"#,
        r#"{"\ud800":1,"type":"x"}"#,
        r#"{"type":"x","payload":{"\ud800":1}}"#,
        r#"{"type":"welcome","payload":["c1",null,1,30000,["ack"],5]}"#,
        r#"{"type":"error","payload":["rate_limited","slow down"]}"#,
        r#"{"type":"ack","payload":["m1","extra"]}"#,
    ] {
        check_decode(text).unwrap();
    }
    let deep = format!(
        r#"{{"type":"x","payload":{}{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    check_decode(&deep).unwrap();
    let deep_payload = format!(
        r#"{{"nonce":1,"x":{}{}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    check_payload(&deep_payload).unwrap();
}
