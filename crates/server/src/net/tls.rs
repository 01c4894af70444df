//! `wss://` served directly: a rustls acceptor (ring provider) behind axum's listener trait.

use std::io::BufReader;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig as RustlsConfig};
use tokio_rustls::server::TlsStream;

use crate::{ServerError, TlsFiles};

/// Handshakes in progress at once, at most.
const PENDING_HANDSHAKES: usize = 256;

/// Reads the certificate chain and key into an acceptor.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServerError> {
    let tls = |what: &str, err: &dyn std::fmt::Display| ServerError::Tls(format!("{what}: {err}"));
    let cert_file = std::fs::File::open(&files.cert).map_err(|e| tls("certificate file", &e))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(cert_file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls("certificate", &e))?;
    if certs.is_empty() {
        return Err(ServerError::Tls("no certificate in the file".into()));
    }
    let key_file = std::fs::File::open(&files.key).map_err(|e| tls("key file", &e))?;
    let key = rustls_pemfile::private_key(&mut BufReader::new(key_file))
        .map_err(|e| tls("key", &e))?
        .ok_or_else(|| ServerError::Tls("no private key in the file".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = RustlsConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls("protocol versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls("certificate and key", &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections and completes TLS handshakes concurrently, so a slow handshake
/// never holds up the others.
pub(crate) struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    _acceptor_task: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TlsListener {
    /// At most `max_handshakes` handshakes run at once; further accepted sockets wait in the
    /// kernel's backlog until a slot frees. Each accepted socket gets `TCP_NODELAY` and
    /// `send_buffer` (see [`crate::net::acceptor::tune`]).
    pub(crate) fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        max_handshakes: usize,
        send_buffer: Option<usize>,
    ) -> Self {
        let local_addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, ready) = mpsc::channel(PENDING_HANDSHAKES);
        let slots = Arc::new(tokio::sync::Semaphore::new(max_handshakes.max(1)));
        let task = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::debug!(%err, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                crate::net::acceptor::tune(&tcp, send_buffer);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    )
                    .await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%err, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        });
        Self {
            local_addr,
            ready,
            _acceptor_task: AbortOnDrop(task),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(accepted) = self.ready.recv().await {
                return accepted;
            }
            // The acceptor task ended: nothing more will come.
            std::future::pending::<()>().await;
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
