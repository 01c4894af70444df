//! The envelope every frame travels in, and its codec.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    MAX_DEPTH, MAX_FRAME_BYTES, MessageId, MessageIdGenerator, Payload, ProtocolError, check_depth,
    validate_channel, validate_type,
};

/// One frame of the wire protocol (PROTOCOL.md section 2).
///
/// The payload is kept as raw JSON text: decoding checks that it is well-formed JSON but does not
/// build it, [`Envelope::payload_as`] reads it into any type, and encoding writes it back byte
/// for byte (so a `pong` echoes a `ping`'s payload verbatim and a publication is never
/// re-serialised on its way through a server).
///
/// ```
/// use cerebrum_protocol::{decode, encode, Envelope, StudySessionStart};
///
/// let start = StudySessionStart {
///     user_id: "user-123".into(),
///     topic: "Genetics".into(),
///     timestamp: None,
/// };
/// let envelope = Envelope::from_payload(&start)?
///     .with_timestamp(1_732_752_000_000)
///     .with_message_id("m-1".parse()?);
/// let text = encode(&envelope);
/// assert_eq!(
///     text,
///     r#"{"type":"study_session_start","payload":{"userId":"user-123","topic":"Genetics"},"timestamp":1732752000000,"messageId":"m-1"}"#
/// );
/// let back = decode(&text)?;
/// assert_eq!(back.typed::<StudySessionStart>()?, start);
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
#[derive(Clone, Serialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    payload: Box<RawValue>,
    #[serde(flatten)]
    meta: Meta,
}

/// The envelope's fields besides `type` and `payload`: `timestamp`, `messageId`, and the v1
/// fields `channel`, `offset`, `ack`.
///
/// Used on its own by the typed fast path ([`decode_payload`], [`encode_payload`]), which reads
/// and writes a catalog payload without an intermediate raw copy.
///
/// ```
/// use cerebrum_protocol::Meta;
/// let meta = Meta::default().with_timestamp(1).with_channel("room:1")?.with_offset(7);
/// assert_eq!(meta.channel(), Some("room:1"));
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<u64>,
    #[serde(rename = "messageId", skip_serializing_if = "Option::is_none")]
    message_id: Option<MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "is_false")]
    ack: bool,
}

impl Meta {
    /// Sets `timestamp` (milliseconds since the Unix epoch, the sender's clock).
    #[must_use]
    pub fn with_timestamp(mut self, unix_ms: u64) -> Self {
        self.timestamp = Some(unix_ms);
        self
    }

    /// Sets `messageId`.
    #[must_use]
    pub fn with_message_id(mut self, id: MessageId) -> Self {
        self.message_id = Some(id);
        self
    }

    /// Sets `timestamp` to `unix_ms` and `messageId` to a fresh id from `ids`.
    #[must_use]
    pub fn stamped(self, ids: &MessageIdGenerator, unix_ms: u64) -> Self {
        let id = ids.next(unix_ms);
        self.with_timestamp(unix_ms).with_message_id(id)
    }

    /// Sets `channel` after checking its name (PROTOCOL.md section 5).
    pub fn with_channel(mut self, channel: impl Into<String>) -> Result<Self, ProtocolError> {
        let channel = channel.into();
        validate_channel(&channel)?;
        self.channel = Some(channel);
        Ok(self)
    }

    /// Sets `offset` (server frames only: the publication's position in its channel).
    #[must_use]
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Sets `ack` (client frames only: ask the server to confirm processing).
    #[must_use]
    pub fn with_ack(mut self, ack: bool) -> Self {
        self.ack = ack;
        self
    }

    /// The sender's timestamp, if any.
    #[must_use]
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// The message id, if any.
    #[must_use]
    pub fn message_id(&self) -> Option<&MessageId> {
        self.message_id.as_ref()
    }

    /// The channel, if any.
    #[must_use]
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// The offset, if any.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// Whether an `ack` is asked for.
    #[must_use]
    pub fn ack(&self) -> bool {
        self.ack
    }

