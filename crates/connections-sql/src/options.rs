//! The configuration of a connection of type `sql`: the keys of its `[connections.<name>]`
//! section and of the options passed to `connection()`, read from [`ConnectParams`] into a
//! checked [`SqlConfig`], and the sqlx connect and pool options made from it.
//!
//! The rules are Streamlit's (`SQLConnection._connect`), with the port's decisions:
//! - an option beats the section's value of the same key (done by [`ConnectParams`]);
//! - `url`, from either source, wins: the part keys are then ignored (decision 5);
//! - without `url`, `dialect`, `username` and `host` are required, and every missing one is
//!   reported in one error, in that order (decision 7); presence is what counts (`""` is fine);
//! - `create_engine_kwargs` (SQLAlchemy's pool options) map to sqlx's pool, and an unknown one
//!   is an error (decision 6); as in Streamlit, the options given to `connection()` may also
//!   name engine options at the top level, where they beat the section's `create_engine_kwargs`;
//! - unlike Streamlit, which ignores them, unknown top-level keys are errors.
//!
//! No error message contains a configured value: they name the key, its source and what was
//! expected.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use connections_core::toml::{Table, Value};
use connections_core::{ConfigOrigin, ConnectParams, Error, Result};

use crate::url::{Backend, SqlUrl, parse_python_int, split_drivername};

#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteConnectOptions;

#[cfg(feature = "postgres")]
use sqlx::postgres::PgConnectOptions;

#[cfg(feature = "mysql")]
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

/// SQLAlchemy's default `pool_size`.
const DEFAULT_POOL_SIZE: i64 = 5;

/// SQLAlchemy's default `max_overflow`.
const DEFAULT_MAX_OVERFLOW: i64 = 10;

/// SQLAlchemy's default `pool_timeout`, in seconds.
const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long sqlx keeps an idle connection above `min_connections` (sqlx's own default).
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The pool size that stands for SQLAlchemy's "no limit" (`max_overflow = -1`): far more than
/// any database server accepts, so the server's limit is the one that applies.
const UNBOUNDED_CONNECTIONS: u32 = 65_535;

/// The shortest `pool_recycle`: sqlx's maintenance task runs at this period, so a zero would make
/// it spin.
const MIN_RECYCLE: Duration = Duration::from_secs(1);

/// The message for an empty configuration, Streamlit's adapted: `{name}` is the connection name.
const MISSING_CONFIGURATION: &str = "missing SQL DB connection configuration: did you forget to set this in \
                                     `secrets.toml` ([connections.{name}]) or as options with \
                                     `connection(\"{name}\").option(...)`?";

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
    const REQUIRED: [Self; 3] = [Self::Dialect, Self::Username, Self::Host];

    /// Whether the key is one of Streamlit's nine connection parameters (`url` and the parts),
    /// the only option keys that make a configuration non-empty.
    const fn is_connection_param(self) -> bool {
        !matches!(self, Self::CreateEngineKwargs | Self::Autocommit | Self::Type)
    }

    /// Whether the key is a part of the URL, ignored when `url` is present.
    const fn is_part(self) -> bool {
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
    /// `pool_timeout`, a number of seconds ≥ 0: how long to wait for a free connection
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
    /// reads them (`sslmode`, `application_name`, `charset`, ...).
    ConnectArgs,
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
    fn reason(&self) -> String {
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

/// The pool settings, SQLAlchemy's engine options translated to sqlx (see [`EngineKwarg`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EngineOptions {
    /// The pool's maximum size: `pool_size + max_overflow` (15 by default; 65 535 for no limit).
    pub(crate) max_connections: u32,
    /// Connections the pool keeps open: 0 (SQLAlchemy connects lazily), 1 for in-memory SQLite.
    pub(crate) min_connections: u32,
    /// How long an acquire waits for a connection: `pool_timeout` (30 s).
    pub(crate) acquire_timeout: Duration,
    /// The age at which a connection is replaced: `pool_recycle` (none).
    pub(crate) max_lifetime: Option<Duration>,
    /// How long an idle connection above `min_connections` is kept: sqlx's 10 minutes; none
    /// for in-memory SQLite.
    pub(crate) idle_timeout: Option<Duration>,
    /// Whether a connection is pinged before it is handed out: `pool_pre_ping` (`false`).
    pub(crate) test_before_acquire: bool,
    /// Whether statements are to be logged at INFO: `echo` (`false`). The connect options leave
    /// sqlx's own statement logging as it is (DEBUG); the pool logs when this is on.
    pub(crate) echo: bool,
}

impl Default for EngineOptions {
    /// SQLAlchemy's defaults.
    fn default() -> Self {
        Self {
            max_connections: max_connections(DEFAULT_POOL_SIZE, DEFAULT_MAX_OVERFLOW),
            min_connections: 0,
            acquire_timeout: DEFAULT_POOL_TIMEOUT,
            max_lifetime: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            test_before_acquire: false,
            echo: false,
        }
    }
}

/// The pool's maximum size for SQLAlchemy's `pool_size` and `max_overflow`: their sum (at least
/// 1), or [`UNBOUNDED_CONNECTIONS`] when `max_overflow` is negative.
fn max_connections(pool_size: i64, max_overflow: i64) -> u32 {
    if max_overflow < 0 {
        return UNBOUNDED_CONNECTIONS;
    }
    let total = pool_size.saturating_add(max_overflow).max(1);
    u32::try_from(total).map_or(UNBOUNDED_CONNECTIONS, |n| n.min(UNBOUNDED_CONNECTIONS))
}

/// The pool options for an engine's settings. For in-memory SQLite, [`SqlConfig::from_params`]
/// has already set what keeps the database alive (one connection always open, none reaped).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) fn pool_options<DB: sqlx::Database>(engine: &EngineOptions) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(engine.max_connections)
        .min_connections(engine.min_connections)
        .acquire_timeout(engine.acquire_timeout)
        .max_lifetime(engine.max_lifetime)
        .idle_timeout(engine.idle_timeout)
        .test_before_acquire(engine.test_before_acquire)
}

/// A checked configuration of a connection of type `sql`: what `connect` needs to build a pool.
///
/// `Debug` shows the URL with `***` for the password.
#[derive(Clone)]
pub(crate) struct SqlConfig {
    /// The database family, chosen by the dialect.
    pub(crate) backend: Backend,
    /// The URL: `url` as given, or built from the parts, with `connect_args` merged into its
    /// query.
    pub(crate) url: SqlUrl,
    /// The pool settings.
    pub(crate) engine: EngineOptions,
    /// Whether each statement commits on its own.
    pub(crate) autocommit: bool,
    /// The parameters the configuration came from, for errors found when connect options are
    /// built (they name the connection, the key and its source).
    params: ConnectParams,
}

impl SqlConfig {
    /// Reads and checks the configuration: every key known, the URL (given or built from its
    /// parts) parsed, its dialect supported and compiled in, the engine options and the
    /// backend's connection parameters valid.
    pub(crate) fn from_params(params: &ConnectParams) -> Result<Self> {
        let config = Self::read(params)?;
        config.check_backend()?;
        Ok(config)
    }

    /// Reads the configuration and checks everything that does not depend on the backends
    /// compiled in.
    fn read(params: &ConnectParams) -> Result<Self> {
        check_keys(params)?;
        if !has_configuration(params) {
            return Err(params.error("", MISSING_CONFIGURATION.replace("{name}", params.name())));
        }
        let (mut url, url_key) = match params.get(SqlKey::Url.as_ref()) {
            Some(value) => {
                warn_ignored_parts(params);
                let text = value.as_str().ok_or_else(|| expected(params, "url", "a string", value))?;
                (SqlUrl::parse(text).map_err(|e| params.error("url", e.to_string()))?, SqlKey::Url)
            }
            None => (url_from_parts(params)?, SqlKey::Dialect),
        };
        let backend = url.backend().map_err(|e| params.error(url_key.as_ref(), e.to_string()))?;
        let (mut engine, connect_args) = read_engine(params)?;
        for (key, value) in connect_args {
            url.set_query_param(&key, value);
        }
        if backend == Backend::Sqlite && is_sqlite_memory(&url) {
            // One connection always open and none reaped: an in-memory database lives as long as
            // a connection to it does.
            engine.min_connections = 1;
            engine.idle_timeout = None;
            engine.max_lifetime = None;
        }
        let autocommit = match params.get(SqlKey::Autocommit.as_ref()) {
            Some(Value::Boolean(on)) => *on,
            Some(other) => return Err(expected(params, "autocommit", "a boolean", other)),
            None => false,
        };
        Ok(Self { backend, url, engine, autocommit, params: params.clone() })
    }

    /// Checks that the backend is compiled in, and builds its connect options once so that a bad
    /// connection parameter fails here.
    fn check_backend(&self) -> Result<()> {
        if !self.backend.is_enabled() {
            let key = if self.params.get(SqlKey::Url.as_ref()).is_some() { SqlKey::Url } else { SqlKey::Dialect };
            let message = format!(
                "the `{}` dialect needs {} support, which this build lacks: \
                 enable the \"{}\" feature of the connections crate",
                self.url.dialect,
                self.backend.name(),
                self.backend.feature()
            );
            return Err(self.params.error(key.as_ref(), message));
        }
        #[cfg(feature = "sqlite")]
        if self.backend == Backend::Sqlite {
            sqlite_options(self)?;
        }
        #[cfg(feature = "postgres")]
        if self.backend == Backend::Postgres {
            postgres_options(self)?;
        }
        #[cfg(feature = "mysql")]
        if self.backend == Backend::MySql {
            mysql_options(self)?;
        }
        Ok(())
    }

    /// The configuration error for a bad connection parameter, attached to where it came from:
    /// `connect_args` (which override the URL), else `url`, else `query.<param>`.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    fn param_error(&self, error: ParamError) -> Error {
        let connect_args = EngineKwarg::ConnectArgs.as_ref();
        let in_table = |table: Option<&Value>| table.and_then(|t| t.get(&error.param)).is_some();
        let key = if in_table(self.params.options().get(connect_args)) {
            format!("{connect_args}.{}", error.param)
        } else if in_table(self.params.get(SqlKey::CreateEngineKwargs.as_ref()).and_then(|t| t.get(connect_args))) {
            format!("create_engine_kwargs.{connect_args}.{}", error.param)
        } else if self.params.get(SqlKey::Url.as_ref()).is_some() {
            SqlKey::Url.as_ref().to_owned()
        } else if error.param.is_empty() {
            String::new()
        } else {
            format!("query.{}", error.param)
        };
        self.params.error(&key, error.message)
    }
}

