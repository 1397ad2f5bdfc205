//! `cargo xtask bench`: a cold `query` of a generated table into Arrow and a cache hit, on
//! SQLite, PostgreSQL and MariaDB, side by side with connectorx and `psql COPY` in one run.
//!
//! Every measurement is its own process: the `load` benchmark of the `connections` crate
//! (`crates/connections/benches/load.rs`, built once in the bench profile) for us,
//! `xtask/peer/connectorx_load.py` in a virtualenv for connectorx, and `psql` for PostgreSQL's
//! binary COPY. Each reports one line of JSON; the medians go into a table on stdout and into
//! `target/bench/results.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use xshell::{Shell, cmd};

mod mariadb_tls;
mod report;
mod snowflake;

use self::mariadb_tls::MariaDbTls;
use self::report::{NOTES, print_tables};
use self::snowflake::SnowflakeRun;
use crate::flags::{self, BenchBackend};
use crate::test::env_value;

/// PostgreSQL when `CONNECTIONS_TEST_POSTGRES_URL` is not set.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// MariaDB when `CONNECTIONS_TEST_MYSQL_URL` is not set.
const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
/// The connectorx release measured against.
const CONNECTORX: &str = "connectorx==0.4.*";
/// Everything the benchmark writes, under the project root.
const BENCH_DIR: &str = "target/bench";

impl flags::Bench {
    /// Builds the benchmark, prepares tables and peer, measures every backend, prints the
    /// table and writes `target/bench/results.json`.
    pub(crate) fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        let root = sh.current_dir();
        let dir = root.join(BENCH_DIR);
        sh.create_dir(&dir)?;
        let loadavg_start = loadavg();
        let git = git_state(sh);

        // Snowflake is measured on its own (bench/snowflake.rs): the emulator and the Python
        // connector, not connectorx
        let sql_backends: Vec<BenchBackend> =
            self.backends.iter().copied().filter(|b| *b != BenchBackend::Snowflake).collect();
        let exe = if sql_backends.is_empty() {
            None
        } else {
            step("build the load benchmark (bench profile)");
            let exe = build_load(sh)?;
            println!("load benchmark: {}", exe.display());
            Some(exe)
        };

        let peer = if self.no_peer {
            Err("left out (--no-peer)".to_owned())
        } else if sql_backends.is_empty() {
            Err("no SQL backend measured".to_owned())
        } else {
            step("connectorx in a virtualenv");
            setup_peer(sh, &dir)
        };
        match &peer {
            Ok(peer) => println!("connectorx: {}", peer.python.display()),
            Err(why) => println!("connectorx: not measured: {why}"),
        }
        let psql = Command::new("psql").arg("--version").output().is_ok_and(|out| out.status.success());

        let table = format!("connections_bench_{}", self.rows);
        let mut backends = Vec::new();
        for backend in &sql_backends {
            if !backends.contains(backend) {
                backends.push(*backend);
            }
        }
        // the throwaway TLS MariaDB is kept running until the measurements are done
        let (targets, mariadb_tls) = self.targets(sh, backends, &dir, &table);
        let mut runs = Vec::new();
        if let Some(exe) = &exe {
            for target in &targets {
                step(&format!("{}: {} ({table}, {} rows)", target.label, target.shown_url, self.rows));
                let run = BackendRun::measure(self, exe, target, peer.as_ref().ok(), psql);
                runs.push(run);
            }
        }
        let snowflake = self.backends.contains(&BenchBackend::Snowflake).then(|| {
            step(&format!("snowflake: the fakesnow emulator ({} rows x 5 columns)", self.rows));
            SnowflakeRun::measure(sh, self, exe.as_deref())
        });

        drop(mariadb_tls);
        let loadavg_end = loadavg();
        step(&format!("results: {} rows, median of {} cold runs, {} cache hits", self.rows, self.repeat, self.hits));
        print_results(&runs, snowflake.as_ref(), self.rows);
        println!("- load average (1, 5, 15 min): {loadavg_start} at the start, {loadavg_end} at the end");
        if let Some(dirty) = git.get("driver_uncommitted").and_then(Value::as_array).filter(|d| !d.is_empty()) {
            let files: Vec<&str> = dirty.iter().filter_map(Value::as_str).collect();
            println!("- measured with uncommitted changes to the driver: {}", files.join(", "));
        }

