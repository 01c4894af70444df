//! Property tests: what [`Deflater`] compresses, [`Inflater`] (and plain zlib) gives back;
//! limits hold; nothing panics on arbitrary bytes.

use cerebrum_deflate::{CodecError, Deflater, Inflater};
use flate2::{Compress, Compression, FlushCompress};
use proptest::prelude::*;

/// Messages that compress (repeated JSON-ish text) and ones that do not (random bytes).
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..4096),
        ("[a-z\"{}:,0-9 ]{0,64}", 1usize..64).prop_map(|(s, n)| s.repeat(n).into_bytes()),
    ]
}

/// A sender that keeps its window between messages (context takeover), as Node `ws` and
/// browsers do by default.
fn compress_keeping_context(compress: &mut Compress, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut consumed = 0;
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        let before = compress.total_in();
        let result = compress.compress_vec(&message[consumed..], &mut out, FlushCompress::Sync);
        assert!(result.is_ok());
        consumed += usize::try_from(compress.total_in() - before).unwrap_or(0);
        if consumed >= message.len() && out.len() < out.capacity() {
            break;
        }
    }
    if !out.ends_with(&[0, 0, 0xff, 0xff]) {
        // zlib flushes nothing for an empty message after a flush: RFC 7692 section 7.2.3.6
        // lets a sender send one 0x00 byte for it.
        assert!(message.is_empty() && out.is_empty());
        return vec![0];
    }
    out.truncate(out.len() - 4);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_message_inflates_back_at_every_level_and_window(
        messages in proptest::collection::vec(message(), 1..6),
        level in 0u32..=9,
        window in 9u8..=15,
    ) {
        let mut deflater = Deflater::new(level, window).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut inflater = Inflater::new(false);
        for message in &messages {
            let wire = deflater.compress(message).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!wire.ends_with(&[0, 0, 0xff, 0xff]));
            prop_assert_eq!(inflater.inflate(&wire, message.len()), Ok(message.clone()));
            // Plain zlib reads it too (the four bytes put back).
            let mut plain = flate2::Decompress::new(false);
            let mut out = Vec::with_capacity(message.len() + 16);
            let mut input = wire.clone();
            input.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let _ = plain.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync);
            prop_assert_eq!(&out, message);
        }
    }

    #[test]
    fn a_sender_keeping_its_window_is_followed_with_takeover(
        messages in proptest::collection::vec(message(), 1..8),
    ) {
        let mut compress = Compress::new(Compression::new(6), false);
        let mut inflater = Inflater::new(true);
        for message in &messages {
            let wire = compress_keeping_context(&mut compress, message);
            prop_assert_eq!(inflater.inflate(&wire, 1 << 20), Ok(message.clone()));
        }
    }

    #[test]
    fn one_byte_over_the_limit_is_too_large(message in message()) {
        prop_assume!(!message.is_empty());
        let wire = Deflater::new(1, 15).and_then(|mut d| d.compress(&message))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let limit = message.len() - 1;
        prop_assert_eq!(
            Inflater::new(false).inflate(&wire, limit),
            Err(CodecError::TooLarge { limit })
        );
    }

    #[test]
    fn arbitrary_bytes_are_an_error_or_a_message_within_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        limit in 0usize..2048,
        takeover in any::<bool>(),
    ) {
        let mut inflater = Inflater::new(takeover);
        if let Ok(message) = inflater.inflate(&bytes, limit) {
            prop_assert!(message.len() <= limit);
        }
        // And the inflater still works afterwards.
        let wire = Deflater::new(1, 15).and_then(|mut d| d.compress(b"after"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        if !takeover {
            prop_assert_eq!(inflater.inflate(&wire, 16), Ok(b"after".to_vec()));
        }
    }
}

#[test]
fn a_deflate_bomb_stops_at_the_limit() {
    let zeros = vec![0u8; 8 << 20];
    let wire = Deflater::new(9, 15)
        .and_then(|mut d| d.compress(&zeros))
        .unwrap_or_default();
    assert!(wire.len() < 16 * 1024, "{}", wire.len());
    assert_eq!(
        Inflater::new(false).inflate(&wire, 64 * 1024),
        Err(CodecError::TooLarge { limit: 64 * 1024 })
    );
}

#[test]
fn settings_out_of_range_are_refused() {
    assert!(Deflater::new(10, 15).is_err());
    assert!(Deflater::new(1, 8).is_err());
    assert!(Deflater::new(1, 16).is_err());
    assert!(Deflater::new(0, 9).is_ok());
}
