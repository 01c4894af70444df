//! The server's configuration, with the defaults of PROTOCOL.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{AuthError, JwtKey};

/// Files of a TLS certificate chain and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// Where the durable state lives ([`ServerConfig::database`]).
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Database {
    /// SQLite in [`ServerConfig::data_dir`] (the default).
    #[default]
    Sqlite,
    /// PostgreSQL, shared by several server nodes.
    Postgres {
        /// `postgres://user[:password]@host[:port]/dbname` (or `postgresql://…`).
        url: String,
        /// Connections of the pool (at least 1).
        pool_size: usize,
    },
}

impl Database {
    /// PostgreSQL at `url` with the default pool size
    /// ([`DEFAULT_POOL_SIZE`]).
    ///
    /// ```
    /// use cerebrum_server_core::Database;
    /// let db = Database::postgres("postgres://cerebrum:secret@db:5432/cerebrum");
    /// assert_eq!(format!("{db:?}"), "Postgres { url: \"postgres://cerebrum:***@db:5432/cerebrum\", pool_size: 4 }");
    /// ```
    #[must_use]
    pub fn postgres(url: impl Into<String>) -> Self {
        Self::Postgres {
            url: url.into(),
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite => f.write_str("Sqlite"),
            Self::Postgres { url, pool_size } => f
                .debug_struct("Postgres")
                .field("url", &redact_password(url))
                .field("pool_size", pool_size)
                .finish(),
        }
    }
}

