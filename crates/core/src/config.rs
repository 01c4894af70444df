//! The client's options: the origin document's defaults, kept exactly, plus our additions.

use std::fmt;
use std::time::Duration;

/// How many reconnect attempts follow a lost connection before the client gives up.
///
/// ```
/// use cerebrum_core::ReconnectAttempts;
/// assert_eq!(ReconnectAttempts::default(), ReconnectAttempts::Limited(5));
/// assert!(ReconnectAttempts::Unlimited.allows(u32::MAX));
/// assert!(!ReconnectAttempts::Limited(5).allows(6));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReconnectAttempts {
    /// At most this many attempts (the origin's default is 5).
    Limited(u32),
    /// Never give up (the fleet preset).
    Unlimited,
}

impl ReconnectAttempts {
    /// Whether attempt number `attempt` (1-based) is allowed.
    #[must_use]
    pub fn allows(self, attempt: u32) -> bool {
        match self {
            Self::Limited(max) => attempt <= max,
            Self::Unlimited => true,
        }
    }
}

impl Default for ReconnectAttempts {
    fn default() -> Self {
        Self::Limited(5)
    }
}

/// What `send` does when the offline queue is full.
///
/// ```
/// use cerebrum_core::{Config, OverflowPolicy};
/// let mut config = Config::new("ws://localhost:8080/ws");
/// assert_eq!(config.overflow_policy, OverflowPolicy::RejectNew);
/// config.overflow_policy = OverflowPolicy::DropOldest; // telemetry: the newest matters most
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Refuse the new message with [`crate::SendError::QueueFull`]; nothing queued is dropped.
    #[default]
    RejectNew,
    /// Drop the oldest queued messages to make room, reporting each with
    /// [`crate::Event::QueueOverflow`].
    DropOldest,
}

/// How the auth token reaches the server (PROTOCOL.md section 6).
///
/// ```
/// use cerebrum_core::{Config, TokenTransport};
/// let mut config = Config::new("wss://api.example.org/ws").with_token("eyJ…");
/// assert_eq!(config.token_transport, TokenTransport::Query);
/// // Browsers and proxies that log URLs: send it as the first frame instead.
/// config.token_transport = TokenTransport::AuthMessage;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TokenTransport {
    /// Appended to the URL of every [`crate::Command::Open`] as `?token=…` (the default).
    #[default]
    Query,
    /// Sent as an `auth` frame, the first frame after the transport opens (keeps tokens out of
    /// URLs and server logs).
    AuthMessage,
    /// Not touched by the core: the adapter sends it itself (an `Authorization: Bearer` header),
    /// reading it from [`crate::ClientCore::token`].
    Header,
}

