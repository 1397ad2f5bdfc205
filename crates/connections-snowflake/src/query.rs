//! Running a statement: the query request (with typed bindings), polling a long-running query,
//! cancelling it on timeout or drop, and the result's chunks downloaded in parallel with a bound
//! and handed over in order.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use connections_core::DataFrame;
use connections_core::arrow::datatypes::SchemaRef;
use connections_core::arrow::record_batch::RecordBatch;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};

use crate::decode::{arrow_batches, dml_count, json_batch, schema};
use crate::error::{QUERY_IN_PROGRESS, QUERY_IN_PROGRESS_ASYNC, SnowflakeError};
use crate::protocol::{Binding, Chunk, Column, QueryData};
use crate::session::{Session, envelope, now_millis, read_body, server_error};

/// The result of a statement: its rows, its query id, and for DML the rows it changed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct QueryResult {
    /// The query's id (also in the frame's schema metadata, `snowflake:query_id`).
    pub query_id: Option<String>,
    /// For DML (insert, update, delete, merge): the number of rows it changed.
    pub rows_affected: Option<u64>,
    /// The rows.
    pub frame: DataFrame,
}

/// A statement that has run: its description and the inline part of its result; the chunks
/// are still to download.
pub(crate) struct Answer {
    data: QueryData,
    schema: SchemaRef,
    first: Vec<RecordBatch>,
}

/// Cancels a query on the server when dropped armed (the caller dropped the future, or the
/// timeout passed).
struct AbortGuard {
    session: Arc<Session>,
    request_id: String,
    sql: String,
    armed: bool,
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let session = Arc::clone(&self.session);
        let body = json!({ "sqlText": std::mem::take(&mut self.sql), "requestId": self.request_id });
        tracing::info!(connection = %session.config().name, request_id = %self.request_id, "cancelling the query");
        runtime.spawn(async move {
            if let Err(error) = session.post("abort-request", "/queries/v1/abort-request", &[], &body).await {
                tracing::warn!(%error, "cancelling the query failed");
            }
        });
    }
}

