//! Type `sql` on a real MySQL/MariaDB server: `CONNECTIONS_TEST_MYSQL_URL`, skipped when unset.

#![allow(clippy::unwrap_used)] // test code

use connections::arrow::array::{Array, Decimal128Array, Int64Array, StringArray, UInt64Array};
use connections::arrow::datatypes::{DataType, TimeUnit};
use connections::{BaseConnection as _, ErrorKind};
use connections_tests::{Project, error_chain, open_sql, open_sql_with, server_url, unique_table};

/// Two server sessions in all: the bulk reader's and one sqlx connection (the bulk reader counts
/// inside `pool_size`), so a query that did not run on the pool's ran on the bulk reader's.
const ONE_CONNECTION: &str = "create_engine_kwargs = { pool_size = 2, max_overflow = 0 }";

/// The digits 0 to 9 as rows of a derived table `d`, to generate rows on MariaDB and MySQL alike.
const DIGITS: &str = "(select 0 as d union all select 1 union all select 2 union all select 3 union all
                       select 4 union all select 5 union all select 6 union all select 7 union all select 8
                       union all select 9)";

/// The `id` column's first value: a `connection_id()` (INT UNSIGNED on MariaDB, BIGINT UNSIGNED
/// on MySQL), telling which connection served the query.
fn connection_id(df: &connections::DataFrame) -> u64 {
    let id = df.column("id").unwrap().unwrap();
    let id = connections::arrow::compute::cast(&id, &DataType::UInt64).unwrap();
    id.as_any().downcast_ref::<UInt64Array>().unwrap().value(0)
}

const VAR: &str = "CONNECTIONS_TEST_MYSQL_URL";

#[tokio::test]
async fn mysql_types_to_arrow() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "my_types").await;
    let t = unique_table("my_types");
    conn.execute(&format!(
        "create table {t} (b boolean, i1 tinyint, i2 smallint, i4 int, i8 bigint, u8 bigint unsigned, f4 float,
          f8 double, n decimal(10,2), vc varchar(20), tx text, bl blob, d date, tm time, dt datetime(6), ts timestamp(6) null,
          j json)"
    ))
    .await
    .unwrap();
    conn.execute(&format!(
        "insert into {t} values (true, -1, 2, 3, 4, 18446744073709551615, 1.5, 2.25, 12345678.91, 'varchar', 'text',
          x'0102', '2024-02-29', '13:45:30', '2024-02-29 13:45:30.250000', '2024-02-29 13:45:30', '{{\"a\": 1}}'),
          (null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null)"
    ))
    .await
    .unwrap();
    let df = conn.query(format!("select * from {t}")).await.unwrap();
    conn.execute(&format!("drop table {t}")).await.unwrap();
    let types: Vec<DataType> = df.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(
        types,
        [
            DataType::Boolean,
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt64,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(38, 2),
            DataType::Utf8,
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            // MariaDB's JSON is a LONGTEXT with a binary collation (utf8mb4_bin): text, as is
            // MySQL's native JSON type
            DataType::Utf8,
        ]
    );
    let batch = df.to_record_batch().unwrap();
    assert_eq!(batch.column(5).as_any().downcast_ref::<UInt64Array>().unwrap().value(0), u64::MAX);
    assert_eq!(batch.column(8).as_any().downcast_ref::<Decimal128Array>().unwrap().value_as_string(0), "12345678.91");
    assert_eq!(batch.column(9).as_any().downcast_ref::<StringArray>().unwrap().value(0), "varchar");
    for i in 0..batch.num_columns() {
        assert!(batch.column(i).is_null(1), "column {i} row 1 is NULL");
    }
}

#[tokio::test]
async fn mysql_params_and_injection() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "my_params").await;
    let t = unique_table("my_params");
    conn.execute(&format!("create table {t} (name text, owner text)")).await.unwrap();
    let evil = "Jerry'; DROP TABLE pets; -- \\";
    conn.execute_with(&format!("insert into {t} values (:name, :owner)"), [("name", "Tom"), ("owner", evil)])
        .await
        .unwrap();
    let df = conn.query(format!("select name from {t} where owner = :owner")).param("owner", evil).await.unwrap();
    assert_eq!(df.num_rows(), 1, "the injection-looking value is data");
    let n = conn.query(format!("select count(*) as n from {t}")).await.unwrap();
    let n = n.column("n").unwrap().unwrap();
    assert_eq!(n.as_any().downcast_ref::<Int64Array>().unwrap().value(0), 1);
    conn.execute(&format!("drop table {t}")).await.unwrap();
}

