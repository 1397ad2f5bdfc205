//! `cargo xtask test`: the whole test suite, with a notice for every skipped database and one
//! closing summary line for all the test binaries.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::Context;
use xshell::Shell;

use crate::flags;

/// Environment variables naming the database servers the integration tests use, with the
/// server each one points at.
pub(crate) const DATABASE_URL_VARS: [(&str, &str); 2] =
    [("CONNECTIONS_TEST_POSTGRES_URL", "PostgreSQL"), ("CONNECTIONS_TEST_MYSQL_URL", "MySQL")];

/// Every server variable a test may skip for, with the server's name for the skip report.
const SKIP_VARS: [(&str, &str); 3] =
    [DATABASE_URL_VARS[0], DATABASE_URL_VARS[1], (crate::services::SNOWFLAKE_URL_VAR, "Snowflake emulator")];

impl flags::Test {
    /// Runs `cargo test --workspace --all-features` plus the extra arguments. Cargo's output
    /// passes straight through; the `test result:` lines of every test binary are added up into
    /// one closing line, `summary: N passed, N failed, N skipped`.
    pub(crate) fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        for (var, server) in DATABASE_URL_VARS {
            if env_value(sh, var).is_none() {
                println!("note: {var} is not set; tests that need a {server} server will be skipped");
            }
        }
        // the emulator stays up until the tests are done (when started here, `_emulator` stops it)
        let (snowflake_url, _emulator) = match crate::services::for_tests(sh) {
            Ok((url, server)) => {
                println!("Snowflake emulator: {url}");
                (Some(url), server)
            }
            Err(err) if self.require_emulator || crate::ci::is_ci(sh) => {
                return Err(err.context("the Snowflake emulator is required here (CI) but cannot start"));
            }
            Err(err) => {
                println!(
                    "note: the Snowflake emulator cannot start ({err:#}); tests that need it will be skipped \
                     (needs python3 with venv and pip; see `cargo xtask services`)"
                );
                (None, None)
            }
        };
        // tests that found no server append `VAR<TAB>test` here (connections_tests::server_url)
        let skips = sh.current_dir().join("target").join(format!("xtask-test-skips-{}.txt", std::process::id()));
        let _ = std::fs::remove_file(&skips);
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        if let Some(url) = &snowflake_url {
            command.env(crate::services::SNOWFLAKE_URL_VAR, url);
        }
        let mut child = command
            .current_dir(sh.current_dir())
            .env(SKIP_LOG_VAR, &skips)
            .args(["test", "--workspace", "--all-features", "--no-fail-fast"])
            .args(&self.args)
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start cargo test")?;
        let stdout = child.stdout.take().context("cargo test has no stdout")?;
        let mut totals = Totals::default();
        for line in BufReader::new(stdout).lines() {
            let line = line.context("cannot read the output of cargo test")?;
            println!("{line}");
            totals.add(&line);
        }
        let status = child.wait().context("cargo test did not finish")?;
        let skipped = Skipped::read(&skips);
        let _ = std::fs::remove_file(&skips);
        // a server test that returned at once for lack of its server passed for cargo: it did not run
        let passed = totals.passed.saturating_sub(skipped.total());
        if skipped.total() > 0 {
            println!("skipped for lack of a server: {}", skipped.describe());
        }
        println!("summary: {passed} passed, {} failed, {} skipped", totals.failed, totals.ignored + skipped.total());
        anyhow::ensure!(status.success(), "cargo test failed ({status})");
        Ok(())
    }
}

/// The environment variable naming the file where tests record that they were skipped.
const SKIP_LOG_VAR: &str = "CONNECTIONS_TEST_SKIP_LOG";

/// The tests that were skipped for lack of a server, per server variable.
#[derive(Debug, Default, PartialEq, Eq)]
struct Skipped(std::collections::BTreeMap<String, u64>);

impl Skipped {
    /// Reads the skip log (`VAR<TAB>test` lines); a missing file means nothing was skipped.
    fn read(path: &std::path::Path) -> Self {
        Self::parse(&std::fs::read_to_string(path).unwrap_or_default())
    }

    fn parse(log: &str) -> Self {
        let mut counts = std::collections::BTreeMap::new();
        for line in log.lines() {
            if let Some((var, _test)) = line.split_once('\t') {
                *counts.entry(var.to_owned()).or_insert(0) += 1;
            }
        }
        Self(counts)
    }

    fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `3 PostgreSQL (CONNECTIONS_TEST_POSTGRES_URL), 2 MySQL (...)`.
    fn describe(&self) -> String {
        let server = |var: &str| SKIP_VARS.iter().find(|(v, _)| *v == var).map_or("server", |(_, s)| *s);
        let parts: Vec<String> = self.0.iter().map(|(var, n)| format!("{n} {} ({var})", server(var))).collect();
        parts.join(", ")
    }
}

/// The sums of cargo's `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    /// Adds one line of output if it is a `test result:` line.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else { return };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(count), Some(what)) = (words.next(), words.next()) else { continue };
            let Ok(count) = count.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

/// The value of `var` in the shell's environment, treating an empty value as unset.
pub(crate) fn env_value(sh: &Shell, var: &str) -> Option<String> {
    sh.var(var).ok().filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_result_lines() {
        let mut totals = Totals::default();
        totals.add("test result: ok. 36 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.03s");
        totals.add("test result: FAILED. 4 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.0s");
        totals.add("test something ... ok");
        assert_eq!(totals, Totals { passed: 40, failed: 1, ignored: 2 });
    }

    #[test]
    fn counts_skips_per_server() {
        let skipped = Skipped::parse(
            "CONNECTIONS_TEST_POSTGRES_URL\tpg_a\nCONNECTIONS_TEST_MYSQL_URL\tmy_a\nCONNECTIONS_TEST_POSTGRES_URL\tpg_b\n\
             CONNECTIONS_TEST_SNOWFLAKE_URL\tsf_a\nnoise\n",
        );
        assert_eq!(skipped.total(), 4);
        assert_eq!(
            skipped.describe(),
            "1 MySQL (CONNECTIONS_TEST_MYSQL_URL), 2 PostgreSQL (CONNECTIONS_TEST_POSTGRES_URL), \
             1 Snowflake emulator (CONNECTIONS_TEST_SNOWFLAKE_URL)"
        );
    }
}
