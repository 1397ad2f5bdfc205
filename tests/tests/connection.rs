//! The connection model, through the sample third-party connector `files-connector`: lifecycle,
//! reset on secrets change, the factory, type resolution and the query cache.

#![allow(clippy::unwrap_used, clippy::items_after_statements)] // test code

use std::sync::Arc;
use std::time::Duration;

use connections::{BaseConnection as _, Error, ErrorKind, QueryCache, RetryPolicy, SecretsStore};
use connections_tests::{Project, eventually};
use files_connector::FilesConnection;

const WAIT: Duration = Duration::from_secs(10);

/// A project whose `data/` folder holds `pets.csv`, and a secrets file declaring connections.
struct Fixture {
    project: Project,
}

impl Fixture {
    fn new(secrets: &str) -> Self {
        let project = Project::new();
        project.write(project.project().join("data/pets.csv"), "name,owner,age\nTom,Jerry,3\nRex,Ann,5\n");
        project.write(project.project().join("data/owners.csv"), "owner\nJerry\nAnn\nBob\n");
        let root = project.project().join("data");
        let secrets = secrets.replace("{root}", &root.display().to_string().replace('\\', "/"));
        project.write(project.project_secrets(), secrets);
        Self { project }
    }

    fn data(&self) -> std::path::PathBuf {
        self.project.project().join("data")
    }

    fn store(&self) -> SecretsStore {
        self.project.store()
    }
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy::new(3, Duration::from_millis(10)).unwrap()
}

