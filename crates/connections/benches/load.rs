//! The load benchmark: one `select * from <table>` into Arrow, timed in-process.
//!
//! `cargo bench` (no arguments) runs a small self-contained case: 100,000 rows generated into a
//! temporary SQLite file, one cold `query` and 1,000 cache hits, printed as one line.
//!
//! `cargo xtask bench` runs this program once per measurement, so that every cold query is a
//! fresh process (a new pool, nothing cached), with
//!
//! ```text
//! load --backend sqlite|postgres|mysql|snowflake --url URL --table NAME --mode cold|hit|generate
//!      [--rows N] [--hits N]
//! ```
//!
//! `--backend snowflake` (built with the feature `snowflake`) measures `cold` only, against a
//! Snowflake emulator at `--url http://HOST:PORT` (type `snowflake` with `host`, `port` and
//! `protocol` from the URL, `account = "fakesnow"`); `cargo xtask bench --backends snowflake`
//! makes its table.
//!
//! and reads one line of JSON from its stdout:
//!
//! - `cold`: opens the connection (`open_seconds`), runs the query once (`seconds`: wall clock
//!   around the query alone) and reports `rows`, `arrow_bytes` (buffer capacities, the query
//!   cache's weight), `arrow_used_bytes` (buffer lengths), and the process's peak resident
//!   set (`VmHWM` of `/proc/self/status`, kB) before (`rss_before_kb`) and after the query
//!   (`peak_rss_kb`).
//! - `hit`: runs the query once, then `--hits` identical queries answered by the query cache,
//!   reporting the median, mean and maximum time of one hit in microseconds.
//! - `generate`: makes `--rows` rows in the table unless it already holds exactly that many.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, missing_docs)] // a benchmark program

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use connections::arrow::array::{Array, Int64Array};
use connections::arrow::record_batch::RecordBatch;
use connections::sql::SqlConnection;
use connections::{DataFrame, query_cache};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Rows of the self-contained `cargo bench` case.
const SMOKE_ROWS: u64 = 100_000;
/// Cache hits timed by default.
const DEFAULT_HITS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    Mysql,
    Snowflake,
}

