//! Snowflake's result encodings to standard Arrow, the same from both result formats:
//!
//! | Snowflake | Arrow |
//! |---|---|
//! | NUMBER(p, 0) | `Int64` |
//! | NUMBER(p, s), s > 0 | `Decimal128(p, s)` |
//! | FLOAT | `Float64` |
//! | TEXT | `Utf8` |
//! | BINARY | `Binary` |
//! | BOOLEAN | `Boolean` |
//! | DATE | `Date32` |
//! | TIME(s) | `Time64` (microseconds for s ≤ 6, else nanoseconds) |
//! | TIMESTAMP_NTZ(s) | `Timestamp(unit, None)` (seconds, milli-, micro- or nanoseconds by s) |
//! | TIMESTAMP_LTZ(s), TIMESTAMP_TZ(s) | `Timestamp(unit, "+00:00")`: the instant, in UTC |
//! | VARIANT, OBJECT, ARRAY | `Utf8` JSON text, field metadata `ARROW:extension:name = arrow.json` |
//!
//! Every field carries its Snowflake type in the metadata key `snowflake:type`.

use std::collections::HashMap;
use std::sync::Arc;

use connections_core::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Array, Float64Builder,
    Int64Array, Int64Builder, StringBuilder, StructArray,
};
use connections_core::arrow::buffer::Buffer;
use connections_core::arrow::compute::{CastOptions, cast_with_options};
use connections_core::arrow::datatypes::{
    DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use connections_core::arrow::ipc::convert::fb_to_schema;
use connections_core::arrow::ipc::reader::read_record_batch;
use connections_core::arrow::ipc::{MessageHeader, root_as_message};
use connections_core::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::Value;

use crate::protocol::Column;

/// The canonical Arrow extension name on VARIANT, OBJECT and ARRAY columns (JSON text).
pub const JSON_EXTENSION: &str = "arrow.json";

/// What a column becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Decimal(u8, i8),
    Real,
    Text,
    Binary,
    Bool,
    Date,
    /// TIME with the server's scale.
    Time(u32),
    /// A timestamp with the server's scale; `true` for an instant (LTZ, TZ).
    Timestamp(u32, bool),
    Json,
}

fn kind(column: &Column) -> Kind {
    let scale = u32::try_from(column.scale.unwrap_or(9).clamp(0, 9)).unwrap_or(9);
    match column.kind.to_ascii_lowercase().as_str() {
        "fixed" => match column.scale.unwrap_or(0) {
            0 => Kind::Int,
            s => Kind::Decimal(
                u8::try_from(column.precision.unwrap_or(38).clamp(1, 38)).unwrap_or(38),
                i8::try_from(s.clamp(0, 38)).unwrap_or(0),
            ),
        },
        "real" => Kind::Real,
        "binary" => Kind::Binary,
        "boolean" => Kind::Bool,
        "date" => Kind::Date,
        "time" => Kind::Time(scale),
        "timestamp_ntz" | "timestamp" => Kind::Timestamp(scale, false),
        "timestamp_ltz" | "timestamp_tz" => Kind::Timestamp(scale, true),
        "variant" | "object" | "array" | "map" => Kind::Json,
        _ => Kind::Text,
    }
}

/// Decimal digits of a unit: 0, 3, 6 or 9.
fn unit_digits(unit: TimeUnit) -> u32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

