//! `connections query`: a query's result in a format, streamed where the type can stream.

use anyhow::Result;
use connections::SqlConnection;
use connections::arrow::array::RecordBatch;
use connections::snowflake::SnowflakeConnection;
use futures_util::{Stream, StreamExt as _};

use crate::cli::QueryArgs;
use crate::output::{Destination, Sink};
use crate::progress::Progress;

/// Rows per batch when streaming.
const BATCH_ROWS: usize = 16 * 1024;

/// Runs the query and writes its result.
pub(crate) async fn run(args: QueryArgs, quiet: bool) -> Result<()> {
    // the destination first: a bad --output fails before any query runs
    let destination = Destination::new(args.output.as_deref())?;
    let mut sink = Sink::new(args.format, destination.writer()?, args.limit);
    let progress = Progress::start(quiet, "running query");
    let conn = super::open(&args.target).await?;

    let schema = if let Ok(sql) = conn.downcast::<SqlConnection>() {
        // streamed and uncached: a result larger than memory goes straight through
        let mut stream = sql.query_stream_with(&args.sql, args.params.clone(), BATCH_ROWS).await?;
        drain(&mut stream, &mut sink, &progress).await?;
        // known once the stream has ended, for a result without rows too
        stream.schema().cloned()
    } else if let Ok(snowflake) = conn.downcast::<SnowflakeConnection>() {
        // streamed and uncached, a few chunks in memory at a time
        let mut stream = snowflake.query_stream_with(&args.sql, args.params.clone()).await?;
        drain(&mut stream, &mut sink, &progress).await?;
        Some(stream.schema().clone())
    } else {
        let frame = conn.query(args.sql.as_str()).params(args.params.clone()).await?;
        for batch in frame.batches() {
            sink.write(batch)?;
            progress.rows(sink.rows());
        }
        Some(frame.schema().clone())
    };
    let rows = sink.rows();
    let note = sink.finish(schema.as_ref())?;
    destination.commit()?;
    if let Some(note) = note
        && !quiet
    {
        eprintln!("{note}");
    }
    let noun = if rows == 1 { "row" } else { "rows" };
    tracing::debug!(rows, elapsed = ?progress.elapsed(), "query done");
    progress.finish(&format!("{rows} {noun}"));
    Ok(())
}

/// Writes a streamed result to `sink` batch by batch as it arrives.
async fn drain(
    stream: &mut (impl Stream<Item = connections::Result<RecordBatch>> + Unpin),
    sink: &mut Sink,
    progress: &Progress,
) -> Result<()> {
    tracing::debug!("streaming the result");
    while let Some(batch) = stream.next().await {
        sink.write(&batch?)?;
        progress.rows(sink.rows());
    }
    Ok(())
}
