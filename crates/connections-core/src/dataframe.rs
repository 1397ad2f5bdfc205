//! [`DataFrame`]: a query result, an immutable Arrow schema plus its record batches.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, StringArray, new_empty_array};
use arrow::compute::{concat, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::{FileWriter, StreamWriter};
use arrow::json::writer::{JsonArray, JsonFormat, LineDelimited};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow::util::pretty::pretty_format_batches_with_schema;

use crate::error::{Error, Result};

/// Frames with more rows than this are shown as head, marker row, tail.
const MAX_FULL_ROWS: usize = 20;
/// Rows shown before the marker row of a truncated frame.
const HEAD_ROWS: usize = 10;
/// Rows shown after the marker row of a truncated frame.
const TAIL_ROWS: usize = 5;
/// Longest cell shown whole, in characters; longer ones are cut and end with [`ELLIPSIS`].
const MAX_CELL_CHARS: usize = 50;
/// Marks left-out rows and the end of a cut cell.
const ELLIPSIS: &str = "…";

/// A query result: an immutable Arrow schema and the record batches that hold the rows.
///
/// Cloning is O(1): the schema and the list of batches sit behind [`Arc`]s, so a clone (a cache
/// hit, say) hands out the very same Arrow buffers. Nothing can modify a `DataFrame` once made.
///
/// `Display` prints a table (head and tail only for big frames), `Debug` prints the shape and
/// column types but never a value, and the `write_*` methods convert to CSV, JSON and Arrow IPC.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
///
/// use connections_core::DataFrame;
/// use connections_core::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
///
/// let batch = RecordBatch::try_from_iter([
///     ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
///     ("owner", Arc::new(StringArray::from(vec![Some("Jerry"), None])) as ArrayRef),
/// ])?;
/// let df = DataFrame::from(batch);
/// assert_eq!((df.num_rows(), df.num_columns()), (2, 2));
/// assert_eq!(df.column_names(), ["id", "owner"]);
///
/// let copy = df.clone(); // O(1): shares the Arrow buffers
/// assert_eq!(format!("{copy:?}"), "DataFrame { rows: 2, columns: [id: Int64, owner: Utf8], batches: 1 }");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct DataFrame {
    schema: SchemaRef,
    batches: Arc<[RecordBatch]>,
}

