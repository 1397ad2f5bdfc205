//! SQLAlchemy-style database URLs, `dialect[+driver]://[user[:password]@][host][:port][/database][?key=value&...]`,
//! parsed and rendered as SQLAlchemy's `make_url` and `URL.render_as_string` do, and the
//! [`Backend`] a URL's dialect selects.
//!
//! The password never leaves this module in clear text through `Debug`, `Display` or an error:
//! [`SqlUrl`]'s `Debug` and [`SqlUrl::render_redacted`] show `***` instead, and so they do for the
//! value of any query parameter whose name looks secret (`password`, `sslpassword`, `token`, ...).

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// The dialects the `sql` type connects to, as shown in error messages.
const SUPPORTED_DIALECTS: &str = "sqlite, postgresql, mysql, mariadb";

/// What a redacted value is shown as.
const REDACTED: &str = "***";

/// The shape a URL must have, for parse errors.
const URL_SHAPE: &str = "dialect[+driver]://[user[:password]@][host][:port][/database][?key=value&...]";

/// Python's `quote(s, safe=" +")`: everything but ASCII letters, digits, `_.-~`, space and `+`
/// is percent-encoded (user names and passwords).
const USERINFO: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b' ').remove(b'+');

/// Python's `quote(s, safe=" +/")` (database names and paths).
const DATABASE: &AsciiSet = &USERINFO.remove(b'/');

/// Python's `quote_plus(s)` before spaces become `+` (query keys and values).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b' ');

/// The database family a connection of type `sql` talks to, chosen by the dialect of its URL
/// (or its `dialect` key). The driver part of a SQLAlchemy URL (`+psycopg2`, `+pymysql`, ...)
/// names a Python module and does not matter here: every driver of a dialect maps to the same
/// backend.
///
/// Each backend is compiled in by a cargo feature of the `connections` crate (see
/// [`Backend::feature`]); a configuration that needs a backend this build lacks fails at
/// `open()` with an error naming the feature to enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite, embedded: dialect `sqlite` (drivers `pysqlite`, `aiosqlite`, ...). Feature
    /// `sqlite`.
    Sqlite,
    /// PostgreSQL: dialects `postgresql` and `postgres` (drivers `psycopg2`, `psycopg`,
    /// `asyncpg`, `pg8000`, ...). Feature `postgres`.
    Postgres,
    /// MySQL and MariaDB: dialects `mysql` and `mariadb` (drivers `pymysql`, `mysqldb`,
    /// `mysqlconnector`, `mariadbconnector`, ...). Feature `mysql`.
    MySql,
}

