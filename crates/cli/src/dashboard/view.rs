//! Drawing the dashboard: a pure function of the facade's [`DashboardState`] and the screen's own
//! state, so every screen is tested with ratatui's `TestBackend` and pinned by a snapshot.

use std::time::Duration;

use cerebrum_realtime::Status;
use cerebrum_realtime::protocol::{NotificationKind, OverallStatus, Priority};
use cerebrum_realtime::store::DashboardState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, List, ListItem, Paragraph, Sparkline, Wrap};

/// What the screen knows besides the client's state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UiState {
    /// Who the dashboard is for.
    pub(crate) user_id: String,
    /// Where it is connected (URL, or "mock").
    pub(crate) target: String,
    /// The topic `s` starts a session on.
    pub(crate) topic: String,
    /// The session this dashboard started, and for how long it has run.
    pub(crate) studying: Option<(String, Duration)>,
    /// Time left before the next reconnect attempt, while reconnecting.
    pub(crate) reconnect_in: Option<Duration>,
    /// Reconnect attempts so far.
    pub(crate) attempts: u32,
    /// The last thing that happened (a key's effect, an error).
    pub(crate) notice: String,
}

/// Draws the whole dashboard.
pub(crate) fn render(frame: &mut Frame<'_>, state: &DashboardState, ui: &UiState) {
    let [header, top, middle, bottom, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(9),
        Constraint::Min(8),
        Constraint::Length(6),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_header(frame, header, state, ui);
    let [metrics, system] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    render_metrics(frame, metrics, state, ui);
    render_system(frame, system, state);
    let [sessions, notifications] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    render_sessions(frame, sessions, state, ui);
    render_notifications(frame, notifications, state);
    render_connection(frame, bottom, state, ui);
    let keys = Line::from(vec![
        " q".bold(),
        " quit  ".into(),
        "r".bold(),
        " reconnect  ".into(),
        "s".bold(),
        " start/stop session  ".into(),
        "←/→".bold(),
        " topic  ".into(),
        "c".bold(),
        " clear queue   ".into(),
        Span::raw(ui.notice.clone()).italic(),
    ]);
    frame.render_widget(Paragraph::new(keys), help);
}

fn status_style(status: Status) -> Style {
    match status {
        Status::Connected => Style::new().fg(Color::Green).bold(),
        Status::Connecting | Status::Reconnecting => Style::new().fg(Color::Yellow).bold(),
        Status::Error => Style::new().fg(Color::Red).bold(),
        _ => Style::new().fg(Color::Gray).bold(),
    }
}

fn render_header(frame: &mut Frame<'_>, area: Rect, state: &DashboardState, ui: &UiState) {
    let latency = state.latency.map_or_else(|| "–".to_owned(), format_latency);
    let line = Line::from(vec![
        " Cerebrum ".bold().fg(Color::Magenta),
        format!("· {} · {} · ", ui.user_id, ui.target).into(),
        Span::styled(state.status.as_str(), status_style(state.status)),
        format!(" · latency {latency}").into(),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn render_metrics(frame: &mut Frame<'_>, area: Rect, state: &DashboardState, ui: &UiState) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Study metrics ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text_area, gauge_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(1)]).areas(inner);
    let (hours, progress, streak, topic, duration) = match &state.study_metrics {
        Some(m) => (
            format!("{:.2} h", m.study_hours),
            m.progress,
            format!("{} days", m.streak),
            m.current_topic.clone(),
            m.session_duration,
        ),
        None => ("–".to_owned(), 0.0, "–".to_owned(), None, 0.0),
    };
    let (topic_line, timer) = match (&ui.studying, topic) {
        (Some((topic, elapsed)), _) => (topic.clone(), format_duration(elapsed.as_secs_f64())),
        (None, Some(topic)) => (topic, format_duration(duration)),
        (None, None) => ("not studying".to_owned(), format_duration(duration)),
    };
    let lines = vec![
        Line::from(vec![
            "Total   ".dim(),
            hours.bold(),
            "   Streak ".dim(),
            streak.bold(),
        ]),
        Line::from(vec!["Topic   ".dim(), topic_line.bold()]),
        Line::from(vec!["Session ".dim(), timer.bold()]),
        Line::from(vec!["Next    ".dim(), ui.topic.clone().italic()]),
    ];
    frame.render_widget(Paragraph::new(lines), text_area);
    let ratio = (progress / 100.0).clamp(0.0, 1.0);
    let gauge = Gauge::default()
        .gauge_style(Style::new().fg(Color::Magenta))
        .ratio(ratio)
        .label(format!("{progress:.0}% of today's goal"));
    frame.render_widget(gauge, gauge_area);
}

fn render_system(frame: &mut Frame<'_>, area: Rect, state: &DashboardState) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" System status ");
    let Some(status) = &state.system_status else {
        frame.render_widget(Paragraph::new("no status yet".dim()).block(block), area);
        return;
    };
    let (name, color) = match status.status {
        OverallStatus::Operational => ("operational", Color::Green),
        OverallStatus::Degraded => ("degraded", Color::Yellow),
        OverallStatus::Maintenance => ("maintenance", Color::Blue),
        OverallStatus::Outage => ("outage", Color::Red),
    };
    let service = |label: &'static str, up: bool| {
        Line::from(vec![
            format!("{label:<9}").into(),
            if up {
                "up".green()
            } else {
                "down".red().bold()
            },
        ])
    };
    let lines = vec![
        Line::from(vec![
            "Overall  ".into(),
            Span::styled(name, Style::new().fg(color).bold()),
        ]),
        service("api", status.services.api),
        service("database", status.services.database),
        service("cache", status.services.cache),
        service("storage", status.services.storage),
        Line::from(vec![
            "Uptime   ".dim(),
            format_duration(status.uptime).into(),
        ]),
        Line::from(vec![
            "Checked  ".dim(),
            clock_time(status.last_check).into(),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_sessions(frame: &mut Frame<'_>, area: Rect, state: &DashboardState, ui: &UiState) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Collaborative sessions ");
    if state.sessions.is_empty() {
        let text = "No one is studying with you yet. Press s to start a session.";
        frame.render_widget(
            Paragraph::new(text.dim())
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let mut items = Vec::new();
    for (topic, session) in &state.sessions {
        let mine = ui.studying.as_ref().is_some_and(|(t, _)| t == topic);
        let title = Line::from(vec![
            Span::styled(
                topic.clone(),
                if mine {
                    Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD)
                } else {
                    Style::new().bold()
                },
            ),
            format!("  {} active", session.active_users).dim(),
        ]);
        items.push(ListItem::new(title));
        let names: Vec<&str> = session
            .participants
            .iter()
            .map(|p| p.user_name.as_str())
            .collect();
        items.push(ListItem::new(Line::from(format!("  {}", names.join(", ")))));
    }
    frame.render_widget(List::new(items).block(block), area);
}

fn render_notifications(frame: &mut Frame<'_>, area: Rect, state: &DashboardState) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Notifications ");
    let mut lines: Vec<Line<'_>> = Vec::new();
    for n in state.notifications.iter().rev() {
        let color = match n.priority {
            Priority::High => Color::Red,
            Priority::Medium => Color::Yellow,
            _ => Color::Gray,
        };
        let icon = match n.kind {
            NotificationKind::Success => "✔",
            NotificationKind::Warning => "!",
            NotificationKind::Error => "✖",
            _ => "i",
        };
        lines.push(Line::from(Span::styled(
            format!("{icon} {}", n.title),
            Style::new().fg(color).bold(),
        )));
        lines.push(Line::from(format!("  {}", n.message)));
        if let Some(action) = &n.action_text {
            lines.push(Line::from(format!("  → {action}").cyan()));
        }
    }
    if lines.is_empty() {
        lines.push(Line::from("no notifications".dim()));
    }
    // Newest first; long messages wrap instead of being cut.
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

fn render_connection(frame: &mut Frame<'_>, area: Rect, state: &DashboardState, ui: &UiState) {
    let block = Block::default().borders(Borders::ALL).title(" Connection ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text_area, spark_area] =
        Layout::horizontal([Constraint::Length(40), Constraint::Min(10)]).areas(inner);
    let next = match (state.status, ui.reconnect_in) {
        (Status::Reconnecting, Some(left)) => {
            format!("next attempt in {:.1} s", left.as_secs_f64())
        }
        (Status::Reconnecting, None) => "reconnecting…".to_owned(),
        _ => "–".to_owned(),
    };
    let lines = vec![
        Line::from(vec![
            "Status  ".dim(),
            Span::styled(state.status.as_str(), status_style(state.status)),
            format!("  attempt {}", ui.attempts).dim(),
        ]),
        Line::from(vec![
            "Queued  ".dim(),
            format!("{} messages", state.queued).into(),
        ]),
        Line::from(vec!["Retry   ".dim(), next.into()]),
        Line::from(vec![
            "Latency ".dim(),
            state
                .latency
                .map_or_else(|| "–".to_owned(), format_latency)
                .into(),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines), text_area);
    let samples: Vec<u64> = state
        .latency_history
        .iter()
        .map(|l| u64::try_from(l.as_micros()).unwrap_or(u64::MAX))
        .collect();
    frame.render_widget(
        Sparkline::default()
            .data(&samples)
            .style(Style::new().fg(Color::Magenta)),
        spark_area,
    );
}

/// A latency in ms, with tenths below 10 ms (loopback round trips are well under 1 ms).
pub(crate) fn format_latency(latency: Duration) -> String {
    let ms = latency.as_secs_f64() * 1_000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `H:MM:SS` or `M:SS`.
pub(crate) fn format_duration(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `HH:MM:SS UTC` of a Unix time in ms.
fn clock_time(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (h, m, s) = ((seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60);
    format!("{h:02}:{m:02}:{s:02} UTC")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cerebrum_realtime::Status;
    use cerebrum_realtime::protocol::{
        CollaborativeSession, Notification, NotificationKind, OverallStatus, Participant, Priority,
        Services, StudyMetrics, SystemStatus,
    };
    use cerebrum_realtime::store::{DashboardState, StoreEvent};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    const T: u64 = 1_732_752_000_000;

    fn ui() -> UiState {
        UiState {
            user_id: "student-aarav".into(),
            target: "ws://127.0.0.1:8080/ws".into(),
            topic: "Molecular Basis of Inheritance".into(),
            studying: None,
            reconnect_in: None,
            attempts: 0,
            notice: String::new(),
        }
    }

    fn live_state() -> DashboardState {
        let mut state = DashboardState::default();
        let events = [
            StoreEvent::Status(Status::Connected),
            StoreEvent::StudyMetrics(StudyMetrics {
                user_id: "student-aarav".into(),
                study_hours: 42.25,
                progress: 62.5,
                current_topic: Some("Evolution".into()),
                session_duration: 1_834.0,
                streak: 12,
            }),
            StoreEvent::CollaborativeSession(CollaborativeSession {
                session_id: "session:evolution".into(),
                topic: "Evolution".into(),
                participants: vec![
                    Participant {
                        user_id: "student-aarav".into(),
                        user_name: "Aarav Sharma".into(),
                        avatar_url: None,
                        joined_at: T,
                    },
                    Participant {
                        user_id: "student-meera".into(),
                        user_name: "Meera Nair".into(),
                        avatar_url: None,
                        joined_at: T + 1_000,
                    },
                ],
                active_users: 2,
            }),
            StoreEvent::Notification(Notification {
                id: "n1".into(),
                title: "Streak extended".into(),
                message: "12 days in a row. Keep it alive tomorrow!".into(),
                kind: NotificationKind::Success,
                priority: Priority::Medium,
                action_url: Some("/progress".into()),
                action_text: Some("See progress".into()),
            }),
            StoreEvent::Notification(Notification {
                id: "n2".into(),
                title: "New message from your mentor".into(),
                message: "Dr. Rao replied to your question on Evolution.".into(),
                kind: NotificationKind::Info,
                priority: Priority::High,
                action_url: None,
                action_text: Some("Open".into()),
            }),
            StoreEvent::SystemStatus(SystemStatus {
                status: OverallStatus::Operational,
                services: Services {
                    api: true,
                    database: true,
                    cache: true,
                    storage: true,
                },
                uptime: 3_725.0,
                last_check: T,
            }),
            StoreEvent::Latency(Duration::from_millis(12)),
            StoreEvent::Latency(Duration::from_millis(18)),
            StoreEvent::Latency(Duration::from_millis(9)),
        ];
        for event in &events {
            state.apply(event);
        }
        state
    }

    fn screen(state: &DashboardState, ui: &UiState) -> TestBackend {
        let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
        terminal.draw(|frame| render(frame, state, ui)).unwrap();
        terminal.backend().clone()
    }

    #[test]
    fn live_dashboard() {
        insta::assert_snapshot!(screen(&live_state(), &ui()));
    }

    #[test]
    fn reconnecting_with_a_queue_and_a_countdown() {
        let mut state = live_state();
        state.apply(&StoreEvent::Status(Status::Reconnecting));
        state.apply(&StoreEvent::Queued(3));
        let ui = UiState {
            studying: Some(("Evolution".into(), Duration::from_secs(95))),
            reconnect_in: Some(Duration::from_millis(4_500)),
            attempts: 2,
            notice: "reconnecting…".into(),
            ..ui()
        };
        insta::assert_snapshot!(screen(&state, &ui));
    }

    #[test]
    fn empty_dashboard_before_any_data() {
        insta::assert_snapshot!(screen(&DashboardState::default(), &ui()));
    }

    #[test]
    fn durations_and_clock() {
        assert_eq!(format_duration(0.0), "0:00");
        assert_eq!(format_duration(3_725.0), "1:02:05");
        assert_eq!(format_duration(f64::NAN), "0:00");
        assert_eq!(clock_time(T), "00:00:00 UTC");
        assert_eq!(format_latency(Duration::from_micros(420)), "0.4 ms");
        assert_eq!(format_latency(Duration::from_millis(42)), "42 ms");
    }
}
