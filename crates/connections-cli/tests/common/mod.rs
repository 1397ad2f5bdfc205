//! Helpers of the CLI tests: a throw-away project, the real binary run inside it, and the
//! reference Arrow data read through the library.

#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use connections::SqlConnection;
use connections::arrow::array::RecordBatch;
use connections::arrow::compute::concat_batches;

/// The password planted in every secrets file: it must never appear in any output.
pub const PLANTED: &str = "PLANTED-s3cr3t-Pa55w0rd";

/// A throw-away home and project directory.
pub struct Project {
    root: tempfile::TempDir,
}

impl Project {
    /// Empty directories.
    pub fn new() -> Self {
        let project = Self { root: tempfile::tempdir().expect("a temporary directory") };
        std::fs::create_dir_all(project.home()).expect("home");
        std::fs::create_dir_all(project.dir().join(".streamlit")).expect("project");
        project
    }

    /// A project whose `pets_db` is a SQLite file with a `pets` table, and with a password
    /// planted in its secrets.
    pub fn with_pets() -> Self {
        let project = Self::new();
        project.secrets(&format!(
            "api_password = \"{PLANTED}\"\n\
             [connections.pets_db]\ntype = \"sql\"\nurl = \"sqlite:///pets.db\"\npassword = \"{PLANTED}\"\n"
        ));
        project.ok(&["execute", "pets_db", "create table pets (id integer, name text, owner text, weight real)"]);
        project.ok(&[
            "execute",
            "pets_db",
            "insert into pets values (1, 'Tom', 'Jerry', 4.5), (2, 'Rex, \"the dog\"', NULL, 30.25), \
             (3, 'Zoë', 'Jerry', NULL), (4, 'line\nbreak', 'Ann', -0.125)",
        ]);
        project
    }

    /// The directory standing in for `~`.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// The project directory.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("project")
    }

    /// Writes `.streamlit/secrets.toml` of the project.
    pub fn secrets(&self, text: &str) {
        std::fs::write(self.secrets_path(), text).expect("write secrets");
    }

    /// `.streamlit/secrets.toml` of the project.
    pub fn secrets_path(&self) -> PathBuf {
        self.dir().join(".streamlit/secrets.toml")
    }

    /// The binary, run in the project with this home.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_connections"));
        command.args(args).current_dir(self.dir()).env("HOME", self.home()).env_remove("RUST_BACKTRACE");
        command
    }

    /// Runs the binary.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run the binary"))
    }

    /// Runs the binary and expects success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, 0, "connections {args:?} failed:\n{}", run.stderr);
        run
    }

    /// The reference: `sql` through the library on the connection `url`, as one batch.
    pub fn reference(&self, url: &str, sql: &str) -> RecordBatch {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let store = connections::SecretsStore::builder().home_dir(self.home()).project_dir(self.dir()).build();
        let url = url.to_owned();
        runtime.block_on(async move {
            let conn = connections::connection("reference")
                .with_type("sql")
                .option("url", url)
                .secrets_store(store)
                .open_as::<SqlConnection>()
                .await
                .expect("open the reference connection");
            let frame = conn.query(sql).await.expect("the reference query");
            concat_batches(frame.schema(), frame.batches()).expect("one batch")
        })
    }

    /// The SQLite URL of `pets_db` for the library (absolute: the test runs elsewhere).
    pub fn pets_url(&self) -> String {
        format!("sqlite:///{}", self.dir().join("pets.db").display())
    }
}

/// What a run printed and its exit code.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stdout_bytes: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts a failure with `code`, a one-message error, no panic or backtrace.
    pub fn assert_failed(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("backtrace"), "{}", self.stderr);
        assert!(!self.stderr.contains(PLANTED), "the planted password leaked:\n{}", self.stderr);
        self
    }
}

/// The URL of a test server from `var`, or `None` with a notice (and a line in
/// `CONNECTIONS_TEST_SKIP_LOG`, where `cargo xtask test` counts skips).
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("skipped: {var} is not set, so this test has no server to run against");
            if let Some(log) = std::env::var_os("CONNECTIONS_TEST_SKIP_LOG") {
                use std::io::Write as _;
                let test = std::thread::current().name().unwrap_or("a test").to_owned();
                let file = std::fs::OpenOptions::new().create(true).append(true).open(log);
                let _ = file.and_then(|mut f| f.write_all(format!("{var}\t{test}\n").as_bytes()));
            }
            None
        }
    }
}

/// `url` with `password` put in its user information (the servers here trust the user, so
/// the password is carried but not checked).
pub fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or(user);
            format!("{scheme}://{user}:{password}@{host}")
        }
        None => format!("{scheme}://root:{password}@{rest}"),
    }
}

/// A table name no other run uses.
pub fn unique_table(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Files in `dir`, by name.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
