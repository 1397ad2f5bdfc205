//! `SnowflakeConnection`: type `snowflake`, the counterpart of Streamlit's `SnowflakeConnection`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use connections_core::{
    BaseConnection, ConnectParams, ConnectionCore, DataFrame, Error, Param, Query, QueryRequest, Result, async_trait,
};

use crate::config::SnowflakeConfig;
use crate::error::SnowflakeError;
use crate::protocol::Binding;
use crate::query::{BatchStream, QueryResult, run, run_statements};
use crate::session::Session;

/// The raw client of a Snowflake connection: its logged-in session.
#[derive(Debug)]
pub struct SnowflakeClient {
    session: Arc<Session>,
}

impl SnowflakeClient {
    /// Logs in with a checked configuration: what another connection type built on this crate
    /// (a Snowpark shim, caller's rights) uses as its raw client.
    pub async fn connect(config: SnowflakeConfig) -> Result<Self> {
        Ok(Self { session: Session::open(config).await.map_err(SnowflakeError::into_connect_error)? })
    }

    /// The session.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Runs a statement and reads its whole result; uncached and unretried (the caller's
    /// connection does that).
    pub async fn run(&self, sql: &str, bindings: &[(String, Binding)]) -> Result<QueryResult> {
        let timeout = self.session.config().query_timeout;
        let answer = run(&self.session, sql, bindings, timeout).await?;
        Ok(answer.collect(Arc::clone(&self.session)).await?)
    }
}

/// A connection to Snowflake: type `snowflake`.
///
/// Configured by a `[connections.<name>]` section written for Streamlit, by options, or by the
/// Snowflake connector's own `connections.toml` (see `docs/snowflake.md`). Queries return Arrow
/// data through the query cache.
///
/// ```no_run
/// # async fn demo() -> connections_core::Result<()> {
/// use connections_snowflake::SnowflakeConnection;
/// let conn = connections_core::connection("snowflake").open_as::<SnowflakeConnection>().await?;
/// let df = conn.query("select * from pet_owners where owner = ?").bind("Jerry").await?;
/// println!("{df}");
/// # Ok(()) }
/// ```
pub struct SnowflakeConnection {
    core: ConnectionCore<Self>,
}

#[async_trait]
impl BaseConnection for SnowflakeConnection {
    type Raw = SnowflakeClient;
    const TYPE_NAME: &'static str = "snowflake";
    const NAME_IMPLIES_TYPE: bool = true;

    async fn connect(params: &ConnectParams) -> Result<SnowflakeClient> {
        SnowflakeClient::connect(SnowflakeConfig::from_params(params)?).await
    }

    connections_core::core_accessors!(query);
}
connections_core::register_connection!(SnowflakeConnection);

impl SnowflakeConnection {
    /// A query, cached until cleared unless given a `.ttl(...)`: `?` placeholders take
    /// `.bind(value)` in order, `:name` placeholders take `.param(name, value)`. Connection
    /// failures (and an expired session) are retried, 3 attempts 1 s apart with a reset between;
    /// statement errors fail at once.
    pub fn query(&self, sql: impl Into<Arc<str>>) -> SnowflakeQuery<'_> {
        SnowflakeQuery { conn: self, request: QueryRequest::new(sql), positional: 0 }
    }

    /// Runs a statement uncached and unretried (it may have taken effect), with its query id
    /// and, for DML, the rows it changed. A connection failure resets the connection.
    pub async fn run(&self, sql: &str, bindings: &[(String, Binding)]) -> Result<QueryResult> {
        let client = self.core.raw().await?;
        let result = client.run(sql, bindings).await;
        self.finish(result)
    }

    /// Runs text holding several statements separated by `;` (`count` of them, or 0 for any
    /// number: Snowflake refuses a count that does not match), uncached and unretried; the
    /// result of each, in order.
    pub async fn run_statements(&self, sql: &str, count: u32) -> Result<Vec<QueryResult>> {
        let client = self.core.raw().await?;
        let session = &client.session;
        let result = async {
            let mut results = Vec::new();
            for answer in run_statements(session, sql, count, session.config().query_timeout).await? {
                results.push(answer.collect(Arc::clone(session)).await?);
            }
            Ok::<_, crate::SnowflakeError>(results)
        }
        .await;
        self.finish(result)
    }

    /// Runs a statement (DDL or DML); the number of rows it changed (0 for DDL).
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        self.execute_with(sql, Vec::<Binding>::new()).await
    }

    /// Runs a statement with positional (`?`) bindings; the number of rows it changed.
    pub async fn execute_with<I, V>(&self, sql: &str, bindings: I) -> Result<u64>
    where
        I: IntoIterator<Item = V>,
        V: Into<Binding>,
    {
        let bindings: Vec<(String, Binding)> =
            bindings.into_iter().enumerate().map(|(i, b)| ((i + 1).to_string(), b.into())).collect();
        Ok(self.run(sql, &bindings).await?.rows_affected.unwrap_or(0))
    }

    /// Streams a query's result, uncached, batch by batch as its chunks arrive (downloaded a
    /// few at a time, in order), for results larger than memory.
    pub async fn query_stream(&self, sql: &str, bindings: &[(String, Binding)]) -> Result<BatchStream> {
        let client = self.core.raw().await?;
        let timeout = client.session.config().query_timeout;
        let answer = run(&client.session, sql, bindings, timeout).await.map_err(Error::from);
        let answer = self.finish(answer)?;
        Ok(BatchStream::new(answer, Arc::clone(&client.session)))
    }

    /// [`query_stream`](Self::query_stream) with the parameters the query builder takes
    /// (`query(sql).param(name, value)`): names for `:name` placeholders, `1`, `2`, ... for `?`.
    ///
    /// ```no_run
    /// # async fn demo(conn: &connections_snowflake::SnowflakeConnection) -> connections_core::Result<()> {
    /// use futures_util::StreamExt as _;
    /// let mut stream = conn.query_stream_with("select * from pets where owner = :owner", [("owner", "Jerry")]).await?;
    /// let columns = stream.schema().fields().len(); // known before the first batch
    /// while let Some(batch) = stream.next().await {
    ///     println!("{} rows of {columns} columns", batch?.num_rows());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn query_stream_with<I, K, V>(&self, sql: &str, params: I) -> Result<BatchStream>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Param>,
    {
        let params: Vec<(String, Param)> =
            params.into_iter().map(|(name, value)| (name.into(), value.into())).collect();
        self.query_stream(sql, &bindings(&params)?).await
    }

    /// The raw client: the logged-in session.
    pub async fn session(&self) -> Result<Arc<Session>> {
        Ok(Arc::clone(&self.core.raw().await?.session))
    }

    pub(crate) fn core_name(&self) -> &str {
        self.core.name()
    }

    fn finish<T>(&self, result: std::result::Result<T, impl Into<Error>>) -> Result<T> {
        settle(&self.core, result)
    }
}

