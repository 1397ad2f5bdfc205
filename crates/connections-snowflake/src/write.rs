//! `write`: loads a `DataFrame` into a table with array-bound INSERTs (one statement per
//! `chunk_size` rows, every column bound as an array), creating or emptying the table first
//! when asked. What Streamlit's `write_pandas` does, without a stage.

use std::sync::Arc;

use connections_core::arrow::array::{Array, ArrayRef, AsArray};
use connections_core::arrow::compute::cast;
use connections_core::arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit};
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{DataFrame, Error, Result};
use serde_json::{Value, json};

use crate::connection::SnowflakeConnection;
use crate::error::SnowflakeError;
use crate::query::{WriteOptions, WriteResult, run_bound};

/// Rows per INSERT when `chunk_size` is not given.
const DEFAULT_CHUNK_SIZE: usize = 16_384;

/// `"name"` with inner quotes doubled, or the name as given.
pub(crate) fn identifier(name: &str, quote: bool) -> String {
    if quote { format!("\"{}\"", name.replace('"', "\"\"")) } else { name.to_owned() }
}

/// The Snowflake column type of an Arrow type.
fn column_type(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        t if t.is_integer() => "NUMBER(38,0)".into(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "FLOAT".into(),
        DataType::Decimal128(p, s) => format!("NUMBER({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BINARY".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME(9)".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP_NTZ(9)".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP_TZ(9)".into(),
        _ => return None,
    })
}

/// One column of a slice of rows as an array binding: its type and its values as text.
fn array_binding(array: &ArrayRef) -> std::result::Result<Value, String> {
    let text = |a: &ArrayRef| -> std::result::Result<Vec<Option<String>>, String> {
        let strings = cast(a, &DataType::Utf8).map_err(|e| e.to_string())?;
        Ok(strings.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect())
    };
    let ints = |a: &ArrayRef, to: &DataType, factor: i64| -> std::result::Result<Vec<Option<String>>, String> {
        let converted = cast(a, to).map_err(|e| e.to_string())?;
        let ints = cast(&converted, &DataType::Int64).map_err(|e| e.to_string())?;
        Ok(ints.as_primitive::<Int64Type>().iter().map(|v| v.map(|v| (v * factor).to_string())).collect())
    };
    let (kind, values) = match array.data_type() {
        t if t.is_integer() => ("FIXED", text(array)?),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ("REAL", text(array)?),
        DataType::Boolean => ("BOOLEAN", text(array)?),
        DataType::Decimal128(..) | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ("TEXT", text(array)?),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let binary = cast(array, &DataType::Binary).map_err(|e| e.to_string())?;
            let values = binary.as_binary::<i32>().iter().map(|v| v.map(hex)).collect();
            ("BINARY", values)
        }
        DataType::Date32 | DataType::Date64 => {
            let days = cast(array, &DataType::Date32).map_err(|e| e.to_string())?;
            let days = cast(&days, &DataType::Int32).map_err(|e| e.to_string())?;
            let values = days
                .as_primitive::<Int32Type>()
                .iter()
                .map(|d| d.map(|d| (i64::from(d) * 86_400_000).to_string()))
                .collect();
            ("DATE", values)
        }
        DataType::Time32(_) | DataType::Time64(_) => ("TIME", ints(array, &DataType::Time64(TimeUnit::Nanosecond), 1)?),
        DataType::Timestamp(_, None) => {
            ("TIMESTAMP_NTZ", ints(array, &DataType::Timestamp(TimeUnit::Nanosecond, None), 1)?)
        }
        DataType::Timestamp(_, Some(_)) => {
            let nanos = ints(array, &DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())), 1)?;
            ("TIMESTAMP_TZ", nanos.into_iter().map(|v| v.map(|v| format!("{v} 1440"))).collect())
        }
        other => return Err(format!("columns of type {other} cannot be written")),
    };
    Ok(json!({ "type": kind, "value": values }))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