    /// Writes the set fields, each preceded by a comma, in wire order.
    fn write_fields(&self, out: &mut String) {
        if let Some(timestamp) = self.timestamp {
            out.push_str(",\"timestamp\":");
            push_u64(out, timestamp);
        }
        if let Some(id) = &self.message_id {
            out.push_str(",\"messageId\":");
            push_json_string(out, id.as_str());
        }
        if let Some(channel) = &self.channel {
            // The channel charset needs no escaping.
            out.push_str(",\"channel\":\"");
            out.push_str(channel);
            out.push('"');
        }
        if let Some(offset) = self.offset {
            out.push_str(",\"offset\":");
            push_u64(out, offset);
        }
        if self.ack {
            out.push_str(",\"ack\":true");
        }
    }
}

impl Meta {
    /// The fields as a decoder read them (already checked).
    pub(crate) fn from_wire(
        timestamp: Option<u64>,
        message_id: Option<MessageId>,
        channel: Option<String>,
        offset: Option<u64>,
        ack: bool,
    ) -> Self {
        Self {
            timestamp,
            message_id,
            channel,
            offset,
            ack,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn null_payload() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

impl Envelope {
    /// An envelope of `kind` carrying the raw JSON `payload`.
    ///
    /// ```
    /// use cerebrum_protocol::Envelope;
    /// let raw = serde_json::value::RawValue::from_string(r#"{"text":"hi"}"#.into()).unwrap();
    /// let envelope = Envelope::new("chat.message", raw)?;
    /// assert_eq!(envelope.payload().get(), r#"{"text":"hi"}"#);
    /// assert!(Envelope::new("Bad Type", serde_json::value::RawValue::NULL.to_owned()).is_err());
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    pub fn new(kind: impl Into<String>, payload: Box<RawValue>) -> Result<Self, ProtocolError> {
        let kind = kind.into();
        validate_type(&kind)?;
        Ok(Self::with_raw(kind, payload))
    }

    /// An envelope of `kind` whose payload is `payload` serialised to JSON (app messages).
    ///
    /// ```
    /// use cerebrum_protocol::Envelope;
    /// let envelope = Envelope::from_value("quiz.answer", &serde_json::json!({"choice": 2}))?;
    /// assert_eq!(envelope.payload().get(), r#"{"choice":2}"#);
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    pub fn from_value<T: Serialize + ?Sized>(
        kind: impl Into<String>,
        payload: &T,
    ) -> Result<Self, ProtocolError> {
        let kind = kind.into();
        validate_type(&kind)?;
        Ok(Self::with_raw(kind, raw_payload(payload, true)?))
    }

    /// An envelope carrying a typed payload of the catalog, after checking it with
    /// [`Payload::validate`]. Only free-form payloads ([`Payload::FREE_FORM`]) get the depth
    /// scan: fixed-shape ones cannot nest deeper than their types.
    pub fn from_payload<P: Payload>(payload: &P) -> Result<Self, ProtocolError> {
        payload.validate().map_err(|err| err.within("payload"))?;
        validate_type(P::TYPE)?;
        let raw = raw_payload(payload, P::FREE_FORM)?;
        Ok(Self::with_raw(P::TYPE.to_owned(), raw))
    }

    /// An envelope as a decoder read it (`kind` and `meta` already checked).
    pub(crate) fn from_wire(kind: String, payload: Box<RawValue>, meta: Meta) -> Self {
        Self {
            kind,
            payload,
            meta,
        }
    }

    /// An envelope of an already checked `kind` and raw payload.
    fn with_raw(kind: String, payload: Box<RawValue>) -> Self {
        Self {
            kind,
            payload,
            meta: Meta::default(),
        }
    }

    /// Sets `timestamp` (milliseconds since the Unix epoch, the sender's clock).
    #[must_use]
    pub fn with_timestamp(mut self, unix_ms: u64) -> Self {
        self.meta = self.meta.with_timestamp(unix_ms);
        self
    }

    /// Sets `messageId`.
    #[must_use]
    pub fn with_message_id(mut self, id: MessageId) -> Self {
        self.meta = self.meta.with_message_id(id);
        self
    }

    /// Sets `timestamp` to `unix_ms` and `messageId` to a fresh id from `ids`: what every sender
    /// does before encoding.
    ///
    /// ```
    /// use cerebrum_protocol::{Envelope, MessageIdGenerator, Ping};
    /// let ids = MessageIdGenerator::new();
    /// let ping = Envelope::from_payload(&Ping(serde_json::json!({"nonce": 1})))?
    ///     .stamped(&ids, 1_732_752_000_000);
    /// assert_eq!(ping.timestamp(), Some(1_732_752_000_000));
    /// assert!(ping.message_id().is_some());
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    #[must_use]
    pub fn stamped(mut self, ids: &MessageIdGenerator, unix_ms: u64) -> Self {
        self.meta = self.meta.stamped(ids, unix_ms);
        self
    }

    /// Sets `channel` after checking its name (PROTOCOL.md section 5).
    pub fn with_channel(mut self, channel: impl Into<String>) -> Result<Self, ProtocolError> {
        self.meta = self.meta.with_channel(channel)?;
        Ok(self)
    }

    /// Sets `offset` (server frames only: the publication's position in its channel).
    #[must_use]
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.meta = self.meta.with_offset(offset);
        self
    }

    /// Sets `ack` (client frames only: ask the server to confirm processing).
    #[must_use]
    pub fn with_ack(mut self, ack: bool) -> Self {
        self.meta = self.meta.with_ack(ack);
        self
    }

    /// Replaces the fields besides `type` and `payload`.
    #[must_use]
    pub fn with_meta(mut self, meta: Meta) -> Self {
        self.meta = meta;
        self
    }

    /// The fields besides `type` and `payload`.
    #[must_use]
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Splits the envelope into its type, raw payload and other fields.
    #[must_use]
    pub fn into_parts(self) -> (String, Box<RawValue>, Meta) {
        (self.kind, self.payload, self.meta)
    }

    /// The message type.
    #[must_use]
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The payload as raw JSON text (`null` when the frame had none).
    #[must_use]
    pub fn payload(&self) -> &RawValue {
        &self.payload
    }

    /// The sender's timestamp, if the frame had one.
    #[must_use]
    pub fn timestamp(&self) -> Option<u64> {
        self.meta.timestamp
    }

    /// The message id, if the frame had one.
    #[must_use]
    pub fn message_id(&self) -> Option<&MessageId> {
        self.meta.message_id.as_ref()
    }

    /// The channel the frame is published to or delivered from.
    #[must_use]
    pub fn channel(&self) -> Option<&str> {
        self.meta.channel.as_deref()
    }

    /// The publication's offset in its channel.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        self.meta.offset
    }

    /// Whether the sender asked for an `ack`.
    #[must_use]
    pub fn ack(&self) -> bool {
        self.meta.ack
    }

    /// Reads the payload into any deserialisable type; errors name the offending field as
    /// `payload.<path>` (with the feature `lean-errors`, only as `payload`: see the crate's
    /// features).
    ///
    /// ```
    /// use cerebrum_protocol::decode;
    /// let envelope = decode(r#"{"type":"quiz.answer","payload":{"choice":"two"}}"#)?;
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Answer { choice: u8 }
    /// let err = envelope.payload_as::<Answer>().unwrap_err();
    /// # #[cfg(not(feature = "lean-errors"))]
    /// assert!(err.to_string().contains("payload.choice"));
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        let text = self.payload.get();
        serde_json::from_str(text).map_err(|err| payload_error::<T>(text, &err))
    }

