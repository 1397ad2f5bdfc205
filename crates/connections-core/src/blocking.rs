//! A blocking facade for synchronous programs, on a lazily created runtime.
//!
//! ```no_run
//! # fn main() -> Result<(), connections_core::Error> {
//! let conn = connections_core::blocking::connection("pets_db").open()?;
//! println!("{}", conn.query("select * from pet_owners")?);
//! # Ok(()) }
//! ```
//!
//! Do not call these functions from inside an async runtime (they would block one of its
//! threads, and tokio refuses to nest `block_on`): use the async API there.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use toml::{Table, Value};

use crate::connection::{BaseConnection, Connection as AsyncConnection};
use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::factory::{self, ConnectionBuilder as AsyncBuilder};
use crate::lifecycle::{ConnectionCore, InstanceId};
use crate::param::Param;
use crate::query::{Query, QueryBuilder};
use crate::query_cache::QueryCache;
use crate::retry::RetryPolicy;
use crate::secrets::SecretsStore;

/// The runtime the blocking calls run on: two worker threads, made on first use.
///
/// # Panics
/// If the operating system refuses the runtime's threads.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("connections-blocking")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the runtime of connections::blocking: {e}"))
    })
}

/// Blocking counterpart of [`crate::connection`].
pub fn connection(name: impl Into<String>) -> ConnectionBuilder {
    ConnectionBuilder { inner: factory::connection(name) }
}

/// Blocking counterpart of [`crate::ConnectionBuilder`].
#[must_use = "nothing is opened until `open()` is called"]
#[derive(Clone, Debug)]
pub struct ConnectionBuilder {
    inner: AsyncBuilder,
}

impl ConnectionBuilder {
    /// See [`crate::ConnectionBuilder::with_type`].
    pub fn with_type(self, type_name: impl Into<String>) -> Self {
        Self { inner: self.inner.with_type(type_name) }
    }

    /// See [`crate::ConnectionBuilder::option`].
    pub fn option(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        Self { inner: self.inner.option(key, value) }
    }

    /// See [`crate::ConnectionBuilder::options`].
    pub fn options(self, options: Table) -> Self {
        Self { inner: self.inner.options(options) }
    }

    /// See [`crate::ConnectionBuilder::ttl`].
    pub fn ttl(self, ttl: impl Into<Option<Duration>>) -> Self {
        Self { inner: self.inner.ttl(ttl) }
    }

    /// See [`crate::ConnectionBuilder::no_ttl`].
    pub fn no_ttl(self) -> Self {
        Self { inner: self.inner.no_ttl() }
    }

    /// See [`crate::ConnectionBuilder::max_entries`].
    pub fn max_entries(self, n: u64) -> Self {
        Self { inner: self.inner.max_entries(n) }
    }

    /// See [`crate::ConnectionBuilder::secrets_store`].
    pub fn secrets_store(self, store: SecretsStore) -> Self {
        Self { inner: self.inner.secrets_store(store) }
    }

    /// See [`crate::ConnectionBuilder::query_cache`].
    pub fn query_cache(self, cache: QueryCache) -> Self {
        Self { inner: self.inner.query_cache(cache) }
    }

    /// See [`crate::ConnectionBuilder::retry`].
    pub fn retry(self, policy: RetryPolicy) -> Self {
        Self { inner: self.inner.retry(policy) }
    }

    /// Opens the connection, blocking until it is connected.
    pub fn open(self) -> Result<Connection> {
        runtime().block_on(self.inner.open()).map(|inner| Connection { inner: Arc::new(inner) })
    }

    /// Opens the connection as its concrete type (see [`crate::ConnectionBuilder::open_as`]);
    /// [`Connection::block_on`] runs its own async methods.
    pub fn open_as<C: BaseConnection>(self) -> Result<Connection<C>> {
        runtime().block_on(self.inner.open_as::<C>()).map(|inner| Connection { inner })
    }
}

/// A connection for synchronous code: `Connection` (the default) wraps the handle of any type
/// that `open()` returns, `Connection<C>` a connection of type `C` from `open_as::<C>()` or
/// [`downcast`](Connection::downcast).
///
/// Both query, reset, report [`is_connected`](Connection::is_connected) and run any async
/// method of the handle with [`block_on`](Connection::block_on); `Connection<C>` also reaches
/// the raw client.
///
/// ```
/// # use connections_core::{BaseConnection, ConnectParams, ConnectionCore, Result, async_trait};
/// # pub struct Counter { core: ConnectionCore<Self> }
/// # #[async_trait]
/// # impl BaseConnection for Counter {
/// #     type Raw = std::sync::atomic::AtomicU64;
/// #     const TYPE_NAME: &'static str = "counter-blocking-doc";
/// #     async fn connect(_: &ConnectParams) -> Result<Self::Raw> { Ok(Default::default()) }
/// #     fn from_core(core: ConnectionCore<Self>) -> Self { Self { core } }
/// #     fn core(&self) -> &ConnectionCore<Self> { &self.core }
/// # }
/// # impl Counter {
/// #     async fn bump(&self) -> Result<u64> {
/// #         Ok(self.core.raw().await?.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
/// #     }
/// # }
/// # fn main() -> Result<()> {
/// # let store = connections_core::SecretsStore::builder().files(Vec::<String>::new()).build();
/// use std::sync::atomic::Ordering;
/// let counter = connections_core::blocking::connection("c").secrets_store(store).open_as::<Counter>()?;
/// assert_eq!(counter.block_on(|c| c.bump())?, 1); // any async method of the typed handle
/// assert_eq!(counter.with_raw(|raw| raw.load(Ordering::Relaxed))?, 1); // the raw client
/// assert!(counter.is_connected());
/// counter.reset();
/// assert!(!counter.is_connected());
/// # Ok(()) }
/// ```
pub struct Connection<C = AsyncConnection> {
    inner: Arc<C>,
}

