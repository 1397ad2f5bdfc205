//! The Rust driver (type `snowflake`) end to end through the test proxy
//! (`connections_tests::snowflake_proxy`) in front of the fakesnow emulator: results split into
//! chunks served from the proxy's URLs, and the faults real Snowflake produces and fakesnow does
//! not (dropped and slow chunk downloads, expired tokens, 333334 polling, aborts).
//!
//! They need `CONNECTIONS_TEST_SNOWFLAKE_URL` (set by `cargo xtask test`, or printed by
//! `cargo xtask services`); without it they skip with a notice.

#![allow(clippy::unwrap_used)] // test code

use std::sync::Arc;
use std::time::Duration;

use connections::arrow::array::{Array, AsArray};
use connections::arrow::datatypes::Int64Type;
use connections::snowflake::SnowflakeConnection;
use connections_tests::snowflake_proxy::{ProxyConfig, SnowflakeProxy};
use connections_tests::{Project, error_chain};
use futures_util::StreamExt;

/// `rows` rows numbered from 0 (`N`) with a text made of the number (`S`), in order.
fn sequence_sql(rows: usize) -> String {
    format!("select n, 'row ' || n as s from (select seq4() as n from table(generator(rowcount => {rows}))) order by n")
}

/// Opens a connection named `name` through `proxy`, with `extra` lines in its section.
async fn open(proxy: &SnowflakeProxy, name: &str, extra: &str) -> (Project, Arc<SnowflakeConnection>) {
    let p = Project::new();
    p.write(
        p.project_secrets(),
        format!(
            "[connections.{name}]\ntype = 'snowflake'\naccount = 'test'\nuser = 'jerry'\npassword = 'pw'\n\
             host = '{}'\nport = {}\nprotocol = 'http'\nnetwork_timeout = 60\n{extra}\n",
            proxy.host(),
            proxy.port()
        ),
    );
    let conn = connections::connection(name)
        .secrets_store(p.store())
        .query_cache(connections::QueryCache::new(64 << 20))
        .retry(connections::RetryPolicy::new(3, Duration::from_millis(100)).unwrap())
        .open_as::<SnowflakeConnection>()
        .await
        .unwrap_or_else(|e| panic!("open: {}", error_chain(&e)));
    (p, conn)
}

/// Waits (without blocking the runtime the abort is sent from) until the proxy saw an abort.
async fn wait_for_abort(proxy: &SnowflakeProxy) {
    for _ in 0..100 {
        if proxy.counts().aborts >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no abort request: {:?}", proxy.counts());
}

/// Checks that `batches` hold the rows `0..rows` of [`sequence_sql`], in order.
fn assert_sequence<'a>(
    batches: impl IntoIterator<Item = &'a connections::arrow::record_batch::RecordBatch>,
    rows: i64,
) {
    let mut next = 0_i64;
    for batch in batches {
        let n = connections::arrow::compute::cast(batch.column(0), &connections::arrow::datatypes::DataType::Int64)
            .unwrap();
        let n = n.as_primitive::<Int64Type>();
        let s = batch.column(1).as_string::<i32>();
        assert_eq!(n.null_count(), 0);
        for i in 0..batch.num_rows() {
            assert_eq!(n.value(i), next, "row {next} out of order");
            assert_eq!(s.value(i), format!("row {next}"), "row {next}");
            next += 1;
        }
    }
    assert_eq!(next, rows, "rows received");
}

#[tokio::test]
async fn half_a_million_rows_arrive_complete_and_in_order_across_chunks() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default().rows_per_chunk(100_000).first_chunk_rows(50_000))
    else {
        return;
    };
    let (_p, conn) = open(&proxy, "sf_e2e_chunks", "").await;
    // slow chunks keep several downloads in flight at once
    proxy.slow_chunks(5, Duration::from_millis(300));
    let df = conn.query(sequence_sql(500_000)).await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!(df.num_rows(), 500_000);
    assert_sequence(df.batches(), 500_000);
    let counts = proxy.counts();
    assert_eq!(counts.chunked_results, 1, "{counts:?}");
    assert_eq!(counts.chunks_served, 5, "{counts:?}");
    assert_eq!(counts.chunks_slowed, 5, "{counts:?}");
    assert_eq!(counts.chunks_refused, 0, "the chunk headers were sent back: {counts:?}");
    assert!(counts.max_chunks_in_flight >= 2, "chunks are fetched in parallel: {counts:?}");
    assert!(counts.max_chunks_in_flight <= 4, "at most 4 chunks at once: {counts:?}");
    assert_eq!(counts.logins, 1, "{counts:?}");
}

