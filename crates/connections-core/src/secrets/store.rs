//! `SecretsStore`: loads the secrets lazily, reloads them on change and publishes snapshots.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::load;
use super::snapshot::Secrets;
use super::sources::Sources;
use super::watch::FileWatcher;
use crate::error::{Error, Result};

/// The default time a burst of file events must be quiet before the secrets are read again.
const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

/// Loads secrets from `secrets.toml` files and directories of secrets, keeps the current
/// [`Secrets`] snapshot, and (when watching) reloads it when a file changes.
///
/// Nothing is read until the first [`load`](Self::load). A load that fails stores nothing, so the
/// next call tries again. Once loaded, a reload that fails (a malformed edit) keeps the last good
/// snapshot and reports the error through [`subscribe`](Self::subscribe), [`last_error`](Self::last_error)
/// and `tracing`; the fixed file is picked up by the next reload.
///
/// Cloning is cheap and shares the store.
///
/// ```
/// # fn main() -> Result<(), connections_core::Error> {
/// let project = tempfile::tempdir().unwrap();
/// let store = connections_core::SecretsStore::builder()
///     .home_dir(project.path().join("home"))
///     .project_dir(project.path())
///     .build();
/// // nothing there yet: the error lists every path searched
/// let err = store.load().unwrap_err();
/// assert!(err.to_string().starts_with("no secrets found; searched: "));
///
/// std::fs::create_dir(project.path().join(".streamlit")).unwrap();
/// std::fs::write(project.path().join(".streamlit/secrets.toml"), "token = \"t0k3n\"\n").unwrap();
/// assert_eq!(store.load()?.get_str("token")?, "t0k3n");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SecretsStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    sources: Sources,
    watch: bool,
    debounce: Duration,
    /// Set once a load succeeded; lets readers skip the lock.
    loaded: AtomicBool,
    state: Mutex<State>,
    published: watch::Sender<SecretsStatus>,
}

#[derive(Default)]
struct State {
    watcher: Option<FileWatcher>,
    watch_started: bool,
}

/// What a store publishes to its subscribers: the current snapshot and the error of the last
/// reload, if it failed.
#[derive(Clone, Debug, Default)]
pub struct SecretsStatus {
    secrets: Secrets,
    error: Option<Arc<Error>>,
    generation: u64,
}

impl SecretsStatus {
    /// The last good snapshot (empty until the first successful load).
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Why the last reload failed, if it did. The snapshot is then the last good one.
    pub fn error(&self) -> Option<&Arc<Error>> {
        self.error.as_ref()
    }

    /// How many distinct snapshots have been published; `0` before the first successful load.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Configures a [`SecretsStore`].
///
/// ```
/// use std::time::Duration;
/// let store = connections_core::SecretsStore::builder()
///     .home_dir("/home/me")
///     .project_dir("/srv/app")
///     .watch(true)
///     .debounce(Duration::from_millis(50))
///     .build();
/// # drop(store);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SecretsStoreBuilder {
    home: Option<PathBuf>,
    project: Option<PathBuf>,
    files: Option<Vec<PathBuf>>,
    watch: bool,
    debounce: Duration,
}

impl SecretsStoreBuilder {
    /// The directory that stands in for `~`: `~/.streamlit/secrets.toml` and
    /// `~/.streamlit/config.toml` are read below it. Default: `$HOME`.
    pub fn home_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.home = Some(dir.into());
        self
    }

    /// The directory that stands in for the working directory: `./.streamlit/secrets.toml` and
    /// `./.streamlit/config.toml` are read below it, and relative paths resolve against it.
    /// Default: the current directory.
    pub fn project_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.project = Some(dir.into());
        self
    }

    /// Reads exactly these paths, in order (later wins), instead of the default list and any
    /// `[secrets] files` in `config.toml`. Each is a `.toml` file (skipped when missing) or a
    /// directory of secrets.
    pub fn files<I, P>(mut self, files: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.files = Some(files.into_iter().map(Into::into).collect());
        self
    }

    /// Watches the secrets files and reloads on change (default: off for a built store, on for
    /// the process-wide one).
    pub fn watch(mut self, watch: bool) -> Self {
        self.watch = watch;
        self
    }

    /// How long file events must be quiet before a reload (default 100 ms).
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// Builds the store. Nothing is read until the first load.
    pub fn build(self) -> SecretsStore {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        let home = self.home.or_else(|| std::env::var_os("HOME").map(PathBuf::from)).map(absolute);
        let project = absolute(self.project.unwrap_or(cwd));
        let sources = Sources { home, project, explicit: self.files };
        let inner = StoreInner {
            sources,
            watch: self.watch,
            debounce: self.debounce,
            loaded: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            published: watch::Sender::new(SecretsStatus::default()),
        };
        SecretsStore { inner: Arc::new(inner) }
    }
}

