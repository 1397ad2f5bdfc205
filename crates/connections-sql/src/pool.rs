//! `SqlPool`: the raw client of a SQL connection, a sqlx pool of one of the backends.

use std::fmt;
use std::sync::Arc;

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{DataFrame, Param, Result};

use crate::backend::{self, Sink};
use crate::error::{classify, classify_connect};
use crate::options::SqlConfig;
use crate::placeholders::{self, Rewritten, Style};
use crate::url::Backend;

/// The rows per Arrow batch of a cached query's result.
pub(crate) const QUERY_BATCH_ROWS: usize = 65_536;

/// A sqlx pool of one backend: the raw client of a [`SqlConnection`](crate::SqlConnection).
///
/// Reach the sqlx pool itself with [`as_sqlite`](Self::as_sqlite), [`as_postgres`](Self::as_postgres)
/// or [`as_mysql`](Self::as_mysql) for anything this crate does not wrap.
pub struct SqlPool {
    kind: PoolKind,
    backend: Backend,
    redacted_url: String,
    echo: bool,
    /// MySQL/MariaDB: the bulk reader for whole results, where the settings allow one.
    #[cfg(feature = "mysql")]
    bulk: Option<backend::mysql_wire::BulkReader>,
}

enum PoolKind {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

impl SqlPool {
    /// Connects a pool (one connection is opened, so a bad configuration fails here).
    pub(crate) async fn connect(config: &SqlConfig) -> Result<Self> {
        let kind = match config.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => PoolKind::Sqlite(pool(config, crate::options::sqlite_options(config)?).await?),
            #[cfg(feature = "postgres")]
            Backend::Postgres => PoolKind::Postgres(pool(config, crate::options::postgres_options(config)?).await?),
            #[cfg(feature = "mysql")]
            Backend::MySql => PoolKind::MySql(pool(config, crate::options::mysql_options(config)?).await?),
            #[allow(unreachable_patterns)]
            other => {
                // `SqlConfig::from_params` already refuses backends whose feature is off
                return Err(connections_core::Error::connect(format!("{other:?} support is not compiled in")));
            }
        };
        tracing::debug!(url = %config.url.render_redacted(), "connected");
        #[cfg(feature = "mysql")]
        let bulk = match &kind {
            PoolKind::MySql(pool) => {
                backend::mysql_wire::BulkReader::new(&pool.connect_options(), &config.url, &config.engine)
            }
            #[allow(unreachable_patterns)]
            _ => None,
        };
        Ok(Self {
            kind,
            backend: config.backend,
            redacted_url: config.url.render_redacted(),
            echo: config.engine.echo,
            #[cfg(feature = "mysql")]
            bulk,
        })
    }

    /// The database the pool talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection URL with the password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// The sqlx SQLite pool, if this is SQLite.
    #[cfg(feature = "sqlite")]
    pub fn as_sqlite(&self) -> Option<&sqlx::SqlitePool> {
        #[allow(irrefutable_let_patterns)]
        if let PoolKind::Sqlite(pool) = &self.kind { Some(pool) } else { None }
    }

    /// The sqlx PostgreSQL pool, if this is PostgreSQL.
    #[cfg(feature = "postgres")]
    pub fn as_postgres(&self) -> Option<&sqlx::PgPool> {
        #[allow(irrefutable_let_patterns)]
        if let PoolKind::Postgres(pool) = &self.kind { Some(pool) } else { None }
    }