impl Backend {
    fn parse(name: &str) -> Result<Self, BoxError> {
        match name {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" | "mariadb" => Ok(Self::Mysql),
            "snowflake" => Ok(Self::Snowflake),
            other => Err(format!("unknown backend {other:?} (sqlite, postgres, mysql, snowflake)").into()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Snowflake => "snowflake",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Cold,
    Hit,
    Generate,
}

#[derive(Debug)]
struct Args {
    backend: Backend,
    url: String,
    table: String,
    mode: Mode,
    rows: u64,
    hits: usize,
}

/// The arguments, or `None` when there are none (plain `cargo bench`, which passes `--bench`).
fn parse_args() -> Result<Option<Args>, BoxError> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.is_empty() {
        return Ok(None);
    }
    let (mut backend, mut url, mut table, mut mode, mut rows, mut hits) = (None, None, None, None, None, DEFAULT_HITS);
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--backend" => backend = Some(Backend::parse(&value()?)?),
            "--url" => url = Some(value()?),
            "--table" => table = Some(value()?),
            "--mode" => {
                mode = Some(match value()?.as_str() {
                    "cold" => Mode::Cold,
                    "hit" => Mode::Hit,
                    "generate" => Mode::Generate,
                    other => return Err(format!("unknown mode {other:?} (cold, hit, generate)").into()),
                });
            }
            "--rows" => rows = Some(value()?.replace('_', "").parse()?),
            "--hits" => hits = value()?.parse()?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let mode = mode.ok_or("--mode is required")?;
    Ok(Some(Args {
        backend: backend.ok_or("--backend is required")?,
        url: url.ok_or("--url is required")?,
        table: table.ok_or("--table is required")?,
        rows: match (mode, rows) {
            (Mode::Generate, None) => return Err("--mode generate needs --rows".into()),
            (_, rows) => rows.unwrap_or(0),
        },
        mode,
        hits: hits.max(1),
    }))
}

#[tokio::main]
async fn main() {
    let result = match parse_args() {
        Ok(Some(args)) => run(&args).await,
        Ok(None) => smoke().await,
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        let mut message = format!("error: {err}");
        let mut source = err.source();
        while let Some(cause) = source {
            let _ = write!(message, "\n  caused by: {cause}");
            source = cause.source();
        }
        eprintln!("{message}");
        std::process::exit(1);
    }
}

async fn open(url: &str) -> Result<std::sync::Arc<SqlConnection>, BoxError> {
    Ok(connections::connection("bench").with_type("sql").option("url", url).open_as::<SqlConnection>().await?)
}

async fn run(args: &Args) -> Result<(), BoxError> {
    if args.backend == Backend::Snowflake {
        return snowflake_cold(args).await;
    }
    let started = Instant::now();
    let conn = open(&args.url).await?;
    let open_seconds = started.elapsed().as_secs_f64();
    let sql = format!("select * from {}", args.table);
    let line = match args.mode {
        Mode::Generate => generate(&conn, args.backend, &args.table, args.rows).await?,
        Mode::Cold => {
            let rss_before = peak_rss_kb();
            let started = Instant::now();
            let df = conn.query(sql.as_str()).await?;
            let seconds = started.elapsed().as_secs_f64();
            let peak = peak_rss_kb();
            cold_line(args.backend, &df, open_seconds, seconds, rss_before, peak)
        }
        Mode::Hit => {
            let started = Instant::now();
            let first = conn.query(sql.as_str()).await?;
            let first_seconds = started.elapsed().as_secs_f64();
            let hits = time_hits(&conn, &sql, &first, args.hits).await?;
            format!(
                r#"{{"backend":"{}","mode":"hit","rows":{},"arrow_bytes":{},"first_seconds":{first_seconds:.6},"hits":{},"hit_median_us":{:.3},"hit_mean_us":{:.3},"hit_max_us":{:.3}}}"#,
                args.backend.name(),
                first.num_rows(),
                first.arrow_bytes(),
                hits.count,
                hits.median_us,
                hits.mean_us,
                hits.max_us,
            )
        }
    };
    println!("{line}");
    Ok(())
}

/// The JSON line of a cold query.
fn cold_line(
    backend: Backend,
    df: &DataFrame,
    open_seconds: f64,
    seconds: f64,
    rss_before: Option<u64>,
    peak: Option<u64>,
) -> String {
    format!(
        r#"{{"backend":"{}","mode":"cold","rows":{},"columns":{},"arrow_bytes":{},"arrow_used_bytes":{},"open_seconds":{open_seconds:.6},"seconds":{seconds:.6},"rss_before_kb":{},"peak_rss_kb":{},"batches":{},"schema":[{}]}}"#,
        backend.name(),
        df.num_rows(),
        df.num_columns(),
        df.arrow_bytes(),
        used_bytes(df),
        json_opt(rss_before),
        json_opt(peak),
        df.batches().len(),
        schema_json(df),
    )
}

/// `--backend snowflake --mode cold`: the table read once from the emulator at `args.url`.
#[cfg(feature = "snowflake")]
async fn snowflake_cold(args: &Args) -> Result<(), BoxError> {
    use connections::snowflake::SnowflakeConnection;
    if args.mode != Mode::Cold {
        return Err("--backend snowflake measures --mode cold only".into());
    }
    let (protocol, rest) = args.url.split_once("://").ok_or("--url must be http://HOST:PORT")?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':').ok_or("--url must name a port")?;
    let [database, schema, _] = args.table.split('.').collect::<Vec<_>>()[..] else {
        return Err("--table must be DATABASE.SCHEMA.TABLE".into());
    };
    let started = Instant::now();
    let conn = connections::connection("bench")
        .with_type("snowflake")
        .option("account", "fakesnow")
        .option("user", "fake")
        .option("password", "snow")
        .option("host", host)
        .option("port", port.parse::<i64>()?)
        .option("protocol", protocol)
        .option("database", database)
        .option("schema", schema)
        .option("network_timeout", 600)
        .open_as::<SnowflakeConnection>()
        .await?;
    // the login happens on first use: outside the timed query, as for the Python connector
    conn.session().await?;
    let open_seconds = started.elapsed().as_secs_f64();
    let rss_before = peak_rss_kb();
    let started = Instant::now();
    let df = conn.query(format!("select * from {}", args.table)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_kb();
    println!("{}", cold_line(args.backend, &df, open_seconds, seconds, rss_before, peak));
    Ok(())
}

#[cfg(not(feature = "snowflake"))]
async fn snowflake_cold(_args: &Args) -> Result<(), BoxError> {
    Err("this load benchmark was built without the feature `snowflake`".into())
}

/// Per-hit times of `count` identical queries, all answered by the cache.
struct Hits {
    count: usize,
    median_us: f64,
    mean_us: f64,
    max_us: f64,
}

async fn time_hits(conn: &SqlConnection, sql: &str, first: &DataFrame, count: usize) -> Result<Hits, BoxError> {
    let misses = query_cache().stats().misses;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let df = conn.query(sql).await?;
        times.push(started.elapsed());
        if df.num_rows() != first.num_rows() {
            return Err("a cache hit returned another number of rows".into());
        }
    }
    if query_cache().stats().misses != misses {
        return Err("a repeated query was not a cache hit (the result did not fit the cache?)".into());
    }
    times.sort_unstable();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(Hits {
        count,
        median_us: micros(times[times.len() / 2]),
        mean_us: times.iter().map(|d| micros(*d)).sum::<f64>() / times.len() as f64,
        max_us: micros(times[times.len() - 1]),
    })
}

/// `VmHWM` (peak resident set size) of this process in kB, on Linux.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bytes of the result's Arrow data: buffer lengths rather than the capacities
/// [`DataFrame::arrow_bytes`] counts (what pyarrow's `Table.nbytes` reports).
fn used_bytes(df: &DataFrame) -> usize {
    let columns = df.batches().iter().flat_map(RecordBatch::columns);
    columns.map(|column| column.to_data().get_slice_memory_size().unwrap_or(0)).sum()
}

/// The columns as a list of JSON strings, `"name: type"`.
fn schema_json(df: &DataFrame) -> String {
    let fields = df.schema().fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type()));
    fields.map(|f| format!("\"{}\"", f.replace('\\', "\\\\").replace('"', "\\\""))).collect::<Vec<_>>().join(",")
}

