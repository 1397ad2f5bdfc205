//! The configuration-source layer: where each key of a Snowflake connection comes from.
//!
//! A [`Sources`] is an ordered list of [`Source`]s (the options, the `[connections.<name>]`
//! section, a connection of the connector's own files, ...); the first source that has a key
//! gives its value. Every value keeps its origin, so that an error names the file (or the
//! options) it came from. Other crates add their own sources (a SnowSQL file, the Snowpark
//! Container Services environment) by pushing more of them.

use connections_core::toml::{Table, Value};
use connections_core::{ConfigOrigin, ConfigProblem, Error};

/// One source of configuration: a table of keys and where it came from.
#[derive(Clone)]
pub struct Source {
    origin: ConfigOrigin,
    label: String,
    values: Table,
}

impl Source {
    /// A source of `values` read from `origin`; `label` names it in messages
    /// (`[connections.pets]`, `[default] of ~/.snowflake/connections.toml`).
    pub fn new(origin: ConfigOrigin, label: impl Into<String>, values: Table) -> Self {
        Self { origin, label: label.into(), values }
    }

    /// Where the values came from.
    pub fn origin(&self) -> &ConfigOrigin {
        &self.origin
    }

    /// What the source is, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The values. They may be secrets: handle them as such.
    pub fn values(&self) -> &Table {
        &self.values
    }
}

impl std::fmt::Debug for Source {
    /// The label, origin and keys; never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&String> = self.values.keys().collect();
        f.debug_struct("Source").field("label", &self.label).field("origin", &self.origin).field("keys", &keys).finish()
    }
}

/// The sources of one connection's configuration, first wins per key.
///
/// ```
/// use connections_core::ConfigOrigin;
/// use connections_snowflake::{Source, Sources};
/// let mut sources = Sources::new("db");
/// sources.push(Source::new(ConfigOrigin::Options, "the options", "user = 'opt'".parse().unwrap()));
/// sources.push(Source::new(ConfigOrigin::File("/h/c.toml".into()), "[db]", "user = 'f'\nrole = 'r'".parse().unwrap()));
/// assert_eq!(sources.get_str("user").unwrap(), Some("opt".into()));
/// assert_eq!(sources.get_str("role").unwrap(), Some("r".into()));
/// ```
#[derive(Clone, Debug)]
pub struct Sources {
    name: String,
    list: Vec<Source>,
}

impl Sources {
    /// No sources yet, for the connection `name`.
    pub fn new(name: &str) -> Self {
        Self { name: name.to_owned(), list: Vec::new() }
    }

    /// The connection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a source after the others (it gives only the keys they lack). Empty sources are
    /// kept out.
    pub fn push(&mut self, source: Source) {
        if !source.values.is_empty() {
            self.list.push(source);
        }
    }

    /// The sources, first first.
    pub fn list(&self) -> &[Source] {
        &self.list
    }

    /// Whether no source has any key.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether any source has a key other than `type`.
    pub fn is_configured(&self) -> bool {
        self.list.iter().any(|s| s.values.keys().any(|k| k != connections_core::TYPE_KEY))
    }

    /// The value of `key` and the source it came from.
    pub fn lookup(&self, key: &str) -> Option<(&Value, &Source)> {
        self.list.iter().find_map(|s| s.values.get(key).map(|v| (v, s)))
    }

    /// The value of the first of `keys` (a key and its aliases) that is set, with its key.
    pub fn lookup_any<'k>(&self, keys: &[&'k str]) -> Option<(&'k str, &Value, &Source)> {
        self.list.iter().find_map(|s| keys.iter().find_map(|k| s.values.get(*k).map(|v| (*k, v, s))))
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.lookup(key).map(|(v, _)| v)
    }

    /// The string value of `key`; another type is an error naming the key and its source.
    pub fn get_str(&self, key: &str) -> Result<Option<String>, Error> {
        match self.lookup(key) {
            None => Ok(None),
            Some((Value::String(s), _)) => Ok(Some(s.clone())),
            Some((other, source)) => Err(self.expected(key, source, "a string", other)),
        }
    }

    /// An error about `key` as found in `source`.
    pub fn error(&self, key: &str, source: Option<&Source>, problem: impl Into<ConfigProblem>) -> Error {
        Error::Config {
            name: self.name.clone(),
            key: key.to_owned(),
            origin: source.map(|s| s.origin.clone()),
            problem: Box::new(problem.into()),
        }
    }

    /// The error of a value of the wrong form: names its type, never the value.
    pub fn expected(&self, key: &str, source: &Source, expected: &str, found: &Value) -> Error {
        let article = if matches!(found, Value::Integer(_) | Value::Array(_)) { "an" } else { "a" };
        let problem =
            ConfigProblem::Expected { expected: expected.to_owned(), found: format!("{article} {}", found.type_str()) };
        self.error(key, Some(source), problem)
    }
}
