//! PostgreSQL results to Arrow: one column-type table ([`kind_of`]) and one set of binary
//! decoders ([`decode`]) serve the row path here and the `COPY` path
//! ([`super::postgres_copy`]). See `docs/sql.md` for the table.

mod decode;

use std::borrow::Cow;

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::{Param, Result};
use futures_util::TryStreamExt as _;
use sqlx::postgres::{PgColumn, PgConnection, PgTypeInfo};
use sqlx::{Column as _, Executor as _, Row as _, Statement as _, TypeInfo as _, ValueRef as _};

use super::{Sink, unsupported};
use crate::columns::{Batches, Column, Elem, Kind};
use crate::error::classify;

pub(crate) use decode::append;

/// How a column's binary values are read into its builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    /// As the builder's own type.
    Plain,
    /// `oid`: an unsigned 32-bit integer into Int64.
    Oid,
    /// `uuid`: 16 bytes into canonical text.
    Uuid,
    /// `json`: the text as the server sends it.
    Json,
    /// `jsonb`: a version byte, then the text as the server sends it.
    Jsonb,
    /// A type with no Arrow mapping: its first non-NULL value is an error.
    Unsupported,
}

/// The Arrow kind and wire reading of a column of the type sqlx names `type_name`.
pub(crate) fn kind_of(type_name: &str) -> (Kind, Wire) {
    let plain = |kind| (kind, Wire::Plain);
    match type_name {
        "BOOL" => plain(Kind::Bool),
        "INT2" => plain(Kind::I16),
        "INT4" => plain(Kind::I32),
        "INT8" => plain(Kind::I64),
        "OID" => (Kind::I64, Wire::Oid),
        "FLOAT4" => plain(Kind::F32),
        "FLOAT8" => plain(Kind::F64),
        "NUMERIC" => plain(Kind::Decimal),
        "TEXT" | "VARCHAR" | "BPCHAR" | "CHAR" | "NAME" | "\"CHAR\"" | "UNKNOWN" => plain(Kind::Text),
        "UUID" => (Kind::Text, Wire::Uuid),
        "JSON" => (Kind::Text, Wire::Json),
        "JSONB" => (Kind::Text, Wire::Jsonb),
        "BYTEA" => plain(Kind::Bytes),
        "DATE" => plain(Kind::Date),
        "TIME" => plain(Kind::Time),
        "TIMESTAMP" => plain(Kind::Timestamp),
        "TIMESTAMPTZ" => plain(Kind::TimestampUtc),
        "BOOL[]" => plain(Kind::List(Elem::Bool)),
        "INT2[]" => plain(Kind::List(Elem::I16)),
        "INT4[]" => plain(Kind::List(Elem::I32)),
        "INT8[]" => plain(Kind::List(Elem::I64)),
        "FLOAT4[]" => plain(Kind::List(Elem::F32)),
        "FLOAT8[]" => plain(Kind::List(Elem::F64)),
        "TEXT[]" | "VARCHAR[]" | "BPCHAR[]" | "CHAR[]" | "NAME[]" => plain(Kind::List(Elem::Text)),
        _ => (Kind::Text, Wire::Unsupported),
    }
}

/// One result column: its name, type and how it is read.
pub(crate) struct ColumnPlan {
    pub(crate) name: String,
    pub(crate) type_name: String,
    pub(crate) kind: Kind,
    pub(crate) wire: Wire,
}

/// The columns of a statement's result, decided before any row is read.
pub(crate) struct Plan {
    pub(crate) columns: Vec<ColumnPlan>,
}

impl Plan {
    /// Empty column builders for this plan.
    pub(crate) fn batches(&self, batch_size: usize) -> Batches {
        Batches::new(self.columns.iter().map(|c| (c.name.clone(), c.kind)).collect(), batch_size)
    }

    /// Appends one value (`None` for NULL) of column `index` in the binary format.
    pub(crate) fn append(&self, column: &mut Column, index: usize, value: Option<&[u8]>, row: usize) -> Result<()> {
        let c = &self.columns[index];
        match value {
            None => column.append_null(),
            Some(_) if c.wire == Wire::Unsupported => return Err(unsupported(&c.name, &c.type_name)),
            Some(bytes) => append(column, c.wire, bytes, &c.name, &c.type_name, row)?,
        }
        Ok(())
    }
}

/// The SQL text sqlx prepares and caches for `sql` with these parameter values. sqlx keys its
/// statement cache by the text alone, but a PostgreSQL statement is prepared for its parameters'
/// types: reusing one prepared for an `int8` with a `float8` value would send the float's bytes
/// as an integer. A comment naming the types makes each combination a statement of its own.
pub(crate) fn keyed_sql<'a>(sql: &'a str, values: &[Param]) -> Cow<'a, str> {
    if values.is_empty() {
        return Cow::Borrowed(sql);
    }
    let mut keyed = String::with_capacity(sql.len() + 24 + 6 * values.len());
    keyed.push_str(sql);
    keyed.push_str("\n-- parameter types:");
    for value in values {
        keyed.push(' ');
        keyed.push_str(param_type(value).name());
    }
    Cow::Owned(keyed)
}

