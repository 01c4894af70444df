//! The MessagePack form of a frame (subprotocol [`MSGPACK_SUBPROTOCOL`]): the JSON envelope's
//! value written in MessagePack, transcoded one way or the other without a value tree.
//!
//! **The shape rule.** A JSON object is a map with the same string keys in the same order, an
//! array an array, a string a str, `true`/`false`/`null` the same; a number written without a
//! fraction or an exponent that fits 64 bits is an integer in its smallest MessagePack form, any
//! other number a float64. So every JSON frame has exactly one MessagePack form, and that form
//! reads back to the same JSON text whenever the JSON was written by [`crate::encode`] (numbers
//! as JavaScript writes them).
//!
//! **Reading hostile input.** [`msgpack_to_json`] first walks the bytes once, without recursion
//! and without allocating, and refuses anything that is not the MessagePack form of some JSON:
//! binary and extension types, map keys that are not strings, strings that are not UTF-8,
//! non-finite floats, the reserved byte `0xc1`, nesting deeper than [`MAX_DEPTH`] (as for JSON
//! text, the envelope counts as one level), a declared length longer than what is left of the
//! input, and bytes after the value. Only then does it transcode; the JSON text it writes is
//! bounded too ([`msgpack_to_json_within`]).
//!
//! ```
//! use cerebrum_protocol::{json_to_msgpack, msgpack_to_json};
//!
//! let json = r#"{"type":"ping","payload":{"nonce":7}}"#;
//! let bytes = json_to_msgpack(json)?;
//! assert_eq!(bytes[0], 0x82); // a map of two entries
//! assert_eq!(msgpack_to_json(&bytes)?, json);
//! # Ok::<(), cerebrum_protocol::MsgpackError>(())
//! ```

use std::io;

use crate::MAX_DEPTH;

/// The subprotocol under which frames are binary MessagePack (PROTOCOL.md section 1).
pub const MSGPACK_SUBPROTOCOL: &str = "cerebrum.v1.msgpack";

/// The subprotocol under which frames are JSON text (PROTOCOL.md section 1).
pub const JSON_SUBPROTOCOL: &str = "cerebrum.v1.json";

/// How a connection's frames travel, chosen by the subprotocol of its WebSocket handshake.
///
/// ```
/// use cerebrum_protocol::Encoding;
/// assert_eq!(Encoding::from_subprotocol("cerebrum.v1.msgpack"), Some(Encoding::MessagePack));
/// assert_eq!(Encoding::from_subprotocol("Cerebrum.V1.JSON"), None);
/// assert_eq!(Encoding::default(), Encoding::Json);
/// assert_eq!(Encoding::Json.subprotocol(), "cerebrum.v1.json");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// JSON text frames (subprotocol `cerebrum.v1.json`, or none: level-0 peers).
    #[default]
    Json,
    /// Binary frames of MessagePack (subprotocol `cerebrum.v1.msgpack`); text frames are still
    /// read as JSON.
    MessagePack,
}

impl Encoding {
    /// Every encoding the server speaks.
    pub const ALL: [Self; 2] = [Self::Json, Self::MessagePack];

    /// The subprotocol that selects it.
    #[must_use]
    pub const fn subprotocol(self) -> &'static str {
        match self {
            Self::Json => JSON_SUBPROTOCOL,
            Self::MessagePack => MSGPACK_SUBPROTOCOL,
        }
    }

    /// The encoding a subprotocol name selects (exact, case-sensitive match).
    #[must_use]
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.subprotocol() == name)
    }
}