impl SnowflakeConnection {
    /// Loads `frame` into `table` with array-bound INSERTs of `chunk_size` rows (default
    /// 16,384), as Streamlit's `write_pandas` does: with `auto_create_table` the table is created
    /// from the frame's schema when missing; with `overwrite` its rows are replaced (with both,
    /// the table itself). Names are quoted as given unless `quote_identifiers` is false. Not
    /// cached, not retried.
    ///
    /// ```no_run
    /// # async fn demo(conn: &connections_snowflake::SnowflakeConnection, df: &connections_core::DataFrame) -> connections_core::Result<()> {
    /// use connections_snowflake::WriteOptions;
    /// let mut options = WriteOptions::default();
    /// options.auto_create_table = true;
    /// let written = conn.write("pets", df, &options).await?;
    /// assert!(written.success);
    /// # Ok(()) }
    /// ```
    pub async fn write(&self, table: &str, frame: &DataFrame, options: &WriteOptions) -> Result<WriteResult> {
        let quote = options.quote_identifiers.unwrap_or(true);
        let mut name = String::new();
        for part in [options.database.as_deref(), options.schema.as_deref()].into_iter().flatten() {
            name.push_str(&identifier(part, quote));
            name.push('.');
        }
        name.push_str(&identifier(table, quote));
        let schema = frame.schema();
        let invalid = |reason: String| Error::InvalidArgument { argument: "frame", reason };
        let columns: Vec<String> = schema.fields().iter().map(|f| identifier(f.name(), quote)).collect();
        if columns.is_empty() {
            return Err(invalid("the frame has no columns".into()));
        }
        if options.auto_create_table {
            let definitions = schema
                .fields()
                .iter()
                .zip(&columns)
                .map(|(field, column)| {
                    let kind = column_type(field.data_type()).ok_or_else(|| {
                        invalid(format!("column `{}`: type {} has no Snowflake type", field.name(), field.data_type()))
                    })?;
                    Ok(format!("{column} {kind}"))
                })
                .collect::<Result<Vec<_>>>()?;
            let create = if options.overwrite { "create or replace table" } else { "create table if not exists" };
            self.run(&format!("{create} {name} ({})", definitions.join(", ")), &[]).await?;
        } else if options.overwrite {
            self.run(&format!("truncate table {name}"), &[]).await?;
        }
        let insert =
            format!("insert into {name} ({}) values ({})", columns.join(", "), vec!["?"; columns.len()].join(", "));
        let chunk_size = options.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE).max(1);
        let session = self.session().await?;
        let (mut chunks, mut rows) = (0_usize, 0_u64);
        for batch in frame.batches() {
            let mut offset = 0;
            while offset < batch.num_rows() {
                let slice: RecordBatch = batch.slice(offset, chunk_size.min(batch.num_rows() - offset));
                offset += slice.num_rows();
                let mut bindings = serde_json::Map::new();
                for (i, column) in slice.columns().iter().enumerate() {
                    let binding = array_binding(column)
                        .map_err(|e| invalid(format!("column `{}`: {e}", schema.field(i).name())))?;
                    bindings.insert((i + 1).to_string(), binding);
                }
                let answer =
                    run_bound(&session, insert.clone(), Some(Value::Object(bindings)), session.config().query_timeout)
                        .await;
                let result = match answer {
                    Ok(answer) => answer.collect(Arc::clone(&session)).await,
                    Err(error) => Err(error),
                };
                let result =
                    result.map_err(|e: SnowflakeError| Error::from(e).for_connection(self.core_name(), "snowflake"))?;
                chunks += 1;
                rows += result.rows_affected.unwrap_or(slice.num_rows() as u64);
            }
        }
        Ok(WriteResult { success: rows == frame.num_rows() as u64, chunks, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connections_core::arrow::array::{Date32Array, Int64Array, StringArray, TimestampMicrosecondArray};

    #[test]
    fn identifiers_and_bindings() {
        assert_eq!(identifier("my \"t\"", true), "\"my \"\"t\"\"\"");
        assert_eq!(identifier("t", false), "t");
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
        assert_eq!(array_binding(&ints).unwrap(), json!({"type": "FIXED", "value": ["1", null]}));
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![1]));
        assert_eq!(array_binding(&dates).unwrap()["value"][0], "86400000");
        let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![2]));
        assert_eq!(array_binding(&ts).unwrap(), json!({"type": "TIMESTAMP_NTZ", "value": ["2000"]}));
        let text: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
        assert_eq!(array_binding(&text).unwrap()["type"], "TEXT");
    }
}
