//! The files connector against the core's conformance suite, and its own rules: keys, and query
//! file names confined to the folder.

#![allow(clippy::unwrap_used)] // test code

use std::path::PathBuf;

use connections_core::testing::{self, Harness, Outcome};
use connections_core::{ConfigProblem, Error, ErrorKind, async_trait};
use files_connector::FilesConnection;

/// A folder of CSV files in a temporary directory.
struct FilesHarness {
    dir: tempfile::TempDir,
}

impl FilesHarness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("pets.csv"), "name,owner,age\nTom,Jerry,3\nRex,Ann,5\n").unwrap();
        // large enough that reading it takes well over 100 ms, so that concurrent readers overlap
        let big: String = std::iter::once("id,name,score\n".to_owned())
            .chain((0..200_000).map(|i| format!("{i},pet{i},{}\n", i * 7)))
            .collect();
        std::fs::write(data.join("big.csv"), big).unwrap();
        Self { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn root(&self) -> String {
        self.data().display().to_string().replace('\\', "/")
    }
}

#[async_trait]
impl Harness for FilesHarness {
    type Connection = FilesConnection;

    fn section(&self) -> String {
        format!("root = '{}'", self.root())
    }

    fn changed_section(&self) -> String {
        format!("root = '{}'\nhas_header = true", self.root())
    }

    fn query(&self) -> Option<String> {
        Some("pets.csv".into())
    }

    fn failing_query(&self) -> Option<String> {
        Some("missing.csv".into())
    }

    fn slow_query(&self) -> Option<String> {
        Some("big.csv".into())
    }

    async fn break_connection(&self) -> bool {
        tokio::fs::rename(self.data(), self.dir.path().join("moved")).await.is_ok()
    }

    async fn restore_connection(&self) {
        tokio::fs::rename(self.dir.path().join("moved"), self.data()).await.unwrap();
    }
}

#[tokio::test]
async fn lazy_open() {
    testing::lazy_open(&FilesHarness::new()).await.assert_passed();
}

#[tokio::test]
async fn reset_reconnects() {
    testing::reset_reconnects(&FilesHarness::new()).await.assert_passed();
}

#[tokio::test]
async fn invalid_config_fails_at_open() {
    testing::invalid_config_fails_at_open(&FilesHarness::new()).await.assert_passed();
}

#[tokio::test]
async fn reset_on_own_section_change() {
    testing::reset_on_own_section_change(&FilesHarness::new()).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_opens() {
    testing::single_flight_opens(&FilesHarness::new()).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_queries() {
    testing::single_flight_queries(&FilesHarness::new()).await.assert_passed();
}

#[tokio::test]
async fn errors_not_cached() {
    testing::errors_not_cached(&FilesHarness::new()).await.assert_passed();
}

#[tokio::test]
async fn retry_only_connection_errors() {
    testing::retry_only_connection_errors(&FilesHarness::new()).await.assert_passed();
}

#[tokio::test]
async fn no_secret_in_output() {
    // the type keeps no credential: the secret goes in an unknown key, options and parameters
    let outcome = testing::no_secret_in_output(&FilesHarness::new()).await;
    assert_eq!(outcome, Outcome::NotSupported { needs: "Harness::section_with_secret" });
}

async fn open(h: &FilesHarness) -> std::sync::Arc<FilesConnection> {
    connections_core::connection("confined")
        .with_type("files")
        .option("root", h.root())
        .secrets_store(connections_core::SecretsStore::builder().files(Vec::<PathBuf>::new()).build())
        .query_cache(connections_core::QueryCache::new(1 << 20))
        .open_as::<FilesConnection>()
        .await
        .unwrap()
}

#[tokio::test]
async fn query_names_stay_inside_the_folder() {
    let h = FilesHarness::new();
    std::fs::write(h.dir.path().join("outside.csv"), "secret\n42\n").unwrap();
    let outside = h.dir.path().join("outside.csv").display().to_string();
    #[cfg(unix)]
    std::os::unix::fs::symlink(h.dir.path().join("outside.csv"), h.data().join("link.csv")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(h.data().join("pets.csv"), h.data().join("inside.csv")).unwrap();
    let conn = open(&h).await;
    let mut refused = vec!["../outside.csv", "./../outside.csv", "sub/../../outside.csv", outside.as_str(), ""];
    if cfg!(unix) {
        refused.push("link.csv");
    }
    for name in refused {
        let err = conn.query(name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Statement, "`{name}`: {err:?}");
        let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert_eq!(cause, format!("`{name}` is not a file name inside the folder"));
    }
    assert_eq!(conn.query("./pets.csv").await.unwrap().num_rows(), 2);
    if cfg!(unix) {
        assert_eq!(conn.query("inside.csv").await.unwrap().num_rows(), 2, "a link inside the folder is fine");
    }
}

#[tokio::test]
async fn an_unknown_key_lists_the_supported_ones_and_the_closest() {
    let h = FilesHarness::new();
    let err = connections_core::connection("typo")
        .with_type("files")
        .option("root", h.root())
        .option("delimter", ";")
        .secrets_store(connections_core::SecretsStore::builder().files(Vec::<PathBuf>::new()).build())
        .open()
        .await
        .unwrap_err();
    let Error::Config { problem, .. } = err.innermost() else { panic!("{err:?}") };
    let ConfigProblem::UnknownKey { supported, closest, .. } = &**problem else { panic!("{problem:?}") };
    assert_eq!(supported, &["root", "has_header", "delimiter"]);
    assert_eq!(closest.as_deref(), Some("delimiter"));
    assert_eq!(
        err.to_string(),
        "connection \"typo\": `delimter` (from the options passed to connection()): unknown key for a connection of type `files`; supported keys: root, has_header, delimiter (did you mean `delimiter`?)"
    );
}
