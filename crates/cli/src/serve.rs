//! `cerebrum serve`: flags, `CEREBRUM_*` environment variables and a TOML config file (flags
//! win over the environment, the environment over the file), logging, signals.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cerebrum_server::auth::JwtKey;
use cerebrum_server::{Database, Server, ServerConfig, TlsFiles};
use clap::{Args, ValueEnum};
use serde::Deserialize;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Arguments of `cerebrum serve`. Every flag also reads `CEREBRUM_<FLAG>` from the
/// environment, and the config file (`--config`) may set any of them.
#[derive(Debug, Args)]
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
    /// HS256 secret: turns auth on.
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
    #[arg(long, env = "CEREBRUM_INSECURE")]
    insecure: bool,
    /// Bearer token that `GET /metrics` requires (open without it).
    #[arg(long, env = "CEREBRUM_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Bearer token of the admin API (`/api/*`); the admin API is off without it.
    #[arg(long, env = "CEREBRUM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// An allowed browser `Origin` (repeatable; comma-separated in the environment).
    #[arg(
        long = "allowed-origin",
        env = "CEREBRUM_ALLOWED_ORIGIN",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
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
    /// Global connection cap (HTTP 503 past it) [default: 100000].
    #[arg(long, env = "CEREBRUM_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// TOML config file.
    #[arg(long, env = "CEREBRUM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on stderr [default: pretty].
    #[arg(long, env = "CEREBRUM_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

/// The config file: the flags' names (kebab-case; snake_case is accepted too) plus a few
/// tunables without a flag.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    addr: Option<SocketAddr>,
    #[serde(alias = "data_dir")]
    data_dir: Option<PathBuf>,
    database: Option<String>,
    #[serde(alias = "database_pool_size")]
    database_pool_size: Option<usize>,
    redis: Option<String>,
    #[serde(alias = "jwt_secret")]
    jwt_secret: Option<String>,
    #[serde(alias = "jwt_public_key")]
    jwt_public_key: Option<PathBuf>,
    #[serde(alias = "jwt_audience")]
    jwt_audience: Option<String>,
    #[serde(alias = "jwt_issuer")]
    jwt_issuer: Option<String>,
    insecure: Option<bool>,
    #[serde(alias = "metrics_token")]
    metrics_token: Option<String>,
    #[serde(alias = "max_channels_per_connection")]
    max_channels_per_connection: Option<usize>,
    #[serde(alias = "max_study_sessions_per_user")]
    max_study_sessions_per_user: Option<usize>,
    #[serde(alias = "inbound_bytes_per_sec")]
    inbound_bytes_per_sec: Option<f64>,
    #[serde(alias = "inbound_bytes_burst")]
    inbound_bytes_burst: Option<u32>,
    #[serde(alias = "history_budget_bytes")]
    history_budget_bytes: Option<usize>,
    #[serde(alias = "head_timeout_secs")]
    head_timeout_secs: Option<u64>,
    #[serde(alias = "max_tls_handshakes")]
    max_tls_handshakes: Option<usize>,
    #[serde(alias = "admin_token")]
    admin_token: Option<String>,
    #[serde(alias = "allowed_origins", alias = "allowed-origin")]
    allowed_origins: Option<Vec<String>>,
    #[serde(alias = "tls_cert")]
    tls_cert: Option<PathBuf>,
    #[serde(alias = "tls_key")]
    tls_key: Option<PathBuf>,
    #[serde(alias = "rate_limit")]
    rate_limit: Option<f64>,
    #[serde(alias = "rate_burst")]
    rate_burst: Option<u32>,
    #[serde(alias = "max_connections")]
    max_connections: Option<usize>,
    #[serde(alias = "max_connections_per_user")]
    max_connections_per_user: Option<usize>,
    #[serde(alias = "heartbeat_interval_ms")]
    heartbeat_interval_ms: Option<u64>,
    #[serde(alias = "presence_grace_ms")]
    presence_grace_ms: Option<u64>,
    #[serde(alias = "daily_goal_hours")]
    daily_goal_hours: Option<f64>,
    #[serde(alias = "history_size")]
    history_size: Option<usize>,
    #[serde(alias = "history_ttl_secs")]
    history_ttl_secs: Option<u64>,
    #[serde(alias = "presence_ttl_secs")]
    presence_ttl_secs: Option<u64>,
    #[serde(alias = "presence_refresh_secs")]
    presence_refresh_secs: Option<u64>,
    #[serde(alias = "outbound_queue")]
    outbound_queue: Option<usize>,
    #[serde(alias = "log_format")]
    log_format: Option<LogFormat>,
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    toml::from_str(&text).map_err(|err| format!("invalid config file {}: {err}", path.display()))
}

