//! Splitting an inline Arrow result (`rowsetBase64`) into an inline first part and chunks, the
//! way Snowflake serves large results.

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A result split in two: the rows kept inline and the chunks served from the proxy's URLs.
#[derive(Debug)]
pub(super) struct Split {
    /// The first rows, as Arrow IPC stream bytes, base64-encoded for `rowsetBase64`.
    pub(super) inline_base64: String,
    /// Rows in the inline part.
    pub(super) inline_rows: usize,
    /// Every further chunk: its Arrow IPC stream bytes and its row count.
    pub(super) chunks: Vec<(Vec<u8>, usize)>,
}

/// Decodes `rowset_base64` (an Arrow IPC stream) and splits it: the first `first_rows` rows
/// inline, the rest in chunks of `rows_per_chunk`. `None` when the result fits inline (or is not
/// an IPC stream this proxy can read, in which case it is passed on unchanged).
pub(super) fn split(rowset_base64: &str, first_rows: usize, rows_per_chunk: usize) -> Option<Split> {
    if rows_per_chunk == 0 {
        return None;
    }
    let bytes = BASE64.decode(rowset_base64).ok()?;
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).ok()?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().ok()?;
    let all = arrow::compute::concat_batches(&schema, &batches).ok()?;
    let total = all.num_rows();
    if total <= first_rows {
        return None;
    }
    let inline = encode(&all.slice(0, first_rows))?;
    let mut chunks = Vec::new();
    let mut offset = first_rows;
    while offset < total {
        let len = rows_per_chunk.min(total - offset);
        chunks.push((encode(&all.slice(offset, len))?, len));
        offset += len;
    }
    Some(Split { inline_base64: BASE64.encode(inline), inline_rows: first_rows, chunks })
}

/// One batch as an Arrow IPC stream (schema, with its field metadata, then the batch).
fn encode(batch: &RecordBatch) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema()).ok()?;
    writer.write(batch).ok()?;
    writer.finish().ok()?;
    drop(writer);
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn decode(bytes: &[u8]) -> Vec<i64> {
        let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).expect("an IPC stream");
        let mut values = Vec::new();
        for batch in reader {
            let batch = batch.expect("a batch");
            let column = batch.column(0).as_any().downcast_ref::<Int64Array>().expect("Int64");
            values.extend(column.values().iter().copied());
        }
        values
    }

    #[test]
    fn splits_in_order_and_keeps_the_schema() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("N", DataType::Int64, false)
                .with_metadata([("logicalType".to_owned(), "FIXED".to_owned())].into()),
            Field::new("S", DataType::Utf8, true),
        ]));
        let n: Vec<i64> = (0..25).collect();
        let s: Vec<Option<String>> = n.iter().map(|i| Some(format!("row {i}"))).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(n.clone())), Arc::new(StringArray::from(s))],
        )
        .expect("a batch");
        let encoded = BASE64.encode(encode(&batch).expect("encode"));

        let split = split(&encoded, 5, 8).expect("25 rows do not fit in 5");
        assert_eq!(split.inline_rows, 5);
        assert_eq!(split.chunks.iter().map(|(_, rows)| *rows).collect::<Vec<_>>(), [8, 8, 4]);
        let mut all = decode(&BASE64.decode(&split.inline_base64).expect("base64"));
        for (bytes, _) in &split.chunks {
            let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).expect("an IPC stream");
            assert_eq!(reader.schema().field(0).metadata().get("logicalType").map(String::as_str), Some("FIXED"));
            all.extend(decode(bytes));
        }
        assert_eq!(all, n);

        assert!(split_of(&encoded, 25).is_none(), "a result that fits stays inline");
    }

    fn split_of(encoded: &str, first: usize) -> Option<Split> {
        split(encoded, first, 10)
    }
}
