//! `SqlPool`: the raw client of a SQL connection, a sqlx pool of one of the backends.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{DataFrame, Error, Param, Result};

use crate::backend::{self, Sink};
use crate::error::{classify, classify_connect, within};
use crate::options::{SqlConfig, pool_options};
use crate::placeholders::{self, Rewritten, Style};
use crate::url::Backend;

/// The rows per Arrow batch of a cached query's result.
pub(crate) const QUERY_BATCH_ROWS: usize = 65_536;

/// A sqlx pool of one backend: the raw client of a [`SqlConnection`](crate::SqlConnection).
///
/// Reach the sqlx pool itself with [`as_sqlite`](Self::as_sqlite), [`as_postgres`](Self::as_postgres)
/// or [`as_mysql`](Self::as_mysql) for anything this crate does not wrap.
pub struct SqlPool {
    /// The name of the connection the pool belongs to, for errors.
    name: String,
    kind: PoolKind,
    backend: Backend,
    redacted_url: String,
    echo: bool,
    /// How long one query or statement may run: `query_timeout`.
    query_timeout: Option<std::time::Duration>,
    /// MySQL/MariaDB: the bulk reader for whole results, where the settings allow one.
    #[cfg(feature = "mysql")]
    bulk: Option<backend::mysql_wire::BulkReader>,
    /// How many results each read path has served.
    served: ServedCounters,
}

/// How many query results each read path of a [`SqlPool`] has served: the fast paths
/// (PostgreSQL's binary `COPY`, the MySQL/MariaDB bulk reader, SQLite's C API) and the
/// row-by-row path through sqlx. Every path gives the same Arrow data; these counts show which
/// one answered, for tests and diagnostics.
///
/// ```no_run
/// # async fn demo(conn: &connections_sql::SqlConnection) -> connections_core::Result<()> {
/// let pool = conn.pool().await?;
/// conn.query("select 1 as one").await?;
/// println!("{:?}", pool.served());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Served {
    /// Results read row by row through sqlx.
    pub rows: u64,
    /// PostgreSQL results read as binary `COPY`.
    pub postgres_copy: u64,
    /// MySQL/MariaDB results read by the bulk reader.
    pub mysql_bulk: u64,
    /// SQLite results stepped through SQLite's C API.
    pub sqlite_c_api: u64,
}

/// The live counters behind [`Served`].
#[derive(Default)]
struct ServedCounters {
    rows: AtomicU64,
    postgres_copy: AtomicU64,
    mysql_bulk: AtomicU64,
    sqlite_c_api: AtomicU64,
}

