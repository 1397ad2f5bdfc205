//! `Secrets`, an immutable snapshot of the merged secrets, and `Section`, a view into one table.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::error::{Actual, Kind};
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::key_path;
use super::load::SourceFile;
use super::merge::{self, CONNECTIONS, Origins};
use super::redact::{MASK, RedactedTable};
use crate::error::{Error, Result};

/// An immutable snapshot of the merged secrets, the counterpart of `st.secrets`.
///
/// Cheap to clone (one `Arc`), safe to share between threads, and never changed after it is
/// made: a reload publishes a new snapshot. `Debug` shows the files and the keys, never a value.
///
/// ```
/// # fn main() -> Result<(), connections_core::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join(".streamlit")).unwrap();
/// std::fs::write(
///     dir.path().join(".streamlit/secrets.toml"),
///     "OpenAI_key = \"sk-123\"\n[connections.pets_db]\nurl = \"sqlite:///pets.db\"\n",
/// ).unwrap();
/// let store = connections_core::SecretsStore::builder()
///     .home_dir(dir.path().join("no-home"))
///     .project_dir(dir.path())
///     .build();
/// let secrets = store.load()?;
/// assert_eq!(secrets.get_str("OpenAI_key")?, "sk-123");
/// assert_eq!(secrets.get_str("connections.pets_db.url")?, "sqlite:///pets.db");
/// assert!(secrets.get("connections.other").is_none());
/// assert!(!format!("{secrets:?}").contains("sk-123"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Secrets {
    data: Arc<SecretsData>,
}

struct SecretsData {
    table: Table,
    files: Vec<PathBuf>,
    origins: Origins,
}

impl Secrets {
    /// A snapshot with no secrets and no files.
    pub fn empty() -> Self {
        Self::from_files(Vec::new())
    }

    pub(crate) fn from_files(files: Vec<SourceFile>) -> Self {
        let (table, origins) = merge::merge(&files);
        let files = files.into_iter().map(|f| f.path).collect();
        Self { data: Arc::new(SecretsData { table, files, origins }) }
    }

    /// The files (and directories of secrets) this snapshot was read from, in merge order.
    pub fn files(&self) -> &[PathBuf] {
        &self.data.files
    }

    /// The whole merged table. This exposes every value: handle it as a secret.
    pub fn as_table(&self) -> &Table {
        &self.data.table
    }

    /// The value at a dotted key path (`connections.pets_db.url`; quote keys that contain a dot:
    /// `connections."my.db".url`), or `None` when there is none or the path is malformed.
    pub fn get(&self, path: &str) -> Option<&Value> {
        key_path::parse(path).ok().and_then(|keys| self.lookup(&keys))
    }

    /// Whether a value exists at a dotted key path.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// The value at a dotted key path; an error naming the path and the files when it is missing.
    pub fn require(&self, path: &str) -> Result<&Value> {
        let keys = key_path::parse(path)?;
        self.require_keys(&keys)
    }

    /// The string at a dotted key path, the counterpart of `st.secrets["OpenAI_key"]`.
    ///
    /// Owned, so it outlives the snapshot (`secrets()?.get_str("key")?` works); borrow with
    /// [`require`](Self::require) instead. Errors name the key path and the file: a missing key,
    /// or a value of another type.
    pub fn get_str(&self, path: &str) -> Result<String> {
        let keys = key_path::parse(path)?;
        self.str_at(&keys).map(str::to_owned)
    }

    /// The table at a dotted key path as a [`Section`].
    pub fn section(&self, path: &str) -> Result<Section> {
        let keys = key_path::parse(path)?;
        self.section_at(keys)
    }

    /// The section `[connections.<name>]`, if the secrets have one and it is a table.
    pub fn connection(&self, name: &str) -> Option<Section> {
        let keys = vec![CONNECTIONS.to_owned(), name.to_owned()];
        self.lookup(&keys)?.is_table().then(|| Section { secrets: self.clone(), keys })
    }