impl Backend {
    /// The backend's usual name: `SQLite`, `PostgreSQL` or `MySQL`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MySQL",
        }
    }

    /// The cargo feature (of `connections` and of `connections-sql`) that compiles the backend
    /// in: `sqlite`, `postgres` or `mysql`.
    pub const fn feature(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// Whether this build has the backend's feature.
    pub const fn is_enabled(self) -> bool {
        match self {
            Self::Sqlite => cfg!(feature = "sqlite"),
            Self::Postgres => cfg!(feature = "postgres"),
            Self::MySql => cfg!(feature = "mysql"),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a URL was refused. Messages never contain the URL (it may hold a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// The text does not have the shape of a database URL; says what is wrong.
    Malformed(&'static str),
    /// The port is not an integer between 0 and 65535.
    Port,
    /// The dialect is not one the `sql` type supports; holds the dialect.
    UnsupportedDialect(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(reason) => write!(f, "cannot parse the URL: {reason}; expected `{URL_SHAPE}`"),
            Self::Port => f.write_str("the URL's port is not an integer between 0 and 65535"),
            Self::UnsupportedDialect(dialect) => {
                write!(f, "unsupported SQL dialect `{dialect}`; supported dialects: {SUPPORTED_DIALECTS}")
            }
        }
    }
}

impl std::error::Error for UrlError {}

/// A database URL in SQLAlchemy's model: the parts of `make_url`, decoded.
///
/// `username`, `password` and `database` are percent-decoded on parsing and percent-encoded on
/// rendering; the host is kept as written (an IPv6 address without its brackets). `query` keeps
/// the pairs in order, repeated keys included. An empty string and an absent part differ, as in
/// SQLAlchemy (`sqlite://@/pets.db` has the user name `""` and no host).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SqlUrl {
    /// The dialect: `sqlite`, `postgresql`, `mysql`, ... (the part of the scheme before `+`).
    pub(crate) dialect: String,
    /// The Python driver named after `+` in the scheme (`psycopg2`, `pymysql`, ...), if any.
    pub(crate) driver: Option<String>,
    /// The user name.
    pub(crate) username: Option<String>,
    /// The password: never shown by `Debug` or [`render_redacted`](Self::render_redacted).
    pub(crate) password: Option<String>,
    /// The host name or address.
    pub(crate) host: Option<String>,
    /// The port.
    pub(crate) port: Option<u16>,
    /// The database name, or for SQLite the file path (`:memory:` or none: in memory).
    pub(crate) database: Option<String>,
    /// The query parameters, decoded, in order.
    pub(crate) query: Vec<(String, String)>,
}

impl SqlUrl {
    /// A URL with only a dialect (and driver): the start of a URL built from parts.
    pub(crate) fn new(dialect: &str, driver: Option<&str>) -> Self {
        Self {
            dialect: dialect.to_owned(),
            driver: driver.map(str::to_owned),
            username: None,
            password: None,
            host: None,
            port: None,
            database: None,
            query: Vec::new(),
        }
    }

    /// Parses a URL as SQLAlchemy's `make_url` does: the scheme is `[\w+]+`, the user info runs
    /// to the `@` (a password holds no raw `@`), an IPv6 host is bracketed, an empty port is no
    /// port, and the query is read like Python's `parse_qsl` (`+` is a space, pairs without `=`
    /// or with an empty value are dropped).
    pub(crate) fn parse(text: &str) -> Result<Self, UrlError> {
        let (name, rest) = text.split_once("://").ok_or(UrlError::Malformed("no `://` after the dialect"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '+') {
            return Err(UrlError::Malformed("the dialect may hold only letters, digits, `_` and `+`"));
        }
        let (dialect, driver) = split_drivername(name);
        let mut url = Self::new(dialect, driver);

        let (username, password, rest) = split_userinfo(rest);
        url.username = username.map(unquote);
        url.password = password.map(unquote);

        let (host, rest) = split_host(rest)?;
        url.host = host.map(str::to_owned);

        let rest = match rest.strip_prefix(':') {
            Some(after) => {
                let end = after.find(['/', '?']).unwrap_or(after.len());
                let port = &after[..end];
                if !port.is_empty() {
                    let number = parse_python_int(port).ok_or(UrlError::Port)?;
                    url.port = Some(u16::try_from(number).map_err(|_| UrlError::Port)?);
                }
                &after[end..]
            }
            None => rest,
        };

        let rest = match rest.strip_prefix('/') {
            Some(after) => {
                let end = after.find('?').unwrap_or(after.len());
                url.database = Some(unquote(&after[..end]));
                &after[end..]
            }
            None => rest,
        };

        if let Some(query) = rest.strip_prefix('?') {
            url.query = parse_query(query);
        } else if !rest.is_empty() {
            return Err(UrlError::Malformed("unexpected text after the host"));
        }
        Ok(url)
    }

    /// The backend the dialect selects (case-insensitively): `sqlite`; `postgresql` or
    /// `postgres`; `mysql` or `mariadb`. Any driver is accepted.
    pub(crate) fn backend(&self) -> Result<Backend, UrlError> {
        match self.dialect.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgresql" | "postgres" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(UrlError::UnsupportedDialect(self.dialect.clone())),
        }
    }

    /// SQLAlchemy's `drivername`: the dialect, and `+driver` when there is one.
    pub(crate) fn drivername(&self) -> String {
        match &self.driver {
            Some(driver) => format!("{}+{driver}", self.dialect),
            None => self.dialect.clone(),
        }
    }

    /// Whether this SQLite URL names an in-memory database: no database, an empty one, or
    /// `:memory:` (`sqlite://`, `sqlite:///`, `sqlite:///:memory:`), as in pysqlite.
    pub(crate) fn is_memory(&self) -> bool {
        matches!(self.database.as_deref(), None | Some("" | ":memory:"))
    }

    /// Sets a query parameter, replacing every earlier value of the key (how `connect_args`
    /// override the URL's own parameters in SQLAlchemy).
    pub(crate) fn set_query_param(&mut self, key: &str, value: String) {
        self.query.retain(|(k, _)| k != key);
        self.query.push((key.to_owned(), value));
    }

    /// The URL as text with `***` for the password and for secret-looking query values: safe
    /// to log and show.
    pub(crate) fn render_redacted(&self) -> String {
        self.render(true)
    }

    /// The URL as text, as SQLAlchemy's `render_as_string(hide_password)`: user name, password
    /// and database percent-encoded, an IPv6 host bracketed, query keys sorted (repeated keys
    /// keep their order) and `quote_plus`-encoded.
    fn render(&self, hide_password: bool) -> String {
        let mut out = format!("{}://", self.drivername());
        if let Some(username) = &self.username {
            out.push_str(&utf8_percent_encode(username, USERINFO).to_string());
            if let Some(password) = &self.password {
                out.push(':');
                if hide_password {
                    out.push_str(REDACTED);
                } else {
                    out.push_str(&utf8_percent_encode(password, USERINFO).to_string());
                }
            }
            out.push('@');
        }
        if let Some(host) = &self.host {
            if host.contains(':') {
                out.push('[');
                out.push_str(host);
                out.push(']');
            } else {
                out.push_str(host);
            }
        }
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(&port.to_string());
        }
        if let Some(database) = &self.database {
            out.push('/');
            out.push_str(&utf8_percent_encode(database, DATABASE).to_string());
        }
        if !self.query.is_empty() {
            let mut pairs: Vec<&(String, String)> = self.query.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            let rendered: Vec<String> = pairs
                .into_iter()
                .map(|(key, value)| {
                    let value =
                        if hide_password && is_secret_param(key) { REDACTED.to_owned() } else { quote_plus(value) };
                    format!("{}={value}", quote_plus(key))
                })
                .collect();
            out.push('?');
            out.push_str(&rendered.join("&"));
        }
        out
    }
}

impl fmt::Debug for SqlUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query: Vec<(&str, &str)> = self
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_param(k) { REDACTED } else { v.as_str() }))
            .collect();
        f.debug_struct("SqlUrl")
            .field("dialect", &self.dialect)
            .field("driver", &self.driver)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("query", &query)
            .finish()
    }
}

