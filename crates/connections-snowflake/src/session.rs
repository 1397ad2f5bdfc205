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
        let url = format!("{}{path}", self.base);
        self.authorised(what, |auth| self.http.post(&url).query(params).header("Authorization", auth).json(body)).await
    }

    /// A GET of `path` (a server-relative URL such as a `getResultUrl`) with the session's
    /// authorisation, as JSON.
    pub(crate) async fn get(&self, what: &str, path: &str) -> Result<Value, SnowflakeError> {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        self.authorised(what, |auth| self.http.get(&url).header("Authorization", auth)).await
    }

    async fn authorised(
        &self,
        what: &str,
        request: impl Fn(String) -> reqwest_middleware::RequestBuilder,
    ) -> Result<Value, SnowflakeError> {
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
            let bytes = response.bytes().await.map_err(|e| SnowflakeError::transport(what, e))?;
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
            return Ok(answer);
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
