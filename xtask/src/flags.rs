//! Command-line flags and help text for every task.

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// CONNECTIONS_TEST_POSTGRES_URL or CONNECTIONS_TEST_MYSQL_URL point at one. The Snowflake
    /// emulator is started for the run (see `cargo xtask services`) unless
    /// CONNECTIONS_TEST_SNOWFLAKE_URL is set; without Python its tests are skipped with a
    /// notice (under CI=true that is an error).
    Test(Test),
    /// Run exactly what CI runs: fmt, clippy, cargo-deny, `cargo xtask package`, then the tests.
    ///
    /// With CI=true the database servers are required: both
    /// CONNECTIONS_TEST_POSTGRES_URL and CONNECTIONS_TEST_MYSQL_URL must be set and
    /// reachable, so CI never silently skips tests. The Snowflake emulator must start.
    Ci(Ci),
    /// Time a cold `query` of a generated table into Arrow, and a cache hit, on SQLite,
    /// PostgreSQL and MariaDB, side by side with connectorx and `psql COPY`.
    ///
    /// Builds the `load` benchmark of the `connections` crate once and runs it as a fresh
    /// process for every measurement. Generates the table in each backend unless it already
    /// holds --rows rows (SQLite: target/bench/bench.db; PostgreSQL:
    /// CONNECTIONS_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test; MariaDB:
    /// CONNECTIONS_TEST_MYSQL_URL, default mysql://root@127.0.0.1:3306/test). connectorx is
    /// installed into a virtualenv under target/bench/venv. `--backends snowflake` measures the
    /// fakesnow emulator (see `cargo xtask services`; pandas is added to its virtualenv) with
    /// the Python connector's fetch_arrow_all and fetch_pandas_all and the raw HTTP time of the
    /// same response. Prints a table and writes it to target/bench/results.json.
    Bench(Bench),
    /// Package every publishable crate as the registry would get it, and build a connector
    /// crate outside the workspace against the packages.
    ///
    /// The crates are the workspace members whose `publish` is not false, in dependency order
    /// (from `cargo metadata`). Checks each manifest's metadata (description, readme, keywords,
    /// categories, docs.rs, a `## ` comment on every feature) and that no dependency needs a
    /// newer Rust than `rust-version`; runs `cargo package --all-features` on all of them, so
    /// that each is built from its own tarball against its dependencies' fresh tarballs; checks
    /// every `.crate` (README and licenses in, no test data, size). Then generates a `kv`
    /// connector in a temporary directory, depending on the packaged `connections-core`
    /// (patched to the unpacked tarball), and runs its conformance test offline.
    Package(Package),
    /// Start the Snowflake emulator (fakesnow's HTTP server) in the background for the tests.
    ///
    /// Creates a virtualenv under target/snowflake-emulator/venv with `fakesnow[server]` and
    /// snowflake-connector-python at pinned versions (skipped when already there), starts the
    /// server on a free 127.0.0.1 port, waits until it answers and prints
    /// CONNECTIONS_TEST_SNOWFLAKE_URL=http://127.0.0.1:PORT (also written to
    /// target/snowflake-emulator/url). `cargo xtask test` uses a server started this way, or
    /// starts one of its own for the length of the run. Stop it with --stop.
    Services(Services),
}

/// Flags of `cargo xtask services`.
#[derive(Debug, Default, Args)]
pub(crate) struct Services {
    /// Stop the emulator a previous `cargo xtask services` left running.
    #[arg(long)]
    pub(crate) stop: bool,
}

/// Flags of `cargo xtask test`.
#[derive(Debug, Default, Args)]
pub(crate) struct Test {
    /// Extra arguments after `--`, passed on to `cargo test` unchanged
    /// (e.g. `cargo xtask test -- --no-fail-fast -- --nocapture`).
    #[arg(last = true, value_name = "CARGO_TEST_ARGS")]
    pub(crate) args: Vec<String>,
    /// Fail when the Snowflake emulator cannot start (set by `cargo xtask ci`; CI=true does
    /// the same).
    #[arg(skip)]
    pub(crate) require_emulator: bool,
}

/// Flags of `cargo xtask ci`.
#[derive(Debug, Default, Args)]
pub(crate) struct Ci {}

/// Flags of `cargo xtask package`.
#[derive(Debug, Default, Args)]
pub(crate) struct Package {
    /// Package and check the crates only; skip the outside connector.
    #[arg(long)]
    pub(crate) no_outside: bool,
    /// Also check each library's public API for other crates' types that its manifest does not
    /// declare in `[package.metadata.release] public-dependencies` (rustdoc JSON, through
    /// RUSTC_BOOTSTRAP=1, in target/api-review; a few minutes the first time).
    #[arg(long)]
    pub(crate) public_api: bool,
}

/// Flags of `cargo xtask bench`.
#[derive(Debug, Args)]
pub(crate) struct Bench {
    /// Rows of the generated table.
    #[arg(long, default_value_t = 1_000_000, value_parser = parse_count)]
    pub(crate) rows: u64,
    /// The backends to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres,mysql")]
    pub(crate) backends: Vec<BenchBackend>,
    /// Leave connectorx out (no virtualenv, no Python).
    #[arg(long)]
    pub(crate) no_peer: bool,
    /// Fresh processes per cold measurement; the table shows the median.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) repeat: u32,
    /// Cache hits timed after one cold query.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) hits: u32,
    /// Also measure over TLS. PostgreSQL: the plain row uses `sslmode=disable`, the `+tls` row
    /// `sslmode=require` (for us, connectorx and psql alike). MariaDB (the shared server offers
    /// no TLS): a throwaway server with TLS is started, measured plain (`mysql/tls-server`) and
    /// over TLS (`mysql+tls/tls-server`, ours `VERIFY_IDENTITY`; connectorx
    /// 0.4's MySQL driver takes no TLS parameters, so that row compares with our plain one).
    #[arg(long)]
    pub(crate) tls: bool,
}

/// A database `cargo xtask bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BenchBackend {
    /// Embedded SQLite, in target/bench/bench.db.
    Sqlite,
    /// PostgreSQL at CONNECTIONS_TEST_POSTGRES_URL.
    #[value(alias = "postgresql")]
    Postgres,
    /// MariaDB (or MySQL) at CONNECTIONS_TEST_MYSQL_URL.
    #[value(alias = "mariadb")]
    Mysql,
    /// The fakesnow emulator (not a default): the Python connector's fetch_arrow_all and
    /// fetch_pandas_all and the raw HTTP floor (ours once the driver is wired in).
    Snowflake,
}

/// A positive count; `_` separators allowed (`1_000_000`).
fn parse_count(text: &str) -> Result<u64, String> {
    match text.replace('_', "").parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(err) => Err(err.to_string()),
    }
}