    /// Extracts the value at a dotted key path (the root for `""`) into any serde type.
    ///
    /// Errors name the full key path of the offending value, its file, what was expected and
    /// what was found, but not the value itself.
    ///
    /// ```
    /// # fn main() -> Result<(), connections_core::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::fs::write(dir.path().join("s.toml"), "[db]\nhost = \"h\"\nport = \"oops\"\n").unwrap();
    /// # let store = connections_core::SecretsStore::builder().files([dir.path().join("s.toml")]).build();
    /// #[derive(serde::Deserialize)]
    /// struct Db { host: String, port: u16 }
    /// let err = store.load()?.extract::<Db>("db").err().unwrap();
    /// assert!(err.to_string().starts_with("secret `db.port` (from "));
    /// assert!(err.to_string().ends_with("s.toml): found a string, expected u16"));
    /// # Ok(()) }
    /// ```
    pub fn extract<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let keys = key_path::parse(path)?;
        self.extract_at(&keys)
    }

    /// The top-level keys, in the order they first appear in the files.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.table.keys().map(String::as_str)
    }

    /// The number of top-level keys.
    pub fn len(&self) -> usize {
        self.data.table.len()
    }

    /// Whether there are no secrets at all.
    pub fn is_empty(&self) -> bool {
        self.data.table.is_empty()
    }

    /// The file a value came from.
    pub fn origin(&self, path: &str) -> Option<&Path> {
        let keys = key_path::parse(path).ok()?;
        self.origin_of(&keys)
    }

    /// Whether the value at `path` differs between two snapshots. Only values count: reordering
    /// keys, comments, spacing and other sections do not.
    ///
    /// This is what a connection uses to decide whether a reload concerns it.
    pub fn changed_at(&self, other: &Secrets, path: &str) -> bool {
        self.get(path) != other.get(path)
    }

    /// Whether the section `[connections.<name>]` differs in value between two snapshots.
    pub fn connection_changed(&self, other: &Secrets, name: &str) -> bool {
        let keys = [CONNECTIONS.to_owned(), name.to_owned()];
        self.lookup(&keys) != other.lookup(&keys)
    }

    fn lookup(&self, keys: &[String]) -> Option<&Value> {
        let (first, rest) = keys.split_first()?;
        let mut value = self.data.table.get(first)?;
        for key in rest {
            value = value.as_table()?.get(key)?;
        }
        Some(value)
    }

    fn origin_of(&self, keys: &[String]) -> Option<&Path> {
        let index = self.data.origins.of(keys)?;
        self.data.files.get(index).map(PathBuf::as_path)
    }

    fn require_keys(&self, keys: &[String]) -> Result<&Value> {
        if keys.is_empty() {
            return Err(Error::KeyPath { path: String::new(), reason: "the root is not a single value" });
        }
        self.lookup(keys)
            .ok_or_else(|| Error::MissingSecret { key: key_path::join(keys), searched: self.data.files.clone() })
    }

    fn str_at(&self, keys: &[String]) -> Result<&str> {
        let value = self.require_keys(keys)?;
        value.as_str().ok_or_else(|| self.type_error(keys, value, "a string"))
    }

    fn section_at(&self, keys: Vec<String>) -> Result<Section> {
        if !keys.is_empty() {
            let value = self.require_keys(&keys)?;
            if !value.is_table() {
                return Err(self.type_error(&keys, value, "a table"));
            }
        }
        Ok(Section { secrets: self.clone(), keys })
    }

    fn table_at(&self, keys: &[String]) -> &Table {
        match self.lookup(keys) {
            Some(Value::Table(table)) => table,
            _ => &self.data.table, // only reached for the root: sections are checked when made
        }
    }

    fn extract_at<T: DeserializeOwned>(&self, keys: &[String]) -> Result<T> {
        let value =
            if keys.is_empty() { to_figment_table(&self.data.table) } else { to_figment(self.require_keys(keys)?) };
        value.deserialize::<T>().map_err(|err| self.extract_error(keys, err))
    }

    fn type_error(&self, keys: &[String], found: &Value, expected: &str) -> Error {
        Error::SecretType {
            key: key_path::join(keys),
            origin: self.origin_of(keys).map(Path::to_owned),
            message: format!("found {}, expected {expected}", article(found.type_str())),
        }
    }

    /// Turns figment's errors (possibly several, chained) into one redacted error.
    fn extract_error(&self, base: &[String], err: figment::Error) -> Error {
        let mut first_key = None;
        let mut messages = Vec::new();
        for e in err {
            let mut keys = base.to_vec();
            keys.extend(e.path.iter().cloned());
            let message = redacted_kind(&e.kind, self.lookup(&keys));
            if first_key.is_none() {
                first_key = Some(keys);
            } else {
                messages.push(format!("{} at `{}`", message, key_path::join(&keys)));
                continue;
            }
            messages.insert(0, message);
        }
        let keys = first_key.unwrap_or_else(|| base.to_vec());
        Error::SecretType {
            key: key_path::join(&keys),
            origin: self.origin_of(&keys).or_else(|| self.origin_of(base)).map(Path::to_owned),
            message: messages.join("; "),
        }
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("files", &self.data.files)
            .field("values", &RedactedTable(&self.data.table))
            .finish()
    }
}

impl PartialEq for Secrets {
    /// Two snapshots are equal when they hold the same values (key order aside) from the same
    /// files.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
            || (self.data.files == other.data.files && self.data.table == other.data.table)
    }
}

impl Default for Secrets {
    fn default() -> Self {
        Self::empty()
    }
}

