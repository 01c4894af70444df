//! [`Text`]: an encoded frame, shared by every subscriber it is queued to.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

/// The UTF-8 text of one encoded frame. Cloning it shares the bytes (a reference count), so a
/// publication encoded once is queued to every subscriber without a copy.
///
/// It also holds the frame's other wire forms, each made once, by the first connection that
/// needs it, and shared by every other: the permessage-deflate form ([`Text::deflated`]).
///
/// Built only from `String` and `&str`, so it is always valid UTF-8; the driver hands the
/// bytes to its WebSocket library as a text frame.
///
/// ```
/// use cerebrum_server_core::Text;
/// let text = Text::from(String::from(r#"{"type":"pong"}"#));
/// let shared = text.clone();
/// assert_eq!(shared.as_str(), r#"{"type":"pong"}"#);
/// assert_eq!(text.len(), 15);
/// ```
#[derive(Clone, Default)]
pub struct Text(Arc<Forms>);

/// A frame's bytes and the wire forms made from them.
#[derive(Default)]
struct Forms {
    json: Bytes,
    /// The permessage-deflate form: `None` when compressing does not pay (too short, or no
    /// smaller).
    deflated: OnceLock<Option<Bytes>>,
}

impl Text {
    /// A frame of static text.
    #[must_use]
    pub fn from_static(text: &'static str) -> Self {
        Self::from_bytes(Bytes::from_static(text.as_bytes()))
    }

    fn from_bytes(json: Bytes) -> Self {
        Self(Arc::new(Forms {
            json,
            deflated: OnceLock::new(),
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

    /// The shared bytes (for the driver's WebSocket library).
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0.json.clone()
    }

    /// The frame's permessage-deflate form: made by `compress` the first time any clone asks
    /// (`None` when it does not pay), then shared by every clone.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use cerebrum_server_core::Text;
    /// let text = Text::from("aaaaaaaaaaaaaaaa");
    /// let shared = text.clone();
    /// assert_eq!(text.deflated(|_| Some(Bytes::from_static(b"KL\x84\x01"))).map(|b| b.len()), Some(4));
    /// // Made once: the second closure is not called.
    /// assert_eq!(shared.deflated(|_| unreachable!()).map(|b| b.len()), Some(4));
    /// ```
    pub fn deflated(&self, compress: impl FnOnce(&[u8]) -> Option<Bytes>) -> Option<Bytes> {
        self.0
            .deflated
            .get_or_init(|| compress(&self.0.json))
            .clone()
    }

    /// The same bytes without the wire forms made from them: what a channel's history keeps,
    /// so that a compressed form lives only as long as the queued frames that need it.
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
