//! PostgreSQL rows to Arrow: the column's type decides (see `docs/sql.md` for the table).

use connections_core::Result;
use sqlx::postgres::{PgColumn, PgConnection, PgRow, PgValueRef};
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::types::{BigDecimal, JsonValue, Uuid};
use sqlx::{Column as _, Decode, Postgres, Row as _, TypeInfo as _, ValueRef as _};

use super::unsupported;
use crate::columns::{Column, Elem, Kind, date32, time64, timestamp, timestamp_utc};
use crate::error::classify;

/// How a column's values are read.
#[derive(Clone, Copy)]
enum Read {
    Native,
    Uuid,
    Json,
    Oid,
    Unsupported,
}

/// A column's name and how to read it.
pub(crate) struct Decoder {
    name: String,
    type_name: String,
    read: Read,
}

fn plan(column: &PgColumn) -> ((String, Kind), Decoder) {
    let type_name = column.type_info().name().to_owned();
    let (kind, read) = match type_name.as_str() {
        "BOOL" => (Kind::Bool, Read::Native),
        "INT2" => (Kind::I16, Read::Native),
        "INT4" => (Kind::I32, Read::Native),
        "INT8" => (Kind::I64, Read::Native),
        "OID" => (Kind::I64, Read::Oid),
        "FLOAT4" => (Kind::F32, Read::Native),
        "FLOAT8" => (Kind::F64, Read::Native),
        "NUMERIC" => (Kind::Decimal, Read::Native),
        "TEXT" | "VARCHAR" | "BPCHAR" | "CHAR" | "NAME" | "\"CHAR\"" | "UNKNOWN" => (Kind::Text, Read::Native),
        "UUID" => (Kind::Text, Read::Uuid),
        "JSON" | "JSONB" => (Kind::Text, Read::Json),
        "BYTEA" => (Kind::Bytes, Read::Native),
        "DATE" => (Kind::Date, Read::Native),
        "TIME" => (Kind::Time, Read::Native),
        "TIMESTAMP" => (Kind::Timestamp, Read::Native),
        "TIMESTAMPTZ" => (Kind::TimestampUtc, Read::Native),
        "BOOL[]" => (Kind::List(Elem::Bool), Read::Native),
        "INT2[]" => (Kind::List(Elem::I16), Read::Native),
        "INT4[]" => (Kind::List(Elem::I32), Read::Native),
        "INT8[]" => (Kind::List(Elem::I64), Read::Native),
        "FLOAT4[]" => (Kind::List(Elem::F32), Read::Native),
        "FLOAT8[]" => (Kind::List(Elem::F64), Read::Native),
        "TEXT[]" | "VARCHAR[]" | "BPCHAR[]" | "CHAR[]" | "NAME[]" => (Kind::List(Elem::Text), Read::Native),
        _ => (Kind::Text, Read::Unsupported),
    };
    let name = column.name().to_owned();
    ((name.clone(), kind), Decoder { name, type_name, read })
}

fn decode<'r, T: Decode<'r, Postgres>>(value: PgValueRef<'r>, decoder: &Decoder, row: usize) -> Result<T> {
    T::decode(value).map_err(|e| super::undecodable(&decoder.name, &decoder.type_name, row, e))
}

fn append(column: &mut Column, decoder: &Decoder, row: &PgRow, index: usize, number: usize) -> Result<()> {
    let value = row.try_get_raw(index).map_err(classify)?;
    if value.is_null() {
        column.append_null();
        return Ok(());
    }
    let d = decoder;
    match (column, d.read) {
        (_, Read::Unsupported) => return Err(unsupported(&d.name, &d.type_name)),
        (Column::Text(b), Read::Uuid) => b.append_value(decode::<Uuid>(value, d, number)?.to_string()),
        (Column::Text(b), Read::Json) => b.append_value(decode::<JsonValue>(value, d, number)?.to_string()),
        (Column::I64(b), Read::Oid) => {
            b.append_value(i64::from(decode::<sqlx::postgres::types::Oid>(value, d, number)?.0));
        }
        (Column::Bool(b), _) => b.append_value(decode(value, d, number)?),
        (Column::I16(b), _) => b.append_value(decode(value, d, number)?),
        (Column::I32(b), _) => b.append_value(decode(value, d, number)?),
        (Column::I64(b), _) => b.append_value(decode(value, d, number)?),
        (Column::F32(b), _) => b.append_value(decode(value, d, number)?),
        (Column::F64(b), _) => b.append_value(decode(value, d, number)?),
        (Column::Decimal(b), _) => b.append(&decode::<BigDecimal>(value, d, number)?)?,
        (Column::Text(b), _) => b.append_value(decode::<&str>(value, d, number)?),
        (Column::Bytes(b), _) => b.append_value(decode::<&[u8]>(value, d, number)?),
        (Column::Date(b), _) => b.append_value(date32(decode::<NaiveDate>(value, d, number)?)),
        (Column::Time(b), _) => b.append_value(time64(decode::<NaiveTime>(value, d, number)?)),
        (Column::Timestamp(b), _) => b.append_value(timestamp(decode::<NaiveDateTime>(value, d, number)?)),
        (Column::TimestampUtc(b), _) => b.append_value(timestamp_utc(decode::<DateTime<Utc>>(value, d, number)?)),
        (Column::ListBool(b), _) => b.append_value(decode::<Vec<Option<bool>>>(value, d, number)?),
        (Column::ListI16(b), _) => b.append_value(decode::<Vec<Option<i16>>>(value, d, number)?),
        (Column::ListI32(b), _) => b.append_value(decode::<Vec<Option<i32>>>(value, d, number)?),
        (Column::ListI64(b), _) => b.append_value(decode::<Vec<Option<i64>>>(value, d, number)?),
        (Column::ListF32(b), _) => b.append_value(decode::<Vec<Option<f32>>>(value, d, number)?),
        (Column::ListF64(b), _) => b.append_value(decode::<Vec<Option<f64>>>(value, d, number)?),
        (Column::ListText(b), _) => b.append_value(decode::<Vec<Option<String>>>(value, d, number)?),
        (_, _) => return Err(unsupported(&d.name, &d.type_name)),
    }
    Ok(())
}

super::backend_fns!(PgConnection);
