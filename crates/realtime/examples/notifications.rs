//! Real-time notifications: achievements, reminders, messages.
//!
//! `cargo run -p cerebrum-realtime --example notifications [-- --url ws://127.0.0.1:8080/ws]`
#![allow(clippy::print_stdout)]

mod common;

use cerebrum_realtime::{Notification, NotificationKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = common::Options::from_args();
    common::init_tracing(&options);
    options.announce("notifications");
    let client = options.builder().build()?;
    let mut notifications = client.on::<Notification>();
    client.connect();
    let deadline = tokio::time::sleep(options.duration());
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            next = notifications.recv() => {
                let Some(n) = next else { break };
                let icon = match n.kind {
                    NotificationKind::Success => "✓",
                    NotificationKind::Warning => "⚠",
                    NotificationKind::Error => "✗",
                    _ => "ℹ",
                };
                println!("{icon} [{:?}] {}: {}", n.priority, n.title, n.message);
                if let (Some(text), Some(url)) = (&n.action_text, &n.action_url) {
                    println!("    → {text} ({url})");
                }
            }
        }
    }
    client.disconnect().await;
    Ok(())
}