async fn open_files(name: &str, store: &SecretsStore) -> Arc<FilesConnection> {
    connections::connection(name)
        .secrets_store(store.clone())
        .query_cache(QueryCache::new(64 << 20))
        .retry(quick_retry())
        .open_as::<FilesConnection>()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_third_party_type_is_registered_and_found_by_name() {
    assert!(connections::registered_names().contains(&"files"));
    assert!(connections::registered_names().contains(&"csv-files"), "aliases too");
    let ty = connections::lookup_type("csv-files").unwrap();
    assert_eq!((ty.name, ty.rust_type, ty.defined_in), ("files", "FilesConnection", "files_connector"));
}

#[tokio::test]
async fn open_connects_and_queries_return_arrow_data() {
    let f = Fixture::new("[connections.pets]\ntype = 'files'\nroot = '{root}'\n");
    let conn = connections::connection("pets").secrets_store(f.store()).open().await.unwrap();
    assert_eq!((conn.name(), conn.type_name(), conn.connect_count()), ("pets", "files", 1));
    let df = conn.query("pets.csv").await.unwrap();
    assert_eq!(df.num_rows(), 2);
    assert_eq!(df.column_names(), ["name", "owner", "age"]);
    let shown = df.to_string();
    assert!(shown.contains("| Tom  | Jerry | 3   |"), "{shown}");
}

#[tokio::test]
async fn connecting_is_lazy_after_a_reset_and_reset_reconnects() {
    let f = Fixture::new("[connections.lazy]\ntype = 'files'\nroot = '{root}'\n");
    let conn = open_files("lazy", &f.store()).await;
    assert_eq!(conn.core().connect_count(), 1, "open connects, so misconfiguration fails there");
    conn.core().reset();
    assert!(!conn.core().is_connected());
    assert_eq!(conn.core().connect_count(), 1, "a reset does not connect");
    conn.query("pets.csv").await.unwrap();
    assert_eq!(conn.core().connect_count(), 2, "the next use does");
    conn.query("owners.csv").await.unwrap();
    assert_eq!(conn.core().connect_count(), 2);
}

#[tokio::test]
async fn cached_results_survive_reset_and_do_not_reconnect() {
    let f = Fixture::new("[connections.keep]\ntype = 'files'\nroot = '{root}'\n");
    let conn = open_files("keep", &f.store()).await;
    let first = conn.query("pets.csv").await.unwrap();
    conn.core().reset();
    let again = conn.query("pets.csv").await.unwrap();
    assert_eq!(conn.queries_run(), 1, "served from the cache");
    assert_eq!(conn.core().connect_count(), 1, "a hit does not touch the raw client");
    let a = first.column("age").unwrap().unwrap();
    let b = again.column("age").unwrap().unwrap();
    assert!(Arc::ptr_eq(&a, &b), "a hit hands out the same buffers");
}

#[tokio::test]
async fn a_secrets_edit_resets_only_the_connection_whose_section_changed() {
    let secrets =
        "[connections.a]\ntype = 'files'\nroot = '{root}'\n[connections.b]\ntype = 'files'\nroot = '{root}'\n";
    let f = Fixture::new(secrets);
    let store = f.project.watching_store();
    let a = open_files("a", &store).await;
    let b = open_files("b", &store).await;
    let generation = store.status().generation();

    // reorder a's keys and add a comment: no change in value
    let root = f.data().display().to_string();
    let reordered = format!(
        "# edited\n[connections.a]\nroot = '{root}'\ntype = 'files'\n[connections.b]\ntype = 'files'\nroot = '{root}'\n"
    );
    f.project.write(f.project.project_secrets(), &reordered);
    let changed = format!("new_root_key = 1\n{reordered}");
    f.project.write(f.project.project_secrets(), &changed);
    assert!(eventually(WAIT, || store.status().generation() > generation), "the edit was not published");
    a.query("pets.csv").await.unwrap();
    b.query("pets.csv").await.unwrap();
    assert_eq!((a.core().connect_count(), b.core().connect_count()), (1, 1), "reorder and root keys reset nothing");

    // now change a's section in value
    let generation = store.status().generation();
    let edited = changed.replacen("[connections.a]\n", "[connections.a]\nhas_header = true\n", 1);
    f.project.write(f.project.project_secrets(), &edited);
    assert!(eventually(WAIT, || store.status().generation() > generation), "the edit was not published");
    a.query("owners.csv").await.unwrap();
    b.query("owners.csv").await.unwrap();
    assert_eq!(a.core().connect_count(), 2, "a's section changed: reconnected");
    assert_eq!(b.core().connect_count(), 1, "b's did not");
    assert_eq!(a.core().reset_count(), 1);
}

#[tokio::test]
async fn the_factory_returns_the_same_object_for_the_same_call() {
    let f = Fixture::new("[connections.same]\ntype = 'files'\nroot = '{root}'\n");
    let store = f.store();
    let open = || connections::connection("same").secrets_store(store.clone());
    let one = open().open().await.unwrap();
    let two = open().open().await.unwrap();
    assert!(one.same_as(&two));
    assert_eq!(one.instance_id(), two.instance_id());
    let other = open().option("has_header", true).open().await.unwrap();
    assert!(!one.same_as(&other), "other options: another object");
    let again = open().option("has_header", true).open().await.unwrap();
    assert!(other.same_as(&again));
    let other_store = connections::connection("same").secrets_store(f.store()).open().await.unwrap();
    assert!(!one.same_as(&other_store), "another secrets store: another object");
}

#[tokio::test]
async fn factory_ttl_and_max_entries() {
    let f = Fixture::new(
        "[connections.t1]\ntype = 'files'\nroot = '{root}'\n[connections.t2]\ntype = 'files'\nroot = '{root}'\n",
    );
    let store = f.store();
    let with_ttl = || connections::connection("t1").secrets_store(store.clone()).ttl(Duration::from_millis(200));
    let first = with_ttl().open().await.unwrap();
    assert!(with_ttl().open().await.unwrap().same_as(&first));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = with_ttl().open().await.unwrap();
    assert!(!later.same_as(&first), "expired: a new object");
    assert_ne!(later.instance_id(), first.instance_id());

    let lru = |name: &str| connections::connection(name).secrets_store(store.clone()).max_entries(1);
    let a = lru("t1").open().await.unwrap();
    assert!(lru("t1").open().await.unwrap().same_as(&a));
    let b = lru("t2").open().await.unwrap();
    assert!(!lru("t1").open().await.unwrap().same_as(&a), "max_entries(1): opening t2 evicted t1 at once");
    assert!(!lru("t2").open().await.unwrap().same_as(&b), "and t1 evicted t2");

    let err = lru("t1").max_entries(0).open().await.unwrap_err();
    assert_eq!(err.to_string(), "invalid argument `max_entries`: must be at least 1");
}

#[tokio::test]
async fn concurrent_opens_construct_once_and_failures_are_not_cached() {
    /// A test-only type whose `connect` takes 100 ms, so that concurrent opens overlap.
    struct Slow {
        core: connections::ConnectionCore<Self>,
    }
    static SLOW_CONNECTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    #[connections::async_trait]
    impl connections::BaseConnection for Slow {
        type Raw = ();
        const TYPE_NAME: &'static str = "slow-for-test";
        async fn connect(_: &connections::ConnectParams) -> connections::Result<()> {
            SLOW_CONNECTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        }
        connections::core_accessors!();
    }

    let f = Fixture::new("[connections.slow]\ntype = 'files'\nroot = '{root}'\n");
    let store = f.store();
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        opens.spawn(async move { connections::connection("slow").secrets_store(store).open_as::<Slow>().await });
    }
    let conns: Vec<Arc<Slow>> = opens.join_all().await.into_iter().map(Result::unwrap).collect();
    assert!(conns.iter().all(|c| Arc::ptr_eq(c, &conns[0])));
    assert_eq!(conns[0].core().connect_count(), 1);
    assert_eq!(SLOW_CONNECTS.load(std::sync::atomic::Ordering::Relaxed), 1);

    let missing = f.project.project().join("later");
    let open = || {
        connections::connection("late")
            .with_type("files")
            .option("root", missing.display().to_string())
            .secrets_store(store.clone())
            .open()
    };
    let err = open().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.to_string(), "connection \"late\" (type files) failed to connect");
    std::fs::create_dir(&missing).unwrap();
    assert!(open().await.is_ok(), "the failure was not cached");
}

