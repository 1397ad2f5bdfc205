//! PostgreSQL results read as binary `COPY` into Arrow builders.
//!
//! A plain query goes through the extended protocol one `DataRow` at a time; `COPY (query) TO
//! STDOUT (FORMAT binary)` streams the same values in large chunks (what connectorx does too).
//! For a whole result of a parameterless `SELECT`/`VALUES`/`TABLE` whose columns are all of the
//! types below, the driver reads the COPY stream and decodes each field into its column builder;
//! anything else (parameters, other statements, other column types) goes the ordinary way, which
//! gives the same Arrow data.

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{Error, Result};
use futures_util::TryStreamExt as _;
use sqlx::postgres::PgConnection;
use sqlx::{Column as _, Executor as _, Statement as _, TypeInfo as _};

use super::is_plain_query;
use crate::columns::{Batches, Column, Kind};
use crate::error::classify;

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The signature that starts a binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// How one column's binary values are decoded: by the column's builder, except UUIDs, which are
/// 16 bytes on the wire and canonical text in the column.
#[derive(Clone, Copy)]
enum Wire {
    Plain,
    Uuid,
}

/// The column's kind and wire decoding, for the types this path reads.
fn wire(type_name: &str) -> Option<(Kind, Wire)> {
    let kind = match type_name {
        "BOOL" => Kind::Bool,
        "INT2" => Kind::I16,
        "INT4" => Kind::I32,
        "INT8" => Kind::I64,
        "FLOAT4" => Kind::F32,
        "FLOAT8" => Kind::F64,
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => Kind::Text,
        "BYTEA" => Kind::Bytes,
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "TIMESTAMP" => Kind::Timestamp,
        "TIMESTAMPTZ" => Kind::TimestampUtc,
        "UUID" => return Some((Kind::Text, Wire::Uuid)),
        _ => return None,
    };
    Some((kind, Wire::Plain))
}

/// Reads a parameterless query's whole result through binary COPY; `Ok(None)` when this path
/// does not take the query (the caller then runs it the ordinary way).
pub(crate) async fn collect(
    conn: &mut PgConnection,
    sql: &str,
    batch_size: usize,
) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
    let sql = sql.trim_end().trim_end_matches(';');
    if !is_plain_query(sql) || sql.contains(';') {
        return Ok(None);
    }
    let statement = conn.prepare(sql).await.map_err(classify)?;
    let mut plan = Vec::new();
    let mut wires = Vec::new();
    for column in statement.columns() {
        let Some((kind, wire)) = wire(column.type_info().name()) else { return Ok(None) };
        plan.push((column.name().to_owned(), kind));
        wires.push(wire);
    }
    let copy = format!("COPY ({sql}) TO STDOUT (FORMAT binary)");
    let mut chunks = conn.copy_out_raw(&copy).await.map_err(classify)?;
    let mut decoder = Decoder { columns: Batches::new(plan, batch_size), wires, batches: Vec::new(), header: false };
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = chunks.try_next().await.map_err(classify)? {
        if pending.is_empty() {
            // the common case: PostgreSQL sends whole tuples, one message each
            let used = decoder.feed(&chunk)?;
            pending.extend_from_slice(&chunk[used..]);
        } else {
            pending.extend_from_slice(&chunk);
            let used = decoder.feed(&pending)?;
            pending.drain(..used);
        }
    }
    if !pending.is_empty() {
        return Err(malformed());
    }
    let Decoder { columns, mut batches, .. } = decoder;
    let (schema, rest) = columns.into_batches()?;
    batches.extend(rest);
    Ok(Some((schema, batches)))
}

struct Decoder {
    columns: Batches,
    wires: Vec<Wire>,
    batches: Vec<RecordBatch>,
    header: bool,
}

fn malformed() -> Error {
    Error::statement("malformed binary COPY data from the server")
}

impl Decoder {
    /// Decodes every complete tuple at the start of `data`; the number of bytes used.
    fn feed(&mut self, data: &[u8]) -> Result<usize> {
        let mut at = 0;
        if !self.header {
            if data.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &data[..SIGNATURE.len()] != SIGNATURE {
                return Err(malformed());
            }
            let extension = read_i32(data, SIGNATURE.len() + 4).ok_or_else(malformed)?;
            let skip = SIGNATURE.len() + 8 + usize::try_from(extension).map_err(|_| malformed())?;
            if data.len() < skip {
                return Ok(0);
            }
            at = skip;
            self.header = true;
        }
        while let Some(end) = tuple_end(data, at)? {
            if end == at + 2 {
                return Ok(end); // the trailer, -1
            }
            self.tuple(&data[at + 2..end])?;
            at = end;
        }
        Ok(at)
    }

