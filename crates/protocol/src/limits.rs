//! The limits of PROTOCOL.md and the checks of the envelope's string fields.

use crate::ProtocolError;

/// Largest frame, in bytes, that a peer accepts (PROTOCOL.md section 7: larger closes 1009).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Deepest nesting of JSON arrays and objects accepted in one frame, the envelope included.
///
/// Deeper frames are refused with [`ProtocolError::TooDeep`] before any parsing, so a hostile
/// `[[[[…` of any depth costs one linear scan and never the stack.
pub const MAX_DEPTH: usize = 32;

/// Longest `type`, in characters.
pub const MAX_TYPE_LEN: usize = 64;

/// Longest `messageId`, in characters.
pub const MAX_MESSAGE_ID_LEN: usize = 64;

/// Longest channel name, in characters.
pub const MAX_CHANNEL_LEN: usize = 128;

/// Longest study topic, in characters (PROTOCOL.md section 7: bounded so that a presence update,
/// which echoes it, stays under the outbound frame limit).
pub const MAX_TOPIC_LEN: usize = 128;

/// Longest user name listed in a presence update, in characters (longer names are cut).
pub const MAX_USER_NAME_LEN: usize = 128;

/// Most participants listed in one `collaborative_session_update` (the earliest joined first);
/// `activeUsers` still counts everyone.
pub const MAX_LISTED_PARTICIPANTS: usize = 100;

/// Checks a study topic: at most 128 characters, at least one ASCII letter or digit (its slug
/// names the session channel). Errors name field `topic`.
///
/// ```
/// use cerebrum_protocol::validate_topic;
/// assert!(validate_topic("Cell Biology").is_ok());
/// assert!(validate_topic(&"a".repeat(129)).is_err());
/// assert!(validate_topic(" - ").is_err());
/// ```
pub fn validate_topic(topic: &str) -> Result<(), ProtocolError> {
    if topic.chars().count() > MAX_TOPIC_LEN {
        return Err(ProtocolError::validation(
            "topic",
            "longer than 128 characters",
        ));
    }
    crate::topic_slug(topic).map(drop)
}

/// Checks a message `type`: 1-64 characters of `[a-z0-9_.:-]`.
///
/// ```
/// use cerebrum_protocol::validate_type;
/// assert!(validate_type("study_metrics_update").is_ok());
/// assert!(validate_type("Study").is_err());
/// ```
pub fn validate_type(kind: &str) -> Result<(), ProtocolError> {
    let invalid = |reason: &str| ProtocolError::InvalidEnvelope {
        field: "type",
        reason: reason.to_owned(),
    };
    if kind.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if kind.len() > MAX_TYPE_LEN {
        return Err(invalid("longer than 64 characters"));
    }
    if !kind
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b':' | b'-'))
    {
        return Err(invalid("only a-z, 0-9 and _ . : - are allowed"));
    }
    Ok(())
}

/// Checks a `messageId`: 1-64 characters.
///
/// ```
/// use cerebrum_protocol::validate_message_id;
/// assert!(validate_message_id("01JD3Q7W6N").is_ok());
/// assert!(validate_message_id("").is_err());
/// ```
pub fn validate_message_id(id: &str) -> Result<(), ProtocolError> {
    let invalid = |reason: &str| ProtocolError::InvalidEnvelope {
        field: "messageId",
        reason: reason.to_owned(),
    };
    if id.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if id.chars().count() > MAX_MESSAGE_ID_LEN {
        return Err(invalid("longer than 64 characters"));
    }
    Ok(())
}

