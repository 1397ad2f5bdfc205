//! SQLite results read straight through SQLite's C API into Arrow builders.
//!
//! sqlx runs every SQLite statement on a worker thread and hands rows over one at a time, which
//! costs several times the work of reading them. For a whole result (`query`, a session's
//! `query_with`) this module instead locks the connection's raw handle (sqlx's `lock_handle`),
//! prepares and steps the statement itself and appends each value to its column builder. It
//! follows exactly the typing rule of [`super::sqlite`], through the same function
//! ([`append_value`]) for every value; what it does not handle (several statements in one
//! string, a statement that writes, a locked database) makes it hand the query back to the sqlx
//! path, which is then the one that answers.
//!
//! This is, with the environment export of secrets, the one place of the workspace that needs
//! `unsafe`: every call below is an SQLite C function on a handle we hold exclusively.

#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int};
use std::ptr::NonNull;

use connections_core::arrow::datatypes::SchemaRef;
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::{Error, Param, Result};
use libsqlite3_sys as ffi;
use sqlx::sqlite::SqliteConnection;

use super::sqlite::{Deadline, TimeLimit, Value, append_value};
use crate::columns::{Batches, Column, Kind};
use crate::error::classify;

/// Why the fast path declined a query: the sqlx path runs it instead.
pub(crate) struct Declined;

/// Runs a query to completion; `Ok(Err(Declined))` when the sqlx path must run it instead. With
/// a `deadline`, SQLite's progress handler interrupts the statement once it has passed, and the
/// handler is removed again before the connection is unlocked.
pub(crate) async fn collect(
    conn: &mut SqliteConnection,
    sql: &str,
    values: &[Param],
    batch_size: usize,
    deadline: Option<TimeLimit>,
) -> Result<std::result::Result<(SchemaRef, Vec<RecordBatch>), Declined>> {
    let mut handle = conn.lock_handle().await.map_err(classify)?;
    let watch = deadline.map(|limit| Deadline::arm(&mut handle, limit)).transpose()?;
    let db = handle.as_raw_handle();
    let step_all = || {
        // SAFETY: `db` is the open handle of a connection locked for us alone until `handle`
        // is dropped, which happens after this closure returns.
        unsafe { Statement::prepare(db, sql) }.and_then(|statement| match statement {
            Some(statement) => statement.read_all(values, batch_size),
            None => Ok(Err(Declined)),
        })
    };
    // Stepping a large result takes a while: keep the runtime's other tasks moving.
    let on_multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let result = if on_multi_thread { tokio::task::block_in_place(step_all) } else { step_all() };
    match watch {
        Some(watch) => {
            watch.disarm(&mut handle);
            watch.explain(result)
        }
        None => result,
    }
}

/// A prepared statement, finalized on drop.
struct Statement {
    db: NonNull<ffi::sqlite3>,
    raw: NonNull<ffi::sqlite3_stmt>,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `raw` was prepared on `db` and is finalized exactly once, here.
        unsafe { ffi::sqlite3_finalize(self.raw.as_ptr()) };
    }
}

impl Statement {
    /// Prepares `sql`; `None` when it holds more than one statement (sqlx runs those) or none.
    ///
    /// # Safety
    /// `db` must be an open connection nobody else uses until the statement is dropped.
    unsafe fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Option<Self>> {
        let length = c_int::try_from(sql.len()).map_err(|_| Error::statement("the query is too long for SQLite"))?;
        let mut raw = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: `sql` is valid for `length` bytes; out-pointers are valid.
        let code =
            unsafe { ffi::sqlite3_prepare_v2(db.as_ptr(), sql.as_ptr().cast(), length, &raw mut raw, &raw mut tail) };
        if code != ffi::SQLITE_OK {
            // SAFETY: `db` is open.
            return Err(unsafe { sqlite_error(db, code) });
        }
        let Some(raw) = NonNull::new(raw) else { return Ok(None) }; // only whitespace or comments
        let statement = Self { db, raw };
        // Only statements that change nothing: declining one half-run must be harmless.
        // SAFETY: live statement.
        if unsafe { ffi::sqlite3_stmt_readonly(statement.raw.as_ptr()) } == 0 {
            return Ok(None);
        }
        // SAFETY: `tail` points into `sql` (or is its end).
        let consumed = unsafe { tail.offset_from(sql.as_ptr().cast()) };
        let rest = usize::try_from(consumed).ok().and_then(|at| sql.get(at..)).unwrap_or("");
        if !rest.trim_matches(|c: char| c.is_whitespace() || c == ';').is_empty() {
            return Ok(None);
        }
        Ok(Some(statement))
    }

