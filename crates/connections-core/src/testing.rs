//! A conformance suite every connector runs against itself (feature `testing`).
//!
//! **This is a test kit, not API**: it may change in patch releases. Depend on it from
//! `[dev-dependencies]` only:
//!
//! ```toml
//! [dev-dependencies]
//! connections-core = { version = "0.1", features = ["testing"] }
//! ```
//!
//! Each function checks one behaviour of the contract of [`BaseConnection`] on a real connection
//! of the connector's type, opened from a secrets file in a temporary project with a watching
//! [`SecretsStore`], a private [`QueryCache`] and quick retries. A failed check panics with what
//! was expected; a check the connector cannot take part in returns [`Outcome::NotSupported`]
//! (its [`Harness`] declined to supply what the check needs), as object_store's suite accepts
//! `NotSupported`. What the suite cannot know, the connector tells it through a [`Harness`]:
//!
//! ```
//! use connections_core::testing::{self, Harness};
//! # use connections_core::{async_trait, BaseConnection, ConnectParams, ConnectionCore, Result};
//! # pub struct EchoConnection { core: ConnectionCore<Self> }
//! # #[async_trait]
//! # impl BaseConnection for EchoConnection {
//! #     type Raw = String;
//! #     const TYPE_NAME: &'static str = "echo-testing";
//! #     async fn connect(params: &ConnectParams) -> Result<String> {
//! #         #[derive(serde::Deserialize)] struct Config { #[allow(dead_code)] word: String }
//! #         let _: Config = params.config()?;
//! #         Ok(params.name().to_owned())
//! #     }
//! #     connections_core::core_accessors!();
//! # }
//!
//! struct EchoHarness;
//!
//! impl Harness for EchoHarness {
//!     type Connection = EchoConnection;
//!     fn section(&self) -> String {
//!         "word = 'hello'".into()
//!     }
//!     fn changed_section(&self) -> String {
//!         "word = 'goodbye'".into()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // in the connector's tests, one `#[tokio::test]` per function, or all at once:
//! testing::lazy_open(&EchoHarness).await;
//! let report = testing::run_all(&EchoHarness).await;
//! assert!(report.not_supported().contains(&"single_flight_queries"), "EchoConnection has no queries");
//! # }
//! ```

// every check panics when the behaviour does not hold: that is how it reports, as the module says
#![allow(clippy::missing_panics_doc)]

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::connection::BaseConnection;
use crate::dataframe::DataFrame;
use crate::error::{Error, ErrorKind, Result};
use crate::factory::{ConnectionBuilder, connection};
use crate::lifecycle::ConnectionCore;
use crate::params::ConnectParams;
use crate::query::QueryRequest;
use crate::query_cache::QueryCache;
use crate::retry::RetryPolicy;
use crate::secrets::SecretsStore;

/// What a connector tells the suite about its type. Only [`section`](Self::section) and
/// [`changed_section`](Self::changed_section) are required; every other method has a default
/// that either works for any connector or declines (`None`), which makes the checks that need it
/// return [`Outcome::NotSupported`].
///
/// Sections are the body of `[connections.<name>]`: `key = value` lines (inline tables for
/// nested values), without the header. The suite opens connections as `Self::Connection`, so
/// no `type` key is needed.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The connection type under test.
    type Connection: BaseConnection;

    /// A valid configuration that connects.
    fn section(&self) -> String;

    /// Another valid configuration that connects, differing from [`section`](Self::section) in
    /// value (a key added or a value changed): what an edit of the secrets file turns it into.
    fn changed_section(&self) -> String;

    /// A configuration that `open()` must refuse with an [`ErrorKind::Config`] error, without
    /// connecting. The default adds an unknown key to [`section`](Self::section).
    fn invalid_section(&self) -> String {
        format!("{}\n{UNKNOWN_KEY} = 1\n", self.section())
    }

    /// A query text that succeeds on a connection of [`section`](Self::section). `None` if the
    /// type has no generic query capability ([`BaseConnection::as_query`]).
    fn query(&self) -> Option<String> {
        None
    }

    /// A query text that fails as a statement error ([`ErrorKind::Statement`]): a syntax error,
    /// a missing table or file.
    fn failing_query(&self) -> Option<String> {
        None
    }

    /// A query text that succeeds and takes 100 ms or more, so that concurrent callers overlap.
    fn slow_query(&self) -> Option<String> {
        None
    }

    /// A configuration that carries `secret` where the type keeps a credential (a password, a
    /// token). It may fail to connect; either way the secret must show nowhere.
    fn section_with_secret(&self, secret: &str) -> Option<String> {
        let _ = secret;
        None
    }

    /// Breaks the connections [`section`](Self::section) makes, from outside (stop the server,
    /// move the folder), so that queries fail with a connection-level error and connecting
    /// again fails until [`restore_connection`](Self::restore_connection). `false` if the
    /// harness cannot.
    async fn break_connection(&self) -> bool {
        false
    }

    /// Undoes [`break_connection`](Self::break_connection).
    async fn restore_connection(&self) {}
}