impl fmt::Debug for SqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConfig")
            .field("name", &self.params.name())
            .field("backend", &self.backend)
            .field("url", &self.url.render_redacted())
            .field("engine", &self.engine)
            .field("autocommit", &self.autocommit)
            .finish_non_exhaustive()
    }
}

/// Checks that every top-level key is known. Engine options are accepted at the top level of the
/// options passed to `connection()` (Streamlit's `**kwargs`), not of the section.
fn check_keys(params: &ConnectParams) -> Result<()> {
    let mut unknown: Vec<UnknownKey> = Vec::new();
    for key in params.secrets().keys() {
        let Err(error) = SqlKey::from_str(key) else { continue };
        if EngineKwarg::from_str(key).is_ok() && params.origin(key) == Some(ConfigOrigin::Options) {
            continue;
        }
        unknown.push(error);
    }
    let Some(first) = unknown.first() else { return Ok(()) };
    let mut message = first.reason();
    if EngineKwarg::from_str(first.key()).is_ok() {
        let _ = write!(
            message,
            "; engine options go in the section's `create_engine_kwargs` table ([connections.{}.create_engine_kwargs])",
            params.name()
        );
    }
    Err(params.error(first.key(), with_others(message, &unknown)))
}

/// Appends `(also unknown: ...)` to a message about the first of several unknown keys.
fn with_others(mut message: String, unknown: &[UnknownKey]) -> String {
    if unknown.len() > 1 {
        let others: Vec<String> = unknown[1..].iter().map(|k| format!("`{}`", k.key())).collect();
        let _ = write!(message, " (also unknown: {})", others.join(", "));
    }
    message
}

/// Whether there is any configuration, as Streamlit counts it: a non-empty section (a `type` key
/// alone counts), or a connection parameter among the options (other options do not count).
fn has_configuration(params: &ConnectParams) -> bool {
    params.section().is_some_and(|section| !section.is_empty())
        || params.options().keys().any(|k| SqlKey::from_str(k).is_ok_and(SqlKey::is_connection_param))
}

/// Logs the part keys that `url` makes ignored (names only).
fn warn_ignored_parts(params: &ConnectParams) {
    let ignored: Vec<&str> =
        SqlKey::ALL.iter().filter(|k| k.is_part() && params.get(k.as_ref()).is_some()).map(AsRef::as_ref).collect();
    if !ignored.is_empty() {
        tracing::warn!(
            connection = params.name(),
            ignored = ?ignored,
            "`url` is set, so these SQL connection parameters are ignored"
        );
    }
}

/// Builds the URL from the part keys, after checking that the required ones are present.
fn url_from_parts(params: &ConnectParams) -> Result<SqlUrl> {
    let missing: Vec<&str> =
        SqlKey::REQUIRED.iter().map(AsRef::as_ref).filter(|key| params.get(key).is_none()).collect();
    match missing.as_slice() {
        [] => {}
        [only] => {
            let message = format!(
                "the `{only}` parameter is required: set this SQL DB connection parameter in `secrets.toml` \
                 or pass it with `connection(...).option(...)`"
            );
            return Err(params.error(only, message));
        }
        [first @ .., last] => {
            let first: Vec<String> = first.iter().map(|k| format!("`{k}`")).collect();
            let message = format!(
                "the {} and `{last}` parameters are required: set these SQL DB connection parameters in \
                 `secrets.toml` or pass them with `connection(...).option(...)`",
                first.join(", ")
            );
            return Err(params.error("", message));
        }
    }
    let dialect = read_string(params, SqlKey::Dialect)?.unwrap_or_default();
    let drivername = match read_string(params, SqlKey::Driver)? {
        Some(driver) => format!("{dialect}+{driver}"),
        None => dialect,
    };
    let (dialect, driver) = split_drivername(&drivername);
    let mut url = SqlUrl::new(dialect, driver);
    url.username = read_string(params, SqlKey::Username)?;
    url.password = match params.get(SqlKey::Password.as_ref()) {
        None => None,
        Some(Value::String(password)) => Some(password.clone()),
        Some(Value::Integer(password)) => Some(password.to_string()),
        Some(other) => return Err(expected(params, "password", "a string", other)),
    };
    url.host = read_string(params, SqlKey::Host)?;
    url.port = read_port(params)?;
    url.database = read_string(params, SqlKey::Database)?;
    url.query = match params.get(SqlKey::Query.as_ref()) {
        None => Vec::new(),
        Some(Value::Table(table)) => parameter_pairs(params, "query", table)?,
        Some(other) => return Err(expected(params, "query", "a table of query parameters", other)),
    };
    Ok(url)
}

/// A string key's value, if present.
fn read_string(params: &ConnectParams, key: SqlKey) -> Result<Option<String>> {
    match params.get(key.as_ref()) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(expected(params, key.as_ref(), "a string", other)),
    }
}

/// The `port`, coerced as Python's `int()` does: an integer, a float truncated toward zero, or
/// a string holding an integer.
fn read_port(params: &ConnectParams) -> Result<Option<u16>> {
    const EXPECTED: &str = "an integer, a float or a string holding an integer";
    let Some(value) = params.get(SqlKey::Port.as_ref()) else { return Ok(None) };
    let number = match value {
        Value::Integer(n) => Some(*n),
        Value::Float(f) => truncate(*f),
        Value::String(text) => parse_python_int(text),
        other => return Err(expected(params, "port", EXPECTED, other)),
    };
    let port = number.and_then(|n| u16::try_from(n).ok());
    let message = format!("expected a port number between 0 and 65535 ({EXPECTED})");
    port.map(Some).ok_or_else(|| params.error("port", message))
}

/// A float truncated toward zero, as Python's `int()`; `None` for NaN, infinities and values
/// beyond the range of a port (which is all that is asked of it).
#[allow(clippy::cast_possible_truncation)]
fn truncate(value: f64) -> Option<i64> {
    // The range check makes the cast exact.
    (value.is_finite() && value.abs() < 1e9).then(|| value.trunc() as i64)
}

/// The `key = value` pairs of a table of connection parameters (`query`, `connect_args`):
/// strings, numbers and booleans as text, arrays as repeated parameters.
fn parameter_pairs(params: &ConnectParams, path: &str, table: &Table) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (key, value) in table {
        let items = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for item in items {
            let text = scalar_text(item).ok_or_else(|| {
                expected(
                    params,
                    &format!("{path}.{key}"),
                    "a string, a number or a boolean (or an array of them)",
                    item,
                )
            })?;
            pairs.push((key.clone(), text));
        }
    }
    Ok(pairs)
}

