//! The sqlx connect options of each backend, built from a checked configuration's URL: its parts
//! and the connection parameters of its query.

use std::fmt::Write as _;
#[cfg(feature = "postgres")]
use std::str::FromStr;
#[cfg(feature = "sqlite")]
use std::time::Duration;

use connections_core::toml::Value;
use connections_core::{Error, Result};

use super::{EngineKwarg, SqlConfig, SqlKey};
use crate::url::{Backend, SqlUrl};

#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteConnectOptions;

#[cfg(feature = "postgres")]
use sqlx::postgres::PgConnectOptions;

#[cfg(feature = "mysql")]
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

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

/// Whether a certificate or key parameter holds PEM text itself (common where secrets come from
/// a vault) rather than a file's path.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn is_pem(value: &str) -> bool {
    value.trim_start().starts_with("-----BEGIN ")
}

/// The connection parameter that bounds how long opening a connection may take (read by
/// [`SqlConfig::connect_timeout`], not by the backends' options).
#[cfg(any(feature = "postgres", feature = "mysql"))]
const CONNECT_TIMEOUT: &str = "connect_timeout";

/// The PostgreSQL parameters [`postgres_options`] reads.
#[cfg(feature = "postgres")]
const POSTGRES_PARAMS: &[&str] = &[
    "connect_timeout",
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
    let mut pem: Vec<(&str, Vec<u8>)> = Vec::new();
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
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" | "sslcert" | "ssl-cert" | "sslkey" | "ssl-key"
                if is_pem(value) =>
            {
                pem.push((key.as_str(), value.clone().into_bytes()));
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
            CONNECT_TIMEOUT => continue,
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
    for (key, text) in pem {
        options = match key {
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" => options.ssl_root_cert_from_pem(text),
            "sslcert" | "ssl-cert" => options.ssl_client_cert_from_pem(text),
            _ => options.ssl_client_key_from_pem(text),
        };
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
    "connect_timeout",
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
pub(crate) fn build_mysql(url: &SqlUrl) -> Result<MySqlConnectOptions, ParamError> {
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
        if key == CONNECT_TIMEOUT {
            continue;
        }
        let Some(param) = MySqlParam::parse(key) else {
            return Err(ParamError::unknown(key, Backend::MySql, MYSQL_PARAMS));
        };
        options = match param {
            MySqlParam::Charset => options.charset(value),
            MySqlParam::Collation => options.collation(value),
            MySqlParam::SslMode => {
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
            MySqlParam::SslCa if is_pem(value) => options.ssl_ca_from_pem(value.clone().into_bytes()),
            MySqlParam::SslCert if is_pem(value) => options.ssl_client_cert_from_pem(value.as_bytes()),
            MySqlParam::SslKey if is_pem(value) => options.ssl_client_key_from_pem(value.as_bytes()),
            MySqlParam::SslCa => options.ssl_ca(value),
            MySqlParam::SslCert => options.ssl_client_cert(value),
            MySqlParam::SslKey => options.ssl_client_key(value),
            MySqlParam::Socket => options.socket(value),
            MySqlParam::Timezone => options.timezone(Some(value.clone())),
            MySqlParam::StatementCacheCapacity => options.statement_cache_capacity(
                value.parse().map_err(|_| ParamError::new(key, format!("`{key}`: expected an integer")))?,
            ),
        };
    }
    Ok(options)
}

/// A MySQL URL query parameter, whichever of its spellings (SQLAlchemy's, sqlx's) names it.
#[cfg(feature = "mysql")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MySqlParam {
    Charset,
    Collation,
    SslMode,
    SslCa,
    SslCert,
    SslKey,
    Socket,
    Timezone,
    StatementCacheCapacity,
}

#[cfg(feature = "mysql")]
impl MySqlParam {
    /// The parameter a query key names, if it is one.
    pub(crate) fn parse(key: &str) -> Option<Self> {
        Some(match key {
            "charset" => Self::Charset,
            "collation" => Self::Collation,
            "ssl_mode" | "sslmode" | "ssl-mode" => Self::SslMode,
            "ssl_ca" | "sslca" | "ssl-ca" => Self::SslCa,
            "ssl_cert" | "sslcert" | "ssl-cert" => Self::SslCert,
            "ssl_key" | "sslkey" | "ssl-key" => Self::SslKey,
            "unix_socket" | "socket" => Self::Socket,
            "timezone" | "time_zone" | "time-zone" => Self::Timezone,
            "statement-cache-capacity" => Self::StatementCacheCapacity,
            _ => return None,
        })
    }
}

/// A bad connection parameter found while building a backend's connect options: the parameter
/// (empty for the options as a whole) and a message naming it, without its value.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[derive(Debug)]
pub(crate) struct ParamError {
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
        if let Some(closest) = connections_core::closest_name(param, supported) {
            let _ = write!(message, " (did you mean `{closest}`?)");
        }
        Self::new(param, message)
    }
}

impl SqlConfig {
    /// The `connect_timeout` connection parameter of a server URL (libpq's and the MySQL
    /// drivers' spelling: seconds, here also fractional), or the default; it must be greater
    /// than 0 (libpq's "0 waits forever" would leave a caller hanging on a silent server).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn connect_timeout(&self) -> Result<std::time::Duration> {
        let Some((_, value)) = self.url.query.iter().rev().find(|(k, _)| k == CONNECT_TIMEOUT) else {
            return Ok(super::engine::DEFAULT_CONNECT_TIMEOUT);
        };
        let seconds = value.trim().parse::<f64>().ok().filter(|s| *s > 0.0);
        seconds.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok()).ok_or_else(|| {
            self.param_error(ParamError::new(
                CONNECT_TIMEOUT,
                "`connect_timeout`: expected a number of seconds greater than 0",
            ))
        })
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

/// A boolean connection parameter: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
#[cfg(feature = "sqlite")]
fn param_bool(key: &str, value: &str) -> Result<bool, ParamError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ParamError::new(key, format!("`{key}`: expected true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::options::tests::{checked, checked_error, key_of, message_of, options};

    #[cfg(feature = "sqlite")]
    mod sqlite {
        use super::*;
        use crate::options::pool_options;

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
                assert_eq!((key_of(&err), message_of(&err).as_str()), (key, message), "{url}");
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
                ("connect_timeout=0", "`connect_timeout`: expected a number of seconds greater than 0"),
                ("connect_timeout=secret", "`connect_timeout`: expected a number of seconds greater than 0"),
                ("connect_timeut=3", "unknown PostgreSQL connection parameter `connect_timeut`"),
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
            let cfg = checked(&options("url = 'postgresql://h/db?connect_timeout=2.5'"));
            assert_eq!(cfg.engine.connect_timeout, std::time::Duration::from_millis(2500));
            let cfg = checked(&options("url = 'postgresql://h/db'\nconnect_args = { connect_timeout = 3 }"));
            assert_eq!(cfg.engine.connect_timeout, std::time::Duration::from_secs(3));
            assert_eq!(
                checked(&options("url = 'postgresql://h/db'")).engine.connect_timeout,
                crate::options::engine::DEFAULT_CONNECT_TIMEOUT
            );
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
