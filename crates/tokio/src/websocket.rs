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
use cerebrum_protocol::{
    Encoding, MAX_FRAME_BYTES, MSGPACK_SUBPROTOCOL, ProtocolError as FrameError, json_to_msgpack,
    msgpack_to_json,
};
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

/// An open connection, whether the subprotocol is still offered, the encoding its handshake
/// selected, and the permessage-deflate terms when the server took the extension.
type Opened = (Ws, bool, Encoding, Option<Agreement>);

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
    encoding: Encoding,
    close_timeout: Duration,
    compression: bool,
}

impl Default for WsOptions {
    fn default() -> Self {
        Self {
            headers: Vec::new(),
            extra_ca_pems: Vec::new(),
            subprotocol: Some(SUBPROTOCOL.to_owned()),
            encoding: Encoding::Json,
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
            .field("encoding", &self.encoding)
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

    /// The encoding to ask for (default [`Encoding::Json`]). With [`Encoding::MessagePack`] the
    /// handshake offers `cerebrum.v1.msgpack` first, then the subprotocol of
    /// [`WsOptions::subprotocol`]; when the server selects it, frames travel as binary
    /// MessagePack both ways (the core still reads and writes JSON text: the transport
    /// transcodes). A server that selects the JSON subprotocol, or none, gets JSON text.
    ///
    /// ```
    /// use cerebrum_tokio::WsOptions;
    /// use cerebrum_protocol::Encoding;
    /// let options = WsOptions::default().encoding(Encoding::MessagePack);
    /// assert!(format!("{options:?}").contains("MessagePack"));
    /// ```
    #[must_use]
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
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
/// extra CAs), extra request headers, the `cerebrum.v1.json` subprotocol offered (and
/// `cerebrum.v1.msgpack` before it when asked for, [`WsOptions::encoding`]), inbound and
/// outbound frames limited to [`MAX_FRAME_BYTES`], a clean close handshake.
pub struct WsTransport {
    options: Arc<WsOptions>,
    tls: Arc<ClientConfig>,
    offer_subprotocol: bool,
    /// The encoding of the open connection (as its handshake selected).
    wire: Encoding,
    state: State,
    outbox: VecDeque<Message>,
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

    /// `message` compressed, when it pays and the terms allow; as it is otherwise.
    fn compress(&self, message: Message) -> Message {
        let (kind, bytes): (Data, &[u8]) = match &message {
            Message::Text(text) => (Data::Text, text.as_bytes()),
            Message::Binary(bytes) => (Data::Binary, bytes),
            _ => return message,
        };
        if bytes.len() >= COMPRESSION_THRESHOLD
            && let Some(bits) = self.agreed.client_window_bits()
            && let Ok(wire) = compress_on_this_thread(COMPRESSION_LEVEL, bits, bytes)
            && wire.len() < bytes.len()
        {
            return Message::Frame(Frame::compressed(wire.into(), kind));
        }
        message
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
            offer_subprotocol: options.subprotocol.is_some() || options.encoding != Encoding::Json,
            wire: Encoding::Json,
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
                    Ok((ws, offered, wire, agreed)) => {
                        self.offer_subprotocol = offered;
                        self.wire = wire;
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
                    (self.wire, self.deflate.as_mut()),
                    &mut self.outbox,
                    &mut self.needs_flush,
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
    (wire, mut deflate): (Encoding, Option<&mut Deflate>),
    outbox: &mut VecDeque<Message>,
    needs_flush: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Step> {
    while !outbox.is_empty() {
        match ws.poll_ready_unpin(cx) {
            Poll::Ready(Ok(())) => {
                let Some(frame) = outbox.pop_front() else {
                    break;
                };
                if let Err(err) = ws.start_send_unpin(frame) {
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
                if let Some(step) = inflated(deflate.as_deref_mut(), wire, &frame) {
                    return Poll::Ready(step);
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                // tungstenite queued the pong; it goes out with the next flush.
                *needs_flush = true;
            }
            Some(Ok(Message::Binary(bytes))) if wire == Encoding::MessagePack => {
                return Poll::Ready(Step::Event(from_msgpack(&bytes)));
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

/// A binary MessagePack frame as the core's JSON text; one that does not decode is reported as
/// what it is, never handed on as data.
fn from_msgpack(bytes: &[u8]) -> TransportEvent {
    match msgpack_to_json(bytes) {
        Ok(text) => TransportEvent::Frame(text),
        Err(err) => TransportEvent::Invalid(FrameError::from(err)),
    }
}

/// A compressed message from the server: its text (or its MessagePack decoded), or the end of
/// the connection (1007) when it does not inflate, is not UTF-8 text, or came without the
/// extension; `None` for a binary one on a JSON connection (ignored, as an uncompressed one
/// is).
fn inflated(deflate: Option<&mut Deflate>, wire: Encoding, frame: &Frame) -> Option<Step> {
    let fail = |reason: String| Step::Gone {
        event: TransportEvent::Closed {
            code: Some(CLOSE_INVALID_DATA),
            reason,
        },
        finish: Some(CLOSE_INVALID_DATA),
    };
    let Some(deflate) = deflate else {
        return Some(fail(
            "a compressed frame without permessage-deflate".to_owned(),
        ));
    };
    let bytes = match deflate.inflate(frame.payload()) {
        Ok(bytes) => bytes,
        Err(err) => return Some(fail(err.to_string())),
    };
    match frame.header().opcode {
        OpCode::Data(Data::Text) => Some(match String::from_utf8(bytes) {
            Ok(text) => Step::Event(TransportEvent::Frame(text)),
            Err(_) => fail("a compressed frame that is not UTF-8 text".to_owned()),
        }),
        OpCode::Data(Data::Binary) if wire == Encoding::MessagePack => {
            Some(Step::Event(from_msgpack(&bytes)))
        }
        _ => None,
    }
}

/// Sends `pending` frames, then a close frame with `code` (`0`: answer the peer's close), and
/// waits for the end of the connection, in the background, at most `timeout`.
fn finish_close(
    mut ws: Ws,
    code: u16,
    reason: String,
    pending: Vec<Message>,
    timeout: Duration,
) -> Closing {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let handshake = async {
            for frame in pending {
                if ws.feed(frame).await.is_err() {
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
    let (ws, offered, wire, extensions) = match connect(http, &tls, options.compression).await {
        Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        ))) if offer => {
            // The server ignores subprotocols (as level-0 servers may): ask again without
            // (JSON text, whatever encoding was asked for).
            let http = build_request(&request, &options, false)?;
            let (ws, _, extensions) = connect(http, &tls, options.compression)
                .await
                .map_err(|err| err.to_string())?;
            (ws, false, Encoding::Json, extensions)
        }
        other => {
            let (ws, wire, extensions) = other.map_err(|err| err.to_string())?;
            (ws, offer, wire, extensions)
        }
    };
    // An answer the offer does not allow fails the connection (RFC 7692 section 7.1).
    let agreed = match extensions {
        Some(answer) => Agreement::from_answer(&answer, options.compression)
            .map_err(|err| format!("the server's Sec-WebSocket-Extensions: {err}"))?,
        None => None,
    };
    Ok((ws, offered, wire, agreed))
}

/// The `Sec-WebSocket-Protocol` offer: `cerebrum.v1.msgpack` first when MessagePack is asked
/// for, then the configured subprotocol (the server selects the first it speaks).
fn offer_of(options: &WsOptions) -> Option<String> {
    let msgpack = (options.encoding == Encoding::MessagePack).then_some(MSGPACK_SUBPROTOCOL);
    match (msgpack, options.subprotocol.as_deref()) {
        (Some(msgpack), Some(other)) if other != msgpack => Some(format!("{msgpack}, {other}")),
        (Some(msgpack), _) => Some(msgpack.to_owned()),
        (None, other) => other.map(str::to_owned),
    }
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
        && let Some(subprotocol) = offer_of(options)
        && let Ok(value) = HeaderValue::from_str(&subprotocol)
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

/// Connects; the socket, the encoding its handshake selected (tungstenite has checked that a
/// selected subprotocol was one of the offer), and the server's `Sec-WebSocket-Extensions`
/// answer, if any (compressed messages are let through to be inflated here only when
/// permessage-deflate was offered).
async fn connect(
    http: Request,
    tls: &Arc<ClientConfig>,
    compression: bool,
) -> Result<(Ws, Encoding, Option<String>), WsError> {
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
    let wire = response
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(Encoding::from_subprotocol)
        .unwrap_or_default();
    let extensions = response
        .headers()
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|value| value.to_str().unwrap_or("\u{fffd}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((ws, wire, (!extensions.is_empty()).then_some(extensions)))
}

/// A frame of the core (JSON text) as the connection's encoding sends it: binary MessagePack,
/// or the text itself when the MessagePack form would break the frame limit (floats take 9
/// bytes; the server reads text frames on a MessagePack connection too).
fn to_message(frame: String, wire: Encoding) -> Message {
    if wire == Encoding::MessagePack
        && let Ok(bytes) = json_to_msgpack(&frame)
        && bytes.len() <= MAX_FRAME_BYTES
    {
        return Message::binary(bytes);
    }
    Message::text(frame)
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
        let message = to_message(frame, self.wire);
        self.outbox.push_back(match &self.deflate {
            Some(deflate) => deflate.compress(message),
            None => message,
        });
        Ok(())
    }

    fn close(&mut self, code: u16, reason: String) -> Closing {
        let pending: Vec<Message> = self.outbox.drain(..).collect();
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
    fn msgpack_is_offered_first_and_json_after_it() {
        let offer = |options: WsOptions| offer_of(&options);
        assert_eq!(
            offer(WsOptions::default()).as_deref(),
            Some("cerebrum.v1.json")
        );
        let msgpack = WsOptions::default().encoding(Encoding::MessagePack);
        assert_eq!(
            offer(msgpack.clone()).as_deref(),
            Some("cerebrum.v1.msgpack, cerebrum.v1.json")
        );
        assert_eq!(
            offer(msgpack.subprotocol(None)).as_deref(),
            Some("cerebrum.v1.msgpack")
        );
        assert_eq!(offer(WsOptions::default().subprotocol(None)), None);
    }

    #[test]
    fn frames_go_binary_on_msgpack_unless_too_large() {
        let ping = r#"{"type":"ping","payload":1}"#.to_owned();
        assert!(matches!(
            to_message(ping.clone(), Encoding::Json),
            Message::Text(_)
        ));
        match to_message(ping, Encoding::MessagePack) {
            Message::Binary(bytes) => assert_eq!(bytes[0], 0x82),
            other => panic!("{other:?}"),
        }
        // 13 000 floats: 52 kB of JSON text, 117 kB of MessagePack: sent as text.
        let floats = format!("[{}]", vec!["1.5"; 13_000].join(","));
        assert!(floats.len() <= MAX_FRAME_BYTES);
        assert!(matches!(
            to_message(floats, Encoding::MessagePack),
            Message::Text(_)
        ));
    }

    #[test]
    fn close_reasons_are_cut_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = truncate(reason, 123);
        assert!(cut.len() <= 123);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
