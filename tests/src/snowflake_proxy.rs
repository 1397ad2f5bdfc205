//! A Snowflake protocol proxy in front of the fakesnow emulator, for tests: it makes the
//! emulator answer like real Snowflake and injects the faults the emulator cannot produce.
//!
//! fakesnow (started by `cargo xtask services`, URL in `CONNECTIONS_TEST_SNOWFLAKE_URL`) speaks
//! the REST protocol of the Snowflake connectors but omits response fields real Snowflake sends,
//! never chunks results, never expires tokens and never answers "query in progress". A
//! [`SnowflakeProxy`] sits between the client under test and fakesnow and forwards every request,
//! and on the way:
//!
//! - **login** (`/session/v1/login-request`): hands the client tokens of its own (a session token
//!   and a master token, mapped to fakesnow's token on every forwarded request) and adds
//!   `masterToken`, `validityInSeconds`, `masterValidityInSeconds`, `sessionId` and the
//!   `warehouseName`/`roleName` of `sessionInfo`;
//! - **token renewal** (`/session/token-request`, which fakesnow lacks): answers it itself, with
//!   a new session token for the same fakesnow session (`sessionToken`, `validityInSecondsST`,
//!   `masterToken`, `validityInSecondsMT`, `masterValidityInSeconds`); the old session token then
//!   answers 390112;
//! - **queries** (`/queries/v1/query-request`): adds `returned`, `version`, `finalRoleName` and
//!   `finalWarehouseName` (a failed statement gets `age`, `internalError`, `line`, `pos` and a
//!   `queryId`, which fakesnow leaves out there) and, for an Arrow result
//!   of more than [`ProxyConfig::first_chunk_rows`] rows, splits it: the first rows stay in
//!   `rowsetBase64`, the rest is listed in `chunks` (`url`, `rowCount`, `uncompressedSize`,
//!   `compressedSize`) as Arrow IPC streams served from the proxy's `/chunks/<result>/<n>`, with
//!   `chunkHeaders` and `qrmk` that the client must send back (a chunk request without the
//!   header `x-amz-server-side-encryption-customer-key` set to the `qrmk` gets 403, as S3 does);
//! - **polling** (`/queries/<id>/result`): serves results held back by
//!   [`SnowflakeProxy::query_in_progress`];
//! - **abort** (`/queries/v1/abort-request`, `/queries/<id>/abort-request`): recorded, and a
//!   query held in progress is cancelled (its next poll answers 000604);
//! - heartbeats and `/session?delete=true`: forwarded and counted.
//!
//! Faults are armed at any time through `&self` methods and each fires on the next matching
//! requests; [`SnowflakeProxy::counts`] tells a test what happened.
//!
//! The client under test reaches the proxy with the connector options `host`
//! ([`host`](SnowflakeProxy::host)), `port` ([`port`](SnowflakeProxy::port)) and
//! `protocol = "http"`; any `account`, `user` and `password` log in (fakesnow checks none).
//!
//! ```no_run
//! use std::time::Duration;
//! use connections_tests::snowflake_proxy::{ProxyConfig, SnowflakeProxy};
//!
//! // skips (printing a notice, counted by `cargo xtask test`) without the emulator
//! let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default().rows_per_chunk(50_000)) else { return };
//! let (host, port) = (proxy.host(), proxy.port()); // give these to the driver, protocol "http"
//! proxy.expire_session(1); // the next query answers 390112 until the client renews its token
//! proxy.query_in_progress(3); // the next query answers 333334; the 3rd poll gets the result
//! proxy.drop_chunk_connections(1); // the next chunk download is cut off halfway
//! proxy.slow_chunks(1, Duration::from_secs(2)); // the next chunk download waits 2 s first
//! // ... run the client ...
//! let counts = proxy.counts();
//! assert_eq!(counts.token_renewals, 1);
//! assert!(counts.chunks_served >= 2);
//! ```

mod chunks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The variable naming the emulator's URL (`http://127.0.0.1:PORT`), set by `cargo xtask test`.
pub const SNOWFLAKE_URL_VAR: &str = "CONNECTIONS_TEST_SNOWFLAKE_URL";

/// The header carrying a chunk's decryption key, which the proxy checks on chunk downloads.
pub const CHUNK_KEY_HEADER: &str = "x-amz-server-side-encryption-customer-key";

/// The header naming a chunk's encryption algorithm, sent along with [`CHUNK_KEY_HEADER`].
pub const CHUNK_ALGORITHM_HEADER: &str = "x-amz-server-side-encryption-customer-algorithm";

