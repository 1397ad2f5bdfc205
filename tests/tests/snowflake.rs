//! Type `snowflake` against the fakesnow emulator: `CONNECTIONS_TEST_SNOWFLAKE_URL`
//! (`http://127.0.0.1:<port>`, started by `cargo xtask services`), skipped when unset.

#![allow(clippy::unwrap_used)] // test code

use std::sync::Arc;
use std::time::Duration;

use connections::BaseConnection;
use connections::arrow::datatypes::{DataType, TimeUnit};
use connections::snowflake::{Binding, SnowflakeConnection};
use connections_tests::emulator_harness::endpoint;
use connections_tests::{Project, error_chain, frame_text, server_url, unique_table};

const VAR: &str = "CONNECTIONS_TEST_SNOWFLAKE_URL";

/// A `[connections.<name>]` section pointing at the emulator, with `extra` lines.
fn section(url: &str, name: &str, extra: &str) -> String {
    let (protocol, host, port) = endpoint(url);
    format!(
        "[connections.{name}]\ntype = 'snowflake'\naccount = 'test'\nuser = 'jerry'\npassword = 'pw'\n\
         host = '{host}'\nport = {port}\nprotocol = '{protocol}'\ndatabase = 'db1'\nschema = 'schema1'\n{extra}\n"
    )
}

async fn open_with(url: &str, name: &str, extra: &str) -> (Project, Arc<SnowflakeConnection>) {
    let p = Project::new();
    p.write(p.project_secrets(), section(url, name, extra));
    let conn = connections::connection(name)
        .secrets_store(p.store())
        .query_cache(connections::QueryCache::new(64 << 20))
        .retry(connections::RetryPolicy::new(3, Duration::from_millis(100)).unwrap())
        .open_as::<SnowflakeConnection>()
        .await
        .unwrap_or_else(|e| panic!("open: {}", error_chain(&e)));
    // fakesnow starts without databases; tests running at once may conflict in its catalog
    for sql in ["create database if not exists db1", "create schema if not exists db1.schema1"] {
        let mut attempts = 0;
        while let Err(e) = conn.execute(sql).await {
            attempts += 1;
            assert!(attempts < 5, "{}", error_chain(&e));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (p, conn)
}

#[tokio::test]
async fn query_with_bindings_and_dml_counts() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_with(&url, "sf_basic", "").await;
    let t = unique_table("sf_owners");
    conn.execute(&format!("create table {t} (owner varchar, pet varchar, age int)")).await.unwrap();
    let inserted = conn
        .execute_with(
            &format!("insert into {t} values (?, ?, ?), (?, ?, ?)"),
            [Binding::from("Jerry"), "Mouse".into(), 3.into(), "Tom".into(), "Cat".into(), Binding::Null],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 2);
    let df = conn.query(format!("select pet, age from {t} where owner = ?")).bind("Jerry").await.unwrap();
    assert_eq!(frame_text(&df), "PET: Utf8, AGE: Int64\nPET,AGE\nMouse,3\n");
    let df =
        conn.query(format!("select owner from {t} where pet = :pet order by 1")).param("pet", "Cat").await.unwrap();
    assert_eq!(df.num_rows(), 1);
    // an injection-looking value is a value
    let df = conn.query(format!("select * from {t} where owner = ?")).bind("x' or '1'='1").await.unwrap();
    assert_eq!(df.num_rows(), 0);
    assert_eq!(df.schema().fields().len(), 3, "the schema is kept for 0 rows");
    let updated = conn.execute(&format!("update {t} set age = 4 where owner = 'Jerry'")).await.unwrap();
    assert_eq!(updated, 1);
    let deleted = conn.execute(&format!("delete from {t}")).await.unwrap();
    assert_eq!(deleted, 2);
}

#[tokio::test]
async fn bad_sql_is_a_statement_error_with_a_query_id() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_with(&url, "sf_bad", "").await;
    let before = conn.core().connect_count();
    let err = conn.query("select * from no_such_table_anywhere").await.unwrap_err();
    assert_eq!(err.kind(), connections::ErrorKind::Statement, "{}", error_chain(&err));
    let sf = connections::snowflake::snowflake_error(&err).unwrap();
    assert!(sf.code().is_some(), "{sf}");
    assert_eq!(conn.core().connect_count(), before, "a statement error is not retried with a reset");
}

