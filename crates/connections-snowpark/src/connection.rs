//! `SnowparkConnection`: type `snowpark`, Streamlit 1.50's `SnowparkConnection` on the
//! Snowflake driver.

#![allow(deprecated)] // this module defines the deprecated type

use std::future::{Future, IntoFuture};
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use connections_core::{
    BaseConnection, ConfigProblem, ConnectParams, ConnectionCore, DataFrame, Error, Query, QueryRequest, Result,
    async_trait,
};
use connections_snowflake::{Environment, Session, SnowflakeClient, SnowflakeConfig, collect_sources};
use tokio::sync::{Mutex, MutexGuard};

use crate::snowsql::SnowsqlFile;

/// The option naming another SnowSQL file than `~/.snowsql/config`.
pub(crate) const SNOWSQL_PATH_OPTION: &str = "snowsql_config_path";

/// A connection of the deprecated type `snowpark`: Streamlit's removed `SnowparkConnection`.
///
/// It is a Snowflake connection ([`connections_snowflake::SnowflakeConnection`]'s session,
/// query protocol, cache and retries) configured as Streamlit 1.50 did: the options, then
/// `[connections.<name>]`, then `~/.snowsql/config` (`[connections.<name>]` or
/// `[connections]`, SnowSQL's key spellings mapped). Queries run under the connection's lock,
/// which [`safe_session`](Self::safe_session) also holds. Opening one logs a warning once per
/// process.
///
/// ```no_run
/// # #[allow(deprecated)]
/// # async fn demo() -> connections_core::Result<()> {
/// use connections_snowpark::SnowparkConnection;
/// let conn = connections_core::connection("snowpark").open_as::<SnowparkConnection>().await?;
/// let df = conn.query("select current_warehouse()").ttl(std::time::Duration::from_secs(600)).await?;
/// println!("{df}");
/// # Ok(()) }
/// ```
#[deprecated(note = "type `snowpark` is deprecated: use `connection(\"<name>\").with_type(\"snowflake\")` \
                     (`SnowflakeConnection`), which reads the same `[connections.<name>]` section")]
pub struct SnowparkConnection {
    core: ConnectionCore<Self>,
    lock: Mutex<()>,
}

#[async_trait]
impl BaseConnection for SnowparkConnection {
    type Raw = SnowflakeClient;
    const TYPE_NAME: &'static str = "snowpark";
    const NAME_IMPLIES_TYPE: bool = true;
    const DEPRECATION: Option<&'static str> = Some(
        "type `snowpark` is deprecated (Streamlit removed SnowparkConnection): use \
         `connection(\"<name>\").with_type(\"snowflake\")` instead, with the same [connections.<name>] section",
    );

    async fn connect(params: &ConnectParams) -> Result<SnowflakeClient> {
        SnowflakeClient::connect(SnowparkConnection::config(params, &Environment::process())?).await
    }

    connections_core::core_accessors!(query; lock: Mutex::new(()));
}
connections_core::register_connection!(SnowparkConnection);

impl SnowparkConnection {
    /// The checked configuration of a `snowpark` connection: the options, the
    /// `[connections.<name>]` section and the Snowflake connector's files of `env` (as type
    /// `snowflake` reads them), then the SnowSQL file (the option `snowsql_config_path`, else
    /// `~/.snowsql/config`). Nothing configured, or no `account`, is an error saying where
    /// configuration can go.
    ///
    /// ```
    /// # #[allow(deprecated)] {
    /// use connections_core::{ConnectParams, toml::Table};
    /// use connections_snowflake::{ConnectorFiles, Environment};
    /// use connections_snowpark::SnowparkConnection;
    /// let dir = tempfile::tempdir().unwrap();
    /// let snowsql = dir.path().join("config");
    /// std::fs::write(&snowsql, "[connections]\naccountname = acct\nusername = jerry\npassword = pw\n").unwrap();
    /// let mut options = Table::new();
    /// options.insert("snowsql_config_path".into(), snowsql.display().to_string().into());
    /// let params = ConnectParams::from_parts("snowpark", "snowpark", None, options);
    /// let env = Environment::with_files(ConnectorFiles::in_dir(dir.path()));
    /// let config = SnowparkConnection::config(&params, &env).unwrap();
    /// assert_eq!((config.account.as_str(), config.user.as_deref()), ("acct", Some("jerry")));
    /// # }
    /// ```
    pub fn config(params: &ConnectParams, env: &Environment) -> Result<SnowflakeConfig> {
        let name = params.name();
        let mut options = params.options().clone();
        let snowsql = match options.remove(SNOWSQL_PATH_OPTION) {
            None => SnowsqlFile::in_home(),
            Some(connections_core::toml::Value::String(path)) => Some(SnowsqlFile::at(path)),
            Some(other) => {
                let problem = ConfigProblem::Expected {
                    expected: "a path to a SnowSQL configuration file".into(),
                    found: other.type_str().into(),
                };
                return Err(params.error(SNOWSQL_PATH_OPTION, problem));
            }
        };
        let params = ConnectParams::from_parts(name, params.type_name(), params.section().cloned(), options);
        let mut sources = collect_sources(&params, env)?;
        if let Some(source) = snowsql.as_ref().map(|f| f.connection(name)).transpose()?.flatten() {
            sources.push(source);
        }
        let hint = where_configuration_goes(name, snowsql.as_ref());
        if !sources.is_configured() {
            return Err(Error::Config {
                name: name.to_owned(),
                key: String::new(),
                origin: None,
                problem: Box::new(ConfigProblem::NothingConfigured {
                    hint: format!("missing Snowpark connection configuration: did you forget to set {hint}?"),
                }),
            });
        }
        SnowflakeConfig::from_sources(&sources).map_err(|mut err| {
            if let Error::Config { problem, .. } = &mut err
                && let ConfigProblem::MissingKeys { hint: missing, .. } = problem.as_mut()
            {
                *missing = format!("set them {hint}");
            }
            err
        })
    }

