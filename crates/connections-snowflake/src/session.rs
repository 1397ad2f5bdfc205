//! A logged-in Snowflake session: login (through snowflake-api's transport, with this library's
//! own login request), tokens and their renewal, authorised requests that renew or log in again
//! on an expired session (390112, 390114, 390104), keep-alive heartbeats, and the close of the
//! session when it is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest_middleware::ClientWithMiddleware;
use serde_json::{Value, json};
use snowflake_api::connection::{Connection as ApiConnection, QueryType};

use crate::auth::Auth;
use crate::config::SnowflakeConfig;
use crate::error::{LOGIN_AGAIN, MASTER_TOKEN_EXPIRED, SESSION_EXPIRED, SnowflakeError};
use crate::secret::Secret;
use crate::transport::{CLIENT_APP_ID, CLIENT_APP_VERSION, client};

/// Renew the session token this long before it expires.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

struct Tokens {
    session: Secret,
    master: Option<Secret>,
    /// When the session token expires, if the server said.
    expires: Option<Instant>,
    /// Bumped at every login or renewal, so that concurrent callers renew once.
    generation: u64,
}

/// A logged-in session. Cheap to share (`Arc`); closed on the server when the last handle
/// drops. `Debug` never shows a token.
pub struct Session {
    config: SnowflakeConfig,
    http: ClientWithMiddleware,
    api: ApiConnection,
    base: String,
    tokens: tokio::sync::Mutex<Tokens>,
    sequence: AtomicU64,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
    server_id: Option<i64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connection", &self.config.name)
            .field("endpoint", &self.base)
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Logs in, and starts the heartbeat when `client_session_keep_alive` asks for it.
    pub async fn open(config: SnowflakeConfig) -> Result<Arc<Self>, SnowflakeError> {
        let http = client(&config.account, &config.endpoint)?;
        let api = ApiConnection::new_with_middware(http.clone());
        let base = config.endpoint.base_url();
        let (tokens, server_id) = login(&api, &config).await?;
        let session = Arc::new(Self {
            http,
            api,
            base,
            tokens: tokio::sync::Mutex::new(tokens),
            sequence: AtomicU64::new(0),
            heartbeat: Mutex::new(None),
            server_id,
            config,
        });
        if session.config.keep_alive {
            let handle = tokio::spawn(heartbeat(Arc::downgrade(&session), session.config.heartbeat));
            *session.heartbeat.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        }
        tracing::debug!(connection = %session.config.name, endpoint = %session.base, "logged in to Snowflake");
        Ok(session)
    }

    /// The configuration the session was made from.
    pub fn config(&self) -> &SnowflakeConfig {
        &self.config
    }