        let results = json!({
            "command": self.command_line(),
            "rows": self.rows,
            "table": table,
            "repeat": self.repeat,
            "hits": self.hits,
            "unix_time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "git": git,
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg_end,
            "peer": match &peer {
                Ok(peer) => json!({ "name": "connectorx", "python": peer.python }),
                Err(why) => json!({ "name": "connectorx", "not_measured": why }),
            },
            "notes": NOTES,
            "backends": runs.iter().map(BackendRun::to_json).collect::<Vec<_>>(),
            "snowflake": snowflake.as_ref().map(SnowflakeRun::to_json),
        });
        let path = dir.join("results.json");
        std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nwritten to {}", path.strip_prefix(&root).unwrap_or(&path).display());

        let mut failed: Vec<&str> = runs.iter().filter(|r| r.ours_failed()).map(|r| r.label.as_str()).collect();
        if snowflake.as_ref().is_some_and(SnowflakeRun::failed) {
            failed.push("snowflake");
        }
        if !failed.is_empty() {
            bail!("the load failed on {}: see the errors above", failed.join(", "));
        }
        Ok(())
    }

    /// The command that reproduces this run.
    fn command_line(&self) -> String {
        let backends: Vec<&str> = self.backends.iter().map(|b| b.name()).collect();
        let mut line = format!("cargo xtask bench --rows {} --backends {}", self.rows, backends.join(","));
        if self.no_peer {
            line.push_str(" --no-peer");
        }
        if self.repeat != 3 {
            let _ = write!(line, " --repeat {}", self.repeat);
        }
        if self.hits != 1000 {
            let _ = write!(line, " --hits {}", self.hits);
        }
        if self.tls {
            line.push_str(" --tls");
        }
        line
    }

    /// What to measure: one target per backend, and with `--tls` the plain and TLS rows
    /// (PostgreSQL on the shared server; MariaDB on a throwaway TLS server, returned so that
    /// it runs until the measurements are done).
    fn targets(
        &self,
        sh: &Shell,
        backends: Vec<BenchBackend>,
        dir: &std::path::Path,
        table: &str,
    ) -> (Vec<Target>, Option<MariaDbTls>) {
        let mut targets = Vec::new();
        let mut mariadb_tls = None;
        for backend in backends {
            let target = Target::new(sh, backend, dir, table);
            if self.tls && backend == BenchBackend::Postgres {
                targets.push(target.with_query("sslmode=disable", "sslmode=disable", ""));
                targets.push(target.with_query("sslmode=require", "sslmode=require", "+tls"));
            } else if self.tls && backend == BenchBackend::Mysql {
                targets.push(target);
                step("a throwaway MariaDB with TLS (the shared one has none)");
                match MariaDbTls::start(&dir.join("mariadb-tls")) {
                    Ok(server) => {
                        let at = Target::at(backend, "mysql/tls-server", &server.url(), table);
                        targets.push(at.with_query("ssl_mode=DISABLED", "", ""));
                        let verify = format!("ssl_mode=VERIFY_IDENTITY&ssl_ca={}", server.ca().display());
                        // connectorx 0.4's MySQL driver refuses every TLS URL parameter
                        // (`require_ssl`, `verify_ca`, ...: "Unknown URL parameter"), so the TLS
                        // row compares with our plain row on the same server
                        let mut tls = at.with_query(&verify, "", "+tls");
                        tls.peer = false;
                        targets.push(tls);
                        mariadb_tls = Some(server);
                    }
                    Err(err) => println!("MariaDB over TLS: not measured: {err:#}"),
                }
            } else {
                targets.push(target);
            }
        }
        (targets, mariadb_tls)
    }
}

impl BenchBackend {
    /// The name the load benchmark takes.
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Snowflake => "snowflake",
        }
    }
}

/// Prints the tables of the SQL backends and of Snowflake, each with its notes.
fn print_results(runs: &[BackendRun], snowflake: Option<&SnowflakeRun>, rows: u64) {
    if !runs.is_empty() {
        print_tables(runs);
        for note in NOTES {
            println!("- {note}");
        }
    }
    if let Some(snowflake) = snowflake {
        snowflake.print_table(rows);
        for note in snowflake::NOTES {
            println!("- {note}");
        }
    }
}

/// Prints the header line of a step.
fn step(title: &str) {
    println!("\n==> {title}");
}

/// Builds `benches/load.rs` with every SQL feature and returns the path of its executable.
fn build_load(sh: &Shell) -> anyhow::Result<PathBuf> {
    let out = cmd!(
        sh,
        "cargo bench --no-run -p connections --bench load --features sqlite,postgres,mysql --message-format=json-render-diagnostics"
    )
    .read()
    .context("cannot build the load benchmark")?;
    out.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "load")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .context("cargo built no executable for the load benchmark")
}

/// The Python of a virtualenv in which connectorx and pyarrow import.
struct Peer {
    python: PathBuf,
    script: PathBuf,
}

