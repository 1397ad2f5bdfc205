//! PostgreSQL's binary format of each supported type, decoded into Arrow column builders.
//!
//! The row path (sqlx asks for every result column in binary) and the `COPY ... (FORMAT binary)`
//! path receive the same bytes for a value (both come from the type's `send` function), and both
//! hand them to [`append`]: one decoder per type, so the two paths cannot disagree.

use connections_core::Result;
use connections_core::arrow::array::{
    ArrayBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder,
};

use super::Wire;
use crate::backend::undecodable;
use crate::columns::{Column, DecimalColumn};

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Microseconds in a day: `time '24:00:00'`, which Arrow's Time64 cannot hold.
const DAY_MICROS: i64 = 86_400_000_000;

/// Why a value did not decode; the caller names the column, its type and the row.
type Why = &'static str;

/// Appends one non-NULL value in PostgreSQL's binary format to `column`.
pub(crate) fn append(
    column: &mut Column,
    wire: Wire,
    value: &[u8],
    name: &str,
    type_name: &str,
    row: usize,
) -> Result<()> {
    append_value(column, wire, value).map_err(|why| undecodable(name, type_name, row, why))
}

fn append_value(column: &mut Column, wire: Wire, value: &[u8]) -> std::result::Result<(), Why> {
    match (column, wire) {
        (Column::Bool(b), Wire::Plain) => b.append_value(bool_of(value)?),
        (Column::I16(b), Wire::Plain) => b.append_value(i16::from_be_bytes(fixed(value)?)),
        (Column::I32(b), Wire::Plain) => b.append_value(i32::from_be_bytes(fixed(value)?)),
        (Column::I64(b), Wire::Plain) => b.append_value(i64::from_be_bytes(fixed(value)?)),
        (Column::I64(b), Wire::Oid) => b.append_value(i64::from(u32::from_be_bytes(fixed(value)?))),
        (Column::F32(b), Wire::Plain) => b.append_value(f32::from_be_bytes(fixed(value)?)),
        (Column::F64(b), Wire::Plain) => b.append_value(f64::from_be_bytes(fixed(value)?)),
        (Column::Decimal(d), Wire::Plain) => numeric(d, value)?,
        (Column::Text(b), Wire::Plain | Wire::Json) => b.append_value(text(value)?),
        (Column::Text(b), Wire::Jsonb) => match value.split_first() {
            Some((1, json)) => b.append_value(text(json)?),
            _ => return Err("unknown jsonb format version"),
        },
        (Column::Text(b), Wire::Uuid) => b.append_value(sqlx::types::Uuid::from_bytes(fixed(value)?).to_string()),
        (Column::Bytes(b), Wire::Plain) => b.append_value(value),
        (Column::Date(b), Wire::Plain) => b.append_value(date(i32::from_be_bytes(fixed(value)?))?),
        (Column::Time(b), Wire::Plain) => b.append_value(time(i64::from_be_bytes(fixed(value)?))?),
        (Column::Timestamp(b) | Column::TimestampUtc(b), Wire::Plain) => {
            b.append_value(timestamp(i64::from_be_bytes(fixed(value)?))?);
        }
        (Column::ListBool(b), Wire::Plain) => list(
            b,
            value,
            |v, x| {
                v.append_value(bool_of(x)?);
                Ok(())
            },
            BooleanBuilder::append_null,
        )?,
        (Column::ListI16(b), Wire::Plain) => {
            list(
                b,
                value,
                |v, x| {
                    v.append_value(i16::from_be_bytes(fixed(x)?));
                    Ok(())
                },
                Int16Builder::append_null,
            )?;
        }
        (Column::ListI32(b), Wire::Plain) => {
            list(
                b,
                value,
                |v, x| {
                    v.append_value(i32::from_be_bytes(fixed(x)?));
                    Ok(())
                },
                Int32Builder::append_null,
            )?;
        }
        (Column::ListI64(b), Wire::Plain) => {
            list(
                b,
                value,
                |v, x| {
                    v.append_value(i64::from_be_bytes(fixed(x)?));
                    Ok(())
                },
                Int64Builder::append_null,
            )?;
        }
        (Column::ListF32(b), Wire::Plain) => {
            list(
                b,
                value,
                |v, x| {
                    v.append_value(f32::from_be_bytes(fixed(x)?));
                    Ok(())
                },
                Float32Builder::append_null,
            )?;
        }
        (Column::ListF64(b), Wire::Plain) => {
            list(
                b,
                value,
                |v, x| {
                    v.append_value(f64::from_be_bytes(fixed(x)?));
                    Ok(())
                },
                Float64Builder::append_null,
            )?;
        }
        (Column::ListText(b), Wire::Plain) => {
            list(
                b,
                value,
                |v, x| {
                    v.append_value(text(x)?);
                    Ok(())
                },
                StringBuilder::append_null,
            )?;
        }
        _ => return Err("the value's format does not match the column"),
    }
    Ok(())
}

