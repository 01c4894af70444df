//! The driver: one tokio task per client that owns a [`ClientCore`] and a [`Transport`], and runs
//! the core's driving contract.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cerebrum_core::{
    AckError, ClientCore, Command, Config, ConfigError, Event, Outgoing, SendError, TokenTransport,
    TransportEvent,
};
use cerebrum_protocol::{MessageId, ProtocolError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::token::{TokenFuture, TokenProvider, with_query_token, without_query_token};
use crate::transport::{OpenRequest, Transport};

/// How long the driver waits for the close handshake when the last [`Handle`] is dropped.
const FINAL_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The current instant on tokio's clock (virtual under `tokio::time::pause`), as the core's
/// `Instant`.
#[must_use]
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Milliseconds since the Unix epoch, from the system clock.
#[must_use]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Receives what the core reports, inside the driver task, in order.
///
/// Calls are synchronous and must return quickly (forward to channels, update a watch): the
/// driver does nothing else meanwhile.
pub trait Observer: Send + 'static {
    /// One event of the core. `follow_up` queues messages to send in answer (they are fed to
    /// the core right after the current events are drained).
    fn on_event(&mut self, event: Event, follow_up: &mut FollowUp);

    /// A raw text frame, just before the core reads it (control frames included).
    fn on_frame(&mut self, frame: &str) {
        let _ = frame;
    }

    /// Called after every input once all outputs are drained: read the core's state.
    fn on_state(&mut self, core: &ClientCore) {
        let _ = core;
    }
}

/// Messages an [`Observer`] wants sent in answer to an event.
#[derive(Debug, Default)]
pub struct FollowUp {
    sends: Vec<Outgoing>,
}

impl FollowUp {
    /// Sends `message` (refusals are ignored: use it for best-effort answers such as acks).
    pub fn send(&mut self, message: Outgoing) {
        self.sends.push(message);
    }
}

/// Why a [`Handle`] request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The driver task has stopped (its runtime shut down, or it panicked).
    #[error("the client's driver task has stopped")]
    Stopped,
    /// The core refused the message.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The request broke a protocol rule (e.g. a malformed channel name).
    #[error(transparent)]
    Invalid(#[from] ProtocolError),
}

/// Why an acknowledged send did not end acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckWaitError {
    /// The core reported the failure (timeout, refusal, level-0 server, connection lost).
    #[error(transparent)]
    Failed(#[from] AckError),
    /// The message was removed from the offline queue by `clear_queue`.
    #[error("the message was removed from the queue before it was sent")]
    Cleared,
    /// The driver task has stopped.
    #[error("the client's driver task has stopped")]
    Stopped,
}

/// The outcome of a send: the message's id and, for `ack: true` sends, its acknowledgement.
#[derive(Debug)]
#[must_use]
pub struct Sent {
    /// The `messageId` the message carries.
    pub id: MessageId,
    ack: Option<oneshot::Receiver<Result<(), AckWaitError>>>,
}

impl Sent {
    /// Resolves when the server acknowledged the message (at once for sends without `ack`).
    pub async fn acked(self) -> Result<MessageId, AckWaitError> {
        match self.ack {
            None => Ok(self.id),
            Some(ack) => match ack.await {
                Ok(Ok(())) => Ok(self.id),
                Ok(Err(err)) => Err(err),
                Err(_) => Err(AckWaitError::Stopped),
            },
        }
    }
}

enum Intent {
    Connect,
    Disconnect(oneshot::Sender<()>),
    Reconnect,
    NetworkChanged,
    SetToken(Option<String>),
    Send {
        message: Outgoing,
        reply: oneshot::Sender<Result<MessageId, SendError>>,
        ack: Option<oneshot::Sender<Result<(), AckWaitError>>>,
    },
    Subscribe {
        channel: String,
        reply: oneshot::Sender<Result<(), ProtocolError>>,
    },
    Unsubscribe(String),
    ClearQueue(oneshot::Sender<usize>),
}

/// The user's side of a driver: cheap to clone, `Send + Sync`. When the last clone is dropped,
/// the driver closes the connection cleanly and stops.
#[derive(Debug, Clone)]
pub struct Handle {
    intents: mpsc::UnboundedSender<Intent>,
}

impl std::fmt::Debug for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Intent")
    }
}

impl Handle {
    fn push(&self, intent: Intent) -> Result<(), HandleError> {
        self.intents.send(intent).map_err(|_| HandleError::Stopped)
    }

