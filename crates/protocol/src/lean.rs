//! The lean decode path: the envelope, the control payloads the client core reads and a pong's
//! nonce, read by a small JSON reader of our own instead of serde's derived deserialisers.
//!
//! It exists for size: the browser client (`crates/wasm`, through `cerebrum-core`'s feature
//! `lean-decode`) saves the derived deserialisers of the envelope and of five payloads, and the
//! float printing that serde's `invalid type` messages bring (docs/benchmarks.md). Float
//! timestamps are decided on their digits, without Rust's float parser and its tables.
//! Native builds keep the serde path ([`decode`](crate::decode), [`Envelope::typed`]).
//!
//! Every function here accepts and refuses exactly what its serde counterpart does and gives the
//! same values (the property tests of `tests/lean.rs` hold the two paths to that): unknown
//! fields are ignored, a repeated field is refused, structs are also read from JSON arrays (as
//! serde_json does), and an error is the same [`ProtocolError`] variant with the same field
//! (a payload's shape error names `payload`, as serde's does with the feature `lean-errors`).
//! Only the wording of [`ProtocolError::InvalidJson`]'s detail (a byte offset, not a line and
//! column) and of payload errors' reasons (no echo of the value) may differ.
//!
//! No crate fitted (see docs/benchmarks.md): `miniserde` and `nanoserde` have no raw value, so
//! the payload would be rebuilt (and its numbers re-printed) rather than passed on byte for byte.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::envelope::{Envelope, Meta};
use crate::{
    Ack, ErrorCode, ErrorPayload, MAX_DEPTH, MAX_FRAME_BYTES, MessageId, Payload, ProtocolError,
    Subscribed, Unsubscribed, Welcome, check_depth, validate_channel, validate_type,
};

