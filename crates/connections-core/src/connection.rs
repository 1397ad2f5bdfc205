//! `BaseConnection`, the trait a connection type implements, and `Connection`, the dynamic handle
//! `connection(name).open()` returns.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::lifecycle::{ConnectionCore, InstanceId};
use crate::params::ConnectParams;
use crate::query::{Query, QueryBuilder};

/// A connection type: the counterpart of Streamlit's `BaseConnection`.
///
/// A driver supplies the raw client type and `connect`; [`ConnectionCore`] supplies the rest
/// (name, configuration, lazy reconnection, reset on secrets change, query cache, retries).
/// Register the type below its impl with [`register_connection!`](crate::register_connection).
///
/// ```
/// use connections_core::{BaseConnection, ConnectParams, ConnectionCore, Result, async_trait};
///
/// /// A connection to a greeting service that only needs a name.
/// pub struct GreeterConnection { core: ConnectionCore<Self> }
///
/// #[derive(serde::Deserialize)]
/// struct Config { greeting: String }
///
/// #[async_trait]
/// impl BaseConnection for GreeterConnection {
///     type Raw = String;
///     const TYPE_NAME: &'static str = "greeter";
///     async fn connect(params: &ConnectParams) -> Result<String> {
///         let config: Config = params.config()?; // unknown keys and wrong types are errors
///         Ok(format!("{}, {}!", config.greeting, params.name()))
///     }
///     fn from_core(core: ConnectionCore<Self>) -> Self { Self { core } }
///     fn core(&self) -> &ConnectionCore<Self> { &self.core }
/// }
/// connections_core::register_connection!(GreeterConnection);
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// let greeter = connections_core::connection("world")
///     .with_type("greeter")
///     .option("greeting", "Hello")
///     .open_as::<GreeterConnection>()
///     .await?;
/// assert_eq!(*greeter.core().raw().await?, "Hello, world!");
/// # Ok(()) }
/// ```
#[async_trait]
pub trait BaseConnection: Send + Sync + Sized + 'static {
    /// The underlying client (a pool, a session, ...), shared behind an `Arc`.
    type Raw: Send + Sync + 'static;

    /// The name the type is registered and looked up under (`type = "..."`).
    const TYPE_NAME: &'static str;

    /// Other names the type answers to.
    const ALIASES: &'static [&'static str] = &[];

    /// Whether a connection *named* like the type has that type without saying so, as
    /// `connection("sql")` does (and then a `type` key in its section is ignored).
    const NAME_IMPLIES_TYPE: bool = false;

    /// A deprecation note, logged once when a connection of this type is first opened.
    const DEPRECATION: Option<&'static str> = None;

    /// Makes the raw client from the configuration. Validate everything here: opening a
    /// connection calls this, so a misconfiguration fails at `open()`.
    async fn connect(params: &ConnectParams) -> Result<Self::Raw>;

    /// Wraps a lifecycle into the connection type. [`core_accessors!`](crate::core_accessors)
    /// writes this, [`core`](Self::core) and [`as_query`](Self::as_query) for you.
    fn from_core(core: ConnectionCore<Self>) -> Self;

    /// The lifecycle the type wraps.
    fn core(&self) -> &ConnectionCore<Self>;

    /// The type's generic query capability, if it has one (what `Connection::query` uses).
    fn as_query(&self) -> Option<&dyn Query> {
        None
    }
}

