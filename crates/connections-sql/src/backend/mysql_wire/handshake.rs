//! Opening a connection of the bulk reader: the settings it can serve, the handshake, the
//! `mysql_native_password` exchange, and the session setup sqlx's own connections get.
//!
//! Anything this handshake does not do (TLS, Unix sockets, other authentication plugins, other
//! character sets) is "declined": the query then runs through sqlx, which does it all.

use std::fmt;

use sha1::{Digest as _, Sha1};
use tokio::net::TcpStream;

use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

use super::packets::{Conn, Fields, ServerError};
use crate::options::MySqlParam;
use crate::url::SqlUrl;

/// Client capability flags (protocol documentation names, without `CLIENT_`).
mod caps {
    pub(super) const LONG_PASSWORD: u32 = 1;
    pub(super) const FOUND_ROWS: u32 = 2;
    pub(super) const LONG_FLAG: u32 = 4;
    pub(super) const CONNECT_WITH_DB: u32 = 8;
    pub(super) const IGNORE_SPACE: u32 = 256;
    pub(super) const PROTOCOL_41: u32 = 512;
    pub(super) const SSL: u32 = 2048;
    pub(super) const TRANSACTIONS: u32 = 8192;
    pub(super) const SECURE_CONNECTION: u32 = 1 << 15;
    pub(super) const MULTI_RESULTS: u32 = 1 << 17;
    pub(super) const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub(super) const PLUGIN_AUTH: u32 = 1 << 19;
    pub(super) const PLUGIN_AUTH_LENENC_DATA: u32 = 1 << 21;
}

/// `utf8mb4_unicode_ci`, the collation sqlx asks for with its default character set.
const UTF8MB4_UNICODE_CI: u8 = 224;
/// The largest packet the client accepts (as sqlx: 16 MiB).
const MAX_PACKET: u32 = 16 * 1024 * 1024;
const NATIVE_PASSWORD: &[u8] = b"mysql_native_password";

/// What a bulk-reader connection is opened with: the URL's server, account and database, and the
/// session statement sqlx runs on each new connection.
#[derive(Clone)]
pub(super) struct Settings {
    host: String,
    port: u16,
    username: String,
    password: String,
    database: Option<String>,
    /// Whether the URL allows a connection without TLS (`ssl_mode=DISABLED`), rather than only
    /// when the server offers none (`PREFERRED`, sqlx's default).
    tls_disabled: bool,
    session_setup: String,
}