    /// Reads the payload as the catalog type `P`: checks that the envelope's type is `P::TYPE`,
    /// deserialises, then runs [`Payload::validate`].
    pub fn typed<P: Payload>(&self) -> Result<P, ProtocolError> {
        if self.kind != P::TYPE {
            return Err(ProtocolError::validation(
                "type",
                format!("expected `{}`, found `{}`", P::TYPE, self.kind),
            ));
        }
        let payload: P = self.payload_as()?;
        payload.validate().map_err(|err| err.within("payload"))?;
        Ok(payload)
    }
}

/// `payload` serialised to raw JSON; with `scan`, refused when it nests too deep.
fn raw_payload<T: Serialize + ?Sized>(
    payload: &T,
    scan: bool,
) -> Result<Box<RawValue>, ProtocolError> {
    let raw = serde_json::value::to_raw_value(payload)
        .map_err(|err| ProtocolError::validation("payload", err.to_string()))?;
    if scan {
        check_depth(raw.get(), MAX_DEPTH - 1)?;
    }
    Ok(raw)
}

/// Re-reads `text` tracking the path, to name the field that made deserialisation fail.
#[cfg(not(feature = "lean-errors"))]
fn payload_error<T: DeserializeOwned>(text: &str, _first: &serde_json::Error) -> ProtocolError {
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => ProtocolError::validation("payload", "does not match the expected shape"),
        Err(err) => {
            let path = err.path().to_string();
            let reason = without_position(err.inner());
            ProtocolError::validation(path, reason).within("payload")
        }
    }
}

