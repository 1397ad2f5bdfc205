//! Arrow column builders filled straight from database rows (no intermediate row vectors).

use std::sync::Arc;

use connections_core::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder, new_null_array,
};
use connections_core::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{Error, Result};
use sqlx::types::chrono::{NaiveDate, NaiveTime};

/// The Arrow type a result column is built as. (Each backend makes only some of the kinds.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    /// `Decimal128(38, s)`, `s` the largest scale among the values.
    Decimal,
    /// `Decimal128(p, s)` as the column declares it (PostgreSQL `numeric(p, s)`, `p` ≤ 38).
    DecimalFixed(u8, i8),
    Text,
    Bytes,
    Date,
    Time,
    /// Without time zone.
    Timestamp,
    /// With time zone, normalised to UTC.
    TimestampUtc,
    /// A list of another kind (PostgreSQL arrays).
    List(Elem),
    /// Type not known yet (SQLite expression columns): decided by the first non-NULL value.
    Undecided,
}

/// Element kinds of list columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    Text,
}

/// The time zone of timestamps with time zone: UTC, written as an offset so that Arrow can
/// display and write them without a time-zone database.
pub(crate) const UTC: &str = "+00:00";

/// The largest precision of `Decimal128`.
const MAX_PRECISION: u8 = 38;

/// A column being built.
pub(crate) enum Column {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(DecimalColumn),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    TimestampUtc(TimestampMicrosecondBuilder),
    ListBool(ListBuilder<BooleanBuilder>),
    ListI16(ListBuilder<Int16Builder>),
    ListI32(ListBuilder<Int32Builder>),
    ListI64(ListBuilder<Int64Builder>),
    ListF32(ListBuilder<Float32Builder>),
    ListF64(ListBuilder<Float64Builder>),
    ListText(ListBuilder<StringBuilder>),
    /// Only NULLs so far, and no type known.
    Undecided(usize),
}

