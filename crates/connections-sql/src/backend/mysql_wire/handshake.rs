//! Opening a connection of the bulk reader: the settings it can serve, the handshake (TLS
//! included), authentication, and the session setup sqlx's own connections get.
//!
//! The packets are `mysql_common`'s (`HandshakePacket`, `SslRequest`, `HandshakeResponse`,
//! `AuthSwitchRequest`, `AuthMoreData`, `OkPacket`, `ErrPacket`), and so are the authentication
//! plugins (`AuthProc`): `mysql_native_password`, `caching_sha2_password` (fast authentication,
//! and full authentication: the password in clear over TLS or a Unix socket, else encrypted with
//! the server's RSA public key, which it asks for), `sha256_password`, `mysql_clear_password` and
//! MariaDB's `client_ed25519`. An account of another plugin (`auth_gssapi_client`, `parsec`, ...)
//! is "declined": its queries run through sqlx, which then says what it makes of it.

use std::fmt;

use mysql_common::auth::plugins::{AuthProc, ChallengeResponsePlugin as _, Context};
use mysql_common::constants::{CapabilityFlags, Command};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, CommonOkPacket, HandshakePacket, HandshakeResponse, OkPacketDeserializer, SslRequest,
};
use tokio::net::TcpStream;

use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

use super::packets::{Conn, Stream};
use crate::options::MySqlParam;
use crate::url::SqlUrl;

/// The capabilities asked for (those the server lacks are dropped).
const WANTED: CapabilityFlags = CapabilityFlags::CLIENT_LONG_PASSWORD
    .union(CapabilityFlags::CLIENT_FOUND_ROWS)
    .union(CapabilityFlags::CLIENT_LONG_FLAG)
    .union(CapabilityFlags::CLIENT_IGNORE_SPACE)
    .union(CapabilityFlags::CLIENT_PROTOCOL_41)
    .union(CapabilityFlags::CLIENT_TRANSACTIONS)
    .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
    .union(CapabilityFlags::CLIENT_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PS_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA);
/// `utf8mb4_unicode_ci`, the collation sqlx asks for with its default character set.
const UTF8MB4_UNICODE_CI: u8 = 224;
/// The largest packet the client accepts (as sqlx: 16 MiB).
const MAX_PACKET: u32 = 16 * 1024 * 1024;

/// When the connection is encrypted, and what is verified (`ssl_mode`, as sqlx reads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TlsMode {
    /// `DISABLED`: never.
    Off,
    /// `PREFERRED` (sqlx's default): when the server offers it, without verifying it.
    Preferred,
    /// `REQUIRED`: always, without verifying the server.
    Required,
    /// `VERIFY_CA` (`false`: the certificate chain only) or `VERIFY_IDENTITY` (`true`: the host
    /// name too).
    Verify(bool),
}

/// A certificate or key: PEM text, or the path of a PEM file (read at each connection, as sqlx
/// does).
#[derive(Clone)]
pub(super) enum Pem {
    Text(String),
    Path(String),
}

impl Pem {
    fn new(value: &str) -> Self {
        if value.trim_start().starts_with("-----BEGIN ") {
            Self::Text(value.to_owned())
        } else {
            Self::Path(value.to_owned())
        }
    }

    /// The PEM bytes.
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    pub(super) async fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Self::Text(text) => Ok(text.clone().into_bytes()),
            Self::Path(path) => tokio::fs::read(path).await.map_err(|e| format!("{path}: {e}")),
        }
    }
}

/// Where the server listens.
#[derive(Clone, Debug)]
enum Address {
    Tcp(String, u16),
    #[cfg(unix)]
    Socket(String),
}

/// What a bulk-reader connection is opened with: the URL's server, account and database, TLS,
/// and the session statement sqlx runs on each new connection.
#[derive(Clone)]
pub(super) struct Settings {
    address: Address,
    host: String,
    username: String,
    password: String,
    database: Option<String>,
    tls: TlsMode,
    ssl_ca: Option<Pem>,
    ssl_cert: Option<Pem>,
    ssl_key: Option<Pem>,
    session_setup: String,
}

