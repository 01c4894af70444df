//! Async token providers: a fresh token before every connection attempt.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future a [`TokenProvider`] returns.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Gives a fresh auth token before every connection attempt (so expiring tokens are refreshed),
/// and once more after a close 4001 before the client gives up.
///
/// ```
/// use cerebrum_tokio::TokenProvider;
/// let provider = TokenProvider::new(|| async { Ok::<_, std::io::Error>("jwt".to_owned()) });
/// # let _ = provider;
/// ```
#[derive(Clone)]
pub struct TokenProvider(Arc<dyn Fn() -> TokenFuture + Send + Sync>);

impl TokenProvider {
    /// A provider calling `fetch`; its error is reported as a failed connection attempt.
    pub fn new<F, Fut, E>(fetch: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: fmt::Display,
    {
        Self(Arc::new(move || {
            let future = fetch();
            Box::pin(async move { future.await.map_err(|err| err.to_string()) })
        }))
    }

    /// Asks for a token.
    #[must_use]
    pub fn fetch(&self) -> TokenFuture {
        (self.0)()
    }
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenProvider")
    }
}

/// `url` with every `token` query parameter replaced by `token` (percent-encoded).
///
/// ```
/// use cerebrum_tokio::with_query_token;
/// assert_eq!(with_query_token("ws://h/ws?token=old&x=1", "a b"), "ws://h/ws?x=1&token=a%20b");
/// assert_eq!(with_query_token("ws://h/ws", "t"), "ws://h/ws?token=t");
/// ```
#[must_use]
pub fn with_query_token(url: &str, token: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("token={}", percent_encode(token)));
    format!("{base}?{}", pairs.join("&"))
}

/// `url` without any `token` query parameter.
pub(crate) fn without_query_token(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    if pairs.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", pairs.join("&"))
    }
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tokens_are_replaced_and_removed() {
        assert_eq!(without_query_token("ws://h/ws?token=a"), "ws://h/ws");
        assert_eq!(
            without_query_token("ws://h/ws?x=1&token=a"),
            "ws://h/ws?x=1"
        );
        assert_eq!(
            with_query_token("ws://h/ws?x=1", "t"),
            "ws://h/ws?x=1&token=t"
        );
    }
}
