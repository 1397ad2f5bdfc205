//! The one error type of the workspace.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A boxed error from a driver or library, the `source()` of several variants.
pub type BoxDynError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as its default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `connections`.
///
/// Messages name what failed (the file, the key path, the connection) and never contain a secret
/// value; the underlying cause, where there is one, is in [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No secrets file or secrets directory exists at any of the searched paths.
    #[error("no secrets found; searched: {}", display_paths(.searched))]
    SecretsNotFound {
        /// Every path that was searched, in order.
        searched: Vec<PathBuf>,
    },

    /// A secrets path is neither a `.toml` file nor an existing directory.
    #[error("invalid secrets path {}: expected a `.toml` file or a directory", .path.display())]
    InvalidSecretsPath {
        /// The configured path.
        path: PathBuf,
    },

    /// An entry of a directory of secrets is not a folder.
    #[error(
        "{} is not a folder: in a directory of secrets every secret is a sub-folder holding one file per key",
        .path.display()
    )]
    SecretsDirEntry {
        /// The offending entry.
        path: PathBuf,
    },

    /// A secrets or config file could not be read (permissions, invalid UTF-8, ...).
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system or the UTF-8 decoder said.
        #[source]
        source: std::io::Error,
    },

    /// A TOML file (secrets or config) is malformed.
    #[error("cannot parse {} at line {line}, column {column}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What the parser expected; never the text of the file.
        message: String,
    },

    /// A key of a configuration file has the wrong type or value.
    #[error("{} in {}: {expected}", display_key(.key), .path.display())]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// The dotted key path.
        key: String,
        /// What was expected.
        expected: String,
    },

    /// A secret that was asked for does not exist.
    #[error("no secret {} in {}", display_key(.key), display_sources(.searched))]
    MissingSecret {
        /// The dotted key path that was asked for.
        key: String,
        /// The files the secrets were read from.
        searched: Vec<PathBuf>,
    },

    /// A secret exists but has another type than the one asked for, or cannot be extracted into
    /// the requested Rust type.
    #[error("secret {} {}: {message}", display_key(.key), display_origin(.origin.as_ref()))]
    SecretType {
        /// The dotted key path of the offending value.
        key: String,
        /// The file the value came from, where known.
        origin: Option<PathBuf>,
        /// What was found and what was expected, without the value itself.
        message: String,
    },

    /// A key path given to a lookup is malformed (for example an unterminated quote).
    #[error("invalid key path {path:?}: {reason}")]
    KeyPath {
        /// The key path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Watching the secrets files for changes failed.
    #[error("cannot watch {} for changes", .path.display())]
    Watch {
        /// The path that could not be watched.
        path: PathBuf,
        /// What `notify` said.
        #[source]
        source: BoxDynError,
    },

    /// No connection type is registered under this name.
    #[error("no connection type named {name:?}{}; registered types: {}", display_closest(*.closest), display_list(.known))]
    UnknownType {
        /// The name asked for.
        name: String,
        /// Every registered type name, sorted.
        known: Vec<&'static str>,
        /// The registered name closest to the one asked for, if any is close.
        closest: Option<&'static str>,
    },

    /// A Python class path (`module.Class`) was given as a type; they have no meaning here.
    #[error(
        "{name:?} looks like a Python class path, which has no meaning here: pass a registered type name; registered types: {}",
        display_list(.known)
    )]
    PythonTypePath {
        /// The name as given.
        name: String,
        /// Every registered type name, sorted.
        known: Vec<&'static str>,
    },

    /// Several Rust types registered the same connection type name.
    #[error("connection type {name:?} is registered more than once: by {}", .rust_types.join(" and "))]
    DuplicateType {
        /// The contested name.
        name: String,
        /// The Rust types (with their modules) that claim it.
        rust_types: Vec<String>,
    },

    /// No type was given and none can be inferred from the name or the secrets.
    #[error(
        "cannot tell the type of connection {name:?}: pass one (`connection({name:?}).with_type(\"sql\")`) or add `type = \"...\"` to [connections.{name}] in secrets.toml"
    )]
    NoType {
        /// The connection name.
        name: String,
    },

    /// An `env:VAR` connection name names an unset variable.
    #[error("connection name {name:?} refers to the environment variable {var}, which is not set")]
    EnvName {
        /// The name as given.
        name: String,
        /// The variable.
        var: String,
    },

    /// An argument of a call is invalid (for example `max_entries(0)`).
    #[error("invalid argument `{argument}`: {reason}")]
    InvalidArgument {
        /// The argument.
        argument: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// A connection's configuration (its secrets section merged with the caller's options) is
    /// invalid: nothing configured, a missing, unknown or mistyped key, a value the driver
    /// refuses, a backend this build lacks. `problem` says which, with its data, for callers to
    /// match on.
    #[error("connection {name:?}: {}{}: {problem}", display_key(.key), display_config_origin(.origin.as_ref()))]
    Config {
        /// The connection name.
        name: String,
        /// The dotted key path inside the configuration (empty for the whole of it).
        key: String,
        /// Where the value came from: a secrets file, or the caller's options; `None` when
        /// unknown or when the problem is the configuration as a whole.
        origin: Option<ConfigOrigin>,
        /// What is wrong, never with the value (boxed: it keeps `Error` small).
        problem: Box<ConfigProblem>,
    },

    /// Connecting failed.
    #[error(
        "connection {name:?} (type {type_name}) failed to connect{}",
        if *.refused { ": the server refused the credentials" } else { "" }
    )]
    Connect {
        /// The connection name.
        name: String,
        /// The connection type.
        type_name: &'static str,
        /// Whether the server refused the login (wrong password, invalid key or token): then
        /// the error is of kind [`ErrorKind::Auth`] and never retried, because retrying a
        /// refused login cannot help and may lock the user out.
        refused: bool,
        /// The driver's error.
        #[source]
        source: BoxDynError,
    },

    /// A query or statement failed.
    #[error("query on connection {name:?} failed")]
    Query {
        /// The connection name.
        name: String,
        /// Whether the failure concerns the connection (I/O, closed, timeout) rather than the
        /// statement, so that retrying on a fresh connection may help.
        retryable: bool,
        /// The driver's error.
        #[source]
        source: BoxDynError,
    },

    /// A connection was asked for as one Rust type but is another.
    #[error("connection {name:?} is of type {actual}, not {requested}")]
    WrongType {
        /// The connection name.
        name: String,
        /// The Rust type asked for.
        requested: &'static str,
        /// The connection type it is.
        actual: &'static str,
    },

    /// The connection type has no generic `query`.
    #[error(
        "connection {name:?} (type {type_name}) does not support generic queries; use open_as to reach its own API"
    )]
    NotQueryable {
        /// The connection name.
        name: String,
        /// Its type.
        type_name: &'static str,
    },

    /// Converting or writing a DataFrame failed.
    #[error("cannot {action} the data frame")]
    Arrow {
        /// What was being done.
        action: &'static str,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },

    /// An error shared by several callers (a failed reload, a failed single-flight load).
    #[error(transparent)]
    Shared(Arc<Error>),

    // ---- added on branch `core-factory` (factory, lifecycle, registry); keep at the end ----
    /// Streamlit's own class path (`streamlit.connections.SQLConnection`, ...) names a connection
    /// type that no crate linked into this program registers.
    #[error(
        "{class_path} is Streamlit's class for connection type {type_name:?}, which is not registered in this build: link the crate that provides it (the `connections` crate links its drivers through features); registered types: {}",
        display_list(.known)
    )]
    UnregisteredStreamlitType {
        /// The class path as given.
        class_path: String,
        /// The type name it stands for.
        type_name: &'static str,
        /// Every registered type name, sorted.
        known: Vec<&'static str>,
    },

    /// An `env:VAR` connection name whose variable is set but holds no usable name.
    #[error("connection name {name:?} refers to the environment variable {var}, which {problem}")]
    EnvNameInvalid {
        /// The name as given.
        name: String,
        /// The variable.
        var: String,
        /// What is wrong with its value (`is set but empty`, `is not valid Unicode`).
        problem: &'static str,
    },

    /// An error of a connection whose own error does not say which connection it is; the
    /// message is the connection's name followed by the error's.
    #[error("connection {name:?} (type {type_name}): {error}")]
    InConnection {
        /// The connection name.
        name: String,
        /// The connection type.
        type_name: &'static str,
        /// The error.
        error: Arc<Error>,
        /// The error's own cause, if it has one (the error itself is in the message).
        #[source]
        cause: Option<CauseOf>,
    },
}