    /// The sqlx MySQL/MariaDB pool, if this is MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    pub fn as_mysql(&self) -> Option<&sqlx::MySqlPool> {
        #[allow(irrefutable_let_patterns)]
        if let PoolKind::MySql(pool) = &self.kind { Some(pool) } else { None }
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        #[cfg(feature = "mysql")]
        if let Some(bulk) = &self.bulk {
            bulk.close().await;
        }
        match &self.kind {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => pool.close().await,
            #[cfg(feature = "mysql")]
            PoolKind::MySql(pool) => pool.close().await,
        }
    }

    /// The placeholder style of the backend.
    pub(crate) fn style(&self) -> Style {
        match self.backend {
            Backend::Postgres => Style::Dollar,
            _ => Style::Question,
        }
    }

    /// Rewrites `:name` placeholders for the backend, and logs the statement when `echo` is on.
    pub(crate) fn prepare<'q>(&self, sql: &'q str, params: &[(String, Param)]) -> Result<Rewritten<'q>> {
        let rewritten = placeholders::rewrite(sql, self.style(), params)?;
        if self.echo {
            tracing::info!(target: "connections_sql::echo", sql = %rewritten.sql, "statement");
        }
        Ok(rewritten)
    }

    /// Runs a query into a `DataFrame`.
    pub(crate) async fn query_frame(&self, sql: &str, params: &[(String, Param)]) -> Result<DataFrame> {
        let mut batches = Vec::new();
        let schema = self.fetch(sql, params, QUERY_BATCH_ROWS, &mut Sink::Collect(&mut batches)).await?;
        frame(schema, batches)
    }

    /// Runs a query, handing batches to `sink`.
    pub(crate) async fn fetch(
        &self,
        sql: &str,
        params: &[(String, Param)],
        batch_size: usize,
        sink: &mut Sink<'_>,
    ) -> Result<SchemaRef> {
        let rewritten = self.prepare(sql, params)?;
        match &self.kind {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(classify)?;
                backend::sqlite::fetch_any(&mut conn, &rewritten.sql, &rewritten.values, batch_size, sink, None).await
            }
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(classify)?;
                if let Sink::Collect(batches) = sink
                    && rewritten.values.is_empty()
                    && let Some((schema, found)) =
                        backend::postgres_copy::collect(&mut conn, &rewritten.sql, batch_size).await?
                {
                    batches.extend(found);
                    return Ok(schema);
                }
                backend::postgres::fetch(&mut conn, &rewritten.sql, &rewritten.values, batch_size, sink).await
            }
            #[cfg(feature = "mysql")]
            PoolKind::MySql(pool) => {
                if rewritten.values.is_empty()
                    && let Some(bulk) = &self.bulk
                    && let Some(schema) = bulk.fetch(&rewritten.sql, batch_size, sink).await?
                {
                    return Ok(schema);
                }
                let mut conn = pool.acquire().await.map_err(classify)?;
                backend::mysql::fetch(&mut conn, &rewritten.sql, &rewritten.values, batch_size, sink).await
            }
        }
    }

    /// Runs a statement; the number of rows it changed.
    pub(crate) async fn execute(&self, sql: &str, params: &[(String, Param)]) -> Result<u64> {
        let rewritten = self.prepare(sql, params)?;
        match &self.kind {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(classify)?;
                backend::sqlite::execute(&mut conn, &rewritten.sql, &rewritten.values).await
            }
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(classify)?;
                backend::postgres::execute(&mut conn, &rewritten.sql, &rewritten.values).await
            }
            #[cfg(feature = "mysql")]
            PoolKind::MySql(pool) => {
                let mut conn = pool.acquire().await.map_err(classify)?;
                backend::mysql::execute(&mut conn, &rewritten.sql, &rewritten.values).await
            }
        }
    }

    /// Begins a transaction.
    pub(crate) async fn begin(self: &Arc<Self>) -> Result<crate::session::SqlSession> {
        let tx = match &self.kind {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => crate::session::Tx::Sqlite(pool.begin().await.map_err(classify)?),
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => crate::session::Tx::Postgres(pool.begin().await.map_err(classify)?),
            #[cfg(feature = "mysql")]
            PoolKind::MySql(pool) => crate::session::Tx::MySql(pool.begin().await.map_err(classify)?),
        };
        Ok(crate::session::SqlSession::new(tx, Arc::clone(self)))
    }

    /// Streams a query's result in batches of `batch_size` rows from a task of its own.
    pub(crate) fn stream(
        self: &Arc<Self>,
        sql: Arc<str>,
        params: Vec<(String, Param)>,
        batch_size: usize,
    ) -> tokio::sync::mpsc::Receiver<Result<RecordBatch>> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = pool.fetch(&sql, &params, batch_size, &mut Sink::Channel(&tx)).await {
                let _ = tx.send(Err(error)).await; // the receiver may be gone: nothing to tell
            }
        });
        rx
    }
}

/// A pool of `DB` with the configuration's engine options, with one connection opened.
///
/// For a server, one plain connection is made and closed first: a refused connection, a wrong
/// password or an unknown database then fails at once with the server's own reason, where the
/// pool would keep retrying until its acquire timeout and report only that it timed out.
async fn pool<DB: sqlx::Database>(
    config: &SqlConfig,
    options: <DB::Connection as sqlx::Connection>::Options,
) -> Result<sqlx::Pool<DB>> {
    use sqlx::{ConnectOptions as _, Connection as _};
    if config.backend != Backend::Sqlite {
        let probe = options.connect().await.map_err(classify_connect)?;
        let _ = probe.close().await; // it served its purpose; a failed goodbye changes nothing
    }
    crate::options::pool_options::<DB>(&config.engine).connect_with(options).await.map_err(classify_connect)
}

/// A `DataFrame` of collected batches. A column whose type was decided late (SQLite) or whose
/// decimal scale grew has another type in earlier batches: those are cast to the final schema.
pub(crate) fn frame(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<DataFrame> {
    let batches = batches.into_iter().map(|b| crate::columns::conform(b, &schema)).collect::<Result<Vec<_>>>()?;
    DataFrame::new(schema, batches)
}

impl fmt::Debug for SqlPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlPool")
            .field("backend", &self.backend)
            .field("url", &self.redacted_url)
            .field("echo", &self.echo)
            .finish_non_exhaustive()
    }
}
