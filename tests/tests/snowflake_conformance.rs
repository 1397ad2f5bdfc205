//! Type `snowflake` against the core's conformance suite, on the fakesnow emulator
//! (`CONNECTIONS_TEST_SNOWFLAKE_URL`); skipped when unset.

#![allow(clippy::unwrap_used)] // test code

use connections::snowflake::SnowflakeConnection;
use connections_core::testing::{self, Harness};
use connections_tests::server_url;

const VAR: &str = "CONNECTIONS_TEST_SNOWFLAKE_URL";

struct SnowflakeHarness {
    endpoint: String,
}

impl SnowflakeHarness {
    fn new(url: &str) -> Self {
        let (protocol, rest) = url.split_once("://").unwrap();
        let (host, port) = rest.trim_end_matches('/').rsplit_once(':').unwrap();
        Self { endpoint: format!("host = '{host}'\nport = {port}\nprotocol = '{protocol}'") }
    }
}

impl Harness for SnowflakeHarness {
    type Connection = SnowflakeConnection;

    fn section(&self) -> String {
        format!(
            "account = 'test'\nuser = 'u'\npassword = 'p'\ndatabase = 'conf_db'\nschema = 'conf_schema'\n{}",
            self.endpoint
        )
    }

    fn changed_section(&self) -> String {
        format!("{}\nrole = 'analyst'", self.section())
    }

    fn query(&self) -> Option<String> {
        Some("select 1 as one".into())
    }

    fn failing_query(&self) -> Option<String> {
        Some("select * from conformance_no_such_table".into())
    }

    fn slow_query(&self) -> Option<String> {
        // DuckDB behind the emulator sums sixty million numbers: well over 100 ms
        Some("select sum(range) as s from range(60000000)".into())
    }

    fn section_with_secret(&self, secret: &str) -> Option<String> {
        Some(format!("account = 'test'\nuser = 'u'\npassword = '{secret}'\n{}", self.endpoint))
    }
}

#[tokio::test]
async fn snowflake_passes_the_conformance_suite() {
    let Some(url) = server_url(VAR) else { return };
    let report = testing::run_all(&SnowflakeHarness::new(&url)).await;
    // the emulator is shared and cannot be stopped from here
    assert_eq!(report.not_supported(), ["retry_only_connection_errors"], "{report}");
}