/// The cause of an error wrapped in [`Error::InConnection`]: the wrapped error's own `source()`,
/// so that a printed chain shows every message once.
#[derive(Clone)]
pub struct CauseOf(Arc<Error>);

impl CauseOf {
    fn cause(&self) -> &(dyn std::error::Error + 'static) {
        std::error::Error::source(&*self.0).unwrap_or(&*self.0)
    }
}

impl fmt::Debug for CauseOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.cause(), f)
    }
}

impl fmt::Display for CauseOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.cause(), f)
    }
}

impl std::error::Error for CauseOf {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause().source()
    }
}

/// What is wrong with a connection's configuration (the data of [`Error::Config`]). Its
/// `Display` is the message after the key; no variant holds a configured value.
///
/// ```
/// use connections_core::{ConfigProblem, Error};
/// # fn handle(error: Error) {
/// if let Error::Config { key, problem, .. } = &error {
///     match problem.as_ref() {
///         ConfigProblem::UnknownKey { closest: Some(closest), .. } => {
///             eprintln!("`{key}` is not a setting; did you mean `{closest}`?");
///         }
///         ConfigProblem::MissingKeys { keys, .. } => eprintln!("add {}", keys.join(", ")),
///         _ => eprintln!("{error}"),
///     }
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// Nothing is configured for the connection: no section, no options.
    NothingConfigured {
        /// Where configuration can go, as the driver words it.
        hint: String,
    },
    /// Required keys are missing: every one of them, in a fixed order.
    MissingKeys {
        /// The missing keys.
        keys: Vec<String>,
        /// Where they can be set, as the driver words it (may be empty).
        hint: String,
    },
    /// The key is none of the supported ones (the first of several; the others are in `also`).
    UnknownKey {
        /// Where the keys live: "for a connection of type `sql`", "in `create_engine_kwargs`".
        context: String,
        /// The supported keys.
        supported: Vec<String>,
        /// The supported key closest to the one given, when it is likely a typo.
        closest: Option<String>,
        /// Other unknown keys of the same table.
        also: Vec<String>,
        /// Advice for this key, as the driver words it (may be empty).
        hint: String,
    },
    /// The value has the wrong form.
    Expected {
        /// What was expected: "a string", "an integer, 0 or more".
        expected: String,
        /// What was found, described without the value (a type, or a harmless number).
        found: String,
    },
    /// The value is refused for another reason, stated without the value.
    Invalid {
        /// Why.
        reason: String,
    },
    /// The configuration needs support this build lacks (a backend behind a Cargo feature).
    FeatureMissing {
        /// What needs it: "the `postgresql` dialect".
        needed_by: String,
        /// What is needed: "PostgreSQL support".
        what: String,
        /// The feature of the `connections` crate that brings it.
        feature: String,
    },
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NothingConfigured { hint } => f.write_str(hint),
            Self::MissingKeys { keys, hint } => {
                let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                match keys.as_slice() {
                    [only] => write!(f, "the {only} parameter is required")?,
                    [first @ .., last] => write!(f, "the {} and {last} parameters are required", first.join(", "))?,
                    [] => f.write_str("required parameters are missing")?,
                }
                if !hint.is_empty() {
                    write!(f, ": {hint}")?;
                }
                Ok(())
            }
            Self::UnknownKey { context, supported, closest, also, hint } => {
                write!(f, "unknown key {context}")?;
                if !supported.is_empty() {
                    write!(f, "; supported keys: {}", supported.join(", "))?;
                }
                if let Some(closest) = closest {
                    write!(f, " (did you mean `{closest}`?)")?;
                }
                if !hint.is_empty() {
                    write!(f, "; {hint}")?;
                }
                if !also.is_empty() {
                    let also: Vec<String> = also.iter().map(|k| format!("`{k}`")).collect();
                    write!(f, " (also unknown: {})", also.join(", "))?;
                }
                Ok(())
            }
            Self::Expected { expected, found } => write!(f, "expected {expected}, found {found}"),
            Self::Invalid { reason } => f.write_str(reason),
            Self::FeatureMissing { needed_by, what, feature } => write!(
                f,
                "{needed_by} needs {what}, which this build lacks: enable the \"{feature}\" feature of the connections crate"
            ),
        }
    }
}

