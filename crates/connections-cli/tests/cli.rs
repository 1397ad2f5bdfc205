//! The `connections` binary, driven as a user would: every subcommand, failures and their exit
//! codes, atomic `--output`, Ctrl-C, the environment export, and no secret in any output.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test code

mod common;

use std::time::{Duration, Instant};

use common::{PLANTED, Project, files_in};

#[test]
fn execute_prints_rows_affected() {
    let project = Project::with_pets();
    let run = project.ok(&["execute", "pets_db", "update pets set owner = :o where owner = 'Jerry'", "-p", "o=Tom"]);
    assert_eq!(run.stdout, "2\n");
    assert!(run.stderr.contains("2 rows affected in "), "{}", run.stderr);
    assert_eq!(
        project.ok(&["query", "pets_db", "select count(*) as n from pets where owner = 'Tom'", "-f", "csv"]).stdout,
        "n\n2\n"
    );
}

#[test]
fn check_reports_type_origins_and_latency_without_values() {
    let project = Project::with_pets();
    let run = project.ok(&["check", "pets_db", "--set", "pool_size=2"]);
    let secrets = project.secrets_path();
    let origin = format!("from {} [connections.pets_db]", secrets.display());
    assert!(run.stdout.contains("type        sql"), "{}", run.stdout);
    for key in ["type", "url", "password"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains("redacted") && l.split_whitespace().any(|w| w == key))
            .unwrap_or_default();
        assert!(line.contains("<string, redacted>") && line.contains(&origin), "{key}: {}", run.stdout);
    }
    assert!(run.stdout.contains("pool_size") && run.stdout.contains("--set on the command line"), "{}", run.stdout);
    assert!(run.stdout.contains("round trip") && run.stdout.contains("(select 1)"), "{}", run.stdout);
    assert!(!run.stdout.contains("sqlite:///pets.db") && !run.stdout.contains(PLANTED), "{}", run.stdout);
}

#[test]
fn types_lists_the_registered_types() {
    let project = Project::new();
    let run = project.ok(&["types"]);
    let sql = run.stdout.lines().find(|l| l.starts_with("sql ")).unwrap_or_default();
    assert!(sql.contains("connections_sql") && sql.ends_with("no"), "{}", run.stdout);
    let json: serde_json::Value = serde_json::from_str(&project.ok(&["types", "--json"]).stdout).unwrap();
    let sql = json.as_array().unwrap().iter().find(|t| t["name"] == "sql").unwrap();
    assert_eq!((sql["crate"].as_str(), sql["deprecated"].as_bool()), (Some("connections_sql"), Some(false)));
}

#[test]
fn secrets_shows_files_and_redacted_keys_and_one_value_on_purpose() {
    let project = Project::with_pets();
    project.secrets(&format!(
        "api_password = \"{PLANTED}\"\nflags = [1, 2]\n[connections.pets_db]\ntype = \"sql\"\nurl = \"sqlite:///pets.db\"\n"
    ));
    let run = project.ok(&["secrets"]);
    let global = project.home().join(".streamlit/secrets.toml");
    assert!(run.stdout.contains(&format!("{} (not found)", global.display())), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("{} (found)", project.secrets_path().display())), "{}", run.stdout);
    for (key, kind) in
        [("api_password", "<string>"), ("flags", "<array of 2>"), ("connections.pets_db.url", "<string>")]
    {
        assert!(run.stdout.lines().any(|l| l.contains(key) && l.contains(kind)), "{key}: {}", run.stdout);
    }
    assert!(!run.stdout.contains(PLANTED) && !run.stdout.contains("sqlite:///"), "{}", run.stdout);

    let json: serde_json::Value = serde_json::from_str(&project.ok(&["secrets", "--json"]).stdout).unwrap();
    assert_eq!(json["keys"]["connections"]["pets_db"]["url"], "<string>");
    assert_eq!(json["found"][0], project.secrets_path().display().to_string());
    assert!(!json.to_string().contains(PLANTED));

    assert_eq!(project.ok(&["secrets", "--show", "api_password"]).stdout, format!("{PLANTED}\n"));
    assert_eq!(project.ok(&["secrets", "--show", "flags", "--json"]).stdout, "[\n  1,\n  2\n]\n");
    let missing = project.run(&["secrets", "--show", "connections.nope"]);
    missing.assert_failed(1);
    assert!(missing.stderr.contains("connections.nope"), "{}", missing.stderr);
}

