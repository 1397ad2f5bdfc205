//! The checked configuration of a Snowflake connection: the sources resolved (Streamlit's 11.2
//! with decision 13), every key known, the authentication method chosen, the endpoint built.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use connections_core::toml::{Table, Value};
use connections_core::{ConfigOrigin, ConfigProblem, ConnectParams, Error, Result, UnknownKey};

use crate::auth::{Auth, TokenSource, load_private_key};
use crate::files::{ConnectorFiles, nothing_configured};
use crate::keys::SnowflakeKey;
use crate::sources::{Source, Sources};

/// The token file of Snowpark Container Services.
pub const SPCS_TOKEN_FILE: &str = "/snowflake/session/token";

/// Where requests go: `protocol://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` or `http`.
    pub protocol: String,
    /// The host name.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Endpoint {
    /// The base URL, without a trailing slash.
    ///
    /// ```
    /// use connections_snowflake::Endpoint;
    /// let e = Endpoint { protocol: "http".into(), host: "127.0.0.1".into(), port: 8080 };
    /// assert_eq!(e.base_url(), "http://127.0.0.1:8080");
    /// ```
    pub fn base_url(&self) -> String {
        format!("{}://{}:{}", self.protocol, self.host, self.port)
    }
}

/// A checked configuration: what connecting needs. `Debug` never shows a secret.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SnowflakeConfig {
    /// The connection's name.
    pub name: String,
    /// The account identifier as given.
    pub account: String,
    /// The login name (absent with OAuth, where the token says who).
    pub user: Option<String>,
    /// How to log in.
    pub auth: Auth,
    /// The session's role.
    pub role: Option<String>,
    /// The session's warehouse.
    pub warehouse: Option<String>,
    /// The session's database.
    pub database: Option<String>,
    /// The session's schema.
    pub schema: Option<String>,
    /// Where requests go.
    pub endpoint: Endpoint,
    /// How long a login may take.
    pub login_timeout: Duration,
    /// How long one HTTP request may take.
    pub network_timeout: Option<Duration>,
    /// How long a query may run before it is cancelled.
    pub query_timeout: Option<Duration>,
    /// Whether to send heartbeats while the session is idle.
    pub keep_alive: bool,
    /// The time between two heartbeats.
    pub heartbeat: Duration,
    /// Result chunks downloaded at once (`client_prefetch_threads`, 1 to 10, default 4): the
    /// bound on a result's memory beyond the batches already handed over.
    pub prefetch_threads: usize,
    /// Session parameters sent at login.
    pub session_parameters: serde_json::Map<String, serde_json::Value>,
}

impl SnowflakeConfig {
    /// The configuration of a connection: its sources resolved from the process environment
    /// (the connector's files, Snowpark Container Services) and checked.
    pub fn from_params(params: &ConnectParams) -> Result<Self> {
        let sources = resolve_sources(params, &Environment::process())?;
        Self::from_sources(&sources)
    }

