//! `SnowflakeCallersRightsConnection`: type `snowflake-callers-rights`, Streamlit's
//! `SnowflakeCallersRightsConnection` (11.5): an app served from Snowpark Container Services
//! that acts with the identity of the viewer of each request.
//!
//! The login is OAuth with the service's token file (`/snowflake/session/token`) joined with the
//! viewer's token (the request header `Sf-Context-Current-User-Token`, which the app hands to
//! the builder with [`CallersRights::viewer_token`]), on the account and host of the container
//! environment (`SNOWFLAKE_ACCOUNT`, `SNOWFLAKE_HOST`, and `SNOWFLAKE_DATABASE`, `_SCHEMA`,
//! `_PROTOCOL`, `_PORT` when set). The viewer token is an option, so it is part of the key the
//! factory caches connection objects under: one viewer's connection is never handed to another.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use connections_core::toml::{Table, Value};
use connections_core::{
    BaseConnection, ConfigOrigin, ConfigProblem, ConnectParams, ConnectionBuilder, ConnectionCore, DataFrame, Error,
    Query, QueryBuilder, QueryRequest, Result, async_trait,
};

use crate::config::{SPCS_TOKEN_FILE, SnowflakeConfig};
use crate::connection::{SnowflakeClient, cached_query, settle};
use crate::session::Session;
use crate::sources::{Source, Sources};

/// The option holding the viewer's token: the value of the request header
/// `Sf-Context-Current-User-Token`. Set it with [`CallersRights::viewer_token`].
pub const VIEWER_TOKEN_OPTION: &str = "viewer_token";

/// The option naming another token file than [`SPCS_TOKEN_FILE`] (for tests).
pub const TOKEN_FILE_OPTION: &str = "token_file_path";

/// The environment variables read, in order: the first two are required.
const VARIABLES: [(&str, &str); 6] = [
    ("SNOWFLAKE_ACCOUNT", "account"),
    ("SNOWFLAKE_HOST", "host"),
    ("SNOWFLAKE_DATABASE", "database"),
    ("SNOWFLAKE_SCHEMA", "schema"),
    ("SNOWFLAKE_PROTOCOL", "protocol"),
    ("SNOWFLAKE_PORT", "port"),
];

/// Hands the viewer's token to a connection being opened.
pub trait CallersRights {
    /// The viewer's token: the value of the request header `Sf-Context-Current-User-Token`
    /// (Streamlit reads it from the request; here the app passes it in). Connections of
    /// different viewers are different objects.
    ///
    /// ```no_run
    /// # async fn demo(header: &str) -> connections_core::Result<()> {
    /// use connections_snowflake::{CallersRights, SnowflakeCallersRightsConnection};
    /// let conn = connections_core::connection("snowflake-callers-rights")
    ///     .viewer_token(header)
    ///     .open_as::<SnowflakeCallersRightsConnection>()
    ///     .await?;
    /// let df = conn.query("select current_user()").await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    fn viewer_token(self, token: impl Into<String>) -> Self;
}

impl CallersRights for ConnectionBuilder {
    fn viewer_token(self, token: impl Into<String>) -> Self {
        self.option(VIEWER_TOKEN_OPTION, token.into())
    }
}

/// The container environment a caller's-rights connection reads: its variables and token file.
#[derive(Clone)]
pub struct ContainerEnvironment {
    vars: HashMap<String, String>,
    token_file: PathBuf,
}

impl ContainerEnvironment {
    /// This process's: its `SNOWFLAKE_*` variables and `/snowflake/session/token`.
    pub fn process() -> Self {
        let vars = VARIABLES
            .iter()
            .filter_map(|(var, _)| std::env::var(var).ok().filter(|v| !v.is_empty()).map(|v| ((*var).to_owned(), v)))
            .collect();
        Self { vars, token_file: PathBuf::from(SPCS_TOKEN_FILE) }
    }

