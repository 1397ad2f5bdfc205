//! Logging of the factory: in a binary of its own, with a global subscriber (see
//! `secrets_logging.rs` for why).

#![allow(clippy::unwrap_used)] // test code

use connections_tests::{LogBuffer, Project};
use files_connector as _; // links the connector, registering type `files`

#[test]
fn options_alone_over_a_malformed_secrets_file_warn_naming_the_file() {
    const SECRET: &str = "s3cr3t-half-written";
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || writer.clone()).with_max_level(tracing::Level::WARN).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let p = Project::new();
    p.write(p.project().join("d/x.csv"), "a\n1\n");
    p.write(p.project_secrets(), format!("token = '{SECRET}\n"));
    let conn = connections::blocking::connection("adhoc")
        .with_type("files")
        .option("root", p.project().join("d").display().to_string())
        .secrets_store(p.store())
        .open()
        .unwrap();
    assert_eq!(conn.query("x.csv").unwrap().num_rows(), 1);
    let logged = buffer.text();
    assert!(logged.contains("WARN"), "{logged}");
    assert!(logged.contains(&p.project_secrets().display().to_string()), "{logged}");
    assert!(logged.contains("connected with the options passed to connection() alone"), "{logged}");
    assert!(logged.contains("adhoc"), "{logged}");
    assert!(!logged.contains(SECRET), "{logged}");
}