/// Rewrites `:name` placeholders to `?` and gives the names in order; text in quotes, comments
/// and `::` casts is left alone.
pub(crate) fn named_to_positional(sql: &str) -> (String, Vec<String>) {
    let bytes = sql.as_bytes();
    let (mut out, mut names) = (String::with_capacity(sql.len()), Vec::new());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let skip_to = |i: usize, end: &str| sql[i..].find(end).map_or(sql.len(), |p| i + p + end.len());
        let next = match c {
            b'\'' | b'"' => {
                let mut j = i + 1;
                while j < bytes.len() {
                    if bytes[j] == c {
                        if bytes.get(j + 1) == Some(&c) {
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    if c == b'\'' && bytes[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                (j + 1).min(bytes.len())
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => skip_to(i, "\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => skip_to(i + 2, "*/"),
            b'$' if bytes.get(i + 1) == Some(&b'$') => skip_to(i + 2, "$$"),
            b':' if bytes.get(i + 1) == Some(&b':') => i + 2,
            b':' if bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') => {
                let end = (i + 1..bytes.len())
                    .find(|&j| !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_'))
                    .unwrap_or(bytes.len());
                names.push(sql[i + 1..end].to_owned());
                out.push('?');
                i = end;
                continue;
            }
            _ => {
                let len = sql[i..].chars().next().map_or(1, char::len_utf8);
                i + len
            }
        };
        out.push_str(&sql[i..next]);
        i = next;
    }
    (out, names)
}

/// The SQL text and its bindings as the protocol wants them: positional bindings (`"1"`, `"2"`,
/// ...) as given, named ones turned into positional ones.
pub(crate) fn bind(sql: &str, bindings: &[(String, Binding)]) -> Result<(String, Option<Value>), String> {
    if bindings.is_empty() {
        return Ok((sql.to_owned(), None));
    }
    if bindings.iter().all(|(name, _)| name.bytes().all(|b| b.is_ascii_digit())) {
        let map: serde_json::Map<String, Value> = bindings.iter().map(|(n, b)| (n.clone(), b.wire())).collect();
        return Ok((sql.to_owned(), Some(Value::Object(map))));
    }
    let (text, names) = named_to_positional(sql);
    let mut map = serde_json::Map::new();
    let mut missing = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match bindings.iter().find(|(n, _)| n == name) {
            Some((_, b)) => {
                map.insert((i + 1).to_string(), b.wire());
            }
            None => missing.push(format!("`{name}`")),
        }
    }
    if !missing.is_empty() {
        return Err(format!("no value for the placeholder(s) {}", missing.join(", ")));
    }
    Ok((text, Some(Value::Object(map))))
}

/// Runs a statement; the answer once the server has finished it. With `timeout`, a query still
/// running after it is cancelled; dropping the future cancels it too.
pub(crate) async fn run(
    session: &Arc<Session>,
    sql: &str,
    bindings: &[(String, Binding)],
    timeout: Option<Duration>,
) -> Result<Answer, SnowflakeError> {
    let (text, bindings) =
        bind(sql, bindings).map_err(|problem| SnowflakeError::protocol("binding parameters", problem))?;
    run_bound(session, text, bindings, timeout).await
}

/// [`run`] with the bindings in the protocol's form (array bindings for `write`).
pub(crate) async fn run_bound(
    session: &Arc<Session>,
    text: String,
    bindings: Option<Value>,
    timeout: Option<Duration>,
) -> Result<Answer, SnowflakeError> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut guard =
        AbortGuard { session: Arc::clone(session), request_id: request_id.clone(), sql: text.clone(), armed: true };
    let query_id = Arc::new(Mutex::new(None::<String>));
    let work = execute(session, &text, bindings, None, &request_id, &query_id);
    let data = match timeout {
        None => work.await,
        Some(limit) => {
            let Ok(result) = tokio::time::timeout(limit, work).await else {
                let query_id = query_id.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let what = "the query".to_owned();
                let query_id = query_id.or(Some(request_id));
                return Err(SnowflakeError::Timeout { what, seconds: limit.as_secs_f64(), query_id });
            };
            result
        }
    };
    guard.armed = false;
    let (data, rowset) = data?;
    answer_from(data, rowset)
}

/// Runs text holding several statements (`count` of them; 0 for any number), in order; the
/// answer of each statement.
pub(crate) async fn run_statements(
    session: &Arc<Session>,
    text: &str,
    count: u32,
    timeout: Option<Duration>,
) -> Result<Vec<Answer>, SnowflakeError> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut guard =
        AbortGuard { session: Arc::clone(session), request_id: request_id.clone(), sql: text.to_owned(), armed: true };
    let query_id = Mutex::new(None::<String>);
    let parameters = json!({ "MULTI_STATEMENT_COUNT": count });
    let work = async {
        let data = execute(session, text, None, Some(parameters), &request_id, &query_id).await?;
        let Some(ids) = data.0.result_ids.clone().filter(|ids| !ids.is_empty()) else {
            return Ok(vec![data]); // one statement: its own answer
        };
        let mut all = Vec::new();
        for id in ids.split(',') {
            let answer = session.get_result("statement result", &format!("/queries/{id}/result")).await?;
            all.push(settle(session, answer, &query_id).await?);
        }
        Ok(all)
    };
    let datas = match timeout {
        None => work.await,
        Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            let query_id = query_id.lock().unwrap_or_else(PoisonError::into_inner).clone();
            Err(SnowflakeError::Timeout { what: "the statements".into(), seconds: limit.as_secs_f64(), query_id })
        }),
    };
    guard.armed = false;
    datas?.into_iter().map(|(data, rowset)| answer_from(data, rowset)).collect()
}