impl ServedCounters {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
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
        #[cfg(feature = "mysql")]
        #[allow(unused_assignments)] // built with MySQL alone, every path assigns it
        let mut with_bulk = false;
        let kind = match config.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let options = crate::options::sqlite_options(config)?;
                PoolKind::Sqlite(pool(config, options, pool_options(&config.engine), |_, options| options).await?)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let mut options = crate::options::postgres_options(config)?;
                if let Some(limit) = config.engine.query_timeout {
                    // the server stops the statement too, just after the client gives up on it
                    let grace = limit + std::time::Duration::from_millis(500);
                    options = options.options([("statement_timeout", grace.as_millis().to_string())]);
                }
                PoolKind::Postgres(pool(config, options, pool_options(&config.engine), watch_for_disconnects).await?)
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                let options = crate::options::mysql_options(config)?;
                // The bulk reader's connection counts inside `pool_size`: sqlx's pool gets one
                // connection less, and a pool of one has no bulk reader.
                let mut engine = config.engine.clone();
                with_bulk =
                    engine.max_connections >= 2 && backend::mysql_wire::BulkReader::supports(&options, &config.url);
                if with_bulk {
                    engine.max_connections -= 1;
                }
                let pool_options = with_statement_time_limit(pool_options(&engine), engine.query_timeout);
                PoolKind::MySql(pool(config, options, pool_options, |_, options| options).await?)
            }
            #[allow(unreachable_patterns)]
            other => {
                // `SqlConfig::from_params` already refuses backends whose feature is off
                return Err(connections_core::Error::connect(format!("{other:?} support is not compiled in")));
            }
        };
        tracing::debug!(url = %config.url.render_redacted(), "connected");
        #[cfg(feature = "mysql")]
        let bulk = match &kind {
            PoolKind::MySql(pool) if with_bulk => {
                backend::mysql_wire::BulkReader::new(&pool.connect_options(), &config.url, &config.engine, pool.clone())
            }
            #[allow(unreachable_patterns)]
            _ => None,
        };
        Ok(Self {
            name: config.name().to_owned(),
            kind,
            backend: config.backend,
            redacted_url: config.url.render_redacted(),
            echo: config.engine.echo,
            query_timeout: config.engine.query_timeout,
            #[cfg(feature = "mysql")]
            bulk,
            served: ServedCounters::default(),
        })
    }

    /// How many results each read path has served so far.
    pub fn served(&self) -> Served {
        let c = &self.served;
        Served {
            rows: c.rows.load(Ordering::Relaxed),
            postgres_copy: c.postgres_copy.load(Ordering::Relaxed),
            mysql_bulk: c.mysql_bulk.load(Ordering::Relaxed),
            sqlite_c_api: c.sqlite_c_api.load(Ordering::Relaxed),
        }
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

    /// Runs a query into a `DataFrame`, within `query_timeout`.
    pub(crate) async fn query_frame(&self, sql: &str, params: &[(String, Param)]) -> Result<DataFrame> {
        // boxed: the backends' futures together are large, and this one is held by the cache
        self.bounded(Box::pin(async {
            let mut batches = Vec::new();
            let schema = self.fetch(sql, params, QUERY_BATCH_ROWS, &mut Sink::Collect(&mut batches)).await?;
            frame(schema, batches)
        }))
        .await
    }

    /// An error of this pool's connection, carrying its name.
    pub(crate) fn named(&self, error: Error) -> Error {
        error.for_connection(&self.name, "sql")
    }

    /// When a statement starting now must end, by `query_timeout`: what SQLite, whose reads
    /// run on the runtime's thread where a timer cannot interrupt them, checks as it goes.
    #[cfg(feature = "sqlite")]
    pub(crate) fn deadline(&self) -> Option<backend::sqlite::TimeLimit> {
        self.query_timeout.map(backend::sqlite::TimeLimit::from_now)
    }

    /// Runs `work` (one query or statement) within `query_timeout`, if one is set.
    pub(crate) async fn bounded<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        within(self.query_timeout, "the statement", "query_timeout", Error::statement, work).await
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
        let sql = rewritten.single_query()?;
        match &self.kind {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => {
                let mut conn = Checkout::acquire(pool).await?;
                let deadline = self.deadline();
                let read =
                    backend::sqlite::fetch_any(&mut conn, sql, &rewritten.values, batch_size, sink, deadline).await;
                let read = conn.finish(read)?;
                ServedCounters::count(if read.1 { &self.served.sqlite_c_api } else { &self.served.rows });
                Ok(read.0)
            }
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => {
                let mut conn = Checkout::acquire(pool).await?;
                let values = &rewritten.values;
                let sql = backend::postgres::keyed_sql(sql, values);
                let plan = backend::postgres::describe(&mut conn, &sql, values).await;
                let plan = conn.finish_step(plan)?;
                if let Sink::Collect(batches) = sink
                    && values.is_empty()
                    && let Some(copy_sql) = backend::postgres_copy::copyable(&sql)
                {
                    // an error ends a COPY out of step with sqlx's protocol state: never reuse
                    let (schema, found) =
                        backend::postgres_copy::collect(&mut conn, copy_sql, &plan, batch_size).await?;
                    batches.extend(found);
                    ServedCounters::count(&self.served.postgres_copy);
                    conn.done();
                    return Ok(schema);
                }
                let schema = backend::postgres::fetch_planned(&mut conn, &sql, values, &plan, batch_size, sink).await;
                ServedCounters::count(&self.served.rows);
                conn.finish(schema)
            }
            #[cfg(feature = "mysql")]
            PoolKind::MySql(pool) => {
                if rewritten.values.is_empty()
                    && let Some(bulk) = &self.bulk
                    && let Some(schema) = bulk.fetch(sql, batch_size, sink).await?
                {
                    ServedCounters::count(&self.served.mysql_bulk);
                    return Ok(schema);
                }
                let mut conn = Checkout::acquire(pool).await?;
                let schema = backend::mysql::fetch(&mut conn, sql, &rewritten.values, batch_size, sink).await;
                ServedCounters::count(&self.served.rows);
                conn.finish(schema)
            }
        }
    }

    /// Runs a statement within `query_timeout`; the number of rows it changed.
    pub(crate) async fn execute(&self, sql: &str, params: &[(String, Param)]) -> Result<u64> {
        self.bounded(self.execute_unbounded(sql, params)).await
    }

    async fn execute_unbounded(&self, sql: &str, params: &[(String, Param)]) -> Result<u64> {
        let rewritten = self.prepare(sql, params)?;
        match &self.kind {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => {
                let mut conn = Checkout::acquire(pool).await?;
                let deadline = self.deadline();
                let changed =
                    backend::sqlite::execute_within(&mut conn, &rewritten.sql, &rewritten.values, deadline).await;
                conn.finish(changed)
            }
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => {
                let mut conn = Checkout::acquire(pool).await?;
                let changed = backend::postgres::execute(&mut conn, &rewritten.sql, &rewritten.values).await;
                conn.finish(changed)
            }
            #[cfg(feature = "mysql")]
            PoolKind::MySql(pool) => {
                let mut conn = Checkout::acquire(pool).await?;
                let changed = backend::mysql::execute(&mut conn, &rewritten.sql, &rewritten.values).await;
                conn.finish(changed)
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

    /// Streams a query's result in batches of `batch_size` rows from a task of its own; the
    /// result's schema follows the last batch (the schema of an empty result too).
    pub(crate) fn stream(
        self: &Arc<Self>,
        sql: Arc<str>,
        params: Vec<(String, Param)>,
        batch_size: usize,
    ) -> (tokio::sync::mpsc::Receiver<Result<RecordBatch>>, tokio::sync::oneshot::Receiver<SchemaRef>) {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let (schema_tx, schema_rx) = tokio::sync::oneshot::channel();
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            match pool.fetch(&sql, &params, batch_size, &mut Sink::Channel(&tx)).await {
                // sent before `tx` is dropped: there when the batches have ended
                Ok(schema) => drop(schema_tx.send(schema)),
                Err(error) => drop(tx.send(Err(pool.named(error))).await), // the receiver may be gone
            }
        });
        (rx, schema_rx)
    }
}

