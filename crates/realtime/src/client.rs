//! [`Client`]: the handle apps hold.

use std::sync::Arc;
use std::time::Duration;

use cerebrum_core::{LatencyStats, Outgoing, ServerLevel, Status};
use cerebrum_e2ee::ChannelCrypto;
use cerebrum_protocol::{Envelope, MessageId, Payload, validate_channel};
use cerebrum_tokio::{Handle, Sent};
use serde::Serialize;
use tokio::sync::watch;

use crate::store::{DashboardState, Store};
use crate::subscription::{
    ErrorSubscription, Key, RawSubscription, SharedRegistry, Subscription, lock,
};
use crate::{AckError, ClientBuilder, SendError};

/// What the client knows about its connection, published after every input.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientState {
    /// The connection status.
    pub status: Status,
    /// Latency measured by the heartbeat.
    pub latency: LatencyStats,
    /// The messages in the offline queue, oldest first, as they will be sent.
    pub queued: Vec<Envelope>,
    /// `ack: true` messages transmitted and waiting for their ack.
    pub in_flight: usize,
    /// What is known of the server on the current connection.
    pub server_level: Option<ServerLevel>,
    /// Reconnect attempts since the count was last reset.
    pub attempts: u32,
    /// When the next reconnect attempt starts, while reconnecting (for a countdown).
    pub next_attempt: Option<std::time::Instant>,
}

pub(crate) struct Inner {
    pub(crate) handle: Handle,
    pub(crate) status: watch::Receiver<Status>,
    pub(crate) state: watch::Receiver<ClientState>,
    pub(crate) store: watch::Receiver<DashboardState>,
    pub(crate) registry: SharedRegistry,
    pub(crate) crypto: Option<ChannelCrypto>,
}

/// A real-time client: the origin's `WebSocketClient` / `useWebSocket`, in Rust.
///
/// Cheap to clone (`Arc` inside), `Send + Sync`. One tokio task per client runs the
/// connection; when the last clone (and the last channel subscription) is dropped, it closes the
/// connection cleanly and stops.
///
/// ```no_run
/// use cerebrum_realtime::{Client, StudyMetrics};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::builder("wss://api.example.org/ws")
///     .token("eyJhbGciOi…")
///     .on_connect(|| tracing::info!("connected"))
///     .build()?;
/// client.connect();
/// let mut metrics = client.on::<StudyMetrics>();
/// while let Some(m) = metrics.recv().await {
///     println!("{} h, {}% of today's goal, streak {}", m.study_hours, m.progress, m.streak);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("status", &self.status())
            .finish()
    }
}

impl Client {
    /// A builder for a client of the server at `url` (`ws://` or `wss://`), with the origin's
    /// defaults.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// Starts connecting (no effect when connected or already trying).
    pub fn connect(&self) {
        let _ = self.inner.handle.connect();
    }

    /// Closes any connection and connects again at once, resetting the attempt count (also
    /// after the `error` status).
    pub fn reconnect(&self) {
        let _ = self.inner.handle.reconnect();
    }

    /// Closes the connection (code 1000, clean close handshake) and stays disconnected until
    /// [`connect`](Self::connect) or [`reconnect`](Self::reconnect). Queued messages are kept.
    pub async fn disconnect(&self) {
        let _ = self.inner.handle.disconnect().await;
    }

    /// Probes the connection now, or retries now if waiting to reconnect (after a network
    /// change).
    pub fn network_changed(&self) {
        let _ = self.inner.handle.network_changed();
    }

    /// Replaces the auth token, used from the next connection attempt on (after a refusal,
    /// call this, then [`reconnect`](Self::reconnect)).
    pub fn set_token(&self, token: Option<String>) {
        let _ = self.inner.handle.set_token(token);
    }

    /// The current status.
    #[must_use]
    pub fn status(&self) -> Status {
        *self.inner.status.borrow()
    }

