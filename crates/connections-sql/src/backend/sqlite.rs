//! SQLite rows to Arrow.
//!
//! SQLite types values, not columns. The rule: a column's **declared type** decides its Arrow
//! type (`INTEGER`/`INT...` → Int64, `REAL`/`FLOA...`/`DOUB...` → Float64, `TEXT`/`CHAR`/`CLOB` →
//! Utf8, `BLOB` → Binary, `BOOLEAN`/`BOOL` → Boolean, `DATE` → Date32, `TIME` → Time64(µs),
//! `DATETIME`/`TIMESTAMP` → Timestamp(µs)); a column without one (an expression) or with
//! another (`NUMERIC`, `DECIMAL(10,2)`) takes the storage class of its **first non-NULL value**.
//! A later value of another class is converted where SQLite itself would: a real value turns a
//! column of integers into Float64 (as `coalesce(price, 0)` needs), an integer goes into a
//! Float64 column, a number into a Utf8 column as its text, text into a Binary column as its
//! bytes; anything else (text in a numeric column, say) fails the query, naming the column and
//! the row, instead of silently changing data.
//!
//! The typed columns read their values as follows (see [`append_value`]):
//! - **Boolean**: the integers 0 (false) and 1 (true); any other integer, and any real, text or
//!   blob, is an error (SQLite stores `1.0` in such a column as the integer 1, but `1.5` and
//!   `'true'` as they are).
//! - **Timestamp** (`DATETIME`, `TIMESTAMP`): text `YYYY-MM-DD`, optionally followed by `T` or a
//!   space and `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff...`, optionally followed by `Z` or an offset
//!   `±HH:MM` (spaces before it allowed), which is converted to UTC as SQLite's `datetime()` does
//!   (`'2024-01-01T12:00:00+05:00'` is `2024-01-01 07:00:00`); an integer is Unix seconds (as
//!   `unixepoch()` gives and `datetime(x, 'unixepoch')` reads), a real a Julian day number (as
//!   `julianday()` gives and `datetime(x)` reads, to the millisecond as SQLite reads it). Only
//!   moments SQLite itself can show, years 0000 to 9999, are accepted.
//! - **Date32** (`DATE`): text `YYYY-MM-DD`. **Time64** (`TIME`): text `HH:MM`, `HH:MM:SS` or
//!   `HH:MM:SS.fff...`, from 00:00 to 23:59:59.999999 (`24:00:00` and leap seconds are errors),
//!   optionally followed by `Z` or a zero offset (another offset has no meaning without a date).
//! - Anything else in those columns (an impossible date, a number in a `DATE` or `TIME`
//!   column, a blob) is an error naming the column and the row; no message shows the value.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use connections_core::{Error, Result};
use sqlx::sqlite::{LockedSqliteHandle, SqliteColumn, SqliteConnection, SqliteRow, SqliteValueRef};
use sqlx::types::chrono::NaiveDate;
use sqlx::{Column as _, Decode, Row as _, Sqlite, TypeInfo as _, ValueRef as _};

use super::{Sink, bool_from_int, mismatch};
use crate::columns::{Column, Kind, date32};
use crate::error::classify;

/// The columns' declared names, for messages.
pub(crate) struct Decoder {
    name: String,
}

fn plan(column: &SqliteColumn) -> ((String, Kind), Decoder) {
    let kind = match column.type_info().name() {
        "INTEGER" => Kind::I64,
        "REAL" => Kind::F64,
        "TEXT" => Kind::Text,
        "BLOB" => Kind::Bytes,
        "BOOLEAN" => Kind::Bool,
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "DATETIME" => Kind::Timestamp,
        _ => Kind::Undecided,
    };
    ((column.name().to_owned(), kind), Decoder { name: column.name().to_owned() })
}

fn decode<'r, T: Decode<'r, Sqlite>>(value: SqliteValueRef<'r>, name: &str, row: usize) -> Result<T> {
    T::decode(value).map_err(|e| Error::statement(format!("column `{name}`, row {row}: cannot decode the value: {e}")))
}

/// The storage classes of SQLite values.
#[derive(Clone, Copy)]
enum Class {
    Integer,
    Real,
    Text,
    Blob,
}