impl DataFrame {
    /// Makes a frame of `batches`, each of which must have exactly `schema` (field names, types,
    /// nullability and metadata); otherwise an [`Error::Arrow`] whose source is a
    /// [`ArrowError::SchemaError`] naming the first batch that differs.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use connections_core::DataFrame;
    /// use connections_core::arrow::array::{Int64Array, RecordBatch};
    /// use connections_core::arrow::datatypes::{DataType, Field, Schema};
    ///
    /// let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    /// let batch = |values: Vec<i64>| RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))]);
    /// let df = DataFrame::new(schema.clone(), vec![batch(vec![1, 2])?, batch(vec![3])?])?;
    /// assert_eq!((df.num_rows(), df.batches().len()), (3, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        let mismatch = batches.iter().enumerate().find(|(_, batch)| !same_schema(batch.schema_ref(), &schema));
        if let Some((index, batch)) = mismatch {
            let (found, expected) = (describe_fields(batch.schema_ref()), describe_fields(&schema));
            let message = if found == expected {
                format!("batch {index} has the columns of the data frame, [{expected}], but different metadata")
            } else {
                format!("batch {index} has the columns [{found}], the data frame has [{expected}]")
            };
            return Err(arrow_error("create")(ArrowError::SchemaError(message)));
        }
        Ok(Self { schema, batches: batches.into() })
    }

    /// A frame with `schema` and no rows (and no batches).
    pub fn empty(schema: SchemaRef) -> Self {
        Self { schema, batches: Arc::new([]) }
    }

    /// The schema every batch has.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The record batches, in row order; there may be none, and some may have no rows.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The number of rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The number of columns.
    pub fn num_columns(&self) -> usize {
        self.schema.fields().len()
    }

    /// The column names, in schema order.
    pub fn column_names(&self) -> Vec<&str> {
        self.schema.fields().iter().map(|field| field.name().as_str()).collect()
    }

    /// The whole column called `name` as one array, or `None` if there is no such column (with
    /// duplicate names, the first one).
    ///
    /// A frame of one batch returns that batch's array (no copy); a frame of several batches
    /// concatenates their pieces into a new array, which fails when a string or binary column
    /// holds more than its 32-bit offsets can address (2 GiB); [`Self::batches`] gives the
    /// pieces without copying.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use connections_core::DataFrame;
    /// use connections_core::arrow::array::{AsArray, Int64Array, RecordBatch};
    /// use connections_core::arrow::datatypes::Int64Type;
    ///
    /// let df = DataFrame::from(RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![7, 8])) as _)])?);
    /// let n = df.column("n")?.expect("column n exists");
    /// assert_eq!(n.as_primitive::<Int64Type>().values(), &[7, 8]);
    /// assert!(df.column("missing")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn column(&self, name: &str) -> Result<Option<ArrayRef>> {
        let Some((index, field)) = self.schema.column_with_name(name) else {
            return Ok(None);
        };
        let array = match &*self.batches {
            [] => new_empty_array(field.data_type()),
            [batch] => Arc::clone(batch.column(index)),
            batches => {
                let pieces: Vec<&dyn Array> = batches.iter().map(|batch| batch.column(index).as_ref()).collect();
                concat(&pieces).map_err(arrow_error("concatenate a column of"))?
            }
        };
        Ok(Some(array))
    }

    /// Whether the frame has no rows (it may still have columns).
    pub fn is_empty(&self) -> bool {
        self.batches.iter().all(|batch| batch.num_rows() == 0)
    }

    /// The memory held by the frame's Arrow arrays, in bytes (the query cache's weight): the
    /// capacity of every allocation its buffers point into, each allocation counted once.
    ///
    /// Columns and batches that are slices of one allocation (an Arrow IPC message decoded in
    /// place, a sliced array) share it, so it counts once, not once per column or batch.
    ///
    /// ```
    /// use connections_core::DataFrame;
    /// use connections_core::arrow::array::{Int64Array, RecordBatch};
    ///
    /// let numbers = RecordBatch::try_from_iter([("n", std::sync::Arc::new(Int64Array::from_iter_values(0..1024)) as _)])?;
    /// let whole = DataFrame::new(numbers.schema(), vec![numbers.clone()])?;
    /// assert!(whole.arrow_bytes() >= 1024 * 8);
    /// // two batches that are halves of the same column hold the same memory
    /// let halves = DataFrame::new(numbers.schema(), vec![numbers.slice(0, 512), numbers.slice(512, 512)])?;
    /// assert_eq!(halves.arrow_bytes(), whole.arrow_bytes());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn arrow_bytes(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for batch in self.batches.iter() {
            for column in batch.columns() {
                total += allocations(&column.to_data(), &mut seen);
            }
        }
        total
    }

    /// All rows as one record batch: the batch itself for a frame of one batch (no copy), an
    /// empty batch for a frame of none, and a concatenated copy otherwise (which fails when a
    /// string or binary column grows past 2 GiB).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        match &*self.batches {
            [] => Ok(RecordBatch::new_empty(Arc::clone(&self.schema))),
            [batch] => Ok(batch.clone()),
            batches => concat_batches(&self.schema, batches).map_err(arrow_error("concatenate the batches of")),
        }
    }

    /// Writes the frame as CSV: a header row of column names, then one line per row; nulls are
    /// empty fields. An empty frame still gets its header.
    ///
    /// Nested columns (lists, structs, maps) cannot be written as CSV and make this fail.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use connections_core::DataFrame;
    /// use connections_core::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    ///
    /// let df = DataFrame::from(RecordBatch::try_from_iter([
    ///     ("pet", Arc::new(StringArray::from(vec![Some("Tom"), Some("Spike, the dog")])) as ArrayRef),
    ///     ("weight", Arc::new(Float64Array::from(vec![Some(4.5), None])) as ArrayRef),
    /// ])?);
    /// let mut out = Vec::new();
    /// df.write_csv(&mut out)?;
    /// assert_eq!(String::from_utf8(out)?, "pet,weight\nTom,4.5\n\"Spike, the dog\",\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_csv(&self, writer: impl Write) -> Result<()> {
        let mut csv = arrow::csv::WriterBuilder::new().with_header(true).build(writer);
        let written = if self.batches.is_empty() {
            // The header is written with the first batch.
            csv.write(&RecordBatch::new_empty(Arc::clone(&self.schema)))
        } else {
            self.batches.iter().try_for_each(|batch| csv.write(batch))
        };
        written.map_err(arrow_error("write CSV from"))
    }

    /// The frame as CSV text, as [`Self::write_csv`] writes it.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use connections_core::DataFrame;
    /// use connections_core::arrow::array::{Int64Array, RecordBatch};
    ///
    /// let df = DataFrame::from(RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1, 2])) as _)])?);
    /// assert_eq!(df.to_csv_string()?, "n\n1\n2\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_csv_string(&self) -> Result<String> {
        let mut out = Vec::new();
        self.write_csv(&mut out)?;
        String::from_utf8(out).map_err(|e| arrow_error("write CSV from")(ArrowError::ExternalError(Box::new(e))))
    }

    /// Writes the frame as JSON lines: one object per row and line, keyed by column name, with
    /// nulls written as `null` (so every line has every key). Timestamps and dates are strings.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use connections_core::DataFrame;
    /// use connections_core::arrow::array::{Int64Array, RecordBatch};
    ///
    /// let df = DataFrame::from(RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![Some(1), None])) as _)])?);
    /// let mut out = Vec::new();
    /// df.write_json(&mut out)?;
    /// assert_eq!(out, b"{\"n\":1}\n{\"n\":null}\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_json(&self, writer: impl Write) -> Result<()> {
        self.write_json_as::<LineDelimited>(writer).map_err(arrow_error("write JSON lines from"))
    }

    /// Writes the frame as one JSON array of row objects, as [`Self::write_json`] writes them;
    /// an empty frame is `[]`.
    pub fn write_json_array(&self, writer: impl Write) -> Result<()> {
        self.write_json_as::<JsonArray>(writer).map_err(arrow_error("write a JSON array from"))
    }

    fn write_json_as<F: JsonFormat>(&self, writer: impl Write) -> Result<(), ArrowError> {
        let mut json = arrow::json::WriterBuilder::new().with_explicit_nulls(true).build::<_, F>(writer);
        for batch in self.batches.iter() {
            json.write(batch)?;
        }
        json.finish()?;
        json.into_inner().flush()?;
        Ok(())
    }

    /// Writes the frame in the Arrow IPC file format (Feather v2), one record batch per batch,
    /// readable with `arrow::ipc::reader::FileReader`, pyarrow, polars and the like.
    ///
    /// The file format needs no seeking to write, but readers need to seek; for pipes and
    /// sockets use [`Self::write_ipc_stream`].
    pub fn write_ipc(&self, writer: impl Write) -> Result<()> {
        let write = || {
            let mut ipc = FileWriter::try_new_buffered(writer, &self.schema)?;
            self.batches.iter().try_for_each(|batch| ipc.write(batch))?;
            ipc.finish()
        };
        write().map_err(arrow_error("write an Arrow IPC file from"))
    }

    /// Writes the frame in the Arrow IPC streaming format, readable with
    /// `arrow::ipc::reader::StreamReader` and read front to back with no seeking.
    pub fn write_ipc_stream(&self, writer: impl Write) -> Result<()> {
        let write = || {
            let mut ipc = StreamWriter::try_new_buffered(writer, &self.schema)?;
            self.batches.iter().try_for_each(|batch| ipc.write(batch))?;
            ipc.finish()
        };
        write().map_err(arrow_error("write an Arrow IPC stream from"))
    }

    /// The table `Display` prints, without the line that counts rows and columns.
    fn preview_table(&self) -> Result<impl fmt::Display + use<>, ArrowError> {
        let rows = self.num_rows();
        let (head, tail) = if rows > MAX_FULL_ROWS { (HEAD_ROWS, TAIL_ROWS) } else { (rows, 0) };
        let mut preview = Preview::new(self.num_columns(), head + tail + 1);
        for batch in slice_rows(&self.batches, 0, head) {
            preview.push_batch(&batch)?;
        }
        if tail > 0 {
            preview.push_marker_row();
            for batch in slice_rows(&self.batches, rows - tail, tail) {
                preview.push_batch(&batch)?;
            }
        }
        preview.into_table(&self.schema)
    }
}