/// Why the reader stopped (turned into a [`ProtocolError`] by its caller).
#[derive(Debug, thiserror::Error)]
enum Fail {
    /// The text is not JSON (serde_json's syntax and end-of-input errors), at a byte offset.
    #[error("{0} at byte {1}")]
    Syntax(&'static str, usize),
    /// JSON, but not the expected shape (serde_json's data errors).
    #[error("{0}")]
    Data(Cow<'static, str>),
}

type Read<T> = Result<T, Fail>;

fn data(reason: &'static str) -> Fail {
    Fail::Data(Cow::Borrowed(reason))
}

/// A cursor over JSON text.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    fn syntax(&self, what: &'static str) -> Fail {
        Fail::Syntax(what, self.at)
    }

    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Skips JSON whitespace and returns the next byte.
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.byte() {
            self.at += 1;
        }
        self.byte()
    }

    /// Expects `byte` after whitespace.
    fn expect(&mut self, byte: u8, what: &'static str) -> Read<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.syntax(what))
        }
    }

    /// Only whitespace may follow.
    fn end(&mut self) -> Read<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters")),
        }
    }

    fn literal(&mut self, word: &'static str) -> Read<()> {
        if self.text.as_bytes()[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.syntax("expected ident"))
        }
    }

    /// Skips one value (after whitespace), as serde_json's `ignore_value` does: without a
    /// nesting limit (an explicit stack, no recursion), strings may hold lone surrogate escapes.
    fn skip(&mut self) -> Read<()> {
        // Which container each open level is (`true`: an object): the first 64 in bits, any
        // deeper ones in a vector that stays unallocated for ordinary input.
        let mut objects: u64 = 0;
        let mut deeper: Vec<bool> = Vec::new();
        let mut depth = 0usize;
        loop {
            match self.peek() {
                Some(b'n') => self.literal("null")?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b'"') => {
                    self.string(false)?;
                }
                Some(open @ (b'[' | b'{')) => {
                    self.at += 1;
                    let object = open == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                    } else {
                        if depth < 64 {
                            objects = (objects & !(1 << depth)) | (u64::from(object) << depth);
                        } else {
                            deeper.push(object);
                        }
                        depth += 1;
                        if object {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                _ => return Err(self.syntax("expected value")),
            }
            // After a value: close the levels that end here, then on to the next value.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let object = if depth <= 64 {
                    objects & (1 << (depth - 1)) != 0
                } else {
                    deeper.last().copied().unwrap_or(false)
                };
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        if object {
                            self.member_name()?;
                        }
                        break;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return Err(self.syntax("expected `,` or end")),
                }
                self.at += 1;
                if depth > 64 {
                    deeper.pop();
                }
                depth -= 1;
            }
        }
    }

    /// Skips an object member's name and its colon.
    fn member_name(&mut self) -> Read<()> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("key must be a string"));
        }
        self.string(false)?;
        self.expect(b':', "expected `:`")
    }

    /// Skips a number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Read<()> {
        if self.byte() == Some(b'-') {
            self.at += 1;
        }
        match self.byte() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("invalid number")),
        }
        if self.byte() == Some(b'.') {
            self.at += 1;
            if !matches!(self.byte(), Some(b'0'..=b'9')) {
                return Err(self.syntax("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.byte() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.byte() {
                self.at += 1;
            }
            if !matches!(self.byte(), Some(b'0'..=b'9')) {
                return Err(self.syntax("invalid number"));
            }
            self.digits();
        }
        // A digit right after a leading zero (`01`) is refused by the value that follows.
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.byte() {
            self.at += 1;
        }
    }

    /// Reads a string at the cursor (after whitespace, at its `"`). With `strict`, lone
    /// surrogate escapes are refused (serde_json's rule for a string read as text); without,
    /// they are accepted and the string's value is not built.
    fn string(&mut self, strict: bool) -> Read<Cow<'a, str>> {
        let text = self.text;
        let bytes = text.as_bytes();
        self.at += 1;
        let mut start = self.at;
        let mut owned: Option<String> = None;
        loop {
            let Some(&b) = bytes.get(self.at) else {
                return Err(self.syntax("EOF while parsing a string"));
            };
            match b {
                b'"' => {
                    let rest = &text[start..self.at];
                    self.at += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(rest),
                        Some(mut out) => {
                            out.push_str(rest);
                            Cow::Owned(out)
                        }
                    });
                }
                b'\\' => {
                    let out = owned.get_or_insert_with(String::new);
                    out.push_str(&text[start..self.at]);
                    self.at += 1;
                    self.escape(strict, out)?;
                    start = self.at;
                }
                0..=0x1f => return Err(self.syntax("control character in a string")),
                _ => self.at += 1,
            }
        }
    }

    /// One escape after its backslash, appended to `out` (only when `strict`: otherwise the
    /// value is not needed and a lone surrogate is no error).
    fn escape(&mut self, strict: bool, out: &mut String) -> Read<()> {
        let Some(b) = self.byte() else {
            return Err(self.syntax("EOF while parsing a string"));
        };
        self.at += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode(strict, out),
            _ => return Err(self.syntax("invalid escape")),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Read<u16> {
        let Some(digits) = self.text.as_bytes().get(self.at..self.at + 4) else {
            self.at = self.text.len();
            return Err(self.syntax("EOF while parsing a string"));
        };
        self.at += 4;
        let mut n: u16 = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.syntax("invalid escape")),
            };
            n = (n << 4) | u16::from(v);
        }
        Ok(n)
    }

    /// A `\u` escape (serde_json's `parse_unicode_escape`).
    fn unicode(&mut self, strict: bool, out: &mut String) -> Read<()> {
        let n = self.hex4()?;
        if !strict {
            return Ok(());
        }
        if (0xDC00..=0xDFFF).contains(&n) {
            return Err(self.syntax("lone leading surrogate in hex escape"));
        }
        if !(0xD800..=0xDBFF).contains(&n) {
            out.extend(char::from_u32(u32::from(n)));
            return Ok(());
        }
        if self.byte() != Some(b'\\') || self.text.as_bytes().get(self.at + 1) != Some(&b'u') {
            return Err(self.syntax("unexpected end of hex escape"));
        }
        self.at += 2;
        let low = self.hex4()?;
        if !(0xDC00..=0xDFFF).contains(&low) {
            return Err(self.syntax("lone leading surrogate in hex escape"));
        }
        let code = ((u32::from(n - 0xD800) << 10) | u32::from(low - 0xDC00)) + 0x1_0000;
        out.extend(char::from_u32(code));
        Ok(())
    }

    /// Reads a member name (a strict string) at the cursor.
    fn key(&mut self) -> Read<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("key must be a string"));
        }
        self.string(true)
    }
}

