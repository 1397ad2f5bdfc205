//! The deprecated type `snowpark` warns once per process, through `tracing`, naming the call
//! that replaces it. A binary of its own: the warning is once per process.

#![allow(clippy::unwrap_used)] // test code

use connections_tests::{LogBuffer, Project};

#[tokio::test]
async fn snowpark_warns_once_naming_the_replacement() {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || writer.clone()).with_max_level(tracing::Level::WARN).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let p = Project::new();
    let nowhere = p.home().join("no-snowsql-config");
    for name in ["snowpark", "snowpark", "other"] {
        // nothing configured: opening fails, after the warning
        let err = connections::connection(name)
            .with_type("snowpark")
            .secrets_store(p.store())
            .option("snowsql_config_path", nowhere.display().to_string())
            .open()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), connections::ErrorKind::Config, "{err}");
    }
    let logs = buffer.text();
    assert_eq!(logs.matches("deprecated").count(), 1, "{logs}");
    assert!(logs.contains(r#"connection("<name>").with_type("snowflake")"#), "{logs}");
}