    /// Checks the keys of `sources`: every key known, every required one present (all missing
    /// ones reported at once), values of the right form.
    pub fn from_sources(sources: &Sources) -> Result<Self> {
        check_unknown(sources)?;
        let authenticator = sources.get_str("authenticator")?.map(|a| a.to_ascii_lowercase());
        let method = method(sources, authenticator.as_deref())?;
        let account = sources.get_str("account")?;
        let user = sources.get_str("user")?;
        let mut missing = Vec::new();
        if account.is_none() {
            missing.push("account");
        }
        if user.is_none() && method != Method::OAuth {
            missing.push("user");
        }
        match method {
            Method::Password if sources.get("password").is_none() => missing.push("password"),
            Method::KeyPair
                if sources.lookup_any(&["private_key", "private_key_file", "private_key_path"]).is_none() =>
            {
                missing.push("private_key_file");
            }
            Method::OAuth if sources.lookup_any(&["token", "token_file_path"]).is_none() => missing.push("token"),
            _ => {}
        }
        if let Some(first) = missing.first() {
            let problem = ConfigProblem::MissingKeys {
                keys: missing.iter().map(|k| (*k).to_owned()).collect(),
                hint: format!(
                    "set them in [connections.{}] of secrets.toml, in the Snowflake connector's connections.toml, or as options",
                    sources.name()
                ),
            };
            return Err(sources.error(first, sources.list().first(), problem));
        }
        let account = account.unwrap_or_default();
        let auth = match method {
            Method::Password => {
                Auth::Password { password: crate::Secret::new(sources.get_str("password")?.unwrap_or_default()) }
            }
            Method::KeyPair => Auth::KeyPair { private_key_pem: load_private_key(sources)? },
            Method::OAuth => Auth::OAuth { token: token_source(sources)? },
        };
        let protocol = sources.get_str("protocol")?.unwrap_or_else(|| "https".into()).to_ascii_lowercase();
        if protocol != "https" && protocol != "http" {
            let source = sources.lookup("protocol").map(|(_, s)| s);
            return Err(sources.error("protocol", source, "expected `https` or `http`"));
        }
        let host = sources.get_str("host")?.unwrap_or_else(|| format!("{account}.snowflakecomputing.com"));
        let port = match sources.lookup("port") {
            None => 443,
            Some((value, source)) => {
                port(value).ok_or_else(|| sources.expected("port", source, "a port number (1 to 65535)", value))?
            }
        };
        Ok(Self {
            name: sources.name().to_owned(),
            user,
            auth,
            role: sources.get_str("role")?,
            warehouse: sources.get_str("warehouse")?,
            database: sources.get_str("database")?,
            schema: sources.get_str("schema")?,
            endpoint: Endpoint { protocol, host, port },
            login_timeout: seconds(sources, "login_timeout")?.unwrap_or(Duration::from_secs(120)),
            network_timeout: seconds(sources, "network_timeout")?,
            query_timeout: seconds(sources, "query_timeout")?,
            keep_alive: boolean(sources, "client_session_keep_alive")?.unwrap_or(false),
            heartbeat: seconds(sources, "client_session_keep_alive_heartbeat_frequency")?
                .unwrap_or(Duration::from_secs(3600)),
            prefetch_threads: prefetch_threads(sources)?,
            session_parameters: session_parameters(sources)?,
            account,
        })
    }

    /// The account name the login and the key-pair JWT use: the part before the first `.`
    /// (`xy12345.eu-west-1` → `xy12345`), upper case.
    ///
    /// ```
    /// # use connections_snowflake::{Sources, Source, SnowflakeConfig};
    /// # use connections_core::ConfigOrigin;
    /// # let mut s = Sources::new("db");
    /// # s.push(Source::new(ConfigOrigin::Options, "o", "account = 'xy12345.eu-west-1'\nuser = 'u'\npassword = 'p'".parse().unwrap()));
    /// let config = SnowflakeConfig::from_sources(&s).unwrap();
    /// assert_eq!(config.account_name(), "XY12345");
    /// assert_eq!(config.endpoint.host, "xy12345.eu-west-1.snowflakecomputing.com");
    /// ```
    pub fn account_name(&self) -> String {
        self.account.split('.').next().unwrap_or(&self.account).to_ascii_uppercase()
    }
}

/// The process environment a resolution reads: the connector's files and the Snowpark
/// Container Services variables and token file.
#[derive(Clone, Debug)]
pub struct Environment {
    files: ConnectorFiles,
    host: Option<String>,
    account: Option<String>,
    token_file: PathBuf,
}

impl Environment {
    /// This process's environment.
    pub fn process() -> Self {
        Self {
            files: ConnectorFiles::from_env(),
            host: std::env::var("SNOWFLAKE_HOST").ok().filter(|v| !v.is_empty()),
            account: std::env::var("SNOWFLAKE_ACCOUNT").ok().filter(|v| !v.is_empty()),
            token_file: PathBuf::from(SPCS_TOKEN_FILE),
        }
    }

