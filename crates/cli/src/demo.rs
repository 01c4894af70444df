//! `cerebrum demo`: the whole system on one machine with nothing to set up. An embedded server
//! on a free loopback port (auth on, with a secret made for this run), simulated students who
//! study curriculum topics, drift between them and receive notifications through the server's
//! HTTP API, and the terminal dashboard as one more student (or, when stdout is not a terminal,
//! a readable live log for `--duration` seconds).

use std::io::{self, IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cerebrum_mock::curriculum::{NOTIFICATIONS, STUDENTS, Student, TOPICS};
use cerebrum_realtime::protocol::{ServerMessage, StudySessionEnd, StudySessionStart};
use cerebrum_realtime::{Client, Envelope, Status};
use cerebrum_server::auth::{JwtKey, mint_hs256};
use cerebrum_server::{RunningServer, Server, ServerConfig};
use clap::Args;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::dashboard;

/// The user the dashboard shows.
const VIEWER: &str = "student-you";
/// Tokens live for a day: longer than any demo.
const TOKEN_TTL_SECS: u64 = 86_400;

/// Arguments of `cerebrum demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Simulated students.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=16))]
    students: u16,
    /// Keep the server's data here (default: a temporary directory, removed at the end).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seconds to run when stdout is not a terminal (the terminal dashboard runs until `q`).
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Address of the embedded server (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Seed of the students' choices (default: random).
    #[arg(long)]
    seed: Option<u64>,
}

/// A line of the live log.
type LogTx = mpsc::UnboundedSender<String>;

/// Everything a running demo owns.
struct Demo {
    server: RunningServer,
    viewer: Client,
    web_url: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    started: Instant,
    log: mpsc::UnboundedReceiver<String>,
    _temp: Option<tempfile::TempDir>,
}

/// Runs the demo until `q` (terminal) or `--duration` / Ctrl-C (otherwise).
#[allow(clippy::print_stdout, clippy::print_stderr)] // the demo talks to its user
pub(crate) fn run(args: &DemoArgs) -> ExitCode {
    if !(args.duration.is_finite() && args.duration > 0.0) {
        eprintln!("cerebrum demo: --duration must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cerebrum demo: {err}");
            return ExitCode::FAILURE;
        }
    };
    let demo = match runtime.block_on(Demo::start(args)) {
        Ok(demo) => demo,
        Err(err) => {
            eprintln!("cerebrum demo: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("cerebrum demo: server on {}", demo.server.ws_url());
    println!("cerebrum demo: web dashboard at {}", demo.web_url);
    let hot_topic = TOPICS[seed_of(args) as usize % 3];
    let mut demo = demo;
    let outcome = if io::stdout().is_terminal() {
        demo.viewer.connect();
        let target = format!("demo · web {}", demo.server.http_url());
        dashboard::show(
            &demo.viewer,
            runtime.handle(),
            VIEWER,
            &target,
            Some(hot_topic),
        )
        .map_err(|err| err.to_string())
    } else {
        runtime.block_on(demo.live_log(hot_topic, Duration::from_secs_f64(args.duration)))
    };
    runtime.block_on(demo.stop());
    match outcome {
        Ok(()) => {
            println!("cerebrum demo: stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cerebrum demo: {err}");
            ExitCode::FAILURE
        }
    }
}

fn seed_of(args: &DemoArgs) -> u64 {
    args.seed.unwrap_or_else(|| fastrand::u64(..))
}

impl Demo {
    async fn start(args: &DemoArgs) -> Result<Self, String> {
        let started = Instant::now();
        let seed = seed_of(args);
        let mut rng = fastrand::Rng::with_seed(seed);
        let (temp, data_dir) = match &args.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("cerebrum-demo-")
                    .tempdir()
                    .map_err(|err| format!("cannot create a temporary data directory: {err}"))?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        // Secrets of this run only: a fresh HS256 key and admin token.
        let secret: String = (0..48).map(|_| rng.alphanumeric()).collect();
        let admin_token: String = (0..32).map(|_| rng.alphanumeric()).collect();
        let mut config = ServerConfig::default();
        config.addr = args.addr;
        config.data_dir = data_dir;
        config.jwt = Some(JwtKey::hs256(secret.as_bytes().to_vec()));
        config.admin_token = Some(admin_token.clone());
        let server = Server::bind(config)
            .await
            .map_err(|err| format!("cannot start the server: {err}"))?;
        let ws_url = server.ws_url();
        let mint = |user: &str, name: &str| {
            mint_hs256(secret.as_bytes(), user, Some(name), TOKEN_TTL_SECS, None)
                .map_err(|err| format!("cannot mint a token: {err}"))
        };
        let web_token = mint("student-web", "You (web)")?;
        let web_url = format!("{}/?token={web_token}", server.http_url());

        let viewer = Client::builder(ws_url.clone())
            .token(mint(VIEWER, "You")?)
            .build()
            .map_err(|err| err.to_string())?;
        // Connected by whoever shows its data, after subscribing (nothing is missed).

        let (stop, _) = watch::channel(false);
        let (log_tx, log) = mpsc::unbounded_channel();
        let hot: Vec<&'static str> = TOPICS.iter().take(3).copied().collect();
        let mut tasks = Vec::new();
        for (i, student) in STUDENTS.iter().take(usize::from(args.students)).enumerate() {
            let client = Client::builder(ws_url.clone())
                .token(mint(student.id, student.name)?)
                .build()
                .map_err(|err| err.to_string())?;
            client.connect();
            tasks.push(tokio::spawn(student_life(
                client,
                *student,
                hot.clone(),
                seed.wrapping_add(i as u64 + 1),
                stop.subscribe(),
                log_tx.clone(),
            )));
        }
        let mut students: Vec<&'static str> = STUDENTS
            .iter()
            .take(usize::from(args.students))
            .map(|s| s.id)
            .collect();
        students.push(VIEWER);
        tasks.push(tokio::spawn(notifier(
            server.local_addr(),
            admin_token,
            students,
            seed ^ 0x6e07_1f1e,
            stop.subscribe(),
            log_tx,
        )));
        Ok(Self {
            server,
            viewer,
            web_url,
            stop,
            tasks,
            started,
            log,
            _temp: temp,
        })
    }

    /// Prints what the viewer receives and what the students do, until `duration` passes or
    /// Ctrl-C.
    async fn live_log(&mut self, hot_topic: &str, duration: Duration) -> Result<(), String> {
        let mut messages = self.viewer.messages();
        let mut status = self.viewer.watch_status();
        self.viewer.connect();
        let printer = LogPrinter::new(self.started);
        let deadline = tokio::time::sleep(duration);
        tokio::pin!(deadline);
        let mut first_data = false;
        let mut joined = false;
        loop {
            tokio::select! {
                () = &mut deadline => break,
                _ = tokio::signal::ctrl_c() => {
                    printer.line("Ctrl-C: stopping");
                    break;
                }
                changed = status.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = *status.borrow_and_update();
                    printer.line(&format!("you: {}", now.as_str()));
                    if now == Status::Connected && !joined {
                        joined = true;
                        let start = StudySessionStart {
                            user_id: VIEWER.to_owned(),
                            topic: hot_topic.to_owned(),
                            timestamp: None,
                        };
                        if self.viewer.send_payload(&start).await.is_ok() {
                            printer.line(&format!("you start studying {hot_topic}"));
                        }
                    }
                }
                envelope = messages.recv() => {
                    let Some(envelope) = envelope else { break };
                    if let Some(text) = describe(&envelope) {
                        if !first_data {
                            first_data = true;
                            printer.line(&format!(
                                "first live data {} ms after start",
                                self.started.elapsed().as_millis()
                            ));
                        }
                        printer.line(&text);
                    }
                }
                Some(line) = self.log.recv() => printer.line(&line),
            }
        }
        let end = StudySessionEnd {
            user_id: VIEWER.to_owned(),
            topic: hot_topic.to_owned(),
        };
        let _ = self.viewer.send_payload(&end).await;
        Ok(())
    }

    /// Stops the students, the viewer and the server; removes the temporary data.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.viewer.disconnect().await;
        let _ = self.server.shutdown().await;
    }
}

/// Prints timestamped lines.
struct LogPrinter {
    started: Instant,
}

impl LogPrinter {
    fn new(started: Instant) -> Self {
        Self { started }
    }

    fn line(&self, text: &str) {
        let mut out = io::stdout().lock();
        let _ = writeln!(
            out,
            "[{:>7.2}s] {text}",
            self.started.elapsed().as_secs_f64()
        );
        let _ = out.flush();
    }
}

/// One readable line for a data message (control frames give `None`).
fn describe(envelope: &Envelope) -> Option<String> {
    match ServerMessage::from_envelope(envelope).ok()? {
        ServerMessage::StudyMetrics(m) => Some(format!(
            "your metrics: {:.2} h studied, {:.0}% of today's goal, streak {} days{}",
            m.study_hours,
            m.progress,
            m.streak,
            m.current_topic
                .map(|t| format!(", studying {t}"))
                .unwrap_or_default()
        )),
        ServerMessage::CollaborativeSession(s) => {
            let names: Vec<&str> = s
                .participants
                .iter()
                .map(|p| p.user_name.as_str())
                .collect();
            Some(format!(
                "session {}: {} ({} active)",
                s.topic,
                names.join(", "),
                s.active_users
            ))
        }
        ServerMessage::Notification(n) => Some(format!(
            "notification [{}] {}: {}",
            lower(&n.priority),
            n.title,
            n.message
        )),
        ServerMessage::SystemStatus(s) => Some(format!(
            "system {}: api {} database {} cache {} storage {}",
            lower(&s.status),
            up(s.services.api),
            up(s.services.database),
            up(s.services.cache),
            up(s.services.storage)
        )),
        _ => None,
    }
}

/// An enum's wire name (`high`, `operational`, …).
fn lower<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn up(ok: bool) -> &'static str {
    if ok { "up" } else { "DOWN" }
}