#[tokio::test]
async fn type_resolution_order() {
    let f = Fixture::new(
        "[connections.by_section]\ntype = 'files'\nroot = '{root}'\n\
         [connections.files]\ntype = 'nonsense'\nroot = '{root}'\n\
         [connections.untyped]\nroot = '{root}'\n\
         [connections.typo]\ntype = 'filez'\nroot = '{root}'\n\
         [connections.python]\ntype = 'my_package.MyConnection'\n\
         [connections.numeric]\ntype = 3\n",
    );
    let store = f.store();
    let open = |name: &str| connections::connection(name).secrets_store(store.clone());

    // the section's type key
    assert_eq!(open("by_section").open().await.unwrap().type_name(), "files");
    // a name that implies its type wins over the section's `type`
    assert_eq!(open("files").open().await.unwrap().type_name(), "files");
    // an explicit type wins over everything
    let explicit = open("untyped").with_type("csv-files").open().await.unwrap();
    assert_eq!(explicit.type_name(), "files");

    let err = open("untyped").open().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot tell the type of connection \"untyped\": pass one (`connection(\"untyped\").with_type(\"sql\")`) or add `type = \"...\"` to [connections.untyped] in secrets.toml"
    );
    let err = open("not_in_secrets").open().await.unwrap_err();
    assert!(matches!(err, Error::NoType { .. }), "{err:?}");

    let err = open("typo").open().await.unwrap_err();
    let Error::UnknownType { closest, known, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*closest, Some("files"));
    assert!(known.contains(&"files"));
    assert!(
        err.to_string().starts_with("no connection type named \"filez\" (did you mean \"files\"?); registered types: ")
    );

    let err = open("python").open().await.unwrap_err();
    assert!(matches!(err, Error::PythonTypePath { .. }), "{err:?}");
    assert!(err.to_string().contains("looks like a Python class path, which has no meaning here"));

    let err = open("numeric").open().await.unwrap_err();
    assert!(err.to_string().starts_with("connection \"numeric\": `type` (from "), "{err}");
    assert!(err.to_string().ends_with("expected a string naming a connection type, found integer"), "{err}");

    let err = open("anything").with_type("nope").open().await.unwrap_err();
    assert!(matches!(err, Error::UnknownType { closest: None, .. }), "{err:?}");
}

