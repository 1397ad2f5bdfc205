//! `SqlSession`: a transaction on one connection, the counterpart of `conn.session`.

use std::fmt;
use std::sync::Arc;

use connections_core::{DataFrame, Param, Result};

use crate::backend::{self, Sink};
use crate::error::classify;
use crate::pool::{QUERY_BATCH_ROWS, SqlPool};

/// An open transaction. Statements and queries in it see each other's changes; nothing is
/// visible to others until [`commit`](Self::commit). Dropped without a commit, it rolls back.
///
/// Queries in a session are not cached.
pub struct SqlSession {
    tx: Tx,
    pool: Arc<SqlPool>,
}

pub(crate) enum Tx {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

impl SqlSession {
    pub(crate) fn new(tx: Tx, pool: Arc<SqlPool>) -> Self {
        Self { tx, pool }
    }

    /// Runs a statement in the transaction; the number of rows it changed.
    pub async fn execute(&mut self, sql: &str) -> Result<u64> {
        self.execute_with(sql, Vec::<(String, Param)>::new()).await
    }

    /// Runs a statement with named (`:name`) parameters.
    pub async fn execute_with<I, K, V>(&mut self, sql: &str, params: I) -> Result<u64>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Param>,
    {
        let params = crate::named(params);
        let pool = Arc::clone(&self.pool);
        let work = pool.bounded(async {
            let rewritten = self.pool.prepare(sql, &params)?;
            match &mut self.tx {
                #[cfg(feature = "sqlite")]
                Tx::Sqlite(tx) => {
                    let deadline = self.pool.deadline();
                    backend::sqlite::execute_within(tx, &rewritten.sql, &rewritten.values, deadline).await
                }
                #[cfg(feature = "postgres")]
                Tx::Postgres(tx) => backend::postgres::execute(tx, &rewritten.sql, &rewritten.values).await,
                #[cfg(feature = "mysql")]
                Tx::MySql(tx) => backend::mysql::execute(tx, &rewritten.sql, &rewritten.values).await,
            }
        });
        work.await.map_err(|e| pool.named(e))
    }

    /// Runs a query in the transaction (uncached).
    pub async fn query(&mut self, sql: &str) -> Result<DataFrame> {
        self.query_with(sql, Vec::<(String, Param)>::new()).await
    }

    /// Runs a query with named (`:name`) parameters (uncached).
    pub async fn query_with<I, K, V>(&mut self, sql: &str, params: I) -> Result<DataFrame>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Param>,
    {
        let params = crate::named(params);
        let pool = Arc::clone(&self.pool);
        let work = pool.bounded(async {
            let rewritten = self.pool.prepare(sql, &params)?;
            let sql = rewritten.single_query()?;
            let mut batches = Vec::new();
            let sink = &mut Sink::Collect(&mut batches);
            let values = &rewritten.values;
            let schema = match &mut self.tx {
                #[cfg(feature = "sqlite")]
                Tx::Sqlite(tx) => {
                    let deadline = self.pool.deadline();
                    backend::sqlite::fetch_any(tx, sql, values, QUERY_BATCH_ROWS, sink, deadline).await?.0
                }
                #[cfg(feature = "postgres")]
                Tx::Postgres(tx) => backend::postgres::fetch(tx, sql, values, QUERY_BATCH_ROWS, sink).await?,
                #[cfg(feature = "mysql")]
                Tx::MySql(tx) => backend::mysql::fetch(tx, sql, values, QUERY_BATCH_ROWS, sink).await?,
            };
            crate::pool::frame(schema, batches)
        });
        work.await.map_err(|e| pool.named(e))
    }

    /// Makes the transaction's changes permanent.
    pub async fn commit(self) -> Result<()> {
        match self.tx {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.commit().await.map_err(classify),
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => tx.commit().await.map_err(classify),
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => tx.commit().await.map_err(classify),
        }
        .map_err(|e| self.pool.named(e))
    }

    /// Undoes the transaction's changes (dropping the session does the same).
    pub async fn rollback(self) -> Result<()> {
        match self.tx {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.rollback().await.map_err(classify),
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => tx.rollback().await.map_err(classify),
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => tx.rollback().await.map_err(classify),
        }
        .map_err(|e| self.pool.named(e))
    }
}

impl fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSession").field("pool", &self.pool).finish_non_exhaustive()
    }
}