/// Shows as `***` in `Debug`.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Whether a query parameter's value is to be hidden when shown (`password`, `sslpassword`,
/// `passfile`, `secret`, `token`, `pwd`, ...).
pub(crate) fn is_secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    // `key`: client keys (`sslkey`, `ssl_key`), which may be PEM text
    ["pass", "pwd", "secret", "token", "key"].iter().any(|word| key.contains(word))
}

/// Splits SQLAlchemy's drivername at its first `+`: `mysql+pymysql` → (`mysql`, `pymysql`). An
/// empty driver (`mysql+`) counts as none.
pub(crate) fn split_drivername(name: &str) -> (&str, Option<&str>) {
    match name.split_once('+') {
        Some((dialect, driver)) if !driver.is_empty() => (dialect, Some(driver)),
        Some((dialect, _)) => (dialect, None),
        None => (name, None),
    }
}

/// Splits the user info off what follows `://`, as SQLAlchemy's pattern
/// `(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@` does: the user name runs to the first `:`
/// or `/` (and may hold `@`), the password to the next `@`. Returns the raw (still encoded)
/// user name and password, and the rest.
fn split_userinfo(rest: &str) -> (Option<&str>, Option<&str>, &str) {
    let user_end = rest.find([':', '/']).unwrap_or(rest.len());
    if rest[user_end..].starts_with(':')
        && let Some(at) = rest[user_end + 1..].find('@')
    {
        let password_end = user_end + 1 + at;
        return (Some(&rest[..user_end]), Some(&rest[user_end + 1..password_end]), &rest[password_end + 1..]);
    }
    match rest[..user_end].rfind('@') {
        Some(at) => (Some(&rest[..at]), None, &rest[at + 1..]),
        None => (None, None, rest),
    }
}

/// Splits the host off: `[ipv6]` (returned without brackets) or a name up to `/`, `:` or `?`.
/// An empty host is none.
fn split_host(rest: &str) -> Result<(Option<&str>, &str), UrlError> {
    if let Some(inner) = rest.strip_prefix('[') {
        let region = &inner[..inner.find(['/', '?']).unwrap_or(inner.len())];
        let close =
            region.rfind(']').filter(|&close| close > 0).ok_or(UrlError::Malformed("unclosed `[` in the host"))?;
        let after = &inner[close + 1..];
        if !(after.is_empty() || after.starts_with([':', '/', '?'])) {
            return Err(UrlError::Malformed("unexpected text after the host"));
        }
        return Ok((Some(&inner[..close]), after));
    }
    let end = rest.find(['/', ':', '?']).unwrap_or(rest.len());
    let host = if end == 0 { None } else { Some(&rest[..end]) };
    Ok((host, &rest[end..]))
}