    /// The HTTP client (snowflake-api's, with the endpoint middleware).
    pub fn http(&self) -> &ClientWithMiddleware {
        &self.http
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The next sequence number of a query of this session.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The session token's `Authorization` header value and its generation, renewing the token
    /// first when it is about to expire.
    pub(crate) async fn authorization(&self) -> Result<(String, u64), SnowflakeError> {
        let mut tokens = self.tokens.lock().await;
        let expiring = tokens.expires.is_some_and(|at| Instant::now() + RENEW_MARGIN >= at);
        if expiring && tokens.master.is_some() {
            let generation = tokens.generation;
            *tokens = self.renew_or_login(&tokens, SESSION_EXPIRED).await?;
            tokens.generation = generation + 1;
        }
        Ok((format!("Snowflake Token=\"{}\"", tokens.session.expose()), tokens.generation))
    }

    /// After an answer with an expiry code: renews the token (390112) or logs in again
    /// (390114, 390104), unless another caller already did since `seen`.
    pub(crate) async fn refresh(&self, seen: u64, code: &str) -> Result<(), SnowflakeError> {
        let mut tokens = self.tokens.lock().await;
        if tokens.generation != seen {
            return Ok(());
        }
        tracing::info!(connection = %self.config.name, code, "Snowflake session expired; renewing");
        *tokens = self.renew_or_login(&tokens, code).await?;
        tokens.generation = seen + 1;
        Ok(())
    }

    async fn renew_or_login(&self, old: &Tokens, code: &str) -> Result<Tokens, SnowflakeError> {
        if code == SESSION_EXPIRED
            && let Some(master) = &old.master
        {
            match self.renew(old, master).await {
                Ok(tokens) => return Ok(tokens),
                Err(error) => {
                    tracing::info!(connection = %self.config.name, %error, "renewal refused; logging in again");
                }
            }
        }
        debug_assert!(matches!(code, SESSION_EXPIRED | MASTER_TOKEN_EXPIRED | LOGIN_AGAIN) || !code.is_empty());
        Ok(login(&self.api, &self.config).await?.0)
    }

    async fn renew(&self, old: &Tokens, master: &Secret) -> Result<Tokens, SnowflakeError> {
        let body = json!({ "oldSessionToken": old.session.expose(), "requestType": "RENEW" });
        let auth = format!("Snowflake Token=\"{}\"", master.expose());
        let request = self.api.request::<Value>(QueryType::TokenRequest, &self.config.account, &[], Some(&auth), body);
        let answer = self.timed("token renewal", self.config.login_timeout, request).await?;
        let data = envelope("token renewal", answer)?;
        let session = data
            .get("sessionToken")
            .and_then(Value::as_str)
            .ok_or_else(|| SnowflakeError::protocol("token renewal", "no `sessionToken` in the answer"))?;
        let master = data.get("masterToken").and_then(Value::as_str).map(Secret::new).or_else(|| old.master.clone());
        let expires = validity(&data, &["validityInSecondsST", "validityInSeconds"]);
        Ok(Tokens { session: Secret::new(session), master, expires, generation: 0 })
    }

    async fn timed<T>(
        &self,
        what: &str,
        limit: Duration,
        fut: impl Future<Output = Result<T, snowflake_api::connection::ConnectionError>>,
    ) -> Result<T, SnowflakeError> {
        match tokio::time::timeout(limit, fut).await {
            Ok(result) => result.map_err(|e| SnowflakeError::transport(what, e)),
            Err(_) => {
                Err(SnowflakeError::Timeout { what: what.to_owned(), seconds: limit.as_secs_f64(), query_id: None })
            }
        }
    }

    /// A POST to `path` (with `params`) with the session's authorisation, as JSON; an expired
    /// session is renewed (or logged in again) and the request sent once more.
    pub(crate) async fn post(
        &self,
        what: &str,
        path: &str,
        params: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, SnowflakeError> {
        Ok(self.post_result(what, path, params, body, false).await?.0)
    }

    /// [`post`](Self::post) of a statement: with `split`, the inline Arrow rows
    /// (`rowsetBase64`) come decoded beside the answer, see [`split_rowset`].
    pub(crate) async fn post_result(
        &self,
        what: &str,
        path: &str,
        params: &[(&str, String)],
        body: &Value,
        split: bool,
    ) -> Result<(Value, Option<Vec<u8>>), SnowflakeError> {
        let url = format!("{}{path}", self.base);
        let request = |auth| self.http.post(&url).query(params).header("Authorization", auth).json(body);
        self.authorised(what, request, split).await
    }

    /// A GET of `path` (a server-relative URL such as a `getResultUrl`) with the session's
    /// authorisation, as JSON; a statement's inline Arrow rows come decoded beside the answer,
    /// see [`split_rowset`].
    pub(crate) async fn get_result(&self, what: &str, path: &str) -> Result<(Value, Option<Vec<u8>>), SnowflakeError> {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        self.authorised(what, |auth| self.http.get(&url).header("Authorization", auth), true).await
    }

    async fn authorised(
        &self,
        what: &str,
        request: impl Fn(String) -> reqwest_middleware::RequestBuilder,
        split: bool,
    ) -> Result<(Value, Option<Vec<u8>>), SnowflakeError> {
        let mut refreshed = false;
        loop {
            let (auth, generation) = self.authorization().await?;
            let builder = request(auth).header("Accept", "application/snowflake");
            let builder = match self.config.network_timeout {
                Some(limit) => builder.timeout(limit),
                None => builder,
            };
            let response = builder.send().await.map_err(|e| SnowflakeError::transport(what, e))?;
            let status = response.status();
            let (bytes, rowset) = if split {
                read_split(response)
                    .await
                    .map_err(|e| SnowflakeError::transport(what, e))?
                    .map_err(|problem| SnowflakeError::protocol(what, problem))?
            } else {
                (read_body(response).await.map_err(|e| SnowflakeError::transport(what, e))?, None)
            };
            let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
                SnowflakeError::protocol(
                    what,
                    format!("HTTP {status} with a body that is not JSON ({} bytes)", bytes.len()),
                )
            })?;
            let code = answer.get("code").and_then(Value::as_str).unwrap_or_default().to_owned();
            if !refreshed && matches!(code.as_str(), SESSION_EXPIRED | MASTER_TOKEN_EXPIRED | LOGIN_AGAIN) {
                refreshed = true;
                self.refresh(generation, &code).await?;
                continue;
            }
            return Ok((answer, rowset));
        }
    }

