//! The `connection()` factory and the connection lifecycle, beyond the basics of
//! `connection.rs`: secrets changes racing a connect, the exact `max_entries` bound, the type a
//! caller asks for, Streamlit's class paths, options alone over unreadable secrets,
//! `[runner] connectionDefaultTTL`, `is_connected`, the blocking facade and errors that name
//! their connection.
//!
//! Each test that opens through the factory picks its own `ttl`, so that it has a cache
//! partition of its own (partitions are per (ttl, max_entries), process-wide).

#![allow(clippy::unwrap_used, clippy::items_after_statements)] // test code

use std::collections::HashSet;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connections::toml::Value;
use connections::{
    BaseConnection, ConfigProblem, ConnectParams, Connection, ConnectionCore, Error, ErrorKind, Param, Result,
    SecretsStore, SqlConnection, async_trait,
};
use connections_tests::Project;
use files_connector::FilesConnection;
use tokio::sync::Notify;

/// A project whose `data/` folder holds `pets.csv`, with `secrets` (where `{root}` stands for
/// that folder) as its `secrets.toml`.
fn project(secrets: &str) -> (Project, SecretsStore) {
    let p = Project::new();
    p.write(p.project().join("data/pets.csv"), "name,owner\nTom,Jerry\nRex,Ann\n");
    p.write(p.project().join("data/owners.csv"), "owner\nJerry\nAnn\nBob\n");
    let root = p.project().join("data").display().to_string().replace('\\', "/");
    p.write(p.project_secrets(), secrets.replace("{root}", &root));
    let store = p.store();
    (p, store)
}

fn data(p: &Project) -> String {
    p.project().join("data").display().to_string()
}

/// A connection type whose raw client is its `setting` key; while a [`Gate`] is armed, the next
/// connect holds open (after reading its configuration) until the gate is released.
struct Gated {
    core: ConnectionCore<Self>,
}

#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

static GATE: Mutex<Option<Arc<Gate>>> = Mutex::new(None);

#[async_trait]
impl BaseConnection for Gated {
    type Raw = String;
    const TYPE_NAME: &'static str = "gated-for-test";
    async fn connect(params: &ConnectParams) -> Result<String> {
        let setting = params.get("setting").and_then(Value::as_str).unwrap_or("none").to_owned();
        let gate = GATE.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.entered.notify_one();
            gate.release.notified().await;
        }
        Ok(setting)
    }
    connections::core_accessors!();
}
connections::register_connection!(Gated);

/// A connection type that needs no configuration.
struct Plain {
    core: ConnectionCore<Self>,
}

#[async_trait]
impl BaseConnection for Plain {
    type Raw = ();
    const TYPE_NAME: &'static str = "plain-for-test";
    async fn connect(_: &ConnectParams) -> Result<()> {
        Ok(())
    }
    connections::core_accessors!();
}
connections::register_connection!(Plain);

/// A connection type that is never registered.
struct Unregistered {
    core: ConnectionCore<Self>,
}

#[async_trait]
impl BaseConnection for Unregistered {
    type Raw = ();
    const TYPE_NAME: &'static str = "unregistered-for-test";
    async fn connect(_: &ConnectParams) -> Result<()> {
        Ok(())
    }
    connections::core_accessors!();
}

/// A connection type whose connect fails with an error that does not name the connection.
struct Failing {
    core: ConnectionCore<Self>,
}

