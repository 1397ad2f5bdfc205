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