/// Merges flags (with their environment variables) over the file over the defaults.
fn build_config(args: ServeArgs) -> Result<(ServerConfig, LogFormat), String> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let mut config = ServerConfig::default();
    if let Some(addr) = args.addr.or(file.addr) {
        config.addr = addr;
    }
    if let Some(dir) = args.data_dir.or(file.data_dir) {
        config.data_dir = dir;
    }
    if let Some(url) = args.database.or(file.database) {
        config.database = database(&url, &mut config.data_dir)?;
    }
    if let Some(size) = args.database_pool_size.or(file.database_pool_size) {
        match &mut config.database {
            Database::Postgres { pool_size, .. } => *pool_size = size.max(1),
            _ => return Err("--database-pool-size needs --database postgres://…".into()),
        }
    }
    if let Some(url) = args.redis.or(file.redis) {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(format!("--redis wants a redis:// URL, got {url:?}"));
        }
        config.redis_url = Some(url);
    }
    if let Some(secs) = file.presence_ttl_secs {
        config.presence_ttl = Duration::from_secs(secs.max(1));
    }
    if let Some(secs) = file.presence_refresh_secs {
        config.presence_refresh = Duration::from_secs(secs.max(1));
    }
    let secret = args.jwt_secret.or(file.jwt_secret);
    let public_key = args.jwt_public_key.or(file.jwt_public_key);
    config.jwt = match (secret, public_key) {
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
    config.jwt_audience = args.jwt_audience.or(file.jwt_audience);
    config.jwt_issuer = args.jwt_issuer.or(file.jwt_issuer);
    config.insecure = args.insecure || file.insecure.unwrap_or(false);
    config.metrics_token = args
        .metrics_token
        .or(file.metrics_token)
        .filter(|t| !t.is_empty());
    if let Some(max) = file.max_channels_per_connection {
        config.max_channels_per_connection = max;
    }
    if let Some(max) = file.max_study_sessions_per_user {
        config.max_study_sessions_per_user = max;
    }
    if let Some(rate) = file.inbound_bytes_per_sec {
        config.inbound_bytes_per_sec = rate;
    }
    if let Some(burst) = file.inbound_bytes_burst {
        config.inbound_bytes_burst = burst;
    }
    if let Some(bytes) = file.history_budget_bytes {
        config.history_budget_bytes = bytes;
    }
    if let Some(secs) = file.head_timeout_secs {
        config.head_timeout = Duration::from_secs(secs);
    }
    if let Some(max) = file.max_tls_handshakes {
        config.max_tls_handshakes = max;
    }
    config.admin_token = args
        .admin_token
        .or(file.admin_token)
        .filter(|t| !t.is_empty());
    config.allowed_origins = if args.allowed_origins.is_empty() {
        file.allowed_origins.unwrap_or_default()
    } else {
        args.allowed_origins
    };
    config.tls = match (
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    if let Some(rate) = args.rate_limit.or(file.rate_limit) {
        config.rate_limit_per_sec = rate;
    }
    if let Some(burst) = args.rate_burst.or(file.rate_burst) {
        config.rate_burst = burst.max(1);
    }
    if let Some(max) = args.max_connections.or(file.max_connections) {
        config.max_connections = max;
    }
    if let Some(max) = file.max_connections_per_user {
        config.max_connections_per_user = max;
    }
    if let Some(ms) = file.heartbeat_interval_ms {
        config.heartbeat_interval = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = file.presence_grace_ms {
        config.presence_grace = Duration::from_millis(ms);
    }
    if let Some(goal) = file.daily_goal_hours {
        config.daily_goal_hours = goal;
    }
    if let Some(size) = file.history_size {
        config.history_size = size;
    }
    if let Some(secs) = file.history_ttl_secs {
        config.history_ttl = Duration::from_secs(secs);
    }
    if let Some(queue) = file.outbound_queue {
        config.outbound_queue = queue.max(1);
    }
    let log_format = args
        .log_format
        .or(file.log_format)
        .unwrap_or(LogFormat::Pretty);
    config.validate().map_err(|err| err.to_string())?;
    Ok((config, log_format))
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
    fn unknown_config_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "adress = \"x\"\n").unwrap();
        assert!(build_config(parse(&["--config", file.to_str().unwrap()])).is_err());
    }
}
