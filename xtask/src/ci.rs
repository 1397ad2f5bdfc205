//! `cargo xtask ci`: exactly what CI runs, runnable locally.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::flags;
use crate::test::{DATABASE_URL_VARS, env_value};

/// How long to wait for a test database server to accept a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

impl flags::Ci {
    /// Runs every CI step in order, stopping at the first failure.
    #[expect(clippy::unused_self, reason = "every task has the same `run(&self, sh)` shape; `ci` has no flags yet")]
    pub(crate) fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        if is_ci(sh) {
            step("check test database servers (CI=true)");
            check_databases(sh)?;
        }

        step("cargo fmt --all -- --check");
        cmd!(sh, "cargo fmt --all -- --check").run()?;

        step("cargo clippy --workspace --all-targets --all-features -- -D warnings");
        cmd!(sh, "cargo clippy --workspace --all-targets --all-features -- -D warnings").run()?;

        step("cargo doc --no-deps --workspace --all-features (RUSTDOCFLAGS=-D warnings)");
        {
            let _deny = sh.push_env("RUSTDOCFLAGS", "-D warnings");
            cmd!(sh, "cargo doc --no-deps --workspace --all-features").run()?;
        }

        step("cargo deny check licenses bans sources");
        ensure_cargo_deny(sh)?;
        cmd!(sh, "cargo deny check licenses bans sources").run()?;

        step("cargo xtask package");
        flags::Package::default().run(sh)?;

        step("cargo xtask test");
        flags::Test { require_emulator: true, ..flags::Test::default() }.run(sh)
    }
}

/// Prints the header line that opens a CI step.
fn step(title: &str) {
    println!("\n==> {title}");
}

/// Whether we run under CI, i.e. the `CI` environment variable is `true` (or `1`).
pub(crate) fn is_ci(sh: &Shell) -> bool {
    sh.var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// Installs cargo-deny with `cargo install --locked` unless `cargo deny` already works.
fn ensure_cargo_deny(sh: &Shell) -> anyhow::Result<()> {
    let installed = cmd!(sh, "cargo deny --version").quiet().ignore_stdout().ignore_stderr().run().is_ok();
    if !installed {
        println!("cargo-deny is not installed; installing it with `cargo install --locked cargo-deny`");
        cmd!(sh, "cargo install --locked cargo-deny").run().context("installing cargo-deny")?;
    }
    Ok(())
}

/// Fails unless every test database URL is set and its server accepts TCP connections, so
/// that CI never silently skips the tests that need them. Reports every problem at once.
fn check_databases(sh: &Shell) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for (var, server) in DATABASE_URL_VARS {
        let Some(url) = env_value(sh, var) else {
            problems.push(format!("{var} is not set (CI=true requires a {server} test server)"));
            continue;
        };
        match check_reachable(&url) {
            Ok(addr) => println!("{server} test server at {addr} is reachable"),
            Err(err) => problems.push(format!("{var}: {server} test server: {err:#}")),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "CI=true but the test database servers are not all available:\n  - {}\n\
         Start the servers and point the variables at them, or unset CI to run with those \
         tests skipped.",
        problems.join("\n  - ")
    )
}

/// Connects to the host and port of `url` over TCP, trying each resolved address with a
/// timeout of [`CONNECT_TIMEOUT`]. Returns `host:port` on success.
fn check_reachable(url: &str) -> anyhow::Result<String> {
    let (host, port) = host_port(url)?;
    let shown = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let addrs = (host.as_str(), port).to_socket_addrs().with_context(|| format!("cannot resolve {shown}"))?;
    let mut last_err = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(shown),
            Err(err) => last_err = Some(err),
        }
    }
    match last_err {
        Some(err) => Err(err).with_context(|| {
            format!("{shown} is not reachable (TCP connect, {} s timeout)", CONNECT_TIMEOUT.as_secs())
        }),
        None => bail!("{shown} resolves to no address"),
    }
}

/// The host and port of a database URL such as `postgres://user:pw@host:5432/db`, with the
/// scheme's default port when the URL names none. The URL itself never appears in errors,
/// since it may hold a password.
fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("not a URL of the form scheme://host[:port]/database");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);

    let (host, port) = if let Some(bracketed) = host_and_port.strip_prefix('[') {
        // IPv6 literal: [::1]:5432
        let Some((host, after)) = bracketed.split_once(']') else {
            bail!("unterminated IPv6 address in the URL's host");
        };
        (host, after.strip_prefix(':'))
    } else {
        match host_and_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_and_port, None),
        }
    };
    if host.is_empty() {
        bail!("the URL names no host (a Unix socket cannot be checked; use host:port)");
    }

    let port = match port {
        Some(port) => port.parse::<u16>().with_context(|| format!("invalid port {port:?} in the URL"))?,
        None => match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => 5432,
            "mysql" | "mariadb" => 3306,
            other => bail!("the URL names no port and scheme {other:?} has no known default"),
        },
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::host_port;

    /// Parses `url`, panicking with the error if it fails.
    fn parse(url: &str) -> (String, u16) {
        match host_port(url) {
            Ok(hp) => hp,
            Err(err) => panic!("{url}: {err:#}"),
        }
    }

    #[test]
    fn explicit_port() {
        assert_eq!(parse("postgres://postgres@127.0.0.1:5432/test"), ("127.0.0.1".to_owned(), 5432));
        assert_eq!(parse("mysql://root:secret@db.local:3307/test?ssl=false"), ("db.local".to_owned(), 3307));
    }

    #[test]
    fn default_ports() {
        assert_eq!(parse("postgresql://localhost/test"), ("localhost".to_owned(), 5432));
        assert_eq!(parse("mysql://u:p@localhost"), ("localhost".to_owned(), 3306));
    }

    #[test]
    fn ipv6() {
        assert_eq!(parse("postgres://u@[::1]:6543/db"), ("::1".to_owned(), 6543));
        assert_eq!(parse("mysql://[::1]/db"), ("::1".to_owned(), 3306));
    }

    #[test]
    fn password_with_at_sign_and_colon() {
        assert_eq!(parse("mysql://u:p@ss:w@h:1/db"), ("h".to_owned(), 1));
    }

    #[test]
    fn rejects_bad_urls() {
        for url in
            ["127.0.0.1:5432", "postgres:///test?host=/var/run/postgresql", "postgres://h:notaport/db", "sqlite://h/db"]
        {
            let err = host_port(url).err();
            assert!(err.is_some(), "{url} should be rejected");
            // The URL may hold a password: it must not be echoed.
            assert!(!err.is_some_and(|e| format!("{e:#}").contains(url)), "{url} leaked into the error");
        }
    }
}
