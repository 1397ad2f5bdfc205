//! Snowflake's Arrow IPC streams: their framing, reading them with relaxed struct members, and
//! rewriting integer-coded times inside the stream's bytes before they are frozen into Arrow
//! buffers.
//!
//! # Why rewrite in place
//! A decoded stream is one allocation, and every column that needs no conversion is a
//! zero-copy slice of it, so the whole allocation lives as long as the result. A timestamp
//! Snowflake sends as `{epoch: Int64, fraction: Int32}` (12 bytes a row) and converts to a
//! 64-bit `Timestamp` would otherwise cost a new 8-byte-a-row array next to the 12 bytes a row
//! that stay allocated unused: 20 bytes a row held for 8. Written into the `epoch` member's
//! own bytes, the converted values are read zero-copy like every other column.
//!
//! [`rewrite`] is the fast path of [`super::convert`]'s general one and gives exactly its
//! values, or leaves a column alone (a type it does not expect, a compressed body, a value that
//! would overflow: the general path then reports it). It returns which columns it rewrote, so
//! the conversion knows what it is given; a test compares both paths on the same stream.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use connections_core::arrow::buffer::Buffer;
use connections_core::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use connections_core::arrow::ipc::convert::fb_to_schema;
use connections_core::arrow::ipc::reader::read_record_batch;
use connections_core::arrow::ipc::{Message, MessageHeader, root_as_message};
use connections_core::arrow::record_batch::RecordBatch;

/// One message of a stream: where its flatbuffer metadata and its body are.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    meta: Range<usize>,
    body: Range<usize>,
}

/// The messages of an Arrow IPC stream, up to its end marker or its last byte.
pub(super) fn frames(data: &[u8]) -> Result<Vec<Frame>, String> {
    let read_i32 = |at: usize| -> Option<i32> { Some(i32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?)) };
    let (mut pos, mut out) = (0_usize, Vec::new());
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
        let meta = pos..pos + length;
        let message = message(data, &meta)?;
        let body_length = usize::try_from(message.bodyLength()).map_err(|_| "a negative body length")?;
        pos = meta.end;
        let end = pos.checked_add(body_length).filter(|end| *end <= data.len()).ok_or("a truncated message body")?;
        out.push(Frame { meta, body: pos..end });
        pos = end;
    }
    Ok(out)
}

fn message<'a>(data: &'a [u8], meta: &Range<usize>) -> Result<Message<'a>, String> {
    let bytes = data.get(meta.clone()).ok_or("a truncated message")?;
    root_as_message(bytes).map_err(|e| format!("not an Arrow IPC message: {e}"))
}

