//! `ConnectParams`: a connection's configuration, its secrets section overlaid with the caller's
//! options, with provenance for every key.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::error::{ConfigOrigin, ConfigProblem, Error, Result};
use crate::secrets::{RedactedTable, Section, redacted_kind, to_figment_table};

use crate::config_keys::TYPE_KEY;

/// What a driver's `connect` receives: the connection's name and its configuration, which is its
/// `[connections.<name>]` secrets section with the options passed to `connection()` laid over
/// it, per top-level key (an option replaces the section's value of the same key whole).
///
/// `Debug` shows the keys, never the values.
///
/// ```
/// # fn main() -> Result<(), connections_core::Error> {
/// use connections_core::ConnectParams;
/// let mut options = connections_core::toml::Table::new();
/// options.insert("port".into(), 5433.into());
/// let params = ConnectParams::from_parts("db", "sql", None, options);
/// #[derive(serde::Deserialize)]
/// struct Config { port: u16, host: Option<String> }
/// let config: Config = params.config()?;
/// assert_eq!((config.port, config.host), (5433, None));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectParams {
    name: String,
    type_name: &'static str,
    section: Option<Section>,
    options: Arc<Table>,
    merged: Table,
}

impl ConnectParams {
    /// Parameters from a section and options: what the core builds before calling `connect`.
    /// Public so that drivers can test their configuration handling without a secrets file.
    pub fn from_parts(name: &str, type_name: &'static str, section: Option<Section>, options: Table) -> Self {
        Self::new(name, type_name, section, Arc::new(options))
    }

    pub(crate) fn new(name: &str, type_name: &'static str, section: Option<Section>, options: Arc<Table>) -> Self {
        let mut merged = section.as_ref().map(|s| s.as_table().clone()).unwrap_or_default();
        for (key, value) in options.iter() {
            merged.insert(key.clone(), value.clone());
        }
        Self { name: name.to_owned(), type_name, section, options, merged }
    }

    /// The connection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection's type name.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The `[connections.<name>]` section, if the secrets have one.
    pub fn section(&self) -> Option<&Section> {
        self.section.as_ref()
    }

    /// The options passed to `connection()`, alone.
    pub fn options(&self) -> &Table {
        &self.options
    }

    /// The whole configuration: the section with the options laid over it. This exposes every
    /// value: handle it as a secret.
    pub fn secrets(&self) -> &Table {
        &self.merged
    }

    /// Whether the configuration is empty (no section, or an empty one, and no options). A
    /// `type` key alone counts as configuration, as in Streamlit.
    pub fn is_empty(&self) -> bool {
        self.merged.is_empty()
    }

