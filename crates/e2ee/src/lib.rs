//! End-to-end encrypted channels of cerebrum-realtime: the app payload of a publication is
//! sealed with XChaCha20-Poly1305 (RustCrypto) on the sending client and opened on the
//! receiving ones; the server relays, stores and replays it without ever seeing plaintext.
//!
//! - [`ChannelKey`]: a 32-byte secret; its `Debug` is redacted and it is wiped on drop.
//! - [`KeyProvider`]: what the app gives, per channel, the current key (with its
//!   [`KeyId`]) for sealing, and any key by id for opening. [`Keyring`] is a ready one with
//!   rotation: a new key becomes current, old ids keep opening.
//! - [`ChannelCrypto`]: seals an [`Envelope`] bound for an encrypted channel and opens one
//!   delivered from it; a payload that fails to open is an [`OpenError`], never data.
//!
//! The plaintext is the app payload's JSON text; the associated data binds the ciphertext to the
//! envelope's `channel` and `type` and to the key id ([`SealedPayload::associated_data`]), so a
//! sealed payload replayed under another channel or type fails to open. Nonces are 24 random
//! bytes from the OS (the browser's `crypto.getRandomValues` on `wasm32-unknown-unknown`).
//!
//! ```
//! use cerebrum_e2ee::{ChannelCrypto, ChannelKey, Keyring};
//! use cerebrum_protocol::{Envelope, KeyId};
//!
//! let keys = Keyring::new();
//! keys.insert("chat:secret", KeyId::new("k1")?, ChannelKey::from_bytes([7; 32]))?;
//! let crypto = ChannelCrypto::new(keys);
//!
//! let message = Envelope::from_value("chat.message", &serde_json::json!({"text": "hi"}))?;
//! let sealed = crypto.seal("chat:secret", message)?;
//! assert!(!sealed.payload().get().contains("hi"));
//!
//! // What a receiver gets back from the server: the same envelope, with its channel.
//! let delivered = sealed.with_channel("chat:secret")?.with_offset(1);
//! let opened = crypto.open(delivered)?;
//! assert_eq!(opened.payload().get(), r#"{"text":"hi"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cipher;
mod key;
mod keyring;

pub use cipher::{ChannelCrypto, OpenError, SealError, open_payload, seal_payload};
pub use key::{ChannelKey, KeyError};
pub use keyring::{KeyProvider, Keyring, KeyringError};

pub use cerebrum_protocol::{Cipher, Envelope, KeyId, SealedPayload};
