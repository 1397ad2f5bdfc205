//! Protocol tests on recorded answers: a small HTTP server on 127.0.0.1 that replays Snowflake's
//! answers (chunked results, 333334 polling, 390112 expiry, a query that never finishes), for
//! what the emulator cannot produce. Test code only.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use connections_core::arrow::array::{ArrayRef, Int64Array};
use connections_core::arrow::ipc::writer::StreamWriter;
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::toml::Table;
use connections_core::{ConfigOrigin, DataFrame};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::config::SnowflakeConfig;
use crate::protocol::Binding;
use crate::query::run;
use crate::session::Session;
use crate::sources::{Source, Sources};

/// One request the server received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What to answer: a status, a body, and a delay before answering.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) delay: Duration,
}

impl Reply {
    pub(crate) fn json(value: &Value) -> Self {
        Self { status: 200, body: value.to_string().into_bytes(), delay: Duration::ZERO }
    }
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A replaying server: `script(request, how many earlier requests had the same path)`.
pub(crate) struct Replay {
    pub(crate) port: u16,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
}

impl Replay {
    pub(crate) async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let (script, log) = (Arc::clone(&script), Arc::clone(&log));
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else { return };
                    let path = request.target.split('?').next().unwrap_or_default().to_owned();
                    let earlier = {
                        let mut log = log.lock().unwrap();
                        let n = log.iter().filter(|s| s.target.split('?').next() == Some(path.as_str())).count();
                        log.push(request.clone());
                        n
                    };
                    let reply = script(&request, earlier);
                    tokio::time::sleep(reply.delay).await;
                    let head = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&reply.body).await;
                });
            }
        });
        Self { port, seen }
    }

    pub(crate) fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.target.split('?').next() == Some(path)).cloned().collect()
    }

    /// A session logged in to this server (answering the login is the script's job).
    pub(crate) async fn session(&self, extra: &str) -> Arc<Session> {
        let mut sources = Sources::new("replay");
        let text = format!(
            "account = 'test'\nuser = 'u'\npassword = 'p'\nhost = '127.0.0.1'\nport = {}\nprotocol = 'http'\n{extra}",
            self.port
        );
        sources.push(Source::new(ConfigOrigin::Options, "test", text.parse::<Table>().unwrap()));
        Session::open(SnowflakeConfig::from_sources(&sources).unwrap()).await.unwrap()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    while buf.len() < header_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[header_end..]).to_string();
    Some(Seen { method, target, headers, body })
}

/// A login answer with `token`, valid for `validity` seconds, and a master token.
pub(crate) fn login_answer(token: &str, validity: i64) -> Value {
    json!({"success": true, "data": {"token": token, "masterToken": "master-1", "validityInSeconds": validity,
           "masterValidityInSeconds": 14400, "sessionId": 7}})
}

