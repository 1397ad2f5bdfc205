//! `connection(name)`: resolving the name and the type, and the cache of open connection objects.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use toml::{Table, Value};

use crate::connection::{AnyConnection, BaseConnection, Connection};
use crate::error::{Error, Result};
use crate::lifecycle::Blueprint;
use crate::query_cache::{QueryCache, query_cache};
use crate::registry::{self, Opener};
use crate::retry::RetryPolicy;
use crate::runner_config;
use crate::secrets::{SecretsStore, secrets_store};

/// Starts opening the connection `name`, the counterpart of `st.connection(name, ...)`.
///
/// - `env:VAR` names read the name from the environment variable `VAR`.
/// - The type is, in order: the one asked for with [`with_type`](ConnectionBuilder::with_type)
///   or [`open_as`](ConnectionBuilder::open_as); the one a name implies (`connection("sql")`);
///   the `type` key of `[connections.<name>]` in the secrets; the name itself, when it is a
///   registered type name; otherwise an error saying how to give one. Streamlit's own class
///   paths (`streamlit.connections.SQLConnection`) stand for their type names.
/// - The same (type, name, options) returns the same object while it is cached (`ttl`,
///   `max_entries`); different options, a different object. Without a `ttl`, the default is
///   `[runner] connectionDefaultTTL` of `config.toml` (seconds), else no expiry.
///
/// ```no_run
/// # async fn demo() -> Result<(), connections_core::Error> {
/// let conn = connections_core::connection("pets_db").open().await?;
/// let pets = conn.query("select * from pet_owners").await?;
/// println!("{pets}");
/// # Ok(()) }
/// ```
pub fn connection(name: impl Into<String>) -> ConnectionBuilder {
    ConnectionBuilder {
        name: name.into(),
        type_name: None,
        options: Table::new(),
        ttl: TtlChoice::Default,
        max_entries: None,
        store: None,
        cache: None,
        retry: RetryPolicy::default(),
    }
}

/// Options of a connection being opened; see [`connection`].
#[must_use = "nothing is opened until `open()` is awaited"]
#[derive(Clone)]
pub struct ConnectionBuilder {
    name: String,
    type_name: Option<String>,
    options: Table,
    ttl: TtlChoice,
    max_entries: Option<u64>,
    store: Option<SecretsStore>,
    cache: Option<QueryCache>,
    retry: RetryPolicy,
}

impl ConnectionBuilder {
    /// The connection type, by registered name (`"sql"`, `"snowflake"`, a third-party name).
    pub fn with_type(mut self, type_name: impl Into<String>) -> Self {
        self.type_name = Some(type_name.into());
        self
    }

    /// An option for the driver (Streamlit's `**kwargs`); it beats the secrets section's value
    /// of the same key.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// Several options at once.
    pub fn options(mut self, options: Table) -> Self {
        self.options.extend(options);
        self
    }

    /// Keeps the opened object cached for at most `ttl`; a later call then builds a new one.
    /// `None` keeps it until it is evicted, whatever `[runner] connectionDefaultTTL` says; not
    /// calling this at all uses that setting (Streamlit's omitted `ttl`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let hourly = connections_core::connection("pets_db").ttl(Duration::from_secs(3600));
    /// let forever = connections_core::connection("pets_db").ttl(None); // same as `.no_ttl()`
    /// # drop((hourly, forever));
    /// ```
    pub fn ttl(mut self, ttl: impl Into<Option<Duration>>) -> Self {
        self.ttl = ttl.into().map_or(TtlChoice::Never, TtlChoice::After);
        self
    }

    /// Keeps the opened object cached until it is evicted, overriding
    /// `[runner] connectionDefaultTTL`: `ttl=None` in Streamlit.
    pub fn no_ttl(self) -> Self {
        self.ttl(None)
    }