/// The answer of a finished statement: its schema and the inline part of its result decoded
/// (`rowset`: its Arrow IPC bytes when already taken out of the response, see
/// [`split_rowset`](crate::session::split_rowset)).
fn answer_from(mut data: QueryData, rowset: Option<Vec<u8>>) -> Result<Answer, SnowflakeError> {
    let schema = schema(&data.rowtype, data.query_id.as_deref());
    // the inline rows are taken out of the answer: once decoded, their text is freed
    let (rows, base64_text) = (data.rowset.take(), data.rowset_base64.take());
    let decode_error = |problem: String| SnowflakeError::Decode { problem, query_id: data.query_id.clone() };
    let first = match data.query_result_format.as_deref() {
        Some("json") => match rows {
            Some(rows) if !rows.is_empty() => vec![json_batch(&rows, &data.rowtype, &schema).map_err(decode_error)?],
            _ => Vec::new(),
        },
        _ => match (rowset, base64_text) {
            (Some(bytes), _) => arrow_batches(bytes, &data.rowtype, &schema).map_err(decode_error)?,
            (None, Some(text)) if !text.is_empty() => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&text)
                    .map_err(|e| decode_error(format!("`rowsetBase64` is not base64: {e}")))?;
                drop(text);
                arrow_batches(bytes, &data.rowtype, &schema).map_err(decode_error)?
            }
            _ => Vec::new(),
        },
    };
    Ok(Answer { data, schema, first })
}

async fn execute(
    session: &Session,
    sql: &str,
    bindings: Option<Value>,
    parameters: Option<Value>,
    request_id: &str,
    query_id: &Mutex<Option<String>>,
) -> Result<(QueryData, Option<Vec<u8>>), SnowflakeError> {
    let mut body = json!({
        "sqlText": sql,
        "asyncExec": false,
        "sequenceId": session.next_sequence(),
        "querySubmissionTime": now_millis(),
        "isInternal": false,
        "describeOnly": false,
    });
    if let Some(bindings) = bindings {
        body["bindings"] = bindings;
    }
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    let params = [("requestId", request_id.to_owned()), ("request_guid", uuid::Uuid::new_v4().to_string())];
    let answer = session.post_result("query", "/queries/v1/query-request", &params, &body, true).await?;
    settle(session, answer, query_id).await
}

/// Polls a statement's result while the server says it is still running; its data (and its
/// inline Arrow rows when taken out of the response) once done.
async fn settle(
    session: &Session,
    (mut answer, mut rowset): (Value, Option<Vec<u8>>),
    query_id: &Mutex<Option<String>>,
) -> Result<(QueryData, Option<Vec<u8>>), SnowflakeError> {
    let mut wait = Duration::from_millis(50);
    loop {
        let code = answer.get("code").and_then(Value::as_str).unwrap_or_default();
        if code != QUERY_IN_PROGRESS && code != QUERY_IN_PROGRESS_ASYNC {
            break;
        }
        let data = answer.get("data");
        if let Some(id) = data.and_then(|d| d.get("queryId")).and_then(Value::as_str) {
            *query_id.lock().unwrap_or_else(PoisonError::into_inner) = Some(id.to_owned());
        }
        let url = data.and_then(|d| d.get("getResultUrl")).and_then(Value::as_str).map(str::to_owned);
        let Some(url) = url else {
            return Err(SnowflakeError::protocol("query", "still running, but the answer has no `getResultUrl`"));
        };
        tracing::debug!(%url, "query still running; polling its result");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(1));
        (answer, rowset) = session.get_result("query result", &url).await?;
    }
    if answer.get("success").and_then(Value::as_bool) != Some(true) {
        return Err(server_error("query", &answer));
    }
    Ok((QueryData::parse(envelope("query", answer)?)?, rowset))
}

impl Answer {
    /// The query id.
    pub(crate) fn query_id(&self) -> Option<&str> {
        self.data.query_id.as_deref()
    }