#[tokio::test]
async fn client_prefetch_threads_bounds_the_chunks_downloaded_at_once() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default().rows_per_chunk(20_000).first_chunk_rows(10_000))
    else {
        return;
    };
    let (_p, conn) = open(&proxy, "sf_e2e_prefetch", "client_prefetch_threads = 1").await;
    proxy.slow_chunks(4, Duration::from_millis(200));
    let df = conn.query(sequence_sql(90_000)).await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_sequence(df.batches(), 90_000);
    let counts = proxy.counts();
    assert_eq!(counts.chunks_served, 4, "{counts:?}");
    assert_eq!(counts.chunks_slowed, 4, "{counts:?}");
    assert_eq!(counts.max_chunks_in_flight, 1, "one chunk at a time: {counts:?}");
}

#[tokio::test]
async fn query_stream_hands_over_the_chunks_in_order() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default().rows_per_chunk(30_000).first_chunk_rows(10_000))
    else {
        return;
    };
    let (_p, conn) = open(&proxy, "sf_e2e_stream", "").await;
    let mut stream = conn.query_stream(&sequence_sql(100_000), &[]).await.unwrap();
    assert!(stream.query_id().is_some());
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch.unwrap_or_else(|e| panic!("{}", error_chain(&e))));
    }
    assert!(batches.len() >= 4, "the inline part and 3 chunks: {} batches", batches.len());
    assert_sequence(&batches, 100_000);
    assert_eq!(proxy.counts().chunks_served, 3, "{:?}", proxy.counts());
}

#[tokio::test]
async fn a_chunk_download_cut_off_halfway_is_retried() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default().rows_per_chunk(50_000).first_chunk_rows(10_000))
    else {
        return;
    };
    let (_p, conn) = open(&proxy, "sf_e2e_dropped", "").await;
    proxy.drop_chunk_connections(1);
    let df = conn.query(sequence_sql(200_000)).await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_sequence(df.batches(), 200_000);
    let counts = proxy.counts();
    assert_eq!(counts.chunks_dropped, 1, "{counts:?}");
    assert_eq!(counts.chunks_served, 4, "the cut-off chunk was downloaded again: {counts:?}");
    assert_eq!(counts.queries, 1, "the chunk was retried, not the query: {counts:?}");
}

#[tokio::test]
async fn a_slow_chunk_is_waited_for() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default().rows_per_chunk(20_000)) else { return };
    let (_p, conn) = open(&proxy, "sf_e2e_slow", "").await;
    proxy.slow_chunks(1, Duration::from_secs(2));
    let df = conn.query(sequence_sql(60_000)).await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_sequence(df.batches(), 60_000);
    let counts = proxy.counts();
    assert_eq!((counts.chunks_slowed, counts.chunks_served), (1, 2), "{counts:?}");
}

#[tokio::test]
async fn an_expired_session_token_is_renewed_and_the_query_goes_through() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let (_p, conn) = open(&proxy, "sf_e2e_renew", "").await;
    let df = conn.query("select 41 + 1 as n").await.unwrap();
    assert_eq!(df.num_rows(), 1);
    proxy.expire_session(1);
    let df = conn.query("select 41 + 2 as n").await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!(df.num_rows(), 1);
    let counts = proxy.counts();
    assert_eq!(counts.session_expired_answers, 1, "{counts:?}");
    assert_eq!(counts.token_renewals, 1, "{counts:?}");
    assert_eq!(counts.logins, 1, "renewed, not logged in again: {counts:?}");
    assert_eq!(counts.queries, 3, "the expired query was sent again: {counts:?}");
}

