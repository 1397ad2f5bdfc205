//! `SqlConnection`: type `sql`, the counterpart of Streamlit's `SQLConnection`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{
    BaseConnection, ConnectParams, ConnectionCore, DataFrame, Param, Query, QueryBuilder, QueryRequest, Result,
    async_trait,
};
use futures_util::Stream as _;

use crate::options::SqlConfig;
use crate::pool::SqlPool;
use crate::session::SqlSession;

/// A connection to a SQL database (SQLite, PostgreSQL, MySQL/MariaDB): type `sql`.
///
/// Configured by a `[connections.<name>]` section written for Streamlit (`url`, or `dialect`,
/// `username`, `password`, `host`, `port`, `database`, `query`; `create_engine_kwargs`) and/or
/// by options. Queries return Arrow data through the query cache.
///
/// ```no_run
/// # async fn demo() -> connections_core::Result<()> {
/// use connections_sql::SqlConnection;
/// use std::time::Duration;
/// let conn = connections_core::connection("pets_db").open_as::<SqlConnection>().await?;
/// let pets = conn
///     .query("select * from pets where owner = :owner")
///     .param("owner", "Jerry")
///     .ttl(Duration::from_secs(600))
///     .await?;
/// println!("{pets}");
/// # Ok(()) }
/// ```
pub struct SqlConnection {
    core: ConnectionCore<Self>,
}

#[async_trait]
impl BaseConnection for SqlConnection {
    type Raw = SqlPool;
    const TYPE_NAME: &'static str = "sql";
    const NAME_IMPLIES_TYPE: bool = true;

    async fn connect(params: &ConnectParams) -> Result<SqlPool> {
        let config = SqlConfig::from_params(params)?;
        SqlPool::connect(&config).await
    }

    connections_core::core_accessors!(query);
}
connections_core::register_connection!(SqlConnection);

impl SqlConnection {
    /// A query, cached until cleared unless given a `.ttl(...)`; `:name` placeholders take
    /// `.param(name, value)`. Connection failures are retried (3 attempts, 1 s apart, with a
    /// reset between); statement errors fail at once.
    pub fn query(&self, sql: impl Into<Arc<str>>) -> QueryBuilder<'_> {
        QueryBuilder::new(self, sql)
    }

    /// Runs a statement (DDL or DML) outside any transaction; the number of rows it changed.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        self.execute_with(sql, Vec::<(String, Param)>::new()).await
    }

    /// Runs a statement with named (`:name`) parameters. Not retried (it may have taken effect);
    /// a connection failure resets the connection.
    pub async fn execute_with<I, K, V>(&self, sql: &str, params: I) -> Result<u64>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Param>,
    {
        let params = crate::named(params);
        let pool = self.core.raw().await?;
        let result = pool.execute(sql, &params).await.map_err(|e| e.for_connection(self.core.name(), "sql"));
        if result.as_ref().is_err_and(connections_core::Error::is_retryable) {
            self.core.reset();
        }
        result
    }

    /// Begins a transaction: the counterpart of `with conn.session as s: ...; s.commit()`.
    pub async fn session(&self) -> Result<SqlSession> {
        let pool = self.core.raw().await?;
        pool.begin().await.map_err(|e| e.for_connection(self.core.name(), "sql"))
    }

    /// Streams a query's result in batches of `batch_size` rows, uncached, for results larger
    /// than memory (what Streamlit's `chunksize` meant).
    pub async fn query_stream(&self, sql: &str, batch_size: usize) -> Result<BatchStream> {
        self.query_stream_with(sql, Vec::<(String, Param)>::new(), batch_size).await
    }

    /// [`query_stream`](Self::query_stream) with named parameters.
    pub async fn query_stream_with<I, K, V>(&self, sql: &str, params: I, batch_size: usize) -> Result<BatchStream>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Param>,
    {
        let params = crate::named(params);
        let pool = self.core.raw().await?;
        let (rx, schema_rx) = pool.stream(sql.into(), params, batch_size.max(1));
        Ok(BatchStream { rx, schema_rx, schema: None })
    }

    /// The raw client: the sqlx pool, for everything this crate does not wrap.
    pub async fn pool(&self) -> Result<Arc<SqlPool>> {
        self.core.raw().await
    }
}

#[async_trait]
impl Query for SqlConnection {
    async fn query_request(&self, request: QueryRequest) -> Result<DataFrame> {
        self.core
            .cached_query(&request, |pool| {
                let request = &request;
                async move { pool.query_frame(&request.sql, &request.params).await }
            })
            .await
    }
}

/// Batches of a streamed query, in order; an error ends the stream. Use it as a
/// `futures::Stream`, or call [`next_batch`](Self::next_batch).
#[derive(Debug)]
pub struct BatchStream {
    rx: tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
    schema_rx: tokio::sync::oneshot::Receiver<SchemaRef>,
    schema: Option<SchemaRef>,
}

impl BatchStream {
    /// The next batch, or `None` at the end.
    pub async fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The result's schema: known from the first batch on, and once the stream has ended, also
    /// for a result without rows (the columns the statement declares). `None` before either,
    /// and after a failed statement.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> connections_core::Result<()> {
    /// use futures_util::StreamExt as _;
    /// let conn = connections_core::connection("mem")
    ///     .with_type("sql")
    ///     .option("url", "sqlite://")
    ///     .open_as::<connections_sql::SqlConnection>()
    ///     .await?;
    /// let mut stream = conn.query_stream("select 1 as n, 'x' as s where 0", 100).await?;
    /// assert!(stream.next().await.is_none());
    /// let schema = stream.schema().expect("known at the end");
    /// assert_eq!(schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["n", "s"]);
    /// # Ok(()) }
    /// ```
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }
}

impl futures_util::Stream for BatchStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.rx.poll_recv(cx);
        match &next {
            Poll::Ready(Some(Ok(batch))) if self.schema.is_none() => self.schema = Some(batch.schema()),
            // the producer sent the schema before it let go of the batch channel
            Poll::Ready(None) if self.schema.is_none() => self.schema = self.schema_rx.try_recv().ok(),
            _ => {}
        }
        next
    }
}

impl std::fmt::Debug for SqlConnection {
    /// The name and whether a pool is held; never the configuration's values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConnection")
            .field("name", &self.core.name())
            .field("connected", &self.core.is_connected())
            .finish_non_exhaustive()
    }
}