fn append(column: &mut Column, decoder: &Decoder, row: &SqliteRow, index: usize, number: usize) -> Result<()> {
    let value = row.try_get_raw(index).map_err(classify)?;
    let name = decoder.name.as_str();
    if value.is_null() {
        return append_value(column, Value::Null, name, number);
    }
    // the value's own storage class (the column's declared type only when the value is NULL)
    let class = match value.type_info().name() {
        "INTEGER" => Class::Integer,
        "REAL" => Class::Real,
        "BLOB" => Class::Blob,
        _ => Class::Text,
    };
    let value = match class {
        Class::Integer => Value::Integer(decode(value, name, number)?),
        Class::Real => Value::Real(decode(value, name, number)?),
        Class::Text => Value::Text(decode(value, name, number)?),
        Class::Blob => Value::Blob(decode(value, name, number)?),
    };
    append_value(column, value, name, number)
}

/// One SQLite value as its storage class holds it, from either read path.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    /// NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text, as its bytes (UTF-8 unless the database holds something else).
    Text(&'a [u8]),
    /// A blob.
    Blob(&'a [u8]),
}

impl Value<'_> {
    /// The storage class's name, for messages.
    fn class(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Integer(_) => "INTEGER",
            Self::Real(_) => "REAL",
            Self::Text(_) => "TEXT",
            Self::Blob(_) => "BLOB",
        }
    }
}

/// Appends one value to its column by the module's typing rule. Both read paths (sqlx's rows
/// and the C API in [`super::sqlite_fast`]) call this for every value, so a value means the same
/// on both and fails with the same error; `row` counts from 0 over the whole result.
#[inline]
pub(crate) fn append_value(column: &mut Column, value: Value<'_>, name: &str, row: usize) -> Result<()> {
    use std::fmt::Write as _;
    if let Value::Null = value {
        column.append_null();
        return Ok(());
    }
    if let Column::Undecided(_) = column {
        let kind = match value {
            Value::Integer(_) => Kind::I64,
            Value::Real(_) => Kind::F64,
            Value::Blob(_) => Kind::Bytes,
            Value::Text(_) | Value::Null => Kind::Text,
        };
        column.decide(kind, 1024);
    }
    if let Value::Real(_) = value
        && let Column::I64(_) = column
    {
        column.widen_to_f64();
    }
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| mismatch(name, row, "non-UTF-8 TEXT", "Utf8"));
    let written = |e: std::fmt::Error| Error::statement(format!("column `{name}`, row {row}: {e}"));
    match (column, value) {
        (Column::I64(b), Value::Integer(i)) => b.append_value(i),
        (Column::F64(b), Value::Real(x)) => b.append_value(x),
        #[allow(clippy::cast_precision_loss)] // SQLite's own conversion of an integer to a real
        (Column::F64(b), Value::Integer(i)) => b.append_value(i as f64),
        (Column::Text(b), Value::Text(bytes)) => b.append_value(text(bytes)?),
        (Column::Text(b), Value::Integer(i)) => {
            write!(b, "{i}").map_err(written)?;
            b.append_value("");
        }
        (Column::Text(b), Value::Real(x)) => {
            write!(b, "{x}").map_err(written)?;
            b.append_value("");
        }
        (Column::Bytes(b), Value::Blob(bytes) | Value::Text(bytes)) => b.append_value(bytes),
        (Column::Bool(b), Value::Integer(i)) => b.append_value(bool_from_int(i, name, row)?),
        (Column::Timestamp(b), Value::Text(bytes)) => {
            b.append_value(timestamp_of_text(bytes).ok_or_else(|| not_a(name, row, DATETIME_FORMS))?);
        }
        (Column::Timestamp(b), Value::Integer(seconds)) => {
            b.append_value(timestamp_of_unix_seconds(seconds).ok_or_else(|| not_a(name, row, DATETIME_FORMS))?);
        }
        (Column::Timestamp(b), Value::Real(days)) => {
            b.append_value(timestamp_of_julian_day(days).ok_or_else(|| not_a(name, row, DATETIME_FORMS))?);
        }
        (Column::Date(b), Value::Text(bytes)) => {
            b.append_value(date_of_text(bytes).ok_or_else(|| not_a(name, row, DATE_FORMS))?);
        }
        (Column::Time(b), Value::Text(bytes)) => {
            b.append_value(time_of_text(bytes).ok_or_else(|| not_a(name, row, TIME_FORMS))?);
        }
        (column, value) => return Err(mismatch(name, row, value.class(), &column.data_type().to_string())),
    }
    Ok(())
}