impl From<String> for ConfigProblem {
    /// A refusal stated in words ([`ConfigProblem::Invalid`]).
    fn from(reason: String) -> Self {
        Self::Invalid { reason }
    }
}

impl From<&str> for ConfigProblem {
    fn from(reason: &str) -> Self {
        Self::Invalid { reason: reason.to_owned() }
    }
}

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigOrigin {
    /// A secrets file.
    File(PathBuf),
    /// The options passed to `connection()`.
    Options,
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "(from {})", path.display()),
            Self::Options => f.write_str("(from the options passed to connection())"),
        }
    }
}

/// How a caller should treat an error, for retry loops and reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading, parsing or looking up secrets.
    Secrets,
    /// Configuration: unknown type, bad option, missing parameter.
    Config,
    /// Connecting failed (network, TLS, server unavailable): retryable.
    Connect,
    /// The server refused the login (wrong password, invalid key, token or user): not
    /// retryable, since repeating a refused login may lock the user out.
    Auth,
    /// A failure of the connection while it was in use (I/O, closed, timed out): retryable.
    ConnectionLost,
    /// The statement itself failed (syntax, constraint, permission): not retryable.
    Statement,
    /// Anything else.
    Other,
}

impl Error {
    /// Wraps a driver's connect error (the `name` and `type_name` are filled in by the core).
    pub fn connect(source: impl Into<BoxDynError>) -> Self {
        Self::Connect { name: String::new(), type_name: "", refused: false, source: source.into() }
    }