/// Waits `duration` unless the demo stops first; `false` when it stopped.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// A simulated student: studies a topic (usually one of the popular ones) for a while, takes a
/// break, drifts to another topic; ends the running session when the demo stops.
async fn student_life(
    client: Client,
    student: Student,
    hot: Vec<&'static str>,
    seed: u64,
    mut stop: watch::Receiver<bool>,
    log: LogTx,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    // Arrive at different times.
    if !pause(&mut stop, Duration::from_millis(rng.u64(200..4_000))).await {
        client.disconnect().await;
        return;
    }
    loop {
        let topic = if rng.f64() < 0.75 {
            hot[rng.usize(0..hot.len())]
        } else {
            TOPICS[rng.usize(0..TOPICS.len())]
        };
        let start = StudySessionStart {
            user_id: student.id.to_owned(),
            topic: topic.to_owned(),
            timestamp: None,
        };
        if client.send_payload(&start).await.is_ok() {
            let _ = log.send(format!("{} starts studying {topic}", student.name));
        }
        let studied = pause(&mut stop, Duration::from_secs(rng.u64(15..60))).await;
        let end = StudySessionEnd {
            user_id: student.id.to_owned(),
            topic: topic.to_owned(),
        };
        let _ = client.send_payload(&end).await;
        if !studied {
            break;
        }
        let _ = log.send(format!("{} takes a break from {topic}", student.name));
        if !pause(&mut stop, Duration::from_secs(rng.u64(3..12))).await {
            break;
        }
    }
    client.disconnect().await;
}