#[async_trait]
impl BaseConnection for Failing {
    type Raw = ();
    const TYPE_NAME: &'static str = "failing-for-test";
    async fn connect(_: &ConnectParams) -> Result<()> {
        Err(Error::InvalidArgument { argument: "greeting", reason: "broken on purpose".into() })
    }
    connections::core_accessors!();
}
connections::register_connection!(Failing);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_change_while_a_connect_is_in_flight_is_not_lost() {
    let (p, store) = project("[connections.g]\ntype = 'gated-for-test'\nsetting = 'v1'\n");
    let conn = connections::connection("g")
        .secrets_store(store.clone())
        .ttl(Duration::from_secs(1001))
        .open_as::<Gated>()
        .await
        .unwrap();
    assert_eq!(*conn.core().raw().await.unwrap(), "v1");
    conn.core().reset();

    let gate = Arc::new(Gate::default());
    *GATE.lock().unwrap() = Some(Arc::clone(&gate));
    let use_now = || {
        let conn = Arc::clone(&conn);
        tokio::spawn(async move { conn.core().raw().await.map(|raw| (*raw).clone()) })
    };
    let first = use_now();
    gate.entered.notified().await; // connecting with v1, held open
    p.write(p.project_secrets(), "[connections.g]\ntype = 'gated-for-test'\nsetting = 'v2'\n");
    store.reload().unwrap();
    let second = use_now(); // sees the change, then waits for the connect in flight
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.release.notify_one();

    assert_eq!(first.await.unwrap().unwrap(), "v1", "began before the change");
    assert_eq!(second.await.unwrap().unwrap(), "v2", "began after the change: the new settings");
    assert_eq!(*conn.core().raw().await.unwrap(), "v2", "and every later use");
    assert_eq!(conn.core().connect_count(), 3);
    assert_eq!(conn.core().reset_count(), 2, "the explicit reset, and the stale client");
}

#[tokio::test]
async fn max_entries_is_an_exact_lru_bound() {
    let (_p, store) = project(
        "[connections.m1]\ntype = 'files'\nroot = '{root}'\n[connections.m2]\ntype = 'files'\nroot = '{root}'\n\
         [connections.m3]\ntype = 'files'\nroot = '{root}'\n",
    );
    let open = |name: &str, max: u64| {
        connections::connection(name)
            .secrets_store(store.clone())
            .ttl(Duration::from_secs(1002))
            .max_entries(max)
            .open()
    };
    // max_entries(1): a, b, a again is a new a, every time
    let mut previous = open("m1", 1).await.unwrap();
    for round in 0..20 {
        let b = open("m2", 1).await.unwrap();
        assert!(!previous.is_connected(), "round {round}: the evicted object was closed");
        let a = open("m1", 1).await.unwrap();
        assert!(!a.same_as(&previous), "round {round}: opening m2 evicted m1");
        assert!(!b.is_connected(), "round {round}: and m1 evicted m2");
        previous = a;
    }
    assert!(open("m1", 1).await.unwrap().same_as(&previous), "the one cached entry is still served");

    // reads refresh recency
    let a = open("m1", 2).await.unwrap();
    let b = open("m2", 2).await.unwrap();
    assert!(open("m1", 2).await.unwrap().same_as(&a));
    open("m3", 2).await.unwrap();
    assert!(open("m1", 2).await.unwrap().same_as(&a), "recently used: kept");
    assert!(!open("m2", 2).await.unwrap().same_as(&b), "least recently used: evicted");

    // concurrent opens keep the bound too
    let mut opens = tokio::task::JoinSet::new();
    for i in 0..30 {
        let store = store.clone();
        let name = ["m1", "m2", "m3"][i % 3];
        opens.spawn(async move {
            connections::connection(name)
                .secrets_store(store)
                .ttl(Duration::from_secs(1003))
                .max_entries(1)
                .open()
                .await
        });
    }
    let conns: Vec<Connection> = opens.join_all().await.into_iter().map(Result::unwrap).collect();
    let live: HashSet<_> = conns.iter().filter(|c| c.is_connected()).map(Connection::instance_id).collect();
    assert_eq!(live.len(), 1, "one object stays cached (and connected); the others were evicted and closed");
}

