//! Logging of the factory: in a binary of its own, with a global subscriber (see
//! `secrets_logging.rs` for why).

#![allow(clippy::unwrap_used)] // test code

use std::io::Write;
use std::sync::{Arc, Mutex};

use connections_tests::Project;
use files_connector as _; // links the connector, registering type `files`

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn options_alone_over_a_malformed_secrets_file_warn_naming_the_file() {
    const SECRET: &str = "s3cr3t-half-written";
    let buffer = Buffer::default();
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
    let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("WARN"), "{logged}");
    assert!(logged.contains(&p.project_secrets().display().to_string()), "{logged}");
    assert!(logged.contains("connected with the options passed to connection() alone"), "{logged}");
    assert!(logged.contains("adhoc"), "{logged}");
    assert!(!logged.contains(SECRET), "{logged}");
}