impl From<RecordBatch> for DataFrame {
    /// A frame of the one batch, with its schema.
    fn from(batch: RecordBatch) -> Self {
        Self { schema: batch.schema(), batches: Arc::new([batch]) }
    }
}

/// The capacity of the allocations `data`'s buffers (its children's too) point into that are not
/// in `seen` yet, which gains them.
fn allocations(data: &arrow::array::ArrayData, seen: &mut std::collections::HashSet<usize>) -> usize {
    let nulls = data.nulls().map(arrow::buffer::NullBuffer::buffer);
    let mut size = 0;
    for buffer in data.buffers().iter().chain(nulls) {
        // the address of the allocation's start, not of the slice: slices of one allocation agree
        if seen.insert(buffer.data_ptr().as_ptr() as usize) {
            size += buffer.capacity();
        }
    }
    for child in data.child_data() {
        size += allocations(child, seen);
    }
    size
}

impl fmt::Display for DataFrame {
    /// Prints the rows as a table, then a line counting rows and columns.
    ///
    /// A frame of more than 20 rows shows its first 10 and last 5 rows with a row of `…`
    /// between them; only those rows are formatted, however big the frame. A cell longer than
    /// 50 characters is cut and ends with `…`; line breaks and tabs in a cell show as `\n`,
    /// `\r` and `\t`. Nulls are empty cells.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use connections_core::DataFrame;
    /// use connections_core::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    ///
    /// let df = DataFrame::from(RecordBatch::try_from_iter([
    ///     ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
    ///     ("owner", Arc::new(StringArray::from(vec![Some("Jerry"), None])) as ArrayRef),
    /// ])?);
    /// assert_eq!(
    ///     df.to_string(),
    ///     "\
    /// +----+-------+
    /// | id | owner |
    /// +----+-------+
    /// | 1  | Jerry |
    /// | 2  |       |
    /// +----+-------+
    /// [2 rows × 2 columns]"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.preview_table() {
            Ok(table) => writeln!(f, "{table}")?,
            // Not `fmt::Error`, which would make `to_string()` panic.
            Err(e) => writeln!(f, "(cannot show the rows: {e})")?,
        }
        let (rows, columns) = (self.num_rows(), self.num_columns());
        write!(f, "[{rows} {} × {columns} {}]", plural(rows, "row"), plural(columns, "column"))
    }
}