    /// Keeps at most `n` objects of this (ttl, max_entries) kind cached, dropping the least
    /// recently used. `0` is an error at `open()`.
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Reads secrets from this store instead of the process-wide one.
    pub fn secrets_store(mut self, store: SecretsStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Caches query results in this cache instead of the process-wide one.
    pub fn query_cache(mut self, cache: QueryCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// How connection-level failures are retried (default: 3 attempts, 1 s apart).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Opens (or returns the cached) connection: resolves the type, validates the configuration
    /// and connects.
    pub async fn open(self) -> Result<Connection> {
        self.open_with(None).await
    }

    /// Opens the connection as its concrete type: the counterpart of passing a class to
    /// `st.connection`. `C` is the type opened, whatever the name implies or the section's
    /// `type` key says (and whether or not `C` is registered); with
    /// [`with_type`](Self::with_type) too, that type is opened and must be `C`.
    ///
    /// ```no_run
    /// # struct SqlConnection { core: connections_core::ConnectionCore<Self> }
    /// # #[connections_core::async_trait] impl connections_core::BaseConnection for SqlConnection {
    /// #   type Raw = (); const TYPE_NAME: &'static str = "sql";
    /// #   async fn connect(_: &connections_core::ConnectParams) -> connections_core::Result<()> { Ok(()) }
    /// #   fn from_core(core: connections_core::ConnectionCore<Self>) -> Self { Self { core } }
    /// #   fn core(&self) -> &connections_core::ConnectionCore<Self> { &self.core } }
    /// # async fn demo() -> Result<(), connections_core::Error> {
    /// let sql: std::sync::Arc<SqlConnection> = connections_core::connection("pets_db").open_as().await?;
    /// # Ok(()) }
    /// ```
    pub async fn open_as<C: BaseConnection>(self) -> Result<Arc<C>> {
        self.open_with(Some(Opener::of::<C>())).await?.downcast::<C>()
    }

    /// Opens the connection; `requested` is the type `open_as` asks for.
    async fn open_with(self, requested: Option<Opener>) -> Result<Connection> {
        if self.max_entries == Some(0) {
            return Err(Error::InvalidArgument { argument: "max_entries", reason: "must be at least 1".into() });
        }
        let name = resolve_name(&self.name)?;
        let store = self.store.clone().unwrap_or_else(|| secrets_store().clone());
        let opener = match (self.type_name.as_deref(), requested) {
            (Some(type_name), _) => registry::lookup(type_name)?.opener(),
            (None, Some(requested)) => requested,
            (None, None) => resolve_type(&name, &store)?,
        };
        let ttl = match self.ttl {
            TtlChoice::After(ttl) => Some(ttl),
            TtlChoice::Never => None,
            TtlChoice::Default => runner_config::default_ttl(&store)?,
        };
        let key = OpenKey {
            store: store.id(),
            type_name: opener.name,
            type_id: opener.type_id,
            name: name.clone(),
            options: canonical(&self.options),
            retry: self.retry,
        };
        let blueprint = Blueprint {
            name,
            options: Arc::new(self.options),
            store,
            cache: self.cache.unwrap_or_else(|| query_cache().clone()),
            retry: self.retry,
        };
        let inner = partition(ttl, self.max_entries).get_or_open(key, opener.open(blueprint)).await?;
        Ok(Connection::new(inner))
    }
}

/// The `ttl` a caller chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TtlChoice {
    /// Not given: `[runner] connectionDefaultTTL`, else none.
    Default,
    /// Explicitly none.
    Never,
    /// Explicitly this long.
    After(Duration),
}

impl fmt::Debug for ConnectionBuilder {
    /// Option values are left out: they may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionBuilder")
            .field("name", &self.name)
            .field("type", &self.type_name)
            .field("option_keys", &self.options.keys().collect::<Vec<_>>())
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

/// `env:VAR` names come from the environment.
fn resolve_name(name: &str) -> Result<String> {
    let Some(var) = name.strip_prefix("env:") else { return Ok(name.to_owned()) };
    if var.is_empty() {
        let reason = "`env:` must be followed by the name of an environment variable".into();
        return Err(Error::InvalidArgument { argument: "name", reason });
    }
    let invalid = |problem| Error::EnvNameInvalid { name: name.to_owned(), var: var.to_owned(), problem };
    match std::env::var(var) {
        Ok(value) if value.is_empty() => Err(invalid("is set but empty")),
        Ok(value) => Ok(value),
        Err(std::env::VarError::NotUnicode(_)) => Err(invalid("is not valid Unicode")),
        Err(std::env::VarError::NotPresent) => Err(Error::EnvName { name: name.to_owned(), var: var.to_owned() }),
    }
}

/// The type when the caller asked for none: implied by the name, the section's `type` key, or
/// the name itself when it is a registered type name.
fn resolve_type(name: &str, store: &SecretsStore) -> Result<Opener> {
    let named = registry::lookup(name).ok();
    if let Some(ty) = named.filter(|ty| ty.name_implies_type) {
        return Ok(ty.opener());
    }
    let no_type = || named.map(registry::ConnectionType::opener).ok_or_else(|| Error::NoType { name: name.to_owned() });
    let secrets = match store.load() {
        Ok(secrets) => secrets,
        Err(Error::SecretsNotFound { .. }) => return no_type(),
        Err(other) => return Err(other),
    };
    let Some(section) = secrets.try_connection(name)? else { return no_type() };
    match section.get("type")? {
        None => no_type(),
        Some(Value::String(type_name)) => registry::lookup(type_name).map(registry::ConnectionType::opener),
        Some(other) => Err(Error::Config {
            name: name.to_owned(),
            key: "type".into(),
            origin: section.origin().map(|p| crate::error::ConfigOrigin::File(p.to_owned())),
            problem: Box::new(crate::error::ConfigProblem::Expected {
                expected: "a string naming a connection type".into(),
                found: other.type_str().into(),
            }),
        }),
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct OpenKey {
    store: usize,
    type_name: &'static str,
    type_id: std::any::TypeId,
    name: String,
    options: String,
    retry: RetryPolicy,
}

/// Options in a canonical text form (keys sorted at every level), for the cache key.
fn canonical(options: &Table) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Table(t) => {
                let mut keys: Vec<&String> = t.keys().collect();
                keys.sort();
                Value::Table(keys.into_iter().map(|k| (k.clone(), sorted(&t[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(&Value::Table(options.clone())).to_string()
}

/// One cache of open objects per (ttl, max_entries), as `st.connection` has: calls with
/// different settings never evict each other.
fn partition(ttl: Option<Duration>, max_entries: Option<u64>) -> Arc<Partition> {
    type Partitions = HashMap<(Option<Duration>, Option<u64>), Arc<Partition>>;
    static PARTITIONS: OnceLock<Mutex<Partitions>> = OnceLock::new();
    let mut partitions = PARTITIONS.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    let made = || Arc::new(Partition { ttl, max_entries, state: Mutex::default() });
    Arc::clone(partitions.entry((ttl, max_entries)).or_insert_with(made))
}

/// The outcome of one construction, shared by the callers that waited for it.
type Flight = tokio::sync::OnceCell<std::result::Result<Arc<dyn AnyConnection>, Arc<Error>>>;

/// A cache of open objects with an exact bound: an entry lives while `now < created + ttl`, and
/// inserting beyond `max_entries` evicts the least recently used at once (Streamlit's
/// `cache_resource`). Concurrent misses of a key run one construction, whose failure reaches
/// its waiters and is not kept.
struct Partition {
    ttl: Option<Duration>,
    max_entries: Option<u64>,
    state: Mutex<PartitionState>,
}

#[derive(Default)]
struct PartitionState {
    entries: HashMap<OpenKey, Entry>,
    flights: HashMap<OpenKey, Arc<Flight>>,
    /// Counts uses, for recency.
    clock: u64,
}

struct Entry {
    conn: Arc<dyn AnyConnection>,
    created: Instant,
    used: u64,
}

impl Partition {
    async fn get_or_open<F>(&self, key: OpenKey, open: F) -> Result<Arc<dyn AnyConnection>>
    where
        F: Future<Output = Result<Arc<dyn AnyConnection>>>,
    {
        let flight = {
            let mut state = self.lock();
            let expired = self.remove_expired(&mut state);
            let found = state.touch(&key).ok_or_else(|| Arc::clone(state.flights.entry(key.clone()).or_default()));
            drop(state);
            release(expired, "expired");
            match found {
                Ok(conn) => return Ok(conn),
                Err(flight) => flight, // a miss: join (or start) its construction
            }
        };
        let outcome = flight
            .get_or_init(|| async {
                let opened = open.await;
                let mut state = self.lock();
                if state.flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                    state.flights.remove(&key);
                }
                let conn = opened.map_err(Arc::new)?;
                let evicted = self.insert(&mut state, key.clone(), Arc::clone(&conn));
                drop(state);
                release(evicted, "evicted");
                Ok(conn)
            })
            .await
            .clone();
        drop(flight); // the last holder of a failure gets it whole
        outcome.map_err(Error::unshare)
    }

    fn lock(&self) -> MutexGuard<'_, PartitionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove_expired(&self, state: &mut PartitionState) -> Vec<Arc<dyn AnyConnection>> {
        let Some(ttl) = self.ttl else { return Vec::new() };
        let now = Instant::now();
        let expired: Vec<OpenKey> = state
            .entries
            .iter()
            .filter(|(_, e)| now.duration_since(e.created) >= ttl)
            .map(|(k, _)| k.clone())
            .collect();
        expired.iter().filter_map(|k| state.entries.remove(k)).map(|e| e.conn).collect()
    }

    /// Inserts, then evicts the least recently used entries beyond `max_entries`.
    fn insert(
        &self,
        state: &mut PartitionState,
        key: OpenKey,
        conn: Arc<dyn AnyConnection>,
    ) -> Vec<Arc<dyn AnyConnection>> {
        state.clock += 1;
        let used = state.clock;
        let mut evicted: Vec<Arc<dyn AnyConnection>> = state
            .entries
            .insert(key, Entry { conn, created: Instant::now(), used })
            .map(|e| e.conn)
            .into_iter()
            .collect();
        let Some(max) = self.max_entries else { return evicted };
        while state.entries.len() as u64 > max {
            let Some(oldest) = state.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else { break };
            evicted.extend(state.entries.remove(&oldest).map(|e| e.conn));
        }
        evicted
    }
}

impl PartitionState {
    /// The cached object of `key`, marked as just used.
    fn touch(&mut self, key: &OpenKey) -> Option<Arc<dyn AnyConnection>> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.get_mut(key)?;
        entry.used = clock;
        Some(Arc::clone(&entry.conn))
    }
}

/// Closes objects that left the cache (Streamlit's `on_release`): their raw client is dropped;
/// handles still held reconnect on their next use.
fn release(conns: Vec<Arc<dyn AnyConnection>>, cause: &'static str) {
    for conn in conns {
        tracing::debug!(connection = conn.name(), cause, "connection object dropped from the cache");
        conn.reset();
    }
}
