//! The Snowflake connector's own configuration files, read the way the Python connector and
//! Snowflake's CLI read them:
//!
//! - `connections.toml` in `$SNOWFLAKE_HOME` (or `~/.snowflake`): one table per connection,
//!   `[<name>]`;
//! - `config.toml` beside it: `default_connection_name`, and `[connections.<name>]` tables, which
//!   count when `connections.toml` does not define the name;
//! - the default connection: `$SNOWFLAKE_DEFAULT_CONNECTION_NAME`, else `default_connection_name`
//!   of `config.toml`, else `default`.

use std::path::{Path, PathBuf};

use connections_core::toml::{Table, Value};
use connections_core::{ConfigOrigin, ConfigProblem, Error};

use crate::sources::Source;

/// The name of the default connection when nothing names another.
pub const DEFAULT_CONNECTION: &str = "default";

/// Where the connector's files are, and the environment that chose them.
///
/// ```
/// use connections_snowflake::ConnectorFiles;
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("connections.toml"), "[default]\naccount = 'a'\nuser = 'u'\n").unwrap();
/// let files = ConnectorFiles::in_dir(dir.path());
/// let source = files.default_connection().unwrap().unwrap();
/// assert_eq!(source.values()["account"].as_str(), Some("a"));
/// assert!(files.connection("other").unwrap().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct ConnectorFiles {
    connections_toml: PathBuf,
    config_toml: PathBuf,
    default_name: Option<String>,
}

impl ConnectorFiles {
    /// The files in `dir` (as `$SNOWFLAKE_HOME`), with no default connection name from the
    /// environment.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self {
            connections_toml: dir.join("connections.toml"),
            config_toml: dir.join("config.toml"),
            default_name: None,
        }
    }

    /// The files the process environment points at: `$SNOWFLAKE_HOME` or `~/.snowflake`, and
    /// `$SNOWFLAKE_DEFAULT_CONNECTION_NAME`.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok(), home_dir())
    }

    /// [`from_env`](Self::from_env) with the variables read through `var` and `home` as `~`.
    ///
    /// ```
    /// use connections_snowflake::ConnectorFiles;
    /// let files = ConnectorFiles::from_vars(|v| (v == "SNOWFLAKE_HOME").then(|| "/sf".to_owned()), None);
    /// assert_eq!(files.connections_toml(), std::path::Path::new("/sf/connections.toml"));
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Self {
        let dir = match var("SNOWFLAKE_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => home.unwrap_or_default().join(".snowflake"),
        };
        let mut files = Self::in_dir(dir);
        files.default_name = var("SNOWFLAKE_DEFAULT_CONNECTION_NAME").filter(|v| !v.is_empty());
        files
    }

    /// Reads connections from `path` instead of `connections.toml` (the connector's
    /// `connections_file_path`).
    #[must_use]
    pub fn with_connections_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.connections_toml = path.into();
        self
    }

    /// Names the default connection, as `SNOWFLAKE_DEFAULT_CONNECTION_NAME` does.
    #[must_use]
    pub fn with_default_name(mut self, name: impl Into<String>) -> Self {
        self.default_name = Some(name.into());
        self
    }

    /// The `connections.toml` read.
    pub fn connections_toml(&self) -> &Path {
        &self.connections_toml
    }

    /// The `config.toml` read.
    pub fn config_toml(&self) -> &Path {
        &self.config_toml
    }

    /// The connection `name`: `[name]` of `connections.toml`, else `[connections.name]` of
    /// `config.toml`; `None` when neither has it (or neither file exists).
    pub fn connection(&self, name: &str) -> Result<Option<Source>, Error> {
        if let Some(table) = read_toml(&self.connections_toml)?
            && let Some(value) = table.get(name)
        {
            let values = as_table(value, &self.connections_toml, name)?;
            let label = format!("[{name}] of {}", self.connections_toml.display());
            return Ok(Some(Source::new(ConfigOrigin::File(self.connections_toml.clone()), label, values)));
        }
        if let Some(table) = read_toml(&self.config_toml)?
            && let Some(connections) = table.get("connections")
        {
            let connections = as_table(connections, &self.config_toml, "connections")?;
            if let Some(value) = connections.get(name) {
                let key = format!("connections.{name}");
                let values = as_table(value, &self.config_toml, &key)?;
                let label = format!("[{key}] of {}", self.config_toml.display());
                return Ok(Some(Source::new(ConfigOrigin::File(self.config_toml.clone()), label, values)));
            }
        }
        Ok(None)
    }

    /// The name of the default connection and whether it was named explicitly (by the
    /// environment or `config.toml`) rather than being `default`.
    pub fn default_name(&self) -> Result<(String, bool), Error> {
        if let Some(name) = &self.default_name {
            return Ok((name.clone(), true));
        }
        if let Some(table) = read_toml(&self.config_toml)? {
            match table.get("default_connection_name") {
                Some(Value::String(name)) if !name.is_empty() => return Ok((name.clone(), true)),
                Some(Value::String(_)) | None => {}
                Some(other) => {
                    return Err(Error::InvalidConfig {
                        path: self.config_toml.clone(),
                        key: "default_connection_name".into(),
                        expected: format!("expected a string, found {}", other.type_str()),
                    });
                }
            }
        }
        Ok((DEFAULT_CONNECTION.to_owned(), false))
    }

    /// The default connection; a connection named explicitly that no file defines is an error
    /// that lists the ones defined.
    pub fn default_connection(&self) -> Result<Option<Source>, Error> {
        let (name, explicit) = self.default_name()?;
        let found = self.connection(&name)?;
        if found.is_none() && explicit {
            let known = self.names()?;
            return Err(Error::InvalidConfig {
                path: self.connections_toml.clone(),
                key: name,
                expected: format!(
                    "the default connection is not defined here nor in {}; defined connections: {}",
                    self.config_toml.display(),
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                ),
            });
        }
        Ok(found)
    }

    /// The names of every connection the files define.
    pub fn names(&self) -> Result<Vec<String>, Error> {
        let mut names: Vec<String> =
            read_toml(&self.connections_toml)?.map(|t| t.keys().cloned().collect()).unwrap_or_default();
        if let Some(table) = read_toml(&self.config_toml)?
            && let Some(Value::Table(connections)) = table.get("connections")
        {
            names.extend(connections.keys().filter(|k| !names.contains(k)).cloned().collect::<Vec<_>>());
        }
        Ok(names)
    }
}