impl Settings {
    /// The settings of sqlx's connect options for a MySQL URL (its defaults included); `None`
    /// when they ask for something this reader does not do (TLS, a Unix socket, a character set
    /// other than `utf8mb4`). The password and the time zone, which the options do not give
    /// back, come from the URL they were built from.
    pub(super) fn new(options: &MySqlConnectOptions, url: &SqlUrl) -> Option<Self> {
        if options.get_socket().is_some() || !options.get_charset().eq_ignore_ascii_case("utf8mb4") {
            return None;
        }
        let tls_disabled = match options.get_ssl_mode() {
            MySqlSslMode::Disabled => true,
            MySqlSslMode::Preferred => false,
            _ => return None,
        };
        let collation = match options.get_collation() {
            None => "utf8mb4_unicode_ci", // sqlx's collation for utf8mb4
            Some(c) if c.starts_with("utf8mb4_") && plain(c) => c,
            Some(_) => return None,
        };
        let mut timezone = "+00:00"; // sqlx's default
        for (key, value) in &url.query {
            match MySqlParam::parse(key) {
                Some(MySqlParam::SslCa | MySqlParam::SslCert | MySqlParam::SslKey) => return None,
                Some(MySqlParam::Timezone) if value.contains(['\'', '\\']) => return None,
                Some(MySqlParam::Timezone) => timezone = value,
                _ => {}
            }
        }
        let session_setup = format!(
            "SET sql_mode=(SELECT CONCAT(@@sql_mode, ',PIPES_AS_CONCAT,NO_ENGINE_SUBSTITUTION')),\
             time_zone='{timezone}',NAMES utf8mb4 COLLATE {collation};"
        );
        Some(Self {
            host: options.get_host().to_owned(),
            port: options.get_port(),
            username: options.get_username().to_owned(),
            password: url.password.clone().unwrap_or_default(),
            database: options.get_database().map(str::to_owned),
            tls_disabled,
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
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"***")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// Why a connection could not be opened.
pub(super) enum Refused {
    /// The server or the account needs something this reader does not do: never try again.
    Unsupported(&'static str),
    /// The server could not be reached or refused the login: sqlx will say why.
    Failed(String),
}

/// Opens and sets up a connection.
pub(super) async fn open(settings: &Settings) -> Result<Conn, Refused> {
    let failed = |e: std::io::Error| Refused::Failed(e.to_string());
    let stream = TcpStream::connect((settings.host.as_str(), settings.port)).await.map_err(failed)?;
    stream.set_nodelay(true).map_err(failed)?;
    let mut conn = Conn::new(stream);
    let greeting = conn.read_owned().await.map_err(failed)?;
    let server = Greeting::parse(&greeting)?;
    conn.id = server.connection_id;
    let wanted = caps::LONG_PASSWORD
        | caps::FOUND_ROWS
        | caps::LONG_FLAG
        | caps::IGNORE_SPACE
        | caps::PROTOCOL_41
        | caps::TRANSACTIONS
        | caps::SECURE_CONNECTION
        | caps::MULTI_RESULTS
        | caps::PS_MULTI_RESULTS
        | caps::PLUGIN_AUTH
        | caps::PLUGIN_AUTH_LENENC_DATA
        | if settings.database.is_some() { caps::CONNECT_WITH_DB } else { 0 };
    let needed = caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::PLUGIN_AUTH;
    if server.capabilities & needed != needed {
        return Err(Refused::Unsupported("the server lacks the 4.1 protocol or pluggable authentication"));
    }
    if server.capabilities & caps::SSL != 0 && !settings.tls_disabled {
        return Err(Refused::Unsupported("the server offers TLS, which sqlx's connections use"));
    }
    let capabilities = wanted & server.capabilities;
    let response = scramble(&server.plugin, &settings.password, &server.scramble)?;
    let mut packet = Vec::with_capacity(128);
    packet.extend_from_slice(&capabilities.to_le_bytes());
    packet.extend_from_slice(&MAX_PACKET.to_le_bytes());
    packet.push(UTF8MB4_UNICODE_CI);
    packet.extend_from_slice(&[0; 23]);
    packet.extend_from_slice(settings.username.as_bytes());
    packet.push(0);
    super::packets::put_lenenc(&mut packet, response.len());
    packet.extend_from_slice(&response);
    if let Some(database) = &settings.database {
        packet.extend_from_slice(database.as_bytes());
        packet.push(0);
    }
    packet.extend_from_slice(&server.plugin);
    packet.push(0);
    let seq = conn.seq.wrapping_add(1);
    conn.write(seq, &packet).await.map_err(failed)?;
    authenticate(&mut conn, settings).await?;
    setup(&mut conn, settings).await?;
    Ok(conn)
}

/// Follows the server's answers to the login until it accepts or refuses it.
async fn authenticate(conn: &mut Conn, settings: &Settings) -> Result<(), Refused> {
    let failed = |e: std::io::Error| Refused::Failed(e.to_string());
    loop {
        let answer = conn.read_owned().await.map_err(failed)?;
        match answer.first() {
            Some(0x00) => return Ok(()),
            Some(0xFF) => return Err(Refused::Failed(ServerError::parse(&answer).to_string())),
            Some(0xFE) => {
                // an authentication switch: another plugin, with fresh scramble data
                let mut fields = Fields::new(&answer[1..]);
                let plugin = fields.nul_terminated().to_vec();
                let data = fields.rest();
                let data = data.strip_suffix(&[0]).unwrap_or(data);
                let response = scramble(&plugin, &settings.password, data)?;
                let seq = conn.seq.wrapping_add(1);
                conn.write(seq, &response).await.map_err(failed)?;
            }
            _ => return Err(Refused::Unsupported("the account's authentication needs more than a password scramble")),
        }
    }
}

/// Runs the statement sqlx runs on each of its new connections (`sql_mode`, time zone, names).
async fn setup(conn: &mut Conn, settings: &Settings) -> Result<(), Refused> {
    let failed = |e: std::io::Error| Refused::Failed(e.to_string());
    conn.command(super::COM_QUERY, settings.session_setup.as_bytes()).await.map_err(failed)?;
    let answer = conn.read_owned().await.map_err(failed)?;
    match answer.first() {
        Some(0x00) => Ok(()),
        Some(0xFF) => Err(Refused::Failed(ServerError::parse(&answer).to_string())),
        _ => Err(Refused::Unsupported("the session setup returned rows")),
    }
}

/// What the server's greeting says.
struct Greeting {
    connection_id: u32,
    capabilities: u32,
    scramble: Vec<u8>,
    plugin: Vec<u8>,
}

impl Greeting {
    fn parse(payload: &[u8]) -> Result<Self, Refused> {
        let bad = || Refused::Unsupported("an unexpected greeting");
        if payload.first() == Some(&0xFF) {
            return Err(Refused::Failed(ServerError::parse(payload).to_string()));
        }
        let mut fields = Fields::new(payload);
        if fields.u8() != Some(10) {
            return Err(Refused::Unsupported("a protocol version other than 10"));
        }
        let _version = fields.nul_terminated();
        let connection_id = fields.u32().ok_or_else(bad)?;
        let mut scramble = fields.take(8).ok_or_else(bad)?.to_vec();
        let _filler = fields.u8();
        let low = fields.u16().ok_or_else(bad)?;
        let _charset = fields.u8().ok_or_else(bad)?;
        let _status = fields.u16().ok_or_else(bad)?;
        let high = fields.u16().ok_or_else(bad)?;
        let capabilities = u32::from(low) | u32::from(high) << 16;
        let data_length = usize::from(fields.u8().ok_or_else(bad)?);
        let _reserved = fields.take(10).ok_or_else(bad)?; // 6 reserved, 4 of MariaDB's capabilities
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let rest = fields.take(data_length.saturating_sub(8).max(13)).ok_or_else(bad)?;
            scramble.extend_from_slice(rest.strip_suffix(&[0]).unwrap_or(rest));
        }
        let plugin = fields.nul_terminated().to_vec();
        Ok(Self { connection_id, capabilities, scramble, plugin })
    }
}

/// The login's password proof for `plugin`: `mysql_native_password`'s, or an empty one for an
/// empty password (which every password plugin takes as such).
fn scramble(plugin: &[u8], password: &str, nonce: &[u8]) -> Result<Vec<u8>, Refused> {
    if password.is_empty() {
        return Ok(Vec::new());
    }
    if plugin != NATIVE_PASSWORD {
        return Err(Refused::Unsupported("an authentication plugin other than mysql_native_password"));
    }
    // SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))
    let hashed = Sha1::digest(password.as_bytes());
    let twice = Sha1::digest(hashed);
    let mut salted = Sha1::new();
    salted.update(nonce.get(..20).unwrap_or(nonce));
    salted.update(twice);
    let salted = salted.finalize();
    Ok(hashed.iter().zip(salted.iter()).map(|(a, b)| a ^ b).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Option<Settings> {
        let url = SqlUrl::parse(text).unwrap();
        Settings::new(&crate::options::build_mysql(&url).ok().unwrap(), &url)
    }

    #[test]
    fn only_plain_tcp_utf8mb4_settings_are_served() {
        let s = settings("mysql://u:pw@db.example:3307/app?charset=utf8mb4&timezone=%2B02:00").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.username.as_str()), ("db.example", 3307, "u"));
        assert_eq!((s.password.as_str(), s.database.as_deref()), ("pw", Some("app")));
        assert!(s.session_setup.contains("time_zone='+02:00'"), "{}", s.session_setup);
        assert!(s.session_setup.contains("COLLATE utf8mb4_unicode_ci"), "{}", s.session_setup);
        assert!(!format!("{s:?}").contains("pw"));
        let defaults = settings("mysql://").unwrap();
        assert_eq!((defaults.host.as_str(), defaults.port, defaults.username.as_str()), ("localhost", 3306, "root"));
        assert!(defaults.session_setup.contains("time_zone='+00:00'"));
        assert!(settings("mysql://h/db?ssl-mode=disabled").unwrap().tls_disabled);
        assert!(!settings("mysql://h/db?ssl_mode=PREFERRED").unwrap().tls_disabled);
        let collated = settings("mysql://h/db?collation=utf8mb4_bin").unwrap();
        assert!(collated.session_setup.contains("COLLATE utf8mb4_bin"), "{}", collated.session_setup);
        for declined in [
            "mysql://u@h/db?ssl_mode=REQUIRED",
            "mysql://u@h/db?unix_socket=/tmp/mysql.sock",
            "mysql://u@h/db?charset=latin1",
            "mysql://u@h/db?ssl_ca=/ca.pem",
            "mysql://u@h/db?timezone=%27",
        ] {
            assert!(settings(declined).is_none(), "{declined}");
        }
    }

    #[test]
    fn native_password_scramble_matches_the_protocol_example() {
        // the proof is SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))): XOR-ing it back with the salted
        // part gives SHA1(pw), whose SHA1 is what the server stores
        let nonce: Vec<u8> = (1..=20).collect();
        let proof = scramble(NATIVE_PASSWORD, "secret", &nonce).ok().unwrap();
        let stored = Sha1::digest(Sha1::digest(b"secret"));
        let mut salted = Sha1::new();
        salted.update(&nonce);
        salted.update(stored);
        let salted = salted.finalize();
        let recovered: Vec<u8> = proof.iter().zip(salted.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(Sha1::digest(&recovered), stored);
        assert!(scramble(NATIVE_PASSWORD, "", &nonce).ok().unwrap().is_empty());
        assert!(scramble(b"client_ed25519", "secret", &nonce).is_err());
    }
}