/// Writes the accessors of [`BaseConnection`] that every connector repeats, inside its
/// `impl BaseConnection` block: `from_core` and `core` over a field named `core`, and with
/// `query` first, `as_query` returning the type's own [`Query`] implementation. Fields other
/// than `core` get their initial values after a `;`.
///
/// ```
/// use std::sync::atomic::AtomicU64;
/// use connections_core::{async_trait, BaseConnection, ConnectParams, ConnectionCore, Result};
///
/// pub struct EchoConnection { core: ConnectionCore<Self>, uses: AtomicU64 }
///
/// #[async_trait]
/// impl BaseConnection for EchoConnection {
///     type Raw = String;
///     const TYPE_NAME: &'static str = "echo";
///     async fn connect(params: &ConnectParams) -> Result<String> {
///         Ok(params.name().to_owned())
///     }
///     // from_core (with `uses` starting at 0) and core; `core_accessors!(query)` also gives
///     // `as_query` for a type that implements `Query`
///     connections_core::core_accessors!(; uses: AtomicU64::new(0));
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// let echo = connections_core::connection("hi").open_as::<EchoConnection>().await?;
/// assert_eq!(*echo.core().raw().await?, "hi");
/// assert!(echo.as_query().is_none());
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! core_accessors {
    () => {
        $crate::core_accessors!(;);
    };
    (query) => {
        $crate::core_accessors!(query;);
    };
    (query; $($field:ident : $init:expr),* $(,)?) => {
        $crate::core_accessors!(; $($field: $init),*);

        fn as_query(&self) -> ::core::option::Option<&dyn $crate::Query> {
            ::core::option::Option::Some(self)
        }
    };
    (; $($field:ident : $init:expr),* $(,)?) => {
        fn from_core(core: $crate::ConnectionCore<Self>) -> Self {
            Self { core, $($field: $init),* }
        }

        fn core(&self) -> &$crate::ConnectionCore<Self> {
            &self.core
        }
    };
}

/// The object-safe face of every [`BaseConnection`], behind [`Connection`].
pub trait AnyConnection: Send + Sync + 'static {
    /// The connection's name.
    fn name(&self) -> &str;
    /// The registered type name.
    fn type_name(&self) -> &'static str;
    /// The Rust type, for messages.
    fn rust_type(&self) -> &'static str;
    /// The object's id.
    fn instance_id(&self) -> InstanceId;
    /// Drops the raw client; the next use reconnects.
    fn reset(&self);
    /// Whether a raw client made from the current secrets is held (no side effect).
    fn is_connected(&self) -> bool;
    /// How many times the raw client was made.
    fn connect_count(&self) -> u64;
    /// The generic query capability, if any.
    fn as_query(&self) -> Option<&dyn Query>;
    /// For downcasting.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<C: BaseConnection> AnyConnection for C {
    fn name(&self) -> &str {
        self.core().name()
    }
    fn type_name(&self) -> &'static str {
        C::TYPE_NAME
    }
    fn rust_type(&self) -> &'static str {
        std::any::type_name::<C>()
    }
    fn instance_id(&self) -> InstanceId {
        self.core().instance_id()
    }
    fn reset(&self) {
        self.core().reset();
    }
    fn is_connected(&self) -> bool {
        self.core().is_connected()
    }
    fn connect_count(&self) -> u64 {
        self.core().connect_count()
    }
    fn as_query(&self) -> Option<&dyn Query> {
        BaseConnection::as_query(self)
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// An open connection of any type: what `connection(name).open()` returns.
///
/// Cheap to clone (an `Arc`). Queries go through the type's query capability, where it has one;
/// [`downcast`](Self::downcast) reaches the concrete type and its own API.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<dyn AnyConnection>,
}

impl Connection {
    pub(crate) fn new(inner: Arc<dyn AnyConnection>) -> Self {
        Self { inner }
    }

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

    /// Drops the raw client; the next use reconnects with the current secrets. Cached query
    /// results stay.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// Whether a raw client made from the current secrets is held, so that the next use will
    /// not connect. Changes nothing: it neither connects nor resets.
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// How many times the raw client was made.
    pub fn connect_count(&self) -> u64 {
        self.inner.connect_count()
    }

    /// Whether this handle and `other` are the same connection object.
    pub fn same_as(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A query, through the query cache: `conn.query("select ...").ttl(d).await`.
    pub fn query(&self, sql: impl Into<Arc<str>>) -> QueryBuilder<'_> {
        if let Some(target) = self.inner.as_query() {
            QueryBuilder::new(target, sql)
        } else {
            let (name, type_name) = (self.name().to_owned(), self.type_name());
            QueryBuilder::failing(sql, move || Error::NotQueryable { name, type_name })
        }
    }

    /// The connection as its concrete type.
    pub fn downcast<C: BaseConnection>(&self) -> Result<Arc<C>> {
        let (name, actual) = (self.name().to_owned(), self.type_name());
        Arc::clone(&self.inner).into_any().downcast::<C>().map_err(|_| Error::WrongType {
            name,
            requested: std::any::type_name::<C>(),
            actual,
        })
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name())
            .field("type", &self.type_name())
            .field("rust_type", &self.inner.rust_type())
            .field("instance", &self.instance_id())
            .finish()
    }
}
