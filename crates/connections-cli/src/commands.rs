//! One module per subcommand.

pub(crate) mod check;
pub(crate) mod execute;
pub(crate) mod query;
pub(crate) mod secrets;
pub(crate) mod types;

use connections::{Connection, ConnectionBuilder};

use crate::cli::Target;

/// The builder for `target`: its name, `--type` and `--set` keys. The connection is cached by
/// the factory, which the CLI never needs; one process opens one connection.
pub(crate) fn builder(target: &Target) -> ConnectionBuilder {
    let mut builder = connections::connection(target.name.clone());
    if let Some(type_name) = &target.type_name {
        builder = builder.with_type(type_name.clone());
    }
    for (key, value) in &target.settings {
        builder = builder.option(key.clone(), value.clone());
    }
    builder
}

/// Opens `target`.
pub(crate) async fn open(target: &Target) -> connections::Result<Connection> {
    builder(target).open().await
}