/// Checks a channel name: 1-128 characters of `[A-Za-z0-9_:.@-]` (PROTOCOL.md section 5).
///
/// A bad name is a [`ProtocolError::Validation`] of field `channel`.
///
/// ```
/// use cerebrum_protocol::validate_channel;
/// assert!(validate_channel("session:cell-biology").is_ok());
/// assert!(validate_channel("no spaces").is_err());
/// ```
pub fn validate_channel(name: &str) -> Result<(), ProtocolError> {
    if name.is_empty() {
        return Err(ProtocolError::validation("channel", "must not be empty"));
    }
    if name.len() > MAX_CHANNEL_LEN {
        return Err(ProtocolError::validation(
            "channel",
            "longer than 128 characters",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'@' | b'-'))
    {
        return Err(ProtocolError::validation(
            "channel",
            "only A-Z, a-z, 0-9 and _ : . @ - are allowed",
        ));
    }
    Ok(())
}

/// Refuses JSON text that nests arrays and objects deeper than `limit`.
///
/// One pass over the bytes that skips string contents (with their escapes); it does not check
/// that the text is valid JSON, only that parsing it cannot go deeper than `limit`.
///
/// ```
/// use cerebrum_protocol::check_depth;
/// assert!(check_depth(r#"{"a":[{"b":"[[[["}]}"#, 3).is_ok());
/// assert!(check_depth("[[[[]]]]", 3).is_err());
/// ```
pub fn check_depth(text: &str, limit: usize) -> Result<(), ProtocolError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                // Jump over the string (most of a frame's bytes) to its closing quote,
                // stepping over escapes; memchr searches many bytes at a time.
                i += 1;
                loop {
                    let Some(rest) = bytes.get(i..) else {
                        return Ok(());
                    };
                    match memchr::memchr2(b'"', b'\\', rest) {
                        // Unterminated: not our concern, the parser reports it.
                        None => return Ok(()),
                        Some(at) if rest[at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at + 1;
                            break;
                        }
                    }
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(ProtocolError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Whether a notification's `actionUrl` is safe to put in a link: an `http://` or `https://`
/// URL, or a path starting with `/` (not `//`, which browsers read as another host). Anything
/// else (`javascript:`, `data:`, relative text) is refused by `POST /api/notifications` with 400
/// and rendered as plain text by dashboards (PROTOCOL.md section 7).
///
/// ```
/// use cerebrum_protocol::is_safe_action_url;
/// assert!(is_safe_action_url("/progress"));
/// assert!(is_safe_action_url("https://example.org/exams?id=4"));
/// assert!(!is_safe_action_url("javascript:alert(1)"));
/// assert!(!is_safe_action_url(" JavaScript:alert(1)"));
/// assert!(!is_safe_action_url("//evil.example/x"));
/// assert!(!is_safe_action_url("progress"));
/// ```
#[must_use]
pub fn is_safe_action_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    if let Some(path) = url.strip_prefix('/') {
        return !path.starts_with('/') && !path.starts_with('\\');
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    !rest.is_empty() && !rest.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_rules() {
        assert!(validate_type("a").is_ok());
        assert!(validate_type("app.chat:message-v2_x").is_ok());
        assert!(validate_type(&"a".repeat(64)).is_ok());
        assert!(validate_type(&"a".repeat(65)).is_err());
        assert!(validate_type("").is_err());
        assert!(validate_type("with space").is_err());
        assert!(validate_type("UPPER").is_err());
        assert!(validate_type("é").is_err());
    }

    #[test]
    fn message_id_counts_characters_not_bytes() {
        assert!(validate_message_id(&"é".repeat(64)).is_ok());
        assert!(validate_message_id(&"é".repeat(65)).is_err());
    }

    #[test]
    fn channel_rules() {
        assert!(validate_channel("user:alice@example.org").is_ok());
        assert!(validate_channel("system").is_ok());
        assert!(validate_channel(&"c".repeat(128)).is_ok());
        assert!(validate_channel(&"c".repeat(129)).is_err());
        assert!(validate_channel("a/b").is_err());
        let err = validate_channel("").unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::ValidationFailed);
    }

    #[test]
    fn depth_scan_survives_truncated_strings_and_escapes() {
        assert!(check_depth(r#"["abc"#, 1).is_ok());
        assert!(check_depth(r#"["abc\"#, 1).is_ok());
        assert!(check_depth("\"\\", 1).is_ok());
        assert!(check_depth(r#"[["a\"b"]]"#, 1).is_err());
    }

    #[test]
    fn depth_ignores_brackets_in_strings_and_escapes() {
        assert!(check_depth(r#"["\"[[[[[[", "\\"]"#, 1).is_ok());
        assert!(check_depth(r#"[["\\"]]"#, 1).is_err());
        assert!(check_depth(&"[".repeat(100_000), MAX_DEPTH).is_err());
        assert!(check_depth(&"[".repeat(MAX_DEPTH), MAX_DEPTH).is_ok());
    }
}
