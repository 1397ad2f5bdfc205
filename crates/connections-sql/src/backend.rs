//! One module per database: how its rows become Arrow columns, and how statements run.

use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{Error, Result};
use tokio::sync::mpsc;

#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(feature = "mysql")]
pub(crate) mod mysql_wire;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "postgres")]
pub(crate) mod postgres_copy;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_fast;

/// Where finished batches go: collected for a cached query, or sent down a channel for a stream.
pub(crate) enum Sink<'a> {
    /// Keep every batch.
    Collect(&'a mut Vec<RecordBatch>),
    /// Send each batch as soon as it is full (the receiver's pace limits the query's).
    Channel(&'a mpsc::Sender<Result<RecordBatch>>),
}

impl Sink<'_> {
    /// Hands over one batch. A dropped stream receiver stops the query.
    pub(crate) async fn put(&mut self, batch: RecordBatch) -> Result<()> {
        match self {
            Self::Collect(batches) => {
                batches.push(batch);
                Ok(())
            }
            Self::Channel(tx) => tx.send(Ok(batch)).await.map_err(|_| Error::statement("the stream was dropped")),
        }
    }
}

/// The fetch loop of the sqlx row paths of SQLite and MySQL: rows into column builders, batches into the sink; an
/// empty result still yields its schema (from a prepared statement).
#[cfg(any(feature = "sqlite", feature = "mysql"))]
macro_rules! fetch_loop {
    ($conn:expr, $query:expr, $sql:expr, $batch_size:expr, $sink:expr, $plan:expr, $append:expr) => {{
        use futures_util::TryStreamExt as _;
        use sqlx::{Executor as _, Row as _, Statement as _};
        let mut batches: Option<($crate::columns::Batches, Vec<_>)> = None;
        let mut row_number = 0_usize;
        {
            let mut rows = $conn.fetch($query);
            while let Some(row) = rows.try_next().await.map_err($crate::error::classify)? {
                let (columns, decoders) = batches.get_or_insert_with(|| {
                    let (plan, decoders): (Vec<_>, Vec<_>) = row.columns().iter().map($plan).unzip();
                    ($crate::columns::Batches::new(plan, $batch_size), decoders)
                });
                for (index, (column, decoder)) in columns.columns().iter_mut().zip(decoders.iter()).enumerate() {
                    $append(column, decoder, &row, index, row_number)?;
                }
                row_number += 1;
                if let Some(batch) = columns.row_done()? {
                    $sink.put(batch).await?;
                }
            }
        }
        let columns = match batches {
            Some((columns, _)) => columns,
            None => {
                let statement = $conn.prepare($sql).await.map_err($crate::error::classify)?;
                let (plan, _decoders): (Vec<_>, Vec<_>) = statement.columns().iter().map($plan).unzip();
                $crate::columns::Batches::new(plan, $batch_size)
            }
        };
        let (schema, rest) = columns.into_batches()?;
        for batch in rest {
            $sink.put(batch).await?;
        }
        Ok::<_, connections_core::Error>(schema)
    }};
}
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) use fetch_loop;

/// The `fetch` and `execute` functions of a backend module, over its connection type and the
/// query to start from (MySQL: with an empty argument list, so that even a parameterless query
/// uses the binary protocol, whose dates need no text parsing).
#[cfg(feature = "sqlite")]
macro_rules! backend_fns {
    ($conn:ty) => {
        $crate::backend::backend_fns!($conn, |sql| sqlx::query(sql));
    };
    ($conn:ty, $start:expr) => {
        /// Runs a query on one connection, handing batches of `batch_size` rows to `sink`.
        pub(crate) async fn fetch(
            conn: &mut $conn,
            sql: &str,
            values: &[connections_core::Param],
            batch_size: usize,
            sink: &mut $crate::backend::Sink<'_>,
        ) -> connections_core::Result<connections_core::arrow::datatypes::SchemaRef> {
            let query = $crate::backend::bind_params!(($start)(sql), values);
            $crate::backend::fetch_loop!(&mut *conn, query, sql, batch_size, sink, plan, append)
        }

        /// Runs a statement; the number of rows it changed.
        pub(crate) async fn execute(
            conn: &mut $conn,
            sql: &str,
            values: &[connections_core::Param],
        ) -> connections_core::Result<u64> {
            let query = $crate::backend::bind_params!(($start)(sql), values);
            query.execute(conn).await.map(|done| done.rows_affected()).map_err($crate::error::classify)
        }
    };
}
#[cfg(feature = "sqlite")]
pub(crate) use backend_fns;

/// Binds parameter values to a sqlx query, in order.
macro_rules! bind_params {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                connections_core::Param::Null => query.bind(None::<String>),
                connections_core::Param::Bool(b) => query.bind(*b),
                connections_core::Param::I64(i) => query.bind(*i),
                connections_core::Param::F64(x) => query.bind(*x),
                connections_core::Param::Str(s) => query.bind(s.as_str()),
                connections_core::Param::Bytes(b) => query.bind(b.as_slice()),
                other => {
                    return Err(connections_core::Error::statement(format!(
                        "parameters of type {} are not supported by SQL connections",
                        other.type_name()
                    )));
                }
            };
        }
        query
    }};
}
pub(crate) use bind_params;

/// Whether the statement is a query that changes nothing (`SELECT`, `VALUES`, `TABLE`): what the
/// fast paths of PostgreSQL (COPY wraps it) and MySQL (the bulk reader) take.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn is_plain_query(sql: &str) -> bool {
    let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    ["select", "values", "table"].iter().any(|k| first.eq_ignore_ascii_case(k))
}

/// The error for a value whose type does not fit its column (never shows the value).
pub(crate) fn mismatch(column: &str, row: usize, found: &str, expected: &str) -> Error {
    Error::statement(format!("column `{column}`, row {row}: a {found} value does not fit the column's type {expected}"))
}

/// The error for a value that does not decode (never shows the value).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn undecodable(column: &str, type_name: &str, row: usize, why: impl std::fmt::Display) -> Error {
    Error::statement(format!("column `{column}` ({type_name}), row {row}: cannot decode the value: {why}"))
}

/// A stored integer as a Boolean: 0 is false, 1 is true, and any other value is an error naming
/// the column and the row (MySQL's `BOOLEAN` is a `TINYINT(1)` and SQLite's a plain integer, so
/// both can hold 2 or -1; reading those as `true` would change their meaning). The message never
/// shows the value.
#[allow(dead_code)] // used by the MySQL and SQLite readers, which are being changed to it
pub(crate) fn bool_from_int(value: i64, column: &str, row: usize) -> Result<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::statement(format!(
            "column `{column}`, row {row}: the value is not a boolean (only 0 and 1 are); cast the column to an integer in the query to read it as a number"
        ))),
    }
}

/// The error for a column type with no Arrow mapping.
pub(crate) fn unsupported(column: &str, type_name: &str) -> Error {
    Error::statement(format!(
        "column `{column}` has type {type_name}, which has no Arrow mapping yet; cast it in the query (for example to text)"
    ))
}

#[cfg(all(test, any(feature = "postgres", feature = "mysql")))]
mod tests {
    #[test]
    fn only_plain_queries_take_the_fast_paths() {
        use super::is_plain_query;
        assert!(is_plain_query("  SELECT 1"));
        assert!(is_plain_query("values (1)"));
        assert!(is_plain_query("table t"));
        assert!(!is_plain_query("with x as (delete from t returning *) select * from x"));
        assert!(!is_plain_query("insert into t values (1)"));
        assert!(!is_plain_query("selection"));
    }
}
