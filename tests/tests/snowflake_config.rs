//! Configuration of type `snowflake`: the sources and their precedence (options, the
//! `[connections.<name>]` section, the connector's `connections.toml`), the errors, and login
//! by key pair. The checks that connect need the fakesnow emulator
//! (`CONNECTIONS_TEST_SNOWFLAKE_URL`) and skip without it; the others always run.

#![allow(clippy::unwrap_used)] // test code

use std::time::Duration;

use connections::snowflake::{SnowflakeConnection, SnowflakeKey};
use connections::{ConfigProblem, Error, ErrorKind};
use connections_tests::{Project, error_chain, frame_text, server_url};

const VAR: &str = "CONNECTIONS_TEST_SNOWFLAKE_URL";

/// A throwaway RSA key made for these tests (PKCS#8, unencrypted).
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDCuXot2/weQCoJ
uvs97i9JgEx78Q94XPZ5RZXycKjSpdEhNTsU5qQ9FfeSdOlAgTG0vhBCN5PVuOSS
oMS+9VL//ui7CQXjJ338wK26ouGC5TE7+ymBNjk3mNUp4yuVR3PbCbTapsU6zWKK
WDJFow4xSAsmJa9sxyoNPlkPfZzlh9Rikyrg5llLAj/DwzdYo5xmjd6G69A/PO09
c5k+hkm6vjwuvrtqdgFRfMlNHFRyyu5jYA+oEEhHEhxmNazjyt46wFC5Odwh3vrE
CRFLaAc14J+4Ihnh0O3CUzXHGmIQV0gVTwHGsr3J48r696FJzyfsylVY9p1JHG68
ziV/Pa0vAgMBAAECggEAIYrDkgy3xBo3Y4+y4Xsa6CVSh3MBwDD7P+6NosJnQknP
2VGLCNGl7uPOzoqW90aJ4mFu+YkLTSBZNyy8V0x47KHjQvyN6BAQcq5Z/rE5+Usz
jOp5vskxV/NanKmGA2PYgB2O6q8ZgESKudvxZO9ubWzEhuCs9Cbmhnt76eAwW5Ua
KsGGr812KmsQz/Pul8dQP2aHNOhglhHXjw6T/lU5yNJtdznZfeup3M41YiaNqLNU
nXeqb6ojcfsF8ipPH0PooYD+yngeN1VtRApi6AzaZkqJCCP/YvSt9ttxXdn/Dy3Z
tWlN5hbc2ODss+4tlMtDkUICfXnF2rNbvgDhKjZyeQKBgQDq6opDIiZtTYRyHrS4
oi+mts3OBdOXAoV+w1sgIaDVn2ZIs1/tL+Q8ECjYGtOMlDqyaOyJ/Iab30SYTi8J
x+7rKCbjmgx/+oTurlwXV5vnWSLG/7RVXtYa4Cr5/nxp/1T4lLC2tuBpAkzT4wCi
LmHHjO4ndLxoR0GrJjGKx5l07QKBgQDUM31F9dnu2agXL4cfub5FfkBm9imVOjZc
4cV/PNfYP0JPjuNWBgX+qZ4Xa+42nilASqFsJqkZ6ORadGfv+HuBvyJMLzBtsgeD
IMXJQUo4gkMWxZp5f1PJh0I9KQf8WTEYe3KcQk5OtUWcHfRJToWcI5gndoKnBCPd
S7fnUWZjCwKBgQCVPWmXGsP03rFM2ssPHSJOtIXs4/C3WAe9L5jdwd9ut3SArUw8
4BcMPWvlVq2c+rKLk3Lqer59mgr3A3yIpzbWuEx0ffKA/4OiKq0guyy1fgBFEj/b
mING0bEb3xvlLywpPDVD7syEicyLNAS8A+Fkp9jIwjXLvbEvbPU+aG3KRQKBgBhf
HYk2dmRHXVXkYImVRLQoju8EYLxB5lJ+n7dAXq34ff4zNAsCQBgClSStgbuGKMi4
iZepTQyrweZdrj5SdKTvNdo4JUDEDLbTwcOemw6ob1ojMd24cQAZZ9Msbj1eZRQh
wYUO3H2PtkH68r6kpRXMxMHri4/xGslk0+deYvsHAoGAT73sPwJkNUdfdGlwKms+
J/dzxrb1D1PEnTg4WZXSSrlZpzbrvP728FM8DWJj0dAx9u9ZuglnuFf2Y8V72FJ3
L1ufaii58qrxSwfH1AtBVdKYaqHtBJdn4AT/TpjElcX5vxKh/yTUPwvvoq35jBap
QbiwfQ0X25ksmL1VwIb/DOI=
-----END PRIVATE KEY-----";
/// The same kind of throwaway key, encrypted (PBES2, AES-256-CBC) with `test-passphrase`.
const ENCRYPTED_KEY: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIIFLTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQIESLs3jmlWgsCAggA
MAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBDqEgMIBgr4oFPPBRSqXzmfBIIE
0NGLwJvH55j/0FnRjA2fDRQTPKGmepWodRrqY+YyHu2vepGEk1p4CuXEJLIOKuRq
QGfNOoFGuX/Ki3xeZuMRDPcLZfLaXjuqjlsmRe5gLMZVlHzIuWNduQFjg0oES3CW
QNf8Gpi4YorYZPAezr1lrhf1TrZDLQKCZn6A4IJesaLh2AiWWYlzo53CInufJkyk
c1wF2mxTAgz5PBKADs7WV9wob0gnzNSPZW5+bUCoZDmVxaSW/YPeRxfurAbY2Nhq
SQWBH1wwgdD7jrodfomEmc67zAzjOZK3W1TbYbJHn3NjG58M144RQAbkrDXo1bwF
43TEch20adqU3Qcx9wpJv8ZqskTvi3NNrddNRC8pOp4Zzg4zxOHR77G/n966HiRJ
4B/2uzGhiE++zN+N+TnPsXw1wvQI54LX0p+0ALjrOcSu9vsMa3OeDUuZ3anM1Mih
vVAI3jjBWpA+Xe3YuW4DeJr6rkUMRUoYw36gOH9vKpsOgE28gaHAxqzdnGnEyLKE
z/Ine3PqqaOg9ipS7/Iqv9QFazzaY7qHK1WfcZKBt9OEuhn1PC8a8uQ3OJTVJxxZ
pDlaqYMAYLf0hI4mYBGcK8IF7JQIhU/7t85nJn2FKHDCc33WRd0pb076q80PCj4q
7HDrCBYVPY/Z8Pe3CxSRPZJbpCUULPLy/aU8uFVgHyVv7eucGWt5wy9BDnKac45+
ynJV9AYziFj/tqThiHm0CZ8SbWZRtxhLeXBr4L/dCM35wXKVYvfUywS6dGqAg62f
elObiUDtEp2hMcO3whv0OSo4xXNM5VLSA2SgxQyZyVa2sfjgwBo42Pqwvkr2gkR0
AtcF9VnUDxy87OkmTvCV8wmgznIpfNlMvLZndhg39rxqW03/GoFqNsLBH9C4QIBd
ypcQunOygZgqr7adygMwQF/D1/A9v4uvAsWS7/9WELRjqFK0APKRmDPw1r18xFQh
oOLap2hu989BZTpAJhUjve40tguHuM3WHcsZH6Imt8hOlsTcSfBu30XpbkXLBFM7
SMT3zFjh7r2jx7nL7sjlogwS+w35yUVUBmbWpXZwtO9ozXcwqCY2UQfPinLP7a1g
HQbOVp+WRIo3O6KFB+6smuSOy9CDA0A3BmtMra8LBSMdFJQVCBUFRyJKgZeDc/08
tt7wBDc2hRUd0uok1+dz4qIvYyeWEQSB4bDJ0i5Eo7jB85zzFzHfzWT9OXOw9JQQ
7vftXgUNNTceRSMqm3/+lZhUX7pIslLex71D0btMqA0bcQeRrAySECVIyq12+iii
UZtleYb5ac0RE2sZ/niPjMsv2+lAl67glA4Gc68JHOo+IsxNNjT+sGfjssvxuQq+
SEjt5Yi1UEG1qtbVOADBkLMY3woDJ7KeFW0xIH1FbSRydAkx2rqZQfQFzaLEclVv
L6m6MyIC0fa6xQMAHzSeEDnKX6Vw4MSSrnOh/4CCRWT7lkrlPccrSlt08wgNEWkn
n9rtDD2DeRkcYONcx/gmqVHJDF1vpnf2kTle9Uh4Zbu61OoUanlvNkqw/vtzVVDf
rGmWzfHPjqJ2gHWJD2IPGEQDtfAAnhFtEpNNfRbH9TmPL1F5/ZfAm26hl6Es9iul
Bew2/2ULH8s7jQj57UuNXghxoQ9S60ieic0CwNPiov5N
-----END ENCRYPTED PRIVATE KEY-----";

