//! The scenarios, and what they share: opening many connections, readers that count and time
//! deliveries, and stopping them when everything expected has arrived (or a deadline passed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use cerebrum_protocol::Encoding;

use crate::link::{
    Ws, filler, frame_text, frame_type, key_of, keyed_publication, micros_since, number_field,
    open_as, open_with_recv_buffer, outbound, ping, publication, sent_at, subscribe,
};
use crate::{
    BenchError, CommandRestarter, LatencyRecorder, ProcessSample, Report, StormOptions, Target,
    Value, run_storm,
};

/// How long a handshake plus subscription may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How many handshakes run at once.
const CONNECT_CONCURRENCY: usize = 256;
/// How long after the last send the readers may still wait for deliveries.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// A scenario and its options.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Scenario {
    /// Idle subscribed connections.
    Conns(ConnsOptions),
    /// One publisher, many subscribers of one channel.
    Fanout(FanoutOptions),
    /// Chat-like rooms where every member publishes.
    Rooms(RoomsOptions),
    /// Ping round trips under many connections.
    Ping(PingOptions),
    /// Facade clients through a server restart (the server started by the scenario).
    Storm(StormOptions),
    /// Keyed publications with readers that keep up and one that reads at a fraction of the
    /// rate (conflation for slow readers).
    Slow(SlowOptions),
}

/// The channel of [`Scenario::Slow`]: the server under test conflates it when started with
/// `--conflate latest=key`.
pub const SLOW_CHANNEL: &str = "latest:bench";

/// Options of [`Scenario::Slow`].
#[derive(Debug, Clone, PartialEq)]
pub struct SlowOptions {
    /// Keys the publications cycle through (one user's metrics each, say).
    pub keys: usize,
    /// Publications per second (all keys together).
    pub rate: f64,
    /// How long to publish, seconds.
    pub seconds: f64,
    /// Payload filler, bytes.
    pub payload_bytes: usize,
    /// The slow reader takes one frame per `1 / read_fraction` publication intervals.
    pub read_fraction: f64,
    /// Readers that keep up (they must get every publication).
    pub fast_readers: usize,
    /// The slow reader's socket receive buffer, bytes (small: the kernel then holds little of
    /// its backlog, which is left to the server's queue).
    pub recv_buffer: u32,
}

impl Default for SlowOptions {
    fn default() -> Self {
        Self {
            keys: 4,
            rate: 200.0,
            seconds: 20.0,
            payload_bytes: 1024,
            read_fraction: 0.1,
            fast_readers: 1,
            recv_buffer: 4096,
        }
    }
}

/// Options of [`Scenario::Conns`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConnsOptions {
    /// Connections to open.
    pub connections: usize,
    /// Channels they are spread over.
    pub channels: usize,
    /// How long to hold them open, seconds.
    pub hold_secs: f64,
    /// Each connection's heartbeat while held, seconds: a `ping` every this often, the
    /// connections' first pings spread evenly over one period (as clients that connected at
    /// different times), each timed until its `pong`.
    pub ping_secs: f64,
}

impl Default for ConnsOptions {
    fn default() -> Self {
        Self {
            connections: 1_000,
            channels: 10,
            hold_secs: 5.0,
            ping_secs: 20.0,
        }
    }
}

/// Options of [`Scenario::Fanout`].
#[derive(Debug, Clone, PartialEq)]
pub struct FanoutOptions {
    /// Subscribers of the channel.
    pub subscribers: usize,
    /// Publications per second.
    pub rate: f64,
    /// How long to publish, seconds.
    pub seconds: f64,
    /// Payload filler, bytes.
    pub payload_bytes: usize,
    /// The frames' encoding (subprotocol) for every connection.
    pub encoding: Encoding,
}

impl Default for FanoutOptions {
    fn default() -> Self {
        Self {
            subscribers: 1_000,
            rate: 1_000.0,
            seconds: 10.0,
            payload_bytes: 64,
            encoding: Encoding::Json,
        }
    }
}

/// Options of [`Scenario::Rooms`].
#[derive(Debug, Clone, PartialEq)]
pub struct RoomsOptions {
    /// Clients in all.
    pub clients: usize,
    /// Clients per room.
    pub room_size: usize,
    /// Publications per second of each client.
    pub rate: f64,
    /// How long to publish, seconds.
    pub seconds: f64,
    /// Payload filler, bytes.
    pub payload_bytes: usize,
    /// The frames' encoding (subprotocol) for every connection.
    pub encoding: Encoding,
}

impl Default for RoomsOptions {
    fn default() -> Self {
        Self {
            clients: 2_000,
            room_size: 10,
            rate: 2.0,
            seconds: 10.0,
            payload_bytes: 64,
            encoding: Encoding::Json,
        }
    }
}