/// A string, number or boolean as the text of a URL parameter.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Integer(n) => Some(n.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads the engine options, `create_engine_kwargs` with the top-level engine options of
/// `connection()`'s options laid over it per key; returns them with the `connect_args` pairs.
fn read_engine(params: &ConnectParams) -> Result<(EngineOptions, Vec<(String, String)>)> {
    let mut entries: Vec<(EngineKwarg, String, &Value)> = Vec::new();
    let table_key = SqlKey::CreateEngineKwargs.as_ref();
    if let Some(value) = params.get(table_key) {
        let Value::Table(table) = value else { return Err(expected(params, table_key, "a table", value)) };
        let mut unknown = Vec::new();
        for (key, value) in table {
            match EngineKwarg::from_str(key) {
                Ok(kwarg) => entries.push((kwarg, format!("{table_key}.{key}"), value)),
                Err(error) => unknown.push(error),
            }
        }
        if let Some(first) = unknown.first() {
            let key = format!("{table_key}.{}", first.key());
            return Err(params.error(&key, with_others(first.reason(), &unknown)));
        }
    }
    for (key, value) in params.options() {
        if SqlKey::from_str(key).is_err()
            && let Ok(kwarg) = EngineKwarg::from_str(key)
        {
            entries.retain(|(k, _, _)| *k != kwarg);
            entries.push((kwarg, key.clone(), value));
        }
    }

    let mut engine = EngineOptions::default();
    let (mut pool_size, mut max_overflow) = (DEFAULT_POOL_SIZE, DEFAULT_MAX_OVERFLOW);
    let mut connect_args = Vec::new();
    for (kwarg, key, value) in entries {
        match kwarg {
            EngineKwarg::PoolSize => {
                pool_size = value
                    .as_integer()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| expected(params, &key, "an integer, 0 or more", value))?;
            }
            EngineKwarg::MaxOverflow => {
                max_overflow = value
                    .as_integer()
                    .filter(|n| *n >= -1)
                    .ok_or_else(|| expected(params, &key, "an integer, -1 (no limit) or more", value))?;
            }
            EngineKwarg::PoolTimeout => {
                engine.acquire_timeout = match seconds(value) {
                    Some(Seconds::Duration(timeout)) => timeout,
                    _ => return Err(expected(params, &key, "a number of seconds, 0 or more", value)),
                };
            }
            EngineKwarg::PoolRecycle => {
                engine.max_lifetime = match seconds(value) {
                    Some(Seconds::Duration(recycle)) => Some(recycle.max(MIN_RECYCLE)),
                    Some(Seconds::Negative) => None,
                    None => return Err(expected(params, &key, "a number of seconds (-1: never)", value)),
                };
            }
            EngineKwarg::PoolPrePing => {
                engine.test_before_acquire =
                    value.as_bool().ok_or_else(|| expected(params, &key, "a boolean", value))?;
            }
            EngineKwarg::Echo => {
                engine.echo = match value {
                    Value::Boolean(on) => *on,
                    Value::String(text) if text == "debug" => true,
                    other => return Err(expected(params, &key, "a boolean or \"debug\"", other)),
                };
            }
            EngineKwarg::ConnectArgs => {
                let Value::Table(table) = value else { return Err(expected(params, &key, "a table", value)) };
                connect_args = parameter_pairs(params, &key, table)?;
            }
        }
    }
    engine.max_connections = max_connections(pool_size, max_overflow);
    Ok((engine, connect_args))
}

/// A number of seconds, as SQLAlchemy's pool reads one.
enum Seconds {
    /// A negative number: "never" for `pool_recycle`.
    Negative,
    /// Zero or more.
    Duration(Duration),
}

/// A number of seconds; `None` when the value is not a finite number (or is too large).
fn seconds(value: &Value) -> Option<Seconds> {
    match value {
        Value::Integer(n) if *n < 0 => Some(Seconds::Negative),
        Value::Integer(n) => u64::try_from(*n).ok().map(|n| Seconds::Duration(Duration::from_secs(n))),
        Value::Float(f) if f.is_finite() && *f < 0.0 => Some(Seconds::Negative),
        Value::Float(f) => Duration::try_from_secs_f64(*f).ok().map(Seconds::Duration),
        _ => None,
    }
}

/// The error for a value of the wrong type or range: names the key, what was expected and the
/// TOML type found, never the value.
fn expected(params: &ConnectParams, key: &str, what: &str, found: &Value) -> Error {
    let article = match found {
        Value::Integer(_) | Value::Array(_) => "an",
        _ => "a",
    };
    params.error(key, format!("expected {what}, found {article} {}", found.type_str()))
}

/// Whether a SQLite URL opens an in-memory database: no file (`sqlite://`, `:memory:`) or
/// `mode=memory`.
fn is_sqlite_memory(url: &SqlUrl) -> bool {
    url.is_memory() || url.query.iter().any(|(k, v)| k == "mode" && v == "memory")
}

/// The sqlx connect options for the URL's SQLite database.
///
/// - In memory (`sqlite://`, `sqlite:///`, `sqlite:///:memory:`): each call names a new shared
///   in-memory database, `file:connections-mem-<n>` opened with `SQLITE_OPEN_MEMORY` and the
///   shared cache (what sqlx itself does for `sqlite::memory:`), so that every connection of
///   one pool sees the same data; the next pool (after a reset) starts empty, as a new
///   SQLAlchemy engine does. The database lives while one of its connections is open, hence the
///   engine settings [`SqlConfig::from_params`] gives it; call this once per pool.
/// - A file: relative paths are made absolute against the working directory now, as pysqlite
///   does when the engine is created; created when missing, as by Python's `sqlite3`.
/// - Foreign keys are not enforced unless `foreign_keys=true`, as in SQLite and Python (sqlx
///   would turn them on).
/// - Query parameters: `mode` (`ro`, `rw`, `rwc`, `memory`), `cache` (`shared`, `private`),
///   `immutable`, `vfs`, `timeout` (seconds to wait on a locked database, default 5),
///   `foreign_keys`; `uri` and `check_same_thread` are accepted and have no effect (file names
///   starting with `file:` are always read as SQLite URIs). Others are errors.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_options(config: &SqlConfig) -> Result<SqliteConnectOptions> {
    build_sqlite(&config.url).map_err(|e| config.param_error(e))
}

/// The SQLite parameters [`sqlite_options`] reads.
#[cfg(feature = "sqlite")]
const SQLITE_PARAMS: &[&str] =
    &["mode", "cache", "immutable", "vfs", "timeout", "foreign_keys", "uri", "check_same_thread"];

/// Counts the in-memory SQLite databases, to name each one uniquely.
#[cfg(feature = "sqlite")]
static MEMORY_DATABASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// [`sqlite_options`] for a URL, with a parameter error not yet attached to
/// its key.
#[cfg(feature = "sqlite")]
fn build_sqlite(url: &SqlUrl) -> Result<SqliteConnectOptions, ParamError> {
    let mut options = SqliteConnectOptions::new().foreign_keys(false);
    let mut mode = None;
    let mut shared_cache = None;
    for (key, value) in &url.query {
        match key.as_str() {
            "mode" => match value.as_str() {
                "ro" | "rw" | "rwc" | "memory" => mode = Some(value.as_str()),
                _ => return Err(ParamError::new(key, "`mode`: expected one of ro, rw, rwc, memory")),
            },
            "cache" => match value.as_str() {
                "shared" => shared_cache = Some(true),
                "private" => shared_cache = Some(false),
                _ => return Err(ParamError::new(key, "`cache`: expected shared or private")),
            },
            "immutable" => options = options.immutable(param_bool(key, value)?),
            "vfs" => options = options.vfs(value.clone()),
            "timeout" => {
                let timeout = value.trim().parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok());
                let timeout = timeout.ok_or_else(|| ParamError::new(key, "`timeout`: expected a number of seconds"))?;
                options = options.busy_timeout(timeout);
            }
            "foreign_keys" => options = options.foreign_keys(param_bool(key, value)?),
            "uri" | "check_same_thread" => {
                param_bool(key, value)?;
            }
            _ => return Err(ParamError::unknown(key, Backend::Sqlite, SQLITE_PARAMS)),
        }
    }
    if url.is_memory() || mode == Some("memory") {
        if shared_cache == Some(false) {
            return Err(ParamError::new(
                "cache",
                "`cache`: an in-memory database must use the shared cache, so that every pooled connection \
                 sees the same data",
            ));
        }
        let name = match url.database.as_deref() {
            Some(name) if !url.is_memory() => name.to_owned(),
            _ => {
                format!("file:connections-mem-{}", MEMORY_DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            }
        };
        options = options.filename(name).in_memory(true).shared_cache(true);
    } else {
        let database = url.database.as_deref().unwrap_or_default();
        let path = if database.starts_with("file:") {
            database.into()
        } else {
            std::path::absolute(database).map_err(|_| {
                ParamError::new("", "cannot resolve the SQLite database path against the working directory")
            })?
        };
        options =
            options.filename(path).read_only(mode == Some("ro")).create_if_missing(!matches!(mode, Some("ro" | "rw")));
        if let Some(shared) = shared_cache {
            options = options.shared_cache(shared);
        }
    }
    Ok(options)
}

/// The sqlx connect options for the URL's PostgreSQL server.
///
/// Read as libpq reads a psycopg2 URL: unset parts come from the environment (`PGHOST`,
/// `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, ...) and a missing password from
/// `~/.pgpass`; empty parts count as unset; query parameters override the parts. Query
/// parameters: `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `application_name`, `options`,
/// `options[<setting>]`, `host` (a directory for a Unix socket), `hostaddr`, `port`, `dbname`,
/// `user`, `password`, `extra_float_digits`, `statement-cache-capacity`, and `client_encoding`
/// (UTF8 only). Others are errors.
#[cfg(feature = "postgres")]
pub(crate) fn postgres_options(config: &SqlConfig) -> Result<PgConnectOptions> {
    build_postgres(&config.url).map_err(|e| config.param_error(e))
}

