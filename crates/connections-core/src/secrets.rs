//! Secrets: `secrets.toml` files and directories of secrets, merged, watched and redacted.
//!
//! The counterpart of Streamlit's `st.secrets`. The default search list is
//! `~/.streamlit/secrets.toml` then `./.streamlit/secrets.toml`, later files winning per
//! top-level key and, inside `[connections]`, per connection; `[secrets] files = [...]` in
//! `~/.streamlit/config.toml` or `./.streamlit/config.toml` replaces it, and
//! [`SecretsStoreBuilder::files`] replaces both. See `docs/secrets.md` for the whole story.

mod env_export;
mod key_path;
mod load;
mod merge;
mod redact;
mod snapshot;
mod sources;
mod store;
mod watch;

pub(crate) use redact::RedactedTable;
pub use snapshot::{Secrets, Section};
pub(crate) use snapshot::{redacted_kind, to_figment_table};
pub use store::{
    SecretsChanges, SecretsStatus, SecretsStore, SecretsStoreBuilder, secrets, secrets_store, set_secrets_store,
};