#[tokio::test]
async fn mysql_bad_sql_and_a_killed_session() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_kill", ONE_CONNECTION).await;
    let err = conn.query("selec 1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement);
    // parameterless queries run on the bulk reader's connection, parameterised ones on the pool's:
    // kill both, as a server restart would
    let bulk = connection_id(&conn.query("select connection_id() as id").await.unwrap());
    let pooled = connection_id(
        &conn.query("select connection_id() as id from dual where 1 = :one").param("one", 1).await.unwrap(),
    );
    assert_ne!(bulk, pooled);
    let (_q, admin) = open_sql(&url, "my_admin").await;
    admin.execute(&format!("kill {bulk}")).await.unwrap();
    admin.execute(&format!("kill {pooled}")).await.unwrap();
    let after = conn.query("select connection_id() as id, 2 as again").await.unwrap();
    assert_eq!(after.num_rows(), 1, "the second query succeeds on a fresh connection");
    assert_ne!(connection_id(&after), bulk);
    let after = conn.query("select connection_id() as id from dual where 2 = :two").param("two", 2).await.unwrap();
    assert_ne!(connection_id(&after), pooled, "and so does a parameterised one");
}

#[tokio::test]
async fn mysql_wrong_password_fails_clearly_without_the_password() {
    let Some(url) = server_url(VAR) else { return };
    let _ = url;
    let p = Project::new();
    p.write(
        p.project_secrets(),
        "[connections.wrong]\ntype = 'sql'\nurl = 'mysql://root:pa55word-Q@127.0.0.1:3306/test'\n\
         [connections.nowhere]\ntype = 'sql'\nurl = 'mysql+pymysql://root:pa55word-Q@127.0.0.1:1/test'\n",
    );
    let store = p.store();
    for name in ["wrong", "nowhere"] {
        let err = connections::connection(name).secrets_store(store.clone()).open().await.unwrap_err();
        // a refused login is never retried (it may lock the user out); an unreachable server is
        let expected = if name == "wrong" { ErrorKind::Auth } else { ErrorKind::Connect };
        assert_eq!(err.kind(), expected, "{name}: {err:?}");
        assert_eq!(err.is_retryable(), name != "wrong", "{name}");
        let chain = format!("{} {err:?}", error_chain(&err));
        assert!(!chain.contains("pa55word-Q"), "leaked: {chain}");
        let reason = if name == "wrong" { "Access denied" } else { "Connection refused" };
        assert!(chain.contains(reason), "the server's own reason is kept: {chain}");
    }
}

