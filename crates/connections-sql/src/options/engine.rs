//! The pool settings: SQLAlchemy's engine options (`create_engine_kwargs`, and engine options
//! given at the top level of `connection()`'s options) read and translated to sqlx's pool.

use std::str::FromStr;
use std::time::Duration;

use connections_core::toml::Value;
use connections_core::{ConfigProblem, ConnectParams, Result};

#[cfg(doc)]
use super::SqlConfig;
use super::{EngineKwarg, SqlKey, parameter_pairs};

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
    /// How long a statement may run: `query_timeout` (none).
    pub(crate) query_timeout: Option<Duration>,
    /// How long opening a connection may take: the `connect_timeout` connection parameter
    /// (10 s).
    pub(crate) connect_timeout: Duration,
}

/// How long opening a connection may take when `connect_timeout` is not set.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
            query_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
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

/// Reads the engine options, `create_engine_kwargs` with the top-level engine options of
/// `connection()`'s options laid over it per key; returns them with the `connect_args` pairs.
pub(super) fn read_engine(params: &ConnectParams) -> Result<(EngineOptions, Vec<(String, String)>)> {
    let mut entries: Vec<(EngineKwarg, String, &Value)> = Vec::new();
    let table_key = SqlKey::CreateEngineKwargs.as_ref();
    if let Some(value) = params.get(table_key) {
        let Value::Table(table) = value else { return Err(params.expected(table_key, "a table", value)) };
        let mut unknown = Vec::new();
        for (key, value) in table {
            match EngineKwarg::from_str(key) {
                Ok(kwarg) => entries.push((kwarg, format!("{table_key}.{key}"), value)),
                Err(error) => unknown.push(error),
            }
        }
        if let Some(first) = unknown.first() {
            let key = format!("{table_key}.{}", first.key());
            return Err(params.error(&key, first.problem(&unknown)));
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
                    .ok_or_else(|| expected_number(params, &key, "an integer, 0 or more", value))?;
            }
            EngineKwarg::MaxOverflow => {
                max_overflow = value
                    .as_integer()
                    .filter(|n| *n >= -1)
                    .ok_or_else(|| expected_number(params, &key, "an integer, -1 (no limit) or more", value))?;
            }
            EngineKwarg::PoolTimeout => engine.acquire_timeout = positive_seconds(params, &key, value)?,
            EngineKwarg::QueryTimeout => engine.query_timeout = Some(positive_seconds(params, &key, value)?),
            EngineKwarg::PoolRecycle => {
                engine.max_lifetime = match seconds(value) {
                    Some(Seconds::Duration(recycle)) => Some(recycle.max(MIN_RECYCLE)),
                    Some(Seconds::Negative) => None,
                    None => return Err(params.expected(&key, "a number of seconds (-1: never)", value)),
                };
            }
            EngineKwarg::PoolPrePing => {
                engine.test_before_acquire =
                    value.as_bool().ok_or_else(|| params.expected(&key, "a boolean", value))?;
            }
            EngineKwarg::Echo => {
                engine.echo = match value {
                    Value::Boolean(on) => *on,
                    Value::String(text) if text == "debug" => true,
                    other => return Err(params.expected(&key, "a boolean or \"debug\"", other)),
                };
            }
            EngineKwarg::ConnectArgs => {
                let Value::Table(table) = value else { return Err(params.expected(&key, "a table", value)) };
                connect_args = parameter_pairs(params, &key, table)?;
            }
        }
    }
    engine.max_connections = max_connections(pool_size, max_overflow);
    Ok((engine, connect_args))
}

/// A number of seconds greater than zero (a zero timeout would fail every call at once).
pub(super) fn positive_seconds(params: &ConnectParams, key: &str, value: &Value) -> Result<Duration> {
    match seconds(value) {
        Some(Seconds::Duration(timeout)) if !timeout.is_zero() => Ok(timeout),
        _ => Err(expected_number(params, key, "a number of seconds greater than 0", value)),
    }
}

/// [`expected`] for an engine option, naming a wrong number (engine options are pool settings,
/// never secrets).
fn expected_number(params: &ConnectParams, key: &str, what: &str, found: &Value) -> connections_core::Error {
    match found {
        Value::Integer(_) | Value::Float(_) => {
            params.error(key, ConfigProblem::Expected { expected: what.to_owned(), found: found.to_string() })
        }
        _ => params.expected(key, what, found),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::options::tests::{config, error, key_of, message_of, options, with_section};

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
        assert_eq!(with("query_timeout = 2.5").engine.query_timeout, Some(Duration::from_millis(2500)));
        assert!(with("echo = 'debug'").engine.echo);
        assert!(!with("echo = false").engine.echo);
    }

    #[test]
    fn engine_kwargs_errors_name_the_key() {
        let cases = [
            ("pool_size = -1", "create_engine_kwargs.pool_size", "expected an integer, 0 or more, found -1"),
            ("pool_size = '5'", "create_engine_kwargs.pool_size", "expected an integer, 0 or more, found a string"),
            (
                "max_overflow = -2",
                "create_engine_kwargs.max_overflow",
                "expected an integer, -1 (no limit) or more, found -2",
            ),
            (
                "pool_timeout = -1",
                "create_engine_kwargs.pool_timeout",
                "expected a number of seconds greater than 0, found -1",
            ),
            (
                "pool_timeout = 0",
                "create_engine_kwargs.pool_timeout",
                "expected a number of seconds greater than 0, found 0",
            ),
            (
                "query_timeout = 0.0",
                "create_engine_kwargs.query_timeout",
                "expected a number of seconds greater than 0, found 0.0",
            ),
            (
                "pool_timeout = 'x'",
                "create_engine_kwargs.pool_timeout",
                "expected a number of seconds greater than 0, found a string",
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
            assert_eq!((key_of(&err), message_of(&err).as_str()), (key, message), "{kwargs}");
            assert!(!err.to_string().contains("secret"));
        }
        let err =
            error(&options("url = 'sqlite:///x.db'\ncreate_engine_kwargs = { poolclass = 'NullPool', future = true }"));
        assert_eq!(key_of(&err), "create_engine_kwargs.poolclass");
        assert_eq!(
            message_of(&err),
            "unknown key in `create_engine_kwargs`; supported keys: pool_size, max_overflow, pool_timeout, \
             pool_recycle, pool_pre_ping, echo, connect_args, query_timeout (also unknown: `future`)"
        );
        let err = error(&options("url = 'sqlite:///x.db'\ncreate_engine_kwargs = 5"));
        assert_eq!(
            (key_of(&err), message_of(&err).as_str()),
            ("create_engine_kwargs", "expected a table, found an integer")
        );
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
            query_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
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
}
