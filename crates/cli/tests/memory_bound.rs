//! Issue 14, item 2: a handful of connections that subscribe to many channels and publish 64 KiB
//! frames into each cannot grow the server without bound. The node-wide history budget drops
//! the oldest channels' history first, so the server's peak RSS stays under a stated bound:
//! the budget plus a fixed allowance for the process and the connections' buffers.
//!
//! The attack runs against a real `cerebrum serve` process; its peak RSS (`VmHWM`) is read from
//! `/proc`. The message-rate and byte-rate limits are lifted for the attack (they have their own
//! tests), so that what is measured is the budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod common;

use common::Serve;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Attacking connections, channels each, 60 KiB frames per channel.
const CONNECTIONS: usize = 12;
const CHANNELS: usize = 64;
const FRAMES_PER_CHANNEL: usize = 6;
/// 12 × 64 × 6 × 60 KiB ≈ 270 MiB offered, all of it within each channel's history size (100)
/// and age (5 min): without the budget the server keeps it all.
const BUDGET_MIB: u64 = 24;
/// The stated bound: the budget plus 96 MiB for the process (a debug build), its runtime and
/// the connections' read and write buffers.
const BOUND_MIB: u64 = BUDGET_MIB + 96;

fn start(budget_bytes: u64, dir: &std::path::Path) -> Serve {
    Serve::start(|serve| {
        serve
            .args([
                "--rate-limit",
                "0",
                "--inbound-bytes-per-sec",
                "0",
                "--history-budget-bytes",
                &budget_bytes.to_string(),
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(dir)
            .env("RUST_LOG", "warn")
    })
}

/// Peak resident set of `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

async fn attack(url: &str, id: usize) {
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    // Reads everything that comes back (our own publications) so the server never sees a slow
    // reader, until the pong of the final ping: every publication before it was handled.
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message
                && text.as_str().starts_with(r#"{"type":"pong""#)
            {
                return true;
            }
        }
        false
    });
    let blob = "x".repeat(60 * 1024);
    for channel in 0..CHANNELS {
        let subscribe =
            format!(r#"{{"type":"subscribe","payload":{{"channel":"session:x{id}-{channel}"}}}}"#);
        sink.send(Message::text(subscribe)).await.unwrap();
    }
    for round in 0..FRAMES_PER_CHANNEL {
        for channel in 0..CHANNELS {
            let frame = format!(
                r#"{{"type":"blob","channel":"session:x{id}-{channel}","payload":"{blob}","messageId":"{id}-{round}-{channel}"}}"#
            );
            sink.send(Message::text(frame)).await.unwrap();
        }
    }
    sink.send(Message::text(r#"{"type":"ping","payload":{"done":1}}"#))
        .await
        .unwrap();
    assert!(
        reader.await.unwrap(),
        "connection {id} ended before its pong"
    );
}

async fn run_attack(budget_bytes: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let serve = start(budget_bytes, dir.path());
    let url = serve.url().to_owned();
    let attackers: Vec<_> = (0..CONNECTIONS)
        .map(|id| {
            let url = url.clone();
            tokio::spawn(async move { attack(&url, id).await })
        })
        .collect();
    for attacker in attackers {
        attacker.await.unwrap();
    }
    peak_rss_mib(serve.id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_budget_bounds_the_servers_memory_under_a_channel_flood() {
    let peak = run_attack(BUDGET_MIB * 1024 * 1024).await;
    eprintln!("peak RSS under the attack: {peak} MiB (bound {BOUND_MIB} MiB)");
    assert!(
        peak <= BOUND_MIB,
        "peak RSS {peak} MiB is over the bound of {BOUND_MIB} MiB"
    );
}

/// The same attack without the budget (what the server did before it): shows that the bound
/// above is not met by accident. Slow and memory-hungry, so not in the default run:
/// `cargo test -p cerebrum-cli --test memory_bound -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: the unbounded case, run by hand"]
async fn without_the_budget_the_same_attack_goes_past_the_bound() {
    let peak = run_attack(u64::MAX / 2).await;
    eprintln!("peak RSS without the budget: {peak} MiB (bound {BOUND_MIB} MiB)");
    assert!(peak > BOUND_MIB, "{peak} MiB");
}