/// The key [`Harness::invalid_section`] adds by default.
pub const UNKNOWN_KEY: &str = "conformance_unknown_key";

/// The result of a check that did not panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a check can be not supported: say so in the test if that is expected"]
pub enum Outcome {
    /// The behaviour was checked and holds.
    Passed,
    /// The connector's harness does not supply what the check needs.
    NotSupported {
        /// What is missing.
        needs: &'static str,
    },
}

impl Outcome {
    /// Whether the check ran and passed.
    pub fn passed(self) -> bool {
        self == Self::Passed
    }

    /// Panics unless the check ran.
    ///
    /// # Panics
    /// If the check was not supported.
    #[track_caller]
    pub fn assert_passed(self) {
        if let Self::NotSupported { needs } = self {
            panic!("the check was not run: it needs {needs}");
        }
    }
}

/// What [`run_all`] ran.
#[derive(Clone, Debug, Default)]
pub struct Report {
    passed: Vec<&'static str>,
    not_supported: Vec<&'static str>,
}

impl Report {
    /// The checks that ran and passed.
    pub fn passed(&self) -> &[&'static str] {
        &self.passed
    }

    /// The checks the harness could not take part in.
    pub fn not_supported(&self) -> &[&'static str] {
        &self.not_supported
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "passed: {}; not supported: {}", self.passed.join(", "), self.not_supported.join(", "))
    }
}

/// Runs every check, in order, and reports which ran. The first failure panics.
pub async fn run_all<H: Harness>(harness: &H) -> Report {
    let mut report = Report::default();
    let mut note = |name, outcome: Outcome| match outcome {
        Outcome::Passed => report.passed.push(name),
        Outcome::NotSupported { .. } => report.not_supported.push(name),
    };
    note("lazy_open", lazy_open(harness).await);
    note("reset_reconnects", reset_reconnects(harness).await);
    note("invalid_config_fails_at_open", invalid_config_fails_at_open(harness).await);
    note("reset_on_own_section_change", reset_on_own_section_change(harness).await);
    note("single_flight_opens", single_flight_opens(harness).await);
    note("single_flight_queries", single_flight_queries(harness).await);
    note("errors_not_cached", errors_not_cached(harness).await);
    note("retry_only_connection_errors", retry_only_connection_errors(harness).await);
    note("no_secret_in_output", no_secret_in_output(harness).await);
    tracing::info!(%report, "conformance suite");
    report
}