#[async_trait]
impl Query for SnowflakeConnection {
    async fn query_request(&self, request: QueryRequest) -> Result<DataFrame> {
        cached_query(&self.core, request).await
    }
}

/// A query through the query cache and retry of `core`, its parameters sent as server-side
/// bindings: the query capability of every type on a Snowflake session.
pub(crate) async fn cached_query<C>(core: &ConnectionCore<C>, request: QueryRequest) -> Result<DataFrame>
where
    C: BaseConnection<Raw = SnowflakeClient>,
{
    let bindings = Arc::new(bindings(&request.params)?);
    Box::pin(core.cached_query(&request, |client| {
        let (sql, bindings) = (Arc::clone(&request.sql), Arc::clone(&bindings));
        Box::pin(async move { Ok(client.run(&sql, &bindings).await?.frame) })
    }))
    .await
}

/// The query builder's parameters as server-side bindings.
fn bindings(params: &[(String, Param)]) -> Result<Vec<(String, Binding)>> {
    params
        .iter()
        .map(|(name, param)| Binding::from_param(name, param))
        .collect::<std::result::Result<_, String>>()
        .map_err(|reason| Error::InvalidArgument { argument: "params", reason })
}

/// The outcome of an uncached call on `core`'s session: an error names the connection, and one
/// that a fresh connection may cure resets it.
pub(crate) fn settle<C, T>(core: &ConnectionCore<C>, result: std::result::Result<T, impl Into<Error>>) -> Result<T>
where
    C: BaseConnection,
{
    let result = result.map_err(|e| e.into().for_connection(core.name(), C::TYPE_NAME));
    if result.as_ref().is_err_and(Error::is_retryable) {
        core.reset();
    }
    result
}

/// A query being built: `.bind(...)`, `.param(...)`, `.ttl(...)`, then `.await`.
#[must_use = "a query does nothing until it is awaited"]
pub struct SnowflakeQuery<'a> {
    conn: &'a SnowflakeConnection,
    request: QueryRequest,
    positional: usize,
}

impl SnowflakeQuery<'_> {
    /// Binds the next `?` placeholder.
    pub fn bind(mut self, value: impl Into<Binding>) -> Self {
        self.positional += 1;
        let name = self.positional.to_string();
        self.push(&name, &value.into());
        self
    }

    /// Binds the `:name` placeholder.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Binding>) -> Self {
        self.push(&name.into(), &value.into());
        self
    }

    /// Serves a cached result for at most `ttl`; without it, a result is cached until cleared.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.request.ttl = Some(ttl);
        self
    }

    fn push(&mut self, name: &str, binding: &Binding) {
        let (suffix, param): (&str, Param) = binding.to_param();
        self.request.params.push((format!("{name}{suffix}"), param));
    }
}

impl<'a> IntoFuture for SnowflakeQuery<'a> {
    type Output = Result<DataFrame>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<DataFrame>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.conn.query_request(self.request))
    }
}

impl std::fmt::Debug for SnowflakeConnection {
    /// The name and whether a session is held; never the configuration's values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeConnection")
            .field("name", &self.core.name())
            .field("connected", &self.core.is_connected())
            .finish_non_exhaustive()
    }
}
