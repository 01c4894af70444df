//! One task per WebSocket connection: reads frames into the [`Session`], writes what its
//! outbox holds in batches (feed every queued frame, flush once), and carries out effects.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use cerebrum_protocol::{Envelope, MessageId, encode};
use futures_util::SinkExt;
use tokio_tungstenite_error::is_capacity;

use crate::clock::Now;
use crate::outbox::{Frame, Outbox};
use crate::server::App;
use crate::session::{Effect, Session, close_code};

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

enum End {
    /// Send this close frame, after the queued frames.
    Close(u16, &'static str),
    /// Slow consumer: drop the backlog, close 4008.
    Slow,
    /// The peer closed or the socket failed.
    Gone,
}

/// Runs one connection to its end.
pub(crate) async fn run(guard: ConnGuard, mut ws: WebSocket, token: Option<String>) {
    let app = guard.app.clone();
    let ctx = app.ctx.clone();
    let outbox = Outbox::new(ctx.config.outbound_queue);
    let mut session = Session::new(
        ctx.clone(),
        outbox.clone(),
        token.as_deref(),
        Now::current(),
    );
    let mut shutdown = app.shutdown_rx();
    let mut batch: Vec<Frame> = Vec::new();
    tracing::debug!(connection = session.connection_id(), "connection opened");
    let end = loop {
        if let Some(end) = carry_out(&app, &mut session).await {
            break end;
        }
        if outbox.is_slow() {
            break End::Slow;
        }
        if !outbox.is_empty() {
            match write_batch(&app, &mut ws, &outbox, &mut batch).await {
                Ok(()) => continue,
                Err(end) => break end,
            }
        }
        if *shutdown.borrow() {
            break End::Close(close_code::GOING_AWAY, "server shutting down");
        }
        let deadline = tokio::time::Instant::from_std(session.poll_timeout());
        let fed = tokio::select! {
            inbound = ws.recv() => match inbound {
                Some(Ok(Message::Text(text))) => guarded(|| session.handle_text(text.as_str(), Now::current())),
                Some(Ok(Message::Binary(bytes))) => guarded(|| session.handle_binary(bytes.len(), Now::current())),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    // Control frames count as activity; tungstenite answers pings itself.
                    guarded(|| session.handle_activity(Now::current()))
                }
                Some(Ok(Message::Close(_))) | None => break End::Gone,
                Some(Err(err)) => {
                    if is_capacity(&err) {
                        break End::Close(close_code::TOO_BIG, "frame too large");
                    }
                    break End::Gone;
                }
            },
            () = outbox.notified() => true,
            () = tokio::time::sleep_until(deadline) => guarded(|| session.handle_timeout(Now::current())),
            _ = shutdown.changed() => true,
        };
        if !fed {
            break End::Close(close_code::INTERNAL, "internal error");
        }
    };
    let end_name = match &end {
        End::Close(_, reason) => *reason,
        End::Slow => "slow consumer",
        End::Gone => "closed by the peer",
    };
    match end {
        End::Close(code, reason) => {
            // The frames queued before the close (an error, say) go first.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                let _ = write_batch(&app, &mut ws, &outbox, &mut batch).await;
                send_close(&mut ws, code, reason).await;
                while let Some(Ok(_)) = ws.recv().await {}
            })
            .await;
        }
        End::Slow => {
            ctx.metrics
                .slow_consumer_closes
                .fetch_add(1, Ordering::Relaxed);
            outbox.close();
            batch.clear();
            let mut drop_all = Vec::new();
            outbox.drain_into(&mut drop_all);
            let _ = tokio::time::timeout(SLOW_CLOSE_GRACE, async {
                send_close(&mut ws, close_code::SLOW_CONSUMER, "slow consumer").await;
                while let Some(Ok(_)) = ws.recv().await {}
            })
            .await;
        }
        End::Gone => {
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.flush()).await;
        }
    }
    tracing::debug!(
        connection = session.connection_id(),
        user = session.user_id(),
        how = end_name,
        "connection closed"
    );
    session.disconnect(Now::current());
    drop(guard);
}

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
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// Writes every queued frame, flushing once; gives up (slow consumer) if the queue overflows
/// while the socket does not take the bytes.
async fn write_batch(
    app: &App,
    ws: &mut WebSocket,
    outbox: &Arc<Outbox>,
    batch: &mut Vec<Frame>,
) -> Result<(), End> {
    outbox.drain_into(batch);
    if batch.is_empty() {
        return Ok(());
    }
    let metrics = &app.ctx.metrics;
    let write = async {
        for frame in batch.drain(..) {
            metrics.frames_sent.fetch_add(1, Ordering::Relaxed);
            metrics
                .bytes_sent
                .fetch_add(frame.text.len() as u64, Ordering::Relaxed);
            metrics.observe_latency(frame.queued_at.elapsed());
            ws.feed(Message::Text(frame.text)).await?;
        }
        ws.flush().await
    };
    // The batch buffer is released after each write, like the outbox's.
    let slow = async {
        loop {
            outbox.notified().await;
            if outbox.is_slow() {
                break;
            }
        }
    };
    let result = tokio::select! {
        written = write => written.map_err(|_| End::Gone),
        () = slow => Err(End::Slow),
    };
    *batch = Vec::new();
    result
}

