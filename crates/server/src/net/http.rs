//! The HTTP routes on the WebSocket's port: `/ws`, `/healthz`, `/metrics`, `/api/*`, and the
//! web dashboard (`/`, `/app.js`, `/style.css`, the `@cerebrum/realtime` bundle `/realtime.js` and
//! its `/wasm/cerebrum_wasm_bg.wasm`, embedded from `web/`).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use cerebrum_protocol::{
    Envelope, MessageId, Notification, OverallStatus, Payload, validate_channel,
};
use cerebrum_server_core::Encoding;
use serde_json::{Value, json};

use crate::app::App;
use crate::net::conn::{self, ConnGuard};
use crate::net::upgrade::Upgrade;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/notifications", post(notifications))
        .route("/api/publish", post(publish))
        .route("/", get(web_index))
        .route("/index.html", get(web_index))
        .route("/app.js", get(web_script))
        .route("/style.css", get(web_style))
        .route("/realtime.js", get(web_client))
        .route("/wasm/cerebrum_wasm_bg.wasm", get(web_client_wasm))
        .fallback(not_found)
        .with_state(app)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    respond(status, "application/json", body.to_string())
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// The web dashboard: one page, one stylesheet, its ES module, and the client package (built and
/// committed by `cargo xtask wasm`), embedded in the binary.
const WEB_INDEX: &str = include_str!("../../web/index.html");
const WEB_SCRIPT: &str = include_str!("../../web/app.js");
const WEB_STYLE: &str = include_str!("../../web/style.css");
const WEB_CLIENT: &str = include_str!("../../web/realtime.js");
const WEB_CLIENT_WASM: &[u8] = include_bytes!("../../web/wasm/cerebrum_wasm_bg.wasm");

/// The dashboard's Content-Security-Policy: scripts from this origin only (no inline script),
/// WebAssembly compilation allowed, sockets to this server.
const WEB_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn web_asset(content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(WEB_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

async fn web_index() -> Response {
    web_asset("text/html; charset=utf-8", WEB_INDEX)
}

async fn web_script() -> Response {
    web_asset("text/javascript; charset=utf-8", WEB_SCRIPT)
}

async fn web_style() -> Response {
    web_asset("text/css; charset=utf-8", WEB_STYLE)
}

async fn web_client() -> Response {
    web_asset("text/javascript; charset=utf-8", WEB_CLIENT)
}

async fn web_client_wasm() -> Response {
    web_asset("application/wasm", WEB_CLIENT_WASM)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

/// Whether a browser `Origin` is a page of this machine: `http(s)://localhost`,
/// `127.0.0.0/8` or `[::1]`, any port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The token of `?token=` or `Authorization: Bearer`.
fn token_of(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let from_query = uri.query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
    });
    from_query.or_else(|| bearer(headers).map(str::to_owned))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn ws(State(app): State<Arc<App>>, request: axum::extract::Request) -> Response {
    let (mut parts, _no_body) = request.into_parts();
    let upgrade = match Upgrade::from_parts(&mut parts, &Encoding::ALL) {
        Ok(upgrade) => upgrade.with_compression(&parts.headers, &app.ctx.config.compression),
        Err(refused) => return error(refused.status(), &refused.to_string()),
    };
    let headers = &parts.headers;
    let config = &app.ctx.config;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let allowed = if !config.allowed_origins.is_empty() {
            config.allowed_origins.iter().any(|a| a == origin)
        } else {
            // With auth off any page could act as any user of a developer's local server:
            // only pages served from this machine may connect, unless an allow-list says more.
            app.ctx.auth_enabled() || is_loopback_origin(origin)
        };
        if !allowed {
            return error(StatusCode::FORBIDDEN, "origin not allowed");
        }
    }
    if *app.shutdown_rx().borrow() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        );
    }
    if !app.try_open_connection() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many connections");
    }
    let guard = ConnGuard { app: app.clone() };
    let token = token_of(headers, &parts.uri);
    let socket_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .max_frame_size(Some(config.max_frame_bytes))
        .max_message_size(Some(config.max_frame_bytes));
    let encoding = upgrade.encoding();
    upgrade.on_upgrade(socket_config, move |socket| {
        conn::run(guard, socket, token, encoding)
    })
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let status = app.ctx.status();
    let code = if status.status == OverallStatus::Outage {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    match serde_json::to_value(&status) {
        Ok(body) => json_response(code, &body),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "status unavailable"),
    }
}

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(expected) = app.ctx.config.metrics_token.as_deref()
        && !bearer(&headers)
            .is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong metrics bearer token",
        );
    }
    respond(
        StatusCode::OK,
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        app.ctx.metrics.render(app.ctx.hub.channel_count()),
    )
}