/// The PostgreSQL parameters [`postgres_options`] reads.
#[cfg(feature = "postgres")]
const POSTGRES_PARAMS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "options",
    "options[<setting>]",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "extra_float_digits",
    "statement-cache-capacity",
    "client_encoding",
];

/// [`postgres_options`] for a URL, with a parameter error not yet attached to
/// its key.
#[cfg(feature = "postgres")]
fn build_postgres(url: &SqlUrl) -> Result<PgConnectOptions, ParamError> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

    const SSL_MODES: [&str; 6] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

    // Everything travels as query parameters of a sqlx URL, so that sqlx applies the
    // environment's defaults and `~/.pgpass` after them, as libpq does.
    let mut pairs: Vec<(String, String)> = Vec::new();
    let parts = [
        ("host", url.host.clone()),
        ("port", url.port.map(|p| p.to_string())),
        ("user", url.username.clone()),
        ("password", url.password.clone()),
        ("dbname", url.database.clone()),
    ];
    for (key, value) in parts {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            pairs.push((key.to_owned(), value));
        }
    }
    let mut extra_float_digits = None;
    for (key, value) in &url.query {
        let name = match key.as_str() {
            "sslmode" | "ssl-mode" | "ssl_mode" => {
                let mode = value.to_ascii_lowercase();
                if !SSL_MODES.contains(&mode.as_str()) {
                    return Err(ParamError::new(key, format!("`{key}`: expected one of {}", SSL_MODES.join(", "))));
                }
                pairs.push(("sslmode".to_owned(), mode));
                continue;
            }
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" => "sslrootcert",
            "sslcert" | "ssl-cert" => "sslcert",
            "sslkey" | "ssl-key" => "sslkey",
            "application_name" | "options" | "host" | "dbname" | "user" | "password" => key.as_str(),
            "hostaddr" => {
                value
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| ParamError::new(key, "`hostaddr`: expected an IP address"))?;
                "hostaddr"
            }
            "port" => {
                value
                    .parse::<u16>()
                    .map_err(|_| ParamError::new(key, "`port`: expected an integer between 0 and 65535"))?;
                "port"
            }
            "statement-cache-capacity" => {
                value.parse::<usize>().map_err(|_| ParamError::new(key, format!("`{key}`: expected an integer")))?;
                key.as_str()
            }
            "extra_float_digits" => {
                let digits = value.trim().parse::<i8>();
                extra_float_digits =
                    Some(digits.map_err(|_| ParamError::new(key, "`extra_float_digits`: expected an integer"))?);
                continue;
            }
            "client_encoding" => {
                if !matches!(value.to_ascii_lowercase().as_str(), "utf8" | "utf-8" | "unicode") {
                    return Err(ParamError::new(key, "`client_encoding`: only UTF8 is supported"));
                }
                continue;
            }
            setting
                if setting.len() > "options[]".len() && setting.starts_with("options[") && setting.ends_with(']') =>
            {
                setting
            }
            _ => return Err(ParamError::unknown(key, Backend::Postgres, POSTGRES_PARAMS)),
        };
        pairs.push((name.to_owned(), value.clone()));
    }
    let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let text = format!("postgres://?{}", query.join("&"));
    let mut options = PgConnectOptions::from_str(&text)
        .map_err(|_| ParamError::new("", "the PostgreSQL connection parameters are invalid"))?;
    if let Some(digits) = extra_float_digits {
        options = options.extra_float_digits(digits);
    }
    Ok(options)
}

/// The sqlx connect options for the URL's MySQL or MariaDB server.
///
/// Unset parts take sqlx's defaults (host `localhost`, port 3306, user `root`, charset
/// `utf8mb4`); empty parts count as unset. Query parameters: `charset`, `collation`, `ssl_mode`
/// (`DISABLED`, `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`, any case), `ssl_ca`,
/// `ssl_cert`, `ssl_key`, `unix_socket`, `timezone` and `statement-cache-capacity` (also in
/// sqlx's spellings `ssl-mode`, `ssl-ca`, `socket`, ...). Others are errors.
#[cfg(feature = "mysql")]
pub(crate) fn mysql_options(config: &SqlConfig) -> Result<MySqlConnectOptions> {
    build_mysql(&config.url).map_err(|e| config.param_error(e))
}

/// The MySQL parameters [`mysql_options`] reads.
#[cfg(feature = "mysql")]
const MYSQL_PARAMS: &[&str] = &[
    "charset",
    "collation",
    "ssl_mode",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "unix_socket",
    "timezone",
    "statement-cache-capacity",
];

/// [`mysql_options`] for a URL, with a parameter error not yet attached to
/// its key.
#[cfg(feature = "mysql")]
fn build_mysql(url: &SqlUrl) -> Result<MySqlConnectOptions, ParamError> {
    let mut options = MySqlConnectOptions::new();
    let set = |part: &Option<String>| part.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    if let Some(host) = set(&url.host) {
        options = options.host(&host);
    }
    if let Some(port) = url.port {
        options = options.port(port);
    }
    if let Some(username) = set(&url.username) {
        options = options.username(&username);
    }
    if let Some(password) = set(&url.password) {
        options = options.password(&password);
    }
    if let Some(database) = set(&url.database) {
        options = options.database(&database);
    }
    for (key, value) in &url.query {
        options = match key.as_str() {
            "charset" => options.charset(value),
            "collation" => options.collation(value),
            "ssl_mode" | "sslmode" | "ssl-mode" => {
                let mode = match value.to_ascii_lowercase().replace('-', "_").as_str() {
                    "disabled" => MySqlSslMode::Disabled,
                    "preferred" => MySqlSslMode::Preferred,
                    "required" => MySqlSslMode::Required,
                    "verify_ca" => MySqlSslMode::VerifyCa,
                    "verify_identity" => MySqlSslMode::VerifyIdentity,
                    _ => {
                        return Err(ParamError::new(
                            key,
                            format!(
                                "`{key}`: expected one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
                            ),
                        ));
                    }
                };
                options.ssl_mode(mode)
            }
            "ssl_ca" | "sslca" | "ssl-ca" => options.ssl_ca(value),
            "ssl_cert" | "sslcert" | "ssl-cert" => options.ssl_client_cert(value),
            "ssl_key" | "sslkey" | "ssl-key" => options.ssl_client_key(value),
            "unix_socket" | "socket" => options.socket(value),
            "timezone" | "time_zone" | "time-zone" => options.timezone(Some(value.clone())),
            "statement-cache-capacity" => options.statement_cache_capacity(
                value.parse().map_err(|_| ParamError::new(key, format!("`{key}`: expected an integer")))?,
            ),
            _ => return Err(ParamError::unknown(key, Backend::MySql, MYSQL_PARAMS)),
        };
    }
    Ok(options)
}

/// A bad connection parameter found while building a backend's connect options: the parameter
/// (empty for the options as a whole) and a message naming it, without its value.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[derive(Debug)]
struct ParamError {
    param: String,
    message: String,
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
impl ParamError {
    /// A bad `param`, with a message that names it.
    fn new(param: &str, message: impl Into<String>) -> Self {
        Self { param: param.to_owned(), message: message.into() }
    }

    /// A parameter the backend does not read.
    fn unknown(param: &str, backend: Backend, supported: &[&'static str]) -> Self {
        let mut message =
            format!("unknown {backend} connection parameter `{param}`; supported parameters: {}", supported.join(", "));
        if let Some(closest) = closest(param, supported) {
            let _ = write!(message, " (did you mean `{closest}`?)");
        }
        Self::new(param, message)
    }
}

/// A boolean connection parameter: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
#[cfg(feature = "sqlite")]
fn param_bool(key: &str, value: &str) -> Result<bool, ParamError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ParamError::new(key, format!("`{key}`: expected true or false"))),
    }
}

