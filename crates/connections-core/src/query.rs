//! The query capability shared by connection types that have one, and its builder.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::param::Param;

/// A query: its text, its named parameters (in the order given) and how long a result may be
/// served from the cache (`None`: until cleared).
#[derive(Clone)]
#[non_exhaustive]
pub struct QueryRequest {
    /// The query text, exactly as given (it is part of the cache key).
    pub sql: Arc<str>,
    /// Named parameters.
    pub params: Vec<(String, Param)>,
    /// How long a cached result is served; `None` keeps it until the cache is cleared.
    pub ttl: Option<Duration>,
}

impl QueryRequest {
    /// A request with no parameters and no TTL.
    pub fn new(sql: impl Into<Arc<str>>) -> Self {
        Self { sql: sql.into(), params: Vec::new(), ttl: None }
    }
}

impl fmt::Debug for QueryRequest {
    /// Parameter values are left out: they may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.debug_struct("QueryRequest").field("sql", &self.sql).field("params", &params).field("ttl", &self.ttl).finish()
    }
}

/// A connection that answers queries with a [`DataFrame`]: what `Connection::query` calls.
#[async_trait]
pub trait Query: Send + Sync {
    /// Runs a query (through the query cache, with retries).
    async fn query_request(&self, request: QueryRequest) -> Result<DataFrame>;
}

/// A query being built: `.param(...)`, `.ttl(...)`, then `.await`.
///
/// ```no_run
/// # async fn demo(conn: connections_core::Connection) -> Result<(), connections_core::Error> {
/// use std::time::Duration;
/// let df = conn
///     .query("select * from pets where owner = :owner")
///     .param("owner", "Jerry")
///     .ttl(Duration::from_secs(600))
///     .await?;
/// println!("{df}");
/// # Ok(()) }
/// ```
#[must_use = "a query does nothing until it is awaited"]
pub struct QueryBuilder<'a> {
    target: std::result::Result<&'a dyn Query, Box<dyn FnOnce() -> Error + Send + 'a>>,
    request: QueryRequest,
}

impl<'a> QueryBuilder<'a> {
    /// A query on `target`.
    pub fn new(target: &'a dyn Query, sql: impl Into<Arc<str>>) -> Self {
        Self { target: Ok(target), request: QueryRequest::new(sql) }
    }

    /// A query that fails with `error` when awaited (for a connection without a query capability).
    pub(crate) fn failing(sql: impl Into<Arc<str>>, error: impl FnOnce() -> Error + Send + 'a) -> Self {
        Self { target: Err(Box::new(error)), request: QueryRequest::new(sql) }
    }

    /// Binds a named parameter (`:name` in SQL connections).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Param>) -> Self {
        self.request.params.push((name.into(), value.into()));
        self
    }

    /// Binds several named parameters.
    pub fn params<I, K, V>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Param>,
    {
        self.request.params.extend(params.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Serves a cached result for at most `ttl`; without it, a result is cached until cleared.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.request.ttl = Some(ttl);
        self
    }

    /// The request as built so far.
    pub fn request(&self) -> &QueryRequest {
        &self.request
    }
}

impl<'a> IntoFuture for QueryBuilder<'a> {
    type Output = Result<DataFrame>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<DataFrame>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        match self.target {
            Ok(target) => target.query_request(self.request),
            Err(error) => Box::pin(std::future::ready(Err(error()))),
        }
    }
}
