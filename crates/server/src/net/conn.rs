//! One task per WebSocket connection: reads frames into the [`Session`], writes what its
//! outbox holds in batches (feed every queued frame, flush once; one frame at a time while the
//! connection is behind, so that its backlog stays conflatable), and carries out effects.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cerebrum_protocol::{MAX_FRAME_BYTES, MessageId};
use futures_util::stream::FuturesOrdered;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::app::App;
use crate::broker::BrokerError;
use crate::clock::now;
use crate::metrics::SentBatch;
use crate::net::deflate;
use crate::net::upgrade::WebSocket;
use crate::outbox::{Frame, Outbox, Taken};
use crate::session::{Effect, Session, close_code};
use cerebrum_deflate::CodecError;
use cerebrum_server_core::{Compression, Encoding, Text};

/// How long a closing connection waits for its last frames and the peer's close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a slow consumer gets to take its backlog and the 4008 close frame.
const SLOW_CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Keeps the connection count right however the task ends.
pub(crate) struct ConnGuard {
    pub(crate) app: Arc<App>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.app.connection_closed();
    }
}

/// Runs [`Session::disconnect`] however the connection task ends, unwinding included: a panic
/// while carrying out an effect must not leave the connection's hub subscriptions, its
/// per-user count or its study presence behind.
/// It also holds the connection's place in the count and in [`App::live`] (given back after
/// the disconnect, in that order).
struct SessionGuard {
    session: Session,
    conn: ConnGuard,
    /// The connection's key in [`App::live`].
    listed: usize,
    disconnected: bool,
}

impl SessionGuard {
    /// Disconnects the session once, and carries out what that gives back to the remote
    /// broker (watches, the per-user count) in a task of its own.
    fn disconnect(&mut self) {
        if !std::mem::replace(&mut self.disconnected, true) {
            self.session.disconnect(now());
            let effects: Vec<Effect> = std::iter::from_fn(|| self.session.poll_effect()).collect();
            if !effects.is_empty()
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                let app = self.conn.app.clone();
                runtime.spawn(async move {
                    for effect in effects {
                        release(&app, effect).await;
                    }
                });
            }
        }
    }
}

impl std::ops::Deref for SessionGuard {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl std::ops::DerefMut for SessionGuard {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.disconnect();
        self.conn.app.unlist_connection(self.listed);
        // Then the fields: `conn` last, so shutdown (which drains on the count) sees the
        // connection gone only once it is disconnected.
    }
}