    /// The result's schema.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The batches in order: the inline part, then the chunks, downloaded
    /// `client_prefetch_threads` at a time; memory holds at most that many chunks beyond the
    /// batches handed over.
    pub(crate) fn into_stream(self, session: Arc<Session>) -> BoxStream<'static, Result<RecordBatch, SnowflakeError>> {
        let parallel = session.config().prefetch_threads;
        let Answer { data, schema, first } = self;
        let headers = chunk_headers(&data);
        let rowtype = Arc::new(data.rowtype.clone());
        let json = data.query_result_format.as_deref() == Some("json");
        let query_id = data.query_id.clone();
        let chunks = data.chunks.into_iter().enumerate().map(move |(index, chunk)| {
            let (session, headers, rowtype, schema, query_id) =
                (Arc::clone(&session), headers.clone(), Arc::clone(&rowtype), Arc::clone(&schema), query_id.clone());
            async move { download(&session, index, &chunk, &headers, &rowtype, &schema, json, query_id).await }
        });
        let rest = stream::iter(chunks).buffered(parallel.max(1)).flat_map(|result| match result {
            Ok(batches) => stream::iter(batches.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(error) => stream::iter(vec![Err(error)]),
        });
        stream::iter(first.into_iter().map(Ok)).chain(rest).boxed()
    }

    /// The whole result, read into memory.
    pub(crate) async fn collect(self, session: Arc<Session>) -> Result<QueryResult, SnowflakeError> {
        let query_id = self.data.query_id.clone();
        let is_dml = self.data.is_dml();
        let schema = Arc::clone(&self.schema);
        let mut batches = Vec::new();
        let mut stream = self.into_stream(session);
        while let Some(batch) = stream.next().await {
            batches.push(batch?);
        }
        let rows_affected = is_dml.then(|| dml_count(&batches));
        let frame = DataFrame::new(schema, batches)
            .map_err(|e| SnowflakeError::Decode { problem: e.to_string(), query_id: query_id.clone() })?;
        Ok(QueryResult { query_id, rows_affected, frame })
    }
}

fn chunk_headers(data: &QueryData) -> Vec<(String, String)> {
    if let Some(headers) = &data.chunk_headers {
        return headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    match &data.qrmk {
        Some(key) => vec![
            ("x-amz-server-side-encryption-customer-algorithm".into(), "AES256".into()),
            ("x-amz-server-side-encryption-customer-key".into(), key.clone()),
        ],
        None => Vec::new(),
    }
}

/// How many times a chunk download is attempted: a connection cut off while the body arrives
/// (which the transport's retry layer, acting on the response head, does not see) is retried
/// with the chunk alone, as the Python connector does, instead of failing the whole query.
const CHUNK_ATTEMPTS: u32 = 3;

/// A chunk's bytes; a transport failure (before or during the body) is retried.
async fn fetch_chunk(
    session: &Session,
    what: &str,
    url: &str,
    headers: &[(String, String)],
) -> Result<Vec<u8>, SnowflakeError> {
    let mut attempt = 1;
    loop {
        let mut request = session.http().get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(limit) = session.config().network_timeout {
            request = request.timeout(limit);
        }
        let result = match request.send().await {
            Ok(response) if !response.status().is_success() => {
                return Err(SnowflakeError::protocol(what, format!("HTTP {}", response.status())));
            }
            // read into one buffer sized by its `Content-Length`, which then becomes the batches
            Ok(response) => read_body(response).await.map_err(|e| SnowflakeError::transport(what, e)),
            Err(e) => Err(SnowflakeError::transport(what, e)),
        };
        match result {
            Err(error) if attempt < CHUNK_ATTEMPTS => {
                tracing::info!(%error, attempt, "downloading a result chunk failed; trying again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn download(
    session: &Session,
    index: usize,
    chunk: &Chunk,
    headers: &[(String, String)],
    rowtype: &[Column],
    schema: &SchemaRef,
    json: bool,
    query_id: Option<String>,
) -> Result<Vec<RecordBatch>, SnowflakeError> {
    let what = format!("result chunk {}", index + 1);
    let bytes = fetch_chunk(session, &what, &chunk.url, headers).await?;
    let decode_error =
        |problem: String| SnowflakeError::Decode { problem: format!("{what}: {problem}"), query_id: query_id.clone() };
    // cloud storage may serve a chunk gzipped without saying so in `Content-Encoding`
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::with_capacity(bytes.len() * 4);
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
            .map_err(|e| decode_error(format!("a gzipped chunk that cannot be decompressed: {e}")))?;
        plain
    } else {
        bytes
    };
    let batches = if json {
        let mut text = Vec::with_capacity(bytes.len() + 2);
        text.push(b'[');
        text.extend_from_slice(&bytes);
        text.push(b']');
        let rows: Vec<Vec<Value>> =
            serde_json::from_slice(&text).map_err(|e| decode_error(format!("not JSON rows: {e}")))?;
        vec![json_batch(&rows, rowtype, schema).map_err(decode_error)?]
    } else {
        arrow_batches(bytes, rowtype, schema).map_err(decode_error)?
    };
    if let Some(expected) = chunk.row_count {
        let got: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if got as u64 != expected {
            return Err(decode_error(format!("{got} rows, {expected} announced")));
        }
    }
    Ok(batches)
}

/// Batches of a streamed query, in order, as the chunks arrive; an error ends the stream. Use
/// it as a `futures::Stream`, or call [`next_batch`](Self::next_batch).
pub struct BatchStream {
    schema: SchemaRef,
    query_id: Option<String>,
    inner: BoxStream<'static, Result<RecordBatch, SnowflakeError>>,
}

impl BatchStream {
    pub(crate) fn new(answer: Answer, session: Arc<Session>) -> Self {
        let schema = Arc::clone(answer.schema());
        let query_id = answer.query_id().map(str::to_owned);
        Self { schema, query_id, inner: answer.into_stream(session) }
    }

    /// The result's schema (known before the first batch, also for an empty result).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The query id.
    pub fn query_id(&self) -> Option<&str> {
        self.query_id.as_deref()
    }

    /// The next batch, or `None` at the end.
    pub async fn next_batch(&mut self) -> Option<connections_core::Result<RecordBatch>> {
        self.inner.next().await.map(|r| r.map_err(Into::into))
    }
}

impl futures_util::Stream for BatchStream {
    type Item = connections_core::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx).map(|o| o.map(|r| r.map_err(Into::into)))
    }
}

impl std::fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream").field("query_id", &self.query_id).finish_non_exhaustive()
    }
}

