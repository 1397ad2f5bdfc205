//! A sample third-party connector, written the way an outside author would: it depends on
//! `connections-core` only, implements [`BaseConnection`] and registers itself.
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
//! An application that uses it links it with `use files_connector as _;` (or by naming
//! [`FilesConnection`] anywhere), and then `connection("local_csv").open()` finds it by name.

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connections_core::arrow::csv::ReaderBuilder;
use connections_core::arrow::csv::reader::Format;
use connections_core::{
    BaseConnection, ConnectParams, ConnectionCore, DataFrame, Error, Query, QueryBuilder, QueryRequest, Result,
    async_trait,
};
use serde::Deserialize;

/// A connection to a folder of CSV files.
pub struct FilesConnection {
    core: ConnectionCore<Self>,
    queries: AtomicU64,
}

/// The raw client: the checked configuration.
#[derive(Debug)]
pub struct FilesClient {
    root: PathBuf,
    has_header: bool,
    delimiter: u8,
    query_delay: Duration,
}

#[derive(Deserialize)]
struct Config {
    root: PathBuf,
    #[serde(default = "yes")]
    has_header: bool,
    #[serde(default)]
    delimiter: Option<String>,
    /// Test hook: wait this long in `connect`, to make concurrent opens overlap.
    #[serde(default)]
    connect_delay_ms: u64,
    /// Test hook: wait this long in every query, to make concurrent queries overlap.
    #[serde(default)]
    query_delay_ms: u64,
}

fn yes() -> bool {
    true
}

#[async_trait]
impl BaseConnection for FilesConnection {
    type Raw = FilesClient;
    const TYPE_NAME: &'static str = "files";
    const ALIASES: &'static [&'static str] = &["csv-files"];
    const NAME_IMPLIES_TYPE: bool = true;

    async fn connect(params: &ConnectParams) -> Result<FilesClient> {
        let config: Config = params.config()?;
        let delimiter = match config.delimiter.as_deref() {
            None => b',',
            Some(d) if d.len() == 1 => d.as_bytes()[0],
            Some(_) => return Err(params.error("delimiter", "expected a single one-byte character")),
        };
        tokio::time::sleep(Duration::from_millis(config.connect_delay_ms)).await;
        if !config.root.is_dir() {
            let message = format!("folder {} does not exist", config.root.display());
            return Err(Error::connect(message));
        }
        Ok(FilesClient {
            root: config.root,
            has_header: config.has_header,
            delimiter,
            query_delay: Duration::from_millis(config.query_delay_ms),
        })
    }

    fn from_core(core: ConnectionCore<Self>) -> Self {
        Self { core, queries: AtomicU64::new(0) }
    }

    fn core(&self) -> &ConnectionCore<Self> {
        &self.core
    }

    fn as_query(&self) -> Option<&dyn Query> {
        Some(self)
    }
}
connections_core::register_connection!(FilesConnection);

impl FilesConnection {
    /// Reads a CSV file of the folder (cached like every query): `conn.query("pets.csv").await`.
    pub fn query(&self, file: &str) -> QueryBuilder<'_> {
        QueryBuilder::new(self, file)
    }

    /// How many files were actually read (cache misses that ran).
    pub fn queries_run(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    async fn read(&self, client: Arc<FilesClient>, file: Arc<str>) -> Result<DataFrame> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(client.query_delay).await;
        if !client.root.is_dir() {
            return Err(Error::connection_lost(format!("folder {} is gone", client.root.display())));
        }
        let path = client.root.join(&*file);
        let mut reader = File::open(&path).map(BufReader::new).map_err(Error::statement)?;
        let format = Format::default().with_header(client.has_header).with_delimiter(client.delimiter);
        let (schema, _) = format.infer_schema(&mut reader, None).map_err(Error::statement)?;
        reader.rewind().map_err(Error::statement)?;
        let csv = ReaderBuilder::new(Arc::new(schema)).with_format(format).build(reader).map_err(Error::statement)?;
        let schema = csv.schema();
        let batches = csv.collect::<std::result::Result<Vec<_>, _>>().map_err(Error::statement)?;
        DataFrame::new(schema, batches)
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