/// Opening validates and connects exactly once; using the connection afterwards does not
/// connect again until something resets it.
pub async fn lazy_open<H: Harness>(harness: &H) -> Outcome {
    let bench = Bench::new(&[("lazy", &harness.section())]);
    let conn = bench.open::<H::Connection>("lazy").await;
    let core = conn.core();
    assert_eq!(core.connect_count(), 1, "open() connects once, so that a misconfiguration fails there");
    assert!(core.is_connected(), "after open() the client is held");
    core.raw().await.unwrap_or_else(|e| panic!("using an open connection failed: {e}"));
    if let Some(query) = harness.query() {
        run_query(&*conn, &query).await.unwrap_or_else(|e| panic!("query `{query}` failed: {e}"));
    }
    assert_eq!(core.connect_count(), 1, "using an open connection must not connect again");
    assert_eq!(core.reset_count(), 0);
    Outcome::Passed
}

/// `reset()` drops the client and connects nothing; the next use connects again.
pub async fn reset_reconnects<H: Harness>(harness: &H) -> Outcome {
    let bench = Bench::new(&[("reset", &harness.section())]);
    let conn = bench.open::<H::Connection>("reset").await;
    let core = conn.core();
    core.reset();
    assert!(!core.is_connected(), "reset() drops the client");
    assert_eq!((core.connect_count(), core.reset_count()), (1, 1), "reset() does not connect");
    match harness.query() {
        Some(query) => drop(run_query(&*conn, &query).await.unwrap_or_else(|e| panic!("`{query}` failed: {e}"))),
        None => drop(core.raw().await.unwrap_or_else(|e| panic!("reconnecting failed: {e}"))),
    }
    assert_eq!(core.connect_count(), 2, "the next use after reset() connects");
    assert!(core.is_connected());
    Outcome::Passed
}

/// An invalid configuration fails at `open()` with a configuration error naming the connection,
/// before anything connects.
pub async fn invalid_config_fails_at_open<H: Harness>(harness: &H) -> Outcome {
    let bench = Bench::new(&[("invalid", &harness.invalid_section())]);
    let err = bench.builder("invalid").open_as::<H::Connection>().await.err();
    let Some(err) = err else { panic!("open() accepted the invalid section") };
    assert_eq!(err.kind(), ErrorKind::Config, "not a configuration error: {err:?}");
    let name = format!("\"{}\"", bench.full_name("invalid"));
    assert!(err.to_string().contains(&name), "the error does not name the connection: {err}");
    Outcome::Passed
}

/// An edit of the connection's own `[connections.<name>]` section makes the next use reconnect
/// with the new values; an edit of another connection's section, or one that only reorders the
/// keys, does not.
pub async fn reset_on_own_section_change<H: Harness>(harness: &H) -> Outcome {
    let (section, changed) = (harness.section(), harness.changed_section());
    assert_ne!(section, changed, "Harness::changed_section must differ from section");
    let bench = Bench::new(&[("mine", &section), ("other", &section)]);
    let mine = bench.open::<H::Connection>("mine").await;
    let use_it = || async {
        mine.core().raw().await.unwrap_or_else(|e| panic!("using the connection failed: {e}"));
    };

    bench.edit(&[("other", &changed), ("mine", &section)]).await; // another section, and order
    use_it().await;
    assert_eq!(mine.core().connect_count(), 1, "another connection's section changed: no reconnect");

    bench.edit(&[("mine", &changed), ("other", &changed)]).await;
    assert!(!mine.core().is_connected(), "its own section changed: the client is stale");
    use_it().await;
    assert_eq!(mine.core().connect_count(), 2, "its own section changed: the next use reconnects");
    let params = mine.core().params().unwrap_or_else(|e| panic!("reading the configuration failed: {e}"));
    let expected = Bench::section_table(&changed);
    let section = params.section().map(|s| s.as_table().clone());
    assert_eq!(section.as_ref(), Some(&expected), "it reconnected with the new section");
    Outcome::Passed
}