/// The supported name closest to `name`, if close enough to be a likely typo (the core's rule
/// for type names).
fn closest(name: &str, supported: &[&'static str]) -> Option<&'static str> {
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

    use connections_core::SecretsStore;

    /// Parameters made of options only (no secrets section).
    fn options(toml: &str) -> ConnectParams {
        ConnectParams::from_parts("db", "sql", None, toml.parse().unwrap())
    }

    /// Parameters made of a `[connections.db]` section (from a real secrets file) and options.
    /// The returned directory keeps the file alive.
    fn with_section(section: &str, opts: &str) -> (tempfile::TempDir, ConnectParams) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, format!("[connections.db]\n{section}\n")).unwrap();
        let secrets = SecretsStore::builder().files([&path]).build().load().unwrap();
        (dir, ConnectParams::from_parts("db", "sql", secrets.connection("db"), opts.parse().unwrap()))
    }

    /// The configuration as read, whatever backends are compiled in.
    fn config(params: &ConnectParams) -> SqlConfig {
        SqlConfig::read(params).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error reading the configuration, whatever backends are compiled in.
    fn error(params: &ConnectParams) -> Error {
        match SqlConfig::read(params) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error,
        }
    }

    /// The configuration, checked against its backend (which must be compiled in).
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    fn checked(params: &ConnectParams) -> SqlConfig {
        SqlConfig::from_params(params).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error checking the configuration against its backend.
    fn checked_error(params: &ConnectParams) -> Error {
        match SqlConfig::from_params(params) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error,
        }
    }

    /// The key of a configuration error.
    fn key_of(error: &Error) -> &str {
        match error {
            Error::Config { key, .. } => key,
            other => panic!("not a configuration error: {other}"),
        }
    }

    /// The message of a configuration error.
    fn message_of(error: &Error) -> &str {
        match error {
            Error::Config { message, .. } => message,
            other => panic!("not a configuration error: {other}"),
        }
    }

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
             pool_timeout, pool_recycle, pool_pre_ping, echo, connect_args (did you mean `pool_size`?)"
        );
        assert_eq!("URL".parse::<SqlKey>().unwrap_err().closest(), Some("url"));
        assert_eq!("user".parse::<SqlKey>().unwrap_err().closest(), None);
        assert_eq!(edit_distance("passwrod", "password"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn empty_configuration_is_streamlits_error() {
        let err = error(&options(""));
        assert_eq!(key_of(&err), "");
        assert_eq!(
            err.to_string(),
            "connection \"db\": at the root: missing SQL DB connection configuration: did you forget to set this in \
             `secrets.toml` ([connections.db]) or as options with `connection(\"db\").option(...)`?"
        );
        // Options that are not connection parameters do not count (as Streamlit's `echo=False`).
        for opts in ["autocommit = true", "pool_size = 3", "create_engine_kwargs = { echo = true }"] {
            let err = error(&options(opts));
            assert!(message_of(&err).starts_with("missing SQL DB connection configuration"), "{opts}: {err}");
        }
        // An empty section is still empty.
        let (_dir, params) = with_section("", "");
        assert!(message_of(&error(&params)).starts_with("missing SQL DB connection configuration"));
        // A section holding only `type` is not empty: it lacks the required parameters.
        let (_dir, params) = with_section("type = 'sql'", "");
        let err = error(&params);
        assert_eq!(key_of(&err), "");
        assert!(message_of(&err).starts_with("the `dialect`, `username` and `host` parameters are required"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = error(&options("url = 'sqlite://'\nhots = 'h'\nextra = 1\n"));
        assert_eq!(key_of(&err), "hots");
        assert_eq!(
            err.to_string(),
            "connection \"db\": `hots` (from the options passed to connection()): unknown key for a connection of \
             type `sql`; supported keys: url, dialect, driver, username, password, host, port, database, query, \
             create_engine_kwargs, autocommit (did you mean `host`?) (also unknown: `extra`)"
        );
        // `type` is accepted and ignored.
        let cfg = config(&options("type = 'sql'\nurl = 'sqlite://'"));
        assert_eq!(cfg.backend, Backend::Sqlite);
        // Unknown keys in the section are errors too, naming the file.
        let (dir, params) = with_section("url = 'sqlite://'\nuser = 'me'", "");
        let err = error(&params);
        assert_eq!(key_of(&err), "user");
        assert!(err.to_string().contains(&dir.path().join("secrets.toml").display().to_string()), "{err}");
    }

    #[test]
    fn engine_options_at_the_top_level_only_from_the_options() {
        // As `st.connection("db", pool_size=3)`: accepted, and beats the section's table.
        let (_dir, params) = with_section(
            "url = 'sqlite:///x.db'\ncreate_engine_kwargs = { pool_size = 1, max_overflow = 0 }",
            "pool_size = 3",
        );
        assert_eq!(config(&params).engine.max_connections, 3);
        // In the section, a top-level engine option is an error that says where it belongs.
        let (_dir, params) = with_section("url = 'sqlite:///x.db'\npool_pre_ping = true", "");
        let err = error(&params);
        assert_eq!(key_of(&err), "pool_pre_ping");
        assert!(
            message_of(&err).ends_with(
                "engine options go in the section's `create_engine_kwargs` table \
                 ([connections.db.create_engine_kwargs])"
            ),
            "{err}"
        );
    }

    #[test]
    fn options_beat_secrets_per_key() {
        let (_dir, params) = with_section(
            "dialect = 'postgresql'\nusername = 'u'\nhost = 'secret-host'\ndatabase = 'a'",
            "host = 'option-host'\nport = 5433",
        );
        let cfg = config(&params);
        assert_eq!(cfg.url.host.as_deref(), Some("option-host"));
        assert_eq!(cfg.url.port, Some(5433));
        assert_eq!(cfg.url.database.as_deref(), Some("a"));
    }

    #[test]
    fn url_wins_from_any_source() {
        // A secrets `url` wins over parts given as options.
        let (_dir, params) =
            with_section("url = 'postgresql://u@from-url/db'", "host = 'from-option'\ndialect = 'mysql'");
        let cfg = config(&params);
        assert_eq!((cfg.backend, cfg.url.host.as_deref()), (Backend::Postgres, Some("from-url")));
        // An option `url` wins over a secrets `url` and over secrets parts.
        let (_dir, params) = with_section(
            "url = 'postgresql://u@a/db'\ndialect = 'mysql'\nport = 'not a port'",
            "url = 'mysql://u@b/db'",
        );
        let cfg = config(&params);
        assert_eq!((cfg.backend, cfg.url.host.as_deref()), (Backend::MySql, Some("b")));
        // Parts are ignored entirely: not even type-checked.
        let cfg = config(&options("url = 'sqlite://'\nport = [1]\nquery = 3"));
        assert_eq!(cfg.url, SqlUrl::new("sqlite", None));
    }

    #[test]
    fn missing_required_parameters_are_reported_together_in_order() {
        let err = error(&options("port = 5432"));
        assert_eq!(key_of(&err), "");
        assert_eq!(
            message_of(&err),
            "the `dialect`, `username` and `host` parameters are required: set these SQL DB connection parameters in \
             `secrets.toml` or pass them with `connection(...).option(...)`"
        );
        let err = error(&options("host = 'h'\ndatabase = 'd'"));
        assert!(message_of(&err).starts_with("the `dialect` and `username` parameters are required"), "{err}");
        let err = error(&options("dialect = 'postgresql'\nusername = 'u'"));
        assert_eq!(key_of(&err), "host");
        assert_eq!(
            err.to_string(),
            "connection \"db\": `host`: the `host` parameter is required: set this SQL DB connection parameter in \
             `secrets.toml` or pass it with `connection(...).option(...)`"
        );
    }

    #[test]
    fn sqlite_from_parts_with_empty_username_and_host() {
        let cfg = config(&options("dialect = 'sqlite'\nusername = ''\nhost = ''\ndatabase = 'pets.db'"));
        assert_eq!(cfg.backend, Backend::Sqlite);
        assert_eq!(cfg.url.render_redacted(), "sqlite://@/pets.db");
        assert!(!is_sqlite_memory(&cfg.url));
        let cfg = config(&options("dialect = 'sqlite'\nusername = ''\nhost = ''"));
        assert!(is_sqlite_memory(&cfg.url));
    }

    #[test]
    fn parts_render_like_streamlit() {
        let cfg = config(&options(
            "dialect = 'mysql'\ndriver = 'pymysql'\nusername = 'user'\npassword = 'p@ss:w/rd'\n\
             host = 'db.example.com'\nport = 3306\ndatabase = 'pets'\n\
             query = { ssl_mode = 'REQUIRED', charset = 'utf8mb4' }",
        ));
        assert_eq!(cfg.backend, Backend::MySql);
        assert_eq!(cfg.url.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(
            cfg.url.render_redacted(),
            "mysql+pymysql://user:***@db.example.com:3306/pets?charset=utf8mb4&ssl_mode=REQUIRED"
        );
        // A dialect may carry its driver.
        let cfg = config(&options("dialect = 'postgresql+psycopg2'\nusername = 'u'\nhost = 'h'"));
        assert_eq!((cfg.url.dialect.as_str(), cfg.url.driver.as_deref()), ("postgresql", Some("psycopg2")));
        // An integer password is taken as its text.
        let cfg = config(&options("dialect = 'postgresql'\nusername = 'u'\nhost = 'h'\npassword = 1234"));
        assert_eq!(cfg.url.password.as_deref(), Some("1234"));
    }

    #[test]
    fn port_is_coerced_like_python_int() {
        let base = "dialect = 'postgresql'\nusername = 'u'\nhost = 'h'\n";
        for (port, expected) in [("5433", 5433), ("5432.9", 5432), ("'5433'", 5433), ("' 5_433 '", 5433), ("0", 0)] {
            let cfg = config(&options(&format!("{base}port = {port}")));
            assert_eq!(cfg.url.port, Some(expected), "{port}");
        }
        for port in ["'secret-abc'", "70000", "-1", "nan", "inf", "1e10", "'5432.0'"] {
            let err = error(&options(&format!("{base}port = {port}")));
            assert_eq!(key_of(&err), "port", "{port}");
            assert_eq!(
                message_of(&err),
                "expected a port number between 0 and 65535 (an integer, a float or a string holding an integer)"
            );
            assert!(!err.to_string().contains("secret"));
        }
        let err = error(&options(&format!("{base}port = true")));
        assert_eq!(message_of(&err), "expected an integer, a float or a string holding an integer, found a boolean");
    }

    #[test]
    fn part_types_are_checked_without_showing_values() {
        let base = "dialect = 'postgresql'\nusername = 'u'\nhost = 'h'\n";
        let cases = [
            ("username = 12", "username", "expected a string, found an integer"),
            ("host = ['secret-h']", "host", "expected a string, found an array"),
            ("password = { v = 'secret-pw' }", "password", "expected a string, found a table"),
            ("password = 1.5", "password", "expected a string, found a float"),
            ("database = true", "database", "expected a string, found a boolean"),
            ("driver = 1979-05-27", "driver", "expected a string, found a datetime"),
            ("query = 'secret-q'", "query", "expected a table of query parameters, found a string"),
            (
                "query = { a = { b = 'secret-q' } }",
                "query.a",
                "expected a string, a number or a boolean (or an array of them), found a table",
            ),
            ("url = 5", "url", "expected a string, found an integer"),
            ("autocommit = 'yes'", "autocommit", "expected a boolean, found a string"),
        ];
        for (line, key, message) in cases {
            // Later keys replace the base's, so each case is checked on its own.
            let mut table: Table = base.parse().unwrap();
            table.extend(line.parse::<Table>().unwrap());
            let err = error(&ConnectParams::from_parts("db", "sql", None, table));
            assert_eq!((key_of(&err), message_of(&err)), (key, message), "{line}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn query_table_values_become_text() {
        let cfg = config(&options(
            "dialect = 'postgresql'\nusername = 'u'\nhost = 'h'\n\
             query = { application_name = 'app', extra_float_digits = 2, sslmode = 'require', \
             options = ['-c a=1', '-c b=2'] }",
        ));
        assert_eq!(
            cfg.url.query,
            vec![
                ("application_name".to_owned(), "app".to_owned()),
                ("extra_float_digits".to_owned(), "2".to_owned()),
                ("sslmode".to_owned(), "require".to_owned()),
                ("options".to_owned(), "-c a=1".to_owned()),
                ("options".to_owned(), "-c b=2".to_owned()),
            ]
        );
        let cfg =
            config(&options("dialect = 'sqlite'\nusername = ''\nhost = ''\nquery = { uri = true, timeout = 2.5 }"));
        assert_eq!(
            cfg.url.query,
            vec![("uri".to_owned(), "true".to_owned()), ("timeout".to_owned(), "2.5".to_owned())]
        );
    }

    #[test]
    fn unsupported_dialects_name_the_key() {
        let err = error(&options("url = 'mssql+pyodbc://u:secret-pw@h/db'"));
        assert_eq!(key_of(&err), "url");
        assert_eq!(
            message_of(&err),
            "unsupported SQL dialect `mssql`; supported dialects: sqlite, postgresql, mysql, mariadb"
        );
        assert!(!err.to_string().contains("secret"));
        let err = error(&options("dialect = 'oracle'\nusername = 'u'\nhost = 'h'\npassword = 'secret-pw'"));
        assert_eq!(key_of(&err), "dialect");
        assert!(message_of(&err).starts_with("unsupported SQL dialect `oracle`"));
        let err = error(&options("url = 'not a url with secret-pw'"));
        assert_eq!(key_of(&err), "url");
        assert!(message_of(&err).starts_with("cannot parse the URL"));
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn engine_defaults_are_sqlalchemys() {
        let cfg = config(&options("url = 'sqlite:///x.db'"));
        assert_eq!(cfg.engine, EngineOptions::default());
        assert_eq!(cfg.engine.max_connections, 15);
        assert_eq!(cfg.engine.min_connections, 0);
        assert_eq!(cfg.engine.acquire_timeout, Duration::from_secs(30));
        assert_eq!(cfg.engine.max_lifetime, None);
        assert!(!cfg.engine.test_before_acquire && !cfg.engine.echo && !cfg.autocommit);
    }

    #[test]
    fn engine_kwargs_map_to_the_pool() {
        let cfg = config(&options(
            "url = 'sqlite:///x.db'\n\
             create_engine_kwargs = { pool_size = 2, max_overflow = 3, pool_timeout = 1.5, pool_recycle = 3600, \
             pool_pre_ping = true, echo = true }",
        ));
        assert_eq!(cfg.engine.max_connections, 5);
        assert_eq!(cfg.engine.acquire_timeout, Duration::from_millis(1500));
        assert_eq!(cfg.engine.max_lifetime, Some(Duration::from_secs(3600)));
        assert!(cfg.engine.test_before_acquire && cfg.engine.echo);
        let with =
            |kwargs: &str| config(&options(&format!("url = 'sqlite:///x.db'\ncreate_engine_kwargs = {{ {kwargs} }}")));
        assert_eq!(with("max_overflow = -1").engine.max_connections, UNBOUNDED_CONNECTIONS);
        assert_eq!(with("pool_size = 0").engine.max_connections, 10);
        assert_eq!(with("pool_size = 0, max_overflow = 0").engine.max_connections, 1);
        assert_eq!(with("pool_size = 10000000000").engine.max_connections, UNBOUNDED_CONNECTIONS);
        assert_eq!(with("pool_recycle = -1").engine.max_lifetime, None);
        assert_eq!(with("pool_recycle = -0.5").engine.max_lifetime, None);
        assert_eq!(with("pool_recycle = 0").engine.max_lifetime, Some(MIN_RECYCLE));
        assert_eq!(with("pool_timeout = 0").engine.acquire_timeout, Duration::ZERO);
        assert!(with("echo = 'debug'").engine.echo);
        assert!(!with("echo = false").engine.echo);
    }

    #[test]
    fn engine_kwargs_errors_name_the_key() {
        let cases = [
            ("pool_size = -1", "create_engine_kwargs.pool_size", "expected an integer, 0 or more, found an integer"),
            ("pool_size = '5'", "create_engine_kwargs.pool_size", "expected an integer, 0 or more, found a string"),
            (
                "max_overflow = -2",
                "create_engine_kwargs.max_overflow",
                "expected an integer, -1 (no limit) or more, found an integer",
            ),
            (
                "pool_timeout = -1",
                "create_engine_kwargs.pool_timeout",
                "expected a number of seconds, 0 or more, found an integer",
            ),
            (
                "pool_timeout = 'x'",
                "create_engine_kwargs.pool_timeout",
                "expected a number of seconds, 0 or more, found a string",
            ),
            (
                "pool_recycle = nan",
                "create_engine_kwargs.pool_recycle",
                "expected a number of seconds (-1: never), found a float",
            ),
            (
                "pool_recycle = 1e300",
                "create_engine_kwargs.pool_recycle",
                "expected a number of seconds (-1: never), found a float",
            ),
            ("pool_pre_ping = 1", "create_engine_kwargs.pool_pre_ping", "expected a boolean, found an integer"),
            ("echo = 'info'", "create_engine_kwargs.echo", "expected a boolean or \"debug\", found a string"),
            ("connect_args = 'secret'", "create_engine_kwargs.connect_args", "expected a table, found a string"),
            (
                "connect_args = { ssl = { ca = 'secret' } }",
                "create_engine_kwargs.connect_args.ssl",
                "expected a string, a number or a boolean (or an array of them), found a table",
            ),
        ];
        for (kwargs, key, message) in cases {
            let err = error(&options(&format!("url = 'sqlite:///x.db'\ncreate_engine_kwargs = {{ {kwargs} }}")));
            assert_eq!((key_of(&err), message_of(&err)), (key, message), "{kwargs}");
            assert!(!err.to_string().contains("secret"));
        }
        let err =
            error(&options("url = 'sqlite:///x.db'\ncreate_engine_kwargs = { poolclass = 'NullPool', future = true }"));
        assert_eq!(key_of(&err), "create_engine_kwargs.poolclass");
        assert_eq!(
            message_of(&err),
            "unknown key in `create_engine_kwargs`; supported keys: pool_size, max_overflow, pool_timeout, \
             pool_recycle, pool_pre_ping, echo, connect_args (also unknown: `future`)"
        );
        let err = error(&options("url = 'sqlite:///x.db'\ncreate_engine_kwargs = 5"));
        assert_eq!((key_of(&err), message_of(&err)), ("create_engine_kwargs", "expected a table, found an integer"));
        // A top-level engine option from the options is named as it was given.
        let err = error(&options("url = 'sqlite:///x.db'\npool_size = 'x'"));
        assert_eq!(key_of(&err), "pool_size");
    }

    #[test]
    fn connect_args_join_the_query_and_override_it() {
        let cfg = config(&options(
            "url = 'postgresql://u@h/db?sslmode=disable&application_name=a'\n\
             create_engine_kwargs = { connect_args = { sslmode = 'require', options = '-c statement_timeout=5000' } }",
        ));
        assert_eq!(
            cfg.url.query,
            vec![
                ("application_name".to_owned(), "a".to_owned()),
                ("sslmode".to_owned(), "require".to_owned()),
                ("options".to_owned(), "-c statement_timeout=5000".to_owned()),
            ]
        );
        // As a top-level option, `connect_args` replaces the section's.
        let (_dir, params) = with_section(
            "url = 'mysql://u@h/db'\ncreate_engine_kwargs = { connect_args = { charset = 'latin1' } }",
            "connect_args = { collation = 'utf8mb4_bin' }",
        );
        assert_eq!(config(&params).url.query, vec![("collation".to_owned(), "utf8mb4_bin".to_owned())]);
    }

    #[test]
    fn autocommit_is_read_from_options_and_secrets() {
        assert!(config(&options("url = 'sqlite://'\nautocommit = true")).autocommit);
        let (_dir, params) = with_section("url = 'sqlite://'\nautocommit = true", "");
        assert!(config(&params).autocommit);
        let (_dir, params) = with_section("url = 'sqlite://'\nautocommit = true", "autocommit = false");
        assert!(!config(&params).autocommit);
    }

    #[test]
    fn no_secret_in_debug_or_errors() {
        let cfg = config(&options("url = 'postgresql://user:secret-pw@h/db?password=secret-q&sslmode=require'"));
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("postgresql://user:***@h/db?password=***&sslmode=require"), "{shown}");
        let cfg = config(&options("dialect = 'mysql'\nusername = 'u'\nhost = 'h'\npassword = 'secret-pw'"));
        let shown = format!("{cfg:?} {:?}", cfg.url);
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("name: \"db\"") && shown.contains("mysql://u:***@h"), "{shown}");
        // Errors about other keys never show the password either.
        let err = error(&options("dialect = 'mysql'\nusername = 'u'\nhost = 'h'\npassword = 'secret-pw'\nport = 'x'"));
        assert!(!format!("{err} {err:?}").contains("secret"));
    }

    #[test]
    fn feature_gates_name_the_feature() {
        for (url, backend) in
            [("sqlite://", Backend::Sqlite), ("postgresql://h", Backend::Postgres), ("mariadb://h", Backend::MySql)]
        {
            let result = SqlConfig::from_params(&options(&format!("url = '{url}'")));
            if backend.is_enabled() {
                assert_eq!(result.unwrap().backend, backend);
            } else {
                let err = result.unwrap_err();
                assert_eq!(key_of(&err), "url");
                let feature = backend.feature();
                assert!(
                    message_of(&err).ends_with(&format!("enable the \"{feature}\" feature of the connections crate")),
                    "{err}"
                );
            }
        }
    }

    #[test]
    #[cfg(not(feature = "postgres"))]
    fn postgres_without_its_feature() {
        let err = checked_error(&options("dialect = 'postgresql'\nusername = 'u'\nhost = 'h'"));
        assert_eq!(key_of(&err), "dialect");
        assert_eq!(
            message_of(&err),
            "the `postgresql` dialect needs PostgreSQL support, which this build lacks: enable the \"postgres\" \
             feature of the connections crate"
        );
    }

    #[test]
    fn pool_options_follow_the_engine() {
        #[cfg(feature = "sqlite")]
        type Db = sqlx::Sqlite;
        #[cfg(all(not(feature = "sqlite"), feature = "postgres"))]
        type Db = sqlx::Postgres;
        #[cfg(all(not(feature = "sqlite"), not(feature = "postgres"), feature = "mysql"))]
        type Db = sqlx::MySql;
        let engine = EngineOptions {
            max_connections: 7,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(3),
            max_lifetime: Some(Duration::from_secs(60)),
            idle_timeout: None,
            test_before_acquire: true,
            echo: false,
        };
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        {
            let pool = pool_options::<Db>(&engine);
            assert_eq!(pool.get_max_connections(), 7);
            assert_eq!(pool.get_min_connections(), 1);
            assert_eq!(pool.get_acquire_timeout(), Duration::from_secs(3));
            assert_eq!(pool.get_max_lifetime(), Some(Duration::from_secs(60)));
            assert_eq!(pool.get_idle_timeout(), None);
            assert!(pool.get_test_before_acquire());
        }
        assert_eq!(engine.clone(), engine);
    }

    #[cfg(feature = "sqlite")]
    mod sqlite {
        use super::*;

        #[test]
        fn in_memory_engine_keeps_one_connection_and_reaps_none() {
            for url in ["sqlite://", "sqlite:///:memory:", "sqlite:///", "sqlite:///named?mode=memory"] {
                let cfg = checked(&options(&format!(
                    "url = '{url}'\ncreate_engine_kwargs = {{ pool_recycle = 60, pool_size = 2, max_overflow = 0 }}"
                )));
                assert_eq!(cfg.engine.min_connections, 1, "{url}");
                assert_eq!((cfg.engine.idle_timeout, cfg.engine.max_lifetime), (None, None), "{url}");
                assert_eq!(cfg.engine.max_connections, 2, "{url}");
            }
        }

        #[test]
        fn each_in_memory_pool_gets_its_own_database() {
            let cfg = checked(&options("url = 'sqlite://'"));
            let a = sqlite_options(&cfg).unwrap();
            let b = sqlite_options(&cfg).unwrap();
            let name = a.get_filename().to_string_lossy().into_owned();
            assert!(name.starts_with("file:connections-mem-"), "{name}");
            assert_ne!(a.get_filename(), b.get_filename());
            let named = checked(&options("url = 'sqlite:///shared-name?mode=memory'"));
            assert_eq!(sqlite_options(&named).unwrap().get_filename(), std::path::Path::new("shared-name"));
        }

        #[tokio::test]
        async fn in_memory_data_is_shared_by_the_pool_and_dropped_with_it() {
            let cfg = checked(&options("url = 'sqlite://'"));
            let pool =
                pool_options::<sqlx::Sqlite>(&cfg.engine).connect_with(sqlite_options(&cfg).unwrap()).await.unwrap();
            let mut a = pool.acquire().await.unwrap();
            let mut b = pool.acquire().await.unwrap();
            sqlx::query("create table pets (name text)").execute(&mut *a).await.unwrap();
            sqlx::query("insert into pets values ('Tom')").execute(&mut *a).await.unwrap();
            let name: String = sqlx::query_scalar("select name from pets").fetch_one(&mut *b).await.unwrap();
            assert_eq!(name, "Tom");
            drop((a, b));
            let count: i64 = sqlx::query_scalar("select count(*) from pets").fetch_one(&pool).await.unwrap();
            assert_eq!(count, 1);
            // A new pool from the same configuration (a reset) starts empty.
            let other =
                pool_options::<sqlx::Sqlite>(&cfg.engine).connect_with(sqlite_options(&cfg).unwrap()).await.unwrap();
            assert!(sqlx::query("select * from pets").fetch_all(&other).await.is_err());
            pool.close().await;
            other.close().await;
        }

        #[tokio::test]
        async fn files_are_created_and_foreign_keys_are_off() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("pets.db");
            let cfg = checked(&options(&format!("url = 'sqlite:///{}'", path.display())));
            assert_eq!(cfg.url.database.as_deref(), Some(path.to_str().unwrap()));
            let sqlite = sqlite_options(&cfg).unwrap();
            assert_eq!(sqlite.get_filename(), path);
            let pool = pool_options::<sqlx::Sqlite>(&cfg.engine).connect_with(sqlite).await.unwrap();
            let on: i64 = sqlx::query_scalar("pragma foreign_keys").fetch_one(&pool).await.unwrap();
            assert_eq!(on, 0);
            pool.close().await;
            assert!(path.exists());
            // `mode=ro` does not create a missing file.
            let missing = dir.path().join("missing.db");
            let cfg = checked(&options(&format!("url = 'sqlite:///{}?mode=ro'", missing.display())));
            let pool = pool_options::<sqlx::Sqlite>(&cfg.engine).connect_with(sqlite_options(&cfg).unwrap()).await;
            assert!(pool.is_err());
            assert!(!missing.exists());
            // `foreign_keys=true` turns enforcement on.
            let cfg = checked(&options(&format!("url = 'sqlite:///{}?foreign_keys=true'", path.display())));
            let pool =
                pool_options::<sqlx::Sqlite>(&cfg.engine).connect_with(sqlite_options(&cfg).unwrap()).await.unwrap();
            let on: i64 = sqlx::query_scalar("pragma foreign_keys").fetch_one(&pool).await.unwrap();
            assert_eq!(on, 1);
            pool.close().await;
        }

        #[test]
        fn relative_paths_resolve_against_the_working_directory() {
            let cfg = checked(&options("url = 'sqlite:///relative/pets.db'\ncreate_engine_kwargs = { echo = true }"));
            let expected = std::env::current_dir().unwrap().join("relative/pets.db");
            assert_eq!(sqlite_options(&cfg).unwrap().get_filename(), expected);
            let cfg = checked(&options("url = 'sqlite:///file:pets.db?uri=true&mode=ro'"));
            assert_eq!(sqlite_options(&cfg).unwrap().get_filename(), std::path::Path::new("file:pets.db"));
        }

        #[test]
        fn sqlite_parameters_are_checked() {
            let ok = "url = 'sqlite:///x.db?timeout=2.5&cache=shared&immutable=1&check_same_thread=false&vfs=unix'";
            checked(&options(ok));
            let cases = [
                (
                    "sqlite:///x.db?journal=wal",
                    "url",
                    "unknown SQLite connection parameter `journal`; supported parameters: mode, cache, \
                     immutable, vfs, timeout, foreign_keys, uri, check_same_thread",
                ),
                ("sqlite:///x.db?mode=rwx", "url", "`mode`: expected one of ro, rw, rwc, memory"),
                ("sqlite:///x.db?timeout=soon", "url", "`timeout`: expected a number of seconds"),
                ("sqlite:///x.db?uri=maybe", "url", "`uri`: expected true or false"),
                (
                    "sqlite://?cache=private",
                    "url",
                    "`cache`: an in-memory database must use the shared cache, so that every pooled \
                     connection sees the same data",
                ),
            ];
            for (url, key, message) in cases {
                let err = checked_error(&options(&format!("url = '{url}'")));
                assert_eq!((key_of(&err), message_of(&err)), (key, message), "{url}");
            }
            let err = checked_error(&options("url = 'sqlite:///x.db?mdoe=ro'"));
            assert!(message_of(&err).ends_with("(did you mean `mode`?)"), "{err}");
            // From parts, the key is the query parameter's.
            let err =
                checked_error(&options("dialect = 'sqlite'\nusername = ''\nhost = ''\nquery = { journal = 'wal' }"));
            assert_eq!(key_of(&err), "query.journal");
            // From connect_args, the key says so.
            let err = checked_error(&options(
                "url = 'sqlite:///x.db'\ncreate_engine_kwargs = { connect_args = { journal = 'wal' } }",
            ));
            assert_eq!(key_of(&err), "create_engine_kwargs.connect_args.journal");
            let err = checked_error(&options("url = 'sqlite:///x.db'\nconnect_args = { journal = 'wal' }"));
            assert_eq!(key_of(&err), "connect_args.journal");
        }
    }

    #[cfg(feature = "postgres")]
    mod postgres {
        use super::*;
        use sqlx::postgres::PgSslMode;

        #[test]
        fn parts_and_parameters_reach_the_options() {
            let cfg = checked(&options(
                "url = 'postgresql+psycopg2://scott:tiger@db.example.com:5433/pets?sslmode=verify-full\
                 &application_name=app&options=-c%20search_path%3Dpets&extra_float_digits=3&client_encoding=utf8'",
            ));
            let pg = postgres_options(&cfg).unwrap();
            assert_eq!(pg.get_host(), "db.example.com");
            assert_eq!(pg.get_port(), 5433);
            assert_eq!(pg.get_username(), "scott");
            assert_eq!(pg.get_database(), Some("pets"));
            assert!(matches!(pg.get_ssl_mode(), PgSslMode::VerifyFull));
            assert_eq!(pg.get_application_name(), Some("app"));
            assert_eq!(pg.get_options(), Some("-c search_path=pets"));
        }

        #[test]
        fn odd_hosts_and_names_survive() {
            let cfg = checked(&options(
                "dialect = 'postgresql'\nusername = 'we@ird:user'\nhost = '/var/run/postgresql'\n\
                 database = 'my db/x'\npassword = 'p@ss:w/rd&x=y'\nquery = { 'options[geqo]' = 'off' }",
            ));
            let pg = postgres_options(&cfg).unwrap();
            assert_eq!(
                pg.get_socket().map(|p| p.to_string_lossy().into_owned()),
                Some("/var/run/postgresql".to_owned())
            );
            assert_eq!(pg.get_username(), "we@ird:user");
            assert_eq!(pg.get_database(), Some("my db/x"));
            assert_eq!(pg.get_options(), Some("-c geqo=off"));
            // Nothing but the dialect: everything from the environment, as libpq.
            postgres_options(&checked(&options("url = 'postgresql://'"))).unwrap();
            let cfg = checked(&options("url = 'postgresql://u@[::1]:5433/db'\ncreate_engine_kwargs = { echo = true }"));
            assert_eq!(postgres_options(&cfg).unwrap().get_host(), "::1");
            // Query parameters override the parts, as libpq does.
            let cfg = checked(&options("url = 'postgresql://u@a/db?host=b&port=6000&dbname=other'"));
            let pg = postgres_options(&cfg).unwrap();
            assert_eq!((pg.get_host(), pg.get_port(), pg.get_database()), ("b", 6000, Some("other")));
        }

        #[test]
        fn postgres_parameters_are_checked_without_values() {
            let cases = [
                ("connect_timeout=10", "unknown PostgreSQL connection parameter `connect_timeout`"),
                (
                    "sslmode=secret-mode",
                    "`sslmode`: expected one of disable, allow, prefer, require, verify-ca, verify-full",
                ),
                ("hostaddr=secret-host", "`hostaddr`: expected an IP address"),
                ("port=secret", "`port`: expected an integer between 0 and 65535"),
                ("client_encoding=latin1", "`client_encoding`: only UTF8 is supported"),
                ("extra_float_digits=many", "`extra_float_digits`: expected an integer"),
            ];
            for (query, start) in cases {
                let err = checked_error(&options(&format!("url = 'postgresql://u:secret-pw@h/db?{query}'")));
                assert_eq!(key_of(&err), "url", "{query}");
                assert!(message_of(&err).starts_with(start), "{query}: {err}");
                assert!(!err.to_string().contains("secret"), "{err}");
            }
            let err = checked_error(&options("url = 'postgresql://h/db?sslmdoe=require'"));
            assert!(message_of(&err).ends_with("(did you mean `sslmode`?)"), "{err}");
        }
    }

    #[cfg(feature = "mysql")]
    mod mysql {
        use super::*;

        #[test]
        fn parts_and_parameters_reach_the_options() {
            let cfg = checked(&options(
                "dialect = 'mysql'\ndriver = 'pymysql'\nusername = 'user'\npassword = 'p@ss:w/rd'\n\
                 host = 'db.example.com'\nport = 3307\ndatabase = 'pets'\n\
                 query = { ssl_mode = 'REQUIRED', charset = 'utf8mb4', collation = 'utf8mb4_bin' }",
            ));
            let my = mysql_options(&cfg).unwrap();
            assert_eq!(my.get_host(), "db.example.com");
            assert_eq!(my.get_port(), 3307);
            assert_eq!(my.get_username(), "user");
            assert_eq!(my.get_database(), Some("pets"));
            assert!(matches!(my.get_ssl_mode(), MySqlSslMode::Required));
            assert_eq!(my.get_charset(), "utf8mb4");
            assert_eq!(my.get_collation(), Some("utf8mb4_bin"));
            let cfg =
                checked(&options("url = 'mariadb://u@h/db?unix_socket=/tmp/mysql.sock&ssl-mode=verify-identity'"));
            let my = mysql_options(&cfg).unwrap();
            assert_eq!(my.get_socket().map(|p| p.to_string_lossy().into_owned()), Some("/tmp/mysql.sock".to_owned()));
            assert!(matches!(my.get_ssl_mode(), MySqlSslMode::VerifyIdentity));
            // Empty parts count as unset.
            let cfg = checked(&options("dialect = 'mysql'\nusername = ''\nhost = ''"));
            let my = mysql_options(&cfg).unwrap();
            assert_eq!((my.get_host(), my.get_username()), ("localhost", "root"));
        }

        #[test]
        fn mysql_parameters_are_checked_without_values() {
            let err = checked_error(&options("url = 'mysql://u:secret-pw@h/db?ssl_mode=secret-mode'"));
            assert_eq!(
                message_of(&err),
                "`ssl_mode`: expected one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
            );
            assert!(!err.to_string().contains("secret"));
            let err = checked_error(&options("url = 'mysql://u@h/db?local_infile=1'"));
            assert!(message_of(&err).starts_with("unknown MySQL connection parameter `local_infile`"), "{err}");
            let err =
                checked_error(&options("dialect = 'mysql'\nusername = 'u'\nhost = 'h'\nquery = { charsett = 'x' }"));
            assert_eq!(key_of(&err), "query.charsett");
            assert!(message_of(&err).ends_with("(did you mean `charset`?)"), "{err}");
        }
    }
}
