//! Every output format of `connections query`, on stdout and through `--output`, parsed back and
//! compared with the query's Arrow data read through the library: SQLite always, PostgreSQL and
//! MariaDB when `CONNECTIONS_TEST_POSTGRES_URL` / `CONNECTIONS_TEST_MYSQL_URL` are set.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test code

mod common;

use std::io::Cursor;

use common::{PLANTED, Project, server_url, unique_table, with_password};
use connections::arrow::array::RecordBatch;
use connections::arrow::compute::concat_batches;
use connections::arrow::datatypes::SchemaRef;
use connections::arrow::util::pretty::pretty_format_batches;

const FORMATS: [&str; 6] = ["table", "csv", "json", "ndjson", "arrow", "parquet"];

/// Parses `bytes` written in `format`, reading the text formats with `schema`.
fn parse(format: &str, bytes: &[u8], schema: &SchemaRef) -> RecordBatch {
    use connections::arrow::{csv, ipc, json};
    let batches: Vec<RecordBatch> = match format {
        "csv" => csv::ReaderBuilder::new(schema.clone())
            .with_header(true)
            .build(Cursor::new(bytes))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap(),
        "json" => {
            let rows: Vec<serde_json::Value> = serde_json::from_slice(bytes).unwrap();
            let mut decoder = json::ReaderBuilder::new(schema.clone()).build_decoder().unwrap();
            decoder.serialize(&rows).unwrap();
            decoder.flush().unwrap().into_iter().collect()
        }
        "ndjson" => json::ReaderBuilder::new(schema.clone())
            .build(Cursor::new(bytes))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap(),
        "arrow" => {
            ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).unwrap().collect::<Result<_, _>>().unwrap()
        }
        "parquet" => {
            use std::io::Write as _;
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(bytes).unwrap();
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        }
        other => panic!("no parser for {other}"),
    };
    concat_batches(schema, &batches).unwrap()
}

/// Runs `sql` on `name` in every format, to stdout and to a file, and compares each with
/// `expected`.
fn assert_every_format(project: &Project, name: &str, sql: &str, expected: &RecordBatch) {
    let schema = expected.schema();
    for format in FORMATS {
        let run = project.ok(&["query", name, sql, "--format", format, "--limit", "0"]);
        assert!(run.stderr.contains(&format!("{} rows in ", expected.num_rows())), "{format}: {}", run.stderr);
        assert!(!run.stdout.contains(PLANTED) && !run.stderr.contains(PLANTED));

        let file = project.dir().join(format!("out.{format}"));
        let quiet = project.ok(&["-q", "query", name, sql, "-f", format, "-o", file.to_str().unwrap(), "--limit", "0"]);
        assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""), "-q and --output: nothing printed");
        let written = std::fs::read(&file).unwrap();
        assert_eq!(written, run.stdout_bytes, "{format}: the file holds what stdout printed");

        if format == "table" {
            let table = pretty_format_batches(std::slice::from_ref(expected)).unwrap().to_string();
            assert_eq!(run.stdout, format!("{table}\n"));
            continue;
        }
        let parsed = parse(format, &written, &schema);
        assert_eq!(parsed.num_rows(), expected.num_rows(), "{format}");
        for (i, field) in schema.fields().iter().enumerate() {
            let parsed_field = parsed.schema().field(i).clone();
            assert_eq!((parsed_field.name(), parsed_field.data_type()), (field.name(), field.data_type()), "{format}");
            assert_eq!(parsed.column(i).as_ref(), expected.column(i).as_ref(), "{format}: column {}", field.name());
        }
    }
}

#[test]
fn sqlite_every_format_round_trips() {
    let project = Project::with_pets();
    let sql = "select * from pets order by id";
    let expected = project.reference(&project.pets_url(), sql);
    assert_eq!(expected.num_rows(), 4);
    assert_every_format(&project, "pets_db", sql, &expected);

    // an empty result keeps its columns in the formats that carry a schema
    let empty = "select * from pets where id < 0";
    let run = project.ok(&["query", "pets_db", empty, "-f", "arrow"]);
    let parsed = parse("arrow", &run.stdout_bytes, &project.reference(&project.pets_url(), sql).schema());
    assert_eq!((parsed.num_rows(), parsed.num_columns()), (0, 4));
    assert!(run.stderr.contains("0 rows in "), "{}", run.stderr);
    assert_eq!(project.ok(&["query", "pets_db", empty, "-f", "json"]).stdout, "[]\n");
    assert_eq!(project.ok(&["query", "pets_db", empty, "-f", "csv"]).stdout, "id,name,owner,weight\n");
}

#[test]
fn the_table_view_shows_limit_rows_and_says_how_many_more() {
    let project = Project::with_pets();
    let run = project.ok(&["query", "pets_db", "select id, owner from pets order by id", "--limit", "2"]);
    let expected = project.reference(&project.pets_url(), "select id, owner from pets order by id limit 2");
    assert_eq!(run.stdout, format!("{}\n", pretty_format_batches(&[expected]).unwrap()));
    assert!(run.stderr.contains("2 more rows not shown"), "{}", run.stderr);
    assert!(run.stderr.contains("4 rows in "), "{}", run.stderr);
}

