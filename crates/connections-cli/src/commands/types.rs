//! `connections types`: every registered connection type.

use anyhow::Result;

use crate::cli::TypesArgs;

/// Prints the registered types, sorted by name.
pub(crate) fn run(args: &TypesArgs) -> Result<()> {
    let mut types = connections::registered_types();
    types.sort_by_key(|t| t.name);
    let crate_of = |defined_in: &'static str| defined_in.split("::").next().unwrap_or(defined_in);
    if args.json {
        let list: Vec<_> = types
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "aliases": t.aliases,
                    "crate": crate_of(t.defined_in),
                    "rust_type": t.qualified_rust_type(),
                    "deprecated": t.deprecation.is_some(),
                    "deprecation": t.deprecation,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let rows: Vec<[String; 4]> = types
        .iter()
        .map(|t| {
            let aliases = if t.aliases.is_empty() { "-".to_owned() } else { t.aliases.join(", ") };
            let deprecated = t.deprecation.map_or_else(|| "no".to_owned(), |note| format!("yes: {note}"));
            [t.name.to_owned(), aliases, crate_of(t.defined_in).to_owned(), deprecated]
        })
        .collect();
    let header = ["TYPE", "ALIASES", "CRATE", "DEPRECATED"].map(str::to_owned);
    let mut widths = [0; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(())
}