    /// Wraps a driver's error for a login the server refused (wrong password, invalid key or
    /// token, unknown user): a connect error of kind [`ErrorKind::Auth`], never retried.
    ///
    /// ```
    /// use connections_core::{Error, ErrorKind};
    /// let err = Error::auth("password authentication failed").for_connection("pets_db", "sql");
    /// assert_eq!(err.kind(), ErrorKind::Auth);
    /// assert!(!err.is_retryable());
    /// assert_eq!(
    ///     err.to_string(),
    ///     "connection \"pets_db\" (type sql) failed to connect: the server refused the credentials"
    /// );
    /// ```
    pub fn auth(source: impl Into<BoxDynError>) -> Self {
        Self::Connect { name: String::new(), type_name: "", refused: true, source: source.into() }
    }

    /// A statement error: the query itself is wrong; retrying will not help.
    pub fn statement(source: impl Into<BoxDynError>) -> Self {
        Self::Query { name: String::new(), retryable: false, source: source.into() }
    }

    /// A connection-level failure while querying; retrying on a fresh connection may help.
    pub fn connection_lost(source: impl Into<BoxDynError>) -> Self {
        Self::Query { name: String::new(), retryable: true, source: source.into() }
    }

    /// A failure shared by several callers (single flight): the error itself where this caller
    /// is its only owner, else [`Error::Shared`].
    pub fn unshare(error: Arc<Error>) -> Self {
        Arc::try_unwrap(error).unwrap_or_else(Self::Shared)
    }

