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

use std::fmt;
use std::str::FromStr;

use connections_core::toml::{Table, Value};
use connections_core::{ConfigOrigin, ConfigProblem, ConnectParams, Result};

use crate::url::{Backend, SqlUrl, parse_python_int, split_drivername};

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod connect;
mod engine;
mod keys;

#[cfg(all(test, feature = "mysql"))]
pub(crate) use connect::build_mysql;
#[cfg(feature = "postgres")]
pub(crate) use connect::postgres_options;
#[cfg(feature = "sqlite")]
pub(crate) use connect::sqlite_options;
#[cfg(feature = "mysql")]
pub(crate) use connect::{MySqlParam, mysql_options};
pub(crate) use engine::EngineOptions;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) use engine::pool_options;
use engine::read_engine;
pub use keys::{EngineKwarg, SqlKey};

/// The message for an empty configuration, Streamlit's adapted: `{name}` is the connection name.
const MISSING_CONFIGURATION: &str = "missing SQL DB connection configuration: did you forget to set this in \
                                     `secrets.toml` ([connections.{name}]) or as options with \
                                     `connection(\"{name}\").option(...)`?";

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
        #[allow(unused_mut)] // without a server backend there is no connect timeout to read
        let mut config = Self::read(params)?;
        config.check_backend()?;
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        if config.backend != Backend::Sqlite {
            config.engine.connect_timeout = config.connect_timeout()?;
        }
        Ok(config)
    }

    /// Reads the configuration and checks everything that does not depend on the backends
    /// compiled in.
    fn read(params: &ConnectParams) -> Result<Self> {
        check_keys(params)?;
        if !has_configuration(params) {
            let hint = MISSING_CONFIGURATION.replace("{name}", params.name());
            return Err(params.error("", ConfigProblem::NothingConfigured { hint }));
        }
        let (mut url, url_key) = match params.get(SqlKey::Url.as_ref()) {
            Some(value) => {
                warn_ignored_parts(params);
                let text = value.as_str().ok_or_else(|| params.expected("url", "a string", value))?;
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
            Some(other) => return Err(params.expected("autocommit", "a boolean", other)),
            None => false,
        };
        Ok(Self { backend, url, engine, autocommit, params: params.clone() })
    }

    /// Checks that the backend is compiled in, and builds its connect options once so that a bad
    /// connection parameter fails here.
    fn check_backend(&self) -> Result<()> {
        if !self.backend.is_enabled() {
            let key = if self.params.get(SqlKey::Url.as_ref()).is_some() { SqlKey::Url } else { SqlKey::Dialect };
            let problem = ConfigProblem::FeatureMissing {
                needed_by: format!("the `{}` dialect", self.url.dialect),
                what: format!("{} support", self.backend.name()),
                feature: self.backend.feature().to_owned(),
            };
            return Err(self.params.error(key.as_ref(), problem));
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
}

impl SqlConfig {
    /// The connection's name.
    pub(crate) fn name(&self) -> &str {
        self.params.name()
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
    let mut unknown: Vec<connections_core::UnknownKey> = Vec::new();
    for key in params.secrets().keys() {
        let Err(error) = SqlKey::from_str(key) else { continue };
        if EngineKwarg::from_str(key).is_ok() && params.origin(key) == Some(ConfigOrigin::Options) {
            continue;
        }
        unknown.push(error);
    }
    let Some(first) = unknown.first() else { return Ok(()) };
    let mut problem = first.problem(&unknown);
    if EngineKwarg::from_str(first.key()).is_ok()
        && let ConfigProblem::UnknownKey { hint, .. } = &mut problem
    {
        *hint = format!(
            "engine options go in the section's `create_engine_kwargs` table ([connections.{}.create_engine_kwargs])",
            params.name()
        );
    }
    Err(params.error(first.key(), problem))
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
    if !missing.is_empty() {
        let (these, key) = match missing.as_slice() {
            [only] => ("this SQL DB connection parameter", *only),
            _ => ("these SQL DB connection parameters", ""),
        };
        let it = if key.is_empty() { "them" } else { "it" };
        let hint = format!("set {these} in `secrets.toml` or pass {it} with `connection(...).option(...)`");
        let keys = missing.iter().map(|k| (*k).to_owned()).collect();
        return Err(params.error(key, ConfigProblem::MissingKeys { keys, hint }));
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
        Some(other) => return Err(params.expected("password", "a string", other)),
    };
    url.host = read_string(params, SqlKey::Host)?;
    url.port = read_port(params)?;
    url.database = read_string(params, SqlKey::Database)?;
    url.query = match params.get(SqlKey::Query.as_ref()) {
        None => Vec::new(),
        Some(Value::Table(table)) => parameter_pairs(params, "query", table)?,
        Some(other) => return Err(params.expected("query", "a table of query parameters", other)),
    };
    Ok(url)
}

/// A string key's value, if present.
fn read_string(params: &ConnectParams, key: SqlKey) -> Result<Option<String>> {
    match params.get(key.as_ref()) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(params.expected(key.as_ref(), "a string", other)),
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
        other => return Err(params.expected("port", EXPECTED, other)),
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
                params.expected(&format!("{path}.{key}"), "a string, a number or a boolean (or an array of them)", item)
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

/// Whether a SQLite URL opens an in-memory database: no file (`sqlite://`, `:memory:`) or
/// `mode=memory`.
fn is_sqlite_memory(url: &SqlUrl) -> bool {
    url.is_memory() || url.query.iter().any(|(k, v)| k == "mode" && v == "memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    use connections_core::Error;

    use connections_core::SecretsStore;

    /// Parameters made of options only (no secrets section).
    pub(super) fn options(toml: &str) -> ConnectParams {
        ConnectParams::from_parts("db", "sql", None, toml.parse().unwrap())
    }

    /// Parameters made of a `[connections.db]` section (from a real secrets file) and options.
    /// The returned directory keeps the file alive.
    pub(super) fn with_section(section: &str, opts: &str) -> (tempfile::TempDir, ConnectParams) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, format!("[connections.db]\n{section}\n")).unwrap();
        let secrets = SecretsStore::builder().files([&path]).build().load().unwrap();
        (dir, ConnectParams::from_parts("db", "sql", secrets.connection("db"), opts.parse().unwrap()))
    }

    /// The configuration as read, whatever backends are compiled in.
    pub(super) fn config(params: &ConnectParams) -> SqlConfig {
        SqlConfig::read(params).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error reading the configuration, whatever backends are compiled in.
    pub(super) fn error(params: &ConnectParams) -> Error {
        match SqlConfig::read(params) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error,
        }
    }

    /// The configuration, checked against its backend (which must be compiled in).
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub(super) fn checked(params: &ConnectParams) -> SqlConfig {
        SqlConfig::from_params(params).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error checking the configuration against its backend.
    pub(super) fn checked_error(params: &ConnectParams) -> Error {
        match SqlConfig::from_params(params) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error,
        }
    }

    /// The key of a configuration error.
    pub(super) fn key_of(error: &Error) -> &str {
        match error {
            Error::Config { key, .. } => key,
            other => panic!("not a configuration error: {other}"),
        }
    }

    /// The message of a configuration error: its problem's text.
    pub(super) fn message_of(error: &Error) -> String {
        match error {
            Error::Config { problem, .. } => problem.to_string(),
            other => panic!("not a configuration error: {other}"),
        }
    }

    /// The problem of a configuration error.
    pub(super) fn problem_of(error: &Error) -> &ConfigProblem {
        match error {
            Error::Config { problem, .. } => problem,
            other => panic!("not a configuration error: {other}"),
        }
    }

    #[test]
    fn configuration_errors_are_structured() {
        let problem = |toml: &str| problem_of(&error(&options(toml))).clone();
        assert!(matches!(problem("echo = true"), ConfigProblem::NothingConfigured { .. }));
        assert_eq!(
            problem("dialect = 'postgresql'"),
            ConfigProblem::MissingKeys {
                keys: vec!["username".into(), "host".into()],
                hint: "set these SQL DB connection parameters in `secrets.toml` or pass them with \
                       `connection(...).option(...)`"
                    .into()
            }
        );
        let ConfigProblem::UnknownKey { closest, also, supported, .. } =
            problem("url = 'sqlite://'\nhots = 1\nuser = 2")
        else {
            panic!("an unknown key")
        };
        assert_eq!((closest.as_deref(), also), (Some("host"), vec!["user".to_owned()]));
        assert!(supported.contains(&"url".to_owned()) && !supported.contains(&"type".to_owned()));
        assert_eq!(
            problem("url = 5"),
            ConfigProblem::Expected { expected: "a string".into(), found: "an integer".into() }
        );
        let ConfigProblem::UnknownKey { context, closest, .. } =
            problem("url = 'sqlite://'\ncreate_engine_kwargs = { pool_sise = 1 }")
        else {
            panic!("an unknown engine option")
        };
        assert_eq!((context.as_str(), closest.as_deref()), ("in `create_engine_kwargs`", Some("pool_size")));
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
            assert_eq!((key_of(&err), message_of(&err).as_str()), (key, message), "{line}");
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
    #[cfg(feature = "sqlite")]
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
}
