//! `ConnectionCore`: what every connection is made of (name, configuration, the lazily
//! (re)connected raw client, reset on secrets change, the query cache).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use toml::Table;

use crate::connection::BaseConnection;
use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::params::ConnectParams;
use crate::query::QueryRequest;
use crate::query_cache::{QueryCache, QueryKey};
use crate::retry::{RetryPolicy, retry};
use crate::secrets::{SecretsStatus, SecretsStore, Section};

/// Identifies one connection object for its whole life: it survives `reset()` and secrets
/// changes (so cached results do too), and a new object gets a new id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(u64);

impl InstanceId {
    /// A new, process-unique id.
    ///
    /// ```
    /// use connections_core::InstanceId;
    /// assert_ne!(InstanceId::next(), InstanceId::next());
    /// ```
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Everything a new connection object is made from; built by the factory.
pub(crate) struct Blueprint {
    pub(crate) name: String,
    pub(crate) options: Arc<Table>,
    pub(crate) store: SecretsStore,
    pub(crate) cache: QueryCache,
    pub(crate) retry: RetryPolicy,
}

/// The shared lifecycle of a connection of type `C`: a driver keeps one in its connection type
/// and hands it out from [`BaseConnection::core`].
///
/// - the raw client is made by `C::connect` on first use, shared by concurrent callers (one
///   connect at a time), and made again after [`reset`](Self::reset);
/// - before each use, a change in value of the connection's own `[connections.<name>]` section
///   (published by the secrets store) resets it, so the next use connects with the new secrets;
///   other sections, root keys and key order do not;
/// - queries go through the query cache keyed by this object's [`InstanceId`], with retries of
///   connection-level failures ([`RetryPolicy`], reset between attempts).
pub struct ConnectionCore<C: BaseConnection> {
    name: String,
    options: Arc<Table>,
    store: SecretsStore,
    cache: QueryCache,
    retry: RetryPolicy,
    instance: InstanceId,
    slot: Mutex<Slot<C::Raw>>,
    connecting: tokio::sync::Mutex<()>,
    updates: Mutex<watch::Receiver<SecretsStatus>>,
    connects: AtomicU64,
    resets: AtomicU64,
}

struct Slot<R> {
    raw: Option<Arc<R>>,
    /// The section the raw client was made from.
    section: Option<Section>,
}

impl<C: BaseConnection> ConnectionCore<C> {
    pub(crate) fn new(blueprint: Blueprint) -> Self {
        let Blueprint { name, options, store, cache, retry } = blueprint;
        let updates = Mutex::new(store.subscribe());
        Self {
            name,
            options,
            store,
            cache,
            retry,
            instance: InstanceId::next(),
            slot: Mutex::new(Slot { raw: None, section: None }),
            connecting: tokio::sync::Mutex::new(()),
            updates,
            connects: AtomicU64::new(0),
            resets: AtomicU64::new(0),
        }
    }

    /// The connection's name (after `env:` resolution).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This object's id, part of every query cache key.
    pub fn instance_id(&self) -> InstanceId {
        self.instance
    }

    /// The options passed to `connection()`.
    pub fn options(&self) -> &Table {
        &self.options
    }

    /// The secrets store the connection reads its section from.
    pub fn secrets_store(&self) -> &SecretsStore {
        &self.store
    }

    /// The query cache the connection uses.
    pub fn query_cache(&self) -> &QueryCache {
        &self.cache
    }

    /// The retry policy of [`with_retry`](Self::with_retry).
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The configuration as it stands now: the current section with the options over it.
    pub fn params(&self) -> Result<ConnectParams> {
        let section = match self.store.load() {
            Ok(secrets) => secrets.connection(&self.name),
            Err(Error::SecretsNotFound { .. }) => None, // options alone can be enough
            Err(other) => return Err(other),
        };
        Ok(ConnectParams::new(&self.name, C::TYPE_NAME, section, Arc::clone(&self.options)))
    }

    /// The raw client, connecting first if there is none (or the section changed).
    pub async fn raw(&self) -> Result<Arc<C::Raw>> {
        self.reset_if_section_changed();
        if let Some(raw) = self.current() {
            return Ok(raw);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(raw) = self.current() {
            return Ok(raw);
        }
        let params = self.params()?;
        tracing::debug!(connection = %self.name, r#type = C::TYPE_NAME, "connecting");
        let raw = C::connect(&params).await.map_err(|e| e.for_connection(&self.name, C::TYPE_NAME))?;
        let raw = Arc::new(raw);
        let mut slot = self.lock_slot();
        slot.raw = Some(Arc::clone(&raw));
        slot.section = params.section().cloned();
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(raw)
    }

    /// Drops the raw client; the next use connects again, with the current secrets and the
    /// original options. The object, its id and its cached query results stay.
    pub fn reset(&self) {
        let dropped = self.lock_slot().raw.take();
        if dropped.is_some() {
            self.resets.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(connection = %self.name, "reset");
        }
    }

    /// Whether a raw client is held now.
    pub fn is_connected(&self) -> bool {
        self.lock_slot().raw.is_some()
    }

    /// How many times the raw client was made.
    pub fn connect_count(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// How many times a held raw client was dropped by a reset.
    pub fn reset_count(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
    }

    /// Runs `op` on the raw client with the retry policy: a connection-level failure resets the
    /// connection and tries again; a statement error fails at once.
    pub async fn with_retry<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Arc<C::Raw>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let attempt = || async {
            let raw = self.raw().await?;
            op(raw).await.map_err(|e| e.for_connection(&self.name, C::TYPE_NAME))
        };
        retry(self.retry, attempt, Error::is_retryable, |_| self.reset()).await
    }

    /// Runs a query through the query cache (keyed by this instance, the exact text, the
    /// parameters and the TTL) and, on a miss, with the retry policy.
    pub async fn cached_query<F, Fut>(&self, request: &QueryRequest, run: F) -> Result<DataFrame>
    where
        F: Fn(Arc<C::Raw>) -> Fut,
        Fut: Future<Output = Result<DataFrame>>,
    {
        let key = QueryKey::new(self.instance, Arc::clone(&request.sql), request.params.clone(), request.ttl);
        self.cache.get_or_run(key, self.with_retry(run)).await
    }

    /// Drops this connection's cached query results.
    pub fn clear_cache(&self) {
        self.cache.clear_connection(self.instance);
    }

    fn current(&self) -> Option<Arc<C::Raw>> {
        self.lock_slot().raw.clone()
    }

    fn lock_slot(&self) -> MutexGuard<'_, Slot<C::Raw>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resets if the store published secrets whose section for this connection differs in value
    /// from the one the raw client was made from.
    fn reset_if_section_changed(&self) {
        let mut updates = self.updates.lock().unwrap_or_else(PoisonError::into_inner);
        if !updates.has_changed().unwrap_or(false) {
            return;
        }
        let now = updates.borrow_and_update().secrets().connection(&self.name);
        let mut slot = self.lock_slot();
        if slot.raw.is_some() && slot.section != now {
            slot.raw = None;
            self.resets.fetch_add(1, Ordering::Relaxed);
            tracing::info!(connection = %self.name, "its secrets section changed; reconnecting on next use");
        }
    }
}

impl<C: BaseConnection> fmt::Debug for ConnectionCore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&String> = self.options.keys().collect();
        f.debug_struct("ConnectionCore")
            .field("name", &self.name)
            .field("type", &C::TYPE_NAME)
            .field("instance", &self.instance)
            .field("option_keys", &keys)
            .field("connected", &self.is_connected())
            .field("connects", &self.connect_count())
            .finish_non_exhaustive()
    }
}
