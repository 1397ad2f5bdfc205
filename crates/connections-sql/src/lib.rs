//! Type `sql`: SQLite, PostgreSQL and MySQL/MariaDB through sqlx, with results as Arrow.
//!
//! Applications use it through the `connections` crate (features `sqlite`, `postgres`,
//! `mysql`). A `secrets.toml` written for Streamlit's `SQLConnection` works unchanged:
//!
//! ```toml
//! [connections.pets_db]
//! url = "sqlite:///pets.db"
//! ```
//!
//! See `docs/sql.md` for URLs, options, the Arrow type of every column type, and sessions.
//!
//! # Feature flags
//!
#![doc = document_features::document_features!()]
// docs.rs (`--cfg docsrs`, nightly) marks what needs a feature
#![cfg_attr(docsrs, feature(doc_cfg))]
// The column machinery serves three backends; with some of them compiled out, parts go unused.
#![cfg_attr(not(all(feature = "sqlite", feature = "postgres", feature = "mysql")), allow(dead_code))]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("connections-sql needs at least one of the features `sqlite`, `postgres`, `mysql`");

mod backend;
mod columns;
mod connection;
mod error;
mod options;
mod placeholders;
mod pool;
mod session;
mod url;

/// Named parameters as the core's `(name, Param)` pairs.
fn named<I, K, V>(params: I) -> Vec<(String, connections_core::Param)>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<connections_core::Param>,
{
    params.into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

pub use connection::{BatchStream, SqlConnection};
pub use options::{EngineKwarg, SqlKey};
pub use pool::{Served, SqlPool};
pub use session::SqlSession;
pub use url::Backend;

/// The `sqlx` crate, at the version whose pools `SqlPool::as_sqlite`, `as_postgres` and
/// `as_mysql` hand out: name those types through it rather than through a `sqlx` dependency of
/// your own that must match. A public dependency on purpose: a new `sqlx` version (a 0.x minor)
/// is a breaking release of this crate.
pub use sqlx;