/// Options of [`Scenario::Ping`].
#[derive(Debug, Clone, PartialEq)]
pub struct PingOptions {
    /// Connections.
    pub connections: usize,
    /// Pings per second of each connection.
    pub rate: f64,
    /// How long to ping, seconds.
    pub seconds: f64,
}

impl Default for PingOptions {
    fn default() -> Self {
        Self {
            connections: 1_000,
            rate: 10.0,
            seconds: 10.0,
        }
    }
}

/// Runs one scenario against the target and reports its figures.
pub async fn run(target: &Target, scenario: &Scenario) -> Result<Report, BenchError> {
    match scenario {
        Scenario::Conns(options) => conns(target, options).await,
        Scenario::Fanout(options) => fanout(target, options).await,
        Scenario::Rooms(options) => rooms(target, options).await,
        Scenario::Ping(options) => ping_scenario(target, options).await,
        Scenario::Slow(options) => slow(target, options).await,
        Scenario::Storm(options) => {
            let Some(command) = &options.server_cmd else {
                return Err(BenchError::InvalidOption {
                    option: "server_cmd",
                    reason: "the storm restarts the server: give the command that starts it"
                        .to_owned(),
                });
            };
            let mut restarter = CommandRestarter::new(command.clone());
            run_storm(target, options, &mut restarter).await
        }
    }
}

fn positive(option: &'static str, value: f64) -> Result<(), BenchError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(BenchError::InvalidOption {
            option,
            reason: format!("must be a positive number, not {value}"),
        })
    }
}

fn at_least_one(option: &'static str, value: usize) -> Result<(), BenchError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(BenchError::InvalidOption {
            option,
            reason: "must be at least 1".to_owned(),
        })
    }
}

/// The name of an encoding in reports (`--encoding` spells it the same way).
fn encoding_name(encoding: Encoding) -> String {
    match encoding {
        Encoding::MessagePack => "msgpack",
        _ => "json",
    }
    .to_owned()
}

/// Opens `count` connections (numbered from `first`), each subscribed to `channel_of(i)`.
async fn connect_subscribed(
    target: &Target,
    first: usize,
    count: usize,
    channel_of: impl Fn(usize) -> String,
) -> Result<Vec<Ws>, BenchError> {
    connect_subscribed_as(target, (first, count), channel_of, Encoding::Json).await
}

/// [`connect_subscribed`] with connections of `encoding`.
async fn connect_subscribed_as(
    target: &Target,
    (first, count): (usize, usize),
    channel_of: impl Fn(usize) -> String,
    encoding: Encoding,
) -> Result<Vec<Ws>, BenchError> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = Vec::with_capacity(count);
    for i in first..first + count {
        let target = target.clone();
        let channel = channel_of(i);
        let gate = Arc::clone(&gate);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut ws = tokio::time::timeout(SETUP_TIMEOUT, open_as(&target, i, encoding))
                .await
                .map_err(|_| BenchError::Timeout("opening a connection"))??;
            subscribe(&mut ws, &channel, SETUP_TIMEOUT).await?;
            Ok::<_, BenchError>(ws)
        }));
    }
    let mut sockets = Vec::with_capacity(count);
    let mut failed = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(ws)) => sockets.push(ws),
            Ok(Err(err)) => {
                failed += 1;
                first_error.get_or_insert_with(|| err.to_string());
            }
            Err(err) => {
                failed += 1;
                first_error.get_or_insert_with(|| err.to_string());
            }
        }
    }
    if failed > 0 {
        return Err(BenchError::Connections {
            failed,
            wanted: count,
            first: first_error.unwrap_or_default(),
        });
    }
    Ok(sockets)
}

/// What a reader saw.
#[derive(Debug, Default)]
struct Seen {
    /// Frames of its kind it received.
    delivered: u64,
    /// Their payload bytes on the wire (text or binary, before any transcoding).
    wire_bytes: u64,
    last_at: Option<Instant>,
    closed: bool,
}

/// Latencies of every reader of a scenario, in one histogram (bounded memory whatever the
/// number of readers and samples).
type Latencies = Arc<Mutex<LatencyRecorder>>;

/// Latency samples a reader keeps before it adds them to the shared histogram (one lock per
/// batch, not per frame).
const LATENCY_BATCH: usize = 256;

/// A reader's batch of latency samples, in microseconds, on its way to [`Latencies`].
struct LatencyBatch {
    shared: Latencies,
    pending: Vec<u64>,
}

impl LatencyBatch {
    fn new(shared: Latencies) -> Self {
        Self {
            shared,
            pending: Vec::new(),
        }
    }