impl Column {
    /// An empty column of `kind` with room for `capacity` values.
    pub(crate) fn new(kind: Kind, capacity: usize) -> Self {
        match kind {
            Kind::Bool => Self::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::I8 => Self::I8(Int8Builder::with_capacity(capacity)),
            Kind::I16 => Self::I16(Int16Builder::with_capacity(capacity)),
            Kind::I32 => Self::I32(Int32Builder::with_capacity(capacity)),
            Kind::I64 => Self::I64(Int64Builder::with_capacity(capacity)),
            Kind::U8 => Self::U8(UInt8Builder::with_capacity(capacity)),
            Kind::U16 => Self::U16(UInt16Builder::with_capacity(capacity)),
            Kind::U32 => Self::U32(UInt32Builder::with_capacity(capacity)),
            Kind::U64 => Self::U64(UInt64Builder::with_capacity(capacity)),
            Kind::F32 => Self::F32(Float32Builder::with_capacity(capacity)),
            Kind::F64 => Self::F64(Float64Builder::with_capacity(capacity)),
            Kind::Decimal => Self::Decimal(DecimalColumn::with_capacity(capacity, None)),
            Kind::DecimalFixed(precision, scale) => {
                let mut column = DecimalColumn::with_capacity(capacity, Some(precision));
                column.scale = u32::try_from(scale).unwrap_or(0);
                Self::Decimal(column)
            }
            Kind::Text => Self::Text(StringBuilder::with_capacity(capacity, capacity * 16)),
            Kind::Bytes => Self::Bytes(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            Kind::Date => Self::Date(Date32Builder::with_capacity(capacity)),
            Kind::Time => Self::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            Kind::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity)),
            Kind::TimestampUtc => {
                Self::TimestampUtc(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone(UTC))
            }
            Kind::List(elem) => match elem {
                Elem::Bool => Self::ListBool(ListBuilder::new(BooleanBuilder::new())),
                Elem::I16 => Self::ListI16(ListBuilder::new(Int16Builder::new())),
                Elem::I32 => Self::ListI32(ListBuilder::new(Int32Builder::new())),
                Elem::I64 => Self::ListI64(ListBuilder::new(Int64Builder::new())),
                Elem::F32 => Self::ListF32(ListBuilder::new(Float32Builder::new())),
                Elem::F64 => Self::ListF64(ListBuilder::new(Float64Builder::new())),
                Elem::Text => Self::ListText(ListBuilder::new(StringBuilder::new())),
            },
            Kind::Undecided => Self::Undecided(0),
        }
    }

    /// Finishes the column and makes its builder ready for `rows` more values, variable-length
    /// columns with room for about as many bytes as this batch held: the next batch then never
    /// regrows its buffers, and their capacity matches what they hold.
    pub(crate) fn finish_and_presize(&mut self, rows: usize) -> Result<ArrayRef> {
        let data = match self {
            Self::Text(b) => b.values_slice().len(),
            Self::Bytes(b) => b.values_slice().len(),
            _ => 0,
        };
        let array = self.finish()?;
        let data = data + data / 16;
        match self {
            Self::Bool(b) => *b = BooleanBuilder::with_capacity(rows),
            Self::I8(b) => *b = Int8Builder::with_capacity(rows),
            Self::I16(b) => *b = Int16Builder::with_capacity(rows),
            Self::I32(b) => *b = Int32Builder::with_capacity(rows),
            Self::I64(b) => *b = Int64Builder::with_capacity(rows),
            Self::U8(b) => *b = UInt8Builder::with_capacity(rows),
            Self::U16(b) => *b = UInt16Builder::with_capacity(rows),
            Self::U32(b) => *b = UInt32Builder::with_capacity(rows),
            Self::U64(b) => *b = UInt64Builder::with_capacity(rows),
            Self::F32(b) => *b = Float32Builder::with_capacity(rows),
            Self::F64(b) => *b = Float64Builder::with_capacity(rows),
            Self::Date(b) => *b = Date32Builder::with_capacity(rows),
            Self::Time(b) => *b = Time64MicrosecondBuilder::with_capacity(rows),
            Self::Timestamp(b) => *b = TimestampMicrosecondBuilder::with_capacity(rows),
            Self::TimestampUtc(b) => *b = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC),
            Self::Text(b) => *b = StringBuilder::with_capacity(rows, data),
            Self::Bytes(b) => *b = BinaryBuilder::with_capacity(rows, data),
            _ => {} // decimals, lists and undecided columns grow as they go
        }
        Ok(array)
    }

    /// Decides an undecided column: makes a builder of `kind` holding the NULLs seen so far.
    pub(crate) fn decide(&mut self, kind: Kind, capacity: usize) {
        if let Self::Undecided(nulls) = *self {
            *self = Self::new(kind, capacity.max(nulls));
            for _ in 0..nulls {
                self.append_null();
            }
        }
    }

    /// Turns an Int64 column into a Float64 one, keeping its values (SQLite: a real value met
    /// in a column of integers).
    pub(crate) fn widen_to_f64(&mut self) {
        if let Self::I64(ints) = self {
            let ints = ints.finish();
            let mut floats = Float64Builder::with_capacity(ints.len().max(1024));
            #[allow(clippy::cast_precision_loss)] // SQLite's own conversion of an integer to a real
            floats.extend(ints.iter().map(|v| v.map(|i| i as f64)));
            *self = Self::F64(floats);
        }
    }

    /// Appends a NULL.
    pub(crate) fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::I8(b) => b.append_null(),
            Self::I16(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::U8(b) => b.append_null(),
            Self::U16(b) => b.append_null(),
            Self::U32(b) => b.append_null(),
            Self::U64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Decimal(b) => b.values.push(None),
            Self::Text(b) => b.append_null(),
            Self::Bytes(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b) | Self::TimestampUtc(b) => b.append_null(),
            Self::ListBool(b) => b.append_null(),
            Self::ListI16(b) => b.append_null(),
            Self::ListI32(b) => b.append_null(),
            Self::ListI64(b) => b.append_null(),
            Self::ListF32(b) => b.append_null(),
            Self::ListF64(b) => b.append_null(),
            Self::ListText(b) => b.append_null(),
            Self::Undecided(n) => *n += 1,
        }
    }

    /// The Arrow type of the finished column.
    pub(crate) fn data_type(&self) -> DataType {
        let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
        match self {
            Self::Bool(_) => DataType::Boolean,
            Self::I8(_) => DataType::Int8,
            Self::I16(_) => DataType::Int16,
            Self::I32(_) => DataType::Int32,
            Self::I64(_) => DataType::Int64,
            Self::U8(_) => DataType::UInt8,
            Self::U16(_) => DataType::UInt16,
            Self::U32(_) => DataType::UInt32,
            Self::U64(_) => DataType::UInt64,
            Self::F32(_) => DataType::Float32,
            Self::F64(_) => DataType::Float64,
            Self::Decimal(d) => DataType::Decimal128(d.precision(), d.scale_i8()),
            Self::Text(_) | Self::Undecided(_) => DataType::Utf8,
            Self::Bytes(_) => DataType::Binary,
            Self::Date(_) => DataType::Date32,
            Self::Time(_) => DataType::Time64(TimeUnit::Microsecond),
            Self::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampUtc(_) => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            Self::ListBool(_) => list(DataType::Boolean),
            Self::ListI16(_) => list(DataType::Int16),
            Self::ListI32(_) => list(DataType::Int32),
            Self::ListI64(_) => list(DataType::Int64),
            Self::ListF32(_) => list(DataType::Float32),
            Self::ListF64(_) => list(DataType::Float64),
            Self::ListText(_) => list(DataType::Utf8),
        }
    }

    /// Finishes the column (the builder is left empty, ready for the next batch).
    pub(crate) fn finish(&mut self) -> Result<ArrayRef> {
        Ok(match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::I8(b) => Arc::new(b.finish()),
            Self::I16(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::U8(b) => Arc::new(b.finish()),
            Self::U16(b) => Arc::new(b.finish()),
            Self::U32(b) => Arc::new(b.finish()),
            Self::U64(b) => Arc::new(b.finish()),
            Self::F32(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Decimal(d) => d.finish()?,
            Self::Text(b) => Arc::new(b.finish()),
            Self::Bytes(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b) | Self::TimestampUtc(b) => Arc::new(b.finish()),
            Self::ListBool(b) => Arc::new(b.finish()),
            Self::ListI16(b) => Arc::new(b.finish()),
            Self::ListI32(b) => Arc::new(b.finish()),
            Self::ListI64(b) => Arc::new(b.finish()),
            Self::ListF32(b) => Arc::new(b.finish()),
            Self::ListF64(b) => Arc::new(b.finish()),
            Self::ListText(b) => Arc::new(b.finish()),
            Self::Undecided(n) => {
                let nulls = std::mem::take(n);
                new_null_array(&DataType::Utf8, nulls)
            }
        })
    }
}