/// A struct's fields as raw JSON text, read the way serde's derived `Deserialize` reads them
/// from serde_json: from an object (unknown members skipped, a repeated known one refused) or
/// from an array (the fields in order; trailing `optional` ones may be left out).
fn members<'a, const N: usize>(
    text: &'a str,
    names: [&str; N],
    optional: [bool; N],
) -> Read<[Option<&'a str>; N]> {
    let mut found = [None; N];
    read_members(text, &names, &optional, &mut found)?;
    Ok(found)
}

/// [`members`] without a copy per struct.
fn read_members<'a>(
    text: &'a str,
    names: &[&str],
    optional: &[bool],
    found: &mut [Option<&'a str>],
) -> Read<()> {
    let mut r = Reader::new(text);
    match r.peek() {
        Some(b'{') => {
            r.at += 1;
            if r.peek() == Some(b'}') {
                r.at += 1;
            } else {
                loop {
                    let key = r.key()?;
                    r.expect(b':', "expected `:`")?;
                    r.peek();
                    let start = r.at;
                    match names.iter().position(|name| *name == key) {
                        Some(i) if found[i].is_some() => {
                            return Err(Fail::Data(Cow::Owned(format!(
                                "duplicate field `{}`",
                                names[i]
                            ))));
                        }
                        Some(i) => {
                            r.skip()?;
                            found[i] = Some(&text[start..r.at]);
                        }
                        None => r.skip()?,
                    }
                    match r.peek() {
                        Some(b',') => r.at += 1,
                        Some(b'}') => {
                            r.at += 1;
                            break;
                        }
                        _ => return Err(r.syntax("expected `,` or `}`")),
                    }
                }
            }
        }
        Some(b'[') => {
            r.at += 1;
            let mut count = 0;
            if r.peek() == Some(b']') {
                r.at += 1;
            } else {
                loop {
                    r.peek();
                    let start = r.at;
                    r.skip()?;
                    if count == names.len() {
                        return Err(data("invalid length: trailing elements"));
                    }
                    found[count] = Some(&text[start..r.at]);
                    count += 1;
                    match r.peek() {
                        Some(b',') => r.at += 1,
                        Some(b']') => {
                            r.at += 1;
                            break;
                        }
                        _ => return Err(r.syntax("expected `,` or `]`")),
                    }
                }
            }
            if optional[count..].iter().any(|optional| !optional) {
                return Err(data("invalid length: too few elements"));
            }
        }
        _ => return Err(data("invalid type: expected a struct")),
    }
    r.end()?;
    for (i, name) in names.iter().enumerate() {
        if found[i].is_none() && !optional[i] {
            return Err(Fail::Data(Cow::Owned(format!("missing field `{name}`"))));
        }
    }
    Ok(())
}

/// A JSON string read as text (escapes decoded, lone surrogates refused).
fn text_value(raw: &str) -> Read<Cow<'_, str>> {
    let mut r = Reader::new(raw);
    if r.peek() != Some(b'"') {
        return Err(data("invalid type: expected a string"));
    }
    let value = r.string(true)?;
    r.end()?;
    Ok(value)
}

/// A JSON integer in `0..=u64::MAX` (no sign, fraction or exponent), as serde_json reads a
/// `u64`.
fn u64_value(raw: &str) -> Read<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(data("invalid type: expected an unsigned integer"));
    }
    raw.bytes().try_fold(0u64, |n, d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| data("invalid type: expected an unsigned integer"))
    })
}

fn bool_value(raw: &str) -> Read<bool> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(data("invalid type: expected a boolean")),
    }
}

fn is_null(raw: &str) -> bool {
    raw == "null"
}

/// A JSON array of strings.
fn text_list(raw: &str) -> Read<Vec<String>> {
    let mut r = Reader::new(raw);
    let mut out = Vec::new();
    if r.peek() != Some(b'[') {
        return Err(data("invalid type: expected a sequence"));
    }
    r.at += 1;
    if r.peek() == Some(b']') {
        return Ok(out);
    }
    loop {
        if r.peek() != Some(b'"') {
            return Err(data("invalid type: expected a string"));
        }
        out.push(r.string(true)?.into_owned());
        match r.peek() {
            Some(b',') => r.at += 1,
            _ => return Ok(out),
        }
    }
}

