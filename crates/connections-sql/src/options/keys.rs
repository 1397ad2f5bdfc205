//! The keys of a connection of type `sql`: its top-level keys, the keys of `create_engine_kwargs`,
//! and the error for a key that is neither.

use std::fmt::{self, Write as _};
use std::str::FromStr;

/// A top-level key of the configuration of a connection of type `sql`, in its
/// `[connections.<name>]` section or in the options passed to `connection()`. The names are
/// Streamlit's; `FromStr` takes them, `AsRef<str>` gives them back.
///
/// An option replaces the section's value of the same key. When `url` is present (in either
/// source) the part keys, `dialect` to `query`, are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlKey {
    /// `url`, a string: the whole database URL, SQLAlchemy style,
    /// `dialect[+driver]://[user[:password]@][host][:port][/database][?key=value&...]`, with
    /// user, password and database percent-encoded. Wins over every part key. Streamlit: `url`.
    Url,
    /// `dialect`, a string: `sqlite`, `postgresql` (or `postgres`), `mysql` or `mariadb`; may
    /// carry the driver (`mysql+pymysql`). Required without `url`. Streamlit: `dialect`.
    Dialect,
    /// `driver`, a string: the Python driver SQLAlchemy would load (`psycopg2`, `pymysql`, ...);
    /// kept in the URL, with no effect on how the port connects. Optional. Streamlit: `driver`.
    Driver,
    /// `username`, a string. Required without `url` (`""` is accepted, as for SQLite).
    /// Streamlit: `username`.
    Username,
    /// `password`, a string (or an integer, as Python's `str()` would take it). Optional; never
    /// shown. Streamlit: `password`.
    Password,
    /// `host`, a string: name or address (an IPv6 address without brackets), or for PostgreSQL a
    /// socket directory. Required without `url` (`""` is accepted). Streamlit: `host`.
    Host,
    /// `port`: an integer, a float (truncated, as Python's `int()`), or a string holding an
    /// integer; 0 to 65535. Default: the backend's (5432, 3306). Streamlit: `port`.
    Port,
    /// `database`, a string: the database name, or for SQLite the file path (relative to the
    /// working directory; absent or `:memory:` for an in-memory database). Optional.
    /// Streamlit: `database`.
    Database,
    /// `query`, a table of strings, numbers or booleans (or arrays of them, for repeated
    /// parameters): the URL's query parameters, which the backend reads as connection
    /// parameters (`sslmode`, `charset`, ...). Optional. Streamlit: `query`.
    Query,
    /// `create_engine_kwargs`, a table of SQLAlchemy engine options; see [`EngineKwarg`] for the
    /// supported keys. Optional. Streamlit: `create_engine_kwargs`.
    CreateEngineKwargs,
    /// `autocommit`, a boolean: run each statement in its own transaction (SQLAlchemy's
    /// `AUTOCOMMIT` isolation level). Default `false`. Streamlit takes it only as a keyword
    /// argument of `st.connection`; here it is read from the options and from the section alike.
    Autocommit,
    /// `type`: the connection type (`"sql"`), read by the core when it picks the type; ignored
    /// here.
    Type,
}

impl SqlKey {
    /// Every key, in documentation order.
    pub const ALL: &'static [Self] = &[
        Self::Url,
        Self::Dialect,
        Self::Driver,
        Self::Username,
        Self::Password,
        Self::Host,
        Self::Port,
        Self::Database,
        Self::Query,
        Self::CreateEngineKwargs,
        Self::Autocommit,
        Self::Type,
    ];

    /// The keys required when there is no `url`, in the order a missing-keys error lists them.
    pub(super) const REQUIRED: [Self; 3] = [Self::Dialect, Self::Username, Self::Host];

    /// Whether the key is one of Streamlit's nine connection parameters (`url` and the parts),
    /// the only option keys that make a configuration non-empty.
    pub(super) const fn is_connection_param(self) -> bool {
        !matches!(self, Self::CreateEngineKwargs | Self::Autocommit | Self::Type)
    }

    /// Whether the key is a part of the URL, ignored when `url` is present.
    pub(super) const fn is_part(self) -> bool {
        self.is_connection_param() && !matches!(self, Self::Url)
    }

    /// The keys an unknown-key error lists: all but `type`, which is not a driver setting.
    fn supported() -> Vec<&'static str> {
        Self::ALL.iter().filter(|k| **k != Self::Type).map(AsRef::as_ref).collect()
    }
}

