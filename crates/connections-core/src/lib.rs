//! The core of `connections`: secrets, the connection lifecycle, the type registry, the
//! `connection()` factory and the query cache. Applications use the `connections` crate, which
//! re-exports all of this; driver authors depend on this crate.

mod error;
mod secrets;

pub use error::{BoxDynError, Error, Result};
pub use secrets::{Secrets, SecretsStatus, SecretsStore, SecretsStoreBuilder, Section, secrets, secrets_store, set_secrets_store};

/// Re-exports of the data types secrets are made of.
pub mod toml {
    pub use toml::{Table, Value, value::Datetime};
}