/// A parameterless `select` is read by the bulk reader on a connection of its own (by `query`
/// and by `query_stream`), one with a parameter row by row through sqlx: all must give the same
/// Arrow data, on every type.
#[tokio::test]
async fn mysql_bulk_and_row_paths_agree() {
    use futures_util::TryStreamExt as _;
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_agree", ONE_CONNECTION).await;
    let t = unique_table("my_agree");
    conn.execute(&format!(
        "create table {t} (k int primary key, b boolean, i1 tinyint, u1 tinyint unsigned, i2 smallint,
          u2 smallint unsigned, i3 mediumint, u3 mediumint unsigned, i4 int, u4 int unsigned, i8 bigint,
          u8 bigint unsigned, f4 float, f8 double, n decimal(12,3), ch char(3), vc varchar(20), tx text,
          lt longtext, vb varbinary(8), bl blob, e enum('a','b'), st set('x','y'), y year, bt bit(12), d date,
          tm time(3), dt datetime, dt6 datetime(6), ts timestamp null)"
    ))
    .await
    .unwrap();
    conn.execute(&format!(
        "insert into {t}
         select i, i % 2, i % 128 - 64, i % 256, i - 1500, i * 20, i * -1000, i * 5000, i * -100000, i * 1000000,
           i * -1000000000000, cast(i as unsigned) * 6000000000000000, i / 3, i / 7, i / 8, 'abc', concat('v', i), repeat('t', i % 50),
           repeat('L', i % 300), unhex(lpad(hex(i), 4, '0')), unhex(hex(i)), if(i % 2 = 0, 'a', 'b'), 'x,y',
           1901 + i % 250, i % 4096, date_add('1969-12-31', interval i day), sec_to_time(i * 17.125),
           date_add('1970-01-01 00:00:00', interval i * 3601 second), date_add('1999-12-31 23:59:59.5', interval i * 1000001 microsecond),
           date_add('2001-02-03 04:05:06', interval i minute)
         from (select a.d * 1000 + b.d * 100 + c.d * 10 + e.d + 1 as i from {DIGITS} a, {DIGITS} b, {DIGITS} c, {DIGITS} e) s
         where i <= 3000"
    ))
    .await
    .unwrap();
    conn.execute(&format!("insert into {t} (k) values (0)")).await.unwrap();
    let sql = format!("select * from {t} order by k");
    let bulk = conn.query(sql.clone()).await.unwrap();
    let streamed: Vec<_> = conn.query_stream(&sql, 1000).await.unwrap().try_collect().await.unwrap();
    assert_eq!(streamed.len(), 4, "batches of 1000 rows");
    let streamed = connections::DataFrame::new(streamed[0].schema(), streamed).unwrap();
    let rows = conn.query(format!("select * from {t} where k >= :zero order by k")).param("zero", 0).await.unwrap();
    conn.execute(&format!("drop table {t}")).await.unwrap();
    assert_eq!(bulk.num_rows(), 3001);
    assert_eq!(bulk.schema(), rows.schema());
    assert_eq!(streamed.schema(), rows.schema());
    let csv = rows.to_csv_string().unwrap();
    assert_eq!(bulk.to_csv_string().unwrap(), csv);
    assert_eq!(streamed.to_csv_string().unwrap(), csv);

    // the parameterless queries ran on the bulk reader's one connection, the other on the pool's
    let queried = connection_id(&conn.query("select connection_id() as id").await.unwrap());
    let streamed: Vec<_> =
        conn.query_stream("select connection_id() as id", 10).await.unwrap().try_collect().await.unwrap();
    let streamed = connection_id(&connections::DataFrame::new(streamed[0].schema(), streamed).unwrap());
    let pooled = connection_id(
        &conn.query("select connection_id() as id from dual where 1 = :one").param("one", 1).await.unwrap(),
    );
    assert_eq!(queried, streamed, "one bulk connection, reused");
    assert_ne!(queried, pooled, "the parameterised query used the pool's connection");
}

/// The bulk reader logs in with `mysql_native_password` (here with a password that needs
/// percent-encoding) and serves the query itself: its connection is not one of the pool's.
#[tokio::test]
async fn mysql_bulk_reader_logs_in_with_a_password() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, admin) = open_sql(&url, "my_pw_admin").await;
    let user = unique_table("pw").replace('_', "");
    let user = &user[..user.len().min(32)];
    admin.execute(&format!("create user '{user}'@'%' identified by 'p@ss:w/rd'")).await.unwrap();
    admin.execute(&format!("grant select on *.* to '{user}'@'%'")).await.unwrap();
    let server = url.split_once('@').map_or(url.as_str(), |(_, rest)| rest);
    let (_q, conn) = open_sql_with(&format!("mysql://{user}:p%40ss%3Aw%2Frd@{server}"), "my_pw", ONE_CONNECTION).await;
    let bulk = conn.query("select connection_id() as id, current_user() as who").await.unwrap();
    let pooled = conn
        .query("select connection_id() as id, current_user() as who from dual where 1 = :one")
        .param("one", 1)
        .await
        .unwrap();
    admin.execute(&format!("drop user '{user}'@'%'")).await.unwrap();
    let who = bulk.to_csv_string().unwrap();
    assert!(who.contains(user), "{who}");
    assert_ne!(
        connection_id(&bulk),
        connection_id(&pooled),
        "the parameterless query ran on the bulk reader's own connection, not the pool's one"
    );
}

