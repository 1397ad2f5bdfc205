//! Secrets-aware connections to data sources, after Streamlit's `st.connection` and `st.secrets`.
//!
//! This is the crate applications depend on. It re-exports [`connections_core`] and, behind
//! features, the drivers.
//!
//! ```no_run
//! # fn main() -> Result<(), connections::Error> {
//! // `st.secrets["OpenAI_key"]`, read from `~/.streamlit/secrets.toml` and
//! // `./.streamlit/secrets.toml` (the later file wins).
//! let key = connections::secrets()?.get_str("OpenAI_key")?;
//! # let _ = key;
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
#![doc = document_features::document_features!()]
// docs.rs (`--cfg docsrs`, nightly) marks what needs a feature
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use connections_core::*;

/// Type `sql`: SQLite, PostgreSQL, MySQL/MariaDB (features `sqlite`, `postgres`, `mysql`).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub mod sql {
    pub use connections_sql::*;
}
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use connections_sql::SqlConnection;

/// Type `snowflake`: Snowflake, with results as Arrow (feature `snowflake`).
#[cfg(feature = "snowflake")]
pub mod snowflake {
    pub use connections_snowflake::*;
}
#[cfg(feature = "snowflake")]
pub use connections_snowflake::SnowflakeConnection;

/// Type `snowpark` (deprecated): Streamlit's removed `SnowparkConnection` on the Snowflake
/// driver (feature `snowpark`). Use type `snowflake`.
#[cfg(feature = "snowpark")]
pub mod snowpark {
    pub use connections_snowpark::*;
}

/// The names most programs need, for a glob import.
pub mod prelude {
    pub use connections_core::{
        BaseConnection, Connection, DataFrame, Error, Param, Result, Secrets, SecretsStore, connection, secrets,
    };
    #[cfg(feature = "snowflake")]
    pub use connections_snowflake::SnowflakeConnection;
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub use connections_sql::SqlConnection;
}

/// The user guide's code blocks, compiled and run as doctests so the guide cannot drift.
#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../../../README.md")]
    struct Readme;
    #[doc = include_str!("../../../docs/secrets.md")]
    struct Secrets;
    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../../docs/connections.md")]
    struct Connections;
    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../../docs/sql.md")]
    struct Sql;
    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../../docs/getting-started.md")]
    struct GettingStarted;
    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../../docs/caching.md")]
    struct Caching;
    #[doc = include_str!("../../../docs/cli.md")]
    struct Cli;
    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../../docs/migrating-from-streamlit.md")]
    struct MigratingFromStreamlit;
    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../../docs/architecture.md")]
    struct Architecture;
    #[cfg(feature = "snowflake")]
    #[doc = include_str!("../../../docs/snowflake.md")]
    struct Snowflake;
    #[cfg(feature = "snowflake")]
    #[doc = include_str!("../../../docs/snowflake-emulator.md")]
    struct SnowflakeEmulator;
}
