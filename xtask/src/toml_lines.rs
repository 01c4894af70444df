//! A small line-oriented TOML scanner.
//!
//! It knows just enough TOML to find table headers, keys and string values
//! line by line, so that `release` can rewrite a `version` string in place
//! without touching a single other byte of a manifest.

use std::ops::Range;

/// A token of a TOML line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A bare word: a bare key, `true`, `false`, a number or a date.
    Bare(String),
    /// A single-line string, basic (`"..."`) or literal (`'...'`).
    Str {
        /// The value of the string (escapes of basic strings decoded).
        value: String,
        /// Byte range, within the line, of the content between the quotes.
        content: Range<usize>,
    },
    /// A multi-line string; its value is never needed and is not kept.
    MultiLineStr,
    /// One of `[ ] { } = , .`.
    Punct(char),
}

/// What a line is at the top level of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// Blank, comment only, or the continuation of a multi-line value.
    Other,
    /// A table header, `[a.b]` or `[[a.b]]`.
    Header,
    /// A key/value pair that starts on this line.
    KeyValue {
        /// The parts of the (possibly dotted) key.
        key: Vec<String>,
    },
}

/// One scanned line.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// What the line is.
    pub(crate) kind: LineKind,
    /// The table the line belongs to (for a header, the table it opens;
    /// empty for the root table).
    pub(crate) table: Vec<String>,
    /// The value tokens: those after `=` on a key/value line, or all tokens
    /// of a continuation line.
    pub(crate) tokens: Vec<Token>,
    /// For a continuation line, the index of the key/value line it continues.
    pub(crate) continues: Option<usize>,
}

/// Splits `text` into `(body, terminator)` pairs, where the terminator is
/// `"\n"`, `"\r\n"` or `""` (last line without a newline). Joining all pairs
/// gives back `text` exactly.
pub(crate) fn split_lines(text: &str) -> Vec<(&str, &str)> {
    text.split_inclusive('\n')
        .map(|line| {
            let body_len = if line.ends_with("\r\n") {
                line.len() - 2
            } else if line.ends_with('\n') {
                line.len() - 1
            } else {
                line.len()
            };
            line.split_at(body_len)
        })
        .collect()
}

/// Lexical state carried from one line to the next.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    /// Nesting depth of open arrays and inline tables.
    depth: usize,
    /// The quote character of a multi-line string left open, if any.
    multi_line: Option<u8>,
}

impl State {
    /// Whether the next line starts at the top level of the document.
    fn at_top(self) -> bool {
        self.depth == 0 && self.multi_line.is_none()
    }
}

/// Scans `text` line by line (lines as given by [`split_lines`]).
pub(crate) fn scan(text: &str) -> Vec<Line> {
    let mut state = State::default();
    let mut table: Vec<String> = Vec::new();
    let mut open_line: Option<usize> = None;
    let mut lines = Vec::new();
    for (index, (body, _)) in split_lines(text).into_iter().enumerate() {
        if state.at_top() {
            open_line = None;
            if body.trim_start().starts_with('[') {
                table = header_parts(body);
                lines.push(Line {
                    kind: LineKind::Header,
                    table: table.clone(),
                    tokens: Vec::new(),
                    continues: None,
                });
                continue;
            }
            let tokens = tokenize(body, &mut state);
            let line = match tokens.iter().position(|t| *t == Token::Punct('=')) {
                Some(eq) => {
                    let key = key_parts(&tokens[..eq]);
                    if !state.at_top() {
                        open_line = Some(index);
                    }
                    Line {
                        kind: LineKind::KeyValue { key },
                        table: table.clone(),
                        tokens: tokens[eq + 1..].to_vec(),
                        continues: None,
                    }
                }
                None => Line {
                    kind: LineKind::Other,
                    table: table.clone(),
                    tokens,
                    continues: None,
                },
            };
            lines.push(line);
        } else {
            let tokens = tokenize(body, &mut state);
            lines.push(Line {
                kind: LineKind::Other,
                table: table.clone(),
                tokens,
                continues: open_line,
            });
        }
    }
    lines
}

/// The dotted parts of a table header line such as `[target.'cfg(unix)'.dependencies]`.
fn header_parts(body: &str) -> Vec<String> {
    let mut state = State::default();
    key_parts(&tokenize(body, &mut state))
}

/// The names in a key or header token list (bare words and strings, in order).
fn key_parts(tokens: &[Token]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|t| match t {
            Token::Bare(word) => Some(word.clone()),
            Token::Str { value, .. } => Some(value.clone()),
            Token::MultiLineStr | Token::Punct(_) => None,
        })
        .collect()
}

/// Whether `b` ends a bare word.
fn ends_bare(b: u8) -> bool {
    b.is_ascii_whitespace() || b"[]{}=,.#\"'".contains(&b)
}

/// Finds the end (index just past the closing delimiter) of a multi-line
/// string with quote `quote`, searching `bytes` from `from`.
fn find_multi_line_end(bytes: &[u8], from: usize, quote: u8) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        if quote == b'"' && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(&[quote; 3]) {
            // Up to two more quotes may belong to the content (`""""` ends
            // with a quote inside the string).
            let mut end = i + 3;
            while end < bytes.len() && bytes[end] == quote && end < i + 5 {
                end += 1;
            }
            return Some(end);
        }
        i += 1;
    }
    None
}

