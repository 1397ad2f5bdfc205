//! Development tasks for the `connections` workspace, run as `cargo xtask <task>`.
//!
//! The alias in `.cargo/config.toml` maps `cargo xtask` to
//! `cargo run --package xtask --bin xtask --`. Every task runs from the project root.

mod bench;
mod ci;
mod flags;
mod package;
mod services;
mod test;

use std::path::{Path, PathBuf};

use clap::Parser;
use xshell::Shell;

use crate::flags::{Cmd, Xtask};

fn main() -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match Xtask::parse().cmd {
        Cmd::Test(cmd) => cmd.run(&sh),
        Cmd::Ci(cmd) => cmd.run(&sh), // exactly what CI runs, runnable locally
        Cmd::Bench(cmd) => cmd.run(&sh),
        Cmd::Package(cmd) => cmd.run(&sh),
        Cmd::Services(cmd) => cmd.run(&sh),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