/// Carries out the session's effects; `Some` when the connection must end.
async fn carry_out(app: &Arc<App>, session: &mut Session) -> Option<End> {
    while let Some(effect) = session.poll_effect() {
        match effect {
            Effect::Close { code, reason } => return Some(End::Close(code, reason)),
            Effect::FinishStudy {
                user_id,
                finished,
                ack,
            } => match app.finish_study(user_id, finished).await {
                Ok(_) => {
                    if let Some(id) = ack {
                        session.send_ack(id, Now::current());
                    }
                }
                Err(err) => {
                    tracing::error!(%err, "could not record a study session");
                    session.send_internal_error(ack, Now::current());
                }
            },
            Effect::StudyStarted { user_id, topic } => {
                if let Err(err) = app.study_started(&user_id, topic).await {
                    tracing::error!(%err, "could not read a study record");
                }
            }
            Effect::DeliverPending { user_id } => match app.pending(&user_id).await {
                Ok(notifications) => {
                    let now = Now::current();
                    for notification in notifications {
                        if let Some(frame) = notification_frame(app, &notification, now) {
                            session.push(frame, now);
                        }
                    }
                }
                Err(err) => tracing::error!(%err, "could not read pending notifications"),
            },
            Effect::AckNotification {
                user_id,
                notification_id,
                ack,
            } => match app.ack_notification(&user_id, &notification_id).await {
                Ok(()) => {
                    if let Some(id) = ack {
                        session.send_ack(id, Now::current());
                    }
                }
                Err(err) => {
                    tracing::error!(%err, "could not record a notification ack");
                    session.send_internal_error(ack, Now::current());
                }
            },
        }
    }
    None
}

/// The frame of a notification: its `messageId` is the notification's id, so the client's
/// `ack{messageId}` names it.
pub(crate) fn notification_frame(
    app: &App,
    notification: &cerebrum_protocol::Notification,
    now: Now,
) -> Option<Utf8Bytes> {
    let id = MessageId::new(notification.id.clone()).ok()?;
    let envelope = Envelope::from_payload(notification)
        .ok()?
        .with_timestamp(now.unix_ms)
        .with_message_id(id);
    let _ = app;
    Some(Utf8Bytes::from(encode(&envelope)))
}

/// Recognises tungstenite's "message too long" behind axum's error type.
mod tokio_tungstenite_error {
    use std::error::Error as _;

    pub(super) fn is_capacity(err: &axum::Error) -> bool {
        let mut source = err.source();
        while let Some(inner) = source {
            if let Some(ws) = inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
                return matches!(ws, tokio_tungstenite::tungstenite::Error::Capacity(_));
            }
            source = inner.source();
        }
        // axum::Error displays its inner error.
        let text = err.to_string();
        text.contains("Space limit exceeded") || text.contains("too long")
    }
}
