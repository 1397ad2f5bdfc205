//! `connections execute`: a statement, and the number of rows it changed.

use anyhow::{Result, bail};
use connections::SqlConnection;

use crate::cli::ExecuteArgs;
use crate::progress::Progress;

/// Runs the statement; prints the rows it changed on stdout.
pub(crate) async fn run(args: ExecuteArgs, quiet: bool) -> Result<()> {
    let progress = Progress::start(quiet, "running statement");
    let conn = super::open(&args.target).await?;
    let Ok(sql) = conn.downcast::<SqlConnection>() else {
        bail!(
            "connection {:?} is of type {}, which runs queries only (`connections query`), not statements",
            conn.name(),
            conn.type_name()
        );
    };
    let changed = sql.execute_with(&args.sql, args.params).await?;
    println!("{changed}");
    let noun = if changed == 1 { "row" } else { "rows" };
    progress.finish(&format!("{changed} {noun} affected"));
    Ok(())
}
