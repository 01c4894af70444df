//! The `storm` scenario: N clients of the facade client (`cerebrum-realtime`, fleet reconnect
//! preset) connected and subscribed, the server restarted under them, and the time until every
//! one is back and re-subscribed, with every publication of before and after the restart
//! delivered in order.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cerebrum_protocol::{StudySessionStart, Subscribed};
use cerebrum_realtime::Client;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::link::{Ws, open, subscribe};
use crate::{BenchError, LatencySummary, Report, Target, Value};

/// How long the clients may take to connect and subscribe, and to come back after the restart.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the publications of one phase may take to arrive.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a started server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How many clients are being created at once.
const CREATE_CONCURRENCY: usize = 256;
/// Publications per second of the publisher (over all channels).
const PUBLISH_RATE: f64 = 2_000.0;

/// Options of [`crate::Scenario::Storm`].
#[derive(Debug, Clone, PartialEq)]
pub struct StormOptions {
    /// Clients (facade clients with the fleet preset).
    pub clients: usize,
    /// Channels they are spread over.
    pub channels: usize,
    /// Publications on every channel before the restart.
    pub before: u64,
    /// Publications on every channel once every client is back.
    pub after: u64,
    /// The shell command that starts the server on the URL's port (run with `sh -c`, in the
    /// background, restarted by the scenario); it must print a line with `listening on`.
    pub server_cmd: Option<String>,
    /// Whether every client also studies (`study_session_start` as user `storm-I` on topic
    /// `storm I`, once subscribed and again once back after the restart), so that the server's
    /// study tracker holds a session per client through the storm.
    pub study: bool,
}

impl Default for StormOptions {
    fn default() -> Self {
        Self {
            clients: 1_000,
            channels: 10,
            before: 5,
            after: 5,
            server_cmd: None,
            study: false,
        }
    }
}

/// Stops and starts the server under test: what the storm needs besides the URL.
pub trait Restarter: Send {
    /// Starts the server and returns when it accepts connections.
    fn start(&mut self) -> BoxFuture<'_, Result<(), BenchError>>;
    /// Stops the server (gracefully: its clients see a close frame) and returns when it is gone.
    fn stop(&mut self) -> BoxFuture<'_, Result<(), BenchError>>;
}

/// A [`Restarter`] that runs a shell command and stops it with SIGTERM.
#[derive(Debug)]
pub struct CommandRestarter {
    command: String,
    child: Option<Child>,
}

impl CommandRestarter {
    /// A restarter of `command` (run with `sh -c "exec COMMAND"`).
    #[must_use]
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            child: None,
        }
    }
}

impl Restarter for CommandRestarter {
    fn start(&mut self) -> BoxFuture<'_, Result<(), BenchError>> {
        Box::pin(async move {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(format!("exec {}", self.command))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| BenchError::Server(format!("cannot start `{}`: {e}", self.command)))?;
            let stdout = child.stdout.take();
            self.child = Some(child);
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            // Reads the server's stdout to its end (so that it never blocks on a full pipe),
            // reporting the `listening on` line.
            std::thread::spawn(move || {
                let mut ready = Some(ready_tx);
                if let Some(stdout) = stdout {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if line.contains("listening on")
                            && let Some(tx) = ready.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                }
            });
            match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(BenchError::Server(format!(
                    "`{}` printed no `listening on` line",
                    self.command
                ))),
            }
        })
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<(), BenchError>> {
        Box::pin(async move {
            let Some(mut child) = self.child.take() else {
                return Ok(());
            };
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let waited = tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + STOP_TIMEOUT;
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => return true,
                        Ok(None) if Instant::now() >= deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return false;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
            .await;
            match waited {
                Ok(true) => Ok(()),
                _ => Err(BenchError::Server(
                    "the server did not exit after SIGTERM (killed)".to_owned(),
                )),
            }
        })
    }
}

