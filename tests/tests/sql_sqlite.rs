//! Type `sql` on SQLite (embedded: always runs).

#![allow(clippy::unwrap_used, clippy::float_cmp)] // test code: exact values are expected

use std::sync::Arc;
use std::time::Duration;

use connections::arrow::array::{
    Array, BinaryArray, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use connections::arrow::datatypes::{DataType, TimeUnit};
use connections::sql::SqlConnection;
use connections::{BaseConnection as _, ErrorKind, QueryCache, SecretsStore};
use connections_tests::Project;

/// A project with `[connections.<name>]` pointing at a SQLite file in it.
fn sqlite_project(name: &str) -> (Project, SecretsStore) {
    let p = Project::new();
    let db = p.project().join("db.sqlite");
    p.write(p.project_secrets(), format!("[connections.{name}]\nurl = \"sqlite:///{}\"\n", db.display()));
    let store = p.store();
    (p, store)
}

async fn open(name: &str, store: &SecretsStore) -> Arc<SqlConnection> {
    connections::connection(name)
        .with_type("sql")
        .secrets_store(store.clone())
        .query_cache(QueryCache::new(64 << 20))
        .open_as::<SqlConnection>()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_pets_example_end_to_end() {
    let (_p, store) = sqlite_project("pets_db");
    // found by name and `url`, without naming the Rust type
    let conn = connections::connection("pets_db").with_type("sql").secrets_store(store.clone()).open().await.unwrap();
    assert_eq!(conn.type_name(), "sql");
    let sql = conn.downcast::<SqlConnection>().unwrap();
    let mut s = sql.session().await.unwrap();
    s.execute("CREATE TABLE IF NOT EXISTS pet_owners (person TEXT, pet TEXT)").await.unwrap();
    for (owner, pet) in [("jerry", "fish"), ("barbara", "cat"), ("alex", "puppy")] {
        s.execute_with("INSERT INTO pet_owners (person, pet) VALUES (:owner, :pet)", [("owner", owner), ("pet", pet)])
            .await
            .unwrap();
    }
    s.commit().await.unwrap();
    let df = conn.query("select * from pet_owners order by person").await.unwrap();
    assert_eq!(df.num_rows(), 3);
    assert_eq!(df.column_names(), ["person", "pet"]);
    let shown = df.to_string();
    assert!(shown.contains("| barbara | cat   |"), "{shown}");
}

#[tokio::test]
async fn sql_is_implied_by_the_name_and_parts_work() {
    let p = Project::new();
    p.write(
        p.project_secrets(),
        format!(
            "[connections.sql]\ndialect = 'sqlite'\nusername = ''\nhost = ''\ndatabase = '{}'\n",
            p.project().join("parts.db").display()
        ),
    );
    let conn = connections::connection("sql").secrets_store(p.store()).open().await.unwrap();
    assert_eq!(conn.type_name(), "sql");
    assert_eq!(conn.query("select 1 as one").await.unwrap().num_rows(), 1);
}

#[tokio::test]
async fn in_memory_data_lives_across_session_and_query_and_dies_with_reset() {
    let p = Project::new();
    p.write(p.project_secrets(), "[connections.mem]\nurl = 'sqlite://'\n");
    let conn = open("mem", &p.store()).await;
    let mut s = conn.session().await.unwrap();
    s.execute("create table t (x integer)").await.unwrap();
    s.execute("insert into t values (1), (2)").await.unwrap();
    s.commit().await.unwrap();
    assert_eq!(conn.query("select * from t").await.unwrap().num_rows(), 2);
    assert_eq!(conn.execute("insert into t values (3)").await.unwrap(), 1);
    assert_eq!(conn.query("select count(*) as n from t").await.unwrap().num_rows(), 1);
    conn.core().reset();
    let err = conn.query("select * from t where x > 0").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement, "{err:?}");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("no such table"), "{cause}");
}