    /// What kind of failure this is.
    #[allow(clippy::match_same_arms)] // the variants added at the end of the enum have their own arms
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::SecretsNotFound { .. }
            | Self::InvalidSecretsPath { .. }
            | Self::SecretsDirEntry { .. }
            | Self::Read { .. }
            | Self::Parse { .. }
            | Self::MissingSecret { .. }
            | Self::SecretType { .. }
            | Self::KeyPath { .. }
            | Self::Watch { .. } => ErrorKind::Secrets,
            Self::InvalidConfig { .. }
            | Self::UnknownType { .. }
            | Self::PythonTypePath { .. }
            | Self::DuplicateType { .. }
            | Self::NoType { .. }
            | Self::EnvName { .. }
            | Self::InvalidArgument { .. }
            | Self::Config { .. }
            | Self::WrongType { .. }
            | Self::NotQueryable { .. } => ErrorKind::Config,
            Self::Connect { refused: false, .. } => ErrorKind::Connect,
            Self::Connect { refused: true, .. } => ErrorKind::Auth,
            Self::Query { retryable: true, .. } => ErrorKind::ConnectionLost,
            Self::Query { retryable: false, .. } => ErrorKind::Statement,
            Self::Arrow { .. } => ErrorKind::Other,
            Self::Shared(inner) => inner.kind(),
            // ---- added on branch `core-factory` ----
            Self::UnregisteredStreamlitType { .. } | Self::EnvNameInvalid { .. } => ErrorKind::Config,
            Self::InConnection { error, .. } => error.kind(),
        }
    }

    /// Whether retrying on a fresh connection may help (decision 9: connection-level failures
    /// are retried; statement errors and refused logins ([`ErrorKind::Auth`]) never are).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Connect | ErrorKind::ConnectionLost)
    }

    /// Makes the error name its connection: fills in the name (and type) of a driver error made
    /// without them, keeps an error that already names a connection, and wraps any other one
    /// in [`Error::InConnection`].
    ///
    /// ```
    /// use connections_core::Error;
    /// let err = Error::connect("refused").for_connection("pets_db", "sql");
    /// assert_eq!(err.to_string(), "connection \"pets_db\" (type sql) failed to connect");
    /// let err = Error::InvalidArgument { argument: "params", reason: "`owner` is missing".into() };
    /// assert_eq!(
    ///     err.for_connection("pets_db", "sql").to_string(),
    ///     "connection \"pets_db\" (type sql): invalid argument `params`: `owner` is missing"
    /// );
    /// ```
    #[must_use]
    pub fn for_connection(self, conn_name: &str, conn_type: &'static str) -> Self {
        match self {
            Self::Connect { name, type_name, refused, source } => Self::Connect {
                name: if name.is_empty() { conn_name.to_owned() } else { name },
                type_name: if type_name.is_empty() { conn_type } else { type_name },
                refused,
                source,
            },
            Self::Query { name, retryable, source } => {
                Self::Query { name: if name.is_empty() { conn_name.to_owned() } else { name }, retryable, source }
            }
            named if named.names_a_connection() => named,
            Self::Shared(error) => Self::in_connection(conn_name, conn_type, error),
            other => Self::in_connection(conn_name, conn_type, Arc::new(other)),
        }
    }

    fn in_connection(name: &str, type_name: &'static str, error: Arc<Error>) -> Self {
        let cause = std::error::Error::source(&*error).is_some().then(|| CauseOf(Arc::clone(&error)));
        Self::InConnection { name: name.to_owned(), type_name, error, cause }
    }

    /// Whether the message names the connection the error happened on.
    fn names_a_connection(&self) -> bool {
        match self {
            Self::Connect { name, .. } | Self::Query { name, .. } => !name.is_empty(),
            Self::Config { .. }
            | Self::WrongType { .. }
            | Self::NotQueryable { .. }
            | Self::NoType { .. }
            | Self::InConnection { .. } => true,
            Self::Shared(inner) => inner.names_a_connection(),
            _ => false,
        }
    }

    /// The error itself, seen through the wrappers that add context to it
    /// ([`Error::Shared`], [`Error::InConnection`]): what to match on.
    ///
    /// ```
    /// use connections_core::Error;
    /// let err = Error::InvalidArgument { argument: "params", reason: "bad".into() }.for_connection("db", "sql");
    /// assert!(matches!(err.innermost(), Error::InvalidArgument { .. }));
    /// ```
    pub fn innermost(&self) -> &Error {
        match self {
            Self::Shared(inner) | Self::InConnection { error: inner, .. } => inner.innermost(),
            other => other,
        }
    }
}

fn display_list(names: &[&str]) -> String {
    if names.is_empty() {
        "none (is a driver crate linked? see docs/writing-a-connector.md)".to_owned()
    } else {
        names.join(", ")
    }
}

fn display_closest(closest: Option<&str>) -> String {
    closest.map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default()
}

fn display_config_origin(origin: Option<&ConfigOrigin>) -> String {
    origin.map(|o| format!(" {o}")).unwrap_or_default()
}

fn display_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

fn display_sources(paths: &[PathBuf]) -> String {
    if paths.is_empty() { "the secrets (no file was found)".to_owned() } else { display_paths(paths) }
}

fn display_origin(origin: Option<&PathBuf>) -> String {
    match origin {
        Some(path) => format!("(from {})", path.display()),
        None => "(no source file)".to_owned(),
    }
}

/// Shows a key path in backquotes, or `the root` for the empty path.
fn display_key(key: &str) -> KeyDisplay<'_> {
    KeyDisplay(key)
}

struct KeyDisplay<'a>(&'a str);

impl fmt::Display for KeyDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("at the root") } else { write!(f, "`{}`", self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_and_key() {
        let err = Error::SecretType {
            key: "connections.pets_db.port".into(),
            origin: Some("/p/.streamlit/secrets.toml".into()),
            message: "found a string, expected an integer".into(),
        };
        assert_eq!(
            err.to_string(),
            "secret `connections.pets_db.port` (from /p/.streamlit/secrets.toml): found a string, expected an integer"
        );
        let err = Error::SecretsNotFound { searched: vec!["/h/a.toml".into(), "/p/b.toml".into()] };
        assert_eq!(err.to_string(), "no secrets found; searched: /h/a.toml, /p/b.toml");
    }
}