/// Why a frame could not be transcoded between JSON and MessagePack.
///
/// Messages describe the input's structure, never its content (they are safe to show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgpackError {
    /// The input ends inside a value (or declares more than it holds).
    #[error("truncated at byte {at}")]
    Truncated {
        /// Offset at which more bytes were needed.
        at: usize,
    },
    /// Bytes follow the value.
    #[error("{extra} bytes after the value")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Maps and arrays nest deeper than the limit.
    #[error("nesting deeper than {limit} levels")]
    TooDeep {
        /// The limit ([`MAX_DEPTH`]).
        limit: usize,
    },
    /// A map key is not a string.
    #[error("map key at byte {at} is not a string")]
    NonStringKey {
        /// Offset of the key.
        at: usize,
    },
    /// A type that JSON cannot hold: binary data, an extension type, or the reserved byte.
    #[error("{kind} at byte {at} has no JSON form")]
    Unsupported {
        /// `binary`, `extension` or `reserved byte 0xc1`.
        kind: &'static str,
        /// Offset of its first byte.
        at: usize,
    },
    /// A string that is not UTF-8.
    #[error("string at byte {at} is not UTF-8")]
    InvalidUtf8 {
        /// Offset of the string's first byte.
        at: usize,
    },
    /// A float that is NaN or infinite (JSON has no such number).
    #[error("float at byte {at} is not finite")]
    NonFinite {
        /// Offset of the float's first byte.
        at: usize,
    },
    /// The transcoded frame would be longer than allowed.
    #[error("transcoded frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its length in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The JSON text to encode is not valid JSON.
    #[error("invalid JSON: {detail}")]
    InvalidJson {
        /// What the JSON parser reported (position and kind, never the input).
        detail: String,
    },
    /// The transcoder failed on input the checks let through (a bug; reported, never a panic).
    #[error("transcoding failed: {detail}")]
    Transcode {
        /// What failed.
        detail: String,
    },
}

impl From<MsgpackError> for crate::ProtocolError {
    /// A frame that is too deep or too large is refused as its JSON text would be; any other
    /// failure is [`crate::ProtocolError::InvalidMsgpack`] (wire code `invalid_json`).
    fn from(err: MsgpackError) -> Self {
        match err {
            MsgpackError::TooDeep { limit } => Self::TooDeep { limit },
            MsgpackError::TooLarge { size, limit } => Self::TooLarge { size, limit },
            other => Self::InvalidMsgpack {
                detail: other.to_string(),
            },
        }
    }
}

/// Encodes a JSON text (one frame) as its MessagePack form (the shape rule of this module).
///
/// Fails only when `json` is not valid JSON (or nests deeper than the JSON parser's own limit
/// of 128 levels).
///
/// ```
/// use cerebrum_protocol::json_to_msgpack;
/// assert_eq!(json_to_msgpack(r#"{"a":[1,-1,0.5,null]}"#)?, [
///     0x81, 0xa1, b'a', 0x94, 0x01, 0xff, 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0, 0xc0,
/// ]);
/// assert!(json_to_msgpack("{").is_err());
/// # Ok::<(), cerebrum_protocol::MsgpackError>(())
/// ```
pub fn json_to_msgpack(json: &str) -> Result<Vec<u8>, MsgpackError> {
    // Frames are mostly strings: the MessagePack form is about as long as the text.
    let mut out = Vec::with_capacity(json.len());
    let mut reader = serde_json::Deserializer::from_str(json);
    let mut writer = rmp_serde::Serializer::new(&mut out);
    serde_transcode::transcode(&mut reader, &mut writer).map_err(|err| {
        MsgpackError::InvalidJson {
            detail: err.to_string(),
        }
    })?;
    reader.end().map_err(|err| MsgpackError::InvalidJson {
        detail: err.to_string(),
    })?;
    Ok(out)
}

/// Decodes a MessagePack frame into its JSON text, refusing hostile input (see the module's
/// documentation) and any JSON text longer than [`crate::MAX_FRAME_BYTES`] four times over
/// (use [`msgpack_to_json_within`] for a tighter bound).
///
/// ```
/// use cerebrum_protocol::{msgpack_to_json, MsgpackError};
/// assert_eq!(msgpack_to_json(&[0x81, 0xa1, b'a', 0xc3])?, r#"{"a":true}"#);
/// // A map whose key is an integer has no JSON form.
/// assert_eq!(msgpack_to_json(&[0x81, 0x01, 0xc3]), Err(MsgpackError::NonStringKey { at: 1 }));
/// # Ok::<(), MsgpackError>(())
/// ```
pub fn msgpack_to_json(bytes: &[u8]) -> Result<String, MsgpackError> {
    msgpack_to_json_within(bytes, 4 * crate::MAX_FRAME_BYTES)
}

