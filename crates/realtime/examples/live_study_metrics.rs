//! Live study metrics: hours, progress towards today's goal, streak, current topic.
//!
//! `cargo run -p cerebrum-realtime --example live_study_metrics [-- --url ws://127.0.0.1:8080/ws]`
#![allow(clippy::print_stdout)]

mod common;

use cerebrum_realtime::{StudyMetrics, StudySessionStart};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = common::Options::from_args();
    common::init_tracing(&options);
    options.announce("live study metrics");
    let client = options.builder().build()?;
    let mut metrics = client.on::<StudyMetrics>();
    client.connect();
    // Start studying, as the origin's "Start Study Session" button does.
    client
        .send_payload(&StudySessionStart {
            user_id: "user-123".into(),
            topic: "Cell Biology".into(),
            timestamp: None,
        })
        .await?;
    let deadline = tokio::time::sleep(options.duration());
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            next = metrics.recv() => {
                let Some(m) = next else { break };
                println!(
                    "{:>7.2} h studied · {:>5.1}% of today's goal · streak {} days · {}",
                    m.study_hours,
                    m.progress,
                    m.streak,
                    m.current_topic.as_deref().unwrap_or("not studying"),
                );
            }
        }
    }
    client.disconnect().await;
    Ok(())
}