fn message_id_value(raw: &str) -> Read<MessageId> {
    let text = text_value(raw)?;
    MessageId::new(text).map_err(|err| Fail::Data(Cow::Owned(err.to_string())))
}

/// Decodes one text frame: the lean twin of [`decode`](crate::decode), with its rules, values
/// and errors.
///
/// ```
/// use cerebrum_protocol::{decode, decode_lean};
/// let frame = r#"{"type":"pong","payload":{"nonce":7},"messageId":"m\u002d1","extra":[1.5e3]}"#;
/// assert_eq!(decode_lean(frame)?, decode(frame)?);
/// assert_eq!(decode_lean("{").unwrap_err().code(), decode("{").unwrap_err().code());
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
pub fn decode_lean(text: &str) -> Result<Envelope, ProtocolError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge {
            size: text.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    check_depth(text, MAX_DEPTH)?;
    if !text.trim_start().starts_with('{') {
        let mut r = Reader::new(text);
        return Err(match r.skip().and_then(|()| r.end()) {
            Ok(()) => ProtocolError::NotAnObject,
            Err(fail) => invalid_json(&fail),
        });
    }
    let wire = wire_in(text).map_err(|fail| match fail {
        Fail::Data(reason) => ProtocolError::InvalidEnvelope {
            field: "envelope",
            reason: reason.into_owned(),
        },
        syntax @ Fail::Syntax(..) => invalid_json(&syntax),
    })?;
    let ([kind, _, timestamp, message_id, channel, offset, ack], payload) = wire;
    let kind = match kind {
        None => return Err(ProtocolError::MissingType),
        Some(raw) => envelope_string(raw, "type")?.into_owned(),
    };
    validate_type(&kind)?;
    let message_id = match message_id {
        None => None,
        Some(raw) => Some(MessageId::new(envelope_string(raw, "messageId")?)?),
    };
    let channel = match channel {
        None => None,
        Some(raw) => {
            let name = text_value(raw)
                .map_err(|_| ProtocolError::validation("channel", "must be a string"))?;
            validate_channel(&name)?;
            Some(name.into_owned())
        }
    };
    let timestamp = timestamp.map(timestamp_value).transpose()?;
    let offset = match offset {
        None => None,
        Some(raw) => Some(u64_value(raw).map_err(|_| ProtocolError::InvalidEnvelope {
            field: "offset",
            reason: "must be a non-negative integer".to_owned(),
        })?),
    };
    let ack = match ack {
        None => false,
        Some(raw) => bool_value(raw).map_err(|_| ProtocolError::InvalidEnvelope {
            field: "ack",
            reason: "must be a boolean".to_owned(),
        })?,
    };
    let payload = payload.unwrap_or(RawValue::NULL).to_owned();
    let meta = Meta::from_wire(timestamp, message_id, channel, offset, ack);
    Ok(Envelope::from_wire(kind, payload, meta))
}

/// The envelope's fields as raw text, `null` read as absent (serde's `Option`): `type` and the
/// five others, and the payload, read by serde_json itself as a raw value (one pass over what
/// is most of a frame's bytes, and the raw value the envelope keeps).
fn wire_in(text: &str) -> Read<([Option<&str>; 7], Option<&RawValue>)> {
    const NAMES: [&str; 7] = [
        "type",
        "payload",
        "timestamp",
        "messageId",
        "channel",
        "offset",
        "ack",
    ];
    let mut seen = [false; 7];
    let mut found = [None; 7];
    let mut payload = None;
    let mut r = Reader::new(text);
    r.expect(b'{', "expected `{`")?;
    if r.peek() == Some(b'}') {
        r.at += 1;
    } else {
        loop {
            // As serde: a repeated field is refused as soon as its name is read.
            let key = r.key()?;
            let known = NAMES.iter().position(|name| *name == key);
            if let Some(i) = known
                && seen[i]
            {
                return Err(Fail::Data(Cow::Owned(format!(
                    "duplicate field `{}`",
                    NAMES[i]
                ))));
            }
            r.expect(b':', "expected `:`")?;
            match known {
                Some(i) => {
                    seen[i] = true;
                    r.peek();
                    let start = r.at;
                    if r.byte() == Some(b'n') {
                        r.literal("null")?;
                    } else if i == 1 {
                        let rest = &text[start..];
                        let mut values = serde_json::Deserializer::from_str(rest).into_iter();
                        match values.next() {
                            Some(Ok(raw)) => {
                                r.at = start + values.byte_offset();
                                payload = Some(raw);
                            }
                            _ => return Err(Fail::Syntax("invalid JSON in `payload`", start)),
                        }
                    } else {
                        r.skip()?;
                        found[i] = Some(&text[start..r.at]);
                    }
                }
                None => r.skip()?,
            }
            match r.peek() {
                Some(b',') => r.at += 1,
                Some(b'}') => {
                    r.at += 1;
                    break;
                }
                _ => return Err(r.syntax("expected `,` or `}`")),
            }
        }
    }
    r.end()?;
    Ok((found, payload))
}