/// [`msgpack_to_json`] with the JSON text bounded by `limit` bytes: a longer one is
/// [`MsgpackError::TooLarge`] (the text is never built past the limit, only measured).
///
/// ```
/// use cerebrum_protocol::{msgpack_to_json_within, MsgpackError};
/// // `nil` is one byte, `null` four.
/// assert_eq!(msgpack_to_json_within(&[0xc0], 4).as_deref(), Ok("null"));
/// assert_eq!(msgpack_to_json_within(&[0xc0], 3), Err(MsgpackError::TooLarge { size: 4, limit: 3 }));
/// ```
pub fn msgpack_to_json_within(bytes: &[u8], limit: usize) -> Result<String, MsgpackError> {
    check(bytes, MAX_DEPTH)?;
    let mut reader = rmp_serde::Deserializer::from_read_ref(bytes);
    // A second bound behind the walk's (rmp-serde refuses its limit itself, hence the 1).
    reader.set_max_depth(MAX_DEPTH + 1);
    let mut writer = serde_json::Serializer::new(Bounded {
        // JSON text is rarely much longer than its MessagePack form.
        out: Vec::with_capacity(bytes.len().saturating_add(bytes.len() / 4).min(limit)),
        limit,
        size: 0,
    });
    let transcoded = serde_transcode::transcode(&mut reader, &mut writer);
    let bounded = writer.into_inner();
    if bounded.size > limit {
        return Err(MsgpackError::TooLarge {
            size: bounded.size,
            limit,
        });
    }
    transcoded.map_err(|err| MsgpackError::Transcode {
        detail: err.to_string(),
    })?;
    // serde_json writes UTF-8 only (strings were checked to be UTF-8 above).
    String::from_utf8(bounded.out).map_err(|_| MsgpackError::Transcode {
        detail: "the JSON writer produced invalid UTF-8".to_owned(),
    })
}

/// A writer that keeps at most `limit` bytes; past that it only counts (so that an error can
/// say how long the text would have been; the input is bounded, so is the count).
struct Bounded {
    out: Vec<u8>,
    limit: usize,
    size: usize,
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.size = self.size.saturating_add(buf.len());
        if self.size <= self.limit {
            self.out.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One open map or array of [`check`]: how many items (keys and values, for a map) are left.
#[derive(Clone, Copy)]
struct Open {
    left: u64,
    map: bool,
}

/// Walks one MessagePack value without recursion or allocation and refuses anything that has
/// no JSON form (see the module's documentation). `depth` bounds the nesting of maps and arrays.
fn check(bytes: &[u8], depth: usize) -> Result<(), MsgpackError> {
    let mut stack = [Open {
        left: 0,
        map: false,
    }; MAX_DEPTH];
    let depth = depth.min(MAX_DEPTH);
    let mut open = 0usize;
    let mut at = 0usize;
    loop {
        let start = at;
        // A key is expected where an open map has an even number of items left.
        let key = open > 0 && stack[open - 1].map && stack[open - 1].left % 2 == 0;
        let marker = *bytes.get(at).ok_or(MsgpackError::Truncated { at })?;
        at += 1;
        let is_str = matches!(marker, 0xa0..=0xbf | 0xd9..=0xdb);
        if key && !is_str {
            return Err(MsgpackError::NonStringKey { at: start });
        }
        let mut container: Option<(u64, bool)> = None;
        match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => {}
            0x80..=0x8f => container = Some((u64::from(marker & 0x0f), true)),
            0x90..=0x9f => container = Some((u64::from(marker & 0x0f), false)),
            0xa0..=0xbf => at = string(bytes, start, at, u64::from(marker & 0x1f))?,
            0xd9 => {
                let len = uint(bytes, &mut at, 1)?;
                at = string(bytes, start, at, len)?;
            }
            0xda => {
                let len = uint(bytes, &mut at, 2)?;
                at = string(bytes, start, at, len)?;
            }
            0xdb => {
                let len = uint(bytes, &mut at, 4)?;
                at = string(bytes, start, at, len)?;
            }
            0xca => {
                let bits = uint(bytes, &mut at, 4)?;
                let value = f32::from_bits(u32::try_from(bits).unwrap_or(u32::MAX));
                if !value.is_finite() {
                    return Err(MsgpackError::NonFinite { at: start });
                }
            }
            0xcb => {
                if !f64::from_bits(uint(bytes, &mut at, 8)?).is_finite() {
                    return Err(MsgpackError::NonFinite { at: start });
                }
            }
            0xcc | 0xd0 => skip(bytes, &mut at, 1)?,
            0xcd | 0xd1 => skip(bytes, &mut at, 2)?,
            0xce | 0xd2 => skip(bytes, &mut at, 4)?,
            0xcf | 0xd3 => skip(bytes, &mut at, 8)?,
            0xdc => container = Some((uint(bytes, &mut at, 2)?, false)),
            0xdd => container = Some((uint(bytes, &mut at, 4)?, false)),
            0xde => container = Some((uint(bytes, &mut at, 2)?, true)),
            0xdf => container = Some((uint(bytes, &mut at, 4)?, true)),
            0xc4..=0xc6 => {
                return Err(MsgpackError::Unsupported {
                    kind: "binary",
                    at: start,
                });
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                return Err(MsgpackError::Unsupported {
                    kind: "extension",
                    at: start,
                });
            }
            0xc1 => {
                return Err(MsgpackError::Unsupported {
                    kind: "reserved byte 0xc1",
                    at: start,
                });
            }
        }
        // This value is one item of its container.
        if open > 0 {
            stack[open - 1].left -= 1;
        }
        if let Some((count, map)) = container {
            let left = if map { count * 2 } else { count };
            // Every item takes at least one byte: a count past the input is a lie.
            let rest = (bytes.len() - at) as u64;
            if left > rest {
                return Err(MsgpackError::Truncated { at: bytes.len() });
            }
            if left > 0 {
                if open >= depth {
                    return Err(MsgpackError::TooDeep { limit: depth });
                }
                stack[open] = Open { left, map };
                open += 1;
            } else if open >= depth {
                // An empty container still counts as a level.
                return Err(MsgpackError::TooDeep { limit: depth });
            }
        }
        // Close every container that is now complete.
        while open > 0 && stack[open - 1].left == 0 {
            open -= 1;
        }
        if open == 0 {
            return match bytes.len() - at {
                0 => Ok(()),
                extra => Err(MsgpackError::TrailingBytes { extra }),
            };
        }
    }
}

/// Reads a big-endian unsigned integer of `width` bytes at `*at`.
fn uint(bytes: &[u8], at: &mut usize, width: usize) -> Result<u64, MsgpackError> {
    let end = at.saturating_add(width);
    let field = bytes
        .get(*at..end)
        .ok_or(MsgpackError::Truncated { at: bytes.len() })?;
    *at = end;
    Ok(field.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)))
}

