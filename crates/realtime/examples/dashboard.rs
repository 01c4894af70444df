//! The complete dashboard: every message folded into the state store, printed once a second
//! when it changed.
//!
//! `cargo run -p cerebrum-realtime --example dashboard [-- --url ws://127.0.0.1:8080/ws]`
#![allow(clippy::print_stdout)]

mod common;

use cerebrum_realtime::store::DashboardState;

fn render(state: &DashboardState) {
    println!(
        "── {} · {} messages · latency {} · {} queued",
        state.status,
        state.messages,
        state
            .latency
            .map_or_else(|| "–".to_owned(), |l| format!("{} ms", l.as_millis())),
        state.queued
    );
    if let Some(m) = &state.study_metrics {
        println!(
            "   metrics   {:.2} h · {:.1}% · streak {} · {}",
            m.study_hours,
            m.progress,
            m.streak,
            m.current_topic.as_deref().unwrap_or("not studying")
        );
    }
    for (topic, session) in &state.sessions {
        println!("   session   {topic}: {} studying", session.active_users);
    }
    if let Some(n) = state.notifications.back() {
        println!(
            "   latest    {} ({} kept)",
            n.title,
            state.notifications.len()
        );
    }
    if let Some(s) = &state.system_status {
        println!("   system    {:?}", s.status);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = common::Options::from_args();
    common::init_tracing(&options);
    options.announce("dashboard");
    let client = options.builder().build()?;
    let store = client.store();
    client.connect();
    let deadline = tokio::time::sleep(options.duration());
    tokio::pin!(deadline);
    // One frame a second, when something changed.
    let mut frames = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut shown: Option<DashboardState> = None;
    loop {
        tokio::select! {
            () = &mut deadline => break,
            _ = frames.tick() => {
                let state = store.snapshot();
                if shown.as_ref() != Some(&state) {
                    render(&state);
                    shown = Some(state);
                }
            }
        }
    }
    client.disconnect().await;
    Ok(())
}