    /// Tells the server the session is still in use.
    pub async fn heartbeat(&self) -> Result<(), SnowflakeError> {
        let answer = self
            .post("heartbeat", "/session/heartbeat", &[("requestId", uuid::Uuid::new_v4().to_string())], &json!({}))
            .await?;
        envelope("heartbeat", answer).map(drop)
    }

    /// Closes the session on the server.
    pub async fn close(&self) -> Result<(), SnowflakeError> {
        let auth = {
            let tokens = self.tokens.lock().await;
            format!("Snowflake Token=\"{}\"", tokens.session.expose())
        };
        let request = self.api.request::<Value>(
            QueryType::CloseSession,
            &self.config.account,
            &[("delete", "true")],
            Some(&auth),
            json!({}),
        );
        let answer = self.timed("closing the session", Duration::from_secs(10), request).await?;
        envelope("closing the session", answer).map(drop)
    }
}

impl Drop for Session {
    /// Stops the heartbeat and closes the session on the server (in the background, when a
    /// Tokio runtime is running).
    fn drop(&mut self) {
        if let Some(handle) = self.heartbeat.lock().unwrap_or_else(PoisonError::into_inner).take() {
            handle.abort();
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let Ok(tokens) = self.tokens.try_lock() else { return };
        let auth = format!("Snowflake Token=\"{}\"", tokens.session.expose());
        let url = format!("{}/session", self.base);
        let http = self.http.clone();
        let name = self.config.name.clone();
        runtime.spawn(async move {
            let sent =
                http.post(&url).query(&[("delete", "true")]).header("Authorization", auth).json(&json!({})).send();
            match tokio::time::timeout(Duration::from_secs(10), sent).await {
                Ok(Ok(_)) => tracing::debug!(connection = %name, "Snowflake session closed"),
                Ok(Err(error)) => tracing::debug!(connection = %name, %error, "closing the Snowflake session failed"),
                Err(_) => tracing::debug!(connection = %name, "closing the Snowflake session timed out"),
            }
        });
    }
}

async fn heartbeat(session: Weak<Session>, every: Duration) {
    let every = every.max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let Some(session) = session.upgrade() else { return };
        if let Err(error) = session.heartbeat().await {
            tracing::warn!(connection = %session.config.name, %error, "Snowflake heartbeat failed");
        }
    }
}

