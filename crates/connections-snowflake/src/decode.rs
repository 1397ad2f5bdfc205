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
use connections_core::arrow::compute::{CastOptions, cast_with_options};
use connections_core::arrow::datatypes::{
    DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use connections_core::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::Value;

use crate::protocol::Column;

mod ipc;

/// The canonical Arrow extension name on VARIANT, OBJECT and ARRAY columns (JSON text).
pub const JSON_EXTENSION: &str = "arrow.json";

/// Said of a NUMBER(p, 0) value that does not fit in an `Int64`.
const BEYOND_INT64: &str = ": a NUMBER with scale 0 becomes Int64, and this value does not fit in 64 bits; \
                            select it with a scale (`n::number(38, 1)`, a Decimal128) or as text (`n::varchar`)";

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
/// Integer-coded times are converted inside the stream's bytes where they can be
/// ([`ipc::rewrite`]), so that the result holds no unused copy of them.
pub(crate) fn arrow_batches(
    bytes: Vec<u8>,
    rowtype: &[Column],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, String> {
    batches_from(bytes, rowtype, schema, true)
}

/// [`arrow_batches`], with the in-place rewrite allowed or not (the general path alone).
fn batches_from(
    mut bytes: Vec<u8>,
    rowtype: &[Column],
    schema: &SchemaRef,
    in_place: bool,
) -> Result<Vec<RecordBatch>, String> {
    let kinds: Vec<Kind> = rowtype.iter().map(kind).collect();
    let frames = ipc::frames(&bytes)?;
    let rewritten = if in_place {
        let asks: Vec<ipc::Ask> = kinds.iter().map(|k| ask(*k)).collect();
        ipc::rewrite(&mut bytes, &frames, &asks)
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    for (at, batch) in ipc::read(bytes, &frames)?.into_iter().enumerate() {
        if batch.num_columns() != rowtype.len() {
            return Err(format!("{} columns in the data, {} described", batch.num_columns(), rowtype.len()));
        }
        let done = rewritten.get(at);
        let columns = rowtype
            .iter()
            .zip(&kinds)
            .zip(batch.columns())
            .enumerate()
            .map(|(i, ((column, kind), array))| {
                let rewritten = done.and_then(|d| d.get(i)).copied().unwrap_or(false);
                convert(*kind, array, rewritten).map_err(|e| format!("column `{}`: {e}", column.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        out.push(RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The arithmetic that turns Snowflake's integer-coded times of `kind` into values of its
/// Arrow unit: what [`ipc::rewrite`] is asked to do in place, and what [`convert`] does where
/// it did not.
fn ask(kind: Kind) -> ipc::Ask {
    match kind {
        Kind::Timestamp(scale, _) => {
            let digits = unit_digits(timestamp_unit(scale));
            ipc::Ask::Timestamp {
                per_second: 10_i64.pow(digits),
                divisor: 10_i64.pow(9 - digits),
                factor: 10_i64.pow(digits.saturating_sub(scale)),
            }
        }
        Kind::Time(scale) => {
            ipc::Ask::Scale { factor: 10_i64.pow(unit_digits(time_unit(scale)).saturating_sub(scale)) }
        }
        _ => ipc::Ask::Keep,
    }
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    cast_with_options(array, to, &CastOptions { safe: false, ..CastOptions::default() }).map_err(|e| e.to_string())
}

/// A column of the stream as `kind` gives it; `rewritten` when [`ipc::rewrite`] has already
/// done the arithmetic in its bytes (its values are then final, only typed and masked here).
fn convert(kind: Kind, array: &ArrayRef, rewritten: bool) -> Result<ArrayRef, String> {
    let target = data_type(kind);
    let todo = if rewritten { ipc::Ask::Keep } else { ask(kind) };
    match kind {
        Kind::Decimal(p, s) if array.data_type().is_integer() => {
            let ints = cast(array, &DataType::Int64)?;
            let ints = ints.as_primitive::<Int64Type>();
            let decimals: Decimal128Array = ints.unary(i128::from);
            Ok(Arc::new(decimals.with_precision_and_scale(p, s).map_err(|e| e.to_string())?))
        }
        Kind::Time(scale) if array.data_type().is_integer() => {
            let ints = cast(array, &DataType::Int64)?;
            let values = scale_values(ints.as_primitive::<Int64Type>(), todo.factor())?;
            Ok(match time_unit(scale) {
                TimeUnit::Microsecond => Arc::new(values.reinterpret_cast::<Time64MicrosecondType>()),
                _ => Arc::new(values.reinterpret_cast::<Time64NanosecondType>()),
            })
        }
        Kind::Timestamp(..) if array.data_type().is_integer() => {
            let ints = cast(array, &DataType::Int64)?;
            Ok(timestamps(&scale_values(ints.as_primitive::<Int64Type>(), todo.factor())?, &target))
        }
        Kind::Timestamp(..) if matches!(array.data_type(), DataType::Struct(_)) => {
            Ok(timestamps(&struct_timestamps(array.as_struct(), todo)?, &target))
        }
        _ if array.data_type() == &target => Ok(Arc::clone(array)),
        Kind::Int => cast(array, &target).map_err(|e| format!("{e}{BEYOND_INT64}")),
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
/// `{epoch (scaled by 10^scale), timezone}` for TIMESTAMP_TZ with a scale of 3 or less; `todo`
/// is the arithmetic left to do ([`ipc::Ask::Keep`] when `epoch` already holds the values, and
/// `fraction` only counts for the nulls).
fn struct_timestamps(array: &StructArray, todo: ipc::Ask) -> Result<Int64Array, String> {
    use connections_core::arrow::buffer::NullBuffer;
    let epoch = array.column_by_name("epoch").ok_or("a timestamp struct without `epoch`")?;
    let epoch = cast(epoch, &DataType::Int64)?;
    let epoch = epoch.as_primitive::<Int64Type>();
    // a null struct is a null timestamp, whatever its members hold; computed on valid rows only
    let nulls = NullBuffer::union(epoch.nulls(), array.nulls());
    let epoch = Int64Array::new(epoch.values().clone(), nulls);
    let out_of_range = || connections_core::arrow::error::ArrowError::ComputeError("a timestamp out of range".into());
    let values = if let Some(fraction) = array.column_by_name("fraction") {
        let fraction = cast(fraction, &DataType::Int32)?;
        let fraction = fraction.as_primitive::<Int32Type>();
        let ipc::Ask::Timestamp { per_second, divisor, .. } = todo else {
            let nulls = NullBuffer::union(epoch.nulls(), fraction.nulls());
            return Ok(Int64Array::new(epoch.values().clone(), nulls));
        };
        connections_core::arrow::compute::kernels::arity::try_binary(&epoch, fraction, |e, f| {
            e.checked_mul(per_second)
                .and_then(|whole| whole.checked_add(i64::from(f) / divisor))
                .ok_or_else(out_of_range)
        })
    } else {
        let factor = todo.factor();
        if factor == 1 {
            return Ok(epoch);
        }
        epoch.try_unary(|e| e.checked_mul(factor).ok_or_else(out_of_range))
    };
    values.map_err(|_| "a timestamp out of range".to_owned())
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
                let int = |s: &str| match s.trim().parse::<i64>() {
                    Ok(n) => Ok(n),
                    Err(_) if s.trim().parse::<i128>().is_ok() => Err(format!("`{s}` is out of range{BEYOND_INT64}")),
                    Err(_) => Err(bad(s)),
                };
                b.append_option(cell.as_deref().map(int).transpose()?);
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

    /// A Snowflake-shaped IPC stream: text, a `{epoch, fraction}` timestamp struct, an Int64
    /// TIME(3), an Int64 TIMESTAMP_LTZ(2) and a `{epoch, timezone}` TIMESTAMP_TZ(2), in two
    /// batches, with nulls of every kind and null struct rows whose `epoch` would overflow if it
    /// were computed.
    fn coded_stream(overflow_in_valid_row: bool) -> Vec<u8> {
        use connections_core::arrow::array::{Int32Array, StringArray};
        use connections_core::arrow::buffer::NullBuffer;
        use connections_core::arrow::ipc::writer::StreamWriter;
        let members = vec![Field::new("epoch", DataType::Int64, true), Field::new("fraction", DataType::Int32, true)];
        let ts_type = DataType::Struct(members.clone().into());
        let tz_members =
            vec![Field::new("epoch", DataType::Int64, true), Field::new("timezone", DataType::Int32, true)];
        let schema = Arc::new(Schema::new(vec![
            Field::new("N", DataType::Utf8, true),
            Field::new("TS", ts_type, true),
            Field::new("T", DataType::Int64, true),
            Field::new("TS2", DataType::Int64, true),
            Field::new("TZ", DataType::Struct(tz_members.clone().into()), true),
        ]));
        let batch = |base: i64, last_epoch: i64| {
            let epochs = Int64Array::from(vec![Some(base), Some(i64::MAX), None, Some(-base), Some(last_epoch)]);
            let fractions = Int32Array::from(vec![Some(250_000_000), Some(1), Some(0), None, Some(999_999_999)]);
            let ts = StructArray::try_new(
                members.clone().into(),
                vec![Arc::new(epochs) as ArrayRef, Arc::new(fractions)],
                Some(NullBuffer::from(vec![true, false, true, true, true])),
            )
            .unwrap();
            let tz = StructArray::try_new(
                tz_members.clone().into(),
                vec![
                    Arc::new(Int64Array::from(vec![Some(170_921_433_025), Some(i64::MAX), None, Some(-5), Some(1)]))
                        as ArrayRef,
                    Arc::new(Int32Array::from(vec![Some(1500), Some(1440), None, Some(1380), Some(1440)])),
                ],
                Some(NullBuffer::from(vec![true, false, true, true, true])),
            )
            .unwrap();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(vec![Some("a"), None, Some("c"), Some("d"), Some("e")])),
                    Arc::new(ts),
                    Arc::new(Int64Array::from(vec![Some(49_530_250), None, Some(0), Some(1), Some(86_399_999)])),
                    Arc::new(Int64Array::from(vec![Some(170_921_433_025), Some(-1), None, Some(0), Some(7)])),
                    Arc::new(tz),
                ],
            )
            .unwrap()
        };
        let last_epoch = if overflow_in_valid_row { i64::MAX / 10 } else { 1_709_214_330 };
        let mut bytes = Vec::new();
        let mut writer = StreamWriter::try_new(&mut bytes, &schema).unwrap();
        writer.write(&batch(1_709_214_330, 0)).unwrap();
        writer.write(&batch(86_400, last_epoch)).unwrap();
        writer.finish().unwrap();
        drop(writer);
        bytes
    }

    fn coded_rowtype() -> Vec<Column> {
        vec![
            col("N", "text", 0, 0),
            col("TS", "timestamp_ntz", 0, 9),
            col("T", "time", 0, 3),
            col("TS2", "timestamp_ltz", 0, 2),
            col("TZ", "timestamp_tz", 0, 2),
        ]
    }

    #[test]
    fn coded_times_rewritten_in_place_equal_the_general_conversion() {
        use connections_core::DataFrame;
        let (bytes, rowtype) = (coded_stream(false), coded_rowtype());
        let schema = schema(&rowtype, None);

        // which path serves: every coded column of both batches is rewritten in place
        let mut copy = bytes.clone();
        let frames = ipc::frames(&copy).unwrap();
        let asks: Vec<ipc::Ask> = rowtype.iter().map(|c| ask(kind(c))).collect();
        assert_eq!(ipc::rewrite(&mut copy, &frames, &asks), vec![vec![false, true, true, true, true]; 2]);

        let fast = batches_from(bytes.clone(), &rowtype, &schema, true).unwrap();
        let general = batches_from(bytes, &rowtype, &schema, false).unwrap();
        assert_eq!(fast, general);
        for (fast, general) in fast.iter().zip(&general) {
            for (f, g) in fast.columns().iter().zip(general.columns()) {
                // the same bytes, null slots included, not only the same logical values
                assert_eq!(f.to_data().buffers(), g.to_data().buffers());
                assert_eq!(f.nulls(), g.nulls());
            }
        }
        let tz = fast[0].column(4).as_primitive::<TimestampMillisecondType>();
        assert_eq!((tz.value(0), tz.is_null(1), tz.value(3)), (1_709_214_330_250, true, -50));
        let shown = pretty_format_batches(&fast).unwrap().to_string();
        assert!(shown.contains("2024-02-29T13:45:30.250") && shown.contains("13:45:30.250"), "{shown}");
        // the general path allocates the converted columns next to the stream; the rewrite not
        let weight = |batches: Vec<RecordBatch>| DataFrame::new(Arc::clone(&schema), batches).unwrap().arrow_bytes();
        assert!(weight(fast) < weight(general));
    }

    #[test]
    fn a_value_that_would_overflow_leaves_the_column_to_the_general_path() {
        let (bytes, rowtype) = (coded_stream(true), coded_rowtype());
        let mut copy = bytes.clone();
        let frames = ipc::frames(&copy).unwrap();
        let asks: Vec<ipc::Ask> = rowtype.iter().map(|c| ask(kind(c))).collect();
        let untouched = copy.clone();
        let done = ipc::rewrite(&mut copy, &frames, &asks);
        assert_eq!(done, vec![vec![false, true, true, true, true], vec![false, false, true, true, true]]);
        assert_ne!(copy, untouched, "the other coded columns are rewritten");
        let schema = schema(&rowtype, None);
        let fast = batches_from(bytes.clone(), &rowtype, &schema, true).unwrap_err();
        let general = batches_from(bytes, &rowtype, &schema, false).unwrap_err();
        assert_eq!(fast, general);
        assert!(fast.contains("column `TS`: a timestamp out of range"), "{fast}");
    }

    #[test]
    fn a_number_beyond_64_bits_says_how_to_select_it() {
        use connections_core::arrow::array::Decimal128Array;
        let rowtype = vec![col("BIG", "fixed", 38, 0)];
        let schema = schema(&rowtype, None);
        let json = json_batch(&[vec![json!("123456789012345678901234567890")]], &rowtype, &schema).unwrap_err();
        let decimals: ArrayRef = Arc::new(
            Decimal128Array::from(vec![123_456_789_012_345_678_901_234_567_890_i128])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        );
        let arrow = convert(Kind::Int, &decimals, false).unwrap_err();
        for err in [json, arrow] {
            assert!(err.contains("does not fit in 64 bits") && err.contains("n::number(38, 1)"), "{err}");
        }
        // a NUMBER(38, 0) sent as Decimal128 with values that fit is read as Int64
        let fits: ArrayRef =
            Arc::new(Decimal128Array::from(vec![Some(-7_i128), None]).with_precision_and_scale(38, 0).unwrap());
        let ints = convert(Kind::Int, &fits, false).unwrap();
        assert_eq!(ints.as_primitive::<Int64Type>(), &Int64Array::from(vec![Some(-7), None]));
    }

    #[test]
    fn a_cut_stream_is_an_error_wherever_it_is_cut() {
        let (bytes, rowtype) = (coded_stream(false), coded_rowtype());
        let schema = schema(&rowtype, None);
        let whole = batches_from(bytes.clone(), &rowtype, &schema, true).unwrap();
        assert_eq!(whole.iter().map(RecordBatch::num_rows).sum::<usize>(), 10);
        for cut in (1..bytes.len() - 8).step_by(7) {
            // never a panic, and never a part of the result passed off as the whole
            if let Ok(batches) = batches_from(bytes[..cut].to_vec(), &rowtype, &schema, true) {
                assert!(batches.iter().map(RecordBatch::num_rows).sum::<usize>() < 10, "cut at {cut}");
            }
        }
    }
}
