//! `connections check`: open, the cheapest round trip, where each key came from, latency.

use std::time::Instant;

use anyhow::Result;
use connections::SqlConnection;
use connections::toml::Value;
use futures_util::StreamExt as _;

use crate::cli::CheckArgs;
use crate::progress::format_duration;

/// Opens the connection, times it and its round trip, and prints the report on stdout.
pub(crate) async fn run(args: CheckArgs) -> Result<()> {
    let started = Instant::now();
    let conn = super::open(&args.target).await?;
    let opened = started.elapsed();
    let round_trip = if let Ok(sql) = conn.downcast::<SqlConnection>() {
        let started = Instant::now();
        let mut stream = sql.query_stream("select 1", 1).await?;
        while let Some(batch) = stream.next().await {
            batch?;
        }
        Some(("select 1", started.elapsed()))
    } else {
        None
    };

    println!("connection  {}", conn.name());
    println!("type        {}", conn.type_name());
    print_keys(conn.name(), &args.target.settings);
    println!("open        {} (configuration checked, connected)", format_duration(opened));
    match round_trip {
        Some((what, took)) => println!("round trip  {} ({what})", format_duration(took)),
        None => println!("round trip  none: type {} has no generic round trip (opening connected)", conn.type_name()),
    }
    println!("status      ok");
    Ok(())
}

/// Every configuration key with where it came from: the command line, or the file and section
/// of the secrets. Values are never printed, only their TOML type.
fn print_keys(name: &str, settings: &[(String, Value)]) {
    let section = connections::secrets().ok().and_then(|s| s.connection(name));
    let mut rows: Vec<(String, &'static str, String)> = Vec::new();
    if let Some(section) = &section {
        let place = match section.origin() {
            Some(file) => format!("{} [{}]", file.display(), section.path()),
            None => format!("[{}]", section.path()),
        };
        for (key, value) in section.as_table() {
            if !settings.iter().any(|(k, _)| k == key) {
                rows.push((key.clone(), value.type_str(), place.clone()));
            }
        }
    }
    for (key, value) in settings {
        rows.push((key.clone(), value.type_str(), "--set on the command line".to_owned()));
    }
    if rows.is_empty() {
        println!("keys        none (no [connections.{name}] section, no --set)");
        return;
    }
    let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (i, (key, kind, origin)) in rows.iter().enumerate() {
        let label = if i == 0 { "keys" } else { "" };
        println!("{label:<12}{key:<width$}  <{kind}, redacted>  from {origin}");
    }
}