#[test]
fn params_are_bound_typed() {
    let project = Project::with_pets();
    let sql = "select name, weight from pets where owner = :owner and id >= :min order by id";
    let run = project.ok(&["query", "pets_db", sql, "-p", "owner=Jerry", "--param", "min=1", "-f", "csv"]);
    assert_eq!(run.stdout, "name,weight\nTom,4.5\nZoë,\n");
    let typed = project.ok(&[
        "query",
        "pets_db",
        "select :n + 1 as n, :x * 2 as x, :s as s",
        "-p",
        "n=41",
        "-p",
        "x=0.25",
        "-p",
        "s='007'",
        "-f",
        "csv",
    ]);
    assert_eq!(typed.stdout, "n,x,s\n42,0.5,007\n");
}

/// `plant_in_url`: the server trusts the user, so the planted password can ride in the URL
/// (sent, unchecked); otherwise it sits beside the URL as a `password` key (ignored, warned of).
fn server_round_trip(var: &str, plant_in_url: bool) {
    let Some(url) = server_url(var) else { return };
    let project = Project::new();
    let section = if plant_in_url {
        format!("url = \"{}\"\n", with_password(&url, PLANTED))
    } else {
        format!("url = \"{url}\"\npassword = \"{PLANTED}\"\n")
    };
    project.secrets(&format!("[connections.db]\ntype = \"sql\"\n{section}"));
    let table = unique_table("cli_formats");
    project.ok(&[
        "execute",
        "db",
        &format!("create table {table} (id bigint, name varchar(40), owner varchar(40), weight double precision)"),
    ]);
    let inserted = project.ok(&[
        "execute",
        "db",
        &format!(
            "insert into {table} values (1, 'Tom', 'Jerry', 4.5), (2, 'Rex, \"the dog\"', NULL, 30.25), \
             (3, 'Zoë', 'Jerry', NULL), (4, 'line\nbreak', 'Ann', -0.125)"
        ),
    ]);
    assert_eq!(inserted.stdout, "4\n");
    let sql = format!("select * from {table} order by id");
    let expected = project.reference(&url, &sql);
    assert_eq!(expected.num_rows(), 4);
    assert_every_format(&project, "db", &sql, &expected);
    // the planted password, at the highest verbosity, on success and on failure
    let mut runs = vec![
        project.run(&["-vvv", "query", "db", &sql, "-f", "csv"]),
        project.run(&["-vvv", "query", "db", "select * fro nowhere"]),
        project.run(&["-vvv", "execute", "db", &format!("insert into {table} (id) values ('x')")]),
    ];
    // a server that does not answer, with the password in the URL: the connect error must not show it
    let scheme = url.split("://").next().unwrap();
    let unreachable = format!("url={scheme}://root:{PLANTED}@127.0.0.1:1/test?connect_timeout=2");
    runs.push(project.run(&["-vvv", "check", "db", "--set", &unreachable]));
    for run in &runs {
        assert!(!run.stdout.contains(PLANTED) && !run.stderr.contains(PLANTED), "{}\n{}", run.stdout, run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    assert_eq!(runs[0].code, 0, "{}", runs[0].stderr);
    assert_eq!(runs[3].code, 1, "{}", runs[3].stderr);
    assert!(runs[3].stderr.contains("failed to connect"), "{}", runs[3].stderr);
    let check = project.ok(&["-vvv", "check", "db"]);
    assert!(check.stdout.contains("round trip"), "{}", check.stdout);
    assert!(!check.stdout.contains(PLANTED) && !check.stderr.contains(PLANTED), "{}{}", check.stdout, check.stderr);
    project.ok(&["execute", "db", &format!("drop table {table}")]);
}

#[test]
fn postgres_every_format_round_trips() {
    server_round_trip("CONNECTIONS_TEST_POSTGRES_URL", true);
}

#[test]
fn mariadb_every_format_round_trips() {
    server_round_trip("CONNECTIONS_TEST_MYSQL_URL", false);
}

/// A query with an empty result runs once: its columns come from the stream, not from running
/// it again (PostgreSQL, where a query can change data and still return no rows).
#[test]
fn an_empty_result_is_not_queried_twice_for_its_columns() {
    let Some(url) = server_url("CONNECTIONS_TEST_POSTGRES_URL") else { return };
    let project = Project::new();
    project.secrets(&format!("[connections.db]\ntype = \"sql\"\nurl = \"{url}\"\n"));
    let table = unique_table("cli_once");
    project.ok(&["execute", "db", &format!("create table {table} (id bigint)")]);
    let sql = format!("with added as (insert into {table} values (1) returning id) select id from added where false");
    let run = project.ok(&["query", "db", &sql, "-f", "csv"]);
    assert_eq!(run.stdout, "id\n");
    let count = project.ok(&["query", "db", &format!("select count(*) as n from {table}"), "-f", "csv"]);
    assert_eq!(count.stdout, "n\n1\n", "the insert ran once");
    project.ok(&["execute", "db", &format!("drop table {table}")]);
}
