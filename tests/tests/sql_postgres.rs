//! Type `sql` on a real PostgreSQL server: `CONNECTIONS_TEST_POSTGRES_URL`, skipped when unset.

#![allow(clippy::unwrap_used)] // test code

use std::sync::Arc;

use connections::ErrorKind;
use connections::arrow::array::{Array, Decimal128Array, Int32Array, ListArray, StringArray};
use connections::arrow::datatypes::{DataType, Field, TimeUnit};
use connections_tests::{
    Project, error_chain, frame_text, open_sql, open_sql_with, same_on_every_path, server_url, unique_table,
};

const VAR: &str = "CONNECTIONS_TEST_POSTGRES_URL";

#[tokio::test]
async fn postgres_types_to_arrow() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "pg_types").await;
    let t = unique_table("pg_types");
    conn.execute(&format!(
        "create table {t} (i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, n numeric(10,2),
          tx text, vc varchar(20), ch char(3), by bytea, b boolean, d date, tm time, ts timestamp, tz timestamptz,
          u uuid, j json, jb jsonb, ai int4[], at text[])"
    ))
    .await
    .unwrap();
    conn.execute(&format!(
        "insert into {t} values (1, 2, 3, 1.5, 2.25, 12345678.91, 'text', 'varchar', 'abc', '\\x0102', true,
          '2024-02-29', '13:45:30.25', '2024-02-29 13:45:30', '2024-02-29 13:45:30+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          '{{\"a\": 1}}', '{{\"b\": [1, 2]}}', '{{1, null, 3}}', '{{\"x\", \"y\"}}'),
          (null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null)"
    ))
    .await
    .unwrap();
    let df = conn.query(format!("select * from {t}")).await.unwrap();
    conn.execute(&format!("drop table {t}")).await.unwrap();
    let types: Vec<DataType> = df.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    assert_eq!(
        types,
        [
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(10, 2), // numeric(10,2), from the column's declaration
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Binary,
            DataType::Boolean,
            DataType::Date32,
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
            list(DataType::Int32),
            list(DataType::Utf8),
        ]
    );
    let batch = df.to_record_batch().unwrap();
    let n = batch.column(5).as_any().downcast_ref::<Decimal128Array>().unwrap();
    assert_eq!(n.value_as_string(0), "12345678.91");
    let ch = batch.column(8).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(ch.value(0), "abc");
    let tz = batch.column(14).as_any().downcast_ref::<connections::arrow::array::TimestampMicrosecondArray>().unwrap();
    assert_eq!(tz.value_as_datetime(0).unwrap().to_string(), "2024-02-29 11:45:30", "normalised to UTC");
    let u = batch.column(15).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(u.value(0), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    let jb = batch.column(17).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(jb.value(0), r#"{"b": [1, 2]}"#, "the server's own text of the jsonb value");
    let ai = batch.column(18).as_any().downcast_ref::<ListArray>().unwrap();
    let first = ai.value(0);
    let first = first.as_any().downcast_ref::<Int32Array>().unwrap();
    assert_eq!((first.len(), first.value(0), first.is_null(1), first.value(2)), (3, 1, true, 3));
    for i in 0..batch.num_columns() {
        assert!(batch.column(i).is_null(1), "column {i} row 1 is NULL");
    }
}

#[tokio::test]
async fn postgres_params_casts_and_injection() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "pg_params").await;
    let t = unique_table("pg_params");
    conn.execute(&format!("create table {t} (name text, owner text, born date)")).await.unwrap();
    let evil = "Jerry'; DROP TABLE pets; --";
    conn.execute_with(
        &format!("insert into {t} values (:name, :owner, :born::date)"),
        [("name", "Tom"), ("owner", evil), ("born", "2020-01-02")],
    )
    .await
    .unwrap();
    let df = conn
        .query(format!("select name, born::text as born from {t} where owner = :owner and name = :name"))
        .param("owner", evil)
        .param("name", "Tom")
        .await
        .unwrap();
    assert_eq!(df.num_rows(), 1, "the injection-looking value is data");
    let df = conn.query(format!("select count(*) as n from {t} where name = :n or owner = :n")).param("n", "Tom").await;
    assert_eq!(df.unwrap().num_rows(), 1, "a name used twice binds once");
    conn.execute(&format!("drop table {t}")).await.unwrap();
}

#[tokio::test]
async fn postgres_empty_result_keeps_schema_and_bad_sql_is_a_statement_error() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "pg_empty").await;
    let df = conn.query("select 1::int4 as a, 'x'::text as b where false").await.unwrap();
    assert_eq!(df.num_rows(), 0);
    assert_eq!(df.schema().field(0).data_type(), &DataType::Int32);
    assert_eq!(df.schema().field(1).data_type(), &DataType::Utf8);
    let err = conn.query("selec 1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement);
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("syntax error"), "{cause}");
}