    /// Starts connecting (see [`ClientCore::connect`]).
    pub fn connect(&self) -> Result<(), HandleError> {
        self.push(Intent::Connect)
    }

    /// Closes at once and reconnects, resetting the attempt count.
    pub fn reconnect(&self) -> Result<(), HandleError> {
        self.push(Intent::Reconnect)
    }

    /// Probes the connection now (after a network change).
    pub fn network_changed(&self) -> Result<(), HandleError> {
        self.push(Intent::NetworkChanged)
    }

    /// Replaces the token used from the next connection attempt on.
    pub fn set_token(&self, token: Option<String>) -> Result<(), HandleError> {
        self.push(Intent::SetToken(token))
    }

    /// Closes the connection with code 1000 and stays disconnected; resolves once the close
    /// handshake is over (or timed out).
    pub async fn disconnect(&self) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.push(Intent::Disconnect(tx))?;
        rx.await.map_err(|_| HandleError::Stopped)
    }

    /// Sends (or queues) a message; for `ack: true` messages, [`Sent::acked`] waits for the ack.
    pub async fn send(&self, message: Outgoing) -> Result<Sent, HandleError> {
        let (reply, id) = oneshot::channel();
        let (ack_tx, ack_rx) = if message.is_ack() {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.push(Intent::Send {
            message,
            reply,
            ack: ack_tx,
        })?;
        let id = id.await.map_err(|_| HandleError::Stopped)??;
        Ok(Sent { id, ack: ack_rx })
    }

    /// Subscribes to a channel (re-subscribed with resume after every reconnect).
    pub async fn subscribe(&self, channel: impl Into<String>) -> Result<(), HandleError> {
        let (reply, done) = oneshot::channel();
        self.push(Intent::Subscribe {
            channel: channel.into(),
            reply,
        })?;
        Ok(done.await.map_err(|_| HandleError::Stopped)??)
    }

    /// Unsubscribes from a channel.
    pub fn unsubscribe(&self, channel: impl Into<String>) -> Result<(), HandleError> {
        self.push(Intent::Unsubscribe(channel.into()))
    }

    /// Empties the offline queue; resolves to how many messages were removed.
    pub async fn clear_queue(&self) -> Result<usize, HandleError> {
        let (reply, count) = oneshot::channel();
        self.push(Intent::ClearQueue(reply))?;
        count.await.map_err(|_| HandleError::Stopped)
    }

    /// Whether the driver task is gone.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.intents.is_closed()
    }
}

/// Runs a [`ClientCore`] over a [`Transport`] on tokio, reporting to an [`Observer`].
///
/// The loop waits for the earliest of {the transport's next report, the core's
/// `poll_timeout`, a user intent from a [`Handle`]}, feeds it to the core with the current
/// instant, then drains `poll_command` (executing `Open`/`Transmit`/`Close` on the transport)
/// and `poll_event` (handing events to the observer). Timers come only from the core.
///
/// ```no_run
/// # #[cfg(feature = "websocket")]
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use cerebrum_core::{Config, Event, Outgoing};
/// use cerebrum_tokio::{Driver, FollowUp, Observer, WsOptions, WsTransport};
///
/// struct Print;
/// impl Observer for Print {
///     fn on_event(&mut self, event: Event, _: &mut FollowUp) {
///         tracing::info!(?event);
///     }
/// }
///
/// let transport = WsTransport::new(WsOptions::default())?;
/// let (handle, _task) = Driver::start(Config::new("ws://localhost:8080/ws"), transport, Print)?;
/// handle.connect()?;
/// handle.send(Outgoing::value("quiz.answer", &2)?).await?;
/// handle.disconnect().await?;
/// # Ok(())
/// # }
/// ```
pub struct Driver<T, O> {
    core: ClientCore,
    transport: T,
    observer: O,
    token: Option<TokenProvider>,
    pending_token: Option<(TokenFuture, String)>,
    ack_waiters: HashMap<MessageId, oneshot::Sender<Result<(), AckWaitError>>>,
    disconnect_waiters: Vec<oneshot::Sender<()>>,
    auth_retry_used: bool,
    retry_auth: bool,
    debug: bool,
    /// Answers to the user, sent once the state they depend on is published.
    deferred: Vec<Box<dyn FnOnce() + Send>>,
}

impl<T: Transport, O: Observer> Driver<T, O> {
    /// A driver for an existing core.
    pub fn new(core: ClientCore, transport: T, observer: O) -> Self {
        let debug = core.config().debug;
        Self {
            core,
            transport,
            observer,
            token: None,
            pending_token: None,
            ack_waiters: HashMap::new(),
            disconnect_waiters: Vec::new(),
            auth_retry_used: false,
            retry_auth: false,
            debug,
            deferred: Vec::new(),
        }
    }

