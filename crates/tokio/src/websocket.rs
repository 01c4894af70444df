//! The WebSocket transport: tokio-tungstenite, `ws://` and `wss://` (rustls).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cerebrum_core::TransportEvent;
use cerebrum_deflate::{
    Agreement, CLIENT_OFFER, CodecError, Inflater, compress_on_this_thread, inflate_on_this_thread,
};
use cerebrum_protocol::MAX_FRAME_BYTES;
use futures_util::{SinkExt, StreamExt};
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::{
    AUTHORIZATION, HeaderName, HeaderValue, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL,
};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::tls::{TlsError, client_config};
use crate::transport::{Closing, OpenRequest, Transport, TransportError};

/// The subprotocol offered in the handshake (PROTOCOL.md section 1).
pub const SUBPROTOCOL: &str = "cerebrum.v1.json";

/// Close code sent when the server's frame is larger than the protocol allows.
const CLOSE_TOO_LARGE: u16 = 1009;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Opening = Pin<Box<dyn Future<Output = Result<Opened, String>> + Send>>;

/// An open connection, whether the subprotocol is still offered, and the permessage-deflate
/// terms when the server took the extension.
type Opened = (Ws, bool, Option<Agreement>);

/// Why a [`WsTransport`] could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsConfigError {
    /// A header name or value is not valid HTTP.
    #[error("invalid header `{name}`")]
    InvalidHeader {
        /// The header's name as given.
        name: String,
    },
    /// The TLS configuration (e.g. an extra CA) is invalid.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Options of the WebSocket transport.
///
/// ```
/// use cerebrum_tokio::WsOptions;
/// let options = WsOptions::default()
///     .header("X-Client", "dashboard")?
///     .close_timeout(std::time::Duration::from_secs(1));
/// # Ok::<(), cerebrum_tokio::WsConfigError>(())
/// ```
#[derive(Clone)]
pub struct WsOptions {
    headers: Vec<(HeaderName, HeaderValue)>,
    extra_ca_pems: Vec<Vec<u8>>,
    subprotocol: Option<String>,
    close_timeout: Duration,
    compression: bool,
}

impl Default for WsOptions {
    fn default() -> Self {
        Self {
            headers: Vec::new(),
            extra_ca_pems: Vec::new(),
            subprotocol: Some(SUBPROTOCOL.to_owned()),
            close_timeout: Duration::from_secs(3),
            compression: false,
        }
    }
}

impl fmt::Debug for WsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("WsOptions")
            .field("headers", &headers)
            .field("extra_ca_pems", &self.extra_ca_pems.len())
            .field("subprotocol", &self.subprotocol)
            .field("close_timeout", &self.close_timeout)
            .field("compression", &self.compression)
            .finish()
    }
}

impl WsOptions {
    /// Adds a request header to every handshake (e.g. `Authorization`); values are marked
    /// sensitive and never logged.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, WsConfigError> {
        let invalid = || WsConfigError::InvalidHeader {
            name: name.to_owned(),
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        value.set_sensitive(true);
        self.headers.push((header, value));
        Ok(self)
    }

    /// Trusts the certificates of `pem` (PEM text) besides the webpki roots, e.g. the CA of a
    /// development server's certificate.
    #[must_use]
    pub fn extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_ca_pems.push(pem.into());
        self
    }

    /// The subprotocol to offer (default `cerebrum.v1.json`; `None` offers none). A server that
    /// answers without one is retried at once without offering it.
    #[must_use]
    pub fn subprotocol(mut self, subprotocol: Option<String>) -> Self {
        self.subprotocol = subprotocol;
        self
    }

    /// Offers permessage-deflate (RFC 7692; default off): when the server takes it, frames it
    /// compresses are inflated here, and frames of 256 bytes or more that get smaller are sent
    /// compressed. A server that does not take it is spoken to uncompressed.
    #[must_use]
    pub fn compression(mut self, compression: bool) -> Self {
        self.compression = compression;
        self
    }

    /// How long a close handshake may take before the connection is dropped (default 3 s).
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
}

enum State {
    Idle,
    Opening(Opening),
    Open(Box<Ws>),
}

/// The WebSocket [`Transport`]: `ws://` and `wss://` (rustls, ring, webpki roots plus optional
/// extra CAs), extra request headers, the `cerebrum.v1.json` subprotocol offered, inbound and
/// outbound frames limited to [`MAX_FRAME_BYTES`], a clean close handshake.
pub struct WsTransport {
    options: Arc<WsOptions>,
    tls: Arc<ClientConfig>,
    offer_subprotocol: bool,
    state: State,
    outbox: VecDeque<String>,
    needs_flush: bool,
    /// The open connection's permessage-deflate, when the server took it.
    deflate: Option<Deflate>,
}