#[tokio::test]
async fn an_expired_master_token_logs_in_again_and_the_query_goes_through() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let (_p, conn) = open(&proxy, "sf_e2e_master", "").await;
    conn.query("select 1 as n").await.unwrap();
    proxy.expire_session(1);
    proxy.expire_master_token(1);
    let df = conn.query("select 2 as n").await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!(df.num_rows(), 1);
    let counts = proxy.counts();
    assert_eq!(counts.master_expired_answers, 1, "{counts:?}");
    assert_eq!(counts.token_renewals, 0, "{counts:?}");
    assert_eq!(counts.logins, 2, "logged in again (decision 9): {counts:?}");
    assert_eq!(counts.queries, 3, "{counts:?}");
}

#[tokio::test]
async fn a_query_in_progress_is_polled_to_completion() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let (_p, conn) = open(&proxy, "sf_e2e_poll", "").await;
    proxy.query_in_progress(3);
    let df = conn.query(sequence_sql(1000)).await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_sequence(df.batches(), 1000);
    let counts = proxy.counts();
    assert_eq!(counts.polls, 3, "{counts:?}");
    assert_eq!(counts.in_progress_answers, 3, "the query answer and 2 polls: {counts:?}");
    assert_eq!(counts.aborts, 0, "{counts:?}");
}

#[tokio::test]
async fn a_query_timeout_cancels_the_query_on_the_server() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let (_p, conn) = open(&proxy, "sf_e2e_timeout", "query_timeout = 1").await;
    conn.query("select 1 as n").await.unwrap();
    proxy.query_in_progress(1000);
    proxy.slow_polls(Duration::from_millis(300));
    let error = conn.query("select 2 as n").await.unwrap_err();
    let text = error_chain(&error);
    assert!(text.contains("1 s") || text.contains("timed out") || text.contains("timeout"), "{text}");
    wait_for_abort(&proxy).await;
    let aborts = proxy.abort_requests();
    assert_eq!(aborts[0]["sqlText"], "select 2 as n", "{aborts:?}");
    assert!(aborts[0]["requestId"].as_str().is_some_and(|id| !id.is_empty()), "{aborts:?}");
    proxy.slow_polls(Duration::ZERO);
    proxy.query_in_progress(0);
}

#[tokio::test]
async fn a_dropped_query_future_cancels_the_query_on_the_server() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let (_p, conn) = open(&proxy, "sf_e2e_drop", "").await;
    conn.query("select 1 as n").await.unwrap();
    proxy.query_in_progress(1000);
    proxy.slow_polls(Duration::from_millis(300));
    let query = conn.query("select 3 as n");
    let gave_up = tokio::time::timeout(Duration::from_secs(1), query).await;
    assert!(gave_up.is_err(), "the query should still be running: {:?}", gave_up.map(|r| r.map(|d| d.num_rows())));
    wait_for_abort(&proxy).await;
    assert_eq!(proxy.abort_requests()[0]["sqlText"], "select 3 as n");
    proxy.slow_polls(Duration::ZERO);
    proxy.query_in_progress(0);
}

#[tokio::test]
async fn bad_sql_is_sent_once_and_not_retried() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let (_p, conn) = open(&proxy, "sf_e2e_bad", "").await;
    let error = conn.query("selec 1").await.unwrap_err();
    let text = error_chain(&error);
    assert!(
        text.contains("Snowflake error") && text.contains("query id"),
        "a statement error with its query id: {text}"
    );
    let counts = proxy.counts();
    assert_eq!(counts.queries, 1, "a statement error is not retried: {counts:?}");
    assert_eq!(counts.logins, 1, "nor is the session reset: {counts:?}");
}

#[tokio::test]
async fn a_refused_login_is_tried_once_and_not_retried() {
    use connections::BaseConnection;
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let (_p, conn) = open(&proxy, "sf_e2e_refused", "").await;
    // the next use connects again, and the server refuses that login: Snowflake locks a user
    // after repeated failed logins, so the core's retry must not repeat it
    conn.core().reset();
    proxy.refuse_logins(10);
    let error = conn.query("select 1").await.unwrap_err();
    assert_eq!(error.kind(), connections::ErrorKind::Auth, "{}", error_chain(&error));
    assert!(!error.is_retryable());
    let text = error_chain(&error);
    assert!(text.contains("refused the credentials") && text.contains("390100"), "{text}");
    let counts = proxy.counts();
    assert_eq!(counts.refused_logins, 1, "a refused login is tried once: {counts:?}");
    assert_eq!((counts.logins, counts.queries), (1, 0), "{counts:?}");
}
