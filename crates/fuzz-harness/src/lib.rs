//! The fuzzing harnesses of cerebrum-realtime, shared by the cargo-fuzz targets of `fuzz/`
//! (nightly, libFuzzer) and the stable proptest cases of `tests/fuzz_cases.rs`.
//!
//! Each harness takes arbitrary bytes, drives one entry point of the libraries with them and
//! **panics when a property breaks**: a panic inside the library is a defect, and so is a
//! broken invariant that the harness checks (a round trip that does not round-trip, a server
//! frame that its own decoder refuses, a verified token without `sub`).
//!
//! | harness | drives | checks |
//! |---|---|---|
//! | [`protocol::run`] | `decode`, `decode_bytes`, `decode_payload`, the message enums | never panics; bytes and text paths agree; `encode` → `decode` gives the same envelope; the typed fast path agrees with the slow path; typed messages re-encode to themselves |
//! | [`session::run`] | a few [`Session`](cerebrum_server::session::Session)s on one server, fed arbitrary operations | never panics; every outbound frame ≤ 64 KiB and accepted by `decode`; every `error` has a known code; the server's own frames validate |
//! | [`jwt::run`] | the server's token [`Verifier`](cerebrum_server::auth::Verifier) under HS256 and EdDSA | never panics; a verified token has a non-empty `sub` and is signed with the key's algorithm |
//! | [`admin::run`] | the admin API body checks ([`cerebrum_server::notification_body`], [`cerebrum_server::publish_body`]) | never panics; what they accept makes a frame that decodes to the same envelope |
//!
//! A separate crate (not a module of the libraries) so that `arbitrary` and the harnesses'
//! assertions never reach the published crates, while both the nightly fuzz targets and
//! `cargo test --workspace` on stable compile the same code.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// A harness reports a broken property by panicking: that is its whole job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod admin;
pub mod jwt;
pub mod protocol;
pub mod session;

/// A harness: bytes in, a panic when a property breaks.
pub type Harness = fn(&[u8]);

/// The harnesses by target name, as `fuzz/` names its targets and corpus directories.
pub const TARGETS: [(&str, Harness); 4] = [
    ("protocol_decode", protocol::run),
    ("server_session", session::run),
    ("jwt", jwt::run),
    ("admin_api", admin::run),
];