/// Creates `target/bench/venv` and installs connectorx and pyarrow into it unless they already
/// import there. The error says why connectorx cannot be measured.
fn setup_peer(sh: &Shell, dir: &Path) -> Result<Peer, String> {
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    let script = sh.current_dir().join("xtask/peer/connectorx_load.py");
    let imports = || {
        Command::new(&python)
            .args(["-c", "import connectorx, pyarrow"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !python.exists() {
        cmd!(sh, "python3 -m venv {venv}")
            .run()
            .map_err(|err| format!("cannot create a virtualenv with python3 -m venv: {err}"))?;
    }
    if !imports() {
        cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check {CONNECTORX} pyarrow")
            .run()
            .map_err(|err| format!("cannot install {CONNECTORX} and pyarrow: {err}"))?;
        if !imports() {
            return Err("connectorx or pyarrow does not import after installing".to_owned());
        }
    }
    Ok(Peer { python, script })
}

/// Where one backend's table is, for us and for connectorx.
struct Target {
    backend: BenchBackend,
    /// The name of the measurement: the backend's, with `+tls` for PostgreSQL over TLS.
    label: String,
    /// The URL our driver takes.
    url: String,
    /// The connection string connectorx takes.
    peer_url: String,
    /// Whether connectorx can read this target (its MySQL driver takes no TLS parameters).
    peer: bool,
    /// The URL without its password, for output.
    shown_url: String,
    table: String,
}

impl Target {
    fn new(sh: &Shell, backend: BenchBackend, dir: &Path, table: &str) -> Self {
        let (url, peer_url) = match backend {
            BenchBackend::Sqlite => {
                let file = dir.join("bench.db");
                // SQLAlchemy's absolute form has four slashes; connectorx's `sqlite://` + path.
                (format!("sqlite:///{}", file.display()), format!("sqlite://{}", file.display()))
            }
            BenchBackend::Postgres => {
                let url = env_value(sh, "CONNECTIONS_TEST_POSTGRES_URL").unwrap_or_else(|| DEFAULT_POSTGRES_URL.into());
                let peer = format!("postgresql://{}", url.split_once("://").map_or(url.as_str(), |(_, rest)| rest));
                (url, peer)
            }
            BenchBackend::Mysql => {
                let url = env_value(sh, "CONNECTIONS_TEST_MYSQL_URL").unwrap_or_else(|| DEFAULT_MYSQL_URL.into());
                let peer = format!("mysql://{}", url.split_once("://").map_or(url.as_str(), |(_, rest)| rest));
                (url, peer)
            }
            BenchBackend::Snowflake => unreachable!("Snowflake is measured by bench::snowflake, not as a SQL target"),
        };
        Self {
            backend,
            label: backend.name().to_owned(),
            shown_url: redact(&url),
            url,
            peer_url,
            peer: true,
            table: table.to_owned(),
        }
    }

    /// A MySQL target at `url` (ours and connectorx's alike), named `label`.
    fn at(backend: BenchBackend, label: &str, url: &str, table: &str) -> Self {
        Self {
            backend,
            label: label.to_owned(),
            shown_url: redact(url),
            url: url.to_owned(),
            peer_url: url.to_owned(),
            peer: true,
            table: table.to_owned(),
        }
    }

    /// This target with `ours` added to our URL's query and `peer` to connectorx's (each
    /// unless empty), and `suffix` inserted in its label after the backend's name (`+tls`).
    fn with_query(&self, ours: &str, peer: &str, suffix: &str) -> Self {
        let add = |url: &str, query: &str| {
            if query.is_empty() {
                return url.to_owned();
            }
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}{query}")
        };
        let url = add(&self.url, ours);
        let name = self.backend.name();
        Self {
            backend: self.backend,
            label: self
                .label
                .strip_prefix(name)
                .map_or_else(|| self.label.clone(), |rest| format!("{name}{suffix}{rest}")),
            shown_url: redact(&url),
            peer_url: add(&self.peer_url, peer),
            peer: self.peer,
            url,
            table: self.table.clone(),
        }
    }

    fn sql(&self) -> String {
        format!("select * from {}", self.table)
    }

    /// The load benchmark with this target's arguments and `mode`.
    fn load(&self, exe: &Path, mode: &str) -> Command {
        let mut command = Command::new(exe);
        command.args(["--backend", self.backend.name(), "--url", &self.url, "--table", &self.table, "--mode", mode]);
        command
    }
}

/// `scheme://user:password@host/...` with the password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

/// Runs `command` and parses the last line of its stdout as JSON. The error is the command's
/// stderr (or why it could not run).
fn run_json(mut command: Command) -> Result<Value, String> {
    let out = command.stdin(Stdio::null()).output().map_err(|err| format!("cannot start: {err}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if !out.status.success() {
        return Err(if stderr.is_empty() { format!("exited with {}", out.status) } else { stderr });
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    serde_json::from_str(line).map_err(|err| format!("not JSON ({err}): {line:?}; stderr: {stderr}"))
}

/// The wall clock of the whole `psql URL -c SQL > /dev/null` process.
fn run_psql(target: &Target, sql: &str) -> Result<f64, String> {
    let started = Instant::now();
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &target.url, "-c", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|err| format!("cannot start psql: {err}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if out.status.success() { Ok(seconds) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

/// Everything measured on one backend.
struct BackendRun {
    label: String,
    shown_url: String,
    generate: Result<Value, String>,
    ours: Vec<Value>,
    peer: Vec<Value>,
    copy: Vec<f64>,
    /// `psql -c "select 1"`: what psql's start and connection add to `copy`.
    psql_startup: Vec<f64>,
    hit: Option<Value>,
    /// Failures, each with the side that failed.
    errors: Vec<(String, String)>,
}

impl BackendRun {
    fn measure(bench: &flags::Bench, exe: &Path, target: &Target, peer: Option<&Peer>, psql: bool) -> Self {
        let mut run = Self {
            label: target.label.clone(),
            shown_url: target.shown_url.clone(),
            generate: Err("not run".to_owned()),
            ours: Vec::new(),
            peer: Vec::new(),
            copy: Vec::new(),
            psql_startup: Vec::new(),
            hit: None,
            errors: Vec::new(),
        };
        let name = target.label.as_str();

        let started = Instant::now();
        println!("{name}: checking {} for {} rows (generating it if needed)...", target.table, bench.rows);
        let mut generate = target.load(exe, "generate");
        generate.args(["--rows", &bench.rows.to_string()]);
        run.generate = run_json(generate);
        match &run.generate {
            Ok(v) if v["generated"] == true => {
                println!("{name}: generated {} rows in {:.1} s", v["rows"], started.elapsed().as_secs_f64());
            }
            Ok(v) => println!("{name}: {} already holds {} rows", target.table, v["rows"]),
            Err(err) => {
                println!("{name}: cannot make the table, skipping {name}:\n{}", indent(err));
                run.errors.push(("generate".to_owned(), err.clone()));
                return run;
            }
        }

        let copy_floor = psql && target.backend == BenchBackend::Postgres;
        for i in 1..=bench.repeat {
            let mut line = format!("{name} cold {i}/{}:", bench.repeat);
            match run_json(target.load(exe, "cold")) {
                Ok(v) => {
                    let _ = write!(line, " ours {:.3} s", v["seconds"].as_f64().unwrap_or(f64::NAN));
                    run.ours.push(v);
                }
                Err(err) => {
                    line.push_str(" ours FAILED");
                    run.error("ours", err);
                }
            }
            if let Some(peer) = peer.filter(|_| target.peer) {
                let mut command = Command::new(&peer.python);
                command.arg(&peer.script).args(["--url", &target.peer_url, "--query", &target.sql()]);
                match run_json(command) {
                    Ok(v) => {
                        let _ = write!(line, ", connectorx {:.3} s", v["seconds"].as_f64().unwrap_or(f64::NAN));
                        run.peer.push(v);
                    }
                    Err(err) => {
                        line.push_str(", connectorx FAILED");
                        run.error("connectorx", err);
                    }
                }
            }
            if copy_floor {
                let copy = format!("COPY ({}) TO STDOUT (FORMAT binary)", target.sql());
                match run_psql(target, &copy) {
                    Ok(seconds) => {
                        let _ = write!(line, ", psql COPY {seconds:.3} s");
                        run.copy.push(seconds);
                    }
                    Err(err) => {
                        line.push_str(", psql COPY FAILED");
                        run.error("psql COPY", err);
                    }
                }
                if let Ok(seconds) = run_psql(target, "select 1") {
                    let _ = write!(line, " (psql -c 'select 1' {seconds:.3} s)");
                    run.psql_startup.push(seconds);
                }
            }
            println!("{line}");
        }

        let mut hit = target.load(exe, "hit");
        hit.args(["--hits", &bench.hits.to_string()]);
        match run_json(hit) {
            Ok(v) => {
                println!(
                    "{name} cache hit: median {:.2} µs, max {:.2} µs over {} hits",
                    v["hit_median_us"].as_f64().unwrap_or(f64::NAN),
                    v["hit_max_us"].as_f64().unwrap_or(f64::NAN),
                    v["hits"]
                );
                run.hit = Some(v);
            }
            Err(err) => run.error("ours (cache hit)", err),
        }
        for (side, err) in &run.errors {
            println!("{name}: {side} failed:\n{}", indent(err));
        }
        run
    }

    /// Records a failure once per side and message.
    fn error(&mut self, side: &str, err: String) {
        if !self.errors.iter().any(|(s, e)| s == side && *e == err) {
            self.errors.push((side.to_owned(), err));
        }
    }

    /// Whether our side failed (rather than a peer).
    fn ours_failed(&self) -> bool {
        self.errors.iter().any(|(side, _)| side.starts_with("ours") || side == "generate")
    }

    fn ours_seconds(&self) -> Option<f64> {
        median(self.ours.iter().filter_map(|v| v["seconds"].as_f64()))
    }

    fn peer_seconds(&self) -> Option<f64> {
        median(self.peer.iter().filter_map(|v| v["seconds"].as_f64()))
    }

    fn copy_seconds(&self) -> Option<f64> {
        median(self.copy.iter().copied())
    }

    /// The median of a field of our cold runs, over the runs that have it.
    fn ours_median(&self, field: &str) -> Option<f64> {
        median(self.ours.iter().filter_map(|v| v[field].as_f64()))
    }

    fn peer_median(&self, field: &str) -> Option<f64> {
        median(self.peer.iter().filter_map(|v| v[field].as_f64()))
    }

    fn hit_us(&self, field: &str) -> Option<f64> {
        self.hit.as_ref().and_then(|v| v[field].as_f64())
    }

    fn to_json(&self) -> Value {
        let ours_s = self.ours_seconds();
        let rss = self.ours_median("peak_rss_kb");
        let arrow = self.ours_median("arrow_used_bytes");
        let allocated = self.ours_median("arrow_bytes");
        json!({
            "backend": self.label,
            "url": self.shown_url,
            "generate": match &self.generate { Ok(v) => v.clone(), Err(e) => json!({ "error": e }) },
            "ours": {
                "cold_median_seconds": ours_s,
                "peak_rss_median_kb": rss,
                "rss_before_median_kb": self.ours_median("rss_before_kb"),
                "open_median_seconds": self.ours_median("open_seconds"),
                "arrow_used_bytes": arrow,
                "arrow_bytes": allocated,
                "runs": self.ours,
            },
            "connectorx": {
                "cold_median_seconds": self.peer_seconds(),
                "peak_rss_median_kb": self.peer_median("peak_rss_kb"),
                "rss_before_median_kb": self.peer_median("rss_before_kb"),
                "arrow_bytes": self.peer_median("arrow_bytes"),
                "runs": self.peer,
            },
            "psql_copy": {
                "median_seconds": self.copy_seconds(),
                "runs_seconds": self.copy,
                "psql_select_1_median_seconds": median(self.psql_startup.iter().copied()),
                "psql_select_1_runs_seconds": self.psql_startup,
            },
            "cache_hit": self.hit,
            "ratios": {
                "ours_over_connectorx": ratio(ours_s, self.peer_seconds()),
                "ours_over_psql_copy": ratio(ours_s, self.copy_seconds()),
                "peak_rss_over_arrow": ratio(rss.map(|kb| kb * 1024.0), arrow),
                "peak_rss_over_arrow_allocated": ratio(rss.map(|kb| kb * 1024.0), allocated),
            },
            "errors": self.errors.iter().map(|(side, err)| json!({ "side": side, "error": err })).collect::<Vec<_>>(),
        })
    }
}

/// The median, or `None` for no values.
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { f64::midpoint(values[mid - 1], values[mid]) })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Indents every line of a multi-line message.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// `/proc/loadavg`'s three load averages, or `"n/a"`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "n/a".to_owned(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// The commit, and the uncommitted files of the driver and the core, which the measured build
/// includes.
fn git_state(sh: &Shell) -> Value {
    let commit = cmd!(sh, "git rev-parse HEAD").quiet().ignore_stderr().read().ok();
    let dirty = cmd!(sh, "git status --porcelain -- crates/connections-sql crates/connections-core")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .map(|out| out.lines().map(|l| l.get(3..).unwrap_or(l).to_owned()).collect::<Vec<_>>());
    json!({ "commit": commit, "driver_uncommitted": dirty })
}

#[cfg(test)]
mod tests {
    use super::{median, redact};

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("mysql://root@127.0.0.1:3306/test"), "mysql://root@127.0.0.1:3306/test");
        assert_eq!(redact("sqlite:////tmp/a@b:c.db"), "sqlite:////tmp/a@b:c.db");
    }
}