fn invalid_json(fail: &Fail) -> ProtocolError {
    ProtocolError::InvalidJson {
        detail: fail.to_string(),
    }
}

fn envelope_string<'a>(raw: &'a str, field: &'static str) -> Result<Cow<'a, str>, ProtocolError> {
    text_value(raw).map_err(|_| ProtocolError::InvalidEnvelope {
        field,
        reason: "must be a string".to_owned(),
    })
}

/// Timestamps are integers; a float with no fraction is accepted (as by `decode`).
fn timestamp_value(raw: &str) -> Result<u64, ProtocolError> {
    u64_value(raw)
        .ok()
        .or_else(|| whole_float(raw))
        .ok_or_else(|| ProtocolError::InvalidEnvelope {
            field: "timestamp",
            reason: "must be a non-negative integer of milliseconds".to_owned(),
        })
}

/// The largest timestamp a float may give (`decode` accepts floats below 9.007e15).
const FLOAT_TIMESTAMP_LIMIT: u64 = 9_007_000_000_000_000;

/// The JSON number `raw` read as an `f64` (correctly rounded, as serde_json with
/// `float_roundtrip` and Rust read it), if that is a whole number in `0..9.007e15`; `-0` and
/// numbers that round to it count as 0. Decided on the decimal digits, without the `f64`
/// parser (whose tables would cost the browser client ~14 kB).
fn whole_float(raw: &str) -> Option<u64> {
    // `raw` is one JSON value: a number if it starts like one.
    if !raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return None;
    }
    let (negative, rest) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, "0"),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // Saturating: anything beyond ±10^9 decides the same as ±10^9.
    let exponent = {
        let (minus, digits) = match exponent.as_bytes().first() {
            Some(b'-') => (true, &exponent[1..]),
            Some(b'+') => (false, &exponent[1..]),
            _ => (false, exponent),
        };
        let magnitude = digits.bytes().fold(0i64, |n, d| {
            (n * 10 + i64::from(d.wrapping_sub(b'0'))).min(1_000_000_000)
        });
        if minus { -magnitude } else { magnitude }
    };
    // The value is 0.D × 10^point, D the significant digits (no leading or trailing zeros).
    let digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
    let first = digits.iter().position(|&d| d != b'0');
    let Some(first) = first else {
        return Some(0); // ±0, whatever the exponent.
    };
    let last = digits.iter().rposition(|&d| d != b'0').unwrap_or(first);
    let significant = &digits[first..=last];
    let point = whole.len() as i64 - first as i64 + exponent;
    if point > 16 {
        return None; // At least 10^16.
    }
    if point <= -400 {
        return Some(0); // Below 10^-400: rounds to ±0.
    }
    // Split into the whole part (at most 16 digits) and the fraction's digits.
    let (int_digits, frac): (&[u8], Vec<u8>) = if point > 0 {
        let cut = (point as usize).min(significant.len());
        (&significant[..cut], significant[cut..].to_vec())
    } else {
        let mut frac = vec![b'0'; point.unsigned_abs() as usize];
        frac.extend_from_slice(significant);
        (&[], frac)
    };
    let mut int = int_digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    if point > 0 {
        for _ in int_digits.len()..point as usize {
            int *= 10;
        }
    }
    let frac = trim_zeros(frac);
    if frac.is_empty() {
        return (!negative || int == 0)
            .then_some(int)
            .filter(|&n| n < FLOAT_TIMESTAMP_LIMIT);
    }
    use std::cmp::Ordering::{Greater, Less};
    if negative {
        // Only what rounds to -0 (at most half the smallest subnormal, 2^-1075) is accepted.
        return (int == 0 && fraction_vs_power(&frac, 1075) != Greater).then_some(0);
    }
    let n = if int == 0 {
        if fraction_vs_power(&frac, 1075) != Greater {
            0
        } else if fraction_vs_power(&complement(&frac), 54) != Greater {
            1
        } else {
            return None;
        }
    } else if int >= 1 << 52 {
        // Spacing of at least 1: the nearest whole number, ties to even.
        int + match fraction_vs_power(&frac, 1) {
            Less => 0,
            Greater => 1,
            std::cmp::Ordering::Equal => int & 1,
        }
    } else {
        // Spacing 2^(k-52) for int in [2^k, 2^(k+1)): within half of it (2^-m) of a whole
        // number, the float is that number (ties go to it: its mantissa is even).
        let m = 53 - (63 - int.leading_zeros());
        if fraction_vs_power(&frac, m) != Greater {
            int
        } else if fraction_vs_power(&complement(&frac), m) != Greater {
            int + 1
        } else {
            return None;
        }
    };
    (n < FLOAT_TIMESTAMP_LIMIT).then_some(n)
}