fn json_opt(value: Option<u64>) -> String {
    value.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

/// 100 characters the text columns are cut from.
const ALPHABET: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL";

/// Makes `rows` rows in `table` unless it already holds exactly that many; one JSON line.
///
/// Columns: `id` BIGINT (1..=rows), `n` INTEGER, `x` double, `s` text of 10 to 40 characters,
/// `b` boolean, `ts` timestamp (2020 to 2024, whole seconds), `t30` text, NULL in about 30% of
/// the rows. Values are pseudo-random but deterministic, computed in SQL from `id` with the same
/// integer arithmetic on every backend, so the three tables hold the same data.
async fn generate(conn: &SqlConnection, backend: Backend, table: &str, rows: u64) -> Result<String, BoxError> {
    if let Ok(existing) = count_rows(conn, table).await
        && existing == rows
    {
        return Ok(format!(r#"{{"backend":"{}","generated":false,"rows":{existing}}}"#, backend.name()));
    }
    let started = Instant::now();
    conn.execute(&format!("drop table if exists {table}")).await?;
    conn.execute(&create_table_sql(backend, table)).await?;
    conn.execute(&insert_sql(backend, table, rows)).await?;
    if backend == Backend::Postgres {
        // Sets the hint bits and the visibility map now, rather than during the first timed scan.
        conn.execute(&format!("vacuum (analyze) {table}")).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let counted = count_rows(conn, table).await?;
    if counted != rows {
        return Err(format!("generated {counted} rows in {table}, wanted {rows}").into());
    }
    Ok(format!(r#"{{"backend":"{}","generated":true,"rows":{counted},"seconds":{seconds:.3}}}"#, backend.name()))
}

async fn count_rows(conn: &SqlConnection, table: &str) -> Result<u64, BoxError> {
    let df = conn.query(format!("select count(*) as c from {table}")).await?;
    let column = df.column("c")?.ok_or("no column c")?;
    let counts = column.as_any().downcast_ref::<Int64Array>().ok_or("count(*) is not Int64")?;
    if counts.is_empty() || counts.is_null(0) {
        return Err("count(*) returned nothing".into());
    }
    Ok(u64::try_from(counts.value(0))?)
}

fn create_table_sql(backend: Backend, table: &str) -> String {
    let columns = match backend {
        Backend::Sqlite => "id BIGINT, n INTEGER, x REAL, s TEXT, b BOOLEAN, ts TIMESTAMP, t30 TEXT",
        Backend::Postgres => "id bigint, n integer, x double precision, s text, b boolean, ts timestamp, t30 text",
        // DATETIME is SQL's TIMESTAMP (no time zone); MySQL's TIMESTAMP is UTC-converted and ends in 2038.
        Backend::Mysql => "id bigint, n int, x double, s text, b boolean, ts datetime, t30 text",
        Backend::Snowflake => unreachable!("the Snowflake table is made by the Python connector"),
    };
    format!("create table {table} ({columns})")
}

fn insert_sql(backend: Backend, table: &str, rows: u64) -> String {
    // `h` and `g`: two integer hashes of `id` (multiplicative and linear congruential).
    let (prefix, ids, int) = match backend {
        Backend::Sqlite => (
            format!("with recursive gen(id) as (select 1 union all select id + 1 from gen where id < {rows}) "),
            "gen".to_owned(),
            "",
        ),
        Backend::Postgres => (String::new(), format!("generate_series(1::bigint, {rows}) as gen(id)"), "::int"),
        Backend::Mysql => {
            // 10^k ids from a cross join of digits: no sequence engine or recursion limit needed.
            let digits = "(select 0 as d union all select 1 union all select 2 union all select 3 union all \
                          select 4 union all select 5 union all select 6 union all select 7 union all \
                          select 8 union all select 9)";
            let mut width = 1;
            let mut span = 10_u64;
            while span < rows {
                width += 1;
                span *= 10;
            }
            let sum = (0..width).map(|i| format!("{}*d{i}.d", 10_u64.pow(i))).collect::<Vec<_>>().join(" + ");
            let from = (0..width).map(|i| format!("{digits} as d{i}")).collect::<Vec<_>>().join(" cross join ");
            (String::new(), format!("(select cast(1 + {sum} as signed) as id from {from}) as gen"), "")
        }
        Backend::Snowflake => unreachable!("the Snowflake table is made by the Python connector"),
    };
    let ts = match backend {
        Backend::Sqlite => "datetime(1577836800 + h % 157766400, 'unixepoch')",
        Backend::Postgres => "timestamp '2020-01-01 00:00:00' + (h % 157766400) * interval '1 second'",
        Backend::Mysql => "timestamp '2020-01-01 00:00:00' + interval (h % 157766400) second",
        Backend::Snowflake => unreachable!("the Snowflake table is made by the Python connector"),
    };
    let bool_expr = "(h % 1000) < 500";
    format!(
        "{prefix}insert into {table} (id, n, x, s, b, ts, t30) \
         select id, \
           g - 1073741824, \
           (h % 2000001) / 1000.0 - 1000.0, \
           substr('{ALPHABET}', (1 + h % 50){int}, (10 + g % 31){int}), \
           {bool_expr}, \
           {ts}, \
           case when h % 997 < 299 then null else substr('{ALPHABET}', (1 + g % 53){int}, (10 + h % 31){int}) end \
         from (select id, (id * 2654435761) % 4294967296 as h, (id * 1103515245 + 12345) % 2147483648 as g \
               from {ids} where id <= {rows}) as q \
         order by id"
    )
}

/// Plain `cargo bench`: a small SQLite case in a temporary file, printed as one line.
async fn smoke() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:///{}", dir.path().join("bench.db").display());
    let table = "bench";
    let conn = open(&url).await?;
    let started = Instant::now();
    generate(&conn, Backend::Sqlite, table, SMOKE_ROWS).await?;
    let generate_seconds = started.elapsed().as_secs_f64();

    let sql = format!("select * from {table}");
    let started = Instant::now();
    let df = conn.query(sql.as_str()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_kb();
    let hits = time_hits(&conn, &sql, &df, DEFAULT_HITS).await?;
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    println!(
        "load/sqlite: {} rows x {} columns generated in {generate_seconds:.2} s; cold query {:.1} ms \
         ({:.1} MiB of Arrow data in {:.1} MiB of buffers, process peak RSS {}); cache hit median {:.1} µs, max {:.1} µs over {} hits",
        df.num_rows(),
        df.num_columns(),
        seconds * 1e3,
        mib(used_bytes(&df) as f64),
        mib(df.arrow_bytes() as f64),
        peak.map_or_else(|| "n/a".to_owned(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0)),
        hits.median_us,
        hits.max_us,
        hits.count,
    );
    println!("(`cargo xtask bench` measures 1,000,000 rows on SQLite, PostgreSQL and MariaDB against connectorx)");
    Ok(())
}