impl AsRef<str> for SqlKey {
    fn as_ref(&self) -> &str {
        match self {
            Self::Url => "url",
            Self::Dialect => "dialect",
            Self::Driver => "driver",
            Self::Username => "username",
            Self::Password => "password",
            Self::Host => "host",
            Self::Port => "port",
            Self::Database => "database",
            Self::Query => "query",
            Self::CreateEngineKwargs => "create_engine_kwargs",
            Self::Autocommit => "autocommit",
            Self::Type => "type",
        }
    }
}

impl fmt::Display for SqlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ref())
    }
}

impl FromStr for SqlKey {
    type Err = UnknownKey;

    fn from_str(s: &str) -> Result<Self, UnknownKey> {
        let found = Self::ALL.iter().copied().find(|k| k.as_ref() == s);
        found.ok_or_else(|| UnknownKey::new(s, "for a connection of type `sql`", Self::supported()))
    }
}

/// A key of `create_engine_kwargs`: the SQLAlchemy engine options the port supports, mapped to
/// sqlx's pool and connect options. `FromStr` takes SQLAlchemy's names, `AsRef<str>` gives them
/// back; any other SQLAlchemy option is an error naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineKwarg {
    /// `pool_size`, an integer ≥ 0: connections kept open. With `max_overflow` it sets the pool's
    /// maximum size, `pool_size + max_overflow`. Default 5.
    PoolSize,
    /// `max_overflow`, an integer ≥ -1: connections allowed beyond `pool_size`; -1 for no limit.
    /// Default 10.
    MaxOverflow,
    /// `pool_timeout`, a number of seconds > 0: how long to wait for a free connection
    /// (sqlx's `acquire_timeout`). Default 30.
    PoolTimeout,
    /// `pool_recycle`, a number of seconds: connections older than this are replaced (sqlx's
    /// `max_lifetime`, at least 1 s); negative for never. Default -1 (never).
    PoolRecycle,
    /// `pool_pre_ping`, a boolean: check that a connection is alive before handing it out
    /// (sqlx's `test_before_acquire`). Default `false`.
    PoolPrePing,
    /// `echo`, a boolean (or `"debug"`, taken as `true`): log every statement at level INFO.
    /// Default `false`.
    Echo,
    /// `connect_args`, a table of strings, numbers or booleans: extra connection parameters,
    /// merged into the URL's query (replacing a parameter of the same name), where the backend
    /// reads them (`sslmode`, `application_name`, `charset`, `connect_timeout`, ...).
    ConnectArgs,
    /// `query_timeout`, a number of seconds > 0 (this port's own; SQLAlchemy has none): how long
    /// a query or statement may run, from the moment it has a connection until its whole result
    /// is read. Past it the statement is stopped (PostgreSQL also cancels it on the server, with
    /// `statement_timeout`) and fails with an error naming `query_timeout`; its connection is
    /// closed, not reused. Default: none.
    QueryTimeout,
}

impl EngineKwarg {
    /// Every key, in documentation order.
    pub const ALL: &'static [Self] = &[
        Self::PoolSize,
        Self::MaxOverflow,
        Self::PoolTimeout,
        Self::PoolRecycle,
        Self::PoolPrePing,
        Self::Echo,
        Self::ConnectArgs,
        Self::QueryTimeout,
    ];
}

