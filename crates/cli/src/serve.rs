//! `cerebrum serve`: one declaration of every setting ([`ServeArgs`]), read from flags,
//! `CEREBRUM_*` environment variables and a TOML config file (flags win over the environment,
//! the environment over the file, the file over the defaults); logging; signals.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cerebrum_server::auth::JwtKey;
use cerebrum_server::{Database, Server, ServerConfig, TlsFiles};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Every setting of `cerebrum serve`, declared once: each field is a flag (clap, with its
/// `CEREBRUM_*` variable) and a key of the config file (serde, kebab-case; snake_case works too).
/// Defaults are [`ServerConfig::default`]'s; the ranges are checked by
/// [`ServerConfig::validate`]. `docs/operations.md` lists every one (a test keeps it so).
#[derive(Debug, Default, Args, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080; port 0 picks a free one].
    #[arg(long, env = "CEREBRUM_ADDR")]
    addr: Option<SocketAddr>,
    /// Directory of the embedded database [default: ./cerebrum-data].
    #[arg(long, env = "CEREBRUM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: `sqlite:PATH` (a data directory) or `postgres://user[:password]@host[:port]/dbname`
    /// (several server nodes share it) [default: SQLite in --data-dir].
    #[arg(long, env = "CEREBRUM_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// Connections of the PostgreSQL pool [default: 4].
    #[arg(long, env = "CEREBRUM_DATABASE_POOL_SIZE", value_name = "N")]
    database_pool_size: Option<usize>,
    /// Redis URL (`redis://HOST:PORT`): several server processes act as one through it.
    #[arg(long, env = "CEREBRUM_REDIS", hide_env_values = true)]
    redis: Option<String>,
    /// HS256 secret of at least 32 bytes: turns auth on.
    #[arg(
        long,
        env = "CEREBRUM_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_public_key"
    )]
    jwt_secret: Option<String>,
    /// RS256 or EdDSA public key (PEM file): turns auth on.
    #[arg(long, env = "CEREBRUM_JWT_PUBLIC_KEY")]
    jwt_public_key: Option<PathBuf>,
    /// The `aud` every token must name (unchecked when unset).
    #[arg(long, env = "CEREBRUM_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// The `iss` every token must carry (unchecked when unset).
    #[arg(long, env = "CEREBRUM_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Serve with auth off on an address that is not loopback (refused without this flag).
    #[arg(long, env = "CEREBRUM_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    insecure: Option<bool>,
    /// Bearer token of the admin API (`/api/*`); the admin API is off without it.
    #[arg(long, env = "CEREBRUM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Bearer token that `GET /metrics` requires (open without it).
    #[arg(long, env = "CEREBRUM_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// An allowed browser `Origin` (repeatable; comma-separated in the environment)
    /// [default: any with auth on, pages of this machine with auth off].
    #[arg(
        long = "allowed-origin",
        env = "CEREBRUM_ALLOWED_ORIGIN",
        value_delimiter = ','
    )]
    #[serde(alias = "allowed-origin")]
    allowed_origins: Option<Vec<String>>,
    /// TLS certificate chain (PEM): serve `wss://`.
    #[arg(long, env = "CEREBRUM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "CEREBRUM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Messages per second per connection; 0 turns the limit off [default: 20].
    #[arg(long, env = "CEREBRUM_RATE_LIMIT", value_name = "PER_SEC")]
    rate_limit: Option<f64>,
    /// Burst of the per-connection rate limit [default: 40].
    #[arg(long, env = "CEREBRUM_RATE_BURST", value_name = "N")]
    rate_burst: Option<u32>,
    /// Inbound bytes per second per connection; 0 turns the limit off [default: 262144].
    #[arg(long, env = "CEREBRUM_INBOUND_BYTES_PER_SEC", value_name = "BYTES")]
    inbound_bytes_per_sec: Option<f64>,
    /// Burst of the inbound byte limit [default: 1048576].
    #[arg(long, env = "CEREBRUM_INBOUND_BYTES_BURST", value_name = "BYTES")]
    inbound_bytes_burst: Option<u32>,
    /// Global cap of connections, unfinished HTTP requests included (HTTP 503 past it)
    /// [default: 100000].
    #[arg(long, env = "CEREBRUM_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Connections per authenticated user; the newest past it is closed 4029 [default: 16].
    #[arg(long, env = "CEREBRUM_MAX_CONNECTIONS_PER_USER", value_name = "N")]
    max_connections_per_user: Option<usize>,
    /// Channels one connection may be on (`system` and its user's not counted) [default: 128].
    #[arg(long, env = "CEREBRUM_MAX_CHANNELS_PER_CONNECTION", value_name = "N")]
    max_channels_per_connection: Option<usize>,
    /// Study sessions one user may be in at once [default: 16].
    #[arg(long, env = "CEREBRUM_MAX_STUDY_SESSIONS_PER_USER", value_name = "N")]
    max_study_sessions_per_user: Option<usize>,
    /// Heartbeat interval advertised in `welcome`; silent connections close after twice it
    /// [default: 30000].
    #[arg(long, env = "CEREBRUM_HEARTBEAT_INTERVAL_MS", value_name = "MS")]
    heartbeat_interval_ms: Option<u64>,
    /// How long a lost connection keeps its place in a study session [default: 10000].
    #[arg(long, env = "CEREBRUM_PRESENCE_GRACE_MS", value_name = "MS")]
    presence_grace_ms: Option<u64>,
    /// The daily study goal behind `progress` [default: 2.0].
    #[arg(long, env = "CEREBRUM_DAILY_GOAL_HOURS", value_name = "HOURS")]
    daily_goal_hours: Option<f64>,
    /// Publications kept per channel for resume [default: 100].
    #[arg(long, env = "CEREBRUM_HISTORY_SIZE", value_name = "N")]
    history_size: Option<usize>,
    /// How long publications are kept for resume [default: 300].
    #[arg(long, env = "CEREBRUM_HISTORY_TTL_SECS", value_name = "SECS")]
    history_ttl_secs: Option<u64>,
    /// History of all channels on this node; the oldest channels' goes first past it
    /// [default: 268435456].
    #[arg(long, env = "CEREBRUM_HISTORY_BUDGET_BYTES", value_name = "BYTES")]
    history_budget_bytes: Option<usize>,
    /// With --redis: members of a node that stops refreshing vanish after this [default: 30].
    #[arg(long, env = "CEREBRUM_PRESENCE_TTL_SECS", value_name = "SECS")]
    presence_ttl_secs: Option<u64>,
    /// With --redis: how often a node refreshes its members [default: 10].
    #[arg(long, env = "CEREBRUM_PRESENCE_REFRESH_SECS", value_name = "SECS")]
    presence_refresh_secs: Option<u64>,
    /// Frames queued per connection before a slow consumer is closed 4008 [default: 1024].
    #[arg(long, env = "CEREBRUM_OUTBOUND_QUEUE", value_name = "FRAMES")]
    outbound_queue: Option<usize>,
    /// Caps the kernel's send buffer of each accepted socket (SO_SNDBUF), so that a slow
    /// reader's backlog stays in its queue, where it conflates; bounds a connection's
    /// throughput to about this much per round trip [default: the kernel's, autotuned].
    #[arg(long, env = "CEREBRUM_SEND_BUFFER", value_name = "BYTES")]
    send_buffer: Option<usize>,
    /// Queued frames from which a slow reader's queue conflates (at any length while its
    /// socket takes no more): a newer `study_metrics_update` of a user, `system_status`, or
    /// publication of a --conflate namespace replaces the queued one with its key
    /// [default: 256].
    #[arg(long, env = "CEREBRUM_CONFLATE_THRESHOLD", value_name = "FRAMES")]
    conflate_threshold: Option<usize>,
    /// Lets a namespace's publications conflate for slow readers, keyed by a payload field:
    /// `NAMESPACE=FIELD` (repeatable; comma-separated in the environment).
    #[arg(
        long = "conflate",
        env = "CEREBRUM_CONFLATE",
        value_delimiter = ',',
        value_name = "NAMESPACE=FIELD"
    )]
    conflate: Option<Vec<String>>,
    /// Take permessage-deflate (RFC 7692) when a client offers it [default: off].
    #[arg(long, env = "CEREBRUM_COMPRESSION", num_args = 0..=1, default_missing_value = "true")]
    compression: Option<bool>,
    /// zlib level of compressed frames, 1 (fastest) to 9 (smallest) [default: 6].
    #[arg(long, env = "CEREBRUM_COMPRESSION_LEVEL", value_name = "LEVEL")]
    compression_level: Option<u32>,
    /// The window the server compresses with, 9 to 15 bits; a client asking for less gets
    /// no compression [default: 15].
    #[arg(long, env = "CEREBRUM_COMPRESSION_WINDOW_BITS", value_name = "BITS")]
    compression_window_bits: Option<u8>,
    /// Frames shorter than this go uncompressed [default: 256].
    #[arg(long, env = "CEREBRUM_COMPRESSION_THRESHOLD", value_name = "BYTES")]
    compression_threshold: Option<usize>,
    /// Time an HTTP request head may take to arrive [default: 10].
    #[arg(long, env = "CEREBRUM_HEAD_TIMEOUT_SECS", value_name = "SECS")]
    head_timeout_secs: Option<u64>,
    /// TLS handshakes in progress at once [default: 256].
    #[arg(long, env = "CEREBRUM_MAX_TLS_HANDSHAKES", value_name = "N")]
    max_tls_handshakes: Option<usize>,
    /// Log format on stderr [default: pretty].
    #[arg(long, env = "CEREBRUM_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// TOML config file (its keys are these flags' names).
    #[arg(long, env = "CEREBRUM_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
}