/// How a [`SnowflakeProxy`] shapes results and sessions.
///
/// ```
/// use connections_tests::snowflake_proxy::ProxyConfig;
///
/// let config = ProxyConfig::default().rows_per_chunk(10_000).first_chunk_rows(500);
/// assert_eq!(config.rows_per_chunk, 10_000);
/// assert_eq!(config.first_chunk_rows, 500);
/// ```
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Rows per chunk served from the proxy's URLs; 0 leaves every result inline. Default
    /// 100,000.
    pub rows_per_chunk: usize,
    /// Rows kept inline in `rowsetBase64` when a result is chunked; a result of at most this
    /// many rows is not chunked. Default: the same as `rows_per_chunk`.
    pub first_chunk_rows: usize,
    /// `validityInSeconds` of a session token, as the login and renewal answers report it.
    /// Default 3600 (the proxy only expires tokens when asked to, see
    /// [`SnowflakeProxy::expire_session`]).
    pub session_validity: Duration,
    /// `masterValidityInSeconds` of a master token. Default 14,400.
    pub master_validity: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            rows_per_chunk: 100_000,
            first_chunk_rows: 100_000,
            session_validity: Duration::from_secs(3600),
            master_validity: Duration::from_secs(14_400),
        }
    }
}

impl ProxyConfig {
    /// Sets [`rows_per_chunk`](Self::rows_per_chunk) and, to the same value,
    /// [`first_chunk_rows`](Self::first_chunk_rows).
    ///
    /// ```
    /// let config = connections_tests::snowflake_proxy::ProxyConfig::default().rows_per_chunk(7);
    /// assert_eq!((config.rows_per_chunk, config.first_chunk_rows), (7, 7));
    /// ```
    #[must_use]
    pub fn rows_per_chunk(mut self, rows: usize) -> Self {
        self.rows_per_chunk = rows;
        self.first_chunk_rows = rows;
        self
    }

    /// Sets [`first_chunk_rows`](Self::first_chunk_rows) (call after
    /// [`rows_per_chunk`](Self::rows_per_chunk)).
    ///
    /// ```
    /// let config = connections_tests::snowflake_proxy::ProxyConfig::default().first_chunk_rows(3);
    /// assert_eq!(config.first_chunk_rows, 3);
    /// ```
    #[must_use]
    pub fn first_chunk_rows(mut self, rows: usize) -> Self {
        self.first_chunk_rows = rows;
        self
    }
}

/// What a [`SnowflakeProxy`] has seen and done so far, from [`SnowflakeProxy::counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyCounts {
    /// Successful logins (`/session/v1/login-request`).
    pub logins: u64,
    /// Logins refused with 390100 (wrong user or password), see [`SnowflakeProxy::refuse_logins`].
    pub refused_logins: u64,
    /// Successful token renewals (`/session/token-request`).
    pub token_renewals: u64,
    /// Renewals refused with 390114 (master token expired), see
    /// [`SnowflakeProxy::expire_master_token`].
    pub master_expired_answers: u64,
    /// Query requests received (`/queries/v1/query-request`), expired ones included.
    pub queries: u64,
    /// Answers 390112 (session token expired), see [`SnowflakeProxy::expire_session`].
    pub session_expired_answers: u64,
    /// Results split into chunks.
    pub chunked_results: u64,
    /// Chunks served in full.
    pub chunks_served: u64,
    /// Chunk requests refused with 403 for a missing or wrong key header.
    pub chunks_refused: u64,
    /// Chunk downloads cut off halfway, see [`SnowflakeProxy::drop_chunk_connections`].
    pub chunks_dropped: u64,
    /// Chunk downloads delayed, see [`SnowflakeProxy::slow_chunks`].
    pub chunks_slowed: u64,
    /// The most chunk downloads in progress at once, each counted from its arrival until its
    /// answer starts (a [`slow_chunks`](SnowflakeProxy::slow_chunks) delay included): with
    /// slow chunks, how many the client fetches in parallel.
    pub max_chunks_in_flight: u64,
    /// Answers 333334 (query in progress), to the query request and to polls alike.
    pub in_progress_answers: u64,
    /// Polls of `/queries/<id>/result`.
    pub polls: u64,
    /// Abort requests (`/queries/v1/abort-request`); their bodies are in
    /// [`SnowflakeProxy::abort_requests`].
    pub aborts: u64,
    /// Heartbeats (`/session/heartbeat`).
    pub heartbeats: u64,
    /// Session deletions (`/session?delete=true`), i.e. logouts.
    pub session_closes: u64,
}

/// A running proxy in front of a Snowflake emulator; it stops when dropped.
///
/// It runs on a thread and Tokio runtime of its own, so it serves synchronous tests, async tests
/// on any runtime flavour, and child processes alike.
pub struct SnowflakeProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SnowflakeProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeProxy")
            .field("url", &self.url())
            .field("upstream", &self.inner.upstream)
            .finish_non_exhaustive()
    }
}