    fn record(&mut self, micros: u64) {
        self.pending.push(micros);
        if self.pending.len() >= LATENCY_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut recorder = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        for micros in self.pending.drain(..) {
            recorder.record(micros);
        }
    }
}

/// The publisher's sink, its own stream drained (it receives its own publications too)
/// by an uncounted reader pushed to `readers`.
fn publisher_sink(
    publisher: Vec<Ws>,
    base: Instant,
    stop_rx: &watch::Receiver<bool>,
    readers: &mut Vec<JoinHandle<Seen>>,
) -> Result<SplitSink<Ws, Message>, BenchError> {
    let mut publisher_sink = None;
    for ws in publisher {
        let (sink, stream) = ws.split();
        readers.push(spawn_reader(
            stream,
            "bench.uncounted",
            base,
            (Arc::new(AtomicU64::new(0)), new_latencies()?),
            stop_rx.clone(),
        ));
        publisher_sink = Some(sink);
    }
    publisher_sink.ok_or_else(|| BenchError::Closed("no publisher".to_owned()))
}

/// A shared histogram. Without a correction interval: every frame is measured from its
/// intended send time ([`paced_send`]), which already corrects for coordinated omission;
/// `record_correct` on top would count each stall twice (and cost a record per interval of
/// latency per sample).
fn new_latencies() -> Result<Latencies, BenchError> {
    Ok(Arc::new(Mutex::new(LatencyRecorder::new(None)?)))
}