/// Tokenizes one line, updating the nesting/multi-line state.
fn tokenize(body: &str, state: &mut State) -> Vec<Token> {
    let bytes = body.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    if let Some(quote) = state.multi_line {
        match find_multi_line_end(bytes, 0, quote) {
            Some(end) => {
                state.multi_line = None;
                i = end;
            }
            None => return tokens,
        }
    }
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' => i += 1,
            b'#' => break,
            b'[' | b'{' => {
                state.depth += 1;
                tokens.push(Token::Punct(char::from(b)));
                i += 1;
            }
            b']' | b'}' => {
                state.depth = state.depth.saturating_sub(1);
                tokens.push(Token::Punct(char::from(b)));
                i += 1;
            }
            b'=' | b',' | b'.' => {
                tokens.push(Token::Punct(char::from(b)));
                i += 1;
            }
            b'"' | b'\'' => {
                if bytes[i..].starts_with(&[b; 3]) {
                    tokens.push(Token::MultiLineStr);
                    match find_multi_line_end(bytes, i + 3, b) {
                        Some(end) => i = end,
                        None => {
                            state.multi_line = Some(b);
                            break;
                        }
                    }
                } else {
                    let start = i + 1;
                    let mut j = start;
                    let mut value = String::new();
                    while j < bytes.len() && bytes[j] != b {
                        if b == b'"' && bytes[j] == b'\\' && j + 1 < bytes.len() {
                            j += 2;
                        } else {
                            j += 1;
                        }
                    }
                    let raw = &body[start..j];
                    if b == b'"' {
                        unescape_into(raw, &mut value);
                    } else {
                        value.push_str(raw);
                    }
                    tokens.push(Token::Str {
                        value,
                        content: start..j,
                    });
                    i = (j + 1).min(bytes.len());
                }
            }
            _ => {
                let start = i;
                while i < bytes.len() && !ends_bare(bytes[i]) {
                    i += 1;
                }
                tokens.push(Token::Bare(body[start..i].to_owned()));
            }
        }
    }
    tokens
}

/// Decodes the common escapes of a basic string (enough for paths and versions).
fn unescape_into(raw: &str, out: &mut String) {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shorthand for a bare token.
    fn bare(s: &str) -> Token {
        Token::Bare(s.to_owned())
    }

    #[test]
    fn split_lines_round_trips_all_terminators() {
        let text = "a = 1\r\nb = 2\n\nc = 3";
        let parts = split_lines(text);
        assert_eq!(
            parts,
            vec![
                ("a = 1", "\r\n"),
                ("b = 2", "\n"),
                ("", "\n"),
                ("c = 3", "")
            ]
        );
        let joined: String = parts.iter().map(|(b, t)| format!("{b}{t}")).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn headers_and_keys_are_recognised() {
        let text = "[package]\nname = \"x\" # comment\n[target.'cfg(unix)'.dependencies]\nfoo.path = \"../foo\"\n";
        let lines = scan(text);
        assert_eq!(lines[0].kind, LineKind::Header);
        assert_eq!(lines[0].table, vec!["package"]);
        assert_eq!(
            lines[1].kind,
            LineKind::KeyValue {
                key: vec!["name".to_owned()]
            }
        );
        assert_eq!(lines[2].table, vec!["target", "cfg(unix)", "dependencies"]);
        assert_eq!(
            lines[3].kind,
            LineKind::KeyValue {
                key: vec!["foo".to_owned(), "path".to_owned()]
            }
        );
        assert_eq!(lines[3].table, vec!["target", "cfg(unix)", "dependencies"]);
    }

    #[test]
    fn string_spans_point_at_the_content() {
        let body = r#"x = { path = "crates/a", version = '0.1.0' }"#;
        let lines = scan(body);
        let strs: Vec<(String, &str)> = lines[0]
            .tokens
            .iter()
            .filter_map(|t| match t {
                Token::Str { value, content } => Some((value.clone(), &body[content.clone()])),
                _ => None,
            })
            .collect();
        assert_eq!(
            strs,
            vec![
                ("crates/a".to_owned(), "crates/a"),
                ("0.1.0".to_owned(), "0.1.0")
            ]
        );
        assert_eq!(lines[0].tokens[0], Token::Punct('{'));
        assert_eq!(lines[0].tokens[1], bare("path"));
    }

    #[test]
    fn multi_line_arrays_do_not_look_like_headers() {
        let text = "[workspace]\nmembers = [\n  \"a\",\n  [\"weird\"],\n]\nversion = \"1.0.0\"\n";
        let lines = scan(text);
        assert_eq!(lines[2].continues, Some(1));
        assert_eq!(lines[3].kind, LineKind::Other);
        assert_eq!(lines[3].continues, Some(1));
        assert_eq!(lines[4].continues, Some(1));
        assert_eq!(lines[5].table, vec!["workspace"]);
        assert_eq!(
            lines[5].kind,
            LineKind::KeyValue {
                key: vec!["version".to_owned()]
            }
        );
    }

    #[test]
    fn multi_line_strings_hide_their_content() {
        let text = "description = \"\"\"\n[not.a.header]\nversion = \"9.9.9\"\n\"\"\"\nversion = \"1.2.3\"\n";
        let lines = scan(text);
        assert_eq!(lines[1].kind, LineKind::Other);
        assert!(lines[1].tokens.is_empty());
        assert_eq!(lines[2].kind, LineKind::Other);
        assert!(lines[2].table.is_empty());
        assert_eq!(
            lines[4].kind,
            LineKind::KeyValue {
                key: vec!["version".to_owned()]
            }
        );
    }

    #[test]
    fn escapes_in_basic_strings_are_decoded() {
        let body = r#"a = "x\"y\\z""#;
        let lines = scan(body);
        match &lines[0].tokens[0] {
            Token::Str { value, content } => {
                assert_eq!(value, "x\"y\\z");
                assert_eq!(&body[content.clone()], r#"x\"y\\z"#);
            }
            other => panic!("unexpected token {other:?}"),
        }
    }
}