/// Concurrent opens of the same connection make one object and connect once, even when
/// connecting takes a while (the suite slows `connect` down by 100 ms so that they overlap).
pub async fn single_flight_opens<H: Harness>(harness: &H) -> Outcome {
    let bench = Bench::new(&[("together", &harness.section())]);
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let open = bench.builder("together").open_as::<Slow<H::Connection>>();
        opens.spawn(open);
    }
    let opened: Vec<Arc<Slow<H::Connection>>> = opens
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a concurrent open failed: {e}")))
        .collect();
    assert!(opened.iter().all(|c| Arc::ptr_eq(c, &opened[0])), "concurrent opens made several objects");
    assert_eq!(opened[0].core.connect_count(), 1, "concurrent opens connected more than once");
    assert_eq!(slow_calls(&bench.full_name("together")), 1, "`connect` ran more than once");
    Outcome::Passed
}

/// Concurrent identical queries that miss the cache run once; the others wait for its result
/// and get the same one.
pub async fn single_flight_queries<H: Harness>(harness: &H) -> Outcome {
    let Some(query) = harness.slow_query() else { return Outcome::NotSupported { needs: "Harness::slow_query" } };
    let bench = Bench::new(&[("flight", &harness.section())]);
    let conn = bench.open::<H::Connection>("flight").await;
    if conn.as_query().is_none() {
        return Outcome::NotSupported { needs: "BaseConnection::as_query" };
    }
    let started = Instant::now();
    let mut queries = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (conn, query) = (Arc::clone(&conn), query.clone());
        queries.spawn(async move { run_query(&*conn, &query).await.map(|df| df.num_rows()) });
    }
    let rows: Vec<usize> =
        queries.join_all().await.into_iter().map(|r| r.unwrap_or_else(|e| panic!("`{query}` failed: {e}"))).collect();
    assert!(rows.iter().all(|r| *r == rows[0]), "callers got different results: {rows:?}");
    let stats = conn.core().query_cache().stats();
    assert_eq!(stats.misses, 1, "the query ran {} times for 16 concurrent callers ({stats:?})", stats.misses);
    assert_eq!(stats.hits, 15, "{stats:?}");
    tracing::debug!(elapsed = ?started.elapsed(), "single flight of a slow query");
    Outcome::Passed
}

/// A failed query is not cached: the same query runs again on the next call.
pub async fn errors_not_cached<H: Harness>(harness: &H) -> Outcome {
    let Some(query) = harness.failing_query() else {
        return Outcome::NotSupported { needs: "Harness::failing_query" };
    };
    let bench = Bench::new(&[("errors", &harness.section())]);
    let conn = bench.open::<H::Connection>("errors").await;
    if conn.as_query().is_none() {
        return Outcome::NotSupported { needs: "BaseConnection::as_query" };
    }
    for attempt in 1..=2 {
        let Err(err) = run_query(&*conn, &query).await else { panic!("`{query}` succeeded") };
        assert_eq!(err.kind(), ErrorKind::Statement, "`{query}` did not fail as a statement error: {err:?}");
        let stats = conn.core().query_cache().stats();
        assert_eq!((stats.misses, stats.hits), (attempt, 0), "a failure was served from the cache");
    }
    if let Some(good) = harness.query() {
        run_query(&*conn, &good).await.unwrap_or_else(|e| panic!("`{good}` failed after a failing query: {e}"));
    }
    Outcome::Passed
}

/// A statement error fails at once: no retry, no reset. A connection-level failure (when the
/// harness can cause one) is retried with a reset between attempts, and the connection recovers
/// by itself once the cause is gone.
pub async fn retry_only_connection_errors<H: Harness>(harness: &H) -> Outcome {
    let Some(failing) = harness.failing_query() else {
        return Outcome::NotSupported { needs: "Harness::failing_query" };
    };
    let bench = Bench::new(&[("retry", &harness.section())]);
    let conn = bench.open::<H::Connection>("retry").await;
    if conn.as_query().is_none() {
        return Outcome::NotSupported { needs: "BaseConnection::as_query" };
    }
    let core = conn.core();
    let Err(err) = run_query(&*conn, &failing).await else { panic!("`{failing}` succeeded") };
    assert!(!err.is_retryable(), "a statement error is classified as retryable: {err:?}");
    assert_eq!((core.reset_count(), core.connect_count()), (0, 1), "a statement error was retried");

    let Some(query) = harness.query() else { return Outcome::NotSupported { needs: "Harness::query" } };
    if !harness.break_connection().await {
        return Outcome::NotSupported { needs: "Harness::break_connection" };
    }
    let broken = run_query(&*conn, &query).await;
    harness.restore_connection().await;
    let Err(err) = broken else { panic!("`{query}` succeeded on a broken connection") };
    assert!(err.is_retryable(), "a connection-level failure is not classified as retryable: {err:?}");
    assert!(core.reset_count() >= 1, "a connection-level failure did not reset the connection");
    let before = core.connect_count();
    run_query(&*conn, &query).await.unwrap_or_else(|e| panic!("the connection did not recover: {e}"));
    assert!(core.connect_count() > before, "the connection did not reconnect after the failure");
    Outcome::Passed
}

