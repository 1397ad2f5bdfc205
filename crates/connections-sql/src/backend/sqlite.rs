//! SQLite rows to Arrow.
//!
//! SQLite types values, not columns. The rule: a column's **declared type** decides its Arrow
//! type (`INTEGER`/`INT...` → Int64, `REAL`/`FLOA...`/`DOUB...` → Float64, `TEXT`/`CHAR`/`CLOB` →
//! Utf8, `BLOB` → Binary, `BOOLEAN` → Boolean, `DATE` → Date32, `TIME` → Time64(µs),
//! `DATETIME`/`TIMESTAMP` → Timestamp(µs)); a column without one (an expression) or with
//! another (`NUMERIC`, `DECIMAL(10,2)`) takes the storage class of its **first non-NULL value**.
//! A later value of another class is converted where SQLite itself would: a real value turns a
//! column of integers into Float64 (as `coalesce(price, 0)` needs), an integer goes into a
//! Float64 column, a number into a Utf8 column as its text, text into a Binary column as its
//! bytes; anything else (text in a numeric column, say) fails the query, naming the column and
//! the row, instead of silently changing data.

use connections_core::Result;
use sqlx::sqlite::{SqliteColumn, SqliteConnection, SqliteRow, SqliteValueRef};
use sqlx::types::chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use sqlx::{Column as _, Decode, Row as _, Sqlite, TypeInfo as _, ValueRef as _};

use super::{Sink, mismatch};
use crate::columns::{Column, Kind, date32, time64, timestamp};
use crate::error::classify;

/// The columns' declared names, for messages.
pub(crate) struct Decoder {
    name: String,
}

fn plan(column: &SqliteColumn) -> ((String, Kind), Decoder) {
    let kind = match column.type_info().name() {
        "INTEGER" => Kind::I64,
        "REAL" => Kind::F64,
        "TEXT" => Kind::Text,
        "BLOB" => Kind::Bytes,
        "BOOLEAN" => Kind::Bool,
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "DATETIME" => Kind::Timestamp,
        _ => Kind::Undecided,
    };
    ((column.name().to_owned(), kind), Decoder { name: column.name().to_owned() })
}

fn decode<'r, T: Decode<'r, Sqlite>>(value: SqliteValueRef<'r>, name: &str, row: usize) -> Result<T> {
    T::decode(value).map_err(|e| {
        connections_core::Error::statement(format!("column `{name}`, row {row}: cannot decode the value: {e}"))
    })
}

fn append(column: &mut Column, decoder: &Decoder, row: &SqliteRow, index: usize, number: usize) -> Result<()> {
    let value = row.try_get_raw(index).map_err(classify)?;
    if value.is_null() {
        column.append_null();
        return Ok(());
    }
    let class = value.type_info().name().to_owned(); // INTEGER, REAL, TEXT or BLOB
    if let Column::Undecided(_) = column {
        let kind = match class.as_str() {
            "INTEGER" => Kind::I64,
            "REAL" => Kind::F64,
            "BLOB" => Kind::Bytes,
            _ => Kind::Text,
        };
        column.decide(kind, 1024);
    }
    if class == "REAL" && matches!(column, Column::I64(_)) {
        column.widen_to_f64();
    }
    let name = decoder.name.as_str();
    let bad = |expected: &str| mismatch(name, number, &class, expected);
    match (column, class.as_str()) {
        (Column::I64(b), "INTEGER") => b.append_value(decode(value, name, number)?),
        (Column::F64(b), "REAL" | "INTEGER") => b.append_value(decode(value, name, number)?),
        (Column::Text(b), "TEXT") => b.append_value(decode::<&str>(value, name, number)?),
        (Column::Text(b), "INTEGER") => b.append_value(decode::<i64>(value, name, number)?.to_string()),
        (Column::Text(b), "REAL") => b.append_value(decode::<f64>(value, name, number)?.to_string()),
        (Column::Bytes(b), "BLOB" | "TEXT") => b.append_value(decode::<&[u8]>(value, name, number)?),
        (Column::Bool(b), "INTEGER") => b.append_value(decode(value, name, number)?),
        (Column::Date(b), _) => b.append_value(date32(decode::<NaiveDate>(value, name, number)?)),
        (Column::Time(b), _) => b.append_value(time64(decode::<NaiveTime>(value, name, number)?)),
        (Column::Timestamp(b), _) => b.append_value(timestamp(decode::<NaiveDateTime>(value, name, number)?)),
        (column, _) => return Err(bad(&column.data_type().to_string())),
    }
    Ok(())
}

super::backend_fns!(SqliteConnection);

/// Runs a query: a whole result (`Sink::Collect`) is read through SQLite's C API when the fast
/// path takes it, everything else through sqlx.
pub(crate) async fn fetch_any(
    conn: &mut SqliteConnection,
    sql: &str,
    values: &[connections_core::Param],
    batch_size: usize,
    sink: &mut Sink<'_>,
) -> Result<connections_core::arrow::datatypes::SchemaRef> {
    if let Sink::Collect(batches) = sink
        && let Ok((schema, found)) = super::sqlite_fast::collect(conn, sql, values, batch_size).await?
    {
        batches.extend(found);
        return Ok(schema);
    }
    fetch(conn, sql, values, batch_size, sink).await
}
