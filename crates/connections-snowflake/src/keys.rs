//! The configuration keys of a connection of type `snowflake`, spelled as the Python connector
//! (`snowflake.connector.connect`) spells them.

connections_core::config_keys! {
    /// The keys of a connection of type `snowflake`: of its `[connections.<name>]` section, of the
    /// options passed to `connection()`, and of a connection in the connector's own
    /// `connections.toml` / `config.toml`.
    ///
    /// ```
    /// use connections_snowflake::SnowflakeKey;
    /// assert_eq!("private_key_path".parse::<SnowflakeKey>(), Ok(SnowflakeKey::PrivateKeyFile));
    /// let unknown = "pasword".parse::<SnowflakeKey>().unwrap_err();
    /// assert_eq!(unknown.closest(), Some("password"));
    /// ```
    pub enum SnowflakeKey in "for a connection of type `snowflake`" {
        /// `account`: the account identifier (`myorg-myaccount`, or a locator like `xy12345.eu-west-1`). Required.
        Account = "account",
        /// `user`: the login name. Required except with OAuth.
        User = "user",
        /// `password`: the password (default authenticator `snowflake`).
        Password = "password",
        /// `role`: the role of the session.
        Role = "role",
        /// `warehouse`: the warehouse of the session.
        Warehouse = "warehouse",
        /// `database`: the database of the session.
        Database = "database",
        /// `schema`: the schema of the session.
        Schema = "schema",
        /// `authenticator`: `snowflake` (password), `snowflake_jwt` (key pair) or `oauth`.
        Authenticator = "authenticator",
        /// `private_key_file`: path of a PKCS#8 PEM private key (also `private_key_path`).
        PrivateKeyFile = "private_key_file" | "private_key_path",
        /// `private_key_file_pwd`: the passphrase of an encrypted private key.
        PrivateKeyFilePwd = "private_key_file_pwd",
        /// `private_key`: the PKCS#8 PEM private key itself.
        PrivateKey = "private_key",
        /// `token`: an OAuth access token (`authenticator = "oauth"`).
        Token = "token",
        /// `token_file_path`: a file holding the OAuth access token, read at each login.
        TokenFilePath = "token_file_path",
        /// `host`: the server's host name (default `<account>.snowflakecomputing.com`).
        Host = "host",
        /// `port`: the server's port (default 443).
        Port = "port",
        /// `protocol`: `https` (default) or `http`.
        Protocol = "protocol",
        /// `login_timeout`: seconds a login may take (default 120).
        LoginTimeout = "login_timeout",
        /// `network_timeout`: seconds one HTTP request may take (default: none).
        NetworkTimeout = "network_timeout",
        /// `query_timeout`: seconds a query may run before it is cancelled (default: none).
        QueryTimeout = "query_timeout",
        /// `client_session_keep_alive`: send heartbeats so that an idle session does not expire.
        ClientSessionKeepAlive = "client_session_keep_alive",
        /// `client_session_keep_alive_heartbeat_frequency`: seconds between heartbeats (default 3600).
        ClientSessionKeepAliveHeartbeatFrequency = "client_session_keep_alive_heartbeat_frequency",
        /// `client_prefetch_threads`: result chunks downloaded at once (default 4; 1 to 10, as
        /// the Python connector clamps it).
        ClientPrefetchThreads = "client_prefetch_threads",
        /// `session_parameters`: a table of session parameters (`QUERY_TAG`, `TIMEZONE`, ...).
        SessionParameters = "session_parameters",
        /// `connection_name`: the connection of the connector's own files to read.
        ConnectionName = "connection_name",
        /// `connections_file_path`: the connector's `connections.toml` to read (default
        /// `$SNOWFLAKE_HOME/connections.toml` or `~/.snowflake/connections.toml`).
        ConnectionsFilePath = "connections_file_path",
        /// `type`: read by the core.
        Type = "type",
    }
}
