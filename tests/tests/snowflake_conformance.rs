//! Type `snowflake` against the core's conformance suite, on the fakesnow emulator
//! (`CONNECTIONS_TEST_SNOWFLAKE_URL`); skipped when unset.

use connections::snowflake::SnowflakeConnection;
use connections_core::testing;
use connections_tests::emulator_harness::EmulatorHarness;
use connections_tests::server_url;

const VAR: &str = "CONNECTIONS_TEST_SNOWFLAKE_URL";

#[tokio::test]
async fn snowflake_passes_the_conformance_suite() {
    let Some(url) = server_url(VAR) else { return };
    let report = testing::run_all(&EmulatorHarness::<SnowflakeConnection>::with_password(&url)).await;
    // the emulator is shared and cannot be stopped from here
    assert_eq!(report.not_supported(), ["retry_only_connection_errors"], "{report}");
}