enum End {
    /// Send this close frame, after the queued frames.
    Close(u16, &'static str),
    /// Slow consumer: drop the backlog, close 4008.
    Slow,
    /// The peer closed or the socket failed.
    Gone,
}

/// Runs one connection to its end.
///
/// The returned future is what an idle connection holds for its whole life, so it is kept
/// small: the rare paths (effects that reach the store, the closing handshake) run in futures
/// boxed only when they happen, and the state is built here, outside the future, so that the
/// socket and the session are held once (an `async fn` keeps a copy of its arguments beside the
/// locals it moves them into: 360 bytes a connection here, docs/benchmarks.md).
///
/// `encoding` (the subprotocol the upgrade selected) is kept in the connection's [`Outbox`],
/// not in the future: frames are written in that form, and binary frames are read as
/// MessagePack only on a MessagePack connection.
pub(crate) fn run(
    guard: ConnGuard,
    mut ws: WebSocket,
    token: Option<String>,
    encoding: Encoding,
) -> impl Future<Output = ()> + Send {
    let app = guard.app.clone();
    let outbox = Outbox::with_encoding(app.ctx.config.outbound_queue, encoding);
    // Listed before the first look at `is_stopping`: a stop is never missed.
    let listed = app.list_connection(&outbox);
    let mut session = SessionGuard {
        session: Session::new(app.ctx.clone(), outbox.clone(), token.as_deref(), now()),
        conn: guard,
        listed,
        disconnected: false,
    };
    drop(token);
    async move {
        // The idle timer is re-armed when it fires, or when the session's next deadline came
        // nearer (below); a deadline that moved later (each inbound frame pushes the idle one)
        // is left for the firing to find, so no frame resets a timer on the timer wheel.
        let idle_timer =
            tokio::time::sleep_until(tokio::time::Instant::from_std(session.poll_timeout()));
        tokio::pin!(idle_timer);
        let mut first_batch = true;
        // Wake-ups in a row that found frames to write before the socket was read, and whether
        // the socket needs no poll until its waker fires (see `wait`).
        let mut writes_in_a_row = 0u8;
        let mut socket_armed = false;
        // Publications on a remote broker on their way (allocated on the first one).
        let mut in_flight: Option<Box<InFlight>> = None;
        tracing::debug!(connection = %session.connection_id(), "connection opened");
        let end = loop {
            if session.has_effects()
                && let Some(end) = Box::pin(carry_out(&app, &mut session, &mut in_flight)).await
            {
                break end;
            }
            if outbox.is_slow() {
                break End::Slow;
            }
            // The write takes the queue itself when first polled (one lock, no copy into a
            // second buffer). It is awaited unnamed: a named future would be kept in this
            // future beside the one awaited (64 bytes a connection).
            if !outbox.is_empty() {
                // The first batch (`welcome`, `system_status`) goes out frame by frame:
                // tungstenite keeps its write buffer at the largest size it ever held, so
                // writing these two together would leave every idle connection holding both
                // (~0.5 kB).
                let frame_by_frame = std::mem::take(&mut first_batch);
                match write_batch(&app, &mut ws, &outbox, frame_by_frame).await {
                    Ok(()) => continue,
                    Err(end) => break end,
                }
            }
            if app.is_stopping() {
                break End::Close(close_code::GOING_AWAY, "server shutting down");
            }
            // A deadline that came nearer (a page of pending notifications to read again, the
            // expiry of a token given in an `auth` frame) re-arms the timer; one that moved
            // later is found when the timer fires. (In a block: nothing of it is kept in the
            // future across the wait below.)
            {
                let due = tokio::time::Instant::from_std(session.poll_timeout());
                if due < idle_timer.deadline() {
                    idle_timer.as_mut().reset(due);
                }
            }
            let woken = wait(
                &mut ws,
                &outbox,
                &mut in_flight,
                idle_timer.as_mut(),
                session.is_waiting(),
                &mut writes_in_a_row,
                &mut socket_armed,
            )
            .await;
            let fed = match woken {
                Woken::Inbound(inbound) => match inbound {
                    Some(Ok(Message::Text(text))) => {
                        guarded(|| session.handle_text(text.as_str(), now()))
                    }
                    Some(Ok(Message::Binary(bytes))) => guarded(|| match outbox.encoding() {
                        Encoding::MessagePack => session.handle_msgpack(&bytes, now()),
                        _ => session.handle_binary(bytes.len(), now()),
                    }),
                    Some(Ok(Message::Frame(frame))) if frame.header().rsv1 => {
                        match inflated(&app, &mut session, &frame, outbox.encoding()) {
                            Ok(fed) => fed,
                            Err(end) => break end,
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                        // Control frames count as activity; tungstenite answers pings itself (and
                        // yields no raw frame while reading).
                        guarded(|| session.handle_activity(now()))
                    }
                    Some(Ok(Message::Close(_))) | None => break End::Gone,
                    Some(Err(WsError::Capacity(_))) => {
                        break End::Close(close_code::TOO_BIG, "frame too large");
                    }
                    Some(Err(_)) => break End::Gone,
                },
                Woken::Notified => true,
                Woken::Published(published) => {
                    published.answer(&mut session);
                    if in_flight.as_ref().is_some_and(|f| f.is_empty()) {
                        in_flight = None;
                    }
                    true
                }
                Woken::Timer => {
                    // Quiet for a while: the queue's buffer kept for the next batch goes.
                    outbox.release_spare();
                    let now = now();
                    let due = session.poll_timeout();
                    if now.mono >= due {
                        guarded(|| session.handle_timeout(now))
                    } else {
                        idle_timer
                            .as_mut()
                            .reset(tokio::time::Instant::from_std(due));
                        true
                    }
                }
            };
            if !fed {
                break End::Close(close_code::INTERNAL, "internal error");
            }
        };
        Box::pin(finish(&app, ws, &outbox, end, &mut session)).await;
        // Disconnected, then unlisted, then no longer counted (shutdown drains on the count).
        drop(session);
    }
}

/// Ends a connection: the close handshake its end calls for, then the session's disconnect.
async fn finish(
    app: &Arc<App>,
    mut ws: WebSocket,
    outbox: &Arc<Outbox>,
    end: End,
    session: &mut SessionGuard,
) {
    let end_name = match &end {
        End::Close(_, reason) => *reason,
        End::Slow => "slow consumer",
        End::Gone => "closed by the peer",
    };
    match end {
        End::Close(code, reason) => {
            // The frames queued before the close (an error, say) go first.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                let _ = write_batch(app, &mut ws, outbox, false).await;
                send_close(&mut ws, code, reason).await;
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
        End::Slow => {
            app.ctx
                .metrics
                .slow_consumer_closes
                .fetch_add(1, Ordering::Relaxed);
            outbox.close();
            let mut drop_all = Vec::new();
            outbox.drain_into(&mut drop_all);
            let _ = tokio::time::timeout(SLOW_CLOSE_GRACE, async {
                send_close(&mut ws, close_code::SLOW_CONSUMER, "slow consumer").await;
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
        End::Gone => {
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.flush()).await;
        }
    }
    tracing::debug!(
        connection = %session.connection_id(),
        user = session.user_id(),
        how = end_name,
        "connection closed"
    );
    session.disconnect();
}

/// What woke a waiting connection.
enum Woken {
    /// The socket: a message, an error, or its end (`None`).
    Inbound(Option<Result<Message, WsError>>),
    /// The outbox: frames were queued, or it closed, or the owner was woken
    /// ([`Outbox::wake`]).
    Notified,
    /// A publication on a remote broker was answered.
    Published(Published),
    /// The idle timer fired.
    Timer,
}

/// How many wake-ups in a row may go to writing before the socket, a remote answer and the
/// timer are polled first: a wake-up that has frames to write does not poll the socket
/// (reading costs about as much as a delivery's write when nothing is there), but a connection
/// that always has frames must still read its peer's frames and pings, and keep its
/// deadlines.
const WRITES_BEFORE_A_READ: u8 = 8;

/// Waits for the first of: the outbox, the socket (unless the session waits on an effect's
/// answer), a remote publication's answer, the idle timer.
///
/// A hand-written poll rather than a `select!` (which polls its branches from a random start,
/// so three times in four it reads the socket before it finds the frames that woke it): the
/// outbox is polled first, and last only after [`WRITES_BEFORE_A_READ`] wake-ups in a row
/// went to writing. When none is ready every one of them was polled, so each holds the task's
/// waker. The future is a few references: every idle connection holds it.
///
/// The socket is polled with the outbox's [`Outbox::source_waker`], which leaves a flag when
/// it fires: once a poll of the socket returned `Pending` (`socket_armed`), the wake-ups that
/// follow poll it again only if that flag is set, so a wake-up for frames to write costs no
/// read attempt (tungstenite's read path and tokio's readiness check, ~700 instructions;
/// docs/benchmarks.md). The flag is read after the outbox kept the task's waker, so a socket
/// that becomes readable at any point wakes the task or is seen here.
fn wait<'a>(
    ws: &'a mut WebSocket,
    outbox: &'a Arc<Outbox>,
    in_flight: &'a mut Option<Box<InFlight>>,
    mut idle_timer: Pin<&'a mut tokio::time::Sleep>,
    session_waiting: bool,
    writes_in_a_row: &'a mut u8,
    socket_armed: &'a mut bool,
) -> impl Future<Output = Woken> + 'a {
    std::future::poll_fn(move |cx| {
        // Every few wake-ups the others go before the outbox: a connection that always has
        // frames to write still reads its peer and keeps its timers.
        let outbox_first = *writes_in_a_row < WRITES_BEFORE_A_READ;
        if outbox_first && outbox.poll_notified(cx.waker()).is_ready() {
            *writes_in_a_row += 1;
            return Poll::Ready(Woken::Notified);
        }
        *writes_in_a_row = 0;
        // After a `Pending` poll_notified the flag is read safely; otherwise (the outbox comes
        // last this time) the socket is polled whatever the flag says. While the session
        // waits the flag is left for when it may read.
        if !session_waiting && (outbox.take_source_woken() || !*socket_armed || !outbox_first) {
            let waker = outbox.source_waker();
            let mut socket_cx = Context::from_waker(&waker);
            match ws.poll_next_unpin(&mut socket_cx) {
                Poll::Ready(inbound) => {
                    // More frames may be buffered already: poll again next time.
                    *socket_armed = false;
                    return Poll::Ready(Woken::Inbound(inbound));
                }
                Poll::Pending => *socket_armed = true,
            }
        }
        if let Some(queue) = in_flight.as_mut()
            && let Poll::Ready(Some(published)) = queue.poll_next_unpin(cx)
        {
            return Poll::Ready(Woken::Published(published));
        }
        if idle_timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Woken::Timer);
        }
        if !outbox_first {
            if outbox.poll_notified(cx.waker()).is_ready() {
                return Poll::Ready(Woken::Notified);
            }
            // The socket's waker may have fired between its poll above and this registration,
            // finding no waker to wake: then poll again at once.
            if outbox.take_source_woken() {
                *socket_armed = false;
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    })
}

/// A frame as the connection's `encoding` sends it: the shared bytes of its JSON text in a text
/// frame, or of its MessagePack form (built once for every connection that sends it, see
/// [`Text::msgpack`]) in a binary frame; on a connection that negotiated permessage-deflate
/// (`compression`), the compressed form of those bytes when it pays (also built once, see
/// [`Text::deflated`]).
///
/// The core's [`Text`] is UTF-8 by construction, so the text frame is built directly rather
/// than through tungstenite's `Utf8Bytes`, which can be made from bytes only by checking them
/// again: one check per subscriber of every publication, the biggest part of the cost the core
/// refactor added per delivery (docs/benchmarks.md).
fn to_message(text: Text, encoding: Encoding, compression: Option<&Compression>) -> Message {
    let (bytes, kind) = wire_form(&text, encoding);
    if let Some(settings) = compression {
        let form = match kind {
            Data::Binary => Encoding::MessagePack,
            _ => Encoding::Json,
        };
        if let Some(compressed) = deflate::compressed(&text, form, bytes.len(), settings) {
            return Message::Frame(WsFrame::compressed(compressed, kind));
        }
    }
    Message::Frame(WsFrame::message(bytes, OpCode::Data(kind), true))
}

/// The bytes a frame goes out as, and whether they are text or binary. A MessagePack
/// connection gets the JSON text instead when the MessagePack form would break the frame
/// limit that its JSON text keeps (floats take 9 bytes: `[1.5,1.5,…]` grows by 2.25 times),
/// or, never for the server's own frames, when the text has no MessagePack form: peers of
/// `cerebrum.v1.msgpack` read text frames as JSON (docs/protocol.md).
fn wire_form(text: &Text, encoding: Encoding) -> (bytes::Bytes, Data) {
    if encoding == Encoding::MessagePack {
        match text.msgpack() {
            Ok(bytes) if bytes.len() <= MAX_FRAME_BYTES.max(text.len()) => {
                return (bytes, Data::Binary);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "a frame has no MessagePack form; sent as text"),
        }
    }
    (text.json_bytes(), Data::Text)
}

/// A compressed inbound message (RSV1; permessage-deflate was negotiated): inflated and fed
/// to the session as the text or binary frame it was. One that does not inflate closes the
/// connection 1007 (as a frame of bad UTF-8 would, the window it needed being lost), one past
/// the frame limit 1009, as an uncompressed one that large would.
fn inflated(
    app: &App,
    session: &mut Session,
    frame: &WsFrame,
    encoding: Encoding,
) -> Result<bool, End> {
    let opcode = frame.header().opcode;
    let limit = app.ctx.config.max_frame_bytes;
    let message = match cerebrum_deflate::inflate_on_this_thread(frame.payload(), limit) {
        Ok(message) => message,
        Err(CodecError::TooLarge { .. }) => {
            return Err(End::Close(close_code::TOO_BIG, "frame too large"));
        }
        Err(err) => {
            tracing::debug!(%err, "a compressed message did not inflate");
            return Err(End::Close(INVALID_DATA, "the message does not inflate"));
        }
    };
    match opcode {
        OpCode::Data(Data::Text) => match String::from_utf8(message) {
            Ok(text) => Ok(guarded(|| session.handle_text(&text, now()))),
            Err(_) => Err(End::Close(INVALID_DATA, "a text message that is not UTF-8")),
        },
        _ => Ok(guarded(|| match encoding {
            Encoding::MessagePack => session.handle_msgpack(&message, now()),
            _ => session.handle_binary(message.len(), now()),
        })),
    }
}

/// Close code 1007: a message's data is not what its type says (RFC 6455 section 7.4.1).
const INVALID_DATA: u16 = 1007;

/// Runs a session call; `false` if it panicked (a bug: the connection closes 1011, the server
/// goes on).
fn guarded(call: impl FnOnce()) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(()) => true,
        Err(_) => {
            tracing::error!("a session call panicked; closing the connection with 1011");
            false
        }
    }
}

async fn send_close(ws: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// Writes what the outbox holds (taken when the future is first polled) until it is empty and
/// flushed; gives up (slow consumer) if the queue overflows while the socket does not take the
/// bytes.
///
/// A connection that keeps up gets every queued frame at once and one flush for them. One that
/// is behind ([`Outbox::take`]: its queue at the conflation threshold, or its last write had to
/// wait for the socket) is written one frame at a time: the next frame is taken from the outbox
/// only once the socket took the previous one, so what is not written yet stays in the queue,
/// where a newer keyed frame replaces it. (With a capped send buffer, `--send-buffer`, little
/// more than one buffer of frames is then out of conflation's reach.)
///
/// A hand-written poll loop rather than an `async` block with a `select!`: the connection's
/// future holds this one whenever it waits, and this way it is a few words, not ~350 bytes
/// (the two flags of the one-frame path sit in the padding beside the others).
fn write_batch<'a>(
    app: &'a App,
    ws: &'a mut WebSocket,
    outbox: &'a Outbox,
    frame_by_frame: bool,
) -> impl Future<Output = Result<(), End>> + 'a {
    let mut batch = VecDeque::new();
    let mut taken = false;
    // A flush after the frame just fed (the first batch goes out frame by frame, and so does
    // a connection that is behind).
    let mut flush_now = false;
    // The connection is behind: frames come from the outbox one at a time.
    let mut one_by_one = false;
    // The socket did not take the bytes at once at some point of this write.
    let mut waited = false;
    std::future::poll_fn(move |cx| {
        if !std::mem::replace(&mut taken, true) {
            match outbox.take() {
                Taken::All(all) => {
                    batch = all;
                    if !batch.is_empty() {
                        record_sent(app, &batch, outbox.encoding());
                    }
                }
                Taken::One(frame) => {
                    one_by_one = true;
                    record_sent(app, std::slice::from_ref(&frame), outbox.encoding());
                    batch.push_back(frame);
                }
            }
        }
        loop {
            let ready = if flush_now || batch.is_empty() {
                Pin::new(&mut *ws).poll_flush(cx)
            } else {
                Pin::new(&mut *ws).poll_ready(cx)
            };
            match ready {
                Poll::Pending => {
                    waited = true;
                    return slow_or_pending(outbox, cx);
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Err(End::Gone)),
                Poll::Ready(Ok(())) if flush_now => flush_now = false,
                Poll::Ready(Ok(())) => {
                    let Some(frame) = batch.pop_front() else {
                        // Everything taken so far is written and flushed.
                        if one_by_one && let Some(frame) = outbox.take_front() {
                            record_sent(app, std::slice::from_ref(&frame), outbox.encoding());
                            batch.push_back(frame);
                            continue;
                        }
                        if one_by_one || waited {
                            outbox.set_behind(waited);
                        }
                        if !frame_by_frame {
                            // Reused by the next pushes (released when the connection goes
                            // quiet: the idle timer).
                            outbox.give_back(std::mem::take(&mut batch));
                        }
                        return Poll::Ready(Ok(()));
                    };
                    let compression = ws
                        .get_config()
                        .compressed_messages
                        .then_some(&app.ctx.config.compression);
                    if Pin::new(&mut *ws)
                        .start_send(to_message(frame.text, outbox.encoding(), compression))
                        .is_err()
                    {
                        return Poll::Ready(Err(End::Gone));
                    }
                    flush_now = frame_by_frame || one_by_one;
                }
            }
        }
    })
}