#[tokio::test]
async fn a_typed_config_error_names_the_file_and_the_key() {
    let f = Fixture::new("[connections.bad]\ntype = 'files'\nroot = '{root}'\nhas_header = 'yes'\n");
    let err = connections::connection("bad").secrets_store(f.store()).open().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "connection \"bad\": `has_header` (from {}): expected a boolean, found a string",
            f.project.project_secrets().display()
        )
    );
    let err = connections::connection("bad")
        .secrets_store(f.store())
        .option("has_header", true)
        .option("delimter", ";")
        .open()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "connection \"bad\": `delimter` (from the options passed to connection()): unknown key for a connection of type `files`; supported keys: root, has_header, delimiter (did you mean `delimiter`?)"
    );
    let err = connections::connection("nothing").with_type("files").secrets_store(f.store()).open().await.unwrap_err();
    assert_eq!(err.to_string(), "connection \"nothing\": `root`: the `root` parameter is required");
}

#[tokio::test]
async fn options_alone_are_enough_without_any_secrets_file() {
    let p = Project::new();
    p.write(p.project().join("d/x.csv"), "a\n1\n");
    let store = p.store();
    let conn = connections::connection("adhoc")
        .with_type("files")
        .option("root", p.project().join("d").display().to_string())
        .secrets_store(store)
        .open()
        .await
        .unwrap();
    assert_eq!(conn.query("x.csv").await.unwrap().num_rows(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_identical_cold_queries_run_once() {
    let f = Fixture::new("[connections.flight]\ntype = 'files'\nroot = '{root}'\n");
    // large enough that reading it takes well over 100 ms, so that the queries overlap
    let big: String =
        std::iter::once("id,name\n".to_owned()).chain((0..200_000).map(|i| format!("{i},pet{i}\n"))).collect();
    f.project.write(f.data().join("pets.csv"), big);
    let conn = open_files("flight", &f.store()).await;
    let mut queries = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let conn = Arc::clone(&conn);
        queries.spawn(async move { conn.query("pets.csv").await.map(|df| df.num_rows()) });
    }
    let rows: Vec<usize> = queries.join_all().await.into_iter().map(Result::unwrap).collect();
    assert_eq!(rows, vec![200_000; 100]);
    assert_eq!(conn.queries_run(), 1, "single flight");
    let stats = conn.core().query_cache().stats();
    assert_eq!((stats.misses, stats.hits), (1, 99));
}

#[tokio::test]
async fn errors_are_shared_by_waiters_and_not_cached() {
    let f = Fixture::new("[connections.err]\ntype = 'files'\nroot = '{root}'\n");
    let conn = open_files("err", &f.store()).await;
    let err = conn.query("missing.csv").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement);
    assert_eq!(conn.queries_run(), 1, "a statement error is not retried");
    f.project.write(f.data().join("missing.csv"), "x\n1\n");
    assert_eq!(conn.query("missing.csv").await.unwrap().num_rows(), 1, "the error was not cached");
}

#[tokio::test]
async fn connection_failures_are_retried_with_a_reset_between_attempts() {
    let f = Fixture::new("[connections.flaky]\ntype = 'files'\nroot = '{root}'\n");
    let conn = open_files("flaky", &f.store()).await;
    let moved = f.project.project().join("moved");
    std::fs::rename(f.data(), &moved).unwrap();
    let err = conn.query("pets.csv").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(conn.queries_run(), 1, "the first attempt ran, the others failed to connect");
    assert_eq!(conn.core().reset_count(), 1);
    assert_eq!(conn.core().connect_count(), 1);
    // the folder comes back: the connection recovers by itself
    std::fs::rename(&moved, f.data()).unwrap();
    assert_eq!(conn.query("pets.csv").await.unwrap().num_rows(), 2);
    assert_eq!(conn.core().connect_count(), 2);
}

#[tokio::test]
async fn query_ttl_expires_entries() {
    let f = Fixture::new("[connections.ttl]\ntype = 'files'\nroot = '{root}'\n");
    let conn = open_files("ttl", &f.store()).await;
    let ttl = Duration::from_millis(150);
    conn.query("pets.csv").ttl(ttl).await.unwrap();
    conn.query("pets.csv").ttl(ttl).await.unwrap();
    assert_eq!(conn.queries_run(), 1);
    conn.query("pets.csv").await.unwrap();
    assert_eq!(conn.queries_run(), 2, "another ttl is another entry");
    tokio::time::sleep(Duration::from_millis(250)).await;
    conn.query("pets.csv").ttl(ttl).await.unwrap();
    assert_eq!(conn.queries_run(), 3, "expired");
    conn.query("pets.csv").await.unwrap();
    assert_eq!(conn.queries_run(), 3, "no ttl: kept until cleared");
    conn.core().clear_cache();
    conn.query("pets.csv").await.unwrap();
    assert_eq!(conn.queries_run(), 4, "cleared");
}

#[tokio::test]
async fn the_byte_budget_evicts() {
    let p = Project::new();
    let row = "x".repeat(1000);
    let body: String = std::iter::once("text\n".to_owned()).chain((0..100).map(|_| format!("{row}\n"))).collect();
    for i in 0..8 {
        p.write(p.project().join(format!("d/f{i}.csv")), &body);
    }
    let cache = QueryCache::new(300_000);
    let conn = connections::connection("budget")
        .with_type("files")
        .option("root", p.project().join("d").display().to_string())
        .secrets_store(p.store())
        .query_cache(cache.clone())
        .open_as::<FilesConnection>()
        .await
        .unwrap();
    let one = conn.query("f0.csv").await.unwrap().arrow_bytes() as u64;
    assert!(one > 100_000, "{one}");
    for i in 1..8 {
        conn.query(&format!("f{i}.csv")).await.unwrap();
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(stats.evictions >= 4, "{stats:?}");
    assert!(stats.bytes <= cache.budget_bytes(), "{stats:?}");
}

#[tokio::test]
async fn wrong_type_and_no_query_capability() {
    let f = Fixture::new("[connections.w]\ntype = 'files'\nroot = '{root}'\n");
    let conn = connections::connection("w").secrets_store(f.store()).open().await.unwrap();
    assert!(conn.downcast::<FilesConnection>().is_ok());
    struct Other {
        core: connections::ConnectionCore<Self>,
    }
    #[connections::async_trait]
    impl connections::BaseConnection for Other {
        type Raw = ();
        const TYPE_NAME: &'static str = "other-for-test";
        async fn connect(_: &connections::ConnectParams) -> connections::Result<()> {
            Ok(())
        }
        fn from_core(core: connections::ConnectionCore<Self>) -> Self {
            Self { core }
        }
        fn core(&self) -> &connections::ConnectionCore<Self> {
            &self.core
        }
    }
    connections::register_connection!(Other);
    let Err(err) = conn.downcast::<Other>() else { panic!("a files connection is not an Other") };
    assert!(matches!(err, Error::WrongType { actual: "files", .. }), "{err:?}");
    let other = connections::connection("o").with_type("other-for-test").secrets_store(f.store()).open().await.unwrap();
    let err = other.query("select 1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "connection \"o\" (type other-for-test) does not support generic queries; use open_as to reach its own API"
    );
}

#[tokio::test]
async fn no_secret_in_any_debug_output() {
    const SECRET: &str = "pa55-w0rd-xyz";
    let f = Fixture::new(&format!("[connections.s]\ntype = 'files'\nroot = '{{root}}'\ndelimiter = '{SECRET}'\n"));
    let builder = connections::connection("s").secrets_store(f.store()).option("token", SECRET);
    let err = builder.clone().open().await.unwrap_err();
    let mut shown = vec![format!("{builder:?}"), format!("{err} {err:?}")];
    let ok = connections::connection("s2")
        .with_type("files")
        .option("root", f.data().display().to_string())
        .option("delimiter", ",")
        .secrets_store(f.store())
        .open_as::<FilesConnection>()
        .await
        .unwrap();
    let request = ok.query("pets.csv").param("password", SECRET).request().clone();
    shown.push(format!("{request:?}"));
    shown.push(format!("{:?}", ok.core()));
    shown.push(format!("{:?}", ok.core().params().unwrap()));
    let err = ok.query("pets.csv").param("password", SECRET).await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    for text in &shown {
        assert!(!text.contains(SECRET), "leaked: {text}");
    }
}

#[test]
fn the_blocking_facade_opens_and_queries_in_two_lines() {
    let f = Fixture::new("[connections.sync]\ntype = 'files'\nroot = '{root}'\n");
    let conn = connections::blocking::connection("sync").secrets_store(f.store()).open().unwrap();
    let df = conn.query("owners.csv").unwrap();
    assert_eq!(df.num_rows(), 3);
}