impl SnowflakeProxy {
    /// Starts a proxy on a free 127.0.0.1 port in front of the emulator at `upstream_url`
    /// (`http://host:port`, as in `CONNECTIONS_TEST_SNOWFLAKE_URL`).
    ///
    /// ```no_run
    /// use connections_tests::snowflake_proxy::{ProxyConfig, SnowflakeProxy};
    /// let proxy = SnowflakeProxy::start("http://127.0.0.1:8765", ProxyConfig::default());
    /// assert!(proxy.url().starts_with("http://127.0.0.1:"));
    /// ```
    ///
    /// # Panics
    /// If no port can be bound or the proxy's thread cannot start.
    pub fn start(upstream_url: &str, config: ProxyConfig) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a port on 127.0.0.1 for the proxy");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the proxy's address");
        let client = reqwest::Client::builder().no_gzip().no_proxy().build().expect("an HTTP client");
        let inner = Arc::new(Inner {
            upstream: upstream_url.trim_end_matches('/').to_owned(),
            base_url: format!("http://{addr}"),
            config,
            client,
            counters: Counters::default(),
            state: Mutex::new(ProxyState::default()),
        });
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let thread = std::thread::Builder::new()
            .name(format!("snowflake proxy {addr}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a Tokio listener");
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            if let Err(err) = result {
                                eprintln!("snowflake proxy: {err}");
                            }
                        }
                        _ = shutdown_rx => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("start the proxy's thread");
        Self { addr, inner, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// A proxy in front of the emulator at `CONNECTIONS_TEST_SNOWFLAKE_URL`, or `None` (with a
    /// printed notice, and the skip recorded for `cargo xtask test`, see
    /// [`server_url`](crate::server_url)) when it is unset.
    ///
    /// ```no_run
    /// use connections_tests::snowflake_proxy::{ProxyConfig, SnowflakeProxy};
    /// let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    /// # let _ = proxy;
    /// ```
    pub fn from_env(config: ProxyConfig) -> Option<Self> {
        crate::server_url(SNOWFLAKE_URL_VAR).map(|url| Self::start(&url, config))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1`: the connector option `host`.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The connector option `port`.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The emulator this proxy forwards to.
    pub fn upstream_url(&self) -> &str {
        &self.inner.upstream
    }

    /// Everything counted so far.
    pub fn counts(&self) -> ProxyCounts {
        self.inner.counters.snapshot()
    }

    /// The JSON bodies of the abort requests received so far, in order (each names the query
    /// in `requestId` and `sqlText`, as the connectors send it; `null` for a body-less
    /// `/queries/<id>/abort-request`). An abort naming a query held back by
    /// [`query_in_progress`](Self::query_in_progress) (by the `requestId` query parameter of its
    /// query request, or by query id) cancels it: its next poll answers 000604, "SQL execution
    /// canceled".
    pub fn abort_requests(&self) -> Vec<Value> {
        self.inner.state().aborts.clone()
    }

    /// The next `times` query requests (or polls) made with a valid session token answer
    /// 390112, "session expired", and that token stays expired: the client must renew it
    /// (`/session/token-request`) or log in again before its queries go through.
    pub fn expire_session(&self, times: u32) {
        self.inner.state().faults.expire_sessions += times;
    }

    /// The next `times` logins answer 390100, "Incorrect username or password was specified."
    /// (fakesnow accepts any password), without reaching the emulator.
    pub fn refuse_logins(&self, times: u32) {
        self.inner.state().faults.refuse_logins += times;
    }

    /// The next `times` token renewals answer 390114, "master token expired": the client must
    /// log in again.
    pub fn expire_master_token(&self, times: u32) {
        self.inner.state().faults.expire_masters += times;
    }

    /// The next query request runs, but answers 333334 ("in progress") with a `getResultUrl` of
    /// `/queries/<id>/result`; the `polls`-th poll of that URL gets the result, earlier ones
    /// 333334 again. `polls` 0 disarms it.
    pub fn query_in_progress(&self, polls: u32) {
        self.inner.state().faults.in_progress_polls = polls;
    }

    /// Every poll answered 333334 from now on waits `delay` first, as Snowflake holds a poll
    /// open while the query runs: a query in progress then stays in progress long enough to be
    /// cancelled (see [`abort_requests`](Self::abort_requests)). `Duration::ZERO` ends it.
    pub fn slow_polls(&self, delay: Duration) {
        self.inner.state().faults.poll_delay = delay;
    }

    /// The next `times` chunk downloads send their headers and half of their body, then close
    /// the connection.
    pub fn drop_chunk_connections(&self, times: u32) {
        self.inner.state().faults.drop_chunks += times;
    }

    /// The next `times` chunk downloads wait `delay` before answering.
    pub fn slow_chunks(&self, times: u32, delay: Duration) {
        let mut state = self.inner.state();
        state.faults.slow_chunks += times;
        state.faults.slow_delay = delay;
    }
}

impl Drop for SnowflakeProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the handlers share.
struct Inner {
    upstream: String,
    base_url: String,
    config: ProxyConfig,
    client: reqwest::Client,
    counters: Counters,
    state: Mutex<ProxyState>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sessions, stored results and armed faults.
#[derive(Default)]
struct ProxyState {
    /// By the session token the proxy handed out.
    sessions: HashMap<String, Session>,
    /// Session token by master token.
    masters: HashMap<String, String>,
    /// Chunked results: the key the client must send and the chunks' bytes.
    results: HashMap<u64, StoredResult>,
    /// Answers held back by the in-progress fault, by query id: the answer and polls to go.
    pending: HashMap<String, Pending>,
    aborts: Vec<Value>,
    faults: Faults,
    next_id: u64,
}

/// A result held back by the in-progress fault.
struct Pending {
    answer: Value,
    /// Polls to go, this one included.
    polls: u32,
    /// The `requestId` of the query request, which an abort request names.
    request_id: Option<String>,
    cancelled: bool,
}

struct Session {
    upstream_token: String,
    master_token: String,
    /// The `sessionId` the login reported.
    id: u64,
    expired: bool,
    /// `roleName` and `warehouseName` of the login's `sessionInfo`, for `finalRoleName` and
    /// `finalWarehouseName` of every result.
    role: String,
    warehouse: Option<String>,
}

struct StoredResult {
    key: String,
    chunks: Vec<Bytes>,
}

#[derive(Default)]
struct Faults {
    expire_sessions: u32,
    expire_masters: u32,
    refuse_logins: u32,
    in_progress_polls: u32,
    drop_chunks: u32,
    slow_chunks: u32,
    slow_delay: Duration,
    poll_delay: Duration,
}

/// [`ProxyCounts`], as atomics.
#[derive(Default)]
struct Counters {
    logins: AtomicU64,
    refused_logins: AtomicU64,
    token_renewals: AtomicU64,
    master_expired_answers: AtomicU64,
    queries: AtomicU64,
    session_expired_answers: AtomicU64,
    chunked_results: AtomicU64,
    chunks_served: AtomicU64,
    chunks_refused: AtomicU64,
    chunks_dropped: AtomicU64,
    chunks_slowed: AtomicU64,
    chunks_in_flight: AtomicU64,
    max_chunks_in_flight: AtomicU64,
    in_progress_answers: AtomicU64,
    polls: AtomicU64,
    aborts: AtomicU64,
    heartbeats: AtomicU64,
    session_closes: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ProxyCounts {
        let get = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        ProxyCounts {
            logins: get(&self.logins),
            refused_logins: get(&self.refused_logins),
            token_renewals: get(&self.token_renewals),
            master_expired_answers: get(&self.master_expired_answers),
            queries: get(&self.queries),
            session_expired_answers: get(&self.session_expired_answers),
            chunked_results: get(&self.chunked_results),
            chunks_served: get(&self.chunks_served),
            chunks_refused: get(&self.chunks_refused),
            chunks_dropped: get(&self.chunks_dropped),
            chunks_slowed: get(&self.chunks_slowed),
            max_chunks_in_flight: get(&self.max_chunks_in_flight),
            in_progress_answers: get(&self.in_progress_answers),
            polls: get(&self.polls),
            aborts: get(&self.aborts),
            heartbeats: get(&self.heartbeats),
            session_closes: get(&self.session_closes),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

/// A token no one can guess twice in a test run.
fn new_token(prefix: &str) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::SeqCst));
    let (a, b) = (hasher.finish(), std::collections::hash_map::RandomState::new().build_hasher().finish());
    format!("{prefix}{a:016x}{b:016x}")
}

/// The token of `Authorization: Snowflake Token="..."`.
fn request_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.trim().strip_prefix("Snowflake Token=\"")?.strip_suffix('"')?;
    Some(token.to_owned())
}

/// The one handler: routes by path.
async fn handle(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let path = parts.uri.path().to_owned();
    let query_string = parts.uri.query().unwrap_or_default().to_owned();
    let call = Call { method: parts.method, path, query: query_string, headers: parts.headers, body };
    match (call.method.clone(), call.path.as_str()) {
        (Method::POST, "/session/v1/login-request") => login(&inner, call).await,
        (Method::POST, "/session/token-request") => renew(&inner, &call),
        (Method::POST, "/queries/v1/query-request") => query(&inner, call).await,
        (Method::GET, path) if path.starts_with("/chunks/") => chunk(&inner, &call).await,
        (Method::GET, path) if path.starts_with("/queries/") && path.ends_with("/result") => poll(&inner, call).await,
        (Method::POST, path) if path.starts_with("/queries/") && path.ends_with("/abort-request") => {
            abort(&inner, call).await
        }
        (Method::POST, "/session/heartbeat") => {
            bump(&inner.counters.heartbeats);
            forward_response(&inner, call).await
        }
        (Method::POST, "/session") if call.query.contains("delete=true") => {
            bump(&inner.counters.session_closes);
            forward_response(&inner, call).await
        }
        _ => forward_response(&inner, call).await,
    }
}

/// One request as received.
struct Call {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// An upstream answer, or the proxy's own answer standing in for it.
enum Forwarded {
    Upstream { status: StatusCode, headers: HeaderMap, body: Bytes },
    Own(Response),
}

/// The session a request's token names, checked: `Err` is the answer to give instead (390112
/// for an expired token, counting one armed expiry when `expire` is set).
fn session_token(inner: &Inner, headers: &HeaderMap, expire: bool) -> Result<Option<String>, Value> {
    let Some(token) = request_token(headers) else { return Ok(None) };
    let mut state = inner.state();
    let expire_now = expire && state.faults.expire_sessions > 0;
    let Some(session) = state.sessions.get_mut(&token) else { return Ok(None) };
    if !session.expired && expire_now {
        session.expired = true;
        state.faults.expire_sessions -= 1;
    }
    let Some(session) = state.sessions.get(&token) else { return Ok(None) };
    if session.expired {
        bump(&inner.counters.session_expired_answers);
        return Err(json!({
            "data": { "nextAction": "RETRY_LOGIN", "authnMethod": "TOKEN", "errorCode": "390112" },
            "code": "390112",
            "message": "Your session has expired. Please login again.",
            "success": false,
        }));
    }
    Ok(Some(session.upstream_token.clone()))
}

/// Forwards `call` to the emulator with the session token mapped to the emulator's.
async fn forward(inner: &Inner, call: Call, expire: bool) -> Forwarded {
    let upstream_token = match session_token(inner, &call.headers, expire) {
        Ok(token) => token,
        Err(answer) => return Forwarded::Own(json_response(&answer)),
    };
    let mut url = format!("{}{}", inner.upstream, call.path);
    if !call.query.is_empty() {
        url = format!("{url}?{}", call.query);
    }
    let mut headers = call.headers;
    for name in [header::HOST, header::CONTENT_LENGTH, header::CONNECTION, header::TRANSFER_ENCODING] {
        headers.remove(name);
    }
    if let Some(token) = upstream_token
        && let Ok(value) = HeaderValue::from_str(&format!("Snowflake Token=\"{token}\""))
    {
        headers.insert(header::AUTHORIZATION, value);
    }
    let sent = inner.client.request(call.method, url).headers(headers).body(call.body).send().await;
    let response = match sent {
        Ok(response) => response,
        Err(err) => {
            return Forwarded::Own(
                (StatusCode::BAD_GATEWAY, format!("the emulator did not answer: {err}")).into_response(),
            );
        }
    };
    let status = response.status();
    let mut headers = response.headers().clone();
    for name in [header::CONTENT_LENGTH, header::CONNECTION, header::TRANSFER_ENCODING] {
        headers.remove(name);
    }
    match response.bytes().await {
        Ok(body) => Forwarded::Upstream { status, headers, body },
        Err(err) => {
            Forwarded::Own((StatusCode::BAD_GATEWAY, format!("the emulator's answer broke off: {err}")).into_response())
        }
    }
}

async fn forward_response(inner: &Inner, call: Call) -> Response {
    match forward(inner, call, false).await {
        Forwarded::Upstream { status, headers, body } => (status, headers, body).into_response(),
        Forwarded::Own(response) => response,
    }
}

/// A JSON body, gunzipped when the request says so.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let gzipped = headers.get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if gzipped {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut text).ok()?;
        serde_json::from_slice(&text).ok()
    } else {
        serde_json::from_slice(body).ok()
    }
}

fn json_response(value: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

/// A query-string parameter's value (percent-decoding left out: the names used are plain).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(key, _)| *key == name).map(|(_, v)| v.to_owned())
}

async fn login(inner: &Inner, call: Call) -> Response {
    {
        let mut state = inner.state();
        if state.faults.refuse_logins > 0 {
            state.faults.refuse_logins -= 1;
            bump(&inner.counters.refused_logins);
            return json_response(&json!({
                "data": { "nextAction": "RETRY_LOGIN", "authnMethod": "USERNAME_PASSWORD", "errorCode": "390100" },
                "code": "390100",
                "message": "Incorrect username or password was specified.",
                "success": false,
            }));
        }
    }
    let warehouse = query_param(&call.query, "warehouse").map(|w| w.to_uppercase());
    let role = query_param(&call.query, "roleName").map_or_else(|| "PUBLIC".to_owned(), |r| r.to_uppercase());
    let (status, headers, body) = match forward(inner, call, false).await {
        Forwarded::Upstream { status, headers, body } => (status, headers, body),
        Forwarded::Own(response) => return response,
    };
    let Ok(mut answer) = serde_json::from_slice::<Value>(&body) else {
        return (status, headers, body).into_response();
    };
    let upstream_token = answer.pointer("/data/token").and_then(Value::as_str).map(str::to_owned);
    if let (Some(upstream_token), Some(data)) = (upstream_token, answer.get_mut("data").and_then(Value::as_object_mut))
    {
        let token = new_token("proxy-session-");
        let master = new_token("proxy-master-");
        let session_id = {
            let mut state = inner.state();
            state.next_id += 1;
            let session_id = 1_000 + state.next_id;
            state.masters.insert(master.clone(), token.clone());
            state.sessions.insert(
                token.clone(),
                Session {
                    upstream_token,
                    master_token: master.clone(),
                    id: session_id,
                    expired: false,
                    role: role.clone(),
                    warehouse: warehouse.clone(),
                },
            );
            session_id
        };
        bump(&inner.counters.logins);
        data.insert("token".into(), json!(token));
        data.insert("masterToken".into(), json!(master));
        data.insert("validityInSeconds".into(), json!(inner.config.session_validity.as_secs()));
        data.insert("masterValidityInSeconds".into(), json!(inner.config.master_validity.as_secs()));
        data.insert("sessionId".into(), json!(session_id));
        data.entry("idToken").or_insert(Value::Null);
        data.entry("healthCheckInterval").or_insert(json!(45));
        data.entry("newClientForUpgrade").or_insert(Value::Null);
        if let Some(info) = data.entry("sessionInfo").or_insert(json!({})).as_object_mut() {
            info.entry("warehouseName").or_insert(json!(warehouse));
            info.entry("roleName").or_insert(json!(role));
        }
    }
    json_response(&answer)
}

/// `/session/token-request`: a new session token for the session of the master token.
fn renew(inner: &Inner, call: &Call) -> Response {
    let master = request_token(&call.headers).unwrap_or_default();
    let mut state = inner.state();
    if state.faults.expire_masters > 0 {
        state.faults.expire_masters -= 1;
        bump(&inner.counters.master_expired_answers);
        return json_response(&json!({
            "data": { "nextAction": "RETRY_LOGIN", "authnMethod": "TOKEN", "errorCode": "390114" },
            "code": "390114",
            "message": "Authentication token has expired.  The user must authenticate again.",
            "success": false,
        }));
    }
    let Some(old) = state.masters.get(&master).cloned() else {
        return json_response(&json!({
            "data": { "errorCode": "390113" },
            "code": "390113",
            "message": "Master token not found.",
            "success": false,
        }));
    };
    let Some(session) = state.sessions.get_mut(&old) else {
        return json_response(
            &json!({ "data": null, "code": "390113", "message": "Master token not found.", "success": false }),
        );
    };
    // the old session token stays known, expired, so that using it answers 390112
    session.expired = true;
    let renewed = Session {
        upstream_token: session.upstream_token.clone(),
        master_token: session.master_token.clone(),
        id: session.id,
        expired: false,
        role: session.role.clone(),
        warehouse: session.warehouse.clone(),
    };
    let session_id = renewed.id;
    let token = new_token("proxy-session-");
    state.sessions.insert(token.clone(), renewed);
    state.masters.insert(master.clone(), token.clone());
    bump(&inner.counters.token_renewals);
    let session_validity = inner.config.session_validity.as_secs();
    let master_validity = inner.config.master_validity.as_secs();
    json_response(&json!({
        "data": {
            "sessionToken": token,
            "validityInSecondsST": session_validity,
            "masterToken": master,
            "validityInSecondsMT": master_validity,
            "masterValidityInSeconds": master_validity,
            "sessionId": session_id,
        },
        "code": null,
        "message": null,
        "success": true,
    }))
}

async fn query(inner: &Inner, call: Call) -> Response {
    bump(&inner.counters.queries);
    let request_id = query_param(&call.query, "requestId");
    let (role, warehouse) = request_token(&call.headers)
        .and_then(|token| inner.state().sessions.get(&token).map(|s| (s.role.clone(), s.warehouse.clone())))
        .unwrap_or_else(|| ("PUBLIC".to_owned(), None));
    let (status, headers, body) = match forward(inner, call, true).await {
        Forwarded::Upstream { status, headers, body } => (status, headers, body),
        Forwarded::Own(response) => return response,
    };
    let Ok(mut answer) = serde_json::from_slice::<Value>(&body) else {
        return (status, headers, body).into_response();
    };
    if let Some(data) = answer.get_mut("data").and_then(Value::as_object_mut) {
        data.entry("finalRoleName").or_insert(json!(role));
        data.entry("finalWarehouseName").or_insert(json!(warehouse));
    }
    complete_error(&mut answer);
    complete_result(inner, &mut answer);
    let query_id = answer.pointer("/data/queryId").and_then(Value::as_str).map(str::to_owned);
    let polls = std::mem::take(&mut inner.state().faults.in_progress_polls);
    match query_id {
        Some(query_id) if polls > 0 => {
            let pending = Pending { answer, polls, request_id, cancelled: false };
            inner.state().pending.insert(query_id.clone(), pending);
            in_progress(inner, &query_id)
        }
        _ => json_response(&answer),
    }
}

/// The answer to a poll of a query an abort request cancelled.
fn cancelled(query_id: &str) -> Value {
    json!({
        "data": {
            "errorCode": "000604",
            "sqlState": "57014",
            "queryId": query_id,
            "age": 0,
            "internalError": false,
            "line": null,
            "pos": null,
        },
        "code": "000604",
        "message": "SQL execution canceled",
        "success": false,
    })
}

/// `/queries/v1/abort-request` (the query named by the `requestId` of its body) or
/// `/queries/<id>/abort-request`: recorded, marks a held-back query cancelled, forwarded.
async fn abort(inner: &Inner, call: Call) -> Response {
    bump(&inner.counters.aborts);
    let body = json_body(&call.headers, &call.body).unwrap_or(Value::Null);
    let by_id = call.path.strip_prefix("/queries/").and_then(|rest| rest.strip_suffix("/abort-request"));
    let by_id = by_id.filter(|id| *id != "v1").map(str::to_owned);
    let request_id = body.get("requestId").and_then(Value::as_str).map(str::to_owned);
    {
        let mut state = inner.state();
        for (query_id, pending) in &mut state.pending {
            let named = by_id.as_deref() == Some(query_id.as_str())
                || (request_id.is_some() && pending.request_id == request_id);
            if named {
                pending.cancelled = true;
            }
        }
        state.aborts.push(body);
    }
    if by_id.is_some() {
        // fakesnow knows only /queries/v1/abort-request
        return json_response(&json!({ "data": null, "code": null, "message": null, "success": true }));
    }
    forward_response(inner, call).await
}

/// The 333334 answer for `query_id`.
fn in_progress(inner: &Inner, query_id: &str) -> Response {
    bump(&inner.counters.in_progress_answers);
    json_response(&json!({
        "data": {
            "queryId": query_id,
            "getResultUrl": format!("/queries/{query_id}/result"),
            "queryAbortsAfterSecs": 300,
            "progressDesc": null,
        },
        "code": "333334",
        "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
        "success": true,
    }))
}

/// `GET /queries/<id>/result`: a held-back answer when its turn has come, else forwarded.
async fn poll(inner: &Inner, call: Call) -> Response {
    bump(&inner.counters.polls);
    if let Err(answer) = session_token(inner, &call.headers, true) {
        return json_response(&answer);
    }
    let query_id =
        call.path.trim_start_matches("/queries/").trim_end_matches("/result").trim_end_matches('/').to_owned();
    // Some(None): still in progress; Some(Some(answer)): ready (or cancelled); None: not held
    // back here
    let held = {
        let mut state = inner.state();
        match state.pending.get_mut(&query_id) {
            Some(pending) if pending.cancelled => {
                state.pending.remove(&query_id);
                Some(Some(cancelled(&query_id)))
            }
            Some(pending) if pending.polls > 1 => {
                pending.polls -= 1;
                Some(None)
            }
            Some(_) => state.pending.remove(&query_id).map(|pending| Some(pending.answer)),
            None => None,
        }
    };
    match held {
        Some(Some(answer)) => json_response(&answer),
        Some(None) => {
            // the lock is not held across the wait
            let delay = inner.state().faults.poll_delay;
            tokio::time::sleep(delay).await;
            in_progress(inner, &query_id)
        }
        None => forward_response(inner, call).await,
    }
}

/// Adds what real Snowflake sends with a failed statement and fakesnow leaves out: `age`,
/// `internalError`, `line`, `pos` and a `queryId`.
fn complete_error(answer: &mut Value) {
    if answer.get("success") != Some(&Value::Bool(false)) {
        return;
    }
    let Some(data) = answer.get_mut("data").and_then(Value::as_object_mut) else { return };
    if !data.contains_key("errorCode") {
        return;
    }
    data.entry("age").or_insert(json!(0));
    data.entry("internalError").or_insert(json!(false));
    data.entry("line").or_insert(Value::Null);
    data.entry("pos").or_insert(Value::Null);
    data.entry("queryId").or_insert_with(|| json!(new_query_id()));
}

/// A query id shaped like Snowflake's (`01b2c3d4-0000-1234-0000-00000000abcd`).
fn new_query_id() -> String {
    let hex = new_token("");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Adds what real Snowflake sends with a result and fakesnow leaves out, and splits a large
/// Arrow result into chunks.
fn complete_result(inner: &Inner, answer: &mut Value) {
    if answer.get("success") != Some(&Value::Bool(true)) {
        return;
    }
    answer.as_object_mut().map(|o| o.entry("code").or_insert(Value::Null));
    let Some(data) = answer.get_mut("data").and_then(Value::as_object_mut) else { return };
    let rowset_rows = data.get("rowset").and_then(Value::as_array).map(Vec::len);
    let total = data.get("total").and_then(Value::as_u64).unwrap_or(0);
    data.entry("returned").or_insert(json!(rowset_rows.map_or(total, |n| n as u64)));
    data.entry("queryResultFormat").or_insert(json!("json"));
    data.entry("version").or_insert(json!(1));
    data.entry("databaseProvider").or_insert(Value::Null);
    let rowset_base64 = data.get("rowsetBase64").and_then(Value::as_str).unwrap_or_default();
    if rowset_base64.is_empty() {
        return;
    }
    let Some(split) = chunks::split(rowset_base64, inner.config.first_chunk_rows, inner.config.rows_per_chunk) else {
        return;
    };
    let key = base64_key();
    let result_id = {
        let mut state = inner.state();
        state.next_id += 1;
        state.next_id
    };
    let listed: Vec<Value> = split
        .chunks
        .iter()
        .enumerate()
        .map(|(n, (bytes, rows))| {
            json!({
                "url": format!("{}/chunks/{result_id}/{n}", inner.base_url),
                "rowCount": rows,
                "uncompressedSize": bytes.len(),
                "compressedSize": bytes.len(),
            })
        })
        .collect();
    data.insert("rowsetBase64".into(), json!(split.inline_base64));
    data.insert("returned".into(), json!(split.inline_rows));
    data.insert("chunks".into(), Value::Array(listed));
    data.insert("qrmk".into(), json!(key));
    data.insert("chunkHeaders".into(), json!({ CHUNK_ALGORITHM_HEADER: "AES256", CHUNK_KEY_HEADER: key }));
    let chunks = split.chunks.into_iter().map(|(bytes, _)| Bytes::from(bytes)).collect();
    inner.state().results.insert(result_id, StoredResult { key, chunks });
    bump(&inner.counters.chunked_results);
}

/// One chunk download in progress, counted in [`ProxyCounts::max_chunks_in_flight`].
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn new(counters: &'a Counters) -> Self {
        let now = counters.chunks_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_chunks_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.chunks_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A random 256-bit key, base64, like a `qrmk`.
fn base64_key() -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = new_token("").bytes().take(32).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `GET /chunks/<result>/<n>`: one chunk, checked and possibly faulty.
async fn chunk(inner: &Inner, call: &Call) -> Response {
    let mut parts = call.path.trim_start_matches("/chunks/").split('/');
    let (Some(Ok(result_id)), Some(Ok(n))) =
        (parts.next().map(str::parse::<u64>), parts.next().map(str::parse::<usize>))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (bytes, key) = {
        let state = inner.state();
        let Some(result) = state.results.get(&result_id) else { return StatusCode::NOT_FOUND.into_response() };
        let Some(bytes) = result.chunks.get(n) else { return StatusCode::NOT_FOUND.into_response() };
        (bytes.clone(), result.key.clone())
    };
    if call.headers.get(CHUNK_KEY_HEADER).and_then(|v| v.to_str().ok()) != Some(key.as_str()) {
        bump(&inner.counters.chunks_refused);
        return (StatusCode::FORBIDDEN, "AccessDenied: the chunk's key header is missing or wrong").into_response();
    }
    let _in_flight = InFlight::new(&inner.counters);
    let (slow, drop_it) = {
        let mut state = inner.state();
        let faults = &mut state.faults;
        let slow = (faults.slow_chunks > 0).then(|| {
            faults.slow_chunks -= 1;
            faults.slow_delay
        });
        let drop_it = faults.drop_chunks > 0;
        if drop_it {
            faults.drop_chunks -= 1;
        }
        (slow, drop_it)
    };
    if let Some(delay) = slow {
        bump(&inner.counters.chunks_slowed);
        tokio::time::sleep(delay).await;
    }
    let length = bytes.len();
    let headers =
        [(header::CONTENT_TYPE, "application/octet-stream".to_owned()), (header::CONTENT_LENGTH, length.to_string())];
    if drop_it {
        bump(&inner.counters.chunks_dropped);
        let half = bytes.slice(..length / 2);
        let parts: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(half), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped by the proxy"))];
        return (headers, Body::from_stream(futures_util::stream::iter(parts))).into_response();
    }
    bump(&inner.counters.chunks_served);
    (headers, bytes).into_response()
}