#[tokio::test]
async fn postgres_a_killed_session_is_retried_on_a_fresh_connection() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "pg_restart").await;
    let before = conn.query("select pg_backend_pid() as pid").await.unwrap();
    let pid = before.column("pid").unwrap().unwrap();
    let pid = pid.as_any().downcast_ref::<Int32Array>().unwrap().value(0);
    // as if the server restarted under it: the server ends the connection's session
    let (_q, admin) = open_sql(&url, "pg_admin").await;
    let killed =
        admin.query("select pg_terminate_backend(:pid::int) as killed").param("pid", i64::from(pid)).await.unwrap();
    assert_eq!(killed.num_rows(), 1);
    let after = conn.query("select pg_backend_pid() as pid, 2 as again").await.unwrap();
    assert_eq!(after.num_rows(), 1, "the second query succeeds");
    let new_pid = after.column("pid").unwrap().unwrap();
    assert_ne!(new_pid.as_any().downcast_ref::<Int32Array>().unwrap().value(0), pid, "on a new connection");
}

#[tokio::test]
async fn postgres_wrong_user_and_unreachable_server_fail_clearly_without_the_password() {
    let Some(url) = server_url(VAR) else { return };
    let _ = url;
    let p = Project::new();
    p.write(
        p.project_secrets(),
        "[connections.nobody]\ntype = 'sql'\nurl = 'postgresql://no_such_role_x:pa55word-Q@127.0.0.1:5432/test'\n\
         [connections.nowhere]\ntype = 'sql'\ndialect = 'postgresql'\nusername = 'u'\npassword = 'pa55word-Q'\nhost = '127.0.0.1'\nport = 1\ndatabase = 'test'\n",
    );
    let store = p.store();
    for name in ["nobody", "nowhere"] {
        let err = connections::connection(name).secrets_store(store.clone()).open().await.unwrap_err();
        // a refused login is never retried (it may lock the user out); an unreachable server is
        let expected = if name == "nobody" { ErrorKind::Auth } else { ErrorKind::Connect };
        assert_eq!(err.kind(), expected, "{name}: {err:?}");
        assert_eq!(err.is_retryable(), name != "nobody", "{name}");
        let chain = format!("{} {err:?}", error_chain(&err));
        assert!(!chain.contains("pa55word-Q"), "leaked: {chain}");
        assert!(chain.contains(&format!("connection \"{name}\" (type sql) failed to connect")), "{chain}");
        let reason = if name == "nobody" { "no_such_role_x" } else { "Connection refused" };
        assert!(chain.contains(reason), "the server's own reason is kept: {chain}");
    }
}

/// A parameterless `select` of plain types is read as binary COPY, a `query_stream` row by row:
/// both must give the same Arrow data.
#[tokio::test]
async fn postgres_copy_and_row_paths_agree() {
    use futures_util::TryStreamExt as _;
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "pg_agree").await;
    let t = unique_table("pg_agree");
    conn.execute(&format!(
        "create table {t} (b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, tx text,
          vc varchar(9), ch char(3), by bytea, d date, tm time, ts timestamp, tz timestamptz, u uuid)"
    ))
    .await
    .unwrap();
    conn.execute(&format!(
        "insert into {t} select i % 2 = 0, i, i * 1000, i::bigint * 1000000000, i / 3.0, i / 7.0, 'row ' || i, 'v' || i,
           'c', decode(lpad(to_hex(i), 4, '0'), 'hex'), date '1999-12-31' + i, time '00:00:01' + i * interval '1 second',
           timestamp '1969-12-31 23:59:59' + i * interval '1 day', timestamptz '2000-01-01 00:00:00+05' + i * interval '1 hour',
           md5(i::text)::uuid
         from generate_series(1, 3000) as i"
    ))
    .await
    .unwrap();
    conn.execute(&format!("insert into {t} (i4) values (null)")).await.unwrap();
    let sql = format!("select * from {t} order by i2 nulls last");
    let pool = conn.pool().await.unwrap();
    let before = pool.served();
    let copied = conn.query(sql.clone()).await.unwrap();
    assert_eq!(pool.served().postgres_copy, before.postgres_copy + 1, "the COPY path served `query`");
    let streamed: Vec<_> = conn.query_stream(&sql, 1000).await.unwrap().try_collect().await.unwrap();
    let streamed = connections::DataFrame::new(streamed[0].schema(), streamed).unwrap();
    conn.execute(&format!("drop table {t}")).await.unwrap();
    assert_eq!(copied.num_rows(), 3001);
    assert_eq!(copied.schema(), streamed.schema());
    assert_eq!(copied.to_csv_string().unwrap(), streamed.to_csv_string().unwrap());
}

