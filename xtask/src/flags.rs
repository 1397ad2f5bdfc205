//! Command-line flags and help text for every task.

use clap::{Args, Parser, Subcommand};

/// Development tasks for the `connections` workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
pub(crate) struct Xtask {
    /// The task to run.
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

/// The tasks `cargo xtask` knows.
#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Run the whole test suite: `cargo test --workspace --all-features`.
    ///
    /// Tests that need a PostgreSQL or MySQL server are skipped unless
    /// CONNECTIONS_TEST_POSTGRES_URL or CONNECTIONS_TEST_MYSQL_URL point at one.
    Test(Test),
    /// Run exactly what CI runs: fmt, clippy, cargo-deny, then the tests.
    ///
    /// With CI=true the database servers are required: both
    /// CONNECTIONS_TEST_POSTGRES_URL and CONNECTIONS_TEST_MYSQL_URL must be set and
    /// reachable, so CI never silently skips tests.
    Ci(Ci),
}

/// Flags of `cargo xtask test`.
#[derive(Debug, Default, Args)]
pub(crate) struct Test {
    /// Extra arguments after `--`, passed on to `cargo test` unchanged
    /// (e.g. `cargo xtask test -- --no-fail-fast -- --nocapture`).
    #[arg(last = true, value_name = "CARGO_TEST_ARGS")]
    pub(crate) args: Vec<String>,
}

/// Flags of `cargo xtask ci`.
#[derive(Debug, Default, Args)]
pub(crate) struct Ci {}
