//! `cargo xtask bench --backends snowflake`: 1,000,000 rows x 5 columns from the fakesnow
//! emulator, through the Python connector's `fetch_arrow_all` and `fetch_pandas_all`, and the
//! raw HTTP time of the same query response (the floor), in one run, each a fresh process
//! (`xtask/peer/snowflake_load.py` in the emulator's virtualenv, with pandas added).
//!
//! Our driver's measurement plugs in at [`measure_ours`].

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use xshell::Shell;

use super::{median, ratio, run_json};
use crate::flags;
use crate::services::{Emulator, for_tests};

/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// What the benchmark adds to the emulator's virtualenv (`fetch_pandas_all` needs pandas;
/// pyarrow comes with fakesnow).
const EXTRA: [&str; 1] = ["pandas"];

/// The sides measured, in the order they run and appear: (mode of the script, label).
const PEERS: [(&str, &str); 3] = [("raw", "raw HTTP"), ("arrow", "fetch_arrow_all"), ("pandas", "fetch_pandas_all")];

/// How the Snowflake figures are measured; printed under its table and kept in the JSON.
pub(super) const NOTES: [&str; 3] = [
    "snowflake: fakesnow 0.12.1 (the emulator, in-memory DuckDB) on 127.0.0.1, which answers every result \
     inline as one base64 Arrow IPC stream; seconds are wall clock in-process around the query alone \
     (login outside): fetch_arrow_all = `cursor.execute(sql).fetch_arrow_all()`, fetch_pandas_all likewise, \
     raw HTTP = POST /queries/v1/query-request with http.client until the last byte of the response (the \
     floor: the emulator's own time plus transport, nothing decoded)",
    "snowflake RSS = peak resident set of the whole Python process (ru_maxrss) after the query; Arrow MiB = \
     pyarrow Table.nbytes of fetch_arrow_all's table",
    "snowflake ours = the Rust driver through the `load` benchmark; not measured until that benchmark \
     knows `--backend snowflake` (see xtask/src/bench/snowflake.rs, measure_ours)",
];

/// The measurements of one Snowflake run.
pub(super) struct SnowflakeRun {
    prepare: Result<Value, String>,
    /// Per side (script mode), every cold measurement.
    peers: Vec<(&'static str, &'static str, Vec<Value>)>,
    ours: Vec<Value>,
    ours_missing: Option<String>,
    errors: Vec<(String, String)>,
}

impl SnowflakeRun {
    /// Installs and starts the emulator (unless `CONNECTIONS_TEST_SNOWFLAKE_URL` names one or
    /// `cargo xtask services` left one running), loads the table, measures every side.
    pub(super) fn measure(sh: &Shell, bench: &flags::Bench, exe: Option<&Path>) -> Self {
        let mut run = Self {
            prepare: Err("not run".to_owned()),
            peers: PEERS.iter().map(|(mode, label)| (*mode, *label, Vec::new())).collect(),
            ours: Vec::new(),
            ours_missing: None,
            errors: Vec::new(),
        };
        let emulator = Emulator::new(sh);
        let python = match emulator.install(sh, &EXTRA) {
            Ok(python) => python,
            Err(err) => {
                run.errors.push(("setup".to_owned(), format!("{err:#}")));
                return run;
            }
        };
        // `_server` keeps an emulator started here running until the measurements are done
        let (url, _server) = match for_tests(sh) {
            Ok(found) => found,
            Err(err) => {
                run.errors.push(("emulator".to_owned(), format!("{err:#}")));
                return run;
            }
        };
        let Some(port) = url.rsplit_once(':').and_then(|(_, port)| port.trim_end_matches('/').parse::<u16>().ok())
        else {
            run.errors.push(("emulator".to_owned(), format!("no port in {url}")));
            return run;
        };
        println!("snowflake: emulator at {url}");
        let script = sh.current_dir().join("xtask/peer/snowflake_load.py");
        let peer = |mode: &str| {
            let mut command = Command::new(&python);
            command.arg(&script).args(["--port", &port.to_string(), "--rows", &bench.rows.to_string(), "--mode", mode]);
            command
        };

        run.prepare = run_json(peer("prepare"));
        match &run.prepare {
            Ok(v) if v["generated"] == true => {
                println!(
                    "snowflake: generated {} rows in {:.1} s",
                    v["rows"],
                    v["seconds"].as_f64().unwrap_or(f64::NAN)
                );
            }
            Ok(v) => println!("snowflake: {} already holds {} rows", v["table"], v["rows"]),
            Err(err) => {
                run.errors.push(("prepare".to_owned(), err.clone()));
                return run;
            }
        }

        for i in 1..=bench.repeat {
            let mut line = format!("snowflake cold {i}/{}:", bench.repeat);
            match measure_ours(exe, &url, bench.rows) {
                Ok(v) => {
                    let _ = write!(line, " ours {:.3} s,", v["seconds"].as_f64().unwrap_or(f64::NAN));
                    run.ours.push(v);
                }
                Err(why) => run.ours_missing = Some(why),
            }
            for (mode, label, values) in &mut run.peers {
                match run_json(peer(mode)) {
                    Ok(v) => {
                        let _ = write!(line, " {label} {:.3} s", v["seconds"].as_f64().unwrap_or(f64::NAN));
                        values.push(v);
                    }
                    Err(err) => {
                        let _ = write!(line, " {label} FAILED");
                        if !run.errors.iter().any(|(side, e)| side == label && *e == err) {
                            run.errors.push(((*label).to_owned(), err));
                        }
                    }
                }
            }
            println!("{line}");
        }
        for (side, err) in &run.errors {
            println!("snowflake: {side} failed:\n{}", super::indent(err));
        }
        run
    }

