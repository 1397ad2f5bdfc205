//! Shared helpers of the integration tests (`tests/tests/*.rs`).

pub mod emulator_harness;
pub mod snowflake_proxy;
pub mod throwaway;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use connections::{SecretsStore, SecretsStoreBuilder};

/// A log sink for tests of what the library logs: a `tracing_subscriber` writer that keeps
/// everything written, readable with [`text`](Self::text).
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far.
    ///
    /// # Panics
    /// If a writer panicked while holding the buffer.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("the log buffer")).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("the log buffer is poisoned"))?.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A throw-away home directory and project directory, each with its `.streamlit` folder created
/// on demand.
pub struct Project {
    root: tempfile::TempDir,
}

impl Project {
    /// A new empty pair of directories.
    ///
    /// # Panics
    /// If the temporary directory cannot be created.
    pub fn new() -> Self {
        Self { root: tempfile::tempdir().expect("create a temporary directory") }
    }

    /// The directory standing in for `~`.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// The directory standing in for the working directory.
    pub fn project(&self) -> PathBuf {
        self.root.path().join("project")
    }

    /// `~/.streamlit/secrets.toml`.
    pub fn global_secrets(&self) -> PathBuf {
        self.home().join(".streamlit/secrets.toml")
    }

    /// `./.streamlit/secrets.toml`.
    pub fn project_secrets(&self) -> PathBuf {
        self.project().join(".streamlit/secrets.toml")
    }

    /// Writes `contents` to `path`, creating its folders.
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
        let path = path.as_ref();
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create folders");
        std::fs::write(path, contents).expect("write the file");
    }

    /// A store builder for these two directories.
    pub fn builder(&self) -> SecretsStoreBuilder {
        SecretsStore::builder().home_dir(self.home()).project_dir(self.project())
    }

    /// A store for these two directories.
    pub fn store(&self) -> SecretsStore {
        self.builder().build()
    }

    /// A store for these two directories that watches for changes, with a short debounce.
    pub fn watching_store(&self) -> SecretsStore {
        self.builder().watch(true).debounce(Duration::from_millis(30)).build()
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

/// Polls `condition` every 10 ms until it holds; false after `limit`.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The URL of a test database server from `var`, or `None` (with a printed notice) when it is
/// unset, so that a machine without the server still passes. For a test that does nothing else
/// without it: the skip is recorded where `cargo xtask test` counts it (the file named by
/// `CONNECTIONS_TEST_SKIP_LOG`), so that the test counts as skipped, not passed.
pub fn server_url(var: &str) -> Option<String> {
    let url = optional_server_url(var);
    if url.is_none()
        && let Some(log) = std::env::var_os("CONNECTIONS_TEST_SKIP_LOG")
    {
        use std::io::Write as _;
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log);
        // one short write per line, so that concurrent tests do not interleave
        let _ = file.and_then(|mut f| f.write_all(format!("{var}\t{test}\n").as_bytes()));
    }
    url
}

/// [`server_url`] for a test that runs on other backends too when this server is missing: the
/// skip of that part is printed, not counted.
pub fn optional_server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("skipped: {var} is not set, so this test has no server to run against");
            None
        }
    }
}

/// A table name no other test (or earlier run) uses.
pub fn unique_table(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An error and all its causes, `error / cause / cause...`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain = format!("{chain} / {cause}");
        source = cause.source();
    }
    chain
}

/// Opens `[connections.<name>]` with `url` as type `sql`, with a private query cache and quick
/// retries (3 attempts, 200 ms apart); the project holds the secrets file.
///
/// # Panics
/// If the connection cannot be opened.
pub async fn open_sql(url: &str, name: &str) -> (Project, std::sync::Arc<connections::sql::SqlConnection>) {
    open_sql_with(url, name, "").await
}

/// [`open_sql`] with more TOML lines in the connection's section (`create_engine_kwargs = ...`).
///
/// # Panics
/// If the connection cannot be opened.
pub async fn open_sql_with(
    url: &str,
    name: &str,
    extra: &str,
) -> (Project, std::sync::Arc<connections::sql::SqlConnection>) {
    let p = Project::new();
    p.write(p.project_secrets(), format!("[connections.{name}]\ntype = 'sql'\nurl = '{url}'\n{extra}\n"));
    let policy = connections::RetryPolicy::new(3, Duration::from_millis(200)).expect("a valid policy");
    let conn = connections::connection(name)
        .secrets_store(p.store())
        .query_cache(connections::QueryCache::new(64 << 20))
        .retry(policy)
        .open_as::<connections::sql::SqlConnection>()
        .await
        .expect("open the connection");
    (p, conn)
}

