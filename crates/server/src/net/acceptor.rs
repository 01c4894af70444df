//! The accept loop under the HTTP routes: hyper's HTTP/1 server with a timer, so that a request
//! head that does not arrive within [`ServerConfig::head_timeout`](crate::ServerConfig) closes
//! the connection, and every accepted connection counts toward the server's cap from its first
//! byte, not only once it became a WebSocket (PROTOCOL.md section 7: slowloris).
//!
//! `axum::serve` runs hyper without a timer, so hyper applies no head timeout there, and a
//! connection that never finishes its request costs a task for ever.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use axum::serve::Listener;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;

use crate::app::App;

/// Serves `router` on the connections of `listener` until `stop` turns true. Returns once no
/// more connections are accepted; connections in progress finish on their own (their HTTP
/// exchanges are told to shut down gracefully).
pub(crate) async fn serve<L>(mut listener: L, router: Router, app: Arc<App>)
where
    L: Listener,
    L::Io: Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.ctx.config.head_timeout);
    let mut stop = app.shutdown_rx();
    loop {
        let (io, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopping| *stopping) => return,
        };
        let slot = PendingSlot::take(&app);
        let mut builder = builder.clone();
        let router = router.clone();
        let stop = app.shutdown_rx();
        tokio::spawn(async move {
            let io = TokioIo::new(io);
            match slot {
                Some(_slot) => {
                    let service = TowerToHyperService::new(router);
                    let connection = builder.serve_connection(io, service).with_upgrades();
                    finish(connection, stop).await;
                }
                None => {
                    // Over the cap: this connection is answered 503 and closed; it never
                    // reaches the routes.
                    let service = hyper::service::service_fn(|_| async {
                        Ok::<_, Infallible>(over_capacity())
                    });
                    let connection = builder.keep_alive(false).serve_connection(io, service);
                    finish(connection, stop).await;
                }
            }
        });
    }
}

/// Sets up an accepted TCP socket: `TCP_NODELAY` (small frames go out at once: without it,
/// Nagle's algorithm and delayed ACKs hold them ~40 ms; measured: rooms p99 42 ms before, see
/// docs/benchmarks.md), and the send buffer's cap when one is configured
/// ([`ServerConfig::send_buffer`](crate::ServerConfig)). Either failing is logged, not fatal.
pub(crate) fn tune(tcp: &tokio::net::TcpStream, send_buffer: Option<usize>) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(%err, "cannot set TCP_NODELAY");
    }
    if let Some(bytes) = send_buffer
        && let Err(err) = socket2::SockRef::from(tcp).set_send_buffer_size(bytes)
    {
        tracing::debug!(%err, bytes, "cannot set SO_SNDBUF");
    }
}

/// Drives one HTTP connection; on shutdown asks it to finish its exchange and close.
async fn finish<C>(connection: C, mut stop: watch::Receiver<bool>)
where
    C: Future<Output = Result<(), hyper::Error>> + GracefulConnection,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(err) = served {
                tracing::debug!(%err, "HTTP connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    connection.as_mut().shut_down();
    if let Err(err) = connection.await {
        tracing::debug!(%err, "HTTP connection ended with an error during shutdown");
    }
}

/// hyper's two connection types (with and without upgrades) share graceful shutdown but no
/// trait: this is it.
trait GracefulConnection {
    fn shut_down(self: std::pin::Pin<&mut Self>);
}

impl<I, S> GracefulConnection for http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut_down(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S> GracefulConnection for http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut_down(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

fn over_capacity() -> Response<Body> {
    let mut response = Response::new(Body::from(r#"{"error":"too many connections"}"#));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A place among the server's connections held by a connection that has not (yet) become a
/// WebSocket; released when its HTTP exchange ends, by upgrade or close.
struct PendingSlot(Arc<App>);

impl PendingSlot {
    /// `None` at the cap (open WebSockets and pending connections together).
    fn take(app: &Arc<App>) -> Option<Self> {
        app.try_open_pending().then(|| Self(app.clone()))
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.0.pending_closed();
    }
}