/// No secret value shows in `Debug` or `Display` of the connection, its configuration, the
/// factory's builder, a query request, or any error: a secret in an unknown key, in the options,
/// in a query parameter and (when the harness says where its credentials go) in a credential.
pub async fn no_secret_in_output<H: Harness>(harness: &H) -> Outcome {
    const SECRET: &str = "s3cr3t-Conformance-9f2c";
    let invalid = format!("{}\n{UNKNOWN_KEY} = '{SECRET}'\n", harness.section());
    let credential = harness.section_with_secret(SECRET);
    let plain = harness.section();
    let mut sections = vec![("leaky", invalid.as_str()), ("plain", plain.as_str())];
    if let Some(credential) = &credential {
        sections.push(("credential", credential));
    }
    let bench = Bench::new(&sections);
    let mut shown = Vec::new();

    let builder = bench.builder("leaky").option("token", SECRET);
    shown.push(format!("{builder:?}"));
    match builder.open_as::<H::Connection>().await {
        Ok(_) => panic!("open() accepted the unknown key `{UNKNOWN_KEY}`"),
        Err(err) => shown.push(everything(&err)),
    }

    let conn = bench.open::<H::Connection>("plain").await;
    let request = QueryRequest::new("select :password");
    let mut with_param = request.clone();
    with_param.params.push(("password".into(), SECRET.into()));
    shown.push(format!("{with_param:?}"));
    if let Some(query) = conn.as_query() {
        let mut request = QueryRequest::new(harness.failing_query().unwrap_or_else(|| "no such query".into()));
        request.params.push(("password".into(), SECRET.into()));
        if let Err(err) = query.query_request(request).await {
            shown.push(everything(&err));
        }
    }

    if credential.is_some() {
        match bench.builder("credential").open_as::<H::Connection>().await {
            Ok(conn) => {
                shown.push(format!("{:?}", conn.core()));
                let params = conn.core().params().unwrap_or_else(|e| panic!("reading the configuration failed: {e}"));
                shown.push(format!("{params:?}"));
                if let Some(query) = harness.failing_query()
                    && let Err(err) = run_query(&*conn, &query).await
                {
                    shown.push(everything(&err));
                }
            }
            Err(err) => shown.push(everything(&err)),
        }
    }
    for text in &shown {
        assert!(!text.contains(SECRET), "a secret value shows in: {text}");
    }
    if credential.is_none() {
        return Outcome::NotSupported { needs: "Harness::section_with_secret" };
    }
    Outcome::Passed
}

/// An error's `Display`, `Debug` and every cause.
fn everything(err: &Error) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text = format!("{text} / {cause} {cause:?}");
        source = cause.source();
    }
    text
}

/// Runs `text` through the connection's query capability (and so through the cache).
async fn run_query<C: BaseConnection>(conn: &C, text: &str) -> Result<DataFrame> {
    let Some(query) = conn.as_query() else { panic!("{} has no query capability", C::TYPE_NAME) };
    query.query_request(QueryRequest::new(text)).await
}

