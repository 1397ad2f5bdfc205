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

use super::is_plain_query;
use super::postgres::Plan;
use crate::error::classify;

/// The signature that starts a binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Whether this path can read `sql` (a parameterless `SELECT`, `VALUES` or `TABLE`, one
/// statement): the text to wrap in `COPY (...)`, or `None`.
pub(crate) fn copyable(sql: &str) -> Option<&str> {
    let sql = sql.trim_end().trim_end_matches(';');
    (is_plain_query(sql) && !sql.contains(';')).then_some(sql)
}

/// Reads a [`copyable`] query's whole result through binary COPY into the columns of `plan`
/// (the same decoders as the row path). The text goes on lines of its own inside `COPY (...)`,
/// so a trailing `--` comment cannot swallow the closing parenthesis.
pub(crate) async fn collect(
    conn: &mut PgConnection,
    sql: &str,
    plan: &Plan,
    batch_size: usize,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let copy = format!("COPY (\n{sql}\n) TO STDOUT (FORMAT binary)");
    let mut chunks = conn.copy_out_raw(&copy).await.map_err(classify)?;
    let mut decoder = Decoder { columns: plan.batches(batch_size), plan, batches: Vec::new(), header: false, rows: 0 };
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
    Ok((schema, batches))
}

struct Decoder<'p> {
    columns: crate::columns::Batches,
    plan: &'p Plan,
    batches: Vec<RecordBatch>,
    header: bool,
    /// Rows decoded so far, for messages.
    rows: usize,
}

fn malformed() -> Error {
    Error::statement("malformed binary COPY data from the server")
}

impl Decoder<'_> {
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
        for (index, column) in self.columns.columns().iter_mut().enumerate() {
            let length = read_i32(fields, 0).ok_or_else(malformed)?;
            fields = &fields[4..];
            let value = if length < 0 {
                None
            } else {
                let length = usize::try_from(length).map_err(|_| malformed())?;
                let value = fields.get(..length).ok_or_else(malformed)?;
                fields = &fields[length..];
                Some(value)
            };
            self.plan.append(column, index, value, self.rows)?;
        }
        self.rows += 1;
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
        let plan = Plan {
            columns: vec![super::super::postgres::ColumnPlan {
                name: "x".into(),
                type_name: "INT8".into(),
                kind: crate::columns::Kind::I64,
                wire: super::super::postgres::Wire::Plain,
            }],
        };
        let mut decoder =
            Decoder { columns: plan.batches(10), plan: &plan, batches: Vec::new(), header: false, rows: 0 };
        let first = decoder.feed(&data[..SIGNATURE.len() + 12]).unwrap();
        assert_eq!(first, SIGNATURE.len() + 8, "header read, the cut tuple left for later");
        let rest = decoder.feed(&data[first..]).unwrap();
        assert_eq!(first + rest, data.len());
        let (_, batches) = decoder.columns.into_batches().unwrap();
        assert_eq!(batches[0].num_rows(), 2);
    }
}
