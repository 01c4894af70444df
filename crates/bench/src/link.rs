//! One benchmark client connection, and the few frames the bench subset needs.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use cerebrum_protocol::{Encoding, json_to_msgpack, msgpack_to_json};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_EXTENSIONS;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::{BenchError, Target};

/// A client's WebSocket.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Opens connection number `index` to the target (from its share of source addresses).
pub(crate) async fn open(target: &Target, index: usize) -> Result<Ws, BenchError> {
    open_with_recv_buffer(target, index, None).await
}

/// [`open`], offering the subprotocol of `encoding` (`cerebrum.v1.msgpack`: the server then
/// sends binary MessagePack frames, and the bench sends its publications as such).
pub(crate) async fn open_as(
    target: &Target,
    index: usize,
    encoding: Encoding,
) -> Result<Ws, BenchError> {
    connect(target, index, None, encoding).await
}

/// [`open`], with the socket's receive buffer set to `recv_buffer` bytes (a small one keeps
/// the kernel from holding much of what a slow reader has not read yet).
pub(crate) async fn open_with_recv_buffer(
    target: &Target,
    index: usize,
    recv_buffer: Option<u32>,
) -> Result<Ws, BenchError> {
    connect(target, index, recv_buffer, Encoding::Json).await
}

async fn connect(
    target: &Target,
    index: usize,
    recv_buffer: Option<u32>,
    encoding: Encoding,
) -> Result<Ws, BenchError> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(source) = target.source_for(index) {
        socket.bind((source, 0).into())?;
    }
    let (url, addr) = target.node_for(index);
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(1 << 20))
        .compressed_messages(target.compression());
    let mut request = url.into_client_request()?;
    if target.compression() {
        request.headers_mut().insert(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(cerebrum_deflate::CLIENT_OFFER),
        );
    }
    if encoding == Encoding::MessagePack {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(encoding.subprotocol()),
        );
    }
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(ws)
}

/// A frame's JSON text: a text frame's own, a binary frame's transcoded from MessagePack, a
/// compressed frame's inflated first (the server agreed to `server_no_context_takeover`, so
/// each message inflates on its own); `None` for control frames and what does not decode.
pub(crate) fn frame_text(message: &Message) -> Option<Cow<'_, str>> {
    match message {
        Message::Text(text) => Some(Cow::Borrowed(text.as_str())),
        Message::Binary(bytes) => msgpack_to_json(bytes).ok().map(Cow::Owned),
        Message::Frame(frame) if frame.header().rsv1 => {
            let bytes = cerebrum_deflate::inflate_on_this_thread(frame.payload(), 1 << 20).ok()?;
            match frame.header().opcode {
                OpCode::Data(Data::Binary) => msgpack_to_json(&bytes).ok().map(Cow::Owned),
                _ => String::from_utf8(bytes).ok().map(Cow::Owned),
            }
        }
        _ => None,
    }
}

/// The frame a JSON text goes out as on a connection of `encoding`.
pub(crate) fn outbound(text: String, encoding: Encoding) -> Message {
    match encoding {
        Encoding::MessagePack => match json_to_msgpack(&text) {
            Ok(bytes) => Message::binary(bytes),
            Err(_) => Message::text(text),
        },
        _ => Message::text(text),
    }
}