#[test]
fn completions_and_help_with_examples() {
    let project = Project::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = project.ok(&["completions", shell]);
        assert!(run.stdout.contains("connections") && run.stdout.contains("query"), "{shell}");
    }
    for command in ["query", "execute", "check", "types", "secrets", "completions"] {
        let help = project.ok(&[command, "--help"]).stdout;
        assert!(help.contains("Example"), "{command} --help has no example:\n{help}");
    }
    assert!(project.ok(&["--help"]).stdout.contains("Examples:"));
}

#[test]
fn usage_errors_exit_with_2() {
    let project = Project::with_pets();
    for args in [
        &["query", "pets_db"][..],
        &["query", "pets_db", "select 1", "--format", "xml"],
        &["query", "pets_db", "select 1", "--param", "novalue"],
        &["frobnicate"],
        &["-v", "-q", "types"],
    ] {
        let run = project.run(args);
        run.assert_failed(2);
        assert!(run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn bad_sql_fails_with_the_database_message() {
    let project = Project::with_pets();
    let run = project.run(&["query", "pets_db", "select * fro pets"]);
    run.assert_failed(1);
    assert!(run.stderr.contains("error: query on connection \"pets_db\" failed\n"), "{}", run.stderr);
    assert!(run.stderr.contains("caused by:") && run.stderr.contains("syntax error"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let run = project.run(&["execute", "pets_db", "insert into nowhere values (1)"]);
    run.assert_failed(1);
    assert!(run.stderr.contains("no such table: nowhere"), "{}", run.stderr);
}

#[test]
fn an_unknown_connection_lists_the_configured_ones() {
    let project = Project::with_pets();
    let run = project.run(&["query", "pets_bd", "select 1"]);
    run.assert_failed(1);
    assert!(run.stderr.contains("cannot tell the type of connection \"pets_bd\""), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "hint: no [connections.pets_bd] in the secrets; configured connections: pets_db (did you mean \"pets_db\"?)"
        ),
        "{}",
        run.stderr
    );
    let run = project.run(&["check", "pets_db", "--type", "sqll"]);
    run.assert_failed(1);
    assert!(run.stderr.contains("no connection type named \"sqll\""), "{}", run.stderr);
    assert!(run.stderr.contains("hint: `connections types`"), "{}", run.stderr);
}

#[test]
fn a_malformed_secrets_file_is_named_with_line_and_key() {
    let project = Project::with_pets();
    project.secrets(&format!("[connections.pets_db]\ntype = \"sql\"\npassword = \"{PLANTED}\"\ntype = \"x\"\n"));
    let expected =
        format!("cannot parse {} at line 4, column 1: duplicate key `type`", project.secrets_path().display());
    for args in [&["secrets"][..], &["query", "pets_db", "select 1"], &["check", "pets_db"], &["-vvv", "secrets"]] {
        let run = project.run(args);
        run.assert_failed(1);
        assert!(run.stderr.contains(&expected), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("hint: fix the file"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn no_secrets_at_all_says_where_it_looked() {
    let project = Project::new();
    let run = project.run(&["check", "pets_db"]);
    run.assert_failed(1);
    assert!(run.stderr.contains("no secrets found; searched: "), "{}", run.stderr);
    assert!(run.stderr.contains("hint: no secrets were read"), "{}", run.stderr);
}

#[test]
fn output_into_a_missing_directory_fails_before_the_query_and_creates_nothing() {
    let project = Project::with_pets();
    let before = files_in(&project.dir());
    let run = project.run(&["query", "pets_db", "select * from pets", "-f", "csv", "-o", "missing/pets.csv"]);
    run.assert_failed(1);
    assert!(
        run.stderr.contains("cannot write to missing/pets.csv: the directory missing does not exist"),
        "{}",
        run.stderr
    );
    assert_eq!(files_in(&project.dir()), before);
}

#[test]
fn a_failed_query_leaves_no_file_and_keeps_the_old_one() {
    let project = Project::with_pets();
    let target = project.dir().join("out.csv");
    std::fs::write(&target, "old\n").unwrap();
    let before = files_in(&project.dir());
    let run = project.run(&["query", "pets_db", "select * from nowhere", "-f", "csv", "-o", "out.csv"]);
    run.assert_failed(1);
    assert_eq!(files_in(&project.dir()), before, "no temporary file left");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n", "the old file is untouched");
    project.ok(&["query", "pets_db", "select id from pets order by id", "-f", "csv", "-o", "out.csv"]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "id\n1\n2\n3\n4\n");
}

#[test]
fn ctrl_c_during_an_export_leaves_no_file() {
    let project = Project::with_pets();
    let out = project.dir().join("exports");
    std::fs::create_dir(&out).unwrap();
    // a result that takes seconds to write
    let sql = "with recursive c(x) as (select 1 union all select x + 1 from c where x < 50000000) \
               select x, 'row number ' || x as label from c";
    let child = project
        .command(&["query", "pets_db", sql, "-f", "csv", "-o", "exports/big.csv"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // wait until the temporary file holds data: the export is under way
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = loop {
        let started =
            std::fs::read_dir(&out).unwrap().filter_map(Result::ok).find(|e| e.metadata().is_ok_and(|m| m.len() > 0));
        if let Some(entry) = started {
            break entry.file_name().to_string_lossy().into_owned();
        }
        assert!(Instant::now() < deadline, "the export never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(partial.ends_with(".partial"), "{partial}");
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));
    assert_eq!(files_in(&out), Vec::<String>::new(), "nothing left behind");
}

#[test]
fn project_flag_reads_that_directory() {
    let project = Project::with_pets();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = project.dir();
    let run = project
        .command(&[
            "--project",
            dir.to_str().unwrap(),
            "query",
            "pets_db",
            "select count(*) as n from pets",
            "-f",
            "csv",
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "n\n4\n", "{}", String::from_utf8_lossy(&run.stderr));
    let missing = project.run(&["--project", "/nonexistent/dir", "types"]);
    missing.assert_failed(1);
    assert!(
        missing.stderr.contains("cannot use /nonexistent/dir as the project directory (--project)"),
        "{}",
        missing.stderr
    );
}

#[test]
fn export_env_happens_only_when_asked() {
    let project = Project::with_pets();
    project.secrets("CLI_TEST_DB = \"pets_db\"\n[connections.pets_db]\ntype = \"sql\"\nurl = \"sqlite:///pets.db\"\n");
    // `env:VAR` names read the connection name from the environment
    let args = ["query", "env:CLI_TEST_DB", "select count(*) as n from pets", "-f", "csv"];
    let without = project.run(&args);
    without.assert_failed(1);
    assert!(without.stderr.contains("CLI_TEST_DB, which is not set"), "{}", without.stderr);
    let with: Vec<&str> = std::iter::once("--export-env").chain(args).collect();
    assert_eq!(project.ok(&with).stdout, "n\n4\n");
}

#[test]
fn quiet_prints_nothing_but_the_result_and_a_pipe_gets_no_spinner() {
    let project = Project::with_pets();
    let run = project.ok(&["-q", "query", "pets_db", "select id from pets order by id", "-f", "csv"]);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("id\n1\n2\n3\n4\n", ""));
    let run = project.ok(&["query", "pets_db", "select id from pets", "-f", "csv"]);
    // stderr is a pipe: the summary line only, no spinner frames or cursor control
    assert!(run.stderr.lines().any(|l| l.starts_with("4 rows in ")), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}') && !run.stderr.contains('\r'), "{:?}", run.stderr);
}

/// Every subcommand, successful or not, at the highest verbosity: the planted password never
/// appears on stdout or stderr (except through `secrets --show`, asked for on purpose).
#[test]
fn no_output_at_any_verbosity_contains_the_planted_password() {
    let project = Project::with_pets();
    let runs: Vec<Vec<&str>> = vec![
        vec!["query", "pets_db", "select * from pets"],
        vec!["query", "pets_db", "select * from pets", "-f", "json"],
        vec!["query", "pets_db", "select * from pets", "-f", "arrow"],
        vec!["query", "pets_db", "select * fro pets"],
        vec!["query", "pets_db", "select 1", "--set", "pool_size=x"],
        vec!["query", "nope", "select 1"],
        vec!["execute", "pets_db", "delete from pets where id = 0"],
        vec!["check", "pets_db"],
        vec!["check", "pets_db", "--type", "nosuchtype"],
        vec!["types"],
        vec!["secrets"],
        vec!["secrets", "--json"],
        vec!["--export-env", "secrets"],
        vec!["secrets", "--show", "connections.pets_db.nope"],
    ];
    for verbosity in ["-vvv", "-v", "-q"] {
        for args in &runs {
            let all: Vec<&str> = std::iter::once(verbosity).chain(args.iter().copied()).collect();
            let run = project.run(&all);
            assert!(run.code == 0 || run.code == 1, "{all:?}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{all:?}: {}", run.stderr);
            assert!(
                !run.stdout.contains(PLANTED) && !run.stderr.contains(PLANTED),
                "{all:?} printed the planted password:\n{}\n{}",
                run.stdout,
                run.stderr
            );
            if verbosity == "-vvv" {
                assert!(!run.stderr.is_empty(), "{all:?}: -vvv logs something");
            }
        }
    }
}

/// On a terminal (a pseudo-terminal from util-linux `script`), a spinner counts rows while the
/// query runs; with `-q`, nothing is drawn.
#[test]
fn a_terminal_gets_a_spinner_unless_quiet() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed, so no pseudo-terminal to test the spinner on");
        return;
    }
    let project = Project::with_pets();
    let bin = env!("CARGO_BIN_EXE_connections");
    let sql = "with recursive c(x) as (select 1 union all select x + 1 from c where x < 400000) select x from c";
    let on_terminal = |quiet: &str| {
        let line = format!("{bin} {quiet} query pets_db '{sql}' -f csv -o big.csv");
        let run = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .current_dir(project.dir())
            .env("HOME", project.home())
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        String::from_utf8_lossy(&run.stdout).into_owned()
    };
    let shown = on_terminal("");
    assert!(shown.contains("\u{1b}[2K") && shown.contains(" rows"), "no spinner on a terminal: {shown:?}");
    assert!(shown.contains("400000 rows in "), "{shown:?}");
    let quiet = on_terminal("-q");
    assert!(!quiet.contains('\u{1b}') && !quiet.contains("rows"), "-q drew something: {quiet:?}");
}

/// Type `snowflake` against the emulator (`CONNECTIONS_TEST_SNOWFLAKE_URL`): the result is
/// streamed (the debug log says which path served), an empty result keeps its columns, and
/// `:name` parameters are bound on the server.
#[test]
fn snowflake_results_stream_with_their_schema_and_bound_parameters() {
    let Some(url) = common::server_url("CONNECTIONS_TEST_SNOWFLAKE_URL") else { return };
    let (host, port) = url.trim_end_matches('/').trim_start_matches("http://").rsplit_once(':').expect("host:port");
    let project = Project::new();
    project.secrets(&format!(
        "[connections.sf]\ntype = \"snowflake\"\naccount = \"fakesnow\"\nuser = \"fake\"\npassword = \"{PLANTED}\"\n\
         host = \"{host}\"\nport = {port}\nprotocol = \"http\"\n"
    ));
    let sql = "select n, 'row ' || n as s from (select seq4() as n from table(generator(rowcount => 5))) \
               where n >= :low order by n";
    let run = project.ok(&["-vv", "query", "sf", sql, "--param", "low=3", "-f", "csv"]);
    assert_eq!(run.stdout, "N,S\n3,row 3\n4,row 4\n", "{}", run.stderr);
    assert!(run.stderr.contains("streaming the result"), "not the streamed path:\n{}", run.stderr);
    assert!(!run.stderr.contains(PLANTED) && !run.stdout.contains(PLANTED));
    // no rows: the header still names the columns
    let run = project.ok(&["query", "sf", sql, "--param", "low=99", "-f", "csv"]);
    assert_eq!(run.stdout, "N,S\n");
}