/// Python's `urllib.parse.unquote`: percent-decoding, invalid UTF-8 replaced.
fn unquote(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Python's `parse_qsl(query)`: `&`-separated `key=value` pairs, `+` as a space, percent-decoded;
/// pairs without `=` or with an empty value are dropped.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            if value.is_empty() {
                return None;
            }
            Some((unquote(&key.replace('+', " ")), unquote(&value.replace('+', " "))))
        })
        .collect()
}

/// Python's `quote_plus`.
fn quote_plus(text: &str) -> String {
    utf8_percent_encode(text, QUERY).to_string().replace(' ', "+")
}

/// Python's `int(text)` for a string: surrounding whitespace, an optional sign, ASCII digits with
/// single `_` between them. `None` when Python would raise `ValueError` or the number does not
/// fit an `i64`.
pub(crate) fn parse_python_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    let number: i64 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -number } else { number })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a URL that must be valid.
    fn parse(text: &str) -> SqlUrl {
        SqlUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn sqlite_forms() {
        let url = parse("sqlite://");
        assert_eq!((url.dialect.as_str(), url.database.as_deref()), ("sqlite", None));
        assert!(url.is_memory());
        let url = parse("sqlite:///:memory:");
        assert_eq!(url.database.as_deref(), Some(":memory:"));
        assert!(url.is_memory());
        assert!(parse("sqlite:///").is_memory());
        let url = parse("sqlite:///relative.db");
        assert_eq!((url.host.as_deref(), url.database.as_deref()), (None, Some("relative.db")));
        assert!(!url.is_memory());
        assert_eq!(parse("sqlite:////abs/path.db").database.as_deref(), Some("/abs/path.db"));
        assert_eq!(parse("sqlite:///dir/with%20space.db").database.as_deref(), Some("dir/with space.db"));
        let url = parse("sqlite+pysqlite:///pets.db?timeout=10");
        assert_eq!(url.driver.as_deref(), Some("pysqlite"));
        assert_eq!(url.query, vec![("timeout".to_owned(), "10".to_owned())]);
        for url in ["sqlite://", "sqlite+pysqlite:///x.db", "SQLite:///x.db", "sqlite+aiosqlite://"] {
            assert_eq!(parse(url).backend(), Ok(Backend::Sqlite), "{url}");
        }
    }

    #[test]
    fn server_forms_and_backends() {
        let cases = [
            ("postgresql://", Backend::Postgres, None),
            ("postgresql+psycopg2://u:p@h/db", Backend::Postgres, Some("psycopg2")),
            ("postgresql+psycopg://u@h:5433/db", Backend::Postgres, Some("psycopg")),
            ("postgres://u:p@h/db", Backend::Postgres, None),
            ("mysql://u:p@h/db", Backend::MySql, None),
            ("mysql+pymysql://u:p@h:3306/db", Backend::MySql, Some("pymysql")),
            ("mysql+mysqldb://u:p@h/db", Backend::MySql, Some("mysqldb")),
            ("mariadb+mariadbconnector://u:p@h/db", Backend::MySql, Some("mariadbconnector")),
            ("mariadb://h", Backend::MySql, None),
        ];
        for (text, backend, driver) in cases {
            let url = parse(text);
            assert_eq!(url.backend(), Ok(backend), "{text}");
            assert_eq!(url.driver.as_deref(), driver, "{text}");
        }
        let url =
            parse("postgresql+psycopg2://scott:tiger@db.example.com:5433/pets?sslmode=require&application_name=app");
        assert_eq!(url.dialect, "postgresql");
        assert_eq!(url.username.as_deref(), Some("scott"));
        assert_eq!(url.password.as_deref(), Some("tiger"));
        assert_eq!(url.host.as_deref(), Some("db.example.com"));
        assert_eq!(url.port, Some(5433));
        assert_eq!(url.database.as_deref(), Some("pets"));
        assert_eq!(
            url.query,
            vec![("sslmode".to_owned(), "require".to_owned()), ("application_name".to_owned(), "app".to_owned())]
        );
        assert_eq!(url.drivername(), "postgresql+psycopg2");
        let bare = parse("postgresql://");
        assert_eq!(bare, SqlUrl::new("postgresql", None));
    }

    #[test]
    fn user_info_is_split_and_decoded_like_sqlalchemy() {
        let url = parse("mysql+pymysql://user:p%40ss%3Aw%2Frd@db.example.com:3306/pets");
        assert_eq!(url.password.as_deref(), Some("p@ss:w/rd"));
        // A raw `/` and `:` in a password are fine; the password runs to the first `@`.
        let url = parse("postgresql://user:pa/ss:word@host/db");
        assert_eq!((url.username.as_deref(), url.password.as_deref()), (Some("user"), Some("pa/ss:word")));
        assert_eq!(url.host.as_deref(), Some("host"));
        // Without a password the user name runs to the last `@` before the host.
        let url = parse("postgresql://me@corp@host/db");
        assert_eq!((url.username.as_deref(), url.password), (Some("me@corp"), None));
        assert_eq!(url.host.as_deref(), Some("host"));
        // Empty user and empty password are kept as empty, not absent.
        let url = parse("postgresql://:@host/db");
        assert_eq!((url.username.as_deref(), url.password.as_deref()), (Some(""), Some("")));
        let url = parse("sqlite://@/pets.db");
        assert_eq!((url.username.as_deref(), url.host.as_deref()), (Some(""), None));
        assert_eq!(url.database.as_deref(), Some("pets.db"));
        // A user name is decoded too; the host is not.
        let url = parse("postgresql://J%C3%BCrgen%20S@h%41st/d%2Fb");
        assert_eq!(url.username.as_deref(), Some("Jürgen S"));
        assert_eq!(url.host.as_deref(), Some("h%41st"));
        assert_eq!(url.database.as_deref(), Some("d/b"));
        // No user info when a `/` comes before the `@`.
        let url = parse("sqlite:///path@x.db");
        assert_eq!((url.username, url.database.as_deref()), (None, Some("path@x.db")));
    }

    #[test]
    fn hosts_and_ports() {
        let url = parse("postgresql://u@[::1]:5433/db");
        assert_eq!((url.host.as_deref(), url.port), (Some("::1"), Some(5433)));
        assert_eq!(url.render_redacted(), "postgresql://u@[::1]:5433/db");
        let url = parse("postgresql://[fe80::1%25eth0]/db");
        assert_eq!(url.host.as_deref(), Some("fe80::1%25eth0"));
        assert_eq!(parse("mysql://h:/db").port, None);
        assert_eq!(parse("mysql://h: 3307 /db").port, Some(3307));
        assert_eq!(parse("mysql://:3307").port, Some(3307));
        assert_eq!(parse("mysql://:3307").host, None);
        assert_eq!(SqlUrl::parse("mysql://h:abc/db"), Err(UrlError::Port));
        assert_eq!(SqlUrl::parse("mysql://h:65536/db"), Err(UrlError::Port));
        assert_eq!(SqlUrl::parse("mysql://h:-1/db"), Err(UrlError::Port));
        assert_eq!(SqlUrl::parse("mysql://h:5432.0/db"), Err(UrlError::Port));
        assert!(matches!(SqlUrl::parse("mysql://[::1/db"), Err(UrlError::Malformed(_))));
        assert!(matches!(SqlUrl::parse("mysql://[::1]x/db"), Err(UrlError::Malformed(_))));
    }

    #[test]
    fn query_is_read_like_parse_qsl() {
        let url = parse("mysql://h/db?a=1&b=x+y%26z&empty=&novalue&a=2&c=%2B");
        assert_eq!(
            url.query,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x y&z".to_owned()),
                ("a".to_owned(), "2".to_owned()),
                ("c".to_owned(), "+".to_owned()),
            ]
        );
        assert_eq!(parse("mysql://h?charset=utf8").query, vec![("charset".to_owned(), "utf8".to_owned())]);
        assert_eq!(parse("mysql://h?charset=utf8").database, None);
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_them() {
        for text in ["", "sqlite", "sqlite:/x.db", "postgresql:user:secret-pw@host", "post gres://x", "://x"] {
            let err = SqlUrl::parse(text).unwrap_err();
            let shown = err.to_string();
            assert!(shown.starts_with("cannot parse the URL: "), "{text}: {shown}");
            assert!(!shown.contains("secret-pw"), "{shown}");
        }
    }

    #[test]
    fn unsupported_dialects_list_the_supported_ones() {
        for dialect in ["mssql+pyodbc", "oracle", "snowflake", "duckdb"] {
            let err = parse(&format!("{dialect}://u:secret-pw@h/db")).backend().unwrap_err();
            let name = dialect.split('+').next().unwrap_or(dialect);
            assert_eq!(
                err.to_string(),
                format!("unsupported SQL dialect `{name}`; supported dialects: sqlite, postgresql, mysql, mariadb")
            );
        }
    }

    #[test]
    fn parts_render_percent_encoded_and_round_trip() {
        let mut url = SqlUrl::new("mysql", Some("pymysql"));
        url.username = Some("user".into());
        url.password = Some("p@ss:w/rd".into());
        url.host = Some("db.example.com".into());
        url.port = Some(3306);
        url.database = Some("pets".into());
        url.query = vec![("ssl_mode".into(), "REQUIRED".into()), ("charset".into(), "utf8mb4".into())];
        let rendered = url.render(false);
        assert_eq!(
            rendered,
            "mysql+pymysql://user:p%40ss%3Aw%2Frd@db.example.com:3306/pets?charset=utf8mb4&ssl_mode=REQUIRED"
        );
        let mut back = parse(&rendered);
        assert_eq!(back.password.as_deref(), Some("p@ss:w/rd"));
        back.query.sort();
        url.query.sort();
        assert_eq!(back, url);
        assert_eq!(
            url.render_redacted(),
            "mysql+pymysql://user:***@db.example.com:3306/pets?charset=utf8mb4&ssl_mode=REQUIRED"
        );

        let mut sqlite = SqlUrl::new("sqlite", None);
        sqlite.username = Some(String::new());
        sqlite.host = Some(String::new());
        sqlite.database = Some("pets.db".into());
        assert_eq!(sqlite.render_redacted(), "sqlite://@/pets.db");

        let mut odd = SqlUrl::new("postgresql", None);
        odd.username = Some("a b+c".into());
        odd.database = Some("dir/my db".into());
        odd.query = vec![("k".into(), "a b&c/d+e".into()), ("b".into(), "1".into()), ("k".into(), "2".into())];
        assert_eq!(odd.render(false), "postgresql://a b+c@/dir/my db?b=1&k=a+b%26c%2Fd%2Be&k=2");
        // A password without a user name is not rendered (as in SQLAlchemy).
        let mut no_user = SqlUrl::new("postgresql", None);
        no_user.password = Some("pw".into());
        no_user.host = Some("h".into());
        assert_eq!(no_user.render(false), "postgresql://h");
    }

    #[test]
    fn debug_and_redacted_rendering_hide_secrets() {
        let url = parse("postgresql://user:secret-pw@host/db?sslpassword=secret-ssl&password=secret-q&sslmode=require");
        let shown = format!("{url:?}");
        assert!(shown.contains("password: Some(***)"), "{shown}");
        assert!(shown.contains("\"sslmode\", \"require\""), "{shown}");
        let redacted = url.render_redacted();
        assert_eq!(redacted, "postgresql://user:***@host/db?password=***&sslmode=require&sslpassword=***");
        for text in [shown, redacted] {
            assert!(!text.contains("secret"), "{text}");
        }
        assert!(is_secret_param("PASSWORD") && is_secret_param("passfile") && is_secret_param("api_token"));
        assert!(!is_secret_param("sslmode") && !is_secret_param("charset"));
    }

    #[test]
    fn set_query_param_replaces_every_earlier_value() {
        let mut url = parse("mysql://h/db?charset=latin1&x=1&charset=utf8");
        url.set_query_param("charset", "utf8mb4".into());
        assert_eq!(url.query, vec![("x".to_owned(), "1".to_owned()), ("charset".to_owned(), "utf8mb4".to_owned())]);
    }

    #[test]
    fn python_int() {
        for (text, expected) in [
            ("5433", Some(5433)),
            (" 5433\n", Some(5433)),
            ("+7", Some(7)),
            ("-7", Some(-7)),
            ("5_433", Some(5433)),
            ("007", Some(7)),
            ("5__433", None),
            ("_5", None),
            ("5_", None),
            ("5433.0", None),
            ("abc", None),
            ("", None),
            ("-", None),
            ("0x10", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_python_int(text), expected, "{text:?}");
        }
    }

    #[test]
    fn backend_names_and_features() {
        assert_eq!(Backend::Postgres.to_string(), "PostgreSQL");
        assert_eq!(Backend::MySql.feature(), "mysql");
        assert_eq!(Backend::Sqlite.is_enabled(), cfg!(feature = "sqlite"));
        assert_eq!(split_drivername("mysql+"), ("mysql", None));
        assert_eq!(split_drivername("a+b+c"), ("a", Some("b+c")));
    }
}