/// Reads the record batches of a framed stream. Snowflake (and the emulator) declare the
/// members of timestamp structs non-nullable yet leave them null in null rows, which arrow's
/// stream reader refuses; so the messages are read here, with the schema's struct members made
/// nullable.
pub(super) fn read(bytes: Vec<u8>, frames: &[Frame]) -> Result<Vec<RecordBatch>, String> {
    let whole = Buffer::from(bytes);
    let data = whole.as_slice();
    let (mut schema, mut out) = (None::<SchemaRef>, Vec::new());
    for frame in frames {
        let message = message(data, &frame.meta)?;
        match message.header_type() {
            MessageHeader::Schema => {
                let fb = message.header_as_schema().ok_or("a malformed schema message")?;
                let read = fb_to_schema(fb);
                let fields: Vec<Field> = read.fields().iter().map(|f| relax(f)).collect();
                schema = Some(Arc::new(Schema::new_with_metadata(fields, read.metadata().clone())));
            }
            MessageHeader::RecordBatch => {
                let batch = message.header_as_record_batch().ok_or("a malformed record batch message")?;
                let schema = schema.clone().ok_or("a record batch before the schema")?;
                let body = whole.slice_with_length(frame.body.start, frame.body.len());
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

/// What [`rewrite`] is asked to do to one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// Nothing.
    Keep,
    /// A timestamp: a `{epoch: Int64, fraction: Int32}` struct becomes
    /// `epoch * per_second + fraction / divisor`, written over `epoch`; the `epoch` of a struct
    /// without `fraction`, or an `Int64` column, is scaled by `factor` (all checked).
    Timestamp { per_second: i64, divisor: i64, factor: i64 },
    /// An `Int64` column: every value times `factor` (checked).
    Scale { factor: i64 },
}

impl Ask {
    /// The factor an `Int64` column (or the `epoch` of a struct without `fraction`) is scaled
    /// by: 1 for [`Ask::Keep`].
    pub(super) fn factor(self) -> i64 {
        match self {
            Self::Timestamp { factor, .. } | Self::Scale { factor } => factor,
            Self::Keep => 1,
        }
    }
}

/// Rewrites, in `data`, the columns `asks` names, message by message; gives for every record
/// batch message, in order, which columns were rewritten.
pub(super) fn rewrite(data: &mut [u8], frames: &[Frame], asks: &[Ask]) -> Vec<Vec<bool>> {
    let mut fields: Option<Vec<DataType>> = None;
    let mut out = Vec::new();
    for frame in frames {
        let (plans, columns) = {
            let Ok(message) = message(data, &frame.meta) else { return out };
            match message.header_type() {
                MessageHeader::Schema => {
                    if let Some(fb) = message.header_as_schema() {
                        fields = Some(fb_to_schema(fb).fields().iter().map(|f| f.data_type().clone()).collect());
                    }
                    continue;
                }
                MessageHeader::RecordBatch => match (message.header_as_record_batch(), &fields) {
                    (Some(batch), Some(fields)) => (plan(batch, fields, asks, frame.body.len()), fields.len()),
                    _ => (Vec::new(), 0),
                },
                _ => continue,
            }
        };
        let body = &mut data[frame.body.clone()];
        let mut done = vec![false; columns];
        for (column, plan) in plans {
            done[column] = plan.apply(body);
        }
        out.push(done);
    }
    out
}

/// One array's node and buffers in a record batch message: rows, nulls, byte ranges in the
/// body.
#[derive(Debug, Clone)]
struct Node {
    rows: usize,
    nulls: usize,
    buffers: Vec<Range<usize>>,
}

impl Node {
    /// The validity bitmap, when the reader would use one (the first buffer of every layout
    /// that has one).
    fn validity(&self) -> Option<Range<usize>> {
        self.buffers.first().filter(|_| self.nulls > 0).cloned()
    }
}

/// A column's rewrite, with every range checked to lie in the body.
#[derive(Debug)]
enum Plan {
    Combine {
        rows: usize,
        epoch: Range<usize>,
        fraction: Range<usize>,
        validity: Vec<Range<usize>>,
        per_second: i64,
        divisor: i64,
    },
    Scale {
        rows: usize,
        values: Range<usize>,
        validity: Vec<Range<usize>>,
        factor: i64,
    },
}

/// The rewrites of one record batch message: nothing for a compressed body or a layout this
/// cannot walk (from that column on).
fn plan(
    batch: connections_core::arrow::ipc::RecordBatch<'_>,
    fields: &[DataType],
    asks: &[Ask],
    body: usize,
) -> Vec<(usize, Plan)> {
    if batch.compression().is_some() || fields.len() != asks.len() {
        return Vec::new();
    }
    let (Some(nodes), Some(buffers)) = (batch.nodes(), batch.buffers()) else { return Vec::new() };
    let mut walk = Walk {
        nodes: nodes.iter().map(|n| (n.length(), n.null_count())).collect::<Vec<_>>().into_iter(),
        buffers: buffers.iter().map(|b| (b.offset(), b.length())).collect::<Vec<_>>().into_iter(),
        body,
    };
    let mut plans = Vec::new();
    for (column, (field, ask)) in fields.iter().zip(asks).enumerate() {
        let Some(layout) = walk.take(field) else { break };
        if let Some(plan) = Plan::new(&layout, field, *ask) {
            plans.push((column, plan));
        }
    }
    plans
}

/// An array as the walk found it: its node and its children's.
struct Layout {
    node: Node,
    children: Vec<Layout>,
}

/// The nodes (rows, nulls) and buffers (offset, length) of a record batch message, taken in
/// the depth-first order of its schema's fields.
struct Walk {
    nodes: std::vec::IntoIter<(i64, i64)>,
    buffers: std::vec::IntoIter<(i64, i64)>,
    body: usize,
}

impl Walk {
    /// The next array of type `data_type`, or `None` for a type whose IPC layout this does not
    /// know (or a range outside the body).
    fn take(&mut self, data_type: &DataType) -> Option<Layout> {
        let buffers = match data_type {
            DataType::Null => 0,
            DataType::Struct(_) | DataType::FixedSizeList(..) => 1,
            DataType::List(_) | DataType::LargeList(_) | DataType::Map(..) => 2,
            DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary => 3,
            t if t.is_primitive() || matches!(t, DataType::Boolean | DataType::FixedSizeBinary(_)) => 2,
            _ => return None,
        };
        let (rows, nulls) = self.nodes.next()?;
        let node = Node {
            rows: usize::try_from(rows).ok()?,
            nulls: usize::try_from(nulls).ok()?,
            buffers: (0..buffers).map(|_| self.buffer()).collect::<Option<_>>()?,
        };
        let children = match data_type {
            DataType::Struct(members) => members.iter().map(|m| self.take(m.data_type())).collect::<Option<_>>()?,
            DataType::List(member)
            | DataType::LargeList(member)
            | DataType::FixedSizeList(member, _)
            | DataType::Map(member, _) => vec![self.take(member.data_type())?],
            _ => Vec::new(),
        };
        Some(Layout { node, children })
    }

    fn buffer(&mut self) -> Option<Range<usize>> {
        let (offset, length) = self.buffers.next()?;
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(length).ok()?)?;
        (end <= self.body).then_some(start..end)
    }
}

impl Plan {
    /// The rewrite `ask` needs on an array of type `data_type` laid out as `layout`, when its
    /// layout is the one expected.
    fn new(layout: &Layout, data_type: &DataType, ask: Ask) -> Option<Self> {
        let rows = layout.node.rows;
        let bitmap = rows.div_ceil(8);
        // the validity bitmaps the reader will use, each long enough
        let validity = |nodes: &[&Node]| -> Option<Vec<Range<usize>>> {
            let ranges: Vec<Range<usize>> = nodes.iter().filter_map(|n| n.validity()).collect();
            ranges.iter().all(|r| r.len() >= bitmap).then_some(ranges)
        };
        match (ask, data_type) {
            (Ask::Timestamp { per_second, divisor, factor }, DataType::Struct(members)) => {
                let member = |name: &str, data_type: DataType, width: usize| {
                    let at = members.iter().position(|m| m.name() == name && m.data_type() == &data_type)?;
                    let node = &layout.children.get(at)?.node;
                    (node.rows == rows && fits(&node.buffers[1], rows, width)).then_some(node)
                };
                let epoch = member("epoch", DataType::Int64, 8)?;
                if !members.iter().any(|m| m.name() == "fraction") {
                    // `{epoch (scaled by 10^scale), timezone}`: TIMESTAMP_TZ with a scale of 3 or less
                    let values = epoch.buffers[1].start..epoch.buffers[1].start + rows * 8;
                    let validity = validity(&[&layout.node, epoch])?;
                    return (factor != 1).then_some(Self::Scale { rows, values, validity, factor });
                }
                let fraction = member("fraction", DataType::Int32, 4)?;
                Some(Self::Combine {
                    rows,
                    epoch: epoch.buffers[1].start..epoch.buffers[1].start + rows * 8,
                    fraction: fraction.buffers[1].start..fraction.buffers[1].start + rows * 4,
                    validity: validity(&[&layout.node, epoch, fraction])?,
                    per_second,
                    divisor,
                })
            }
            (Ask::Timestamp { factor, .. } | Ask::Scale { factor }, DataType::Int64)
                if factor != 1 && fits(&layout.node.buffers[1], rows, 8) =>
            {
                let values = layout.node.buffers[1].start..layout.node.buffers[1].start + rows * 8;
                Some(Self::Scale { rows, values, validity: validity(&[&layout.node])?, factor })
            }
            _ => None,
        }
    }

    /// Rewrites the column in `body`; `false` (and `body` untouched) when a valid row's value
    /// would overflow.
    fn apply(&self, body: &mut [u8]) -> bool {
        match self {
            Self::Combine { rows, epoch, fraction, validity, per_second, divisor } => {
                let (per_second, divisor) = (*per_second, *divisor);
                if epoch.start < fraction.end && fraction.start < epoch.end {
                    return false; // overlapping buffers: not a layout arrow writes
                }
                let valid = mask(body, validity, *rows);
                let (epochs, fractions) = if epoch.start < fraction.start {
                    let (head, tail) = body.split_at_mut(fraction.start);
                    (&mut head[epoch.clone()], &tail[..fraction.len()])
                } else {
                    let (head, tail) = body.split_at_mut(epoch.start);
                    (&mut tail[..epoch.len()], &head[fraction.clone()])
                };
                let combine = |e: &[u8], f: &[u8]| {
                    let (e, f) = (i64::from_le_bytes(to_array(e)), i32::from_le_bytes(to_array(f)));
                    e.checked_mul(per_second).and_then(|whole| whole.checked_add(i64::from(f) / divisor))
                };
                let pairs = || epochs.chunks_exact(8).zip(fractions.chunks_exact(4)).enumerate();
                if pairs().any(|(i, (e, f))| is_valid(valid.as_deref(), i) && combine(e, f).is_none()) {
                    return false;
                }
                for (i, (e, f)) in epochs.chunks_exact_mut(8).zip(fractions.chunks_exact(4)).enumerate() {
                    let value = if is_valid(valid.as_deref(), i) { combine(&*e, f).unwrap_or(0) } else { 0 };
                    e.copy_from_slice(&value.to_le_bytes());
                }
                true
            }
            Self::Scale { rows, values, validity, factor } => {
                let valid = mask(body, validity, *rows);
                let values = &mut body[values.clone()];
                let scale = |v: &[u8]| i64::from_le_bytes(to_array(v)).checked_mul(*factor);
                let mut all = values.chunks_exact(8).enumerate();
                if all.any(|(i, v)| is_valid(valid.as_deref(), i) && scale(v).is_none()) {
                    return false;
                }
                for (i, v) in values.chunks_exact_mut(8).enumerate() {
                    let value = if is_valid(valid.as_deref(), i) { scale(&*v).unwrap_or(0) } else { 0 };
                    v.copy_from_slice(&value.to_le_bytes());
                }
                true
            }
        }
    }
}

/// Whether `buffer` holds `rows` values of `width` bytes.
fn fits(buffer: &Range<usize>, rows: usize, width: usize) -> bool {
    rows.checked_mul(width).is_some_and(|bytes| buffer.len() >= bytes)
}

/// The rows valid in every bitmap of `ranges` (`None`: every row is valid).
fn mask(body: &[u8], ranges: &[Range<usize>], rows: usize) -> Option<Vec<u8>> {
    let (first, rest) = ranges.split_first()?;
    let bytes = rows.div_ceil(8);
    let mut valid = body[first.start..first.start + bytes].to_vec();
    for range in rest {
        for (v, b) in valid.iter_mut().zip(&body[range.start..range.start + bytes]) {
            *v &= b;
        }
    }
    Some(valid)
}

fn is_valid(mask: Option<&[u8]>, row: usize) -> bool {
    mask.is_none_or(|m| m[row / 8] & (1 << (row % 8)) != 0)
}

/// A chunk of `chunks_exact(N)` as an array.
fn to_array<const N: usize>(chunk: &[u8]) -> [u8; N] {
    chunk.try_into().unwrap_or([0; N])
}
