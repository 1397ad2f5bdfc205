//! Result columns and binary-protocol rows, decoded straight into the Arrow column builders.
//!
//! The column types and values are read exactly as sqlx reads them (the same type names and, for
//! strings, whether the character set is `binary`, hence the same Arrow kinds through
//! [`super::super::mysql::kind_of`], and the same decoding and error rules),
//! so a result is the same whichever path produced it; the tests of `tests/tests/sql_mysql.rs`
//! compare the two on every type.

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{Error, Result};
use sqlx::mysql::types::{MySqlTime, MySqlTimeSign};
use sqlx::types::chrono::{NaiveDate, NaiveTime};

use super::malformed;
use super::packets::Fields;
use crate::backend::mysql::{invalid_date, kind_of, time_of_day};
use crate::backend::{bool_from_int, undecodable, unsupported};
use crate::columns::{Batches, Column, Kind, date32, time64};

/// Column flags (protocol documentation names).
const UNSIGNED: u16 = 32;
const BINARY: u16 = 128;
const ENUM: u16 = 256;

/// The collation id of the `binary` character set: a string column in it is Binary, any other
/// is text (see [`kind_of`]).
const BINARY_COLLATION: u16 = 63;

/// Type ids of the binary protocol (the ones this module looks at).
mod ty {
    pub(super) const TINY: u8 = 0x01;
    pub(super) const SHORT: u8 = 0x02;
    pub(super) const LONG: u8 = 0x03;
    pub(super) const FLOAT: u8 = 0x04;
    pub(super) const DOUBLE: u8 = 0x05;
    pub(super) const NULL: u8 = 0x06;
    pub(super) const TIMESTAMP: u8 = 0x07;
    pub(super) const LONGLONG: u8 = 0x08;
    pub(super) const INT24: u8 = 0x09;
    pub(super) const DATE: u8 = 0x0a;
    pub(super) const TIME: u8 = 0x0b;
    pub(super) const DATETIME: u8 = 0x0c;
    pub(super) const YEAR: u8 = 0x0d;
    pub(super) const BIT: u8 = 0x10;
}

/// One result column as the server describes it (what this module reads of `mysql_common`'s
/// `Column`).
pub(super) struct ColumnDef {
    name: String,
    type_id: u8,
    flags: u16,
    max_size: u32,
    /// The collation id of the column's character set (63: `binary`).
    collation: u16,
}

impl ColumnDef {
    /// sqlx's name of the column's type; `None` for a type id sqlx does not know.
    fn type_name(&self) -> Option<&'static str> {
        let binary = self.flags & BINARY != 0;
        let unsigned = self.flags & UNSIGNED != 0;
        Some(match self.type_id {
            ty::TINY if self.max_size == 1 => "BOOLEAN",
            ty::TINY if unsigned => "TINYINT UNSIGNED",
            ty::SHORT if unsigned => "SMALLINT UNSIGNED",
            ty::LONG if unsigned => "INT UNSIGNED",
            ty::INT24 if unsigned => "MEDIUMINT UNSIGNED",
            ty::LONGLONG if unsigned => "BIGINT UNSIGNED",
            ty::TINY => "TINYINT",
            ty::SHORT => "SMALLINT",
            ty::LONG => "INT",
            ty::INT24 => "MEDIUMINT",
            ty::LONGLONG => "BIGINT",
            ty::FLOAT => "FLOAT",
            ty::DOUBLE => "DOUBLE",
            ty::NULL => "NULL",
            ty::TIMESTAMP => "TIMESTAMP",
            ty::DATE => "DATE",
            ty::TIME => "TIME",
            ty::DATETIME => "DATETIME",
            ty::YEAR => "YEAR",
            ty::BIT => "BIT",
            0xf7 => "ENUM",
            0xf8 => "SET",
            0x00 | 0xf6 => "DECIMAL",
            0xff => "GEOMETRY",
            0xf5 => "JSON",
            0xfe if binary => "BINARY",
            0xfe if self.flags & ENUM != 0 => "ENUM",
            0x0f | 0xfd if binary => "VARBINARY",
            0xfe => "CHAR",
            0x0f | 0xfd => "VARCHAR",
            0xf9 if binary => "TINYBLOB",
            0xf9 => "TINYTEXT",
            0xfc if binary => "BLOB",
            0xfc => "TEXT",
            0xfa if binary => "MEDIUMBLOB",
            0xfa => "MEDIUMTEXT",
            0xfb if binary => "LONGBLOB",
            0xfb => "LONGTEXT",
            _ => return None,
        })
    }

    /// How the column's values are laid out in a binary row.
    fn layout(&self) -> Layout {
        match self.type_id {
            ty::LONGLONG | ty::DOUBLE => Layout::Fixed(8),
            ty::LONG | ty::INT24 | ty::FLOAT => Layout::Fixed(4),
            ty::SHORT | ty::YEAR => Layout::Fixed(2),
            ty::TINY => Layout::Fixed(1),
            ty::TIMESTAMP | ty::DATE | ty::TIME | ty::DATETIME => Layout::Temporal,
            _ => Layout::LengthEncoded,
        }
    }
}