fn trim_zeros(mut digits: Vec<u8>) -> Vec<u8> {
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    digits
}

/// The digits of 1 - 0.F (F without trailing zeros, not empty), without trailing zeros.
fn complement(frac: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = frac.iter().map(|&d| b'9' - (d - b'0')).collect();
    if let Some(last) = out.last_mut() {
        *last += 1; // F's last digit is not 0, so this stays a digit.
    }
    trim_zeros(out)
}

/// Compares the fraction 0.F (its decimal digits) with 2^-m.
fn fraction_vs_power(frac: &[u8], m: u32) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    // 2^-m has m digits after the point: digits of F past the (m+1)th only matter as "more".
    let keep = m as usize + 1;
    let mut digits: Vec<u8> = frac.iter().take(keep).map(|&d| d - b'0').collect();
    if frac.len() > keep
        && let Some(last) = digits.last_mut()
    {
        *last = (*last).max(1);
    }
    // 0.F × 2^m against 1, by doubling.
    let mut whole = 0u32;
    for _ in 0..m {
        let mut carry = 0;
        for d in digits.iter_mut().rev() {
            let v = *d * 2 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        whole = whole * 2 + u32::from(carry);
        if whole >= 2 {
            return Greater;
        }
    }
    match whole {
        0 => Less,
        _ if digits.iter().all(|&d| d == 0) => Equal,
        _ => Greater,
    }
}

/// A catalog payload the lean path reads: the control messages the client core acts on.
///
/// Implemented for [`Welcome`], [`Ack`], [`ErrorPayload`], [`Subscribed`] and [`Unsubscribed`].
pub trait LeanPayload: Payload {
    /// Reads the payload from its raw JSON text, as serde reads it (before
    /// [`Payload::validate`]); errors name the field relative to the payload.
    fn read_lean(raw: &str) -> Result<Self, ProtocolError>;
}

/// A payload's shape error: field `payload`, as with the feature `lean-errors`.
fn shape(fail: Fail) -> ProtocolError {
    let reason = match fail {
        Fail::Syntax(what, _) => Cow::Borrowed(what),
        Fail::Data(reason) => reason,
    };
    ProtocolError::validation("", reason.into_owned())
}

impl LeanPayload for Welcome {
    fn read_lean(raw: &str) -> Result<Self, ProtocolError> {
        let read = || -> Read<Self> {
            let [
                connection_id,
                user_id,
                protocol,
                interval,
                features,
                server_time,
            ] = members(
                raw,
                [
                    "connectionId",
                    "userId",
                    "protocol",
                    "heartbeatIntervalMs",
                    "features",
                    "serverTime",
                ],
                [false, true, false, false, false, false],
            )?;
            let protocol = u64_value(protocol.unwrap_or_default())?;
            Ok(Self {
                connection_id: text_value(connection_id.unwrap_or_default())?.into_owned(),
                user_id: match user_id {
                    Some(raw) if !is_null(raw) => Some(text_value(raw)?.into_owned()),
                    _ => None,
                },
                protocol: u32::try_from(protocol)
                    .map_err(|_| data("invalid value: expected a u32"))?,
                heartbeat_interval_ms: u64_value(interval.unwrap_or_default())?,
                features: text_list(features.unwrap_or_default())?,
                server_time: u64_value(server_time.unwrap_or_default())?,
            })
        };
        read().map_err(shape)
    }
}