impl SecretsStore {
    /// Starts configuring a store.
    pub fn builder() -> SecretsStoreBuilder {
        SecretsStoreBuilder { home: None, project: None, files: None, watch: false, debounce: DEFAULT_DEBOUNCE }
    }

    /// The current snapshot, loading it first if no load has succeeded yet.
    pub fn load(&self) -> Result<Secrets> {
        if self.inner.loaded.load(Ordering::Acquire) {
            return Ok(self.inner.published.borrow().secrets.clone());
        }
        let mut state = self.inner.lock();
        StoreInner::start_watching(&self.inner, &mut state);
        if self.inner.loaded.load(Ordering::Acquire) {
            return Ok(self.inner.published.borrow().secrets.clone());
        }
        self.inner.reload_locked(&mut state)
    }

    /// Reads every path again now. After a first success, a failure keeps the last good
    /// snapshot (and is returned, and published to subscribers).
    pub fn reload(&self) -> Result<Secrets> {
        let mut state = self.inner.lock();
        self.inner.reload_locked(&mut state)
    }

    /// Whether a load has succeeded.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    /// A receiver of every published change: a new snapshot (different in value) or a failed
    /// reload. Use [`Secrets::connection_changed`] to see whether a change concerns you.
    pub fn subscribe(&self) -> watch::Receiver<SecretsStatus> {
        self.inner.published.subscribe()
    }

    /// A subscription to new snapshots: each [`SecretsChanges::next`] waits for the next snapshot
    /// published after the previous one (or after this call), for applications that react to
    /// edits. Reload errors are not mixed in: they stay observable through
    /// [`status`](Self::status), [`last_error`](Self::last_error) and
    /// [`subscribe`](Self::subscribe). A burst of changes between two calls yields the latest
    /// snapshot once.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let file = dir.path().join("secrets.toml");
    /// std::fs::write(&file, "greeting = \"hello\"\n")?;
    /// let store = connections_core::SecretsStore::builder().files([&file]).build();
    /// store.load()?;
    /// let mut changes = store.changed();
    ///
    /// std::fs::write(&file, "greeting = \"hello\n")?; // a malformed edit: no new snapshot
    /// assert!(store.reload().is_err());
    /// assert!(store.last_error().is_some()); // the error is in the status
    /// std::fs::write(&file, "greeting = \"bonjour\"\n")?; // fixed
    /// store.reload()?; // a watching store (`.watch(true)`) does this on its own
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let new = runtime.block_on(changes.next()).expect("the store is alive");
    /// assert_eq!(new.get_str("greeting")?, "bonjour");
    /// # Ok(()) }
    /// ```
    pub fn changed(&self) -> SecretsChanges {
        let updates = self.inner.published.subscribe();
        let seen = updates.borrow().generation;
        SecretsChanges { updates, seen }
    }

    /// The current status: last good snapshot and last reload error.
    pub fn status(&self) -> SecretsStatus {
        self.inner.published.borrow().clone()
    }

    /// Why the last reload failed, if the last one did.
    pub fn last_error(&self) -> Option<Arc<Error>> {
        self.inner.published.borrow().error.clone()
    }