/// A pooled connection lent to one statement. Unless the statement ends with [`done`](Self::done),
/// having failed or been cancelled (its future dropped mid-result), the connection is closed
/// instead of going back to the pool: a connection is either clean or discarded, never handed
/// to the next caller with half a result or an unfinished protocol exchange still in it.
struct Checkout<DB: sqlx::Database> {
    conn: sqlx::pool::PoolConnection<DB>,
    clean: bool,
}

impl<DB: sqlx::Database> Checkout<DB> {
    async fn acquire(pool: &sqlx::Pool<DB>) -> Result<Self> {
        Ok(Self { conn: pool.acquire().await.map_err(classify)?, clean: false })
    }

    /// The statement finished: the connection may go back to the pool.
    fn done(mut self) {
        self.clean = true;
    }

    /// The statement ended with `result`: the connection goes back to the pool after a success
    /// or an error the server reported about the statement (sqlx's protocol state is then in
    /// step: it reads up to the server's next ready message before the next statement), and
    /// is closed after anything else (a lost connection, a value that failed to decode with
    /// rows still unread).
    fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        self.clean = result.as_ref().map_or_else(crate::error::reported_by_server, |_| true);
        result
    }

    /// [`finish`](Self::finish) for a step after which the statement goes on: only an error
    /// decides (the connection stays lent on success).
    fn finish_step<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result {
            self.clean = crate::error::reported_by_server(error);
        }
        result
    }
}