impl Settings {
    /// The settings of sqlx's connect options for a MySQL URL (its defaults included); `None`
    /// when they ask for something this reader does not do: a character set other than
    /// `utf8mb4` (it decodes text as UTF-8 where it lies), or TLS in a build without the
    /// `rustls` feature (sqlx then refuses the connection, and says so). The password, the time
    /// zone and the certificates, which the options do not give back, come from the URL they
    /// were built from.
    pub(super) fn new(options: &MySqlConnectOptions, url: &SqlUrl) -> Option<Self> {
        if !options.get_charset().eq_ignore_ascii_case("utf8mb4") {
            return None;
        }
        let tls = match options.get_ssl_mode() {
            MySqlSslMode::Disabled => TlsMode::Off,
            MySqlSslMode::Preferred => TlsMode::Preferred,
            MySqlSslMode::Required => TlsMode::Required,
            MySqlSslMode::VerifyCa => TlsMode::Verify(false),
            MySqlSslMode::VerifyIdentity => TlsMode::Verify(true),
        };
        if cfg!(not(feature = "rustls")) && !matches!(tls, TlsMode::Off | TlsMode::Preferred) {
            return None;
        }
        let collation = match options.get_collation() {
            None => "utf8mb4_unicode_ci", // sqlx's collation for utf8mb4
            Some(c) if c.starts_with("utf8mb4_") && plain(c) => c,
            Some(_) => return None,
        };
        let mut timezone = "+00:00"; // sqlx's default
        let (mut ssl_ca, mut ssl_cert, mut ssl_key) = (None, None, None);
        for (key, value) in &url.query {
            match MySqlParam::parse(key) {
                Some(MySqlParam::SslCa) => ssl_ca = Some(Pem::new(value)),
                Some(MySqlParam::SslCert) => ssl_cert = Some(Pem::new(value)),
                Some(MySqlParam::SslKey) => ssl_key = Some(Pem::new(value)),
                Some(MySqlParam::Timezone) if value.contains(['\'', '\\']) => return None,
                Some(MySqlParam::Timezone) => timezone = value,
                _ => {}
            }
        }
        let session_setup = format!(
            "SET sql_mode=(SELECT CONCAT(@@sql_mode, ',PIPES_AS_CONCAT,NO_ENGINE_SUBSTITUTION')),\
             time_zone='{timezone}',NAMES utf8mb4 COLLATE {collation};"
        );
        let address = match options.get_socket() {
            #[cfg(unix)]
            Some(path) => Address::Socket(path.to_string_lossy().into_owned()),
            #[cfg(not(unix))]
            Some(_) => return None,
            None => Address::Tcp(options.get_host().to_owned(), options.get_port()),
        };
        Some(Self {
            address,
            host: options.get_host().to_owned(),
            username: options.get_username().to_owned(),
            password: url.password.clone().unwrap_or_default(),
            database: options.get_database().map(str::to_owned),
            tls,
            ssl_ca,
            ssl_cert,
            ssl_key,
            session_setup,
        })
    }
}

/// A collation name made of letters, digits and underscores.
fn plain(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &"***")
            .field("database", &self.database)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Why a connection could not be opened.
pub(super) enum Refused {
    /// The server or the account needs something this reader does not do: never try again.
    Unsupported(String),
    /// The server could not be reached or refused the login: sqlx will say why.
    Failed(String),
}

/// What the authentication plugins see of the connection.
#[derive(Clone, Copy)]
struct AuthContext<'a> {
    password: &'a [u8],
    tls: bool,
    ipc: bool,
    scramble: &'a [u8],
}

impl Context for AuthContext<'_> {
    fn pass(&self) -> &[u8] {
        self.password
    }

    fn is_ipc_transport(&self) -> bool {
        self.ipc
    }

    fn is_tls_transport(&self) -> bool {
        self.tls
    }

    fn scramble(&self) -> &[u8] {
        self.scramble
    }

    fn server_key_pem(&self) -> Option<&[u8]> {
        None // asked of the server when needed
    }
}