#[tokio::test]
async fn the_type_asked_for_wins() {
    let (p, store) = project(
        "[connections.typed]\ntype = 'unregistered-type'\nroot = '{root}'\n[connections.files]\ntype = 'files'\nroot = '{root}'\n",
    );
    let open = |name: &str| connections::connection(name).secrets_store(store.clone()).ttl(Duration::from_secs(1004));
    let err = open("typed").open().await.unwrap_err();
    assert!(matches!(err, Error::UnknownType { .. }), "the section's type alone: {err:?}");
    // the Rust type asked for beats the section's `type`
    let conn = open("typed").open_as::<FilesConnection>().await.unwrap();
    assert_eq!(conn.query("pets.csv").await.unwrap().num_rows(), 2);
    // so does a type name
    assert_eq!(open("typed").with_type("files").open().await.unwrap().type_name(), "files");
    // and both beat a name that implies its type
    let plain = open("files").open_as::<Plain>().await.unwrap();
    assert_eq!(plain.core().name(), "files");
    assert_eq!(open("files").with_type("plain-for-test").open().await.unwrap().type_name(), "plain-for-test");
    // a registered type name as the name, when nothing else says: that type
    assert_eq!(open("plain-for-test").open().await.unwrap().type_name(), "plain-for-test");
    // open_as needs no registration
    assert!(open("anything").open_as::<Unregistered>().await.is_ok());
    // asking for two different types is an error
    let Err(err) = open("typed").with_type("plain-for-test").open_as::<FilesConnection>().await else {
        panic!("a plain-for-test connection is not a FilesConnection")
    };
    assert!(matches!(err, Error::WrongType { actual: "plain-for-test", .. }), "{err:?}");
    drop(p);
}

#[tokio::test]
async fn streamlit_class_paths_stand_for_their_types() {
    let p = Project::new();
    let db = p.project().join("db.sqlite");
    let url = format!("sqlite:///{}", db.display());
    p.write(
        p.project_secrets(),
        format!(
            "[connections.py_sql]\ntype = 'streamlit.connections.SQLConnection'\nurl = '{url}'\n\
             [connections.py_sql_module]\ntype = 'streamlit.connections.sql_connection.SQLConnection'\nurl = '{url}'\n\
             [connections.py_snow]\ntype = 'streamlit.connections.SnowparkConnection'\n\
             [connections.py_other]\ntype = 'my_package.MyConnection'\n"
        ),
    );
    let store = p.store();
    let open = |name: &str| connections::connection(name).secrets_store(store.clone()).ttl(Duration::from_secs(1005));
    assert_eq!(open("py_sql").open().await.unwrap().type_name(), "sql");
    assert_eq!(open("py_sql_module").open().await.unwrap().type_name(), "sql");
    // the class path and the type name are the same type: the same object (Streamlit hashes
    // a class by its name)
    let by_path = open("py_sql").with_type("streamlit.connections.sql_connection.SQLConnection").open().await.unwrap();
    assert!(by_path.same_as(&open("py_sql").with_type("sql").open().await.unwrap()));
    assert!(open("py_sql").open_as::<SqlConnection>().await.is_ok());

    for (path, type_name) in [
        ("streamlit.connections.SQLConnection", "sql"),
        ("streamlit.connections.sql_connection.SQLConnection", "sql"),
        ("streamlit.connections.SnowflakeConnection", "snowflake"),
        ("streamlit.connections.snowflake_connection.SnowflakeConnection", "snowflake"),
        ("streamlit.connections.SnowparkConnection", "snowpark"),
        ("streamlit.connections.snowpark_connection.SnowparkConnection", "snowpark"),
        ("streamlit.connections.SnowflakeCallersRightsConnection", "snowflake-callers-rights"),
        ("streamlit.connections.snowflake_connection.SnowflakeCallersRightsConnection", "snowflake-callers-rights"),
    ] {
        match connections::lookup_type(path) {
            Ok(ty) => assert_eq!(ty.name, type_name, "{path}"),
            Err(Error::UnregisteredStreamlitType { type_name: named, known, .. }) => {
                assert_eq!(named, type_name, "{path}");
                assert!(known.contains(&"sql") && known.contains(&"files"), "{known:?}");
            }
            Err(other) => panic!("{path}: {other:?}"),
        }
    }
    // the tests crate links every Streamlit type (`snowpark` too): the class path opens type
    // `snowpark`, whose section here holds nothing but its type
    let err = open("py_snow").open().await.unwrap_err();
    let Error::Config { problem, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(&**problem, ConfigProblem::NothingConfigured { hint } if hint.contains("Snowpark")), "{err:?}");
    let err = open("py_other").open().await.unwrap_err();
    assert!(matches!(err, Error::PythonTypePath { .. }), "{err:?}");
}

