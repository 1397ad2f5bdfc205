//! The Snowflake test proxy (`connections_tests::snowflake_proxy`) against a real client: the
//! Python Snowflake connector from the emulator's virtualenv, through the proxy, to fakesnow.
//! If the connector rejects something the proxy fills in, these tests fail.
//!
//! They need `CONNECTIONS_TEST_SNOWFLAKE_URL` (set by `cargo xtask test`, or printed by
//! `cargo xtask services`) and the virtualenv `target/snowflake-emulator/venv`; without either
//! they skip with a notice.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use connections_tests::snowflake_proxy::{CHUNK_KEY_HEADER, ProxyConfig, SnowflakeProxy};
use serde_json::Value;

/// The client: connects through the proxy, runs one query per mode and prints one line of JSON.
const CLIENT: &str = r#"
import json, sys
import snowflake.connector

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = snowflake.connector.connect(
    host=host, port=port, protocol="http", account="fakesnow", user="fake", password="snow",
    session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}, network_timeout=60,
)
cur = conn.cursor()
out = {}
if mode == "chunks":
    rows = int(sys.argv[4])
    cur.execute(
        "select n, 'row ' || n as s from "
        f"(select seq4() as n from table(generator(rowcount => {rows}))) order by n"
    )
    ns = []
    for n, s in cur:
        if s != f"row {n}":
            raise SystemExit(f"row {n} came with {s!r}")
        ns.append(n)
    out = {"rows": len(ns), "in_order": ns == list(range(rows)), "batches": len(cur.get_result_batches() or [])}
elif mode == "twice":
    out["values"] = [cur.execute("select 41 + %s" % i).fetchone()[0] for i in (1, 2)]
    out["session_id"] = conn.session_id
elif mode == "timeout":
    try:
        cur.execute("select 1", timeout=1)
        out["error"] = None
    except snowflake.connector.errors.Error as e:
        out["error"] = {"errno": e.errno, "message": e.msg}
elif mode == "fails":
    try:
        cur.execute("select 1")
        out["error"] = None
    except snowflake.connector.errors.Error as e:
        out["error"] = {"errno": e.errno, "message": e.msg}
else:
    raise SystemExit(f"unknown mode {mode}")
conn.close()
print(json.dumps(out))
"#;

/// The emulator's virtualenv Python, or `None` with a notice.
fn venv_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/snowflake-emulator/venv/bin/python");
    if python.exists() {
        Some(python)
    } else {
        eprintln!("skipped: no {} (`cargo xtask services` creates it)", python.display());
        None
    }
}

/// A proxy and the Python to drive it, or `None` (skip) without the emulator.
fn setup(config: ProxyConfig) -> Option<(SnowflakeProxy, PathBuf)> {
    let proxy = SnowflakeProxy::from_env(config)?;
    Some((proxy, venv_python()?))
}

/// Runs the client in `mode` through `proxy`; its JSON line.
fn run_client(python: &PathBuf, proxy: &SnowflakeProxy, mode: &str, extra: &[&str]) -> Value {
    let output = Command::new(python)
        .args(["-c", CLIENT, mode, &proxy.host(), &proxy.port().to_string()])
        .args(extra)
        .output()
        .expect("run the Python connector");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python connector failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {stdout}"))
}

#[test]
fn half_a_million_rows_arrive_complete_and_in_order_across_chunks() {
    let Some((proxy, python)) = setup(ProxyConfig::default().rows_per_chunk(100_000).first_chunk_rows(50_000)) else {
        return;
    };
    // one chunk download is cut off halfway and one is slow: the connector retries and waits
    proxy.drop_chunk_connections(1);
    proxy.slow_chunks(5, Duration::from_millis(400));
    let out = run_client(&python, &proxy, "chunks", &["500000"]);
    assert_eq!(out["rows"], 500_000, "{out}");
    assert_eq!(out["in_order"], true, "{out}");
    // the inline 50,000 rows, then 100,000-row chunks: 1 + 5 batches
    assert_eq!(out["batches"], 6, "{out}");
    let counts = proxy.counts();
    assert_eq!(counts.chunked_results, 1, "{counts:?}");
    assert_eq!(counts.chunks_served, 5, "{counts:?}");
    assert_eq!(counts.chunks_dropped, 1, "{counts:?}");
    assert_eq!(counts.chunks_slowed, 5, "{counts:?}");
    assert!(counts.max_chunks_in_flight >= 2, "the connector fetches chunks in parallel: {counts:?}");
    assert_eq!(counts.chunks_refused, 0, "the connector sent the chunk headers back: {counts:?}");
    assert_eq!(counts.logins, 1, "{counts:?}");
    assert_eq!(counts.session_closes, 1, "{counts:?}");
}

