//! `cerebrum connect`: a line-oriented client on stdin/stdout, for scripts and black-box tests.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use cerebrum_realtime::{
    BuildError, Client, ClientError, Envelope, Outgoing, SendError, Status, decode, encode,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Exit codes, documented in `--help`.
const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_REFUSED: u8 = 3;
const EXIT_TIMEOUT: u8 = 4;

/// Envelopes buffered between the client and stdout.
const FRAME_BUFFER: usize = 1 << 16;

/// How long the final close handshake may take.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

const AFTER_HELP: &str = "\
Output:
  stdout  every envelope the server sends, except `pong`, as one compact JSON line (welcome,
          ack, error, subscribed and app messages included); each counts toward --count,
          except an `error{unauthorized}` refusal (the run ends with exit 3)
  stderr  status changes (`status: connected`) and errors (`error: ...`)

Input (stdin), one message per line:
  a JSON envelope           {\"type\":\"chat.message\",\"payload\":{\"text\":\"hi\"},\"ack\":true}
  TYPE PAYLOAD_JSON         study_session_start {\"userId\":\"u1\",\"topic\":\"Genetics\"}
  Lines that cannot be parsed are reported on stderr and skipped. A fresh messageId and
  timestamp are stamped on every message; `ack:true` messages are waited for.

Ends:
  with --count N: after the N-th envelope;
  without it: at the end of stdin, once connected and drained (queue flushed, acks settled).

Exit codes:
  0  done (count reached, or end of stdin and drained)
  1  fatal connection error (every reconnect attempt failed)
  2  usage error or bad URL
  3  refused by the server (close 4001 unauthorized or 4003 forbidden)
  4  --timeout-secs elapsed first";

/// Connect to a server (or the mock) and bridge it to stdin/stdout.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct ConnectArgs {
    /// The server's WebSocket URL (ws:// or wss://); with --mock, a label.
    url: String,
    /// Talk to the built-in simulated server instead of the URL.
    #[arg(long)]
    mock: bool,
    /// Auth token (JWT), sent as `?token=` in the URL.
    #[arg(long)]
    token: Option<String>,
    /// Exit 0 after this many envelopes (every server envelope except `pong` counts).
    #[arg(long)]
    count: Option<u64>,
    /// Give up (exit 4) after this many seconds.
    #[arg(long = "timeout-secs")]
    timeout_secs: Option<u64>,
}

/// Runs `cerebrum connect`.
pub(crate) fn run(args: ConnectArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            report(&format!("error: cannot start the runtime: {err}"));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let code = runtime.block_on(connect(args));
    // Do not wait for the stdin reader thread: it may be blocked on a read.
    runtime.shutdown_background();
    ExitCode::from(code)
}

fn report(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

fn build(args: &ConnectArgs) -> Result<Client, BuildError> {
    let url = if args.mock && !args.url.starts_with("ws://") && !args.url.starts_with("wss://") {
        "ws://mock/ws".to_owned()
    } else {
        args.url.clone()
    };
    // A deep buffer: stdout may be slower than the server; any loss is reported on stderr.
    let mut builder = Client::builder(url)
        .enable_mock_mode(args.mock)
        .subscription_capacity(FRAME_BUFFER);
    if let Some(token) = &args.token {
        builder = builder.token(token.clone());
    }
    builder.build()
}

/// Reads stdin lines on a thread of its own (a blocking read must not hold the runtime).
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A stdin line as a message.
fn parse_line(line: &str) -> Result<Outgoing, String> {
    if line.starts_with('{') {
        let envelope = decode(line).map_err(|err| err.to_string())?;
        let ack = envelope.ack();
        return Ok(Outgoing::new(envelope).with_ack(ack));
    }
    let (kind, payload) = line
        .split_once(char::is_whitespace)
        .unwrap_or((line, "null"));
    let payload: serde_json::Value =
        serde_json::from_str(payload.trim()).map_err(|err| format!("payload: {err}"))?;
    Outgoing::value(kind, &payload).map_err(|err| err.to_string())
}

async fn connect(args: ConnectArgs) -> u8 {
    let client = match build(&args) {
        Ok(client) => client,
        Err(err @ BuildError::Config(_)) => {
            report(&format!("error: {err}"));
            return EXIT_USAGE;
        }
        Err(err) => {
            report(&format!("error: {err}"));
            return EXIT_FAILED;
        }
    };
    let mut frames = client.frames();
    let mut errors = client.errors();
    let mut status = client.watch_status();
    let mut lines = stdin_lines();
    let mut acks: JoinSet<Result<(), String>> = JoinSet::new();
    let deadline = args
        .timeout_secs
        .map(|secs| tokio::time::Instant::now() + Duration::from_secs(secs));
    let mut stdin_open = true;
    let mut connected_once = false;
    let mut refused = false;
    let mut printer = Printer::new(args.count);
    let mut lagged = 0u64;
    let stdout = std::io::stdout();
    client.connect();

    let code = loop {
        let sleep =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            frame = frames.recv() => {
                let Some(envelope) = frame else { break EXIT_FAILED };
                let end = printer.print(&envelope, &mut stdout.lock());
                if frames.lagged() > lagged {
                    report(&format!("error: {} envelopes dropped: stdout is too slow", frames.lagged() - lagged));
                    lagged = frames.lagged();
                }
                if let Some(code) = end {
                    break code;
                }
            }
            changed = status.changed() => {
                if changed.is_err() {
                    break EXIT_FAILED;
                }
                let now = *status.borrow_and_update();
                report(&format!("status: {now}"));
                if now == Status::Connected {
                    connected_once = true;
                }
                if now == Status::Error {
                    let pending = std::iter::from_fn(|| frames.try_recv());
                    let reported = std::iter::from_fn(|| errors.try_recv());
                    break end_on_error(&mut printer, pending, reported, refused, &mut stdout.lock());
                }
            }
            error = errors.recv() => {
                if let Some(err) = error {
                    refused |= report_error(&err);
                }
            }
            line = lines.recv(), if stdin_open => match line {
                Some(line) => send_line(&client, line.trim(), &mut acks).await,
                None => stdin_open = false,
            },
            Some(done) = acks.join_next(), if !acks.is_empty() => {
                if let Ok(Err(err)) = done {
                    report(&format!("error: {err}"));
                }
            }
            () = tokio::time::sleep_until(sleep), if deadline.is_some() => {
                report("error: timeout");
                break EXIT_TIMEOUT;
            }
        }
        if !stdin_open
            && args.count.is_none()
            && connected_once
            && client.status() == Status::Connected
            && client.state().server_level.is_some()
            && acks.is_empty()
            && client.queued_messages().is_empty()
        {
            // Whatever arrived before the last ack settled is printed too (without a count,
            // only a closed stdout ends the printing early, and the run is done anyway).
            let pending = std::iter::from_fn(|| frames.try_recv());
            let _ = printer.print_all(pending, &mut stdout.lock());
            break EXIT_OK;
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, client.disconnect()).await;
    code
}

/// Prints the server's envelopes on stdout and counts them toward `--count`.
#[derive(Debug)]
struct Printer {
    count: Option<u64>,
    received: u64,
}

impl Printer {
    fn new(count: Option<u64>) -> Self {
        Self { count, received: 0 }
    }

    /// Prints `envelope` as one line (a `pong` is skipped); the exit code when the run ends
    /// with it: `EXIT_OK` at the count, `EXIT_FAILED` when `out` cannot be written.
    fn print(&mut self, envelope: &Envelope, out: &mut impl Write) -> Option<u8> {
        if envelope.kind() == "pong" {
            return None;
        }
        if writeln!(out, "{}", encode(envelope))
            .and_then(|()| out.flush())
            .is_err()
        {
            return Some(EXIT_FAILED);
        }
        // A refusal (`error{unauthorized}`, then close 4001) does not count: the close that
        // follows ends the run with exit 3.
        if !is_refusal(envelope) {
            self.received += 1;
        }
        self.count
            .is_some_and(|count| self.received >= count)
            .then_some(EXIT_OK)
    }

    /// Prints `envelopes` in order until one ends the run; that one's exit code.
    fn print_all(
        &mut self,
        envelopes: impl IntoIterator<Item = Envelope>,
        out: &mut impl Write,
    ) -> Option<u8> {
        envelopes
            .into_iter()
            .find_map(|envelope| self.print(&envelope, out))
    }
}

/// Whether `envelope` is the server's `error{unauthorized}` (a refused token: the close 4001
/// follows).
fn is_refusal(envelope: &Envelope) -> bool {
    #[derive(serde::Deserialize)]
    struct Code {
        code: String,
    }
    envelope.kind() == "error"
        && serde_json::from_str::<Code>(envelope.payload().get())
            .is_ok_and(|payload| payload.code == "unauthorized")
}

/// The exit code when the client's status turns `Error`, given the envelopes and errors it
/// delivered and this loop has not taken yet, and whether a refusal was already reported.
///
/// The client delivers every frame and error before the status they lead to, but the loop's
/// select may see the status first: what was delivered is handled first, in order (a
/// refusal's `error` frame is printed; a count reached before the error ends the run as it
/// would have), then the errors decide between a refusal and a failure.
fn end_on_error(
    printer: &mut Printer,
    pending: impl IntoIterator<Item = Envelope>,
    reported: impl IntoIterator<Item = ClientError>,
    mut refused: bool,
    out: &mut impl Write,
) -> u8 {
    if let Some(code) = printer.print_all(pending, out) {
        return code;
    }
    for err in reported {
        refused |= report_error(&err);
    }
    if refused { EXIT_REFUSED } else { EXIT_FAILED }
}

/// Reports an error on stderr; `true` when it is an auth refusal.
fn report_error(err: &ClientError) -> bool {
    report(&format!("error: {err}"));
    matches!(err, ClientError::Refused { .. })
}

async fn send_line(client: &Client, line: &str, acks: &mut JoinSet<Result<(), String>>) {
    if line.is_empty() {
        return;
    }
    let message = match parse_line(line) {
        Ok(message) => message,
        Err(err) => {
            report(&format!("error: invalid input line: {err}"));
            return;
        }
    };
    match client.send_outgoing(message).await {
        Ok(sent) => {
            acks.spawn(async move {
                sent.acked()
                    .await
                    .map(|_| ())
                    .map_err(|err| format!("not acknowledged: {err}"))
            });
        }
        Err(SendError::Stopped) => report("error: the client has stopped"),
        Err(err) => report(&format!("error: not sent: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_envelopes_or_type_and_payload() {
        let plain = parse_line(r#"chat.message {"text":"hi"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.envelope().kind(), "chat.message");
        assert_eq!(plain.envelope().payload().get(), r#"{"text":"hi"}"#);
        assert!(!plain.is_ack());
        let envelope = parse_line(r#"{"type":"quiz.answer","payload":2,"ack":true}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(envelope.is_ack());
        assert_eq!(
            parse_line("ping").map(|m| m.envelope().payload().get().to_owned()),
            Ok("null".to_owned())
        );
        assert!(parse_line("chat.message {oops").is_err());
        assert!(parse_line("Bad Type 1").is_err());
    }

    fn envelope(text: &str) -> Envelope {
        decode(text).unwrap_or_else(|e| panic!("{e}"))
    }

    const REFUSAL: &str = r#"{"type":"error","payload":{"code":"unauthorized","message":"no"}}"#;

    fn refused() -> ClientError {
        ClientError::Refused {
            code: 4001,
            reason: "unauthorized".to_owned(),
        }
    }

    fn printed(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    // The flake of `a_refusal_exits_3_even_when_its_error_frame_would_reach_the_count`: the
    // refusal's `error` frame was delivered, then the status turned `Error`, and the select
    // took the status first and exited 3 without printing the frame.
    #[test]
    fn a_refusal_seen_by_its_status_first_still_prints_its_error_frame() {
        let mut printer = Printer::new(Some(1));
        let mut out = Vec::new();
        let code = end_on_error(
            &mut printer,
            [envelope(REFUSAL)],
            [refused()],
            false,
            &mut out,
        );
        assert_eq!(code, EXIT_REFUSED);
        let lines = printed(&out);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(r#""code":"unauthorized""#), "{lines:?}");
    }

    #[test]
    fn a_count_reached_before_the_error_ends_the_run_as_it_would_have() {
        let mut printer = Printer::new(Some(2));
        let mut out = Vec::new();
        let welcome = envelope(r#"{"type":"welcome","payload":{}}"#);
        assert_eq!(printer.print(&welcome, &mut out), None);
        let pong = envelope(r#"{"type":"pong","payload":null}"#);
        let update = envelope(r#"{"type":"update","payload":1}"#);
        let code = end_on_error(
            &mut printer,
            [pong, update, envelope(REFUSAL)],
            [refused()],
            false,
            &mut out,
        );
        assert_eq!(code, EXIT_OK);
        let lines = printed(&out);
        assert_eq!(
            lines.len(),
            2,
            "pong skipped, nothing after the count: {lines:?}"
        );
        assert!(lines[1].contains(r#""type":"update""#), "{lines:?}");
    }

    #[test]
    fn an_error_without_a_refusal_is_a_failure_and_a_reported_refusal_stays_one() {
        let transport = || ClientError::Transport("reset".to_owned());
        let mut out = Vec::new();
        let mut printer = Printer::new(None);
        assert_eq!(
            end_on_error(&mut printer, [], [transport()], false, &mut out),
            EXIT_FAILED
        );
        assert_eq!(
            end_on_error(&mut printer, [], [transport()], true, &mut out),
            EXIT_REFUSED
        );
        assert!(out.is_empty());
    }
}
