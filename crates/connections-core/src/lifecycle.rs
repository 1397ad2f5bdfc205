//! `ConnectionCore`: what every connection is made of (name, configuration, the lazily
//! (re)connected raw client, reset on secrets change, the query cache).

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use toml::Table;

use crate::connection::BaseConnection;
use crate::dataframe::DataFrame;
use crate::error::{Error, ErrorKind, Result};
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
/// - every raw client remembers the secrets section (and the store's generation) it was made
///   from; every use checks it against the store's current secrets, and a change in value of the
///   connection's own `[connections.<name>]` section drops it, so that use connects with the new
///   secrets (even when the change came while that client was still connecting); other
///   sections, root keys and key order do not;
/// - a connection configured by options alone connects even when the secrets cannot be read or
///   parsed (with a warning naming the file); one that needs its section fails with that error;
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
    /// The store's published secrets, read (never marked as seen) to check the held client.
    updates: watch::Receiver<SecretsStatus>,
    connects: AtomicU64,
    resets: AtomicU64,
}

struct Slot<R> {
    raw: Option<Arc<R>>,
    /// The section the raw client was made from.
    section: Option<Section>,
    /// The store's generation when `section` was read, or a later one with the same section.
    generation: u64,
}

impl<C: BaseConnection> ConnectionCore<C> {
    pub(crate) fn new(blueprint: Blueprint) -> Self {
        let Blueprint { name, options, store, cache, retry } = blueprint;
        let updates = store.subscribe();
        Self {
            name,
            options,
            store,
            cache,
            retry,
            instance: InstanceId::next(),
            slot: Mutex::new(Slot { raw: None, section: None, generation: 0 }),
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
            Ok(secrets) => {
                secrets.try_connection(&self.name).map_err(|e| e.for_connection(&self.name, C::TYPE_NAME))?
            }
            Err(Error::SecretsNotFound { .. }) => None, // options alone can be enough
            Err(other) => return Err(other.for_connection(&self.name, C::TYPE_NAME)),
        };
        Ok(ConnectParams::new(&self.name, C::TYPE_NAME, section, Arc::clone(&self.options)))
    }

    /// The raw client, connecting first if there is none or the one held was made from a
    /// section that has changed since.
    pub async fn raw(&self) -> Result<Arc<C::Raw>> {
        if let Some(raw) = self.current() {
            return Ok(raw);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(raw) = self.current() {
            return Ok(raw);
        }
        // read before the secrets: should they change in between, the next use compares values
        let generation = self.updates.borrow().generation();
        let (params, unreadable) = self.connect_params()?;
        tracing::debug!(connection = %self.name, r#type = C::TYPE_NAME, "connecting");
        let raw = match C::connect(&params).await {
            Ok(raw) => raw,
            // the options alone were not enough: the section was needed, and it is unreadable
            Err(error) => {
                let error = match unreadable {
                    Some(unreadable) if error.kind() == ErrorKind::Config => unreadable,
                    _ => error,
                };
                return Err(error.for_connection(&self.name, C::TYPE_NAME));
            }
        };
        if let Some(error) = &unreadable {
            let file = unreadable_file(error).map(|p| p.display().to_string()).unwrap_or_default();
            tracing::warn!(
                connection = %self.name, %file, %error,
                "the secrets cannot be read; connected with the options passed to connection() alone"
            );
        }
        let raw = Arc::new(raw);
        let mut slot = self.lock_slot();
        slot.raw = Some(Arc::clone(&raw));
        slot.section = params.section().cloned();
        slot.generation = generation;
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

    /// Whether a raw client made from the connection's current secrets is held now, so that
    /// the next use will not connect. Changes nothing: it neither connects nor resets.
    pub fn is_connected(&self) -> bool {
        let slot = self.lock_slot();
        slot.raw.is_some() && !self.is_stale(&slot)
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

    /// The held raw client, if it was made from the current section; one made from a section
    /// that changed since is dropped (a reset).
    fn current(&self) -> Option<Arc<C::Raw>> {
        let mut slot = self.lock_slot();
        slot.raw.as_ref()?;
        let generation = self.updates.borrow().generation();
        if generation == slot.generation {
            return slot.raw.clone();
        }
        if self.is_stale(&slot) {
            slot.raw = None;
            self.resets.fetch_add(1, Ordering::Relaxed);
            tracing::info!(connection = %self.name, "its secrets section changed; reconnecting");
            return None;
        }
        slot.generation = generation; // other parts of the secrets changed: nothing to do
        slot.raw.clone()
    }

    /// Whether the store's current secrets hold another section than the one the client was
    /// made from.
    fn is_stale(&self, slot: &Slot<C::Raw>) -> bool {
        let status = self.updates.borrow();
        status.generation() != slot.generation && status.secrets().connection(&self.name) != slot.section
    }

    /// The parameters to connect with, and the error of secrets that cannot be read when the
    /// options alone are tried instead of them.
    fn connect_params(&self) -> Result<(ConnectParams, Option<Error>)> {
        let (section, unreadable) = match self.store.load() {
            // an entry that is not a table (`[connections] c = 5`) says so
            Ok(secrets) => {
                (secrets.try_connection(&self.name).map_err(|e| e.for_connection(&self.name, C::TYPE_NAME))?, None)
            }
            Err(Error::SecretsNotFound { .. }) => (None, None), // options alone can be enough
            Err(error) if self.options.is_empty() => return Err(error.for_connection(&self.name, C::TYPE_NAME)),
            Err(error) => (None, Some(error)),
        };
        Ok((ConnectParams::new(&self.name, C::TYPE_NAME, section, Arc::clone(&self.options)), unreadable))
    }

    fn lock_slot(&self) -> MutexGuard<'_, Slot<C::Raw>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The file an error of reading the secrets is about.
fn unreadable_file(error: &Error) -> Option<&Path> {
    match error.innermost() {
        Error::Parse { path, .. }
        | Error::Read { path, .. }
        | Error::InvalidConfig { path, .. }
        | Error::InvalidSecretsPath { path }
        | Error::SecretsDirEntry { path } => Some(path),
        _ => None,
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