#[test]
fn an_expired_session_token_is_renewed_and_the_query_goes_through() {
    let Some((proxy, python)) = setup(ProxyConfig::default()) else { return };
    proxy.expire_session(1);
    let out = run_client(&python, &proxy, "twice", &[]);
    assert_eq!(out["values"], serde_json::json!([42, 43]), "{out}");
    assert!(out["session_id"].as_u64().is_some(), "the login's sessionId reached the connector: {out}");
    let counts = proxy.counts();
    assert_eq!(counts.session_expired_answers, 1, "{counts:?}");
    assert_eq!(counts.token_renewals, 1, "{counts:?}");
    assert_eq!(counts.logins, 1, "renewed, not logged in again: {counts:?}");
    assert_eq!(counts.queries, 3, "the expired query was sent again: {counts:?}");
}

#[test]
fn an_expired_master_token_ends_the_session_with_390114() {
    let Some((proxy, python)) = setup(ProxyConfig::default()) else { return };
    proxy.expire_session(1);
    proxy.expire_master_token(1);
    let out = run_client(&python, &proxy, "fails", &[]);
    // the connector tried to renew, was told to log in again, and reports it (a password login
    // does not log in again by itself)
    assert_eq!(out["error"]["errno"], 390_114, "{out}");
    let counts = proxy.counts();
    assert_eq!(counts.master_expired_answers, 1, "{counts:?}");
    assert_eq!(counts.queries, 1, "the query was not sent again after 390114: {counts:?}");
    // (closing the connection afterwards meets the expired token again and renews it then)
    assert!(counts.session_expired_answers >= 1, "{counts:?}");
}

#[test]
fn a_query_in_progress_is_polled_until_its_result_is_ready() {
    let Some((proxy, python)) = setup(ProxyConfig::default()) else { return };
    proxy.query_in_progress(3);
    let out = run_client(&python, &proxy, "twice", &[]);
    assert_eq!(out["values"], serde_json::json!([42, 43]), "{out}");
    let counts = proxy.counts();
    assert_eq!(counts.polls, 3, "{counts:?}");
    assert_eq!(counts.in_progress_answers, 3, "the query and two polls answered 333334: {counts:?}");
    assert_eq!(counts.queries, 2, "{counts:?}");
}

#[test]
fn a_query_in_progress_past_its_timeout_is_aborted_and_answers_cancelled() {
    let Some((proxy, python)) = setup(ProxyConfig::default()) else { return };
    proxy.query_in_progress(1_000);
    proxy.slow_polls(Duration::from_millis(100));
    let out = run_client(&python, &proxy, "timeout", &[]);
    assert_eq!(out["error"]["errno"], 604, "{out}");
    let aborts = proxy.abort_requests();
    assert_eq!(aborts.len(), 1, "{aborts:?}");
    assert_eq!(aborts[0]["sqlText"], "select 1", "{aborts:?}");
    assert!(aborts[0]["requestId"].is_string(), "{aborts:?}");
    let counts = proxy.counts();
    assert!(counts.polls >= 2, "{counts:?}");
}

