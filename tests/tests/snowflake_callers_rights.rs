//! Type `snowflake-callers-rights`: the container environment and token file it needs, the
//! errors when they are missing, the joined token (never shown), and, against the fakesnow
//! emulator behind the test proxy (`CONNECTIONS_TEST_SNOWFLAKE_URL`, skipped when unset), one
//! session per viewer and the core's conformance suite.

#![allow(clippy::unwrap_used)] // test code

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use connections::snowflake::{
    Auth, CallersRights, ContainerEnvironment, SnowflakeCallersRightsConnection, callers_rights_config,
};
use connections::{ConnectParams, Error, ErrorKind};
use connections_core::testing;
use connections_core::toml::Table;
use connections_tests::emulator_harness::EmulatorHarness;
use connections_tests::snowflake_proxy::{ProxyConfig, SnowflakeProxy};
use connections_tests::{Project, error_chain, frame_text, server_url};

const VAR: &str = "CONNECTIONS_TEST_SNOWFLAKE_URL";
const FILE_TOKEN: &str = "svc-part1.svc-part2";
const VIEWER: &str = "viewer-secret-token-jerry";

const TYPE: &str = "snowflake-callers-rights";

fn params(options: &[(&str, &str)]) -> ConnectParams {
    let options: Table = options.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
    ConnectParams::from_parts(TYPE, TYPE, None, options)
}

fn token_file(p: &Project, token: &str) -> std::path::PathBuf {
    let path = p.home().join("snowflake/session/token");
    p.write(&path, format!("{token}\n"));
    path
}

fn container(token_file: &Path) -> ContainerEnvironment {
    ContainerEnvironment::empty(token_file)
        .var("SNOWFLAKE_ACCOUNT", "acct")
        .var("SNOWFLAKE_HOST", "acct.example.invalid")
}

fn shown(err: &Error) -> String {
    format!("{} | {err:?}", error_chain(err))
}

#[test]
fn the_file_token_and_the_viewer_token_are_joined_and_never_shown() {
    let p = Project::new();
    let file = token_file(&p, FILE_TOKEN);
    let env = container(&file).var("SNOWFLAKE_DATABASE", "db").var("SNOWFLAKE_PORT", "8443");
    let config = callers_rights_config(&params(&[("viewer_token", VIEWER), ("role", "analyst")]), &env).unwrap();
    let Auth::OAuth { token } = &config.auth else { panic!("not OAuth: {config:?}") };
    assert_eq!(token.read().unwrap().expose(), format!("{FILE_TOKEN}.{VIEWER}"));
    assert_eq!((config.account.as_str(), config.endpoint.host.as_str()), ("acct", "acct.example.invalid"));
    assert_eq!((config.database.as_deref(), config.endpoint.port), (Some("db"), 8443));
    assert_eq!(config.role.as_deref(), Some("analyst"), "options are used");
    assert!(config.keep_alive);
    let debug = format!("{config:?} {env:?}");
    assert!(!debug.contains(VIEWER) && !debug.contains("svc-part"), "{debug}");
    // a token file without a `.`: the viewer's token alone
    let file = token_file(&p, "plain");
    let config = callers_rights_config(&params(&[("viewer_token", VIEWER)]), &container(&file)).unwrap();
    let Auth::OAuth { token } = &config.auth else { panic!() };
    assert_eq!(token.read().unwrap().expose(), VIEWER);
}