/// The bulk reader's connection follows the pool's `pool_recycle`: older than that, it is replaced.
#[tokio::test]
async fn mysql_bulk_connection_is_recycled() {
    let Some(url) = server_url(VAR) else { return };
    let kwargs = "create_engine_kwargs = { pool_size = 2, max_overflow = 0, pool_recycle = 1 }";
    let (_p, conn) = open_sql_with(&url, "my_recycle", kwargs).await;
    // each query differs in text, so that none is answered by the query cache
    let first = connection_id(&conn.query("select connection_id() as id").await.unwrap());
    let again = connection_id(&conn.query("select connection_id() as id, 1 as n").await.unwrap());
    assert_eq!(first, again, "reused while young");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let later = connection_id(&conn.query("select connection_id() as id, 2 as n").await.unwrap());
    assert_ne!(first, later, "replaced after 1 s");
}

/// A stream dropped after its first batch stops the bulk read; the next queries still work.
#[tokio::test]
async fn mysql_dropped_bulk_stream_leaves_the_connection_usable() {
    use futures_util::StreamExt as _;
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_dropped", ONE_CONNECTION).await;
    let sql = format!(
        "select a.d * 10000 + b.d * 1000 + c.d * 100 + e.d * 10 + f.d as i, repeat('x', 100) as pad
         from {DIGITS} a, {DIGITS} b, {DIGITS} c, {DIGITS} e, {DIGITS} f"
    );
    let mut stream = conn.query_stream(&sql, 100).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 100);
    drop(stream);
    for _ in 0..3 {
        let whole = conn.query(sql.clone()).await.unwrap();
        assert_eq!(whole.num_rows(), 100_000);
        conn.core().clear_cache();
    }
}

/// What one read path gave: a result, or the error's message (compared as text across paths).
type PathResult = Result<connections::DataFrame, String>;

/// The four read paths' answers to `select {cols} from {table} where {filter} order by k`: the bulk
/// reader (`query`), the row path (`query` with a parameter), `query_stream` (bulk reader, batches
/// of 2 rows) and a `session()` query (row path, in a transaction). Errors must be statement
/// errors, never retried.
async fn every_path(conn: &connections::sql::SqlConnection, cols: &str, table: &str, filter: &str) -> Vec<PathResult> {
    use futures_util::TryStreamExt as _;
    let plain = format!("select {cols} from {table} where {filter} order by k");
    let forced = format!("select {cols} from {table} where ({filter}) and :one = 1 order by k");
    conn.core().clear_cache();
    let checked = |r: connections::Result<connections::DataFrame>| {
        r.map_err(|e| {
            assert_eq!(e.kind(), ErrorKind::Statement, "{e:?}");
            assert!(!e.is_retryable());
            // the cause, without the "query on connection ..." line (`query_stream` and sessions
            // do not name the connection yet)
            let chain = error_chain(&e);
            chain.split_once(" / ").map_or(chain.clone(), |(_, cause)| cause.to_owned())
        })
    };
    let bulk = checked(conn.query(plain.clone()).await);
    let rows = checked(conn.query(forced).param("one", 1).await);
    let streamed = match conn.query_stream(&plain, 2).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await,
        Err(e) => Err(e),
    };
    let streamed = checked(streamed.map(|batches| match batches.first() {
        Some(first) => connections::DataFrame::new(first.schema(), batches).unwrap(),
        // an empty stream has no batch to tell its schema: take the bulk reader's
        None => connections::DataFrame::empty(bulk.as_ref().unwrap().schema().clone()),
    }));
    let mut session = conn.session().await.unwrap();
    let in_session = checked(session.query(&plain).await);
    session.rollback().await.unwrap();
    vec![bulk, rows, streamed, in_session]
}

/// Asserts that every path gave the same result (same schema, same values) or the same error.
fn agree(results: &[PathResult]) {
    let names = ["bulk query", "row path", "query_stream", "session"];
    let first = &results[0];
    for (name, other) in names.iter().zip(results).skip(1) {
        match (first, other) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.schema(), b.schema(), "{name}: schema");
                assert_eq!(a.to_csv_string().unwrap(), b.to_csv_string().unwrap(), "{name}: values");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{name}: error"),
            (a, b) => panic!("{name} differs from the bulk query: {a:?} vs {b:?}"),
        }
    }
}