/// Connections of a PostgreSQL pool by default.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// `url` with the password of its `user:password@` part and of a `password=` query parameter
/// replaced by `***`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***",
                    _ => pair,
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Everything `cerebrum_server::Server::bind` needs. Start from [`ServerConfig::default`] and change
/// fields.
///
/// ```
/// use cerebrum_server_core::ServerConfig;
///
/// let mut config = ServerConfig::default();
/// config.addr = "127.0.0.1:0".parse()?;
/// config.data_dir = std::env::temp_dir().join("cerebrum-doc");
/// assert_eq!(config.rate_limit_per_sec, 20.0);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub addr: SocketAddr,
    /// Directory of the SQLite database (`./cerebrum-data`).
    pub data_dir: PathBuf,
    /// The store: SQLite in `data_dir` (default) or PostgreSQL.
    pub database: Database,
    /// JWT key: auth is on when set.
    pub jwt: Option<JwtKey>,
    /// Bearer token of the admin API; the admin API is off when unset.
    pub admin_token: Option<String>,
    /// Allowed `Origin` values; empty allows every origin.
    pub allowed_origins: Vec<String>,
    /// Serve `wss://` with these files.
    pub tls: Option<TlsFiles>,
    /// Messages per second per connection (token bucket); 0 turns the limit off.
    pub rate_limit_per_sec: f64,
    /// Bucket size.
    pub rate_burst: u32,
    /// `rate_limited` answers within [`ServerConfig::abuse_window`] that close the connection.
    pub abuse_limit: usize,
    /// Window of [`ServerConfig::abuse_limit`].
    pub abuse_window: Duration,
    /// Global connection cap (HTTP 503 at the upgrade past it).
    pub max_connections: usize,
    /// Connections per authenticated user (close 4029 for the newest past it).
    pub max_connections_per_user: usize,
    /// Heartbeat interval announced in `welcome`; silence for twice this closes 1001.
    pub heartbeat_interval: Duration,
    /// Time an `auth` frame may take after the upgrade when auth is on.
    pub auth_timeout: Duration,
    /// Presence grace period after a connection loss.
    pub presence_grace: Duration,
    /// How many notifications are kept per user, and how long ([`crate::record::Retention`]:
    /// the newest 500, at most 30 days).
    pub notification_retention: crate::record::Retention,
    /// Pending notifications sent to a connection at once; the next page follows once all of
    /// the current one was acknowledged, on any connection of the user (50; never more than
    /// half the outbound queue).
    pub pending_page_size: usize,
    /// How long a connection waits on a full page of pending notifications before it reads the
    /// store again, to learn of acks made on another node (30 s); the wait doubles after each
    /// read that found none, up to 16 times this.
    pub pending_recheck: Duration,
    /// Publications kept per channel.
    pub history_size: usize,
    /// How long publications are kept.
    pub history_ttl: Duration,
    /// Redis URL: several server processes share channels, presence and counts through it
    /// (`cerebrum_server::redis_broker`); `None` keeps everything in this process.
    pub redis_url: Option<String>,
    /// With Redis: how long a member stays present unless its node refreshes it (a node
    /// killed without leaving loses its members after this).
    pub presence_ttl: Duration,
    /// With Redis: how often a node refreshes its members and connection counts.
    pub presence_refresh: Duration,
    /// Outbound queue per connection, in frames (slow consumer past it: close 4008).
    pub outbound_queue: usize,
    /// The kernel's send buffer of each accepted socket, in bytes (`SO_SNDBUF`,
    /// `--send-buffer`); `None`, the default, leaves it to the kernel, which grows it with the
    /// connection's throughput (to 4 MB on Linux by default). A cap keeps a slow reader's
    /// backlog in its outbound queue, where it conflates, instead of in the kernel; it also
    /// bounds each connection's throughput to about the buffer per round trip. Linux doubles
    /// the value for its bookkeeping and clamps it to `net.core.wmem_max`.
    pub send_buffer: Option<usize>,
    /// Queued frames from which a newer keyed frame replaces the queued one with its key
    /// (a user's `study_metrics_update`, the `system_status`, and the publications of the
    /// [`ServerConfig::conflate`] namespaces): 256; at or past `outbound_queue` only a full
    /// queue conflates (`--conflate-threshold`). A connection whose socket takes no more
    /// conflates at any length until it catches up. See [`crate::conflate`].
    pub conflate_threshold: usize,
    /// App namespaces whose publications conflate, keyed by a payload field
    /// (`--conflate NAMESPACE=FIELD`, repeatable).
    pub conflate: Vec<crate::conflate::ConflateRule>,
    /// Daily study goal, in hours.
    pub daily_goal_hours: f64,
    /// How long message ids are remembered for dedupe.
    pub dedupe_window: Duration,
    /// Ids remembered per user at least, whatever their age.
    pub dedupe_min_entries: usize,
    /// Period of the unconditional `system_status` broadcast.
    pub status_interval: Duration,
    /// Period of the health checks (a change is broadcast at once).
    pub status_check_interval: Duration,
    /// How long shutdown waits for connections to close.
    pub drain_timeout: Duration,
    /// WebSocket read buffer per connection, in bytes.
    pub read_buffer_size: usize,
    /// Largest accepted frame and message, in bytes (close 1009 past it).
    pub max_frame_bytes: usize,
    /// Channels one connection may be subscribed to at once (`system` and the user's own
    /// channel not counted); the next `subscribe` gets `limit_exceeded`.
    pub max_channels_per_connection: usize,
    /// Study sessions (presence) one user may be in at once on this node; the next
    /// `study_session_start` gets `limit_exceeded`.
    pub max_study_sessions_per_user: usize,
    /// Inbound bytes per second per connection (token bucket); past it `rate_limited`, which
    /// counts toward the 1008 rule. 0 turns the limit off.
    pub inbound_bytes_per_sec: f64,
    /// Bucket size of [`ServerConfig::inbound_bytes_per_sec`], in bytes.
    pub inbound_bytes_burst: u32,
    /// Channel history this node keeps, all channels together, in bytes; past it the oldest
    /// channels' history is dropped first (their resumes answer `recovered:false`).
    pub history_budget_bytes: usize,
    /// Time an HTTP request head may take to arrive (before the upgrade or an API call).
    pub head_timeout: Duration,
    /// TLS handshakes in progress at once; more accepted sockets wait for a slot.
    pub max_tls_handshakes: usize,
    /// With auth on: the `aud` a token must name (`--jwt-audience`); unchecked when unset.
    pub jwt_audience: Option<String>,
    /// With auth on: the `iss` a token must name (`--jwt-issuer`); unchecked when unset.
    pub jwt_issuer: Option<String>,
    /// Allow auth off on an address that is not loopback (`--insecure`).
    pub insecure: bool,
    /// Bearer token that `GET /metrics` requires when set (`--metrics-token`).
    pub metrics_token: Option<String>,
    /// Lock shards of the channel hub (the driver sets a few per core; 16 by default).
    pub hub_shards: usize,
    /// permessage-deflate (RFC 7692) for clients that offer it (`--compression`; off by
    /// default). See [`Compression`].
    pub compression: Compression,
}

