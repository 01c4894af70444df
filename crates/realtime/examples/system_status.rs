//! System status monitor: overall status, services, uptime, plus the connection and latency.
//!
//! `cargo run -p cerebrum-realtime --example system_status [-- --url ws://127.0.0.1:8080/ws]`
#![allow(clippy::print_stdout)]

mod common;

use cerebrum_realtime::SystemStatus;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = common::Options::from_args();
    common::init_tracing(&options);
    options.announce("system status");
    let client = options
        .builder()
        .heartbeat(std::time::Duration::from_secs(5))
        .build()?;
    let mut statuses = client.on::<SystemStatus>();
    let mut connection = client.watch_status();
    client.connect();
    let deadline = tokio::time::sleep(options.duration());
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            changed = connection.changed() => {
                if changed.is_err() { break }
                println!("connection: {}", *connection.borrow_and_update());
            }
            next = statuses.recv() => {
                let Some(s) = next else { break };
                let services = &s.services;
                let flag = |up: bool| if up { "up" } else { "DOWN" };
                println!(
                    "{:?} · api {} · database {} · cache {} · storage {} · uptime {:.0} s · latency {}",
                    s.status,
                    flag(services.api),
                    flag(services.database),
                    flag(services.cache),
                    flag(services.storage),
                    s.uptime,
                    client.latency().map_or_else(|| "–".to_owned(), |l| format!("{} ms", l.as_millis())),
                );
            }
        }
    }
    client.disconnect().await;
    Ok(())
}
