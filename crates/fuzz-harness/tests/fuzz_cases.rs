//! The fuzz harnesses on stable: every file of the committed corpus (`fuzz/corpus/<target>/`),
//! then proptest-generated inputs. A crash the fuzzer found stays here as a corpus file.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

use cerebrum_fuzz_harness::{TARGETS, admin, jwt, protocol, session};
use proptest::prelude::*;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_file_passes_its_harness() {
    for (target, harness) in TARGETS {
        let dir = corpus_dir(target);
        let entries = fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("the corpus of `{target}` ({}): {err}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| harness(&data));
            assert!(
                outcome.is_ok(),
                "`{target}` fails on {} (reproduce: cargo +nightly fuzz run {target} {})",
                path.display(),
                path.display()
            );
            count += 1;
        }
        assert!(count > 0, "the corpus of `{target}` is empty");
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    fs::read_dir(corpus_dir(target))
        .unwrap()
        .map(|entry| fs::read(entry.unwrap().path()).unwrap())
        .collect()
}

/// The corpus is not only refusals: it reaches every type of the catalog decoded.
#[test]
fn the_protocol_corpus_decodes_every_catalog_type() {
    let kinds: std::collections::BTreeSet<String> = corpus("protocol_decode")
        .iter()
        .filter_map(|data| protocol::decoded_kind(data))
        .collect();
    for kind in cerebrum_protocol::ClientMessage::TYPES
        .iter()
        .chain(cerebrum_protocol::ServerMessage::TYPES)
    {
        assert!(
            kinds.contains(*kind),
            "no corpus frame of type `{kind}` decodes"
        );
    }
}

/// The corpus holds tokens that verify under each key (the claim checks behind a valid
/// signature are reached).
#[test]
fn the_jwt_corpus_reaches_both_accepting_verifiers() {
    let accepted = corpus("jwt")
        .iter()
        .map(|data| jwt::verify(data))
        .fold([false; 2], |acc, v| [acc[0] || v[0], acc[1] || v[1]]);
    assert_eq!(accepted, [true, true], "[HS256, EdDSA] accepted some token");
}

/// The corpus holds bodies that each admin route accepts.
#[test]
fn the_admin_corpus_reaches_both_accepting_checks() {
    let accepted = corpus("admin_api")
        .iter()
        .map(|data| admin::accepted(data))
        .fold([false; 2], |acc, v| [acc[0] || v[0], acc[1] || v[1]]);
    assert_eq!(
        accepted,
        [true, true],
        "[notification, publish] accepted some body"
    );
}

/// JSON text of arbitrary shape, nested a few levels.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| serde_json::to_string(&x).unwrap()),
        ".{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-zA-Z]{1,8}", inner), 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap()))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// Envelope-shaped text: a type of the catalog (or not), a payload, optional fields of
/// right or wrong shape, in any order.
fn envelope_text() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        prop::sample::select(vec![
            "ping",
            "pong",
            "auth",
            "ack",
            "error",
            "welcome",
            "subscribe",
            "subscribed",
            "unsubscribe",
            "unsubscribed",
            "study_session_start",
            "study_session_end",
            "study_metrics_update",
            "collaborative_session_update",
            "notification",
            "system_status",
            "chat.message",
        ])
        .prop_map(|k| format!("\"{k}\"")),
        json_text(),
    ];
    let field = prop_oneof![
        json_text().prop_map(|v| format!("\"payload\":{v}")),
        prop_oneof![any::<u64>().prop_map(|n| n.to_string()), json_text()]
            .prop_map(|v| format!("\"timestamp\":{v}")),
        prop_oneof![
            ".{1,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            json_text()
        ]
        .prop_map(|v| format!("\"messageId\":{v}")),
        prop_oneof!["[a-z:]{1,10}".prop_map(|s| format!("\"{s}\"")), json_text()]
            .prop_map(|v| format!("\"channel\":{v}")),
        any::<u64>().prop_map(|n| format!("\"offset\":{n}")),
        any::<bool>().prop_map(|b| format!("\"ack\":{b}")),
    ];
    (kind, prop::collection::vec(field, 0..5)).prop_map(|(kind, fields)| {
        let mut all = vec![format!("\"type\":{kind}")];
        all.extend(fields);
        format!("{{{}}}", all.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn protocol_decode_on_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        protocol::run(&data);
    }

    #[test]
    fn protocol_decode_on_envelopes(text in envelope_text()) {
        protocol::run(text.as_bytes());
    }

    #[test]
    fn jwt_on_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        jwt::run(&data);
    }

    #[test]
    fn admin_api_on_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        admin::run(&data);
    }

    #[test]
    fn admin_api_on_json(choice in any::<u8>(), body in json_text()) {
        let mut data = vec![choice];
        data.extend_from_slice(body.as_bytes());
        admin::run(&data);
    }
}

proptest! {
    // A scenario runs up to 256 operations on three connections: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn server_session_on_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        session::run(&data);
    }
}
