//! Type `kv`: a fixed table of keys and values from `secrets.toml`, queried by key. A connector
//! written against the published `connections-core` alone, as a third-party author would.
//!
//! ```toml
//! [connections.colours]
//! type = "kv"
//! entries = { sky = "blue", grass = "green" }
//! token = "..."          # optional: a credential, which must never show
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use connections_core::arrow::array::{ArrayRef, StringArray};
use connections_core::arrow::record_batch::RecordBatch;
use connections_core::toml::Value;
use connections_core::{
    BaseConnection, ConfigProblem, ConnectParams, DataFrame, Error, Query, QueryRequest, Result, UnknownKey,
    async_trait,
};

connections_core::config_keys! {
    /// A key of a connection of type `kv`.
    pub enum KvKey in "for a connection of type `kv`" {
        /// `entries`, a table of strings. Required.
        Entries = "entries",
        /// `token`, a string: a credential (checked for presence only).
        Token = "token",
        /// `type`, read by the core.
        Type = "type",
    }
}

/// The query that takes a while, so that concurrent callers overlap.
pub const SLOW_KEY: &str = "slow";

/// A connection of type `kv`.
pub struct KvConnection {
    core: connections_core::ConnectionCore<Self>,
}

/// The raw client: the entries, and the credential (kept out of every output: no `Debug`).
pub struct KvClient {
    entries: BTreeMap<String, String>,
    #[allow(dead_code)]
    token: Option<String>,
}

impl KvClient {
    fn new(params: &ConnectParams) -> Result<Self> {
        let unknown: Vec<UnknownKey> = params.secrets().keys().filter_map(|k| KvKey::from_str(k).err()).collect();
        if let Some(first) = unknown.first() {
            return Err(params.error(first.key(), first.problem(&unknown)));
        }
        let entries = match params.get(KvKey::Entries.as_ref()) {
            Some(Value::Table(table)) => {
                let mut entries = BTreeMap::new();
                for (key, value) in table {
                    let Value::String(value) = value else {
                        return Err(params.expected("entries", "a table of strings", value));
                    };
                    entries.insert(key.clone(), value.clone());
                }
                entries
            }
            Some(other) => return Err(params.expected("entries", "a table of strings", other)),
            None => {
                let problem = ConfigProblem::MissingKeys { keys: vec!["entries".into()], hint: String::new() };
                return Err(params.error("entries", problem));
            }
        };
        let token = match params.get(KvKey::Token.as_ref()) {
            None => None,
            Some(Value::String(token)) => Some(token.clone()),
            Some(other) => return Err(params.expected("token", "a string", other)),
        };
        Ok(Self { entries, token })
    }
}

#[async_trait]
impl BaseConnection for KvConnection {
    type Raw = KvClient;
    const TYPE_NAME: &'static str = "kv";

    async fn connect(params: &ConnectParams) -> Result<KvClient> {
        KvClient::new(params)
    }

    connections_core::core_accessors!(query);
}
connections_core::register_connection!(KvConnection);

#[async_trait]
impl Query for KvConnection {
    async fn query_request(&self, request: QueryRequest) -> Result<DataFrame> {
        self.core
            .cached_query(&request, |client| {
                let key = Arc::clone(&request.sql);
                async move {
                    if &*key == SLOW_KEY {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    let value = match client.entries.get(&*key) {
                        Some(value) => value.clone(),
                        None if &*key == SLOW_KEY => String::new(),
                        None => return Err(Error::statement(format!("no key `{key}`"))),
                    };
                    let column = Arc::new(StringArray::from(vec![value])) as ArrayRef;
                    let batch = RecordBatch::try_from_iter([("value", column)]).map_err(Error::statement)?;
                    Ok(DataFrame::from(batch))
                }
            })
            .await
    }
}