/// What one read path gave: the result as CSV with a header of `name: type` pairs, or the error
/// with its causes.
pub type PathResult = Result<String, String>;

/// A result as comparable text: `name: type` per column, then the CSV of the rows with NULL
/// written `NULL` (so that it differs from an empty string), or a table of them where CSV cannot
/// hold a column (a list).
///
/// # Panics
/// If the frame cannot be written either way.
pub fn frame_text(df: &connections::DataFrame) -> String {
    let fields: Vec<String> = df.schema().fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect();
    let mut csv = Vec::new();
    let written = {
        let mut writer = connections::arrow::csv::WriterBuilder::new().with_null("NULL".to_owned()).build(&mut csv);
        df.batches().iter().try_for_each(|batch| writer.write(batch))
    };
    let rows = match written {
        Ok(()) if df.num_rows() > 0 => String::from_utf8(csv).expect("CSV is UTF-8"),
        Ok(()) => format!("{}\n", df.column_names().join(",")),
        Err(_) => {
            connections::arrow::util::pretty::pretty_format_batches(df.batches()).expect("format the rows").to_string()
        }
    };
    format!("{}\n{rows}", fields.join(", "))
}

/// `sql` (a query without parameters) through every read path of a SQL connection:
/// `query` (the backend's fast path where it takes the query), `query_stream` in batches of 2
/// rows, a session's `query`, and `query` with a parameter (which always goes row by row).
/// The parameterised form wraps the query: `select * from (sql) as every_path where 1 = :one`.
/// A stream of an empty result has no batch, so it gives [`NO_BATCHES`].
///
/// # Panics
/// If a stream's batches cannot be assembled into a frame.
pub async fn every_path(conn: &connections::sql::SqlConnection, sql: &str) -> [(&'static str, PathResult); 4] {
    use futures_util::TryStreamExt as _;
    let text =
        |r: connections::Result<connections::DataFrame>| r.map(|df| frame_text(&df)).map_err(|e| error_chain(&e));
    let fast = text(conn.query(sql).await);
    let streamed = match conn.query_stream(sql, 2).await {
        Ok(stream) => match stream.try_collect::<Vec<_>>().await {
            Ok(batches) if batches.is_empty() => Ok(NO_BATCHES.to_owned()),
            Ok(batches) => text(connections::DataFrame::new(batches[batches.len() - 1].schema(), batches)),
            Err(e) => Err(error_chain(&e)),
        },
        Err(e) => Err(error_chain(&e)),
    };
    let session = match conn.session().await {
        Ok(mut s) => text(s.query(sql).await),
        Err(e) => Err(error_chain(&e)),
    };
    let wrapped = format!("select * from (\n{sql}\n) as every_path where 1 = :one");
    let with_param = text(conn.query(wrapped).param("one", 1_i64).await);
    [("query", fast), ("query_stream", streamed), ("session", session), ("with a parameter", with_param)]
}

/// What [`every_path`] says for a stream that gave no batch (an empty result).
pub const NO_BATCHES: &str = "(no batches)";

/// Asserts that every path of [`every_path`] gave the same answer, and returns it.
///
/// # Panics
/// If two paths disagree.
pub async fn same_on_every_path(conn: &connections::sql::SqlConnection, sql: &str) -> PathResult {
    let results = every_path(conn, sql).await;
    let (first_name, first) = &results[0];
    for (name, result) in &results[1..] {
        if result.as_deref() == Ok(NO_BATCHES) {
            assert!(first.as_ref().is_ok_and(|text| text.lines().count() == 2), "`{sql}`: {name} gave no rows");
            continue;
        }
        assert_eq!(strip_connection(result), strip_connection(first), "`{sql}`: {name} and {first_name} disagree");
    }
    first.clone()
}

/// A result with the paths' own wording removed, for comparison: the session's and the
/// stream's errors say the same as the query's after the first line.
fn strip_connection(result: &PathResult) -> PathResult {
    result.clone().map_err(|e| e.split_once(" / ").map_or(e.clone(), |(_, causes)| causes.to_owned()))
}
