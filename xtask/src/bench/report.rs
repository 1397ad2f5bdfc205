//! The benchmark's report: the two Markdown tables and the notes on how the figures are measured.

use super::{BackendRun, median, ratio};

/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// How the figures are measured; printed under the table and kept in the JSON.
pub(super) const NOTES: [&str; 5] = [
    "cold = median of N fresh processes (new pool, nothing cached); seconds are wall clock measured \
     in-process around the load call alone: ours `conn.query(sql).await` after `open()` (which \
     connects), connectorx `cx.read_sql(url, sql, return_type=\"arrow\")` (which includes opening its \
     connection)",
    "psql COPY = wall clock of the whole `psql URL -c \"COPY (select * from T) TO STDOUT (FORMAT \
     binary)\" > /dev/null` process (start, connect, COPY): a floor for PostgreSQL",
    "RSS = peak resident set of the whole process after the load (ours VmHWM of /proc/self/status, \
     connectorx ru_maxrss: Python, pyarrow and connectorx included); the baseline before the load is \
     in the second table",
    "Arrow MiB = the Arrow data of our result (buffer lengths, as pyarrow's Table.nbytes counts); the \
     buffers' allocated capacity (DataFrame::arrow_bytes(), the query cache's weight) and connectorx's \
     Table.nbytes are in the second table",
    "hit = one `conn.query(sql).await` answered by the query cache after one cold query, in the same \
     process; median and max over the hits",
];

/// Prints the results table and the table of baselines, as Markdown.
pub(super) fn print_tables(runs: &[BackendRun]) {
    let fmt = |value: Option<f64>, digits: usize| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"));
    let ratio_cell = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}x"));
    let kb_mib = |kb: Option<f64>| kb.map(|kb| kb / 1024.0);
    let bytes_mib = |bytes: Option<f64>| bytes.map(|b| b / MIB);

    let mut main = vec![
        [
            "backend",
            "rows",
            "ours (s)",
            "connectorx (s)",
            "ours/cx",
            "psql COPY (s)",
            "ours/COPY",
            "ours peak RSS (MiB)",
            "Arrow (MiB)",
            "RSS/Arrow",
            "cx peak RSS (MiB)",
            "hit median (µs)",
            "hit max (µs)",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let mut baselines = vec![
        [
            "backend",
            "ours open (s)",
            "ours RSS before query (MiB)",
            "ours Arrow allocated (MiB)",
            "cx RSS before read_sql (MiB)",
            "cx Table.nbytes (MiB)",
            "psql -c 'select 1' (s)",
            "errors",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for run in runs {
        let ours = run.ours_seconds();
        let rss = run.ours_median("peak_rss_kb");
        let arrow = run.ours_median("arrow_used_bytes");
        let rows = run.ours.first().or(run.hit.as_ref()).map_or_else(|| "-".to_owned(), |v| v["rows"].to_string());
        main.push(vec![
            run.label.clone(),
            rows,
            fmt(ours, 3),
            fmt(run.peer_seconds(), 3),
            ratio_cell(ratio(ours, run.peer_seconds())),
            fmt(run.copy_seconds(), 3),
            ratio_cell(ratio(ours, run.copy_seconds())),
            fmt(kb_mib(rss), 1),
            fmt(bytes_mib(arrow), 1),
            ratio_cell(ratio(rss.map(|kb| kb * 1024.0), arrow)),
            fmt(kb_mib(run.peer_median("peak_rss_kb")), 1),
            fmt(run.hit_us("hit_median_us"), 2),
            fmt(run.hit_us("hit_max_us"), 1),
        ]);
        let sides: Vec<&str> = run.errors.iter().map(|(side, _)| side.as_str()).collect();
        baselines.push(vec![
            run.label.clone(),
            fmt(run.ours_median("open_seconds"), 3),
            fmt(kb_mib(run.ours_median("rss_before_kb")), 1),
            fmt(bytes_mib(run.ours_median("arrow_bytes")), 1),
            fmt(kb_mib(run.peer_median("rss_before_kb")), 1),
            fmt(bytes_mib(run.peer_median("arrow_bytes")), 1),
            fmt(median(run.psql_startup.iter().copied()), 3),
            if sides.is_empty() { "-".to_owned() } else { format!("{} (above)", sides.join(", ")) },
        ]);
    }
    print_markdown(&main);
    println!();
    print_markdown(&baselines);
    println!();
    for run in runs.iter().filter(|r| r.label.contains("+tls")) {
        let plain_label = run.label.replace("+tls", "");
        let Some(plain) = runs.iter().find(|r| r.label == plain_label) else { continue };
        println!(
            "TLS cost: {} / {} = ours {}, connectorx {}",
            run.label,
            plain.label,
            ratio_cell(ratio(run.ours_seconds(), plain.ours_seconds())),
            ratio_cell(ratio(run.peer_seconds(), plain.peer_seconds()))
        );
    }
}

/// Prints rows as a Markdown table, the first row as the header.
fn print_markdown(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(c, &w)| {
                let cell = row.get(c).map_or("", String::as_str);
                if c == 0 { format!("{cell:<w$}") } else { format!("{cell:>w$}") }
            })
            .collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(c, &w)| if c == 0 { "-".repeat(w) } else { format!("{}:", "-".repeat(w - 1)) })
                .collect();
            println!("| {} |", rule.join(" | "));
        }
    }
}
