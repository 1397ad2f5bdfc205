//! `Secrets`, an immutable snapshot of the merged secrets, and `Section`, a view into one table.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::error::{Actual, Kind};
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::key_path::{self, Segment};
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
/// assert!(secrets.get("connections.other")?.is_none());
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
        let (table, origins, files) = merge::merge(files);
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

    /// The value at a key path, or `None` when there is none; an [`Error::KeyPath`] when the
    /// path is malformed.
    ///
    /// Paths are dotted (`connections.pets_db.url`), index arrays (`servers[0].name`) and quote
    /// keys that contain a dot, a bracket or a quote (`connections."my.db".url`,
    /// `"say \"hi\""`, or `'my.db'` taken literally).
    ///
    /// ```
    /// # fn main() -> Result<(), connections_core::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::fs::write(dir.path().join("s.toml"), "[[servers]]\nname = \"alpha\"\n[connections.\"my.db\"]\nurl = \"u\"\n").unwrap();
    /// # let secrets = connections_core::SecretsStore::builder().files([dir.path().join("s.toml")]).build().load()?;
    /// use connections_core::toml::Value;
    /// assert_eq!(secrets.get("servers[0].name")?.and_then(Value::as_str), Some("alpha"));
    /// assert_eq!(secrets.get("servers[1].name")?, None);
    /// assert_eq!(secrets.get(r#"connections."my.db".url"#)?.and_then(Value::as_str), Some("u"));
    /// assert!(matches!(secrets.get("servers[x]"), Err(connections_core::Error::KeyPath { .. })));
    /// # Ok(()) }
    /// ```
    pub fn get(&self, path: &str) -> Result<Option<&Value>> {
        let keys = key_path::parse(path)?;
        Ok(self.lookup(&keys))
    }

    /// Whether a value exists at a key path; an error when the path is malformed.
    pub fn contains(&self, path: &str) -> Result<bool> {
        self.get(path).map(|value| value.is_some())
    }

    /// The value at a key path; an error naming the path and the files when it is missing.
    pub fn require(&self, path: &str) -> Result<&Value> {
        let keys = key_path::parse(path)?;
        self.require_keys(&keys)
    }

    /// The string at a key path, the counterpart of `st.secrets["OpenAI_key"]`.
    ///
    /// Owned, so it outlives the snapshot (`secrets()?.get_str("key")?` works); borrow with
    /// [`require`](Self::require) instead. Errors name the key path and the file: a missing key,
    /// or a value of another type.
    pub fn get_str(&self, path: &str) -> Result<String> {
        let keys = key_path::parse(path)?;
        self.str_at(&keys).map(str::to_owned)
    }

    /// The table at a key path as a [`Section`].
    pub fn section(&self, path: &str) -> Result<Section> {
        let keys = key_path::parse(path)?;
        self.section_at(keys)
    }

    /// The section `[connections.<name>]`, if the secrets have one and it is a table.
    ///
    /// See [`try_connection`](Self::try_connection) to tell a missing section from an entry that
    /// is not a table.
    pub fn connection(&self, name: &str) -> Option<Section> {
        self.try_connection(name).ok().flatten()
    }

    /// The section `[connections.<name>]`: `Ok(None)` when there is none, an error naming the
    /// key and the file when the entry (or `connections` itself) is not a table, as in
    /// `[connections]` `c = 5`.
    ///
    /// ```
    /// # fn main() -> Result<(), connections_core::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::fs::write(dir.path().join("s.toml"), "[connections]\nc = 5\n[connections.db]\nurl = \"u\"\n").unwrap();
    /// # let secrets = connections_core::SecretsStore::builder().files([dir.path().join("s.toml")]).build().load()?;
    /// assert!(secrets.try_connection("db")?.is_some());
    /// assert!(secrets.try_connection("other")?.is_none());
    /// let err = secrets.try_connection("c").unwrap_err();
    /// assert!(err.to_string().starts_with("secret `connections.c` (from "));
    /// assert!(err.to_string().ends_with("found an integer, expected a table"));
    /// # Ok(()) }
    /// ```
    pub fn try_connection(&self, name: &str) -> Result<Option<Section>> {
        let top = [Segment::key(CONNECTIONS)];
        match self.lookup(&top) {
            None => return Ok(None),
            Some(value) if !value.is_table() => return Err(self.type_error(&top, value, "a table")),
            Some(_) => {}
        }
        let keys = vec![Segment::key(CONNECTIONS), Segment::key(name)];
        match self.lookup(&keys) {
            None => Ok(None),
            Some(value) if !value.is_table() => Err(self.type_error(&keys, value, "a table")),
            Some(_) => Ok(Some(Section { secrets: self.clone(), keys })),
        }
    }

    /// Extracts the value at a key path (the root for `""`) into any serde type.
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

    /// The file a value came from (`None` when no file holds the path); an error when the path
    /// is malformed.
    pub fn origin(&self, path: &str) -> Result<Option<&Path>> {
        let keys = key_path::parse(path)?;
        Ok(self.origin_of(&keys))
    }

    /// Whether the value at `path` differs between two snapshots. Only values count: reordering
    /// keys, comments, spacing and other sections do not. An error when the path is malformed.
    ///
    /// This is what a connection uses to decide whether a reload concerns it.
    pub fn changed_at(&self, other: &Secrets, path: &str) -> Result<bool> {
        let keys = key_path::parse(path)?;
        Ok(self.lookup(&keys) != other.lookup(&keys))
    }

    /// Whether the section `[connections.<name>]` differs in value between two snapshots.
    pub fn connection_changed(&self, other: &Secrets, name: &str) -> bool {
        let keys = [Segment::key(CONNECTIONS), Segment::key(name)];
        self.lookup(&keys) != other.lookup(&keys)
    }

    fn lookup(&self, keys: &[Segment]) -> Option<&Value> {
        let (first, rest) = keys.split_first()?;
        let mut value = self.data.table.get(first.as_key()?)?;
        for segment in rest {
            value = match segment {
                Segment::Key(key) => value.as_table()?.get(key)?,
                Segment::Index(index) => value.as_array()?.get(*index)?,
            };
        }
        Some(value)
    }

    fn origin_of(&self, keys: &[Segment]) -> Option<&Path> {
        let index = self.data.origins.of(keys)?;
        self.data.files.get(index).map(PathBuf::as_path)
    }

    fn require_keys(&self, keys: &[Segment]) -> Result<&Value> {
        if keys.is_empty() {
            return Err(Error::KeyPath { path: String::new(), reason: "the root is not a single value" });
        }
        self.lookup(keys)
            .ok_or_else(|| Error::MissingSecret { key: key_path::join(keys), searched: self.data.files.clone() })
    }

    fn str_at(&self, keys: &[Segment]) -> Result<&str> {
        let value = self.require_keys(keys)?;
        value.as_str().ok_or_else(|| self.type_error(keys, value, "a string"))
    }

    fn section_at(&self, keys: Vec<Segment>) -> Result<Section> {
        if !keys.is_empty() {
            let value = self.require_keys(&keys)?;
            if !value.is_table() {
                return Err(self.type_error(&keys, value, "a table"));
            }
        }
        Ok(Section { secrets: self.clone(), keys })
    }

    fn table_at(&self, keys: &[Segment]) -> &Table {
        match self.lookup(keys) {
            Some(Value::Table(table)) => table,
            _ => &self.data.table, // only reached for the root: sections are checked when made
        }
    }

    fn extract_at<T: DeserializeOwned>(&self, keys: &[Segment]) -> Result<T> {
        let scope = if keys.is_empty() { None } else { Some(self.require_keys(keys)?) };
        let value = scope.map_or_else(|| to_figment_table(&self.data.table), to_figment);
        value.deserialize::<T>().map_err(|err| self.extract_error(keys, scope, err))
    }

    fn type_error(&self, keys: &[Segment], found: &Value, expected: &str) -> Error {
        Error::SecretType {
            key: key_path::join(keys),
            origin: self.origin_of(keys).map(Path::to_owned),
            message: format!("found {}, expected {expected}", article(found.type_str())),
        }
    }

    /// Turns figment's errors (possibly several, chained) into one redacted error. Every value
    /// of the extracted scope is masked in free-text messages, whatever its shape.
    fn extract_error(&self, base: &[Segment], scope: Option<&Value>, err: figment::Error) -> Error {
        let masks = Masks::of(scope.map_or(Scope::Table(&self.data.table), Scope::Value));
        let mut first_key = None;
        let mut messages = Vec::new();
        for e in err {
            let keys = self.figment_path(base, &e.path);
            let message = masks.apply(&redacted_kind(&e.kind, self.lookup(&keys)));
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

    /// The segments of a figment error path below `base`: a number inside an array is an index.
    fn figment_path(&self, base: &[Segment], path: &[String]) -> Vec<Segment> {
        let mut keys = base.to_vec();
        for part in path {
            let in_array = self.lookup(&keys).is_some_and(Value::is_array);
            match part.parse() {
                Ok(index) if in_array => keys.push(Segment::Index(index)),
                _ => keys.push(Segment::key(part.as_str())),
            }
        }
        keys
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
    keys: Vec<Segment>,
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

    /// The value at a path relative to the section, or `None`; an error when the path is
    /// malformed. Paths are written as for [`Secrets::get`].
    pub fn get(&self, path: &str) -> Result<Option<&Value>> {
        let keys = self.full(path)?;
        Ok(self.secrets.lookup(&keys))
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

    fn full(&self, path: &str) -> Result<Vec<Segment>> {
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
/// type's own `Deserialize`) are kept, with `value` masked in every form it may be quoted in.
pub(crate) fn redacted_kind(kind: &Kind, value: Option<&Value>) -> String {
    let actual = |a: &Actual| match a {
        Actual::Bool(_) => "a boolean".to_owned(),
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer".to_owned(),
        Actual::Float(_) => "a float".to_owned(),
        Actual::Char(_) | Actual::Str(_) => "a string".to_owned(),
        Actual::Bytes(_) => "bytes".to_owned(),
        Actual::Seq => "an array".to_owned(),
        Actual::Map => "a table".to_owned(),
        Actual::Other(_) => "a value".to_owned(),
        other => format!("{other}"),
    };
    let message = match kind {
        Kind::InvalidType(a, expected) => format!("found {}, expected {expected}", actual(a)),
        Kind::InvalidValue(a, expected) => format!("invalid value ({}), expected {expected}", actual(a)),
        Kind::InvalidLength(n, expected) => format!("found {n} items, expected {expected}"),
        Kind::UnknownVariant(_, expected) => format!("unknown variant, expected one of: {}", expected.join(", ")),
        Kind::UnknownField(field, expected) => {
            format!("unknown key `{field}`, expected one of: {}", expected.join(", "))
        }
        Kind::MissingField(field) => format!("missing key `{field}`"),
        Kind::DuplicateField(field) => format!("duplicate key `{field}`"),
        Kind::Message(message) => message.clone(),
        other => other.to_string(),
    };
    match value {
        Some(value) => Masks::of(Scope::Value(value)).apply(&message),
        None => message,
    }
}

/// Where the values to mask live.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Value(&'a Value),
    Table(&'a Table),
}

/// Every text form in which a value of a scope may appear in a message (raw, escaped as Rust's
/// `Debug`, `escape_default` and TOML write it, line by line), longest first.
struct Masks(Vec<String>);

impl Masks {
    /// Numbers and dates shorter than this are masked only as the offending value itself, so
    /// that a `1` elsewhere in the scope does not garble `found 1 items`.
    const SHORT: usize = 3;

    fn of(scope: Scope<'_>) -> Self {
        let mut forms = Vec::new();
        match scope {
            Scope::Value(value) => {
                if let Some(text) = scalar_text(value) {
                    forms.push(text); // the offending value itself, however short
                }
                collect(value, &mut forms);
            }
            Scope::Table(table) => table.values().for_each(|v| collect(v, &mut forms)),
        }
        forms.retain(|f| !f.is_empty());
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        Self(forms)
    }

    fn apply(&self, message: &str) -> String {
        let mut message = message.to_owned();
        for form in &self.0 {
            if message.contains(form.as_str()) {
                message = message.replace(form.as_str(), MASK);
            }
        }
        message
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Integer(_) | Value::Float(_) | Value::Datetime(_) => Some(value.to_string()),
        _ => None,
    }
}

fn collect(value: &Value, forms: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            forms.push(s.clone());
            let debug = format!("{s:?}");
            forms.push(debug[1..debug.len() - 1].to_owned());
            forms.push(s.escape_default().to_string());
            let toml = Value::String(s.clone()).to_string();
            forms.push(toml.trim_matches(|c| c == '"' || c == '\'').to_owned());
            forms.push(debug); // with its quotes, so no stray quote is left around the mask
            forms.extend(s.lines().map(str::trim).filter(|l| l.chars().count() >= Masks::SHORT).map(str::to_owned));
        }
        Value::Integer(_) | Value::Float(_) | Value::Datetime(_) => {
            forms.extend(scalar_text(value).filter(|t| t.len() >= Masks::SHORT));
        }
        Value::Boolean(_) => {}
        Value::Array(items) => items.iter().for_each(|v| collect(v, forms)),
        Value::Table(table) => table.values().for_each(|v| collect(v, forms)),
    }
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
