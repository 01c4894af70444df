//! `cerebrum dashboard`: the terminal dashboard. It renders the facade's `DashboardState`
//! (see `view.rs`) and turns keys into client intents: `q` quit, `r` reconnect, `s` start or
//! stop a study session on the chosen topic (`←`/`→` choose), `c` clear the offline queue.

mod view;

use std::collections::BTreeMap;
use std::io::{self, IsTerminal as _};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cerebrum_mock::curriculum::TOPICS;
use cerebrum_realtime::Status;
use cerebrum_realtime::protocol::{CollaborativeSession, StudySessionEnd, StudySessionStart};
use cerebrum_realtime::{Client, MockConfig, RawSubscription};
use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::{Terminal, backend::CrosstermBackend};
use tokio::runtime::Handle;

pub(crate) use view::UiState;

/// Arguments of `cerebrum dashboard`.
#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// The server's WebSocket URL (ignored with --mock).
    #[arg(default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Run against the built-in simulated server instead.
    #[arg(long)]
    mock: bool,
    /// Access token (JWT), when the server has auth on.
    #[arg(long, env = "CEREBRUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The user this dashboard shows (with auth off; with auth the token's subject).
    #[arg(long, default_value = "student-you")]
    user: String,
}

/// Runs the dashboard until `q`.
#[allow(clippy::print_stderr)] // the terminal is the dashboard's; errors go to stderr
pub(crate) fn run(args: &DashboardArgs) -> ExitCode {
    if !io::stdout().is_terminal() {
        eprintln!("cerebrum dashboard: stdout is not a terminal");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cerebrum dashboard: {err}");
            return ExitCode::FAILURE;
        }
    };
    let client = runtime.block_on(async { connect(args) });
    let client = match client {
        Ok(client) => client,
        Err(err) => {
            eprintln!("cerebrum dashboard: {err}");
            return ExitCode::from(2);
        }
    };
    let target = if args.mock {
        "mock".to_owned()
    } else {
        args.url.clone()
    };
    let result = show(&client, runtime.handle(), &args.user, &target, None);
    runtime.block_on(client.disconnect());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cerebrum dashboard: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Builds and connects the client (inside the runtime).
fn connect(args: &DashboardArgs) -> Result<Client, cerebrum_realtime::BuildError> {
    let mut builder = if args.mock {
        Client::builder("ws://mock.invalid/ws")
            .enable_mock_mode(true)
            .mock_config(MockConfig {
                user_id: args.user.clone(),
                ..MockConfig::default()
            })
    } else {
        Client::builder(args.url.clone())
    };
    if let Some(token) = &args.token {
        builder = builder.token(token.clone());
    }
    let client = builder.build()?;
    client.connect();
    Ok(client)
}

/// Restores the terminal however the dashboard ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen);
    }
}

/// Draws the dashboard of `client` and handles keys until `q` (or Ctrl-C); with `start_topic`,
/// starts a study session on it right away.
pub(crate) fn show(
    client: &Client,
    runtime: &Handle,
    user: &str,
    target: &str,
    start_topic: Option<&str>,
) -> io::Result<()> {
    enable_raw_mode()?;
    let guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let mut ui = UiState {
        user_id: user.to_owned(),
        target: target.to_owned(),
        topic: TOPICS[0].to_owned(),
        studying: None,
        reconnect_in: None,
        attempts: 0,
        notice: String::new(),
    };
    let mut topic_index = 0usize;
    let mut session: Option<(String, Instant)> = None;
    // The user channel: with auth off it also tells the server whose dashboard this is. Keep
    // it open while the dashboard runs (dropping it unsubscribes).
    let _user_channel: Option<RawSubscription> = runtime
        .block_on(client.subscribe_channel(&format!("user:{user}")))
        .ok();
    if let Some(topic) = start_topic {
        ui.topic = topic.to_owned();
        ui.notice = toggle_session(client, runtime, user, topic, &mut session);
    }
    let mut last_status = None;
    let mut last_sessions = BTreeMap::new();
    loop {
        let state = client.store().snapshot();
        let connection = client.state();
        ui.attempts = connection.attempts;
        ui.reconnect_in = connection
            .next_attempt
            .map(|at| at.saturating_duration_since(Instant::now()));
        if state.status != last_status.unwrap_or(Status::Disconnected)
            && state.status == Status::Connected
        {
            // A first latency sample now, not one heartbeat interval later.
            client.network_changed();
        }
        last_status = Some(state.status);
        if let Some(change) = membership_change(&last_sessions, &state.sessions) {
            ui.notice = change;
        }
        last_sessions.clone_from(&state.sessions);
        ui.studying = session
            .as_ref()
            .map(|(topic, started)| (topic.clone(), started.elapsed()));
        terminal.draw(|frame| view::render(frame, &state, &ui))?;
        if !event::poll(Duration::from_millis(250))? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => break,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => break,
            KeyCode::Char('r') => {
                client.reconnect();
                ui.notice = "reconnecting…".to_owned();
            }
            KeyCode::Char('c') => {
                let cleared = runtime.block_on(client.clear_queue());
                ui.notice = format!("cleared {cleared} queued messages");
            }
            KeyCode::Left | KeyCode::Right if session.is_none() => {
                topic_index = if key.code == KeyCode::Left {
                    (topic_index + TOPICS.len() - 1) % TOPICS.len()
                } else {
                    (topic_index + 1) % TOPICS.len()
                };
                ui.topic = TOPICS[topic_index].to_owned();
            }
            KeyCode::Char('s') => {
                ui.notice = toggle_session(client, runtime, user, &ui.topic, &mut session);
            }
            _ => {}
        }
    }
    drop(guard);
    Ok(())
}

