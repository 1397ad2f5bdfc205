//! Type `snowpark` (deprecated): Streamlit's removed `SnowparkConnection`, kept working on the
//! Snowflake driver so that apps saying `connection("snowpark")` still run, and told how to move.
//!
//! Applications use it through the `connections` crate (feature `snowpark`). The connection is
//! the Snowflake driver's (`connections-snowflake`): the same session, the same query protocol,
//! the same cache and retries. What this type adds is Streamlit 1.50's configuration chain
//! (options, `[connections.<name>]`, then the SnowSQL file `~/.snowsql/config`), the lock of
//! `safe_session()`, and one deprecation warning per process:
//!
//! ```toml
//! # ~/.snowsql/config, as SnowSQL writes it
//! [connections.snowpark]
//! accountname = myorg-myaccount
//! username = jerry
//! password = ...
//! ```
//!
//! Move to type `snowflake`: `connection("<name>").with_type("snowflake")`, the same
//! `[connections.<name>]` section (see `docs/snowflake.md`).

mod connection;
mod snowsql;

#[allow(deprecated)] // re-exported for the apps that still use it
pub use connection::{SafeSession, SnowparkConnection, SnowparkQuery};
pub use snowsql::{SnowsqlFile, snowsql_key};
