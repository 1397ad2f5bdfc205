//! Where a result goes (stdout, or a file written atomically) and in which format, batch by
//! batch so that a result larger than memory streams through.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use connections::arrow::array::RecordBatch;
use connections::arrow::csv;
use connections::arrow::datatypes::SchemaRef;
use connections::arrow::ipc::writer::StreamWriter;
use connections::arrow::json::{ArrayWriter, LineDelimitedWriter};
use connections::arrow::util::pretty::pretty_format_batches;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use tempfile::TempPath;

use crate::cli::Format;

/// The bytes' destination: stdout, or a temporary file beside the target, renamed into place
/// by [`Destination::commit`]. Dropped before that, the temporary file is removed.
pub(crate) enum Destination {
    Stdout,
    File { temp: TempPath, file: File, target: PathBuf },
}

impl Destination {
    /// Stdout, or a temporary file in `target`'s directory (which must exist).
    pub(crate) fn new(target: Option<&Path>) -> Result<Self> {
        let Some(target) = target else { return Ok(Self::Stdout) };
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if target.is_dir() {
            anyhow::bail!("cannot write to {}: it is a directory", target.display());
        }
        if !dir.is_dir() {
            anyhow::bail!(
                "cannot write to {}: the directory {} does not exist\nhint: create it first, or choose another --output",
                target.display(),
                dir.display()
            );
        }
        let named = tempfile::Builder::new()
            .prefix(".connections-")
            .suffix(".partial")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        let (file, temp) = named.into_parts();
        Ok(Self::File { temp, file, target: target.to_owned() })
    }

    /// The writer the format writes through.
    pub(crate) fn writer(&self) -> Result<Box<dyn Write + Send>> {
        Ok(match self {
            Self::Stdout => Box::new(io::stdout()),
            Self::File { file, .. } => Box::new(file.try_clone().context("cannot write the temporary file")?),
        })
    }

    /// Makes the written bytes durable and, for a file, renames it into place.
    pub(crate) fn commit(self) -> Result<()> {
        match self {
            Self::Stdout => io::stdout().flush().context("cannot write to stdout"),
            Self::File { temp, file, target } => {
                keep_or_default_permissions(&file, &target);
                file.sync_all().with_context(|| format!("cannot write {}", temp.display()))?;
                drop(file);
                temp.persist(&target).map_err(|e| e.error).with_context(|| format!("cannot write {}", target.display()))
            }
        }
    }
}

/// A temporary file is private (0600); the result gets the permissions of the file it replaces,
/// else those of a file made by a usual umask (0644). Best effort: the data matters more.
fn keep_or_default_permissions(file: &File, target: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let permissions =
            std::fs::metadata(target).map_or_else(|_| std::fs::Permissions::from_mode(0o644), |m| m.permissions());
        if let Err(error) = file.set_permissions(permissions) {
            tracing::debug!(%error, "cannot set the output file's permissions");
        }
    }
    #[cfg(not(unix))]
    let _ = (file, target);
}

/// Rows per Parquet row group.
const PARQUET_ROW_GROUP_ROWS: usize = 128 * 1024;

type Out = BufWriter<Box<dyn Write + Send>>;

/// A format writer, made at the first batch (the formats with a header need the schema).
pub(crate) struct Sink {
    format: Format,
    limit: usize,
    out: Option<Out>,
    state: State,
    /// Rows written (for `table`: rows seen, of which the first `limit` are shown).
    rows: u64,
}

enum State {
    Pending,
    Csv(Box<csv::Writer<Out>>),
    Json(ArrayWriter<Out>),
    Ndjson(LineDelimitedWriter<Out>),
    Arrow(StreamWriter<Out>),
    Parquet(Box<ArrowWriter<Out>>),
    Table { schema: SchemaRef, shown: Vec<RecordBatch>, shown_rows: usize },
}

impl Sink {
    /// A sink writing `format` to `out`; `limit` bounds the rows of the table format (0: none).
    pub(crate) fn new(format: Format, out: Box<dyn Write + Send>, limit: usize) -> Self {
        let limit = if limit == 0 { usize::MAX } else { limit };
        Self { format, limit, out: Some(BufWriter::with_capacity(1 << 16, out)), state: State::Pending, rows: 0 }
    }