/// The PostgreSQL type a parameter value is sent as (see `bind_params!`).
fn param_type(value: &Param) -> PgTypeInfo {
    match value {
        Param::Bool(_) => PgTypeInfo::with_name("bool"),
        Param::I64(_) => PgTypeInfo::with_name("int8"),
        Param::F64(_) => PgTypeInfo::with_name("float8"),
        Param::Bytes(_) => PgTypeInfo::with_name("bytea"),
        _ => PgTypeInfo::with_name("text"),
    }
}

/// Prepares `sql` (already [`keyed_sql`]) and decides its result columns: a `numeric(p, s)`
/// column of a table with `p` ≤ 38 becomes `Decimal128(p, s)` (its type modifier, read from the
/// catalog, since sqlx does not pass on the one in the row description); with `p` > 38 it is
/// `Decimal128(38, s)`.
pub(crate) async fn describe(conn: &mut PgConnection, sql: &str, values: &[Param]) -> Result<Plan> {
    let types: Vec<PgTypeInfo> = values.iter().map(param_type).collect();
    let statement = conn.prepare_with(sql, &types).await.map_err(classify)?;
    let mut columns = Vec::with_capacity(statement.columns().len());
    for column in statement.columns() {
        let type_name = column.type_info().name().to_owned();
        let (mut kind, wire) = kind_of(&type_name);
        if kind == Kind::Decimal
            && let Some((precision, scale)) = declared_numeric(conn, column).await?
        {
            kind = Kind::DecimalFixed(precision, scale);
        }
        columns.push(ColumnPlan { name: column.name().to_owned(), type_name, kind, wire });
    }
    Ok(Plan { columns })
}

/// The declared precision and scale of a table's `numeric` column, when it has them: a
/// precision over 38 becomes 38 (Decimal128's most; wider values are then an error).
async fn declared_numeric(conn: &mut PgConnection, column: &PgColumn) -> Result<Option<(u8, i8)>> {
    let (Some(table), Some(attribute)) = (column.relation_id(), column.relation_attribute_no()) else {
        return Ok(None);
    };
    let modifier: Option<i32> =
        sqlx::query_scalar("select atttypmod from pg_attribute where attrelid = $1 and attnum = $2")
            .bind(table)
            .bind(attribute)
            .fetch_optional(&mut *conn)
            .await
            .map_err(classify)?;
    // atttypmod is ((precision << 16) | scale) + 4, or -1 for an unconstrained numeric
    let Some(modifier) = modifier.and_then(|m| m.checked_sub(4)).filter(|m| *m >= 0) else { return Ok(None) };
    let precision = u8::try_from((modifier >> 16).min(38)).ok().filter(|p| *p >= 1);
    let scale = i8::try_from(modifier & 0xffff).ok();
    Ok(precision.zip(scale))
}

/// Runs a query row by row (extended protocol, binary results) into `sink`.
pub(crate) async fn fetch(
    conn: &mut PgConnection,
    sql: &str,
    values: &[Param],
    batch_size: usize,
    sink: &mut Sink<'_>,
) -> Result<SchemaRef> {
    let sql = keyed_sql(sql, values);
    let plan = describe(conn, &sql, values).await?;
    fetch_planned(conn, &sql, values, &plan, batch_size, sink).await
}

/// [`fetch`] with the statement already described (`sql` already keyed).
pub(crate) async fn fetch_planned(
    conn: &mut PgConnection,
    sql: &str,
    values: &[Param],
    plan: &Plan,
    batch_size: usize,
    sink: &mut Sink<'_>,
) -> Result<SchemaRef> {
    let mut batches = plan.batches(batch_size);
    let query = super::bind_params!(sqlx::query(sql), values);
    let mut rows = conn.fetch(query);
    let mut number = 0_usize;
    while let Some(row) = rows.try_next().await.map_err(classify)? {
        for (index, column) in batches.columns().iter_mut().enumerate() {
            let value = row.try_get_raw(index).map_err(classify)?;
            let bytes = if value.is_null() {
                None
            } else {
                Some(value.as_bytes().map_err(|e| {
                    super::undecodable(&plan.columns[index].name, &plan.columns[index].type_name, number, e)
                })?)
            };
            plan.append(column, index, bytes, number)?;
        }
        number += 1;
        if let Some(batch) = batches.row_done()? {
            sink.put(batch).await?;
        }
    }
    drop(rows);
    let (schema, rest) = batches.into_batches()?;
    for batch in rest {
        sink.put(batch).await?;
    }
    Ok(schema)
}

/// Runs a statement; the number of rows it changed.
pub(crate) async fn execute(conn: &mut PgConnection, sql: &str, values: &[Param]) -> Result<u64> {
    let sql = keyed_sql(sql, values);
    let query = super::bind_params!(sqlx::query(&sql), values);
    query.execute(conn).await.map(|done| done.rows_affected()).map_err(classify)
}