    /// The value of a top-level key of the configuration.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.merged.get(key)
    }

    /// Where a top-level key's value came from: the options, or the secrets file.
    pub fn origin(&self, key: &str) -> Option<ConfigOrigin> {
        if self.options.contains_key(key) {
            return Some(ConfigOrigin::Options);
        }
        let section = self.section.as_ref().filter(|s| s.as_table().contains_key(key))?;
        section.origin().map(|path| ConfigOrigin::File(path.to_owned()))
    }

    /// An error about one key of the configuration, naming the connection, the key and where the
    /// value came from. A `problem` given as text is [`ConfigProblem::Invalid`]; it must not
    /// contain the value.
    ///
    /// ```
    /// use connections_core::{ConfigProblem, ConnectParams, Error};
    /// let params = ConnectParams::from_parts("db", "demo", None, "port = 'x'".parse().unwrap());
    /// let error = params.error("port", ConfigProblem::Expected { expected: "an integer".into(), found: "a string".into() });
    /// assert_eq!(error.to_string(), "connection \"db\": `port` (from the options passed to connection()): expected an integer, found a string");
    /// assert!(matches!(&error, Error::Config { problem, .. } if matches!(**problem, ConfigProblem::Expected { .. })));
    /// ```
    pub fn error(&self, key: &str, problem: impl Into<ConfigProblem>) -> Error {
        let top = key.split('.').next().unwrap_or(key);
        let origin = self.origin(top).or_else(|| self.section_origin());
        Error::Config { name: self.name.clone(), key: key.to_owned(), origin, problem: Box::new(problem.into()) }
    }

    /// The error for `found`, a value of the wrong form at `key`: names its type, never the value.
    pub fn expected(&self, key: &str, expected: &str, found: &Value) -> Error {
        let article = match found {
            Value::Integer(_) | Value::Array(_) => "an",
            _ => "a",
        };
        let found = format!("{article} {}", found.type_str());
        self.error(key, ConfigProblem::Expected { expected: expected.to_owned(), found })
    }

    /// Extracts the configuration into the driver's serde type. Keys the type does not know
    /// are an error (the `type` key excepted); see [`config_lenient`](Self::config_lenient).
    ///
    /// Errors name the connection, the key, its file (or the options) and what was expected,
    /// never the value.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T> {
        self.extract(true)
    }

    /// As [`config`](Self::config), but keys the type does not know are ignored.
    pub fn config_lenient<T: DeserializeOwned>(&self) -> Result<T> {
        self.extract(false)
    }

    fn extract<T: DeserializeOwned>(&self, strict: bool) -> Result<T> {
        let value = to_figment_table(&self.merged);
        let mut unknown = Vec::new();
        let parsed: Result<T, figment::Error> = serde_ignored::deserialize(&value, |path| {
            let path = path.to_string();
            if path != TYPE_KEY {
                unknown.push(path);
            }
        });
        let config = parsed.map_err(|err| self.extract_error(err))?;
        if strict && let Some(first) = unknown.first() {
            let problem = ConfigProblem::UnknownKey {
                context: format!("for a connection of type `{}`", self.type_name),
                supported: Vec::new(),
                closest: None,
                also: unknown[1..].to_vec(),
                hint: String::new(),
            };
            return Err(self.error(first, problem));
        }
        Ok(config)
    }

    fn extract_error(&self, err: figment::Error) -> Error {
        let mut errors = err.into_iter();
        let Some(first) = errors.next() else { return self.error("", "invalid configuration") };
        let mut key = first.path.clone();
        let mut message = if let figment::error::Kind::MissingField(field) = &first.kind {
            key.push(field.to_string());
            "required key is missing".to_owned()
        } else {
            redacted_kind(&first.kind, lookup(&self.merged, &first.path))
        };
        for other in errors {
            let more = redacted_kind(&other.kind, lookup(&self.merged, &other.path));
            message = format!("{message}; {more} at `{}`", other.path.join("."));
        }
        self.error(&key.join("."), message)
    }

    fn section_origin(&self) -> Option<ConfigOrigin> {
        self.section.as_ref()?.origin().map(|p| ConfigOrigin::File(p.to_owned()))
    }
}

fn lookup<'a>(table: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = table.get(first)?;
    for key in rest {
        value = value.get(key.as_str())?;
    }
    Some(value)
}

impl fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectParams")
            .field("name", &self.name)
            .field("type", &self.type_name)
            .field("section", &self.section.as_ref().map(Section::path))
            .field("values", &RedactedTable(&self.merged))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(options: &str) -> ConnectParams {
        ConnectParams::from_parts("db", "demo", None, options.parse().unwrap())
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Demo {
        host: String,
        port: Option<u16>,
    }

    #[test]
    fn unknown_keys_are_errors_unless_lenient() {
        let p = params("host = 'h'\nhots = 'typo'\nextra = 1\ntype = 'demo'\n");
        let err = p.config::<Demo>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection \"db\": `extra` (from the options passed to connection()): unknown key for a connection of type `demo` (also unknown: `hots`)"
        );
        assert_eq!(p.config_lenient::<Demo>().unwrap().host, "h");
    }

    #[test]
    fn type_errors_name_the_key_without_the_value() {
        let err = params("host = 'h'\nport = 'secret-port'\n").config::<Demo>().unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("`port`") && shown.contains("expected u16"), "{shown}");
        assert!(!shown.contains("secret-port"));
        let err = params("port = 1\n").config::<Demo>().unwrap_err();
        assert_eq!(err.to_string(), "connection \"db\": `host`: required key is missing");
    }

    #[test]
    fn debug_hides_values() {
        let shown = format!("{:?}", params("password = 'pw-123'\n"));
        assert!(!shown.contains("pw-123") && shown.contains("password"), "{shown}");
    }
}
