//! The deprecated type `snowpark` on the Snowflake driver: its configuration chain (options,
//! `[connections.<name>]`, the SnowSQL file with its key spellings), its errors, and, against
//! the fakesnow emulator (`CONNECTIONS_TEST_SNOWFLAKE_URL`, skipped when unset), its query,
//! cache, lock and the core's conformance suite.

#![allow(clippy::unwrap_used, deprecated)] // test code, of the deprecated type

use std::sync::Arc;
use std::time::Duration;

use connections::snowpark::SnowparkConnection;
use connections::{ConfigProblem, Error, ErrorKind};
use connections_core::testing;
use connections_tests::emulator_harness::EmulatorHarness;
use connections_tests::emulator_harness::endpoint;
use connections_tests::snowflake_proxy::{ProxyConfig, SnowflakeProxy};
use connections_tests::{Project, error_chain, frame_text, server_url};

const VAR: &str = "CONNECTIONS_TEST_SNOWFLAKE_URL";

fn problem(err: &Error) -> &ConfigProblem {
    match err {
        Error::Config { problem, .. } => problem,
        other => panic!("not a configuration error: {}", error_chain(other)),
    }
}

/// A builder of type `snowpark` reading secrets and the SnowSQL file of `p` only.
fn open(p: &Project, name: &str) -> connections::ConnectionBuilder {
    connections::connection(name)
        .secrets_store(p.store())
        .query_cache(connections::QueryCache::new(16 << 20))
        .retry(connections::RetryPolicy::new(3, Duration::from_millis(100)).unwrap())
        .option("snowsql_config_path", p.home().join(".snowsql/config").display().to_string())
}

#[tokio::test]
async fn nothing_configured_says_where_configuration_goes() {
    let p = Project::new();
    let err = open(&p, "snowpark").open_as::<SnowparkConnection>().await.unwrap_err();
    let ConfigProblem::NothingConfigured { hint } = problem(&err) else { panic!("{err}") };
    for place in ["secrets.toml", "[connections.snowpark]", ".snowsql/config", "[connections]", ".option("] {
        assert!(hint.contains(place), "{place} missing from: {hint}");
    }
}

#[tokio::test]
async fn a_missing_account_says_where_configuration_goes() {
    let p = Project::new();
    p.write(p.home().join(".snowsql/config"), "[connections]\nusername = jerry\npassword = pw\n");
    let err = open(&p, "snowpark").open_as::<SnowparkConnection>().await.unwrap_err();
    let ConfigProblem::MissingKeys { keys, hint } = problem(&err) else { panic!("{err}") };
    assert_eq!(keys, &["account"]);
    assert!(hint.contains(".snowsql/config") && hint.contains("secrets.toml"), "{hint}");
    assert!(!err.to_string().contains("pw"), "{err}");
}

#[tokio::test]
async fn the_snowsql_file_is_read_with_its_key_spellings_after_the_section() {
    let p = Project::new();
    p.write(
        p.home().join(".snowsql/config"),
        "[connections]\naccountname = fallback\n\n[connections.pets]\naccountname = acct\nusername = jerry\n\
         password = pw\ndbname = petsdb\nschemaname = public\nwarehousename = wh\nrolename = analyst\n",
    );
    p.write(p.project_secrets(), "[connections.pets]\ntype = 'snowpark'\nwarehouse = 'section_wh'\n");
    let params = connections::ConnectParams::from_parts(
        "pets",
        "snowpark",
        p.store().load().unwrap().try_connection("pets").unwrap(),
        std::iter::once((
            "snowsql_config_path".to_owned(),
            p.home().join(".snowsql/config").display().to_string().into(),
        ))
        .chain(std::iter::once(("role".to_owned(), "option_role".into())))
        .collect(),
    );
    let env = connections::snowflake::Environment::with_files(connections::snowflake::ConnectorFiles::in_dir(
        p.home().join(".snowflake"),
    ));
    let config = SnowparkConnection::config(&params, &env).unwrap();
    assert_eq!(config.account, "acct");
    assert_eq!(config.user.as_deref(), Some("jerry"));
    assert_eq!(config.database.as_deref(), Some("petsdb"));
    assert_eq!(config.schema.as_deref(), Some("public"));
    assert_eq!(config.warehouse.as_deref(), Some("section_wh"), "the section beats the SnowSQL file");
    assert_eq!(config.role.as_deref(), Some("option_role"), "options beat everything");
    assert!(!format!("{config:?}").contains("pw"));
    // without [connections.<name>], the file's [connections]
    p.write(p.home().join(".snowsql/config"), "[connections]\naccountname = fallback\nusername = u\npassword = p\n");
    let config = SnowparkConnection::config(&params, &env).unwrap();
    assert_eq!(config.account, "fallback");
}