    /// An environment with these files and no Snowpark Container Services.
    pub fn with_files(files: ConnectorFiles) -> Self {
        Self { files, host: None, account: None, token_file: PathBuf::from(SPCS_TOKEN_FILE) }
    }

    /// Adds Snowpark Container Services: `SNOWFLAKE_HOST`, `SNOWFLAKE_ACCOUNT` and the token file.
    #[must_use]
    pub fn with_container_services(mut self, host: &str, account: &str, token_file: impl Into<PathBuf>) -> Self {
        self.host = Some(host.to_owned());
        self.account = Some(account.to_owned());
        self.token_file = token_file.into();
        self
    }

    /// The connector's files.
    pub fn files(&self) -> &ConnectorFiles {
        &self.files
    }

    /// The Snowpark Container Services configuration, when its variables are set and its token
    /// file exists.
    fn container_services(&self) -> Option<Source> {
        let (host, account) = (self.host.as_ref()?, self.account.as_ref()?);
        if !self.token_file.is_file() {
            return None;
        }
        let mut values = Table::new();
        values.insert("host".into(), host.clone().into());
        values.insert("account".into(), account.clone().into());
        values.insert("authenticator".into(), "oauth".into());
        values.insert("token_file_path".into(), self.token_file.display().to_string().into());
        let origin = ConfigOrigin::File(self.token_file.clone());
        Some(Source::new(origin, "the Snowpark Container Services environment", values))
    }
}

/// The sources of a connection, in order: the options, the `[connections.<name>]` section, then
/// a connection of the connector's files (the one `connection_name` names; for the name
/// `snowflake`, the default connection; else the connection of the same name). With nothing at
/// all, Snowpark Container Services' environment; with not even that, an error saying where
/// configuration can go.
pub fn resolve_sources(params: &ConnectParams, env: &Environment) -> Result<Sources> {
    let mut sources = collect_sources(params, env)?;
    if !sources.is_configured()
        && let Some(source) = env.container_services()
    {
        sources.push(source);
        return Ok(sources);
    }
    // a section holding only `type` counts as configuration, as in Streamlit: its missing keys
    // are reported then, not this
    if sources.is_empty() {
        let mut files = env.files.clone();
        if let Some(path) = sources.get_str("connections_file_path")? {
            files = files.with_connections_file(path);
        }
        return Err(Error::Config {
            name: params.name().to_owned(),
            key: String::new(),
            origin: None,
            problem: Box::new(nothing_configured(params.name(), &files)),
        });
    }
    Ok(sources)
}

/// The sources of [`resolve_sources`] without its fallbacks: the options, the section and the
/// connector's files, possibly none. Another crate adds its own sources after these (a SnowSQL
/// file) before checking them with [`SnowflakeConfig::from_sources`].
pub fn collect_sources(params: &ConnectParams, env: &Environment) -> Result<Sources> {
    let name = params.name();
    let mut sources = Sources::new(name);
    sources.push(Source::new(ConfigOrigin::Options, "the options passed to connection()", params.options().clone()));
    if let Some(section) = params.section() {
        let origin = section.origin().map_or(ConfigOrigin::Options, |p| ConfigOrigin::File(p.to_owned()));
        sources.push(Source::new(origin, format!("[connections.{name}]"), section.as_table().clone()));
    }
    let mut files = env.files.clone();
    if let Some(path) = sources.get_str("connections_file_path")? {
        files = files.with_connections_file(path);
    }
    let file_source = match sources.get_str("connection_name")? {
        Some(wanted) => {
            let found = files.connection(&wanted)?;
            if found.is_none() {
                let source = sources.lookup("connection_name").map(|(_, s)| s);
                let known = files.names()?;
                let reason = format!(
                    "no connection of that name in {} or {}; defined connections: {}",
                    files.connections_toml().display(),
                    files.config_toml().display(),
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                );
                return Err(sources.error("connection_name", source, reason));
            }
            found
        }
        None if name == "snowflake" => files.default_connection()?,
        None => files.connection(name)?,
    };
    if let Some(source) = file_source {
        sources.push(source);
    }
    Ok(sources)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Password,
    KeyPair,
    OAuth,
}

