//! `Debug` output that shows the shape of secrets (keys, nesting) and never a value.

use std::fmt;

use toml::{Table, Value};

/// What a redacted value prints as.
pub(crate) const MASK: &str = "***";

/// Formats a table as its keys, each value replaced by `***` (tables and arrays keep their shape).
pub(crate) struct RedactedTable<'a>(pub(crate) &'a Table);

struct RedactedValue<'a>(&'a Value);

impl fmt::Debug for RedactedTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, RedactedValue(v)))).finish()
    }
}

impl fmt::Debug for RedactedValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Table(table) => RedactedTable(table).fmt(f),
            Value::Array(items) => f.debug_list().entries(items.iter().map(RedactedValue)).finish(),
            _ => f.write_str(MASK),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_keys_and_shape_only() {
        let table: Table = "key = 'sekrit'\n[db]\nport = 5432\nhosts = ['h1', 'h2']\n".parse().unwrap();
        let shown = format!("{:?}", RedactedTable(&table));
        assert_eq!(shown, r#"{"key": ***, "db": {"port": ***, "hosts": [***, ***]}}"#);
    }
}