impl<DB: sqlx::Database> std::ops::Deref for Checkout<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for Checkout<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

impl<DB: sqlx::Database> Drop for Checkout<DB> {
    fn drop(&mut self) {
        if !self.clean {
            tracing::debug!("a statement failed or was cancelled: its connection is closed, not reused");
            self.conn.close_on_drop();
        }
    }
}

/// A pool of `DB` with the configuration's engine options, with one connection opened.
///
/// For a server, one plain connection is made and closed first: a refused connection, a wrong
/// password or an unknown database then fails at once with the server's own reason, where the
/// pool would keep retrying until its acquire timeout and report only that it timed out.
///
/// `adjust` sees that first connection and may change the options of the pool's connections
/// (PostgreSQL: settings that depend on the server's version).
///
/// `pool_options` are the engine options' (`crate::options::pool_options`), with whatever a
/// backend adds.
async fn pool<DB: sqlx::Database>(
    config: &SqlConfig,
    mut options: <DB::Connection as sqlx::Connection>::Options,
    pool_options: sqlx::pool::PoolOptions<DB>,
    adjust: impl FnOnce(
        &DB::Connection,
        <DB::Connection as sqlx::Connection>::Options,
    ) -> <DB::Connection as sqlx::Connection>::Options,
) -> Result<sqlx::Pool<DB>> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let limit = (config.backend != Backend::Sqlite).then_some(config.engine.connect_timeout);
    let connecting = "opening a connection";
    if config.backend != Backend::Sqlite {
        let probe = within(limit, connecting, "connect_timeout", Error::connect, async {
            options.connect().await.map_err(classify_connect)
        })
        .await?;
        options = adjust(&probe, options);
        let _ = probe.close().await; // it served its purpose; a failed goodbye changes nothing
    }
    let pool = pool_options.connect_with(options);
    within(limit, connecting, "connect_timeout", Error::connect, async { pool.await.map_err(classify_connect) }).await
}

/// With a `query_timeout`, each MySQL/MariaDB connection of the pool gets a server-side limit
/// too, half a second longer, so that a statement whose client gave up stops on the server
/// (MariaDB's `max_statement_time`; MySQL's `max_execution_time`, which covers `SELECT`s only),
/// where closing the connection would leave it running to its end.
#[cfg(feature = "mysql")]
fn with_statement_time_limit(
    pool_options: sqlx::pool::PoolOptions<sqlx::MySql>,
    limit: Option<std::time::Duration>,
) -> sqlx::pool::PoolOptions<sqlx::MySql> {
    let Some(limit) = limit else { return pool_options };
    let grace = limit + std::time::Duration::from_millis(500);
    let mariadb = format!("SET SESSION max_statement_time = {:.3}", grace.as_secs_f64());
    let mysql = format!("SET SESSION max_execution_time = {}", grace.as_millis());
    pool_options.after_connect(move |conn, _| {
        let (mariadb, mysql) = (mariadb.clone(), mysql.clone());
        Box::pin(async move {
            use sqlx::Executor as _;
            // MariaDB knows the first; MySQL only the second
            if conn.execute(mariadb.as_str()).await.is_err() {
                conn.execute(mysql.as_str()).await?;
            }
            Ok(())
        })
    })
}

/// PostgreSQL 14 and later check every second, while a statement runs, whether its client is
/// still there (`client_connection_check_interval`), so a statement whose caller went away (a
/// dropped future, a `query_timeout`, which closes the connection) stops on the server too
/// instead of running to its end. Earlier servers lack the setting and are left as they are.
#[cfg(feature = "postgres")]
fn watch_for_disconnects(
    probe: &sqlx::PgConnection,
    options: sqlx::postgres::PgConnectOptions,
) -> sqlx::postgres::PgConnectOptions {
    if probe.server_version_num().is_some_and(|v| v >= 140_000) {
        options.options([("client_connection_check_interval", "1000")])
    } else {
        options
    }
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
