//! `env:VAR` connection names. One test in its own binary: it writes the environment.

#![allow(clippy::unwrap_used, clippy::items_after_statements)] // test code

use connections::Error;
use connections_tests::Project;
use files_connector as _; // links the connector, registering type `files`

#[test]
fn env_names_resolve_through_the_environment() {
    let p = Project::new();
    p.write(p.project().join("data/a.csv"), "a\n1\n");
    let root = p.project().join("data").display().to_string();
    p.write(p.project_secrets(), format!("[connections.from_env]\ntype = 'files'\nroot = '{root}'\n"));
    // SAFETY: this binary has this one test and starts no thread before this point.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("CONNECTIONS_TEST_CONN_NAME", "from_env");
        std::env::remove_var("CONNECTIONS_TEST_UNSET");
        std::env::set_var("CONNECTIONS_TEST_EMPTY", "");
    }
    let store = p.store();
    let open = |name: &str| connections::blocking::connection(name).secrets_store(store.clone()).open();
    let conn = open("env:CONNECTIONS_TEST_CONN_NAME").unwrap();
    assert_eq!(conn.as_async().name(), "from_env", "the resolved name is the connection's name");
    let same = open("from_env").unwrap();
    assert!(conn.as_async().same_as(same.as_async()), "and its cache key");
    let err = open("env:CONNECTIONS_TEST_UNSET").unwrap_err();
    assert!(matches!(err, Error::EnvName { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "connection name \"env:CONNECTIONS_TEST_UNSET\" refers to the environment variable CONNECTIONS_TEST_UNSET, which is not set"
    );
    // set but empty: said so, naming the variable
    let err = open("env:CONNECTIONS_TEST_EMPTY").unwrap_err();
    assert!(matches!(err, Error::EnvNameInvalid { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "connection name \"env:CONNECTIONS_TEST_EMPTY\" refers to the environment variable CONNECTIONS_TEST_EMPTY, which is set but empty"
    );
    let err = open("env:").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument `name`: `env:` must be followed by the name of an environment variable"
    );
}