/// While the socket does not take the bytes: `Ready(Err(End::Slow))` once the outbox has
/// overflowed, otherwise pending (woken by the socket or by the next push).
fn slow_or_pending(outbox: &Outbox, cx: &mut Context<'_>) -> Poll<Result<(), End>> {
    while outbox.poll_notified(cx.waker()).is_ready() {
        if outbox.is_slow() {
            return Poll::Ready(Err(End::Slow));
        }
    }
    Poll::Pending
}

/// Counts a batch in the metrics (apart from `write_batch`, whose future every connection
/// holds: nothing of this stays in it). The bytes are those of the form sent (on a MessagePack
/// connection this builds the frames' MessagePack forms, which the write then reuses).
fn record_sent<'f>(app: &App, batch: impl IntoIterator<Item = &'f Frame>, encoding: Encoding) {
    let now = Instant::now();
    let mut sent = SentBatch::default();
    for frame in batch {
        let len = match encoding {
            Encoding::Json => frame.text.len(),
            _ => wire_form(&frame.text, encoding).0.len(),
        };
        sent.frame(len, now.saturating_duration_since(frame.queued_at));
    }
    app.ctx.metrics.record_sent(&sent);
}

/// A publication a remote broker has taken (or refused).
struct Published {
    channel: String,
    ack: Option<MessageId>,
    result: Result<u64, BrokerError>,
}