/// The emulator's `host`, `port` and `protocol` as TOML lines.
fn endpoint_lines(url: &str) -> String {
    let (protocol, rest) = url.split_once("://").unwrap();
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':').unwrap();
    format!("host = '{host}'\nport = {port}\nprotocol = '{protocol}'\n")
}

fn open(p: &Project, name: &str) -> connections::ConnectionBuilder {
    connections::connection(name)
        .secrets_store(p.store())
        .query_cache(connections::QueryCache::new(1 << 20))
        .retry(connections::RetryPolicy::new(1, Duration::ZERO).unwrap())
}

fn problem(err: &Error) -> &ConfigProblem {
    match err.innermost() {
        Error::Config { problem, .. } => problem,
        other => panic!("not a configuration error: {other}"),
    }
}

#[tokio::test]
async fn nothing_configured_says_where_configuration_goes() {
    let p = Project::new();
    let files = p.home().join(".snowflake/connections.toml");
    let err = open(&p, "nowhere")
        .with_type("snowflake")
        .option("connections_file_path", files.display().to_string())
        .open_as::<SnowflakeConnection>()
        .await
        .unwrap_err();
    // the options name only where to look, so it counts as configured: no account
    assert!(
        matches!(problem(&err), ConfigProblem::MissingKeys { keys, .. } if keys == &["account", "user", "password"]),
        "{err}"
    );
    let err = open(&p, "nowhere").with_type("snowflake").open_as::<SnowflakeConnection>().await.unwrap_err();
    assert!(matches!(problem(&err), ConfigProblem::NothingConfigured { .. }), "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("secrets.toml") && shown.contains("connections.toml") && shown.contains(".option("),
        "{shown}"
    );
}

#[tokio::test]
async fn the_name_snowflake_implies_the_type_over_a_type_key() {
    let p = Project::new();
    p.write(p.project_secrets(), "[connections.snowflake]\ntype = 'sql'\naccount = 'a'\n");
    let err = open(&p, "snowflake").open().await.unwrap_err();
    // a Snowflake error (its required keys), not an SQL one
    assert!(matches!(problem(&err), ConfigProblem::MissingKeys { keys, .. } if keys == &["user", "password"]), "{err}");
}

#[tokio::test]
async fn unknown_keys_name_their_file_and_the_closest_key() {
    let p = Project::new();
    let file = p.home().join("sf/connections.toml");
    p.write(&file, "[typo]\naccount = 'a'\nuser = 'u'\npasword = 'p'\n");
    let err = open(&p, "typo")
        .with_type("snowflake")
        .option("connections_file_path", file.display().to_string())
        .open_as::<SnowflakeConnection>()
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("`pasword`") && shown.contains(&file.display().to_string()), "{shown}");
    assert!(matches!(problem(&err), ConfigProblem::UnknownKey { closest: Some(c), .. } if c == "password"), "{err}");
    assert_eq!("pasword".parse::<SnowflakeKey>().unwrap_err().closest(), Some("password"));
}

