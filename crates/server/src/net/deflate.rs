//! permessage-deflate on a connection (issue 15): the compressed form of an outbound frame,
//! made once per frame and shared by every connection that negotiated the extension (a
//! compressed inbound message is inflated in `conn.rs` with
//! `cerebrum_deflate::inflate_on_this_thread`).
//!
//! The compressor (about 260 KiB of zlib state) and the inflater (about 40 KiB once used) are
//! one per worker thread (`cerebrum_deflate::compress_on_this_thread`), not one per connection: the server agrees to
//! `server_no_context_takeover` and asks `client_no_context_takeover`, so no message needs
//! the window of the one before.

use bytes::Bytes;
use cerebrum_deflate::compress_on_this_thread;
use cerebrum_server_core::{Compression, Encoding, Text};

/// The compressed form of `text`'s `encoding` form (`len` bytes) under `settings`: made by the
/// first connection that writes the frame, shared by the rest; `None` (send it uncompressed)
/// for a frame under the threshold or one that does not get smaller.
pub(crate) fn compressed(
    text: &Text,
    encoding: Encoding,
    len: usize,
    settings: &Compression,
) -> Option<Bytes> {
    if len < settings.threshold {
        return None;
    }
    text.deflated(encoding, |form| {
        match compress_on_this_thread(settings.level, settings.window_bits, form) {
            Ok(wire) if wire.len() < form.len() => Some(Bytes::from(wire)),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(%err, "a frame could not be compressed; it goes uncompressed");
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(threshold: usize) -> Compression {
        Compression {
            enabled: true,
            threshold,
            ..Compression::default()
        }
    }

    #[test]
    fn a_frame_is_compressed_once_and_the_form_shared() {
        let text = Text::from(format!(
            r#"{{"type":"chat.msg","payload":"{}"}}"#,
            "ab".repeat(200)
        ));
        let shared = text.clone();
        let first = compressed(&text, Encoding::Json, text.len(), &settings(256));
        let second = compressed(&shared, Encoding::Json, shared.len(), &settings(256));
        assert!(first.as_ref().is_some_and(|b| b.len() < text.len()));
        // The same bytes, not a second compression.
        assert_eq!(
            first.as_ref().map(|b| b.as_ptr()),
            second.as_ref().map(|b| b.as_ptr())
        );
        let back = first.map(|b| cerebrum_deflate::inflate_on_this_thread(&b, 1 << 20));
        assert_eq!(back, Some(Ok(text.as_bytes().to_vec())));
    }

    #[test]
    fn short_frames_and_frames_that_do_not_shrink_go_uncompressed() {
        let pong = Text::from(r#"{"type":"pong"}"#);
        assert_eq!(
            compressed(&pong, Encoding::Json, pong.len(), &settings(256)),
            None
        );
        let noise: String = (0..400)
            .map(|i| char::from(b'!' + ((i * 7919 % 94) as u8)))
            .collect();
        let text = Text::from(noise);
        assert!(
            compressed(&text, Encoding::Json, text.len(), &settings(16))
                .is_none_or(|b| b.len() < text.len())
        );
    }
}
