//! Type `sql` never leaves its caller waiting without bound: `connect_timeout` bounds opening a
//! connection, `query_timeout` a query or statement, and each error names the option that ran
//! out. Servers that never answer are local listeners; PostgreSQL and MySQL tests need their
//! server variables and are skipped without them.

#![allow(clippy::unwrap_used)] // test code

use std::time::{Duration, Instant};

use connections::ErrorKind;
use connections_tests::{Project, error_chain, frame_text, open_sql_with, server_url};

/// A TCP server on 127.0.0.1 that accepts connections and never sends a byte; its port.
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(16) {
            held.push(stream); // keep every connection open and silent
        }
    });
    port
}

#[tokio::test]
async fn connect_timeout_bounds_opening_a_connection_to_a_silent_server() {
    for dialect in ["postgresql", "mysql"] {
        let port = silent_server();
        let p = Project::new();
        p.write(
            p.project_secrets(),
            format!(
                "[connections.silent]\ntype = 'sql'\nurl = '{dialect}://u:pw@127.0.0.1:{port}/db?connect_timeout=1'\n"
            ),
        );
        let started = Instant::now();
        let err = connections::connection("silent").secrets_store(p.store()).open().await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Connect, "{dialect}: {err:?}");
        let chain = error_chain(&err);
        assert!(chain.contains("`connect_timeout` (1s)"), "{dialect}: {chain}");
        assert!(waited < Duration::from_secs(10), "{dialect}: waited {waited:?}");
    }
}

#[tokio::test]
async fn a_refused_server_fails_at_once_every_time() {
    let p = Project::new();
    p.write(p.project_secrets(), "[connections.refused]\ntype = 'sql'\nurl = 'postgresql://u@127.0.0.1:1/db'\n");
    for _ in 0..3 {
        let started = Instant::now();
        let err = connections::connection("refused").secrets_store(p.store()).open().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect);
        assert!(error_chain(&err).contains("refused"), "{}", error_chain(&err));
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }
}

/// Runs `sleep` under a 2 s `query_timeout` on a one-connection pool: it fails in about two
/// seconds naming the option, and the next query works. (Bounds are generous: CI machines are
/// shared and the tests of this file run side by side.)
async fn query_timeout_stops_a_long_query(url: &str, name: &str, sleep: &str) {
    let (_p, conn) =
        open_sql_with(url, name, "create_engine_kwargs = { pool_size = 1, max_overflow = 0, query_timeout = 2 }").await;
    for attempt in ["query", "execute"] {
        let started = Instant::now();
        let err = if attempt == "query" {
            conn.query(sleep).await.unwrap_err()
        } else {
            conn.execute(sleep).await.unwrap_err()
        };
        let waited = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Statement, "{name} {attempt}: not retried: {err:?}");
        assert!(error_chain(&err).contains("`query_timeout` (2s)"), "{name} {attempt}: {}", error_chain(&err));
        assert!(waited < Duration::from_secs(10), "{name} {attempt}: waited {waited:?}");
    }
    let df = conn.query("select 7 as v").await.unwrap();
    assert!(frame_text(&df).ends_with("v\n7\n"), "{name}: the pool still works");
}

#[tokio::test]
async fn query_timeout_on_postgres() {
    let Some(url) = server_url("CONNECTIONS_TEST_POSTGRES_URL") else { return };
    query_timeout_stops_a_long_query(&url, "pg_timeout", "select pg_sleep(30)").await;
    // the server stopped the statement too (its statement_timeout), not only the client
    let (_p, admin) = open_sql_with(&url, "pg_timeout_admin", "").await;
    assert!(postgres_stops(&admin, "select pg_sleep(30)").await, "the server still runs the statement");
}

#[tokio::test]
async fn query_timeout_on_mysql() {
    let Some(url) = server_url("CONNECTIONS_TEST_MYSQL_URL") else { return };
    query_timeout_stops_a_long_query(&url, "my_timeout", "select sleep(30)").await;
    // the server stopped the statement too (KILL QUERY, max_statement_time), not only the client
    let (_p, admin) = open_sql_with(&url, "my_timeout_admin", "").await;
    assert!(mysql_stops(&admin, "select sleep(30)").await, "the server still runs the statement");
}

/// Polls MySQL/MariaDB until no session runs `sql`; false after 10 s.
async fn mysql_stops(admin: &connections::sql::SqlConnection, sql: &str) -> bool {
    server_stops(admin, |attempt| {
        format!(
            "select count(*) as n from information_schema.processlist where info = '{sql}' \
             and id <> connection_id() -- {attempt}"
        )
    })
    .await
}

