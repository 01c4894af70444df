//! Channel names: namespaces and the session channel of a study topic (PROTOCOL.md section 5).

use crate::{MAX_CHANNEL_LEN, ProtocolError};

/// The channel every connection is on, where the server broadcasts `system_status`.
pub const SYSTEM_CHANNEL: &str = "system";

/// Prefix of a study topic's presence channel.
pub const SESSION_PREFIX: &str = "session:";

/// Prefix of a user's private channel.
pub const USER_PREFIX: &str = "user:";

/// The namespace of a channel: what decides who may subscribe and publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Namespace<'a> {
    /// `system`: everyone subscribes, only the server publishes.
    System,
    /// `user:<userId>`: that user only; the server publishes.
    User(&'a str),
    /// `session:<topic-slug>`: authenticated users; presence.
    Session(&'a str),
    /// Anything else: governed by the token's `channels` claim.
    App(&'a str),
}

impl<'a> Namespace<'a> {
    /// Classifies a (valid) channel name.
    ///
    /// ```
    /// use cerebrum_protocol::Namespace;
    /// assert_eq!(Namespace::of("user:u1"), Namespace::User("u1"));
    /// assert_eq!(Namespace::of("system"), Namespace::System);
    /// assert_eq!(Namespace::of("chat:room-1"), Namespace::App("chat"));
    /// ```
    #[must_use]
    pub fn of(channel: &'a str) -> Self {
        if channel == SYSTEM_CHANNEL {
            return Self::System;
        }
        if let Some(user) = channel.strip_prefix(USER_PREFIX) {
            return Self::User(user);
        }
        if let Some(slug) = channel.strip_prefix(SESSION_PREFIX) {
            return Self::Session(slug);
        }
        Self::App(channel.split(':').next().unwrap_or(channel))
    }
}

/// The slug of a study topic: lower-case ASCII letters and digits, other runs turned into one
/// `-`. A topic without a single ASCII letter or digit is refused (field `topic`).
///
/// ```
/// use cerebrum_protocol::topic_slug;
/// assert_eq!(topic_slug("Cell Biology")?, "cell-biology");
/// assert_eq!(topic_slug("  DNA  Replication & Repair ")?, "dna-replication-repair");
/// assert!(topic_slug("   ").is_err());
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
pub fn topic_slug(topic: &str) -> Result<String, ProtocolError> {
    const MAX_SLUG: usize = MAX_CHANNEL_LEN - SESSION_PREFIX.len();
    let mut slug = String::with_capacity(topic.len().min(MAX_SLUG));
    let mut pending_dash = false;
    for c in topic.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                if slug.len() + 2 > MAX_SLUG {
                    break;
                }
                slug.push('-');
            }
            pending_dash = false;
            slug.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
        if slug.len() >= MAX_SLUG {
            break;
        }
    }
    if slug.is_empty() {
        return Err(ProtocolError::validation(
            "topic",
            "must contain at least one ASCII letter or digit",
        ));
    }
    Ok(slug)
}

/// The presence channel of a study topic: `session:<slug(topic)>`.
///
/// ```
/// use cerebrum_protocol::session_channel;
/// assert_eq!(session_channel("Genetics")?, "session:genetics");
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
pub fn session_channel(topic: &str) -> Result<String, ProtocolError> {
    Ok(format!("{SESSION_PREFIX}{}", topic_slug(topic)?))
}

/// The private channel of a user: `user:<userId>`, checked against the channel rules.
///
/// ```
/// use cerebrum_protocol::user_channel;
/// assert_eq!(user_channel("user-123")?, "user:user-123");
/// assert!(user_channel("a b").is_err());
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
pub fn user_channel(user_id: &str) -> Result<String, ProtocolError> {
    let channel = format!("{USER_PREFIX}{user_id}");
    crate::validate_channel(&channel)?;
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate_channel;

    #[test]
    fn slugs_are_valid_channel_names_of_bounded_length() {
        let long = "Photosynthesis ".repeat(40);
        let channel = session_channel(&long).unwrap();
        assert!(channel.len() <= MAX_CHANNEL_LEN);
        validate_channel(&channel).unwrap();
        assert!(!channel.ends_with('-'));
        assert_eq!(topic_slug("Génétique").unwrap(), "g-n-tique");
    }
}