/// The server's permessage-deflate settings (`--compression*`).
///
/// The server compresses with no context takeover (each message on its own, so one
/// compressed form of a publication goes to every subscriber that negotiated the extension)
/// and asks clients to do the same (so no connection keeps an inflater's window).
///
/// ```
/// use cerebrum_server_core::Compression;
/// let compression = Compression::default();
/// assert!(!compression.enabled);
/// assert_eq!((compression.level, compression.window_bits, compression.threshold), (6, 15, 256));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Whether the server takes the extension when a client offers it.
    pub enabled: bool,
    /// zlib level, 1 (fastest) to 9 (smallest) (`--compression-level`; 6 by default: a
    /// publication is compressed once for all its subscribers, so size counts more than speed).
    pub level: u32,
    /// The LZ77 window the server compresses with, 9 to 15 bits (`--compression-window-bits`);
    /// an offer that limits the server below it is declined.
    pub window_bits: u8,
    /// Frames shorter than this many bytes go uncompressed (`--compression-threshold`).
    pub threshold: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Self {
            enabled: false,
            level: 6,
            window_bits: 15,
            threshold: 256,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./cerebrum-data"),
            database: Database::Sqlite,
            jwt: None,
            admin_token: None,
            allowed_origins: Vec::new(),
            tls: None,
            rate_limit_per_sec: 20.0,
            rate_burst: 40,
            abuse_limit: 5,
            abuse_window: Duration::from_secs(10),
            max_connections: 100_000,
            max_connections_per_user: 16,
            heartbeat_interval: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(10),
            presence_grace: Duration::from_secs(10),
            notification_retention: crate::record::Retention::default(),
            hub_shards: 16,
            compression: Compression::default(),
            pending_page_size: 50,
            pending_recheck: Duration::from_secs(30),
            history_size: 100,
            history_ttl: Duration::from_secs(300),
            redis_url: None,
            presence_ttl: Duration::from_secs(30),
            presence_refresh: Duration::from_secs(10),
            outbound_queue: 1024,
            send_buffer: None,
            conflate_threshold: 256,
            conflate: Vec::new(),
            daily_goal_hours: 2.0,
            dedupe_window: Duration::from_secs(600),
            dedupe_min_entries: 1024,
            status_interval: Duration::from_secs(30),
            status_check_interval: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(10),
            read_buffer_size: 256,
            max_frame_bytes: cerebrum_protocol::MAX_FRAME_BYTES,
            max_channels_per_connection: 128,
            max_study_sessions_per_user: 16,
            inbound_bytes_per_sec: 256.0 * 1024.0,
            inbound_bytes_burst: 1024 * 1024,
            history_budget_bytes: 256 * 1024 * 1024,
            head_timeout: Duration::from_secs(10),
            max_tls_handshakes: 256,
            jwt_audience: None,
            jwt_issuer: None,
            insecure: false,
            metrics_token: None,
        }
    }
}