/// What a `DATETIME`/`TIMESTAMP` column takes, for messages.
const DATETIME_FORMS: &str = "a date and time (text YYYY-MM-DD[ HH:MM[:SS[.fff]]][Z|±HH:MM], unix seconds as an integer or a julian day as a real, years 0000 to 9999)";
/// What a `DATE` column takes, for messages.
const DATE_FORMS: &str = "a date (text YYYY-MM-DD)";
/// What a `TIME` column takes, for messages.
const TIME_FORMS: &str = "a time of day (text HH:MM[:SS[.fff]][Z], before 24:00)";

/// The error for a value that is not what its date or time column takes (never shows it).
fn not_a(name: &str, row: usize, forms: &str) -> Error {
    Error::statement(format!("column `{name}`, row {row}: the value is not {forms}"))
}

/// Microseconds from the Unix epoch to 0000-01-01 00:00:00 UTC, and to 10000-01-01.
const MIN_MICROS: i64 = -62_167_219_200_000_000;
const END_MICROS: i64 = 253_402_300_800_000_000;

/// Unix seconds as microseconds since the epoch, within SQLite's range of `'unixepoch'`
/// (after Julian day 0, up to 9999-12-31 23:59:59).
pub(crate) fn timestamp_of_unix_seconds(seconds: i64) -> Option<i64> {
    (seconds > -210_866_760_000 && seconds <= 253_402_300_799).then(|| seconds * 1_000_000)
}

/// A Julian day number as microseconds since the epoch, read to the millisecond as SQLite
/// reads it (`iJD = (r * 86400000.0 + 0.5)`), for days from 0 to SQLite's last (9999-12-31).
pub(crate) fn timestamp_of_julian_day(days: f64) -> Option<i64> {
    if !(0.0..5_373_484.5).contains(&days) {
        return None; // NaN included
    }
    #[allow(clippy::cast_possible_truncation)] // in range: at most 4.7e14 milliseconds
    let millis = (days * 86_400_000.0 + 0.5) as i64;
    Some((millis - 210_866_760_000_000) * 1000)
}

/// Text as a DATETIME: microseconds since the epoch in UTC (see the module's rule).
pub(crate) fn timestamp_of_text(text: &[u8]) -> Option<i64> {
    let mut at = Cursor(text);
    let days = i64::from(at.date()?);
    let (seconds, micros, offset) = match at.0 {
        [] => (0, 0, 0),
        [b' ' | b'T', ..] => {
            at.0 = &at.0[1..];
            let (seconds, micros) = at.time_of_day()?;
            (seconds, micros, at.zone()?)
        }
        _ => return None,
    };
    let micros = ((days * 86_400 + i64::from(seconds) - i64::from(offset)) * 1_000_000) + i64::from(micros);
    (MIN_MICROS..END_MICROS).contains(&micros).then_some(micros)
}

/// Text as a DATE: days since the epoch.
pub(crate) fn date_of_text(text: &[u8]) -> Option<i32> {
    let mut at = Cursor(text);
    let days = at.date()?;
    at.0.is_empty().then_some(days)
}

/// Text as a TIME: microseconds since midnight, in [0, 24 h).
pub(crate) fn time_of_text(text: &[u8]) -> Option<i64> {
    let mut at = Cursor(text);
    let (seconds, micros) = at.time_of_day()?;
    (at.zone()? == 0).then(|| i64::from(seconds) * 1_000_000 + i64::from(micros))
}

