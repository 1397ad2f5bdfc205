//! The web-app example, served on a free 127.0.0.1 port: concurrent requests share one
//! connection and one cached result, the filter binds `:owner`, "refresh" clears the cache, and
//! an edit of `secrets.toml` switches the database without a restart.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test code

#[path = "../examples/webapp/app.rs"]
mod app;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use connections::prelude::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One HTTP/1.1 request on a fresh connection; the status code and the body.
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn secrets(db: &Path) -> String {
    format!("[connections.pets_db]\ntype = \"sql\"\nurl = \"sqlite:///{}\"\n", db.display())
}

fn stat(stats: &str, key: &str) -> u64 {
    let start = stats.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    stats[start..].split([',', '}']).next().unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webapp_serves_shares_refreshes_and_follows_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (project, first, second) =
        (dir.path().join("project"), dir.path().join("first.db"), dir.path().join("second.db"));
    std::fs::create_dir_all(project.join(".streamlit")).unwrap();
    let secrets_file = project.join(".streamlit/secrets.toml");
    std::fs::write(&secrets_file, secrets(&first)).unwrap();
    let store = SecretsStore::builder()
        .home_dir(dir.path().join("home"))
        .project_dir(&project)
        .watch(true)
        .debounce(Duration::from_millis(50))
        .build();
    assert!(connections::set_secrets_store(store).is_ok());

    // the second database, made beside the app's (a connection configured by options alone)
    let other = connections::connection("other")
        .with_type("sql")
        .option("url", format!("sqlite:///{}", second.display()))
        .open_as::<SqlConnection>()
        .await
        .unwrap();
    other.execute("create table pets (name text, owner text, age integer)").await.unwrap();
    other.execute("insert into pets values ('Garfield', 'Jon', 45)").await.unwrap();

    app::seed_if_empty().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app::serve(listener));

    // many concurrent requests: one connection, one query run, the rest served from the cache
    let before = http(addr, "GET", "/stats").await.1;
    let pages: Vec<_> = (0..32).map(|_| tokio::spawn(async move { http(addr, "GET", "/").await })).collect();
    for page in pages {
        let (status, body) = page.await.unwrap();
        assert_eq!(status, 200, "{body}");
        for name in ["Tom", "Rex", "Nemo", "Felix"] {
            assert!(body.contains(&format!("<td>{name}</td>")), "{body}");
        }
        assert!(body.contains("<form method=\"get\"") && body.contains("action=\"/refresh\""), "{body}");
    }
    let after = http(addr, "GET", "/stats").await.1;
    assert_eq!(stat(&after, "connects"), 1, "{after}");
    assert_eq!(stat(&after, "misses") - stat(&before, "misses"), 1, "one query for 32 requests: {before} {after}");
    assert_eq!(stat(&after, "hits") - stat(&before, "hits"), 31, "{before} {after}");

    // the filter, bound as :owner (and escaped on the page)
    let (_, jerry) = http(addr, "GET", "/?owner=Jerry").await;
    assert!(
        jerry.contains("<td>Tom</td>") && jerry.contains("<td>Felix</td>") && !jerry.contains("<td>Rex</td>"),
        "{jerry}"
    );
    assert!(jerry.contains("value=\"Jerry\"") && jerry.contains("2 rows"), "{jerry}");
    let (_, nobody) = http(addr, "GET", "/?owner=%3Cb%3E").await;
    assert!(nobody.contains("value=\"&lt;b&gt;\"") && nobody.contains("0 rows"), "{nobody}");

    // a new row is not on the cached page until "refresh"
    let conn = connections::connection("pets_db").open_as::<SqlConnection>().await.unwrap();
    conn.execute("insert into pets values ('Kitty', 'Ann', 2)").await.unwrap();
    assert!(!http(addr, "GET", "/").await.1.contains("Kitty"), "served from the cache");
    let (status, _) = http(addr, "POST", "/refresh").await;
    assert_eq!(status, 303);
    assert!(http(addr, "GET", "/").await.1.contains("<td>Kitty</td>"));

    // editing secrets.toml switches the database, no restart
    std::fs::write(&secrets_file, secrets(&second)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http(addr, "GET", "/").await;
        if status == 200 && body.contains("<td>Garfield</td>") && !body.contains("<td>Tom</td>") {
            break;
        }
        assert!(Instant::now() < deadline, "the page never showed the second database: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = http(addr, "GET", "/stats").await.1;
    assert_eq!(stat(&last, "connects"), 2, "reconnected once: {last}");
}
