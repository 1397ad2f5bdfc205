//! MySQL and MariaDB rows to Arrow: the column's type decides (see `docs/sql.md` for the table).

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::{Error, Param, Result};
use sqlx::mysql::types::MySqlTime;
use sqlx::mysql::{MySqlArguments, MySqlColumn, MySqlConnection, MySqlRow};
use sqlx::types::chrono::NaiveTime;
use sqlx::{Column as _, Decode, MySql, Row as _, TypeInfo as _};

use super::Sink;
use super::mysql_wire::rows::{self, ValueDecoder};
use crate::columns::{Column, Kind};
use crate::error::classify;

/// The Arrow kind of a column of the type sqlx names `type_name`, whose character set is `binary`
/// or not; `None` for a type with no Arrow mapping. (The bulk reader names its columns' types the
/// same way.)
///
/// The one rule for strings: a string column is Binary only when its character set is `binary`
/// (collation id 63: `BINARY`, `VARBINARY`, `BLOB`s); text in any other character set is Utf8,
/// whatever its collation. sqlx names a column from the protocol's BINARY flag, which a binary
/// collation (`utf8mb4_bin`, MariaDB's JSON) sets as well, so a name alone cannot tell; see
/// [`binary_flagged`]. MySQL's own `JSON` type is text whatever the protocol says of it.
pub(crate) fn kind_of(type_name: &str, binary_charset: bool) -> Option<Kind> {
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
        "JSON" | "NULL" => Kind::Text,
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" | "BINARY"
        | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            if binary_charset {
                Kind::Bytes
            } else {
                Kind::Text
            }
        }
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "DATETIME" => Kind::Timestamp,
        "TIMESTAMP" => Kind::TimestampUtc,
        _ => return None,
    })
}

/// Whether sqlx's type name says the protocol's BINARY flag is set on a string column: its
/// character set is `binary`, or it is text with a binary collation. Only the column's collation
/// id tells which (the bulk reader has it; sqlx keeps it to itself, so the row path asks the
/// server, see [`text_collated`]).
pub(crate) fn binary_flagged(type_name: &str) -> bool {
    matches!(type_name, "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB")
}

/// The result columns (by position) that sqlx names binary ([`binary_flagged`]) but whose
/// character set is not `binary`: text with a binary collation.
///
/// sqlx does not hand out a column's collation id, so this asks the server on the same
/// connection (where the query's temporary tables and session state are visible): the statement
/// (prepared once, then from sqlx's statement cache) says which columns carry the flag, and only
/// when some do, `collation()` of each, over the query as a derived table cut to zero rows (the
/// server does not run it). A query that cannot be a derived table (duplicate column names, not
/// a `SELECT`) keeps sqlx's reading: Binary.
async fn text_collated(conn: &mut MySqlConnection, sql: &str, values: &[Param]) -> Result<Vec<bool>> {
    use sqlx::{Executor as _, Statement as _};
    let statement = conn.prepare(sql).await.map_err(classify)?;
    let columns = statement.columns();
    let flagged: Vec<&MySqlColumn> = columns.iter().filter(|c| binary_flagged(c.type_info().name())).collect();
    if flagged.is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = columns.iter().map(|c| c.name().to_lowercase()).collect();
    names.sort_unstable();
    if names.windows(2).any(|pair| pair[0] == pair[1]) {
        return Ok(Vec::new());
    }
    let list = flagged
        .iter()
        .map(|c| format!("collation(connections_t.`{}`)", c.name().replace('`', "``")))
        .collect::<Vec<_>>()
        .join(", ");
    let body = sql.trim_end().trim_end_matches(';');
    // the line break ends a trailing `-- comment` of the query before the closing parenthesis
    let probe = format!(
        "select {list} from (select 1) as connections_one left join \
         (select * from (\n{body}\n) as connections_q limit 0) as connections_t on true"
    );
    let query = super::bind_params!(sqlx::query_with(&probe, MySqlArguments::default()), values);
    let row = match conn.fetch_one(query).await {
        Ok(row) => row,
        Err(error) => {
            tracing::debug!(%error, "collations of the result's columns unknown; binary-flagged columns stay Binary");
            return Ok(Vec::new());
        }
    };
    let mut text = vec![false; columns.len()];
    for (index, column) in flagged.iter().enumerate() {
        let collation: &str = row.try_get(index).map_err(classify)?;
        text[column.ordinal()] = !collation.eq_ignore_ascii_case("binary");
    }
    Ok(text)
}

fn plan(column: &MySqlColumn, text_collated: &[bool]) -> ((String, Kind), ValueDecoder) {
    let type_name = column.type_info().name();
    let text = text_collated.get(column.ordinal()).copied().unwrap_or(false);
    let kind = kind_of(type_name, binary_flagged(type_name) && !text);
    let name = column.name().to_owned();
    let decoder = ValueDecoder::new(name.clone(), type_name, kind);
    ((name, kind.unwrap_or(Kind::Text)), decoder)
}

/// Appends one value of a sqlx row: its bytes are the binary protocol's, as the bulk reader
/// reads them, and go through the same decoder. (sqlx calls a zero date NULL; it has bytes, and
/// the decoder reports it.)
fn append(column: &mut Column, decoder: &ValueDecoder, row: &MySqlRow, index: usize, number: usize) -> Result<()> {
    let value = row.try_get_raw(index).map_err(classify)?;
    if let Ok(bytes) = <&[u8] as Decode<MySql>>::decode(value) {
        rows::append(column, decoder, bytes, number)
    } else {
        column.append_null(); // no bytes: a real NULL
        Ok(())
    }
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

/// Runs a query on one connection, handing batches of `batch_size` rows to `sink`. (With an
/// empty argument list even a parameterless query uses the binary protocol, whose dates need no
/// text parsing.)
pub(crate) async fn fetch(
    conn: &mut MySqlConnection,
    sql: &str,
    values: &[Param],
    batch_size: usize,
    sink: &mut Sink<'_>,
) -> Result<SchemaRef> {
    let text = text_collated(conn, sql, values).await?;
    let query = super::bind_params!(sqlx::query_with(sql, MySqlArguments::default()), values);
    super::fetch_loop!(&mut *conn, query, sql, batch_size, sink, |c| plan(c, &text), append)
}

/// Runs a statement; the number of rows it changed.
pub(crate) async fn execute(conn: &mut MySqlConnection, sql: &str, values: &[Param]) -> Result<u64> {
    let query = super::bind_params!(sqlx::query_with(sql, MySqlArguments::default()), values);
    query.execute(conn).await.map(|done| done.rows_affected()).map_err(classify)
}