/// The smallest [`ServerConfig::send_buffer`] accepted, in bytes (the kernel's own minimum is
/// about 4.6 kB once doubled).
pub const MIN_SEND_BUFFER: usize = 1024;
/// The largest [`ServerConfig::send_buffer`] accepted, in bytes (1 GiB: it fits the kernel's
/// `int` doubled).
pub const MAX_SEND_BUFFER: usize = 1 << 30;

/// A rule of the configuration that is broken ([`ServerConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Auth is off on an address other hosts can reach.
    #[error(
        "auth is off and {0} is not a loopback address: anyone who reaches it could act as any \
         user. Give --jwt-secret or --jwt-public-key, or --insecure to serve without auth anyway"
    )]
    InsecureAddress(SocketAddr),
    /// The HS256 secret is too short.
    #[error("{0}")]
    Auth(#[from] AuthError),
    /// A number out of its range.
    #[error("{setting} {reason}")]
    OutOfRange {
        /// The setting, as its flag or file key.
        setting: &'static str,
        /// What the value must be.
        reason: &'static str,
    },
}

impl ServerConfig {
    /// The page size of pending notifications in use: `pending_page_size`, at most half the
    /// outbound queue (at least 1).
    #[must_use]
    pub fn pending_page(&self) -> usize {
        self.pending_page_size.min(self.outbound_queue / 2).max(1)
    }

