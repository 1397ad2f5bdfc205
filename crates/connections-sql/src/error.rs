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

/// Classifies a sqlx error met while connecting.
pub(crate) fn classify_connect(error: sqlx::Error) -> Error {
    Error::connect(error)
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