/// Reads a config file into the same declaration; snake_case keys are read as kebab-case.
fn read_file(path: &Path) -> Result<ServeArgs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let invalid =
        |err: &dyn std::fmt::Display| format!("invalid config file {}: {err}", path.display());
    let table: toml::Table = toml::from_str(&text).map_err(|err| invalid(&err))?;
    let kebab: toml::Table = table
        .into_iter()
        .map(|(key, value)| (key.replace('_', "-"), value))
        .collect();
    if kebab.contains_key("config") {
        return Err(invalid(&"`config` cannot name another file"));
    }
    toml::Value::Table(kebab)
        .try_into()
        .map_err(|err| invalid(&err))
}

impl ServeArgs {
    /// These settings over `file`'s: a setting given here wins, one not given keeps the file's.
    fn over(self, file: Self) -> Result<Self, String> {
        let merge_error = |err: serde_json::Error| format!("cannot merge the settings: {err}");
        let mut merged = serde_json::to_value(file).map_err(merge_error)?;
        let given = serde_json::to_value(self).map_err(merge_error)?;
        if let (Some(merged), Some(given)) = (merged.as_object_mut(), given.as_object()) {
            for (key, value) in given {
                if !value.is_null() {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
        serde_json::from_value(merged).map_err(merge_error)
    }

    /// The server's configuration: these settings over [`ServerConfig::default`], validated.
    fn into_config(self) -> Result<(ServerConfig, LogFormat), String> {
        let mut config = ServerConfig::default();
        if let Some(addr) = self.addr {
            config.addr = addr;
        }
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(url) = self.database {
            config.database = database(&url, &mut config.data_dir)?;
        }
        if let Some(size) = self.database_pool_size {
            match &mut config.database {
                Database::Postgres { pool_size, .. } => *pool_size = size.max(1),
                _ => return Err("--database-pool-size needs --database postgres://…".into()),
            }
        }
        if let Some(url) = self.redis {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err("--redis wants a redis:// URL".into());
            }
            config.redis_url = Some(url);
        }
        config.jwt = match (self.jwt_secret, self.jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err("give either --jwt-secret or --jwt-public-key, not both".into());
            }
            (Some(secret), None) if secret.is_empty() => {
                return Err("--jwt-secret must not be empty".into());
            }
            (Some(secret), None) => Some(JwtKey::hs256(secret)),
            (None, Some(path)) => {
                let pem = std::fs::read(&path)
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                Some(JwtKey::public_pem(&pem).map_err(|err| format!("{}: {err}", path.display()))?)
            }
            (None, None) => None,
        };
        config.jwt_audience = self.jwt_audience;
        config.jwt_issuer = self.jwt_issuer;
        config.insecure = self.insecure.unwrap_or(false);
        config.admin_token = self.admin_token.filter(|t| !t.is_empty());
        config.metrics_token = self.metrics_token.filter(|t| !t.is_empty());
        config.allowed_origins = self.allowed_origins.unwrap_or_default();
        config.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        set(&mut config.rate_limit_per_sec, self.rate_limit);
        set(&mut config.rate_burst, self.rate_burst.map(|b| b.max(1)));
        set(
            &mut config.inbound_bytes_per_sec,
            self.inbound_bytes_per_sec,
        );
        set(&mut config.inbound_bytes_burst, self.inbound_bytes_burst);
        set(&mut config.max_connections, self.max_connections);
        set(
            &mut config.max_connections_per_user,
            self.max_connections_per_user,
        );
        set(
            &mut config.max_channels_per_connection,
            self.max_channels_per_connection,
        );
        set(
            &mut config.max_study_sessions_per_user,
            self.max_study_sessions_per_user,
        );
        set(
            &mut config.heartbeat_interval,
            self.heartbeat_interval_ms
                .map(|ms| Duration::from_millis(ms.max(1))),
        );
        set(
            &mut config.presence_grace,
            self.presence_grace_ms.map(Duration::from_millis),
        );
        set(&mut config.daily_goal_hours, self.daily_goal_hours);
        set(&mut config.history_size, self.history_size);
        set(
            &mut config.history_ttl,
            self.history_ttl_secs.map(Duration::from_secs),
        );
        set(&mut config.history_budget_bytes, self.history_budget_bytes);
        set(
            &mut config.presence_ttl,
            self.presence_ttl_secs
                .map(|s| Duration::from_secs(s.max(1))),
        );
        set(
            &mut config.presence_refresh,
            self.presence_refresh_secs
                .map(|s| Duration::from_secs(s.max(1))),
        );
        set(&mut config.outbound_queue, self.outbound_queue);
        set(&mut config.conflate_threshold, self.conflate_threshold);
        config.send_buffer = self.send_buffer;
        set(&mut config.compression.enabled, self.compression);
        set(&mut config.compression.level, self.compression_level);
        set(
            &mut config.compression.window_bits,
            self.compression_window_bits,
        );
        set(
            &mut config.compression.threshold,
            self.compression_threshold,
        );
        config.conflate = self
            .conflate
            .unwrap_or_default()
            .iter()
            .map(|rule| rule.parse().map_err(|err| format!("--conflate: {err}")))
            .collect::<Result<_, String>>()?;
        set(
            &mut config.head_timeout,
            self.head_timeout_secs.map(Duration::from_secs),
        );
        set(&mut config.max_tls_handshakes, self.max_tls_handshakes);
        config.validate().map_err(|err| err.to_string())?;
        Ok((config, self.log_format.unwrap_or(LogFormat::Pretty)))
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Flags (with their environment variables) over the file over the defaults.
fn build_config(mut args: ServeArgs) -> Result<(ServerConfig, LogFormat), String> {
    let file = match args.config.take() {
        Some(path) => read_file(&path)?,
        None => ServeArgs::default(),
    };
    args.over(file)?.into_config()
}

/// The store of a `--database` URL: `postgres://`/`postgresql://` select PostgreSQL, a
/// `sqlite:` URL sets the data directory; other schemes are refused.
fn database(url: &str, data_dir: &mut PathBuf) -> Result<Database, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::postgres(url));
    }
    *data_dir = sqlite_dir(url)?;
    Ok(Database::Sqlite)
}