#[tokio::test]
async fn unsupported_authenticators_fail_at_open_naming_the_supported_ones() {
    let p = Project::new();
    p.write(
        p.project_secrets(),
        "[connections.browser]\ntype = 'snowflake'\naccount = 'a'\nuser = 'u'\nauthenticator = 'externalbrowser'\n",
    );
    let err = open(&p, "browser").open().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let shown = err.to_string();
    assert!(shown.contains("externalbrowser") && shown.contains("snowflake_jwt") && shown.contains("oauth"), "{shown}");
}

#[tokio::test]
async fn an_encrypted_key_without_its_passphrase_says_so_without_key_material() {
    let p = Project::new();
    let key = p.home().join("rsa_key.p8");
    p.write(&key, ENCRYPTED_KEY);
    for (extra, expected) in [("", "private_key_file_pwd"), ("private_key_file_pwd = 'wrong'\n", "cannot decrypt")] {
        p.write(
            p.project_secrets(),
            format!(
                "[connections.kp]\ntype = 'snowflake'\naccount = 'a'\nuser = 'u'\nprivate_key_file = '{}'\n{extra}",
                key.display()
            ),
        );
        let err = open(&p, "kp").open().await.unwrap_err();
        let shown = error_chain(&err);
        assert!(shown.contains(expected) && !shown.contains("MII"), "{shown}");
    }
}

