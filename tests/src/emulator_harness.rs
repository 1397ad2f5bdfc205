//! The core's conformance harness ([`connections_core::testing::Harness`]) for the types that
//! run on the Snowflake driver (`snowflake`, `snowpark`, `snowflake-callers-rights`), against
//! the fakesnow emulator: they answer the same queries and differ only in how they log in.

use std::marker::PhantomData;

use connections_core::BaseConnection;
use connections_core::testing::Harness;

/// The `protocol`, `host` and `port` of the emulator's URL (`http://127.0.0.1:8765`).
///
/// # Panics
/// When `url` is not `protocol://host:port`.
pub fn endpoint(url: &str) -> (String, String, u16) {
    let (protocol, rest) = url.split_once("://").expect("the emulator's URL: protocol://host:port");
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':').expect("the emulator's URL: host:port");
    (protocol.to_owned(), host.to_owned(), port.parse().expect("the emulator's port"))
}

/// The lines that log in with a credential (`password = '...'`, a viewer token, ...).
type Login = Box<dyn Fn(&str) -> String + Send + Sync>;

/// The conformance harness of the Snowflake type `C` on the emulator at a URL.
pub struct EmulatorHarness<C> {
    /// `host`, `port` and `protocol` of the emulator.
    endpoint: String,
    login: Login,
    /// The credential of the ordinary sections.
    credential: String,
    _type: PhantomData<fn() -> C>,
}

impl<C> EmulatorHarness<C> {
    /// A type that logs in with a user name and a password.
    pub fn with_password(url: &str) -> Self {
        Self::new(url, "p", |secret| format!("user = 'u'\npassword = '{secret}'"))
    }

    /// A type that logs in with the lines `login` gives for a credential: `credential` in the
    /// ordinary sections, the planted secret in [`Harness::section_with_secret`].
    ///
    /// # Panics
    /// When `url` is not `protocol://host:port`.
    pub fn new(url: &str, credential: &str, login: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        let (protocol, host, port) = endpoint(url);
        Self {
            endpoint: format!("host = '{host}'\nport = {port}\nprotocol = '{protocol}'"),
            login: Box::new(login),
            credential: credential.to_owned(),
            _type: PhantomData,
        }
    }
}

impl<C: BaseConnection> Harness for EmulatorHarness<C> {
    type Connection = C;

    fn section(&self) -> String {
        format!(
            "account = 'test'\n{}\ndatabase = 'conf_db'\nschema = 'conf_schema'\n{}",
            (self.login)(&self.credential),
            self.endpoint
        )
    }

    fn changed_section(&self) -> String {
        format!("{}\nrole = 'analyst'", self.section())
    }

    fn query(&self) -> Option<String> {
        Some("select 1 as one".into())
    }

    fn failing_query(&self) -> Option<String> {
        Some("select * from conformance_no_such_table".into())
    }

    fn slow_query(&self) -> Option<String> {
        // DuckDB behind the emulator sums sixty million numbers: well over 100 ms
        Some("select sum(range) as s from range(60000000)".into())
    }

    fn section_with_secret(&self, secret: &str) -> Option<String> {
        Some(format!("account = 'test'\n{}\n{}", (self.login)(secret), self.endpoint))
    }
}