/// Feature `lean-errors`: serde_json's own message, under the field `payload` (no second pass
/// to find the path, and no serde_path_to_error in the build).
#[cfg(feature = "lean-errors")]
#[allow(clippy::extra_unused_type_parameters)] // The signature of the path-naming version.
fn payload_error<T: DeserializeOwned>(_text: &str, first: &serde_json::Error) -> ProtocolError {
    ProtocolError::validation("payload", without_position(first))
}

/// A serde_json error message without its " at line L column C" suffix.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.payload.get() == other.payload.get()
            && self.meta == other.meta
    }
}

impl Eq for Envelope {}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Envelope");
        s.field("type", &self.kind);
        if self.kind == crate::Auth::TYPE {
            // Tokens are secrets: never in logs.
            s.field("payload", &"<redacted>");
        } else {
            s.field("payload", &self.payload.get());
        }
        s.field("meta", &self.meta).finish()
    }
}

/// The envelope's fields as they arrive, each kept raw so that every one gets its own typed
/// error.
#[derive(Deserialize)]
struct WireIn<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "messageId", borrow, default)]
    message_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    channel: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offset: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ack: Option<&'a RawValue>,
}

/// Decodes one text frame.
///
/// Accepts level-0 frames without `timestamp` and `messageId`, ignores unknown fields, and
/// refuses (with a typed error naming the field) frames over [`MAX_FRAME_BYTES`], nested deeper
/// than [`MAX_DEPTH`], that are not JSON objects, or whose envelope fields break their rules.
///
/// ```
/// use cerebrum_protocol::{decode, ErrorCode};
/// let pong = decode(r#"{"type":"pong","payload":{"nonce":7}}"#)?;
/// assert_eq!(pong.kind(), "pong");
/// assert_eq!(pong.message_id(), None);
/// assert_eq!(decode(r#"{"payload":1}"#).unwrap_err().code(), ErrorCode::InvalidEnvelope);
/// assert_eq!(decode("{").unwrap_err().code(), ErrorCode::InvalidJson);
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
pub fn decode(text: &str) -> Result<Envelope, ProtocolError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge {
            size: text.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    check_depth(text, MAX_DEPTH)?;
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => ProtocolError::NotAnObject,
            Err(err) => invalid_json(&err),
        });
    }
    let wire: WireIn<'_> = serde_json::from_str(text).map_err(|err| {
        if err.is_data() {
            ProtocolError::InvalidEnvelope {
                field: "envelope",
                reason: without_position(&err),
            }
        } else {
            invalid_json(&err)
        }
    })?;

    let kind = match wire.kind {
        None => return Err(ProtocolError::MissingType),
        Some(raw) => string_field(raw, "type")?.into_owned(),
    };
    validate_type(&kind)?;
    let message_id = match wire.message_id {
        None => None,
        Some(raw) => Some(MessageId::new(string_field(raw, "messageId")?)?),
    };
    let channel = match wire.channel {
        None => None,
        Some(raw) => {
            let name = serde_json::from_str::<Cow<'_, str>>(raw.get())
                .map_err(|_| ProtocolError::validation("channel", "must be a string"))?;
            validate_channel(&name)?;
            Some(name.into_owned())
        }
    };
    let meta = Meta {
        timestamp: wire.timestamp.map(timestamp_field).transpose()?,
        message_id,
        channel,
        offset: wire
            .offset
            .map(|raw| unsigned_field(raw, "offset"))
            .transpose()?,
        ack: match wire.ack {
            None => false,
            Some(raw) => serde_json::from_str::<bool>(raw.get()).map_err(|_| {
                ProtocolError::InvalidEnvelope {
                    field: "ack",
                    reason: "must be a boolean".to_owned(),
                }
            })?,
        },
    };
    Ok(Envelope {
        kind,
        payload: wire.payload.map_or_else(null_payload, RawValue::to_owned),
        meta,
    })
}

