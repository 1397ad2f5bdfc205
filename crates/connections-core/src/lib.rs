//! The core of `connections`: secrets, the connection lifecycle, the type registry, the
//! `connection()` factory and the query cache. Applications use the `connections` crate, which
//! re-exports all of this; driver authors depend on this crate.
//!
//! A connection type implements [`BaseConnection`] and registers itself with
//! [`register_connection!`]; `connection(name).open()` then finds it by type name. See
//! `docs/writing-a-connector.md`.
//!
//! # Feature flags
//!
#![doc = document_features::document_features!()]
// docs.rs (`--cfg docsrs`, nightly) marks what needs a feature
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The connector guide's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/writing-a-connector.md")]
struct WritingAConnector;

pub mod blocking;
mod config_keys;
mod connection;
mod dataframe;
mod error;
mod factory;
mod lifecycle;
mod param;
mod params;
mod query;
mod query_cache;
mod registry;
mod retry;
mod runner_config;
mod secrets;
#[cfg(feature = "testing")]
pub mod testing;

pub use config_keys::{ConfigKey, TYPE_KEY, UnknownKey, closest_name};
pub use connection::{AnyConnection, BaseConnection, Connection};
pub use dataframe::DataFrame;
pub use error::{BoxDynError, CauseOf, ConfigOrigin, ConfigProblem, Error, ErrorKind, Result};
pub use factory::{ConnectionBuilder, connection};
pub use lifecycle::{ConnectionCore, InstanceId};
pub use param::Param;
pub use params::ConnectParams;
pub use query::{Query, QueryBuilder, QueryRequest};
pub use query_cache::{CacheStats, DEFAULT_BUDGET_BYTES, QueryCache, QueryKey, query_cache, set_query_cache};
pub use registry::{ConnectionType, lookup as lookup_type, registered_names, registered_types};
pub use retry::{RetryPolicy, retry};
pub use secrets::{
    Secrets, SecretsChanges, SecretsStatus, SecretsStore, SecretsStoreBuilder, Section, secrets, secrets_store,
    set_secrets_store,
};

/// The `arrow` crate, at the version every `DataFrame` of the workspace uses.
pub use arrow;
/// The `async_trait` attribute, for `impl BaseConnection`.
pub use async_trait::async_trait;

/// The data types secrets and options are made of.
pub mod toml {
    pub use toml::{Table, Value, value::Datetime};
}

/// Plumbing of the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
