//! MySQL and MariaDB results read by a bulk reader of the binary protocol, into Arrow builders.
//!
//! sqlx hands out a result one row at a time, each row its own packet copy, `Vec` of value
//! ranges, column `Arc`s and async-stream hand-off; on a million rows that costs more client time
//! than the server needs to send them. This reader keeps one connection of its own per pool
//! (counted in `pool_size`), opened with the same settings, TLS and session setup as sqlx's
//! connections, and for a parameterless `SELECT`/`TABLE`/`VALUES` (a `query` or a
//! `query_stream`) prepares the statement, executes it and decodes every row where it lies in a
//! 256 KiB read buffer, straight into the column builders.
//!
//! The protocol is `mysql_common`'s (the protocol crate of `mysql_async`): handshake, TLS
//! request, authentication plugins, command, prepare, column-definition, OK and error packets,
//! and the framing of outgoing packets. Two parts are this crate's own: the row-to-Arrow decoding
//! ([`rows`], sharing the type table of sqlx's path), and the framing of incoming packets, which
//! hands payloads out as slices of the read buffer (`mysql_common`'s codec copies each payload
//! out, the copy per row this reader avoids). TLS is rustls, configured as sqlx configures it
//! (`tls`).
//!
//! It declines (and the query runs through sqlx, with the same Arrow result) only where it cannot
//! serve a query the same way: a character set other than `utf8mb4` (text is decoded as UTF-8
//! where it lies), TLS asked for in a build without the `rustls` feature (sqlx refuses those
//! connections and says why), an account whose authentication plugin `mysql_common` does not
//! implement (`auth_gssapi_client`, `parsec`, ...), a statement the server will not prepare (sqlx
//! then reports the error), a statement mentioning `@` (session variables belong to sqlx's
//! connections), a column of a type sqlx does not know, or while its connection serves another
//! query. A connection it cannot open (server down, login refused, certificate rejected) also
//! leaves the query to sqlx, whose error then says why.

mod handshake;
mod packets;
pub(crate) mod rows;
#[cfg(feature = "rustls")]
mod tls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::{Error, Result};
use sqlx::mysql::MySqlConnectOptions;
use tokio::sync::Mutex;

use mysql_common::constants::{Command, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    Column, ComStmtClose, ComStmtExecuteRequestBuilder, OkPacketDeserializer, OldEofPacket, StmtPacket,
};

use self::handshake::{Refused, Settings};
use self::packets::{Conn, Fields};
use self::rows::{ColumnDef, Rows};
use super::{Sink, is_plain_query};
use crate::options::EngineOptions;
use crate::url::SqlUrl;

/// The bulk reader of one pool: its settings and its idle connection.
pub(crate) struct BulkReader {
    settings: Settings,
    limits: Limits,
    idle: Mutex<Option<Idle>>,
    /// Set once the server or account turned out to need what this reader does not do.
    declined: AtomicBool,
    /// The pool's sqlx connections, which stop a query of this reader whose caller went away
    /// (`KILL QUERY`): closing the reader's connection alone would leave it running on the
    /// server to its end.
    killer: sqlx::MySqlPool,
}

/// Stops the query running on the reader's connection `id` when dropped before
/// [`finished`](Self::finished): its caller went away (a dropped future, a `query_timeout`).
struct KillOnDrop<'a> {
    id: u32,
    killer: &'a sqlx::MySqlPool,
    running: bool,
}

impl KillOnDrop<'_> {
    fn finished(mut self) {
        self.running = false;
    }
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (id, killer) = (self.id, self.killer.clone());
        tracing::debug!(id, "a bulk read was cancelled: stopping it on the server");
        runtime.spawn(async move {
            if let Err(error) = sqlx::query(&format!("KILL QUERY {id}")).execute(&killer).await {
                tracing::debug!(%error, id, "could not stop a cancelled bulk read");
            }
        });
    }
}

/// What running a query on the reader's connection came to.
enum Outcome {
    /// The rows went to the sink; the result's schema.
    Result(SchemaRef),
    /// Not run, for sqlx to run: the server would not prepare it, or it has parameters, no
    /// result columns or a column of a type sqlx does not know.
    Declined,
}

/// The pool's time limits, which the reader's connection keeps too.
#[derive(Debug)]
struct Limits {
    /// How long opening a connection may take (`connect_timeout`).
    connect: Duration,
    /// The age at which the connection is replaced (`pool_recycle`).
    lifetime: Option<Duration>,
    /// How long the connection may sit idle before it is replaced.
    idle: Option<Duration>,
}

/// The reader's connection between queries.
struct Idle {
    conn: Conn,
    opened: Instant,
    since: Instant,
}

