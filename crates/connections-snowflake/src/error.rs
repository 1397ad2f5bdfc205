//! `SnowflakeError`: what the server or the transport said, with the query id where there is one.

use connections_core::{BoxDynError, Error};

/// Session-expiry codes: the session (390112) or the master token (390114) expired, or the
/// session is gone (390104, "User must login again").
pub(crate) const SESSION_EXPIRED: &str = "390112";
/// The master token expired: log in again.
pub(crate) const MASTER_TOKEN_EXPIRED: &str = "390114";
/// The session is unknown to the server: log in again.
pub(crate) const LOGIN_AGAIN: &str = "390104";
/// The query is still running: poll its result URL.
pub(crate) const QUERY_IN_PROGRESS: &str = "333333";
/// The query is still running (asynchronous form): poll its result URL.
pub(crate) const QUERY_IN_PROGRESS_ASYNC: &str = "333334";

/// An error of the Snowflake driver, the `source()` of the core's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnowflakeError {
    /// The server refused a request: its error code, SQLSTATE and message.
    #[error("Snowflake error {code}{}{}: {message}", sql_state_text(.sql_state.as_deref()), query_id_text(.query_id.as_deref()))]
    Server {
        /// Snowflake's error code (`002003`, `390112`...).
        code: String,
        /// The SQLSTATE, when given.
        sql_state: Option<String>,
        /// The server's message.
        message: String,
        /// The query's id, when the error concerns a query.
        query_id: Option<String>,
    },
    /// An HTTP request failed (connection refused, reset, timed out...).
    #[error("HTTP request to {what} failed")]
    Transport {
        /// What the request was for: `login`, `query`, `result chunk 3`...
        what: String,
        /// The cause.
        #[source]
        source: BoxDynError,
    },
    /// The server's answer was not what the protocol says.
    #[error("unexpected response to {what}: {problem}")]
    Protocol {
        /// What the request was for.
        what: String,
        /// What is wrong with the answer.
        problem: String,
    },
    /// A request or query took longer than allowed.
    #[error("{what} timed out after {seconds:.1} s{}", query_id_text(.query_id.as_deref()))]
    Timeout {
        /// What timed out.
        what: String,
        /// The limit.
        seconds: f64,
        /// The query's id, when a query timed out (it was cancelled on the server).
        query_id: Option<String>,
    },
    /// The result could not be turned into Arrow data.
    #[error("cannot decode the result{}: {problem}", query_id_text(.query_id.as_deref()))]
    Decode {
        /// What is wrong.
        problem: String,
        /// The query's id.
        query_id: Option<String>,
    },
    /// The login failed for a reason of this side (key, token file).
    #[error("cannot log in: {0}")]
    Login(String),
}

fn sql_state_text(state: Option<&str>) -> String {
    state.map(|s| format!(" (SQLSTATE {s})")).unwrap_or_default()
}

fn query_id_text(id: Option<&str>) -> String {
    id.map(|s| format!(" [query id {s}]")).unwrap_or_default()
}

impl SnowflakeError {
    /// Snowflake's error code, for a server error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The query id the error concerns, where known.
    pub fn query_id(&self) -> Option<&str> {
        match self {
            Self::Server { query_id, .. } | Self::Timeout { query_id, .. } | Self::Decode { query_id, .. } => {
                query_id.as_deref()
            }
            _ => None,
        }
    }

    /// Whether the session or its tokens expired (390112, 390114, 390104).
    pub fn is_session_expired(&self) -> bool {
        matches!(self.code(), Some(SESSION_EXPIRED | MASTER_TOKEN_EXPIRED | LOGIN_AGAIN))
    }

    /// Whether a fresh connection may help (decision 9): transport failures, protocol
    /// surprises (a proxy's error page) and session expiry; never a statement error or a timeout
    /// of the query itself.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Protocol { .. } => true,
            Self::Server { .. } => self.is_session_expired(),
            Self::Timeout { query_id, .. } => query_id.is_none(),
            Self::Decode { .. } | Self::Login(_) => false,
        }
    }

    /// The core's connect error for a failed login: the server's own refusal (a `success:
    /// false` answer with a code, such as 390100 wrong user or password, 390144 invalid JWT,
    /// 390318 invalid OAuth token) is [`Error::auth`], never retried since Snowflake locks a
    /// user after repeated failed logins; anything else (transport, timeout) is retryable.
    pub(crate) fn into_connect_error(self) -> Error {
        if self.code().is_some() { Error::auth(self) } else { Error::connect(self) }
    }

    /// A transport error.
    pub(crate) fn transport(what: impl Into<String>, source: impl Into<BoxDynError>) -> Self {
        Self::Transport { what: what.into(), source: source.into() }
    }

    /// A protocol error.
    pub(crate) fn protocol(what: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Protocol { what: what.into(), problem: problem.into() }
    }
}

impl From<SnowflakeError> for Error {
    /// A query error of the core: retryable when a fresh connection may help.
    fn from(error: SnowflakeError) -> Self {
        if error.is_retryable() { Error::connection_lost(error) } else { Error::statement(error) }
    }
}

/// The Snowflake error inside a core error, if it has one.
///
/// ```
/// use connections_snowflake::{SnowflakeError, snowflake_error};
/// let err: connections_core::Error = SnowflakeError::Login("no key".into()).into();
/// assert!(matches!(snowflake_error(&err), Some(SnowflakeError::Login(_))));
/// ```
pub fn snowflake_error(error: &Error) -> Option<&SnowflakeError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<SnowflakeError>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}
