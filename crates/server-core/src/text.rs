//! [`Text`]: an encoded frame, shared by every subscriber it is queued to, with the other forms
//! a connection may send it in ([`crate::Encoding`]), each built once for all of them.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use cerebrum_protocol::{Encoding, MsgpackError, json_to_msgpack};

/// The forms of one frame, shared by every clone of its [`Text`]. Each form but the JSON text
/// is built the first time a connection needs it, and kept for the others.
#[derive(Default)]
struct Forms {
    /// The JSON text (always UTF-8).
    json: Bytes,
    /// The MessagePack form, once a MessagePack connection asked for it.
    msgpack: OnceLock<Result<Bytes, MsgpackError>>,
    /// The permessage-deflate form of the JSON text, once a connection that negotiated the
    /// extension asked for it: `None` when compressing does not pay (too short, or no smaller).
    deflated_json: OnceLock<Option<Bytes>>,
    /// The same of the MessagePack form.
    deflated_msgpack: OnceLock<Option<Bytes>>,
}

/// One encoded frame. Cloning it shares it (one reference count), so a publication encoded once
/// is queued to every subscriber without a copy, and a form other than JSON
/// ([`Text::msgpack`]) is built by the first connection that sends it and reused by all.
///
/// Built only from `String` and `&'static str`, so its JSON text is always valid UTF-8; the
/// driver hands the bytes to its WebSocket library as a text frame.
///
/// ```
/// use cerebrum_server_core::Text;
/// let text = Text::from(String::from(r#"{"type":"pong"}"#));
/// let shared = text.clone();
/// assert_eq!(shared.as_str(), r#"{"type":"pong"}"#);
/// assert_eq!(text.len(), 15);
/// // The MessagePack form is built once, for every clone.
/// let bytes = text.msgpack()?;
/// assert_eq!(&bytes[..], b"\x81\xa4type\xa4pong");
/// assert_eq!(shared.msgpack()?.as_ptr(), bytes.as_ptr());
/// # Ok::<(), cerebrum_protocol::MsgpackError>(())
/// ```
#[derive(Clone, Default)]
pub struct Text(Arc<Forms>);

impl Text {
    /// A frame of static text.
    #[must_use]
    pub fn from_static(text: &'static str) -> Self {
        Self::from_bytes(Bytes::from_static(text.as_bytes()))
    }

    fn from_bytes(json: Bytes) -> Self {
        Self(Arc::new(Forms {
            json,
            msgpack: OnceLock::new(),
            deflated_json: OnceLock::new(),
            deflated_msgpack: OnceLock::new(),
        }))
    }

    /// The frame's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Always UTF-8 by construction; the fallback is never taken.
        std::str::from_utf8(&self.0.json).unwrap_or_default()
    }

    /// The frame's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.json
    }

    /// Its length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.json.len()
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.json.is_empty()
    }

    /// The shared bytes of the JSON text (for the driver's WebSocket library; one reference
    /// count, the `Text` is kept).
    #[must_use]
    pub fn json_bytes(&self) -> Bytes {
        self.0.json.clone()
    }

    /// The frame's MessagePack form (subprotocol `cerebrum.v1.msgpack`): transcoded by the
    /// first caller, shared by every clone after that. An error (text that is not JSON, which
    /// the server never queues) is kept as well.
    pub fn msgpack(&self) -> Result<Bytes, MsgpackError> {
        self.0
            .msgpack
            .get_or_init(|| json_to_msgpack(self.as_str()).map(Bytes::from))
            .clone()
    }

    /// The permessage-deflate form of the frame in `encoding`: made by `compress` (from the
    /// bytes of that form) the first time any clone asks, then shared by every clone; `None`
    /// when compressing does not pay, or the frame has no such form.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use cerebrum_server_core::{Encoding, Text};
    /// let text = Text::from(r#"{"type":"x","payload":"aaaaaaaaaaaaaaaa"}"#);
    /// let shared = text.clone();
    /// let made = text.deflated(Encoding::Json, |_| Some(Bytes::from_static(b"4 bytes")));
    /// assert_eq!(made.map(|b| b.len()), Some(7));
    /// // Made once: the second closure is not called.
    /// assert!(shared.deflated(Encoding::Json, |_| unreachable!()).is_some());
    /// ```
    pub fn deflated(
        &self,
        encoding: Encoding,
        compress: impl FnOnce(&[u8]) -> Option<Bytes>,
    ) -> Option<Bytes> {
        match encoding {
            Encoding::MessagePack => self
                .0
                .deflated_msgpack
                .get_or_init(|| compress(&self.msgpack().ok()?))
                .clone(),
            _ => self
                .0
                .deflated_json
                .get_or_init(|| compress(&self.0.json))
                .clone(),
        }
    }

    /// The same bytes without the wire forms made from them: what a channel's history keeps,
    /// so that a MessagePack or compressed form lives only as long as the queued frames that
    /// need it.
    #[must_use]
    pub fn detached(&self) -> Self {
        Self::from_bytes(self.0.json.clone())
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self::from_bytes(Bytes::from(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self::from_bytes(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.0.json == other.0.json
    }
}

impl Eq for Text {}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.json.hash(state);
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_is_one_pointer_and_shares_every_form() {
        assert_eq!(size_of::<Text>(), size_of::<usize>());
        let text = Text::from(r#"{"type":"ping","payload":[1,2.5]}"#);
        let clones: Vec<Text> = (0..4).map(|_| text.clone()).collect();
        let first = clones[3].msgpack().unwrap_or_default();
        assert!(!first.is_empty());
        for clone in &clones {
            assert_eq!(clone.msgpack().map(|b| b.as_ptr()), Ok(first.as_ptr()));
        }
        assert_eq!(text.json_bytes(), clones[0].as_bytes());
    }

    #[test]
    fn text_that_is_not_json_has_no_msgpack_form() {
        let text = Text::from_static("not json");
        assert!(matches!(
            text.msgpack(),
            Err(MsgpackError::InvalidJson { .. })
        ));
        assert_eq!(text, Text::from("not json"));
    }
}