/// The chunk URLs refuse a download without the key the result named, as S3 does.
#[tokio::test(flavor = "multi_thread")]
async fn chunks_need_the_key_of_their_result() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default().rows_per_chunk(10)) else { return };
    let client = reqwest::Client::builder().no_proxy().build().expect("an HTTP client");
    let login: Value = post_json(
        &client,
        &format!("{}/session/v1/login-request", proxy.url()),
        None,
        serde_json::json!({ "data": { "LOGIN_NAME": "fake", "PASSWORD": "snow", "SESSION_PARAMETERS": {} } }),
    )
    .await;
    let token = login["data"]["token"].as_str().expect("a session token").to_owned();
    assert!(login["data"]["masterToken"].is_string(), "{login}");
    assert!(login["data"]["validityInSeconds"].is_u64(), "{login}");
    assert!(login["data"]["sessionId"].is_u64(), "{login}");
    assert_eq!(login["data"]["sessionInfo"]["roleName"], "PUBLIC", "{login}");
    let result: Value = post_json(
        &client,
        &format!("{}/queries/v1/query-request", proxy.url()),
        Some(&token),
        serde_json::json!({ "sqlText": "select seq4() as n from table(generator(rowcount => 25))", "sequenceId": 1 }),
    )
    .await;
    let data = &result["data"];
    assert_eq!(data["total"], 25, "{result}");
    assert_eq!(data["returned"], 10, "{result}");
    assert_eq!(data["finalRoleName"], "PUBLIC", "{result}");
    let chunks = data["chunks"].as_array().expect("chunks");
    assert_eq!(chunks.iter().map(|c| c["rowCount"].as_u64().unwrap_or(0)).collect::<Vec<_>>(), [10, 5]);
    let url = chunks[0]["url"].as_str().expect("a chunk URL");
    let key = data["qrmk"].as_str().expect("a qrmk");
    assert_eq!(data["chunkHeaders"][CHUNK_KEY_HEADER], key, "{result}");

    let without = client.get(url).send().await.expect("the proxy answers");
    assert_eq!(without.status(), reqwest::StatusCode::FORBIDDEN);
    let wrong = client.get(url).header(CHUNK_KEY_HEADER, "not the key").send().await.expect("the proxy answers");
    assert_eq!(wrong.status(), reqwest::StatusCode::FORBIDDEN);
    let with = client.get(url).header(CHUNK_KEY_HEADER, key).send().await.expect("the proxy answers");
    assert_eq!(with.status(), reqwest::StatusCode::OK);
    let bytes = with.bytes().await.expect("the chunk");
    assert_eq!(chunks[0]["uncompressedSize"].as_u64(), Some(bytes.len() as u64));
    let counts = proxy.counts();
    assert_eq!((counts.chunks_refused, counts.chunks_served), (2, 1), "{counts:?}");

    // a failed statement carries what real Snowflake sends with it
    let failed = post_json(
        &client,
        &format!("{}/queries/v1/query-request", proxy.url()),
        Some(&token),
        serde_json::json!({ "sqlText": "select * from no_such_table_anywhere", "sequenceId": 2 }),
    )
    .await;
    assert_eq!(failed["success"], false, "{failed}");
    assert!(failed["data"]["errorCode"].is_string(), "{failed}");
    assert!(failed["data"]["queryId"].as_str().is_some_and(|id| id.len() == 36), "{failed}");
    assert_eq!(failed["data"]["internalError"], false, "{failed}");

    // an expired session answers 390112 until renewed with the master token
    proxy.expire_session(1);
    let sql = serde_json::json!({ "sqlText": "select 1", "sequenceId": 2 });
    let url = format!("{}/queries/v1/query-request", proxy.url());
    let expired = post_json(&client, &url, Some(&token), sql.clone()).await;
    assert_eq!(expired["code"], "390112", "{expired}");
    let master = login["data"]["masterToken"].as_str().expect("a master token");
    let renewed = post_json(
        &client,
        &format!("{}/session/token-request", proxy.url()),
        Some(master),
        serde_json::json!({ "oldSessionToken": token, "requestType": "RENEW" }),
    )
    .await;
    let new_token = renewed["data"]["sessionToken"].as_str().expect("a new session token");
    assert_eq!(
        post_json(&client, &url, Some(&token), sql.clone()).await["code"],
        "390112",
        "the old token stays expired"
    );
    let again = post_json(&client, &url, Some(new_token), sql).await;
    assert_eq!(again["success"], true, "{again}");

    // abort requests are recorded with their body, and forwarded
    let abort = serde_json::json!({ "sqlText": "select 1", "requestId": "11111111-2222-3333-4444-555555555555" });
    let aborted =
        post_json(&client, &format!("{}/queries/v1/abort-request", proxy.url()), Some(new_token), abort.clone()).await;
    assert_eq!(aborted["success"], true, "{aborted}");
    assert_eq!(proxy.abort_requests(), [abort]);
    assert_eq!(proxy.counts().aborts, 1);
}

async fn post_json(client: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> Value {
    let mut request = client.post(url).header("content-type", "application/json").body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Snowflake Token=\"{token}\""));
    }
    let response = request.send().await.expect("the proxy answers");
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}