impl Published {
    /// Acks the frame, or answers `internal`.
    fn answer(self, session: &mut Session) {
        match self.result {
            Ok(_) => {
                if let Some(id) = self.ack {
                    session.send_ack(id, now());
                }
            }
            Err(err) => {
                tracing::warn!(%err, channel = self.channel, "could not publish");
                session.send_internal_error(self.ack, now());
            }
        }
    }
}

/// A connection's publications in flight to a remote broker, answered in the order they were
/// sent (and submitted to the broker in that order: each is first polled in push order, and
/// the broker's one multiplexed connection keeps it), so a connection publishing fast pays one
/// round trip per batch, not per publication.
type InFlight = FuturesOrdered<Pin<Box<dyn Future<Output = Published> + Send>>>;

/// Carries out the session's effects in order, feeding each answer back before the next;
/// `Some` when the connection must end.
async fn carry_out(
    app: &Arc<App>,
    session: &mut Session,
    in_flight: &mut Option<Box<InFlight>>,
) -> Option<End> {
    while let Some(effect) = session.poll_effect() {
        match effect {
            Effect::Close { code, reason } => return Some(End::Close(code, reason)),
            Effect::Publish {
                channel,
                envelope,
                ack,
            } => {
                let app = app.clone();
                let publish = async move {
                    let result = app.publish(&channel, *envelope, now()).await;
                    Published {
                        channel,
                        ack,
                        result,
                    }
                };
                in_flight
                    .get_or_insert_with(|| Box::new(FuturesOrdered::new()))
                    .push_back(Box::pin(publish));
            }
            Effect::FinishStudy {
                user_id,
                finished,
                ack,
            } => match app.finish_study(user_id, finished.clone()).await {
                Ok(_) => {
                    if let Some(id) = ack {
                        session.send_ack(id, now());
                    }
                }
                Err(err) => {
                    tracing::error!(%err, "could not record a study session");
                    match &finished {
                        Some(finished) => session.study_end_failed(finished, ack, now()),
                        None => session.send_internal_error(ack, now()),
                    }
                }
            },
            Effect::StudyStarted { user_id, topic } => {
                if let Err(err) = app.study_started(&user_id, topic).await {
                    tracing::error!(%err, "could not read a study record");
                }
            }
            Effect::DeliverPending { user_id } => match app.pending(&user_id).await {
                Ok(page) => session.handle_pending_page(&page, now()),
                Err(err) => tracing::error!(%err, "could not read pending notifications"),
            },
            Effect::AckNotification {
                user_id,
                notification_id,
                ack,
            } => match app.ack_notification(&user_id, &notification_id).await {
                Ok(()) => {
                    session.handle_notification_acked(&notification_id);
                    if let Some(id) = ack {
                        session.send_ack(id, now());
                    }
                }
                Err(err) => {
                    tracing::error!(%err, "could not record a notification ack");
                    session.send_internal_error(ack, now());
                }
            },
            Effect::Claim { key, id } => {
                let claimed = claim(app, &key, id.as_str()).await;
                session.handle_claimed(claimed, now());
            }
            Effect::CountUser { user, limit } => {
                let admitted = match &app.remote {
                    Some(remote) => remote.user_connected(&user, limit).await,
                    None => Err(BrokerError::Unavailable),
                };
                session.handle_user_counted(admitted, now());
            }
            Effect::Watch { channel } => {
                let watched = match &app.remote {
                    Some(remote) => remote.watch(&channel).await,
                    None => Err(BrokerError::Unavailable),
                };
                if watched.is_err() {
                    session.handle_watch_failed(&channel);
                }
            }
            Effect::Replay {
                channel,
                since,
                watch,
            } => {
                let (replay, watched) = replay(app, &channel, since.as_ref(), watch).await;
                session.handle_replay(replay, watched, now());
            }
            Effect::PresenceJoin {
                channel,
                participant,
            } => {
                let joined = match &app.remote {
                    Some(remote) => remote.join(&channel, participant).await,
                    None => Err(BrokerError::Unavailable),
                };
                session.handle_presence_joined(joined, now());
            }
            Effect::SessionUpdate { channel, topic } => {
                app.publish_session_update(&channel, &topic).await;
            }
            effect => release(app, effect).await,
        }
    }
    None
}

