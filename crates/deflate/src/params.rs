//! The extension's negotiation (RFC 7692 section 7.1): a client's offers read from
//! `Sec-WebSocket-Extensions`, the server's choice and answer, and the client's reading of
//! that answer.

use std::fmt;

/// The extension's registered name.
pub const EXTENSION: &str = "permessage-deflate";

/// The offer a client of ours sends: the extension, with leave for the server to limit the
/// client's window (what browsers offer).
pub const CLIENT_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The smallest LZ77 window (in bits) a compressor here uses: zlib cannot make raw DEFLATE
/// with 8 bits (it would use 9), so a peer that asks for 8 gets no compressed messages.
pub const MIN_WINDOW_BITS: u8 = 9;
/// The largest LZ77 window, 32 KiB.
pub const MAX_WINDOW_BITS: u8 = 15;

/// Why an offer or an answer is not a valid permessage-deflate negotiation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// A parameter the extension does not define.
    #[error("unknown permessage-deflate parameter `{0}`")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("permessage-deflate parameter `{0}` given twice")]
    Duplicate(&'static str),
    /// A parameter with a value it must not have, or without one it needs.
    #[error("bad value for permessage-deflate parameter `{0}`")]
    BadValue(&'static str),
    /// The header is not a list of extensions (RFC 6455 section 9.1).
    #[error("malformed Sec-WebSocket-Extensions header")]
    Malformed,
    /// The server answered with the extension though the client did not offer it, or twice.
    #[error("the server answered permessage-deflate that was not offered, or more than once")]
    Unexpected,
    /// The server's answer limits the server's window below what was offered, or names a
    /// client window the client did not leave open.
    #[error("the server's permessage-deflate answer breaks the offer's terms: {0}")]
    BreaksOffer(&'static str),
}

/// One permessage-deflate offer of a client (RFC 7692 section 7.1).
///
/// ```
/// use cerebrum_deflate::Offer;
/// let offers = Offer::parse_all("permessage-deflate; client_max_window_bits, x-other")?;
/// assert_eq!(offers.len(), 1);
/// assert_eq!(offers[0].as_ref().map(|o| o.client_max_window_bits), Ok(Some(None)));
/// # Ok::<(), cerebrum_deflate::NegotiationError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offer {
    /// The client asks the server to start every message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client says it will start every message with an empty window.
    pub client_no_context_takeover: bool,
    /// The largest window the server may compress with.
    pub server_max_window_bits: Option<u8>,
    /// The client lets the server limit its window: `Some(None)` without a value, `Some(Some(n))`
    /// with the largest it would use anyway.
    pub client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    /// Every permessage-deflate offer in the values of a `Sec-WebSocket-Extensions` header, in
    /// order; an ill-formed offer is an `Err` in its place (the server skips it, RFC 7692
    /// section 5). Other extensions are left out.
    ///
    /// # Errors
    /// [`NegotiationError::Malformed`] when the header is not an extension list at all.
    pub fn parse_all(
        header: &str,
    ) -> Result<Vec<Result<Self, NegotiationError>>, NegotiationError> {
        let mut offers = Vec::new();
        for extension in split_list(header)? {
            let mut parts = extension.iter();
            let Some(name) = parts.next() else {
                return Err(NegotiationError::Malformed);
            };
            if name.0.eq_ignore_ascii_case(EXTENSION) && name.1.is_none() {
                offers.push(Self::from_params(parts.copied()));
            }
        }
        Ok(offers)
    }

    fn from_params<'a>(params: impl Iterator<Item = Param<'a>>) -> Result<Self, NegotiationError> {
        let mut offer = Self::default();
        let mut seen = Seen::default();
        for (name, value) in params {
            match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => {
                    seen.once("server_no_context_takeover")?;
                    no_value(value, "server_no_context_takeover")?;
                    offer.server_no_context_takeover = true;
                }
                "client_no_context_takeover" => {
                    seen.once("client_no_context_takeover")?;
                    no_value(value, "client_no_context_takeover")?;
                    offer.client_no_context_takeover = true;
                }
                "server_max_window_bits" => {
                    seen.once("server_max_window_bits")?;
                    let bits = value.ok_or(NegotiationError::BadValue("server_max_window_bits"))?;
                    offer.server_max_window_bits =
                        Some(window_bits(bits, "server_max_window_bits")?);
                }
                "client_max_window_bits" => {
                    seen.once("client_max_window_bits")?;
                    offer.client_max_window_bits = Some(
                        value
                            .map(|bits| window_bits(bits, "client_max_window_bits"))
                            .transpose()?,
                    );
                }
                _ => return Err(NegotiationError::UnknownParameter(name.to_owned())),
            }
        }
        Ok(offer)
    }
}