/// Arrow IPC stream bytes of Snowflake's encoding of `NUMBER(38,0)` values `range`.
pub(crate) fn ipc(range: std::ops::Range<i64>) -> Vec<u8> {
    let batch = RecordBatch::try_from_iter([("N", Arc::new(Int64Array::from_iter_values(range)) as ArrayRef)]).unwrap();
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    drop(writer);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn numbers(df: &DataFrame) -> Vec<i64> {
    df.batches()
        .iter()
        .flat_map(|b| {
            let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().clone();
            col.values().to_vec()
        })
        .collect()
}

const ROWTYPE: &str = r#"[{"name": "N", "type": "fixed", "precision": 38, "scale": 0, "nullable": false}]"#;

#[tokio::test]
async fn chunks_arrive_in_order_with_their_headers_while_downloaded_in_parallel() {
    use base64::Engine as _;
    let server = Replay::start(|req, _| {
        let path = req.target.split('?').next().unwrap_or_default();
        match path {
            "/session/v1/login-request" => Reply::json(&login_answer("t-1", 3600)),
            "/queries/v1/query-request" => {
                let port = req.header("host").unwrap().rsplit(':').next().unwrap().to_owned();
                let chunk = |i: usize, rows: u64| json!({"url": format!("http://127.0.0.1:{port}/chunk/{i}"), "rowCount": rows});
                Reply::json(&json!({"success": true, "data": {
                    "rowtype": serde_json::from_str::<Value>(ROWTYPE).unwrap(), "queryResultFormat": "arrow",
                    "rowsetBase64": base64::engine::general_purpose::STANDARD.encode(ipc(0..3)),
                    "queryId": "q-chunks", "statementTypeId": 4096, "qrmk": "key-1",
                    "chunks": [chunk(1, 1000), chunk(2, 1000), chunk(3, 2)]}}))
            }
            // the first chunk is the slowest: the result must still come in order
            "/chunk/1" => Reply { status: 200, body: ipc(3..1003), delay: Duration::from_millis(300) },
            // served gzipped without `Content-Encoding`, as cloud storage may
            "/chunk/2" => Reply { status: 200, body: gzip(&ipc(1003..2003)), delay: Duration::ZERO },
            "/chunk/3" => Reply { status: 200, body: ipc(2003..2005), delay: Duration::from_millis(50) },
            _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
        }
    })
    .await;
    let session = server.session("").await;
    let result = run(&session, "select n", &[], None).await.unwrap().collect(Arc::clone(&session)).await.unwrap();
    assert_eq!(numbers(&result.frame), (0..2005).collect::<Vec<_>>());
    assert_eq!(result.query_id.as_deref(), Some("q-chunks"));
    let chunk = &server.requests("/chunk/2")[0];
    assert_eq!(chunk.header("x-amz-server-side-encryption-customer-key"), Some("key-1"));
    assert_eq!(chunk.header("x-amz-server-side-encryption-customer-algorithm"), Some("AES256"));
    assert!(chunk.header("authorization").is_none(), "chunks go to storage, without the session token");
    // the query went with the session token, and identified this library
    let query = &server.requests("/queries/v1/query-request")[0];
    assert_eq!(query.header("authorization"), Some("Snowflake Token=\"t-1\""));
    assert!(query.header("user-agent").unwrap().starts_with("connections-snowflake/"));
    let login: Value = serde_json::from_str(&server.requests("/session/v1/login-request")[0].body).unwrap();
    assert_eq!(login["data"]["CLIENT_APP_ID"], "connections-snowflake");
}

#[tokio::test]
async fn json_chunks_give_the_same_arrow() {
    let server = Replay::start(|req, _| match req.target.split('?').next().unwrap_or_default() {
        "/session/v1/login-request" => Reply::json(&login_answer("t", 3600)),
        "/queries/v1/query-request" => {
            let port = req.header("host").unwrap().rsplit(':').next().unwrap().to_owned();
            Reply::json(&json!({"success": true, "data": {
                "rowtype": serde_json::from_str::<Value>(ROWTYPE).unwrap(), "queryResultFormat": "json",
                "rowset": [["0"], ["1"]], "queryId": "q-json",
                "chunks": [{"url": format!("http://127.0.0.1:{port}/chunk/1"), "rowCount": 2}],
                "chunkHeaders": {"x-custom": "h"}}}))
        }
        "/chunk/1" => Reply { status: 200, body: br#"["2"],["3"]"#.to_vec(), delay: Duration::ZERO },
        _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
    })
    .await;
    let session = server.session("").await;
    let result = run(&session, "select n", &[], None).await.unwrap().collect(Arc::clone(&session)).await.unwrap();
    assert_eq!(numbers(&result.frame), [0, 1, 2, 3]);
    assert_eq!(server.requests("/chunk/1")[0].header("x-custom"), Some("h"));
}

#[tokio::test]
async fn long_queries_are_polled_until_done() {
    let server = Replay::start(|req, earlier| match req.target.split('?').next().unwrap_or_default() {
        "/session/v1/login-request" => Reply::json(&login_answer("t", 3600)),
        "/queries/v1/query-request" => Reply::json(&json!({"code": "333334", "success": true,
            "data": {"queryId": "q-slow", "getResultUrl": "/queries/q-slow/result"}})),
        "/queries/q-slow/result" if earlier < 2 => Reply::json(&json!({"code": "333333", "success": true,
            "data": {"queryId": "q-slow", "getResultUrl": "/queries/q-slow/result"}})),
        "/queries/q-slow/result" => Reply::json(&json!({"success": true, "data": {
            "rowtype": serde_json::from_str::<Value>(ROWTYPE).unwrap(), "queryResultFormat": "json",
            "rowset": [["42"]], "queryId": "q-slow"}})),
        _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
    })
    .await;
    let session = server.session("").await;
    let result = run(&session, "select 42", &[], None).await.unwrap().collect(Arc::clone(&session)).await.unwrap();
    assert_eq!(numbers(&result.frame), [42]);
    assert_eq!(server.requests("/queries/q-slow/result").len(), 3);
    assert!(server.requests("/queries/q-slow/result").iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn an_expired_session_is_renewed_and_the_query_sent_again() {
    let server = Replay::start(|req, earlier| match req.target.split('?').next().unwrap_or_default() {
        "/session/v1/login-request" => Reply::json(&login_answer("t-old", 3600)),
        "/session/token-request" => Reply::json(&json!({"success": true, "data": {"sessionToken": "t-new",
            "validityInSecondsST": 3600, "masterToken": "master-2", "validityInSecondsMT": 14400}})),
        "/queries/v1/query-request" if earlier == 0 => Reply::json(
            &json!({"code": "390112", "success": false, "message": "Your session has expired.", "data": null}),
        ),
        "/queries/v1/query-request" => Reply::json(&json!({"success": true, "data": {
            "rowtype": serde_json::from_str::<Value>(ROWTYPE).unwrap(), "queryResultFormat": "json",
            "rowset": [["1"]], "queryId": "q"}})),
        _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
    })
    .await;
    let session = server.session("").await;
    let result = run(&session, "select 1", &[("1".into(), Binding::Int(1))], None).await.unwrap();
    assert_eq!(numbers(&result.collect(Arc::clone(&session)).await.unwrap().frame), [1]);
    let renew = &server.requests("/session/token-request")[0];
    assert_eq!(renew.header("authorization"), Some("Snowflake Token=\"master-1\""));
    assert!(renew.body.contains("t-old") && renew.body.contains("RENEW"));
    let queries = server.requests("/queries/v1/query-request");
    assert_eq!(queries[1].header("authorization"), Some("Snowflake Token=\"t-new\""));
}

#[tokio::test]
async fn a_session_token_about_to_expire_is_renewed_before_use() {
    let server = Replay::start(|req, _| match req.target.split('?').next().unwrap_or_default() {
        // valid for 30 s: inside the renewal margin from the start
        "/session/v1/login-request" => Reply::json(&login_answer("t-short", 30)),
        "/session/token-request" => Reply::json(&json!({"success": true, "data": {"sessionToken": "t-renewed",
            "validityInSecondsST": 3600}})),
        "/queries/v1/query-request" => Reply::json(&json!({"success": true, "data": {
            "rowtype": serde_json::from_str::<Value>(ROWTYPE).unwrap(), "queryResultFormat": "json",
            "rowset": [], "queryId": "q"}})),
        _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
    })
    .await;
    let session = server.session("").await;
    let result = run(&session, "select 1", &[], None).await.unwrap().collect(Arc::clone(&session)).await.unwrap();
    assert_eq!(result.frame.num_rows(), 0);
    assert_eq!(result.frame.schema().fields().len(), 1, "an empty result keeps its schema");
    let query = &server.requests("/queries/v1/query-request")[0];
    assert_eq!(query.header("authorization"), Some("Snowflake Token=\"t-renewed\""));
}

/// A server that logs in, never answers a query, and acknowledges aborts.
async fn never_answering() -> Replay {
    Replay::start(|req, _| match req.target.split('?').next().unwrap_or_default() {
        "/session/v1/login-request" => Reply::json(&login_answer("t", 3600)),
        "/queries/v1/query-request" => Reply { status: 200, body: b"{}".to_vec(), delay: Duration::from_secs(30) },
        "/queries/v1/abort-request" => Reply::json(&json!({"success": true, "data": null})),
        _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
    })
    .await
}

/// Waits (up to 2 s) until `server` has seen an abort request; the abort is sent from a task
/// of its own.
async fn wait_for_abort(server: &Replay) {
    for _ in 0..100 {
        if !server.requests("/queries/v1/abort-request").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_timed_out_query_is_cancelled_on_the_server() {
    let server = never_answering().await;
    let session = server.session("").await;
    let Err(err) = run(&session, "select slow()", &[], Some(Duration::from_millis(200))).await else {
        panic!("the query should time out")
    };
    assert!(matches!(err, crate::SnowflakeError::Timeout { .. }), "{err}");
    assert!(!err.is_retryable(), "a query that timed out is not retried");
    let query_id = server.requests("/queries/v1/query-request")[0].target.clone();
    wait_for_abort(&server).await;
    let abort = &server.requests("/queries/v1/abort-request")[0];
    let body: Value = serde_json::from_str(&abort.body).unwrap();
    assert_eq!(body["sqlText"], "select slow()");
    assert!(query_id.contains(body["requestId"].as_str().unwrap()), "the abort names the query's request id");
}

#[tokio::test]
async fn dropping_a_query_cancels_it() {
    let server = never_answering().await;
    let session = server.session("").await;
    let query = run(&session, "select forever()", &[], None);
    assert!(tokio::time::timeout(Duration::from_millis(200), query).await.is_err());
    wait_for_abort(&server).await;
    assert_eq!(server.requests("/queries/v1/abort-request").len(), 1);
}

#[tokio::test]
async fn the_session_is_closed_when_dropped() {
    let server = Replay::start(|req, _| match req.target.split('?').next().unwrap_or_default() {
        "/session/v1/login-request" => Reply::json(&login_answer("t-close", 3600)),
        "/session" => Reply::json(&json!({"success": true, "data": null})),
        _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
    })
    .await;
    drop(server.session("").await);
    for _ in 0..100 {
        if !server.requests("/session").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let close = &server.requests("/session")[0];
    assert!(close.target.contains("delete=true"));
    assert_eq!(close.header("authorization"), Some("Snowflake Token=\"t-close\""));
}

#[tokio::test]
async fn heartbeats_are_sent_when_asked_for() {
    let server = Replay::start(|req, _| match req.target.split('?').next().unwrap_or_default() {
        "/session/v1/login-request" => Reply::json(&login_answer("t", 3600)),
        "/session/heartbeat" => Reply::json(&json!({"success": true, "data": null})),
        _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
    })
    .await;
    let session =
        server.session("client_session_keep_alive = true\nclient_session_keep_alive_heartbeat_frequency = 1").await;
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(server.requests("/session/heartbeat").len() >= 2);
    let login: Value = serde_json::from_str(&server.requests("/session/v1/login-request")[0].body).unwrap();
    assert_eq!(login["data"]["SESSION_PARAMETERS"]["CLIENT_SESSION_KEEP_ALIVE"], true);
    drop(session);
}

#[tokio::test]
async fn several_statements_give_one_result_each_in_order() {
    let server = Replay::start(|req, _| {
        let one = |rows: Value, id: &str| {
            Reply::json(&json!({"success": true, "data": {
                "rowtype": serde_json::from_str::<Value>(ROWTYPE).unwrap(), "queryResultFormat": "json",
                "rowset": rows, "queryId": id}}))
        };
        match req.target.split('?').next().unwrap_or_default() {
            "/session/v1/login-request" => Reply::json(&login_answer("t", 3600)),
            "/queries/v1/query-request" => Reply::json(&json!({"success": true, "data": {
                "rowtype": [{"name": "multiple statement execution", "type": "text"}], "queryResultFormat": "json",
                "rowset": [["Multiple statements executed successfully."]], "queryId": "parent",
                "resultIds": "q-a,q-b"}})),
            "/queries/q-a/result" => one(json!([["1"]]), "q-a"),
            "/queries/q-b/result" => one(json!([["2"], ["3"]]), "q-b"),
            _ => Reply { status: 404, body: b"{}".to_vec(), delay: Duration::ZERO },
        }
    })
    .await;
    let session = server.session("").await;
    let answers =
        crate::query::run_statements(&session, "select 1; select 2 union all select 3", 2, None).await.unwrap();
    let mut frames = Vec::new();
    for answer in answers {
        frames.push(answer.collect(Arc::clone(&session)).await.unwrap());
    }
    assert_eq!(frames.iter().map(|r| numbers(&r.frame)).collect::<Vec<_>>(), [vec![1], vec![2, 3]]);
    assert_eq!(frames[1].query_id.as_deref(), Some("q-b"));
    let body: Value = serde_json::from_str(&server.requests("/queries/v1/query-request")[0].body).unwrap();
    assert_eq!(body["parameters"]["MULTI_STATEMENT_COUNT"], 2);
}