/// Decodes one frame given as bytes: invalid UTF-8 is [`ProtocolError::InvalidJson`].
///
/// ```
/// use cerebrum_protocol::{decode_bytes, ErrorCode};
/// assert_eq!(decode_bytes(&[0xff, 0xfe]).unwrap_err().code(), ErrorCode::InvalidJson);
/// ```
pub fn decode_bytes(bytes: &[u8]) -> Result<Envelope, ProtocolError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge {
            size: bytes.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|err| ProtocolError::InvalidJson {
        detail: format!("invalid UTF-8 at byte {}", err.valid_up_to()),
    })?;
    decode(text)
}

/// Encodes an envelope as one compact JSON text frame, fields in the order of PROTOCOL.md:
/// `type`, `payload`, `timestamp`, `messageId`, then `channel`, `offset`, `ack` when set.
pub fn encode(envelope: &Envelope) -> String {
    let mut out = String::with_capacity(envelope.payload.get().len() + 96);
    encode_into(envelope, &mut out);
    out
}

/// Encodes an envelope into `out` (cleared first), reusing its allocation.
pub fn encode_into(envelope: &Envelope, out: &mut String) {
    out.clear();
    // The type charset needs no escaping.
    out.push_str("{\"type\":\"");
    out.push_str(&envelope.kind);
    out.push_str("\",\"payload\":");
    out.push_str(envelope.payload.get());
    envelope.meta.write_fields(out);
    out.push('}');
}

fn push_u64(out: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    let mut n = value;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

fn push_json_string(out: &mut String, value: &str) {
    if value
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else {
        // serde_json's escaping of a `&str` cannot fail.
        out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| String::from("\"\"")));
    }
}

/// A frame of a known type read in one pass, payload straight into its struct.
#[derive(Deserialize)]
#[serde(bound = "P: DeserializeOwned")]
struct WireTyped<'a, P> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    payload: P,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(rename = "messageId", default)]
    message_id: Option<MessageId>,
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    ack: Option<bool>,
}

