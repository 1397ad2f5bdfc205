//! `connections`: every connection configured in `secrets.toml`, from a terminal.
//!
//! ```text
//! connections query pets_db "select * from pets" --format csv --output pets.csv
//! connections execute pets_db "delete from pets where name = :name" --param name=Tom
//! connections check pets_db
//! connections types
//! connections secrets --show connections.pets_db.url
//! ```
//!
//! Exit codes: 0 success, 1 the operation failed, 2 a usage error, 130 interrupted (Ctrl-C).
//! See `docs/cli.md`.

mod cli;
mod commands;
mod output;
mod progress;
mod report;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory as _, Parser as _};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::cli::{Cli, Command, Global};

/// The exit code of an interrupted run, as a shell reports death by SIGINT.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error, 0 for --help and --version
    let cli = Cli::parse();
    init_tracing(&cli.global);

    // Everything that touches the process (working directory, environment) happens here,
    // while this is the only thread: the runtime and the secrets watcher start later.
    if let Err(error) = prepare(&cli.global) {
        return report::failure(&error);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return report::failure(&anyhow::Error::new(error).context("cannot start the async runtime")),
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = run(cli) => Some(result),
            () = interrupted() => None,
        }
        // the losing branch is dropped here: an unfinished --output file is removed with it
    });
    // a query's producer task may still be running: do not wait for it
    runtime.shutdown_timeout(Duration::from_millis(100));
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(error)) => report::failure(&error),
        None => {
            eprintln!("interrupted");
            ExitCode::from(INTERRUPTED)
        }
    }
}

/// Completes at the first Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else { return std::future::pending().await };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs on stderr, at the level `-v`/`-q` ask for (default: warnings).
fn init_tracing(global: &Global) {
    let level = if global.quiet {
        LevelFilter::ERROR
    } else {
        match global.verbose {
            0 => LevelFilter::WARN,
            1 => LevelFilter::INFO,
            2 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    };
    // sqlx warns about every statement slower than a second: routine for a command-line query,
    // so shown from -v on
    let sqlx_queries = if global.verbose == 0 { LevelFilter::ERROR.min(level) } else { level };
    let filter = Targets::new().with_default(level).with_target("sqlx::query", sqlx_queries);
    let format = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(global.verbose > 1);
    tracing_subscriber::registry().with(format.with_filter(filter)).init();
}

/// Moves into the project directory, installs its secrets store, and exports the root secrets
/// to the environment when asked. Runs before any other thread exists.
fn prepare(global: &Global) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(dir) = &global.project {
        std::env::set_current_dir(dir)
            .with_context(|| format!("cannot use {} as the project directory (--project)", dir.display()))?;
    }
    let project = std::env::current_dir().context("cannot read the working directory")?;
    tracing::info!(project = %project.display(), "secrets are read below the project directory");
    // not watching: the program is short-lived; a watcher would be one more thread
    let store = connections::SecretsStore::builder().project_dir(&project).build();
    if global.export_env {
        let secrets = store.load()?;
        let names = export_env(&secrets);
        tracing::info!(variables = ?names, "exported root secrets to the environment");
    }
    // the first and only store of this process: this cannot fail
    let _ = connections::set_secrets_store(store);
    Ok(())
}

/// Streamlit's export of root secrets to the environment (decision 3: opt-in, before any thread).
#[allow(unsafe_code)]
fn export_env(secrets: &connections::Secrets) -> Vec<String> {
    // SAFETY: called from `main` before the runtime is built; the store does not watch, so no
    // thread exists that could read or write the environment.
    unsafe { secrets.export_to_env() }
}

/// Runs the subcommand.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Query(args) => commands::query::run(args, quiet).await,
        Command::Execute(args) => commands::execute::run(args, quiet).await,
        Command::Check(args) => commands::check::run(args).await,
        Command::Types(args) => commands::types::run(&args),
        Command::Secrets(args) => commands::secrets::run(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "connections", &mut std::io::stdout());
            Ok(())
        }
    }
}
