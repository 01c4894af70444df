//! [`ClientBuilder`]: the origin's options, and the core's additions.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cerebrum_core::{
    ClientCore, Config, OverflowPolicy, ReconnectAttempts, Status, TokenTransport,
};
use cerebrum_e2ee::{ChannelCrypto, KeyProvider};
use cerebrum_protocol::Envelope;
use cerebrum_tokio::{Driver, Handle, TokenProvider, Transport, now, unix_ms};
use tokio::sync::watch;

use crate::client::{ClientState, Inner};
use crate::dispatch::{Callbacks, Dispatcher};
use crate::store::{DEFAULT_NOTIFICATION_HISTORY, DashboardState};
use crate::subscription::Registry;
use crate::{BuildError, Client, ClientError};

/// Default capacity of each subscription's buffer.
pub const DEFAULT_SUBSCRIPTION_CAPACITY: usize = 1024;

/// Builds a [`Client`]. Defaults are the origin document's: reconnect on, 5 attempts, first
/// delay 3 s ×1.5, heartbeat 30 s, connection timeout 10 s, offline queue of 100 messages,
/// debug off, mock mode off.
///
/// ```
/// use std::time::Duration;
/// use cerebrum_realtime::Client;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cerebrum_realtime::BuildError> {
/// let client = Client::builder("wss://api.example.org/ws")
///     .reconnect(true)
///     .reconnect_attempts(5)
///     .reconnect_interval(Duration::from_millis(3000))
///     .heartbeat(Duration::from_secs(30))
///     .connection_timeout(Duration::from_secs(10))
///     .enable_queue(true)
///     .enable_mock_mode(true)
///     .debug(false)
///     .on_disconnect(|reason| tracing::info!(%reason, "disconnected"))
///     .build()?;
/// assert!(!client.is_connected());
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct ClientBuilder {
    config: Config,
    seed: Option<u64>,
    mock: bool,
    #[cfg(feature = "mock")]
    mock_config: cerebrum_mock::MockConfig,
    headers: Vec<(String, String)>,
    extra_ca_pems: Vec<Vec<u8>>,
    subprotocol: Option<Option<String>>,
    compression: bool,
    encoding: cerebrum_protocol::Encoding,
    token_provider: Option<TokenProvider>,
    callbacks: Callbacks,
    notification_history: usize,
    subscription_capacity: usize,
    auto_ack_notifications: bool,
    crypto: Option<ChannelCrypto>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("mock", &self.mock)
            .field("channel_keys", &self.crypto.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            config: Config::new(url),
            seed: None,
            mock: false,
            #[cfg(feature = "mock")]
            mock_config: cerebrum_mock::MockConfig::default(),
            headers: Vec::new(),
            extra_ca_pems: Vec::new(),
            subprotocol: None,
            compression: false,
            encoding: cerebrum_protocol::Encoding::Json,
            token_provider: None,
            callbacks: Callbacks::default(),
            notification_history: DEFAULT_NOTIFICATION_HISTORY,
            subscription_capacity: DEFAULT_SUBSCRIPTION_CAPACITY,
            auto_ack_notifications: true,
            crypto: None,
        }
    }

    // ----- the origin's options ------------------------------------------------------------

    /// Reconnect after a lost connection (default `true`).
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.config.reconnect = reconnect;
        self
    }

    /// At most this many reconnect attempts before the status becomes `error` (default 5).
    pub fn reconnect_attempts(mut self, attempts: u32) -> Self {
        self.config.reconnect_attempts = ReconnectAttempts::Limited(attempts);
        self
    }

    /// Never give up reconnecting.
    pub fn unlimited_reconnect_attempts(mut self) -> Self {
        self.config.reconnect_attempts = ReconnectAttempts::Unlimited;
        self
    }

    /// The first reconnect delay (default 3 000 ms); each next one is ×1.5.
    pub fn reconnect_interval(mut self, interval: Duration) -> Self {
        self.config.reconnect_interval = interval;
        self
    }

    /// The heartbeat (ping) interval (default 30 000 ms; the origin's `heartbeatInterval`).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }

    /// How long a connection attempt may take (default 10 000 ms).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection_timeout = timeout;
        self
    }

    /// Queue messages sent while offline (default `true`).
    pub fn enable_queue(mut self, enable: bool) -> Self {
        self.config.enable_queue = enable;
        self
    }

    /// Run against a simulated, seeded server instead of `url` (default `false`; needs the
    /// `mock` feature, on by default).
    pub fn enable_mock_mode(mut self, enable: bool) -> Self {
        self.mock = enable;
        self
    }

    /// Emit `tracing` events about status changes, frames, commands and errors (default
    /// `false`). Tokens are never logged.
    pub fn debug(mut self, debug: bool) -> Self {
        self.config.debug = debug;
        self
    }

    /// Called when a connection opens.
    pub fn on_connect(mut self, callback: impl Fn() + Send + Sync + 'static) -> Self {
        self.callbacks.on_connect = Some(Arc::new(callback));
        self
    }

    /// Called when a connection is lost or closed, with the reason.
    pub fn on_disconnect(mut self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.callbacks.on_disconnect = Some(Arc::new(callback));
        self
    }

    /// Called on every error reported while running.
    pub fn on_error(mut self, callback: impl Fn(&ClientError) + Send + Sync + 'static) -> Self {
        self.callbacks.on_error = Some(Arc::new(callback));
        self
    }

    /// Called on every app message.
    pub fn on_message(mut self, callback: impl Fn(&Envelope) + Send + Sync + 'static) -> Self {
        self.callbacks.on_message = Some(Arc::new(callback));
        self
    }

    // ----- the core's additions ------------------------------------------------------------

    /// The fleet preset: unlimited attempts and full jitter under a 30 s cap, so that many
    /// clients cut off together do not come back together.
    pub fn fleet(mut self) -> Self {
        let fleet = Config::fleet(self.config.url.clone());
        self.config.reconnect_attempts = fleet.reconnect_attempts;
        self.config.jitter = fleet.jitter;
        self.config.max_reconnect_delay = fleet.max_reconnect_delay;
        self
    }

    /// Each reconnect delay is the previous one times `factor` (default 1.5).
    pub fn reconnect_factor(mut self, factor: f64) -> Self {
        self.config.reconnect_factor = factor;
        self
    }

    /// The largest reconnect delay before jitter (default 30 s).
    pub fn max_reconnect_delay(mut self, cap: Duration) -> Self {
        self.config.max_reconnect_delay = cap;
        self
    }

    /// The random share of each delay, `0.0..=1.0` (default 0: the exact schedule).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.config.jitter = jitter;
        self
    }

    /// How long past a heartbeat interval without any inbound frame means a dead connection
    /// (default 10 s).
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.config.heartbeat_timeout = timeout;
        self
    }

    /// Most messages in the offline queue (default 100).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.queue_capacity = capacity;
        self
    }

    /// What a send into a full queue does (default: refuse the new message).
    pub fn overflow_policy(mut self, policy: OverflowPolicy) -> Self {
        self.config.overflow_policy = policy;
        self
    }

    /// How long an acknowledged send waits for its ack once transmitted (default 10 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.config.ack_timeout = timeout;
        self
    }

    /// How long to wait for a v1 server's `welcome` before working in level-0 mode
    /// (default 2 s).
    pub fn welcome_timeout(mut self, timeout: Duration) -> Self {
        self.config.welcome_timeout = timeout;
        self
    }

    /// A static auth token (a JWT).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.token = Some(cerebrum_core::AuthToken::new(token));
        self
    }

    /// How the token reaches the server: `?token=` in the URL (default), an `auth` message,
    /// or an `Authorization: Bearer` header.
    pub fn token_transport(mut self, transport: TokenTransport) -> Self {
        self.config.token_transport = transport;
        self
    }

    /// An async token provider, called before every connection attempt (so tokens refresh)
    /// and once more after a close 4001 before the client gives up.
    pub fn token_provider<F, Fut, E>(mut self, fetch: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.token_provider = Some(TokenProvider::new(fetch));
        self
    }

    /// An extra request header for the WebSocket handshake (values are never logged).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Trust the certificates of `pem` (PEM text) besides the webpki roots: the CA of a
    /// development server.
    pub fn extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_ca_pems.push(pem.into());
        self
    }

    /// The subprotocol offered in the handshake (default `cerebrum.v1.json`; `None` offers
    /// none).
    pub fn subprotocol(mut self, subprotocol: Option<String>) -> Self {
        self.subprotocol = Some(subprotocol);
        self
    }

    /// Offer permessage-deflate (RFC 7692) in the handshake (default off). With a server that
    /// takes it (`cerebrum serve --compression`), large frames travel compressed both ways;
    /// with one that does not, nothing changes.
    pub fn compression(mut self, compression: bool) -> Self {
        self.compression = compression;
        self
    }

    /// The encoding of frames on the wire (default [`Encoding::Json`](crate::Encoding)).
    /// [`Encoding::MessagePack`](crate::Encoding) offers the subprotocol `cerebrum.v1.msgpack`
    /// first: a server that selects it gets binary MessagePack frames both ways, smaller than
    /// the JSON text; one that does not gets JSON text as usual. Everything the app sees is
    /// the same either way ([`Client::frames`](crate::Client::frames) shows each frame's JSON
    /// text).
    ///
    /// ```
    /// use cerebrum_realtime::{Client, Encoding};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::builder("wss://api.example.org/ws")
    ///     .encoding(Encoding::MessagePack)
    ///     .build()?;
    /// # drop(client);
    /// # Ok(())
    /// # }
    /// ```
    pub fn encoding(mut self, encoding: cerebrum_protocol::Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Seed of the jitter RNG and message ids (default: random per client).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// End-to-end encrypted channels: `provider` gives, per channel, the current key and its
    /// id for sealing, and any key by id for opening ([`Keyring`](crate::Keyring) is a ready
    /// one with rotation). Publications to a channel that has a key are sealed with
    /// XChaCha20-Poly1305 before they are queued or sent; publications delivered from it are
    /// opened before any subscriber, callback or the store sees them, and one that does not
    /// open is reported as [`ClientError::Decrypt`] instead. Keys never appear in `Debug`
    /// output or logs. What stays sealed: the offline queue ([`Client::queued_messages`]) and
    /// the raw inbound frames of [`Client::frames`], which show what travels on the wire.
    ///
    /// ```
    /// use cerebrum_realtime::{ChannelKey, Client, KeyId, Keyring};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let keys = Keyring::new();
    /// keys.insert("chat:staff", KeyId::new("2026-12")?, ChannelKey::generate()?)?;
    /// let client = Client::builder("wss://api.example.org/ws")
    ///     .channel_keys(keys.clone())
    ///     .build()?;
    /// assert!(client.is_encrypted("chat:staff"));
    /// assert!(!client.is_encrypted("chat:lobby"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn channel_keys(mut self, provider: impl KeyProvider + 'static) -> Self {
        self.crypto = Some(ChannelCrypto::new(provider));
        self
    }

    /// The simulated server of mock mode (seed, data interval, latency, fault script).
    #[cfg(feature = "mock")]
    pub fn mock_config(mut self, config: cerebrum_mock::MockConfig) -> Self {
        self.mock_config = config;
        self
    }

    /// How many notifications the store keeps (default 50).
    pub fn notification_history(mut self, history: usize) -> Self {
        self.notification_history = history;
        self
    }

    /// Buffer of each subscription; a subscriber that falls further behind misses messages
    /// (default 1 024).
    pub fn subscription_capacity(mut self, capacity: usize) -> Self {
        self.subscription_capacity = capacity;
        self
    }

    /// Acknowledge every notification of a v1 server as soon as it arrives, so the server stops
    /// re-sending it on each connection (default `true`).
    pub fn auto_ack_notifications(mut self, enable: bool) -> Self {
        self.auto_ack_notifications = enable;
        self
    }

    // ----- building ------------------------------------------------------------------------

    /// Builds the client and spawns its task on the current tokio runtime (which needs its
    /// time driver, e.g. `#[tokio::main]` or `Builder::enable_all`); it stays `disconnected`
    /// until [`Client::connect`].
    pub fn build(mut self) -> Result<Client, BuildError> {
        tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        self.config.seed = self.seed.unwrap_or_else(random_seed);
        let core = ClientCore::new(self.config.clone(), now(), unix_ms())?;
        let registry = Arc::new(Mutex::new(Registry::new(self.subscription_capacity)));
        let (status_tx, status_rx) = watch::channel(Status::Disconnected);
        let (state_tx, state_rx) = watch::channel(ClientState::default());
        let (store_tx, store_rx) = watch::channel(DashboardState::with_notification_history(
            self.notification_history,
        ));
        let dispatcher = Dispatcher {
            status: status_tx,
            state: state_tx,
            store: store_tx,
            registry: Arc::clone(&registry),
            callbacks: self.callbacks.clone(),
            debug: self.config.debug,
            auto_ack_notifications: self.auto_ack_notifications,
            v1: false,
            crypto: self.crypto.clone(),
        };
        let handle = if self.mock {
            self.spawn_mock(core, dispatcher)?
        } else {
            self.spawn_websocket(core, dispatcher)?
        };
        Ok(Client {
            inner: Arc::new(Inner {
                handle,
                status: status_rx,
                state: state_rx,
                store: store_rx,
                registry,
                crypto: self.crypto.clone(),
            }),
        })
    }

    /// Builds the client and starts connecting.
    pub fn connect(self) -> Result<Client, BuildError> {
        let client = self.build()?;
        client.connect();
        Ok(client)
    }

    #[cfg_attr(not(any(feature = "tokio", feature = "mock")), allow(dead_code))]
    fn spawn<T: Transport>(
        &self,
        core: ClientCore,
        transport: T,
        dispatcher: Dispatcher,
    ) -> Handle {
        let mut driver = Driver::new(core, transport, dispatcher);
        if let Some(provider) = &self.token_provider {
            driver = driver.with_token_provider(provider.clone());
        }
        driver.spawn().0
    }

    #[cfg(feature = "mock")]
    fn spawn_mock(&self, core: ClientCore, dispatcher: Dispatcher) -> Result<Handle, BuildError> {
        let transport = cerebrum_mock::MockTransport::new(self.mock_config.clone());
        Ok(self.spawn(core, transport, dispatcher))
    }

    #[cfg(not(feature = "mock"))]
    fn spawn_mock(&self, _core: ClientCore, _dispatcher: Dispatcher) -> Result<Handle, BuildError> {
        Err(BuildError::MockUnavailable)
    }

    #[cfg(feature = "tokio")]
    fn spawn_websocket(
        &self,
        core: ClientCore,
        dispatcher: Dispatcher,
    ) -> Result<Handle, BuildError> {
        let transport_error =
            |err: cerebrum_tokio::WsConfigError| BuildError::Transport(err.to_string());
        let mut options = cerebrum_tokio::WsOptions::default().compression(self.compression);
        for (name, value) in &self.headers {
            options = options.header(name, value).map_err(transport_error)?;
        }
        for pem in &self.extra_ca_pems {
            options = options.extra_ca_pem(pem.clone());
        }
        if let Some(subprotocol) = &self.subprotocol {
            options = options.subprotocol(subprotocol.clone());
        }
        options = options.encoding(self.encoding);
        let transport = cerebrum_tokio::WsTransport::new(options).map_err(transport_error)?;
        Ok(self.spawn(core, transport, dispatcher))
    }

    #[cfg(not(feature = "tokio"))]
    fn spawn_websocket(
        &self,
        _core: ClientCore,
        _dispatcher: Dispatcher,
    ) -> Result<Handle, BuildError> {
        Err(BuildError::WebSocketUnavailable)
    }
}

/// A per-client random seed (from the standard library's hash keys), so a fleet's jitter
/// differs between clients.
fn random_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(unix_ms());
    hasher.finish()
}
