//! The core's conformance suite on the `kv` type, from outside the workspace.

use connections_core::testing::{self, Harness};
use kv_connector::{KvConnection, SLOW_KEY};

struct KvHarness;

impl Harness for KvHarness {
    type Connection = KvConnection;

    fn section(&self) -> String {
        "entries = { sky = 'blue' }".into()
    }

    fn changed_section(&self) -> String {
        "entries = { sky = 'grey' }".into()
    }

    fn query(&self) -> Option<String> {
        Some("sky".into())
    }

    fn failing_query(&self) -> Option<String> {
        Some("no-such-key".into())
    }

    fn slow_query(&self) -> Option<String> {
        Some(SLOW_KEY.into())
    }

    fn section_with_secret(&self, secret: &str) -> Option<String> {
        Some(format!("entries = {{ sky = 'blue' }}\ntoken = '{secret}'"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let report = testing::run_all(&KvHarness).await;
    println!("{report}");
    // the harness cannot break a table held in memory: the only check left out
    assert_eq!(report.not_supported(), ["retry_only_connection_errors"], "{report}");
    assert_eq!(report.passed().len(), 8, "{report}");
}