/// Starts a session on `topic`, or ends the running one; returns what happened.
fn toggle_session(
    client: &Client,
    runtime: &Handle,
    user: &str,
    topic: &str,
    session: &mut Option<(String, Instant)>,
) -> String {
    if let Some((topic, _)) = session.take() {
        let end = StudySessionEnd {
            user_id: user.to_owned(),
            topic: topic.clone(),
        };
        return match runtime.block_on(client.send_payload(&end)) {
            Ok(_) => format!("session on {topic} ended"),
            Err(err) => format!("could not end the session: {err}"),
        };
    }
    let start = StudySessionStart {
        user_id: user.to_owned(),
        topic: topic.to_owned(),
        timestamp: Some(unix_ms()),
    };
    match runtime.block_on(client.send_payload(&start)) {
        Ok(_) => {
            *session = Some((topic.to_owned(), Instant::now()));
            format!("studying {topic}")
        }
        Err(err) => format!("could not start a session: {err}"),
    }
}

/// "Meera Nair joined Evolution" / "… left …": the first change of membership between two
/// states of the sessions.
fn membership_change(
    before: &BTreeMap<String, CollaborativeSession>,
    after: &BTreeMap<String, CollaborativeSession>,
) -> Option<String> {
    let names = |sessions: &BTreeMap<String, CollaborativeSession>, topic: &str| -> Vec<String> {
        sessions.get(topic).map_or_else(Vec::new, |s| {
            s.participants.iter().map(|p| p.user_name.clone()).collect()
        })
    };
    let topics = before.keys().chain(after.keys());
    for topic in topics {
        let (old, new) = (names(before, topic), names(after, topic));
        if let Some(joined) = new.iter().find(|n| !old.contains(n)) {
            return Some(format!("{joined} joined {topic}"));
        }
        if let Some(left) = old.iter().find(|n| !new.contains(n)) {
            return Some(format!("{left} left {topic}"));
        }
    }
    None
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use cerebrum_realtime::protocol::Participant;

    use super::*;

    fn sessions(topic: &str, names: &[&str]) -> BTreeMap<String, CollaborativeSession> {
        let participants = names
            .iter()
            .map(|name| Participant {
                user_id: name.to_lowercase(),
                user_name: (*name).to_owned(),
                avatar_url: None,
                joined_at: 0,
            })
            .collect::<Vec<_>>();
        let session = CollaborativeSession {
            session_id: format!("session:{}", topic.to_lowercase()),
            topic: topic.to_owned(),
            active_users: u32::try_from(participants.len()).unwrap_or(0),
            participants,
        };
        BTreeMap::from([(topic.to_owned(), session)])
    }

    #[test]
    fn joins_and_leaves_are_announced() {
        let one = sessions("Evolution", &["Asha"]);
        let two = sessions("Evolution", &["Asha", "Ben"]);
        assert_eq!(
            membership_change(&one, &two).as_deref(),
            Some("Ben joined Evolution")
        );
        assert_eq!(
            membership_change(&two, &one).as_deref(),
            Some("Ben left Evolution")
        );
        assert_eq!(membership_change(&two, &two), None);
        assert_eq!(
            membership_change(&BTreeMap::new(), &one).as_deref(),
            Some("Asha joined Evolution")
        );
    }
}