/// Counts and times frames of type `kind` carrying a send time into `latencies`, until told
/// to stop.
fn spawn_reader(
    mut stream: SplitStream<Ws>,
    kind: &'static str,
    base: Instant,
    (delivered, latencies): (Arc<AtomicU64>, Latencies),
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<Seen> {
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let mut batch = LatencyBatch::new(latencies);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                next = stream.next() => match next {
                    Some(Ok(ref message @ (Message::Text(_) | Message::Binary(_) | Message::Frame(_)))) => {
                        let text = frame_text(message).unwrap_or_default();
                        if frame_type(&text) == Some(kind)
                            && let Some(t) = sent_at(&text)
                        {
                            batch.record(micros_since(base).saturating_sub(t));
                            seen.delivered += 1;
                            seen.wire_bytes += message.len() as u64;
                            seen.last_at = Some(Instant::now());
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        seen.closed = true;
                        break;
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
        batch.flush();
        seen
    })
}

/// Waits until `delivered` reaches `expected` or `deadline` passes, then stops the readers and
/// collects what they saw.
async fn settle(
    delivered: &AtomicU64,
    expected: u64,
    deadline: Instant,
    stop: &watch::Sender<bool>,
    readers: Vec<JoinHandle<Seen>>,
) -> Vec<Seen> {
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop.send(true);
    let mut all = Vec::with_capacity(readers.len());
    for reader in readers {
        if let Ok(seen) = reader.await {
            all.push(seen);
        }
    }
    all
}

/// Sends `total` frames made by `frame(n, t)` at `rate` per second, batching what is due on each
/// 1 ms tick into one flush.
///
/// `t` is frame `n`'s **intended** send time (µs since `base`: the start plus `n / rate`), not
/// the time it actually left: a sender held up (by the server's back-pressure or its own
/// scheduling) sends late what was due earlier, and the wait counts in the latency of each
/// such frame. This is the correction for coordinated omission of an open-loop generator that
/// measures every frame (see [`LatencyRecorder`]).
async fn paced_send(
    sink: &mut SplitSink<Ws, Message>,
    (rate, total, encoding): (f64, u64, Encoding),
    base: Instant,
    mut frame: impl FnMut(u64, u64) -> String,
) -> Result<u64, BenchError> {
    let start = Instant::now();
    let start_us = micros_since(base);
    let due_at = |n: u64| start_us + (n as f64 * 1_000_000.0 / rate) as u64;
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0u64;
    while sent < total {
        ticks.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as u64 + 1).min(total);
        if due <= sent {
            continue;
        }
        while sent < due {
            sink.feed(outbound(frame(sent, due_at(sent)), encoding))
                .await?;
            sent += 1;
        }
        sink.flush().await?;
    }
    Ok(sent)
}

/// Adds the latency percentiles (from the readers' histogram, corrected for coordinated
/// omission) and delivery figures to `report`.
fn push_deliveries(
    report: &mut Report,
    (seen, latencies): (Vec<Seen>, &Latencies),
    expected: u64,
    started: Instant,
    before: Option<ProcessSample>,
    pid: Option<u32>,
) {
    let closed = seen.iter().filter(|s| s.closed).count();
    let last = seen.iter().filter_map(|s| s.last_at).max();
    let delivered: u64 = seen.iter().map(|s| s.delivered).sum();
    let wire_bytes: u64 = seen.iter().map(|s| s.wire_bytes).sum();
    let elapsed = last.map_or(0.0, |l| l.duration_since(started).as_secs_f64());
    let summary = latencies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .summary();
    report.push("expected", Value::Int(expected));
    report.push("delivered", Value::Int(delivered));
    report.push("lost", Value::Int(expected.saturating_sub(delivered)));
    report.push("closed_by_server", Value::Int(closed as u64));
    // Payload bytes of the delivered frames as they travelled (JSON text or MessagePack).
    report.push(
        "wire_bytes_per_delivery",
        Value::Float(if delivered > 0 {
            wire_bytes as f64 / delivered as f64
        } else {
            0.0
        }),
    );
    report.push(
        "deliveries_per_sec",
        Value::Float(if elapsed > 0.0 {
            delivered as f64 / elapsed
        } else {
            0.0
        }),
    );
    report.push("p50_ms", Value::Float(summary.p50_ms));
    report.push("p90_ms", Value::Float(summary.p90_ms));
    report.push("p99_ms", Value::Float(summary.p99_ms));
    report.push("p999_ms", Value::Float(summary.p999_ms));
    report.push("max_ms", Value::Float(summary.max_ms));
    push_cpu(report, before, pid, delivered);
}

fn push_cpu(report: &mut Report, before: Option<ProcessSample>, pid: Option<u32>, units: u64) {
    if let (Some(before), Some(after)) = (before, pid.and_then(ProcessSample::read)) {
        let cpu = after.cpu_seconds - before.cpu_seconds;
        report.push("server_cpu_seconds", Value::Float(cpu));
        if units > 0 {
            report.push(
                "server_cpu_ms_per_1000",
                Value::Float(cpu * 1_000.0 * 1_000.0 / units as f64),
            );
        }
        report.push("server_rss_bytes", Value::Int(after.rss_bytes));
    }
}

async fn fanout(target: &Target, options: &FanoutOptions) -> Result<Report, BenchError> {
    at_least_one("subscribers", options.subscribers)?;
    positive("rate", options.rate)?;
    positive("seconds", options.seconds)?;
    let channel = "bench:fanout";
    let base = Instant::now();
    let encoding = options.encoding;
    let subscribers = connect_subscribed_as(
        target,
        (0, options.subscribers),
        |_| channel.to_owned(),
        encoding,
    )
    .await?;
    let publisher = connect_subscribed_as(
        target,
        (options.subscribers, 1),
        |_| channel.to_owned(),
        encoding,
    )
    .await?;

    let delivered = Arc::new(AtomicU64::new(0));
    let latencies = new_latencies()?;
    let (stop, stop_rx) = watch::channel(false);
    let mut readers = Vec::with_capacity(subscribers.len() + 1);
    for ws in subscribers {
        let (_sink, stream) = ws.split();
        readers.push(spawn_reader(
            stream,
            "bench.msg",
            base,
            (Arc::clone(&delivered), Arc::clone(&latencies)),
            stop_rx.clone(),
        ));
    }
    let mut sinks = Vec::new();
    let mut sink = publisher_sink(publisher, base, &stop_rx, &mut readers)?;
    let pad = filler(options.payload_bytes);
    let total = (options.rate * options.seconds).ceil() as u64;
    let before = target.pid().and_then(ProcessSample::read);
    let started = Instant::now();
    let sent = paced_send(&mut sink, (options.rate, total, encoding), base, |_, t| {
        publication(channel, t, &pad)
    })
    .await?;
    sinks.push(sink);
    let expected = sent * options.subscribers as u64;
    let seen = settle(
        &delivered,
        expected,
        Instant::now() + DRAIN_GRACE,
        &stop,
        readers,
    )
    .await;

    let mut report = Report::new("fanout");
    report.push("encoding", Value::Text(encoding_name(encoding)));
    report.push("subscribers", Value::Int(options.subscribers as u64));
    report.push("rate", Value::Float(options.rate));
    report.push("seconds", Value::Float(options.seconds));
    report.push("payload_bytes", Value::Int(options.payload_bytes as u64));
    report.push("sent", Value::Int(sent));
    push_deliveries(
        &mut report,
        (seen, &latencies),
        expected,
        started,
        before,
        target.pid(),
    );
    drop(sinks);
    Ok(report)
}

/// What every client of a "each one sends and reads" scenario did.
struct Chorus {
    /// Frames each client sent, in client order.
    sent: Vec<u64>,
    /// What each client's reader saw.
    seen: Vec<Seen>,
    /// The latencies all readers measured.
    latencies: Latencies,
    /// When sending started (after every connection was set up).
    started: Instant,
    /// The server's figures when sending started.
    before: Option<ProcessSample>,
}

/// The pace of a chorus: which frames the readers time, how fast and how many each client
/// sends.
struct Pace {
    kind: &'static str,
    rate: f64,
    per_client: u64,
    encoding: Encoding,
}

/// Splits every socket into a reader of `pace.kind` frames and a writer that sends
/// `pace.per_client` frames made by `frame(client)(t)`, `t` their intended send time, at
/// `pace.rate` per second (first sends spread
/// over one period), then waits for the `expected(sent)` deliveries or the drain deadline.
async fn chorus<F>(
    target: &Target,
    sockets: Vec<Ws>,
    base: Instant,
    pace: Pace,
    frame: impl Fn(usize) -> F,
    expected: impl Fn(&[u64]) -> u64,
) -> Result<Chorus, BenchError>
where
    F: FnMut(u64) -> String + Send + 'static,
{
    let Pace {
        kind,
        rate,
        per_client,
        encoding,
    } = pace;
    let delivered = Arc::new(AtomicU64::new(0));
    let latencies = new_latencies()?;
    let (stop, stop_rx) = watch::channel(false);
    let clients = sockets.len();
    let mut readers = Vec::with_capacity(clients);
    let mut writers = Vec::with_capacity(clients);
    let before = target.pid().and_then(ProcessSample::read);
    let started = Instant::now();
    for (i, ws) in sockets.into_iter().enumerate() {
        let (mut sink, stream) = ws.split();
        readers.push(spawn_reader(
            stream,
            kind,
            base,
            (Arc::clone(&delivered), Arc::clone(&latencies)),
            stop_rx.clone(),
        ));
        let mut make = frame(i);
        let offset = Duration::from_secs_f64((i as f64 / clients as f64) / rate);
        writers.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let sent = paced_send(&mut sink, (rate, per_client, encoding), base, |_, t| {
                make(t)
            })
            .await;
            (sent, sink)
        }));
    }
    let mut sent = Vec::with_capacity(clients);
    let mut sinks = Vec::with_capacity(clients);
    for writer in writers {
        match writer.await {
            Ok((result, sink)) => {
                sent.push(result?);
                sinks.push(sink);
            }
            Err(err) => return Err(BenchError::Closed(format!("a writer failed: {err}"))),
        }
    }
    let total = expected(&sent);
    let seen = settle(
        &delivered,
        total,
        Instant::now() + DRAIN_GRACE,
        &stop,
        readers,
    )
    .await;
    drop(sinks);
    Ok(Chorus {
        sent,
        seen,
        latencies,
        started,
        before,
    })
}