/// One table of a [`Secrets`] snapshot, such as `[connections.pets_db]`: a cheap view that keeps
/// the snapshot alive. Paths given to its methods are relative to the section.
///
/// ```
/// # fn main() -> Result<(), connections_core::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # std::fs::write(dir.path().join("s.toml"), "[connections.db]\nhost = \"h\"\npassword = \"pw\"\n").unwrap();
/// # let store = connections_core::SecretsStore::builder().files([dir.path().join("s.toml")]).build();
/// let section = store.load()?.connection("db").unwrap();
/// assert_eq!(section.path(), "connections.db");
/// assert_eq!(section.get_str("host")?, "h");
/// assert_eq!(format!("{section:?}"), r#"Section { path: "connections.db", values: {"host": ***, "password": ***} }"#);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Section {
    secrets: Secrets,
    keys: Vec<String>,
}

impl Section {
    /// The dotted path of this section inside the secrets.
    pub fn path(&self) -> String {
        key_path::join(&self.keys)
    }

    /// The snapshot this section belongs to.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The section's table. This exposes every value: handle it as a secret.
    pub fn as_table(&self) -> &Table {
        self.secrets.table_at(&self.keys)
    }

    /// The file this section came from (a section always comes whole from one file).
    pub fn origin(&self) -> Option<&Path> {
        self.secrets.origin_of(&self.keys)
    }

    /// The value at a path relative to the section, or `None`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let keys = self.full(path).ok()?;
        self.secrets.lookup(&keys)
    }

    /// The string at a path relative to the section; errors name the full path and the file.
    pub fn get_str(&self, path: &str) -> Result<String> {
        let keys = self.full(path)?;
        self.secrets.str_at(&keys).map(str::to_owned)
    }

    /// Extracts the value at a path relative to the section (`""` for the whole section).
    pub fn extract<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let keys = self.full(path)?;
        self.secrets.extract_at(&keys)
    }

    /// The section's keys, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.as_table().keys().map(String::as_str)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.as_table().len()
    }

    /// Whether the section has no keys.
    pub fn is_empty(&self) -> bool {
        self.as_table().is_empty()
    }

    fn full(&self, path: &str) -> Result<Vec<String>> {
        let mut keys = self.keys.clone();
        keys.extend(key_path::parse(path)?);
        Ok(keys)
    }
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Section").field("path", &self.path()).field("values", &RedactedTable(self.as_table())).finish()
    }
}

impl PartialEq for Section {
    /// Equal when the values are equal, whatever their order.
    fn eq(&self, other: &Self) -> bool {
        self.as_table() == other.as_table()
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "integer" | "array" => format!("an {type_name}"),
        other => format!("a {other}"),
    }
}

/// Describes a deserialization failure without the offending value. Custom messages (from a
/// type's own `Deserialize`) are kept, with the value masked should they quote it.
pub(crate) fn redacted_kind(kind: &Kind, value: Option<&Value>) -> String {
    let actual = |a: &Actual| match a {
        Actual::Bool(_) => "a boolean".to_owned(),
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer".to_owned(),
        Actual::Float(_) => "a float".to_owned(),
        Actual::Char(_) | Actual::Str(_) => "a string".to_owned(),
        Actual::Bytes(_) => "bytes".to_owned(),
        Actual::Seq => "an array".to_owned(),
        Actual::Map => "a table".to_owned(),
        other => format!("{other}"),
    };
    match kind {
        Kind::InvalidType(a, expected) => format!("found {}, expected {expected}", actual(a)),
        Kind::InvalidValue(a, expected) => format!("invalid value ({}), expected {expected}", actual(a)),
        Kind::InvalidLength(n, expected) => format!("found {n} items, expected {expected}"),
        Kind::UnknownVariant(_, expected) => format!("unknown variant, expected one of: {}", expected.join(", ")),
        Kind::UnknownField(field, expected) => {
            format!("unknown key `{field}`, expected one of: {}", expected.join(", "))
        }
        Kind::MissingField(field) => format!("missing key `{field}`"),
        Kind::DuplicateField(field) => format!("duplicate key `{field}`"),
        Kind::Message(message) => mask(message, value),
        other => mask(&other.to_string(), value),
    }
}

fn mask(message: &str, value: Option<&Value>) -> String {
    let shown = match value {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v @ (Value::Integer(_) | Value::Float(_) | Value::Datetime(_))) => v.to_string(),
        _ => return message.to_owned(),
    };
    message.replace(&shown, MASK)
}

fn to_figment(value: &Value) -> figment::value::Value {
    use figment::value::Value as F;
    match value {
        Value::String(s) => F::from(s.clone()),
        Value::Integer(i) => F::from(*i),
        Value::Float(x) => F::from(*x),
        Value::Boolean(b) => F::from(*b),
        Value::Datetime(dt) => F::from(dt.to_string()),
        Value::Array(items) => F::from(items.iter().map(to_figment).collect::<Vec<_>>()),
        Value::Table(table) => to_figment_table(table),
    }
}

pub(crate) fn to_figment_table(table: &Table) -> figment::value::Value {
    let dict: figment::value::Dict = table.iter().map(|(k, v)| (k.clone(), to_figment(v))).collect();
    figment::value::Value::from(dict)
}