/// A reader of SQLite's date and time text, byte by byte (no allocation, no format tables).
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let (head, rest) = self.0.split_at_checked(n)?;
        let mut value = 0;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.0 = rest;
        Some(value)
    }

    /// One expected byte.
    fn eat(&mut self, byte: u8) -> Option<()> {
        let (&first, rest) = self.0.split_first()?;
        (first == byte).then(|| self.0 = rest)
    }

    /// `YYYY-MM-DD`, a real calendar date, as days since the epoch.
    fn date(&mut self) -> Option<i32> {
        let year = self.digits(4)?;
        self.eat(b'-')?;
        let month = self.digits(2)?;
        self.eat(b'-')?;
        let day = self.digits(2)?;
        NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day).map(date32)
    }

    /// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff...` before 24:00, as seconds since midnight and
    /// microseconds (further digits are dropped, as Arrow keeps microseconds).
    fn time_of_day(&mut self) -> Option<(u32, u32)> {
        let hours = self.digits(2).filter(|h| *h < 24)?;
        self.eat(b':')?;
        let minutes = self.digits(2).filter(|m| *m < 60)?;
        let mut seconds = 0;
        let mut micros = 0;
        if self.eat(b':').is_some() {
            seconds = self.digits(2).filter(|s| *s < 60)?;
            if let [b'.', next, ..] = self.0
                && next.is_ascii_digit()
            {
                self.0 = &self.0[1..];
                let mut scale = 100_000;
                while let [digit @ b'0'..=b'9', rest @ ..] = self.0 {
                    micros += scale * u32::from(digit - b'0');
                    scale /= 10;
                    self.0 = rest;
                }
            }
        }
        Some((hours * 3600 + minutes * 60 + seconds, micros))
    }

    /// The rest: spaces, then nothing, `Z` or `±HH:MM` (hours up to 14, as SQLite takes), then
    /// spaces; the offset east of UTC in seconds.
    fn zone(&mut self) -> Option<i32> {
        self.skip_spaces();
        let offset = match self.0.first() {
            None => return Some(0),
            Some(b'Z' | b'z') => {
                self.0 = &self.0[1..];
                0
            }
            Some(&sign @ (b'+' | b'-')) => {
                self.0 = &self.0[1..];
                let hours = self.digits(2).filter(|h| *h <= 14)?;
                self.eat(b':')?;
                let minutes = self.digits(2).filter(|m| *m < 60)?;
                let offset = i32::try_from(hours * 3600 + minutes * 60).ok()?;
                if sign == b'-' { -offset } else { offset }
            }
            Some(_) => return None,
        };
        self.skip_spaces();
        self.0.is_empty().then_some(offset)
    }

    fn skip_spaces(&mut self) {
        while let [b' ', rest @ ..] = self.0 {
            self.0 = rest;
        }
    }
}

super::backend_fns!(SqliteConnection);

/// Runs a query: a whole result (`Sink::Collect`) is read through SQLite's C API when the fast
/// path takes it, everything else through sqlx. With a `deadline`, SQLite interrupts the
/// statement once it has passed (see [`Deadline`]); the connection stays usable. On the sqlx
/// path a dropped future interrupts the statement too (the C-API path runs on the caller's
/// thread and cannot be dropped half-way). Also says whether the C-API path served the query.
pub(crate) async fn fetch_any(
    conn: &mut SqliteConnection,
    sql: &str,
    values: &[connections_core::Param],
    batch_size: usize,
    sink: &mut Sink<'_>,
    deadline: Option<TimeLimit>,
) -> Result<(connections_core::arrow::datatypes::SchemaRef, bool)> {
    if let Sink::Collect(batches) = sink
        && let Ok((schema, found)) = super::sqlite_fast::collect(conn, sql, values, batch_size, deadline).await?
    {
        batches.extend(found);
        return Ok((schema, true));
    }
    // armed even without a deadline: a caller that goes away then interrupts the statement
    let at = deadline.unwrap_or_else(unbounded);
    let watch = Deadline::arm(&mut conn.lock_handle().await.map_err(classify)?, at)?;
    let result = fetch(conn, sql, values, batch_size, sink).await;
    watch.disarm(&mut conn.lock_handle().await.map_err(classify)?);
    Ok((watch.explain(result)?, false))
}

/// Runs a statement (see `execute`) with SQLite interrupting it once `deadline` has passed, or
/// once its caller went away.
pub(crate) async fn execute_within(
    conn: &mut SqliteConnection,
    sql: &str,
    values: &[connections_core::Param],
    deadline: Option<TimeLimit>,
) -> Result<u64> {
    let at = deadline.unwrap_or_else(unbounded);
    let watch = Deadline::arm(&mut conn.lock_handle().await.map_err(classify)?, at)?;
    let result = execute(conn, sql, values).await;
    watch.disarm(&mut conn.lock_handle().await.map_err(classify)?);
    watch.explain(result)
}

