//! Throwaway database servers for tests that need one set up differently from the machine's
//! shared servers (TLS only, client certificates): a PostgreSQL cluster made with `initdb` in a
//! temporary directory, on a free 127.0.0.1 port, stopped and removed when dropped; and the
//! certificates for it, made with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The certificates of a test: a CA, a server certificate for `localhost` only (so that
/// connecting to `127.0.0.1` with host-name checks fails), a client certificate for the role
/// `certuser`, and a second CA that signed none of them.
pub struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    /// Makes the certificates in `dir`; `None` (with a notice) without the `openssl` command.
    ///
    /// # Panics
    /// If `openssl` is there but fails.
    pub fn make(dir: &Path) -> Option<Self> {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipped: the openssl command is missing, so no test certificates can be made");
            return None;
        }
        std::fs::create_dir_all(dir).expect("make the certificate folder");
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        for ca in ["ca", "other-ca"] {
            run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &format!("/CN=test {ca}")]
                .iter()
                .copied()
                .chain(["-keyout", &format!("{ca}.key"), "-out", &format!("{ca}.crt")])
                .collect::<Vec<_>>());
        }
        std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").expect("write server.ext");
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("write client.ext");
        for (name, subject, ext) in
            [("server", "/CN=localhost", "server.ext"), ("client", "/CN=certuser", "client.ext")]
        {
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ]);
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}.crt"),
            ]);
        }
        Some(Self { dir: dir.to_owned() })
    }

    /// The path of one of the files: `ca.crt`, `other-ca.crt`, `server.crt`, `server.key`,
    /// `client.crt`, `client.key`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The text of one of the files.
    ///
    /// # Panics
    /// If it cannot be read.
    pub fn pem(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).expect("read a certificate file")
    }
}

/// A PostgreSQL cluster of its own, on 127.0.0.1, stopped and removed on drop.
pub struct ThrowawayPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run the server's commands as the `postgres` user (the server refuses to run as root).
    as_postgres: bool,
}

/// How the throwaway cluster is set up.
pub enum Tls<'a> {
    /// No TLS at all.
    Off,
    /// TLS only (no plain TCP entry in `pg_hba.conf`), with these certificates; the role
    /// `certuser` logs in with its client certificate.
    Only(&'a Certificates),
}

