//! `cargo xtask services`: the Snowflake emulator the tests run against.
//!
//! The emulator is [fakesnow](https://github.com/tekumara/fakesnow)'s HTTP server, installed
//! into a virtualenv under `target/snowflake-emulator/venv` with the pinned
//! [`REQUIREMENTS`] (skipped when that venv already holds them) and started on a free
//! 127.0.0.1 port. The tests find it through `CONNECTIONS_TEST_SNOWFLAKE_URL`.
//!
//! `cargo xtask services` starts it in the background and leaves it running (its URL goes to
//! `target/snowflake-emulator/url`, its process id to `.../pid`, its log to `.../server.log`);
//! `cargo xtask services --stop` stops it. `cargo xtask test` reuses a server started that way
//! or starts its own for the length of the test run.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::flags;

/// The variable naming the emulator's URL for the tests (`http://127.0.0.1:PORT`).
pub(crate) const SNOWFLAKE_URL_VAR: &str = "CONNECTIONS_TEST_SNOWFLAKE_URL";

/// What the emulator's virtualenv holds, pinned. `snowflake-connector-python` 5.x breaks
/// fakesnow's import, hence a 4.x release.
pub(crate) const REQUIREMENTS: [&str; 2] = ["fakesnow[server]==0.12.1", "snowflake-connector-python==4.8.1"];

/// Everything the emulator keeps, under the project root.
const EMULATOR_DIR: &str = "target/snowflake-emulator";

/// How long the emulator may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl flags::Services {
    /// Starts the emulator in the background (or finds the one already running), prints
    /// `CONNECTIONS_TEST_SNOWFLAKE_URL=...`, or stops it with `--stop`.
    pub(crate) fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        let emulator = Emulator::new(sh);
        if self.stop {
            return emulator.stop_background();
        }
        if let Some(url) = emulator.background_url() {
            println!("the Snowflake emulator is already running (pid file {})", emulator.pid_file().display());
            println!("{SNOWFLAKE_URL_VAR}={url}");
            return Ok(());
        }
        let python = emulator.install(sh, &[])?;
        let server = emulator.start(&python, true)?;
        std::fs::write(emulator.pid_file(), format!("{}\n", server.child.id()))?;
        std::fs::write(emulator.url_file(), format!("{}\n", server.url))?;
        println!("the Snowflake emulator runs in the background; stop it with `cargo xtask services --stop`");
        println!("log: {}", emulator.log_file().display());
        println!("{SNOWFLAKE_URL_VAR}={}", server.url);
        // leave it running: forget the guard that would stop it
        std::mem::forget(server);
        Ok(())
    }
}

/// The emulator's files under `target/snowflake-emulator`.
pub(crate) struct Emulator {
    dir: PathBuf,
}

impl Emulator {
    /// The emulator of the project `sh` runs in.
    pub(crate) fn new(sh: &Shell) -> Self {
        Self { dir: sh.current_dir().join(EMULATOR_DIR) }
    }

    /// The virtualenv's directory.
    pub(crate) fn venv(&self) -> PathBuf {
        self.dir.join("venv")
    }

    /// The virtualenv's Python.
    pub(crate) fn python(&self) -> PathBuf {
        self.venv().join("bin/python")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }

    fn url_file(&self) -> PathBuf {
        self.dir.join("url")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Creates the virtualenv and installs [`REQUIREMENTS`] plus `extra` into it, unless its
    /// stamp file says they are installed already. Returns the venv's Python.
    pub(crate) fn install(&self, sh: &Shell, extra: &[&str]) -> anyhow::Result<PathBuf> {
        let python = self.python();
        let venv = self.venv();
        let wanted: Vec<&str> = REQUIREMENTS.iter().copied().chain(extra.iter().copied()).collect();
        let stamp = venv.join(if extra.is_empty() { "connections-installed.txt" } else { "connections-extra.txt" });
        let stamp_text = wanted.join("\n") + "\n";
        if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|text| text == stamp_text) {
            return Ok(python);
        }
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        if !python.exists() {
            println!("creating a virtualenv for the Snowflake emulator in {}", venv.display());
            cmd!(sh, "python3 -m venv {venv}").run().context("cannot create a virtualenv with `python3 -m venv`")?;
        }
        println!("installing {} into {}", wanted.join(" "), venv.display());
        let packages = &wanted;
        cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check {packages...}")
            .run()
            .with_context(|| format!("cannot install {}", wanted.join(" ")))?;
        std::fs::write(&stamp, stamp_text)?;
        if !extra.is_empty() {
            std::fs::write(venv.join("connections-installed.txt"), REQUIREMENTS.join("\n") + "\n")?;
        }
        Ok(python)
    }