/// When a statement must end, and the limit that set it (`query_timeout`, for the message).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeLimit {
    /// The moment past which the statement is interrupted.
    pub(crate) at: Instant,
    /// The configured limit.
    pub(crate) limit: Duration,
}

impl TimeLimit {
    /// A limit of `limit` from now.
    pub(crate) fn from_now(limit: Duration) -> Self {
        Self::from(Instant::now(), limit)
    }

    /// A limit of `limit` from `start`.
    pub(crate) fn from(start: Instant, limit: Duration) -> Self {
        let at = start.checked_add(limit).unwrap_or(start);
        Self { at, limit }
    }
}

/// A deadline no statement reaches (a year from now): a [`Deadline`] armed with it only serves
/// to interrupt a statement whose caller went away.
fn unbounded() -> TimeLimit {
    TimeLimit::from_now(Duration::from_secs(365 * 24 * 3600))
}

/// How many SQLite virtual-machine steps run between two looks at a deadline: a look is one
/// clock read, a step some nanoseconds, so the cost is below a percent and the statement stops
/// within a millisecond or so of its deadline.
const DEADLINE_CHECK_STEPS: i32 = 1000;

/// A deadline watched by SQLite's progress handler while a statement runs on a connection: once
/// it has passed, the handler interrupts the statement (`SQLITE_INTERRUPT`, which rolls the
/// statement back and leaves the connection usable) and [`explain`](Self::explain) turns the
/// error into one that says the query timed out.
///
/// The handler lives on the connection (sqlx's, reused by the pool): [`disarm`](Self::disarm)
/// removes it after the statement. Should that not happen (a dropped future: a timeout of the
/// caller's, or a caller that went away), dropping the `Deadline` makes the handler interrupt the
/// running statement once and then let everything run.
pub(crate) struct Deadline {
    /// How long the query had, for the message.
    budget: Duration,
    state: Arc<DeadlineState>,
}

/// What the handler and the `Deadline` share.
#[derive(Default)]
struct DeadlineState {
    /// Cleared when the `Deadline` is gone: the handler then lets everything run.
    armed: AtomicBool,
    /// Set when the handler interrupted the statement.
    expired: AtomicBool,
    /// Set when the `Deadline` was dropped with the statement still running (its caller went
    /// away): the handler interrupts it at its next look, once.
    cancelled: AtomicBool,
}

impl Deadline {
    /// Installs the progress handler; the timeout error at once if the limit has already passed.
    pub(crate) fn arm(handle: &mut LockedSqliteHandle<'_>, limit: TimeLimit) -> Result<Self> {
        let now = Instant::now();
        let at = limit.at;
        let deadline = Self { budget: limit.limit, state: Arc::default() };
        if at <= now {
            return Err(deadline.timed_out());
        }
        deadline.state.armed.store(true, Ordering::Relaxed);
        let state = Arc::clone(&deadline.state);
        handle.set_progress_handler(DEADLINE_CHECK_STEPS, move || {
            if state.cancelled.swap(false, Ordering::Relaxed) {
                state.armed.store(false, Ordering::Relaxed);
                return false; // interrupt: nobody waits for this statement any more
            }
            if !state.armed.load(Ordering::Relaxed) || Instant::now() < at {
                return true; // go on
            }
            state.expired.store(true, Ordering::Relaxed);
            false // interrupt
        });
        Ok(deadline)
    }

    /// Removes the progress handler from the connection.
    pub(crate) fn disarm(&self, handle: &mut LockedSqliteHandle<'_>) {
        handle.remove_progress_handler();
        self.state.armed.store(false, Ordering::Relaxed);
    }

    /// The statement's outcome, its error replaced by the timeout error if the deadline stopped
    /// it.
    pub(crate) fn explain<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(_) if self.state.expired.load(Ordering::Relaxed) => Err(self.timed_out()),
            other => other,
        }
    }

    fn timed_out(&self) -> Error {
        Error::statement(crate::error::TimedOut { what: "the statement", option: "query_timeout", after: self.budget })
    }
}