/// A column's values as text, as the server writes them (`cast(col as char)`): booleans as 0/1.
fn texts(df: &connections::DataFrame, name: &str) -> Vec<Option<String>> {
    use connections::arrow::array::{BinaryArray, BooleanArray};
    let column = df.column(name).unwrap().unwrap();
    (0..column.len())
        .map(|i| {
            if column.is_null(i) {
                return None;
            }
            let any = column.as_any();
            Some(if let Some(b) = any.downcast_ref::<BooleanArray>() {
                if b.value(i) { "1" } else { "0" }.to_owned()
            } else if let Some(s) = any.downcast_ref::<StringArray>() {
                s.value(i).to_owned()
            } else if let Some(b) = any.downcast_ref::<BinaryArray>() {
                String::from_utf8(b.value(i).to_vec()).unwrap()
            } else {
                let text = connections::arrow::compute::cast(&column.slice(i, 1), &DataType::Utf8).unwrap();
                text.as_any().downcast_ref::<StringArray>().unwrap().value(0).to_owned()
            })
        })
        .collect()
}

/// The server's own text of `col` (`cast(col as char)`) for the rows of `filter`, in `k` order.
async fn server_texts(
    conn: &connections::sql::SqlConnection,
    col: &str,
    table: &str,
    filter: &str,
) -> Vec<Option<String>> {
    let sql = format!("select cast({col} as char) as v from {table} where ({filter}) and :one = 1 order by k");
    texts(&conn.query(sql).param("one", 1).await.unwrap_or_else(|e| panic!("{e:?}")), "v")
}

/// `BOOLEAN` (`TINYINT(1)`) holds any TINYINT: 0 and 1 read as booleans on every path, any other
/// value is the same error everywhere, naming the column and the row, never the value.
#[tokio::test]
async fn mysql_boolean_holding_other_integers_is_an_error_on_every_path() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_bool", ONE_CONNECTION).await;
    let t = unique_table("my_bool");
    conn.execute(&format!("create table {t} (k int primary key, b boolean)")).await.unwrap();
    conn.execute(&format!("insert into {t} values (0, 0), (1, 1), (2, null), (3, 2), (4, 5), (5, -1), (6, 127)"))
        .await
        .unwrap();
    let good = every_path(&conn, "k, b", &t, "k < 3").await;
    agree(&good);
    let df = good[0].as_ref().unwrap();
    assert_eq!(df.schema().field(1).data_type(), &DataType::Boolean);
    assert_eq!(texts(df, "b"), server_texts(&conn, "b", &t, "k < 3").await);
    for (k, value) in [(3, "2"), (4, "5"), (5, "-1"), (6, "127")] {
        let bad = every_path(&conn, "k, b", &t, &format!("k = {k}")).await;
        agree(&bad);
        let message = bad[0].as_ref().unwrap_err();
        assert!(message.contains("column `b`, row 0") && message.contains("not a boolean"), "{message}");
        assert!(!message.contains(value), "the value is not shown: {message}");
    }
    // the row named is the row of the result
    let all = every_path(&conn, "k, b", &t, "true").await;
    agree(&all);
    assert!(all[0].as_ref().unwrap_err().contains("column `b`, row 3"), "{:?}", all[0]);
    conn.execute(&format!("drop table {t}")).await.unwrap();
}