#[tokio::test]
async fn sqlite_types_to_arrow() {
    let (_p, store) = sqlite_project("types");
    let conn = open("types", &store).await;
    conn.execute(
        "create table t (i INTEGER, r REAL, s TEXT, b BLOB, flag BOOLEAN, d DATE, tm TIME, ts DATETIME, n NUMERIC, v VARCHAR(10))",
    )
    .await
    .unwrap();
    conn.execute(
        "insert into t values (1, 1.5, 'one', x'0102', 1, '2024-02-29', '13:45:30.25', '2024-02-29 13:45:30', 12, 'v'),
                              (null, null, null, null, null, null, null, null, null, null)",
    )
    .await
    .unwrap();
    let df = conn.query("select * from t").await.unwrap();
    let types: Vec<DataType> = df.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(
        types,
        [
            DataType::Int64,
            DataType::Float64,
            DataType::Utf8,
            DataType::Binary,
            DataType::Boolean,
            DataType::Date32,
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Int64, // NUMERIC: the first value decides
            DataType::Utf8,
        ]
    );
    let batch = df.to_record_batch().unwrap();
    let col = |i: usize| batch.column(i).clone();
    assert_eq!(col(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 1);
    assert_eq!(col(1).as_any().downcast_ref::<Float64Array>().unwrap().value(0), 1.5);
    assert_eq!(col(2).as_any().downcast_ref::<StringArray>().unwrap().value(0), "one");
    assert_eq!(col(3).as_any().downcast_ref::<BinaryArray>().unwrap().value(0), [1, 2]);
    assert!(col(4).as_any().downcast_ref::<BooleanArray>().unwrap().value(0));
    assert_eq!(
        col(5).as_any().downcast_ref::<Date32Array>().unwrap().value_as_date(0).unwrap().to_string(),
        "2024-02-29"
    );
    assert_eq!(col(6).as_any().downcast_ref::<Time64MicrosecondArray>().unwrap().value(0), 49_530_250_000);
    let ts = col(7).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap().value_as_datetime(0).unwrap();
    assert_eq!(ts.to_string(), "2024-02-29 13:45:30");
    for i in 0..10 {
        assert!(col(i).is_null(1), "column {i} row 1 is NULL");
    }
}

#[tokio::test]
async fn sqlite_dynamic_typing_rule() {
    let (_p, store) = sqlite_project("dyn");
    let conn = open("dyn", &store).await;
    // expressions: the first non-NULL value decides; leading NULLs are kept
    let df = conn.query("select null as a, 1 as b union all select 2, 3 union all select 3, 4").await.unwrap();
    let types: Vec<DataType> = df.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(types, [DataType::Int64, DataType::Int64]);
    // integers then a real: the column becomes Float64 (`coalesce(price, 0)`)
    let df = conn.query("select 1 as b union all select 2.5").await.unwrap();
    assert_eq!(df.schema().field(0).data_type(), &DataType::Float64);
    assert_eq!(df.to_csv_string().unwrap(), "b\n1.0\n2.5\n");
    // text in a numeric column: a clear error, no silent loss
    let err = conn.query("select 1 as b union all select 'two'").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement);
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("column `b`, row 1: a TEXT value does not fit"), "{cause}");
    // real first, then integers: widened losslessly
    let df = conn.query("select 2.5 as x union all select 1").await.unwrap();
    assert_eq!(df.schema().field(0).data_type(), &DataType::Float64);
    // a column of only NULLs is text
    let df = conn.query("select null as empty_col").await.unwrap();
    assert_eq!(df.schema().field(0).data_type(), &DataType::Utf8);
    // declared TEXT takes numbers as their text
    conn.execute("create table t (s TEXT)").await.unwrap();
    conn.execute("insert into t values ('a'), (cast(7 as integer))").await.unwrap();
    let df = conn.query("select s from t").await.unwrap();
    assert_eq!(df.num_rows(), 2);
}