impl Drop for Deadline {
    /// Still armed means the statement's future was dropped before [`disarm`](Self::disarm):
    /// the statement is interrupted at the handler's next look (sqlx's worker would otherwise
    /// run it to its end). Its connection is then closed (the pool's `Checkout`), or in a
    /// session, whose next statement could in a narrow race take that one interrupt instead,
    /// rolled back.
    fn drop(&mut self) {
        if self.state.armed.swap(false, Ordering::Relaxed) {
            self.state.cancelled.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;
    use sqlx::Connection as _;

    /// A query that would count for many minutes.
    pub(crate) const FOREVER: &str = "with recursive c(x) as (select 1 union all select x + 1 from c where x < 1000000000) select count(*) as n from c";

    #[test]
    fn datetime_text_is_read_as_sqlite_reads_it() {
        let at = |text: &str| timestamp_of_text(text.as_bytes());
        let noon = at("2024-01-01 12:00:00").unwrap();
        assert_eq!(at("2024-01-01T17:00:00+05:00"), Some(noon));
        assert_eq!(at("2024-01-01 12:00Z"), Some(noon));
        assert_eq!(at("2024-01-01 12:00:00 z "), Some(noon));
        assert_eq!(at("2024-01-01 10:30:00.000000999-01:30"), Some(noon));
        assert_eq!(at("2024-01-01 12:00:00.5").unwrap() - noon, 500_000);
        assert_eq!(at("0000-01-01"), Some(MIN_MICROS));
        for bad in ["2024-01-01 12:00:00.", "2024-01-01 12", "2024-01-01T", "2024-01-01 12:00:00+5:00", "２024-01-01"]
        {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert_eq!(date_of_text(b"1970-01-02"), Some(1));
        assert_eq!(time_of_text(b"23:59:59.999999"), Some(86_399_999_999));
        assert_eq!(time_of_text(b"12:00-00:00"), Some(43_200_000_000));
        assert_eq!(time_of_text(b"24:00"), None);
    }

    #[test]
    fn numbers_are_unix_seconds_or_julian_days() {
        assert_eq!(timestamp_of_unix_seconds(-1), Some(-1_000_000));
        assert_eq!(timestamp_of_unix_seconds(253_402_300_800), None);
        assert_eq!(timestamp_of_julian_day(2_440_587.5), Some(0));
        assert_eq!(timestamp_of_julian_day(2_440_588.0), Some(43_200_000_000));
        assert_eq!(timestamp_of_julian_day(f64::NAN), None);
        assert_eq!(timestamp_of_julian_day(-0.5), None);
    }

    /// The sqlx row path (a stream's sink) stops at its deadline; the connection then runs the
    /// next statements: the handler is gone, so one that runs many check periods after the old
    /// deadline is not interrupted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadline_stops_the_row_path_and_the_connection_stays_usable() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(2);
        let started = Instant::now();
        let deadline = Some(TimeLimit::from(started, Duration::from_millis(300)));
        let err = fetch_any(&mut conn, FOREVER, &[], 1024, &mut Sink::Channel(&tx), deadline).await.unwrap_err();
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(3), "stopped after {waited:?}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.starts_with("the statement did not finish within `query_timeout` (300ms)"), "{cause}");
        assert_eq!(err.kind(), connections_core::ErrorKind::Statement);
        tokio::time::sleep(Duration::from_millis(100)).await; // the old deadline is long gone
        let slow = "with recursive c(x) as (select 1 union all select x + 1 from c where x < 300000) select count(*) as n from c";
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        fetch_any(&mut conn, slow, &[], 1024, &mut Sink::Channel(&tx), None).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().unwrap().num_rows(), 1);
        // an already passed deadline: the timeout error without running anything
        let err = fetch_any(
            &mut conn,
            "select 1",
            &[],
            1024,
            &mut Sink::Channel(&tx),
            Some(TimeLimit::from(started, Duration::ZERO)),
        )
        .await
        .unwrap_err();
        assert!(std::error::Error::source(&err).unwrap().to_string().contains("query_timeout"), "{err:?}");
    }
}