    fn median_of(&self, mode: &str, field: &str) -> Option<f64> {
        let (_, _, values) = self.peers.iter().find(|(m, _, _)| *m == mode)?;
        median(values.iter().filter_map(|v| v[field].as_f64()))
    }

    fn ours_median(&self, field: &str) -> Option<f64> {
        median(self.ours.iter().filter_map(|v| v[field].as_f64()))
    }

    /// Prints the Snowflake table, as Markdown.
    pub(super) fn print_table(&self, rows: u64) {
        let secs = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let mib = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let times = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}x"));
        let arrow = self.median_of("arrow", "seconds");
        let raw = self.median_of("raw", "seconds");
        let ours = self.ours_median("seconds");
        let kb = |v: Option<f64>| v.map(|kb| kb * 1024.0 / MIB);
        let header = [
            "backend",
            "rows",
            "ours (s)",
            "fetch_arrow_all (s)",
            "fetch_pandas_all (s)",
            "raw HTTP (s)",
            "ours/arrow",
            "ours/raw",
            "arrow/raw",
            "ours peak RSS (MiB)",
            "arrow peak RSS (MiB)",
            "pandas peak RSS (MiB)",
            "Arrow (MiB)",
            "response (MiB)",
        ];
        let cells = [
            "snowflake (fakesnow)".to_owned(),
            rows.to_string(),
            secs(ours),
            secs(arrow),
            secs(self.median_of("pandas", "seconds")),
            secs(raw),
            times(ratio(ours, arrow)),
            times(ratio(ours, raw)),
            times(ratio(arrow, raw)),
            mib(kb(self.ours_median("peak_rss_kb"))),
            mib(kb(self.median_of("arrow", "peak_rss_kb"))),
            mib(kb(self.median_of("pandas", "peak_rss_kb"))),
            mib(self.median_of("arrow", "arrow_bytes").map(|b| b / MIB)),
            mib(self.median_of("raw", "response_bytes").map(|b| b / MIB)),
        ];
        println!("\n| {} |", header.join(" | "));
        println!("|{}", "---|".repeat(header.len()));
        println!("| {} |", cells.join(" | "));
        if let Some(why) = &self.ours_missing {
            println!("\nours: not measured: {why}");
        }
    }

    /// The run for `results.json`.
    pub(super) fn to_json(&self) -> Value {
        let side = |mode: &str| {
            json!({
                "seconds_median": self.median_of(mode, "seconds"),
                "peak_rss_median_kb": self.median_of(mode, "peak_rss_kb"),
                "rss_before_median_kb": self.median_of(mode, "rss_before_kb"),
                "runs": self.peers.iter().find(|(m, _, _)| *m == mode).map(|(_, _, v)| v.clone()),
            })
        };
        json!({
            "name": "snowflake",
            "emulator": "fakesnow 0.12.1",
            "prepare": match &self.prepare { Ok(v) => v.clone(), Err(e) => json!({ "error": e }) },
            "ours": if self.ours.is_empty() {
                json!({ "not_measured": self.ours_missing })
            } else {
                json!({
                    "seconds_median": self.ours_median("seconds"),
                    "peak_rss_median_kb": self.ours_median("peak_rss_kb"),
                    "runs": self.ours,
                })
            },
            "raw_http": side("raw"),
            "fetch_arrow_all": side("arrow"),
            "fetch_pandas_all": side("pandas"),
            "arrow_bytes_median": self.median_of("arrow", "arrow_bytes"),
            "ratios": {
                "ours_over_fetch_arrow_all": ratio(self.ours_median("seconds"), self.median_of("arrow", "seconds")),
                "ours_over_raw_http": ratio(self.ours_median("seconds"), self.median_of("raw", "seconds")),
                "fetch_arrow_all_over_raw_http": ratio(self.median_of("arrow", "seconds"), self.median_of("raw", "seconds")),
            },
            "errors": self.errors.iter().map(|(side, err)| json!({ "side": side, "error": err })).collect::<Vec<_>>(),
        })
    }

    /// Whether nothing could be measured (no emulator, no table).
    pub(super) fn failed(&self) -> bool {
        self.peers.iter().all(|(_, _, values)| values.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// PLUG-IN POINT for the Rust driver (connections-snowflake).
//
// When the `load` benchmark (crates/connections/benches/load.rs) can open a `snowflake`
// connection, run it here as a fresh process, the way `BackendRun::measure` does for the SQL
// backends: e.g. `exe --backend snowflake --url <emulator url> --table
// BENCH.PUBLIC.CONNECTIONS_BENCH_<rows> --mode cold` (host, port and protocol=http from the URL;
// account "fakesnow", user "fake", password "snow"), and return its JSON line (`seconds`,
// `peak_rss_kb`, `rss_before_kb`, `arrow_bytes`, ...). The table prints `ours` and the ratios to
// fetch_arrow_all and to the raw HTTP floor as soon as this returns `Ok`. Also build the
// benchmark with the `snowflake` feature in `build_load` and pass `exe` when only snowflake is
// measured.
// ---------------------------------------------------------------------------------------------
/// Our driver's cold load of the benchmark table from the emulator at `url`: its JSON line, or
/// why it is not measured.
fn measure_ours(exe: Option<&Path>, url: &str, rows: u64) -> Result<Value, String> {
    let _ = (exe, url, rows);
    Err("the Rust Snowflake driver is not wired into the load benchmark yet".to_owned())
}