#[tokio::test]
async fn an_empty_result_keeps_its_schema() {
    let (_p, store) = sqlite_project("empty");
    let conn = open("empty", &store).await;
    conn.execute("create table t (id INTEGER, name TEXT, at DATETIME)").await.unwrap();
    let df = conn.query("select * from t where id > 100").await.unwrap();
    assert_eq!(df.num_rows(), 0);
    assert_eq!(df.column_names(), ["id", "name", "at"]);
    assert_eq!(df.schema().field(2).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, None));
}

#[tokio::test]
async fn parameters_are_data_never_sql() {
    let (_p, store) = sqlite_project("params");
    let conn = open("params", &store).await;
    conn.execute("create table pets (name TEXT, owner TEXT)").await.unwrap();
    let evil = "Jerry'; DROP TABLE pets; --";
    conn.execute_with("insert into pets values (:name, :owner)", [("name", "Tom"), ("owner", evil)]).await.unwrap();
    let df = conn.query("select name from pets where owner = :owner").param("owner", evil).await.unwrap();
    assert_eq!(df.num_rows(), 1, "the value came back as data");
    assert_eq!(conn.query("select count(*) as n from pets").await.unwrap().num_rows(), 1, "the table is still there");
    // a missing or unused parameter names it
    let err = conn.query("select * from pets where owner = :owner").await.unwrap_err();
    assert!(err.to_string().contains("owner"), "{err}");
    let err = conn.query("select * from pets").param("owner", "x").await.unwrap_err();
    assert!(err.to_string().contains("owner"), "{err}");
}

#[tokio::test]
async fn bad_sql_fails_at_once_with_the_database_message() {
    let (_p, store) = sqlite_project("bad");
    let conn = connections::connection("bad")
        .with_type("sql")
        .secrets_store(store)
        .retry(connections::RetryPolicy::new(3, Duration::from_secs(5)).unwrap())
        .open_as::<SqlConnection>()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = conn.query("selec 1").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "a statement error is not retried");
    assert_eq!(err.kind(), ErrorKind::Statement);
    assert_eq!(err.to_string(), "query on connection \"bad\" failed");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("syntax error"), "{cause}");
    assert_eq!(conn.core().reset_count(), 0, "and does not reset the connection");
}

#[tokio::test]
async fn results_are_cached_and_ttl_expires_them() {
    let (_p, store) = sqlite_project("cache");
    let conn = open("cache", &store).await;
    conn.execute("create table t (x integer)").await.unwrap();
    conn.execute("insert into t values (1)").await.unwrap();
    let first = conn.query("select * from t").await.unwrap();
    conn.execute("insert into t values (2)").await.unwrap();
    assert_eq!(conn.query("select * from t").await.unwrap().num_rows(), first.num_rows(), "cached: same answer");
    let ttl = Duration::from_millis(100);
    assert_eq!(conn.query("select * from t").ttl(ttl).await.unwrap().num_rows(), 2, "another ttl, another entry");
    conn.execute("insert into t values (3)").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(conn.query("select * from t").ttl(ttl).await.unwrap().num_rows(), 3, "expired");
}

#[tokio::test]
async fn streaming_yields_batches_of_the_requested_size() {
    use futures_util::StreamExt as _;
    let (_p, store) = sqlite_project("stream");
    let conn = open("stream", &store).await;
    conn.execute("create table t (x integer)").await.unwrap();
    conn.execute(
        "with recursive c(x) as (select 1 union all select x + 1 from c where x < 2500) insert into t select x from c",
    )
    .await
    .unwrap();
    let mut stream = conn.query_stream("select x from t order by x", 1000).await.unwrap();
    let mut sizes = Vec::new();
    while let Some(batch) = stream.next().await {
        sizes.push(batch.unwrap().num_rows());
    }
    assert_eq!(sizes, [1000, 1000, 500]);
}

#[tokio::test]
async fn sessions_roll_back_unless_committed() {
    let (_p, store) = sqlite_project("tx");
    let conn = open("tx", &store).await;
    conn.execute("create table t (x integer)").await.unwrap();
    {
        let mut s = conn.session().await.unwrap();
        s.execute("insert into t values (1)").await.unwrap();
        assert_eq!(s.query("select * from t").await.unwrap().num_rows(), 1, "visible inside");
    } // dropped: rolled back
    let mut s = conn.session().await.unwrap();
    s.execute("insert into t values (2)").await.unwrap();
    s.rollback().await.unwrap();
    assert_eq!(conn.query("select * from t").await.unwrap().num_rows(), 0);
}