/// The data directory of a `sqlite:` URL; other schemes are refused.
fn sqlite_dir(url: &str) -> Result<PathBuf, String> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            let scheme = url.split(':').next().unwrap_or(url);
            format!(
                "--database {scheme}: unknown scheme; use sqlite:DIR or postgres://user@host:port/dbname"
            )
        })?;
    if path.is_empty() {
        return Err("--database sqlite: needs a directory, e.g. sqlite:./cerebrum-data".into());
    }
    Ok(PathBuf::from(path))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in log files and CI output.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) fn run(args: ServeArgs) -> ExitCode {
    let (config, log_format) = match build_config(args) {
        Ok(built) => built,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "server failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
async fn serve(config: ServerConfig) -> Result<(), cerebrum_server::ServerError> {
    if config.jwt.is_none() {
        tracing::warn!(
            "AUTH IS OFF: every client is trusted and userId is taken from messages; \
             start with --jwt-secret or --jwt-public-key for production"
        );
    }
    if config.admin_token.is_none() {
        tracing::info!("the admin API (/api/*) is off: set --admin-token to enable it");
    }
    tracing::info!(?config, "starting");
    // The handlers are in place before the `listening on` line: a SIGTERM sent as soon as that
    // line is read must drain and exit 0, not kill the process.
    let signals = Signals::register();
    let server = Server::bind(config).await?;
    println!("listening on {}", server.ws_url());
    let _ = std::io::stdout().flush();
    tracing::info!(url = %server.ws_url(), "accepting connections");
    let handle = server.shutdown_handle();
    tokio::spawn(async move {
        signals.wait().await;
        tracing::info!("shutting down: closing connections (1001), draining up to 10 s");
        handle.shutdown();
    });
    server.wait().await
}

/// SIGINT and SIGTERM, registered up front.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                streams: signal(SignalKind::interrupt())
                    .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                    .ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            match self.streams {
                Some((mut int, mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(argv: &[&str]) -> ServeArgs {
        Wrapper::try_parse_from(std::iter::once("serve").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cerebrum.toml");
        std::fs::write(
            &file,
            "addr = \"127.0.0.1:9999\"\nrate-limit = 5.0\nmax_connections = 7\nheartbeat-interval-ms = 1000\n",
        )
        .unwrap();
        let (config, format) = build_config(parse(&[
            "--config",
            file.to_str().unwrap(),
            "--rate-limit",
            "0",
        ]))
        .unwrap();
        assert_eq!(config.addr.port(), 9999);
        assert_eq!(config.rate_limit_per_sec, 0.0);
        assert_eq!(config.max_connections, 7);
        assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(config.rate_burst, 40);
        assert_eq!(format, LogFormat::Pretty);
    }

    #[test]
    fn unsupported_backends_are_refused_clearly() {
        let err = build_config(parse(&["--redis", "localhost:6379"])).unwrap_err();
        assert!(err.contains("wants a redis:// URL"), "{err}");
        let (config, _) = build_config(parse(&["--redis", "redis://localhost"])).unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis://localhost"));
        let err = build_config(parse(&["--database", "mysql://x/y"])).unwrap_err();
        assert!(err.contains("unknown scheme"), "{err}");
        let (config, _) = build_config(parse(&["--database", "sqlite:/tmp/x"])).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.database, Database::Sqlite);
    }

    #[test]
    fn postgres_urls_select_postgres() {
        for url in ["postgres://u@h/d", "postgresql://u:pw@h:5433/d"] {
            let (config, _) = build_config(parse(&["--database", url])).unwrap();
            assert_eq!(config.database, Database::postgres(url));
            assert_eq!(config.data_dir, PathBuf::from("./cerebrum-data"));
        }
        let (config, _) = build_config(parse(&[
            "--database",
            "postgres://u@h/d",
            "--database-pool-size",
            "9",
        ]))
        .unwrap();
        assert_eq!(
            config.database,
            Database::Postgres {
                url: "postgres://u@h/d".into(),
                pool_size: 9
            }
        );
        let err = build_config(parse(&["--database-pool-size", "9"])).unwrap_err();
        assert!(err.contains("needs --database postgres"), "{err}");
        // The config file key works too.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "database = \"postgres://f@h/d\"\ndatabase-pool-size = 2\n",
        )
        .unwrap();
        let (config, _) = build_config(parse(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(
            config.database,
            Database::Postgres {
                url: "postgres://f@h/d".into(),
                pool_size: 2
            }
        );
    }

    #[test]
    fn auth_off_on_a_public_address_needs_insecure_and_short_secrets_are_refused() {
        let err = build_config(parse(&["--addr", "0.0.0.0:8080"])).unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(err.contains("--insecure"), "{err}");
        let (config, _) = build_config(parse(&["--addr", "0.0.0.0:8080", "--insecure"])).unwrap();
        assert!(config.insecure);
        let (config, _) = build_config(parse(&[
            "--addr",
            "0.0.0.0:8080",
            "--jwt-secret",
            "0123456789abcdef0123456789abcdef",
            "--jwt-audience",
            "cerebrum",
            "--jwt-issuer",
            "https://auth.test",
            "--metrics-token",
            "m",
        ]))
        .unwrap();
        assert_eq!(config.jwt_audience.as_deref(), Some("cerebrum"));
        assert_eq!(config.jwt_issuer.as_deref(), Some("https://auth.test"));
        assert_eq!(config.metrics_token.as_deref(), Some("m"));
        let err = build_config(parse(&["--jwt-secret", "short"])).unwrap_err();
        assert!(err.contains("at least 32 bytes"), "{err}");
        let err = build_config(parse(&["--rate-limit=-1"])).unwrap_err();
        assert!(err.contains("rate-limit"), "{err}");
    }

    #[test]
    fn conflation_rules_come_from_flags_or_the_file_and_bad_ones_are_refused() {
        let config = build_config(parse(&[
            "--conflate",
            "prices=symbol",
            "--conflate",
            "metrics=userId",
            "--conflate-threshold",
            "32",
        ]))
        .unwrap()
        .0;
        let rules: Vec<String> = config.conflate.iter().map(ToString::to_string).collect();
        assert_eq!(rules, ["prices=symbol", "metrics=userId"]);
        assert_eq!(config.conflate_threshold, 32);
        assert_eq!(
            build_config(parse(&[])).unwrap().0.conflate_threshold,
            ServerConfig::default().conflate_threshold
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cerebrum.toml");
        std::fs::write(
            &file,
            "conflate = [\"latest=key\"]\nconflate-threshold = 8\n",
        )
        .unwrap();
        let config = build_config(parse(&["--config", file.to_str().unwrap()]))
            .unwrap()
            .0;
        assert_eq!(config.conflate[0].to_string(), "latest=key");
        assert_eq!(config.conflate_threshold, 8);
        let err = build_config(parse(&["--conflate", "prices"])).unwrap_err();
        assert!(err.contains("--conflate"), "{err}");
        let err = build_config(parse(&["--conflate-threshold", "0"])).unwrap_err();
        assert!(err.contains("conflate-threshold"), "{err}");
    }

    #[test]
    fn the_send_buffer_is_the_kernels_unless_capped() {
        assert_eq!(build_config(parse(&[])).unwrap().0.send_buffer, None);
        let config = build_config(parse(&["--send-buffer", "16384"])).unwrap().0;
        assert_eq!(config.send_buffer, Some(16384));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cerebrum.toml");
        std::fs::write(&file, "send-buffer = 65536\n").unwrap();
        let config = build_config(parse(&["--config", file.to_str().unwrap()]))
            .unwrap()
            .0;
        assert_eq!(config.send_buffer, Some(65536));
        let err = build_config(parse(&["--send-buffer", "10"])).unwrap_err();
        assert!(err.contains("send-buffer"), "{err}");
    }

    #[test]
    fn compression_is_off_by_default_and_its_settings_are_checked() {
        let (config, _) = build_config(parse(&[])).unwrap();
        assert!(!config.compression.enabled);
        let (config, _) = build_config(parse(&[
            "--compression",
            "--compression-level",
            "9",
            "--compression-window-bits",
            "12",
            "--compression-threshold",
            "64",
        ]))
        .unwrap();
        assert_eq!(
            config.compression,
            cerebrum_server::Compression {
                enabled: true,
                level: 9,
                window_bits: 12,
                threshold: 64,
            }
        );
        let err = build_config(parse(&["--compression-window-bits", "8"])).unwrap_err();
        assert!(err.contains("compression-window-bits"), "{err}");
        let err = build_config(parse(&["--compression-level", "0"])).unwrap_err();
        assert!(err.contains("compression-level"), "{err}");
    }

    #[test]
    fn docs_operations_lists_every_setting_with_its_variable_and_file_key() {
        use clap::CommandFactory;
        let doc = include_str!("../../../docs/operations.md");
        let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `--")).collect();
        let command = Wrapper::command();
        let mut documented = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" {
                continue;
            }
            let flag = format!("`--{long}");
            let row = rows
                .iter()
                .find(|row| row.starts_with(&format!("| {flag}")))
                .unwrap_or_else(|| panic!("docs/operations.md has no row for --{long}"));
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(
                    row.contains(&*env),
                    "the row of --{long} lacks {env}: {row}"
                );
            }
            documented += 1;
        }
        // And no row documents a flag that does not exist.
        for row in &rows {
            let long = row
                .trim_start_matches("| `--")
                .split([' ', '`'])
                .next()
                .unwrap_or("");
            assert!(
                command.get_arguments().any(|a| a.get_long() == Some(long)),
                "docs/operations.md documents --{long}, which `cerebrum serve` does not have"
            );
        }
        assert!(documented >= 35, "{documented}");
        // Every flag is a file key too: the same declaration reads both.
        let file_keys = serde_json::to_value(ServeArgs::default()).unwrap();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "config") {
                continue;
            }
            let key = if long == "allowed-origin" {
                "allowed-origins"
            } else {
                long
            };
            assert!(file_keys.get(key).is_some(), "--{long} is not a file key");
        }
    }

    #[test]
    fn every_setting_reads_from_flags_the_environment_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "max_channels_per_connection = 7\nhead-timeout-secs = 3\ninsecure = true\naddr = \"0.0.0.0:1\"\nallowed-origin = [\"https://a.example\"]\n",
        )
        .unwrap();
        let (config, _) = build_config(parse(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(config.max_channels_per_connection, 7);
        assert_eq!(config.head_timeout, Duration::from_secs(3));
        assert!(config.insecure);
        assert_eq!(config.allowed_origins, vec!["https://a.example".to_owned()]);
        let (config, _) = build_config(parse(&[
            "--config",
            file.to_str().unwrap(),
            "--max-channels-per-connection",
            "9",
            "--allowed-origin",
            "https://b.example",
        ]))
        .unwrap();
        assert_eq!(config.max_channels_per_connection, 9);
        assert_eq!(config.allowed_origins, vec!["https://b.example".to_owned()]);
        let err = build_config(parse(&["--max-channels-per-connection", "0"])).unwrap_err();
        assert!(err.contains("max-channels-per-connection"), "{err}");
    }

    #[test]
    fn unknown_config_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "adress = \"x\"\n").unwrap();
        assert!(build_config(parse(&["--config", file.to_str().unwrap()])).is_err());
    }
}
