//! Tokens: the core's verifier and claims, and minting with the driver's clock.

pub use cerebrum_server_core::auth::*;

/// Mints an HS256 development token for `user`, valid `ttl_secs` from now.
///
/// ```
/// use cerebrum_server::auth::{mint_hs256, JwtKey, Verifier};
/// let token = mint_hs256(b"secret", "u1", Some("Ada"), 3600, None)?;
/// let now_secs = cerebrum_server::clock::unix_ms() / 1000;
/// let claims = Verifier::new(&JwtKey::hs256("secret"))?.verify(&token, now_secs)?;
/// assert_eq!(claims.sub, "u1");
/// # Ok::<(), cerebrum_server::auth::AuthError>(())
/// ```
///
/// # Errors
/// [`AuthError::Signing`] when the token cannot be signed.
pub fn mint_hs256(
    secret: &[u8],
    user: &str,
    name: Option<&str>,
    ttl_secs: u64,
    channels: Option<Vec<String>>,
) -> Result<String, AuthError> {
    let exp = crate::clock::unix_ms() / 1000 + ttl_secs;
    mint_hs256_until(secret, user, name, exp, channels)
}
