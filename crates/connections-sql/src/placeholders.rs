//! Named query parameters (`:name`, as in SQLAlchemy's `text()`) rewritten to a backend's
//! positional placeholders: `$1`, `$2` for PostgreSQL, `?` for SQLite and MySQL.
//!
//! [`rewrite`] makes one pass over the SQL's bytes and copies unchanged stretches in one piece; the
//! output is only allocated once something has to change. It knows just enough of each dialect's
//! lexical rules to leave alone what is not SQL code:
//!
//! - single-quoted strings (`''` escapes a quote; `\'` too under [`Style::Question`], as MySQL reads
//!   it, and in PostgreSQL's `E'...'` strings);
//! - double-quoted identifiers (`""` escapes a quote; `\"` too under [`Style::Question`], where MySQL
//!   reads `"..."` as a string with backslash escapes);
//! - backtick identifiers (`` ` `` doubled escapes one);
//! - `-- ...` line comments and `/* ... */` block comments (nested under [`Style::Dollar`], as in
//!   PostgreSQL; MySQL and SQLite end a comment at the first `*/`); `#` is not a comment (it is an
//!   operator in PostgreSQL, so in MySQL a `:name` inside a `#` comment is rewritten too);
//! - under [`Style::Dollar`], PostgreSQL's dollar-quoted strings `$$...$$` and `$tag$...$tag$`
//!   (`$1` is a positional parameter, not a dollar quote).
//!
//! Elsewhere a placeholder is `:` then `[A-Za-z_][A-Za-z0-9_]*`, following SQLAlchemy's rule
//! `(?<![:\w\\]):(\w+)(?!:)`: the colon must not follow `:` or a word character (so `x::int`,
//! `a[lo:hi]` and `12:30` are untouched), and the name must not be followed by a single `:`
//! (`:a:b` is text; `:id::int` is a placeholder followed by a cast, where SQLAlchemy's regex would
//! backtrack and bind `:i`).
//! A colon followed by a digit, `=` (MySQL's `:=`) or anything else that cannot start a name is
//! plain text. `\:` writes a literal colon: the backslash is dropped and what follows is not a
//! placeholder (inside strings and comments nothing is rewritten, so no escape is needed there).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use connections_core::{Error, Param, Result};

/// How a backend writes positional parameters; it also picks the dialect's lexical rules (see the
/// module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// PostgreSQL: `$1`, `$2`, ... numbered by first appearance; a name used twice reuses its
    /// number, so each value is bound once. Dollar quotes and nested block comments are
    /// recognised; backslash escapes only in `E'...'` strings.
    Dollar,
    /// SQLite and MySQL: `?`, one value per occurrence, so a name used twice binds its value
    /// twice. Backslash escapes are recognised in single- and double-quoted text (as MySQL reads
    /// them; for SQLite this only matters for text ending in a backslash).
    Question,
}

/// A query rewritten for a backend: SQL with positional placeholders and the values to bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rewritten<'a> {
    /// The rewritten SQL; borrowed from the input when nothing had to change (no placeholder and
    /// no `\:` escape).
    pub(crate) sql: Cow<'a, str>,
    /// The values in binding order: one per number (`$n` binds `values[n - 1]`) for
    /// [`Style::Dollar`], one per `?` for [`Style::Question`].
    pub(crate) values: Vec<Param>,
    /// How many statements the text holds (runs of code between `;`s; strings, quoted
    /// identifiers and comments do not split them).
    pub(crate) statements: usize,
}

impl Rewritten<'_> {
    /// The text as one query: an error when it holds several statements, which the databases
    /// would treat differently (SQLite would run them all and merge their rows, PostgreSQL and
    /// MySQL refuse them on a prepared statement).
    pub(crate) fn single_query(&self) -> Result<&str> {
        if self.statements > 1 {
            return Err(Error::statement(format!(
                "the query text holds {} statements separated by `;`; a query runs one statement, so send them one at a time (a trailing `;` is fine)",
                self.statements
            )));
        }
        Ok(&self.sql)
    }
}