/// permessage-deflate on an open connection.
#[derive(Debug)]
struct Deflate {
    agreed: Agreement,
    /// The window of the server's messages, when the server keeps it from one message to the
    /// next (it did not agree to `server_no_context_takeover`); made on first use.
    inflater: Option<Box<Inflater>>,
}

/// Frames shorter than this go uncompressed (they gain nothing).
const COMPRESSION_THRESHOLD: usize = 256;
/// The zlib level of the client's compressed frames (fastest).
const COMPRESSION_LEVEL: u32 = 1;
/// Close code for a compressed frame that does not inflate (RFC 6455 section 7.4.1).
const CLOSE_INVALID_DATA: u16 = 1007;

impl Deflate {
    fn new(agreed: Agreement) -> Self {
        Self {
            agreed,
            inflater: None,
        }
    }

    /// The frame to send for `text`: compressed when it pays and the terms allow.
    fn message(&self, text: String) -> Message {
        if text.len() >= COMPRESSION_THRESHOLD
            && let Some(bits) = self.agreed.client_window_bits()
            && let Ok(wire) = compress_on_this_thread(COMPRESSION_LEVEL, bits, text.as_bytes())
            && wire.len() < text.len()
        {
            return Message::Frame(Frame::compressed(wire.into(), Data::Text));
        }
        Message::text(text)
    }

    /// A compressed message from the server, inflated.
    fn inflate(&mut self, compressed: &[u8]) -> Result<Vec<u8>, CodecError> {
        if self.agreed.server_resets() {
            return inflate_on_this_thread(compressed, MAX_FRAME_BYTES);
        }
        self.inflater
            .get_or_insert_with(|| Box::new(Inflater::new(true)))
            .inflate(compressed, MAX_FRAME_BYTES)
    }
}

impl fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Opening(_) => "opening",
            State::Open(_) => "open",
        };
        f.debug_struct("WsTransport")
            .field("options", &self.options)
            .field("state", &state)
            .field("outbox", &self.outbox.len())
            .finish()
    }
}

impl WsTransport {
    /// A transport with `options`; fails if an extra CA is not valid PEM.
    pub fn new(options: WsOptions) -> Result<Self, WsConfigError> {
        let tls = client_config(&options.extra_ca_pems)?;
        Ok(Self {
            offer_subprotocol: options.subprotocol.is_some(),
            options: Arc::new(options),
            tls,
            state: State::Idle,
            outbox: VecDeque::new(),
            needs_flush: false,
            deflate: None,
        })
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<TransportEvent> {
        match &mut self.state {
            State::Idle => Poll::Pending,
            State::Opening(future) => {
                let Poll::Ready(result) = future.as_mut().poll(cx) else {
                    return Poll::Pending;
                };
                match result {
                    Ok((ws, offered, agreed)) => {
                        self.offer_subprotocol = offered;
                        self.deflate = agreed.map(Deflate::new);
                        self.state = State::Open(Box::new(ws));
                        Poll::Ready(TransportEvent::Opened)
                    }
                    Err(reason) => {
                        self.state = State::Idle;
                        Poll::Ready(TransportEvent::Error(reason))
                    }
                }
            }
            State::Open(ws) => {
                let step = poll_open(
                    ws,
                    &mut self.outbox,
                    &mut self.needs_flush,
                    self.deflate.as_mut(),
                    cx,
                );
                match step {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Step::Event(event)) => Poll::Ready(event),
                    Poll::Ready(Step::Gone { event, finish }) => {
                        let old = std::mem::replace(&mut self.state, State::Idle);
                        self.outbox.clear();
                        if let (State::Open(ws), Some(code)) = (old, finish) {
                            let _closing = finish_close(
                                *ws,
                                code,
                                String::new(),
                                Vec::new(),
                                self.options.close_timeout,
                            );
                        }
                        Poll::Ready(event)
                    }
                }
            }
        }
    }
}

enum Step {
    Event(TransportEvent),
    /// The connection is over; `finish` asks for a close handshake with that code (`0`: only
    /// complete the peer's).
    Gone {
        event: TransportEvent,
        finish: Option<u16>,
    },
}

fn gone(event: TransportEvent) -> Poll<Step> {
    Poll::Ready(Step::Gone {
        event,
        finish: None,
    })
}