/// Logs in with this library's own login request, sent through snowflake-api's transport.
async fn login(api: &ApiConnection, config: &SnowflakeConfig) -> Result<(Tokens, Option<i64>), SnowflakeError> {
    let mut data = json!({
        "CLIENT_APP_ID": CLIENT_APP_ID,
        "CLIENT_APP_VERSION": CLIENT_APP_VERSION,
        "SVN_REVISION": "",
        "ACCOUNT_NAME": config.account_name(),
        "CLIENT_ENVIRONMENT": {
            "APPLICATION": CLIENT_APP_ID,
            "OS": std::env::consts::OS,
            "OS_VERSION": std::env::consts::ARCH,
            "OCSP_MODE": "FAIL_OPEN",
        },
        "SESSION_PARAMETERS": session_parameters(config),
    });
    if let Some(user) = &config.user {
        data["LOGIN_NAME"] = json!(user);
    }
    match &config.auth {
        Auth::Password { password } => data["PASSWORD"] = json!(password.expose()),
        Auth::KeyPair { private_key_pem } => {
            let user = config.user.as_deref().unwrap_or_default().to_ascii_uppercase();
            let jwt = snowflake_jwt::generate_jwt_token(
                private_key_pem.expose(),
                &format!("{}.{user}", config.account_name()),
            )
            .map_err(|e| SnowflakeError::Login(format!("cannot sign the key-pair JWT: {e}")))?;
            data["AUTHENTICATOR"] = json!("SNOWFLAKE_JWT");
            data["TOKEN"] = json!(jwt);
        }
        Auth::OAuth { token } => {
            let token =
                token.read().map_err(|e| SnowflakeError::Login(format!("cannot read the OAuth token file: {e}")))?;
            data["AUTHENTICATOR"] = json!("OAUTH");
            data["TOKEN"] = json!(token.expose());
        }
    }
    let mut params: Vec<(&str, &str)> = Vec::new();
    for (key, value) in [
        ("databaseName", &config.database),
        ("schemaName", &config.schema),
        ("warehouse", &config.warehouse),
        ("roleName", &config.role),
    ] {
        if let Some(value) = value {
            params.push((key, value));
        }
    }
    let request =
        api.request::<Value>(QueryType::LoginRequest, &config.account, &params, None, json!({ "data": data }));
    let answer = match tokio::time::timeout(config.login_timeout, request).await {
        Ok(answer) => answer.map_err(|e| SnowflakeError::transport("login", e))?,
        Err(_) => {
            return Err(SnowflakeError::Timeout {
                what: "login".into(),
                seconds: config.login_timeout.as_secs_f64(),
                query_id: None,
            });
        }
    };
    let data = envelope("login", answer)?;
    let token = data
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| SnowflakeError::protocol("login", "no `token` in the answer"))?;
    let tokens = Tokens {
        session: Secret::new(token),
        master: data.get("masterToken").and_then(Value::as_str).map(Secret::new),
        expires: validity(&data, &["validityInSeconds"]),
        generation: 0,
    };
    Ok((tokens, data.get("sessionId").and_then(Value::as_i64)))
}

fn session_parameters(config: &SnowflakeConfig) -> Value {
    let mut params = config.session_parameters.clone();
    params.entry("CLIENT_SESSION_KEEP_ALIVE").or_insert(json!(config.keep_alive));
    Value::Object(params)
}

fn validity(data: &Value, keys: &[&str]) -> Option<Instant> {
    let secs = keys.iter().find_map(|k| data.get(*k).and_then(Value::as_i64))?;
    u64::try_from(secs).ok().map(|s| Instant::now() + Duration::from_secs(s))
}

/// The `data` of a successful answer, or the server's error.
pub(crate) fn envelope(what: &str, mut answer: Value) -> Result<Value, SnowflakeError> {
    if answer.get("success").and_then(Value::as_bool) == Some(true) {
        return Ok(answer.get_mut("data").map_or(Value::Null, Value::take));
    }
    Err(server_error(what, &answer))
}

/// The server's error in an answer.
pub(crate) fn server_error(what: &str, answer: &Value) -> SnowflakeError {
    let data = answer.get("data");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let code = text(answer.get("code")).or_else(|| text(data.and_then(|d| d.get("errorCode"))));
    let Some(code) = code else {
        return SnowflakeError::protocol(what, "an unsuccessful answer without an error code");
    };
    SnowflakeError::Server {
        code,
        sql_state: text(data.and_then(|d| d.get("sqlState"))),
        message: text(answer.get("message")).unwrap_or_default(),
        query_id: text(data.and_then(|d| d.get("queryId"))),
    }
}

/// Milliseconds since the epoch, for `querySubmissionTime`.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A bound on what is reserved up front, whatever the server announces.
const MAX_RESERVE: u64 = 1 << 30;