impl AsRef<str> for EngineKwarg {
    fn as_ref(&self) -> &str {
        match self {
            Self::PoolSize => "pool_size",
            Self::MaxOverflow => "max_overflow",
            Self::PoolTimeout => "pool_timeout",
            Self::PoolRecycle => "pool_recycle",
            Self::PoolPrePing => "pool_pre_ping",
            Self::Echo => "echo",
            Self::ConnectArgs => "connect_args",
            Self::QueryTimeout => "query_timeout",
        }
    }
}

impl fmt::Display for EngineKwarg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ref())
    }
}

impl FromStr for EngineKwarg {
    type Err = UnknownKey;

    fn from_str(s: &str) -> Result<Self, UnknownKey> {
        let found = Self::ALL.iter().copied().find(|k| k.as_ref() == s);
        found.ok_or_else(|| {
            UnknownKey::new(s, "in `create_engine_kwargs`", Self::ALL.iter().map(AsRef::as_ref).collect())
        })
    }
}

/// A key that is none of the supported ones: the error of [`SqlKey`]'s and [`EngineKwarg`]'s
/// `FromStr`. Its message lists the supported keys and suggests the closest one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKey {
    key: String,
    context: &'static str,
    supported: Vec<&'static str>,
}

impl UnknownKey {
    /// An unknown `key`; `context` says where ("for a connection of type `sql`").
    fn new(key: &str, context: &'static str, supported: Vec<&'static str>) -> Self {
        Self { key: key.to_owned(), context, supported }
    }

    /// The key as given.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The supported keys.
    pub fn supported(&self) -> &[&'static str] {
        &self.supported
    }

    /// The supported key closest to the one given, if it is close enough to be a likely typo.
    pub fn closest(&self) -> Option<&'static str> {
        closest(&self.key, &self.supported)
    }

    /// The message without the key: what a configuration error attached to the key says.
    pub(super) fn reason(&self) -> String {
        let mut reason = format!("unknown key {}; supported keys: {}", self.context, self.supported.join(", "));
        if let Some(closest) = self.closest() {
            let _ = write!(reason, " (did you mean `{closest}`?)");
        }
        reason
    }
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.reason())
    }
}

impl std::error::Error for UnknownKey {}

/// The supported name closest to `name`, if close enough to be a likely typo (the core's rule
/// for type names).
pub(super) fn closest(name: &str, supported: &[&'static str]) -> Option<&'static str> {
    let lower = name.to_lowercase();
    supported
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(distance, k)| *distance <= (k.chars().count() / 3).max(1) + usize::from(k.len() > 3))
        .min()
        .map(|(_, k)| k)
}

/// The optimal-string-alignment distance between two strings (edits, adjacent swaps included).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows: Vec<Vec<usize>> = (0..=a.len()).map(|i| (0..=b.len()).map(|j| i.max(j)).collect()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_print() {
        for key in SqlKey::ALL {
            assert_eq!(key.as_ref().parse::<SqlKey>(), Ok(*key));
            assert_eq!(key.to_string(), key.as_ref());
        }
        for kwarg in EngineKwarg::ALL {
            assert_eq!(kwarg.as_ref().parse::<EngineKwarg>(), Ok(*kwarg));
        }
        let err = "hots".parse::<SqlKey>().unwrap_err();
        assert_eq!(err.key(), "hots");
        assert_eq!(err.closest(), Some("host"));
        assert!(!err.supported().contains(&"type"));
        assert_eq!(
            err.to_string(),
            "`hots`: unknown key for a connection of type `sql`; supported keys: url, dialect, driver, username, \
             password, host, port, database, query, create_engine_kwargs, autocommit (did you mean `host`?)"
        );
        let err = "pool_sise".parse::<EngineKwarg>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`pool_sise`: unknown key in `create_engine_kwargs`; supported keys: pool_size, max_overflow, \
             pool_timeout, pool_recycle, pool_pre_ping, echo, connect_args, query_timeout (did you mean `pool_size`?)"
        );
        assert_eq!("URL".parse::<SqlKey>().unwrap_err().closest(), Some("url"));
        assert_eq!("user".parse::<SqlKey>().unwrap_err().closest(), None);
        assert_eq!(edit_distance("passwrod", "password"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