#[tokio::test]
async fn a_cancelled_mysql_query_stops_on_the_server() {
    let Some(url) = server_url("CONNECTIONS_TEST_MYSQL_URL") else { return };
    let (_p, conn) =
        open_sql_with(&url, "my_cancel", "create_engine_kwargs = { pool_size = 2, max_overflow = 0 }").await;
    let (_q, admin) = open_sql_with(&url, "my_cancel_admin", "").await;
    let sql = "select sleep(29)";
    let pool = conn.pool().await.unwrap();
    let count =
        |attempt| format!("select count(*) as n from information_schema.processlist where info = '{sql}' -- {attempt}");
    let seen = give_up_once_running(conn.query(sql), &admin, count).await;
    assert!(seen, "the statement never ran on the server");
    assert!(mysql_stops(&admin, sql).await, "the server still runs the statement");
    let df = conn.query("select 9 as v").await.unwrap();
    assert!(frame_text(&df).ends_with("v\n9\n"), "the pool still works");
    assert!(pool.served().mysql_bulk >= 1, "the bulk reader served the query: {:?}", pool.served());
}

/// Polls PostgreSQL until no active statement of another session contains `sql` (the COPY path
/// wraps it); false after 10 s.
async fn postgres_stops(admin: &connections::sql::SqlConnection, sql: &str) -> bool {
    server_stops(admin, |attempt| {
        format!(
            "select count(*) as n from pg_stat_activity where strpos(query, '{sql}') > 0 and state = 'active' \
             and pid <> pg_backend_pid() -- {attempt}"
        )
    })
    .await
}

/// Polls `query` (a statement that runs for long) until `count(attempt)` says the server runs it,
/// then drops it: the caller gives up. Whether it was seen running (false after 10 s).
async fn give_up_once_running<F: std::future::IntoFuture>(
    query: F,
    admin: &connections::sql::SqlConnection,
    count: impl Fn(u32) -> String,
) -> bool {
    let running = async {
        for attempt in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if frame_text(&admin.query(count(attempt)).await.unwrap()).ends_with("n\n1\n") {
                return true;
            }
        }
        false
    };
    tokio::select! {
        _ = query => false, // it ended by itself: not what the test wants
        seen = running => seen,
    }
}

/// Runs `count(attempt)` (how many sessions still run a statement, as a column `n`) every
/// 100 ms until it says 0; false after 10 s. Each attempt's text differs, so that the query cache
/// never answers.
async fn server_stops(admin: &connections::sql::SqlConnection, count: impl Fn(u32) -> String) -> bool {
    for attempt in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if frame_text(&admin.query(count(attempt)).await.unwrap()).ends_with("n\n0\n") {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_cancelled_postgres_query_stops_on_the_server() {
    let Some(url) = server_url("CONNECTIONS_TEST_POSTGRES_URL") else { return };
    let (_p, conn) =
        open_sql_with(&url, "pg_cancel", "create_engine_kwargs = { pool_size = 1, max_overflow = 0 }").await;
    let (_q, admin) = open_sql_with(&url, "pg_cancel_admin", "").await;
    let sql = "select pg_sleep(29)";
    let count = |attempt| {
        format!(
            "select count(*) as n from pg_stat_activity where strpos(query, '{sql}') > 0 and state = 'active' \
             and pid <> pg_backend_pid() -- {attempt}"
        )
    };
    let seen = give_up_once_running(conn.query(sql), &admin, count).await;
    assert!(seen, "the statement never ran on the server");
    assert!(postgres_stops(&admin, sql).await, "the server still runs the statement");
    let df = conn.query("select 8 as v").await.unwrap();
    assert!(frame_text(&df).ends_with("v\n8\n"), "the pool still works");
}

#[tokio::test]
async fn query_timeout_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("slow.db").display());
    let forever = "with recursive c(n) as (select 1 union all select n + 1 from c where n < 1000000000) select count(*) as n from c";
    query_timeout_stops_a_long_query(&url, "sqlite_timeout", forever).await;
    let (_p, conn) =
        open_sql_with(&url, "sqlite_timeout_paths", "create_engine_kwargs = { query_timeout = 0.5 }").await;
    let pool = conn.pool().await.unwrap();
    let before = pool.served();
    let err = conn.query(forever).await.unwrap_err();
    assert!(error_chain(&err).contains("`query_timeout` (500ms)"), "{}", error_chain(&err));
    assert_eq!(pool.served().sqlite_c_api, before.sqlite_c_api, "a timed-out query is not counted as served");
    conn.query("select 1 as one").await.unwrap();
    assert_eq!(pool.served().sqlite_c_api, before.sqlite_c_api + 1, "the C-API path served it");
}

#[tokio::test]
async fn a_cancelled_sqlite_statement_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("cancel.db").display());
    let (_p, conn) =
        open_sql_with(&url, "sqlite_cancel", "create_engine_kwargs = { pool_size = 1, max_overflow = 0 }").await;
    conn.execute("create table t (n integer)").await.unwrap();
    let forever = "insert into t with recursive c(n) as (select 1 union all select n + 1 from c where n < 1000000000) \
                   select n from c";
    let dropped = tokio::time::timeout(Duration::from_millis(300), conn.execute(forever)).await;
    assert!(dropped.is_err(), "the caller gave up first");
    // with the statement still running, the one-connection pool could not serve this at once
    let started = Instant::now();
    let df = conn.query("select count(*) as n from t").await.unwrap();
    assert!(frame_text(&df).ends_with("n\n0\n"), "the interrupted insert was rolled back: {}", frame_text(&df));
    assert!(started.elapsed() < Duration::from_secs(10), "waited {:?} for the pool", started.elapsed());
}
