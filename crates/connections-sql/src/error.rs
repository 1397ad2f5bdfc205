//! Sorting sqlx's errors into connection failures (retried) and statement errors (not).

use connections_core::Error;

/// SQLSTATE codes that mean the connection, not the statement, failed (decision 9): class 08
/// (connection exception), and the server shutting down or refusing connections.
pub(crate) fn connection_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// MySQL/MariaDB server error numbers that mean the connection is gone: too many connections,
/// server shutdown, aborted or killed connection, lost connection.
#[cfg(feature = "mysql")]
pub(crate) fn connection_mysql_error(number: u16) -> bool {
    matches!(number, 1040 | 1053 | 1077 | 1152 | 1159 | 1161 | 1927 | 2006 | 2013)
}

/// Whether a sqlx database error is a MySQL/MariaDB error of [`connection_mysql_error`].
#[cfg(feature = "mysql")]
fn connection_mysql_number(db: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|e| connection_mysql_error(e.number()))
}

#[cfg(not(feature = "mysql"))]
fn connection_mysql_number(_: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    false
}

/// Whether a database error met while connecting is the server refusing the login: SQLSTATE
/// class 28 (invalid authorization: PostgreSQL's 28P01 wrong password and 28000, MySQL's
/// 28000), or MySQL/MariaDB's 1045 (access denied) and 1698 (access denied, no password).
fn login_refused(db: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    db.code().is_some_and(|code| code.starts_with("28")) || refused_mysql_number(db)
}

#[cfg(feature = "mysql")]
fn refused_mysql_number(db: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|e| matches!(e.number(), 1045 | 1698))
}

#[cfg(not(feature = "mysql"))]
fn refused_mysql_number(_: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    false
}

/// A wait that a timeout option bounded ran out: which option, and how long it allowed.
#[derive(Debug)]
pub(crate) struct TimedOut {
    /// What did not finish.
    pub(crate) what: &'static str,
    /// The option that bounds it.
    pub(crate) option: &'static str,
    /// Its value.
    pub(crate) after: std::time::Duration,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} did not finish within `{}` ({:?})", self.what, self.option, self.after)
    }
}

impl std::error::Error for TimedOut {}

/// Classifies a sqlx error met while running a statement.
pub(crate) fn classify(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::connection_lost(error),
        sqlx::Error::Database(db) => {
            let code = db.code();
            let lost = code.as_deref().is_some_and(connection_sqlstate) || connection_mysql_number(db.as_ref());
            if lost { Error::connection_lost(error) } else { Error::statement(error) }
        }
        _ => Error::statement(error),
    }
}

/// Whether `error` is the server's own report that a statement failed (syntax, constraint,
/// permission, division by zero): the connection itself is fine.
pub(crate) fn reported_by_server(error: &Error) -> bool {
    !error.is_retryable()
        && std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<sqlx::Error>())
            .is_some_and(|e| matches!(e, sqlx::Error::Database(_)))
}

/// Classifies a sqlx error met while connecting: a refused login is [`Error::auth`] (never
/// retried: repeating it may lock the user out), a TLS handshake failure says which kind it is.
pub(crate) fn classify_connect(error: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &error
        && login_refused(db.as_ref())
    {
        return Error::auth(error);
    }
    match tls_failure(&error) {
        Some(why) => Error::connect(TlsFailure { why, source: error }),
        None => Error::connect(error),
    }
}

/// A TLS handshake that failed, with what went wrong in plain words; the cause is sqlx's error.
#[derive(Debug)]
struct TlsFailure {
    why: &'static str,
    source: sqlx::Error,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the TLS handshake failed: {}", self.why)
    }
}

impl std::error::Error for TlsFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What kind of TLS failure `error` is, if it is one: the server refused TLS, its certificate
/// did not verify (and why), or the host name did not match.
fn tls_failure(error: &sqlx::Error) -> Option<&'static str> {
    match error {
        // sqlx's own words when the server answers the TLS request with "no"
        sqlx::Error::Tls(e) if e.to_string().contains("does not support TLS") => {
            Some("the server refused TLS: it offers none, and `sslmode`/`ssl_mode` requires it")
        }
        #[cfg(feature = "rustls")]
        sqlx::Error::Io(io) => {
            use rustls::CertificateError as Cert;
            let rustls::Error::InvalidCertificate(cert) = io.get_ref()?.downcast_ref::<rustls::Error>()? else {
                return Some("the server's certificate was refused");
            };
            Some(match cert {
                Cert::NotValidForName => {
                    "the host name did not match the server's certificate (connect by a name the certificate lists)"
                }
                Cert::UnknownIssuer => {
                    "the server's certificate did not verify: no trusted CA signed it (give that CA as `sslrootcert`/`ssl_ca`)"
                }
                Cert::Expired => "the server's certificate did not verify: it has expired",
                Cert::NotValidYet => "the server's certificate did not verify: it is not valid yet",
                Cert::Revoked => "the server's certificate did not verify: it was revoked",
                _ => "the server's certificate did not verify",
            })
        }
        _ => None,
    }
}

/// Runs `work` within `limit`: past it, `work` is dropped (which closes the connection it held)
/// and the error names the option.
pub(crate) async fn within<T>(
    limit: Option<std::time::Duration>,
    what: &'static str,
    option: &'static str,
    timed_out: fn(TimedOut) -> Error,
    work: impl Future<Output = connections_core::Result<T>>,
) -> connections_core::Result<T> {
    let Some(after) = limit else { return work.await };
    match tokio::time::timeout(after, work).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(TimedOut { what, option, after })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connections_core::ErrorKind;

    #[test]
    fn io_is_retryable_and_decoding_is_not() {
        let io = classify(sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset")));
        assert_eq!(io.kind(), ErrorKind::ConnectionLost);
        assert!(io.is_retryable());
        let decode = classify(sqlx::Error::ColumnNotFound("x".into()));
        assert_eq!(decode.kind(), ErrorKind::Statement);
        assert!(!decode.is_retryable());
        assert!(connection_sqlstate("08006") && connection_sqlstate("57P01") && !connection_sqlstate("42601"));
    }
}