/// A string column is Binary only when its character set is `binary`; text with a binary
/// collation (`utf8mb4_bin`, MariaDB's JSON) is Utf8, on every path, with the server's own text.
#[tokio::test]
async fn mysql_text_with_a_binary_collation_is_utf8_on_every_path() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_coll", ONE_CONNECTION).await;
    let t = unique_table("my_coll");
    conn.execute(&format!(
        "create table {t} (k int primary key, vb varchar(20) collate utf8mb4_bin, tb text collate utf8mb4_bin,
          cb char(3) collate utf8mb4_bin, lb longtext collate utf8mb4_bin, j json, ci varchar(20), e enum('a','é') collate utf8mb4_bin,
          bn binary(2), vbin varbinary(8), bl blob)"
    ))
    .await
    .unwrap();
    conn.execute(&format!(
        "insert into {t} values (1, 'Vé', 'text é', 'abc', 'long', '{{\"a\": [1, 2]}}', 'ci', 'é', x'0102', x'ff00', x'00ff'),
          (2, null, null, null, null, null, null, null, null, null, null)"
    ))
    .await
    .unwrap();
    let cols = "k, vb, tb, cb, lb, j, ci, e, bn, vbin, bl, vb collate utf8mb4_bin as x, cast('y' as binary) as yb";
    let results = every_path(&conn, cols, &t, "true").await;
    agree(&results);
    let df = results[0].as_ref().unwrap();
    let types: Vec<_> = df.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    let (u, b) = (DataType::Utf8, DataType::Binary);
    assert_eq!(
        types[1..],
        [
            u.clone(),
            u.clone(),
            u.clone(),
            u.clone(),
            u.clone(),
            u.clone(),
            u.clone(),
            b.clone(),
            b.clone(),
            b.clone(),
            u,
            b
        ]
    );
    for col in ["vb", "tb", "cb", "lb", "j", "ci", "e"] {
        assert_eq!(texts(df, col), server_texts(&conn, col, &t, "true").await, "{col}");
    }
    // an empty result has the same schema on every path
    let empty = every_path(&conn, cols, &t, "false").await;
    agree(&empty);
    assert_eq!(empty[0].as_ref().unwrap().schema(), df.schema());
    conn.execute(&format!("drop table {t}")).await.unwrap();
}

/// JSON is the database's text byte for byte: key order, duplicate keys, big and trailing-zero
/// numbers and out-of-range exponents survive on every path.
#[tokio::test]
async fn mysql_json_is_the_servers_text_byte_for_byte() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_json", ONE_CONNECTION).await;
    let t = unique_table("my_json");
    conn.execute(&format!("create table {t} (k int primary key, j json)")).await.unwrap();
    let docs = [
        r#"{"b": 1, "a": 2, "a": 3}"#,
        r#"{"big": 12345678901234567890123, "dec": 0.10, "neg": -0.0}"#,
        "[1e400]",
        r#"  {"spaced" :  [ 1 ,2 ] , "esc": "\u00e9\n"}  "#,
    ];
    for (k, doc) in docs.iter().enumerate() {
        conn.execute_with(
            &format!("insert into {t} values (:k, :j)"),
            [("k", k.to_string()), ("j", (*doc).to_owned())],
        )
        .await
        .unwrap();
    }
    let results = every_path(&conn, "k, j", &t, "true").await;
    agree(&results);
    let df = results[0].as_ref().unwrap();
    assert_eq!(df.schema().field(1).data_type(), &DataType::Utf8, "JSON is text");
    let server = server_texts(&conn, "j", &t, "true").await;
    assert_eq!(texts(df, "j"), server);
    let version = conn.query("select version() as v").await.unwrap().to_csv_string().unwrap();
    if version.contains("MariaDB") {
        // MariaDB keeps the text it was given (MySQL normalises JSON on the way in)
        let given: Vec<_> = docs.iter().map(|d| Some((*d).to_owned())).collect();
        assert_eq!(texts(df, "j"), given);
    }
    conn.execute(&format!("drop table {t}")).await.unwrap();
}