impl Drop for CommandRestarter {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What one client saw, shared with the scenario.
#[derive(Debug, Default)]
struct Tally {
    /// `subscribed` frames of its channel.
    subscribed: AtomicU64,
    /// Publications received in order (phase 1 and 2 counted apart).
    in_order: [AtomicU64; 2],
    /// Publications out of order or repeated.
    disorder: AtomicU64,
    /// `subscribed` after the restart said `recovered: true`.
    recovered: AtomicU64,
    /// Micros after `base` when it was back (second `subscribed`).
    back_at: AtomicU64,
}

/// Totals over every client.
struct Counters {
    base: Instant,
    subscribed_once: AtomicU64,
    subscribed_twice: AtomicU64,
    delivered: [AtomicU64; 2],
}

fn storm_frame(channel: &str, phase: u8, seq: u64) -> String {
    format!(
        r#"{{"type":"bench.storm","payload":{{"phase":{phase},"seq":{seq}}},"channel":"{channel}"}}"#
    )
}

fn phase_seq(payload: &str) -> Option<(u8, u64)> {
    #[derive(serde::Deserialize)]
    struct Mark {
        phase: u8,
        seq: u64,
    }
    let mark: Mark = serde_json::from_str(payload).ok()?;
    Some((mark.phase, mark.seq))
}

fn channel_name(i: usize, channels: usize) -> String {
    format!("bench:storm:{}", i % channels)
}

/// The study session of client `i` (`--study`): its own user and topic.
fn study_start(i: usize) -> StudySessionStart {
    StudySessionStart {
        user_id: format!("storm-{i}"),
        topic: format!("storm {i}"),
        timestamp: None,
    }
}

/// Starts one facade client, subscribes it to its channel (and starts its study session when
/// `study` is set, again once it is back), and follows what it receives.
async fn start_client(
    url: String,
    channel: String,
    study: Option<StudySessionStart>,
    tally: Arc<Tally>,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> Result<(Client, JoinHandle<()>), BenchError> {
    let client = Client::builder(url)
        .fleet()
        .build()
        .map_err(|e| BenchError::Closed(format!("client: {e}")))?;
    let mut frames = client.frames();
    client.connect();
    let mut publications = client
        .subscribe_channel(&channel)
        .await
        .map_err(|e| BenchError::Closed(format!("subscribe: {e}")))?;
    if let Some(start) = &study {
        client
            .send_payload(start)
            .await
            .map_err(|e| BenchError::Closed(format!("study_session_start: {e}")))?;
    }
    // The study session is started again once back (the restarted server lost it), as an app
    // does after a reconnect.
    let restudy = study.map(|start| (client.clone(), start));
    let mut stop = stop;
    let follower = tokio::spawn(async move {
        let mut next = [0u64; 2];
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                frame = frames.recv() => {
                    let Some(frame) = frame else { break };
                    if frame.kind() != "subscribed" {
                        continue;
                    }
                    let Ok(subscribed) = frame.typed::<Subscribed>() else { continue };
                    if subscribed.channel != channel {
                        continue;
                    }
                    match tally.subscribed.fetch_add(1, Ordering::Relaxed) {
                        0 => {
                            counters.subscribed_once.fetch_add(1, Ordering::Relaxed);
                        }
                        1 => {
                            let at = u64::try_from(counters.base.elapsed().as_micros()).unwrap_or(u64::MAX);
                            tally.back_at.store(at, Ordering::Relaxed);
                            if subscribed.recovered {
                                tally.recovered.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Some((client, start)) = &restudy {
                                let _ = client.send_payload(start).await;
                            }
                            counters.subscribed_twice.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
                publication = publications.recv() => {
                    let Some(publication) = publication else { break };
                    let Some((phase, seq)) = phase_seq(publication.payload().get()) else { continue };
                    let index = usize::from(phase.saturating_sub(1)).min(1);
                    if seq == next[index] {
                        next[index] += 1;
                        tally.in_order[index].fetch_add(1, Ordering::Relaxed);
                        counters.delivered[index].fetch_add(1, Ordering::Relaxed);
                    } else {
                        tally.disorder.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    Ok((client, follower))
}

/// A raw connection subscribed to every channel, publishing `per_channel` frames on each.
async fn publish_phase(
    target: &Target,
    channels: usize,
    phase: u8,
    per_channel: u64,
) -> Result<Ws, BenchError> {
    let mut ws = open(target, usize::MAX / 2).await?;
    for c in 0..channels {
        subscribe(&mut ws, &channel_name(c, channels), SETTLE_TIMEOUT).await?;
    }
    let total = per_channel * channels as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * PUBLISH_RATE) as u64 + 1).min(total);
        while sent < due {
            let channel = channel_name((sent % channels as u64) as usize, channels);
            ws.feed(Message::text(storm_frame(
                &channel,
                phase,
                sent / channels as u64,
            )))
            .await?;
            sent += 1;
        }
        ws.flush().await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(ws)
}

/// Keeps reading (and dropping) what the publisher receives until told to stop.
fn drain(mut ws: Ws, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                next = ws.next() => if !matches!(next, Some(Ok(_))) { break },
            }
        }
        let _ = ws.close(None).await;
    })
}

async fn wait_for(counter: &AtomicU64, expected: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while counter.load(Ordering::Relaxed) < expected {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Runs the storm with `restarter` starting and stopping the server of `target`.
///
/// The server is started first; the clients connect and subscribe (`connect_secs`), every
/// channel gets `before` publications (all must arrive), the server is stopped with SIGTERM and
/// started again; `back_secs` is the time from its `listening on` line until every client has
/// re-subscribed (each re-subscribes from the last offset it saw: `recovered` counts the
/// `subscribed` frames that said the history reached back; the single-node in-memory broker
/// loses history on a restart, so 0 is the truthful figure there). Then every channel gets
/// `after` publications, all of which must arrive in order.
pub async fn run_storm(
    target: &Target,
    options: &StormOptions,
    restarter: &mut dyn Restarter,
) -> Result<Report, BenchError> {
    if options.clients == 0 || options.channels == 0 {
        return Err(BenchError::InvalidOption {
            option: "clients",
            reason: "clients and channels must be at least 1".to_owned(),
        });
    }
    restarter.start().await?;
    let result = storm(target, options, restarter).await;
    let stopped = restarter.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}

async fn storm(
    target: &Target,
    options: &StormOptions,
    restarter: &mut dyn Restarter,
) -> Result<Report, BenchError> {
    let clients = options.clients;
    let channels = options.channels;
    let study = options.study;
    let counters = Arc::new(Counters {
        base: Instant::now(),
        subscribed_once: AtomicU64::new(0),
        subscribed_twice: AtomicU64::new(0),
        delivered: [AtomicU64::new(0), AtomicU64::new(0)],
    });
    let (stop, stop_rx) = watch::channel(false);

    // 1. Every client connected and subscribed.
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(CREATE_CONCURRENCY));
    let mut starting = Vec::with_capacity(clients);
    let mut tallies = Vec::with_capacity(clients);
    for i in 0..clients {
        let tally = Arc::new(Tally::default());
        tallies.push(Arc::clone(&tally));
        let url = target.url().to_owned();
        let counters = Arc::clone(&counters);
        let stop_rx = stop_rx.clone();
        let gate = Arc::clone(&gate);
        starting.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let started = start_client(
                url,
                channel_name(i, channels),
                study.then(|| study_start(i)),
                Arc::clone(&tally),
                counters,
                stop_rx,
            )
            .await?;
            // Hold the permit until this client is subscribed: the connects are paced.
            wait_for(&tally.subscribed, 1, SETTLE_TIMEOUT).await;
            Ok::<_, BenchError>(started)
        }));
    }
    let mut running = Vec::with_capacity(clients);
    for task in starting {
        match task.await {
            Ok(Ok(client)) => running.push(client),
            Ok(Err(err)) => return Err(err),
            Err(err) => return Err(BenchError::Closed(format!("a client task failed: {err}"))),
        }
    }
    if !wait_for(&counters.subscribed_once, clients as u64, SETTLE_TIMEOUT).await {
        return Err(BenchError::Timeout("clients subscribing"));
    }
    let connect_secs = started.elapsed().as_secs_f64();

    // 2. Publications before the restart: all must arrive.
    let publisher = publish_phase(target, channels, 1, options.before).await?;
    let before_expected = options.before * clients as u64;
    wait_for(&counters.delivered[0], before_expected, DELIVERY_TIMEOUT).await;
    drop(publisher);

    // 3. The restart.
    let stopping = Instant::now();
    restarter.stop().await?;
    let down_secs = stopping.elapsed().as_secs_f64();
    restarter.start().await?;
    let listening = Instant::now();
    let restart_secs = stopping.elapsed().as_secs_f64();
    let all_back = wait_for(&counters.subscribed_twice, clients as u64, SETTLE_TIMEOUT).await;
    let back_secs = listening.elapsed().as_secs_f64();
    let listening_micros =
        u64::try_from(listening.duration_since(counters.base).as_micros()).unwrap_or(u64::MAX);

    // 4. Publications after: all must arrive, in order.
    let publisher = publish_phase(target, channels, 2, options.after).await?;
    let drainer = drain(publisher, stop_rx.clone());
    let after_expected = options.after * clients as u64;
    wait_for(&counters.delivered[1], after_expected, DELIVERY_TIMEOUT).await;

    let _ = stop.send(true);
    let _ = drainer.await;
    for (client, follower) in running {
        let _ = follower.await;
        drop(client);
    }

    let back = counters.subscribed_twice.load(Ordering::Relaxed);
    let mut back_micros: Vec<u32> = tallies
        .iter()
        .filter(|t| t.subscribed.load(Ordering::Relaxed) >= 2)
        .map(|t| {
            let at = t
                .back_at
                .load(Ordering::Relaxed)
                .saturating_sub(listening_micros);
            u32::try_from(at).unwrap_or(u32::MAX)
        })
        .collect();
    let back_summary = LatencySummary::from_micros(&mut back_micros);
    let recovered: u64 = tallies
        .iter()
        .map(|t| t.recovered.load(Ordering::Relaxed))
        .sum();
    let disorder: u64 = tallies
        .iter()
        .map(|t| t.disorder.load(Ordering::Relaxed))
        .sum();
    let before_delivered = counters.delivered[0].load(Ordering::Relaxed);
    let after_delivered = counters.delivered[1].load(Ordering::Relaxed);

    let mut report = Report::new("storm");
    report.push("clients", Value::Int(clients as u64));
    report.push("channels", Value::Int(channels as u64));
    report.push("connect_secs", Value::Float(connect_secs));
    report.push("down_secs", Value::Float(down_secs));
    report.push("restart_secs", Value::Float(restart_secs));
    report.push("back", Value::Int(back));
    report.push(
        "not_back",
        Value::Int(clients as u64 - back.min(clients as u64)),
    );
    report.push("all_back", Value::Int(u64::from(all_back)));
    report.push("back_secs", Value::Float(back_secs));
    report.push("back_p50_secs", Value::Float(back_summary.p50_ms / 1e3));
    report.push("back_p99_secs", Value::Float(back_summary.p99_ms / 1e3));
    report.push("recovered", Value::Int(recovered));
    report.push("before_expected", Value::Int(before_expected));
    report.push("before_delivered", Value::Int(before_delivered));
    report.push("after_expected", Value::Int(after_expected));
    report.push("after_delivered", Value::Int(after_delivered));
    report.push(
        "missed",
        Value::Int(
            before_expected.saturating_sub(before_delivered)
                + after_expected.saturating_sub(after_delivered),
        ),
    );
    report.push("out_of_order", Value::Int(disorder));
    Ok(report)
}
