//! Dotted key paths such as `connections.pets_db.url` or `connections."my.db".url`.

use crate::error::{Error, Result};

/// Splits a dotted key path into its keys.
///
/// A key containing a dot is written in double quotes (`connections."my.db".url`); the empty
/// path names the root.
pub(crate) fn parse(path: &str) -> Result<Vec<String>> {
    let invalid = |reason| Error::KeyPath { path: path.to_owned(), reason };
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys = Vec::new();
    let mut chars = path.chars().peekable();
    loop {
        let mut key = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => key.push(c),
                    None => return Err(invalid("unterminated quoted key")),
                }
            }
            if !matches!(chars.peek(), None | Some('.')) {
                return Err(invalid("a quoted key must be followed by `.` or the end"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                key.push(c);
                chars.next();
            }
            if key.is_empty() {
                return Err(invalid("empty key"));
            }
        }
        keys.push(key);
        match chars.next() {
            None => return Ok(keys),
            Some(_dot) if chars.peek().is_none() => return Err(invalid("empty key")),
            Some(_dot) => {}
        }
    }
}

/// Joins keys back into a dotted path, quoting keys that need it.
pub(crate) fn join<S: AsRef<str>>(keys: &[S]) -> String {
    let shown: Vec<String> = keys
        .iter()
        .map(|k| {
            let k = k.as_ref();
            if k.is_empty() || k.contains(['.', '"']) { format!("\"{k}\"") } else { k.to_owned() }
        })
        .collect();
    shown.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_quoted_keys() {
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert_eq!(parse("a").unwrap(), ["a"]);
        assert_eq!(parse("connections.pets_db.url").unwrap(), ["connections", "pets_db", "url"]);
        assert_eq!(parse(r#"connections."my.db".url"#).unwrap(), ["connections", "my.db", "url"]);
        assert_eq!(parse(r#""a b""#).unwrap(), ["a b"]);
    }

    #[test]
    fn malformed_paths_are_errors() {
        for bad in ["a..b", ".a", "a.", r#""open"#, r#""a"b"#] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, Error::KeyPath { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn join_round_trips() {
        for path in ["a", "connections.pets_db.url", r#"connections."my.db".url"#] {
            assert_eq!(join(&parse(path).unwrap()), path);
        }
    }
}