/// An auth token (a JWT). Its `Debug` output never shows the secret.
///
/// ```
/// use cerebrum_core::AuthToken;
/// let token = AuthToken::new("eyJhbGciOi.secret.sig");
/// assert_eq!(token.expose(), "eyJhbGciOi.secret.sig");
/// assert!(!format!("{token:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself (to put in a header or a frame).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Every option of the client core.
///
/// [`Config::new`] gives the origin document's defaults, [`Config::fleet`] the preset for large
/// fleets of clients (see the crate docs for the two side by side). Fields are public; the core
/// checks them with [`Config::validate`] when it is built.
///
/// ```
/// use std::time::Duration;
/// use cerebrum_core::{Config, ReconnectAttempts};
///
/// let config = Config::new("wss://api.example.org/ws");
/// assert!(config.reconnect);
/// assert_eq!(config.reconnect_attempts, ReconnectAttempts::Limited(5));
/// assert_eq!(config.reconnect_interval, Duration::from_millis(3000));
/// assert_eq!(config.reconnect_factor, 1.5);
/// assert_eq!(config.heartbeat_interval, Duration::from_millis(30_000));
/// assert_eq!(config.connection_timeout, Duration::from_millis(10_000));
/// assert!(config.enable_queue);
/// assert_eq!(config.queue_capacity, 100);
/// assert!(!config.debug);
/// config.validate()?;
/// # Ok::<(), cerebrum_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The server's WebSocket URL (`ws://` or `wss://`).
    pub url: String,
    /// Reconnect after a lost connection (origin: `true`).
    pub reconnect: bool,
    /// How many reconnect attempts before giving up (origin: 5).
    pub reconnect_attempts: ReconnectAttempts,
    /// The first reconnect delay (origin: 3 000 ms).
    pub reconnect_interval: Duration,
    /// Each further delay is the previous one times this factor (origin: 1.5).
    pub reconnect_factor: f64,
    /// The largest reconnect delay before jitter (default 30 s, above the origin's largest,
    /// 15.1875 s, so the origin's schedule is kept).
    pub max_reconnect_delay: Duration,
    /// How much of each delay is random: the delay is drawn from
    /// `[d·(1 − jitter), d]` (never below 100 ms unless `d` is). `0.0` (default) keeps the exact
    /// schedule; `1.0` is "full jitter".
    pub jitter: f64,
    /// How often a `ping` is sent while connected (origin: 30 000 ms).
    pub heartbeat_interval: Duration,
    /// How long past a heartbeat interval without any inbound frame the connection is declared
    /// dead (default 10 000 ms).
    pub heartbeat_timeout: Duration,
    /// How long an attempt may take to open before it is abandoned and counted as failed
    /// (origin: 10 000 ms).
    pub connection_timeout: Duration,
    /// Queue messages sent while offline and flush them after connecting (origin: `true`).
    pub enable_queue: bool,
    /// Most messages in the offline queue (origin: 100).
    pub queue_capacity: usize,
    /// Most encoded bytes in the offline queue (default 1 MiB).
    pub queue_max_bytes: usize,
    /// What a send into a full queue does (default [`OverflowPolicy::RejectNew`]).
    pub overflow_policy: OverflowPolicy,
    /// How long an `ack: true` send waits for the server's `ack` once transmitted
    /// (default 10 000 ms).
    pub ack_timeout: Duration,
    /// The auth token, if any.
    pub token: Option<AuthToken>,
    /// How the token reaches the server (default [`TokenTransport::Query`]).
    pub token_transport: TokenTransport,
    /// How long a connection must stay up before the attempt count resets (default 5 s, so a
    /// flapping link keeps backing off).
    pub stable_period: Duration,
    /// How long after opening the client waits for the server's `welcome` before it works in
    /// level-0 mode (default 2 s; a first frame that is not `welcome` decides at once).
    pub welcome_timeout: Duration,
    /// Debug logging in the adapters and the facade (origin: `false`); the core itself never
    /// logs.
    pub debug: bool,
    /// Seed of the jitter RNG and the message-id node: the same seed and inputs give the same
    /// outputs (tests, simulations). Production adapters should pass a random seed: clients with
    /// the same seed draw the same jitter and make the same message ids, and servers dedupe
    /// messages by id.
    pub seed: u64,
}

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0x00C0_FFEE_5EED;

/// The smallest delay that jitter can produce (unless the schedule itself is smaller).
pub const MIN_JITTERED_DELAY: Duration = Duration::from_millis(100);