    /// A watch of the status: `changed().await`, then `borrow()`.
    #[must_use]
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.inner.status.clone()
    }

    /// Whether the status is `connected`.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.status().is_connected()
    }

    /// The latest round-trip latency measured by the heartbeat.
    #[must_use]
    pub fn latency(&self) -> Option<Duration> {
        self.inner.state.borrow().latency.last
    }

    /// The latency statistics (last, smoothed, minimum, sample count).
    #[must_use]
    pub fn latency_stats(&self) -> LatencyStats {
        self.inner.state.borrow().latency
    }

    /// A copy of the client's state.
    #[must_use]
    pub fn state(&self) -> ClientState {
        self.inner.state.borrow().clone()
    }

    /// A watch of the client's state.
    #[must_use]
    pub fn watch_state(&self) -> watch::Receiver<ClientState> {
        self.inner.state.clone()
    }

    /// The messages in the offline queue, oldest first (the origin's `getQueuedMessages`),
    /// exactly as they will be sent: publications to encrypted channels are already sealed.
    #[must_use]
    pub fn queued_messages(&self) -> Vec<Envelope> {
        self.inner.state.borrow().queued.clone()
    }

    /// Empties the offline queue; resolves to how many messages were removed.
    pub async fn clear_queue(&self) -> usize {
        self.inner.handle.clear_queue().await.unwrap_or(0)
    }

    /// Sends a message of `kind` with any serialisable payload (queued while offline);
    /// resolves to its `messageId` once the client accepted it.
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        kind: &str,
        payload: &T,
    ) -> Result<MessageId, SendError> {
        let message = Outgoing::value(kind, payload)?;
        Ok(self.send_outgoing(message).await?.id)
    }

    /// Sends a typed payload of the catalog (validated first).
    pub async fn send_payload<P: Payload>(&self, payload: &P) -> Result<MessageId, SendError> {
        let message = Outgoing::payload(payload)?;
        Ok(self.send_outgoing(message).await?.id)
    }

    /// Publishes a message to `channel` (PROTOCOL.md section 5).
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        kind: &str,
        payload: &T,
    ) -> Result<MessageId, SendError> {
        validate_channel(channel)?;
        let message = Outgoing::value(kind, payload)?.to_channel(channel);
        Ok(self.send_outgoing(message).await?.id)
    }

    /// Sends a message built with every option of [`Outgoing`] (channel, ack, volatile);
    /// [`Sent::acked`] waits for the ack of an `ack: true` message.
    ///
    /// Every send goes through here; a publication to an end-to-end encrypted channel
    /// ([`ClientBuilder::channel_keys`]) is sealed here, before the client takes it, so the
    /// offline queue holds it sealed and sends exactly what it holds.
    pub async fn send_outgoing(&self, message: Outgoing) -> Result<Sent, SendError> {
        let message = self.seal(message)?;
        Ok(self.inner.handle.send(message).await?)
    }

    /// Seals the payload of a publication to an encrypted channel with the channel's current
    /// key; anything else passes unchanged.
    fn seal(&self, message: Outgoing) -> Result<Outgoing, SendError> {
        let Some(crypto) = &self.inner.crypto else {
            return Ok(message);
        };
        let channel = match message.channel().or(message.envelope().channel()) {
            Some(channel) if crypto.is_encrypted(channel) => channel.to_owned(),
            _ => return Ok(message),
        };
        Ok(message.try_map_envelope(|envelope| crypto.seal(&channel, envelope))?)
    }

    /// Whether publications of `channel` are end-to-end encrypted by this client.
    #[must_use]
    pub fn is_encrypted(&self, channel: &str) -> bool {
        self.inner
            .crypto
            .as_ref()
            .is_some_and(|crypto| crypto.is_encrypted(channel))
    }

    /// Sends with `ack: true` and resolves once the server acknowledged it; errors on timeout,
    /// refusal, or a server without acks (level 0).
    pub async fn send_with_ack<T: Serialize + ?Sized>(
        &self,
        kind: &str,
        payload: &T,
    ) -> Result<MessageId, AckError> {
        let message = Outgoing::value(kind, payload)
            .map_err(SendError::from)?
            .with_ack(true);
        let sent = self.send_outgoing(message).await?;
        Ok(sent.acked().await?)
    }

    /// [`send_with_ack`](Self::send_with_ack) for a typed payload of the catalog.
    pub async fn send_payload_with_ack<P: Payload>(
        &self,
        payload: &P,
    ) -> Result<MessageId, AckError> {
        let message = Outgoing::payload(payload)
            .map_err(SendError::from)?
            .with_ack(true);
        let sent = self.send_outgoing(message).await?;
        Ok(sent.acked().await?)
    }

    /// A stream of the payloads of type `P` (the origin's `useWebSocketMessage<T>`). Dropping
    /// it unsubscribes. App messages only: the control frames the client handles itself
    /// (`welcome`, `pong`, `ack`, `error`, `subscribed`, `unsubscribed`) are seen through
    /// [`frames`](Self::frames).
    ///
    /// ```no_run
    /// # async fn demo(client: cerebrum_realtime::Client) {
    /// use cerebrum_realtime::Notification;
    /// let mut notifications = client.on::<Notification>();
    /// while let Some(n) = notifications.recv().await {
    ///     tracing::info!(title = %n.title);
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn on<P: Payload>(&self) -> Subscription<P> {
        Subscription::new(self.on_type(P::TYPE))
    }

    /// A stream of the raw envelopes of type `kind` (app-defined types included). Dropping it
    /// unsubscribes.
    #[must_use]
    pub fn on_type(&self, kind: &str) -> RawSubscription {
        RawSubscription::new(&self.inner.registry, Key::Type(kind.to_owned()), None)
    }

    /// A stream of every app message (every inbound envelope except the control frames
    /// `welcome`, `pong`, `ack`, `error`, `subscribed`, `unsubscribed`).
    #[must_use]
    pub fn messages(&self) -> RawSubscription {
        RawSubscription::new(&self.inner.registry, Key::Messages, None)
    }

    /// A stream of every inbound frame that decodes, control frames included (for tools such
    /// as `cerebrum connect`).
    #[must_use]
    pub fn frames(&self) -> RawSubscription {
        RawSubscription::new(&self.inner.registry, Key::Frames, None)
    }

    /// A stream of the errors the client reports while running.
    #[must_use]
    pub fn errors(&self) -> ErrorSubscription {
        ErrorSubscription::new(&self.inner.registry)
    }

    /// Subscribes to a channel and streams its publications. After a reconnect the client
    /// re-subscribes from the last offset it saw, so missed publications are replayed when the
    /// server still has them. Dropping the last stream of a channel unsubscribes from it.
    pub async fn subscribe_channel(&self, channel: &str) -> Result<RawSubscription, SendError> {
        validate_channel(channel)?;
        let handle = self.inner.handle.clone();
        let name = channel.to_owned();
        let on_last: Box<dyn FnOnce() + Send + Sync> = Box::new(move || {
            let _ = handle.unsubscribe(name);
        });
        let subscription = RawSubscription::new(
            &self.inner.registry,
            Key::Channel(channel.to_owned()),
            Some(on_last),
        );
        self.inner.handle.subscribe(channel).await?;
        Ok(subscription)
    }

    /// The dashboard state store this client feeds.
    #[must_use]
    pub fn store(&self) -> Store {
        Store::new(self.inner.store.clone())
    }

    /// How many subscriptions are registered (each dropped one is removed at once).
    #[must_use]
    pub fn subscriber_count(&self) -> usize {
        lock(&self.inner.registry).len()
    }
}