async fn rooms(target: &Target, options: &RoomsOptions) -> Result<Report, BenchError> {
    at_least_one("clients", options.clients)?;
    at_least_one("room_size", options.room_size)?;
    positive("rate", options.rate)?;
    positive("seconds", options.seconds)?;
    let room_size = options.room_size;
    let clients = options.clients;
    let room_of = move |i: usize| format!("bench:room:{}", i / room_size);
    let base = Instant::now();
    let sockets = connect_subscribed_as(target, (0, clients), room_of, options.encoding).await?;
    let pad = Arc::new(filler(options.payload_bytes));
    // Every member of a room, the sender included, receives each of its publications.
    let members = move |i: usize| room_size.min(clients - (i / room_size) * room_size) as u64;
    let expected = |sent: &[u64]| sent.iter().enumerate().map(|(i, n)| n * members(i)).sum();
    let run = chorus(
        target,
        sockets,
        base,
        Pace {
            kind: "bench.msg",
            rate: options.rate,
            per_client: (options.rate * options.seconds).ceil() as u64,
            encoding: options.encoding,
        },
        |i| {
            let channel = room_of(i);
            let pad = Arc::clone(&pad);
            move |t| publication(&channel, t, &pad)
        },
        expected,
    )
    .await?;
    let sent: u64 = run.sent.iter().sum();
    let expected = expected(&run.sent);
    let mut report = Report::new("rooms");
    report.push("encoding", Value::Text(encoding_name(options.encoding)));
    report.push("clients", Value::Int(clients as u64));
    report.push("room_size", Value::Int(room_size as u64));
    report.push("rate_per_client", Value::Float(options.rate));
    report.push("seconds", Value::Float(options.seconds));
    report.push("sent", Value::Int(sent));
    push_deliveries(
        &mut report,
        (run.seen, &run.latencies),
        expected,
        run.started,
        run.before,
        target.pid(),
    );
    Ok(report)
}