/// Opens and sets up a connection.
pub(super) async fn open(settings: &Settings) -> Result<Conn, Refused> {
    let failed = |e: std::io::Error| Refused::Failed(e.to_string());
    let (stream, ipc) = match &settings.address {
        Address::Tcp(host, port) => {
            let stream = TcpStream::connect((host.as_str(), *port)).await.map_err(failed)?;
            stream.set_nodelay(true).map_err(failed)?;
            (Stream::Tcp(stream), false)
        }
        #[cfg(unix)]
        Address::Socket(path) => (Stream::Unix(tokio::net::UnixStream::connect(path).await.map_err(failed)?), true),
    };
    let mut conn = Conn::new(stream);
    let greeting = conn.read_owned().await.map_err(failed)?;
    if greeting.first() == Some(&0xFF) {
        return Err(Refused::Failed(conn.error(&greeting).to_string()));
    }
    let server = ParseBuf(&greeting)
        .parse::<HandshakePacket<'_>>(())
        .map_err(|e| Refused::Unsupported(format!("an unexpected greeting: {e}")))?;
    conn.id = server.connection_id();
    let needed = CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH;
    if !server.capabilities().contains(needed) {
        return Err(Refused::Unsupported("the server lacks the 4.1 protocol or pluggable authentication".into()));
    }
    let mut capabilities = WANTED & server.capabilities();
    if settings.database.is_some() {
        capabilities |= CapabilityFlags::CLIENT_CONNECT_WITH_DB;
    }
    let offered = server.capabilities().contains(CapabilityFlags::CLIENT_SSL);
    let tls = match settings.tls {
        TlsMode::Off => false,
        // as sqlx: a build without TLS connects without it when the server offers it
        TlsMode::Preferred => offered && cfg!(feature = "rustls"),
        _ if offered => true,
        _ => return Err(Refused::Failed("the server does not support TLS".into())),
    };
    if tls {
        capabilities |= CapabilityFlags::CLIENT_SSL;
        conn.capabilities = capabilities;
        conn.reply_with(&SslRequest::new(capabilities, MAX_PACKET, UTF8MB4_UNICODE_CI)).await.map_err(failed)?;
        start_tls(&mut conn, settings).await?;
    }
    conn.capabilities = capabilities;
    let nonce = server.nonce();
    let plugin = server.auth_plugin().unwrap_or(AuthPlugin::MysqlNativePassword).into_owned();
    let context = AuthContext { password: settings.password.as_bytes(), tls, ipc, scramble: &nonce };
    let mut auth = AuthProc::init(&plugin).map_err(|e| Refused::Unsupported(e.to_string()))?;
    let first = auth.run(context, &nonce).map_err(|e| Refused::Unsupported(format!("{plugin:?}: {e}")))?;
    let response = HandshakeResponse::new(
        Some(first.data().unwrap_or_default()),
        server.server_version_parsed().unwrap_or((5, 5, 3)),
        Some(settings.username.as_bytes()),
        settings.database.as_deref().map(str::as_bytes),
        Some(plugin),
        capabilities,
        None,
        MAX_PACKET,
    );
    conn.reply_with(&response).await.map_err(failed)?;
    authenticate(&mut conn, settings, auth, nonce, tls, ipc).await?;
    setup(&mut conn, settings).await?;
    Ok(conn)
}

/// Wraps the connection in TLS after the `SslRequest`.
#[cfg(feature = "rustls")]
async fn start_tls(conn: &mut Conn, settings: &Settings) -> Result<(), Refused> {
    use super::packets::{BufReader, READ_CHUNK};

    if conn.buffered() {
        return Err(Refused::Failed("the server sent data before the TLS handshake".into()));
    }
    let tls = super::tls::TlsSettings {
        mode: settings.tls,
        host: &settings.host,
        ca: settings.ssl_ca.as_ref(),
        cert: settings.ssl_cert.as_ref(),
        key: settings.ssl_key.as_ref(),
    };
    // over a Unix socket too, as sqlx
    conn.stream = match std::mem::replace(&mut conn.stream, Stream::Gone) {
        Stream::Tcp(tcp) => {
            let buffered = BufReader::with_capacity(READ_CHUNK, tcp);
            Stream::Tls(Box::new(super::tls::connect(buffered, &tls).await.map_err(Refused::Failed)?))
        }
        #[cfg(unix)]
        Stream::Unix(unix) => {
            let buffered = BufReader::with_capacity(READ_CHUNK, unix);
            Stream::UnixTls(Box::new(super::tls::connect(buffered, &tls).await.map_err(Refused::Failed)?))
        }
        _ => return Err(Refused::Failed("TLS asked for twice".into())),
    };
    Ok(())
}

