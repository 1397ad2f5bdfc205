//! A MariaDB server with TLS for `cargo xtask bench --tls` (the machine's shared MariaDB offers
//! none): `mariadb-install-db` into `target/bench/mariadb-tls`, a free 127.0.0.1 port, a CA and
//! a server certificate for `localhost` made with `openssl`, and an account `bench`. It accepts
//! plain and TLS connections alike, so that the two are measured on the same server. Stopped
//! when dropped; its directory is made afresh on each run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

/// The running server.
pub(super) struct MariaDbTls {
    server: Child,
    port: u16,
    dir: PathBuf,
}

impl MariaDbTls {
    /// Makes the certificates, the data directory and the account, and starts the server.
    pub(super) fn start(dir: &Path) -> anyhow::Result<Self> {
        let (Some(install), Some(server)) = (which("mariadb-install-db"), which("mariadbd")) else {
            bail!("no MariaDB server programs (mariadbd, mariadb-install-db) on this machine");
        };
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).with_context(|| format!("cannot make {}", tmp.display()))?;
        certificates(dir)?;
        let root =
            Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            run(Command::new("chown").args(["-R", "mysql:mysql"]).arg(dir))?;
        }
        let path = |file: &str| dir.join(file).display().to_string();
        let mut common = vec![
            "--no-defaults".to_owned(),
            format!("--datadir={}", path("data")),
            format!("--tmpdir={}", tmp.display()),
        ];
        if root {
            common.push("--user=mysql".into());
        }
        run(Command::new(install).args(&common).arg("--skip-test-db"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new(server)
            .args(&common)
            .args([
                format!("--port={port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={}", path("mysqld.sock")),
                format!("--pid-file={}", path("mysqld.pid")),
                format!("--ssl-ca={}", path("ca.crt")),
                format!("--ssl-cert={}", path("server.crt")),
                format!("--ssl-key={}", path("server.key")),
                "--skip-name-resolve".into(),
            ])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start mariadbd")?;
        let mut db = Self { server: child, port, dir: dir.to_owned() };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) || db.server.try_wait()?.is_some() {
                bail!(
                    "mariadbd did not start: {}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let client = which("mariadb").or_else(|| which("mysql")).context("no mariadb client")?;
        run(Command::new(client).args(["--no-defaults", "-u", "root", "-S"]).arg(db.dir.join("mysqld.sock")).args([
            "-e",
            "create database test; create user 'bench'@'%' identified by 'bench-pw'; grant all on *.* to 'bench'@'%';",
        ]))?;
        Ok(db)
    }

    /// The URL of the `test` database as `bench`, without TLS parameters.
    pub(super) fn url(&self) -> String {
        format!("mysql://bench:bench-pw@localhost:{}/test", self.port)
    }

    /// The CA that signed the server's certificate.
    pub(super) fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
}

impl Drop for MariaDbTls {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A CA and a server certificate for `localhost` and 127.0.0.1, in `dir`.
fn certificates(dir: &Path) -> anyhow::Result<()> {
    let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=bench ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])?;
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n")?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ])
}

/// Runs `command`; its stderr as the error if it fails.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command.stdin(Stdio::null()).output().with_context(|| format!("cannot run {command:?}"))?;
    ensure!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

/// The full path of a program on the `PATH` (or in /usr/sbin, where `mariadbd` lives).
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}
