//! `cargo xtask test`: the whole test suite, with a notice for every skipped database.

use xshell::{Shell, cmd};

use crate::flags;

/// Environment variables naming the database servers the integration tests use, with the
/// server each one points at.
pub(crate) const DATABASE_URL_VARS: [(&str, &str); 2] =
    [("CONNECTIONS_TEST_POSTGRES_URL", "PostgreSQL"), ("CONNECTIONS_TEST_MYSQL_URL", "MySQL")];

impl flags::Test {
    /// Runs `cargo test --workspace --all-features` plus the extra arguments, with cargo's
    /// output (including its `test result:` lines) passed straight through.
    pub(crate) fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        for (var, server) in DATABASE_URL_VARS {
            if env_value(sh, var).is_none() {
                println!("note: {var} is not set; tests that need a {server} server will be skipped");
            }
        }
        let args = &self.args;
        cmd!(sh, "cargo test --workspace --all-features {args...}").run()?;
        Ok(())
    }
}

/// The value of `var` in the shell's environment, treating an empty value as unset.
pub(crate) fn env_value(sh: &Shell, var: &str) -> Option<String> {
    sh.var(var).ok().filter(|value| !value.trim().is_empty())
}