/// Decimal values as unscaled `i128`: at the declared precision and scale, or (undeclared) at
/// precision 38 and the largest scale seen so far.
pub(crate) struct DecimalColumn {
    values: Vec<Option<i128>>,
    scale: u32,
    /// The declared precision; the scale then stays as declared.
    fixed: Option<u8>,
}

/// Why a decimal value cannot go into its column.
pub(crate) const DECIMAL_TOO_WIDE: &str =
    "the value has more digits than the column's Decimal128 precision holds (38 at most); cast it to text in the query";

impl DecimalColumn {
    fn with_capacity(capacity: usize, fixed: Option<u8>) -> Self {
        Self { values: Vec::with_capacity(capacity), scale: 0, fixed }
    }

    fn precision(&self) -> u8 {
        self.fixed.unwrap_or(MAX_PRECISION)
    }

    /// The largest unscaled value the precision allows.
    fn max_unscaled(&self) -> i128 {
        10_i128.pow(u32::from(self.precision())) - 1
    }

    /// Appends `unscaled × 10^-scale` exactly, or says why it does not fit (the caller names the
    /// column and the row). A column of declared scale takes values of that scale or less; an
    /// undeclared one grows its scale to the value's, rescaling what it holds.
    pub(crate) fn append_unscaled(&mut self, unscaled: i128, scale: u32) -> std::result::Result<(), &'static str> {
        let mut unscaled = unscaled;
        if scale > self.scale {
            if self.fixed.is_some() {
                return Err("the value has more fractional digits than the column's declared scale");
            }
            let factor = 10_i128.checked_pow(scale - self.scale).ok_or(DECIMAL_TOO_WIDE)?;
            let max = self.max_unscaled();
            for v in self.values.iter_mut().flatten() {
                *v = v.checked_mul(factor).filter(|v| v.abs() <= max).ok_or(DECIMAL_TOO_WIDE)?;
            }
            self.scale = scale;
        } else if scale < self.scale {
            let factor = 10_i128.checked_pow(self.scale - scale).ok_or(DECIMAL_TOO_WIDE)?;
            unscaled = unscaled.checked_mul(factor).ok_or(DECIMAL_TOO_WIDE)?;
        }
        if unscaled.checked_abs().is_none_or(|v| v > self.max_unscaled()) || self.scale > u32::from(self.precision()) {
            return Err(DECIMAL_TOO_WIDE);
        }
        self.values.push(Some(unscaled));
        Ok(())
    }

    /// Appends a decimal written as text (`-12.50`: MySQL's wire form, which carries the
    /// column's declared scale), exactly at the scale it is written with.
    pub(crate) fn append_text(&mut self, text: &str) -> std::result::Result<(), &'static str> {
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty()
            || !(whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()))
        {
            return Err("not a decimal number");
        }
        let mut unscaled: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            unscaled = unscaled
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(digit - b'0')))
                .ok_or(DECIMAL_TOO_WIDE)?;
        }
        let scale = u32::try_from(fraction.len()).map_err(|_| DECIMAL_TOO_WIDE)?;
        self.append_unscaled(if negative { -unscaled } else { unscaled }, scale)
    }

    fn scale_i8(&self) -> i8 {
        i8::try_from(self.scale).unwrap_or(i8::MAX)
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        let values = std::mem::take(&mut self.values);
        let mut builder = Decimal128Builder::with_capacity(values.len());
        builder.extend(values);
        let array = builder
            .finish()
            .with_precision_and_scale(self.precision(), self.scale_i8())
            .map_err(|source| Error::Arrow { action: "build a decimal column of", source })?;
        Ok(Arc::new(array))
    }
}