/// How [`write`](crate::SnowflakeConnection::write) loads a frame.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WriteOptions {
    /// The table's database (default: the session's).
    pub database: Option<String>,
    /// The table's schema (default: the session's).
    pub schema: Option<String>,
    /// Rows per INSERT (default 16,384).
    pub chunk_size: Option<usize>,
    /// Create the table (from the frame's schema) when it does not exist.
    pub auto_create_table: bool,
    /// Replace the table's rows (with `auto_create_table`: the table itself).
    pub overwrite: bool,
    /// Quote the table and column names as given (default true); without it Snowflake
    /// upper-cases them.
    pub quote_identifiers: Option<bool>,
}

/// What [`write`](crate::SnowflakeConnection::write) did, as `write_pandas` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteResult {
    /// Whether every row was written.
    pub success: bool,
    /// How many INSERT batches were sent.
    pub chunks: usize,
    /// How many rows were written.
    pub rows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_placeholders_become_positional() {
        let (sql, names) = named_to_positional("select :a, ':b', x::int, \"c:d\", :e_1 -- :f\n/* :g */ $$:h$$");
        assert_eq!(sql, "select ?, ':b', x::int, \"c:d\", ? -- :f\n/* :g */ $$:h$$");
        assert_eq!(names, ["a", "e_1"]);
    }

    #[test]
    fn bindings_by_name_and_position() {
        let (sql, b) =
            bind("select :x, :y, :x", &[("x".into(), Binding::Int(1)), ("y".into(), Binding::Null)]).unwrap();
        assert_eq!(sql, "select ?, ?, ?");
        let b = b.unwrap();
        assert_eq!(b["3"], json!({"type": "FIXED", "value": "1"}));
        assert_eq!(b["2"], json!({"type": "ANY", "value": null}));
        let err = bind("select :z", &[("x".into(), Binding::Int(1))]).unwrap_err();
        assert!(err.contains("`z`"), "{err}");
        let (sql, b) = bind("select ?", &[("1".into(), Binding::Text("a".into()))]).unwrap();
        assert_eq!((sql.as_str(), &b.unwrap()["1"]["type"]), ("select ?", &json!("TEXT")));
    }
}