async fn ping_scenario(target: &Target, options: &PingOptions) -> Result<Report, BenchError> {
    at_least_one("connections", options.connections)?;
    positive("rate", options.rate)?;
    positive("seconds", options.seconds)?;
    let base = Instant::now();
    // Subscribing proves each connection is fully set up before the clock starts.
    let sockets =
        connect_subscribed(target, 0, options.connections, |_| "bench:ping".to_owned()).await?;
    let run = chorus(
        target,
        sockets,
        base,
        Pace {
            kind: "pong",
            rate: options.rate,
            per_client: (options.rate * options.seconds).ceil() as u64,
            encoding: Encoding::Json,
        },
        |_| ping,
        |sent| sent.iter().sum(),
    )
    .await?;
    let sent: u64 = run.sent.iter().sum();
    let mut report = Report::new("ping");
    report.push("connections", Value::Int(options.connections as u64));
    report.push("rate_per_connection", Value::Float(options.rate));
    report.push("seconds", Value::Float(options.seconds));
    report.push("sent", Value::Int(sent));
    push_deliveries(
        &mut report,
        (run.seen, &run.latencies),
        sent,
        run.started,
        run.before,
        target.pid(),
    );
    Ok(report)
}

async fn conns(target: &Target, options: &ConnsOptions) -> Result<Report, BenchError> {
    at_least_one("connections", options.connections)?;
    at_least_one("channels", options.channels)?;
    if !(options.hold_secs.is_finite() && options.hold_secs >= 0.0) {
        return Err(BenchError::InvalidOption {
            option: "hold_secs",
            reason: "must be a non-negative number".to_owned(),
        });
    }
    positive("ping_secs", options.ping_secs)?;
    let before = target.pid().and_then(ProcessSample::read);
    let started = Instant::now();
    let channels = options.channels;
    let sockets = connect_subscribed(target, 0, options.connections, |i| {
        format!("bench:conns:{}", i % channels)
    })
    .await?;
    let connect_secs = started.elapsed().as_secs_f64();
    // Let the server settle (lazily freed buffers) before reading its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = target.pid().and_then(ProcessSample::read);

    // Hold: every connection pings every `ping_secs` (the first pings spread over one period)
    // and times each pong; a connection the server closes counts as dropped.
    let (stop, stop_rx) = watch::channel(false);
    let dropped = Arc::new(AtomicU64::new(0));
    let heartbeats = new_latencies()?;
    let mut holders = Vec::with_capacity(sockets.len());
    let hold = Duration::from_secs_f64(options.hold_secs);
    let period = Duration::from_secs_f64(options.ping_secs);
    let count = sockets.len();
    let base = Instant::now();
    for (i, ws) in sockets.into_iter().enumerate() {
        let mut stop = stop_rx.clone();
        let dropped = Arc::clone(&dropped);
        let mut batch = LatencyBatch::new(Arc::clone(&heartbeats));
        let first = tokio::time::Instant::now() + period.mul_f64(i as f64 / count as f64);
        holders.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let mut keepalive = tokio::time::interval_at(first, period);
            loop {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    _ = keepalive.tick() => {
                        if sink.send(Message::text(ping(micros_since(base)))).await.is_err() {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    next = stream.next() => match next {
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Some(Ok(ref message @ (Message::Text(_) | Message::Frame(_)))) => {
                            if let Some(text) = frame_text(message)
                                && frame_type(&text) == Some("pong")
                                && let Some(t) = sent_at(&text)
                            {
                                batch.record(micros_since(base).saturating_sub(t));
                            }
                        }
                        Some(Ok(_)) => {}
                    },
                }
            }
            batch.flush();
            let _ = sink.close().await;
        }));
    }
    tokio::time::sleep(hold).await;
    let held = target.pid().and_then(ProcessSample::read);
    let _ = stop.send(true);
    for holder in holders {
        let _ = holder.await;
    }
    let heartbeat = heartbeats
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .summary();

    let mut report = Report::new("conns");
    report.push("connections", Value::Int(options.connections as u64));
    report.push("channels", Value::Int(options.channels as u64));
    report.push("connect_secs", Value::Float(connect_secs));
    report.push(
        "connects_per_sec",
        Value::Float(options.connections as f64 / connect_secs.max(1e-9)),
    );
    report.push("hold_secs", Value::Float(options.hold_secs));
    report.push(
        "dropped_during_hold",
        Value::Int(dropped.load(Ordering::Relaxed)),
    );
    if let (Some(before), Some(after)) = (before, after) {
        let grown = after.rss_bytes.saturating_sub(before.rss_bytes);
        report.push("server_rss_before_bytes", Value::Int(before.rss_bytes));
        report.push("server_rss_after_bytes", Value::Int(after.rss_bytes));
        report.push(
            "server_rss_per_connection_bytes",
            Value::Int(grown / options.connections as u64),
        );
    }
    if let (Some(after), Some(held)) = (after, held) {
        report.push("server_rss_held_bytes", Value::Int(held.rss_bytes));
        report.push(
            "server_cpu_seconds_during_hold",
            Value::Float(held.cpu_seconds - after.cpu_seconds),
        );
    }
    report.push("ping_secs", Value::Float(options.ping_secs));
    report.push("heartbeats", Value::Int(heartbeat.count as u64));
    report.push("heartbeat_p50_ms", Value::Float(heartbeat.p50_ms));
    report.push("heartbeat_p99_ms", Value::Float(heartbeat.p99_ms));
    report.push("heartbeat_max_ms", Value::Float(heartbeat.max_ms));
    Ok(report)
}