/// What a server agreed to, or what a client read from the server's answer: the terms both
/// ends compress and inflate by.
///
/// The server here always answers `server_no_context_takeover` (so one compressed form of a
/// publication serves every subscriber, and no connection keeps a compressor) and
/// `client_no_context_takeover` (so no connection keeps an inflater).
///
/// ```
/// use cerebrum_deflate::{Agreement, Offer};
/// let offers = Offer::parse_all("permessage-deflate; client_max_window_bits")?;
/// let agreed = Agreement::accept(offers.iter().filter_map(|o| o.as_ref().ok()), 15)
///     .ok_or("declined")?;
/// assert_eq!(
///     agreed.to_string(),
///     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
/// );
/// // The client reads the same terms back from the answer.
/// assert_eq!(Agreement::from_answer(&agreed.to_string(), true)?, Some(agreed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// The server starts every message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client starts every message with an empty window.
    pub client_no_context_takeover: bool,
    /// The server's window, when the answer names one.
    pub server_max_window_bits: Option<u8>,
    /// The client's window, when the answer names one.
    pub client_max_window_bits: Option<u8>,
}

impl Agreement {
    /// The server's choice: the first offer it can honour when it compresses with a window of
    /// `window_bits` (9 to 15) and no context takeover, or `None` (the connection goes
    /// uncompressed). An offer that limits the server's window below `window_bits` is declined.
    #[must_use]
    pub fn accept<'a>(
        offers: impl IntoIterator<Item = &'a Offer>,
        window_bits: u8,
    ) -> Option<Self> {
        let window_bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        offers.into_iter().find_map(|offer| {
            let limit = offer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
            (limit >= window_bits).then(|| Self {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                // Named only when the client asked (an answer may not name it otherwise).
                server_max_window_bits: offer.server_max_window_bits.map(|_| window_bits),
                client_max_window_bits: None,
            })
        })
    }

    /// A client's reading of the server's `Sec-WebSocket-Extensions` answer: `None` when the
    /// server did not take the extension.
    ///
    /// # Errors
    /// When the answer is not one the client can accept (RFC 7692 section 7.1: the client
    /// then fails the connection): the extension unoffered (`offered` false) or twice, an
    /// unknown or repeated parameter, a bad window, or a client window the offer did not
    /// leave open ([`CLIENT_OFFER`] leaves it open).
    pub fn from_answer(header: &str, offered: bool) -> Result<Option<Self>, NegotiationError> {
        let mut agreed = None;
        for extension in split_list(header)? {
            let mut parts = extension.iter();
            let Some(name) = parts.next() else {
                return Err(NegotiationError::Malformed);
            };
            if !name.0.eq_ignore_ascii_case(EXTENSION) {
                continue;
            }
            if !offered || agreed.is_some() || name.1.is_some() {
                return Err(NegotiationError::Unexpected);
            }
            let offer = Offer::from_params(parts.copied())?;
            if offer.client_max_window_bits == Some(None) {
                return Err(NegotiationError::BadValue("client_max_window_bits"));
            }
            agreed = Some(Self {
                server_no_context_takeover: offer.server_no_context_takeover,
                client_no_context_takeover: offer.client_no_context_takeover,
                server_max_window_bits: offer.server_max_window_bits,
                client_max_window_bits: offer.client_max_window_bits.flatten(),
            });
        }
        Ok(agreed)
    }

    /// Whether the server starts every message with an empty window, so that the client may
    /// inflate each message on its own.
    #[must_use]
    pub fn server_resets(&self) -> bool {
        self.server_no_context_takeover
    }

    /// The window a client compresses with under these terms, or `None` when it may not
    /// compress at all here (the server limited it to 8 bits, which zlib cannot make).
    #[must_use]
    pub fn client_window_bits(&self) -> Option<u8> {
        match self.client_max_window_bits {
            Some(bits) if bits < MIN_WINDOW_BITS => None,
            Some(bits) => Some(bits),
            None => Some(MAX_WINDOW_BITS),
        }
    }
}

impl fmt::Display for Agreement {
    /// The `Sec-WebSocket-Extensions` value of the server's answer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXTENSION)?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        if let Some(bits) = self.server_max_window_bits {
            write!(f, "; server_max_window_bits={bits}")?;
        }
        if let Some(bits) = self.client_max_window_bits {
            write!(f, "; client_max_window_bits={bits}")?;
        }
        Ok(())
    }
}

/// A parameter: its name and its value (unquoted), if any.
type Param<'a> = (&'a str, Option<&'a str>);

/// Which parameters an offer or answer named.
#[derive(Default)]
struct Seen(Vec<&'static str>);

impl Seen {
    fn once(&mut self, name: &'static str) -> Result<(), NegotiationError> {
        if self.0.contains(&name) {
            return Err(NegotiationError::Duplicate(name));
        }
        self.0.push(name);
        Ok(())
    }
}

fn no_value(value: Option<&str>, name: &'static str) -> Result<(), NegotiationError> {
    match value {
        None => Ok(()),
        Some(_) => Err(NegotiationError::BadValue(name)),
    }
}

/// A window size: 8 to 15, as digits without a leading zero (RFC 7692 section 7.1.2).
fn window_bits(value: &str, name: &'static str) -> Result<u8, NegotiationError> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NegotiationError::BadValue(name));
    }
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) => Ok(bits),
        _ => Err(NegotiationError::BadValue(name)),
    }
}

