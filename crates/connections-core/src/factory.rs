//! `connection(name)`: resolving the type, and the cache of open connection objects.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use moka::future::Cache;
use moka::policy::EvictionPolicy;
use toml::{Table, Value};

use crate::connection::{AnyConnection, BaseConnection, Connection};
use crate::error::{Error, Result};
use crate::lifecycle::Blueprint;
use crate::query_cache::{QueryCache, query_cache};
use crate::registry::{self, ConnectionType};
use crate::retry::RetryPolicy;
use crate::secrets::{SecretsStore, secrets_store};

/// Starts opening the connection `name`, the counterpart of `st.connection(name, ...)`.
///
/// - `env:VAR` names read the name from the environment variable `VAR`.
/// - The type is, in order: the one given with [`with_type`](ConnectionBuilder::with_type); the
///   one a name implies (`connection("sql")`); the `type` key of `[connections.<name>]` in the
///   secrets; otherwise an error saying how to give one.
/// - The same (type, name, options) returns the same object while it is cached (`ttl`,
///   `max_entries`); different options, a different object.
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
        ttl: None,
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
    ttl: Option<Duration>,
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
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
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
        self.open_with_fallback(None).await
    }

    /// Opens the connection; when no type is given or can be inferred, `fallback` is used.
    async fn open_with_fallback(self, fallback: Option<&'static str>) -> Result<Connection> {
        if self.max_entries == Some(0) {
            return Err(Error::InvalidArgument { argument: "max_entries", reason: "must be at least 1".into() });
        }
        let name = resolve_name(&self.name)?;
        let store = self.store.clone().unwrap_or_else(|| secrets_store().clone());
        let ty = match (resolve_type(&name, self.type_name.as_deref(), &store), fallback) {
            (Err(Error::NoType { .. }), Some(fallback)) => registry::lookup(fallback)?,
            (resolved, _) => resolved?,
        };
        let key = OpenKey {
            store: store.id(),
            type_name: ty.name,
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
        let objects = partition(self.ttl, self.max_entries);
        let inner = objects.try_get_with(key, ty.open(blueprint)).await.map_err(Error::unshare)?;
        Ok(Connection::new(inner))
    }

    /// Opens the connection as its concrete type.
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
        // the Rust type says which connection type is wanted when nothing else does
        let fallback = registry::lookup(C::TYPE_NAME).is_ok().then_some(C::TYPE_NAME);
        self.open_with_fallback(fallback).await?.downcast::<C>()
    }
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
    match name.strip_prefix("env:") {
        Some(var) => std::env::var(var).map_err(|_| Error::EnvName { name: name.to_owned(), var: var.to_owned() }),
        None => Ok(name.to_owned()),
    }
}

/// The type: explicit, implied by the name, or the section's `type` key.
fn resolve_type(name: &str, explicit: Option<&str>, store: &SecretsStore) -> Result<&'static ConnectionType> {
    if let Some(type_name) = explicit {
        return registry::lookup(type_name);
    }
    if let Ok(ty) = registry::lookup(name)
        && ty.name_implies_type
    {
        return Ok(ty);
    }
    let secrets = match store.load() {
        Ok(secrets) => secrets,
        Err(Error::SecretsNotFound { .. }) => return Err(Error::NoType { name: name.to_owned() }),
        Err(other) => return Err(other),
    };
    let Some(section) = secrets.connection(name) else { return Err(Error::NoType { name: name.to_owned() }) };
    match section.get("type")? {
        None => Err(Error::NoType { name: name.to_owned() }),
        Some(Value::String(type_name)) => registry::lookup(type_name),
        Some(other) => Err(Error::Config {
            name: name.to_owned(),
            key: "type".into(),
            origin: section.origin().map(|p| crate::error::ConfigOrigin::File(p.to_owned())),
            message: format!("expected a string naming a connection type, found {}", other.type_str()),
        }),
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct OpenKey {
    store: usize,
    type_name: &'static str,
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

type Objects = Cache<OpenKey, Arc<dyn AnyConnection>>;

/// One cache of open objects per (ttl, max_entries), as `st.connection` has: calls with
/// different settings never evict each other.
fn partition(ttl: Option<Duration>, max_entries: Option<u64>) -> Objects {
    type Partitions = HashMap<(Option<Duration>, Option<u64>), Objects>;
    static PARTITIONS: OnceLock<Mutex<Partitions>> = OnceLock::new();
    let mut partitions = PARTITIONS.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    partitions
        .entry((ttl, max_entries))
        .or_insert_with(|| {
            let mut builder = Cache::builder()
                .name("connections-open-objects")
                .eviction_policy(EvictionPolicy::lru())
                .eviction_listener(|_key, conn: Arc<dyn AnyConnection>, cause| {
                    tracing::debug!(connection = conn.name(), ?cause, "connection object dropped from the cache");
                    conn.reset();
                });
            if let Some(ttl) = ttl {
                builder = builder.time_to_live(ttl);
            }
            if let Some(n) = max_entries {
                builder = builder.max_capacity(n);
            }
            builder.build()
        })
        .clone()
}
