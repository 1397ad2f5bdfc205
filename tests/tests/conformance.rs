//! The `sql` type against the core's conformance suite: SQLite always, PostgreSQL and
//! MySQL/MariaDB when `CONNECTIONS_TEST_POSTGRES_URL` / `CONNECTIONS_TEST_MYSQL_URL` are set.

#![allow(clippy::unwrap_used)] // test code

use connections::sql::SqlConnection;
use connections_core::testing::{self, Harness, Outcome, Report};
use connections_tests::server_url;

/// Which server a harness talks to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

struct SqlHarness {
    backend: Backend,
    url: String,
    /// Holds the SQLite database file.
    _dir: tempfile::TempDir,
}

impl SqlHarness {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conformance.db").display().to_string().replace('\\', "/");
        Self { backend: Backend::Sqlite, url: format!("sqlite:///{path}?mode=rwc"), _dir: dir }
    }

    fn server(backend: Backend, url: String) -> Self {
        Self { backend, url, _dir: tempfile::tempdir().unwrap() }
    }

    /// The URL with `password` as its password, where the URL has a user.
    fn url_with_password(&self, password: &str) -> Option<String> {
        let (scheme, rest) = self.url.split_once("://")?;
        let (userinfo, host) = rest.split_once('@')?;
        let user = userinfo.split(':').next()?;
        Some(format!("{scheme}://{user}:{password}@{host}"))
    }
}

impl Harness for SqlHarness {
    type Connection = SqlConnection;

    fn section(&self) -> String {
        format!("url = '{}'", self.url)
    }

    fn changed_section(&self) -> String {
        format!("url = '{}'\nautocommit = false", self.url)
    }

    fn query(&self) -> Option<String> {
        Some("select 1 as one".into())
    }

    fn failing_query(&self) -> Option<String> {
        Some("select * from conformance_no_such_table".into())
    }

    fn slow_query(&self) -> Option<String> {
        Some(match self.backend {
            // counts to two million: a few hundred milliseconds
            Backend::Sqlite => "with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000000) \
                                select count(*) as c from n"
                .into(),
            Backend::Postgres => "select 1 as one from pg_sleep(0.2)".into(),
            Backend::Mysql => "select sleep(0.2) as slept".into(),
        })
    }

    fn section_with_secret(&self, secret: &str) -> Option<String> {
        match self.backend {
            // SQLite ignores credentials; they still pass through the configuration
            Backend::Sqlite => Some(format!(
                "dialect = 'sqlite'\nusername = 'me'\npassword = '{secret}'\nhost = ''\ndatabase = '{}'",
                self.url.trim_start_matches("sqlite:///").trim_end_matches("?mode=rwc")
            )),
            // a wrong password may fail to connect: the error must not show it either
            Backend::Postgres | Backend::Mysql => Some(format!("url = '{}'", self.url_with_password(secret)?)),
        }
    }
}

/// Runs the whole suite and checks which checks could not run.
async fn conform(harness: &SqlHarness) -> Report {
    let report = testing::run_all(harness).await;
    assert_eq!(report.not_supported(), ["retry_only_connection_errors"], "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conforms() {
    conform(&SqlHarness::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conforms() {
    let Some(url) = server_url("CONNECTIONS_TEST_POSTGRES_URL") else { return };
    conform(&SqlHarness::server(Backend::Postgres, url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_conforms() {
    let Some(url) = server_url("CONNECTIONS_TEST_MYSQL_URL") else { return };
    conform(&SqlHarness::server(Backend::Mysql, url)).await;
}

#[tokio::test]
async fn a_statement_error_is_not_retried_on_sqlite() {
    // the part of retry_only_connection_errors that needs no way to break the connection
    let outcome = testing::retry_only_connection_errors(&SqlHarness::sqlite()).await;
    assert_eq!(outcome, Outcome::NotSupported { needs: "Harness::break_connection" });
}