#[test]
fn a_missing_variable_is_named() {
    let p = Project::new();
    let file = token_file(&p, FILE_TOKEN);
    let env = ContainerEnvironment::empty(&file).var("SNOWFLAKE_ACCOUNT", "acct");
    let err = callers_rights_config(&params(&[("viewer_token", VIEWER)]), &env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = shown(&err);
    assert!(text.contains("`SNOWFLAKE_HOST` not found") && text.contains("container environment"), "{text}");
    assert!(!text.contains(VIEWER), "{text}");
    let env = ContainerEnvironment::empty(&file);
    let err = callers_rights_config(&params(&[("viewer_token", VIEWER)]), &env).unwrap_err();
    assert!(shown(&err).contains("`SNOWFLAKE_ACCOUNT` not found"), "{err}");
}

#[test]
fn a_missing_token_file_or_viewer_token_is_an_error_without_tokens() {
    let p = Project::new();
    let missing = p.home().join("no/token");
    let err = callers_rights_config(&params(&[("viewer_token", VIEWER)]), &container(&missing)).unwrap_err();
    let text = shown(&err);
    assert!(text.contains(&format!("token file `{}` not found", missing.display())), "{text}");
    assert!(!text.contains(VIEWER), "{text}");
    let file = token_file(&p, FILE_TOKEN);
    let err = callers_rights_config(&params(&[]), &container(&file)).unwrap_err();
    let text = shown(&err);
    assert!(text.contains("caller's rights") && text.contains("Sf-Context-Current-User-Token"), "{text}");
    assert!(!text.contains("svc-part"), "{text}");
}

#[tokio::test]
async fn opening_without_the_container_environment_fails_at_open() {
    if std::env::var_os("SNOWFLAKE_ACCOUNT").is_some() {
        println!("SKIPPED: SNOWFLAKE_ACCOUNT is set in this environment");
        return;
    }
    let p = Project::new();
    let err = connections::connection(TYPE).secrets_store(p.store()).viewer_token(VIEWER).open().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let text = shown(&err);
    assert!(text.contains("SNOWFLAKE_ACCOUNT") && !text.contains(VIEWER), "{text}");
}

/// A caller's-rights builder for `viewer`, through `proxy`, with the token file `file`.
fn viewer_builder(
    store: &connections::SecretsStore,
    proxy: &SnowflakeProxy,
    file: &Path,
    viewer: &str,
) -> connections::ConnectionBuilder {
    connections::connection(TYPE)
        .secrets_store(store.clone())
        .option("account", "test")
        .option("host", proxy.host())
        .option("port", i64::from(proxy.port()))
        .option("protocol", "http")
        .option("token_file_path", file.display().to_string())
        .viewer_token(viewer)
}

#[tokio::test]
async fn two_viewers_get_two_sessions_and_one_viewer_one() {
    let Some(proxy) = SnowflakeProxy::from_env(ProxyConfig::default()) else { return };
    let p = Project::new();
    let file = token_file(&p, FILE_TOKEN);
    let store = p.store();
    let open =
        |viewer: &str| viewer_builder(&store, &proxy, &file, viewer).open_as::<SnowflakeCallersRightsConnection>();
    let jerry = open("jerry-token").await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    let tom = open("tom-token").await.unwrap();
    let jerry_again = open("jerry-token").await.unwrap();
    assert!(!Arc::ptr_eq(&jerry, &tom), "another viewer's connection was handed out");
    assert!(Arc::ptr_eq(&jerry, &jerry_again), "the same viewer gets the cached connection");
    assert!(!Arc::ptr_eq(&jerry.session().await.unwrap(), &tom.session().await.unwrap()));
    assert_eq!(proxy.counts().logins, 2, "one login per viewer");
    let df = tom.query("select 1 as one").ttl(Duration::from_secs(60)).await.unwrap();
    assert_eq!(frame_text(&df), "ONE: Int64\nONE\n1\n");
    assert_eq!(jerry.execute("select 1").await.unwrap(), 0);
    let debug = format!("{jerry:?} {tom:?}");
    assert!(!debug.contains("jerry-token") && !debug.contains("svc-part"), "{debug}");
}

#[tokio::test]
async fn callers_rights_passes_the_conformance_suite() {
    let Some(url) = server_url(VAR) else { return };
    let p = Project::new();
    let file = token_file(&p, FILE_TOKEN).display().to_string();
    let harness = EmulatorHarness::<SnowflakeCallersRightsConnection>::new(&url, "conformance-viewer", move |token| {
        format!("viewer_token = '{token}'\ntoken_file_path = '{file}'")
    });
    let report = testing::run_all(&harness).await;
    // the emulator is shared and cannot be stopped from here
    assert_eq!(report.not_supported(), ["retry_only_connection_errors"], "{report}");
}