/// Rewrites the named placeholders of `sql` into `style`'s positional ones, taking their values
/// from `params` (names without the colon).
///
/// Every distinct name in `sql` must be given exactly once in `params`, and every given parameter
/// must be used; named and positional placeholders (`$1`, `?`) cannot be mixed. Any of these is
/// an [`Error::InvalidArgument`] for `params` naming the parameters concerned (never their values;
/// all problems are reported at once). Values are never written into the SQL.
///
/// ```text
/// rewrite("SELECT * FROM pets WHERE owner = :owner OR sitter = :owner", Style::Dollar, params)
///     => "SELECT * FROM pets WHERE owner = $1 OR sitter = $1", values [owner]
/// rewrite("SELECT * FROM pets WHERE owner = :owner OR sitter = :owner", Style::Question, params)
///     => "SELECT * FROM pets WHERE owner = ? OR sitter = ?", values [owner, owner]
/// ```
pub(crate) fn rewrite<'a>(sql: &'a str, style: Style, params: &[(String, Param)]) -> Result<Rewritten<'a>> {
    let index = index_params(params)?;
    let mut scan = Scanner {
        sql,
        style,
        params,
        index,
        numbers: vec![None; params.len()],
        values: Vec::new(),
        out: None,
        copied: 0,
        missing: Vec::new(),
        named: false,
        positional: false,
        after_semicolon: false,
        statements: 0,
    };
    if sql.contains('\0') {
        return Err(Error::statement(
            "the SQL text contains a NUL byte, which no database accepts in a statement; pass such data as a parameter",
        ));
    }
    scan.run();
    scan.finish()
}

/// Maps each parameter name to its index in `params`, rejecting names given twice.
fn index_params(params: &[(String, Param)]) -> Result<HashMap<&str, usize>> {
    let mut index = HashMap::with_capacity(params.len());
    let mut duplicates: Vec<&str> = Vec::new();
    for (k, (name, _)) in params.iter().enumerate() {
        if index.insert(name.as_str(), k).is_some() && !duplicates.contains(&name.as_str()) {
            duplicates.push(name);
        }
    }
    if duplicates.is_empty() {
        Ok(index)
    } else {
        Err(invalid_params(format!("{} given more than once", names_are(&duplicates))))
    }
}

/// The state of one [`rewrite`] pass.
struct Scanner<'a, 'p> {
    /// The input.
    sql: &'a str,
    /// The target style and dialect.
    style: Style,
    /// The caller's parameters.
    params: &'p [(String, Param)],
    /// Name to index in `params`.
    index: HashMap<&'p str, usize>,
    /// For each parameter, once used: its `$n` (its first value's position plus one).
    numbers: Vec<Option<usize>>,
    /// The values to bind, in order.
    values: Vec<Param>,
    /// The output, allocated at the first change.
    out: Option<String>,
    /// How much of `sql` is already in `out` (or would be).
    copied: usize,
    /// Names used in `sql` but absent from `params`, in order of first use.
    missing: Vec<&'a str>,
    /// Whether a named placeholder was seen.
    named: bool,
    /// Whether a positional placeholder (`$1` or `?`) was seen outside strings and comments.
    positional: bool,
    /// Whether the last code seen was a `;` (only white space and comments since).
    after_semicolon: bool,
    /// How many statements the text holds: runs of code separated by `;`.
    statements: usize,
}

