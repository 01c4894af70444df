//! A minimal JSON writer for the documents the bindings hand to JavaScript (commands, events).
//!
//! Written by hand rather than derived: the derived serialisers and serde_json's float writer
//! were a tenth of the client module, for a few flat objects. The builder's methods are kept
//! out of line (one copy each, not one per field written): these documents are not hot.

use std::fmt::Write as _;
use std::time::Duration;

/// One JSON object being written: fields, then [`Object::finish`].
pub(crate) struct Object {
    out: String,
    empty: bool,
}

impl Object {
    /// `{`.
    pub(crate) fn plain() -> Self {
        let mut out = String::with_capacity(64);
        out.push('{');
        Self { out, empty: true }
    }

    /// `{"kind":"<kind>"`: a command or an event.
    pub(crate) fn new(kind: &str) -> Self {
        let mut object = Self::plain();
        object.str("kind", kind);
        object
    }

    #[inline(never)]
    fn key(&mut self, key: &str) -> &mut String {
        // Keys are our own camelCase names: nothing to escape.
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        &mut self.out
    }

    /// A string field.
    #[inline(never)]
    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        push_str(self.key(key), value);
        self
    }

    /// An integer field.
    #[inline(never)]
    pub(crate) fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        let out = self.key(key);
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{value}");
        self
    }

    /// A duration field, in milliseconds.
    #[inline(never)]
    pub(crate) fn ms(&mut self, key: &str, value: Duration) -> &mut Self {
        push_ms(self.key(key), value);
        self
    }

    /// A boolean field.
    #[inline(never)]
    pub(crate) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// A field whose value is already JSON text.
    #[inline(never)]
    pub(crate) fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    /// The finished object.
    pub(crate) fn finish(&mut self) -> String {
        self.out.push('}');
        std::mem::take(&mut self.out)
    }
}

/// `value` as a JSON string literal.
pub(crate) fn push_str(out: &mut String, value: &str) {
    out.push('"');
    let mut rest = value;
    while let Some(at) = rest.find(|c: char| c < ' ' || c == '"' || c == '\\') {
        out.push_str(&rest[..at]);
        let c = rest[at..].chars().next().unwrap_or(' ');
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// A JSON array of strings.
pub(crate) fn str_array<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, value);
    }
    out.push(']');
    out
}

/// `value` as a JSON number of milliseconds, exactly (to the nanosecond: `15187.5`,
/// `0.000001`), whole milliseconds without a fraction. Written from the integer nanoseconds, with
/// no float formatting: Rust's float printing (Grisu/Dragon, ~20 kB) stays out of the module.
pub(crate) fn push_ms(out: &mut String, value: Duration) {
    // Writing to a `String` cannot fail.
    // Whole milliseconds as a `u64` (`as_millis` is a `u128`, whose printing is ~1.5 kB more).
    let _ = write!(
        out,
        "{}",
        value
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(value.subsec_millis()))
    );
    let nanos = value.subsec_nanos() % 1_000_000;
    if nanos != 0 {
        let mut digits = [b'0'; 6];
        let mut rest = nanos;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let len = digits
            .iter()
            .rposition(|&d| d != b'0')
            .map_or(0, |at| at + 1);
        out.push('.');
        out.extend(digits[..len].iter().map(|&d| char::from(d)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_json_that_serde_reads_back() {
        let text = Object::new("status")
            .str("reason", "a \"quoted\"\n\\ tab\t and \u{1} é")
            .uint("attempt", u64::MAX)
            .ms("delayMs", Duration::from_micros(15_187_500))
            .ms("whole", Duration::from_secs(3))
            .bool("yes", true)
            .raw("list", &str_array(["a", "b\"c"]))
            .finish();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["kind"], "status");
        assert_eq!(value["reason"], "a \"quoted\"\n\\ tab\t and \u{1} é");
        assert_eq!(value["attempt"], u64::MAX);
        assert_eq!(value["delayMs"], 15_187.5);
        assert!(text.contains(r#""whole":3000,"#), "{text}");
        assert_eq!(value["yes"], true);
        assert_eq!(value["list"], serde_json::json!(["a", "b\"c"]));
        assert_eq!(str_array([]), "[]");
    }

    #[test]
    fn milliseconds_are_exact_decimals() {
        for (nanos, text) in [
            (0, "0"),
            (1, "0.000001"),
            (15_187_500_000, "15187.5"),
            (1_234_567, "1.234567"),
            (3_000_000_000, "3000"),
            (u64::MAX, "18446744073709.551615"),
            (1 << 62, "4611686018427.387904"),
        ] {
            let mut out = String::new();
            push_ms(&mut out, Duration::from_nanos(nanos));
            assert_eq!(out, text);
            let read: f64 = out.parse().unwrap();
            let float = Duration::from_nanos(nanos).as_secs_f64() * 1000.0;
            assert!((read - float).abs() <= float * 1e-15, "{out}");
        }
    }
}