impl fmt::Debug for DataFrame {
    /// Shape and column types only, never a value (results may hold secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataFrame")
            .field("rows", &self.num_rows())
            .field("columns", &ColumnTypes(&self.schema))
            .field("batches", &self.batches.len())
            .finish()
    }
}

/// `Debug`s a schema as `[name: type, ...]`.
struct ColumnTypes<'a>(&'a Schema);

impl fmt::Debug for ColumnTypes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.fields().iter().map(|field| ColumnType(field))).finish()
    }
}

/// `Debug`s a field as `name: type`.
struct ColumnType<'a>(&'a Field);

impl fmt::Debug for ColumnType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.name(), self.0.data_type())
    }
}

/// The cells `Display` shows, as text, column by column.
struct Preview {
    columns: Vec<Vec<String>>,
    rows: usize,
    options: FormatOptions<'static>,
}

impl Preview {
    fn new(columns: usize, rows: usize) -> Self {
        // As `arrow::util::pretty` does: a value that cannot be formatted shows an error text.
        let options = FormatOptions::default().with_display_error(true);
        Self { columns: (0..columns).map(|_| Vec::with_capacity(rows)).collect(), rows: 0, options }
    }

    fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        for (cells, array) in self.columns.iter_mut().zip(batch.columns()) {
            let formatter = ArrayFormatter::try_new(array.as_ref(), &self.options)?;
            for row in 0..array.len() {
                let mut text = String::new();
                formatter.value(row).write(&mut text)?;
                cells.push(cell_text(text));
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    fn push_marker_row(&mut self) {
        for cells in &mut self.columns {
            cells.push(ELLIPSIS.to_owned());
        }
        self.rows += 1;
    }

    /// The cells as a table under the column names of `schema`.
    fn into_table(self, schema: &Schema) -> Result<impl fmt::Display + use<>, ArrowError> {
        let fields: Vec<Field> =
            schema.fields().iter().map(|field| Field::new(field.name(), DataType::Utf8, false)).collect();
        let text_schema = Arc::new(Schema::new(fields));
        let columns = self.columns.into_iter().map(|cells| Arc::new(StringArray::from(cells)) as ArrayRef).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        let batch = RecordBatch::try_new_with_options(Arc::clone(&text_schema), columns, &options)?;
        pretty_format_batches_with_schema(text_schema, &[batch])
    }
}

/// A cell as shown: line breaks and tabs escaped, cut to [`MAX_CELL_CHARS`] characters.
fn cell_text(text: String) -> String {
    let text = if text.contains(['\n', '\r', '\t']) {
        text.replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t")
    } else {
        text
    };
    if text.chars().nth(MAX_CELL_CHARS).is_none() {
        return text;
    }
    let cut = text.char_indices().nth(MAX_CELL_CHARS - 1).map_or(text.len(), |(index, _)| index);
    format!("{}{ELLIPSIS}", &text[..cut])
}

/// Zero-copy slices of `batches` that hold rows `offset..offset + len` of the frame.
fn slice_rows(batches: &[RecordBatch], mut offset: usize, mut len: usize) -> Vec<RecordBatch> {
    let mut slices = Vec::new();
    for batch in batches {
        if len == 0 {
            break;
        }
        let rows = batch.num_rows();
        if offset >= rows {
            offset -= rows;
            continue;
        }
        let take = len.min(rows - offset);
        slices.push(batch.slice(offset, take));
        offset = 0;
        len -= take;
    }
    slices
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { noun.to_owned() } else { format!("{noun}s") }
}

fn same_schema(a: &SchemaRef, b: &SchemaRef) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// `a: Int64, b: Utf8 not null, ...`, for error messages.
fn describe_fields(schema: &Schema) -> String {
    let fields = schema.fields().iter().map(|field| {
        let not_null = if field.is_nullable() { "" } else { " not null" };
        format!("{}: {}{not_null}", field.name(), field.data_type())
    });
    fields.collect::<Vec<_>>().join(", ")
}

/// Wraps an Arrow error into [`Error::Arrow`]; `action` completes "cannot … the data frame".
fn arrow_error(action: &'static str) -> impl FnOnce(ArrowError) -> Error {
    move |source| Error::Arrow { action, source }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use arrow::array::{AsArray, BooleanArray, Float64Array, Int64Array, TimestampMicrosecondArray};
    use arrow::datatypes::{Int64Type, TimeUnit};
    use arrow::ipc::reader::{FileReader, StreamReader};

    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// 2023-11-14T22:13:20 in microseconds since the epoch.
    const T0: i64 = 1_700_000_000_000_000;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("score", DataType::Float64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("active", DataType::Boolean, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]))
    }