/// Zero and invalid dates (stored under an empty `sql_mode`) are an error on every path, naming
/// column and row and suggesting a way out; NULL stays NULL.
#[tokio::test]
async fn mysql_zero_and_invalid_dates_are_an_error_on_every_path() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_zero", ONE_CONNECTION).await;
    let t = unique_table("my_zero");
    conn.execute(&format!("create table {t} (k int primary key, d date, dt datetime, ts timestamp null)"))
        .await
        .unwrap();
    let mut session = conn.session().await.unwrap();
    session.execute("set session sql_mode = ''").await.unwrap();
    session
        .execute(&format!(
            "insert into {t} values (0, '2024-02-29', '2024-02-29 01:02:03', '2024-02-29 01:02:03'), (1, null, null, null),
              (2, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00'),
              (3, '2024-00-10', '2024-00-10 00:00:00', null), (4, '2024-02-00', '2024-02-00 10:00:00', null)"
        ))
        .await
        .unwrap();
    session.execute("set session sql_mode = default").await.unwrap();
    session.commit().await.unwrap();
    let good = every_path(&conn, "k, d, dt, ts", &t, "k < 2").await;
    agree(&good);
    for (k, col) in [(2, "d"), (2, "dt"), (2, "ts"), (3, "d"), (3, "dt"), (4, "d"), (4, "dt")] {
        let bad = every_path(&conn, &format!("k, {col}"), &t, &format!("k = {k}")).await;
        agree(&bad);
        let message = bad[0].as_ref().unwrap_err();
        assert!(message.contains(&format!("column `{col}`")) && message.contains("row 0"), "{message}");
        assert!(message.contains("zero or invalid date") && message.contains("nullif"), "{message}");
        assert!(!message.contains("2024") && !message.contains("00:00"), "the value is not shown: {message}");
    }
    let all = every_path(&conn, "k, dt", &t, "true").await;
    agree(&all);
    assert!(all[0].as_ref().unwrap_err().contains("column `dt`, row 2"), "{:?}", all[0]);
    conn.execute(&format!("drop table {t}")).await.unwrap();
}

/// The same SQL with parameters of other types, on the one pooled connection, gives the right
/// answer whatever ran before (a prepared statement must not keep the first parameters' types).
#[tokio::test]
async fn mysql_parameter_types_do_not_stick_to_a_statement() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_param_types", "create_engine_kwargs = { pool_size = 1 }").await;
    let cases: [(connections::Param, Option<&str>); 5] = [
        (1_i64.into(), Some("1")),
        (1.5_f64.into(), Some("1.5")),
        ("x".into(), Some("x")),
        (connections::Param::Null, None),
        (2_i64.into(), Some("2")),
    ];
    for (value, expected) in cases {
        let df = conn.query("select :v as v").param("v", value.clone()).await.unwrap();
        assert_eq!(texts(&df, "v"), [expected.map(str::to_owned)], "{value:?}");
    }
    let t = unique_table("my_param_types");
    conn.execute(&format!("create table {t} (k int primary key, price decimal(10,2))")).await.unwrap();
    conn.execute(&format!("insert into {t} values (1, 9.5), (2, 10), (3, 10.25), (4, 10.75), (5, 11)")).await.unwrap();
    let sql = format!("select count(*) as n from {t} where price > :p");
    for (p, n) in
        [(connections::Param::from(10_i64), "3"), (10.5_f64.into(), "2"), ("10.3".into(), "2"), (9_i64.into(), "5")]
    {
        let df = conn.query(sql.clone()).param("p", p.clone()).await.unwrap();
        assert_eq!(texts(&df, "n"), [Some(n.to_owned())], "price > {p:?}");
    }
    conn.execute(&format!("drop table {t}")).await.unwrap();
}

/// Errors caused by the statement are statement errors on every path: never retried, never
/// taken for a lost connection (the one pooled connection and the bulk one stay the same).
#[tokio::test]
async fn mysql_statement_errors_are_not_retried() {
    use futures_util::TryStreamExt as _;
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "my_stmt_err", ONE_CONNECTION).await;
    let ids = async || {
        conn.core().clear_cache();
        let bulk = connection_id(&conn.query("select connection_id() as id").await.unwrap());
        let pooled = connection_id(
            &conn.query("select connection_id() as id from dual where 1 = :one").param("one", 1).await.unwrap(),
        );
        (bulk, pooled)
    };
    let before = ids().await;
    let placeholders = vec!["?"; 70_000].join(", ");
    let too_many_named = (0..70_000).map(|i| format!(":p{i}")).collect::<Vec<_>>().join(", ");
    for sql in ["selec 1", "select * from no_such_table_here", "select ? as x", "select ? as x, ? as y", &placeholders]
    {
        let statement = |e: connections::Error| {
            assert_eq!(e.kind(), ErrorKind::Statement, "{sql:.40}: {e:?}");
            assert!(!e.is_retryable(), "{sql:.40}");
        };
        statement(conn.query(sql).await.unwrap_err());
        if !sql.contains('?') {
            // (a query with `?` placeholders takes no named parameters; unbound, the bulk reader
            // declines it, so the plain `query` above already ran it on the row path)
            statement(conn.query(format!("{sql} from dual where 1 = :one")).param("one", 1).await.unwrap_err());
        }
        let streamed = conn.query_stream(sql, 10).await.unwrap().try_collect::<Vec<_>>().await;
        statement(streamed.unwrap_err());
        let mut session = conn.session().await.unwrap();
        statement(session.query(sql).await.unwrap_err());
        session.rollback().await.unwrap();
    }
    let mut q = conn.query(format!("select {too_many_named}"));
    for i in 0..70_000 {
        q = q.param(format!("p{i}"), i64::from(i));
    }
    let e = q.await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Statement, "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(ids().await, before, "no connection was reset or replaced");
}

