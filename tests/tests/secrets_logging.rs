//! Logging of the secrets layer: in a binary of its own, with a global subscriber, because
//! tracing caches per call site whether anyone listens, which races with per-thread subscribers
//! of other tests.

#![allow(clippy::unwrap_used)] // test code

use connections_tests::{LogBuffer, Project};

#[test]
fn reload_errors_are_logged_without_values() {
    const SECRET: &str = "s3cr3t-in-a-log";
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || writer.clone()).with_max_level(tracing::Level::TRACE).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let p = Project::new();
    p.write(p.project_secrets(), format!("token = '{SECRET}'\n"));
    let store = p.store();
    store.load().unwrap();
    p.write(p.project_secrets(), format!("token = '{SECRET}\n"));
    store.reload().unwrap_err();
    let logged = buffer.text();
    assert!(logged.contains("secrets reload failed"), "{logged}");
    assert!(logged.contains("secrets loaded"), "{logged}");
    assert!(!logged.contains(SECRET), "{logged}");
}