impl From<&mysql_common::packets::Column> for ColumnDef {
    fn from(column: &mysql_common::packets::Column) -> Self {
        // sqlx names a column by its alias (the name in the select list), else its own name
        let name = if column.name_ref().is_empty() { column.org_name_ref() } else { column.name_ref() };
        Self {
            name: String::from_utf8_lossy(name).into_owned(),
            type_id: column.column_type() as u8,
            flags: column.flags().bits(),
            max_size: column.column_length(),
            collation: column.character_set(),
        }
    }
}

/// Where a value ends in a binary row.
#[derive(Clone, Copy)]
enum Layout {
    /// A fixed number of bytes.
    Fixed(usize),
    /// A length-encoded string.
    LengthEncoded,
    /// A one-byte length, then that many bytes (kept with the value: it tells the value's form).
    Temporal,
}

/// How one result column's values are decoded from the binary protocol: its name and type (for
/// messages), whether its type has an Arrow mapping, and whether it is a `BIT` (big-endian). The
/// bulk reader and sqlx's row path (which hands over the same bytes) both decode through
/// [`append`], so a value cannot read one way on one path and another on the other.
pub(crate) struct ValueDecoder {
    name: String,
    type_name: String,
    supported: bool,
    bit: bool,
}

impl ValueDecoder {
    /// The decoder of a column of the type sqlx names `type_name`, of `kind` (`None`: no Arrow
    /// mapping).
    pub(crate) fn new(name: String, type_name: &str, kind: Option<Kind>) -> Self {
        Self { name, type_name: type_name.to_owned(), supported: kind.is_some(), bit: type_name == "BIT" }
    }
}

/// Whether every column has a type sqlx knows (a statement's columns are checked before it runs).
pub(super) fn known(defs: &[ColumnDef]) -> bool {
    defs.iter().all(|d| d.type_name().is_some())
}

/// Binary rows of one result into batches.
pub(super) struct Rows {
    columns: Batches,
    decoders: Vec<(Layout, ValueDecoder)>,
    number: usize,
}

impl Rows {
    /// Columns for the result's definitions.
    pub(super) fn new(defs: Vec<ColumnDef>, batch_size: usize) -> Result<Self> {
        let mut plan = Vec::with_capacity(defs.len());
        let mut decoders = Vec::with_capacity(defs.len());
        for def in defs {
            let type_name = def.type_name().ok_or_else(|| {
                Error::statement(format!("column `{}` has an unknown type id {}", def.name, def.type_id))
            })?;
            let kind = kind_of(type_name, def.collation == BINARY_COLLATION);
            let layout = def.layout();
            plan.push((def.name.clone(), kind.unwrap_or(Kind::Text)));
            decoders.push((layout, ValueDecoder::new(def.name, type_name, kind)));
        }
        Ok(Self { columns: Batches::new(plan, batch_size), decoders, number: 0 })
    }

    /// Appends one binary row (a packet starting with `0x00`); returns a batch when one is full.
    pub(super) fn push(&mut self, payload: &[u8]) -> Result<Option<RecordBatch>> {
        let count = self.decoders.len();
        let bitmap_length = (count + 9) / 8;
        let malformed = || malformed("a row");
        let bitmap = payload.get(1..=bitmap_length).ok_or_else(malformed)?;
        let mut rest = Fields::new(&payload[1 + bitmap_length..]);
        for (index, (column, (layout, decoder))) in self.columns.columns().iter_mut().zip(&self.decoders).enumerate() {
            let bit = index + 2; // the first two bits of the bitmap are reserved
            if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
                column.append_null();
                continue;
            }
            let value = match layout {
                Layout::Fixed(n) => rest.take(*n),
                Layout::LengthEncoded => rest.lenenc_bytes(),
                Layout::Temporal => rest.rest().first().and_then(|n| rest.take(1 + usize::from(*n))),
            }
            .ok_or_else(malformed)?;
            append(column, decoder, value, self.number)?;
        }
        self.number += 1;
        self.columns.row_done()
    }

    /// The schema and the last, partial batch (if it has rows).
    pub(super) fn finish(self) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.columns.into_batches()
    }
}

/// The error for a value that does not decode, worded as for the values sqlx decodes.
fn bad(decoder: &ValueDecoder, row: usize, why: &str) -> Error {
    undecodable(&decoder.name, &decoder.type_name, row, why)
}