#[tokio::test]
async fn configuration_errors_are_clear() {
    let p = Project::new();
    p.write(
        p.project_secrets(),
        "[connections.mssql]\nurl = 'mssql+pyodbc://u:hunter2@host/db'\n[connections.parts]\ntype = 'sql'\npassword = 'hunter2'\n",
    );
    let store = p.store();
    let err = connections::connection("mssql").with_type("sql").secrets_store(store.clone()).open().await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("mssql") && shown.contains("postgresql"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let err = connections::connection("parts").secrets_store(store).open().await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("dialect") && shown.contains("username") && shown.contains("host"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

/// `query` reads through SQLite's C API, `query_stream` through sqlx: both must give the same
/// Arrow data for the same rows.
#[tokio::test]
async fn the_fast_path_and_the_sqlx_path_agree() {
    use futures_util::TryStreamExt as _;
    let (_p, store) = sqlite_project("agree");
    let conn = open("agree", &store).await;
    conn.execute(
        "create table t (i INTEGER, r REAL, s TEXT, b BLOB, flag BOOLEAN, d DATE, tm TIME, ts DATETIME, n NUMERIC, e)",
    )
    .await
    .unwrap();
    conn.execute(
        "insert into t values (1, 1.5, 'one', x'0102', 1, '2024-02-29', '13:45:30.25', '2024-02-29 13:45:30', 12, null),
                              (null, 2, 7, 'text', 0, null, '01:02', '2024-02-29T01:02:03.5', 2.5, 'x'),
                              (3, null, null, null, null, '1999-12-31', null, null, null, 4)",
    )
    .await
    .unwrap();
    for sql in ["select * from t", "select i + 1 as j, coalesce(r, 0) as r0, upper(s) as u from t"] {
        let fast = conn.query(sql).await.unwrap();
        let stream = conn.query_stream(sql, 2).await.unwrap();
        let batches: Vec<_> = stream.try_collect().await.unwrap();
        let slow = connections::DataFrame::new(batches[0].schema(), batches).unwrap();
        assert_eq!(fast.schema(), slow.schema(), "{sql}");
        assert_eq!(fast.to_csv_string().unwrap(), slow.to_csv_string().unwrap(), "{sql}");
    }
}

/// A synchronous program: the blocking facade opens and queries (the SQLite fast path runs on
/// the facade's runtime).
#[test]
fn the_blocking_facade_queries_sqlite() {
    let (_p, store) = sqlite_project("blocking");
    let conn = connections::blocking::connection("blocking").with_type("sql").secrets_store(store).open().unwrap();
    let sql = conn.as_async().downcast::<SqlConnection>().unwrap();
    connections::blocking::block_on(sql.execute("create table t (x integer)")).unwrap();
    connections::blocking::block_on(sql.execute("insert into t values (1), (2)")).unwrap();
    assert_eq!(conn.query("select * from t").unwrap().num_rows(), 2);
    let df = conn.query_with("select * from t where x = :x", [("x", 2)], None).unwrap();
    assert_eq!(df.num_rows(), 1);
}

/// What one read path gave for a query: its schema and CSV text, or the error's cause.
type Outcome = Result<(connections::arrow::datatypes::SchemaRef, String), String>;

/// `sql` on every read path: `query` (SQLite's C API), a session's `query`, and `query_stream` in
/// batches of `batch` rows (sqlx's rows; batches made before a column's type changed are cast to
/// the final schema, as `query` does).
async fn on_every_path(conn: &SqlConnection, sql: &str, batch: usize) -> [Outcome; 3] {
    use futures_util::StreamExt as _;
    let cause =
        |e: connections::Error| std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
    let shown = |df: connections::DataFrame| (Arc::clone(df.schema()), df.to_csv_string().unwrap());
    let fast = conn.query(sql).await.map(shown).map_err(cause);
    let session = async { conn.session().await?.query(sql).await }.await.map(shown).map_err(cause);
    let streamed = async {
        let mut stream = conn.query_stream(sql, batch).await?;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            batches.push(batch?);
        }
        Ok(batches)
    }
    .await
    .map_err(cause)
    .map(|batches| {
        let schema = batches.last().expect("a non-empty result").schema();
        let batches = batches
            .into_iter()
            .map(|b| {
                let columns = b
                    .columns()
                    .iter()
                    .zip(schema.fields())
                    .map(|(c, f)| connections::arrow::compute::cast(c, f.data_type()).unwrap())
                    .collect();
                connections::arrow::record_batch::RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
            })
            .collect();
        shown(connections::DataFrame::new(schema, batches).unwrap())
    });
    [fast, session, streamed]
}

/// The one outcome every path gave for `sql` (in batches of 1, 2 and 3 rows for the stream).
async fn agreed(conn: &SqlConnection, sql: &str) -> Outcome {
    let [fast, session, streamed] = on_every_path(conn, sql, 2).await;
    assert_eq!(session, fast, "session and query differ: {sql}");
    assert_eq!(streamed, fast, "query_stream and query differ: {sql}");
    for batch in [1, 3] {
        let [_, _, streamed] = on_every_path(conn, sql, batch).await;
        assert_eq!(streamed, fast, "query_stream({batch}) and query differ: {sql}");
    }
    fast
}

/// The error's cause every path gave for `sql`.
async fn agreed_error(conn: &SqlConnection, sql: &str) -> String {
    match agreed(conn, sql).await {
        Ok((_, csv)) => panic!("{sql}: expected an error, got\n{csv}"),
        Err(cause) => cause,
    }
}

/// A `BOOLEAN` column is 0 (false) or 1 (true); any other integer, and any real, text or blob,
/// is an error naming the column and the row, the same on every path (and never shows the value).
#[tokio::test]
async fn sqlite_booleans_are_zero_or_one_on_every_path() {
    let (_p, store) = sqlite_project("bools");
    let conn = open("bools", &store).await;
    conn.execute("create table t (id INTEGER, b BOOLEAN, c BOOL)").await.unwrap();
    conn.execute(
        "insert into t values (0, 0, 0), (1, 1, 1), (2, null, null), (3, 1.0, 1.0),
                              (10, 2, 2), (11, 5, 5), (12, -1, -1),
                              (20, 1.5, 1.5), (21, 'true', 'true'), (22, x'01', x'01')",
    )
    .await
    .unwrap();
    // SQLite's own view: 1.0 is stored as the integer 1 (the column's NUMERIC affinity)
    let df = conn.query("select typeof(b) as t from t where id in (3, 10, 20, 21, 22) order by id").await.unwrap();
    assert_eq!(df.to_csv_string().unwrap(), "t\ninteger\ninteger\nreal\ntext\nblob\n");
    let (schema, csv) = agreed(&conn, "select b, c from t where id < 10 order by id").await.unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Boolean);
    assert_eq!(schema.field(1).data_type(), &DataType::Boolean);
    assert_eq!(csv, "b,c\nfalse,false\ntrue,true\n,\ntrue,true\n");
    for id in [10, 11, 12] {
        let cause = agreed_error(&conn, &format!("select id, b from t where id < 3 or id = {id} order by id")).await;
        assert!(cause.starts_with("column `b`, row 3: the value is not a boolean (only 0 and 1 are)"), "{cause}");
        assert!(!cause.contains('2') && !cause.contains('5'), "{cause}");
    }
    for (id, class) in [(20, "REAL"), (21, "TEXT"), (22, "BLOB")] {
        let cause = agreed_error(&conn, &format!("select c from t where id < 3 or id = {id} order by id")).await;
        assert!(cause.starts_with(&format!("column `c`, row 3: a {class} value does not fit")), "{cause}");
    }
}

/// The values of a Timestamp column, as SQLite's `strftime('%Y-%m-%d %H:%M:%f', ...)` shows them.
fn timestamps(batch: &connections::arrow::record_batch::RecordBatch, index: usize) -> Vec<Option<String>> {
    let array = batch.column(index).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
    (0..array.len())
        .map(|i| {
            array.is_valid(i).then(|| array.value_as_datetime(i).unwrap().format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        })
        .collect()
}

/// `DATETIME` and `TIMESTAMP` columns: text with a UTC offset is converted to UTC as SQLite's
/// `datetime()` converts it; an integer is Unix seconds (`datetime(x, 'unixepoch')`), a real a
/// Julian day number (`datetime(x)`), to the millisecond as SQLite reads it. Every path agrees,
/// and SQLite's own rendering is the reference.
#[tokio::test]
async fn sqlite_datetimes_mean_what_sqlite_says_on_every_path() {
    let (_p, store) = sqlite_project("datetimes");
    let conn = open("datetimes", &store).await;
    conn.execute("create table t (id INTEGER, ts DATETIME, tp TIMESTAMP)").await.unwrap();
    let good = [
        "'2024-01-01T12:00:00+05:00'",
        "'2024-01-01 12:00:00Z'",
        "'2024-01-01 12:00:00.250-03:30'",
        "'2024-01-01T23:30:00-01:00'",
        "'2024-01-01 00:30+01:00'",
        "'2024-01-01 12:00:00 +05:00'",
        "'2024-02-29 13:45'",
        "'2024-02-29'",
        "'2024-02-29T13:45:30.123'",
        "'1969-12-31 23:59:59.5'",
        "1700000000",
        "-86401",
        "2460000.5",
        "2460000.25",
        "2440587.4999",
        "null",
    ];
    for (id, value) in good.iter().enumerate() {
        conn.execute(&format!("insert into t values ({id}, {value}, {value})")).await.unwrap();
    }
    let sql = "select id, ts, tp, case typeof(ts) when 'integer' then strftime('%Y-%m-%d %H:%M:%f', ts, 'unixepoch')
               else strftime('%Y-%m-%d %H:%M:%f', ts) end as sqlite from t order by id";
    let (schema, _) = agreed(&conn, sql).await.unwrap();
    assert_eq!(schema.field(1).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(schema.field(2).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, None));
    let batch = conn.query(sql).await.unwrap().to_record_batch().unwrap();
    let sqlite = batch.column(3).as_any().downcast_ref::<StringArray>().unwrap();
    let sqlite: Vec<Option<String>> =
        (0..sqlite.len()).map(|i| sqlite.is_valid(i).then(|| sqlite.value(i).into())).collect();
    assert_eq!(timestamps(&batch, 1), sqlite, "DATETIME");
    assert_eq!(timestamps(&batch, 2), sqlite, "TIMESTAMP");
    assert_eq!(sqlite[0].as_deref(), Some("2024-01-01 07:00:00.000"));
    assert_eq!(sqlite[4].as_deref(), Some("2023-12-31 23:30:00.000"));

    // what is not a date and time: an error naming column and row, never the value. SQLite has
    // no date and time for these either, except three it quietly rewrites (`true`: Feb 30 as
    // Mar 1, 24:00 as the next day's midnight, a bare time as one on 2000-01-01), which change
    // what the value says and are errors here too
    let bad = [
        ("'yesterday'", false),
        ("'2024-02-30 00:00:00'", true),
        ("'2024-01-01 24:00:00'", true),
        ("'2024-01-01 23:59:60'", false),
        ("'2024-01-01 12:00:00+15:00'", false),
        ("'2024-01-01+05:00'", false),
        ("'12:00:00'", true),
        ("'2024-1-1'", false),
        ("''", false),
        ("1e300", false),
        ("-1.5", false), // a real stays a real (`-1.0` would be stored as the integer -1)
        ("253402300800", false),
    ];
    for (n, (value, sqlite_rewrites)) in bad.into_iter().enumerate() {
        let id = 100 + n;
        conn.execute(&format!("insert into t values ({id}, {value}, {value})")).await.unwrap();
        let sql = format!("select id, tp from t where id < 3 or id = {id} order by id");
        let cause = agreed_error(&conn, &sql).await;
        assert!(cause.starts_with("column `tp`, row 3: the value is not a date and time"), "{value}: {cause}");
        let shown = value.trim_matches('\'');
        assert!(shown.is_empty() || !cause.contains(shown), "{value}: {cause}");
        let sqlite = conn
            .query(format!(
                "select case typeof(ts) when 'integer' then strftime('%f', ts, 'unixepoch') else strftime('%f', ts) end
                 is null as s from t where id = {id}"
            ))
            .await
            .unwrap();
        let expected = if sqlite_rewrites { "s\n0\n" } else { "s\n1\n" };
        assert_eq!(sqlite.to_csv_string().unwrap(), expected, "{value}: SQLite's own reading");
    }
    conn.execute("insert into t values (200, x'00', x'00')").await.unwrap();
    let cause = agreed_error(&conn, "select ts from t where id < 3 or id = 200 order by id").await;
    assert!(cause.starts_with("column `ts`, row 3: a BLOB value does not fit"), "{cause}");
}

/// `DATE` columns take 'YYYY-MM-DD', `TIME` columns a time of day in [00:00, 24:00) ('HH:MM',
/// 'HH:MM:SS', 'HH:MM:SS.SSS', optionally with `Z`); anything else, '24:00:00' and numbers
/// included, is an error naming column and row, the same on every path.
#[tokio::test]
async fn sqlite_dates_and_times_agree_on_every_path() {
    let (_p, store) = sqlite_project("dates");
    let conn = open("dates", &store).await;
    conn.execute("create table t (id INTEGER, d DATE, tm TIME)").await.unwrap();
    conn.execute(
        "insert into t values (0, '2024-02-29', '13:45:30.25'), (1, '0001-01-01', '00:00'), (2, '9999-12-31', '23:59:59.999999'),
                              (3, null, '12:00:00Z'), (4, '1969-12-31', '12:00:00+00:00')",
    )
    .await
    .unwrap();
    let sql = "select id, d, tm, date(d) as sd, strftime('%H:%M:%f', tm) as st from t order by id";
    let (schema, _) = agreed(&conn, sql).await.unwrap();
    assert_eq!(schema.field(1).data_type(), &DataType::Date32);
    assert_eq!(schema.field(2).data_type(), &DataType::Time64(TimeUnit::Microsecond));
    let batch = conn.query(sql).await.unwrap().to_record_batch().unwrap();
    let dates = batch.column(1).as_any().downcast_ref::<Date32Array>().unwrap();
    let times = batch.column(2).as_any().downcast_ref::<Time64MicrosecondArray>().unwrap();
    let sd = batch.column(3).as_any().downcast_ref::<StringArray>().unwrap();
    let st = batch.column(4).as_any().downcast_ref::<StringArray>().unwrap();
    for row in 0..batch.num_rows() {
        let date = dates.is_valid(row).then(|| dates.value_as_date(row).unwrap().format("%Y-%m-%d").to_string());
        assert_eq!(date.as_deref(), sd.is_valid(row).then(|| sd.value(row)), "row {row}");
        let time = times.value_as_time(row).map(|t| t.format("%H:%M:%S%.3f").to_string());
        assert_eq!(time.as_deref(), Some(st.value(row)), "row {row}");
    }
    assert_eq!(times.value(2), 86_399_999_999);
    for (n, (d, tm)) in [
        ("'2024-02-30'", "'12:00'"),
        ("'2024-01-01 12:00:00'", "'12:00'"),
        ("20240101", "'12:00'"),
        ("'2024-01-01'", "'24:00:00'"),
        ("'2024-01-01'", "'23:59:60'"),
        ("'2024-01-01'", "'12:00+05:00'"),
        ("'2024-01-01'", "'noon'"),
        ("'2024-01-01'", "43200"),
        ("'2024-01-01'", "0.5"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = 100 + n;
        conn.execute(&format!("insert into t values ({id}, {d}, {tm})")).await.unwrap();
        let sql = format!("select id, d, tm from t where id < 3 or id = {id} order by id");
        let cause = agreed_error(&conn, &sql).await;
        let column = if d == "'2024-01-01'" { "tm" } else { "d" };
        assert!(cause.starts_with(&format!("column `{column}`, row 3: ")), "{d} {tm}: {cause}");
    }
}

/// A column whose type changes mid-result (integers, then a real; NULLs, then a type; text in a
/// column of numbers) gives the same data, or the same error at the same row, on every path,
/// whatever the batch boundaries.
#[tokio::test]
async fn sqlite_types_changing_mid_result_agree_across_batches() {
    let (_p, store) = sqlite_project("midway");
    let conn = open("midway", &store).await;
    conn.execute("create table t (id INTEGER, n NUMERIC, x, s TEXT, i INTEGER)").await.unwrap();
    conn.execute(
        "insert into t values (0, null, null, 'a', 1), (1, 1, null, 2, 2), (2, 2, 3, 2.5, 3), (3, 2.5, 4.5, 'h', 4.5),
                              (4, 3, 5, null, 5), (5, null, null, 'z', null), (6, 9007199254740993, 1, 'é', 7)",
    )
    .await
    .unwrap();
    let (schema, csv) = agreed(&conn, "select n, x, i, s from t where id < 6 order by id").await.unwrap();
    let types: Vec<DataType> = schema.fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(types, [DataType::Float64, DataType::Float64, DataType::Float64, DataType::Utf8]);
    assert_eq!(csv, "n,x,i,s\n,,1.0,a\n1.0,,2.0,2\n2.0,3.0,3.0,2.5\n2.5,4.5,4.5,h\n3.0,5.0,5.0,\n,,,z\n");
    // a large integer after a real: SQLite's own conversion to a real
    agreed(&conn, "select n from t where id in (3, 6) order by id").await.unwrap();
    // text in a column of numbers, at row 2, wherever the batches end
    for sql in [
        "select x from t where id in (2, 3, 0) union all select 'three'",
        "select id, case when id = 4 then 'text' else id end as v from t order by id",
    ] {
        let cause = agreed_error(&conn, sql).await;
        assert!(
            cause.contains(", row 3: a TEXT value does not fit") || cause.contains(", row 4: a TEXT value"),
            "{cause}"
        );
    }
    // text that is not UTF-8: the same error on every path
    conn.execute("insert into t values (7, null, null, cast(x'ff' as text), null)").await.unwrap();
    let cause = agreed_error(&conn, "select s from t where id in (0, 1, 7) order by id").await;
    assert!(cause.starts_with("column `s`, row 2: "), "{cause}");
}

#[tokio::test]
async fn a_stream_knows_its_schema_at_the_end_even_without_rows() {
    use futures_util::StreamExt as _;
    let conn = connections::connection("stream_schema")
        .with_type("sql")
        .option("url", "sqlite://")
        .open_as::<SqlConnection>()
        .await
        .unwrap();
    let mut empty = conn.query_stream("select 1 as n, 'x' as s where 0", 10).await.unwrap();
    assert!(empty.schema().is_none(), "not known before the stream has run");
    assert!(empty.next().await.is_none());
    let names: Vec<String> = empty.schema().unwrap().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["n", "s"]);
    let mut rows = conn.query_stream("select 1 as n union all select 2", 1).await.unwrap();
    let first = rows.next().await.unwrap().unwrap();
    assert_eq!(rows.schema(), Some(&first.schema()));
    let mut failed = conn.query_stream("select * from nowhere", 10).await.unwrap();
    assert!(failed.next().await.unwrap().is_err());
    assert!(failed.next().await.is_none());
    assert!(failed.schema().is_none(), "a failed statement has no schema");
}