#[tokio::test]
async fn options_alone_open_when_the_secrets_cannot_be_parsed() {
    let (p, store) = project("[connections.broken]\nroot = 'unterminated\n");
    let open = |name: &str| {
        connections::connection(name).with_type("files").secrets_store(store.clone()).ttl(Duration::from_secs(1006))
    };
    let conn = open("adhoc").option("root", data(&p)).open().await.unwrap();
    assert_eq!(conn.query("pets.csv").await.unwrap().num_rows(), 2);

    // a connection that needs its section fails with the parse error, naming itself and the file
    for builder in [open("broken"), open("broken").option("has_header", true)] {
        let err = builder.open().await.unwrap_err();
        assert!(matches!(err.innermost(), Error::Parse { line: 2, .. }), "{err:?}");
        let shown = err.to_string();
        assert!(shown.starts_with("connection \"broken\" (type files): cannot parse "), "{shown}");
        assert!(shown.contains(&p.project_secrets().display().to_string()), "{shown}");
    }
    // a connect error with complete options is that error
    let err = open("adhoc2").option("root", "/no/such/folder").open().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
}

#[tokio::test]
async fn the_runner_default_ttl_comes_from_config_toml() {
    let (p, store) = project("[connections.r]\ntype = 'files'\nroot = '{root}'\n");
    p.write(p.home().join(".streamlit/config.toml"), "[runner]\nconnectionDefaultTTL = 3600\n");
    p.write(p.project().join(".streamlit/config.toml"), "[runner]\nconnectionDefaultTTL = ' 0.25 '\n");
    let open = || connections::connection("r").secrets_store(store.clone());
    let first = open().open().await.unwrap();
    assert!(open().open().await.unwrap().same_as(&first));
    assert!(open().ttl(Duration::from_millis(250)).open().await.unwrap().same_as(&first), "the same partition");
    let kept = open().no_ttl().open().await.unwrap();
    assert!(!kept.same_as(&first), "no ttl: another partition");
    assert!(open().ttl(None).open().await.unwrap().same_as(&kept), "`ttl(None)` is `no_ttl()`");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!open().open().await.unwrap().same_as(&first), "the project's 0.25 s won and expired");
    assert!(open().no_ttl().open().await.unwrap().same_as(&kept), "no ttl overrides the setting");

    // only the global file sets it
    let (p, store) = project("[connections.g]\ntype = 'files'\nroot = '{root}'\n");
    p.write(p.home().join(".streamlit/config.toml"), "[runner]\nconnectionDefaultTTL = 0.2\n");
    p.write(p.project().join(".streamlit/config.toml"), "[server]\nport = 8502\n");
    let first = connections::connection("g").secrets_store(store.clone()).open().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!connections::connection("g").secrets_store(store).open().await.unwrap().same_as(&first));
}

#[tokio::test]
async fn an_invalid_runner_default_ttl_is_an_error_unless_a_ttl_is_given() {
    for value in ["-5", "-0.5", "true", "'abc'", "'1h'", "inf", "nan", "[1]", "{ s = 1 }"] {
        let (p, store) = project("[connections.v]\ntype = 'files'\nroot = '{root}'\n");
        let config = p.project().join(".streamlit/config.toml");
        p.write(&config, format!("[runner]\nconnectionDefaultTTL = {value}\n"));
        let open = || connections::connection("v").secrets_store(store.clone());
        let err = open().open().await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "`runner.connectionDefaultTTL` in {}: use a finite, non-negative number of seconds, or leave the option unset to keep connections cached until they are cleared; received ",
                config.display()
            )),
            "{value}: {text}"
        );
        if value == "-5" {
            assert!(text.ends_with("received -5"), "{text}");
        }
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(open().ttl(Duration::from_secs(1007)).open().await.is_ok(), "{value}: an explicit ttl bypasses it");
        assert!(open().no_ttl().open().await.is_ok(), "{value}: so does an explicit no ttl");
    }
}