/// The authenticators this driver can do, for messages.
const SUPPORTED_AUTHENTICATORS: &str =
    "supported: `snowflake` (password), `snowflake_jwt` (key pair), `oauth` (access token)";

fn method(sources: &Sources, authenticator: Option<&str>) -> Result<Method> {
    match authenticator {
        None => {
            if sources.lookup_any(&["private_key", "private_key_file", "private_key_path"]).is_some() {
                Ok(Method::KeyPair)
            } else if sources.get("password").is_none() && sources.lookup_any(&["token", "token_file_path"]).is_some() {
                Ok(Method::OAuth)
            } else {
                Ok(Method::Password)
            }
        }
        Some("snowflake") => Ok(Method::Password),
        Some("snowflake_jwt") => Ok(Method::KeyPair),
        Some("oauth") => Ok(Method::OAuth),
        Some(other) => {
            let shown = if other.starts_with("https://") { "an Okta URL".to_owned() } else { format!("`{other}`") };
            let source = sources.lookup("authenticator").map(|(_, s)| s);
            let reason = format!(
                "this driver cannot log in with {shown} (it needs a browser, a push or another identity provider); {SUPPORTED_AUTHENTICATORS}"
            );
            Err(sources.error("authenticator", source, reason))
        }
    }
}

fn check_unknown(sources: &Sources) -> Result<()> {
    for source in sources.list() {
        let unknown: Vec<UnknownKey> = source.values().keys().filter_map(|k| SnowflakeKey::from_str(k).err()).collect();
        if let Some(first) = unknown.first() {
            return Err(sources.error(first.key(), Some(source), first.problem(&unknown)));
        }
    }
    Ok(())
}

fn token_source(sources: &Sources) -> Result<TokenSource> {
    if let Some(token) = sources.get_str("token")? {
        return Ok(TokenSource::Value(crate::Secret::new(token)));
    }
    let path = sources.get_str("token_file_path")?.unwrap_or_default();
    Ok(TokenSource::File(PathBuf::from(path)))
}

fn port(value: &Value) -> Option<u16> {
    match value {
        Value::Integer(n) => u16::try_from(*n).ok().filter(|p| *p > 0),
        Value::String(s) => s.trim().parse::<u16>().ok().filter(|p| *p > 0),
        _ => None,
    }
}