impl BulkReader {
    /// Whether a reader can serve a pool of these connect options (built from `url`): what
    /// [`new`](Self::new) checks, before the pool exists.
    pub(crate) fn supports(options: &MySqlConnectOptions, url: &SqlUrl) -> bool {
        Settings::new(options, url).is_some()
    }

    /// A reader for the server of sqlx's connect options (built from `url`), with the pool's time
    /// limits; `None` when the options ask for what it does not do. `killer` is the pool's.
    pub(crate) fn new(
        options: &MySqlConnectOptions,
        url: &SqlUrl,
        engine: &EngineOptions,
        killer: sqlx::MySqlPool,
    ) -> Option<Self> {
        Settings::new(options, url).map(|settings| Self {
            killer,
            settings,
            limits: Limits {
                connect: engine.connect_timeout,
                lifetime: engine.max_lifetime,
                idle: engine.idle_timeout,
            },
            idle: Mutex::new(None),
            declined: AtomicBool::new(false),
        })
    }

    /// Reads a parameterless query's result, handing batches of `batch_size` rows to `sink`;
    /// the schema, or `Ok(None)` when this reader does not take the query (the caller then runs
    /// it through sqlx; nothing was sent to the sink).
    pub(crate) async fn fetch(&self, sql: &str, batch_size: usize, sink: &mut Sink<'_>) -> Result<Option<SchemaRef>> {
        let sql = sql.trim_end().trim_end_matches(';');
        if !is_plain_query(sql) || sql.contains([';', '@']) {
            return Ok(None);
        }
        if self.declined.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // one query at a time; a dropped query leaves the slot empty, and the next one reconnects
        let Ok(mut slot) = self.idle.try_lock() else { return Ok(None) };
        let now = Instant::now();
        let expired = |limit: Option<Duration>, since: Instant| limit.is_some_and(|l| now - since >= l);
        let kept =
            slot.take().filter(|i| !expired(self.limits.lifetime, i.opened) && !expired(self.limits.idle, i.since));
        let (mut conn, mut opened, mut reused) = match kept {
            Some(idle) => (idle.conn, idle.opened, true),
            None => match self.open().await {
                Some(conn) => (conn, Instant::now(), false),
                None => return Ok(None),
            },
        };
        loop {
            let running = KillOnDrop { id: conn.id, killer: &self.killer, running: true };
            let outcome = run(&mut conn, sql, batch_size, sink).await;
            running.finished();
            match outcome {
                Ok(outcome) => {
                    *slot = Some(Idle { conn, opened, since: Instant::now() });
                    return Ok(match outcome {
                        Outcome::Result(schema) => Some(schema),
                        Outcome::Declined => None,
                    });
                }
                Err(Failure::Stale(why)) if reused => {
                    // the idle connection died (server restart, timeout, KILL): one fresh try
                    tracing::debug!(%why, "bulk reader connection was closed; reconnecting");
                    let Some(fresh) = self.open().await else { return Ok(None) };
                    (conn, opened, reused) = (fresh, Instant::now(), false);
                }
                Err(Failure::Stale(why)) => return Err(Error::connection_lost(why)),
                Err(Failure::Query(error)) => return Err(error),
            }
        }
    }

    /// Closes the idle connection (waiting for a query running on it to finish).
    pub(crate) async fn close(&self) {
        if let Some(idle) = self.idle.lock().await.take() {
            idle.conn.quit().await;
        }
    }

    /// Opens a connection; `None` (and a debug event) when it cannot, for sqlx to do the query.
    async fn open(&self) -> Option<Conn> {
        let opened = tokio::time::timeout(self.limits.connect, handshake::open(&self.settings)).await;
        match opened.unwrap_or_else(|_| Err(Refused::Failed("timed out".into()))) {
            Ok(conn) => Some(conn),
            Err(Refused::Unsupported(why)) => {
                tracing::debug!(%why, "bulk reader not used for this pool");
                self.declined.store(true, Ordering::Relaxed);
                None
            }
            Err(Refused::Failed(why)) => {
                tracing::debug!(%why, "bulk reader could not connect");
                None
            }
        }
    }
}