/// Decodes a frame that must carry the catalog payload `P`, in one pass (the fast path for a
/// receiver that knows what it expects). Same rules and errors as [`decode`] followed by
/// [`Envelope::typed`].
///
/// ```
/// use cerebrum_protocol::{decode_payload, Pong};
/// let (meta, pong) = decode_payload::<Pong>(r#"{"type":"pong","payload":{"nonce":7},"messageId":"m1"}"#)?;
/// assert_eq!(pong.0["nonce"], 7);
/// assert_eq!(meta.message_id().map(|id| id.as_str()), Some("m1"));
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
pub fn decode_payload<P: Payload>(text: &str) -> Result<(Meta, P), ProtocolError> {
    let fast = (text.len() <= MAX_FRAME_BYTES && check_depth(text, MAX_DEPTH).is_ok())
        .then(|| serde_json::from_str::<WireTyped<'_, P>>(text).ok())
        .flatten();
    if let Some(wire) = fast {
        let channel_ok = wire
            .channel
            .as_deref()
            .is_none_or(|name| validate_channel(name).is_ok());
        if wire.kind == P::TYPE && channel_ok && wire.payload.validate().is_ok() {
            let meta = Meta {
                timestamp: wire.timestamp,
                message_id: wire.message_id,
                channel: wire.channel.map(Cow::into_owned),
                offset: wire.offset,
                ack: wire.ack.unwrap_or(false),
            };
            return Ok((meta, wire.payload));
        }
    }
    // The slow path names exactly what is wrong (and accepts what the fast path is too strict
    // for, such as a float timestamp).
    let envelope = decode(text)?;
    let payload = envelope.typed::<P>()?;
    Ok((envelope.meta, payload))
}

/// Encodes a catalog payload with `meta` in one pass, without an intermediate raw copy (the
/// fast path for senders of typed messages). The payload is checked with [`Payload::validate`].
///
/// ```
/// use cerebrum_protocol::{encode_payload, Meta, Pong};
/// let text = encode_payload(&Pong(serde_json::json!(1)), &Meta::default().with_timestamp(5))?;
/// assert_eq!(text, r#"{"type":"pong","payload":1,"timestamp":5}"#);
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
pub fn encode_payload<P: Payload>(payload: &P, meta: &Meta) -> Result<String, ProtocolError> {
    payload.validate().map_err(|err| err.within("payload"))?;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(P::TYPE.as_bytes());
    out.extend_from_slice(b"\",\"payload\":");
    let start = out.len();
    serde_json::to_writer(&mut out, payload)
        .map_err(|err| ProtocolError::validation("payload", err.to_string()))?;
    let mut text = String::from_utf8(out)
        .map_err(|_| ProtocolError::validation("payload", "serialised to invalid UTF-8"))?;
    if P::FREE_FORM {
        check_depth(&text[start..], MAX_DEPTH - 1)?;
    }
    meta.write_fields(&mut text);
    text.push('}');
    Ok(text)
}

fn invalid_json(err: &serde_json::Error) -> ProtocolError {
    ProtocolError::InvalidJson {
        detail: err.to_string(),
    }
}

fn string_field<'a>(raw: &'a RawValue, field: &'static str) -> Result<Cow<'a, str>, ProtocolError> {
    serde_json::from_str::<Cow<'a, str>>(raw.get()).map_err(|_| ProtocolError::InvalidEnvelope {
        field,
        reason: "must be a string".to_owned(),
    })
}

fn unsigned_field(raw: &RawValue, field: &'static str) -> Result<u64, ProtocolError> {
    serde_json::from_str::<u64>(raw.get()).map_err(|_| ProtocolError::InvalidEnvelope {
        field,
        reason: "must be a non-negative integer".to_owned(),
    })
}