impl LeanPayload for Ack {
    fn read_lean(raw: &str) -> Result<Self, ProtocolError> {
        let read = || -> Read<Self> {
            let [message_id] = members(raw, ["messageId"], [false])?;
            Ok(Self {
                message_id: message_id_value(message_id.unwrap_or_default())?,
            })
        };
        read().map_err(shape)
    }
}

impl LeanPayload for ErrorPayload {
    fn read_lean(raw: &str) -> Result<Self, ProtocolError> {
        let read = || -> Read<Self> {
            let [code, message, ref_id] =
                members(raw, ["code", "message", "refId"], [false, false, true])?;
            Ok(Self {
                code: ErrorCode::from(text_value(code.unwrap_or_default())?.as_ref()),
                message: text_value(message.unwrap_or_default())?.into_owned(),
                ref_id: match ref_id {
                    Some(raw) if !is_null(raw) => Some(message_id_value(raw)?),
                    _ => None,
                },
            })
        };
        read().map_err(shape)
    }
}

impl LeanPayload for Subscribed {
    fn read_lean(raw: &str) -> Result<Self, ProtocolError> {
        let read = || -> Read<Self> {
            let [channel, offset, epoch, recovered, missed] = members(
                raw,
                ["channel", "offset", "epoch", "recovered", "missed"],
                [false; 5],
            )?;
            Ok(Self {
                channel: text_value(channel.unwrap_or_default())?.into_owned(),
                offset: u64_value(offset.unwrap_or_default())?,
                epoch: text_value(epoch.unwrap_or_default())?.into_owned(),
                recovered: bool_value(recovered.unwrap_or_default())?,
                missed: u64_value(missed.unwrap_or_default())?,
            })
        };
        read().map_err(shape)
    }
}

impl LeanPayload for Unsubscribed {
    fn read_lean(raw: &str) -> Result<Self, ProtocolError> {
        let read = || -> Read<Self> {
            let [channel] = members(raw, ["channel"], [false])?;
            Ok(Self {
                channel: text_value(channel.unwrap_or_default())?.into_owned(),
            })
        };
        read().map_err(shape)
    }
}

impl Envelope {
    /// Reads the payload as the control message `P` on the lean path: the twin of
    /// [`Envelope::typed`] (type check, read, [`Payload::validate`]), whose errors name only
    /// `payload` for a shape error (as with the feature `lean-errors`).
    ///
    /// ```
    /// use cerebrum_protocol::{decode_lean, Ack};
    /// let envelope = decode_lean(r#"{"type":"ack","payload":{"messageId":"m1","extra":null}}"#)?;
    /// assert_eq!(envelope.typed_lean::<Ack>()?, envelope.typed::<Ack>()?);
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    pub fn typed_lean<P: LeanPayload>(&self) -> Result<P, ProtocolError> {
        if self.kind() != P::TYPE {
            return Err(ProtocolError::validation(
                "type",
                format!("expected `{}`, found `{}`", P::TYPE, self.kind()),
            ));
        }
        let payload = P::read_lean(self.payload().get()).map_err(|err| err.within("payload"))?;
        payload.validate().map_err(|err| err.within("payload"))?;
        Ok(payload)
    }
}

/// Reads the unsigned integer member `name` of the JSON text `raw`, as serde reads a struct
/// with that one `u64` field (an object with the member, unknown members ignored, or a
/// one-element array); `None` for anything else. The client core reads a `pong`'s `nonce` so.
///
/// ```
/// use cerebrum_protocol::lean_u64_member;
/// assert_eq!(lean_u64_member(r#"{"nonce":7,"sentAt":1.5}"#, "nonce"), Some(7));
/// assert_eq!(lean_u64_member(r#"{"nonce":-7}"#, "nonce"), None);
/// ```
#[must_use]
pub fn lean_u64_member(raw: &str, name: &str) -> Option<u64> {
    let [value] = members(raw, [name], [false]).ok()?;
    u64_value(value?).ok()
}
