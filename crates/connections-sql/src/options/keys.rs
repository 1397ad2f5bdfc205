//! The keys of a connection of type `sql`: its top-level keys and the keys of
//! `create_engine_kwargs`, declared with the core's `config_keys!`.

connections_core::config_keys! {
    /// A top-level key of the configuration of a connection of type `sql`, in its
    /// `[connections.<name>]` section or in the options passed to `connection()`. The names are
    /// Streamlit's; `FromStr` takes them, `AsRef<str>` gives them back.
    ///
    /// An option replaces the section's value of the same key. When `url` is present (in either
    /// source) the part keys, `dialect` to `query`, are ignored.
    pub enum SqlKey in "for a connection of type `sql`" {
        /// `url`, a string: the whole database URL, SQLAlchemy style,
        /// `dialect[+driver]://[user[:password]@][host][:port][/database][?key=value&...]`, with
        /// user, password and database percent-encoded. Wins over every part key. Streamlit: `url`.
        Url = "url",
        /// `dialect`, a string: `sqlite`, `postgresql` (or `postgres`), `mysql` or `mariadb`; may
        /// carry the driver (`mysql+pymysql`). Required without `url`. Streamlit: `dialect`.
        Dialect = "dialect",
        /// `driver`, a string: the Python driver SQLAlchemy would load (`psycopg2`, `pymysql`, ...);
        /// kept in the URL, with no effect on how the port connects. Optional. Streamlit: `driver`.
        Driver = "driver",
        /// `username`, a string. Required without `url` (`""` is accepted, as for SQLite).
        /// Streamlit: `username`.
        Username = "username",
        /// `password`, a string (or an integer, as Python's `str()` would take it). Optional; never
        /// shown. Streamlit: `password`.
        Password = "password",
        /// `host`, a string: name or address (an IPv6 address without brackets), or for PostgreSQL a
        /// socket directory. Required without `url` (`""` is accepted). Streamlit: `host`.
        Host = "host",
        /// `port`: an integer, a float (truncated, as Python's `int()`), or a string holding an
        /// integer; 0 to 65535. Default: the backend's (5432, 3306). Streamlit: `port`.
        Port = "port",
        /// `database`, a string: the database name, or for SQLite the file path (relative to the
        /// working directory; absent or `:memory:` for an in-memory database). Optional.
        /// Streamlit: `database`.
        Database = "database",
        /// `query`, a table of strings, numbers or booleans (or arrays of them, for repeated
        /// parameters): the URL's query parameters, which the backend reads as connection
        /// parameters (`sslmode`, `charset`, ...). Optional. Streamlit: `query`.
        Query = "query",
        /// `create_engine_kwargs`, a table of SQLAlchemy engine options; see [`EngineKwarg`] for the
        /// supported keys. Optional. Streamlit: `create_engine_kwargs`.
        CreateEngineKwargs = "create_engine_kwargs",
        /// `autocommit`, a boolean: run each statement in its own transaction (SQLAlchemy's
        /// `AUTOCOMMIT` isolation level). Default `false`. Streamlit takes it only as a keyword
        /// argument of `st.connection`; here it is read from the options and from the section alike.
        Autocommit = "autocommit",
        /// `type`: the connection type (`"sql"`), read by the core when it picks the type; ignored
        /// here.
        Type = "type",
    }
}

impl SqlKey {
    /// The keys required when there is no `url`, in the order a missing-keys error lists them.
    pub(super) const REQUIRED: [Self; 3] = [Self::Dialect, Self::Username, Self::Host];

    /// Whether the key is one of Streamlit's nine connection parameters (`url` and the parts),
    /// the only option keys that make a configuration non-empty.
    pub(super) const fn is_connection_param(self) -> bool {
        !matches!(self, Self::CreateEngineKwargs | Self::Autocommit | Self::Type)
    }

    /// Whether the key is a part of the URL, ignored when `url` is present.
    pub(super) const fn is_part(self) -> bool {
        self.is_connection_param() && !matches!(self, Self::Url)
    }
}

connections_core::config_keys! {
    /// A key of `create_engine_kwargs`: the SQLAlchemy engine options the port supports, mapped to
    /// sqlx's pool and connect options. `FromStr` takes SQLAlchemy's names, `AsRef<str>` gives them
    /// back; any other SQLAlchemy option is an error naming it.
    pub enum EngineKwarg in "in `create_engine_kwargs`" {
        /// `pool_size`, an integer ≥ 0: connections kept open. With `max_overflow` it sets the pool's
        /// maximum size, `pool_size + max_overflow`. Default 5.
        PoolSize = "pool_size",
        /// `max_overflow`, an integer ≥ -1: connections allowed beyond `pool_size`; -1 for no limit.
        /// Default 10.
        MaxOverflow = "max_overflow",
        /// `pool_timeout`, a number of seconds > 0: how long to wait for a free connection
        /// (sqlx's `acquire_timeout`). Default 30.
        PoolTimeout = "pool_timeout",
        /// `pool_recycle`, a number of seconds: connections older than this are replaced (sqlx's
        /// `max_lifetime`, at least 1 s); negative for never. Default -1 (never).
        PoolRecycle = "pool_recycle",
        /// `pool_pre_ping`, a boolean: check that a connection is alive before handing it out
        /// (sqlx's `test_before_acquire`). Default `false`.
        PoolPrePing = "pool_pre_ping",
        /// `echo`, a boolean (or `"debug"`, taken as `true`): log every statement at level INFO.
        /// Default `false`.
        Echo = "echo",
        /// `connect_args`, a table of strings, numbers or booleans: extra connection parameters,
        /// merged into the URL's query (replacing a parameter of the same name), where the backend
        /// reads them (`sslmode`, `application_name`, `charset`, `connect_timeout`, ...).
        ConnectArgs = "connect_args",
        /// `query_timeout`, a number of seconds > 0 (this port's own; SQLAlchemy has none): how long
        /// a query or statement may run, from the moment it has a connection until its whole result
        /// is read. Past it the statement is stopped (PostgreSQL also cancels it on the server, with
        /// `statement_timeout`) and fails with an error naming `query_timeout`; its connection is
        /// closed, not reused. Default: none.
        QueryTimeout = "query_timeout",
    }
}

impl EngineKwarg {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_print() {
        for key in SqlKey::ALL {
            assert_eq!(key.as_ref().parse::<SqlKey>(), Ok(*key));
            assert_eq!(key.to_string(), key.as_ref());
        }
        for kwarg in EngineKwarg::ALL {
            assert_eq!(kwarg.as_ref().parse::<EngineKwarg>(), Ok(*kwarg));
        }
        let err = "hots".parse::<SqlKey>().unwrap_err();
        assert_eq!(err.key(), "hots");
        assert_eq!(err.closest(), Some("host"));
        assert!(!err.supported().contains(&"type"));
        assert_eq!(
            err.to_string(),
            "`hots`: unknown key for a connection of type `sql`; supported keys: url, dialect, driver, username, \
             password, host, port, database, query, create_engine_kwargs, autocommit (did you mean `host`?)"
        );
        let err = "pool_sise".parse::<EngineKwarg>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`pool_sise`: unknown key in `create_engine_kwargs`; supported keys: pool_size, max_overflow, \
             pool_timeout, pool_recycle, pool_pre_ping, echo, connect_args, query_timeout (did you mean `pool_size`?)"
        );
        assert_eq!("URL".parse::<SqlKey>().unwrap_err().closest(), Some("url"));
        assert_eq!("user".parse::<SqlKey>().unwrap_err().closest(), None);
    }
}