    /// Checks the rules no type expresses: an HS256 secret of at least 32 bytes, no auth-off
    /// server on a non-loopback address unless [`ServerConfig::insecure`], numbers in range.
    /// `cerebrum_server::Server::bind` calls it.
    ///
    /// ```
    /// use cerebrum_server_core::{auth::JwtKey, ServerConfig};
    ///
    /// let mut config = ServerConfig::default();
    /// assert!(config.validate().is_ok());
    /// config.addr = "0.0.0.0:8080".parse()?;
    /// assert!(config.validate().unwrap_err().to_string().contains("--insecure"));
    /// config.insecure = true;
    /// assert!(config.validate().is_ok());
    /// config.jwt = Some(JwtKey::hs256("short"));
    /// assert!(config.validate().unwrap_err().to_string().contains("32 bytes"));
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(JwtKey::Hs256(secret)) = &self.jwt
            && secret.len() < crate::auth::MIN_HS256_SECRET_BYTES
        {
            return Err(AuthError::WeakSecret(secret.len()).into());
        }
        if self.jwt.is_none() && !self.addr.ip().is_loopback() && !self.insecure {
            return Err(ConfigError::InsecureAddress(self.addr));
        }
        let range = |ok: bool, setting, reason| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange { setting, reason })
            }
        };
        range(
            self.rate_limit_per_sec.is_finite() && self.rate_limit_per_sec >= 0.0,
            "rate-limit",
            "must be a number ≥ 0",
        )?;
        range(
            self.inbound_bytes_per_sec.is_finite() && self.inbound_bytes_per_sec >= 0.0,
            "inbound-bytes-per-sec",
            "must be a number ≥ 0",
        )?;
        range(
            self.daily_goal_hours.is_finite() && self.daily_goal_hours > 0.0,
            "daily-goal-hours",
            "must be a number > 0",
        )?;
        range(self.outbound_queue >= 1, "outbound-queue", "must be ≥ 1")?;
        range(
            (1..=9).contains(&self.compression.level),
            "compression-level",
            "must be 1 to 9",
        )?;
        range(
            (9..=15).contains(&self.compression.window_bits),
            "compression-window-bits",
            "must be 9 to 15",
        )?;
        range(
            self.send_buffer
                .is_none_or(|bytes| (MIN_SEND_BUFFER..=MAX_SEND_BUFFER).contains(&bytes)),
            "send-buffer",
            "must be 1024 to 1073741824 bytes",
        )?;
        range(
            self.conflate_threshold >= 1,
            "conflate-threshold",
            "must be ≥ 1",
        )?;
        range(
            self.pending_page_size >= 1,
            "pending-page-size",
            "must be ≥ 1",
        )?;
        range(
            self.pending_recheck >= Duration::from_millis(100),
            "pending-recheck",
            "must be ≥ 100 ms",
        )?;
        range(
            self.max_channels_per_connection >= 1,
            "max-channels-per-connection",
            "must be ≥ 1",
        )?;
        range(
            self.max_study_sessions_per_user >= 1,
            "max-study-sessions-per-user",
            "must be ≥ 1",
        )?;
        range(
            !self.head_timeout.is_zero(),
            "head-timeout-secs",
            "must be > 0",
        )?;
        range(
            self.max_tls_handshakes >= 1,
            "max-tls-handshakes",
            "must be ≥ 1",
        )?;
        Ok(())
    }

    /// The defaults, listening on `addr` with the database in `data_dir`.
    ///
    /// ```
    /// use cerebrum_server_core::ServerConfig;
    /// let config = ServerConfig::new("127.0.0.1:0".parse()?, "/tmp/cerebrum-demo")
    ///     .with_admin_token("admin")
    ///     .with_rate_limit(0.0, 40);
    /// assert_eq!(config.admin_token.as_deref(), Some("admin"));
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    #[must_use]
    pub fn new(addr: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            addr,
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// Turns auth on with `key`.
    #[must_use]
    pub fn with_jwt(mut self, key: JwtKey) -> Self {
        self.jwt = Some(key);
        self
    }

    /// Turns the admin API on with `token`.
    #[must_use]
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Sets the per-connection rate limit (0 turns it off) and its burst.
    #[must_use]
    pub fn with_rate_limit(mut self, per_sec: f64, burst: u32) -> Self {
        self.rate_limit_per_sec = per_sec;
        self.rate_burst = burst;
        self
    }

    /// Serves `wss://` with these PEM files.
    #[must_use]
    pub fn with_tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never appear: only whether they are set.
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
            .field("auth", &self.jwt.as_ref().map(JwtKey::algorithm_name))
            .field("admin_api", &self.admin_token.is_some())
            .field("allowed_origins", &self.allowed_origins)
            .field("tls", &self.tls)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("rate_burst", &self.rate_burst)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_user", &self.max_connections_per_user)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("presence_grace", &self.presence_grace)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_buffer_is_the_kernels_unless_capped_within_range() {
        assert_eq!(ServerConfig::default().send_buffer, None);
        for bytes in [MIN_SEND_BUFFER, 16 * 1024, MAX_SEND_BUFFER] {
            let config = ServerConfig {
                send_buffer: Some(bytes),
                ..ServerConfig::default()
            };
            assert_eq!(config.validate(), Ok(()), "{bytes}");
        }
        for bytes in [0, MIN_SEND_BUFFER - 1, MAX_SEND_BUFFER + 1] {
            let config = ServerConfig {
                send_buffer: Some(bytes),
                ..ServerConfig::default()
            };
            assert!(
                matches!(
                    config.validate(),
                    Err(ConfigError::OutOfRange {
                        setting: "send-buffer",
                        ..
                    })
                ),
                "{bytes}"
            );
        }
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        assert_eq!(
            redact_password("postgres://u:p@ss@h:1/d?x=y"),
            "postgres://u:***@h:1/d?x=y"
        );
        assert_eq!(redact_password("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact_password("postgresql://h"), "postgresql://h");
        assert_eq!(redact_password("not a url"), "not a url");
        assert_eq!(
            redact_password("postgres://u@h/d?sslmode=disable&password=pw&x=1"),
            "postgres://u@h/d?sslmode=disable&password=***&x=1"
        );
        let config = ServerConfig {
            database: Database::postgres("postgres://u:secret@h/d"),
            ..ServerConfig::default()
        };
        assert!(!format!("{config:?}").contains("secret"));
    }
}
