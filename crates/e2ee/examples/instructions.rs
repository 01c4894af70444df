//! Seals and opens one 200-byte payload `N` times, for instruction counts that do not depend
//! on the machine's load (docs/benchmarks.md, "End-to-end encryption"):
//!
//! ```text
//! cargo build --release -p cerebrum-e2ee --example instructions
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/e2ee-0.out target/release/examples/instructions 0
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/e2ee-1000.out target/release/examples/instructions 1000
//! ```
//!
//! (the difference of the two totals, divided by 1 000, is the cost of one seal plus one open;
//! `seal` or `open` as the second argument counts one side only).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use cerebrum_e2ee::{ChannelCrypto, ChannelKey, Keyring};
use cerebrum_protocol::{Envelope, KeyId};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let side = args.next().unwrap_or_else(|| "both".into());
    let channel = "chat:biology-101";
    let keys = Keyring::new();
    keys.insert(
        channel,
        KeyId::new("k1").unwrap(),
        ChannelKey::from_bytes([7; 32]),
    )
    .unwrap();
    let crypto = ChannelCrypto::new(keys);
    let fill = "x".repeat(200 - r#"{"text":""}"#.len());
    let plain = Envelope::from_value("chat.message", &serde_json::json!({ "text": fill })).unwrap();
    assert_eq!(plain.payload().get().len(), 200);
    let delivered = crypto
        .seal(channel, plain.clone())
        .unwrap()
        .with_channel(channel)
        .unwrap();
    for _ in 0..n {
        if side != "open" {
            black_box(crypto.seal(channel, black_box(plain.clone())).unwrap());
        }
        if side != "seal" {
            black_box(crypto.open(black_box(delivered.clone())).unwrap());
        }
    }
}