#[cfg(not(feature = "rustls"))]
async fn start_tls(_conn: &mut Conn, _settings: &Settings) -> Result<(), Refused> {
    Err(Refused::Unsupported("TLS in a build without the `rustls` feature".into()))
}

/// Follows the server's answers to the login (plugin switches, more plugin data) until it
/// accepts or refuses it.
async fn authenticate(
    conn: &mut Conn,
    settings: &Settings,
    mut auth: AuthProc,
    mut nonce: Vec<u8>,
    tls: bool,
    ipc: bool,
) -> Result<(), Refused> {
    let failed = |e: std::io::Error| Refused::Failed(e.to_string());
    let refused = |e: mysql_common::auth::plugins::Error| Refused::Failed(format!("authentication: {e}"));
    loop {
        let answer = conn.read_owned().await.map_err(failed)?;
        let response = match answer.first() {
            Some(0x00) => {
                ParseBuf(&answer)
                    .parse::<OkPacketDeserializer<'_, CommonOkPacket>>(conn.capabilities)
                    .map_err(|e| Refused::Failed(format!("an unexpected OK packet: {e}")))?;
                return Ok(());
            }
            Some(0xFF) => return Err(Refused::Failed(conn.error(&answer).to_string())),
            Some(0xFE) => {
                // another plugin, with fresh nonce
                let switch = ParseBuf(&answer)
                    .parse::<AuthSwitchRequest<'_>>(())
                    .map_err(|e| Refused::Failed(format!("an unexpected authentication switch: {e}")))?;
                let plugin = switch.auth_plugin();
                auth = AuthProc::init(&plugin).map_err(|e| Refused::Unsupported(e.to_string()))?;
                nonce = switch.plugin_data().to_vec();
                let context = AuthContext { password: settings.password.as_bytes(), tls, ipc, scramble: &nonce };
                // a switch is always answered, with an empty packet if nothing else
                let response = auth.run(context, &nonce).map_err(refused)?;
                Some(response.data().unwrap_or_default().to_vec())
            }
            Some(0x01) => {
                // more data for the plugin under way (`caching_sha2_password`'s state, a public key)
                let context = AuthContext { password: settings.password.as_bytes(), tls, ipc, scramble: &nonce };
                auth.run(context, &answer[1..]).map_err(refused)?.data().map(<[u8]>::to_vec)
            }
            _ => return Err(Refused::Failed("an unexpected packet during authentication".into())),
        };
        if let Some(response) = response {
            conn.reply(&response).await.map_err(failed)?;
        }
    }
}

/// Runs the statement sqlx runs on each of its new connections (`sql_mode`, time zone, names).
async fn setup(conn: &mut Conn, settings: &Settings) -> Result<(), Refused> {
    let failed = |e: std::io::Error| Refused::Failed(e.to_string());
    conn.command_text(Command::COM_QUERY, settings.session_setup.as_bytes()).await.map_err(failed)?;
    let answer = conn.read_owned().await.map_err(failed)?;
    match answer.first() {
        Some(0x00) => Ok(()),
        Some(0xFF) => Err(Refused::Failed(conn.error(&answer).to_string())),
        _ => Err(Refused::Unsupported("the session setup returned rows".into())),
    }
}

#[cfg(test)]
mod tests {
    use mysql_common::auth::plugins::Response;

    use super::*;