#[allow(clippy::cast_precision_loss)] // seconds: far below 2^52
fn seconds(sources: &Sources, key: &str) -> Result<Option<Duration>> {
    let Some((value, source)) = sources.lookup(key) else { return Ok(None) };
    let secs = match value {
        Value::Integer(n) => Some(*n as f64),
        Value::Float(x) => Some(*x),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match secs.filter(|s| s.is_finite() && *s >= 0.0) {
        Some(s) => Ok(Some(Duration::from_secs_f64(s))),
        None => Err(sources.expected(key, source, "a number of seconds, 0 or more", value)),
    }
}

/// The default of `client_prefetch_threads`, as in the Python connector.
pub(crate) const DEFAULT_PREFETCH_THREADS: usize = 4;

/// `client_prefetch_threads`: an integer, clamped to 1..=10 as the Python connector clamps it
/// (with a warning here).
fn prefetch_threads(sources: &Sources) -> Result<usize> {
    const KEY: &str = "client_prefetch_threads";
    let Some((value, source)) = sources.lookup(KEY) else { return Ok(DEFAULT_PREFETCH_THREADS) };
    let given = match value {
        Value::Integer(n) => Some(*n),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let Some(given) = given else { return Err(sources.expected(KEY, source, "a whole number from 1 to 10", value)) };
    let used = given.clamp(1, 10);
    if used != given {
        tracing::warn!(connection = %sources.name(), given, used, "client_prefetch_threads is clamped to 1..=10");
    }
    Ok(usize::try_from(used).unwrap_or(DEFAULT_PREFETCH_THREADS))
}

fn boolean(sources: &Sources, key: &str) -> Result<Option<bool>> {
    let Some((value, source)) = sources.lookup(key) else { return Ok(None) };
    match value {
        Value::Boolean(b) => Ok(Some(*b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(sources.expected(key, source, "a boolean", other)),
    }
}

fn session_parameters(sources: &Sources) -> Result<serde_json::Map<String, serde_json::Value>> {
    let Some((value, source)) = sources.lookup("session_parameters") else { return Ok(serde_json::Map::new()) };
    let Value::Table(table) = value else {
        return Err(sources.expected("session_parameters", source, "a table of parameters", value));
    };
    let mut map = serde_json::Map::new();
    for (key, value) in table {
        let json = match value {
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Integer(n) => serde_json::Value::from(*n),
            Value::Float(x) => serde_json::Value::from(*x),
            Value::Boolean(b) => serde_json::Value::Bool(*b),
            other => {
                let key = format!("session_parameters.{key}");
                return Err(sources.expected(&key, source, "a string, number or boolean", other));
            }
        };
        map.insert(key.to_ascii_uppercase(), json);
    }
    Ok(map)
}

/// Reads a file a key names; the error names the key and its source, not the file's content.
pub(crate) fn read_key_file(sources: &Sources, key: &str, path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        let source = sources.lookup(key).map(|(_, s)| s);
        sources.error(key, source, format!("cannot read {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(text: &str) -> Sources {
        let mut s = Sources::new("sf");
        s.push(Source::new(ConfigOrigin::Options, "o", text.parse().unwrap()));
        s
    }

    #[test]
    fn every_missing_key_at_once() {
        let err = SnowflakeConfig::from_sources(&sources("role = 'r'")).unwrap_err();
        assert!(
            matches!(&err, Error::Config { problem, .. }
            if matches!(&**problem, ConfigProblem::MissingKeys { keys, .. } if keys == &["account", "user", "password"])),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_suggests_the_closest() {
        let err = SnowflakeConfig::from_sources(&sources("account = 'a'\nuser = 'u'\npasword = 'p'")).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("did you mean `password`?"), "{shown}");
    }

    #[test]
    fn unsupported_authenticators_name_the_supported_ones() {
        for auth in ["externalbrowser", "username_password_mfa", "https://acme.okta.com"] {
            let err = SnowflakeConfig::from_sources(&sources(&format!(
                "account = 'a'\nuser = 'u'\nauthenticator = '{auth}'"
            )))
            .unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains("snowflake_jwt") && shown.contains("oauth"), "{shown}");
            assert!(!shown.contains("acme"), "{shown}");
        }
    }

    #[test]
    fn endpoint_and_values() {
        let c = SnowflakeConfig::from_sources(&sources(
            "account = 'test'\nuser = 'u'\npassword = 'pw-1'\nhost = '127.0.0.1'\nport = '8080'\nprotocol = 'HTTP'\n\
             client_session_keep_alive = 'true'\nnetwork_timeout = 2.5\n[session_parameters]\nquery_tag = 'x'",
        ))
        .unwrap();
        assert_eq!(c.endpoint.base_url(), "http://127.0.0.1:8080");
        assert!(c.keep_alive);
        assert_eq!(c.network_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(c.session_parameters["QUERY_TAG"], "x");
        assert!(!format!("{c:?}").contains("pw-1"));
        let err =
            SnowflakeConfig::from_sources(&sources("account = 'a'\nuser = 'u'\npassword = 'p'\nport = 0")).unwrap_err();
        assert!(err.to_string().contains("expected a port number"), "{err}");
    }

    #[test]
    fn prefetch_threads_default_clamped_or_refused() {
        let threads = |extra: &str| {
            SnowflakeConfig::from_sources(&sources(&format!("account = 'a'\nuser = 'u'\npassword = 'p'\n{extra}")))
                .map(|c| c.prefetch_threads)
        };
        assert_eq!(threads("").unwrap(), DEFAULT_PREFETCH_THREADS);
        assert_eq!(threads("client_prefetch_threads = 2").unwrap(), 2);
        assert_eq!(threads("client_prefetch_threads = '7'").unwrap(), 7);
        assert_eq!(threads("client_prefetch_threads = 32").unwrap(), 10);
        assert_eq!(threads("client_prefetch_threads = 0").unwrap(), 1);
        let err = threads("client_prefetch_threads = 'many'").unwrap_err().to_string();
        assert!(err.contains("client_prefetch_threads") && err.contains("a whole number from 1 to 10"), "{err}");
    }

    #[test]
    fn oauth_needs_no_user() {
        let c =
            SnowflakeConfig::from_sources(&sources("account = 'a'\nauthenticator = 'OAUTH'\ntoken = 't-1'")).unwrap();
        assert!(matches!(c.auth, Auth::OAuth { .. }));
        assert!(!format!("{c:?}").contains("t-1"));
    }

    #[test]
    fn the_name_snowflake_reads_the_default_connection_and_others_their_own() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("connections.toml"), "[default]\naccount = 'd'\nuser = 'u'\npassword = 'p'\n[dev]\naccount = 'dev'\nuser = 'u'\npassword = 'p'\n[other]\naccount = 'o'\nuser = 'u'\npassword = 'p'\n").unwrap();
        let files = ConnectorFiles::from_vars(
            |v| match v {
                "SNOWFLAKE_HOME" => Some(dir.path().display().to_string()),
                "SNOWFLAKE_DEFAULT_CONNECTION_NAME" => Some("dev".into()),
                _ => None,
            },
            None,
        );
        let env = Environment::with_files(files);
        let account = |name: &str, options: &str| {
            let params = ConnectParams::from_parts(name, "snowflake", None, options.parse().unwrap());
            SnowflakeConfig::from_sources(&resolve_sources(&params, &env).unwrap()).unwrap().account
        };
        assert_eq!(account("snowflake", ""), "dev");
        assert_eq!(account("other", ""), "o");
        // decision 13: options are used, over the file's values
        assert_eq!(account("snowflake", "account = 'opt'"), "opt");
        assert_eq!(account("pets", "connection_name = 'default'"), "d");
    }

    #[test]
    fn collect_sources_lets_other_crates_add_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::with_files(ConnectorFiles::in_dir(dir.path()));
        let params = ConnectParams::from_parts("legacy", "snowflake", None, Table::new());
        let mut sources = collect_sources(&params, &env).unwrap();
        assert!(!sources.is_configured());
        let snowsql: Table = "account = 'a'\nuser = 'u'\npassword = 'p'".parse().unwrap();
        sources.push(Source::new(ConfigOrigin::File("/h/.snowsql/config".into()), "[connections]", snowsql));
        assert_eq!(SnowflakeConfig::from_sources(&sources).unwrap().account, "a");
    }

    #[test]
    fn container_services_when_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "tok").unwrap();
        let env = Environment::with_files(ConnectorFiles::in_dir(dir.path())).with_container_services(
            "h.example",
            "acct",
            &token,
        );
        let params = ConnectParams::from_parts("snowflake", "snowflake", None, Table::new());
        let sources = resolve_sources(&params, &env).unwrap();
        let c = SnowflakeConfig::from_sources(&sources).unwrap();
        assert_eq!(c.endpoint.host, "h.example");
        assert!(matches!(c.auth, Auth::OAuth { token: TokenSource::File(_) }));
        let env = Environment::with_files(ConnectorFiles::in_dir(dir.path()));
        let err = resolve_sources(&params, &env).unwrap_err();
        assert!(
            matches!(&err, Error::Config { problem, .. } if matches!(**problem, ConfigProblem::NothingConfigured { .. }))
        );
        assert!(err.to_string().contains("secrets.toml") && err.to_string().contains("connections.toml"), "{err}");
    }
}
