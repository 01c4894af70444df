//! [`Text`]: an encoded frame, shared by every subscriber it is queued to.

use bytes::Bytes;

/// The UTF-8 text of one encoded frame. Cloning it shares the bytes (a reference count), so a
/// publication encoded once is queued to every subscriber without a copy.
///
/// Built only from `String` and `&'static str`, so it is always valid UTF-8; the driver hands
/// the bytes to its WebSocket library as a text frame.
///
/// ```
/// use cerebrum_server_core::Text;
/// let text = Text::from(String::from(r#"{"type":"pong"}"#));
/// let shared = text.clone();
/// assert_eq!(shared.as_str(), r#"{"type":"pong"}"#);
/// assert_eq!(text.len(), 15);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(Bytes);

impl Text {
    /// A frame of static text.
    #[must_use]
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// The frame's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Always UTF-8 by construction; the fallback is never taken.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The frame's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Its length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The shared bytes (for the driver's WebSocket library).
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
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