/// Timestamps are integers; a float with no fraction (as some JSON encoders write) is accepted.
fn timestamp_field(raw: &RawValue) -> Result<u64, ProtocolError> {
    if let Ok(ms) = serde_json::from_str::<u64>(raw.get()) {
        return Ok(ms);
    }
    match serde_json::from_str::<f64>(raw.get()) {
        Ok(ms) if ms.is_finite() && ms >= 0.0 && ms.fract() == 0.0 && ms < 9.007e15 => {
            Ok(ms as u64)
        }
        _ => Err(ProtocolError::InvalidEnvelope {
            field: "timestamp",
            reason: "must be a non-negative integer of milliseconds".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn code_of(text: &str) -> ErrorCode {
        decode(text).unwrap_err().code()
    }

    #[test]
    fn level_zero_frame_without_id_and_timestamp_decodes() {
        let envelope = decode(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(envelope.kind(), "ping");
        assert_eq!(envelope.payload().get(), "null");
        assert_eq!(envelope.timestamp(), None);
        assert_eq!(envelope.message_id(), None);
        assert!(!envelope.ack());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let envelope = decode(r#"{"type":"x","future":{"a":[1]},"payload":2}"#).unwrap();
        assert_eq!(envelope.payload().get(), "2");
    }

    #[test]
    fn each_envelope_rule_has_its_code_and_field() {
        assert_eq!(code_of("not json"), ErrorCode::InvalidJson);
        assert_eq!(code_of(r#"{"type":"x""#), ErrorCode::InvalidJson);
        assert_eq!(code_of(r#"{"type":"x"} trailing"#), ErrorCode::InvalidJson);
        assert_eq!(code_of("42"), ErrorCode::InvalidEnvelope);
        assert_eq!(code_of(r#""text""#), ErrorCode::InvalidEnvelope);
        assert_eq!(code_of("{}"), ErrorCode::InvalidEnvelope);
        assert_eq!(code_of(r#"{"type":null}"#), ErrorCode::InvalidEnvelope);
        assert_eq!(code_of(r#"{"type":7}"#), ErrorCode::InvalidEnvelope);
        assert_eq!(code_of(r#"{"type":"Bad"}"#), ErrorCode::InvalidEnvelope);
        assert_eq!(
            code_of(r#"{"type":"x","messageId":""}"#),
            ErrorCode::InvalidEnvelope
        );
        assert_eq!(
            code_of(r#"{"type":"x","messageId":5}"#),
            ErrorCode::InvalidEnvelope
        );
        assert_eq!(
            code_of(r#"{"type":"x","type":"y"}"#),
            ErrorCode::InvalidEnvelope
        );
        assert_eq!(
            code_of(r#"{"type":"x","timestamp":-1}"#),
            ErrorCode::InvalidEnvelope
        );
        assert_eq!(
            code_of(r#"{"type":"x","ack":"yes"}"#),
            ErrorCode::InvalidEnvelope
        );
        assert_eq!(
            code_of(r#"{"type":"x","channel":"a b"}"#),
            ErrorCode::ValidationFailed
        );
        let err = decode(r#"{"type":"x","offset":1.5}"#).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::InvalidEnvelope {
                field: "offset",
                reason: "must be a non-negative integer".into()
            }
        );
    }

    #[test]
    fn limits_are_enforced_before_parsing() {
        let big = format!(
            r#"{{"type":"x","payload":"{}"}}"#,
            "a".repeat(MAX_FRAME_BYTES)
        );
        assert_eq!(code_of(&big), ErrorCode::TooLarge);
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            decode(&deep).unwrap_err(),
            ProtocolError::TooDeep { limit: MAX_DEPTH }
        );
    }

    #[test]
    fn float_timestamps_without_fraction_are_accepted() {
        let envelope = decode(r#"{"type":"x","timestamp":1732752000000.0}"#).unwrap();
        assert_eq!(envelope.timestamp(), Some(1_732_752_000_000));
        assert_eq!(
            code_of(r#"{"type":"x","timestamp":1.5}"#),
            ErrorCode::InvalidEnvelope
        );
    }

    #[test]
    fn encoding_escapes_message_ids_and_keeps_field_order() {
        let envelope = Envelope::from_value("x", &1)
            .unwrap()
            .with_timestamp(0)
            .with_message_id(MessageId::new("a\"b\n").unwrap())
            .with_channel("room:1")
            .unwrap()
            .with_offset(u64::MAX)
            .with_ack(true);
        let text = encode(&envelope);
        assert_eq!(
            text,
            r#"{"type":"x","payload":1,"timestamp":0,"messageId":"a\"b\n","channel":"room:1","offset":18446744073709551615,"ack":true}"#
        );
        assert_eq!(decode(&text).unwrap(), envelope);
        assert_eq!(serde_json::to_string(&envelope).unwrap(), text);
    }

    #[test]
    #[cfg(not(feature = "lean-errors"))]
    fn payload_errors_name_the_nested_field() {
        let envelope = decode(
            r#"{"type":"collaborative_session_update","payload":{"sessionId":"s","topic":"t","activeUsers":1,"participants":[{"userId":"u","userName":"n","joinedAt":"soon"}]}}"#,
        )
        .unwrap();
        let err = envelope.typed::<crate::CollaborativeSession>().unwrap_err();
        match err {
            ProtocolError::Validation { field, .. } => {
                assert_eq!(field, "payload.participants[0].joinedAt");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    #[cfg(feature = "lean-errors")]
    fn lean_payload_errors_name_the_payload_and_keep_the_reason() {
        let envelope = decode(r#"{"type":"ack","payload":{"messageId":7}}"#).unwrap();
        match envelope.typed::<crate::Ack>().unwrap_err() {
            ProtocolError::Validation { field, reason } => {
                assert_eq!(field, "payload");
                assert!(reason.starts_with("invalid type: integer `7`"), "{reason}");
                assert!(!reason.contains("line"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn auth_tokens_are_redacted_in_debug_output() {
        let envelope = decode(r#"{"type":"auth","payload":{"token":"secret-jwt"}}"#).unwrap();
        assert!(!format!("{envelope:?}").contains("secret-jwt"));
    }
}