    /// A number identifying this store (and its clones) while it lives.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner).addr()
    }

    /// Streamlit's `config.toml` files, `~/.streamlit/config.toml` then the project's, whatever
    /// the secrets search list is: for their settings other than `[secrets]`.
    pub(crate) fn streamlit_config_files(&self) -> Vec<PathBuf> {
        let sources = &self.inner.sources;
        let mut files: Vec<PathBuf> =
            sources.home.iter().chain([&sources.project]).map(|dir| dir.join(".streamlit/config.toml")).collect();
        files.dedup();
        files
    }

    /// The search list as it stands now (explicit list, `config.toml`, or the defaults).
    pub fn paths(&self) -> Result<Vec<PathBuf>> {
        self.inner.sources.resolve()
    }
}

impl StoreInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock cannot leave the state half-written: recover it
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads every path. Blocking file I/O: on a worker of a multi-threaded tokio runtime (a
    /// first `secrets()` from async code) the worker's other tasks move to another thread for
    /// the duration ([`tokio::task::block_in_place`]), so the runtime keeps running.
    fn read_all(&self) -> Result<Secrets> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let on_worker = Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if on_worker { tokio::task::block_in_place(|| self.read_all_now()) } else { self.read_all_now() }
    }

    fn read_all_now(&self) -> Result<Secrets> {
        let paths = self.sources.resolve()?;
        let mut files = Vec::new();
        for path in &paths {
            files.extend(load::read_path(path)?);
        }
        if files.is_empty() {
            return Err(Error::SecretsNotFound { searched: paths });
        }
        Ok(Secrets::from_files(files))
    }

    fn reload_locked(&self, state: &mut State) -> Result<Secrets> {
        let read = self.read_all();
        self.apply(state, read)
    }

    /// Reads until two reads a debounce apart agree (at most a few times), so that a file caught
    /// half-written (truncated, then written) is not published.
    fn read_settled(&self) -> Result<Secrets> {
        let mut last = self.read_all();
        for _ in 0..5 {
            std::thread::sleep(self.debounce);
            let next = self.read_all();
            let settled = match (&last, &next) {
                (Ok(a), Ok(b)) => a == b,
                (Err(a), Err(b)) => a.to_string() == b.to_string(),
                _ => false,
            };
            if settled {
                return next;
            }
            last = next;
        }
        last
    }

    /// Makes a read the current state: publishes a good one, reports a failed one.
    /// `_locked` proves the caller holds the state lock, so reloads publish one at a time.
    fn apply(&self, _locked: &mut State, read: Result<Secrets>) -> Result<Secrets> {
        let was_loaded = self.loaded.load(Ordering::Acquire);
        match read {
            Ok(secrets) => {
                self.publish(secrets.clone());
                self.loaded.store(true, Ordering::Release);
                Ok(secrets)
            }
            Err(error) if was_loaded => {
                tracing::warn!(%error, "secrets reload failed; keeping the last good secrets");
                let error = Arc::new(error);
                self.published.send_modify(|status| status.error = Some(Arc::clone(&error)));
                Err(Error::Shared(error))
            }
            Err(error) => Err(error),
        }
    }

    /// Publishes a snapshot if it differs in value from the current one (or clears an error).
    fn publish(&self, secrets: Secrets) {
        self.published.send_if_modified(|status| {
            let first = status.generation == 0;
            if !first && status.secrets == secrets {
                return status.error.take().is_some();
            }
            tracing::info!(files = ?secrets.files(), keys = secrets.len(), "secrets loaded");
            status.secrets = secrets;
            status.error = None;
            status.generation += 1;
            true
        });
    }

    /// Starts the watcher once, if this store watches. A failure to watch is logged; loading
    /// works regardless.
    fn start_watching(this: &Arc<Self>, state: &mut State) {
        if !this.watch || state.watch_started {
            return;
        }
        state.watch_started = true;
        let weak: Weak<Self> = Arc::downgrade(this);
        let started = FileWatcher::start(this.debounce, move |changed| {
            if let Some(inner) = weak.upgrade() {
                inner.on_files_changed(&changed);
            }
        });
        match started {
            Ok(watcher) => {
                state.watcher = Some(watcher);
                this.rewatch(state);
            }
            Err(error) => tracing::warn!(%error, "secrets will not be reloaded on change"),
        }
    }

    /// Points the watcher at the current search list and `config.toml` files.
    fn rewatch(&self, state: &mut State) {
        let Some(watcher) = state.watcher.as_mut() else { return };
        let mut paths = self.sources.config_files();
        paths.extend(self.sources.resolve().unwrap_or_default());
        for error in watcher.update(paths) {
            tracing::warn!(%error, "a secrets path is not watched");
        }
    }

    fn on_files_changed(&self, changed: &[PathBuf]) {
        {
            let mut state = self.lock();
            let relevant = state.watcher.as_ref().is_some_and(|w| changed.iter().any(|p| w.is_relevant(p)));
            if !relevant {
                return;
            }
            self.rewatch(&mut state);
        }
        let read = self.read_settled();
        let mut state = self.lock();
        if let Err(error) = self.apply(&mut state, read)
            && !self.loaded.load(Ordering::Acquire)
        {
            tracing::debug!(%error, "secrets still not loadable after a change");
        }
    }
}