/// A response's body, read chunk by chunk into one buffer sized by its `Content-Length`: the
/// body is held once, not as a list of chunks and again as their concatenation.
pub(crate) async fn read_body(mut response: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let announced = response.content_length().unwrap_or(0).min(MAX_RESERVE);
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A statement answer's body with its inline Arrow rows taken out, as [`split_rowset`] gives
/// it, but decoded while the body streams in (see [`RowsetSplitter`]): the base64 text is never
/// held whole, only its decoded bytes, in a buffer sized from the `Content-Length`. Without a
/// `Content-Length` the body is read whole and split by [`split_rowset`].
async fn read_split(mut response: reqwest::Response) -> reqwest::Result<Result<(Vec<u8>, Option<Vec<u8>>), String>> {
    let Some(announced) = response.content_length() else {
        return Ok(split_rowset(read_body(response).await?));
    };
    let mut splitter = RowsetSplitter::new(usize::try_from(announced.min(MAX_RESERVE)).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        if let Err(problem) = splitter.push(&chunk) {
            return Ok(Err(problem));
        }
    }
    Ok(Ok(splitter.finish()))
}

/// `"rowsetBase64":"`: the key whose string holds a statement answer's inline Arrow rows (a
/// literal match is a key: inside a JSON string its quotes would be escaped).
const MARKER: &[u8] = br#""rowsetBase64":""#;

/// Where a [`RowsetSplitter`] is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Before the marker: the bytes are JSON.
    Before,
    /// Inside the rowset's string: the bytes are base64, decoded as they come.
    Inside,
    /// After the rowset's closing quote: JSON again.
    After,
    /// The body cannot be split (an escape inside the text): kept as it came.
    Whole,
}

/// Splits a body fed chunk by chunk into its JSON (with `"rowsetBase64":""`) and the decoded
/// rows, the same result as [`split_rowset`] on the whole body. A marker or a base64 quantum may
/// straddle chunks.
pub(crate) struct RowsetSplitter {
    json: Vec<u8>,
    rows: Vec<u8>,
    /// Base64 characters of a quantum not complete yet (fewer than 4).
    pending: Vec<u8>,
    place: Place,
    /// The announced body length, to size `rows` when the marker is found.
    announced: usize,
    /// Body bytes seen so far.
    seen: usize,
}

impl RowsetSplitter {
    /// A splitter for a body of `announced` bytes (0 if unknown).
    pub(crate) fn new(announced: usize) -> Self {
        Self {
            json: Vec::with_capacity(announced.min(64 * 1024)),
            rows: Vec::new(),
            pending: Vec::with_capacity(4),
            place: Place::Before,
            announced,
            seen: 0,
        }
    }

    /// Feeds the next part of the body.
    ///
    /// # Errors
    /// When the rowset's text is not base64.
    pub(crate) fn push(&mut self, mut chunk: &[u8]) -> Result<(), String> {
        loop {
            match self.place {
                Place::Before => {
                    let Some(end) = self.marker_end(chunk) else {
                        self.json.extend_from_slice(chunk);
                        self.seen += chunk.len();
                        return Ok(());
                    };
                    self.json.extend_from_slice(&chunk[..end]);
                    self.seen += end;
                    let left = self.announced.saturating_sub(self.seen);
                    self.rows.reserve_exact(left / 4 * 3 + 3);
                    self.place = Place::Inside;
                    chunk = &chunk[end..];
                }
                Place::Inside => {
                    let stop = chunk.iter().position(|&b| b == b'"' || b == b'\\');
                    match stop {
                        Some(i) if chunk[i] == b'\\' => {
                            // an escape: give up splitting, keep the text as it came
                            self.unsplit(&chunk[..i]);
                            chunk = &chunk[i..];
                        }
                        Some(i) => {
                            self.decode(&chunk[..i], true)?;
                            self.seen += i;
                            self.place = Place::After;
                            chunk = &chunk[i..];
                        }
                        None => {
                            self.seen += chunk.len();
                            return self.decode(chunk, false);
                        }
                    }
                }
                Place::After | Place::Whole => {
                    self.json.extend_from_slice(chunk);
                    return Ok(());
                }
            }
        }
    }

    /// The JSON and the decoded rows (`None` when the body holds no rowset text or one that
    /// could not be split: then the JSON is the body as it came).
    pub(crate) fn finish(mut self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self.place {
            Place::After if !self.rows.is_empty() => (self.json, Some(self.rows)),
            Place::Inside => {
                // the string never closed: not JSON, which the caller reports
                self.unsplit(&[]);
                (self.json, None)
            }
            _ => (self.json, None),
        }
    }

