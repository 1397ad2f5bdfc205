//! Environment export: a one-time `unsafe` step at the start of `main`, before any thread; no
//! load or reload (on a runtime worker or the watcher thread) ever writes the environment.
//!
//! `harness = false`: this file's `main` is the program, so the export really runs before any
//! other thread exists, as an application's would.

#![allow(clippy::unwrap_used)] // test code
#![allow(unsafe_code)] // the one-time environment export is what this file tests

use std::time::Duration;

use connections_tests::{Project, eventually};

const WAIT: Duration = Duration::from_secs(10);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn main() {
    // 1. The one-time export, first thing in `main`: Python's str() formatting, the 2.1 rules.
    let start = Project::new();
    start.write(
        start.project_secrets(),
        "CONN_T_EXPORTED = 'at-start'\nCONN_T_INT = -3\nCONN_T_FLOAT = 1e-7\nCONN_T_BOOL = true\n\
         CONN_T_DATE = 2024-01-01\nCONN_T_ARRAY = [1]\n'CONN=T' = 'x'\n[CONN_T_TABLE]\nCONN_T_NESTED = 'n'\n",
    );
    let secrets = start.store().load().unwrap();
    // SAFETY: no other thread exists: the harness is off and nothing has been spawned yet
    let exported = unsafe { secrets.export_to_env() };
    assert_eq!(exported, ["CONN_T_EXPORTED", "CONN_T_INT", "CONN_T_FLOAT"]);
    assert_eq!(var("CONN_T_EXPORTED").as_deref(), Some("at-start"));
    assert_eq!(var("CONN_T_INT").as_deref(), Some("-3"));
    assert_eq!(var("CONN_T_FLOAT").as_deref(), Some("1e-07"));
    for absent in ["CONN_T_BOOL", "CONN_T_DATE", "CONN_T_ARRAY", "CONN_T_TABLE", "CONN_T_NESTED"] {
        assert_eq!(var(absent), None, "{absent} is not exported");
    }

    // 2. The process-wide store, watching, loaded from a runtime worker and reloaded by its
    //    watcher and by hand, with root string secrets: the environment is never touched.
    let p = Project::new();
    p.write(p.project_secrets(), "CONN_T_EXPORTED = 'from-file'\nCONN_T_LATE = 'late'\nCONN_T_N = 5\n");
    connections::set_secrets_store(p.watching_store()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let loaded = runtime.block_on(async { tokio::spawn(async { connections::secrets() }).await.unwrap() }).unwrap();
    assert_eq!(loaded.get_str("CONN_T_LATE").unwrap(), "late");
    let untouched = || {
        var("CONN_T_EXPORTED").as_deref() == Some("at-start")
            && var("CONN_T_LATE").is_none()
            && var("CONN_T_N").is_none()
    };
    assert!(untouched(), "a load on a runtime worker wrote the environment");

    p.write(p.project_secrets(), "CONN_T_EXPORTED = 'edited'\nCONN_T_LATE = 'edited'\nCONN_T_N = 6\n");
    assert!(
        eventually(WAIT, || connections::secrets()
            .is_ok_and(|s| s.get_str("CONN_T_LATE").is_ok_and(|v| v == "edited"))),
        "the watcher did not reload the edit"
    );
    assert!(untouched(), "a reload on the watcher thread wrote the environment");
    connections::secrets_store().reload().unwrap();
    assert!(untouched(), "a reload by hand wrote the environment");
    println!("secrets_env: ok");
}