    /// Rows written so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes one batch.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if matches!(self.state, State::Pending) {
            self.start(&batch.schema())?;
        }
        match &mut self.state {
            State::Pending => unreachable!("started above"),
            State::Csv(w) => w.write(batch)?,
            State::Json(w) => w.write(batch)?,
            State::Ndjson(w) => w.write(batch)?,
            State::Arrow(w) => w.write(batch)?,
            State::Parquet(w) => w.write(batch)?,
            State::Table { shown, shown_rows, .. } => {
                let room = self.limit.saturating_sub(*shown_rows);
                if room > 0 {
                    let take = room.min(batch.num_rows());
                    shown.push(batch.slice(0, take));
                    *shown_rows += take;
                }
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn start(&mut self, schema: &SchemaRef) -> Result<()> {
        let out = self.out.take().context("the output is already finished")?;
        self.state = match self.format {
            Format::Csv => State::Csv(Box::new(csv::WriterBuilder::new().with_header(true).build(out))),
            Format::Json => State::Json(ArrayWriter::new(out)),
            Format::Ndjson => State::Ndjson(LineDelimitedWriter::new(out)),
            Format::Arrow => State::Arrow(StreamWriter::try_new(out, schema)?),
            Format::Parquet => {
                // a row group is buffered whole before it is written: bound it, so that memory
                // stays flat however long the result (parquet's default is 1Mi rows)
                let properties = WriterProperties::builder().set_max_row_group_size(PARQUET_ROW_GROUP_ROWS).build();
                State::Parquet(Box::new(ArrowWriter::try_new(out, schema.clone(), Some(properties))?))
            }
            Format::Table => {
                self.out = Some(out);
                State::Table { schema: schema.clone(), shown: Vec::new(), shown_rows: 0 }
            }
        };
        Ok(())
    }

    /// Finishes the format (footers, the table itself) and flushes; returns a note for stderr
    /// when the table left rows out.
    pub(crate) fn finish(mut self, schema_if_empty: Option<&SchemaRef>) -> Result<Option<String>> {
        if matches!(self.state, State::Pending) {
            match schema_if_empty {
                Some(schema) => {
                    self.start(schema)?;
                    if let State::Csv(w) = &mut self.state {
                        // the header row, as for a result with rows
                        w.write(&RecordBatch::new_empty(schema.clone()))?;
                    }
                }
                None if self.format == Format::Json => {
                    // no batch and no schema: still a valid, empty document
                    self.start(&SchemaRef::new(connections::arrow::datatypes::Schema::empty()))?;
                }
                None => {}
            }
        }
        let mut note = None;
        let out = match std::mem::replace(&mut self.state, State::Pending) {
            State::Pending => self.out.take(),
            State::Csv(w) => Some(w.into_inner()),
            State::Json(mut w) => {
                w.finish()?;
                let mut out = w.into_inner();
                out.write_all(b"\n")?;
                Some(out)
            }
            State::Ndjson(mut w) => {
                w.finish()?;
                Some(w.into_inner())
            }
            State::Arrow(mut w) => {
                w.finish()?;
                Some(w.into_inner()?)
            }
            // writes the footer
            State::Parquet(w) => Some(w.into_inner()?),
            State::Table { schema, shown, shown_rows } => {
                let mut out = self.out.take().context("the output is already finished")?;
                let shown = if shown.is_empty() { vec![RecordBatch::new_empty(schema)] } else { shown };
                writeln!(out, "{}", pretty_format_batches(&shown)?)?;
                let hidden = self.rows.saturating_sub(shown_rows as u64);
                if hidden > 0 {
                    let noun = if hidden == 1 { "row" } else { "rows" };
                    note = Some(format!("{hidden} more {noun} not shown (--limit {shown_rows}; --limit 0 shows all)"));
                }
                Some(out)
            }
        };
        if let Some(mut out) = out {
            out.flush().context("cannot write the output")?;
        }
        Ok(note)
    }
}