fn fixed<const N: usize>(value: &[u8]) -> std::result::Result<[u8; N], Why> {
    value.try_into().map_err(|_| "the value has the wrong length for its type")
}

fn bool_of(value: &[u8]) -> std::result::Result<bool, Why> {
    match value {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err("not a boolean"),
    }
}

fn text(value: &[u8]) -> std::result::Result<&str, Why> {
    std::str::from_utf8(value).map_err(|_| "the text is not UTF-8")
}

/// A `date` as days since 1970-01-01; `infinity` and `-infinity` have no Date32 value.
fn date(days: i32) -> std::result::Result<i32, Why> {
    if days == i32::MAX || days == i32::MIN {
        return Err("infinity and -infinity have no Arrow Date32 value; cast the column to text in the query");
    }
    days.checked_add(PG_EPOCH_DAYS).ok_or("the date is outside Arrow Date32's range")
}

/// A `time` as microseconds since midnight; `24:00:00` is not a time of day Arrow holds.
fn time(micros: i64) -> std::result::Result<i64, Why> {
    if (0..DAY_MICROS).contains(&micros) {
        Ok(micros)
    } else {
        Err("24:00:00 is not a time of day Arrow's Time64 holds; cast the column to text in the query")
    }
}

/// A `timestamp` or `timestamptz` as microseconds since 1970-01-01 (UTC for `timestamptz`).
fn timestamp(micros: i64) -> std::result::Result<i64, Why> {
    if micros == i64::MAX || micros == i64::MIN {
        return Err("infinity and -infinity have no Arrow timestamp value; cast the column to text in the query");
    }
    micros.checked_add(PG_EPOCH_MICROS).ok_or("the timestamp is outside Arrow's microsecond range")
}

/// A `numeric`: base-10000 digits with a weight, a sign and the display scale (the number of
/// fractional digits the server prints), appended exactly at that scale.
fn numeric(column: &mut DecimalColumn, value: &[u8]) -> std::result::Result<(), Why> {
    let header = |at: usize| value.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or(MALFORMED);
    let ndigits = usize::from(header(0)?);
    let weight = i32::from(header(2)?.cast_signed());
    let sign = header(4)?;
    let dscale = u32::from(header(6)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN has no Decimal128 value; cast the column to text or float8 in the query"),
        0xD000 | 0xF000 => {
            return Err("infinity and -infinity have no Decimal128 value; cast the column to text in the query");
        }
        _ => return Err(MALFORMED),
    }
    let too_wide = crate::columns::DECIMAL_TOO_WIDE;
    // Digit k (base 10 000) is worth 10 000^(weight - k); at the display scale, that is
    // 10^(4 (weight - k) + dscale). The last digit may run past the display scale with zeros.
    let mut unscaled: i128 = 0;
    for k in 0..ndigits {
        let digit = i128::from(header(8 + 2 * k)?);
        let k = i64::try_from(k).map_err(|_| MALFORMED)?;
        let exponent = 4 * (i64::from(weight) - k) + i64::from(dscale);
        let part = if exponent >= 0 {
            let factor = u32::try_from(exponent).ok().and_then(|e| 10_i128.checked_pow(e));
            factor.and_then(|f| digit.checked_mul(f)).ok_or(too_wide)?
        } else {
            let divisor = u32::try_from(-exponent).ok().and_then(|e| 10_i128.checked_pow(e)).unwrap_or(i128::MAX);
            if digit % divisor != 0 {
                return Err(MALFORMED); // digits past the display scale are zeros
            }
            digit / divisor
        };
        unscaled = unscaled.checked_add(part).ok_or(too_wide)?;
    }
    let unscaled = if sign == 0x4000 { -unscaled } else { unscaled };
    column.append_unscaled(unscaled, dscale)
}

const MALFORMED: Why = "malformed value from the server";

/// Appends a one-dimensional array to a list column: `push` appends one non-NULL element to the
/// element builder, `null` a NULL element.
fn list<B: ArrayBuilder>(
    builder: &mut ListBuilder<B>,
    value: &[u8],
    push: impl Fn(&mut B, &[u8]) -> std::result::Result<(), Why>,
    null: impl Fn(&mut B),
) -> std::result::Result<(), Why> {
    let int = |at: usize| value.get(at..at + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or(MALFORMED);
    // header: dimensions, has-NULL flag, element type; then per dimension its size and lower bound
    let (count, mut at) = match int(0)? {
        0 => (0, 12),
        1 => (usize::try_from(int(12)?).map_err(|_| MALFORMED)?, 20),
        _ => return Err("multi-dimensional arrays have no Arrow mapping; unnest them in the query"),
    };
    for _ in 0..count {
        let length = int(at)?;
        at += 4;
        if length < 0 {
            null(builder.values());
            continue;
        }
        let length = usize::try_from(length).map_err(|_| MALFORMED)?;
        push(builder.values(), value.get(at..at + length).ok_or(MALFORMED)?)?;
        at += length;
    }
    builder.append(true);
    Ok(())
}