/// Issue 8.1: the same SQL with differently typed parameters, on one pooled connection.
#[tokio::test]
async fn postgres_parameter_types_never_reuse_a_statement_prepared_for_others() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "pg_param_types", "create_engine_kwargs = { pool_size = 1 }").await;
    let t = unique_table("pg_prices");
    conn.execute(&format!("create table {t} (price numeric)")).await.unwrap();
    conn.execute(&format!("insert into {t} values (10.75), (9)")).await.unwrap();
    let count = format!("select count(*) as n from {t} where price > :p");
    let n = |df: connections::DataFrame| frame_text(&df);
    assert!(n(conn.query(count.clone()).param("p", 10_i64).await.unwrap()).ends_with("n\n1\n"));
    assert!(n(conn.query(count.clone()).param("p", 10.5_f64).await.unwrap()).ends_with("n\n1\n"), "10.75 > 10.5");
    assert!(n(conn.query(count.clone()).param("p", 11_i64).await.unwrap()).ends_with("n\n0\n"));
    conn.execute(&format!("drop table {t}")).await.unwrap();
    let v = "select :v as v";
    assert_eq!(n(conn.query(v).param("v", 1_i64).await.unwrap()), "v: Int64\nv\n1\n");
    assert_eq!(n(conn.query(v).param("v", 1.5_f64).await.unwrap()), "v: Float64\nv\n1.5\n");
    assert_eq!(n(conn.query(v).param("v", "x").await.unwrap()), "v: Utf8\nv\nx\n");
    assert_eq!(n(conn.query(v).param("v", true).await.unwrap()), "v: Boolean\nv\ntrue\n");
    assert_eq!(n(conn.query(v).param("v", 2_i64).await.unwrap()), "v: Int64\nv\n2\n");
}

/// Issue 8.2: JSON comes back as the server's text, byte for byte.
#[tokio::test]
async fn postgres_json_is_the_servers_text() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "pg_json").await;
    let json = r#"{"b": 1, "a": 2, "a": 3, "n": 12345678901234567890123, "x": 0.10, "big": [1e400]}"#;
    let sql = format!("select '{json}'::json as j, '{json}'::jsonb as jb, ('{json}'::jsonb)::text as jb_text");
    let text = same_on_every_path(&conn, &sql).await.unwrap();
    let df = conn.query(sql).await.unwrap();
    let batch = df.to_record_batch().unwrap();
    let col = |i: usize| batch.column(i).as_any().downcast_ref::<StringArray>().unwrap().value(0).to_owned();
    assert_eq!(col(0), json, "json keeps duplicates, order, big numbers and trailing zeros: {text}");
    assert_eq!(col(1), col(2), "jsonb is the server's own rendering of it");
    assert!(col(1).contains("12345678901234567890123") && col(1).contains("0.10"), "{}", col(1));
}