/// The columns of a result being built, in batches of `batch_size` rows.
pub(crate) struct Batches {
    names: Vec<String>,
    columns: Vec<Column>,
    rows: usize,
    batch_size: usize,
}

impl Batches {
    /// Columns of the given names and kinds.
    pub(crate) fn new(columns: Vec<(String, Kind)>, batch_size: usize) -> Self {
        let capacity = batch_size.min(1024); // small results stay small; full batches presize the next
        let (names, kinds): (Vec<String>, Vec<Kind>) = columns.into_iter().unzip();
        let columns = kinds.into_iter().map(|k| Column::new(k, capacity)).collect();
        Self { names, columns, rows: 0, batch_size: batch_size.max(1) }
    }

    /// The columns, to append one row's values (one per column) to.
    pub(crate) fn columns(&mut self) -> &mut [Column] {
        &mut self.columns
    }

    /// Counts a row whose values were appended; returns a batch when one is full.
    pub(crate) fn row_done(&mut self) -> Result<Option<RecordBatch>> {
        self.rows += 1;
        if self.rows >= self.batch_size { self.assemble(true).map(Some) } else { Ok(None) }
    }

    /// Finishes the rows appended so far into a batch.
    /// Finishes the rows appended so far into a batch; with `more`, the builders are made ready
    /// for another full batch (presized), else left empty (the result's last batch: presizing
    /// would allocate a batch's worth of memory only to free it).
    fn assemble(&mut self, more: bool) -> Result<RecordBatch> {
        let schema = self.schema();
        let rows = self.batch_size;
        let arrays = self
            .columns
            .iter_mut()
            .map(|c| if more { c.finish_and_presize(rows) } else { c.finish() })
            .collect::<Result<Vec<_>>>()?;
        self.rows = 0;
        let options = connections_core::arrow::array::RecordBatchOptions::new()
            .with_row_count(Some(arrays.first().map_or(0, |a| a.len())));
        RecordBatch::try_new_with_options(schema, arrays, &options)
            .map_err(|source| Error::Arrow { action: "assemble a batch of", source })
    }