/// A little-endian integer of 1 to 8 bytes, sign-extended.
fn int(value: &[u8]) -> Option<i64> {
    let last = *value.last()?;
    let mut bytes = if last & 0x80 != 0 { [0xFF; 8] } else { [0; 8] };
    bytes.get_mut(..value.len())?.copy_from_slice(value);
    Some(i64::from_le_bytes(bytes))
}

/// A little-endian unsigned integer of 1 to 8 bytes.
fn uint(value: &[u8]) -> Option<u64> {
    let mut bytes = [0; 8];
    bytes.get_mut(..value.len())?.copy_from_slice(value);
    Some(u64::from_le_bytes(bytes))
}

fn signed<T: TryFrom<i64>>(value: &[u8], d: &ValueDecoder, row: usize) -> Result<T> {
    int(value).and_then(|v| T::try_from(v).ok()).ok_or_else(|| bad(d, row, "an integer out of the column's range"))
}

fn unsigned<T: TryFrom<u64>>(value: &[u8], d: &ValueDecoder, row: usize) -> Result<T> {
    let v = if d.bit { Some(value.iter().fold(0_u64, |acc, b| acc << 8 | u64::from(*b))) } else { uint(value) };
    v.and_then(|v| T::try_from(v).ok()).ok_or_else(|| bad(d, row, "an integer out of the column's range"))
}

fn float(value: &[u8], d: &ValueDecoder, row: usize) -> Result<f64> {
    if let Ok(bytes) = <[u8; 8]>::try_from(value) {
        Ok(f64::from_le_bytes(bytes))
    } else if let Ok(bytes) = <[u8; 4]>::try_from(value) {
        Ok(f64::from(f32::from_le_bytes(bytes)))
    } else {
        Err(bad(d, row, "a floating-point value of neither 4 nor 8 bytes"))
    }
}

/// The date at the start of a temporal value (after its length byte).
fn date(value: &[u8], d: &ValueDecoder, row: usize) -> Result<NaiveDate> {
    match value {
        [n, lo, hi, month, day, ..] if *n >= 4 => {
            let year = i32::from(u16::from_le_bytes([*lo, *hi]));
            NaiveDate::from_ymd_opt(year, u32::from(*month), u32::from(*day)).ok_or_else(|| invalid_date(&d.name, row))
        }
        // a zero date is sent as no bytes at all
        _ => Err(invalid_date(&d.name, row)),
    }
}

/// Microseconds since the epoch of a DATETIME or TIMESTAMP value.
fn datetime(value: &[u8], d: &ValueDecoder, row: usize) -> Result<i64> {
    let day = date(value, d, row)?;
    let (h, m, s) = match value.get(5..8) {
        Some([h, m, s]) if value[0] > 4 => (u32::from(*h), u32::from(*m), u32::from(*s)),
        _ => (0, 0, 0),
    };
    let micros = match value.get(8..12) {
        Some(us) if value[0] > 7 => u32::from_le_bytes([us[0], us[1], us[2], us[3]]),
        _ => 0,
    };
    let at = day.and_hms_micro_opt(h, m, s, micros).ok_or_else(|| invalid_date(&d.name, row))?;
    Ok(at.and_utc().timestamp_micros())
}

/// A TIME value as a time of day (by [`time_of_day`]'s rule).
fn time(value: &[u8], d: &ValueDecoder, row: usize) -> Result<NaiveTime> {
    match value {
        [0, ..] => Ok(NaiveTime::MIN),
        [8 | 12, negative, days @ .., hour, minute, second]
        | [8 | 12, negative, days @ .., hour, minute, second, _, _, _, _]
            if days.len() == 4 =>
        {
            let sign = if *negative == 0 { MySqlTimeSign::Positive } else { MySqlTimeSign::Negative };
            let days = u32::from_le_bytes(days.try_into().unwrap_or_default());
            let micros = value.get(9..13).and_then(|us| us.try_into().ok()).map_or(0, u32::from_le_bytes);
            let hours = days.saturating_mul(24).saturating_add(u32::from(*hour));
            let time =
                MySqlTime::new(sign, hours, *minute, *second, micros).map_err(|e| bad(d, row, &e.to_string()))?;
            time_of_day(time).map_err(|why| bad(d, row, why))
        }
        _ => Err(bad(d, row, "a TIME value of unexpected length")),
    }
}

fn text<'v>(value: &'v [u8], d: &ValueDecoder, row: usize) -> Result<&'v str> {
    std::str::from_utf8(value).map_err(|_| bad(d, row, "text that is not UTF-8"))
}