/// A temporary project whose secrets file holds the sections under test, read by a watching
/// store, with a private query cache.
struct Bench {
    /// Removed on drop.
    _dir: tempfile::TempDir,
    secrets_file: PathBuf,
    /// A prefix that makes the connection names unique in the process (the factory caches
    /// open objects by name).
    prefix: String,
    store: SecretsStore,
    cache: QueryCache,
}

impl Bench {
    fn new(sections: &[(&str, &str)]) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let prefix = format!("conformance{}_", NEXT.fetch_add(1, Ordering::Relaxed));
        let secrets_file = dir.path().join("project/.streamlit/secrets.toml");
        write_sections(&secrets_file, &prefix, sections);
        let store = SecretsStore::builder()
            .home_dir(dir.path().join("home"))
            .project_dir(dir.path().join("project"))
            .watch(true)
            .debounce(Duration::from_millis(30))
            .build();
        Self { _dir: dir, secrets_file, prefix, store, cache: QueryCache::new(64 << 20) }
    }

    fn write(&self, sections: &[(&str, &str)]) {
        write_sections(&self.secrets_file, &self.prefix, sections);
    }

    fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Rewrites the secrets file and waits until the store has published the edit.
    async fn edit(&self, sections: &[(&str, &str)]) {
        let generation = self.store.status().generation();
        self.write(sections);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.store.status().generation() == generation {
            assert!(Instant::now() < deadline, "the store did not publish an edit of {}", self.secrets_file.display());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A section as the store reads it.
    fn section_table(body: &str) -> toml::Table {
        body.parse().unwrap_or_else(|e| panic!("the harness's section is not TOML: {e}"))
    }

    fn builder(&self, name: &str) -> ConnectionBuilder {
        let quick = RetryPolicy::new(3, Duration::from_millis(10)).unwrap_or(RetryPolicy::NEVER);
        connection(self.full_name(name)).secrets_store(self.store.clone()).query_cache(self.cache.clone()).retry(quick)
    }

    async fn open<C: BaseConnection>(&self, name: &str) -> Arc<C> {
        match self.builder(name).open_as::<C>().await {
            Ok(conn) => conn,
            Err(err) => panic!("opening a connection of Harness::section failed: {}", everything(&err)),
        }
    }
}

/// Writes the secrets file: `[connections.<prefix><name>]` and its body, for each section.
fn write_sections(path: &std::path::Path, prefix: &str, sections: &[(&str, &str)]) {
    let mut text = String::new();
    for (name, body) in sections {
        for part in ["[connections.", prefix, name, "]\n", body, "\n"] {
            text.push_str(part);
        }
    }
    let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(path, text));
    written.unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// `C` with a `connect` that takes 100 ms longer and counts its calls by connection name, so that
/// concurrent opens overlap.
struct Slow<C: BaseConnection> {
    core: ConnectionCore<Self>,
    _type: PhantomData<fn() -> C>,
}

static SLOW_CALLS: std::sync::Mutex<Vec<(String, u64)>> = std::sync::Mutex::new(Vec::new());

#[async_trait]
impl<C: BaseConnection> BaseConnection for Slow<C> {
    type Raw = C::Raw;
    const TYPE_NAME: &'static str = C::TYPE_NAME;

    async fn connect(params: &ConnectParams) -> Result<C::Raw> {
        count_slow_call(params.name());
        tokio::time::sleep(Duration::from_millis(100)).await;
        C::connect(params).await
    }

    fn from_core(core: ConnectionCore<Self>) -> Self {
        Self { core, _type: PhantomData }
    }

    fn core(&self) -> &ConnectionCore<Self> {
        &self.core
    }
}

fn count_slow_call(name: &str) {
    let mut calls = SLOW_CALLS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match calls.iter_mut().find(|(n, _)| n == name) {
        Some((_, count)) => *count += 1,
        None => calls.push((name.to_owned(), 1)),
    }
}

fn slow_calls(name: &str) -> u64 {
    let calls = SLOW_CALLS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    calls.iter().find(|(n, _)| n == name).map_or(0, |(_, count)| *count)
}
