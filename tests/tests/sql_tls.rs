//! Type `sql` over TLS, against throwaway PostgreSQL clusters started for these tests (TLS-only
//! with a CA of the test's own, and one without TLS), with certificates made by `openssl`.
//! Skipped with a notice where PostgreSQL's server programs or `openssl` are missing.

#![allow(clippy::unwrap_used)] // test code

use connections::ErrorKind;
use connections_tests::throwaway::{Certificates, ThrowawayMariaDb, ThrowawayPostgres, Tls};
use connections_tests::{Project, error_chain, frame_text, same_on_every_path};

/// Opens `url` as a connection of type `sql` (with `extra` TOML lines in its section).
async fn open(url: &str, extra: &str) -> connections::Result<std::sync::Arc<connections::sql::SqlConnection>> {
    let p = Project::new();
    p.write(p.project_secrets(), format!("[connections.tls]\ntype = 'sql'\nurl = '{url}'\n{extra}\n"));
    connections::connection("tls").secrets_store(p.store()).open_as::<connections::sql::SqlConnection>().await
}

#[tokio::test]
async fn postgres_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = Certificates::make(&dir.path().join("certs")) else { return };
    let Some(server) = ThrowawayPostgres::start(&Tls::Only(&certs)) else { return };
    let port = server.port();
    let ca = certs.path("ca.crt").display().to_string();
    let base = format!("postgresql://postgres@localhost:{port}/postgres");

    // verify-full with the right CA: connects, and the COPY fast path serves over TLS
    let conn = open(&format!("{base}?sslmode=verify-full&sslrootcert={ca}"), "").await.unwrap();
    let pool = conn.pool().await.unwrap();
    let df = conn.query("select ssl as encrypted from pg_stat_ssl where pid = pg_backend_pid()").await.unwrap();
    assert_eq!(frame_text(&df), "encrypted: Boolean\nencrypted\ntrue\n");
    assert_eq!(pool.served().postgres_copy, 1, "the COPY path served it over TLS");
    let rows = conn.query("select i from generate_series(1, 5000) as i").await.unwrap();
    assert_eq!(rows.num_rows(), 5000);

    // the CA as PEM text in the secrets (as from a vault) rather than a path (`connect_args`:
    // with a `url`, the `query` part key is ignored)
    let pem = certs.pem("ca.crt");
    let section = format!("create_engine_kwargs = {{ connect_args = {{ sslrootcert = '''{pem}''' }} }}");
    let conn = open(&format!("{base}?sslmode=verify-full"), &section).await.unwrap();
    assert!(frame_text(&conn.query("select 1 as one").await.unwrap()).ends_with("one\n1\n"));

    // another CA: the certificate does not verify, and the error says why
    let other = certs.path("other-ca.crt").display().to_string();
    let err = open(&format!("{base}?sslmode=verify-full&sslrootcert={other}"), "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    let chain = error_chain(&err);
    assert!(chain.contains("the server's certificate did not verify"), "{chain}");

    // the right CA but another host name (the certificate names `localhost` only)
    let err =
        open(&format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"), "")
            .await
            .unwrap_err();
    let chain = error_chain(&err);
    assert!(chain.contains("the host name did not match"), "{chain}");
    // verify-ca checks the chain, not the name
    open(&format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=verify-ca&sslrootcert={ca}"), "")
        .await
        .unwrap();

    // a client certificate logs in the role `certuser` (pg_hba: cert); without one it cannot
    let client = format!(
        "postgresql://certuser@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
        certs.path("client.crt").display(),
        certs.path("client.key").display()
    );
    let conn = open(&client, "").await.unwrap();
    assert!(frame_text(&conn.query("select current_user as who").await.unwrap()).ends_with("who\ncertuser\n"));
    let err =
        open(&format!("postgresql://certuser@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"), "")
            .await
            .unwrap_err();
    assert!(error_chain(&err).contains("certificate"), "{}", error_chain(&err));
    // the client key as PEM text is a secret: never shown
    let key = certs.pem("client.key");
    let cert = certs.pem("client.crt");
    let section =
        format!("create_engine_kwargs = {{ connect_args = {{ sslcert = '''{cert}''', sslkey = '''{key}''' }} }}");
    let conn = open(
        &format!("postgresql://certuser@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"),
        &section,
    )
    .await
    .unwrap();
    let pool = conn.pool().await.unwrap();
    let shown = format!("{pool:?} {conn:?}");
    let key_body = key.lines().nth(1).unwrap();
    assert!(!shown.contains(key_body), "the client key leaked: {shown}");

    // TLS turned off against a TLS-only server: the server's refusal
    let err = open(&format!("{base}?sslmode=disable"), "").await.unwrap_err();
    assert!(error_chain(&err).contains("no encryption"), "{}", error_chain(&err));
}

#[tokio::test]
async fn postgres_require_against_a_server_without_tls_fails_clearly() {
    let Some(server) = ThrowawayPostgres::start(&Tls::Off) else { return };
    let url = format!("postgresql://postgres@127.0.0.1:{}/postgres", server.port());
    let err = open(&format!("{url}?sslmode=require"), "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    let chain = error_chain(&err);
    assert!(chain.contains("the server refused TLS"), "{chain}");
    // prefer falls back to a plain connection
    open(&format!("{url}?sslmode=prefer"), "").await.unwrap();
}

#[tokio::test]
async fn mariadb_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = Certificates::make(&dir.path().join("certs")) else { return };
    let Some(server) = ThrowawayMariaDb::start(&certs) else { return };
    let port = server.port();
    let ca = certs.path("ca.crt").display().to_string();
    let base = format!("mysql://tls:tls-pw@localhost:{port}/mysql");

    // VERIFY_IDENTITY with the right CA: encrypted, on the bulk reader's connection as on sqlx's
    let conn = open(&format!("{base}?ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}"), "").await.unwrap();
    let pool = conn.pool().await.unwrap();
    let encrypted = "select variable_value <> '' as encrypted from information_schema.session_status where variable_name = 'Ssl_cipher'";
    let df = conn.query(encrypted).await.unwrap();
    assert_eq!(frame_text(&df), "encrypted: Int32\nencrypted\n1\n");
    assert_eq!((pool.served().mysql_bulk, pool.served().rows), (1, 0), "{:?}", pool.served());
    let mut session = conn.session().await.unwrap();
    assert_eq!(frame_text(&session.query(encrypted).await.unwrap()), "encrypted: Int32\nencrypted\n1\n");
    drop(session);

    // the CA as PEM text through connect_args
    let pem = certs.pem("ca.crt");
    let section = format!("create_engine_kwargs = {{ connect_args = {{ ssl_ca = '''{pem}''' }} }}");
    let conn = open(&format!("{base}?ssl_mode=VERIFY_IDENTITY"), &section).await.unwrap();
    assert!(frame_text(&conn.query("select 1 as one").await.unwrap()).ends_with("one\n1\n"));

    // another CA, another host name
    let other = certs.path("other-ca.crt").display().to_string();
    let err = open(&format!("{base}?ssl_mode=VERIFY_CA&ssl_ca={other}"), "").await.unwrap_err();
    assert!(error_chain(&err).contains("the server's certificate did not verify"), "{}", error_chain(&err));
    let by_ip = format!("mysql://tls:tls-pw@127.0.0.1:{port}/mysql");
    let err = open(&format!("{by_ip}?ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}"), "").await.unwrap_err();
    assert!(error_chain(&err).contains("the host name did not match"), "{}", error_chain(&err));
    open(&format!("{by_ip}?ssl_mode=VERIFY_CA&ssl_ca={ca}"), "").await.unwrap();

    // a client certificate logs in `certuser` (REQUIRE SUBJECT); without one it cannot
    let client = format!(
        "mysql://certuser@localhost:{port}/mysql?ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}&ssl_cert={}&ssl_key={}",
        certs.path("client.crt").display(),
        certs.path("client.key").display()
    );
    let conn = open(&client, "").await.unwrap();
    assert!(frame_text(&conn.query("select current_user() as who").await.unwrap()).contains("certuser@"));
    assert_eq!(conn.pool().await.unwrap().served().mysql_bulk, 1, "the bulk reader logged in with the certificate");
    let err = open(&format!("mysql://certuser@localhost:{port}/mysql?ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}"), "")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "a refused login, not retried: {}", error_chain(&err));

    // TLS turned off against require_secure_transport: the server's refusal, in its own words
    // (MariaDB 10.11 answers "Access denied"; MySQL "insecure transport are prohibited")
    let err = open(&format!("{base}?ssl_mode=DISABLED"), "").await.unwrap_err();
    // MariaDB's "Access denied" (1045) is a refused login; MySQL's 3159 a connect error
    assert!(matches!(err.kind(), ErrorKind::Auth | ErrorKind::Connect), "{err:?}");
    let chain = error_chain(&err);
    assert!(chain.contains("insecure transport") || chain.contains("Access denied"), "{chain}");
    assert!(!chain.contains("tls-pw"), "the password leaked: {chain}");
}

/// Rows of most types, for the bulk reader and sqlx's paths to agree on.
const TYPES: &str = "select cast(seq as signed) as id, seq * 1.5 as x, concat('row ', seq) as s, \
     cast(seq as decimal(10, 2)) as n, date '2024-02-29' + interval seq day as d, \
     timestamp '2024-02-29 13:45:30.25' + interval seq second as ts, if(seq % 3 = 0, null, seq) as maybe, \
     x'0102' as bin from seq_1_to_50";

/// The bulk reader over TLS (verify-identity) with an account of every authentication the
/// throwaway MariaDB offers (native password, ed25519, no password, a client certificate) and
/// over its Unix socket: it serves the queries, and gives what sqlx's paths give.
#[tokio::test]
async fn mariadb_bulk_reader_over_tls_with_every_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = Certificates::make(&dir.path().join("certs")) else { return };
    let Some(mut server) = ThrowawayMariaDb::start(&certs) else { return };
    let port = server.port();
    let ca = certs.path("ca.crt").display().to_string();
    let tls = format!("ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}");
    let mut accounts = vec![
        ("mysql_native_password", format!("mysql://tls:tls-pw@localhost:{port}/mysql?{tls}")),
        ("no password", format!("mysql://nopw@localhost:{port}/mysql?{tls}")),
        (
            "client certificate",
            format!(
                "mysql://certuser@localhost:{port}/mysql?{tls}&ssl_cert={}&ssl_key={}",
                certs.path("client.crt").display(),
                certs.path("client.key").display()
            ),
        ),
        ("Unix socket", format!("mysql://tls:tls-pw@localhost/mysql?unix_socket={}", server.socket().display())),
    ];
    if server.ed25519_user() {
        accounts.push(("ed25519", format!("mysql://ed:ed-pw@localhost:{port}/mysql?{tls}")));
    }
    let mut plain_text = None;
    for (account, url) in accounts {
        let conn = match open(&url, "").await {
            Ok(conn) => conn,
            // sqlx 0.8 has no `client_ed25519`: the pool cannot open such an account's connections,
            // so its queries never reach the bulk reader (whose ed25519 answer is checked against
            // a known signature in connections-sql's unit tests)
            Err(e)
                if account == "ed25519"
                    && error_chain(&e).contains("unknown authentication plugin: client_ed25519") =>
            {
                eprintln!("ed25519: sqlx cannot log in ({})", error_chain(&e));
                continue;
            }
            Err(e) => panic!("{account}: {}", error_chain(&e)),
        };
        let result = same_on_every_path(&conn, TYPES).await.unwrap_or_else(|e| panic!("{account}: {e}"));
        assert!(result.lines().count() == 52, "{account}: {result}");
        let counts = conn.pool().await.unwrap().served();
        assert!(counts.mysql_bulk >= 2, "{account}: the bulk reader served query and query_stream: {counts:?}");
        let same = plain_text.get_or_insert_with(|| result.clone());
        assert_eq!(*same, result, "{account}");
    }
}