impl<'a> Scanner<'a, '_> {
    /// Scans the whole input, rewriting placeholders as it goes.
    fn run(&mut self) {
        let bytes = self.sql.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let next = bytes.get(i + 1).copied();
            let comment = matches!((bytes[i], next), (b'-', Some(b'-')) | (b'/', Some(b'*')));
            if !comment
                && !bytes[i].is_ascii_whitespace()
                && bytes[i] != b';'
                && (self.after_semicolon || self.statements == 0)
            {
                self.statements += 1;
                self.after_semicolon = false;
            }
            i = match bytes[i] {
                b';' => {
                    self.after_semicolon = true;
                    i + 1
                }
                b'\'' => skip_quoted(bytes, i, b'\'', self.backslash_escapes_at(i)),
                b'"' => skip_quoted(bytes, i, b'"', self.style == Style::Question),
                b'`' => skip_quoted(bytes, i, b'`', false),
                b'-' if next == Some(b'-') => skip_line_comment(bytes, i),
                b'/' if next == Some(b'*') => skip_block_comment(bytes, i, self.style == Style::Dollar),
                b'$' if self.style == Style::Dollar => self.dollar(i),
                b'?' if self.style == Style::Question => {
                    self.positional = true;
                    i + 1
                }
                b'\\' if next == Some(b':') => {
                    // `\:` is a literal colon: drop the backslash, and skip the colon so that it
                    // cannot start a placeholder.
                    self.output_upto(i);
                    self.copied = i + 1;
                    i + 2
                }
                b':' => self.colon(i),
                _ => i + 1,
            };
        }
    }

    /// Whether the single-quoted string opening at `quote` takes backslash escapes: always in
    /// MySQL, and in PostgreSQL's `E'...'` strings (an `E` that does not end a longer word).
    fn backslash_escapes_at(&self, quote: usize) -> bool {
        match self.style {
            Style::Question => true,
            Style::Dollar => {
                let bytes = self.sql.as_bytes();
                quote >= 1
                    && matches!(bytes[quote - 1], b'E' | b'e')
                    && (quote == 1 || !is_identifier_byte(bytes[quote - 2]))
            }
        }
    }

    /// Handles a `$` under [`Style::Dollar`]: skips a dollar-quoted string, notes a positional
    /// parameter, or moves on. Returns where scanning resumes.
    fn dollar(&mut self, i: usize) -> usize {
        let bytes = self.sql.as_bytes();
        if i > 0 && is_identifier_byte(bytes[i - 1]) {
            return i + 1; // inside an identifier such as `price$usd`
        }
        if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            self.positional = true;
            return i + 1;
        }
        let Some(open_end) = dollar_tag_end(bytes, i) else { return i + 1 };
        let delimiter = &self.sql[i..open_end];
        self.sql[open_end..].find(delimiter).map_or(bytes.len(), |at| open_end + at + delimiter.len())
    }

    /// Handles a `:` at `i`: rewrites the placeholder it starts, if any. Returns where scanning
    /// resumes.
    fn colon(&mut self, i: usize) -> usize {
        let sql = self.sql;
        let bytes = sql.as_bytes();
        let start = i + 1;
        if !bytes.get(start).is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_') {
            return start; // `::`, `:=`, `:1`, `: `, or the end
        }
        if sql[..i].chars().next_back().is_some_and(|c| c == ':' || c == '_' || c.is_alphanumeric()) {
            return start; // `x::int`, `a[lo:hi]`, `12:ab`
        }
        let end = bytes[start..]
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
            .map_or(bytes.len(), |len| start + len);
        match bytes.get(end) {
            // `:a:b` is not a placeholder, but `:a::int` is one followed by a cast.
            Some(b':') if bytes.get(end + 1) != Some(&b':') => return end,
            // A name running on into non-ASCII letters (`:nomé`) is not a valid name.
            Some(&b) if b >= 0x80 && sql[end..].chars().next().is_some_and(char::is_alphanumeric) => return end,
            _ => {}
        }
        self.placeholder(i, end);
        end
    }

    /// Replaces the placeholder spanning `colon..end` with the style's positional one.
    fn placeholder(&mut self, colon: usize, end: usize) {
        self.named = true;
        let name = &self.sql[colon + 1..end];
        let Some(&k) = self.index.get(name) else {
            if !self.missing.contains(&name) {
                self.missing.push(name);
            }
            return; // an error; the output no longer matters
        };
        // Dollar reuses the number of a name seen before; Question binds a value per occurrence.
        let reused = self.numbers[k].filter(|_| self.style == Style::Dollar);
        let number = reused.unwrap_or_else(|| {
            self.values.push(self.params[k].1.clone());
            *self.numbers[k].get_or_insert(self.values.len())
        });
        let style = self.style;
        let out = self.output_upto(colon);
        match style {
            Style::Dollar => {
                let _ = write!(out, "${number}"); // writing to a `String` cannot fail
            }
            Style::Question => out.push('?'),
        }
        self.copied = end;
    }

    /// Copies the input up to `upto` into the output (allocating it if needed) and returns it.
    fn output_upto(&mut self, upto: usize) -> &mut String {
        let sql = self.sql;
        let out = self.out.get_or_insert_with(|| String::with_capacity(sql.len() + 16));
        out.push_str(&sql[self.copied..upto]);
        self.copied = upto;
        out
    }

    /// Checks what the scan found and returns the result.
    fn finish(mut self) -> Result<Rewritten<'a>> {
        let mut problems = Vec::new();
        if self.named && self.positional {
            let positional = match self.style {
                Style::Dollar => "`$1`",
                Style::Question => "`?`",
            };
            problems.push(format!("the query mixes named parameters (`:name`) with positional ones ({positional})"));
        }
        match self.missing.as_slice() {
            [] => {}
            [name] => problems.push(format!("missing value for parameter `{name}`")),
            names => problems.push(format!("missing values for parameters {}", quoted_list(names))),
        }
        let unused: Vec<&str> = self
            .params
            .iter()
            .zip(&self.numbers)
            .filter(|(_, number)| number.is_none())
            .map(|((name, _), _)| name.as_str())
            .collect();
        if !unused.is_empty() {
            problems.push(format!("{} not used in the query", names_are(&unused)));
        }
        if !problems.is_empty() {
            return Err(invalid_params(problems.join("; ")));
        }
        let sql = match self.out.take() {
            Some(mut out) => {
                out.push_str(&self.sql[self.copied..]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(self.sql),
        };
        Ok(Rewritten { sql, values: self.values, statements: self.statements })
    }
}