/// The bulk reader's connection counts inside `pool_size`: no more server sessions than it
/// allows, however many queries run at once; a pool of one has no bulk reader.
#[tokio::test]
async fn mysql_bulk_reader_stays_inside_pool_size() {
    let Some(url) = server_url(VAR) else { return };
    let sessions = |conn: std::sync::Arc<connections::sql::SqlConnection>, tag: &'static str| async move {
        // every query holds its connection for a moment, all at once
        let queries = (0..6).map(|k| {
            let conn = std::sync::Arc::clone(&conn);
            async move {
                let sql = format!(
                    "select connection_id() as id, sleep(0.3) as s, {k} as k from dual where '{tag}' = '{tag}'"
                );
                connection_id(&conn.query(sql).await.unwrap())
            }
        });
        let mut ids: Vec<u64> = futures_util::future::join_all(queries).await;
        ids.sort_unstable();
        ids.dedup();
        (ids.len(), conn.pool().await.unwrap().served())
    };
    let (_p, two) = open_sql_with(&url, "my_two", "create_engine_kwargs = { pool_size = 2, max_overflow = 0 }").await;
    let (count, served) = sessions(two, "two").await;
    assert!(count <= 2, "{count} server sessions for a pool_size of 2");
    assert!(served.mysql_bulk >= 1, "the bulk reader served some: {served:?}");
    let (_q, one) = open_sql_with(&url, "my_one", "create_engine_kwargs = { pool_size = 1, max_overflow = 0 }").await;
    let (count, served) = sessions(one, "one").await;
    assert_eq!(count, 1, "one server session for a pool_size of 1");
    assert_eq!(served.mysql_bulk, 0, "a pool of one has no bulk reader: {served:?}");
}

/// A TCP forwarder to the server at `upstream` that counts the connections made through it:
/// each login attempt is one connection.
async fn counting_forwarder(upstream: std::net::SocketAddr) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (port, count)
}

#[tokio::test]
async fn mysql_a_refused_login_is_tried_once_by_the_retry() {
    let Some(url) = server_url(VAR) else { return };
    let (_root_p, root) = open_sql(&url, "my_auth_root").await;
    let user = format!("conn_auth_{}", std::process::id());
    root.execute(&format!("create user if not exists '{user}'@'%' identified by 'right-pw-1'")).await.unwrap();
    root.execute(&format!("alter user '{user}'@'%' identified by 'right-pw-1'")).await.unwrap();
    let (port, connects) = counting_forwarder("127.0.0.1:3306".parse().unwrap()).await;
    let (_p, conn) = open_sql(&format!("mysql://{user}:right-pw-1@127.0.0.1:{port}/"), "my_auth_user").await;
    assert_eq!(conn.query("select 1 as one").await.unwrap().num_rows(), 1);
    // the password changes on the server: the next login is refused
    root.execute(&format!("alter user '{user}'@'%' identified by 'other-pw-2'")).await.unwrap();
    conn.core().reset();
    let before = connects.load(std::sync::atomic::Ordering::SeqCst);
    let err = conn.query("select 2 as two").await.unwrap_err();
    let after = connects.load(std::sync::atomic::Ordering::SeqCst);
    root.execute(&format!("drop user if exists '{user}'@'%'")).await.unwrap();
    let chain = error_chain(&err);
    assert_eq!(err.kind(), ErrorKind::Auth, "{chain}");
    assert!(chain.contains("Access denied") && !chain.contains("right-pw-1"), "{chain}");
    assert_eq!(after - before, 1, "one login attempt, not retried: {chain}");
}
