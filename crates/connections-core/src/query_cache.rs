//! The query-result cache: per-entry TTL, single-flight, a byte budget.

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use moka::notification::RemovalCause;

use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::lifecycle::InstanceId;
use crate::param::Param;

/// The default byte budget of the process-wide cache: 1 GiB of Arrow memory.
pub const DEFAULT_BUDGET_BYTES: u64 = 1 << 30;

/// What identifies a cached result: the connection instance, the exact SQL text, the parameters
/// and the TTL (decision 8). The same query with another TTL is another entry.
#[derive(Clone, PartialEq, Eq)]
pub struct QueryKey {
    instance: InstanceId,
    sql: Arc<str>,
    params: Arc<[(String, Param)]>,
    ttl: Option<Duration>,
}

impl QueryKey {
    /// A key. `ttl = None` keeps the result until it is cleared or evicted for space.
    pub fn new(
        instance: InstanceId,
        sql: impl Into<Arc<str>>,
        params: Vec<(String, Param)>,
        ttl: Option<Duration>,
    ) -> Self {
        Self { instance, sql: sql.into(), params: params.into(), ttl }
    }

    /// The connection instance the result belongs to.
    pub fn instance(&self) -> InstanceId {
        self.instance
    }
}

impl Hash for QueryKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.instance.hash(state);
        self.sql.hash(state);
        self.params.hash(state);
        self.ttl.hash(state);
    }
}

impl fmt::Debug for QueryKey {
    /// Parameter values are left out: they may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.debug_struct("QueryKey")
            .field("instance", &self.instance)
            .field("sql", &self.sql)
            .field("params", &params)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// What one entry costs beyond its key's text and parameters and its Arrow buffers: the cache's
/// node and bookkeeping, the key's and the frame's allocations, the schema (an estimate, on the
/// generous side, so that many tiny entries cannot outgrow the budget).
const ENTRY_OVERHEAD_BYTES: usize = 512;

impl QueryKey {
    /// The bytes the key holds: its SQL text and its parameters (names and values).
    fn heap_bytes(&self) -> usize {
        let params: usize = self
            .params
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Param::Str(s) => s.len(),
                    Param::Bytes(b) => b.len(),
                    _ => 0,
                };
                name.len() + value + std::mem::size_of::<(String, Param)>()
            })
            .sum();
        self.sql.len() + params
    }
}