fn poll_open(
    ws: &mut Ws,
    outbox: &mut VecDeque<String>,
    needs_flush: &mut bool,
    mut deflate: Option<&mut Deflate>,
    cx: &mut Context<'_>,
) -> Poll<Step> {
    while !outbox.is_empty() {
        match ws.poll_ready_unpin(cx) {
            Poll::Ready(Ok(())) => {
                let Some(frame) = outbox.pop_front() else {
                    break;
                };
                let message = match &deflate {
                    Some(deflate) => deflate.message(frame),
                    None => Message::text(frame),
                };
                if let Err(err) = ws.start_send_unpin(message) {
                    return gone(TransportEvent::Error(err.to_string()));
                }
                *needs_flush = true;
            }
            Poll::Ready(Err(err)) => return gone(TransportEvent::Error(err.to_string())),
            Poll::Pending => break,
        }
    }
    if *needs_flush {
        match ws.poll_flush_unpin(cx) {
            Poll::Ready(Ok(())) => *needs_flush = false,
            Poll::Ready(Err(err)) => return gone(TransportEvent::Error(err.to_string())),
            Poll::Pending => {}
        }
    }
    loop {
        let Poll::Ready(next) = ws.poll_next_unpin(cx) else {
            return Poll::Pending;
        };
        match next {
            None => {
                return gone(TransportEvent::Closed {
                    code: None,
                    reason: String::new(),
                });
            }
            Some(Ok(Message::Text(text))) => {
                return Poll::Ready(Step::Event(TransportEvent::Frame(text.as_str().to_owned())));
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame.map_or((1005, String::new()), |frame| {
                    (u16::from(frame.code), frame.reason.as_str().to_owned())
                });
                // Complete the peer's close handshake in the background.
                return Poll::Ready(Step::Gone {
                    event: TransportEvent::Closed {
                        code: Some(code),
                        reason,
                    },
                    finish: Some(0),
                });
            }
            Some(Ok(Message::Frame(frame))) if frame.header().rsv1 => {
                if let Some(step) = inflated(deflate.as_deref_mut(), &frame) {
                    return Poll::Ready(step);
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                // tungstenite queued the pong; it goes out with the next flush.
                *needs_flush = true;
            }
            Some(Ok(Message::Binary(_))) => {
                // No binary codec is negotiated: ignored.
            }
            Some(Err(WsError::Capacity(err))) => {
                return Poll::Ready(Step::Gone {
                    event: TransportEvent::Closed {
                        code: Some(CLOSE_TOO_LARGE),
                        reason: format!("inbound frame refused: {err}"),
                    },
                    finish: Some(CLOSE_TOO_LARGE),
                });
            }
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                return gone(TransportEvent::Closed {
                    code: None,
                    reason: String::new(),
                });
            }
            Some(Err(err)) => return gone(TransportEvent::Error(err.to_string())),
        }
    }
}

/// A compressed message from the server: its text, or the end of the connection (1007) when
/// it does not inflate, is not text, or came without the extension; `None` for a binary one
/// (ignored, as an uncompressed binary frame is).
fn inflated(deflate: Option<&mut Deflate>, frame: &Frame) -> Option<Step> {
    let fail = |reason: String| Step::Gone {
        event: TransportEvent::Closed {
            code: Some(CLOSE_INVALID_DATA),
            reason: reason.clone(),
        },
        finish: Some(CLOSE_INVALID_DATA),
    };
    let Some(deflate) = deflate else {
        return Some(fail(
            "a compressed frame without permessage-deflate".to_owned(),
        ));
    };
    let text = deflate
        .inflate(frame.payload())
        .map_err(|err| err.to_string())
        .and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| "a compressed frame that is not UTF-8 text".to_owned())
        });
    match (frame.header().opcode, text) {
        (OpCode::Data(Data::Text), Ok(text)) => Some(Step::Event(TransportEvent::Frame(text))),
        (OpCode::Data(Data::Text), Err(reason)) => Some(fail(reason)),
        _ => None,
    }
}

/// Sends `pending` frames, then a close frame with `code` (`0`: answer the peer's close), and
/// waits for the end of the connection, in the background, at most `timeout`.
fn finish_close(
    mut ws: Ws,
    code: u16,
    reason: String,
    pending: Vec<String>,
    timeout: Duration,
) -> Closing {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let handshake = async {
            for frame in pending {
                if ws.feed(Message::text(frame)).await.is_err() {
                    return;
                }
            }
            let frame = (code != 0).then(|| CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from(truncate(reason, 123)),
            });
            let _ = ws.close(frame).await;
            while let Some(Ok(_)) = ws.next().await {}
        };
        let _ = tokio::time::timeout(timeout, handshake).await;
        let _ = tx.send(());
    });
    Closing::when(rx)
}

/// At most `max` bytes of `text`, cut at a character boundary (close reasons are ≤ 123 bytes).
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

