//! What unit tests need of an owner: one real instant to count simulated time from.

use std::time::Instant;

/// An instant to start simulated time at (unit tests stand for the owner, which reads clocks).
pub(crate) fn instant() -> Instant {
    Instant::now()
}

/// Seconds since the Unix epoch now (tokens minted in tests expire relative to it).
pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An HS256 token for `user` valid `ttl_secs` from now.
pub(crate) fn mint_hs256(
    secret: &[u8],
    user: &str,
    name: Option<&str>,
    ttl_secs: u64,
    channels: Option<Vec<String>>,
) -> Result<String, crate::auth::AuthError> {
    crate::auth::mint_hs256_until(secret, user, name, unix_secs() + ttl_secs, channels)
}

/// The current moment on both clocks.
pub(crate) fn now() -> crate::clock::Now {
    crate::clock::Now {
        mono: Instant::now(),
        unix_ms: unix_secs() * 1000,
    }
}