    /// A query, cached until cleared unless given a `.ttl(...)`, run under the connection's
    /// lock; connection failures are retried (3 attempts 1 s apart, with a reset between) as
    /// type `snowflake` does, statement errors fail at once.
    pub fn query(&self, sql: impl Into<Arc<str>>) -> SnowparkQuery<'_> {
        SnowparkQuery { conn: self, request: QueryRequest::new(sql) }
    }

    /// The Snowflake session, for direct use (Streamlit's `session` property). Prefer
    /// [`safe_session`](Self::safe_session) when other tasks share the connection.
    pub async fn session(&self) -> Result<Arc<Session>> {
        Ok(Arc::clone(self.core.raw().await?.session()))
    }

    /// The Snowflake session with the connection's lock held while the guard lives
    /// (Streamlit's `safe_session()` context manager): [`query`](Self::query) on this
    /// connection waits until the guard is dropped. The lock is not reentrant: do not await a
    /// `query` of the same connection while holding the guard.
    pub async fn safe_session(&self) -> Result<SafeSession<'_>> {
        let guard = self.lock.lock().await;
        let session = Arc::clone(self.core.raw().await?.session());
        Ok(SafeSession { session, _guard: guard })
    }

    /// Whether the lock is free: no [`SafeSession`] alive and no query running.
    pub fn is_unlocked(&self) -> bool {
        self.lock.try_lock().is_ok()
    }
}

#[async_trait]
impl Query for SnowparkConnection {
    async fn query_request(&self, request: QueryRequest) -> Result<DataFrame> {
        if !request.params.is_empty() {
            let reason = "type `snowpark` takes no parameters; type `snowflake` binds them".into();
            return Err(Error::InvalidArgument { argument: "params", reason });
        }
        let _guard = self.lock.lock().await;
        Box::pin(self.core.cached_query(&request, |client| {
            let sql = Arc::clone(&request.sql);
            Box::pin(async move { Ok(client.run(&sql, &[]).await?.frame) })
        }))
        .await
    }
}

/// The session of [`SnowparkConnection::safe_session`], with the connection's lock held until
/// it is dropped.
pub struct SafeSession<'a> {
    session: Arc<Session>,
    _guard: MutexGuard<'a, ()>,
}

impl Deref for SafeSession<'_> {
    type Target = Arc<Session>;

    fn deref(&self) -> &Arc<Session> {
        &self.session
    }
}

impl std::fmt::Debug for SafeSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeSession").finish_non_exhaustive()
    }
}

/// A query being built: `.ttl(...)`, then `.await`.
#[must_use = "a query does nothing until it is awaited"]
pub struct SnowparkQuery<'a> {
    conn: &'a SnowparkConnection,
    request: QueryRequest,
}

impl SnowparkQuery<'_> {
    /// Serves a cached result for at most `ttl`; without it, a result is cached until cleared.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.request.ttl = Some(ttl);
        self
    }
}

impl<'a> IntoFuture for SnowparkQuery<'a> {
    type Output = Result<DataFrame>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<DataFrame>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.conn.query_request(self.request))
    }
}

impl std::fmt::Debug for SnowparkConnection {
    /// The name and whether a session is held; never the configuration's values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowparkConnection")
            .field("name", &self.core.name())
            .field("connected", &self.core.is_connected())
            .finish_non_exhaustive()
    }
}

/// Where configuration of the connection `name` can go, for the errors.
fn where_configuration_goes(name: &str, snowsql: Option<&SnowsqlFile>) -> String {
    let file = snowsql.map_or_else(|| "~/.snowsql/config".to_owned(), |f| f.path().display().to_string());
    format!(
        "in `secrets.toml` ([connections.{name}]), in {file} ([connections.{name}] or [connections]), or as \
         options with `connection(\"{name}\").option(...)`"
    )
}
