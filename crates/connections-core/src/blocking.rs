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

use std::future::IntoFuture;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use toml::Value;

use crate::connection::{BaseConnection, Connection as AsyncConnection};
use crate::dataframe::DataFrame;
use crate::error::Result;
use crate::factory::{self, ConnectionBuilder as AsyncBuilder};
use crate::param::Param;
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

    /// See [`crate::ConnectionBuilder::ttl`].
    pub fn ttl(self, ttl: Duration) -> Self {
        Self { inner: self.inner.ttl(ttl) }
    }

    /// See [`crate::ConnectionBuilder::max_entries`].
    pub fn max_entries(self, n: u64) -> Self {
        Self { inner: self.inner.max_entries(n) }
    }

    /// See [`crate::ConnectionBuilder::secrets_store`].
    pub fn secrets_store(self, store: SecretsStore) -> Self {
        Self { inner: self.inner.secrets_store(store) }
    }

    /// Opens the connection, blocking until it is connected.
    pub fn open(self) -> Result<Connection> {
        runtime().block_on(self.inner.open()).map(|inner| Connection { inner })
    }

    /// Opens the connection as its concrete type; use [`block_on`] for its async methods.
    pub fn open_as<C: BaseConnection>(self) -> Result<Arc<C>> {
        runtime().block_on(self.inner.open_as::<C>())
    }
}

/// A connection for synchronous code.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: AsyncConnection,
}

impl Connection {
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
        let mut builder = self.inner.query(sql).params(params);
        if let Some(ttl) = ttl {
            builder = builder.ttl(ttl);
        }
        runtime().block_on(builder.into_future())
    }

    /// Drops the raw client; the next use reconnects.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// The async handle.
    pub fn as_async(&self) -> &AsyncConnection {
        &self.inner
    }
}

/// Runs any future of this crate (or a driver's) to completion on the blocking runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