#[allow(clippy::cast_possible_truncation)] // FLOAT columns: sqlx narrows an 8-byte value the same way
/// Appends one non-NULL value in the binary protocol's form (fixed-size integers and floats,
/// strings without their length, temporal values with their length byte) to `column`.
pub(crate) fn append(column: &mut Column, d: &ValueDecoder, value: &[u8], row: usize) -> Result<()> {
    if !d.supported {
        return Err(unsupported(&d.name, &d.type_name));
    }
    match column {
        Column::Bool(b) => b.append_value(bool_from_int(signed(value, d, row)?, &d.name, row)?),
        Column::I8(b) => b.append_value(signed(value, d, row)?),
        Column::I16(b) => b.append_value(signed(value, d, row)?),
        Column::I32(b) => b.append_value(signed(value, d, row)?),
        Column::I64(b) => b.append_value(signed(value, d, row)?),
        Column::U8(b) => b.append_value(unsigned(value, d, row)?),
        Column::U16(b) => b.append_value(unsigned(value, d, row)?),
        Column::U32(b) => b.append_value(unsigned(value, d, row)?),
        Column::U64(b) => b.append_value(unsigned(value, d, row)?),
        Column::F32(b) => b.append_value(float(value, d, row)? as f32),
        Column::F64(b) => b.append_value(float(value, d, row)?),
        Column::Decimal(b) => b.append_text(text(value, d, row)?).map_err(|why| bad(d, row, why))?,
        Column::Text(b) => b.append_value(text(value, d, row)?),
        Column::Bytes(b) => b.append_value(value),
        Column::Date(b) => b.append_value(date32(date(value, d, row)?)),
        Column::Time(b) => b.append_value(time64(time(value, d, row)?)),
        Column::Timestamp(b) | Column::TimestampUtc(b) => b.append_value(datetime(value, d, row)?),
        _ => return Err(unsupported(&d.name, &d.type_name)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> ValueDecoder {
        ValueDecoder::new("c".into(), "T", Some(Kind::Text))
    }

    #[test]
    fn integers_are_little_endian_and_sign_extended() {
        assert_eq!(int(&[0xFF]), Some(-1));
        assert_eq!(int(&[0x7F]), Some(127));
        assert_eq!(int(&[0x00, 0x80]), Some(-32768));
        assert_eq!(int(&1_234_567_890_123_i64.to_le_bytes()), Some(1_234_567_890_123));
        assert_eq!(uint(&[0xFF, 0xFF]), Some(65535));
        assert_eq!(int(&[]), None);
        assert!(signed::<i8>(&[0x00, 0x01], &decoder(), 0).is_err(), "256 does not fit an i8");
        let bits = ValueDecoder::new("c".into(), "BIT", Some(Kind::U64));
        assert_eq!(unsigned::<u64>(&[0x01, 0x02], &bits, 0).unwrap(), 0x0102, "BIT is big-endian");
    }

    #[test]
    fn temporal_values_of_every_length() {
        let d = decoder();
        assert_eq!(date(&[4, 0xE8, 0x07, 2, 29], &d, 0).unwrap(), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert!(date(&[0], &d, 0).is_err(), "a zero date");
        let midnight = datetime(&[4, 0xB2, 0x07, 1, 1], &d, 0).unwrap();
        assert_eq!(midnight, 0);
        let with_micros = datetime(&[11, 0xB2, 0x07, 1, 1, 0, 0, 1, 5, 0, 0, 0], &d, 0).unwrap();
        assert_eq!(with_micros, 1_000_005);
        assert_eq!(time(&[0], &d, 0).unwrap(), NaiveTime::MIN);
        let t = time(&[8, 0, 0, 0, 0, 0, 13, 14, 15], &d, 0).unwrap();
        assert_eq!(t, NaiveTime::from_hms_opt(13, 14, 15).unwrap());
        assert!(time(&[8, 1, 0, 0, 0, 0, 1, 0, 0], &d, 0).is_err(), "negative");
        assert!(time(&[8, 0, 1, 0, 0, 0, 1, 0, 0], &d, 0).is_err(), "25 hours");
    }

    #[test]
    fn rows_with_nulls_fill_the_columns() {
        let def =
            |name: &str, type_id, max_size| ColumnDef { name: name.into(), type_id, flags: 0, max_size, collation: 45 };
        let mut rows = Rows::new(vec![def("id", ty::LONGLONG, 20), def("s", 0xfc, 65535)], 10).unwrap();
        let mut row = vec![0x00, 0b0000_1000]; // header, bitmap: column 1 (bit 3) is NULL
        row.extend_from_slice(&7_i64.to_le_bytes());
        assert!(rows.push(&row).unwrap().is_none(), "the batch is not full yet");
        let mut row = vec![0x00, 0];
        row.extend_from_slice(&8_i64.to_le_bytes());
        row.extend_from_slice(&[2, b'h', b'i']);
        rows.push(&row).unwrap();
        assert!(rows.push(&[0x00, 0, 1, 2]).is_err(), "a row cut short");
        let (schema, batches) = rows.finish().unwrap();
        assert_eq!(schema.fields().len(), 2);
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].column(1).null_count(), 1);
    }
}