/// `None` when the request carries the admin token; otherwise the refusal.
fn check_admin(app: &App, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = app.ctx.config.admin_token.as_deref() else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the admin API is off: start the server with --admin-token or CEREBRUM_ADMIN_TOKEN",
        ));
    };
    match bearer(headers) {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => None,
        _ => Some(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin bearer token",
        )),
    }
}

/// `subtle`'s comparison, which the optimiser cannot turn into an early exit (the length is
/// not secret: it returns at once on a length mismatch).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Why an admin API body was refused: the HTTP status and the message of its `{"error"}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyRefusal {
    /// 400, or 413 for a payload too large.
    pub status: StatusCode,
    /// What is wrong, safe to return to the caller.
    pub message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> BodyRefusal {
    BodyRefusal {
        status,
        message: message.into(),
    }
}

/// Reads and checks the body of `POST /api/notifications`: a notification payload plus an
/// optional `userId` (absent: everyone). `fresh_id` gives the `id` of a body without one.
///
/// What the handler runs before storing and delivering; pure, so the fuzz harness calls it.
pub fn notification_body(
    body: &[u8],
    fresh_id: impl FnOnce() -> String,
) -> Result<(Notification, Option<String>), BodyRefusal> {
    let bad = |message: &str| refuse(StatusCode::BAD_REQUEST, message);
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad("the body must be a JSON object"));
    };
    let user_id = match fields.remove("userId") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) if !user.is_empty() => Some(user),
        Some(_) => return Err(bad("`userId` must be a non-empty string")),
    };
    if !fields.contains_key("id") || fields.get("id") == Some(&Value::Null) {
        fields.insert("id".into(), Value::String(fresh_id()));
    }
    let notification: Notification = serde_json::from_value(Value::Object(fields))
        .map_err(|err| bad(&format!("invalid notification: {err}")))?;
    notification
        .validate()
        .map_err(|err| bad(&err.to_string()))?;
    if MessageId::new(notification.id.clone()).is_err() {
        return Err(bad("`id` must be 1-64 characters"));
    }
    if let Some(url) = &notification.action_url
        && !cerebrum_protocol::is_safe_action_url(url)
    {
        return Err(bad(
            "`actionUrl` must be an http(s) URL or a path starting with `/`",
        ));
    }
    if notification_frame_len(&notification, user_id.as_deref())
        > cerebrum_protocol::MAX_FRAME_BYTES
    {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the notification would make a frame larger than 64 KiB",
        ));
    }
    if let Some(user) = &user_id
        && cerebrum_protocol::user_channel(user).is_err()
    {
        return Err(bad("`userId` has characters a channel name cannot hold"));
    }
    Ok((notification, user_id))
}

