//! Shared helpers of the integration tests (`tests/tests/*.rs`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use connections::{SecretsStore, SecretsStoreBuilder};

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
/// unset, so that a machine without the server still passes.
pub fn server_url(var: &str) -> Option<String> {
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