/// Precedence per key: options, then `[connections.<name>]`, then the connector's
/// `connections.toml`; observed through the session's database.
#[tokio::test]
async fn options_then_section_then_connections_toml() {
    let Some(url) = server_url(VAR) else { return };
    let p = Project::new();
    let file = p.home().join(".snowflake/connections.toml");
    p.write(
        &file,
        format!(
            "[layered]\naccount = 'test'\nuser = 'u'\npassword = 'p'\n{}database = 'FILE_DB'\nschema = 'FILE_SCHEMA'\n",
            endpoint_lines(&url)
        ),
    );
    p.write(
        p.project_secrets(),
        format!(
            "[connections.layered]\ntype = 'snowflake'\nconnections_file_path = '{}'\nschema = 'SECTION_SCHEMA'\n",
            file.display()
        ),
    );
    let conn =
        open(&p, "layered").open_as::<SnowflakeConnection>().await.unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    let df = conn.query("select current_database() as d, current_schema() as s").await.unwrap();
    assert_eq!(frame_text(&df).lines().nth(2), Some("FILE_DB,SECTION_SCHEMA"), "{}", frame_text(&df));
    let conn = open(&p, "layered").option("database", "OPTION_DB").open_as::<SnowflakeConnection>().await.unwrap();
    let df = conn.query("select current_database() as d, current_schema() as s").await.unwrap();
    assert_eq!(frame_text(&df).lines().nth(2), Some("OPTION_DB,SECTION_SCHEMA"), "{}", frame_text(&df));
}

#[tokio::test]
async fn key_pair_login_plain_and_encrypted() {
    let Some(url) = server_url(VAR) else { return };
    let p = Project::new();
    let key = p.home().join("rsa_key.p8");
    p.write(&key, ENCRYPTED_KEY);
    let plain = KEY.replace('\n', "\\n");
    p.write(
        p.project_secrets(),
        format!(
            "[connections.kp_plain]\ntype = 'snowflake'\naccount = 'test'\nuser = 'u'\nprivate_key = \"{plain}\"\n{e}\n\
             [connections.kp_enc]\ntype = 'snowflake'\naccount = 'test'\nuser = 'u'\nauthenticator = 'SNOWFLAKE_JWT'\n\
             private_key_file = '{}'\nprivate_key_file_pwd = 'test-passphrase'\n{e}\n",
            key.display(),
            e = endpoint_lines(&url)
        ),
    );
    for name in ["kp_plain", "kp_enc"] {
        let conn = open(&p, name)
            .open_as::<SnowflakeConnection>()
            .await
            .unwrap_or_else(|e| panic!("{name}: {}", error_chain(&e)));
        let df = conn.query("select 1 as one").await.unwrap();
        assert_eq!(df.num_rows(), 1);
    }
}

#[tokio::test]
async fn a_section_with_only_its_type_reports_the_missing_keys() {
    let p = Project::new();
    p.write(p.project_secrets(), "[connections.bare]\ntype = 'snowflake'\n");
    let err = open(&p, "bare").open().await.unwrap_err();
    // as in Streamlit: a non-empty section is passed to the connector, whose error is shown
    assert!(
        matches!(problem(&err), ConfigProblem::MissingKeys { keys, .. } if keys == &["account", "user", "password"]),
        "{err}"
    );
}