/// Steps over `width` bytes at `*at`.
fn skip(bytes: &[u8], at: &mut usize, width: usize) -> Result<(), MsgpackError> {
    uint(bytes, at, width).map(drop)
}

/// Checks the string of `len` bytes at `at` (its marker at `start`); the offset after it.
fn string(bytes: &[u8], start: usize, at: usize, len: u64) -> Result<usize, MsgpackError> {
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| at.checked_add(len))
        .filter(|&end| end <= bytes.len())
        .ok_or(MsgpackError::Truncated { at: bytes.len() })?;
    std::str::from_utf8(&bytes[at..end]).map_err(|_| MsgpackError::InvalidUtf8 { at: start })?;
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(bytes: &[u8]) -> Result<String, MsgpackError> {
        msgpack_to_json(bytes)
    }

    #[test]
    fn numbers_take_their_smallest_form_and_floats_are_float64() {
        let cases: [(&str, &[u8]); 10] = [
            ("0", &[0x00]),
            ("127", &[0x7f]),
            ("128", &[0xcc, 0x80]),
            ("65536", &[0xce, 0, 1, 0, 0]),
            ("-1", &[0xff]),
            ("-33", &[0xd0, 0xdf]),
            ("-129", &[0xd1, 0xff, 0x7f]),
            (
                "18446744073709551615",
                &[0xcf, 255, 255, 255, 255, 255, 255, 255, 255],
            ),
            ("1.5", &[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
            ("1800.0", &[0xcb, 0x40, 0x9c, 0x20, 0, 0, 0, 0, 0]),
        ];
        for (text, bytes) in cases {
            assert_eq!(json_to_msgpack(text).as_deref(), Ok(bytes), "{text}");
            assert_eq!(json(bytes).as_deref(), Ok(text), "{text}");
        }
    }

    #[test]
    fn keys_stay_in_order_and_strings_are_str() {
        let text = r#"{"z":"é","a":{"":[]},"m":false}"#;
        let bytes = json_to_msgpack(text).unwrap_or_default();
        assert_eq!(&bytes[..4], &[0x83, 0xa1, b'z', 0xa2]);
        assert_eq!(json(&bytes).as_deref(), Ok(text));
        let long = format!(r#"["{}"]"#, "x".repeat(300));
        let bytes = json_to_msgpack(&long).unwrap_or_default();
        assert_eq!(&bytes[..4], &[0x91, 0xda, 0x01, 0x2c]);
    }

    #[test]
    fn types_without_a_json_form_are_refused() {
        let at = |kind| Err(MsgpackError::Unsupported { kind, at: 0 });
        assert_eq!(json(&[0xc4, 0x01, 0x00]), at("binary"));
        assert_eq!(json(&[0xd4, 0x01, 0x00]), at("extension"));
        assert_eq!(json(&[0xc7, 0x01, 0x05, 0x00]), at("extension"));
        assert_eq!(json(&[0xc1]), at("reserved byte 0xc1"));
        assert_eq!(
            json(&[0x81, 0xc0, 0xc0]),
            Err(MsgpackError::NonStringKey { at: 1 })
        );
        assert_eq!(
            json(&[0x81, 0x91, 0xa0, 0xc0]),
            Err(MsgpackError::NonStringKey { at: 1 })
        );
        assert_eq!(
            json(&[0xa1, 0xff]),
            Err(MsgpackError::InvalidUtf8 { at: 0 })
        );
        let nan = f64::NAN.to_bits().to_be_bytes();
        let mut bytes = vec![0xcb];
        bytes.extend_from_slice(&nan);
        assert_eq!(json(&bytes), Err(MsgpackError::NonFinite { at: 0 }));
        assert_eq!(
            json(&[0xca, 0x7f, 0x80, 0, 0]),
            Err(MsgpackError::NonFinite { at: 0 })
        );
    }

    #[test]
    fn lengths_are_checked_against_the_input_before_anything_is_read() {
        // An array that declares four billion items, a string of four gigabytes.
        assert!(matches!(
            json(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]),
            Err(MsgpackError::Truncated { .. })
        ));
        assert!(matches!(
            json(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
            Err(MsgpackError::Truncated { .. })
        ));
        assert!(matches!(json(&[]), Err(MsgpackError::Truncated { at: 0 })));
        assert!(matches!(
            json(&[0x92, 0x01]),
            Err(MsgpackError::Truncated { .. })
        ));
        assert_eq!(
            json(&[0x01, 0x02]),
            Err(MsgpackError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn nesting_is_bounded_like_json_text() {
        let nested = |depth: usize, last: u8| {
            let mut bytes = vec![0x91; depth - 1];
            bytes.push(last);
            bytes
        };
        // MAX_DEPTH arrays, the innermost empty: allowed, as `[[…[]…]]` is.
        assert!(json(&nested(MAX_DEPTH, 0x90)).is_ok());
        assert_eq!(
            json(&nested(MAX_DEPTH + 1, 0x90)),
            Err(MsgpackError::TooDeep { limit: MAX_DEPTH })
        );
        assert_eq!(
            json(&vec![0x91; 100_000]),
            Err(MsgpackError::TooDeep { limit: MAX_DEPTH })
        );
        let text = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(json(&nested(MAX_DEPTH, 0x90)).as_deref(), Ok(text.as_str()));
    }

    #[test]
    fn the_json_text_is_bounded_while_it_is_written() {
        let nils = {
            let mut bytes = vec![0xdc, 0x01, 0x00];
            bytes.extend_from_slice(&[0xc0; 256]);
            bytes
        };
        assert_eq!(
            msgpack_to_json_within(&nils, 1000),
            Err(MsgpackError::TooLarge {
                size: 2 + 256 * 5 - 1,
                limit: 1000
            })
        );
        assert!(msgpack_to_json_within(&nils, 2000).is_ok());
    }

    #[test]
    fn errors_map_to_the_wire_codes_of_json_text() {
        use crate::{ErrorCode, ProtocolError};
        let code = |err: MsgpackError| ProtocolError::from(err).code();
        assert_eq!(
            code(MsgpackError::Truncated { at: 0 }),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            code(MsgpackError::TooDeep { limit: MAX_DEPTH }),
            ErrorCode::ValidationFailed
        );
        assert_eq!(
            code(MsgpackError::TooLarge { size: 2, limit: 1 }),
            ErrorCode::TooLarge
        );
        let message = ProtocolError::from(MsgpackError::NonStringKey { at: 1 }).to_string();
        assert!(message.contains("not valid MessagePack"), "{message}");
    }
}