impl ThrowawayPostgres {
    /// Starts a cluster; `None` (with a notice) where PostgreSQL's server programs are missing.
    ///
    /// # Panics
    /// If they are there but fail.
    pub fn start(tls: &Tls<'_>) -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            eprintln!("skipped: no PostgreSQL server programs (initdb) on this machine");
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::tempdir().expect("make a temporary directory");
        let port = free_port();
        let cluster = Self { dir, bin, port, as_postgres };
        let data = cluster.data();
        cluster.give_to_postgres(cluster.dir.path());
        cluster.run("initdb", &["-D", &data.display().to_string(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        let mut conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            cluster.dir.path().display()
        );
        let mut hba = String::from("local all all trust\n");
        match tls {
            Tls::Off => hba.push_str("host all all 127.0.0.1/32 trust\n"),
            Tls::Only(certificates) => {
                for file in ["ca.crt", "server.crt", "server.key"] {
                    std::fs::copy(certificates.path(file), data.join(file)).expect("copy a certificate");
                }
                set_private(&data.join("server.key"));
                conf.push_str(
                    "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n",
                );
                hba.push_str("hostssl all certuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 trust\n");
            }
        }
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        cluster.give_to_postgres(&data);
        let log = cluster.dir.path().join("server.log");
        cluster.run("pg_ctl", &["-D", &data.display().to_string(), "-l", &log.display().to_string(), "-w", "start"]);
        cluster.psql("create role certuser login");
        Some(cluster)
    }

    /// The cluster's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn psql(&self, sql: &str) {
        let socket = self.dir.path().display().to_string();
        let port = self.port.to_string();
        self.run(
            "psql",
            &["-h", &socket, "-p", &port, "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
        );
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = command.args(args).current_dir(self.dir.path()).output().expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Makes `path` and what it holds the `postgres` user's, when the commands run as that user.
    fn give_to_postgres(&self, path: &Path) {
        if self.as_postgres {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status();
            assert!(status.is_ok_and(|s| s.success()), "chown {}", path.display());
        }
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let path = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = command.args(["-D", &data, "-m", "immediate", "stop"]).output(); // the directory goes next
    }
}

/// The folder of PostgreSQL's server programs (`initdb`, `pg_ctl`, `postgres`).
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).expect("open a configuration file");
    file.write_all(text.as_bytes()).expect("append to a configuration file");
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("make a key private");
}

/// A MariaDB (or MySQL) server of its own on 127.0.0.1, TLS required (`require_secure_transport`)
/// with the test's certificates; stopped and removed on drop. Users: `tls` (password `tls-pw`)
/// and `certuser` (no password, `REQUIRE SUBJECT '/CN=certuser'`: its client certificate), both
/// `mysql_native_password`, and `nopw` (no password, no certificate); `ed` (password `ed-pw`,
/// MariaDB's `ed25519`) through [`ed25519_user`](ThrowawayMariaDb::ed25519_user).
pub struct ThrowawayMariaDb {
    dir: tempfile::TempDir,
    server: std::process::Child,
    port: u16,
}

impl ThrowawayMariaDb {
    /// Starts a server; `None` (with a notice) where `mariadbd` and `mariadb-install-db` are
    /// missing.
    ///
    /// # Panics
    /// If they are there but fail, or the server does not listen within 60 s.
    pub fn start(certificates: &Certificates) -> Option<Self> {
        let (Some(install), Some(server)) = (which("mariadb-install-db"), which("mariadbd")) else {
            eprintln!("skipped: no MariaDB server programs (mariadbd, mariadb-install-db) on this machine");
            return None;
        };
        let dir = tempfile::tempdir().expect("make a temporary directory");
        let data = dir.path().join("data");
        for file in ["ca.crt", "server.crt", "server.key"] {
            std::fs::copy(certificates.path(file), dir.path().join(file)).expect("copy a certificate");
        }
        // a temporary directory of its own: two bootstraps at once in /tmp collide
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("make the server's temporary directory");
        let user = if is_root() { "mysql" } else { "" };
        if is_root() {
            let status = Command::new("chown").args(["-R", "mysql:mysql"]).arg(dir.path()).status();
            assert!(status.is_ok_and(|s| s.success()), "chown {}", dir.path().display());
        }
        let mut args = vec![
            "--no-defaults".to_owned(),
            format!("--datadir={}", data.display()),
            "--skip-test-db".into(),
            format!("--tmpdir={}", tmp.display()),
        ];
        if !user.is_empty() {
            args.push(format!("--user={user}"));
        }
        let out = Command::new(install).args(&args).output().expect("run mariadb-install-db");
        assert!(out.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let socket = dir.path().join("mysqld.sock");
        let path = |file: &str| dir.path().join(file).display().to_string();
        let mut command = Command::new(server);
        command.args([
            "--no-defaults".to_owned(),
            format!("--datadir={}", data.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}", socket.display()),
            format!("--pid-file={}", path("mysqld.pid")),
            format!("--tmpdir={}", tmp.display()),
            format!("--ssl-ca={}", path("ca.crt")),
            format!("--ssl-cert={}", path("server.crt")),
            format!("--ssl-key={}", path("server.key")),
            "--require-secure-transport=ON".into(),
            "--skip-name-resolve".into(),
            "--innodb-buffer-pool-size=16M".into(),
        ]);
        if !user.is_empty() {
            command.arg(format!("--user={user}"));
        }
        let log = std::fs::File::create(dir.path().join("server.log")).expect("create the server log");
        let child = command.stdout(log.try_clone().expect("the log")).stderr(log).spawn().expect("start mariadbd");
        let mut db = Self { dir, server: child, port };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60) && db.server.try_wait().ok().flatten().is_none(),
                "mariadbd did not start: {}",
                std::fs::read_to_string(db.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        db.sql(
            "create user 'tls'@'%' identified by 'tls-pw'; grant all on *.* to 'tls'@'%';\
             create user 'certuser'@'%' require subject '/CN=certuser'; grant all on *.* to 'certuser'@'%';\
             create user 'nopw'@'%'; grant all on *.* to 'nopw'@'%';",
        );
        Some(db)
    }

    /// Installs MariaDB's `ed25519` authentication plugin and creates the user `ed` (password
    /// `ed-pw`) with it; `false` (with a notice) where the server has no such plugin.
    pub fn ed25519_user(&mut self) -> bool {
        let made = self.try_sql(
            "install soname 'auth_ed25519';\
             create user 'ed'@'%' identified via ed25519 using password('ed-pw'); grant all on *.* to 'ed'@'%';",
        );
        if let Err(why) = &made {
            eprintln!("skipped: no ed25519 account ({why})");
        }
        made.is_ok()
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs statements as root through the server's socket.
    fn sql(&mut self, statements: &str) {
        if let Err(why) = self.try_sql(statements) {
            panic!("mariadb: {why}");
        }
    }

    /// Runs statements as root through the server's socket; the client's complaint if they fail.
    fn try_sql(&mut self, statements: &str) -> Result<(), String> {
        let socket = self.socket();
        let client = which("mariadb").or_else(|| which("mysql")).expect("a mariadb client");
        let out = Command::new(client)
            .args(["--no-defaults", "-u", "root", "-S"])
            .arg(&socket)
            .args(["-e", statements])
            .output()
            .expect("run the mariadb client");
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    }
}

impl Drop for ThrowawayMariaDb {
    fn drop(&mut self) {
        let _ = self.server.kill(); // the directory goes next
        let _ = self.server.wait();
    }
}

/// The full path of a program on the `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}