/// Splits an extension list (RFC 6455 section 9.1) into extensions, each its name then its
/// parameters; a value may be a token or a quoted string.
fn split_list(header: &str) -> Result<Vec<Vec<Param<'_>>>, NegotiationError> {
    let mut list = Vec::new();
    for extension in header.split(',') {
        if extension.trim().is_empty() {
            // Empty list elements are allowed (RFC 9110 section 5.6.1).
            continue;
        }
        let mut params = Vec::new();
        for param in extension.split(';') {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
                None => (param.trim(), None),
            };
            if !is_token(name) {
                return Err(NegotiationError::Malformed);
            }
            params.push((name, value));
        }
        list.push(params);
    }
    Ok(list)
}

fn unquote(value: &str) -> Result<&str, NegotiationError> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or(NegotiationError::Malformed)?,
        None => value,
    };
    if is_token(inner) {
        Ok(inner)
    } else {
        Err(NegotiationError::Malformed)
    }
}

/// An HTTP token (RFC 9110 section 5.6.2).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(header: &str) -> Vec<Result<Offer, NegotiationError>> {
        Offer::parse_all(header).unwrap_or_default()
    }

    fn accepted(header: &str, window: u8) -> Option<String> {
        let offers = offers(header);
        Agreement::accept(offers.iter().filter_map(|o| o.as_ref().ok()), window)
            .map(|a| a.to_string())
    }

    #[test]
    fn browser_and_node_offers_are_accepted_with_both_resets() {
        let answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        // Chromium, Firefox and Node `ws` (its default offer).
        assert_eq!(
            accepted("permessage-deflate; client_max_window_bits", 15).as_deref(),
            Some(answer)
        );
        assert_eq!(accepted("permessage-deflate", 15).as_deref(), Some(answer));
        assert_eq!(
            accepted("x-webkit-deflate-frame, PerMessage-Deflate", 15).as_deref(),
            Some(answer)
        );
    }

    #[test]
    fn a_server_window_limit_is_honoured_or_the_offer_declined() {
        assert_eq!(
            accepted("permessage-deflate; server_max_window_bits=12", 12).as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=12"
            )
        );
        assert_eq!(
            accepted("permessage-deflate; server_max_window_bits=10", 12),
            None
        );
        // A later offer the server can honour is taken.
        assert_eq!(
            accepted(
                "permessage-deflate; server_max_window_bits=8, permessage-deflate",
                15
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
    }

    #[test]
    fn ill_formed_offers_are_skipped() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
        ] {
            assert!(matches!(offers(bad).as_slice(), [Err(_)]), "{bad}");
            assert_eq!(accepted(bad, 15), None, "{bad}");
        }
        assert_eq!(
            offers("permessage-deflate; client_max_window_bits=\"10\"")
                .first()
                .cloned(),
            Some(Ok(Offer {
                client_max_window_bits: Some(Some(10)),
                ..Offer::default()
            }))
        );
        assert!(Offer::parse_all("permessage-deflate; a b").is_err());
        assert!(Offer::parse_all("permessage-deflate; x=\"unterminated").is_err());
        assert_eq!(offers("").len(), 0);
    }

    #[test]
    fn a_client_reads_the_answer_and_refuses_a_bad_one() {
        let agreed = Agreement::from_answer(
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
            true,
        );
        assert_eq!(
            agreed,
            Ok(Some(Agreement {
                server_no_context_takeover: true,
                client_no_context_takeover: false,
                server_max_window_bits: None,
                client_max_window_bits: Some(10),
            }))
        );
        assert_eq!(Agreement::from_answer("", true), Ok(None));
        assert_eq!(
            Agreement::from_answer("permessage-deflate", false),
            Err(NegotiationError::Unexpected)
        );
        assert_eq!(
            Agreement::from_answer("permessage-deflate, permessage-deflate", true),
            Err(NegotiationError::Unexpected)
        );
        assert_eq!(
            Agreement::from_answer("permessage-deflate; client_max_window_bits", true),
            Err(NegotiationError::BadValue("client_max_window_bits"))
        );
        assert!(Agreement::from_answer("permessage-deflate; nope", true).is_err());
    }

    #[test]
    fn a_client_window_of_8_bits_means_no_compressed_messages_from_the_client() {
        let eight = Agreement {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: Some(8),
        };
        assert_eq!(eight.client_window_bits(), None);
        let open = Agreement {
            client_max_window_bits: None,
            ..eight
        };
        assert_eq!(open.client_window_bits(), Some(15));
    }
}
