//! MySQL and MariaDB rows to Arrow: the column's type decides (see `docs/sql.md` for the table).

use connections_core::{Error, Result};
use sqlx::mysql::types::MySqlTime;
use sqlx::mysql::{MySqlColumn, MySqlConnection, MySqlRow, MySqlValueRef};
use sqlx::types::BigDecimal;
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::{Column as _, Decode, MySql, Row as _, TypeInfo as _, ValueRef as _};

use super::{bool_from_int, unsupported};
use crate::columns::{Column, Kind, date32, time64, timestamp, timestamp_utc};
use crate::error::classify;

/// A column's name and type, for reading and for messages.
pub(crate) struct Decoder {
    name: String,
    type_name: String,
    supported: bool,
}

/// The Arrow kind of a column of the type sqlx names `type_name`; `None` for a type with no
/// Arrow mapping. (The bulk reader names its columns' types the same way.)
pub(crate) fn kind_of(type_name: &str) -> Option<Kind> {
    Some(match type_name {
        "BOOLEAN" => Kind::Bool,
        "TINYINT" => Kind::I8,
        "SMALLINT" => Kind::I16,
        "MEDIUMINT" | "INT" => Kind::I32,
        "BIGINT" => Kind::I64,
        "TINYINT UNSIGNED" => Kind::U8,
        "SMALLINT UNSIGNED" | "YEAR" => Kind::U16,
        "MEDIUMINT UNSIGNED" | "INT UNSIGNED" => Kind::U32,
        "BIGINT UNSIGNED" | "BIT" => Kind::U64,
        "FLOAT" => Kind::F32,
        "DOUBLE" => Kind::F64,
        "DECIMAL" => Kind::Decimal,
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" | "JSON" | "NULL" => {
            Kind::Text
        }
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => Kind::Bytes,
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "DATETIME" => Kind::Timestamp,
        "TIMESTAMP" => Kind::TimestampUtc,
        _ => return None,
    })
}

fn plan(column: &MySqlColumn) -> ((String, Kind), Decoder) {
    let type_name = column.type_info().name().to_owned();
    let kind = kind_of(&type_name);
    let name = column.name().to_owned();
    let decoder = Decoder { name: name.clone(), type_name, supported: kind.is_some() };
    ((name, kind.unwrap_or(Kind::Text)), decoder)
}

fn decode<'r, T: Decode<'r, MySql>>(value: MySqlValueRef<'r>, decoder: &Decoder, row: usize) -> Result<T> {
    T::decode(value).map_err(|e| super::undecodable(&decoder.name, &decoder.type_name, row, e))
}

fn append(column: &mut Column, decoder: &Decoder, row: &MySqlRow, index: usize, number: usize) -> Result<()> {
    let value = row.try_get_raw(index).map_err(classify)?;
    let d = decoder;
    if value.is_null() {
        // sqlx reads a zero date as NULL too; only a real NULL has no bytes
        let dated = matches!(column, Column::Date(_) | Column::Timestamp(_) | Column::TimestampUtc(_));
        if dated && <&[u8] as Decode<MySql>>::decode(value).is_ok() {
            return Err(invalid_date(&d.name, number));
        }
        column.append_null();
        return Ok(());
    }
    if !d.supported {
        return Err(unsupported(&d.name, &d.type_name));
    }
    match column {
        Column::Bool(b) => b.append_value(bool_from_int(decode::<i8>(value, d, number)?.into(), &d.name, number)?),
        Column::I8(b) => b.append_value(decode(value, d, number)?),
        Column::I16(b) => b.append_value(decode(value, d, number)?),
        Column::I32(b) => b.append_value(decode(value, d, number)?),
        Column::I64(b) => b.append_value(decode(value, d, number)?),
        Column::U8(b) => b.append_value(decode(value, d, number)?),
        Column::U16(b) => b.append_value(decode(value, d, number)?),
        Column::U32(b) => b.append_value(decode(value, d, number)?),
        Column::U64(b) => b.append_value(decode(value, d, number)?),
        Column::F32(b) => b.append_value(decode(value, d, number)?),
        Column::F64(b) => b.append_value(decode(value, d, number)?),
        Column::Decimal(b) => b.append(&decode::<BigDecimal>(value, d, number)?)?,
        Column::Text(b) => b.append_value(decode::<&str>(value, d, number)?),
        Column::Bytes(b) => b.append_value(decode::<&[u8]>(value, d, number)?),
        Column::Date(b) => {
            let date = <NaiveDate as Decode<MySql>>::decode(value).map_err(|_| invalid_date(&d.name, number))?;
            b.append_value(date32(date));
        }
        Column::Time(b) => {
            let time = time_of_day(decode(value, d, number)?);
            b.append_value(time64(time.map_err(|why| super::undecodable(&d.name, &d.type_name, number, why))?));
        }
        Column::Timestamp(b) => {
            let at = <NaiveDateTime as Decode<MySql>>::decode(value).map_err(|_| invalid_date(&d.name, number))?;
            b.append_value(timestamp(at));
        }
        Column::TimestampUtc(b) => {
            let at = <DateTime<Utc> as Decode<MySql>>::decode(value).map_err(|_| invalid_date(&d.name, number))?;
            b.append_value(timestamp_utc(at));
        }
        _ => return Err(unsupported(&d.name, &d.type_name)),
    }
    Ok(())
}

/// The error for a zero or invalid date (`0000-00-00`, `2024-00-10`, `0000-00-00 00:00:00`: what
/// MariaDB and MySQL store under a lenient `sql_mode`), which no Arrow date can hold; every path
/// reports it the same way (sqlx alone would read a zero date as NULL). Never shows the value.
pub(crate) fn invalid_date(column: &str, row: usize) -> Error {
    Error::statement(format!(
        "column `{column}`, row {row}: the value is a zero or invalid date, which has no Arrow value; \
         use `nullif({column}, '0000-00-00')` in the query to read zero dates as NULL, or cast the column to text"
    ))
}

/// A TIME as a time of day, or why it is not one: a negative TIME is refused too (sqlx would
/// drop its sign; and `MySqlTime::is_negative` of sqlx 0.8.6 answers the opposite, hence
/// `sign()`). The bulk reader's TIME values go through here as well.
pub(crate) fn time_of_day(time: MySqlTime) -> std::result::Result<NaiveTime, &'static str> {
    if time.sign().is_negative() {
        return Err("a negative TIME is not a time of day");
    }
    NaiveTime::try_from(time).map_err(|_| "a TIME of 24 hours or more is not a time of day")
}

super::backend_fns!(MySqlConnection, |sql| sqlx::query_with(sql, sqlx::mysql::MySqlArguments::default()));