    /// An environment with no variables and this token file.
    ///
    /// ```
    /// use connections_snowflake::ContainerEnvironment;
    /// let env = ContainerEnvironment::empty("/tmp/token").var("SNOWFLAKE_ACCOUNT", "acct");
    /// # drop(env);
    /// ```
    pub fn empty(token_file: impl Into<PathBuf>) -> Self {
        Self { vars: HashMap::new(), token_file: token_file.into() }
    }

    /// Sets a variable.
    #[must_use]
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }
}

impl std::fmt::Debug for ContainerEnvironment {
    /// The variables set and the token file; never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerEnvironment").field("vars", &self.vars).field("token_file", &self.token_file).finish()
    }
}

/// A Snowflake connection acting as the viewer of a request: type `snowflake-callers-rights`.
///
/// Open one per viewer, with the viewer's token ([`CallersRights::viewer_token`]), inside the
/// handler of the request; give it a `ttl` so that connections of past viewers are let go.
/// Options, then the `[connections.<name>]` section (which Streamlit does not read), may give
/// Snowflake keys (a warehouse, a role) that override the environment.
///
/// ```no_run
/// # async fn demo(header: &str) -> connections_core::Result<()> {
/// use std::time::Duration;
/// use connections_snowflake::{CallersRights, SnowflakeCallersRightsConnection};
/// let conn = connections_core::connection("snowflake-callers-rights")
///     .viewer_token(header)
///     .ttl(Duration::from_secs(300))
///     .open_as::<SnowflakeCallersRightsConnection>()
///     .await?;
/// let mine = conn.query("select * from my_orders").await?;
/// # Ok(()) }
/// ```
pub struct SnowflakeCallersRightsConnection {
    core: ConnectionCore<Self>,
}

#[async_trait]
impl BaseConnection for SnowflakeCallersRightsConnection {
    type Raw = SnowflakeClient;
    const TYPE_NAME: &'static str = "snowflake-callers-rights";
    const NAME_IMPLIES_TYPE: bool = true;

    async fn connect(params: &ConnectParams) -> Result<SnowflakeClient> {
        SnowflakeClient::connect(callers_rights_config(params, &ContainerEnvironment::process())?).await
    }

    connections_core::core_accessors!(query);
}
connections_core::register_connection!(SnowflakeCallersRightsConnection);

impl SnowflakeCallersRightsConnection {
    /// A query as the viewer, cached for this viewer's connection (`.param`, `.ttl`) and
    /// retried on connection failures as type `snowflake` does.
    pub fn query(&self, sql: impl Into<Arc<str>>) -> QueryBuilder<'_> {
        QueryBuilder::new(self, sql)
    }

    /// Runs a statement (DDL or DML) uncached and unretried; the number of rows it changed.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        let client = self.core.raw().await?;
        Ok(settle(&self.core, client.run(sql, &[]).await)?.rows_affected.unwrap_or(0))
    }

    /// The viewer's Snowflake session.
    pub async fn session(&self) -> Result<Arc<Session>> {
        Ok(Arc::clone(self.core.raw().await?.session()))
    }
}

#[async_trait]
impl Query for SnowflakeCallersRightsConnection {
    async fn query_request(&self, request: QueryRequest) -> Result<DataFrame> {
        cached_query(&self.core, request).await
    }
}

impl std::fmt::Debug for SnowflakeCallersRightsConnection {
    /// The name and whether a session is held; never the tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeCallersRightsConnection")
            .field("name", &self.core.name())
            .field("connected", &self.core.is_connected())
            .finish_non_exhaustive()
    }
}