    /// Where the marker ends in `chunk`, when it ends there (it may have begun in the JSON
    /// held so far).
    fn marker_end(&self, chunk: &[u8]) -> Option<usize> {
        let tail = &self.json[self.json.len().saturating_sub(MARKER.len() - 1)..];
        let head = &chunk[..chunk.len().min(MARKER.len() - 1)];
        let mut window = Vec::with_capacity(tail.len() + head.len());
        window.extend_from_slice(tail);
        window.extend_from_slice(head);
        if let Some(at) = find(&window, MARKER) {
            return Some(at + MARKER.len() - tail.len());
        }
        find(chunk, MARKER).map(|at| at + MARKER.len())
    }

    /// Decodes `text`, keeping an incomplete quantum for later unless `last`.
    fn decode(&mut self, mut text: &[u8], last: bool) -> Result<(), String> {
        use base64::Engine as _;
        let engine = &base64::engine::general_purpose::STANDARD;
        let not_base64 = |e: base64::DecodeError| format!("`rowsetBase64` is not base64: {e}");
        if !self.pending.is_empty() {
            let take = (4 - self.pending.len()).min(text.len());
            self.pending.extend_from_slice(&text[..take]);
            text = &text[take..];
            if self.pending.len() == 4 || last {
                engine.decode_vec(&self.pending, &mut self.rows).map_err(not_base64)?;
                self.pending.clear();
            }
        }
        let whole = if last { text.len() } else { text.len() / 4 * 4 };
        engine.decode_vec(&text[..whole], &mut self.rows).map_err(not_base64)?;
        self.pending.extend_from_slice(&text[whole..]);
        Ok(())
    }

    /// Gives up splitting: the text decoded so far goes back into the JSON as base64 (whole
    /// quanta encode back to the very characters they came from), then `more` of it.
    fn unsplit(&mut self, more: &[u8]) {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(&self.rows);
        self.json.extend_from_slice(text.as_bytes());
        self.json.extend_from_slice(&self.pending);
        self.json.extend_from_slice(more);
        self.rows = Vec::new();
        self.pending.clear();
        self.place = Place::Whole;
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Takes a statement answer's inline Arrow rows out of the response body: `rowsetBase64` is
/// decoded in place, inside the body's own buffer, which then becomes the bytes of the IPC
/// stream; the rest of the body (small) is returned as the JSON to parse. So the base64 text
/// and its decoded bytes are never held side by side. The body as it came (and `None`) when it
/// holds no such text or text this cannot borrow (JSON escapes): the caller then reads
/// `rowsetBase64` from the parsed answer.
///
/// # Errors
/// When the text is not base64 (the body is then spoilt).
pub(crate) fn split_rowset(mut body: Vec<u8>) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    #[derive(serde::Deserialize)]
    struct Peek<'a> {
        #[serde(borrow, default)]
        data: Option<PeekData<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct PeekData<'a> {
        #[serde(rename = "rowsetBase64", borrow, default)]
        rowset_base64: Option<&'a str>,
    }
    /// Base64 characters decoded at a time (a multiple of 4).
    const BLOCK: usize = 64 * 1024;
    use base64::Engine as _;
    let (start, end) = match serde_json::from_slice::<Peek<'_>>(&body) {
        Ok(Peek { data: Some(PeekData { rowset_base64: Some(text) }) }) if !text.is_empty() => {
            let start = (text.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
            (start, start + text.len())
        }
        _ => return Ok((body, None)),
    };
    // each block decodes to at most 3/4 of its length, so the bytes written never pass the
    // bytes still to read
    let mut block = vec![0_u8; BLOCK / 4 * 3];
    let (mut read, mut write) = (start, start);
    while read < end {
        let stop = (read + BLOCK).min(end);
        let n = base64::engine::general_purpose::STANDARD
            .decode_slice(&body[read..stop], &mut block)
            .map_err(|e| format!("`rowsetBase64` is not base64: {e}"))?;
        body[write..write + n].copy_from_slice(&block[..n]);
        (read, write) = (stop, write + n);
    }
    let mut json = Vec::with_capacity(body.len() - (end - start));
    json.extend_from_slice(&body[..start]);
    json.extend_from_slice(&body[end..]);
    body.copy_within(start..write, 0);
    body.truncate(write - start);
    body.shrink_to_fit();
    Ok((json, Some(body)))
}