    fn bind(&self, values: &[Param]) -> Result<()> {
        for (index, value) in values.iter().enumerate() {
            let at = c_int::try_from(index + 1).map_err(|_| Error::statement("too many parameters"))?;
            let stmt = self.raw.as_ptr();
            // SAFETY: `stmt` is a live statement; SQLITE_TRANSIENT makes SQLite copy the bytes.
            let code = unsafe {
                match value {
                    Param::Null => ffi::sqlite3_bind_null(stmt, at),
                    Param::Bool(b) => ffi::sqlite3_bind_int64(stmt, at, i64::from(*b)),
                    Param::I64(i) => ffi::sqlite3_bind_int64(stmt, at, *i),
                    Param::F64(x) => ffi::sqlite3_bind_double(stmt, at, *x),
                    Param::Str(s) => ffi::sqlite3_bind_text64(
                        stmt,
                        at,
                        s.as_ptr().cast(),
                        s.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                        u8::try_from(ffi::SQLITE_UTF8).unwrap_or(1),
                    ),
                    Param::Bytes(b) => {
                        ffi::sqlite3_bind_blob64(stmt, at, b.as_ptr().cast(), b.len() as u64, ffi::SQLITE_TRANSIENT())
                    }
                    other => {
                        return Err(Error::statement(format!(
                            "parameters of type {} are not supported by SQL connections",
                            other.type_name()
                        )));
                    }
                }
            };
            if code != ffi::SQLITE_OK {
                // SAFETY: `db` is open.
                return Err(unsafe { sqlite_error(self.db, code) });
            }
        }
        Ok(())
    }

    fn column_count(&self) -> c_int {
        // SAFETY: live statement.
        unsafe { ffi::sqlite3_column_count(self.raw.as_ptr()) }
    }

    fn column_name(&self, index: c_int) -> String {
        // SAFETY: live statement, index in range; the name is a NUL-terminated UTF-8 string
        // valid until the next call on the statement, and copied at once.
        unsafe { c_text(ffi::sqlite3_column_name(self.raw.as_ptr(), index)) }.unwrap_or_default()
    }

    fn declared_kind(&self, index: c_int) -> Kind {
        // SAFETY: as in `column_name`.
        let declared = unsafe { c_text(ffi::sqlite3_column_decltype(self.raw.as_ptr(), index)) };
        declared.map_or(Kind::Undecided, |d| kind_of_declared(&d))
    }

    fn read_all(
        &self,
        values: &[Param],
        batch_size: usize,
    ) -> Result<std::result::Result<(SchemaRef, Vec<RecordBatch>), Declined>> {
        self.bind(values)?;
        let count = self.column_count();
        let plan = (0..count).map(|i| (self.column_name(i), self.declared_kind(i))).collect();
        let names: Vec<String> = (0..count).map(|i| self.column_name(i)).collect();
        let mut columns = Batches::new(plan, batch_size);
        let mut batches = Vec::new();
        let mut row = 0_usize;
        loop {
            // SAFETY: live statement.
            let code = unsafe { ffi::sqlite3_step(self.raw.as_ptr()) };
            match code {
                ffi::SQLITE_ROW => {}
                ffi::SQLITE_DONE => break,
                // sqlx knows how to wait for a locked database: let it run the query
                ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED if row == 0 => return Ok(Err(Declined)),
                // SAFETY: `db` is open.
                code => return Err(unsafe { sqlite_error(self.db, code) }),
            }
            for (index, column) in columns.columns().iter_mut().enumerate() {
                let at = c_int::try_from(index).unwrap_or(c_int::MAX);
                self.append(column, at, &names[index], row)?;
            }
            row += 1;
            if let Some(batch) = columns.row_done()? {
                batches.push(batch);
            }
        }
        let (schema, rest) = columns.into_batches()?;
        batches.extend(rest);
        Ok(Ok((schema, batches)))
    }

    /// Appends one value of the current row by the typing rule shared with the sqlx path.
    fn append(&self, column: &mut Column, index: c_int, name: &str, row: usize) -> Result<()> {
        let stmt = self.raw.as_ptr();
        // SAFETY (every call below): `stmt` has a current row and `index` is in range; the text
        // or blob slice is used by `append_value` before any other call on the statement.
        let value = unsafe {
            match ffi::sqlite3_column_type(stmt, index) {
                ffi::SQLITE_NULL => Value::Null,
                ffi::SQLITE_INTEGER => Value::Integer(ffi::sqlite3_column_int64(stmt, index)),
                ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_column_double(stmt, index)),
                ffi::SQLITE_BLOB => Value::Blob(column_bytes(stmt, index, true)),
                _ => Value::Text(column_bytes(stmt, index, false)),
            }
        };
        append_value(column, value, name, row)
    }
}