/// What the slow reader of [`Scenario::Slow`] saw.
#[derive(Debug)]
struct SlowSeen {
    /// Frames of the scenario it read while publishing went on.
    read: u64,
    /// How old each of them was when read (send time to read time).
    ages: LatencyRecorder,
    /// The server's close code, if it closed the connection.
    closed: Option<u16>,
    /// Keys whose last published value it had after catching up.
    latest_keys: usize,
    /// From the end of publishing until it held the last value of every key (`None`: never,
    /// within the drain grace).
    catch_up: Option<Duration>,
    /// Frames of the scenario it read after publishing ended, until it held the last value of
    /// every key (or gave up).
    catch_up_frames: u64,
}

/// When publishing ended, and the last value published of each key.
type Finished = Option<(Instant, Vec<u64>)>;

/// Reads one frame per `every` until publishing ends, then reads at full speed until it holds
/// the last value of every key.
async fn slow_reader(
    mut ws: Ws,
    keys: usize,
    every: Duration,
    base: Instant,
    mut finished: watch::Receiver<Finished>,
) -> Result<SlowSeen, BenchError> {
    let mut seen = SlowSeen {
        read: 0,
        ages: LatencyRecorder::new(None)?,
        closed: None,
        latest_keys: 0,
        catch_up: None,
        catch_up_frames: 0,
    };
    let mut latest: Vec<Option<u64>> = vec![None; keys];
    // A frame of the scenario: (key, value).
    let take = |text: &str, latest: &mut [Option<u64>]| -> Option<(usize, u64)> {
        if frame_type(text) != Some("bench.latest") {
            return None;
        }
        let key = key_of(text)?;
        let value = number_field(text, "seq")?;
        if let Some(slot) = latest.get_mut(key) {
            *slot = Some(slot.map_or(value, |v| v.max(value)));
        }
        Some((key, value))
    };
    // While publishing goes on: one frame per `every`.
    let (ended, last) = loop {
        if let Some(done) = finished.borrow_and_update().clone() {
            break done;
        }
        let next = tokio::select! {
            biased;
            changed = finished.changed() => {
                if changed.is_err() {
                    // The scenario gave up: nothing to catch up with.
                    return Ok(seen);
                }
                continue;
            }
            next = ws.next() => next,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                if take(&text, &mut latest).is_some() {
                    seen.read += 1;
                    if let Some(t) = sent_at(&text) {
                        seen.ages.record(micros_since(base).saturating_sub(t));
                    }
                    // The reader's pace; the end of publishing cuts the pause short.
                    tokio::select! {
                        () = tokio::time::sleep(every) => {}
                        _ = finished.changed() => {}
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => {
                seen.closed = Some(frame.map_or(1005, |f| u16::from(f.code)));
                return Ok(seen);
            }
            Some(Err(_)) | None => {
                seen.closed = Some(1006);
                return Ok(seen);
            }
            Some(Ok(_)) => {}
        }
    };
    // Catching up: everything, until the last value of every key is in.
    let has_all = |latest: &[Option<u64>]| {
        latest
            .iter()
            .zip(&last)
            .filter(|(got, want)| got.is_some_and(|g| g >= **want))
            .count()
    };
    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    while has_all(&latest) < keys {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Text(text)))) => {
                if take(&text, &mut latest).is_some() {
                    seen.catch_up_frames += 1;
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                seen.closed = Some(frame.map_or(1005, |f| u16::from(f.code)));
                break;
            }
            Ok(Some(Err(_)) | None) => {
                seen.closed = Some(1006);
                break;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    seen.latest_keys = has_all(&latest);
    if seen.latest_keys == keys {
        seen.catch_up = Some(ended.elapsed());
    }
    Ok(seen)
}

async fn slow(target: &Target, options: &SlowOptions) -> Result<Report, BenchError> {
    at_least_one("keys", options.keys)?;
    at_least_one("fast_readers", options.fast_readers)?;
    positive("rate", options.rate)?;
    positive("seconds", options.seconds)?;
    positive("read_fraction", options.read_fraction)?;
    let keys = options.keys;
    let base = Instant::now();
    let fast =
        connect_subscribed(target, 0, options.fast_readers, |_| SLOW_CHANNEL.to_owned()).await?;
    let mut slow_ws = tokio::time::timeout(
        SETUP_TIMEOUT,
        open_with_recv_buffer(target, options.fast_readers, Some(options.recv_buffer)),
    )
    .await
    .map_err(|_| BenchError::Timeout("opening a connection"))??;
    subscribe(&mut slow_ws, SLOW_CHANNEL, SETUP_TIMEOUT).await?;
    let publisher = connect_subscribed(target, options.fast_readers + 1, 1, |_| {
        SLOW_CHANNEL.to_owned()
    })
    .await?;

    let interval = Duration::try_from_secs_f64(1.0 / options.rate).map_err(|err| {
        BenchError::InvalidOption {
            option: "rate",
            reason: err.to_string(),
        }
    })?;
    let every = Duration::try_from_secs_f64(1.0 / (options.rate * options.read_fraction)).map_err(
        |err| BenchError::InvalidOption {
            option: "read_fraction",
            reason: err.to_string(),
        },
    )?;
    let delivered = Arc::new(AtomicU64::new(0));
    let latencies = new_latencies()?;
    let (stop, stop_rx) = watch::channel(false);
    let mut readers = Vec::with_capacity(options.fast_readers + 1);
    for ws in fast {
        let (_sink, stream) = ws.split();
        readers.push(spawn_reader(
            stream,
            "bench.latest",
            base,
            (Arc::clone(&delivered), Arc::clone(&latencies)),
            stop_rx.clone(),
        ));
    }
    let (finished, finished_rx) = watch::channel::<Finished>(None);
    let slow_task = tokio::spawn(slow_reader(slow_ws, keys, every, base, finished_rx));
    let mut sink = publisher_sink(publisher, base, &stop_rx, &mut readers)?;
    let pad = filler(options.payload_bytes);
    let total = (options.rate * options.seconds).ceil() as u64;
    let before = target.pid().and_then(ProcessSample::read);
    let started = Instant::now();
    let sent = paced_send(
        &mut sink,
        (options.rate, total, Encoding::Json),
        base,
        |n, t| {
            let key = (n % keys as u64) as usize;
            keyed_publication(SLOW_CHANNEL, (key, n), t, &pad)
        },
    )
    .await?;
    // The last value of each key: the highest `n < sent` of its residue.
    let last: Vec<u64> = (0..keys as u64)
        .map(|k| {
            if sent > k {
                k + (sent - 1 - k) / keys as u64 * keys as u64
            } else {
                0
            }
        })
        .collect();
    let _ = finished.send(Some((Instant::now(), last)));
    let expected = sent * options.fast_readers as u64;
    let seen = settle(
        &delivered,
        expected,
        Instant::now() + DRAIN_GRACE,
        &stop,
        readers,
    )
    .await;
    let slow_seen = slow_task
        .await
        .map_err(|err| BenchError::Closed(format!("the slow reader failed: {err}")))??;

    let mut report = Report::new("slow");
    report.push("keys", Value::Int(keys as u64));
    report.push("rate", Value::Float(options.rate));
    report.push("seconds", Value::Float(options.seconds));
    report.push("payload_bytes", Value::Int(options.payload_bytes as u64));
    report.push("read_fraction", Value::Float(options.read_fraction));
    report.push(
        "interval_ms",
        Value::Float(interval.as_secs_f64() * 1_000.0),
    );
    report.push("sent", Value::Int(sent));
    push_deliveries(
        &mut report,
        (seen, &latencies),
        expected,
        started,
        before,
        target.pid(),
    );
    let ages = slow_seen.ages.summary();
    report.push(
        "slow_closed_by_server",
        Value::Int(u64::from(slow_seen.closed.is_some())),
    );
    report.push(
        "slow_close_code",
        Value::Int(slow_seen.closed.map_or(0, u64::from)),
    );
    report.push("slow_frames_read", Value::Int(slow_seen.read));
    report.push("slow_age_p50_ms", Value::Float(ages.p50_ms));
    report.push("slow_age_p99_ms", Value::Float(ages.p99_ms));
    report.push("slow_age_max_ms", Value::Float(ages.max_ms));
    report.push("slow_latest_keys", Value::Int(slow_seen.latest_keys as u64));
    report.push(
        "slow_catch_up_ms",
        match slow_seen.catch_up {
            Some(d) => Value::Float(d.as_secs_f64() * 1_000.0),
            None => Value::Text("never".to_owned()),
        },
    );
    report.push(
        "slow_catch_up_frames",
        Value::Int(slow_seen.catch_up_frames),
    );
    drop(sink);
    Ok(report)
}
