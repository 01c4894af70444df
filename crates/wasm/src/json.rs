//! A minimal JSON writer for the documents the bindings hand to JavaScript (commands, events).
//!
//! Written by hand rather than derived: the derived serialisers and serde_json's float writer
//! were a tenth of the client module, for a few flat objects. The builder's methods are kept
//! out of line (one copy each, not one per field written): these documents are not hot.

use std::fmt::Write as _;

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

    /// A number field (finite; a non-finite value is written as `null`, as JSON has no NaN).
    #[inline(never)]
    pub(crate) fn num(&mut self, key: &str, value: f64) -> &mut Self {
        push_f64(self.key(key), value);
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

/// `value` as a JSON number: integers below 2^53 without a fraction (the usual case, and no
/// float formatting), others in Rust's shortest round-trip form, which JavaScript reads back
/// as the same number; `null` if not finite.
pub(crate) fn push_f64(out: &mut String, value: f64) {
    if !value.is_finite() {
        out.push_str("null");
    } else if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        // Exact: integral and below 2^53.
        #[allow(clippy::cast_possible_truncation)]
        let whole = value as i64;
        let _ = write!(out, "{whole}");
    } else {
        let _ = write!(out, "{value}");
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
            .num("delayMs", 15_187.5)
            .num("whole", 3_000.0)
            .num("nan", f64::NAN)
            .bool("yes", true)
            .raw("list", &str_array(["a", "b\"c"]))
            .finish();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["kind"], "status");
        assert_eq!(value["reason"], "a \"quoted\"\n\\ tab\t and \u{1} é");
        assert_eq!(value["attempt"], u64::MAX);
        assert_eq!(value["delayMs"], 15_187.5);
        assert!(text.contains(r#""whole":3000,"#), "{text}");
        assert_eq!(value["nan"], serde_json::Value::Null);
        assert_eq!(value["yes"], true);
        assert_eq!(value["list"], serde_json::json!(["a", "b\"c"]));
        assert_eq!(str_array([]), "[]");
    }

    #[test]
    fn fractions_round_trip() {
        for value in [0.1, 1.0 / 3.0, 1e-7, 123_456.789, -2.5, 1e300] {
            let mut out = String::new();
            push_f64(&mut out, value);
            assert_eq!(out.parse::<f64>().unwrap(), value, "{out}");
        }
    }
}