async fn open_ws(
    request: OpenRequest,
    options: Arc<WsOptions>,
    tls: Arc<ClientConfig>,
    offer: bool,
) -> Result<Opened, String> {
    let http = build_request(&request, &options, offer)?;
    let (ws, offered, extensions) = match connect(http, &tls, options.compression).await {
        Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        ))) if offer => {
            // The server ignores subprotocols (as level-0 servers may): ask again without.
            let http = build_request(&request, &options, false)?;
            let (ws, extensions) = connect(http, &tls, options.compression)
                .await
                .map_err(|err| err.to_string())?;
            (ws, false, extensions)
        }
        other => {
            let (ws, extensions) = other.map_err(|err| err.to_string())?;
            (ws, offer, extensions)
        }
    };
    // An answer the offer does not allow fails the connection (RFC 7692 section 7.1).
    let agreed = match extensions {
        Some(answer) => Agreement::from_answer(&answer, options.compression)
            .map_err(|err| format!("the server's Sec-WebSocket-Extensions: {err}"))?,
        None => None,
    };
    Ok((ws, offered, agreed))
}

fn build_request(
    request: &OpenRequest,
    options: &WsOptions,
    offer: bool,
) -> Result<Request, String> {
    let mut http = request
        .url
        .as_str()
        .into_client_request()
        .map_err(|err| err.to_string())?;
    let headers = http.headers_mut();
    for (name, value) in &options.headers {
        headers.append(name.clone(), value.clone());
    }
    if let Some(token) = &request.bearer {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the token is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    if offer
        && let Some(subprotocol) = &options.subprotocol
        && let Ok(value) = HeaderValue::from_str(subprotocol)
    {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    if options.compression {
        headers.insert(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(CLIENT_OFFER),
        );
    }
    Ok(http)
}

/// Connects; also gives the server's `Sec-WebSocket-Extensions` answer, if any (compressed
/// messages are let through to be inflated here only when permessage-deflate was offered).
async fn connect(
    http: Request,
    tls: &Arc<ClientConfig>,
    compression: bool,
) -> Result<(Ws, Option<String>), WsError> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .compressed_messages(compression);
    let (ws, response) = tokio_tungstenite::connect_async_tls_with_config(
        http,
        Some(config),
        true,
        Some(Connector::Rustls(Arc::clone(tls))),
    )
    .await?;
    let extensions = response
        .headers()
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|value| value.to_str().unwrap_or("\u{fffd}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((ws, (!extensions.is_empty()).then_some(extensions)))
}

impl Transport for WsTransport {
    fn open(&mut self, request: OpenRequest) {
        self.outbox.clear();
        self.needs_flush = false;
        let future = open_ws(
            request,
            Arc::clone(&self.options),
            Arc::clone(&self.tls),
            self.offer_subprotocol,
        );
        self.state = State::Opening(Box::pin(future));
    }

    fn send(&mut self, frame: String) -> Result<(), TransportError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(TransportError::FrameTooLarge {
                size: frame.len(),
                limit: MAX_FRAME_BYTES,
            });
        }
        if !matches!(self.state, State::Open(_)) {
            return Err(TransportError::NotOpen);
        }
        self.outbox.push_back(frame);
        Ok(())
    }

    fn close(&mut self, code: u16, reason: String) -> Closing {
        let pending: Vec<String> = self.outbox.drain(..).collect();
        self.needs_flush = false;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Open(ws) => finish_close(*ws, code, reason, pending, self.options.close_timeout),
            State::Opening(_) | State::Idle => Closing::done(),
        }
    }

    fn next(&mut self) -> impl Future<Output = TransportEvent> + Send + '_ {
        std::future::poll_fn(move |cx| self.poll_event(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_refused_locally_when_too_large_or_not_open() {
        let mut transport =
            WsTransport::new(WsOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let huge = "x".repeat(MAX_FRAME_BYTES + 1);
        assert_eq!(
            transport.send(huge),
            Err(TransportError::FrameTooLarge {
                size: MAX_FRAME_BYTES + 1,
                limit: MAX_FRAME_BYTES
            })
        );
        assert_eq!(
            transport.send("{}".to_owned()),
            Err(TransportError::NotOpen)
        );
    }

    #[test]
    fn bad_headers_and_bad_pem_are_refused() {
        assert!(matches!(
            WsOptions::default().header("bad header", "v"),
            Err(WsConfigError::InvalidHeader { .. })
        ));
        assert!(matches!(
            WsOptions::default().header("x-ok", "line\nbreak"),
            Err(WsConfigError::InvalidHeader { .. })
        ));
        let options = WsOptions::default().extra_ca_pem("-----BEGIN CERTIFICATE-----\nnope\n");
        assert!(matches!(
            WsTransport::new(options),
            Err(WsConfigError::Tls(_))
        ));
    }

    #[test]
    fn debug_output_hides_header_values_and_tokens() {
        let options = WsOptions::default()
            .header("Authorization", "Bearer secret")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{options:?}").contains("secret"));
        let request =
            OpenRequest::new("wss://h/ws?token=secret").with_bearer(Some("secret".into()));
        assert!(!format!("{request:?}").contains("secret"));
    }

    #[test]
    fn close_reasons_are_cut_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = truncate(reason, 123);
        assert!(cut.len() <= 123);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