/// The configuration of a caller's-rights connection (Streamlit's 11.5): OAuth with the token
/// file's token joined with the viewer's (`{file}.{viewer}` when the file's token holds a `.`,
/// else the viewer's alone), keep-alive on; then the options; then the `[connections.<name>]`
/// section (Streamlit reads none: here it may set a warehouse or role); then the account and
/// host of `env` (required unless the options or section give them) and its optional database,
/// schema, protocol and port. The viewer token and `token_file_path` are taken from the options,
/// else the section.
///
/// ```
/// use connections_core::{ConnectParams, toml::Table};
/// use connections_snowflake::{ContainerEnvironment, callers_rights_config};
/// let params = ConnectParams::from_parts("snowflake-callers-rights", "snowflake-callers-rights", None, Table::new());
/// let err = callers_rights_config(&params, &ContainerEnvironment::empty("/no/such/token")).unwrap_err();
/// assert!(err.to_string().contains("SNOWFLAKE_ACCOUNT"), "{err}");
/// ```
pub fn callers_rights_config(params: &ConnectParams, env: &ContainerEnvironment) -> Result<SnowflakeConfig> {
    let name = params.name();
    let mut options = params.options().clone();
    let mut section = params.section().map(|s| s.as_table().clone()).unwrap_or_default();
    section.remove(connections_core::TYPE_KEY);
    let section_origin =
        params.section().and_then(|s| s.origin()).map_or(ConfigOrigin::Options, |p| ConfigOrigin::File(p.to_owned()));
    let mut take = |key: &str| options.remove(key).or_else(|| section.remove(key));
    let viewer = take(VIEWER_TOKEN_OPTION);
    let token_file = match take(TOKEN_FILE_OPTION) {
        None => env.token_file.clone(),
        Some(Value::String(path)) => PathBuf::from(path),
        Some(other) => {
            let problem = ConfigProblem::Expected { expected: "a path".into(), found: other.type_str().into() };
            return Err(params.error(TOKEN_FILE_OPTION, problem));
        }
    };
    let invalid = |key: &str, reason: String| Error::Config {
        name: name.to_owned(),
        key: key.to_owned(),
        origin: None,
        problem: Box::new(ConfigProblem::Invalid { reason }),
    };
    let mut from_env = Table::new();
    for (i, (var, key)) in VARIABLES.iter().enumerate() {
        match env.vars.get(*var) {
            Some(value) => {
                from_env.insert((*key).to_owned(), value.clone().into());
            }
            None if i < 2 && !options.contains_key(*key) && !section.contains_key(*key) => {
                return Err(invalid(
                    key,
                    format!(
                        "environment variable `{var}` not found: is this app running in a Snowflake container environment?"
                    ),
                ));
            }
            None => {}
        }
    }
    let file_token = match std::fs::read_to_string(&token_file) {
        Ok(token) => token.trim().to_owned(),
        Err(_) => {
            return Err(invalid(
                "token",
                format!(
                    "token file `{}` not found: is this app running in a Snowflake container environment?",
                    token_file.display()
                ),
            ));
        }
    };
    let viewer = match viewer {
        Some(Value::String(token)) if !token.trim().is_empty() => token.trim().to_owned(),
        Some(Value::String(_)) | None => {
            return Err(invalid(
                VIEWER_TOKEN_OPTION,
                "no viewer token: is this app running with caller's rights enabled? Pass the value of the request \
                 header `Sf-Context-Current-User-Token` with `.viewer_token(...)`"
                    .into(),
            ));
        }
        Some(other) => {
            let problem = ConfigProblem::Expected { expected: "a string".into(), found: other.type_str().into() };
            return Err(params.error(VIEWER_TOKEN_OPTION, problem));
        }
    };
    let token = if file_token.contains('.') { format!("{file_token}.{viewer}") } else { viewer };
    let mut login = Table::new();
    login.insert("authenticator".into(), "oauth".into());
    login.insert("token".into(), token.into());
    login.insert("client_session_keep_alive".into(), true.into());
    let mut sources = Sources::new(name);
    sources.push(Source::new(ConfigOrigin::Options, "the viewer's token and the token file", login));
    sources.push(Source::new(ConfigOrigin::Options, "the options passed to connection()", options));
    sources.push(Source::new(section_origin, format!("[connections.{name}]"), section));
    let env_origin = ConfigOrigin::File(token_file);
    sources.push(Source::new(env_origin, "the Snowflake container environment (SNOWFLAKE_*)", from_env));
    SnowflakeConfig::from_sources(&sources)
}
