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

    /// An error shared by several callers (a failed reload, a failed single-flight load).
    #[error(transparent)]
    Shared(Arc<Error>),
}

fn display_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

fn display_sources(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        "the secrets (no file was found)".to_owned()
    } else {
        display_paths(paths)
    }
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
        if self.0.is_empty() {
            f.write_str("at the root")
        } else {
            write!(f, "`{}`", self.0)
        }
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