#[tokio::test]
async fn types_to_standard_arrow_with_nulls() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_with(&url, "sf_types", "").await;
    let df = conn
        .query(
            "select 1::int as i, 12.34::number(10,2) as n, 1.5::float as f, 'x'::varchar as s, true as b,
                    '2024-02-29'::date as d, '13:45:30.25'::time as t,
                    '2024-02-29 13:45:30.25'::timestamp_ntz as ts, to_binary('01ff', 'hex') as bin,
                    parse_json('{\"a\": 1}') as v
             union all
             select null, null, null, null, null, null, null, null, null, null",
        )
        .await
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    let types: Vec<DataType> = df.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(types[0], DataType::Int64);
    assert_eq!(types[1], DataType::Decimal128(10, 2));
    assert_eq!(types[2], DataType::Float64);
    assert_eq!(types[3], DataType::Utf8);
    assert_eq!(types[4], DataType::Boolean);
    assert_eq!(types[5], DataType::Date32);
    assert!(matches!(types[6], DataType::Time64(_)));
    assert!(matches!(types[7], DataType::Timestamp(_, None)));
    assert_eq!(types[8], DataType::Binary);
    assert_eq!(types[9], DataType::Utf8);
    assert_eq!(df.schema().field(9).metadata().get("ARROW:extension:name").map(String::as_str), Some("arrow.json"));
    let text = frame_text(&df);
    assert!(text.contains("1,12.34,1.5,x,true,2024-02-29,13:45:30.250"), "{text}");
    assert!(text.contains("2024-02-29T13:45:30.250"), "{text}");
    assert!(text.contains("NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL"), "{text}");
    let _ = TimeUnit::Second;
}

#[tokio::test]
async fn aggregates_over_generated_rows() {
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_with(&url, "sf_agg", "").await;
    let df = conn
        .query("select sum(range) as s, count(*) as c from range(1000)")
        .await
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!(frame_text(&df).lines().nth(2), Some("499500.0,1000"), "{}", frame_text(&df));
}

#[tokio::test]
async fn write_round_trip_create_and_overwrite() {
    use connections::arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
    use connections::arrow::record_batch::RecordBatch;
    use connections::snowflake::WriteOptions;
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_with(&url, "sf_write", "").await;
    let t = unique_table("sf_write");
    let batch = RecordBatch::try_from_iter([
        // NULLs only in the text column: fakesnow 0.12 fails on a NULL in a typed (non-TEXT) array
        // binding, which Snowflake accepts; the wire form of NULLs is unit-tested in the crate
        ("id", Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(3)])) as ArrayRef),
        ("name", Arc::new(StringArray::from(vec![Some("a'b"), None, Some("c")])) as ArrayRef),
        ("score", Arc::new(Float64Array::from(vec![Some(1.5), Some(2.0), Some(-0.25)])) as ArrayRef),
        ("ok", Arc::new(BooleanArray::from(vec![Some(true), Some(true), Some(false)])) as ArrayRef),
        ("day", Arc::new(Date32Array::from(vec![Some(19782), Some(1), Some(0)])) as ArrayRef),
    ])
    .unwrap();
    let frame = connections::DataFrame::from(batch);
    let mut options = WriteOptions::default();
    options.auto_create_table = true;
    options.chunk_size = Some(2);
    let written = conn.write(&t, &frame, &options).await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!((written.success, written.chunks, written.rows), (true, 2, 3));
    let back = conn.query(format!("select * from \"{t}\" order by \"id\" nulls last")).await.unwrap();
    assert_eq!(
        frame_text(&back),
        "id: Int64, name: Utf8, score: Float64, ok: Boolean, day: Date32\nid,name,score,ok,day\n\
         1,a'b,1.5,true,2024-02-29\n2,NULL,2.0,true,1970-01-02\n3,c,-0.25,false,1970-01-01\n"
    );
    // overwrite replaces the rows
    options.overwrite = true;
    let written = conn.write(&t, &frame, &options).await.unwrap();
    assert_eq!(written.rows, 3);
    let count = conn.query(format!("select count(*) as n from \"{t}\"")).ttl(Duration::ZERO).await.unwrap();
    assert_eq!(frame_text(&count).lines().nth(2), Some("3"));
}

#[tokio::test]
async fn query_stream_hands_over_batches_with_the_schema() {
    use futures_util::StreamExt;
    let Some(url) = server_url(VAR) else { return };
    let (_p, conn) = open_with(&url, "sf_stream", "").await;
    let mut stream = conn.query_stream("select range as n from range(1000) order by n", &[]).await.unwrap();
    assert_eq!(stream.schema().field(0).data_type(), &DataType::Int64);
    assert!(stream.query_id().is_some());
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        rows += batch.unwrap().num_rows();
    }
    assert_eq!(rows, 1000);
    let empty = conn.query_stream("select range as n from range(0)", &[]).await.unwrap();
    assert_eq!(empty.schema().fields().len(), 1);
}