impl std::fmt::Debug for BulkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkReader")
            .field("settings", &self.settings)
            .field("limits", &self.limits)
            .field("declined", &self.declined.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why a query failed on the reader's connection.
enum Failure {
    /// The connection broke before the server answered the first command (worth one retry on a
    /// fresh connection when it had been idle).
    Stale(String),
    /// Any later failure.
    Query(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Query(error)
    }
}

/// An I/O failure as an error (retried).
fn lost(e: std::io::Error) -> Error {
    Error::connection_lost(e)
}

/// An error packet as an error: retried when it says the connection is gone.
fn server_error(conn: &Conn, payload: &[u8]) -> Error {
    let error = conn.error(payload);
    if error.connection_lost() { Error::connection_lost(error) } else { Error::statement(error) }
}

/// Prepares, executes and closes the statement, reading its rows into batches for `sink`.
async fn run(
    conn: &mut Conn,
    sql: &str,
    batch_size: usize,
    sink: &mut Sink<'_>,
) -> std::result::Result<Outcome, Failure> {
    let stale = |e: std::io::Error| Failure::Stale(e.to_string());
    conn.command_text(Command::COM_STMT_PREPARE, sql.as_bytes()).await.map_err(stale)?;
    let answer = conn.read_owned().await.map_err(stale)?;
    match answer.first() {
        Some(0x00) => {}
        Some(0xFF) => {
            let error = conn.error(&answer);
            // a dead idle connection may say so with an error packet; a statement error is
            // sqlx's to report, with its own wording
            return if error.connection_lost() {
                Err(Failure::Stale(error.to_string()))
            } else {
                Ok(Outcome::Declined)
            };
        }
        _ => return Err(malformed("the answer to a prepare request").into()),
    }
    let prepared =
        ParseBuf(&answer).parse::<StmtPacket>(()).map_err(|_| malformed("the answer to a prepare request"))?;
    let (id, columns, params) = (prepared.statement_id(), prepared.num_columns(), prepared.num_params());
    let _parameters = definitions(conn, params).await?;
    let prepared_columns = definitions(conn, columns).await?;
    if params > 0 || columns == 0 || !rows::known(&prepared_columns) {
        close(conn, id).await?;
        return Ok(Outcome::Declined);
    }
    let (execute, _) = ComStmtExecuteRequestBuilder::new(id).build(&[]);
    conn.command(&execute).await.map_err(lost)?;
    let result = read_result(conn, batch_size, sink).await;
    close(conn, id).await?;
    Ok(Outcome::Result(result?))
}

/// Reads `count` column (or parameter) definitions and the end packet after them.
async fn definitions(conn: &mut Conn, count: u16) -> Result<Vec<ColumnDef>> {
    let mut defs = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let payload = conn.read().await.map_err(lost)?;
        let column =
            ParseBuf(conn.bytes(&payload)).parse::<Column>(()).map_err(|_| malformed("a column definition"))?;
        defs.push(ColumnDef::from(&column));
    }
    if count > 0 {
        let end = conn.read().await.map_err(lost)?;
        if conn.bytes(&end).first() != Some(&0xFE) {
            return Err(malformed("no end packet after the column definitions"));
        }
    }
    Ok(defs)
}

/// Reads an executed statement's result set, its columns, then every row, into batches for
/// `sink`; the schema.
async fn read_result(conn: &mut Conn, batch_size: usize, sink: &mut Sink<'_>) -> Result<SchemaRef> {
    let head = conn.read().await.map_err(lost)?;
    let head = conn.bytes(&head);
    let count = match head.first() {
        Some(0xFF) => return Err(server_error(conn, head)),
        Some(0x00) => 0,
        _ => Fields::new(head).lenenc().and_then(|n| u16::try_from(n).ok()).ok_or_else(|| malformed("column count"))?,
    };
    if count == 0 {
        return Err(malformed("a result without columns"));
    }
    let mut rows = Rows::new(definitions(conn, count).await?, batch_size)?;
    loop {
        let packet = conn.read().await.map_err(lost)?;
        let payload = conn.bytes(&packet);
        match payload.first() {
            Some(0x00) => {
                if let Some(batch) = rows.push(payload)? {
                    sink.put(batch).await?;
                }
            }
            Some(0xFE) if payload.len() < 9 => {
                let end = ParseBuf(payload)
                    .parse::<OkPacketDeserializer<'_, OldEofPacket>>(conn.capabilities)
                    .map_err(|_| malformed("the end of a result"))?
                    .into_inner();
                if end.status_flags().contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS) {
                    return Err(malformed("more than one result"));
                }
                break;
            }
            Some(0xFF) => return Err(server_error(conn, payload)),
            _ => return Err(malformed("a row")),
        }
    }
    let (schema, rest) = rows.finish()?;
    for batch in rest {
        sink.put(batch).await?;
    }
    Ok(schema)
}

/// Data that does not follow the protocol (retried, on a new connection).
fn malformed(what: &str) -> Error {
    Error::connection_lost(format!("unexpected data from the MySQL server: {what}"))
}

/// Frees the prepared statement (the server sends no answer).
async fn close(conn: &mut Conn, id: u32) -> Result<()> {
    conn.command(&ComStmtClose::new(id)).await.map_err(lost)
}