/// An entry's weight against the byte budget: everything it holds, not only its Arrow buffers
/// (an empty result with a long SQL text still costs memory).
fn entry_weight(key: &QueryKey, frame: &DataFrame) -> u32 {
    let schema: usize = frame.schema().fields().iter().map(|f| f.name().len() + 64).sum();
    let bytes = frame.arrow_bytes() + key.heap_bytes() + schema + ENTRY_OVERHEAD_BYTES;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Counters of a [`QueryCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups served without running the query (including callers that waited for another
    /// caller's identical query).
    pub hits: u64,
    /// Queries actually run.
    pub misses: u64,
    /// Entries evicted to stay within the byte budget.
    pub evictions: u64,
    /// Entries dropped because their TTL passed.
    pub expirations: u64,
    /// Entries held now (an estimate until pending maintenance has run).
    pub entries: u64,
    /// Bytes held now: the entries' Arrow buffers, keys and bookkeeping (same caveat).
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

/// Caches query results by [`QueryKey`].
///
/// - **Per-entry TTL**: each entry expires after its key's `ttl`; `None` never expires.
/// - **Single-flight**: concurrent misses on one key run the query once; the others wait and get
///   the same result. A failure reaches every waiter and is not cached.
/// - **Byte budget**: entries are weighed by what they hold (Arrow memory, the SQL text and
///   parameters of their key, a fixed overhead), so that neither large results nor many tiny ones
///   outgrow it; the least useful go first.
/// - **No copies**: a hit hands out the same immutable Arrow buffers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), connections_core::Error> {
/// use connections_core::{DataFrame, InstanceId, QueryCache, QueryKey};
/// use connections_core::arrow::{array::Int64Array, record_batch::RecordBatch};
/// use std::sync::Arc;
///
/// let cache = QueryCache::new(64 << 20);
/// let key = QueryKey::new(InstanceId::next(), "select 1", vec![], None);
/// let run = || async {
///     let batch = RecordBatch::try_from_iter([("one", Arc::new(Int64Array::from(vec![1])) as _)]).unwrap();
///     Ok(DataFrame::from(batch))
/// };
/// let first = cache.get_or_run(key.clone(), run()).await?;
/// let again = cache.get_or_run(key, run()).await?;
/// assert_eq!(again.num_rows(), 1);
/// assert_eq!((cache.stats().misses, cache.stats().hits), (1, 1));
/// # let _ = first; Ok(()) }
/// ```
#[derive(Clone)]
pub struct QueryCache {
    results: Cache<QueryKey, DataFrame>,
    counters: Arc<Counters>,
    budget: u64,
}

struct PerKeyTtl;

impl Expiry<QueryKey, DataFrame> for PerKeyTtl {
    fn expire_after_create(&self, key: &QueryKey, _: &DataFrame, _: Instant) -> Option<Duration> {
        key.ttl
    }
}

impl QueryCache {
    /// A cache holding at most `budget_bytes` of Arrow memory.
    pub fn new(budget_bytes: u64) -> Self {
        let counters = Arc::new(Counters::default());
        let listener = Arc::clone(&counters);
        let results = Cache::builder()
            .name("connections-query-cache")
            .max_capacity(budget_bytes)
            .weigher(entry_weight)
            .expire_after(PerKeyTtl)
            .support_invalidation_closures()
            .eviction_listener(move |_key, _value, cause| match cause {
                RemovalCause::Size => {
                    listener.evictions.fetch_add(1, Ordering::Relaxed);
                }
                RemovalCause::Expired => {
                    listener.expirations.fetch_add(1, Ordering::Relaxed);
                }
                RemovalCause::Explicit | RemovalCause::Replaced => {}
            })
            .build();
        Self { results, counters, budget: budget_bytes }
    }

    /// The cached result for `key`, or the result of `run` (then cached). Concurrent callers
    /// with the same key share one `run`; an error is shared and not cached.
    pub async fn get_or_run<F>(&self, key: QueryKey, run: F) -> Result<DataFrame>
    where
        F: Future<Output = Result<DataFrame>>,
    {
        if let Some(hit) = self.results.get(&key).await {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(sql = %key.sql, hit = true, rows = hit.num_rows(), "query cache");
            return Ok(hit);
        }
        let ran = AtomicBool::new(false);
        let result = self
            .results
            .try_get_with(key.clone(), async {
                ran.store(true, Ordering::Relaxed);
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                run.await
            })
            .await
            .map_err(Error::unshare);
        if !ran.load(Ordering::Relaxed) && result.is_ok() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
        }
        // field values are only computed when the event is enabled
        tracing::debug!(
            sql = %key.sql,
            hit = !ran.load(Ordering::Relaxed),
            hits = self.counters.hits.load(Ordering::Relaxed),
            misses = self.counters.misses.load(Ordering::Relaxed),
            evictions = self.counters.evictions.load(Ordering::Relaxed),
            "query cache"
        );
        result
    }

    /// Drops every cached result.
    pub fn clear(&self) {
        self.results.invalidate_all();
    }

    /// Drops the cached results of one connection instance.
    pub fn clear_connection(&self, instance: InstanceId) {
        // fails only without `support_invalidation_closures`, which the builder sets
        let _ = self.results.invalidate_entries_if(move |key, _| key.instance == instance);
    }

    /// Runs the cache's pending maintenance (expiry, eviction, counts) now.
    pub async fn run_pending_tasks(&self) {
        self.results.run_pending_tasks().await;
    }

    /// The counters, and the estimated size of the cache.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
            expirations: self.counters.expirations.load(Ordering::Relaxed),
            entries: self.results.entry_count(),
            bytes: self.results.weighted_size(),
        }
    }

    /// The byte budget.
    pub fn budget_bytes(&self) -> u64 {
        self.budget
    }
}

impl fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryCache")
            .field("budget_bytes", &self.budget)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

static GLOBAL: OnceLock<QueryCache> = OnceLock::new();

/// The process-wide query cache every connection uses unless given another one. Its budget is
/// `CONNECTIONS_QUERY_CACHE_BYTES` if set, else [`DEFAULT_BUDGET_BYTES`], unless
/// [`set_query_cache`] installed another cache first.
pub fn query_cache() -> &'static QueryCache {
    GLOBAL.get_or_init(|| {
        let budget = std::env::var("CONNECTIONS_QUERY_CACHE_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_BUDGET_BYTES);
        QueryCache::new(budget)
    })
}

/// Installs the process-wide query cache (for another budget); fails, handing it back, if the
/// cache is already in use.
///
/// ```
/// let cache = connections_core::QueryCache::new(256 << 20);
/// assert!(connections_core::set_query_cache(cache).is_ok());
/// ```
pub fn set_query_cache(cache: QueryCache) -> Result<(), QueryCache> {
    GLOBAL.set(cache)
}
