//! A sample third-party connector, written the way an outside author would: it depends on
//! `connections-core` only, implements [`BaseConnection`] and registers itself. Copy it.
//!
//! Type `files`: a folder of CSV files, where a query names a file (`conn.query("pets.csv")`).
//!
//! ```toml
//! [connections.local_csv]
//! type = "files"
//! root = "data"          # required: an existing folder
//! has_header = true      # optional, default true
//! delimiter = ","        # optional, one character, default ","
//! ```
//!
//! A query names a file inside the folder: `../x.csv`, absolute paths and symbolic links that
//! lead out of the folder are refused with a statement error. Files are read and parsed off the
//! async runtime's threads.
//!
//! An application that uses it links it with `use files_connector as _;` (or by naming
//! [`FilesConnection`] anywhere), and then `connection("local_csv").open()` finds it by name.

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use connections_core::arrow::csv::ReaderBuilder;
use connections_core::arrow::csv::reader::Format;
use connections_core::toml::Value;
use connections_core::{
    BaseConnection, ConfigProblem, ConnectParams, DataFrame, Error, Query, QueryBuilder, QueryRequest, Result,
    UnknownKey, async_trait,
};

connections_core::config_keys! {
    /// A key of the configuration of a connection of type `files`, in its
    /// `[connections.<name>]` section or in the options passed to `connection()`.
    pub enum FilesKey in "for a connection of type `files`" {
        /// `root`, a string: the folder holding the CSV files (relative to the working
        /// directory). Required.
        Root = "root",
        /// `has_header`, a boolean: whether the first line of each file names the columns.
        /// Default `true`.
        HasHeader = "has_header",
        /// `delimiter`, a string of one one-byte character. Default `","`.
        Delimiter = "delimiter",
        /// `type`: the connection type (`"files"`), read by the core; ignored here.
        Type = "type",
    }
}

/// A connection to a folder of CSV files.
pub struct FilesConnection {
    core: connections_core::ConnectionCore<Self>,
    queries: AtomicU64,
}

/// The raw client: the checked configuration.
#[derive(Debug)]
pub struct FilesClient {
    /// The folder, canonical (symbolic links resolved).
    root: PathBuf,
    has_header: bool,
    delimiter: u8,
}

impl FilesClient {
    /// Checks the configuration, every key, and that the folder exists.
    async fn new(params: &ConnectParams) -> Result<Self> {
        let unknown: Vec<UnknownKey> = params.secrets().keys().filter_map(|k| FilesKey::from_str(k).err()).collect();
        if let Some(first) = unknown.first() {
            return Err(params.error(first.key(), first.problem(&unknown)));
        }
        let root = match params.get(FilesKey::Root.as_ref()) {
            Some(Value::String(root)) => PathBuf::from(root),
            Some(other) => return Err(params.expected("root", "a string naming a folder", other)),
            None => {
                let problem = ConfigProblem::MissingKeys { keys: vec!["root".into()], hint: String::new() };
                return Err(params.error("root", problem));
            }
        };
        let has_header = match params.get(FilesKey::HasHeader.as_ref()) {
            None => true,
            Some(Value::Boolean(yes)) => *yes,
            Some(other) => return Err(params.expected("has_header", "a boolean", other)),
        };
        let delimiter = match params.get(FilesKey::Delimiter.as_ref()) {
            None => b',',
            Some(Value::String(d)) if d.len() == 1 => d.as_bytes()[0],
            // the value is not repeated: a misplaced secret must not show
            Some(Value::String(_)) => return Err(params.error("delimiter", "expected a single one-byte character")),
            Some(other) => return Err(params.expected("delimiter", "a string of one character", other)),
        };
        let folder_error = |what: &str| Error::connect(format!("folder {} {what}", root.display()));
        match tokio::fs::metadata(&root).await {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(folder_error("is not a folder")),
            Err(_) => return Err(folder_error("does not exist")),
        }
        let root = tokio::fs::canonicalize(&root).await.map_err(Error::connect)?;
        Ok(Self { root, has_header, delimiter })
    }

    /// The path of `file` in the folder, refused (a statement error) if it would lead out of it.
    /// Runs on a blocking thread: it reads the file system.
    fn path_of(&self, file: &str) -> Result<PathBuf> {
        let outside = || Error::statement(format!("`{file}` is not a file name inside the folder"));
        let relative = Path::new(file);
        let plain = relative.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if file.is_empty() || !plain {
            return Err(outside()); // absolute, `..`, a drive prefix
        }
        let path = self.root.join(relative);
        let real = path.canonicalize().map_err(|e| Error::statement(format!("cannot open `{file}`: {e}")))?;
        if !real.starts_with(&self.root) {
            return Err(outside()); // a symbolic link out of the folder
        }
        Ok(real)
    }

    /// Reads and parses one file. Blocking: call it through `spawn_blocking`.
    fn read(&self, file: &str) -> Result<DataFrame> {
        let path = self.path_of(file)?;
        let mut reader = File::open(&path).map(BufReader::new).map_err(Error::statement)?;
        let format = Format::default().with_header(self.has_header).with_delimiter(self.delimiter);
        let (schema, _) = format.infer_schema(&mut reader, None).map_err(Error::statement)?;
        reader.rewind().map_err(Error::statement)?;
        let csv = ReaderBuilder::new(Arc::new(schema)).with_format(format).build(reader).map_err(Error::statement)?;
        let schema = csv.schema();
        let batches = csv.collect::<std::result::Result<Vec<_>, _>>().map_err(Error::statement)?;
        DataFrame::new(schema, batches)
    }
}

#[async_trait]
impl BaseConnection for FilesConnection {
    type Raw = FilesClient;
    const TYPE_NAME: &'static str = "files";
    const ALIASES: &'static [&'static str] = &["csv-files"];
    const NAME_IMPLIES_TYPE: bool = true;

    async fn connect(params: &ConnectParams) -> Result<FilesClient> {
        FilesClient::new(params).await
    }

    connections_core::core_accessors!(query; queries: AtomicU64::new(0));
}
connections_core::register_connection!(FilesConnection);

impl FilesConnection {
    /// Reads a CSV file of the folder (cached like every query): `conn.query("pets.csv").await`.
    pub fn query(&self, file: &str) -> QueryBuilder<'_> {
        QueryBuilder::new(self, file)
    }

    /// How many files were actually read (cache misses that ran, retries included).
    pub fn queries_run(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    async fn read(&self, client: Arc<FilesClient>, file: Arc<str>) -> Result<DataFrame> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if !tokio::fs::metadata(&client.root).await.is_ok_and(|m| m.is_dir()) {
            return Err(Error::connection_lost(format!("folder {} is gone", client.root.display())));
        }
        let read = tokio::task::spawn_blocking(move || client.read(&file)).await;
        read.map_err(|e| Error::statement(format!("reading the file failed: {e}")))?
    }
}

#[async_trait]
impl Query for FilesConnection {
    async fn query_request(&self, request: QueryRequest) -> Result<DataFrame> {
        if let Some((name, _)) = request.params.first() {
            return Err(Error::statement(format!("files queries take no parameters, got `{name}`")));
        }
        self.core.cached_query(&request, |client| self.read(client, Arc::clone(&request.sql))).await
    }
}