    /// A row of [`schema`]: id, score, name, active, at.
    type Row<'a> = (i64, Option<f64>, Option<&'a str>, Option<bool>, Option<i64>);

    fn batch(schema: &SchemaRef, rows: &[Row<'_>]) -> std::result::Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(rows.iter().map(|r| r.1).collect::<Float64Array>()),
                Arc::new(rows.iter().map(|r| r.2).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| r.3).collect::<BooleanArray>()),
                Arc::new(rows.iter().map(|r| r.4).collect::<TimestampMicrosecondArray>()),
            ],
        )
    }

    /// Three rows in two batches, with a null in every nullable column.
    fn pets() -> Result<DataFrame, Box<dyn std::error::Error>> {
        let schema = schema();
        let first = batch(
            &schema,
            &[(1, Some(1.5), Some("Tom"), Some(true), Some(T0)), (2, None, Some("Jerry, \"the mouse\""), None, None)],
        )?;
        let second = batch(&schema, &[(3, Some(-2.0), None, Some(false), Some(T0 + 1_500_000))])?;
        Ok(DataFrame::new(schema, vec![first, second])?)
    }

    /// `rows` rows of `n` (0, 1, ...) and a 60-character `text`, in batches of the given sizes.
    fn numbered(sizes: &[usize]) -> Result<DataFrame, Box<dyn std::error::Error>> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("text", DataType::Utf8, false),
        ]));
        let mut start = 0_i64;
        let mut batches = Vec::new();
        for &size in sizes {
            let end = start + i64::try_from(size)?;
            let text = (start..end).map(|n| format!("{n:0>6}{}", "x".repeat(54)));
            batches.push(RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from_iter_values(start..end)), Arc::new(StringArray::from_iter_values(text))],
            )?);
            start = end;
        }
        Ok(DataFrame::new(schema, batches)?)
    }

    #[test]
    fn counts_and_names() -> TestResult {
        let df = pets()?;
        assert_eq!(df.num_rows(), 3);
        assert_eq!(df.num_columns(), 5);
        assert_eq!(df.batches().len(), 2);
        assert_eq!(df.column_names(), ["id", "score", "name", "active", "at"]);
        assert!(!df.is_empty());
        assert!(Arc::ptr_eq(df.schema(), &df.batches()[0].schema()));

        let empty = DataFrame::empty(schema());
        assert_eq!((empty.num_rows(), empty.num_columns(), empty.batches().len()), (0, 5, 0));
        assert!(empty.is_empty());
        let no_rows = DataFrame::new(schema(), vec![RecordBatch::new_empty(schema())])?;
        assert!(no_rows.is_empty());
        Ok(())
    }

    #[test]
    fn column_across_batches() -> TestResult {
        let df = pets()?;
        let ids = df.column("id")?.ok_or("no id column")?;
        assert_eq!(ids.as_primitive::<Int64Type>().values(), &[1, 2, 3]);
        let names = df.column("name")?.ok_or("no name column")?;
        let names: Vec<Option<&str>> = names.as_string::<i32>().iter().collect();
        assert_eq!(names, [Some("Tom"), Some("Jerry, \"the mouse\""), None]);
        let active = df.column("active")?.ok_or("no active column")?;
        assert_eq!(active.as_boolean().iter().collect::<Vec<_>>(), [Some(true), None, Some(false)]);
        assert!(df.column("missing")?.is_none());

        // One batch: the batch's own array, not a copy.
        let single = DataFrame::from(df.batches()[0].clone());
        let score = single.column("score")?.ok_or("no score column")?;
        assert!(Arc::ptr_eq(&score, df.batches()[0].column(1)));

        // No batches: an empty array of the column's type.
        let at = DataFrame::empty(schema()).column("at")?.ok_or("no at column")?;
        assert_eq!((at.len(), at.data_type()), (0, &DataType::Timestamp(TimeUnit::Microsecond, None)));
        Ok(())
    }

    #[test]
    fn to_record_batch_concatenates() -> TestResult {
        let df = pets()?;
        let all = df.to_record_batch()?;
        assert_eq!(all.num_rows(), 3);
        assert_eq!(all.schema(), *df.schema());
        assert_eq!(all.slice(0, 2), df.batches()[0]);
        assert_eq!(all.slice(2, 1), df.batches()[1]);
        assert_eq!(DataFrame::empty(schema()).to_record_batch()?.num_rows(), 0);
        Ok(())
    }

    #[test]
    fn schema_mismatch_is_an_error() -> TestResult {
        let other = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false)]));
        let wrong = RecordBatch::try_new(Arc::clone(&other), vec![Arc::new(arrow::array::Int32Array::from(vec![1]))])?;
        let good = batch(&schema(), &[(1, None, None, None, None)])?;
        let err = DataFrame::new(schema(), vec![good, wrong]).err().ok_or("mismatch accepted")?;
        assert!(
            matches!(&err, Error::Arrow { action: "create", source: ArrowError::SchemaError(m) }
                if m.starts_with("batch 1 has the columns [id: Int32 not null], the data frame has [id: Int64 not null, ")),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "cannot create the data frame");

        // Same fields, other metadata.
        let tagged = Arc::new(schema().as_ref().clone().with_metadata([("k".to_owned(), "v".to_owned())].into()));
        let err = DataFrame::new(tagged, vec![batch(&schema(), &[])?]).err().ok_or("mismatch accepted")?;
        assert!(format!("{:?}", std::error::Error::source(&err)).contains("but different metadata"), "{err:?}");
        Ok(())
    }

    #[test]
    fn display_small_frame() -> TestResult {
        let expected = "\
+----+-------+--------------------+--------+-------------------------+
| id | score | name               | active | at                      |
+----+-------+--------------------+--------+-------------------------+
| 1  | 1.5   | Tom                | true   | 2023-11-14T22:13:20     |
| 2  |       | Jerry, \"the mouse\" |        |                         |
| 3  | -2.0  |                    | false  | 2023-11-14T22:13:21.500 |
+----+-------+--------------------+--------+-------------------------+
[3 rows × 5 columns]";
        assert_eq!(pets()?.to_string(), expected);
        Ok(())
    }

    #[test]
    fn display_empty_frames() -> TestResult {
        let expected = "\
+----+-------+------+--------+----+
| id | score | name | active | at |
+----+-------+------+--------+----+
+----+-------+------+--------+----+
[0 rows × 5 columns]";
        assert_eq!(DataFrame::empty(schema()).to_string(), expected);
        assert_eq!(DataFrame::new(schema(), vec![batch(&schema(), &[])?])?.to_string(), expected);

        // No columns at all: no panic, and the count line is right.
        let options = RecordBatchOptions::new().with_row_count(Some(1));
        let no_columns = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)?;
        assert!(DataFrame::from(no_columns).to_string().ends_with("[1 row × 0 columns]"));
        Ok(())
    }

    #[test]
    fn display_truncates_big_frames() -> TestResult {
        // Head and tail both cross batch boundaries.
        let df = numbered(&[4, 3, 0, 500, 490, 2, 1])?;
        assert_eq!(df.num_rows(), 1000);
        let shown = df.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines.len() < 25, "{shown}");
        assert_eq!(lines.len(), 3 + 10 + 1 + 5 + 1 + 1, "{shown}");
        let cut = format!("{}{ELLIPSIS}", "x".repeat(43));
        for n in (0..10).chain(995..1000) {
            let row = format!("| {n:<3} | {n:0>6}{cut} |");
            assert!(lines.contains(&row.as_str()), "row {n} missing from\n{shown}");
        }
        assert!(!shown.contains("| 10 "), "{shown}");
        assert!(!shown.contains("| 994 "), "{shown}");
        assert_eq!(lines[13], format!("| {ELLIPSIS}   | {ELLIPSIS}{} |", " ".repeat(49)));
        assert_eq!(lines.last().copied(), Some("[1000 rows × 2 columns]"));
        // At the limit nothing is left out.
        let shown = numbered(&[20])?.to_string();
        assert!(!shown.lines().any(|line| line.starts_with(&format!("| {ELLIPSIS} "))), "{shown}");
        assert_eq!(shown.lines().count(), 3 + 20 + 1 + 1);
        assert_eq!(numbered(&[10, 11])?.to_string().lines().count(), 3 + 10 + 1 + 5 + 1 + 1);
        Ok(())
    }

    #[test]
    fn display_escapes_and_cuts_cells() {
        assert_eq!(cell_text("a\tb\nc".to_owned()), "a\\tb\\nc");
        let fifty = "é".repeat(50);
        assert_eq!(cell_text(fifty.clone()), fifty);
        assert_eq!(cell_text("é".repeat(51)), format!("{}…", "é".repeat(49)));
    }

    #[test]
    fn debug_shows_no_values() -> TestResult {
        let shown = format!("{:?}", pets()?);
        assert_eq!(
            shown,
            "DataFrame { rows: 3, columns: [id: Int64, score: Float64, name: Utf8, active: Boolean, at: Timestamp(µs)], batches: 2 }"
        );
        assert!(!shown.contains("Tom"));
        Ok(())
    }

    #[test]
    fn csv_output() -> TestResult {
        let expected = "\
id,score,name,active,at
1,1.5,Tom,true,2023-11-14T22:13:20
2,,\"Jerry, \"\"the mouse\"\"\",,
3,-2.0,,false,2023-11-14T22:13:21.500
";
        let df = pets()?;
        assert_eq!(df.to_csv_string()?, expected);
        let mut out = Vec::new();
        df.write_csv(&mut out)?;
        assert_eq!(String::from_utf8(out)?, expected);
        assert_eq!(DataFrame::empty(schema()).to_csv_string()?, "id,score,name,active,at\n");
        Ok(())
    }

    #[test]
    fn json_output() -> TestResult {
        let df = pets()?;
        let mut out = Vec::new();
        df.write_json(&mut out)?;
        let rows = [
            r#"{"id":1,"score":1.5,"name":"Tom","active":true,"at":"2023-11-14T22:13:20"}"#,
            r#"{"id":2,"score":null,"name":"Jerry, \"the mouse\"","active":null,"at":null}"#,
            r#"{"id":3,"score":-2.0,"name":null,"active":false,"at":"2023-11-14T22:13:21.500"}"#,
        ];
        assert_eq!(String::from_utf8(out)?, format!("{}\n", rows.join("\n")));

        let mut out = Vec::new();
        df.write_json_array(&mut out)?;
        assert_eq!(String::from_utf8(out)?, format!("[{}]", rows.join(",")));

        let (mut lines, mut array) = (Vec::new(), Vec::new());
        DataFrame::empty(schema()).write_json(&mut lines)?;
        DataFrame::empty(schema()).write_json_array(&mut array)?;
        assert_eq!((lines.as_slice(), array.as_slice()), (&b""[..], &b"[]"[..]));
        Ok(())
    }

    #[test]
    fn ipc_round_trip() -> TestResult {
        let df = pets()?;

        let mut file = Vec::new();
        df.write_ipc(&mut file)?;
        let reader = FileReader::try_new(Cursor::new(file), None)?;
        assert_eq!(reader.schema(), *df.schema());
        let read = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        assert_eq!(read, df.batches());

        let mut stream = Vec::new();
        df.write_ipc_stream(&mut stream)?;
        let reader = StreamReader::try_new(Cursor::new(stream), None)?;
        assert_eq!(reader.schema(), *df.schema());
        let read = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        assert_eq!(read, df.batches());

        // An empty frame keeps its schema.
        let mut file = Vec::new();
        DataFrame::empty(schema()).write_ipc(&mut file)?;
        let reader = FileReader::try_new(Cursor::new(file), None)?;
        assert_eq!((reader.schema(), reader.num_batches()), (schema(), 0));
        Ok(())
    }

    #[test]
    fn write_errors_are_reported() -> TestResult {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let df = pets()?;
        let errors = [
            df.write_csv(Broken).err(),
            df.write_json(Broken).err(),
            df.write_json_array(Broken).err(),
            df.write_ipc(Broken).err(),
            df.write_ipc_stream(Broken).err(),
        ];
        for err in errors {
            let err = err.ok_or("a write to a broken writer succeeded")?;
            assert!(err.to_string().starts_with("cannot write "), "{err}");
            let source = std::error::Error::source(&err).ok_or("no source")?;
            assert!(source.to_string().contains("disk full"), "{source}");
        }
        Ok(())
    }

    #[test]
    fn clones_share_buffers() -> TestResult {
        let df = pets()?;
        assert!(df.arrow_bytes() > 0);
        assert_eq!(DataFrame::empty(schema()).arrow_bytes(), 0);

        let copy = df.clone();
        assert!(Arc::ptr_eq(&df.batches, &copy.batches));
        let values = |frame: &DataFrame| frame.batches()[1].column(0).as_primitive::<Int64Type>().values().as_ptr();
        assert_eq!(values(&df), values(&copy));
        assert_eq!(copy.arrow_bytes(), df.arrow_bytes());
        Ok(())
    }
}