/// How long a claimed message stays "in progress" before a re-send may take it over (its node
/// died before the effect): a few op timeouts.
const CLAIM_PENDING: Duration = Duration::from_secs(10);

/// [`Effect::Claim`]: asks until the claim is not in progress elsewhere any more (settled,
/// released, or expired with the node that held it), for at most [`CLAIM_PENDING`].
async fn claim(app: &App, key: &str, id: &str) -> Result<crate::broker::Claimed, BrokerError> {
    let Some(remote) = &app.remote else {
        return Err(BrokerError::Unavailable);
    };
    let deadline = Instant::now() + CLAIM_PENDING;
    loop {
        let claimed = remote.claim(key, id, CLAIM_PENDING).await;
        if !matches!(claimed, Ok(crate::broker::Claimed::InProgress)) || Instant::now() >= deadline
        {
            return claimed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`Effect::Replay`]: watches the channel first when asked, then reads the replay; also
/// says whether the broker now counts a watch for the connection.
async fn replay(
    app: &App,
    channel: &str,
    since: Option<&cerebrum_protocol::StreamPosition>,
    watch: bool,
) -> (Result<crate::broker::Replay, BrokerError>, bool) {
    let Some(remote) = &app.remote else {
        return (Err(BrokerError::Unavailable), false);
    };
    if watch && let Err(err) = remote.watch(channel).await {
        return (Err(err), false);
    }
    (remote.replay(channel, since, Instant::now()).await, true)
}

/// The effects that need no answer: what a session gives back to the remote broker (also
/// after it disconnected).
async fn release(app: &App, effect: Effect) {
    match effect {
        Effect::Release { key, id } => {
            if let Some(remote) = &app.remote {
                let _ = remote.release(&key, id.as_str()).await;
            }
        }
        Effect::Settle { key, id } => {
            if let Some(remote) = &app.remote {
                let window = app.ctx.config.dedupe_window;
                let _ = remote.settle(&key, id.as_str(), window).await;
            }
        }
        Effect::UncountUser { user } => {
            if let Some(remote) = &app.remote {
                let _ = remote.user_disconnected(&user).await;
            }
        }
        Effect::Unwatch { channel } => {
            if let Some(remote) = &app.remote {
                remote.unwatch(&channel);
            }
        }
        Effect::PresenceLeave {
            channel,
            user_id,
            joined_at,
        } => {
            app.presence_leave(&channel, &user_id, joined_at).await;
        }
        Effect::SessionUpdate { channel, topic } => {
            app.publish_session_update(&channel, &topic).await;
        }
        other => tracing::debug!(?other, "an effect after the connection closed is dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns, read from its type without calling it.
    fn returned_size<A, B, C, D, R>(_f: impl FnOnce(A, B, C, D) -> R) -> usize {
        size_of::<R>()
    }

    /// The connection's future is what an idle connection holds for its whole life, in a tokio
    /// task cell of exactly 1 024 bytes (docs/benchmarks.md, "The connection task, second
    /// round"): it must not grow, and the batch write it holds while waiting stays a few words.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn the_connection_future_stays_within_its_cell() {
        let batch = returned_size(write_batch);
        let connection = returned_size(run);
        assert!(batch <= 64, "write_batch's future is {batch} bytes");
        assert!(
            connection <= 872,
            "the connection future is {connection} bytes"
        );
    }
}
