//! The query cache stays within its byte budget whatever its entries hold: large results, empty
//! results with long SQL texts, many one-row results. Memory is read from `/proc/self/status`.

#![allow(clippy::unwrap_used)] // test code

use connections::QueryCache;
use connections_tests::open_sql_with;

/// The process's resident set, in bytes (Linux), or `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

const BUDGET: u64 = 1 << 20;

/// Fills a 1 MiB cache with `count` distinct cached queries made by `sql(k)` and checks that the
/// cache's own weight and the process's memory stay near the budget.
async fn stays_within_budget(what: &str, count: usize, sql: impl Fn(usize) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("cache.db").display());
    let (project, _default_cache) = open_sql_with(&url, "cache_budget", "").await;
    let cache = QueryCache::new(BUDGET);
    let conn = connections::connection("cache_budget")
        .secrets_store(project.store())
        .query_cache(cache.clone())
        .open_as::<connections::sql::SqlConnection>()
        .await
        .unwrap();
    // warm up the allocator and the connection before measuring
    for k in 0..50 {
        conn.query(sql(count + k)).await.unwrap();
    }
    cache.clear();
    cache.run_pending_tasks().await;
    let before = resident_bytes();
    for k in 0..count {
        conn.query(sql(k)).await.unwrap();
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(stats.bytes <= BUDGET, "{what}: the cache weighs {} bytes, over its budget", stats.bytes);
    assert!(stats.evictions > 0, "{what}: nothing was evicted: {stats:?}");
    if let (Some(before), Some(after)) = (before, resident_bytes()) {
        let grown = after.saturating_sub(before);
        assert!(grown < 24 * BUDGET, "{what}: the process grew by {} MiB for a 1 MiB cache", grown >> 20);
    }
}

/// One test, so that no other test of this binary allocates while memory is measured.
#[tokio::test]
async fn every_kind_of_entry_counts_against_the_budget() {
    let padding = "x".repeat(10_000);
    stays_within_budget("empty results", 10_000, |k| format!("select {k} as n where 0 -- {padding}")).await;
    stays_within_budget("one-row results", 10_000, |k| format!("select {k} as n, 'text' as s")).await;
    stays_within_budget("large results", 100, |k| {
        format!(
            "with recursive c(i) as (select 1 union all select i + 1 from c where i < 20000) select i + {k} as n from c"
        )
    })
    .await;
}