#[tokio::test]
async fn is_connected_neither_connects_nor_resets() {
    let (p, store) = project("[connections.ic]\ntype = 'files'\nroot = '{root}'\n");
    let conn =
        connections::connection("ic").secrets_store(store.clone()).ttl(Duration::from_secs(1008)).open().await.unwrap();
    let files = conn.downcast::<FilesConnection>().unwrap();
    assert!(conn.is_connected());
    conn.reset();
    assert!(!conn.is_connected() && !conn.is_connected());
    assert_eq!(conn.connect_count(), 1, "asking does not connect");
    conn.query("pets.csv").await.unwrap();
    assert!(conn.is_connected());

    // the section changes: the client held is stale, and asking does not reset it
    p.write(
        p.project_secrets(),
        format!("[connections.ic]\ntype = 'files'\nroot = '{}'\nhas_header = true\n", data(&p)),
    );
    store.reload().unwrap();
    let resets = files.core().reset_count();
    assert!(!conn.is_connected(), "a client made from the old section does not count");
    assert_eq!((files.core().reset_count(), conn.connect_count()), (resets, 2), "nor was anything done");
    conn.query("owners.csv").await.unwrap();
    assert!(conn.is_connected());
    assert_eq!(conn.connect_count(), 3);
}

#[test]
fn the_blocking_facade_covers_the_async_handle() {
    let (_p, store) = project("[connections.bf]\ntype = 'files'\nroot = '{root}'\n");
    let open = || connections::blocking::connection("bf").secrets_store(store.clone()).ttl(Duration::from_secs(1009));
    let typed = open().open_as::<FilesConnection>().unwrap();
    assert_eq!((typed.name(), typed.type_name()), ("bf", "files"));
    assert!(typed.is_connected());
    typed.reset();
    assert!(!typed.is_connected());
    assert_eq!(typed.connect_count(), 1);
    assert_eq!(typed.query("pets.csv").unwrap().num_rows(), 2);
    assert_eq!(typed.connect_count(), 2);
    let df = typed.query_with("owners.csv", Vec::<(String, Param)>::new(), Some(Duration::from_secs(60))).unwrap();
    assert_eq!(df.num_rows(), 3);
    // raw access, and any async method of the typed handle
    assert!(typed.with_raw(|raw| format!("{raw:?}")).unwrap().contains("root"));
    assert_eq!(typed.block_on(|c| c.query("pets.csv").into_future()).unwrap().num_rows(), 2);
    assert_eq!(typed.block_on(|c| async move { c.queries_run() }), 2, "the query above was a cache hit");

    // the dynamic handle: the same object, and down to the typed one
    let dynamic = open().open().unwrap();
    assert_eq!(dynamic.instance_id(), typed.instance_id());
    assert!(dynamic.is_connected());
    assert_eq!((dynamic.name(), dynamic.type_name(), dynamic.connect_count()), ("bf", "files", 2));
    let again = dynamic.downcast::<FilesConnection>().unwrap();
    assert_eq!(again.instance_id(), typed.instance_id());
    assert!(dynamic.block_on(|c| c.query("pets.csv").into_future()).is_ok());
    dynamic.reset();
    assert!(!typed.is_connected());
}

#[tokio::test]
async fn errors_out_of_a_connection_name_it() {
    let (_p, store) = project("[connections.p]\ntype = 'plain-for-test'\n");
    let open = |name: &str| connections::connection(name).secrets_store(store.clone()).ttl(Duration::from_secs(1010));
    let err = open("f").with_type("failing-for-test").open().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "connection \"f\" (type failing-for-test): invalid argument `greeting`: broken on purpose"
    );
    assert!(matches!(err.innermost(), Error::InvalidArgument { argument: "greeting", .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Config);

    let plain = open("p").open_as::<Plain>().await.unwrap();
    let source = connections::arrow::error::ArrowError::ComputeError("overflow".into());
    let err = plain
        .core()
        .with_retry(|_| {
            let source = connections::arrow::error::ArrowError::ComputeError("overflow".into());
            async move { Err::<(), _>(Error::Arrow { action: "build", source }) }
        })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "connection \"p\" (type plain-for-test): cannot build the data frame");
    let cause = std::error::Error::source(&err).unwrap();
    assert_eq!(cause.to_string(), source.to_string(), "the chain goes on with the cause, each message once");
    assert!(std::error::Error::source(cause).is_none());
}