/// Issue 8.3: declared numeric(p, s) is Decimal128(p, s); a value wider than 38 digits is an
/// error naming column and row; an unconstrained numeric takes the largest display scale.
#[tokio::test]
async fn postgres_decimals_are_exact_or_an_error() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "pg_decimals").await;
    let t = unique_table("pg_dec");
    conn.execute(&format!("create table {t} (id int, d numeric(5, 2), u numeric)")).await.unwrap();
    conn.execute(&format!(
        "insert into {t} values (1, 1.5, 0.10), (2, -999.99, 12345678901234567890.123456), (3, null, null)"
    ))
    .await
    .unwrap();
    let text = same_on_every_path(&conn, &format!("select d, u from {t} order by id")).await.unwrap();
    assert_eq!(
        text,
        "d: Decimal128(5, 2), u: Decimal128(38, 6)\nd,u\n1.50,0.100000\n-999.99,12345678901234567890.123456\nNULL,NULL\n"
    );
    let empty = same_on_every_path(&conn, &format!("select d from {t} where false")).await.unwrap();
    assert_eq!(empty, "d: Decimal128(5, 2)\nd\n", "the declared type holds for an empty result");
    conn.execute(&format!("drop table {t}")).await.unwrap();
    for (sql, row) in [
        ("select 123456789012345678901234567890123456789::numeric as wide", 0),
        ("select x as wide from (values (1::numeric), (1e38::numeric)) as v(x)", 1),
        ("select x as wide from (values (1::numeric), ('NaN'::numeric)) as v(x)", 1),
    ] {
        let err = same_on_every_path(&conn, sql).await.unwrap_err();
        assert!(err.contains(&format!("column `wide` (NUMERIC), row {row}")), "{sql}: {err}");
    }
    let max = same_on_every_path(&conn, "select 99999999999999999999999999999999999999::numeric as m").await.unwrap();
    assert!(max.ends_with("\n99999999999999999999999999999999999999\n"), "{max}");
}

/// Issue 8.7: values without an Arrow counterpart are the same error on every path, never a
/// panic, an early end or a saturated number; a trailing comment is fine on the COPY path.
#[tokio::test]
async fn postgres_every_path_gives_the_same_answer_for_edge_values() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql(&url, "pg_edges").await;
    for (sql, what) in [
        ("select 'infinity'::timestamp as v", "infinity"),
        ("select '-infinity'::timestamptz as v", "infinity"),
        ("select 'infinity'::date as v", "infinity"),
        ("select '294276-12-31 23:59:59'::timestamp as v", "outside"),
        ("select '24:00:00'::time as v", "24:00:00"),
    ] {
        let err = same_on_every_path(&conn, sql).await.unwrap_err();
        assert!(err.contains("column `v`") && err.contains("row 0") && err.contains(what), "{sql}: {err}");
    }
    for (sql, expected) in [
        ("select '4713-01-01 BC'::date as v -- a comment", "v: Date32\nv\n-4712-01-01\n"),
        ("select '23:59:59.999999'::time as v", "v: Time64(µs)\nv\n23:59:59.999999\n"),
        ("select '-0'::float8 as v, 'NaN'::float8 as w", "v: Float64, w: Float64\nv,w\n-0.0,NaN\n"),
        ("select array[1, null, 3]::int4[] as v, '{}'::text[] as w", ""),
    ] {
        let text = same_on_every_path(&conn, sql).await.unwrap();
        if !expected.is_empty() {
            assert_eq!(text, expected, "{sql}");
        }
    }
    let pool = conn.pool().await.unwrap();
    let before = pool.served();
    conn.query("select 1 as one -- ends in a comment").await.unwrap();
    assert_eq!(
        pool.served().postgres_copy,
        before.postgres_copy + 1,
        "the COPY path served it: {before:?} {:?}",
        pool.served()
    );
}

/// Issue 8.8, 8.10, 8.12: NUL bytes fail at once as statement errors; a failure on the COPY
/// path or a dropped stream leaves no connection out of step.
#[tokio::test]
async fn postgres_failures_leave_the_pool_clean() {
    use futures_util::StreamExt as _;
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_sql_with(&url, "pg_clean", "create_engine_kwargs = { pool_size = 1 }").await;
    let started = std::time::Instant::now();
    let err = conn.query("select 'a\0b' as v").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement, "{err:?}");
    assert!(error_chain(&err).contains("NUL"), "{}", error_chain(&err));
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "not retried");
    let err = conn.query("select 1/0 as v").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement);
    assert!(error_chain(&err).contains("division by zero"), "{}", error_chain(&err));
    assert_eq!(frame_text(&conn.query("select 2 as v").await.unwrap()), "v: Int32\nv\n2\n");
    let mut stream = conn.query_stream("select i from generate_series(1, 100000) as i", 10).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    drop(stream);
    assert_eq!(frame_text(&conn.query("select 3 as v").await.unwrap()), "v: Int32\nv\n3\n");
    let err = conn.query("select 1 as a; select 2 as b").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement);
    assert!(error_chain(&err).contains("2 statements"), "{}", error_chain(&err));
    assert_eq!(frame_text(&conn.query("select 4 as v;").await.unwrap()), "v: Int32\nv\n4\n", "a trailing `;` is fine");
}
