//! Collaborative study sessions: who studies which topic right now.
//!
//! `cargo run -p cerebrum-realtime --example collaborative_sessions [-- --url ws://127.0.0.1:8080/ws]`
#![allow(clippy::print_stdout)]

mod common;

use cerebrum_realtime::{CollaborativeSession, StudySessionStart};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = common::Options::from_args();
    common::init_tracing(&options);
    options.announce("collaborative sessions");
    let client = options.builder().build()?;
    let mut sessions = client.on::<CollaborativeSession>();
    client.connect();
    client
        .send_payload(&StudySessionStart {
            user_id: "user-123".into(),
            topic: "Genetics".into(),
            timestamp: None,
        })
        .await?;
    let deadline = tokio::time::sleep(options.duration());
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            next = sessions.recv() => {
                let Some(session) = next else { break };
                let names: Vec<&str> = session.participants.iter().map(|p| p.user_name.as_str()).collect();
                println!("{:<45} {} studying: {}", session.topic, session.active_users, names.join(", "));
            }
        }
    }
    client.disconnect().await;
    Ok(())
}