#[tokio::test]
async fn an_unknown_snowsql_key_names_the_file() {
    let p = Project::new();
    let file = p.home().join(".snowsql/config");
    p.write(&file, "[connections]\naccountname = a\nusername = u\npassword = p\nwarehousname = typo\n");
    let err = open(&p, "snowpark").open_as::<SnowparkConnection>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = error_chain(&err);
    assert!(text.contains("warehous") && text.contains(&file.display().to_string()), "{text}");
}

/// Opens `snowpark` from a SnowSQL file pointing at the emulator.
async fn open_from_snowsql(url: &str, p: &Project) -> Arc<SnowparkConnection> {
    let (protocol, host, port) = endpoint(url);
    p.write(
        p.home().join(".snowsql/config"),
        format!(
            "[connections.snowpark]\naccountname = test\nusername = jerry\npassword = pw\nhost = {host}\n\
             port = {port}\nprotocol = {protocol}\n"
        ),
    );
    open(p, "snowpark").open_as::<SnowparkConnection>().await.unwrap_or_else(|e| panic!("open: {}", error_chain(&e)))
}

#[tokio::test]
async fn query_is_cached_with_ttl_and_runs_on_the_snowflake_session() {
    let Some(url) = server_url(VAR) else { return };
    let p = Project::new();
    let conn = open_from_snowsql(&url, &p).await;
    let df = conn.query("select 40 + 2 as answer").await.unwrap();
    assert_eq!(frame_text(&df), "ANSWER: Int64\nANSWER\n42\n");
    let first = conn.query("select random() as r").ttl(Duration::from_secs(60)).await.unwrap();
    let again = conn.query("select random() as r").ttl(Duration::from_secs(60)).await.unwrap();
    assert_eq!(frame_text(&first), frame_text(&again), "served from the cache");
    let other = conn.query("select random() as r").ttl(Duration::from_millis(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = conn.query("select random() as r").ttl(Duration::from_millis(1)).await.unwrap();
    assert_ne!(frame_text(&other), frame_text(&expired), "run again once the ttl passed");
    // the session is the Snowflake driver's
    let session = conn.session().await.unwrap();
    assert_eq!(session.config().user.as_deref(), Some("jerry"));
    let err = conn.query("select * from snowpark_no_such_table").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Statement, "{err}");
}

#[tokio::test]
async fn safe_session_holds_the_lock_that_queries_take() {
    let Some(url) = server_url(VAR) else { return };
    let p = Project::new();
    let conn = open_from_snowsql(&url, &p).await;
    let guard = conn.safe_session().await.unwrap();
    assert!(!conn.is_unlocked());
    let waiting = tokio::spawn({
        let conn = Arc::clone(&conn);
        async move { conn.query("select 7 as seven").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the query waits for the guard");
    assert!(guard.config().account == "test");
    drop(guard);
    let df = tokio::time::timeout(Duration::from_secs(30), waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(frame_text(&df), "SEVEN: Int64\nSEVEN\n7\n");
    assert!(conn.is_unlocked());
}

#[tokio::test]
async fn an_expired_session_is_renewed_and_the_query_succeeds() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let p = Project::new();
    let conn = open(&p, "snowpark")
        .option("account", "test")
        .option("user", "jerry")
        .option("password", "pw")
        .option("host", proxy.host())
        .option("port", i64::from(proxy.port()))
        .option("protocol", "http")
        .open_as::<SnowparkConnection>()
        .await
        .unwrap_or_else(|e| panic!("open: {}", error_chain(&e)));
    proxy.expire_session(1);
    let df = conn.query("select 5 as five").await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!(frame_text(&df), "FIVE: Int64\nFIVE\n5\n");
    let counts = proxy.counts();
    assert_eq!(counts.session_expired_answers, 1, "{counts:?}");
    assert!(conn.is_unlocked());
}

#[tokio::test]
async fn snowpark_passes_the_conformance_suite() {
    let Some(url) = server_url(VAR) else { return };
    let report = testing::run_all(&EmulatorHarness::<SnowparkConnection>::with_password(&url)).await;
    // the emulator is shared and cannot be stopped from here
    assert_eq!(report.not_supported(), ["retry_only_connection_errors"], "{report}");
}