/// Reads and checks the body of `POST /api/publish` (`{channel, type, payload}`): the channel
/// and the envelope to publish there, not yet stamped.
///
/// What the handler runs before publishing; pure, so the fuzz harness calls it.
pub fn publish_body(body: &[u8]) -> Result<(String, Envelope), BodyRefusal> {
    let bad = |message: String| refuse(StatusCode::BAD_REQUEST, message);
    let request: PublishBody =
        serde_json::from_slice(body).map_err(|err| bad(format!("invalid body: {err}")))?;
    validate_channel(&request.channel).map_err(|err| bad(err.to_string()))?;
    let payload = request
        .payload
        .unwrap_or_else(|| serde_json::value::RawValue::NULL.to_owned());
    if payload.get().len() + 512 > cerebrum_protocol::MAX_FRAME_BYTES {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the payload would make a frame larger than 64 KiB",
        ));
    }
    cerebrum_protocol::check_depth(payload.get(), cerebrum_protocol::MAX_DEPTH - 1)
        .map_err(|err| bad(err.to_string()))?;
    let envelope = Envelope::new(request.kind, payload).map_err(|err| bad(err.to_string()))?;
    Ok((request.channel, envelope))
}

/// Largest admin API body read, in bytes (a frame's worth plus the request's own fields).
const MAX_API_BODY: usize = 2 * cerebrum_protocol::MAX_FRAME_BYTES;

/// The body of an admin API call, read only after its token was checked.
async fn admin_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    if let Some(refusal) = check_admin(app, headers) {
        return Err(refusal);
    }
    axum::body::to_bytes(body, MAX_API_BODY).await.map_err(|_| {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than 128 KiB",
        )
    })
}

async fn notifications(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let body = match admin_body(&app, &headers, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let (notification, user_id) = match notification_body(&body, || {
        app.ctx.ids.next(crate::clock::unix_ms()).into_string()
    }) {
        Ok(parsed) => parsed,
        Err(refusal) => return error(refusal.status, &refusal.message),
    };
    let id = notification.id.clone();
    match app.notify(notification, user_id).await {
        Ok(()) => json_response(StatusCode::ACCEPTED, &json!({ "id": id })),
        Err(err) if is_unique_violation(&err.to_string()) => {
            error(StatusCode::CONFLICT, "a notification with this id exists")
        }
        Err(err) => {
            tracing::error!(%err, "could not store a notification");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not store the notification",
            )
        }
    }
}

#[derive(serde::Deserialize)]
struct PublishBody {
    channel: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<Box<serde_json::value::RawValue>>,
}

/// Whether a store error says a row with that key exists (SQLite says `UNIQUE constraint
/// failed`, PostgreSQL `duplicate key value violates unique constraint`).
fn is_unique_violation(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("unique constraint") || message.contains("duplicate key")
}

/// The length of `notification`'s frame as delivered on the user's channel (or `system`'s
/// longest possible user channel for a broadcast): stamped, with channel and offset.
fn notification_frame_len(notification: &Notification, user_id: Option<&str>) -> usize {
    const STAMPS: usize = ",\"timestamp\":,\"messageId\":\"\",\"offset\":".len() + 20 + 64 + 20;
    let channel = user_id.map_or(cerebrum_protocol::MAX_CHANNEL_LEN, |user| {
        cerebrum_protocol::USER_PREFIX.len() + user.len()
    });
    match Envelope::from_payload(notification) {
        Ok(envelope) => cerebrum_protocol::encode(&envelope).len() + STAMPS + channel + 16,
        Err(_) => usize::MAX,
    }
}

async fn publish(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let body = match admin_body(&app, &headers, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let (channel, envelope) = match publish_body(&body) {
        Ok(parsed) => parsed,
        Err(refusal) => return error(refusal.status, &refusal.message),
    };
    let now = crate::clock::now();
    let envelope = envelope.stamped(&app.ctx.ids, now.unix_ms);
    match app.ctx.hub.publish(&channel, envelope, now) {
        Ok(offset) => json_response(StatusCode::ACCEPTED, &json!({ "offset": offset })),
        Err(err) => error(StatusCode::BAD_REQUEST, &err.to_string()),
    }
}

#[cfg(test)]
mod origin_tests {
    use super::is_loopback_origin;

    #[test]
    fn loopback_origins() {
        for ok in [
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "https://localhost",
            "http://[::1]:3000",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback_origin(ok), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://10.0.0.1:8080",
            "null",
            "file://",
            "",
        ] {
            assert!(!is_loopback_origin(bad), "{bad}");
        }
    }
}