fn timestamp_unit(scale: u32) -> TimeUnit {
    match scale {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

fn time_unit(scale: u32) -> TimeUnit {
    if scale <= 6 { TimeUnit::Microsecond } else { TimeUnit::Nanosecond }
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Int => DataType::Int64,
        Kind::Decimal(p, s) => DataType::Decimal128(p, s),
        Kind::Real => DataType::Float64,
        Kind::Text | Kind::Json => DataType::Utf8,
        Kind::Binary => DataType::Binary,
        Kind::Bool => DataType::Boolean,
        Kind::Date => DataType::Date32,
        Kind::Time(scale) => DataType::Time64(time_unit(scale)),
        Kind::Timestamp(scale, instant) => DataType::Timestamp(timestamp_unit(scale), instant.then(|| "+00:00".into())),
    }
}

/// The Arrow schema of a result, from its `rowtype` alone (so an empty result has one too),
/// with the query id in the schema's metadata (`snowflake:query_id`).
pub(crate) fn schema(rowtype: &[Column], query_id: Option<&str>) -> SchemaRef {
    let fields: Vec<Field> = rowtype
        .iter()
        .map(|column| {
            let kind = kind(column);
            let mut metadata = HashMap::from([("snowflake:type".to_owned(), column.kind.to_ascii_uppercase())]);
            if kind == Kind::Json {
                metadata.insert("ARROW:extension:name".into(), JSON_EXTENSION.into());
                metadata.insert("ARROW:extension:metadata".into(), "{}".into());
            }
            Field::new(&column.name, data_type(kind), true).with_metadata(metadata)
        })
        .collect();
    let metadata =
        query_id.map(|id| HashMap::from([("snowflake:query_id".to_owned(), id.to_owned())])).unwrap_or_default();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// The batches of an Arrow IPC stream (the inline part or a chunk), in the result's schema.
pub(crate) fn arrow_batches(
    bytes: Vec<u8>,
    rowtype: &[Column],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, String> {
    let mut out = Vec::new();
    for batch in read_ipc_stream(bytes)? {
        if batch.num_columns() != rowtype.len() {
            return Err(format!("{} columns in the data, {} described", batch.num_columns(), rowtype.len()));
        }
        let columns = rowtype
            .iter()
            .zip(batch.columns())
            .map(|(column, array)| convert(kind(column), array).map_err(|e| format!("column `{}`: {e}", column.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        out.push(RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Reads an Arrow IPC stream. Snowflake (and the emulator) declare the members of timestamp
/// structs non-nullable yet leave them null in null rows, which arrow's stream reader refuses;
/// so the messages are read here, with the schema's struct members made nullable.
fn read_ipc_stream(bytes: Vec<u8>) -> Result<Vec<RecordBatch>, String> {
    let whole = Buffer::from(bytes);
    let data = whole.as_slice();
    let (mut pos, mut schema, mut out) = (0_usize, None::<SchemaRef>, Vec::new());
    let read_i32 = |at: usize| -> Option<i32> { Some(i32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?)) };
    while pos + 4 <= data.len() {
        let mut length = read_i32(pos).ok_or("truncated")?;
        pos += 4;
        if length == -1 {
            length = read_i32(pos).ok_or("truncated")?;
            pos += 4;
        }
        let length = usize::try_from(length).map_err(|_| "a negative message length")?;
        if length == 0 {
            break; // end of stream
        }
        let meta = data.get(pos..pos + length).ok_or("a truncated message")?;
        pos += length;
        let message = root_as_message(meta).map_err(|e| format!("not an Arrow IPC message: {e}"))?;
        let body_length = usize::try_from(message.bodyLength()).map_err(|_| "a negative body length")?;
        if pos + body_length > data.len() {
            return Err("a truncated message body".into());
        }
        let body = whole.slice_with_length(pos, body_length);
        pos += body_length;
        match message.header_type() {
            MessageHeader::Schema => {
                let fb = message.header_as_schema().ok_or("a malformed schema message")?;
                let schema_read = fb_to_schema(fb);
                let fields: Vec<Field> = schema_read.fields().iter().map(|f| relax(f)).collect();
                schema = Some(Arc::new(Schema::new_with_metadata(fields, schema_read.metadata().clone())));
            }
            MessageHeader::RecordBatch => {
                let batch = message.header_as_record_batch().ok_or("a malformed record batch message")?;
                let schema = schema.clone().ok_or("a record batch before the schema")?;
                let batch = read_record_batch(&body, batch, schema, &HashMap::new(), None, &message.version())
                    .map_err(|e| format!("malformed Arrow IPC record batch: {e}"))?;
                out.push(batch);
            }
            other => return Err(format!("unexpected Arrow IPC message {other:?}")),
        }
    }
    Ok(out)
}

/// The field with every struct member nullable.
fn relax(field: &Field) -> Field {
    match field.data_type() {
        DataType::Struct(members) => {
            let members: Vec<Field> = members.iter().map(|m| relax(m).with_nullable(true)).collect();
            field.clone().with_data_type(DataType::Struct(members.into()))
        }
        _ => field.clone(),
    }
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    cast_with_options(array, to, &CastOptions { safe: false, ..CastOptions::default() }).map_err(|e| e.to_string())
}

fn convert(kind: Kind, array: &ArrayRef) -> Result<ArrayRef, String> {
    let target = data_type(kind);
    match kind {
        Kind::Decimal(p, s) if array.data_type().is_integer() => {
            let ints = cast(array, &DataType::Int64)?;
            let ints = ints.as_primitive::<Int64Type>();
            let decimals: Decimal128Array = ints.unary(i128::from);
            Ok(Arc::new(decimals.with_precision_and_scale(p, s).map_err(|e| e.to_string())?))
        }
        Kind::Time(scale) if array.data_type().is_integer() => {
            let factor = 10_i64.pow(unit_digits(time_unit(scale)).saturating_sub(scale));
            let ints = cast(array, &DataType::Int64)?;
            let values = scale_values(ints.as_primitive::<Int64Type>(), factor)?;
            Ok(match time_unit(scale) {
                TimeUnit::Microsecond => Arc::new(values.reinterpret_cast::<Time64MicrosecondType>()),
                _ => Arc::new(values.reinterpret_cast::<Time64NanosecondType>()),
            })
        }
        Kind::Timestamp(scale, _) if array.data_type().is_integer() => {
            let unit = timestamp_unit(scale);
            let factor = 10_i64.pow(unit_digits(unit).saturating_sub(scale));
            let ints = cast(array, &DataType::Int64)?;
            Ok(timestamps(&scale_values(ints.as_primitive::<Int64Type>(), factor)?, &target))
        }
        Kind::Timestamp(scale, _) if matches!(array.data_type(), DataType::Struct(_)) => {
            Ok(timestamps(&struct_timestamps(array.as_struct(), scale)?, &target))
        }
        _ if array.data_type() == &target => Ok(Arc::clone(array)),
        _ => cast(array, &target),
    }
}

/// Multiplies every value by `factor`, failing on overflow.
fn scale_values(values: &Int64Array, factor: i64) -> Result<Int64Array, String> {
    if factor == 1 {
        return Ok(values.clone());
    }
    values.try_unary(|v| v.checked_mul(factor).ok_or(())).map_err(|()| "a value is out of range".to_owned())
}

/// Snowflake's timestamp structs: `{epoch (seconds), fraction (nanoseconds)[, timezone]}`, or
/// `{epoch (scaled by 10^scale), timezone}` for TIMESTAMP_TZ with a scale of 3 or less.
fn struct_timestamps(array: &StructArray, scale: u32) -> Result<Int64Array, String> {
    let unit_digits = unit_digits(timestamp_unit(scale));
    let epoch = array.column_by_name("epoch").ok_or("a timestamp struct without `epoch`")?;
    let epoch = cast(epoch, &DataType::Int64)?;
    let epoch = epoch.as_primitive::<Int64Type>();
    let values: Vec<Option<i64>> = if let Some(fraction) = array.column_by_name("fraction") {
        {
            let fraction = cast(fraction, &DataType::Int32)?;
            let fraction = fraction.as_primitive::<Int32Type>();
            let per_second = 10_i64.pow(unit_digits);
            let divisor = 10_i64.pow(9 - unit_digits);
            (0..array.len())
                .map(|i| {
                    if array.is_null(i) || epoch.is_null(i) {
                        return Ok(None);
                    }
                    let whole = epoch.value(i).checked_mul(per_second).ok_or("a timestamp out of range")?;
                    Ok(Some(whole + i64::from(fraction.value(i)) / divisor))
                })
                .collect::<Result<_, &str>>()?
        }
    } else {
        {
            let factor = 10_i64.pow(unit_digits.saturating_sub(scale));
            (0..array.len())
                .map(|i| {
                    if array.is_null(i) || epoch.is_null(i) {
                        return Ok(None);
                    }
                    epoch.value(i).checked_mul(factor).map(Some).ok_or("a timestamp out of range")
                })
                .collect::<Result<_, &str>>()?
        }
    };
    Ok(Int64Array::from(values))
}

fn timestamps(values: &Int64Array, target: &DataType) -> ArrayRef {
    let DataType::Timestamp(unit, zone) = target else { unreachable!("a timestamp type") };
    match unit {
        TimeUnit::Second => Arc::new(values.reinterpret_cast::<TimestampSecondType>().with_timezone_opt(zone.clone())),
        TimeUnit::Millisecond => {
            Arc::new(values.reinterpret_cast::<TimestampMillisecondType>().with_timezone_opt(zone.clone()))
        }
        TimeUnit::Microsecond => {
            Arc::new(values.reinterpret_cast::<TimestampMicrosecondType>().with_timezone_opt(zone.clone()))
        }
        TimeUnit::Nanosecond => {
            Arc::new(values.reinterpret_cast::<TimestampNanosecondType>().with_timezone_opt(zone.clone()))
        }
    }
}

/// A batch from rows of the JSON result format (every value text or null), in the result's
/// schema: the same Arrow data the Arrow format gives.
pub(crate) fn json_batch(rows: &[Vec<Value>], rowtype: &[Column], schema: &SchemaRef) -> Result<RecordBatch, String> {
    let columns = rowtype
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let cells = rows.iter().map(|row| match row.get(i) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Ok(Some(other.to_string())),
            });
            let cells: Vec<Option<String>> = cells.collect::<Result<_, String>>()?;
            json_column(kind(column), &cells).map_err(|e| format!("column `{}`: {e}", column.name))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options).map_err(|e| e.to_string())
}

fn json_column(kind: Kind, cells: &[Option<String>]) -> Result<ArrayRef, String> {
    let bad = |what: &str| format!("`{what}` is not a valid value of its type");
    Ok(match kind {
        Kind::Int => {
            let mut b = Int64Builder::with_capacity(cells.len());
            for cell in cells {
                b.append_option(cell.as_deref().map(|s| s.trim().parse::<i64>().map_err(|_| bad(s))).transpose()?);
            }
            Arc::new(b.finish())
        }
        Kind::Decimal(p, s) => {
            let digits = u32::try_from(s).unwrap_or(0);
            let values = cells
                .iter()
                .map(|c| c.as_deref().map(|t| fixed_point(t, digits).ok_or_else(|| bad(t))).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(Decimal128Array::from(values).with_precision_and_scale(p, s).map_err(|e| e.to_string())?)
        }
        Kind::Real => {
            let mut b = Float64Builder::with_capacity(cells.len());
            for cell in cells {
                b.append_option(cell.as_deref().map(|s| s.trim().parse::<f64>().map_err(|_| bad(s))).transpose()?);
            }
            Arc::new(b.finish())
        }
        Kind::Text | Kind::Json => {
            let mut b = StringBuilder::with_capacity(cells.len(), 0);
            for cell in cells {
                b.append_option(cell.as_deref());
            }
            Arc::new(b.finish())
        }
        Kind::Binary => {
            let mut b = BinaryBuilder::with_capacity(cells.len(), 0);
            for cell in cells {
                b.append_option(cell.as_deref().map(|s| unhex(s).ok_or_else(|| bad(s))).transpose()?);
            }
            Arc::new(b.finish())
        }
        Kind::Bool => {
            let mut b = BooleanBuilder::with_capacity(cells.len());
            for cell in cells {
                let value = cell
                    .as_deref()
                    .map(|s| match s.trim().to_ascii_lowercase().as_str() {
                        "1" | "true" => Ok(true),
                        "0" | "false" => Ok(false),
                        _ => Err(bad(s)),
                    })
                    .transpose()?;
                b.append_option(value);
            }
            Arc::new(b.finish())
        }
        Kind::Date => {
            let mut b = Date32Builder::with_capacity(cells.len());
            for cell in cells {
                b.append_option(cell.as_deref().map(|s| s.trim().parse::<i32>().map_err(|_| bad(s))).transpose()?);
            }
            Arc::new(b.finish())
        }
        Kind::Time(scale) => {
            let unit = time_unit(scale);
            let values = fixed_points(cells, unit_digits(unit))?;
            let values = Int64Array::from(values);
            match unit {
                TimeUnit::Microsecond => Arc::new(values.reinterpret_cast::<Time64MicrosecondType>()),
                _ => Arc::new(values.reinterpret_cast::<Time64NanosecondType>()),
            }
        }
        Kind::Timestamp(scale, _) => {
            let target = data_type(kind);
            let digits = unit_digits(timestamp_unit(scale));
            // TIMESTAMP_TZ: "<seconds.fraction> <offset + 1440>"; the instant is the first part
            let instants: Vec<Option<String>> = cells
                .iter()
                .map(|c| c.as_deref().map(|s| s.split_whitespace().next().unwrap_or("").to_owned()))
                .collect();
            timestamps(&Int64Array::from(fixed_points(&instants, digits)?), &target)
        }
    })
}

fn fixed_points(cells: &[Option<String>], digits: u32) -> Result<Vec<Option<i64>>, String> {
    cells
        .iter()
        .map(|c| {
            c.as_deref()
                .map(|s| {
                    fixed_point(s, digits)
                        .and_then(|v| i64::try_from(v).ok())
                        .ok_or_else(|| format!("`{s}` is not a valid value of its type"))
                })
                .transpose()
        })
        .collect()
}

/// `-12.345` with `digits` = 2 → -1234 (extra digits truncated).
fn fixed_point(text: &str, digits: u32) -> Option<i128> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut fraction_digits = fraction.bytes();
    for _ in 0..digits {
        let digit = fraction_digits.next().map_or(0, |b| i128::from(b - b'0'));
        value = value.checked_mul(10)?.checked_add(digit)?;
    }
    Some(if negative { -value } else { value })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The row count a DML result reports: the sum of its first row's numbers.
pub(crate) fn dml_count(batches: &[RecordBatch]) -> u64 {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else { return 0 };
    batch
        .columns()
        .iter()
        .filter_map(|c| c.as_primitive_opt::<Int64Type>())
        .filter(|c| c.is_valid(0))
        .map(|c| u64::try_from(c.value(0)).unwrap_or(0))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use connections_core::arrow::util::pretty::pretty_format_batches;
    use serde_json::json;

    fn col(name: &str, kind: &str, precision: i64, scale: i64) -> Column {
        serde_json::from_value(
            json!({"name": name, "type": kind, "precision": precision, "scale": scale, "nullable": true}),
        )
        .unwrap()
    }

    #[test]
    fn fixed_points_parse() {
        assert_eq!(fixed_point("-12.345", 2), Some(-1234));
        assert_eq!(fixed_point("7", 3), Some(7000));
        assert_eq!(fixed_point("1709214330.250000000", 3), Some(1_709_214_330_250));
        assert_eq!(fixed_point("x", 0), None);
    }

    #[test]
    fn json_rows_to_standard_arrow() {
        let rowtype = vec![
            col("I", "fixed", 38, 0),
            col("N", "fixed", 10, 2),
            col("F", "real", 0, 0),
            col("B", "boolean", 0, 0),
            col("D", "date", 0, 0),
            col("T", "time", 0, 9),
            col("TS", "timestamp_ntz", 0, 9),
            col("TZ", "timestamp_tz", 0, 3),
            col("BIN", "binary", 0, 0),
            col("V", "variant", 0, 0),
        ];
        let schema = schema(&rowtype, Some("q-1"));
        let rows = vec![
            vec![
                json!("1"),
                json!("12.34"),
                json!("1.5"),
                json!("1"),
                json!("19782"),
                json!("49530.250000000"),
                json!("1709214330.250000000"),
                json!("1709214330.250 1560"),
                json!("01FF"),
                json!("{\"a\":1}"),
            ],
            vec![Value::Null; 10],
        ];
        let batch = json_batch(&rows, &rowtype, &schema).unwrap();
        let shown = pretty_format_batches(&[batch]).unwrap().to_string();
        assert!(shown.contains("2024-02-29T13:45:30.250"), "{shown}");
        assert!(shown.contains("13:45:30.250") && shown.contains("12.34") && shown.contains("01ff"), "{shown}");
        assert_eq!(schema.metadata()["snowflake:query_id"], "q-1");
        assert_eq!(schema.field(9).metadata()["ARROW:extension:name"], JSON_EXTENSION);
        assert_eq!(schema.field(7).data_type(), &DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())));
    }
}