/// Subscribes to `channel` and waits for `subscribed` (skipping anything else).
pub(crate) async fn subscribe(
    ws: &mut Ws,
    channel: &str,
    timeout: Duration,
) -> Result<(), BenchError> {
    let frame = format!(r#"{{"type":"subscribe","payload":{{"channel":"{channel}"}}}}"#);
    ws.send(Message::text(frame)).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| BenchError::Timeout("waiting for `subscribed`"))?;
        match next {
            Some(Ok(ref message @ (Message::Text(_) | Message::Binary(_) | Message::Frame(_)))) => {
                let text = frame_text(message).unwrap_or_default();
                match frame_type(&text) {
                    Some("subscribed") => return Ok(()),
                    Some("error") => {
                        return Err(BenchError::Closed(format!("subscribe refused: {text}")));
                    }
                    _ => {}
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(BenchError::Closed(format!("{frame:?}")));
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
            None => return Err(BenchError::Closed("stream ended".to_owned())),
        }
    }
}

/// A publication on `channel` carrying the send time `t` (µs since the run's base) and
/// `pad` bytes of filler.
pub(crate) fn publication(channel: &str, t_micros: u64, pad: &str) -> String {
    format!(
        r#"{{"type":"bench.msg","payload":{{"t":{t_micros},"pad":"{pad}"}},"channel":"{channel}"}}"#
    )
}

/// `len` bytes of filler that reads like text (words of a study app drawn from a fixed
/// seed), so that compression sees what a chat message or a note gives it, not one repeated
/// character (which deflate shrinks ~100×).
pub(crate) fn filler(len: usize) -> String {
    const WORDS: [&str; 48] = [
        "the",
        "cell",
        "membrane",
        "protein",
        "study",
        "notes",
        "chapter",
        "review",
        "quiz",
        "answer",
        "question",
        "memory",
        "recall",
        "spaced",
        "repetition",
        "focus",
        "session",
        "genetics",
        "mitosis",
        "energy",
        "enzyme",
        "reaction",
        "theory",
        "proof",
        "lemma",
        "history",
        "war",
        "treaty",
        "empire",
        "vector",
        "matrix",
        "integral",
        "limit",
        "graph",
        "of",
        "and",
        "to",
        "in",
        "is",
        "for",
        "with",
        "why",
        "how",
        "because",
        "first",
        "then",
        "later",
        "again",
    ];
    let mut out = String::with_capacity(len + 16);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < len {
        // xorshift64: a fixed, cheap sequence.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let word = WORDS[(state % WORDS.len() as u64) as usize];
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.truncate(len);
    out
}

/// A ping carrying the send time.
pub(crate) fn ping(t_micros: u64) -> String {
    format!(r#"{{"type":"ping","payload":{{"t":{t_micros}}}}}"#)
}

/// The `type` of a frame, read without parsing the whole frame.
pub(crate) fn frame_type(text: &str) -> Option<&str> {
    let start = text.find(r#""type":""#)? + 8;
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// The send time `"t":N` carried in a frame's payload.
pub(crate) fn sent_at(text: &str) -> Option<u64> {
    let start = text.find(r#""t":"#)? + 4;
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

/// A publication on `channel` of value `seq` of key `k{key}` (payload field `key`: a server
/// run with `--conflate NAMESPACE=key` conflates it), with the send time and filler.
pub(crate) fn keyed_publication(
    channel: &str,
    (key, seq): (usize, u64),
    t_micros: u64,
    pad: &str,
) -> String {
    format!(
        r#"{{"type":"bench.latest","payload":{{"key":"k{key}","seq":{seq},"t":{t_micros},"pad":"{pad}"}},"channel":"{channel}"}}"#
    )
}

/// The unsigned integer `"name":N` in a frame (the first such field), read without a parser.
pub(crate) fn number_field(text: &str, name: &str) -> Option<u64> {
    let pattern = format!(r#""{name}":"#);
    let start = text.find(&pattern)? + pattern.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

/// The key number of a [`keyed_publication`].
pub(crate) fn key_of(text: &str) -> Option<usize> {
    let start = text.find(r#""key":"k"#)? + 8;
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

/// Microseconds from `base` to now.
pub(crate) fn micros_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_is_text_of_the_length_asked_the_same_every_time() {
        for len in [0, 1, 64, 1000] {
            let text = filler(len);
            assert_eq!(text.len(), len);
            assert_eq!(text, filler(len));
            assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b == b' '));
        }
        // Words, not one repeated character: it compresses as text does (~2-3x), not ~100x.
        let text = filler(1000);
        let words: std::collections::HashSet<&str> = text.split(' ').collect();
        assert!(words.len() > 20, "{}", words.len());
    }

    #[test]
    fn frames_are_read_without_a_parser() {
        let frame =
            r#"{"type":"bench.msg","payload":{"t":1234,"pad":"xx"},"timestamp":99,"channel":"c"}"#;
        assert_eq!(frame_type(frame), Some("bench.msg"));
        assert_eq!(sent_at(frame), Some(1234));
        assert_eq!(sent_at(r#"{"type":"pong","timestamp":5}"#), None);
        let publication = publication("bench:1", 7, "ab");
        let envelope = cerebrum_protocol::decode(&publication).unwrap();
        assert_eq!(envelope.channel(), Some("bench:1"));
        assert_eq!(sent_at(&ping(42)), Some(42));
        let keyed = keyed_publication("latest:1", (3, 17), 99, "p");
        let envelope = cerebrum_protocol::decode(&keyed).unwrap();
        assert_eq!(envelope.channel(), Some("latest:1"));
        assert_eq!(key_of(&keyed), Some(3));
        assert_eq!(number_field(&keyed, "seq"), Some(17));
        assert_eq!(sent_at(&keyed), Some(99));
        assert_eq!(number_field(&keyed, "nope"), None);
    }
}
