//! The differential integrity suite of type `sql`: for every supported column type, edge values
//! stored in a real table and read back through every read path (the backend's fast path, the
//! row path forced by a parameter, `query_stream`, a session), which must agree with each other,
//! with the expected Arrow type and text, and, where the rendering is the same, with the
//! server's own text of the value. Then random values and random parameter types.
//!
//! SQLite always runs; PostgreSQL and MySQL/MariaDB need `CONNECTIONS_TEST_POSTGRES_URL` and
//! `CONNECTIONS_TEST_MYSQL_URL` and are skipped without them.

#![allow(clippy::unwrap_used)] // test code
#![allow(clippy::cast_possible_truncation)] // random numbers cut to size on purpose

use connections::sql::SqlConnection;
use connections_tests::{frame_text, open_sql_with, optional_server_url, same_on_every_path, server_url, unique_table};

/// What reading one stored value must give.
enum Expect {
    /// This Arrow type and this text (CSV; `NULL` for NULL).
    Value(&'static str, &'static str),
    /// This Arrow type, and the server's own text of the value.
    ServerText(&'static str),
    /// This Arrow type (the paths agree on the values).
    Type(&'static str),
    /// An error naming the column `v`, row 0 (for a value that does not fit; a type with no
    /// Arrow mapping names no row), and containing this.
    Error(&'static str),
}
use Expect::{Error, ServerText, Type, Value};

/// The text of the error for a column type with no Arrow mapping.
const NO_MAPPING: &str = "no Arrow mapping";

/// One edge value: the column's type and the SQL literal stored in it.
struct Case {
    ty: &'static str,
    literal: &'static str,
    expect: Expect,
}

const fn case(ty: &'static str, literal: &'static str, expect: Expect) -> Case {
    Case { ty, literal, expect }
}

/// How a backend renders a column as text, for the server's-own-text comparison.
struct Dialect {
    /// `{}` is the column.
    as_text: &'static str,
    /// Statements that make the session accept the literals (MySQL's zero dates).
    setup: &'static [&'static str],
}

/// Stores each case in a table of its own and checks every read path.
async fn check_cases(conn: &SqlConnection, dialect: &Dialect, cases: &[Case]) {
    let pool = conn.pool().await.unwrap();
    let fast = || {
        let served = pool.served();
        served.postgres_copy + served.mysql_bulk + served.sqlite_c_api
    };
    let fast_before = fast();
    let mut read_ok = 0;
    let mut failures = Vec::new();
    for Case { ty, literal, expect } in cases {
        let t = unique_table("integrity");
        conn.execute(&format!("create table {t} (id int, v {ty})")).await.unwrap();
        let mut session = conn.session().await.unwrap();
        for statement in dialect.setup {
            session.execute(statement).await.unwrap();
        }
        session.execute(&format!("insert into {t} values (1, {literal}), (2, null)")).await.unwrap();
        session.commit().await.unwrap();
        let read = same_on_every_path(conn, &format!("select v from {t} where id = 1")).await;
        let nulls = same_on_every_path(conn, &format!("select v from {t} where id = 2")).await;
        let server =
            conn.query(format!("select {} as v from {t} where id = 1", dialect.as_text.replace("{}", "v"))).await;
        conn.execute(&format!("drop table {t}")).await.unwrap();
        read_ok += u64::from(read.is_ok());
        let problem = match (expect, &read) {
            (Value(arrow, text), Ok(got)) => {
                let want = format!("v: {arrow}\nv\n{text}\n");
                (got != &want).then(|| format!("got {got:?}, want {want:?}"))
            }
            (ServerText(arrow), Ok(got)) => {
                let server = server.map_or_else(|e| e.to_string(), |df| frame_text(&df));
                let server_value = server.split_once('\n').map_or("", |(_, rows)| rows);
                let want = format!("v: {arrow}\n{server_value}");
                (got != &want).then(|| format!("got {got:?}, the server says {want:?}"))
            }
            (Type(arrow), Ok(got)) => {
                (!got.starts_with(&format!("v: {arrow}\n"))).then(|| format!("got {got:?}, want type {arrow}"))
            }
            (Error(what), Err(error)) => {
                let row = *what == NO_MAPPING || error.contains("row 0");
                (!(error.contains("column `v`") && row && error.contains(what)))
                    .then(|| format!("error {error:?} does not name column `v`, row 0 and {what:?}"))
            }
            (_, other) => Some(format!("unexpected {other:?}")),
        };
        if let Some(problem) = problem {
            failures.push(format!("{ty} {literal}: {problem}"));
        }
        match (&read, &nulls) {
            (Ok(value), Ok(null)) => {
                let schema = |text: &str| text.lines().next().unwrap_or_default().to_owned();
                // an unconstrained PostgreSQL numeric, and a MySQL decimal (whose declared scale
                // sqlx does not pass on), take the scale of the values: NULLs alone give 0
                let same_schema = schema(value) == schema(null) || *ty == "numeric" || ty.starts_with("decimal");
                let shows_null = null.ends_with("\nNULL\n") || null.contains("+---"); // tables show lists
                if !same_schema || !shows_null {
                    failures.push(format!("{ty}: NULL reads as {null:?}, beside {value:?}"));
                }
            }
            (_, Err(e)) => failures.push(format!("{ty}: NULL fails: {e}")),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    // `query` of a value (and of its NULL) went through the backend's fast path each time
    assert!(
        fast() - fast_before >= 2 * read_ok,
        "the fast path served {} of {} reads",
        fast() - fast_before,
        2 * read_ok
    );
}

const POSTGRES: Dialect = Dialect { as_text: "{}::text", setup: &[] };

#[tokio::test]
async fn postgres_edge_values_on_every_path() {
    let Some(url) = server_url("CONNECTIONS_TEST_POSTGRES_URL") else { return };
    let (_p, conn) = open_sql_with(&url, "pg_integrity", "").await;
    let cases = [
        case("boolean", "true", Value("Boolean", "true")),
        case("boolean", "false", Value("Boolean", "false")),
        case("smallint", "-32768", ServerText("Int16")),
        case("smallint", "32767", ServerText("Int16")),
        case("integer", "-2147483648", ServerText("Int32")),
        case("bigint", "-9223372036854775808", ServerText("Int64")),
        case("bigint", "9223372036854775807", ServerText("Int64")),
        case("oid", "4294967295", ServerText("Int64")),
        case("real", "'-0'", Value("Float32", "-0.0")),
        case("real", "'NaN'", Value("Float32", "NaN")),
        case("real", "3.4028235e38", Value("Float32", "3.4028235e38")),
        case("double precision", "'Infinity'", Value("Float64", "inf")),
        case("double precision", "'-Infinity'", Value("Float64", "-inf")),
        case("double precision", "5e-324", Value("Float64", "5e-324")),
        case("numeric", "0", ServerText("Decimal128(38, 0)")),
        case("numeric", "0.10", ServerText("Decimal128(38, 2)")),
        case("numeric", "-0.000001", ServerText("Decimal128(38, 6)")),
        case("numeric", "1e30", ServerText("Decimal128(38, 0)")),
        case("numeric", "99999999999999999999999999999999999999", ServerText("Decimal128(38, 0)")),
        case("numeric", "-99999999999999999999.999999999999999999", ServerText("Decimal128(38, 18)")),
        case("numeric", "100000000000000000000000000000000000000", Error("38")),
        case("numeric", "0.000000000000000000000000000000000000001", Error("38")),
        case("numeric", "'NaN'", Error("NaN")),
        case("numeric(38, 0)", "12345678901234567890123456789012345678", ServerText("Decimal128(38, 0)")),
        case("numeric(10, 4)", "-1.5", ServerText("Decimal128(10, 4)")),
        case("numeric(3, 3)", "0.001", ServerText("Decimal128(3, 3)")),
        case("numeric(60, 2)", "1.5", ServerText("Decimal128(38, 2)")),
        case("numeric(60, 2)", "1e40", Error("38")),
        case("text", "''", Value("Utf8", "\"\"")),
        case("text", "'Grüße, 世界 🎈'", ServerText("Utf8")),
        case("text", "repeat('x', 1048576)", ServerText("Utf8")),
        case("varchar(5)", "'a\"b'", Value("Utf8", "\"a\"\"b\"")),
        case("char(3)", "'a'", Value("Utf8", "a  ")),
        case("name", "'pg_name'", ServerText("Utf8")),
        case("\"char\"", "'x'", ServerText("Utf8")),
        case("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", ServerText("Utf8")),
        case(
            "json",
            r#"'{"b": 1, "a": 2, "a": 3, "n": 12345678901234567890123, "x": 0.10, "e": [1e400]}'"#,
            ServerText("Utf8"),
        ),
        case("jsonb", r#"'{"b": 1, "a": 2, "a": 3, "n": 12345678901234567890123, "x": 0.10}'"#, ServerText("Utf8")),
        case("bytea", "'\\x00ff80'", Value("Binary", "00ff80")),
        case("bytea", "''", Value("Binary", "\"\"")),
        case("date", "'2024-02-29'", ServerText("Date32")),
        case("date", "'0001-01-01'", ServerText("Date32")),
        case("date", "'4713-01-01 BC'", Value("Date32", "-4712-01-01")),
        case("date", "'5874897-12-31'", Type("Date32")), // valid days, past chrono's range
        case("date", "'infinity'", Error("infinity")),
        case("date", "'-infinity'", Error("infinity")),
        case("time", "'00:00:00'", ServerText("Time64(µs)")),
        case("time", "'23:59:59.999999'", ServerText("Time64(µs)")),
        case("time", "'24:00:00'", Error("24:00:00")),
        case("timestamp", "'2024-02-29 12:34:56.123456'", Value("Timestamp(µs)", "2024-02-29T12:34:56.123456")),
        case("timestamp", "'1969-12-31 23:59:59.999999'", Value("Timestamp(µs)", "1969-12-31T23:59:59.999999")),
        case("timestamp", "'4713-01-01 00:00:00 BC'", Value("Timestamp(µs)", "-4712-01-01T00:00:00")),
        case("timestamp", "'294276-12-31 23:59:59'", Error("outside")),
        case("timestamp", "'infinity'", Error("infinity")),
        case("timestamptz", "'2024-01-01 12:00:00+05:30'", Value("Timestamp(µs, \"+00:00\")", "2024-01-01T06:30:00Z")),
        case("timestamptz", "'-infinity'", Error("infinity")),
        case("integer[]", "'{1,NULL,-3}'", Type("List(Int32)")),
        case("text[]", "'{}'", Type("List(Utf8)")),
        case("integer[][]", "'{{1,2},{3,4}}'", Error("multi-dimensional")),
        case("interval", "'1 day'", Error(NO_MAPPING)),
    ];
    check_cases(&conn, &POSTGRES, &cases).await;
}

const MYSQL: Dialect = Dialect {
    as_text: "cast({} as char)",
    // lenient modes, so that the zero dates and out-of-range values can be stored at all
    setup: &["set session sql_mode = 'ALLOW_INVALID_DATES'"],
};

#[tokio::test]
async fn mysql_edge_values_on_every_path() {
    let Some(url) = server_url("CONNECTIONS_TEST_MYSQL_URL") else { return };
    let (_p, conn) = open_sql_with(&url, "my_integrity", "").await;
    let cases = [
        case("boolean", "1", Value("Boolean", "true")),
        case("boolean", "0", Value("Boolean", "false")),
        case("boolean", "2", Error("not a boolean")),
        case("boolean", "-1", Error("not a boolean")),
        case("tinyint", "-128", ServerText("Int8")),
        case("tinyint unsigned", "255", ServerText("UInt8")),
        case("smallint", "-32768", ServerText("Int16")),
        case("smallint unsigned", "65535", ServerText("UInt16")),
        case("mediumint", "-8388608", ServerText("Int32")),
        case("mediumint unsigned", "16777215", ServerText("UInt32")),
        case("int", "-2147483648", ServerText("Int32")),
        case("int unsigned", "4294967295", ServerText("UInt32")),
        case("bigint", "-9223372036854775808", ServerText("Int64")),
        case("bigint unsigned", "18446744073709551615", ServerText("UInt64")),
        case("float", "-0", Value("Float32", "0.0")), // MariaDB stores -0 as 0
        case("double", "1.7976931348623157e308", Value("Float64", "1.7976931348623157e308")),
        case("double", "-0.0", Value("Float64", "0.0")),
        case("decimal(10, 2)", "-12345678.91", ServerText("Decimal128(38, 2)")),
        case("decimal(38, 0)", "99999999999999999999999999999999999999", ServerText("Decimal128(38, 0)")),
        case("decimal(65, 0)", "100000000000000000000000000000000000000", Error("38")),
        case("decimal(5, 5)", "0.00001", ServerText("Decimal128(38, 5)")),
        case("char(3)", "'a'", ServerText("Utf8")),
        case("varchar(20) character set utf8mb4 collate utf8mb4_bin", "'Grüße 🎈'", ServerText("Utf8")),
        case("varchar(20) character set latin1", "'café'", ServerText("Utf8")),
        case("text", "''", Value("Utf8", "\"\"")),
        case("longtext", "repeat('x', 1048576)", ServerText("Utf8")),
        case("json", r#"'{"b": 1, "a": 2, "a": 3, "n": 12345678901234567890123, "x": 0.10}'"#, ServerText("Utf8")),
        case("enum('a', 'b')", "'b'", ServerText("Utf8")),
        case("set('a', 'b')", "'a,b'", ServerText("Utf8")),
        case("binary(3)", "x'00ff80'", Value("Binary", "00ff80")),
        case("varbinary(10)", "x'c328'", Value("Binary", "c328")),
        case("blob", "''", Value("Binary", "\"\"")),
        case("bit(12)", "b'101010101010'", Value("UInt64", "2730")),
        case("year", "2155", ServerText("UInt16")),
        case("date", "'1000-01-01'", ServerText("Date32")),
        case("date", "'9999-12-31'", ServerText("Date32")),
        case("date", "'2024-02-29'", ServerText("Date32")),
        case("date", "'0000-00-00'", Error("date")),
        case("date", "'2024-02-30'", Error("date")),
        case("time", "'00:00:00'", ServerText("Time64(µs)")),
        case("time(6)", "'23:59:59.999999'", ServerText("Time64(µs)")),
        case("time", "'24:00:00'", Error("24 hours")),
        case("time", "'-00:00:01'", Error("negative")),
        case("datetime(6)", "'2024-02-29 12:34:56.123456'", Value("Timestamp(µs)", "2024-02-29T12:34:56.123456")),
        case("datetime", "'1000-01-01 00:00:00'", Value("Timestamp(µs)", "1000-01-01T00:00:00")),
        case("datetime", "'0000-00-00 00:00:00'", Error("date")),
        case("timestamp", "'2038-01-19 03:14:07'", Value("Timestamp(µs, \"+00:00\")", "2038-01-19T03:14:07Z")),
        case("geometry", "point(1, 2)", Error(NO_MAPPING)),
    ];
    check_cases(&conn, &MYSQL, &cases).await;
}

const SQLITE: Dialect = Dialect { as_text: "cast({} as text)", setup: &[] };

#[tokio::test]
async fn sqlite_edge_values_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("integrity.db").display());
    let (_p, conn) = open_sql_with(&url, "sqlite_integrity", "").await;
    let cases = [
        case("integer", "-9223372036854775808", ServerText("Int64")),
        case("integer", "9223372036854775807", ServerText("Int64")),
        case("real", "-0.0", Value("Float64", "0.0")), // SQLite stores an integral real as an integer
        case("real", "1.7976931348623157e308", Value("Float64", "1.7976931348623157e308")),
        case("real", "5", Value("Float64", "5.0")),
        case("real", "'text'", Error("does not fit")),
        case("text", "''", Value("Utf8", "\"\"")),
        case("text", "'Grüße, 世界 🎈'", ServerText("Utf8")),
        case("text", "12", Value("Utf8", "12")),
        case("text", "printf('%.*c', 1048576, 'x')", ServerText("Utf8")),
        case("blob", "x'00ff80'", Value("Binary", "00ff80")),
        case("blob", "'abc'", Value("Binary", "616263")),
        case("boolean", "1", Value("Boolean", "true")),
        case("boolean", "0", Value("Boolean", "false")),
        case("boolean", "2", Error("not a boolean")),
        case("boolean", "-1", Error("not a boolean")),
        case("date", "'2024-02-29'", ServerText("Date32")),
        case("date", "'2024-02-30'", Error("")),
        case("time", "'23:59:59.999999'", Value("Time64(µs)", "23:59:59.999999")),
        case("time", "'24:00:00'", Error("")),
        case("datetime", "'2024-01-01T12:00:00+05:00'", Value("Timestamp(µs)", "2024-01-01T07:00:00")),
        case("datetime", "'2024-01-01 12:00:00Z'", Value("Timestamp(µs)", "2024-01-01T12:00:00")),
        case("datetime", "0", Value("Timestamp(µs)", "1970-01-01T00:00:00")),
        case("datetime", "'not a date'", Error("")),
        case("numeric", "12", Value("Int64", "12")),
        case("numeric", "'12.5'", Value("Float64", "12.5")),
    ];
    check_cases(&conn, &SQLITE, &cases).await;
}

/// Checks done on the SQL text itself are the same on every backend: a NUL byte and several
/// statements are statement errors at once, before anything reaches the database.
#[tokio::test]
async fn sql_text_rules_are_the_same_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite:///{}", dir.path().join("rules.db").display())];
    urls.extend(optional_server_url("CONNECTIONS_TEST_POSTGRES_URL"));
    urls.extend(optional_server_url("CONNECTIONS_TEST_MYSQL_URL"));
    for url in urls {
        let (_p, conn) =
            open_sql_with(&url, "text_rules", "create_engine_kwargs = { pool_size = 1, max_overflow = 0 }").await;
        for sql in ["select 'a\0b' as v", "select 1 as a; select 2 as b", "select 1 as a; select 2 as a, 3 as b"] {
            let started = std::time::Instant::now();
            let err = same_on_every_path(&conn, sql).await.unwrap_err();
            assert!(err.contains("NUL byte") || err.contains("2 statements"), "{url}: {sql}: {err}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "{url}: {sql}: not retried");
            let err = conn.query(sql).await.unwrap_err();
            assert_eq!(err.kind(), connections::ErrorKind::Statement, "{url}: {sql}");
        }
        let err = conn.execute("select 'a\0b'").await.unwrap_err();
        assert_eq!(err.kind(), connections::ErrorKind::Statement);
        let df = conn.query("select 1 as v; -- a trailing semicolon and comment").await.unwrap();
        assert!(frame_text(&df).ends_with("v\n1\n"), "{url}: {}", frame_text(&df));
    }
}

/// A small deterministic generator (xorshift64*), so that a failure can be replayed: the seed
/// is printed, and `CONNECTIONS_TEST_SEED` sets it.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::env::var("CONNECTIONS_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        eprintln!("random values with CONNECTIONS_TEST_SEED={seed}");
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// An integer, often at an edge.
    fn int(&mut self) -> i64 {
        match self.next() % 6 {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => 0,
            3 => (self.next() % 1000).cast_signed() - 500,
            _ => self.next().cast_signed(),
        }
    }

    /// A finite float, often at an edge (no NaN or infinities: not every backend stores them).
    fn float(&mut self) -> f64 {
        let x = match self.next() % 6 {
            0 => f64::MAX,
            1 => f64::MIN_POSITIVE,
            2 => 0.1,
            3 => 5e-324,
            _ => f64::from_bits(self.next()),
        };
        if x.is_finite() { x } else { 1.5 }
    }

    /// A string of 0 to 40 characters from several scripts, no NUL.
    fn text(&mut self) -> String {
        const CHARS: &[char] = &['a', 'Z', '0', ' ', '\'', '"', '\\', ':', ';', '%', 'é', 'ß', '世', '🎈', '\n', '\t'];
        let len = self.next() % 41;
        (0..len).map(|_| CHARS[(self.next() % CHARS.len() as u64) as usize]).collect()
    }
}

/// Random values of each type, stored through parameters and read back through every path;
/// then the same SQL text with parameters of random types on one pooled connection.
async fn random_round_trips(url: &str, name: &str, float_type: &str, text_type: &str) {
    use connections::arrow::array::{Array, Float64Array, Int64Array, StringArray};
    let (_p, conn) = open_sql_with(url, name, "create_engine_kwargs = { pool_size = 1, max_overflow = 0 }").await;
    let mut random = Random::new();
    let t = unique_table("random");
    conn.execute(&format!("create table {t} (id bigint, i bigint, f {float_type}, s {text_type})")).await.unwrap();
    let mut rows = Vec::new();
    for id in 0..60_i64 {
        let (i, f, s) = (random.int(), random.float(), random.text());
        conn.execute_with(
            &format!("insert into {t} values (:id, :i, :f, :s)"),
            [("id", connections::Param::I64(id)), ("i", i.into()), ("f", f.into()), ("s", s.clone().into())],
        )
        .await
        .unwrap();
        rows.push((i, f, s));
    }
    let df = conn.query(format!("select i, f, s from {t} order by id")).await.unwrap();
    same_on_every_path(&conn, &format!("select i, f, s from {t} order by id")).await.unwrap();
    conn.execute(&format!("drop table {t}")).await.unwrap();
    let batch = df.to_record_batch().unwrap();
    let ints = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    let floats = batch.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
    let texts = batch.column(2).as_any().downcast_ref::<StringArray>().unwrap();
    for (k, (i, f, s)) in rows.iter().enumerate() {
        assert_eq!(ints.value(k), *i, "{name}: row {k}");
        assert_eq!(floats.value(k).to_bits(), f.to_bits(), "{name}: row {k}: {f:e}");
        assert_eq!(texts.value(k), s, "{name}: row {k}");
    }
    for k in 0..80 {
        let (param, want): (connections::Param, String) = match random.next() % 4 {
            0 => {
                let i = random.int();
                (i.into(), format!("Int64 {i}"))
            }
            1 => {
                let f = random.float();
                (f.into(), format!("Float64 {}", f.to_bits()))
            }
            2 => {
                let s = random.text();
                (s.clone().into(), format!("Utf8 {s}"))
            }
            _ => (connections::Param::Null, "NULL".to_owned()),
        };
        let df = conn.query("select :v as v").param("v", param).await.unwrap();
        let column = df.to_record_batch().unwrap().column(0).clone();
        let got = if column.is_null(0) {
            "NULL".to_owned()
        } else if let Some(a) = column.as_any().downcast_ref::<Int64Array>() {
            format!("Int64 {}", a.value(0))
        } else if let Some(a) = column.as_any().downcast_ref::<Float64Array>() {
            format!("Float64 {}", a.value(0).to_bits())
        } else if let Some(a) = column.as_any().downcast_ref::<StringArray>() {
            format!("Utf8 {}", a.value(0))
        } else {
            format!("{:?}", column.data_type())
        };
        assert_eq!(got, want, "{name}: parameter {k}");
    }
}

#[tokio::test]
async fn random_values_and_parameter_types_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:///{}", dir.path().join("random.db").display());
    random_round_trips(&sqlite, "sqlite_random", "real", "text").await;
    if let Some(url) = optional_server_url("CONNECTIONS_TEST_POSTGRES_URL") {
        random_round_trips(&url, "pg_random", "double precision", "text").await;
    }
    if let Some(url) = optional_server_url("CONNECTIONS_TEST_MYSQL_URL") {
        random_round_trips(&url, "my_random", "double", "longtext").await;
    }
}
