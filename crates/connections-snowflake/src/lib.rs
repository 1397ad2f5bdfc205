//! Type `snowflake`: Snowflake through its REST protocol, with results as Arrow.
//!
//! Applications use it through the `connections` crate (feature `snowflake`). A `secrets.toml`
//! written for Streamlit's `SnowflakeConnection` works unchanged, and so do the Snowflake
//! connector's own `~/.snowflake/connections.toml` and `config.toml`:
//!
//! ```toml
//! [connections.snowflake]
//! account = "myorg-myaccount"
//! user = "jerry"
//! password = "..."
//! warehouse = "compute_wh"
//! ```
//!
//! snowflake-api provides the HTTP transport (its reqwest client with transient retries) and
//! key-pair JWTs; this crate owns the login request (so that it identifies itself), the query
//! protocol (bindings, chunked results in order, polling, cancel), and the conversion of
//! Snowflake's encodings to standard Arrow. See `docs/snowflake.md`.

mod auth;
mod callers_rights;
mod config;
mod connection;
mod decode;
mod error;
mod files;
mod keys;
mod protocol;
mod query;
#[cfg(test)]
mod replay;
mod secret;
mod session;
mod sources;
mod transport;
mod write;

pub use auth::{Auth, TokenSource};
pub use callers_rights::{
    CallersRights, ContainerEnvironment, SnowflakeCallersRightsConnection, TOKEN_FILE_OPTION, VIEWER_TOKEN_OPTION,
    callers_rights_config,
};
pub use config::{Endpoint, Environment, SPCS_TOKEN_FILE, SnowflakeConfig, collect_sources, resolve_sources};
pub use connection::{SnowflakeClient, SnowflakeConnection, SnowflakeQuery};
pub use decode::JSON_EXTENSION;
pub use error::{SnowflakeError, snowflake_error};
pub use files::{ConnectorFiles, DEFAULT_CONNECTION};
pub use keys::SnowflakeKey;
pub use protocol::Binding;
pub use query::{BatchStream, QueryResult, WriteOptions, WriteResult};
pub use secret::Secret;
pub use session::Session;
pub use sources::{Source, Sources};
pub use transport::{CLIENT_APP_ID, CLIENT_APP_VERSION};

/// Helpers shown in doc examples; not part of the API.
#[doc(hidden)]
pub mod __doc {
    pub use crate::auth::decrypt_pem;
}