/// The bytes of a TEXT or BLOB value of the current row.
///
/// # Safety
/// `stmt` has a current row, `index` is in range, and the slice is used before any other call
/// on the statement.
unsafe fn column_bytes<'a>(stmt: *mut ffi::sqlite3_stmt, index: c_int, blob: bool) -> &'a [u8] {
    // SAFETY: per the function's contract; the pointer is fetched before the length, as SQLite
    // requires, and a NULL pointer (an empty value) becomes an empty slice.
    unsafe {
        let data: *const u8 =
            if blob { ffi::sqlite3_column_blob(stmt, index).cast() } else { ffi::sqlite3_column_text(stmt, index) };
        let length = usize::try_from(ffi::sqlite3_column_bytes(stmt, index)).unwrap_or(0);
        if data.is_null() || length == 0 { &[] } else { std::slice::from_raw_parts(data, length) }
    }
}

/// A NUL-terminated C string as an owned `String`.
///
/// # Safety
/// `text` is NULL or a valid NUL-terminated string.
unsafe fn c_text(text: *const c_char) -> Option<String> {
    // SAFETY: per the function's contract.
    (!text.is_null()).then(|| unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned())
}

/// The database's error for a failed call, as a statement error.
///
/// # Safety
/// `db` is an open connection.
unsafe fn sqlite_error(db: NonNull<ffi::sqlite3>, code: c_int) -> Error {
    // SAFETY: per the function's contract.
    let message = unsafe { c_text(ffi::sqlite3_errmsg(db.as_ptr())) }.unwrap_or_default();
    Error::statement(format!("(code: {code}) {message}"))
}

/// The column kind of a declared type, by the same rules as sqlx (and SQLite's affinities).
pub(crate) fn kind_of_declared(declared: &str) -> Kind {
    let d = declared.to_ascii_lowercase();
    match d.as_str() {
        "boolean" | "bool" => Kind::Bool,
        "date" => Kind::Date,
        "time" => Kind::Time,
        "datetime" | "timestamp" => Kind::Timestamp,
        _ if d.contains("int") => Kind::I64,
        _ if d.contains("char") || d.contains("clob") || d.contains("text") => Kind::Text,
        _ if d.contains("blob") => Kind::Bytes,
        _ if d.contains("real") || d.contains("floa") || d.contains("doub") => Kind::F64,
        _ => Kind::Undecided,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_follow_sqlx() {
        for (declared, kind) in [
            ("INTEGER", Kind::I64),
            ("BIGINT", Kind::I64),
            ("VARCHAR(10)", Kind::Text),
            ("DOUBLE PRECISION", Kind::F64),
            ("BOOLEAN", Kind::Bool),
            ("DATETIME", Kind::Timestamp),
            ("NUMERIC", Kind::Undecided),
            ("DECIMAL(10,2)", Kind::Undecided),
        ] {
            assert_eq!(kind_of_declared(declared), kind, "{declared}");
        }
    }
}

#[cfg(test)]
mod deadline_tests {
    #![allow(clippy::unwrap_used)] // test code

    use std::time::{Duration, Instant};

    use sqlx::Connection as _;

    use super::*;
    use crate::backend::sqlite::tests::FOREVER;

    /// A long query on the fast path stops within a couple of seconds of its deadline with the
    /// timeout error; the handler is gone afterwards, so the same connection runs a query of many
    /// check periods after the old deadline, with and without a deadline of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadline_stops_the_fast_path_and_the_connection_stays_usable() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let started = Instant::now();
        let deadline = Some(TimeLimit::from(started, Duration::from_millis(300)));
        let Err(err) = collect(&mut conn, FOREVER, &[], 1024, deadline).await else { panic!("no timeout") };
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(3), "stopped after {waited:?}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.starts_with("the statement did not finish within `query_timeout` (300ms)"), "{cause}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let slow = "with recursive c(x) as (select 1 union all select x + 1 from c where x < 300000) select count(*) as n from c";
        for deadline in [None, Some(TimeLimit::from_now(Duration::from_secs(600)))] {
            let Ok(Ok((_, batches))) = collect(&mut conn, slow, &[], 1024, deadline).await else { panic!("failed") };
            assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        }
    }
}