impl fmt::Debug for SecretsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.inner.published.borrow();
        f.debug_struct("SecretsStore")
            .field("sources", &self.inner.sources)
            .field("watch", &self.inner.watch)
            .field("loaded", &self.is_loaded())
            .field("secrets", &status.secrets)
            .field("last_error", &status.error)
            .finish()
    }
}

/// New snapshots of a [`SecretsStore`], from [`SecretsStore::changed`].
pub struct SecretsChanges {
    updates: watch::Receiver<SecretsStatus>,
    /// The generation of the last snapshot handed out (or current at subscription).
    seen: u64,
}

impl SecretsChanges {
    /// Waits for a snapshot newer than the last one this subscription saw and returns it;
    /// `None` once the store is gone. Failed reloads do not wake it.
    pub async fn next(&mut self) -> Option<Secrets> {
        loop {
            {
                let status = self.updates.borrow_and_update();
                if status.generation > self.seen {
                    self.seen = status.generation;
                    return Some(status.secrets.clone());
                }
            }
            self.updates.changed().await.ok()?;
        }
    }

    /// A newer snapshot if one was published since the last one seen, without waiting.
    pub fn try_next(&mut self) -> Option<Secrets> {
        let status = self.updates.borrow_and_update();
        (status.generation > self.seen).then(|| {
            self.seen = status.generation;
            status.secrets.clone()
        })
    }
}

impl fmt::Debug for SecretsChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsChanges").field("seen_generation", &self.seen).finish_non_exhaustive()
    }
}

static DEFAULT_STORE: OnceLock<SecretsStore> = OnceLock::new();

/// The process-wide store behind [`secrets`]: `$HOME` and the current directory, watching for
/// changes. Built on first use unless [`set_secrets_store`] installed another one first.
pub fn secrets_store() -> &'static SecretsStore {
    DEFAULT_STORE.get_or_init(|| SecretsStore::builder().watch(true).build())
}

/// Installs the process-wide store; fails (handing the store back) if one is already in use.
///
/// ```
/// let store = connections_core::SecretsStore::builder().files(["app-secrets.toml"]).build();
/// assert!(connections_core::set_secrets_store(store).is_ok());
/// ```
pub fn set_secrets_store(store: SecretsStore) -> Result<(), SecretsStore> {
    DEFAULT_STORE.set(store)
}

/// The current secrets of the process-wide store, the counterpart of `st.secrets`.
///
/// ```no_run
/// # fn main() -> Result<(), connections_core::Error> {
/// let key = connections_core::secrets()?.get_str("OpenAI_key")?;
/// # let _ = key; Ok(()) }
/// ```
pub fn secrets() -> Result<Secrets> {
    secrets_store().load()
}