    fn settings(text: &str) -> Option<Settings> {
        let url = SqlUrl::parse(text).unwrap();
        Settings::new(&crate::options::build_mysql(&url).ok().unwrap(), &url)
    }

    #[test]
    fn settings_follow_sqlx_options() {
        let s = settings("mysql://u:pw@db.example:3307/app?charset=utf8mb4&timezone=%2B02:00").unwrap();
        assert!(matches!(&s.address, Address::Tcp(h, 3307) if h == "db.example"), "{s:?}");
        assert_eq!((s.host.as_str(), s.username.as_str()), ("db.example", "u"));
        assert_eq!((s.password.as_str(), s.database.as_deref()), ("pw", Some("app")));
        assert!(s.session_setup.contains("time_zone='+02:00'"), "{}", s.session_setup);
        assert!(s.session_setup.contains("COLLATE utf8mb4_unicode_ci"), "{}", s.session_setup);
        assert!(!format!("{s:?}").contains("pw"));
        let defaults = settings("mysql://").unwrap();
        assert!(matches!(&defaults.address, Address::Tcp(h, 3306) if h == "localhost"), "{defaults:?}");
        assert_eq!((defaults.username.as_str(), defaults.tls), ("root", TlsMode::Preferred));
        assert!(defaults.session_setup.contains("time_zone='+00:00'"));
        assert_eq!(settings("mysql://h/db?ssl-mode=disabled").unwrap().tls, TlsMode::Off);
        let collated = settings("mysql://h/db?collation=utf8mb4_bin").unwrap();
        assert!(collated.session_setup.contains("COLLATE utf8mb4_bin"), "{}", collated.session_setup);
        #[cfg(unix)]
        assert!(matches!(settings("mysql://u@h/db?unix_socket=/tmp/mysql.sock").unwrap().address, Address::Socket(_)));
        for declined in ["mysql://u@h/db?charset=latin1", "mysql://u@h/db?timezone=%27"] {
            assert!(settings(declined).is_none(), "{declined}");
        }
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        let tls = settings(&format!(
            "mysql://u@h/db?ssl_mode=VERIFY_IDENTITY&ssl_ca={}&ssl_cert=/c.pem&ssl_key=/k.pem",
            percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC)
        ));
        if cfg!(feature = "rustls") {
            let tls = tls.unwrap();
            assert_eq!(tls.tls, TlsMode::Verify(true));
            assert!(matches!(&tls.ssl_ca, Some(Pem::Text(t)) if t == pem));
            assert!(matches!(&tls.ssl_cert, Some(Pem::Path(p)) if p == "/c.pem"));
            assert!(matches!(&tls.ssl_key, Some(Pem::Path(p)) if p == "/k.pem"));
            assert_eq!(settings("mysql://h/db?ssl_mode=VERIFY_CA").unwrap().tls, TlsMode::Verify(false));
            assert_eq!(settings("mysql://h/db?ssl_mode=REQUIRED").unwrap().tls, TlsMode::Required);
        } else {
            assert!(tls.is_none(), "TLS asked for in a build without it is sqlx's to refuse");
        }
    }

    fn context<'a>(password: &'a str, tls: bool, scramble: &'a [u8]) -> AuthContext<'a> {
        AuthContext { password: password.as_bytes(), tls, ipc: false, scramble }
    }

    fn run(auth: &mut AuthProc, context: AuthContext<'_>, challenge: &[u8]) -> Response {
        auth.run(context, challenge).unwrap()
    }

    #[test]
    fn native_password_proof_matches_a_known_vector() {
        // SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))), computed independently for "secret"
        let nonce: Vec<u8> = (1..=20).collect();
        let mut auth = AuthProc::init(&AuthPlugin::MysqlNativePassword).unwrap();
        let proof = run(&mut auth, context("secret", false, &nonce), &nonce);
        assert_eq!(hex(proof.data().unwrap()), "b32bb3a583e1340c0a1108d58b1be49781ad8c2f");
        let mut auth = AuthProc::init(&AuthPlugin::MysqlNativePassword).unwrap();
        assert_eq!(run(&mut auth, context("", false, &nonce), &nonce).data(), Some(&[][..]), "no password");
    }

    #[test]
    fn caching_sha2_fast_and_full_authentication() {
        let nonce: Vec<u8> = (1..=20).collect();
        let start = || {
            let mut auth = AuthProc::init(&AuthPlugin::CachingSha2Password).unwrap();
            // XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) + nonce)), computed independently
            let proof = run(&mut auth, context("secret", false, &nonce), &nonce);
            assert!(matches!(proof, Response::Next { .. }));
            assert_eq!(hex(proof.data().unwrap()), "746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9");
            auth
        };
        // fast authentication: the server had the password cached
        let mut fast = start();
        assert_eq!(run(&mut fast, context("secret", false, &nonce), &[3]), Response::Last { packet: None });
        // full authentication over TLS: the password in clear
        let mut clear = start();
        assert_eq!(run(&mut clear, context("secret", true, &nonce), &[4]).data(), Some(&b"secret\0"[..]));
        // full authentication without TLS: ask for the server's public key
        let mut rsa = start();
        assert_eq!(run(&mut rsa, context("secret", false, &nonce), &[4]), Response::Next { packet: Some(vec![2]) });
        let Some(keys) = rsa_keys() else {
            eprintln!("openssl not found: the RSA step of caching_sha2_password is not checked");
            return;
        };
        let encrypted =
            run(&mut rsa, context("secret", false, &nonce), &std::fs::read(keys.path().join("public.pem")).unwrap());
        assert_eq!(encrypted.data().map(<[u8]>::len), Some(256), "one 2048-bit RSA block");
        // what the server decrypts (RSA-OAEP) is the password and its NUL, XOR-ed with the nonce
        std::fs::write(keys.path().join("sealed"), encrypted.data().unwrap()).unwrap();
        let opened = std::process::Command::new("openssl")
            .args([
                "pkeyutl",
                "-decrypt",
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-inkey",
                "private.pem",
                "-in",
                "sealed",
            ])
            .current_dir(keys.path())
            .output()
            .unwrap();
        assert!(opened.status.success(), "{}", String::from_utf8_lossy(&opened.stderr));
        let password: Vec<u8> = opened.stdout.iter().zip(nonce.iter().cycle()).map(|(a, b)| a ^ b).collect();
        assert_eq!(password, b"secret\0");
    }

    /// A 2048-bit RSA key pair made with `openssl` in a temporary directory (`None` without it).
    fn rsa_keys() -> Option<tempfile::TempDir> {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .is_ok_and(|o| o.status.success())
        };
        (run(&["genrsa", "-out", "private.pem", "2048"])
            && run(&["rsa", "-in", "private.pem", "-pubout", "-out", "public.pem"]))
        .then_some(dir)
    }

    #[test]
    fn ed25519_signature_matches_a_known_vector() {
        // MariaDB's `client_ed25519` signs the nonce with Ed25519, the key made from
        // SHA-512(password): for a 32-byte password, the standard Ed25519 key of that seed
        // (signature computed independently, with Python's `cryptography`)
        let nonce: Vec<u8> = (0..32).collect();
        let mut auth = AuthProc::init(&AuthPlugin::Ed25519).unwrap();
        let signed = run(&mut auth, context("0123456789abcdef0123456789abcdef", true, &nonce), &nonce);
        assert_eq!(
            hex(signed.data().unwrap()),
            "35f8279abc453a33d152e79ba89692fd5829db9bc1fffb946b95f893166be180\
             12597112063bd06ce3e3519d7f9faeeb1357587dd75124486f83cd6a8b71b00c"
        );
    }

    #[test]
    fn unknown_plugins_are_declined() {
        assert!(AuthProc::init(&AuthPlugin::from_bytes(b"auth_gssapi_client")).is_err());
        assert!(AuthProc::init(&AuthPlugin::from_bytes(b"client_ed25519")).is_ok());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut text, b| {
            use std::fmt::Write as _;
            let _ = write!(text, "{b:02x}");
            text
        })
    }
}