    /// Builds the core from `config` (now, on tokio's clock and the system's wall clock),
    /// spawns the driver task and returns its handle. Must be called inside a tokio runtime.
    pub fn start(
        config: Config,
        transport: T,
        observer: O,
    ) -> Result<(Handle, JoinHandle<()>), ConfigError> {
        let core = ClientCore::new(config, now(), unix_ms())?;
        Ok(Self::new(core, transport, observer).spawn())
    }

    /// Asks `provider` for a fresh token before every connection attempt, and once more after
    /// a close 4001 before giving up.
    #[must_use]
    pub fn with_token_provider(mut self, provider: TokenProvider) -> Self {
        self.token = Some(provider);
        self
    }

    /// Spawns the driver task on the current tokio runtime.
    pub fn spawn(self) -> (Handle, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(self.run(rx));
        (Handle { intents: tx }, task)
    }

    async fn run(mut self, mut intents: mpsc::UnboundedReceiver<Intent>) {
        self.observer.on_state(&self.core);
        loop {
            let deadline = self.core.poll_timeout();
            let sleep_until = deadline.map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(86_400),
                tokio::time::Instant::from_std,
            );
            let token_pending = self.pending_token.is_some();
            // Biased, so that inputs due at the same instant are fed in a fixed order (the
            // same seed then gives the same run): the transport, the token, the timer, then
            // the user.
            tokio::select! {
                biased;
                event = self.transport.next() => self.on_transport(event),
                token = PendingToken(&mut self.pending_token), if token_pending => {
                    self.on_token(token);
                }
                () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                    self.core.handle_timeout(now());
                }
                intent = intents.recv() => match intent {
                    Some(intent) => self.on_intent(intent),
                    None => break,
                },
            }
            self.drain();
        }
        // Every handle is gone: close cleanly, then stop.
        let (tx, rx) = oneshot::channel();
        self.disconnect_waiters.push(tx);
        self.core.disconnect(now());
        self.drain();
        let _ = tokio::time::timeout(FINAL_CLOSE_WAIT, rx).await;
    }

    fn on_intent(&mut self, intent: Intent) {
        let now = now();
        match intent {
            Intent::Connect => self.core.connect(now),
            Intent::Disconnect(done) => {
                self.disconnect_waiters.push(done);
                self.core.disconnect(now);
            }
            Intent::Reconnect => {
                self.auth_retry_used = false;
                self.core.reconnect(now);
            }
            Intent::NetworkChanged => self.core.network_changed(now),
            Intent::SetToken(token) => {
                self.auth_retry_used = false;
                self.core.set_token(token);
            }
            Intent::Send {
                message,
                reply,
                ack,
            } => {
                self.ack_waiters.retain(|_, waiter| !waiter.is_closed());
                let result = self.core.send(message, now);
                if let (Ok(id), Some(ack)) = (&result, ack) {
                    self.ack_waiters.insert(id.clone(), ack);
                }
                self.answer(reply, result);
            }
            Intent::Subscribe { channel, reply } => {
                let result = self.core.subscribe(&channel, now);
                self.answer(reply, result);
            }
            Intent::Unsubscribe(channel) => {
                let _ = self.core.unsubscribe(&channel, now);
            }
            Intent::ClearQueue(reply) => {
                let ids: Vec<MessageId> = self
                    .core
                    .queued()
                    .filter_map(|envelope| envelope.message_id().cloned())
                    .collect();
                let count = self.core.clear_queue();
                for id in ids {
                    if let Some(waiter) = self.ack_waiters.remove(&id) {
                        self.answer(waiter, Err(AckWaitError::Cleared));
                    }
                }
                self.answer(reply, count);
            }
        }
    }

    fn on_transport(&mut self, event: TransportEvent) {
        if let TransportEvent::Frame(frame) = &event {
            self.observer.on_frame(frame);
        }
        if self.debug {
            match &event {
                TransportEvent::Frame(frame) => tracing::debug!(frame = %frame, "received"),
                other => tracing::debug!(event = ?other, "transport"),
            }
        }
        self.core.handle_transport(event, now());
    }

    fn on_token(&mut self, token: Result<String, String>) {
        let Some((_, url)) = self.pending_token.take() else {
            return;
        };
        match token {
            Ok(token) if !token.is_empty() => {
                self.core.set_token(Some(token.clone()));
                let transport = self.core.config().token_transport;
                let (url, bearer) = match transport {
                    TokenTransport::Query => (with_query_token(&url, &token), None),
                    TokenTransport::Header => (without_query_token(&url), Some(token)),
                    _ => (without_query_token(&url), None),
                };
                self.transport
                    .open(OpenRequest::new(url).with_bearer(bearer));
            }
            Ok(_) => self.core.handle_transport(
                TransportEvent::Error("the token provider returned an empty token".to_owned()),
                now(),
            ),
            Err(err) => self.core.handle_transport(
                TransportEvent::Error(format!("the token provider failed: {err}")),
                now(),
            ),
        }
    }

    /// Drains every command and event, feeding follow-ups until nothing is left.
    fn drain(&mut self) {
        loop {
            while let Some(command) = self.core.poll_command() {
                self.execute(command);
            }
            let mut follow_up = FollowUp::default();
            while let Some(event) = self.core.poll_event() {
                self.on_event(event, &mut follow_up);
            }
            let now = now();
            let mut fed = false;
            if std::mem::take(&mut self.retry_auth) {
                if self.debug {
                    tracing::debug!("close 4001: asking the token provider once more");
                }
                self.core.connect(now);
                fed = true;
            }
            for message in follow_up.sends {
                if let Err(err) = self.core.send(message, now)
                    && self.debug
                {
                    tracing::debug!(error = %err, "follow-up not sent");
                }
                fed = true;
            }
            if !fed {
                break;
            }
        }
        // A Close hands the waiters to its task; those still here found nothing to close.
        for waiter in self.disconnect_waiters.drain(..) {
            let _ = waiter.send(());
        }
        self.observer.on_state(&self.core);
        for answer in self.deferred.drain(..) {
            answer();
        }
    }

    /// Sends `value` on `reply` once the state is published (at the end of the drain).
    fn answer<V: Send + 'static>(&mut self, reply: oneshot::Sender<V>, value: V) {
        self.deferred.push(Box::new(move || {
            let _ = reply.send(value);
        }));
    }

    fn execute(&mut self, command: Command) {
        if self.debug {
            tracing::debug!(command = ?command, "command");
        }
        match command {
            Command::Open { url } => {
                self.pending_token = None;
                if let Some(provider) = &self.token {
                    self.pending_token = Some((provider.fetch(), url));
                } else {
                    let bearer = match self.core.config().token_transport {
                        TokenTransport::Header => self.core.token().map(str::to_owned),
                        _ => None,
                    };
                    self.transport
                        .open(OpenRequest::new(url).with_bearer(bearer));
                }
            }
            Command::Transmit(frame) => {
                if let Err(err) = self.transport.send(frame)
                    && self.debug
                {
                    tracing::debug!(error = %err, "frame not sent");
                }
            }
            Command::Close { code, reason } => {
                self.pending_token = None;
                let closing = self.transport.close(code, reason);
                let waiters = std::mem::take(&mut self.disconnect_waiters);
                if !waiters.is_empty() {
                    tokio::spawn(async move {
                        closing.await;
                        for waiter in waiters {
                            let _ = waiter.send(());
                        }
                    });
                }
            }
            other => {
                if self.debug {
                    tracing::debug!(command = ?other, "unknown command ignored");
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, follow_up: &mut FollowUp) {
        if self.debug {
            tracing::debug!(event = ?event, "event");
        }
        match &event {
            Event::Acked { message_id } => {
                if let Some(waiter) = self.ack_waiters.remove(message_id) {
                    self.answer(waiter, Ok(()));
                }
            }
            Event::SendFailed { message_id, error } => {
                if let Some(waiter) = self.ack_waiters.remove(message_id) {
                    self.answer(waiter, Err(AckWaitError::Failed(error.clone())));
                }
            }
            Event::Disconnected {
                code: Some(cerebrum_core::CLOSE_UNAUTHORIZED),
                ..
            } if self.token.is_some() && !self.auth_retry_used => {
                self.auth_retry_used = true;
                self.retry_auth = true;
            }
            Event::Welcome(_) | Event::Message(_) => self.auth_retry_used = false,
            _ => {}
        }
        self.observer.on_event(event, follow_up);
    }
}

/// Polls the pending token future, if any.
struct PendingToken<'a>(&'a mut Option<(TokenFuture, String)>);

impl Future for PendingToken<'_> {
    type Output = Result<String, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            Some((future, _)) => future.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}