    /// Starts fakesnow's server on a free 127.0.0.1 port and waits until it answers. The
    /// server stops when the returned guard is dropped. `detached`: in a process group of its
    /// own, so that Ctrl-C in the terminal that started it does not stop it.
    pub(crate) fn start(&self, python: &Path, detached: bool) -> anyhow::Result<Server> {
        let port = free_port()?;
        let log = std::fs::File::create(self.log_file())
            .with_context(|| format!("cannot create {}", self.log_file().display()))?;
        let mut command = Command::new(python);
        command
            .args(["-m", "fakesnow", "--server", "--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if detached {
            #[cfg(unix)]
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        let child = command.spawn().with_context(|| format!("cannot run {} -m fakesnow", python.display()))?;
        let mut server = Server { child, url: format!("http://127.0.0.1:{port}") };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if answers(addr) {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("the Snowflake emulator exited ({status}) before answering:\n{}", self.log_tail());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the Snowflake emulator did not answer on {addr} within {} s:\n{}",
                    START_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of the server `cargo xtask services` left running, if it still answers.
    pub(crate) fn background_url(&self) -> Option<String> {
        let url = std::fs::read_to_string(self.url_file()).ok()?.trim().to_owned();
        let port: u16 = url.rsplit_once(':')?.1.parse().ok()?;
        answers(SocketAddr::from(([127, 0, 0, 1], port))).then_some(url)
    }

    /// Stops the server `cargo xtask services` left running.
    fn stop_background(&self) -> anyhow::Result<()> {
        let Ok(pid) = std::fs::read_to_string(self.pid_file()) else {
            println!("no Snowflake emulator was started by `cargo xtask services` (no {})", self.pid_file().display());
            return Ok(());
        };
        let pid = pid.trim();
        let status = Command::new("kill").args(["-INT", pid]).status().context("cannot run kill")?;
        let _ = std::fs::remove_file(self.pid_file());
        let _ = std::fs::remove_file(self.url_file());
        if status.success() {
            println!("stopped the Snowflake emulator (pid {pid})");
        } else {
            println!("the Snowflake emulator (pid {pid}) was not running");
        }
        Ok(())
    }

    /// The last lines of the server's log, for an error message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// A running emulator, stopped when dropped.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator for a test run: the variable's value when it is set, else a server left running
/// by `cargo xtask services`, else one started now for the length of the run (the guard).
/// `Err` says why there is none.
pub(crate) fn for_tests(sh: &Shell) -> anyhow::Result<(String, Option<Server>)> {
    if let Some(url) = crate::test::env_value(sh, SNOWFLAKE_URL_VAR) {
        return Ok((url, None));
    }
    let emulator = Emulator::new(sh);
    if let Some(url) = emulator.background_url() {
        return Ok((url, None));
    }
    let python = emulator.install(sh, &[])?;
    let server = emulator.start(&python, false)?;
    Ok((server.url.clone(), Some(server)))
}

/// A port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Whether an HTTP server answers on `addr` (any status: fakesnow answers 401 to a request
/// without a session).
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("POST /session HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0_u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_free() {
        let port = free_port().expect("a free port");
        assert!(!answers(SocketAddr::from(([127, 0, 0, 1], port))));
    }

    #[test]
    fn an_http_server_answers() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut buf = [0_u8; 256];
            let _ = stream.read(&mut buf);
            stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n").expect("write");
        });
        assert!(answers(addr));
        server.join().expect("the server thread");
    }
}