#[cfg(test)]
mod split_tests {
    use super::{RowsetSplitter, split_rowset};

    /// The body fed to a [`RowsetSplitter`] in pieces cut at `cuts`.
    fn streamed(body: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
        let mut splitter = RowsetSplitter::new(body.len());
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
            splitter.push(&body[from..cut])?;
            from = cut;
        }
        Ok(splitter.finish())
    }

    #[test]
    fn streaming_gives_what_splitting_the_whole_body_gives_at_every_cut() {
        use base64::Engine as _;
        let rows: Vec<u8> = (0..1_001_u32).map(|i| (i % 251) as u8).collect();
        let text = base64::engine::general_purpose::STANDARD.encode(&rows);
        let bodies = [
            format!(r#"{{"data":{{"rowtype":[],"rowsetBase64":"{text}","total":3}},"success":true}}"#),
            r#"{"data":{"rowtype":[],"rowsetBase64":"","total":0},"success":true}"#.to_owned(), // empty rowset
            r#"{"data":{"rowsetBase64":"aGVs\/bG8="},"success":true}"#.to_owned(),              // an escape
            r#"{"data":{"rowset":[["1"]]},"success":true}"#.to_owned(),                         // no marker
            r#"{"data":null,"code":"390112","success":false}"#.to_owned(),
            r#"{"data":{"rowsetBase64":"aGVsbG8"#.to_owned(), // cut off
        ];
        for body in &bodies {
            let body = body.as_bytes();
            let whole = split_rowset(body.to_vec()).unwrap();
            for cut in 0..=body.len() {
                assert_eq!(streamed(body, &[cut]).unwrap(), whole, "cut at {cut}");
            }
            // every byte a chunk of its own: marker and quanta straddle chunks everywhere
            let every: Vec<usize> = (1..body.len()).collect();
            assert_eq!(streamed(body, &every).unwrap(), whole);
        }
        assert_eq!(streamed(bodies[0].as_bytes(), &[]).unwrap().1.as_deref(), Some(rows.as_slice()));
    }

    #[test]
    fn text_that_is_not_base64_is_an_error_wherever_it_is_cut() {
        let body = br#"{"data":{"rowsetBase64":"not base64!"}}"#;
        for cut in 0..=body.len() {
            assert!(streamed(body, &[cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn the_inline_rows_are_decoded_out_of_the_body() {
        let body = br#"{"data":{"rowtype":[],"rowsetBase64":"aGVsbG8=","queryId":"q"},"success":true}"#.to_vec();
        let (rest, rows) = split_rowset(body).unwrap();
        assert_eq!(rows.as_deref(), Some(&b"hello"[..]));
        let answer: serde_json::Value = serde_json::from_slice(&rest).unwrap();
        assert_eq!(answer["data"]["rowsetBase64"], "");
        assert_eq!(answer["data"]["queryId"], "q");
    }

    #[test]
    fn bodies_it_cannot_split_are_left_as_they_came() {
        for body in [
            &br#"{"data":{"rowsetBase64":"aGVs\/bG8="},"success":true}"#[..], // an escape: not borrowable
            br#"{"data":{"rowset":[["1"]]},"success":true}"#,
            br#"{"data":null,"code":"390112","success":false}"#,
            b"not JSON",
        ] {
            let (rest, rows) = split_rowset(body.to_vec()).unwrap();
            assert_eq!((rest.as_slice(), rows), (body, None));
        }
        assert!(split_rowset(br#"{"data":{"rowsetBase64":"not base64!"}}"#.to_vec()).is_err());
    }

    #[test]
    fn long_text_is_decoded_across_blocks() {
        use base64::Engine as _;
        let rows: Vec<u8> = (0..200_001_u32).map(|i| (i % 251) as u8).collect();
        let text = base64::engine::general_purpose::STANDARD.encode(&rows);
        let body = format!(r#"{{"data":{{"rowsetBase64":"{text}","total":3}},"success":true}}"#);
        let (rest, decoded) = split_rowset(body.into_bytes()).unwrap();
        assert_eq!(decoded.as_deref(), Some(rows.as_slice()));
        assert_eq!(String::from_utf8(rest).unwrap(), r#"{"data":{"rowsetBase64":"","total":3},"success":true}"#);
    }
}