    /// The schema as the columns stand now.
    pub(crate) fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> =
            self.names.iter().zip(&self.columns).map(|(n, c)| Field::new(n, c.data_type(), true)).collect();
        Arc::new(Schema::new(fields))
    }

    /// The last, partial batch (if it has rows) and the final schema. Undecided columns end as
    /// all-NULL text columns.
    pub(crate) fn into_batches(mut self) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let last = self.assemble(false)?;
        let schema = self.schema();
        let batches = if last.num_rows() > 0 { vec![last] } else { Vec::new() };
        Ok((schema, batches))
    }
}

/// Casts a batch to `schema` (for columns whose type was only decided in a later batch, or
/// decimals whose scale grew).
pub(crate) fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema() == *schema {
        return Ok(batch);
    }
    let arrays = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(a, f)| connections_core::arrow::compute::cast(a, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| Error::Arrow { action: "unify the batches of", source })?;
    RecordBatch::try_new(Arc::clone(schema), arrays)
        .map_err(|source| Error::Arrow { action: "unify the batches of", source })
}

/// Days since 1970-01-01.
pub(crate) fn date32(date: NaiveDate) -> i32 {
    let days = (date - NaiveDate::default()).num_days(); // NaiveDate::default() is 1970-01-01
    i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX })
}

/// Microseconds since midnight.
pub(crate) fn time64(time: NaiveTime) -> i64 {
    (time - NaiveTime::MIN).num_microseconds().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use connections_core::arrow::array::{Array, Decimal128Array};

    #[test]
    fn decimals_take_the_largest_scale() {
        let mut column = Column::new(Kind::Decimal, 4);
        let Column::Decimal(d) = &mut column else { unreachable!() };
        for text in ["1.5", "-2", "3.125", "100"] {
            d.append_text(text).unwrap();
        }
        column.append_null();
        assert_eq!(column.data_type(), DataType::Decimal128(38, 3));
        let array = column.finish().unwrap();
        let array = array.as_any().downcast_ref::<Decimal128Array>().unwrap();
        let shown: Vec<String> = (0..4).map(|i| array.value_as_string(i)).collect();
        assert_eq!(shown, ["1.500", "-2.000", "3.125", "100.000"]);
        assert!(array.is_null(4));
    }

    #[test]
    fn undecided_columns_keep_their_leading_nulls() {
        let mut column = Column::new(Kind::Undecided, 4);
        column.append_null();
        column.append_null();
        column.decide(Kind::I64, 4);
        if let Column::I64(b) = &mut column {
            b.append_value(7);
        }
        let array = column.finish().unwrap();
        assert_eq!((array.len(), array.null_count()), (3, 2));
    }

    #[test]
    fn time_conversions() {
        let date = NaiveDate::from_ymd_opt(1970, 1, 2).unwrap();
        assert_eq!(date32(date), 1);
        assert_eq!(time64(NaiveTime::from_hms_micro_opt(0, 0, 1, 5).unwrap()), 1_000_005);
    }
}