    /// Appends one tuple's fields (after its field count) to the columns.
    fn tuple(&mut self, mut fields: &[u8]) -> Result<()> {
        for (column, wire) in self.columns.columns().iter_mut().zip(&self.wires) {
            let length = read_i32(fields, 0).ok_or_else(malformed)?;
            fields = &fields[4..];
            if length < 0 {
                column.append_null();
                continue;
            }
            let length = usize::try_from(length).map_err(|_| malformed())?;
            let value = fields.get(..length).ok_or_else(malformed)?;
            fields = &fields[length..];
            append(column, *wire, value)?;
        }
        if let Some(batch) = self.columns.row_done()? {
            self.batches.push(batch);
        }
        Ok(())
    }
}

/// The end of the tuple starting at `at`, if it is complete (`Some(at + 2)` for the trailer).
fn tuple_end(data: &[u8], at: usize) -> Result<Option<usize>> {
    let Some(count) = data.get(at..at + 2) else { return Ok(None) };
    let count = i16::from_be_bytes([count[0], count[1]]);
    if count == -1 {
        return Ok(Some(at + 2));
    }
    let mut end = at + 2;
    for _ in 0..count {
        let Some(length) = read_i32(data, end) else { return Ok(None) };
        end += 4 + usize::try_from(length.max(0)).map_err(|_| malformed())?;
        if end > data.len() {
            return Ok(None);
        }
    }
    Ok(Some(end))
}

fn read_i32(data: &[u8], at: usize) -> Option<i32> {
    data.get(at..at + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn fixed<const N: usize>(value: &[u8]) -> Result<[u8; N]> {
    value.try_into().map_err(|_| malformed())
}

fn append(column: &mut Column, wire: Wire, value: &[u8]) -> Result<()> {
    match (column, wire) {
        (Column::Text(b), Wire::Uuid) => b.append_value(sqlx::types::Uuid::from_bytes(fixed(value)?).to_string()),
        (Column::Bool(b), Wire::Plain) => b.append_value(value.first().is_some_and(|v| *v != 0)),
        (Column::I16(b), Wire::Plain) => b.append_value(i16::from_be_bytes(fixed(value)?)),
        (Column::I32(b), Wire::Plain) => b.append_value(i32::from_be_bytes(fixed(value)?)),
        (Column::I64(b), Wire::Plain) => b.append_value(i64::from_be_bytes(fixed(value)?)),
        (Column::F32(b), Wire::Plain) => b.append_value(f32::from_be_bytes(fixed(value)?)),
        (Column::F64(b), Wire::Plain) => b.append_value(f64::from_be_bytes(fixed(value)?)),
        (Column::Text(b), Wire::Plain) => {
            b.append_value(std::str::from_utf8(value).map_err(|_| Error::statement("text that is not UTF-8"))?);
        }
        (Column::Bytes(b), Wire::Plain) => b.append_value(value),
        (Column::Date(b), Wire::Plain) => {
            b.append_value(i32::from_be_bytes(fixed(value)?).saturating_add(PG_EPOCH_DAYS));
        }
        (Column::Time(b), Wire::Plain) => b.append_value(i64::from_be_bytes(fixed(value)?)),
        (Column::Timestamp(b) | Column::TimestampUtc(b), Wire::Plain) => {
            b.append_value(i64::from_be_bytes(fixed(value)?).saturating_add(PG_EPOCH_MICROS));
        }
        _ => return Err(malformed()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_split_across_chunks_wait_for_the_rest() {
        let mut data = SIGNATURE.to_vec();
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // flags, no extension
        data.extend_from_slice(&[0, 1, 0, 0, 0, 8]); // one field of 8 bytes
        data.extend_from_slice(&42_i64.to_be_bytes());
        data.extend_from_slice(&[0, 1, 255, 255, 255, 255]); // one NULL field
        data.extend_from_slice(&[255, 255]); // trailer
        let mut decoder = Decoder {
            columns: Batches::new(vec![("x".into(), Kind::I64)], 10),
            wires: vec![Wire::Plain],
            batches: Vec::new(),
            header: false,
        };
        let first = decoder.feed(&data[..SIGNATURE.len() + 12]).unwrap();
        assert_eq!(first, SIGNATURE.len() + 8, "header read, the cut tuple left for later");
        let rest = decoder.feed(&data[first..]).unwrap();
        assert_eq!(first + rest, data.len());
        let (_, batches) = decoder.columns.into_batches().unwrap();
        assert_eq!(batches[0].num_rows(), 2);
    }
}