/// A TOML file's table, or `None` when the file does not exist.
fn read_toml(path: &Path) -> Result<Option<Table>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Read { path: path.to_owned(), source }),
    };
    text.parse::<Table>().map(Some).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |span| line_column(&text, span.start));
        Error::Parse { path: path.to_owned(), line, column, message: e.message().to_owned() }
    })
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn as_table(value: &Value, path: &Path, key: &str) -> Result<Table, Error> {
    match value {
        Value::Table(table) => Ok(table.clone()),
        other => Err(Error::InvalidConfig {
            path: path.to_owned(),
            key: key.to_owned(),
            expected: format!("expected a table, found {}", other.type_str()),
        }),
    }
}

/// The user's home directory, from `HOME` (or `USERPROFILE`).
pub(crate) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(PathBuf::from)
}

/// The hint of a configuration that is missing entirely.
pub(crate) fn nothing_configured(name: &str, files: &ConnectorFiles) -> ConfigProblem {
    ConfigProblem::NothingConfigured {
        hint: format!(
            "missing Snowflake connection configuration: did you forget to set this in `secrets.toml` \
             ([connections.{name}]), a Snowflake configuration file ({} with [{name}] or [default]), or as \
             options with `connection(\"{name}\").option(...)`?",
            files.connections_toml.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_toml_names_the_default_and_holds_connections() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "default_connection_name = 'dev'\n[connections.dev]\naccount = 'x'\n",
        )
        .unwrap();
        let files = ConnectorFiles::in_dir(dir.path());
        let source = files.default_connection().unwrap().unwrap();
        assert_eq!(source.values()["account"].as_str(), Some("x"));
        assert!(source.label().contains("[connections.dev]"));
        let files = files.with_default_name("nope");
        let err = files.default_connection().unwrap_err().to_string();
        assert!(err.contains("`nope`") && err.contains("defined connections: dev"), "{err}");
    }

    #[test]
    fn malformed_files_name_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("connections.toml"), "[default]\naccount = \n").unwrap();
        let err = ConnectorFiles::in_dir(dir.path()).connection("default").unwrap_err();
        assert!(matches!(err, Error::Parse { line: 2, .. }), "{err}");
    }
}