/// Posts a notification through the admin HTTP API every few seconds: achievements, messages,
/// reminders, to one student or to everyone.
async fn notifier(
    server: SocketAddr,
    admin_token: String,
    students: Vec<&'static str>,
    seed: u64,
    mut stop: watch::Receiver<bool>,
    log: LogTx,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    while pause(&mut stop, Duration::from_millis(rng.u64(4_000..9_000))).await {
        let template = NOTIFICATIONS[rng.usize(0..NOTIFICATIONS.len())];
        let topic = TOPICS[rng.usize(0..TOPICS.len())];
        let notification = template.render("", topic, rng.u32(5..45));
        let mut body = serde_json::to_value(&notification).unwrap_or_default();
        // The server gives each notification its id.
        if let Some(fields) = body.as_object_mut() {
            fields.remove("id");
        }
        // Half for the viewer, some for another student, some for everyone.
        let roll = rng.f64();
        let target = if roll < 0.5 {
            Some(VIEWER)
        } else if roll < 0.8 {
            Some(students[rng.usize(0..students.len())])
        } else {
            None
        };
        if let Some(user) = target {
            body["userId"] = user.into();
        }
        match post_json(
            server,
            "/api/notifications",
            &admin_token,
            &body.to_string(),
        )
        .await
        {
            Ok(202) => {
                let _ = log.send(format!(
                    "notification \"{}\" posted to {}",
                    notification.title,
                    target.unwrap_or("everyone")
                ));
            }
            Ok(status) => {
                let _ = log.send(format!("notification refused with HTTP {status}"));
            }
            Err(err) => {
                let _ = log.send(format!("notification not posted: {err}"));
            }
        }
    }
}

/// A minimal HTTP/1.1 POST to the embedded server on loopback; returns the status code.
async fn post_json(addr: SocketAddr, path: &str, bearer: &str, body: &str) -> io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let head = String::from_utf8_lossy(&response);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line"))
}