/// Whether `b` can continue an identifier (ASCII word characters, PostgreSQL's `$`, and any byte
/// of a non-ASCII character).
fn is_identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Whether `b` can be part of a dollar-quote tag (digits only after the first byte).
fn is_tag_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// If a dollar-quote opener (`$$` or `$tag$`) starts at `start`, the index just after it.
fn dollar_tag_end(bytes: &[u8], start: usize) -> Option<usize> {
    let first = *bytes.get(start + 1)?;
    if first == b'$' {
        return Some(start + 2);
    }
    if first.is_ascii_digit() || !is_tag_byte(first) {
        return None;
    }
    let tag_len = bytes[start + 1..].iter().position(|&b| !is_tag_byte(b))?;
    let close = start + 1 + tag_len;
    (bytes[close] == b'$').then_some(close + 1)
}

/// Skips text quoted with `quote` opening at `start` (a doubled quote stands for one; with
/// `backslash`, `\` escapes the next byte). Returns the index after the closing quote, or the
/// input's length if it is unterminated.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if b == quote {
            if bytes.get(i + 1) != Some(&quote) {
                return i + 1;
            }
            i += 2;
        } else if backslash && b == b'\\' {
            i += 2;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Skips a `--` comment starting at `start`, up to (not including) the end of its line.
fn skip_line_comment(bytes: &[u8], start: usize) -> usize {
    bytes[start..].iter().position(|&b| b == b'\n' || b == b'\r').map_or(bytes.len(), |len| start + len)
}

/// Skips a `/* */` comment starting at `start` (inner `/*` nest if `nested`). Returns the index
/// after it, or the input's length if it is unterminated.
fn skip_block_comment(bytes: &[u8], start: usize, nested: bool) -> usize {
    let mut depth = 1_usize;
    let mut i = start + 2;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            (b'/', Some(b'*')) if nested => {
                depth += 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The error for a problem with the `params` argument.
fn invalid_params(reason: String) -> Error {
    Error::InvalidArgument { argument: "params", reason }
}

/// "parameter `a` is" or "parameters `a`, `b` are".
fn names_are(names: &[&str]) -> String {
    match names {
        [name] => format!("parameter `{name}` is"),
        _ => format!("parameters {} are", quoted_list(names)),
    }
}

/// "`a`, `b`".
fn quoted_list(names: &[&str]) -> String {
    let mut list = String::new();
    for (k, name) in names.iter().enumerate() {
        if k > 0 {
            list.push_str(", ");
        }
        let _ = write!(list, "`{name}`"); // writing to a `String` cannot fail
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, Param)]) -> Vec<(String, Param)> {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect()
    }

    fn ok(sql: &str, style: Style, pairs: &[(&str, Param)]) -> (String, Vec<Param>) {
        let rewritten = rewrite(sql, style, &params(pairs)).unwrap();
        (rewritten.sql.into_owned(), rewritten.values)
    }

    fn dollar(sql: &str, pairs: &[(&str, Param)]) -> (String, Vec<Param>) {
        ok(sql, Style::Dollar, pairs)
    }

    fn question(sql: &str, pairs: &[(&str, Param)]) -> (String, Vec<Param>) {
        ok(sql, Style::Question, pairs)
    }

    /// The SQL of a rewrite without parameters, under both styles when they agree.
    fn unchanged(sql: &str) {
        for style in [Style::Dollar, Style::Question] {
            let rewritten = rewrite(sql, style, &[]).unwrap();
            assert_eq!(rewritten.sql, sql, "{style:?}");
            assert!(matches!(rewritten.sql, Cow::Borrowed(_)), "{style:?}: {sql}");
            assert!(rewritten.values.is_empty());
        }
    }

    fn error(sql: &str, style: Style, pairs: &[(&str, Param)]) -> String {
        match rewrite(sql, style, &params(pairs)) {
            Err(Error::InvalidArgument { argument: "params", reason }) => reason,
            other => panic!("expected an invalid `params` error, got {other:?}"),
        }
    }

    fn s(text: &str) -> Param {
        Param::from(text)
    }

    #[test]
    fn dollar_numbers_by_first_appearance() {
        let (sql, values) = dollar(
            "SELECT * FROM pets WHERE owner = :owner AND age > :min_age",
            &[("min_age", Param::from(3)), ("owner", s("Jerry"))],
        );
        assert_eq!(sql, "SELECT * FROM pets WHERE owner = $1 AND age > $2");
        assert_eq!(values, [s("Jerry"), Param::from(3)]);
    }

    #[test]
    fn question_one_per_occurrence() {
        let (sql, values) = question(
            "SELECT * FROM pets WHERE owner = :owner AND age > :min_age",
            &[("min_age", Param::from(3)), ("owner", s("Jerry"))],
        );
        assert_eq!(sql, "SELECT * FROM pets WHERE owner = ? AND age > ?");
        assert_eq!(values, [s("Jerry"), Param::from(3)]);
    }

    #[test]
    fn repeated_names() {
        let pairs = [("x", Param::from(1)), ("y", Param::from(2))];
        let text = "SELECT :x + :y + :x, :y";
        assert_eq!(dollar(text, &pairs), ("SELECT $1 + $2 + $1, $2".into(), vec![Param::from(1), Param::from(2)]));
        assert_eq!(
            question(text, &pairs),
            ("SELECT ? + ? + ?, ?".into(), vec![Param::from(1), Param::from(2), Param::from(1), Param::from(2)])
        );
    }

    #[test]
    fn numbers_past_nine() {
        let names: Vec<String> = (0..12).map(|k| format!("p{k}")).collect();
        let pairs: Vec<(&str, Param)> =
            names.iter().enumerate().map(|(k, name)| (name.as_str(), Param::from(i64::try_from(k).unwrap()))).collect();
        let text = format!("VALUES ({})", names.iter().map(|n| format!(":{n}")).collect::<Vec<_>>().join(", "));
        let (sql, values) = dollar(&text, &pairs);
        assert_eq!(sql, "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
        assert_eq!(values, pairs.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn casts_are_untouched() {
        unchanged("SELECT x::int, 'a'::text, (1)::numeric(10, 2), ARRAY[1]::int[]");
        let (sql, values) = dollar("SELECT x::int, :v::text, CAST(:w AS int)", &[("v", s("1")), ("w", s("2"))]);
        assert_eq!(sql, "SELECT x::int, $1::text, CAST($2 AS int)");
        assert_eq!(values, [s("1"), s("2")]);
    }

    #[test]
    fn colon_not_starting_a_name() {
        unchanged("SET @a := 1; SELECT @b:=2, a[1:2], a[lo:hi], a[:1], x : y, ':' FROM t WHERE c = ':'");
        unchanged("SELECT '10:30', TIME '12:00:00', 12:30");
        unchanged("SELECT :1, :=, :");
        let (sql, _) = question("SET @total := :amount", &[("amount", Param::from(5))]);
        assert_eq!(sql, "SET @total := ?");
    }

    #[test]
    fn name_followed_by_single_colon_is_text() {
        unchanged("SELECT :a:b, x:y:z");
        assert_eq!(
            error("SELECT :a:b", Style::Dollar, &[("a", Param::Null)]),
            "parameter `a` is not used in the query"
        );
    }

    #[test]
    fn backslash_colon_is_a_literal_colon() {
        for style in [Style::Dollar, Style::Question] {
            let rewritten = rewrite(r"SELECT \:literal, a\:b, '\:kept'", style, &[]).unwrap();
            assert_eq!(rewritten.sql, r"SELECT :literal, a:b, '\:kept'");
            assert!(matches!(rewritten.sql, Cow::Owned(_)));
        }
        let (sql, values) = dollar(r"SELECT \:x, :x, \::y", &[("x", Param::from(1))]);
        assert_eq!(sql, "SELECT :x, $1, ::y");
        assert_eq!(values, [Param::from(1)]);
        let (sql, _) = question(r"\:a", &[]);
        assert_eq!(sql, ":a");
    }

    #[test]
    fn times_inside_strings() {
        let pairs = [("u", s("x"))];
        assert_eq!(dollar("WHERE t = '10:30' AND u = :u", &pairs).0, "WHERE t = '10:30' AND u = $1");
        assert_eq!(question("WHERE t = '10:30:00' AND u = :u", &pairs).0, "WHERE t = '10:30:00' AND u = ?");
    }

    #[test]
    fn doubled_quotes_in_strings() {
        unchanged("SELECT 'it''s :x', '''', ''':y'''");
        let (sql, values) = dollar("SELECT 'it''s :x' || :y || ''''", &[("y", s("!"))]);
        assert_eq!(sql, "SELECT 'it''s :x' || $1 || ''''");
        assert_eq!(values, [s("!")]);
    }

    #[test]
    fn backslash_escapes_in_mysql_strings() {
        let (sql, _) = question(r"SELECT 'it\'s :x', 'C:\\', :y", &[("y", Param::Null)]);
        assert_eq!(sql, r"SELECT 'it\'s :x', 'C:\\', ?");
        let (sql, _) = question(r#"SELECT "say \"hi :x\"", :y"#, &[("y", Param::Null)]);
        assert_eq!(sql, r#"SELECT "say \"hi :x\"", ?"#);
    }

    #[test]
    fn postgres_standard_strings_keep_backslashes() {
        // In a standard PostgreSQL string a backslash is an ordinary character.
        let (sql, _) = dollar(r"SELECT 'C:\' || :y", &[("y", Param::Null)]);
        assert_eq!(sql, r"SELECT 'C:\' || $1");
        // A word ending in `e` before a quote is not an `E'...'` prefix.
        let (sql, _) = dollar(r"SELECT somee'\' || :y", &[("y", Param::Null)]);
        assert_eq!(sql, r"SELECT somee'\' || $1");
    }

    #[test]
    fn e_strings() {
        let pairs = [("y", Param::Null)];
        assert_eq!(dollar(r"SELECT E'it\'s :x' || :y", &pairs).0, r"SELECT E'it\'s :x' || $1");
        assert_eq!(dollar(r"SELECT e'\\' || :y", &pairs).0, r"SELECT e'\\' || $1");
        assert_eq!(dollar(r"SELECT (E'a\':x''b') || :y", &pairs).0, r"SELECT (E'a\':x''b') || $1");
        assert_eq!(dollar(r"E'\':x' || :y", &pairs).0, r"E'\':x' || $1");
    }

    #[test]
    fn quoted_identifiers() {
        unchanged(r#"SELECT "weird:x", "a""b:x", "" FROM "t:y""#);
        let (sql, _) = dollar(r#"SELECT "col:x" FROM t WHERE "a""b:x" = :v"#, &[("v", Param::Null)]);
        assert_eq!(sql, r#"SELECT "col:x" FROM t WHERE "a""b:x" = $1"#);
    }

    #[test]
    fn backticks() {
        unchanged("SELECT `col:x`, `a``b:x` FROM `db`.`t:y`");
        let (sql, _) = question("SELECT `col:x` FROM t WHERE `a``:b` = :v", &[("v", Param::Null)]);
        assert_eq!(sql, "SELECT `col:x` FROM t WHERE `a``:b` = ?");
    }

    #[test]
    fn line_comments() {
        unchanged("SELECT 1 -- where a = :x\n");
        unchanged("SELECT 1 -- :x");
        let (sql, values) =
            dollar("SELECT :a -- :x ignored\r\n, :b --:y", &[("a", Param::from(1)), ("b", Param::from(2))]);
        assert_eq!(sql, "SELECT $1 -- :x ignored\r\n, $2 --:y");
        assert_eq!(values.len(), 2);
        // A single `-` is subtraction and `#` is an operator, not a comment.
        assert_eq!(
            dollar("SELECT 5 - :a # :b", &[("a", Param::from(1)), ("b", Param::from(2))]).0,
            "SELECT 5 - $1 # $2"
        );
    }

    #[test]
    fn block_comments() {
        unchanged("SELECT /* :x */ 1 /**/ /* '/* :y' */");
        let pairs = [("a", Param::from(1))];
        // PostgreSQL nests block comments.
        let (sql, _) = dollar("SELECT /* outer /* inner :x */ still :y */ :a", &pairs);
        assert_eq!(sql, "SELECT /* outer /* inner :x */ still :y */ $1");
        // MySQL and SQLite end one at the first `*/`.
        let (sql, _) = question("SELECT /* outer /* :x */ :a", &pairs);
        assert_eq!(sql, "SELECT /* outer /* :x */ ?");
        // Unterminated: the rest is comment.
        unchanged("SELECT 1 /* :x");
        // `*/` outside a comment, and `/` alone, are plain text.
        assert_eq!(dollar("SELECT 4 / :a */", &pairs).0, "SELECT 4 / $1 */");
    }

    #[test]
    fn dollar_quotes() {
        let pairs = [("a", Param::from(1))];
        let (sql, _) = dollar("SELECT $$ :x 'it's $$, :a", &pairs);
        assert_eq!(sql, "SELECT $$ :x 'it's $$, $1");
        let (sql, _) =
            dollar("CREATE FUNCTION f() RETURNS int AS $fn$ SELECT :x $$ :y $$ $fn$ LANGUAGE sql; SELECT :a", &pairs);
        assert_eq!(sql, "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT :x $$ :y $$ $fn$ LANGUAGE sql; SELECT $1");
        assert_eq!(dollar("SELECT $ä$ :x $ä$ || :a", &pairs).0, "SELECT $ä$ :x $ä$ || $1");
        // Unterminated: the rest is string.
        assert_eq!(error("SELECT $q$ :a", Style::Dollar, &pairs), "parameter `a` is not used in the query");
        // `$` inside identifiers and a `$tag` without a closing `$` open nothing.
        assert_eq!(dollar("SELECT price$usd$ AS p$$, $x, :a", &pairs).0, "SELECT price$usd$ AS p$$, $x, $1");
        // MySQL and SQLite have no dollar quotes.
        assert_eq!(question("SELECT $$ :a $$", &pairs).0, "SELECT $$ ? $$");
    }

    #[test]
    fn positional_dollar_is_not_a_dollar_quote() {
        unchanged("SELECT $1, $2 FROM t WHERE a = $1");
        // Were `$1 ... $1` a dollar quote, `:x` would be hidden and reported as unused.
        assert_eq!(
            error("SELECT $1, :x, $1", Style::Dollar, &[("x", Param::Null)]),
            "the query mixes named parameters (`:name`) with positional ones (`$1`)"
        );
        // A tag cannot start with a digit: `$1a$` is `$1` then the identifier `a$`.
        assert_eq!(
            error("SELECT $1a$ :x $1a$", Style::Dollar, &[("x", Param::Null)]),
            "the query mixes named parameters (`:name`) with positional ones (`$1`)"
        );
    }

    #[test]
    fn mixing_positional_and_named_is_an_error() {
        assert_eq!(
            error("SELECT ?, :x", Style::Question, &[("x", Param::Null)]),
            "the query mixes named parameters (`:name`) with positional ones (`?`)"
        );
        // `?` is an ordinary operator for PostgreSQL (jsonb), and text inside strings.
        assert_eq!(dollar("SELECT doc ? 'k', :x", &[("x", Param::Null)]).0, "SELECT doc ? 'k', $1");
        assert_eq!(question("SELECT '?', :x", &[("x", Param::Null)]).0, "SELECT '?', ?");
        unchanged("SELECT '?' , \"$1\"");
    }

    #[test]
    fn array_slices() {
        unchanged("SELECT a[1:2], a[lo:hi], a[1:], (a)[2:3] FROM t");
        let (sql, _) = dollar("SELECT a[1:2], a[:lo:hi] FROM t WHERE x = :x", &[("x", Param::Null)]);
        assert_eq!(sql, "SELECT a[1:2], a[:lo:hi] FROM t WHERE x = $1");
    }

    #[test]
    fn placeholders_at_the_edges() {
        let pairs = [("a", Param::from(1)), ("b", Param::from(2))];
        assert_eq!(dollar(":a", &pairs[..1]).0, "$1");
        assert_eq!(dollar(":a = :b", &pairs).0, "$1 = $2");
        assert_eq!(question(":a = :b", &pairs).0, "? = ?");
        assert_eq!(question("(:a,:b)", &pairs).0, "(?,?)");
        assert_eq!(dollar("SELECT 1 WHERE :a=:b", &pairs).0, "SELECT 1 WHERE $1=$2");
    }

    #[test]
    fn non_ascii_text() {
        let pairs = [("nom", s("Zoé")), ("ville", s("Zürich"))];
        let (sql, values) = dollar(
            "SELECT 'héllo:x', \"prénom:x\" FROM personnes WHERE nom = :nom AND ville=:ville -- café :x",
            &pairs,
        );
        assert_eq!(sql, "SELECT 'héllo:x', \"prénom:x\" FROM personnes WHERE nom = $1 AND ville=$2 -- café :x");
        assert_eq!(values, [s("Zoé"), s("Zürich")]);
        assert_eq!(question("SELECT —:nom, «:ville»", &pairs).0, "SELECT —?, «?»");
        assert_eq!(question("SELECT '日本', :nom, 名前", &pairs[..1]).0, "SELECT '日本', ?, 名前");
        // A letter before the colon makes it text, as in SQLAlchemy; so does one after the name.
        unchanged("SELECT é:x, 名:y, :nomé, :x名");
    }

    #[test]
    fn missing_parameters() {
        assert_eq!(
            error("SELECT * FROM pets WHERE owner = :owner", Style::Dollar, &[]),
            "missing value for parameter `owner`"
        );
        assert_eq!(
            error("SELECT :a, :b, :a, :c", Style::Question, &[("b", Param::Null)]),
            "missing values for parameters `a`, `c`"
        );
        let err = rewrite("SELECT :owner", Style::Dollar, &[]).unwrap_err();
        assert_eq!(err.to_string(), "invalid argument `params`: missing value for parameter `owner`");
    }

    #[test]
    fn unused_parameters() {
        assert_eq!(error("SELECT 1", Style::Dollar, &[("a", Param::Null)]), "parameter `a` is not used in the query");
        assert_eq!(
            error("SELECT :b", Style::Question, &[("a", Param::Null), ("b", Param::Null), ("c", Param::Null)]),
            "parameters `a`, `c` are not used in the query"
        );
        // A name written with its colon is not the placeholder's name.
        assert_eq!(
            error("SELECT :a", Style::Dollar, &[("a", Param::Null), (":a", Param::Null)]),
            "parameter `:a` is not used in the query"
        );
    }

    #[test]
    fn missing_and_unused_together() {
        assert_eq!(
            error("SELECT :owner", Style::Dollar, &[("ownr", s("Jerry"))]),
            "missing value for parameter `owner`; parameter `ownr` is not used in the query"
        );
    }

    #[test]
    fn duplicate_parameters() {
        assert_eq!(
            error("SELECT :a", Style::Dollar, &[("a", Param::from(1)), ("a", Param::from(2))]),
            "parameter `a` is given more than once"
        );
        assert_eq!(
            error(
                "SELECT 1",
                Style::Question,
                &[("a", Param::Null), ("b", Param::Null), ("a", Param::Null), ("b", Param::Null), ("a", Param::Null)]
            ),
            "parameters `a`, `b` are given more than once"
        );
    }

    #[test]
    fn messages_never_show_values() {
        let secret = "hunter2-secret-value";
        let cases = [
            rewrite("SELECT 1", Style::Dollar, &params(&[("password", s(secret))])),
            rewrite("SELECT :password", Style::Question, &params(&[("password", s(secret)), ("password", s(secret))])),
            rewrite("SELECT :password, :user", Style::Dollar, &params(&[("password", s(secret))])),
        ];
        for case in cases {
            let message = case.unwrap_err().to_string();
            assert!(!message.contains(secret), "{message}");
            assert!(message.contains("password") || message.contains("user"), "{message}");
        }
    }

    #[test]
    fn values_are_never_interpolated() {
        let evil = s("x'; DROP TABLE users; -- :other");
        for style in [Style::Dollar, Style::Question] {
            let rewritten =
                rewrite("SELECT * FROM users WHERE name = :name", style, &params(&[("name", evil.clone())])).unwrap();
            assert!(!rewritten.sql.contains("DROP"));
            assert_eq!(rewritten.values, std::slice::from_ref(&evil));
        }
        assert_eq!(dollar("SELECT :name", &[("name", evil.clone())]).0, "SELECT $1");
        assert_eq!(question("SELECT :name", &[("name", evil)]).0, "SELECT ?");
    }

    #[test]
    fn unchanged_sql_is_borrowed() {
        let text = "SELECT 1";
        let rewritten = rewrite(text, Style::Dollar, &[]).unwrap();
        assert!(matches!(rewritten.sql, Cow::Borrowed(b) if std::ptr::eq(b, text)));
        unchanged("");
        unchanged("SELECT x::int, 'a:b', \"c:d\", `e:f` -- :g\n/* :h */");
    }

    #[test]
    fn unterminated_quotes_swallow_the_rest() {
        for text in ["SELECT ':x", "SELECT \":x", "SELECT `:x", "SELECT 'a'':x", r"SELECT 'a\"] {
            assert!(rewrite(text, Style::Question, &[]).is_ok(), "{text}");
            assert_eq!(rewrite(text, Style::Dollar, &[]).unwrap().sql, text);
        }
        // Without backslash escapes, PostgreSQL's `'a\'` is a complete string.
        assert_eq!(dollar(r"SELECT 'a\' || :x", &[("x", Param::Null)]).0, r"SELECT 'a\' || $1");
    }

    /// Every short string over an alphabet of the lexer's special characters: no panic (no slicing
    /// inside a character, no index out of bounds), and without placeholders the SQL is unchanged
    /// except for `\:` escapes.
    #[test]
    fn exhaustive_short_inputs() {
        const ALPHABET: [&str; 14] = ["'", "\"", "`", "$", ":", "\\", "-", "/", "*", "a", "1", "é", "E", "?"];
        let mut stack = vec![String::new()];
        let mut count = 0;
        while let Some(text) = stack.pop() {
            for style in [Style::Dollar, Style::Question] {
                count += 1;
                if let Ok(rewritten) = rewrite(&text, style, &[]) {
                    assert!(rewritten.values.is_empty());
                    if !text.contains('\\') {
                        assert_eq!(rewritten.sql, text);
                    }
                }
                let with_params = params(&[("a", Param::Null)]);
                if let Ok(rewritten) = rewrite(&text, style, &with_params) {
                    assert!(!rewritten.values.is_empty());
                }
            }
            if text.chars().count() < 5 {
                for piece in ALPHABET {
                    stack.push(format!("{text}{piece}"));
                }
            }
        }
        assert!(count > 1_000_000);
    }
}
