//! Key paths such as `connections.pets_db.url`, `servers[0].name` or `connections."my.db".url`.
//!
//! Grammar: keys separated by `.`, each followed by any number of array indices `[n]`. A bare
//! key is any run of characters other than `.`, `[`, `]`, `"` and `'`; any other key is quoted:
//! `"..."` with the TOML escapes (`\"`, `\\`, `\n`, `\t`, `\r`, `\b`, `\f`, `\uXXXX`,
//! `\UXXXXXXXX`) or `'...'` taken literally. The empty path names the root. Anything else (an
//! empty key as in `a..b`, an unclosed `[` or quote, a non-numeric index) is an
//! [`Error::KeyPath`].

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// One step of a key path: a key of a table or an index into an array.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    /// A key of a table.
    Key(String),
    /// An index into an array.
    Index(usize),
}

impl Segment {
    /// A key segment.
    pub(crate) fn key(key: impl Into<String>) -> Self {
        Self::Key(key.into())
    }

    /// The key, if this is a key segment.
    pub(crate) fn as_key(&self) -> Option<&str> {
        match self {
            Self::Key(key) => Some(key),
            Self::Index(_) => None,
        }
    }
}

/// Splits a key path into its segments.
pub(crate) fn parse(path: &str) -> Result<Vec<Segment>> {
    let invalid = |reason| Error::KeyPath { path: path.to_owned(), reason };
    let mut segments = Vec::new();
    if path.is_empty() {
        return Ok(segments);
    }
    let mut chars = path.chars().peekable();
    loop {
        // a key
        let key = match chars.peek() {
            Some('"') => {
                chars.next();
                quoted(&mut chars).map_err(invalid)?
            }
            Some('\'') => {
                chars.next();
                let mut key = String::new();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => key.push(c),
                        None => return Err(invalid("unterminated quoted key")),
                    }
                }
                key
            }
            _ => {
                let mut key = String::new();
                while let Some(&c) = chars.peek() {
                    match c {
                        '.' | '[' => break,
                        ']' => return Err(invalid("`]` without `[`")),
                        '"' | '\'' => return Err(invalid("a quote inside a key: quote the whole key")),
                        _ => key.push(c),
                    }
                    chars.next();
                }
                if key.is_empty() {
                    return Err(invalid("empty key"));
                }
                key
            }
        };
        segments.push(Segment::Key(key));
        // its indices
        while chars.peek() == Some(&'[') {
            chars.next();
            let mut digits = String::new();
            loop {
                match chars.next() {
                    Some(']') => break,
                    Some(c) if c.is_ascii_digit() => digits.push(c),
                    Some(_) => return Err(invalid("an array index must be a number, as in `[0]`")),
                    None => return Err(invalid("unclosed `[`")),
                }
            }
            let index = digits.parse().map_err(|_| invalid("an array index must be a number, as in `[0]`"))?;
            segments.push(Segment::Index(index));
        }
        match chars.next() {
            None => return Ok(segments),
            Some('.') if chars.peek().is_none() => return Err(invalid("empty key")),
            Some('.') => {}
            Some(_) => return Err(invalid("a key or index must be followed by `.`, `[` or the end")),
        }
    }
}

/// The rest of a `"..."` key, the opening quote consumed.
fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, &'static str> {
    let mut key = String::new();
    loop {
        match chars.next() {
            Some('"') => return Ok(key),
            Some('\\') => {
                let c = match chars.next() {
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    Some('b') => '\u{8}',
                    Some('f') => '\u{c}',
                    Some(u @ ('u' | 'U')) => {
                        let len = if u == 'u' { 4 } else { 8 };
                        let hex: String = chars.by_ref().take(len).collect();
                        let code = (hex.len() == len).then(|| u32::from_str_radix(&hex, 16).ok()).flatten();
                        code.and_then(char::from_u32).ok_or("invalid unicode escape in a quoted key")?
                    }
                    Some(_) => return Err("unknown escape in a quoted key"),
                    None => return Err("unterminated quoted key"),
                };
                key.push(c);
            }
            Some(c) => key.push(c),
            None => return Err("unterminated quoted key"),
        }
    }
}

/// Writes segments back as a path that [`parse`] reads back, quoting and escaping keys that need
/// it (so control characters never reach a message raw).
pub(crate) fn join(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Key(key) => {
                if i > 0 {
                    out.push('.');
                }
                push_key(&mut out, key);
            }
        }
    }
    out
}

fn push_key(out: &mut String, key: &str) {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        out.push_str(key);
        return;
    }
    out.push('"');
    for c in key.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(path: &str) -> Vec<Segment> {
        parse(path).unwrap()
    }

    fn k(key: &str) -> Segment {
        Segment::key(key)
    }

    #[test]
    fn plain_quoted_and_indexed_paths() {
        assert_eq!(keys(""), []);
        assert_eq!(keys("a"), [k("a")]);
        assert_eq!(keys("connections.pets_db.url"), [k("connections"), k("pets_db"), k("url")]);
        assert_eq!(keys(r#"connections."my.db".url"#), [k("connections"), k("my.db"), k("url")]);
        assert_eq!(keys("connections.'my.db'.url"), [k("connections"), k("my.db"), k("url")]);
        assert_eq!(keys(r#""a b""#), [k("a b")]);
        assert_eq!(keys(r#""say \"hi\"\\""#), [k(r#"say "hi"\"#)]);
        assert_eq!(keys(r#""tab\there\u00e9""#), [k("tab\there\u{e9}")]);
        assert_eq!(keys("servers[0].name"), [k("servers"), Segment::Index(0), k("name")]);
        assert_eq!(keys("m[1][12]"), [k("m"), Segment::Index(1), Segment::Index(12)]);
        assert_eq!(keys(r#""a.b"[3]"#), [k("a.b"), Segment::Index(3)]);
    }

    #[test]
    fn malformed_paths_are_errors() {
        for bad in [
            "a..b",
            ".a",
            "a.",
            "a[",
            "a[x]",
            "a[]",
            "a[-1]",
            "a[1",
            "a]",
            "[0]",
            r#""open"#,
            "'open",
            r#""a"b"#,
            r#"a"b""#,
            r#""bad \q""#,
            r#""\u12""#,
            "a[0]b",
            "a[99999999999999999999999]",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, Error::KeyPath { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn join_round_trips_and_escapes_control_characters() {
        for path in ["a", "connections.pets_db.url", r#"connections."my.db".url"#, "servers[0].name", r#""a\"b""#] {
            assert_eq!(join(&parse(path).unwrap()), path);
        }
        let shown = join(&[k("line\nbreak"), k("bell\u{7}")]);
        assert_eq!(shown, r#""line\nbreak"."bell\u0007""#);
        assert_eq!(parse(&shown).unwrap(), [k("line\nbreak"), k("bell\u{7}")]);
    }
}