impl<C> Connection<C> {
    /// Runs an async method of the handle to completion: `conn.block_on(|c| c.execute("..."))`.
    pub fn block_on<'a, F, Fut>(&'a self, call: F) -> Fut::Output
    where
        F: FnOnce(&'a C) -> Fut,
        Fut: Future,
    {
        runtime().block_on(call(&self.inner))
    }

    /// The async handle.
    pub fn as_async(&self) -> &C {
        &self.inner
    }

    /// The async handle, shared.
    pub fn to_async(&self) -> Arc<C> {
        Arc::clone(&self.inner)
    }
}

impl Connection {
    /// The connection's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The registered type name.
    pub fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }

    /// The object's id (part of every query cache key).
    pub fn instance_id(&self) -> InstanceId {
        self.inner.instance_id()
    }

    /// Runs a query (through the query cache), blocking until it is done.
    pub fn query(&self, sql: &str) -> Result<DataFrame> {
        runtime().block_on(self.inner.query(sql).into_future())
    }

    /// Runs a query with parameters and an optional TTL.
    pub fn query_with<I, K, V>(&self, sql: &str, params: I, ttl: Option<Duration>) -> Result<DataFrame>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Param>,
    {
        run_query(self.inner.query(sql), params, ttl)
    }

    /// Drops the raw client; the next use reconnects.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// Whether a raw client made from the current secrets is held (no side effect).
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// How many times the raw client was made.
    pub fn connect_count(&self) -> u64 {
        self.inner.connect_count()
    }

    /// The connection as its concrete type.
    pub fn downcast<C: BaseConnection>(&self) -> Result<Connection<C>> {
        self.inner.downcast::<C>().map(|inner| Connection { inner })
    }
}

impl<C: BaseConnection> Connection<C> {
    /// The connection's name.
    pub fn name(&self) -> &str {
        self.core().name()
    }

    /// The registered type name.
    pub fn type_name(&self) -> &'static str {
        C::TYPE_NAME
    }

    /// The object's id (part of every query cache key).
    pub fn instance_id(&self) -> InstanceId {
        self.core().instance_id()
    }

    /// The connection's lifecycle.
    pub fn core(&self) -> &ConnectionCore<C> {
        self.inner.core()
    }

    /// Runs a query through the type's query capability (and the query cache).
    pub fn query(&self, sql: &str) -> Result<DataFrame> {
        self.query_with(sql, Vec::<(String, Param)>::new(), None)
    }

    /// Runs a query with parameters and an optional TTL.
    pub fn query_with<I, K, V>(&self, sql: &str, params: I, ttl: Option<Duration>) -> Result<DataFrame>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Param>,
    {
        let Some(target) = BaseConnection::as_query(&*self.inner) else {
            return Err(Error::NotQueryable { name: self.name().to_owned(), type_name: C::TYPE_NAME });
        };
        run_query(QueryBuilder::new(target as &dyn Query, sql), params, ttl)
    }

    /// Drops the raw client; the next use reconnects.
    pub fn reset(&self) {
        self.core().reset();
    }

    /// Whether a raw client made from the current secrets is held (no side effect).
    pub fn is_connected(&self) -> bool {
        self.core().is_connected()
    }

    /// How many times the raw client was made.
    pub fn connect_count(&self) -> u64 {
        self.core().connect_count()
    }

    /// The raw client, connecting first if needed.
    pub fn raw(&self) -> Result<Arc<C::Raw>> {
        runtime().block_on(self.core().raw())
    }

    /// Runs `f` on the raw client (connecting first if needed).
    pub fn with_raw<T>(&self, f: impl FnOnce(&C::Raw) -> T) -> Result<T> {
        self.raw().map(|raw| f(&raw))
    }
}

fn run_query<I, K, V>(builder: QueryBuilder<'_>, params: I, ttl: Option<Duration>) -> Result<DataFrame>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<Param>,
{
    let mut builder = builder.params(params);
    if let Some(ttl) = ttl {
        builder = builder.ttl(ttl);
    }
    runtime().block_on(builder.into_future())
}

impl<C> Clone for Connection<C> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("inner", &self.inner).finish()
    }
}

impl<C: BaseConnection> fmt::Debug for Connection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name())
            .field("type", &C::TYPE_NAME)
            .field("instance", &self.instance_id())
            .finish_non_exhaustive()
    }
}

/// Runs any future of this crate (or a driver's) to completion on the blocking runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
