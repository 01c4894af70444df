//! permessage-deflate (RFC 7692) for cerebrum-realtime, with no socket in sight: the
//! extension's negotiation ([`Offer`], [`Agreement`]) and one message at a time compressed
//! ([`Deflater`]) or inflated ([`Inflater`]). The WebSocket library carries the compressed
//! bytes in frames with RSV1 set; the server and the Rust client drive this crate.
//!
//! The server here compresses a publication once and sends the same bytes to every subscriber
//! that negotiated the extension, so it always agrees to `server_no_context_takeover`; it also
//! asks `client_no_context_takeover`, so no connection keeps an inflater's window.
//!
//! ```
//! use cerebrum_deflate::{Agreement, Deflater, Inflater, Offer};
//!
//! // The server reads a browser's offer and answers.
//! let offers = Offer::parse_all("permessage-deflate; client_max_window_bits")?;
//! let agreed = Agreement::accept(offers.iter().filter_map(|o| o.as_ref().ok()), 15)
//!     .ok_or("declined")?;
//!
//! // A publication is compressed once, and any subscriber inflates it.
//! let publication = br#"{"type":"chat.msg","channel":"room:1","payload":{"text":"hi hi hi hi"}}"#;
//! let wire = Deflater::new(1, 15)?.compress(publication)?;
//! let mut inflater = Inflater::new(!agreed.server_resets());
//! assert_eq!(inflater.inflate(&wire, 64 * 1024)?, publication.to_vec());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod params;

pub use codec::{CodecError, Deflater, Inflater, compress_on_this_thread, inflate_on_this_thread};
pub use params::{
    Agreement, CLIENT_OFFER, EXTENSION, MAX_WINDOW_BITS, MIN_WINDOW_BITS, NegotiationError, Offer,
};