impl Config {
    /// The origin document's options and defaults for `url`; the additions default to values
    /// that keep the origin's schedule (no jitter, 30 s cap).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            reconnect: true,
            reconnect_attempts: ReconnectAttempts::Limited(5),
            reconnect_interval: Duration::from_millis(3_000),
            reconnect_factor: 1.5,
            max_reconnect_delay: Duration::from_secs(30),
            jitter: 0.0,
            heartbeat_interval: Duration::from_millis(30_000),
            heartbeat_timeout: Duration::from_millis(10_000),
            connection_timeout: Duration::from_millis(10_000),
            enable_queue: true,
            queue_capacity: 100,
            queue_max_bytes: 1024 * 1024,
            overflow_policy: OverflowPolicy::RejectNew,
            ack_timeout: Duration::from_millis(10_000),
            token: None,
            token_transport: TokenTransport::Query,
            stable_period: Duration::from_secs(5),
            welcome_timeout: Duration::from_secs(2),
            debug: false,
            seed: DEFAULT_SEED,
        }
    }

    /// The preset for fleets of clients: unlimited attempts, full jitter
    /// (`delay = random(0, min(30 s, 3 s·1.5ⁿ))`, floored at 100 ms) so that thousands of
    /// clients cut off together do not come back together; everything else as [`Config::new`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use cerebrum_core::{Config, ReconnectAttempts};
    /// let fleet = Config::fleet("wss://api.example.org/ws");
    /// assert_eq!(fleet.reconnect_attempts, ReconnectAttempts::Unlimited);
    /// assert_eq!(fleet.jitter, 1.0);
    /// assert_eq!(fleet.max_reconnect_delay, Duration::from_secs(30));
    /// ```
    pub fn fleet(url: impl Into<String>) -> Self {
        Self {
            reconnect_attempts: ReconnectAttempts::Unlimited,
            jitter: 1.0,
            max_reconnect_delay: Duration::from_secs(30),
            ..Self::new(url)
        }
    }

    /// Sets the token (builder style).
    ///
    /// ```
    /// use cerebrum_core::Config;
    /// let config = Config::new("ws://localhost:8080/ws").with_token("jwt");
    /// assert_eq!(config.token.as_ref().map(|t| t.expose()), Some("jwt"));
    /// ```
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(AuthToken::new(token));
        self
    }

    /// Sets the seed (builder style).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks every option; the core refuses to be built with an invalid config.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cerebrum_core::{Config, ConfigError};
    /// let mut config = Config::new("ws://localhost:8080/ws");
    /// config.jitter = 1.5;
    /// assert!(matches!(config.validate(), Err(ConfigError::Jitter { .. })));
    /// let mut config = Config::new("http://localhost:8080/ws");
    /// assert!(matches!(config.validate(), Err(ConfigError::Url { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_url(&self.url)?;
        let durations = [
            ("reconnect_interval", self.reconnect_interval),
            ("max_reconnect_delay", self.max_reconnect_delay),
            ("heartbeat_interval", self.heartbeat_interval),
            ("heartbeat_timeout", self.heartbeat_timeout),
            ("connection_timeout", self.connection_timeout),
            ("ack_timeout", self.ack_timeout),
            ("welcome_timeout", self.welcome_timeout),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        if !(self.reconnect_factor.is_finite() && self.reconnect_factor >= 1.0) {
            return Err(ConfigError::Factor {
                value: self.reconnect_factor,
            });
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            // NaN is not contained in any range, so it lands here too.
            return Err(ConfigError::Jitter { value: self.jitter });
        }
        if self.enable_queue && self.queue_capacity == 0 {
            return Err(ConfigError::ZeroCapacity {
                field: "queue_capacity",
            });
        }
        if self.enable_queue && self.queue_max_bytes == 0 {
            return Err(ConfigError::ZeroCapacity {
                field: "queue_max_bytes",
            });
        }
        if self.token.as_ref().is_some_and(|t| t.expose().is_empty()) {
            return Err(ConfigError::EmptyToken);
        }
        Ok(())
    }
}

fn validate_url(url: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &'static str| ConfigError::Url { reason };
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or_else(|| invalid("must start with ws:// or wss://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace or control characters"));
    }
    if url.contains('#') {
        return Err(invalid("must not have a fragment"));
    }
    Ok(())
}

/// A float in an error message: Rust's `Display` (the shortest text that reads back as the same
/// float), or with the feature `lean-fmt` at most six decimals, written from integers (so that
/// the browser client's module holds none of Rust's float printing, ~20 kB).
struct Shown(f64);

impl fmt::Display for Shown {
    #[cfg(not(feature = "lean-fmt"))]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }

    #[cfg(feature = "lean-fmt")]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        if value.is_nan() {
            return f.write_str("NaN");
        }
        if value.is_sign_negative() {
            f.write_str("-")?;
        }
        let value = value.abs();
        if value.is_infinite() {
            return f.write_str("inf");
        }
        if value >= 1e15 {
            // A whole number (floats from 2^53 up have no fraction), exact below 2^64.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let whole = value as u64;
            return if value < 1.8e19 {
                write!(f, "{whole}")
            } else {
                f.write_str("1.8e19 or more")
            };
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let micros = (value * 1e6).round() as u64;
        write!(f, "{}", micros / 1_000_000)?;
        let mut fraction = micros % 1_000_000;
        if fraction == 0 {
            return Ok(());
        }
        let mut width = 6;
        while fraction.is_multiple_of(10) {
            fraction /= 10;
            width -= 1;
        }
        write!(f, ".{fraction:0width$}")
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL is empty, not `ws://`/`wss://`, or malformed.
    #[error("invalid url: {reason}")]
    Url {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A duration option is zero.
    #[error("`{field}` must be greater than zero")]
    ZeroDuration {
        /// The option's name.
        field: &'static str,
    },
    /// The reconnect factor is below 1 or not finite.
    #[error("`reconnect_factor` must be a finite number >= 1, got {}", Shown(*.value))]
    Factor {
        /// The value given.
        value: f64,
    },
    /// Jitter is outside `0.0..=1.0` or NaN.
    #[error("`jitter` must be within 0.0..=1.0, got {}", Shown(*.value))]
    Jitter {
        /// The value given.
        value: f64,
    },
    /// A queue limit is zero while the queue is enabled.
    #[error("`{field}` must be greater than zero when the queue is enabled")]
    ZeroCapacity {
        /// The option's name.
        field: &'static str,
    },
    /// The token is the empty string.
    #[error("the auth token must not be empty")]
    EmptyToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_in_messages_are_written_in_full_or_to_six_decimals_when_lean() {
        let message = |value: f64| ConfigError::Jitter { value }.to_string();
        assert_eq!(message(1.5), "`jitter` must be within 0.0..=1.0, got 1.5");
        for (value, full, lean) in [
            (2.0, "2", "2"),
            (-0.25, "-0.25", "-0.25"),
            (f64::NAN, "NaN", "NaN"),
            (f64::NEG_INFINITY, "-inf", "-inf"),
            (1.0 / 3.0, "0.3333333333333333", "0.333333"),
            (1e-9, "0.000000001", "0"),
            (4e15, "4000000000000000", "4000000000000000"),
        ] {
            let expected = if cfg!(feature = "lean-fmt") {
                lean
            } else {
                full
            };
            assert_eq!(Shown(value).to_string(), expected, "{value}");
        }
        assert!(
            ConfigError::Factor { value: 0.5 }
                .to_string()
                .ends_with("got 0.5")
        );
    }

    #[test]
    fn each_invalid_option_is_refused() {
        let ok = Config::new("ws://h/ws");
        ok.validate().unwrap();
        for url in ["", "ws://", "http://h", "wss:///x", "ws://h x", "ws://h#f"] {
            let config = Config {
                url: url.into(),
                ..ok.clone()
            };
            assert!(
                matches!(config.validate(), Err(ConfigError::Url { .. })),
                "{url}"
            );
        }
        let zero = Config {
            heartbeat_interval: Duration::ZERO,
            ..ok.clone()
        };
        assert_eq!(
            zero.validate(),
            Err(ConfigError::ZeroDuration {
                field: "heartbeat_interval"
            })
        );
        for jitter in [f64::NAN, -0.1, 1.01, f64::INFINITY] {
            let config = Config {
                jitter,
                ..ok.clone()
            };
            assert!(matches!(config.validate(), Err(ConfigError::Jitter { .. })));
        }
        for factor in [0.5, f64::NAN, f64::INFINITY] {
            let config = Config {
                reconnect_factor: factor,
                ..ok.clone()
            };
            assert!(matches!(config.validate(), Err(ConfigError::Factor { .. })));
        }
        let no_room = Config {
            queue_capacity: 0,
            ..ok.clone()
        };
        assert!(matches!(
            no_room.validate(),
            Err(ConfigError::ZeroCapacity { .. })
        ));
        let queue_off = Config {
            queue_capacity: 0,
            enable_queue: false,
            ..ok.clone()
        };
        queue_off.validate().unwrap();
        assert_eq!(
            ok.clone().with_token("").validate(),
            Err(ConfigError::EmptyToken)
        );
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let config = Config::new("wss://h/ws").with_token("top-secret");
        assert!(!format!("{config:?}").contains("top-secret"));
    }
}
